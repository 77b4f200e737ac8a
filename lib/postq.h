/* postq.h: what postern asks of Postfix's queue through postqueue(1),
 * which any user may run: the queue as JSON (postqueue -j, one object per
 * line, parsed with jansson) for the hold schedule's reconciliation and
 * posternctl; and "deliver this deferred message now" (postqueue -i) after
 * a release from the hold queue, which postsuper -H leaves in the deferred
 * queue until the next deferred-queue scan (queue_run_delay, 300 s by
 * default) otherwise. */
#ifndef POSTERN_POSTQ_H
#define POSTERN_POSTQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct postq_msg {
    char queue_id[32];         /* checked with qid_valid() */
    char queue_name[16];       /* "hold", "deferred", "active", "incoming", "maildrop" */
    int64_t arrival_time;      /* Unix seconds */
    uint64_t size;
    char *sender;              /* "" for the null sender */
    char **rcpts;              /* the recipients' addresses */
    size_t n_rcpts;
    char *delay_reason;        /* of the first recipient that has one, NULL: none */
};

struct postq_list {
    struct postq_msg *v;
    size_t n;
    size_t skipped;            /* lines that were not a well-formed message (not fatal) */
};

/* Parse postqueue -j output (text of len bytes): one JSON object per
 * line; a line that is not one, or whose queue_id is not well-formed, is
 * counted in skipped and ignored.  Never fails. */
void postq_parse(const char *text, size_t len, struct postq_list *out);
void postq_list_free(struct postq_list *l);

/* postqueue -c CONFIG_DIR -j; false with err set when it cannot run or
 * fails (Postfix down: "mail system is down"). */
bool postq_list(const char *postqueue, const char *config_dir, struct postq_list *out, struct buf *err);
/* postsuper -c CONFIG_DIR -H QUEUE_ID (the ID checked first; root only):
 * out of the hold queue into the deferred queue.  postsuper releases the
 * message and then tells the queue manager; with Postfix stopped that
 * last step fails (exit 1) although the message was released, which
 * postsuper says on stderr ("ID: released from hold"): true then too.
 * False with err set. */
bool postq_release(const char *postsuper, const char *config_dir, const char *queue_id, struct buf *err);
/* postqueue -c CONFIG_DIR -i QUEUE_ID (the ID checked first); false with
 * err set. */
bool postq_deliver(const char *postqueue, const char *config_dir, const char *queue_id, struct buf *err);

#endif
