/* main.c: postern-policyd, the Postfix SMTP access policy delegation
 * server of postern: options and life cycle.
 *
 *   postern-policyd [-c postern.yaml] [-f] [-n] [-d]
 *
 * Start-up, in this order (every failure is fatal, with a message naming
 * what to fix):
 *   1. load postern.yaml (every error, file:line:column), select the time
 *      zone, load the rules (every error); check that `user` exists;
 *      with -n: print a summary and exit 0 (1 on any error);
 *   2. without -f: fork into the background; the parent waits until the
 *      daemon is ready (or failed) and exits 0 (or 1), so that an init
 *      system or a shell sees start-up errors;
 *   3. take the pid file (an flock on it: a second instance is refused);
 *   4. create state_dir (0750, owned by `user`) if it is missing;
 *   5. bind every listener of policyd.listen (as root: Postfix's private/
 *      directory is not writable by others);
 *   6. drop privileges to `user` (initgroups, setgid, setuid; root only if
 *      `user` is root);
 *   7. open the store <state_dir>/policyd.sqlite and the journal
 *      directory <state_dir>/journal/ AFTER the drop, so the database, its
 *      -wal/-shm files and the journal belong to `user` and a daemon that
 *      runs as `user` can always write what it created; cut off a record
 *      a crash left unfinished, ingest what the journal holds into the
 *      store, then load the counters of the current windows into memory;
 *   8. serve (server.c) until SIGTERM/SIGINT; then remove the pid file and
 *      the unix sockets and exit 0.
 * Steps 2, 3, 4 and 6 are lib/daemon.c's, shared with postern-milter. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "alloc.h"
#include "conf.h"
#include "counters.h"
#include "daemon.h"
#include "diag.h"
#include "journal.h"
#include "log.h"
#include "ptime.h"
#include "rules.h"
#include "rules_load.h"
#include "server.h"
#include "store.h"

#define PROG "postern-policyd"
#define DEFAULT_CONF POSTERN_SYSCONFDIR "/postern.yaml"
#define STORE_FILE "policyd.sqlite"
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif


static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [-c postern.yaml] [-f] [-n] [-d]\n"
            "  -c FILE  configuration (default " DEFAULT_CONF ")\n"
            "  -f       stay in the foreground, log to stderr too\n"
            "  -n       check the configuration and the rules, print a summary, exit\n"
            "  -d       log at level debug\n");
}

/* Remove what start-up has created so far, then exit 1 with msg. */
static _Noreturn void startup_fail(struct policyd *d, struct daemon *dm, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void startup_fail(struct policyd *d, struct daemon *dm, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    buf_init(&b);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    server_free(d);
    daemon_pidfile_release(dm);
    log_fatal("%s", b.data);
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* --- config and rules ----------------------------------------------------- */

static bool load_conf(struct policyd *d)
{
    return daemon_load_conf(PROG, &d->conf, d->conf_path);
}

static struct rules *load_rules(const char *dir, bool print_warnings)
{
    return rules_load_report(PROG, dir, print_warnings);
}

static void print_summary(const struct policyd *d)
{
    const struct rules *r = d->rules;
    size_t accounts = 0;
    for (size_t i = 0; i < r->n_tenants; i++) {
        rules_summary_tenant(&r->tenants[i], stdout);
        for (size_t j = 0; j < r->tenants[i].n_accounts; j++)
            accounts += !r->tenants[i].accounts[j].implicit;
    }
    printf("listen:");
    for (size_t i = 0; i < d->conf.policyd.listen.n; i++)
        printf(" %s", d->conf.policyd.listen.v[i]);
    printf("\nuser: %s, state: %s/" STORE_FILE ", on_error: %s\n", d->conf.user, d->conf.state_dir,
           d->conf.policyd.on_error == ON_ERROR_DEFER ? "defer" : "dunno");
    printf("ok: %s; %zu tenant%s, %zu account%s, %zu file%s in %s\n", d->conf_path, r->n_tenants,
           plural(r->n_tenants), accounts, plural(accounts), r->n_files, plural(r->n_files), d->rules_dir);
}

/* --- main ----------------------------------------------------------------- */

static void parse_options(int argc, char **argv, struct daemon_options *o)
{
    daemon_parse_options(argc, argv, DEFAULT_CONF, usage, o);
}

/* Free everything of d (each part may not have been set up). */
static void release(struct policyd *d, struct daemon *dm, struct buf *err)
{
    server_free(d);
    counters_close(d->counters);
    d->counters = NULL;
    journal_close(d->journal);
    d->journal = NULL;
    mem_free(d->journal_dir);
    d->journal_dir = NULL;
    store_checkpointer_stop(d->checkpointer);
    d->checkpointer = NULL;
    store_close(d->store);
    d->store = NULL;
    rules_unref(d->rules);
    d->rules = NULL;
    daemon_free(dm);
    mem_free(d->rules_dir);
    mem_free(d->conf_path);
    conf_free(&d->conf);
    buf_free(err);
}

int main(int argc, char **argv)
{
    struct daemon_options o;
    struct policyd d;
    struct buf err;
    struct daemon dm;

    parse_options(argc, argv, &o);
    umask(027);
    /* -f logs to stderr only (a supervisor such as systemd keeps it);
     * in the background, to syslog (facility mail) */
    log_open(PROG, !o.check && !o.foreground, o.foreground || o.check, o.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    server_init(&d);
    buf_init(&err);
    daemon_init(&dm, PROG);

    /* 1. configuration, time zone, rules, user */
    d.conf_path = daemon_absolute_path(o.conf);
    if (!load_conf(&d))
        goto fail;
    log_open(PROG, !o.check && !o.foreground, o.foreground || o.check,
             o.debug ? LOG_LVL_DEBUG : (enum log_level)d.conf.log_level);
    if (!tz_select(d.conf.timezone)) {
        fprintf(stderr, PROG ": %s: timezone: unknown zone %s\n", d.conf_path, d.conf.timezone);
        goto fail;
    }
    d.rules_dir = mem_strdup(d.conf.rules);
    d.rules = load_rules(d.rules_dir, o.check);
    if (d.rules == NULL) {
        if (!o.check)
            log_msg(LOG_LVL_ERR, "fatal", "error=\"errors in the rules of %s\"", d.rules_dir);
        goto fail;
    }
    if (!daemon_set_user(&dm, d.conf.user)) {
        fprintf(stderr, PROG ": %s: user: no such user \"%s\" (create it, e.g. adduser --system --group %s, "
                         "or name an existing one)\n", d.conf_path, d.conf.user, d.conf.user);
        if (!o.check)
            log_msg(LOG_LVL_ERR, "fatal", "error=\"user %s does not exist\"", d.conf.user);
        goto fail;
    }
    if (o.check) {
        print_summary(&d);
        release(&d, &dm, &err);
        return 0;
    }

    /* 2. background */
    if (!o.foreground)
        daemon_background(&dm);

    /* 3-5. pid file, state directory, sockets (still privileged) */
    if (!daemon_pidfile_take(&dm, d.conf.policyd.pid_file, &err) ||
        !daemon_state_dir_prepare(&dm, d.conf.state_dir, &err) || !server_bind(&d, &err))
        startup_fail(&d, &dm, "%s", err.data);

    /* 6. privileges */
    if (!daemon_drop_privileges(&dm, &err))
        startup_fail(&d, &dm, "%s", err.data);

    /* 7. the store, created by and belonging to user */
    struct buf path;
    buf_init(&path);
    buf_printf(&path, "%s/" STORE_FILE, d.conf.state_dir);
    /* sync normal: WAL with synchronous=NORMAL, so that group commit is
     * not bounded by fsync latency; full: fsync at every batch commit. */
    /* Checkpoints of the WAL run in a thread of their own: done by the
     * serving thread they stalled every request of a batch for ~40 ms. */
    unsigned sflags = (d.conf.policyd.sync == SYNC_FULL ? 0 : STORE_SYNC_NORMAL) | STORE_NO_AUTOCHECKPOINT;
    d.store = store_open(path.data, sflags, &err);
    if (d.store == NULL) {
        buf_free(&path);
        startup_fail(&d, &dm, "cannot open the store: %s", err.data);
    }
    d.checkpointer = store_checkpointer_start(path.data, 500, &err);
    if (d.checkpointer == NULL) {
        buf_free(&path);
        startup_fail(&d, &dm, "cannot start the store's checkpoints: %s", err.data);
    }
    /* The journal: what a reply waits for (journal.h).  What it holds
     * from an earlier run (a crash, kill -9) is ingested into the store
     * first, then the counters are loaded from the store into memory. */
    buf_reset(&path);
    buf_printf(&path, "%s/" JOURNAL_DIR, d.conf.state_dir);
    d.journal_dir = mem_strdup(path.data);
    buf_free(&path);
    int64_t ingested = 0;
    size_t nrows = 0;
    if (!journal_ingested(d.store, &ingested, &err))
        startup_fail(&d, &dm, "cannot read the store: %s", err.data);
    d.journal = journal_open(d.journal_dir, ingested, d.conf.policyd.sync == SYNC_FULL, &err);
    if (d.journal == NULL)
        startup_fail(&d, &dm, "cannot open the journal: %s", err.data);
    int64_t t0 = clock_mono_us();
    if (!journal_ingest(d.store, d.journal_dir, 0, &d.ingest_cursor, &ingested, &nrows, &err))
        startup_fail(&d, &dm, "cannot ingest the journal: %s", err.data);
    int64_t ingest_us = clock_mono_us() - t0;
    d.ingested = ingested;
    d.counters = counters_mem_open(d.clock);
    if (!counters_mem_load(d.counters, d.store, &err))
        startup_fail(&d, &dm, "cannot load the counters: %s", err.data);
    if (!server_setup(&d, &err))
        startup_fail(&d, &dm, "%s", err.data);

    struct buf kv;
    buf_init(&kv);
    buf_kv(&kv, "version", PACKAGE_VERSION);
    buf_kvf(&kv, "pid", "%ld", (long)getpid());
    buf_kvf(&kv, "listeners", "%zu", d.n_listeners);
    for (size_t i = 0; i < d.n_listeners; i++)
        buf_kv(&kv, "listen", server_listener_name(&d, i));
    buf_kvf(&kv, "tenants", "%zu", d.rules->n_tenants);
    buf_kv(&kv, "rules", d.rules_dir);
    buf_kv(&kv, "store", store_path(d.store));
    buf_kv(&kv, "journal", d.journal_dir);
    buf_kvf(&kv, "journal_ingested", "%zu", nrows);
    buf_kvf(&kv, "ingest_ms", "%lld", (long long)(ingest_us / 1000));
    buf_kvf(&kv, "counters", "%zu", counters_mem_size(d.counters));
    buf_kv(&kv, "user", dm.pw.pw_name);
    buf_kv(&kv, "on_error", d.on_error_action);
    log_event(LOG_LVL_INFO, "start", &kv);
    buf_free(&kv);

    daemon_ready(&dm);

    /* 8. serve */
    int status = server_loop(&d);

    log_msg(LOG_LVL_INFO, "stop", "requests=%llu batches=%llu store_errors=%llu ingested=%llu status=%d",
            (unsigned long long)d.n_requests, (unsigned long long)d.n_batches,
            (unsigned long long)d.n_store_errors, (unsigned long long)d.n_ingested, status);
    release(&d, &dm, &err);
    libevent_global_shutdown();
    return status;

fail:
    release(&d, &dm, &err);
    return 1;
}
