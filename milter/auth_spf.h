/* auth_spf.h: SPF checks (RFC 7208) of inbound mail with libspf2: the
 * MAIL FROM identity and the HELO identity of the connecting IP, each to
 * one of the seven results, with the explanation libspf2 gives.
 *
 * DNS: libspf2's resolver layer (the system resolver, res_ninit() per
 * thread: /etc/resolv.conf, with the RES_OPTIONS environment variable
 * that postern-milter sets from milter.dns_timeout; each thread reads
 * both once, at its first lookup), or, for the unit tests, an in-memory
 * zone (spf_zone_add).  The RFC 7208 4.6.4 limits, 10 DNS-querying terms
 * and 2 void lookups for the whole check (includes counted), past which
 * the result is permerror, are enforced by auth_spf.c: libspf2 1.2.10
 * counts each record apart and has no void limit.  A loopback client is
 * checked like any other (libspf2's own entry point passes it).  With no
 * DNS answer at all a check takes one resolver timeout per identity
 * (attempts x timeout with one nameserver), then gives temperror.
 *
 * Threads: one struct spf_checker for the daemon, shared by every
 * libmilter thread (a check only reads it; libspf2 keeps resolver state
 * per thread). */
#ifndef POSTERN_MILTER_AUTH_SPF_H
#define POSTERN_MILTER_AUTH_SPF_H
#include <stdbool.h>

#include "buf.h"

enum spf_result {
    SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_TEMPERROR, SPF_PERMERROR,
};

struct spf_verdict {
    enum spf_result result;
    char domain[256];          /* the domain checked: of MAIL FROM, or the HELO name (lower case, no
                                * final dot); "" when none */
    char reason[256];          /* libspf2's comment on the result (never the domain's exp= text) or
                                * why it could not decide, printable ASCII; "" when none */
};

struct spf_checker;

/* A checker over the system resolver (zone false) or over an empty
 * in-memory zone filled by spf_zone_add (zone true, unit tests).  NULL
 * with err set when libspf2 cannot start. */
struct spf_checker *spf_checker_new(bool zone, struct buf *err);
void spf_checker_free(struct spf_checker *c);
/* In-memory zone only: a record of type "TXT", "A", "AAAA" or "MX" (MX
 * data "PREF NAME" or just "NAME"); data NULL makes the name answer
 * NXDOMAIN ("host not found"), "TEMPFAIL" as type makes any query of the
 * name a temporary DNS failure (either only for the types the name has
 * no record of added before; one of them per name).  A name never added
 * answers NXDOMAIN.  False when the checker is not a zone or the record
 * cannot be added.  Fill the zone before sharing the checker. */
bool spf_zone_add(struct spf_checker *c, const char *name, const char *type, const char *data);

/* check_host() for the MAIL FROM identity (sender without <>; the null
 * sender "" checks postmaster@HELO as RFC 7208 2.4 says) into *mailfrom
 * and for the HELO identity into *helo (result none when the HELO name is
 * not a domain name, e.g. an address literal).  ip: the client's IPv4 or
 * IPv6 address in text form; an address that does not parse gives
 * permerror for both.  Never fails otherwise. */
void spf_check(struct spf_checker *c, const char *ip, const char *helo, const char *sender,
               struct spf_verdict *mailfrom, struct spf_verdict *helo_v);
/* The same for the MAIL FROM identity only (outbound self-check: would
 * our own IP pass the tenant's record?). */
void spf_check_mailfrom(struct spf_checker *c, const char *ip, const char *helo, const char *sender,
                        struct spf_verdict *out);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" */
const char *spf_result_name(enum spf_result r);

#endif
