/* pacer.c: the per-account send-rate buckets of postern-milter, in memory
 * for the decisions and in SQLite for restarts (see pacer.h). */
#include "pacer.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "gcra.h"
#include "hmap.h"
#include "store.h"

struct pacer_state {
    struct gcra g;
    char *key;
};

struct pacer {
    pthread_mutex_t mu;        /* the map, the store handle, every decision */
    struct store *st;
    struct hmap map;           /* key -> struct pacer_state */
    struct pacer_state **all;  /* for freeing */
    size_t n_all;
};

static struct pacer_state *pacer_state_get(struct pacer *p, const char *key, int64_t tat_ns)
{
    struct pacer_state *s = hmap_gets(&p->map, key);
    if (s != NULL)
        return s;
    s = mem_alloc(sizeof *s);
    s->key = mem_strdup(key);
    s->g.tat_ns = tat_ns;
    hmap_put(&p->map, s->key, strlen(s->key), s, NULL);
    p->all = mem_grow(p->all, p->n_all + 1, sizeof *p->all);
    p->all[p->n_all++] = s;
    return s;
}

static bool pacer_load(struct pacer *p, struct buf *err)
{
    sqlite3_stmt *q = store_stmt(p->st, "SELECT key, tat_ns FROM pace_bucket", err);
    if (q == NULL)
        return false;
    enum store_step r;
    while ((r = store_step(p->st, q, "reading the pacing buckets", err)) == STORE_ROW)
        pacer_state_get(p, (const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1));
    store_stmt_done(q);
    return r == STORE_DONE;
}

struct pacer *pacer_open(const char *path, struct buf *err)
{
    struct pacer *p = mem_alloc(sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    hmap_init(&p->map);
    p->st = store_open(path, 0, err);
    if (p->st == NULL || !pacer_load(p, err)) {
        pacer_close(p);
        return NULL;
    }
    return p;
}

void pacer_close(struct pacer *p)
{
    if (p == NULL)
        return;
    if (p->st != NULL)
        store_close(p->st);
    for (size_t i = 0; i < p->n_all; i++) {
        mem_free(p->all[i]->key);
        mem_free(p->all[i]);
    }
    mem_free(p->all);
    hmap_free(&p->map);
    pthread_mutex_destroy(&p->mu);
    mem_free(p);
}

/* Write the buckets' new arrival times in one transaction. */
static bool pacer_save(struct pacer *p, struct pacer_state *const *s, size_t n, struct buf *err)
{
    if (!store_begin(p->st, true, err))
        return false;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *q = store_stmt(p->st,
                                     "INSERT INTO pace_bucket (key, tat_ns) VALUES (?1, ?2) "
                                     "ON CONFLICT (key) DO UPDATE SET tat_ns = excluded.tat_ns",
                                     err);
        if (q == NULL) {
            store_rollback(p->st);
            return false;
        }
        sqlite3_bind_text(q, 1, s[i]->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, s[i]->g.tat_ns);
        enum store_step r = store_step(p->st, q, "saving a pacing bucket", err);
        store_stmt_done(q);
        if (r != STORE_DONE) {
            store_rollback(p->st);
            return false;
        }
    }
    return store_commit(p->st, err);
}

#define PACER_MAX_BUCKETS 4

bool pacer_decide(struct pacer *p, const struct pacer_bucket *b, size_t n, enum pace_mode mode,
                  uint64_t max_delay_ms, int64_t now_ns, struct pacer_decision *out, struct buf *err)
{
    memset(out, 0, sizeof *out);
    out->verdict = PACER_GO;
    if (n > PACER_MAX_BUCKETS)
        n = PACER_MAX_BUCKETS;
    struct pacer_state *s[PACER_MAX_BUCKETS];
    struct gcra_rate r[PACER_MAX_BUCKETS];
    struct gcra before[PACER_MAX_BUCKETS];
    size_t m = 0;
    pthread_mutex_lock(&p->mu);
    int64_t wait = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i].pace == NULL || !b[i].pace->set ||
            !gcra_rate_init(&r[m], b[i].pace->rate.count, b[i].pace->rate.period_s, b[i].pace->burst))
            continue;
        s[m] = pacer_state_get(p, b[i].key, 0);
        before[m] = s[m]->g;
        int64_t w = gcra_wait(&s[m]->g, &r[m], now_ns);
        if (w > wait || (w == wait && w > 0 && out->by == NULL)) {
            wait = w;
            out->by = b[i].key;
        }
        m++;
    }
    out->wait_ns = wait;
    bool take = true;
    if (wait > 0) {
        switch (mode) {
        case PACE_DELAY:
            if (wait <= (int64_t)max_delay_ms * 1000000) {
                out->verdict = PACER_DELAY;
            } else {
                out->verdict = PACER_DEFER;
                take = false;
            }
            break;
        case PACE_DEFER:
            out->verdict = PACER_DEFER;
            take = false;
            break;
        case PACE_HOLD:
            out->verdict = PACER_HOLD;
            break;
        }
    }
    bool ok = true;
    if (take && m > 0) {
        for (size_t i = 0; i < m; i++)
            gcra_take(&s[i]->g, &r[i], now_ns + wait);
        if (!pacer_save(p, s, m, err)) {
            for (size_t i = 0; i < m; i++) /* nothing charged */
                s[i]->g = before[i];
            ok = false;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

bool pacer_bucket_tat(struct pacer *p, const char *key, int64_t *tat_ns)
{
    pthread_mutex_lock(&p->mu);
    struct pacer_state *s = hmap_gets(&p->map, key);
    if (s != NULL)
        *tat_ns = s->g.tat_ns;
    pthread_mutex_unlock(&p->mu);
    return s != NULL;
}
