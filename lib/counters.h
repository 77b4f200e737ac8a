/* counters.h: quota counters in calendar windows, behind a backend
 * interface free of SQL (SQLite today: counters_sqlite.c; a Redis backend
 * for counters shared across nodes can implement the same ops).
 *
 * A counter is (key, window unit).  Its value lives in the calendar window
 * (ptime.h window_bounds(), in the zone chosen by tz_select()) that holds
 * "now" according to the backend's clock; a new window starts at 0, and
 * the window's end is the time the quota resets.  Values are uint64; an
 * addition that would overflow counts as exceeding, it never wraps.
 *
 * A counters object belongs to one thread, like the store under it. */
#ifndef POSTERN_COUNTERS_H
#define POSTERN_COUNTERS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "ptime.h"

struct store;

/* The limit of a counter without limit: value + add can never exceed it,
 * except by overflowing, which still fails. */
#define COUNTER_NO_LIMIT UINT64_MAX

struct counter_req {
    const char *key;            /* e.g. "acme/acct/billing@acme.example/messages" */
    enum window_unit unit;
    uint64_t add;               /* 0 to only read */
    uint64_t limit;             /* value + add <= limit is allowed */
};

struct counter_result {
    uint64_t value;             /* in the current window, before this call (after
                                 * the earlier reqs of the call on the same counter) */
    uint64_t after;             /* value after the call: value + add when the adds
                                 * were applied, else value */
    uint64_t limit;             /* the req's limit */
    bool exceeded;              /* value + add > limit (or overflows) */
    time_t window_start;        /* the window [start, end) holding now */
    time_t window_end;          /* = when the counter resets */
};

enum counters_status {
    COUNTERS_OK = 0,            /* every req fits (and, if commit, was added) */
    COUNTERS_EXCEEDED = 1,      /* some req exceeds: nothing was added */
    COUNTERS_ERROR = -1,        /* backend failure: err set, nothing was added */
};

struct counters;

/* One stored counter, as listed or reset (posternctl). */
struct counter_row {
    const char *key;
    enum window_unit unit;
    uint64_t value;
    time_t window_start;        /* the row's window [start, end) */
    time_t window_end;
};

/* Called once per row; the row and its key live until the callback
 * returns.  It must not use the counters object or its store. */
typedef bool (*counters_row_cb)(const struct counter_row *row, void *arg);

/* counters_reset()'s unit for "the current window of every unit". */
#define COUNTERS_CURRENT_WINDOWS (-1)

struct counters_ops {
    int (*check_add)(struct counters *c, const struct counter_req *reqs, size_t n,
                     bool commit, struct counter_result *res, struct buf *err);
    bool (*get)(struct counters *c, const char *key, enum window_unit unit, uint64_t *value,
                time_t *window_start, time_t *window_end, struct buf *err);
    void (*close)(struct counters *c);
    bool (*list)(struct counters *c, const char *prefix, counters_row_cb cb, void *arg,
                 struct buf *err);
    bool (*reset)(struct counters *c, const char *const *prefixes, size_t nprefixes, int unit,
                  counters_row_cb cb, void *arg, size_t *count, struct buf *err);
};

/* The base of every backend's object (its first member). */
struct counters {
    const struct counters_ops *ops;
};

/* Check reqs[0..n) against their limits and, if every one fits and commit
 * is true, add them all, atomically (one transaction: another handle or
 * process never sees a part of it, and concurrent callers never both get
 * the last unit of a quota).  commit = false only looks (RCPT-time checks).
 * res[i] is filled for every req (also when some exceed).  Several reqs on
 * the same counter see each other's adds, in order.  Returns an
 * enum counters_status; on COUNTERS_ERROR err holds the reason. */
int counters_check_add(struct counters *c, const struct counter_req *reqs, size_t n,
                       bool commit, struct counter_result *res, struct buf *err);
/* The current value of (key, unit) and its window.  False with err set. */
bool counters_get(struct counters *c, const char *key, enum window_unit unit,
                  uint64_t *value, time_t *window_start, time_t *window_end,
                  struct buf *err);
void counters_close(struct counters *c);

/* The counters whose key starts with prefix ("" for all), in the window
 * of their unit that holds now (rows of other windows are not shown: they
 * are past), to cb, ordered by unit (minute first), then key, from one
 * read snapshot.  cb returns false to stop.  A read-only store is enough.
 * False with err set on a backend failure. */
bool counters_list(struct counters *c, const char *prefix, counters_row_cb cb, void *arg,
                   struct buf *err);
/* Delete, in one write transaction, the counters whose key starts with
 * one of prefixes[0..nprefixes) (each non-empty): with unit
 * COUNTERS_CURRENT_WINDOWS their row of the window holding now, for every
 * unit; with a window unit every stored window of that unit.  Each row is
 * given to cb (may be NULL; its return value is ignored) with its value
 * before the reset, before it is deleted and before the commit: a caller
 * that prints should collect and print after success.  *count (may be
 * NULL) = the rows deleted.  Inside a store batch the reset is part of the
 * batch.  False with err set (nothing deleted) on failure. */
bool counters_reset(struct counters *c, const char *const *prefixes, size_t nprefixes, int unit,
                    counters_row_cb cb, void *arg, size_t *count, struct buf *err);
/* For backends: the smallest string greater than every string that starts
 * with prefix (in byte order): prefix with its last byte below 0xff
 * incremented and the rest dropped.  False when there is none (prefix
 * empty or all 0xff bytes). */
bool counters_prefix_end(const char *prefix, struct buf *out);

/* Index of the first exceeded result, n when none. */
size_t counters_first_exceeded(const struct counter_result *res, size_t n);
/* Append " key/unit=value+add/limit" per req ("/-" for no limit) to out:
 * the text of an audit record's counters field. */
void counters_describe(const struct counter_req *reqs, const struct counter_result *res,
                       size_t n, struct buf *out);

/* For backends: does value + add fit under limit?  *after = value + add
 * when it does (and no overflow), value otherwise. */
bool counter_fits(uint64_t value, uint64_t add, uint64_t limit, uint64_t *after);
/* For backends: false with err set when a req is malformed. */
bool counters_reqs_valid(const struct counter_req *reqs, size_t n, struct buf *err);

/* The SQLite backend, on an open store (which must outlive it and is not
 * closed by counters_close).  clock gives "now" (tests inject one).
 * Windows that ended more than a day ago are deleted about once an hour,
 * inside a committing check_add. */
struct counters *counters_sqlite_open(struct store *s, struct clock clock);

/* --- the memory backend (counters_mem.c) ------------------------------
 * The counters of a daemon that journals its decisions (journal.h): the
 * values live in a hash table owned by the daemon's deciding thread; the
 * durable copy is the journal (each committed add is a delta of the
 * decision's journal record) and, once ingested, the store's counters
 * table.  At start-up the table is loaded from the store after the
 * journal was ingested, so it equals what the store would say.
 *
 * check_add, get, list and reset behave as the SQLite backend's (same
 * windows, same overflow rule, list ordered by unit then key); nothing
 * can fail but a malformed request.  Windows that ended more than a day
 * ago are dropped about once an hour, inside a committing check_add.
 *
 * Batches: between counters_mem_batch_begin() and _commit() or
 * _rollback(), every committed add is remembered; _rollback() puts every
 * value back as it was at _begin() (the journal transaction of the batch
 * failed, so the adds must not count).  Outside a batch adds are final at
 * once.  counters_mem_take_deltas() hands out the adds made since the
 * last take, one per (req with add > 0) of each committing check_add, in
 * order: the caller journals them with the decision that made them. */
struct counter_delta {
    char *key;                  /* owned by the delta list */
    enum window_unit unit;
    time_t window_start, window_end;
    uint64_t add;
};

struct counter_deltas {
    struct counter_delta *v;
    size_t n, cap;
};

void counter_deltas_init(struct counter_deltas *d);
void counter_deltas_clear(struct counter_deltas *d); /* n = 0, keys freed */
void counter_deltas_free(struct counter_deltas *d);

struct counters *counters_mem_open(struct clock clock);
/* Replace the table's contents by the store's rows of windows that have
 * not ended yet (counters_sqlite's table).  False with err set. */
bool counters_mem_load(struct counters *c, struct store *s, struct buf *err);
/* Move the adds made since the last take to out (appended). */
void counters_mem_take_deltas(struct counters *c, struct counter_deltas *out);
void counters_mem_batch_begin(struct counters *c);
void counters_mem_batch_commit(struct counters *c);
void counters_mem_batch_rollback(struct counters *c);
/* Number of (key, unit, window) entries held (for logs and tests). */
size_t counters_mem_size(const struct counters *c);

#endif
