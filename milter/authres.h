/* authres.h: builds the one Authentication-Results header (RFC 8601)
 * postern-milter adds to inbound mail: our authserv-id, then one resinfo
 * per check (spf, each verified dkim signature, dmarc), each with its
 * result, an optional reason or comment and its properties
 * (smtp.mailfrom, smtp.helo, header.d, header.s, header.b, header.from,
 * policy.dmarc ...).  Values are quoted only when they are not an RFC 2045
 * token or an addr-spec; control bytes and non-ASCII are left out of
 * comments; the result is folded for 78-column lines ("\n\t" folds, as
 * smfi_insheader() takes them). */
#ifndef POSTERN_MILTER_AUTHRES_H
#define POSTERN_MILTER_AUTHRES_H
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct authres {
    struct buf value;          /* the header value built so far */
    size_t line_len;           /* length of the current (last) line, for folding */
    size_t n;                  /* resinfo added */
};

void authres_init(struct authres *a, const char *authserv_id);
/* Add one resinfo: method ("spf", "dkim", "dmarc"), result ("pass",
 * "fail", ...), a comment (NULL: none; shown as "(comment)") and
 * n_props pairs of ptype.property and value (props[2i], props[2i+1]);
 * a pair whose value is NULL or empty is left out. */
void authres_add(struct authres *a, const char *method, const char *result, const char *comment,
                 const char *const *props, size_t n_props);
/* The value (no "Authentication-Results:" name); "; none" when nothing
 * was added (RFC 8601 2.2).  Valid until authres_free. */
const char *authres_value(struct authres *a);
void authres_free(struct authres *a);

/* The incoming Authentication-Results headers of one message that claim
 * our authserv-id (only we write those: they are forged), by occurrence
 * among the headers of that name (from 1), for smfi_chgheader(). */
#define AUTHRES_FORGED_MAX 32
struct authres_forged {
    int seen;                  /* Authentication-Results headers seen */
    int idx[AUTHRES_FORGED_MAX];
    size_t n;
    bool overflow;             /* more than AUTHRES_FORGED_MAX: the rest are not listed */
};
/* One more Authentication-Results header with this value. */
void authres_forged_note(struct authres_forged *f, const char *value, const char *authserv_id);

#endif
