/* ingester.h: a thread that moves a journal (journal.h) into its store
 * every interval, at nice 10 (behind the threads that serve): one
 * journal_ingest() transaction per round of at most max_rows records,
 * rounds repeated while the journal has more; an error is logged once per
 * distinct message (event=ingest_error, "decisions stay in the journal")
 * and the recovery once (event=ingest status=ok).  Used by
 * postern-policyd and postern-milter. */
#ifndef POSTERN_INGESTER_H
#define POSTERN_INGESTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

struct ingester;

/* Called by the thread after each round (may be NULL): e.g. policyd polls
 * its counter reset requests there. */
typedef void (*ingester_round_cb)(void *arg, struct store *s);

/* Start the thread on store s (which it then owns the use of, until
 * ingester_stop()) and journal directory dir.  NULL with err set. */
struct ingester *ingester_start(struct store *s, const char *dir, unsigned interval_ms, size_t max_rows,
                                ingester_round_cb round, void *arg, struct buf *err);
/* The journal id the store holds through (any thread). */
int64_t ingester_ingested(const struct ingester *g);
/* Records moved so far. */
uint64_t ingester_count(const struct ingester *g);
/* Stop the thread, ingest what is left (one last time, in the caller's
 * thread), free.  The store is the caller's again. */
void ingester_stop(struct ingester *g);

#endif
