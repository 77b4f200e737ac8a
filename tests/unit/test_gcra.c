/* test_gcra.c: unit tests of lib/gcra.c, the GCRA bucket of postern's
 * pacing: a full bucket lets the burst go at once, then one message per
 * interval; a paced account that keeps sending every message at its
 * release time keeps exactly the rate over a long run; idle time refills
 * the burst and no more; gcra_wait() changes nothing; hold mode (take at
 * once) schedules releases one interval apart in arrival order; the
 * extreme rates and bursts the rules accept do not overflow. */
#include <stdint.h>

#include "gcra.h"
#include "unit.h"

#define NS 1000000000LL
#define T0 (1700000000LL * NS)   /* a clock reading well above 0 */

START_TEST(test_rate_init)
{
    struct gcra_rate r;
    ck_assert(gcra_rate_init(&r, 600, 60, 10));  /* 600/minute, burst 10 */
    ck_assert_int_eq(r.interval_ns, NS / 10);
    ck_assert_int_eq(r.tolerance_ns, 9 * (NS / 10));
    ck_assert(gcra_rate_init(&r, 3, 1, 1));       /* 333,333,333.3 ns: rounded up, never faster */
    ck_assert_int_eq(r.interval_ns, 333333334);
    ck_assert_int_eq(r.tolerance_ns, 0);
    ck_assert(!gcra_rate_init(&r, 0, 60, 1));
    ck_assert(!gcra_rate_init(&r, 1, 0, 1));
    ck_assert(!gcra_rate_init(&r, 1, 60, 0));
}
END_TEST

START_TEST(test_burst_then_rate)
{
    struct gcra_rate r;
    struct gcra g = { 0 };
    ck_assert(gcra_rate_init(&r, 600, 60, 10));
    ck_assert_uint_eq(gcra_available(&g, &r, T0), 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(gcra_wait(&g, &r, T0), 0);
        ck_assert_int_eq(gcra_take(&g, &r, T0), 0);
    }
    ck_assert_uint_eq(gcra_available(&g, &r, T0), 0);
    /* the 11th waits one interval, the 12th two (hold mode: taken at once) */
    ck_assert_int_eq(gcra_wait(&g, &r, T0), NS / 10);
    ck_assert_int_eq(gcra_wait(&g, &r, T0), NS / 10); /* asking changes nothing */
    ck_assert_int_eq(gcra_take(&g, &r, T0), NS / 10);
    ck_assert_int_eq(gcra_take(&g, &r, T0), 2 * (NS / 10));
    /* half an interval later the 13th waits 2.5 intervals */
    ck_assert_int_eq(gcra_wait(&g, &r, T0 + NS / 20), 3 * (NS / 10) - NS / 20);
}
END_TEST

/* 200 messages submitted at once in hold mode, 600/minute, burst 10: the
 * first 10 at once, then one every 100 ms, in arrival order: the last at
 * 19 s, i.e. (200 - 10) x 100 ms. */
START_TEST(test_hold_schedule)
{
    struct gcra_rate r;
    struct gcra g = { 0 };
    ck_assert(gcra_rate_init(&r, 600, 60, 10));
    int64_t prev = -1;
    for (int i = 0; i < 200; i++) {
        int64_t at = T0 + i + gcra_take(&g, &r, T0 + i); /* submitted 1 ns apart */
        ck_assert_int_ge(at, prev);
        if (i >= 10)
            ck_assert_int_eq(at, T0 + (int64_t)(i - 9) * (NS / 10));
        prev = at;
    }
    ck_assert_int_eq(prev, T0 + 190 * (NS / 10));
}
END_TEST

/* A sender that sends each message as soon as it may: over 10,000
 * messages at 7/second the pace is exact (to the rounding of the
 * interval), whatever the burst. */
START_TEST(test_long_run_rate)
{
    struct gcra_rate r;
    struct gcra g = { 0 };
    ck_assert(gcra_rate_init(&r, 7, 1, 5));
    int64_t now = T0;
    for (int i = 0; i < 10000; i++) {
        now += gcra_wait(&g, &r, now);
        ck_assert_int_eq(gcra_take(&g, &r, now), 0);
    }
    /* 9,995 intervals after the burst of 5 */
    ck_assert_int_eq(now - T0, 9995 * r.interval_ns);
}
END_TEST

/* Idle time refills the bucket up to the burst, never beyond. */
START_TEST(test_idle_refill)
{
    struct gcra_rate r;
    struct gcra g = { 0 };
    ck_assert(gcra_rate_init(&r, 1, 1, 3));
    for (int i = 0; i < 3; i++)
        gcra_take(&g, &r, T0);
    ck_assert_uint_eq(gcra_available(&g, &r, T0), 0);
    ck_assert_uint_eq(gcra_available(&g, &r, T0 + NS), 1);
    ck_assert_uint_eq(gcra_available(&g, &r, T0 + 2 * NS), 2);
    ck_assert_uint_eq(gcra_available(&g, &r, T0 + 3 * NS), 3);
    ck_assert_uint_eq(gcra_available(&g, &r, T0 + 3600 * NS), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gcra_take(&g, &r, T0 + 3600 * NS), 0);
    ck_assert_int_eq(gcra_wait(&g, &r, T0 + 3600 * NS), NS);
}
END_TEST

/* The extremes of the rules' grammar: 1,000,000,000/second (an interval
 * of 1 ns), 1/day with a burst of 1,000,000 (a tolerance of 2,700 years:
 * saturated, not wrapped). */
START_TEST(test_extremes)
{
    struct gcra_rate r;
    struct gcra g = { 0 };
    ck_assert(gcra_rate_init(&r, 1000000000, 1, 1000000));
    ck_assert_int_eq(r.interval_ns, 1);
    ck_assert_int_eq(gcra_take(&g, &r, T0), 0);
    ck_assert(gcra_rate_init(&r, 1, 86400, 1000000));
    ck_assert_int_eq(r.interval_ns, 86400 * NS);
    ck_assert_int_ge(r.tolerance_ns, 0);
    struct gcra h = { 0 };
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(gcra_take(&h, &r, T0), 0);
    ck_assert_int_ge(h.tat_ns, T0);
    ck_assert(gcra_rate_init(&r, 1, UINT64_MAX, UINT64_MAX)); /* saturated, not wrapped */
    ck_assert_int_gt(r.interval_ns, 0);
    ck_assert_int_eq(r.tolerance_ns, INT64_MAX);
    struct gcra k = { INT64_MAX - 5 };
    ck_assert_int_eq(gcra_take(&k, &r, T0), 0);
    ck_assert_int_eq(k.tat_ns, INT64_MAX);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, test_rate_init);
    tcase_add_test(tc, test_burst_then_rate);
    tcase_add_test(tc, test_hold_schedule);
    tcase_add_test(tc, test_long_run_rate);
    tcase_add_test(tc, test_idle_refill);
    tcase_add_test(tc, test_extremes);
}

UNIT_MAIN("gcra", add_tests)
