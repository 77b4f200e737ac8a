/* main.c: postern-milter, the milter of postern (DKIM signing of the
 * tenants' mail, through libmilter: adapter.c over the pipeline): options
 * and life cycle.
 *
 *   postern-milter [-c postern.yaml] [-f] [-n] [-d]
 *
 * Start-up, in this order (every failure is fatal, with a message naming
 * what to fix):
 *   1. load postern.yaml (every error, file:line:column), select the time
 *      zone, load the rules (every error); check that `user` exists; with
 *      -n: read the active DKIM keys too (as `user` when started as root,
 *      as the daemon will), print a summary and exit 0 (1 on any error);
 *   2. without -f: fork into the background; the parent waits until the
 *      daemon is ready (or failed) and exits 0 (or 1);
 *   3. take the pid file milter.pid_file (an flock: a second instance is
 *      refused);
 *   4. create state_dir (0750, owned by `user`) if it is missing;
 *   5. create the socket of milter.listen as root (adapter_listen():
 *      smfi_setconn, smfi_opensocket): Postfix's private/ directory is not
 *      writable by others.  A unix socket that a live process serves, or
 *      a path that is not a socket, is refused; a stale one is replaced;
 *      the new one is made 0666 (Postfix's smtpd connects as postfix; the
 *      directory guards it, as for Postfix's own sockets);
 *   5b. fork the release helper of pace mode hold (relhelper.h), the one
 *      part that keeps root;
 *   6. drop privileges to `user`;
 *   7. read the active DKIM keys as `user` -- the user that re-reads them
 *      on SIGHUP, so that what starts also reloads: a key that cannot be
 *      read refuses the start, each error with the rule's
 *      file:line:column and the key file;
 *   8. open the pacing store (pacer.h) and the audit sink (msink.h:
 *      journal and store in state_dir) after the drop, so that their files
 *      belong to `user`; start the release thread of mode hold
 *      (releaser.h);
 *   9. serve (adapter_run(): smfi_main) until SIGTERM/SIGINT; let the
 *      connections in progress finish (up to 10 s), close the sink, remove
 *      the pid file and, when it is still ours to remove, the unix socket.
 *
 * Signals and reload.  libmilter runs a thread of its own that sigwait()s
 * for SIGHUP, SIGTERM and SIGINT and stops the milter on each of them
 * (libmilter/signal.c: SIGHUP and SIGTERM stop after the sessions in
 * progress, SIGINT aborts them); a stopped libmilter cannot be restarted
 * in the same process (its listening socket is closed, and as `user` the
 * daemon could not create it again).  postern-milter wants SIGHUP to
 * reload, so:
 *   - the three signals are blocked in the main thread before any thread
 *     exists, so every thread inherits the mask and none takes them
 *     asynchronously;
 *   - a reload thread of ours waits for SIGHUP alone (sigwaitinfo) and
 *     reloads;
 *   - sigwait() is interposed (below): libmilter's signal thread calls it
 *     with {HUP, TERM, INT}; SIGHUP is taken out of the set, so a pending
 *     SIGHUP can only be taken by the reload thread;
 *   - SIGTERM and SIGINT stay libmilter's: smfi_main() returns and main()
 *     shuts down.
 * A reload re-reads postern.yaml for its rules path, loads the rules and
 * then the keys of those rules; both are swapped in together under a
 * mutex, each message holding its own references to the snapshot it
 * started with (pl_envfrom takes them), so messages in flight finish on
 * the old rules and keys.  Any error (one log line each, with
 * file:line:column) keeps the rules and keys in use.
 *
 * Mutable state lives in struct milter (main's), except the interposed
 * sigwait()'s pointer to the real function, which interposition needs
 * (and, in adapter.c and tcp_tune.c, what libmilter's callbacks and the
 * interposed socket calls need, said there). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adapter.h"
#include "alloc.h"
#include "conf.h"
#include "daemon.h"
#include "diag.h"
#include "dkim_sign.h"
#include "inbound.h"
#include "log.h"
#include "msink.h"
#include "pipeline.h"
#include "ptime.h"
#include "rules.h"
#include "rules_load.h"
#include "pacer.h"
#include "releaser.h"
#include "relhelper.h"
#include "cmd.h"
#include "grammar.h"
#include "scanner.h"
#include "selfcheck.h"
#include "spool.h"
#include "tcp_tune.h"

#define PROG "postern-milter"
#define DEFAULT_CONF POSTERN_SYSCONFDIR "/postern.yaml"
#define MILTER_STOP_GRACE_MS 10000 /* SIGTERM: time given to the connections in progress */
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif


struct milter {
    struct daemon_options opt;
    char *conf_path;               /* absolute path of postern.yaml (re-read on SIGHUP) */
    struct postern_conf conf;      /* as loaded at start-up */
    char *rules_dir;               /* the rules directory in use (SIGHUP may change it) */
    struct daemon dm;              /* pid file, user, background */

    /* the snapshot in use: rules and keys, swapped together under mu */
    pthread_mutex_t mu;
    struct rules *rules;
    struct dkim_keys *keys;        /* NULL: no active key */

    struct msink *sink;            /* audit records (thread-safe) */
    struct inbound_cfg in;         /* the inbound checks: SPF, DKIM, DMARC (shared, read-only) */
    struct scan_cfg scan;          /* the scanners' fallbacks (shared, read-only) */
    struct pl_daemon pl;           /* what the pipeline reads */
    struct relhelper *relh;        /* mode hold's privileged helper, until the releaser owns it */
    struct releaser *releaser;     /* mode hold's release thread */
    struct adapter ad;             /* the libmilter callbacks */
    bool adapter_ready;

    char *conn;                    /* milter.listen in libmilter's syntax */
    char *unix_path;               /* the socket file, NULL for inet */

    pthread_t reloader;
    bool reloader_started;
    atomic_bool reloader_quit;
    atomic_uint_fast64_t n_reloads, n_reload_failures;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [-c postern.yaml] [-f] [-n] [-d]\n"
            "  -c FILE  configuration (default " DEFAULT_CONF ")\n"
            "  -f       stay in the foreground, log to stderr too\n"
            "  -n       check the configuration, the rules and the DKIM keys, print a summary, exit\n"
            "  -d       log at level debug\n");
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* Free everything of m (each part may not have been set up). */
static void milter_release(struct milter *m)
{
    if (m->sink != NULL)
        msink_close(m->sink);
    m->sink = NULL;
    dkim_keys_unref(m->keys);
    m->keys = NULL;
    if (m->in.spf != NULL)
        spf_checker_free(m->in.spf);
    if (m->in.dkimv != NULL)
        dkimv_lib_free(m->in.dkimv);
    if (m->in.dmarc != NULL)
        dmarc_lib_free(m->in.dmarc);
    memset(&m->in, 0, sizeof m->in);
    selfcheck_free(m->pl.selfcheck);
    m->pl.selfcheck = NULL;
    scanner_free(m->pl.clamd);
    scanner_free(m->pl.spamd);
    m->pl.clamd = m->pl.spamd = NULL;
    releaser_stop(m->releaser);
    m->releaser = NULL;
    relhelper_stop(m->relh);
    m->relh = NULL;
    pacer_close(m->pl.pacer);
    m->pl.pacer = NULL;
    rules_unref(m->rules);
    m->rules = NULL;
    if (m->adapter_ready)
        adapter_free(&m->ad);
    m->adapter_ready = false;
    daemon_free(&m->dm);
    mem_free(m->conn);
    mem_free(m->unix_path);
    mem_free(m->rules_dir);
    mem_free(m->conf_path);
    conf_free(&m->conf);
    pthread_mutex_destroy(&m->mu);
}

/* Remove what start-up has created so far, then exit 1 with msg. */
static _Noreturn void startup_fail(struct milter *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void startup_fail(struct milter *m, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    buf_init(&b);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (m->sink != NULL)
        msink_close(m->sink);
    m->sink = NULL;
    daemon_pidfile_release(&m->dm);
    log_fatal("%s", b.data);
}

/* --- the snapshot (pl_daemon) ---------------------------------------------- */

static struct rules *milter_rules_get(void *arg)
{
    struct milter *m = arg;
    pthread_mutex_lock(&m->mu);
    struct rules *r = m->rules != NULL ? rules_ref(m->rules) : NULL;
    pthread_mutex_unlock(&m->mu);
    return r;
}

static struct dkim_keys *milter_keys_get(void *arg)
{
    struct milter *m = arg;
    pthread_mutex_lock(&m->mu);
    struct dkim_keys *k = m->keys != NULL ? dkim_keys_ref(m->keys) : NULL;
    pthread_mutex_unlock(&m->mu);
    return k;
}

static bool milter_audit(void *arg, const struct audit_rec *rec, struct buf *err)
{
    struct milter *m = arg;
    return msink_write(m->sink, rec, err);
}

/* Put r and k in use; the old ones are released once the messages that
 * hold them are done. */
static void milter_swap(struct milter *m, struct rules *r, struct dkim_keys *k)
{
    pthread_mutex_lock(&m->mu);
    struct rules *old_r = m->rules;
    struct dkim_keys *old_k = m->keys;
    m->rules = r;
    m->keys = k;
    pthread_mutex_unlock(&m->mu);
    dkim_keys_unref(old_k);
    rules_unref(old_r);
}

static size_t keys_count(const struct dkim_keys *k)
{
    return k != NULL ? dkim_keys_count(k) : 0;
}

/* --- config, rules and keys ------------------------------------------------- */

static bool load_conf(struct milter *m)
{
    return daemon_load_conf(PROG, &m->conf, m->conf_path);
}

static struct rules *load_rules(const char *dir, bool print_warnings)
{
    return rules_load_report(PROG, dir, print_warnings);
}

/* The active keys of r into *out (NULL when there are none).  False when
 * a key cannot be read, with every error in errs (with keep_broken, *out
 * is the set with its broken keys all the same). */
static bool load_keys(const struct rules *r, bool keep_broken, struct dkim_keys **out, struct diags *errs)
{
    *out = dkim_keys_load(r, keep_broken, errs);
    return errs->n == 0;
}

/* -n: read the keys and print the verdict.  Returns the exit status. */
static int check_keys_here(const struct milter *m)
{
    struct diags g;
    diags_init(&g);
    struct dkim_keys *k = NULL;
    int status = 0;
    if (!load_keys(m->rules, false, &k, &g)) {
        diags_print(&g, stderr);
        fprintf(stderr, PROG ": %zu error%s in the DKIM keys of the rules of %s (read as user %s)\n", g.n,
                plural(g.n), m->rules_dir, m->dm.pw.pw_name);
        status = 1;
    } else {
        printf("dkim: %zu active key%s, readable by user %s\n", keys_count(k), plural(keys_count(k)),
               m->dm.pw.pw_name);
    }
    dkim_keys_unref(k);
    diags_free(&g);
    return status;
}

/* -n: the keys are read as `user`, like the daemon does; started as root,
 * a child process drops privileges for that. */
static bool check_keys(struct milter *m)
{
    if (geteuid() != 0 || m->dm.pw.pw_uid == 0)
        return check_keys_here(m) == 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
        return false;
    }
    if (pid == 0) {
        struct buf err;
        buf_init(&err);
        if (!daemon_drop_privileges(&m->dm, &err)) {
            fprintf(stderr, PROG ": %s\n", err.data);
            _exit(1);
        }
        int status = check_keys_here(m);
        fflush(stdout);
        _exit(status);
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
}

static void print_summary(const struct milter *m)
{
    const struct rules *r = m->rules;
    for (size_t i = 0; i < r->n_tenants; i++)
        rules_summary_tenant(&r->tenants[i], stdout);
    printf("listen: %s\n", m->conf.milter.listen);
    printf("user: %s, state: %s/" MSINK_STORE_FILE ", on_error: %s, authserv_id: %s\n", m->conf.user,
           m->conf.state_dir, m->conf.milter.on_error == MILTER_ON_ERROR_ACCEPT ? "accept" : "tempfail",
           m->conf.milter.authserv_id);
    const struct conf_scanner *cs[2] = { &m->conf.clamd, &m->conf.spamd };
    for (int i = 0; i < 2; i++) {
        if (cs[i]->socket == NULL)
            printf("%s: not configured (no %s scanning)\n", i == 0 ? "clamd" : "spamd", i == 0 ? "anti-virus" : "anti-spam");
        else
            printf("%s: %s, on_failure: %s, timeout: %llu ms, connections: %llu\n", i == 0 ? "clamd" : "spamd",
                   cs[i]->socket, cs[i]->on_failure == ON_FAILURE_ACCEPT ? "accept" : "tempfail",
                   (unsigned long long)cs[i]->timeout_ms, (unsigned long long)cs[i]->connections);
    }
}

/* --- reload (SIGHUP) --------------------------------------------------------- */

static void reload_failed(struct milter *m, const struct diags *errs, const char *what, const char *path)
{
    log_diags(LOG_LVL_ERR, "reload_error", errs);
    struct buf kv;
    buf_init(&kv);
    buf_kv(&kv, "status", "failed");
    buf_kvf(&kv, "errors", "%zu", errs->n);
    buf_kv(&kv, what, path);
    buf_kv(&kv, "note", "keeping the rules and keys in use");
    log_event(LOG_LVL_ERR, "reload", &kv);
    buf_free(&kv);
    atomic_fetch_add(&m->n_reload_failures, 1);
}

/* The rules directory named by postern.yaml now, NULL with errs set.  The
 * other settings (socket, user, state_dir, time zone...) take a restart. */
static char *reload_rules_dir(struct milter *m, struct diags *errs)
{
    struct postern_conf nc;
    memset(&nc, 0, sizeof nc);
    if (!conf_load(&nc, m->conf_path, errs)) {
        tz_select(m->conf.timezone);
        return NULL;
    }
    char *dir = mem_strdup(nc.rules);
    if (strcmp(nc.timezone, m->conf.timezone) != 0)
        log_msg(LOG_LVL_NOTICE, "reload", "note=\"timezone changed to %s: takes effect at restart\"", nc.timezone);
    conf_free(&nc);
    tz_select(m->conf.timezone); /* conf_load selected the file's zone */
    return dir;
}

static bool milter_reload(struct milter *m)
{
    struct diags errs, warns;
    diags_init(&errs);
    diags_init(&warns);
    struct rules *r = NULL;
    struct dkim_keys *k = NULL;
    char *dir = reload_rules_dir(m, &errs);
    bool ok = false;
    if (dir == NULL) {
        reload_failed(m, &errs, "config", m->conf_path);
    } else if ((r = rules_load(dir, &errs, &warns)) == NULL) {
        log_diags(LOG_LVL_WARN, "rules_warning", &warns);
        reload_failed(m, &errs, "rules", dir);
    } else if (!load_keys(r, false, &k, &errs)) {
        log_diags(LOG_LVL_WARN, "rules_warning", &warns);
        reload_failed(m, &errs, "rules", dir);
        rules_unref(r);
    } else {
        log_diags(LOG_LVL_WARN, "rules_warning", &warns);
        milter_swap(m, r, k);
        mem_free(m->rules_dir);
        m->rules_dir = dir;
        dir = NULL;
        atomic_fetch_add(&m->n_reloads, 1);
        struct buf kv;
        buf_init(&kv);
        buf_kv(&kv, "status", "ok");
        buf_kvf(&kv, "tenants", "%zu", r->n_tenants);
        buf_kvf(&kv, "files", "%zu", r->n_files);
        buf_kvf(&kv, "keys", "%zu", keys_count(k));
        buf_kv(&kv, "rules", m->rules_dir);
        log_event(LOG_LVL_INFO, "reload", &kv);
        buf_free(&kv);
        ok = true;
    }
    mem_free(dir);
    diags_free(&errs);
    diags_free(&warns);
    return ok;
}

/* The reload thread: SIGHUP is blocked everywhere and libmilter's signal
 * thread never waits for it (see sigwait() below), so it comes here. */
static void *reload_main(void *arg)
{
    struct milter *m = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (atomic_load(&m->reloader_quit))
            break;
        if (sig == SIGHUP)
            milter_reload(m);
        else if (errno != EINTR)
            log_msg(LOG_LVL_ERR, "reload", "error=\"sigwaitinfo: %s\"", strerror(errno));
    }
    return NULL;
}

static bool reloader_start(struct milter *m, struct buf *err)
{
    int rc = pthread_create(&m->reloader, NULL, reload_main, m);
    if (rc != 0) {
        buf_printf(err, "cannot start the reload thread: %s", strerror(rc));
        return false;
    }
    m->reloader_started = true;
    return true;
}

static void reloader_stop(struct milter *m)
{
    if (!m->reloader_started)
        return;
    atomic_store(&m->reloader_quit, true);
    pthread_kill(m->reloader, SIGHUP); /* directed at it: no other thread sees it */
    pthread_join(m->reloader, NULL);
    m->reloader_started = false;
}

/* libmilter's signal thread: sigwait({SIGHUP, SIGTERM, SIGINT}) stops the
 * milter on any of them.  In this process SIGHUP belongs to the reload
 * thread (sigwaitinfo, not interposed): it is taken out of every sigwait()
 * set.  Interposition: libmilter's call resolves to this definition. */
int sigwait(const sigset_t *restrict set, int *restrict sig)
{
    typedef int (*sigwait_fn)(const sigset_t *, int *);
    static _Atomic(sigwait_fn) real;
    sigwait_fn f = atomic_load(&real);
    if (f == NULL) {
        f = (sigwait_fn)dlsym(RTLD_NEXT, "sigwait");
        if (f == NULL)
            return ENOSYS;
        atomic_store(&real, f);
    }
    sigset_t s = *set;
    sigdelset(&s, SIGHUP);
    return f(&s, sig);
}

/* Before any thread: the signals are taken by sigwait in dedicated
 * threads only (libmilter's, ours); SIGPIPE is ignored (a peer that left). */
static void signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* --- the socket -------------------------------------------------------------- */

/* milter.listen (unix:/path, inet:host:port) in libmilter's syntax
 * (unix:/path, inet:port@host, inet6:port@[addr]). */
static void listen_parse(struct milter *m)
{
    const char *l = m->conf.milter.listen;
    struct buf b;
    buf_init(&b);
    if (strncmp(l, "unix:", 5) == 0) {
        m->unix_path = mem_strdup(l + 5);
        buf_puts(&b, l);
    } else {
        const char *hp = l + 5, *colon = strrchr(hp, ':');
        char *host = mem_strndup(hp, (size_t)(colon - hp));
        size_t hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
            host[hl - 1] = '\0';
            memmove(host, host + 1, hl - 1);
        }
        if (host[0] == '\0' || strcmp(host, "*") == 0)
            buf_printf(&b, "inet:%s", colon + 1);
        else if (strchr(host, ':') != NULL)
            buf_printf(&b, "inet6:%s@[%s]", colon + 1, host);
        else
            buf_printf(&b, "inet:%s@%s", colon + 1, host);
        mem_free(host);
    }
    m->conn = buf_detach(&b);
    buf_free(&b);
}

/* A unix socket path: refused when not a socket or when a live process
 * listens on it; a stale socket is left for smfi_opensocket() to remove. */
static bool unix_path_check(const char *path, struct buf *err)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return true;
        buf_printf(err, "milter.listen unix:%s: %s", path, strerror(errno));
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        buf_printf(err, "milter.listen unix:%s: %s exists and is not a socket", path, path);
        return false;
    }
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        int rc = connect(probe, (struct sockaddr *)&sun, sizeof sun);
        int e = errno;
        close(probe);
        if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
            buf_printf(err, "milter.listen unix:%s: another process is listening on %s", path, path);
            return false;
        }
    }
    log_msg(LOG_LVL_INFO, "stale_socket", "path=%s removed=yes", path);
    return true;
}

/* Create the listening socket (as root), 0666 when it is a unix one. */
static bool socket_open(struct milter *m, struct buf *err)
{
    if (m->unix_path != NULL && !unix_path_check(m->unix_path, err))
        return false;
    struct buf why;
    buf_init(&why);
    bool ok = adapter_listen(&m->ad, PROG, m->conn, &why);
    if (!ok)
        buf_printf(err, "milter.listen %s: %s", m->conf.milter.listen, why.data);
    buf_free(&why);
    /* Postfix's smtpd (user postfix) connects to it: world-writable, as
     * Postfix's own sockets in private/ are; the directory guards it. */
    if (ok && m->unix_path != NULL && chmod(m->unix_path, 0666) != 0) {
        buf_printf(err, "milter.listen %s: chmod 0666: %s", m->conf.milter.listen, strerror(errno));
        ok = false;
    }
    return ok;
}

/* At the end: the socket file, when libmilter left it and we may remove it. */
static void socket_remove(const struct milter *m)
{
    struct stat st;
    if (m->unix_path != NULL && lstat(m->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        unlink(m->unix_path) != 0 && errno != ENOENT)
        log_msg(LOG_LVL_NOTICE, "socket", "path=%s note=\"left in place: %s\"", m->unix_path, strerror(errno));
}

/* --- start and serve ---------------------------------------------------------- */

static void parse_options(int argc, char **argv, struct daemon_options *o)
{
    daemon_parse_options(argc, argv, DEFAULT_CONF, usage, o);
}

/* 1. configuration, time zone, rules, user.  False: exit 1. */
static bool milter_configure(struct milter *m)
{
    const struct daemon_options *o = &m->opt;
    m->conf_path = daemon_absolute_path(o->conf);
    if (!load_conf(m))
        return false;
    log_open(PROG, !o->check && !o->foreground, o->foreground || o->check,
             o->debug ? LOG_LVL_DEBUG : (enum log_level)m->conf.log_level);
    if (!tz_select(m->conf.timezone)) {
        fprintf(stderr, PROG ": %s: timezone: unknown zone %s\n", m->conf_path, m->conf.timezone);
        return false;
    }
    m->rules_dir = mem_strdup(m->conf.rules);
    m->rules = load_rules(m->rules_dir, o->check);
    if (m->rules == NULL) {
        if (!o->check)
            log_msg(LOG_LVL_ERR, "fatal", "error=\"errors in the rules of %s\"", m->rules_dir);
        return false;
    }
    if (!daemon_set_user(&m->dm, m->conf.user)) {
        fprintf(stderr, PROG ": %s: user: no such user \"%s\" (create it, e.g. adduser --system --group %s, "
                         "or name an existing one)\n", m->conf_path, m->conf.user, m->conf.user);
        if (!o->check)
            log_msg(LOG_LVL_ERR, "fatal", "error=\"user %s does not exist\"", m->conf.user);
        return false;
    }
    listen_parse(m);
    m->pl.rules_get = milter_rules_get;
    m->pl.keys_get = milter_keys_get;
    m->pl.audit = milter_audit;
    m->pl.arg = m;
    m->pl.on_error = m->conf.milter.on_error == MILTER_ON_ERROR_ACCEPT ? PL_ACCEPT : PL_TEMPFAIL;
    return true;
}

/* 7. the keys, read as `user`: every error logged (and on the terminal
 * of a shell waiting for a background start).  A key that cannot be read
 * does not stop the start: refusing it would make Postfix tempfail every
 * tenant's mail (or pass it unsigned, with milter_default_action =
 * accept).  Only the mail that key would sign gets the on_error answer,
 * each with its log line and audit record, until a reload brings a
 * readable key. */
static void milter_keys_start(struct milter *m)
{
    struct diags g;
    diags_init(&g);
    struct dkim_keys *k = NULL;
    if (!load_keys(m->rules, true, &k, &g)) {
        log_diags(LOG_LVL_ERR, "key_error", &g);
        if (!m->opt.foreground)
            diags_print(&g, stderr);
        if (k == NULL)
            startup_fail(m, "%zu error%s in the DKIM keys of the rules of %s (read as user %s)", g.n, plural(g.n),
                         m->rules_dir, m->dm.pw.pw_name);
        log_msg(LOG_LVL_ERR, "key_error",
                "error=\"%zu DKIM key%s of the rules of %s cannot be read (as user %s): the mail they would sign "
                "gets the on_error answer (%s) until a reload with readable keys\"",
                g.n, plural(g.n), m->rules_dir, m->dm.pw.pw_name,
                m->pl.on_error == PL_ACCEPT ? "accept, unsigned" : "tempfail");
    }
    diags_free(&g);
    m->keys = k;
}

static void log_start(const struct milter *m)
{
    struct buf kv;
    buf_init(&kv);
    buf_kv(&kv, "version", PACKAGE_VERSION);
    buf_kvf(&kv, "pid", "%ld", (long)getpid());
    buf_kv(&kv, "listen", m->conf.milter.listen);
    buf_kvf(&kv, "tenants", "%zu", m->rules->n_tenants);
    buf_kvf(&kv, "keys", "%zu", keys_count(m->keys));
    buf_kvf(&kv, "broken_keys", "%zu", dkim_keys_broken(m->keys));
    buf_kv(&kv, "rules", m->rules_dir);
    buf_kv(&kv, "state_dir", m->conf.state_dir);
    buf_kv(&kv, "user", m->dm.pw.pw_name);
    buf_kv(&kv, "on_error", m->pl.on_error == PL_ACCEPT ? "accept" : "tempfail");
    buf_kv(&kv, "tcp_tune", m->unix_path != NULL ? "n/a" : tcp_tune_enabled() ? "on" : "off");
    buf_kv(&kv, "clamd", m->conf.clamd.socket != NULL ? m->conf.clamd.socket : "off");
    buf_kv(&kv, "spamd", m->conf.spamd.socket != NULL ? m->conf.spamd.socket : "off");
    log_event(LOG_LVL_INFO, "start", &kv);
    buf_free(&kv);
}

/* 2b. DNS queries of the inbound checks (libspf2, libopendmarc; the DKIM
 * key queries have their own resolver state, auth_dkim.c) go through the
 * system resolver: RES_OPTIONS bounds each to milter.dns_timeout and one
 * attempt, unless the administrator has set it.  glibc reads it once,
 * with resolv.conf, at the first res_ninit() of the process (libopendkim's
 * dkim_init() in the key loading is one): so before anything else. */
static void milter_dns_options(const struct milter *m)
{
    unsigned timeout_s = (unsigned)((m->conf.milter.dns_timeout_ms + 999) / 1000);
    if (getenv("RES_OPTIONS") == NULL) {
        char opts[64];
        snprintf(opts, sizeof opts, "timeout:%u attempts:1", timeout_s);
        setenv("RES_OPTIONS", opts, 1); /* no thread is running yet */
    }
}

/* 8b. the inbound checks. */
static void milter_inbound_start(struct milter *m)
{
    struct buf err;
    buf_init(&err);
    unsigned timeout_s = (unsigned)((m->conf.milter.dns_timeout_ms + 999) / 1000);
    m->in.authserv_id = m->conf.milter.authserv_id;
    m->in.dkim_max = (unsigned)m->conf.milter.dkim_verify_max;
    m->in.temperror_accept = m->conf.milter.inbound_temperror == TEMPERROR_ACCEPT;
    m->in.bad_from_accept = m->conf.milter.inbound_bad_from == BAD_FROM_ACCEPT;
    if ((m->in.spf = spf_checker_new(false, &err)) == NULL)
        startup_fail(m, "SPF (libspf2): %s", err.data);
    if ((m->in.dkimv = dkimv_lib_new(m->in.dkim_max, NULL, timeout_s, &err)) == NULL)
        startup_fail(m, "DKIM verification (libopendkim): %s", err.data);
    if ((m->in.dmarc = dmarc_lib_new(m->conf.milter.psl, &err)) == NULL)
        startup_fail(m, "DMARC (libopendmarc, %s): %s", m->conf.milter.psl, err.data);
    m->pl.inbound = &m->in;
    m->pl.selfcheck = selfcheck_new();
    buf_free(&err);
}

/* 8c. the scanners: a client per configured one (no connection yet: a
 * scanner that is down at start is its on_failure, message by message,
 * not a failed start), and a test of the spool directory. */
static void milter_scan_start(struct milter *m)
{
    struct buf err;
    buf_init(&err);
    m->scan.have_clamd = m->conf.clamd.socket != NULL;
    m->scan.have_spamd = m->conf.spamd.socket != NULL;
    m->scan.clamd_accept_on_failure = m->conf.clamd.on_failure == ON_FAILURE_ACCEPT;
    m->scan.spamd_accept_on_failure = m->conf.spamd.on_failure == ON_FAILURE_ACCEPT;
    m->scan.host = m->conf.milter.authserv_id;
    const struct conf_scanner *cs[2] = { &m->conf.clamd, &m->conf.spamd };
    struct scanner **out[2] = { &m->pl.clamd, &m->pl.spamd };
    for (int i = 0; i < 2; i++) {
        if (cs[i]->socket == NULL)
            continue;
        struct scanner_cfg sc = { i == 0 ? SCANNER_CLAMD : SCANNER_SPAMD, cs[i]->socket, cs[i]->connect_timeout_ms,
                                  cs[i]->timeout_ms, (unsigned)cs[i]->connections, cs[i]->max_size };
        if ((*out[i] = scanner_new(&sc, &err)) == NULL)
            startup_fail(m, "%s", err.data);
    }
    for (int i = 0; i < 2; i++) { /* is it there? a warning only: it may come up later */
        struct scanner *sc = *out[i];
        if (sc == NULL)
            continue;
        char answer[256];
        struct buf kv;
        buf_init(&kv);
        buf_reset(&err);
        bool ok = scanner_ping(sc, answer, sizeof answer, &err);
        buf_kv(&kv, "scanner", scanner_name(sc));
        buf_kv(&kv, "socket", cs[i]->socket);
        buf_kv(&kv, "status", ok ? "ok" : "down");
        if (ok) {
            buf_kv(&kv, "answer", answer);
        } else {
            buf_kv(&kv, "error", err.data);
            buf_kv(&kv, "meanwhile", cs[i]->on_failure == ON_FAILURE_ACCEPT ? "on_failure accept: mail passes unscanned"
                                                                           : "on_failure tempfail: mail gets 451");
        }
        log_event(ok ? LOG_LVL_INFO : LOG_LVL_WARN, "scanner", &kv);
        buf_free(&kv);
    }
    buf_reset(&err);
    m->pl.scan = &m->scan;
    m->pl.scan_memory = (size_t)m->conf.milter.scan_memory;
    m->pl.spool_dir = m->conf.milter.spool_dir != NULL ? m->conf.milter.spool_dir : m->conf.state_dir;
    if (m->scan.have_clamd || m->scan.have_spamd) {
        /* the directory takes a temporary file (as `user`) */
        struct spool *sp = spool_new(0, 1, m->pl.spool_dir);
        if (!spool_write(sp, "x", 1, &err))
            startup_fail(m, "milter.spool_dir: %s", err.data);
        spool_free(sp);
    }
    buf_free(&err);
}

/* Mode delay's wait kept under Postfix's milter_content_timeout (less a
 * margin), read with postconf: the rules that ask for more are named
 * (event=pace_warning) and wait at most that, longer waits being
 * deferred.  Postfix's default (300 s) when postconf cannot tell. */
static void milter_delay_cap(struct milter *m)
{
    bool any_delay = false;
    for (size_t i = 0; i < m->rules->n_tenants && !any_delay; i++) {
        const struct tenant *t = &m->rules->tenants[i];
        any_delay = t->pace.set && t->pace.mode == PACE_DELAY;
        for (size_t j = 0; j < t->n_accounts && !any_delay; j++)
            any_delay = t->accounts[j].pace.set && t->accounts[j].pace.mode == PACE_DELAY;
    }
    if (!any_delay)
        return; /* nothing waits (a reload adding such a rule: the default cap applies) */
    struct buf prog, out, err;
    buf_init(&prog);
    buf_init(&out);
    buf_init(&err);
    buf_printf(&prog, "%s/postconf", m->conf.milter.postfix_command_dir);
    char *const argv[] = { prog.data, (char *)"-c", m->conf.milter.postfix_config_dir, (char *)"-h",
                           (char *)"milter_content_timeout", NULL };
    uint64_t timeout_ms = 300000;
    if (cmd_run(argv, &out, &err) == 0) {
        size_t n = strcspn(out.data, "\n");
        out.data[n] = '\0';
        char gerr[128];
        uint64_t ms;
        if (n > 0 && strspn(out.data, "0123456789") == n)
            buf_puts(&out, "s"); /* Postfix's bare number: seconds */
        if (gram_duration(out.data, &ms, gerr, sizeof gerr))
            timeout_ms = ms;
        else
            log_msg(LOG_LVL_WARN, "pace_warning", "milter_content_timeout=\"%s\" error=\"%s\" assumed=300s",
                    out.data, gerr);
    } else {
        log_msg(LOG_LVL_WARN, "pace_warning", "error=\"%s\" note=\"Postfix's milter_content_timeout assumed 300s\"",
                err.data);
    }
    uint64_t cap = timeout_ms > 20000 ? timeout_ms - 10000 : timeout_ms / 2;
    m->pl.max_delay_cap_ms = cap;
    struct buf names;
    buf_init(&names);
    size_t n_over = 0;
    for (size_t i = 0; i < m->rules->n_tenants; i++) {
        const struct tenant *t = &m->rules->tenants[i];
        if (t->pace.set && t->pace.mode == PACE_DELAY && t->pace.max_delay_ms > cap && n_over++ < 10)
            buf_printf(&names, "%s%s", names.len ? ", " : "", t->name);
        for (size_t j = 0; j < t->n_accounts; j++) {
            const struct pace *pc = &t->accounts[j].pace;
            if (pc->set && pc->mode == PACE_DELAY && pc->max_delay_ms > cap && n_over++ < 10)
                buf_printf(&names, "%s%s/%s", names.len ? ", " : "", t->name, t->accounts[j].name);
        }
    }
    if (n_over > 0)
        log_msg(LOG_LVL_WARN, "pace_warning",
                "rules=%zu names=\"%s%s\" milter_content_timeout=%llums max_delay_used=%llums "
                "error=\"max_delay is not under Postfix's milter_content_timeout (less 10 s): these accounts "
                "wait at most max_delay_used, a longer wait is deferred\"",
                n_over, names.data, n_over > 10 ? ", ..." : "", (unsigned long long)timeout_ms,
                (unsigned long long)cap);
    buf_free(&names);
    buf_free(&prog);
    buf_free(&out);
    buf_free(&err);
}

/* 8d. the send-rate buckets (pacer.h) in state_dir/pace.sqlite, as
 * `user`: a restart keeps the pace. */
static void milter_pace_start(struct milter *m)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    buf_printf(&path, "%s/" PACE_STORE_FILE, m->conf.state_dir);
    m->pl.pacer = pacer_open(path.data, &err);
    if (m->pl.pacer == NULL)
        startup_fail(m, "cannot open the pacing store %s: %s", path.data, err.data);
    milter_delay_cap(m);
    buf_free(&path);
    buf_free(&err);
}

/* The rules in force for a held account's release (pacer_rules_fn),
 * copied under the snapshot's lock. */
static void milter_pace_rules(void *arg, const struct holdq_account *a, struct pace *own, struct pace *tenant)
{
    struct milter *m = arg;
    pthread_mutex_lock(&m->mu);
    const struct tenant *t = m->rules != NULL ? rules_tenant(m->rules, a->tenant) : NULL;
    if (t != NULL) {
        if (t->pace.set)
            *tenant = t->pace;
        const struct account *acc = NULL;
        for (size_t i = 0; i < t->n_accounts && acc == NULL; i++)
            if (strcmp(t->accounts[i].name, a->rule_account) == 0)
                acc = &t->accounts[i];
        if (acc == NULL && strcmp(a->rule_account, "*") == 0)
            acc = t->wildcard;
        if (acc != NULL && acc->pace.set)
            *own = acc->pace;
    }
    pthread_mutex_unlock(&m->mu);
}

/* 5b. the privileged release helper of mode hold (relhelper.h), forked
 * while still root: postsuper -H and postqueue -i of well-formed queue
 * IDs, postqueue -j, nothing else. */
static void milter_relhelper_start(struct milter *m)
{
    struct buf err;
    buf_init(&err);
    m->relh = relhelper_start(m->conf.milter.postfix_command_dir, m->conf.milter.postfix_config_dir, &err);
    if (m->relh == NULL)
        startup_fail(m, "%s", err.data);
    buf_free(&err);
}

/* 8e. the release scheduler of mode hold (releaser.h), once the audit
 * sink is open; it owns the helper from here. */
static void milter_releaser_start(struct milter *m)
{
    struct buf err;
    buf_init(&err);
    struct releaser_cfg cfg = { m->conf.milter.hold_reconcile_ms, milter_pace_rules, m, milter_audit, m };
    m->releaser = releaser_start(m->pl.pacer, m->relh, &cfg, &err);
    if (m->releaser == NULL)
        startup_fail(m, "%s", err.data);
    m->relh = NULL;
    buf_free(&err);
}

/* 2-8: everything up to serving. */
static void milter_start(struct milter *m)
{
    struct buf err;
    buf_init(&err);
    signals_block();
    milter_dns_options(m);
    if (!m->opt.foreground)
        daemon_background(&m->dm);
    tcp_tune_enable(tcp_tune_wanted());

    /* 3-5. pid file, state directory, socket (still privileged) */
    adapter_init(&m->ad, &m->pl, NULL);
    m->adapter_ready = true;
    if (!daemon_pidfile_take(&m->dm, m->conf.milter.pid_file, &err) ||
        !daemon_state_dir_prepare(&m->dm, m->conf.state_dir, &err) || !socket_open(m, &err))
        startup_fail(m, "%s", err.data);
    milter_relhelper_start(m);

    /* 6-8. privileges, keys, audit sink */
    if (!daemon_drop_privileges(&m->dm, &err))
        startup_fail(m, "%s", err.data);
    milter_keys_start(m);
    milter_inbound_start(m);
    milter_scan_start(m);
    milter_pace_start(m);
    m->sink = msink_open(m->conf.state_dir, m->conf.policyd.sync == SYNC_FULL, &err);
    if (m->sink == NULL)
        startup_fail(m, "cannot open the audit journal and store in %s: %s", m->conf.state_dir, err.data);
    milter_releaser_start(m);
    if (!reloader_start(m, &err))
        startup_fail(m, "%s", err.data);
    buf_free(&err);
}

/* 9. serve until SIGTERM/SIGINT; returns the exit status. */
static int milter_serve(struct milter *m)
{
    log_start(m);
    daemon_ready(&m->dm);
    bool clean = adapter_run(&m->ad);
    log_msg(LOG_LVL_NOTICE, "stopping", "smfi_main=%s", clean ? "ok" : "failed");
    size_t left = adapter_drain(&m->ad, MILTER_STOP_GRACE_MS);
    reloader_stop(m);
    uint64_t released = releaser_count(m->releaser);
    releaser_stop(m->releaser);
    m->releaser = NULL;
    msink_close(m->sink);
    m->sink = NULL;
    socket_remove(m);
    int status = clean ? 0 : 1;
    log_msg(LOG_LVL_INFO, "stop",
            "connections_left=%zu negotiations_refused=%llu reloads=%llu reload_failures=%llu tcp_tuned=%llu "
            "released=%llu status=%d",
            left, (unsigned long long)atomic_load(&m->ad.n_refused),
            (unsigned long long)atomic_load(&m->n_reloads), (unsigned long long)atomic_load(&m->n_reload_failures),
            (unsigned long long)tcp_tune_count(), (unsigned long long)released, status);
    return status;
}

int main(int argc, char **argv)
{
    struct milter m;
    memset(&m, 0, sizeof m);
    parse_options(argc, argv, &m.opt);
    umask(027);
    /* -f logs to stderr only (a supervisor such as systemd keeps it);
     * in the background, to syslog (facility mail) */
    log_open(PROG, !m.opt.check && !m.opt.foreground, m.opt.foreground || m.opt.check,
             m.opt.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    pthread_mutex_init(&m.mu, NULL);
    daemon_init(&m.dm, PROG);

    if (!milter_configure(&m)) {
        milter_release(&m);
        return 1;
    }
    if (m.opt.check) {
        print_summary(&m);
        bool keys_ok = check_keys(&m);
        if (keys_ok)
            printf("ok: %s; %zu tenant%s, %zu file%s in %s\n", m.conf_path, m.rules->n_tenants,
                   plural(m.rules->n_tenants), m.rules->n_files, plural(m.rules->n_files), m.rules_dir);
        milter_release(&m);
        return keys_ok ? 0 : 1;
    }
    milter_start(&m);
    int status = milter_serve(&m);
    milter_release(&m);
    return status;
}
