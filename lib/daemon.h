/* daemon.h: the life cycle shared by postern's daemons (postern-policyd,
 * postern-milter): going to the background with a readiness pipe, the pid
 * file (an flock: a second instance is refused), the state directory, the
 * privilege drop.  Everything is in a struct daemon owned by the caller
 * (no process-wide state); the program name appears in the messages.
 *
 * Order of use: daemon_init(), daemon_set_user(), daemon_background()
 * (unless in the foreground), daemon_pidfile_take(),
 * daemon_state_dir_prepare(), create the sockets, daemon_drop_privileges(),
 * open what the daemon writes, daemon_ready(), serve, daemon_free().
 *
 * Start-up failures come back as false with a message in err (the caller
 * cleans up and exits 1 with it); only daemon_background() exits by itself
 * (fork/pipe/setsid failures, via log_fatal). */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "buf.h"

struct daemon {
    const char *prog;          /* "postern-policyd": named in messages */
    struct passwd pw;          /* the user to run as: pw_name owned, pw_uid, pw_gid; other strings NULL */
    char *pid_path;            /* the pid file held locked, NULL if none */
    int pid_fd;                /* its descriptor, -1 if none */
    int ready_fd;              /* in the background: the pipe to the waiting parent, -1 if none */
};

void daemon_init(struct daemon *d, const char *prog);
/* Release the pid file and free d (safe on a d that only had daemon_init). */
void daemon_free(struct daemon *d);

/* path made absolute against the current directory (the daemon chdirs to
 * / in the background); caller frees. */
char *daemon_absolute_path(const char *path);
/* The options both daemons take: [-c postern.yaml] [-f] [-n] [-d] [-h]. */
struct daemon_options {
    const char *conf;          /* -c, else the default given */
    bool foreground;           /* -f */
    bool check;                /* -n */
    bool debug;                /* -d */
};
/* Parse them; -h prints usage to stdout and exits 0, anything else
 * unknown prints it to stderr and exits 2. */
void daemon_parse_options(int argc, char **argv, const char *default_conf, void (*usage)(FILE *out),
                          struct daemon_options *o);

struct postern_conf;
/* Load postern.yaml at path into conf; on errors print every one
 * (file:line:column) and "PROG: N errors in PATH" to stderr: false. */
bool daemon_load_conf(const char *prog, struct postern_conf *conf, const char *path);

/* Look up the user to run as; false when there is no such user. */
bool daemon_set_user(struct daemon *d, const char *name);

/* Double fork.  In the daemon, d->ready_fd is the write end of a pipe; the
 * original process waits on it and exits 0 once daemon_ready() was called,
 * 1 when the daemon died first (so an init system or a shell sees start-up
 * errors, which the daemon still writes to stderr until it is ready). */
void daemon_background(struct daemon *d);
/* Start-up is over: in the background, point stdin/stdout/stderr to
 * /dev/null and tell the waiting parent.  Nothing in the foreground. */
void daemon_ready(struct daemon *d);

/* Create a missing directory (one level) with mode, owned by pw when
 * running as root; logs a "mkdir" line.  False with err set. */
bool daemon_make_dir(const char *dir, mode_t mode, const struct passwd *pw, struct buf *err);

/* Take the pid file path (creating its directory, owned by the user, when
 * missing): lock it, write our pid.  Refused when a live instance holds
 * the lock ("another PROG is running (pid N): it holds the lock of PATH"). */
bool daemon_pidfile_take(struct daemon *d, const char *path, struct buf *err);
/* Remove the pid file (or, when its directory is no longer writable after
 * the privilege drop, empty it) and drop the lock.  Idempotent. */
void daemon_pidfile_release(struct daemon *d);

/* Create the state directory (0750, owned by the user) when missing;
 * refuse a path that is not a directory. */
bool daemon_state_dir_prepare(const struct daemon *d, const char *dir, struct buf *err);

/* initgroups/setgid/setuid to the user, and check that root cannot be
 * regained.  Nothing to do when already running as that user; refused
 * when running as another non-root user. */
bool daemon_drop_privileges(const struct daemon *d, struct buf *err);

#endif
