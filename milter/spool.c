/* spool.c: one message kept for the scanners, in memory up to a limit,
 * then in an unlinked temporary file (see spool.h). */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"

struct spool {
    size_t mem_max;
    uint64_t limit;
    char *dir;
    unsigned char *mem;        /* the first bytes, while not spilled */
    size_t mem_len, mem_cap;
    int fd;                    /* the temporary file once spilled, else -1 */
    uint64_t size;             /* bytes appended (also past the limit) */
    bool broken;               /* a write failed: unusable */
};

struct spool *spool_new(size_t mem_max, uint64_t limit, const char *dir)
{
    struct spool *s = mem_alloc(sizeof *s);
    s->mem_max = mem_max;
    s->limit = limit;
    s->dir = mem_strdup(dir);
    s->fd = -1;
    return s;
}

/* A file nobody else can open: O_TMPFILE, else mkstemp + unlink. */
static int spool_tmpfile(const char *dir, struct buf *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
        buf_printf(err, "spool: cannot create a temporary file in %s: %s", dir, strerror(errno));
        return -1;
    }
    struct buf path;
    buf_init(&path);
    buf_printf(&path, "%s/postern-spool.XXXXXX", dir);
    fd = mkostemp(path.data, O_CLOEXEC);
    if (fd < 0)
        buf_printf(err, "spool: cannot create a temporary file in %s: %s", dir, strerror(errno));
    else
        unlink(path.data);
    buf_free(&path);
    return fd;
}

static bool spool_put(struct spool *s, const void *data, size_t len, struct buf *err)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(s->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            buf_printf(err, "spool: cannot write the temporary file in %s: %s", s->dir,
                       n < 0 ? strerror(errno) : "nothing written");
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool spool_write(struct spool *s, const void *data, size_t len, struct buf *err)
{
    if (s->broken) {
        buf_puts(err, "spool: unusable after an earlier error");
        return false;
    }
    if (len == 0)
        return true;
    uint64_t before = s->size;
    s->size += len;
    if (s->size > s->limit) {
        /* past the limit: only counted, and what was kept is let go */
        mem_free(s->mem);
        s->mem = NULL;
        s->mem_len = s->mem_cap = 0;
        if (s->fd >= 0) {
            close(s->fd);
            s->fd = -1;
        }
        return true;
    }
    if (s->fd < 0 && before + len <= s->mem_max) {
        if (s->mem_len + len > s->mem_cap) { /* doubling, up to mem_max */
            size_t cap = s->mem_cap ? s->mem_cap : 4096;
            while (cap < s->mem_len + len)
                cap *= 2;
            s->mem_cap = cap < s->mem_max ? cap : s->mem_max;
            s->mem = mem_grow(s->mem, s->mem_cap, 1);
        }
        memcpy(s->mem + s->mem_len, data, len);
        s->mem_len += len;
        return true;
    }
    if (s->fd < 0) {
        s->fd = spool_tmpfile(s->dir, err);
        if (s->fd < 0 || (s->mem_len > 0 && !spool_put(s, s->mem, s->mem_len, err))) {
            s->broken = true;
            return false;
        }
        mem_free(s->mem);
        s->mem = NULL;
        s->mem_len = s->mem_cap = 0;
    }
    if (!spool_put(s, data, len, err)) {
        s->broken = true;
        return false;
    }
    return true;
}

bool spool_header(struct spool *s, const char *name, const char *value, struct buf *err)
{
    struct buf line;
    buf_init(&line);
    buf_printf(&line, "%s:%s", name, value[0] == ' ' || value[0] == '\t' ? "" : " ");
    for (const char *p = value; *p; p++) {
        if (*p == '\n' && (p == value || p[-1] != '\r'))
            buf_add(&line, "\r", 1);
        buf_add(&line, p, 1);
    }
    buf_puts(&line, "\r\n");
    bool ok = spool_write(s, line.data, line.len, err);
    buf_free(&line);
    return ok;
}

uint64_t spool_size(const struct spool *s)
{
    return s->size;
}

bool spool_over(const struct spool *s)
{
    return s->size > s->limit;
}

bool spool_spilled(const struct spool *s)
{
    return s->fd >= 0;
}

ssize_t spool_read(const struct spool *s, uint64_t off, void *out, size_t len, struct buf *err)
{
    if (s->broken || spool_over(s)) {
        buf_puts(err, s->broken ? "spool: unusable after an earlier error" : "spool: message over the limit, not kept");
        return -1;
    }
    if (off >= s->size)
        return 0;
    if (len > s->size - off)
        len = (size_t)(s->size - off);
    if (s->fd < 0) {
        memcpy(out, s->mem + off, len);
        return (ssize_t)len;
    }
    for (;;) {
        ssize_t n = pread(s->fd, out, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            buf_printf(err, "spool: cannot read the temporary file: %s", strerror(errno));
        return n;
    }
}

void spool_free(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    mem_free(s->mem);
    mem_free(s->dir);
    mem_free(s);
}
