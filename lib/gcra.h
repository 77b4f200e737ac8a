/* gcra.h: the generic cell rate algorithm (GCRA), the token bucket of
 * postern's pacing (issue 6/7, rules' `pace`: N messages per unit with a
 * burst).  A bucket is one number, its theoretical arrival time (TAT):
 * the time the next message would be due if the account sent at exactly
 * the rate.  A message at `now` may go at once while TAT - now is within
 * the tolerance (burst - 1 intervals); else it must wait until TAT -
 * tolerance.  Pure arithmetic on nanoseconds (int64: 292 years), saturated
 * so that no rate or burst the rules accept overflows; the caller keeps
 * the state (memory, SQLite) and the clock.
 *
 *   gcra_wait()  how long one more message would wait now (the bucket is
 *                not changed): delay and defer modes ask first;
 *   gcra_take()  the message is counted, going at now + that wait: the
 *                bucket moves one interval on (hold mode takes at once
 *                and releases at the returned time). */
#ifndef POSTERN_GCRA_H
#define POSTERN_GCRA_H
#include <stdbool.h>
#include <stdint.h>

struct gcra_rate {
    int64_t interval_ns;       /* one message per this many ns (>= 1) */
    int64_t tolerance_ns;      /* (burst - 1) intervals, saturated */
};

struct gcra {
    int64_t tat_ns;            /* theoretical arrival time; 0: a bucket never used (full) */
};

/* count messages per period_s seconds (both >= 1), burst >= 1.  False
 * (r unchanged) for a zero argument. */
bool gcra_rate_init(struct gcra_rate *r, uint64_t count, uint64_t period_s, uint64_t burst);
/* ns one more message would wait at now_ns (0: it may go now). */
int64_t gcra_wait(const struct gcra *g, const struct gcra_rate *r, int64_t now_ns);
/* Count one message; returns its wait (as gcra_wait): it goes at now_ns
 * plus that. */
int64_t gcra_take(struct gcra *g, const struct gcra_rate *r, int64_t now_ns);
/* Messages that could go at once at now_ns (0 .. burst). */
uint64_t gcra_available(const struct gcra *g, const struct gcra_rate *r, int64_t now_ns);

#endif
