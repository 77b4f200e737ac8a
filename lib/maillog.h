/* maillog.h: one line of Postfix's log, parsed without regex and without
 * allocation: the record points into the line (slices) or holds small fixed
 * copies (queue IDs).  Input is (pointer, length); no NUL is needed and no
 * byte past the length is ever read.  One pass, linear in the length.
 *
 * Accepted line formats (a trailing "\n" or "\r\n" is ignored):
 *   traditional syslog, and Postfix's own maillog_file (postlogd) which is
 *   the same: "Nov 28 12:00:01 host PROGRAM[PID]: TEXT" ("Nov  3", "Nov 03"
 *   and "Nov 3" all read); local time, no year: the year is inferred from
 *   the context's reference time (the one that puts the date closest to the
 *   reference and not more than a day after it);
 *   RFC 3339 (rsyslog's precise template, journalctl -o short-iso and
 *   short-iso-precise): "2026-11-28T12:00:01.123456+00:00 host PROGRAM[PID]:
 *   TEXT" (fraction optional, offset "Z", "+hh:mm" or "+hhmm").
 * PROGRAM is Postfix's syslog_name and process name: "postfix/smtp",
 * "postern-lab-123/smtp", "postfix/submission/smtpd", or a bare "smtp"; the
 * service (the part after the last '/') must be one of Postfix's programs,
 * otherwise the line is MAILLOG_FOREIGN.  "[PID]" may be absent.
 *
 * Kinds of TEXT recognised after "QUEUEID: " (the queue ID checked with
 * qid_valid):
 *   MAILLOG_DELIVERY  to=<..>, [orig_to=<..>,] relay=.., delay=.., delays=..,
 *                     dsn=X.Y.Z, status=WORD (REPLY)  (smtp, lmtp, local,
 *                     virtual, pipe, error, retry, discard...); REPLY runs
 *                     to the line's last ')' and may hold '(' ')' and ','
 *   MAILLOG_QUEUED    from=<..>, size=N, nrcpt=N (queue active)   (qmgr)
 *   MAILLOG_EXPIRED   from=<..>, status=expired, returned to sender (qmgr)
 *   MAILLOG_REMOVED   removed                            (qmgr, postsuper)
 *   MAILLOG_MESSAGE_ID message-id=<..>                   (cleanup)
 *   MAILLOG_CLIENT    client=NAME[ADDR][, sasl_method=M, sasl_username=U] (smtpd)
 *   MAILLOG_PICKUP    uid=N from=<..>                    (pickup)
 *   MAILLOG_HOLD      placed on hold (postsuper -h); hold: .. and
 *                     milter-hold: .. (cleanup)
 *   MAILLOG_RELEASE   released from hold                 (postsuper -H)
 *   MAILLOG_NOTIFY    sender non-delivery notification: ID2 (also "sender
 *                     delivery status notification", "postmaster
 *                     non-delivery notification")         (bounce)
 * Anything else from Postfix (warnings, connect from, NOQUEUE: reject: ...,
 * a kind above whose field cannot be read) is MAILLOG_OTHER, with the header
 * fields and TEXT filled in.  A line that ends before its fields do, where
 * everything read so far is consistent, is MAILLOG_TRUNCATED; a line that is
 * not a syslog line of a Postfix program is MAILLOG_FOREIGN (a control byte
 * in the header, e.g. NUL, makes it foreign; in TEXT it is kept).  An empty
 * line is TRUNCATED.  Cuts the log cannot show: a delivery line cut right
 * after a ')' inside REPLY (read with a shorter REPLY), a bare message-id
 * without angle brackets, a notification's queue ID cut to 6 or more
 * characters, smtpd's optional sasl_* attributes. */
#ifndef POSTERN_MAILLOG_H
#define POSTERN_MAILLOG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "qid.h"

enum maillog_kind {
    MAILLOG_FOREIGN,
    MAILLOG_TRUNCATED,
    MAILLOG_OTHER,
    MAILLOG_DELIVERY,
    MAILLOG_QUEUED,
    MAILLOG_EXPIRED,
    MAILLOG_REMOVED,
    MAILLOG_MESSAGE_ID,
    MAILLOG_CLIENT,
    MAILLOG_PICKUP,
    MAILLOG_HOLD,
    MAILLOG_RELEASE,
    MAILLOG_NOTIFY,
};

enum maillog_format { MAILLOG_FMT_NONE, MAILLOG_FMT_TRADITIONAL, MAILLOG_FMT_RFC3339 };

enum maillog_status {
    MAILLOG_ST_NONE,          /* not a delivery line */
    MAILLOG_ST_SENT,
    MAILLOG_ST_DEFERRED,
    MAILLOG_ST_BOUNCED,
    MAILLOG_ST_EXPIRED,
    MAILLOG_ST_UNDELIVERABLE, /* address verification */
    MAILLOG_ST_DELIVERABLE,   /* address verification */
};

/* A slice of the line: p is NULL and n 0 when absent.  It may hold NUL
 * bytes (in TEXT and the fields inside it). */
struct maillog_str {
    const char *p;
    size_t n;
};

/* Caller-owned parsing context: the reference time for the year of
 * traditional time stamps, the time zone they are read in, and a cache. */
struct maillog_ctx {
    time_t ref;               /* e.g. the log file's mtime, or now */
    bool tz_fixed;            /* true: local time is UTC + tz_offset */
    long tz_offset;           /* seconds east of UTC, when tz_fixed */
    /* cache of the process time zone's offset (tz_fixed false) */
    int64_t cache_hour;       /* local time as if UTC, / 3600; INT64_MIN: empty */
    long cache_offset;
};

struct maillog_rec {
    enum maillog_kind kind;
    enum maillog_format format;
    /* header (filled from MAILLOG_OTHER on; TRUNCATED has what was read) */
    int64_t time;             /* Unix seconds */
    int32_t time_us;          /* microseconds, 0 when the stamp has none */
    bool has_us;
    struct maillog_str host;
    struct maillog_str program;   /* "postfix/smtp": syslog_name/process */
    struct maillog_str syslog_name; /* "postfix" (empty for a bare "smtp") */
    struct maillog_str service;   /* "smtp" */
    long pid;                 /* -1 when absent */
    struct maillog_str text;  /* everything after "PROGRAM[PID]: " */
    char qid[QID_MAX + 1];    /* "" when TEXT does not start with one */
    struct maillog_str body;  /* TEXT after "QUEUEID: " */

    /* MAILLOG_DELIVERY */
    struct maillog_str to, orig_to;   /* without the angle brackets */
    struct maillog_str relay;         /* "mx.example[192.0.2.1]:25", "none" */
    struct maillog_str relay_host;    /* "mx.example" (= relay without '[') */
    struct maillog_str relay_addr;    /* "192.0.2.1", "2001:db8::1", "private/lmtp" */
    int relay_port;                   /* 0 when none */
    int64_t delay_us;                 /* delay= in microseconds, -1: absent */
    struct maillog_str delays;        /* "0.1/0/0.5/0.6" */
    struct maillog_str dsn;           /* "5.1.1" (checked: [245].N.N) */
    enum maillog_status status;
    struct maillog_str status_word;   /* "sent" */
    struct maillog_str reply;         /* inside the outer parentheses */

    /* MAILLOG_QUEUED, MAILLOG_EXPIRED, MAILLOG_PICKUP */
    struct maillog_str from;          /* "" for the null sender */
    uint64_t size;
    unsigned long nrcpt;
    long uid;                         /* pickup's uid=, -1: absent */
    /* MAILLOG_MESSAGE_ID: without the angle brackets when it has them */
    struct maillog_str message_id;
    /* MAILLOG_CLIENT */
    struct maillog_str client;        /* "mail.example[192.0.2.7]" */
    struct maillog_str client_host, client_addr;
    struct maillog_str sasl_method, sasl_username;
    /* MAILLOG_NOTIFY: the queue ID of the notification */
    char notify_qid[QID_MAX + 1];
    /* MAILLOG_HOLD: the reason text after "hold: " or "milter-hold: " */
    struct maillog_str hold_reason;
};

/* Set up a context with reference time ref in the process's time zone
 * (TZ, /etc/localtime); set tz_fixed and tz_offset afterwards for a fixed
 * offset.  ref may be changed between lines. */
void maillog_ctx_init(struct maillog_ctx *ctx, time_t ref);

/* Parse line[0..len) into *rec (fully overwritten).  Returns rec->kind. */
enum maillog_kind maillog_parse(struct maillog_ctx *ctx, const char *line, size_t len,
                                struct maillog_rec *rec);

/* "foreign", "truncated", "other", "delivery", "queued", "expired",
 * "removed", "message-id", "client", "pickup", "hold", "release", "notify" */
const char *maillog_kind_name(enum maillog_kind k);
/* "", "sent", "deferred", "bounced", "expired", "undeliverable", "deliverable" */
const char *maillog_status_name(enum maillog_status s);

#endif
