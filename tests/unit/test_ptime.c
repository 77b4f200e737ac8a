/* test_ptime.c: unit tests of lib/ptime.c: calendar windows (minute, hour,
 * day, week, month) in UTC and in non-UTC zones selected with tz_select
 * (Europe/Paris with its DST days, Asia/Kolkata at +05:30, St. John's at
 * -03:30, zones whose midnight is skipped), tz_select's refusals, the
 * fixed clock, time_format's offsets and the window unit names. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ptime.h"
#include "unit.h"

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* "2026-03-29T01:00:00Z" -> time_t */
static time_t utc(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec);
    ck_assert_msg(n == 6, "bad time literal %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static const char *utc_str(time_t t, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

static void select_zone(const char *zone)
{
    ck_assert_msg(tz_select(zone), "time zone %s not available", zone);
}

/* Every test leaves the process in UTC (CK_FORK=no runs them in one process). */
static void reset_utc(void)
{
    tz_select("UTC");
}

/* ---- window_bounds: table ----------------------------------------- */

static const struct {
    const char *zone;
    enum window_unit unit;
    const char *t, *start, *end;
} win_cases[] = {
    /* UTC */
    { "UTC", WIN_MINUTE, "2026-01-15T12:34:56Z", "2026-01-15T12:34:00Z", "2026-01-15T12:35:00Z" },
    { "UTC", WIN_MINUTE, "2026-01-15T12:35:00Z", "2026-01-15T12:35:00Z", "2026-01-15T12:36:00Z" },
    { "UTC", WIN_MINUTE, "1969-12-31T23:59:59Z", "1969-12-31T23:59:00Z", "1970-01-01T00:00:00Z" },
    { "UTC", WIN_HOUR, "2026-01-15T12:34:56Z", "2026-01-15T12:00:00Z", "2026-01-15T13:00:00Z" },
    { "UTC", WIN_HOUR, "2026-01-15T13:00:00Z", "2026-01-15T13:00:00Z", "2026-01-15T14:00:00Z" },
    { "UTC", WIN_DAY, "2026-01-15T12:34:56Z", "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z" },
    { "UTC", WIN_DAY, "2026-01-15T23:59:59Z", "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z" },
    { "UTC", WIN_DAY, "2026-01-16T00:00:00Z", "2026-01-16T00:00:00Z", "2026-01-17T00:00:00Z" },
    { "UTC", WIN_WEEK, "2026-01-18T23:59:59Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z" }, /* Sunday */
    { "UTC", WIN_WEEK, "2026-01-19T00:00:00Z", "2026-01-19T00:00:00Z", "2026-01-26T00:00:00Z" }, /* Monday */
    { "UTC", WIN_WEEK, "2026-01-01T12:00:00Z", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z" }, /* across years */
    { "UTC", WIN_MONTH, "2026-01-31T12:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z" },
    { "UTC", WIN_MONTH, "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z" },
    { "UTC", WIN_MONTH, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z" },
    { "UTC", WIN_MONTH, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z" }, /* 29 days */
    { "UTC", WIN_MONTH, "2027-02-15T12:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z" }, /* 28 days */
    /* Europe/Paris: CET (+01:00) in winter, CEST (+02:00) in summer */
    { "Europe/Paris", WIN_MINUTE, "2026-01-15T12:34:56Z", "2026-01-15T12:34:00Z", "2026-01-15T12:35:00Z" },
    { "Europe/Paris", WIN_HOUR, "2026-01-15T12:34:56Z", "2026-01-15T12:00:00Z", "2026-01-15T13:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-01-15T12:00:00Z", "2026-01-14T23:00:00Z", "2026-01-15T23:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-01-15T22:59:59Z", "2026-01-14T23:00:00Z", "2026-01-15T23:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-01-15T23:00:00Z", "2026-01-15T23:00:00Z", "2026-01-16T23:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-07-15T12:00:00Z", "2026-07-14T22:00:00Z", "2026-07-15T22:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-07-15T22:00:00Z", "2026-07-15T22:00:00Z", "2026-07-16T22:00:00Z" },
    /* 2026-03-29: 23 hours; 2026-10-25: 25 hours */
    { "Europe/Paris", WIN_DAY, "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-03-29T00:30:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-10-25T00:30:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z" },
    { "Europe/Paris", WIN_DAY, "2026-10-25T01:30:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z" },
    /* hours around the changes (01:00Z both days): each window is one real hour */
    { "Europe/Paris", WIN_HOUR, "2026-03-29T00:59:59Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z" },
    { "Europe/Paris", WIN_HOUR, "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z" },
    { "Europe/Paris", WIN_HOUR, "2026-03-29T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z" },
    { "Europe/Paris", WIN_HOUR, "2026-10-25T00:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z" },
    { "Europe/Paris", WIN_HOUR, "2026-10-25T01:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z" },
    /* weeks: Monday 00:00 local */
    { "Europe/Paris", WIN_WEEK, "2026-01-18T22:59:00Z", "2026-01-11T23:00:00Z", "2026-01-18T23:00:00Z" },
    { "Europe/Paris", WIN_WEEK, "2026-01-18T23:00:00Z", "2026-01-18T23:00:00Z", "2026-01-25T23:00:00Z" },
    { "Europe/Paris", WIN_WEEK, "2026-03-25T12:00:00Z", "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z" },
    /* months */
    { "Europe/Paris", WIN_MONTH, "2026-01-31T12:00:00Z", "2025-12-31T23:00:00Z", "2026-01-31T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-01-31T23:00:00Z", "2026-01-31T23:00:00Z", "2026-02-28T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-03-15T12:00:00Z", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-12-15T12:00:00Z", "2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-12-31T23:00:00Z", "2026-12-31T23:00:00Z", "2027-01-31T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2028-02-10T12:00:00Z", "2028-01-31T23:00:00Z", "2028-02-29T23:00:00Z" },
    /* Asia/Kolkata, +05:30: hours and days start at :30 UTC */
    { "Asia/Kolkata", WIN_MINUTE, "2026-01-15T12:34:56Z", "2026-01-15T12:34:00Z", "2026-01-15T12:35:00Z" },
    { "Asia/Kolkata", WIN_HOUR, "2026-01-15T12:00:00Z", "2026-01-15T11:30:00Z", "2026-01-15T12:30:00Z" },
    { "Asia/Kolkata", WIN_HOUR, "2026-01-15T12:29:59Z", "2026-01-15T11:30:00Z", "2026-01-15T12:30:00Z" },
    { "Asia/Kolkata", WIN_HOUR, "2026-01-15T12:30:00Z", "2026-01-15T12:30:00Z", "2026-01-15T13:30:00Z" },
    { "Asia/Kolkata", WIN_DAY, "2026-01-15T12:00:00Z", "2026-01-14T18:30:00Z", "2026-01-15T18:30:00Z" },
    { "Asia/Kolkata", WIN_DAY, "2026-01-15T18:30:00Z", "2026-01-15T18:30:00Z", "2026-01-16T18:30:00Z" },
    { "Asia/Kolkata", WIN_WEEK, "2026-01-18T18:29:00Z", "2026-01-11T18:30:00Z", "2026-01-18T18:30:00Z" },
    { "Asia/Kolkata", WIN_WEEK, "2026-01-18T18:30:00Z", "2026-01-18T18:30:00Z", "2026-01-25T18:30:00Z" },
    { "Asia/Kolkata", WIN_MONTH, "2026-02-28T18:29:59Z", "2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z" },
    /* America/St_Johns, -03:30 (NST) / -02:30 (NDT) */
    { "America/St_Johns", WIN_HOUR, "2026-01-15T12:00:00Z", "2026-01-15T11:30:00Z", "2026-01-15T12:30:00Z" },
    { "America/St_Johns", WIN_DAY, "2026-01-15T12:00:00Z", "2026-01-15T03:30:00Z", "2026-01-16T03:30:00Z" },
    { "America/St_Johns", WIN_DAY, "2026-07-15T12:00:00Z", "2026-07-15T02:30:00Z", "2026-07-16T02:30:00Z" },
    { "America/St_Johns", WIN_DAY, "2026-03-08T12:00:00Z", "2026-03-08T03:30:00Z", "2026-03-09T02:30:00Z" },
    { "America/St_Johns", WIN_WEEK, "2026-01-18T23:00:00Z", "2026-01-12T03:30:00Z", "2026-01-19T03:30:00Z" },
    /* Africa/Cairo: 2026-04-24 has no midnight (00:00 EET -> 01:00 EEST at 22:00Z):
     * the day starts at its first instant, and lasts 23 hours */
    { "Africa/Cairo", WIN_DAY, "2026-04-24T10:00:00Z", "2026-04-23T22:00:00Z", "2026-04-24T21:00:00Z" },
    { "Africa/Cairo", WIN_DAY, "2026-04-23T21:30:00Z", "2026-04-22T22:00:00Z", "2026-04-23T22:00:00Z" },
    /* America/Santiago: 2026-04-04 ends at 24:00 -03 = 23:00 -04 again: 25 hours */
    { "America/Santiago", WIN_DAY, "2026-04-04T12:00:00Z", "2026-04-04T03:00:00Z", "2026-04-05T04:00:00Z" },
};

START_TEST(test_window_table)
{
    char a[32], b[32], ws[32], we[32];
    time_t t = utc(win_cases[_i].t), s = 0, e = 0;
    select_zone(win_cases[_i].zone);
    window_bounds(win_cases[_i].unit, t, &s, &e);
    ck_assert_msg(s == utc(win_cases[_i].start) && e == utc(win_cases[_i].end),
                  "case %d %s %s at %s: got [%s, %s), want [%s, %s)", _i, win_cases[_i].zone,
                  window_unit_name(win_cases[_i].unit), win_cases[_i].t, utc_str(s, a, sizeof a),
                  utc_str(e, b, sizeof b), utc_str(utc(win_cases[_i].start), ws, sizeof ws),
                  utc_str(utc(win_cases[_i].end), we, sizeof we));
}
END_TEST

START_TEST(test_dst_day_lengths)
{
    time_t s, e;
    select_zone("Europe/Paris");
    window_bounds(WIN_DAY, utc("2026-03-29T10:00:00Z"), &s, &e);
    ck_assert_int_eq(e - s, 23 * 3600);
    window_bounds(WIN_DAY, utc("2026-10-25T10:00:00Z"), &s, &e);
    ck_assert_int_eq(e - s, 25 * 3600);
    window_bounds(WIN_DAY, utc("2026-06-01T10:00:00Z"), &s, &e);
    ck_assert_int_eq(e - s, 24 * 3600);
    window_bounds(WIN_WEEK, utc("2026-03-25T10:00:00Z"), &s, &e);
    ck_assert_int_eq(e - s, 7 * 86400 - 3600);
    window_bounds(WIN_MONTH, utc("2026-10-10T10:00:00Z"), &s, &e);
    ck_assert_int_eq(e - s, 31 * 86400 + 3600);
    select_zone("UTC");
    window_bounds(WIN_MONTH, utc("2028-02-10T10:00:00Z"), &s, &e);
    ck_assert_int_eq(e - s, 29 * 86400);
}
END_TEST

/* ---- window_bounds: invariants swept around zone transitions ------- */

/* local calendar key of a time: the day, week (its Monday) or month */
static long local_key(enum window_unit u, time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    switch (u) {
    case WIN_DAY:
        return (tm.tm_year * 400L + tm.tm_yday);
    case WIN_WEEK: {
        /* days since the epoch of the local date, minus days since Monday */
        struct tm d = { .tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = tm.tm_mday, .tm_hour = 12 };
        long days = (long)(timegm(&d) / 86400);
        return days - (tm.tm_wday + 6) % 7;
    }
    case WIN_MONTH:
        return tm.tm_year * 12L + tm.tm_mon;
    case WIN_HOUR:
        return (tm.tm_year * 400L + tm.tm_yday) * 24 + tm.tm_hour;
    case WIN_MINUTE:
        break;
    }
    return (long)(t / 60);
}

static const struct {
    const char *zone;
    const char *transition;
    bool hours_contiguous;
} sweep_cases[] = {
    { "UTC", "2026-03-29T01:00:00Z", true },
    { "Europe/Paris", "2026-03-29T01:00:00Z", true },
    { "Europe/Paris", "2026-10-25T01:00:00Z", true },
    { "Europe/Paris", "2026-12-31T23:00:00Z", true },
    { "Asia/Kolkata", "2026-02-28T18:30:00Z", true },
    { "America/St_Johns", "2026-03-08T05:30:00Z", true },
    { "America/St_Johns", "2026-11-01T04:30:00Z", true },
    { "Africa/Cairo", "2026-04-23T22:00:00Z", true },
    { "Africa/Cairo", "2026-10-29T21:00:00Z", true },
    { "America/Santiago", "2026-04-05T03:00:00Z", true },
    { "America/Santiago", "2026-09-06T04:00:00Z", true },
    /* a 30-minute DST shift: local hours before and after it overlap */
    { "Australia/Lord_Howe", "2026-04-04T15:00:00Z", false },
    { "Australia/Lord_Howe", "2026-10-03T15:30:00Z", false },
};

START_TEST(test_window_sweep)
{
    char a[32], b[32], c[32];
    time_t center = utc(sweep_cases[_i].transition);
    select_zone(sweep_cases[_i].zone);
    for (int u = 0; u < WIN_COUNT; u++) {
        for (time_t t = center - 2 * 86400; t <= center + 2 * 86400; t += 299) {
            time_t s, e, s2, e2, ns, ne;
            window_bounds((enum window_unit)u, t, &s, &e);
            if (!(s <= t && t < e))
                ck_abort_msg("%s %s: t %s not in [%s, %s)", sweep_cases[_i].zone,
                             window_unit_name((enum window_unit)u), utc_str(t, a, sizeof a),
                             utc_str(s, b, sizeof b), utc_str(e, c, sizeof c));
            /* the start belongs to its own window */
            window_bounds((enum window_unit)u, s, &s2, &e2);
            if ((s2 != s || e2 != e) && (u != WIN_HOUR || sweep_cases[_i].hours_contiguous))
                ck_abort_msg("%s %s: window of start %s is [%s, %s)", sweep_cases[_i].zone,
                             window_unit_name((enum window_unit)u), utc_str(s, a, sizeof a),
                             utc_str(s2, b, sizeof b), utc_str(e2, c, sizeof c));
            /* the next window starts where this one ends */
            window_bounds((enum window_unit)u, e, &ns, &ne);
            if (ns != e && (u != WIN_HOUR || sweep_cases[_i].hours_contiguous))
                ck_abort_msg("%s %s: window after %s starts at %s", sweep_cases[_i].zone,
                             window_unit_name((enum window_unit)u), utc_str(e, a, sizeof a),
                             utc_str(ns, b, sizeof b));
            /* calendar windows start at the first instant of their local day/week/month */
            if (u != WIN_MINUTE && (u != WIN_HOUR || sweep_cases[_i].hours_contiguous) &&
                local_key((enum window_unit)u, s) != local_key((enum window_unit)u, t))
                ck_abort_msg("%s %s: start %s is not in the period of %s", sweep_cases[_i].zone,
                             window_unit_name((enum window_unit)u), utc_str(s, a, sizeof a),
                             utc_str(t, b, sizeof b));
            if (u >= WIN_DAY && local_key((enum window_unit)u, s - 1) == local_key((enum window_unit)u, s))
                ck_abort_msg("%s %s: start %s is not the first instant of its period", sweep_cases[_i].zone,
                             window_unit_name((enum window_unit)u), utc_str(s, a, sizeof a));
            if (u >= WIN_DAY && local_key((enum window_unit)u, e) == local_key((enum window_unit)u, t))
                ck_abort_msg("%s %s: end %s is still in the period of %s", sweep_cases[_i].zone,
                             window_unit_name((enum window_unit)u), utc_str(e, a, sizeof a),
                             utc_str(t, b, sizeof b));
        }
    }
}
END_TEST

/* With a 30-minute DST shift the hour windows on both sides overlap: each
 * is still one real hour and holds t, but they are not contiguous, and the
 * start of a window may belong to another window. */
START_TEST(test_lord_howe_hours)
{
    time_t s, e;
    select_zone("Australia/Lord_Howe");
    /* 2026-10-04 02:00 +10:30 -> 02:30 +11:00 at 15:30Z */
    window_bounds(WIN_HOUR, utc("2026-10-03T15:20:00Z"), &s, &e); /* 01:50 +10:30 */
    ck_assert_int_eq(s, utc("2026-10-03T14:30:00Z"));
    ck_assert_int_eq(e, utc("2026-10-03T15:30:00Z"));
    window_bounds(WIN_HOUR, utc("2026-10-03T15:30:00Z"), &s, &e); /* 02:30 +11:00 */
    ck_assert_int_eq(s, utc("2026-10-03T15:00:00Z"));
    ck_assert_int_eq(e, utc("2026-10-03T16:00:00Z"));
    /* 2026-04-05 02:00 +11:00 -> 01:30 +10:30 at 15:00Z */
    window_bounds(WIN_HOUR, utc("2026-04-04T14:45:00Z"), &s, &e); /* 01:45 +11:00 */
    ck_assert_int_eq(s, utc("2026-04-04T14:00:00Z"));
    ck_assert_int_eq(e, utc("2026-04-04T15:00:00Z"));
    window_bounds(WIN_HOUR, utc("2026-04-04T15:10:00Z"), &s, &e); /* 01:40 +10:30 */
    ck_assert_int_eq(s, utc("2026-04-04T14:30:00Z"));
    ck_assert_int_eq(e, utc("2026-04-04T15:30:00Z"));
    window_bounds(WIN_HOUR, utc("2026-04-04T14:30:00Z"), &s, &e); /* that start, 01:30 +11:00 */
    ck_assert_int_eq(s, utc("2026-04-04T14:00:00Z"));
}
END_TEST

/* ---- tz_select ---------------------------------------------------- */

static const struct {
    const char *name;
    bool ok;
} tz_cases[] = {
    { "UTC", true },
    { "Europe/Paris", true },
    { "Asia/Kolkata", true },
    { "Etc/UTC", true },
    { "Nowhere/City", false },
    { "../etc/passwd", false },
    { "Europe/../Europe/Paris", false },
    { "", false },
    { "/etc/localtime", false },
    { "/usr/share/zoneinfo/Europe/Paris", false },
    { "Europe", false },       /* a directory */
    { "europe/paris", false }, /* names are case-sensitive */
    { "zone.tab", false },     /* a file in the zone directory that is not a zone */
    { "tzdata.zi", false },
    { "iso3166.tab", false },
};

START_TEST(test_tz_select)
{
    char out[40];
    select_zone("Europe/Paris");
    bool ok = tz_select(tz_cases[_i].name);
    ck_assert_msg(ok == tz_cases[_i].ok, "tz_select(\"%s\") = %d", tz_cases[_i].name, ok);
    if (!ok) {
        /* a refused zone leaves the previous one in force */
        time_format(utc("2026-01-15T12:00:00Z"), out, sizeof out);
        ck_assert_str_eq(out, "2026-01-15T13:00:00+01:00");
    }
}
END_TEST

/* ---- time_format -------------------------------------------------- */

static const struct {
    const char *zone, *t, *out;
} fmt_cases[] = {
    { "UTC", "2026-01-15T12:00:00Z", "2026-01-15T12:00:00+00:00" },
    { "Europe/Paris", "2026-01-15T12:00:00Z", "2026-01-15T13:00:00+01:00" },
    { "Europe/Paris", "2026-07-15T12:00:00Z", "2026-07-15T14:00:00+02:00" },
    { "Europe/Paris", "2026-11-28T09:00:00Z", "2026-11-28T10:00:00+01:00" },
    { "Europe/Paris", "2026-10-25T00:30:00Z", "2026-10-25T02:30:00+02:00" },
    { "Europe/Paris", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00+01:00" },
    { "Asia/Kolkata", "2026-01-15T12:00:00Z", "2026-01-15T17:30:00+05:30" },
    { "America/St_Johns", "2026-01-15T12:00:00Z", "2026-01-15T08:30:00-03:30" },
    { "America/St_Johns", "2026-07-15T12:00:00Z", "2026-07-15T09:30:00-02:30" },
    { "America/New_York", "2026-01-01T04:59:59Z", "2025-12-31T23:59:59-05:00" },
};

START_TEST(test_time_format)
{
    char out[32];
    select_zone(fmt_cases[_i].zone);
    memset(out, 'x', sizeof out);
    time_format(utc(fmt_cases[_i].t), out, sizeof out);
    ck_assert_str_eq(out, fmt_cases[_i].out);
}
END_TEST

START_TEST(test_time_format_sizes)
{
    char out[32];
    select_zone("Asia/Kolkata");
    /* exactly enough room */
    time_format(utc("2026-01-15T12:00:00Z"), out, 26);
    ck_assert_str_eq(out, "2026-01-15T17:30:00+05:30");
    /* no room for the offset: the time alone */
    time_format(utc("2026-01-15T12:00:00Z"), out, 25);
    ck_assert_str_eq(out, "2026-01-15T17:30:00");
}
END_TEST

/* ---- clocks ------------------------------------------------------- */

START_TEST(test_clock_fixed)
{
    int64_t us = 1767225600000000; /* 2026-01-01T00:00:00Z */
    struct clock c = clock_fixed(&us);
    ck_assert_int_eq(clock_now_us(&c), 1767225600000000);
    us += 1500000;
    ck_assert_int_eq(clock_now_us(&c), 1767225601500000);
    us = -5;
    ck_assert_int_eq(clock_now_us(&c), -5);
}
END_TEST

START_TEST(test_clock_system)
{
    struct clock c = clock_system();
    /* time() may read a coarser clock: allow a second either side */
    int64_t before = ((int64_t)time(NULL) - 1) * 1000000;
    int64_t now = clock_now_us(&c);
    int64_t after = ((int64_t)time(NULL) + 2) * 1000000;
    ck_assert_int_ge(now, before);
    ck_assert_int_le(now, after);
    int64_t m1 = clock_mono_us(), m2 = clock_mono_us();
    ck_assert_int_gt(m1, 0);
    ck_assert_int_ge(m2, m1);
}
END_TEST

/* ---- window units ------------------------------------------------- */

START_TEST(test_window_units)
{
    static const char *const names[WIN_COUNT] = { "minute", "hour", "day", "week", "month" };
    static const int64_t secs[WIN_COUNT] = { 60, 3600, 86400, 604800, 2592000 };
    enum window_unit u;
    for (int i = 0; i < WIN_COUNT; i++) {
        ck_assert_str_eq(window_unit_name((enum window_unit)i), names[i]);
        ck_assert(window_unit_parse(names[i], strlen(names[i]), &u));
        ck_assert_int_eq(u, i);
        ck_assert_int_eq(window_unit_seconds((enum window_unit)i), secs[i]);
        /* round trip */
        const char *n = window_unit_name((enum window_unit)i);
        ck_assert(window_unit_parse(n, strlen(n), &u));
        ck_assert_int_eq(u, i);
    }
    /* not NUL-terminated: only n characters are read */
    ck_assert(window_unit_parse("day/extra", 3, &u));
    ck_assert_int_eq(u, WIN_DAY);
    ck_assert(window_unit_parse("hours", 4, &u));
    ck_assert_int_eq(u, WIN_HOUR);
    ck_assert(!window_unit_parse("hours", 5, &u));
    ck_assert(!window_unit_parse("da", 2, &u));
    ck_assert(!window_unit_parse("Day", 3, &u));
    ck_assert(!window_unit_parse("", 0, &u));
    ck_assert(!window_unit_parse("second", 6, &u));
    ck_assert(!window_unit_parse("fortnight", 9, &u));
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, NULL, reset_utc);
    tcase_add_loop_test(tc, test_window_table, 0, NCASES(win_cases));
    tcase_add_test(tc, test_dst_day_lengths);
    tcase_add_loop_test(tc, test_window_sweep, 0, NCASES(sweep_cases));
    tcase_add_test(tc, test_lord_howe_hours);
    tcase_add_loop_test(tc, test_tz_select, 0, NCASES(tz_cases));
    tcase_add_loop_test(tc, test_time_format, 0, NCASES(fmt_cases));
    tcase_add_test(tc, test_time_format_sizes);
    tcase_add_test(tc, test_clock_fixed);
    tcase_add_test(tc, test_clock_system);
    tcase_add_test(tc, test_window_units);
}

UNIT_MAIN("ptime", add_tests)
