/* buf.c: growable NUL-terminated string buffer (see buf.h). */
#include "buf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

void buf_init(struct buf *b)
{
    b->cap = 64;
    b->len = 0;
    b->data = mem_alloc(b->cap);
}

void buf_free(struct buf *b)
{
    mem_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

void buf_reserve(struct buf *b, size_t extra)
{
    if (extra < b->cap - b->len)
        return;
    size_t want = b->len + extra + 1;
    if (want < b->len) /* overflow */
        want = (size_t)-1;
    size_t cap = b->cap;
    while (cap < want)
        cap = cap > ((size_t)-1) / 2 ? want : cap * 2;
    b->data = mem_realloc(b->data, cap);
    b->cap = cap;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, aq);
    va_end(aq);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    }
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_kv(struct buf *b, const char *key, const char *value)
{
    if (b->len > 0)
        buf_putc(b, ' ');
    buf_puts(b, key);
    buf_putc(b, '=');
    if (value == NULL) {
        buf_putc(b, '-');
        return;
    }
    bool quote = value[0] == '\0';
    for (const char *p = value; *p && !quote; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
            quote = true;
    if (!quote) {
        buf_puts(b, value);
        return;
    }
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)*p);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_printf(b, "\\x%02x", *p);
        } else {
            buf_putc(b, (char)*p);
        }
    }
    buf_putc(b, '"');
}

void buf_kvf(struct buf *b, const char *key, const char *fmt, ...)
{
    struct buf v;
    va_list ap;
    buf_init(&v);
    va_start(ap, fmt);
    buf_vprintf(&v, fmt, ap);
    va_end(ap);
    buf_kv(b, key, v.data);
    buf_free(&v);
}

char *buf_detach(struct buf *b)
{
    char *d = b->data;
    buf_init(b);
    return d;
}
