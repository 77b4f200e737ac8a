/* test_counters_mem.c: unit tests of the memory backend of quota counters
 * (counters_mem.c): the same cases as the SQLite backend's (limits,
 * atomicity, overflow, calendar windows in non-UTC zones, garbage
 * collection, listing and resetting by key prefix), then what only it
 * has: deltas for the journal, batches taken back, loading from the
 * store, a table of many entries, and a random sequence that the SQLite
 * and the memory backends must answer identically. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "counters.h"
#include "log.h"
#include "ptime.h"
#include "store.h"
#include "unit.h"

/* --- helpers ------------------------------------------------------------- */

/* "2026-10-25T12:00:00Z" -> Unix seconds. */
static time_t iso(const char *s)
{
    struct tm tm = { 0 };
    ck_assert_int_eq(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static int64_t us(time_t t)
{
    return (int64_t)t * 1000000;
}

/* A memory backend and an injected clock. */
struct fix {
    struct counters *c;
    int64_t now;
    struct buf err;
};

static void fix_open(struct fix *f, const char *tz, const char *now)
{
    ck_assert(tz_select(tz));
    f->now = now != NULL ? us(iso(now)) : 0;
    f->c = counters_mem_open(clock_fixed(&f->now));
    buf_init(&f->err);
}

static void fix_close(struct fix *f)
{
    counters_close(f->c);
    buf_free(&f->err);
}

static int add1(struct fix *f, const char *key, enum window_unit u, uint64_t add, uint64_t limit,
                struct counter_result *res)
{
    struct counter_req req = { key, u, add, limit };
    struct counter_result r;
    int rc = counters_check_add(f->c, &req, 1, true, res != NULL ? res : &r, &f->err);
    ck_assert_msg(rc != COUNTERS_ERROR, "check_add: %s", f->err.data);
    return rc;
}

static uint64_t get1(struct fix *f, const char *key, enum window_unit u)
{
    uint64_t v = 12345;
    time_t s, e;
    ck_assert_msg(counters_get(f->c, key, u, &v, &s, &e, &f->err), "get: %s", f->err.data);
    return v;
}

/* Collected rows, "key/unit=value" joined by ' ' in the order given
 * (with_window: "key/unit@start+length=value"). */
struct rows {
    struct buf text;
    size_t n, stop_after;
    bool with_window;
};

static bool rows_cb(const struct counter_row *row, void *arg)
{
    struct rows *r = arg;
    if (r->text.len > 0)
        buf_putc(&r->text, ' ');
    buf_printf(&r->text, "%s/%s", row->key, window_unit_name(row->unit));
    if (r->with_window)
        buf_printf(&r->text, "@%lld+%lld", (long long)row->window_start,
                   (long long)(row->window_end - row->window_start));
    buf_printf(&r->text, "=%" PRIu64, row->value);
    ck_assert_int_lt(row->window_start, row->window_end);
    r->n++;
    return r->stop_after == 0 || r->n < r->stop_after;
}

static void rows_init(struct rows *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->text);
}

static void rows_reset(struct rows *r)
{
    buf_reset(&r->text);
    r->n = 0;
}

/* counters_list(c, prefix) as text (caller frees). */
static char *list_text(struct counters *c, const char *prefix, bool with_window)
{
    struct rows r;
    struct buf err;
    rows_init(&r);
    buf_init(&err);
    r.with_window = with_window;
    ck_assert_msg(counters_list(c, prefix, rows_cb, &r, &err), "list: %s", err.data);
    buf_free(&err);
    char *text = buf_detach(&r.text);
    buf_free(&r.text);
    return text;
}

static void setup(void)
{
    log_open("test_counters_mem", false, false, LOG_LVL_DEBUG);
    ck_assert(tz_select("UTC"));
}

/* --- limits ------------------------------------------------------------- */

/* Successive adds on one counter: expected status and value after each. */
static const struct limit_case {
    uint64_t limit;
    struct { uint64_t add; int rc; uint64_t value; } step[6];
    size_t nsteps;
} limit_cases[] = {
    { 3, { { 1, COUNTERS_OK, 1 }, { 1, COUNTERS_OK, 2 }, { 1, COUNTERS_OK, 3 },
           { 1, COUNTERS_EXCEEDED, 3 }, { 0, COUNTERS_OK, 3 } }, 5 },
    { 3, { { 3, COUNTERS_OK, 3 }, { 1, COUNTERS_EXCEEDED, 3 } }, 2 },
    { 3, { { 4, COUNTERS_EXCEEDED, 0 }, { 2, COUNTERS_OK, 2 }, { 2, COUNTERS_EXCEEDED, 2 },
           { 1, COUNTERS_OK, 3 } }, 4 },
    { 0, { { 0, COUNTERS_OK, 0 }, { 1, COUNTERS_EXCEEDED, 0 } }, 2 },
    /* near UINT64_MAX: exact fit allowed, overflow never wraps */
    { COUNTER_NO_LIMIT, { { UINT64_MAX - 1, COUNTERS_OK, UINT64_MAX - 1 },
                          { 1, COUNTERS_OK, UINT64_MAX },
                          { 1, COUNTERS_EXCEEDED, UINT64_MAX },
                          { UINT64_MAX, COUNTERS_EXCEEDED, UINT64_MAX } }, 4 },
    { COUNTER_NO_LIMIT, { { 2, COUNTERS_OK, 2 }, { UINT64_MAX, COUNTERS_EXCEEDED, 2 },
                          { UINT64_MAX - 2, COUNTERS_OK, UINT64_MAX } }, 3 },
    { UINT64_MAX - 5, { { UINT64_MAX - 5, COUNTERS_OK, UINT64_MAX - 5 },
                        { 1, COUNTERS_EXCEEDED, UINT64_MAX - 5 } }, 2 },
};

START_TEST(test_mem_limits)
{
    const struct limit_case *lc = &limit_cases[_i];
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    for (size_t i = 0; i < lc->nsteps; i++) {
        struct counter_result r;
        uint64_t before = get1(&f, "k", WIN_DAY);
        int rc = add1(&f, "k", WIN_DAY, lc->step[i].add, lc->limit, &r);
        ck_assert_msg(rc == lc->step[i].rc, "case %d step %zu: rc %d", _i, i, rc);
        ck_assert_uint_eq(r.value, before);
        ck_assert_uint_eq(r.after, lc->step[i].value);
        ck_assert_uint_eq(r.limit, lc->limit);
        ck_assert(r.exceeded == (rc == COUNTERS_EXCEEDED));
        ck_assert_uint_eq(get1(&f, "k", WIN_DAY), lc->step[i].value);
    }
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_multi_req_atomic)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    struct counter_req reqs[3] = {
        { "acme/messages", WIN_DAY, 1, 10 },
        { "acme/recipients", WIN_DAY, 5, 3 },
        { "acme/bytes", WIN_MONTH, 1000, COUNTER_NO_LIMIT },
    };
    struct counter_result res[3];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 3, true, res, &f.err), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(counters_first_exceeded(res, 3), 1);
    ck_assert(!res[0].exceeded && res[1].exceeded && !res[2].exceeded);
    ck_assert_uint_eq(res[1].value, 0);
    ck_assert_uint_eq(res[1].limit, 3);
    ck_assert_int_eq(res[1].window_end, iso("2026-03-11T00:00:00Z"));
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_eq(res[i].after, res[i].value);
    ck_assert_uint_eq(get1(&f, "acme/messages", WIN_DAY), 0);
    ck_assert_uint_eq(get1(&f, "acme/bytes", WIN_MONTH), 0);
    ck_assert_uint_eq(counters_mem_size(f.c), 0);   /* nothing was created */
    /* within limits: all applied together */
    reqs[1].limit = 5;
    ck_assert_int_eq(counters_check_add(f.c, reqs, 3, true, res, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(counters_first_exceeded(res, 3), 3);
    ck_assert_uint_eq(get1(&f, "acme/messages", WIN_DAY), 1);
    ck_assert_uint_eq(get1(&f, "acme/recipients", WIN_DAY), 5);
    ck_assert_uint_eq(get1(&f, "acme/bytes", WIN_MONTH), 1000);
    ck_assert_uint_eq(res[2].after, 1000);
    ck_assert_int_eq(res[2].window_start, iso("2026-03-01T00:00:00Z"));
    ck_assert_int_eq(res[2].window_end, iso("2026-04-01T00:00:00Z"));
    ck_assert_uint_eq(counters_mem_size(f.c), 3);
    struct buf d;
    buf_init(&d);
    counters_describe(reqs, res, 3, &d);
    ck_assert_str_eq(d.data, "acme/messages/day=0+1/10 acme/recipients/day=0+5/5 "
                             "acme/bytes/month=0+1000/-");
    buf_free(&d);
    /* n = 0 is a no-op */
    ck_assert_int_eq(counters_check_add(f.c, reqs, 0, true, res, &f.err), COUNTERS_OK);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_same_counter_twice)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    struct counter_req reqs[3] = { { "k", WIN_HOUR, 2, 3 }, { "k", WIN_HOUR, 2, 3 },
                                   { "k", WIN_DAY, 1, 1 } };
    struct counter_result res[3];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(counters_first_exceeded(res, 2), 1);
    ck_assert_uint_eq(res[1].value, 2);
    ck_assert_uint_eq(res[1].after, 2);
    ck_assert_uint_eq(get1(&f, "k", WIN_HOUR), 0);
    reqs[0].limit = reqs[1].limit = 4;
    ck_assert_int_eq(counters_check_add(f.c, reqs, 3, true, res, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(res[0].after, 2);
    ck_assert_uint_eq(res[1].value, 2);
    ck_assert_uint_eq(res[1].after, 4);
    ck_assert_uint_eq(res[2].value, 0);   /* same key, other unit: another counter */
    ck_assert_uint_eq(get1(&f, "k", WIN_HOUR), 4);
    ck_assert_uint_eq(get1(&f, "k", WIN_DAY), 1);
    ck_assert_uint_eq(counters_mem_size(f.c), 2);
    /* an earlier req that exceeds is not seen as added by a later one */
    struct counter_req r2[2] = { { "z", WIN_DAY, 5, 1 }, { "z", WIN_DAY, 1, 10 } };
    ck_assert_int_eq(counters_check_add(f.c, r2, 2, true, res, &f.err), COUNTERS_EXCEEDED);
    ck_assert(res[0].exceeded && !res[1].exceeded);
    ck_assert_uint_eq(res[1].value, 0);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_look_only)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    ck_assert_int_eq(add1(&f, "k", WIN_DAY, 8, 10, NULL), COUNTERS_OK);
    struct counter_req req = { "k", WIN_DAY, 2, 10 };
    struct counter_result r;
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(r.value, 8);
    ck_assert_uint_eq(r.after, 8);
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    req.add = 3;
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_EXCEEDED);
    ck_assert(r.exceeded);
    ck_assert_uint_eq(get1(&f, "k", WIN_DAY), 8);
    /* looking at a counter never written creates nothing, nor does get */
    req.key = "fresh";
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(get1(&f, "fresh", WIN_DAY), 0);
    ck_assert_uint_eq(counters_mem_size(f.c), 1);
    /* a committed add of 0 creates its row, as the SQLite upsert does */
    ck_assert_int_eq(add1(&f, "zero", WIN_DAY, 0, 10, NULL), COUNTERS_OK);
    ck_assert_uint_eq(counters_mem_size(f.c), 2);
    char *l = list_text(f.c, "", false);
    ck_assert_str_eq(l, "k/day=8 zero/day=0");
    mem_free(l);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_bad_request)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    struct counter_req reqs[2] = { { "ok", WIN_DAY, 1, 5 }, { NULL, WIN_DAY, 1, 5 } };
    struct counter_result res[2];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_ERROR);
    ck_assert_msg(strstr(f.err.data, "request 1") != NULL, "%s", f.err.data);
    reqs[1].key = "";
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_ERROR);
    reqs[1].key = "x";
    reqs[1].unit = (enum window_unit)WIN_COUNT;
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_ERROR);
    uint64_t v;
    time_t s, e;
    ck_assert(!counters_get(f.c, NULL, WIN_DAY, &v, &s, &e, &f.err));
    ck_assert_uint_eq(get1(&f, "ok", WIN_DAY), 0);
    ck_assert_uint_eq(counters_mem_size(f.c), 0);
    fix_close(&f);
}
END_TEST

/* --- calendar windows ---------------------------------------------------- */

static const struct window_case {
    const char *tz;
    enum window_unit unit;
    const char *now, *start, *end;
} window_cases[] = {
    /* Paris winter (+01:00): the day starts at local midnight = 23:00Z */
    { "Europe/Paris", WIN_DAY, "2026-03-10T23:30:00Z", "2026-03-10T23:00:00Z", "2026-03-11T23:00:00Z" },
    /* 2026-10-25, end of DST: a 25 h day */
    { "Europe/Paris", WIN_DAY, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z" },
    /* 2026-03-29, start of DST: a 23 h day */
    { "Europe/Paris", WIN_DAY, "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z" },
    /* Sunday 23:30 local is still in the week of Monday 2 March */
    { "Europe/Paris", WIN_WEEK, "2026-03-08T22:30:00Z", "2026-03-01T23:00:00Z", "2026-03-08T23:00:00Z" },
    { "Europe/Paris", WIN_WEEK, "2026-10-25T12:00:00Z", "2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-10-25T12:00:00Z", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-10-31T23:00:00Z", "2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-12-31T23:30:00Z", "2026-12-31T23:00:00Z", "2027-01-31T23:00:00Z" },
    { "Europe/Paris", WIN_HOUR, "2026-03-10T10:15:00Z", "2026-03-10T10:00:00Z", "2026-03-10T11:00:00Z" },
    { "Europe/Paris", WIN_MINUTE, "2026-03-10T10:15:42Z", "2026-03-10T10:15:00Z", "2026-03-10T10:16:00Z" },
    /* Kolkata (+05:30): hours start at :30 UTC, days at 18:30Z */
    { "Asia/Kolkata", WIN_HOUR, "2026-03-10T10:45:00Z", "2026-03-10T10:30:00Z", "2026-03-10T11:30:00Z" },
    { "Asia/Kolkata", WIN_HOUR, "2026-03-10T11:29:59Z", "2026-03-10T10:30:00Z", "2026-03-10T11:30:00Z" },
    { "Asia/Kolkata", WIN_DAY, "2026-03-10T20:00:00Z", "2026-03-10T18:30:00Z", "2026-03-11T18:30:00Z" },
    { "Asia/Kolkata", WIN_WEEK, "2026-03-08T18:30:00Z", "2026-03-08T18:30:00Z", "2026-03-15T18:30:00Z" },
    { "Asia/Kolkata", WIN_MONTH, "2026-02-28T18:29:59Z", "2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z" },
    { "UTC", WIN_DAY, "2026-03-10T23:30:00Z", "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z" },
};

START_TEST(test_mem_windows)
{
    const struct window_case *wc = &window_cases[_i];
    struct fix f;
    fix_open(&f, wc->tz, wc->now);
    time_t start = iso(wc->start), end = iso(wc->end);
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "w", wc->unit, 1, 100, &r), COUNTERS_OK);
    ck_assert_msg(r.window_start == start && r.window_end == end,
                  "%s %s at %s: [%lld, %lld)", wc->tz, window_unit_name(wc->unit), wc->now,
                  (long long)r.window_start, (long long)r.window_end);
    ck_assert_int_eq(add1(&f, "w", wc->unit, 100, 100, &r), COUNTERS_EXCEEDED);
    ck_assert_int_eq(r.window_end, end);
    f.now = us(end) - 1;                 /* last µs of the window */
    ck_assert_uint_eq(get1(&f, "w", wc->unit), 1);
    f.now = us(end);                     /* the next window starts at 0 */
    uint64_t v;
    time_t s, e;
    ck_assert(counters_get(f.c, "w", wc->unit, &v, &s, &e, &f.err));
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(s, end);
    ck_assert_int_eq(add1(&f, "w", wc->unit, 1, 1, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_start, end);
    f.now = us(start) - 1;               /* and so was the previous one */
    ck_assert_uint_eq(get1(&f, "w", wc->unit), 0);
    f.now = us(start);                   /* the old window kept its value */
    ck_assert_uint_eq(get1(&f, "w", wc->unit), 1);
    ck_assert_uint_eq(counters_mem_size(f.c), 2);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_day_resets_at_local_midnight)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-03-10T22:59:59Z");   /* 23:59:59 local */
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_OK);
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_EXCEEDED);
    f.now = us(iso("2026-03-10T23:00:00Z"));                /* local midnight */
    ck_assert_uint_eq(get1(&f, "d", WIN_DAY), 0);
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_OK);
    f.now = us(iso("2026-03-11T00:00:00Z"));                /* UTC midnight: no reset */
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(get1(&f, "d", WIN_DAY), 1);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_dst_day_is_25_hours)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-10-24T22:00:00Z");   /* 25 Oct 00:00 CEST */
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 10, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_end - r.window_start, 25 * 3600);
    f.now = us(iso("2026-10-25T22:59:59Z"));                /* 23:59:59 CET, 25 h later */
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 10, &r), COUNTERS_OK);
    ck_assert_uint_eq(r.after, 2);
    ck_assert_int_eq(add1(&f, "m", WIN_MONTH, 7, 10, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_end, iso("2026-10-31T23:00:00Z"));
    f.now = us(iso("2026-10-31T22:59:59Z"));
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 7);
    f.now = us(iso("2026-10-31T23:00:00Z"));
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 0);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_week_starts_monday_local)
{
    struct fix f;
    fix_open(&f, "Asia/Kolkata", "2026-03-08T18:29:59Z");   /* Sunday 23:59:59 IST */
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "w", WIN_WEEK, 1, 10, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_end, iso("2026-03-08T18:30:00Z"));
    f.now = us(iso("2026-03-08T18:30:00Z"));               /* Monday 00:00 IST */
    ck_assert_uint_eq(get1(&f, "w", WIN_WEEK), 0);
    f.now = us(iso("2026-03-09T00:00:00Z"));
    ck_assert_int_eq(add1(&f, "w", WIN_WEEK, 1, 10, &r), COUNTERS_OK);
    ck_assert_uint_eq(r.after, 1);
    fix_close(&f);
}
END_TEST

/* Sub-second clocks: a time before 1970 rounds down, as in the SQLite backend. */
START_TEST(test_mem_clock_floor)
{
    struct fix f;
    fix_open(&f, "UTC", NULL);
    f.now = -1;                          /* 1969-12-31T23:59:59.999999 */
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "k", WIN_MINUTE, 1, 10, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_start, -60);
    ck_assert_int_eq(r.window_end, 0);
    fix_close(&f);
}
END_TEST

/* --- garbage collection --------------------------------------------------- */

/* The entries of key in every window: counted by resets in a batch that
 * is rolled back, which leaves the table as it was. */
static size_t rows_of(struct fix *f, const char *key)
{
    const char *prefixes[1] = { key };
    size_t n = 0, total = 0;
    counters_mem_batch_begin(f->c);
    for (int u = 0; u < WIN_COUNT; u++) {
        ck_assert(counters_reset(f->c, prefixes, 1, u, NULL, NULL, &n, &f->err));
        total += n;
    }
    counters_mem_batch_rollback(f->c);
    return total;
}

START_TEST(test_mem_gc)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");   /* first call: GC runs */
    add1(&f, "old", WIN_DAY, 1, 10, NULL);          /* window ends 11 March 00:00 */
    add1(&f, "old", WIN_MINUTE, 1, 10, NULL);       /* ends 10 March 12:01 */
    f.now = us(iso("2026-03-11T18:00:00Z"));        /* GC due */
    add1(&f, "other", WIN_DAY, 1, 10, NULL);
    ck_assert_uint_eq(rows_of(&f, "old"), 1);       /* the minute went, the day ended < 1 day ago */
    f.now = us(iso("2026-03-12T00:30:00Z"));        /* due again, the day ended > 1 day ago */
    add1(&f, "other", WIN_DAY, 1, 10, NULL);
    ck_assert_uint_eq(rows_of(&f, "old"), 0);
    ck_assert_uint_eq(rows_of(&f, "other"), 2);     /* 11 and 12 March */
    ck_assert_uint_eq(counters_mem_size(f.c), 2);
    /* not on every call: at most once an hour (a window of 1970, written
     * with the clock set back) */
    f.now = us(iso("1970-01-01T12:00:00Z"));
    add1(&f, "ancient", WIN_DAY, 5, 10, NULL);
    f.now = us(iso("2026-03-12T01:00:00Z"));
    add1(&f, "other", WIN_DAY, 1, 10, NULL);
    ck_assert_uint_eq(rows_of(&f, "ancient"), 1);
    /* an exceeded check still collects; a look-only check never does */
    f.now = us(iso("2026-03-12T02:00:00Z"));
    struct counter_req req = { "other", WIN_DAY, 1, 10 };
    struct counter_result r;
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(rows_of(&f, "ancient"), 1);
    ck_assert_int_eq(add1(&f, "other", WIN_DAY, 100, 10, NULL), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(rows_of(&f, "ancient"), 0);
    ck_assert_uint_eq(get1(&f, "other", WIN_DAY), 2);
    /* the collected entries' deltas were made; the gc made none */
    struct counter_deltas d;
    counter_deltas_init(&d);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 6);
    counter_deltas_free(&d);
    fix_close(&f);
}
END_TEST

/* A window is dropped when it ended more than a day ago: not at exactly
 * one day (as the SQLite backend's window_end < now - 86400). */
START_TEST(test_mem_gc_boundary)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    add1(&f, "edge", WIN_MINUTE, 1, 10, NULL);      /* ends 12:01:00; GC ran */
    f.now = us(iso("2026-03-11T12:01:00Z")) + _i * 1000000;
    add1(&f, "other", WIN_DAY, 1, 10, NULL);        /* GC due */
    ck_assert_uint_eq(rows_of(&f, "edge"), (_i == 0 ? 1u : 0u));
    fix_close(&f);
}
END_TEST

/* --- listing and resetting by key prefix ------------------------------------ */

/* Counters of two tenants whose names share a prefix, in several units,
 * and a row of yesterday's day window (written with the clock set back). */
static void seed_prefix(struct fix *f)
{
    add1(f, "t:acme:bytes", WIN_DAY, 100, COUNTER_NO_LIMIT, NULL);
    add1(f, "t:acme:messages", WIN_HOUR, 2, 10, NULL);
    add1(f, "a:acme:alice@acme.example:messages", WIN_DAY, 3, 500, NULL);
    add1(f, "a:acme:alice@acme.example:messages", WIN_MONTH, 4, 5000, NULL);
    add1(f, "a:acme:bob@acme.example:messages", WIN_DAY, 5, 500, NULL);
    add1(f, "a:acme2:carol@acme2.example:messages", WIN_DAY, 6, 500, NULL);
    add1(f, "t:acme2:bytes", WIN_DAY, 7, COUNTER_NO_LIMIT, NULL);
    add1(f, "a:acme:\xff\xffodd:messages", WIN_DAY, 8, 500, NULL);
    int64_t now = f->now;
    f->now = us(iso("2026-03-09T12:00:00Z"));
    add1(f, "a:acme:alice@acme.example:messages", WIN_DAY, 99, 500, NULL);
    f->now = now;
}

static const struct list_case {
    const char *prefix;
    const char *want;
} list_cases[] = {
    { "a:acme:",
      "a:acme:alice@acme.example:messages/day=3 a:acme:bob@acme.example:messages/day=5 "
      "a:acme:\xff\xffodd:messages/day=8 a:acme:alice@acme.example:messages/month=4" },
    { "t:acme:", "t:acme:messages/hour=2 t:acme:bytes/day=100" },
    { "t:acme", "t:acme:messages/hour=2 t:acme2:bytes/day=7 t:acme:bytes/day=100" },
    { "a:acme:alice@acme.example:", "a:acme:alice@acme.example:messages/day=3 "
                                    "a:acme:alice@acme.example:messages/month=4" },
    { "a:acme:\xff", "a:acme:\xff\xffodd:messages/day=8" },
    { "a:acme:\xff\xff", "a:acme:\xff\xffodd:messages/day=8" },
    { "a:nobody:", "" },
    { "t:acme:bytes", "t:acme:bytes/day=100" },
    { "t:acme:bytes+", "" },
    { "", "t:acme:messages/hour=2 a:acme2:carol@acme2.example:messages/day=6 "
          "a:acme:alice@acme.example:messages/day=3 a:acme:bob@acme.example:messages/day=5 "
          "a:acme:\xff\xffodd:messages/day=8 t:acme2:bytes/day=7 t:acme:bytes/day=100 "
          "a:acme:alice@acme.example:messages/month=4" },
};

START_TEST(test_mem_list)
{
    const struct list_case *lc = &list_cases[_i];
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    seed_prefix(&f);
    char *l = list_text(f.c, lc->prefix, false);
    ck_assert_str_eq(l, lc->want);
    mem_free(l);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_list_window_and_stop)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-03-10T22:59:59Z");   /* 23:59:59 local */
    add1(&f, "t:x:messages", WIN_DAY, 1, 10, NULL);
    add1(&f, "t:x:bytes", WIN_DAY, 2, 10, NULL);
    struct rows r;
    rows_init(&r);
    r.stop_after = 1;
    ck_assert(counters_list(f.c, "t:x:", rows_cb, &r, &f.err));
    ck_assert_str_eq(r.text.data, "t:x:bytes/day=2");   /* stopped after one */
    rows_reset(&r);
    r.stop_after = 0;
    r.with_window = true;
    ck_assert(counters_list(f.c, "t:x:", rows_cb, &r, &f.err));
    ck_assert_str_eq(r.text.data, "t:x:bytes/day@1773097200+86400=2 "
                                  "t:x:messages/day@1773097200+86400=1");
    ck_assert(counters_list(f.c, "t:x:", NULL, NULL, &f.err));   /* no callback */
    f.now = us(iso("2026-03-10T23:00:00Z"));               /* local midnight: a new day */
    rows_reset(&r);
    ck_assert(counters_list(f.c, "t:x:", rows_cb, &r, &f.err));
    ck_assert_str_eq(r.text.data, "");
    ck_assert(counters_list(f.c, NULL, rows_cb, &r, &f.err));   /* NULL: every key */
    ck_assert_uint_eq(r.n, 0);
    ck_assert_uint_eq(counters_mem_size(f.c), 2);
    buf_free(&r.text);
    fix_close(&f);
}
END_TEST

static const struct reset_case {
    const char *prefixes[2];
    size_t nprefixes;
    int unit;
    size_t count;
    const char *reset;       /* rows given to the callback */
    const char *left;        /* counters_list("") afterwards */
} reset_cases[] = {
    /* a tenant and its accounts, current windows: yesterday's row stays */
    { { "t:acme:", "a:acme:" }, 2, COUNTERS_CURRENT_WINDOWS, 6,
      "t:acme:messages/hour=2 t:acme:bytes/day=100 a:acme:alice@acme.example:messages/day=3 "
      "a:acme:bob@acme.example:messages/day=5 a:acme:\xff\xffodd:messages/day=8 "
      "a:acme:alice@acme.example:messages/month=4",
      "a:acme2:carol@acme2.example:messages/day=6 t:acme2:bytes/day=7" },
    /* one account, every day window: yesterday's too, not its month */
    { { "a:acme:alice@acme.example:", NULL }, 1, WIN_DAY, 2,
      "a:acme:alice@acme.example:messages/day=99 a:acme:alice@acme.example:messages/day=3",
      "t:acme:messages/hour=2 a:acme2:carol@acme2.example:messages/day=6 "
      "a:acme:bob@acme.example:messages/day=5 a:acme:\xff\xffodd:messages/day=8 "
      "t:acme2:bytes/day=7 t:acme:bytes/day=100 a:acme:alice@acme.example:messages/month=4" },
    /* hour windows only */
    { { "t:acme:", "a:acme:" }, 2, WIN_HOUR, 1, "t:acme:messages/hour=2",
      "a:acme2:carol@acme2.example:messages/day=6 a:acme:alice@acme.example:messages/day=3 "
      "a:acme:bob@acme.example:messages/day=5 a:acme:\xff\xffodd:messages/day=8 "
      "t:acme2:bytes/day=7 t:acme:bytes/day=100 a:acme:alice@acme.example:messages/month=4" },
    /* overlapping prefixes: a row goes with the first prefix that holds it */
    { { "a:acme:b", "a:" }, 2, WIN_DAY, 5,
      "a:acme:bob@acme.example:messages/day=5 a:acme2:carol@acme2.example:messages/day=6 "
      "a:acme:alice@acme.example:messages/day=99 a:acme:alice@acme.example:messages/day=3 "
      "a:acme:\xff\xffodd:messages/day=8",
      "t:acme:messages/hour=2 t:acme2:bytes/day=7 t:acme:bytes/day=100 "
      "a:acme:alice@acme.example:messages/month=4" },
    /* nothing there */
    { { "a:nobody:", NULL }, 1, COUNTERS_CURRENT_WINDOWS, 0, "",
      "t:acme:messages/hour=2 a:acme2:carol@acme2.example:messages/day=6 "
      "a:acme:alice@acme.example:messages/day=3 a:acme:bob@acme.example:messages/day=5 "
      "a:acme:\xff\xffodd:messages/day=8 t:acme2:bytes/day=7 t:acme:bytes/day=100 "
      "a:acme:alice@acme.example:messages/month=4" },
};

START_TEST(test_mem_reset)
{
    const struct reset_case *rc = &reset_cases[_i];
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    seed_prefix(&f);
    ck_assert_uint_eq(counters_mem_size(f.c), 9);
    struct rows r;
    size_t n = 12345;
    rows_init(&r);
    ck_assert_msg(counters_reset(f.c, rc->prefixes, rc->nprefixes, rc->unit, rows_cb, &r, &n, &f.err),
                  "%s", f.err.data);
    ck_assert_uint_eq(n, rc->count);
    ck_assert_uint_eq(r.n, rc->count);
    ck_assert_str_eq(r.text.data, rc->reset);
    ck_assert_uint_eq(counters_mem_size(f.c), 9 - rc->count);
    char *l = list_text(f.c, "", false);
    ck_assert_str_eq(l, rc->left);
    mem_free(l);
    /* a reset counter counts again from 0 */
    struct counter_result res;
    ck_assert_int_eq(add1(&f, "t:acme:messages", WIN_HOUR, 1, 10, &res), COUNTERS_OK);
    ck_assert_uint_eq(res.value, strstr(rc->reset, "t:acme:messages/hour") != NULL ? 0 : 2);
    /* a reset makes no delta */
    struct counter_deltas d;
    counter_deltas_init(&d);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 10);   /* 9 seeded adds and the one above */
    counter_deltas_free(&d);
    buf_free(&r.text);
    fix_close(&f);
}
END_TEST

START_TEST(test_mem_reset_arguments)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    seed_prefix(&f);
    const char *both[] = { "t:acme:", "a:acme:" };
    const char *empty[] = { "t:acme:", "" };
    size_t n = 7;
    ck_assert(!counters_reset(f.c, both, 2, WIN_COUNT, NULL, NULL, &n, &f.err));
    ck_assert_msg(strstr(f.err.data, "unit") != NULL, "%s", f.err.data);
    ck_assert(!counters_reset(f.c, both, 2, -2, NULL, NULL, &n, &f.err));
    ck_assert(!counters_reset(f.c, empty, 2, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n, &f.err));
    ck_assert_msg(strstr(f.err.data, "empty") != NULL, "%s", f.err.data);
    ck_assert_uint_eq(n, 0);
    ck_assert(counters_reset(f.c, both, 0, COUNTERS_CURRENT_WINDOWS, NULL, NULL, NULL, &f.err));
    ck_assert_uint_eq(counters_mem_size(f.c), 9);
    /* no callback, no count */
    ck_assert(counters_reset(f.c, both, 2, COUNTERS_CURRENT_WINDOWS, NULL, NULL, NULL, &f.err));
    ck_assert_uint_eq(counters_mem_size(f.c), 3);
    ck_assert_uint_eq(get1(&f, "t:acme:bytes", WIN_DAY), 0);
    ck_assert_uint_eq(get1(&f, "t:acme2:bytes", WIN_DAY), 7);
    fix_close(&f);
}
END_TEST

/* --- deltas --------------------------------------------------------------- */

START_TEST(test_mem_deltas)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-03-10T12:00:00Z");
    struct counter_req reqs[4] = {
        { "a", WIN_DAY, 1, 10 },
        { "b", WIN_HOUR, 0, 10 },
        { "c", WIN_MONTH, 5, COUNTER_NO_LIMIT },
        { "a", WIN_DAY, 2, 10 },
    };
    struct counter_result res[4];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 4, true, res, &f.err), COUNTERS_OK);
    struct counter_deltas d;
    counter_deltas_init(&d);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 3);   /* one per req with add > 0, in order */
    ck_assert_str_eq(d.v[0].key, "a");
    ck_assert_int_eq(d.v[0].unit, WIN_DAY);
    ck_assert_int_eq(d.v[0].window_start, iso("2026-03-09T23:00:00Z"));
    ck_assert_int_eq(d.v[0].window_end, iso("2026-03-10T23:00:00Z"));
    ck_assert_uint_eq(d.v[0].add, 1);
    ck_assert_str_eq(d.v[1].key, "c");
    ck_assert_int_eq(d.v[1].unit, WIN_MONTH);
    ck_assert_int_eq(d.v[1].window_start, iso("2026-02-28T23:00:00Z"));
    ck_assert_int_eq(d.v[1].window_end, iso("2026-03-31T22:00:00Z"));
    ck_assert_uint_eq(d.v[1].add, 5);
    ck_assert_str_eq(d.v[2].key, "a");
    ck_assert_uint_eq(d.v[2].add, 2);
    ck_assert(d.v[0].key != reqs[0].key);   /* copied */
    /* taken: the next take hands out nothing more */
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 3);
    /* look-only and exceeded calls make none */
    ck_assert_int_eq(counters_check_add(f.c, reqs, 4, false, res, &f.err), COUNTERS_OK);
    reqs[3].add = 100;
    ck_assert_int_eq(counters_check_add(f.c, reqs, 4, true, res, &f.err), COUNTERS_EXCEEDED);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 3);
    /* appended after what out holds */
    ck_assert_int_eq(add1(&f, "e", WIN_WEEK, 7, 10, NULL), COUNTERS_OK);
    ck_assert_int_eq(add1(&f, "f", WIN_MINUTE, 8, 10, NULL), COUNTERS_OK);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 5);
    ck_assert_str_eq(d.v[3].key, "e");
    ck_assert_str_eq(d.v[4].key, "f");
    ck_assert_uint_eq(d.v[4].add, 8);
    counter_deltas_clear(&d);
    ck_assert_uint_eq(d.n, 0);
    /* many at once, into an empty list that keeps its memory */
    for (int i = 0; i < 100; i++)
        add1(&f, "g", WIN_DAY, 1, COUNTER_NO_LIMIT, NULL);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 100);
    ck_assert_str_eq(d.v[99].key, "g");
    /* the backend's list is usable after the swap */
    add1(&f, "h", WIN_DAY, 1, COUNTER_NO_LIMIT, NULL);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 101);
    ck_assert_str_eq(d.v[100].key, "h");
    counter_deltas_free(&d);
    ck_assert_ptr_null(d.v);
    ck_assert_uint_eq(d.n, 0);
    counter_deltas_free(&d);   /* twice is harmless */
    /* closing with deltas not taken frees them */
    add1(&f, "i", WIN_DAY, 1, COUNTER_NO_LIMIT, NULL);
    fix_close(&f);
}
END_TEST

/* --- batches -------------------------------------------------------------- */

START_TEST(test_mem_batch_rollback)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");   /* a Tuesday; GC runs now */
    add1(&f, "old", WIN_MINUTE, 1, 10, NULL);       /* ends 12:01 */
    add1(&f, "m", WIN_MONTH, 5, 100, NULL);
    add1(&f, "w", WIN_WEEK, 2, 100, NULL);
    add1(&f, "r", WIN_MONTH, 7, 100, NULL);
    struct counter_deltas d;
    counter_deltas_init(&d);
    counters_mem_take_deltas(f.c, &d);
    counter_deltas_clear(&d);
    add1(&f, "pre", WIN_MONTH, 1, 100, NULL);       /* a delta from before the batch */
    char *before = list_text(f.c, "", true);
    f.now = us(iso("2026-03-11T13:00:00Z"));        /* GC due; "old" is > 1 day gone */
    ck_assert_uint_eq(counters_mem_size(f.c), 5);

    counters_mem_batch_begin(f.c);
    struct counter_req reqs[3] = { { "m", WIN_MONTH, 1, 100 }, { "new", WIN_DAY, 4, 100 },
                                   { "w", WIN_WEEK, 0, 100 } };
    struct counter_result res[3];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 3, true, res, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(counters_mem_size(f.c), 5);   /* "old" dropped, "new" created */
    const char *r_prefix[] = { "r" };
    size_t n = 0;
    ck_assert(counters_reset(f.c, r_prefix, 1, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n, &f.err));
    ck_assert_uint_eq(n, 1);
    add1(&f, "new", WIN_DAY, 1, 100, NULL);
    add1(&f, "m", WIN_MONTH, 2, 100, NULL);
    const char *new_prefix[] = { "new" };
    ck_assert(counters_reset(f.c, new_prefix, 1, WIN_DAY, NULL, NULL, &n, &f.err));
    ck_assert_uint_eq(n, 1);
    add1(&f, "new", WIN_DAY, 9, 100, NULL);         /* created again */
    add1(&f, "r", WIN_MONTH, 3, 100, NULL);         /* and after its reset */
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 8);
    ck_assert_uint_eq(get1(&f, "new", WIN_DAY), 9);
    ck_assert_uint_eq(get1(&f, "r", WIN_MONTH), 3);
    counters_mem_batch_rollback(f.c);

    ck_assert_uint_eq(counters_mem_size(f.c), 5);
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 5);
    ck_assert_uint_eq(get1(&f, "w", WIN_WEEK), 2);
    ck_assert_uint_eq(get1(&f, "r", WIN_MONTH), 7);
    ck_assert_uint_eq(get1(&f, "new", WIN_DAY), 0);
    counters_mem_take_deltas(f.c, &d);              /* the batch's deltas are gone */
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].key, "pre");
    counter_deltas_clear(&d);
    f.now = us(iso("2026-03-10T12:00:00Z"));        /* every row as at _begin, "old" too */
    char *after = list_text(f.c, "", true);
    ck_assert_str_eq(after, before);
    mem_free(after);

    /* committed: the changes stay */
    f.now = us(iso("2026-03-11T13:00:00Z"));
    counters_mem_batch_begin(f.c);
    add1(&f, "m", WIN_MONTH, 1, 100, NULL);
    counters_mem_take_deltas(f.c, &d);              /* a take inside the batch */
    ck_assert_uint_eq(d.n, 1);
    add1(&f, "m", WIN_MONTH, 1, 100, NULL);
    ck_assert(counters_reset(f.c, r_prefix, 1, WIN_MONTH, NULL, NULL, &n, &f.err));
    counters_mem_batch_commit(f.c);
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 7);
    ck_assert_uint_eq(get1(&f, "r", WIN_MONTH), 0);
    /* m, w, pre and "old": put back by the rollback, and not collected
     * again before the next hour (the rolled-back batch's GC counts) */
    ck_assert_uint_eq(counters_mem_size(f.c), 4);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 2);
    counter_deltas_clear(&d);

    /* a take inside a batch that is rolled back: what was taken is out,
     * the rest is discarded */
    counters_mem_batch_begin(f.c);
    add1(&f, "m", WIN_MONTH, 1, 100, NULL);
    counters_mem_take_deltas(f.c, &d);
    add1(&f, "m", WIN_MONTH, 1, 100, NULL);
    counters_mem_batch_rollback(f.c);
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 7);
    ck_assert_uint_eq(d.n, 1);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 1);
    counter_deltas_free(&d);

    /* an empty batch; then outside a batch changes are final at once */
    counters_mem_batch_begin(f.c);
    counters_mem_batch_rollback(f.c);
    counters_mem_batch_begin(f.c);
    counters_mem_batch_commit(f.c);
    add1(&f, "m", WIN_MONTH, 1, 100, NULL);
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 8);
    /* closing inside a batch frees what the undo log holds */
    counters_mem_batch_begin(f.c);
    ck_assert(counters_reset(f.c, (const char *[]){ "m" }, 1, WIN_MONTH, NULL, NULL, &n, &f.err));
    add1(&f, "x", WIN_DAY, 1, 100, NULL);
    mem_free(before);
    fix_close(&f);
}
END_TEST

/* --- a table of many entries ------------------------------------------------- */

START_TEST(test_mem_many_entries)
{
    enum { N = 3000 };
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%04d", i);
        ck_assert_int_eq(add1(&f, key, (enum window_unit)(i % WIN_COUNT), (uint64_t)i + 1,
                              COUNTER_NO_LIMIT, NULL), COUNTERS_OK);
    }
    ck_assert_uint_eq(counters_mem_size(f.c), N);
    /* delete scattered entries, inside a batch taken back, then for good */
    const char *prefixes[] = { "k01", "k17", "k2", "k0999" };
    size_t n = 0;
    for (int round = 0; round < 2; round++) {
        if (round == 0)
            counters_mem_batch_begin(f.c);
        ck_assert(counters_reset(f.c, prefixes, 4, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n,
                                 &f.err));
        ck_assert_uint_eq(n, 100 + 100 + 1000 + 1);
        ck_assert_uint_eq(counters_mem_size(f.c), N - n);
        if (round == 0)
            counters_mem_batch_rollback(f.c);
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof key, "k%04d", i);
            bool gone = round == 1 && (strncmp(key, "k01", 3) == 0 || strncmp(key, "k17", 3) == 0 ||
                                       strncmp(key, "k2", 2) == 0 || i == 999);
            ck_assert_uint_eq(get1(&f, key, (enum window_unit)(i % WIN_COUNT)),
                              gone ? 0 : (uint64_t)i + 1);
        }
    }
    /* two months later, the first committing call drops them all */
    f.now = us(iso("2026-05-13T12:00:00Z"));
    add1(&f, "late", WIN_DAY, 1, 10, NULL);
    ck_assert_uint_eq(counters_mem_size(f.c), 1);
    ck_assert_uint_eq(get1(&f, "late", WIN_DAY), 1);
    fix_close(&f);
}
END_TEST

/* --- loading from the store ---------------------------------------------------- */

static void store_exec(struct store *s, const char *sql)
{
    struct buf err;
    buf_init(&err);
    sqlite3_stmt *st = store_stmt(s, sql, &err);
    ck_assert_msg(st != NULL, "%s: %s", sql, err.data);
    ck_assert_msg(store_step(s, st, "test", &err) != STORE_FAIL, "%s: %s", sql, err.data);
    store_stmt_done(st);
    buf_free(&err);
}

static struct store *memory_store(void)
{
    struct buf err;
    buf_init(&err);
    struct store *s = store_open(":memory:", 0, &err);
    ck_assert_msg(s != NULL, "store_open: %s", err.data);
    buf_free(&err);
    return s;
}

START_TEST(test_mem_load)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-03-10T12:00:00Z");
    struct store *s = memory_store();
    struct counters *cs = counters_sqlite_open(s, clock_fixed(&f.now));
    struct counter_req reqs[] = {
        { "a", WIN_DAY, 3, 10 },
        { "a", WIN_MINUTE, 2, 10 },
        { "b", WIN_MONTH, UINT64_MAX - 1, COUNTER_NO_LIMIT },   /* > INT64_MAX */
        { "c:\xff", WIN_HOUR, 5, 10 },
        { "d", WIN_WEEK, 0, 10 },
    };
    struct counter_result res[5];
    ck_assert_int_eq(counters_check_add(cs, reqs, 5, true, res, &f.err), COUNTERS_OK);
    /* an ended window not yet collected, one ending now, one ending later */
    store_exec(s, "INSERT INTO counters VALUES ('gone', 'day', 1000, 2000, 1)");
    store_exec(s, "INSERT INTO counters VALUES ('edge', 'minute', 1773144240, 1773144300, 1)");
    store_exec(s, "INSERT INTO counters VALUES ('next', 'day', 1773183600, 1773270000, 6)");
    f.now = us(iso("2026-03-10T12:05:00Z"));         /* = 1773144300: the minute ended */
    /* what the memory table held is replaced */
    add1(&f, "stale", WIN_DAY, 1, 10, NULL);
    ck_assert_msg(counters_mem_load(f.c, s, &f.err), "%s", f.err.data);
    ck_assert_uint_eq(counters_mem_size(f.c), 5);    /* a/day, b, c, d, next */
    ck_assert_uint_eq(get1(&f, "stale", WIN_DAY), 0);
    ck_assert_uint_eq(get1(&f, "a", WIN_DAY), 3);
    ck_assert_uint_eq(get1(&f, "b", WIN_MONTH), UINT64_MAX - 1);
    ck_assert_uint_eq(get1(&f, "c:\xff", WIN_HOUR), 5);
    char *lm = list_text(f.c, "", true), *ls = list_text(cs, "", true);
    ck_assert_str_eq(lm, ls);
    ck_assert_str_eq(lm, "c:\xff/hour@1773144000+3600=5 a/day@1773097200+86400=3 "
                         "d/week@1773010800+604800=0 "
                         "b/month@1772319600+2674800=18446744073709551614");
    mem_free(lm);
    mem_free(ls);
    /* the future window is there: it shows once it holds now */
    f.now = us(iso("2026-03-11T12:00:00Z"));
    ck_assert_uint_eq(get1(&f, "next", WIN_DAY), 6);
    f.now = us(iso("2026-03-10T12:05:00Z"));
    /* both go on alike */
    ck_assert_int_eq(counters_check_add(cs, reqs, 5, true, res, &f.err), COUNTERS_EXCEEDED);
    struct counter_result res2[5];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 5, true, res2, &f.err), COUNTERS_EXCEEDED);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_uint_eq(res[i].value, res2[i].value);
        ck_assert(res[i].exceeded == res2[i].exceeded);
    }
    /* nothing was added by loading: no deltas but the "stale" add's */
    struct counter_deltas d;
    counter_deltas_init(&d);
    counters_mem_take_deltas(f.c, &d);
    ck_assert_uint_eq(d.n, 1);
    counter_deltas_free(&d);
    /* a row the memory table cannot hold: the load fails and changes nothing */
    store_exec(s, "INSERT INTO counters VALUES ('bad', 'fortnight', 0, 9999999999, 1)");
    ck_assert(!counters_mem_load(f.c, s, &f.err));
    ck_assert_msg(strstr(f.err.data, "fortnight") != NULL, "%s", f.err.data);
    ck_assert_uint_eq(counters_mem_size(f.c), 5);
    ck_assert_uint_eq(get1(&f, "a", WIN_DAY), 3);
    /* a store without the table */
    store_exec(s, "DROP TABLE counters");
    ck_assert(!counters_mem_load(f.c, s, &f.err));
    ck_assert_msg(strstr(f.err.data, "no such table") != NULL, "%s", f.err.data);
    ck_assert_uint_eq(counters_mem_size(f.c), 5);
    counters_close(cs);
    store_close(s);
    fix_close(&f);
}
END_TEST

/* --- the same answers as the SQLite backend ------------------------------------ */

/* xorshift64*: a fixed sequence, no global state. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    return rnd(s) % n;
}

static size_t store_rows(struct store *s)
{
    struct buf err;
    buf_init(&err);
    sqlite3_stmt *st = store_stmt(s, "SELECT count(*) FROM counters", &err);
    ck_assert_msg(st != NULL, "%s", err.data);
    ck_assert_int_eq(store_step(s, st, "counting counters", &err), STORE_ROW);
    size_t n = (size_t)sqlite3_column_int64(st, 0);
    store_stmt_done(st);
    buf_free(&err);
    return n;
}

static const char *const eq_keys[] = {
    "t:a:messages", "t:a:rcpt", "a:a:x@a.example:messages", "a:a:y@a.example:messages",
    "t:b:messages", "a:b:z@b.example:messages", "t:a\xff", "t:ab",
};
#define NKEYS (sizeof eq_keys / sizeof eq_keys[0])
static const char *const eq_prefixes[] = { "t:a", "t:a:", "a:", "a:a:x", "t:", "t:a\xff", "zz" };
#define NPREFIXES (sizeof eq_prefixes / sizeof eq_prefixes[0])

static void eq_compare_lists(struct counters *cs, struct counters *cm, struct store *s, int step)
{
    for (size_t p = 0; p < 3; p++) {
        const char *prefix = p == 0 ? "" : eq_prefixes[p];
        char *ls = list_text(cs, prefix, true), *lm = list_text(cm, prefix, true);
        ck_assert_msg(strcmp(ls, lm) == 0, "step %d prefix '%s':\n sqlite: %s\n mem:    %s", step,
                      prefix, ls, lm);
        mem_free(ls);
        mem_free(lm);
    }
    ck_assert_msg(store_rows(s) == counters_mem_size(cm), "step %d: %zu rows, %zu entries", step,
                  store_rows(s), counters_mem_size(cm));
}

START_TEST(test_mem_same_as_sqlite)
{
    enum { STEPS = 1500 };
    static const uint64_t adds[] = { 0, 1, 1, 1, 2, 3, 5, 10, UINT64_MAX - 3, UINT64_MAX };
    static const uint64_t limits[] = { COUNTER_NO_LIMIT, 3, 10, 10, 25, 100, UINT64_MAX - 1 };
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-10-24T20:00:00Z");   /* before the end of DST */
    struct store *s = memory_store();
    struct counters *cs = counters_sqlite_open(s, clock_fixed(&f.now));
    struct rows rs, rm;
    rows_init(&rs);
    rows_init(&rm);
    rs.with_window = rm.with_window = true;
    for (int step = 0; step < STEPS; step++) {
        /* time moves on: mostly seconds to minutes, sometimes hours or days */
        uint64_t r = rnd_below(&seed, 100);
        f.now += (int64_t)(r < 70   ? rnd_below(&seed, 120) * 1000000 + rnd_below(&seed, 1000000)
                           : r < 95 ? rnd_below(&seed, 3600) * 1000000
                                    : rnd_below(&seed, 3 * 86400) * 1000000);
        struct counter_req reqs[4];
        struct counter_result res_s[4], res_m[4];
        size_t n = 1 + rnd_below(&seed, 4);
        for (size_t i = 0; i < n; i++) {
            reqs[i].key = eq_keys[rnd_below(&seed, NKEYS)];
            reqs[i].unit = (enum window_unit)rnd_below(&seed, WIN_COUNT);
            reqs[i].add = adds[rnd_below(&seed, sizeof adds / sizeof adds[0])];
            reqs[i].limit = limits[rnd_below(&seed, sizeof limits / sizeof limits[0])];
        }
        bool commit = rnd_below(&seed, 5) != 0;
        int rc_s = counters_check_add(cs, reqs, n, commit, res_s, &f.err);
        ck_assert_msg(rc_s != COUNTERS_ERROR, "%s", f.err.data);
        int rc_m = counters_check_add(f.c, reqs, n, commit, res_m, &f.err);
        ck_assert_msg(rc_s == rc_m, "step %d: rc %d vs %d", step, rc_s, rc_m);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(res_s[i].value == res_m[i].value && res_s[i].after == res_m[i].after &&
                              res_s[i].limit == res_m[i].limit &&
                              res_s[i].exceeded == res_m[i].exceeded &&
                              res_s[i].window_start == res_m[i].window_start &&
                              res_s[i].window_end == res_m[i].window_end,
                          "step %d req %zu differs", step, i);
        }
        /* now and then: get, a reset, the whole listing */
        if (step % 5 == 0) {
            const char *key = eq_keys[rnd_below(&seed, NKEYS)];
            enum window_unit u = (enum window_unit)rnd_below(&seed, WIN_COUNT);
            uint64_t vs, vm;
            time_t ss, es, sm, em;
            ck_assert(counters_get(cs, key, u, &vs, &ss, &es, &f.err));
            ck_assert(counters_get(f.c, key, u, &vm, &sm, &em, &f.err));
            ck_assert(vs == vm && ss == sm && es == em);
        }
        if (step % 37 == 36) {
            const char *prefixes[2] = { eq_prefixes[rnd_below(&seed, NPREFIXES)],
                                        eq_prefixes[rnd_below(&seed, NPREFIXES)] };
            size_t np = 1 + rnd_below(&seed, 2);
            int unit = rnd_below(&seed, 2) == 0 ? COUNTERS_CURRENT_WINDOWS
                                                : (int)rnd_below(&seed, WIN_COUNT);
            size_t cnt_s = 0, cnt_m = 0;
            rows_reset(&rs);
            rows_reset(&rm);
            ck_assert(counters_reset(cs, prefixes, np, unit, rows_cb, &rs, &cnt_s, &f.err));
            ck_assert(counters_reset(f.c, prefixes, np, unit, rows_cb, &rm, &cnt_m, &f.err));
            ck_assert_uint_eq(cnt_s, cnt_m);
            ck_assert_msg(strcmp(rs.text.data, rm.text.data) == 0,
                          "step %d reset:\n sqlite: %s\n mem:    %s", step, rs.text.data,
                          rm.text.data);
        }
        if (step % 7 == 0)
            eq_compare_lists(cs, f.c, s, step);
    }
    eq_compare_lists(cs, f.c, s, STEPS);
    /* a memory table loaded from the store lists the same */
    struct counters *loaded = counters_mem_open(clock_fixed(&f.now));
    ck_assert_msg(counters_mem_load(loaded, s, &f.err), "%s", f.err.data);
    char *ll = list_text(loaded, "", true), *lm = list_text(f.c, "", true);
    ck_assert_str_eq(ll, lm);
    ck_assert_uint_gt(strlen(ll), 0);
    mem_free(ll);
    mem_free(lm);
    counters_close(loaded);
    buf_free(&rs.text);
    buf_free(&rm.text);
    counters_close(cs);
    store_close(s);
    fix_close(&f);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_mem_limits, 0, sizeof limit_cases / sizeof limit_cases[0]);
    tcase_add_test(tc, test_mem_multi_req_atomic);
    tcase_add_test(tc, test_mem_same_counter_twice);
    tcase_add_test(tc, test_mem_look_only);
    tcase_add_test(tc, test_mem_bad_request);
    tcase_add_loop_test(tc, test_mem_windows, 0, sizeof window_cases / sizeof window_cases[0]);
    tcase_add_test(tc, test_mem_day_resets_at_local_midnight);
    tcase_add_test(tc, test_mem_dst_day_is_25_hours);
    tcase_add_test(tc, test_mem_week_starts_monday_local);
    tcase_add_test(tc, test_mem_clock_floor);
    tcase_add_test(tc, test_mem_gc);
    tcase_add_loop_test(tc, test_mem_gc_boundary, 0, 2);
    tcase_add_loop_test(tc, test_mem_list, 0, sizeof list_cases / sizeof list_cases[0]);
    tcase_add_test(tc, test_mem_list_window_and_stop);
    tcase_add_loop_test(tc, test_mem_reset, 0, sizeof reset_cases / sizeof reset_cases[0]);
    tcase_add_test(tc, test_mem_reset_arguments);
    tcase_add_test(tc, test_mem_deltas);
    tcase_add_test(tc, test_mem_batch_rollback);
    tcase_add_test(tc, test_mem_many_entries);
    tcase_add_test(tc, test_mem_load);
    tcase_add_test(tc, test_mem_same_as_sqlite);
}

UNIT_MAIN("counters_mem", add_tests)
