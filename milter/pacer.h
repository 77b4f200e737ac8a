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
 *   hold   no wait, nothing of the account held and the account not
 *          paused: charged, PACER_GO; else PACER_HOLD: the message is
 *          recorded in the hold schedule (holdq.h, same store, same
 *          transaction) and charged when it is released: the release
 *          scheduler (releaser.h) asks pacer_release_next() for the next
 *          message whose buckets allow it, fair across accounts.  Held
 *          messages leave one interval apart, without the burst (Postfix
 *          sends messages queued at the same time in no set order, and a
 *          pause of the releases is not made up in a burst).
 * Times are wall-clock nanoseconds (CLOCK_REALTIME): they outlive the
 * process.  Thread-safe; one pacer per daemon. */
#ifndef POSTERN_MILTER_PACER_H
#define POSTERN_MILTER_PACER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "holdq.h"
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
    uint64_t held_before;      /* HOLD: messages of the account held before it */
};

/* Open (or create) the buckets' store at path and load them.  NULL with
 * err set. */
struct pacer *pacer_open(const char *path, struct buf *err);
void pacer_close(struct pacer *p);

/* Mode hold: what the schedule records of a message (holdq.h). */
struct pacer_hold {
    const char *queue_id;      /* Postfix's; must be well-formed (qid.h) */
    const char *tenant;
    const char *rule_account;  /* the rules' account name */
    const struct pace *rule;   /* the rate its release keeps when the rules no longer have one */
};

/* Decide for one message at now_ns: mode and max_delay_ms from the rule
 * that applies (see above); hold: the message (else NULL).  For
 * PACER_HOLD, wait_ns is the estimated time to its release (the messages
 * held before it at the rate) and held_before their number.  False with
 * err set when the store cannot be written, or mode hold without a
 * well-formed queue ID: nothing is charged nor recorded then, the caller
 * gives its on_error answer. */
bool pacer_decide(struct pacer *p, const struct pacer_bucket *b, size_t n, enum pace_mode mode,
                  uint64_t max_delay_ms, int64_t now_ns, const struct pacer_hold *hold,
                  struct pacer_decision *out, struct buf *err);

/* --- the release side (releaser.c) ------------------------------------ */

/* The rules in force for a held account's release, copied (the snapshot
 * may change meanwhile): its own pace and its tenant's (.set false: none);
 * no pace of its own nor of its tenant: the rule recorded at its last
 * hold applies. */
typedef void pacer_rules_fn(void *arg, const struct holdq_account *a, struct pace *own, struct pace *tenant);

struct pacer_release {
    struct holdq_msg msg;
    struct holdq_account account;
    char rate[96];             /* the rate it was released at: "600/minute, burst 10" */
};

/* The next message to release at now_ns: of the accounts that have one
 * waiting and are not paused, least recently released first, the first
 * whose buckets (its own, its tenant's) allow one now.  That message is
 * claimed and the buckets charged, in one transaction: 1, out filled.
 * 0: nothing is due; *next_ns is when the first may be (0: none waiting).
 * -1: the store failed (err). */
int pacer_release_next(struct pacer *p, pacer_rules_fn *rules, void *arg, int64_t now_ns,
                       struct pacer_release *out, int64_t *next_ns, struct buf *err);
/* The claimed message is released (or gone: paced false): its row goes. */
bool pacer_release_done(struct pacer *p, const char *queue_id, bool paced, int64_t now_ns, struct buf *err);
/* The claimed message could not be released (the helper failed): back
 * to waiting, in its place. */
bool pacer_release_undo(struct pacer *p, const char *queue_id, struct buf *err);
/* The messages left claimed (a crash between the claim and the end of
 * the release): *out mem_alloc'ed. */
bool pacer_release_claimed(struct pacer *p, struct holdq_msg **out, size_t *n, struct buf *err);
/* Whether the schedule holds any message: 1, 0, -1 on failure. */
int pacer_held_any(struct pacer *p, struct buf *err);
/* Every message in the schedule (the reconciliation): *out mem_alloc'ed. */
bool pacer_held_all(struct pacer *p, struct holdq_msg **out, size_t *n, struct buf *err);

/* The bucket's theoretical arrival time (gcra.h; for posternctl pacing
 * and the tests); false when the key was never used. */
bool pacer_bucket_tat(struct pacer *p, const char *key, int64_t *tat_ns);

#endif
