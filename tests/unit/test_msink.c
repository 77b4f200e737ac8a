/* test_msink.c: unit tests of postern-milter's audit sink (msink.c):
 * records written from several threads at once all reach the store, once
 * each; the ingest thread moves them while the sink is open; what an
 * earlier run left in the journal is ingested at open; a write the
 * journal's disk cannot take fails cleanly (nothing of it stored, the
 * sink and the journal usable after it); an unusable state directory is
 * refused with an error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "journal.h"
#include "log.h"
#include "msink.h"
#include "unit.h"

#define T_THREADS 4
#define T_PER_THREAD 500

/* --- helpers ------------------------------------------------------------- */

/* A temporary state directory. */
struct fix {
    char root[64];
    char db[128];
    char jdir[128];
};

static void fix_open(struct fix *f)
{
    snprintf(f->root, sizeof f->root, "/tmp/postern-test-msink-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->root));
    snprintf(f->db, sizeof f->db, "%s/" MSINK_STORE_FILE, f->root);
    snprintf(f->jdir, sizeof f->jdir, "%s/" MSINK_JOURNAL_DIR, f->root);
}

static void fix_close(struct fix *f)
{
    unit_rm_tree(f->root);
    ck_assert_int_ne(access(f->root, F_OK), 0);
}

static void setup(void)
{
    log_open("test_msink", false, false, LOG_LVL_ERR);
}

static struct msink *open_sink(const struct fix *f)
{
    struct buf err;
    buf_init(&err);
    struct msink *m = msink_open(f->root, false, &err);
    ck_assert_msg(m != NULL, "msink_open: %s", err.data);
    buf_free(&err);
    return m;
}

/* A milter audit record naming its writer in instance. */
static void make_rec(struct audit_rec *r, const char *instance)
{
    memset(r, 0, sizeof *r);
    r->component = "milter";
    r->tenant = "acme";
    r->sender = "alice@acme.example";
    r->queue_id = "4XyZ1";
    r->instance = instance;
    r->stage = "eom";
    r->action = "sign";
    r->rule = "dkim";
}

static bool write_one(struct msink *m, const char *instance, struct buf *err)
{
    struct audit_rec r;
    make_rec(&r, instance);
    return msink_write(m, &r, err);
}

/* One integer from the store file (a connection of its own). */
static long long sql_int(const struct fix *f, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static long long audit_rows(const struct fix *f)
{
    return sql_int(f, "SELECT count(*) FROM audit");
}

/* Wait up to 5 s for the store to hold n audit rows. */
static bool wait_rows(const struct fix *f, long long n)
{
    for (int i = 0; i < 500; i++) {
        if (audit_rows(f) == n)
            return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Replace the journal file the sink writes (open for writing only) with
 * /dev/full, as a full disk would make it (tests/policy/golden.c). */
static void break_journal(const struct fix *f)
{
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(full, 0);
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char link[300], target[512];
    int broken = 0;
    size_t n = strlen(f->jdir);
    while ((e = readdir(d)) != NULL) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        int fd = atoi(e->d_name);
        if (strncmp(target, f->jdir, n) != 0 || target[n] != '/' || (fcntl(fd, F_GETFL) & O_ACCMODE) != O_WRONLY)
            continue;
        ck_assert_int_eq(dup2(full, fd), fd);
        broken++;
    }
    closedir(d);
    close(full);
    ck_assert_int_eq(broken, 1);
}

/* --- concurrent writers ---------------------------------------------------- */

struct writer {
    struct msink *m;
    int n;                      /* the thread's number */
    int failed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct buf err;
    buf_init(&err);
    char instance[32];
    for (int i = 0; i < T_PER_THREAD; i++) {
        snprintf(instance, sizeof instance, "t%d-%d", w->n, i);
        if (!write_one(w->m, instance, &err))
            w->failed++;
    }
    buf_free(&err);
    return NULL;
}

START_TEST(test_concurrent_writes)
{
    struct fix f;
    fix_open(&f);
    struct msink *m = open_sink(&f);
    pthread_t th[T_THREADS];
    struct writer w[T_THREADS];
    for (int i = 0; i < T_THREADS; i++) {
        w[i] = (struct writer){ .m = m, .n = i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < T_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(w[i].failed, 0);
    }
    msink_close(m);

    const long long total = T_THREADS * T_PER_THREAD;
    ck_assert_int_eq(audit_rows(&f), total);
    ck_assert_int_eq(sql_int(&f, "SELECT count(DISTINCT instance) FROM audit"), total);
    ck_assert_int_eq(sql_int(&f, "SELECT count(*) FROM audit WHERE component = 'milter' AND action = 'sign' "
                                 "AND queue_id = '4XyZ1' AND tenant = 'acme'"),
                     total);
    ck_assert_int_eq(sql_int(&f, "SELECT journal_id FROM ingest_state"), total);

    /* opened again: nothing ingested twice, ids go on */
    m = open_sink(&f);
    struct buf err;
    buf_init(&err);
    ck_assert_msg(write_one(m, "again", &err), "%s", err.data);
    buf_free(&err);
    msink_close(m);
    ck_assert_int_eq(audit_rows(&f), total + 1);
    ck_assert_int_eq(sql_int(&f, "SELECT journal_id FROM ingest_state"), total + 1);
    fix_close(&f);
}
END_TEST

/* --- the ingest thread and the start-up ingestion ------------------------ */

START_TEST(test_ingested_while_open)
{
    struct fix f;
    fix_open(&f);
    struct msink *m = open_sink(&f);
    struct buf err;
    buf_init(&err);
    ck_assert_msg(write_one(m, "one", &err), "%s", err.data);
    ck_assert_msg(write_one(m, "two", &err), "%s", err.data);
    ck_assert_msg(wait_rows(&f, 2), "the ingest thread did not move the records (%lld rows)", audit_rows(&f));
    buf_free(&err);
    msink_close(m);
    ck_assert_int_eq(audit_rows(&f), 2);
    fix_close(&f);
}
END_TEST

START_TEST(test_leftover_ingested_at_open)
{
    struct fix f;
    fix_open(&f);
    struct buf err;
    buf_init(&err);
    /* a run that journaled 3 records and ended before ingesting them */
    struct journal *j = journal_open(f.jdir, 0, false, &err);
    ck_assert_msg(j != NULL, "%s", err.data);
    for (int i = 0; i < 3; i++) {
        struct audit_rec r;
        make_rec(&r, "left");
        ck_assert_int_gt(journal_add(j, &r, NULL, 0, NULL, &err), 0);
    }
    ck_assert_msg(journal_commit(j, &err), "%s", err.data);
    journal_close(j);

    struct msink *m = open_sink(&f);
    /* before the ingest thread's first round (0.2 s) */
    ck_assert_int_eq(audit_rows(&f), 3);
    ck_assert_msg(write_one(m, "new", &err), "%s", err.data);
    msink_close(m);
    ck_assert_int_eq(audit_rows(&f), 4);
    ck_assert_int_eq(sql_int(&f, "SELECT count(*) FROM audit WHERE instance = 'left'"), 3);
    buf_free(&err);
    fix_close(&f);
}
END_TEST

/* --- failures ------------------------------------------------------------------- */

START_TEST(test_full_disk)
{
    struct fix f;
    fix_open(&f);
    struct msink *m = open_sink(&f);
    struct buf err;
    buf_init(&err);
    ck_assert_msg(write_one(m, "before", &err), "%s", err.data);
    break_journal(&f);
    buf_reset(&err);
    ck_assert(!write_one(m, "lost", &err));
    ck_assert_msg(strstr(err.data, strerror(ENOSPC)) != NULL, "%s", err.data);
    buf_reset(&err);
    ck_assert(!write_one(m, "lost", &err)); /* and again: nothing half-written in between */
    ck_assert(err.len > 0);
    msink_close(m);
    ck_assert_int_eq(audit_rows(&f), 1);
    ck_assert_int_eq(sql_int(&f, "SELECT count(*) FROM audit WHERE instance = 'lost'"), 0);

    /* the journal on disk was never touched by the failed writes */
    m = open_sink(&f);
    ck_assert_msg(write_one(m, "after", &err), "%s", err.data);
    msink_close(m);
    ck_assert_int_eq(audit_rows(&f), 2);
    ck_assert_int_eq(sql_int(&f, "SELECT journal_id FROM ingest_state"), 2);
    buf_free(&err);
    fix_close(&f);
}
END_TEST

START_TEST(test_bad_state_dir)
{
    struct buf err;
    buf_init(&err);
    ck_assert_ptr_null(msink_open("/nonexistent/postern-test-msink", false, &err));
    ck_assert_msg(strstr(err.data, "cannot open the store") != NULL, "%s", err.data);
    msink_close(NULL);

    /* the journal's place taken by a file */
    struct fix f;
    fix_open(&f);
    FILE *fp = fopen(f.jdir, "w");
    ck_assert_ptr_nonnull(fp);
    fclose(fp);
    buf_reset(&err);
    ck_assert_ptr_null(msink_open(f.root, false, &err));
    ck_assert_msg(strstr(err.data, "cannot open the journal") != NULL, "%s", err.data);
    buf_free(&err);
    fix_close(&f);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_concurrent_writes);
    tcase_add_test(tc, test_ingested_while_open);
    tcase_add_test(tc, test_leftover_ingested_at_open);
    tcase_add_test(tc, test_full_disk);
    tcase_add_test(tc, test_bad_state_dir);
}

UNIT_MAIN("msink", add_tests)
