/* cidr.c: parsing, printing and matching of IPv4/IPv6 networks (cidr.h). */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool ipaddr_parse(const char *s, struct ipaddr *out)
{
    struct in_addr a4;
    if (strchr(s, ':') == NULL) {
        /* inet_pton(AF_INET) takes only dotted quads: no "1.2.3", no octal. */
        if (inet_pton(AF_INET, s, &a4) != 1)
            return false;
        memcpy(out->b, v4_prefix, 12);
        memcpy(out->b + 12, &a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, out->b) == 1;
}

bool ipaddr_is_v4(const struct ipaddr *a)
{
    return memcmp(a->b, v4_prefix, 12) == 0;
}

const char *ipaddr_format(const struct ipaddr *a, char *out, size_t size)
{
    if (ipaddr_is_v4(a))
        inet_ntop(AF_INET, a->b + 12, out, (socklen_t)size);
    else
        inet_ntop(AF_INET6, a->b, out, (socklen_t)size);
    return out;
}

static bool cidr_host_bits_zero(const struct ipaddr *a, unsigned bits)
{
    for (unsigned i = bits; i < 128; i++)
        if (ipaddr_bit(a, i))
            return false;
    return true;
}

static void cidr_mask(struct ipaddr *a, unsigned bits)
{
    for (unsigned i = bits; i < 128; i++)
        a->b[i >> 3] &= (uint8_t)~(1u << (7 - (i & 7)));
}

bool cidr_parse(const char *s, struct cidr *out, char *err, size_t errsize)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof addr) {
        snprintf(err, errsize, "expected an IPv4 or IPv6 address or network");
        return false;
    }
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (!ipaddr_parse(addr, &out->net)) {
        snprintf(err, errsize, "expected an IPv4 or IPv6 address, found \"%s\"", addr);
        return false;
    }
    bool v4 = strchr(addr, ':') == NULL;
    unsigned max = v4 ? 32 : 128, len = max;
    if (slash) {
        const char *p = slash + 1;
        char *end;
        if (*p < '0' || *p > '9' || strlen(p) > 3) {
            snprintf(err, errsize, "expected a prefix length 0-%u after '/', found \"%s\"", max, p);
            return false;
        }
        unsigned long l = strtoul(p, &end, 10);
        if (*end != '\0' || l > max) {
            snprintf(err, errsize, "expected a prefix length 0-%u after '/', found \"%s\"", max, p);
            return false;
        }
        len = (unsigned)l;
    }
    unsigned bits = v4 ? 96 + len : len;
    if (!cidr_host_bits_zero(&out->net, bits)) {
        struct cidr fixed = *out;
        char buf[64];
        cidr_mask(&fixed.net, bits);
        fixed.bits = (uint8_t)bits;
        snprintf(err, errsize, "host bits set in \"%s\" (the network is %s)", s,
                 cidr_format(&fixed, buf, sizeof buf));
        return false;
    }
    out->bits = (uint8_t)bits;
    return true;
}

bool cidr_contains(const struct cidr *c, const struct ipaddr *a)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.b, a->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (c->net.b[full] & m) == (a->b[full] & m);
}

bool cidr_overlaps(const struct cidr *a, const struct cidr *b)
{
    /* Two prefixes overlap iff the shorter one contains the other's net. */
    return a->bits <= b->bits ? cidr_contains(a, &b->net) : cidr_contains(b, &a->net);
}

const char *cidr_format(const struct cidr *c, char *out, size_t size)
{
    char a[INET6_ADDRSTRLEN];
    bool v4 = ipaddr_is_v4(&c->net) && c->bits >= 96;
    ipaddr_format(&c->net, a, sizeof a);
    if (v4)
        snprintf(out, size, "%s/%u", a, c->bits - 96u);
    else if (ipaddr_is_v4(&c->net))
        snprintf(out, size, "::ffff:%s/%u", a, c->bits);
    else
        snprintf(out, size, "%s/%u", a, c->bits);
    return out;
}
