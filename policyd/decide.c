/* decide.c: the decision engine of postern-policyd (decide.h): identify
 * the tenant and account, enforce IP binding, the per-message limits and
 * the windowed quotas, count permitted messages at END-OF-MESSAGE, and say
 * which rule decided and why. */
#include "decide.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "rules_index.h"

/* Quota requests of one message: 3 metrics x 5 windows x (account, tenant). */
#define DECIDE_MAX_REQS (3 * WIN_COUNT * 2)

static const char *const metric_names[] = { "messages", "recipients", "bytes" };

/* Who is sending, as identified from the request. */


/* The quota requests of one check and what each stands for. */
struct quota_set {
    struct counter_req reqs[DECIDE_MAX_REQS];
    struct counter_result res[DECIDE_MAX_REQS];
    char keys[DECIDE_MAX_REQS][384];
    const char *scope[DECIDE_MAX_REQS];   /* "account" or "tenant" */
    int metric[DECIDE_MAX_REQS];
    size_t n;
};

void decision_init(struct decision *d)
{
    memset(d, 0, sizeof *d);
    buf_init(&d->action);
    buf_init(&d->reason);
    buf_init(&d->counters);
}

void decision_reset(struct decision *d)
{
    buf_reset(&d->action);
    buf_reset(&d->reason);
    buf_reset(&d->counters);
    d->rule = "";
    d->stage = "other";
    d->tenant[0] = d->account[0] = '\0';
    d->store_error = d->counted = false;
}

void decision_free(struct decision *d)
{
    buf_free(&d->action);
    buf_free(&d->reason);
    buf_free(&d->counters);
}

void decide_counter_key(struct buf *out, const char *tenant, const char *account, const char *metric)
{
    if (account)
        buf_printf(out, "a:%s:%s:%s", tenant, account, metric);
    else
        buf_printf(out, "t:%s:%s", tenant, metric);
}

static bool nonempty(const char *s)
{
    return s != NULL && *s != '\0';
}

static void identify(const struct rules *r, const struct policy_request *req, struct rules_ident *id)
{
    rules_identify(r, req->sasl_username, req->client_address, req->sender, id);
}

static const char *sender_text(const struct policy_request *req)
{
    return nonempty(req->sender) ? req->sender : "<>";
}

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!nonempty(s))
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* IP binding, inbound side.  True when the request may go on. */
static bool check_binding(const struct rules *r, const struct policy_request *req, const struct rules_ident *id,
                          struct decision *d)
{
    const struct tenant *owner = nonempty(req->sender) ? rules_find_sender_tenant(r, req->sender) : NULL;
    if (id->t == NULL) {
        if (owner == NULL)
            return true;
        d->rule = "binding.sender_domain";
        if (nonempty(req->sasl_username))
            buf_printf(&d->reason, "sender domain of %s belongs to tenant %s; login %s is not one of its logins",
                       req->sender, owner->name, req->sasl_username);
        else
            buf_printf(&d->reason, "sender domain of %s belongs to tenant %s; client %s is not one of its hosts",
                       req->sender, owner->name, req->client_address ? req->client_address : "?");
        buf_printf(&d->action, "554 5.7.1 <%s>: %s", req->sender, d->reason.data);
        return false;
    }
    if (owner == id->t || !nonempty(req->sender))
        return true;
    d->rule = strcmp(id->how, "login") == 0 ? "binding.login_domain" : "binding.host_domain";
    if (strcmp(id->how, "login") == 0)
        buf_printf(&d->reason, "login %s of tenant %s may only send as the tenant's domains", req->sasl_username,
                   id->t->name);
    else
        buf_printf(&d->reason, "host %s of tenant %s may only send as the tenant's domains",
                   req->client_address ? req->client_address : "?", id->t->name);
    buf_printf(&d->action, "554 5.7.1 <%s>: %s", req->sender, d->reason.data);
    return false;
}

static void quota_add(struct quota_set *q, const char *tenant, const char *account, int metric,
                      const struct quota *quotas, uint64_t add)
{
    const char *key = NULL; /* one key for every window of the metric, made once */
    for (int u = 0; u < WIN_COUNT; u++) {
        const struct quota *qu = &quotas[u];
        if (!qu->set || (qu->unlimited && u != WIN_DAY))
            continue; /* unlimited: still counted per day, for usage reports */
        if (key == NULL) {
            struct buf k;
            buf_init(&k);
            decide_counter_key(&k, tenant, account, metric_names[metric]);
            snprintf(q->keys[q->n], sizeof q->keys[q->n], "%s", k.data);
            buf_free(&k);
            key = q->keys[q->n];
        }
        q->reqs[q->n] = (struct counter_req){ key, (enum window_unit)u, add,
                                              qu->unlimited ? COUNTER_NO_LIMIT : qu->count };
        q->scope[q->n] = account ? "account" : "tenant";
        q->metric[q->n] = metric;
        q->n++;
    }
}

/* The account's and the tenant's quota requests; adds[metric] is what the
 * message adds; only_rcpt keeps the recipient quotas (the RCPT look). */
static void quota_build(struct quota_set *q, const struct rules_ident *id, const uint64_t adds[3], bool only_rcpt)
{
    q->n = 0;
    for (int m = 0; m < 3; m++) {
        if (only_rcpt && m != 1)
            continue;
        const struct quota *aq = m == 0 ? id->a->limits.messages : m == 1 ? id->a->limits.recipients
                                                                          : id->a->limits.bytes;
        const struct quota *tq = m == 0 ? id->t->limits.messages : m == 1 ? id->t->limits.recipients
                                                                          : id->t->limits.bytes;
        quota_add(q, id->t->name, id->who, m, aq, adds[m]);
        quota_add(q, id->t->name, NULL, m, tq, adds[m]);
    }
}

static const char *exceed_code(enum on_exceed e, bool rcpt_stage)
{
    if (e == EXCEED_REJECT)
        return "550 5.7.1";
    return rcpt_stage ? "452 4.7.1" : "451 4.7.1";
}

static void quota_refusal(const struct quota_set *q, size_t i, const struct rules_ident *id, enum on_exceed e,
                          bool rcpt_stage, struct decision *d)
{
    static const char *const rules_tbl[2][3][WIN_COUNT] = {
        { { "quota.account.messages.minute", "quota.account.messages.hour", "quota.account.messages.day",
            "quota.account.messages.week", "quota.account.messages.month" },
          { "quota.account.recipients.minute", "quota.account.recipients.hour", "quota.account.recipients.day",
            "quota.account.recipients.week", "quota.account.recipients.month" },
          { "quota.account.bytes.minute", "quota.account.bytes.hour", "quota.account.bytes.day",
            "quota.account.bytes.week", "quota.account.bytes.month" } },
        { { "quota.tenant.messages.minute", "quota.tenant.messages.hour", "quota.tenant.messages.day",
            "quota.tenant.messages.week", "quota.tenant.messages.month" },
          { "quota.tenant.recipients.minute", "quota.tenant.recipients.hour", "quota.tenant.recipients.day",
            "quota.tenant.recipients.week", "quota.tenant.recipients.month" },
          { "quota.tenant.bytes.minute", "quota.tenant.bytes.hour", "quota.tenant.bytes.day",
            "quota.tenant.bytes.week", "quota.tenant.bytes.month" } },
    };
    const struct counter_req *r = &q->reqs[i];
    const struct counter_result *res = &q->res[i];
    bool tenant = strcmp(q->scope[i], "tenant") == 0;
    char reset[40];
    time_format(res->window_end, reset, sizeof reset);
    d->rule = rules_tbl[tenant][q->metric[i]][r->unit];
    if (tenant)
        buf_printf(&d->reason, "quota of tenant %s", id->t->name);
    else
        buf_printf(&d->reason, "quota of account %s", id->who);
    buf_printf(&d->reason, ": %s %" PRIu64 "/%s, %" PRIu64 " used, this message needs %" PRIu64 "; resets at %s",
               metric_names[q->metric[i]], r->limit, window_unit_name(r->unit), res->value, r->add, reset);
    if (e == EXCEED_HOLD && !rcpt_stage)
        buf_printf(&d->action, "HOLD %s", d->reason.data);
    else
        buf_printf(&d->action, "%s %s", exceed_code(e, rcpt_stage), d->reason.data);
}

/* Run the quota requests (commit: count them when they all fit).  On a
 * store failure the decision is marked store_error; the counter values
 * go to the decision for the audit. */
static int quota_check(const struct decide_env *env, struct quota_set *q, bool commit, struct decision *d)
{
    struct buf err;
    if (q->n == 0)
        return COUNTERS_OK;
    buf_init(&err);
    int rc = counters_check_add(env->counters, q->reqs, q->n, commit, q->res, &err);
    if (rc == COUNTERS_ERROR) {
        d->store_error = true;
        d->rule = "store";
        buf_printf(&d->reason, "store error: %s", err.data);
        buf_puts(&d->action, "DUNNO");
    } else if (commit || rc == COUNTERS_EXCEEDED) {
        counters_describe(q->reqs, q->res, q->n, &d->counters);
    }
    buf_free(&err);
    return rc;
}

static void permit(const struct rules_ident *id, struct decision *d, const char *why)
{
    const struct outbound *o = account_outbound(id->a);
    d->rule = "permit";
    buf_printf(&d->reason, "%s", why);
    if (o != NULL && o->transport != NULL) {
        buf_printf(&d->action, "FILTER %s:", o->transport);
        buf_printf(&d->reason, "; leaves through transport %s", o->transport);
    } else {
        buf_puts(&d->action, "DUNNO");
    }
}

static bool check_size(const struct rules_ident *id, uint64_t size, struct decision *d)
{
    uint64_t limit;
    if (!account_message_size(id->a, &limit) || size <= limit)
        return true;
    d->rule = "limits.message_size";
    buf_printf(&d->reason, "message size %" PRIu64 " exceeds the limit of %" PRIu64 " bytes of %s %s", size, limit,
               id->a->limits.message_size_set ? "account" : "tenant",
               id->a->limits.message_size_set ? id->who : id->t->name);
    buf_printf(&d->action, "552 5.3.4 %s", d->reason.data);
    return false;
}

static void decide_rcpt(const struct decide_env *env, struct decide_conn *conn, const struct policy_request *req,
                        const struct rules_ident *id, struct decision *d)
{
    uint64_t size = 0, cap;
    const char *instance = req->instance ? req->instance : "";
    if (strncmp(conn->instance, instance, sizeof conn->instance - 1) != 0) {
        snprintf(conn->instance, sizeof conn->instance, "%s", instance);
        conn->rcpts = 0;
    }
    if (parse_u64(req->size, &size) && size > 0 && !check_size(id, size, d))
        return;
    if (account_rcpt_per_msg(id->a, &cap) && conn->rcpts + 1 > cap) {
        d->rule = "limits.recipients_per_message";
        buf_printf(&d->reason, "at most %" PRIu64 " recipients per message for %s", cap, id->who);
        buf_printf(&d->action, "452 4.5.3 %s", d->reason.data);
        return;
    }
    enum on_exceed e = account_on_exceed(id->a);
    if (e != EXCEED_HOLD) {
        struct quota_set q;
        uint64_t adds[3] = { 0, conn->rcpts + 1, 0 };
        quota_build(&q, id, adds, true);
        int rc = quota_check(env, &q, false, d);
        if (rc == COUNTERS_ERROR)
            return;
        if (rc == COUNTERS_EXCEEDED) {
            quota_refusal(&q, counters_first_exceeded(q.res, q.n), id, e, true, d);
            return;
        }
    }
    conn->rcpts++;
    permit(id, d, "tenant submission");
}

static void decide_eom(const struct decide_env *env, const struct policy_request *req, const struct rules_ident *id,
                       struct decision *d)
{
    uint64_t n = 0, size = 0, cap;
    parse_u64(req->recipient_count, &n);
    parse_u64(req->size, &size);
    if (!check_size(id, size, d))
        return;
    if (account_rcpt_per_msg(id->a, &cap) && n > cap) {
        d->rule = "limits.recipients_per_message";
        buf_printf(&d->reason, "%" PRIu64 " recipients, at most %" PRIu64 " per message for %s", n, cap, id->who);
        buf_printf(&d->action, "550 5.5.3 %s", d->reason.data);
        return;
    }
    struct quota_set q;
    uint64_t adds[3] = { 1, n, size };
    quota_build(&q, id, adds, false);
    int rc = quota_check(env, &q, true, d);
    if (rc == COUNTERS_ERROR)
        return;
    if (rc == COUNTERS_EXCEEDED) {
        quota_refusal(&q, counters_first_exceeded(q.res, q.n), id, account_on_exceed(id->a), false, d);
        return;
    }
    d->counted = q.n > 0;
    permit(id, d, d->counted ? "tenant message counted" : "tenant message (no quota to count)");
}

void decide(const struct decide_env *env, struct decide_conn *conn, const struct policy_request *req,
            struct decision *d)
{
    struct rules_ident id;
    const char *state = req->protocol_state ? req->protocol_state : "";

    decision_reset(d);
    if (strcasecmp(state, "RCPT") == 0) {
        d->stage = "rcpt";
    } else if (strcasecmp(state, "END-OF-MESSAGE") == 0) {
        d->stage = "eom";
    } else {
        d->rule = "state";
        buf_printf(&d->reason, "protocol_state %s is not checked", *state ? state : "(none)");
        buf_puts(&d->action, "DUNNO");
        return;
    }
    identify(env->rules, req, &id);
    if (id.t != NULL) {
        snprintf(d->tenant, sizeof d->tenant, "%s", id.t->name);
        snprintf(d->account, sizeof d->account, "%s", id.who);
    }
    if (!check_binding(env->rules, req, &id, d))
        return;
    if (id.t == NULL) {
        d->rule = "identify.none";
        if (nonempty(req->sasl_username))
            buf_printf(&d->reason, "not a tenant submission: login %s belongs to no tenant", req->sasl_username);
        else
            buf_printf(&d->reason, "not a tenant submission: client %s is no tenant's host and %s no tenant's domain",
                       req->client_address ? req->client_address : "?", sender_text(req));
        buf_puts(&d->action, "DUNNO");
        return;
    }
    if (strcmp(d->stage, "rcpt") == 0)
        decide_rcpt(env, conn, req, &id, d);
    else
        decide_eom(env, req, &id, d);
}

void decide_audit(const struct policy_request *req, const struct decision *d, const char **rcpt,
                  struct audit_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->component = "policyd";
    rec->tenant = d->tenant[0] ? d->tenant : NULL;
    rec->account = d->account[0] ? d->account : NULL;
    rec->client_ip = req->client_address;
    rec->sasl_login = nonempty(req->sasl_username) ? req->sasl_username : NULL;
    rec->sender = req->sender;
    if (nonempty(req->recipient)) {
        *rcpt = req->recipient;
        rec->recipients = rcpt;
        rec->nrecipients = 1;
    }
    rec->queue_id = nonempty(req->queue_id) ? req->queue_id : NULL;
    rec->instance = req->instance;
    rec->stage = d->stage;
    rec->action = d->action.data;
    rec->reason = d->reason.data;
    rec->rule = d->rule;
    rec->counters = d->counters.len ? d->counters.data : NULL;
}
