/* ctl_bounces.c: posternctl bounces [--tenant T] [--since TIME] [--json]:
 * the bounces and deferrals of the mail log that posternctl ingest read
 * into STATE_DIR/maillog.sqlite (maillog_event, kind "delivery"),
 * grouped by tenant, class (bounce.h: unknown user, mailbox full, too
 * big, policy, DNS or route, TLS, other) and receiving domain, with one
 * example of the receivers' replies.  A message's tenant is found as for
 * "queue" (ctl_attr.c): the milter's audit record of its queue ID, else
 * its sender (qmgr's from=, also in the log) by the rules. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alloc.h"
#include "bounce.h"
#include "ctl.h"
#include "hmap.h"

#define BOUNCES_STORE_FILE "maillog.sqlite"
#define BOUNCES_EXAMPLE_MAX 120 /* characters of the example reply in the table */

struct bounces_row {
    char *tenant, *domain;
    enum bounce_class cls;
    uint64_t bounced, deferred;
    int64_t last_us;
    char *example;             /* the latest reply */
};

/* The domain of an address, lowercased, into out. */
static void bounces_domain(const char *rcpt, char *out, size_t size)
{
    const char *at = strrchr(rcpt, '@');
    snprintf(out, size, "%s", at != NULL && at[1] != '\0' ? at + 1 : "-");
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

static struct bounces_row *bounces_row(struct hmap *rows, const char *tenant, enum bounce_class cls,
                                       const char *domain, struct bounces_row ***v, size_t *n)
{
    struct buf key;
    buf_init(&key);
    buf_add(&key, tenant, strlen(tenant) + 1);
    buf_add(&key, bounce_class_name(cls), strlen(bounce_class_name(cls)) + 1);
    buf_puts(&key, domain);
    struct bounces_row *row = hmap_get(rows, key.data, key.len);
    if (row == NULL) {
        row = mem_alloc(sizeof *row);
        row->tenant = mem_strdup(tenant);
        row->domain = mem_strdup(domain);
        row->cls = cls;
        hmap_put(rows, key.data, key.len, row, NULL);
        *v = mem_grow(*v, *n + 1, sizeof **v);
        (*v)[(*n)++] = row;
    }
    buf_free(&key);
    return row;
}

/* Tenant, then the most bounced and deferred first, then class and domain. */
static int bounces_cmp(const void *a, const void *b)
{
    const struct bounces_row *x = *(const struct bounces_row *const *)a, *y = *(const struct bounces_row *const *)b;
    int d = strcmp(x->tenant, y->tenant);
    if (d != 0)
        return d;
    uint64_t nx = x->bounced + x->deferred, ny = y->bounced + y->deferred;
    if (nx != ny)
        return nx > ny ? -1 : 1;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

/* The tenants found so far, per queue ID (the map's values are names). */
struct bounces_cache {
    struct hmap map;
    char **names;              /* every value, for freeing */
    size_t n;
};

/* The message's tenant, cached per queue ID. */
static const char *bounces_tenant(struct bounces_cache *cache, struct store *ms, const struct rules *r,
                                  const char *qid, const char *sender)
{
    char *t = hmap_gets(&cache->map, qid);
    if (t != NULL)
        return t;
    struct ctl_attr a;
    memset(&a, 0, sizeof a);
    struct buf err;
    buf_init(&err);
    if (!ctl_attr_lookup(ms, qid, &a, &err))
        fprintf(stderr, "posternctl: warning: %s attributed by its sender only: %s\n", qid, err.data);
    const char *tenant, *account;
    ctl_attr_resolve(r, &a, sender, &tenant, &account);
    t = mem_strdup(tenant);
    ctl_attr_free(&a);
    buf_free(&err);
    hmap_put(&cache->map, qid, strlen(qid), t, NULL);
    cache->names = mem_grow(cache->names, cache->n + 1, sizeof *cache->names);
    cache->names[cache->n++] = t;
    return t;
}

static void bounces_print_text(struct bounces_row **v, size_t n)
{
    printf("%-16s %-14s %-28s %8s %8s  %s\n", "TENANT", "CLASS", "DOMAIN", "BOUNCED", "DEFERRED", "EXAMPLE");
    for (size_t i = 0; i < n; i++) {
        char ex[BOUNCES_EXAMPLE_MAX + 4];
        size_t len = strlen(v[i]->example);
        snprintf(ex, sizeof ex, "%.*s%s", BOUNCES_EXAMPLE_MAX, v[i]->example, len > BOUNCES_EXAMPLE_MAX ? "..." : "");
        printf("%-16s %-14s %-28s %8llu %8llu  ", v[i]->tenant, bounce_class_name(v[i]->cls), v[i]->domain,
               (unsigned long long)v[i]->bounced, (unsigned long long)v[i]->deferred);
        ctl_put_field(stdout, ex);
        putchar('\n');
    }
}

static void bounces_print_json(struct bounces_row **v, size_t n)
{
    fputs("[", stdout);
    for (size_t i = 0; i < n; i++) {
        char last[48];
        ctl_time_format((time_t)(v[i]->last_us / 1000000), last, sizeof last);
        fputs(i ? ",\n {\"tenant\": " : "\n {\"tenant\": ", stdout);
        ctl_put_json(stdout, v[i]->tenant);
        fputs(", \"class\": ", stdout);
        ctl_put_json(stdout, bounce_class_name(v[i]->cls));
        fputs(", \"label\": ", stdout);
        ctl_put_json(stdout, bounce_class_label(v[i]->cls));
        fputs(", \"domain\": ", stdout);
        ctl_put_json(stdout, v[i]->domain);
        printf(", \"bounced\": %llu, \"deferred\": %llu, \"last\": ", (unsigned long long)v[i]->bounced,
               (unsigned long long)v[i]->deferred);
        ctl_put_json(stdout, last);
        fputs(", \"example\": ", stdout);
        ctl_put_json(stdout, v[i]->example);
        fputs("}", stdout);
    }
    fputs(n ? "\n]\n" : "]\n", stdout);
}

/* The delivery events since since_us into rows. */
static bool bounces_collect(struct store *s, struct store *ms, const struct rules *r, int64_t since_us,
                            const char *tenant, struct hmap *rows, struct bounces_row ***v, size_t *n,
                            struct buf *err)
{
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT e.queue_id, e.time_us, e.rcpt, e.dsn, e.status, e.reply, "
                                 "(SELECT f.sender FROM maillog_event f WHERE f.queue_id = e.queue_id AND "
                                 "f.kind = 'queued' ORDER BY f.time_us DESC LIMIT 1) "
                                 "FROM maillog_event e WHERE e.kind = 'delivery' AND e.time_us >= ?1 AND "
                                 "e.status IN ('bounced', 'deferred', 'expired', 'undeliverable') "
                                 "ORDER BY e.time_us",
                                 err);
    if (q == NULL)
        return false;
    sqlite3_bind_int64(q, 1, since_us);
    struct bounces_cache cache;
    memset(&cache, 0, sizeof cache);
    hmap_init(&cache.map);
    enum store_step st;
    while ((st = store_step(s, q, "reading the mail log's deliveries", err)) == STORE_ROW) {
        const char *qid = (const char *)sqlite3_column_text(q, 0);
        const char *rcpt = (const char *)sqlite3_column_text(q, 2);
        const char *dsn = (const char *)sqlite3_column_text(q, 3);
        const char *status = (const char *)sqlite3_column_text(q, 4);
        const char *reply = (const char *)sqlite3_column_text(q, 5);
        const char *sender = (const char *)sqlite3_column_text(q, 6);
        if (qid == NULL || status == NULL)
            continue;
        const char *t = bounces_tenant(&cache, ms, r, qid, sender);
        if (tenant != NULL && strcmp(t, tenant) != 0)
            continue;
        enum bounce_class cls = bounce_classify(dsn, dsn != NULL ? strlen(dsn) : 0, status, strlen(status),
                                                reply, reply != NULL ? strlen(reply) : 0, NULL);
        if (cls == BOUNCE_NONE)
            continue;
        char domain[256];
        bounces_domain(rcpt != NULL ? rcpt : "", domain, sizeof domain);
        struct bounces_row *row = bounces_row(rows, t, cls, domain, v, n);
        if (strcmp(status, "deferred") == 0)
            row->deferred++;
        else
            row->bounced++;
        row->last_us = sqlite3_column_int64(q, 1);
        mem_free(row->example);
        row->example = mem_strdup(reply != NULL ? reply : "");
    }
    store_stmt_done(q);
    for (size_t i = 0; i < cache.n; i++)
        mem_free(cache.names[i]);
    mem_free(cache.names);
    hmap_free(&cache.map);
    return st == STORE_DONE;
}

int ctl_bounces(struct ctl *c, int argc, char **argv)
{
    const char *tenant;
    int64_t since_us;
    bool json;
    int st = ctl_report_opts(c, argc, argv, &tenant, &since_us, &json);
    if (st >= 0)
        return st;
    struct buf err, path;
    buf_init(&err);
    buf_init(&path);
    int rc = 1;
    struct rules *r = ctl_load_rules(c, true);
    struct store *s = NULL, *ms = NULL;
    struct bounces_row **v = NULL;
    size_t n = 0;
    if (r == NULL)
        goto out;
    if (tenant != NULL && rules_tenant(r, tenant) == NULL) {
        fprintf(stderr, "posternctl: no tenant \"%s\" in the rules %s\n", tenant, ctl_rules_dir(c));
        goto out;
    }
    buf_printf(&path, "%s/%s", c->conf.state_dir, BOUNCES_STORE_FILE);
    if (access(path.data, F_OK) != 0) {
        fprintf(stderr, "posternctl: no mail log ingested at %s (posternctl ingest MAILLOG reads it)\n", path.data);
        goto out;
    }
    s = store_open(path.data, STORE_READONLY, &err);
    if (s == NULL) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        goto out;
    }
    ms = ctl_attr_open(c);
    struct hmap rows;
    hmap_init(&rows);
    bool ok = bounces_collect(s, ms, r, since_us, tenant, &rows, &v, &n, &err);
    hmap_free(&rows);
    if (!ok) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        goto out;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, bounces_cmp);
    if (json)
        bounces_print_json(v, n);
    else if (n == 0) {
        char from[48];
        ctl_time_format((time_t)(since_us / 1000000), from, sizeof from);
        printf("no bounce nor deferral%s%s since %s\n", tenant != NULL ? " of tenant " : "",
               tenant != NULL ? tenant : "", from);
    }
    else
        bounces_print_text(v, n);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        mem_free(v[i]->tenant);
        mem_free(v[i]->domain);
        mem_free(v[i]->example);
        mem_free(v[i]);
    }
    mem_free(v);
    if (s != NULL)
        store_close(s);
    if (ms != NULL)
        store_close(ms);
    rules_unref(r);
    buf_free(&err);
    buf_free(&path);
    return rc;
}
