/* test_pfconf.c: unit tests of lib/pfconf.c (posternctl postfix-config):
 *  - endpoints in Postfix's syntax and back (relative to the queue
 *    directory, absolute, inet, a queue directory with a trailing '/');
 *  - the wanted settings from rule files and a postern.yaml written to a
 *    temporary directory: main.cf parameters, transports sorted, IPv4 and
 *    IPv6 in one pool, a pool with two IPv4 addresses (warning), transports
 *    kept by hand (no ips) named by two tenants, the printed lines;
 *  - the same transport from two tenants (hand-built snapshots, the rules
 *    loader refuses them): same settings in another order is one
 *    transport, other settings are an error naming both places;
 *  - postconf -n text: continuation lines, comments, blanks around '=',
 *    the last of a name counts, lines without '=';
 *  - postconf -M and raw master.cf text: continuation lines, comments,
 *    -o name=value, -o { name = value }, -oname=value, -o name without
 *    '=', services of other types, duplicate names, short lines;
 *  - the comparison: agreement, every kind of main.cf and master.cf
 *    difference with have/want and the rules position, defaults, $name
 *    expansion, milter and policy entries in "{ ... }" groups, other
 *    milters and restrictions around ours. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "buf.h"
#include "cidr.h"
#include "conf.h"
#include "diag.h"
#include "pfconf.h"
#include "rules.h"
#include "rules_load.h"
#include "unit.h"

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_pfconf.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char d[128];
    snprintf(d, sizeof d, "%s/rules.d", tmpdir);
    ck_assert_int_eq(mkdir(d, 0755), 0);
}

static void teardown(void)
{
    unit_rm_tree(tmpdir);
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static struct rules *load_rules(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/rules.d", tmpdir);
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_load(dir, &d, NULL);
    diags_print(&d, stderr);
    ck_assert_uint_eq(d.n, 0);
    diags_free(&d);
    ck_assert_ptr_nonnull(r);
    return r;
}

static void load_conf(struct postern_conf *c, const char *text)
{
    write_file("postern.yaml", text);
    char path[128];
    snprintf(path, sizeof path, "%s/postern.yaml", tmpdir);
    struct diags d;
    diags_init(&d);
    bool ok = conf_load(c, path, &d);
    diags_print(&d, stderr);
    diags_free(&d);
    ck_assert(ok);
}

static const struct pfconf_transport *find_transport(const struct pfconf_want *w, const char *name)
{
    for (size_t i = 0; i < w->n_transports; i++)
        if (strcmp(w->transports[i].name, name) == 0)
            return &w->transports[i];
    return NULL;
}

static const struct pfconf_param *find_param(const struct pfconf_want *w, const char *name)
{
    for (size_t i = 0; i < w->n_params; i++)
        if (strcmp(w->params[i].name, name) == 0)
            return &w->params[i];
    return NULL;
}

/* The two-tenant setup most comparisons use. */
static const char ACME[] =
    "tenant: acme\n"
    "domains: [acme.example]\n"
    "outbound: {transport: acme-out, ips: [192.0.2.7, '2001:db8::7'], helo: mx1.acme.example}\n"
    "accounts:\n"
    "  news@acme.example:\n"
    "    outbound: {transport: acme-bulk, ips: [192.0.2.20, 192.0.2.21]}\n"
    "  other@acme.example:\n"
    "    outbound: {transport: relay-out}\n";
static const char GLOBEX[] =
    "tenant: globex\n"
    "domains: [globex.example]\n"
    "outbound: {transport: relay-out}\n"
    "accounts:\n"
    "  v6@globex.example:\n"
    "    outbound: {transport: globex-v6, ips: ['2001:db8:0:0::9'], helo: v6.globex.example}\n";
static const char CONF[] =
    "milter: {listen: unix:/var/spool/postfix/private/postern-milter}\n"
    "policyd: {listen: [inet:127.0.0.1:10040, unix:/var/spool/postfix/private/postern-policy]}\n";

struct fixture {
    struct rules *r;
    struct postern_conf c;
    struct pfconf_want w;
};

static void fixture_up(struct fixture *f)
{
    write_file("rules.d/acme.yaml", ACME);
    write_file("rules.d/globex.yaml", GLOBEX);
    f->r = load_rules();
    load_conf(&f->c, CONF);
    pfconf_want_build(&f->w, f->r, &f->c, NULL);
}

static void fixture_down(struct fixture *f)
{
    pfconf_want_free(&f->w);
    conf_free(&f->c);
    rules_unref(f->r);
}

/* ------------------------------------------------------------------ */

START_TEST(endpoints)
{
    char *e = pfconf_endpoint("unix:/var/spool/postfix/private/postern-milter", NULL);
    ck_assert_str_eq(e, "unix:private/postern-milter");
    mem_free(e);
    e = pfconf_endpoint("unix:/srv/pf/private/x", "/srv/pf/");
    ck_assert_str_eq(e, "unix:private/x");
    mem_free(e);
    e = pfconf_endpoint("unix:/run/postern/milter.sock", "/var/spool/postfix");
    ck_assert_str_eq(e, "unix:/run/postern/milter.sock");
    mem_free(e);
    /* a sibling directory whose name starts like the queue directory */
    e = pfconf_endpoint("unix:/var/spool/postfix2/private/x", "/var/spool/postfix");
    ck_assert_str_eq(e, "unix:/var/spool/postfix2/private/x");
    mem_free(e);
    e = pfconf_endpoint("inet:127.0.0.1:10040", NULL);
    ck_assert_str_eq(e, "inet:127.0.0.1:10040");
    mem_free(e);

    e = pfconf_endpoint_abs("unix:private/x", "/q");
    ck_assert_str_eq(e, "unix:/q/private/x");
    mem_free(e);
    e = pfconf_endpoint_abs("private/x", "/q");
    ck_assert_str_eq(e, "unix:/q/private/x");
    mem_free(e);
    e = pfconf_endpoint_abs("unix:/q//private/./x", "/q");
    ck_assert_str_eq(e, "unix:/q/private/x");
    mem_free(e);
    e = pfconf_endpoint_abs("inet:[::1]:10040", "/q");
    ck_assert_str_eq(e, "inet:[::1]:10040");
    mem_free(e);
}
END_TEST

START_TEST(want_from_rules)
{
    struct fixture f;
    fixture_up(&f);
    struct pfconf_want *w = &f.w;
    ck_assert_uint_eq(w->n_errors, 0);
    /* main.cf */
    ck_assert_uint_eq(w->n_params, 6);
    ck_assert_str_eq(find_param(w, "smtpd_milters")->value, "unix:private/postern-milter");
    ck_assert_str_eq(find_param(w, "non_smtpd_milters")->value, "$smtpd_milters");
    ck_assert_str_eq(find_param(w, "milter_default_action")->value, "tempfail");
    ck_assert_str_eq(find_param(w, "milter_protocol")->value, "6");
    /* the unix socket under the queue directory is preferred to inet */
    ck_assert_str_eq(find_param(w, "smtpd_end_of_data_restrictions")->want,
                     "check_policy_service unix:private/postern-policy");
    ck_assert_str_eq(find_param(w, "smtpd_recipient_restrictions")->value,
                     "..., check_policy_service unix:private/postern-policy, ...");
    ck_assert_int_eq(find_param(w, "smtpd_recipient_restrictions")->match, PFCONF_POLICY);

    /* master.cf: sorted, one per transport */
    ck_assert_uint_eq(w->n_transports, 4);
    ck_assert_str_eq(w->transports[0].name, "acme-bulk");
    ck_assert_str_eq(w->transports[1].name, "acme-out");
    ck_assert_str_eq(w->transports[2].name, "globex-v6");
    ck_assert_str_eq(w->transports[3].name, "relay-out");
    const struct pfconf_transport *t = find_transport(w, "acme-out");
    ck_assert(!t->manual);
    ck_assert_str_eq(t->bind4, "192.0.2.7");
    ck_assert_str_eq(t->bind6, "2001:db8::7");
    ck_assert_str_eq(t->helo, "mx1.acme.example");
    ck_assert_int_eq(t->pos.line, 3);
    ck_assert_ptr_nonnull(strstr(t->pos.file, "acme.yaml"));
    t = find_transport(w, "globex-v6");
    ck_assert_ptr_null(t->bind4);
    ck_assert_str_eq(t->bind6, "2001:db8::9");
    t = find_transport(w, "acme-bulk");
    ck_assert_str_eq(t->bind4, "192.0.2.20");
    ck_assert_ptr_null(t->helo);
    /* the second IPv4 address of acme-bulk cannot be bound */
    ck_assert_uint_eq(w->n_warnings, 1);
    ck_assert_ptr_nonnull(strstr(w->warnings[0], "acme-bulk has 2 IPv4"));
    ck_assert_ptr_nonnull(strstr(w->warnings[0], "acme.yaml:6"));
    /* kept by hand, named by both tenants */
    t = find_transport(w, "relay-out");
    ck_assert(t->manual);
    ck_assert_uint_eq(t->n_users, 2);
    ck_assert_str_eq(t->users[0], "account other@acme.example (tenant acme)");
    ck_assert_str_eq(t->users[1], "tenant globex");

    struct buf b;
    buf_init(&b);
    pfconf_print_master(w, &b);
    ck_assert_ptr_nonnull(strstr(b.data, "\nacme-out unix - - n - - smtp -o smtp_bind_address=192.0.2.7 "
                                         "-o smtp_bind_address6=2001:db8::7 -o smtp_helo_name=mx1.acme.example\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "\nacme-bulk unix - - n - - smtp -o smtp_bind_address=192.0.2.20\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "\nglobex-v6 unix - - n - - smtp -o smtp_bind_address6=2001:db8::9 "
                                         "-o smtp_helo_name=v6.globex.example\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "# relay-out: managed by hand"));
    ck_assert_ptr_null(strstr(b.data, "relay-out unix"));
    buf_reset(&b);
    pfconf_print_main(w, &b);
    ck_assert_ptr_nonnull(strstr(b.data, "\nsmtpd_milters = unix:private/postern-milter\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "\nmilter_default_action = tempfail\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "\nsmtpd_end_of_data_restrictions = check_policy_service "
                                         "unix:private/postern-policy\n"));
    buf_free(&b);
    fixture_down(&f);
}
END_TEST

START_TEST(want_other_sockets)
{
    /* a milter outside the queue directory: absolute; only an inet policy */
    struct postern_conf c;
    load_conf(&c, "milter: {listen: inet:127.0.0.1:8891}\npolicyd: {listen: inet:127.0.0.1:10040}\n");
    struct pfconf_want w;
    pfconf_want_build(&w, NULL, &c, "/srv/q");
    ck_assert_str_eq(find_param(&w, "smtpd_milters")->value, "inet:127.0.0.1:8891");
    ck_assert_str_eq(find_param(&w, "smtpd_end_of_data_restrictions")->want,
                     "check_policy_service inet:127.0.0.1:10040");
    ck_assert_uint_eq(w.n_transports, 0);
    pfconf_want_free(&w);
    conf_free(&c);
    load_conf(&c, "milter: {listen: unix:/run/m.sock}\npolicyd: {listen: unix:/srv/q/private/p}\n");
    pfconf_want_build(&w, NULL, &c, "/srv/q");
    ck_assert_str_eq(find_param(&w, "smtpd_milters")->value, "unix:/run/m.sock");
    ck_assert_str_eq(find_param(&w, "smtpd_end_of_data_restrictions")->want, "check_policy_service unix:private/p");
    pfconf_want_free(&w);
    conf_free(&c);
}
END_TEST

/* A hand-built snapshot: tenants a and b, each with one outbound (the
 * rules loader would refuse the conflicts tested here). */
struct hand {
    struct rules r;
    struct tenant t[2];
    struct ipaddr ips[2][2];
};

static void hand_outbound(struct hand *h, int i, const char *transport, const char *ip1, const char *ip2,
                          const char *helo)
{
    struct tenant *t = &h->t[i];
    t->name = (char *)(i == 0 ? "a" : "b");
    t->outbound.set = true;
    t->outbound.transport = (char *)transport;
    t->outbound.helo = (char *)helo;
    t->outbound.ips = h->ips[i];
    t->outbound.n_ips = 0;
    if (ip1 != NULL)
        ck_assert(ipaddr_parse(ip1, &h->ips[i][t->outbound.n_ips++]));
    if (ip2 != NULL)
        ck_assert(ipaddr_parse(ip2, &h->ips[i][t->outbound.n_ips++]));
    t->outbound.pos = (struct rules_pos){ i == 0 ? "a.yaml" : "b.yaml", 4 + i, 11 };
}

static void hand_init(struct hand *h)
{
    memset(h, 0, sizeof *h);
    h->r.tenants = h->t;
    h->r.n_tenants = 2;
}

START_TEST(same_transport_twice)
{
    struct postern_conf c;
    conf_defaults(&c);
    struct hand h;
    struct pfconf_want w;

    /* same settings, addresses in another order (and written otherwise) */
    hand_init(&h);
    hand_outbound(&h, 0, "shared", "192.0.2.1", "2001:db8::1", "mx.example");
    hand_outbound(&h, 1, "shared", "2001:DB8:0::1", "192.0.2.1", "mx.example");
    pfconf_want_build(&w, &h.r, &c, NULL);
    ck_assert_uint_eq(w.n_errors, 0);
    ck_assert_uint_eq(w.n_transports, 1);
    ck_assert_uint_eq(w.transports[0].n_users, 2);
    pfconf_want_free(&w);

    /* another address */
    hand_init(&h);
    hand_outbound(&h, 0, "shared", "192.0.2.1", NULL, "mx.example");
    hand_outbound(&h, 1, "shared", "192.0.2.2", NULL, "mx.example");
    pfconf_want_build(&w, &h.r, &c, NULL);
    ck_assert_uint_eq(w.n_errors, 1);
    ck_assert_ptr_nonnull(strstr(w.errors[0], "transport shared is set up differently"));
    ck_assert_ptr_nonnull(strstr(w.errors[0], "a.yaml:4"));
    ck_assert_ptr_nonnull(strstr(w.errors[0], "b.yaml:5"));
    ck_assert_ptr_nonnull(strstr(w.errors[0], "192.0.2.2"));
    pfconf_want_free(&w);

    /* another helo, or none */
    hand_init(&h);
    hand_outbound(&h, 0, "shared", "192.0.2.1", NULL, "mx.example");
    hand_outbound(&h, 1, "shared", "192.0.2.1", NULL, NULL);
    pfconf_want_build(&w, &h.r, &c, NULL);
    ck_assert_uint_eq(w.n_errors, 1);
    pfconf_want_free(&w);

    /* named by hand first, then bound: the bound one sets it */
    hand_init(&h);
    hand_outbound(&h, 0, "shared", NULL, NULL, NULL);
    hand_outbound(&h, 1, "shared", "192.0.2.1", "192.0.2.3", "mx.example");
    pfconf_want_build(&w, &h.r, &c, NULL);
    ck_assert_uint_eq(w.n_errors, 0);
    ck_assert_uint_eq(w.n_transports, 1);
    ck_assert(!w.transports[0].manual);
    ck_assert_str_eq(w.transports[0].bind4, "192.0.2.1");
    ck_assert_str_eq(w.transports[0].pos.file, "b.yaml");
    ck_assert_uint_eq(w.transports[0].n_users, 2);
    ck_assert_uint_eq(w.n_warnings, 1);
    pfconf_want_free(&w);

    /* two IPv6 addresses: the first is bound, a warning */
    hand_init(&h);
    h.r.n_tenants = 1;
    hand_outbound(&h, 0, "v6", "2001:db8::2", "2001:db8::1", NULL);
    pfconf_want_build(&w, &h.r, &c, NULL);
    ck_assert_str_eq(w.transports[0].bind6, "2001:db8::2");
    ck_assert_ptr_null(w.transports[0].bind4);
    ck_assert_uint_eq(w.n_warnings, 1);
    ck_assert_ptr_nonnull(strstr(w.warnings[0], "0 IPv4 and 2 IPv6"));
    pfconf_want_free(&w);
    conf_free(&c);
}
END_TEST

START_TEST(main_parse)
{
    struct pfconf_main m;
    pfconf_main_parse("# a comment\n"
                      "myhostname = mx.example\n"
                      "\n"
                      "smtpd_milters = unix:private/a,\n"
                      "    inet:127.0.0.1:1\n"
                      "  # an indented comment\n"
                      "milter_protocol=6\n"
                      "empty =\n"
                      "this line has no equals sign\n"
                      "= no name\n"
                      "two words = x\n"
                      "myhostname = mx2.example\n"
                      "last = no newline",
                      &m);
    ck_assert_str_eq(pfconf_main_get(&m, "smtpd_milters"), "unix:private/a, inet:127.0.0.1:1");
    ck_assert_str_eq(pfconf_main_get(&m, "milter_protocol"), "6");
    ck_assert_str_eq(pfconf_main_get(&m, "empty"), "");
    ck_assert_str_eq(pfconf_main_get(&m, "myhostname"), "mx2.example");
    ck_assert_str_eq(pfconf_main_get(&m, "last"), "no newline");
    ck_assert_ptr_null(pfconf_main_get(&m, "missing"));
    ck_assert_ptr_null(pfconf_main_get(&m, "two words"));
    ck_assert_uint_eq(m.n_bad, 3);
    pfconf_main_free(&m);
    pfconf_main_parse("", &m);
    ck_assert_uint_eq(m.n, 0);
    pfconf_main_free(&m);
    ck_assert_ptr_null(pfconf_main_get(NULL, "x"));
}
END_TEST

START_TEST(master_parse)
{
    struct pfconf_master m;
    pfconf_master_parse(
        "# ==========================================================================\n"
        "smtp      inet  n       -       y       -       -       smtpd\n"
        "smtp      unix  -       -       y       -       -       smtp\n"
        "acme-out  unix  -       -       n       -       -       smtp -o smtp_bind_address=192.0.2.7\n"
        "  -o smtp_helo_name=mx1.acme.example\n"
        "# a comment between continuation lines ends nothing\n"
        "  -o { smtp_bind_address6 = 2001:db8::7 }\n"
        "\t-osmtp_tls_security_level=may\n"
        "odd unix - - n - - smtp -o smtp_helo_name = spaced.example -o {smtp_bind_address=192.0.2.9}\n"
        "short unix - -\n"
        "mailman    unix  -       n       n       -       -       pipe flags=FRX user=list "
        "argv=/usr/lib/mailman/bin/postfix-to-mailman.py ${nexthop} ${user}\n"
        "acme-out  unix  -       -       n       -       -       smtp -o smtp_bind_address=192.0.2.8\n",
        &m);
    ck_assert_uint_eq(m.n, 6);
    ck_assert_uint_eq(m.n_bad, 1);
    ck_assert_str_eq(m.v[0].name, "smtp");
    ck_assert_str_eq(m.v[0].type, "inet");
    ck_assert_str_eq(m.v[0].command, "smtpd");
    ck_assert_str_eq(m.v[1].type, "unix");
    ck_assert_str_eq(m.v[1].fields[2], "y");

    const struct pfconf_service *s = &m.v[2];
    ck_assert_str_eq(s->name, "acme-out");
    ck_assert_int_eq(s->line, 4);
    ck_assert_uint_eq(s->n_opts, 4);
    ck_assert_str_eq(pfconf_service_opt(s, "smtp_bind_address", NULL), "192.0.2.7");
    ck_assert_str_eq(pfconf_service_opt(s, "smtp_helo_name", NULL), "mx1.acme.example");
    ck_assert_str_eq(pfconf_service_opt(s, "smtp_bind_address6", NULL), "2001:db8::7");
    ck_assert_str_eq(pfconf_service_opt(s, "smtp_tls_security_level", NULL), "may");
    ck_assert_ptr_null(pfconf_service_opt(s, "nothing", NULL));

    /* "-o name = value" without braces: Postfix refuses "-o name" */
    s = &m.v[3];
    bool bad;
    ck_assert_ptr_null(pfconf_service_opt(s, "smtp_helo_name", &bad));
    ck_assert(bad);
    ck_assert_uint_eq(s->n_args, 2);
    ck_assert_str_eq(s->args[0], "=");
    ck_assert_str_eq(pfconf_service_opt(s, "smtp_bind_address", &bad), "192.0.2.9");
    ck_assert(!bad);

    ck_assert_str_eq(m.v[4].command, "pipe");
    ck_assert_uint_eq(m.v[4].n_opts, 0);
    ck_assert_uint_eq(m.v[4].n_args, 5);
    ck_assert_str_eq(m.v[5].name, "acme-out");
    pfconf_master_free(&m);

    /* the last -o of a name counts, like Postfix */
    pfconf_master_parse("x unix - - n - - smtp -o a=1 -o a=2\n", &m);
    ck_assert_str_eq(pfconf_service_opt(&m.v[0], "a", NULL), "2");
    pfconf_master_free(&m);
    pfconf_master_parse("", &m);
    ck_assert_uint_eq(m.n, 0);
    pfconf_master_free(&m);
}
END_TEST

/* Compare the fixture's wants with main and master texts. */
static void compare(struct fixture *f, const char *main_text, const char *defaults_text, const char *master_text,
                    struct pfconf_diffs *d)
{
    struct pfconf_main m, dm;
    struct pfconf_master ms;
    pfconf_main_parse(main_text, &m);
    pfconf_main_parse(defaults_text, &dm);
    pfconf_master_parse(master_text, &ms);
    memset(d, 0, sizeof *d);
    pfconf_compare(&f->w, &m, &dm, &ms, d);
    pfconf_main_free(&m);
    pfconf_main_free(&dm);
    pfconf_master_free(&ms);
}

static const struct pfconf_diff *find_diff(const struct pfconf_diffs *d, const char *name, const char *key)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i].name, name) == 0 && strcmp(d->v[i].key, key) == 0)
            return &d->v[i];
    return NULL;
}

static const char GOOD_MAIN[] =
    "queue_directory = /var/spool/postfix\n"
    "smtpd_milters = inet:127.0.0.1:8891, { unix:/var/spool/postfix/private/postern-milter, "
    "default_action = accept }\n"
    "non_smtpd_milters = $smtpd_milters\n"
    "milter_default_action = tempfail\n"
    "smtpd_recipient_restrictions = permit_mynetworks,\n"
    "    check_policy_service { inet:127.0.0.1:10040, default_action=DUNNO },\n"
    "    reject_unauth_destination\n"
    "smtpd_end_of_data_restrictions = ${policy}\n"
    "policy = check_policy_service private/postern-policy\n";
static const char DEFAULTS[] = "milter_protocol = 6\nmilter_default_action = tempfail\n";
static const char GOOD_MASTER[] =
    "smtp      unix  -       -       y       -       -       smtp\n"
    "acme-bulk unix  -       -       n       -       -       smtp -o smtp_bind_address=192.0.2.20\n"
    "acme-out  unix  -       -       n       -       -       smtp -o smtp_bind_address=192.0.2.7 "
    "-o {smtp_bind_address6 = 2001:DB8:0::7} -o smtp_helo_name=MX1.acme.example\n"
    "globex-v6 unix  -       -       n       -       -       smtp -o smtp_bind_address6=2001:db8::9 "
    "-o smtp_helo_name=v6.globex.example -o smtp_tls_security_level=may\n"
    "relay-out unix  -       -       n       -       -       smtp -o relayhost=[relay.example]\n";

START_TEST(compare_agrees)
{
    struct fixture f;
    fixture_up(&f);
    struct pfconf_diffs d;
    compare(&f, GOOD_MAIN, DEFAULTS, GOOD_MASTER, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "unexpected: %s\n", d.v[i].text);
    ck_assert_uint_eq(d.n, 0);
    pfconf_diffs_free(&d);
    fixture_down(&f);
}
END_TEST

START_TEST(compare_master)
{
    struct fixture f;
    fixture_up(&f);
    struct pfconf_diffs d;
    compare(&f, GOOD_MAIN, DEFAULTS,
            "acme-bulk inet  -       -       n       -       -       smtpd\n"
            "acme-out  unix  -       -       n       -       -       smtp -o smtp_bind_address=192.0.2.8\n"
            "  -o smtp_helo_name=other.example -o smtp_bind_address6\n"
            "globex-v6 unix  -       -       n       -       -       smtp -o smtp_bind_address=192.0.2.99 "
            "-o smtp_bind_address6=2001:db8::9 -o smtp_helo_name=v6.globex.example\n"
            "globex-v6 unix  -       -       n       -       -       smtp\n",
            &d);
    const struct pfconf_diff *x;
    /* a service of another type */
    x = find_diff(&d, "acme-bulk", "type");
    ck_assert_ptr_nonnull(x);
    ck_assert_str_eq(x->have, "inet");
    ck_assert_str_eq(x->want, "unix");
    /* a changed bind address: both values and where the rules say it */
    x = find_diff(&d, "acme-out", "smtp_bind_address");
    ck_assert_ptr_nonnull(x);
    ck_assert_str_eq(x->where, "master.cf");
    ck_assert_str_eq(x->have, "192.0.2.8");
    ck_assert_str_eq(x->want, "192.0.2.7");
    ck_assert_ptr_nonnull(strstr(x->rules, "acme.yaml:3"));
    ck_assert_ptr_nonnull(strstr(x->text, "master.cf: transport acme-out: smtp_bind_address is 192.0.2.8, "
                                          "the rules want 192.0.2.7 ("));
    x = find_diff(&d, "acme-out", "smtp_helo_name");
    ck_assert_str_eq(x->have, "other.example");
    /* "-o smtp_bind_address6" without a value: bad, and not set */
    size_t n6 = 0;
    for (size_t i = 0; i < d.n; i++)
        n6 += strcmp(d.v[i].name, "acme-out") == 0 && strcmp(d.v[i].key, "smtp_bind_address6") == 0;
    ck_assert_uint_eq(n6, 2);
    /* globex-v6 binds an IPv4 address the rules do not name; it is there twice */
    x = find_diff(&d, "globex-v6", "smtp_bind_address");
    ck_assert_ptr_nonnull(x);
    ck_assert_str_eq(x->have, "192.0.2.99");
    ck_assert_ptr_null(x->want);
    x = find_diff(&d, "globex-v6", "service");
    ck_assert_ptr_nonnull(strstr(x->text, "defined 2 times"));
    /* relay-out is kept by hand and missing */
    x = find_diff(&d, "relay-out", "service");
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_null(x->have);
    ck_assert_ptr_nonnull(strstr(x->text, "managed by hand"));
    ck_assert_uint_eq(d.n, 8);
    pfconf_diffs_free(&d);

    /* missing transport; another command */
    compare(&f, GOOD_MAIN, DEFAULTS,
            "acme-bulk unix  -       n       n       -       -       pipe flags=R argv=/bin/true\n"
            "relay-out unix  -       -       n       -       -       smtp\n",
            &d);
    x = find_diff(&d, "acme-bulk", "command");
    ck_assert_str_eq(x->have, "pipe");
    x = find_diff(&d, "acme-out", "service");
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_null(x->have);
    ck_assert_ptr_nonnull(strstr(x->text, "transport acme-out is missing, the rules want: acme-out unix"));
    ck_assert_ptr_nonnull(find_diff(&d, "globex-v6", "service"));
    ck_assert_uint_eq(d.n, 3);
    pfconf_diffs_free(&d);
    fixture_down(&f);
}
END_TEST

START_TEST(compare_main)
{
    struct fixture f;
    fixture_up(&f);
    struct pfconf_diffs d;
    const struct pfconf_diff *x;
    /* nothing set, defaults of an old Postfix */
    compare(&f, "queue_directory = /var/spool/postfix\n", "milter_protocol = 2\nmilter_default_action = accept\n",
            GOOD_MASTER, &d);
    ck_assert_uint_eq(d.n, 6);
    x = find_diff(&d, "milter_protocol", "milter_protocol");
    ck_assert_str_eq(x->where, "main.cf");
    ck_assert_str_eq(x->have, "2");
    ck_assert_str_eq(x->want, "6");
    ck_assert_ptr_nonnull(strstr(x->text, "(Postfix's default)"));
    x = find_diff(&d, "smtpd_milters", "smtpd_milters");
    ck_assert_ptr_null(x->have);
    ck_assert_str_eq(x->want, "unix:private/postern-milter");
    x = find_diff(&d, "smtpd_end_of_data_restrictions", "smtpd_end_of_data_restrictions");
    ck_assert_str_eq(x->want, "check_policy_service unix:private/postern-policy");
    pfconf_diffs_free(&d);

    /* wrong values: another milter only, our socket under another
     * directory, the policy service of someone else, a name that is not
     * check_policy_service, $name of an unset parameter */
    compare(&f,
            "smtpd_milters = unix:/srv/pf/private/postern-milter\n"
            "non_smtpd_milters = inet:127.0.0.1:8891 $nothing\n"
            "milter_protocol = 6\n"
            "milter_default_action = accept\n"
            "smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:9999, "
            "unix:private/postern-policy\n"
            "smtpd_end_of_data_restrictions = check_client_access unix:private/postern-policy\n",
            DEFAULTS, GOOD_MASTER, &d);
    ck_assert_uint_eq(d.n, 5);
    ck_assert_ptr_nonnull(find_diff(&d, "smtpd_milters", "smtpd_milters"));
    x = find_diff(&d, "non_smtpd_milters", "non_smtpd_milters");
    ck_assert_str_eq(x->have, "inet:127.0.0.1:8891 $nothing");
    x = find_diff(&d, "milter_default_action", "milter_default_action");
    ck_assert_str_eq(x->text, "main.cf: milter_default_action is accept, postern wants tempfail");
    ck_assert_ptr_nonnull(find_diff(&d, "smtpd_recipient_restrictions", "smtpd_recipient_restrictions"));
    ck_assert_ptr_nonnull(find_diff(&d, "smtpd_end_of_data_restrictions", "smtpd_end_of_data_restrictions"));
    pfconf_diffs_free(&d);

    /* a $name loop does not hang */
    compare(&f, "smtpd_milters = $a\na = $b\nb = $a\n", DEFAULTS, GOOD_MASTER, &d);
    ck_assert_ptr_nonnull(find_diff(&d, "smtpd_milters", "smtpd_milters"));
    pfconf_diffs_free(&d);
    fixture_down(&f);
}
END_TEST

START_TEST(compare_no_rules)
{
    /* no transports, no master.cf: only main.cf counts */
    struct postern_conf c;
    conf_defaults(&c);
    struct pfconf_want w;
    pfconf_want_build(&w, NULL, &c, NULL);
    struct pfconf_main m;
    pfconf_main_parse("smtpd_milters = unix:private/postern-milter\nnon_smtpd_milters = ${smtpd_milters}\n"
                      "milter_default_action = tempfail\nmilter_protocol = 6\n"
                      "smtpd_recipient_restrictions = check_policy_service unix:private/postern-policy\n"
                      "smtpd_end_of_data_restrictions = check_policy_service "
                      "unix:/var/spool/postfix/private/postern-policy\n",
                      &m);
    struct pfconf_diffs d = { NULL, 0 };
    pfconf_compare(&w, &m, NULL, NULL, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "unexpected: %s\n", d.v[i].text);
    ck_assert_uint_eq(d.n, 0);
    pfconf_diffs_free(&d);
    pfconf_main_free(&m);
    pfconf_want_free(&w);
    conf_free(&c);
}
END_TEST

static void add(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, endpoints);
    tcase_add_test(tc, want_from_rules);
    tcase_add_test(tc, want_other_sockets);
    tcase_add_test(tc, same_transport_twice);
    tcase_add_test(tc, main_parse);
    tcase_add_test(tc, master_parse);
    tcase_add_test(tc, compare_agrees);
    tcase_add_test(tc, compare_master);
    tcase_add_test(tc, compare_main);
    tcase_add_test(tc, compare_no_rules);
}
UNIT_MAIN("pfconf", add)
