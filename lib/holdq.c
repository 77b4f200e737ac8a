/* holdq.c: the hold-mode schedule's rows in the pace store (see holdq.h). */
#include "holdq.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static void holdq_copy(char *dst, size_t size, sqlite3_stmt *q, int col)
{
    const char *s = (const char *)sqlite3_column_text(q, col);
    snprintf(dst, size, "%s", s != NULL ? s : "");
}

/* Run a statement that returns no row. */
static bool holdq_exec(struct store *st, sqlite3_stmt *q, const char *what, struct buf *err)
{
    enum store_step r = store_step(st, q, what, err);
    store_stmt_done(q);
    return r == STORE_DONE;
}

/* Insert or update an account's row: its rule (hold: a message of it is
 * held under that rule) or only its pause flag (posternctl). */
static bool holdq_account_upsert(struct store *st, const struct holdq_account *a, bool hold, struct buf *err)
{
    sqlite3_stmt *q = store_stmt(st,
                                 hold ? "INSERT INTO pace_account (account, tenant, rule_account, count, period_s, "
                                        "burst, unit, paused) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                                        "ON CONFLICT (account) DO UPDATE SET tenant = excluded.tenant, "
                                        "rule_account = excluded.rule_account, count = excluded.count, "
                                        "period_s = excluded.period_s, burst = excluded.burst, unit = excluded.unit"
                                      : "INSERT INTO pace_account (account, tenant, rule_account, count, period_s, "
                                        "burst, unit, paused) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                                        "ON CONFLICT (account) DO UPDATE SET paused = excluded.paused",
                                 err);
    if (q == NULL)
        return false;
    sqlite3_bind_text(q, 1, a->account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, a->rule_account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)a->count);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)a->period_s);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)a->burst);
    sqlite3_bind_text(q, 7, a->unit, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 8, hold ? 0 : a->paused);
    return holdq_exec(st, q, "recording a paced account", err);
}

bool holdq_add(struct store *st, const char *queue_id, const struct holdq_account *a, int64_t now_ns,
               struct buf *err)
{
    if (!holdq_account_upsert(st, a, true, err))
        return false;
    sqlite3_stmt *q;
    /* a reused queue ID: the old message is gone (its row goes, the
     * trigger keeps the counts) */
    q = store_stmt(st, "DELETE FROM pace_held WHERE queue_id = ?1", err);
    if (q == NULL)
        return false;
    sqlite3_bind_text(q, 1, queue_id, -1, SQLITE_STATIC);
    if (!holdq_exec(st, q, "replacing a reused queue ID", err))
        return false;
    q = store_stmt(st, "INSERT INTO pace_held (queue_id, account, held_ns) VALUES (?1, ?2, ?3)", err);
    if (q == NULL)
        return false;
    sqlite3_bind_text(q, 1, queue_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a->account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, now_ns);
    return holdq_exec(st, q, "recording a held message", err);
}

int holdq_pending(struct store *st, const char *account, bool *paused, struct buf *err)
{
    *paused = false;
    sqlite3_stmt *q = store_stmt(st, "SELECT paused, held > 0 FROM pace_account WHERE account = ?1", err);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    enum store_step r = store_step(st, q, "reading a paced account", err);
    int out = 0;
    if (r == STORE_ROW) {
        *paused = sqlite3_column_int(q, 0) != 0;
        out = sqlite3_column_int(q, 1) != 0;
    }
    store_stmt_done(q);
    return r == STORE_FAIL ? -1 : out;
}

#define HOLDQ_ACCOUNT_COLS                                                                     \
    "a.account, a.tenant, a.rule_account, a.count, a.period_s, a.burst, a.unit, a.paused, " \
    "a.last_release_ns, a.held, a.claimed"

/* held_ns of the account's first message by seq: the first waiting one
 * (through the index, in seq order) or a claimed one before it (claimed
 * ones are few).  Never a scan of all the account's rows: pacer_decide()
 * reads it at every hold, pacer_release_next() at every release. */
#define HOLDQ_OLDEST                                                                                       \
    "(SELECT held_ns FROM (SELECT * FROM (SELECT seq, held_ns FROM pace_held h WHERE h.account = a.account " \
    "AND h.claimed_ns = 0 ORDER BY h.seq LIMIT 1) UNION ALL SELECT seq, held_ns FROM pace_held h "        \
    "WHERE h.account = a.account AND h.claimed_ns > 0) ORDER BY seq LIMIT 1)"

static void holdq_account_row(sqlite3_stmt *q, struct holdq_account *a)
{
    memset(a, 0, sizeof *a);
    holdq_copy(a->account, sizeof a->account, q, 0);
    holdq_copy(a->tenant, sizeof a->tenant, q, 1);
    holdq_copy(a->rule_account, sizeof a->rule_account, q, 2);
    a->count = (uint64_t)sqlite3_column_int64(q, 3);
    a->period_s = (uint64_t)sqlite3_column_int64(q, 4);
    a->burst = (uint64_t)sqlite3_column_int64(q, 5);
    holdq_copy(a->unit, sizeof a->unit, q, 6);
    a->paused = sqlite3_column_int(q, 7) != 0;
    a->last_release_ns = sqlite3_column_int64(q, 8);
    a->held = (uint64_t)sqlite3_column_int64(q, 9);
    a->claimed = (uint64_t)sqlite3_column_int64(q, 10);
}

int64_t holdq_held(struct store *st, const char *account, bool *paused, struct buf *err)
{
    *paused = false;
    sqlite3_stmt *q = store_stmt(st, "SELECT paused, held FROM pace_account WHERE account = ?1", err);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    enum store_step r = store_step(st, q, "reading a paced account", err);
    int64_t out = 0;
    if (r == STORE_ROW) {
        *paused = sqlite3_column_int(q, 0) != 0;
        out = sqlite3_column_int64(q, 1);
    }
    store_stmt_done(q);
    return r == STORE_FAIL ? -1 : out;
}

bool holdq_accounts_ready(struct store *st, const struct holdq_account *after, size_t limit,
                          struct holdq_account *out, size_t *n, struct buf *err)
{
    *n = 0;
    /* both through the partial index pace_account_ready */
    sqlite3_stmt *q = store_stmt(st,
                                 after == NULL
                                     ? "SELECT " HOLDQ_ACCOUNT_COLS " FROM pace_account a WHERE a.paused = 0 AND "
                                       "a.held > a.claimed ORDER BY a.last_release_ns, a.account LIMIT ?3"
                                     : "SELECT " HOLDQ_ACCOUNT_COLS " FROM pace_account a WHERE a.paused = 0 AND "
                                       "a.held > a.claimed AND (a.last_release_ns, a.account) > (?2, ?1) "
                                       "ORDER BY a.last_release_ns, a.account LIMIT ?3",
                                 err);
    if (q == NULL)
        return false;
    if (after != NULL) {
        sqlite3_bind_text(q, 1, after->account, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, after->last_release_ns);
    }
    sqlite3_bind_int64(q, 3, (sqlite3_int64)limit);
    enum store_step r;
    while (*n < limit && (r = store_step(st, q, "listing the paced accounts", err)) == STORE_ROW)
        holdq_account_row(q, &out[(*n)++]);
    store_stmt_done(q);
    return *n == limit || r != STORE_FAIL;
}

int holdq_account_get(struct store *st, const char *account, struct holdq_account *out, struct buf *err)
{
    sqlite3_stmt *q = store_stmt(st, "SELECT " HOLDQ_ACCOUNT_COLS ", " HOLDQ_OLDEST " "
                                     "FROM pace_account a WHERE a.account = ?1",
                                 err);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    enum store_step r = store_step(st, q, "reading a paced account", err);
    if (r == STORE_ROW) {
        holdq_account_row(q, out);
        out->oldest_ns = sqlite3_column_int64(q, 11);
    }
    store_stmt_done(q);
    return r == STORE_FAIL ? -1 : r == STORE_ROW;
}

bool holdq_accounts(struct store *st, bool ready_only, struct holdq_account **out, size_t *n,
                    struct buf *err)
{
    *out = NULL;
    *n = 0;
    const char *sql_ready =
        "SELECT " HOLDQ_ACCOUNT_COLS ", " HOLDQ_OLDEST " FROM pace_account a "
        "WHERE a.paused = 0 AND a.held > a.claimed ORDER BY a.last_release_ns, a.account";
    const char *sql_all =
        "SELECT " HOLDQ_ACCOUNT_COLS ", " HOLDQ_OLDEST " FROM pace_account a "
        "WHERE a.held > 0 OR a.paused != 0 ORDER BY a.account";
    sqlite3_stmt *q = store_stmt(st, ready_only ? sql_ready : sql_all, err);
    if (q == NULL)
        return false;
    enum store_step r;
    size_t cap = 0;
    while ((r = store_step(st, q, "listing the paced accounts", err)) == STORE_ROW) {
        if (*n == cap) {
            cap = cap != 0 ? cap * 2 : 8;
            *out = mem_grow(*out, cap, sizeof **out);
        }
        holdq_account_row(q, &(*out)[*n]);
        (*out)[*n].oldest_ns = sqlite3_column_int64(q, 11);
        (*n)++;
    }
    store_stmt_done(q);
    if (r == STORE_FAIL) {
        mem_free(*out);
        *out = NULL;
        *n = 0;
        return false;
    }
    return true;
}

static void holdq_msg_row(sqlite3_stmt *q, struct holdq_msg *m)
{
    memset(m, 0, sizeof *m);
    holdq_copy(m->queue_id, sizeof m->queue_id, q, 0);
    holdq_copy(m->account, sizeof m->account, q, 1);
    m->seq = sqlite3_column_int64(q, 2);
    m->held_ns = sqlite3_column_int64(q, 3);
    m->claimed_ns = sqlite3_column_int64(q, 4);
}

int holdq_claim_head(struct store *st, const char *account, int64_t now_ns, struct holdq_msg *m,
                     struct buf *err)
{
    sqlite3_stmt *q = store_stmt(st,
                                 "UPDATE pace_held SET claimed_ns = ?2 WHERE seq = (SELECT seq FROM pace_held "
                                 "WHERE account = ?1 AND claimed_ns = 0 ORDER BY seq LIMIT 1) "
                                 "RETURNING queue_id, account, seq, held_ns, claimed_ns",
                                 err);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, now_ns > 0 ? now_ns : 1);
    enum store_step r = store_step(st, q, "claiming a held message", err);
    if (r == STORE_ROW) {
        holdq_msg_row(q, m);
        r = store_step(st, q, "claiming a held message", err); /* runs the statement to its end */
        if (r == STORE_FAIL) {
            store_stmt_done(q);
            return -1;
        }
        store_stmt_done(q);
        return 1;
    }
    store_stmt_done(q);
    return r == STORE_FAIL ? -1 : 0;
}

bool holdq_unclaim(struct store *st, const char *queue_id, struct buf *err)
{
    sqlite3_stmt *q = store_stmt(st, "UPDATE pace_held SET claimed_ns = 0 WHERE queue_id = ?1", err);
    if (q == NULL)
        return false;
    sqlite3_bind_text(q, 1, queue_id, -1, SQLITE_STATIC);
    return holdq_exec(st, q, "putting a held message back", err);
}

bool holdq_done(struct store *st, const char *queue_id, bool paced, int64_t now_ns, struct buf *err)
{
    if (paced) {
        sqlite3_stmt *q = store_stmt(st,
                                     "UPDATE pace_account SET last_release_ns = ?2 WHERE account = "
                                     "(SELECT account FROM pace_held WHERE queue_id = ?1)",
                                     err);
        if (q == NULL)
            return false;
        sqlite3_bind_text(q, 1, queue_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, now_ns);
        if (!holdq_exec(st, q, "recording a release", err))
            return false;
    }
    sqlite3_stmt *q = store_stmt(st, "DELETE FROM pace_held WHERE queue_id = ?1", err);
    if (q == NULL)
        return false;
    sqlite3_bind_text(q, 1, queue_id, -1, SQLITE_STATIC);
    return holdq_exec(st, q, "deleting a released message", err);
}

bool holdq_list(struct store *st, const char *account, bool claimed_only, size_t limit,
                struct holdq_msg **out, size_t *n, struct buf *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = store_stmt(st,
                                 "SELECT queue_id, account, seq, held_ns, claimed_ns FROM pace_held "
                                 "WHERE (?1 IS NULL OR account = ?1) AND (?2 = 0 OR claimed_ns != 0) "
                                 "ORDER BY seq LIMIT ?3",
                                 err);
    if (q == NULL)
        return false;
    if (account != NULL)
        sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, claimed_only);
    sqlite3_bind_int64(q, 3, limit > 0 && limit < INT64_MAX ? (sqlite3_int64)limit : -1);
    enum store_step r;
    size_t cap = 0;
    while ((r = store_step(st, q, "listing the held messages", err)) == STORE_ROW) {
        if (*n == cap) {
            cap = cap != 0 ? cap * 2 : 16;
            *out = mem_grow(*out, cap, sizeof **out);
        }
        holdq_msg_row(q, &(*out)[(*n)++]);
    }
    store_stmt_done(q);
    if (r == STORE_FAIL) {
        mem_free(*out);
        *out = NULL;
        *n = 0;
        return false;
    }
    return true;
}

int holdq_set_paused(struct store *st, const char *account, bool paused, struct buf *err)
{
    sqlite3_stmt *q = store_stmt(st, "UPDATE pace_account SET paused = ?2 WHERE account = ?1 RETURNING 1", err);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, paused);
    enum store_step r = store_step(st, q, "pausing an account", err);
    if (r == STORE_ROW)
        r = store_step(st, q, "pausing an account", err) == STORE_FAIL ? STORE_FAIL : STORE_ROW;
    store_stmt_done(q);
    return r == STORE_FAIL ? -1 : r == STORE_ROW;
}

bool holdq_account_put(struct store *st, const struct holdq_account *a, struct buf *err)
{
    return holdq_account_upsert(st, a, false, err);
}
