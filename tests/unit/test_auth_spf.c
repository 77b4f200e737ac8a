/* test_auth_spf.c: unit tests of the SPF checker (milter/auth_spf.c) over
 * libspf2's in-memory zone: the seven results (pass by ip4, fail, softfail,
 * neutral, none without a record and without the domain, permerror for
 * two records, a syntax error, more than 10 DNS-querying terms in one
 * record, across includes and with nothing after the 11th, more than 2
 * void lookups, more than 10 MX names, temperror of a failing name),
 * the limits' edges (10 terms and 2 void lookups are fine; a match
 * before the limit is a match), include: chains and redirect=,
 * a: and mx: (with and without MX preference), IPv6 (ip6: and a: over
 * AAAA, IPv4-mapped addresses), the null sender (postmaster@HELO), the
 * HELO identity (pass, an address literal, a bare address, no HELO),
 * case-insensitive domains, malformed client addresses, loopback clients
 * checked like any other, long and garbage senders, the zone's own
 * refusals, a checker over the system resolver answering malformed
 * input without DNS, and checks from 4 threads at once on one checker. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_spf.h"
#include "buf.h"
#include "unit.h"

#define IP_GOOD "192.0.2.10"     /* inside pass.example's ip4:192.0.2.0/24 */
#define IP_BAD "198.51.100.99"   /* in no record */

static struct spf_checker *zc;

static void add(const char *name, const char *type, const char *data)
{
    ck_assert_msg(spf_zone_add(zc, name, type, data), "zone: %s %s %s", name, type, data ? data : "(null)");
}

/* A record of n "a:" terms naming hosts that exist (no void lookups). */
static void add_a_terms(const char *name, int n, const char *tail)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "v=spf1");
    for (int i = 1; i <= n; i++)
        buf_printf(&b, " a:h%d.hosts.example", i);
    buf_printf(&b, "%s%s", *tail ? " " : "", tail);
    add(name, "TXT", b.data);
    buf_free(&b);
}

static void zone_fill(void)
{
    add("pass.example", "TXT", "v=spf1 ip4:192.0.2.0/24 -all");
    add("soft.example", "TXT", "v=spf1 ip4:192.0.2.1 ~all");
    add("neutral.example", "TXT", "v=spf1 ip4:192.0.2.1 ?all");
    add("nospf.example", "TXT", "google-site-verification=abc");
    add("gone.example", "TXT", NULL);
    add("two.example", "TXT", "v=spf1 -all");
    add("two.example", "TXT", "v=spf1 +all");
    add("syntax.example", "TXT", "v=spf1 foo:bar -all");
    add("badip.example", "TXT", "v=spf1 ip4:192.0.2.300 -all");
    add("tempfail.example", "TEMPFAIL", NULL);
    add("incltemp.example", "TXT", "v=spf1 include:tempfail.example -all");
    for (int i = 1; i <= 12; i++) {
        char host[64];
        snprintf(host, sizeof host, "h%d.hosts.example", i);
        add(host, "A", "203.0.113.200");
    }
    add_a_terms("ten.example", 10, "-all");
    add_a_terms("eleven.example", 11, "-all");
    add_a_terms("eleven-open.example", 11, "");
    /* 3 includes of 4 a: terms each: 15 terms, no record holds more than 4 */
    add("wide.example", "TXT", "v=spf1 include:w1.example include:w2.example include:w3.example -all");
    add_a_terms("w1.example", 4, "?all");
    add_a_terms("w2.example", 4, "?all");
    add_a_terms("w3.example", 4, "?all");
    /* 3 includes of 2 a: terms each: 9 terms */
    add("wide9.example", "TXT", "v=spf1 include:n1.example include:n2.example include:n3.example -all");
    add_a_terms("n1.example", 2, "?all");
    add_a_terms("n2.example", 2, "?all");
    add_a_terms("n3.example", 2, "?all");
    add("loop.example", "TXT", "v=spf1 include:loop2.example -all");
    add("loop2.example", "TXT", "v=spf1 include:loop.example -all");
    add("void2.example", "TXT", "v=spf1 a:v1.none.example a:v2.none.example -all");
    add("void3.example", "TXT", "v=spf1 a:v1.none.example a:v2.none.example a:v3.none.example -all");
    add("voidmx.example", "TXT", "v=spf1 mx:nomx.example a:v1.none.example exists:v2.none.example ip4:192.0.2.7 -all");
    add("nomx.example", "A", "203.0.113.1");
    /* include: chains and redirect= */
    add("chain.example", "TXT", "v=spf1 include:mid.example -all");
    add("mid.example", "TXT", "v=spf1 include:inner.example ?all");
    add("inner.example", "TXT", "v=spf1 ip4:198.51.100.0/28 -all");
    add("inclnone.example", "TXT", "v=spf1 include:nospf.example -all");
    add("redir.example", "TXT", "v=spf1 redirect=pass.example");
    /* a: and mx: */
    add("amech.example", "TXT", "v=spf1 a a:host.amech.example -all");
    add("amech.example", "A", "198.51.100.8");
    add("host.amech.example", "A", "198.51.100.7");
    add("mxmech.example", "TXT", "v=spf1 mx mx:other.example -all");
    add("mxmech.example", "MX", "10 mail1.mxmech.example");
    add("mxmech.example", "MX", "20 mail2.mxmech.example");
    add("mail1.mxmech.example", "A", "198.51.100.20");
    add("mail2.mxmech.example", "A", "198.51.100.21");
    add("other.example", "MX", "1mx.other.example");
    add("1mx.other.example", "A", "198.51.100.30");
    add("mx11.example", "TXT", "v=spf1 mx -all");
    for (int i = 1; i <= 11; i++) {
        char mx[64];
        snprintf(mx, sizeof mx, "%d m%d.mx11.example", i, i);
        add("mx11.example", "MX", mx);
    }
    /* IPv6 */
    add("six.example", "TXT", "v=spf1 ip6:2001:db8:1::/48 a:host6.six.example -all");
    add("host6.six.example", "AAAA", "2001:db8:99::5");
    /* HELO names */
    add("mail.helo.example", "TXT", "v=spf1 ip4:203.0.113.5 -all");
    /* macros over the local part */
    /* two void exists: (the expansions name nothing), then -all */
    add("macro.example", "TXT", "v=spf1 exists:%{l}.%{d} exists:%{L1r-}.%{lr-}.x.%{d} -all");
    add("exp.example", "TXT", "v=spf1 -all exp=why.exp.example");
    add("why.exp.example", "TXT", "go away %{i}");
}

static void setup(void)
{
    struct buf err;
    buf_init(&err);
    zc = spf_checker_new(true, &err);
    ck_assert_msg(zc != NULL, "%s", err.data);
    buf_free(&err);
    zone_fill();
}

static void teardown(void)
{
    spf_checker_free(zc);
    zc = NULL;
}

/* One MAIL FROM check, asserting result and domain (and a reason). */
static struct spf_verdict mf(const char *ip, const char *helo, const char *sender, enum spf_result want,
                             const char *domain)
{
    struct spf_verdict v;
    memset(&v, 0x5a, sizeof v);
    spf_check_mailfrom(zc, ip, helo, sender, &v);
    ck_assert_msg(v.result == want, "%s from %s: %s, want %s (%s)", sender, ip, spf_result_name(v.result),
                  spf_result_name(want), v.reason);
    ck_assert_str_eq(v.domain, domain);
    ck_assert_msg(strlen(v.reason) < sizeof v.reason, "reason not terminated");
    return v;
}

static void reason_has(const struct spf_verdict *v, const char *part)
{
    ck_assert_msg(strstr(v->reason, part) != NULL, "reason \"%s\" lacks \"%s\"", v->reason, part);
}

/* --- the seven results ------------------------------------------------------ */

START_TEST(test_pass_ip4)
{
    struct spf_verdict v = mf(IP_GOOD, "mx.client.example", "alice@pass.example", SPF_PASS, "pass.example");
    reason_has(&v, "designates " IP_GOOD " as permitted sender");
    ck_assert_ptr_null(strchr(v.reason, '\n'));
}
END_TEST

START_TEST(test_fail)
{
    struct spf_verdict v = mf(IP_BAD, "mx.client.example", "alice@pass.example", SPF_FAIL, "pass.example");
    reason_has(&v, "does not designate " IP_BAD);
}
END_TEST

START_TEST(test_softfail_neutral)
{
    struct spf_verdict v = mf(IP_BAD, "h", "bob@soft.example", SPF_SOFTFAIL, "soft.example");
    ck_assert_str_ne(v.reason, "");
    v = mf(IP_BAD, "h", "bob@neutral.example", SPF_NEUTRAL, "neutral.example");
    reason_has(&v, "neither permitted nor denied");
    mf("192.0.2.1", "h", "bob@soft.example", SPF_PASS, "soft.example");
}
END_TEST

START_TEST(test_none)
{
    struct spf_verdict v = mf(IP_GOOD, "h", "carol@nospf.example", SPF_NONE, "nospf.example");
    ck_assert_str_ne(v.reason, "");
    v = mf(IP_GOOD, "h", "carol@gone.example", SPF_NONE, "gone.example");
    ck_assert_str_ne(v.reason, "");
    /* a name the zone does not hold answers NXDOMAIN */
    v = mf(IP_GOOD, "h", "carol@nowhere.example", SPF_NONE, "nowhere.example");
    ck_assert_str_ne(v.reason, "");
}
END_TEST

START_TEST(test_permerror_records)
{
    struct spf_verdict v = mf(IP_GOOD, "h", "dave@two.example", SPF_PERMERROR, "two.example");
    reason_has(&v, "Multiple SPF records");
    v = mf(IP_GOOD, "h", "dave@syntax.example", SPF_PERMERROR, "syntax.example");
    ck_assert_str_ne(v.reason, "");
    v = mf(IP_GOOD, "h", "dave@badip.example", SPF_PERMERROR, "badip.example");
    ck_assert_str_ne(v.reason, "");
    /* include: of a domain without a record */
    v = mf(IP_GOOD, "h", "dave@inclnone.example", SPF_PERMERROR, "inclnone.example");
    reason_has(&v, "nospf.example");
}
END_TEST

START_TEST(test_temperror)
{
    struct spf_verdict v = mf(IP_GOOD, "h", "erin@tempfail.example", SPF_TEMPERROR, "tempfail.example");
    ck_assert_str_ne(v.reason, "");
    v = mf(IP_GOOD, "h", "erin@incltemp.example", SPF_TEMPERROR, "incltemp.example");
    ck_assert_str_ne(v.reason, "");
}
END_TEST

/* --- RFC 7208 4.6.4 limits ------------------------------------------------------ */

START_TEST(test_terms_limit)
{
    mf(IP_BAD, "h", "f@ten.example", SPF_FAIL, "ten.example");
    struct spf_verdict v = mf(IP_BAD, "h", "f@eleven.example", SPF_PERMERROR, "eleven.example");
    reason_has(&v, "too many DNS lookups");
    /* libspf2 alone lets the 11th term run when nothing follows it (neutral) */
    v = mf(IP_BAD, "h", "f@eleven-open.example", SPF_PERMERROR, "eleven-open.example");
    reason_has(&v, "too many DNS lookups");
    /* libspf2 alone counts each included record from 0 (fail) */
    v = mf(IP_BAD, "h", "f@wide.example", SPF_PERMERROR, "wide.example");
    reason_has(&v, "too many DNS lookups");
    mf(IP_BAD, "h", "f@wide9.example", SPF_FAIL, "wide9.example");
    /* a match before the limit is a match */
    mf("203.0.113.200", "h", "f@eleven.example", SPF_PASS, "eleven.example");
    v = mf(IP_BAD, "h", "f@loop.example", SPF_PERMERROR, "loop.example");
    ck_assert_str_ne(v.reason, "");
}
END_TEST

START_TEST(test_void_limit)
{
    mf(IP_BAD, "h", "g@void2.example", SPF_FAIL, "void2.example");
    struct spf_verdict v = mf(IP_BAD, "h", "g@void3.example", SPF_PERMERROR, "void3.example");
    reason_has(&v, "void DNS lookups");
    /* a void MX lookup counts like any other term's */
    v = mf("192.0.2.7", "h", "g@voidmx.example", SPF_PERMERROR, "voidmx.example");
    reason_has(&v, "void");
}
END_TEST

START_TEST(test_mx_names_limit)
{
    struct spf_verdict v = mf(IP_BAD, "h", "h@mx11.example", SPF_PERMERROR, "mx11.example");
    ck_assert_str_ne(v.reason, "");
}
END_TEST

/* --- mechanisms ------------------------------------------------------------------ */

START_TEST(test_include_chain)
{
    mf("198.51.100.3", "h", "i@chain.example", SPF_PASS, "chain.example");
    mf("198.51.100.200", "h", "i@chain.example", SPF_FAIL, "chain.example");
    mf(IP_GOOD, "h", "i@redir.example", SPF_PASS, "redir.example");
    mf(IP_BAD, "h", "i@redir.example", SPF_FAIL, "redir.example");
}
END_TEST

START_TEST(test_a_mx)
{
    mf("198.51.100.8", "h", "j@amech.example", SPF_PASS, "amech.example");
    mf("198.51.100.7", "h", "j@amech.example", SPF_PASS, "amech.example");
    mf("198.51.100.9", "h", "j@amech.example", SPF_FAIL, "amech.example");
    mf("198.51.100.20", "h", "j@mxmech.example", SPF_PASS, "mxmech.example");
    mf("198.51.100.21", "h", "j@mxmech.example", SPF_PASS, "mxmech.example");
    mf("198.51.100.30", "h", "j@mxmech.example", SPF_PASS, "mxmech.example");
    mf("198.51.100.22", "h", "j@mxmech.example", SPF_FAIL, "mxmech.example");
}
END_TEST

START_TEST(test_ipv6)
{
    mf("2001:db8:1::25", "h", "k@six.example", SPF_PASS, "six.example");
    mf("2001:db8:99::5", "h", "k@six.example", SPF_PASS, "six.example");
    mf("2001:db8:2::25", "h", "k@six.example", SPF_FAIL, "six.example");
    /* an IPv4 client never matches ip6:, an IPv6 one never ip4: */
    mf("192.0.2.1", "h", "k@six.example", SPF_FAIL, "six.example");
    mf("2001:db8:1::25", "h", "k@pass.example", SPF_FAIL, "pass.example");
    /* IPv4-mapped IPv6 is the IPv4 client */
    mf("::ffff:" IP_GOOD, "h", "k@pass.example", SPF_PASS, "pass.example");
}
END_TEST

START_TEST(test_explanation_not_fetched)
{
    struct spf_verdict v = mf(IP_BAD, "h", "l@exp.example", SPF_FAIL, "exp.example");
    reason_has(&v, "does not designate");
    ck_assert_ptr_null(strstr(v.reason, "go away"));
}
END_TEST

/* --- identities --------------------------------------------------------------------- */

START_TEST(test_null_sender)
{
    struct spf_verdict v = mf("203.0.113.5", "mail.helo.example", "", SPF_PASS, "mail.helo.example");
    reason_has(&v, "mail.helo.example");
    mf("203.0.113.6", "mail.helo.example", "", SPF_FAIL, "mail.helo.example");
    mf("203.0.113.5", "Mail.HELO.example.", NULL, SPF_PASS, "mail.helo.example");
    /* nothing to check without a HELO domain */
    v = mf("203.0.113.5", "[203.0.113.5]", "", SPF_NONE, "");
    ck_assert_str_ne(v.reason, "");
    mf("203.0.113.5", NULL, "", SPF_NONE, "");
}
END_TEST

START_TEST(test_helo_identity)
{
    struct spf_verdict m, h;
    spf_check(zc, "203.0.113.5", "mail.helo.example", "m@pass.example", &m, &h);
    ck_assert_int_eq(m.result, SPF_FAIL);
    ck_assert_str_eq(m.domain, "pass.example");
    ck_assert_int_eq(h.result, SPF_PASS);
    ck_assert_str_eq(h.domain, "mail.helo.example");
    ck_assert_str_ne(h.reason, "");

    spf_check(zc, IP_GOOD, "mail.helo.example", "m@pass.example", &m, &h);
    ck_assert_int_eq(m.result, SPF_PASS);
    ck_assert_int_eq(h.result, SPF_FAIL);

    const char *not_domains[] = { "[203.0.113.5]", "[IPv6:2001:db8::1]", "203.0.113.5", "localhost", "", "a..b",
                                  "-", "bad name.example" };
    for (size_t i = 0; i < sizeof not_domains / sizeof not_domains[0]; i++) {
        spf_check(zc, IP_GOOD, not_domains[i], "m@pass.example", &m, &h);
        ck_assert_msg(h.result == SPF_NONE, "HELO %s: %s", not_domains[i], spf_result_name(h.result));
        ck_assert_str_eq(h.domain, "");
        ck_assert_str_ne(h.reason, "");
        ck_assert_int_eq(m.result, SPF_PASS);
    }
    spf_check(zc, IP_GOOD, NULL, "m@pass.example", &m, &h);
    ck_assert_int_eq(h.result, SPF_NONE);
    ck_assert_int_eq(m.result, SPF_PASS);
}
END_TEST

START_TEST(test_case_insensitive)
{
    mf(IP_GOOD, "h", "Alice@PASS.Example", SPF_PASS, "pass.example");
    mf(IP_GOOD, "h", "alice@pass.example.", SPF_PASS, "pass.example");
    mf("198.51.100.20", "h", "x@MXMECH.example", SPF_PASS, "mxmech.example");
    struct spf_verdict m, h;
    spf_check(zc, "203.0.113.5", "MAIL.Helo.Example", "x@pass.example", &m, &h);
    ck_assert_int_eq(h.result, SPF_PASS);
    ck_assert_str_eq(h.domain, "mail.helo.example");
}
END_TEST

START_TEST(test_malformed_ip)
{
    const char *bad[] = { "192.0.2.300", "not-an-ip", "", "192.0.2", "2001:db8:::1", "192.0.2.1 ", "[192.0.2.1]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spf_verdict m, h;
        spf_check(zc, bad[i], "mail.helo.example", "n@pass.example", &m, &h);
        ck_assert_msg(m.result == SPF_PERMERROR && h.result == SPF_PERMERROR, "ip \"%s\": %s/%s", bad[i],
                      spf_result_name(m.result), spf_result_name(h.result));
        ck_assert_str_eq(m.domain, "pass.example");
        ck_assert_str_eq(h.domain, "mail.helo.example");
        reason_has(&m, "IP address");
        reason_has(&h, "IP address");
    }
    struct spf_verdict m, h;
    spf_check(zc, NULL, NULL, NULL, &m, &h);
    ck_assert_int_eq(m.result, SPF_PERMERROR);
    ck_assert_int_eq(h.result, SPF_PERMERROR);
    ck_assert_str_eq(m.domain, "");
}
END_TEST

START_TEST(test_loopback_checked)
{
    /* libspf2's own entry point would answer "pass" for any loopback client */
    mf("127.0.0.5", "h", "o@pass.example", SPF_FAIL, "pass.example");
    mf("::1", "h", "o@pass.example", SPF_FAIL, "pass.example");
}
END_TEST

START_TEST(test_long_and_garbage_senders)
{
    size_t n = 20000;
    char *big = mem_alloc(n + 32);
    memset(big, 'x', n);
    for (size_t i = 50; i < n; i += 50)
        big[i] = '-';
    strcpy(big + n, "@macro.example");
    mf(IP_BAD, "h", big, SPF_FAIL, "macro.example");
    strcpy(big + n, "@pass.example");
    mf(IP_GOOD, "h", big, SPF_PASS, "pass.example");
    /* a domain of 300 characters, a label of 64 */
    memset(big, 'a', 300);
    strcpy(big + 300, ".example");
    char *s = mem_alloc(400);
    snprintf(s, 400, "p@%s", big);
    mf(IP_GOOD, "h", s, SPF_NONE, "");
    memset(big, 'b', 64);
    strcpy(big + 64, ".example");
    snprintf(s, 400, "p@%s", big);
    mf(IP_GOOD, "h", s, SPF_NONE, "");
    mem_free(s);
    mem_free(big);

    const char *none[] = { "@", "@@", "p@", "p@.", "p@a..b", "p@example", "p@-.example", "p@[192.0.2.1]",
                           "\x01\x02@\x03", "p@pass.example\n", "p@\xc3\xa9t\xc3\xa9.example", "p@192.0.2.1",
                           "%{l}@%{d}", "p@pass.example@", "justtext" };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        struct spf_verdict m, h;
        spf_check(zc, IP_GOOD, "h", none[i], &m, &h);
        ck_assert_msg(m.result == SPF_NONE, "sender #%zu: %s (%s)", i, spf_result_name(m.result), m.reason);
        ck_assert_str_eq(m.domain, "");
    }
    /* hyphens inside a label are fine: a valid domain the zone does not hold */
    mf(IP_GOOD, "h", "p@a-b.example", SPF_NONE, "a-b.example");
    mf(IP_GOOD, "h", "p@a-.example", SPF_NONE, "");
    /* odd but checkable senders */
    mf(IP_GOOD, "h", "%{l}%%{d}@pass.example", SPF_PASS, "pass.example");
    mf(IP_GOOD, "h", "a@b@pass.example", SPF_PASS, "pass.example");
    mf(IP_GOOD, "h", "@pass.example", SPF_PASS, "pass.example");
    mf(IP_GOOD, "h", "pass.example", SPF_PASS, "pass.example");
    mf(IP_BAD, "h", "\x01\xff\"weird local\"@macro.example", SPF_FAIL, "macro.example");
    mf(IP_BAD, "[" IP_BAD "]", "p@macro.example", SPF_FAIL, "macro.example");
}
END_TEST

/* --- the zone and the resolver checker ----------------------------------------------- */

START_TEST(test_zone_refusals)
{
    ck_assert(!spf_zone_add(zc, "x.example", "PTR", "a.example"));
    ck_assert(!spf_zone_add(zc, "x.example", "A", "300.1.1.1"));
    ck_assert(!spf_zone_add(zc, "x.example", "AAAA", "192.0.2.1"));
    ck_assert(!spf_zone_add(zc, "x.example", "MX", "10 "));
    ck_assert(!spf_zone_add(zc, "", "TXT", "v=spf1"));
    ck_assert(!spf_zone_add(zc, "x.example", NULL, "v=spf1"));
    /* a second NXDOMAIN or TEMPFAIL entry of a name would make libspf2 abort */
    ck_assert(!spf_zone_add(zc, "tempfail.example", "TEMPFAIL", NULL));
    ck_assert(!spf_zone_add(zc, "GONE.example", "A", NULL));
    ck_assert(spf_zone_add(zc, "x.example", "txt", "v=spf1 +all"));
    mf(IP_BAD, "h", "q@x.example", SPF_PASS, "x.example");
}
END_TEST

START_TEST(test_resolver_checker)
{
    struct buf err;
    buf_init(&err);
    struct spf_checker *c = spf_checker_new(false, &err);
    ck_assert_msg(c != NULL, "%s", err.data);
    buf_free(&err);
    ck_assert(!spf_zone_add(c, "a.example", "TXT", "v=spf1 -all"));
    struct spf_verdict m, h;
    spf_check(c, "bogus", "mail.example", "r@example.org", &m, &h);
    ck_assert_int_eq(m.result, SPF_PERMERROR);
    ck_assert_int_eq(h.result, SPF_PERMERROR);
    spf_check(c, "192.0.2.1", "[192.0.2.1]", "", &m, &h);
    ck_assert_int_eq(m.result, SPF_NONE);
    ck_assert_int_eq(h.result, SPF_NONE);
    spf_checker_free(c);
    spf_checker_free(NULL);
}
END_TEST

START_TEST(test_result_names)
{
    ck_assert_str_eq(spf_result_name(SPF_NONE), "none");
    ck_assert_str_eq(spf_result_name(SPF_NEUTRAL), "neutral");
    ck_assert_str_eq(spf_result_name(SPF_PASS), "pass");
    ck_assert_str_eq(spf_result_name(SPF_FAIL), "fail");
    ck_assert_str_eq(spf_result_name(SPF_SOFTFAIL), "softfail");
    ck_assert_str_eq(spf_result_name(SPF_TEMPERROR), "temperror");
    ck_assert_str_eq(spf_result_name(SPF_PERMERROR), "permerror");
}
END_TEST

/* --- threads ----------------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 300

struct case_ {
    const char *ip, *sender;
    enum spf_result want;
};

static const struct case_ cases[] = {
    { IP_GOOD, "t@pass.example", SPF_PASS },          { IP_BAD, "t@pass.example", SPF_FAIL },
    { "198.51.100.3", "t@chain.example", SPF_PASS },   { "198.51.100.21", "t@mxmech.example", SPF_PASS },
    { IP_BAD, "t@wide.example", SPF_PERMERROR },      { IP_BAD, "t@void3.example", SPF_PERMERROR },
    { IP_GOOD, "t@tempfail.example", SPF_TEMPERROR }, { IP_GOOD, "t@nowhere.example", SPF_NONE },
    { "2001:db8:99::5", "t@six.example", SPF_PASS },  { IP_BAD, "t@two.example", SPF_PERMERROR },
};

static pthread_barrier_t start;

static void *worker(void *arg)
{
    size_t id = (size_t)arg;
    long bad = 0;
    pthread_barrier_wait(&start);
    for (size_t i = 0; i < ROUNDS; i++) {
        const struct case_ *k = &cases[(i + id) % (sizeof cases / sizeof cases[0])];
        struct spf_verdict m, h;
        spf_check(zc, k->ip, "mail.helo.example", k->sender, &m, &h);
        bad += m.result != k->want || h.result != SPF_FAIL || strcmp(h.domain, "mail.helo.example") != 0;
    }
    return (void *)(intptr_t)bad;
}

START_TEST(test_threads)
{
    pthread_t t[THREADS];
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
    for (size_t i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (size_t i = 0; i < THREADS; i++) {
        void *bad;
        ck_assert_int_eq(pthread_join(t[i], &bad), 0);
        ck_assert_msg(bad == NULL, "thread %zu: %ld wrong verdicts", i, (long)(intptr_t)bad);
    }
    pthread_barrier_destroy(&start);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pass_ip4);
    tcase_add_test(tc, test_fail);
    tcase_add_test(tc, test_softfail_neutral);
    tcase_add_test(tc, test_none);
    tcase_add_test(tc, test_permerror_records);
    tcase_add_test(tc, test_temperror);
    tcase_add_test(tc, test_terms_limit);
    tcase_add_test(tc, test_void_limit);
    tcase_add_test(tc, test_mx_names_limit);
    tcase_add_test(tc, test_include_chain);
    tcase_add_test(tc, test_a_mx);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_explanation_not_fetched);
    tcase_add_test(tc, test_null_sender);
    tcase_add_test(tc, test_helo_identity);
    tcase_add_test(tc, test_case_insensitive);
    tcase_add_test(tc, test_malformed_ip);
    tcase_add_test(tc, test_loopback_checked);
    tcase_add_test(tc, test_long_and_garbage_senders);
    tcase_add_test(tc, test_zone_refusals);
    tcase_add_test(tc, test_resolver_checker);
    tcase_add_test(tc, test_result_names);
    tcase_add_test(tc, test_threads);
}

UNIT_MAIN("auth_spf", add_tests)
