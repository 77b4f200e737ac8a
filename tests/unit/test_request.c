/* test_request.c: unit tests of policyd/request.c, the Postfix policy
 * delegation request parser: a full Postfix 3.7 request and its fields,
 * NEED_MORE for every strict prefix, pipelined requests, values with '=' or
 * empty, CRLF line ends, every refusal with its exact reason, each limit
 * exactly at and one over its bound, reuse of one request across parses,
 * and the reply format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "request.h"
#include "unit.h"

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define S(lit) lit, sizeof(lit) - 1 /* a literal and its length, NULs included */

/* The attributes Postfix 3.7 sends (SMTPD_POLICY_README, in its order),
 * for a SASL submission at RCPT time over TLS. */
static const char *const full_attrs[][2] = {
    {"request", "smtpd_access_policy"},
    {"protocol_state", "RCPT"},
    {"protocol_name", "ESMTP"},
    {"helo_name", "[192.0.2.44]"},
    {"queue_id", "4Q8Z1J2fXBz9sWk"},
    {"sender", "billing@acme.example"},
    {"recipient", "customer@example.org"},
    {"recipient_count", "0"},
    {"client_address", "203.0.113.10"},
    {"client_name", "mail.acme.example"},
    {"reverse_client_name", "mail.acme.example"},
    {"instance", "a1b2.65f0c3d1.8e2f4.0"},
    {"sasl_method", "PLAIN"},
    {"sasl_username", "billing@acme.example"},
    {"sasl_sender", ""},
    {"size", "48213"},
    {"ccert_subject", "laptop.acme.example"},
    {"ccert_issuer", "Acme+20Internal+20CA"},
    {"ccert_fingerprint", "C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04"},
    {"ccert_pubkey_fingerprint", "68:B3:29:DA:98:93:E3:40:99:C7:D8:AD:5C:B9:C9:40"},
    {"encryption_protocol", "TLSv1.3"},
    {"encryption_cipher", "TLS_AES_256_GCM_SHA384"},
    {"encryption_keysize", "256"},
    {"etrn_domain", ""},
    {"stress", ""},
    {"client_port", "51234"},
    {"policy_context", "submission"},
    {"server_address", "198.51.100.1"},
    {"server_port", "587"},
    {"compatibility_level", "3.6"},
    {"mail_version", "3.7.11"},
};

/* The full request as text, lines ended by eol. */
static void full_request(struct buf *b, const char *eol)
{
    for (int i = 0; i < NCASES(full_attrs); i++)
        buf_printf(b, "%s=%s%s", full_attrs[i][0], full_attrs[i][1], eol);
    buf_puts(b, eol);
}

static void check_full(const struct policy_request *r)
{
    ck_assert_uint_eq(r->n_attrs, (size_t)NCASES(full_attrs));
    for (int i = 0; i < NCASES(full_attrs); i++) {
        ck_assert_str_eq(r->attrs[i].name, full_attrs[i][0]);
        ck_assert_str_eq(r->attrs[i].value, full_attrs[i][1]);
        ck_assert_str_eq(policy_request_get(r, full_attrs[i][0]), full_attrs[i][1]);
    }
    ck_assert_str_eq(r->request, "smtpd_access_policy");
    ck_assert_str_eq(r->protocol_state, "RCPT");
    ck_assert_str_eq(r->protocol_name, "ESMTP");
    ck_assert_str_eq(r->client_address, "203.0.113.10");
    ck_assert_str_eq(r->client_name, "mail.acme.example");
    ck_assert_str_eq(r->helo_name, "[192.0.2.44]");
    ck_assert_str_eq(r->queue_id, "4Q8Z1J2fXBz9sWk");
    ck_assert_str_eq(r->instance, "a1b2.65f0c3d1.8e2f4.0");
    ck_assert_str_eq(r->sender, "billing@acme.example");
    ck_assert_str_eq(r->recipient, "customer@example.org");
    ck_assert_str_eq(r->recipient_count, "0");
    ck_assert_str_eq(r->size, "48213");
    ck_assert_str_eq(r->sasl_method, "PLAIN");
    ck_assert_str_eq(r->sasl_username, "billing@acme.example");
    ck_assert_str_eq(r->sasl_sender, "");
    ck_assert_str_eq(r->ccert_subject, "laptop.acme.example");
    ck_assert_str_eq(r->encryption_protocol, "TLSv1.3");
    ck_assert_str_eq(r->server_address, "198.51.100.1");
    ck_assert_str_eq(r->server_port, "587");
    ck_assert_str_eq(policy_request_get(r, "mail_version"), "3.7.11");
    ck_assert_str_eq(policy_request_get(r, "encryption_cipher"), "TLS_AES_256_GCM_SHA384");
    ck_assert_ptr_null(policy_request_get(r, "no_such_attribute"));
    ck_assert_ptr_null(policy_request_get(r, "sende"));
    ck_assert_ptr_null(policy_request_get(r, "senderx"));
    ck_assert_ptr_null(policy_request_get(r, ""));
}

/* Parse with the default limits; fails the test on anything but want. */
static enum policy_parse parse(const char *data, size_t len, const struct policy_limits *lim,
                               struct policy_request *r, size_t *used, struct buf *err)
{
    return policy_parse(data, len, lim ? lim : &policy_limits_default, r, used, err);
}

START_TEST(test_full_request)
{
    const char *eols[] = {"\n", "\r\n"};
    for (int e = 0; e < NCASES(eols); e++) {
        struct buf in, err;
        struct policy_request r;
        buf_init(&in);
        buf_init(&err);
        policy_request_init(&r);
        full_request(&in, eols[e]);
        size_t used = 0;
        ck_assert_int_eq(parse(in.data, in.len, NULL, &r, &used, &err), POLICY_REQUEST);
        ck_assert_uint_eq(used, in.len);
        check_full(&r);
        /* the request owns its copy: the input may go */
        memset(in.data, 'x', in.len);
        check_full(&r);
        policy_request_free(&r);
        buf_free(&in);
        buf_free(&err);
    }
}
END_TEST

/* Requests whose every strict prefix must ask for more. */
static const char *const prefix_cases[] = {
    "", /* replaced by the full request, LF */
    "", /* replaced by the full request, CRLF */
    "a=b\n\n",
    "a=b\r\n\r\n",
    "a=b\n\r\n",
    "a=\n\n",
    "\n",
    "\r\n",
    "x=a=b=c\r\ny=\r\n\n",
};

START_TEST(test_every_prefix)
{
    struct buf in, err;
    struct policy_request r;
    buf_init(&in);
    buf_init(&err);
    policy_request_init(&r);
    if (_i == 0)
        full_request(&in, "\n");
    else if (_i == 1)
        full_request(&in, "\r\n");
    else
        buf_puts(&in, prefix_cases[_i]);
    /* each prefix in a buffer of its own size, so that ASan sees any read
     * past len */
    for (size_t k = 0; k < in.len; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, in.data, k);
        size_t used = 12345;
        buf_reset(&err);
        ck_assert_int_eq(parse(copy, k, NULL, &r, &used, &err), POLICY_NEED_MORE);
        ck_assert_uint_eq(used, 12345); /* untouched */
        ck_assert_str_eq(err.data, "");
        ck_assert_uint_eq(r.n_attrs, 0);
        free(copy);
    }
    char *copy = malloc(in.len);
    memcpy(copy, in.data, in.len);
    size_t used = 0;
    ck_assert_int_eq(parse(copy, in.len, NULL, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(used, in.len);
    if (_i < 2)
        check_full(&r);
    free(copy);
    policy_request_free(&r);
    buf_free(&in);
    buf_free(&err);
}
END_TEST

START_TEST(test_pipelined)
{
    const char in[] = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@x.example\n\n"
                      "request=smtpd_access_policy\r\nprotocol_state=RCPT\r\nrecipient=b@x.example\r\n\r\n"
                      "\n"
                      "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsize=10\n";
    const size_t len = sizeof in - 1;
    struct policy_request r;
    struct buf err;
    buf_init(&err);
    policy_request_init(&r);
    size_t off = 0, used = 0;

    ck_assert_int_eq(parse(in + off, len - off, NULL, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(used, 71);
    ck_assert_str_eq(r.recipient, "a@x.example");
    ck_assert_uint_eq(r.n_attrs, 3);
    off += used;

    ck_assert_int_eq(parse(in + off, len - off, NULL, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(used, 75);
    ck_assert_str_eq(r.recipient, "b@x.example");
    ck_assert_str_eq(r.protocol_state, "RCPT");
    ck_assert_uint_eq(r.n_attrs, 3);
    off += used;

    /* a lone empty line: a request without attributes, every field NULL */
    ck_assert_int_eq(parse(in + off, len - off, NULL, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(used, 1);
    ck_assert_uint_eq(r.n_attrs, 0);
    ck_assert_ptr_null(r.request);
    ck_assert_ptr_null(r.recipient);
    ck_assert_ptr_null(policy_request_get(&r, "request"));
    off += used;

    /* the third is not complete yet */
    ck_assert_int_eq(parse(in + off, len - off, NULL, &r, &used, &err), POLICY_NEED_MORE);
    ck_assert_uint_eq(r.n_attrs, 0);
    ck_assert_str_eq(err.data, "");
    policy_request_free(&r);
    buf_free(&err);
}
END_TEST

/* Incomplete inputs: only complete lines are judged. */
static const struct {
    const char *in;
    size_t len;
} more_cases[] = {
    {S("a=b\nc\0d")},
    {S("a=b\nno equals yet")},
    {S("a=b\n=")},
    {S("a=b\r")},
    {S("a=b\n\r")},
    {S("\r")},
    {S("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn")},
};

START_TEST(test_need_more)
{
    struct policy_request r;
    struct buf err;
    buf_init(&err);
    policy_request_init(&r);
    char *copy = malloc(more_cases[_i].len);
    memcpy(copy, more_cases[_i].in, more_cases[_i].len);
    size_t used;
    ck_assert_int_eq(parse(copy, more_cases[_i].len, NULL, &r, &used, &err), POLICY_NEED_MORE);
    ck_assert_uint_eq(r.n_attrs, 0);
    ck_assert_str_eq(err.data, "");
    free(copy);
    policy_request_free(&r);
    buf_free(&err);
}
END_TEST

START_TEST(test_values)
{
    const char in[] = "ccert_subject=CN=mx.acme.example,O=Acme\n"
                      "sasl_sender=\n"
                      "sender=first@acme.example\n"
                      "x=\n"
                      "sender=second@acme.example\n"
                      "odd name with spaces = v \n"
                      "cr=in\rside\n"
                      "two_cr=a\r\r\n"
                      "\n"
                      "trailing=data\n";
    struct policy_request r;
    struct buf err;
    buf_init(&err);
    policy_request_init(&r);
    size_t used = 0;
    ck_assert_int_eq(parse(in, sizeof in - 1, NULL, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(used, sizeof in - 1 - strlen("trailing=data\n"));
    ck_assert_uint_eq(r.n_attrs, 8);
    ck_assert_str_eq(r.ccert_subject, "CN=mx.acme.example,O=Acme");
    ck_assert_str_eq(r.sasl_sender, "");
    ck_assert_ptr_nonnull(r.sasl_sender);
    ck_assert_str_eq(policy_request_get(&r, "x"), "");
    /* the last occurrence wins, attrs keeps both */
    ck_assert_str_eq(r.sender, "second@acme.example");
    ck_assert_str_eq(policy_request_get(&r, "sender"), "second@acme.example");
    ck_assert_str_eq(r.attrs[2].name, "sender");
    ck_assert_str_eq(r.attrs[2].value, "first@acme.example");
    ck_assert_str_eq(r.attrs[4].value, "second@acme.example");
    /* names and values are taken as they are */
    ck_assert_str_eq(policy_request_get(&r, "odd name with spaces "), " v ");
    ck_assert_str_eq(policy_request_get(&r, "cr"), "in\rside");
    ck_assert_str_eq(policy_request_get(&r, "two_cr"), "a\r");
    ck_assert_ptr_null(r.request);
    policy_request_free(&r);
    buf_free(&err);
}
END_TEST

START_TEST(test_reuse)
{
    /* one request struct across parses: nothing of the first survives */
    const char a[] = "request=smtpd_access_policy\nsender=a@x\nrecipient=b@y\nsize=5\n\n";
    const char b[] = "protocol_state=DATA\n\n";
    const char bad[] = "protocol_state=DATA\nbroken\n\n";
    struct policy_request r;
    struct buf err;
    buf_init(&err);
    policy_request_init(&r);
    size_t used;
    ck_assert_int_eq(parse(a, sizeof a - 1, NULL, &r, &used, &err), POLICY_REQUEST);
    ck_assert_str_eq(r.sender, "a@x");
    ck_assert_int_eq(parse(b, sizeof b - 1, NULL, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(r.n_attrs, 1);
    ck_assert_str_eq(r.protocol_state, "DATA");
    ck_assert_ptr_null(r.sender);
    ck_assert_ptr_null(r.recipient);
    ck_assert_ptr_null(r.size);
    ck_assert_ptr_null(r.request);
    ck_assert_ptr_null(policy_request_get(&r, "sender"));
    ck_assert_int_eq(parse(bad, sizeof bad - 1, NULL, &r, &used, &err), POLICY_BAD);
    ck_assert_uint_eq(r.n_attrs, 0);
    ck_assert_ptr_null(policy_request_get(&r, "protocol_state"));
    ck_assert_str_eq(err.data, "line 2 has no '='");
    /* err is replaced, not appended to */
    ck_assert_int_eq(parse(bad, sizeof bad - 1, NULL, &r, &used, &err), POLICY_BAD);
    ck_assert_str_eq(err.data, "line 2 has no '='");
    /* NULL arguments that the API tolerates */
    ck_assert_ptr_null(policy_request_get(NULL, "sender"));
    ck_assert_ptr_null(policy_request_get(&r, NULL));
    ck_assert_int_eq(policy_parse(a, sizeof a - 1, NULL, &r, NULL, NULL), POLICY_REQUEST);
    ck_assert_str_eq(r.sender, "a@x");
    ck_assert_int_eq(policy_parse(bad, sizeof bad - 1, NULL, &r, NULL, NULL), POLICY_BAD);
    policy_request_free(&r);
    policy_request_free(&r); /* twice is harmless */
    buf_free(&err);
}
END_TEST

/* Refusals, each with its exact reason. */
static const struct policy_limits small = {.max_bytes = 40, .max_attrs = 3, .max_name = 4, .max_value = 6};
static const struct bad_case {
    const char *in;
    size_t len;
    const struct policy_limits *lim; /* NULL: the defaults */
    const char *reason;
} bad_cases[] = {
    {S("request=smtpd_access_policy\nprotocol_state=RCPT\nno equals sign\n\n"), NULL, "line 3 has no '='"},
    {S("garbage\n"), NULL, "line 1 has no '='"},
    {S("GET / HTTP/1.0\r\n\r\n"), NULL, "line 1 has no '='"},
    {S("a=b\r\n\rx\r\n\r\n"), NULL, "line 2 has no '='"},
    {S("a=b\n \n\n"), NULL, "line 2 has no '='"},
    {S("=value\n\n"), NULL, "line 1 has an empty name"},
    {S("a=b\r\n=\r\n\r\n"), NULL, "line 2 has an empty name"},
    {S("sender=a\0b\n\n"), NULL, "NUL byte in request"},
    {S("\0\n"), NULL, "NUL byte in request"},
    {S("a=b\nc\0=d\n"), NULL, "NUL byte in request"},
    {S("a=b\n\0\r\n\r\n"), NULL, "NUL byte in request"},
    /* the first fault in the input is the one named */
    {S("a\0\nb\n\n"), NULL, "NUL byte in request"},
    {S("a\nb\0\n\n"), NULL, "line 1 has no '='"},
    /* a refused line is refused even before the request is complete */
    {S("bad line\nsender=partial"), NULL, "line 1 has no '='"},
    {S("a=\0\nsender=partial"), NULL, "NUL byte in request"},
    {S("a\0b\n"), NULL, "NUL byte in request"},
    {S("sender=\0\n0123456789012345678901234567890123456789"), &small, "NUL byte in request"},
    {S("abcd=1\0" "345678\n\n"), &small, "NUL byte in request"},
    {S("abcd=1\0\nabcde=1\n\n"), &small, "NUL byte in request"},
    {S("a=1\nb=2\nc=3\nd\0=4\n\n"), &small, "NUL byte in request"},
    /* custom limits */
    {S("a=1\nb=2\nc=3\nd=4\n\n"), &small, "more than 3 attributes"},
    {S("abcde=1\n\n"), &small, "attribute name longer than 4 bytes"},
    {S("abcd=1234567\n\n"), &small, "value of \"abcd\" longer than 6 bytes"},
    {S("ab\"\\=1234567\n\n"), &small, "value of \"ab\\x22\\x5c\" longer than 6 bytes"},
    {S("a\x1b\xff=1234567\n\n"), &small, "value of \"a\\x1b\\xff\" longer than 6 bytes"},
    {S("\r=1234567\r\n\n"), &small, "value of \"\\x0d\" longer than 6 bytes"},
    {S("a=1\nb=2\nc=3\nabcde=4567890\n\n"), &small, "more than 3 attributes"},
    /* 41 bytes, every line within its limits; 40 of them pass in
     * test_limit_bytes */
    {S("abcd=123456\r\nabcd=123456\r\nabcd=123456\r\n\r\n"), &small, "request larger than 40 bytes"},
    {S("0123456789012345678901234567890123456789"), &small, "request larger than 40 bytes"},
    {S("0123456789012345678901234567890123456789xyz\n\n"), &small, "request larger than 40 bytes"},
};

START_TEST(test_bad)
{
    const struct bad_case *c = &bad_cases[_i];
    struct policy_request r;
    struct buf err;
    buf_init(&err);
    buf_puts(&err, "old text");
    policy_request_init(&r);
    /* in a buffer of exactly its length, for ASan */
    char *copy = malloc(c->len);
    memcpy(copy, c->in, c->len);
    size_t used;
    ck_assert_int_eq(parse(copy, c->len, c->lim, &r, &used, &err), POLICY_BAD);
    ck_assert_str_eq(err.data, c->reason);
    ck_assert_uint_eq(r.n_attrs, 0);
    free(copy);
    policy_request_free(&r);
    buf_free(&err);
}
END_TEST

/* A request of attributes "fNNN=vvv...", nattrs of them, each value vlen
 * bytes, lines ended by eol, then the empty line. */
static void gen_request(struct buf *b, size_t nattrs, size_t vlen, const char *eol)
{
    for (size_t i = 0; i < nattrs; i++) {
        buf_printf(b, "f%03zu=", i);
        for (size_t k = 0; k < vlen; k++)
            buf_putc(b, (char)('a' + k % 26));
        buf_puts(b, eol);
    }
    buf_puts(b, eol);
}

/* Parse b alone, in a buffer of its exact size. */
static enum policy_parse parse_buf(const struct buf *b, const struct policy_limits *lim,
                                   struct policy_request *r, size_t *used, struct buf *err)
{
    char *copy = malloc(b->len ? b->len : 1);
    memcpy(copy, b->data, b->len);
    enum policy_parse ret = parse(copy, b->len, lim, r, used, err);
    free(copy);
    return ret;
}

START_TEST(test_limit_attrs)
{
    struct buf in, err;
    struct policy_request r;
    size_t used;
    buf_init(&in);
    buf_init(&err);
    policy_request_init(&r);
    for (int crlf = 0; crlf < 2; crlf++) {
        const char *eol = crlf ? "\r\n" : "\n";
        buf_reset(&in);
        gen_request(&in, 100, 3, eol);
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_REQUEST);
        ck_assert_uint_eq(r.n_attrs, 100);
        ck_assert_str_eq(r.attrs[99].name, "f099");
        ck_assert_str_eq(r.attrs[99].value, "abc");
        buf_reset(&in);
        gen_request(&in, 101, 3, eol);
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_BAD);
        ck_assert_str_eq(err.data, "more than 100 attributes");
    }
    /* max_attrs above POLICY_MAX_ATTRS is capped */
    struct policy_limits big = policy_limits_default;
    big.max_attrs = 100000;
    buf_reset(&in);
    gen_request(&in, POLICY_MAX_ATTRS, 1, "\n");
    ck_assert_int_eq(parse_buf(&in, &big, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(r.n_attrs, POLICY_MAX_ATTRS);
    ck_assert_str_eq(r.attrs[POLICY_MAX_ATTRS - 1].name, "f255");
    buf_reset(&in);
    gen_request(&in, POLICY_MAX_ATTRS + 1, 1, "\n");
    ck_assert_int_eq(parse_buf(&in, &big, &r, &used, &err), POLICY_BAD);
    ck_assert_str_eq(err.data, "more than 256 attributes");
    /* no attribute at all allowed: only the empty line passes */
    big.max_attrs = 0;
    ck_assert_int_eq(parse("\n", 1, &big, &r, &used, &err), POLICY_REQUEST);
    ck_assert_int_eq(parse("a=b\n\n", 5, &big, &r, &used, &err), POLICY_BAD);
    ck_assert_str_eq(err.data, "more than 0 attributes");
    policy_request_free(&r);
    buf_free(&in);
    buf_free(&err);
}
END_TEST

START_TEST(test_limit_name)
{
    struct buf in, err;
    struct policy_request r;
    size_t used;
    buf_init(&in);
    buf_init(&err);
    policy_request_init(&r);
    for (int crlf = 0; crlf < 2; crlf++) {
        const char *eol = crlf ? "\r\n" : "\n";
        for (size_t n = 63; n <= 65; n++) {
            buf_reset(&in);
            buf_puts(&in, "request=smtpd_access_policy");
            buf_puts(&in, eol);
            for (size_t k = 0; k < n; k++)
                buf_putc(&in, 'n');
            buf_printf(&in, "=v%s%s", eol, eol);
            if (n <= 64) {
                ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_REQUEST);
                ck_assert_uint_eq(strlen(r.attrs[1].name), n);
                ck_assert_str_eq(r.attrs[1].value, "v");
            } else {
                ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_BAD);
                ck_assert_str_eq(err.data, "attribute name longer than 64 bytes");
            }
        }
    }
    policy_request_free(&r);
    buf_free(&in);
    buf_free(&err);
}
END_TEST

START_TEST(test_limit_value)
{
    struct buf in, err;
    struct policy_request r;
    size_t used;
    buf_init(&in);
    buf_init(&err);
    policy_request_init(&r);
    for (int crlf = 0; crlf < 2; crlf++) {
        const char *eol = crlf ? "\r\n" : "\n";
        for (size_t n = 8191; n <= 8193; n++) {
            buf_reset(&in);
            buf_printf(&in, "request=smtpd_access_policy%ssender=", eol);
            for (size_t k = 0; k < n; k++)
                buf_putc(&in, 'x');
            buf_printf(&in, "%s%s", eol, eol);
            if (n <= 8192) {
                ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_REQUEST);
                ck_assert_uint_eq(strlen(r.sender), n);
                ck_assert_uint_eq(used, in.len);
            } else {
                ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_BAD);
                ck_assert_str_eq(err.data, "value of \"sender\" longer than 8192 bytes");
            }
        }
    }
    policy_request_free(&r);
    buf_free(&in);
    buf_free(&err);
}
END_TEST

/* A valid request of exactly total bytes (default limits), lines ended by
 * eol: "request=..." then lines "fNNN=..." sharing what is left. */
static void sized_request(struct buf *b, size_t total, const char *eol)
{
    size_t el = strlen(eol);
    buf_reset(b);
    buf_printf(b, "request=smtpd_access_policy%s", eol);
    size_t left = total - b->len - el;                  /* for the attribute lines */
    size_t per_max = 5 + policy_limits_default.max_value + el;
    size_t lines = (left + per_max - 1) / per_max;
    for (size_t i = 0; i < lines; i++) {
        size_t this_len = left / lines + (i < left % lines ? 1 : 0);
        size_t vlen = this_len - 5 - el;
        buf_printf(b, "f%03zu=", i);
        for (size_t k = 0; k < vlen; k++)
            buf_putc(b, (char)('A' + k % 26));
        buf_puts(b, eol);
    }
    buf_puts(b, eol);
    ck_assert_uint_eq(b->len, total);
}

START_TEST(test_limit_bytes)
{
    const size_t max = policy_limits_default.max_bytes;
    struct buf in, err;
    struct policy_request r;
    size_t used;
    buf_init(&in);
    buf_init(&err);
    policy_request_init(&r);
    for (int crlf = 0; crlf < 2; crlf++) {
        const char *eol = crlf ? "\r\n" : "\n";
        sized_request(&in, max, eol);
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_REQUEST);
        ck_assert_uint_eq(used, max);
        ck_assert_str_eq(r.request, "smtpd_access_policy");
        /* the limit is per request: more input behind it is fine */
        buf_puts(&in, "request=smtpd_access_policy\n");
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_REQUEST);
        ck_assert_uint_eq(used, max);
        sized_request(&in, max + 1, eol);
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_BAD);
        ck_assert_str_eq(err.data, "request larger than 65536 bytes");
        /* without an empty line: more is awaited up to max_bytes - 1 */
        sized_request(&in, max, eol);
        in.len = max - strlen(eol); /* all but the empty line */
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_NEED_MORE);
        in.len = max - 1;
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_NEED_MORE);
        sized_request(&in, max + 1, eol);
        in.len = max;
        ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_BAD);
        ck_assert_str_eq(err.data, "request larger than 65536 bytes");
    }
    /* one endless line */
    buf_reset(&in);
    for (size_t k = 0; k < max - 1; k++)
        buf_putc(&in, 'z');
    ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_NEED_MORE);
    buf_putc(&in, 'z');
    ck_assert_int_eq(parse_buf(&in, NULL, &r, &used, &err), POLICY_BAD);
    ck_assert_str_eq(err.data, "request larger than 65536 bytes");
    /* small limits: every bound at once, 40 bytes exactly */
    const char at40[] = "abcd=123456\r\nabcd=123456\r\nabcd=123456\r\n\n";
    ck_assert_int_eq(parse(at40, sizeof at40 - 1, &small, &r, &used, &err), POLICY_REQUEST);
    ck_assert_uint_eq(used, 40);
    ck_assert_uint_eq(r.n_attrs, 3);
    ck_assert_str_eq(r.attrs[2].value, "123456");
    /* NULL limits are the defaults */
    sized_request(&in, max, "\n");
    ck_assert_int_eq(policy_parse(in.data, in.len, NULL, &r, &used, &err), POLICY_REQUEST);
    sized_request(&in, max + 1, "\n");
    ck_assert_int_eq(policy_parse(in.data, in.len, NULL, &r, &used, &err), POLICY_BAD);
    ck_assert_str_eq(err.data, "request larger than 65536 bytes");
    policy_request_free(&r);
    buf_free(&in);
    buf_free(&err);
}
END_TEST

START_TEST(test_limits_default)
{
    ck_assert_uint_eq(policy_limits_default.max_bytes, 65536);
    ck_assert_uint_eq(policy_limits_default.max_attrs, 100);
    ck_assert_uint_eq(policy_limits_default.max_name, 64);
    ck_assert_uint_eq(policy_limits_default.max_value, 8192);
}
END_TEST

static const struct reply_case {
    const char *action;
    const char *out;
} reply_cases[] = {
    {"DUNNO", "action=DUNNO\n\n"},
    {"FILTER acme-out:", "action=FILTER acme-out:\n\n"},
    {"defer_if_permit 4.7.1 quota of acme\nexceeded", "action=defer_if_permit 4.7.1 quota of acme exceeded\n\n"},
    {"554 5.7.1 a\r\nb\n", "action=554 5.7.1 a  b \n\n"},
    {"\n\n", "action=  \n\n"},
    {"", "action=\n\n"},
};

START_TEST(test_reply)
{
    const struct reply_case *c = &reply_cases[_i];
    struct buf out;
    buf_init(&out);
    policy_reply_format(&out, c->action);
    ck_assert_str_eq(out.data, c->out);
    ck_assert_uint_eq(out.len, strlen(c->out));
    /* replies to pipelined requests go one after the other */
    policy_reply_format(&out, "OK");
    ck_assert_uint_eq(out.len, strlen(c->out) + strlen("action=OK\n\n"));
    ck_assert_str_eq(out.data + strlen(c->out), "action=OK\n\n");
    buf_free(&out);
}
END_TEST

static void add(TCase *tc)
{
    tcase_add_test(tc, test_full_request);
    tcase_add_loop_test(tc, test_every_prefix, 0, NCASES(prefix_cases));
    tcase_add_loop_test(tc, test_need_more, 0, NCASES(more_cases));
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_reuse);
    tcase_add_loop_test(tc, test_bad, 0, NCASES(bad_cases));
    tcase_add_test(tc, test_limit_attrs);
    tcase_add_test(tc, test_limit_name);
    tcase_add_test(tc, test_limit_value);
    tcase_add_test(tc, test_limit_bytes);
    tcase_add_test(tc, test_limits_default);
    tcase_add_loop_test(tc, test_reply, 0, NCASES(reply_cases));
}
UNIT_MAIN("request", add)
