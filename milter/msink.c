/* msink.c: postern-milter's audit sink (msink.h): a journal written under
 * a mutex, one record per write (the milter audits one record per
 * message, so a batch would gain nothing), and an ingester moving it into
 * milter.sqlite.  Journal files all ingested are deleted by the writer
 * every MSINK_TRIM_EVERY records. */
#include "msink.h"

#include <pthread.h>
#include <stdint.h>

#include "alloc.h"
#include "ingester.h"
#include "journal.h"
#include "log.h"
#include "store.h"

#define MSINK_INGEST_MS 200
#define MSINK_INGEST_MAX_ROWS 20000
#define MSINK_CHECKPOINT_MS 500
#define MSINK_TRIM_EVERY 256

struct msink {
    struct store *store;           /* the ingester's while it runs */
    struct store_checkpointer *checkpointer;
    struct ingester *ingester;
    pthread_mutex_t mu;            /* guards journal and since_trim */
    struct journal *journal;
    unsigned since_trim;           /* records committed since the last trim */
};

/* Everything opened so far, in reverse order; NULL-safe. */
static void msink_free(struct msink *m)
{
    ingester_stop(m->ingester);
    journal_close(m->journal);
    store_checkpointer_stop(m->checkpointer);
    store_close(m->store);
    pthread_mutex_destroy(&m->mu);
    mem_free(m);
}

/* The store, without automatic checkpoints: a thread of its own does them. */
static bool msink_open_store(struct msink *m, const char *state_dir, bool sync, struct buf *err)
{
    struct buf path, why;
    buf_init(&path);
    buf_init(&why);
    buf_printf(&path, "%s/" MSINK_STORE_FILE, state_dir);
    unsigned flags = (sync ? 0 : STORE_SYNC_NORMAL) | STORE_NO_AUTOCHECKPOINT;
    m->store = store_open(path.data, flags, &why);
    if (m->store == NULL)
        buf_printf(err, "cannot open the store: %s", why.data);
    else if ((m->checkpointer = store_checkpointer_start(path.data, MSINK_CHECKPOINT_MS, &why)) == NULL)
        buf_printf(err, "cannot start the store's checkpoints: %s", why.data);
    buf_free(&why);
    buf_free(&path);
    return m->checkpointer != NULL;
}

/* The journal, after ingesting what an earlier run left in it. */
static bool msink_open_journal(struct msink *m, const char *state_dir, bool sync, struct buf *err)
{
    struct buf dir, why;
    buf_init(&dir);
    buf_init(&why);
    buf_printf(&dir, "%s/" MSINK_JOURNAL_DIR, state_dir);
    int64_t ingested = 0;
    bool ok = false;
    if (!journal_ingested(m->store, &ingested, &why))
        buf_printf(err, "cannot read the store: %s", why.data);
    else if ((m->journal = journal_open(dir.data, ingested, sync, &why)) == NULL)
        buf_printf(err, "cannot open the journal: %s", why.data);
    else if (!journal_ingest(m->store, dir.data, 0, NULL, NULL, NULL, &why))
        buf_printf(err, "cannot ingest the journal: %s", why.data);
    else if ((m->ingester = ingester_start(m->store, dir.data, MSINK_INGEST_MS, MSINK_INGEST_MAX_ROWS, NULL, NULL,
                                           &why)) == NULL)
        buf_printf(err, "%s", why.data);
    else
        ok = true;
    buf_free(&why);
    buf_free(&dir);
    return ok;
}

struct msink *msink_open(const char *state_dir, bool sync, struct buf *err)
{
    struct msink *m = mem_alloc(sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    buf_reset(err);
    if (!msink_open_store(m, state_dir, sync, err) || !msink_open_journal(m, state_dir, sync, err)) {
        msink_free(m);
        return NULL;
    }
    return m;
}

/* Every MSINK_TRIM_EVERY records: delete the journal files all ingested
 * (a failure is logged; the next trim tries again).  Under m->mu. */
static void msink_trim(struct msink *m)
{
    if (++m->since_trim < MSINK_TRIM_EVERY)
        return;
    m->since_trim = 0;
    struct buf err;
    buf_init(&err);
    if (!journal_trim(m->journal, ingester_ingested(m->ingester), &err))
        log_msg(LOG_LVL_WARN, "journal_trim", "error=\"%s\"", err.data);
    buf_free(&err);
}

bool msink_write(struct msink *m, const struct audit_rec *rec, struct buf *err)
{
    pthread_mutex_lock(&m->mu);
    bool ok = journal_add(m->journal, rec, NULL, 0, NULL, err) != 0 && journal_commit(m->journal, err);
    if (ok)
        msink_trim(m);
    else
        journal_rollback(m->journal);
    pthread_mutex_unlock(&m->mu);
    return ok;
}

void msink_close(struct msink *m)
{
    if (m == NULL)
        return;
    /* the ingester's last ingestion takes every record written */
    msink_free(m);
}
