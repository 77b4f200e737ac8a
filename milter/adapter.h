/* adapter.h: the libmilter side of postern-milter, a thin layer over the
 * message pipeline (pipeline.h): one xxfi_* callback per milter stage,
 * each calling its pl_* function with the connection's context
 * (smfi_setpriv/smfi_getpriv) and turning enum pl_status into SMFIS_*;
 * struct pl_actions over smfi_insheader/smfi_setreply/smfi_chgheader/
 * smfi_quarantine; macros through
 * smfi_getsymval.  No decisions here: the pipeline makes them all.
 *
 * Every libmilter call is here: the callbacks' through struct adapter_mta,
 * so that a test can drive them (adapter_desc()) with a fake MTA, and the
 * life cycle's (smfi_register, smfi_setconn, smfi_opensocket, smfi_main)
 * in adapter_listen() and adapter_run().
 *
 * The adapter also counts the connections in progress, so that main() can
 * let them finish after smfi_main() has returned (libmilter does not wait
 * for its session threads) before it closes what they use. */
#ifndef POSTERN_MILTER_ADAPTER_H
#define POSTERN_MILTER_ADAPTER_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmilter/mfapi.h>

#include "buf.h"
#include "pipeline.h"

/* The libmilter functions the callbacks use. */
struct adapter_mta {
    void *(*getpriv)(SMFICTX *ctx);
    int (*setpriv)(SMFICTX *ctx, void *priv);
    char *(*getsymval)(SMFICTX *ctx, char *name);
    int (*insheader)(SMFICTX *ctx, int idx, char *name, char *value);
    int (*setreply)(SMFICTX *ctx, char *rcode, char *xcode, char *message);
    int (*setsymlist)(SMFICTX *ctx, int stage, char *macros);
    int (*chgheader)(SMFICTX *ctx, char *name, int idx, char *value);
    int (*quarantine)(SMFICTX *ctx, char *reason);
};

/* The real ones (smfi_getpriv, ...). */
extern const struct adapter_mta adapter_mta_libmilter;

struct adapter {
    struct pl_daemon *daemon;      /* what the pipeline reads (main.c's) */
    const struct adapter_mta *mta;
    pthread_mutex_t mu;            /* guards n_conns, closed */
    pthread_cond_t idle;           /* n_conns dropped to 0 */
    size_t n_conns;                /* connections in progress */
    bool closed;                   /* adapter_drain() has run: new connections are refused */
    _Atomic uint64_t next_id;      /* connection ids, from 1 */
    _Atomic uint64_t n_refused;    /* negotiations refused (the MTA lacks a capability we need) */
    char *conn_spec;               /* the socket given to smfi_setconn() (libmilter keeps the pointer) */
};

/* mta NULL: libmilter's functions. */
void adapter_init(struct adapter *a, struct pl_daemon *d, const struct adapter_mta *mta);
/* The filter description for smfi_register() (name: the filter's name in
 * libmilter's log lines).  Its callbacks use a until adapter_drain(): a
 * single adapter per process, as libmilter's callbacks carry no argument. */
struct smfiDesc adapter_desc(struct adapter *a, const char *name);
/* Register the callbacks (smfi_register) and create the listening socket
 * conn, in libmilter's syntax (unix:/path, inet:port@host,
 * inet6:port@[addr]): smfi_setconn, smfi_opensocket (a stale unix socket
 * file is removed).  Called as root, before the privilege drop.  False
 * with err set. */
bool adapter_listen(struct adapter *a, const char *name, const char *conn, struct buf *err);
/* smfi_main(): serve until libmilter stops (SIGTERM, SIGINT).  False when
 * it stopped on an error. */
bool adapter_run(struct adapter *a);
/* After adapter_run(): refuse new connections and wait up to timeout_ms for
 * those in progress to end.  Returns how many are still open. */
size_t adapter_drain(struct adapter *a, int timeout_ms);
void adapter_free(struct adapter *a);

#endif
