/* counters_sqlite.c: the SQLite backend of quota counters (counters.h):
 * one row per (key, unit, window start) in the store's counters table;
 * check-and-add runs in one BEGIN IMMEDIATE transaction, so the check and
 * the adds of concurrent handles and processes are serialized; listing
 * and resetting by key prefix are range scans of the primary key. */
#include "counters.h"

#include <sqlite3.h>
#include <string.h>

#include "alloc.h"
#include "store.h"

/* Rows of windows that ended this long ago are deleted ... */
#define CS_GC_KEEP_S 86400
/* ... at most this often per handle, inside a committing check_add. */
#define CS_GC_EVERY_S 3600

static const char cs_select_sql[] =
    "SELECT value FROM counters WHERE key = ?1 AND unit = ?2 AND window_start = ?3";
static const char cs_upsert_sql[] =
    "INSERT INTO counters (key, unit, window_start, window_end, value) "
    "VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (key, unit, window_start) "
    "DO UPDATE SET value = excluded.value, window_end = excluded.window_end";
static const char cs_gc_sql[] = "DELETE FROM counters WHERE window_end < ?1";
/* Listing and resetting by key prefix: a range scan of the primary key,
 * key >= prefix AND key < the prefix's end (counters_prefix_end()).  When
 * a prefix has no end, ?2 is bound to an empty BLOB, which is greater
 * than every TEXT value in SQLite's ordering.  ?4 NULL: every window of
 * the unit. */
#define CS_RANGE                                                                   \
    " FROM counters WHERE key >= ?1 AND key < ?2 AND unit = ?3"                 \
    " AND (?4 IS NULL OR window_start = ?4)"
static const char cs_range_select_sql[] =
    "SELECT key, window_start, window_end, value" CS_RANGE " ORDER BY key, window_start";
static const char cs_range_delete_sql[] = "DELETE" CS_RANGE;

struct counters_sqlite {
    struct counters base;
    struct store *store;
    struct clock clock;
    time_t next_gc;     /* seconds; 0: at the first committing call */
};

/* uint64 values are kept in SQLite's int64 as the same bit pattern. */
static int64_t cs_to_db(uint64_t v)
{
    return (int64_t)v;
}

static uint64_t cs_from_db(int64_t v)
{
    return (uint64_t)v;
}

static time_t cs_now(struct counters_sqlite *cs)
{
    int64_t us = clock_now_us(&cs->clock);
    int64_t s = us / 1000000;
    if (us % 1000000 < 0)
        s--;   /* floor, should a clock ever give times before 1970 */
    return (time_t)s;
}

static bool cs_read(struct counters_sqlite *cs, const char *key, enum window_unit unit,
                    time_t start, uint64_t *value, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(cs->store, cs_select_sql, err);
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, window_unit_name(unit), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)start);
    enum store_step r = store_step(cs->store, st, "reading a counter", err);
    *value = r == STORE_ROW ? cs_from_db(sqlite3_column_int64(st, 0)) : 0;
    sqlite3_clear_bindings(st);
    store_stmt_done(st);
    return r != STORE_FAIL;
}

static bool cs_write(struct counters_sqlite *cs, const struct counter_req *req,
                     const struct counter_result *res, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(cs->store, cs_upsert_sql, err);
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, req->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, window_unit_name(req->unit), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)res->window_start);
    sqlite3_bind_int64(st, 4, (int64_t)res->window_end);
    sqlite3_bind_int64(st, 5, cs_to_db(res->after));
    enum store_step r = store_step(cs->store, st, "updating a counter", err);
    sqlite3_clear_bindings(st);
    store_stmt_done(st);
    return r != STORE_FAIL;
}

/* Delete the rows of long-gone windows, about once an hour. */
static bool cs_gc(struct counters_sqlite *cs, time_t now, struct buf *err)
{
    if (now < cs->next_gc)
        return true;
    sqlite3_stmt *st = store_stmt(cs->store, cs_gc_sql, err);
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, (int64_t)now - CS_GC_KEEP_S);
    enum store_step r = store_step(cs->store, st, "deleting old counter windows", err);
    store_stmt_done(st);
    return r != STORE_FAIL;
}

/* The value of req i's counter as left by an earlier req of this call on
 * the same counter; false when there is none. */
static bool cs_pending(const struct counter_req *reqs, const struct counter_result *res,
                       size_t i, uint64_t *value)
{
    for (size_t j = i; j-- > 0;)
        if (reqs[j].unit == reqs[i].unit && res[j].window_start == res[i].window_start &&
            strcmp(reqs[j].key, reqs[i].key) == 0) {
            counter_fits(res[j].value, reqs[j].add, reqs[j].limit, value);
            return true;
        }
    return false;
}

/* Fill res[] from the store; true when every req fits (*fits). */
static bool cs_check(struct counters_sqlite *cs, const struct counter_req *reqs, size_t n,
                     time_t now, struct counter_result *res, bool *fits, struct buf *err)
{
    *fits = true;
    for (size_t i = 0; i < n; i++) {
        struct counter_result *r = &res[i];
        uint64_t ignored;
        window_bounds(reqs[i].unit, now, &r->window_start, &r->window_end);
        if (!cs_pending(reqs, res, i, &r->value) &&
            !cs_read(cs, reqs[i].key, reqs[i].unit, r->window_start, &r->value, err))
            return false;
        r->after = r->value;
        r->limit = reqs[i].limit;
        r->exceeded = !counter_fits(r->value, reqs[i].add, reqs[i].limit, &ignored);
        *fits = *fits && !r->exceeded;
    }
    return true;
}

static bool cs_apply(struct counters_sqlite *cs, const struct counter_req *reqs, size_t n,
                     struct counter_result *res, struct buf *err)
{
    for (size_t i = 0; i < n; i++) {
        counter_fits(res[i].value, reqs[i].add, reqs[i].limit, &res[i].after);
        if (!cs_write(cs, &reqs[i], &res[i], err))
            return false;
    }
    return true;
}

static void cs_unapply(size_t n, struct counter_result *res)
{
    for (size_t i = 0; i < n; i++)
        res[i].after = res[i].value;
}

static int cs_check_add(struct counters *c, const struct counter_req *reqs, size_t n,
                        bool commit, struct counter_result *res, struct buf *err)
{
    struct counters_sqlite *cs = (struct counters_sqlite *)c;
    time_t now = cs_now(cs);
    bool fits = false;
    if (!store_begin(cs->store, commit, err))
        return COUNTERS_ERROR;
    if (!cs_check(cs, reqs, n, now, res, &fits, err))
        goto fail;
    if (!commit) {
        store_rollback(cs->store);   /* ends the read snapshot */
        return fits ? COUNTERS_OK : COUNTERS_EXCEEDED;
    }
    if ((fits && !cs_apply(cs, reqs, n, res, err)) || !cs_gc(cs, now, err))
        goto fail;
    if (!store_commit(cs->store, err)) {
        cs_unapply(n, res);
        return COUNTERS_ERROR;
    }
    if (now >= cs->next_gc)
        cs->next_gc = now + CS_GC_EVERY_S;
    return fits ? COUNTERS_OK : COUNTERS_EXCEEDED;
fail:
    store_rollback(cs->store);
    cs_unapply(n, res);
    return COUNTERS_ERROR;
}

static bool cs_get(struct counters *c, const char *key, enum window_unit unit, uint64_t *value,
                   time_t *window_start, time_t *window_end, struct buf *err)
{
    struct counters_sqlite *cs = (struct counters_sqlite *)c;
    window_bounds(unit, cs_now(cs), window_start, window_end);
    return cs_read(cs, key, unit, *window_start, value, err);
}

static void cs_close(struct counters *c)
{
    mem_free(c);
}

/* One key range, unit and window selection, bound to st. */
struct cs_range {
    const char *prefix;
    struct buf end;
    bool has_end;
    enum window_unit unit;
    bool current;               /* only the window holding now */
    time_t start;               /* that window's start */
};

static void cs_range_bind(sqlite3_stmt *st, const struct cs_range *r)
{
    sqlite3_bind_text(st, 1, r->prefix, -1, SQLITE_STATIC);
    if (r->has_end)
        sqlite3_bind_text(st, 2, r->end.data, (int)r->end.len, SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(st, 2, 0);
    sqlite3_bind_text(st, 3, window_unit_name(r->unit), -1, SQLITE_STATIC);
    if (r->current)
        sqlite3_bind_int64(st, 4, (int64_t)r->start);
    else
        sqlite3_bind_null(st, 4);
}

/* Deliver the rows of range r to cb; *n += their number.  *more = false
 * when cb asked to stop. */
static bool cs_range_rows(struct counters_sqlite *cs, const struct cs_range *r, counters_row_cb cb,
                          void *arg, size_t *n, bool *more, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(cs->store, cs_range_select_sql, err);
    if (st == NULL)
        return false;
    cs_range_bind(st, r);
    enum store_step rc;
    while ((rc = store_step(cs->store, st, "listing counters", err)) == STORE_ROW) {
        struct counter_row row = {
            .key = (const char *)sqlite3_column_text(st, 0),
            .unit = r->unit,
            .window_start = (time_t)sqlite3_column_int64(st, 1),
            .window_end = (time_t)sqlite3_column_int64(st, 2),
            .value = cs_from_db(sqlite3_column_int64(st, 3)),
        };
        (*n)++;
        if (cb != NULL && !cb(&row, arg) && more != NULL) {
            *more = false;
            break;
        }
    }
    sqlite3_clear_bindings(st);
    store_stmt_done(st);
    return rc != STORE_FAIL;
}

static bool cs_range_delete(struct counters_sqlite *cs, const struct cs_range *r, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(cs->store, cs_range_delete_sql, err);
    if (st == NULL)
        return false;
    cs_range_bind(st, r);
    enum store_step rc = store_step(cs->store, st, "resetting counters", err);
    sqlite3_clear_bindings(st);
    store_stmt_done(st);
    return rc != STORE_FAIL;
}

static void cs_range_init(struct cs_range *r, const char *prefix)
{
    memset(r, 0, sizeof *r);
    r->prefix = prefix;
    buf_init(&r->end);
    r->has_end = counters_prefix_end(prefix, &r->end);
}

static bool cs_list(struct counters *c, const char *prefix, counters_row_cb cb, void *arg,
                    struct buf *err)
{
    struct counters_sqlite *cs = (struct counters_sqlite *)c;
    time_t now = cs_now(cs), end;
    struct cs_range r;
    size_t n = 0;
    bool ok, more = true;
    cs_range_init(&r, prefix);
    r.current = true;
    ok = store_begin(cs->store, false, err);
    for (int u = 0; ok && more && u < WIN_COUNT; u++) {
        r.unit = (enum window_unit)u;
        window_bounds(r.unit, now, &r.start, &end);
        ok = cs_range_rows(cs, &r, cb, arg, &n, &more, err);
    }
    store_rollback(cs->store);   /* ends the read snapshot (or savepoint) */
    buf_free(&r.end);
    return ok;
}

static bool cs_reset(struct counters *c, const char *const *prefixes, size_t nprefixes, int unit,
                     counters_row_cb cb, void *arg, size_t *count, struct buf *err)
{
    struct counters_sqlite *cs = (struct counters_sqlite *)c;
    time_t now = cs_now(cs), end;
    size_t n = 0;
    bool ok = store_begin(cs->store, true, err);
    for (size_t i = 0; ok && i < nprefixes; i++) {
        struct cs_range r;
        cs_range_init(&r, prefixes[i]);
        r.current = unit == COUNTERS_CURRENT_WINDOWS;
        for (int u = 0; ok && u < WIN_COUNT; u++) {
            if (!r.current && u != unit)
                continue;
            r.unit = (enum window_unit)u;
            window_bounds(r.unit, now, &r.start, &end);
            ok = cs_range_rows(cs, &r, cb, arg, &n, NULL, err) && cs_range_delete(cs, &r, err);
        }
        buf_free(&r.end);
    }
    if (ok && store_commit(cs->store, err)) {
        *count = n;
        return true;
    }
    if (!ok)
        store_rollback(cs->store);
    return false;
}

static const struct counters_ops cs_ops = { cs_check_add, cs_get, cs_close, cs_list, cs_reset };

struct counters *counters_sqlite_open(struct store *s, struct clock clock)
{
    struct counters_sqlite *cs = mem_alloc(sizeof *cs);
    cs->base.ops = &cs_ops;
    cs->store = s;
    cs->clock = clock;
    cs->next_gc = 0;
    return &cs->base;
}
