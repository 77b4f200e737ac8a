/* cmd.h: running one of Postfix's commands (postsuper, postqueue,
 * postconf) for postern: by argument vector through posix_spawn, never a
 * shell, with a fixed environment (PATH only), its standard output kept
 * (bounded) and its standard error kept for the error message.  Safe in
 * a threaded daemon (posix_spawn; the pipes close-on-exec). */
#ifndef POSTERN_CMD_H
#define POSTERN_CMD_H
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Largest standard output kept (postqueue -j of a big queue: more is an
 * error, not a truncated answer). */
#define CMD_OUT_MAX ((size_t)256 << 20)

/* Run argv[0] (an absolute path) with argv, standard input /dev/null;
 * out (may be NULL: discarded) gets its standard output.  Returns its exit
 * status (0..255), or -1 with err set when it could not run, was killed
 * or wrote more than CMD_OUT_MAX.  On a non-zero exit, err gets
 * "PROGRAM exited with N: first line of its standard error". */
int cmd_run(char *const argv[], struct buf *out, struct buf *err);
/* The same, with its whole standard error (up to 4 KB) in errout. */
int cmd_run_stderr(char *const argv[], struct buf *out, struct buf *errout, struct buf *err);

#endif
