/* server.h: the event loop of postern-policyd: listening sockets, policy
 * connections (keep-alive, pipelined requests answered in order, idle
 * timeout, a connection limit), group-committed decisions and the signals
 * (SIGHUP reloads the rules, SIGTERM/SIGINT stop after the requests in
 * flight).  main.c owns the life cycle around it: options, config,
 * daemonizing, the pid file, the privilege drop and the store.
 *
 * Order of use: server_init(), server_bind() (as root: the sockets may be
 * in Postfix's private directory), drop privileges, open the store and set
 * d->store and d->counters, server_setup(), server_loop() until a stop
 * signal, server_free().
 *
 * Every piece of mutable state of the daemon is in struct policyd; the
 * only process-wide settings outside it are the logger's (log.h) and the
 * time zone (tz_select()).  Three threads share it: the loop thread owns
 * the connections, the queue and the rules references; the store thread
 * (from server_setup() to server_loop()'s end) alone uses d->journal and
 * d->counters, and the decide_conn of the connections whose requests it
 * holds; the ingest thread (lib/ingester.h, from server_setup() to
 * server_loop()'s end) alone uses d->store. */
#ifndef POSTERN_POLICYD_SERVER_H
#define POSTERN_POLICYD_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "buf.h"
#include "conf.h"
#include "journal.h"
#include "ptime.h"
#include "request.h"

struct rules;
struct store;
struct counters;
struct event_base;
struct event;
struct policyd_listener;
struct policyd_conn;
struct policyd_pending;
struct ingester;

/* The answer given instead of a decision when the store fails. */
#define POLICYD_ON_ERROR_DUNNO "DUNNO"
#define POLICYD_ON_ERROR_DEFER "DEFER_IF_PERMIT 4.3.0 policy service temporarily unavailable"

/* Limits of the loop itself (not configurable). */
#define POLICYD_MAX_PIPELINE 64      /* requests of one connection waiting for their batch */
#define POLICYD_MAX_OUTPUT (1u << 20) /* unsent replies of one connection before it is read again */
#define POLICYD_BATCH_MAX_CALLBACKS 1024 /* read/accept callbacks before a batch is forced */
#define POLICYD_STOP_GRACE_MS 10000  /* SIGTERM: time given to flush the last replies */
#define POLICYD_INGEST_MS 200        /* journal -> store, at least this often */
#define POLICYD_INGEST_MAX_ROWS 20000 /* rows per ingest transaction */

struct policyd {
    /* settings, fixed at start-up */
    char *conf_path;               /* absolute path of postern.yaml (re-read on SIGHUP) */
    struct postern_conf conf;      /* as loaded at start-up */
    char *rules_dir;               /* the rules directory in use (SIGHUP may change it) */
    struct policy_limits limits;   /* request limits (max_bytes from the config) */
    const char *on_error_action;   /* POLICYD_ON_ERROR_* */
    struct clock clock;

    /* shared resources */
    struct rules *rules;           /* current snapshot; each request holds its own reference */
    struct store *store;           /* audit trail and counters: the ingest thread's */
    struct store_checkpointer *checkpointer; /* WAL checkpoints off the serving thread */
    struct journal *journal;       /* what a reply waits for: the store thread's */
    char *journal_dir;
    struct journal_cursor ingest_cursor; /* main.c's start-up ingestion (the ingester keeps its own) */
    struct counters *counters;     /* in memory (counters_mem): the store thread's */

    /* the loop */
    struct event_base *base;
    struct event *batch_ev;        /* lowest priority: runs after every read of the turn */
    struct event *sig_hup, *sig_term, *sig_int;
    struct event *stop_timer;
    struct event *accept_pause;    /* re-enables the listeners after EMFILE */

    struct policyd_listener *listeners;
    size_t n_listeners;

    struct policyd_conn *conns;    /* doubly linked, every open connection */
    size_t n_conns;
    uint64_t next_conn_id;

    struct policyd_pending *queue_head, *queue_tail; /* requests waiting for the batch */
    size_t n_queued;
    unsigned callbacks_since_queue; /* read/accept callbacks since the batch was scheduled */

    /* the store thread: decides, audits and commits one batch at a time
     * while the loop reads the next requests (see server.c) */
    struct policyd_pending *inflight; /* loop's view: the batch the store thread has, or NULL */
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t mu;            /* guards work, done, worker_quit */
    pthread_cond_t cv;             /* work handed over, done returned, or quit */
    struct policyd_pending *work;  /* handed to the store thread */
    struct policyd_pending *done;  /* returned by it, to be answered */
    bool worker_quit;
    int done_fd;                   /* eventfd: the store thread finished a batch */
    struct event *done_ev;
    struct journal_reset_req *resets; /* (under mu) counter resets for the store thread */
    size_t n_resets, cap_resets;
    int64_t resets_handed;         /* ingest thread: the last request id handed over */
    char resets_error[512];        /* ingest thread: the last reset poll error logged ("" after success) */

    /* the ingest thread: journal -> store every POLICYD_INGEST_MS
     * (ingester_ingested(): the journal id the store holds through) */
    struct ingester *ingester;
    int64_t ingested;              /* main.c: the journal id the store held through at start-up */

    bool stopping;

    /* counters for log lines */
    uint64_t refused;              /* connections refused over max_connections, not yet logged */
    int64_t refused_logged_us;     /* when the last connection_limit line was written */
    uint64_t n_requests, n_store_errors; /* written by the store thread */
    uint64_t n_ingested;                 /* ingester_count() once the ingester has stopped */
    uint64_t n_batches;
};

/* Zero d and set the defaults that do not come from the config. */
void server_init(struct policyd *d);
/* Create the listening sockets of d->conf.policyd.listen (unix: a stale
 * socket is removed, the new one is made 0666; inet: SO_REUSEADDR).  A
 * unix path that another live process serves, or that is not a socket, is
 * refused.  False with err set. */
bool server_bind(struct policyd *d, struct buf *err);
/* Create the event loop, the listener, signal and batch events.
 * d->rules, d->store and d->counters must be set.  False with err set. */
bool server_setup(struct policyd *d, struct buf *err);
/* Serve until SIGTERM/SIGINT has been handled: the requests in flight are
 * answered, the listeners closed.  Returns the exit status (0). */
int server_loop(struct policyd *d);
/* Close listeners (removing unix socket files) and connections; free the
 * loop.  Does not close the store nor the rules (main.c owns them). */
void server_free(struct policyd *d);
/* The name of listener i < d->n_listeners ("unix:/path", "inet:addr:port"). */
const char *server_listener_name(const struct policyd *d, size_t i);
/* Reload the rules as on SIGHUP; true when the new snapshot is in use. */
bool server_reload(struct policyd *d);

#endif
