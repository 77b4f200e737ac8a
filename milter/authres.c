/* authres.c: the Authentication-Results builder of authres.h (RFC 8601).
 *
 * The value is built piece by piece, each piece placed whole on the
 * current line or, when it would pass the column limit, after a "\n\t"
 * fold: a resinfo ("method=result", its ';' kept at the end of the line
 * before), each word of its comment, each "ptype.property=value".  Lines
 * are kept to 77 columns so that a ';' added after them still fits in 78;
 * the first line counts the "Authentication-Results: " before it.  A piece
 * longer than a line stays whole on a line of its own: tokens are never
 * split.
 *
 * Nothing of what is given reaches the header unchecked: method, result
 * and property names are cut down to RFC 2045 token characters; a value
 * that is not a token (or, for a property, a local@domain of token
 * characters) is quoted, with '\' and '"' escaped and the bytes that have
 * no place in a header (below 0x20, 0x7f, 0x80 and above) left out; a
 * comment loses those bytes too and has '(', ')' and '\' escaped.
 *
 * With no resinfo the value ends in "; none"; authres_add removes it. */
#include "authres.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "mailhdr.h"

#define AR_NAME_LEN 24   /* strlen("Authentication-Results: ") */
#define AR_FILL 77       /* columns a line is filled to: its ';' may follow */

static bool ar_is_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Bytes that are left out of comments and quoted values. */
static bool ar_is_dropped(unsigned char c)
{
    return c < 0x20 || c >= 0x7f;
}

static bool ar_is_token_n(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ar_is_token_char((unsigned char)s[i]))
            return false;
    return n > 0;
}

/* RFC 8601 pvalue's [ [ local-part ] "@" ] domain-name, both parts made of
 * token characters: bare. */
static bool ar_is_addr(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL)
        return false;
    return (at == s || ar_is_token_n(s, (size_t)(at - s))) && ar_is_token_n(at + 1, strlen(at + 1));
}

/* A value: bare when it can be, else a quoted-string. */
static void ar_put_value(struct buf *b, const char *v, bool addr_ok)
{
    if (ar_is_token_n(v, strlen(v)) || (addr_ok && ar_is_addr(v))) {
        buf_puts(b, v);
        return;
    }
    buf_putc(b, '"');
    for (const char *p = v; *p != '\0'; p++) {
        if (ar_is_dropped((unsigned char)*p))
            continue;
        if (*p == '"' || *p == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *p);
    }
    buf_putc(b, '"');
}

/* A method, result or property name: its token characters only. */
static void ar_put_name(struct buf *b, const char *s)
{
    size_t before = b->len;
    for (const char *p = s != NULL ? s : ""; *p != '\0'; p++)
        if (ar_is_token_char((unsigned char)*p))
            buf_putc(b, *p);
    if (b->len == before)
        buf_puts(b, "unknown");
}

/* Length of the last line of the value, in columns. */
static size_t ar_last_line(const struct authres *a)
{
    const char *nl = memrchr(a->value.data, '\n', a->value.len);
    if (nl == NULL)
        return AR_NAME_LEN + a->value.len;
    return a->value.len - (size_t)(nl + 1 - a->value.data);
}

/* Place one piece after lead ("" or ";"): on this line after a space, or
 * on a new one when it would pass AR_FILL. */
static void ar_place(struct authres *a, const char *lead, const char *piece, size_t len)
{
    size_t need = a->line_len + strlen(lead) + 1 + len;
    buf_puts(&a->value, lead);
    if (need > AR_FILL) {
        buf_puts(&a->value, "\n\t");
        a->line_len = 1 + len;
    } else {
        buf_putc(&a->value, ' ');
        a->line_len = need;
    }
    buf_add(&a->value, piece, len);
}

/* "(comment)", word by word (a fold replaces a space); nothing when the
 * comment has no word. */
static void ar_comment(struct authres *a, const char *comment, struct buf *tmp)
{
    buf_reset(tmp);
    buf_putc(tmp, '(');
    for (const char *p = comment; *p != '\0'; p++) {
        if (ar_is_dropped((unsigned char)*p))
            continue;
        if (*p == ' ' && (tmp->len == 1 || tmp->data[tmp->len - 1] == ' '))
            continue; /* no leading space, one space between words */
        if (*p == '(' || *p == ')' || *p == '\\')
            buf_putc(tmp, '\\');
        buf_putc(tmp, *p);
    }
    if (tmp->data[tmp->len - 1] == ' ')
        tmp->data[--tmp->len] = '\0';
    if (tmp->len == 1)
        return;
    buf_putc(tmp, ')');
    for (char *w = tmp->data; w != NULL;) {
        char *sp = strchr(w, ' ');
        size_t n = sp != NULL ? (size_t)(sp - w) : strlen(w);
        ar_place(a, "", w, n);
        w = sp != NULL ? sp + 1 : NULL;
    }
}

void authres_init(struct authres *a, const char *authserv_id)
{
    buf_init(&a->value);
    ar_put_value(&a->value, authserv_id != NULL ? authserv_id : "", false);
    a->line_len = AR_NAME_LEN + a->value.len;
    a->n = 0;
    ar_place(a, ";", "none", 4);
}

/* Take the "; none" of an empty value back. */
static void ar_drop_none(struct authres *a)
{
    size_t cut = a->value.len;
    const char *v = a->value.data;
    if (cut >= 6 && memcmp(v + cut - 6, "; none", 6) == 0)
        cut -= 6;
    else if (cut >= 7 && memcmp(v + cut - 7, ";\n\tnone", 7) == 0)
        cut -= 7;
    a->value.len = cut;
    a->value.data[cut] = '\0';
    a->line_len = ar_last_line(a);
}

void authres_add(struct authres *a, const char *method, const char *result, const char *comment,
                 const char *const *props, size_t n_props)
{
    if (a->n == 0)
        ar_drop_none(a);
    a->n++;
    struct buf tmp;
    buf_init(&tmp);
    ar_put_name(&tmp, method);
    buf_putc(&tmp, '=');
    ar_put_name(&tmp, result);
    ar_place(a, ";", tmp.data, tmp.len);
    if (comment != NULL)
        ar_comment(a, comment, &tmp);
    for (size_t i = 0; props != NULL && i < n_props; i++) {
        const char *name = props[2 * i], *value = props[2 * i + 1];
        if (name == NULL || value == NULL || *value == '\0')
            continue;
        buf_reset(&tmp);
        ar_put_name(&tmp, name);
        buf_putc(&tmp, '=');
        ar_put_value(&tmp, value, true);
        ar_place(a, "", tmp.data, tmp.len);
    }
    buf_free(&tmp);
}

const char *authres_value(struct authres *a)
{
    return a->value.data;
}

void authres_free(struct authres *a)
{
    buf_free(&a->value);
}

void authres_forged_note(struct authres_forged *f, const char *value, const char *authserv_id)
{
    char id[256];
    f->seen++;
    if (!mailhdr_authres_id(value, strlen(value), id, sizeof id) || strcasecmp(id, authserv_id) != 0)
        return;
    if (f->n < AUTHRES_FORGED_MAX)
        f->idx[f->n++] = f->seen;
    else
        f->overflow = true;
}
