/* audit.h: the audit trail: one record per decision (policy action, DKIM
 * signature, auth results, scan verdict, pacing), written to the store's
 * audit table, committed before the reply that depends on it, and echoed
 * as one key=value log line (event=audit); plus the reading side used by
 * posternctl. */
#ifndef POSTERN_AUDIT_H
#define POSTERN_AUDIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* Every string may be NULL (or "") for "not known / not applicable",
 * except component and action which are required. */
struct audit_rec {
    int64_t id;                 /* row id: filled by audit_query, ignored by audit_write */
    int64_t time_us;            /* µs since the epoch; 0 = now (system clock) */
    const char *component;      /* "policyd", "milter", "ctl" */
    const char *tenant;
    const char *account;
    const char *client_ip;
    const char *sasl_login;
    const char *sender;
    const char *const *recipients; /* nrecipients addresses; stored one per line */
    size_t nrecipients;
    const char *queue_id;
    const char *instance;       /* Postfix instance / session id */
    const char *stage;          /* "connect", "rcpt", "data", "eom", ... */
    const char *action;         /* "DUNNO", "DEFER", "REJECT", "FILTER", "sign", "hold", ... */
    const char *reason;         /* reply text */
    const char *rule;           /* the rule that decided, e.g. "limits.messages" */
    const char *counters;       /* "key=value ..." of the counters that caused it */
    int64_t latency_us;
};

/* Insert rec in its own transaction, committed (durably, see store.c)
 * before returning, and write its log line: level info, event=audit, the
 * fields below in this order, each non-empty string field once, the
 * recipients joined with ','.  The line is written even when the insert
 * fails, then at level error with "stored=no error=..." appended, so the
 * log copy of the trail has no gap; the caller turns the failure into its
 * on_error answer (and audits that one too).  Must not be called inside a
 * transaction of the same handle.  False with err set on failure. */
bool audit_write(struct store *s, const struct audit_rec *rec, struct buf *err);

/* --- for journal.c, which keeps records in the same columns ---------- */
#define AUDIT_COLUMNS                                                              \
    "time_us, component, tenant, account, client_ip, sasl_login, sender, "        \
    "recipients, queue_id, instance, stage, action, reason, rule, counters, latency_us"
struct sqlite3_stmt;
/* Bind rec to parameters 1..16 of st, in AUDIT_COLUMNS order; rcpts is
 * the recipients joined with '\n' (audit_join()); empty strings as NULL. */
void audit_bind(struct sqlite3_stmt *st, const struct audit_rec *rec, const char *rcpts);
/* Append the recipients to out, separated by sep. */
void audit_join(const struct audit_rec *rec, char sep, struct buf *out);
/* Write rec's log line (event=audit); with error != NULL at level error,
 * "stored=no error=..." appended. */
void audit_log(const struct audit_rec *rec, const char *error);

/* Append rec's key=value pairs (as logged) to kv: time_us component tenant
 * account client_ip sasl_login sender recipients queue_id instance stage
 * action reason rule counters latency_us. */
void audit_format(const struct audit_rec *rec, struct buf *kv);

struct audit_filter {
    int64_t since_us;           /* time_us >= since_us; 0: no lower bound */
    int64_t until_us;           /* time_us <  until_us; 0: no upper bound */
    const char *tenant;         /* NULL: any */
    const char *account;        /* NULL: any */
    const char *queue_id;       /* NULL: any */
    size_t limit;               /* at most this many records; 0: all */
    bool newest_first;          /* order by time descending (else ascending) */
    /* appended fields: */
    const char *sender;         /* NULL: any; else the sender, ignoring ASCII case */
    const char *recipient;      /* NULL: any; else one of the recipients, ignoring
                                 * ASCII case (never matches a value with a '\n') */
};

/* Called once per matching record; the record and its strings live until
 * the callback returns.  Return false to stop.  The callback must not use
 * the same store handle. */
typedef bool (*audit_cb)(const struct audit_rec *rec, void *arg);

/* Deliver the records matching f (NULL: all) to cb.  False with err set
 * on a store failure. */
bool audit_query(struct store *s, const struct audit_filter *f, audit_cb cb, void *arg,
                 struct buf *err);

#endif
