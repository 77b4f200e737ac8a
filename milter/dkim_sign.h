/* dkim_sign.h: DKIM signing for postern-milter (libopendkim): the
 * tenants' private keys, loaded into memory from a rules snapshot and
 * swapped with it on reload, and the signers of one message (one per
 * active key of the signing domain: RSA and Ed25519 side by side).
 *
 * What is signed (RFC 6376 and 8463): the headers libopendkim recommends
 * (its dkim_should_signhdrs list: From, Reply-To, Subject, Date, To, Cc,
 * Resent-*, In-Reply-To, References, List-*) and the oversigned ones:
 * From, To, Cc, Subject, Date, Reply-To, Message-ID, In-Reply-To,
 * References, MIME-Version, Content-Type and Content-Transfer-Encoding are
 * listed in h= once more than present, so that such a header added later
 * breaks the signature; canonicalization and algorithm from the key's rule
 * (relaxed/relaxed and the key file's type by default).  Keys are RSA (at
 * least 1024 bits) or Ed25519, unencrypted PEM (PKCS#1 or PKCS#8).
 *
 * Threads: a key set is immutable and may be used by any number of
 * threads at once; a signing context is one message's, used by one thread
 * at a time. */
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
 * read or is not a private key of the rule's algorithm gives one
 * diagnostic in errors (the rule's file:line:col, the key path and why)
 * and then, without keep_broken, refuses the whole set (NULL: a reload
 * keeps the keys in use); with keep_broken (the daemon's start), the set
 * keeps the broken key, and a message that would be signed with it fails
 * (dkim_sign_begin) while every other key signs.  Inactive keys are not
 * read.  The set keeps no pointer into r and holds one reference. */
struct dkim_keys *dkim_keys_load(const struct rules *r, bool keep_broken, struct diags *errors);
struct dkim_keys *dkim_keys_ref(struct dkim_keys *k);
void dkim_keys_unref(struct dkim_keys *k);
/* Number of active keys held that can sign, and of those that cannot. */
size_t dkim_keys_count(const struct dkim_keys *k);
size_t dkim_keys_broken(const struct dkim_keys *k);

/* The signers for a message from tenant `tenant` whose From: domain is
 * `domain` (both compared without case): one per active key of that domain
 * in that tenant's rules.  NULL with err empty when there is no such key
 * (nothing to sign); NULL with err set when one of them could not be
 * loaded (a set kept with its broken keys) or libopendkim fails.  job: an id
 * for libopendkim's messages (the queue id; copied).  With subdomain,
 * `domain` is a parent of the From: domain and only the keys whose rule
 * says `subdomains: true` sign.  The context holds a reference to k. */
struct dkim_signing *dkim_sign_begin(struct dkim_keys *k, const char *tenant, const char *domain, const char *job,
                                     bool subdomain, struct buf *err);
/* Feed the message as the MTA passes it: each header (value as received,
 * folding kept: without the blank after the colon, which is put back as
 * one space, or with it (SMFIP_HDR_LEADSPC); folds with LF or CRLF), the
 * end of the headers, body chunks (CRLF line ends, cut anywhere).  False
 * with err set ("dkim: s=SELECTOR d=DOMAIN: what: why") when libopendkim
 * refuses, e.g. at the end of headers without a From: header. */
bool dkim_sign_header(struct dkim_signing *s, const char *name, const char *value, struct buf *err);
bool dkim_sign_eoh(struct dkim_signing *s, struct buf *err);
bool dkim_sign_body(struct dkim_signing *s, const unsigned char *data, size_t len, struct buf *err);
/* Finish: cb gets each signature (the value of a DKIM-Signature header,
 * folded for a 78-column line with "\n" and a tab, as smfi_insheader()
 * takes it), with its selector and algorithm ("rsa-sha256",
 * "ed25519-sha256"), in the order of the keys in the rules.  All or
 * nothing: false with err set, and cb never called, when one signature
 * cannot be made.  Once per context. */
typedef void (*dkim_sig_cb)(void *arg, const char *selector, const char *algorithm, const char *value);
bool dkim_sign_end(struct dkim_signing *s, dkim_sig_cb cb, void *arg, struct buf *err);
void dkim_sign_free(struct dkim_signing *s);

#endif
