/* hold_bench.c: what pacing mode hold's schedule costs (issue 6/7,
 * milter/pacer.h, lib/holdq.h): how many held messages the pacer tracks,
 * at what memory, and how long its decisions take, on a real pace store
 * (DIR/pace.sqlite, synchronous=FULL: one fsync per commit).  A fake
 * wall clock drives the pacer, so that what is held and what is due do
 * not depend on how fast the machine is:
 *   hold     messages of ACCOUNTS accounts (round robin, each paced 600
 *            per minute, burst 10) go through pacer_decide() in mode hold,
 *            the clock 1 us on per message, until HELD are held (each
 *            account's burst goes at once and comes on top); then the
 *            process's VmRSS and VmHWM and the store's size;
 *   release  the clock an hour on: pacer_release_next() and
 *            pacer_release_done() (no postsuper: the decision is what is
 *            measured) until RELEASES are released or none is left, the
 *            clock 1 us on per release; when nothing is due it jumps to
 *            the time pacer_release_next() says.  Releases go one
 *            interval apart per account, the account released least
 *            recently first: with every account due, the first one looked
 *            at is due, the best case of a release decision;
 *   idle     at the same time, what is due is released (not timed), then
 *            IDLE calls of pacer_release_next() that find nothing due,
 *            the poll of the release thread: every account is looked at,
 *            the worst case.
 * Each call is timed (CLOCK_MONOTONIC); the store is then read through a
 * handle of its own to check the held counts.  Speed is reported, never
 * asserted: the exit status is 1 only on an error.
 * usage: hold_bench [-n HELD] [-a ACCOUNTS] [-r RELEASES] [-i IDLE]
 *                   [-d PARENT] [-k]
 * The store is in a new directory under PARENT ($TMPDIR, else /var/tmp;
 * /dev/shm for tmpfs, where a commit has no disk flush), removed at the
 * end unless -k. */
#include <errno.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "holdq.h"
#include "pacer.h"
#include "qid.h"
#include "rules.h"
#include "store.h"

#define BENCH_EPOCH_NS (INT64_C(1795000000) * 1000000000) /* 2026-11-18 */
#define BENCH_TENANT_ACCOUNTS 10                           /* accounts per tenant */

struct bench_series {
    const char *name;
    int64_t *ns;
    size_t n, cap;
    int64_t total_ns;
};

struct bench_account {
    char key[128];               /* "t0001/user3@t0001.example" */
    char tenant[24];
    char login[80];
};

static int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void bench_series_init(struct bench_series *s, const char *name, size_t cap)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->cap = cap > 0 ? cap : 16;
    s->ns = mem_array(s->cap, sizeof *s->ns);
}

static void bench_series_add(struct bench_series *s, int64_t ns)
{
    if (s->n == s->cap) {
        s->cap *= 2;
        s->ns = mem_grow(s->ns, s->cap, sizeof *s->ns);
    }
    s->ns[s->n++] = ns;
    s->total_ns += ns;
}

static int bench_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One line of the table: count, total, calls per second, median, p99, max. */
static void bench_series_print(struct bench_series *s)
{
    if (s->n == 0) {
        printf("%-28s %8d\n", s->name, 0);
        return;
    }
    qsort(s->ns, s->n, sizeof *s->ns, bench_cmp);
    size_t p99 = (s->n * 99 + 99) / 100;
    if (p99 > 0)
        p99--;
    printf("%-28s %8zu %9.3f %9.0f %10.1f %9.1f %9.1f\n", s->name, s->n, (double)s->total_ns / 1e9,
           (double)s->n * 1e9 / (double)(s->total_ns > 0 ? s->total_ns : 1), (double)s->ns[s->n / 2] / 1e3,
           (double)s->ns[p99] / 1e3, (double)s->ns[s->n - 1] / 1e3);
}

static void bench_series_free(struct bench_series *s)
{
    mem_free(s->ns);
}

/* VmRSS and VmHWM of the process, in kB (0 when unknown). */
static void bench_memory(long *rss_kb, long *hwm_kb)
{
    *rss_kb = *hwm_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

static void bench_loadavg(char *out, size_t size)
{
    snprintf(out, size, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, size, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static double bench_file_mb(const char *dir, const char *suffix)
{
    struct buf path;
    struct stat sb;
    buf_init(&path);
    buf_printf(&path, "%s/%s%s", dir, PACE_STORE_FILE, suffix);
    double mb = stat(path.data, &sb) == 0 ? (double)sb.st_size / (1024.0 * 1024.0) : 0.0;
    buf_free(&path);
    return mb;
}

static const char *bench_fs_type(const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return "?";
    switch ((unsigned long)sf.f_type) {
    case TMPFS_MAGIC: return "tmpfs";
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    default: return "other";
    }
}

/* A short Postfix queue ID, unique per i: 5 hex digits of "microseconds",
 * then the "inode number" in 7. */
static void bench_queue_id(uint64_t i, char *out, size_t size)
{
    snprintf(out, size, "%05" PRIX64 "%07" PRIX64, (i * 7919 + 12345) % 1000000, i + 0x100000);
}

/* The rules in force at a release: the account's own pace (copied, as
 * the milter's rules lookup does), none for its tenant. */
static void bench_rules(void *arg, const struct holdq_account *a, struct pace *own, struct pace *tenant)
{
    (void)a;
    (void)tenant;
    *own = *(const struct pace *)arg;
}

/* The held messages in the store, read through a handle of its own. */
static bool bench_held_in_store(const char *path, uint64_t *held, struct buf *err)
{
    struct store *st = store_open(path, STORE_READONLY, err);
    if (st == NULL)
        return false;
    struct holdq_account *acc;
    size_t n;
    bool ok = holdq_accounts(st, false, &acc, &n, err);
    *held = 0;
    for (size_t i = 0; ok && i < n; i++)
        *held += acc[i].held;
    if (ok)
        mem_free(acc);
    store_close(st);
    return ok;
}

static void bench_remove(const char *dir)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    struct buf path;
    buf_init(&path);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s%s", dir, PACE_STORE_FILE, suffixes[i]);
        unlink(path.data);
    }
    buf_free(&path);
    if (rmdir(dir) != 0)
        fprintf(stderr, "hold_bench: cannot remove %s: %s\n", dir, strerror(errno));
}

static void bench_usage(void)
{
    fprintf(stderr, "usage: hold_bench [-n HELD=100000] [-a ACCOUNTS=1000] [-r RELEASES=10000] "
                    "[-i IDLE=1000] [-d PARENT=$TMPDIR|/var/tmp] [-k]\n");
}

static bool bench_count(const char *s, uint64_t min, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > 100000000)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t n_held = 100000, n_accounts = 1000, n_releases = 10000, n_idle = 1000;
    const char *parent = getenv("TMPDIR");
    if (parent == NULL || *parent == '\0')
        parent = "/var/tmp";
    bool keep = false;
    int ch;
    while ((ch = getopt(argc, argv, "n:a:r:i:d:kh")) != -1) {
        bool ok = true;
        switch (ch) {
        case 'n': ok = bench_count(optarg, 1, &n_held); break;
        case 'a': ok = bench_count(optarg, 1, &n_accounts); break;
        case 'r': ok = bench_count(optarg, 0, &n_releases); break;
        case 'i': ok = bench_count(optarg, 0, &n_idle); break;
        case 'd': parent = optarg; break;
        case 'k': keep = true; break;
        default: bench_usage(); return 2;
        }
        if (!ok) {
            fprintf(stderr, "hold_bench: bad number for -%c: %s\n", ch, optarg);
            return 2;
        }
    }
    if (optind != argc) {
        bench_usage();
        return 2;
    }

    struct buf dir, path, err;
    buf_init(&dir);
    buf_init(&path);
    buf_init(&err);
    buf_printf(&dir, "%s/hold_bench.XXXXXX", parent);
    if (mkdtemp(dir.data) == NULL) {
        fprintf(stderr, "hold_bench: cannot make a directory under %s: %s\n", parent, strerror(errno));
        return 1;
    }
    buf_printf(&path, "%s/%s", dir.data, PACE_STORE_FILE);

    struct pace pace = { .set = true, .rate = { 600, 60, "minute" }, .burst = 10, .mode = PACE_HOLD };
    struct bench_account *acc = mem_array(n_accounts, sizeof *acc);
    for (uint64_t i = 0; i < n_accounts; i++) {
        uint64_t t = i / BENCH_TENANT_ACCOUNTS;
        snprintf(acc[i].tenant, sizeof acc[i].tenant, "t%04" PRIu64, t);
        snprintf(acc[i].login, sizeof acc[i].login, "user%" PRIu64 "@t%04" PRIu64 ".example",
                 i % BENCH_TENANT_ACCOUNTS, t);
        snprintf(acc[i].key, sizeof acc[i].key, "%s/%s", acc[i].tenant, acc[i].login);
    }
    char load_start[64], load_end[64];
    bench_loadavg(load_start, sizeof load_start);

    int rc = 1;
    long rss_open = 0, hwm_open = 0, rss_hold = 0, hwm_hold = 0, rss_end = 0, hwm_end = 0;
    struct bench_series hold, go, next, done, both, idle;
    bench_series_init(&hold, "decide: held", n_held);
    bench_series_init(&go, "decide: go at once", n_accounts * pace.burst);
    bench_series_init(&next, "release_next: claimed", n_releases);
    bench_series_init(&done, "release_done", n_releases);
    bench_series_init(&both, "release_next + done", n_releases);
    bench_series_init(&idle, "release_next: nothing due", n_idle);
    uint64_t jumps = 0, drained = 0, in_store_hold = 0, in_store_end = 0;
    double db_mb = 0, wal_mb = 0, hold_s = 0, release_s = 0;

    struct pacer *p = pacer_open(path.data, &err);
    if (p == NULL) {
        fprintf(stderr, "hold_bench: %s\n", err.data);
        goto out;
    }
    bench_memory(&rss_open, &hwm_open);

    /* hold */
    int64_t now = BENCH_EPOCH_NS;
    uint64_t msg = 0;
    int64_t phase0 = bench_now_ns();
    while (hold.n < n_held) {
        struct bench_account *a = &acc[msg % n_accounts];
        char qid[HOLDQ_QID_MAX];
        bench_queue_id(msg, qid, sizeof qid);
        struct pacer_bucket b = { .key = a->key, .pace = &pace };
        struct pacer_hold h = {
            .queue_id = qid, .tenant = a->tenant, .rule_account = a->login, .rule = &pace,
        };
        struct pacer_decision d;
        int64_t t0 = bench_now_ns();
        bool ok = pacer_decide(p, &b, 1, PACE_HOLD, 0, now, &h, &d, &err);
        int64_t t1 = bench_now_ns();
        if (!ok) {
            fprintf(stderr, "hold_bench: message %" PRIu64 ": %s\n", msg, err.data);
            goto out;
        }
        if (d.verdict == PACER_HOLD) {
            bench_series_add(&hold, t1 - t0);
        } else if (d.verdict == PACER_GO) {
            bench_series_add(&go, t1 - t0);
        } else {
            fprintf(stderr, "hold_bench: message %" PRIu64 ": verdict %d in mode hold\n", msg,
                    (int)d.verdict);
            goto out;
        }
        msg++;
        now += 1000;
    }
    hold_s = (double)(bench_now_ns() - phase0) / 1e9;
    bench_memory(&rss_hold, &hwm_hold);
    db_mb = bench_file_mb(dir.data, "");
    wal_mb = bench_file_mb(dir.data, "-wal");

    /* release */
    now += INT64_C(3600) * 1000000000;
    phase0 = bench_now_ns();
    while (next.n < n_releases) {
        struct pacer_release r;
        int64_t next_ns;
        int64_t t0 = bench_now_ns();
        int got = pacer_release_next(p, bench_rules, &pace, now, &r, &next_ns, &err);
        int64_t t1 = bench_now_ns();
        if (got < 0) {
            fprintf(stderr, "hold_bench: release: %s\n", err.data);
            goto out;
        }
        if (got == 0) {
            if (next_ns == 0)
                break; /* none left */
            if (next_ns <= now) {
                fprintf(stderr, "hold_bench: release: nothing due, next at %" PRId64 " <= now\n", next_ns);
                goto out;
            }
            now = next_ns;
            jumps++;
            continue;
        }
        if (!qid_valid(r.msg.queue_id) || r.msg.claimed_ns != now) {
            fprintf(stderr, "hold_bench: release: claimed \"%s\" at %" PRId64 "\n", r.msg.queue_id,
                    r.msg.claimed_ns);
            goto out;
        }
        bool ok = pacer_release_done(p, r.msg.queue_id, true, now, &err);
        int64_t t2 = bench_now_ns();
        if (!ok) {
            fprintf(stderr, "hold_bench: release done: %s\n", err.data);
            goto out;
        }
        bench_series_add(&next, t1 - t0);
        bench_series_add(&done, t2 - t1);
        bench_series_add(&both, t2 - t0);
        now += 1000; /* else every release has the same time and the fair order ties */
    }
    release_s = (double)(bench_now_ns() - phase0) / 1e9;

    /* idle: release what is still due now (untimed), then poll */
    for (;;) {
        struct pacer_release r;
        int64_t next_ns;
        int got = pacer_release_next(p, bench_rules, &pace, now, &r, &next_ns, &err);
        if (got == 1 && pacer_release_done(p, r.msg.queue_id, true, now, &err)) {
            drained++;
            continue;
        }
        if (got != 0) {
            fprintf(stderr, "hold_bench: idle: %s\n", err.data);
            goto out;
        }
        break;
    }
    for (uint64_t i = 0; i < n_idle; i++) {
        struct pacer_release r;
        int64_t next_ns;
        int64_t t0 = bench_now_ns();
        int got = pacer_release_next(p, bench_rules, &pace, now, &r, &next_ns, &err);
        int64_t t1 = bench_now_ns();
        if (got != 0) {
            fprintf(stderr, "hold_bench: idle poll: %s\n", got < 0 ? err.data : "a message was due");
            goto out;
        }
        bench_series_add(&idle, t1 - t0);
    }
    bench_memory(&rss_end, &hwm_end);
    bench_loadavg(load_end, sizeof load_end);
    pacer_close(p);
    p = NULL;

    if (!bench_held_in_store(path.data, &in_store_end, &err)) {
        fprintf(stderr, "hold_bench: checking the store: %s\n", err.data);
        goto out;
    }
    in_store_hold = in_store_end + next.n + drained;
    if (in_store_hold != hold.n) {
        fprintf(stderr, "hold_bench: the store holds %" PRIu64 " messages, expected %zu\n", in_store_end,
                hold.n - next.n - (size_t)drained);
        goto out;
    }

    printf("hold_bench: %zu held over %" PRIu64 " account%s (600/minute, burst 10), store in %s (%s)\n",
           hold.n, n_accounts, n_accounts == 1 ? "" : "s", dir.data, bench_fs_type(dir.data));
    printf("load average: %s at the start, %s at the end\n", load_start, load_end);
    printf("%-28s %8s %9s %9s %10s %9s %9s\n", "call", "count", "total_s", "per_s", "median_us", "p99_us",
           "max_us");
    bench_series_print(&hold);
    bench_series_print(&go);
    bench_series_print(&next);
    bench_series_print(&done);
    bench_series_print(&both);
    bench_series_print(&idle);
    printf("hold phase %.2f s (%" PRIu64 " decisions); release phase %.2f s (%zu released, %.0f/s; "
           "%" PRIu64 " clock jumps to the next due)\n",
           hold_s, msg, release_s, next.n, release_s > 0 ? (double)next.n / release_s : 0.0, jumps);
    printf("memory: VmRSS %.1f MB after open, %.1f MB after the holds, %.1f MB at the end; VmHWM %.1f MB\n",
           (double)rss_open / 1024, (double)rss_hold / 1024, (double)rss_end / 1024, (double)hwm_end / 1024);
    printf("store after the holds: %s %.1f MB + WAL %.1f MB; %" PRIu64 " held at the end (%" PRIu64
           " drained before the idle polls)\n",
           PACE_STORE_FILE, db_mb, wal_mb, in_store_end, drained);
    rc = 0;
out:
    pacer_close(p);
    if (keep)
        fprintf(stderr, "hold_bench: store kept in %s\n", dir.data);
    else
        bench_remove(dir.data);
    bench_series_free(&hold);
    bench_series_free(&go);
    bench_series_free(&next);
    bench_series_free(&done);
    bench_series_free(&both);
    bench_series_free(&idle);
    mem_free(acc);
    buf_free(&dir);
    buf_free(&path);
    buf_free(&err);
    return rc;
}
