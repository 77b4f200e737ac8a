/* cmd.c: run one of Postfix's commands by argument vector, its output
 * kept (see cmd.h). */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMD_ERR_MAX 4096

/* Read both pipes to their end (out: into out unless NULL; at most
 * CMD_OUT_MAX); false when out grew past it. */
static bool cmd_drain(int ofd, int efd, struct buf *out, struct buf *errout)
{
    struct pollfd pf[2] = { { ofd, POLLIN, 0 }, { efd, POLLIN, 0 } };
    bool ok = true;
    char chunk[65536];
    while (pf[0].fd >= 0 || pf[1].fd >= 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || pf[i].revents == 0)
                continue;
            ssize_t n = read(pf[i].fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                pf[i].fd = -1;
                continue;
            }
            if (i == 0 && out != NULL && ok) {
                if (out->len + (size_t)n > CMD_OUT_MAX)
                    ok = false;
                else
                    buf_add(out, chunk, (size_t)n);
            } else if (i == 1 && errout->len < CMD_ERR_MAX) {
                buf_add(errout, chunk, (size_t)n);
            }
        }
    }
    return ok;
}

int cmd_run(char *const argv[], struct buf *out, struct buf *err)
{
    struct buf errout;
    buf_init(&errout);
    int st = cmd_run_stderr(argv, out, &errout, err);
    buf_free(&errout);
    return st;
}

int cmd_run_stderr(char *const argv[], struct buf *out, struct buf *errout, struct buf *err)
{
    static char *const envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
    /* checked first: posix_spawn reports a program it cannot execute
     * only as the child's exit status under some implementations (and
     * under valgrind), which would read as the program's own */
    if (access(argv[0], X_OK) != 0) {
        buf_printf(err, "cannot run %s: %s", argv[0], strerror(errno));
        return -1;
    }
    int op[2], ep[2];
    if (pipe2(op, O_CLOEXEC) != 0) {
        buf_printf(err, "cannot run %s: pipe: %s", argv[0], strerror(errno));
        return -1;
    }
    if (pipe2(ep, O_CLOEXEC) != 0) {
        buf_printf(err, "cannot run %s: pipe: %s", argv[0], strerror(errno));
        close(op[0]);
        close(op[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    /* the program starts with no signal blocked and every disposition at
     * its default: the daemon's threads block SIGHUP, SIGTERM and SIGINT
     * (sigwait) and ignore SIGPIPE, which a child would otherwise keep
     * (postsuper or postqueue that SIGTERM cannot stop) */
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&sa, &none);
    posix_spawnattr_setsigdefault(&sa, &all);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &sa, argv, envp);
    posix_spawnattr_destroy(&sa);
    posix_spawn_file_actions_destroy(&fa);
    close(op[1]);
    close(ep[1]);
    if (rc != 0) {
        close(op[0]);
        close(ep[0]);
        buf_printf(err, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    buf_reset(errout);
    bool fits = cmd_drain(op[0], ep[0], out, errout);
    close(op[0]);
    close(ep[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            buf_printf(err, "cannot run %s: waitpid: %s", argv[0], strerror(errno));
            return -1;
        }
    int status = -1;
    if (!fits) {
        buf_printf(err, "%s wrote more than %zu bytes", argv[0], (size_t)CMD_OUT_MAX);
    } else if (WIFEXITED(st)) {
        status = WEXITSTATUS(st);
        if (status != 0) {
            size_t n = strcspn(errout->data, "\n");
            buf_printf(err, "%s exited with %d%s%.*s", argv[0], status, n > 0 ? ": " : "", (int)n, errout->data);
        }
    } else {
        buf_printf(err, "%s was killed by signal %d", argv[0], WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    return status;
}
