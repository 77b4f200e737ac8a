/* counters_mem.c: the memory backend of quota counters (counters.h): the
 * counters a journaling daemon decides on, in a hash table owned by its
 * deciding thread, with the SQLite backend's semantics (same windows, same
 * overflow rule, same listing order and reset rules); the adds it makes
 * are handed out as deltas for the journal, an undo log takes a batch of
 * changes back when the batch's journal transaction fails, and the table
 * is loaded from the store's counters table at start-up.
 *
 * The table is open addressing with linear probing over pointers to
 * entries (so an entry never moves in memory), deleted by backward shift
 * (no tombstones).  check_add and get cost a few lookups; list, reset, gc
 * and load scan the table. */
#include "counters.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "store.h"

/* Windows that ended this long ago are dropped ... */
#define CM_GC_KEEP_S 86400
/* ... at most this often, inside a committing check_add (as counters_sqlite.c). */
#define CM_GC_EVERY_S 3600

/* One counter in one window. */
struct cm_entry {
    uint64_t hash;
    uint64_t value;
    time_t start, end;          /* the window [start, end) */
    uint64_t gen;               /* the batch that last recorded it in the undo log */
    enum window_unit unit;
    size_t klen;
    char key[];                 /* NUL-terminated */
};

struct cm_slot {
    uint64_t hash;
    struct cm_entry *e;         /* NULL: empty */
};

struct cm_table {
    struct cm_slot *slots;
    size_t cap, n;              /* cap: a power of two */
};

/* An undo log record: what to do to take one change back. */
enum cm_undo_kind {
    CM_UNDO_CREATED,            /* e was inserted: remove and free it */
    CM_UNDO_CHANGED,            /* e's value and end were these */
    CM_UNDO_DELETED,            /* e was removed (the log owns it): put it back */
};

struct cm_undo {
    enum cm_undo_kind kind;
    struct cm_entry *e;
    uint64_t value;
    time_t end;
};

/* window_bounds() of the last second asked, per unit: a daemon asks for
 * the same second thousands of times.  Exact as long as the zone is not
 * changed (tz_select() is for start-up). */
struct cm_window {
    bool valid;
    time_t at, start, end;
};

struct counters_mem {
    struct counters base;
    struct clock clock;
    struct cm_table t;
    time_t next_gc;             /* seconds; 0: at the first committing call */
    struct counter_deltas deltas;
    bool in_batch;
    uint64_t gen;               /* the current (or last) batch's number */
    struct cm_undo *undo;
    size_t nundo, capundo;
    size_t batch_deltas;        /* deltas[0..batch_deltas) predate the batch */
    struct cm_window win[WIN_COUNT];
};

static const struct counters_ops cm_ops;

static struct counters_mem *cm_of(struct counters *c)
{
    assert(c != NULL && c->ops == &cm_ops);
    return (struct counters_mem *)c;
}

/* --- delta lists ------------------------------------------------------- */

void counter_deltas_init(struct counter_deltas *d)
{
    d->v = NULL;
    d->n = d->cap = 0;
}

void counter_deltas_clear(struct counter_deltas *d)
{
    for (size_t i = 0; i < d->n; i++)
        mem_free(d->v[i].key);
    d->n = 0;
}

void counter_deltas_free(struct counter_deltas *d)
{
    counter_deltas_clear(d);
    mem_free(d->v);
    counter_deltas_init(d);
}

static void cm_deltas_reserve(struct counter_deltas *d, size_t more)
{
    if (d->cap - d->n >= more)
        return;
    size_t cap = d->cap != 0 ? d->cap : 16;
    while (cap - d->n < more)
        cap *= 2;
    d->v = mem_grow(d->v, cap, sizeof *d->v);
    d->cap = cap;
}

static void cm_delta_push(struct counter_deltas *d, const struct cm_entry *e, uint64_t add)
{
    cm_deltas_reserve(d, 1);
    d->v[d->n++] = (struct counter_delta){
        .key = mem_strndup(e->key, e->klen),
        .unit = e->unit,
        .window_start = e->start,
        .window_end = e->end,
        .add = add,
    };
}

/* --- the hash table ---------------------------------------------------- */

static uint64_t cm_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t cm_hash(const char *key, size_t klen, enum window_unit unit, time_t start)
{
    const unsigned char *p = (const unsigned char *)key;
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= cm_mix((uint64_t)start ^ ((uint64_t)unit << 59));
    return cm_mix(h);
}

static void cm_table_init(struct cm_table *t)
{
    t->cap = 64;
    t->n = 0;
    t->slots = mem_array(t->cap, sizeof *t->slots);
}

/* Free the table and every entry in it. */
static void cm_table_free(struct cm_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        mem_free(t->slots[i].e);
    mem_free(t->slots);
    t->slots = NULL;
    t->cap = t->n = 0;
}

static struct cm_entry *cm_find(const struct cm_table *t, const char *key, size_t klen,
                                enum window_unit unit, time_t start, uint64_t h)
{
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct cm_slot *s = &t->slots[i];
        if (s->e == NULL)
            return NULL;
        if (s->hash == h && s->e->unit == unit && s->e->start == start &&
            s->e->klen == klen && memcmp(s->e->key, key, klen) == 0)
            return s->e;
    }
}

/* Place e (not in the table) in the first free slot of its probe run. */
static void cm_place(struct cm_table *t, struct cm_entry *e)
{
    size_t mask = t->cap - 1, i = e->hash & mask;
    while (t->slots[i].e != NULL)
        i = (i + 1) & mask;
    t->slots[i].hash = e->hash;
    t->slots[i].e = e;
}

static void cm_insert(struct cm_table *t, struct cm_entry *e)
{
    if ((t->n + 1) * 4 > t->cap * 3) {
        struct cm_slot *old = t->slots;
        size_t oldcap = t->cap;
        t->cap *= 2;
        t->slots = mem_array(t->cap, sizeof *t->slots);
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].e != NULL)
                cm_place(t, old[i].e);
        mem_free(old);
    }
    cm_place(t, e);
    t->n++;
}

/* Take e out of the table (it must be in it), closing the gap by moving
 * back the entries of the probe run that follows (backward shift). */
static void cm_remove(struct cm_table *t, const struct cm_entry *e)
{
    size_t mask = t->cap - 1, i = e->hash & mask;
    while (t->slots[i].e != e)
        i = (i + 1) & mask;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (t->slots[j].e == NULL)
            break;
        size_t home = t->slots[j].hash & mask;
        /* the entry at j stays when its home lies cyclically in (i, j] */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        t->slots[i] = t->slots[j];
        i = j;
    }
    t->slots[i].e = NULL;
    t->slots[i].hash = 0;
    t->n--;
}

static struct cm_entry *cm_entry_new(const char *key, size_t klen, enum window_unit unit,
                                     time_t start, time_t end, uint64_t value, uint64_t h)
{
    struct cm_entry *e = mem_alloc(sizeof *e + klen + 1);
    e->hash = h;
    e->value = value;
    e->start = start;
    e->end = end;
    e->unit = unit;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    return e;
}

/* --- the undo log ------------------------------------------------------ */

static void cm_undo_push(struct counters_mem *cm, enum cm_undo_kind kind, struct cm_entry *e)
{
    if (cm->nundo == cm->capundo) {
        cm->capundo = cm->capundo != 0 ? cm->capundo * 2 : 64;
        cm->undo = mem_grow(cm->undo, cm->capundo, sizeof *cm->undo);
    }
    cm->undo[cm->nundo++] = (struct cm_undo){ kind, e, e->value, e->end };
    e->gen = cm->gen;
}

/* Before e's value or end changes: remember them once per batch. */
static void cm_touch(struct counters_mem *cm, struct cm_entry *e)
{
    if (cm->in_batch && e->gen != cm->gen)
        cm_undo_push(cm, CM_UNDO_CHANGED, e);
}

/* Remove e from the table: freed at once outside a batch, kept by the
 * undo log inside one. */
static void cm_drop(struct counters_mem *cm, struct cm_entry *e)
{
    cm_remove(&cm->t, e);
    if (cm->in_batch)
        cm_undo_push(cm, CM_UNDO_DELETED, e);
    else
        mem_free(e);
}

/* Forget the undo log (the batch's changes are final). */
static void cm_undo_forget(struct counters_mem *cm)
{
    for (size_t i = 0; i < cm->nundo; i++)
        if (cm->undo[i].kind == CM_UNDO_DELETED)
            mem_free(cm->undo[i].e);
    cm->nundo = 0;
}

/* Take the batch's changes back, the last first. */
static void cm_undo_replay(struct counters_mem *cm)
{
    for (size_t i = cm->nundo; i-- > 0;) {
        struct cm_undo *u = &cm->undo[i];
        switch (u->kind) {
        case CM_UNDO_CREATED:
            cm_remove(&cm->t, u->e);
            mem_free(u->e);
            break;
        case CM_UNDO_CHANGED:
            u->e->value = u->value;
            u->e->end = u->end;
            break;
        case CM_UNDO_DELETED:
            cm_insert(&cm->t, u->e);
            break;
        }
    }
    cm->nundo = 0;
}

/* --- time -------------------------------------------------------------- */

static time_t cm_now(struct counters_mem *cm)
{
    int64_t us = clock_now_us(&cm->clock);
    int64_t s = us / 1000000;
    if (us % 1000000 < 0)
        s--;   /* floor, as counters_sqlite.c */
    return (time_t)s;
}

static void cm_bounds(struct counters_mem *cm, enum window_unit u, time_t now, time_t *start,
                      time_t *end)
{
    struct cm_window *w = &cm->win[u];
    if (!w->valid || w->at != now) {
        window_bounds(u, now, &w->start, &w->end);
        w->at = now;
        w->valid = true;
    }
    *start = w->start;
    *end = w->end;
}

/* --- the ops ----------------------------------------------------------- */

/* The value of req i's counter as left by an earlier req of this call on
 * the same counter; false when there is none (as counters_sqlite.c). */
static bool cm_pending(const struct counter_req *reqs, const struct counter_result *res,
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

/* Drop the windows that ended long ago, about once an hour. */
static void cm_gc(struct counters_mem *cm, time_t now)
{
    if (now < cm->next_gc)
        return;
    cm->next_gc = now + CM_GC_EVERY_S;
    time_t before = now - CM_GC_KEEP_S;
    struct cm_entry **old = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < cm->t.cap; i++) {
        struct cm_entry *e = cm->t.slots[i].e;
        if (e == NULL || e->end >= before)
            continue;
        if (n == cap) {
            cap = cap != 0 ? cap * 2 : 64;
            old = mem_grow(old, cap, sizeof *old);
        }
        old[n++] = e;
    }
    for (size_t i = 0; i < n; i++)
        cm_drop(cm, old[i]);
    mem_free(old);
}

static void cm_apply(struct counters_mem *cm, const struct counter_req *reqs, size_t n,
                     struct counter_result *res)
{
    for (size_t i = 0; i < n; i++) {
        const struct counter_req *q = &reqs[i];
        struct counter_result *r = &res[i];
        size_t klen = strlen(q->key);
        uint64_t h = cm_hash(q->key, klen, q->unit, r->window_start);
        counter_fits(r->value, q->add, q->limit, &r->after);
        struct cm_entry *e = cm_find(&cm->t, q->key, klen, q->unit, r->window_start, h);
        if (e == NULL) {
            /* like the SQLite upsert, an add of 0 also creates its row */
            e = cm_entry_new(q->key, klen, q->unit, r->window_start, r->window_end, 0, h);
            cm_insert(&cm->t, e);
            if (cm->in_batch)
                cm_undo_push(cm, CM_UNDO_CREATED, e);
        }
        cm_touch(cm, e);
        e->value = r->after;
        e->end = r->window_end;
        if (q->add > 0)
            cm_delta_push(&cm->deltas, e, q->add);
    }
}

static int cm_check_add(struct counters *c, const struct counter_req *reqs, size_t n,
                        bool commit, struct counter_result *res, struct buf *err)
{
    struct counters_mem *cm = cm_of(c);
    time_t now = cm_now(cm);
    bool fits = true;
    (void)err;   /* nothing fails here: counters_check_add() validated reqs */
    for (size_t i = 0; i < n; i++) {
        const struct counter_req *q = &reqs[i];
        struct counter_result *r = &res[i];
        uint64_t ignored;
        cm_bounds(cm, q->unit, now, &r->window_start, &r->window_end);
        if (!cm_pending(reqs, res, i, &r->value)) {
            size_t klen = strlen(q->key);
            const struct cm_entry *e = cm_find(&cm->t, q->key, klen, q->unit, r->window_start,
                                               cm_hash(q->key, klen, q->unit, r->window_start));
            r->value = e != NULL ? e->value : 0;
        }
        r->after = r->value;
        r->limit = q->limit;
        r->exceeded = !counter_fits(r->value, q->add, q->limit, &ignored);
        fits = fits && !r->exceeded;
    }
    if (commit) {
        if (fits)
            cm_apply(cm, reqs, n, res);
        cm_gc(cm, now);
    }
    return fits ? COUNTERS_OK : COUNTERS_EXCEEDED;
}

static bool cm_get(struct counters *c, const char *key, enum window_unit unit, uint64_t *value,
                   time_t *window_start, time_t *window_end, struct buf *err)
{
    struct counters_mem *cm = cm_of(c);
    size_t klen = strlen(key);
    (void)err;
    cm_bounds(cm, unit, cm_now(cm), window_start, window_end);
    const struct cm_entry *e = cm_find(&cm->t, key, klen, unit, *window_start,
                                       cm_hash(key, klen, unit, *window_start));
    *value = e != NULL ? e->value : 0;
    return true;
}

static void cm_close(struct counters *c)
{
    struct counters_mem *cm = cm_of(c);
    cm_undo_forget(cm);
    mem_free(cm->undo);
    cm_table_free(&cm->t);
    counter_deltas_free(&cm->deltas);
    mem_free(cm);
}

/* An entry selected by list or reset, with the index of the first prefix
 * it matched (reset: the rows of a prefix go before those of the next). */
struct cm_pick {
    size_t prefix;
    struct cm_entry *e;
};

struct cm_picks {
    struct cm_pick *v;
    size_t n, cap;
};

static void cm_pick_add(struct cm_picks *p, size_t prefix, struct cm_entry *e)
{
    if (p->n == p->cap) {
        p->cap = p->cap != 0 ? p->cap * 2 : 64;
        p->v = mem_grow(p->v, p->cap, sizeof *p->v);
    }
    p->v[p->n++] = (struct cm_pick){ prefix, e };
}

/* The order of the SQLite backend's rows: prefix, unit, key (bytes), window. */
static int cm_pick_cmp(const void *a, const void *b)
{
    const struct cm_pick *x = a, *y = b;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    if (x->e->unit != y->e->unit)
        return x->e->unit < y->e->unit ? -1 : 1;
    int k = strcmp(x->e->key, y->e->key);   /* compares as unsigned char */
    if (k != 0)
        return k;
    if (x->e->start != y->e->start)
        return x->e->start < y->e->start ? -1 : 1;
    return 0;
}

static struct counter_row cm_row(const struct cm_entry *e)
{
    return (struct counter_row){
        .key = e->key,
        .unit = e->unit,
        .value = e->value,
        .window_start = e->start,
        .window_end = e->end,
    };
}

static void cm_current_starts(struct counters_mem *cm, time_t starts[WIN_COUNT])
{
    time_t now = cm_now(cm), end;
    for (int u = 0; u < WIN_COUNT; u++)
        cm_bounds(cm, (enum window_unit)u, now, &starts[u], &end);
}

static bool cm_list(struct counters *c, const char *prefix, counters_row_cb cb, void *arg,
                    struct buf *err)
{
    struct counters_mem *cm = cm_of(c);
    time_t starts[WIN_COUNT];
    size_t plen = strlen(prefix);
    struct cm_picks p = { NULL, 0, 0 };
    (void)err;
    cm_current_starts(cm, starts);
    for (size_t i = 0; i < cm->t.cap; i++) {
        struct cm_entry *e = cm->t.slots[i].e;
        if (e != NULL && e->start == starts[e->unit] && e->klen >= plen &&
            memcmp(e->key, prefix, plen) == 0)
            cm_pick_add(&p, 0, e);
    }
    if (p.n > 1)
        qsort(p.v, p.n, sizeof *p.v, cm_pick_cmp);
    for (size_t i = 0; cb != NULL && i < p.n; i++) {
        struct counter_row row = cm_row(p.v[i].e);
        if (!cb(&row, arg))
            break;
    }
    mem_free(p.v);
    return true;
}

static bool cm_reset(struct counters *c, const char *const *prefixes, size_t nprefixes, int unit,
                     counters_row_cb cb, void *arg, size_t *count, struct buf *err)
{
    struct counters_mem *cm = cm_of(c);
    time_t starts[WIN_COUNT];
    struct cm_picks p = { NULL, 0, 0 };
    (void)err;
    cm_current_starts(cm, starts);
    for (size_t i = 0; i < cm->t.cap; i++) {
        struct cm_entry *e = cm->t.slots[i].e;
        if (e == NULL)
            continue;
        if (unit == COUNTERS_CURRENT_WINDOWS ? e->start != starts[e->unit] : (int)e->unit != unit)
            continue;
        for (size_t k = 0; k < nprefixes; k++) {
            size_t plen = strlen(prefixes[k]);
            if (e->klen >= plen && memcmp(e->key, prefixes[k], plen) == 0) {
                cm_pick_add(&p, k, e);
                break;
            }
        }
    }
    if (p.n > 1)
        qsort(p.v, p.n, sizeof *p.v, cm_pick_cmp);
    for (size_t i = 0; i < p.n; i++) {
        if (cb != NULL) {
            struct counter_row row = cm_row(p.v[i].e);
            cb(&row, arg);
        }
        cm_drop(cm, p.v[i].e);
    }
    *count = p.n;
    mem_free(p.v);
    return true;
}

static const struct counters_ops cm_ops = { cm_check_add, cm_get, cm_close, cm_list, cm_reset };

/* --- the memory backend's own interface -------------------------------- */

struct counters *counters_mem_open(struct clock clock)
{
    struct counters_mem *cm = mem_alloc(sizeof *cm);
    cm->base.ops = &cm_ops;
    cm->clock = clock;
    cm_table_init(&cm->t);
    cm->next_gc = 0;
    counter_deltas_init(&cm->deltas);
    return &cm->base;
}

static const char cm_load_sql[] =
    "SELECT key, unit, window_start, window_end, value FROM counters WHERE window_end > ?1";

bool counters_mem_load(struct counters *c, struct store *s, struct buf *err)
{
    struct counters_mem *cm = cm_of(c);
    assert(!cm->in_batch);
    struct cm_table t;
    sqlite3_stmt *st = store_stmt(s, cm_load_sql, err);
    if (st == NULL)
        return false;
    cm_table_init(&t);
    sqlite3_bind_int64(st, 1, (int64_t)cm_now(cm));
    enum store_step rc;
    while ((rc = store_step(s, st, "loading the counters", err)) == STORE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const char *uname = (const char *)sqlite3_column_text(st, 1);
        enum window_unit unit;
        if (key == NULL || uname == NULL ||
            !window_unit_parse(uname, (size_t)sqlite3_column_bytes(st, 1), &unit)) {
            buf_reset(err);
            buf_printf(err, "%s: loading the counters: a row of key '%s' has a bad unit '%s'",
                       store_path(s), key != NULL ? key : "(null)",
                       uname != NULL ? uname : "(null)");
            rc = STORE_FAIL;
            break;
        }
        size_t klen = strlen(key);
        time_t start = (time_t)sqlite3_column_int64(st, 2);
        time_t end = (time_t)sqlite3_column_int64(st, 3);
        uint64_t value = (uint64_t)sqlite3_column_int64(st, 4);   /* the same bit pattern */
        uint64_t h = cm_hash(key, klen, unit, start);
        struct cm_entry *e = cm_find(&t, key, klen, unit, start, h);
        if (e != NULL) {   /* only a key holding a NUL byte can collide */
            e->value = value;
            e->end = end;
            continue;
        }
        cm_insert(&t, cm_entry_new(key, klen, unit, start, end, value, h));
    }
    sqlite3_clear_bindings(st);
    store_stmt_done(st);
    if (rc == STORE_FAIL) {
        cm_table_free(&t);
        return false;
    }
    cm_table_free(&cm->t);
    cm->t = t;
    return true;
}

void counters_mem_take_deltas(struct counters *c, struct counter_deltas *out)
{
    struct counters_mem *cm = cm_of(c);
    if (out->n == 0) {
        /* swap the arrays: no copy */
        struct counter_deltas tmp = *out;
        *out = cm->deltas;
        cm->deltas = tmp;
    } else {
        cm_deltas_reserve(out, cm->deltas.n);
        if (cm->deltas.n > 0)
            memcpy(out->v + out->n, cm->deltas.v, cm->deltas.n * sizeof *out->v);
        out->n += cm->deltas.n;
        cm->deltas.n = 0;   /* the keys are out's now */
    }
    cm->batch_deltas = 0;
}

void counters_mem_batch_begin(struct counters *c)
{
    struct counters_mem *cm = cm_of(c);
    assert(!cm->in_batch);
    cm->in_batch = true;
    cm->gen++;
    cm->nundo = 0;
    cm->batch_deltas = cm->deltas.n;
}

void counters_mem_batch_commit(struct counters *c)
{
    struct counters_mem *cm = cm_of(c);
    assert(cm->in_batch);
    cm_undo_forget(cm);
    cm->in_batch = false;
}

void counters_mem_batch_rollback(struct counters *c)
{
    struct counters_mem *cm = cm_of(c);
    assert(cm->in_batch);
    cm_undo_replay(cm);
    for (size_t i = cm->batch_deltas; i < cm->deltas.n; i++)
        mem_free(cm->deltas.v[i].key);
    cm->deltas.n = cm->batch_deltas;
    cm->in_batch = false;
}

size_t counters_mem_size(const struct counters *c)
{
    assert(c != NULL && c->ops == &cm_ops);
    return ((const struct counters_mem *)c)->t.n;
}
