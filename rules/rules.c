/* rules.c: the snapshot: loading a rules directory (files parsed in parallel), sorting,
 * reference counting, and the effective settings of accounts. */
#include "rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "diag.h"
#include "log.h"
#include "rules_index.h"
#include "rules_load.h"

static int rules_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int rules_cmp_tenant(const void *a, const void *b)
{
    const struct tenant *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* *.yaml and *.yml; hidden files (editors' swap files) are not rules. */
static bool rules_is_rule_file(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

struct rules *rules_load(const char *dir, struct diags *d, struct diags *warn)
{
    DIR *dh = opendir(dir);
    struct dirent *e;
    char **files = NULL;
    size_t n = 0, cap = 0;

    if (dh == NULL) {
        diag_at(d, dir, 0, 0, "cannot open the rules directory: %s", strerror(errno));
        return NULL;
    }
    while ((e = readdir(dh)) != NULL) {
        if (!rules_is_rule_file(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            files = mem_grow(files, cap, sizeof *files);
        }
        /* Files of "." are named bare, so messages read "acme.yaml:3:5". */
        size_t l = strlen(dir) + strlen(e->d_name) + 2;
        files[n] = mem_alloc(l);
        if (strcmp(dir, ".") == 0)
            snprintf(files[n], l, "%s", e->d_name);
        else
            snprintf(files[n], l, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(dh);
    if (n > 1)
        qsort(files, n, sizeof *files, rules_cmp_str);
    return rules_load_files(dir, files, n, d, warn);
}

/* Files are independent until the cross-file checks: parse them on every
 * core (libyaml spends most of a load), each into its own slot and its own
 * diagnostics, then merge in file order so messages stay deterministic. */
struct load_job {
    char **files;
    size_t n;
    struct tenant *tenants;
    bool *ok;
    struct diags *diags;
    size_t next;               /* atomic: next file to take */
};

static void *rules_load_worker(void *arg)
{
    struct load_job *j = arg;
    size_t i;
    while ((i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->n) {
        diags_init(&j->diags[i]);
        j->ok[i] = rules_load_tenant(&j->tenants[i], j->files[i], &j->diags[i]);
    }
    return NULL;
}

static void rules_load_parallel(struct load_job *j)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nthreads = j->n < 64 || cpus < 2 ? 1 : (size_t)(cpus > 8 ? 8 : cpus);
    pthread_t tids[8];
    size_t started = 0;
    for (size_t i = 1; i < nthreads; i++) {
        if (pthread_create(&tids[started], NULL, rules_load_worker, j) != 0)
            break; /* fewer threads: the work still gets done below */
        started++;
    }
    rules_load_worker(j);
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
}

struct rules *rules_load_files(const char *dir, char **files, size_t n, struct diags *d,
                               struct diags *warn)
{
    struct rules *r = mem_alloc(sizeof *r);
    size_t before = d->n;
    struct load_job job = { files, n, NULL, NULL, NULL, 0 };

    r->refs = 1;
    r->dir = mem_strdup(dir);
    r->files = files;
    r->n_files = n;
    r->tenants = mem_array(n ? n : 1, sizeof *r->tenants);
    job.tenants = r->tenants;
    job.ok = mem_array(n ? n : 1, sizeof *job.ok);
    job.diags = mem_array(n ? n : 1, sizeof *job.diags);
    rules_load_parallel(&job);
    for (size_t i = 0; i < n; i++) {
        diags_take(d, &job.diags[i]);
        if (!job.ok[i]) {
            rules_tenant_free(&r->tenants[i]);
            continue;
        }
        if (r->n_tenants != i)
            r->tenants[r->n_tenants] = r->tenants[i];
        r->n_tenants++;
    }
    mem_free(job.ok);
    mem_free(job.diags);
    if (d->n != before) {
        rules_free(r);
        return NULL;
    }
    if (r->n_tenants > 1)
        qsort(r->tenants, r->n_tenants, sizeof *r->tenants, rules_cmp_tenant);
    for (size_t i = 0; i < r->n_tenants; i++)
        for (size_t j = 0; j < r->tenants[i].n_accounts; j++)
            r->tenants[i].accounts[j].tenant = &r->tenants[i];
    if (!rules_check_cross(r, d)) {
        rules_free(r);
        return NULL;
    }
    if (warn)
        rules_check_warn(r, warn);
    r->index = rules_index_build(r);
    return r;
}

void rules_free(struct rules *r)
{
    if (r == NULL)
        return;
    if (r->index)
        rules_index_free(r->index);
    for (size_t i = 0; i < r->n_tenants; i++)
        rules_tenant_free(&r->tenants[i]);
    mem_free(r->tenants);
    for (size_t i = 0; i < r->n_files; i++)
        mem_free(r->files[i]);
    mem_free(r->files);
    mem_free(r->dir);
    mem_free(r);
}

struct rules *rules_ref(struct rules *r)
{
    __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
    return r;
}

void rules_unref(struct rules *r)
{
    if (r != NULL && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0)
        rules_free(r);
}

const struct tenant *rules_tenant(const struct rules *r, const char *name)
{
    char lower[80];
    size_t n = strlen(name);
    if (n >= sizeof lower)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    struct tenant key = { .name = lower };
    if (r->n_tenants == 0)
        return NULL;
    return bsearch(&key, r->tenants, r->n_tenants, sizeof *r->tenants, rules_cmp_tenant);
}

const struct outbound *account_outbound(const struct account *a)
{
    if (a->outbound.set)
        return &a->outbound;
    return a->tenant->outbound.set ? &a->tenant->outbound : NULL;
}

enum on_exceed tenant_on_exceed(const struct tenant *t)
{
    return t->limits.on_exceed_set ? t->limits.on_exceed : EXCEED_DEFER;
}

enum on_exceed account_on_exceed(const struct account *a)
{
    return a->limits.on_exceed_set ? a->limits.on_exceed : tenant_on_exceed(a->tenant);
}

bool account_message_size(const struct account *a, uint64_t *out)
{
    if (a->limits.message_size_set) {
        *out = a->limits.message_size;
        return true;
    }
    *out = a->tenant->limits.message_size;
    return a->tenant->limits.message_size_set;
}

bool account_rcpt_per_msg(const struct account *a, uint64_t *out)
{
    if (a->limits.rcpt_per_msg_set) {
        *out = a->limits.recipients_per_message;
        return true;
    }
    *out = a->tenant->limits.recipients_per_message;
    return a->tenant->limits.rcpt_per_msg_set;
}

struct rules *rules_load_report(const char *prog, const char *dir, bool print_warnings)
{
    struct diags g, w;
    diags_init(&g);
    diags_init(&w);
    struct rules *r = rules_load(dir, &g, &w);
    if (r == NULL) {
        diags_print(&g, stderr);
        fprintf(stderr, "%s: %zu error%s in the rules of %s\n", prog, g.n, g.n == 1 ? "" : "s", dir);
    }
    if (print_warnings)
        diags_print(&w, stderr);
    else
        log_diags(LOG_LVL_WARN, "rules_warning", &w);
    diags_free(&g);
    diags_free(&w);
    return r;
}
