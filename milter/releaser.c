/* releaser.c: the thread that releases held messages at their pace and
 * reconciles the schedule with Postfix's queue (see releaser.h). */
#include "releaser.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "audit.h"
#include "hmap.h"
#include "log.h"
#include "postq.h"
#include "ptime.h"

/* Longest sleep between two looks at the schedule (new holds, a pause
 * or a release by posternctl are seen within it). */
#define RELEASER_POLL_MS 200
/* After a failed postsuper or store: wait this long before the next try. */
#define RELEASER_BACKOFF_MS 5000
/* While Postfix does not answer: ask again this often. */
#define RELEASER_DOWN_POLL_MS 1000
/* A message held this recently is not judged by the reconciliation. */
#define RELEASER_YOUNG_NS (30 * (int64_t)1000000000)

struct releaser {
    struct pacer *p;
    struct relhelper *h;
    struct releaser_cfg cfg;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* monotonic: stop wakes the thread */
    bool stop;
    bool postfix_down;
    bool helper_gone;
    char kick[HOLDQ_QID_MAX];  /* released while Postfix was down: postqueue -i it once Postfix answers */
    int64_t next_reconcile_us; /* monotonic */
    uint64_t unknown_sig;      /* the set of unknown held messages last logged */
    atomic_uint_fast64_t released;
};

static int64_t releaser_wall_ns(void)
{
    struct clock wall = clock_system();
    return clock_now_us(&wall) * 1000;
}

/* Sleep ms unless stopped; false when stopping. */
static bool releaser_sleep(struct releaser *r, int64_t ms)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)(ms / 1000);
    end.tv_nsec += (long)(ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &end) != ETIMEDOUT)
        ;
    bool go_on = !r->stop;
    pthread_mutex_unlock(&r->mu);
    return go_on;
}

/* The account part of a "tenant/who" key. */
static const char *releaser_who(const char *key)
{
    const char *s = strchr(key, '/');
    return s != NULL ? s + 1 : key;
}

static void releaser_audit(struct releaser *r, const char *queue_id, const char *account, const char *tenant,
                           const char *action, const char *reason)
{
    struct audit_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.component = "milter";
    rec.tenant = tenant;
    rec.account = releaser_who(account);
    rec.queue_id = queue_id;
    rec.stage = "release";
    rec.action = action;
    rec.reason = reason;
    rec.rule = "pace";
    struct buf err;
    buf_init(&err);
    if (r->cfg.audit != NULL && !r->cfg.audit(r->cfg.audit_arg, &rec, &err))
        log_msg(LOG_LVL_ERR, "pace_error", "queue_id=%s error=\"cannot audit the %s: %s\"", queue_id, action,
                err.data);
    buf_free(&err);
}

/* The tenant part of a "tenant/who" key. */
static void releaser_tenant(const char *key, char *out, size_t size)
{
    const char *s = strchr(key, '/');
    size_t n = s != NULL ? (size_t)(s - key) : strlen(key);
    snprintf(out, size, "%.*s", (int)n, key);
}

/* Steps 2-4 of a claimed message (releaser.h); how: the audit reason's
 * beginning.  False when it could not be released (put back). */
static bool releaser_release(struct releaser *r, const struct holdq_msg *msg, const char *how, bool recovering)
{
    struct buf err;
    buf_init(&err);
    char tenant[256];
    releaser_tenant(msg->account, tenant, sizeof tenant);
    bool ok = relhelper_release(r->h, msg->queue_id, &err);
    bool gone = !ok && strncmp(err.data, "release helper gone", 19) == 0;
    if (!ok && (!recovering || gone)) {
        log_msg(LOG_LVL_ERR, "pace_error", "queue_id=%s account=%s error=\"%s\"%s", msg->queue_id, msg->account,
                err.data,
                gone ? " note=\"held messages are no longer released: restart postern-milter\"" : "");
        if (gone)
            r->helper_gone = true;
        buf_reset(&err);
        if (!pacer_release_undo(r->p, msg->queue_id, &err))
            log_msg(LOG_LVL_ERR, "pace_error", "queue_id=%s error=\"%s\"", msg->queue_id, err.data);
        r->next_reconcile_us = 0; /* gone from the hold queue? the reconciliation drops it */
        buf_free(&err);
        return false;
    }
    buf_reset(&err);
    bool delivered = relhelper_deliver(r->h, msg->queue_id, &err);
    if (!delivered && !recovering) {
        r->postfix_down = true;
        snprintf(r->kick, sizeof r->kick, "%s", msg->queue_id);
        log_msg(LOG_LVL_WARN, "pace_warning",
                "queue_id=%s error=\"%s\" note=\"Postfix does not answer: releases wait until it does; this "
                "message is in the deferred queue and leaves when Postfix runs\"",
                msg->queue_id, err.data);
    }
    buf_reset(&err);
    int64_t now = releaser_wall_ns();
    if (!pacer_release_done(r->p, msg->queue_id, !recovering, now, &err))
        log_msg(LOG_LVL_ERR, "pace_error", "queue_id=%s error=\"%s\"", msg->queue_id, err.data);
    char reason[300];
    long long held_ms = (now - msg->held_ns) / 1000000;
    snprintf(reason, sizeof reason, "%s after %lld.%03lld s on hold%s", how, held_ms / 1000, held_ms % 1000,
             delivered ? "" : " (Postfix did not answer postqueue -i: it leaves when Postfix runs)");
    releaser_audit(r, msg->queue_id, msg->account, tenant, "release", reason);
    atomic_fetch_add(&r->released, 1);
    buf_free(&err);
    return true;
}

/* Messages left claimed by a crash: released again (releaser.h). */
static void releaser_recover(struct releaser *r)
{
    struct holdq_msg *v = NULL;
    size_t n = 0;
    struct buf err;
    buf_init(&err);
    if (!pacer_release_claimed(r->p, &v, &n, &err))
        log_msg(LOG_LVL_ERR, "pace_error", "error=\"%s\"", err.data);
    for (size_t i = 0; i < n; i++)
        releaser_release(r, &v[i], "released after a restart (it was being released when the milter stopped)",
                         true);
    if (n > 0)
        log_msg(LOG_LVL_NOTICE, "pace_recover", "released=%zu", n);
    mem_free(v);
    buf_free(&err);
}

/* FNV-1a over the unknown held IDs (in postqueue's order). */
static uint64_t releaser_sig(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (h ^ 0xff) * 1099511628211u;
}

/* The schedule against postqueue -j (releaser.h). */
static void releaser_reconcile(struct releaser *r)
{
    struct buf err;
    buf_init(&err);
    int64_t t0 = releaser_wall_ns();
    struct postq_list q;
    struct buf text;
    buf_init(&text);
    bool listed = relhelper_queue(r->h, &text, &err);
    if (listed)
        postq_parse(text.data, text.len, &q);
    buf_free(&text);
    if (!listed) {
        if (!r->postfix_down)
            log_msg(LOG_LVL_WARN, "pace_warning",
                    "error=\"%s\" note=\"Postfix does not answer: releases wait until it does\"", err.data);
        r->postfix_down = true;
        buf_free(&err);
        return;
    }
    if (r->kick[0] != '\0') {
        /* the message released while Postfix was down goes first, so it
         * keeps its place; Postfix starting answers postqueue -j before
         * its flush service: still down until this works */
        buf_reset(&err);
        if (relhelper_deliver(r->h, r->kick, &err))
            r->kick[0] = '\0';
    }
    if (r->postfix_down && r->kick[0] == '\0')
        log_msg(LOG_LVL_NOTICE, "pace_resume", "note=\"Postfix answers again: releases go on\"");
    r->postfix_down = r->kick[0] != '\0';
    struct hmap where; /* queue ID -> its postq_msg */
    hmap_init(&where);
    for (size_t i = 0; i < q.n; i++)
        hmap_put(&where, q.v[i].queue_id, strlen(q.v[i].queue_id), &q.v[i], NULL);
    struct holdq_msg *v = NULL;
    size_t n = 0;
    if (!pacer_held_all(r->p, &v, &n, &err)) {
        log_msg(LOG_LVL_ERR, "pace_error", "error=\"%s\"", err.data);
        n = 0;
    }
    struct hmap known;
    hmap_init(&known);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        hmap_put(&known, v[i].queue_id, strlen(v[i].queue_id), &v[i], NULL);
        const struct postq_msg *pm = hmap_gets(&where, v[i].queue_id);
        if (v[i].claimed_ns != 0 || v[i].held_ns > t0 - RELEASER_YOUNG_NS ||
            (pm != NULL && strcmp(pm->queue_name, "hold") == 0))
            continue;
        char reason[200], tenant[256];
        if (pm != NULL)
            snprintf(reason, sizeof reason, "dropped from the schedule: released by hand (now in the %s queue)",
                     pm->queue_name);
        else
            snprintf(reason, sizeof reason, "dropped from the schedule: no longer in Postfix's queue (deleted by "
                                            "hand, or never queued)");
        buf_reset(&err);
        if (!pacer_release_done(r->p, v[i].queue_id, false, t0, &err)) {
            log_msg(LOG_LVL_ERR, "pace_error", "queue_id=%s error=\"%s\"", v[i].queue_id, err.data);
            continue;
        }
        releaser_tenant(v[i].account, tenant, sizeof tenant);
        releaser_audit(r, v[i].queue_id, v[i].account, tenant, "drop", reason);
        dropped++;
    }
    size_t unknown = 0;
    uint64_t sig = 1469598103934665603u;
    struct buf ids;
    buf_init(&ids);
    for (size_t i = 0; i < q.n; i++)
        if (strcmp(q.v[i].queue_name, "hold") == 0 && hmap_gets(&known, q.v[i].queue_id) == NULL) {
            if (unknown++ < 10)
                buf_printf(&ids, "%s%s", ids.len ? "," : "", q.v[i].queue_id);
            sig = releaser_sig(sig, q.v[i].queue_id);
        }
    if (unknown == 0)
        sig = 0;
    if (sig != r->unknown_sig && unknown > 0)
        log_msg(LOG_LVL_NOTICE, "pace_unknown_held",
                "count=%zu queue_ids=\"%s%s\" note=\"held in Postfix's hold queue, not by postern's pacing (a "
                "scanner's verdict, header_checks or by hand): not released by postern\"",
                unknown, ids.data, unknown > 10 ? ",..." : "");
    r->unknown_sig = sig;
    if (dropped > 0)
        log_msg(LOG_LVL_NOTICE, "pace_reconcile", "dropped=%zu scheduled=%zu", dropped, n - dropped);
    buf_free(&ids);
    hmap_free(&known);
    hmap_free(&where);
    mem_free(v);
    postq_list_free(&q);
    buf_free(&err);
}

static bool releaser_stopping(struct releaser *r)
{
    pthread_mutex_lock(&r->mu);
    bool s = r->stop;
    pthread_mutex_unlock(&r->mu);
    return s;
}

static void *releaser_main(void *arg)
{
    struct releaser *r = arg;
    struct buf err;
    buf_init(&err);
    releaser_recover(r);
    while (!releaser_stopping(r)) {
        int64_t mono = clock_mono_us();
        if (mono >= r->next_reconcile_us || r->postfix_down) {
            /* nothing scheduled: nothing to reconcile nor to wait for
             * (no postqueue run at all where mode hold is not used) */
            buf_reset(&err);
            if (pacer_held_any(r->p, &err) != 0 || r->kick[0] != '\0')
                releaser_reconcile(r);
            else
                r->postfix_down = false;
            r->next_reconcile_us = clock_mono_us() + (int64_t)r->cfg.reconcile_ms * 1000;
        }
        if (r->helper_gone) {
            releaser_sleep(r, 60000);
            continue;
        }
        if (r->postfix_down) {
            releaser_sleep(r, RELEASER_DOWN_POLL_MS);
            continue;
        }
        struct pacer_release rel;
        int64_t now = releaser_wall_ns(), next_ns = 0;
        buf_reset(&err);
        int rc = pacer_release_next(r->p, r->cfg.rules, r->cfg.rules_arg, now, &rel, &next_ns, &err);
        if (rc == 1) {
            char how[160];
            snprintf(how, sizeof how, "released at %s", rel.rate);
            if (!releaser_release(r, &rel.msg, how, false))
                releaser_sleep(r, RELEASER_BACKOFF_MS);
            continue;
        }
        if (rc < 0) {
            log_msg(LOG_LVL_ERR, "pace_error", "error=\"%s\"", err.data);
            releaser_sleep(r, RELEASER_BACKOFF_MS);
            continue;
        }
        int64_t ms = RELEASER_POLL_MS;
        if (next_ns > now && (next_ns - now) / 1000000 < ms)
            ms = (next_ns - now + 999999) / 1000000;
        releaser_sleep(r, ms > 0 ? ms : 1);
    }
    buf_free(&err);
    return NULL;
}

struct releaser *releaser_start(struct pacer *p, struct relhelper *h, const struct releaser_cfg *cfg,
                                struct buf *err)
{
    struct releaser *r = mem_alloc(sizeof *r);
    r->p = p;
    r->h = h;
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&r->thread, NULL, releaser_main, r);
    r->thread_started = rc == 0;
    if (rc != 0) {
        buf_printf(err, "cannot start the release thread: %s", strerror(rc));
        r->h = NULL; /* the caller keeps it */
        releaser_stop(r);
        return NULL;
    }
    return r;
}

void releaser_stop(struct releaser *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->thread_started)
        pthread_join(r->thread, NULL);
    if (r->h != NULL)
        relhelper_stop(r->h);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    mem_free(r);
}

uint64_t releaser_count(const struct releaser *r)
{
    return r != NULL ? atomic_load(&r->released) : 0;
}
