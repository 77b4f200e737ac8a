/* test_journal.c: unit tests of the decision journal (journal.c): records
 * appended and ingested into the store (audit rows, summed counter deltas,
 * the ingested id, idempotence), ingestion in chunks with and without a
 * cursor, rollback, records too long for readers refused, unfinished
 * writes at the end of the newest file (cut off by the writer, a stop for
 * readers), damaged records in older files (skipped with the rest of
 * their file), trimming, ids that never repeat
 * when the files are gone, counter resets requested through the store and
 * applied at their place, and the count of records pending. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "audit.h"
#include "buf.h"
#include "counters.h"
#include "journal.h"
#include "log.h"
#include "ptime.h"
#include "store.h"
#include "unit.h"

/* The record framing of journal.c (journal.h): magic, payload length,
 * CRC-32; the payload starts with id, time, latency (u64 each), kind. */
#define T_HEADER 12
#define T_KIND_AT (T_HEADER + 24)

/* --- helpers ------------------------------------------------------------- */

/* A temporary state directory: a store file and a journal directory. */
struct fix {
    char root[64];
    char jdir[96];
    char db[96];
    struct store *s;
    struct buf err;
    int64_t now; /* µs: the real time at set-up (the ingestion keeps windows of now) */
};

static struct store *open_store(const char *path)
{
    struct buf err;
    buf_init(&err);
    struct store *s = store_open(path, 0, &err);
    ck_assert_msg(s != NULL, "store_open: %s", err.data);
    buf_free(&err);
    return s;
}

static void fix_open(struct fix *f)
{
    snprintf(f->root, sizeof f->root, "/tmp/postern-test-journal-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->root));
    snprintf(f->jdir, sizeof f->jdir, "%s/journal", f->root);
    snprintf(f->db, sizeof f->db, "%s/state.db", f->root);
    f->s = open_store(f->db);
    buf_init(&f->err);
    struct clock sys = clock_system();
    f->now = clock_now_us(&sys);
}

static void fix_close(struct fix *f)
{
    if (f->s != NULL)
        store_close(f->s);
    buf_free(&f->err);
    unit_rm_tree(f->root);
    ck_assert_int_ne(access(f->root, F_OK), 0);
}

static void setup(void)
{
    log_open("test_journal", false, false, LOG_LVL_DEBUG);
    ck_assert(tz_select("UTC"));
}

static void jpath(const char *dir, int64_t first, char *out, size_t size)
{
    snprintf(out, size, "%s/%016" PRIx64 ".pj", dir, (uint64_t)first);
}

static bool exists(const char *dir, int64_t first)
{
    char p[160];
    jpath(dir, first, p, sizeof p);
    return access(p, F_OK) == 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
    return (long long)st.st_size;
}

static void read_all(const char *path, struct buf *out)
{
    buf_reset(out);
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_add(out, chunk, n);
    fclose(fp);
}

/* Append bytes with one plain write(), as a write cut short would leave them. */
static void append_raw(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0640);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void write_at(const char *path, long long offset, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, p, n, (off_t)offset), (ssize_t)n);
    close(fd);
}

static uint32_t le32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static void put_le32(char *p, uint32_t v)
{
    p[0] = (char)v;
    p[1] = (char)(v >> 8);
    p[2] = (char)(v >> 16);
    p[3] = (char)(v >> 24);
}

/* Offsets of the records of an intact file's data; returns their number. */
static size_t record_offsets(const struct buf *data, size_t *offs, size_t max)
{
    size_t n = 0, at = 0;
    while (at + T_HEADER <= data->len && n < max) {
        ck_assert_int_eq(memcmp(data->data + at, "PJR1", 4), 0);
        offs[n++] = at;
        at += T_HEADER + le32(data->data + at + 4);
    }
    ck_assert_uint_eq(at, data->len);
    return n;
}

/* Capture the log (stderr) from warnings up. */
struct capture {
    FILE *tmp;
    int saved;
};

static void capture_begin(struct capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    ck_assert_ptr_nonnull(c->tmp);
    c->saved = dup(2);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_ge(dup2(fileno(c->tmp), 2), 0);
    log_open("test_journal", false, true, LOG_LVL_WARN);
}

static char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    log_open("test_journal", false, false, LOG_LVL_DEBUG);
    struct buf out;
    buf_init(&out);
    char chunk[512];
    size_t n;
    rewind(c->tmp);
    while ((n = fread(chunk, 1, sizeof chunk, c->tmp)) > 0)
        buf_add(&out, chunk, n);
    fclose(c->tmp);
    char *text = buf_detach(&out);
    buf_free(&out);
    return text;
}

static struct journal *jopen(const char *dir, int64_t ingested)
{
    struct buf err;
    buf_init(&err);
    struct journal *j = journal_open(dir, ingested, false, &err);
    ck_assert_msg(j != NULL, "journal_open: %s", err.data);
    buf_free(&err);
    return j;
}

static void commit_ok(struct journal *j)
{
    struct buf err;
    buf_init(&err);
    ck_assert_msg(journal_commit(j, &err), "journal_commit: %s", err.data);
    buf_free(&err);
}

/* The key every simple record adds its number to (day window of now). */
#define SUM_KEY "t/sum"

/* Add a simple record: queue id tag, time and counter delta from seq
 * (time increasing with seq, so the audit table reads back in seq order). */
static int64_t add_tagged(struct fix *f, struct journal *j, const char *tag, int64_t seq)
{
    char key[] = SUM_KEY, reason[64];
    time_t ws, we;
    window_bounds(WIN_DAY, (time_t)(f->now / 1000000), &ws, &we);
    snprintf(reason, sizeof reason, "record %s", tag);
    struct counter_delta d = { key, WIN_DAY, ws, we, (uint64_t)seq };
    struct audit_rec rec = {
        .time_us = f->now - 1000000000 + seq * 1000,
        .component = "policyd",
        .action = "DUNNO",
        .queue_id = tag,
        .reason = reason,
        .latency_us = seq,
    };
    int64_t id = journal_add(j, &rec, &d, 1, NULL, &f->err);
    ck_assert_msg(id > 0, "journal_add: %s", f->err.data);
    return id;
}

/* Record number i: tag "Q<i>", delta i; asserts its id is i. */
static void add_simple(struct fix *f, struct journal *j, int64_t i)
{
    char tag[32];
    snprintf(tag, sizeof tag, "Q%" PRId64, i);
    ck_assert_int_eq(add_tagged(f, j, tag, i), i);
}

/* Write file <first>.pj of f's journal directory holding records
 * first..first+count-1, with the journal itself (in a scratch directory:
 * a journal always continues its newest file). */
static void make_file(struct fix *f, int64_t first, int count)
{
    char scratch[128], from[192], to[192];
    snprintf(scratch, sizeof scratch, "%s/scratch", f->root);
    ck_assert(mkdir(f->jdir, 0750) == 0 || errno == EEXIST);
    struct journal *j = jopen(scratch, first - 1);
    ck_assert_int_eq(journal_next_id(j), first);
    for (int64_t i = first; i < first + count; i++)
        add_simple(f, j, i);
    commit_ok(j);
    journal_close(j);
    jpath(scratch, first, from, sizeof from);
    jpath(f->jdir, first, to, sizeof to);
    ck_assert_int_eq(rename(from, to), 0);
    ck_assert_int_eq(rmdir(scratch), 0);
}

/* Files 1 (records 1..3), 4 (4..6) and 7 (7..9, the newest). */
static void make_three_files(struct fix *f)
{
    make_file(f, 1, 3);
    make_file(f, 4, 3);
    make_file(f, 7, 3);
}

static bool qid_cb(const struct audit_rec *r, void *arg)
{
    struct buf *b = arg;
    if (b->len > 0)
        buf_putc(b, ' ');
    buf_puts(b, r->queue_id != NULL ? r->queue_id : "-");
    return true;
}

/* The audit table's queue ids, by time, joined with ' ' (caller frees). */
static char *audit_qids(struct store *s)
{
    struct buf b, err;
    buf_init(&b);
    buf_init(&err);
    ck_assert_msg(audit_query(s, NULL, qid_cb, &b, &err), "audit_query: %s", err.data);
    buf_free(&err);
    char *text = buf_detach(&b);
    buf_free(&b);
    return text;
}

static void expect_qids(struct store *s, const char *want)
{
    char *got = audit_qids(s);
    ck_assert_str_eq(got, want);
    mem_free(got);
}

/* "Q<from> .. Q<to>" as audit_qids() gives them. */
static void qid_range(struct buf *b, int64_t from, int64_t to)
{
    for (int64_t i = from; i <= to; i++)
        buf_printf(b, "%sQ%" PRId64, b->len > 0 ? " " : "", i);
}

static uint64_t counter_at(struct fix *f, struct store *s, const char *key, enum window_unit u)
{
    struct counters *c = counters_sqlite_open(s, clock_fixed(&f->now));
    uint64_t v = 12345;
    time_t ws, we;
    ck_assert_msg(counters_get(c, key, u, &v, &ws, &we, &f->err), "counters_get: %s", f->err.data);
    counters_close(c);
    return v;
}

/* The value of one stored row, -1 when there is none. */
static long long row_value(struct store *s, const char *key, enum window_unit u, time_t ws)
{
    struct buf err;
    buf_init(&err);
    sqlite3_stmt *st =
        store_stmt(s, "SELECT value FROM counters WHERE key = ?1 AND unit = ?2 AND window_start = ?3", &err);
    ck_assert_msg(st != NULL, "%s", err.data);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, window_unit_name(u), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)ws);
    enum store_step r = store_step(s, st, "reading a row", &err);
    ck_assert_msg(r != STORE_FAIL, "%s", err.data);
    long long v = r == STORE_ROW ? (long long)sqlite3_column_int64(st, 0) : -1;
    store_stmt_done(st);
    buf_free(&err);
    return v;
}

static int64_t ingested_of(struct fix *f, struct store *s)
{
    int64_t v = -1;
    ck_assert_msg(journal_ingested(s, &v, &f->err), "journal_ingested: %s", f->err.data);
    return v;
}

static size_t pending_of(struct fix *f, struct store *s)
{
    size_t n = 12345;
    ck_assert_msg(journal_pending(s, f->jdir, &n, &f->err), "journal_pending: %s", f->err.data);
    return n;
}

/* journal_ingest that must succeed; returns the records moved. */
static size_t ingest(struct fix *f, struct store *s, size_t max_rows, struct journal_cursor *cur,
                     int64_t *ingested)
{
    size_t n = 12345;
    int64_t id = -1;
    ck_assert_msg(journal_ingest(s, f->jdir, max_rows, cur, &id, &n, &f->err), "journal_ingest: %s",
                  f->err.data);
    if (ingested != NULL)
        *ingested = id;
    ck_assert_int_eq(id, ingested_of(f, s));
    return n;
}

static void set_ingested(struct store *s, int64_t id)
{
    struct buf err;
    buf_init(&err);
    sqlite3_stmt *st = store_stmt(s, "UPDATE ingest_state SET journal_id = ?1", &err);
    ck_assert_msg(st != NULL, "%s", err.data);
    sqlite3_bind_int64(st, 1, id);
    ck_assert_int_eq(store_step(s, st, "setting the ingested id", &err), STORE_DONE);
    store_stmt_done(st);
    buf_free(&err);
}

/* --- audit records read back ---------------------------------------------- */

#define NTEXT 13

struct got_rec {
    int64_t id, time_us, latency_us;
    char *text[NTEXT]; /* component .. counters, without recipients; NULL kept */
    char *rcpts;       /* joined with ',' (NULL: none) */
};

struct got {
    struct got_rec v[8];
    size_t n;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? mem_strdup(s) : NULL;
}

static void rec_texts(const struct audit_rec *r, const char *out[NTEXT])
{
    const char *t[NTEXT] = { r->component, r->tenant, r->account, r->client_ip, r->sasl_login,
                             r->sender, r->queue_id, r->instance, r->stage, r->action,
                             r->reason, r->rule, r->counters };
    memcpy(out, t, sizeof t);
}

static bool got_cb(const struct audit_rec *r, void *arg)
{
    struct got *g = arg;
    ck_assert_uint_lt(g->n, 8);
    struct got_rec *x = &g->v[g->n++];
    x->id = r->id;
    x->time_us = r->time_us;
    x->latency_us = r->latency_us;
    const char *t[NTEXT];
    rec_texts(r, t);
    for (int i = 0; i < NTEXT; i++)
        x->text[i] = dup_or_null(t[i]);
    x->rcpts = NULL;
    if (r->nrecipients > 0) {
        struct buf b;
        buf_init(&b);
        audit_join(r, ',', &b);
        x->rcpts = buf_detach(&b);
        buf_free(&b);
    }
    return true;
}

static int got_cmp(const void *a, const void *b)
{
    const struct got_rec *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        for (int k = 0; k < NTEXT; k++)
            mem_free(g->v[i].text[k]);
        mem_free(g->v[i].rcpts);
    }
    g->n = 0;
}

/* The record as stored: every field as given ("" read back as NULL). */
static void expect_rec(const struct got_rec *got, const struct audit_rec *want)
{
    const char *t[NTEXT];
    rec_texts(want, t);
    for (int i = 0; i < NTEXT; i++) {
        if (t[i] == NULL || t[i][0] == '\0')
            ck_assert_msg(got->text[i] == NULL, "field %d: want NULL, got \"%s\"", i, got->text[i]);
        else {
            ck_assert_msg(got->text[i] != NULL, "field %d: want \"%s\", got NULL", i, t[i]);
            ck_assert_str_eq(got->text[i], t[i]);
        }
    }
    if (want->time_us != 0)
        ck_assert_int_eq(got->time_us, want->time_us);
    ck_assert_int_eq(got->latency_us, want->latency_us);
    struct buf r;
    buf_init(&r);
    audit_join(want, ',', &r);
    if (r.len == 0)
        ck_assert_ptr_null(got->rcpts);
    else {
        ck_assert_ptr_nonnull(got->rcpts);
        ck_assert_str_eq(got->rcpts, r.data);
    }
    buf_free(&r);
}

/* --- 1. append and ingest ----------------------------------------------------- */

static const char *const rcpts3[] = { "a@example.org", "b@example.net", "c@example.com" };
static const char *const rcpts1[] = { "Only.One@Example.ORG" };

START_TEST(test_round_trip)
{
    struct fix f;
    fix_open(&f);
    time_t now_s = (time_t)(f.now / 1000000), dws, dwe, hws, hwe, mws, mwe, nws, nwe;
    window_bounds(WIN_DAY, now_s, &dws, &dwe);
    window_bounds(WIN_HOUR, now_s, &hws, &hwe);
    window_bounds(WIN_MINUTE, now_s, &mws, &mwe);
    window_bounds(WIN_MONTH, now_s, &nws, &nwe);
    char kmsg[] = "acme/acct/billing@acme.example/messages", kbytes[] = "acme/acct/billing@acme.example/bytes",
         kbig[] = "acme/big";
    const uint64_t big = (uint64_t)INT64_MAX + 10; /* stored as a negative int64 */

    struct audit_rec recs[4] = {
        { .time_us = f.now - 4000000, .component = "policyd", .tenant = "acme",
          .account = "billing@acme.example", .client_ip = "2001:db8::10",
          .sasl_login = "billing@acme.example", .sender = "invoices@acme.example",
          .recipients = rcpts3, .nrecipients = 3, .queue_id = "4ZXk9f2PqJz1",
          .instance = "a1b2.6745f0c1.7d3e2.0", .stage = "rcpt", .action = "DUNNO",
          .reason = "ok", .rule = "limits.messages",
          .counters = "acme/billing/messages/day=4+1/500", .latency_us = 1234 },
        /* minimal: the time is now, "" and NULL are stored as NULL */
        { .component = "milter", .action = "sign", .tenant = "", .reason = NULL },
        { .time_us = f.now - 2000000, .component = "policyd", .tenant = "acme",
          .account = "billing@acme.example", .client_ip = "192.0.2.7", .sasl_login = "",
          .sender = "", .recipients = rcpts1, .nrecipients = 1, .queue_id = "4ZXk9f2PqJz2",
          .instance = "a1b2.6745f0c1.7d3e2.1", .stage = "eom", .action = "DEFER",
          .reason = "452 4.5.3 quota reached\r\nsecond \"line\" = x", .rule = "limits.messages",
          .counters = "acme/billing/messages/day=500+1/500", .latency_us = 0 },
        { .time_us = f.now - 1000000, .component = "ctl", .action = "REJECT", .stage = "connect",
          .client_ip = "198.51.100.1", .latency_us = 99 },
    };
    struct counter_delta d0[] = { { kmsg, WIN_DAY, dws, dwe, 1 }, { kbytes, WIN_HOUR, hws, hwe, 52000 } };
    struct counter_delta d2[] = { { kmsg, WIN_DAY, dws, dwe, 4 }, { kbig, WIN_MONTH, nws, nwe, big } };
    struct counter_delta d3[] = { { kmsg, WIN_MINUTE, mws, mwe, 1 } };
    const struct counter_delta *deltas[4] = { d0, NULL, d2, d3 };
    size_t ndeltas[4] = { 2, 0, 2, 1 };

    struct journal *j = jopen(f.jdir, 0);
    ck_assert_str_eq(journal_dir(j), f.jdir);
    ck_assert_int_eq(journal_next_id(j), 1);
    struct clock sys = clock_system();
    int64_t before = clock_now_us(&sys);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(journal_add(j, &recs[i], deltas[i], ndeltas[i], NULL, &f.err), i + 1);
    ck_assert_int_eq(journal_next_id(j), 1); /* not committed yet */
    ck_assert_uint_eq(pending_of(&f, f.s), 0);
    commit_ok(j);
    ck_assert_int_eq(journal_next_id(j), 5);
    ck_assert(exists(f.jdir, 1));
    ck_assert_uint_eq(pending_of(&f, f.s), 4);

    int64_t ingested = 0;
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &ingested), 4);
    ck_assert_int_eq(ingested, 4);
    ck_assert_uint_eq(pending_of(&f, f.s), 0);

    struct got g = { .n = 0 };
    ck_assert_msg(audit_query(f.s, NULL, got_cb, &g, &f.err), "%s", f.err.data);
    ck_assert_uint_eq(g.n, 4);
    qsort(g.v, g.n, sizeof g.v[0], got_cmp);
    for (size_t i = 0; i < 4; i++)
        expect_rec(&g.v[i], &recs[i]);
    ck_assert_int_ge(g.v[1].time_us, before); /* time 0: now */
    ck_assert_int_le(g.v[1].time_us, clock_now_us(&sys));
    got_free(&g);

    ck_assert_uint_eq(counter_at(&f, f.s, kmsg, WIN_DAY), 5);
    ck_assert_uint_eq(counter_at(&f, f.s, kmsg, WIN_MINUTE), 1);
    ck_assert_uint_eq(counter_at(&f, f.s, kmsg, WIN_HOUR), 0);
    ck_assert_uint_eq(counter_at(&f, f.s, kbytes, WIN_HOUR), 52000);
    ck_assert_uint_eq(counter_at(&f, f.s, kbig, WIN_MONTH), big);
    ck_assert_int_eq(row_value(f.s, kmsg, WIN_DAY, dws), 5);
    ck_assert_int_eq(row_value(f.s, kmsg, WIN_HOUR, hws), -1);

    /* again: nothing moves, nothing counted twice */
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &ingested), 0);
    ck_assert_int_eq(ingested, 4);
    expect_qids(f.s, "4ZXk9f2PqJz1 4ZXk9f2PqJz2 - -");
    ck_assert_uint_eq(counter_at(&f, f.s, kmsg, WIN_DAY), 5);

    /* ids go on after the ingested ones; a later ingestion takes only them */
    add_simple(&f, j, 5);
    add_simple(&f, j, 6);
    commit_ok(j);
    ck_assert_uint_eq(pending_of(&f, f.s), 2);
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &ingested), 2);
    ck_assert_int_eq(ingested, 6);
    ck_assert_uint_eq(counter_at(&f, f.s, SUM_KEY, WIN_DAY), 11);
    ck_assert_uint_eq(counter_at(&f, f.s, kmsg, WIN_DAY), 5);
    journal_close(j);

    /* reopened: the ids go on after the last record */
    j = jopen(f.jdir, 6);
    ck_assert_int_eq(journal_next_id(j), 7);
    journal_close(j);
    j = jopen(f.jdir, 0);
    ck_assert_int_eq(journal_next_id(j), 7);
    journal_close(j);
    fix_close(&f);
}
END_TEST

/* --- 2. chunks and cursors ------------------------------------------------------ */

static const size_t chunk_sizes[] = { 1, 2, 5 };

START_TEST(test_ingest_chunks)
{
    size_t k = chunk_sizes[_i];
    struct fix f;
    fix_open(&f);
    make_three_files(&f);
    struct journal *j = jopen(f.jdir, 0);
    ck_assert_int_eq(journal_next_id(j), 10); /* continues the newest file */
    for (int64_t i = 10; i <= 12; i++)
        add_simple(&f, j, i);
    commit_ok(j);
    journal_close(j);
    ck_assert(!exists(f.jdir, 10));

    char path_b[128];
    snprintf(path_b, sizeof path_b, "%s/b.db", f.root);
    struct store *b = open_store(path_b);
    struct journal_cursor cur = { 0, 0, 0 }, first_cur = { 0, 0, 0 };
    int64_t want = 0;
    for (int round = 0; want < 12; round++) {
        size_t expect = 12 - (size_t)want < k ? 12 - (size_t)want : k;
        int64_t got_a = 0, got_b = 0;
        ck_assert_uint_eq(ingest(&f, f.s, k, &cur, &got_a), expect);
        ck_assert_uint_eq(ingest(&f, b, k, NULL, &got_b), expect);
        want += (int64_t)expect;
        ck_assert_int_eq(got_a, want);
        ck_assert_int_eq(got_b, want);
        ck_assert_int_eq(cur.next_id, want + 1);
        if (round == 0)
            first_cur = cur;
        ck_assert_uint_eq(pending_of(&f, f.s), (size_t)(12 - want));
    }
    /* the end: nothing more, with or without the cursor */
    ck_assert_uint_eq(ingest(&f, f.s, k, &cur, NULL), 0);
    ck_assert_uint_eq(ingest(&f, b, k, NULL, NULL), 0);
    char p7[160];
    jpath(f.jdir, 7, p7, sizeof p7);
    ck_assert_int_eq(cur.file_first, 7);
    ck_assert_int_eq(cur.offset, file_size(p7));
    ck_assert_int_eq(cur.next_id, 13);

    struct buf want_q;
    buf_init(&want_q);
    qid_range(&want_q, 1, 12);
    expect_qids(f.s, want_q.data);
    expect_qids(b, want_q.data);
    ck_assert_uint_eq(counter_at(&f, f.s, SUM_KEY, WIN_DAY), 78);
    ck_assert_uint_eq(counter_at(&f, b, SUM_KEY, WIN_DAY), 78);
    store_close(b);

    /* a cursor that does not match the store's mark (another store's):
     * read from the start of the files (once: k = 2) */
    if (k == 2) {
        snprintf(path_b, sizeof path_b, "%s/c.db", f.root);
        b = open_store(path_b);
        struct journal_cursor other = cur; /* next_id 13, the store is at 0 */
        ck_assert_uint_eq(ingest(&f, b, 5, &other, NULL), 5);
        ck_assert_int_eq(other.next_id, 6);
        other = first_cur; /* next_id 3, the store is at 5 */
        ck_assert_int_eq(other.next_id, 3);
        ck_assert_uint_eq(ingest(&f, b, 0, &other, NULL), 7);
        ck_assert_int_eq(other.next_id, 13);
        expect_qids(b, want_q.data);
        ck_assert_uint_eq(counter_at(&f, b, SUM_KEY, WIN_DAY), 78);
        store_close(b);
    }
    buf_free(&want_q);
    fix_close(&f);
}
END_TEST

/* The cursor is used: an ingestion with it reads on from its offset,
 * past a record damaged after it was ingested, which stops a reader that
 * scans the newest file from its start. */
START_TEST(test_cursor_reads_on)
{
    struct fix f;
    fix_open(&f);
    struct journal *j = jopen(f.jdir, 0);
    for (int64_t i = 1; i <= 3; i++)
        add_simple(&f, j, i);
    commit_ok(j);
    struct journal_cursor cur = { 0, 0, 0 };
    ck_assert_uint_eq(ingest(&f, f.s, 0, &cur, NULL), 3);
    char p1[160];
    jpath(f.jdir, 1, p1, sizeof p1);
    ck_assert_int_eq(cur.file_first, 1);
    ck_assert_int_eq(cur.offset, file_size(p1));
    ck_assert_int_eq(cur.next_id, 4);

    struct buf data;
    buf_init(&data);
    read_all(p1, &data);
    size_t offs[8];
    ck_assert_uint_eq(record_offsets(&data, offs, 8), 3);
    char x = (char)(data.data[offs[1] + T_HEADER + 20] ^ 0x5a);
    write_at(p1, (long long)(offs[1] + T_HEADER + 20), &x, 1);

    add_simple(&f, j, 4);
    add_simple(&f, j, 5);
    commit_ok(j);
    ck_assert_uint_eq(ingest(&f, f.s, 0, &cur, NULL), 2);
    expect_qids(f.s, "Q1 Q2 Q3 Q4 Q5");

    char path_b[128];
    snprintf(path_b, sizeof path_b, "%s/b.db", f.root);
    struct store *b = open_store(path_b);
    int64_t id = 0;
    ck_assert_uint_eq(ingest(&f, b, 0, NULL, &id), 1); /* stops at the damage */
    ck_assert_int_eq(id, 1);
    store_close(b);
    buf_free(&data);
    journal_close(j);
    fix_close(&f);
}
END_TEST

/* --- 3. rollback and refused records ---------------------------------------------- */

START_TEST(test_rollback)
{
    struct fix f;
    fix_open(&f);
    struct journal *j = jopen(f.jdir, 0);
    char p1[160];
    jpath(f.jdir, 1, p1, sizeof p1);
    ck_assert_int_eq(add_tagged(&f, j, "A", 1), 1);
    commit_ok(j);
    long long size = file_size(p1);

    ck_assert_int_eq(add_tagged(&f, j, "B", 2), 2);
    ck_assert_int_eq(add_tagged(&f, j, "C", 3), 3);
    journal_rollback(j);
    ck_assert_int_eq(journal_next_id(j), 2);
    commit_ok(j); /* an empty batch: nothing written */
    ck_assert_int_eq(file_size(p1), size);
    ck_assert_uint_eq(pending_of(&f, f.s), 1);

    ck_assert_int_eq(add_tagged(&f, j, "D", 4), 2); /* the ids are given again */
    struct audit_rec bad = { .component = NULL, .action = "DUNNO" };
    buf_reset(&f.err);
    ck_assert_int_eq(journal_add(j, &bad, NULL, 0, NULL, &f.err), 0);
    ck_assert_msg(strstr(f.err.data, "component") != NULL, "%s", f.err.data);
    bad = (struct audit_rec){ .component = "policyd", .action = "" };
    buf_reset(&f.err);
    ck_assert_int_eq(journal_add(j, &bad, NULL, 0, NULL, &f.err), 0);
    ck_assert_msg(strstr(f.err.data, "action") != NULL, "%s", f.err.data);
    bad = (struct audit_rec){ .component = "", .action = "DUNNO" };
    ck_assert_int_eq(journal_add(j, &bad, NULL, 0, NULL, &f.err), 0);
    ck_assert_int_eq(add_tagged(&f, j, "E", 5), 3); /* a refused record takes no id */
    commit_ok(j);
    ck_assert_int_eq(journal_next_id(j), 4);

    int64_t id = 0;
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 3);
    ck_assert_int_eq(id, 3);
    expect_qids(f.s, "A D E");
    ck_assert_uint_eq(counter_at(&f, f.s, SUM_KEY, WIN_DAY), 1 + 4 + 5);

    /* a rollback after a commit keeps what was committed */
    add_tagged(&f, j, "F", 6);
    journal_rollback(j);
    journal_close(j);
    j = jopen(f.jdir, 3);
    ck_assert_int_eq(journal_next_id(j), 4);
    journal_close(j);
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, NULL), 0);
    fix_close(&f);
}
END_TEST

/* A record longer than readers accept (16 MiB of payload: they would take
 * it for damage, and the writer would cut it off with every record after
 * it) is refused, and its id is given again. */
START_TEST(test_oversized_record)
{
    struct fix f;
    fix_open(&f);
    struct journal *j = jopen(f.jdir, 0);
    size_t klen = (16u << 20) + 1;
    char *key = mem_alloc(klen + 1);
    memset(key, 'k', klen);
    time_t ws, we;
    window_bounds(WIN_DAY, (time_t)(f.now / 1000000), &ws, &we);
    struct counter_delta d = { key, WIN_DAY, ws, we, 1 };
    struct audit_rec rec = { .time_us = f.now, .component = "policyd", .action = "DUNNO", .queue_id = "big" };
    buf_reset(&f.err);
    ck_assert_int_eq(journal_add(j, &rec, &d, 1, NULL, &f.err), 0);
    ck_assert_msg(strstr(f.err.data, "limit") != NULL, "%s", f.err.data);
    mem_free(key);
    add_simple(&f, j, 1);
    commit_ok(j);
    journal_close(j);
    int64_t id = 0;
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 1);
    ck_assert_int_eq(id, 1);
    expect_qids(f.s, "Q1");
    j = jopen(f.jdir, 1);
    ck_assert_int_eq(journal_next_id(j), 2);
    journal_close(j);
    fix_close(&f);
}
END_TEST

/* --- 4 and 10. an unfinished write at the end of the newest file --------------- */

enum tail {
    TAIL_HALF,        /* the first half of a record */
    TAIL_HEADER,      /* only a record's header */
    TAIL_MAGIC,       /* three bytes of the magic */
    TAIL_BAD_CRC,     /* a whole record, one byte changed */
    TAIL_GARBAGE,     /* not a record at all */
    TAIL_HUGE,        /* a length of almost 4 GiB */
    TAIL_MAX_LEN,     /* the longest allowed length, the file ends before */
    TAIL_UNDECODABLE, /* a right CRC over a payload that is not a record */
    TAIL_ONLY,        /* the newest file holds only half a record */
};

static const char *const tail_names[] = { "half", "header", "magic", "bad_crc", "garbage",
                                          "huge", "max_len", "undecodable", "only" };

/* The bytes of a tail of kind t, from the intact data of a file. */
static void make_tail(enum tail t, const struct buf *data, struct buf *out)
{
    size_t offs[8];
    size_t n = record_offsets(data, offs, 8);
    ck_assert_uint_ge(n, 1);
    size_t last = offs[n - 1], len = data->len - last;
    char h[T_HEADER];
    buf_reset(out);
    switch (t) {
    case TAIL_HALF:
    case TAIL_ONLY:
        buf_add(out, data->data + last, len / 2);
        break;
    case TAIL_HEADER:
        buf_add(out, data->data + last, T_HEADER);
        break;
    case TAIL_MAGIC:
        buf_add(out, "PJR", 3);
        break;
    case TAIL_BAD_CRC:
        buf_add(out, data->data + last, len);
        out->data[T_HEADER + 20] ^= 0x01;
        break;
    case TAIL_GARBAGE:
        buf_puts(out, "not a journal record at all\n");
        break;
    case TAIL_HUGE:
        memcpy(h, "PJR1", 4);
        put_le32(h + 4, 0xFFFFFFF0u);
        put_le32(h + 8, 0);
        buf_add(out, h, sizeof h);
        buf_puts(out, "0123456789");
        break;
    case TAIL_MAX_LEN:
        memcpy(h, "PJR1", 4);
        put_le32(h + 4, 16u << 20);
        put_le32(h + 8, 0);
        buf_add(out, h, sizeof h);
        buf_puts(out, "abcd");
        break;
    case TAIL_UNDECODABLE:
        memcpy(h, "PJR1", 4);
        put_le32(h + 4, 3);
        put_le32(h + 8, (uint32_t)crc32(0L, (const Bytef *)"xyz", 3));
        buf_add(out, h, sizeof h);
        buf_puts(out, "xyz");
        break;
    }
}

START_TEST(test_torn_tail)
{
    enum tail t = (enum tail)_i;
    struct fix f;
    fix_open(&f);
    struct buf data, tail;
    buf_init(&data);
    buf_init(&tail);
    /* the newest file: 1 (records 1..3), or 4 (no record yet) after file 1 */
    int64_t newest = t == TAIL_ONLY ? 4 : 1;
    char p[160], p1[160];
    jpath(f.jdir, newest, p, sizeof p);
    jpath(f.jdir, 1, p1, sizeof p1);
    if (t == TAIL_ONLY) {
        make_file(&f, 1, 3);
    } else {
        struct journal *j = jopen(f.jdir, 0);
        for (int64_t i = 1; i <= 3; i++)
            add_simple(&f, j, i);
        commit_ok(j);
        journal_close(j);
    }
    read_all(p1, &data);
    long long good = t == TAIL_ONLY ? 0 : (long long)data.len;
    make_tail(t, &data, &tail);
    append_raw(p, tail.data, tail.len);
    ck_assert_int_eq(file_size(p), good + (long long)tail.len);

    /* readers stop before it, without failing, and come back to it */
    ck_assert_uint_eq(pending_of(&f, f.s), 3);
    int64_t id = 0;
    struct capture cap;
    capture_begin(&cap);
    size_t n = ingest(&f, f.s, 0, NULL, &id);
    char *log = capture_end(&cap);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(id, 3);
    ck_assert_msg(strstr(log, "journal_corrupt") == NULL, "%s: %s", tail_names[t], log);
    mem_free(log);
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 0);

    /* the writer cuts it off and goes on after the last good record */
    capture_begin(&cap);
    struct journal *j = jopen(f.jdir, 3);
    log = capture_end(&cap);
    char want_log[256];
    snprintf(want_log, sizeof want_log, "event=journal_repair file=%s offset=%lld bytes=%zu", p, good, tail.len);
    ck_assert_msg(strstr(log, want_log) != NULL, "%s: want %s, got: %s", tail_names[t], want_log, log);
    mem_free(log);
    ck_assert_int_eq(file_size(p), good);
    ck_assert_int_eq(journal_next_id(j), 4);
    add_simple(&f, j, 4);
    add_simple(&f, j, 5);
    commit_ok(j);
    journal_close(j);
    ck_assert(!exists(f.jdir, 5)); /* the same file goes on */
    ck_assert_uint_eq(pending_of(&f, f.s), 2);
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 2);
    ck_assert_int_eq(id, 5);
    expect_qids(f.s, "Q1 Q2 Q3 Q4 Q5");
    ck_assert_uint_eq(counter_at(&f, f.s, SUM_KEY, WIN_DAY), 15);

    /* a journal reopened without the store's id: the same ids */
    j = jopen(f.jdir, 0);
    ck_assert_int_eq(journal_next_id(j), 6);
    journal_close(j);
    buf_free(&data);
    buf_free(&tail);
    fix_close(&f);
}
END_TEST

/* --- 5. a damaged record in a file that is not the newest ------------------------ */

enum damage { DMG_FLIP, DMG_HUGE, DMG_MAGIC, DMG_KIND };

static const struct damage_case {
    int64_t file;       /* first id of the damaged file */
    size_t rec;         /* index of the damaged record in it */
    enum damage what;
    const char *want;   /* the records ingested */
    uint64_t sum;
} damage_cases[] = {
    { 1, 1, DMG_FLIP, "Q1 Q4 Q5 Q6 Q7 Q8 Q9", 40 },
    { 1, 0, DMG_FLIP, "Q4 Q5 Q6 Q7 Q8 Q9", 39 },
    { 4, 0, DMG_HUGE, "Q1 Q2 Q3 Q7 Q8 Q9", 30 },
    { 1, 2, DMG_MAGIC, "Q1 Q2 Q4 Q5 Q6 Q7 Q8 Q9", 42 },
    { 4, 1, DMG_KIND, "Q1 Q2 Q3 Q4 Q7 Q8 Q9", 34 },
};

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += (p == s || p[-1] == ' ') && *p != ' ';
    return n;
}

START_TEST(test_damaged_older_file)
{
    const struct damage_case *dc = &damage_cases[_i];
    struct fix f;
    fix_open(&f);
    make_three_files(&f);
    char p[160];
    jpath(f.jdir, dc->file, p, sizeof p);
    struct buf data;
    buf_init(&data);
    read_all(p, &data);
    size_t offs[8];
    ck_assert_uint_eq(record_offsets(&data, offs, 8), 3);
    size_t at = offs[dc->rec];
    size_t len = le32(data.data + at + 4);
    char *r = data.data + at;
    switch (dc->what) {
    case DMG_FLIP:
        r[T_HEADER + len / 2] ^= 0x20;
        break;
    case DMG_HUGE:
        put_le32(r + 4, 0xFFFFFFF0u);
        break;
    case DMG_MAGIC:
        memcpy(r, "XXXX", 4);
        break;
    case DMG_KIND: /* a right CRC, an unknown kind of record */
        r[T_KIND_AT] = 7;
        put_le32(r + 8, (uint32_t)crc32(0L, (const Bytef *)r + T_HEADER, (uInt)len));
        break;
    }
    write_at(p, 0, data.data, data.len);
    size_t want_n = count_words(dc->want);

    ck_assert_uint_eq(pending_of(&f, f.s), want_n);
    struct capture cap;
    capture_begin(&cap);
    int64_t id = 0;
    size_t n = ingest(&f, f.s, 0, NULL, &id);
    char *log = capture_end(&cap);
    ck_assert_uint_eq(n, want_n);
    ck_assert_int_eq(id, 9);
    char want_log[256];
    snprintf(want_log, sizeof want_log, "event=journal_corrupt file=%s offset=%zu", p, at);
    ck_assert_msg(strstr(log, want_log) != NULL, "want %s, got: %s", want_log, log);
    mem_free(log);
    expect_qids(f.s, dc->want);
    ck_assert_uint_eq(counter_at(&f, f.s, SUM_KEY, WIN_DAY), dc->sum);

    /* nothing more, and the damaged file is not read again */
    capture_begin(&cap);
    n = ingest(&f, f.s, 0, NULL, &id);
    log = capture_end(&cap);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(id, 9);
    ck_assert_str_eq(log, "");
    mem_free(log);
    ck_assert_uint_eq(pending_of(&f, f.s), 0);

    /* one record at a time, with a cursor: the same (every other case,
     * to stay fast under valgrind) */
    if (_i % 2 == 0) {
        char path_b[128];
        snprintf(path_b, sizeof path_b, "%s/b.db", f.root);
        struct store *b = open_store(path_b);
        struct journal_cursor cur = { 0, 0, 0 };
        size_t total = 0, got;
        while ((got = ingest(&f, b, 1, &cur, NULL)) > 0) {
            ck_assert_uint_eq(got, 1);
            total++;
            ck_assert_uint_le(total, want_n);
        }
        ck_assert_uint_eq(total, want_n);
        expect_qids(b, dc->want);
        store_close(b);
    }

    /* the writer does not look at older files */
    struct journal *j = jopen(f.jdir, 9);
    ck_assert_int_eq(journal_next_id(j), 10);
    journal_close(j);
    buf_free(&data);
    fix_close(&f);
}
END_TEST

/* --- 6. trimming --------------------------------------------------------------- */

START_TEST(test_trim)
{
    struct fix f;
    fix_open(&f);
    make_three_files(&f);
    struct journal *j = jopen(f.jdir, 0);
    ck_assert_int_eq(journal_next_id(j), 10);
    static const struct {
        int64_t ingested;
        bool f1, f4, f7;
    } steps[] = {
        { 0, true, true, true },
        { 2, true, true, true },
        { 3, false, true, true },  /* every record of file 1 is ingested */
        { 5, false, true, true },
        { 6, false, false, true },
        { 1000, false, false, true }, /* never the file being written */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        ck_assert_msg(journal_trim(j, steps[i].ingested, &f.err), "journal_trim: %s", f.err.data);
        ck_assert_msg(exists(f.jdir, 1) == steps[i].f1 && exists(f.jdir, 4) == steps[i].f4 &&
                          exists(f.jdir, 7) == steps[i].f7,
                      "after trim(%lld): files 1 %d, 4 %d, 7 %d", (long long)steps[i].ingested,
                      exists(f.jdir, 1), exists(f.jdir, 4), exists(f.jdir, 7));
    }
    /* the records of the trimmed files are gone: a store behind them
     * takes what is left */
    int64_t id = 0;
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 3);
    ck_assert_int_eq(id, 9);
    expect_qids(f.s, "Q7 Q8 Q9");
    add_simple(&f, j, 10);
    commit_ok(j);
    ck_assert(journal_trim(j, 10, &f.err));
    ck_assert(exists(f.jdir, 7));
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 1);
    ck_assert_int_eq(id, 10);
    journal_close(j);

    /* trimmed at once when the journal is opened behind ingestion */
    fix_close(&f);
    fix_open(&f);
    make_three_files(&f);
    j = jopen(f.jdir, 0);
    ck_assert_uint_eq(ingest(&f, f.s, 4, NULL, &id), 4);
    ck_assert(journal_trim(j, id, &f.err));
    ck_assert(!exists(f.jdir, 1) && exists(f.jdir, 4) && exists(f.jdir, 7));
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 5);
    ck_assert(journal_trim(j, id, &f.err));
    ck_assert(!exists(f.jdir, 1) && !exists(f.jdir, 4) && exists(f.jdir, 7));
    journal_close(j);
    fix_close(&f);
}
END_TEST

/* --- 7. ids are never given twice ------------------------------------------------ */

START_TEST(test_ids_after_ingested)
{
    struct fix f;
    fix_open(&f);
    /* the journal's files are gone, the store ingested through 500 */
    set_ingested(f.s, 500);
    ck_assert_int_eq(ingested_of(&f, f.s), 500);
    ck_assert_int_ne(access(f.jdir, F_OK), 0);
    ck_assert_uint_eq(pending_of(&f, f.s), 0); /* no directory: nothing pending */
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, NULL), 0);
    struct journal *j = jopen(f.jdir, 500);
    struct stat st;
    mode_t um = umask(0);
    umask(um);
    ck_assert_int_eq(stat(f.jdir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0750 & ~um);
    ck_assert_int_eq(journal_next_id(j), 501);
    ck_assert(exists(f.jdir, 501));
    add_simple(&f, j, 501);
    add_simple(&f, j, 502);
    commit_ok(j);
    journal_close(j);
    ck_assert_uint_eq(pending_of(&f, f.s), 2);
    int64_t id = 0;
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 2);
    ck_assert_int_eq(id, 502);
    expect_qids(f.s, "Q501 Q502");
    fix_close(&f);

    /* files that are behind the store: ids go on after the store's */
    fix_open(&f);
    make_file(&f, 1, 3);
    set_ingested(f.s, 500);
    ck_assert_uint_eq(pending_of(&f, f.s), 0);
    j = jopen(f.jdir, 500);
    ck_assert_int_eq(journal_next_id(j), 501);
    add_simple(&f, j, 501);
    commit_ok(j);
    journal_close(j);
    ck_assert(!exists(f.jdir, 501));
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 1);
    ck_assert_int_eq(id, 501);
    expect_qids(f.s, "Q501");
    /* a store behind the files: ids go on after the files' */
    j = jopen(f.jdir, 2);
    ck_assert_int_eq(journal_next_id(j), 502);
    journal_close(j);
    fix_close(&f);

    /* an empty newest file: ids go on from its name */
    fix_open(&f);
    make_file(&f, 1, 3);
    char p[160];
    jpath(f.jdir, 40, p, sizeof p);
    append_raw(p, "", 0);
    j = jopen(f.jdir, 0);
    ck_assert_int_eq(journal_next_id(j), 40);
    add_simple(&f, j, 40);
    commit_ok(j);
    journal_close(j);
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, &id), 4);
    ck_assert_int_eq(id, 40);
    fix_close(&f);

    /* a directory that cannot be made */
    struct buf err;
    buf_init(&err);
    ck_assert_ptr_null(journal_open("/dev/null/journal", 0, false, &err));
    ck_assert_msg(strstr(err.data, "/dev/null/journal") != NULL, "%s", err.data);
    buf_free(&err);
}
END_TEST

/* --- 8. counter resets ------------------------------------------------------------ */

struct reqs_seen {
    size_t n;
    int64_t id[4];
    struct buf text[4]; /* "by|tenant|account|what|prefix,prefix|unit" */
};

static void reqs_seen_init(struct reqs_seen *r)
{
    r->n = 0;
    for (int i = 0; i < 4; i++)
        buf_init(&r->text[i]);
}

static void reqs_seen_free(struct reqs_seen *r)
{
    for (int i = 0; i < 4; i++)
        buf_free(&r->text[i]);
}

static void req_cb(const struct journal_reset_req *q, void *arg)
{
    struct reqs_seen *r = arg;
    ck_assert_uint_lt(r->n, 4);
    ck_assert_int_gt(q->time_us, 0);
    r->id[r->n] = q->id;
    struct buf *b = &r->text[r->n++];
    buf_reset(b);
    buf_printf(b, "%s|%s|%s|%s|", q->by, q->tenant, q->account, q->what);
    for (size_t i = 0; i < q->nprefixes; i++)
        buf_printf(b, "%s%s", i > 0 ? "," : "", q->prefixes[i]);
    buf_printf(b, "|%d", q->unit);
}

static void pending_reqs(struct fix *f, int64_t after, struct reqs_seen *r)
{
    r->n = 0;
    ck_assert_msg(journal_reset_pending(f->s, after, req_cb, r, &f->err), "journal_reset_pending: %s",
                  f->err.data);
}

static const int reset_units[] = { COUNTERS_CURRENT_WINDOWS, WIN_DAY };

START_TEST(test_counter_reset)
{
    int unit = reset_units[_i];
    struct fix f;
    fix_open(&f);
    time_t now_s = (time_t)(f.now / 1000000), dws, dwe, pws, pwe, hws, hwe;
    window_bounds(WIN_DAY, now_s, &dws, &dwe);
    window_bounds(WIN_DAY, dws - 1, &pws, &pwe); /* yesterday */
    window_bounds(WIN_HOUR, now_s, &hws, &hwe);
    char bob[] = "acme/acct/bob@acme.example/messages", alice[] = "acme/acct/alice@acme.example/messages",
         other[] = "other/x";

    /* posternctl queues two requests */
    char *pre1[] = { (char *)"acme/acct/bob@acme.example/", (char *)"other/" };
    char *pre2[] = { (char *)"acme/" };
    struct journal_reset_req q1 = { .by = (char *)"uid 0 (root)", .tenant = (char *)"acme",
                                    .account = (char *)"bob@acme.example",
                                    .what = (char *)"account bob@acme.example of tenant acme",
                                    .prefixes = pre1, .nprefixes = 2, .unit = unit };
    struct journal_reset_req q2 = { .by = (char *)"uid 1000 (ops)", .what = (char *)"everything",
                                    .prefixes = pre2, .nprefixes = 1, .unit = WIN_MONTH };
    int64_t id1 = 0, id2 = 0;
    ck_assert_msg(journal_reset_request(f.s, &q1, &id1, &f.err), "%s", f.err.data);
    ck_assert_msg(journal_reset_request(f.s, &q2, &id2, &f.err), "%s", f.err.data);
    ck_assert_int_gt(id1, 0);
    ck_assert_int_gt(id2, id1);

    struct reqs_seen seen;
    reqs_seen_init(&seen);
    char want1[256], want2[128];
    snprintf(want1, sizeof want1,
             "uid 0 (root)|acme|bob@acme.example|account bob@acme.example of tenant acme|"
             "acme/acct/bob@acme.example/,other/|%d",
             unit);
    snprintf(want2, sizeof want2, "uid 1000 (ops)|||everything|acme/|%d", WIN_MONTH);
    pending_reqs(&f, 0, &seen);
    ck_assert_uint_eq(seen.n, 2);
    ck_assert_int_eq(seen.id[0], id1);
    ck_assert_str_eq(seen.text[0].data, want1);
    ck_assert_int_eq(seen.id[1], id2);
    ck_assert_str_eq(seen.text[1].data, want2);
    pending_reqs(&f, id1, &seen);
    ck_assert_uint_eq(seen.n, 1);
    ck_assert_int_eq(seen.id[0], id2);
    pending_reqs(&f, id2, &seen);
    ck_assert_uint_eq(seen.n, 0);
    bool done = true;
    struct buf result;
    buf_init(&result);
    ck_assert_msg(journal_reset_status(f.s, id1, &done, &result, &f.err), "%s", f.err.data);
    ck_assert(!done);

    /* the daemon journals deltas, the reset (answering request 1), deltas */
    struct journal *j = jopen(f.jdir, 0);
    struct counter_delta before[] = {
        { bob, WIN_DAY, dws, dwe, 3 },   { bob, WIN_DAY, pws, pwe, 9 }, { bob, WIN_HOUR, hws, hwe, 4 },
        { alice, WIN_DAY, dws, dwe, 5 }, { other, WIN_DAY, dws, dwe, 7 },
    };
    struct counter_delta after[] = { { bob, WIN_DAY, dws, dwe, 2 }, { alice, WIN_DAY, dws, dwe, 1 },
                                     { bob, WIN_HOUR, hws, hwe, 1 } };
    struct audit_rec r1 = { .time_us = f.now - 2000000, .component = "policyd", .action = "DUNNO",
                            .queue_id = "before" };
    struct audit_rec r2 = { .time_us = f.now, .component = "policyd", .action = "reset",
                            .tenant = "acme", .account = "bob@acme.example", .queue_id = "reset",
                            .counters = "acme/acct/bob@acme.example/messages day=3" };
    struct audit_rec r3 = { .time_us = f.now + 1000000, .component = "policyd", .action = "DUNNO",
                            .queue_id = "after" };
    char result_text[160];
    snprintf(result_text, sizeof result_text, "%s day %lld %lld 3\n", bob, (long long)dws, (long long)dwe);
    struct journal_reset rs = { (const char *const *)pre1, 2, unit, id1, result_text };
    ck_assert_int_eq(journal_add(j, &r1, before, 5, NULL, &f.err), 1);
    ck_assert_int_eq(journal_add(j, &r2, NULL, 0, &rs, &f.err), 2);
    ck_assert_int_eq(journal_add(j, &r3, after, 3, NULL, &f.err), 3);
    commit_ok(j);
    journal_close(j);

    /* ingested one record at a time: each transaction sees the reset at its place */
    struct journal_cursor cur = { 0, 0, 0 };
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(ingest(&f, f.s, 1, &cur, NULL), 1);
    expect_qids(f.s, "before reset after");
    ck_assert_int_eq(row_value(f.s, bob, WIN_DAY, dws), 2);
    ck_assert_int_eq(row_value(f.s, alice, WIN_DAY, dws), 6);
    ck_assert_int_eq(row_value(f.s, other, WIN_DAY, dws), -1);
    if (unit == COUNTERS_CURRENT_WINDOWS) {
        ck_assert_int_eq(row_value(f.s, bob, WIN_DAY, pws), 9); /* a past window is kept */
        ck_assert_int_eq(row_value(f.s, bob, WIN_HOUR, hws), 1);
    } else {
        ck_assert_int_eq(row_value(f.s, bob, WIN_DAY, pws), -1); /* every day window */
        ck_assert_int_eq(row_value(f.s, bob, WIN_HOUR, hws), 5);  /* not the hours */
    }
    ck_assert_uint_eq(counter_at(&f, f.s, bob, WIN_DAY), 2);

    /* request 1 is done with the reset's result, request 2 is still pending */
    ck_assert_msg(journal_reset_status(f.s, id1, &done, &result, &f.err), "%s", f.err.data);
    ck_assert(done);
    ck_assert_str_eq(result.data, result_text);
    ck_assert(journal_reset_status(f.s, id2, &done, &result, &f.err));
    ck_assert(!done);
    pending_reqs(&f, 0, &seen);
    ck_assert_uint_eq(seen.n, 1);
    ck_assert_int_eq(seen.id[0], id2);
    ck_assert_str_eq(seen.text[0].data, want2);

    /* an unknown request */
    buf_reset(&f.err);
    ck_assert(!journal_reset_status(f.s, id2 + 1000, &done, &result, &f.err));
    ck_assert_msg(strstr(f.err.data, "no counter reset request") != NULL, "%s", f.err.data);

    /* a reset with no request and no result; request 2 answered with an empty result */
    j = jopen(f.jdir, 3);
    struct journal_reset none = { (const char *const *)pre2, 1, COUNTERS_CURRENT_WINDOWS, 0, NULL };
    struct journal_reset ans2 = { (const char *const *)pre2, 1, WIN_MONTH, id2, NULL };
    struct audit_rec r4 = { .time_us = f.now, .component = "policyd", .action = "reset" };
    ck_assert_int_eq(journal_add(j, &r4, NULL, 0, &none, &f.err), 4);
    ck_assert_int_eq(journal_add(j, &r4, NULL, 0, &ans2, &f.err), 5);
    commit_ok(j);
    journal_close(j);
    ck_assert_uint_eq(ingest(&f, f.s, 0, &cur, NULL), 2);
    ck_assert_int_eq(row_value(f.s, bob, WIN_DAY, dws), -1);
    ck_assert_int_eq(row_value(f.s, alice, WIN_DAY, dws), -1);
    ck_assert(journal_reset_status(f.s, id2, &done, &result, &f.err));
    ck_assert(done);
    ck_assert_str_eq(result.data, "");
    pending_reqs(&f, 0, &seen);
    ck_assert_uint_eq(seen.n, 0);

    buf_free(&result);
    reqs_seen_free(&seen);
    fix_close(&f);
}
END_TEST

/* --- 9. pending records ------------------------------------------------------------- */

START_TEST(test_pending)
{
    struct fix f;
    fix_open(&f);
    ck_assert_uint_eq(pending_of(&f, f.s), 0);
    struct journal *j = jopen(f.jdir, 0);
    ck_assert_uint_eq(pending_of(&f, f.s), 0);
    for (int64_t i = 1; i <= 5; i++)
        add_simple(&f, j, i);
    ck_assert_uint_eq(pending_of(&f, f.s), 0); /* a batch not committed is not there */
    commit_ok(j);
    ck_assert_uint_eq(pending_of(&f, f.s), 5);
    ck_assert_uint_eq(ingest(&f, f.s, 2, NULL, NULL), 2);
    ck_assert_uint_eq(pending_of(&f, f.s), 3);
    add_simple(&f, j, 6);
    commit_ok(j);
    ck_assert_uint_eq(pending_of(&f, f.s), 4);
    ck_assert_uint_eq(ingest(&f, f.s, 0, NULL, NULL), 4);
    ck_assert_uint_eq(pending_of(&f, f.s), 0);
    journal_close(j);

    /* across files */
    fix_close(&f);
    fix_open(&f);
    make_three_files(&f);
    ck_assert_uint_eq(pending_of(&f, f.s), 9);
    set_ingested(f.s, 5);
    ck_assert_uint_eq(pending_of(&f, f.s), 4);
    set_ingested(f.s, 9);
    ck_assert_uint_eq(pending_of(&f, f.s), 0);
    fix_close(&f);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_round_trip);
    tcase_add_loop_test(tc, test_ingest_chunks, 0, sizeof chunk_sizes / sizeof chunk_sizes[0]);
    tcase_add_test(tc, test_cursor_reads_on);
    tcase_add_test(tc, test_rollback);
    tcase_add_test(tc, test_oversized_record);
    tcase_add_loop_test(tc, test_torn_tail, 0, sizeof tail_names / sizeof tail_names[0]);
    tcase_add_loop_test(tc, test_damaged_older_file, 0, sizeof damage_cases / sizeof damage_cases[0]);
    tcase_add_test(tc, test_trim);
    tcase_add_test(tc, test_ids_after_ingested);
    tcase_add_loop_test(tc, test_counter_reset, 0, sizeof reset_units / sizeof reset_units[0]);
    tcase_add_test(tc, test_pending);
}

UNIT_MAIN("journal", add_tests)
