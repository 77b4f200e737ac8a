/* selfcheck.h: the outbound self-check of postern-milter.  When a
 * tenant's own message would fail at its receivers (its SPF record does
 * not list the outbound IP its mail leaves from, or DMARC alignment fails
 * for its From: domain with our signature), the operator gets an audit
 * warning, once per tenant and hour, before receivers complain.
 *
 * The checks use the inbound checkers (inbound.h): SPF of the envelope
 * sender's domain for each outbound IP of the tenant (its rules'
 * `outbound: {ips: ...}`; without IPs there is nothing to check for SPF),
 * and DMARC of the From: domain with that SPF result and our signature's
 * domain.  A DNS temporary failure gives no warning (nothing is known). */
#ifndef POSTERN_MILTER_SELFCHECK_H
#define POSTERN_MILTER_SELFCHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "inbound.h"

struct selfcheck;
struct tenant;

struct selfcheck *selfcheck_new(void);
void selfcheck_free(struct selfcheck *s);
/* True once per tenant and UTC hour (now_s: seconds since the epoch); the
 * first caller of the hour gets true (thread-safe). */
bool selfcheck_due(struct selfcheck *s, const char *tenant, int64_t now_s);
/* Check tenant t's message (envelope sender, From: domain, the d= of our
 * signature or NULL when unsigned); what would fail goes to warnings as
 * "spf: ...; dmarc: ..." (empty when all is well). */
void selfcheck_run(const struct inbound_cfg *cfg, const struct tenant *t, const char *sender,
                   const char *from_domain, const char *sign_domain, struct buf *warnings);

#endif
