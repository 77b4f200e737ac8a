/* diag.h: a list of user-facing diagnostics "file:line:column: message",
 * collected while loading configuration and rules so that an operator sees
 * every error of a file at once, not one per run. */
#ifndef POSTERN_DIAG_H
#define POSTERN_DIAG_H
#include <stddef.h>
#include <stdio.h>

#include "log.h"

struct diags {
    char **msgs;
    int *lines, *cols;         /* position of each message, for sorting */
    size_t n, cap;
};

void diags_init(struct diags *d);
void diags_free(struct diags *d);
/* line/col are 1-based; line 0 omits the position, col 0 omits the column. */
void diag_at(struct diags *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Move every message of src to the end of d; src is left empty. */
void diags_take(struct diags *d, struct diags *src);
/* Order messages [from, n) by line then column (stable). */
void diags_sort_from(struct diags *d, size_t from);
void diags_print(const struct diags *d, FILE *out);
/* One log line per diagnostic: event, and the message as error=... (level
 * error and above) or warning=... (daemons' reload and rules warnings). */
void log_diags(enum log_level l, const char *event, const struct diags *d);

#endif
