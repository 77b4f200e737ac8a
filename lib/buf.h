/* buf.h: the one string-buffer type of postern.  A buf is always
 * NUL-terminated, grows as needed and cannot overflow. */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H
#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;   /* NUL-terminated; never NULL after buf_init */
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);                 /* len = 0, keeps memory */
void buf_add(struct buf *b, const void *p, size_t n);
/* Room for extra more bytes (and the NUL) at data + len; a caller that
 * writes there sets len and data[len] = 0 itself. */
void buf_reserve(struct buf *b, size_t extra);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Append " key=value", quoting value when it holds blanks, quotes, '=' or
 * control characters; control characters are escaped, so one call never
 * breaks a log line in two.  A NULL value is written as "-". */
void buf_kv(struct buf *b, const char *key, const char *value);
void buf_kvf(struct buf *b, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *buf_detach(struct buf *b);               /* caller frees; b is reset */

#endif
