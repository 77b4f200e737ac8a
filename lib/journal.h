/* journal.h: the decision journal of postern-policyd, and its ingestion
 * into the store.
 *
 * Why: a decision must be durable before its reply is written.  Committing
 * it to the store (an audit row with three indexes, counter rows spread
 * over a large table) costs 20 to 30 random pages per batch, and SQLite
 * appends even a small table through its WAL and checkpoints: a reply
 * then waits for page writes it does not need.  The journal is a plain
 * append-only file: a batch of decisions is one write() of exactly its
 * records (plus fdatasync() with `sync: full`).  The counters the daemon
 * decides on live in memory (counters_mem) and are exactly the store's
 * counters plus the journal's deltas not yet ingested.
 *
 * Files: STATE/journal/<first id, 16 hex digits>.pj; a new file is begun
 * past JOURNAL_ROTATE_BYTES; a file whose records were all ingested is
 * deleted by the writer.  A record: magic "PJR1", payload length and CRC-32
 * (little-endian u32 each), then the payload: id, time, the audit record's
 * fields, the counter deltas of the decision, or a counter reset.  A
 * record cut short or with a bad CRC at the end of the newest file is a
 * write that did not finish (a crash): the writer cuts it off when it
 * opens the journal, readers stop there.
 *
 * Ingestion moves records, in id order, into the store: the audit record
 * to the audit table, the deltas added to the counters table, a reset
 * applied at its place in that order; the id ingested through is kept in
 * the store (ingest_state) in the same transaction, so an ingestion is all
 * or nothing and never counts a record twice.  The daemon ingests in a
 * thread of its own every few hundred milliseconds; posternctl ingests
 * before it reads, so what it shows is never behind the daemon. */
#ifndef POSTERN_JOURNAL_H
#define POSTERN_JOURNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "buf.h"
#include "counters.h"
#include "store.h"

/* The journal's directory in a state directory. */
#define JOURNAL_DIR "journal"
#define JOURNAL_ROTATE_BYTES (64u << 20)

/* --- the writer (the daemon's store thread) ------------------------------ */

struct journal;

/* Open the journal directory dir (created 0750 if missing) for appending:
 * cut off an unfinished record at the end of the newest file (logged),
 * and continue ids after its last record and after ingested (the store's
 * ingested id: a journal emptied by hand never reuses an id).  sync: call
 * fdatasync() at every commit.  NULL with err set. */
struct journal *journal_open(const char *dir, int64_t ingested, bool sync, struct buf *err);
void journal_close(struct journal *j);
const char *journal_dir(const struct journal *j);
/* The id the next record will get. */
int64_t journal_next_id(const struct journal *j);

/* A counter reset to journal with its audit record: the rows of keys
 * starting with one of prefixes[0..n), of the current windows
 * (unit = COUNTERS_CURRENT_WINDOWS) or of every window of one unit;
 * req_id: the store's reset_request it answers (0: none). */
struct journal_reset {
    const char *const *prefixes;
    size_t n;
    int unit;
    int64_t req_id;
    const char *result;         /* for the request: "key unit window_start window_end value\n" per row */
};

/* Add one record to the batch being built (records are kept in memory
 * until journal_commit()): the audit record (rec->time_us 0: now) with
 * the counter deltas its decision made (n may be 0), or a counter reset
 * (reset may be NULL).  Writes the record's audit log line, as
 * audit_write() does.  Returns the record's id.  A record without
 * component or action, or one over 16 MiB encoded (readers would take it
 * for damage), is refused (0, err set; no id is used). */
int64_t journal_add(struct journal *j, const struct audit_rec *rec, const struct counter_delta *deltas, size_t n,
                    const struct journal_reset *reset, struct buf *err);
/* Write the batch's records with one write() (and fdatasync() when sync),
 * begin a new file first when the current one is over the rotation size.
 * On failure the file is cut back to its size before the batch, the ids
 * of the batch will be given again, and err is set. */
bool journal_commit(struct journal *j, struct buf *err);
/* Forget the batch's records (their ids will be given again). */
void journal_rollback(struct journal *j);
/* Delete the files whose records are all at or below ingested (never the
 * file being written).  False with err set (nothing is lost: retried). */
bool journal_trim(struct journal *j, int64_t ingested, struct buf *err);

/* --- ingestion (into the store) ----------------------------------------- */

/* Where an ingestion stopped, so that the next one of the same process
 * reads on from there instead of from the start of the file. */
struct journal_cursor {
    int64_t file_first;         /* first id of the file (0: none) */
    int64_t offset;             /* offset of the record with id next_id */
    int64_t next_id;
};

/* Ingest the records of journal directory dir after the store's ingested
 * id, at most max_rows (0: all), in one store transaction.  cur may be
 * NULL.  *ingested = the ingested id after it, *n = records moved (either
 * may be NULL).  A corrupt record inside a file that is not the newest is
 * skipped with the rest of that file, with an error log line (journal_
 * corrupt) naming the file and offset.  False with err set (nothing
 * changed in the store). */
bool journal_ingest(struct store *s, const char *dir, size_t max_rows, struct journal_cursor *cur,
                    int64_t *ingested, size_t *n, struct buf *err);
/* The store's ingested id. */
bool journal_ingested(struct store *s, int64_t *ingested, struct buf *err);
/* Records in dir after the store's ingested id (not yet ingested). */
bool journal_pending(struct store *s, const char *dir, size_t *n, struct buf *err);

/* --- counter resets requested by posternctl ----------------------------
 * The daemon owns the counters while it runs, so posternctl does not
 * change them in the store: it queues a request in the store's
 * reset_request table; the daemon's ingest thread hands it to the store
 * thread, which resets its memory counters and journals a reset record
 * (with the rows it reset, in its audit record's counters field); the
 * ingestion of that record applies the reset to the store and marks the
 * request done, in one transaction. */
struct journal_reset_req {
    int64_t id;
    int64_t time_us;
    char *by;                   /* who asked ("uid 0 (root)") */
    char *tenant, *account;     /* for the audit record ("" when none) */
    char *what;                 /* what is reset, in words ("account bob@corp.example of tenant corp") */
    char **prefixes;
    size_t nprefixes;
    int unit;
};
void journal_reset_req_free(struct journal_reset_req *r);

/* posternctl: queue a request (r->id and r->time_us are ignored);
 * *req_id its id. */
bool journal_reset_request(struct store *s, const struct journal_reset_req *r, int64_t *req_id, struct buf *err);
/* The daemon: the requests not done with id > after, oldest first, to cb
 * (the request is freed after cb returns). */
typedef void (*journal_reset_cb)(const struct journal_reset_req *r, void *arg);
bool journal_reset_pending(struct store *s, int64_t after, journal_reset_cb cb, void *arg, struct buf *err);
/* posternctl: is request req_id done?  *done, and then result (one
 * "key unit window_start window_end value" line per row reset). */
bool journal_reset_status(struct store *s, int64_t req_id, bool *done, struct buf *result, struct buf *err);

#endif
