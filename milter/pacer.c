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
#include "holdq.h"
#include "qid.h"
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

/* Write the buckets' new arrival times (inside the caller's transaction). */
static bool pacer_write(struct pacer *p, struct pacer_state *const *s, size_t n, struct buf *err)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *q = store_stmt(p->st,
                                     "INSERT INTO pace_bucket (key, tat_ns) VALUES (?1, ?2) "
                                     "ON CONFLICT (key) DO UPDATE SET tat_ns = excluded.tat_ns",
                                     err);
        if (q == NULL)
            return false;
        sqlite3_bind_text(q, 1, s[i]->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, s[i]->g.tat_ns);
        enum store_step r = store_step(p->st, q, "saving a pacing bucket", err);
        store_stmt_done(q);
        if (r != STORE_DONE)
            return false;
    }
    return true;
}

#define PACER_MAX_BUCKETS 4

/* The buckets a message goes through, with their rates and states before. */
struct pacer_set {
    struct pacer_state *s[PACER_MAX_BUCKETS];
    struct gcra_rate r[PACER_MAX_BUCKETS];
    struct gcra before[PACER_MAX_BUCKETS];
    size_t m;
};

/* Look the buckets up (under the lock); the longest wait at now_ns and
 * the key of the bucket that sets it.  strict: no burst (the release of
 * held messages: one interval apart, so that Postfix, which picks up
 * messages queued at the same time in no set order, sends them in their
 * order, and a pause of the releases is not made up in a burst). */
static int64_t pacer_set_wait(struct pacer *p, struct pacer_set *set, const struct pacer_bucket *b, size_t n,
                              int64_t now_ns, bool strict, const char **by)
{
    int64_t wait = 0;
    set->m = 0;
    *by = NULL;
    if (n > PACER_MAX_BUCKETS)
        n = PACER_MAX_BUCKETS;
    for (size_t i = 0; i < n; i++) {
        size_t m = set->m;
        if (b[i].pace == NULL || !b[i].pace->set ||
            !gcra_rate_init(&set->r[m], b[i].pace->rate.count, b[i].pace->rate.period_s, b[i].pace->burst))
            continue;
        if (strict)
            set->r[m].tolerance_ns = 0;
        set->s[m] = pacer_state_get(p, b[i].key, 0);
        set->before[m] = set->s[m]->g;
        int64_t w = gcra_wait(&set->s[m]->g, &set->r[m], now_ns);
        if (w > wait || (w == wait && w > 0 && *by == NULL)) {
            wait = w;
            *by = b[i].key;
        }
        set->m++;
    }
    return wait;
}

static void pacer_set_take(struct pacer_set *set, int64_t at_ns)
{
    for (size_t i = 0; i < set->m; i++)
        gcra_take(&set->s[i]->g, &set->r[i], at_ns);
}

/* Charge a release (strict, see pacer_set_wait): one interval on from the
 * bucket's due time when the release comes a little late (less than an
 * interval: the thread's wake-up), so that lateness does not add up and
 * the long-run rate is exact; from now after a real pause. */
static void pacer_set_take_strict(struct pacer_set *set, int64_t now_ns)
{
    for (size_t i = 0; i < set->m; i++) {
        int64_t tat = set->s[i]->g.tat_ns, at = now_ns;
        if (tat < now_ns && now_ns - tat < set->r[i].interval_ns)
            at = tat;
        gcra_take(&set->s[i]->g, &set->r[i], at);
    }
}

static void pacer_set_restore(struct pacer_set *set)
{
    for (size_t i = 0; i < set->m; i++)
        set->s[i]->g = set->before[i];
}

/* Mode hold at now_ns (under the lock, in a transaction): go when nothing
 * of the account waits, it is not paused and the buckets allow it; else
 * record it in the schedule. */
static bool pacer_decide_hold(struct pacer *p, struct pacer_set *set, const struct pacer_bucket *b,
                              const struct pacer_hold *hold, int64_t now_ns, struct pacer_decision *out,
                              struct buf *err)
{
    bool paused;
    int64_t held = holdq_held(p->st, b[0].key, &paused, err);
    if (held < 0)
        return false;
    if (held == 0 && !paused && out->wait_ns == 0) {
        pacer_set_take(set, now_ns);
        return pacer_write(p, set->s, set->m, err);
    }
    uint64_t before = (uint64_t)held;
    struct holdq_account a;
    memset(&a, 0, sizeof a);
    snprintf(a.account, sizeof a.account, "%s", b[0].key);
    snprintf(a.tenant, sizeof a.tenant, "%s", hold->tenant);
    snprintf(a.rule_account, sizeof a.rule_account, "%s", hold->rule_account);
    a.count = hold->rule->rate.count;
    a.period_s = hold->rule->rate.period_s;
    a.burst = hold->rule->burst;
    snprintf(a.unit, sizeof a.unit, "%s", hold->rule->rate.unit != NULL ? hold->rule->rate.unit : "period");
    if (!holdq_add(p->st, hold->queue_id, &a, now_ns, err))
        return false;
    out->verdict = PACER_HOLD;
    out->held_before = before;
    if (out->by == NULL)
        out->by = b[0].key;
    /* estimated: when the buckets let a release go (releases use no burst:
     * at the bucket's TAT), then one interval for each held before it */
    out->wait_ns = 0;
    for (size_t i = 0; i < set->m; i++) {
        int64_t tat = set->s[i]->g.tat_ns;
        if (tat > now_ns && tat - now_ns > out->wait_ns)
            out->wait_ns = tat - now_ns;
    }
    struct gcra_rate r;
    if (gcra_rate_init(&r, a.count, a.period_s, a.burst)) {
        int64_t more = before > (uint64_t)(INT64_MAX / r.interval_ns) ? INT64_MAX : (int64_t)before * r.interval_ns;
        out->wait_ns = out->wait_ns > INT64_MAX - more ? INT64_MAX : out->wait_ns + more;
    }
    return true;
}

bool pacer_decide(struct pacer *p, const struct pacer_bucket *b, size_t n, enum pace_mode mode,
                  uint64_t max_delay_ms, int64_t now_ns, const struct pacer_hold *hold,
                  struct pacer_decision *out, struct buf *err)
{
    memset(out, 0, sizeof *out);
    out->verdict = PACER_GO;
    if (mode == PACE_HOLD && (hold == NULL || hold->queue_id == NULL || !qid_valid(hold->queue_id) ||
                              hold->rule == NULL || n == 0)) {
        buf_reset(err);
        buf_printf(err, "mode hold needs the message's Postfix queue ID (macro {i}), got \"%s\"",
                   hold != NULL && hold->queue_id != NULL ? hold->queue_id : "");
        return false;
    }
    struct pacer_set set;
    pthread_mutex_lock(&p->mu);
    int64_t wait = pacer_set_wait(p, &set, b, n, now_ns, false, &out->by);
    out->wait_ns = wait;
    bool ok = true;
    if (mode == PACE_HOLD) {
        ok = store_begin(p->st, true, err) && pacer_decide_hold(p, &set, b, hold, now_ns, out, err) &&
             store_commit(p->st, err);
        if (!ok) {
            store_rollback(p->st);
            pacer_set_restore(&set);
            out->verdict = PACER_GO;
        }
        pthread_mutex_unlock(&p->mu);
        return ok;
    }
    bool take = true;
    if (wait > 0) {
        if (mode == PACE_DELAY && wait <= (int64_t)max_delay_ms * 1000000) {
            out->verdict = PACER_DELAY;
        } else {
            out->verdict = PACER_DEFER;
            take = false;
        }
    }
    if (take && set.m > 0) {
        pacer_set_take(&set, now_ns + wait);
        ok = store_begin(p->st, true, err) && pacer_write(p, set.s, set.m, err) && store_commit(p->st, err);
        if (!ok) { /* nothing charged */
            store_rollback(p->st);
            pacer_set_restore(&set);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* --- the release side ---------------------------------------------------- */

/* A struct pace from the rule recorded with a held account. */
static void pacer_recorded(const struct holdq_account *a, struct pace *pc)
{
    memset(pc, 0, sizeof *pc);
    pc->set = true;
    pc->rate.count = a->count;
    pc->rate.period_s = a->period_s;
    pc->rate.unit = a->unit;
    pc->burst = a->burst;
    pc->mode = PACE_HOLD;
}

/* The release side's look at one page of ready accounts (under the
 * lock): 1 when one was due (claimed and charged), 0 none, -1 failure. */
static int pacer_release_page(struct pacer *p, struct holdq_account *acc, size_t n, pacer_rules_fn *rules,
                              void *arg, int64_t now_ns, struct pacer_release *out, int64_t *next_ns,
                              struct buf *err)
{
    for (size_t i = 0; i < n; i++) {
        struct pace own_rule, tenant_rule;
        memset(&own_rule, 0, sizeof own_rule);
        memset(&tenant_rule, 0, sizeof tenant_rule);
        if (rules != NULL)
            rules(arg, &acc[i], &own_rule, &tenant_rule);
        const struct pace *own = own_rule.set ? &own_rule : NULL;
        const struct pace *tp = tenant_rule.set ? &tenant_rule : NULL;
        if (own == NULL && tp == NULL) {
            pacer_recorded(&acc[i], &own_rule);
            own = &own_rule;
        }
        struct pacer_bucket b[2] = { { acc[i].account, own }, { acc[i].tenant, tp } };
        struct pacer_set set;
        const char *by;
        int64_t wait = pacer_set_wait(p, &set, b, 2, now_ns, true, &by);
        if (wait > 0) {
            if (*next_ns == 0 || now_ns + wait < *next_ns)
                *next_ns = now_ns + wait;
            continue;
        }
        if (!store_begin(p->st, true, err))
            return -1;
        int got = holdq_claim_head(p->st, acc[i].account, now_ns, &out->msg, err);
        if (got == 1) {
            pacer_set_take_strict(&set, now_ns);
            if (!pacer_write(p, set.s, set.m, err))
                got = -1;
        }
        if (got < 0 || !store_commit(p->st, err)) {
            store_rollback(p->st);
            pacer_set_restore(&set);
            return -1;
        }
        if (got == 1) {
            out->account = acc[i];
            const struct pace *shown = own != NULL ? own : tp;
            snprintf(out->rate, sizeof out->rate, "%llu/%s, burst %llu", (unsigned long long)shown->rate.count,
                     shown->rate.unit != NULL ? shown->rate.unit : "period", (unsigned long long)shown->burst);
            return 1;
        }
    }
    return 0;
}

int pacer_release_next(struct pacer *p, pacer_rules_fn *rules, void *arg, int64_t now_ns,
                       struct pacer_release *out, int64_t *next_ns, struct buf *err)
{
    *next_ns = 0;
    memset(out, 0, sizeof *out);
    enum { PAGE = 32 }; /* accounts read at once, until one is due */
    struct holdq_account *acc = mem_grow(NULL, PAGE, sizeof *acc);
    struct holdq_account last;
    size_t n = PAGE;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    for (bool first = true; rc == 0 && n == PAGE; first = false) {
        if (!holdq_accounts_ready(p->st, first ? NULL : &last, PAGE, acc, &n, err)) {
            rc = -1;
            break;
        }
        if (n > 0)
            last = acc[n - 1];
        rc = pacer_release_page(p, acc, n, rules, arg, now_ns, out, next_ns, err);
    }
    pthread_mutex_unlock(&p->mu);
    mem_free(acc);
    return rc;
}

bool pacer_release_done(struct pacer *p, const char *queue_id, bool paced, int64_t now_ns, struct buf *err)
{
    pthread_mutex_lock(&p->mu);
    bool ok = store_begin(p->st, true, err) && holdq_done(p->st, queue_id, paced, now_ns, err) &&
              store_commit(p->st, err);
    if (!ok)
        store_rollback(p->st);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

bool pacer_release_undo(struct pacer *p, const char *queue_id, struct buf *err)
{
    pthread_mutex_lock(&p->mu);
    bool ok = holdq_unclaim(p->st, queue_id, err);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

bool pacer_release_claimed(struct pacer *p, struct holdq_msg **out, size_t *n, struct buf *err)
{
    pthread_mutex_lock(&p->mu);
    bool ok = holdq_list(p->st, NULL, true, 0, out, n, err);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

int pacer_held_any(struct pacer *p, struct buf *err)
{
    pthread_mutex_lock(&p->mu);
    struct holdq_msg *v = NULL;
    size_t n = 0;
    int rc = holdq_list(p->st, NULL, false, 1, &v, &n, err) ? n > 0 : -1;
    mem_free(v);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

bool pacer_held_all(struct pacer *p, struct holdq_msg **out, size_t *n, struct buf *err)
{
    pthread_mutex_lock(&p->mu);
    bool ok = holdq_list(p->st, NULL, false, 0, out, n, err);
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
