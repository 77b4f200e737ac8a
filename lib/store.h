/* store.h: postern's SQLite state file (quota counters, audit trail):
 * opening with the right pragmas, versioned schema migrations, a cache of
 * prepared statements and transaction helpers for the modules that keep
 * their data in it (audit.c, counters_sqlite.c).
 *
 * Threads and processes: a store handle belongs to one thread at a time
 * (it is opened SQLITE_OPEN_NOMUTEX and its statement cache is not
 * locked).  Each thread or daemon opens its own handle on the file; SQLite
 * does the locking between handles and processes (WAL, busy timeout).
 * Never use a handle inherited across fork(): open a new one in the child.
 *
 * Errors never abort: every call that can fail returns false (or NULL)
 * and overwrites err with "FILE: what failed: SQLite's message", so that a
 * daemon can turn it into its configured on_error answer. */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H
#include <stdbool.h>

#include "buf.h"

struct store;
struct sqlite3_stmt; /* = sqlite3_stmt of <sqlite3.h> */

/* The schema version this code writes (PRAGMA user_version). */
int store_schema_latest(void);

enum store_flags {
    STORE_READONLY = 1 << 0,    /* posternctl: no migration, no writes */
    STORE_SYNC_NORMAL = 1 << 1, /* trade power-loss durability for speed */
    STORE_NO_AUTOCHECKPOINT = 1 << 2, /* a store_checkpointer does the checkpoints */
};
#define STORE_BUSY_TIMEOUT_MS 5000

/* Open (creating if needed, unless STORE_READONLY) the database at path
 * (":memory:" for a private in-memory one) and bring its schema up to
 * date.  A database written by a newer postern is refused.  flags: a
 * combination of enum store_flags, 0 for a daemon's read-write handle.
 * NULL on failure, with err set. */
struct store *store_open(const char *path, unsigned flags, struct buf *err);
void store_close(struct store *s);
const char *store_path(const struct store *s);
/* The schema version of the open database. */
int store_schema_version(const struct store *s);

/* --- for modules that keep their data in the store ---------------------
 * A cached prepared statement for a constant SQL text (the cache is keyed
 * by the text), reset and with its bindings cleared.  Values are always
 * bound, never formatted into SQL.  Call store_stmt_done() when finished
 * with it so that it holds no read lock. */
struct sqlite3_stmt *store_stmt(struct store *s, const char *sql, struct buf *err);
void store_stmt_done(struct sqlite3_stmt *st);

enum store_step { STORE_ROW, STORE_DONE, STORE_FAIL };
/* sqlite3_step(); on failure err gets "FILE: what: SQLite's message". */
enum store_step store_step(struct store *s, struct sqlite3_stmt *st, const char *what,
                           struct buf *err);

/* BEGIN IMMEDIATE (write: takes the write lock now, so the reads that
 * follow are not invalidated by another writer) or BEGIN (read snapshot). */
bool store_begin(struct store *s, bool write, struct buf *err);
/* COMMIT; on failure the transaction is rolled back. */
bool store_commit(struct store *s, struct buf *err);
/* ROLLBACK if a transaction is open; never fails. */
void store_rollback(struct store *s);
/* Group commit: a daemon opens one batch (BEGIN IMMEDIATE) for the
 * requests it serves in one turn of its event loop, lets each module work
 * inside it (their store_begin/commit become savepoints, audit records may
 * be written), then commits the batch once, before it sends any reply that
 * depends on it.  A failed commit loses the whole batch: every reply of
 * the batch must then be the daemon's on_error answer. */
bool store_batch_begin(struct store *s, struct buf *err);
bool store_batch_commit(struct store *s, struct buf *err);
void store_batch_rollback(struct store *s);
bool store_in_batch(const struct store *s);

/* A thread with its own connection that checkpoints the WAL of path every
 * interval_ms (PASSIVE: never waits for, nor blocks, the writer), so that a
 * daemon whose handle has STORE_NO_AUTOCHECKPOINT never stalls a request
 * for a checkpoint.  NULL with err set when it cannot start. */
struct store_checkpointer;
struct store_checkpointer *store_checkpointer_start(const char *path, unsigned interval_ms, struct buf *err);
/* Stop the thread (after one last checkpoint) and free it. */
void store_checkpointer_stop(struct store_checkpointer *cp);

/* True when no explicit transaction is open on the handle. */
bool store_autocommit(const struct store *s);

/* err = "FILE: what: SQLite's last error message on this handle". */
void store_error(const struct store *s, const char *what, struct buf *err);

#endif
