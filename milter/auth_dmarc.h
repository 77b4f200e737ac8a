/* auth_dmarc.h: DMARC (RFC 7489) with libopendmarc: the policy record of
 * the From: domain (or of its organizational domain, from the public
 * suffix list Debian ships in the publicsuffix package), identifier
 * alignment of the SPF and DKIM results (relaxed or strict, adkim= and
 * aspf=), and the policy that applies (p=, or sp= for a subdomain; pct=).
 *
 * The caller has done SPF and DKIM (auth_spf.h, auth_dkim.h) and parsed
 * From: (mailhdr.h): a message without exactly one From: domain never
 * reaches libopendmarc (the caller records dmarc=permerror), which is
 * where OpenDMARC's crashes and bypasses came from (CVE-2021-34555,
 * CVE-2019-16378).
 *
 * Threads: libopendmarc's library state (the public suffix list) is
 * process-wide: dmarc_lib_new initialises it for the first live struct
 * dmarc_lib and reference-counts further ones made with the same list
 * (so a configuration reload may make the new one before freeing the
 * old), and dmarc_lib_free of the last one shuts it down.  Each
 * evaluation has its own policy context, so any number of threads may
 * evaluate at once.  auth_dmarc.c says what libopendmarc 1.4.2 does and
 * where this module works around it (alignment, pct=, DNS).
 *
 * API changes by the implementer: struct dmarc_input gained spf_helo (the
 * origin of the SPF identity, which libopendmarc records; false, the
 * zero value, keeps the MAIL FROM meaning). */
#ifndef POSTERN_MILTER_AUTH_DMARC_H
#define POSTERN_MILTER_AUTH_DMARC_H
#include <stdbool.h>
#include <stddef.h>

#include "auth_dkim.h"
#include "auth_spf.h"
#include "buf.h"

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
enum dmarc_policy { DMARC_P_UNSET, DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

struct dmarc_input {
    const char *ip;            /* the client's address (text) */
    const char *from_domain;   /* the one From: domain, lowercase */
    /* SPF of the MAIL FROM identity (or of HELO for the null sender, RFC
     * 7489 4.1) and the domain it was for */
    enum spf_result spf;
    const char *spf_domain;
    bool spf_helo;             /* spf_domain is the HELO name (null sender) */
    const struct dkimv_sig *dkim; /* the verified signatures */
    size_t n_dkim;
    /* unit tests: the DMARC record text to use instead of a DNS query of
     * _dmarc.FROM (and of the organizational domain), and the domain it
     * was found at (NULL: the From: domain); NULL for DNS.  A
     * record_domain that is neither the From: domain nor above it is no
     * record for this From: (none), as DNS would have it */
    const char *record;
    const char *record_domain;
};

struct dmarc_verdict {
    enum dmarc_result result;
    /* the policy that applies to this message: p= or sp=, and for a
     * failing message pct= applied as RFC 7489 6.6.4 says (a message
     * outside the sample gets the next lower policy: reject becomes
     * quarantine, quarantine becomes none); UNSET unless pass or fail */
    enum dmarc_policy policy;
    enum dmarc_policy p, sp;   /* the record's p= and sp= (sp= defaults to p=); UNSET unless pass or fail */
    bool subdomain_policy;     /* sp= applied: the From: domain is below the record's domain */
    bool spf_aligned, dkim_aligned;
    char policy_domain[256];   /* where the record was found ("" when none) */
    char org_domain[256];      /* the organizational domain of the From: domain */
    /* why none, temperror or permerror: "no DMARC record", "temporary DNS
     * failure looking up _dmarc.DOMAIN", "bad DMARC record: ...", ... */
    char reason[160];
};

struct dmarc_lib;

/* psl: the public suffix list file (/usr/share/publicsuffix/
 * public_suffix_list.dat).  NULL with err set when it cannot be read,
 * does not look like a public suffix list, libopendmarc refuses it, or
 * another live dmarc_lib uses a different file. */
struct dmarc_lib *dmarc_lib_new(const char *psl, struct buf *err);
void dmarc_lib_free(struct dmarc_lib *l);

/* Evaluate one message.  Never fails: what goes wrong is in v->result
 * (temperror, permerror) and v->reason. */
void dmarc_evaluate(struct dmarc_lib *l, const struct dmarc_input *in, struct dmarc_verdict *v);
/* The organizational domain of domain into out, lowercase (the domain
 * itself when the list does not know it, e.g. a name under a TLD that is
 * not in the list, or a single label).  False when domain is not a valid
 * name (letters, digits, hyphens and dots; labels of 1 to 63 bytes, 253
 * at most in all, no trailing dot) or out is too small. */
bool dmarc_org_domain(struct dmarc_lib *l, const char *domain, char *out, size_t outsz);

const char *dmarc_result_name(enum dmarc_result r); /* "none", "pass", "fail", "temperror", "permerror" */
const char *dmarc_policy_name(enum dmarc_policy p); /* "", "none", "quarantine", "reject" */

#endif
