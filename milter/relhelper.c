/* relhelper.c: the privileged helper of the hold-queue release: postsuper
 * -H and postqueue -i of one well-formed queue ID, postqueue -j, nothing
 * else (see relhelper.h). */
#include "relhelper.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "cmd.h"
#include "postq.h"
#include "qid.h"

#define RELHELPER_LINE_MAX 128

struct relhelper {
    int fd;                    /* our end of the socketpair */
    pid_t pid;
};

/* Run COMMAND_DIR/prog -c config_dir opt [qid]; its exit status, or -1;
 * err gets the reason (with the first line of its stderr); out (may be
 * NULL) its standard output. */
static int relhelper_run(const char *command_dir, const char *prog, const char *config_dir, const char *opt,
                         const char *qid, struct buf *out, struct buf *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", command_dir, prog);
    if (strcmp(opt, "-H") == 0)
        return postq_release(path, config_dir, qid, err) ? 0 : 1;
    char *const argv[] = { path, (char *)"-c", (char *)config_dir, (char *)opt, (char *)qid, NULL };
    return cmd_run(argv, out, err);
}

bool relhelper_handle(const char *command_dir, const char *config_dir, const char *line, struct buf *answer)
{
    buf_reset(answer);
    struct buf err, out;
    buf_init(&err);
    buf_init(&out);
    int st = -1;
    if (strcmp(line, "J") == 0) {
        st = relhelper_run(command_dir, "postqueue", config_dir, "-j", NULL, &out, &err);
        if (st == 0)
            buf_printf(answer, "DATA %zu\n", out.len), buf_add(answer, out.data, out.len);
        else
            buf_printf(answer, "ERR - %s\n", err.data);
    } else if ((line[0] != 'H' && line[0] != 'I') || line[1] != ' ') {
        buf_puts(answer, "ERR - expected \"H QUEUE_ID\", \"I QUEUE_ID\" or \"J\"\n");
    } else if (!qid_valid(line + 2)) {
        buf_puts(answer, "ERR - not a Postfix queue ID\n");
    } else {
        const char *qid = line + 2;
        st = line[0] == 'H' ? relhelper_run(command_dir, "postsuper", config_dir, "-H", qid, NULL, &err)
                            : relhelper_run(command_dir, "postqueue", config_dir, "-i", qid, NULL, &err);
        if (st == 0)
            buf_printf(answer, "OK %s\n", qid);
        else
            buf_printf(answer, "ERR %s %s\n", qid, err.data);
    }
    for (size_t i = 0; i + 1 < answer->len && strncmp(answer->data, "DATA ", 5) != 0; i++)
        if (answer->data[i] == '\n' || answer->data[i] == '\0')
            answer->data[i] = ' '; /* one line, whatever the program wrote */
    buf_free(&out);
    buf_free(&err);
    return st == 0;
}

/* The child: read lines until the milter closes its end. */
static _Noreturn void relhelper_main(int fd, const char *command_dir, const char *config_dir)
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
            relhelper_handle(command_dir, config_dir, line, &answer);
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

struct relhelper *relhelper_start(const char *command_dir, const char *config_dir, struct buf *err)
{
    if (command_dir == NULL || command_dir[0] != '/' || config_dir == NULL || config_dir[0] != '/') {
        buf_puts(err, "release helper: Postfix's command and configuration directories must be absolute paths");
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
        /* the helper keeps stdin/out/err and its end of the pair, nothing
         * of the milter's (its listening socket, the pid file's lock) */
        close(sv[0]);
        if (sv[1] != 3 && dup2(sv[1], 3) == 3)
            sv[1] = 3;
        close_range(4, ~0U, 0);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        relhelper_main(sv[1], command_dir, config_dir);
    }
    close(sv[1]);
    struct relhelper *h = mem_alloc(sizeof *h);
    h->fd = sv[0];
    h->pid = pid;
    return h;
}

/* Send one request line; false with err when the helper is gone. */
static bool relhelper_send(struct relhelper *h, const char *req, int n, struct buf *err)
{
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
    return true;
}

/* Read the answer's first line into ans (NUL-terminated). */
static bool relhelper_line(struct relhelper *h, char *ans, size_t size, struct buf *err)
{
    size_t len = 0;
    while (len < size - 1) {
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
    return true;
}

/* "H ID" or "I ID": true on "OK ID". */
static bool relhelper_id_request(struct relhelper *h, char op, const char *queue_id, struct buf *err)
{
    if (queue_id == NULL || !qid_valid(queue_id)) {
        buf_printf(err, "not a Postfix queue ID: \"%.40s\"", queue_id != NULL ? queue_id : "");
        return false;
    }
    char req[RELHELPER_LINE_MAX];
    int n = snprintf(req, sizeof req, "%c %s\n", op, queue_id);
    char ans[RELHELPER_LINE_MAX + 600];
    if (!relhelper_send(h, req, n, err) || !relhelper_line(h, ans, sizeof ans, err))
        return false;
    if (strncmp(ans, "OK ", 3) == 0 && strcmp(ans + 3, queue_id) == 0)
        return true;
    buf_printf(err, "release helper: %s", ans);
    return false;
}

bool relhelper_release(struct relhelper *h, const char *queue_id, struct buf *err)
{
    return relhelper_id_request(h, 'H', queue_id, err);
}

bool relhelper_deliver(struct relhelper *h, const char *queue_id, struct buf *err)
{
    return relhelper_id_request(h, 'I', queue_id, err);
}

bool relhelper_queue(struct relhelper *h, struct buf *out, struct buf *err)
{
    char ans[RELHELPER_LINE_MAX + 600];
    if (!relhelper_send(h, "J\n", 2, err) || !relhelper_line(h, ans, sizeof ans, err))
        return false;
    char *end;
    if (strncmp(ans, "DATA ", 5) != 0) {
        buf_printf(err, "release helper: %s", ans);
        return false;
    }
    unsigned long long n = strtoull(ans + 5, &end, 10);
    if (*end != '\0' || n > CMD_OUT_MAX) {
        buf_printf(err, "release helper: bad answer \"%.60s\"", ans);
        return false;
    }
    buf_reset(out);
    char chunk[65536];
    while (n > 0) {
        ssize_t r = read(h->fd, chunk, n < sizeof chunk ? (size_t)n : sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            buf_puts(err, "release helper gone: answer cut short");
            return false;
        }
        buf_add(out, chunk, (size_t)r);
        n -= (unsigned long long)r;
    }
    return true;
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
