/* scanner.c: the clamd (INSTREAM) and spamd (SPAMC/1.5 SYMBOLS) clients of
 * postern-milter: a bounded connection pool per scanner, non-blocking
 * connects with a timeout, and one poll() loop that streams a spooled
 * message to both scanners at once (see scanner.h). */
#include "scanner.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "ptime.h"
#include "log.h"
#include "spool.h"

#define SCANNER_ANSWER_MAX 65536     /* a longer answer is garbage */

struct scanner_idle {
    int fd;
    int64_t since_us;
};

struct scanner {
    struct scanner_cfg cfg;
    char *endpoint;
    pthread_mutex_t mu;
    pthread_cond_t cv;               /* a connection was given back */
    unsigned busy;                   /* connections in use */
    struct scanner_idle *idle;       /* kept clamd sessions, oldest first */
    size_t n_idle;
    uint64_t refused_size;           /* clamd refused a message of this size (0: none) */
    int64_t refused_until_us;
};

struct scanner *scanner_new(const struct scanner_cfg *cfg, struct buf *err)
{
    char why[160];
    if (cfg->endpoint == NULL || !conf_endpoint_valid(cfg->endpoint, why, sizeof why)) {
        buf_printf(err, "%s: %s", cfg->kind == SCANNER_CLAMD ? "clamd" : "spamd",
                   cfg->endpoint == NULL ? "no socket" : why);
        return NULL;
    }
    const char *e = cfg->endpoint;
    struct scanner *s = mem_alloc(sizeof *s);
    s->cfg = *cfg;
    s->endpoint = mem_strdup(e);
    s->cfg.endpoint = s->endpoint;
    if (s->cfg.connections == 0)
        s->cfg.connections = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca; /* waits measured on the monotonic clock: a clock step changes none */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    return s;
}

void scanner_free(struct scanner *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_idle; i++) {
        (void)!send(s->idle[i].fd, "zEND", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(s->idle[i].fd);
    }
    mem_free(s->idle);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    mem_free(s->endpoint);
    mem_free(s);
}

const char *scanner_name(const struct scanner *s)
{
    return s->cfg.kind == SCANNER_CLAMD ? "clamd" : "spamd";
}

/* --- connections ------------------------------------------------------------ */

/* Wait until fd is writable (a connect in progress) or deadline; *code:
 * the errno of a failure (ETIMEDOUT for the deadline). */
static bool scanner_connect_wait(int fd, int64_t deadline_us, struct buf *err, int *code)
{
    for (;;) {
        int64_t left = deadline_us - clock_mono_us();
        if (left <= 0) {
            buf_puts(err, "connect timed out");
            *code = ETIMEDOUT;
            return false;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n = poll(&p, 1, (int)((left + 999) / 1000));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            buf_printf(err, "poll: %s", strerror(errno));
            *code = errno;
            return false;
        }
        if (n == 0)
            continue;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr != 0) {
            buf_printf(err, "connect: %s", strerror(soerr));
            *code = soerr;
            return false;
        }
        return true;
    }
}

/* A new non-blocking connection to the endpoint, or -1 with err set and
 * *code the errno of the failure (0 when the host does not resolve). */
static int scanner_dial(const struct scanner *s, int64_t deadline_us, struct buf *err, int *code)
{
    *code = 0;
    const char *e = s->endpoint;
    if (strncmp(e, "unix:", 5) == 0) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", e + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            *code = errno;
            buf_printf(err, "socket: %s", strerror(errno));
            return -1;
        }
        /* a full backlog: a non-blocking connect to a unix socket says
         * EAGAIN at once instead of waiting; try again every 10 ms until
         * the deadline */
        int rc;
        while ((rc = connect(fd, (struct sockaddr *)&sun, sizeof sun)) != 0 && errno == EAGAIN &&
               clock_mono_us() + 10000 < deadline_us) {
            struct timespec pause = { 0, 10000000 };
            nanosleep(&pause, NULL);
        }
        if (rc == 0)
            return fd;
        if (errno == EAGAIN) {
            *code = ETIMEDOUT;
            buf_puts(err, "connect timed out (the socket's backlog is full)");
            close(fd);
            return -1;
        }
        if (errno == EINPROGRESS && scanner_connect_wait(fd, deadline_us, err, code))
            return fd;
        if (errno != EINPROGRESS && *code == 0) {
            *code = errno;
            buf_printf(err, "connect: %s", strerror(errno));
        }
        close(fd);
        return -1;
    }
    /* inet:host:port, host possibly in brackets */
    const char *hp = e + 5, *colon = strrchr(hp, ':');
    char host[256], port[16];
    size_t hl = (size_t)(colon - hp);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
        hp++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, hp);
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        buf_printf(err, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        buf_reset(err);
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            *code = errno;
            buf_printf(err, "socket: %s", strerror(errno));
            continue;
        }
        *code = 0;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && scanner_connect_wait(fd, deadline_us, err, code))
            break;
        if (errno != EINPROGRESS && *code == 0) {
            *code = errno;
            buf_printf(err, "connect: %s", strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* A connection from the pool: a kept clamd session (*reused) or a new one,
 * waiting for a free slot until the connect timeout.  -1 with err set and
 * *code the errno of a failed connect (EBUSY: no free slot in time);
 * the time spent waiting for a slot is added to *waited_us. */
static int scanner_take(struct scanner *s, bool fresh, bool *reused, struct buf *err, int *code,
                        int64_t *waited_us)
{
    *code = 0;
    int64_t deadline = clock_mono_us() + (int64_t)s->cfg.connect_timeout_ms * 1000;
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_sec += (time_t)(s->cfg.connect_timeout_ms / 1000);
    abs.tv_nsec += (long)(s->cfg.connect_timeout_ms % 1000) * 1000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    *reused = false;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int64_t now = clock_mono_us();
        /* the oldest kept sessions first: they are the likeliest to go stale */
        while (s->n_idle > 0 && (fresh || now - s->idle[0].since_us > (int64_t)SCANNER_IDLE_MS * 1000)) {
            close(s->idle[0].fd);
            memmove(s->idle, s->idle + 1, --s->n_idle * sizeof *s->idle);
        }
        if (s->n_idle > 0) {
            int fd = s->idle[--s->n_idle].fd; /* the newest */
            s->busy++;
            pthread_mutex_unlock(&s->mu);
            *reused = true;
            return fd;
        }
        if (s->busy < s->cfg.connections)
            break;
        int64_t w0 = clock_mono_us();
        int rc = pthread_cond_timedwait(&s->cv, &s->mu, &abs);
        *waited_us += clock_mono_us() - w0;
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&s->mu);
            *code = EBUSY;
            buf_printf(err, "no free connection within %llu ms (%u in use)",
                       (unsigned long long)s->cfg.connect_timeout_ms, s->cfg.connections);
            return -1;
        }
    }
    s->busy++;
    pthread_mutex_unlock(&s->mu);
    int fd = scanner_dial(s, deadline, err, code);
    if (fd < 0) {
        pthread_mutex_lock(&s->mu);
        s->busy--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return fd;
}

/* Give a connection back: kept (a clamd session that answered well) or
 * closed. */
static void scanner_give(struct scanner *s, int fd, bool keep)
{
    pthread_mutex_lock(&s->mu);
    s->busy--;
    if (keep && s->n_idle < s->cfg.connections) {
        s->idle = mem_grow(s->idle, s->n_idle + 1, sizeof *s->idle);
        s->idle[s->n_idle].fd = fd;
        s->idle[s->n_idle].since_us = clock_mono_us();
        s->n_idle++;
    } else {
        close(fd);
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

bool scanner_ping(struct scanner *s, char *out, size_t size, struct buf *err)
{
    int code;
    int64_t deadline = clock_mono_us() + (int64_t)s->cfg.connect_timeout_ms * 1000;
    int fd = scanner_dial(s, deadline, err, &code);
    if (fd < 0)
        return false;
    bool clamd = s->cfg.kind == SCANNER_CLAMD;
    const char *req = clamd ? "zVERSION" : "PING SPAMC/1.5\r\n\r\n";
    size_t reqlen = clamd ? 9 : strlen(req), sent = 0;
    char ans[512];
    size_t got = 0;
    uint64_t wait_ms = s->cfg.timeout_ms < s->cfg.connect_timeout_ms ? s->cfg.timeout_ms : s->cfg.connect_timeout_ms;
    deadline = clock_mono_us() + (int64_t)wait_ms * 1000;
    bool ok = false;
    for (;;) {
        int64_t left = deadline - clock_mono_us();
        if (left <= 0) {
            buf_printf(err, "timeout after %llu ms", (unsigned long long)wait_ms);
            break;
        }
        struct pollfd p = { .fd = fd, .events = sent < reqlen ? POLLOUT : POLLIN };
        if (poll(&p, 1, (int)((left + 999) / 1000)) <= 0)
            continue;
        if (sent < reqlen) {
            ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                buf_printf(err, "send: %s", strerror(errno));
                break;
            }
            sent += n > 0 ? (size_t)n : 0;
            continue;
        }
        ssize_t n = recv(fd, ans + got, sizeof ans - 1 - got, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n > 0)
            got += (size_t)n;
        bool end = n <= 0 || got == sizeof ans - 1 || memchr(ans, clamd ? '\0' : '\n', got) != NULL;
        if (!end)
            continue;
        size_t l = 0;
        while (l < got && ans[l] != '\0' && ans[l] != '\r' && ans[l] != '\n')
            l++;
        ok = clamd ? l > 0 : (l >= 10 && memcmp(ans, "SPAMD/", 6) == 0 && memmem(ans, l, " PONG", 5) != NULL);
        scanner_printable(out, size, ans, l);
        if (!ok)
            buf_printf(err, "%s answered \"%s\"", scanner_name(s), out);
        break;
    }
    if (clamd)
        (void)!send(fd, "zEND", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    return ok;
}

/* --- one exchange ---------------------------------------------------------- */

struct scanner_job {
    struct scanner *s;
    struct scan_result *res;
    const struct spool *msg;
    const char *user;
    int fd;
    bool reused, retried, sending, done;
    bool timed;                      /* res->elapsed_us set */
    unsigned char out[4 + SCANNER_CHUNK];
    size_t out_len, out_off;
    uint64_t body_off;               /* spool bytes framed so far */
    bool body_end;                   /* the last piece (clamd: the zero chunk) is framed */
    struct buf in;
    int64_t t0_us, deadline_us;
};

static void scanner_fail(struct scanner_job *j, enum scan_failure kind, const char *why)
{
    j->res->status = SCAN_FAILED;
    j->res->failure = kind;
    snprintf(j->res->error, sizeof j->res->error, "%s", why);
}

/* Connect (or take a kept session) and frame the request head. */
static bool scanner_job_start(struct scanner_job *j, bool fresh)
{
    struct buf err;
    buf_init(&err);
    int code;
    j->fd = scanner_take(j->s, fresh, &j->reused, &err, &code, &j->res->wait_us);
    if (j->fd < 0 && !j->retried && (code == ECONNREFUSED || code == ECONNRESET)) {
        j->retried = true; /* refused or reset: nothing was sent, safe to try once more */
        buf_reset(&err);
        j->fd = scanner_take(j->s, true, &j->reused, &err, &code, &j->res->wait_us);
    }
    if (j->fd < 0) {
        struct buf why;
        buf_init(&why);
        buf_printf(&why, "cannot connect to %s (%s)", j->s->endpoint, err.data);
        scanner_fail(j, code == EBUSY ? SCAN_FAIL_BUSY : SCAN_FAIL_CONNECT, why.data);
        buf_free(&why);
        buf_free(&err);
        return false;
    }
    buf_free(&err);
    j->sending = true;
    j->body_off = 0;
    j->body_end = false;
    j->out_off = 0;
    buf_reset(&j->in);
    if (j->s->cfg.kind == SCANNER_CLAMD) {
        size_t o = 0;
        if (!j->reused) {
            memcpy(j->out, "zIDSESSION", 11);
            o = 11;
        }
        memcpy(j->out + o, "zINSTREAM", 10);
        j->out_len = o + 10;
    } else {
        int n = snprintf((char *)j->out, sizeof j->out,
                         "SYMBOLS SPAMC/1.5\r\nContent-length: %llu\r\nUser: %s\r\n\r\n",
                         (unsigned long long)spool_size(j->msg), j->user);
        j->out_len = (size_t)n;
        j->body_end = spool_size(j->msg) == 0;
    }
    j->deadline_us = clock_mono_us() + (int64_t)j->s->cfg.timeout_ms * 1000;
    return true;
}

/* Frame the next piece of the message into out. */
static bool scanner_job_fill(struct scanner_job *j)
{
    struct buf err;
    buf_init(&err);
    bool clamd = j->s->cfg.kind == SCANNER_CLAMD;
    unsigned char *dst = j->out + (clamd ? 4 : 0);
    ssize_t n = spool_read(j->msg, j->body_off, dst, SCANNER_CHUNK, &err);
    if (n < 0) {
        scanner_fail(j, SCAN_FAIL_SPOOL, err.data);
        buf_free(&err);
        return false;
    }
    buf_free(&err);
    j->body_off += (uint64_t)n;
    if (clamd) {
        uint32_t be = htonl((uint32_t)n);
        memcpy(j->out, &be, 4);
        j->out_len = 4 + (size_t)n;
        j->body_end = n == 0; /* the zero-length chunk ends the stream */
    } else {
        j->out_len = (size_t)n;
        j->body_end = j->body_off >= spool_size(j->msg);
    }
    j->out_off = 0;
    return true;
}

/* A kept clamd session that turns out closed before any answer: once
 * more on a new connection (scanning has no side effects).  True when it
 * was one (the job goes on, or ended if no connection could be made). */
static bool scanner_job_stale(struct scanner_job *j)
{
    if (!j->reused || j->in.len > 0 || j->s->cfg.kind != SCANNER_CLAMD)
        return false;
    scanner_give(j->s, j->fd, false);
    j->fd = -1;
    j->retried = true;
    if (!scanner_job_start(j, true))
        j->done = true;
    return true;
}

/* Write what the socket takes; sending ends with the last piece. */
static void scanner_job_send(struct scanner_job *j)
{
    for (int rounds = 0; rounds < 4; rounds++) {
        if (j->out_off == j->out_len) {
            if (j->body_end) {
                j->sending = false;
                return;
            }
            if (!scanner_job_fill(j)) {
                j->done = true;
                return;
            }
            continue;
        }
        ssize_t n = send(j->fd, j->out + j->out_off, j->out_len - j->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            if (scanner_job_stale(j))
                return;
            if (j->s->cfg.kind == SCANNER_CLAMD && (errno == EPIPE || errno == ECONNRESET)) {
                j->sending = false; /* clamd closes after refusing the size: read its answer */
                return;
            }
            char why[160];
            snprintf(why, sizeof why, "sending to the scanner: %s", strerror(errno));
            scanner_fail(j, SCAN_FAIL_ANSWER, why);
            j->done = true;
            return;
        }
        j->out_off += (size_t)n;
    }
}

/* Is the answer complete? clamd: a NUL; spamd: the end of the stream. */
static bool scanner_job_answered(const struct scanner_job *j)
{
    return j->s->cfg.kind == SCANNER_CLAMD && memchr(j->in.data, '\0', j->in.len) != NULL;
}

static void scanner_job_recv(struct scanner_job *j)
{
    char tmp[8192];
    for (;;) {
        ssize_t n = recv(j->fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* the end (or a reset): what came is the answer */
            if (j->in.len == 0 && scanner_job_stale(j))
                return;
            if (j->s->cfg.kind == SCANNER_SPAMD)
                scanner_spamd_parse(j->in.data, j->in.len, j->res);
            else if (j->in.len == 0)
                scanner_fail(j, SCAN_FAIL_ANSWER, "clamd closed the connection without an answer");
            else
                scanner_garbage(j->res, "clamd", j->in.data, j->in.len); /* no NUL: cut short */
            j->done = true;
            return;
        }
        buf_add(&j->in, tmp, (size_t)n);
        if (j->in.len > SCANNER_ANSWER_MAX) {
            scanner_garbage(j->res, scanner_name(j->s), j->in.data, j->in.len);
            j->done = true;
            return;
        }
        if (scanner_job_answered(j)) {
            size_t l = (size_t)((char *)memchr(j->in.data, '\0', j->in.len) - j->in.data);
            scanner_clamd_parse(j->in.data, l, j->res);
            j->done = true;
            return;
        }
    }
}

/* The job ended: give its connection back (kept only after a clean clamd
 * answer), record the time. */
static void scanner_job_end(struct scanner_job *j)
{
    bool keep = j->s->cfg.kind == SCANNER_CLAMD && !j->sending &&
                (j->res->status == SCAN_CLEAN || j->res->status == SCAN_FOUND);
    if (j->fd >= 0)
        scanner_give(j->s, j->fd, keep);
    j->fd = -1;
    if (j->res->status == SCAN_TOO_LARGE) {
        pthread_mutex_lock(&j->s->mu);
        uint64_t size = spool_size(j->msg);
        if (j->s->refused_size == 0 || size < j->s->refused_size || clock_mono_us() >= j->s->refused_until_us)
            j->s->refused_size = size; /* a memory that expired is replaced, not lowered */
        j->s->refused_until_us = clock_mono_us() + (int64_t)SCANNER_LIMIT_MEMORY_MS * 1000;
        pthread_mutex_unlock(&j->s->mu);
    }
    if (!j->timed)
        j->res->elapsed_us = clock_mono_us() - j->t0_us;
    buf_free(&j->in);
}

/* clamd refused a message this large not long ago. */
static bool scanner_known_too_large(struct scanner *s, uint64_t size)
{
    pthread_mutex_lock(&s->mu);
    bool r = s->refused_size != 0 && size >= s->refused_size && clock_mono_us() < s->refused_until_us;
    pthread_mutex_unlock(&s->mu);
    return r;
}

static void scanner_job_init(struct scanner_job *j, struct scanner *s, struct scan_result *res,
                             const struct spool *msg, const char *user)
{
    memset(res, 0, sizeof *res);
    j->s = s;
    j->res = res;
    j->msg = msg;
    j->user = user;
    j->fd = -1;
    j->done = s == NULL;
    j->t0_us = clock_mono_us();
    if (s == NULL)
        return;
    buf_init(&j->in); /* freed by scanner_job_end() */
    if (s->cfg.max_size != 0 && spool_size(msg) > s->cfg.max_size) {
        res->status = SCAN_TOO_LARGE;
        snprintf(res->error, sizeof res->error, "message of %llu bytes over %s.max_size %llu",
                 (unsigned long long)spool_size(msg), scanner_name(s), (unsigned long long)s->cfg.max_size);
        j->done = true;
        return;
    }
    if (s->cfg.kind == SCANNER_CLAMD && scanner_known_too_large(s, spool_size(msg))) {
        res->status = SCAN_TOO_LARGE;
        snprintf(res->error, sizeof res->error, "over clamd's StreamMaxLength (it refused %llu bytes)",
                 (unsigned long long)s->refused_size);
        j->done = true;
        return;
    }
    if (!scanner_job_start(j, false))
        j->done = true;
}

void scanner_run(struct scanner *av, struct scanner *spam, const char *user, const struct spool *msg,
                 struct scan_result *av_res, struct scan_result *spam_res)
{
    char u[128];
    size_t o = 0;
    for (const char *p = user != NULL ? user : "postern"; *p && o + 1 < sizeof u; p++)
        u[o++] = isgraph((unsigned char)*p) ? *p : '_';
    u[o] = '\0';
    struct scanner_job jobs[2];
    memset(jobs, 0, sizeof jobs);
    scanner_job_init(&jobs[1], spam, spam_res, msg, u); /* spamd's connection first: see scanner.h */
    scanner_job_init(&jobs[0], av, av_res, msg, u);
    for (;;) {
        struct pollfd pfd[2];
        struct scanner_job *which[2];
        int np = 0;
        int64_t now = clock_mono_us(), wait = -1;
        for (int i = 0; i < 2; i++) {
            struct scanner_job *j = &jobs[i];
            if (j->done && !j->timed) {
                j->res->elapsed_us = now - j->t0_us;
                j->timed = true;
            }
            if (j->done)
                continue;
            if (now >= j->deadline_us) {
                char why[128];
                snprintf(why, sizeof why, "timeout after %llu ms %s", (unsigned long long)j->s->cfg.timeout_ms,
                         j->sending ? "while sending the message" : "waiting for the answer");
                scanner_fail(j, SCAN_FAIL_TIMEOUT, why);
                j->done = true;
                continue;
            }
            int64_t left = (j->deadline_us - now + 999) / 1000;
            if (wait < 0 || left < wait)
                wait = left;
            pfd[np].fd = j->fd;
            pfd[np].events = j->sending ? POLLOUT : POLLIN;
            pfd[np].revents = 0;
            which[np++] = j;
        }
        if (np == 0)
            break;
        int n = poll(pfd, (nfds_t)np, (int)wait);
        if (n < 0 && errno != EINTR) {
            for (int i = 0; i < np; i++) {
                char why[128];
                snprintf(why, sizeof why, "poll: %s", strerror(errno));
                scanner_fail(which[i], SCAN_FAIL_ANSWER, why);
                which[i]->done = true;
            }
        }
        for (int i = 0; n > 0 && i < np; i++) {
            struct scanner_job *j = which[i];
            if (pfd[i].revents == 0)
                continue;
            if (j->sending)
                scanner_job_send(j);
            else
                scanner_job_recv(j);
        }
    }
    for (int i = 0; i < 2; i++)
        if (jobs[i].s != NULL)
            scanner_job_end(&jobs[i]);
}
