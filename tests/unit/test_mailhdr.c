/* test_mailhdr.c: unit tests of lib/mailhdr.c and milter/authres.c.
 * From: values, one Check test each (a table): plain addresses, display
 * names (atoms, quoted with commas and '@' inside, encoded words, 8-bit
 * and invalid UTF-8), comments everywhere (nested, with quoted-pairs and
 * '@' inside), groups (empty, with one or two mailboxes), several
 * mailboxes, empty list elements, nothing at all, obs-route, obsolete
 * CFWS inside addresses, folding with CRLF and LF, domains (trailing dot,
 * case, IDN, literal, bad bytes, empty labels, lengths at and past the
 * limits), what is refused (NUL, unbalanced quotes, comments and angle
 * brackets, two '@', a phrase next to an addr-spec, nested groups); 64 KB
 * values in linear time.  The authserv-id of Authentication-Results
 * values (plain, after a comment, quoted, with a version, empty, garbage,
 * too long, NUL).  The Authentication-Results builder: exact values for
 * spf + dkim + dmarc, quoting, what is left out of values and comments,
 * folding (no line over 78 columns with the field name counted), "none". */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authres.h"
#include "mailhdr.h"
#include "unit.h"

/* --- From: -------------------------------------------------------------- */

struct from_case {
    const char *in;
    enum mailhdr_from_status status;
    const char *domain;      /* OK only */
    size_t n;                /* mailboxes */
};

#define OK(in, d) {in, MAILHDR_FROM_OK, d, 1}
#define ST(in, st, n) {in, MAILHDR_FROM_##st, "", n}

static const struct from_case from_cases[] = {
    OK("alice@example.org", "example.org"),
    OK(" alice@example.org", "example.org"),
    OK("Alice <alice@example.org>", "example.org"),
    OK("<alice@example.org>", "example.org"),
    OK("\"Alice Smith\" <alice@example.org>", "example.org"),
    OK("\"Smith, Alice\" <alice@example.org>", "example.org"),
    OK("\"bob@evil.test\" <alice@example.org>", "example.org"),
    OK("\"a\\\"b, c\" <x@example.org>", "example.org"),
    OK("John Q. Public <jqp@example.org>", "example.org"),
    OK("=?utf-8?q?J=C3=BCrgen?= <j@example.de>", "example.de"),
    OK("J\xc3\xbcrgen M\xc3\xbcller <j@example.de>", "example.de"),
    OK("\xff\xfe\x80 <j@example.de>", "example.de"),
    OK("\"\xc3\x28 \xed\xa0\x80\" <j@example.de>", "example.de"),
    OK("alice@example.org (Alice)", "example.org"),
    OK("(comment) alice@example.org", "example.org"),
    OK("alice(c1)@(c2)example.org(c3)", "example.org"),
    OK("Alice (nested (deep (x@evil.test)) comment) <alice@example.org>", "example.org"),
    OK("(a \\) b@evil.test) alice@example.org", "example.org"),
    OK("Alice <alice@example.org> (bob@evil.test)", "example.org"),
    OK("\"quoted local\"@example.org", "example.org"),
    OK("\"\"@example.org", "example.org"),
    OK("john..doe.@example.org", "example.org"),
    OK("alice @ example . org", "example.org"),
    OK("<@relay.example,@r2.example:alice@example.org>", "example.org"),
    OK("Alice <@relay.example:alice@example.org>", "example.org"),
    OK("alice@example.org.", "example.org"),
    OK("Alice@EXAMPLE.Org", "example.org"),
    OK("alice@localhost", "localhost"),
    OK("alice@x-1.example-2.org", "x-1.example-2.org"),
    OK("Alice\r\n <alice@example.org>", "example.org"),
    OK("Alice\n\t<alice@\n example.org>", "example.org"),
    OK("\"Alice\r\n Smith\" <alice@example.org>", "example.org"),
    OK("a@example.org,,, ", "example.org"),
    OK(", a@example.org", "example.org"),
    OK("grp: a@example.org;", "example.org"),
    OK("grp:;, alice@example.org", "example.org"),
    OK("Undisclosed recipients:; , alice@example.org", "example.org"),
    ST("Undisclosed recipients:;", NONE, 0),
    ST("undisclosed-recipients: ;", NONE, 0),
    ST("undisclosed-recipients:", NONE, 0),
    ST("", NONE, 0),
    ST("   ", NONE, 0),
    ST("\r\n\t", NONE, 0),
    ST("(only a comment)", NONE, 0),
    ST(",,", NONE, 0),
    ST("a@x.example, b@y.example", MULTIPLE, 2),
    ST("grp: a@x.example, b@y.example;", MULTIPLE, 2),
    ST("g1: a@x.example;, g2: b@y.example;", MULTIPLE, 2),
    ST("a@x.example, b@", MULTIPLE, 2),
    ST("a@x.example, bob", MULTIPLE, 2),
    ST("MAILER-DAEMON", NO_DOMAIN, 1),
    ST("Mail Delivery System", NO_DOMAIN, 1),
    ST("<postmaster>", NO_DOMAIN, 1),
    ST("<>", NO_DOMAIN, 1),
    ST("alice@", BAD_DOMAIN, 1),
    ST("Alice <alice@>", BAD_DOMAIN, 1),
    ST("alice@b\xc3\xbc" "cher.example", BAD_DOMAIN, 1),
    ST("alice@[192.0.2.1]", BAD_DOMAIN, 1),
    ST("Alice <alice@[IPv6:2001:db8::1]>", BAD_DOMAIN, 1),
    ST("alice@example..org", BAD_DOMAIN, 1),
    ST("alice@.example.org", BAD_DOMAIN, 1),
    ST("alice@example.org..", BAD_DOMAIN, 1),
    ST("alice@.", BAD_DOMAIN, 1),
    ST("alice@exa_mple.org", BAD_DOMAIN, 1),
    ST("alice@exa!mple.org", BAD_DOMAIN, 1),
    ST("\"Alice <alice@example.org>", UNPARSABLE, 0),
    ST("(Alice alice@example.org", UNPARSABLE, 0),
    ST("(Alice (x) alice@example.org", UNPARSABLE, 0),
    ST("Alice <alice@example.org", UNPARSABLE, 0),
    ST("Alice alice@example.org>", UNPARSABLE, 0),
    ST("alice@example.org)", UNPARSABLE, 0),
    ST("alice@[192.0.2.1", UNPARSABLE, 0),
    ST("alice@example.org]", UNPARSABLE, 0),
    ST("alice@example.org\\", UNPARSABLE, 0),
    ST("\"alice\\", UNPARSABLE, 0),
    ST("(\\", UNPARSABLE, 0),
    ST("\\alice@example.org", UNPARSABLE, 0),
    ST("a\x01" "b@example.org", UNPARSABLE, 0),
    ST("alice@evil.test@example.org", UNPARSABLE, 0),
    ST("bob@evil.test <alice@example.org>", UNPARSABLE, 0),
    ST("alice smith@example.org", UNPARSABLE, 0),
    ST("alice@example.org bob@example.net", UNPARSABLE, 0),
    ST("alice@example org", UNPARSABLE, 0),
    ST("alice@\"example.org\"", UNPARSABLE, 0),
    ST("@example.org", UNPARSABLE, 0),
    ST("<alice@example.org> <bob@example.net>", UNPARSABLE, 0),
    ST("<<alice@example.org>>", UNPARSABLE, 0),
    ST("<@relay.example alice@example.org>", UNPARSABLE, 0),
    ST("g1: g2: a@x.example;;", UNPARSABLE, 0),
    ST("grp: ;x@y.example", UNPARSABLE, 0),
    ST("a@x.example;", UNPARSABLE, 0),
    ST("g1: a@x.example; g2: b@y.example;", UNPARSABLE, 0),
    ST("a@x.example:", UNPARSABLE, 0),
    ST("...", UNPARSABLE, 0),
};

START_TEST(test_from_case)
{
    const struct from_case *c = &from_cases[_i];
    struct mailhdr_from f;
    memset(&f, 'x', sizeof f);
    bool ok = mailhdr_from_parse(c->in, strlen(c->in), &f);
    ck_assert_msg(f.status == c->status, "[%d] \"%s\": %s, expected %s", _i, c->in,
                  mailhdr_from_status_name(f.status), mailhdr_from_status_name(c->status));
    ck_assert_msg(ok == (c->status == MAILHDR_FROM_OK), "[%d] \"%s\": wrong return", _i, c->in);
    ck_assert_msg(f.n_mailboxes == c->n, "[%d] \"%s\": %zu mailboxes, expected %zu", _i, c->in, f.n_mailboxes,
                  c->n);
    ck_assert_msg(strcmp(f.domain, c->domain) == 0, "[%d] \"%s\": domain \"%s\", expected \"%s\"", _i, c->in,
                  f.domain, c->domain);
}
END_TEST

/* "a@" and a domain of labels (label bytes each, the last one last bytes). */
static enum mailhdr_from_status from_domain_of(size_t labels, size_t label, size_t last, const char *suffix,
                                              char *domain_out)
{
    char in[1024];
    size_t n = 0;
    in[n++] = 'a';
    in[n++] = '@';
    for (size_t l = 0; l < labels; l++) {
        size_t len = l + 1 == labels ? last : label;
        memset(in + n, 'A' + (char)(l % 26), len);
        n += len;
        if (l + 1 < labels)
            in[n++] = '.';
    }
    snprintf(in + n, sizeof in - n, "%s", suffix);
    struct mailhdr_from f;
    mailhdr_from_parse(in, strlen(in), &f);
    snprintf(domain_out, MAILHDR_DOMAIN_MAX + 1, "%s", f.domain);
    return f.status;
}

START_TEST(test_from_lengths)
{
    char d[MAILHDR_DOMAIN_MAX + 1];
    ck_assert_int_eq(from_domain_of(2, 63, 3, "", d), MAILHDR_FROM_OK);
    ck_assert_uint_eq(strlen(d), 63 + 1 + 3);
    ck_assert_int_eq(d[0], 'a'); /* lowercased */
    ck_assert_int_eq(from_domain_of(2, 64, 3, "", d), MAILHDR_FROM_BAD_DOMAIN);
    ck_assert_str_eq(d, "");
    ck_assert_int_eq(from_domain_of(2, 3, 64, "", d), MAILHDR_FROM_BAD_DOMAIN);
    /* 3 * 63 + 61 + 4 dots = 253: the longest name, with its trailing dot too */
    ck_assert_int_eq(from_domain_of(4, 63, 61, "", d), MAILHDR_FROM_OK);
    ck_assert_uint_eq(strlen(d), 253);
    ck_assert_int_eq(from_domain_of(4, 63, 61, ".", d), MAILHDR_FROM_OK);
    ck_assert_uint_eq(strlen(d), 253);
    ck_assert_int_eq(from_domain_of(4, 63, 61, ">", d), MAILHDR_FROM_UNPARSABLE);
    /* 254 and more */
    ck_assert_int_eq(from_domain_of(4, 63, 62, "", d), MAILHDR_FROM_BAD_DOMAIN);
    ck_assert_int_eq(from_domain_of(4, 63, 62, ".", d), MAILHDR_FROM_BAD_DOMAIN);
    ck_assert_int_eq(from_domain_of(8, 63, 63, "", d), MAILHDR_FROM_BAD_DOMAIN);
    ck_assert_int_eq(from_domain_of(8, 63, 63, ", b@example.org", d), MAILHDR_FROM_MULTIPLE);
}
END_TEST

START_TEST(test_from_nul)
{
    struct mailhdr_from f;
    static const char v[] = "alice@exa\0mple.org";
    ck_assert(!mailhdr_from_parse(v, sizeof v - 1, &f));
    ck_assert_int_eq(f.status, MAILHDR_FROM_UNPARSABLE);
    static const char w[] = "(\0) alice@example.org";
    ck_assert_int_eq((mailhdr_from_parse(w, sizeof w - 1, &f), f.status), MAILHDR_FROM_UNPARSABLE);
    static const char q[] = "\"\0\" <alice@example.org>";
    ck_assert_int_eq((mailhdr_from_parse(q, sizeof q - 1, &f), f.status), MAILHDR_FROM_UNPARSABLE);
    /* the length is what counts: no NUL needed at the end */
    ck_assert(mailhdr_from_parse("alice@example.orgXX", 17, &f));
    ck_assert_str_eq(f.domain, "example.org");
    ck_assert_int_eq((mailhdr_from_parse(NULL, 0, &f), f.status), MAILHDR_FROM_NONE);
}
END_TEST

START_TEST(test_from_status_names)
{
    ck_assert_str_eq(mailhdr_from_status_name(MAILHDR_FROM_OK), "ok");
    ck_assert_str_eq(mailhdr_from_status_name(MAILHDR_FROM_NONE), "none");
    ck_assert_str_eq(mailhdr_from_status_name(MAILHDR_FROM_MULTIPLE), "multiple");
    ck_assert_str_eq(mailhdr_from_status_name(MAILHDR_FROM_NO_DOMAIN), "no-domain");
    ck_assert_str_eq(mailhdr_from_status_name(MAILHDR_FROM_BAD_DOMAIN), "bad-domain");
    ck_assert_str_eq(mailhdr_from_status_name(MAILHDR_FROM_UNPARSABLE), "unparsable");
}
END_TEST

#define BIG (64u << 10)

static double cpu_seconds(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

/* 64 KB values of every kind the lexer loops on: quick, and right. */
START_TEST(test_from_64k)
{
    static char v[BIG + 64];
    struct mailhdr_from f;
    double t0 = cpu_seconds();

    /* comments nested 32 K deep */
    memset(v, '(', BIG / 2);
    memset(v + BIG / 2, ')', BIG / 2);
    strcpy(v + BIG, "a@example.org");
    ck_assert(mailhdr_from_parse(v, strlen(v), &f));
    ck_assert_str_eq(f.domain, "example.org");
    /* one too few ')' */
    v[BIG - 1] = ' ';
    ck_assert_int_eq((mailhdr_from_parse(v, strlen(v), &f), f.status), MAILHDR_FROM_UNPARSABLE);
    /* a display name of 32 K words */
    for (size_t i = 0; i < BIG; i += 2)
        memcpy(v + i, "a ", 2);
    strcpy(v + BIG, "<a@example.org>");
    ck_assert(mailhdr_from_parse(v, strlen(v), &f));
    /* 64 K commas, then one mailbox */
    memset(v, ',', BIG);
    strcpy(v + BIG, "a@example.org");
    ck_assert(mailhdr_from_parse(v, strlen(v), &f));
    /* 16 K mailboxes */
    for (size_t i = 0; i < BIG; i += 4)
        memcpy(v + i, "a@b,", 4);
    v[BIG] = '\0';
    ck_assert_int_eq((mailhdr_from_parse(v, strlen(v), &f), f.status), MAILHDR_FROM_MULTIPLE);
    ck_assert_uint_eq(f.n_mailboxes, BIG / 4);
    /* a domain of 64 KB: too long, stored no further than its buffer */
    memcpy(v, "a@", 2);
    memset(v + 2, 'x', BIG);
    v[BIG + 2] = '\0';
    ck_assert_int_eq((mailhdr_from_parse(v, strlen(v), &f), f.status), MAILHDR_FROM_BAD_DOMAIN);
    /* a quoted string of 64 KB of quoted-pairs, and one left open */
    v[0] = '"';
    for (size_t i = 1; i + 1 < BIG; i += 2)
        memcpy(v + i, "\\\"", 2);
    strcpy(v + BIG - 1, "\" <a@example.org>");
    ck_assert(mailhdr_from_parse(v, strlen(v), &f));
    v[BIG - 1] = '\0';
    ck_assert_int_eq((mailhdr_from_parse(v, strlen(v), &f), f.status), MAILHDR_FROM_UNPARSABLE);
    /* folding: 32 K "\r\n " */
    for (size_t i = 0; i + 3 <= BIG; i += 3)
        memcpy(v + i, "\r\n ", 3);
    strcpy(v + BIG / 3 * 3, "a@example.org");
    ck_assert(mailhdr_from_parse(v, strlen(v), &f));

    double spent = cpu_seconds() - t0;
    ck_assert_msg(spent < 2.0, "64 KB values took %.3f s of CPU", spent);
}
END_TEST

/* --- authserv-id -------------------------------------------------------- */

START_TEST(test_authres_id)
{
    char id[64];
#define ID_OK(v, want)                                                  \
    do {                                                                \
        ck_assert_msg(mailhdr_authres_id(v, strlen(v), id, sizeof id), "\"%s\": no id", v); \
        ck_assert_str_eq(id, want);                                     \
    } while (0)
#define ID_NONE(v)                                                      \
    do {                                                                \
        ck_assert_msg(!mailhdr_authres_id(v, strlen(v), id, sizeof id), "\"%s\": \"%s\"", v, id); \
        ck_assert_str_eq(id, "");                                       \
    } while (0)
    ID_OK("mx.example.org; spf=pass smtp.mailfrom=example.org", "mx.example.org");
    ID_OK(" mx.example.org;", "mx.example.org");
    ID_OK("MX.Example.ORG; none", "mx.example.org");
    ID_OK("(our relay) mx.example.org; dkim=pass", "mx.example.org");
    ID_OK(" (a (nested) comment)\r\n\tmx.example.org;", "mx.example.org");
    ID_OK("\"MX.example.org\"; none", "mx.example.org");
    ID_OK("\"a\\\"b c\"; none", "a\"b c");
    ID_OK("mx.example.org 1; spf=pass", "mx.example.org");
    ID_OK("mx.example.org(comment)1;", "mx.example.org");
    ID_OK("mx.example.org", "mx.example.org");
    ID_OK("mx.example.org/x", "mx.example.org");
    ID_NONE("");
    ID_NONE("   \r\n ");
    ID_NONE("(only a comment)");
    ID_NONE("(unterminated mx.example.org; none");
    ID_NONE("; spf=pass");
    ID_NONE("@@@");
    ID_NONE("\"\"; none");
    ID_NONE("\"mx.example.org; none");
    ID_NONE("\"mx.example.org\\");
    ID_NONE("\x01mx.example.org");

    /* too long for the buffer, just fits */
    char small[15];
    ck_assert(!mailhdr_authres_id("mx.example.org;", 15, small, 14));
    ck_assert_str_eq(small, "");
    ck_assert(mailhdr_authres_id("mx.example.org;", 15, small, 15));
    ck_assert_str_eq(small, "mx.example.org");
    ck_assert(!mailhdr_authres_id("\"mx.example.org\"", 16, small, 14));
    ck_assert(!mailhdr_authres_id("mx", 2, small, 0));
    /* a NUL ends the value, as for a reader of C strings */
    static const char v[] = "mx.example.org\0.evil.test";
    ck_assert(mailhdr_authres_id(v, sizeof v - 1, id, sizeof id));
    ck_assert_str_eq(id, "mx.example.org");
    static const char w[] = "\"mx\0\"";
    ck_assert(!mailhdr_authres_id(w, sizeof w - 1, id, sizeof id));
    ck_assert(!mailhdr_authres_id(NULL, 3, id, sizeof id));
    /* the length is what counts */
    ck_assert(mailhdr_authres_id("mx.example.orgXX", 14, id, sizeof id));
    ck_assert_str_eq(id, "mx.example.org");
#undef ID_OK
#undef ID_NONE
}
END_TEST

/* --- the Authentication-Results builder --------------------------------- */

/* Each line of "Authentication-Results: value" within 78 columns; folds
 * are "\n\t"; no control byte but those, no 8-bit byte. */
static void check_lines(const char *v)
{
    size_t col = strlen("Authentication-Results: ");
    for (const char *p = v; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n') {
            ck_assert_msg(p[1] == '\t', "fold without a tab in \"%s\"", v);
            ck_assert_msg(col <= 78, "a line of %zu columns in \"%s\"", col, v);
            ck_assert_msg(p > v && p[-1] != ' ', "trailing space before a fold in \"%s\"", v);
            col = 0;
            continue;
        }
        ck_assert_msg(c == '\t' ? p > v && p[-1] == '\n' : c >= 0x20 && c < 0x7f, "byte 0x%02x in \"%s\"", c, v);
        col++;
    }
    ck_assert_msg(col <= 78, "a last line of %zu columns in \"%s\"", col, v);
}

START_TEST(test_authres_full)
{
    struct authres a;
    authres_init(&a, "mx.example.net");
    const char *spf[] = {"smtp.mailfrom", "alice@example.org", "smtp.helo", "mail.example.org"};
    authres_add(&a, "spf", "pass", NULL, spf, 2);
    const char *dkim[] = {"header.d", "example.org", "header.s", "sel1", "header.a", "rsa-sha256",
                          "header.b", "AbC+/dE1"};
    authres_add(&a, "dkim", "pass", NULL, dkim, 4);
    const char *dmarc[] = {"header.from", "example.org", "policy.dmarc", "reject"};
    authres_add(&a, "dmarc", "pass", NULL, dmarc, 2);
    ck_assert_str_eq(authres_value(&a),
                     "mx.example.net; spf=pass\n"
                     "\tsmtp.mailfrom=alice@example.org smtp.helo=mail.example.org; dkim=pass\n"
                     "\theader.d=example.org header.s=sel1 header.a=rsa-sha256 header.b=\"AbC+/dE1\";\n"
                     "\tdmarc=pass header.from=example.org policy.dmarc=reject");
    ck_assert_uint_eq(a.n, 3);
    check_lines(authres_value(&a));
    /* what is ours is recognised as ours */
    char id[32];
    ck_assert(mailhdr_authres_id(authres_value(&a), strlen(authres_value(&a)), id, sizeof id));
    ck_assert_str_eq(id, "mx.example.net");
    authres_free(&a);
}
END_TEST

START_TEST(test_authres_short)
{
    struct authres a;
    authres_init(&a, "mx");
    const char *p[] = {"smtp.mailfrom", "ex.org", "smtp.helo", NULL, "smtp.x", ""};
    authres_add(&a, "spf", "none", "no SPF record", p, 3);
    ck_assert_str_eq(authres_value(&a), "mx; spf=none (no SPF record) smtp.mailfrom=ex.org");
    authres_add(&a, "dmarc", "none", NULL, NULL, 0);
    ck_assert_str_eq(authres_value(&a), "mx; spf=none (no SPF record) smtp.mailfrom=ex.org;\n\tdmarc=none");
    authres_free(&a);
}
END_TEST

START_TEST(test_authres_none)
{
    struct authres a;
    authres_init(&a, "mx.example.net");
    ck_assert_str_eq(authres_value(&a), "mx.example.net; none");
    ck_assert_str_eq(authres_value(&a), "mx.example.net; none");
    ck_assert_uint_eq(a.n, 0);
    authres_add(&a, "spf", "pass", NULL, NULL, 0);
    ck_assert_str_eq(authres_value(&a), "mx.example.net; spf=pass");
    authres_free(&a);

    /* an authserv-id that fills the first line: "none" on the next */
    char longid[51];
    memset(longid, 'h', 50);
    longid[50] = '\0';
    authres_init(&a, longid);
    ck_assert_str_eq(strchr(authres_value(&a), ';'), ";\n\tnone");
    check_lines(authres_value(&a));
    authres_add(&a, "spf", "pass", NULL, NULL, 0);
    ck_assert_str_eq(strchr(authres_value(&a), ';'), ";\n\tspf=pass");
    check_lines(authres_value(&a));
    authres_free(&a);
}
END_TEST

START_TEST(test_authres_quoting)
{
    struct authres a;
    authres_init(&a, "mx relay@example");
    const char *p[] = {
        "smtp.mailfrom", "<>",
        "smtp.helo", "[192.0.2.1]",
        "header.from", "Alice \"the\" \\Boss",
        "header.i", "@example.org",
        "header.x", "caf\xc3\xa9\tbar\x7f",
        "header.y", "tok\x01",
        "header.z", "a@b@c",
    };
    authres_add(&a, "sp f", "pa;ss", "a (nested) \\comment\\\r\nwith\x01 caf\xc3\xa9  spaces ", p, 7);
    const char *v = authres_value(&a);
    ck_assert_str_eq(v, "\"mx relay@example\"; spf=pass (a \\(nested\\)\n"
                        "\t\\\\comment\\\\with caf spaces) smtp.mailfrom=\"<>\" smtp.helo=\"[192.0.2.1]\"\n"
                        "\theader.from=\"Alice \\\"the\\\" \\\\Boss\" header.i=@example.org header.x=\"cafbar\"\n"
                        "\theader.y=\"tok\" header.z=\"a@b@c\"");
    check_lines(v);
    char id[32];
    ck_assert(mailhdr_authres_id(v, strlen(v), id, sizeof id));
    ck_assert_str_eq(id, "mx relay@example");
    authres_free(&a);

    /* an empty comment, a comment of spaces, a name of nothing */
    authres_init(&a, "mx");
    authres_add(&a, "", "pass", "", NULL, 0);
    authres_add(&a, "dkim", "\x01", "   ", NULL, 0);
    ck_assert_str_eq(authres_value(&a), "mx; unknown=pass; dkim=unknown");
    authres_free(&a);
}
END_TEST

/* Many properties and long comments: every line within 78 columns, each
 * piece whole, and nothing lost. */
START_TEST(test_authres_folding)
{
    struct authres a;
    authres_init(&a, "mail-gateway.example.net");
    for (int r = 0; r < 6; r++) {
        char d[40], s[40], b[40];
        snprintf(d, sizeof d, "sub%d.example-%d.org", r, r * 7);
        snprintf(s, sizeof s, "selector%d", r);
        snprintf(b, sizeof b, "%.*s", 8 + r, "AbCdEfGhIjKlMnOp");
        const char *p[] = {"header.d", d, "header.s", s, "header.b", b, "header.i", "@example.org"};
        authres_add(&a, "dkim", r % 2 ? "fail" : "pass",
                    r % 3 ? "signature verification failed because the body hash did not match" : NULL, p, 4);
    }
    const char *v = authres_value(&a);
    check_lines(v);
    /* the pieces are all there, whole */
    ck_assert_ptr_nonnull(strstr(v, "header.d=sub5.example-35.org"));
    ck_assert_ptr_nonnull(strstr(v, "header.b=AbCdEfGhIjKlM"));
    ck_assert_ptr_nonnull(strstr(v, "(signature"));
    ck_assert_ptr_nonnull(strstr(v, "match)"));
    size_t folds = 0, semis = 0;
    for (const char *p = v; *p != '\0'; p++) {
        folds += *p == '\n';
        semis += *p == ';';
    }
    ck_assert_uint_eq(semis, 6);
    ck_assert_uint_ge(folds, 10);
    ck_assert_uint_eq(a.n, 6);
    /* a piece longer than a line: on a line of its own, not split */
    char longv[120];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    const char *p[] = {"header.b", longv, "header.s", "s1"};
    authres_add(&a, "dkim", "pass", NULL, p, 2);
    v = authres_value(&a);
    const char *at = strstr(v, "header.b=xxx");
    ck_assert_ptr_nonnull(at);
    ck_assert_int_eq(at[-1], '\t');
    ck_assert_int_eq(at[strlen("header.b=") + sizeof longv - 1], '\n');
    authres_free(&a);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, test_from_case, 0, (int)(sizeof from_cases / sizeof from_cases[0]));
    tcase_add_test(tc, test_from_lengths);
    tcase_add_test(tc, test_from_nul);
    tcase_add_test(tc, test_from_status_names);
    tcase_add_test(tc, test_from_64k);
    tcase_add_test(tc, test_authres_id);
    tcase_add_test(tc, test_authres_full);
    tcase_add_test(tc, test_authres_short);
    tcase_add_test(tc, test_authres_none);
    tcase_add_test(tc, test_authres_quoting);
    tcase_add_test(tc, test_authres_folding);
}

UNIT_MAIN("mailhdr", add_tests)
