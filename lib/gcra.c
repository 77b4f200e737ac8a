/* gcra.c: the generic cell rate algorithm of postern's pacing (gcra.h). */
#include "gcra.h"

/* a + b, saturated at INT64_MAX (both >= 0) */
static int64_t gcra_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

bool gcra_rate_init(struct gcra_rate *r, uint64_t count, uint64_t period_s, uint64_t burst)
{
    if (count == 0 || period_s == 0 || burst == 0)
        return false;
    /* the interval, rounded up: never faster than the rate */
    const uint64_t max_s = (uint64_t)INT64_MAX / 1000000000u;
    uint64_t period_ns = period_s > max_s ? (uint64_t)INT64_MAX : period_s * 1000000000u;
    uint64_t interval = period_ns / count + (period_ns % count != 0);
    r->interval_ns = interval > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(interval ? interval : 1);
    uint64_t b = burst - 1;
    r->tolerance_ns = b != 0 && (uint64_t)r->interval_ns > (uint64_t)INT64_MAX / b ? INT64_MAX
                                                                                   : (int64_t)((uint64_t)r->interval_ns * b);
    return true;
}

int64_t gcra_wait(const struct gcra *g, const struct gcra_rate *r, int64_t now_ns)
{
    /* due at TAT - tolerance (a never-used bucket: now) */
    int64_t due = g->tat_ns - r->tolerance_ns;
    if (g->tat_ns < INT64_MIN + r->tolerance_ns)
        due = INT64_MIN;
    return due > now_ns ? due - now_ns : 0;
}

int64_t gcra_take(struct gcra *g, const struct gcra_rate *r, int64_t now_ns)
{
    int64_t wait = gcra_wait(g, r, now_ns);
    int64_t at = gcra_add(now_ns, wait);
    int64_t base = g->tat_ns > at ? g->tat_ns : at;
    g->tat_ns = gcra_add(base, r->interval_ns);
    return wait;
}

uint64_t gcra_available(const struct gcra *g, const struct gcra_rate *r, int64_t now_ns)
{
    /* room left in the tolerance, in intervals, plus the one due now */
    if (g->tat_ns <= now_ns)
        return (uint64_t)(r->tolerance_ns / r->interval_ns) + 1;
    int64_t ahead = g->tat_ns - now_ns;
    if (ahead > r->tolerance_ns)
        return 0;
    return (uint64_t)((r->tolerance_ns - ahead) / r->interval_ns) + 1;
}
