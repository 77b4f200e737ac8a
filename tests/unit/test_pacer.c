/* test_pacer.c: unit tests of milter/pacer.c, the send-rate buckets of
 * postern-milter: the three modes (delay within max_delay and its fall
 * back to defer, defer, hold with release times in arrival order); an
 * account's bucket and its tenant's together (the longer wait wins, two
 * accounts of one tenant apart); a restart (close, open the same file)
 * keeps the pace; 4 threads at once admit exactly the burst; a store that
 * cannot be written charges nothing and says why. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "pacer.h"
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

/* 200 messages at once, 600/minute, burst 10: 10 go, 190 held, released
 * 100 ms apart in arrival order. */
START_TEST(test_hold)
{
    struct pacer *p = open_ok();
    struct pace pc = pace_of(600, 60, 10, PACE_HOLD);
    struct pacer_bucket b = { "acme/news@acme.example", &pc };
    int64_t last = 0;
    for (int i = 0; i < 200; i++) {
        struct pacer_decision d = decide(p, &b, 1, PACE_HOLD, 0, T0);
        if (i < 10) {
            ck_assert_int_eq(d.verdict, PACER_GO);
            continue;
        }
        ck_assert_int_eq(d.verdict, PACER_HOLD);
        ck_assert_int_eq(d.wait_ns, (int64_t)(i - 9) * (NS / 10));
        ck_assert_int_gt(d.wait_ns, last);
        last = d.wait_ns;
    }
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
    struct pace pc = pace_of(600, 60, 10, PACE_HOLD);
    struct pacer_bucket b = { "acme/news@acme.example", &pc };
    for (int i = 0; i < 50; i++)
        decide(p, &b, 1, PACE_HOLD, 0, T0);
    int64_t tat;
    ck_assert(pacer_bucket_tat(p, b.key, &tat));
    pacer_close(p);
    p = open_ok();
    int64_t tat2;
    ck_assert(pacer_bucket_tat(p, b.key, &tat2));
    ck_assert_int_eq(tat2, tat);
    struct pacer_decision d = decide(p, &b, 1, PACE_HOLD, 0, T0 + NS);
    ck_assert_int_eq(d.verdict, PACER_HOLD);
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

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_delay_then_defer);
    tcase_add_test(tc, test_defer);
    tcase_add_test(tc, test_hold);
    tcase_add_test(tc, test_account_and_tenant);
    tcase_add_test(tc, test_restart_keeps_pace);
    tcase_add_test(tc, test_threads_admit_burst);
    tcase_add_test(tc, test_store_failure);
}

UNIT_MAIN("pacer", add_tests)
