/* dkim_sign.h: DKIM signing for postern-milter (libopendkim): the
 * tenants' private keys, loaded into memory from a rules snapshot and
 * swapped with it on reload, and the signers of one message (one per
 * active key of the signing domain: RSA and Ed25519 side by side).
 *
 * What is signed (RFC 6376 and 8463): the headers libopendkim signs by
 * default, with From, To, Cc, Subject, Date, Reply-To, Message-ID,
 * In-Reply-To, References, MIME-Version, Content-Type and
 * Content-Transfer-Encoding oversigned (one more name than present in h=,
 * so that a header added later breaks the signature); canonicalization and
 * algorithm from the key's rule (relaxed/relaxed and the key's type by
 * default). */
#ifndef POSTERN_MILTER_DKIM_SIGN_H
#define POSTERN_MILTER_DKIM_SIGN_H
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "diag.h"

struct rules;
struct dkim_keys;
struct dkim_signing;

/* Load the active keys of every tenant of r.  A key file that cannot be
 * read or is not a private key of the rule's algorithm refuses the whole
 * set: NULL, one diagnostic per key in errors (the rule's file:line:col,
 * the key path and why).  Inactive keys are not read. */
struct dkim_keys *dkim_keys_load(const struct rules *r, struct diags *errors);
struct dkim_keys *dkim_keys_ref(struct dkim_keys *k);
void dkim_keys_unref(struct dkim_keys *k);
/* Number of active keys held. */
size_t dkim_keys_count(const struct dkim_keys *k);

/* The signers for a message from tenant `tenant` whose From: domain is
 * `domain`: one per active key of that domain in that tenant's rules.
 * NULL with err empty when there is no such key (nothing to sign); NULL
 * with err set when libopendkim fails.  job: an id for libopendkim's
 * messages (the queue id). */
struct dkim_signing *dkim_sign_begin(struct dkim_keys *k, const char *tenant, const char *domain, const char *job,
                                     struct buf *err);
/* Feed the message as the MTA passes it: each header (value as received,
 * folding kept), the end of the headers, body chunks (CRLF line ends). */
bool dkim_sign_header(struct dkim_signing *s, const char *name, const char *value, struct buf *err);
bool dkim_sign_eoh(struct dkim_signing *s, struct buf *err);
bool dkim_sign_body(struct dkim_signing *s, const unsigned char *data, size_t len, struct buf *err);
/* Finish: cb gets each signature (the value of a DKIM-Signature header,
 * folded for a 78-column line), with its selector and algorithm
 * ("rsa-sha256", "ed25519-sha256"), in the order of the keys in the
 * rules.  False with err set when a signature cannot be made. */
typedef void (*dkim_sig_cb)(void *arg, const char *selector, const char *algorithm, const char *value);
bool dkim_sign_end(struct dkim_signing *s, dkim_sig_cb cb, void *arg, struct buf *err);
void dkim_sign_free(struct dkim_signing *s);

#endif
