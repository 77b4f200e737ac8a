/* ctl_maillog.c: posternctl ingest's mail-log part: Postfix's log (maillog.h
 * parses a line) read into <state_dir>/maillog.sqlite (store.c migration 5),
 * one row of maillog_event per event of a message, and for each path read
 * the file it named (dev, ino, the hash of its first line) and how far it
 * was read (maillog_file), so that the next run goes on from there.  A file
 * rotated since (PATH.1 is the file read before) has the rest of PATH.1
 * read first.  The events are INSERT OR IGNORE'd under a UNIQUE key (the
 * queue ID and a hash of the event's identity, mlog_ukey()): lines
 * read twice add nothing, and a file's offset is written in the
 * transaction of the lines it covers (a crash re-reads, never skips).
 * --follow polls every second until SIGINT or SIGTERM (waited for with
 * sigtimedwait, so no handler and no global flag). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "ctl.h"
#include "maillog.h"
#include "store.h"

#define MLOG_STORE_FILE "maillog.sqlite"
#define MLOG_DEFAULT "/var/log/mail.log"
#define MLOG_BATCH 10000        /* lines per transaction */
#define MLOG_HEAD_MAX 4096      /* bytes of the first line hashed */
#define MLOG_CHUNK (1u << 20)   /* bytes read at a time */

/* One path being read: the file it names now (fd), where it is read. */
struct mlog_file {
    const char *path;          /* the path the row is keyed by */
    const char *shown;         /* the file read, for the output (PATH or PATH.1) */
    int fd;                    /* -1: not open */
    int64_t dev, ino;
    char head[17];             /* FNV-1a 64 of the first line, hex */
    bool head_partial;         /* hashed before the first line was whole */
    int64_t offset;            /* bytes read (whole lines) */
    int64_t lines_total;       /* lines read through offset (the row's) */
    bool dirty;                /* the row must be written */
    /* this run's counts */
    uint64_t lines, stored, known, foreign, truncated;
};

struct mlog {
    struct store *s;
    struct maillog_ctx ctx;
    char *buf;
    size_t cap;
    size_t batch;              /* lines in the open transaction */
    bool in_tx;
    struct buf err, detail;
    bool json;                 /* --json: the reports as JSON lines */
};

static void mlog_file_init(struct mlog_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = f->shown = path;
    f->fd = -1;
}

static void mlog_file_reset_counts(struct mlog_file *f)
{
    f->lines = f->stored = f->known = f->foreign = f->truncated = 0;
}

static int64_t mlog_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* FNV-1a 64 of n bytes, on from h (FNV's offset basis to start). */
static uint64_t mlog_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define MLOG_FNV_BASIS 0xcbf29ce484222325ULL

/* An event's identity within its queue ID (maillog_event.ukey; stored, so
 * never to change): FNV-1a 64 of time_us (8 bytes, little-endian), then
 * kind, rcpt and status each followed by a NUL. */
static int64_t mlog_ukey(int64_t time_us, const char *kind, const char *rcpt, size_t rcpt_len,
                         const char *status)
{
    unsigned char t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (unsigned char)((uint64_t)time_us >> (8 * i));
    uint64_t h = mlog_fnv(MLOG_FNV_BASIS, t, sizeof t);
    h = mlog_fnv(h, kind, strlen(kind) + 1);
    h = mlog_fnv(h, rcpt, rcpt_len);
    h = mlog_fnv(h, "", 1);
    h = mlog_fnv(h, status, strlen(status) + 1);
    return (int64_t)h;
}

/* The head of fd: FNV-1a 64 of its first line (with its newline), at most
 * MLOG_HEAD_MAX bytes of it; *partial when no newline was seen in fewer. */
static bool mlog_head(int fd, char out[17], bool *partial)
{
    char b[MLOG_HEAD_MAX];
    size_t n = 0;
    while (n < sizeof b) {
        ssize_t r = pread(fd, b + n, sizeof b - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    const char *nl = memchr(b, '\n', n);
    size_t len = nl ? (size_t)(nl - b) + 1 : n;
    *partial = nl == NULL && n < sizeof b;
    uint64_t h = mlog_fnv(MLOG_FNV_BASIS, b, len);
    snprintf(out, 17, "%016" PRIx64, h);
    return true;
}

/* Open path into f's identity (not its offset); false with errno set. */
static bool mlog_open(struct mlog_file *f, const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    if (fstat(fd, st) != 0 || !mlog_head(fd, f->head, &f->head_partial)) {
        int e = errno;
        close(fd);
        errno = e;
        return false;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        errno = EISDIR;
        return false;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->dev = (int64_t)st->st_dev;
    f->ino = (int64_t)st->st_ino;
    return true;
}

/* The stored row of path: false when none (or on error, with err set). */
struct mlog_row {
    int64_t dev, ino, offset, lines;
    char head[17];
};
static bool mlog_row_get(struct mlog *m, const char *path, struct mlog_row *row, bool *fail)
{
    *fail = false;
    sqlite3_stmt *st = store_stmt(m->s, "SELECT dev, ino, head, offset, lines FROM maillog_file WHERE path = ?1",
                                  &m->err);
    if (st == NULL) {
        *fail = true;
        return false;
    }
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    enum store_step r = store_step(m->s, st, "reading maillog_file", &m->err);
    bool found = r == STORE_ROW;
    if (found) {
        row->dev = sqlite3_column_int64(st, 0);
        row->ino = sqlite3_column_int64(st, 1);
        const unsigned char *h = sqlite3_column_text(st, 2);
        snprintf(row->head, sizeof row->head, "%s", h ? (const char *)h : "");
        row->offset = sqlite3_column_int64(st, 3);
        row->lines = sqlite3_column_int64(st, 4);
    }
    *fail = r == STORE_FAIL;
    store_stmt_done(st);
    return found;
}

static bool mlog_row_put(struct mlog *m, struct mlog_file *f)
{
    if (f->head_partial && f->offset > 0)
        mlog_head(f->fd, f->head, &f->head_partial);   /* the first line is whole now */
    sqlite3_stmt *st = store_stmt(m->s,
                                  "INSERT OR REPLACE INTO maillog_file (path, dev, ino, head, offset, lines, "
                                  "updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &m->err);
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, f->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f->dev);
    sqlite3_bind_int64(st, 3, f->ino);
    sqlite3_bind_text(st, 4, f->head, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, f->offset);
    sqlite3_bind_int64(st, 6, f->lines_total);
    sqlite3_bind_int64(st, 7, mlog_now_us());
    bool ok = store_step(m->s, st, "writing maillog_file", &m->err) == STORE_DONE;
    store_stmt_done(st);
    if (ok)
        f->dirty = false;
    return ok;
}

/* Write f's row and commit the open transaction (if any). */
static bool mlog_commit(struct mlog *m, struct mlog_file *f)
{
    if (!m->in_tx && !f->dirty)
        return true;
    if (!m->in_tx) {
        if (!store_begin(m->s, true, &m->err))
            return false;
        m->in_tx = true;
    }
    bool ok = mlog_row_put(m, f);
    if (!ok)
        store_rollback(m->s);
    else
        ok = store_commit(m->s, &m->err);
    m->in_tx = false;
    m->batch = 0;
    return ok;
}

static void mlog_bind_str(sqlite3_stmt *st, int i, struct maillog_str v)
{
    if (v.p != NULL)
        sqlite3_bind_text(st, i, v.p, (int)v.n, SQLITE_STATIC);
}

/* One line: its event (if it is one) inserted; false on a store error. */
static bool mlog_line(struct mlog *m, struct mlog_file *f, const char *line, size_t len)
{
    struct maillog_rec rec;
    f->lines++;
    switch (maillog_parse(&m->ctx, line, len, &rec)) {
    case MAILLOG_FOREIGN:
        f->foreign++;
        return true;
    case MAILLOG_TRUNCATED:
        f->truncated++;
        return true;
    case MAILLOG_OTHER:
        return true;
    default:
        break;
    }
    sqlite3_stmt *st = store_stmt(m->s,
                                  "INSERT OR IGNORE INTO maillog_event (time_us, queue_id, ukey, kind, service, "
                                  "rcpt, orig_rcpt, relay, delay_us, dsn, status, reply, sender, detail) VALUES "
                                  "(?1, ?2, ?14, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", &m->err);
    if (st == NULL)
        return false;
    buf_reset(&m->detail);
    int64_t time_us = rec.time * 1000000 + rec.time_us;
    const char *kind = maillog_kind_name(rec.kind);
    const char *status = maillog_status_name(rec.status);
    if (rec.kind == MAILLOG_EXPIRED && status[0] == '\0')
        status = "expired";
    struct maillog_str rcpt = { "", 0 };
    if (rec.kind == MAILLOG_DELIVERY && rec.to.p != NULL)
        rcpt = rec.to;
    sqlite3_bind_int64(st, 1, time_us);
    sqlite3_bind_text(st, 2, rec.qid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, rec.service.p ? rec.service.p : "", (int)rec.service.n, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, rcpt.p, (int)rcpt.n, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 14, mlog_ukey(time_us, kind, rcpt.p, rcpt.n, status));
    switch (rec.kind) {
    case MAILLOG_DELIVERY:
        mlog_bind_str(st, 6, rec.orig_to);
        mlog_bind_str(st, 7, rec.relay);
        if (rec.delay_us >= 0)
            sqlite3_bind_int64(st, 8, rec.delay_us);
        mlog_bind_str(st, 9, rec.dsn);
        mlog_bind_str(st, 11, rec.reply);
        break;
    case MAILLOG_QUEUED:
        mlog_bind_str(st, 12, rec.from);
        buf_printf(&m->detail, "size=%" PRIu64 " nrcpt=%lu", rec.size, rec.nrcpt);
        break;
    case MAILLOG_EXPIRED:
        mlog_bind_str(st, 12, rec.from);
        break;
    case MAILLOG_PICKUP:
        mlog_bind_str(st, 12, rec.from);
        if (rec.uid >= 0)
            buf_printf(&m->detail, "uid=%ld", rec.uid);
        break;
    case MAILLOG_MESSAGE_ID:
        mlog_bind_str(st, 13, rec.message_id);
        break;
    case MAILLOG_CLIENT:
        buf_add(&m->detail, rec.client.p, rec.client.n);
        if (rec.sasl_username.p != NULL) {
            buf_puts(&m->detail, ", sasl_method=");
            buf_add(&m->detail, rec.sasl_method.p, rec.sasl_method.n);
            buf_puts(&m->detail, ", sasl_username=");
            buf_add(&m->detail, rec.sasl_username.p, rec.sasl_username.n);
        }
        break;
    case MAILLOG_HOLD:
        mlog_bind_str(st, 13, rec.hold_reason);
        break;
    case MAILLOG_NOTIFY:
        sqlite3_bind_text(st, 13, rec.notify_qid, -1, SQLITE_STATIC);
        break;
    default:                   /* removed, release: the kind says it all */
        break;
    }
    if (m->detail.len > 0)
        sqlite3_bind_text(st, 13, m->detail.data, (int)m->detail.len, SQLITE_STATIC);
    bool ok = store_step(m->s, st, "storing a mail log event", &m->err) == STORE_DONE;
    if (ok && sqlite3_changes(sqlite3_db_handle(st)) > 0)
        f->stored++;
    else if (ok)
        f->known++;
    store_stmt_done(st);
    return ok;
}

/* Read f from its offset to the end of the file in whole lines, and the
 * last one without its newline too when final (the file is written no
 * more); commit every MLOG_BATCH lines and at the end.  False after a read
 * error (errno) or a store error (m->err; the open batch rolled back). */
static bool mlog_read(struct mlog *m, struct mlog_file *f, bool final, bool *store_fail)
{
    struct stat st;
    *store_fail = false;
    if (fstat(f->fd, &st) == 0)
        m->ctx.ref = st.st_mtime;   /* the year of traditional time stamps */
    size_t pos = 0, have = 0;       /* m->buf[pos..have): from f->offset on, not processed yet */
    bool eof = false;
    while (!eof || (final && have > pos)) {
        size_t take = 0;            /* the bytes of the line to process, 0: read more */
        size_t eat = 0;
        const char *line = m->buf + pos;
        const char *nl = have > pos ? memchr(line, '\n', have - pos) : NULL;
        if (nl != NULL) {
            take = (size_t)(nl - line);
            eat = take + 1;
        } else if (eof) {
            take = eat = have - pos; /* final: the unterminated last line */
        }
        if (eat == 0) {
            memmove(m->buf, line, have - pos);
            have -= pos;
            pos = 0;
            if (have == m->cap) {
                m->cap *= 2;
                m->buf = mem_grow(m->buf, m->cap, 1);
            }
            ssize_t r = pread(f->fd, m->buf + have, m->cap - have, (off_t)(f->offset + (int64_t)have));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                int e = errno;
                mlog_commit(m, f);
                errno = e;
                return false;
            }
            if (r == 0)
                eof = true;
            have += (size_t)r;
            continue;
        }
        if (!m->in_tx) {
            if (!store_begin(m->s, true, &m->err)) {
                *store_fail = true;
                return false;
            }
            m->in_tx = true;
        }
        if (!mlog_line(m, f, line, take)) {
            store_rollback(m->s);
            m->in_tx = false;
            *store_fail = true;
            return false;
        }
        f->offset += (int64_t)eat;
        f->lines_total++;
        f->dirty = true;
        pos += eat;
        if (++m->batch >= MLOG_BATCH && !mlog_commit(m, f)) {
            *store_fail = true;
            return false;
        }
    }
    if (!mlog_commit(m, f)) {
        *store_fail = true;
        return false;
    }
    return true;
}

static void mlog_report(const struct mlog *m, const struct mlog_file *f)
{
    if (m->json) { /* one JSON object per line: --follow streams them */
        fputs("{\"path\": ", stdout);
        ctl_put_json(stdout, f->shown);
        printf(", \"lines\": %" PRIu64 ", \"stored\": %" PRIu64 ", \"known\": %" PRIu64 ", \"foreign\": %" PRIu64
               ", \"truncated\": %" PRIu64 "}\n",
               f->lines, f->stored, f->known, f->foreign, f->truncated);
        fflush(stdout);
        return;
    }
    printf("%s: %" PRIu64 " line%s, %" PRIu64 " event%s stored (%" PRIu64 " already known), %" PRIu64
           " not Postfix's, %" PRIu64 " truncated\n",
           f->shown, f->lines, f->lines == 1 ? "" : "s", f->stored, f->stored == 1 ? "" : "s", f->known,
           f->foreign, f->truncated);
    fflush(stdout);
}

/* Read what is left of PATH.1 when it is the file the row was read
 * through (the path rotated since).  False after printing a store error. */
static bool mlog_catch_up(struct mlog *m, const struct mlog_file *f, const struct mlog_row *row)
{
    struct buf old;
    buf_init(&old);
    buf_printf(&old, "%s.1", f->path);
    struct mlog_file o;
    mlog_file_init(&o, f->path);
    o.shown = old.data;
    struct stat st;
    bool ok = true;
    if (mlog_open(&o, old.data, &st) && o.dev == row->dev && o.ino == row->ino && strcmp(o.head, row->head) == 0
        && (int64_t)st.st_size >= row->offset) {
        o.offset = row->offset;
        o.lines_total = row->lines;
        bool store_fail;
        if (!mlog_read(m, &o, true, &store_fail)) {
            if (store_fail)
                fprintf(stderr, "posternctl: %s\n", m->err.data);
            else
                fprintf(stderr, "posternctl: %s: %s\n", old.data, strerror(errno));
            ok = !store_fail;
        } else {
            mlog_report(m, &o);
        }
    }
    if (o.fd >= 0)
        close(o.fd);
    buf_free(&old);
    return ok;
}

/* Open f->path and position it: the stored offset when it is the same
 * file, else (after PATH.1's rest) 0.  0, or 1 after printing the
 * reason, or -1 after a store error. */
static int mlog_start(struct mlog *m, struct mlog_file *f)
{
    struct stat st;
    if (!mlog_open(f, f->path, &st)) {
        fprintf(stderr, "posternctl: cannot read the mail log %s: %s\n", f->path, strerror(errno));
        return 1;
    }
    struct mlog_row row;
    bool fail;
    bool found = mlog_row_get(m, f->path, &row, &fail);
    if (fail) {
        fprintf(stderr, "posternctl: %s\n", m->err.data);
        return -1;
    }
    f->offset = 0;
    f->lines_total = 0;
    f->dirty = true;
    if (found && row.dev == f->dev && row.ino == f->ino && strcmp(row.head, f->head) == 0
        && (int64_t)st.st_size >= row.offset) {
        f->offset = row.offset;
        f->lines_total = row.lines;
        f->dirty = false;
    } else if (found && row.offset > 0 && !mlog_catch_up(m, f, &row)) {
        return -1;
    }
    return 0;
}

/* Follow: has f's path another file now (rotated, or truncated in
 * place)?  Read the old one to its end first, then start on the new one
 * from 0.  0, 1 after a read error printed, -1 after a store error. */
static int mlog_poll(struct mlog *m, struct mlog_file *f)
{
    bool store_fail;
    if (!mlog_read(m, f, false, &store_fail))
        goto failed;
    struct stat now, cur;
    if (fstat(f->fd, &cur) == 0 && (int64_t)cur.st_size < f->offset) {
        /* truncated in place (copytruncate): the same inode, from 0 */
        bool partial;
        mlog_head(f->fd, f->head, &partial);
        f->head_partial = partial;
        f->offset = 0;
        f->lines_total = 0;
        f->dirty = true;
        return mlog_read(m, f, false, &store_fail) ? 0 : (store_fail ? -1 : 1);
    }
    if (stat(f->path, &now) != 0 || ((int64_t)now.st_dev == f->dev && (int64_t)now.st_ino == f->ino))
        return 0;              /* not there yet after a rotation, or the same file */
    if (!mlog_read(m, f, true, &store_fail))
        goto failed;
    struct mlog_file n = *f;
    n.fd = -1;
    if (!mlog_open(&n, f->path, &now))
        return 0;              /* try again next time */
    close(f->fd);
    n.offset = 0;
    n.lines_total = 0;
    n.dirty = true;
    *f = n;
    if (!mlog_read(m, f, false, &store_fail))
        goto failed;
    return 0;
failed:
    if (store_fail) {
        fprintf(stderr, "posternctl: %s\n", m->err.data);
        return -1;
    }
    fprintf(stderr, "posternctl: %s: %s\n", f->path, strerror(errno));
    return 1;
}

/* The ingest handle's pragmas for a bulk of rebuildable data (the log is
 * the source of truth; a file's offset is committed with the events it
 * covers, so a crash of posternctl re-reads the open batch, never skips
 * it).  synchronous = OFF: no fsync at the WAL's checkpoints, which halves
 * the wall time (bench/README.md); an OS crash or power loss may then
 * damage maillog.sqlite, which is rebuilt by deleting it and ingesting the
 * logs again. */
static bool mlog_store_tune(struct store *s, struct buf *err)
{
    static const char *const pragmas[] = {
        "PRAGMA synchronous = OFF",
        "PRAGMA cache_size = -65536",       /* KiB: 64 MiB */
        "PRAGMA temp_store = MEMORY",
    };
    for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
        sqlite3_stmt *st = store_stmt(s, pragmas[i], err);
        if (st == NULL)
            return false;
        enum store_step r;
        while ((r = store_step(s, st, "setting the ingest pragmas", err)) == STORE_ROW)
            ;
        store_stmt_done(st);
        if (r == STORE_FAIL)
            return false;
    }
    return true;
}

/* <state_dir>/maillog.sqlite read-write, created when missing (owned by
 * state_dir's owner when root creates it).  NULL after printing why. */
static struct store *mlog_store_open(const struct ctl *c)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    buf_printf(&path, "%s/%s", c->conf.state_dir, MLOG_STORE_FILE);
    bool exists = access(path.data, F_OK) == 0;
    struct store *s = NULL;
    if (!exists && access(c->conf.state_dir, W_OK) != 0)
        fprintf(stderr, "posternctl: cannot create %s: %s: %s\n", path.data, c->conf.state_dir, strerror(errno));
    else if ((s = store_open(path.data, STORE_SYNC_NORMAL, &err)) == NULL)
        fprintf(stderr, "posternctl: %s\n", err.data);
    if (s != NULL && !exists)
        ctl_store_give(c->conf.state_dir, path.data);
    if (s != NULL && !mlog_store_tune(s, &err)) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        store_close(s);
        s = NULL;
    }
    buf_free(&path);
    buf_free(&err);
    return s;
}

int ctl_maillog_ingest(struct ctl *c, bool follow, bool json, int n, char **paths)
{
    static char *const deflt[] = { (char *)MLOG_DEFAULT };
    if (n == 0) {
        n = 1;
        paths = (char **)deflt;
    }
    struct mlog m;
    memset(&m, 0, sizeof m);
    m.json = json;
    m.s = mlog_store_open(c);
    if (m.s == NULL)
        return 1;
    maillog_ctx_init(&m.ctx, time(NULL));
    m.cap = MLOG_CHUNK;
    m.buf = mem_alloc(m.cap);
    buf_init(&m.err);
    buf_init(&m.detail);
    struct mlog_file *files = mem_alloc(sizeof *files * (size_t)n);
    bool *live = mem_alloc(sizeof *live * (size_t)n);
    int rc = 0, nlive = 0;

    /* with --follow, SIGINT and SIGTERM are waited for, not delivered */
    sigset_t stop, saved;
    sigemptyset(&stop);
    sigemptyset(&saved);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (follow)
        sigprocmask(SIG_BLOCK, &stop, &saved);

    for (int i = 0; i < n; i++) {
        mlog_file_init(&files[i], paths[i]);
        live[i] = false;
    }
    for (int i = 0; i < n && rc >= 0; i++) {
        int r = mlog_start(&m, &files[i]);
        if (r != 0) {
            rc = r < 0 ? -1 : 1;
            continue;
        }
        bool store_fail;
        if (!mlog_read(&m, &files[i], false, &store_fail)) {
            if (store_fail) {
                fprintf(stderr, "posternctl: %s\n", m.err.data);
                rc = -1;
            } else {
                fprintf(stderr, "posternctl: cannot read the mail log %s: %s\n", files[i].path, strerror(errno));
                rc = 1;
            }
            continue;
        }
        mlog_report(&m, &files[i]);
        live[i] = true;
        nlive++;
    }
    if (follow && rc >= 0 && nlive > 0) {
        for (int i = 0; i < n; i++)
            mlog_file_reset_counts(&files[i]);
        struct timespec second = { 1, 0 };
        while (nlive > 0 && rc >= 0) {
            int sig = sigtimedwait(&stop, NULL, &second);
            if (sig == SIGINT || sig == SIGTERM)
                break;
            for (int i = 0; i < n && rc >= 0; i++) {
                if (!live[i])
                    continue;
                int r = mlog_poll(&m, &files[i]);
                if (r != 0) {
                    rc = r < 0 ? -1 : 1;
                    live[i] = false;
                    nlive--;
                }
            }
        }
        for (int i = 0; i < n; i++)
            if (live[i]) {
                mlog_commit(&m, &files[i]);
                files[i].shown = files[i].path;
                mlog_report(&m, &files[i]);
            }
    }
    if (follow)
        sigprocmask(SIG_SETMASK, &saved, NULL);
    for (int i = 0; i < n; i++)
        if (files[i].fd >= 0)
            close(files[i].fd);
    mem_free(files);
    mem_free(live);
    mem_free(m.buf);
    buf_free(&m.err);
    buf_free(&m.detail);
    store_close(m.s);
    return rc == 0 ? 0 : 1;
}
