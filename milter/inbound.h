/* inbound.h: the checks of inbound mail in postern-milter (any message
 * that is not a tenant submission): SPF of MAIL FROM (or of HELO for the
 * null sender), DKIM verification of the first signatures, DMARC over
 * both, the one Authentication-Results header with our authserv-id, and
 * what the receiving tenants' `inbound` rules make of the results.
 *
 * Modes: each recipient whose domain is a tenant's brings that tenant's
 * inbound modes (off, header, enforce; default header); the message gets
 * the strictest mode of its recipients for each check; recipients of no
 * tenant bring "header".  The checks run unless every mode is off; every
 * Authentication-Results header that claims our authserv-id is removed in
 * any case (a forged "dmarc=pass" never survives; pipeline.c does the same
 * for tenant submissions).  DKIM verification stops past 1,000 headers or
 * 1 MiB of headers (libopendkim's cost grows with them): the signatures
 * are then permerror, not verified.
 *
 * Outcome (inbound_end), first that applies:
 *  0. More than 32 Authentication-Results headers claim our authserv-id:
 *     550 5.7.1 (they could not all be removed).
 *  1. From: without exactly one address with a valid domain: dmarc=
 *     permerror; DMARC enforced: 550 5.7.1 (milter.inbound_bad_from:
 *     reject) or accept.
 *  2. SPF enforced and MAIL FROM fails (-all): 550 5.7.1.
 *  3. DKIM enforced, signatures present and none passes: 550 5.7.1.
 *  4. DMARC enforced and it fails: p=reject 550 5.7.1, p=quarantine the
 *     Postfix hold queue (smfi_quarantine), p=none nothing.
 *  5. An enforced check that could not decide (DNS temperror): 451 4.7.0
 *     (milter.inbound_temperror: tempfail) or accept.
 *  6. Otherwise accept.  In every case but a reply the header is added.
 *
 * A message is one thread's; the configuration is shared read-only. */
#ifndef POSTERN_MILTER_INBOUND_H
#define POSTERN_MILTER_INBOUND_H
#include <stdbool.h>
#include <stddef.h>

#include "auth_dkim.h"
#include "auth_dmarc.h"
#include "auth_spf.h"
#include "authres.h"
#include "buf.h"

struct rules;

/* Daemon-wide, read-only while messages use it (main.c builds it). */
struct inbound_cfg {
    struct spf_checker *spf;
    struct dkimv_lib *dkimv;
    struct dmarc_lib *dmarc;
    const char *authserv_id;
    unsigned dkim_max;          /* = the dkimv_lib's max_sigs */
    bool temperror_accept;      /* milter.inbound_temperror: accept */
    bool bad_from_accept;       /* milter.inbound_bad_from: accept */
    /* unit tests: a DMARC record for every domain instead of DNS, found at
     * test_dmarc_domain (NULL: DNS) */
    const char *test_dmarc_record;
    const char *test_dmarc_domain;
};

enum inbound_action { INBOUND_ACCEPT, INBOUND_REJECT, INBOUND_TEMPFAIL, INBOUND_QUARANTINE };

struct inbound_outcome {
    enum inbound_action action;
    char rcode[4], xcode[8];
    char text[300];             /* the reply text (reject, tempfail) or the hold reason (quarantine) */
    char *authres;              /* the Authentication-Results value to insert on top; NULL when none (caller frees) */
    int remove[AUTHRES_FORGED_MAX]; /* Authentication-Results occurrences (1-based, descending) to delete */
    size_t n_remove;
    bool remove_overflow;       /* more than 32 forged headers: the rest could not be removed */
    char summary[600];          /* "spf=pass dkim=pass dmarc=pass" and details: the audit reason */
    const char *rule;           /* what decided: "inbound", "inbound.spf", "inbound.dkim", "inbound.dmarc" */
    const char *tenant;         /* the receiving tenant whose rule decided, or the first one; NULL: none */
};

struct inbound_msg;

/* A new inbound message: SPF is checked now (MAIL FROM needs no reply
 * from us, so the MTA goes on meanwhile).  ip: the client's address ("" for
 * a local submission: no SPF, spf=none); job: queue id for messages. */
struct inbound_msg *inbound_begin(const struct inbound_cfg *cfg, const char *ip, const char *helo,
                                  const char *sender, const char *job);
/* A recipient: the modes of its tenant in r. */
void inbound_rcpt(struct inbound_msg *im, const struct rules *r, const char *rcpt);
/* Headers as received (see dkim_sign.h), the end of the headers, body
 * chunks.  False with err set on an internal failure only. */
bool inbound_header(struct inbound_msg *im, const char *name, const char *value, struct buf *err);
bool inbound_eoh(struct inbound_msg *im, struct buf *err);
bool inbound_body(struct inbound_msg *im, const unsigned char *data, size_t len, struct buf *err);
/* DKIM, DMARC and the decision.  Once per message. */
void inbound_end(struct inbound_msg *im, struct inbound_outcome *out);
void inbound_outcome_free(struct inbound_outcome *out);
void inbound_free(struct inbound_msg *im);

#endif
