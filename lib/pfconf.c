/* pfconf.c: what Postfix needs from postern's rules and postern.yaml, the
 * parsing of postconf's output and the comparison of the two (pfconf.h).
 * Pure: no I/O, the caller runs postconf and prints. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "cidr.h"
#include "pfconf.h"

/* ------------------------------------------------------------------ */
/* small helpers */

static void strv_add(char ***v, size_t *n, char *s)
{
    *v = mem_grow(*v, *n + 1, sizeof **v);
    (*v)[(*n)++] = s;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mem_free(v[i]);
    mem_free(v);
}

/* The text of b, b freed. */
static char *buf_take(struct buf *b)
{
    char *s = buf_detach(b);
    buf_free(b);
    return s;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    struct buf b;
    buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return buf_take(&b);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* s[0..n) without its leading and trailing blanks, as a new string. */
static char *trim_dup(const char *s, size_t n)
{
    while (n > 0 && is_blank(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    return mem_strndup(s, n);
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Two addresses: equal as addresses when both parse, else as text. */
static bool addr_eq(const char *a, const char *b)
{
    struct ipaddr x, y;
    if (a != NULL && b != NULL && ipaddr_parse(a, &x) && ipaddr_parse(b, &y))
        return memcmp(&x, &y, sizeof x) == 0;
    return str_eq(a, b);
}

static void pos_format(const struct rules_pos *p, struct buf *out)
{
    if (p->file != NULL)
        buf_printf(out, "%s:%d", p->file, p->line);
}

/* A word list as Postfix reads it (main.cf lists, master.cf arguments):
 * words separated by blanks (and by commas when commas), "{ text }" one
 * word, group set, its text without the braces and the blanks inside. */
struct word {
    char *s;
    bool group;
};

static size_t words_split(const char *text, bool commas, struct word **out)
{
    size_t n = 0;
    *out = NULL;
    const char *p = text;
    for (;;) {
        while (*p != '\0' && (is_blank(*p) || (commas && *p == ',')))
            p++;
        if (*p == '\0')
            break;
        struct word w = { NULL, false };
        if (*p == '{') {
            const char *q = p + 1;
            int depth = 1;
            while (*q != '\0' && depth > 0) {
                if (*q == '{')
                    depth++;
                else if (*q == '}')
                    depth--;
                if (depth > 0)
                    q++;
            }
            w.s = trim_dup(p + 1, (size_t)(q - (p + 1)));
            w.group = true;
            p = *q == '}' ? q + 1 : q;
        } else {
            const char *q = p;
            while (*q != '\0' && !is_blank(*q) && !(commas && *q == ','))
                q++;
            w.s = mem_strndup(p, (size_t)(q - p));
            p = q;
        }
        *out = mem_grow(*out, n + 1, sizeof **out);
        (*out)[n++] = w;
    }
    return n;
}

static void words_free(struct word *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mem_free(w[i].s);
    mem_free(w);
}

/* The logical lines of a Postfix configuration text: a line that starts
 * with a blank continues the one before; blank lines and comments (first
 * non-blank character '#') are skipped.  Calls fn for each, with the
 * number of its first line. */
static void logical_lines(const char *text, void (*fn)(void *arg, const char *line, int lineno), void *arg)
{
    struct buf cur;
    buf_init(&cur);
    int cur_line = 0, lineno = 0;
    bool have = false;
    const char *p = text;
    while (*p != '\0') {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        lineno++;
        size_t i = 0;
        while (i < len && is_blank(p[i]))
            i++;
        bool skip = i == len || p[i] == '#';
        if (!skip) {
            if (i > 0 && have) {
                buf_putc(&cur, ' ');
                buf_add(&cur, p + i, len - i);
            } else {
                if (have)
                    fn(arg, cur.data, cur_line);
                buf_reset(&cur);
                buf_add(&cur, p + i, len - i);
                cur_line = lineno;
                have = true;
            }
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    if (have)
        fn(arg, cur.data, cur_line);
    buf_free(&cur);
}

/* ------------------------------------------------------------------ */
/* endpoints */

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

char *pfconf_endpoint(const char *endpoint, const char *queue_dir)
{
    if (queue_dir == NULL)
        queue_dir = PFCONF_QUEUE_DIR;
    size_t q = strlen(queue_dir);
    while (q > 1 && queue_dir[q - 1] == '/')
        q--;
    if (starts(endpoint, "unix:")) {
        const char *path = endpoint + 5;
        if (strncmp(path, queue_dir, q) == 0 && path[q] == '/' && path[q + 1] != '\0')
            return str_printf("unix:%s", path + q + 1);
    }
    return mem_strdup(endpoint);
}

char *pfconf_endpoint_abs(const char *endpoint, const char *queue_dir)
{
    if (queue_dir == NULL)
        queue_dir = PFCONF_QUEUE_DIR;
    if (starts(endpoint, "inet:"))
        return mem_strdup(endpoint);
    const char *path = starts(endpoint, "unix:") ? endpoint + 5 : endpoint;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "unix:");
    if (path[0] != '/') {
        buf_puts(&b, queue_dir);
        buf_putc(&b, '/');
    }
    /* "//" and "/./" read as "/" */
    for (const char *p = path; *p != '\0'; p++) {
        if (*p == '/' && b.len > 0 && b.data[b.len - 1] == '/')
            continue;
        if (*p == '.' && p[1] == '/' && b.len > 0 && b.data[b.len - 1] == '/') {
            p++;
            continue;
        }
        buf_putc(&b, *p);
    }
    return buf_take(&b);
}

/* ------------------------------------------------------------------ */
/* what postern wants */

static void param_add(struct pfconf_want *w, const char *name, char *value, char *want, enum pfconf_match m)
{
    w->params = mem_grow(w->params, w->n_params + 1, sizeof *w->params);
    w->params[w->n_params++] = (struct pfconf_param){ mem_strdup(name), value, want, m };
}

/* The policy endpoint Postfix should call: a unix socket under the queue
 * directory (chrooted smtpd reaches it), else an inet one, else the first. */
static const char *policy_pick(const struct postern_conf *c, const char *queue_dir)
{
    const struct conf_list *l = &c->policyd.listen;
    for (size_t i = 0; i < l->n; i++) {
        char *e = pfconf_endpoint(l->v[i], queue_dir);
        bool rel = starts(e, "unix:") && e[5] != '/';
        mem_free(e);
        if (rel)
            return l->v[i];
    }
    for (size_t i = 0; i < l->n; i++)
        if (starts(l->v[i], "inet:"))
            return l->v[i];
    return l->n > 0 ? l->v[0] : NULL;
}

static int addr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int transport_cmp(const void *a, const void *b)
{
    return strcmp(((const struct pfconf_transport *)a)->name, ((const struct pfconf_transport *)b)->name);
}

/* A pool with more addresses than one transport binds. */
static void extra_warn(struct pfconf_want *w, const struct pfconf_transport *t, size_t extra4, size_t extra6)
{
    struct buf m;
    buf_init(&m);
    buf_printf(&m, "transport %s has %zu IPv4 and %zu IPv6 addresses (", t->name,
               (size_t)(t->bind4 != NULL) + extra4, (size_t)(t->bind6 != NULL) + extra6);
    pos_format(&t->pos, &m);
    buf_printf(&m, "): one smtp transport binds one of each; it binds %s%s%s, the others are not used",
               t->bind4 ? t->bind4 : "", t->bind4 && t->bind6 ? " and " : "", t->bind6 ? t->bind6 : "");
    strv_add(&w->warnings, &w->n_warnings, buf_take(&m));
}

static void outbound_add(struct pfconf_want *w, const struct outbound *o, const char *user)
{
    if (!o->set || o->transport == NULL)
        return;
    struct pfconf_transport t = { 0 };
    t.name = mem_strdup(o->transport);
    t.manual = o->n_ips == 0;
    t.helo = o->helo ? mem_strdup(o->helo) : NULL;
    t.pos = o->pos;
    char **all = mem_array(o->n_ips ? o->n_ips : 1, sizeof *all);
    size_t extra4 = 0, extra6 = 0;
    for (size_t i = 0; i < o->n_ips; i++) {
        char a[64];
        ipaddr_format(&o->ips[i], a, sizeof a);
        all[i] = mem_strdup(a);
        char **slot = ipaddr_is_v4(&o->ips[i]) ? &t.bind4 : &t.bind6;
        if (*slot == NULL)
            *slot = mem_strdup(a);
        else if (ipaddr_is_v4(&o->ips[i]))
            extra4++;
        else
            extra6++;
    }
    qsort(all, o->n_ips, sizeof *all, addr_cmp);
    struct buf ips;
    buf_init(&ips);
    for (size_t i = 0; i < o->n_ips; i++)
        buf_printf(&ips, "%s%s", i ? " " : "", all[i]);
    strv_free(all, o->n_ips);
    t.ips = buf_take(&ips);

    struct pfconf_transport *have = NULL;
    for (size_t i = 0; i < w->n_transports && have == NULL; i++)
        if (strcmp(w->transports[i].name, t.name) == 0)
            have = &w->transports[i];
    if (have == NULL) {
        if (extra4 || extra6)
            extra_warn(w, &t, extra4, extra6);
        strv_add(&t.users, &t.n_users, mem_strdup(user));
        w->transports = mem_grow(w->transports, w->n_transports + 1, sizeof *w->transports);
        w->transports[w->n_transports++] = t;
        return;
    }
    bool known = false;
    for (size_t i = 0; i < have->n_users && !known; i++)
        known = strcmp(have->users[i], user) == 0;
    if (!known)
        strv_add(&have->users, &have->n_users, mem_strdup(user));
    if (t.manual) {
        /* names a transport set up elsewhere: nothing to compare */
    } else if (have->manual) {
        /* the first with ips sets it */
        if (extra4 || extra6)
            extra_warn(w, &t, extra4, extra6);
        char **u = have->users;
        size_t nu = have->n_users;
        have->users = NULL;
        have->n_users = 0;
        mem_free(have->name);
        mem_free(have->ips);
        mem_free(have->helo);
        *have = t;
        have->users = u;
        have->n_users = nu;
        return;
    } else if (strcmp(have->ips, t.ips) != 0 || !str_eq(have->helo, t.helo)) {
        struct buf m;
        buf_init(&m);
        buf_printf(&m, "transport %s is set up differently: ips [%s] helo %s (", t.name, have->ips,
                   have->helo ? have->helo : "-");
        pos_format(&have->pos, &m);
        buf_printf(&m, ") and ips [%s] helo %s (", t.ips, t.helo ? t.helo : "-");
        pos_format(&t.pos, &m);
        buf_puts(&m, ")");
        strv_add(&w->errors, &w->n_errors, buf_take(&m));
    }
    mem_free(t.name);
    mem_free(t.bind4);
    mem_free(t.bind6);
    mem_free(t.helo);
    mem_free(t.ips);
}

void pfconf_want_build(struct pfconf_want *w, const struct rules *r, const struct postern_conf *c,
                       const char *queue_dir)
{
    memset(w, 0, sizeof *w);
    w->queue_dir = mem_strdup(queue_dir ? queue_dir : PFCONF_QUEUE_DIR);
    if (c->milter.listen != NULL) {
        w->milter = mem_strdup(c->milter.listen);
        char *m = pfconf_endpoint(c->milter.listen, w->queue_dir);
        param_add(w, "smtpd_milters", mem_strdup(m), m, PFCONF_MILTER);
        param_add(w, "non_smtpd_milters", mem_strdup("$smtpd_milters"), pfconf_endpoint(c->milter.listen,
                  w->queue_dir), PFCONF_MILTER);
        param_add(w, "milter_default_action", mem_strdup("tempfail"), mem_strdup("tempfail"), PFCONF_EQUAL);
        param_add(w, "milter_protocol", mem_strdup("6"), mem_strdup("6"), PFCONF_EQUAL);
    }
    for (size_t i = 0; i < c->policyd.listen.n; i++)
        strv_add(&w->policy, &w->n_policy, mem_strdup(c->policyd.listen.v[i]));
    const char *pick = policy_pick(c, w->queue_dir);
    if (pick != NULL) {
        char *e = pfconf_endpoint(pick, w->queue_dir);
        param_add(w, "smtpd_recipient_restrictions", str_printf("..., check_policy_service %s, ...", e),
                  str_printf("check_policy_service %s", e), PFCONF_POLICY);
        param_add(w, "smtpd_end_of_data_restrictions", str_printf("check_policy_service %s", e),
                  str_printf("check_policy_service %s", e), PFCONF_POLICY);
        mem_free(e);
    }
    for (size_t i = 0; r != NULL && i < r->n_tenants; i++) {
        const struct tenant *t = &r->tenants[i];
        char *u = str_printf("tenant %s", t->name);
        outbound_add(w, &t->outbound, u);
        mem_free(u);
        for (size_t j = 0; j < t->n_accounts; j++) {
            const struct account *a = &t->accounts[j];
            u = str_printf("account %s (tenant %s)", a->name, t->name);
            outbound_add(w, &a->outbound, u);
            mem_free(u);
        }
    }
    if (w->n_transports > 1)
        qsort(w->transports, w->n_transports, sizeof *w->transports, transport_cmp);
}

void pfconf_want_free(struct pfconf_want *w)
{
    mem_free(w->queue_dir);
    mem_free(w->milter);
    strv_free(w->policy, w->n_policy);
    for (size_t i = 0; i < w->n_params; i++) {
        mem_free(w->params[i].name);
        mem_free(w->params[i].value);
        mem_free(w->params[i].want);
    }
    mem_free(w->params);
    for (size_t i = 0; i < w->n_transports; i++) {
        struct pfconf_transport *t = &w->transports[i];
        mem_free(t->name);
        mem_free(t->bind4);
        mem_free(t->bind6);
        mem_free(t->helo);
        mem_free(t->ips);
        strv_free(t->users, t->n_users);
    }
    mem_free(w->transports);
    strv_free(w->errors, w->n_errors);
    strv_free(w->warnings, w->n_warnings);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------------ */
/* printing */

void pfconf_print_main(const struct pfconf_want *w, struct buf *out)
{
    buf_puts(out, "# main.cf (posternctl postfix-config)\n");
    for (size_t i = 0; i < w->n_params; i++) {
        const struct pfconf_param *p = &w->params[i];
        if (strcmp(p->name, "smtpd_recipient_restrictions") == 0)
            buf_printf(out, "# %s must hold \"%s\" (before the rules that permit relaying);\n"
                            "# \"...\" stands for the rest of your list\n", p->name, p->want);
        else if (strcmp(p->name, "smtpd_end_of_data_restrictions") == 0)
            buf_printf(out, "# %s must hold \"%s\"\n", p->name, p->want);
        buf_printf(out, "%s = %s\n", p->name, p->value);
    }
}

void pfconf_transport_line(const struct pfconf_transport *t, struct buf *out)
{
    buf_printf(out, "%s unix - - n - - smtp", t->name);
    if (t->bind4)
        buf_printf(out, " -o smtp_bind_address=%s", t->bind4);
    if (t->bind6)
        buf_printf(out, " -o smtp_bind_address6=%s", t->bind6);
    if (t->helo)
        buf_printf(out, " -o smtp_helo_name=%s", t->helo);
}

static void users_print(const struct pfconf_transport *t, struct buf *out)
{
    for (size_t i = 0; i < t->n_users; i++)
        buf_printf(out, "%s%s", i ? ", " : "", t->users[i]);
}

void pfconf_print_master(const struct pfconf_want *w, struct buf *out)
{
    buf_puts(out, "# master.cf: one smtp transport per outbound pool (posternctl postfix-config)\n");
    for (size_t i = 0; i < w->n_transports; i++) {
        const struct pfconf_transport *t = &w->transports[i];
        if (t->manual)
            continue;
        buf_puts(out, "# ");
        users_print(t, out);
        buf_puts(out, " (");
        pos_format(&t->pos, out);
        buf_puts(out, ")\n");
        pfconf_transport_line(t, out);
        buf_putc(out, '\n');
    }
    for (size_t i = 0; i < w->n_transports; i++) {
        const struct pfconf_transport *t = &w->transports[i];
        if (!t->manual)
            continue;
        buf_printf(out, "# %s: managed by hand (no ips in the rules: ", t->name);
        pos_format(&t->pos, out);
        buf_puts(out, "), used by ");
        users_print(t, out);
        buf_putc(out, '\n');
    }
}

/* ------------------------------------------------------------------ */
/* postconf -n */

static void main_line(void *arg, const char *line, int lineno)
{
    (void)lineno;
    struct pfconf_main *m = arg;
    const char *eq = strchr(line, '=');
    if (eq == NULL || eq == line) {
        m->n_bad++;
        return;
    }
    char *name = trim_dup(line, (size_t)(eq - line));
    bool ok = name[0] != '\0';
    for (const char *p = name; *p != '\0'; p++)
        ok = ok && !is_blank(*p);
    if (!ok) {
        mem_free(name);
        m->n_bad++;
        return;
    }
    m->names = mem_grow(m->names, m->n + 1, sizeof *m->names);
    m->values = mem_grow(m->values, m->n + 1, sizeof *m->values);
    m->names[m->n] = name;
    m->values[m->n] = trim_dup(eq + 1, strlen(eq + 1));
    m->n++;
}

void pfconf_main_parse(const char *text, struct pfconf_main *m)
{
    memset(m, 0, sizeof *m);
    logical_lines(text, main_line, m);
}

void pfconf_main_free(struct pfconf_main *m)
{
    strv_free(m->names, m->n);
    strv_free(m->values, m->n);
    memset(m, 0, sizeof *m);
}

const char *pfconf_main_get(const struct pfconf_main *m, const char *name)
{
    for (size_t i = m != NULL ? m->n : 0; i-- > 0;)
        if (strcmp(m->names[i], name) == 0)
            return m->values[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* postconf -M */

static void opt_add(struct pfconf_service *s, const struct word *w)
{
    struct pfconf_opt o = { NULL, NULL };
    const char *eq = strchr(w->s, '=');
    if (eq == NULL) {
        o.name = mem_strdup(w->s);
    } else {
        o.name = trim_dup(w->s, (size_t)(eq - w->s));
        o.value = trim_dup(eq + 1, strlen(eq + 1));
    }
    s->opts = mem_grow(s->opts, s->n_opts + 1, sizeof *s->opts);
    s->opts[s->n_opts++] = o;
}

static void master_line(void *arg, const char *line, int lineno)
{
    struct pfconf_master *m = arg;
    struct word *w;
    size_t n = words_split(line, false, &w);
    if (n < 8) {
        m->n_bad++;
        words_free(w, n);
        return;
    }
    struct pfconf_service s = { 0 };
    s.name = mem_strdup(w[0].s);
    s.type = mem_strdup(w[1].s);
    for (int i = 0; i < 5; i++)
        s.fields[i] = mem_strdup(w[2 + i].s);
    s.command = mem_strdup(w[7].s);
    s.line = lineno;
    for (size_t i = 8; i < n; i++) {
        if (!w[i].group && strcmp(w[i].s, "-o") == 0 && i + 1 < n) {
            opt_add(&s, &w[++i]);
        } else if (!w[i].group && starts(w[i].s, "-o") && w[i].s[2] != '\0') {
            struct word rest = { w[i].s + 2, false };
            opt_add(&s, &rest);
        } else {
            strv_add(&s.args, &s.n_args, mem_strdup(w[i].s));
        }
    }
    words_free(w, n);
    m->v = mem_grow(m->v, m->n + 1, sizeof *m->v);
    m->v[m->n++] = s;
}

void pfconf_master_parse(const char *text, struct pfconf_master *m)
{
    memset(m, 0, sizeof *m);
    logical_lines(text, master_line, m);
}

void pfconf_master_free(struct pfconf_master *m)
{
    for (size_t i = 0; i < m->n; i++) {
        struct pfconf_service *s = &m->v[i];
        mem_free(s->name);
        mem_free(s->type);
        for (int j = 0; j < 5; j++)
            mem_free(s->fields[j]);
        mem_free(s->command);
        for (size_t j = 0; j < s->n_opts; j++) {
            mem_free(s->opts[j].name);
            mem_free(s->opts[j].value);
        }
        mem_free(s->opts);
        strv_free(s->args, s->n_args);
    }
    mem_free(m->v);
    memset(m, 0, sizeof *m);
}

const char *pfconf_service_opt(const struct pfconf_service *s, const char *name, bool *bad)
{
    const char *v = NULL;
    if (bad != NULL)
        *bad = false;
    for (size_t i = 0; i < s->n_opts; i++) {
        if (strcmp(s->opts[i].name, name) != 0)
            continue;
        if (s->opts[i].value == NULL) {
            if (bad != NULL)
                *bad = true;
        } else {
            v = s->opts[i].value;
        }
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* comparing */

static void diff_add(struct pfconf_diffs *d, const char *where, const char *name, const char *key,
                     const char *have, const char *want, const struct rules_pos *pos, char *text)
{
    struct pfconf_diff x = { where, mem_strdup(name), mem_strdup(key), have ? mem_strdup(have) : NULL,
                             want ? mem_strdup(want) : NULL, NULL, NULL };
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s: %s", where, text);
    if (pos != NULL && pos->file != NULL) {
        struct buf p;
        buf_init(&p);
        pos_format(pos, &p);
        x.rules = buf_take(&p);
        buf_printf(&b, " (%s)", x.rules);
    }
    mem_free(text);
    x.text = buf_take(&b);
    d->v = mem_grow(d->v, d->n + 1, sizeof *d->v);
    d->v[d->n++] = x;
}

void pfconf_diffs_free(struct pfconf_diffs *d)
{
    for (size_t i = 0; i < d->n; i++) {
        mem_free(d->v[i].name);
        mem_free(d->v[i].key);
        mem_free(d->v[i].have);
        mem_free(d->v[i].want);
        mem_free(d->v[i].rules);
        mem_free(d->v[i].text);
    }
    mem_free(d->v);
    memset(d, 0, sizeof *d);
}

struct lookup {
    const struct pfconf_main *explicit, *defaults;
};

static const char *lookup_get(const struct lookup *l, const char *name, bool *is_default)
{
    const char *v = l->explicit ? pfconf_main_get(l->explicit, name) : NULL;
    *is_default = false;
    if (v == NULL && l->defaults != NULL) {
        v = pfconf_main_get(l->defaults, name);
        *is_default = v != NULL;
    }
    return v;
}

/* The words of a list value, "$name" and "${name}" replaced by the words
 * of that parameter (a few levels deep). */
static void list_expand(const struct lookup *l, const char *value, int depth, struct word **out, size_t *n)
{
    struct word *w;
    size_t k = words_split(value, true, &w);
    for (size_t i = 0; i < k; i++) {
        char *ref = NULL;
        const char *s = w[i].s;
        if (!w[i].group && s[0] == '$') {
            if (s[1] == '{' || s[1] == '(') {
                size_t len = strlen(s);
                if (len > 3 && (s[len - 1] == '}' || s[len - 1] == ')'))
                    ref = mem_strndup(s + 2, len - 3);
            } else if (s[1] != '\0') {
                ref = mem_strdup(s + 1);
            }
        }
        bool dflt;
        const char *v = ref ? lookup_get(l, ref, &dflt) : NULL;
        if (ref != NULL && depth < 8) {
            if (v != NULL)
                list_expand(l, v, depth + 1, out, n);
            mem_free(w[i].s);
        } else {
            *out = mem_grow(*out, *n + 1, sizeof **out);
            (*out)[(*n)++] = w[i];
        }
        mem_free(ref);
    }
    mem_free(w);
}

/* The first word of a "{ endpoint, option=... }" group, or the word. */
static char *word_endpoint(const struct word *w)
{
    if (!w->group)
        return mem_strdup(w->s);
    size_t n = strcspn(w->s, " \t,");
    return mem_strndup(w->s, n);
}

static bool endpoint_in(const char *e, char *const *v, size_t n, const char *queue_dir)
{
    char *a = pfconf_endpoint_abs(e, queue_dir);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
        char *b = pfconf_endpoint_abs(v[i], queue_dir);
        found = strcmp(a, b) == 0;
        mem_free(b);
    }
    mem_free(a);
    return found;
}

/* Does the list hold what p wants? */
static bool list_holds(const struct pfconf_want *w, const struct pfconf_param *p, const struct word *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p->match == PFCONF_MILTER) {
            char *e = word_endpoint(&v[i]);
            char *m = w->milter;
            bool ok = endpoint_in(e, &m, 1, w->queue_dir);
            mem_free(e);
            if (ok)
                return true;
        } else if (!v[i].group && strcmp(v[i].s, "check_policy_service") == 0 && i + 1 < n) {
            char *e = word_endpoint(&v[i + 1]);
            bool ok = endpoint_in(e, w->policy, w->n_policy, w->queue_dir);
            mem_free(e);
            if (ok)
                return true;
        }
    }
    return false;
}

static void compare_main(const struct pfconf_want *w, const struct lookup *l, struct pfconf_diffs *out)
{
    for (size_t i = 0; i < w->n_params; i++) {
        const struct pfconf_param *p = &w->params[i];
        bool dflt;
        const char *have = lookup_get(l, p->name, &dflt);
        const char *how = dflt ? " (Postfix's default)" : "";
        if (p->match == PFCONF_EQUAL) {
            if (have == NULL)
                diff_add(out, "main.cf", p->name, p->name, NULL, p->want, NULL,
                         str_printf("%s is not set, postern wants %s", p->name, p->want));
            else if (strcmp(have, p->want) != 0)
                diff_add(out, "main.cf", p->name, p->name, have, p->want, NULL,
                         str_printf("%s is %s%s, postern wants %s", p->name, have, how, p->want));
            continue;
        }
        struct word *v = NULL;
        size_t n = 0;
        if (have != NULL)
            list_expand(l, have, 0, &v, &n);
        bool ok = list_holds(w, p, v, n);
        words_free(v, n);
        if (ok)
            continue;
        if (have == NULL || have[0] == '\0')
            diff_add(out, "main.cf", p->name, p->name, have, p->want, NULL,
                     str_printf("%s is empty%s, postern wants it to hold %s", p->name, how, p->want));
        else
            diff_add(out, "main.cf", p->name, p->name, have, p->want, NULL,
                     str_printf("%s is \"%s\"%s, which does not hold %s", p->name, have, how, p->want));
    }
}

static void compare_opt(const struct pfconf_transport *t, const struct pfconf_service *s, const char *key,
                        const char *want, struct pfconf_diffs *out)
{
    bool bad;
    const char *have = pfconf_service_opt(s, key, &bad);
    if (bad)
        diff_add(out, "master.cf", t->name, key, "-o without '='", want, &t->pos,
                 str_printf("transport %s: \"-o %s\" has no '=' (Postfix reads -o name=value or "
                            "-o { name = value })", t->name, key));
    if (want == NULL && have == NULL)
        return;
    if (want == NULL)
        diff_add(out, "master.cf", t->name, key, have, NULL, &t->pos,
                 str_printf("transport %s: %s is %s, the rules set none", t->name, key, have));
    else if (have == NULL)
        diff_add(out, "master.cf", t->name, key, NULL, want, &t->pos,
                 str_printf("transport %s: %s is not set, the rules want %s", t->name, key, want));
    else if (strcmp(key, "smtp_helo_name") == 0 ? strcasecmp(have, want) != 0 : !addr_eq(have, want))
        diff_add(out, "master.cf", t->name, key, have, want, &t->pos,
                 str_printf("transport %s: %s is %s, the rules want %s", t->name, key, have, want));
}

static void compare_master(const struct pfconf_want *w, const struct pfconf_master *m, struct pfconf_diffs *out)
{
    for (size_t i = 0; i < w->n_transports; i++) {
        const struct pfconf_transport *t = &w->transports[i];
        const struct pfconf_service *unix_svc = NULL, *other = NULL;
        size_t n_unix = 0;
        for (size_t j = 0; m != NULL && j < m->n; j++) {
            if (strcmp(m->v[j].name, t->name) != 0)
                continue;
            if (strcmp(m->v[j].type, "unix") == 0) {
                if (unix_svc == NULL)
                    unix_svc = &m->v[j];
                n_unix++;
            } else if (other == NULL) {
                other = &m->v[j];
            }
        }
        if (unix_svc == NULL && other != NULL) {
            diff_add(out, "master.cf", t->name, "type", other->type, "unix", &t->pos,
                     str_printf("transport %s is of type %s, the rules want a unix smtp transport", t->name,
                                other->type));
            continue;
        }
        if (unix_svc == NULL) {
            if (t->manual) {
                diff_add(out, "master.cf", t->name, "service", NULL, t->name, &t->pos,
                         str_printf("transport %s is missing (managed by hand: the rules name it without ips)",
                                    t->name));
            } else {
                struct buf line;
                buf_init(&line);
                pfconf_transport_line(t, &line);
                diff_add(out, "master.cf", t->name, "service", NULL, line.data, &t->pos,
                         str_printf("transport %s is missing, the rules want: %s", t->name, line.data));
                buf_free(&line);
            }
            continue;
        }
        if (n_unix > 1)
            diff_add(out, "master.cf", t->name, "service", "defined more than once", t->name, &t->pos,
                     str_printf("transport %s is defined %zu times", t->name, n_unix));
        if (t->manual)
            continue;
        const char *cmd = strrchr(unix_svc->command, '/');
        cmd = cmd ? cmd + 1 : unix_svc->command;
        if (strcmp(cmd, "smtp") != 0) {
            diff_add(out, "master.cf", t->name, "command", unix_svc->command, "smtp", &t->pos,
                     str_printf("transport %s runs %s, the rules want smtp", t->name, unix_svc->command));
            continue;
        }
        compare_opt(t, unix_svc, "smtp_bind_address", t->bind4, out);
        compare_opt(t, unix_svc, "smtp_bind_address6", t->bind6, out);
        compare_opt(t, unix_svc, "smtp_helo_name", t->helo, out);
    }
}

void pfconf_compare(const struct pfconf_want *w, const struct pfconf_main *explicit,
                    const struct pfconf_main *defaults, const struct pfconf_master *master,
                    struct pfconf_diffs *out)
{
    struct lookup l = { explicit, defaults };
    compare_main(w, &l, out);
    compare_master(w, master, out);
}
