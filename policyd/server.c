/* server.c: the event loop of postern-policyd (server.h).
 *
 * One libevent loop serves every connection.  A connection's bytes go to
 * its own input buffer; policy_parse() cuts requests out of it, which are
 * queued for the next batch, and the connection stops reading until they
 * are answered (so one connection can never starve the others, and
 * pipelined requests are answered in order).
 *
 * Group commit: the batch event has the lowest priority of the loop, so it
 * runs only in a turn where no connection or listener is ready: every
 * request that arrived meanwhile is handed to the store thread, which
 * decides them on the memory counters (counters_mem), adds each decision
 * with its counter deltas to the journal (journal.h), writes the batch to
 * the journal once and hands it back (an eventfd wakes the loop); only
 * then are the replies written.  While the store thread works, the loop
 * reads, parses and queues the next requests, so the two cores overlap
 * and the batches grow with the load.  One batch at a time: a decision
 * sees the counters of every earlier one.  A connection that goes away
 * while the store thread holds one of its requests is torn down but its
 * memory is kept (a zombie) until the batch comes back.  A batch the
 * journal cannot take turns every reply of the batch into the on_error
 * answer, and its counter additions are undone.
 *
 * The ingest thread (lib/ingester.h) moves the journal into the store
 * every POLICYD_INGEST_MS (journal_ingest()), publishes the id it holds
 * through (the store thread then deletes journal files all ingested), and
 * after each round hands the counter resets posternctl queued in the
 * store to the store thread (resets_poll()).
 * A flood of callbacks cannot
 * postpone a batch forever: after POLICYD_BATCH_MAX_CALLBACKS read/accept
 * callbacks it runs at once.
 *
 * Bad input (refused by the parser, over max_request_bytes, a connection
 * closed inside a request) is logged once (event=bad_request) and closes
 * that connection only. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "alloc.h"
#include "audit.h"
#include "counters.h"
#include "decide.h"
#include "diag.h"
#include "ingester.h"
#include "journal.h"
#include "log.h"
#include "rules.h"
#include "rules_load.h"
#include "store.h"

/* Event priorities: 0 unused, 1 (the default of a 3-queue base) for I/O,
 * timers and signals, 2 for the batch. */
#define PRIO_QUEUES 3
#define PRIO_BATCH 2

#define ACCEPT_PER_CALLBACK 64
#define ACCEPT_PAUSE_MS 1000
#define REFUSED_LOG_INTERVAL_US 1000000

struct policyd_listener {
    struct policyd *d;
    char name[300];            /* "unix:/path" or "inet:addr:port", for logs */
    char *unix_path;           /* socket file to remove at exit; NULL for inet */
    dev_t dev;                 /* of the socket file we created */
    ino_t ino;
    int fd;
    struct event *ev;
};

struct policyd_conn {
    struct policyd *d;
    struct policyd_conn *prev, *next;
    struct bufferevent *bev;
    struct event *idle;
    struct buf in;             /* input not yet cut into requests */
    size_t scanned;            /* in[0..scanned) holds no line end not yet parsed */
    uint64_t id;
    char client[320];
    struct decide_conn dc;
    size_t npending;           /* requests queued, not yet answered */
    struct policyd_pending *spare; /* a parse target kept between reads */
    bool eof;                  /* the client closed its side */
    bool read_paused;          /* reading stopped: too many requests pending */
    bool closing;              /* close as soon as the output is sent */
    bool out_full;             /* reading waits for the output to drain */
    size_t ninflight;          /* of its requests, those the store thread holds */
    bool zombie;               /* closed while ninflight > 0: freed when the batch returns */
};

struct policyd_pending {
    struct policyd_pending *next;
    struct policyd_conn *conn; /* NULL once the connection is gone */
    struct rules *rules;       /* the snapshot current when the request arrived */
    struct policy_request req;
    struct decision dec;
    int64_t t0_us;             /* monotonic arrival time */
    bool failed;               /* answer on_error; dec.reason says why */
};

static void batch_dispatch(struct policyd *d);
static void resets_poll(void *arg, struct store *s);
static bool conn_process(struct policyd_conn *c);
static void conn_free(struct policyd_conn *c);
static void conn_close_when_flushed(struct policyd_conn *c);

/* --- small helpers -------------------------------------------------------- */

static struct timeval ms_to_tv(uint64_t ms)
{
    struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
    return tv;
}

static void log_conn(enum log_level l, const char *event, const struct policyd_conn *c, const char *key,
                     const char *value)
{
    if (!log_enabled(l))
        return;
    struct buf kv;
    buf_init(&kv);
    buf_kvf(&kv, "conn", "%llu", (unsigned long long)c->id);
    buf_kv(&kv, "client", c->client);
    if (key != NULL)
        buf_kv(&kv, key, value);
    log_event(l, event, &kv);
    buf_free(&kv);
}

static void libevent_log(int severity, const char *msg)
{
    enum log_level l = severity >= EVENT_LOG_ERR    ? LOG_LVL_ERR
                       : severity >= EVENT_LOG_WARN ? LOG_LVL_WARN
                                                    : LOG_LVL_DEBUG;
    struct buf kv;
    buf_init(&kv);
    buf_kv(&kv, "msg", msg);
    log_event(l, "libevent", &kv);
    buf_free(&kv);
}

/* --- pending requests ----------------------------------------------------- */

static struct policyd_pending *pending_new(void)
{
    struct policyd_pending *p = mem_alloc(sizeof *p);
    policy_request_init(&p->req);
    decision_init(&p->dec);
    return p;
}

static void pending_free(struct policyd_pending *p)
{
    if (p == NULL)
        return;
    if (p->rules != NULL)
        rules_unref(p->rules);
    policy_request_free(&p->req);
    decision_free(&p->dec);
    mem_free(p);
}

static void queue_push(struct policyd *d, struct policyd_pending *p)
{
    if (d->queue_tail != NULL)
        d->queue_tail->next = p;
    else
        d->queue_head = p;
    d->queue_tail = p;
    if (d->n_queued++ == 0) {
        d->callbacks_since_queue = 0;
        event_active(d->batch_ev, EV_TIMEOUT, 0);
    }
}

/* Count a read or accept callback; run the batch now when the loop has
 * been kept busy too long for the batch event to get its turn. */
static void batch_maybe_force(struct policyd *d)
{
    if (d->n_queued > 0 && ++d->callbacks_since_queue >= POLICYD_BATCH_MAX_CALLBACKS)
        batch_dispatch(d);
}

/* --- connections ---------------------------------------------------------- */

static void conn_arm_idle(struct policyd_conn *c)
{
    struct timeval tv = ms_to_tv(c->d->conf.policyd.idle_timeout_ms);
    evtimer_add(c->idle, &tv);
}

/* The client sent something that is not a policy request: log it once and
 * close this connection only.  Its requests not yet decided are dropped. */
static void conn_bad(struct policyd_conn *c, const char *reason)
{
    log_conn(LOG_LVL_WARN, "bad_request", c, "reason", reason);
    conn_free(c);
}

/* Cut every complete request out of c->in and queue it.  False when the
 * connection was closed (and freed). */
static bool conn_process(struct policyd_conn *c)
{
    struct policyd *d = c->d;
    struct buf err;
    buf_init(&err);
    while (c->npending < POLICYD_MAX_PIPELINE && c->in.len > 0) {
        /* parse only when a line was completed since the last look (the
         * parser judges complete lines only), or over the size limit */
        if (c->scanned < c->in.len && memchr(c->in.data + c->scanned, '\n', c->in.len - c->scanned) == NULL &&
            c->in.len <= d->limits.max_bytes) {
            c->scanned = c->in.len;
            break;
        }
        if (c->scanned >= c->in.len && c->in.len <= d->limits.max_bytes)
            break;
        if (c->spare == NULL)
            c->spare = pending_new();
        struct policyd_pending *p = c->spare;
        size_t used = 0;
        buf_reset(&err);
        enum policy_parse r = policy_parse(c->in.data, c->in.len, &d->limits, &p->req, &used, &err);
        if (r == POLICY_NEED_MORE && c->in.len > d->limits.max_bytes) {
            r = POLICY_BAD;
            buf_reset(&err);
            buf_printf(&err, "request larger than %zu bytes", d->limits.max_bytes);
        }
        if (r == POLICY_REQUEST && (used == 0 || used > c->in.len)) {
            r = POLICY_BAD;
            buf_reset(&err);
            buf_printf(&err, "internal error: the parser used %zu of %zu bytes", used, c->in.len);
        }
        if (r == POLICY_NEED_MORE) {
            c->scanned = c->in.len;
            break;
        }
        if (r == POLICY_BAD) {
            conn_bad(c, err.len > 0 ? err.data : "malformed request");
            buf_free(&err);
            return false;
        }
        /* one request: drain it from the input and queue it */
        memmove(c->in.data, c->in.data + used, c->in.len - used);
        c->in.len -= used;
        c->in.data[c->in.len] = '\0';
        c->scanned = 0;
        c->spare = NULL;
        p->conn = c;
        p->rules = rules_ref(d->rules);
        p->t0_us = clock_mono_us();
        c->npending++;
        queue_push(d, p);
        if (log_enabled(LOG_LVL_DEBUG)) {
            struct buf kv;
            buf_init(&kv);
            buf_kvf(&kv, "conn", "%llu", (unsigned long long)c->id);
            buf_kv(&kv, "client", c->client);
            buf_kv(&kv, "protocol_state", p->req.protocol_state);
            buf_kv(&kv, "instance", p->req.instance);
            buf_kvf(&kv, "queued", "%zu", d->n_queued);
            log_event(LOG_LVL_DEBUG, "request", &kv);
            buf_free(&kv);
        }
    }
    buf_free(&err);
    if (c->npending > 0) {
        /* Replies keep the order through the queue, so reading goes on;
         * only a client that pipelines past the cap is paused (one
         * epoll_ctl pair per request saved: Postfix sends one at a time). */
        if (c->npending >= POLICYD_MAX_PIPELINE && !c->read_paused) {
            bufferevent_disable(c->bev, EV_READ);
            c->read_paused = true;
        }
        evtimer_del(c->idle);
    }
    return true;
}

/* After the last reply of a connection was queued for writing, or its
 * output drained: serve what is left in its input, then read again. */
static void conn_resume(struct policyd_conn *c)
{
    struct policyd *d = c->d;
    if (c->closing || d->stopping) {
        conn_close_when_flushed(c);
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > POLICYD_MAX_OUTPUT) {
        c->out_full = true; /* the write callback resumes; a client that */
        conn_arm_idle(c);   /* reads nothing is closed after idle_timeout */
        return;
    }
    if (!conn_process(c))
        return;
    if (c->npending > 0)
        return;
    if (c->eof) {
        if (c->in.len > 0) {
            char why[96];
            snprintf(why, sizeof why, "connection closed inside a request (%zu bytes)", c->in.len);
            log_conn(LOG_LVL_WARN, "bad_request", c, "reason", why);
        }
        conn_close_when_flushed(c);
        return;
    }
    if (c->read_paused) {
        bufferevent_enable(c->bev, EV_READ);
        c->read_paused = false;
    }
    conn_arm_idle(c);
}

/* A reply: straight to the socket when no earlier output waits (the
 * common case: one send(), no write event to arm and disarm), else behind
 * the waiting output through the bufferevent. */
static void conn_write(struct policyd_conn *c, const char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) == 0) {
        ssize_t n = send(bufferevent_getfd(c->bev), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)len)
            return;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    bufferevent_write(c->bev, data, len);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct policyd_conn *c = arg;
    struct policyd *d = c->d;
    struct evbuffer *input = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(input);
    if (n > 0) {
        buf_add(&c->in, evbuffer_pullup(input, (ssize_t)n), n);
        evbuffer_drain(input, n);
    }
    if (conn_process(c))
        batch_maybe_force(d);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct policyd_conn *c = arg;
    (void)bev;
    if (c->closing) {
        conn_free(c);
        return;
    }
    if (c->out_full) {
        c->out_full = false;
        conn_resume(c);
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct policyd_conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_EOF) {
        log_conn(LOG_LVL_DEBUG, "disconnect", c, NULL, NULL);
        c->eof = true;
        bufferevent_disable(c->bev, EV_READ);
        if (c->npending > 0 || c->closing)
            return; /* the batch answers, then the connection is closed */
        conn_resume(c);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        log_conn(LOG_LVL_DEBUG, "conn_error", c, "error", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        conn_free(c);
    }
}

static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct policyd_conn *c = arg;
    (void)fd;
    (void)what;
    struct buf kv;
    buf_init(&kv);
    buf_kvf(&kv, "conn", "%llu", (unsigned long long)c->id);
    buf_kv(&kv, "client", c->client);
    buf_kvf(&kv, "idle_ms", "%llu", (unsigned long long)c->d->conf.policyd.idle_timeout_ms);
    if (c->in.len > 0)
        buf_kvf(&kv, "partial_bytes", "%zu", c->in.len);
    log_event(LOG_LVL_INFO, "idle_timeout", &kv);
    buf_free(&kv);
    conn_free(c);
}

static void conn_close_when_flushed(struct policyd_conn *c)
{
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    evtimer_del(c->idle);
    if (c->npending > 0)
        return; /* the batch answers, then comes back here */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
    else
        conn_arm_idle(c); /* a client that never reads its replies */
}

static void conn_free(struct policyd_conn *c)
{
    struct policyd *d = c->d;
    if (c->npending > 0)
        for (struct policyd_pending *p = d->queue_head; p != NULL; p = p->next)
            if (p->conn == c)
                p->conn = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    d->n_conns--;
    log_conn(LOG_LVL_DEBUG, "close", c, NULL, NULL);
    bufferevent_free(c->bev);
    c->bev = NULL;
    event_free(c->idle);
    c->idle = NULL;
    buf_free(&c->in);
    pending_free(c->spare);
    c->spare = NULL;
    if (c->ninflight > 0)
        c->zombie = true; /* the store thread uses c->dc: batch_reply() frees it */
    else
        mem_free(c);
    if (d->stopping && d->n_conns == 0 && d->inflight == NULL)
        event_base_loopexit(d->base, NULL);
}

static void conn_new(struct policyd *d, struct policyd_listener *l, int fd, const struct sockaddr_storage *ss,
                     socklen_t sslen)
{
    struct policyd_conn *c = mem_alloc(sizeof *c);
    c->d = d;
    c->id = ++d->next_conn_id;
    buf_init(&c->in);
    if (l->unix_path != NULL) {
        snprintf(c->client, sizeof c->client, "%s", l->name);
    } else {
        char host[NI_MAXHOST], port[NI_MAXSERV];
        if (getnameinfo((const struct sockaddr *)ss, sslen, host, sizeof host, port, sizeof port,
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            snprintf(c->client, sizeof c->client, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
        else
            snprintf(c->client, sizeof c->client, "%s", l->name);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->idle = evtimer_new(d->base, conn_idle_cb, c);
    if (c->bev == NULL || c->idle == NULL) {
        log_msg(LOG_LVL_ERR, "accept_error", "client=%s error=\"cannot set up the connection\"", c->client);
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        else
            close(fd);
        if (c->idle != NULL)
            event_free(c->idle);
        buf_free(&c->in);
        mem_free(c);
        return;
    }
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = d->conns;
    if (d->conns != NULL)
        d->conns->prev = c;
    d->conns = c;
    d->n_conns++;
    conn_arm_idle(c);
    log_conn(LOG_LVL_DEBUG, "connect", c, NULL, NULL);
}

/* --- the batch: decide, audit, commit, answer ----------------------------- */

static void pending_fail(struct policyd_pending *p, const char *why)
{
    p->failed = true;
    if (p->dec.store_error)
        return; /* the decision's reason already says what failed */
    buf_reset(&p->dec.reason);
    buf_printf(&p->dec.reason, "store error: %s", why);
}

static const char *stage_of(const struct policyd_pending *p)
{
    if (p->dec.stage != NULL)
        return p->dec.stage;
    const char *st = p->req.protocol_state != NULL ? p->req.protocol_state : "";
    return strcasecmp(st, "RCPT") == 0 ? "rcpt" : strcasecmp(st, "END-OF-MESSAGE") == 0 ? "eom" : "other";
}

/* The audit record of a request answered on_error. */
static void audit_on_error_rec(struct policyd *d, struct policyd_pending *p, const char **rcpt,
                               struct audit_rec *rec)
{
    decide_audit(&p->req, &p->dec, rcpt, rec);
    rec->stage = stage_of(p);
    rec->action = d->on_error_action;
    rec->reason = p->dec.reason.data;
    rec->rule = "on_error";
    rec->counters = NULL;
    rec->latency_us = clock_mono_us() - p->t0_us;
}

/* Inside a batch that still works: journaled with the batch (the log
 * line is written even when the journal cannot take the record). */
static void audit_on_error(struct policyd *d, struct policyd_pending *p, struct buf *err)
{
    struct audit_rec rec;
    const char *rcpt = NULL;
    audit_on_error_rec(d, p, &rcpt, &rec);
    journal_add(d->journal, &rec, NULL, 0, NULL, err);
}

/* After a failed batch the store is not tried again for every request
 * (each try could wait for the busy timeout): the record goes to the log
 * only, as audit_write() logs a record it could not store. */
static void audit_on_error_log(struct policyd *d, struct policyd_pending *p, const char *why)
{
    struct audit_rec rec;
    const char *rcpt = NULL;
    audit_on_error_rec(d, p, &rcpt, &rec);
    rec.time_us = clock_now_us(&d->clock);
    struct buf kv;
    buf_init(&kv);
    audit_format(&rec, &kv);
    buf_kv(&kv, "stored", "no");
    buf_kv(&kv, "error", why);
    log_event(LOG_LVL_ERR, "audit", &kv);
    buf_free(&kv);
}

static void batch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    batch_dispatch(arg);
}

/* A counter reset posternctl asked for (journal.h): applied to the
 * memory counters and journaled with the same audit record posternctl
 * writes when it resets the store itself.  False with err set. */
struct reset_rows {
    struct buf result;   /* "key unit window_start window_end value\n" per row */
    struct buf desc;     /* the audit record's counters field */
    bool every_window;
};

static bool reset_row_cb(const struct counter_row *row, void *arg)
{
    struct reset_rows *x = arg;
    buf_printf(&x->result, "%s %s %lld %lld %llu\n", row->key, window_unit_name(row->unit),
               (long long)row->window_start, (long long)row->window_end, (unsigned long long)row->value);
    if (x->desc.len > 0)
        buf_putc(&x->desc, ' ');
    buf_printf(&x->desc, "%s/%s", row->key, window_unit_name(row->unit));
    if (x->every_window) {
        char start[40];
        time_format(row->window_start, start, sizeof start);
        buf_printf(&x->desc, "@%s", start);
    }
    buf_printf(&x->desc, "=%llu", (unsigned long long)row->value);
    return true;
}

static bool reset_apply(struct policyd *d, const struct journal_reset_req *r, struct buf *err)
{
    struct reset_rows x = { .every_window = r->unit != COUNTERS_CURRENT_WINDOWS };
    struct buf reason;
    buf_init(&x.result);
    buf_init(&x.desc);
    buf_init(&reason);
    size_t count = 0;
    bool ok = counters_reset(d->counters, (const char *const *)r->prefixes, r->nprefixes, r->unit, reset_row_cb,
                             &x, &count, err);
    if (ok) {
        if (r->unit == COUNTERS_CURRENT_WINDOWS)
            buf_printf(&reason, "counters of %s reset by %s: current windows, %zu counter%s", r->what, r->by, count,
                       count == 1 ? "" : "s");
        else
            buf_printf(&reason, "counters of %s reset by %s: every %s window, %zu counter%s", r->what, r->by,
                       window_unit_name((enum window_unit)r->unit), count, count == 1 ? "" : "s");
        struct audit_rec rec = {
            .component = "ctl",
            .tenant = r->tenant,
            .account = r->account,
            .stage = "admin",
            .action = "counters reset",
            .reason = reason.data,
            .rule = "ctl.counters_reset",
            .counters = x.desc.data,
        };
        struct journal_reset jr = { (const char *const *)r->prefixes, r->nprefixes, r->unit, r->id, x.result.data };
        ok = journal_add(d->journal, &rec, NULL, 0, &jr, err) > 0;
    }
    buf_free(&x.result);
    buf_free(&x.desc);
    buf_free(&reason);
    return ok;
}

/* The store thread's part of a batch (list may be NULL when only counter
 * resets are to be done): decide on the memory counters, journal each
 * decision with its counter deltas, commit the journal once.  A failed
 * batch puts the counters back as they were and turns every reply into
 * the on_error answer.  Touches the pending requests, their connections'
 * decide_conn, d->journal, d->counters and the statistics it owns,
 * nothing of the loop. */
static bool batch_store(struct policyd *d, struct policyd_pending *list, struct journal_reset_req *resets,
                        size_t nresets)
{
    struct buf err, batch_err;
    struct counter_deltas deltas;
    buf_init(&err);
    buf_init(&batch_err);
    counter_deltas_init(&deltas);

    counters_mem_batch_begin(d->counters);
    bool ok = true;
    for (size_t i = 0; ok && i < nresets; i++)
        if (!reset_apply(d, &resets[i], &err)) {
            ok = false;
            buf_printf(&batch_err, "counter reset: %s", err.data);
        }
    for (struct policyd_pending *p = list; ok && p != NULL; p = p->next) {
        if (p->conn == NULL)
            continue;
        struct decide_env env = { .rules = p->rules, .counters = d->counters, .clock = &d->clock };
        decide(&env, &p->conn->dc, &p->req, &p->dec);
        d->n_requests++;
        counter_deltas_clear(&deltas);
        counters_mem_take_deltas(d->counters, &deltas);
        if (p->dec.store_error) {
            pending_fail(p, NULL);
            audit_on_error(d, p, &err);
        } else {
            struct audit_rec rec;
            const char *rcpt = NULL;
            decide_audit(&p->req, &p->dec, &rcpt, &rec);
            rec.latency_us = clock_mono_us() - p->t0_us;
            if (journal_add(d->journal, &rec, deltas.v, deltas.n, NULL, &err) == 0) {
                ok = false;
                buf_puts(&batch_err, err.data);
            }
        }
    }
    if (ok && !journal_commit(d->journal, &err)) {
        ok = false;
        buf_puts(&batch_err, err.data);
    }
    if (ok) {
        counters_mem_batch_commit(d->counters);
        int64_t ingested = d->ingester != NULL ? ingester_ingested(d->ingester) : d->ingested;
        if (!journal_trim(d->journal, ingested, &err))
            log_msg(LOG_LVL_WARN, "journal_trim", "error=\"%s\"", err.data); /* tried again later */
    } else {
        /* nothing of the batch was kept: every reply is on_error */
        journal_rollback(d->journal);
        counters_mem_batch_rollback(d->counters);
        d->n_store_errors++;
        struct buf kv;
        buf_init(&kv);
        buf_kv(&kv, "error", batch_err.data);
        log_event(LOG_LVL_ERR, "store_error", &kv);
        buf_free(&kv);
        for (struct policyd_pending *p = list; p != NULL; p = p->next) {
            if (p->conn == NULL)
                continue;
            p->dec.store_error = false;
            p->failed = false;
            pending_fail(p, batch_err.data);
            audit_on_error_log(d, p, batch_err.data);
        }
    }
    counter_deltas_free(&deltas);
    buf_free(&err);
    buf_free(&batch_err);
    return ok;
}

/* The loop's part, once the batch is back: the replies, in arrival order
 * (so in order per connection). */
static void batch_reply(struct policyd *d, struct policyd_pending *list)
{
    struct buf out;
    buf_init(&out);
    struct policyd_pending *next;
    for (struct policyd_pending *p = list; p != NULL; p = next) {
        next = p->next;
        struct policyd_conn *c = p->conn;
        if (c != NULL && --c->ninflight == 0 && c->zombie) {
            mem_free(c); /* closed while the store thread had this request */
            c = NULL;
        } else if (c != NULL && c->zombie) {
            c = NULL;
        }
        if (c != NULL) {
            const char *action = p->failed ? d->on_error_action : p->dec.action.data;
            if (p->failed) {
                struct buf kv;
                buf_init(&kv);
                buf_kvf(&kv, "conn", "%llu", (unsigned long long)c->id);
                buf_kv(&kv, "client", c->client);
                buf_kv(&kv, "instance", p->req.instance);
                buf_kv(&kv, "stage", stage_of(p));
                buf_kv(&kv, "answer", action);
                buf_kv(&kv, "error", p->dec.reason.data);
                log_event(LOG_LVL_ERR, "store_error", &kv);
                buf_free(&kv);
            }
            buf_reset(&out);
            policy_reply_format(&out, action);
            conn_write(c, out.data, out.len);
            if (--c->npending == 0)
                conn_resume(c); /* may free c: none of the later requests is its */
        }
        pending_free(p);
    }
    buf_free(&out);
}

/* Hand the queue to the store thread, unless it still has a batch (the
 * queue goes when that one comes back). */
static void batch_dispatch(struct policyd *d)
{
    if (d->inflight != NULL || d->queue_head == NULL)
        return;
    struct policyd_pending *list = d->queue_head;
    d->queue_head = d->queue_tail = NULL;
    d->n_queued = 0;
    d->callbacks_since_queue = 0;
    d->n_batches++;
    for (struct policyd_pending *p = list; p != NULL; p = p->next)
        if (p->conn != NULL)
            p->conn->ninflight++;
    d->inflight = list;
    pthread_mutex_lock(&d->mu);
    d->work = list;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void *worker_main(void *arg)
{
    struct policyd *d = arg;
    /* resets of a batch the journal could not take: tried again with the
     * next batch of requests (not at once: the journal may stay full) */
    struct journal_reset_req *retry = NULL;
    size_t nretry = 0;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (d->work == NULL && d->n_resets == 0 && !d->worker_quit)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->work == NULL && d->n_resets == 0)
            break; /* quit, and nothing left to do */
        struct policyd_pending *list = d->work;
        struct journal_reset_req *resets = d->resets;
        size_t nresets = d->n_resets;
        d->work = NULL;
        d->resets = NULL;
        d->n_resets = d->cap_resets = 0;
        pthread_mutex_unlock(&d->mu);
        if (nretry > 0 && list != NULL) {
            resets = mem_grow(resets, nresets + nretry, sizeof *resets);
            memmove(resets + nretry, resets, nresets * sizeof *resets);
            memcpy(resets, retry, nretry * sizeof *resets);
            nresets += nretry;
            mem_free(retry);
            retry = NULL;
            nretry = 0;
        }
        if (!batch_store(d, list, resets, nresets) && nresets > 0) {
            retry = mem_grow(retry, nretry + nresets, sizeof *retry);
            memcpy(retry + nretry, resets, nresets * sizeof *resets);
            nretry += nresets;
        } else {
            for (size_t i = 0; i < nresets; i++)
                journal_reset_req_free(&resets[i]);
        }
        mem_free(resets);
        pthread_mutex_lock(&d->mu);
        if (list == NULL)
            continue; /* resets only: nothing to answer */
        d->done = list;
        pthread_cond_broadcast(&d->cv);
        uint64_t one = 1;
        if (write(d->done_fd, &one, sizeof one) != sizeof one)
            log_msg(LOG_LVL_ERR, "internal_error", "error=\"cannot wake the event loop: %s\"", strerror(errno));
    }
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < nretry; i++)
        journal_reset_req_free(&retry[i]);
    mem_free(retry);
    return NULL;
}

/* The batch is back: answer it, hand over the next one. */
static void batch_complete(struct policyd *d, struct policyd_pending *list)
{
    d->inflight = NULL;
    batch_reply(d, list);
    batch_dispatch(d);
    if (d->stopping && d->n_conns == 0 && d->inflight == NULL)
        event_base_loopexit(d->base, NULL);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct policyd *d = arg;
    (void)what;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        log_msg(LOG_LVL_ERR, "internal_error", "error=\"reading the store thread's eventfd: %s\"", strerror(errno));
    pthread_mutex_lock(&d->mu);
    struct policyd_pending *list = d->done;
    d->done = NULL;
    pthread_mutex_unlock(&d->mu);
    if (list != NULL)
        batch_complete(d, list);
}

/* Outside the loop (it has ended): wait for the batch in flight, then
 * decide whatever is still queued, until nothing is left. */
static void batch_drain(struct policyd *d)
{
    while (d->inflight != NULL || d->queue_head != NULL) {
        batch_dispatch(d);
        pthread_mutex_lock(&d->mu);
        while (d->done == NULL)
            pthread_cond_wait(&d->cv, &d->mu);
        struct policyd_pending *list = d->done;
        d->done = NULL;
        pthread_mutex_unlock(&d->mu);
        d->inflight = NULL;
        batch_reply(d, list);
    }
}

static bool worker_start(struct policyd *d, struct buf *err)
{
    d->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->done_fd < 0) {
        buf_printf(err, "eventfd: %s", strerror(errno));
        return false;
    }
    d->done_ev = event_new(d->base, d->done_fd, EV_READ | EV_PERSIST, done_cb, d);
    if (d->done_ev == NULL || event_add(d->done_ev, NULL) != 0) {
        buf_puts(err, "cannot watch the store thread's eventfd");
        return false;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    int rc = pthread_create(&d->worker, NULL, worker_main, d);
    if (rc != 0) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        buf_printf(err, "cannot start the store thread: %s", strerror(rc));
        return false;
    }
    d->worker_started = true;
    /* the store is the ingest thread's from here to worker_stop() */
    d->ingester = ingester_start(d->store, d->journal_dir, POLICYD_INGEST_MS, POLICYD_INGEST_MAX_ROWS, resets_poll, d,
                                 err);
    return d->ingester != NULL;
}

/* --- the ingest thread: journal -> store ---------------------------------- */

/* Hand the counter resets posternctl queued to the store thread. */
static void reset_take(const struct journal_reset_req *r, void *arg)
{
    struct policyd *d = arg;
    pthread_mutex_lock(&d->mu);
    if (d->n_resets == d->cap_resets) {
        d->cap_resets = d->cap_resets ? d->cap_resets * 2 : 4;
        d->resets = mem_grow(d->resets, d->cap_resets, sizeof *d->resets);
    }
    struct journal_reset_req *q = &d->resets[d->n_resets++];
    *q = *r;
    q->by = mem_strdup(r->by);
    q->tenant = mem_strdup(r->tenant);
    q->account = mem_strdup(r->account);
    q->what = mem_strdup(r->what);
    q->prefixes = mem_alloc((r->nprefixes ? r->nprefixes : 1) * sizeof *q->prefixes);
    for (size_t i = 0; i < r->nprefixes; i++)
        q->prefixes[i] = mem_strdup(r->prefixes[i]);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    d->resets_handed = r->id;
    log_msg(LOG_LVL_INFO, "counters_reset", "request=%lld by=\"%s\" status=accepted", (long long)r->id, r->by);
}

/* The ingester's round callback (the ingest thread): hand over the
 * requests not handed yet.  An error is logged once while it stays the
 * same (the next round tries again). */
static void resets_poll(void *arg, struct store *s)
{
    struct policyd *d = arg;
    struct buf err;
    buf_init(&err);
    if (journal_reset_pending(s, d->resets_handed, reset_take, d, &err)) {
        d->resets_error[0] = '\0';
    } else if (strncmp(err.data, d->resets_error, sizeof d->resets_error - 1) != 0) {
        /* (a message longer than the field is compared as it was kept) */
        log_msg(LOG_LVL_ERR, "ingest_error", "error=\"%s\"", err.data);
        snprintf(d->resets_error, sizeof d->resets_error, "%s", err.data);
    }
    buf_free(&err);
}

/* Answer everything left, then end the store thread. */
static void worker_stop(struct policyd *d)
{
    if (!d->worker_started)
        return;
    batch_drain(d);
    pthread_mutex_lock(&d->mu);
    d->worker_quit = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->worker, NULL);
    d->worker_started = false;
    /* after the store thread's last commit: the last ingestion takes all */
    d->n_ingested = ingester_stop(d->ingester);
    d->ingester = NULL;
    /* resets handed over too late stay queued in the store (not done):
     * the next start hands them over again */
    for (size_t i = 0; i < d->n_resets; i++)
        journal_reset_req_free(&d->resets[i]);
    mem_free(d->resets);
    d->resets = NULL;
    d->n_resets = d->cap_resets = 0;
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

/* --- listeners ------------------------------------------------------------ */

static struct policyd_listener *listener_add(struct policyd *d, int fd, const char *name)
{
    d->listeners = mem_grow(d->listeners, d->n_listeners + 1, sizeof *d->listeners);
    struct policyd_listener *l = &d->listeners[d->n_listeners++];
    memset(l, 0, sizeof *l);
    l->d = d;
    l->fd = fd;
    snprintf(l->name, sizeof l->name, "%s", name);
    return l;
}

static bool listen_unix(struct policyd *d, const char *endpoint, struct buf *err)
{
    const char *path = endpoint + 5;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        buf_printf(err, "%s: socket path too long", endpoint);
        return false;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            buf_printf(err, "%s: %s exists and is not a socket", endpoint, path);
            return false;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            int rc = connect(probe, (struct sockaddr *)&sun, sizeof sun);
            int e = errno;
            close(probe);
            if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
                buf_printf(err, "%s: another process is listening on %s", endpoint, path);
                return false;
            }
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            buf_printf(err, "%s: cannot remove the stale socket %s: %s", endpoint, path, strerror(errno));
            return false;
        }
        log_msg(LOG_LVL_INFO, "stale_socket", "path=%s removed=yes", path);
    } else if (errno != ENOENT) {
        buf_printf(err, "%s: %s: %s", endpoint, path, strerror(errno));
        return false;
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        buf_printf(err, "%s: socket: %s", endpoint, strerror(errno));
        return false;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        buf_printf(err, "%s: cannot bind: %s", endpoint, strerror(errno));
        close(fd);
        return false;
    }
    struct policyd_listener *l = listener_add(d, fd, endpoint);
    l->unix_path = mem_strdup(path);
    if (stat(path, &st) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    /* Postfix's smtpd (user postfix) connects to it: world-writable, as
     * Postfix's own sockets in private/ are; the directory guards it. */
    if (chmod(path, 0666) != 0) {
        buf_printf(err, "%s: chmod 0666: %s", endpoint, strerror(errno));
        return false;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        buf_printf(err, "%s: listen: %s", endpoint, strerror(errno));
        return false;
    }
    return true;
}

static bool listen_inet(struct policyd *d, const char *endpoint, struct buf *err)
{
    const char *hp = endpoint + 5;
    const char *colon = strrchr(hp, ':');
    char *host = mem_strndup(hp, (size_t)(colon - hp));
    const char *port = colon + 1;
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(*h == '\0' || strcmp(h, "*") == 0 ? NULL : h, port, &hints, &res);
    if (rc != 0) {
        buf_printf(err, "%s: cannot resolve %s: %s", endpoint, h, gai_strerror(rc));
        mem_free(host);
        return false;
    }
    size_t bound = 0;
    bool ok = true;
    for (struct addrinfo *ai = res; ai != NULL && ok; ai = ai->ai_next) {
        char addr[NI_MAXHOST], name[300];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST) != 0)
            snprintf(addr, sizeof addr, "?");
        snprintf(name, sizeof name, ai->ai_family == AF_INET6 ? "inet:[%s]:%s" : "inet:%s:%s", addr, port);
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            if (errno == EAFNOSUPPORT) {
                log_msg(LOG_LVL_WARN, "listen_skip", "listen=%s error=\"%s\"", name, strerror(errno));
                continue;
            }
            buf_printf(err, "%s: socket: %s", name, strerror(errno));
            ok = false;
            break;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            int e = errno;
            close(fd);
            if (e == EADDRNOTAVAIL && res->ai_next != NULL) {
                log_msg(LOG_LVL_WARN, "listen_skip", "listen=%s error=\"%s\"", name, strerror(e));
                continue;
            }
            buf_printf(err, "%s: cannot bind: %s", name, strerror(e));
            ok = false;
            break;
        }
        if (listen(fd, SOMAXCONN) != 0) {
            buf_printf(err, "%s: listen: %s", name, strerror(errno));
            close(fd);
            ok = false;
            break;
        }
        listener_add(d, fd, name);
        bound++;
    }
    freeaddrinfo(res);
    if (ok && bound == 0) {
        buf_printf(err, "%s: no address to listen on", endpoint);
        ok = false;
    }
    mem_free(host);
    return ok;
}

bool server_bind(struct policyd *d, struct buf *err)
{
    buf_reset(err);
    const struct conf_list *ls = &d->conf.policyd.listen;
    if (ls->n == 0) {
        buf_puts(err, "policyd.listen: no socket to listen on");
        return false;
    }
    for (size_t i = 0; i < ls->n; i++) {
        const char *ep = ls->v[i];
        bool ok = strncmp(ep, "unix:", 5) == 0 ? listen_unix(d, ep, err)
                  : strncmp(ep, "inet:", 5) == 0 ? listen_inet(d, ep, err)
                                                 : (buf_printf(err, "%s: unknown endpoint type", ep), false);
        if (!ok)
            return false;
    }
    return true;
}

const char *server_listener_name(const struct policyd *d, size_t i)
{
    return d->listeners[i].name;
}

static void listeners_enable(struct policyd *d, bool on)
{
    for (size_t i = 0; i < d->n_listeners; i++)
        if (d->listeners[i].ev != NULL) {
            if (on)
                event_add(d->listeners[i].ev, NULL);
            else
                event_del(d->listeners[i].ev);
        }
}

static void accept_pause_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct policyd *d = arg;
    if (!d->stopping)
        listeners_enable(d, true);
}

static void accept_refuse(struct policyd *d, struct policyd_listener *l, int fd)
{
    close(fd);
    d->refused++;
    int64_t now = clock_mono_us();
    if (d->refused_logged_us != 0 && now - d->refused_logged_us < REFUSED_LOG_INTERVAL_US)
        return;
    log_msg(LOG_LVL_WARN, "connection_limit", "listen=%s max_connections=%llu refused=%llu", l->name,
            (unsigned long long)d->conf.policyd.max_connections, (unsigned long long)d->refused);
    d->refused = 0;
    d->refused_logged_us = now;
}

static void listener_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct policyd_listener *l = arg;
    struct policyd *d = l->d;
    (void)what;
    for (int i = 0; i < ACCEPT_PER_CALLBACK && !d->stopping; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            log_msg(LOG_LVL_ERR, "accept_error", "listen=%s error=\"%s\" pause_ms=%d", l->name, strerror(errno),
                    ACCEPT_PAUSE_MS);
            /* out of descriptors or memory: stop accepting for a moment
             * rather than spin on a listener that stays readable */
            listeners_enable(d, false);
            struct timeval tv = ms_to_tv(ACCEPT_PAUSE_MS);
            evtimer_add(d->accept_pause, &tv);
            break;
        }
        if (d->n_conns >= d->conf.policyd.max_connections) {
            accept_refuse(d, l, fd);
            continue;
        }
        conn_new(d, l, fd, &ss, sslen);
    }
    batch_maybe_force(d);
}

/* Close the listening sockets and remove our unix socket files (only if
 * the file is still the one we created). */
static void listeners_close(struct policyd *d)
{
    for (size_t i = 0; i < d->n_listeners; i++) {
        struct policyd_listener *l = &d->listeners[i];
        if (l->ev != NULL) {
            event_free(l->ev);
            l->ev = NULL;
        }
        if (l->fd >= 0) {
            close(l->fd);
            l->fd = -1;
        }
        if (l->unix_path != NULL) {
            struct stat st;
            if (lstat(l->unix_path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino &&
                unlink(l->unix_path) != 0)
                log_msg(LOG_LVL_NOTICE, "socket_left", "path=%s error=\"%s\" note=\"removed at the next start\"",
                        l->unix_path, strerror(errno));
            mem_free(l->unix_path);
            l->unix_path = NULL;
        }
    }
}

/* --- signals -------------------------------------------------------------- */

static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct policyd *d = arg;
    log_msg(LOG_LVL_WARN, "stop_timeout", "connections=%zu note=\"replies not sent within %d ms\"", d->n_conns,
            POLICYD_STOP_GRACE_MS);
    event_base_loopexit(d->base, NULL);
}

static void server_stop(struct policyd *d, const char *signame)
{
    if (d->stopping) {
        log_msg(LOG_LVL_NOTICE, "stopping", "signal=%s note=\"second signal: exiting now\"", signame);
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->stopping = true;
    log_msg(LOG_LVL_NOTICE, "stopping", "signal=%s connections=%zu queued=%zu", signame, d->n_conns, d->n_queued);
    listeners_close(d);
    event_del(d->accept_pause);
    batch_dispatch(d); /* the requests already received are answered */
    struct policyd_conn *next;
    for (struct policyd_conn *c = d->conns; c != NULL; c = next) {
        next = c->next;
        conn_close_when_flushed(c);
    }
    if (d->n_conns == 0 && d->inflight == NULL) {
        event_base_loopexit(d->base, NULL);
    } else {
        struct timeval tv = ms_to_tv(POLICYD_STOP_GRACE_MS);
        evtimer_add(d->stop_timer, &tv);
    }
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct policyd *d = arg;
    (void)what;
    if (sig == SIGHUP)
        server_reload(d);
    else
        server_stop(d, sig == SIGTERM ? "TERM" : "INT");
}

bool server_reload(struct policyd *d)
{
    struct diags errs, warns;
    diags_init(&errs);
    diags_init(&warns);
    char *dir = NULL;
    struct postern_conf nc;
    memset(&nc, 0, sizeof nc);
    /* postern.yaml is read again for its rules path; the other settings
     * (sockets, user, state_dir, time zone...) take a restart */
    if (conf_load(&nc, d->conf_path, &errs)) {
        dir = mem_strdup(nc.rules);
        if (strcmp(nc.timezone, d->conf.timezone) != 0)
            log_msg(LOG_LVL_NOTICE, "reload", "note=\"timezone changed to %s: takes effect at restart\"",
                    nc.timezone);
        conf_free(&nc);
    }
    tz_select(d->conf.timezone); /* conf_load selected the file's zone */
    struct rules *r = dir != NULL ? rules_load(dir, &errs, &warns) : NULL;
    log_diags(LOG_LVL_WARN, "rules_warning", &warns);
    if (r == NULL) {
        log_diags(LOG_LVL_ERR, "reload_error", &errs);
        struct buf kv;
        buf_init(&kv);
        buf_kv(&kv, "status", "failed");
        buf_kvf(&kv, "errors", "%zu", errs.n);
        buf_kv(&kv, dir != NULL ? "rules" : "config", dir != NULL ? dir : d->conf_path);
        buf_kvf(&kv, "tenants", "%zu", d->rules->n_tenants);
        buf_kv(&kv, "note", "keeping the rules in use");
        log_event(LOG_LVL_ERR, "reload", &kv);
        buf_free(&kv);
        mem_free(dir);
        diags_free(&errs);
        diags_free(&warns);
        return false;
    }
    struct rules *old = d->rules;
    d->rules = r; /* requests already queued keep their own reference to old */
    rules_unref(old);
    mem_free(d->rules_dir);
    d->rules_dir = dir;
    struct buf kv;
    buf_init(&kv);
    buf_kv(&kv, "status", "ok");
    buf_kvf(&kv, "tenants", "%zu", r->n_tenants);
    buf_kvf(&kv, "files", "%zu", r->n_files);
    buf_kv(&kv, "rules", dir);
    log_event(LOG_LVL_INFO, "reload", &kv);
    buf_free(&kv);
    diags_free(&errs);
    diags_free(&warns);
    return true;
}

/* --- life cycle ----------------------------------------------------------- */

void server_init(struct policyd *d)
{
    memset(d, 0, sizeof *d);
    d->limits = policy_limits_default;
    d->on_error_action = POLICYD_ON_ERROR_DUNNO;
    d->clock = clock_system();
    d->done_fd = -1;
}

bool server_setup(struct policyd *d, struct buf *err)
{
    buf_reset(err);
    d->limits.max_bytes = (size_t)d->conf.policyd.max_request_bytes;
    d->on_error_action =
        d->conf.policyd.on_error == ON_ERROR_DEFER ? POLICYD_ON_ERROR_DEFER : POLICYD_ON_ERROR_DUNNO;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN; /* a client gone before its reply: EPIPE, not death */
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGXFSZ, &sa, NULL); /* a file size limit: EFBIG, the on_error answer, not death */

    event_set_log_callback(libevent_log);
    d->base = event_base_new();
    if (d->base == NULL || event_base_priority_init(d->base, PRIO_QUEUES) != 0) {
        buf_puts(err, "cannot create the event loop");
        return false;
    }
    d->batch_ev = event_new(d->base, -1, 0, batch_cb, d);
    d->sig_hup = evsignal_new(d->base, SIGHUP, signal_cb, d);
    d->sig_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
    d->sig_int = evsignal_new(d->base, SIGINT, signal_cb, d);
    d->stop_timer = evtimer_new(d->base, stop_timer_cb, d);
    d->accept_pause = evtimer_new(d->base, accept_pause_cb, d);
    if (d->batch_ev == NULL || d->sig_hup == NULL || d->sig_term == NULL || d->sig_int == NULL ||
        d->stop_timer == NULL || d->accept_pause == NULL || event_priority_set(d->batch_ev, PRIO_BATCH) != 0 ||
        event_add(d->sig_hup, NULL) != 0 || event_add(d->sig_term, NULL) != 0 || event_add(d->sig_int, NULL) != 0) {
        buf_puts(err, "cannot set up the events of the loop");
        return false;
    }
    for (size_t i = 0; i < d->n_listeners; i++) {
        struct policyd_listener *l = &d->listeners[i];
        l->d = d; /* the array may have moved while it grew */
        l->ev = event_new(d->base, l->fd, EV_READ | EV_PERSIST, listener_cb, l);
        if (l->ev == NULL || event_add(l->ev, NULL) != 0) {
            buf_printf(err, "%s: cannot watch the socket", l->name);
            return false;
        }
    }
    return worker_start(d, err);
}

int server_loop(struct policyd *d)
{
    event_base_dispatch(d->base);
    /* the loop may also end on the stop timer: answer what is queued and
     * end the store thread (the caller reads its statistics) */
    worker_stop(d);
    return 0;
}

void server_free(struct policyd *d)
{
    worker_stop(d);
    listeners_close(d);
    while (d->conns != NULL)
        conn_free(d->conns);
    struct policyd_pending *next;
    for (struct policyd_pending *p = d->queue_head; p != NULL; p = next) {
        next = p->next;
        pending_free(p);
    }
    d->queue_head = d->queue_tail = NULL;
    d->n_queued = 0;
    mem_free(d->listeners);
    d->listeners = NULL;
    d->n_listeners = 0;
    struct event **evs[] = { &d->batch_ev, &d->done_ev, &d->sig_hup, &d->sig_term, &d->sig_int, &d->stop_timer, &d->accept_pause };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    if (d->base != NULL) {
        event_base_free(d->base);
        d->base = NULL;
    }
    if (d->done_fd >= 0) {
        close(d->done_fd);
        d->done_fd = -1;
    }
}
