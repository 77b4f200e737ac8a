/* test_holdq.c: unit tests of lib/holdq.c, the hold-mode schedule in the
 * pace store: arrival order (seq) and the held counts the triggers keep,
 * a reused queue ID replacing its old row, pending and paused, the ready
 * accounts (not paused, not fully claimed, least recently released
 * first), claiming the head in order, putting a claim back, done (with
 * and without the release time), listing with its filters, pausing and
 * recording accounts; a rolled-back add leaves nothing. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "holdq.h"
#include "store.h"
#include "unit.h"

#define MS 1000000LL
#define T0 (1700000000LL * 1000000000LL)

static struct store *st;
static struct buf err;

static void setup(void)
{
    buf_init(&err);
    st = store_open(":memory:", 0, &err);
    ck_assert_msg(st != NULL, "%s", err.data);
}

static void teardown(void)
{
    store_close(st);
    buf_free(&err);
}

static struct holdq_account acct_of(const char *account, const char *tenant, uint64_t count, uint64_t period_s,
                                 uint64_t burst, const char *unit)
{
    struct holdq_account a;
    memset(&a, 0, sizeof a);
    snprintf(a.account, sizeof a.account, "%s", account);
    snprintf(a.tenant, sizeof a.tenant, "%s", tenant);
    const char *slash = strchr(account, '/');
    snprintf(a.rule_account, sizeof a.rule_account, "%s", slash != NULL ? slash + 1 : "*");
    a.count = count;
    a.period_s = period_s;
    a.burst = burst;
    snprintf(a.unit, sizeof a.unit, "%s", unit);
    return a;
}

/* holdq_add in its own transaction, as the pacer does. */
static void add(const char *qid, const char *account, int64_t now)
{
    struct holdq_account a = acct_of(account, "acme", 600, 60, 10, "minute");
    ck_assert_msg(store_begin(st, true, &err), "%s", err.data);
    ck_assert_msg(holdq_add(st, qid, &a, now, &err), "%s", err.data);
    ck_assert_msg(store_commit(st, &err), "%s", err.data);
}

static void done(const char *qid, bool paced, int64_t now)
{
    ck_assert_msg(store_begin(st, true, &err), "%s", err.data);
    ck_assert_msg(holdq_done(st, qid, paced, now, &err), "%s", err.data);
    ck_assert_msg(store_commit(st, &err), "%s", err.data);
}

static struct holdq_account get(const char *account)
{
    struct holdq_account a;
    ck_assert_msg(holdq_account_get(st, account, &a, &err) == 1, "%s: %s", account, err.data);
    return a;
}

/* The rows of pace_held of the account, counted by SQL (not the trigger). */
static int64_t rows(const char *account)
{
    sqlite3_stmt *q = store_stmt(st, "SELECT COUNT(*) FROM pace_held WHERE account = ?1", &err);
    ck_assert_ptr_nonnull(q);
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    ck_assert_int_eq(store_step(st, q, "counting", &err), STORE_ROW);
    int64_t n = sqlite3_column_int64(q, 0);
    store_stmt_done(q);
    return n;
}

/* "Q1,Q2,..." of a list. */
static void ids(const struct holdq_msg *v, size_t n, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i > 0 ? "," : "", v[i].queue_id);
    }
}

static void list_ids(const char *account, bool claimed_only, size_t limit, char *out, size_t size)
{
    struct holdq_msg *v;
    size_t n;
    ck_assert_msg(holdq_list(st, account, claimed_only, limit, &v, &n, &err), "%s", err.data);
    ids(v, n, out, size);
    mem_free(v);
}

static void ready_ids(char *out, size_t size)
{
    struct holdq_account *v;
    size_t n;
    ck_assert_msg(holdq_accounts(st, true, &v, &n, &err), "%s", err.data);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i > 0 ? "," : "", v[i].account);
    }
    mem_free(v);
}

START_TEST(test_add_order_and_counts)
{
    add("AAAAAA01", "acme/a", T0 + 3 * MS);
    add("AAAAAA02", "acme/b", T0 + 1 * MS);
    add("AAAAAA03", "acme/a", T0 + 2 * MS); /* held_ns out of order: seq is the order */
    add("3Pt2mN2VXxznjll", "acme/a", T0 + 4 * MS);
    struct holdq_msg *v;
    size_t n;
    ck_assert(holdq_list(st, NULL, false, 0, &v, &n, &err));
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(v[0].queue_id, "AAAAAA01");
    ck_assert_str_eq(v[1].queue_id, "AAAAAA02");
    ck_assert_str_eq(v[2].queue_id, "AAAAAA03");
    ck_assert_str_eq(v[3].queue_id, "3Pt2mN2VXxznjll");
    for (size_t i = 1; i < n; i++)
        ck_assert_int_gt(v[i].seq, v[i - 1].seq);
    ck_assert_str_eq(v[1].account, "acme/b");
    ck_assert_int_eq(v[0].held_ns, T0 + 3 * MS);
    ck_assert_int_eq(v[0].claimed_ns, 0);
    mem_free(v);

    struct holdq_account a = get("acme/a");
    ck_assert_uint_eq(a.held, 3);
    ck_assert_int_eq(rows("acme/a"), 3);
    ck_assert_str_eq(a.tenant, "acme");
    ck_assert_str_eq(a.rule_account, "a");
    ck_assert_uint_eq(a.count, 600);
    ck_assert_uint_eq(a.period_s, 60);
    ck_assert_uint_eq(a.burst, 10);
    ck_assert_str_eq(a.unit, "minute");
    ck_assert(!a.paused);
    ck_assert_int_eq(a.last_release_ns, 0);
    ck_assert_int_eq(a.oldest_ns, T0 + 3 * MS); /* of the first by seq (the clock may step back) */
    ck_assert_uint_eq(get("acme/b").held, 1);

    /* a later hold records the rule in force then */
    struct holdq_account r = acct_of("acme/a", "acme", 100, 3600, 5, "hour");
    ck_assert(store_begin(st, true, &err));
    ck_assert_msg(holdq_add(st, "AAAAAA05", &r, T0 + 5 * MS, &err), "%s", err.data);
    ck_assert(store_commit(st, &err));
    a = get("acme/a");
    ck_assert_uint_eq(a.held, 4);
    ck_assert_uint_eq(a.count, 100);
    ck_assert_uint_eq(a.period_s, 3600);
    ck_assert_uint_eq(a.burst, 5);
    ck_assert_str_eq(a.unit, "hour");
}
END_TEST

/* Postfix reuses a queue ID once its message is gone: the new message
 * replaces the old row, in its own account, at the end of the order. */
START_TEST(test_reused_queue_id)
{
    add("BBBBBB01", "acme/a", T0);
    add("BBBBBB02", "acme/a", T0 + MS);
    add("BBBBBB01", "acme/b", T0 + 2 * MS);
    ck_assert_uint_eq(get("acme/a").held, 1);
    ck_assert_uint_eq(get("acme/b").held, 1);
    ck_assert_int_eq(rows("acme/a"), 1);
    ck_assert_int_eq(rows("acme/b"), 1);
    char s[256];
    list_ids(NULL, false, 0, s, sizeof s);
    ck_assert_str_eq(s, "BBBBBB02,BBBBBB01");
    struct holdq_msg *v;
    size_t n;
    ck_assert(holdq_list(st, "acme/b", false, 0, &v, &n, &err));
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(v[0].held_ns, T0 + 2 * MS);
    mem_free(v);

    /* the same account again, and over a claimed row: one row, waiting */
    add("BBBBBB02", "acme/a", T0 + 3 * MS);
    ck_assert_uint_eq(get("acme/a").held, 1);
    struct holdq_msg m;
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + 4 * MS, &m, &err), 1);
    add("BBBBBB02", "acme/a", T0 + 5 * MS);
    ck_assert_uint_eq(get("acme/a").held, 1);
    ck_assert_int_eq(rows("acme/a"), 1);
    list_ids("acme/a", true, 0, s, sizeof s);
    ck_assert_str_eq(s, "");
}
END_TEST

/* holdq_add needs a transaction; rolled back, nothing of it stays. */
START_TEST(test_add_rolled_back)
{
    struct holdq_account a = acct_of("acme/r", "acme", 1, 1, 1, "second");
    ck_assert(store_begin(st, true, &err));
    ck_assert(holdq_add(st, "CCCCCC01", &a, T0, &err));
    store_rollback(st);
    struct holdq_account out;
    ck_assert_int_eq(holdq_account_get(st, "acme/r", &out, &err), 0);
    char s[64];
    list_ids(NULL, false, 0, s, sizeof s);
    ck_assert_str_eq(s, "");
}
END_TEST

START_TEST(test_pending_paused)
{
    bool paused = true;
    ck_assert_int_eq(holdq_pending(st, "acme/none", &paused, &err), 0);
    ck_assert(!paused);
    add("DDDDDD01", "acme/a", T0);
    ck_assert_int_eq(holdq_pending(st, "acme/a", &paused, &err), 1);
    ck_assert(!paused);
    ck_assert_int_eq(holdq_set_paused(st, "acme/a", true, &err), 1);
    ck_assert_int_eq(holdq_pending(st, "acme/a", &paused, &err), 1);
    ck_assert(paused);
    done("DDDDDD01", true, T0 + MS);
    ck_assert_int_eq(holdq_pending(st, "acme/a", &paused, &err), 0);
    ck_assert(paused); /* the flag outlives the messages */
    ck_assert_int_eq(holdq_set_paused(st, "acme/a", false, &err), 1);
    ck_assert_int_eq(holdq_pending(st, "acme/a", &paused, &err), 0);
    ck_assert(!paused);
}
END_TEST

START_TEST(test_account_get)
{
    struct holdq_account a;
    memset(&a, 0x5a, sizeof a);
    ck_assert_int_eq(holdq_account_get(st, "acme/none", &a, &err), 0);
    add("EEEEEE01", "acme/a", T0 + 7 * MS);
    add("EEEEEE02", "acme/a", T0 + 9 * MS);
    a = get("acme/a");
    ck_assert_str_eq(a.account, "acme/a");
    ck_assert_uint_eq(a.held, 2);
    ck_assert_int_eq(a.oldest_ns, T0 + 7 * MS);
    struct holdq_msg m;
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + 8 * MS, &m, &err), 1);
    ck_assert_int_eq(get("acme/a").oldest_ns, T0 + 7 * MS); /* a claimed one is still held */
    done("EEEEEE01", true, T0 + 10 * MS);
    a = get("acme/a");
    ck_assert_uint_eq(a.held, 1);
    ck_assert_int_eq(a.oldest_ns, T0 + 9 * MS);
    ck_assert_int_eq(a.last_release_ns, T0 + 10 * MS);
    done("EEEEEE02", false, T0 + 20 * MS);
    a = get("acme/a"); /* the account stays, with nothing held */
    ck_assert_uint_eq(a.held, 0);
    ck_assert_int_eq(a.oldest_ns, 0);
    ck_assert_int_eq(a.last_release_ns, T0 + 10 * MS); /* not paced: not a release of the pace */
}
END_TEST

START_TEST(test_accounts)
{
    /* p paused; c fully claimed; e released nothing yet; d and f released
     * at different times; g has nothing held */
    add("FFFFFF01", "acme/p", T0);
    add("FFFFFF02", "acme/c", T0 + 1 * MS);
    add("FFFFFF03", "acme/e", T0 + 2 * MS);
    add("FFFFFF04", "acme/d", T0 + 3 * MS);
    add("FFFFFF05", "acme/d", T0 + 4 * MS);
    add("FFFFFF06", "acme/f", T0 + 5 * MS);
    add("FFFFFF07", "acme/f", T0 + 6 * MS);
    add("FFFFFF08", "acme/g", T0 + 7 * MS);
    add("FFFFFF09", "acme/h", T0 + 8 * MS);
    ck_assert_int_eq(holdq_set_paused(st, "acme/p", true, &err), 1);
    struct holdq_msg m;
    ck_assert_int_eq(holdq_claim_head(st, "acme/c", T0 + 10 * MS, &m, &err), 1);
    done("FFFFFF06", true, T0 + 20 * MS); /* f released at 20 ms */
    done("FFFFFF04", true, T0 + 30 * MS); /* d at 30 ms */
    done("FFFFFF08", true, T0 + 40 * MS); /* g: nothing left */
    ck_assert_int_eq(holdq_claim_head(st, "acme/h", T0 + 50 * MS, &m, &err), 1);
    ck_assert(holdq_unclaim(st, "FFFFFF09", &err)); /* h: waiting again */
    char s[256];
    ready_ids(s, sizeof s);
    /* never released first (by name), then least recently released */
    ck_assert_str_eq(s, "acme/e,acme/h,acme/f,acme/d");
    struct holdq_account *v;
    size_t n;
    ck_assert(holdq_accounts(st, true, &v, &n, &err));
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(v[0].oldest_ns, T0 + 2 * MS);
    ck_assert_int_eq(v[1].oldest_ns, T0 + 8 * MS);
    ck_assert_int_eq(v[3].oldest_ns, T0 + 4 * MS);
    ck_assert_uint_eq(v[3].held, 1);
    ck_assert_int_eq(v[3].last_release_ns, T0 + 30 * MS);
    mem_free(v);

    ck_assert(holdq_accounts(st, false, &v, &n, &err));
    /* all with held messages or paused, by name; g (nothing held) not */
    ck_assert_uint_eq(n, 6);
    const char *want[] = { "acme/c", "acme/d", "acme/e", "acme/f", "acme/h", "acme/p" };
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(v[i].account, want[i]);
    ck_assert_int_eq(v[0].oldest_ns, T0 + 1 * MS);
    ck_assert_uint_eq(v[1].held, 1);
    ck_assert_int_eq(v[1].oldest_ns, T0 + 4 * MS);
    ck_assert_int_eq(v[1].last_release_ns, T0 + 30 * MS);
    ck_assert(v[5].paused);
    ck_assert_int_eq(v[5].oldest_ns, T0);
    mem_free(v);

    /* paused with nothing held: still listed (so that posternctl shows it) */
    done("FFFFFF01", false, T0 + 60 * MS);
    ck_assert(holdq_accounts(st, false, &v, &n, &err));
    ck_assert_uint_eq(n, 6);
    ck_assert_str_eq(v[5].account, "acme/p");
    ck_assert_uint_eq(v[5].held, 0);
    ck_assert_int_eq(v[5].oldest_ns, 0);
    mem_free(v);

    /* nothing at all */
    ck_assert_int_eq(holdq_set_paused(st, "acme/p", false, &err), 1);
    const char *rest[] = { "FFFFFF02", "FFFFFF03", "FFFFFF05", "FFFFFF07", "FFFFFF09" };
    for (size_t i = 0; i < 5; i++)
        done(rest[i], true, T0 + 70 * MS);
    ck_assert(holdq_accounts(st, true, &v, &n, &err));
    ck_assert_uint_eq(n, 0);
    mem_free(v);
    ck_assert(holdq_accounts(st, false, &v, &n, &err));
    ck_assert_uint_eq(n, 0);
    mem_free(v);
}
END_TEST

START_TEST(test_claim_head)
{
    add("GGGGGG01", "acme/a", T0);
    add("GGGGGG02", "acme/b", T0);
    add("GGGGGG03", "acme/a", T0);
    add("GGGGGG04", "acme/a", T0);
    struct holdq_msg m;
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + 5 * MS, &m, &err), 1);
    ck_assert_str_eq(m.queue_id, "GGGGGG01");
    ck_assert_str_eq(m.account, "acme/a");
    ck_assert_int_eq(m.claimed_ns, T0 + 5 * MS);
    ck_assert_int_eq(m.held_ns, T0);
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + 6 * MS, &m, &err), 1);
    ck_assert_str_eq(m.queue_id, "GGGGGG03");
    /* a claim at time 0 is still a claim */
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", 0, &m, &err), 1);
    ck_assert_str_eq(m.queue_id, "GGGGGG04");
    ck_assert_int_ne(m.claimed_ns, 0);
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + 7 * MS, &m, &err), 0);
    ck_assert_int_eq(holdq_claim_head(st, "acme/none", T0, &m, &err), 0);
    char s[256];
    list_ids(NULL, true, 0, s, sizeof s);
    ck_assert_str_eq(s, "GGGGGG01,GGGGGG03,GGGGGG04");
    /* claimed rows still count as held; the other account is untouched */
    ck_assert_uint_eq(get("acme/a").held, 3);
    ck_assert_uint_eq(get("acme/a").claimed, 3); /* kept by the triggers */
    ck_assert_uint_eq(get("acme/b").claimed, 0);
    ck_assert(holdq_unclaim(st, "GGGGGG03", &err));
    ck_assert_uint_eq(get("acme/a").claimed, 2);
    ck_assert(holdq_done(st, "GGGGGG01", true, T0 + 8 * MS, &err));
    ck_assert_uint_eq(get("acme/a").claimed, 1);
    ck_assert_uint_eq(get("acme/a").held, 2);
    /* the ready page, through the index: a (one waiting again) and b */
    struct holdq_account page[4];
    size_t np;
    ck_assert(holdq_accounts_ready(st, NULL, 4, page, &np, &err));
    ck_assert_uint_eq(np, 2);
    ck_assert(holdq_accounts_ready(st, &page[0], 4, page, &np, &err)); /* after the first */
    ck_assert_uint_eq(np, 1);
    ck_assert(holdq_claim_head(st, "acme/a", T0 + 9 * MS, &m, &err) == 1);
    ck_assert_int_eq(holdq_claim_head(st, "acme/b", T0, &m, &err), 1);
    ck_assert_str_eq(m.queue_id, "GGGGGG02");
}
END_TEST

START_TEST(test_unclaim)
{
    add("HHHHHH01", "acme/a", T0);
    add("HHHHHH02", "acme/a", T0);
    add("HHHHHH03", "acme/a", T0);
    struct holdq_msg m;
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0, &m, &err), 1);
    int64_t seq1 = m.seq;
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0, &m, &err), 1);
    ck_assert(holdq_unclaim(st, "HHHHHH01", &err));
    char s[256];
    list_ids(NULL, true, 0, s, sizeof s);
    ck_assert_str_eq(s, "HHHHHH02");
    /* back in its place: first again */
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + MS, &m, &err), 1);
    ck_assert_str_eq(m.queue_id, "HHHHHH01");
    ck_assert_int_eq(m.seq, seq1);
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + MS, &m, &err), 1);
    ck_assert_str_eq(m.queue_id, "HHHHHH03");
    ck_assert_uint_eq(get("acme/a").held, 3);
    ck_assert(holdq_unclaim(st, "ZZZZZZ99", &err)); /* unknown: nothing to do */
}
END_TEST

START_TEST(test_done)
{
    add("JJJJJJ01", "acme/a", T0);
    add("JJJJJJ02", "acme/a", T0);
    add("JJJJJJ03", "acme/b", T0);
    struct holdq_msg m;
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0, &m, &err), 1);
    done("JJJJJJ01", true, T0 + 100 * MS);
    struct holdq_account a = get("acme/a");
    ck_assert_uint_eq(a.held, 1);
    ck_assert_int_eq(a.last_release_ns, T0 + 100 * MS);
    ck_assert_int_eq(get("acme/b").last_release_ns, 0);
    /* gone, not paced: the row goes, the release time stays */
    done("JJJJJJ02", false, T0 + 200 * MS);
    a = get("acme/a");
    ck_assert_uint_eq(a.held, 0);
    ck_assert_int_eq(a.last_release_ns, T0 + 100 * MS);
    ck_assert_int_eq(rows("acme/a"), 0);
    /* unknown, or done twice: nothing changes */
    done("JJJJJJ01", true, T0 + 300 * MS);
    done("KKKKKK99", true, T0 + 300 * MS);
    ck_assert_int_eq(get("acme/a").last_release_ns, T0 + 100 * MS);
    ck_assert_int_eq(get("acme/b").last_release_ns, 0);
    ck_assert_uint_eq(get("acme/b").held, 1);
}
END_TEST

START_TEST(test_list)
{
    struct holdq_msg *v = (struct holdq_msg *)1;
    size_t n = 99;
    ck_assert(holdq_list(st, NULL, false, 0, &v, &n, &err));
    ck_assert_uint_eq(n, 0);
    mem_free(v);
    for (int i = 0; i < 40; i++) {
        char q[16];
        snprintf(q, sizeof q, "LLLL%04X", (unsigned)i);
        add(q, i % 2 == 0 ? "acme/even" : "acme/odd", T0 + i * MS);
    }
    struct holdq_msg m;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(holdq_claim_head(st, "acme/odd", T0, &m, &err), 1);
    ck_assert(holdq_list(st, NULL, false, 0, &v, &n, &err));
    ck_assert_uint_eq(n, 40); /* more than the first allocation */
    for (size_t i = 0; i < n; i++) {
        char q[16];
        snprintf(q, sizeof q, "LLLL%04X", (unsigned)i);
        ck_assert_str_eq(v[i].queue_id, q);
    }
    mem_free(v);
    char s[512];
    list_ids("acme/odd", false, 4, s, sizeof s);
    ck_assert_str_eq(s, "LLLL0001,LLLL0003,LLLL0005,LLLL0007");
    list_ids("acme/even", false, 2, s, sizeof s);
    ck_assert_str_eq(s, "LLLL0000,LLLL0002");
    list_ids(NULL, true, 0, s, sizeof s);
    ck_assert_str_eq(s, "LLLL0001,LLLL0003,LLLL0005");
    list_ids(NULL, true, 2, s, sizeof s);
    ck_assert_str_eq(s, "LLLL0001,LLLL0003");
    list_ids("acme/even", true, 0, s, sizeof s);
    ck_assert_str_eq(s, "");
    list_ids("acme/none", false, 0, s, sizeof s);
    ck_assert_str_eq(s, "");
    list_ids(NULL, false, 3, s, sizeof s);
    ck_assert_str_eq(s, "LLLL0000,LLLL0001,LLLL0002");
    list_ids(NULL, false, (size_t)-1, s, sizeof s); /* larger than SQLite's int64: all */
    ck_assert_uint_eq(strlen(s), 40 * 9 - 1);
}
END_TEST

START_TEST(test_set_paused_unknown)
{
    ck_assert_int_eq(holdq_set_paused(st, "acme/none", true, &err), 0);
    struct holdq_account a;
    ck_assert_int_eq(holdq_account_get(st, "acme/none", &a, &err), 0);
    add("MMMMMM01", "acme/a", T0);
    ck_assert_int_eq(holdq_set_paused(st, "acme/a", true, &err), 1);
    ck_assert_int_eq(holdq_set_paused(st, "acme/a", true, &err), 1); /* already: still found */
    ck_assert(get("acme/a").paused);
}
END_TEST

START_TEST(test_account_put)
{
    /* posternctl pauses an account before its first hold */
    struct holdq_account a = acct_of("acme/new", "acme", 10, 3600, 2, "hour");
    a.paused = true;
    a.held = 77;                /* never written */
    a.last_release_ns = 12345;  /* never written */
    ck_assert_msg(holdq_account_put(st, &a, &err), "%s", err.data);
    struct holdq_account g = get("acme/new");
    ck_assert(g.paused);
    ck_assert_uint_eq(g.held, 0);
    ck_assert_int_eq(g.last_release_ns, 0);
    ck_assert_str_eq(g.tenant, "acme");
    ck_assert_str_eq(g.rule_account, "new");
    ck_assert_uint_eq(g.count, 10);
    ck_assert_uint_eq(g.period_s, 3600);
    ck_assert_uint_eq(g.burst, 2);
    ck_assert_str_eq(g.unit, "hour");
    bool paused = false;
    ck_assert_int_eq(holdq_pending(st, "acme/new", &paused, &err), 0);
    ck_assert(paused);

    /* a known account: only paused changes */
    add("NNNNNN01", "acme/a", T0);
    done("NNNNNN01", true, T0 + MS);
    add("NNNNNN02", "acme/a", T0 + 2 * MS);
    struct holdq_account b = acct_of("acme/a", "other", 1, 1, 1, "second");
    b.paused = true;
    b.held = 50;
    ck_assert(holdq_account_put(st, &b, &err));
    g = get("acme/a");
    ck_assert(g.paused);
    ck_assert_str_eq(g.tenant, "acme");
    ck_assert_uint_eq(g.count, 600);
    ck_assert_uint_eq(g.period_s, 60);
    ck_assert_uint_eq(g.burst, 10);
    ck_assert_str_eq(g.unit, "minute");
    ck_assert_uint_eq(g.held, 1);
    ck_assert_int_eq(g.last_release_ns, T0 + MS);
    b.paused = false;
    ck_assert(holdq_account_put(st, &b, &err));
    ck_assert(!get("acme/a").paused);

    /* the first hold of an account put paused keeps it paused, takes the rule */
    add("NNNNNN03", "acme/new", T0 + 3 * MS);
    g = get("acme/new");
    ck_assert(g.paused);
    ck_assert_uint_eq(g.held, 1);
    ck_assert_uint_eq(g.count, 600);
    char s[64];
    ready_ids(s, sizeof s);
    ck_assert_str_eq(s, "acme/a");
}
END_TEST

/* A file store: closed and opened again, the schedule is the same. */
START_TEST(test_reopen)
{
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/test_holdq.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pace.sqlite", dir);
    store_close(st);
    st = store_open(path, 0, &err);
    ck_assert_msg(st != NULL, "%s", err.data);
    add("PPPPPP01", "acme/a", T0);
    add("PPPPPP02", "acme/a", T0);
    struct holdq_msg m;
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + MS, &m, &err), 1);
    store_close(st);
    st = store_open(path, 0, &err);
    ck_assert_msg(st != NULL, "%s", err.data);
    char s[64];
    list_ids(NULL, true, 0, s, sizeof s);
    ck_assert_str_eq(s, "PPPPPP01");
    ck_assert_uint_eq(get("acme/a").held, 2);
    ck_assert_int_eq(holdq_claim_head(st, "acme/a", T0 + MS, &m, &err), 1);
    ck_assert_str_eq(m.queue_id, "PPPPPP02");
    unit_rm_tree(dir);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_add_order_and_counts);
    tcase_add_test(tc, test_reused_queue_id);
    tcase_add_test(tc, test_add_rolled_back);
    tcase_add_test(tc, test_pending_paused);
    tcase_add_test(tc, test_account_get);
    tcase_add_test(tc, test_accounts);
    tcase_add_test(tc, test_claim_head);
    tcase_add_test(tc, test_unclaim);
    tcase_add_test(tc, test_done);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_set_paused_unknown);
    tcase_add_test(tc, test_account_put);
    tcase_add_test(tc, test_reopen);
}

UNIT_MAIN("holdq", add_tests)
