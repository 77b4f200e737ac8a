/* test_inbound.c: the decisions of milter/inbound.c without an MTA and
 * without DNS: SPF from libspf2's in-memory zone, DMARC from a fixed
 * record (inbound_cfg.test_dmarc_record), no DKIM key lookups (messages
 * unsigned, or signed for a selector the key file lacks).  Each case
 * feeds a message and checks the outcome: the reply, the hold, the
 * Authentication-Results value, the forged headers to remove, the rule
 * and the tenant that decided. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "diag.h"
#include "inbound.h"
#include "rules.h"
#include "rules_load.h"
#include "rules_index.h"
#include "selfcheck.h"
#include "unit.h"

#define PSL "/usr/share/publicsuffix/public_suffix_list.dat"

static char tmpdir[64];
static struct rules *rules;
static struct inbound_cfg cfg;

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
    struct buf err;
    buf_init(&err);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_inbound.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/rules", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_file("rules/hdr.yaml", "tenant: hdr\ndomains: [hdr.example]\n");
    write_file("rules/strict.yaml", "tenant: strict\ndomains: [strict.example]\n"
                                    "inbound: {spf: enforce, dkim: header, dmarc: enforce}\n");
    write_file("rules/quiet.yaml", "tenant: quiet\ndomains: [quiet.example]\n"
                                   "inbound: {spf: off, dkim: off, dmarc: off}\n");
    write_file("rules/good.yaml", "tenant: good\ndomains: [sender.example]\n"
                                  "outbound: {transport: good, ips: [192.0.2.50]}\n");
    write_file("rules/bad.yaml", "tenant: bad\ndomains: [soft.example]\n"
                                 "outbound: {transport: bad, ips: [198.51.100.9]}\n");
    write_file("keys.txt", "");
    struct diags d;
    diags_init(&d);
    rules = rules_load(dir, &d, NULL);
    if (rules == NULL)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(rules);
    diags_free(&d);

    memset(&cfg, 0, sizeof cfg);
    cfg.authserv_id = "mx.test";
    cfg.dkim_max = 5;
    cfg.spf = spf_checker_new(true, &err);
    ck_assert_msg(cfg.spf != NULL, "%s", err.data);
    ck_assert(spf_zone_add(cfg.spf, "sender.example", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"));
    ck_assert(spf_zone_add(cfg.spf, "soft.example", "TXT", "v=spf1 ~all"));
    ck_assert(spf_zone_add(cfg.spf, "slow.example", "TEMPFAIL", NULL));
    ck_assert(spf_zone_add(cfg.spf, "helo.example", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"));
    char keys[128];
    snprintf(keys, sizeof keys, "%s/keys.txt", tmpdir);
    cfg.dkimv = dkimv_lib_new(5, keys, 2, &err);
    ck_assert_msg(cfg.dkimv != NULL, "%s", err.data);
    cfg.dmarc = dmarc_lib_new(PSL, &err);
    ck_assert_msg(cfg.dmarc != NULL, "%s", err.data);
    cfg.test_dmarc_record = "v=DMARC1; p=reject";
    cfg.test_dmarc_domain = "sender.example";
    buf_free(&err);
}

static void teardown(void)
{
    spf_checker_free(cfg.spf);
    dkimv_lib_free(cfg.dkimv);
    dmarc_lib_free(cfg.dmarc);
    rules_unref(rules);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* One message from ip (HELO helo.example, MAIL FROM sender) to rcpt, with
 * the From: values from[] (NULL-terminated) and extra headers (name,
 * value pairs, NULL-terminated). */
static void feed(struct inbound_outcome *out, const char *ip, const char *sender, const char *rcpt,
                 const char *const *from, const char *const *extra)
{
    struct buf err;
    buf_init(&err);
    struct inbound_msg *im = inbound_begin(&cfg, ip, "helo.example", sender, "Q1");
    inbound_rcpt(im, rules, rcpt);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
        ck_assert(inbound_header(im, extra[i], extra[i + 1], &err));
    for (size_t i = 0; from != NULL && from[i] != NULL; i++)
        ck_assert(inbound_header(im, "From", from[i], &err));
    ck_assert(inbound_header(im, "Subject", " hello", &err));
    ck_assert(inbound_eoh(im, &err));
    static const char body[] = "Hello.\r\n";
    ck_assert(inbound_body(im, (const unsigned char *)body, sizeof body - 1, &err));
    inbound_end(im, out);
    inbound_free(im);
    buf_free(&err);
}

static const char *const from_ok[] = { " A <a@sender.example>", NULL };

#define HAS(hay, needle) ck_assert_msg((hay) != NULL && strstr((hay), (needle)) != NULL, "no \"%s\" in \"%s\"", \
                                       (needle), (hay) != NULL ? (hay) : "(null)")

/* Header mode: SPF pass, no signature, DMARC pass by SPF alone. */
START_TEST(header_pass)
{
    struct inbound_outcome o;
    feed(&o, "192.0.2.7", "a@sender.example", "x@hdr.example", from_ok, NULL);
    ck_assert_int_eq(o.action, INBOUND_ACCEPT);
    ck_assert_ptr_nonnull(o.authres);
    ck_assert_msg(strncmp(o.authres, "mx.test;", 8) == 0, "%s", o.authres);
    HAS(o.authres, "spf=pass");
    HAS(o.authres, "smtp.mailfrom=a@sender.example");
    HAS(o.authres, "dkim=none");
    HAS(o.authres, "dmarc=pass");
    HAS(o.authres, "header.from=sender.example");
    HAS(o.summary, "spf=pass");
    ck_assert_str_eq(o.tenant, "hdr");
    inbound_outcome_free(&o);
}
END_TEST

/* DMARC enforce, p=reject, SPF fails: SPF enforce says 550 first. */
START_TEST(spf_enforce_reject)
{
    struct inbound_outcome o;
    feed(&o, "198.51.100.1", "a@sender.example", "x@strict.example", from_ok, NULL);
    ck_assert_int_eq(o.action, INBOUND_REJECT);
    ck_assert_str_eq(o.rcode, "550");
    ck_assert_str_eq(o.xcode, "5.7.1");
    ck_assert_str_eq(o.rule, "inbound.spf");
    ck_assert_str_eq(o.tenant, "strict");
    HAS(o.text, "SPF of sender.example");
    inbound_outcome_free(&o);
}
END_TEST

/* SPF softfail (not enforced), DMARC fails with p=reject: 550 by DMARC;
 * with p=quarantine: the hold queue and the header; p=none: accepted. */
START_TEST(dmarc_policies)
{
    struct inbound_outcome o;
    static const char *const from_soft[] = { " s@soft.example", NULL };
    cfg.test_dmarc_domain = "soft.example";
    feed(&o, "198.51.100.1", "s@soft.example", "x@strict.example", from_soft, NULL);
    ck_assert_int_eq(o.action, INBOUND_REJECT);
    ck_assert_str_eq(o.rule, "inbound.dmarc");
    HAS(o.text, "DMARC policy of soft.example: reject");
    inbound_outcome_free(&o);

    cfg.test_dmarc_record = "v=DMARC1; p=quarantine";
    feed(&o, "198.51.100.1", "s@soft.example", "x@strict.example", from_soft, NULL);
    ck_assert_int_eq(o.action, INBOUND_QUARANTINE);
    HAS(o.authres, "dmarc=fail");
    HAS(o.authres, "spf=softfail");
    inbound_outcome_free(&o);

    cfg.test_dmarc_record = "v=DMARC1; p=none";
    feed(&o, "198.51.100.1", "s@soft.example", "x@strict.example", from_soft, NULL);
    ck_assert_int_eq(o.action, INBOUND_ACCEPT);
    HAS(o.authres, "dmarc=fail");
    inbound_outcome_free(&o);

    /* the same failure to a header-mode tenant: only the header */
    cfg.test_dmarc_record = "v=DMARC1; p=reject";
    feed(&o, "198.51.100.1", "s@soft.example", "x@hdr.example", from_soft, NULL);
    ck_assert_int_eq(o.action, INBOUND_ACCEPT);
    HAS(o.authres, "dmarc=fail");
    inbound_outcome_free(&o);
    /* two recipients: the strictest mode applies */
    struct buf err;
    buf_init(&err);
    struct inbound_msg *im = inbound_begin(&cfg, "198.51.100.1", "helo.example", "s@soft.example", "Q2");
    inbound_rcpt(im, rules, "x@hdr.example");
    inbound_rcpt(im, rules, "y@strict.example");
    ck_assert(inbound_header(im, "From", " s@soft.example", &err));
    ck_assert(inbound_eoh(im, &err));
    inbound_end(im, &o);
    inbound_free(im);
    ck_assert_int_eq(o.action, INBOUND_REJECT);
    ck_assert_str_eq(o.tenant, "strict");
    inbound_outcome_free(&o);
    buf_free(&err);
}
END_TEST

/* From: missing, repeated, several addresses, no domain, a domain
 * literal: dmarc=permerror; enforced: 550, unless inbound_bad_from accept. */
START_TEST(bad_from)
{
    static const char *const two_hdrs[] = { " a@sender.example", " b@sender.example", NULL };
    static const char *const two_addrs[] = { " a@sender.example, b@other.example", NULL };
    static const char *const literal[] = { " a@[192.0.2.1]", NULL };
    static const char *const nodomain[] = { " undisclosed", NULL };
    const char *const *cases[] = { NULL, two_hdrs, two_addrs, literal, nodomain };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct inbound_outcome o;
        feed(&o, "192.0.2.7", "a@sender.example", "x@strict.example", cases[i], NULL);
        ck_assert_msg(o.action == INBOUND_REJECT, "case %zu", i);
        ck_assert_str_eq(o.rule, "inbound.dmarc");
        HAS(o.text, "exactly one From: address");
        inbound_outcome_free(&o);
        feed(&o, "192.0.2.7", "a@sender.example", "x@hdr.example", cases[i], NULL);
        ck_assert_int_eq(o.action, INBOUND_ACCEPT);
        HAS(o.authres, "dmarc=permerror");
        inbound_outcome_free(&o);
    }
    cfg.bad_from_accept = true;
    struct inbound_outcome o;
    feed(&o, "192.0.2.7", "a@sender.example", "x@strict.example", two_addrs, NULL);
    ck_assert_int_eq(o.action, INBOUND_ACCEPT);
    HAS(o.authres, "dmarc=permerror");
    inbound_outcome_free(&o);
}
END_TEST

/* SPF temperror when enforced: 451 4.7.0, or accepted with temperror. */
START_TEST(temperror)
{
    static const char *const from_slow[] = { " s@slow.example", NULL };
    cfg.test_dmarc_domain = "slow.example";
    cfg.test_dmarc_record = "v=DMARC1; p=none";
    struct inbound_outcome o;
    feed(&o, "192.0.2.7", "s@slow.example", "x@strict.example", from_slow, NULL);
    ck_assert_int_eq(o.action, INBOUND_TEMPFAIL);
    ck_assert_str_eq(o.rcode, "451");
    ck_assert_str_eq(o.xcode, "4.7.0");
    ck_assert_str_eq(o.rule, "inbound.spf");
    inbound_outcome_free(&o);
    cfg.temperror_accept = true;
    feed(&o, "192.0.2.7", "s@slow.example", "x@strict.example", from_slow, NULL);
    ck_assert_int_eq(o.action, INBOUND_ACCEPT);
    HAS(o.authres, "spf=temperror");
    inbound_outcome_free(&o);
}
END_TEST

/* Authentication-Results headers claiming our authserv-id (any case,
 * after a comment, quoted) are removed, last first; others are kept. */
START_TEST(forged_authres)
{
    static const char *const extra[] = {
        "Authentication-Results", " mx.test; dmarc=pass header.from=sender.example",
        "Authentication-Results", " other.example; spf=pass",
        "Authentication-Results", " (forged) MX.TEST; dkim=pass",
        "Authentication-Results", " \"mx.test\" 1; spf=pass",
        NULL,
    };
    struct inbound_outcome o;
    feed(&o, "192.0.2.7", "a@sender.example", "x@hdr.example", from_ok, extra);
    ck_assert_uint_eq(o.n_remove, 3);
    ck_assert_int_eq(o.remove[0], 4);
    ck_assert_int_eq(o.remove[1], 3);
    ck_assert_int_eq(o.remove[2], 1);
    ck_assert(!o.remove_overflow);
    inbound_outcome_free(&o);
}
END_TEST

/* Modes off everywhere: no checks, no header, forged ones still removed. */
START_TEST(all_off)
{
    static const char *const extra[] = { "Authentication-Results", " mx.test; dmarc=pass", NULL };
    struct inbound_outcome o;
    feed(&o, "198.51.100.1", "a@sender.example", "x@quiet.example", from_ok, extra);
    ck_assert_int_eq(o.action, INBOUND_ACCEPT);
    ck_assert_ptr_null(o.authres);
    ck_assert_uint_eq(o.n_remove, 1);
    inbound_outcome_free(&o);
}
END_TEST

/* A signature whose key is not in the key file: dkim=permerror with the
 * signature's d= and s=, DMARC still passes by SPF. */
START_TEST(dkim_missing_key)
{
    static const char *const extra[] = {
        "DKIM-Signature",
        " v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.example; s=gone;\r\n\th=from:subject; "
        "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAAAAAAAAAAAAAA",
        NULL,
    };
    struct inbound_outcome o;
    feed(&o, "192.0.2.7", "a@sender.example", "x@hdr.example", from_ok, extra);
    ck_assert_int_eq(o.action, INBOUND_ACCEPT);
    HAS(o.authres, "header.d=sender.example");
    HAS(o.authres, "header.s=gone");
    ck_assert_msg(strstr(o.authres, "dkim=pass") == NULL, "%s", o.authres);
    HAS(o.authres, "dmarc=pass");
    inbound_outcome_free(&o);
}
END_TEST

/* More headers than DKIM verification takes: the signatures end as
 * permerror without being verified, and the message is still checked. */
START_TEST(dkim_too_many_headers)
{
    struct buf err;
    buf_init(&err);
    struct inbound_msg *im = inbound_begin(&cfg, "192.0.2.7", "helo.example", "a@sender.example", "Q3");
    inbound_rcpt(im, rules, "x@hdr.example");
    ck_assert(inbound_header(im, "DKIM-Signature",
                             " v=1; a=rsa-sha256; d=sender.example; s=gone; h=from; bh=AAAA; b=AAAA", &err));
    ck_assert(inbound_header(im, "From", " a@sender.example", &err));
    for (int i = 0; i < 1200; i++)
        ck_assert(inbound_header(im, "X-Filler", " x", &err));
    ck_assert(inbound_eoh(im, &err));
    struct inbound_outcome o;
    inbound_end(im, &o);
    inbound_free(im);
    HAS(o.authres, "dkim=permerror");
    HAS(o.summary, "more than 1000 headers or 1048576 bytes of headers: not verified");
    HAS(o.authres, "dmarc=pass");
    inbound_outcome_free(&o);
    buf_free(&err);
}
END_TEST

/* The outbound self-check: once per tenant and hour; a tenant whose
 * outbound IP its SPF record lists and whose mail we sign is fine; one
 * whose record does not list it, unsigned, is warned of both SPF and
 * DMARC. */
START_TEST(selfcheck)
{
    struct selfcheck *sc = selfcheck_new();
    ck_assert(selfcheck_due(sc, "good", 7200));
    ck_assert(!selfcheck_due(sc, "good", 7200 + 3599));
    ck_assert(selfcheck_due(sc, "bad", 7300));
    ck_assert(selfcheck_due(sc, "good", 7200 + 3600));
    ck_assert(!selfcheck_due(sc, "good", 7200 + 3700));
    selfcheck_free(sc);

    struct buf w;
    buf_init(&w);
    const struct tenant *good = rules_find_domain(rules, "sender.example");
    const struct tenant *bad = rules_find_domain(rules, "soft.example");
    ck_assert(good != NULL && bad != NULL);
    selfcheck_run(&cfg, good, "news@sender.example", "sender.example", "sender.example", &w);
    ck_assert_msg(w.len == 0, "%s", w.data);
    cfg.test_dmarc_domain = "soft.example";
    selfcheck_run(&cfg, bad, "news@soft.example", "soft.example", NULL, &w);
    HAS(w.data, "spf: the SPF record of soft.example gives softfail for outbound IP 198.51.100.9");
    HAS(w.data, "dmarc: soft.example fails DMARC (policy reject)");
    buf_reset(&w);
    /* signed with the From: domain: DMARC passes, SPF still warned */
    selfcheck_run(&cfg, bad, "news@soft.example", "soft.example", "soft.example", &w);
    HAS(w.data, "spf: ");
    ck_assert_msg(strstr(w.data, "dmarc:") == NULL, "%s", w.data);
    buf_free(&w);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, header_pass);
    tcase_add_test(tc, spf_enforce_reject);
    tcase_add_test(tc, dmarc_policies);
    tcase_add_test(tc, bad_from);
    tcase_add_test(tc, temperror);
    tcase_add_test(tc, forged_authres);
    tcase_add_test(tc, all_off);
    tcase_add_test(tc, dkim_missing_key);
    tcase_add_test(tc, dkim_too_many_headers);
    tcase_add_test(tc, selfcheck);
}

UNIT_MAIN("inbound", add_tests)
