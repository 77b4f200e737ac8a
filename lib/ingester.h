/* ingester.h: a thread that moves a journal (journal.h) into its store
 * every interval, at nice 10 (behind the threads that serve): one
 * journal_ingest() transaction per round of at most max_rows records,
 * rounds repeated while the journal has more; an error is logged once per
 * distinct message (event=ingest_error, "decisions stay in the journal")
 * and the recovery once (event=ingest status=ok).  It keeps its own
 * journal_cursor, so that a round reads on where the last one stopped.
 * Used by postern-policyd and postern-milter.
 *
 * Threads: ingester_start() and ingester_stop() are called by the thread
 * that owns the store (and not concurrently); ingester_ingested() and
 * ingester_count() by any thread while the ingester runs. */
#ifndef POSTERN_INGESTER_H
#define POSTERN_INGESTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

struct ingester;

/* Called by the thread after each interval's rounds (may be NULL), with
 * the store: e.g. policyd polls its counter reset requests there.  Not
 * called by ingester_stop()'s last ingestion. */
typedef void (*ingester_round_cb)(void *arg, struct store *s);

/* Start the thread on store s (which it then owns the use of, until
 * ingester_stop()) and journal directory dir.  The store's ingested id is
 * read first (in the caller's thread), so that ingester_ingested() is
 * right from the start.  interval_ms 0: 200; max_rows 0: no cap.  NULL
 * with err set. */
struct ingester *ingester_start(struct store *s, const char *dir, unsigned interval_ms, size_t max_rows,
                                ingester_round_cb round, void *arg, struct buf *err);
/* The journal id the store holds through (any thread). */
int64_t ingester_ingested(const struct ingester *g);
/* Records moved so far (any thread). */
uint64_t ingester_count(const struct ingester *g);
/* Stop the thread, ingest what is left (one last time, in the caller's
 * thread; an error is logged as in the thread), free.  The store is the
 * caller's again.  Returns ingester_count() after that last ingestion
 * (0 for NULL, which is a no-op). */
uint64_t ingester_stop(struct ingester *g);

#endif
