/* test_pacer.c: unit tests of milter/pacer.c, the send-rate buckets of
 * postern-milter: delay within max_delay and its fall back to defer;
 * defer; an account's bucket and its tenant's together (the longer wait
 * wins, two accounts of one tenant apart); a restart (close, open the
 * same file) keeps the pace; 4 threads at once admit exactly the burst; a
 * store that cannot be written charges nothing and says why.  Mode hold:
 * the burst goes, the rest is recorded in the schedule (not charged) with
 * its place and estimate, behind anything already held, everything of a
 * paused account; a bad queue ID records nothing; the release side hands
 * out the head of each account in order when its buckets allow, fair
 * across accounts (least recently released first) under a tenant-wide
 * pace, with the rules in force or the rule recorded at the hold; a
 * failed release goes back in its place; a restart reports the claimed
 * messages and keeps the buckets. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "holdq.h"
#include "pacer.h"
#include "store.h"
#include "unit.h"

#define NS 1000000000LL
#define T0 (1700000000LL * NS)

static char tmpdir[64], db[128];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_pacer.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(db, sizeof db, "%s/milter.sqlite", tmpdir);
}

static void teardown(void)
{
    unit_rm_tree(tmpdir);
}

static struct pace pace_of(uint64_t count, uint64_t period_s, uint64_t burst, enum pace_mode mode)
{
    struct pace p;
    memset(&p, 0, sizeof p);
    p.set = true;
    p.rate.count = count;
    p.rate.period_s = period_s;
    p.burst = burst;
    p.mode = mode;
    p.max_delay_ms = 20000;
    return p;
}

static struct pacer *open_ok(void)
{
    struct buf err;
    buf_init(&err);
    struct pacer *p = pacer_open(db, &err);
    ck_assert_msg(p != NULL, "%s", err.data);
    buf_free(&err);
    return p;
}

static struct pacer_decision decide(struct pacer *p, const struct pacer_bucket *b, size_t n, enum pace_mode mode,
                                    uint64_t max_delay_ms, int64_t now)
{
    struct buf err;
    buf_init(&err);
    struct pacer_decision d;
    ck_assert_msg(pacer_decide(p, b, n, mode, max_delay_ms, now, NULL, &d, &err), "%s", err.data);
    buf_free(&err);
    return d;
}

START_TEST(test_delay_then_defer)
{
    struct pacer *p = open_ok();
    struct pace pc = pace_of(60, 60, 2, PACE_DELAY); /* 1/s, burst 2 */
    struct pacer_bucket b = { "acme/invoices@acme.example", &pc };
    ck_assert_int_eq(decide(p, &b, 1, PACE_DELAY, 2500, T0).verdict, PACER_GO);
    ck_assert_int_eq(decide(p, &b, 1, PACE_DELAY, 2500, T0).verdict, PACER_GO);
    struct pacer_decision d = decide(p, &b, 1, PACE_DELAY, 2500, T0);
    ck_assert_int_eq(d.verdict, PACER_DELAY);
    ck_assert_int_eq(d.wait_ns, NS);
    ck_assert_str_eq(d.by, "acme/invoices@acme.example");
    d = decide(p, &b, 1, PACE_DELAY, 2500, T0);
    ck_assert_int_eq(d.verdict, PACER_DELAY);
    ck_assert_int_eq(d.wait_ns, 2 * NS);
    /* 3 s is over max_delay 2.5 s: defer, and nothing charged */
    d = decide(p, &b, 1, PACE_DELAY, 2500, T0);
    ck_assert_int_eq(d.verdict, PACER_DEFER);
    ck_assert_int_eq(d.wait_ns, 3 * NS);
    d = decide(p, &b, 1, PACE_DELAY, 2500, T0);
    ck_assert_int_eq(d.verdict, PACER_DEFER);
    ck_assert_int_eq(d.wait_ns, 3 * NS);
    pacer_close(p);
}
END_TEST

START_TEST(test_defer)
{
    struct pacer *p = open_ok();
    struct pace pc = pace_of(1, 60, 1, PACE_DEFER); /* 1/minute */
    struct pacer_bucket b = { "acme/x", &pc };
    ck_assert_int_eq(decide(p, &b, 1, PACE_DEFER, 0, T0).verdict, PACER_GO);
    struct pacer_decision d = decide(p, &b, 1, PACE_DEFER, 0, T0 + 20 * NS);
    ck_assert_int_eq(d.verdict, PACER_DEFER);
    ck_assert_int_eq(d.wait_ns, 40 * NS);
    ck_assert_int_eq(decide(p, &b, 1, PACE_DEFER, 0, T0 + 60 * NS).verdict, PACER_GO);
    pacer_close(p);
}
END_TEST

/* Two accounts of a tenant with a tenant-wide bucket: each account's own
 * bucket is its own; the tenant's is shared; the longer wait wins. */
START_TEST(test_account_and_tenant)
{
    struct pacer *p = open_ok();
    struct pace acct = pace_of(1, 1, 3, PACE_DEFER);   /* 1/s, burst 3 each */
    struct pace tenant = pace_of(1, 1, 4, PACE_DEFER); /* 1/s, burst 4 for both */
    struct pacer_bucket a[2] = { { "acme/a", &acct }, { "acme", &tenant } };
    struct pacer_bucket bb[2] = { { "acme/b", &acct }, { "acme", &tenant } };
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(decide(p, a, 2, PACE_DEFER, 0, T0).verdict, PACER_GO);
    struct pacer_decision d = decide(p, a, 2, PACE_DEFER, 0, T0);
    ck_assert_int_eq(d.verdict, PACER_DEFER); /* a's own bucket is empty */
    ck_assert_str_eq(d.by, "acme/a");
    ck_assert_int_eq(decide(p, bb, 2, PACE_DEFER, 0, T0).verdict, PACER_GO); /* the tenant's 4th */
    d = decide(p, bb, 2, PACE_DEFER, 0, T0);
    ck_assert_int_eq(d.verdict, PACER_DEFER); /* b has room, the tenant has not */
    ck_assert_str_eq(d.by, "acme");
    ck_assert_int_eq(d.wait_ns, NS);
    /* a bucket without a rule (an account not paced) changes nothing */
    struct pacer_bucket none = { "acme/c", NULL };
    ck_assert_int_eq(decide(p, &none, 1, PACE_DEFER, 0, T0).verdict, PACER_GO);
    pacer_close(p);
}
END_TEST

/* Close and open the same file: the pace goes on where it was. */
START_TEST(test_restart_keeps_pace)
{
    struct pacer *p = open_ok();
    struct pace pc = pace_of(600, 60, 10, PACE_DELAY);
    struct pacer_bucket b = { "acme/news@acme.example", &pc };
    for (int i = 0; i < 50; i++) /* 10 go, 40 delayed up to 4 s: all charged */
        ck_assert_int_ne(decide(p, &b, 1, PACE_DELAY, 10000, T0).verdict, PACER_DEFER);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, T0 + 5 * NS);
    pacer_close(p);
    p = open_ok();
    int64_t tat2;
    ck_assert(pacer_bucket_tat(p, b.key, &tat2));
    ck_assert_int_eq(tat2, tat);
    struct pacer_decision d = decide(p, &b, 1, PACE_DELAY, 10000, T0 + NS);
    ck_assert_int_eq(d.verdict, PACER_DELAY);
    ck_assert_int_eq(d.wait_ns, 41 * (NS / 10) - NS); /* the 51st: 4.1 s after T0 */
    ck_assert(!pacer_bucket_tat(p, "acme/never", &tat));
    pacer_close(p);
}
END_TEST

struct racer {
    struct pacer *p;
    const struct pacer_bucket *b;
    int go;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 100; i++) {
        struct pacer_decision d;
        struct buf err;
        buf_init(&err);
        if (pacer_decide(r->p, r->b, 1, PACE_DEFER, 0, T0, NULL, &d, &err) && d.verdict == PACER_GO)
            r->go++;
        buf_free(&err);
    }
    return NULL;
}

START_TEST(test_threads_admit_burst)
{
    struct pacer *p = open_ok();
    struct pace pc = pace_of(1, 3600, 25, PACE_DEFER);
    struct pacer_bucket b = { "acme/burst", &pc };
    struct racer rs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        rs[i] = (struct racer){ p, &b, 0 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, racer_main, &rs[i]), 0);
    }
    int go = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        go += rs[i].go;
    }
    ck_assert_int_eq(go, 25);
    pacer_close(p);
}
END_TEST

/* A store that cannot be written: the decision fails, nothing charged. */
START_TEST(test_store_failure)
{
    struct pacer *p = open_ok();
    struct pace pc = pace_of(1, 3600, 1, PACE_DEFER);
    struct pacer_bucket b = { "acme/ro", &pc };
    /* a trigger makes every write of the table fail */
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "sqlite3 %s \"CREATE TRIGGER no_write BEFORE INSERT ON pace_bucket BEGIN SELECT RAISE(ABORT, 'disk full'); END;\"",
             db);
    ck_assert_int_eq(system(cmd), 0);
    struct pacer_decision d;
    struct buf err;
    buf_init(&err);
    ck_assert(!pacer_decide(p, &b, 1, PACE_DEFER, 0, T0, NULL, &d, &err));
    ck_assert_msg(strstr(err.data, "disk full") != NULL, "%s", err.data);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, 0); /* not charged */
    buf_free(&err);
    pacer_close(p);
}
END_TEST

/* --- mode hold ------------------------------------------------------------ */

#define MS 1000000LL

/* The n-th queue ID of a test (Postfix's short form). */
static void qid_of(char *out, size_t size, char tag, unsigned n)
{
    snprintf(out, size, "%c%08X", tag, n);
}

/* One hold-mode decision; the schedule records the tenant and the rules'
 * account name from the account bucket's key "tenant/who". */
static bool hold_try(struct pacer *p, const struct pacer_bucket *b, size_t n, int64_t now, const char *qid,
                     const struct pace *rule, struct pacer_decision *d, struct buf *err)
{
    char tenant[64];
    const char *slash = strchr(b[0].key, '/');
    snprintf(tenant, sizeof tenant, "%.*s", (int)(slash != NULL ? slash - b[0].key : 0), b[0].key);
    struct pacer_hold h = { qid, tenant, slash != NULL ? slash + 1 : "*", rule };
    return pacer_decide(p, b, n, PACE_HOLD, 0, now, &h, d, err);
}

static struct pacer_decision hold(struct pacer *p, const struct pacer_bucket *b, size_t n, int64_t now,
                                  const char *qid, const struct pace *rule)
{
    struct buf err;
    buf_init(&err);
    struct pacer_decision d;
    ck_assert_msg(hold_try(p, b, n, now, qid, rule, &d, &err), "%s: %s", qid, err.data);
    buf_free(&err);
    return d;
}

/* What the rules callback answers (NULL: no pace), and what it was
 * asked. */
struct rules_answer {
    const struct pace *own, *tenant;
    int calls;
    struct holdq_account asked;
};

static void rules_cb(void *arg, const struct holdq_account *a, struct pace *own, struct pace *tenant)
{
    struct rules_answer *r = arg;
    r->calls++;
    r->asked = *a;
    if (r->own != NULL)
        *own = *r->own;
    if (r->tenant != NULL)
        *tenant = *r->tenant;
}

static int release(struct pacer *p, struct rules_answer *r, int64_t now, struct pacer_release *rel,
                   int64_t *next)
{
    struct buf err;
    buf_init(&err);
    pacer_rules_fn *fn = NULL;
    if (r != NULL)
        fn = rules_cb;
    int rc = pacer_release_next(p, fn, r, now, rel, next, &err);
    ck_assert_msg(rc >= 0, "%s", err.data);
    buf_free(&err);
    return rc;
}

static void release_done(struct pacer *p, const char *qid, bool paced, int64_t now)
{
    struct buf err;
    buf_init(&err);
    ck_assert_msg(pacer_release_done(p, qid, paced, now, &err), "%s", err.data);
    buf_free(&err);
}

/* The schedule as "ID,ID*,..." (* claimed). */
static void schedule(struct pacer *p, char *out, size_t size)
{
    struct buf err;
    buf_init(&err);
    struct holdq_msg *v;
    size_t n;
    ck_assert_msg(pacer_held_all(p, &v, &n, &err), "%s", err.data);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s%s", i > 0 ? "," : "", v[i].queue_id,
                 v[i].claimed_ns != 0 ? "*" : "");
    }
    mem_free(v);
    buf_free(&err);
}

static size_t scheduled(struct pacer *p)
{
    struct buf err;
    buf_init(&err);
    struct holdq_msg *v;
    size_t n;
    ck_assert_msg(pacer_held_all(p, &v, &n, &err), "%s", err.data);
    mem_free(v);
    buf_free(&err);
    return n;
}

/* A second handle on the pace store, as posternctl has. */
static struct store *store_ok(void)
{
    struct buf err;
    buf_init(&err);
    struct store *st = store_open(db, 0, &err);
    ck_assert_msg(st != NULL, "%s", err.data);
    buf_free(&err);
    return st;
}

static struct holdq_account peek(const char *key)
{
    struct store *st = store_ok();
    struct buf err;
    buf_init(&err);
    struct holdq_account a;
    ck_assert_msg(holdq_account_get(st, key, &a, &err) == 1, "%s: %s", key, err.data);
    buf_free(&err);
    store_close(st);
    return a;
}

static void set_paused(const char *key, bool paused)
{
    struct store *st = store_ok();
    struct buf err;
    buf_init(&err);
    ck_assert_msg(holdq_set_paused(st, key, paused, &err) == 1, "%s: %s", key, err.data);
    buf_free(&err);
    store_close(st);
}

static struct pace hold_pace(uint64_t count, uint64_t period_s, uint64_t burst, const char *unit)
{
    struct pace pc = pace_of(count, period_s, burst, PACE_HOLD);
    pc.rate.unit = unit;
    return pc;
}

/* 600/minute, burst 10, 30 messages at once: 10 go, 20 are held (not
 * charged), each with the number held before it and an estimate 100 ms
 * later than the one before. */
START_TEST(test_hold_burst_then_hold)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/news@acme.example", &pc };
    char q[32];
    int64_t last = 0;
    for (unsigned i = 0; i < 30; i++) {
        qid_of(q, sizeof q, 'A', i);
        struct pacer_decision d = hold(p, &b, 1, T0, q, &pc);
        if (i < 10) {
            ck_assert_int_eq(d.verdict, PACER_GO);
            ck_assert_int_eq(d.wait_ns, 0);
            continue;
        }
        ck_assert_int_eq(d.verdict, PACER_HOLD);
        ck_assert_uint_eq(d.held_before, i - 10);
        if (i == 10)
            ck_assert_int_gt(d.wait_ns, 0); /* its value: test_hold_estimate_matches_release */
        else
            ck_assert_int_eq(d.wait_ns, last + 100 * MS);
        last = d.wait_ns;
        ck_assert_str_eq(d.by, b.key);
    }
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, T0 + NS); /* the 10 that went, not the held */
    struct buf err;
    buf_init(&err);
    struct holdq_msg *v;
    size_t n;
    ck_assert(pacer_held_all(p, &v, &n, &err));
    ck_assert_uint_eq(n, 20);
    for (size_t i = 0; i < n; i++) {
        qid_of(q, sizeof q, 'A', (unsigned)i + 10);
        ck_assert_str_eq(v[i].queue_id, q);
        ck_assert_str_eq(v[i].account, b.key);
        ck_assert_int_eq(v[i].held_ns, T0);
        ck_assert_int_eq(v[i].claimed_ns, 0);
    }
    mem_free(v);
    buf_free(&err);
    struct holdq_account a = peek(b.key);
    ck_assert_uint_eq(a.held, 20);
    ck_assert_str_eq(a.tenant, "acme");
    ck_assert_str_eq(a.rule_account, "news@acme.example");
    ck_assert_uint_eq(a.count, 600);
    ck_assert_uint_eq(a.period_s, 60);
    ck_assert_uint_eq(a.burst, 10);
    ck_assert_str_eq(a.unit, "minute");
    pacer_close(p);
}
END_TEST

/* Once something of the account is held, the next is held too even when
 * the bucket would let it go: the order is kept. */
START_TEST(test_hold_keeps_order)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/a", &pc };
    char q[32];
    for (unsigned i = 0; i < 11; i++) {
        qid_of(q, sizeof q, 'B', i);
        ck_assert_int_eq(hold(p, &b, 1, T0, q, &pc).verdict, i < 10 ? PACER_GO : PACER_HOLD);
    }
    /* 10 s later the bucket is full again */
    struct pacer_decision d = hold(p, &b, 1, T0 + 10 * NS, "B00000011", &pc);
    ck_assert_int_eq(d.verdict, PACER_HOLD);
    ck_assert_uint_eq(d.held_before, 1);
    ck_assert_int_eq(d.wait_ns, 100 * MS); /* no wait for the bucket, one held before it */
    ck_assert_str_eq(d.by, b.key);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, T0 + NS); /* not charged */
    /* released in order, then the account's messages go again */
    struct pacer_release rel;
    int64_t next;
    ck_assert_int_eq(release(p, NULL, T0 + 10 * NS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "B0000000A");
    /* still one held (claimed): a new one waits behind it */
    d = hold(p, &b, 1, T0 + 10 * NS, "B00000012", &pc);
    ck_assert_int_eq(d.verdict, PACER_HOLD);
    ck_assert_uint_eq(d.held_before, 2);
    release_done(p, "B0000000A", true, T0 + 10 * NS);
    ck_assert_int_eq(release(p, NULL, T0 + 10 * NS, &rel, &next), 0); /* releases: no burst */
    ck_assert_int_eq(next, T0 + 10 * NS + 100 * MS);
    ck_assert_int_eq(release(p, NULL, next, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "B00000011");
    release_done(p, "B00000011", true, T0 + 10 * NS + 100 * MS);
    ck_assert_int_eq(release(p, NULL, T0 + 10 * NS + 200 * MS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "B00000012");
    release_done(p, "B00000012", true, T0 + 10 * NS + 200 * MS);
    ck_assert_int_eq(hold(p, &b, 1, T0 + 10 * NS + 200 * MS, "B00000013", &pc).verdict, PACER_GO);
    ck_assert_uint_eq(scheduled(p), 0);
    pacer_close(p);
}
END_TEST

/* A paused account holds everything and releases nothing until resumed. */
START_TEST(test_hold_paused)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/p", &pc };
    /* posternctl pauses the account before its first message */
    struct store *st = store_ok();
    struct buf err;
    buf_init(&err);
    struct holdq_account a;
    memset(&a, 0, sizeof a);
    snprintf(a.account, sizeof a.account, "acme/p");
    snprintf(a.tenant, sizeof a.tenant, "acme");
    snprintf(a.rule_account, sizeof a.rule_account, "p");
    a.count = a.period_s = a.burst = 1;
    snprintf(a.unit, sizeof a.unit, "second");
    a.paused = true;
    ck_assert_msg(holdq_account_put(st, &a, &err), "%s", err.data);
    store_close(st);

    struct pacer_decision d = hold(p, &b, 1, T0, "C00000000", &pc);
    ck_assert_int_eq(d.verdict, PACER_HOLD);
    ck_assert_uint_eq(d.held_before, 0);
    ck_assert_int_eq(d.wait_ns, 0);
    d = hold(p, &b, 1, T0, "C00000001", &pc);
    ck_assert_int_eq(d.verdict, PACER_HOLD);
    ck_assert_uint_eq(d.held_before, 1);
    ck_assert_int_eq(d.wait_ns, 100 * MS);
    int64_t tat = -1;
    ck_assert(!pacer_bucket_tat(p, b.key, &tat) || tat == 0); /* nothing charged */
    ck_assert(peek(b.key).paused);

    struct pacer_release rel;
    int64_t next = -1;
    ck_assert_int_eq(release(p, NULL, T0 + 60 * NS, &rel, &next), 0);
    ck_assert_int_eq(next, 0);
    set_paused(b.key, false);
    ck_assert_int_eq(release(p, NULL, T0 + 60 * NS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "C00000000");
    ck_assert_str_eq(rel.rate, "600/minute, burst 10"); /* the rule of the hold, not the one put */
    release_done(p, "C00000000", true, T0 + 60 * NS);
    /* paused again with one held */
    set_paused(b.key, true);
    ck_assert_int_eq(release(p, NULL, T0 + 60 * NS, &rel, &next), 0);
    ck_assert_int_eq(next, 0);
    ck_assert_int_eq(hold(p, &b, 1, T0 + 60 * NS, "C00000002", &pc).verdict, PACER_HOLD);
    set_paused(b.key, false);
    ck_assert_int_eq(release(p, NULL, T0 + 61 * NS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "C00000001");
    buf_free(&err);
    pacer_close(p);
}
END_TEST

/* Mode hold without a well-formed queue ID (or rule, or bucket): false,
 * err set, nothing recorded nor charged. */
START_TEST(test_hold_bad_queue_id)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/a", &pc };
    char q[32];
    for (unsigned i = 0; i < 10; i++) {
        qid_of(q, sizeof q, 'D', i);
        ck_assert_int_eq(hold(p, &b, 1, T0, q, &pc).verdict, PACER_GO);
    }
    static const char *const bad[] = {
        "", "ALL", "../x", "-d", "c8d33e07dcf", "C8D33E07DCF ALL", "C8D33E07DCF\n", "-c", "C8D3", "deferred",
    };
    struct buf err;
    buf_init(&err);
    struct pacer_decision d;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_reset(&err);
        ck_assert_msg(!hold_try(p, &b, 1, T0, bad[i], &pc, &d, &err), "accepted \"%s\"", bad[i]);
        ck_assert_msg(err.len > 0, "\"%s\": no error", bad[i]);
    }
    buf_reset(&err);
    ck_assert(!hold_try(p, &b, 1, T0, NULL, &pc, &d, &err));
    ck_assert_uint_gt(err.len, 0);
    buf_reset(&err);
    ck_assert(!pacer_decide(p, &b, 1, PACE_HOLD, 0, T0, NULL, &d, &err));
    ck_assert_uint_gt(err.len, 0);
    buf_reset(&err);
    ck_assert(!hold_try(p, &b, 1, T0, "D000000FF", NULL, &d, &err));
    ck_assert_uint_gt(err.len, 0);
    buf_reset(&err);
    struct pacer_hold h = { "D000000FF", "acme", "a", &pc };
    ck_assert(!pacer_decide(p, &b, 0, PACE_HOLD, 0, T0, &h, &d, &err));
    ck_assert_uint_gt(err.len, 0);
    ck_assert_uint_eq(scheduled(p), 0);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, T0 + NS);
    buf_free(&err);
    pacer_close(p);
}
END_TEST

/* Nothing is released before the bucket allows it; then the head, in
 * order, one every 100 ms: held messages never use the burst (the 10 that
 * went at once took the bucket's next second). */
START_TEST(test_release_in_order)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/a", &pc };
    char q[32];
    for (unsigned i = 0; i < 16; i++) {
        qid_of(q, sizeof q, 'E', i);
        ck_assert_int_eq(hold(p, &b, 1, T0, q, &pc).verdict, i < 10 ? PACER_GO : PACER_HOLD);
    }
    struct pacer_release rel;
    int64_t next;
    ck_assert_int_eq(release(p, NULL, T0, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + NS);
    ck_assert_int_eq(release(p, NULL, T0 + 999 * MS, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + NS);
    for (unsigned k = 0; k < 4; k++) {
        int64_t now = T0 + NS + (int64_t)k * 100 * MS;
        ck_assert_int_eq(release(p, NULL, now, &rel, &next), 1);
        qid_of(q, sizeof q, 'E', 10 + k);
        ck_assert_str_eq(rel.msg.queue_id, q);
        ck_assert_int_eq(rel.msg.claimed_ns, now);
        ck_assert_str_eq(rel.account.account, b.key);
        ck_assert_str_eq(rel.account.tenant, "acme");
        ck_assert_str_eq(rel.rate, "600/minute, burst 10");
        int64_t tat;
        ck_assert(pacer_bucket_tat(p, b.key, &tat));
        ck_assert_int_eq(tat, now + 100 * MS); /* charged at the release */
        /* the next one is not due yet (claimed ones are never handed out twice) */
        ck_assert_int_eq(release(p, NULL, now, &rel, &next), 0);
        ck_assert_int_eq(next, now + 100 * MS);
        ck_assert_int_eq(release(p, NULL, now + 99 * MS, &rel, &next), 0);
        release_done(p, q, true, now);
        ck_assert_int_eq(peek(b.key).last_release_ns, now);
    }
    /* 30 ms late (the thread's wake-up): the next is still due 100 ms
     * after the last was due, the lateness does not add up */
    ck_assert_int_eq(release(p, NULL, T0 + 1430 * MS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "E0000000E");
    release_done(p, "E0000000E", true, T0 + 1430 * MS);
    ck_assert_int_eq(release(p, NULL, T0 + 1430 * MS, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + 1500 * MS);
    /* after a pause of releases (a minute): one, then 100 ms again, no burst */
    ck_assert_int_eq(release(p, NULL, T0 + 60 * NS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "E0000000F");
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, T0 + 60 * NS + 100 * MS);
    /* all claimed: nothing waiting */
    ck_assert_int_eq(release(p, NULL, T0 + 60 * NS, &rel, &next), 0);
    ck_assert_int_eq(next, 0);
    release_done(p, "E0000000F", true, T0 + 60 * NS);
    ck_assert_int_eq(release(p, NULL, T0 + 70 * NS, &rel, &next), 0);
    ck_assert_int_eq(next, 0);
    ck_assert_uint_eq(scheduled(p), 0);
    ck_assert_uint_eq(peek(b.key).held, 0);
    pacer_close(p);
}
END_TEST

/* The estimate given when a message is held is when it is released (the
 * releases driven at their due times). */
START_TEST(test_hold_estimate_matches_release)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/est", &pc };
    int64_t est[6];
    char q[32];
    for (unsigned i = 0; i < 16; i++) {
        qid_of(q, sizeof q, 'E', 0x100 + i);
        struct pacer_decision d = hold(p, &b, 1, T0, q, &pc);
        ck_assert_int_eq(d.verdict, i < 10 ? PACER_GO : PACER_HOLD);
        if (i >= 10)
            est[i - 10] = d.wait_ns;
    }
    int64_t now = T0;
    for (unsigned k = 0; k < 6; k++) {
        struct pacer_release rel;
        int64_t next;
        while (release(p, NULL, now, &rel, &next) == 0) {
            ck_assert_int_gt(next, now);
            now = next;
        }
        qid_of(q, sizeof q, 'E', 0x100 + 10 + k);
        ck_assert_str_eq(rel.msg.queue_id, q);
        ck_assert_msg(est[k] == now - T0, "held %u: estimated %lld ms, released after %lld ms", k,
                      (long long)(est[k] / MS), (long long)((now - T0) / MS));
        release_done(p, q, true, now);
    }
    pacer_close(p);
}
END_TEST

/* Two accounts of a tenant whose pace limits their sum: one message per
 * 100 ms in all, alternately, the least recently released first. */
START_TEST(test_release_fair_tenant)
{
    struct pacer *p = open_ok();
    struct pace own = hold_pace(600, 60, 10, "minute");
    struct pace ten = hold_pace(600, 60, 1, "minute");
    struct pacer_bucket ba[2] = { { "acme/a", &own }, { "acme", &ten } };
    struct pacer_bucket bb[2] = { { "acme/b", &own }, { "acme", &ten } };
    ck_assert_int_eq(hold(p, ba, 2, T0, "F0000A001", &own).verdict, PACER_GO);
    struct pacer_decision d = hold(p, ba, 2, T0, "F0000A002", &own);
    ck_assert_int_eq(d.verdict, PACER_HOLD);
    ck_assert_str_eq(d.by, "acme"); /* the tenant's bucket */
    ck_assert_int_eq(d.wait_ns, 100 * MS);
    ck_assert_int_eq(hold(p, ba, 2, T0, "F0000A003", &own).verdict, PACER_HOLD);
    ck_assert_int_eq(hold(p, ba, 2, T0, "F0000A004", &own).verdict, PACER_HOLD);
    for (unsigned i = 1; i <= 3; i++) {
        char q[32];
        snprintf(q, sizeof q, "F0000B%03u", i);
        d = hold(p, bb, 2, T0, q, &own);
        ck_assert_int_eq(d.verdict, PACER_HOLD); /* b has room; the tenant has not */
        ck_assert_uint_eq(d.held_before, i - 1);
    }
    struct rules_answer r = { .own = &own, .tenant = &ten };
    static const char *const order[] = {
        "F0000A002", "F0000B001", "F0000A003", "F0000B002", "F0000A004", "F0000B003",
    };
    struct pacer_release rel;
    int64_t next;
    ck_assert_int_eq(release(p, &r, T0, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + 100 * MS);
    for (unsigned k = 0; k < 6; k++) {
        int64_t now = T0 + (int64_t)(k + 1) * 100 * MS;
        ck_assert_int_eq(release(p, &r, now, &rel, &next), 1);
        ck_assert_str_eq(rel.msg.queue_id, order[k]);
        ck_assert_str_eq(rel.rate, "600/minute, burst 10");
        ck_assert_int_eq(release(p, &r, now, &rel, &next), 0); /* the tenant's one per 100 ms is used */
        if (k < 5)
            ck_assert_int_eq(next, now + 100 * MS);
        release_done(p, order[k], true, now);
    }
    ck_assert_uint_eq(scheduled(p), 0);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, "acme", &tat));
    ck_assert_int_eq(tat, T0 + 700 * MS); /* 7 messages through the tenant's bucket */
    ck_assert(pacer_bucket_tat(p, "acme/b", &tat));
    ck_assert_int_eq(tat, T0 + 700 * MS); /* b's 3 (none went at once), the last at 600 ms */
    pacer_close(p);
}
END_TEST

/* Equal rates, no tenant pace: of the accounts due, the least recently
 * released goes first, whatever the names. */
START_TEST(test_release_least_recent_first)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 1, "minute");
    struct pacer_bucket bx = { "acme/x", &pc }, by = { "acme/y", &pc };
    const char *xs[] = { "10000A000", "10000A001", "10000A002", "10000A003" };
    const char *ys[] = { "10000B000", "10000B001", "10000B002", "10000B003" };
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(hold(p, &bx, 1, T0, xs[i], &pc).verdict, i == 0 ? PACER_GO : PACER_HOLD);
        ck_assert_int_eq(hold(p, &by, 1, T0, ys[i], &pc).verdict, i == 0 ? PACER_GO : PACER_HOLD);
    }
    struct pacer_release rel;
    int64_t next;
    int64_t t = T0 + 100 * MS;
    /* both due, neither released yet: by name */
    ck_assert_int_eq(release(p, NULL, t, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, xs[1]);
    ck_assert_int_eq(release(p, NULL, t, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, ys[1]);
    ck_assert_int_eq(release(p, NULL, t, &rel, &next), 0);
    ck_assert_int_eq(next, t + 100 * MS);
    /* y's release ends first: y was released less recently than x */
    release_done(p, ys[1], true, t);
    release_done(p, xs[1], true, t + MS);
    t += 100 * MS;
    ck_assert_int_eq(release(p, NULL, t, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, ys[2]);
    release_done(p, ys[2], true, t);
    ck_assert_int_eq(release(p, NULL, t, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, xs[2]);
    release_done(p, xs[2], true, t);
    t += 100 * MS;
    /* equal times: by name again */
    ck_assert_int_eq(release(p, NULL, t, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, xs[3]);
    pacer_close(p);
}
END_TEST

/* The rules callback: the rules in force; no pace of its own nor of its
 * tenant (gone from the rules): the rule recorded at the hold; a tenant
 * pace only: the tenant's alone (as when such a message is decided:
 * pacer_decide charges only the buckets with a rule). */
START_TEST(test_release_rules)
{
    struct pacer *p = open_ok();
    struct pace rule = hold_pace(600, 60, 1, "minute");
    struct pacer_bucket b = { "acme/gone", &rule };
    ck_assert_int_eq(hold(p, &b, 1, T0, "200000000", &rule).verdict, PACER_GO);
    for (unsigned i = 1; i < 6; i++) {
        char q[32];
        qid_of(q, sizeof q, '2', i);
        ck_assert_int_eq(hold(p, &b, 1, T0, q, &rule).verdict, PACER_HOLD);
    }
    struct rules_answer r = { .own = NULL, .tenant = NULL };
    struct pacer_release rel;
    int64_t next;
    /* gone from the rules: the recorded 600/minute */
    ck_assert_int_eq(release(p, &r, T0 + 100 * MS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "200000001");
    ck_assert_str_eq(rel.rate, "600/minute, burst 1");
    ck_assert_int_ge(r.calls, 1);
    ck_assert_str_eq(r.asked.account, "acme/gone");
    ck_assert_str_eq(r.asked.tenant, "acme");
    ck_assert_str_eq(r.asked.rule_account, "gone");
    ck_assert_uint_eq(r.asked.count, 600);
    release_done(p, "200000001", true, T0 + 100 * MS);
    ck_assert_int_eq(release(p, &r, T0 + 150 * MS, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + 200 * MS);
    /* the rules in force now: 60/minute (1 s apart) */
    struct pace slow = hold_pace(60, 60, 1, "minute");
    r.own = &slow;
    ck_assert_int_eq(release(p, &r, T0 + 200 * MS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "200000002");
    ck_assert_str_eq(rel.rate, "60/minute, burst 1");
    release_done(p, "200000002", true, T0 + 200 * MS);
    ck_assert_int_eq(release(p, &r, T0 + 300 * MS, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + 1200 * MS);
    /* an own pace that is not set: the recorded one again */
    struct pace unset = slow;
    unset.set = false;
    r.own = &unset;
    ck_assert_int_eq(release(p, &r, T0 + 1200 * MS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "200000003");
    ck_assert_str_eq(rel.rate, "600/minute, burst 1");
    release_done(p, "200000003", true, T0 + 1200 * MS);
    /* own NULL, the tenant paced: the tenant's bucket alone */
    struct pace ten = hold_pace(1, 1, 1, "second");
    r.own = NULL;
    r.tenant = &ten;
    ck_assert_int_eq(release(p, &r, T0 + 1200 * MS, &rel, &next), 1); /* the account's bucket is not asked */
    ck_assert_str_eq(rel.msg.queue_id, "200000004");
    ck_assert_str_eq(rel.rate, "1/second, burst 1");
    release_done(p, "200000004", true, T0 + 1200 * MS);
    ck_assert_int_eq(release(p, &r, T0 + 1300 * MS, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + 2200 * MS);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, "acme", &tat));
    ck_assert_int_eq(tat, T0 + 2200 * MS);
    pacer_close(p);
}
END_TEST

/* A release that failed goes back to waiting, in its place. */
START_TEST(test_release_undo)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/u", &pc };
    char q[32];
    for (unsigned i = 0; i < 13; i++) {
        qid_of(q, sizeof q, '3', i);
        hold(p, &b, 1, T0, q, &pc);
    }
    struct pacer_release rel;
    int64_t next;
    ck_assert_int_eq(release(p, NULL, T0 + NS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "30000000A");
    char s[256];
    schedule(p, s, sizeof s);
    ck_assert_str_eq(s, "30000000A*,30000000B,30000000C");
    struct buf err;
    buf_init(&err);
    struct holdq_msg *v;
    size_t n;
    ck_assert(pacer_release_claimed(p, &v, &n, &err));
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].queue_id, "30000000A");
    mem_free(v);
    ck_assert_msg(pacer_release_undo(p, "30000000A", &err), "%s", err.data);
    ck_assert(pacer_release_claimed(p, &v, &n, &err));
    ck_assert_uint_eq(n, 0);
    mem_free(v);
    schedule(p, s, sizeof s);
    ck_assert_str_eq(s, "30000000A,30000000B,30000000C");
    ck_assert_uint_eq(peek(b.key).held, 3);
    ck_assert_int_eq(peek(b.key).last_release_ns, 0);
    ck_assert_int_eq(release(p, NULL, T0 + 1100 * MS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "30000000A");
    buf_free(&err);
    pacer_close(p);
}
END_TEST

/* A restart between the claim and the end of a release: the claimed
 * message is reported, the buckets are where they were. */
START_TEST(test_release_restart)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/r", &pc };
    char q[32];
    for (unsigned i = 0; i < 13; i++) {
        qid_of(q, sizeof q, '4', i);
        hold(p, &b, 1, T0, q, &pc);
    }
    struct pacer_release rel;
    int64_t next;
    ck_assert_int_eq(release(p, NULL, T0 + NS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "40000000A");
    pacer_close(p);

    p = open_ok();
    struct buf err;
    buf_init(&err);
    struct holdq_msg *v;
    size_t n;
    ck_assert_msg(pacer_release_claimed(p, &v, &n, &err), "%s", err.data);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].queue_id, "40000000A");
    ck_assert_str_eq(v[0].account, b.key);
    ck_assert_int_eq(v[0].claimed_ns, T0 + NS);
    mem_free(v);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, T0 + 1100 * MS); /* 10 went, 1 released */
    ck_assert_int_eq(release(p, NULL, T0 + NS, &rel, &next), 0);
    ck_assert_int_eq(next, T0 + 1100 * MS);
    ck_assert_int_eq(release(p, NULL, T0 + 1100 * MS, &rel, &next), 1);
    ck_assert_str_eq(rel.msg.queue_id, "40000000B"); /* not the claimed one again */
    release_done(p, "40000000A", false, T0 + 1100 * MS); /* released again after the restart */
    release_done(p, "40000000B", true, T0 + 1100 * MS);
    char s[64];
    schedule(p, s, sizeof s);
    ck_assert_str_eq(s, "40000000C");
    struct pacer_decision d = hold(p, &b, 1, T0 + 60 * NS, "40000000D", &pc);
    ck_assert_int_eq(d.verdict, PACER_HOLD);
    ck_assert_uint_eq(d.held_before, 1);
    buf_free(&err);
    pacer_close(p);
}
END_TEST

START_TEST(test_held_all)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(1, 3600, 1, "hour");
    struct pacer_bucket ba = { "acme/a", &pc }, bb = { "beta/b", &pc };
    char s[256];
    schedule(p, s, sizeof s);
    ck_assert_str_eq(s, "");
    struct buf err;
    buf_init(&err);
    ck_assert_int_eq(pacer_held_any(p, &err), 0);
    hold(p, &ba, 1, T0, "500000000", &pc); /* goes */
    ck_assert_int_eq(pacer_held_any(p, &err), 0);
    hold(p, &bb, 1, T0, "500000001", &pc); /* goes */
    hold(p, &ba, 1, T0, "500000002", &pc);
    hold(p, &bb, 1, T0, "500000003", &pc);
    hold(p, &ba, 1, T0, "500000004", &pc);
    hold(p, &bb, 1, T0, "500000005", &pc);
    struct pacer_release rel;
    int64_t next;
    ck_assert_int_eq(release(p, NULL, T0 + 3600 * NS, &rel, &next), 1);
    schedule(p, s, sizeof s);
    ck_assert_str_eq(s, "500000002*,500000003,500000004,500000005");
    ck_assert_int_eq(pacer_held_any(p, &err), 1);
    struct holdq_msg *v;
    size_t n;
    ck_assert(pacer_held_all(p, &v, &n, &err));
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(v[1].account, "beta/b");
    ck_assert_str_eq(v[2].account, "acme/a");
    mem_free(v);
    const char *all[] = { "500000002", "500000003", "500000004", "500000005" };
    for (int i = 0; i < 4; i++)
        release_done(p, all[i], false, T0 + 3600 * NS);
    ck_assert_int_eq(pacer_held_any(p, &err), 0);
    buf_free(&err);
    pacer_close(p);
}
END_TEST

struct hold_racer {
    struct pacer *p;
    const struct pacer_bucket *b;
    unsigned id;
    int go, held;
    uint64_t before_sum;
};

static void *hold_racer_main(void *arg)
{
    struct hold_racer *r = arg;
    for (unsigned i = 0; i < 50; i++) {
        char q[32];
        qid_of(q, sizeof q, '6', r->id * 1000 + i);
        struct pacer_decision d;
        struct buf err;
        buf_init(&err);
        if (hold_try(r->p, r->b, 1, T0, q, r->b->pace, &d, &err)) {
            if (d.verdict == PACER_GO)
                r->go++;
            else if (d.verdict == PACER_HOLD) {
                r->held++;
                r->before_sum += d.held_before;
            }
        }
        buf_free(&err);
    }
    return NULL;
}

/* 4 threads, 200 messages at once: 10 go, 190 held, each with its own
 * place (held_before 0..189 once each). */
START_TEST(test_hold_threads)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/t", &pc };
    struct hold_racer rs[4];
    pthread_t th[4];
    for (unsigned i = 0; i < 4; i++) {
        rs[i] = (struct hold_racer){ p, &b, i, 0, 0, 0 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, hold_racer_main, &rs[i]), 0);
    }
    int go = 0, held = 0;
    uint64_t sum = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        go += rs[i].go;
        held += rs[i].held;
        sum += rs[i].before_sum;
    }
    ck_assert_int_eq(go, 10);
    ck_assert_int_eq(held, 190);
    ck_assert_uint_eq(sum, 189 * 190 / 2);
    ck_assert_uint_eq(scheduled(p), 190);
    ck_assert_uint_eq(peek(b.key).held, 190);
    pacer_close(p);
}
END_TEST

/* The schedule cannot be written: the decision fails, nothing recorded
 * nor charged; the bucket cannot be written for a message that goes: the
 * same. */
START_TEST(test_hold_store_failure)
{
    struct pacer *p = open_ok();
    struct pace pc = hold_pace(600, 60, 10, "minute");
    struct pacer_bucket b = { "acme/f", &pc };
    char q[32];
    for (unsigned i = 0; i < 10; i++) {
        qid_of(q, sizeof q, '7', i);
        ck_assert_int_eq(hold(p, &b, 1, T0, q, &pc).verdict, PACER_GO);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "sqlite3 %s \"CREATE TRIGGER no_hold BEFORE INSERT ON pace_held BEGIN "
             "SELECT RAISE(ABORT, 'disk full'); END; CREATE TRIGGER no_pace BEFORE INSERT ON pace_bucket BEGIN "
             "SELECT RAISE(ABORT, 'disk full'); END;\"",
             db);
    ck_assert_int_eq(system(cmd), 0);
    struct buf err;
    buf_init(&err);
    struct pacer_decision d;
    ck_assert(!hold_try(p, &b, 1, T0, "70000000A", &pc, &d, &err));
    ck_assert_msg(strstr(err.data, "disk full") != NULL, "%s", err.data);
    ck_assert_uint_eq(scheduled(p), 0);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    ck_assert_int_eq(tat, T0 + NS);
    struct store *st = store_ok();
    struct holdq_account a;
    ck_assert_int_eq(holdq_account_get(st, b.key, &a, &err), 0); /* the account row rolled back too */
    store_close(st);
    /* a message that would go: its bucket is not charged */
    struct pacer_bucket fresh = { "acme/g", &pc };
    buf_reset(&err);
    ck_assert(!hold_try(p, &fresh, 1, T0, "70000000B", &pc, &d, &err));
    ck_assert_msg(strstr(err.data, "disk full") != NULL, "%s", err.data);
    ck_assert(pacer_bucket_tat(p, fresh.key, &tat));
    ck_assert_int_eq(tat, 0);
    buf_free(&err);
    pacer_close(p);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_delay_then_defer);
    tcase_add_test(tc, test_defer);
    tcase_add_test(tc, test_account_and_tenant);
    tcase_add_test(tc, test_restart_keeps_pace);
    tcase_add_test(tc, test_threads_admit_burst);
    tcase_add_test(tc, test_store_failure);
    tcase_add_test(tc, test_hold_burst_then_hold);
    tcase_add_test(tc, test_hold_keeps_order);
    tcase_add_test(tc, test_hold_paused);
    tcase_add_test(tc, test_hold_bad_queue_id);
    tcase_add_test(tc, test_release_in_order);
    tcase_add_test(tc, test_hold_estimate_matches_release);
    tcase_add_test(tc, test_release_fair_tenant);
    tcase_add_test(tc, test_release_least_recent_first);
    tcase_add_test(tc, test_release_rules);
    tcase_add_test(tc, test_release_undo);
    tcase_add_test(tc, test_release_restart);
    tcase_add_test(tc, test_held_all);
    tcase_add_test(tc, test_hold_threads);
    tcase_add_test(tc, test_hold_store_failure);
}

UNIT_MAIN("pacer", add_tests)
