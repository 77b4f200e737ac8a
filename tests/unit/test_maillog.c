/* test_maillog.c: unit tests of lib/maillog.c: real-looking Postfix log
 * lines of each kind (delivery by smtp, lmtp, local; qmgr, cleanup, smtpd,
 * pickup, postsuper, bounce) in the traditional syslog / maillog_file
 * format and in RFC 3339; replies with nested parentheses, IPv6 relays,
 * relay=none; custom syslog_names; unreadable fields; foreign programs'
 * lines; NUL bytes; very long lines; every prefix of several lines (each an
 * exact-size copy without NUL, so ASan catches an overread); the year of
 * traditional time stamps around New Year and Feb 29; time zones. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "maillog.h"
#include "unit.h"

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = { 0 };
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm);
}

/* A context in UTC, reference 2026-11-28 12:30:00. */
static void ctx_utc(struct maillog_ctx *ctx, int64_t ref)
{
    maillog_ctx_init(ctx, (time_t)ref);
    ctx->tz_fixed = true;
    ctx->tz_offset = 0;
}

/* Parse an exact-size copy of line[0..len) (no NUL after it). */
static enum maillog_kind parse_n(struct maillog_ctx *ctx, const char *line, size_t len,
                                 struct maillog_rec *rec, char **copy)
{
    *copy = mem_alloc(len > 0 ? len : 1);
    memcpy(*copy, line, len);
    return maillog_parse(ctx, *copy, len, rec);
}

#define SLICE_EQ(s, lit)                                                              \
    do {                                                                              \
        struct maillog_str s_ = (s);                                                  \
        ck_assert_msg(s_.n == strlen(lit) && (s_.n == 0 || memcmp(s_.p, lit, s_.n) == 0), \
                      "%s: \"%.*s\" != \"%s\"", #s, (int)s_.n, s_.p ? s_.p : "", lit);  \
    } while (0)

static const char L_SENT[] =
    "Nov 28 12:00:01 host postfix/smtp[1234]: 3F1A2B3C4D: to=<a@b.example>, "
    "relay=mx.b.example[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as XYZ)";

static const char L_NESTED[] =
    "2026-11-28T12:00:01.123456+01:00 mail1 postern-lab-123/smtp[77]: 4Z1x2b6Jl8zB: "
    "to=<bob@example.net>, orig_to=<bobby@alias.example>, relay=mx.example.net[2001:db8::25]:25, "
    "conn_use=2, delay=0.25, delays=0.01/0/0.14/0.1, dsn=5.1.1, status=bounced (host "
    "mx.example.net[2001:db8::25] said: 550 5.1.1 <bob@example.net>: Recipient address rejected: "
    "User unknown (in virtual table), see (https://x.example/1) (in reply to RCPT TO command))";

START_TEST(test_delivery_traditional)
{
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
    ck_assert_int_eq(parse_n(&ctx, L_SENT, strlen(L_SENT), &r, &c), MAILLOG_DELIVERY);
    ck_assert_int_eq(r.format, MAILLOG_FMT_TRADITIONAL);
    ck_assert_int_eq(r.time, utc(2026, 11, 28, 12, 0, 1));
    ck_assert(!r.has_us);
    SLICE_EQ(r.host, "host");
    SLICE_EQ(r.program, "postfix/smtp");
    SLICE_EQ(r.syslog_name, "postfix");
    SLICE_EQ(r.service, "smtp");
    ck_assert_int_eq(r.pid, 1234);
    ck_assert_str_eq(r.qid, "3F1A2B3C4D");
    SLICE_EQ(r.to, "a@b.example");
    ck_assert_ptr_null(r.orig_to.p);
    SLICE_EQ(r.relay, "mx.b.example[192.0.2.1]:25");
    SLICE_EQ(r.relay_host, "mx.b.example");
    SLICE_EQ(r.relay_addr, "192.0.2.1");
    ck_assert_int_eq(r.relay_port, 25);
    ck_assert_int_eq(r.delay_us, 1200000);
    SLICE_EQ(r.delays, "0.1/0/0.5/0.6");
    SLICE_EQ(r.dsn, "2.0.0");
    ck_assert_int_eq(r.status, MAILLOG_ST_SENT);
    SLICE_EQ(r.status_word, "sent");
    SLICE_EQ(r.reply, "250 2.0.0 Ok: queued as XYZ");
    ck_assert_str_eq(maillog_kind_name(r.kind), "delivery");
    ck_assert_str_eq(maillog_status_name(r.status), "sent");
    mem_free(c);

    /* with a newline, CR LF, "Nov  3", "Nov 03", "Nov 3" */
    static const char *const days[] = {
        "Nov  3 08:09:10 h postfix/qmgr[9]: 3F1A2B3C4D: removed\n",
        "Nov 03 08:09:10 h postfix/qmgr[9]: 3F1A2B3C4D: removed\r\n",
        "Nov 3 08:09:10 h postfix/qmgr[9]: 3F1A2B3C4D: removed",
    };
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(parse_n(&ctx, days[i], strlen(days[i]), &r, &c), MAILLOG_REMOVED);
        ck_assert_int_eq(r.time, utc(2026, 11, 3, 8, 9, 10));
        SLICE_EQ(r.body, "removed");
        mem_free(c);
    }
}
END_TEST

START_TEST(test_delivery_rfc3339_nested)
{
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, 0);   /* the reference does not matter for RFC 3339 */
    ck_assert_int_eq(parse_n(&ctx, L_NESTED, strlen(L_NESTED), &r, &c), MAILLOG_DELIVERY);
    ck_assert_int_eq(r.format, MAILLOG_FMT_RFC3339);
    ck_assert_int_eq(r.time, utc(2026, 11, 28, 11, 0, 1));
    ck_assert(r.has_us);
    ck_assert_int_eq(r.time_us, 123456);
    SLICE_EQ(r.host, "mail1");
    SLICE_EQ(r.syslog_name, "postern-lab-123");
    SLICE_EQ(r.service, "smtp");
    ck_assert_str_eq(r.qid, "4Z1x2b6Jl8zB");
    SLICE_EQ(r.to, "bob@example.net");
    SLICE_EQ(r.orig_to, "bobby@alias.example");
    SLICE_EQ(r.relay_host, "mx.example.net");
    SLICE_EQ(r.relay_addr, "2001:db8::25");
    ck_assert_int_eq(r.relay_port, 25);
    ck_assert_int_eq(r.delay_us, 250000);
    SLICE_EQ(r.dsn, "5.1.1");
    ck_assert_int_eq(r.status, MAILLOG_ST_BOUNCED);
    SLICE_EQ(r.reply, "host mx.example.net[2001:db8::25] said: 550 5.1.1 <bob@example.net>: "
                      "Recipient address rejected: User unknown (in virtual table), see "
                      "(https://x.example/1) (in reply to RCPT TO command)");
    mem_free(c);

    /* other stamps: Z, +hhmm, no fraction, 3 digits of fraction, negative offset */
    static const struct {
        const char *stamp;
        int64_t t;
        int32_t us;
    } st[] = {
        { "2026-11-28T12:00:01Z", 1795867201, 0 },
        { "2026-11-28T12:00:01+0000", 1795867201, 0 },
        { "2026-11-28T12:00:01.5-05:30", 1795867201 + 5 * 3600 + 1800, 500000 },
        { "2026-11-28T12:00:01.1234567+00:00", 1795867201, 123456 },
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "%s h postfix/cleanup[5]: 3F1A2B3C4D: message-id=<a@b>",
                 st[i].stamp);
        ck_assert_int_eq(parse_n(&ctx, line, strlen(line), &r, &c), MAILLOG_MESSAGE_ID);
        ck_assert_int_eq(r.time, st[i].t);
        ck_assert_int_eq(r.time_us, st[i].us);
        SLICE_EQ(r.message_id, "a@b");
        mem_free(c);
    }
}
END_TEST

/* One line per kind, checked field by field. */
START_TEST(test_kinds)
{
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
#define P(line, kind) ck_assert_int_eq(parse_n(&ctx, line, strlen(line), &r, &c), kind)

    /* Postfix 3.7's maillog_file, as postlog wrote it here */
    P("Nov 28 21:26:19 vm postern-lab-9/smtp[5331]: 3F1A2B3C4D: to=<a@b.example>, "
      "relay=none, delay=302, delays=2/0/300/0, dsn=4.4.1, status=deferred (connect to "
      "mx.b.example[192.0.2.1]:25: Connection timed out)", MAILLOG_DELIVERY);
    SLICE_EQ(r.relay_host, "none");
    ck_assert_ptr_null(r.relay_addr.p);
    ck_assert_int_eq(r.relay_port, 0);
    ck_assert_int_eq(r.delay_us, 302000000);
    ck_assert_int_eq(r.status, MAILLOG_ST_DEFERRED);
    SLICE_EQ(r.reply, "connect to mx.b.example[192.0.2.1]:25: Connection timed out");
    mem_free(c);

    P("Nov 28 12:00:02 mail postfix/lmtp[88]: 3F1A2B3C4D: to=<u@example.org>, "
      "relay=mail.example.org[private/dovecot-lmtp], delay=0.03, delays=0/0/0/0.03, dsn=2.0.0, "
      "status=sent (250 2.0.0 <u@example.org> x1 Saved)", MAILLOG_DELIVERY);
    SLICE_EQ(r.relay_addr, "private/dovecot-lmtp");
    ck_assert_int_eq(r.relay_port, 0);
    mem_free(c);

    P("Nov 28 12:00:03 mail postfix/local[89]: 3F1A2B3C4D: to=<root@mail.example>, "
      "orig_to=<postmaster>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, "
      "status=sent (delivered to mailbox)", MAILLOG_DELIVERY);
    SLICE_EQ(r.orig_to, "postmaster");
    SLICE_EQ(r.relay_host, "local");
    mem_free(c);

    P("Nov 28 12:00:04 mail postfix/error[90]: 3F1A2B3C4D: to=<x@y.example>, relay=none, "
      "delay=432000, delays=431999/1/0/0, dsn=4.4.1, status=expired (delivery temporarily "
      "suspended: connect to y.example[192.0.2.9]:25: Connection refused)", MAILLOG_DELIVERY);
    ck_assert_int_eq(r.status, MAILLOG_ST_EXPIRED);
    mem_free(c);

    P("Nov 28 12:00:05 mail postfix/smtp[91]: 3F1A2B3C4D: to=<\"odd, name\"@y.example>, "
      "relay=y.example[192.0.2.9]:587, delay=1, delays=0/0/0/1, dsn=5.0.0, status=undeliverable "
      "(undeliverable: no)", MAILLOG_DELIVERY);
    SLICE_EQ(r.to, "\"odd, name\"@y.example");
    ck_assert_int_eq(r.relay_port, 587);
    ck_assert_int_eq(r.status, MAILLOG_ST_UNDELIVERABLE);
    mem_free(c);

    P("Nov 28 12:00:06 mail postfix/qmgr[70]: 3F1A2B3C4D: from=<sender@tenant.example>, "
      "size=4213, nrcpt=3 (queue active)", MAILLOG_QUEUED);
    SLICE_EQ(r.from, "sender@tenant.example");
    ck_assert_uint_eq(r.size, 4213);
    ck_assert_uint_eq(r.nrcpt, 3);
    SLICE_EQ(r.service, "qmgr");
    mem_free(c);

    P("Nov 28 12:00:06 mail postfix/qmgr[70]: 3F1A2B3C4D: from=<>, size=900, nrcpt=1 "
      "(queue active)", MAILLOG_QUEUED);
    ck_assert_ptr_nonnull(r.from.p);
    ck_assert_uint_eq(r.from.n, 0);
    mem_free(c);

    P("Nov 28 12:00:07 mail postfix/qmgr[70]: 3F1A2B3C4D: from=<s@t.example>, "
      "status=expired, returned to sender", MAILLOG_EXPIRED);
    SLICE_EQ(r.from, "s@t.example");
    mem_free(c);

    P("Nov 28 12:00:08 mail postfix/qmgr[70]: 3F1A2B3C4D: removed", MAILLOG_REMOVED);
    mem_free(c);
    P("Nov 28 12:00:08 mail postfix/postsuper[71]: 3F1A2B3C4D: removed", MAILLOG_REMOVED);
    SLICE_EQ(r.service, "postsuper");
    mem_free(c);
    P("Nov 28 12:00:08 mail postfix/postsuper[71]: 3F1A2B3C4D: placed on hold", MAILLOG_HOLD);
    mem_free(c);
    P("Nov 28 12:00:08 mail postfix/postsuper[71]: 3F1A2B3C4D: released from hold",
      MAILLOG_RELEASE);
    mem_free(c);
    P("Nov 28 12:00:08 mail postfix/cleanup[72]: 3F1A2B3C4D: milter-hold: END-OF-MESSAGE from "
      "localhost[127.0.0.1]: milter triggers HOLD action; from=<a@b> to=<c@d> proto=ESMTP "
      "helo=<x>", MAILLOG_HOLD);
    SLICE_EQ(r.hold_reason, "END-OF-MESSAGE from localhost[127.0.0.1]: milter triggers HOLD "
                            "action; from=<a@b> to=<c@d> proto=ESMTP helo=<x>");
    mem_free(c);

    P("Nov 28 12:00:09 mail postfix/cleanup[72]: 3F1A2B3C4D: "
      "message-id=<20261128120009.3F1A2B3C4D@mail.example>", MAILLOG_MESSAGE_ID);
    SLICE_EQ(r.message_id, "20261128120009.3F1A2B3C4D@mail.example");
    mem_free(c);
    P("Nov 28 12:00:09 mail postfix/cleanup[72]: 3F1A2B3C4D: message-id=bare-id", MAILLOG_MESSAGE_ID);
    SLICE_EQ(r.message_id, "bare-id");
    mem_free(c);

    P("Nov 28 12:00:10 mail postfix/submission/smtpd[73]: 3F1A2B3C4D: "
      "client=laptop.example[2001:db8::7], sasl_method=PLAIN, sasl_username=alice@tenant.example",
      MAILLOG_CLIENT);
    SLICE_EQ(r.syslog_name, "postfix/submission");
    SLICE_EQ(r.service, "smtpd");
    SLICE_EQ(r.client, "laptop.example[2001:db8::7]");
    SLICE_EQ(r.client_host, "laptop.example");
    SLICE_EQ(r.client_addr, "2001:db8::7");
    SLICE_EQ(r.sasl_method, "PLAIN");
    SLICE_EQ(r.sasl_username, "alice@tenant.example");
    mem_free(c);
    P("Nov 28 12:00:10 mail postfix/smtpd[73]: 3F1A2B3C4D: client=unknown[192.0.2.7]",
      MAILLOG_CLIENT);
    SLICE_EQ(r.client_host, "unknown");
    ck_assert_ptr_null(r.sasl_username.p);
    mem_free(c);

    P("Nov 28 12:00:11 mail postfix/pickup[74]: 3F1A2B3C4D: uid=1000 from=<alice>", MAILLOG_PICKUP);
    ck_assert_int_eq(r.uid, 1000);
    SLICE_EQ(r.from, "alice");
    mem_free(c);

    P("Nov 28 12:00:12 mail postfix/bounce[75]: 3F1A2B3C4D: sender non-delivery notification: "
      "4B2C3D4E5F", MAILLOG_NOTIFY);
    ck_assert_str_eq(r.notify_qid, "4B2C3D4E5F");
    mem_free(c);

    /* no PID, a bare program name */
    P("Nov 28 12:00:13 mail postfix-out/smtp: 3F1A2B3C4D: removed", MAILLOG_REMOVED);
    ck_assert_int_eq(r.pid, -1);
    SLICE_EQ(r.syslog_name, "postfix-out");
    mem_free(c);
    P("Nov 28 12:00:13 mail qmgr[5]: 3F1A2B3C4D: removed", MAILLOG_REMOVED);
    ck_assert_ptr_null(r.syslog_name.p);
    SLICE_EQ(r.service, "qmgr");
    mem_free(c);
#undef P
}
END_TEST

/* Postfix's other lines, and kinds whose fields cannot be read. */
START_TEST(test_other)
{
    static const char *const lines[] = {
        "Nov 28 12:00:00 mail postfix/smtpd[1]: connect from unknown[192.0.2.7]",
        "Nov 28 12:00:00 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.7]: "
        "554 5.7.1 <x@y>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>",
        "Nov 28 12:00:00 mail postfix/smtp[1]: warning: TLS library problem: x",
        "Nov 28 12:00:00 mail postfix/master[1]: daemon started -- version 3.7.11",
        "Nov 28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: lost connection with x[1.2.3.4]",
        "Nov 28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: to=<a@b>, relay=x[1.2.3.4]:25, "
        "delay=1, delays=0/0/0/1, dsn=5.1, status=bounced (bad dsn)",
        "Nov 28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: to=<a@b>, relay=x[1.2.3.4]:abc, "
        "delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (bad port)",
        "Nov 28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: to=<a@b>, relay=x[1.2.3.4]:25, "
        "delay=soon, delays=0/0/0/1, dsn=5.1.1, status=bounced (bad delay)",
        "Nov 28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: to=<a@b>, relay=x[1.2.3.4]:25, "
        "delay=1, delays=0/0/0/1, dsn=5.1.1, status=weird (unknown status)",
        "Nov 28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: to=a@b, relay=x, status=sent (x)",
        "Nov 28 12:00:00 mail postfix/qmgr[1]: 3F1A2B3C4D: from=<a@b>, size=x, nrcpt=1 (queue active)",
        "Nov 28 12:00:00 mail postfix/qmgr[1]: 3F1A2B3C4D: removed twice",
        "Nov 28 12:00:00 mail postfix/smtpd[1]: 3F1A2B3C4D: client=nobrackets, sasl_method=PLAIN",
        "Nov 28 12:00:00 mail postfix/qmgr[1]: ABCDE: removed",             /* qid too short */
        "Nov 28 12:00:00 mail postfix/qmgr[1]: 3f1a2b3c4d: removed",        /* lower case */
        "Nov 28 12:00:00 mail postfix/qmgr[1]: 0123456789ABCDEF0123456789: removed", /* too long */
    };
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        enum maillog_kind k = parse_n(&ctx, lines[i], strlen(lines[i]), &r, &c);
        ck_assert_msg(k == MAILLOG_OTHER, "line %zu: %s", i, maillog_kind_name(k));
        ck_assert_int_eq(r.time, utc(2026, 11, 28, 12, 0, 0));
        ck_assert_uint_gt(r.text.n, 0);
        mem_free(c);
    }
    ck_assert_int_eq(parse_n(&ctx, lines[0], strlen(lines[0]), &r, &c), MAILLOG_OTHER);
    SLICE_EQ(r.text, "connect from unknown[192.0.2.7]");
    ck_assert_str_eq(r.qid, "");
    mem_free(c);
}
END_TEST

START_TEST(test_foreign)
{
    static const char *const lines[] = {
        "Nov 28 12:00:00 mail dovecot: imap-login: Login: user=<alice>, method=PLAIN",
        "Nov 28 12:00:00 mail opendkim[55]: 3F1A2B3C4D: DKIM-Signature field added",
        "Nov 28 12:00:00 mail kernel: [12345.678] eth0: link up",
        "Nov 28 12:00:00 mail systemd[1]: Started postfix.service - Postfix Mail Transport Agent.",
        "Nov 28 12:00:00 mail CRON[99]: (root) CMD (run-parts /etc/cron.hourly)",
        "2026-11-28T12:00:00+00:00 mail sshd[3]: Accepted publickey for root",
        "hello world",
        "-- Journal begins at Sat 2026-11-28 --",
        "Foo 28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: removed",     /* month */
        "Nov 31 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: removed",     /* day */
        "Feb 30 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: removed",
        "Nov 28 24:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: removed",     /* hour */
        "Nov 28 12:60:00 mail postfix/smtp[1]: 3F1A2B3C4D: removed",
        "2026-13-28T12:00:00Z mail postfix/smtp[1]: 3F1A2B3C4D: removed",
        "2026-02-29T12:00:00Z mail postfix/smtp[1]: 3F1A2B3C4D: removed", /* not a leap year */
        "2026-11-28T12:00:00+25:00 mail postfix/smtp[1]: 3F1A2B3C4D: removed",
        "2026-11-28 12:00:00 mail postfix/smtp[1]: 3F1A2B3C4D: removed",
        "Nov 28 12:00:00  mail postfix/smtp[1]: 3F1A2B3C4D: removed",    /* empty host */
        "Nov 28 12:00:00 mail /smtp[1]: 3F1A2B3C4D: removed",
        "Nov 28 12:00:00 mail postfix/[1]: 3F1A2B3C4D: removed",
        "Nov 28 12:00:00 mail postfix/smtp[]: 3F1A2B3C4D: removed",
        "Nov 28 12:00:00 mail postfix/smtp[12x]: 3F1A2B3C4D: removed",
        "Nov 28 12:00:00 mail postfix/smtp[1]:3F1A2B3C4D: removed",
        "Nov 28 12:00:00 mail postfix/smtp [1]: 3F1A2B3C4D: removed",
        "Nov 28 12:00:00 mail postfix/notaservice[1]: 3F1A2B3C4D: removed",
    };
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        enum maillog_kind k = parse_n(&ctx, lines[i], strlen(lines[i]), &r, &c);
        ck_assert_msg(k == MAILLOG_FOREIGN, "line %zu: %s", i, maillog_kind_name(k));
        mem_free(c);
    }
    /* empty: nothing to read */
    ck_assert_int_eq(parse_n(&ctx, "", 0, &r, &c), MAILLOG_TRUNCATED);
    mem_free(c);
    ck_assert_int_eq(maillog_parse(&ctx, NULL, 0, &r), MAILLOG_TRUNCATED);
}
END_TEST

START_TEST(test_nul_bytes)
{
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
    /* a NUL in the reply is kept (the length says where it ends) */
    static const char l1[] = "Nov 28 12:00:01 host postfix/smtp[1]: 3F1A2B3C4D: to=<a@b>, relay=none, "
                             "delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (55\0 odd)";
    ck_assert_int_eq(parse_n(&ctx, l1, sizeof l1 - 1, &r, &c), MAILLOG_DELIVERY);
    ck_assert_uint_eq(r.reply.n, 7);
    ck_assert_int_eq(memcmp(r.reply.p, "55\0 odd", 7), 0);
    mem_free(c);
    /* in the header: foreign */
    static const char l2[] = "Nov 28 12:00:01 ho\0st postfix/smtp[1]: 3F1A2B3C4D: removed";
    ck_assert_int_eq(parse_n(&ctx, l2, sizeof l2 - 1, &r, &c), MAILLOG_FOREIGN);
    mem_free(c);
    static const char l3[] = "Nov 28 12:00:01 host postfix\0/smtp[1]: 3F1A2B3C4D: removed";
    ck_assert_int_eq(parse_n(&ctx, l3, sizeof l3 - 1, &r, &c), MAILLOG_FOREIGN);
    mem_free(c);
    /* in the queue ID: not one */
    static const char l4[] = "Nov 28 12:00:01 host postfix/qmgr[1]: 3F1A2\0B3C4D: removed";
    ck_assert_int_eq(parse_n(&ctx, l4, sizeof l4 - 1, &r, &c), MAILLOG_OTHER);
    mem_free(c);
    /* all NULs */
    char zeros[64] = { 0 };
    ck_assert_int_eq(parse_n(&ctx, zeros, sizeof zeros, &r, &c), MAILLOG_FOREIGN);
    mem_free(c);
}
END_TEST

START_TEST(test_long_lines)
{
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
    size_t big = 1 << 20;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "Nov 28 12:00:01 host postfix/smtp[1]: 3F1A2B3C4D: to=<a@b>, relay=none, delay=1, "
                 "delays=0/0/0/1, dsn=5.0.0, status=bounced (");
    size_t start = b.len;
    for (size_t i = 0; i < big; i++)
        buf_putc(&b, i % 100 == 0 ? '(' : i % 100 == 50 ? ')' : ',');
    size_t end = b.len;
    buf_puts(&b, ")");
    ck_assert_int_eq(parse_n(&ctx, b.data, b.len, &r, &c), MAILLOG_DELIVERY);
    ck_assert_uint_eq(r.reply.n, end - start);
    mem_free(c);
    /* a long host and program: read, the program is not Postfix's */
    buf_reset(&b);
    buf_puts(&b, "Nov 28 12:00:01 ");
    for (size_t i = 0; i < big; i++)
        buf_putc(&b, 'h');
    buf_puts(&b, " ");
    for (size_t i = 0; i < big; i++)
        buf_putc(&b, 'p');
    buf_puts(&b, "[1]: x");
    ck_assert_int_eq(parse_n(&ctx, b.data, b.len, &r, &c), MAILLOG_FOREIGN);
    mem_free(c);
    /* a long word where the queue ID would be */
    buf_reset(&b);
    buf_puts(&b, "Nov 28 12:00:01 host postfix/smtp[1]: ");
    for (size_t i = 0; i < big; i++)
        buf_putc(&b, 'A');
    ck_assert_int_eq(parse_n(&ctx, b.data, b.len, &r, &c), MAILLOG_OTHER);
    mem_free(c);
    buf_free(&b);
}
END_TEST

/* Every proper prefix of a line, as an exact-size copy: truncated, except a
 * delivery line cut right after a ')' inside its reply, which reads as a
 * delivery with a shorter reply, and a notification whose queue ID cut
 * still has 6 characters (the log cannot tell). */
static void check_prefixes(const char *line, enum maillog_kind full)
{
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
    size_t n = strlen(line);
    for (size_t i = 0; i < n; i++) {
        enum maillog_kind k = parse_n(&ctx, line, i, &r, &c);
        if (full == MAILLOG_DELIVERY && i > 0 && line[i - 1] == ')' && k == MAILLOG_DELIVERY)
            ck_assert_ptr_eq(r.reply.p + r.reply.n, c + i - 1);
        else if (full == MAILLOG_NOTIFY && k == MAILLOG_NOTIFY)
            ck_assert_uint_ge(strlen(r.notify_qid), 6);   /* a cut ID may still be one */
        else
            ck_assert_msg(k == MAILLOG_TRUNCATED, "prefix %zu of \"%s\": %s", i, line,
                          maillog_kind_name(k));
        mem_free(c);
    }
    ck_assert_int_eq(parse_n(&ctx, line, n, &r, &c), full);
    mem_free(c);
}

START_TEST(test_prefixes)
{
    check_prefixes(L_SENT, MAILLOG_DELIVERY);
    check_prefixes(L_NESTED, MAILLOG_DELIVERY);
    check_prefixes("Nov  3 12:00:06 mail postfix/qmgr[70]: 3F1A2B3C4D: from=<s@t.example>, "
                   "size=4213, nrcpt=3 (queue active)", MAILLOG_QUEUED);
    check_prefixes("Nov 28 12:00:07 mail postfix/qmgr[70]: 3F1A2B3C4D: from=<s@t.example>, "
                   "status=expired, returned to sender", MAILLOG_EXPIRED);
    check_prefixes("2026-11-28T12:00:01.5+01:00 mail postfix/cleanup[72]: 3Pt2mN2VXxznjll: "
                   "message-id=<x@y>", MAILLOG_MESSAGE_ID);
    check_prefixes("Nov 28 12:00:11 mail postfix/pickup[74]: 3F1A2B3C4D: uid=1000 from=<alice>",
                   MAILLOG_PICKUP);
    check_prefixes("Nov 28 12:00:12 mail postfix/postsuper[75]: 3F1A2B3C4D: released from hold",
                   MAILLOG_RELEASE);
    check_prefixes("Nov 28 12:00:12 mail postfix/bounce[75]: 3F1A2B3C4D: sender non-delivery "
                   "notification: 4B2C3D4E5F", MAILLOG_NOTIFY);
    check_prefixes("Nov 28 12:00:10 mail postfix/smtpd[73]: 3F1A2B3C4D: client=x[192.0.2.7]",
                   MAILLOG_CLIENT);
}
END_TEST

/* The year of a traditional stamp: the latest that is no more than a day
 * after the reference. */
START_TEST(test_year)
{
    struct {
        int64_t ref;
        const char *stamp;
        int64_t want;
    } c2[] = {
        { utc(2027, 1, 1, 0, 10, 0), "Dec 31 23:59:59", utc(2026, 12, 31, 23, 59, 59) },
        { utc(2027, 1, 1, 0, 10, 0), "Jan  1 00:20:00", utc(2027, 1, 1, 0, 20, 0) },
        { utc(2027, 1, 1, 0, 10, 0), "Jan  1 23:59:00", utc(2027, 1, 1, 23, 59, 0) },
        { utc(2027, 1, 1, 0, 10, 0), "Jan  2 01:00:00", utc(2026, 1, 2, 1, 0, 0) },
        { utc(2026, 12, 31, 23, 50, 0), "Jan  1 00:05:00", utc(2027, 1, 1, 0, 5, 0) },
        { utc(2026, 12, 31, 23, 50, 0), "Dec 31 23:55:00", utc(2026, 12, 31, 23, 55, 0) },
        { utc(2026, 12, 31, 23, 50, 0), "Jan  5 00:00:00", utc(2026, 1, 5, 0, 0, 0) },
        { utc(2026, 11, 28, 12, 0, 0), "Nov 29 11:00:00", utc(2026, 11, 29, 11, 0, 0) },
        { utc(2026, 11, 28, 12, 0, 0), "Nov 29 13:00:00", utc(2025, 11, 29, 13, 0, 0) },
        { utc(2026, 3, 1, 0, 0, 0), "Feb 29 12:00:00", utc(2024, 2, 29, 12, 0, 0) },
        { utc(2028, 3, 1, 0, 0, 0), "Feb 29 12:00:00", utc(2028, 2, 29, 12, 0, 0) },
        { utc(2028, 2, 28, 13, 0, 0), "Feb 29 12:00:00", utc(2028, 2, 29, 12, 0, 0) },
        { utc(2028, 2, 27, 12, 0, 0), "Feb 29 12:00:00", utc(2024, 2, 29, 12, 0, 0) },
    };
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    for (size_t i = 0; i < sizeof c2 / sizeof c2[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s host postfix/qmgr[1]: 3F1A2B3C4D: removed", c2[i].stamp);
        ctx_utc(&ctx, c2[i].ref);
        ck_assert_int_eq(parse_n(&ctx, line, strlen(line), &r, &c), MAILLOG_REMOVED);
        ck_assert_msg(r.time == c2[i].want, "case %zu: %lld != %lld", i, (long long)r.time,
                      (long long)c2[i].want);
        mem_free(c);
    }
}
END_TEST

START_TEST(test_time_zone)
{
    struct maillog_ctx ctx;
    struct maillog_rec r;
    char *c;
    static const char l1[] = "Nov 28 13:00:01 host postfix/qmgr[1]: 3F1A2B3C4D: removed";
    static const char l2[] = "Jul  1 12:00:00 host postfix/qmgr[1]: 3F1A2B3C4D: removed";
    /* a fixed offset */
    ctx_utc(&ctx, utc(2026, 11, 28, 12, 30, 0));
    ctx.tz_offset = 3600;
    ck_assert_int_eq(parse_n(&ctx, l1, strlen(l1), &r, &c), MAILLOG_REMOVED);
    ck_assert_int_eq(r.time, utc(2026, 11, 28, 12, 0, 1));
    mem_free(c);
    /* the process's zone, with summer time (each test runs in its own process) */
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    maillog_ctx_init(&ctx, (time_t)utc(2026, 11, 28, 12, 30, 0));
    ck_assert_int_eq(parse_n(&ctx, l1, strlen(l1), &r, &c), MAILLOG_REMOVED);
    ck_assert_int_eq(r.time, utc(2026, 11, 28, 12, 0, 1));
    mem_free(c);
    ck_assert_int_eq(parse_n(&ctx, l2, strlen(l2), &r, &c), MAILLOG_REMOVED);
    ck_assert_int_eq(r.time, utc(2026, 7, 1, 10, 0, 0));
    mem_free(c);
    ck_assert_int_eq(parse_n(&ctx, l1, strlen(l1), &r, &c), MAILLOG_REMOVED);
    ck_assert_int_eq(r.time, utc(2026, 11, 28, 12, 0, 1));
    mem_free(c);
}
END_TEST

static void add(TCase *tc)
{
    tcase_add_test(tc, test_delivery_traditional);
    tcase_add_test(tc, test_delivery_rfc3339_nested);
    tcase_add_test(tc, test_kinds);
    tcase_add_test(tc, test_other);
    tcase_add_test(tc, test_foreign);
    tcase_add_test(tc, test_nul_bytes);
    tcase_add_test(tc, test_long_lines);
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_year);
    tcase_add_test(tc, test_time_zone);
}
UNIT_MAIN("maillog", add)
