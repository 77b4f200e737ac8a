/* journal.c: the decision journal of postern-policyd (append-only files
 * of checksummed records) and its ingestion into the store; see
 * journal.h for why and how. */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "log.h"
#include "ptime.h"

#define JR_MAGIC "PJR1"
#define JR_HEADER 12u                /* magic, payload length, CRC-32 */
#define JR_MAX_PAYLOAD (16u << 20)   /* a longer length is corruption */
#define JR_NULL 0xFFFFFFFFu          /* string length of a NULL field */
#define JR_SUFFIX ".pj"
#define JR_READ_CHUNK (256u << 10)
/* Rows of windows that ended this long ago are deleted from the store's
 * counters table at ingestion (as counters_sqlite does). */
#define JR_COUNTERS_KEEP_S 86400

enum jr_kind { JR_DECISION = 0, JR_RESET = 1 };

/* The 14 string fields of an audit record, in AUDIT_COLUMNS order after
 * time_us (recipients joined with '\n'). */
#define JR_NSTR 14

/* --- encoding ----------------------------------------------------------------- */

static void jr_put_u32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    buf_add(b, (const char *)x, 4);
}

static void jr_put_u64(struct buf *b, uint64_t v)
{
    jr_put_u32(b, (uint32_t)v);
    jr_put_u32(b, (uint32_t)(v >> 32));
}

static void jr_put_str(struct buf *b, const char *s)
{
    if (s == NULL || s[0] == '\0') {
        jr_put_u32(b, JR_NULL);
        return;
    }
    size_t n = strlen(s);
    jr_put_u32(b, (uint32_t)n);
    buf_add(b, s, n);
}

static void jr_put_u32_at(struct buf *b, size_t at, uint32_t v)
{
    unsigned char *p = (unsigned char *)b->data + at;
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void jr_join(const char *const *v, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_putc(out, '\n');
        buf_puts(out, v[i]);
    }
}

/* Append one record to b. */
static void jr_encode(struct buf *b, int64_t id, const struct audit_rec *r, const struct counter_delta *deltas,
                      size_t n, const struct journal_reset *reset)
{
    size_t start = b->len;
    buf_add(b, JR_MAGIC, 4);
    jr_put_u32(b, 0); /* length and CRC, filled below */
    jr_put_u32(b, 0);
    struct buf rcpts;
    buf_init(&rcpts);
    audit_join(r, '\n', &rcpts);
    jr_put_u64(b, (uint64_t)id);
    jr_put_u64(b, (uint64_t)r->time_us);
    jr_put_u64(b, (uint64_t)r->latency_us);
    buf_putc(b, reset != NULL ? JR_RESET : JR_DECISION);
    const char *text[JR_NSTR] = { r->component, r->tenant, r->account, r->client_ip, r->sasl_login,
                                  r->sender, rcpts.data, r->queue_id, r->instance, r->stage,
                                  r->action, r->reason, r->rule, r->counters };
    for (int i = 0; i < JR_NSTR; i++)
        jr_put_str(b, text[i]);
    buf_free(&rcpts);
    if (reset != NULL) {
        struct buf prefixes;
        buf_init(&prefixes);
        jr_join(reset->prefixes, reset->n, &prefixes);
        jr_put_u32(b, (uint32_t)reset->unit);
        jr_put_u64(b, (uint64_t)reset->req_id);
        jr_put_str(b, prefixes.data);
        jr_put_str(b, reset->result);
        buf_free(&prefixes);
    }
    jr_put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        jr_put_str(b, deltas[i].key);
        buf_putc(b, (char)deltas[i].unit);
        jr_put_u64(b, (uint64_t)deltas[i].window_start);
        jr_put_u64(b, (uint64_t)deltas[i].window_end);
        jr_put_u64(b, deltas[i].add);
    }
    size_t len = b->len - start - JR_HEADER;
    jr_put_u32_at(b, start + 4, (uint32_t)len);
    jr_put_u32_at(b, start + 8,
                  (uint32_t)crc32(0L, (const Bytef *)b->data + start + JR_HEADER, (uInt)len));
}

/* --- decoding ----------------------------------------------------------------- */

struct jr_reader {
    const unsigned char *p, *end;
    bool ok;
};

static uint32_t jr_u32(struct jr_reader *r)
{
    if (!r->ok || r->end - r->p < 4) {
        r->ok = false;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}

static uint64_t jr_u64(struct jr_reader *r)
{
    uint64_t lo = jr_u32(r);
    return lo | (uint64_t)jr_u32(r) << 32;
}

static unsigned char jr_u8(struct jr_reader *r)
{
    if (!r->ok || r->p >= r->end) {
        r->ok = false;
        return 0;
    }
    return *r->p++;
}

/* A string field: pointer into the record and length; NULL for a NULL. */
struct jr_str {
    const char *s;
    size_t n;
};

static struct jr_str jr_str(struct jr_reader *r)
{
    struct jr_str v = { NULL, 0 };
    uint32_t n = jr_u32(r);
    if (!r->ok || n == JR_NULL)
        return v;
    if ((size_t)(r->end - r->p) < n) {
        r->ok = false;
        return v;
    }
    v.s = (const char *)r->p;
    v.n = n;
    r->p += n;
    return v;
}

struct jr_delta {
    struct jr_str key;
    int unit;
    int64_t window_start, window_end;
    uint64_t add;
};

/* A decoded record; strings point into the payload (not NUL-terminated). */
struct jr_record {
    int64_t id, time_us, latency_us;
    int kind;
    struct jr_str text[JR_NSTR];
    int reset_unit;
    int64_t reset_req_id;
    struct jr_str reset_prefixes;
    struct jr_str reset_result;
    struct jr_delta *deltas;    /* owned: freed by jr_record_free() */
    size_t ndeltas;
};

static void jr_record_free(struct jr_record *rec)
{
    mem_free(rec->deltas);
    rec->deltas = NULL;
}

static bool jr_decode(const unsigned char *payload, size_t len, struct jr_record *rec)
{
    struct jr_reader r = { payload, payload + len, true };
    memset(rec, 0, sizeof *rec);
    rec->id = (int64_t)jr_u64(&r);
    rec->time_us = (int64_t)jr_u64(&r);
    rec->latency_us = (int64_t)jr_u64(&r);
    rec->kind = jr_u8(&r);
    for (int i = 0; i < JR_NSTR; i++)
        rec->text[i] = jr_str(&r);
    if (rec->kind == JR_RESET) {
        rec->reset_unit = (int)(int32_t)jr_u32(&r);
        rec->reset_req_id = (int64_t)jr_u64(&r);
        rec->reset_prefixes = jr_str(&r);
        rec->reset_result = jr_str(&r);
    } else if (rec->kind != JR_DECISION) {
        return false;
    }
    uint32_t n = jr_u32(&r);
    /* each delta takes at least 29 bytes: a corrupt count cannot allocate much */
    if (!r.ok || n > (size_t)(r.end - r.p) / 29)
        return false;
    rec->deltas = n ? mem_alloc(n * sizeof *rec->deltas) : NULL;
    rec->ndeltas = n;
    for (uint32_t i = 0; i < n; i++) {
        struct jr_delta *d = &rec->deltas[i];
        d->key = jr_str(&r);
        d->unit = jr_u8(&r);
        d->window_start = (int64_t)jr_u64(&r);
        d->window_end = (int64_t)jr_u64(&r);
        d->add = jr_u64(&r);
        if (d->key.s == NULL || d->unit >= WIN_COUNT)
            r.ok = false;
    }
    if (!r.ok || r.p != r.end || rec->id <= 0) {
        jr_record_free(rec);
        return false;
    }
    return true;
}

enum jr_frame { JR_FRAME_OK, JR_FRAME_SHORT, JR_FRAME_BAD };

/* The record framed at p[0..avail): its payload and total size. */
static enum jr_frame jr_frame(const unsigned char *p, size_t avail, const unsigned char **payload, size_t *len,
                              size_t *total)
{
    if (avail < JR_HEADER)
        return memcmp(p, JR_MAGIC, avail < 4 ? avail : 4) == 0 ? JR_FRAME_SHORT : JR_FRAME_BAD;
    if (memcmp(p, JR_MAGIC, 4) != 0)
        return JR_FRAME_BAD;
    uint32_t n = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    uint32_t crc = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
    if (n > JR_MAX_PAYLOAD)
        return JR_FRAME_BAD;
    if (avail - JR_HEADER < n)
        return JR_FRAME_SHORT;
    if ((uint32_t)crc32(0L, (const Bytef *)p + JR_HEADER, (uInt)n) != crc)
        return JR_FRAME_BAD;
    *payload = p + JR_HEADER;
    *len = n;
    *total = JR_HEADER + n;
    return JR_FRAME_OK;
}

/* --- the directory ------------------------------------------------------------- */

struct jr_files {
    int64_t *first;             /* first ids, ascending */
    size_t n;
};

static bool jr_name_first(const char *name, int64_t *first)
{
    if (strlen(name) != 16 + strlen(JR_SUFFIX) || strcmp(name + 16, JR_SUFFIX) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | d;
    }
    *first = v;
    return v > 0;
}

static int jr_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The journal files of dir, by first id.  A missing dir has none. */
static bool jr_list(const char *dir, struct jr_files *f, struct buf *err)
{
    f->first = NULL;
    f->n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return true;
        buf_reset(err);
        buf_printf(err, "%s: %s", dir, strerror(errno));
        return false;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t first;
        if (!jr_name_first(e->d_name, &first))
            continue;
        if (f->n == cap) {
            cap = cap ? cap * 2 : 8;
            f->first = mem_grow(f->first, cap, sizeof *f->first);
        }
        f->first[f->n++] = first;
    }
    closedir(d);
    if (f->n > 1)
        qsort(f->first, f->n, sizeof *f->first, jr_cmp_i64);
    return true;
}

static void jr_path(const char *dir, int64_t first, struct buf *out)
{
    buf_reset(out);
    buf_printf(out, "%s/%016" PRIx64 JR_SUFFIX, dir, (uint64_t)first);
}

/* A file read record by record through a bounded buffer. */
struct jr_stream {
    int fd;
    int64_t pos;                /* file offset of buf.data[0] */
    struct buf buf;
    size_t at;                  /* the next record starts at buf.data[at] */
    bool eof;
};

static bool jr_stream_open(struct jr_stream *st, const char *path, int64_t offset, struct buf *err)
{
    memset(st, 0, sizeof *st);
    buf_init(&st->buf);
    st->pos = offset;
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st->fd < 0) {
        buf_reset(err);
        buf_printf(err, "%s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

static void jr_stream_close(struct jr_stream *st)
{
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
    buf_free(&st->buf);
}

/* The file offset of the next record. */
static int64_t jr_stream_offset(const struct jr_stream *st)
{
    return st->pos + (int64_t)st->at;
}

/* Frame the next record, reading more of the file as needed.  JR_FRAME_OK:
 * *payload, *len and *total set (call jr_stream_skip(total) after use);
 * JR_FRAME_SHORT: the file ends (inside a record when bytes are left:
 * *partial); JR_FRAME_BAD: damaged.  False with err on a read error. */
static bool jr_stream_next(struct jr_stream *st, const char *path, enum jr_frame *fr, const unsigned char **payload,
                           size_t *len, size_t *total, bool *partial, struct buf *err)
{
    for (;;) {
        size_t avail = st->buf.len - st->at;
        *fr = avail > 0 ? jr_frame((const unsigned char *)st->buf.data + st->at, avail, payload, len, total)
                        : JR_FRAME_SHORT;
        *partial = avail > 0;
        if (*fr != JR_FRAME_SHORT || st->eof)
            return true;
        /* drop what was used, read the next chunk */
        memmove(st->buf.data, st->buf.data + st->at, avail);
        st->pos += (int64_t)st->at;
        st->buf.len = avail;
        st->at = 0;
        buf_reserve(&st->buf, JR_READ_CHUNK);
        ssize_t got = pread(st->fd, st->buf.data + st->buf.len, JR_READ_CHUNK, (off_t)(st->pos + (int64_t)avail));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            buf_reset(err);
            buf_printf(err, "%s: reading: %s", path, strerror(errno));
            return false;
        }
        st->buf.len += (size_t)got;
        st->buf.data[st->buf.len] = '\0';
        st->eof = got == 0;
    }
}

/* --- the writer ------------------------------------------------------------------- */

struct journal {
    char *dir;
    int fd;                     /* the file being written, O_APPEND */
    int64_t file_first;         /* its first id */
    off_t size;                 /* its committed size */
    int64_t next_id;            /* the next committed record's id */
    int64_t batch_next;         /* the next id given in the batch */
    struct buf batch;           /* the batch's encoded records */
    bool sync;
    bool old_files;             /* files other than the current one may exist */
};

const char *journal_dir(const struct journal *j)
{
    return j->dir;
}

int64_t journal_next_id(const struct journal *j)
{
    return j->next_id;
}

static bool jr_sync_dir(const char *dir, struct buf *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        buf_reset(err);
        buf_printf(err, "%s: syncing the directory: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    close(fd);
    return true;
}

/* Begin file <first>.pj and make it the current one. */
static bool jr_new_file(struct journal *j, int64_t first, struct buf *err)
{
    struct buf path;
    buf_init(&path);
    jr_path(j->dir, first, &path);
    int fd = open(path.data, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        buf_reset(err);
        buf_printf(err, "%s: %s", path.data, strerror(errno));
        buf_free(&path);
        return false;
    }
    buf_free(&path);
    if (j->sync && !jr_sync_dir(j->dir, err)) {
        close(fd);
        return false;
    }
    if (j->fd >= 0) {
        close(j->fd);
        j->old_files = true;
    }
    j->fd = fd;
    j->file_first = first;
    j->size = 0;
    return true;
}

/* Open the newest file for appending: check its records, cut off an
 * unfinished one at its end, find its last id. */
static bool jr_open_newest(struct journal *j, int64_t first, int64_t *last, struct buf *err)
{
    struct buf path;
    struct jr_stream st;
    buf_init(&path);
    jr_path(j->dir, first, &path);
    bool ok = jr_stream_open(&st, path.data, 0, err);
    *last = 0;
    bool partial = false;
    while (ok) {
        enum jr_frame fr;
        const unsigned char *payload;
        size_t len, total;
        if (!(ok = jr_stream_next(&st, path.data, &fr, &payload, &len, &total, &partial, err)))
            break;
        struct jr_record rec;
        if (fr != JR_FRAME_OK || !jr_decode(payload, len, &rec)) {
            partial = partial || fr == JR_FRAME_OK;
            break;
        }
        *last = rec.id;
        jr_record_free(&rec);
        st.at += total;
    }
    int64_t good = jr_stream_offset(&st);
    jr_stream_close(&st);
    int fd = -1;
    if (ok) {
        fd = open(path.data, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0) {
            buf_reset(err);
            buf_printf(err, "%s: %s", path.data, strerror(errno));
            ok = false;
        }
    }
    struct stat sb;
    if (ok && partial && fstat(fd, &sb) == 0 && sb.st_size > good) {
        log_msg(LOG_LVL_WARN, "journal_repair",
                "file=%s offset=%lld bytes=%lld note=\"an unfinished record at the end was cut off "
                "(a crash during a write: its batch was never answered)\"",
                path.data, (long long)good, (long long)(sb.st_size - good));
        if (ftruncate(fd, (off_t)good) != 0) {
            buf_reset(err);
            buf_printf(err, "%s: cutting off an unfinished record: %s", path.data, strerror(errno));
            ok = false;
        }
    }
    if (ok) {
        j->fd = fd;
        j->file_first = first;
        j->size = (off_t)good;
    } else if (fd >= 0) {
        close(fd);
    }
    buf_free(&path);
    return ok;
}

struct journal *journal_open(const char *dir, int64_t ingested, bool sync, struct buf *err)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        buf_reset(err);
        buf_printf(err, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    struct journal *j = mem_alloc(sizeof *j);
    j->dir = mem_strdup(dir);
    j->fd = -1;
    j->sync = sync;
    buf_init(&j->batch);
    struct jr_files f;
    int64_t last = 0;
    bool ok = jr_list(dir, &f, err);
    if (ok && f.n > 0)
        ok = jr_open_newest(j, f.first[f.n - 1], &last, err);
    if (ok) {
        if (f.n > 0 && last < f.first[f.n - 1] - 1)
            last = f.first[f.n - 1] - 1; /* an empty newest file: ids go on from its name */
        j->next_id = (last > ingested ? last : ingested) + 1;
        j->batch_next = j->next_id;
        j->old_files = f.n > 1;
        if (f.n == 0)
            ok = jr_new_file(j, j->next_id, err);
    }
    mem_free(f.first);
    if (!ok) {
        journal_close(j);
        return NULL;
    }
    return j;
}

void journal_close(struct journal *j)
{
    if (j == NULL)
        return;
    if (j->fd >= 0)
        close(j->fd);
    buf_free(&j->batch);
    mem_free(j->dir);
    mem_free(j);
}

int64_t journal_add(struct journal *j, const struct audit_rec *rec, const struct counter_delta *deltas, size_t n,
                    const struct journal_reset *reset, struct buf *err)
{
    struct audit_rec r = *rec;
    if (r.time_us == 0) {
        struct clock sys = clock_system();
        r.time_us = clock_now_us(&sys);
    }
    if (r.component == NULL || r.component[0] == '\0' || r.action == NULL || r.action[0] == '\0') {
        buf_reset(err);
        buf_printf(err, "%s: audit record without component or action", j->dir);
        audit_log(&r, err->data);
        return 0;
    }
    int64_t id = j->batch_next;
    size_t start = j->batch.len;
    jr_encode(&j->batch, id, &r, deltas, n, reset);
    size_t len = j->batch.len - start - JR_HEADER;
    if (len > JR_MAX_PAYLOAD) {
        /* readers would take it for damage, and the writer would cut it
         * off with every record after it: refused */
        j->batch.len = start;
        j->batch.data[start] = '\0';
        buf_reset(err);
        buf_printf(err, "%s: a journal record of %zu bytes, over the limit of %u", j->dir, len, JR_MAX_PAYLOAD);
        audit_log(&r, err->data);
        return 0;
    }
    j->batch_next++;
    audit_log(&r, NULL);
    return id;
}

void journal_rollback(struct journal *j)
{
    buf_reset(&j->batch);
    j->batch_next = j->next_id;
}

bool journal_commit(struct journal *j, struct buf *err)
{
    if (j->batch.len == 0)
        return true;
    if (j->size >= (off_t)JOURNAL_ROTATE_BYTES && !jr_new_file(j, j->next_id, err)) {
        journal_rollback(j);
        return false;
    }
    const char *p = j->batch.data;
    size_t left = j->batch.len;
    while (left > 0) {
        ssize_t w = write(j->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            buf_reset(err);
            buf_printf(err, "%s: writing the journal: %s", j->dir, strerror(e));
            if (ftruncate(j->fd, j->size) != 0)
                buf_printf(err, " (and cutting back the partial write failed: %s)", strerror(errno));
            journal_rollback(j);
            return false;
        }
        p += w;
        left -= (size_t)w;
    }
    if (j->sync && fdatasync(j->fd) != 0) {
        buf_reset(err);
        buf_printf(err, "%s: fdatasync of the journal: %s", j->dir, strerror(errno));
        if (ftruncate(j->fd, j->size) != 0)
            buf_printf(err, " (and cutting back the write failed: %s)", strerror(errno));
        journal_rollback(j);
        return false;
    }
    j->size += (off_t)j->batch.len;
    j->next_id = j->batch_next;
    buf_reset(&j->batch);
    return true;
}

bool journal_trim(struct journal *j, int64_t ingested, struct buf *err)
{
    if (!j->old_files)
        return true;
    struct jr_files f;
    if (!jr_list(j->dir, &f, err))
        return false;
    bool ok = true;
    size_t kept = 0;
    struct buf path;
    buf_init(&path);
    for (size_t i = 0; i < f.n; i++) {
        /* every record of file i is below the next file's first id */
        bool done = f.first[i] != j->file_first && i + 1 < f.n && f.first[i + 1] <= ingested + 1;
        if (!done) {
            kept++;
            continue;
        }
        jr_path(j->dir, f.first[i], &path);
        if (unlink(path.data) != 0 && errno != ENOENT) {
            buf_reset(err);
            buf_printf(err, "%s: %s", path.data, strerror(errno));
            ok = false;
            kept++;
        }
    }
    buf_free(&path);
    mem_free(f.first);
    j->old_files = kept > 1;
    return ok;
}

/* --- ingestion ------------------------------------------------------------------ */

bool journal_ingested(struct store *s, int64_t *ingested, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT journal_id FROM ingest_state", err);
    if (st == NULL)
        return false;
    enum store_step r = store_step(s, st, "reading the ingested journal id", err);
    *ingested = r == STORE_ROW ? sqlite3_column_int64(st, 0) : 0;
    store_stmt_done(st);
    return r != STORE_FAIL;
}

static void jr_bind_str(sqlite3_stmt *st, int i, struct jr_str v)
{
    if (v.s != NULL && v.n > 0)
        sqlite3_bind_text(st, i, v.s, (int)v.n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static bool jr_step_done(struct store *s, sqlite3_stmt *st, const char *what, struct buf *err)
{
    bool ok = store_step(s, st, what, err) == STORE_DONE;
    store_stmt_done(st);
    return ok;
}

/* A NUL-terminated copy of v into the arena-like list (freed by caller). */
static char *jr_strdup(struct jr_str v)
{
    return v.s != NULL ? mem_strndup(v.s, v.n) : mem_strdup("");
}

static bool jr_apply_reset(struct store *s, const struct jr_record *rec, struct buf *err)
{
    char *joined = jr_strdup(rec->reset_prefixes);
    char **prefixes = NULL;
    size_t n = 0;
    if (joined[0] != '\0') {
        size_t cap = 1;
        for (const char *p = joined; *p; p++)
            cap += *p == '\n';
        prefixes = mem_alloc(cap * sizeof *prefixes);
        for (char *p = joined;;) {
            prefixes[n++] = p;
            char *nl = strchr(p, '\n');
            if (nl == NULL)
                break;
            *nl = '\0';
            p = nl + 1;
        }
    }
    int64_t t = rec->time_us;
    struct counters *c = counters_sqlite_open(s, clock_fixed(&t));
    size_t count = 0;
    bool ok = n == 0 || counters_reset(c, (const char *const *)prefixes, n, rec->reset_unit, NULL, NULL, &count, err);
    counters_close(c);
    mem_free(prefixes);
    mem_free(joined);
    if (ok && rec->reset_req_id > 0) {
        sqlite3_stmt *st = store_stmt(s, "UPDATE reset_request SET done_jid = ?2, result = ?3 WHERE id = ?1", err);
        if (st == NULL)
            return false;
        sqlite3_bind_int64(st, 1, rec->reset_req_id);
        sqlite3_bind_int64(st, 2, rec->id);
        struct jr_str result = rec->reset_result;
        if (result.s != NULL)
            sqlite3_bind_text(st, 3, result.s, (int)result.n, SQLITE_STATIC);
        else
            sqlite3_bind_text(st, 3, "", 0, SQLITE_STATIC);
        ok = jr_step_done(s, st, "marking a counter reset done", err);
    }
    return ok;
}

static bool jr_apply(struct store *s, const struct jr_record *rec, struct buf *err)
{
    for (size_t i = 0; i < rec->ndeltas; i++) {
        const struct jr_delta *d = &rec->deltas[i];
        sqlite3_stmt *st = store_stmt(s,
                                      "INSERT INTO counters (key, unit, window_start, window_end, value) "
                                      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key, unit, window_start) "
                                      "DO UPDATE SET value = value + excluded.value, window_end = excluded.window_end",
                                      err);
        if (st == NULL)
            return false;
        sqlite3_bind_text(st, 1, d->key.s, (int)d->key.n, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, window_unit_name((enum window_unit)d->unit), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, d->window_start);
        sqlite3_bind_int64(st, 4, d->window_end);
        sqlite3_bind_int64(st, 5, (int64_t)d->add);
        if (!jr_step_done(s, st, "adding a journaled counter delta", err))
            return false;
    }
    if (rec->kind == JR_RESET && !jr_apply_reset(s, rec, err))
        return false;
    sqlite3_stmt *st = store_stmt(s,
                                  "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES "
                                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                                  err);
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, rec->time_us);
    for (int i = 0; i < JR_NSTR; i++)
        jr_bind_str(st, i + 2, rec->text[i]);
    sqlite3_bind_int64(st, 16, rec->latency_us);
    return jr_step_done(s, st, "writing a journaled audit record", err);
}

/* What a scan of the journal does with each record after the mark. */
struct jr_scan {
    struct store *s;            /* NULL: count only */
    int64_t mark;
    size_t max;                 /* 0: no cap */
    size_t n;                   /* records taken */
    int64_t last;               /* id of the last record taken */
    int64_t stop_file;          /* where the scan stopped: file, offset, next id */
    int64_t stop_offset;
};

/* Scan file `first` (the newest when newest) from offset; false with err
 * on a store failure; *full when the cap was reached. */
static bool jr_scan_file(const char *dir, int64_t first, int64_t offset, bool newest, struct jr_scan *x,
                         bool *full, struct buf *err)
{
    struct buf path;
    struct jr_stream st;
    buf_init(&path);
    jr_path(dir, first, &path);
    *full = false;
    bool ok = jr_stream_open(&st, path.data, offset, err);
    if (!ok && errno == ENOENT) {
        buf_free(&path);
        x->stop_file = first;
        x->stop_offset = offset;
        return true; /* trimmed meanwhile: it was ingested */
    }
    bool partial;
    while (ok) {
        enum jr_frame fr;
        const unsigned char *payload;
        size_t len, total;
        if (!(ok = jr_stream_next(&st, path.data, &fr, &payload, &len, &total, &partial, err)))
            break;
        struct jr_record rec;
        if (fr == JR_FRAME_OK && !jr_decode(payload, len, &rec))
            fr = JR_FRAME_BAD;
        if (fr != JR_FRAME_OK) {
            if (!newest && (fr == JR_FRAME_BAD || partial))
                log_msg(LOG_LVL_ERR, "journal_corrupt",
                        "file=%s offset=%lld note=\"a damaged record: the rest of this file is skipped\"",
                        path.data, (long long)jr_stream_offset(&st));
            break; /* in the newest file: a write in progress, read again later */
        }
        if (rec.id > x->mark) {
            if (x->max > 0 && x->n >= x->max) {
                jr_record_free(&rec);
                *full = true;
                break;
            }
            if (x->s != NULL && !jr_apply(x->s, &rec, err))
                ok = false;
            x->n++;
            x->last = rec.id;
        }
        jr_record_free(&rec);
        st.at += total;
    }
    x->stop_file = first;
    x->stop_offset = jr_stream_offset(&st);
    jr_stream_close(&st);
    buf_free(&path);
    return ok;
}

/* Visit the records after x->mark, in id order. */
static bool jr_scan(const char *dir, struct journal_cursor *cur, struct jr_scan *x, struct buf *err)
{
    struct jr_files f;
    if (!jr_list(dir, &f, err))
        return false;
    /* the file holding mark + 1: the last one whose first id is <= it */
    size_t i = 0;
    while (i + 1 < f.n && f.first[i + 1] <= x->mark + 1)
        i++;
    bool ok = true, full = false;
    for (; ok && !full && i < f.n; i++) {
        int64_t offset = 0;
        if (cur != NULL && cur->file_first == f.first[i] && cur->next_id == x->mark + 1)
            offset = cur->offset;
        ok = jr_scan_file(dir, f.first[i], offset, i + 1 == f.n, x, &full, err);
        if (ok && cur != NULL) {
            cur->file_first = x->stop_file;
            cur->offset = x->stop_offset;
            cur->next_id = (x->n > 0 ? x->last : x->mark) + 1;
        }
    }
    mem_free(f.first);
    return ok;
}

bool journal_ingest(struct store *s, const char *dir, size_t max_rows, struct journal_cursor *cur,
                    int64_t *ingested, size_t *n, struct buf *err)
{
    struct jr_scan x = { .s = s, .max = max_rows };
    if (!store_batch_begin(s, err))
        return false;
    struct journal_cursor tried = { 0, 0, 0 };
    if (cur != NULL)
        tried = *cur;
    bool ok = journal_ingested(s, &x.mark, err) && jr_scan(dir, cur != NULL ? &tried : NULL, &x, err);
    if (ok && x.n > 0) {
        struct clock sys = clock_system();
        int64_t now_s = clock_now_us(&sys) / 1000000;
        sqlite3_stmt *st = store_stmt(s, "UPDATE ingest_state SET journal_id = ?1", err);
        ok = st != NULL;
        if (ok) {
            sqlite3_bind_int64(st, 1, x.last);
            ok = jr_step_done(s, st, "recording the ingested journal id", err);
        }
        st = ok ? store_stmt(s, "DELETE FROM counters WHERE window_end < ?1", err) : NULL;
        ok = st != NULL;
        if (ok) {
            sqlite3_bind_int64(st, 1, now_s - JR_COUNTERS_KEEP_S);
            ok = jr_step_done(s, st, "deleting old counter windows", err);
        }
    }
    if (!ok) {
        store_batch_rollback(s);
        return false;
    }
    if (x.n == 0)
        store_batch_rollback(s); /* nothing to write */
    else if (!store_batch_commit(s, err))
        return false;
    if (cur != NULL)
        *cur = tried;
    if (ingested != NULL)
        *ingested = x.n > 0 ? x.last : x.mark;
    if (n != NULL)
        *n = x.n;
    return true;
}

bool journal_pending(struct store *s, const char *dir, size_t *n, struct buf *err)
{
    struct jr_scan x = { .s = NULL };
    if (!journal_ingested(s, &x.mark, err) || !jr_scan(dir, NULL, &x, err))
        return false;
    *n = x.n;
    return true;
}

/* --- counter reset requests ------------------------------------------------------- */

void journal_reset_req_free(struct journal_reset_req *r)
{
    for (size_t i = 0; i < r->nprefixes; i++)
        mem_free(r->prefixes[i]);
    mem_free(r->prefixes);
    mem_free(r->by);
    mem_free(r->tenant);
    mem_free(r->account);
    mem_free(r->what);
    memset(r, 0, sizeof *r);
}

bool journal_reset_request(struct store *s, const struct journal_reset_req *r, int64_t *req_id, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s,
                                  "INSERT INTO reset_request (time_us, requested_by, tenant, account, what, prefixes, unit) "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                                  err);
    if (st == NULL)
        return false;
    struct buf joined;
    buf_init(&joined);
    jr_join((const char *const *)r->prefixes, r->nprefixes, &joined);
    struct clock sys = clock_system();
    sqlite3_bind_int64(st, 1, clock_now_us(&sys));
    sqlite3_bind_text(st, 2, r->by != NULL ? r->by : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->tenant != NULL ? r->tenant : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->account != NULL ? r->account : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->what != NULL ? r->what : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, joined.data, (int)joined.len, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, r->unit);
    bool ok = store_step(s, st, "queueing a counter reset", err) == STORE_ROW;
    if (ok)
        *req_id = sqlite3_column_int64(st, 0);
    /* run to the end: the INSERT is complete only then */
    if (ok && store_step(s, st, "queueing a counter reset", err) == STORE_FAIL)
        ok = false;
    store_stmt_done(st);
    buf_free(&joined);
    return ok;
}

static void jr_split(const char *text, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (text == NULL || text[0] == '\0')
        return;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == '\n';
    *out = mem_alloc(cap * sizeof **out);
    for (const char *start = text;;) {
        const char *nl = strchr(start, '\n');
        size_t len = nl != NULL ? (size_t)(nl - start) : strlen(start);
        (*out)[(*n)++] = mem_strndup(start, len);
        if (nl == NULL)
            break;
        start = nl + 1;
    }
}

bool journal_reset_pending(struct store *s, int64_t after, journal_reset_cb cb, void *arg, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s,
                                  "SELECT id, time_us, requested_by, prefixes, unit, tenant, account, what "
                                  "FROM reset_request "
                                  "WHERE done_jid IS NULL AND id > ?1 ORDER BY id",
                                  err);
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, after);
    struct journal_reset_req *v = NULL;
    size_t n = 0, cap = 0;
    enum store_step r;
    while ((r = store_step(s, st, "reading the counter reset requests", err)) == STORE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            v = mem_grow(v, cap, sizeof *v);
        }
        struct journal_reset_req *q = &v[n++];
        memset(q, 0, sizeof *q);
        q->id = sqlite3_column_int64(st, 0);
        q->time_us = sqlite3_column_int64(st, 1);
        const char *by = (const char *)sqlite3_column_text(st, 2);
        q->by = mem_strdup(by != NULL ? by : "");
        jr_split((const char *)sqlite3_column_text(st, 3), &q->prefixes, &q->nprefixes);
        q->unit = sqlite3_column_int(st, 4);
        const char *t = (const char *)sqlite3_column_text(st, 5);
        const char *a = (const char *)sqlite3_column_text(st, 6);
        const char *w = (const char *)sqlite3_column_text(st, 7);
        q->tenant = mem_strdup(t != NULL ? t : "");
        q->account = mem_strdup(a != NULL ? a : "");
        q->what = mem_strdup(w != NULL ? w : "");
    }
    store_stmt_done(st);
    for (size_t i = 0; i < n; i++) {
        if (r != STORE_FAIL)
            cb(&v[i], arg);
        journal_reset_req_free(&v[i]);
    }
    mem_free(v);
    return r != STORE_FAIL;
}

bool journal_reset_status(struct store *s, int64_t req_id, bool *done, struct buf *result, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT done_jid, result FROM reset_request WHERE id = ?1", err);
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, req_id);
    enum store_step r = store_step(s, st, "reading a counter reset request", err);
    *done = false;
    if (r == STORE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *done = true;
        buf_reset(result);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        buf_puts(result, text != NULL ? text : "");
    }
    store_stmt_done(st);
    if (r == STORE_DONE) {
        buf_reset(err);
        buf_printf(err, "%s: no counter reset request %lld", store_path(s), (long long)req_id);
        return false;
    }
    return r != STORE_FAIL;
}
