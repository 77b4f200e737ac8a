/* test_bounce.c: unit tests of lib/bounce.c: replies written in the style
 * of big providers (Gmail-like, Outlook-like, Yahoo-like, small Postfix and
 * Exim receivers) and Postfix's own explanations, one group per class; the
 * precedence of codes over texts (and where texts win); slices without NUL;
 * the rule table's printing, names, labels and parsing. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bounce.h"
#include "unit.h"

struct bcase {
    const char *dsn, *status, *reply;
    enum bounce_class want;
};

/* Classify exact-size copies of the slices (no NUL after them). */
static enum bounce_class classify(const char *dsn, const char *status, const char *reply)
{
    size_t nd = dsn ? strlen(dsn) : 0, ns = status ? strlen(status) : 0;
    size_t nr = reply ? strlen(reply) : 0;
    char *d = dsn ? mem_alloc(nd + 1) : NULL, *s = status ? mem_alloc(ns + 1) : NULL;
    char *r = reply ? mem_alloc(nr + 1) : NULL;
    if (d)
        memcpy(d, dsn, nd);
    if (s)
        memcpy(s, status, ns);
    if (r)
        memcpy(r, reply, nr);
    size_t rule;
    enum bounce_class c = bounce_classify(d, nd, s, ns, r, nr, &rule);
    if (c == BOUNCE_NONE || c == BOUNCE_OTHER)
        ck_assert_uint_eq(rule, bounce_rule_count());
    else
        ck_assert_int_eq(bounce_rule_get(rule)->cls, c);
    mem_free(d);
    mem_free(s);
    mem_free(r);
    return c;
}

static void run(const struct bcase *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum bounce_class c = classify(v[i].dsn, v[i].status, v[i].reply);
        ck_assert_msg(c == v[i].want, "case %zu (%s, \"%s\"): %s, want %s", i,
                      v[i].dsn ? v[i].dsn : "-", v[i].reply ? v[i].reply : "-",
                      bounce_class_name(c), bounce_class_name(v[i].want));
    }
}

START_TEST(test_unknown_user)
{
    static const struct bcase v[] = {
        { "5.1.1", "bounced", "host gmail-like-mx.example[192.0.2.1] said: 550-5.1.1 The email "
          "account that you tried to reach does not exist. Please check the address for typos "
          "(in reply to RCPT TO command)", BOUNCE_UNKNOWN_USER },
        { "5.1.10", "bounced", "host outlook-like.example[192.0.2.2] said: 550 5.1.10 "
          "RESOLVER.ADR.RecipientNotFound; Recipient bob@contoso.example not found by SMTP "
          "address lookup (in reply to RCPT TO command)", BOUNCE_UNKNOWN_USER },
        { "5.4.1", "bounced", "host outlook-like.example[192.0.2.2] said: 550 5.4.1 Recipient "
          "address rejected: Access denied. [AB1CD2.prod.example] (in reply to RCPT TO command)",
          BOUNCE_UNKNOWN_USER },
        { "5.0.0", "bounced", "host yahoo-like.example[192.0.2.3] said: 554 delivery error: "
          "dd This user doesn't have a yahoo-like.example account (bob@yahoo-like.example) [0] "
          "- mta1.example; no such user here (in reply to end of DATA command)", BOUNCE_UNKNOWN_USER },
        { "5.1.0", "bounced", "host mx.small.example[192.0.2.4] said: 550 5.1.0 <bob@small.example>: "
          "User unknown (in reply to RCPT TO command)", BOUNCE_UNKNOWN_USER },
        { "5.0.0", "bounced", "host mx.exim.example[192.0.2.5] said: 550 Requested action not "
          "taken: mailbox unavailable (in reply to RCPT TO command)", BOUNCE_UNKNOWN_USER },
        { "5.2.1", "bounced", "host gmail-like-mx.example[192.0.2.1] said: 550 5.2.1 The email "
          "account that you tried to reach is disabled. (in reply to RCPT TO command)",
          BOUNCE_UNKNOWN_USER },
        { "5.1.1", "bounced", "<bob@local.example>: unknown user: \"bob\"", BOUNCE_UNKNOWN_USER },
        { NULL, "bounced", "550 Sorry, no mailbox here by that name", BOUNCE_UNKNOWN_USER },
        { "4.1.1", "deferred", "host mx.example[192.0.2.6] said: 450 4.1.1 <x@y>: Recipient "
          "address rejected: unverified address (in reply to RCPT TO command)", BOUNCE_UNKNOWN_USER },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

START_TEST(test_mailbox_full)
{
    static const struct bcase v[] = {
        { "5.2.2", "bounced", "host gmail-like-mx.example[192.0.2.1] said: 552-5.2.2 The recipient's "
          "inbox is out of storage space. Please direct the recipient to a help page (in reply to "
          "end of DATA command)", BOUNCE_MAILBOX_FULL },
        { "4.2.2", "deferred", "host mx.example[192.0.2.6] said: 452 4.2.2 Mailbox full (in reply "
          "to RCPT TO command)", BOUNCE_MAILBOX_FULL },
        { "5.0.0", "bounced", "host yahoo-like.example[192.0.2.3] said: 552 1 Requested mail action "
          "aborted, mailbox is full (in reply to RCPT TO command)", BOUNCE_MAILBOX_FULL },
        { "4.0.0", "deferred", "host dovecot.example[192.0.2.7] said: 452 <u@example>: user is over "
          "quota (in reply to RCPT TO command)", BOUNCE_MAILBOX_FULL },
        { "5.5.0", "bounced", "550 Quota exceeded for this mailbox", BOUNCE_MAILBOX_FULL },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

START_TEST(test_too_big)
{
    static const struct bcase v[] = {
        { "5.3.4", "bounced", "host gmail-like-mx.example[192.0.2.1] said: 552-5.3.4 Your message "
          "exceeded the limit for message size. (in reply to end of DATA command)", BOUNCE_TOO_BIG },
        { "5.0.0", "bounced", "host mx.example[192.0.2.6] said: 552 Message size exceeds fixed "
          "maximum message size (in reply to MAIL FROM command)", BOUNCE_TOO_BIG },
        { "5.2.3", "bounced", "host outlook-like.example[192.0.2.2] said: 552 5.2.3 Message length "
          "exceeds administrative limit", BOUNCE_TOO_BIG },
        { "5.5.0", "bounced", "message too large for this system", BOUNCE_TOO_BIG },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

START_TEST(test_policy)
{
    static const struct bcase v[] = {
        { "5.7.1", "bounced", "host gmail-like-mx.example[192.0.2.1] said: 550-5.7.1 Our system has "
          "detected that this message is likely unsolicited mail. To reduce the amount of spam "
          "this message has been blocked. (in reply to end of DATA command)", BOUNCE_POLICY },
        { "5.7.26", "bounced", "host gmail-like-mx.example[192.0.2.1] said: 550-5.7.26 This mail "
          "has been blocked because the sender is unauthenticated. (in reply to end of DATA "
          "command)", BOUNCE_POLICY },
        { "4.7.28", "deferred", "host gmail-like-mx.example[192.0.2.1] said: 421-4.7.28 Unusual rate "
          "of unsolicited mail originating from your IP address (in reply to end of DATA command)",
          BOUNCE_POLICY },
        { "5.7.1", "bounced", "host outlook-like.example[192.0.2.2] said: 550 5.7.1 Service "
          "unavailable, Client host [198.51.100.9] blocked using Spamhaus. (in reply to MAIL FROM "
          "command)", BOUNCE_POLICY },
        { "4.7.0", "deferred", "host yahoo-like.example[192.0.2.3] said: 421 4.7.0 [TSS04] Messages "
          "from 198.51.100.9 temporarily deferred due to unexpected volume or user complaints "
          "(in reply to MAIL FROM command)", BOUNCE_POLICY },
        { "5.0.0", "bounced", "host mx.example[192.0.2.6] said: 554 Your IP 198.51.100.9 is listed "
          "on a DNS block list (in reply to RCPT TO command)", BOUNCE_POLICY },
        { "5.0.0", "bounced", "host mx.example[192.0.2.6] said: 550 Message rejected due to policy "
          "(in reply to end of DATA command)", BOUNCE_POLICY },
        { "5.5.0", "bounced", "host mx.example[192.0.2.6] said: 554 Blacklisted by barracuda "
          "reputation system (in reply to RCPT TO command)", BOUNCE_POLICY },
        { NULL, "bounced", "550 Blocklisted: see https://rbl.example/lookup", BOUNCE_POLICY },
        { "5.7.0", "bounced", "host lab-receiver[127.0.0.10] said: 554 5.7.1 <x@y>: Recipient "
          "address rejected: Access denied (in reply to RCPT TO command)", BOUNCE_POLICY },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

START_TEST(test_dns_or_route)
{
    static const struct bcase v[] = {
        { "5.4.4", "bounced", "Host or domain name not found. Name service error for "
          "name=nowhere.example type=AAAA: Host not found", BOUNCE_DNS_OR_ROUTE },
        { "4.4.3", "deferred", "Host or domain name not found. Name service error for "
          "name=slow.example type=MX: Host not found, try again", BOUNCE_DNS_OR_ROUTE },
        { "4.4.1", "deferred", "connect to mx.example[192.0.2.6]:25: No route to host",
          BOUNCE_DNS_OR_ROUTE },
        { "4.4.1", "deferred", "connect to mx.example[192.0.2.6]:25: Connection timed out",
          BOUNCE_DNS_OR_ROUTE },
        { "4.4.1", "expired", "delivery temporarily suspended: connect to mx.example[192.0.2.6]:25: "
          "Connection refused", BOUNCE_DNS_OR_ROUTE },
        { "4.4.2", "deferred", "conversation with mx.example[192.0.2.6] timed out while receiving "
          "the initial server greeting", BOUNCE_DNS_OR_ROUTE },
        { "5.4.6", "bounced", "mail for mail.example loops back to myself", BOUNCE_DNS_OR_ROUTE },
        { "5.1.2", "bounced", "host mx.example said: 550 5.1.2 bad destination system",
          BOUNCE_DNS_OR_ROUTE },
        { "4.0.0", "deferred", "connect to mx.example[2001:db8::6]:25: Network is unreachable",
          BOUNCE_DNS_OR_ROUTE },
        { NULL, "deferred", "connect to mx.example[192.0.2.6]:25: Connection refused",
          BOUNCE_DNS_OR_ROUTE },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

START_TEST(test_tls)
{
    static const struct bcase v[] = {
        { "4.7.4", "deferred", "TLS is required, but was not offered by host mx.example[192.0.2.6]",
          BOUNCE_TLS },
        { "4.7.5", "deferred", "Cannot start TLS: handshake failure", BOUNCE_TLS },
        { "4.7.5", "deferred", "Server certificate not verified", BOUNCE_TLS },
        { "5.7.0", "bounced", "host mx.example[192.0.2.6] said: 530 5.7.0 Must issue a STARTTLS "
          "command first (in reply to MAIL FROM command)", BOUNCE_TLS },
        { "5.0.0", "bounced", "host mx.example[192.0.2.6] said: 554 certificate verification failed "
          "for mx.example", BOUNCE_TLS },
        { "4.4.2", "deferred", "lost connection with mx.example[192.0.2.6] during the TLS handshake",
          BOUNCE_TLS },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

START_TEST(test_other_and_none)
{
    static const struct bcase v[] = {
        { "4.3.0", "deferred", "host mx.example said: 451 4.3.0 Temporary local problem",
          BOUNCE_OTHER },
        { "5.5.1", "bounced", "host mx.example said: 500 5.5.1 Command unrecognized", BOUNCE_OTHER },
        { NULL, NULL, NULL, BOUNCE_OTHER },
        { "garbage", "bounced", "", BOUNCE_OTHER },
        { "2.0.0", "sent", "250 2.0.0 Ok: queued as XYZ", BOUNCE_NONE },
        { "5.1.1", "sent", "250 odd but sent", BOUNCE_NONE },
        { "2.1.5", "deliverable", "delivers to mailbox", BOUNCE_NONE },
        { "2.0.0", NULL, NULL, BOUNCE_NONE },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

/* Specific codes win over the text; the text wins for generic codes; 5.7.x
 * stays policy unless the text is clearly TLS. */
START_TEST(test_precedence)
{
    static const struct bcase v[] = {
        { "5.7.1", "bounced", "550 5.7.1 <x@y>: Recipient address rejected: User unknown",
          BOUNCE_POLICY },
        { "5.1.1", "bounced", "550 5.1.1 user unknown; you are also listed on a spam blocklist",
          BOUNCE_UNKNOWN_USER },
        { "5.2.2", "bounced", "552 5.2.2 over quota and the message size exceeds our limit",
          BOUNCE_MAILBOX_FULL },
        { "5.3.4", "bounced", "552 5.3.4 message too big; mailbox full as well", BOUNCE_TOO_BIG },
        { "5.0.0", "bounced", "550 5.0.0 user unknown", BOUNCE_UNKNOWN_USER },
        { "4.0.0", "deferred", "452 mailbox full", BOUNCE_MAILBOX_FULL },
        { "5.5.0", "bounced", "550 5.5.0 message rejected as spam", BOUNCE_POLICY },
        { "5.7.1", "bounced", "554 5.7.1 blocked: host not found in our DNS", BOUNCE_POLICY },
        { "5.7.1", "bounced", "554 5.7.1 TLS is required for this domain", BOUNCE_TLS },
        { "5.1.1", "bounced", "550 5.1.1 no such user (STARTTLS was used)", BOUNCE_UNKNOWN_USER },
        { "4.4.1", "deferred", "connect to x: Connection refused; listed", BOUNCE_DNS_OR_ROUTE },
        { "5.0.0", "bounced", "550 Message too big for a mailbox full of spam", BOUNCE_TOO_BIG },
        { "5.0.0", "bounced", "550 MAILBOX FULL", BOUNCE_MAILBOX_FULL },
    };
    run(v, sizeof v / sizeof v[0]);
}
END_TEST

START_TEST(test_table)
{
    size_t n = bounce_rule_count();
    ck_assert_uint_gt(n, 20);
    ck_assert_ptr_null(bounce_rule_get(n));
    for (size_t i = 0; i < n; i++) {
        const struct bounce_rule *r = bounce_rule_get(i);
        ck_assert(r->code != NULL || r->text != NULL);
        ck_assert(r->cls != BOUNCE_NONE && r->cls != BOUNCE_OTHER);
        for (const char *t = r->text; t != NULL && *t != '\0'; t++)
            ck_assert_msg(!(*t >= 'A' && *t <= 'Z'), "upper case in rule %zu", i);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    bounce_table_print(f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "?.1.1"));
    ck_assert_ptr_nonnull(strstr(text, "\"user unknown\""));
    ck_assert_ptr_nonnull(strstr(text, "dns_or_route"));
    size_t lines = 0;
    for (const char *p = text; *p != '\0'; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, n + 4);   /* legend (3), header, rules */
    free(text);

    static const char *const names[] = { "none", "unknown_user", "mailbox_full", "too_big",
                                         "policy", "dns_or_route", "tls", "other" };
    for (int i = 0; i < BOUNCE_NCLASSES; i++) {
        ck_assert_str_eq(bounce_class_name((enum bounce_class)i), names[i]);
        ck_assert_uint_gt(strlen(bounce_class_label((enum bounce_class)i)), 0);
        enum bounce_class c;
        ck_assert(bounce_class_parse(names[i], &c));
        ck_assert_int_eq(c, i);
    }
    enum bounce_class c;
    ck_assert(!bounce_class_parse("spam", &c));
    ck_assert_str_eq(bounce_class_label(BOUNCE_POLICY), "blocked as spam or by policy");
    ck_assert_str_eq(bounce_class_name((enum bounce_class)99), "?");
}
END_TEST

static void add(TCase *tc)
{
    tcase_add_test(tc, test_unknown_user);
    tcase_add_test(tc, test_mailbox_full);
    tcase_add_test(tc, test_too_big);
    tcase_add_test(tc, test_policy);
    tcase_add_test(tc, test_dns_or_route);
    tcase_add_test(tc, test_tls);
    tcase_add_test(tc, test_other_and_none);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_table);
}
UNIT_MAIN("bounce", add)
