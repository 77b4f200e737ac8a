/* counters.c: the backend-independent part of quota counters: dispatch
 * to the backend, request validation, the overflow-safe limit test, the
 * text of a decision's counters and key-prefix ranges (see counters.h). */
#include "counters.h"

#include <inttypes.h>
#include <string.h>

bool counter_fits(uint64_t value, uint64_t add, uint64_t limit, uint64_t *after)
{
    *after = value;
    if (add > UINT64_MAX - value)
        return false;   /* would wrap: never fits */
    if (value + add > limit)
        return false;
    *after = value + add;
    return true;
}

bool counters_reqs_valid(const struct counter_req *reqs, size_t n, struct buf *err)
{
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].key == NULL || reqs[i].key[0] == '\0' ||
            (unsigned)reqs[i].unit >= WIN_COUNT) {
            buf_reset(err);
            buf_printf(err, "counters: request %zu has no key or a bad window unit", i);
            return false;
        }
    }
    return true;
}

int counters_check_add(struct counters *c, const struct counter_req *reqs, size_t n,
                       bool commit, struct counter_result *res, struct buf *err)
{
    if (n == 0)
        return COUNTERS_OK;
    if (!counters_reqs_valid(reqs, n, err))
        return COUNTERS_ERROR;
    return c->ops->check_add(c, reqs, n, commit, res, err);
}

bool counters_get(struct counters *c, const char *key, enum window_unit unit,
                  uint64_t *value, time_t *window_start, time_t *window_end,
                  struct buf *err)
{
    struct counter_req req = { key, unit, 0, COUNTER_NO_LIMIT };
    if (!counters_reqs_valid(&req, 1, err))
        return false;
    return c->ops->get(c, key, unit, value, window_start, window_end, err);
}

bool counters_list(struct counters *c, const char *prefix, counters_row_cb cb, void *arg,
                   struct buf *err)
{
    return c->ops->list(c, prefix != NULL ? prefix : "", cb, arg, err);
}

bool counters_reset(struct counters *c, const char *const *prefixes, size_t nprefixes, int unit,
                    counters_row_cb cb, void *arg, size_t *count, struct buf *err)
{
    size_t ignored;
    if (count == NULL)
        count = &ignored;
    *count = 0;
    if (unit != COUNTERS_CURRENT_WINDOWS && (unit < 0 || unit >= WIN_COUNT)) {
        buf_reset(err);
        buf_printf(err, "counters: reset of a bad window unit %d", unit);
        return false;
    }
    for (size_t i = 0; i < nprefixes; i++)
        if (prefixes[i] == NULL || prefixes[i][0] == '\0') {
            buf_reset(err);
            buf_printf(err, "counters: reset with an empty key prefix %zu", i);
            return false;
        }
    if (nprefixes == 0)
        return true;
    return c->ops->reset(c, prefixes, nprefixes, unit, cb, arg, count, err);
}

bool counters_prefix_end(const char *prefix, struct buf *out)
{
    size_t n = strlen(prefix);
    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    buf_reset(out);
    if (n == 0)
        return false;
    buf_add(out, prefix, n);
    out->data[n - 1] = (char)((unsigned char)out->data[n - 1] + 1);
    return true;
}

void counters_close(struct counters *c)
{
    if (c != NULL)
        c->ops->close(c);
}

size_t counters_first_exceeded(const struct counter_result *res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (res[i].exceeded)
            return i;
    return n;
}

void counters_describe(const struct counter_req *reqs, const struct counter_result *res,
                       size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (out->len > 0)
            buf_putc(out, ' ');
        buf_printf(out, "%s/%s=%" PRIu64 "+%" PRIu64, reqs[i].key,
                   window_unit_name(reqs[i].unit), res[i].value, reqs[i].add);
        if (reqs[i].limit == COUNTER_NO_LIMIT)
            buf_puts(out, "/-");
        else
            buf_printf(out, "/%" PRIu64, reqs[i].limit);
    }
}
