/* ctl_reputation.c: posternctl reputation TENANT [--dnsbl ZONE]...
 * [--dbl ZONE]... [--json]: is the tenant's mail likely to be accepted?
 *  - each outbound address of the tenant and its accounts (rules.h struct
 *    outbound ips) looked up in DNS block lists (reversed octets, or
 *    nibbles for IPv6, under the list's zone), each of its domains in
 *    domain block lists (DOMAIN.ZONE): an A record 127.0.0.x is LISTED
 *    (with the list's TXT reason), NXDOMAIN or no A record NOT-LISTED, a
 *    time-out, SERVFAIL or a 127.255.255.x answer (the list refusing the
 *    resolver) UNKNOWN, which does not count as listed;
 *  - each domain's SPF record (exactly one, covering every outbound
 *    address with its ip4:/ip6: terms, not +all), DMARC record (exactly
 *    one, with p=), and each DKIM key as "dkim check" judges it
 *    (ctl_dkim.c).
 * Exit 0 when nothing is listed and every record agrees; 1 otherwise
 * (inactive DKIM keys and UNKNOWN lookups do not count); 2 bad usage.
 * The resolver is /etc/resolv.conf's (libresolv). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "cidr.h"
#include "ctl.h"
#include "grammar.h"
#include "rules.h"

#define REP_ANSWER_MAX 65535
#define REP_RETRANS 3                 /* seconds per try */
#define REP_RETRY 2

/* The lists used when neither --dnsbl nor --dbl is given. */
static const char *const rep_default_dnsbl[] = { "zen.spamhaus.org", "bl.spamcop.net",
                                                 "b.barracudacentral.org" };
static const char *const rep_default_dbl[] = { "dbl.spamhaus.org" };

/* What a query found. */
enum rep_found { REP_FOUND, REP_NONE, REP_FAIL };

/* The records of one type at a name: A as dotted quads, TXT with their
 * strings concatenated. */
struct rep_strs {
    char **v;
    size_t n;
};

/* One line of the report. */
struct rep_row {
    const char *check;         /* "dnsbl", "dbl", "spf", "dkim", "dmarc" */
    char *subject;             /* address, domain or record name */
    char *list;                /* the block list's zone, or NULL */
    const char *result;        /* "LISTED", "NOT-LISTED", "UNKNOWN", "OK", "MISSING", ... */
    char *detail;              /* reason or explanation, or NULL */
    bool bad;                  /* counts for the exit status */
};

struct rep {
    res_state rs;
    unsigned char *answer;
    struct rep_row *rows;
    size_t n_rows;
};

static void rep_strs_free(struct rep_strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        mem_free(s->v[i]);
    mem_free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void rep_strs_add(struct rep_strs *s, char *owned)
{
    s->v = mem_grow(s->v, s->n + 1, sizeof *s->v);
    s->v[s->n++] = owned;
}

static void rep_add(struct rep *r, const char *check, const char *subject, const char *list, const char *result,
                    const char *detail, bool bad)
{
    r->rows = mem_grow(r->rows, r->n_rows + 1, sizeof *r->rows);
    struct rep_row *w = &r->rows[r->n_rows++];
    w->check = check;
    w->subject = mem_strdup(subject);
    w->list = list ? mem_strdup(list) : NULL;
    w->result = result;
    w->detail = detail && *detail ? mem_strdup(detail) : NULL;
    w->bad = bad;
}

/* --- DNS ---------------------------------------------------------------------- */

/* The records of type (ns_t_a or ns_t_txt) at name into out: REP_FOUND
 * (at least one), REP_NONE (NXDOMAIN, or none of that type), REP_FAIL
 * with err set. */
static int rep_query(struct rep *r, const char *name, int type, struct rep_strs *out, struct buf *err)
{
    int n = res_nquery(r->rs, name, ns_c_in, type, r->answer, REP_ANSWER_MAX);
    if (n < 0) {
        int h = r->rs->res_h_errno;
        if (h == HOST_NOT_FOUND || h == NO_DATA)
            return REP_NONE;
        buf_puts(err, h == TRY_AGAIN ? "no answer from the DNS (time-out or SERVFAIL)" : hstrerror(h));
        return REP_FAIL;
    }
    ns_msg msg;
    ns_rr rr;
    if (n > REP_ANSWER_MAX || ns_initparse(r->answer, n, &msg) < 0) {
        buf_puts(err, "malformed DNS answer");
        return REP_FAIL;
    }
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
            buf_puts(err, "malformed record in the DNS answer");
            return REP_FAIL;
        }
        if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
            continue;
        const unsigned char *d = ns_rr_rdata(rr);
        size_t len = ns_rr_rdlen(rr);
        if (type == ns_t_a) {
            char a[INET_ADDRSTRLEN];
            if (len == 4 && inet_ntop(AF_INET, d, a, sizeof a))
                rep_strs_add(out, mem_strdup(a));
            continue;
        }
        struct buf t;
        buf_init(&t);
        for (size_t p = 0; p < len;) {
            size_t l = d[p++];
            if (l > len - p)
                break;
            buf_add(&t, d + p, l);
            p += l;
        }
        rep_strs_add(out, buf_detach(&t));
        buf_free(&t);
    }
    return out->n ? REP_FOUND : REP_NONE;
}

/* The name to look addr up under zone: 4.3.2.1.ZONE, or 32 nibbles. */
static void rep_ip_name(const struct ipaddr *a, const char *zone, struct buf *out)
{
    if (ipaddr_is_v4(a)) {
        buf_printf(out, "%u.%u.%u.%u.%s", a->b[15], a->b[14], a->b[13], a->b[12], zone);
        return;
    }
    for (int i = 15; i >= 0; i--)
        buf_printf(out, "%x.%x.", a->b[i] & 0xf, a->b[i] >> 4);
    buf_puts(out, zone);
}

/* Look name up in a block list: one row for subject. */
static void rep_list_check(struct rep *r, const char *check, const char *subject, const char *zone,
                           const char *name)
{
    struct rep_strs a = { 0 }, txt = { 0 };
    struct buf err, detail;
    buf_init(&err);
    buf_init(&detail);
    int f = rep_query(r, name, ns_t_a, &a, &err);
    const char *result = "NOT-LISTED";
    if (f == REP_FAIL) {
        result = "UNKNOWN";
        buf_puts(&detail, err.data);
    } else if (f == REP_FOUND) {
        /* 127.0.0.0/8 is the answer of a listing; 127.255.255.x is how
         * Spamhaus refuses open and public resolvers */
        bool listed = false, refused = false;
        for (size_t i = 0; i < a.n; i++) {
            if (strncmp(a.v[i], "127.255.255.", 12) == 0)
                refused = true;
            else if (strncmp(a.v[i], "127.", 4) == 0)
                listed = true;
        }
        if (listed) {
            result = "LISTED";
            if (rep_query(r, name, ns_t_txt, &txt, &err) == REP_FOUND)
                for (size_t i = 0; i < txt.n; i++)
                    buf_printf(&detail, "%s%s", i ? "; " : "", txt.v[i]);
            else
                buf_puts(&detail, "no reason given (no TXT record)");
        } else {
            result = "UNKNOWN";
            buf_puts(&detail, refused ? "the list refuses this resolver" : "not a block list answer");
        }
        buf_puts(&detail, " (A");
        for (size_t i = 0; i < a.n; i++)
            buf_printf(&detail, " %s", a.v[i]);
        buf_putc(&detail, ')');
    }
    rep_add(r, check, subject, zone, result, detail.data, strcmp(result, "LISTED") == 0);
    rep_strs_free(&a);
    rep_strs_free(&txt);
    buf_free(&err);
    buf_free(&detail);
}

/* --- SPF and DMARC -------------------------------------------------------------- */

/* The TXT records at name starting with tag ("v=spf1", "v=DMARC1") into
 * out; REP_FAIL with err set. */
static int rep_policy_records(struct rep *r, const char *name, const char *tag, struct rep_strs *out,
                              struct buf *err)
{
    struct rep_strs all = { 0 };
    int f = rep_query(r, name, ns_t_txt, &all, err);
    size_t l = strlen(tag);
    for (size_t i = 0; i < all.n; i++)
        if (strncasecmp(all.v[i], tag, l) == 0 && strchr(" ;", all.v[i][l]) != NULL) {
            rep_strs_add(out, all.v[i]);
            all.v[i] = NULL;
        }
    rep_strs_free(&all);
    return f == REP_FAIL ? REP_FAIL : out->n ? REP_FOUND : REP_NONE;
}

/* Does an ip4:/ip6: term of the SPF record (modified) cover a? */
static bool rep_spf_covers(char *terms, const struct ipaddr *a)
{
    for (char *save = NULL, *t = strtok_r(terms, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (*t == '+')
            t++;
        bool v4 = strncasecmp(t, "ip4:", 4) == 0;
        if (!v4 && strncasecmp(t, "ip6:", 4) != 0)
            continue;
        char *slash = strchr(t + 4, '/');
        unsigned long len = v4 ? 32 : 128;
        if (slash) {
            *slash = '\0';
            len = strtoul(slash + 1, NULL, 10);
        }
        struct ipaddr net;
        if (!ipaddr_parse(t + 4, &net) || ipaddr_is_v4(&net) != v4 || len > (v4 ? 32u : 128u))
            continue;
        unsigned bits = (unsigned)len + (v4 ? 96 : 0), i = 0;
        while (i < bits && ipaddr_bit(&net, i) == ipaddr_bit(a, i))
            i++;
        if (i == bits)
            return true;
    }
    return false;
}

static void rep_spf_check(struct rep *r, const struct tenant *t, const char *domain)
{
    struct rep_strs recs = { 0 };
    struct buf err, detail, want;
    buf_init(&err);
    buf_init(&detail);
    buf_init(&want);
    bool have_ips = ctl_dkim_spf_value(t, &want);
    const char *result = "OK";
    int f = rep_policy_records(r, domain, "v=spf1", &recs, &err);
    if (f == REP_FAIL) {
        result = "ERROR";
        buf_puts(&detail, err.data);
    } else if (f == REP_NONE) {
        result = "MISSING";
        buf_printf(&detail, "no SPF record; publish \"%s\" (posternctl dns)", want.data);
    } else if (recs.n > 1) {
        result = "BAD";
        buf_printf(&detail, "%zu SPF records at the name (a permerror, RFC 7208 3.2)", recs.n);
    } else {
        struct ipaddr *ips = NULL;
        size_t n = 0;
        char a[64];
        ctl_dkim_ips_add(&t->outbound, &ips, &n);
        for (size_t i = 0; i < t->n_accounts; i++)
            ctl_dkim_ips_add(&t->accounts[i].outbound, &ips, &n);
        for (size_t i = 0; i < n; i++) {
            char *copy = mem_strdup(recs.v[0]);
            if (!rep_spf_covers(copy, &ips[i]))
                buf_printf(&detail, "%s%s", detail.len ? ", " : "", ipaddr_format(&ips[i], a, sizeof a));
            mem_free(copy);
        }
        mem_free(ips);
        if (detail.len) {
            result = "MISMATCH";
            buf_printf(&detail, " not in its ip4:/ip6: terms (include:, a, mx are not followed): \"%s\"; "
                                "the rules ask for \"%s\"", recs.v[0], want.data);
        } else if (strstr(recs.v[0], " +all") || strstr(recs.v[0], " all")) {
            result = "MISMATCH";
            buf_printf(&detail, "\"%s\" passes every address (+all)", recs.v[0]);
        } else {
            buf_puts(&detail, recs.v[0]);
            if (!have_ips)
                buf_puts(&detail, " (no outbound ips in the rules to compare)");
        }
    }
    rep_add(r, "spf", domain, NULL, result, detail.data, strcmp(result, "OK") != 0);
    rep_strs_free(&recs);
    buf_free(&err);
    buf_free(&detail);
    buf_free(&want);
}

/* Has the DMARC record a p= tag? */
static bool rep_dmarc_has_policy(const char *rec)
{
    for (const char *p = rec; (p = strchr(p, ';')) != NULL;) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (p[0] == 'p' && (p[1] == '=' || p[1] == ' '))
            return true;
    }
    return false;
}

static void rep_dmarc_check(struct rep *r, const char *domain)
{
    struct rep_strs recs = { 0 };
    struct buf err, name, detail;
    buf_init(&err);
    buf_init(&name);
    buf_init(&detail);
    buf_printf(&name, "_dmarc.%s", domain);
    const char *result = "OK";
    int f = rep_policy_records(r, name.data, "v=DMARC1", &recs, &err);
    if (f == REP_FAIL) {
        result = "ERROR";
        buf_puts(&detail, err.data);
    } else if (f == REP_NONE) {
        result = "MISSING";
        buf_printf(&detail, "no DMARC record; publish \"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s\" "
                            "(posternctl dns)", domain);
    } else if (recs.n > 1) {
        result = "BAD";
        buf_printf(&detail, "%zu DMARC records at the name (receivers ignore them all, RFC 7489 6.6.3)",
                   recs.n);
    } else if (!rep_dmarc_has_policy(recs.v[0])) {
        result = "BAD";
        buf_printf(&detail, "no p= tag: \"%s\"", recs.v[0]);
    } else {
        buf_puts(&detail, recs.v[0]);
    }
    rep_add(r, "dmarc", name.data, NULL, result, detail.data, strcmp(result, "OK") != 0);
    rep_strs_free(&recs);
    buf_free(&err);
    buf_free(&name);
    buf_free(&detail);
}

/* --- the report ------------------------------------------------------------------ */

static void rep_collect(struct rep *r, const struct tenant *t, const char *const *ip_zones, size_t n_ip,
                        const char *const *dom_zones, size_t n_dom)
{
    struct ipaddr *ips = NULL;
    size_t n = 0;
    char a[64];
    ctl_dkim_ips_add(&t->outbound, &ips, &n);
    for (size_t i = 0; i < t->n_accounts; i++)
        ctl_dkim_ips_add(&t->accounts[i].outbound, &ips, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t z = 0; z < n_ip; z++) {
            struct buf name;
            buf_init(&name);
            rep_ip_name(&ips[i], ip_zones[z], &name);
            rep_list_check(r, "dnsbl", ipaddr_format(&ips[i], a, sizeof a), ip_zones[z], name.data);
            buf_free(&name);
        }
    mem_free(ips);
    for (size_t i = 0; i < t->n_domains; i++)
        for (size_t z = 0; z < n_dom; z++) {
            struct buf name;
            buf_init(&name);
            buf_printf(&name, "%s.%s", t->domains[i], dom_zones[z]);
            rep_list_check(r, "dbl", t->domains[i], dom_zones[z], name.data);
            buf_free(&name);
        }
    for (size_t i = 0; i < t->n_domains; i++)
        rep_spf_check(r, t, t->domains[i]);
    for (size_t i = 0; i < t->n_dkim; i++) {
        const struct dkim_key *k = &t->dkim[i];
        struct buf name, why;
        buf_init(&name);
        buf_init(&why);
        buf_printf(&name, "%s._domainkey.%s", k->selector, k->domain);
        const char *st = ctl_dkim_key_verify(r->rs, k, &why);
        if (!k->active)
            buf_puts(&why, " (inactive key: does not count)");
        rep_add(r, "dkim", name.data, NULL, st, why.data, k->active && strcmp(st, "OK") != 0);
        buf_free(&name);
        buf_free(&why);
    }
    for (size_t i = 0; i < t->n_domains; i++)
        rep_dmarc_check(r, t->domains[i]);
}

static void rep_print_text(const struct rep *r, const struct tenant *t, FILE *out)
{
    fprintf(out, "reputation of tenant %s (%s)\n", t->name, t->file);
    fprintf(out, "%-6s %-40s %-24s %-10s %s\n", "CHECK", "SUBJECT", "LIST", "RESULT", "DETAIL");
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct rep_row *w = &r->rows[i];
        fprintf(out, "%-6s %-40s %-24s %-10s ", w->check, w->subject, w->list ? w->list : "-", w->result);
        ctl_put_field(out, w->detail);
        fputc('\n', out);
    }
}

static void rep_print_json(const struct rep *r, const struct tenant *t, bool bad, FILE *out)
{
    fputs("{\"tenant\": ", out);
    ctl_put_json(out, t->name);
    fprintf(out, ", \"ok\": %s, \"results\": [", bad ? "false" : "true");
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct rep_row *w = &r->rows[i];
        fprintf(out, "%s\n {\"check\": ", i ? "," : "");
        ctl_put_json(out, w->check);
        fputs(", \"subject\": ", out);
        ctl_put_json(out, w->subject);
        fputs(", \"list\": ", out);
        ctl_put_json(out, w->list);
        fputs(", \"result\": ", out);
        ctl_put_json(out, w->result);
        fputs(", \"detail\": ", out);
        ctl_put_json(out, w->detail);
        fprintf(out, ", \"counts\": %s}", w->bad ? "true" : "false");
    }
    fputs("\n]}\n", out);
}

/* A --dnsbl/--dbl zone: a domain name; false after printing. */
static bool rep_zone_take(const char *opt, const char *arg, const char ***v, size_t *n)
{
    char zone[GRAM_DOMAIN_MAX + 1], err[GRAM_ERR_MAX];
    if (!gram_domain(arg, zone, sizeof zone, err, sizeof err)) {
        fprintf(stderr, "posternctl: --%s: %s\n", opt, err);
        return false;
    }
    *v = mem_grow(*v, *n + 1, sizeof **v);
    (*v)[(*n)++] = arg;
    return true;
}

int ctl_reputation(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dnsbl", required_argument, NULL, 'b' }, { "dbl", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char **ip_zones = NULL, **dom_zones = NULL;
    size_t n_ip = 0, n_dom = 0;
    bool json = false;
    int ch, rc = -1;
    while (rc < 0 && (ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'b' || ch == 'd') {
            if (!(ch == 'b' ? rep_zone_take("dnsbl", optarg, &ip_zones, &n_ip)
                            : rep_zone_take("dbl", optarg, &dom_zones, &n_dom)))
                rc = 2;
        } else if (ch == 'j') {
            json = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            rc = 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            rc = ctl_bad_usage(c);
        }
    }
    if (rc < 0 && argc - optind != 1)
        rc = ctl_bad_usage(c);
    struct rules *rules = NULL;
    const struct tenant *t = NULL;
    if (rc < 0 && (ctl_load_conf(c) != 0 || (rules = ctl_load_rules(c, true)) == NULL))
        rc = 1;
    if (rc < 0 && (t = rules_tenant(rules, argv[optind])) == NULL) {
        fprintf(stderr, "posternctl: no tenant named \"%s\" in %s\n", argv[optind], ctl_rules_dir(c));
        rc = 1;
    }
    struct __res_state rs;
    memset(&rs, 0, sizeof rs);
    if (rc < 0 && res_ninit(&rs) != 0) {
        fprintf(stderr, "posternctl: cannot initialise the resolver (/etc/resolv.conf)\n");
        rc = 1;
    } else if (rc < 0) {
        rs.options |= RES_USE_EDNS0;
        rs.retrans = REP_RETRANS;
        rs.retry = REP_RETRY;
        bool defaults = n_ip == 0 && n_dom == 0;
        struct rep r = { .rs = &rs, .answer = mem_alloc(REP_ANSWER_MAX) };
        rep_collect(&r, t, defaults ? rep_default_dnsbl : ip_zones,
                    defaults ? sizeof rep_default_dnsbl / sizeof *rep_default_dnsbl : n_ip,
                    defaults ? rep_default_dbl : dom_zones,
                    defaults ? sizeof rep_default_dbl / sizeof *rep_default_dbl : n_dom);
        bool bad = false;
        for (size_t i = 0; i < r.n_rows; i++)
            bad = bad || r.rows[i].bad;
        if (json)
            rep_print_json(&r, t, bad, stdout);
        else
            rep_print_text(&r, t, stdout);
        rc = bad ? 1 : 0;
        for (size_t i = 0; i < r.n_rows; i++) {
            mem_free(r.rows[i].subject);
            mem_free(r.rows[i].list);
            mem_free(r.rows[i].detail);
        }
        mem_free(r.rows);
        mem_free(r.answer);
        res_nclose(&rs);
    }
    if (rules)
        rules_unref(rules);
    mem_free(ip_zones);
    mem_free(dom_zones);
    return rc;
}
