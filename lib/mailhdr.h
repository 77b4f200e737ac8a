/* mailhdr.h: parsers for the header fields postern-milter reads in mail
 * it did not write, where a forged or broken header must never crash the
 * daemon nor fool it: the From: field (RFC 5322 mailbox-list, with
 * comments, quoted strings, groups and the obsolete forms a parser meets
 * in the wild) and the authserv-id of an Authentication-Results field
 * (RFC 8601).  Pure functions over (pointer, length): any bytes, NULs and
 * invalid UTF-8 included, give a defined answer in time linear in the
 * input.  Fuzzed by tests/fuzz/fuzz_mailhdr.c. */
#ifndef POSTERN_LIB_MAILHDR_H
#define POSTERN_LIB_MAILHDR_H
#include <stdbool.h>
#include <stddef.h>

#define MAILHDR_DOMAIN_MAX 253

enum mailhdr_from_status {
    MAILHDR_FROM_OK,           /* exactly one mailbox, with a valid domain */
    MAILHDR_FROM_NONE,         /* no mailbox at all (empty, only a comment, an empty group) */
    MAILHDR_FROM_MULTIPLE,     /* more than one mailbox (groups included) */
    MAILHDR_FROM_NO_DOMAIN,    /* one mailbox without "@domain" */
    MAILHDR_FROM_BAD_DOMAIN,   /* one mailbox whose domain is not a valid host name (a domain
                                  literal, an empty label, a label over 63 bytes, a byte that is
                                  not a letter, digit or hyphen, ...) */
    MAILHDR_FROM_UNPARSABLE,   /* unbalanced quotes, comments or angle brackets, NUL bytes, ... */
};

struct mailhdr_from {
    enum mailhdr_from_status status;
    size_t n_mailboxes;        /* mailboxes counted (at least 2 for MULTIPLE) */
    char domain[MAILHDR_DOMAIN_MAX + 1]; /* OK: the domain, lowercased, without a trailing dot; else "" */
};

/* Parse the value of one From: field (as received: folding kept, CRLF or
 * LF).  Always fills *out; returns out->status == MAILHDR_FROM_OK. */
bool mailhdr_from_parse(const char *value, size_t len, struct mailhdr_from *out);
const char *mailhdr_from_status_name(enum mailhdr_from_status s); /* "ok", "none", "multiple", ... */

/* The authserv-id of an Authentication-Results value (leading CFWS
 * skipped; a token or a quoted-string, unquoted; the optional version
 * after it ignored) into out (NUL-terminated, lowercased).  False when
 * there is none or it does not fit in outsz. */
bool mailhdr_authres_id(const char *value, size_t len, char *out, size_t outsz);

#endif
