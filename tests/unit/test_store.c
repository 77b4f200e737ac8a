/* test_store.c: unit tests of the SQLite store (open, pragmas, schema
 * migrations), the audit trail (write, read back, filters, log line) and
 * the quota counters (limits, atomicity, overflow, calendar windows in
 * non-UTC zones, garbage collection, listing and resetting by key prefix,
 * several handles and processes, failures). */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "audit.h"
#include "buf.h"
#include "counters.h"
#include "log.h"
#include "ptime.h"
#include "store.h"
#include "unit.h"

/* --- helpers ------------------------------------------------------------- */

struct tdb {
    char dir[64];
    char path[128];
};

static void tdb_make(struct tdb *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/postern-test-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/state.db", t->dir);
}

static void tdb_remove(struct tdb *t)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    ck_assert_int_eq(rmdir(t->dir), 0);
}

static struct store *open_ok(const char *path, unsigned flags)
{
    struct buf err;
    buf_init(&err);
    struct store *s = store_open(path, flags, &err);
    ck_assert_msg(s != NULL, "store_open: %s", err.data);
    buf_free(&err);
    return s;
}

/* Run sql on a connection of our own (not through the store). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

/* The first column of the first row of sql, as text (caller frees). */
static char *raw_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    const char *v = (const char *)sqlite3_column_text(st, 0);
    char *out = mem_strdup(v != NULL ? v : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static long long raw_int(const char *path, const char *sql)
{
    char *s = raw_text(path, sql);
    long long v = strtoll(s, NULL, 10);
    mem_free(s);
    return v;
}

/* "2026-10-25T12:00:00Z" -> Unix seconds. */
static time_t iso(const char *s)
{
    struct tm tm = { 0 };
    ck_assert_int_eq(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static int64_t us(time_t t)
{
    return (int64_t)t * 1000000;
}

/* A store, a counters backend on it and an injected clock. */
struct fix {
    struct tdb db;
    struct store *s;
    struct counters *c;
    int64_t now;
    struct buf err;
};

static void fix_open(struct fix *f, const char *tz, const char *now)
{
    ck_assert(tz_select(tz));
    tdb_make(&f->db);
    f->s = open_ok(f->db.path, 0);
    f->now = now != NULL ? us(iso(now)) : 0;
    f->c = counters_sqlite_open(f->s, clock_fixed(&f->now));
    buf_init(&f->err);
}

static void fix_close(struct fix *f)
{
    counters_close(f->c);
    store_close(f->s);
    buf_free(&f->err);
    tdb_remove(&f->db);
}

/* check_add of one req; returns the status. */
static int add1(struct fix *f, const char *key, enum window_unit u, uint64_t add, uint64_t limit,
                struct counter_result *res)
{
    struct counter_req req = { key, u, add, limit };
    struct counter_result r;
    int rc = counters_check_add(f->c, &req, 1, true, res != NULL ? res : &r, &f->err);
    ck_assert_msg(rc != COUNTERS_ERROR, "check_add: %s", f->err.data);
    return rc;
}

static uint64_t get1(struct fix *f, const char *key, enum window_unit u)
{
    uint64_t v = 12345;
    time_t s, e;
    ck_assert_msg(counters_get(f->c, key, u, &v, &s, &e, &f->err), "get: %s", f->err.data);
    return v;
}

static void setup(void)
{
    log_open("test_store", false, false, LOG_LVL_DEBUG);
    ck_assert(tz_select("UTC"));
}

/* --- store ----------------------------------------------------------------- */

START_TEST(test_schema_created_and_idempotent)
{
    struct tdb t;
    tdb_make(&t);
    for (int i = 0; i < 3; i++) {
        struct store *s = open_ok(t.path, 0);
        ck_assert_int_eq(store_schema_version(s), store_schema_latest());
        ck_assert_str_eq(store_path(s), t.path);
        store_close(s);
    }
    ck_assert_int_eq(raw_int(t.path, "PRAGMA user_version"), store_schema_latest());
    ck_assert_int_eq(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                     "AND name IN ('audit', 'counters')"), 2);
    ck_assert_int_eq(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                     "AND name IN ('audit_time', 'audit_tenant', "
                                     "'audit_queue_id', 'counters_end')"), 4);
    tdb_remove(&t);
}
END_TEST

START_TEST(test_migrates_an_empty_database)
{
    struct tdb t;
    tdb_make(&t);
    raw_exec(t.path, "CREATE TABLE unrelated (x); PRAGMA user_version = 0;");
    struct store *s = open_ok(t.path, 0);
    ck_assert_int_eq(store_schema_version(s), store_schema_latest());
    store_close(s);
    ck_assert_int_eq(raw_int(t.path, "SELECT count(*) FROM audit"), 0);
    tdb_remove(&t);
}
END_TEST

START_TEST(test_wal_mode)
{
    struct tdb t;
    tdb_make(&t);
    struct store *s = open_ok(t.path, 0);
    char *mode = raw_text(t.path, "PRAGMA journal_mode");
    ck_assert_str_eq(mode, "wal");
    mem_free(mode);
    store_close(s);
    tdb_remove(&t);
}
END_TEST

START_TEST(test_future_database_refused)
{
    struct tdb t;
    struct buf err;
    char sql[64];
    tdb_make(&t);
    buf_init(&err);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_latest() + 1);
    raw_exec(t.path, sql);
    ck_assert_ptr_null(store_open(t.path, 0, &err));
    ck_assert_msg(strstr(err.data, t.path) != NULL && strstr(err.data, "newer") != NULL,
                  "%s", err.data);
    ck_assert_ptr_null(store_open(t.path, STORE_READONLY, &err));
    ck_assert_msg(strstr(err.data, "newer") != NULL, "%s", err.data);
    /* nothing was changed */
    ck_assert_int_eq(raw_int(t.path, "PRAGMA user_version"), store_schema_latest() + 1);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

/* Files that cannot be opened: each error names the file and the cause. */
static const struct open_case {
    const char *name;       /* under the test directory */
    const char *content;    /* written first unless NULL; "PRAGMA...": run by SQLite */
    unsigned flags;
    const char *expect;     /* in the message */
} open_cases[] = {
    { "missing/state.db", NULL, 0, "unable to open" },
    { "garbage.db", "this is not an SQLite database, not at all, really not.....", 0,
      "not a database" },
    { "absent.db", NULL, STORE_READONLY, "unable to open" },
    { "v0.db", "", STORE_READONLY, "older" },
    { "negative.db", "PRAGMA user_version = -3", 0, "invalid schema version -3" },
};

START_TEST(test_open_errors)
{
    const struct open_case *c = &open_cases[_i];
    struct tdb t;
    struct buf err;
    char path[192];
    tdb_make(&t);
    buf_init(&err);
    snprintf(path, sizeof path, "%s/%s", t.dir, c->name);
    if (c->content != NULL && strncmp(c->content, "PRAGMA", 6) == 0) {
        raw_exec(path, c->content);
    } else if (c->content != NULL) {
        FILE *fp = fopen(path, "w");
        ck_assert_ptr_nonnull(fp);
        fputs(c->content, fp);
        fclose(fp);
    }
    ck_assert_ptr_null(store_open(path, c->flags, &err));
    ck_assert_msg(strstr(err.data, path) != NULL, "no file name in: %s", err.data);
    ck_assert_msg(strstr(err.data, c->expect) != NULL, "%s: %s", c->name, err.data);
    unlink(path);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

START_TEST(test_memory_store)
{
    struct store *s = open_ok(":memory:", 0);
    ck_assert_int_eq(store_schema_version(s), store_schema_latest());
    store_close(s);
    store_close(NULL);
}
END_TEST

/* --- audit ----------------------------------------------------------------- */

static const char *const full_rcpts[] = { "a@example.org", "b@example.net", "c@example.com" };

static struct audit_rec full_rec(void)
{
    return (struct audit_rec){
        .time_us = 1795000000123456,
        .component = "policyd",
        .tenant = "acme",
        .account = "billing@acme.example",
        .client_ip = "2001:db8::10",
        .sasl_login = "billing@acme.example",
        .sender = "invoices@acme.example",
        .recipients = full_rcpts,
        .nrecipients = 3,
        .queue_id = "4ZXk9f2PqJz1",
        .instance = "a1b2.6745f0c1.7d3e2.0",
        .stage = "eom",
        .action = "DEFER",
        .reason = "452 4.5.3 quota of 500 messages/day reached, resets 2026-11-29T00:00:00+01:00",
        .rule = "limits.messages",
        .counters = "acme/billing/messages/day=500+1/500",
        .latency_us = 1234,
    };
}

struct collect {
    size_t n, stop_after;
    int64_t times[16];
    int64_t ids[16];
    struct audit_rec first;
    char *first_text[16];
    char *first_rcpts[4];
    size_t first_nrcpt;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? mem_strdup(s) : NULL;
}

static bool collect_cb(const struct audit_rec *r, void *arg)
{
    struct collect *c = arg;
    if (c->n == 0) {
        const char *f[] = { r->component, r->tenant, r->account, r->client_ip, r->sasl_login,
                            r->sender, r->queue_id, r->instance, r->stage, r->action,
                            r->reason, r->rule, r->counters };
        c->first = *r;
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            c->first_text[i] = dup_or_null(f[i]);
        c->first_nrcpt = r->nrecipients;
        for (size_t i = 0; i < r->nrecipients && i < 4; i++)
            c->first_rcpts[i] = mem_strdup(r->recipients[i]);
    }
    if (c->n < 16) {
        c->times[c->n] = r->time_us;
        c->ids[c->n] = r->id;
    }
    c->n++;
    return c->stop_after == 0 || c->n < c->stop_after;
}

static void collect_free(struct collect *c)
{
    for (size_t i = 0; i < 16; i++)
        mem_free(c->first_text[i]);
    for (size_t i = 0; i < 4; i++)
        mem_free(c->first_rcpts[i]);
}

START_TEST(test_audit_roundtrip_every_field)
{
    struct tdb t;
    struct buf err;
    tdb_make(&t);
    buf_init(&err);
    struct store *s = open_ok(t.path, 0);
    struct audit_rec rec = full_rec();
    ck_assert_msg(audit_write(s, &rec, &err), "%s", err.data);
    struct collect c = { 0 };
    ck_assert_msg(audit_query(s, NULL, collect_cb, &c, &err), "%s", err.data);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_gt(c.first.id, 0);
    ck_assert_int_eq(c.first.time_us, rec.time_us);
    ck_assert_int_eq(c.first.latency_us, rec.latency_us);
    const char *want[] = { rec.component, rec.tenant, rec.account, rec.client_ip,
                           rec.sasl_login, rec.sender, rec.queue_id, rec.instance, rec.stage,
                           rec.action, rec.reason, rec.rule, rec.counters };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_ptr_nonnull(c.first_text[i]);
        ck_assert_str_eq(c.first_text[i], want[i]);
    }
    ck_assert_uint_eq(c.first_nrcpt, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(c.first_rcpts[i], full_rcpts[i]);
    /* stored as one address per line */
    store_close(s);
    char *text = raw_text(t.path, "SELECT recipients FROM audit");
    ck_assert_str_eq(text, "a@example.org\nb@example.net\nc@example.com");
    mem_free(text);
    collect_free(&c);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

START_TEST(test_audit_minimal_record)
{
    struct tdb t;
    struct buf err;
    tdb_make(&t);
    buf_init(&err);
    struct store *s = open_ok(t.path, 0);
    struct audit_rec rec = { .component = "milter", .action = "sign", .tenant = "" };
    struct clock sys = clock_system();
    int64_t before = clock_now_us(&sys);
    ck_assert_msg(audit_write(s, &rec, &err), "%s", err.data);
    struct collect c = { 0 };
    ck_assert(audit_query(s, NULL, collect_cb, &c, &err));
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_ge(c.first.time_us, before); /* 0 = now */
    ck_assert_ptr_null(c.first_text[1]);       /* "" is stored as NULL */
    ck_assert_ptr_null(c.first_text[2]);
    ck_assert_uint_eq(c.first_nrcpt, 0);
    /* component and action are required */
    rec.action = NULL;
    ck_assert(!audit_write(s, &rec, &err));
    ck_assert_msg(strstr(err.data, "action") != NULL, "%s", err.data);
    collect_free(&c);
    store_close(s);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

static const struct audit_seed {
    int64_t time_us;
    const char *tenant, *account, *queue_id;
} audit_seeds[] = {
    { 1000, "a", "a1", "Q1" },
    { 2000, "a", "a2", "Q2" },
    { 3000, "b", "b1", "Q3" },
    { 4000, "a", "a1", "Q1" },
    { 5000, NULL, NULL, "Q5" },
};

static const struct filter_case {
    struct audit_filter f;
    size_t n;
    int64_t times[5];
} filter_cases[] = {
    { { 0 }, 5, { 1000, 2000, 3000, 4000, 5000 } },
    { { .newest_first = true, .limit = 2 }, 2, { 5000, 4000 } },
    { { .limit = 2 }, 2, { 1000, 2000 } },
    { { .tenant = "a" }, 3, { 1000, 2000, 4000 } },
    { { .tenant = "a", .newest_first = true, .limit = 1 }, 1, { 4000 } },
    { { .tenant = "a", .account = "a1" }, 2, { 1000, 4000 } },
    { { .account = "a1" }, 2, { 1000, 4000 } },
    { { .queue_id = "Q1" }, 2, { 1000, 4000 } },
    { { .queue_id = "Q1", .tenant = "b" }, 0, { 0 } },
    { { .queue_id = "Q1", .since_us = 1001 }, 1, { 4000 } },
    { { .queue_id = "Q1", .account = "a1", .newest_first = true }, 2, { 4000, 1000 } },
    { { .since_us = 2000, .until_us = 4000 }, 2, { 2000, 3000 } },
    { { .since_us = 2000, .tenant = "a" }, 2, { 2000, 4000 } },
    { { .until_us = 2000, .tenant = "a" }, 1, { 1000 } },
    { { .tenant = "nobody" }, 0, { 0 } },
};

START_TEST(test_audit_query_filters)
{
    const struct filter_case *fc = &filter_cases[_i];
    struct tdb t;
    struct buf err;
    tdb_make(&t);
    buf_init(&err);
    struct store *s = open_ok(t.path, 0);
    for (size_t i = 0; i < sizeof audit_seeds / sizeof audit_seeds[0]; i++) {
        struct audit_rec r = { .time_us = audit_seeds[i].time_us, .component = "policyd",
                               .action = "DUNNO", .tenant = audit_seeds[i].tenant,
                               .account = audit_seeds[i].account,
                               .queue_id = audit_seeds[i].queue_id };
        ck_assert_msg(audit_write(s, &r, &err), "%s", err.data);
    }
    struct collect c = { 0 };
    ck_assert_msg(audit_query(s, &fc->f, collect_cb, &c, &err), "%s", err.data);
    ck_assert_uint_eq(c.n, fc->n);
    for (size_t i = 0; i < fc->n; i++)
        ck_assert_int_eq(c.times[i], fc->times[i]);
    collect_free(&c);
    /* the callback can stop the query */
    struct collect stop = { .stop_after = 1 };
    ck_assert(audit_query(s, NULL, collect_cb, &stop, &err));
    ck_assert_uint_eq(stop.n, 1);
    collect_free(&stop);
    store_close(s);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

/* The sender and recipient filters: ASCII case ignored, a recipient
 * matches one whole stored line, never a part of one. */
static const char *const addr_r1[] = { "bob@x.org", "Carol@Y.net" };
static const char *const addr_r2[] = { "carol@y.net.evil" };
static const char *const addr_r3[] = { "xcarol@y.net" };
static const char *const addr_r5[] = { "carol@y.net" };

static const struct addr_seed {
    int64_t time_us;
    const char *tenant, *sender, *queue_id;
    const char *const *rcpts;
    size_t nrcpts;
} addr_seeds[] = {
    { 1000, "a", "Alice@A.example", "Q1", addr_r1, 2 },
    { 2000, "a", "alice@a.example", NULL, addr_r2, 1 },
    { 3000, "b", "bob@b.example", NULL, addr_r3, 1 },
    { 4000, NULL, NULL, NULL, NULL, 0 },
    { 5000, "a", "other@a.example", "Q1", addr_r5, 1 },
};

static const struct filter_case addr_cases[] = {
    { { .sender = "ALICE@a.example" }, 2, { 1000, 2000 } },
    { { .sender = "alice@a.example", .newest_first = true, .limit = 1 }, 1, { 2000 } },
    { { .sender = "alice" }, 0, { 0 } },
    { { .sender = "%" }, 0, { 0 } },
    { { .sender = "" }, 5, { 1000, 2000, 3000, 4000, 5000 } },   /* "": any */
    { { .recipient = "carol@y.net" }, 2, { 1000, 5000 } },
    { { .recipient = "CAROL@Y.NET", .newest_first = true }, 2, { 5000, 1000 } },
    { { .recipient = "bob@x.org" }, 1, { 1000 } },
    { { .recipient = "bob" }, 0, { 0 } },
    { { .recipient = "y.net" }, 0, { 0 } },
    { { .recipient = "bob@x.org\nCarol@Y.net" }, 0, { 0 } },
    { { .recipient = "%" }, 0, { 0 } },
    { { .sender = "alice@a.example", .recipient = "carol@y.net" }, 1, { 1000 } },
    { { .tenant = "a", .recipient = "carol@y.net" }, 2, { 1000, 5000 } },
    { { .tenant = "b", .recipient = "carol@y.net" }, 0, { 0 } },
    { { .queue_id = "Q1", .sender = "OTHER@a.example" }, 1, { 5000 } },
    { { .queue_id = "Q1", .recipient = "bob@x.org", .since_us = 1001 }, 0, { 0 } },
    { { .tenant = "a", .sender = "alice@a.example", .until_us = 2000 }, 1, { 1000 } },
};

START_TEST(test_audit_query_addresses)
{
    const struct filter_case *fc = &addr_cases[_i];
    struct tdb t;
    struct buf err;
    tdb_make(&t);
    buf_init(&err);
    struct store *s = open_ok(t.path, 0);
    for (size_t i = 0; i < sizeof addr_seeds / sizeof addr_seeds[0]; i++) {
        const struct addr_seed *a = &addr_seeds[i];
        struct audit_rec r = { .time_us = a->time_us, .component = "policyd", .action = "DUNNO",
                               .tenant = a->tenant, .sender = a->sender, .queue_id = a->queue_id,
                               .recipients = a->rcpts, .nrecipients = a->nrcpts };
        ck_assert_msg(audit_write(s, &r, &err), "%s", err.data);
    }
    struct collect c = { 0 };
    ck_assert_msg(audit_query(s, &fc->f, collect_cb, &c, &err), "%s", err.data);
    ck_assert_msg(c.n == fc->n, "case %d: %zu records, wanted %zu", _i, c.n, fc->n);
    for (size_t i = 0; i < fc->n; i++)
        ck_assert_int_eq(c.times[i], fc->times[i]);
    collect_free(&c);
    store_close(s);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

/* Run audit_write with stderr captured as the log; returns the text. */
static char *capture_text(struct store *s, const struct audit_rec *rec, bool *ok, struct buf *err)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(tmp), 2), 0);
    log_open("test_store", false, true, LOG_LVL_DEBUG);
    *ok = audit_write(s, rec, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_open("test_store", false, false, LOG_LVL_DEBUG);
    struct buf out;
    buf_init(&out);
    char chunk[512];
    size_t n;
    rewind(tmp);
    while ((n = fread(chunk, 1, sizeof chunk, tmp)) > 0)
        buf_add(&out, chunk, n);
    fclose(tmp);
    char *text = buf_detach(&out);
    buf_free(&out);
    return text;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

START_TEST(test_audit_log_line)
{
    struct tdb t;
    struct buf err;
    bool ok = false;
    tdb_make(&t);
    buf_init(&err);
    struct store *s = open_ok(t.path, 0);
    static const char *const rcpts[] = { "x@example.org", "y@example.org" };
    struct audit_rec rec = {
        .time_us = 1795000000000001, .component = "policyd", .tenant = "acme",
        .sender = "Joe Bloggs@acme.example", .recipients = rcpts, .nrecipients = 2,
        .stage = "rcpt", .action = "REJECT",
        .reason = "554 5.7.1 sender not allowed\r\nsecond \"line\"",
        .latency_us = 42,
    };
    char *line = capture_text(s, &rec, &ok, &err);
    ck_assert_msg(ok, "%s", err.data);
    ck_assert_uint_eq(count_char(line, '\n'), 1);   /* exactly one line */
    ck_assert_msg(line[strlen(line) - 1] == '\n', "%s", line);
    const char *want =
        "level=info event=audit time_us=1795000000000001 component=policyd tenant=acme "
        "sender=\"Joe Bloggs@acme.example\" recipients=x@example.org,y@example.org "
        "stage=rcpt action=REJECT "
        "reason=\"554 5.7.1 sender not allowed\\x0d\\x0asecond \\\"line\\\"\" latency_us=42\n";
    ck_assert_msg(strstr(line, want) != NULL, "got: %s", line);
    ck_assert_ptr_null(strstr(line, "account="));   /* empty fields are left out */
    mem_free(line);
    /* audit_format gives the same pairs */
    struct buf kv;
    buf_init(&kv);
    audit_format(&rec, &kv);
    ck_assert_ptr_nonnull(strstr(want, kv.data));
    buf_free(&kv);
    store_close(s);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

START_TEST(test_audit_store_failure)
{
    struct tdb t;
    struct buf err;
    bool ok = true;
    tdb_make(&t);
    buf_init(&err);
    struct store *s = open_ok(t.path, 0);
    raw_exec(t.path, "CREATE TRIGGER fail BEFORE INSERT ON audit "
                     "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    struct audit_rec rec = full_rec();
    char *line = capture_text(s, &rec, &ok, &err);
    ck_assert(!ok);
    ck_assert_msg(strstr(err.data, t.path) != NULL && strstr(err.data, "injected failure"),
                  "%s", err.data);
    /* the log still has the record, marked as not stored */
    ck_assert_msg(strstr(line, "level=error event=audit") != NULL, "%s", line);
    ck_assert_msg(strstr(line, "stored=no error=") != NULL, "%s", line);
    ck_assert_uint_eq(count_char(line, '\n'), 1);
    mem_free(line);
    /* inside a transaction of the same handle: refused */
    raw_exec(t.path, "DROP TRIGGER fail");
    ck_assert(store_begin(s, true, &err));
    ck_assert(!audit_write(s, &rec, &err));
    ck_assert_msg(strstr(err.data, "transaction") != NULL, "%s", err.data);
    store_rollback(s);
    ck_assert_msg(audit_write(s, &rec, &err), "%s", err.data);
    store_close(s);
    ck_assert_int_eq(raw_int(t.path, "SELECT count(*) FROM audit"), 1);
    buf_free(&err);
    tdb_remove(&t);
}
END_TEST

/* --- counters: limits -------------------------------------------------------- */

/* Successive adds on one counter: expected status and value after each. */
static const struct limit_case {
    uint64_t limit;
    struct { uint64_t add; int rc; uint64_t value; } step[6];
    size_t nsteps;
} limit_cases[] = {
    { 3, { { 1, COUNTERS_OK, 1 }, { 1, COUNTERS_OK, 2 }, { 1, COUNTERS_OK, 3 },
           { 1, COUNTERS_EXCEEDED, 3 }, { 0, COUNTERS_OK, 3 } }, 5 },
    { 3, { { 3, COUNTERS_OK, 3 }, { 1, COUNTERS_EXCEEDED, 3 } }, 2 },
    { 3, { { 4, COUNTERS_EXCEEDED, 0 }, { 2, COUNTERS_OK, 2 }, { 2, COUNTERS_EXCEEDED, 2 },
           { 1, COUNTERS_OK, 3 } }, 4 },
    { 0, { { 0, COUNTERS_OK, 0 }, { 1, COUNTERS_EXCEEDED, 0 } }, 2 },
    /* near UINT64_MAX: exact fit allowed, overflow never wraps */
    { COUNTER_NO_LIMIT, { { UINT64_MAX - 1, COUNTERS_OK, UINT64_MAX - 1 },
                          { 1, COUNTERS_OK, UINT64_MAX },
                          { 1, COUNTERS_EXCEEDED, UINT64_MAX },
                          { UINT64_MAX, COUNTERS_EXCEEDED, UINT64_MAX } }, 4 },
    { COUNTER_NO_LIMIT, { { 2, COUNTERS_OK, 2 }, { UINT64_MAX, COUNTERS_EXCEEDED, 2 },
                          { UINT64_MAX - 2, COUNTERS_OK, UINT64_MAX } }, 3 },
    { UINT64_MAX - 5, { { UINT64_MAX - 5, COUNTERS_OK, UINT64_MAX - 5 },
                        { 1, COUNTERS_EXCEEDED, UINT64_MAX - 5 } }, 2 },
};

START_TEST(test_counters_limits)
{
    const struct limit_case *lc = &limit_cases[_i];
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    for (size_t i = 0; i < lc->nsteps; i++) {
        struct counter_result r;
        uint64_t before = get1(&f, "k", WIN_DAY);
        int rc = add1(&f, "k", WIN_DAY, lc->step[i].add, lc->limit, &r);
        ck_assert_msg(rc == lc->step[i].rc, "case %d step %zu: rc %d", _i, i, rc);
        ck_assert_uint_eq(r.value, before);
        ck_assert_uint_eq(r.after, lc->step[i].value);
        ck_assert_uint_eq(r.limit, lc->limit);
        ck_assert(r.exceeded == (rc == COUNTERS_EXCEEDED));
        ck_assert_uint_eq(get1(&f, "k", WIN_DAY), lc->step[i].value);
    }
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_multi_req_atomic)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    struct counter_req reqs[3] = {
        { "acme/messages", WIN_DAY, 1, 10 },
        { "acme/recipients", WIN_DAY, 5, 3 },
        { "acme/bytes", WIN_MONTH, 1000, COUNTER_NO_LIMIT },
    };
    struct counter_result res[3];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 3, true, res, &f.err), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(counters_first_exceeded(res, 3), 1);
    ck_assert(!res[0].exceeded && res[1].exceeded && !res[2].exceeded);
    ck_assert_uint_eq(res[1].value, 0);
    ck_assert_uint_eq(res[1].limit, 3);
    ck_assert_int_eq(res[1].window_end, iso("2026-03-11T00:00:00Z"));
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_eq(res[i].after, res[i].value);
    ck_assert_uint_eq(get1(&f, "acme/messages", WIN_DAY), 0);
    ck_assert_uint_eq(get1(&f, "acme/bytes", WIN_MONTH), 0);
    /* within limits: all applied together */
    reqs[1].limit = 5;
    ck_assert_int_eq(counters_check_add(f.c, reqs, 3, true, res, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(counters_first_exceeded(res, 3), 3);
    ck_assert_uint_eq(get1(&f, "acme/messages", WIN_DAY), 1);
    ck_assert_uint_eq(get1(&f, "acme/recipients", WIN_DAY), 5);
    ck_assert_uint_eq(get1(&f, "acme/bytes", WIN_MONTH), 1000);
    ck_assert_uint_eq(res[2].after, 1000);
    ck_assert_int_eq(res[2].window_start, iso("2026-03-01T00:00:00Z"));
    ck_assert_int_eq(res[2].window_end, iso("2026-04-01T00:00:00Z"));
    /* the audit text of the decision */
    struct buf d;
    buf_init(&d);
    counters_describe(reqs, res, 3, &d);
    ck_assert_str_eq(d.data, "acme/messages/day=0+1/10 acme/recipients/day=0+5/5 "
                             "acme/bytes/month=0+1000/-");
    buf_free(&d);
    /* n = 0 is a no-op */
    ck_assert_int_eq(counters_check_add(f.c, reqs, 0, true, res, &f.err), COUNTERS_OK);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_same_counter_twice)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    struct counter_req reqs[2] = { { "k", WIN_HOUR, 2, 3 }, { "k", WIN_HOUR, 2, 3 } };
    struct counter_result res[2];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(counters_first_exceeded(res, 2), 1);
    ck_assert_uint_eq(res[1].value, 2);
    ck_assert_uint_eq(get1(&f, "k", WIN_HOUR), 0);
    reqs[0].limit = reqs[1].limit = 4;
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(res[0].after, 2);
    ck_assert_uint_eq(res[1].after, 4);
    ck_assert_uint_eq(get1(&f, "k", WIN_HOUR), 4);
    /* same key, other unit: another counter */
    ck_assert_uint_eq(get1(&f, "k", WIN_DAY), 0);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_look_only)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    ck_assert_int_eq(add1(&f, "k", WIN_DAY, 8, 10, NULL), COUNTERS_OK);
    struct counter_req req = { "k", WIN_DAY, 2, 10 };
    struct counter_result r;
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(r.value, 8);
    ck_assert_uint_eq(r.after, 8);
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    req.add = 3;
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_EXCEEDED);
    ck_assert(r.exceeded);
    ck_assert_uint_eq(get1(&f, "k", WIN_DAY), 8);
    /* looking at a counter never written creates nothing */
    req.key = "fresh";
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    fix_close(&f);
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    req.key = "fresh";
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    ck_assert_int_eq(raw_int(f.db.path, "SELECT count(*) FROM counters"), 0);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_bad_request)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    struct counter_req reqs[2] = { { "ok", WIN_DAY, 1, 5 }, { NULL, WIN_DAY, 1, 5 } };
    struct counter_result res[2];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_ERROR);
    ck_assert_msg(strstr(f.err.data, "request 1") != NULL, "%s", f.err.data);
    reqs[1].key = "";
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_ERROR);
    reqs[1].key = "x";
    reqs[1].unit = (enum window_unit)WIN_COUNT;
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_ERROR);
    uint64_t v;
    time_t s, e;
    ck_assert(!counters_get(f.c, NULL, WIN_DAY, &v, &s, &e, &f.err));
    ck_assert_uint_eq(get1(&f, "ok", WIN_DAY), 0);
    fix_close(&f);
}
END_TEST

/* --- counters: calendar windows ------------------------------------------------ */

static const struct window_case {
    const char *tz;
    enum window_unit unit;
    const char *now, *start, *end;
} window_cases[] = {
    /* Paris winter (+01:00): the day starts at local midnight = 23:00Z */
    { "Europe/Paris", WIN_DAY, "2026-03-10T23:30:00Z", "2026-03-10T23:00:00Z", "2026-03-11T23:00:00Z" },
    /* 2026-10-25, end of DST: a 25 h day */
    { "Europe/Paris", WIN_DAY, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z" },
    /* 2026-03-29, start of DST: a 23 h day */
    { "Europe/Paris", WIN_DAY, "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z" },
    /* Sunday 23:30 local is still in the week of Monday 2 March */
    { "Europe/Paris", WIN_WEEK, "2026-03-08T22:30:00Z", "2026-03-01T23:00:00Z", "2026-03-08T23:00:00Z" },
    /* a week holding the DST change */
    { "Europe/Paris", WIN_WEEK, "2026-10-25T12:00:00Z", "2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z" },
    { "Europe/Paris", WIN_MONTH, "2026-10-25T12:00:00Z", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z" },
    /* local 1 November 00:00 */
    { "Europe/Paris", WIN_MONTH, "2026-10-31T23:00:00Z", "2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z" },
    /* new year, local */
    { "Europe/Paris", WIN_MONTH, "2026-12-31T23:30:00Z", "2026-12-31T23:00:00Z", "2027-01-31T23:00:00Z" },
    { "Europe/Paris", WIN_HOUR, "2026-03-10T10:15:00Z", "2026-03-10T10:00:00Z", "2026-03-10T11:00:00Z" },
    { "Europe/Paris", WIN_MINUTE, "2026-03-10T10:15:42Z", "2026-03-10T10:15:00Z", "2026-03-10T10:16:00Z" },
    /* Kolkata (+05:30): hours start at :30 UTC, days at 18:30Z */
    { "Asia/Kolkata", WIN_HOUR, "2026-03-10T10:45:00Z", "2026-03-10T10:30:00Z", "2026-03-10T11:30:00Z" },
    { "Asia/Kolkata", WIN_HOUR, "2026-03-10T11:29:59Z", "2026-03-10T10:30:00Z", "2026-03-10T11:30:00Z" },
    { "Asia/Kolkata", WIN_DAY, "2026-03-10T20:00:00Z", "2026-03-10T18:30:00Z", "2026-03-11T18:30:00Z" },
    { "Asia/Kolkata", WIN_WEEK, "2026-03-08T18:30:00Z", "2026-03-08T18:30:00Z", "2026-03-15T18:30:00Z" },
    { "Asia/Kolkata", WIN_MONTH, "2026-02-28T18:29:59Z", "2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z" },
    { "UTC", WIN_DAY, "2026-03-10T23:30:00Z", "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z" },
};

START_TEST(test_counters_windows)
{
    const struct window_case *wc = &window_cases[_i];
    struct fix f;
    fix_open(&f, wc->tz, wc->now);
    time_t start = iso(wc->start), end = iso(wc->end);
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "w", wc->unit, 1, 100, &r), COUNTERS_OK);
    ck_assert_msg(r.window_start == start && r.window_end == end,
                  "%s %s at %s: [%lld, %lld)", wc->tz, window_unit_name(wc->unit), wc->now,
                  (long long)r.window_start, (long long)r.window_end);
    /* the reset time reported by an exceeded check is the window end */
    ck_assert_int_eq(add1(&f, "w", wc->unit, 100, 100, &r), COUNTERS_EXCEEDED);
    ck_assert_int_eq(r.window_end, end);
    f.now = us(end) - 1;                 /* last µs of the window */
    ck_assert_uint_eq(get1(&f, "w", wc->unit), 1);
    f.now = us(end);                     /* the next window starts at 0 */
    uint64_t v;
    time_t s, e;
    ck_assert(counters_get(f.c, "w", wc->unit, &v, &s, &e, &f.err));
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(s, end);
    f.now = us(start) - 1;               /* and so was the previous one */
    ck_assert_uint_eq(get1(&f, "w", wc->unit), 0);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_day_resets_at_local_midnight)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-03-10T22:59:59Z");   /* 23:59:59 local */
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_OK);
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_EXCEEDED);
    f.now = us(iso("2026-03-10T23:00:00Z"));                /* local midnight */
    ck_assert_uint_eq(get1(&f, "d", WIN_DAY), 0);
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_OK);
    f.now = us(iso("2026-03-11T00:00:00Z"));                /* UTC midnight: no reset */
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 1, NULL), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(get1(&f, "d", WIN_DAY), 1);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_dst_day_is_25_hours)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-10-24T22:00:00Z");   /* 25 Oct 00:00 CEST */
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 10, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_end - r.window_start, 25 * 3600);
    f.now = us(iso("2026-10-25T22:59:59Z"));                /* 23:59:59 CET, 25 h later */
    ck_assert_int_eq(add1(&f, "d", WIN_DAY, 1, 10, &r), COUNTERS_OK);
    ck_assert_uint_eq(r.after, 2);
    /* the October month counter rolls over at local 1 November 00:00 */
    ck_assert_int_eq(add1(&f, "m", WIN_MONTH, 7, 10, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_end, iso("2026-10-31T23:00:00Z"));
    f.now = us(iso("2026-10-31T22:59:59Z"));
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 7);
    f.now = us(iso("2026-10-31T23:00:00Z"));
    ck_assert_uint_eq(get1(&f, "m", WIN_MONTH), 0);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_week_starts_monday_local)
{
    struct fix f;
    fix_open(&f, "Asia/Kolkata", "2026-03-08T18:29:59Z");   /* Sunday 23:59:59 IST */
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "w", WIN_WEEK, 1, 10, &r), COUNTERS_OK);
    ck_assert_int_eq(r.window_end, iso("2026-03-08T18:30:00Z"));
    f.now = us(iso("2026-03-08T18:30:00Z"));               /* Monday 00:00 IST */
    ck_assert_uint_eq(get1(&f, "w", WIN_WEEK), 0);
    f.now = us(iso("2026-03-09T00:00:00Z"));               /* Monday 00:00 UTC */
    ck_assert_int_eq(add1(&f, "w", WIN_WEEK, 1, 10, &r), COUNTERS_OK);
    ck_assert_uint_eq(r.after, 1);
    fix_close(&f);
}
END_TEST

/* --- counters: garbage collection ------------------------------------------------ */

static long long rows_of(struct fix *f, const char *key)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_open(f->db.path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM counters WHERE key = ?1",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

START_TEST(test_counters_gc)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");   /* first call: GC runs */
    add1(&f, "old", WIN_DAY, 1, 10, NULL);          /* window ends 11 March 00:00 */
    add1(&f, "old", WIN_MINUTE, 1, 10, NULL);       /* ends 10 March 12:01 */
    f.now = us(iso("2026-03-11T18:00:00Z"));        /* GC due */
    add1(&f, "other", WIN_DAY, 1, 10, NULL);
    ck_assert_int_eq(rows_of(&f, "old"), 1);        /* the minute went, the day ended < 1 day ago */
    f.now = us(iso("2026-03-12T00:30:00Z"));        /* due again, the day ended > 1 day ago */
    add1(&f, "other", WIN_DAY, 1, 10, NULL);
    ck_assert_int_eq(rows_of(&f, "old"), 0);
    ck_assert_int_eq(rows_of(&f, "other"), 2);      /* 11 and 12 March */
    /* not on every call: at most once an hour */
    raw_exec(f.db.path, "INSERT INTO counters VALUES ('ancient', 'day', 0, 86400, 5)");
    f.now = us(iso("2026-03-12T01:00:00Z"));
    add1(&f, "other", WIN_DAY, 1, 10, NULL);
    ck_assert_int_eq(rows_of(&f, "ancient"), 1);
    /* a look-only check never deletes */
    f.now = us(iso("2026-03-12T02:00:00Z"));
    struct counter_req req = { "other", WIN_DAY, 1, 10 };
    struct counter_result r;
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    ck_assert_int_eq(rows_of(&f, "ancient"), 1);
    add1(&f, "other", WIN_DAY, 1, 10, NULL);
    ck_assert_int_eq(rows_of(&f, "ancient"), 0);
    ck_assert_uint_eq(get1(&f, "other", WIN_DAY), 3);
    fix_close(&f);
}
END_TEST

/* --- counters: listing and resetting by key prefix ---------------------------------- */

static const struct prefix_case {
    const char *prefix;
    bool has_end;
    const char *end;
} prefix_cases[] = {
    { "a:acme:", true, "a:acme;" },
    { "t:x", true, "t:y" },
    { "", false, "" },
    { "\xff\xff", false, "" },
    { "a\xff", true, "b" },
    { "ab\xff\xff", true, "ac" },
    { "a\xfe", true, "a\xff" },
};

START_TEST(test_counters_prefix_end)
{
    const struct prefix_case *pc = &prefix_cases[_i];
    struct buf out;
    buf_init(&out);
    ck_assert_int_eq(counters_prefix_end(pc->prefix, &out), pc->has_end);
    ck_assert_str_eq(out.data, pc->end);
    buf_free(&out);
}
END_TEST

/* Collected rows, "key/unit=value" joined by ' ' in the order given. */
struct rows {
    struct buf text;
    size_t n, stop_after;
};

static bool rows_cb(const struct counter_row *row, void *arg)
{
    struct rows *r = arg;
    char start[40];
    time_format(row->window_start, start, sizeof start);
    if (r->text.len > 0)
        buf_putc(&r->text, ' ');
    buf_printf(&r->text, "%s/%s=%" PRIu64, row->key, window_unit_name(row->unit), row->value);
    ck_assert_int_lt(row->window_start, row->window_end);
    r->n++;
    return r->stop_after == 0 || r->n < r->stop_after;
}

/* Counters of two tenants whose names share a prefix, in several units,
 * and a row of yesterday's day window. */
static void seed_prefix(struct fix *f)
{
    add1(f, "t:acme:bytes", WIN_DAY, 100, COUNTER_NO_LIMIT, NULL);
    add1(f, "t:acme:messages", WIN_HOUR, 2, 10, NULL);
    add1(f, "a:acme:alice@acme.example:messages", WIN_DAY, 3, 500, NULL);
    add1(f, "a:acme:alice@acme.example:messages", WIN_MONTH, 4, 5000, NULL);
    add1(f, "a:acme:bob@acme.example:messages", WIN_DAY, 5, 500, NULL);
    add1(f, "a:acme2:carol@acme2.example:messages", WIN_DAY, 6, 500, NULL);
    add1(f, "t:acme2:bytes", WIN_DAY, 7, COUNTER_NO_LIMIT, NULL);
    add1(f, "a:acme:\xff\xffodd:messages", WIN_DAY, 8, 500, NULL);
    /* yesterday (2026-03-09), not current */
    raw_exec(f->db.path, "INSERT INTO counters VALUES ('a:acme:alice@acme.example:messages', "
                         "'day', 1773014400, 1773100800, 99)");
}

static const struct list_case {
    const char *prefix;
    const char *want;
} list_cases[] = {
    { "a:acme:",
      "a:acme:alice@acme.example:messages/day=3 a:acme:bob@acme.example:messages/day=5 "
      "a:acme:\xff\xffodd:messages/day=8 a:acme:alice@acme.example:messages/month=4" },
    { "t:acme:", "t:acme:messages/hour=2 t:acme:bytes/day=100" },
    { "t:acme", "t:acme:messages/hour=2 t:acme2:bytes/day=7 t:acme:bytes/day=100" },
    { "a:acme:alice@acme.example:", "a:acme:alice@acme.example:messages/day=3 "
                                    "a:acme:alice@acme.example:messages/month=4" },
    { "a:acme:\xff", "a:acme:\xff\xffodd:messages/day=8" },
    { "a:nobody:", "" },
    { "", "t:acme:messages/hour=2 a:acme2:carol@acme2.example:messages/day=6 "
          "a:acme:alice@acme.example:messages/day=3 a:acme:bob@acme.example:messages/day=5 "
          "a:acme:\xff\xffodd:messages/day=8 t:acme2:bytes/day=7 t:acme:bytes/day=100 "
          "a:acme:alice@acme.example:messages/month=4" },
};

START_TEST(test_counters_list)
{
    const struct list_case *lc = &list_cases[_i];
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    seed_prefix(&f);
    struct rows r = { .n = 0 };
    buf_init(&r.text);
    ck_assert_msg(counters_list(f.c, lc->prefix, rows_cb, &r, &f.err), "%s", f.err.data);
    ck_assert_str_eq(r.text.data, lc->want);
    /* a read-only handle (posternctl) lists the same */
    struct store *ro = open_ok(f.db.path, STORE_READONLY);
    struct counters *cro = counters_sqlite_open(ro, clock_fixed(&f.now));
    struct rows r2 = { .n = 0 };
    buf_init(&r2.text);
    ck_assert_msg(counters_list(cro, lc->prefix, rows_cb, &r2, &f.err), "%s", f.err.data);
    ck_assert_str_eq(r2.text.data, lc->want);
    ck_assert(store_autocommit(ro));
    counters_close(cro);
    store_close(ro);
    buf_free(&r.text);
    buf_free(&r2.text);
    ck_assert(store_autocommit(f.s));
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_list_window_and_stop)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-03-10T22:59:59Z");   /* 23:59:59 local */
    add1(&f, "t:x:messages", WIN_DAY, 1, 10, NULL);
    add1(&f, "t:x:bytes", WIN_DAY, 2, 10, NULL);
    struct rows r = { .n = 0, .stop_after = 1 };
    buf_init(&r.text);
    ck_assert(counters_list(f.c, "t:x:", rows_cb, &r, &f.err));
    ck_assert_str_eq(r.text.data, "t:x:bytes/day=2");   /* stopped after one */
    ck_assert(store_autocommit(f.s));
    f.now = us(iso("2026-03-10T23:00:00Z"));               /* local midnight: a new day */
    buf_reset(&r.text);
    r.n = 0;
    r.stop_after = 0;
    ck_assert(counters_list(f.c, "t:x:", rows_cb, &r, &f.err));
    ck_assert_str_eq(r.text.data, "");
    ck_assert(counters_list(f.c, NULL, rows_cb, &r, &f.err));   /* NULL: every key */
    ck_assert_uint_eq(r.n, 0);
    buf_free(&r.text);
    fix_close(&f);
}
END_TEST

static const struct reset_case {
    const char *prefixes[2];
    size_t nprefixes;
    int unit;
    size_t count;
    const char *reset;       /* rows given to the callback */
    const char *left;        /* counters_list("") afterwards */
} reset_cases[] = {
    /* a tenant and its accounts, current windows: yesterday's row stays */
    { { "t:acme:", "a:acme:" }, 2, COUNTERS_CURRENT_WINDOWS, 6,
      "t:acme:messages/hour=2 t:acme:bytes/day=100 a:acme:alice@acme.example:messages/day=3 "
      "a:acme:bob@acme.example:messages/day=5 a:acme:\xff\xffodd:messages/day=8 "
      "a:acme:alice@acme.example:messages/month=4",
      "a:acme2:carol@acme2.example:messages/day=6 t:acme2:bytes/day=7" },
    /* one account, every day window: yesterday's too, not its month */
    { { "a:acme:alice@acme.example:", NULL }, 1, WIN_DAY, 2,
      "a:acme:alice@acme.example:messages/day=99 a:acme:alice@acme.example:messages/day=3",
      "t:acme:messages/hour=2 a:acme2:carol@acme2.example:messages/day=6 "
      "a:acme:bob@acme.example:messages/day=5 a:acme:\xff\xffodd:messages/day=8 "
      "t:acme2:bytes/day=7 t:acme:bytes/day=100 a:acme:alice@acme.example:messages/month=4" },
    /* hour windows only */
    { { "t:acme:", "a:acme:" }, 2, WIN_HOUR, 1, "t:acme:messages/hour=2",
      "a:acme2:carol@acme2.example:messages/day=6 a:acme:alice@acme.example:messages/day=3 "
      "a:acme:bob@acme.example:messages/day=5 a:acme:\xff\xffodd:messages/day=8 "
      "t:acme2:bytes/day=7 t:acme:bytes/day=100 a:acme:alice@acme.example:messages/month=4" },
    /* nothing there */
    { { "a:nobody:", NULL }, 1, COUNTERS_CURRENT_WINDOWS, 0, "",
      "t:acme:messages/hour=2 a:acme2:carol@acme2.example:messages/day=6 "
      "a:acme:alice@acme.example:messages/day=3 a:acme:bob@acme.example:messages/day=5 "
      "a:acme:\xff\xffodd:messages/day=8 t:acme2:bytes/day=7 t:acme:bytes/day=100 "
      "a:acme:alice@acme.example:messages/month=4" },
};

START_TEST(test_counters_reset)
{
    const struct reset_case *rc = &reset_cases[_i];
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    seed_prefix(&f);
    struct rows r = { .n = 0 };
    size_t n = 12345;
    buf_init(&r.text);
    ck_assert_msg(counters_reset(f.c, rc->prefixes, rc->nprefixes, rc->unit, rows_cb, &r, &n, &f.err),
                  "%s", f.err.data);
    ck_assert_uint_eq(n, rc->count);
    ck_assert_uint_eq(r.n, rc->count);
    ck_assert_str_eq(r.text.data, rc->reset);
    ck_assert(store_autocommit(f.s));
    buf_reset(&r.text);
    ck_assert(counters_list(f.c, "", rows_cb, &r, &f.err));
    ck_assert_str_eq(r.text.data, rc->left);
    /* a reset counter counts again from 0 */
    struct counter_result res;
    ck_assert_int_eq(add1(&f, "t:acme:messages", WIN_HOUR, 1, 10, &res), COUNTERS_OK);
    ck_assert_uint_eq(res.value, strstr(rc->reset, "t:acme:messages/hour") != NULL ? 0 : 2);
    buf_free(&r.text);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_reset_failures)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    seed_prefix(&f);
    const char *both[] = { "t:acme:", "a:acme:" };
    const char *empty[] = { "t:acme:", "" };
    size_t n = 7;
    /* bad arguments */
    ck_assert(!counters_reset(f.c, both, 2, WIN_COUNT, NULL, NULL, &n, &f.err));
    ck_assert_msg(strstr(f.err.data, "unit") != NULL, "%s", f.err.data);
    ck_assert(!counters_reset(f.c, both, 2, -2, NULL, NULL, &n, &f.err));
    ck_assert(!counters_reset(f.c, empty, 2, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n, &f.err));
    ck_assert_msg(strstr(f.err.data, "empty") != NULL, "%s", f.err.data);
    ck_assert_uint_eq(n, 0);
    ck_assert(counters_reset(f.c, both, 0, COUNTERS_CURRENT_WINDOWS, NULL, NULL, NULL, &f.err));
    ck_assert_uint_eq(get1(&f, "t:acme:bytes", WIN_DAY), 100);
    /* a failure on the second prefix leaves the first one's rows */
    raw_exec(f.db.path, "CREATE TRIGGER fail BEFORE DELETE ON counters WHEN OLD.key LIKE 'a:%' "
                        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    ck_assert(!counters_reset(f.c, both, 2, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n, &f.err));
    ck_assert_msg(strstr(f.err.data, f.db.path) != NULL && strstr(f.err.data, "injected failure") != NULL,
                  "%s", f.err.data);
    ck_assert_uint_eq(get1(&f, "t:acme:bytes", WIN_DAY), 100);
    ck_assert(store_autocommit(f.s));
    raw_exec(f.db.path, "DROP TRIGGER fail");
    /* a read-only handle cannot reset */
    struct store *ro = open_ok(f.db.path, STORE_READONLY);
    struct counters *cro = counters_sqlite_open(ro, clock_fixed(&f.now));
    ck_assert(!counters_reset(cro, both, 2, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n, &f.err));
    ck_assert_msg(strstr(f.err.data, "readonly") != NULL, "%s", f.err.data);
    counters_close(cro);
    store_close(ro);
    /* inside a batch: undone with the batch, kept with it */
    ck_assert(store_batch_begin(f.s, &f.err));
    ck_assert(counters_reset(f.c, both, 1, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n, &f.err));
    ck_assert_uint_eq(n, 2);
    ck_assert(!store_autocommit(f.s));
    store_batch_rollback(f.s);
    ck_assert_uint_eq(get1(&f, "t:acme:bytes", WIN_DAY), 100);
    ck_assert(store_batch_begin(f.s, &f.err));
    ck_assert(counters_reset(f.c, both, 1, COUNTERS_CURRENT_WINDOWS, NULL, NULL, &n, &f.err));
    struct audit_rec rec = { .component = "ctl", .action = "counters reset", .stage = "admin" };
    ck_assert_msg(audit_write(f.s, &rec, &f.err), "%s", f.err.data);
    ck_assert_msg(store_batch_commit(f.s, &f.err), "%s", f.err.data);
    ck_assert_uint_eq(get1(&f, "t:acme:bytes", WIN_DAY), 0);
    ck_assert_int_eq(raw_int(f.db.path, "SELECT count(*) FROM audit"), 1);
    /* the table is gone: list and reset fail cleanly */
    raw_exec(f.db.path, "DROP TABLE counters");
    struct rows r = { .n = 0 };
    buf_init(&r.text);
    ck_assert(!counters_list(f.c, "t:", rows_cb, &r, &f.err));
    ck_assert_msg(strstr(f.err.data, "no such table") != NULL, "%s", f.err.data);
    ck_assert(!counters_reset(f.c, both, 2, WIN_DAY, NULL, NULL, &n, &f.err));
    ck_assert(store_autocommit(f.s));
    buf_free(&r.text);
    fix_close(&f);
}
END_TEST

/* --- counters: several handles, processes, failures --------------------------------- */

START_TEST(test_counters_two_handles)
{
    struct fix f;
    fix_open(&f, "Europe/Paris", "2026-03-10T12:00:00Z");
    struct store *s2 = open_ok(f.db.path, 0);
    struct counters *c2 = counters_sqlite_open(s2, clock_fixed(&f.now));
    struct counter_req req = { "shared", WIN_DAY, 2, 3 };
    struct counter_result r;
    ck_assert_int_eq(add1(&f, "shared", WIN_DAY, 2, 3, NULL), COUNTERS_OK);
    ck_assert_int_eq(counters_check_add(c2, &req, 1, true, &r, &f.err), COUNTERS_EXCEEDED);
    ck_assert_uint_eq(r.value, 2);
    req.add = 1;
    ck_assert_int_eq(counters_check_add(c2, &req, 1, true, &r, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(get1(&f, "shared", WIN_DAY), 3);
    /* a read-only handle (posternctl) sees it too, and cannot write */
    struct store *ro = open_ok(f.db.path, STORE_READONLY);
    struct counters *cro = counters_sqlite_open(ro, clock_fixed(&f.now));
    uint64_t v = 0;
    time_t s, e;
    ck_assert_msg(counters_get(cro, "shared", WIN_DAY, &v, &s, &e, &f.err), "%s", f.err.data);
    ck_assert_uint_eq(v, 3);
    req.add = 0;
    ck_assert_int_eq(counters_check_add(cro, &req, 1, true, &r, &f.err), COUNTERS_ERROR);
    ck_assert_msg(strstr(f.err.data, f.db.path) != NULL && strstr(f.err.data, "readonly"),
                  "%s", f.err.data);
    counters_close(cro);
    store_close(ro);
    counters_close(c2);
    store_close(s2);
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_store_failure)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    ck_assert_int_eq(add1(&f, "ok", WIN_DAY, 1, 10, NULL), COUNTERS_OK);
    /* a failure on the 2nd write of a check_add leaves nothing of the 1st */
    raw_exec(f.db.path, "CREATE TRIGGER fail BEFORE INSERT ON counters WHEN NEW.key = 'boom' "
                        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    struct counter_req reqs[2] = { { "ok", WIN_DAY, 1, 10 }, { "boom", WIN_DAY, 1, 10 } };
    struct counter_result res[2];
    ck_assert_int_eq(counters_check_add(f.c, reqs, 2, true, res, &f.err), COUNTERS_ERROR);
    ck_assert_msg(strstr(f.err.data, f.db.path) != NULL &&
                  strstr(f.err.data, "injected failure") != NULL, "%s", f.err.data);
    ck_assert_uint_eq(res[0].after, res[0].value);
    ck_assert_uint_eq(get1(&f, "ok", WIN_DAY), 1);
    ck_assert(store_autocommit(f.s));    /* no transaction left open */
    /* the handle still works afterwards */
    ck_assert_int_eq(add1(&f, "ok", WIN_DAY, 1, 10, NULL), COUNTERS_OK);
    /* the table is gone: every call fails cleanly */
    raw_exec(f.db.path, "DROP TABLE counters");
    ck_assert_int_eq(counters_check_add(f.c, reqs, 1, true, res, &f.err), COUNTERS_ERROR);
    ck_assert_msg(strstr(f.err.data, "no such table") != NULL, "%s", f.err.data);
    ck_assert_int_eq(counters_check_add(f.c, reqs, 1, false, res, &f.err), COUNTERS_ERROR);
    uint64_t v;
    time_t s, e;
    ck_assert(!counters_get(f.c, "ok", WIN_DAY, &v, &s, &e, &f.err));
    ck_assert(store_autocommit(f.s));
    fix_close(&f);
}
END_TEST

START_TEST(test_counters_busy_is_an_error)
{
    struct fix f;
    fix_open(&f, "UTC", "2026-03-10T12:00:00Z");
    ck_assert_int_eq(add1(&f, "k", WIN_DAY, 1, 10, NULL), COUNTERS_OK);
    /* another handle holds the write lock for longer than the busy timeout */
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(f.db.path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct counter_req req = { "k", WIN_DAY, 1, 10 };
    struct counter_result r;
    /* a look-only check needs no write lock (WAL readers go on) */
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, false, &r, &f.err), COUNTERS_OK);
    ck_assert_uint_eq(r.value, 1);
    /* a committing one waits STORE_BUSY_TIMEOUT_MS, then reports the lock */
    int64_t t0 = clock_mono_us();
    ck_assert_int_eq(counters_check_add(f.c, &req, 1, true, &r, &f.err), COUNTERS_ERROR);
    ck_assert_int_ge(clock_mono_us() - t0, (int64_t)STORE_BUSY_TIMEOUT_MS * 1000 * 9 / 10);
    ck_assert_msg(strstr(f.err.data, "locked") != NULL, "%s", f.err.data);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    ck_assert_int_eq(add1(&f, "k", WIN_DAY, 1, 10, NULL), COUNTERS_OK);
    ck_assert_uint_eq(get1(&f, "k", WIN_DAY), 2);
    fix_close(&f);
}
END_TEST

#define CHILDREN 4
#define PER_CHILD 500
#define SHARED_LIMIT 1500

struct child_report {
    unsigned ok, exceeded, errors;
};

static void child_run(const char *path, int fd)
{
    struct child_report rep = { 0, 0, 0 };
    struct buf err;
    buf_init(&err);
    int64_t now = us(iso("2026-03-10T12:00:00Z"));
    struct store *s = store_open(path, 0, &err);
    if (s == NULL) {
        rep.errors = PER_CHILD;
    } else {
        struct counters *c = counters_sqlite_open(s, clock_fixed(&now));
        struct counter_req req = { "race", WIN_DAY, 1, SHARED_LIMIT };
        struct counter_result r;
        for (int i = 0; i < PER_CHILD; i++) {
            int rc = counters_check_add(c, &req, 1, true, &r, &err);
            rep.ok += rc == COUNTERS_OK;
            rep.exceeded += rc == COUNTERS_EXCEEDED;
            rep.errors += rc == COUNTERS_ERROR;
            if (rc == COUNTERS_ERROR)
                fprintf(stderr, "child: %s\n", err.data);
        }
        counters_close(c);
        store_close(s);
    }
    buf_free(&err);
    ssize_t w = write(fd, &rep, sizeof rep);
    _exit(w == (ssize_t)sizeof rep ? 0 : 1);
}

START_TEST(test_counters_processes_race)
{
    struct tdb t;
    tdb_make(&t);
    store_close(open_ok(t.path, 0));   /* created before the children start */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pids[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            close(p[0]);
            child_run(t.path, p[1]);
        }
    }
    close(p[1]);
    struct child_report total = { 0, 0, 0 };
    for (int i = 0; i < CHILDREN; i++) {
        struct child_report rep;
        ssize_t n;
        do
            n = read(p[0], &rep, sizeof rep);
        while (n < 0 && errno == EINTR);
        ck_assert_int_eq(n, (ssize_t)sizeof rep);
        total.ok += rep.ok;
        total.exceeded += rep.exceeded;
        total.errors += rep.errors;
    }
    close(p[0]);
    for (int i = 0; i < CHILDREN; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ck_assert_uint_eq(total.errors, 0);
    ck_assert_uint_eq(total.ok, SHARED_LIMIT);
    ck_assert_uint_eq(total.exceeded, CHILDREN * PER_CHILD - SHARED_LIMIT);
    ck_assert_int_eq(raw_int(t.path, "SELECT value FROM counters WHERE key = 'race'"),
                     SHARED_LIMIT);
    tdb_remove(&t);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_schema_created_and_idempotent);
    tcase_add_test(tc, test_migrates_an_empty_database);
    tcase_add_test(tc, test_wal_mode);
    tcase_add_test(tc, test_future_database_refused);
    tcase_add_loop_test(tc, test_open_errors, 0, sizeof open_cases / sizeof open_cases[0]);
    tcase_add_test(tc, test_memory_store);
    tcase_add_test(tc, test_audit_roundtrip_every_field);
    tcase_add_test(tc, test_audit_minimal_record);
    tcase_add_loop_test(tc, test_audit_query_filters, 0,
                        sizeof filter_cases / sizeof filter_cases[0]);
    tcase_add_loop_test(tc, test_audit_query_addresses, 0, sizeof addr_cases / sizeof addr_cases[0]);
    tcase_add_test(tc, test_audit_log_line);
    tcase_add_test(tc, test_audit_store_failure);
    tcase_add_loop_test(tc, test_counters_limits, 0, sizeof limit_cases / sizeof limit_cases[0]);
    tcase_add_test(tc, test_counters_multi_req_atomic);
    tcase_add_test(tc, test_counters_same_counter_twice);
    tcase_add_test(tc, test_counters_look_only);
    tcase_add_test(tc, test_counters_bad_request);
    tcase_add_loop_test(tc, test_counters_windows, 0,
                        sizeof window_cases / sizeof window_cases[0]);
    tcase_add_test(tc, test_counters_day_resets_at_local_midnight);
    tcase_add_test(tc, test_counters_dst_day_is_25_hours);
    tcase_add_test(tc, test_counters_week_starts_monday_local);
    tcase_add_test(tc, test_counters_gc);
    tcase_add_loop_test(tc, test_counters_prefix_end, 0, sizeof prefix_cases / sizeof prefix_cases[0]);
    tcase_add_loop_test(tc, test_counters_list, 0, sizeof list_cases / sizeof list_cases[0]);
    tcase_add_test(tc, test_counters_list_window_and_stop);
    tcase_add_loop_test(tc, test_counters_reset, 0, sizeof reset_cases / sizeof reset_cases[0]);
    tcase_add_test(tc, test_counters_reset_failures);
    tcase_add_test(tc, test_counters_two_handles);
    tcase_add_test(tc, test_counters_store_failure);
    tcase_add_test(tc, test_counters_busy_is_an_error);
    tcase_add_test(tc, test_counters_processes_race);
}

UNIT_MAIN("store", add_tests)
