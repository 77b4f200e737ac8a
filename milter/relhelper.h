/* relhelper.h: the privileged helper of the hold-queue release (issue 6/7,
 * pacing mode hold): releasing a held message takes "postsuper -H", which
 * only root may run, and postern-milter runs as an unprivileged user.  So
 * a small child process is forked before the privileges are dropped; it
 * keeps root and does one thing: for each queue ID it is sent, run
 *     POSTSUPER -c CONFIG_DIR -H QUEUE_ID
 * and answer.  It takes nothing else: every ID is checked (qid.h: the two
 * forms Postfix makes) by the milter before sending and again by the
 * helper before it runs anything, so that an option, "ALL", a path or a
 * second word never reaches postsuper.  No shell: the program is run with
 * an argument vector and a fixed environment.
 *
 * Protocol over a socketpair, one line each way:
 *     -> "H QUEUE_ID\n"
 *     <- "OK QUEUE_ID\n" | "ERR QUEUE_ID reason\n" | "ERR - reason\n"
 * A line the helper cannot read (too long, no "H ", a bad ID) gets ERR and
 * the helper goes on; it ends when the milter closes its end.
 *
 * One caller at a time (the release scheduler's thread); the helper is
 * one per daemon. */
#ifndef POSTERN_MILTER_RELHELPER_H
#define POSTERN_MILTER_RELHELPER_H
#include <stdbool.h>
#include <sys/types.h>

#include "buf.h"

struct relhelper;

/* Fork the helper (call while still root, before threads); postsuper:
 * the program (absolute path), config_dir: Postfix's (its -c).  NULL with
 * err set when either is not an absolute path or the fork fails. */
struct relhelper *relhelper_start(const char *postsuper, const char *config_dir, struct buf *err);
/* Release one held message.  False with err set: a malformed ID (nothing
 * sent), the helper's ERR (postsuper failed: its exit status), or the
 * helper gone. */
bool relhelper_release(struct relhelper *h, const char *queue_id, struct buf *err);
/* The helper's pid (for tests and the log). */
pid_t relhelper_pid(const struct relhelper *h);
/* Close the channel and reap the helper. */
void relhelper_stop(struct relhelper *h);

/* The helper's side, exposed for the unit tests: answer one request line
 * (without its '\n') into answer: the ID checked, postsuper run.  Returns
 * true when postsuper ran and exited 0. */
bool relhelper_handle(const char *postsuper, const char *config_dir, const char *line, struct buf *answer);

#endif
