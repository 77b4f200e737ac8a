/* relhelper.c: the privileged helper that runs "postsuper -H QUEUE_ID" for
 * the hold-queue release, and only that (see relhelper.h). */
#include "relhelper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "qid.h"

#define RELHELPER_LINE_MAX 128

struct relhelper {
    int fd;                    /* our end of the socketpair */
    pid_t pid;
};

/* Run postsuper -c config_dir -H qid; its exit status, or -1 with err. */
static int relhelper_run(const char *postsuper, const char *config_dir, const char *qid, struct buf *err)
{
    char *const argv[] = { (char *)postsuper, (char *)"-c", (char *)config_dir, (char *)"-H", (char *)qid, NULL };
    char *const envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, postsuper, NULL, NULL, argv, envp);
    if (rc != 0) {
        buf_printf(err, "cannot run %s: %s", postsuper, strerror(rc));
        return -1;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            buf_printf(err, "waitpid: %s", strerror(errno));
            return -1;
        }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    buf_printf(err, "%s killed by signal %d", postsuper, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return -1;
}

bool relhelper_handle(const char *postsuper, const char *config_dir, const char *line, struct buf *answer)
{
    buf_reset(answer);
    if (strncmp(line, "H ", 2) != 0) {
        buf_puts(answer, "ERR - expected \"H QUEUE_ID\"\n");
        return false;
    }
    const char *qid = line + 2;
    if (!qid_valid(qid)) {
        buf_puts(answer, "ERR - not a Postfix queue ID\n");
        return false;
    }
    struct buf err;
    buf_init(&err);
    int st = relhelper_run(postsuper, config_dir, qid, &err);
    if (st == 0)
        buf_printf(answer, "OK %s\n", qid);
    else if (st > 0)
        buf_printf(answer, "ERR %s postsuper exited with %d\n", qid, st);
    else
        buf_printf(answer, "ERR %s %s\n", qid, err.data);
    buf_free(&err);
    return st == 0;
}

/* The child: read lines until the milter closes its end. */
static _Noreturn void relhelper_main(int fd, const char *postsuper, const char *config_dir)
{
    char line[RELHELPER_LINE_MAX + 2];
    size_t len = 0;
    bool skipping = false;     /* inside a line too long: dropped up to its '\n' */
    struct buf answer;
    buf_init(&answer);
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0);
        if (c != '\n') {
            if (len < RELHELPER_LINE_MAX)
                line[len++] = c;
            else
                skipping = true;
            continue;
        }
        line[len] = '\0';
        if (skipping || memchr(line, '\0', len) != NULL) {
            buf_reset(&answer);
            buf_puts(&answer, "ERR - line too long or holding NUL\n");
        } else {
            relhelper_handle(postsuper, config_dir, line, &answer);
        }
        len = 0;
        skipping = false;
        size_t off = 0;
        while (off < answer.len) {
            ssize_t w = write(fd, answer.data + off, answer.len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                _exit(0);
            off += (size_t)w;
        }
    }
}

struct relhelper *relhelper_start(const char *postsuper, const char *config_dir, struct buf *err)
{
    if (postsuper == NULL || postsuper[0] != '/' || config_dir == NULL || config_dir[0] != '/') {
        buf_puts(err, "release helper: postsuper and Postfix's configuration directory must be absolute paths");
        return NULL;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        buf_printf(err, "release helper: socketpair: %s", strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        buf_printf(err, "release helper: fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    if (pid == 0) {
        close(sv[0]);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        relhelper_main(sv[1], postsuper, config_dir);
    }
    close(sv[1]);
    struct relhelper *h = mem_alloc(sizeof *h);
    h->fd = sv[0];
    h->pid = pid;
    return h;
}

bool relhelper_release(struct relhelper *h, const char *queue_id, struct buf *err)
{
    if (queue_id == NULL || !qid_valid(queue_id)) {
        buf_printf(err, "not a Postfix queue ID: \"%.40s\"", queue_id != NULL ? queue_id : "");
        return false;
    }
    char req[RELHELPER_LINE_MAX];
    int n = snprintf(req, sizeof req, "H %s\n", queue_id);
    for (int off = 0; off < n;) {
        ssize_t w = send(h->fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            buf_printf(err, "release helper gone: %s", w < 0 ? strerror(errno) : "closed");
            return false;
        }
        off += (int)w;
    }
    char ans[RELHELPER_LINE_MAX + 160];
    size_t len = 0;
    while (len < sizeof ans - 1) {
        ssize_t r = read(h->fd, ans + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            buf_puts(err, "release helper gone: no answer");
            return false;
        }
        if (ans[len] == '\n')
            break;
        len++;
    }
    ans[len] = '\0';
    if (strncmp(ans, "OK ", 3) == 0 && strcmp(ans + 3, queue_id) == 0)
        return true;
    buf_printf(err, "release helper: %s", ans);
    return false;
}

pid_t relhelper_pid(const struct relhelper *h)
{
    return h->pid;
}

void relhelper_stop(struct relhelper *h)
{
    if (h == NULL)
        return;
    close(h->fd);
    while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    mem_free(h);
}
