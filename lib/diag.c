/* diag.c: collected "file:line:column: message" diagnostics. */
#include "diag.h"

#include <stdarg.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

void diags_init(struct diags *d)
{
    d->msgs = NULL;
    d->lines = d->cols = NULL;
    d->n = d->cap = 0;
}

void diags_free(struct diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        mem_free(d->msgs[i]);
    mem_free(d->msgs);
    mem_free(d->lines);
    mem_free(d->cols);
    diags_init(d);
}

void diag_at(struct diags *d, const char *file, int line, int col, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    buf_init(&b);
    buf_puts(&b, file);
    if (line > 0)
        buf_printf(&b, ":%d", line);
    if (line > 0 && col > 0)
        buf_printf(&b, ":%d", col);
    buf_puts(&b, ": ");
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->msgs = mem_grow(d->msgs, d->cap, sizeof *d->msgs);
        d->lines = mem_grow(d->lines, d->cap, sizeof *d->lines);
        d->cols = mem_grow(d->cols, d->cap, sizeof *d->cols);
    }
    d->lines[d->n] = line;
    d->cols[d->n] = col;
    d->msgs[d->n++] = buf_detach(&b);
    buf_free(&b);
}

void diags_take(struct diags *d, struct diags *src)
{
    for (size_t i = 0; i < src->n; i++) {
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 8;
            d->msgs = mem_grow(d->msgs, d->cap, sizeof *d->msgs);
            d->lines = mem_grow(d->lines, d->cap, sizeof *d->lines);
            d->cols = mem_grow(d->cols, d->cap, sizeof *d->cols);
        }
        d->msgs[d->n] = src->msgs[i];
        d->lines[d->n] = src->lines[i];
        d->cols[d->n++] = src->cols[i];
    }
    src->n = 0;
    diags_free(src);
}

void diags_sort_from(struct diags *d, size_t from)
{
    /* Insertion sort: a file yields few messages, and it is stable. */
    for (size_t i = from + 1; i < d->n; i++) {
        char *m = d->msgs[i];
        int l = d->lines[i], c = d->cols[i];
        size_t j = i;
        while (j > from && (d->lines[j - 1] > l || (d->lines[j - 1] == l && d->cols[j - 1] > c))) {
            d->msgs[j] = d->msgs[j - 1];
            d->lines[j] = d->lines[j - 1];
            d->cols[j] = d->cols[j - 1];
            j--;
        }
        d->msgs[j] = m;
        d->lines[j] = l;
        d->cols[j] = c;
    }
}

void diags_print(const struct diags *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(out, "%s\n", d->msgs[i]);
}

void log_diags(enum log_level l, const char *event, const struct diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        struct buf kv;
        buf_init(&kv);
        buf_kv(&kv, l >= LOG_LVL_ERR ? "error" : "warning", d->msgs[i]);
        log_event(l, event, &kv);
        buf_free(&kv);
    }
}
