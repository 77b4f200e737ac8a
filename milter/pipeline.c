/* pipeline.c: postern-milter's message pipeline (pipeline.h): who submits
 * the message (rules_identify(), as postern-policyd); for a tenant
 * submission, which From: domain it is sent as, DKIM signing with the
 * tenant's keys of that domain (dkim_sign.h) and the outbound self-check
 * (selfcheck.h); for other mail, the inbound checks (inbound.h); for
 * both, the scanners (scan.h) and forged Authentication-Results headers of
 * ours removed; the audit records, and the on_error answer when anything
 * inside fails. */
#include "pipeline.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "audit.h"
#include "dkim_sign.h"
#include "inbound.h"
#include "log.h"
#include "mailhdr.h"
#include "ptime.h"
#include "rules.h"
#include "rules_index.h"
#include "pacer.h"
#include "scanner.h"
#include "selfcheck.h"
#include "spool.h"

/* Headers kept for signing: past this the message is not signed (Postfix
 * itself stops at header_size_limit, 100 KB by default). */
#define PL_MAX_HEADER_BYTES (4u << 20)
#define PL_MAX_HEADERS 10000

void pl_conn_init(struct pl_conn *c, struct pl_daemon *d, uint64_t id)
{
    memset(c, 0, sizeof *c);
    c->daemon = d;
    c->id = id;
}

static void pl_copy(char *out, size_t size, const char *s)
{
    snprintf(out, size, "%s", s != NULL ? s : "");
}

enum pl_status pl_connect(struct pl_conn *c, const char *hostname, const char *ip)
{
    pl_copy(c->client_name, sizeof c->client_name, hostname);
    pl_copy(c->client_ip, sizeof c->client_ip, ip);
    return PL_CONTINUE;
}

enum pl_status pl_helo(struct pl_conn *c, const char *helo)
{
    pl_copy(c->helo, sizeof c->helo, helo);
    return PL_CONTINUE;
}

/* An address without its angle brackets (and without spaces around). */
static char *pl_strip_address(const char *s)
{
    if (s == NULL)
        return mem_strdup("");
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
        s++;
        n -= 2;
    }
    return mem_strndup(s, n);
}

static void pl_msg_free(struct pl_msg *m)
{
    if (m == NULL)
        return;
    dkim_sign_free(m->signing);
    inbound_free(m->in);
    spool_free(m->spool);
    dkim_keys_unref(m->keys);
    rules_unref(m->rules);
    mem_free(m->sender);
    mem_free(m->sasl_login);
    mem_free(m->queue_id);
    for (size_t i = 0; i < m->n_rcpts; i++)
        mem_free(m->rcpts[i]);
    mem_free(m->rcpts);
    for (size_t i = 0; i < m->n_headers; i++) {
        mem_free(m->headers[i].name);
        mem_free(m->headers[i].value);
    }
    mem_free(m->headers);
    mem_free(m->from_domain);
    mem_free(m);
}

static const char *pl_macro(pl_macro_fn macro, void *marg, const char *name)
{
    const char *v = macro != NULL ? macro(marg, name) : NULL;
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The queue id, once the MTA knows it ({i}). */
static void pl_queue_id(struct pl_msg *m, pl_macro_fn macro, void *marg)
{
    const char *qid = pl_macro(macro, marg, "i");
    if (qid != NULL && (m->queue_id == NULL || strcmp(m->queue_id, qid) != 0)) {
        mem_free(m->queue_id);
        m->queue_id = mem_strdup(qid);
    }
}

/* An internal error: remembered, answered with on_error at eom at the
 * latest (with its audit record), logged now. */
static void pl_fail(struct pl_conn *c, const char *what, const char *why)
{
    struct pl_msg *m = c->msg;
    if (m == NULL || m->failed)
        return;
    m->failed = true;
    snprintf(m->error, sizeof m->error, "%s: %s", what, why);
    log_msg(LOG_LVL_ERR, "milter_error", "conn=%llu queue_id=%s error=\"%s\"", (unsigned long long)c->id,
            m->queue_id != NULL ? m->queue_id : "-", m->error);
}

enum pl_status pl_envfrom(struct pl_conn *c, const char *sender, pl_macro_fn macro, void *marg)
{
    pl_abort(c);
    struct pl_daemon *d = c->daemon;
    struct pl_msg *m = mem_alloc(sizeof *m);
    memset(m, 0, sizeof *m);
    c->msg = m;
    c->messages++;
    m->t0_us = clock_mono_us();
    m->rules = d->rules_get(d->arg);
    m->keys = d->keys_get != NULL ? d->keys_get(d->arg) : NULL;
    m->sender = pl_strip_address(sender);
    const char *login = pl_macro(macro, marg, "{auth_authen}");
    m->sasl_login = login != NULL ? mem_strdup(login) : NULL;
    pl_queue_id(m, macro, marg);
    if (m->rules == NULL) {
        pl_fail(c, "rules", "no rules loaded");
        return PL_CONTINUE;
    }
    struct rules_ident id;
    rules_identify(m->rules, m->sasl_login, c->client_ip, m->sender, &id);
    if (id.t != NULL) {
        m->tenant = id.t->name;
        m->t = id.t;
        m->account = id.a != NULL ? id.a->name : NULL;
        m->a = id.a;
        pl_copy(m->who, sizeof m->who, id.who);
    } else if (d->inbound != NULL) {
        m->in = inbound_begin(d->inbound, c->client_ip, c->helo, m->sender, m->queue_id);
    }
    return PL_CONTINUE;
}

enum pl_status pl_rcpt(struct pl_conn *c, const char *rcpt)
{
    struct pl_msg *m = c->msg;
    if (m == NULL)
        return PL_CONTINUE;
    m->rcpts = mem_grow(m->rcpts, m->n_rcpts + 1, sizeof *m->rcpts);
    m->rcpts[m->n_rcpts++] = pl_strip_address(rcpt);
    if (m->in != NULL)
        inbound_rcpt(m->in, m->rules, m->rcpts[m->n_rcpts - 1]);
    return PL_CONTINUE;
}

/* A tenant submission's forged Authentication-Results headers (claiming
 * our authserv-id: authres_forged_note): deleted, last first (an earlier
 * occurrence keeps its number). */
static void pl_authres_delete(struct pl_conn *c, const struct pl_actions *act)
{
    struct pl_msg *m = c->msg;
    if (m->forged.overflow)
        pl_fail(c, "authres", "more than 32 Authentication-Results headers claim our authserv-id");
    for (size_t i = m->forged.n; i > 0 && !m->failed; i--)
        if (!act->chgheader(act->arg, "Authentication-Results", m->forged.idx[i - 1], NULL))
            pl_fail(c, "authres", "the MTA refused to remove a forged Authentication-Results header");
}

/* --- scanning ---------------------------------------------------------------- */

/* The event=scan_error line of one failure (elapsed_us < 0: not timed). */
static void pl_scan_log(const struct pl_conn *c, enum log_level lvl, const char *scanner, const char *error,
                        int64_t elapsed_us)
{
    const struct pl_msg *m = c->msg;
    struct buf kv;
    buf_init(&kv);
    buf_kvf(&kv, "conn", "%llu", (unsigned long long)c->id);
    buf_kv(&kv, "queue_id", m->queue_id != NULL ? m->queue_id : "-");
    buf_kv(&kv, "scanner", scanner);
    buf_kv(&kv, "error", error);
    if (elapsed_us >= 0)
        buf_kvf(&kv, "elapsed_ms", "%lld", (long long)(elapsed_us / 1000));
    log_event(lvl, "scan_error", &kv);
    buf_free(&kv);
}

/* The spool failed: the scanners cannot run, their on_failure decides. */
static void pl_spool_failed(struct pl_conn *c, const char *why)
{
    struct pl_msg *m = c->msg;
    snprintf(m->spool_error, sizeof m->spool_error, "%s", why);
    pl_scan_log(c, LOG_LVL_ERR, "spool", why, -1);
    spool_free(m->spool);
    m->spool = NULL;
}

/* Once per message, at its first header (the recipients are known): whose
 * scan rules apply, and a spool when a scanner is to run. */
static void pl_scan_begin(struct pl_conn *c)
{
    struct pl_msg *m = c->msg;
    struct pl_daemon *d = c->daemon;
    if (m->scan_planned)
        return;
    m->scan_planned = true;
    if (d->scan == NULL || (!d->scan->have_clamd && !d->scan->have_spamd) || m->rules == NULL)
        return;
    if (m->t != NULL) {
        scan_plan_add(&m->scan, d->scan, m->t);
    } else {
        for (size_t i = 0; i < m->n_rcpts; i++) {
            const char *at = strrchr(m->rcpts[i], '@');
            const struct tenant *t = at != NULL ? rules_find_domain(m->rules, at + 1) : NULL;
            if (t != NULL)
                scan_plan_add(&m->scan, d->scan, t);
        }
    }
    if (!scan_plan_any(&m->scan))
        return;
    m->spool = spool_new(d->scan_memory, m->scan.max_size, d->spool_dir);
    if (c->client_ip[0] == '\0')
        return;
    /* the Received: header Postfix adds but does not show milters, for
     * SpamAssassin's relay and trust-path rules */
    char date[64], value[800];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    snprintf(value, sizeof value, "from %s (%s [%s])\n\tby %s (postern-milter) with %s; %s",
             c->helo[0] ? c->helo : "unknown", c->client_name[0] ? c->client_name : "unknown", c->client_ip,
             d->scan->host != NULL ? d->scan->host : "localhost", m->sasl_login != NULL ? "ESMTPA" : "ESMTP", date);
    struct buf err;
    buf_init(&err);
    if (!spool_header(m->spool, "Received", value, &err))
        pl_spool_failed(c, err.data);
    buf_free(&err);
}

static void pl_scan_write(struct pl_conn *c, const void *data, size_t len)
{
    struct pl_msg *m = c->msg;
    struct buf err;
    buf_init(&err);
    if (m->spool != NULL && !spool_write(m->spool, data, len, &err))
        pl_spool_failed(c, err.data);
    buf_free(&err);
}

static void pl_scan_header(struct pl_conn *c, const char *name, const char *value)
{
    struct pl_msg *m = c->msg;
    pl_scan_begin(c);
    if (!scan_plan_any(&m->scan))
        return;
    int k = scan_header_index(name);
    if (k >= 0)
        m->scan_forged[k]++;
    struct buf err;
    buf_init(&err);
    if (m->spool != NULL && !spool_header(m->spool, name, value, &err))
        pl_spool_failed(c, err.data);
    buf_free(&err);
}

enum pl_status pl_header(struct pl_conn *c, const char *name, const char *value)
{
    struct pl_msg *m = c->msg;
    if (m != NULL && !m->failed)
        pl_scan_header(c, name, value);
    if (m != NULL && m->in != NULL && !m->failed) {
        struct buf err;
        buf_init(&err);
        if (!inbound_header(m->in, name, value, &err))
            pl_fail(c, "inbound", err.data);
        buf_free(&err);
        return PL_CONTINUE;
    }
    if (m != NULL && m->tenant != NULL && c->daemon->inbound != NULL && strcasecmp(name, "Authentication-Results") == 0)
        authres_forged_note(&m->forged, value, c->daemon->inbound->authserv_id);
    if (m == NULL || m->tenant == NULL || m->nosign != NULL)
        return PL_CONTINUE; /* only a tenant's message is signed: nothing to keep */
    size_t n = strlen(name) + strlen(value);
    if (m->n_headers >= PL_MAX_HEADERS || m->header_bytes + n > PL_MAX_HEADER_BYTES) {
        m->nosign = "headers too large to sign";
        return PL_CONTINUE;
    }
    if (m->n_headers == m->cap_headers) {
        m->cap_headers = m->cap_headers ? m->cap_headers * 2 : 32;
        m->headers = mem_grow(m->headers, m->cap_headers, sizeof *m->headers);
    }
    m->headers[m->n_headers].name = mem_strdup(name);
    m->headers[m->n_headers].value = mem_strdup(value);
    m->n_headers++;
    m->header_bytes += n;
    return PL_CONTINUE;
}

/* --- From: ----------------------------------------------------------------- */

/* Decide whether and with which domain a tenant's message is signed, and
 * start the signers, fed with the headers kept so far. */
static void pl_sign_begin(struct pl_conn *c)
{
    struct pl_msg *m = c->msg;
    size_t froms = 0;
    struct mailhdr_from from;
    memset(&from, 0, sizeof from);
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcasecmp(m->headers[i].name, "From") != 0)
            continue;
        froms++;
        mailhdr_from_parse(m->headers[i].value, strlen(m->headers[i].value), &from);
    }
    if (froms != 1 || from.status != MAILHDR_FROM_OK) {
        m->nosign = froms == 0                                  ? "no From: header"
                    : froms > 1                                 ? "several From: headers"
                    : from.status == MAILHDR_FROM_MULTIPLE      ? "several From: addresses"
                    : from.status == MAILHDR_FROM_NONE          ? "no address in From:"
                    : from.status == MAILHDR_FROM_NO_DOMAIN     ? "no domain in From:"
                    : from.status == MAILHDR_FROM_BAD_DOMAIN    ? "invalid domain in From:"
                                                                : "unparsable From:";
        return;
    }
    mem_free(m->from_domain);
    m->from_domain = mem_strdup(from.domain);
    const struct tenant *owner = rules_find_domain(m->rules, m->from_domain);
    if (owner != NULL && strcmp(owner->name, m->tenant) != 0) {
        m->nosign = "From: domain is not the tenant's";
        return;
    }
    struct buf err;
    buf_init(&err);
    const char *job = m->queue_id != NULL ? m->queue_id : "-";
    /* the From: domain's own keys; else those of the nearest parent
     * domain of the tenant whose keys sign for subdomains */
    if (owner != NULL && m->keys != NULL) {
        m->signing = dkim_sign_begin(m->keys, m->tenant, m->from_domain, job, false, &err);
        m->sign_domain = m->from_domain;
    }
    for (const char *p = strchr(m->from_domain, '.'); m->keys != NULL && m->signing == NULL && err.len == 0 &&
                                                      p != NULL && strchr(p + 1, '.') != NULL;
         p = strchr(p + 1, '.')) {
        const struct tenant *po = rules_find_domain(m->rules, p + 1);
        if (po == NULL)
            continue;
        if (strcmp(po->name, m->tenant) != 0)
            break; /* a parent of another tenant: nothing above is ours to use */
        m->signing = dkim_sign_begin(m->keys, m->tenant, p + 1, job, true, &err);
        m->sign_domain = p + 1;
    }
    if (m->signing == NULL) {
        if (err.len > 0)
            pl_fail(c, "dkim", err.data);
        else
            m->nosign = owner == NULL ? "From: domain is not the tenant's" : "no active DKIM key for the From: domain";
        buf_free(&err);
        return;
    }
    for (size_t i = 0; i < m->n_headers; i++)
        if (!dkim_sign_header(m->signing, m->headers[i].name, m->headers[i].value, &err)) {
            pl_fail(c, "dkim", err.data);
            break;
        }
    if (!m->failed && !dkim_sign_eoh(m->signing, &err))
        pl_fail(c, "dkim", err.data);
    buf_free(&err);
}

enum pl_status pl_eoh(struct pl_conn *c, pl_macro_fn macro, void *marg)
{
    struct pl_msg *m = c->msg;
    if (m == NULL)
        return PL_CONTINUE;
    pl_queue_id(m, macro, marg);
    pl_scan_begin(c);
    pl_scan_write(c, "\r\n", 2);
    if (m->tenant != NULL && m->nosign == NULL && !m->failed)
        pl_sign_begin(c);
    if (m->in != NULL && !m->failed) {
        struct buf err;
        buf_init(&err);
        if (!inbound_eoh(m->in, &err))
            pl_fail(c, "inbound", err.data);
        buf_free(&err);
    }
    return PL_CONTINUE;
}

enum pl_status pl_body(struct pl_conn *c, const unsigned char *data, size_t len)
{
    struct pl_msg *m = c->msg;
    if (m == NULL)
        return PL_CONTINUE;
    m->body_bytes += len;
    pl_scan_write(c, data, len);
    if (m->signing != NULL && !m->failed) {
        struct buf err;
        buf_init(&err);
        if (!dkim_sign_body(m->signing, data, len, &err))
            pl_fail(c, "dkim", err.data);
        buf_free(&err);
    }
    if (m->in != NULL && !m->failed) {
        struct buf err;
        buf_init(&err);
        if (!inbound_body(m->in, data, len, &err))
            pl_fail(c, "inbound", err.data);
        buf_free(&err);
    }
    return PL_CONTINUE;
}

/* --- end of message --------------------------------------------------------- */

struct pl_sig {
    char *selector, *algorithm, *value;
};

struct pl_sigs {
    struct pl_sig *v;
    size_t n;
};

static void pl_sig_collect(void *arg, const char *selector, const char *algorithm, const char *value)
{
    struct pl_sigs *s = arg;
    s->v = mem_grow(s->v, s->n + 1, sizeof *s->v);
    s->v[s->n].selector = mem_strdup(selector);
    s->v[s->n].algorithm = mem_strdup(algorithm);
    s->v[s->n].value = mem_strdup(value);
    s->n++;
}

static void pl_sigs_free(struct pl_sigs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        mem_free(s->v[i].selector);
        mem_free(s->v[i].algorithm);
        mem_free(s->v[i].value);
    }
    mem_free(s->v);
}

/* The audit record of the message, with action/reason/rule filled by the
 * caller. */
static void pl_audit_rec(const struct pl_conn *c, struct audit_rec *rec)
{
    const struct pl_msg *m = c->msg;
    memset(rec, 0, sizeof *rec);
    rec->component = "milter";
    rec->tenant = m->tenant;
    rec->account = m->who[0] ? m->who : m->account;
    rec->client_ip = c->client_ip;
    rec->sasl_login = m->sasl_login;
    rec->sender = m->sender[0] ? m->sender : "<>";
    rec->recipients = (const char *const *)m->rcpts;
    rec->nrecipients = m->n_rcpts;
    rec->queue_id = m->queue_id;
    rec->stage = "eom";
    rec->latency_us = clock_mono_us() - m->t0_us;
}

/* The on_error answer of a message whose processing failed. */
static enum pl_status pl_eom_failed(struct pl_conn *c, const struct pl_actions *act)
{
    struct pl_daemon *d = c->daemon;
    struct audit_rec rec;
    struct buf err;
    buf_init(&err);
    pl_audit_rec(c, &rec);
    bool tempfail = d->on_error != PL_ACCEPT;
    rec.action = tempfail ? "tempfail" : "accept";
    rec.reason = c->msg->error;
    rec.rule = "on_error";
    d->audit(d->arg, &rec, &err); /* its log line is written even when it fails */
    buf_free(&err);
    if (tempfail)
        act->setreply(act->arg, "451", "4.3.0", "postern: temporary failure, try again later");
    return tempfail ? PL_TEMPFAIL : PL_ACCEPT;
}

/* Sign: journal one record per signature, then insert the headers. */
static enum pl_status pl_eom_sign(struct pl_conn *c, const struct pl_actions *act)
{
    struct pl_msg *m = c->msg;
    struct pl_daemon *d = c->daemon;
    struct pl_sigs sigs = { NULL, 0 };
    struct buf err, reason;
    buf_init(&err);
    buf_init(&reason);
    if (!dkim_sign_end(m->signing, pl_sig_collect, &sigs, &err))
        pl_fail(c, "dkim", err.data);
    for (size_t i = 0; !m->failed && i < sigs.n; i++) {
        struct audit_rec rec;
        pl_audit_rec(c, &rec);
        buf_reset(&reason);
        buf_printf(&reason, "d=%s s=%s a=%s", m->sign_domain, sigs.v[i].selector, sigs.v[i].algorithm);
        rec.action = "sign";
        rec.reason = reason.data;
        rec.rule = "dkim";
        if (!d->audit(d->arg, &rec, &err))
            pl_fail(c, "audit", err.data);
    }
    for (size_t i = 0; !m->failed && i < sigs.n; i++)
        if (!act->insheader(act->arg, 0, "DKIM-Signature", sigs.v[i].value))
            pl_fail(c, "milter", "the MTA refused to add the DKIM-Signature header");
    pl_sigs_free(&sigs);
    buf_free(&err);
    buf_free(&reason);
    return m->failed ? pl_eom_failed(c, act) : PL_CONTINUE;
}

/* Inbound mail: remove the forged Authentication-Results headers, then
 * the outcome of inbound_end(): a reply, or our header (and the hold
 * queue); one audit record with the results. */
static enum pl_status pl_eom_inbound(struct pl_conn *c, const struct pl_actions *act)
{
    struct pl_msg *m = c->msg;
    struct pl_daemon *d = c->daemon;
    struct inbound_outcome out;
    struct buf err, reason;
    buf_init(&err);
    buf_init(&reason);
    inbound_end(m->in, &out);
    for (size_t i = 0; i < out.n_remove && !m->failed; i++)
        if (!act->chgheader(act->arg, "Authentication-Results", out.remove[i], NULL))
            pl_fail(c, "inbound", "the MTA refused to remove a forged Authentication-Results header");
    enum pl_status st = PL_CONTINUE;
    const char *action = "accept";
    if (!m->failed) {
        switch (out.action) {
        case INBOUND_REJECT:
        case INBOUND_TEMPFAIL:
            act->setreply(act->arg, out.rcode, out.xcode, out.text);
            st = out.action == INBOUND_REJECT ? PL_REJECT : PL_TEMPFAIL;
            action = out.action == INBOUND_REJECT ? "reject" : "tempfail";
            break;
        case INBOUND_QUARANTINE:
        case INBOUND_ACCEPT:
            if (out.authres != NULL && !act->insheader(act->arg, 0, "Authentication-Results", out.authres))
                pl_fail(c, "inbound", "the MTA refused the Authentication-Results header");
            else if (out.action == INBOUND_QUARANTINE && !act->quarantine(act->arg, out.text))
                pl_fail(c, "inbound", "the MTA refused to hold the message");
            if (out.action == INBOUND_QUARANTINE)
                action = "quarantine";
            break;
        }
    }
    if (!m->failed) {
        struct audit_rec rec;
        pl_audit_rec(c, &rec);
        if (out.text[0] != '\0')
            buf_printf(&reason, "%s; ", out.text);
        buf_puts(&reason, out.summary);
        rec.tenant = out.tenant;
        rec.action = action;
        rec.reason = reason.data;
        rec.rule = out.rule;
        if (!d->audit(d->arg, &rec, &err))
            pl_fail(c, "audit", err.data);
    }
    if (m->failed)
        st = pl_eom_failed(c, act);
    inbound_outcome_free(&out);
    buf_free(&err);
    buf_free(&reason);
    return st;
}

/* The scanners' verdicts: both scanners at once on the spooled message,
 * scan_decide(), the log line of a failure, one audit record, then the
 * incoming headers of our names removed and the reply, or our headers
 * (and the hold queue). */
static enum pl_status pl_eom_scan(struct pl_conn *c, const struct pl_actions *act)
{
    struct pl_msg *m = c->msg;
    struct pl_daemon *d = c->daemon;
    struct scan_result av, spam;
    struct scan_outcome out;
    memset(&av, 0, sizeof av);
    memset(&spam, 0, sizeof spam);
    uint64_t size = m->spool != NULL ? spool_size(m->spool) : 0;
    bool too_large = m->spool != NULL && spool_over(m->spool);
    if (m->spool == NULL) { /* it failed */
        av.status = spam.status = SCAN_FAILED;
        av.failure = spam.failure = SCAN_FAIL_SPOOL;
        snprintf(av.error, sizeof av.error, "%s", m->spool_error);
        snprintf(spam.error, sizeof spam.error, "%s", m->spool_error);
    } else if (!too_large) {
        scanner_run(m->scan.av ? d->clamd : NULL, m->scan.spam ? d->spamd : NULL, m->scan.user, m->spool, &av,
                    &spam);
    }
    scan_decide(&m->scan, d->scan, size, too_large, &av, &spam, &out);
    const struct scan_result *res[2] = { &av, &spam };
    for (int i = 0; i < 2; i++)
        if (res[i]->status == SCAN_FAILED && (i == 0 ? m->scan.av : m->scan.spam) && m->spool != NULL)
            pl_scan_log(c, LOG_LVL_WARN, i == 0 ? "clamd" : "spamd", res[i]->error, res[i]->elapsed_us);

    static const char *const actions[] = { "accept", "reject", "tempfail", "quarantine" };
    struct audit_rec rec;
    struct buf err, reason;
    buf_init(&err);
    buf_init(&reason);
    pl_audit_rec(c, &rec);
    if (out.text[0] != '\0')
        buf_printf(&reason, "%s; ", out.text);
    buf_puts(&reason, out.summary);
    if (rec.tenant == NULL)
        rec.tenant = out.tenant;
    rec.action = actions[out.action];
    rec.reason = reason.data;
    rec.rule = out.rule;
    if (!d->audit(d->arg, &rec, &err))
        pl_fail(c, "audit", err.data);
    buf_free(&err);
    buf_free(&reason);
    if (m->failed)
        return pl_eom_failed(c, act);

    for (int k = 0; k < SCAN_OUR_HEADERS && !m->failed; k++)
        for (unsigned i = m->scan_forged[k]; i > 0 && !m->failed; i--)
            if (!act->chgheader(act->arg, scan_our_headers[k], (int)i, NULL))
                pl_fail(c, "scan", "the MTA refused to remove an incoming scanner header");
    switch (out.action) {
    case SCAN_REJECT:
    case SCAN_TEMPFAIL:
        if (m->failed)
            break;
        act->setreply(act->arg, out.rcode, out.xcode, out.text);
        return out.action == SCAN_REJECT ? PL_REJECT : PL_TEMPFAIL;
    case SCAN_ACCEPT:
    case SCAN_QUARANTINE:
        for (size_t i = 0; i < out.n_headers && !m->failed; i++)
            if (!act->insheader(act->arg, (int)i, out.headers[i].name, out.headers[i].value))
                pl_fail(c, "scan", "the MTA refused a scanner header");
        if (!m->failed && out.action == SCAN_QUARANTINE && !act->quarantine(act->arg, out.text))
            pl_fail(c, "scan", "the MTA refused to hold the message");
        m->quarantined = out.action == SCAN_QUARANTINE;
        break;
    }
    return m->failed ? pl_eom_failed(c, act) : PL_CONTINUE;
}

/* --- pacing ----------------------------------------------------------------- */

/* "60/minute, burst 10" */
static void pl_pace_rule(const struct pace *pc, char *out, size_t size)
{
    snprintf(out, size, "%llu/%s, burst %llu", (unsigned long long)pc->rate.count,
             pc->rate.unit != NULL ? pc->rate.unit : "period", (unsigned long long)pc->burst);
}

/* Postfix's default milter_content_timeout (300 s) less the margin. */
#define PL_MAX_DELAY_CAP_MS 290000u

/* max_delay of a delay rule, kept under Postfix's milter_content_timeout
 * (less a margin): a longer wait would make Postfix give up on the milter
 * first; the rule's value beyond it falls back to defer (and is reported
 * at start, main.c). */
static uint64_t pl_max_delay_ms(const struct pl_daemon *d, const struct pace *rule)
{
    uint64_t cap = d->max_delay_cap_ms > 0 ? d->max_delay_cap_ms : PL_MAX_DELAY_CAP_MS;
    if (rule->max_delay_ms > cap)
        return cap;
    return rule->max_delay_ms;
}

/* A tenant's message through its account's bucket and its tenant's
 * (pacer.h): delay (the answer waits here), defer (451 4.7.1 with the time
 * to retry), hold (into Postfix's hold queue, recorded in the schedule the
 * release scheduler works through) or go; one audit record when it waits,
 * is deferred or is held. */
static enum pl_status pl_eom_pace(struct pl_conn *c, const struct pl_actions *act)
{
    struct pl_msg *m = c->msg;
    struct pl_daemon *d = c->daemon;
    const struct pace *ap = m->a != NULL && m->a->pace.set ? &m->a->pace : NULL;
    const struct pace *tp = m->t->pace.set ? &m->t->pace : NULL;
    const struct pace *rule = ap != NULL ? ap : tp;
    if (d->pacer == NULL || rule == NULL || m->quarantined)
        return PL_CONTINUE; /* held by a scanner's verdict: not sent now, not paced */
    char akey[600], tkey[300];
    snprintf(akey, sizeof akey, "%s/%s", m->tenant, m->who[0] ? m->who : (m->account != NULL ? m->account : "*"));
    snprintf(tkey, sizeof tkey, "%s", m->tenant);
    struct pacer_bucket b[2] = { { akey, ap }, { tkey, tp } };
    struct pacer_decision dec;
    struct buf err;
    buf_init(&err);
    struct clock wall = clock_system(); /* the buckets outlive the process: wall-clock time */
    int64_t now_ns = clock_now_us(&wall) * 1000;
    struct pacer_hold hold = { m->queue_id, m->tenant, m->account != NULL ? m->account : "*", rule };
    if (!pacer_decide(d->pacer, b, 2, rule->mode, pl_max_delay_ms(d, rule), now_ns,
                      rule->mode == PACE_HOLD ? &hold : NULL, &dec, &err)) {
        pl_fail(c, "pace", err.data);
        buf_free(&err);
        return pl_eom_failed(c, act);
    }
    if (dec.verdict == PACER_GO) {
        buf_free(&err);
        return PL_CONTINUE;
    }
    const struct pace *by = dec.by != NULL && strcmp(dec.by, tkey) == 0 ? tp : rule;
    char rate[96], text[900];
    pl_pace_rule(by != NULL ? by : rule, rate, sizeof rate);
    long long secs = (long long)((dec.wait_ns + 999999999) / 1000000000);
    struct audit_rec rec;
    pl_audit_rec(c, &rec);
    rec.rule = by == tp && tp != ap ? "pace (tenant)" : "pace";
    if (dec.verdict == PACER_DELAY) {
        snprintf(text, sizeof text, "delayed %lld ms (%s %s at %s)", (long long)(dec.wait_ns / 1000000),
                 by == tp && tp != ap ? "tenant" : "account", dec.by != NULL ? dec.by : "-", rate);
        rec.action = "delay";
    } else if (dec.verdict == PACER_HOLD) {
        pl_pace_rule(rule, rate, sizeof rate);
        snprintf(text, sizeof text, "held: account %s is paced at %s; %llu held before it; release in about %lld s",
                 akey, rate, (unsigned long long)dec.held_before, secs);
        rec.action = "hold";
        rec.rule = "pace";
    } else {
        snprintf(text, sizeof text, "%s %s is paced at %s: try again in %lld s",
                 by == tp && tp != ap ? "tenant" : "account", dec.by != NULL ? dec.by : "-", rate, secs);
        rec.action = "defer";
    }
    rec.reason = text;
    if (!d->audit(d->arg, &rec, &err)) {
        pl_fail(c, "audit", err.data);
        buf_free(&err);
        return pl_eom_failed(c, act);
    }
    buf_free(&err);
    if (dec.verdict == PACER_DEFER) {
        act->setreply(act->arg, "451", "4.7.1", text);
        return PL_TEMPFAIL;
    }
    if (dec.verdict == PACER_HOLD) {
        /* into Postfix's hold queue; the release scheduler (releaser.h)
         * lets it go at the account's pace */
        char why[800];
        snprintf(why, sizeof why, "postern: account %s is paced at %s", akey, rate);
        if (!act->quarantine(act->arg, why)) {
            pl_fail(c, "pace", "the MTA refused to hold the message");
            return pl_eom_failed(c, act);
        }
        m->quarantined = true;
        return PL_CONTINUE;
    }
    struct timespec pause = { (time_t)(dec.wait_ns / 1000000000), (long)(dec.wait_ns % 1000000000) };
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
    return PL_CONTINUE;
}

/* The outbound self-check of a tenant's message (selfcheck.h), once per
 * tenant and hour: an audit warning when its receivers would see SPF or
 * DMARC fail.  Never changes the message's answer. */
static void pl_selfcheck(struct pl_conn *c)
{
    struct pl_msg *m = c->msg;
    struct pl_daemon *d = c->daemon;
    if (d->selfcheck == NULL || d->inbound == NULL || m->t == NULL ||
        !selfcheck_due(d->selfcheck, m->tenant, (int64_t)time(NULL)))
        return;
    struct buf warnings, err;
    buf_init(&warnings);
    buf_init(&err);
    selfcheck_run(d->inbound, m->t, m->sender, m->from_domain, m->signing != NULL ? m->sign_domain : NULL,
                  &warnings);
    if (warnings.len > 0) {
        struct audit_rec rec;
        pl_audit_rec(c, &rec);
        rec.action = "warning";
        rec.reason = warnings.data;
        rec.rule = "selfcheck";
        log_msg(LOG_LVL_WARN, "selfcheck", "tenant=%s warning=\"%s\"", m->tenant, warnings.data);
        if (!d->audit(d->arg, &rec, &err))
            log_msg(LOG_LVL_ERR, "selfcheck", "tenant=%s error=\"%s\"", m->tenant, err.data);
    }
    buf_free(&warnings);
    buf_free(&err);
}

enum pl_status pl_eom(struct pl_conn *c, const struct pl_actions *act, pl_macro_fn macro, void *marg)
{
    struct pl_msg *m = c->msg;
    if (m == NULL)
        return PL_CONTINUE;
    pl_queue_id(m, macro, marg);
    enum pl_status st = PL_CONTINUE;
    bool scan = scan_plan_any(&m->scan);
    if (m->tenant != NULL && !m->failed)
        pl_authres_delete(c, act);
    if (m->failed) {
        st = pl_eom_failed(c, act);
    } else if (m->in != NULL) {
        st = pl_eom_inbound(c, act);
        if (st == PL_CONTINUE && scan)
            st = pl_eom_scan(c, act);
    } else if (scan && (st = pl_eom_scan(c, act)) != PL_CONTINUE) {
        /* refused or failed: not signed */
    } else if (m->t != NULL && (st = pl_eom_pace(c, act)) != PL_CONTINUE) {
        /* deferred by its pace (or failed): not signed */
    } else if (m->signing != NULL) {
        st = pl_eom_sign(c, act);
    } else if (m->tenant != NULL) {
        /* a tenant's message that is not signed: say why */
        struct pl_daemon *d = c->daemon;
        struct audit_rec rec;
        struct buf err;
        buf_init(&err);
        pl_audit_rec(c, &rec);
        rec.action = "nosign";
        rec.reason = m->nosign != NULL ? m->nosign : "not signed";
        rec.rule = "dkim";
        if (!d->audit(d->arg, &rec, &err)) {
            pl_fail(c, "audit", err.data);
            st = pl_eom_failed(c, act);
        }
        buf_free(&err);
    }
    if (m->t != NULL && !m->failed && st == PL_CONTINUE)
        pl_selfcheck(c);
    pl_msg_free(c->msg);
    c->msg = NULL;
    return st;
}

void pl_abort(struct pl_conn *c)
{
    pl_msg_free(c->msg);
    c->msg = NULL;
}

void pl_close(struct pl_conn *c)
{
    pl_abort(c);
}
