/* ctl_trace.c: posternctl trace ADDRESS|QUEUE-ID [--since TIME] [--json]:
 * the whole story of a message in time order, or of every message to or
 * from an address: postern-policyd's decisions and postern-milter's
 * actions (their audit trails, by queue ID), then what Postfix's log
 * says (STATE_DIR/maillog.sqlite, read by posternctl ingest): queued,
 * each delivery attempt with the receiver's reply, held, released,
 * removed; and for each recipient its final state (delivered, bounced,
 * deferred and still queued).  The stores that are missing are left out
 * with a note. */
#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alloc.h"
#include "audit.h"
#include "ctl.h"
#include "hmap.h"
#include "ptime.h"
#include "qid.h"

#define TRACE_MAILLOG_FILE "maillog.sqlite"
#define TRACE_MAX_MESSAGES 200  /* messages of one address shown */

/* One line of a story. */
struct trace_ev {
    int64_t time_us;
    size_t seq;                /* the order found: audit records first, then the log in its order */
    char *source;              /* "policyd", "milter", "ctl", or Postfix's service ("smtp") */
    char *what;                /* the action or the log's kind ("delivery", "queued") */
    char *rcpt;                /* a delivery's recipient, else NULL */
    char *status;              /* a delivery's status */
    char *text;                /* the rest, for people */
};

struct trace_msg {
    char queue_id[QID_MAX + 1];
    struct trace_ev *ev;
    size_t n;
};

static void trace_add(struct trace_msg *m, int64_t t, const char *source, const char *what, const char *rcpt,
                      const char *status, const char *text)
{
    m->ev = mem_grow(m->ev, m->n + 1, sizeof *m->ev);
    struct trace_ev *e = &m->ev[m->n];
    e->seq = m->n++;
    e->time_us = t;
    e->source = mem_strdup(source != NULL ? source : "-");
    e->what = mem_strdup(what != NULL ? what : "-");
    e->rcpt = rcpt != NULL && rcpt[0] ? mem_strdup(rcpt) : NULL;
    e->status = status != NULL && status[0] ? mem_strdup(status) : NULL;
    e->text = mem_strdup(text != NULL ? text : "");
}

static void trace_msg_free(struct trace_msg *m)
{
    for (size_t i = 0; i < m->n; i++) {
        mem_free(m->ev[i].source);
        mem_free(m->ev[i].what);
        mem_free(m->ev[i].rcpt);
        mem_free(m->ev[i].status);
        mem_free(m->ev[i].text);
    }
    mem_free(m->ev);
}

/* The queue IDs of the story, in the order found (no duplicates). */
struct trace_ids {
    struct hmap seen;
    char **v;
    size_t n;
};

static void trace_id_add(struct trace_ids *ids, const char *qid)
{
    if (qid == NULL || !qid_valid(qid) || hmap_gets(&ids->seen, qid) != NULL || ids->n >= TRACE_MAX_MESSAGES)
        return;
    char *s = mem_strdup(qid);
    hmap_put(&ids->seen, s, strlen(s), s, NULL);
    ids->v = mem_grow(ids->v, ids->n + 1, sizeof *ids->v);
    ids->v[ids->n++] = s;
}

static bool trace_audit_ids_cb(const struct audit_rec *r, void *arg)
{
    trace_id_add(arg, r->queue_id);
    return true;
}

/* The audit records of a message (one store). */
static bool trace_audit_cb(const struct audit_rec *r, void *arg)
{
    struct trace_msg *m = arg;
    struct buf t;
    buf_init(&t);
    if (r->tenant != NULL && r->tenant[0])
        buf_printf(&t, "tenant=%s ", r->tenant);
    if (r->account != NULL && r->account[0])
        buf_printf(&t, "account=%s ", r->account);
    if (r->stage != NULL && r->stage[0])
        buf_printf(&t, "stage=%s ", r->stage);
    if (r->rule != NULL && r->rule[0])
        buf_printf(&t, "rule=%s ", r->rule);
    if (r->reason != NULL && r->reason[0])
        buf_printf(&t, "reason=\"%s\"", r->reason);
    trace_add(m, r->time_us, r->component, r->action, NULL, NULL, t.data);
    buf_free(&t);
    return true;
}

/* The log's events of a message. */
static bool trace_log(struct store *s, struct trace_msg *m, struct buf *err)
{
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT time_us, service, kind, rcpt, orig_rcpt, relay, delay_us, dsn, status, "
                                 "reply, sender, detail FROM maillog_event WHERE queue_id = ?1 ORDER BY time_us, id",
                                 err);
    if (q == NULL)
        return false;
    sqlite3_bind_text(q, 1, m->queue_id, -1, SQLITE_STATIC);
    enum store_step st;
    struct buf t;
    buf_init(&t);
    while ((st = store_step(s, q, "reading the mail log", err)) == STORE_ROW) {
        buf_reset(&t);
        const char *kind = (const char *)sqlite3_column_text(q, 2);
        const char *rcpt = (const char *)sqlite3_column_text(q, 3);
        const char *status = (const char *)sqlite3_column_text(q, 8);
        static const char *const names[] = { NULL, NULL, NULL, "to", "orig_to", "relay", NULL, "dsn",
                                             "status", NULL, "from", NULL };
        for (int col = 3; col <= 11; col++) {
            const char *v = (const char *)sqlite3_column_text(q, col);
            if (v == NULL || v[0] == '\0')
                continue;
            if (col == 6)
                buf_printf(&t, "delay=%.1fs ", (double)sqlite3_column_int64(q, 6) / 1e6);
            else if (col == 9)
                buf_printf(&t, "reply=\"%s\" ", v);
            else if (col == 11)
                buf_printf(&t, "%s ", v);
            else if (col == 3 || col == 4 || col == 10)
                buf_printf(&t, "%s=<%s> ", names[col], v);
            else
                buf_printf(&t, "%s=%s ", names[col], v);
        }
        if (t.len > 0 && t.data[t.len - 1] == ' ')
            t.data[--t.len] = '\0';
        char source[64];
        snprintf(source, sizeof source, "postfix/%s", (const char *)sqlite3_column_text(q, 1));
        trace_add(m, sqlite3_column_int64(q, 0), source, kind, kind != NULL && strcmp(kind, "delivery") == 0 ? rcpt : NULL,
                  status, t.data);
    }
    buf_free(&t);
    store_stmt_done(q);
    return st == STORE_DONE;
}

static int trace_ev_cmp(const void *a, const void *b)
{
    const struct trace_ev *x = a, *y = b;
    if (x->time_us != y->time_us)
        return x->time_us < y->time_us ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq; /* the same second: in the log's order */
}

/* Each recipient's last delivery attempt: its final state. */
static const char *trace_final(const char *status, bool removed)
{
    if (strcmp(status, "sent") == 0)
        return "delivered";
    if (strcmp(status, "bounced") == 0 || strcmp(status, "expired") == 0 || strcmp(status, "undeliverable") == 0)
        return "bounced";
    if (strcmp(status, "deferred") == 0)
        return removed ? "deferred, then removed" : "deferred, still queued";
    return status;
}

static void trace_print_text(const struct trace_msg *m)
{
    printf("message %s\n", m->queue_id);
    bool removed = false, held = false;
    for (size_t i = 0; i < m->n; i++) {
        const struct trace_ev *e = &m->ev[i];
        char when[48];
        ctl_time_format((time_t)(e->time_us / 1000000), when, sizeof when);
        printf("  %s  %-14s %-10s %s\n", when, e->source, e->what, e->text);
        if (strcmp(e->what, "removed") == 0)
            removed = true;
        if (strcmp(e->what, "hold") == 0 || strcmp(e->what, "quarantine") == 0)
            held = true;
        if (strcmp(e->what, "release") == 0)
            held = false;
    }
    /* the final state: each recipient's last attempt */
    bool any = false;
    for (size_t i = m->n; i-- > 0;) {
        const struct trace_ev *e = &m->ev[i];
        if (e->rcpt == NULL || e->status == NULL)
            continue;
        bool later = false;
        for (size_t j = i + 1; j < m->n && !later; j++)
            later = m->ev[j].rcpt != NULL && strcmp(m->ev[j].rcpt, e->rcpt) == 0;
        if (later)
            continue;
        printf("  final: <%s> %s\n", e->rcpt, trace_final(e->status, removed));
        any = true;
    }
    if (!any)
        printf("  final: %s\n", held ? "held in Postfix's hold queue" : removed ? "left the queue" :
                                   "no delivery attempt in the log");
}

static void trace_print_json(const struct trace_msg *v, size_t n)
{
    fputs("[", stdout);
    for (size_t k = 0; k < n; k++) {
        fputs(k ? ",\n {\"queue_id\": " : "\n {\"queue_id\": ", stdout);
        ctl_put_json(stdout, v[k].queue_id);
        fputs(", \"events\": [", stdout);
        for (size_t i = 0; i < v[k].n; i++) {
            const struct trace_ev *e = &v[k].ev[i];
            char when[48];
            ctl_time_format((time_t)(e->time_us / 1000000), when, sizeof when);
            fputs(i ? ",\n   {\"time\": " : "\n   {\"time\": ", stdout);
            ctl_put_json(stdout, when);
            printf(", \"time_us\": %lld, \"source\": ", (long long)e->time_us);
            ctl_put_json(stdout, e->source);
            fputs(", \"what\": ", stdout);
            ctl_put_json(stdout, e->what);
            fputs(", \"rcpt\": ", stdout);
            ctl_put_json(stdout, e->rcpt);
            fputs(", \"status\": ", stdout);
            ctl_put_json(stdout, e->status);
            fputs(", \"text\": ", stdout);
            ctl_put_json(stdout, e->text);
            fputs("}", stdout);
        }
        fputs("]}", stdout);
    }
    fputs(n ? "\n]\n" : "]\n", stdout);
}

/* A store under state_dir, read-only, when the file exists. */
static struct store *trace_open(const struct ctl *c, const char *file)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    buf_printf(&path, "%s/%s", c->conf.state_dir, file);
    struct store *s = NULL;
    if (access(path.data, F_OK) == 0 && (s = store_open(path.data, STORE_READONLY, &err)) == NULL)
        fprintf(stderr, "posternctl: warning: %s left out: %s\n", path.data, err.data);
    buf_free(&path);
    buf_free(&err);
    return s;
}

int ctl_trace(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "since", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
        { "config", required_argument, NULL, 'c' }, { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    const char *since = "30d";
    bool json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "s:jc:r:h", opts, NULL)) != -1) {
        if (ch == 's')
            since = optarg;
        else if (ch == 'j')
            json = true;
        else if (ch == 'h')
            return printf("usage: posternctl %s\n", c->usage), 0;
        else if (!ctl_common_option(c, ch, optarg))
            return ctl_bad_usage(c);
    }
    if (argc - optind != 1 || argv[optind][0] == '\0')
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    const char *what = argv[optind];
    struct buf err;
    buf_init(&err);
    struct clock wall = clock_system();
    int64_t since_us;
    if (!ctl_time_parse(since, clock_now_us(&wall), &since_us, &err)) {
        fprintf(stderr, "posternctl: --since: %s\n", err.data);
        buf_free(&err);
        return 2;
    }
    /* the address as stored: lowercased */
    char addr[320];
    snprintf(addr, sizeof addr, "%s", what);
    bool is_qid = qid_valid(what);
    if (!is_qid)
        for (char *p = addr; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    if (!is_qid && strchr(addr, '@') == NULL) {
        fprintf(stderr, "posternctl: \"%s\" is neither a Postfix queue ID nor an address\n", what);
        buf_free(&err);
        return 2;
    }
    struct store *ps = trace_open(c, CTL_POLICYD_STORE);
    struct store *ms = trace_open(c, ctl_milter_state.store_file);
    struct store *ls = trace_open(c, TRACE_MAILLOG_FILE);
    if (ls == NULL)
        fprintf(stderr, "posternctl: note: no mail log ingested (posternctl ingest MAILLOG): Postfix's side "
                        "is left out\n");
    struct trace_ids ids;
    memset(&ids, 0, sizeof ids);
    hmap_init(&ids.seen);
    int rc = 1;
    struct trace_msg *msgs = NULL;
    size_t n = 0;
    if (is_qid) {
        trace_id_add(&ids, what);
    } else {
        if (ls != NULL) {
            sqlite3_stmt *q = store_stmt(ls,
                                         /* rcpt != '': the partial index on rcpt applies */
                                         "SELECT queue_id FROM maillog_event WHERE rcpt = ?1 AND rcpt != '' AND time_us >= ?2 "
                                         "ORDER BY time_us",
                                         &err);
            if (q == NULL)
                goto fail;
            sqlite3_bind_text(q, 1, addr, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 2, since_us);
            enum store_step st;
            while ((st = store_step(ls, q, "finding the address's messages", &err)) == STORE_ROW)
                trace_id_add(&ids, (const char *)sqlite3_column_text(q, 0));
            store_stmt_done(q);
            if (st == STORE_FAIL)
                goto fail;
        }
        /* without the log, the audit trails are searched by sender and
         * recipient (no index: a scan of the records since --since) */
        struct store *as[2] = { ls == NULL ? ps : NULL, ls == NULL ? ms : NULL };
        for (int k = 0; k < 2; k++) {
            struct audit_filter fr = { .since_us = since_us, .recipient = addr };
            struct audit_filter fs = { .since_us = since_us, .sender = addr };
            if (as[k] != NULL && (!audit_query(as[k], &fr, trace_audit_ids_cb, &ids, &err) ||
                                  !audit_query(as[k], &fs, trace_audit_ids_cb, &ids, &err)))
                goto fail;
        }
    }
    msgs = mem_array(ids.n > 0 ? ids.n : 1, sizeof *msgs);
    for (size_t i = 0; i < ids.n; i++) {
        struct trace_msg *m = &msgs[n++];
        snprintf(m->queue_id, sizeof m->queue_id, "%s", ids.v[i]);
        struct audit_filter f = { .queue_id = m->queue_id };
        if ((ps != NULL && !audit_query(ps, &f, trace_audit_cb, m, &err)) ||
            (ms != NULL && !audit_query(ms, &f, trace_audit_cb, m, &err)) || (ls != NULL && !trace_log(ls, m, &err)))
            goto fail;
        if (m->n > 1)
            qsort(m->ev, m->n, sizeof *m->ev, trace_ev_cmp);
    }
    if (json) {
        trace_print_json(msgs, n);
    } else if (n == 0) {
        printf("nothing about %s%s%s\n", what, is_qid ? "" : " since ", is_qid ? "" : since);
    } else {
        for (size_t i = 0; i < n; i++)
            if (msgs[i].n > 0)
                trace_print_text(&msgs[i]);
    }
    rc = is_qid && n > 0 && msgs[0].n == 0 ? 1 : 0;
    if (rc != 0 && !json)
        printf("(no record of %s in the audit trails nor in the ingested mail log)\n", what);
    goto out;
fail:
    fprintf(stderr, "posternctl: %s\n", err.data);
out:
    for (size_t i = 0; i < n; i++)
        trace_msg_free(&msgs[i]);
    mem_free(msgs);
    for (size_t i = 0; i < ids.n; i++)
        mem_free(ids.v[i]);
    mem_free(ids.v);
    hmap_free(&ids.seen);
    if (ps != NULL)
        store_close(ps);
    if (ms != NULL)
        store_close(ms);
    if (ls != NULL)
        store_close(ls);
    buf_free(&err);
    return rc;
}
