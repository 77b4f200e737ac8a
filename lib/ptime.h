/* ptime.h: time helpers: an injectable clock (tests pass a fixed one) and
 * calendar windows (minute, hour, day, week, month) in the configured time
 * zone, used by quota counters and reply texts. */
#ifndef POSTERN_PTIME_H
#define POSTERN_PTIME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct clock {
    int64_t (*now_us)(void *arg);   /* microseconds since the epoch */
    void *arg;
};

struct clock clock_system(void);
/* A clock that returns *us; tests move it by writing *us. */
struct clock clock_fixed(int64_t *us);
int64_t clock_now_us(const struct clock *c);
/* Monotonic microseconds, for latencies. */
int64_t clock_mono_us(void);

enum window_unit { WIN_MINUTE, WIN_HOUR, WIN_DAY, WIN_WEEK, WIN_MONTH };
#define WIN_COUNT 5

/* "minute", "hour", "day", "week", "month" (s need not be NUL-terminated). */
bool window_unit_parse(const char *s, size_t n, enum window_unit *out);
const char *window_unit_name(enum window_unit u);
/* Nominal length in seconds (month = 30 days), for pacing and display. */
int64_t window_unit_seconds(enum window_unit u);

/* Select the time zone of calendar windows ("UTC", "Europe/Paris", ...).
 * Sets TZ for the process: call at start-up, before threads.  False when
 * the zone is unknown (no TZif zone file under /usr/share/zoneinfo). */
bool tz_select(const char *name);
/* Whether tz_select(name) would succeed, without selecting it. */
bool tz_valid(const char *name);

/* The calendar window [*start, *end) that holds t, in the selected zone.
 * Weeks start on Monday 00:00 (ISO 8601).  Minute and hour windows are
 * always 60 s and 3600 s long, aligned on the local clock (so +05:30 hours
 * start at :30 UTC; the two local 02:xx hours of a DST fall-back day are
 * two windows); day, week and month windows start at local midnight and
 * last 23 h or 25 h across a DST change.  Zones with 30-minute DST shifts
 * (Australia/Lord_Howe) get one hour window half an hour short. */
void window_bounds(enum window_unit u, time_t t, time_t *start, time_t *end);

/* "2026-11-28T10:00:00+01:00" in the selected zone; out has >= 32 bytes. */
void time_format(time_t t, char *out, size_t size);

#endif
