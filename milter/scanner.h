/* scanner.h: the clients of the two scanners postern-milter calls, clamd
 * (INSTREAM) and spamd (SPAMC/1.5 SYMBOLS), over a unix or TCP socket.
 *
 * scanner_run() sends one spooled message (spool.h) to both scanners at
 * once: one poll() loop over non-blocking sockets, each scanner reading the
 * spool at its own offset, so the slower one sets the time taken, not the
 * sum.  spamd's connection is taken before clamd's: a message that waits
 * for one of spamd's (the slow scanner, few connections) holds none of
 * clamd's meanwhile, and clamd's calls are short.  Each scanner has:
 *   - a connect timeout (also the longest wait for a free connection) and
 *     a timeout for the exchange after it (sending the message and reading
 *     the whole answer);
 *   - a bounded pool: at most `connections` connections at once; clamd's
 *     are kept open between messages (IDSESSION, closed after
 *     SCANNER_IDLE_MS unused, below clamd's default IdleTimeout of 30 s),
 *     spamd's protocol closes each one after its answer;
 *   - retries only where they are safe: a connection refused or reset
 *     before anything was sent, and a kept clamd connection that turns out
 *     closed before clamd answered (scanning has no side effects there) are
 *     retried once on a new connection; spamd is never sent a message
 *     twice (its auto-learning and reputation plugins count each check).
 *
 * clamd's StreamMaxLength: clamd does not announce it before the stream;
 * it answers "INSTREAM size limit exceeded" and closes.  That answer is
 * SCAN_TOO_LARGE (not a failure: the message is passed as not scanned, as
 * one above scan.max_size), and the size is remembered for
 * SCANNER_LIMIT_MEMORY_MS: larger messages are not streamed to clamd in
 * that time.
 *
 * Thread-safe: one struct scanner per configured scanner, shared by every
 * milter thread. */
#ifndef POSTERN_MILTER_SCANNER_H
#define POSTERN_MILTER_SCANNER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct spool;

enum scanner_kind { SCANNER_CLAMD, SCANNER_SPAMD };

#define SCANNER_IDLE_MS 20000
#define SCANNER_LIMIT_MEMORY_MS 600000
#define SCANNER_CHUNK 65536           /* bytes per INSTREAM chunk */

struct scanner_cfg {
    enum scanner_kind kind;
    const char *endpoint;             /* unix:/path | inet:host:port */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;
    unsigned connections;             /* pool bound, >= 1 */
    uint64_t max_size;                /* larger messages: SCAN_TOO_LARGE, not sent (0: no bound) */
};

enum scan_status {
    SCAN_NOT_RUN,                     /* not asked, or not scanned (see scan.h) */
    SCAN_CLEAN,                       /* clamd: no virus; spamd: answered (score below or above: see score) */
    SCAN_FOUND,                       /* clamd: a virus (name); spamd: its own verdict was spam */
    SCAN_TOO_LARGE,                   /* over the scanner's max_size, or clamd refused the size (StreamMaxLength) */
    SCAN_FAILED,                      /* down, timed out, or an answer we cannot read: error says which */
};

/* SCAN_FAILED: what kind of failure (X-Postern-Not-Scanned names it;
 * error holds the detail). */
enum scan_failure {
    SCAN_FAIL_ANSWER,                 /* an answer we cannot read, or a connection broken mid-way */
    SCAN_FAIL_CONNECT,                /* cannot connect (refused, no socket, connect time-out) */
    SCAN_FAIL_BUSY,                   /* no free connection of the pool within the connect timeout */
    SCAN_FAIL_TIMEOUT,                /* no answer within the timeout */
    SCAN_FAIL_SPOOL,                  /* the message could not be kept (spool.h) */
};

struct scan_result {
    enum scan_status status;
    enum scan_failure failure;        /* SCAN_FAILED only */
    char name[128];                   /* clamd: the signature found */
    double score, required;           /* spamd: score and spamd's own threshold */
    char symbols[1024];               /* spamd: the rules that hit, comma-separated (truncated at a comma) */
    char error[256];                  /* SCAN_FAILED / SCAN_TOO_LARGE: why, for the log and the header */
    int64_t elapsed_us;               /* from asking for a connection to the last byte of the answer */
    int64_t wait_us;                  /* the part of it spent waiting for a free connection (all in use) */
};

struct scanner;

/* A scanner for cfg (copied).  No connection is made here.  NULL with err
 * set on a malformed endpoint. */
struct scanner *scanner_new(const struct scanner_cfg *cfg, struct buf *err);
void scanner_free(struct scanner *s);
const char *scanner_name(const struct scanner *s);   /* "clamd" or "spamd" */

/* Scan msg with av (clamd, may be NULL) and spam (spamd, may be NULL) at
 * once; user: the SPAMC User: header (the tenant).  Results for a NULL
 * scanner are SCAN_NOT_RUN.  Never fails as a whole: each result says
 * what happened. */
void scanner_run(struct scanner *av, struct scanner *spam, const char *user, const struct spool *msg,
                 struct scan_result *av_res, struct scan_result *spam_res);

/* Ask the scanner whether it is there, on a connection of its own (not
 * the pool's): clamd VERSION ("ClamAV 1.4.6/..."), spamd PING
 * ("SPAMD/1.5 0 PONG"), connecting within the connect timeout and
 * answering within the smaller of the two timeouts (so that a hung scanner
 * holds up a start or a check only that long).  True with the answer
 * (printable, one line) in out; false with err set. */
bool scanner_ping(struct scanner *s, char *out, size_t size, struct buf *err);

/* --- the protocols' answers (scanner_parse.c: pure; the unit tests and
 * the fuzz target take them alone) ---------------------------------------- */

/* Copy at most len bytes of s into out (size > 0), each byte that is not
 * printable ASCII as '?': what a scanner said, made safe for a log line,
 * an audit record or a header. */
void scanner_printable(char *out, size_t size, const char *s, size_t len);
/* r: SCAN_FAILED, error "WHO answered "..."" (the first 100 bytes,
 * printable) or "WHO answered nothing". */
void scanner_garbage(struct scan_result *r, const char *who, const char *a, size_t len);

/* clamd's answer to INSTREAM, without the prefix of a session ("1: "),
 * the terminating NUL or newline removed: "stream: OK", "stream: NAME
 * FOUND", "INSTREAM size limit exceeded. ERROR"; anything else is
 * SCAN_FAILED with the text (made printable) in error. */
void scanner_clamd_parse(const char *answer, size_t len, struct scan_result *r);
/* spamd's whole answer to SYMBOLS: "SPAMD/1.1 0 EX_OK\r\n", headers with
 * "Spam: True ; 7.2 / 5.0", an empty line, the symbols.  A status other
 * than 0, a missing Spam: header or a malformed one is SCAN_FAILED. */
void scanner_spamd_parse(const char *answer, size_t len, struct scan_result *r);

#endif
