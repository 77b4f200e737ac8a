/* releaser.h: the release scheduler of pacing mode hold (issue 6/7): one
 * thread of postern-milter that lets the held messages of the schedule
 * (holdq.h) leave Postfix's hold queue at their account's pace, in
 * arrival order, fair across accounts (pacer_release_next), and keeps the
 * schedule true to Postfix's queue.
 *
 * One release:
 *   1. the pacer claims the message and charges the buckets (one
 *      transaction);
 *   2. the privileged helper (relhelper.h) runs postsuper -H: the message
 *      moves to the deferred queue;
 *   3. the helper runs postqueue -i: Postfix delivers it now (else it
 *      would wait for the next deferred-queue scan, queue_run_delay);
 *   4. the row goes and the release is audited, with the queue ID.
 * After a crash between 1 and 4, the message is found claimed at the next
 * start and released again (postsuper -H of a released message does
 * nothing): it leaves once.
 *
 * Postfix down: postqueue fails; the releases stop (the one message
 * released meanwhile leaves when Postfix starts) and postqueue -j is
 * asked every second until Postfix answers.  The pace then goes on; the
 * account's burst is the most that leaves at once.
 *
 * Reconciliation with postqueue -j (run by the helper), while the schedule
 * holds messages: at start and every
 * milter.hold_reconcile: a message of the schedule no longer in the hold
 * queue (released or deleted by hand) is dropped from it and audited
 * ("drop"); messages in the hold queue that the schedule does not know
 * (held by a scanner's verdict, by header_checks or by hand) are logged
 * (event=pace_unknown_held) when their set changes: postern leaves them
 * alone.  A message held in the last 30 s is not judged (Postfix may not
 * have filed it yet). */
#ifndef POSTERN_MILTER_RELEASER_H
#define POSTERN_MILTER_RELEASER_H
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "pacer.h"
#include "relhelper.h"

struct audit_rec;

struct releaser_cfg {
    uint64_t reconcile_ms;
    pacer_rules_fn *rules;     /* the rules in force for an account (may be NULL) */
    void *rules_arg;
    /* write one audit record (the milter's sink) */
    bool (*audit)(void *arg, const struct audit_rec *rec, struct buf *err);
    void *audit_arg;
};

struct releaser;

/* Start the thread; it owns h from here (stopped with it).  NULL with
 * err set. */
struct releaser *releaser_start(struct pacer *p, struct relhelper *h, const struct releaser_cfg *cfg,
                                struct buf *err);
/* Stop the thread (a release in progress finishes), stop the helper,
 * free. */
void releaser_stop(struct releaser *r);
/* Messages released since the start (for the stop log). */
uint64_t releaser_count(const struct releaser *r);

#endif
