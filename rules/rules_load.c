/* rules_load.c: one tenant file (YAML) -> struct tenant, checking every
 * key and value and reporting file:line:column for each error found. */
#include "rules_load.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "ydoc.h"

/* Walker context: the file being read and where errors go. */
struct rl {
    const char *file;
    struct diags *d;
    size_t errors;
};

__attribute__((format(printf, 4, 5)))
static void rl_err(struct rl *c, const struct ynode *n, const char *path, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    buf_init(&b);
    if (path && *path)
        buf_printf(&b, "%s: ", path);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    diag_at(c->d, c->file, n ? n->line : 0, n ? n->col : 0, "%s", b.data);
    buf_free(&b);
    c->errors++;
}

static struct rules_pos rl_pos(const struct rl *c, const struct ynode *n)
{
    return (struct rules_pos){ c->file, n->line, n->col };
}

static void rl_path(char *out, size_t size, const char *parent, const char *key)
{
    if (parent && *parent)
        snprintf(out, size, "%s.%s", parent, key);
    else
        snprintf(out, size, "%s", key);
}

/* A scalar with no NUL byte, else an error "expected <what>". */
static const char *rl_scalar(struct rl *c, const struct ynode *n, const char *path, const char *what)
{
    char found[64];
    if (n->kind != Y_SCALAR) {
        rl_err(c, n, path, "expected %s, found %s", what, ynode_repr(n, found, sizeof found));
        return NULL;
    }
    if (strlen(n->str) != n->len) {
        rl_err(c, n, path, "expected %s, found a value holding a NUL byte", what);
        return NULL;
    }
    return n->str;
}

/* A mapping whose keys are all in allowed[]; unknown keys are errors. */
static bool rl_map(struct rl *c, const struct ynode *n, const char *path, const char *what,
                   const char *const *allowed)
{
    char found[64];
    if (n->kind != Y_MAP) {
        rl_err(c, n, path, "expected %s, found %s", what, ynode_repr(n, found, sizeof found));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n->n; i++) {
        size_t k;
        for (k = 0; allowed[k]; k++)
            if (strcmp(n->keys[i]->str, allowed[k]) == 0)
                break;
        if (allowed[k])
            continue;
        struct buf list;
        buf_init(&list);
        for (k = 0; allowed[k]; k++)
            buf_printf(&list, "%s%s", k ? ", " : "", allowed[k]);
        rl_err(c, n->keys[i], path, "unknown key \"%s\" (expected one of: %s)", n->keys[i]->str,
               list.data);
        buf_free(&list);
        ok = false;
    }
    return ok;
}

/* Value of a scalar through a grammar function taking (s, out, err, size). */
#define RL_GRAM(c, n, path, what, call)                                        \
    __extension__({                                                            \
        const char *s_ = rl_scalar((c), (n), (path), (what));                  \
        char err[GRAM_ERR_MAX];                                                \
        bool ok_ = false;                                                      \
        if (s_ != NULL) {                                                      \
            const char *s = s_;                                                \
            ok_ = (call);                                                      \
            if (!ok_)                                                          \
                rl_err((c), (n), (path), "%s", err);                           \
        }                                                                      \
        ok_;                                                                   \
    })

static const char *const on_exceed_words[] = { "defer", "reject", "hold", NULL };
static const char *const pace_mode_words[] = { "delay", "defer", "hold", NULL };
static const char *const av_words[] = { "reject", "tempfail", "quarantine", "off", NULL };
static const char *const spam_words[] = { "header", "quarantine", "reject", "off", NULL };
static const char *const inbound_words[] = { "off", "header", "enforce", NULL };

const char *const rules_on_exceed_names[] = { "defer", "reject", "hold", NULL };
const char *const rules_pace_mode_names[] = { "delay", "defer", "hold", NULL };
const char *const rules_av_names[] = { "reject", "tempfail", "quarantine", "off", NULL };
const char *const rules_spam_names[] = { "header", "quarantine", "reject", "off", NULL };
const char *const rules_inbound_names[] = { "off", "header", "enforce", NULL };

static bool rl_enum(struct rl *c, const struct ynode *n, const char *path, const char *const *words, int *out)
{
    return RL_GRAM(c, n, path, "a word", gram_enum(s, words, out, err, sizeof err));
}

static void outbound_free(struct outbound *o)
{
    mem_free(o->transport);
    mem_free(o->ips);
    mem_free(o->helo);
}

static bool rl_outbound(struct rl *c, const struct ynode *n, const char *path, struct outbound *o)
{
    static const char *const keys[] = { "transport", "ips", "helo", NULL };
    char p[128];
    memset(o, 0, sizeof *o);
    if (!rl_map(c, n, path, "a mapping {transport, ips, helo}", keys))
        return false;
    o->set = true;
    o->pos = rl_pos(c, n);
    const struct ynode *v;
    if ((v = ynode_get(n, "transport")) != NULL) {
        rl_path(p, sizeof p, path, "transport");
        if (RL_GRAM(c, v, p, "a transport name", gram_name(s, "a master.cf service name", err, sizeof err)))
            o->transport = mem_strdup(v->str);
    } else {
        rl_err(c, n, path, "missing key \"transport\" (the master.cf service that delivers this mail)");
    }
    if ((v = ynode_get(n, "ips")) != NULL) {
        rl_path(p, sizeof p, path, "ips");
        char found[64];
        if (v->kind != Y_SEQ) {
            rl_err(c, v, p, "expected a list of IP addresses, found %s", ynode_repr(v, found, sizeof found));
        } else {
            o->ips = mem_array(v->n ? v->n : 1, sizeof *o->ips);
            for (size_t i = 0; i < v->n; i++) {
                const char *s = rl_scalar(c, v->items[i], p, "an IP address");
                if (s == NULL)
                    continue;
                struct ipaddr a;
                if (!ipaddr_parse(s, &a)) {
                    rl_err(c, v->items[i], p, "expected an IPv4 or IPv6 address, found %s",
                           ynode_repr(v->items[i], found, sizeof found));
                    continue;
                }
                for (size_t k = 0; k < o->n_ips; k++)
                    if (memcmp(&o->ips[k], &a, sizeof a) == 0)
                        rl_err(c, v->items[i], p, "address %s listed twice", s);
                o->ips[o->n_ips++] = a;
            }
        }
    }
    if ((v = ynode_get(n, "helo")) != NULL) {
        char h[GRAM_DOMAIN_MAX + 1];
        rl_path(p, sizeof p, path, "helo");
        if (RL_GRAM(c, v, p, "a host name", gram_hostname(s, h, sizeof h, err, sizeof err)))
            o->helo = mem_strdup(h);
    }
    return true;
}

static void rl_quotas(struct rl *c, const struct ynode *n, const char *path, bool bytes, struct quota *q)
{
    const struct ynode *one = n;
    size_t count = 1;
    if (n->kind == Y_SEQ) {
        count = n->n;
        if (count == 0)
            rl_err(c, n, path, "expected at least one quota in the list");
    }
    for (size_t i = 0; i < count; i++) {
        if (n->kind == Y_SEQ)
            one = n->items[i];
        struct quota v;
        if (!RL_GRAM(c, one, path, bytes ? "a byte quota like 10G/day" : "a quota like 500/day",
                     gram_quota(s, bytes, &v, err, sizeof err)))
            continue;
        if (v.unlimited) {
            if (count > 1) {
                rl_err(c, one, path, "\"unlimited\" cannot be combined with other quotas");
                continue;
            }
            for (int u = 0; u < WIN_COUNT; u++)
                q[u] = v;
            continue;
        }
        if (q[v.unit].set) {
            rl_err(c, one, path, "two quotas per %s (keep one)", window_unit_name(v.unit));
            continue;
        }
        q[v.unit] = v;
    }
}

static void rl_limits(struct rl *c, const struct ynode *n, const char *path, struct limits *l)
{
    static const char *const keys[] = { "messages", "recipients", "bytes", "message_size",
                                         "recipients_per_message", "on_exceed", NULL };
    char p[128];
    const struct ynode *v;
    if (!rl_map(c, n, path, "a mapping of limits", keys))
        return;
    if ((v = ynode_get(n, "messages")) != NULL) {
        rl_path(p, sizeof p, path, "messages");
        rl_quotas(c, v, p, false, l->messages);
    }
    if ((v = ynode_get(n, "recipients")) != NULL) {
        rl_path(p, sizeof p, path, "recipients");
        rl_quotas(c, v, p, false, l->recipients);
    }
    if ((v = ynode_get(n, "bytes")) != NULL) {
        rl_path(p, sizeof p, path, "bytes");
        rl_quotas(c, v, p, true, l->bytes);
    }
    if ((v = ynode_get(n, "message_size")) != NULL) {
        rl_path(p, sizeof p, path, "message_size");
        l->message_size_set = RL_GRAM(c, v, p, "a size like 25M", gram_size(s, &l->message_size, err, sizeof err));
        if (l->message_size_set && l->message_size == 0) {
            rl_err(c, v, p, "expected a size above 0, found \"0\"");
            l->message_size_set = false;
        }
    }
    if ((v = ynode_get(n, "recipients_per_message")) != NULL) {
        rl_path(p, sizeof p, path, "recipients_per_message");
        l->rcpt_per_msg_set = RL_GRAM(c, v, p, "a whole number",
                                      gram_uint(s, 1000000, &l->recipients_per_message, err, sizeof err));
        if (l->rcpt_per_msg_set && l->recipients_per_message == 0) {
            rl_err(c, v, p, "expected a whole number of at least 1, found \"0\"");
            l->rcpt_per_msg_set = false;
        }
    }
    if ((v = ynode_get(n, "on_exceed")) != NULL) {
        int e;
        rl_path(p, sizeof p, path, "on_exceed");
        if ((l->on_exceed_set = rl_enum(c, v, p, on_exceed_words, &e)))
            l->on_exceed = (enum on_exceed)e;
    }
}

static void rl_pace(struct rl *c, const struct ynode *n, const char *path, struct pace *pc)
{
    static const char *const keys[] = { "rate", "burst", "mode", "max_delay", NULL };
    char p[128];
    const struct ynode *v;
    memset(pc, 0, sizeof *pc);
    pc->burst = 1;
    pc->mode = PACE_DELAY;
    pc->max_delay_ms = RULES_DEFAULT_MAX_DELAY_MS;
    if (!rl_map(c, n, path, "a mapping {rate, burst, mode, max_delay}", keys))
        return;
    pc->set = true;
    if ((v = ynode_get(n, "rate")) != NULL) {
        rl_path(p, sizeof p, path, "rate");
        RL_GRAM(c, v, p, "a rate like 600/hour", gram_pace_rate(s, &pc->rate, err, sizeof err));
    } else {
        rl_err(c, n, path, "missing key \"rate\" (for example rate: 600/hour)");
    }
    if ((v = ynode_get(n, "burst")) != NULL) {
        rl_path(p, sizeof p, path, "burst");
        if (RL_GRAM(c, v, p, "a whole number", gram_uint(s, 1000000, &pc->burst, err, sizeof err)) &&
            pc->burst == 0)
            rl_err(c, v, p, "expected a burst of at least 1, found \"0\"");
    }
    int m = PACE_DELAY;
    if ((v = ynode_get(n, "mode")) != NULL) {
        rl_path(p, sizeof p, path, "mode");
        if (rl_enum(c, v, p, pace_mode_words, &m))
            pc->mode = (enum pace_mode)m;
    }
    if ((v = ynode_get(n, "max_delay")) != NULL) {
        rl_path(p, sizeof p, path, "max_delay");
        if (pc->mode != PACE_DELAY) {
            rl_err(c, v, p, "max_delay applies to mode delay only (mode is %s)", pace_mode_words[pc->mode]);
        } else if (RL_GRAM(c, v, p, "a duration like 20s", gram_duration(s, &pc->max_delay_ms, err, sizeof err))) {
            if (pc->max_delay_ms > RULES_MAX_MAX_DELAY_MS)
                rl_err(c, v, p, "expected at most 240s (Postfix's milter_content_timeout is 300s), found \"%s\"",
                       v->str);
            else if (pc->max_delay_ms == 0)
                rl_err(c, v, p, "expected a duration above 0 (mode defer never waits), found \"%s\"", v->str);
        }
    }
}

static void rl_scan(struct rl *c, const struct ynode *n, const char *path, struct scan *sc)
{
    static const char *const keys[] = { "antivirus", "spam", "max_size", NULL };
    static const char *const spam_keys[] = { "threshold", "action", "reject_above", NULL };
    char p[128];
    const struct ynode *v;
    int e;
    if (!rl_map(c, n, path, "a mapping {antivirus, spam, max_size}", keys))
        return;
    sc->set = true;
    if ((v = ynode_get(n, "antivirus")) != NULL) {
        rl_path(p, sizeof p, path, "antivirus");
        if (rl_enum(c, v, p, av_words, &e))
            sc->antivirus = (enum av_action)e;
    }
    if ((v = ynode_get(n, "spam")) != NULL) {
        rl_path(p, sizeof p, path, "spam");
        if (v->kind == Y_SCALAR) {
            static const char *const off[] = { "off", NULL };
            if (rl_enum(c, v, p, off, &e))
                sc->spam = SPAM_OFF;
        } else if (rl_map(c, v, p, "off or a mapping {threshold, action, reject_above}", spam_keys)) {
            const struct ynode *w;
            char q[160];
            if ((w = ynode_get(v, "threshold")) != NULL) {
                rl_path(q, sizeof q, p, "threshold");
                RL_GRAM(c, w, q, "a number", gram_number(s, -1000, 1000, &sc->spam_threshold, err, sizeof err));
            }
            if ((w = ynode_get(v, "action")) != NULL) {
                rl_path(q, sizeof q, p, "action");
                if (rl_enum(c, w, q, spam_words, &e))
                    sc->spam = (enum spam_action)e;
            }
            if ((w = ynode_get(v, "reject_above")) != NULL) {
                rl_path(q, sizeof q, p, "reject_above");
                sc->reject_above_set = RL_GRAM(c, w, q, "a number",
                                               gram_number(s, -1000, 1000, &sc->reject_above, err, sizeof err));
                if (sc->reject_above_set && sc->reject_above < sc->spam_threshold)
                    rl_err(c, w, q, "expected a score at or above threshold %g, found %g",
                           sc->spam_threshold, sc->reject_above);
            }
        }
    }
    if ((v = ynode_get(n, "max_size")) != NULL) {
        rl_path(p, sizeof p, path, "max_size");
        if (RL_GRAM(c, v, p, "a size like 10M", gram_size(s, &sc->max_size, err, sizeof err)) &&
            sc->max_size == 0)
            rl_err(c, v, p, "expected a size above 0 (antivirus: off and spam: off turn scanning off), found \"0\"");
    }
}

static void rl_inbound(struct rl *c, const struct ynode *n, const char *path, struct inbound *in)
{
    static const char *const keys[] = { "spf", "dkim", "dmarc", NULL };
    const char *names[3] = { "spf", "dkim", "dmarc" };
    enum inbound_mode *modes[3] = { &in->spf, &in->dkim, &in->dmarc };
    char p[128];
    if (!rl_map(c, n, path, "a mapping {spf, dkim, dmarc}", keys))
        return;
    in->set = true;
    for (int i = 0; i < 3; i++) {
        const struct ynode *v = ynode_get(n, names[i]);
        int e;
        rl_path(p, sizeof p, path, names[i]);
        if (v && rl_enum(c, v, p, inbound_words, &e))
            *modes[i] = (enum inbound_mode)e;
    }
}

static void rl_dkim(struct rl *c, const struct ynode *n, struct tenant *t)
{
    static const char *const keys[] = { "domain", "selector", "key", "algorithm", "active",
                                        "canonicalization", "subdomains", NULL };
    static const char *const algs[] = { "rsa-sha256", "ed25519-sha256", NULL };
    static const char *const canons[] = { "relaxed/relaxed", "relaxed/simple", "simple/relaxed",
                                          "simple/simple", NULL };
    char found[64];
    if (n->kind != Y_SEQ) {
        rl_err(c, n, "dkim", "expected a list of keys {domain, selector, key}, found %s",
               ynode_repr(n, found, sizeof found));
        return;
    }
    t->dkim = mem_array(n->n ? n->n : 1, sizeof *t->dkim);
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *e = n->items[i], *v;
        struct dkim_key k;
        char dom[GRAM_DOMAIN_MAX + 1];
        memset(&k, 0, sizeof k);
        k.active = true;
        if (!rl_map(c, e, "dkim", "a mapping {domain, selector, key}", keys))
            continue;
        k.pos = rl_pos(c, e);
        if ((v = ynode_get(e, "domain")) == NULL)
            rl_err(c, e, "dkim", "missing key \"domain\"");
        else if (RL_GRAM(c, v, "dkim.domain", "a domain", gram_domain(s, dom, sizeof dom, err, sizeof err)))
            k.domain = mem_strdup(dom);
        if ((v = ynode_get(e, "selector")) == NULL)
            rl_err(c, e, "dkim", "missing key \"selector\"");
        else if (RL_GRAM(c, v, "dkim.selector", "a selector", gram_hostname(s, dom, sizeof dom, err, sizeof err)))
            k.selector = mem_strdup(dom);
        if ((v = ynode_get(e, "key")) == NULL) {
            rl_err(c, e, "dkim", "missing key \"key\" (path of the private key file)");
        } else {
            const char *s = rl_scalar(c, v, "dkim.key", "an absolute path");
            if (s && s[0] != '/')
                rl_err(c, v, "dkim.key", "expected an absolute path, found %s", ynode_repr(v, found, sizeof found));
            else if (s)
                k.key_path = mem_strdup(s);
        }
        if ((v = ynode_get(e, "algorithm")) != NULL) {
            int a;
            if (rl_enum(c, v, "dkim.algorithm", algs, &a))
                k.algorithm = a + 1;
        }
        if ((v = ynode_get(e, "active")) != NULL)
            RL_GRAM(c, v, "dkim.active", "true or false", gram_bool(s, &k.active, err, sizeof err));
        if ((v = ynode_get(e, "subdomains")) != NULL)
            RL_GRAM(c, v, "dkim.subdomains", "true or false", gram_bool(s, &k.subdomains, err, sizeof err));
        int cn = 0;
        if ((v = ynode_get(e, "canonicalization")) != NULL)
            rl_enum(c, v, "dkim.canonicalization", canons, &cn);
        k.canon = mem_strdup(canons[cn]);
        for (size_t j = 0; j < t->n_dkim && k.domain && k.selector; j++)
            if (t->dkim[j].domain && t->dkim[j].selector && strcmp(t->dkim[j].domain, k.domain) == 0 &&
                strcmp(t->dkim[j].selector, k.selector) == 0)
                rl_err(c, e, "dkim", "selector %s of %s listed twice (first at line %d)", k.selector,
                       k.domain, t->dkim[j].pos.line);
        t->dkim[t->n_dkim++] = k;
    }
}

static void rl_account(struct rl *c, const struct ynode *key, const struct ynode *n, struct tenant *t,
                       struct account *a)
{
    static const char *const keys[] = { "outbound", "limits", "pace", NULL };
    char login[GRAM_ADDRESS_MAX + 1], p[GRAM_ADDRESS_MAX + 32];
    const struct ynode *v;
    memset(a, 0, sizeof *a);
    a->tenant = t;
    a->pos = rl_pos(c, key);
    if (strcmp(key->str, "*") == 0) {
        a->name = mem_strdup("*");
    } else if (RL_GRAM(c, key, "accounts", "a login or sender address",
                       gram_login(s, login, sizeof login, err, sizeof err))) {
        a->name = mem_strdup(login);
    }
    snprintf(p, sizeof p, "accounts.%s", key->str);
    if (n->kind == Y_SCALAR && n->len == 0 && n->plain)
        return; /* "user@x:" with no settings: declared, tenant settings apply */
    if (!rl_map(c, n, p, "a mapping {outbound, limits, pace}", keys))
        return;
    if ((v = ynode_get(n, "outbound")) != NULL) {
        char q[GRAM_ADDRESS_MAX + 48];
        rl_path(q, sizeof q, p, "outbound");
        rl_outbound(c, v, q, &a->outbound);
    }
    if ((v = ynode_get(n, "limits")) != NULL) {
        char q[GRAM_ADDRESS_MAX + 48];
        rl_path(q, sizeof q, p, "limits");
        rl_limits(c, v, q, &a->limits);
    }
    if ((v = ynode_get(n, "pace")) != NULL) {
        char q[GRAM_ADDRESS_MAX + 48];
        rl_path(q, sizeof q, p, "pace");
        rl_pace(c, v, q, &a->pace);
    }
}

static void rl_accounts(struct rl *c, const struct ynode *n, struct tenant *t)
{
    char found[64];
    if (n->kind != Y_MAP) {
        rl_err(c, n, "accounts", "expected a mapping of logins or sender addresses, found %s",
               ynode_repr(n, found, sizeof found));
        return;
    }
    t->accounts = mem_array(n->n ? n->n : 1, sizeof *t->accounts);
    for (size_t i = 0; i < n->n; i++) {
        struct account *a = &t->accounts[t->n_accounts];
        rl_account(c, n->keys[i], n->items[i], t, a);
        if (a->name == NULL) {
            outbound_free(&a->outbound);
            continue;
        }
        for (size_t j = 0; j < t->n_accounts; j++)
            if (strcmp(t->accounts[j].name, a->name) == 0)
                rl_err(c, n->keys[i], "accounts", "account %s listed twice (first at line %d)", a->name,
                       t->accounts[j].pos.line);
        t->n_accounts++;
    }
}

static void rl_domains(struct rl *c, const struct ynode *n, struct tenant *t)
{
    char found[64], dom[GRAM_DOMAIN_MAX + 1];
    if (n->kind != Y_SEQ || n->n == 0) {
        rl_err(c, n, "domains", "expected a non-empty list of domains, found %s",
               n->kind == Y_SEQ ? "an empty list" : ynode_repr(n, found, sizeof found));
        return;
    }
    t->domains = mem_array(n->n, sizeof *t->domains);
    t->domain_pos = mem_array(n->n, sizeof *t->domain_pos);
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *v = n->items[i];
        if (!RL_GRAM(c, v, "domains", "a domain", gram_domain(s, dom, sizeof dom, err, sizeof err)))
            continue;
        bool dup = false;
        for (size_t j = 0; j < t->n_domains; j++)
            if (strcmp(t->domains[j], dom) == 0) {
                rl_err(c, v, "domains", "domain %s listed twice (first at line %d)", dom, t->domain_pos[j].line);
                dup = true;
            }
        if (dup)
            continue;
        t->domain_pos[t->n_domains] = rl_pos(c, v);
        t->domains[t->n_domains++] = mem_strdup(dom);
    }
}

static void rl_clients(struct rl *c, const struct ynode *n, struct tenant *t)
{
    char found[64], cerr[GRAM_ERR_MAX];
    if (n->kind != Y_SEQ) {
        rl_err(c, n, "clients", "expected a list of networks like 203.0.113.0/24, found %s",
               ynode_repr(n, found, sizeof found));
        return;
    }
    t->clients = mem_array(n->n ? n->n : 1, sizeof *t->clients);
    t->client_pos = mem_array(n->n ? n->n : 1, sizeof *t->client_pos);
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *v = n->items[i];
        const char *s = rl_scalar(c, v, "clients", "a network like 203.0.113.0/24");
        struct cidr cd;
        if (s == NULL)
            continue;
        if (!cidr_parse(s, &cd, cerr, sizeof cerr)) {
            rl_err(c, v, "clients", "%s", cerr);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < t->n_clients && !dup; j++)
            if (t->clients[j].bits == cd.bits && memcmp(&t->clients[j].net, &cd.net, sizeof cd.net) == 0) {
                rl_err(c, v, "clients", "network %s listed twice (first at line %d)", s, t->client_pos[j].line);
                dup = true;
            }
        if (dup)
            continue;
        t->client_pos[t->n_clients] = rl_pos(c, v);
        t->clients[t->n_clients++] = cd;
    }
}

/* Checks inside one tenant that need several keys at once. */
static void rl_tenant_checks(struct rl *c, struct tenant *t)
{
    char owner[96];
    if (t->name)
        snprintf(owner, sizeof owner, "tenant %s's", t->name);
    else
        snprintf(owner, sizeof owner, "the tenant's");
    for (size_t i = 0; i < t->n_dkim; i++) {
        const struct dkim_key *k = &t->dkim[i];
        bool own = false;
        for (size_t j = 0; k->domain && j < t->n_domains; j++)
            own |= strcmp(t->domains[j], k->domain) == 0;
        if (k->domain && !own)
            diag_at(c->d, c->file, k->pos.line, k->pos.col,
                    "dkim: domain %s is not one of %s domains", k->domain, owner),
                c->errors++;
    }
    for (size_t i = 0; i < t->n_accounts; i++) {
        const struct account *a = &t->accounts[i];
        const char *at = strchr(a->name, '@');
        bool own = at == NULL;
        for (size_t j = 0; at && j < t->n_domains; j++)
            own |= strcmp(t->domains[j], at + 1) == 0;
        if (!own) {
            struct buf list;
            buf_init(&list);
            for (size_t j = 0; j < t->n_domains; j++)
                buf_printf(&list, "%s%s", j ? ", " : "", t->domains[j]);
            diag_at(c->d, c->file, a->pos.line, a->pos.col, "accounts: %s is not in one of %s domains (%s)",
                    a->name, owner, t->n_domains ? list.data : "none");
            buf_free(&list);
            c->errors++;
        }
    }
}

bool rules_load_tenant(struct tenant *t, const char *file, struct diags *d)
{
    static const char *const keys[] = { "tenant", "description", "domains", "clients", "outbound", "dkim",
                                        "limits", "accounts", "pace", "scan", "inbound", NULL };
    struct rl c = { file, d, 0 };
    struct ydoc doc;
    const struct ynode *r, *v;
    size_t before = d->n;

    memset(t, 0, sizeof *t);
    t->file = file;
    t->scan.spam_threshold = RULES_DEFAULT_SPAM_THRESHOLD;
    t->scan.max_size = RULES_DEFAULT_SCAN_MAX_SIZE;
    t->inbound.spf = t->inbound.dkim = t->inbound.dmarc = INBOUND_HEADER;
    if (!ydoc_load_file(&doc, file, d)) {
        ydoc_free(&doc);
        return false;
    }
    r = doc.root;
    if (r == NULL) {
        diag_at(d, file, 0, 0, "empty file: expected a tenant mapping with at least \"tenant\" and \"domains\"");
        ydoc_free(&doc);
        return false;
    }
    if (!rl_map(&c, r, "", "a tenant mapping (tenant, domains, ...)", keys) && r->kind != Y_MAP) {
        ydoc_free(&doc);
        return false;
    }
    t->pos = rl_pos(&c, r);
    if ((v = ynode_get(r, "tenant")) == NULL)
        rl_err(&c, r, "", "missing key \"tenant\" (the tenant's name)");
    else if (RL_GRAM(&c, v, "tenant", "a tenant name", gram_name(s, "a tenant name", err, sizeof err))) {
        /* tenant names compare case-insensitively: stored lowercased */
        t->name = mem_strdup(v->str);
        for (char *q = t->name; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        t->pos = rl_pos(&c, v);
    }
    if ((v = ynode_get(r, "description")) != NULL) {
        const char *s = rl_scalar(&c, v, "description", "a text");
        if (s)
            t->description = mem_strdup(s);
    }
    size_t domain_errors = c.errors;
    if ((v = ynode_get(r, "domains")) == NULL)
        rl_err(&c, r, "", "missing key \"domains\" (the sender domains the tenant owns)");
    else
        rl_domains(&c, v, t);
    domain_errors = c.errors - domain_errors;
    if ((v = ynode_get(r, "clients")) != NULL)
        rl_clients(&c, v, t);
    if ((v = ynode_get(r, "outbound")) != NULL)
        rl_outbound(&c, v, "outbound", &t->outbound);
    if ((v = ynode_get(r, "dkim")) != NULL)
        rl_dkim(&c, v, t);
    if ((v = ynode_get(r, "limits")) != NULL)
        rl_limits(&c, v, "limits", &t->limits);
    if ((v = ynode_get(r, "accounts")) != NULL)
        rl_accounts(&c, v, t);
    if ((v = ynode_get(r, "pace")) != NULL)
        rl_pace(&c, v, "pace", &t->pace);
    if ((v = ynode_get(r, "scan")) != NULL)
        rl_scan(&c, v, "scan", &t->scan);
    if ((v = ynode_get(r, "inbound")) != NULL)
        rl_inbound(&c, v, "inbound", &t->inbound);
    if (domain_errors == 0) /* else every key and account would be reported too */
        rl_tenant_checks(&c, t);
    for (size_t i = 0; i < t->n_accounts; i++)
        if (strcmp(t->accounts[i].name, "*") == 0)
            t->wildcard = &t->accounts[i];
    if (t->wildcard == NULL) {
        /* Every tenant has a "*" account: the logins and senders of its
         * domains that it does not name; without one in the file, it has
         * no settings of its own and the tenant's apply. */
        t->accounts = mem_grow(t->accounts, t->n_accounts + 1, sizeof *t->accounts);
        struct account *a = &t->accounts[t->n_accounts++];
        memset(a, 0, sizeof *a);
        a->name = mem_strdup("*");
        a->implicit = true;
        a->pos = t->pos;
        t->wildcard = a;
    }
    ydoc_free(&doc);
    diags_sort_from(d, before);
    return c.errors == 0 && d->n == before;
}

void rules_tenant_free(struct tenant *t)
{
    mem_free(t->name);
    mem_free(t->description);
    for (size_t i = 0; i < t->n_domains; i++)
        mem_free(t->domains[i]);
    mem_free(t->domains);
    mem_free(t->domain_pos);
    mem_free(t->clients);
    mem_free(t->client_pos);
    outbound_free(&t->outbound);
    for (size_t i = 0; i < t->n_dkim; i++) {
        mem_free(t->dkim[i].domain);
        mem_free(t->dkim[i].selector);
        mem_free(t->dkim[i].key_path);
        mem_free(t->dkim[i].canon);
    }
    mem_free(t->dkim);
    for (size_t i = 0; i < t->n_accounts; i++) {
        mem_free(t->accounts[i].name);
        outbound_free(&t->accounts[i].outbound);
    }
    mem_free(t->accounts);
}
