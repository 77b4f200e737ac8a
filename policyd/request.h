/* request.h: the Postfix policy delegation protocol, request side: one
 * request is "name=value" lines ended by an empty line (policy(8), the
 * SMTPD_POLICY_README).  policy_parse() takes bytes as they arrived and
 * either finds one complete request, asks for more, or refuses the input
 * (too large, too many attributes, a line without '=', a NUL byte, a name or
 * value over its limit), so that the daemon can close that one connection
 * with a log line.  Pure: no I/O, no allocation outside the request. */
#ifndef POSTERN_POLICY_REQUEST_H
#define POSTERN_POLICY_REQUEST_H
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct policy_limits {
    size_t max_bytes;          /* whole request, including the empty line */
    size_t max_attrs;          /* attribute lines */
    size_t max_name;           /* bytes in a name */
    size_t max_value;          /* bytes in a value */
};
/* 64 KiB, 100 attributes, names of 64 bytes, values of 8 KiB. */
extern const struct policy_limits policy_limits_default;

struct policy_attr {
    const char *name;          /* NUL-terminated, inside the request's copy */
    const char *value;
};

#define POLICY_MAX_ATTRS 256   /* hard ceiling of max_attrs */

/* One parsed request.  The well-known attributes are also reachable by
 * field (NULL when absent); the last occurrence of a repeated name wins.
 * All strings point into text, the request's own copy. */
struct policy_request {
    struct buf text;
    struct policy_attr attrs[POLICY_MAX_ATTRS];
    size_t n_attrs;
    const char *request;         /* "smtpd_access_policy" */
    const char *protocol_state;  /* CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN */
    const char *protocol_name;   /* SMTP, ESMTP */
    const char *client_address;
    const char *client_name;
    const char *helo_name;
    const char *queue_id;
    const char *instance;
    const char *sender;
    const char *recipient;
    const char *recipient_count;
    const char *size;
    const char *sasl_method;
    const char *sasl_username;
    const char *sasl_sender;
    const char *ccert_subject;
    const char *encryption_protocol;
    const char *server_address;
    const char *server_port;
};

void policy_request_init(struct policy_request *r);
void policy_request_free(struct policy_request *r);
/* Value of an attribute by name, or NULL. */
const char *policy_request_get(const struct policy_request *r, const char *name);

enum policy_parse {
    POLICY_NEED_MORE,          /* no complete request yet: read more */
    POLICY_REQUEST,            /* *used bytes form one request, now in r */
    POLICY_BAD,                /* refuse the connection; err says why */
};

/* Look at data[0..len) (the unread input of a connection).  On
 * POLICY_REQUEST, r (initialised) holds the request and *used is the
 * number of bytes it took, to drain from the input.  POLICY_NEED_MORE when
 * no empty line is there yet and len is within limits.  POLICY_BAD with a
 * one-line reason in err (and *used undefined). */
enum policy_parse policy_parse(const char *data, size_t len, const struct policy_limits *lim,
                               struct policy_request *r, size_t *used, struct buf *err);

/* Write "action=TEXT\n\n" to out (TEXT may not hold a newline: any is
 * replaced by a space). */
void policy_reply_format(struct buf *out, const char *action);

#endif
