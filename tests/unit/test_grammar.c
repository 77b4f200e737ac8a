/* test_grammar.c: unit tests of lib/grammar.c, the value grammars of rule
 * and config files: every parser (uint, size, duration, quota, pace rate,
 * domain, address, login, name, hostname, bool, number, enum) with valid
 * and invalid forms, limits and overflow, and the exact "expected ...,
 * found ..." error texts. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "grammar.h"
#include "unit.h"

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define U64MAX UINT64_MAX

/* Check an error text: exact when want is not NULL. */
static void check_err(const char *in, const char *got, const char *want)
{
    ck_assert_msg(got[0] != '\0', "input \"%s\": no error text", in);
    if (want != NULL)
        ck_assert_msg(strcmp(got, want) == 0, "input \"%s\":\n  got  [%s]\n  want [%s]", in, got, want);
}

/* ---- gram_uint ---------------------------------------------------- */

static const struct {
    const char *in;
    uint64_t max;
    bool ok;
    uint64_t val;
    const char *err;
} uint_cases[] = {
    { "0", U64MAX, true, 0, NULL },
    { "1", U64MAX, true, 1, NULL },
    { "007", U64MAX, true, 7, NULL }, /* leading zeros are accepted */
    { "18446744073709551615", U64MAX, true, U64MAX, NULL },
    { "18446744073709551616", U64MAX, false, 0,
      "expected a whole number at most 18446744073709551615, found \"18446744073709551616\"" },
    { "99999999999999999999999", U64MAX, false, 0,
      "expected a whole number at most 18446744073709551615, found \"99999999999999999999999\"" },
    { "65535", 65535, true, 65535, NULL },
    { "65536", 65535, false, 0, "expected a whole number at most 65535, found \"65536\"" },
    { "70000", 65535, false, 0, "expected a whole number at most 65535, found \"70000\"" },
    { "10", 10, true, 10, NULL },
    { "11", 10, false, 0, "expected a whole number at most 10, found \"11\"" },
    /* single digits above a small max */
    { "5", 5, true, 5, NULL },
    { "6", 5, false, 0, "expected a whole number at most 5, found \"6\"" },
    { "9", 5, false, 0, "expected a whole number at most 5, found \"9\"" },
    { "0", 0, true, 0, NULL },
    { "1", 0, false, 0, "expected a whole number at most 0, found \"1\"" },
    { "-1", U64MAX, false, 0, "expected a whole number, found \"-1\"" },
    { "+1", U64MAX, false, 0, "expected a whole number, found \"+1\"" },
    { " 1", U64MAX, false, 0, "expected a whole number, found \" 1\"" },
    { "1 ", U64MAX, false, 0, "expected a whole number, found \"1 \"" },
    { "", U64MAX, false, 0, "expected a whole number, found an empty value" },
    { "0x10", U64MAX, false, 0, "expected a whole number, found \"0x10\"" },
    { "1.0", U64MAX, false, 0, "expected a whole number, found \"1.0\"" },
    { "1e3", U64MAX, false, 0, "expected a whole number, found \"1e3\"" },
    { "1\n", U64MAX, false, 0, "expected a whole number, found \"1\\x0a\"" },
    { "\t", U64MAX, false, 0, "expected a whole number, found \"\\x09\"" },
};

START_TEST(test_uint)
{
    char err[GRAM_ERR_MAX] = "";
    uint64_t v = 12345;
    bool ok = gram_uint(uint_cases[_i].in, uint_cases[_i].max, &v, err, sizeof err);
    ck_assert_msg(ok == uint_cases[_i].ok, "case %d \"%s\" (max %llu): ok=%d err=%s", _i, uint_cases[_i].in,
                  (unsigned long long)uint_cases[_i].max, ok, err);
    if (ok)
        ck_assert_uint_eq(v, uint_cases[_i].val);
    else
        check_err(uint_cases[_i].in, err, uint_cases[_i].err);
}
END_TEST

/* ---- gram_size ---------------------------------------------------- */

static const char size_expected[] = "expected a size like 25M (bytes, or a unit K, M, G, T), found ";
static const char size_overflow[] = "expected a size below 16E (overflow), found ";

static const struct {
    const char *in;
    bool ok;
    uint64_t val;
    const char *err_prefix; /* the error is err_prefix + found */
    const char *found;
} size_cases[] = {
    { "25M", true, 26214400ull, NULL, NULL },
    { "25m", true, 26214400ull, NULL, NULL },
    { "10G", true, 10737418240ull, NULL, NULL },
    { "1T", true, 1099511627776ull, NULL, NULL },
    { "0", true, 0, NULL, NULL },
    { "0K", true, 0, NULL, NULL },
    { "1024", true, 1024, NULL, NULL },
    { "512k", true, 524288, NULL, NULL },
    { "512K", true, 524288, NULL, NULL },
    { "18446744073709551615", true, U64MAX, NULL, NULL },
    { "17179869183G", true, 18446744072635809792ull, NULL, NULL }, /* 2^64 - 2^30 */
    { "16777215T", true, 18446742974197923840ull, NULL, NULL },    /* 2^64 - 2^40 */
    { "17179869184G", false, 0, size_overflow, "\"17179869184G\"" }, /* 2^64 */
    { "16777216T", false, 0, size_overflow, "\"16777216T\"" },
    { "18446744073709551616", false, 0, size_overflow, "\"18446744073709551616\"" },
    { "16383P", false, 0, size_expected, "\"16383P\"" },
    { "1E", false, 0, size_expected, "\"1E\"" },
    { "25MB", false, 0, size_expected, "\"25MB\"" },
    { "25Mi", false, 0, size_expected, "\"25Mi\"" },
    { "M", false, 0, size_expected, "\"M\"" },
    { "", false, 0, size_expected, "an empty value" },
    { "-1", false, 0, size_expected, "\"-1\"" },
    { "1.5M", false, 0, size_expected, "\"1.5M\"" },
    { "25 M", false, 0, size_expected, "\"25 M\"" },
    { " 25M", false, 0, size_expected, "\" 25M\"" },
    { "25M ", false, 0, size_expected, "\"25M \"" },
};

START_TEST(test_size)
{
    char err[GRAM_ERR_MAX] = "", want[GRAM_ERR_MAX];
    uint64_t v = 12345;
    bool ok = gram_size(size_cases[_i].in, &v, err, sizeof err);
    ck_assert_msg(ok == size_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, size_cases[_i].in, ok, err);
    if (ok) {
        ck_assert_uint_eq(v, size_cases[_i].val);
    } else {
        snprintf(want, sizeof want, "%s%s", size_cases[_i].err_prefix, size_cases[_i].found);
        check_err(size_cases[_i].in, err, want);
    }
}
END_TEST

/* ---- gram_duration ------------------------------------------------ */

static const char dur_expected[] = "expected a duration like 20s (units ms, s, m, h, d), found ";
static const char dur_overflow[] = "expected a duration that fits (overflow), found ";

static const struct {
    const char *in;
    bool ok;
    uint64_t ms;
    const char *err_prefix;
    const char *found;
} dur_cases[] = {
    { "20s", true, 20000, NULL, NULL },
    { "500ms", true, 500, NULL, NULL },
    { "1m30s", true, 90000, NULL, NULL },
    { "1m", true, 60000, NULL, NULL },
    { "1h", true, 3600000, NULL, NULL },
    { "2d", true, 172800000, NULL, NULL },
    { "0s", true, 0, NULL, NULL },
    { "0ms", true, 0, NULL, NULL },
    { "1h30m15s500ms", true, 5415500, NULL, NULL },
    { "1d1ms", true, 86400001, NULL, NULL },
    /* Units may repeat and come in any order: they simply add up. */
    { "1s1s", true, 2000, NULL, NULL },
    { "30s1m", true, 90000, NULL, NULL },
    { "18446744073709551615ms", true, U64MAX, NULL, NULL },
    { "s", false, 0, dur_expected, "\"s\"" },
    { "ms", false, 0, dur_expected, "\"ms\"" },
    { "10", false, 0, dur_expected, "\"10\"" },
    { "10x", false, 0, dur_expected, "\"10x\"" },
    { "1.5s", false, 0, dur_expected, "\"1.5s\"" },
    { "1S", false, 0, dur_expected, "\"1S\"" },
    { "1M", false, 0, dur_expected, "\"1M\"" },
    { "1m30", false, 0, dur_expected, "\"1m30\"" },
    { "1 s", false, 0, dur_expected, "\"1 s\"" },
    { "-1s", false, 0, dur_expected, "\"-1s\"" },
    { "1w", false, 0, dur_expected, "\"1w\"" },
    { "1sec", false, 0, dur_expected, "\"1sec\"" },
    { "", false, 0, dur_expected, "an empty value" },
    { "18446744073709551615s", false, 0, dur_overflow, "\"18446744073709551615s\"" },
    { "213503982335d", false, 0, dur_overflow, "\"213503982335d\"" }, /* > 2^64 ms */
    { "99999999999999999999ms", false, 0, dur_overflow, "\"99999999999999999999ms\"" },
    { "18446744073709551615ms1ms", false, 0, dur_overflow, "\"18446744073709551615ms1ms\"" },
};

START_TEST(test_duration)
{
    char err[GRAM_ERR_MAX] = "", want[GRAM_ERR_MAX];
    uint64_t v = 12345;
    bool ok = gram_duration(dur_cases[_i].in, &v, err, sizeof err);
    ck_assert_msg(ok == dur_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, dur_cases[_i].in, ok, err);
    if (ok) {
        ck_assert_uint_eq(v, dur_cases[_i].ms);
    } else {
        snprintf(want, sizeof want, "%s%s", dur_cases[_i].err_prefix, dur_cases[_i].found);
        check_err(dur_cases[_i].in, err, want);
    }
}
END_TEST

/* ---- gram_quota --------------------------------------------------- */

static const char quota_expected[] =
    "expected a quota like 500/day (per minute, hour, day, week, month) or unlimited, found ";
static const char bquota_expected[] =
    "expected a byte quota like 10G/day (per minute, hour, day, week, month) or unlimited, found ";
static const char quota_overflow[] = "expected a quota whose count fits in 64 bits (overflow), found ";

static const struct {
    const char *in;
    bool bytes;
    bool ok;
    bool unlimited;
    uint64_t count;
    enum window_unit unit;
    const char *err_prefix;
    const char *found;
} quota_cases[] = {
    { "500/day", false, true, false, 500, WIN_DAY, NULL, NULL },
    { "1/minute", false, true, false, 1, WIN_MINUTE, NULL, NULL },
    { "2/hour", false, true, false, 2, WIN_HOUR, NULL, NULL },
    { "3/week", false, true, false, 3, WIN_WEEK, NULL, NULL },
    { "4/month", false, true, false, 4, WIN_MONTH, NULL, NULL },
    { "0/day", false, true, false, 0, WIN_DAY, NULL, NULL }, /* zero: a block, not an error */
    { "18446744073709551615/day", false, true, false, U64MAX, WIN_DAY, NULL, NULL },
    { "unlimited", false, true, true, 0, WIN_MINUTE, NULL, NULL },
    { "500/fortnight", false, false, false, 0, 0, quota_expected, "\"500/fortnight\"" },
    { "500/second", false, false, false, 0, 0, quota_expected, "\"500/second\"" },
    { "500/Day", false, false, false, 0, 0, quota_expected, "\"500/Day\"" },
    { "500/days", false, false, false, 0, 0, quota_expected, "\"500/days\"" },
    { "500/day/x", false, false, false, 0, 0, quota_expected, "\"500/day/x\"" },
    { "/day", false, false, false, 0, 0, quota_expected, "\"/day\"" },
    { "500/", false, false, false, 0, 0, quota_expected, "\"500/\"" },
    { "500day", false, false, false, 0, 0, quota_expected, "\"500day\"" },
    { "500", false, false, false, 0, 0, quota_expected, "\"500\"" },
    { "500 /day", false, false, false, 0, 0, quota_expected, "\"500 /day\"" },
    { "-5/day", false, false, false, 0, 0, quota_expected, "\"-5/day\"" },
    { "Unlimited", false, false, false, 0, 0, quota_expected, "\"Unlimited\"" },
    { "", false, false, false, 0, 0, quota_expected, "an empty value" },
    { "10G/day", false, false, false, 0, 0, quota_expected, "\"10G/day\"" },
    { "18446744073709551616/day", false, false, false, 0, 0, quota_overflow, "\"18446744073709551616/day\"" },
    /* a count longer than 31 characters is refused without parsing it */
    { "00000000000000000000000000000001/day", false, false, false, 0, 0, quota_expected,
      "\"00000000000000000000000000000001/day\"" },
    /* byte quotas */
    { "10G/day", true, true, false, 10737418240ull, WIN_DAY, NULL, NULL },
    { "25M/hour", true, true, false, 26214400ull, WIN_HOUR, NULL, NULL },
    { "1024/week", true, true, false, 1024, WIN_WEEK, NULL, NULL },
    { "1T/month", true, true, false, 1099511627776ull, WIN_MONTH, NULL, NULL },
    { "512k/minute", true, true, false, 524288, WIN_MINUTE, NULL, NULL },
    { "unlimited", true, true, true, 0, WIN_MINUTE, NULL, NULL },
    { "10GB/day", true, false, false, 0, 0, bquota_expected, "\"10GB/day\"" },
    { "10G/fortnight", true, false, false, 0, 0, bquota_expected, "\"10G/fortnight\"" },
    { "G/day", true, false, false, 0, 0, bquota_expected, "\"G/day\"" },
    { "10G", true, false, false, 0, 0, bquota_expected, "\"10G\"" },
    { "17179869184G/day", true, false, false, 0, 0, quota_overflow, "\"17179869184G/day\"" },
};

START_TEST(test_quota)
{
    char err[GRAM_ERR_MAX] = "", want[GRAM_ERR_MAX];
    struct quota q;
    memset(&q, 0xa5, sizeof q);
    bool ok = gram_quota(quota_cases[_i].in, quota_cases[_i].bytes, &q, err, sizeof err);
    ck_assert_msg(ok == quota_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, quota_cases[_i].in, ok, err);
    if (ok) {
        ck_assert(q.set);
        ck_assert_int_eq(q.unlimited, quota_cases[_i].unlimited);
        if (!q.unlimited) {
            ck_assert_uint_eq(q.count, quota_cases[_i].count);
            ck_assert_int_eq(q.unit, quota_cases[_i].unit);
        }
    } else {
        ck_assert(!q.set);
        snprintf(want, sizeof want, "%s%s", quota_cases[_i].err_prefix, quota_cases[_i].found);
        check_err(quota_cases[_i].in, err, want);
    }
}
END_TEST

/* ---- gram_pace_rate ----------------------------------------------- */

static const char rate_expected[] = "expected a rate like 600/hour (per second, minute, hour, day), found ";

static const struct {
    const char *in;
    bool ok;
    uint64_t count, period;
    const char *unit;
    const char *err_prefix;
    const char *found;
} rate_cases[] = {
    { "1/second", true, 1, 1, "second", NULL, NULL },
    { "60/minute", true, 60, 60, "minute", NULL, NULL },
    { "600/hour", true, 600, 3600, "hour", NULL, NULL },
    { "5/day", true, 5, 86400, "day", NULL, NULL },
    { "1000000000/second", true, 1000000000, 1, "second", NULL, NULL },
    { "1000000001/second", false, 0, 0, NULL, "expected a rate of at most 1000000000 per unit, found ",
      "\"1000000001/second\"" },
    { "99999999999999999999999/hour", false, 0, 0, NULL,
      "expected a rate of at most 1000000000 per unit, found ", "\"99999999999999999999999/hour\"" },
    { "0/hour", false, 0, 0, NULL, "expected a rate of at least 1 per unit, found ", "\"0/hour\"" },
    { "600/week", false, 0, 0, NULL, rate_expected, "\"600/week\"" },
    { "600/month", false, 0, 0, NULL, rate_expected, "\"600/month\"" },
    { "600/Hour", false, 0, 0, NULL, rate_expected, "\"600/Hour\"" },
    { "600/hours", false, 0, 0, NULL, rate_expected, "\"600/hours\"" },
    { "600/", false, 0, 0, NULL, rate_expected, "\"600/\"" },
    { "/hour", false, 0, 0, NULL, rate_expected, "\"/hour\"" },
    { "600", false, 0, 0, NULL, rate_expected, "\"600\"" },
    { "600hour", false, 0, 0, NULL, rate_expected, "\"600hour\"" },
    { "-1/hour", false, 0, 0, NULL, rate_expected, "\"-1/hour\"" },
    { "1.5/hour", false, 0, 0, NULL, rate_expected, "\"1.5/hour\"" },
    { "unlimited", false, 0, 0, NULL, rate_expected, "\"unlimited\"" },
    { "", false, 0, 0, NULL, rate_expected, "an empty value" },
};

START_TEST(test_pace_rate)
{
    char err[GRAM_ERR_MAX] = "", want[GRAM_ERR_MAX];
    struct pace_rate r = { 0, 0, NULL };
    bool ok = gram_pace_rate(rate_cases[_i].in, &r, err, sizeof err);
    ck_assert_msg(ok == rate_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, rate_cases[_i].in, ok, err);
    if (ok) {
        ck_assert_uint_eq(r.count, rate_cases[_i].count);
        ck_assert_uint_eq(r.period_s, rate_cases[_i].period);
        ck_assert_str_eq(r.unit, rate_cases[_i].unit);
    } else {
        snprintf(want, sizeof want, "%s%s", rate_cases[_i].err_prefix, rate_cases[_i].found);
        check_err(rate_cases[_i].in, err, want);
    }
}
END_TEST

/* ---- gram_domain / gram_hostname ---------------------------------- */

#define DOM "expected a domain like example.com"
#define HOST "expected a host name like mx1.example.com"

static const struct {
    const char *in;
    bool host;      /* gram_hostname instead of gram_domain */
    bool ok;
    const char *out_or_err;
} dns_cases[] = {
    { "example.com", false, true, "example.com" },
    { "Example.COM", false, true, "example.com" },
    { "example.com.", false, true, "example.com" },
    { "News.ACME.example", false, true, "news.acme.example" },
    { "xn--exmple-cua.com", false, true, "xn--exmple-cua.com" },
    { "a-b.example", false, true, "a-b.example" },
    { "a--b.example", false, true, "a--b.example" },
    { "0.example", false, true, "0.example" },
    { "1.2.3.4", false, false, DOM ", not an IP address, found \"1.2.3.4\"" },
    { "1.2.3.4", true, true, "1.2.3.4" },        /* a HELO name may be anything DNS-shaped */
    { "mail.example.123", false, false, DOM ", not an IP address, found \"mail.example.123\"" },
    { "123.example", false, true, "123.example" },
    { "localhost", false, false, DOM " with at least two labels, found \"localhost\"" },
    { "localhost.", false, false, DOM " with at least two labels, found \"localhost.\"" },
    { "", false, false, DOM " of 1 to 253 characters, found an empty value" },
    { ".", false, false, DOM " of 1 to 253 characters, found \".\"" },
    { "-a.example.com", false, false, DOM " (a label may not start with '-'), found \"-a.example.com\"" },
    { "a.-b.com", false, false, DOM " (a label may not start with '-'), found \"a.-b.com\"" },
    { "a-.example.com", false, false, DOM " (empty label or a label ending in '-'), found \"a-.example.com\"" },
    { "example.com-", false, false, DOM " (a label may not end with '-'), found \"example.com-\"" },
    { "example.com-.", false, false, DOM " (a label may not end with '-'), found \"example.com-.\"" },
    { "a..b", false, false, DOM " (empty label or a label ending in '-'), found \"a..b\"" },
    { ".example.com", false, false, DOM " (empty label or a label ending in '-'), found \".example.com\"" },
    { "example.com..", false, false, DOM " (empty label or a label ending in '-'), found \"example.com..\"" },
    { "ex\xc3\xa4mple.com", false, false,
      DOM " in ASCII (write IDNs as xn-- A-labels), found \"ex\xc3\xa4mple.com\"" },
    { "_dmarc.example.com", false, false, DOM " (letters, digits, '-' and '.'), found \"_dmarc.example.com\"" },
    { "a b.com", false, false, DOM " (letters, digits, '-' and '.'), found \"a b.com\"" },
    { "user@example.com", false, false, DOM " (letters, digits, '-' and '.'), found \"user@example.com\"" },
    { "example.com\n", false, false, DOM " (letters, digits, '-' and '.'), found \"example.com\\x0a\"" },
    /* host names: single labels are fine */
    { "mx1", true, true, "mx1" },
    { "MX1.Example.COM.", true, true, "mx1.example.com" },
    { "localhost", true, true, "localhost" },
    { "-mx", true, false, HOST " (a label may not start with '-'), found \"-mx\"" },
    { "mx-", true, false, HOST " (a label may not end with '-'), found \"mx-\"" },
    { "mx_1", true, false, HOST " (letters, digits, '-' and '.'), found \"mx_1\"" },
    { "mx1..example", true, false, HOST " (empty label or a label ending in '-'), found \"mx1..example\"" },
    { "mx.", true, true, "mx" },
    { "mx..", true, false, HOST " (empty label or a label ending in '-'), found \"mx..\"" },
    { "", true, false, HOST " of 1 to 253 characters, found an empty value" },
};

START_TEST(test_dns_name)
{
    char err[GRAM_ERR_MAX] = "", out[GRAM_DOMAIN_MAX + 1] = "";
    bool ok = dns_cases[_i].host ? gram_hostname(dns_cases[_i].in, out, sizeof out, err, sizeof err)
                                 : gram_domain(dns_cases[_i].in, out, sizeof out, err, sizeof err);
    ck_assert_msg(ok == dns_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, dns_cases[_i].in, ok, err);
    if (ok)
        ck_assert_str_eq(out, dns_cases[_i].out_or_err);
    else
        check_err(dns_cases[_i].in, err, dns_cases[_i].out_or_err);
}
END_TEST

/* s = n copies of c */
static char *fill(char *s, char c, size_t n)
{
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

START_TEST(test_domain_limits)
{
    char in[600], out[GRAM_DOMAIN_MAX + 1], err[GRAM_ERR_MAX], want[GRAM_ERR_MAX], l63[64], l64[65];
    fill(l63, 'a', 63);
    fill(l64, 'a', 64);

    /* a label of 63 characters is fine, 64 is not */
    snprintf(in, sizeof in, "%s.example", l63);
    ck_assert_msg(gram_domain(in, out, sizeof out, err, sizeof err), "%s", err);
    ck_assert_str_eq(out, in);
    snprintf(in, sizeof in, "%s.example", l64);
    ck_assert(!gram_domain(in, out, sizeof out, err, sizeof err));
    ck_assert_str_eq(err, DOM " (a label is at most 63 characters), found \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
    snprintf(in, sizeof in, "example.%s", l64);
    ck_assert(!gram_domain(in, out, sizeof out, err, sizeof err));
    ck_assert(strstr(err, "(a label is at most 63 characters)") != NULL);
    /* a single 64-character host name label too */
    ck_assert(!gram_hostname(l64, out, sizeof out, err, sizeof err));
    ck_assert(gram_hostname(l63, out, sizeof out, err, sizeof err));

    /* 253 characters in all (63.63.63.61) is fine, 254 is not */
    snprintf(in, sizeof in, "%s.%s.%s.%.61s", l63, l63, l63, l63);
    ck_assert_uint_eq(strlen(in), 253);
    ck_assert_msg(gram_domain(in, out, sizeof out, err, sizeof err), "%s", err);
    ck_assert_str_eq(out, in);
    /* ... also with the root dot (254 characters written) */
    strcat(in, ".");
    ck_assert_msg(gram_domain(in, out, sizeof out, err, sizeof err), "%s", err);
    ck_assert_uint_eq(strlen(out), 253);
    snprintf(in, sizeof in, "%s.%s.%s.%.62s", l63, l63, l63, l63);
    ck_assert_uint_eq(strlen(in), 254);
    ck_assert(!gram_domain(in, out, sizeof out, err, sizeof err));
    snprintf(want, sizeof want, "%s of 1 to 253 characters, found \"%.40s...\"", DOM, in);
    ck_assert_str_eq(err, want);

    /* an output buffer too small is an error, never an overflow */
    char small[8];
    ck_assert(!gram_domain("example.com", small, sizeof small, err, sizeof err));
    ck_assert(gram_domain("exam.com", out, 9, err, sizeof err));
}
END_TEST

/* ---- gram_address / gram_login ------------------------------------ */

#define ADDR "expected an address like user@example.com"
#define LOGIN "expected a login: an address or a name "

static const struct {
    const char *in;
    bool login;   /* gram_login instead of gram_address */
    bool ok;
    const char *out_or_err;
} addr_cases[] = {
    { "user@example.com", false, true, "user@example.com" },
    { "User.Name@Example.COM", false, true, "user.name@example.com" },
    { "user+tag@example.com", false, true, "user+tag@example.com" },
    { "o'brien@example.com", false, true, "o'brien@example.com" },
    { "a!#$%&'*+-/=?^_`{|}~z@example.com", false, true, "a!#$%&'*+-/=?^_`{|}~z@example.com" },
    { "user@example.com.", false, true, "user@example.com" },
    { "example.com", false, false, ADDR ", found \"example.com\"" },
    { "@example.com", false, false, ADDR ", found \"@example.com\"" },
    { "", false, false, ADDR ", found an empty value" },
    { ".user@example.com", false, false, ADDR " (misplaced '.' in the local part), found \".user@example.com\"" },
    { "user.@example.com", false, false, ADDR " (misplaced '.' in the local part), found \"user.@example.com\"" },
    { "us..er@example.com", false, false, ADDR " (misplaced '.' in the local part), found \"us..er@example.com\"" },
    { ".@example.com", false, false, ADDR " (misplaced '.' in the local part), found \".@example.com\"" },
    { "\"john doe\"@example.com", false, false, ADDR " (unquoted local part), found \"\"john doe\"@example.com\"" },
    { "a b@example.com", false, false, ADDR " (unquoted local part), found \"a b@example.com\"" },
    { "a@b@example.com", false, false, ADDR " (unquoted local part), found \"a@b@example.com\"" },
    { "a(b)@example.com", false, false, ADDR " (unquoted local part), found \"a(b)@example.com\"" },
    { "user@localhost", false, false,
      ADDR " (expected a domain like example.com with at least two labels, found \"localhost\"), found "
           "\"user@localhost\"" },
    { "user@", false, false,
      ADDR " (expected a domain like example.com of 1 to 253 characters, found an empty value), found \"user@\"" },
    { "user@exa_mple.com", false, false,
      ADDR " (expected a domain like example.com (letters, digits, '-' and '.'), found \"exa_mple.com\"), found "
           "\"user@exa_mple.com\"" },
    { "user@[192.0.2.1]", false, false,
      ADDR " (expected a domain like example.com (letters, digits, '-' and '.'), found \"[192.0.2.1]\"), found "
           "\"user@[192.0.2.1]\"" },
    /* a long invalid domain: the nested message is complete, not cut */
    { "user@ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4mple.com", false, false,
      ADDR " (expected a domain like example.com in ASCII (write IDNs as xn-- A-labels), found "
           "\"ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4...\"), found "
           "\"user@ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4mple-ex\xc3\xa4mple...\"" },
    /* logins */
    { "bob", true, true, "bob" },
    { "Bob", true, true, "bob" },
    { "Bob.Smith+x_y-z9", true, true, "bob.smith+x_y-z9" },
    { "Bob@Example.com", true, true, "bob@example.com" },
    { ".bob", true, true, ".bob" }, /* bare names have no placement rule for '.' */
    { "bob smith", true, false, LOGIN "of letters, digits, '.', '_', '+', '-', found \"bob smith\"" },
    { "bob:x", true, false, LOGIN "of letters, digits, '.', '_', '+', '-', found \"bob:x\"" },
    { "b\xc3\xb6" "b", true, false, LOGIN "of letters, digits, '.', '_', '+', '-', found \"b\xc3\xb6" "b\"" },
    { "", true, false, LOGIN "of 1 to 128 characters, found an empty value" },
    { "bob@localhost", true, false,
      ADDR " (expected a domain like example.com with at least two labels, found \"localhost\"), found "
           "\"bob@localhost\"" },
    { "@example.com", true, false, ADDR ", found \"@example.com\"" },
};

START_TEST(test_address)
{
    char err[GRAM_ERR_MAX] = "", out[GRAM_ADDRESS_MAX + 1] = "";
    bool ok = addr_cases[_i].login ? gram_login(addr_cases[_i].in, out, sizeof out, err, sizeof err)
                                   : gram_address(addr_cases[_i].in, out, sizeof out, err, sizeof err);
    ck_assert_msg(ok == addr_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, addr_cases[_i].in, ok, err);
    if (ok)
        ck_assert_str_eq(out, addr_cases[_i].out_or_err);
    else
        check_err(addr_cases[_i].in, err, addr_cases[_i].out_or_err);
}
END_TEST

START_TEST(test_address_limits)
{
    char in[600], out[GRAM_ADDRESS_MAX + 1], err[GRAM_ERR_MAX], want[GRAM_ERR_MAX], l[200];

    /* local part: 64 fine, 65 not */
    snprintf(in, sizeof in, "%s@example.com", fill(l, 'u', 64));
    ck_assert_msg(gram_address(in, out, sizeof out, err, sizeof err), "%s", err);
    ck_assert_str_eq(out, in);
    snprintf(in, sizeof in, "%s@example.com", fill(l, 'u', 65));
    ck_assert(!gram_address(in, out, sizeof out, err, sizeof err));
    snprintf(want, sizeof want, "%s (local part at most 64 characters), found \"%.40s...\"", ADDR, in);
    ck_assert_str_eq(err, want);

    /* 254 characters in all: 64 @ 63.63.61 is fine, one more is not */
    char l63[64], l61[62], l62[63];
    fill(l63, 'd', 63);
    fill(l61, 'd', 61);
    fill(l62, 'd', 62);
    snprintf(in, sizeof in, "%s@%s.%s.%s", fill(l, 'u', 64), l63, l63, l61);
    ck_assert_uint_eq(strlen(in), 254);
    ck_assert_msg(gram_address(in, out, sizeof out, err, sizeof err), "%s", err);
    ck_assert_str_eq(out, in);
    snprintf(in, sizeof in, "%s@%s.%s.%s", l, l63, l63, l62);
    ck_assert_uint_eq(strlen(in), 255);
    ck_assert(!gram_address(in, out, sizeof out, err, sizeof err));
    snprintf(want, sizeof want, "%s, found \"%.40s...\"", ADDR, in);
    ck_assert_str_eq(err, want);

    /* output buffer too small: an error */
    ck_assert(!gram_address("user@example.com", out, 16, err, sizeof err));
    ck_assert(gram_address("user@example.com", out, 17, err, sizeof err));
    ck_assert(!gram_login("bob", out, 3, err, sizeof err));

    /* logins: 128 fine, 129 not */
    fill(l, 'b', 128);
    ck_assert_msg(gram_login(l, out, sizeof out, err, sizeof err), "%s", err);
    ck_assert_str_eq(out, l);
    fill(l, 'B', 128);
    ck_assert(gram_login(l, out, sizeof out, err, sizeof err));
    ck_assert_str_eq(out, fill(in, 'b', 128));
    fill(l, 'b', 129);
    ck_assert(!gram_login(l, out, sizeof out, err, sizeof err));
    snprintf(want, sizeof want, "%sof 1 to 128 characters, found \"%.40s...\"", LOGIN, l);
    ck_assert_str_eq(err, want);
}
END_TEST

/* ---- gram_name ---------------------------------------------------- */

#define NAME_ERR(found) \
    "expected tenant name: a letter or digit, then letters, digits, '.', '_', '-' (at most 64), found " found

static const struct {
    const char *in;
    bool ok;
    const char *err;
} name_cases[] = {
    { "acme", true, NULL },
    { "Acme", true, NULL },
    { "acme-out", true, NULL },
    { "a.b_c-d", true, NULL },
    { "1", true, NULL },
    { "9lives", true, NULL },
    { "-acme", false, NAME_ERR("\"-acme\"") },
    { "_acme", false, NAME_ERR("\"_acme\"") },
    { ".acme", false, NAME_ERR("\".acme\"") },
    { "", false, NAME_ERR("an empty value") },
    { "acme out", false, NAME_ERR("\"acme out\"") },
    { "acme/x", false, NAME_ERR("\"acme/x\"") },
    { "acme:x", false, NAME_ERR("\"acme:x\"") },
    { "acme+x", false, NAME_ERR("\"acme+x\"") },
    { "acm\xc3\xa9", false, NAME_ERR("\"acm\xc3\xa9\"") },
};

START_TEST(test_name)
{
    char err[GRAM_ERR_MAX] = "";
    bool ok = gram_name(name_cases[_i].in, "tenant name", err, sizeof err);
    ck_assert_msg(ok == name_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, name_cases[_i].in, ok, err);
    if (!ok)
        check_err(name_cases[_i].in, err, name_cases[_i].err);
}
END_TEST

START_TEST(test_name_limits)
{
    char s[80], err[GRAM_ERR_MAX];
    ck_assert(gram_name(fill(s, 'n', 64), "transport", err, sizeof err));
    ck_assert(!gram_name(fill(s, 'n', 65), "transport", err, sizeof err));
    ck_assert_str_eq(err, "expected transport: a letter or digit, then letters, digits, '.', '_', '-' (at most 64), "
                          "found \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\"");
}
END_TEST

/* ---- gram_bool ---------------------------------------------------- */

static const struct {
    const char *in;
    bool ok, val;
    const char *err;
} bool_cases[] = {
    { "true", true, true, NULL },
    { "false", true, false, NULL },
    { "True", false, false, "expected true or false, found \"True\"" },
    { "yes", false, false, "expected true or false, found \"yes\"" },
    { "on", false, false, "expected true or false, found \"on\"" },
    { "1", false, false, "expected true or false, found \"1\"" },
    { "true ", false, false, "expected true or false, found \"true \"" },
    { "", false, false, "expected true or false, found an empty value" },
};

START_TEST(test_bool)
{
    char err[GRAM_ERR_MAX] = "";
    bool v = !bool_cases[_i].val;
    bool ok = gram_bool(bool_cases[_i].in, &v, err, sizeof err);
    ck_assert_msg(ok == bool_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, bool_cases[_i].in, ok, err);
    if (ok)
        ck_assert_int_eq(v, bool_cases[_i].val);
    else
        check_err(bool_cases[_i].in, err, bool_cases[_i].err);
}
END_TEST

/* ---- gram_number -------------------------------------------------- */

static const struct {
    const char *in;
    double min, max;
    bool ok;
    double val;
    const char *err;
} num_cases[] = {
    { "5", 0, 100, true, 5, NULL },
    { "5.5", 0, 100, true, 5.5, NULL },
    { "0", 0, 100, true, 0, NULL },
    { "100", 0, 100, true, 100, NULL },
    { "100.0", 0, 100, true, 100, NULL },
    { "5.", 0, 100, true, 5, NULL },
    { "007", 0, 100, true, 7, NULL },
    { "+5", 0, 100, true, 5, NULL },
    { "-5.5", -10, 10, true, -5.5, NULL },
    { "-10", -10, 10, true, -10, NULL },
    { "-0", 0, 100, true, 0, NULL },
    { "1e3", 0, 10000, true, 1000, NULL }, /* exponents are accepted within bounds */
    { "1E3", 0, 10000, true, 1000, NULL },
    { "1e3", 0, 100, false, 0, "expected a number from 0 to 100, found \"1e3\"" },
    { "100.0001", 0, 100, false, 0, "expected a number from 0 to 100, found \"100.0001\"" },
    { "-1", 0, 100, false, 0, "expected a number from 0 to 100, found \"-1\"" },
    { "-10.5", -10, 10, false, 0, "expected a number from -10 to 10, found \"-10.5\"" },
    { "0.5", 1.5, 2.5, false, 0, "expected a number from 1.5 to 2.5, found \"0.5\"" },
    { "nan", 0, 100, false, 0, "expected a number from 0 to 100, found \"nan\"" },
    { "NaN", 0, 100, false, 0, "expected a number from 0 to 100, found \"NaN\"" },
    { "inf", 0, 100, false, 0, "expected a number from 0 to 100, found \"inf\"" },
    { "-inf", -100, 100, false, 0, "expected a number from -100 to 100, found \"-inf\"" },
    { "infinity", 0, 100, false, 0, "expected a number from 0 to 100, found \"infinity\"" },
    { "1e999", 0, 1e300, false, 0, "expected a number from 0 to 1e+300, found \"1e999\"" },
    { ".5", 0, 100, false, 0, "expected a number from 0 to 100, found \".5\"" },
    { "0x10", 0, 100, false, 0, "expected a number from 0 to 100, found \"0x10\"" },
    { "0x1p3", 0, 100, false, 0, "expected a number from 0 to 100, found \"0x1p3\"" },
    { "5 ", 0, 100, false, 0, "expected a number from 0 to 100, found \"5 \"" },
    { " 5", 0, 100, false, 0, "expected a number from 0 to 100, found \" 5\"" },
    { "5,5", 0, 100, false, 0, "expected a number from 0 to 100, found \"5,5\"" },
    { "--5", -10, 10, false, 0, "expected a number from -10 to 10, found \"--5\"" },
    { "", 0, 100, false, 0, "expected a number from 0 to 100, found an empty value" },
};

START_TEST(test_number)
{
    char err[GRAM_ERR_MAX] = "";
    double v = -12345;
    bool ok = gram_number(num_cases[_i].in, num_cases[_i].min, num_cases[_i].max, &v, err, sizeof err);
    ck_assert_msg(ok == num_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, num_cases[_i].in, ok, err);
    if (ok)
        ck_assert_double_eq(v, num_cases[_i].val);
    else
        check_err(num_cases[_i].in, err, num_cases[_i].err);
}
END_TEST

/* ---- gram_enum ---------------------------------------------------- */

static const char *const abc[] = { "a", "b", "c", NULL };
static const char *const two[] = { "dunno", "defer", NULL };
static const char *const one[] = { "only", NULL };

static const struct {
    const char *in;
    const char *const *words;
    bool ok;
    int idx;
    const char *err;
} enum_cases[] = {
    { "a", abc, true, 0, NULL },
    { "b", abc, true, 1, NULL },
    { "c", abc, true, 2, NULL },
    { "x", abc, false, 0, "expected a, b or c, found \"x\"" },
    { "A", abc, false, 0, "expected a, b or c, found \"A\"" },
    { "a ", abc, false, 0, "expected a, b or c, found \"a \"" },
    { "", abc, false, 0, "expected a, b or c, found an empty value" },
    { "defer", two, true, 1, NULL },
    { "reject", two, false, 0, "expected dunno or defer, found \"reject\"" },
    { "only", one, true, 0, NULL },
    { "x", one, false, 0, "expected only, found \"x\"" },
};

START_TEST(test_enum)
{
    char err[GRAM_ERR_MAX] = "";
    int v = -1;
    bool ok = gram_enum(enum_cases[_i].in, enum_cases[_i].words, &v, err, sizeof err);
    ck_assert_msg(ok == enum_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, enum_cases[_i].in, ok, err);
    if (ok)
        ck_assert_int_eq(v, enum_cases[_i].idx);
    else
        check_err(enum_cases[_i].in, err, enum_cases[_i].err);
}
END_TEST

/* A long word list is cut, never overflowed; a small err buffer too. */
START_TEST(test_enum_long_list_and_small_err)
{
    static const char *const many[] = {
        "alpha-alpha-alpha", "bravo-bravo-bravo", "charlie-charlie", "delta-delta-delta", "echo-echo-echo",
        "foxtrot-foxtrot", "golf-golf-golf", "hotel-hotel-hotel", "india-india-india", "juliett-juliett",
        "kilo-kilo-kilo", "lima-lima-lima", NULL,
    };
    char err[GRAM_ERR_MAX];
    int v;
    ck_assert(!gram_enum("x", many, &v, err, sizeof err));
    ck_assert(strncmp(err, "expected alpha-alpha-alpha, bravo-bravo-bravo, ", 47) == 0);
    ck_assert(strstr(err, ", found \"x\"") != NULL);
    ck_assert(gram_enum("lima-lima-lima", many, &v, err, sizeof err));
    ck_assert_int_eq(v, 11);

    char tiny[12];
    ck_assert(!gram_uint("x", 10, &(uint64_t){ 0 }, tiny, sizeof tiny));
    ck_assert_str_eq(tiny, "expected a ");
}
END_TEST

/* The "found" part: control characters escaped, long input cut at 40. */
START_TEST(test_found_rendering)
{
    char err[GRAM_ERR_MAX];
    bool b;
    ck_assert(!gram_bool("a\tb\x7f", &b, err, sizeof err));
    ck_assert_str_eq(err, "expected true or false, found \"a\\x09b\\x7f\"");
    /* exactly 40 characters: no ellipsis */
    ck_assert(!gram_bool("0123456789012345678901234567890123456789", &b, err, sizeof err));
    ck_assert_str_eq(err, "expected true or false, found \"0123456789012345678901234567890123456789\"");
    ck_assert(!gram_bool("0123456789012345678901234567890123456789X", &b, err, sizeof err));
    ck_assert_str_eq(err, "expected true or false, found \"0123456789012345678901234567890123456789...\"");
    /* many control characters: the rendering stays bounded */
    ck_assert(!gram_bool("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01",
                         &b, err, sizeof err));
    ck_assert(strncmp(err, "expected true or false, found \"\\x01\\x01", 39) == 0);
    ck_assert(strstr(err, "...\"") != NULL);
    ck_assert_uint_lt(strlen(err), 120);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, test_uint, 0, NCASES(uint_cases));
    tcase_add_loop_test(tc, test_size, 0, NCASES(size_cases));
    tcase_add_loop_test(tc, test_duration, 0, NCASES(dur_cases));
    tcase_add_loop_test(tc, test_quota, 0, NCASES(quota_cases));
    tcase_add_loop_test(tc, test_pace_rate, 0, NCASES(rate_cases));
    tcase_add_loop_test(tc, test_dns_name, 0, NCASES(dns_cases));
    tcase_add_test(tc, test_domain_limits);
    tcase_add_loop_test(tc, test_address, 0, NCASES(addr_cases));
    tcase_add_test(tc, test_address_limits);
    tcase_add_loop_test(tc, test_name, 0, NCASES(name_cases));
    tcase_add_test(tc, test_name_limits);
    tcase_add_loop_test(tc, test_bool, 0, NCASES(bool_cases));
    tcase_add_loop_test(tc, test_number, 0, NCASES(num_cases));
    tcase_add_loop_test(tc, test_enum, 0, NCASES(enum_cases));
    tcase_add_test(tc, test_enum_long_list_and_small_err);
    tcase_add_test(tc, test_found_rendering);
}

UNIT_MAIN("grammar", add_tests)
