/* test_spool.c: unit tests of the scanners' message spool (milter/spool.c):
 * a small message stays in memory; crossing mem_max spills it to a
 * temporary file that is never visible in the directory and is mode 0600,
 * and every byte reads back the same at any offset and chunk size;
 * spool_header() writes "name: value\r\n" with bare LFs turned into CRLF;
 * past the limit only the size is counted (neither memory nor disk grow);
 * a directory that does not exist, is a file or is read-only, and a full
 * disk (a 64 KiB tmpfs in a private mount namespace, and /dev/full put in
 * place of the file) make spool_write() fail with a clear error, after
 * which the spool stays unusable. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "spool.h"
#include "unit.h"

#define BIG_LIMIT (64u << 20)

/* --- helpers ------------------------------------------------------------- */

/* rootdir: made once by the runner (removed at the end even when a test
 * fails); tmpdir: each test's own directory in it. */
static char rootdir[32];
static char tmpdir[64];

static void root_setup(void)
{
    snprintf(rootdir, sizeof rootdir, "/tmp/test_spool.XXXXXX");
    if (mkdtemp(rootdir) == NULL)
        abort();
}

static void root_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", rootdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_spool: could not remove %s\n", rootdir);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/t.XXXXXX", rootdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    unit_rm_tree(tmpdir);
}

/* Entries of a directory other than . and .. */
static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_msg(d != NULL, "%s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* The descriptor of this process open on a file in dir, or -1 (the link
 * of an unlinked file reads "dir/name (deleted)", of an O_TMPFILE one
 * "dir/#ino (deleted)"). */
static int fd_in_dir(const char *dir)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int found = -1, self = dirfd(d);
    size_t n = strlen(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == self)
            continue;
        char link[300], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, dir, n) == 0 && target[n] == '/') {
            ck_assert_msg(found < 0, "two descriptors open in %s", dir);
            found = atoi(e->d_name);
        }
    }
    closedir(d);
    return found;
}

/* Deterministic bytes (all 256 values, NULs and CR/LF included). */
static unsigned char *pattern(size_t len, unsigned seed)
{
    unsigned char *p = mem_alloc(len ? len : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

static void write_ok(struct spool *s, const void *data, size_t len)
{
    struct buf err;
    buf_init(&err);
    ck_assert_msg(spool_write(s, data, len, &err), "spool_write(%zu): %s", len, err.data);
    ck_assert_uint_eq(err.len, 0);
    buf_free(&err);
}

/* The whole content read back in chunks of size chunk. */
static unsigned char *read_all(const struct spool *s, size_t chunk)
{
    uint64_t size = spool_size(s);
    unsigned char *out = mem_alloc((size_t)size + 1);
    struct buf err;
    buf_init(&err);
    uint64_t off = 0;
    while (off < size) {
        ssize_t n = spool_read(s, off, out + off, chunk, &err);
        ck_assert_msg(n > 0, "spool_read(%llu, %zu) = %zd: %s", (unsigned long long)off, chunk, n, err.data);
        ck_assert_uint_le((size_t)n, chunk);
        off += (uint64_t)n;
    }
    ck_assert_uint_eq(off, size);
    char one;
    ck_assert_int_eq(spool_read(s, size, &one, 1, &err), 0);
    buf_free(&err);
    return out;
}

/* Every byte of ref[0..len) read back at offsets and lengths that cross
 * the chunk boundaries in every way. */
static void check_content(const struct spool *s, const unsigned char *ref, size_t len)
{
    ck_assert_uint_eq(spool_size(s), len);
    static const size_t chunks[] = { 1, 3, 1000, 4096, 65536, 100003, 1 << 22 };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        if (chunks[i] <= 3 && len > 200000)
            continue;
        unsigned char *got = read_all(s, chunks[i]);
        ck_assert_msg(memcmp(got, ref, len) == 0, "content differs read in chunks of %zu", chunks[i]);
        mem_free(got);
    }
    struct buf err;
    buf_init(&err);
    unsigned char out[5000];
    uint32_t x = 12345;
    for (int i = 0; i < 300 && len > 0; i++) {
        x = x * 1103515245u + 12345u;
        uint64_t off = (x >> 4) % len;
        size_t want = (x >> 8) % sizeof out + 1;
        ssize_t n = spool_read(s, off, out, want, &err);
        size_t expect = want < len - off ? want : (size_t)(len - off);
        ck_assert_msg(n == (ssize_t)expect, "spool_read(%llu, %zu) = %zd, expected %zu: %s",
                      (unsigned long long)off, want, n, expect, err.data);
        ck_assert_msg(memcmp(out, ref + off, expect) == 0, "content differs at %llu+%zu", (unsigned long long)off,
                      expect);
    }
    /* past the end */
    ck_assert_int_eq(spool_read(s, len + 1, out, sizeof out, &err), 0);
    ck_assert_int_eq(spool_read(s, UINT64_MAX, out, sizeof out, &err), 0);
    buf_free(&err);
}

/* A spool's whole content as a string (for the header tests). */
static char *content_str(const struct spool *s)
{
    return (char *)read_all(s, 7);
}

/* A private mount namespace with a tmpfs of opts mounted on dir; false
 * (and a message) when this process may not do it.  Check runs each test
 * in its own process, so the namespace ends with the test. */
static bool private_tmpfs(const char *dir, const char *opts)
{
    if (unshare(CLONE_NEWNS) != 0) {
        fprintf(stderr, "test_spool: SKIP (unshare(CLONE_NEWNS): %s)\n", strerror(errno));
        return false;
    }
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 || /* types named: valgrind refuses NULL */
        mount("tmpfs", dir, "tmpfs", strstr(opts, "ro") == opts ? MS_RDONLY : 0, opts) != 0) {
        fprintf(stderr, "test_spool: SKIP (mount tmpfs %s: %s)\n", opts, strerror(errno));
        return false;
    }
    return true;
}

/* --- in memory, spilled ---------------------------------------------------- */

START_TEST(test_small_in_memory)
{
    struct spool *s = spool_new(4096, BIG_LIMIT, tmpdir);
    ck_assert_uint_eq(spool_size(s), 0);
    ck_assert(!spool_over(s));
    ck_assert(!spool_spilled(s));
    struct buf err;
    buf_init(&err);
    char one;
    ck_assert_int_eq(spool_read(s, 0, &one, 1, &err), 0);

    write_ok(s, "Subject: hi\r\n\r\n", 15);
    write_ok(s, "", 0);
    write_ok(s, "hello\r\n", 7);
    ck_assert_uint_eq(spool_size(s), 22);
    ck_assert(!spool_spilled(s));
    ck_assert(!spool_over(s));
    check_content(s, (const unsigned char *)"Subject: hi\r\n\r\nhello\r\n", 22);
    ck_assert_int_eq(fd_in_dir(tmpdir), -1);
    ck_assert_int_eq(dir_entries(tmpdir), 0);
    buf_free(&err);
    spool_free(s);
    spool_free(NULL);
}
END_TEST

/* Exactly mem_max stays in memory; one byte more spills, in one write or
 * split over many. */
START_TEST(test_spill_boundary)
{
    const size_t mem_max = 1000;
    unsigned char *ref = pattern(3000, 1);
    struct spool *s = spool_new(mem_max, BIG_LIMIT, tmpdir);
    for (size_t i = 0; i < mem_max; i += 100)
        write_ok(s, ref + i, 100);
    ck_assert(!spool_spilled(s));
    check_content(s, ref, mem_max);
    write_ok(s, ref + mem_max, 1);
    ck_assert(spool_spilled(s));
    check_content(s, ref, mem_max + 1);
    write_ok(s, ref + mem_max + 1, 1999);
    check_content(s, ref, 3000);
    spool_free(s);

    /* a first write larger than mem_max */
    s = spool_new(mem_max, BIG_LIMIT, tmpdir);
    write_ok(s, ref, 2500);
    ck_assert(spool_spilled(s));
    check_content(s, ref, 2500);
    spool_free(s);

    /* mem_max 0: everything goes to the file */
    s = spool_new(0, BIG_LIMIT, tmpdir);
    write_ok(s, "", 0);
    write_ok(s, ref, 1);
    ck_assert(spool_spilled(s));
    check_content(s, ref, 1);
    spool_free(s);
    mem_free(ref);
}
END_TEST

/* A 1.5 MB message written in chunks of every size reads back identical;
 * the file is nowhere in the directory, mode 0600, and goes with the
 * spool. */
START_TEST(test_spill_roundtrip)
{
    const size_t total = 1500000;
    unsigned char *ref = pattern(total, 2);
    struct spool *s = spool_new(10000, BIG_LIMIT, tmpdir);
    static const size_t sizes[] = { 1, 2, 7, 999, 1000, 4096, 8191, 65536, 65537, 131072, 3 };
    size_t off = 0;
    for (size_t i = 0; off < total; i++) {
        size_t n = sizes[i % (sizeof sizes / sizeof sizes[0])];
        if (n > total - off)
            n = total - off;
        write_ok(s, ref + off, n);
        off += n;
        ck_assert_uint_eq(spool_size(s), off);
        ck_assert(spool_spilled(s) == (off > 10000));
    }
    ck_assert(!spool_over(s));
    check_content(s, ref, total);

    ck_assert_int_eq(dir_entries(tmpdir), 0);
    int fd = fd_in_dir(tmpdir);
    ck_assert_msg(fd >= 0, "no descriptor open on a file in %s", tmpdir);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_msg((st.st_mode & 07777) == 0600, "mode %o", (unsigned)(st.st_mode & 07777));
    ck_assert_uint_eq(st.st_nlink, 0);
    ck_assert_uint_eq((uint64_t)st.st_size, total);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    spool_free(s);
    ck_assert_int_eq(fd_in_dir(tmpdir), -1);
    ck_assert_int_eq(dir_entries(tmpdir), 0);
    mem_free(ref);
}
END_TEST

/* Two spools at once each keep their own bytes. */
START_TEST(test_two_spools)
{
    unsigned char *a = pattern(50000, 3), *b = pattern(50000, 4);
    struct spool *sa = spool_new(1000, BIG_LIMIT, tmpdir);
    struct spool *sb = spool_new(1000, BIG_LIMIT, tmpdir);
    for (size_t off = 0; off < 50000; off += 5000) {
        write_ok(sa, a + off, 5000);
        write_ok(sb, b + off, 5000);
    }
    check_content(sa, a, 50000);
    check_content(sb, b, 50000);
    ck_assert_int_eq(dir_entries(tmpdir), 0);
    spool_free(sa);
    spool_free(sb);
    mem_free(a);
    mem_free(b);
}
END_TEST

/* --- spool_header ---------------------------------------------------------------- */

static void check_header(size_t mem_max, const char *name, const char *value, const char *expect)
{
    struct spool *s = spool_new(mem_max, BIG_LIMIT, tmpdir);
    struct buf err;
    buf_init(&err);
    ck_assert_msg(spool_header(s, name, value, &err), "%s", err.data);
    char *got = content_str(s);
    ck_assert_msg(strcmp(got, expect) == 0, "spool_header(\"%s\", \"%s\"): got \"%s\", expected \"%s\"", name,
                  value, got, expect);
    ck_assert_uint_eq(spool_size(s), strlen(expect));
    mem_free(got);
    buf_free(&err);
    spool_free(s);
}

START_TEST(test_header)
{
    for (size_t mem_max = 0; mem_max <= 4096; mem_max += 4096) {
        check_header(mem_max, "Subject", "hello", "Subject: hello\r\n");
        check_header(mem_max, "Subject", "a\n\tb", "Subject: a\r\n\tb\r\n");
        check_header(mem_max, "Subject", "a\r\n\tb", "Subject: a\r\n\tb\r\n");
        check_header(mem_max, "Received", "from x\n\tby y\r\n\tfor z\n\t; date",
                     "Received: from x\r\n\tby y\r\n\tfor z\r\n\t; date\r\n");
        check_header(mem_max, "X-Folded", "a\n b\n\tc", "X-Folded: a\r\n b\r\n\tc\r\n");
    }

    /* headers, the blank line and the body as one message */
    struct spool *s = spool_new(20, BIG_LIMIT, tmpdir);
    struct buf err;
    buf_init(&err);
    ck_assert(spool_header(s, "From", "a@b.example", &err));
    ck_assert(spool_header(s, "To", "c@d.example,\n\te@f.example", &err));
    write_ok(s, "\r\nbody\r\n", 8);
    ck_assert(spool_spilled(s));
    char *got = content_str(s);
    ck_assert_str_eq(got, "From: a@b.example\r\nTo: c@d.example,\r\n\te@f.example\r\n\r\nbody\r\n");
    mem_free(got);
    buf_free(&err);
    spool_free(s);
}
END_TEST

/* --- the limit -------------------------------------------------------------------------- */

/* Exactly limit bytes are kept; one more and the spool only counts. */
START_TEST(test_limit_exact)
{
    unsigned char *ref = pattern(5000, 5);
    struct spool *s = spool_new(100, 5000, tmpdir);
    write_ok(s, ref, 4999);
    write_ok(s, ref + 4999, 1);
    ck_assert(!spool_over(s));
    check_content(s, ref, 5000);
    write_ok(s, "x", 1);
    ck_assert(spool_over(s));
    ck_assert_uint_eq(spool_size(s), 5001);
    spool_free(s);
    mem_free(ref);
}
END_TEST

/* Past the limit on disk: the file is let go, writes go on succeeding and
 * counting. */
START_TEST(test_limit_disk)
{
    unsigned char *ref = pattern(65536, 6);
    struct spool *s = spool_new(100, 100000, tmpdir);
    write_ok(s, ref, 60000);
    ck_assert(spool_spilled(s));
    write_ok(s, ref, 60000);
    ck_assert(spool_over(s));
    ck_assert_uint_eq(spool_size(s), 120000);
    for (int i = 0; i < 200; i++)    /* 13 MB more */
        write_ok(s, ref, 65536);
    ck_assert(spool_over(s));
    ck_assert_uint_eq(spool_size(s), 120000 + 200 * 65536ull);
    int fd = fd_in_dir(tmpdir);
    if (fd >= 0) {              /* kept open: it must not have grown past the limit */
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_uint_le((uint64_t)st.st_size, 100000);
    }
    ck_assert_int_eq(dir_entries(tmpdir), 0);
    spool_free(s);
    mem_free(ref);
}
END_TEST

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Past the limit in memory: 50 MB appended cost no memory, nothing goes
 * to disk. */
START_TEST(test_limit_memory)
{
    unsigned char *ref = pattern(65536, 7);
    struct spool *s = spool_new(1 << 20, 100000, tmpdir);
    write_ok(s, ref, 65536);
    write_ok(s, ref, 65536);
    ck_assert(spool_over(s));
    size_t before = heap_in_use();
    for (int i = 0; i < 800; i++)
        write_ok(s, ref, 65536);
    size_t after = heap_in_use();
    ck_assert_msg(after < before + (1 << 20), "heap grew by %zu bytes past the limit", after - before);
    ck_assert(!spool_spilled(s));
    ck_assert(spool_over(s));
    ck_assert_uint_eq(spool_size(s), 802 * 65536ull);
    ck_assert_int_eq(fd_in_dir(tmpdir), -1);
    ck_assert_int_eq(dir_entries(tmpdir), 0);
    spool_free(s);
    mem_free(ref);
}
END_TEST

/* --- errors ------------------------------------------------------------------------ */

/* After a failure: writes, headers and reads all fail, with an error. */
static void check_unusable(struct spool *s)
{
    struct buf err;
    buf_init(&err);
    ck_assert(!spool_write(s, "more", 4, &err));
    ck_assert_uint_gt(err.len, 0);
    buf_reset(&err);
    ck_assert(!spool_header(s, "X-A", "b", &err));
    ck_assert_uint_gt(err.len, 0);
    buf_reset(&err);
    char out[16];
    ck_assert_int_eq(spool_read(s, 0, out, sizeof out, &err), -1);
    ck_assert_uint_gt(err.len, 0);
    buf_free(&err);
}

/* A spool in dir: the first bytes fit in memory, the write that must
 * spill fails with an error naming dir and why. */
static void check_bad_dir(const char *dir, int errnum1, int errnum2)
{
    struct spool *s = spool_new(100, BIG_LIMIT, dir);
    write_ok(s, "0123456789", 10);
    struct buf err;
    buf_init(&err);
    char big[200];
    memset(big, 'x', sizeof big);
    ck_assert(!spool_write(s, big, sizeof big, &err));
    ck_assert_msg(strstr(err.data, dir) != NULL, "error does not name %s: %s", dir, err.data);
    ck_assert_msg(strstr(err.data, strerror(errnum1)) != NULL ||
                  (errnum2 != 0 && strstr(err.data, strerror(errnum2)) != NULL),
                  "error does not say \"%s\": %s", strerror(errnum1), err.data);
    check_unusable(s);
    spool_free(s);
    buf_free(&err);
}

START_TEST(test_dir_missing)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/nonexistent", tmpdir);
    check_bad_dir(dir, ENOENT, 0);

    /* a message that fits in memory never needs the directory */
    struct spool *s = spool_new(100, BIG_LIMIT, dir);
    write_ok(s, "small", 5);
    check_content(s, (const unsigned char *)"small", 5);
    spool_free(s);
}
END_TEST

START_TEST(test_dir_is_file)
{
    char path[128];
    snprintf(path, sizeof path, "%s/file", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    check_bad_dir(path, ENOTDIR, 0);
}
END_TEST

START_TEST(test_dir_readonly)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/ro", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(dir, 0555), 0);
        check_bad_dir(dir, EACCES, 0);
        return;
    }
    /* root writes anywhere: a read-only file system instead */
    if (!private_tmpfs(dir, "ro,size=64k"))
        return;
    check_bad_dir(dir, EROFS, EACCES);
    ck_assert_int_eq(umount(dir), 0);
}
END_TEST

/* A 64 KiB tmpfs: a 1 MB message fails with ENOSPC; a spool past its
 * limit on the same disk costs nothing and keeps succeeding. */
START_TEST(test_disk_full_tmpfs)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/small", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    if (!private_tmpfs(dir, "size=64k"))
        return;
    unsigned char *ref = pattern(8192, 8);
    struct buf err;
    buf_init(&err);

    struct spool *s = spool_new(1000, BIG_LIMIT, dir);
    bool failed = false;
    for (int i = 0; i < 128 && !failed; i++)
        failed = !spool_write(s, ref, 8192, &err);
    ck_assert_msg(failed, "1 MB written to a 64 KiB tmpfs");
    ck_assert_msg(strstr(err.data, strerror(ENOSPC)) != NULL, "%s", err.data);
    check_unusable(s);
    spool_free(s);
    ck_assert_int_eq(dir_entries(dir), 0);

    /* the space is back once the spool is freed */
    s = spool_new(1000, 32768, dir);
    for (int i = 0; i < 4; i++)
        write_ok(s, ref, 8192);
    ck_assert(spool_spilled(s));
    ck_assert(!spool_over(s));
    for (int i = 0; i < 128; i++)    /* past the limit: never written */
        write_ok(s, ref, 8192);
    ck_assert(spool_over(s));
    ck_assert_uint_eq(spool_size(s), 132 * 8192ull);
    spool_free(s);

    buf_free(&err);
    mem_free(ref);
    ck_assert_int_eq(umount(dir), 0);
}
END_TEST

/* The spilled file's descriptor replaced by /dev/full, as a full disk
 * makes it: the next write fails with ENOSPC and the spool is unusable. */
START_TEST(test_disk_full_devfull)
{
    unsigned char *ref = pattern(4096, 9);
    struct spool *s = spool_new(100, BIG_LIMIT, tmpdir);
    write_ok(s, ref, 4096);
    ck_assert(spool_spilled(s));
    int fd = fd_in_dir(tmpdir);
    ck_assert_int_ge(fd, 0);
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(full, 0);
    ck_assert_int_eq(dup2(full, fd), fd);
    close(full);
    struct buf err;
    buf_init(&err);
    ck_assert(!spool_write(s, ref, 4096, &err));
    ck_assert_msg(strstr(err.data, strerror(ENOSPC)) != NULL, "%s", err.data);
    check_unusable(s);
    buf_reset(&err);
    ck_assert(!spool_header(s, "X-B", "c", &err));
    spool_free(s);
    buf_free(&err);
    mem_free(ref);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_small_in_memory);
    tcase_add_test(tc, test_spill_boundary);
    tcase_add_test(tc, test_spill_roundtrip);
    tcase_add_test(tc, test_two_spools);
    tcase_add_test(tc, test_header);
    tcase_add_test(tc, test_limit_exact);
    tcase_add_test(tc, test_limit_disk);
    tcase_add_test(tc, test_limit_memory);
    tcase_add_test(tc, test_dir_missing);
    tcase_add_test(tc, test_dir_is_file);
    tcase_add_test(tc, test_dir_readonly);
    tcase_add_test(tc, test_disk_full_tmpfs);
    tcase_add_test(tc, test_disk_full_devfull);
}

UNIT_MAIN("spool", add_tests)
