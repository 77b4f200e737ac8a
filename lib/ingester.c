/* ingester.c: the thread that moves a journal into its store (ingester.h).
 *
 * The thread sleeps on a condition variable (monotonic clock) for the
 * interval, then ingests in rounds of max_rows until a round takes fewer,
 * then calls the round callback.  ingester_stop() wakes it, joins it and
 * ingests the rest in the caller's thread: by then every writer of the
 * journal has committed its last batch, so the store ends with all of it. */
#include "ingester.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "journal.h"
#include "log.h"

#define INGESTER_DEFAULT_MS 200
#define INGESTER_NICE 10

struct ingester {
    /* fixed at start */
    struct store *s;               /* the thread's, then the stopper's */
    char *dir;
    unsigned interval_ms;
    size_t max_rows;
    ingester_round_cb round;
    void *arg;

    /* the ingesting thread's (the thread, then ingester_stop()) */
    struct journal_cursor cur;
    struct buf last_error;         /* the last error logged; "" after a success */

    /* any thread */
    _Atomic int64_t ingested;
    _Atomic uint64_t count;

    pthread_t thread;
    pthread_mutex_t mu;            /* guards quit */
    pthread_cond_t cv;
    bool quit;
};

int64_t ingester_ingested(const struct ingester *g)
{
    return atomic_load(&g->ingested);
}

uint64_t ingester_count(const struct ingester *g)
{
    return atomic_load(&g->count);
}

/* Log err once while it stays the same; decisions are safe in the journal
 * and the next round tries again. */
static void ingester_log_error(struct ingester *g, const char *err)
{
    if (strcmp(err, g->last_error.data) == 0)
        return;
    log_msg(LOG_LVL_ERR, "ingest_error", "error=\"%s\" note=\"decisions stay in the journal\"", err);
    buf_reset(&g->last_error);
    buf_puts(&g->last_error, err);
}

static void ingester_log_ok(struct ingester *g)
{
    if (g->last_error.len == 0)
        return;
    log_msg(LOG_LVL_NOTICE, "ingest", "status=ok note=\"the store takes the journal again\"");
    buf_reset(&g->last_error);
}

/* One transaction of at most max_rows records; true when the journal may
 * have more (the round was full). */
static bool ingester_round(struct ingester *g)
{
    struct buf err;
    buf_init(&err);
    int64_t ingested = 0;
    size_t n = 0;
    bool more = false;
    if (journal_ingest(g->s, g->dir, g->max_rows, &g->cur, &ingested, &n, &err)) {
        atomic_store(&g->ingested, ingested);
        atomic_fetch_add(&g->count, (uint64_t)n);
        more = g->max_rows > 0 && n >= g->max_rows;
        ingester_log_ok(g);
    } else {
        ingester_log_error(g, err.data);
    }
    buf_free(&err);
    return more;
}

static void ingester_drain(struct ingester *g)
{
    while (ingester_round(g))
        ;
}

/* The absolute time interval_ms from now, on the condition's clock. */
static struct timespec ingester_deadline(unsigned interval_ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += interval_ms / 1000;
    t.tv_nsec += (long)(interval_ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Sleep for the interval; false when told to quit. */
static bool ingester_wait(struct ingester *g)
{
    struct timespec until = ingester_deadline(g->interval_ms);
    pthread_mutex_lock(&g->mu);
    while (!g->quit && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
        ; /* a spurious wake-up: sleep on */
    bool go_on = !g->quit;
    pthread_mutex_unlock(&g->mu);
    return go_on;
}

static void *ingester_main(void *arg)
{
    struct ingester *g = arg;
    /* behind the serving threads when the cores are busy: the journal
     * absorbs the backlog */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), INGESTER_NICE);
    while (ingester_wait(g)) {
        ingester_drain(g);
        if (g->round != NULL)
            g->round(g->arg, g->s);
    }
    return NULL;
}

static void ingester_free(struct ingester *g)
{
    buf_free(&g->last_error);
    mem_free(g->dir);
    mem_free(g);
}

/* The mutex and a condition variable on the monotonic clock. */
static void ingester_sync_init(struct ingester *g)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
}

static void ingester_sync_destroy(struct ingester *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

struct ingester *ingester_start(struct store *s, const char *dir, unsigned interval_ms, size_t max_rows,
                                ingester_round_cb round, void *arg, struct buf *err)
{
    int64_t ingested = 0;
    if (!journal_ingested(s, &ingested, err))
        return NULL;
    struct ingester *g = mem_alloc(sizeof *g);
    g->s = s;
    g->dir = mem_strdup(dir);
    g->interval_ms = interval_ms ? interval_ms : INGESTER_DEFAULT_MS;
    g->max_rows = max_rows;
    g->round = round;
    g->arg = arg;
    buf_init(&g->last_error);
    atomic_init(&g->ingested, ingested);
    atomic_init(&g->count, 0);
    ingester_sync_init(g);
    int rc = pthread_create(&g->thread, NULL, ingester_main, g);
    if (rc != 0) {
        buf_reset(err);
        buf_printf(err, "cannot start the ingest thread: %s", strerror(rc));
        ingester_sync_destroy(g);
        ingester_free(g);
        return NULL;
    }
    return g;
}

uint64_t ingester_stop(struct ingester *g)
{
    if (g == NULL)
        return 0;
    pthread_mutex_lock(&g->mu);
    g->quit = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    ingester_sync_destroy(g);
    /* after every writer's last commit: the last ingestion takes all */
    ingester_drain(g);
    uint64_t count = ingester_count(g);
    ingester_free(g);
    return count;
}
