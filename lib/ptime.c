/* ptime.c: injectable clock and calendar windows in a time zone. */
#include "ptime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int64_t clock_system_now(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t clock_fixed_now(void *arg)
{
    return *(int64_t *)arg;
}

struct clock clock_system(void)
{
    return (struct clock){ clock_system_now, NULL };
}

struct clock clock_fixed(int64_t *us)
{
    return (struct clock){ clock_fixed_now, us };
}

int64_t clock_now_us(const struct clock *c)
{
    return c->now_us(c->arg);
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *const unit_names[WIN_COUNT] = { "minute", "hour", "day", "week", "month" };
static const int64_t unit_secs[WIN_COUNT] = { 60, 3600, 86400, 7 * 86400, 30 * 86400 };

bool window_unit_parse(const char *s, size_t n, enum window_unit *out)
{
    for (int i = 0; i < WIN_COUNT; i++)
        if (strlen(unit_names[i]) == n && memcmp(s, unit_names[i], n) == 0) {
            *out = (enum window_unit)i;
            return true;
        }
    return false;
}

const char *window_unit_name(enum window_unit u)
{
    return unit_names[u];
}

int64_t window_unit_seconds(enum window_unit u)
{
    return unit_secs[u];
}

bool tz_valid(const char *name)
{
    if (strcmp(name, "UTC") != 0) {
        struct stat st;
        char path[512];
        if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL)
            return false;
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return false;
        /* zone.tab, tzdata.zi ... live there too: a zone starts with "TZif" */
        char magic[4];
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            return false;
        size_t n = fread(magic, 1, sizeof magic, f);
        fclose(f);
        if (n != sizeof magic || memcmp(magic, "TZif", 4) != 0)
            return false;
    }
    return true;
}

bool tz_select(const char *name)
{
    if (!tz_valid(name))
        return false;
    setenv("TZ", name, 1);
    tzset();
    return true;
}

/* mktime() for a local wall-clock time, letting libc resolve DST. */
static time_t local_mktime(struct tm *tm)
{
    tm->tm_isdst = -1;
    return mktime(tm);
}

void window_bounds(enum window_unit u, time_t t, time_t *start, time_t *end)
{
    struct tm tm, s;
    localtime_r(&t, &tm);
    s = tm;
    switch (u) {
    case WIN_MINUTE:
        /* Whole-minute offsets are universal: minutes align in UTC. */
        *start = t - (((t % 60) + 60) % 60);
        *end = *start + 60;
        return;
    case WIN_HOUR:
        /* Local hours: offsets like +05:30 make them differ from UTC hours. */
        *start = t - (tm.tm_min * 60 + tm.tm_sec);
        *end = *start + 3600;
        return;
    case WIN_DAY:
        s.tm_hour = s.tm_min = s.tm_sec = 0;
        *start = local_mktime(&s);
        s = tm;
        s.tm_hour = s.tm_min = s.tm_sec = 0;
        s.tm_mday += 1;
        *end = local_mktime(&s);
        return;
    case WIN_WEEK: {
        int back = (tm.tm_wday + 6) % 7; /* days since Monday */
        s.tm_hour = s.tm_min = s.tm_sec = 0;
        s.tm_mday -= back;
        *start = local_mktime(&s);
        s = tm;
        s.tm_hour = s.tm_min = s.tm_sec = 0;
        s.tm_mday += 7 - back;
        *end = local_mktime(&s);
        return;
    }
    case WIN_MONTH:
        s.tm_hour = s.tm_min = s.tm_sec = 0;
        s.tm_mday = 1;
        *start = local_mktime(&s);
        s = tm;
        s.tm_hour = s.tm_min = s.tm_sec = 0;
        s.tm_mday = 1;
        s.tm_mon += 1;
        *end = local_mktime(&s);
        return;
    }
}

void time_format(time_t t, char *out, size_t size)
{
    struct tm tm;
    char off[8];
    localtime_r(&t, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(off, sizeof off, "%z", &tm); /* +0100 */
    if (n + 7 <= size)
        snprintf(out + n, size - n, "%c%c%c:%c%c", off[0], off[1], off[2], off[3], off[4]);
}
