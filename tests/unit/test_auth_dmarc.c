/* test_auth_dmarc.c: unit tests of the DMARC evaluation (milter/auth_dmarc.c)
 * over libopendmarc, with a small public suffix list written at set-up
 * (and Debian's, when the publicsuffix package is installed) and the
 * record handed in (struct dmarc_input.record) or, for the DNS path,
 * libopendmarc's fake DNS table (opendmarc_dns_fake_record, filled once
 * before the tests fork: every lookup of the process then answers from
 * the table, so no test touches the network).  Pass by SPF only, by DKIM
 * only and by both; fail with p=none, quarantine and reject; identifiers
 * that do not align (another domain, a public suffix, a one-letter
 * neighbour, a failing signature, strict adkim=/aspf= against a
 * subdomain: cases where libopendmarc 1.4.2 alone says aligned or loses a
 * pass); sp= for a subdomain; pct=; bad records (permerror, including tags
 * near the size of libopendmarc's parser buffers) and TXT text that is no
 * DMARC record (none); the DNS path with the fallback to the
 * organizational domain (not to a public suffix) and no record at all;
 * organizational domains (including one-letter labels libopendmarc gets
 * wrong) and the names refused; the process-wide library (reference
 * count, another list refused, lists that do not load); four threads
 * evaluating at once.  A DNS temporary failure cannot be faked here
 * (libopendmarc's table answers or says "no data"): the lab tests it. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opendmarc/dmarc.h>

#include "auth_dmarc.h"
#include "buf.h"
#include "unit.h"

#define SYSTEM_PSL "/usr/share/publicsuffix/public_suffix_list.dat"

/* --- fixture: a public suffix list, a library ------------------------------ */

static const char psl_text[] =
    "// a test list in the format of publicsuffix.org\n"
    "\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "org\n"
    "net\n"
    "uk\n"
    "co.uk\n"
    "jp\n"
    "*.kawasaki.jp\n"
    "!city.kawasaki.jp\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "github.io\n";

static char tmpdir[64];
static char psl[128];
static struct dmarc_lib *lib;

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_auth_dmarc.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    path_in(psl, sizeof psl, "psl.dat");
    write_text(psl, psl_text);
    struct buf err;
    buf_init(&err);
    lib = dmarc_lib_new(psl, &err);
    ck_assert_msg(lib != NULL, "dmarc_lib_new: %s", err.data);
    buf_free(&err);
}

static void teardown(void)
{
    dmarc_lib_free(lib);
    lib = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* --- helpers ------------------------------------------------------------------ */

static struct dkimv_sig sig(const char *domain, enum dkimv_result r)
{
    struct dkimv_sig s;
    memset(&s, 0, sizeof s);
    s.result = r;
    snprintf(s.domain, sizeof s.domain, "%s", domain);
    snprintf(s.selector, sizeof s.selector, "sel1");
    snprintf(s.algorithm, sizeof s.algorithm, "rsa-sha256");
    return s;
}

/* An input with From: from, the record text record found at rdom (NULL:
 * at from; record NULL: DNS), no SPF and no DKIM. */
static struct dmarc_input input(const char *from, const char *record, const char *rdom)
{
    struct dmarc_input in;
    memset(&in, 0, sizeof in);
    in.ip = "192.0.2.25";
    in.from_domain = from;
    in.spf = SPF_NONE;
    in.record = record;
    in.record_domain = rdom;
    return in;
}

static struct dmarc_verdict evaluate(const struct dmarc_input *in)
{
    struct dmarc_verdict v;
    memset(&v, 0x5a, sizeof v);      /* dmarc_evaluate must set everything */
    dmarc_evaluate(lib, in, &v);
    return v;
}

#define ck_result(v, r) \
    ck_assert_msg((v).result == (r), "result %s, not %s (%s)", dmarc_result_name((v).result), \
                  dmarc_result_name(r), (v).reason)
#define ck_policy(got, want) \
    ck_assert_msg((got) == (want), "policy \"%s\", not \"%s\"", dmarc_policy_name(got), dmarc_policy_name(want))

static const char *org_of(const char *domain)
{
    static char out[256];
    ck_assert_msg(dmarc_org_domain(lib, domain, out, sizeof out), "%s refused", domain);
    return out;
}

/* --- pass ---------------------------------------------------------------------- */

START_TEST(test_pass_spf_only)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject", NULL);
    in.spf = SPF_PASS;
    in.spf_domain = "bounce.example.com";       /* relaxed alignment */
    struct dkimv_sig s = sig("other.example.net", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.spf_aligned);
    ck_assert(!v.dkim_aligned);
    ck_policy(v.policy, DMARC_P_REJECT);
    ck_policy(v.p, DMARC_P_REJECT);
    ck_policy(v.sp, DMARC_P_REJECT);
    ck_assert(!v.subdomain_policy);
    ck_assert_str_eq(v.policy_domain, "example.com");
    ck_assert_str_eq(v.org_domain, "example.com");
    ck_assert_str_eq(v.reason, "");
}
END_TEST

START_TEST(test_pass_dkim_only)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=quarantine", NULL);
    in.spf = SPF_FAIL;
    in.spf_domain = "example.com";
    struct dkimv_sig s[2] = {sig("mailer.example.org", DKIMV_PASS), sig("example.com", DKIMV_PASS)};
    in.dkim = s;
    in.n_dkim = 2;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.dkim_aligned);
    ck_assert(!v.spf_aligned);
    ck_policy(v.policy, DMARC_P_QUARANTINE);
}
END_TEST

START_TEST(test_pass_both)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject", NULL);
    in.spf = SPF_PASS;
    in.spf_domain = "example.com";
    struct dkimv_sig s = sig("mail.example.com", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.dkim_aligned);
    ck_assert(v.spf_aligned);
}
END_TEST

START_TEST(test_pass_helo_and_ipv6)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject", NULL);
    in.ip = "2001:db8::25";
    in.spf = SPF_PASS;
    in.spf_domain = "mx1.example.com";          /* null sender: HELO */
    in.spf_helo = true;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.spf_aligned);
    in.ip = "not an address";                  /* only stored: no effect */
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    in.ip = NULL;
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
}
END_TEST

START_TEST(test_relaxed_sibling_and_parent)
{
    struct dmarc_input in = input("a.example.com", "v=DMARC1; p=reject", "example.com");
    struct dkimv_sig s = sig("b.example.com", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.dkim_aligned);
    s = sig("example.com", DKIMV_PASS);
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    /* upper case from the signature is fine */
    s = sig("EXAMPLE.com", DKIMV_PASS);
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
}
END_TEST

/* --- fail ------------------------------------------------------------------------ */

START_TEST(test_fail_policies)
{
    static const struct {
        const char *record;
        enum dmarc_policy p;
    } cases[] = {
        {"v=DMARC1; p=none", DMARC_P_NONE},
        {"v=DMARC1; p=quarantine", DMARC_P_QUARANTINE},
        {"v=DMARC1; p=reject", DMARC_P_REJECT},
        {"v=DMARC1;p=reject;rua=mailto:dmarc@example.com", DMARC_P_REJECT},
        /* lists longer than an item may be */
        {"v=DMARC1; p=reject; rua=mailto:dmarc-reports-aggregate-1@reports.example.com,"
         "mailto:dmarc-reports-aggregate-2@reports.example.com,mailto:dmarc-reports-aggregate-3@reports.example.com,"
         "mailto:dmarc-reports-aggregate-4@reports.example.com,mailto:dmarc-reports-aggregate-5@reports.example.com;"
         " ruf=mailto:f@example.com; fo=0:1:d:s; rf=afrf; ri=3600; adkim=r; aspf=r; pct=100", DMARC_P_REJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dmarc_input in = input("example.com", cases[i].record, NULL);
        in.spf = SPF_PASS;
        in.spf_domain = "bounce.example.net";  /* passes, does not align */
        struct dkimv_sig s = sig("example.org", DKIMV_PASS);
        in.dkim = &s;
        in.n_dkim = 1;
        struct dmarc_verdict v = evaluate(&in);
        ck_result(v, DMARC_FAIL);
        ck_policy(v.policy, cases[i].p);
        ck_policy(v.p, cases[i].p);
        ck_policy(v.sp, cases[i].p);
        ck_assert(!v.spf_aligned);
        ck_assert(!v.dkim_aligned);
        ck_assert(!v.subdomain_policy);
        ck_assert_str_eq(v.policy_domain, "example.com");
    }
}
END_TEST

START_TEST(test_fail_without_results)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject", NULL);
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    in.spf = SPF_SOFTFAIL;
    in.spf_domain = "example.com";
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    in.spf = SPF_TEMPERROR;
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    in.spf = SPF_PASS;
    in.spf_domain = "[192.0.2.25]";             /* not a domain: nothing to align */
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
}
END_TEST

/* Only a passing signature counts; a failing one of the From: domain after
 * an aligned pass does not undo the pass (libopendmarc would). */
START_TEST(test_dkim_not_pass)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject", NULL);
    struct dkimv_sig s[3] = {sig("example.com", DKIMV_FAIL), sig("example.com", DKIMV_NEUTRAL),
                             sig("example.com", DKIMV_TEMPERROR)};
    in.dkim = s;
    in.n_dkim = 3;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_assert(!v.dkim_aligned);
    s[0] = sig("mail.example.com", DKIMV_PASS);
    s[1] = sig("example.com", DKIMV_FAIL);
    in.n_dkim = 2;
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.dkim_aligned);
    /* a d= that is not a domain is skipped */
    s[0] = sig("exa mple.com", DKIMV_PASS);
    in.n_dkim = 1;
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
}
END_TEST

/* adkim=s: only the From: domain itself aligns (libopendmarc 1.4.2 alone
 * takes mail.example.com as strictly aligned with example.com). */
START_TEST(test_strict_dkim)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject; adkim=s", NULL);
    struct dkimv_sig s = sig("mail.example.com", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_assert(!v.dkim_aligned);
    in = input("a.example.com", "v=DMARC1; p=reject; adkim=s", "example.com");
    s = sig("example.com", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    s = sig("a.example.com", DKIMV_PASS);
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.dkim_aligned);
    /* adkim=s does not touch SPF */
    in.n_dkim = 0;
    in.spf = SPF_PASS;
    in.spf_domain = "bounce.example.com";
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.spf_aligned);
}
END_TEST

START_TEST(test_strict_spf)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject; aspf=s", NULL);
    in.spf = SPF_PASS;
    in.spf_domain = "bounce.example.com";
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_assert(!v.spf_aligned);
    in.spf_domain = "example.com";
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.spf_aligned);
    /* aspf=s does not touch DKIM */
    in.spf_domain = "bounce.example.com";
    struct dkimv_sig s = sig("mail.example.com", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_assert(v.dkim_aligned);
    ck_assert(!v.spf_aligned);
}
END_TEST

/* A public suffix is not an organizational domain (libopendmarc 1.4.2
 * alone aligns d=co.uk with example.co.uk), and one-letter names are
 * distinct (it aligns y.com with x.com). */
START_TEST(test_not_aligned_above_org)
{
    struct dmarc_input in = input("example.co.uk", "v=DMARC1; p=reject", NULL);
    in.spf = SPF_PASS;
    in.spf_domain = "co.uk";
    struct dkimv_sig s = sig("co.uk", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_assert(!v.spf_aligned);
    ck_assert(!v.dkim_aligned);
    in = input("x.com", "v=DMARC1; p=reject", NULL);
    s = sig("y.com", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_assert_str_eq(v.org_domain, "x.com");
    s = sig("mail.x.com", DKIMV_PASS);
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
}
END_TEST

/* --- p= and sp= --------------------------------------------------------------- */

START_TEST(test_subdomain_policy)
{
    struct dmarc_input in = input("a.example.com", "v=DMARC1; p=reject; sp=quarantine", "example.com");
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_policy(v.policy, DMARC_P_QUARANTINE);
    ck_policy(v.p, DMARC_P_REJECT);
    ck_policy(v.sp, DMARC_P_QUARANTINE);
    ck_assert(v.subdomain_policy);
    ck_assert_str_eq(v.policy_domain, "example.com");
    ck_assert_str_eq(v.org_domain, "example.com");
    /* the same record for the domain itself: p= */
    in = input("example.com", "v=DMARC1; p=reject; sp=quarantine", NULL);
    v = evaluate(&in);
    ck_policy(v.policy, DMARC_P_REJECT);
    ck_assert(!v.subdomain_policy);
    /* no sp=: p= for subdomains too */
    in = input("a.b.example.com", "v=DMARC1; p=reject", "example.com");
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_policy(v.policy, DMARC_P_REJECT);
    ck_policy(v.sp, DMARC_P_REJECT);
    ck_assert(v.subdomain_policy);
    /* sp=none on a pass: the policy is still reported */
    in = input("a.example.com", "v=DMARC1; p=reject; sp=none", "example.com");
    in.spf = SPF_PASS;
    in.spf_domain = "a.example.com";
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_policy(v.policy, DMARC_P_NONE);
}
END_TEST

/* pct=: a failing message outside the sample gets the next lower policy
 * (libopendmarc only parses pct=). */
START_TEST(test_pct)
{
    struct dmarc_input in = input("example.com", "v=DMARC1; p=reject; pct=0", NULL);
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_policy(v.policy, DMARC_P_QUARANTINE);
    ck_policy(v.p, DMARC_P_REJECT);
    in.record = "v=DMARC1; p=quarantine; pct=0";
    v = evaluate(&in);
    ck_policy(v.policy, DMARC_P_NONE);
    in.record = "v=DMARC1; p=none; pct=0";
    v = evaluate(&in);
    ck_policy(v.policy, DMARC_P_NONE);
    in.record = "v=DMARC1; p=reject; pct=100";
    v = evaluate(&in);
    ck_policy(v.policy, DMARC_P_REJECT);
    /* a pass is not sampled */
    in.record = "v=DMARC1; p=reject; pct=0";
    in.spf = SPF_PASS;
    in.spf_domain = "example.com";
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    ck_policy(v.policy, DMARC_P_REJECT);
    /* pct=50: both outcomes within 200 messages (a chance of 2^-199 not to) */
    in.spf = SPF_NONE;
    in.record = "v=DMARC1; p=reject; pct=50";
    unsigned rejected = 0, quarantined = 0;
    for (int i = 0; i < 200; i++) {
        v = evaluate(&in);
        ck_result(v, DMARC_FAIL);
        if (v.policy == DMARC_P_REJECT)
            rejected++;
        else if (v.policy == DMARC_P_QUARANTINE)
            quarantined++;
    }
    ck_assert_uint_eq(rejected + quarantined, 200);
    ck_assert_uint_gt(rejected, 0);
    ck_assert_uint_gt(quarantined, 0);
}
END_TEST

/* --- records that are not right ------------------------------------------------- */

static void check_permerror(const char *record)
{
    struct dmarc_input in = input("example.com", record, NULL);
    in.spf = SPF_PASS;
    in.spf_domain = "example.com";
    struct dmarc_verdict v = evaluate(&in);
    ck_assert_msg(v.result == DMARC_PERMERROR, "\"%s\": %s (%s)", record, dmarc_result_name(v.result), v.reason);
    ck_assert_msg(strncmp(v.reason, "bad DMARC record", 16) == 0, "\"%s\": reason %s", record, v.reason);
    ck_policy(v.policy, DMARC_P_UNSET);
    ck_policy(v.p, DMARC_P_UNSET);
    ck_policy(v.sp, DMARC_P_UNSET);
    ck_assert(!v.spf_aligned);
    ck_assert_str_eq(v.org_domain, "example.com");
}

START_TEST(test_bad_records)
{
    check_permerror("v=DMARC1; p=bogus");
    check_permerror("v=DMARC1");                           /* no p= */
    check_permerror("v=DMARC1; rua=mailto:a@example.com");  /* no p= */
    check_permerror("v=DMARC2; p=reject");
    check_permerror("v=DMARC1; p=reject; sp=maybe");
    check_permerror("v=DMARC1; p=reject; adkim=x");
    check_permerror("v=DMARC1; p=reject; pct=150");
    check_permerror("v=DMARC1; p=reject; rua=mailto:a@example.com; rua=mailto:b@example.com");
    /* tags near the size of libopendmarc's buffers: refused before it */
    char rec[1200];
    snprintf(rec, sizeof rec, "v=DMARC1; p=reject; rua=%0512d", 0);
    check_permerror(rec);
    snprintf(rec, sizeof rec, "v=DMARC1; p=reject; rua=mailto:a@example.com,mailto:%0256d", 0);
    check_permerror(rec);
    snprintf(rec, sizeof rec, "v=DMARC1; p=reject; rf=afrf,%032d", 0);
    check_permerror(rec);
    snprintf(rec, sizeof rec, "v=DMARC1; p=reject; fo=1:%0256d", 0);
    check_permerror(rec);
    snprintf(rec, sizeof rec, "v=DMARC1; p=reject; %0512d=1", 0);
    check_permerror(rec);
    /* a record of 8 KB: refused before libopendmarc */
    char *big = malloc(8192);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', 8191);
    memcpy(big, "v=DMARC1; p=reject; x=", 22);
    big[8191] = '\0';
    check_permerror(big);
    free(big);
}
END_TEST

/* TXT text without "v=DMARC" is no DMARC record (libopendmarc's DNS code
 * skips such records): none, as with DNS. */
START_TEST(test_not_a_record)
{
    static const char *const texts[] = {"hello", "", "p=reject", "v=spf1 -all"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct dmarc_input in = input("example.com", texts[i], NULL);
        struct dmarc_verdict v = evaluate(&in);
        ck_assert_msg(v.result == DMARC_NONE, "\"%s\": %s (%s)", texts[i], dmarc_result_name(v.result), v.reason);
        ck_assert_str_eq(v.reason, "no DMARC record");
        ck_policy(v.policy, DMARC_P_UNSET);
        ck_policy(v.p, DMARC_P_UNSET);
        ck_assert_str_eq(v.policy_domain, "");
        ck_assert_str_eq(v.org_domain, "example.com");
    }
}
END_TEST

START_TEST(test_bad_input)
{
    static const char *const froms[] = {NULL, "", "exa mple.com", "example..com", "example.com.", "-@example.com",
                                        "ex\xc3\xa4mple.com"};
    for (size_t i = 0; i < sizeof froms / sizeof froms[0]; i++) {
        struct dmarc_input in = input(froms[i], "v=DMARC1; p=reject", NULL);
        struct dmarc_verdict v = evaluate(&in);
        ck_result(v, DMARC_PERMERROR);
        ck_assert_str_eq(v.reason, "no valid From: domain");
        ck_assert_str_eq(v.org_domain, "");
    }
    /* a record at a domain that is not the From: domain nor above it is
     * no record for this From: */
    static const char *const elsewhere[] = {"example.org", "ample.com", "a.example.com", "exa mple.com"};
    struct dmarc_input in;
    struct dmarc_verdict v;
    for (size_t i = 0; i < sizeof elsewhere / sizeof elsewhere[0]; i++) {
        in = input("example.com", "v=DMARC1; p=reject", elsewhere[i]);
        v = evaluate(&in);
        ck_result(v, DMARC_NONE);
        ck_assert_str_eq(v.reason, "no DMARC record");
    }
    in = input("example.com", "v=DMARC1; p=reject", "EXAMPLE.COM");
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    /* no library, no input */
    dmarc_evaluate(NULL, &in, &v);
    ck_result(v, DMARC_PERMERROR);
    dmarc_evaluate(lib, NULL, &v);
    ck_result(v, DMARC_PERMERROR);
}
END_TEST

/* --- DNS (libopendmarc's fake table, see add_tests) ------------------------------- */

START_TEST(test_dns_record)
{
    struct dmarc_input in = input("example.org", NULL, NULL);
    in.spf = SPF_PASS;
    in.spf_domain = "elsewhere.example.net";
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_policy(v.policy, DMARC_P_REJECT);
    ck_policy(v.sp, DMARC_P_NONE);
    ck_assert(!v.subdomain_policy);
    ck_assert_str_eq(v.policy_domain, "example.org");
    in.spf_domain = "bounce.example.org";
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
    /* a subdomain with its own record */
    in = input("sub.example.org", NULL, NULL);
    v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_policy(v.policy, DMARC_P_QUARANTINE);
    ck_assert(!v.subdomain_policy);
    ck_assert_str_eq(v.policy_domain, "sub.example.org");
    ck_assert_str_eq(v.org_domain, "example.org");
}
END_TEST

START_TEST(test_dns_fallback)
{
    struct dmarc_input in = input("a.b.example.org", NULL, NULL);
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_policy(v.policy, DMARC_P_NONE);      /* sp=none */
    ck_policy(v.p, DMARC_P_REJECT);
    ck_assert(v.subdomain_policy);
    ck_assert_str_eq(v.policy_domain, "example.org");
    ck_assert_str_eq(v.org_domain, "example.org");
    struct dkimv_sig s = sig("example.org", DKIMV_PASS);
    in.dkim = &s;
    in.n_dkim = 1;
    v = evaluate(&in);
    ck_result(v, DMARC_PASS);
}
END_TEST

START_TEST(test_dns_no_record)
{
    /* x.co.uk: libopendmarc's own lookup would fall back to _dmarc.co.uk */
    static const char *const froms[] = {"example.net", "a.example.net", "nothing.invalid", "x.co.uk", "a.x.co.uk"};
    for (size_t i = 0; i < sizeof froms / sizeof froms[0]; i++) {
        struct dmarc_input in = input(froms[i], NULL, NULL);
        in.spf = SPF_PASS;
        in.spf_domain = froms[i];
        struct dmarc_verdict v = evaluate(&in);
        ck_assert_msg(v.result == DMARC_NONE, "%s: %s (%s)", froms[i], dmarc_result_name(v.result), v.reason);
        ck_assert_str_eq(v.reason, "no DMARC record");
        ck_policy(v.policy, DMARC_P_UNSET);
        ck_assert_str_eq(v.policy_domain, "");
        ck_assert(!v.spf_aligned);
    }
}
END_TEST

START_TEST(test_dns_bad_record)
{
    struct dmarc_input in = input("bad.example.com", NULL, NULL);
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_PERMERROR);
    ck_assert_str_eq(v.reason, "bad DMARC record: a tag has a bad value");
}
END_TEST

/* --- organizational domains ---------------------------------------------------- */

START_TEST(test_org_domain)
{
    ck_assert_str_eq(org_of("a.b.example.co.uk"), "example.co.uk");
    ck_assert_str_eq(org_of("example.co.uk"), "example.co.uk");
    ck_assert_str_eq(org_of("mail.example.com"), "example.com");
    ck_assert_str_eq(org_of("A.Example.COM"), "example.com");
    /* one-letter labels (libopendmarc's own answer would be "co.uk", "com") */
    ck_assert_str_eq(org_of("x.co.uk"), "x.co.uk");
    ck_assert_str_eq(org_of("x.com"), "x.com");
    ck_assert_str_eq(org_of("a.x.com"), "x.com");
    ck_assert_str_eq(org_of("a.b.c"), "a.b.c");          /* unknown TLD: itself */
    /* a public suffix or a single label: itself */
    ck_assert_str_eq(org_of("co.uk"), "co.uk");
    ck_assert_str_eq(org_of("com"), "com");
    ck_assert_str_eq(org_of("github.io"), "github.io");
    ck_assert_str_eq(org_of("me.github.io"), "me.github.io");
    ck_assert_str_eq(org_of("www.me.github.io"), "me.github.io");
    /* exceptions; a wildcard counts as its parent (libopendmarc 1.4.2) */
    ck_assert_str_eq(org_of("www.city.kawasaki.jp"), "city.kawasaki.jp");
    ck_assert_str_eq(org_of("foo.bar.kawasaki.jp"), "bar.kawasaki.jp");
    /* long names */
    char name[254];
    memset(name, 'a', sizeof name);
    for (size_t i = 63; i < 240; i += 64)
        name[i] = '.';
    memcpy(name + 253 - 12, ".example.com", 12);
    name[253] = '\0';
    ck_assert_uint_eq(strlen(name), 253);
    ck_assert_str_eq(org_of(name), "example.com");
    /* out too small */
    char small[11];
    ck_assert(!dmarc_org_domain(lib, "example.com", small, sizeof small));
    char fits[12];
    ck_assert(dmarc_org_domain(lib, "www.example.com", fits, sizeof fits));
    ck_assert_str_eq(fits, "example.com");
}
END_TEST

START_TEST(test_org_domain_invalid)
{
    char label64[80], long254[300], out[256];
    memset(label64, 'a', 64);
    memcpy(label64 + 64, ".com", 5);
    memset(long254, 'a', 254);
    for (size_t i = 60; i < 250; i += 61)
        long254[i] = '.';
    long254[254] = '\0';
    const char *const bad[] = {NULL, "", ".", "example..com", ".example.com", "example.com.", "exa mple.com",
                               "ex_ample.com", "ex\xc3\xa4mple.com", "example.com\n", "[192.0.2.1]", "a@example.com",
                               label64, long254};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!dmarc_org_domain(lib, bad[i], out, sizeof out), "bad name %zu accepted", i);
    ck_assert(!dmarc_org_domain(NULL, "example.com", out, sizeof out));
    ck_assert(!dmarc_org_domain(lib, "example.com", NULL, 10));
    ck_assert(!dmarc_org_domain(lib, "example.com", out, 0));
    char label63[80];                                   /* 63 is fine */
    memset(label63, 'a', 63);
    memcpy(label63 + 63, ".com", 5);
    ck_assert(dmarc_org_domain(lib, label63, out, sizeof out));
    ck_assert_str_eq(out, label63);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(dmarc_result_name(DMARC_NONE), "none");
    ck_assert_str_eq(dmarc_result_name(DMARC_PASS), "pass");
    ck_assert_str_eq(dmarc_result_name(DMARC_FAIL), "fail");
    ck_assert_str_eq(dmarc_result_name(DMARC_TEMPERROR), "temperror");
    ck_assert_str_eq(dmarc_result_name(DMARC_PERMERROR), "permerror");
    ck_assert_str_eq(dmarc_policy_name(DMARC_P_UNSET), "");
    ck_assert_str_eq(dmarc_policy_name(DMARC_P_NONE), "none");
    ck_assert_str_eq(dmarc_policy_name(DMARC_P_QUARANTINE), "quarantine");
    ck_assert_str_eq(dmarc_policy_name(DMARC_P_REJECT), "reject");
}
END_TEST

/* --- the library ------------------------------------------------------------------- */

START_TEST(test_lib_shared)
{
    struct buf err;
    buf_init(&err);
    struct dmarc_lib *second = dmarc_lib_new(psl, &err);
    ck_assert_msg(second != NULL, "%s", err.data);
    char other[160];
    path_in(other, sizeof other, "other.dat");
    write_text(other, psl_text);
    ck_assert_ptr_null(dmarc_lib_new(other, &err));
    ck_assert_msg(strstr(err.data, "process-wide") != NULL, "%s", err.data);
    /* the first one freed, the second still works */
    dmarc_lib_free(lib);
    lib = second;
    ck_assert_str_eq(org_of("a.example.co.uk"), "example.co.uk");
    dmarc_lib_free(lib);
    lib = NULL;
    /* none left: another list may be loaded */
    buf_reset(&err);
    lib = dmarc_lib_new(other, &err);
    ck_assert_msg(lib != NULL, "%s", err.data);
    ck_assert_str_eq(org_of("a.example.co.uk"), "example.co.uk");
    dmarc_lib_free(NULL);
    buf_free(&err);
}
END_TEST

static void check_lib_refused(const char *path, const char *why)
{
    struct buf err;
    buf_init(&err);
    ck_assert_ptr_null(dmarc_lib_new(path, &err));
    ck_assert_msg(strstr(err.data, why) != NULL, "%s: \"%s\" lacks \"%s\"", path ? path : "NULL", err.data, why);
    buf_free(&err);
}

START_TEST(test_lib_bad_lists)
{
    dmarc_lib_free(lib);
    lib = NULL;
    char path[160];
    check_lib_refused(NULL, "no public suffix list");
    check_lib_refused("", "no public suffix list");
    path_in(path, sizeof path, "missing.dat");
    check_lib_refused(path, "cannot read the public suffix list");
    check_lib_refused(tmpdir, "not a regular file");
    path_in(path, sizeof path, "empty.dat");
    write_text(path, "");
    check_lib_refused(path, "does not look like a public suffix list");
    path_in(path, sizeof path, "foreign.dat");
    write_text(path, "# not a list\nexample\n");
    check_lib_refused(path, "does not look like a public suffix list");
    char longpath[5000];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    check_lib_refused(longpath, "too long");
    /* still usable afterwards */
    struct buf err;
    buf_init(&err);
    lib = dmarc_lib_new(psl, &err);
    ck_assert_msg(lib != NULL, "%s", err.data);
    buf_free(&err);
}
END_TEST

START_TEST(test_system_list)
{
    if (access(SYSTEM_PSL, R_OK) != 0) {
        fprintf(stderr, "test_system_list: %s missing (Debian package publicsuffix): skipped\n", SYSTEM_PSL);
        return;
    }
    dmarc_lib_free(lib);
    struct buf err;
    buf_init(&err);
    lib = dmarc_lib_new(SYSTEM_PSL, &err);
    ck_assert_msg(lib != NULL, "%s", err.data);
    buf_free(&err);
    ck_assert_str_eq(org_of("a.b.example.co.uk"), "example.co.uk");
    ck_assert_str_eq(org_of("x.github.io"), "x.github.io");
    ck_assert_str_eq(org_of("www.example.com.au"), "example.com.au");
    ck_assert_str_eq(org_of("mail.example.com"), "example.com");
    struct dmarc_input in = input("a.example.co.uk", "v=DMARC1; p=reject; sp=quarantine", "example.co.uk");
    struct dmarc_verdict v = evaluate(&in);
    ck_result(v, DMARC_FAIL);
    ck_policy(v.policy, DMARC_P_QUARANTINE);
}
END_TEST

/* --- threads -------------------------------------------------------------------------- */

#define THREAD_ROUNDS 300

struct case_run {
    struct dmarc_input in;
    struct dkimv_sig sig;
    enum dmarc_result result;
    enum dmarc_policy policy;
    const char *org;
};

static struct case_run thread_cases[6];
static const size_t n_thread_cases = sizeof thread_cases / sizeof thread_cases[0];

static void thread_cases_init(void)
{
    thread_cases[0].in = input("example.com", "v=DMARC1; p=reject", NULL);
    thread_cases[0].in.spf = SPF_PASS;
    thread_cases[0].in.spf_domain = "bounce.example.com";
    thread_cases[1].in = input("example.com", "v=DMARC1; p=quarantine; adkim=s", NULL);
    thread_cases[1].sig = sig("mail.example.com", DKIMV_PASS);
    thread_cases[2].in = input("a.example.co.uk", "v=DMARC1; p=reject; sp=none", "example.co.uk");
    thread_cases[2].sig = sig("example.co.uk", DKIMV_PASS);
    thread_cases[3].in = input("a.b.example.org", NULL, NULL);
    thread_cases[4].in = input("example.net", NULL, NULL);
    thread_cases[5].in = input("example.com", "v=DMARC1; p=bogus", NULL);
    for (size_t i = 0; i < n_thread_cases; i++) {
        struct case_run *c = &thread_cases[i];
        if (c->sig.domain[0] != '\0') {
            c->in.dkim = &c->sig;
            c->in.n_dkim = 1;
        }
        struct dmarc_verdict v = evaluate(&c->in);
        c->result = v.result;
        c->policy = v.policy;
        c->org = strdup(v.org_domain);
        ck_assert_ptr_nonnull(c->org);
    }
}

static void *thread_main(void *arg)
{
    size_t start = (size_t)(uintptr_t)arg;
    for (int r = 0; r < THREAD_ROUNDS; r++) {
        const struct case_run *c = &thread_cases[(start + (size_t)r) % n_thread_cases];
        struct dmarc_verdict v;
        dmarc_evaluate(lib, &c->in, &v);
        if (v.result != c->result || v.policy != c->policy || strcmp(v.org_domain, c->org) != 0)
            return (void *)1;
        char out[256];
        if (!dmarc_org_domain(lib, "www.example.co.uk", out, sizeof out) || strcmp(out, "example.co.uk") != 0)
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_threads)
{
    thread_cases_init();
    ck_assert_int_eq(thread_cases[0].result, DMARC_PASS);
    ck_assert_int_eq(thread_cases[1].result, DMARC_FAIL);
    ck_assert_int_eq(thread_cases[2].result, DMARC_PASS);
    ck_assert_int_eq(thread_cases[3].result, DMARC_FAIL);
    ck_assert_int_eq(thread_cases[4].result, DMARC_NONE);
    ck_assert_int_eq(thread_cases[5].result, DMARC_PERMERROR);
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_main, (void *)(uintptr_t)i), 0);
    for (size_t i = 0; i < 4; i++) {
        void *ret = NULL;
        ck_assert_int_eq(pthread_join(t[i], &ret), 0);
        ck_assert_msg(ret == NULL, "thread %zu saw a different verdict", i);
    }
    for (size_t i = 0; i < n_thread_cases; i++)
        free((void *)thread_cases[i].org);
}
END_TEST

/* libopendmarc's fake DNS table: once set, every lookup of the process
 * answers from it ("no data" for any other name), in the forked tests
 * too.  libopendmarc keeps the table until exit (reachable: no leak). */
static void fake_dns(void)
{
    opendmarc_dns_fake_record("_dmarc.example.org", "v=DMARC1; p=reject; sp=none");
    opendmarc_dns_fake_record("_dmarc.sub.example.org", "v=DMARC1; p=quarantine");
    opendmarc_dns_fake_record("_dmarc.bad.example.com", "v=DMARC1; p=maybe");
    opendmarc_dns_fake_record("_dmarc.co.uk", "v=DMARC1; p=reject");   /* never to be used */
}

static void add_tests(TCase *tc)
{
    fake_dns();
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pass_spf_only);
    tcase_add_test(tc, test_pass_dkim_only);
    tcase_add_test(tc, test_pass_both);
    tcase_add_test(tc, test_pass_helo_and_ipv6);
    tcase_add_test(tc, test_relaxed_sibling_and_parent);
    tcase_add_test(tc, test_fail_policies);
    tcase_add_test(tc, test_fail_without_results);
    tcase_add_test(tc, test_dkim_not_pass);
    tcase_add_test(tc, test_strict_dkim);
    tcase_add_test(tc, test_strict_spf);
    tcase_add_test(tc, test_not_aligned_above_org);
    tcase_add_test(tc, test_subdomain_policy);
    tcase_add_test(tc, test_pct);
    tcase_add_test(tc, test_bad_records);
    tcase_add_test(tc, test_not_a_record);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_dns_record);
    tcase_add_test(tc, test_dns_fallback);
    tcase_add_test(tc, test_dns_no_record);
    tcase_add_test(tc, test_dns_bad_record);
    tcase_add_test(tc, test_org_domain);
    tcase_add_test(tc, test_org_domain_invalid);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_lib_shared);
    tcase_add_test(tc, test_lib_bad_lists);
    tcase_add_test(tc, test_system_list);
    tcase_add_test(tc, test_threads);
}

UNIT_MAIN("auth_dmarc", add_tests)
