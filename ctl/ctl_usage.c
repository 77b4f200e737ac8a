/* ctl_usage.c: the counter commands of posternctl: "usage" (each
 * tenant's and account's quotas with the count of the current window, the
 * window and when it resets) and "counters reset" (zero the counters of a
 * tenant or an account, with an audit record).  The counters are those
 * postern-policyd keeps in <state_dir>/policyd.sqlite under the keys of
 * decide_counter_key(): "t:TENANT:METRIC" and "a:TENANT:ACCOUNT:METRIC",
 * ACCOUNT being a declared account, or for "*" each login or sender.
 * "usage" ingests the daemon's journal first; "counters reset" asks a
 * running daemon to do the reset (it owns the counters, in memory), and
 * otherwise ingests the journal, then resets the store itself. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "audit.h"
#include "counters.h"
#include "ctl.h"
#include "decide.h"
#include "grammar.h"
#include "journal.h"
#include "log.h"
#include "ptime.h"
#include "rules_index.h"

#define USAGE_METRICS 3
static const char *const usage_metrics[USAGE_METRICS] = { "messages", "recipients", "bytes" };

/* --- counters read back ---------------------------------------------------- */

struct urow {
    char *key;
    enum window_unit unit;
    uint64_t value;
    time_t start, end;
};

struct uset {
    struct urow *v;
    size_t n, cap;
};

static bool uset_add(const struct counter_row *row, void *arg)
{
    struct uset *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = mem_grow(s->v, s->cap, sizeof *s->v);
    }
    s->v[s->n++] = (struct urow){ mem_strdup(row->key), row->unit, row->value, row->window_start,
                                  row->window_end };
    return true;
}

static int urow_cmp(const void *a, const void *b)
{
    const struct urow *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    if (x->unit != y->unit)
        return x->unit < y->unit ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void uset_sort(struct uset *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, urow_cmp);
}

static const struct urow *uset_find(const struct uset *s, const char *key, enum window_unit u)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {   /* the first row >= (key, unit): start is ignored */
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid].key, key);
        if (c < 0 || (c == 0 && s->v[mid].unit < u))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && strcmp(s->v[lo].key, key) == 0 && s->v[lo].unit == u)
        return &s->v[lo];
    return NULL;
}

static void uset_free(struct uset *s)
{
    for (size_t i = 0; i < s->n; i++)
        mem_free(s->v[i].key);
    mem_free(s->v);
    memset(s, 0, sizeof *s);
}

/* "t:TENANT:" (account NULL), "a:TENANT:ACCOUNT:", or with account ""
 * "a:TENANT:", the prefix of every account of the tenant. */
static void usage_prefix(struct buf *out, const char *tenant, const char *account)
{
    buf_reset(out);
    decide_counter_key(out, tenant, account, "");
    if (account != NULL && account[0] == '\0' && out->len > 0)
        out->data[--out->len] = '\0';   /* "a:TENANT::" -> "a:TENANT:" */
}

static void lower_dup(char *out, size_t size, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* --- the usage report ------------------------------------------------------ */

struct uline {
    const char *tenant;
    char *account;              /* NULL: the whole tenant */
    bool wildcard;              /* a login or sender counted under "*" */
    int metric;                 /* index in usage_metrics; -1: no quota */
    enum window_unit unit;
    bool unlimited;
    uint64_t limit, used;
    time_t start, end;
    char *key;
};

struct ureport {
    struct uline *v;
    size_t n, cap;
    time_t now;
};

static struct uline *ureport_push(struct ureport *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->v = mem_grow(r->v, r->cap, sizeof *r->v);
    }
    struct uline *l = &r->v[r->n++];
    memset(l, 0, sizeof *l);
    return l;
}

static void ureport_free(struct ureport *r)
{
    for (size_t i = 0; i < r->n; i++) {
        mem_free(r->v[i].account);
        mem_free(r->v[i].key);
    }
    mem_free(r->v);
}

static const struct quota *limits_metric(const struct limits *l, int m)
{
    return m == 0 ? l->messages : m == 1 ? l->recipients : l->bytes;
}

/* The lines of one scope: every quota policyd counts for it (each
 * configured window; "unlimited" per day), or one "no quota" line. */
static void usage_scope(struct ureport *rep, const struct uset *rows, const struct tenant *t,
                        const char *account, bool wildcard, const struct limits *l)
{
    size_t before = rep->n;
    struct buf key;
    buf_init(&key);
    for (int m = 0; m < USAGE_METRICS; m++) {
        const struct quota *q = limits_metric(l, m);
        for (int u = 0; u < WIN_COUNT; u++) {
            if (!q[u].set || (q[u].unlimited && u != WIN_DAY))
                continue;
            buf_reset(&key);
            decide_counter_key(&key, t->name, account, usage_metrics[m]);
            const struct urow *row = uset_find(rows, key.data, (enum window_unit)u);
            struct uline *ln = ureport_push(rep);
            ln->metric = m;
            ln->unit = (enum window_unit)u;
            ln->unlimited = q[u].unlimited;
            ln->limit = q[u].count;
            ln->used = row != NULL ? row->value : 0;
            window_bounds(ln->unit, rep->now, &ln->start, &ln->end);
            ln->key = mem_strdup(key.data);
        }
    }
    if (rep->n == before)
        ureport_push(rep)->metric = -1;
    for (size_t i = before; i < rep->n; i++) {
        rep->v[i].tenant = t->name;
        rep->v[i].account = account != NULL ? mem_strdup(account) : NULL;
        rep->v[i].wildcard = wildcard;
    }
    buf_free(&key);
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int account_ptr_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct account *const *)a)->name, (*(const struct account *const *)b)->name);
}

/* The tenant, its declared accounts by name, then each login or sender
 * with counters under "*", by name. */
static bool usage_tenant(struct ureport *rep, struct counters *cn, const struct tenant *t,
                         struct buf *err)
{
    struct uset rows = { 0 };
    struct buf pt, pa;
    buf_init(&pt);
    buf_init(&pa);
    usage_prefix(&pt, t->name, NULL);
    usage_prefix(&pa, t->name, "");
    bool ok = counters_list(cn, pt.data, uset_add, &rows, err) &&
              counters_list(cn, pa.data, uset_add, &rows, err);
    if (!ok)
        goto done;
    uset_sort(&rows);
    usage_scope(rep, &rows, t, NULL, false, &t->limits);

    const struct account **decl = mem_array(t->n_accounts + 1, sizeof *decl);
    size_t nd = 0;
    for (size_t i = 0; i < t->n_accounts; i++)
        if (strcmp(t->accounts[i].name, "*") != 0)
            decl[nd++] = &t->accounts[i];
    if (nd > 1)
        qsort(decl, nd, sizeof *decl, account_ptr_cmp);
    for (size_t i = 0; i < nd; i++)
        usage_scope(rep, &rows, t, decl[i]->name, false, &decl[i]->limits);

    /* the logins and senders of "*": ACCOUNT of "a:TENANT:ACCOUNT:METRIC" */
    char **who = mem_array(rows.n + 1, sizeof *who);
    size_t nw = 0;
    for (size_t i = 0; i < rows.n; i++) {
        const char *k = rows.v[i].key;
        if (strncmp(k, pa.data, pa.len) != 0)
            continue;
        const char *acc = k + pa.len, *colon = strrchr(acc, ':');
        if (colon == NULL || colon == acc)
            continue;
        char *name = mem_strndup(acc, (size_t)(colon - acc));
        bool declared = false;
        for (size_t j = 0; j < nd && !declared; j++)
            declared = strcmp(decl[j]->name, name) == 0;
        if (declared || (nw > 0 && strcmp(who[nw - 1], name) == 0)) {   /* rows are sorted */
            mem_free(name);
            continue;
        }
        who[nw++] = name;
    }
    if (nw > 1)
        qsort(who, nw, sizeof *who, str_ptr_cmp);
    for (size_t i = 0; i < nw; i++) {
        if ((i == 0 || strcmp(who[i - 1], who[i]) != 0) && t->wildcard != NULL)
            usage_scope(rep, &rows, t, who[i], true, &t->wildcard->limits);
    }
    for (size_t i = 0; i < nw; i++)
        mem_free(who[i]);
    mem_free(who);
    mem_free(decl);
done:
    uset_free(&rows);
    buf_free(&pt);
    buf_free(&pa);
    return ok;
}

static void usage_account_label(const struct uline *l, struct buf *out)
{
    buf_reset(out);
    if (l->account == NULL)
        buf_puts(out, "(tenant)");
    else if (l->wildcard)
        buf_printf(out, "%s [*]", l->account);
    else
        buf_puts(out, l->account);
}

static void usage_percent(const struct uline *l, char *out, size_t size)
{
    uint64_t pct;
    if (l->metric < 0 || l->unlimited) {
        snprintf(out, size, "-");
        return;
    }
    if (l->limit == 0)
        pct = 100;
    else if (l->used <= UINT64_MAX / 100)
        pct = l->used * 100 / l->limit;
    else
        pct = l->used / (l->limit / 100 > 0 ? l->limit / 100 : 1);
    snprintf(out, size, "%" PRIu64 "%%", pct);
}

#define USAGE_COLS 9

/* The cells of one line of the table. */
static void usage_cells(const struct uline *l, char cells[USAGE_COLS][280])
{
    struct buf acc;
    buf_init(&acc);
    usage_account_label(l, &acc);
    snprintf(cells[0], 280, "%s", l->tenant);
    snprintf(cells[1], 280, "%s", acc.data);
    buf_free(&acc);
    if (l->metric < 0) {
        snprintf(cells[2], 280, "(no quota)");
        for (int i = 3; i < USAGE_COLS; i++)
            snprintf(cells[i], 280, "-");
        return;
    }
    snprintf(cells[2], 280, "%s", usage_metrics[l->metric]);
    snprintf(cells[3], 280, "%s", window_unit_name(l->unit));
    snprintf(cells[4], 280, "%" PRIu64, l->used);
    if (l->unlimited)
        snprintf(cells[5], 280, "unlimited");
    else
        snprintf(cells[5], 280, "%" PRIu64, l->limit);
    usage_percent(l, cells[6], 280);
    ctl_time_format(l->start, cells[7], 280);
    ctl_time_format(l->end, cells[8], 280);
}

static void usage_print_text(const struct ureport *rep, const char *tz, FILE *out)
{
    static const char *const head[USAGE_COLS] = { "TENANT", "ACCOUNT", "METRIC", "WINDOW", "USED",
                                                  "LIMIT", "USE", "WINDOW START", "RESETS AT" };
    static const bool right[USAGE_COLS] = { false, false, false, false, true, true, true, false, false };
    size_t w[USAGE_COLS];
    char cells[USAGE_COLS][280];
    char at[40];
    for (int i = 0; i < USAGE_COLS; i++)
        w[i] = strlen(head[i]);
    for (size_t j = 0; j < rep->n; j++) {
        usage_cells(&rep->v[j], cells);
        for (int i = 0; i < USAGE_COLS; i++)
            if (strlen(cells[i]) > w[i])
                w[i] = strlen(cells[i]);
    }
    ctl_time_format(rep->now, at, sizeof at);
    fprintf(out, "usage at %s (time zone %s)\n", at, tz);
    for (size_t j = 0; j <= rep->n; j++) {
        if (j > 0)
            usage_cells(&rep->v[j - 1], cells);
        for (int i = 0; i < USAGE_COLS; i++) {
            const char *c = j == 0 ? head[i] : cells[i];
            int width = (int)w[i];
            if (i == USAGE_COLS - 1)
                fprintf(out, "%s\n", c);
            else if (right[i])
                fprintf(out, "%*s  ", width, c);
            else
                fprintf(out, "%-*s  ", width, c);
        }
    }
}

static void usage_json_time(FILE *out, const char *name, time_t t)
{
    char s[40];
    ctl_time_format(t, s, sizeof s);
    fprintf(out, ", \"%s\": \"%s\"", name, s);
}

static void usage_json_limits(const struct ureport *rep, size_t from, size_t to, const char *indent,
                              FILE *out)
{
    fputc('[', out);
    bool first = true;
    for (size_t i = from; i < to; i++) {
        const struct uline *l = &rep->v[i];
        if (l->metric < 0)
            continue;
        fprintf(out, "%s\n%s  {\"counter\": ", first ? "" : ",", indent);
        first = false;
        ctl_put_json(out, l->key);
        fprintf(out, ", \"metric\": \"%s\", \"window\": \"%s\", \"used\": %" PRIu64,
                usage_metrics[l->metric], window_unit_name(l->unit), l->used);
        if (l->unlimited)
            fprintf(out, ", \"limit\": null, \"unlimited\": true");
        else
            fprintf(out, ", \"limit\": %" PRIu64 ", \"unlimited\": false", l->limit);
        usage_json_time(out, "window_start", l->start);
        usage_json_time(out, "window_end", l->end);
        usage_json_time(out, "resets_at", l->end);
        fputc('}', out);
    }
    if (first)
        fputc(']', out);
    else
        fprintf(out, "\n%s]", indent);
}

static bool same_scope(const struct uline *a, const struct uline *b)
{
    if (strcmp(a->tenant, b->tenant) != 0 || (a->account == NULL) != (b->account == NULL))
        return false;
    return a->account == NULL || (strcmp(a->account, b->account) == 0 && a->wildcard == b->wildcard);
}

static void usage_print_json(const struct ureport *rep, const char *tz, FILE *out)
{
    char at[40];
    ctl_time_format(rep->now, at, sizeof at);
    fprintf(out, "{\"at\": \"%s\", \"timezone\": ", at);
    ctl_put_json(out, tz);
    fprintf(out, ",\n \"tenants\": [");
    size_t i = 0;
    bool first_tenant = true;
    while (i < rep->n) {
        const char *tenant = rep->v[i].tenant;
        size_t end = i;
        while (end < rep->n && rep->v[end].account == NULL && strcmp(rep->v[end].tenant, tenant) == 0)
            end++;
        fprintf(out, "%s\n  {\"tenant\": ", first_tenant ? "" : ",");
        first_tenant = false;
        ctl_put_json(out, tenant);
        fprintf(out, ",\n   \"limits\": ");
        usage_json_limits(rep, i, end, "   ", out);
        fprintf(out, ",\n   \"accounts\": [");
        bool first_acc = true;
        i = end;
        while (i < rep->n && strcmp(rep->v[i].tenant, tenant) == 0) {
            end = i + 1;
            while (end < rep->n && same_scope(&rep->v[i], &rep->v[end]))
                end++;
            fprintf(out, "%s\n    {\"account\": ", first_acc ? "" : ",");
            first_acc = false;
            ctl_put_json(out, rep->v[i].account);
            fprintf(out, ", \"wildcard\": %s, \"limits\": ", rep->v[i].wildcard ? "true" : "false");
            usage_json_limits(rep, i, end, "     ", out);
            fputc('}', out);
            i = end;
        }
        fprintf(out, "]}");
    }
    fprintf(out, "]}\n");
}

/* Now, or --at. */
static bool ctl_at(const char *arg, int64_t *now_us)
{
    struct clock sys = clock_system();
    struct buf err;
    *now_us = clock_now_us(&sys);
    if (arg == NULL)
        return true;
    buf_init(&err);
    bool ok = ctl_time_parse(arg, *now_us, now_us, &err);
    if (!ok)
        fprintf(stderr, "posternctl: --at: %s\n", err.data);
    buf_free(&err);
    return ok;
}

static time_t us_to_s(int64_t us)
{
    int64_t s = us / 1000000;
    if (us % 1000000 < 0)
        s--;
    return (time_t)s;
}

int ctl_usage_show(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "at", required_argument, NULL, 'a' },
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool json = false;
    const char *at_arg = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'j')
            json = true;
        else if (ch == 'a')
            at_arg = optarg;
        else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg))
            return ctl_bad_usage(c);
    }
    if (argc - optind > 1)
        return ctl_bad_usage(c);
    const char *only = optind < argc ? argv[optind] : NULL;
    int64_t now_us;
    if (ctl_load_conf(c) != 0 || !ctl_at(at_arg, &now_us))
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    const struct tenant *one = NULL;
    if (only != NULL && (one = rules_tenant(r, only)) == NULL) {
        fprintf(stderr, "posternctl: no tenant named \"%s\" in %s\n", only, ctl_rules_dir(c));
        rules_unref(r);
        return 1;
    }
    struct store *s = ctl_store_open_ingested(c);
    if (s == NULL) {
        rules_unref(r);
        return 1;
    }
    struct counters *cn = counters_sqlite_open(s, clock_fixed(&now_us));
    struct ureport rep = { .now = us_to_s(now_us) };
    struct buf err;
    buf_init(&err);
    bool ok = true;
    for (size_t i = 0; ok && i < r->n_tenants; i++)
        if (one == NULL || one == &r->tenants[i])
            ok = usage_tenant(&rep, cn, &r->tenants[i], &err);
    if (!ok)
        fprintf(stderr, "posternctl: %s\n", err.data);
    else if (json)
        usage_print_json(&rep, c->conf.timezone, stdout);
    else
        usage_print_text(&rep, c->conf.timezone, stdout);
    buf_free(&err);
    ureport_free(&rep);
    counters_close(cn);
    store_close(s);
    rules_unref(r);
    return ok ? 0 : 1;
}

/* --- counters reset -------------------------------------------------------- */

struct reset_target {
    const struct tenant *t;
    char account[320];          /* "": the whole tenant */
    bool wildcard;              /* account is a login or sender of "*" */
    struct buf what;            /* in words */
    struct buf prefix[2];
    size_t nprefix;
};

static void reset_target_init(struct reset_target *rt)
{
    memset(rt, 0, sizeof *rt);
    buf_init(&rt->what);
    buf_init(&rt->prefix[0]);
    buf_init(&rt->prefix[1]);
}

static void reset_target_free(struct reset_target *rt)
{
    buf_free(&rt->what);
    buf_free(&rt->prefix[0]);
    buf_free(&rt->prefix[1]);
}

/* TENANT, ACCOUNT (a declared account's login or address, or a login or
 * sender of a tenant's "*" account), or TENANT:ACCOUNT as counted. */
static bool reset_resolve(const struct rules *r, const char *arg, struct reset_target *rt)
{
    const char *colon = strchr(arg, ':');
    const struct account *a;
    char lower[320];
    if ((rt->t = rules_tenant(r, arg)) != NULL) {
        usage_prefix(&rt->prefix[0], rt->t->name, NULL);
        usage_prefix(&rt->prefix[1], rt->t->name, "");
        rt->nprefix = 2;
        buf_printf(&rt->what, "tenant %s and its accounts", rt->t->name);
        return true;
    }
    if (colon != NULL) {
        char *tn = mem_strndup(arg, (size_t)(colon - arg));
        rt->t = rules_tenant(r, tn);
        mem_free(tn);
        lower_dup(rt->account, sizeof rt->account, colon + 1);
        if (rt->t == NULL || rt->account[0] == '\0' || strcmp(rt->account, "*") == 0)
            return false;
        const struct account *d = rules_find_login(r, rt->account);
        rt->wildcard = d == NULL || d->tenant != rt->t || strcmp(d->name, "*") == 0;
    } else {
        lower_dup(lower, sizeof lower, arg);
        if ((a = rules_find_login(r, lower)) == NULL && (a = rules_find_account(r, lower)) == NULL)
            return false;
        rt->t = a->tenant;
        rt->wildcard = strcmp(a->name, "*") == 0;
        snprintf(rt->account, sizeof rt->account, "%s", rt->wildcard ? lower : a->name);
    }
    usage_prefix(&rt->prefix[0], rt->t->name, rt->account);
    rt->nprefix = 1;
    if (rt->wildcard)
        buf_printf(&rt->what, "%s (\"*\" account of tenant %s)", rt->account, rt->t->name);
    else
        buf_printf(&rt->what, "account %s of tenant %s", rt->account, rt->t->name);
    return true;
}

/* "alice (uid 1000)", "alice via sudo (uid 0)" */
static void reset_who(struct buf *out)
{
    unsigned uid = (unsigned)getuid();
    const char *sudo = getenv("SUDO_USER");
    const char *login = getlogin();
    const struct passwd *pw = getpwuid(getuid());
    if (sudo != NULL && sudo[0] != '\0')
        buf_printf(out, "%s via sudo (uid %u)", sudo, uid);
    else if (login != NULL && login[0] != '\0')
        buf_printf(out, "%s (uid %u)", login, uid);
    else if (pw != NULL)
        buf_printf(out, "%s (uid %u)", pw->pw_name, uid);
    else
        buf_printf(out, "uid %u", uid);
}

static bool reset_confirm(const char *what, const char *scope)
{
    char line[32];
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "posternctl: counters reset of %s (%s) changes the quotas in force: "
                        "add --yes to confirm\n", what, scope);
        return false;
    }
    fprintf(stderr, "reset the counters of %s (%s)? [y/N] ", what, scope);
    fflush(stderr);
    if (fgets(line, sizeof line, stdin) != NULL && (line[0] == 'y' || line[0] == 'Y'))
        return true;
    fprintf(stderr, "posternctl: not confirmed: nothing was reset\n");
    return false;
}

/* The audit record's counters field: "KEY/UNIT=VALUE ...", with the
 * window start ("KEY/UNIT@START=VALUE") when every window of a unit went. */
static void reset_describe(const struct uset *rows, bool every_window, struct buf *out)
{
    char start[40];
    for (size_t i = 0; i < rows->n; i++) {
        const struct urow *w = &rows->v[i];
        if (out->len > 0)
            buf_putc(out, ' ');
        buf_printf(out, "%s/%s", w->key, window_unit_name(w->unit));
        if (every_window) {
            ctl_time_format(w->start, start, sizeof start);
            buf_printf(out, "@%s", start);
        }
        buf_printf(out, "=%" PRIu64, w->value);
    }
}

static void reset_print_text(const struct reset_target *rt, const char *scope, const struct uset *rows,
                             FILE *out)
{
    size_t wk = strlen("COUNTER"), wv = strlen("BEFORE");
    char s[40], e[40], v[24];
    if (rows->n == 0) {
        fprintf(out, "nothing to reset: no counters of %s (%s)\n", rt->what.data, scope);
        return;
    }
    fprintf(out, "reset %zu counter%s of %s (%s):\n", rows->n, rows->n == 1 ? "" : "s", rt->what.data,
            scope);
    for (size_t i = 0; i < rows->n; i++) {
        if (strlen(rows->v[i].key) > wk)
            wk = strlen(rows->v[i].key);
        snprintf(v, sizeof v, "%" PRIu64, rows->v[i].value);
        if (strlen(v) > wv)
            wv = strlen(v);
    }
    fprintf(out, "%-*s  %-6s  %*s  %-25s  %s\n", (int)wk, "COUNTER", "WINDOW", (int)wv, "BEFORE",
            "WINDOW START", "WINDOW END");
    for (size_t i = 0; i < rows->n; i++) {
        const struct urow *w = &rows->v[i];
        ctl_time_format(w->start, s, sizeof s);
        ctl_time_format(w->end, e, sizeof e);
        fprintf(out, "%-*s  %-6s  %*" PRIu64 "  %-25s  %s\n", (int)wk, w->key, window_unit_name(w->unit),
                (int)wv, w->value, s, e);
    }
}

static void reset_print_json(const struct reset_target *rt, const char *scope, const char *who,
                             const struct uset *rows, FILE *out)
{
    char s[40], e[40];
    fprintf(out, "{\"tenant\": ");
    ctl_put_json(out, rt->t->name);
    fprintf(out, ", \"account\": ");
    ctl_put_json(out, rt->account[0] ? rt->account : NULL);
    fprintf(out, ", \"wildcard\": %s, \"what\": ", rt->wildcard ? "true" : "false");
    ctl_put_json(out, rt->what.data);
    fprintf(out, ", \"scope\": ");
    ctl_put_json(out, scope);
    fprintf(out, ", \"by\": ");
    ctl_put_json(out, who);
    fprintf(out, ", \"count\": %zu,\n \"reset\": [", rows->n);
    for (size_t i = 0; i < rows->n; i++) {
        const struct urow *w = &rows->v[i];
        ctl_time_format(w->start, s, sizeof s);
        ctl_time_format(w->end, e, sizeof e);
        fprintf(out, "%s\n  {\"counter\": ", i ? "," : "");
        ctl_put_json(out, w->key);
        fprintf(out, ", \"window\": \"%s\", \"value\": %" PRIu64 ", \"window_start\": \"%s\", "
                     "\"window_end\": \"%s\"}",
                window_unit_name(w->unit), w->value, s, e);
    }
    fprintf(out, "%s]}\n", rows->n ? "\n" : "");
}

/* Reset and audit in one store batch: both or neither. */
static bool reset_run(struct store *s, struct counters *cn, const struct reset_target *rt, int unit,
                      const char *scope, const char *who, struct uset *rows, struct buf *err)
{
    const char *prefixes[2] = { rt->prefix[0].data, rt->prefix[1].data };
    struct buf reason, desc;
    size_t n = 0;
    if (!store_batch_begin(s, err))
        return false;
    if (!counters_reset(cn, prefixes, rt->nprefix, unit, uset_add, rows, &n, err)) {
        store_batch_rollback(s);
        return false;
    }
    uset_sort(rows);
    buf_init(&reason);
    buf_init(&desc);
    buf_printf(&reason, "counters of %s reset by %s: %s, %zu counter%s", rt->what.data, who, scope, n,
               n == 1 ? "" : "s");
    reset_describe(rows, unit != COUNTERS_CURRENT_WINDOWS, &desc);
    struct audit_rec rec = {
        .component = "ctl",
        .tenant = rt->t->name,
        .account = rt->account[0] ? rt->account : NULL,
        .stage = "admin",
        .action = "counters reset",
        .reason = reason.data,
        .rule = "ctl.counters_reset",
        .counters = desc.len ? desc.data : NULL,
    };
    bool ok = audit_write(s, &rec, err);
    buf_free(&reason);
    buf_free(&desc);
    if (!ok) {
        store_batch_rollback(s);
        return false;
    }
    return store_batch_commit(s, err);
}

/* --- counters reset: through the daemon, or in the store ---------------------- */

#define RESET_POLL_US 50000     /* how often the request's status is read */
#define RESET_TIMEOUT_S 10      /* default of --timeout */

/* Is postern-policyd running?  While it runs it holds an exclusive flock
 * on its pid file (policyd/main.c, pidfile_take): when a shared one
 * cannot be had it is there; a missing pid file or a lock had means it
 * is not.  False after printing why it cannot tell. */
static bool reset_daemon_running(const struct ctl *c, bool *running)
{
    const char *path = c->conf.policyd.pid_file;
    *running = false;
    if (path == NULL || path[0] == '\0')
        return true;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT)
        return true;
    if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) == 0) {
        close(fd);   /* and the lock with it */
        return true;
    }
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (fd >= 0 && e == EWOULDBLOCK) {
        *running = true;
        return true;
    }
    fprintf(stderr, "posternctl: pid file %s: %s: cannot tell whether postern-policyd is running\n", path,
            strerror(e));
    return false;
}

/* One row of the daemon's result, "KEY UNIT WINDOW_START WINDOW_END
 * VALUE" (line is cut up; a key may hold blanks: the four other fields
 * are taken from the end). */
static bool reset_row_parse(char *line, struct uset *rows)
{
    char *f[4], *end[3];
    enum window_unit unit;
    for (int i = 3; i >= 0; i--) {
        char *sp = strrchr(line, ' ');
        if (sp == NULL)
            return false;
        *sp = '\0';
        f[i] = sp + 1;
    }
    errno = 0;
    long long start = strtoll(f[1], &end[0], 10), stop = strtoll(f[2], &end[1], 10);
    unsigned long long value = strtoull(f[3], &end[2], 10);
    for (int i = 0; i < 3; i++)
        if (end[i] == f[i + 1] || *end[i] != '\0')
            return false;
    if (errno != 0 || line[0] == '\0' || !window_unit_parse(f[0], strlen(f[0]), &unit))
        return false;
    struct counter_row row = { line, unit, (uint64_t)value, (time_t)start, (time_t)stop };
    return uset_add(&row, rows);
}

/* The result of a request the daemon did: one row per line. */
static bool reset_rows_parse(const char *text, struct uset *rows)
{
    char *copy = mem_strdup(text), *save = NULL;
    bool ok = true;
    for (char *line = strtok_r(copy, "\n", &save); ok && line != NULL; line = strtok_r(NULL, "\n", &save))
        ok = reset_row_parse(line, rows);
    mem_free(copy);
    uset_sort(rows);
    return ok;
}

static void reset_sleep_us(int64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Wait until request id is done (*done) or the deadline, reading its
 * status every RESET_POLL_US; result = its rows. */
static bool reset_wait(struct store *s, int64_t id, uint64_t timeout_s, bool *done, struct buf *result,
                       struct buf *err)
{
    int64_t deadline = clock_mono_us() + (int64_t)timeout_s * 1000000;
    for (;;) {
        if (!journal_reset_status(s, id, done, result, err))
            return false;
        int64_t left = deadline - clock_mono_us();
        if (*done || left <= 0)
            return true;
        reset_sleep_us(left < RESET_POLL_US ? left : RESET_POLL_US);
    }
}

/* postern-policyd is running and owns the counters: queue the reset for
 * it (journal.h) and wait for it to be done; rows = what it reset.
 * False after printing. */
static bool reset_via_daemon(struct store *s, const struct reset_target *rt, int unit, const char *who,
                             uint64_t timeout_s, struct uset *rows)
{
    char *prefixes[2] = { rt->prefix[0].data, rt->prefix[1].data };
    struct journal_reset_req req = {
        .by = (char *)who,
        .tenant = (char *)rt->t->name,
        .account = (char *)rt->account,
        .what = rt->what.data,
        .prefixes = prefixes,
        .nprefixes = rt->nprefix,
        .unit = unit,
    };
    struct buf err, result;
    buf_init(&err);
    buf_init(&result);
    int64_t id = 0;
    bool done = false, ok = false;
    if (!journal_reset_request(s, &req, &id, &err))
        fprintf(stderr, "posternctl: cannot queue the counter reset for postern-policyd, nothing was reset: %s\n",
                err.data);
    else if (!reset_wait(s, id, timeout_s, &done, &result, &err))
        fprintf(stderr, "posternctl: counter reset request %lld queued, but its status cannot be read: %s\n",
                (long long)id, err.data);
    else if (!done)
        fprintf(stderr, "posternctl: postern-policyd did not take the reset within %llu s (is it serving? see "
                        "its log); the request stays queued and will be applied when it does\n",
                (unsigned long long)timeout_s);
    else if (!reset_rows_parse(result.data, rows))
        fprintf(stderr, "posternctl: postern-policyd did the counter reset (request %lld), but its list of "
                        "the counters reset cannot be read: \"%s\"\n", (long long)id, result.data);
    else
        ok = true;
    buf_free(&err);
    buf_free(&result);
    return ok;
}

/* postern-policyd is not running: ingest its journal first (no journaled
 * delta is lost, nor counted after the reset), then reset the store's
 * counters with their audit record (reset_run).  False after printing. */
static bool reset_direct(const struct ctl *c, struct store *s, const struct reset_target *rt, int unit,
                         const char *scope, const char *who, int64_t now_us, struct uset *rows)
{
    if (!ctl_journal_ingest(c, s, NULL, NULL))
        return false;
    log_open("posternctl", true, false, LOG_LVL_INFO);   /* the audit's log copy: syslog */
    struct counters *cn = counters_sqlite_open(s, clock_fixed(&now_us));
    struct buf err;
    buf_init(&err);
    bool ok = reset_run(s, cn, rt, unit, scope, who, rows, &err);
    if (!ok)
        fprintf(stderr, "posternctl: counters reset failed, nothing was reset: %s\n", err.data);
    buf_free(&err);
    counters_close(cn);
    return ok;
}

struct reset_opts {
    bool json, yes;
    const char *at;             /* --at, or NULL */
    int unit;                   /* --window, or COUNTERS_CURRENT_WINDOWS */
    uint64_t timeout_s;         /* --timeout */
};

/* The options of counters reset: -1 to go on, else the exit status (2:
 * a usage error, 0: --help printed). */
static int reset_options(struct ctl *c, int argc, char **argv, struct reset_opts *o)
{
    static const struct option opts[] = {
        { "window", required_argument, NULL, 'w' },
        { "yes", no_argument, NULL, 'y' },
        { "json", no_argument, NULL, 'j' },
        { "at", required_argument, NULL, 'a' },
        { "timeout", required_argument, NULL, 't' },
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char gerr[GRAM_ERR_MAX];
    enum window_unit wu;
    int ch;
    *o = (struct reset_opts){ .unit = COUNTERS_CURRENT_WINDOWS, .timeout_s = RESET_TIMEOUT_S };
    while ((ch = getopt_long(argc, argv, "c:r:yh", opts, NULL)) != -1) {
        if (ch == 'j') {
            o->json = true;
        } else if (ch == 'y') {
            o->yes = true;
        } else if (ch == 'a') {
            o->at = optarg;
        } else if (ch == 't') {
            if (!gram_uint(optarg, 86400, &o->timeout_s, gerr, sizeof gerr)) {
                fprintf(stderr, "posternctl: --timeout: %s\n", gerr);
                return 2;
            }
        } else if (ch == 'w') {
            if (!window_unit_parse(optarg, strlen(optarg), &wu)) {
                fprintf(stderr, "posternctl: --window: expected minute, hour, day, week or month, "
                                "found \"%s\"\n", optarg);
                return 2;
            }
            o->unit = (int)wu;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    return argc - optind == 1 ? -1 : ctl_bad_usage(c);
}

/* The state file, read-write; NULL after printing (missing, or not
 * writable by this user). */
static struct store *reset_store_open(const struct ctl *c)
{
    struct store *s = ctl_store_open(c, true);
    if (s != NULL && !ctl_store_writable(c)) {
        fprintf(stderr, "posternctl: cannot write the state in %s: run posternctl as root or as the "
                        "daemon's user to reset counters\n", c->conf.state_dir);
        store_close(s);
        s = NULL;
    }
    return s;
}

/* After the target is known: open the state, find out who owns the
 * counters (the running daemon, or the store), confirm, reset, print.
 * The exit status. */
static int reset_target_run(const struct ctl *c, const struct reset_target *rt, const struct reset_opts *o,
                            int64_t now_us)
{
    struct buf scope, who;
    struct uset rows = { 0 };
    bool running = false, ok = false;
    buf_init(&scope);
    buf_init(&who);
    if (o->unit == COUNTERS_CURRENT_WINDOWS)
        buf_puts(&scope, "current windows");
    else
        buf_printf(&scope, "every %s window", window_unit_name((enum window_unit)o->unit));
    reset_who(&who);
    struct store *s = reset_store_open(c);   /* a missing store: before asking */
    if (s == NULL || !reset_daemon_running(c, &running))
        goto out;
    if (running && o->at != NULL) {
        fprintf(stderr, "posternctl: --at cannot be used while postern-policyd is running: it resets the "
                        "counters it holds at its own time\n");
        goto out;
    }
    if (!o->yes && !reset_confirm(rt->what.data, scope.data))
        goto out;
    if (running)
        ok = reset_via_daemon(s, rt, o->unit, who.data, o->timeout_s, &rows);
    else
        ok = reset_direct(c, s, rt, o->unit, scope.data, who.data, now_us, &rows);
    if (ok && o->json)
        reset_print_json(rt, scope.data, who.data, &rows, stdout);
    else if (ok)
        reset_print_text(rt, scope.data, &rows, stdout);
out:
    store_close(s);
    uset_free(&rows);
    buf_free(&scope);
    buf_free(&who);
    return ok ? 0 : 1;
}

int ctl_counters_reset(struct ctl *c, int argc, char **argv)
{
    struct reset_opts o;
    int rc = reset_options(c, argc, argv, &o);
    if (rc >= 0)
        return rc;
    const char *arg = argv[optind];
    int64_t now_us;
    if (ctl_load_conf(c) != 0 || !ctl_at(o.at, &now_us))
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    struct reset_target rt;
    reset_target_init(&rt);
    rc = 1;
    if (!reset_resolve(r, arg, &rt))
        fprintf(stderr, "posternctl: no tenant or account \"%s\" in the rules of %s "
                        "(write TENANT:ACCOUNT for a login or sender of a \"*\" account)\n",
                arg, ctl_rules_dir(c));
    else
        rc = reset_target_run(c, &rt, &o, now_us);
    reset_target_free(&rt);
    rules_unref(r);
    return rc;
}
