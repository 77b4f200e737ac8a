/* msink.h: where postern-milter's audit records go: its own journal
 * (STATE/milter-journal/, journal.h) written before the milter answers,
 * and a thread (ingester.h) that moves the journal into its own store
 * (STATE/milter.sqlite) every 0.2 s.  Called from libmilter's threads:
 * every function is thread-safe. */
#ifndef POSTERN_MILTER_MSINK_H
#define POSTERN_MILTER_MSINK_H
#include <stdbool.h>

#include "audit.h"
#include "buf.h"

#define MSINK_STORE_FILE "milter.sqlite"
#define MSINK_JOURNAL_DIR "milter-journal"

struct msink;

/* Open the store and the journal in state_dir (after the privilege drop,
 * so the files belong to the daemon's user), ingest what an earlier run
 * left in the journal, start the ingest thread.  sync: fdatasync the
 * journal at every record (postern.yaml policyd.sync: full).  NULL with
 * err set. */
struct msink *msink_open(const char *state_dir, bool sync, struct buf *err);
/* Journal one audit record (and write its log line) before returning.
 * False with err set: the caller answers with its on_error action. */
bool msink_write(struct msink *m, const struct audit_rec *rec, struct buf *err);
/* Stop the ingest thread after a last ingestion, close everything. */
void msink_close(struct msink *m);

#endif
