/* request.c: the request parser of postern-policyd (see request.h): finds
 * one Postfix policy delegation request ("name=value" lines ended by an
 * empty line) in the unread input of a connection, checks it against the
 * limits, and splits it into attributes.
 *
 * The format accepted, exactly:
 * - a line ends at '\n'; one '\r' right before it is stripped, so "\r\n"
 *   line ends work too, line by line (a mix is fine).  Any other '\r' is
 *   data.  The request ends at the first empty line ("\n" or "\r\n"); an
 *   empty line first is a request with no attributes (Postfix never sends
 *   one; the decision engine sees every field NULL).
 * - every other line is name=value, split at the first '=': the value may
 *   hold '=' and may be empty, the name may not be empty.
 * - a NUL byte anywhere in a request refuses it.
 * - limits: the whole request including its empty line at most max_bytes
 *   (as received, '\r' included); at most max_attrs attribute lines (and
 *   never more than POLICY_MAX_ATTRS); names of at most max_name bytes and
 *   values of at most max_value bytes, both counted without the '\r'.
 * - refusal reasons (err, reset then written, one line, never a newline
 *   nor a control character; bytes of a name are escaped as \xHH):
 *     NUL byte in request
 *     line N has no '='
 *     line N has an empty name
 *     more than N attributes
 *     attribute name longer than N bytes
 *     value of "NAME" longer than N bytes
 *     request larger than N bytes
 *   Lines are numbered from 1; the first fault in the input is the one
 *   named (so a refused input stays refused, with the same reason, however
 *   much more arrives).
 * - only complete lines are judged: an input that ends inside a line is
 *   NEED_MORE unless it already holds max_bytes bytes without an empty
 *   line, so every strict prefix of a valid request is NEED_MORE.
 * - policy_reply_format appends to out (replies to pipelined requests can
 *   share one buffer) and turns '\r' as well as '\n' into a space; a NULL
 *   action is written as an empty one.
 *
 * Cost: one walk over the lines of the request (memchr for '\n' and for
 * '=' within the name), one memchr for NUL over the whole request, one
 * memcpy of it into r->text when it is complete, then the attributes are
 * NUL-terminated in place, their pointers moved into the copy and the
 * well-known ones found by a switch on the name's length.  No allocation
 * besides the growth of r->text, which keeps its memory from one request
 * to the next.  An input that arrives in pieces is scanned again from its
 * start at each call (nothing is kept between calls): a request of L bytes
 * read k times costs O(k*L), and Postfix sends one in a single write. */
#include "request.h"

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

const struct policy_limits policy_limits_default = {
    .max_bytes = 65536,
    .max_attrs = 100,
    .max_name = 64,
    .max_value = 8192,
};

/* The field of a well-known attribute name (n bytes, not terminated), or
 * NULL: a switch on the length, then one fixed-size compare or a few. */
static const char **request_field(struct policy_request *r, const char *name, size_t n)
{
#define REQUEST_IS(f)                                \
    if (memcmp(name, #f, sizeof #f - 1) == 0)        \
        return &r->f;
    switch (n) {
    case 4:
        REQUEST_IS(size);
        break;
    case 6:
        REQUEST_IS(sender);
        break;
    case 7:
        REQUEST_IS(request);
        break;
    case 8:
        REQUEST_IS(queue_id);
        REQUEST_IS(instance);
        break;
    case 9:
        REQUEST_IS(helo_name);
        REQUEST_IS(recipient);
        break;
    case 11:
        REQUEST_IS(client_name);
        REQUEST_IS(sasl_method);
        REQUEST_IS(sasl_sender);
        REQUEST_IS(server_port);
        break;
    case 13:
        REQUEST_IS(protocol_name);
        REQUEST_IS(sasl_username);
        REQUEST_IS(ccert_subject);
        break;
    case 14:
        REQUEST_IS(protocol_state);
        REQUEST_IS(client_address);
        REQUEST_IS(server_address);
        break;
    case 15:
        REQUEST_IS(recipient_count);
        break;
    case 19:
        REQUEST_IS(encryption_protocol);
        break;
    default:
        break;
    }
    return NULL;
#undef REQUEST_IS
}

static void request_clear(struct policy_request *r)
{
    r->n_attrs = 0;
    r->request = r->protocol_state = r->protocol_name = NULL;
    r->client_address = r->client_name = r->helo_name = NULL;
    r->queue_id = r->instance = NULL;
    r->sender = r->recipient = r->recipient_count = r->size = NULL;
    r->sasl_method = r->sasl_username = r->sasl_sender = NULL;
    r->ccert_subject = r->encryption_protocol = NULL;
    r->server_address = r->server_port = NULL;
}

void policy_request_init(struct policy_request *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->text);
    request_clear(r);
}

void policy_request_free(struct policy_request *r)
{
    buf_free(&r->text);
    request_clear(r);
}

const char *policy_request_get(const struct policy_request *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = r->n_attrs; i-- > 0;)
        if (strcmp(r->attrs[i].name, name) == 0)
            return r->attrs[i].value;
    return NULL;
}

/* Append n bytes of a name for the error text: printable ASCII as is
 * (but '"' and '\\'), anything else as \xHH. */
static void request_quote(struct buf *err, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf_putc(err, (char)c);
        } else {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_add(err, esc, sizeof esc);
        }
    }
}

static enum policy_parse request_bad(struct policy_request *r, struct buf *err, const char *data,
                                    const char *upto, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Refuse the input for a fault found before upto: no attributes in r, the
 * reason in err.  A NUL byte comes first: rather than look for one in each
 * line, the parser looks once, here or when the request is complete. */
static enum policy_parse request_bad(struct policy_request *r, struct buf *err, const char *data,
                                    const char *upto, const char *fmt, ...)
{
    r->n_attrs = 0;
    if (err != NULL) {
        buf_reset(err);
        if (upto > data && memchr(data, '\0', (size_t)(upto - data)) != NULL) {
            buf_puts(err, "NUL byte in request");
        } else {
            va_list ap;
            va_start(ap, fmt);
            buf_vprintf(err, fmt, ap);
            va_end(ap);
        }
    }
    return POLICY_BAD;
}

enum policy_parse policy_parse(const char *data, size_t len, const struct policy_limits *lim,
                               struct policy_request *r, size_t *used, struct buf *err)
{
    if (lim == NULL)
        lim = &policy_limits_default;
    size_t max_attrs = lim->max_attrs < POLICY_MAX_ATTRS ? lim->max_attrs : POLICY_MAX_ATTRS;
    size_t limit = len < lim->max_bytes ? len : lim->max_bytes;
    size_t vend[POLICY_MAX_ATTRS]; /* where value i ends, as an offset in data */
    size_t n = 0, lineno = 0;
    const char *p = data, *nl;

    r->n_attrs = 0;
    if (len == 0)
        return lim->max_bytes == 0 ? request_bad(r, err, data, data, "request larger than 0 bytes")
                                   : POLICY_NEED_MORE;
    for (;; p = nl + 1) {
        nl = memchr(p, '\n', limit - (size_t)(p - data));
        if (nl == NULL) {
            /* the complete lines so far are final: a NUL in them refuses */
            if (p > data && memchr(data, '\0', (size_t)(p - data)) != NULL)
                return request_bad(r, err, data, data, "NUL byte in request");
            if (len >= lim->max_bytes)
                return request_bad(r, err, data, data, "request larger than %zu bytes", lim->max_bytes);
            return POLICY_NEED_MORE;
        }
        lineno++;
        const char *le = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
        if (le == p)
            break; /* the empty line */
        if (n >= max_attrs)
            return request_bad(r, err, data, nl, "more than %zu attributes", max_attrs);
        const char *eq = memchr(p, '=', (size_t)(le - p));
        if (eq == NULL)
            return request_bad(r, err, data, nl, "line %zu has no '='", lineno);
        if (eq == p)
            return request_bad(r, err, data, nl, "line %zu has an empty name", lineno);
        if ((size_t)(eq - p) > lim->max_name)
            return request_bad(r, err, data, nl, "attribute name longer than %zu bytes", lim->max_name);
        if ((size_t)(le - eq - 1) > lim->max_value) {
            if (memchr(data, '\0', (size_t)(nl - data)) != NULL)
                return request_bad(r, err, data, data, "NUL byte in request");
            request_bad(r, err, data, data, "value of \"");
            if (err != NULL) {
                request_quote(err, p, (size_t)(eq - p));
                buf_printf(err, "\" longer than %zu bytes", lim->max_value);
            }
            return POLICY_BAD;
        }
        r->attrs[n].name = p;
        r->attrs[n].value = eq + 1;
        vend[n] = (size_t)(le - data);
        n++;
    }

    size_t size = (size_t)(nl - data) + 1;
    if (memchr(data, '\0', size) != NULL)
        return request_bad(r, err, data, data, "NUL byte in request");

    /* Complete: one copy, terminated in place, pointers moved into it. */
    buf_reset(&r->text);
    buf_add(&r->text, data, size);
    char *t = r->text.data;
    request_clear(r);
    for (size_t i = 0; i < n; i++) {
        size_t name_off = (size_t)(r->attrs[i].name - data);
        size_t value_off = (size_t)(r->attrs[i].value - data);
        t[value_off - 1] = '\0';
        t[vend[i]] = '\0';
        r->attrs[i].name = t + name_off;
        r->attrs[i].value = t + value_off;
        const char **field = request_field(r, t + name_off, value_off - 1 - name_off);
        if (field != NULL)
            *field = t + value_off;
    }
    r->n_attrs = n;
    if (used != NULL)
        *used = size;
    return POLICY_REQUEST;
}

void policy_reply_format(struct buf *out, const char *action)
{
    buf_puts(out, "action=");
    if (action != NULL) {
        for (;;) {
            size_t k = strcspn(action, "\r\n");
            buf_add(out, action, k);
            if (action[k] == '\0')
                break;
            buf_putc(out, ' ');
            action += k + 1;
        }
    }
    buf_add(out, "\n\n", 2);
}
