/* store.c: the SQLite state file: open with postern's pragmas, apply the
 * schema migrations in order, cache prepared statements (see store.h). */
#include "store.h"

#include <pthread.h>
#include <time.h>

#include <sqlite3.h>
#include <string.h>

#include "alloc.h"

/* Durability: synchronous=FULL.  An audit record and a quota increment
 * are committed before the reply that depends on them (DESIGN.md); with
 * WAL and synchronous=NORMAL a commit survives a crash of postern but not
 * a power loss or kernel panic, which could forget decisions already
 * answered (messages counted, audit rows) while Postfix has delivered the
 * mail.  FULL syncs the WAL at every commit: one fsync per decision, which
 * is small next to the rest of a message's path.  STORE_SYNC_NORMAL exists
 * for benchmarks and for installations that accept the trade-off. */
#define STORE_PRAGMAS_FULL "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
#define STORE_PRAGMAS_NORMAL "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"

/* The schema, one migration per version, applied in order, each in its
 * own transaction.  Entry i brings the database from version i to i+1 and
 * ends by setting user_version to i+1.  Never edit an entry that has been
 * released: append a new one.
 *
 * Counter values are uint64 stored in SQLite's signed 64-bit INTEGER as
 * the same bit pattern (values above INT64_MAX read back negative in the
 * sqlite3 shell).  Windows are Unix seconds; unit is the window unit's
 * name ("day").  audit.recipients holds one address per line. */
static const char *const store_migrations[] = {
    /* 1: the audit trail and the quota counters */
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " time_us INTEGER NOT NULL,"
    " component TEXT NOT NULL,"
    " tenant TEXT, account TEXT, client_ip TEXT, sasl_login TEXT, sender TEXT,"
    " recipients TEXT, queue_id TEXT, instance TEXT, stage TEXT,"
    " action TEXT NOT NULL, reason TEXT, rule TEXT, counters TEXT,"
    " latency_us INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX audit_time ON audit(time_us);"
    "CREATE INDEX audit_tenant ON audit(tenant, time_us);"
    "CREATE INDEX audit_queue_id ON audit(queue_id);"
    "CREATE TABLE counters ("
    " key TEXT NOT NULL,"
    " unit TEXT NOT NULL,"
    " window_start INTEGER NOT NULL,"
    " window_end INTEGER NOT NULL,"
    " value INTEGER NOT NULL,"
    " PRIMARY KEY (key, unit, window_start)) WITHOUT ROWID;"
    "CREATE INDEX counters_end ON counters(window_end);"
    "PRAGMA user_version = 1;",
    /* 2: policyd's journal (journal.h): the id ingested through, and the
     * counter resets posternctl asks the running daemon for */
    "CREATE TABLE ingest_state (journal_id INTEGER NOT NULL);"
    "INSERT INTO ingest_state (journal_id) VALUES (0);"
    "CREATE TABLE reset_request ("
    " id INTEGER PRIMARY KEY,"
    " time_us INTEGER NOT NULL,"
    " requested_by TEXT,"
    " tenant TEXT, account TEXT, what TEXT,"
    " prefixes TEXT NOT NULL,"
    " unit INTEGER NOT NULL,"
    " done_jid INTEGER,"
    " result TEXT);"
    "PRAGMA user_version = 2;",
    /* 3: the pacing buckets (milter/pacer.c): each bucket's theoretical
     * arrival time, wall-clock ns, so that a restart keeps the pace */
    "CREATE TABLE pace_bucket ("
    " key TEXT PRIMARY KEY,"
    " tat_ns INTEGER NOT NULL) WITHOUT ROWID;"
    "PRAGMA user_version = 3;",
    /* 4: the hold-mode schedule (holdq.h): the held messages in arrival
     * order (seq) and the paced accounts with their rule, pause flag and
     * held and claimed counts (kept by the triggers) */
    "CREATE TABLE pace_account ("
    " account TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " rule_account TEXT NOT NULL,"
    " count INTEGER NOT NULL, period_s INTEGER NOT NULL, burst INTEGER NOT NULL,"
    " unit TEXT NOT NULL,"
    " paused INTEGER NOT NULL DEFAULT 0,"
    " last_release_ns INTEGER NOT NULL DEFAULT 0,"
    " held INTEGER NOT NULL DEFAULT 0,"
    " claimed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE pace_held ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue_id TEXT NOT NULL UNIQUE,"
    " account TEXT NOT NULL REFERENCES pace_account(account),"
    " held_ns INTEGER NOT NULL,"
    " claimed_ns INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX pace_held_account ON pace_held(account, claimed_ns, seq);"
    "CREATE TRIGGER pace_held_add AFTER INSERT ON pace_held BEGIN"
    " UPDATE pace_account SET held = held + 1, claimed = claimed + (new.claimed_ns != 0)"
    " WHERE account = new.account; END;"
    "CREATE TRIGGER pace_held_del AFTER DELETE ON pace_held BEGIN"
    " UPDATE pace_account SET held = held - 1, claimed = claimed - (old.claimed_ns != 0)"
    " WHERE account = old.account; END;"
    "CREATE TRIGGER pace_held_claim AFTER UPDATE OF claimed_ns ON pace_held"
    " WHEN (old.claimed_ns = 0) != (new.claimed_ns = 0) BEGIN"
    " UPDATE pace_account SET claimed = claimed + (CASE WHEN new.claimed_ns != 0 THEN 1 ELSE -1 END)"
    " WHERE account = new.account; END;"
    /* the accounts with a message waiting, in release order, without a
     * look into pace_held per account (the release scheduler's question) */
    "CREATE INDEX pace_account_ready ON pace_account(last_release_ns, account)"
    " WHERE paused = 0 AND held > claimed;"
    "PRAGMA user_version = 4;",
    /* 5: Postfix's mail log as posternctl ingest reads it (maillog.h), in
     * state_dir/maillog.sqlite: one row per event of a message, unique so
     * that a line read twice (the same file again, a rotated copy, a
     * duplicated line) adds nothing; and each file read through where.
     * The uniqueness key is (queue_id, ukey), ukey a 64-bit hash of the
     * event's identity (time_us, kind, rcpt, status: ctl_maillog.c), so
     * that its index is narrow and serves "WHERE queue_id = ?" too; the
     * time index holds the deliveries only (the bounce and stats reads). */
    "CREATE TABLE maillog_event ("
    " id INTEGER PRIMARY KEY,"
    " time_us INTEGER NOT NULL,"
    " queue_id TEXT NOT NULL,"
    " ukey INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " service TEXT NOT NULL DEFAULT '',"
    " rcpt TEXT NOT NULL DEFAULT '',"
    " orig_rcpt TEXT,"
    " relay TEXT,"
    " delay_us INTEGER,"
    " dsn TEXT,"
    " status TEXT NOT NULL DEFAULT '',"
    " reply TEXT,"
    " sender TEXT,"
    " detail TEXT,"
    " UNIQUE (queue_id, ukey));"
    "CREATE INDEX maillog_event_rcpt ON maillog_event(rcpt, time_us) WHERE rcpt != '';"
    "CREATE INDEX maillog_event_time ON maillog_event(time_us) WHERE kind = 'delivery';"
    "CREATE TABLE maillog_file ("
    " path TEXT PRIMARY KEY,"
    " dev INTEGER NOT NULL,"
    " ino INTEGER NOT NULL,"
    " head TEXT NOT NULL,"
    " offset INTEGER NOT NULL,"
    " lines INTEGER NOT NULL DEFAULT 0,"
    " updated_us INTEGER NOT NULL);"
    "PRAGMA user_version = 5;",
};
#define STORE_NMIGRATIONS ((int)(sizeof store_migrations / sizeof store_migrations[0]))

struct store {
    sqlite3 *db;
    char *path;
    unsigned flags;
    int version;
    sqlite3_stmt **stmts; /* the statement cache, keyed by sqlite3_sql() */
    size_t nstmts, capstmts;
    bool batch;           /* a group-commit transaction is open */
};

int store_schema_latest(void)
{
    return STORE_NMIGRATIONS;
}

const char *store_path(const struct store *s)
{
    return s->path;
}

int store_schema_version(const struct store *s)
{
    return s->version;
}

void store_error(const struct store *s, const char *what, struct buf *err)
{
    buf_reset(err);
    buf_printf(err, "%s: %s: %s", s->path, what,
               s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
}

bool store_autocommit(const struct store *s)
{
    return sqlite3_get_autocommit(s->db) != 0;
}

sqlite3_stmt *store_stmt(struct store *s, const char *sql, struct buf *err)
{
    for (size_t i = 0; i < s->nstmts; i++)
        if (strcmp(sqlite3_sql(s->stmts[i]), sql) == 0) {
            sqlite3_reset(s->stmts[i]);
            sqlite3_clear_bindings(s->stmts[i]);
            return s->stmts[i];
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        store_error(s, "preparing SQL", err);
        sqlite3_finalize(st);
        return NULL;
    }
    if (s->nstmts == s->capstmts) {
        s->capstmts = s->capstmts ? s->capstmts * 2 : 16;
        s->stmts = mem_grow(s->stmts, s->capstmts, sizeof *s->stmts);
    }
    s->stmts[s->nstmts++] = st;
    return st;
}

void store_stmt_done(sqlite3_stmt *st)
{
    if (st != NULL)
        sqlite3_reset(st);
}

enum store_step store_step(struct store *s, sqlite3_stmt *st, const char *what, struct buf *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_ROW;
    if (rc == SQLITE_DONE)
        return STORE_DONE;
    store_error(s, what, err);
    sqlite3_reset(st);
    return STORE_FAIL;
}

/* Run a constant statement that returns no row (BEGIN, COMMIT, ...). */
static bool store_run(struct store *s, const char *sql, const char *what, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, sql, err);
    if (st == NULL)
        return false;
    enum store_step r = store_step(s, st, what, err);
    store_stmt_done(st);
    return r != STORE_FAIL;
}

/* Inside a batch, a module's transaction is a savepoint of the batch:
 * its rollback undoes only its own work, its commit waits for the batch. */
bool store_begin(struct store *s, bool write, struct buf *err)
{
    if (s->batch)
        return store_run(s, "SAVEPOINT unit", "starting a savepoint", err);
    if (write)
        return store_run(s, "BEGIN IMMEDIATE", "starting a write transaction", err);
    return store_run(s, "BEGIN", "starting a read transaction", err);
}

void store_rollback(struct store *s)
{
    if (s->batch) {
        sqlite3_exec(s->db, "ROLLBACK TO unit", NULL, NULL, NULL);
        sqlite3_exec(s->db, "RELEASE unit", NULL, NULL, NULL);
        if (sqlite3_get_autocommit(s->db))
            s->batch = false; /* SQLite ended the whole transaction (I/O error) */
        return;
    }
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

bool store_commit(struct store *s, struct buf *err)
{
    if (s->batch) {
        if (store_run(s, "RELEASE unit", "releasing a savepoint", err))
            return true;
        store_rollback(s);
        return false;
    }
    if (store_run(s, "COMMIT", "committing", err))
        return true;
    store_rollback(s);
    return false;
}

bool store_batch_begin(struct store *s, struct buf *err)
{
    if (s->batch)
        return true;
    if (!store_run(s, "BEGIN IMMEDIATE", "starting a batch", err))
        return false;
    s->batch = true;
    return true;
}

bool store_batch_commit(struct store *s, struct buf *err)
{
    if (!s->batch)
        return true;
    s->batch = false;
    if (store_run(s, "COMMIT", "committing a batch", err))
        return true;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return false;
}

void store_batch_rollback(struct store *s)
{
    s->batch = false;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

bool store_in_batch(const struct store *s)
{
    return s->batch;
}

static bool store_read_version(struct store *s, int *version, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, "PRAGMA user_version", err);
    if (st == NULL)
        return false;
    enum store_step r = store_step(s, st, "reading the schema version", err);
    if (r == STORE_ROW)
        *version = sqlite3_column_int(st, 0);
    store_stmt_done(st);
    return r == STORE_ROW;
}

static bool store_version_known(const struct store *s, int version, struct buf *err)
{
    if (version >= 0 && version <= STORE_NMIGRATIONS)
        return true;
    buf_reset(err);
    if (version < 0) {
        buf_printf(err, "%s: invalid schema version %d", s->path, version);
        return false;
    }
    buf_printf(err,
               "%s: schema version %d was written by a newer postern "
               "(this one knows up to version %d): upgrade postern",
               s->path, version, STORE_NMIGRATIONS);
    return false;
}

/* Run migration v+1 (store_migrations[v]) inside the open transaction. */
static bool store_apply(struct store *s, int v, struct buf *err)
{
    struct buf what;
    buf_init(&what);
    buf_printf(&what, "applying schema migration %d", v + 1);
    bool ok = sqlite3_exec(s->db, store_migrations[v], NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        store_error(s, what.data, err);
    buf_free(&what);
    int now = 0;
    if (!ok || !store_read_version(s, &now, err))
        return false;
    if (now != v + 1) {
        buf_reset(err);
        buf_printf(err, "%s: schema migration %d did not set its version", s->path, v + 1);
        return false;
    }
    return true;
}

/* Apply the migration after the current version in one transaction;
 * *done when the schema is already current (maybe thanks to another
 * process that migrated it concurrently). */
static bool store_migrate_step(struct store *s, bool *done, struct buf *err)
{
    int v = 0;
    if (!store_begin(s, true, err))
        return false;
    if (!store_read_version(s, &v, err) || !store_version_known(s, v, err)) {
        store_rollback(s);
        return false;
    }
    *done = v == STORE_NMIGRATIONS;
    if (!*done && !store_apply(s, v, err)) {
        store_rollback(s);
        return false;
    }
    return store_commit(s, err);
}

static bool store_migrate(struct store *s, struct buf *err)
{
    if (!store_read_version(s, &s->version, err) || !store_version_known(s, s->version, err))
        return false;
    if (s->flags & STORE_READONLY) {
        if (s->version == STORE_NMIGRATIONS)
            return true;
        buf_reset(err);
        buf_printf(err,
                   "%s: schema version %d is older than this postern's %d: "
                   "open it read-write once (start the daemon) to upgrade it",
                   s->path, s->version, STORE_NMIGRATIONS);
        return false;
    }
    bool done = s->version == STORE_NMIGRATIONS;
    while (!done)
        if (!store_migrate_step(s, &done, err))
            return false;
    s->version = STORE_NMIGRATIONS;
    return true;
}

static bool store_set_wal(struct store *s, struct buf *err)
{
    if ((s->flags & STORE_NO_AUTOCHECKPOINT) && !(s->flags & STORE_READONLY))
        sqlite3_wal_autocheckpoint(s->db, 0);
    sqlite3_stmt *st = store_stmt(s, "PRAGMA journal_mode = WAL", err);
    if (st == NULL)
        return false;
    enum store_step r = store_step(s, st, "setting the WAL journal mode", err);
    bool ok = r == STORE_ROW;
    if (ok) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        ok = mode != NULL && (strcmp(mode, "wal") == 0 || strcmp(s->path, ":memory:") == 0);
        if (!ok) {
            buf_reset(err);
            buf_printf(err, "%s: cannot use the WAL journal mode (got %s)", s->path,
                       mode != NULL ? mode : "nothing");
        }
    }
    store_stmt_done(st);
    return ok;
}

static bool store_configure(struct store *s, struct buf *err)
{
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    const char *pragmas = (s->flags & STORE_SYNC_NORMAL) ? STORE_PRAGMAS_NORMAL : STORE_PRAGMAS_FULL;
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        store_error(s, "setting pragmas", err);
        return false;
    }
    if (!(s->flags & STORE_READONLY) && !store_set_wal(s, err))
        return false;
    return store_migrate(s, err);
}

struct store *store_open(const char *path, unsigned flags, struct buf *err)
{
    struct store *s = mem_alloc(sizeof *s);
    s->path = mem_strdup(path);
    s->flags = flags;
    int oflags = SQLITE_OPEN_NOMUTEX;
    oflags |= (flags & STORE_READONLY) ? SQLITE_OPEN_READONLY
                                       : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, oflags, NULL) != SQLITE_OK) {
        store_error(s, "cannot open database", err);
        store_close(s);
        return NULL;
    }
    if (!store_configure(s, err)) {
        store_close(s);
        return NULL;
    }
    return s;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nstmts; i++)
        sqlite3_finalize(s->stmts[i]);
    mem_free(s->stmts);
    if (s->db != NULL) {
        store_rollback(s);
        sqlite3_close(s->db);
    }
    mem_free(s->path);
    mem_free(s);
}

/* --- background checkpoints ----------------------------------------------- */

struct store_checkpointer {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    unsigned interval_ms;
};

/* Under a steady write load a PASSIVE checkpoint never sees every frame
 * backfilled at the moment a writer starts, so the WAL never restarts and
 * grows without end.  Past STORE_WAL_RESTART_FRAMES a RESTART checkpoint
 * waits (busy timeout) for the writer's current batch, copies the few
 * frames left and makes the next writer start the WAL over: its file keeps
 * its size, so its blocks are reused instead of allocated and zeroed. */
#define STORE_WAL_RESTART_FRAMES 4096

static void store_checkpoint_once(sqlite3 *db)
{
    int nlog = -1, nckpt = -1;
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
    if (nlog > STORE_WAL_RESTART_FRAMES)
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &nlog, &nckpt);
}

static void *store_checkpointer_main(void *arg)
{
    struct store_checkpointer *cp = arg;
    pthread_mutex_lock(&cp->lock);
    while (!cp->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += cp->interval_ms / 1000;
        until.tv_nsec += (long)(cp->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cp->wake, &cp->lock, &until);
        pthread_mutex_unlock(&cp->lock);
        store_checkpoint_once(cp->db);
        pthread_mutex_lock(&cp->lock);
    }
    pthread_mutex_unlock(&cp->lock);
    return NULL;
}

struct store_checkpointer *store_checkpointer_start(const char *path, unsigned interval_ms, struct buf *err)
{
    struct store_checkpointer *cp = mem_alloc(sizeof *cp);
    cp->interval_ms = interval_ms ? interval_ms : 1000;
    if (sqlite3_open_v2(path, &cp->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        buf_reset(err);
        buf_printf(err, "%s: opening the checkpoint connection: %s", path, sqlite3_errmsg(cp->db));
        sqlite3_close(cp->db);
        mem_free(cp);
        return NULL;
    }
    sqlite3_busy_timeout(cp->db, STORE_BUSY_TIMEOUT_MS);
    /* A connection learns that the file is in WAL mode when it first reads
     * it; until then a checkpoint is a silent no-op. */
    sqlite3_exec(cp->db, "PRAGMA journal_mode", NULL, NULL, NULL);
    pthread_mutex_init(&cp->lock, NULL);
    pthread_cond_init(&cp->wake, NULL);
    if (pthread_create(&cp->thread, NULL, store_checkpointer_main, cp) != 0) {
        buf_reset(err);
        buf_printf(err, "%s: cannot start the checkpoint thread", path);
        pthread_mutex_destroy(&cp->lock);
        pthread_cond_destroy(&cp->wake);
        sqlite3_close(cp->db);
        mem_free(cp);
        return NULL;
    }
    return cp;
}

void store_checkpointer_stop(struct store_checkpointer *cp)
{
    if (cp == NULL)
        return;
    pthread_mutex_lock(&cp->lock);
    cp->stop = true;
    pthread_cond_signal(&cp->wake);
    pthread_mutex_unlock(&cp->lock);
    pthread_join(cp->thread, NULL);
    pthread_mutex_destroy(&cp->lock);
    pthread_cond_destroy(&cp->wake);
    sqlite3_close(cp->db);
    mem_free(cp);
}
