/* relhelper.h: the privileged helper of the hold-queue release (issue
 * 6/7, pacing mode hold): releasing a held message takes "postsuper -H",
 * which only root may run, and postern-milter runs as an unprivileged
 * user.  So a small child process is forked before the privileges are
 * dropped; it keeps root and does three things only, for the release
 * scheduler (releaser.h):
 *     POSTFIX_COMMAND_DIR/postsuper -c CONFIG_DIR -H QUEUE_ID
 *     POSTFIX_COMMAND_DIR/postqueue -c CONFIG_DIR -i QUEUE_ID
 *     POSTFIX_COMMAND_DIR/postqueue -c CONFIG_DIR -j
 * Why postqueue too, which any user may run: with -c naming a Postfix
 * that is not the default one (a second instance, the test lab), Postfix's
 * set-group-ID postqueue refuses an unprivileged caller unless the default
 * main.cf lists the directory in alternate_config_directories; as root it
 * works for every instance, with nothing to edit.
 * Every ID is checked (qid.h: the two forms Postfix makes) by the milter
 * before sending and again by the helper before it runs anything, so
 * that an option, "ALL", a path or a second word never reaches postsuper.
 * No shell: the programs run with an argument vector and a fixed
 * environment (cmd.h).  The child closes every descriptor of the milter's
 * but its end of the channel.
 *
 * Protocol over a socketpair, one line each way:
 *     -> "H QUEUE_ID\n" | "I QUEUE_ID\n"
 *     <- "OK QUEUE_ID\n" | "ERR QUEUE_ID reason\n" | "ERR - reason\n"
 *     -> "J\n"
 *     <- "DATA N\n" and N bytes (postqueue -j's output) | "ERR - reason\n"
 * A line the helper cannot read (too long, another verb, a bad ID) gets
 * ERR and the helper goes on; it ends when the milter closes its end (or
 * dies: kill -9 of the milter ends the helper too).
 *
 * One caller at a time (the release scheduler's thread); the helper is
 * one per daemon. */
#ifndef POSTERN_MILTER_RELHELPER_H
#define POSTERN_MILTER_RELHELPER_H
#include <stdbool.h>
#include <sys/types.h>

#include "buf.h"

struct relhelper;

/* Fork the helper (call while still root, before threads); command_dir:
 * where postsuper and postqueue are, config_dir: Postfix's (their -c).
 * NULL with err set when either is not an absolute path or the fork
 * fails. */
struct relhelper *relhelper_start(const char *command_dir, const char *config_dir, struct buf *err);
/* Release one held message.  False with err set: a malformed ID (nothing
 * sent), the helper's ERR (postsuper failed: its exit status), or the
 * helper gone. */
bool relhelper_release(struct relhelper *h, const char *queue_id, struct buf *err);
/* Ask Postfix to deliver the (released, deferred) message now: postqueue
 * -i.  False with err set. */
bool relhelper_deliver(struct relhelper *h, const char *queue_id, struct buf *err);
/* Postfix's queue: postqueue -j's output into out (postq_parse()).  False
 * with err set (Postfix down: postqueue's words). */
bool relhelper_queue(struct relhelper *h, struct buf *out, struct buf *err);
/* The helper's pid (for tests and the log). */
pid_t relhelper_pid(const struct relhelper *h);
/* Close the channel and reap the helper. */
void relhelper_stop(struct relhelper *h);

/* The helper's side, exposed for the unit tests: answer one request line
 * (without its '\n') into answer: the ID checked, the program run.
 * Returns true when it ran and exited 0. */
bool relhelper_handle(const char *command_dir, const char *config_dir, const char *line, struct buf *answer);

#endif
