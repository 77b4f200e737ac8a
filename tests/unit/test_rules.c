/* test_rules.c: the rule snapshot and its index: loading the shipped
 * examples, identification lookups (login, "*" by domain, sender, client
 * longest prefix, IPv4-mapped clients), inheritance of effective settings,
 * cross-file conflicts and a 2,000-tenant load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "rules.h"
#include "rules_index.h"
#include "rules_load.h"
#include "unit.h"

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    strcpy(tmpdir, "/tmp/postern-rules-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct rules *load_examples(void)
{
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_load(SRCDIR "/rules/examples", &d, NULL);
    diags_print(&d, stderr);
    ck_assert_uint_eq(d.n, 0);
    diags_free(&d);
    ck_assert_ptr_nonnull(r);
    return r;
}

START_TEST(examples_load)
{
    struct rules *r = load_examples();
    ck_assert_uint_eq(r->n_tenants, 3);
    ck_assert_str_eq(r->tenants[0].name, "acme");
    ck_assert_str_eq(r->tenants[1].name, "globex");
    ck_assert_str_eq(r->tenants[2].name, "initech");
    const struct tenant *t = rules_tenant(r, "acme");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->n_domains, 2);
    ck_assert(!t->limits.messages[WIN_DAY].set);                 /* no cap */
    ck_assert_uint_eq(t->limits.bytes[WIN_DAY].count, 50ull << 30);
    ck_assert_ptr_eq(rules_tenant(r, "ACME"), t);                 /* case-insensitive */
    ck_assert_uint_eq(t->limits.message_size, 25u << 20);
    ck_assert_ptr_null(rules_tenant(r, "nobody"));
    rules_unref(r);
}
END_TEST

START_TEST(identify_login)
{
    struct rules *r = load_examples();
    const struct account *a = rules_find_login(r, "newsletter@news.acme.example");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->name, "newsletter@news.acme.example");
    ck_assert_str_eq(a->tenant->name, "acme");
    /* case-insensitive */
    a = rules_find_login(r, "NewsLetter@News.ACME.example");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->name, "newsletter@news.acme.example");
    /* undeclared login of a tenant domain: that tenant's "*" account */
    a = rules_find_login(r, "someone@globex.example");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->name, "*");
    ck_assert_str_eq(a->tenant->name, "globex");
    ck_assert(!a->implicit);
    ck_assert_uint_eq(a->limits.messages[WIN_DAY].count, 300);
    /* a tenant without a declared "*" still has one (implicit) */
    a = rules_find_login(r, "x@initech.example");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->tenant->name, "initech");
    /* unknown domain, bare unknown login, subdomain of a tenant domain */
    ck_assert_ptr_null(rules_find_login(r, "x@example.org"));
    ck_assert_ptr_null(rules_find_login(r, "jdoe"));
    ck_assert_ptr_null(rules_find_login(r, "x@sub.globex.example"));
    rules_unref(r);
}
END_TEST

START_TEST(identify_sender_and_domain)
{
    struct rules *r = load_examples();
    ck_assert_str_eq(rules_find_domain(r, "ACME.example.")->name, "acme");
    ck_assert_str_eq(rules_find_sender_tenant(r, "bob@billing.initech.example")->name, "initech");
    ck_assert_ptr_null(rules_find_sender_tenant(r, "bob"));
    ck_assert_ptr_null(rules_find_account(r, "bob@globex.example"));
    ck_assert_ptr_nonnull(rules_find_account(r, "ceo@globex.example"));
    rules_unref(r);
}
END_TEST

static const char *client_tenant(const struct rules *r, const char *ip)
{
    struct ipaddr a;
    ck_assert_msg(ipaddr_parse(ip, &a), "parse %s", ip);
    const struct tenant *t = rules_find_client(r, &a);
    return t ? t->name : "-";
}

START_TEST(identify_client)
{
    struct rules *r = load_examples();
    ck_assert_str_eq(client_tenant(r, "203.0.113.10"), "acme");
    ck_assert_str_eq(client_tenant(r, "::ffff:203.0.113.10"), "acme");
    ck_assert_str_eq(client_tenant(r, "203.0.113.11"), "-");
    ck_assert_str_eq(client_tenant(r, "2001:db8:10:ffff::1"), "acme");
    ck_assert_str_eq(client_tenant(r, "2001:db8:11::1"), "-");
    ck_assert_str_eq(client_tenant(r, "192.0.2.64"), "initech");
    ck_assert_str_eq(client_tenant(r, "192.0.2.79"), "initech");
    ck_assert_str_eq(client_tenant(r, "192.0.2.80"), "-");
    ck_assert_str_eq(client_tenant(r, "127.0.0.1"), "-");
    rules_unref(r);
}
END_TEST

START_TEST(client_longest_prefix)
{
    struct diags d;
    /* One tenant may nest its own networks; the longest prefix decides,
     * which matters once several tenants' networks sit side by side. */
    write_file("a.yaml", "tenant: a\ndomains: [a.example]\nclients: [10.0.0.0/8, 10.1.0.0/16]\n");
    write_file("b.yaml", "tenant: b\ndomains: [b.example]\nclients: [10.2.0.0/16, '::/0']\n");
    diags_init(&d);
    struct rules *r = rules_load(tmpdir, &d, NULL);
    diags_print(&d, stderr);
    /* 10.2/16 lies in a's 10/8; ::/0 holds the IPv4-mapped space too, so
     * it overlaps both of a's networks: three conflicts */
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(d.n, 3);
    diags_free(&d);
    write_file("b.yaml", "tenant: b\ndomains: [b.example]\nclients: [11.0.0.0/8, '2001:db8::/32']\n");
    diags_init(&d);
    r = rules_load(tmpdir, &d, NULL);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(client_tenant(r, "10.1.2.3"), "a");
    ck_assert_str_eq(client_tenant(r, "10.200.2.3"), "a");
    ck_assert_str_eq(client_tenant(r, "11.0.0.1"), "b");
    ck_assert_str_eq(client_tenant(r, "2001:db8:ffff::1"), "b");
    ck_assert_str_eq(client_tenant(r, "2001:db9::1"), "-");
    rules_unref(r);
    diags_free(&d);
}
END_TEST

START_TEST(effective_settings)
{
    struct rules *r = load_examples();
    const struct account *a = rules_find_login(r, "newsletter@news.acme.example");
    uint64_t v;
    ck_assert(a->outbound.set);
    ck_assert_str_eq(account_outbound(a)->transport, "acme-bulk");
    ck_assert(a->limits.messages[WIN_DAY].unlimited);
    ck_assert(account_message_size(a, &v));
    ck_assert_uint_eq(v, 25u << 20);                  /* tenant's */
    ck_assert(account_rcpt_per_msg(a, &v));
    ck_assert_uint_eq(v, 500);
    ck_assert_int_eq(account_on_exceed(a), EXCEED_DEFER);
    ck_assert(a->pace.set);
    ck_assert_int_eq(a->pace.mode, PACE_HOLD);
    ck_assert_uint_eq(a->pace.rate.count, 600);
    ck_assert_uint_eq(a->pace.rate.period_s, 3600);
    ck_assert_uint_eq(a->pace.burst, 50);
    a = rules_find_login(r, "other@acme.example");
    ck_assert_str_eq(account_outbound(a)->transport, "acme-out");   /* tenant's */
    a = rules_find_login(r, "ceo@globex.example");
    ck_assert_ptr_null(account_outbound(a));                        /* no binding */
    ck_assert(account_rcpt_per_msg(a, &v));
    ck_assert_uint_eq(v, 300);                                      /* own */
    a = rules_find_login(r, "billing@billing.initech.example");
    ck_assert_int_eq(a->pace.mode, PACE_DELAY);
    ck_assert_uint_eq(a->pace.max_delay_ms, 20000);
    const struct tenant *t = rules_tenant(r, "globex");
    ck_assert(t->limits.messages[WIN_HOUR].set);
    ck_assert(t->limits.messages[WIN_DAY].set);
    ck_assert(!t->limits.messages[WIN_WEEK].set);
    ck_assert_int_eq(t->inbound.spf, INBOUND_ENFORCE);
    ck_assert_int_eq(t->scan.spam, SPAM_QUARANTINE);
    ck_assert_uint_eq(t->scan.max_size, 20u << 20);
    t = rules_tenant(r, "initech");
    ck_assert(!t->dkim[2].active);
    ck_assert_int_eq(t->dkim[1].algorithm, 2);
    ck_assert_int_eq(t->inbound.dmarc, INBOUND_HEADER);            /* default */
    rules_unref(r);
}
END_TEST

START_TEST(refcount)
{
    struct rules *r = load_examples();
    struct rules *held = rules_ref(r);
    rules_unref(r);                 /* a reload swapped it out */
    ck_assert_str_eq(held->tenants[0].name, "acme");   /* still usable */
    rules_unref(held);
}
END_TEST

START_TEST(empty_dir_and_missing_dir)
{
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_load(tmpdir, &d, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->n_tenants, 0);
    rules_unref(r);
    r = rules_load("/nonexistent/rules.d", &d, NULL);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.msgs[0], "/nonexistent/rules.d: cannot open the rules directory: No such file or directory");
    diags_free(&d);
}
END_TEST

START_TEST(ignores_non_yaml_files)
{
    struct diags d;
    write_file("a.yaml", "tenant: a\ndomains: [a.example]\n");
    write_file("a.yaml~", "garbage: [\n");
    write_file(".hidden.yaml", "garbage: [\n");
    write_file("README", "not yaml\n");
    diags_init(&d);
    struct rules *r = rules_load(tmpdir, &d, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->n_tenants, 1);
    ck_assert_uint_eq(r->n_files, 1);
    rules_unref(r);
    diags_free(&d);
}
END_TEST

START_TEST(many_tenants)
{
    struct diags d;
    char name[64], text[512];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "t%04d.yaml", i);
        snprintf(text, sizeof text,
                 "tenant: t%04d\ndomains: [t%04d.example]\nclients: [10.%d.%d.0/24]\n"
                 "accounts:\n  u1@t%04d.example: {limits: {messages: 10/day}}\n  u2: {}\n",
                 i, i, i / 256, i % 256, i);
        /* bare login u2 appears in every tenant: a conflict, except here */
        if (i > 0)
            snprintf(text, sizeof text,
                     "tenant: t%04d\ndomains: [t%04d.example]\nclients: [10.%d.%d.0/24]\n"
                     "accounts:\n  u1@t%04d.example: {limits: {messages: 10/day}}\n",
                     i, i, i / 256, i % 256, i);
        write_file(name, text);
    }
    diags_init(&d);
    struct rules *r = rules_load(tmpdir, &d, NULL);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->n_tenants, 2000);
    ck_assert_str_eq(client_tenant(r, "10.7.207.9"), "t1999");
    ck_assert_str_eq(rules_find_login(r, "u1@t1234.example")->tenant->name, "t1234");
    ck_assert_str_eq(rules_find_login(r, "u2")->tenant->name, "t0000");
    rules_unref(r);
    diags_free(&d);
}
END_TEST

START_TEST(same_transport_any_order)
{
    struct diags d;
    /* A tenant may repeat its bound transport on an account with the same
     * addresses in another order; another tenant may not name it. */
    write_file("x.yaml", "tenant: x\ndomains: [x.example]\n"
                         "outbound: {transport: t1, ips: [192.0.2.1, 192.0.2.2]}\n"
                         "accounts:\n  a@x.example: {outbound: {transport: t1, ips: [192.0.2.2, 192.0.2.1]}}\n");
    diags_init(&d);
    struct rules *r = rules_load(tmpdir, &d, NULL);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(r);
    rules_unref(r);
    write_file("y.yaml", "tenant: y\ndomains: [y.example]\noutbound: {transport: t1}\n");
    r = rules_load(tmpdir, &d, NULL);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.msgs[0], "y.yaml:3:11: outbound transport t1 already belongs to tenant x"));
    diags_free(&d);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, examples_load);
    tcase_add_test(tc, identify_login);
    tcase_add_test(tc, identify_sender_and_domain);
    tcase_add_test(tc, identify_client);
    tcase_add_test(tc, client_longest_prefix);
    tcase_add_test(tc, effective_settings);
    tcase_add_test(tc, refcount);
    tcase_add_test(tc, empty_dir_and_missing_dir);
    tcase_add_test(tc, ignores_non_yaml_files);
    tcase_add_test(tc, many_tenants);
    tcase_add_test(tc, same_transport_any_order);
}

UNIT_MAIN("rules", add_tests)
