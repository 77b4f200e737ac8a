/* ctl_audit.c: posternctl audit: search the audit trails of policyd's and
 * the milter's state files (newest first, the two merged by time) by
 * sender, recipient, tenant, account, queue ID and time, and print one
 * line per record, or every field as JSON.  Each daemon's journal is
 * ingested first (ctl_store_open_ingested), so that every decision it
 * made is there. */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "audit.h"
#include "ctl.h"
#include "grammar.h"
#include "ptime.h"

#define AUDIT_DEFAULT_LIMIT 100

struct audit_out {
    FILE *out;
    bool json;
    size_t n;
};

static time_t audit_secs(int64_t us)
{
    int64_t s = us / 1000000;
    if (us % 1000000 < 0)
        s--;
    return (time_t)s;
}

/* TIME TENANT/ACCOUNT CLIENT LOGIN SENDER RECIPIENTS STAGE ACTION RULE */
static void audit_print_line(const struct audit_rec *r, FILE *out)
{
    char t[40];
    struct buf who, rcpts;
    buf_init(&who);
    buf_init(&rcpts);
    ctl_time_format(audit_secs(r->time_us), t, sizeof t);
    if (r->tenant != NULL && r->account != NULL)
        buf_printf(&who, "%s/%s", r->tenant, r->account);
    else if (r->tenant != NULL)
        buf_puts(&who, r->tenant);
    else if (r->account != NULL)
        buf_printf(&who, "-/%s", r->account);
    for (size_t i = 0; i < r->nrecipients; i++) {
        if (i > 0)
            buf_putc(&rcpts, ',');
        buf_puts(&rcpts, r->recipients[i]);
    }
    fputs(t, out);
    const char *fields[] = { who.data, r->client_ip, r->sasl_login, r->sender, rcpts.data,
                             r->stage, r->action, r->rule };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        fputc(' ', out);
        ctl_put_field(out, fields[i]);
    }
    fputc('\n', out);
    buf_free(&who);
    buf_free(&rcpts);
}

static void audit_json_str(FILE *out, const char *name, const char *v)
{
    fprintf(out, ", \"%s\": ", name);
    ctl_put_json(out, v);
}

static void audit_print_json(const struct audit_rec *r, bool first, FILE *out)
{
    char t[40];
    ctl_time_format(audit_secs(r->time_us), t, sizeof t);
    fprintf(out, "%s\n {\"id\": %" PRId64 ", \"time\": \"%s\", \"time_us\": %" PRId64, first ? "" : ",",
            r->id, t, r->time_us);
    audit_json_str(out, "component", r->component);
    audit_json_str(out, "tenant", r->tenant);
    audit_json_str(out, "account", r->account);
    audit_json_str(out, "client_ip", r->client_ip);
    audit_json_str(out, "sasl_login", r->sasl_login);
    audit_json_str(out, "sender", r->sender);
    fprintf(out, ", \"recipients\": [");
    for (size_t i = 0; i < r->nrecipients; i++) {
        if (i > 0)
            fputs(", ", out);
        ctl_put_json(out, r->recipients[i]);
    }
    fputc(']', out);
    audit_json_str(out, "queue_id", r->queue_id);
    audit_json_str(out, "instance", r->instance);
    audit_json_str(out, "stage", r->stage);
    audit_json_str(out, "action", r->action);
    audit_json_str(out, "reason", r->reason);
    audit_json_str(out, "rule", r->rule);
    audit_json_str(out, "counters", r->counters);
    fprintf(out, ", \"latency_us\": %" PRId64 "}", r->latency_us);
}

static void audit_print(struct audit_out *o, const struct audit_rec *r)
{
    if (o->json)
        audit_print_json(r, o->n == 0, o->out);
    else
        audit_print_line(r, o->out);
    o->n++;
}

/* --- records of both daemons, merged ------------------------------------- */

struct audit_list {
    struct audit_rec *v;
    size_t n;
};

static const char *audit_dup(const char *s)
{
    return s != NULL ? mem_strdup(s) : NULL;
}

static bool audit_keep_cb(const struct audit_rec *r, void *arg)
{
    struct audit_list *l = arg;
    l->v = mem_grow(l->v, l->n + 1, sizeof *l->v);
    struct audit_rec *k = &l->v[l->n++];
    *k = *r;
    const char **s[] = { &k->component, &k->tenant, &k->account, &k->client_ip, &k->sasl_login, &k->sender,
                         &k->queue_id, &k->instance, &k->stage, &k->action, &k->reason, &k->rule, &k->counters };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        *s[i] = audit_dup(*s[i]);
    const char **rc = r->nrecipients ? mem_array(r->nrecipients, sizeof *rc) : NULL;
    for (size_t i = 0; i < r->nrecipients; i++)
        rc[i] = audit_dup(r->recipients[i]);
    k->recipients = rc;
    return true;
}

static void audit_list_free(struct audit_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct audit_rec *k = &l->v[i];
        const char *s[] = { k->component, k->tenant, k->account, k->client_ip, k->sasl_login, k->sender,
                            k->queue_id, k->instance, k->stage, k->action, k->reason, k->rule, k->counters };
        for (size_t j = 0; j < sizeof s / sizeof s[0]; j++)
            mem_free((void *)s[j]);
        for (size_t j = 0; j < k->nrecipients; j++)
            mem_free((void *)k->recipients[j]);
        mem_free((void *)k->recipients);
    }
    mem_free(l->v);
}

/* Query one daemon's store (ingested first); a store that does not exist
 * is skipped when optional.  False after printing the reason. */
static bool audit_collect(struct ctl *c, const struct ctl_state *st, bool optional, const struct audit_filter *f,
                          struct audit_list *l, bool *found)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    buf_printf(&path, "%s/%s", c->conf.state_dir, st->store_file);
    bool exists = access(path.data, F_OK) == 0;
    buf_free(&path);
    if (!exists && optional) {
        buf_free(&err);
        return true;
    }
    c->state = st;
    struct store *s = ctl_store_open_ingested(c);
    c->state = NULL;
    bool ok = s != NULL && audit_query(s, f, audit_keep_cb, l, &err);
    if (s != NULL && !ok)
        fprintf(stderr, "posternctl: %s\n", err.data);
    *found = *found || s != NULL;
    store_close(s);
    buf_free(&err);
    return ok;
}

/* Merge two lists each ordered by time (newest first or oldest first). */
static void audit_merge_print(const struct audit_list *a, const struct audit_list *b, bool newest_first,
                              size_t limit, struct audit_out *o)
{
    size_t i = 0, j = 0;
    while ((i < a->n || j < b->n) && (limit == 0 || o->n < limit)) {
        bool take_a;
        if (i >= a->n)
            take_a = false;
        else if (j >= b->n)
            take_a = true;
        else
            take_a = newest_first ? a->v[i].time_us >= b->v[j].time_us : a->v[i].time_us <= b->v[j].time_us;
        audit_print(o, take_a ? &a->v[i++] : &b->v[j++]);
    }
}

static bool audit_time_opt(const char *name, const char *arg, int64_t now_us, int64_t *out)
{
    struct buf err;
    buf_init(&err);
    bool ok = ctl_time_parse(arg, now_us, out, &err);
    if (!ok)
        fprintf(stderr, "posternctl: --%s: %s\n", name, err.data);
    buf_free(&err);
    return ok;
}

static char *audit_lower(const char *s)
{
    char *d = mem_strdup(s);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

int ctl_audit_search(struct ctl *c, int argc, char **argv)
{
    enum { O_SENDER = 256, O_RCPT, O_TENANT, O_ACCOUNT, O_QID, O_SINCE, O_UNTIL, O_LIMIT, O_JSON };
    static const struct option opts[] = {
        { "sender", required_argument, NULL, O_SENDER },
        { "recipient", required_argument, NULL, O_RCPT },
        { "tenant", required_argument, NULL, O_TENANT },
        { "account", required_argument, NULL, O_ACCOUNT },
        { "queue-id", required_argument, NULL, O_QID },
        { "since", required_argument, NULL, O_SINCE },
        { "until", required_argument, NULL, O_UNTIL },
        { "limit", required_argument, NULL, O_LIMIT },
        { "json", no_argument, NULL, O_JSON },
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct audit_filter f;
    const char *since = NULL, *until = NULL;
    char gerr[GRAM_ERR_MAX];
    uint64_t limit = AUDIT_DEFAULT_LIMIT;
    struct audit_out o = { stdout, false, 0 };
    int ch;
    memset(&f, 0, sizeof f);
    f.newest_first = true;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case O_SENDER: f.sender = optarg; break;
        case O_RCPT: f.recipient = optarg; break;
        case O_TENANT: f.tenant = optarg; break;
        case O_ACCOUNT: f.account = optarg; break;
        case O_QID: f.queue_id = optarg; break;
        case O_SINCE: since = optarg; break;
        case O_UNTIL: until = optarg; break;
        case O_JSON: o.json = true; break;
        case O_LIMIT:
            if (!gram_uint(optarg, UINT32_MAX, &limit, gerr, sizeof gerr)) {
                fprintf(stderr, "posternctl: --limit: %s\n", gerr);
                return 2;
            }
            break;
        case 'h':
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        default:
            if (!ctl_common_option(c, ch, optarg))
                return ctl_bad_usage(c);
        }
    }
    if (optind != argc)
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct clock sys = clock_system();
    int64_t now_us = clock_now_us(&sys);
    if ((since != NULL && !audit_time_opt("since", since, now_us, &f.since_us)) ||
        (until != NULL && !audit_time_opt("until", until, now_us, &f.until_us)))
        return 1;
    /* 0 means "no bound" to audit_query: a bound at the epoch itself is 1 µs off */
    if (since != NULL && f.since_us == 0)
        f.since_us = 1;
    if (until != NULL && f.until_us == 0)
        f.until_us = -1;
    f.limit = (size_t)limit;
    char *account = f.account != NULL ? audit_lower(f.account) : NULL;  /* stored lowercase */
    f.account = account;
    struct audit_list pl = { NULL, 0 }, ml = { NULL, 0 };
    bool found = false;
    /* the milter's trail when it exists; policyd's always (its absence is
     * the error it always was, unless the milter's is there) */
    bool ok = audit_collect(c, &ctl_milter_state, true, &f, &ml, &found);
    ok = ok && audit_collect(c, &ctl_policyd_state, found, &f, &pl, &found);
    if (ok) {
        if (o.json)
            fputc('[', stdout);
        audit_merge_print(&pl, &ml, f.newest_first, f.limit, &o);
        if (o.json)
            fputs(o.n ? "\n]\n" : "]\n", stdout);
    }
    audit_list_free(&pl);
    audit_list_free(&ml);
    mem_free(account);
    return ok ? 0 : 1;
}
