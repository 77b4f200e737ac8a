/* cidr.h: IPv4 and IPv6 addresses and networks.  Every address is held as
 * 16 bytes; IPv4 is mapped into ::ffff:0:0/96, so "192.0.2.1" and
 * "::ffff:192.0.2.1" are the same client and one matcher serves both. */
#ifndef POSTERN_CIDR_H
#define POSTERN_CIDR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ipaddr {
    uint8_t b[16];
};

struct cidr {
    struct ipaddr net;   /* host bits are zero */
    uint8_t bits;        /* prefix length over 128 bits (IPv4: 96 + n) */
};

/* Parse an IPv4 or IPv6 address (no brackets, no zone). */
bool ipaddr_parse(const char *s, struct ipaddr *out);
bool ipaddr_is_v4(const struct ipaddr *a);
/* Printable form: dotted quad for IPv4-mapped; out needs 46 bytes. */
const char *ipaddr_format(const struct ipaddr *a, char *out, size_t size);

/* Parse "addr/len" or a bare address (a host network).  Host bits set after
 * the prefix are an error.  On error writes an explanation to err. */
bool cidr_parse(const char *s, struct cidr *out, char *err, size_t errsize);
bool cidr_contains(const struct cidr *c, const struct ipaddr *a);
bool cidr_overlaps(const struct cidr *a, const struct cidr *b);
/* "192.0.2.0/24", "2001:db8::/48"; out needs 50 bytes. */
const char *cidr_format(const struct cidr *c, char *out, size_t size);
/* Bit i (0 = most significant) of an address, for prefix tries. */
static inline int ipaddr_bit(const struct ipaddr *a, unsigned i)
{
    return (a->b[i >> 3] >> (7 - (i & 7))) & 1;
}

#endif
