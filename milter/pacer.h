/* pacer.h: the per-account send-rate buckets of postern-milter (issue
 * 6/7, rules' `pace`): one GCRA bucket (gcra.h) per paced account and per
 * paced tenant, shared by every milter thread, each change written to
 * SQLite (table pace_bucket of the file given) before the answer that
 * depends on it, so that a restart keeps the pace.
 *
 * A message of an account goes through the account's bucket and, when the
 * tenant has a `pace` of its own, the tenant's; the wait is the longer of
 * the two, and the mode is the account's (else the tenant's):
 *   delay  the wait is at most max_delay: both buckets are charged for the
 *          time the message goes (now + wait), PACER_GO (no wait) or
 *          PACER_DELAY; a longer wait is PACER_DEFER, nothing charged;
 *   defer  no wait: charged, PACER_GO; else PACER_DEFER, nothing charged
 *          (the client comes back after the wait);
 *   hold   no wait: charged, PACER_GO; else charged for its release time
 *          (now + wait), PACER_HOLD: the message is held and released then.
 * Times are wall-clock nanoseconds (CLOCK_REALTIME): they outlive the
 * process.  Thread-safe; one pacer per daemon. */
#ifndef POSTERN_MILTER_PACER_H
#define POSTERN_MILTER_PACER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "rules.h"

struct pacer;

/* The daemon's store of the buckets, under state_dir. */
#define PACE_STORE_FILE "pace.sqlite"

/* One bucket a message goes through: its key ("tenant/account" or
 * "tenant") and its rule. */
struct pacer_bucket {
    const char *key;
    const struct pace *pace;
};

enum pacer_verdict { PACER_GO, PACER_DELAY, PACER_DEFER, PACER_HOLD };

struct pacer_decision {
    enum pacer_verdict verdict;
    int64_t wait_ns;           /* DELAY: how long; DEFER: when to retry; HOLD: until the release */
    const char *by;            /* the key of the bucket that set the wait (NULL: none) */
};

/* Open (or create) the buckets' store at path and load them.  NULL with
 * err set. */
struct pacer *pacer_open(const char *path, struct buf *err);
void pacer_close(struct pacer *p);

/* Decide for one message at now_ns: mode and max_delay_ms from the rule
 * that applies (see above).  False with err set when the store cannot be
 * written: nothing is charged then, the caller gives its on_error answer. */
bool pacer_decide(struct pacer *p, const struct pacer_bucket *b, size_t n, enum pace_mode mode,
                  uint64_t max_delay_ms, int64_t now_ns, struct pacer_decision *out, struct buf *err);

/* The bucket's theoretical arrival time (gcra.h; for posternctl pacing
 * and the tests); false when the key was never used. */
bool pacer_bucket_tat(struct pacer *p, const char *key, int64_t *tat_ns);

#endif
