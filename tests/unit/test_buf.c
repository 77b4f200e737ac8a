/* test_buf.c: unit tests of lib/buf.c, postern's string buffer: growth
 * across many appends, printf output longer than the initial capacity
 * (every length around the boundaries), embedded NUL bytes, the key=value
 * log quoting of buf_kv/buf_kvf (one line whatever the value), reset and
 * detach. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void check_invariants(const struct buf *b)
{
    ck_assert_ptr_nonnull(b->data);
    ck_assert_uint_lt(b->len, b->cap);
    ck_assert_int_eq(b->data[b->len], '\0');
}

START_TEST(test_init_reset)
{
    struct buf b;
    buf_init(&b);
    check_invariants(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    buf_puts(&b, "hello");
    buf_putc(&b, '!');
    ck_assert_str_eq(b.data, "hello!");
    ck_assert_uint_eq(b.len, 6);
    size_t cap = b.cap;
    buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_uint_eq(b.cap, cap); /* memory kept */
    buf_puts(&b, "");
    ck_assert_uint_eq(b.len, 0);
    buf_add(&b, "xyz", 0);
    ck_assert_uint_eq(b.len, 0);
    check_invariants(&b);
    buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    /* a freed buffer can be initialised again */
    buf_init(&b);
    buf_puts(&b, "again");
    ck_assert_str_eq(b.data, "again");
    buf_free(&b);
}
END_TEST

START_TEST(test_growth_1mb)
{
    struct buf b;
    const size_t total = 1u << 20;
    buf_init(&b);
    for (size_t i = 0; i < total; i++)
        buf_putc(&b, (char)('a' + i % 26));
    check_invariants(&b);
    ck_assert_uint_eq(b.len, total);
    ck_assert_uint_eq(strlen(b.data), total);
    for (size_t i = 0; i < total; i++)
        if (b.data[i] != (char)('a' + i % 26))
            ck_abort_msg("byte %zu is %c", i, b.data[i]);
    buf_free(&b);

    /* odd-sized chunks through buf_add */
    char chunk[997];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)('0' + i % 10);
    buf_init(&b);
    size_t n = 0;
    while (n < total) {
        buf_add(&b, chunk, sizeof chunk);
        n += sizeof chunk;
    }
    check_invariants(&b);
    ck_assert_uint_eq(b.len, n);
    for (size_t i = 0; i < n; i++)
        if (b.data[i] != (char)('0' + (i % sizeof chunk) % 10))
            ck_abort_msg("byte %zu is %c", i, b.data[i]);
    buf_free(&b);

    /* one append far larger than the capacity */
    static char big[3u << 20];
    memset(big, 'z', sizeof big);
    buf_init(&b);
    buf_putc(&b, '<');
    buf_add(&b, big, sizeof big);
    buf_putc(&b, '>');
    check_invariants(&b);
    ck_assert_uint_eq(b.len, sizeof big + 2);
    ck_assert_int_eq(b.data[0], '<');
    ck_assert_int_eq(b.data[sizeof big], 'z');
    ck_assert_int_eq(b.data[sizeof big + 1], '>');
    buf_free(&b);
}
END_TEST

START_TEST(test_embedded_nul)
{
    struct buf b;
    buf_init(&b);
    buf_add(&b, "a\0b", 3);
    buf_putc(&b, '\0');
    buf_puts(&b, "c");
    ck_assert_uint_eq(b.len, 5);
    ck_assert_mem_eq(b.data, "a\0b\0c", 6); /* with the terminating NUL */
    ck_assert_uint_eq(strlen(b.data), 1);
    check_invariants(&b);
    buf_free(&b);
}
END_TEST

/* printf of every length around the initial capacity and its doublings,
 * after prefixes of several lengths. */
START_TEST(test_printf_lengths)
{
    static const size_t prefixes[] = { 0, 1, 10, 63, 64, 65, 127 };
    char s[300], want[700], pp[128];
    memset(pp, 'p', sizeof pp - 1);
    pp[sizeof pp - 1] = '\0';
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        for (size_t n = 0; n < sizeof s; n++) {
            struct buf b;
            memset(s, 'q', n);
            s[n] = '\0';
            buf_init(&b);
            for (size_t i = 0; i < prefixes[p]; i++)
                buf_putc(&b, 'p');
            buf_printf(&b, "[%s|%zu]", s, n);
            int w = snprintf(want, sizeof want, "%.*s[%s|%zu]", (int)prefixes[p], pp, s, n);
            if (b.len != (size_t)w || strcmp(b.data, want) != 0 || b.len >= b.cap)
                ck_abort_msg("prefix %zu, n %zu: got len %zu [%s]", prefixes[p], n, b.len, b.data);
            buf_free(&b);
        }
    }
}
END_TEST

START_TEST(test_printf_long)
{
    struct buf b;
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_init(&b);
    buf_printf(&b, "%d:", 42);
    buf_printf(&b, "%s", big);
    buf_printf(&b, ":%s:%05d", "end", 7);
    check_invariants(&b);
    ck_assert_uint_eq(b.len, 3 + 9999 + 10);
    ck_assert(strncmp(b.data, "42:xxx", 6) == 0);
    ck_assert_str_eq(b.data + 3 + 9999, ":end:00007");
    /* an empty format adds nothing */
    size_t len = b.len;
    buf_printf(&b, "%s", "");
    ck_assert_uint_eq(b.len, len);
    buf_free(&b);
}
END_TEST

__attribute__((format(printf, 2, 3)))
static void via_vprintf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

START_TEST(test_vprintf)
{
    struct buf b;
    char s[200];
    memset(s, 'v', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    buf_init(&b);
    via_vprintf(&b, "%s-%s", s, s); /* grows: the va_list is used twice */
    ck_assert_uint_eq(b.len, 2 * 199 + 1);
    ck_assert_int_eq(b.data[199], '-');
    ck_assert_int_eq(b.data[398], 'v');
    check_invariants(&b);
    buf_free(&b);
}
END_TEST

/* ---- buf_kv ------------------------------------------------------- */

static const struct {
    const char *key, *value, *want;
} kv_cases[] = {
    { "k", "v", "k=v" },
    { "client", "192.0.2.1", "client=192.0.2.1" },
    { "sender", "user@example.com", "sender=user@example.com" },
    { "k", "", "k=\"\"" },
    { "k", NULL, "k=-" },
    { "k", "-", "k=-" }, /* a literal "-" reads like NULL */
    { "k", "a b", "k=\"a b\"" },
    { "k", " ", "k=\" \"" },
    { "k", "a=b", "k=\"a=b\"" },
    { "k", "say \"hi\"", "k=\"say \\\"hi\\\"\"" },
    { "k", "\"", "k=\"\\\"\"" },
    { "k", "C:\\dir", "k=\"C:\\\\dir\"" },
    { "k", "line1\nline2", "k=\"line1\\x0aline2\"" },
    { "k", "a\r\nb", "k=\"a\\x0d\\x0ab\"" },
    { "k", "\t", "k=\"\\x09\"" },
    { "k", "\x01\x1f\x7f", "k=\"\\x01\\x1f\\x7f\"" },
    { "k", "it's", "k=it's" },
    { "k", "h\xc3\xa9llo", "k=h\xc3\xa9llo" }, /* UTF-8 is left as is */
    { "k", "a,b;c:d/e", "k=a,b;c:d/e" },
    { "reason", "quota exceeded: 500/day", "reason=\"quota exceeded: 500/day\"" },
};

START_TEST(test_kv)
{
    struct buf b;
    buf_init(&b);
    buf_kv(&b, kv_cases[_i].key, kv_cases[_i].value);
    ck_assert_str_eq(b.data, kv_cases[_i].want);
    /* whatever the value, the output is one line of printable text */
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.data[i];
        ck_assert_msg(c >= 0x20 && c != 0x7f, "control character 0x%02x in output", c);
    }
    check_invariants(&b);
    buf_free(&b);
}
END_TEST

START_TEST(test_kv_sequence)
{
    struct buf b;
    buf_init(&b);
    buf_kv(&b, "a", "1");
    buf_kv(&b, "b", "two words");
    buf_kv(&b, "c", NULL);
    buf_kvf(&b, "n", "%d", 500);
    buf_kvf(&b, "msg", "%s=%u", "count", 3u);
    ck_assert_str_eq(b.data, "a=1 b=\"two words\" c=- n=500 msg=\"count=3\"");
    buf_reset(&b);
    /* after a reset, no leading blank */
    buf_kv(&b, "x", "y");
    ck_assert_str_eq(b.data, "x=y");
    /* buf_kvf with a long value */
    char big[500];
    memset(big, 'w', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_kvf(&b, "long", "%s %s", big, big);
    ck_assert_uint_eq(b.len, 3 + 1 + 5 + 1 + 499 * 2 + 1 + 1);
    ck_assert_int_eq(b.data[b.len - 1], '"');
    buf_free(&b);
}
END_TEST

/* Every byte value alone: quoting iff blank, quote, '=', backslash or control. */
START_TEST(test_kv_every_byte)
{
    for (int c = 1; c < 256; c++) {
        struct buf b;
        char v[2] = { (char)c, '\0' }, want[16];
        buf_init(&b);
        buf_kv(&b, "k", v);
        if (c == '"' || c == '\\')
            snprintf(want, sizeof want, "k=\"\\%c\"", c);
        else if (c < 0x20 || c == 0x7f)
            snprintf(want, sizeof want, "k=\"\\x%02x\"", c);
        else if (c == ' ' || c == '=')
            snprintf(want, sizeof want, "k=\"%c\"", c);
        else
            snprintf(want, sizeof want, "k=%c", c);
        if (strcmp(b.data, want) != 0)
            ck_abort_msg("byte 0x%02x: got [%s], want [%s]", c, b.data, want);
        buf_free(&b);
    }
}
END_TEST

START_TEST(test_detach)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "detached text that is longer than sixty-four bytes, to have grown once");
    size_t len = b.len;
    char *s = buf_detach(&b);
    ck_assert_uint_eq(strlen(s), len);
    ck_assert(strncmp(s, "detached text", 13) == 0);
    /* b is a usable empty buffer, not sharing s */
    check_invariants(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_ptr_ne(b.data, s);
    buf_puts(&b, "fresh");
    buf_printf(&b, " %d", 1);
    ck_assert_str_eq(b.data, "fresh 1");
    ck_assert(strncmp(s, "detached text", 13) == 0);
    free(s);
    /* detaching an empty buffer gives an empty string */
    buf_reset(&b);
    s = buf_detach(&b);
    ck_assert_str_eq(s, "");
    free(s);
    buf_free(&b);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, test_init_reset);
    tcase_add_test(tc, test_growth_1mb);
    tcase_add_test(tc, test_embedded_nul);
    tcase_add_test(tc, test_printf_lengths);
    tcase_add_test(tc, test_printf_long);
    tcase_add_test(tc, test_vprintf);
    tcase_add_loop_test(tc, test_kv, 0, NCASES(kv_cases));
    tcase_add_test(tc, test_kv_sequence);
    tcase_add_test(tc, test_kv_every_byte);
    tcase_add_test(tc, test_detach);
}

UNIT_MAIN("buf", add_tests)
