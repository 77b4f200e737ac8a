/* test_scanner.c: unit tests of the clamd and spamd clients
 * (milter/scanner.c).
 *
 * The parsers of the answers on their own: the answers real clamd and
 * spamd give (OK, FOUND, clamd's size limit, spamd's Spam: True/False),
 * virus names with spaces and dots, negative scores, long symbol lists
 * (truncated at a comma), and what must be SCAN_FAILED: empty, garbage,
 * NUL and control bytes (never copied into a name, a symbol list or an
 * error), huge input, a missing or malformed Spam: header, a spamd error
 * status.  Each is given an exact-size buffer, so ASan sees any read past
 * len.
 *
 * Then scanner_run() against fake clamd and spamd servers run by the test
 * in threads, on unix sockets in a temporary directory (and one on TCP
 * loopback): clamd's IDSESSION/INSTREAM framing and spamd's SYMBOLS
 * request checked byte for byte against the spooled message; both
 * scanners at once (the slower one sets the time, not the sum); timeouts
 * within their bound; connection refused; garbage answers; clamd's size
 * limit (SCAN_TOO_LARGE, then remembered); a kept clamd session the server
 * closed, or dropped before answering, retried on a new connection;
 * spamd never asked twice; the pool bound (never more connections at once
 * than configured, the wait for a free one bounded by the connect
 * timeout); several threads sharing the scanners without their answers
 * crossing. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "scanner.h"
#include "spool.h"
#include "unit.h"

/* Real answers (clamd's without the session prefix and the NUL). */
#define CLAMD_OK "stream: OK"
#define CLAMD_EICAR "stream: Eicar-Test-Signature.UNOFFICIAL FOUND"
#define CLAMD_LIMIT "INSTREAM size limit exceeded. ERROR"
#define SPAMD_GTUBE                                                                                       \
    "SPAMD/1.1 0 EX_OK\r\nContent-length: 68\r\nSpam: True ; 1003.3 / 5.0\r\n\r\n"                    \
    "GTUBE,MISSING_DATE,MISSING_MID,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO"
#define SPAMD_HAM                                                                                         \
    "SPAMD/1.1 0 EX_OK\r\nContent-length: 33\r\nSpam: False ; -0.0 / 5.0\r\n\r\n"                     \
    "MSGID_SHORT,NO_RECEIVED,NO_RELAYS"

/* rootdir: made once by the runner (removed at the end even when a test
 * fails); tmpdir: each test's own directory in it. */
static char rootdir[40];
static char tmpdir[64];

static void root_setup(void)
{
    snprintf(rootdir, sizeof rootdir, "/tmp/test_scanner.XXXXXX");
    if (mkdtemp(rootdir) == NULL)
        abort();
}

static void rm_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_scanner: could not remove %s\n", tmpdir);
}

static void root_teardown(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s", rootdir);
    rm_tmpdir();
}

static void setup(void)
{
    /* SIGPIPE left at its default (the daemon ignores it, main.c): a write
     * to a closed peer without MSG_NOSIGNAL would end the test */
    snprintf(tmpdir, sizeof tmpdir, "%s/t.XXXXXX", rootdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    rm_tmpdir();
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A string of size bytes is terminated inside and holds no control
 * character (what goes into a header or a log line). */
static void check_clean_str(const char *what, const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    ck_assert_msg(n < size, "%s not terminated", what);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg((unsigned char)s[i] >= 0x20 && s[i] != 0x7f, "%s has control byte 0x%02x at %zu: %s", what,
                      (unsigned char)s[i], i, s);
}

static void check_result_strings(const struct scan_result *r)
{
    check_clean_str("name", r->name, sizeof r->name);
    check_clean_str("symbols", r->symbols, sizeof r->symbols);
    check_clean_str("error", r->error, sizeof r->error);
}

/* --- the parsers ---------------------------------------------------------- */

/* Parse len bytes of text from an exact-size heap copy (as scanner_run
 * does, into a zeroed result). */
static void parse(enum scanner_kind kind, const char *text, size_t len, struct scan_result *r)
{
    char *copy = mem_alloc(len ? len : 1);
    memcpy(copy, text, len);
    memset(r, 0, sizeof *r);
    if (kind == SCANNER_CLAMD)
        scanner_clamd_parse(copy, len, r);
    else
        scanner_spamd_parse(copy, len, r);
    mem_free(copy);
    check_result_strings(r);
}

static void clamd(const char *text, struct scan_result *r)
{
    parse(SCANNER_CLAMD, text, strlen(text), r);
}

static void spamd(const char *text, struct scan_result *r)
{
    parse(SCANNER_SPAMD, text, strlen(text), r);
}

/* Answers that must be SCAN_FAILED with an error; those that are not are
 * listed in wrong (all reported at once). */
static void parse_failed(enum scanner_kind kind, const char *text, size_t len, struct buf *wrong)
{
    struct scan_result r;
    parse(kind, text, len, &r);
    if (r.status != SCAN_FAILED || r.error[0] == '\0') {
        buf_printf(wrong, "\n  \"");
        for (size_t i = 0; i < len && i < 80; i++)
            buf_printf(wrong, isprint((unsigned char)text[i]) ? "%c" : "\\x%02x", (unsigned char)text[i]);
        buf_printf(wrong, "\": status %d, error \"%s\"", r.status, r.error);
    }
}

static void clamd_failed(const char *text, size_t len, struct buf *wrong)
{
    parse_failed(SCANNER_CLAMD, text, len, wrong);
}

static void spamd_failed(const char *text, size_t len, struct buf *wrong)
{
    parse_failed(SCANNER_SPAMD, text, len, wrong);
}

START_TEST(test_clamd_parse_ok)
{
    struct scan_result r;
    clamd(CLAMD_OK, &r);
    ck_assert_int_eq(r.status, SCAN_CLEAN);
    ck_assert_str_eq(r.name, "");
    /* len, not the NUL, ends the answer */
    parse(SCANNER_CLAMD, "stream: OKAY", 10, &r);
    ck_assert_int_eq(r.status, SCAN_CLEAN);
}
END_TEST

START_TEST(test_clamd_parse_found)
{
    static const char *const names[] = {
        "Eicar-Test-Signature.UNOFFICIAL",
        "Win.Test.EICAR_HDB-1",
        "Heuristics.Phishing.Email.SpoofedDomain",
        "Some Name With Spaces",
        "Sanesecurity.Foxhole.Zip_fs117.UNOFFICIAL",
        "x",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "stream: %s FOUND", names[i]);
        struct scan_result r;
        clamd(text, &r);
        ck_assert_msg(r.status == SCAN_FOUND, "\"%s\": status %d", text, r.status);
        ck_assert_str_eq(r.name, names[i]);
    }
}
END_TEST

START_TEST(test_clamd_parse_too_large)
{
    struct scan_result r;
    clamd(CLAMD_LIMIT, &r);
    ck_assert_int_eq(r.status, SCAN_TOO_LARGE);
    ck_assert_msg(r.error[0] != '\0', "no error text for the size limit");
}
END_TEST

START_TEST(test_clamd_parse_bad)
{
    struct buf wrong;
    buf_init(&wrong);
    static const char *const bad[] = {
        "",
        "stream:",
        "stream: ",
        "garbage",
        "OK",
        "FOUND",
        "stream: FOUND",
        "stream: OK extra",
        "stream: Can't allocate memory ERROR",
        "stream: lstat() failed: No such file or directory. ERROR",
        "UNKNOWN COMMAND",
        "PONG",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        clamd_failed(bad[i], strlen(bad[i]), &wrong);

    /* the text of the answer is in the error */
    struct scan_result r;
    clamd("stream: Can't allocate memory ERROR", &r);
    ck_assert_msg(strstr(r.error, "allocate memory") != NULL, "%s", r.error);

    /* NUL and binary bytes: failed, and the error stays printable */
    clamd_failed("stream: O\0K", 11, &wrong);
    clamd_failed("\0\0\0\0", 4, &wrong);
    clamd_failed("\x01\x02\xff\xfe\r\n\x1b[2J", 9, &wrong);
    clamd_failed("stream: OK\r\nX-Injected: yes", 27, &wrong);

    /* huge */
    size_t huge = 1 << 20;
    char *big = mem_alloc(huge);
    memset(big, 'A', huge);
    clamd_failed(big, huge, &wrong);
    memcpy(big, "stream: ", 8);
    clamd_failed(big, huge, &wrong);
    mem_free(big);
    ck_assert_msg(wrong.len == 0, "clamd answers not SCAN_FAILED:%s", wrong.data);
    buf_free(&wrong);
}
END_TEST

/* Names that are not one printable line, or do not fit: never copied as
 * they are. */
START_TEST(test_clamd_parse_odd_names)
{
    struct scan_result r;
    clamd("stream: Evil\r\nX-Injected: yes FOUND", &r);
    ck_assert(r.status == SCAN_FOUND || r.status == SCAN_FAILED);
    parse(SCANNER_CLAMD, "stream: Nul\0Name FOUND", 22, &r);
    ck_assert(r.status == SCAN_FOUND || r.status == SCAN_FAILED);

    struct buf t;
    buf_init(&t);
    buf_puts(&t, "stream: ");
    for (int i = 0; i < 500; i++)
        buf_putc(&t, (char)('A' + i % 26));
    buf_puts(&t, " FOUND");
    clamd(t.data, &r);
    ck_assert_msg(r.status == SCAN_FOUND || r.status == SCAN_FAILED, "status %d", r.status);
    if (r.status == SCAN_FOUND)
        ck_assert_msg(strncmp(r.name, "ABCDEFGHIJ", 10) == 0, "name \"%s\"", r.name);
    buf_free(&t);
}
END_TEST

START_TEST(test_spamd_parse_real)
{
    struct scan_result r;
    spamd(SPAMD_GTUBE, &r);
    ck_assert_int_eq(r.status, SCAN_FOUND);
    ck_assert_double_eq_tol(r.score, 1003.3, 1e-9);
    ck_assert_double_eq_tol(r.required, 5.0, 1e-9);
    ck_assert_str_eq(r.symbols, "GTUBE,MISSING_DATE,MISSING_MID,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO");

    spamd(SPAMD_HAM, &r);
    ck_assert_int_eq(r.status, SCAN_CLEAN);
    ck_assert_double_eq_tol(r.score, 0.0, 1e-9);
    ck_assert_double_eq_tol(r.required, 5.0, 1e-9);
    ck_assert_str_eq(r.symbols, "MSGID_SHORT,NO_RECEIVED,NO_RELAYS");
}
END_TEST

START_TEST(test_spamd_parse_values)
{
    struct scan_result r;
    spamd("SPAMD/1.1 0 EX_OK\r\nContent-length: 9\r\nSpam: False ; -12.5 / 6.5\r\n\r\nALL_TRUST", &r);
    ck_assert_int_eq(r.status, SCAN_CLEAN);
    ck_assert_double_eq_tol(r.score, -12.5, 1e-9);
    ck_assert_double_eq_tol(r.required, 6.5, 1e-9);
    ck_assert_str_eq(r.symbols, "ALL_TRUST");

    /* no symbols at all */
    spamd("SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: False ; 0.5 / 5.0\r\n\r\n", &r);
    ck_assert_int_eq(r.status, SCAN_CLEAN);
    ck_assert_double_eq_tol(r.score, 0.5, 1e-9);
    ck_assert_str_eq(r.symbols, "");

    /* headers in another order, another protocol version */
    spamd("SPAMD/1.5 0 EX_OK\r\nSpam: True ; 7.2 / 5.0\r\nContent-length: 3\r\n\r\nA,B", &r);
    ck_assert_int_eq(r.status, SCAN_FOUND);
    ck_assert_double_eq_tol(r.score, 7.2, 1e-9);
    ck_assert_str_eq(r.symbols, "A,B");

    /* a line end after the symbols is not part of them */
    spamd("SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: True ; 7.2 / 5.0\r\n\r\nA,B\r\n", &r);
    ck_assert_int_eq(r.status, SCAN_FOUND);
    ck_assert_msg(strncmp(r.symbols, "A,B", 3) == 0, "symbols \"%s\"", r.symbols);
}
END_TEST

/* A symbol list longer than the buffer is cut after a whole symbol. */
START_TEST(test_spamd_parse_symbols_truncated)
{
    struct buf syms, ans;
    buf_init(&syms);
    buf_init(&ans);
    for (int i = 0; syms.len < 3000; i++)
        buf_printf(&syms, "%sRULE_NUMBER_%d", i ? "," : "", i);
    buf_printf(&ans, "SPAMD/1.1 0 EX_OK\r\nContent-length: %zu\r\nSpam: True ; 20.0 / 5.0\r\n\r\n%s", syms.len,
               syms.data);
    struct scan_result r;
    spamd(ans.data, &r);
    ck_assert_int_eq(r.status, SCAN_FOUND);
    size_t n = strlen(r.symbols);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, sizeof r.symbols);
    ck_assert_msg(strncmp(syms.data, r.symbols, n) == 0, "symbols not a prefix: %s", r.symbols);
    ck_assert_msg(syms.data[n] == ',', "cut inside a symbol: ...%s", r.symbols + (n > 20 ? n - 20 : 0));
    ck_assert_msg(n + 30 > sizeof r.symbols, "cut too early: %zu bytes of %zu", n, sizeof r.symbols);

    /* one symbol longer than the buffer: nothing of it */
    buf_reset(&syms);
    for (int i = 0; i < 1500; i++)
        buf_putc(&syms, 'S');
    buf_reset(&ans);
    buf_printf(&ans, "SPAMD/1.1 0 EX_OK\r\nContent-length: %zu\r\nSpam: True ; 20.0 / 5.0\r\n\r\n%s", syms.len,
               syms.data);
    spamd(ans.data, &r);
    ck_assert_int_eq(r.status, SCAN_FOUND);
    ck_assert_msg(strlen(r.symbols) < sizeof r.symbols, "symbols overflow");
    buf_free(&syms);
    buf_free(&ans);
}
END_TEST

/* Symbols are written into X-Spam-Status: no line break gets through. */
START_TEST(test_spamd_parse_symbols_control)
{
    struct scan_result r;
    const char *a = "SPAMD/1.1 0 EX_OK\r\nContent-length: 20\r\nSpam: True ; 7.0 / 5.0\r\n\r\nA,B\r\nX-Injected: yes";
    spamd(a, &r);
    ck_assert(r.status == SCAN_FOUND || r.status == SCAN_FAILED);
    const char b[] = "SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: True ; 7.0 / 5.0\r\n\r\nA\0B\x01C";
    parse(SCANNER_SPAMD, b, sizeof b - 1, &r);
    ck_assert(r.status == SCAN_FOUND || r.status == SCAN_FAILED);
}
END_TEST

START_TEST(test_spamd_parse_bad)
{
    struct buf wrong;
    buf_init(&wrong);
    static const char *const bad[] = {
        "",
        "garbage",
        "SPAMD/1.1 0 EX_OK\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\n\r\nA,B,C",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; abc / 5.0\r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; 7.2\r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; 7.2 / \r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True 7.2 / 5.0\r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: Maybe ; 7.2 / 5.0\r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam:\r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; nan / 5.0\r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; inf / 5.0\r\n\r\n",
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; 7.2 / nan\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-length: 0\r\nSpam: True ; 7.2 / 5.0\r\n\r\n",
        "SPAMD/1.1 EX_OK\r\nSpam: True ; 7.2 / 5.0\r\n\r\n",
        "SPAMD/1.0 76 Bad header line: GARBAGE\r\n",
        "SPAMD/1.1 74 EX_NOHOST\r\nSpam: True ; 7.2 / 5.0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        spamd_failed(bad[i], strlen(bad[i]), &wrong);

    /* the status is in the error */
    struct scan_result r;
    spamd("SPAMD/1.0 76 Bad header line: GARBAGE\r\n", &r);
    ck_assert_msg(strstr(r.error, "76") != NULL || strstr(r.error, "Bad header line") != NULL, "%s", r.error);

    /* binary and NUL bytes */
    spamd_failed("\0\0\0\0\0\0", 6, &wrong);
    static const char nul_header[] = "SPAMD/1.1 0 EX_OK\r\n\0pam: True ; 7.2 / 5.0\r\n\r\n";
    spamd_failed(nul_header, sizeof nul_header - 1, &wrong);
    spamd_failed("\x01\x02\xff\xfe\r\n\x1b[2J\r\n\r\n", 13, &wrong);

    /* huge */
    size_t huge = 1 << 20;
    char *big = mem_alloc(huge);
    memset(big, 'B', huge);
    spamd_failed(big, huge, &wrong);
    memcpy(big, "SPAMD/1.1 0 EX_OK\r\nX-Long: ", 27);
    spamd_failed(big, huge, &wrong);
    mem_free(big);
    ck_assert_msg(wrong.len == 0, "spamd answers not SCAN_FAILED:%s", wrong.data);
    buf_free(&wrong);
}
END_TEST

/* --- scanner_new ------------------------------------------------------------ */

static struct scanner *scanner_make(enum scanner_kind kind, const char *endpoint, uint64_t connect_ms,
                                    uint64_t timeout_ms, unsigned connections)
{
    struct scanner_cfg cfg = { .kind = kind, .endpoint = endpoint, .connect_timeout_ms = connect_ms,
                               .timeout_ms = timeout_ms, .connections = connections };
    struct buf err;
    buf_init(&err);
    struct scanner *s = scanner_new(&cfg, &err);
    ck_assert_msg(s != NULL, "scanner_new(%s): %s", endpoint, err.data);
    buf_free(&err);
    return s;
}

START_TEST(test_new)
{
    static const char *const good[] = { "unix:/run/clamav/clamd.ctl", "inet:127.0.0.1:783", "inet:localhost:3310" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct scanner *s = scanner_make(SCANNER_CLAMD, good[i], 100, 100, 1);
        ck_assert_str_eq(scanner_name(s), "clamd");
        scanner_free(s);
        s = scanner_make(SCANNER_SPAMD, good[i], 100, 100, 1);
        ck_assert_str_eq(scanner_name(s), "spamd");
        scanner_free(s);
    }
    scanner_free(NULL);

    /* the configuration is copied */
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "unix:/nonexistent/x.sock");
    struct scanner_cfg cfg = { .kind = SCANNER_CLAMD, .endpoint = endpoint, .connect_timeout_ms = 100,
                               .timeout_ms = 100, .connections = 1 };
    struct buf err;
    buf_init(&err);
    struct scanner *s = scanner_new(&cfg, &err);
    ck_assert_ptr_nonnull(s);
    memset(endpoint, 'x', sizeof endpoint - 1);
    cfg.endpoint = NULL;
    struct scan_result r;
    struct spool *sp = spool_new(100, 100, tmpdir);
    scanner_run(s, NULL, "u", sp, &r, &(struct scan_result){ 0 });
    ck_assert_int_eq(r.status, SCAN_FAILED);
    ck_assert_msg(strstr(r.error, strerror(ENOENT)) != NULL, "%s", r.error);
    spool_free(sp);
    scanner_free(s);
    buf_free(&err);
}
END_TEST

START_TEST(test_new_bad)
{
    char longpath[300];
    snprintf(longpath, sizeof longpath, "unix:/%0200d", 0);
    const char *bad[] = { "", "bogus", "unix:", "inet:", "inet:127.0.0.1", "inet:127.0.0.1:", "inet::783",
                          "inet:127.0.0.1:abc", "inet:127.0.0.1:65536", "inet:127.0.0.1:-1", "inet:127.0.0.1:0",
                          "tcp:127.0.0.1:783", longpath };
    struct buf accepted;
    buf_init(&accepted);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct scanner_cfg cfg = { .kind = SCANNER_CLAMD, .endpoint = bad[i], .connect_timeout_ms = 100,
                                   .timeout_ms = 100, .connections = 1 };
        struct buf err;
        buf_init(&err);
        struct scanner *s = scanner_new(&cfg, &err);
        if (s != NULL)
            buf_printf(&accepted, " \"%s\"", bad[i]);
        else
            ck_assert_msg(err.len > 0, "endpoint \"%s\": no error", bad[i]);
        scanner_free(s);
        buf_free(&err);
    }
    ck_assert_msg(accepted.len == 0, "malformed endpoints accepted:%s", accepted.data);
    buf_free(&accepted);
}
END_TEST

/* --- fake servers -------------------------------------------------------------- */

enum fmode {
    FM_OK,            /* answer every request */
    FM_SILENT,        /* read the request, never answer (until the client leaves) */
    FM_HANGUP,        /* read the request, close without answering */
    FM_PARTIAL,       /* spamd: read the request, send the answer's first line, close */
    FM_CLOSE_AFTER,   /* clamd: answer the first request, then close the session */
    FM_HANGUP_SECOND, /* clamd: answer the first request, read the second whole, close */
    FM_LIMIT,         /* clamd: past f->limit bytes of stream, answer the size limit, close */
};

#define FK_CONNS 64

/* Two fake servers meet before answering: each waits (up to 2 s) for the
 * other's request; met only when both requests were there at once. */
struct fk_meet {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;
    bool gave_up, met;
};

struct fake {
    enum scanner_kind kind;
    char path[108];
    char endpoint[160];
    int lfd;
    int stop[2];
    pthread_t acceptor;
    pthread_t handlers[FK_CONNS];
    int n_handlers;
    /* behaviour, set before fake_start() */
    enum fmode mode[FK_CONNS];    /* by connection, in accept order */
    const char *answer;           /* clamd: without "N: "; spamd: all of it; NULL: OK / ham */
    bool echo;                    /* answer with the message's first line (as the virus name or the symbols) */
    int delay_ms;                 /* before each answer */
    struct fk_meet *meet;         /* before each answer, NULL: none */
    size_t limit;                 /* FM_LIMIT */
    /* observed, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int conns, cur, max_cur, closed, probes;
    int streams;                  /* requests begun (clamd: INSTREAM commands) */
    int requests;                 /* messages received whole */
    struct buf body;              /* the last message's bytes */
    char user[128];
    size_t chunks, max_chunk;     /* clamd: the last stream's */
    struct buf proto;             /* protocol errors */
};

struct fk_conn {
    struct fake *f;
    int fd;
    int idx;
    bool released;
};

__attribute__((format(printf, 2, 3))) static void fk_proto(struct fake *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&f->mu);
    buf_vprintf(&f->proto, fmt, ap);
    buf_puts(&f->proto, "; ");
    pthread_mutex_unlock(&f->mu);
    va_end(ap);
}

/* Read exactly n bytes: false on the peer's end, an error or the stop. */
static bool fk_read(struct fake *f, int fd, void *p, size_t n)
{
    unsigned char *q = p;
    while (n > 0) {
        struct pollfd pf[2] = { { fd, POLLIN, 0 }, { f->stop[0], POLLIN, 0 } };
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (pf[1].revents)
            return false;
        ssize_t r = recv(fd, q, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        q += r;
        n -= (size_t)r;
    }
    return true;
}

static void fk_send(int fd, const void *p, size_t n)
{
    const char *q = p;
    while (n > 0) {
        ssize_t r = send(fd, q, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        q += r;
        n -= (size_t)r;
    }
}

/* Wait ms, or less when stopped. */
static void fk_meet(struct fk_meet *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    if (++m->arrived == 2) {
        m->met = !m->gave_up;
        pthread_cond_broadcast(&m->cv);
    } else {
        struct timespec abs;
        clock_gettime(CLOCK_REALTIME, &abs);
        abs.tv_sec += 2;
        while (m->arrived < 2)
            if (pthread_cond_timedwait(&m->cv, &m->mu, &abs) != 0) {
                m->gave_up = true;
                break;
            }
    }
    pthread_mutex_unlock(&m->mu);
}

static void fk_sleep(struct fake *f, int ms)
{
    struct pollfd p = { f->stop[0], POLLIN, 0 };
    int64_t end = now_us() + (int64_t)ms * 1000;
    for (int64_t left = end - now_us(); left > 0; left = end - now_us())
        if (poll(&p, 1, (int)((left + 999) / 1000)) > 0)
            return;
}

/* Read and drop until the client leaves or the server stops. */
static void fk_drain(struct fake *f, int fd)
{
    char junk[4096];
    for (;;) {
        struct pollfd pf[2] = { { fd, POLLIN, 0 }, { f->stop[0], POLLIN, 0 } };
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            return;
        if (pf[1].revents)
            return;
        if (pf[0].revents && recv(fd, junk, sizeof junk, 0) <= 0)
            return;
    }
}

/* This connection no longer counts as open (before its last answer, so a
 * client that reads the answer and connects again is never counted twice). */
static void fk_release(struct fk_conn *c)
{
    if (c->released)
        return;
    c->released = true;
    pthread_mutex_lock(&c->f->mu);
    c->f->cur--;
    pthread_cond_broadcast(&c->f->cv);
    pthread_mutex_unlock(&c->f->mu);
}

static void fk_probe_seen(struct fk_conn *c)
{
    struct fake *f = c->f;
    pthread_mutex_lock(&f->mu);
    f->probes++;
    f->conns--;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void fk_got_message(struct fake *f, const struct buf *body, const char *user)
{
    pthread_mutex_lock(&f->mu);
    f->requests++;
    buf_reset(&f->body);
    buf_add(&f->body, body->data, body->len);
    if (user != NULL)
        snprintf(f->user, sizeof f->user, "%s", user);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* The message's first line (for the echo answers). */
static void fk_first_line(const struct buf *body, char *out, size_t size)
{
    size_t n = strcspn(body->data, "\r\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, body->data, n);
    out[n] = '\0';
}

/* A NUL- or newline-terminated clamd command ("zINSTREAM", "nPING"). */
static bool fk_clamd_cmd(struct fake *f, int fd, char *cmd, size_t size)
{
    size_t n = 0;
    char end = '\0';
    for (;;) {
        char ch;
        if (!fk_read(f, fd, &ch, 1))
            return false;
        if (n == 0)
            end = ch == 'n' ? '\n' : '\0';
        else if (ch == end)
            break;
        if (n + 1 >= size) {
            fk_proto(f, "clamd command too long: %s", "");
            return false;
        }
        cmd[n++] = ch;
    }
    cmd[n] = '\0';
    return true;
}

static void fk_clamd_answer(struct fk_conn *c, bool session, int num, const char *answer)
{
    char msg[512];
    int n = session ? snprintf(msg, sizeof msg, "%d: %s", num, answer) : snprintf(msg, sizeof msg, "%s", answer);
    fk_send(c->fd, msg, (size_t)n + 1);
}

/* One INSTREAM: its chunks into body.  False when the stream ended early
 * (or FM_LIMIT answered). */
static bool fk_clamd_stream(struct fk_conn *c, enum fmode mode, bool session, int num, struct buf *body)
{
    struct fake *f = c->f;
    size_t chunks = 0, max_chunk = 0;
    buf_reset(body);
    for (;;) {
        unsigned char hdr[4];
        if (!fk_read(f, c->fd, hdr, 4)) {
            fk_proto(f, "clamd: stream ended without its zero-length chunk%s", "");
            return false;
        }
        uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        if (len == 0)
            break;
        if (len > SCANNER_CHUNK) {
            fk_proto(f, "clamd: chunk larger than SCANNER_CHUNK%s", "");
            return false;
        }
        buf_reserve(body, len);
        if (!fk_read(f, c->fd, body->data + body->len, len)) {
            fk_proto(f, "clamd: stream ended inside a chunk%s", "");
            return false;
        }
        body->len += len;
        body->data[body->len] = '\0';
        chunks++;
        if (len > max_chunk)
            max_chunk = len;
        if (mode == FM_LIMIT && body->len > f->limit) {
            fk_clamd_answer(c, session, num, CLAMD_LIMIT);
            return false;
        }
    }
    pthread_mutex_lock(&f->mu);
    f->chunks = chunks;
    f->max_chunk = max_chunk;
    pthread_mutex_unlock(&f->mu);
    return true;
}

static void fk_clamd(struct fk_conn *c, enum fmode mode)
{
    struct fake *f = c->f;
    struct buf body;
    buf_init(&body);
    bool session = false;
    int num = 0;
    char cmd[64];
    while (fk_clamd_cmd(f, c->fd, cmd, sizeof cmd)) {
        if (strcmp(cmd, "PROBE") == 0) {
            fk_probe_seen(c);
            break;
        }
        if (strcmp(cmd, "zIDSESSION") == 0 && !session && num == 0) {
            session = true;
            continue;
        }
        if (strcmp(cmd, "zEND") == 0 && session)
            break;
        num++;
        if (strcmp(cmd, "zPING") == 0) {
            fk_clamd_answer(c, session, num, "PONG");
            continue;
        }
        if (strcmp(cmd, "zINSTREAM") != 0) {
            fk_proto(f, "clamd: unexpected command \"%s\"", cmd);
            break;
        }
        pthread_mutex_lock(&f->mu);
        f->streams++;
        pthread_mutex_unlock(&f->mu);
        if (!fk_clamd_stream(c, mode, session, num, &body))
            break;
        fk_got_message(f, &body, NULL);
        if (mode == FM_SILENT) {
            fk_drain(f, c->fd);
            break;
        }
        if (mode == FM_HANGUP || (mode == FM_HANGUP_SECOND && num > 1))
            break;
        fk_meet(f->meet);
        fk_sleep(f, f->delay_ms);
        char answer[300];
        if (f->echo) {
            char line[100];
            fk_first_line(&body, line, sizeof line);
            snprintf(answer, sizeof answer, "stream: %s FOUND", line);
        } else {
            snprintf(answer, sizeof answer, "%s", f->answer != NULL ? f->answer : CLAMD_OK);
        }
        fk_clamd_answer(c, session, num, answer);
        if (!session || mode == FM_CLOSE_AFTER)
            break;
    }
    buf_free(&body);
}

/* spamd: "SYMBOLS SPAMC/1.5\r\n", headers, an empty line, the body. */
static void fk_spamd(struct fk_conn *c, enum fmode mode)
{
    struct fake *f = c->f;
    struct buf head, body;
    buf_init(&head);
    buf_init(&body);
    while (head.len < 8192 && (head.len < 4 || strcmp(head.data + head.len - 4, "\r\n\r\n") != 0)) {
        char ch;
        if (!fk_read(f, c->fd, &ch, 1))
            goto out;
        buf_putc(&head, ch);
    }
    if (head.len < 4 || strcmp(head.data + head.len - 4, "\r\n\r\n") != 0) {
        fk_proto(f, "spamd: request headers too long or cut: %s", head.data);
        goto out;
    }
    if (strncmp(head.data, "PROBE\r\n", 7) == 0) {
        fk_probe_seen(c);
        goto out;
    }
    if (strncmp(head.data, "SYMBOLS SPAMC/1.5\r\n", 19) != 0)
        fk_proto(f, "spamd: request line: %s", head.data);
    long long clen = -1;
    char user[128] = "";
    for (char *line = strstr(head.data, "\r\n") + 2; *line != '\r'; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-length:", 15) == 0)
            clen = atoll(line + 15);
        else if (strncasecmp(line, "User:", 5) == 0)
            sscanf(line + 5, " %127[^\r]", user);
    }
    pthread_mutex_lock(&f->mu);
    f->streams++;
    pthread_mutex_unlock(&f->mu);
    if (clen < 0) {
        fk_proto(f, "spamd: no Content-length: %s", head.data);
        goto out;
    }
    buf_reserve(&body, (size_t)clen);
    if (!fk_read(f, c->fd, body.data, (size_t)clen)) {
        fk_proto(f, "spamd: body shorter than Content-length%s", "");
        goto out;
    }
    body.len = (size_t)clen;
    body.data[body.len] = '\0';
    fk_got_message(f, &body, user);
    if (mode == FM_SILENT) {
        fk_drain(f, c->fd);
        goto out;
    }
    if (mode == FM_HANGUP)
        goto out;
    const char *answer = f->answer != NULL ? f->answer : SPAMD_HAM;
    char echo[400];
    if (f->echo) {
        char line[100];
        fk_first_line(&body, line, sizeof line);
        snprintf(echo, sizeof echo, "SPAMD/1.1 0 EX_OK\r\nContent-length: %zu\r\nSpam: False ; 1.0 / 5.0\r\n\r\n%s",
                 strlen(line), line);
        answer = echo;
    }
    if (mode == FM_PARTIAL) {
        fk_send(c->fd, answer, strcspn(answer, "\n") + 1);
        goto out;
    }
    fk_meet(f->meet);
    fk_sleep(f, f->delay_ms);
    fk_release(c);
    fk_send(c->fd, answer, strlen(answer));
out:
    buf_free(&head);
    buf_free(&body);
}

static void *fk_conn_main(void *arg)
{
    struct fk_conn *c = arg;
    struct fake *f = c->f;
    enum fmode mode = f->mode[c->idx < FK_CONNS ? c->idx : FK_CONNS - 1];
    if (f->kind == SCANNER_CLAMD)
        fk_clamd(c, mode);
    else
        fk_spamd(c, mode);
    fk_release(c);
    close(c->fd);
    pthread_mutex_lock(&f->mu);
    f->closed++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    mem_free(c);
    return NULL;
}

static void *fk_accept_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        struct pollfd pf[2] = { { f->lfd, POLLIN, 0 }, { f->stop[0], POLLIN, 0 } };
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        if (!(pf[0].revents & POLLIN))
            continue;
        int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        if (f->n_handlers == FK_CONNS) {
            fk_proto(f, "too many connections%s", "");
            close(fd);
            continue;
        }
        struct fk_conn *c = mem_alloc(sizeof *c);
        c->f = f;
        c->fd = fd;
        pthread_mutex_lock(&f->mu);
        c->idx = f->conns + f->probes;
        f->conns++;
        f->cur++;
        if (f->cur > f->max_cur)
            f->max_cur = f->cur;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (pthread_create(&f->handlers[f->n_handlers], NULL, fk_conn_main, c) != 0) {
            close(fd);
            mem_free(c);
            continue;
        }
        f->n_handlers++;
    }
    return NULL;
}

static void fake_init(struct fake *f, enum scanner_kind kind)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->lfd = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    buf_init(&f->body);
    buf_init(&f->proto);
    ck_assert_int_eq(pipe2(f->stop, O_CLOEXEC), 0);
}

static void fake_listen(struct fake *f)
{
    ck_assert_int_eq(listen(f->lfd, 64), 0);
    ck_assert_int_eq(pthread_create(&f->acceptor, NULL, fk_accept_main, f), 0);
}

/* A fake server of kind on a unix socket named after it in tmpdir. */
static void fake_start(struct fake *f, enum scanner_kind kind, const char *name)
{
    fake_init(f, kind);
    snprintf(f->path, sizeof f->path, "%s/%s.sock", tmpdir, name);
    snprintf(f->endpoint, sizeof f->endpoint, "unix:%s", f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->lfd, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    fake_listen(f);
}

/* The same on 127.0.0.1, a port the kernel picks. */
static void fake_start_tcp(struct fake *f, enum scanner_kind kind)
{
    fake_init(f, kind);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->lfd, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &len), 0);
    snprintf(f->endpoint, sizeof f->endpoint, "inet:127.0.0.1:%u", ntohs(sa.sin_port));
    fake_listen(f);
}

static void fake_stop(struct fake *f)
{
    ck_assert_int_eq(write(f->stop[1], "x", 1), 1);
    pthread_join(f->acceptor, NULL);
    for (int i = 0; i < f->n_handlers; i++)
        pthread_join(f->handlers[i], NULL);
    close(f->lfd);
    if (f->path[0] != '\0')
        unlink(f->path);
    close(f->stop[0]);
    close(f->stop[1]);
    ck_assert_msg(f->proto.len == 0, "fake %s: %s", f->kind == SCANNER_CLAMD ? "clamd" : "spamd", f->proto.data);
    buf_free(&f->body);
    buf_free(&f->proto);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
}

/* Wait (at most 10 s) until *field >= n. */
static void fake_wait(struct fake *f, const int *field, int n, const char *what)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&f->mu);
    while (*field < n && pthread_cond_timedwait(&f->cv, &f->mu, &dl) == 0) {
    }
    int v = *field;
    pthread_mutex_unlock(&f->mu);
    ck_assert_msg(v >= n, "fake server: waited for %s >= %d, got %d", what, n, v);
}

static int fake_get(struct fake *f, const int *field)
{
    pthread_mutex_lock(&f->mu);
    int v = *field;
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* Connections made by the client so far: a probe connection of ours is
 * queued behind any the client made, so once the server saw it, it saw
 * them all. */
static int fake_client_conns(struct fake *f)
{
    int probes = fake_get(f, &f->probes);
    int fd = socket(f->path[0] ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    if (f->path[0]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    } else {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        sa.sin_port = htons((uint16_t)atoi(strrchr(f->endpoint, ':') + 1));
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    }
    if (f->kind == SCANNER_CLAMD)
        fk_send(fd, "PROBE", 6);
    else
        fk_send(fd, "PROBE\r\n\r\n", 9);
    fake_wait(f, &f->probes, probes + 1, "probes");
    close(fd);
    return fake_get(f, &f->conns);
}

/* --- messages --------------------------------------------------------------- */

/* A message of size bytes, first line "id\r\n", then varied bytes (NULs
 * included), in a spool spilled to disk past mem_max. */
static struct spool *msg_make(const char *id, size_t size, size_t mem_max, struct buf *ref)
{
    buf_reset(ref);
    buf_printf(ref, "%s\r\n", id);
    uint32_t x = (uint32_t)size * 2654435761u + 7;
    while (ref->len < size) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf_putc(ref, (char)x);
    }
    ref->len = size;
    ref->data[size] = '\0';
    struct spool *s = spool_new(mem_max, UINT64_MAX, tmpdir);
    struct buf err;
    buf_init(&err);
    for (size_t off = 0; off < size; off += 1000)
        ck_assert_msg(spool_write(s, ref->data + off, size - off < 1000 ? size - off : 1000, &err), "%s", err.data);
    buf_free(&err);
    ck_assert_uint_eq(spool_size(s), size);
    return s;
}

static void check_body(struct fake *f, const struct buf *ref)
{
    pthread_mutex_lock(&f->mu);
    bool same = f->body.len == ref->len && memcmp(f->body.data, ref->data, ref->len) == 0;
    size_t got = f->body.len;
    pthread_mutex_unlock(&f->mu);
    ck_assert_msg(same, "%s received %zu bytes differing from the %zu of the message",
                  f->kind == SCANNER_CLAMD ? "clamd" : "spamd", got, ref->len);
}

static void run(struct scanner *av, struct scanner *spam, const char *user, const struct spool *msg,
                struct scan_result *ar, struct scan_result *sr)
{
    memset(ar, 0x5a, sizeof *ar);
    memset(sr, 0x5a, sizeof *sr);
    scanner_run(av, spam, user, msg, ar, sr);
    check_result_strings(ar);
    check_result_strings(sr);
}

#define ck_status(r, st)                                                                                     \
    ck_assert_msg((r).status == (st), "status %d, expected %s (error \"%s\")", (r).status, #st, (r).error)

/* --- scanner_run ------------------------------------------------------------------ */

START_TEST(test_run_none)
{
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("none", 100, 4096, &ref);
    struct scan_result ar, sr;
    run(NULL, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_NOT_RUN);
    ck_status(sr, SCAN_NOT_RUN);
    spool_free(m);
    buf_free(&ref);
}
END_TEST

/* Both at once; the bytes and the framing as the servers saw them; the
 * clamd session kept for the next message, spamd's connection not. */
START_TEST(test_run_both)
{
    struct fake fc, fs;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 2000, 2);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 500, 2000, 2);
    struct buf ref;
    buf_init(&ref);

    /* 200 KB, spilled: several chunks */
    struct spool *m = msg_make("first", 200000, 4096, &ref);
    ck_assert(spool_spilled(m));
    struct scan_result ar, sr;
    run(av, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    ck_status(sr, SCAN_CLEAN);
    ck_assert_double_eq_tol(sr.score, 0.0, 1e-9);
    ck_assert_double_eq_tol(sr.required, 5.0, 1e-9);
    ck_assert_str_eq(sr.symbols, "MSGID_SHORT,NO_RECEIVED,NO_RELAYS");
    ck_assert_int_gt(ar.elapsed_us, 0);
    ck_assert_int_gt(sr.elapsed_us, 0);
    ck_assert_int_lt(ar.elapsed_us, 2000000);
    check_body(&fc, &ref);
    check_body(&fs, &ref);
    ck_assert_str_eq(fs.user, "acme");
    ck_assert_uint_ge(fc.chunks, 200000 / SCANNER_CHUNK + 1);
    ck_assert_uint_le(fc.max_chunk, SCANNER_CHUNK);
    spool_free(m);

    /* in memory, small: the same clamd session (answer "2: ...") */
    m = msg_make("second", 3000, 4096, &ref);
    ck_assert(!spool_spilled(m));
    run(av, spam, "other-tenant", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    ck_status(sr, SCAN_CLEAN);
    check_body(&fc, &ref);
    check_body(&fs, &ref);
    ck_assert_str_eq(fs.user, "other-tenant");
    ck_assert_uint_eq(fc.chunks, 1);

    /* a User: that would add a header line of its own */
    run(NULL, spam, "evil\r\nUser: root", m, &ar, &sr);
    ck_status(sr, SCAN_CLEAN);
    ck_assert_msg(strncmp(fs.user, "evil", 4) == 0, "User: %s", fs.user);
    ck_assert_int_eq(fake_get(&fs, &fs.requests), 3);
    spool_free(m);

    /* empty */
    m = msg_make("", 0, 4096, &ref);
    run(av, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    ck_status(sr, SCAN_CLEAN);
    ck_assert_int_eq(fake_get(&fs, &fs.requests), 4);
    check_body(&fc, &ref);
    check_body(&fs, &ref);
    spool_free(m);

    ck_assert_int_eq(fake_get(&fc, &fc.requests), 3);
    ck_assert_int_eq(fake_client_conns(&fc), 1);
    ck_assert_int_eq(fake_client_conns(&fs), 4);

    /* scanner_free closes the kept session */
    scanner_free(av);
    fake_wait(&fc, &fc.closed, 2, "clamd connections closed"); /* the session and our probe */
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

/* Verdicts over the wire: a virus, spam. */
START_TEST(test_run_found)
{
    struct fake fc, fs;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.answer = CLAMD_EICAR;
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    fs.answer = SPAMD_GTUBE;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 2000, 1);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 500, 2000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("eicar", 5000, 1000, &ref);
    struct scan_result ar, sr;
    run(av, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_FOUND);
    ck_assert_str_eq(ar.name, "Eicar-Test-Signature.UNOFFICIAL");
    ck_status(sr, SCAN_FOUND);
    ck_assert_double_eq_tol(sr.score, 1003.3, 1e-9);
    ck_assert_str_eq(sr.symbols, "GTUBE,MISSING_DATE,MISSING_MID,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO");

    /* the spamd answer alone: no clamd */
    run(NULL, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_NOT_RUN);
    ck_status(sr, SCAN_FOUND);
    /* and clamd alone */
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_FOUND);
    ck_status(sr, SCAN_NOT_RUN);
    spool_free(m);
    scanner_free(av);
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

/* Over TCP loopback. */
START_TEST(test_run_tcp)
{
    struct fake fc, fs;
    fake_start_tcp(&fc, SCANNER_CLAMD);
    fake_start_tcp(&fs, SCANNER_SPAMD);
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 2000, 1);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 500, 2000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("tcp", 150000, 4096, &ref);
    struct scan_result ar, sr;
    run(av, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    ck_status(sr, SCAN_CLEAN);
    check_body(&fc, &ref);
    check_body(&fs, &ref);
    spool_free(m);
    scanner_free(av);
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

/* Both scanners are asked at once: each fake server waits for the other's
 * request before it answers, which only works when both requests are out
 * together (asked one after the other, the first would wait in vain). */
START_TEST(test_run_parallel)
{
    struct fake fc, fs;
    struct fk_meet meet = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false };
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.meet = &meet;
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    fs.meet = &meet;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 1000, 5000, 1);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 1000, 5000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("slow", 100000, 4096, &ref);
    struct scan_result ar, sr;
    run(av, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    ck_status(sr, SCAN_CLEAN);
    pthread_mutex_lock(&meet.mu);
    bool met = meet.met;
    pthread_mutex_unlock(&meet.mu);
    ck_assert_msg(met, "the two requests were not out at the same time");
    spool_free(m);
    scanner_free(av);
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

static void check_timeout(const struct scan_result *r, int64_t timeout_us, int64_t bound_us)
{
    ck_status(*r, SCAN_FAILED);
    ck_assert_int_eq(r->failure, SCAN_FAIL_TIMEOUT); /* X-Postern-Not-Scanned: "scanner timed out" */
    ck_assert_msg(strncmp(r->error, "timeout", 7) == 0, "error does not begin with the timeout: %s", r->error);
    ck_assert_msg(r->elapsed_us >= timeout_us - 20000, "gave up after %lld us, before the timeout of %lld us",
                  (long long)r->elapsed_us, (long long)timeout_us);
    ck_assert_msg(r->elapsed_us <= bound_us, "gave up after %lld us, bound %lld us", (long long)r->elapsed_us,
                  (long long)bound_us);
}

/* Servers that accept and never answer: SCAN_FAILED within the timeout;
 * spamd is not asked again; the next message uses a new clamd connection
 * (not the one with an answer pending) and succeeds. */
START_TEST(test_run_timeout)
{
    struct fake fc, fs;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.mode[0] = FM_SILENT;
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    fs.mode[0] = FM_SILENT;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 300, 300, 1);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 300, 300, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("timeout", 20000, 4096, &ref);
    struct scan_result ar, sr;
    int64_t t0 = now_us();
    run(av, spam, "acme", m, &ar, &sr);
    int64_t wall = now_us() - t0;
    check_timeout(&ar, 300000, 2800000); /* generous: a loaded machine, valgrind */
    check_timeout(&sr, 300000, 2800000);
    ck_assert_msg(wall < 2800000, "scanner_run took %lld us", (long long)wall); /* generous: valgrind, load */
    ck_assert_int_eq(fake_get(&fs, &fs.requests), 1);
    ck_assert_int_eq(fake_client_conns(&fs), 1);

    run(av, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    ck_status(sr, SCAN_CLEAN);
    check_body(&fc, &ref);
    ck_assert_int_eq(fake_client_conns(&fc), 2);
    ck_assert_int_eq(fake_client_conns(&fs), 2);
    spool_free(m);
    scanner_free(av);
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

/* Nothing listening: SCAN_FAILED at once (not after the timeout) with
 * the connect error. */
START_TEST(test_run_refused)
{
    char path[100], endpoint[160];
    snprintf(path, sizeof path, "%s/dead.sock", tmpdir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd); /* the socket file stays, nobody listens */
    snprintf(endpoint, sizeof endpoint, "unix:%s", path);

    struct scanner *av = scanner_make(SCANNER_CLAMD, endpoint, 2000, 2000, 1);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, endpoint, 2000, 2000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("refused", 1000, 4096, &ref);
    struct scan_result ar, sr;
    int64_t t0 = now_us();
    run(av, spam, "acme", m, &ar, &sr);
    int64_t wall = now_us() - t0;
    ck_status(ar, SCAN_FAILED);
    ck_status(sr, SCAN_FAILED);
    ck_assert_msg(strstr(ar.error, strerror(ECONNREFUSED)) != NULL, "%s", ar.error);
    ck_assert_msg(strstr(sr.error, strerror(ECONNREFUSED)) != NULL, "%s", sr.error);
    ck_assert_int_eq(ar.failure, SCAN_FAIL_CONNECT); /* "scanner unavailable" */
    ck_assert_int_eq(sr.failure, SCAN_FAIL_CONNECT);
    ck_assert_msg(strncmp(ar.error, "cannot connect", 14) == 0, "%s", ar.error);
    ck_assert_msg(strncmp(sr.error, "cannot connect", 14) == 0, "%s", sr.error);
    ck_assert_msg(wall < 2800000, "refused took %lld us", (long long)wall); /* fast, not a time-out */
    scanner_free(av);
    scanner_free(spam);

    /* no socket file at all */
    snprintf(endpoint, sizeof endpoint, "unix:%s/none.sock", tmpdir);
    av = scanner_make(SCANNER_CLAMD, endpoint, 2000, 2000, 1);
    spam = scanner_make(SCANNER_SPAMD, endpoint, 2000, 2000, 1);
    t0 = now_us();
    run(av, spam, "acme", m, &ar, &sr);
    wall = now_us() - t0;
    ck_status(ar, SCAN_FAILED);
    ck_status(sr, SCAN_FAILED);
    ck_assert_msg(strstr(ar.error, strerror(ENOENT)) != NULL, "%s", ar.error);
    ck_assert_msg(strstr(sr.error, strerror(ENOENT)) != NULL, "%s", sr.error);
    ck_assert_msg(wall < 1000000, "no socket took %lld us", (long long)wall);
    scanner_free(av);
    scanner_free(spam);

    /* TCP: a loopback port nobody listens on */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in si = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&si, sizeof si), 0);
    socklen_t len = sizeof si;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&si, &len), 0);
    snprintf(endpoint, sizeof endpoint, "inet:127.0.0.1:%u", ntohs(si.sin_port));
    av = scanner_make(SCANNER_CLAMD, endpoint, 2000, 2000, 1);
    t0 = now_us();
    run(av, NULL, "acme", m, &ar, &sr);
    wall = now_us() - t0;
    close(fd);
    ck_status(ar, SCAN_FAILED);
    ck_assert_msg(strstr(ar.error, strerror(ECONNREFUSED)) != NULL, "%s", ar.error);
    ck_assert_msg(wall < 2800000, "refused took %lld us", (long long)wall); /* fast, not a time-out */
    scanner_free(av);

    spool_free(m);
    buf_free(&ref);
}
END_TEST

/* A server that cannot take the connection (its accept queue full):
 * SCAN_FAILED after the connect timeout, not twice that. */
START_TEST(test_run_connect_timeout)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    /* fill the accept queue until a connect no longer completes */
    int fills[8], n = 0;
    bool full = false;
    while (n < 8 && !full) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        fills[n++] = fd;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            continue;
        ck_assert_int_eq(errno, EINPROGRESS);
        struct pollfd p = { fd, POLLOUT, 0 };
        full = poll(&p, 1, 200) == 0;
    }
    if (full) {
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, "inet:127.0.0.1:%u", ntohs(sa.sin_port));
        struct scanner *av = scanner_make(SCANNER_CLAMD, endpoint, 300, 2000, 1);
        struct buf ref;
        buf_init(&ref);
        struct spool *m = msg_make("connect", 1000, 4096, &ref);
        struct scan_result ar, sr;
        run(av, NULL, "acme", m, &ar, &sr);
        ck_status(ar, SCAN_FAILED);
        ck_assert_msg(strcasestr(ar.error, "time") != NULL, "%s", ar.error);
        ck_assert_msg(ar.elapsed_us >= 290000 && ar.elapsed_us < 2800000,
                      "connect timeout of 300 ms: gave up after %lld us", (long long)ar.elapsed_us);
        spool_free(m);
        scanner_free(av);
        buf_free(&ref);
    } else {
        fprintf(stderr, "test_scanner: SKIP test_run_connect_timeout (the accept queue never filled)\n");
    }
    for (int i = 0; i < n; i++)
        close(fills[i]);
    close(lfd);
}
END_TEST

/* The scanner's own max_size: a larger message is not sent, one of
 * exactly that size is. */
START_TEST(test_run_max_size)
{
    struct fake fc, fs;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    struct scanner *sc[2];
    struct fake *fk[2] = { &fc, &fs };
    for (int i = 0; i < 2; i++) {
        struct scanner_cfg cfg = { .kind = fk[i]->kind, .endpoint = fk[i]->endpoint, .connect_timeout_ms = 500,
                                   .timeout_ms = 1000, .connections = 1, .max_size = 1000 };
        struct buf err;
        buf_init(&err);
        sc[i] = scanner_new(&cfg, &err);
        ck_assert_msg(sc[i] != NULL, "%s", err.data);
        buf_free(&err);
    }
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("big", 1001, 4096, &ref);
    struct scan_result ar, sr;
    run(sc[0], sc[1], "acme", m, &ar, &sr);
    ck_status(ar, SCAN_TOO_LARGE);
    ck_status(sr, SCAN_TOO_LARGE);
    ck_assert_msg(strstr(ar.error, "max_size") != NULL, "%s", ar.error);
    ck_assert_msg(strstr(sr.error, "max_size") != NULL, "%s", sr.error);
    ck_assert_int_eq(fake_client_conns(&fc), 0);
    ck_assert_int_eq(fake_client_conns(&fs), 0);
    spool_free(m);

    m = msg_make("fits", 1000, 4096, &ref);
    run(sc[0], sc[1], "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    ck_status(sr, SCAN_CLEAN);
    check_body(&fc, &ref);
    check_body(&fs, &ref);
    spool_free(m);
    scanner_free(sc[0]);
    scanner_free(sc[1]);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

/* Answers that are not clamd's or spamd's: SCAN_FAILED. */
START_TEST(test_run_garbage)
{
    struct fake fc, fs;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.answer = "what is this";
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    fs.answer = "HTTP/1.0 400 Bad Request\r\n\r\n";
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 1000, 1);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 500, 1000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("garbage", 1000, 4096, &ref);
    struct scan_result ar, sr;
    run(av, spam, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_FAILED);
    ck_status(sr, SCAN_FAILED);
    ck_assert_msg(strstr(ar.error, "what is this") != NULL, "%s", ar.error);
    ck_assert_int_eq(fake_client_conns(&fs), 1);
    spool_free(m);
    scanner_free(av);
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

/* clamd's StreamMaxLength: SCAN_TOO_LARGE; for a while larger messages
 * are not streamed to it, smaller ones are. */
START_TEST(test_run_too_large)
{
    struct fake fc;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.mode[0] = FM_LIMIT;
    fc.limit = 100000;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 2000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("large", 300000, 4096, &ref);
    struct scan_result ar, sr;
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_TOO_LARGE);
    ck_assert(ar.error[0] != '\0');
    ck_assert_int_eq(fake_get(&fc, &fc.streams), 1);
    spool_free(m);

    m = msg_make("larger", 400000, 4096, &ref);
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_TOO_LARGE);
    ck_assert_int_eq(fake_get(&fc, &fc.streams), 1);
    spool_free(m);

    m = msg_make("small", 10000, 4096, &ref);
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    check_body(&fc, &ref);
    ck_assert_int_eq(fake_get(&fc, &fc.streams), 2);
    spool_free(m);
    scanner_free(av);
    fake_stop(&fc);
    buf_free(&ref);
}
END_TEST

/* The kept clamd session closed by the server between two messages: the
 * second message goes on a new connection. */
START_TEST(test_run_kept_closed)
{
    struct fake fc;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.mode[0] = FM_CLOSE_AFTER;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 1000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("one", 100000, 4096, &ref);
    struct scan_result ar, sr;
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    fake_wait(&fc, &fc.closed, 1, "closed");
    spool_free(m);

    m = msg_make("two", 100000, 4096, &ref);
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    check_body(&fc, &ref);
    ck_assert_int_eq(fake_client_conns(&fc), 2);
    spool_free(m);
    scanner_free(av);
    fake_stop(&fc);
    buf_free(&ref);
}
END_TEST

/* The kept session taken the whole second message and closed without
 * an answer (clamd's idle timeout at that moment): retried once on a new
 * connection, which answers. */
START_TEST(test_run_kept_hangup)
{
    struct fake fc;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.mode[0] = FM_HANGUP_SECOND;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 1000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("one", 1000, 4096, &ref);
    struct scan_result ar, sr;
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    spool_free(m);

    m = msg_make("two", 150000, 4096, &ref);
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_CLEAN);
    check_body(&fc, &ref);
    ck_assert_int_eq(fake_get(&fc, &fc.requests), 3);
    ck_assert_int_eq(fake_client_conns(&fc), 2);

    spool_free(m);
    scanner_free(av);
    fake_stop(&fc);
    buf_free(&ref);
}
END_TEST

/* A fresh clamd connection that closes without answering: one retry is
 * allowed only for a kept session, so at most two connections and a
 * failure. */
START_TEST(test_run_clamd_hangup)
{
    struct fake fc;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    for (int i = 0; i < FK_CONNS; i++)
        fc.mode[i] = FM_HANGUP;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 500, 10000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("hangup", 5000, 4096, &ref);
    struct scan_result ar, sr;
    int64_t t0 = now_us();
    run(av, NULL, "acme", m, &ar, &sr);
    ck_status(ar, SCAN_FAILED);
    /* well below the 10 s time-out: the hang-up ends it, not the clock */
    ck_assert_msg(now_us() - t0 < 5000000, "a closed connection took %lld us", (long long)(now_us() - t0));
    ck_assert_int_le(fake_client_conns(&fc), 2);
    spool_free(m);
    scanner_free(av);
    fake_stop(&fc);
    buf_free(&ref);
}
END_TEST

/* spamd is never sent a message twice: an answer cut in the middle, or
 * none at all, is a failure after one connection. */
START_TEST(test_run_spamd_once)
{
    static const enum fmode modes[] = { FM_PARTIAL, FM_HANGUP };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct fake fs;
        fake_start(&fs, SCANNER_SPAMD, "spamd");
        for (int k = 0; k < FK_CONNS; k++)
            fs.mode[k] = modes[i];
        struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 500, 1000, 2);
        struct buf ref;
        buf_init(&ref);
        struct spool *m = msg_make("once", 5000, 4096, &ref);
        struct scan_result ar, sr;
        run(NULL, spam, "acme", m, &ar, &sr);
        ck_status(sr, SCAN_FAILED);
        ck_assert_int_eq(fake_client_conns(&fs), 1);
        ck_assert_int_eq(fake_get(&fs, &fs.requests), 1);
        spool_free(m);
        scanner_free(spam);
        fake_stop(&fs);
        buf_free(&ref);
    }
}
END_TEST

/* --- the pool ------------------------------------------------------------------- */

struct job {
    struct scanner *av, *spam;
    const struct spool *msg;
    pthread_barrier_t *start;
    struct scan_result ar, sr;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    if (j->start != NULL)
        pthread_barrier_wait(j->start);
    scanner_run(j->av, j->spam, "acme", j->msg, &j->ar, &j->sr);
    return NULL;
}

/* connections: 1 and two threads at once against slow servers: never
 * more than one connection at a time. */
START_TEST(test_pool_bound)
{
    struct fake fc, fs;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.delay_ms = 150;
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    fs.delay_ms = 150;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 2000, 2000, 1);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 2000, 2000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("pool", 50000, 4096, &ref);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (struct job){ .av = av, .spam = spam, .msg = m, .start = &start };
        ck_assert_int_eq(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_status(jobs[i].ar, SCAN_CLEAN);
        ck_status(jobs[i].sr, SCAN_CLEAN);
    }
    ck_assert_int_eq(fake_get(&fc, &fc.max_cur), 1);
    ck_assert_int_eq(fake_get(&fs, &fs.max_cur), 1);
    ck_assert_int_eq(fake_get(&fc, &fc.requests), 2);
    ck_assert_int_eq(fake_get(&fs, &fs.requests), 2);
    /* one of them waited for the other */
    int64_t longest = 0;
    for (int i = 0; i < 2; i++) {
        if (jobs[i].ar.elapsed_us > longest)
            longest = jobs[i].ar.elapsed_us;
        if (jobs[i].sr.elapsed_us > longest)
            longest = jobs[i].sr.elapsed_us;
    }
    ck_assert_int_ge(longest, 300000);
    pthread_barrier_destroy(&start);
    spool_free(m);
    scanner_free(av);
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

/* The only connection busy (a server that does not answer): another
 * message waits at most the connect timeout for it, then fails. */
START_TEST(test_pool_wait_timeout)
{
    struct fake fs;
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    fs.mode[0] = FM_SILENT;
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 200, 3000, 1);
    struct buf ref;
    buf_init(&ref);
    struct spool *m = msg_make("busy", 1000, 4096, &ref);
    struct job busy = { .spam = spam, .msg = m };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, job_main, &busy), 0);
    fake_wait(&fs, &fs.requests, 1, "requests");

    struct scan_result ar, sr;
    int64_t t0 = now_us();
    run(NULL, spam, "acme", m, &ar, &sr);
    int64_t wall = now_us() - t0;
    ck_status(sr, SCAN_FAILED);
    ck_assert_int_eq(sr.failure, SCAN_FAIL_BUSY); /* "scanner busy" */
    ck_assert_msg(strstr(sr.error, "no free connection") != NULL, "%s", sr.error);
    ck_assert_msg(wall >= 190000 && wall < 2800000, "waited %lld us for a connection", (long long)wall);
    ck_assert_msg(sr.elapsed_us >= 190000, "elapsed_us %lld", (long long)sr.elapsed_us);
    ck_assert_int_eq(fake_get(&fs, &fs.conns), 1);

    fake_stop(&fs); /* the busy one ends too */
    pthread_join(th, NULL);
    ck_status(busy.sr, SCAN_FAILED);
    spool_free(m);
    scanner_free(spam);
    buf_free(&ref);
}
END_TEST

/* Four threads, five messages each, two connections: every answer reaches
 * the thread whose message it is (the servers echo the first line). */
START_TEST(test_pool_threads)
{
    enum { THREADS = 4, PER = 5 };
    struct fake fc, fs;
    fake_start(&fc, SCANNER_CLAMD, "clamd");
    fc.echo = true;
    fake_start(&fs, SCANNER_SPAMD, "spamd");
    fs.echo = true;
    struct scanner *av = scanner_make(SCANNER_CLAMD, fc.endpoint, 3000, 3000, 2);
    struct scanner *spam = scanner_make(SCANNER_SPAMD, fs.endpoint, 3000, 3000, 2);
    struct buf ref;
    buf_init(&ref);
    struct spool *m[THREADS][PER];
    char id[THREADS][PER][32];
    for (int t = 0; t < THREADS; t++)
        for (int k = 0; k < PER; k++) {
            snprintf(id[t][k], sizeof id[t][k], "MSG-%d-%d", t, k);
            m[t][k] = msg_make(id[t][k], 2000 + (size_t)(t * PER + k) * 9000, 4096, &ref);
        }
    struct job jobs[THREADS];
    pthread_t th[THREADS];
    for (int k = 0; k < PER; k++) {
        for (int t = 0; t < THREADS; t++) {
            jobs[t] = (struct job){ .av = av, .spam = spam, .msg = m[t][k] };
            ck_assert_int_eq(pthread_create(&th[t], NULL, job_main, &jobs[t]), 0);
        }
        for (int t = 0; t < THREADS; t++) {
            pthread_join(th[t], NULL);
            ck_status(jobs[t].ar, SCAN_FOUND);
            ck_assert_str_eq(jobs[t].ar.name, id[t][k]);
            ck_status(jobs[t].sr, SCAN_CLEAN);
            ck_assert_str_eq(jobs[t].sr.symbols, id[t][k]);
        }
    }
    ck_assert_int_le(fake_get(&fc, &fc.max_cur), 2);
    ck_assert_int_le(fake_get(&fs, &fs.max_cur), 2);
    ck_assert_int_le(fake_client_conns(&fc), 2);
    ck_assert_int_eq(fake_client_conns(&fs), THREADS * PER);
    for (int t = 0; t < THREADS; t++)
        for (int k = 0; k < PER; k++)
            spool_free(m[t][k]);
    scanner_free(av);
    scanner_free(spam);
    fake_stop(&fc);
    fake_stop(&fs);
    buf_free(&ref);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_clamd_parse_ok);
    tcase_add_test(tc, test_clamd_parse_found);
    tcase_add_test(tc, test_clamd_parse_too_large);
    tcase_add_test(tc, test_clamd_parse_bad);
    tcase_add_test(tc, test_clamd_parse_odd_names);
    tcase_add_test(tc, test_spamd_parse_real);
    tcase_add_test(tc, test_spamd_parse_values);
    tcase_add_test(tc, test_spamd_parse_symbols_truncated);
    tcase_add_test(tc, test_spamd_parse_symbols_control);
    tcase_add_test(tc, test_spamd_parse_bad);
    tcase_add_test(tc, test_new);
    tcase_add_test(tc, test_new_bad);
    tcase_add_test(tc, test_run_none);
    tcase_add_test(tc, test_run_both);
    tcase_add_test(tc, test_run_found);
    tcase_add_test(tc, test_run_tcp);
    tcase_add_test(tc, test_run_parallel);
    tcase_add_test(tc, test_run_timeout);
    tcase_add_test(tc, test_run_refused);
    tcase_add_test(tc, test_run_connect_timeout);
    tcase_add_test(tc, test_run_max_size);
    tcase_add_test(tc, test_run_garbage);
    tcase_add_test(tc, test_run_too_large);
    tcase_add_test(tc, test_run_kept_closed);
    tcase_add_test(tc, test_run_kept_hangup);
    tcase_add_test(tc, test_run_clamd_hangup);
    tcase_add_test(tc, test_run_spamd_once);
    tcase_add_test(tc, test_pool_bound);
    tcase_add_test(tc, test_pool_wait_timeout);
    tcase_add_test(tc, test_pool_threads);
}

UNIT_MAIN("scanner", add_tests)
