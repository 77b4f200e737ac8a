/* ctl_stats.c: posternctl stats [--tenant T] [--since TIME] [--json]: per
 * tenant and account, since TIME (default 1d): messages submitted and
 * rejected by policy (postern-policyd's audit trail, its journal ingested
 * first), signed and held (postern-milter's audit trail, and policyd's
 * HOLD), and the recipients delivered, bounced and deferred (the mail log
 * that posternctl ingest read into STATE_DIR/maillog.sqlite, each message
 * attributed as for "queue" and "bounces", ctl_attr.c).  A store that is
 * not there counts nothing (a note on stderr). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alloc.h"
#include "audit.h"
#include "ctl.h"
#include "hmap.h"

#define STATS_MAILLOG_FILE "maillog.sqlite"

enum stats_col {
    ST_SUBMITTED, ST_REJECTED, ST_SIGNED, ST_HELD, ST_DELIVERED, ST_BOUNCED, ST_DEFERRED, ST_NCOLS
};
static const char *const stats_names[ST_NCOLS] = { "submitted", "rejected", "signed",  "held",
                                                   "delivered", "bounced",  "deferred" };

struct stats_row {
    char *tenant, *account;
    uint64_t n[ST_NCOLS];
};

/* One message as policyd saw it (its records share the instance). */
struct stats_msg {
    struct stats_row *row;
    bool eom, eom_refused, rcpt_refused;
};

struct stats {
    struct hmap rows;          /* "tenant\0account" -> struct stats_row */
    struct stats_row **v;
    size_t n;
    struct hmap msgs;          /* policyd's instance (or queue ID) -> struct stats_msg */
    struct stats_msg **mv;
    size_t nm;
    struct hmap seen;          /* "class\0queue ID" once counted (signed, held) */
    int64_t next_id;           /* a key for a record without queue ID */
};

static const char *stats_or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static struct stats_row *stats_row(struct stats *st, const char *tenant, const char *account)
{
    struct buf key;
    buf_init(&key);
    tenant = stats_or_dash(tenant);
    account = stats_or_dash(account);
    buf_add(&key, tenant, strlen(tenant) + 1);
    buf_puts(&key, account);
    struct stats_row *row = hmap_get(&st->rows, key.data, key.len);
    if (row == NULL) {
        row = mem_alloc(sizeof *row);
        memset(row, 0, sizeof *row);
        row->tenant = mem_strdup(tenant);
        row->account = mem_strdup(account);
        hmap_put(&st->rows, key.data, key.len, row, NULL);
        st->v = mem_grow(st->v, st->n + 1, sizeof *st->v);
        st->v[st->n++] = row;
    }
    buf_free(&key);
    return row;
}

/* True the first time this class and queue ID are seen (always without a
 * queue ID). */
static bool stats_first(struct stats *st, char cls, const char *qid)
{
    if (qid == NULL || qid[0] == '\0')
        return true;
    struct buf key;
    buf_init(&key);
    buf_add(&key, &cls, 1);
    buf_puts(&key, qid);
    bool first = hmap_put(&st->seen, key.data, key.len, st, NULL);
    buf_free(&key);
    return first;
}

/* A policy answer that refuses: 4NN/5NN, REJECT, DEFER*, BOUNCE. */
static bool stats_refusal(const char *a)
{
    return a[0] == '4' || a[0] == '5' || strncasecmp(a, "REJECT", 6) == 0 || strncasecmp(a, "DEFER", 5) == 0 ||
           strncasecmp(a, "BOUNCE", 6) == 0;
}

static bool stats_policyd_cb(const struct audit_rec *r, void *arg)
{
    struct stats *st = arg;
    if (strcmp(r->component, "policyd") != 0 || r->tenant == NULL || r->tenant[0] == '\0' || r->stage == NULL)
        return true;
    bool eom = strcmp(r->stage, "eom") == 0;
    if (!eom && strcmp(r->stage, "rcpt") != 0)
        return true;
    char idkey[32];
    const char *key = r->instance != NULL && r->instance[0] ? r->instance : r->queue_id;
    if (key == NULL || key[0] == '\0') {
        snprintf(idkey, sizeof idkey, "#%" PRId64, ++st->next_id);
        key = idkey;
    }
    struct stats_msg *m = hmap_gets(&st->msgs, key);
    if (m == NULL) {
        m = mem_alloc(sizeof *m);
        memset(m, 0, sizeof *m);
        m->row = stats_row(st, r->tenant, r->account);
        hmap_put(&st->msgs, key, strlen(key), m, NULL);
        st->mv = mem_grow(st->mv, st->nm + 1, sizeof *st->mv);
        st->mv[st->nm++] = m;
    }
    bool refused = stats_refusal(r->action);
    if (eom) {
        if (!m->eom)
            m->row = stats_row(st, r->tenant, r->account); /* the final decision's account */
        m->eom = true;
        m->eom_refused = m->eom_refused || refused;
        if (strncasecmp(r->action, "HOLD", 4) == 0 && stats_first(st, 'H', r->queue_id))
            stats_row(st, r->tenant, r->account)->n[ST_HELD]++;
    } else if (refused) {
        m->rcpt_refused = true;
    }
    return true;
}

static bool stats_milter_cb(const struct audit_rec *r, void *arg)
{
    struct stats *st = arg;
    if (strcmp(r->component, "milter") != 0 || r->tenant == NULL || r->tenant[0] == '\0')
        return true;
    if (strcmp(r->action, "sign") == 0 && stats_first(st, 'S', r->queue_id))
        stats_row(st, r->tenant, r->account)->n[ST_SIGNED]++;
    else if ((strcmp(r->action, "hold") == 0 || strcmp(r->action, "quarantine") == 0) &&
             stats_first(st, 'H', r->queue_id))
        stats_row(st, r->tenant, r->account)->n[ST_HELD]++;
    return true;
}

/* The audit records of one daemon's store (its journal ingested first);
 * a missing store: a note, nothing counted.  False after printing the
 * error. */
static bool stats_audit(struct ctl *c, const struct ctl_state *state, const struct audit_filter *f, audit_cb cb,
                        struct stats *st, const char *cols)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    buf_printf(&path, "%s/%s", c->conf.state_dir, state->store_file);
    bool ok = true;
    if (access(path.data, F_OK) != 0) {
        fprintf(stderr, "posternctl: note: no %s state at %s: %s not counted\n", state->daemon, path.data,
                cols);
    } else {
        const struct ctl_state *was = c->state;
        c->state = state;
        struct store *s = ctl_store_open_ingested(c);
        c->state = was;
        ok = s != NULL && audit_query(s, f, cb, st, &err);
        if (s != NULL && !ok)
            fprintf(stderr, "posternctl: %s\n", err.data);
        if (s != NULL)
            store_close(s);
    }
    buf_free(&path);
    buf_free(&err);
    return ok;
}

/* The recipients delivered (0), bounced (1) and deferred (2) per message:
 * distinct recipients per class; an expired message counts its deferred
 * recipients that reached no final status (at least one). */
static const char stats_deliveries_sql[] =
    "SELECT q, k, n, (SELECT f.sender FROM maillog_event f WHERE f.queue_id = q AND f.kind = 'queued' "
    "ORDER BY f.time_us DESC LIMIT 1) FROM ("
    " SELECT e.queue_id AS q, CASE e.status WHEN 'sent' THEN 0 WHEN 'deferred' THEN 2 ELSE 1 END AS k,"
    " COUNT(DISTINCT e.rcpt) AS n FROM maillog_event e WHERE e.kind = 'delivery' AND e.time_us >= ?1 AND"
    " e.status IN ('sent', 'bounced', 'expired', 'deferred') GROUP BY e.queue_id, k"
    " UNION ALL"
    " SELECT x.queue_id, 1, MAX(1, (SELECT COUNT(DISTINCT d.rcpt) FROM maillog_event d WHERE"
    " d.queue_id = x.queue_id AND d.kind = 'delivery' AND d.status = 'deferred' AND NOT EXISTS"
    " (SELECT 1 FROM maillog_event g WHERE g.queue_id = d.queue_id AND g.rcpt = d.rcpt AND"
    " g.kind = 'delivery' AND g.status IN ('sent', 'bounced', 'expired')))) FROM maillog_event x"
    " WHERE x.kind = 'expired' AND x.time_us >= ?1 GROUP BY x.queue_id)";

static bool stats_deliveries(struct ctl *c, const struct rules *r, int64_t since_us, const char *tenant,
                             struct stats *st)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    buf_printf(&path, "%s/%s", c->conf.state_dir, STATS_MAILLOG_FILE);
    bool ok = true;
    struct store *s = NULL, *ms = NULL;
    if (access(path.data, F_OK) != 0) {
        fprintf(stderr, "posternctl: note: no mail log ingested at %s (posternctl ingest MAILLOG reads it): "
                "delivered, bounced and deferred not counted\n", path.data);
        goto out;
    }
    s = store_open(path.data, STORE_READONLY, &err);
    sqlite3_stmt *q = s != NULL ? store_stmt(s, stats_deliveries_sql, &err) : NULL;
    if (q == NULL) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        ok = false;
        goto out;
    }
    ms = ctl_attr_open(c);
    sqlite3_bind_int64(q, 1, since_us);
    enum store_step rc;
    while ((rc = store_step(s, q, "reading the mail log's deliveries", &err)) == STORE_ROW) {
        const char *qid = (const char *)sqlite3_column_text(q, 0);
        int k = sqlite3_column_int(q, 1);
        int64_t n = sqlite3_column_int64(q, 2);
        const char *sender = (const char *)sqlite3_column_text(q, 3);
        if (qid == NULL || k < 0 || k > 2 || n <= 0)
            continue;
        struct ctl_attr a;
        memset(&a, 0, sizeof a);
        buf_reset(&err);
        if (!ctl_attr_lookup(ms, qid, &a, &err))
            fprintf(stderr, "posternctl: warning: %s attributed by its sender only: %s\n", qid, err.data);
        const char *t, *acc;
        ctl_attr_resolve(r, &a, sender, &t, &acc);
        if (tenant == NULL || strcmp(t, tenant) == 0)
            stats_row(st, t, acc)->n[ST_DELIVERED + k] += (uint64_t)n;
        ctl_attr_free(&a);
    }
    store_stmt_done(q);
    if (rc != STORE_DONE) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        ok = false;
    }
out:
    if (s != NULL)
        store_close(s);
    if (ms != NULL)
        store_close(ms);
    buf_free(&path);
    buf_free(&err);
    return ok;
}

static int stats_cmp(const void *a, const void *b)
{
    const struct stats_row *x = *(const struct stats_row *const *)a, *y = *(const struct stats_row *const *)b;
    int d = strcmp(x->tenant, y->tenant);
    return d != 0 ? d : strcmp(x->account, y->account);
}

static void stats_print_text(struct stats_row **v, size_t n)
{
    static const char *const head[ST_NCOLS] = { "SUBMITTED", "REJECTED", "SIGNED",  "HELD",
                                                "DELIVERED", "BOUNCED",  "DEFERRED" };
    struct stats_row total = { .tenant = "TOTAL", .account = "" };
    int wt = 6, wa = 7, w[ST_NCOLS];
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < ST_NCOLS; k++)
            total.n[k] += v[i]->n[k];
        if ((int)strlen(v[i]->tenant) > wt)
            wt = (int)strlen(v[i]->tenant);
        if ((int)strlen(v[i]->account) > wa)
            wa = (int)strlen(v[i]->account);
    }
    for (int k = 0; k < ST_NCOLS; k++) {
        char num[24];
        w[k] = snprintf(num, sizeof num, "%" PRIu64, total.n[k]);
        if (w[k] < (int)strlen(head[k]))
            w[k] = (int)strlen(head[k]);
    }
    printf("%-*s  %-*s", wt, "TENANT", wa, "ACCOUNT");
    for (int k = 0; k < ST_NCOLS; k++)
        printf("  %*s", w[k], head[k]);
    putchar('\n');
    for (size_t i = 0; i <= n; i++) {
        const struct stats_row *row = i < n ? v[i] : &total;
        printf("%-*s  %-*s", wt, row->tenant, wa, row->account);
        for (int k = 0; k < ST_NCOLS; k++)
            printf("  %*" PRIu64, w[k], row->n[k]);
        putchar('\n');
    }
}

static void stats_print_json(struct stats_row **v, size_t n)
{
    fputs("[", stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n  {\"tenant\": " : "\n  {\"tenant\": ", stdout);
        ctl_put_json(stdout, v[i]->tenant);
        fputs(", \"account\": ", stdout);
        ctl_put_json(stdout, v[i]->account);
        for (int k = 0; k < ST_NCOLS; k++)
            printf(", \"%s\": %" PRIu64, stats_names[k], v[i]->n[k]);
        fputs("}", stdout);
    }
    fputs(n ? "\n]\n" : "]\n", stdout);
}

static void stats_free(struct stats *st)
{
    for (size_t i = 0; i < st->n; i++) {
        mem_free(st->v[i]->tenant);
        mem_free(st->v[i]->account);
        mem_free(st->v[i]);
    }
    mem_free(st->v);
    for (size_t i = 0; i < st->nm; i++)
        mem_free(st->mv[i]);
    mem_free(st->mv);
    hmap_free(&st->rows);
    hmap_free(&st->msgs);
    hmap_free(&st->seen);
}

int ctl_stats(struct ctl *c, int argc, char **argv)
{
    const char *tenant;
    int64_t since_us;
    bool json;
    int rc = ctl_report_opts(c, argc, argv, &tenant, &since_us, &json);
    if (rc >= 0)
        return rc;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    if (tenant != NULL && rules_tenant(r, tenant) == NULL) {
        fprintf(stderr, "posternctl: no tenant \"%s\" in the rules %s\n", tenant, ctl_rules_dir(c));
        rules_unref(r);
        return 1;
    }
    struct stats st;
    memset(&st, 0, sizeof st);
    hmap_init(&st.rows);
    hmap_init(&st.msgs);
    hmap_init(&st.seen);
    /* 0 means "no bound" to audit_query: a bound at the epoch itself is 1 µs off */
    struct audit_filter f = { .since_us = since_us != 0 ? since_us : 1, .tenant = tenant };
    bool ok = stats_audit(c, &ctl_policyd_state, &f, stats_policyd_cb, &st, "submitted and rejected");
    ok = ok && stats_audit(c, &ctl_milter_state, &f, stats_milter_cb, &st, "signed and held by the milter");
    ok = ok && stats_deliveries(c, r, since_us, tenant, &st);
    if (ok) {
        for (size_t i = 0; i < st.nm; i++) {
            const struct stats_msg *m = st.mv[i];
            m->row->n[ST_SUBMITTED] += m->eom;
            m->row->n[ST_REJECTED] += m->eom_refused || (!m->eom && m->rcpt_refused);
        }
        /* a message policyd only saw at RCPT TO and let pass is no row of its own */
        size_t n = 0;
        for (size_t i = 0; i < st.n; i++) {
            uint64_t any = 0;
            for (int k = 0; k < ST_NCOLS; k++)
                any |= st.v[i]->n[k];
            if (any != 0)
                st.v[n++] = st.v[i];
            else {
                mem_free(st.v[i]->tenant);
                mem_free(st.v[i]->account);
                mem_free(st.v[i]);
            }
        }
        st.n = n;
        if (n > 1)
            qsort(st.v, n, sizeof *st.v, stats_cmp);
        if (json)
            stats_print_json(st.v, n);
        else
            stats_print_text(st.v, n);
    }
    stats_free(&st);
    rules_unref(r);
    return ok ? 0 : 1;
}
