/* auth_dkim.h: DKIM verification (RFC 6376, RFC 8463) of inbound mail
 * with libopendkim: up to a configured number of signatures per message
 * are verified (the first ones in header order); the others are counted
 * and ignored, so that a message with a thousand signatures costs no
 * more than one with five.
 *
 * Keys: DNS TXT records through the system resolver (glibc's, one
 * resolver state per query, given to libopendkim in place of its own:
 * see auth_dkim.c), or a key file in libopendkim's "file" query method
 * for the unit tests (lines "SELECTOR._domainkey.DOMAIN TXT-DATA").
 *
 * Threads: one struct dkimv_lib for the daemon, shared by every libmilter
 * thread; a struct dkimv is one message's, used by one thread at a time.
 *
 * Changes to the first version of this header: struct dkimv_sig has
 * partial_body (the brief: l= signatures are verified as libopendkim does,
 * and reported); timeout_s 0 means the resolver's own settings; d=, s=,
 * a= and b= are copied with characters outside their syntax replaced by
 * '?', so that they can go into a header field as they are; the
 * DKIM-Signature headers past the first max_sigs + 5 are counted, not
 * hashed (see dkimv_end). */
#ifndef POSTERN_MILTER_AUTH_DKIM_H
#define POSTERN_MILTER_AUTH_DKIM_H
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum dkimv_result {
    DKIMV_PASS,                /* signature and body hash verify */
    DKIMV_FAIL,                /* the signature or the body hash does not verify (body changed, ...) */
    DKIMV_NEUTRAL,             /* not verifiable for a reason that is not an error of the
                                  signer nor of DNS (an unknown algorithm, rsa-sha1, ...) */
    DKIMV_TEMPERROR,           /* the key could not be fetched now (DNS timeout, SERVFAIL) */
    DKIMV_PERMERROR,           /* a broken signature header, no key record (NXDOMAIN), a bad key, ... */
};

struct dkimv_sig {
    enum dkimv_result result;
    char domain[256];          /* d= ("" when the header has none) */
    char selector[64];         /* s= */
    char algorithm[32];        /* a= ("rsa-sha256", "ed25519-sha256", ...) */
    char b[16];                /* the first 8 characters of b= (RFC 6008 header.b) */
    char reason[128];          /* why it did not pass ("body hash mismatch", "no key", ...), "" when it did */
    bool partial_body;         /* the signature has l= (a body length limit): what follows that many
                                  bytes of the body is not covered, even when it passes (RFC 6376 8.2) */
};

struct dkimv_lib;
struct dkimv;

/* max_sigs: signatures verified per message (at least 1).  keyfile: NULL
 * for DNS, else a file of keys (unit tests).  timeout_s: DNS timeout of a
 * key query, all tries and name servers together (0: the resolver's own
 * settings, resolv.conf and RES_OPTIONS).  NULL with err set when
 * libopendkim refuses. */
struct dkimv_lib *dkimv_lib_new(unsigned max_sigs, const char *keyfile, unsigned timeout_s, struct buf *err);
void dkimv_lib_free(struct dkimv_lib *l);

/* One message.  job: an id for libopendkim's messages (queue id). */
struct dkimv *dkimv_begin(struct dkimv_lib *l, const char *job, struct buf *err);
/* Feed the message as the MTA passes it, with the conventions of
 * dkim_sign.h (value as received, folding kept, leading space or not;
 * body chunks with CRLF line ends).  False with err set when libopendkim
 * fails for a reason that is not the message's fault (out of memory);
 * a message libopendkim cannot parse is not an error: its signatures end
 * as permerror. */
bool dkimv_header(struct dkimv *v, const char *name, const char *value, struct buf *err);
bool dkimv_eoh(struct dkimv *v, struct buf *err);
bool dkimv_body(struct dkimv *v, const unsigned char *data, size_t len, struct buf *err);
/* Verify.  The results of the verified signatures in header order go to
 * sigs (at most max; *n_sigs = how many), *n_ignored = the signatures
 * past max_sigs that were not verified.  No signature: *n_sigs = 0
 * (dkim=none).  Once per message (a second call gives the same results).
 * The DKIM-Signature headers past the first max_sigs + 5 are only
 * counted, not hashed: a signature covering them (h=dkim-signature) then
 * fails. */
void dkimv_end(struct dkimv *v, struct dkimv_sig *sigs, size_t max, size_t *n_sigs, size_t *n_ignored);
void dkimv_free(struct dkimv *v);

/* "pass", "fail", "neutral", "temperror", "permerror" */
const char *dkimv_result_name(enum dkimv_result r);

#endif
