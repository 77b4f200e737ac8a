/* audit.c: writing audit records to the store and the log, and reading
 * them back for posternctl (see audit.h).  Empty strings are stored as
 * NULL; recipients are stored as one address per line (an SMTP address
 * cannot contain a line break). */
#include "audit.h"

#include <sqlite3.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "ptime.h"

static const char audit_insert_sql[] =
    "INSERT INTO audit (" AUDIT_COLUMNS ") "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/* Queries: one statement per driving index (queue_id, tenant, time) and
 * order, so that SQLite can use the index; the other filters are optional
 * (a NULL parameter matches everything).  No SQL is ever built at run time.
 * Sender and recipient are compared ignoring ASCII case (as SMTP
 * addresses in practice); a recipient matches one whole line of the
 * stored list: "\n" || list || "\n" contains "\n" || recipient || "\n". */
#define AUDIT_SELECT "SELECT id, " AUDIT_COLUMNS " FROM audit WHERE "
#define AUDIT_TIME " time_us >= :since AND time_us < :until"
#define AUDIT_OPT_TENANT " AND (:tenant IS NULL OR tenant = :tenant)"
#define AUDIT_OPT_ACCOUNT " AND (:account IS NULL OR account = :account)"
#define AUDIT_OPT_SENDER " AND (:sender IS NULL OR sender = :sender COLLATE NOCASE)"
#define AUDIT_OPT_RCPT                                                             \
    " AND (:rcpt IS NULL OR instr(char(10) || lower(recipients) || char(10),"      \
    " char(10) || lower(:rcpt) || char(10)) > 0)"
#define AUDIT_OPT_ADDR AUDIT_OPT_SENDER AUDIT_OPT_RCPT
#define AUDIT_ASC " ORDER BY time_us ASC, id ASC LIMIT :limit"
#define AUDIT_DESC " ORDER BY time_us DESC, id DESC LIMIT :limit"
#define AUDIT_BY_QID                                                               \
    AUDIT_SELECT "queue_id = :qid AND" AUDIT_TIME AUDIT_OPT_TENANT AUDIT_OPT_ACCOUNT AUDIT_OPT_ADDR
#define AUDIT_BY_TENANT AUDIT_SELECT "tenant = :tenant AND" AUDIT_TIME AUDIT_OPT_ACCOUNT AUDIT_OPT_ADDR
#define AUDIT_BY_TIME AUDIT_SELECT AUDIT_TIME AUDIT_OPT_ACCOUNT AUDIT_OPT_ADDR

enum audit_index { AUDIT_IDX_QID, AUDIT_IDX_TENANT, AUDIT_IDX_TIME };

static const char *const audit_query_sql[3][2] = {
    [AUDIT_IDX_QID] = { AUDIT_BY_QID AUDIT_ASC, AUDIT_BY_QID AUDIT_DESC },
    [AUDIT_IDX_TENANT] = { AUDIT_BY_TENANT AUDIT_ASC, AUDIT_BY_TENANT AUDIT_DESC },
    [AUDIT_IDX_TIME] = { AUDIT_BY_TIME AUDIT_ASC, AUDIT_BY_TIME AUDIT_DESC },
};

static bool audit_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

void audit_join(const struct audit_rec *rec, char sep, struct buf *out)
{
    for (size_t i = 0; i < rec->nrecipients; i++) {
        if (i > 0)
            buf_putc(out, sep);
        buf_puts(out, rec->recipients[i] != NULL ? rec->recipients[i] : "");
    }
}

static void audit_kv(struct buf *kv, const char *key, const char *value)
{
    if (audit_set(value))
        buf_kv(kv, key, value);
}

void audit_format(const struct audit_rec *rec, struct buf *kv)
{
    struct buf rcpts;
    buf_init(&rcpts);
    audit_join(rec, ',', &rcpts);
    buf_kvf(kv, "time_us", "%lld", (long long)rec->time_us);
    audit_kv(kv, "component", rec->component);
    audit_kv(kv, "tenant", rec->tenant);
    audit_kv(kv, "account", rec->account);
    audit_kv(kv, "client_ip", rec->client_ip);
    audit_kv(kv, "sasl_login", rec->sasl_login);
    audit_kv(kv, "sender", rec->sender);
    audit_kv(kv, "recipients", rcpts.data);
    audit_kv(kv, "queue_id", rec->queue_id);
    audit_kv(kv, "instance", rec->instance);
    audit_kv(kv, "stage", rec->stage);
    audit_kv(kv, "action", rec->action);
    audit_kv(kv, "reason", rec->reason);
    audit_kv(kv, "rule", rec->rule);
    audit_kv(kv, "counters", rec->counters);
    buf_kvf(kv, "latency_us", "%lld", (long long)rec->latency_us);
    buf_free(&rcpts);
}

void audit_log(const struct audit_rec *rec, const char *error)
{
    struct buf kv;
    buf_init(&kv);
    audit_format(rec, &kv);
    if (error != NULL) {
        buf_kv(&kv, "stored", "no");
        buf_kv(&kv, "error", error);
    }
    log_event(error != NULL ? LOG_LVL_ERR : LOG_LVL_INFO, "audit", &kv);
    buf_free(&kv);
}

static void audit_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (audit_set(v))
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void audit_bind(sqlite3_stmt *st, const struct audit_rec *r, const char *rcpts)
{
    const char *text[] = { r->component, r->tenant, r->account, r->client_ip,
                           r->sasl_login, r->sender, rcpts, r->queue_id,
                           r->instance, r->stage, r->action, r->reason,
                           r->rule, r->counters };
    sqlite3_bind_int64(st, 1, r->time_us);
    for (int i = 0; i < (int)(sizeof text / sizeof text[0]); i++)
        audit_bind_text(st, i + 2, text[i]);
    sqlite3_bind_int64(st, 16, r->latency_us);
}

static bool audit_insert(struct store *s, const struct audit_rec *rec, struct buf *err)
{
    if (!audit_set(rec->component) || !audit_set(rec->action)) {
        buf_reset(err);
        buf_printf(err, "%s: audit record without component or action", store_path(s));
        return false;
    }
    if (!store_autocommit(s) && !store_in_batch(s)) {
        buf_reset(err);
        buf_printf(err, "%s: audit record written inside a transaction", store_path(s));
        return false;
    }
    sqlite3_stmt *st = store_stmt(s, audit_insert_sql, err);
    if (st == NULL)
        return false;
    struct buf rcpts;
    buf_init(&rcpts);
    audit_join(rec, '\n', &rcpts);
    audit_bind(st, rec, rcpts.data);
    /* Outside a transaction the INSERT is its own one, committed when
     * sqlite3_step() returns. */
    bool ok = store_step(s, st, "writing an audit record", err) == STORE_DONE;
    sqlite3_clear_bindings(st);
    store_stmt_done(st);
    buf_free(&rcpts);
    return ok;
}

bool audit_write(struct store *s, const struct audit_rec *rec, struct buf *err)
{
    struct audit_rec r = *rec;
    if (r.time_us == 0) {
        struct clock sys = clock_system();
        r.time_us = clock_now_us(&sys);
    }
    bool ok = audit_insert(s, &r, err);
    audit_log(&r, ok ? NULL : err->data);
    return ok;
}

/* --- reading ------------------------------------------------------------- */

static void audit_bind_name_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        audit_bind_text(st, i, v);
}

static void audit_bind_name_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_int64(st, i, v);
}

static sqlite3_stmt *audit_query_stmt(struct store *s, const struct audit_filter *f,
                                      struct buf *err)
{
    enum audit_index idx = audit_set(f->queue_id) ? AUDIT_IDX_QID
                           : audit_set(f->tenant) ? AUDIT_IDX_TENANT
                                                  : AUDIT_IDX_TIME;
    sqlite3_stmt *st = store_stmt(s, audit_query_sql[idx][f->newest_first ? 1 : 0], err);
    if (st == NULL)
        return NULL;
    audit_bind_name_int(st, ":since", f->since_us != 0 ? f->since_us : INT64_MIN);
    audit_bind_name_int(st, ":until", f->until_us != 0 ? f->until_us : INT64_MAX);
    audit_bind_name_text(st, ":tenant", f->tenant);
    audit_bind_name_text(st, ":account", f->account);
    audit_bind_name_text(st, ":qid", f->queue_id);
    audit_bind_name_text(st, ":sender", f->sender);
    audit_bind_name_text(st, ":rcpt", f->recipient);
    audit_bind_name_int(st, ":limit",
                        f->limit == 0 || f->limit > INT64_MAX ? -1 : (int64_t)f->limit);
    return st;
}

static const char *audit_col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Split the stored recipients (one per line) in place into rec. */
static void audit_split(char *text, struct audit_rec *rec, const char ***list)
{
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    *list = mem_array(n, sizeof **list);
    rec->nrecipients = 0;
    for (char *p = text;; p++) {
        (*list)[rec->nrecipients++] = p;
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        *p = '\0';
    }
    rec->recipients = *list;
}

/* Build a record from the current row and hand it to cb. */
static bool audit_deliver(sqlite3_stmt *st, audit_cb cb, void *arg)
{
    struct audit_rec r = { 0 };
    const char **list = NULL;
    char *rcpts = NULL;
    r.id = sqlite3_column_int64(st, 0);
    r.time_us = sqlite3_column_int64(st, 1);
    const char **text[] = { &r.component, &r.tenant, &r.account, &r.client_ip,
                            &r.sasl_login, &r.sender, NULL, &r.queue_id,
                            &r.instance, &r.stage, &r.action, &r.reason,
                            &r.rule, &r.counters };
    for (int i = 0; i < (int)(sizeof text / sizeof text[0]); i++)
        if (text[i] != NULL)
            *text[i] = audit_col(st, i + 2);
    if (audit_col(st, 8) != NULL) {
        rcpts = mem_strdup(audit_col(st, 8));
        audit_split(rcpts, &r, &list);
    }
    r.latency_us = sqlite3_column_int64(st, 16);
    bool more = cb(&r, arg);
    mem_free(list);
    mem_free(rcpts);
    return more;
}

bool audit_query(struct store *s, const struct audit_filter *f, audit_cb cb, void *arg,
                 struct buf *err)
{
    static const struct audit_filter all = { 0 };
    if (f != NULL && f->recipient != NULL && strchr(f->recipient, '\n') != NULL)
        return true;   /* no stored recipient holds a line break */
    sqlite3_stmt *st = audit_query_stmt(s, f != NULL ? f : &all, err);
    if (st == NULL)
        return false;
    enum store_step r;
    while ((r = store_step(s, st, "reading the audit trail", err)) == STORE_ROW)
        if (!audit_deliver(st, cb, arg))
            break;
    sqlite3_clear_bindings(st);
    store_stmt_done(st);
    return r != STORE_FAIL;
}
