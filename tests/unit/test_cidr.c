/* test_cidr.c: unit tests of lib/cidr.c: IPv4/IPv6 address parsing (with
 * IPv4-mapped IPv6 equal to IPv4), network parsing with its error texts,
 * containment (notably which /0 matches which family), overlap, and the
 * printable forms round-tripping through the parser. */
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "unit.h"

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

static struct ipaddr addr(const char *s)
{
    struct ipaddr a;
    ck_assert_msg(ipaddr_parse(s, &a), "cannot parse address \"%s\"", s);
    return a;
}

static struct cidr net(const char *s)
{
    struct cidr c;
    char err[128];
    ck_assert_msg(cidr_parse(s, &c, err, sizeof err), "cannot parse network \"%s\": %s", s, err);
    return c;
}

/* ---- ipaddr_parse / ipaddr_format --------------------------------- */

static const struct {
    const char *in;
    bool ok;
    const char *fmt;   /* ipaddr_format of the result */
    bool v4;
} addr_cases[] = {
    { "192.0.2.1", true, "192.0.2.1", true },
    { "0.0.0.0", true, "0.0.0.0", true },
    { "255.255.255.255", true, "255.255.255.255", true },
    { "::ffff:192.0.2.1", true, "192.0.2.1", true },
    { "::FFFF:c000:0201", true, "192.0.2.1", true },
    { "0:0:0:0:0:ffff:192.0.2.1", true, "192.0.2.1", true },
    { "::ffff:0:0", true, "0.0.0.0", true },
    { "2001:db8::1", true, "2001:db8::1", false },
    { "2001:DB8:0:0:0:0:0:1", true, "2001:db8::1", false },
    { "::", true, "::", false },
    { "::1", true, "::1", false },
    { "::192.0.2.1", true, "::192.0.2.1", false }, /* IPv4-compatible is not IPv4 */
    { "::fffe:192.0.2.1", true, "::fffe:c000:201", false },
    { "64:ff9b::192.0.2.1", true, "64:ff9b::c000:201", false }, /* NAT64 is not IPv4 either */
    { "1.2.3", false, NULL, false },
    { "1.2.3.4.5", false, NULL, false },
    { "256.0.0.1", false, NULL, false },
    { "01.2.3.4", false, NULL, false }, /* no octal-looking octets */
    { "1.2.3.04", false, NULL, false },
    { "0x1.2.3.4", false, NULL, false },
    { "1.2.3.-1", false, NULL, false },
    { "1.2.3.4/", false, NULL, false },
    { "1.2.3.4/32", false, NULL, false },
    { " 1.2.3.4", false, NULL, false },
    { "1.2.3.4 ", false, NULL, false },
    { "", false, NULL, false },
    { "::g", false, NULL, false },
    { ":", false, NULL, false },
    { "2001:db8:::1", false, NULL, false },
    { "1:2:3:4:5:6:7:8:9", false, NULL, false },
    { "[::1]", false, NULL, false },
    { "fe80::1%eth0", false, NULL, false },
    { "::ffff:256.0.0.1", false, NULL, false },
    { "localhost", false, NULL, false },
};

START_TEST(test_ipaddr)
{
    struct ipaddr a, b;
    char out[46], again[46];
    bool ok = ipaddr_parse(addr_cases[_i].in, &a);
    ck_assert_msg(ok == addr_cases[_i].ok, "case %d \"%s\": ok=%d", _i, addr_cases[_i].in, ok);
    if (!ok)
        return;
    ck_assert_int_eq(ipaddr_is_v4(&a), addr_cases[_i].v4);
    ck_assert_str_eq(ipaddr_format(&a, out, sizeof out), addr_cases[_i].fmt);
    /* the printed form parses back to the same 16 bytes */
    ck_assert(ipaddr_parse(out, &b));
    ck_assert_mem_eq(a.b, b.b, 16);
    ck_assert_str_eq(ipaddr_format(&b, again, sizeof again), out);
}
END_TEST

START_TEST(test_mapped_equals_v4)
{
    struct ipaddr a = addr("192.0.2.1"), b = addr("::ffff:192.0.2.1");
    static const uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 };
    ck_assert_mem_eq(a.b, b.b, 16);
    ck_assert_mem_eq(a.b, want, 16);
    /* ipaddr_bit: bit 0 is the most significant bit of byte 0 */
    ck_assert_int_eq(ipaddr_bit(&a, 0), 0);
    ck_assert_int_eq(ipaddr_bit(&a, 79), 0);
    ck_assert_int_eq(ipaddr_bit(&a, 80), 1);
    ck_assert_int_eq(ipaddr_bit(&a, 95), 1);
    ck_assert_int_eq(ipaddr_bit(&a, 96), 1);  /* 192 = 0b11000000 */
    ck_assert_int_eq(ipaddr_bit(&a, 97), 1);
    ck_assert_int_eq(ipaddr_bit(&a, 98), 0);
    ck_assert_int_eq(ipaddr_bit(&a, 127), 1); /* .1 */
    ck_assert_int_eq(ipaddr_bit(&a, 126), 0);
}
END_TEST

/* ---- cidr_parse / cidr_format ------------------------------------- */

static const struct {
    const char *in;
    bool ok;
    const char *out;   /* cidr_format when ok, else the exact error */
    int bits;          /* bits over 128 when ok */
} cidr_cases[] = {
    { "203.0.113.10", true, "203.0.113.10/32", 128 },
    { "203.0.113.10/32", true, "203.0.113.10/32", 128 },
    { "203.0.113.0/24", true, "203.0.113.0/24", 120 },
    { "203.0.113.128/25", true, "203.0.113.128/25", 121 },
    { "10.0.0.0/8", true, "10.0.0.0/8", 104 },
    { "10.0.0.0/08", true, "10.0.0.0/8", 104 }, /* a leading zero in the length is read as decimal */
    { "0.0.0.0/0", true, "0.0.0.0/0", 96 },
    { "2001:db8::/32", true, "2001:db8::/32", 32 },
    { "2001:db8:10::/48", true, "2001:db8:10::/48", 48 },
    { "2001:db8::1", true, "2001:db8::1/128", 128 },
    { "2001:db8::1/128", true, "2001:db8::1/128", 128 },
    { "::/0", true, "::/0", 0 },
    { "::1/128", true, "::1/128", 128 },
    /* IPv4-mapped IPv6 networks are IPv4 networks, printed as such */
    { "::ffff:192.0.2.0/120", true, "192.0.2.0/24", 120 },
    { "::ffff:0:0/96", true, "0.0.0.0/0", 96 },
    { "::ffff:192.0.2.1", true, "192.0.2.1/32", 128 },
    /* errors */
    { "203.0.113.10/33", false, "expected a prefix length 0-32 after '/', found \"33\"", 0 },
    { "203.0.113.10/24", false, "host bits set in \"203.0.113.10/24\" (the network is 203.0.113.0/24)", 0 },
    { "10.1.2.3/8", false, "host bits set in \"10.1.2.3/8\" (the network is 10.0.0.0/8)", 0 },
    { "192.0.2.1/0", false, "host bits set in \"192.0.2.1/0\" (the network is 0.0.0.0/0)", 0 },
    { "2001:db8::/129", false, "expected a prefix length 0-128 after '/', found \"129\"", 0 },
    { "2001:db8::1/48", false, "host bits set in \"2001:db8::1/48\" (the network is 2001:db8::/48)", 0 },
    { "2001:db8::1/0", false, "host bits set in \"2001:db8::1/0\" (the network is ::/0)", 0 },
    { "::ffff:192.0.2.1/120", false,
      "host bits set in \"::ffff:192.0.2.1/120\" (the network is 192.0.2.0/24)", 0 },
    { "::ffff:192.0.2.0/24", false, "host bits set in \"::ffff:192.0.2.0/24\" (the network is ::/24)", 0 },
    { "1.2.3.4/", false, "expected a prefix length 0-32 after '/', found \"\"", 0 },
    { "2001:db8::/", false, "expected a prefix length 0-128 after '/', found \"\"", 0 },
    { "1.2.3.4/-1", false, "expected a prefix length 0-32 after '/', found \"-1\"", 0 },
    { "1.2.3.4/+8", false, "expected a prefix length 0-32 after '/', found \"+8\"", 0 },
    { "1.2.3.4/ 8", false, "expected a prefix length 0-32 after '/', found \" 8\"", 0 },
    { "1.2.3.4/8x", false, "expected a prefix length 0-32 after '/', found \"8x\"", 0 },
    { "1.2.3.4/0032", false, "expected a prefix length 0-32 after '/', found \"0032\"", 0 },
    { "1.2.3.4/32/1", false, "expected a prefix length 0-32 after '/', found \"32/1\"", 0 },
    { "1.2.3.4/99999999999999999999", false,
      "expected a prefix length 0-32 after '/', found \"99999999999999999999\"", 0 },
    { "1.2.3/24", false, "expected an IPv4 or IPv6 address, found \"1.2.3\"", 0 },
    { "256.0.0.0/8", false, "expected an IPv4 or IPv6 address, found \"256.0.0.0\"", 0 },
    { "::g/64", false, "expected an IPv4 or IPv6 address, found \"::g\"", 0 },
    { "example.com/24", false, "expected an IPv4 or IPv6 address, found \"example.com\"", 0 },
    { "/24", false, "expected an IPv4 or IPv6 address or network", 0 },
    { "", false, "expected an IPv4 or IPv6 address or network", 0 },
    { "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd/64", false,
      "expected an IPv4 or IPv6 address or network", 0 },
};

START_TEST(test_cidr_parse)
{
    struct cidr c, back;
    char err[160] = "", out[50], err2[160];
    bool ok = cidr_parse(cidr_cases[_i].in, &c, err, sizeof err);
    ck_assert_msg(ok == cidr_cases[_i].ok, "case %d \"%s\": ok=%d err=%s", _i, cidr_cases[_i].in, ok, err);
    if (!ok) {
        ck_assert_str_eq(err, cidr_cases[_i].out);
        return;
    }
    ck_assert_int_eq(c.bits, cidr_cases[_i].bits);
    ck_assert_str_eq(cidr_format(&c, out, sizeof out), cidr_cases[_i].out);
    /* round trip: the printed form parses to the same network */
    ck_assert_msg(cidr_parse(out, &back, err2, sizeof err2), "%s: %s", out, err2);
    ck_assert_int_eq(back.bits, c.bits);
    ck_assert_mem_eq(back.net.b, c.net.b, 16);
}
END_TEST

/* The error text of a long input is cut to the buffer, not overflowed. */
START_TEST(test_cidr_small_err)
{
    struct cidr c;
    char err[16];
    ck_assert(!cidr_parse("203.0.113.10/24", &c, err, sizeof err));
    ck_assert_uint_eq(strlen(err), sizeof err - 1);
    ck_assert(strncmp(err, "host bits set", 13) == 0);
}
END_TEST

/* ---- cidr_contains ------------------------------------------------ */

static const struct {
    const char *net, *addr;
    bool in;
} contains_cases[] = {
    { "192.0.2.0/24", "192.0.2.1", true },
    { "192.0.2.0/24", "192.0.2.255", true },
    { "192.0.2.0/24", "192.0.3.1", false },
    { "192.0.2.0/24", "::ffff:192.0.2.77", true },  /* a mapped client, a v4 rule */
    { "192.0.2.0/24", "2001:db8::1", false },
    { "192.0.2.0/24", "::192.0.2.1", false },       /* IPv4-compatible is not mapped */
    { "192.0.2.0/25", "192.0.2.127", true },
    { "192.0.2.0/25", "192.0.2.128", false },
    { "192.0.2.128/25", "192.0.2.128", true },
    { "192.0.2.128/25", "192.0.2.127", false },
    { "203.0.113.10", "203.0.113.10", true },
    { "203.0.113.10", "203.0.113.11", false },
    { "10.0.0.0/8", "10.255.255.255", true },
    { "10.0.0.0/8", "11.0.0.0", false },
    { "10.0.0.0/7", "11.0.0.0", true },
    /* IPv4 /0 is ::ffff:0:0/96: every IPv4 address, no native IPv6 one */
    { "0.0.0.0/0", "1.2.3.4", true },
    { "0.0.0.0/0", "0.0.0.0", true },
    { "0.0.0.0/0", "255.255.255.255", true },
    { "0.0.0.0/0", "::ffff:1.2.3.4", true },
    { "0.0.0.0/0", "::1", false },
    { "0.0.0.0/0", "::", false },
    { "0.0.0.0/0", "2001:db8::1", false },
    /* IPv6 ::/0 is everything, IPv4 (mapped) included */
    { "::/0", "2001:db8::1", true },
    { "::/0", "::", true },
    { "::/0", "1.2.3.4", true },
    { "2001:db8::/32", "2001:db8:ffff:ffff::1", true },
    { "2001:db8::/32", "2001:db9::", false },
    { "2001:db8::/33", "2001:db8:7fff::", true },
    { "2001:db8::/33", "2001:db8:8000::", false },
    { "2001:db8::1/128", "2001:db8::1", true },
    { "2001:db8::1/128", "2001:db8::2", false },
    { "2001:db8::/32", "192.0.2.1", false },
    { "::ffff:192.0.2.0/120", "192.0.2.5", true },
    { "::ffff:192.0.2.0/120", "192.0.3.5", false },
    { "::/96", "1.2.3.4", false },
};

START_TEST(test_contains)
{
    struct cidr c = net(contains_cases[_i].net);
    struct ipaddr a = addr(contains_cases[_i].addr);
    ck_assert_msg(cidr_contains(&c, &a) == contains_cases[_i].in, "case %d: %s in %s should be %d", _i,
                  contains_cases[_i].addr, contains_cases[_i].net, contains_cases[_i].in);
}
END_TEST

/* ---- cidr_overlaps ------------------------------------------------ */

static const struct {
    const char *a, *b;
    bool overlap;
} overlap_cases[] = {
    { "10.0.0.0/8", "10.1.0.0/16", true },          /* nested */
    { "10.0.0.0/8", "10.0.0.0/8", true },           /* equal */
    { "10.0.0.0/8", "11.0.0.0/8", false },          /* disjoint */
    { "10.0.0.0/8", "10.1.2.3", true },             /* a host inside */
    { "192.0.2.0/25", "192.0.2.128/25", false },    /* adjacent */
    { "192.0.2.0/24", "192.0.2.128/25", true },
    { "192.0.2.1", "192.0.2.1", true },
    { "192.0.2.1", "192.0.2.2", false },
    { "10.0.0.0/8", "2001:db8::/32", false },       /* IPv4 vs IPv6 */
    { "0.0.0.0/0", "2001:db8::/32", false },
    { "0.0.0.0/0", "::/0", true },                  /* ::/0 holds the mapped space */
    { "0.0.0.0/0", "192.0.2.0/24", true },
    { "::ffff:10.0.0.0/104", "10.1.2.3", true },    /* mapped v6 syntax vs v4 */
    { "2001:db8::/32", "2001:db8:10::/48", true },
    { "2001:db8::/48", "2001:db8:1::/48", false },
    { "::/0", "2001:db8::1", true },
};

START_TEST(test_overlaps)
{
    struct cidr a = net(overlap_cases[_i].a), b = net(overlap_cases[_i].b);
    ck_assert_msg(cidr_overlaps(&a, &b) == overlap_cases[_i].overlap, "case %d: %s vs %s", _i,
                  overlap_cases[_i].a, overlap_cases[_i].b);
    ck_assert_msg(cidr_overlaps(&b, &a) == overlap_cases[_i].overlap, "case %d (swapped): %s vs %s", _i,
                  overlap_cases[_i].b, overlap_cases[_i].a);
}
END_TEST

/* Every prefix length of both families round-trips through the printer. */
START_TEST(test_format_all_lengths)
{
    char in[64], out[50], err[160];
    struct cidr c, back;
    for (unsigned len = 0; len <= 32; len++) {
        snprintf(in, sizeof in, "0.0.0.0/%u", len);
        ck_assert_msg(cidr_parse(in, &c, err, sizeof err), "%s: %s", in, err);
        ck_assert_int_eq(c.bits, 96 + len);
        ck_assert_str_eq(cidr_format(&c, out, sizeof out), in);
    }
    for (unsigned len = 0; len <= 128; len++) {
        snprintf(in, sizeof in, "2000::/%u", len);
        bool ok = cidr_parse(in, &c, err, sizeof err);
        /* 2000:: has bit 2 set: lengths 0..2 leave it in the host part */
        ck_assert_msg(ok == (len >= 3), "%s: %d", in, ok);
        if (!ok)
            continue;
        cidr_format(&c, out, sizeof out);
        ck_assert_str_eq(out, in);
        ck_assert(cidr_parse(out, &back, err, sizeof err));
        ck_assert_mem_eq(back.net.b, c.net.b, 16);
    }
    /* the longest printable forms fit in the documented 50 bytes */
    c = net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    ck_assert_str_eq(cidr_format(&c, out, sizeof out), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    c = net("255.255.255.255/32");
    ck_assert_str_eq(cidr_format(&c, out, sizeof out), "255.255.255.255/32");
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, test_ipaddr, 0, NCASES(addr_cases));
    tcase_add_test(tc, test_mapped_equals_v4);
    tcase_add_loop_test(tc, test_cidr_parse, 0, NCASES(cidr_cases));
    tcase_add_test(tc, test_cidr_small_err);
    tcase_add_loop_test(tc, test_contains, 0, NCASES(contains_cases));
    tcase_add_loop_test(tc, test_overlaps, 0, NCASES(overlap_cases));
    tcase_add_test(tc, test_format_all_lengths);
}

UNIT_MAIN("cidr", add_tests)
