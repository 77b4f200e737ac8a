/* test_postq.c: unit tests of lib/postq.c (postqueue -j parsed with
 * jansson, postqueue -i) and lib/cmd.c (running a program by argument
 * vector).  postq_parse on realistic postqueue -j lines (hold, deferred
 * and active messages, delay reasons, the null sender), on garbage,
 * truncated JSON, queue IDs that must never reach a command line, NUL
 * bytes, empty input and very long lines: bad lines are counted, never a
 * crash.  cmd_run on small scripts written to a temporary directory: exit
 * status, standard output, the first line of standard error, a program
 * that does not exist or was killed, arguments passed verbatim, a fixed
 * environment, default signal dispositions and no signal blocked.
 * postq_deliver and postq_list against a fake postqueue that logs its
 * arguments. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "cmd.h"
#include "postq.h"
#include "unit.h"

static char tmpdir[64], fake[128], calls_file[128], failf[128], listf[128];

/* The fake postqueue: logs "arg|arg|...|" and a newline to calls; fails
 * like Postfix down when the file fail exists; -j prints the file list. */
static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_postq.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(fake, sizeof fake, "%s/postqueue", tmpdir);
    snprintf(calls_file, sizeof calls_file, "%s/calls", tmpdir);
    snprintf(failf, sizeof failf, "%s/fail", tmpdir);
    snprintf(listf, sizeof listf, "%s/list", tmpdir);
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "#!/bin/sh\n"
            "printf '%%s|' \"$@\" >> %s\necho >> %s\n"
            "if [ -e %s ]; then\n"
            "  echo 'postqueue: fatal: Queue report unavailable - mail system is down' >&2\n"
            "  echo 'second line' >&2\n"
            "  exit 75\n"
            "fi\n"
            "[ \"$3\" = -j ] && cat %s\n"
            "exit 0\n",
            calls_file, calls_file, failf, listf);
    fclose(f);
    ck_assert_int_eq(chmod(fake, 0755), 0);
}

static void teardown(void)
{
    unit_rm_tree(tmpdir);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* A script named name in the temporary directory; its path in out. */
static void script(const char *name, const char *body, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "#!/bin/sh\n%s\n", body);
    write_file(out, b.data, b.len);
    buf_free(&b);
    ck_assert_int_eq(chmod(out, 0755), 0);
}

/* The fake's calls so far ("" when none). */
static void calls(char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(calls_file, "r");
    if (f == NULL)
        return;
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void parse(const char *text, struct postq_list *l)
{
    postq_parse(text, strlen(text), l);
}

/* --- postq_parse ------------------------------------------------------------ */

#define LINE_HOLD                                                                                             \
    "{\"queue_name\": \"hold\", \"queue_id\": \"3Pt2mN2VXxznjll\", \"arrival_time\": 1700000123, "           \
    "\"message_size\": 4321, \"forced_expire\": false, \"sender\": \"\", \"recipients\": "                    \
    "[{\"address\": \"bob@example.net\"}, {\"address\": \"carol@example.org\"}]}"
#define LINE_DEFERRED                                                                                        \
    "{\"queue_name\": \"deferred\", \"queue_id\": \"4F2A52C0B8F\", \"arrival_time\": 1700000000, "           \
    "\"message_size\": 2345, \"forced_expire\": false, \"sender\": \"alice@acme.example\", \"recipients\": " \
    "[{\"address\": \"dave@example.com\"}, {\"address\": \"erin@example.net\", \"delay_reason\": "          \
    "\"connect to mx.example.net[192.0.2.1]:25: Connection refused\"}, {\"address\": \"frank@example.net\", " \
    "\"delay_reason\": \"host mx.example.net said: 451 try later\"}]}"
#define LINE_ACTIVE                                                                                          \
    "{\"queue_name\": \"active\", \"queue_id\": \"C8D33E07DCF\", \"arrival_time\": 1700000456, "             \
    "\"message_size\": 512, \"forced_expire\": false, \"sender\": \"news@acme.example\", "                   \
    "\"recipients\": [{\"address\": \"gina@example.com\"}]}"

START_TEST(test_parse_realistic)
{
    struct postq_list l;
    parse(LINE_HOLD "\n" LINE_DEFERRED "\n" LINE_ACTIVE "\n", &l);
    ck_assert_uint_eq(l.n, 3);
    ck_assert_uint_eq(l.skipped, 0);
    struct postq_msg *m = &l.v[0];
    ck_assert_str_eq(m->queue_id, "3Pt2mN2VXxznjll");
    ck_assert_str_eq(m->queue_name, "hold");
    ck_assert_int_eq(m->arrival_time, 1700000123);
    ck_assert_uint_eq(m->size, 4321);
    ck_assert_str_eq(m->sender, ""); /* the null sender */
    ck_assert_uint_eq(m->n_rcpts, 2);
    ck_assert_str_eq(m->rcpts[0], "bob@example.net");
    ck_assert_str_eq(m->rcpts[1], "carol@example.org");
    ck_assert_ptr_null(m->delay_reason);
    m = &l.v[1];
    ck_assert_str_eq(m->queue_id, "4F2A52C0B8F");
    ck_assert_str_eq(m->queue_name, "deferred");
    ck_assert_str_eq(m->sender, "alice@acme.example");
    ck_assert_uint_eq(m->n_rcpts, 3);
    ck_assert_str_eq(m->rcpts[2], "frank@example.net");
    /* the first recipient that has one */
    ck_assert_str_eq(m->delay_reason, "connect to mx.example.net[192.0.2.1]:25: Connection refused");
    m = &l.v[2];
    ck_assert_str_eq(m->queue_name, "active");
    ck_assert_str_eq(m->queue_id, "C8D33E07DCF");
    ck_assert_uint_eq(m->n_rcpts, 1);
    postq_list_free(&l);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_ptr_null(l.v);

    /* no newline at the end, CRLF line ends */
    parse(LINE_HOLD "\r\n" LINE_ACTIVE, &l);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_uint_eq(l.skipped, 0);
    ck_assert_str_eq(l.v[1].queue_id, "C8D33E07DCF");
    postq_list_free(&l);
}
END_TEST

/* Fields of the wrong type or missing: defaults, the message kept. */
START_TEST(test_parse_odd_fields)
{
    struct postq_list l;
    parse("{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B8F\"}\n"
          "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B90\", \"arrival_time\": \"soon\", "
          "\"message_size\": -5, \"sender\": 7, \"recipients\": {\"address\": \"x@y\"}}\n"
          "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B91\", \"recipients\": "
          "[1, \"a@b\", null, {}, {\"address\": 5}, {\"delay_reason\": \"no address\"}, "
          "{\"address\": \"ok@c\"}, []]}\n"
          "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B92\", \"recipients\": [], "
          "\"extra\": {\"a\": [1, 2]}}\n",
          &l);
    ck_assert_uint_eq(l.n, 4);
    ck_assert_uint_eq(l.skipped, 0);
    ck_assert_int_eq(l.v[0].arrival_time, 0);
    ck_assert_str_eq(l.v[0].sender, "");
    ck_assert_uint_eq(l.v[0].n_rcpts, 0);
    ck_assert_int_eq(l.v[1].arrival_time, 0);
    ck_assert_uint_eq(l.v[1].size, 0);
    ck_assert_str_eq(l.v[1].sender, "");
    ck_assert_uint_eq(l.v[1].n_rcpts, 0);
    ck_assert_uint_eq(l.v[2].n_rcpts, 1);
    ck_assert_str_eq(l.v[2].rcpts[0], "ok@c");
    ck_assert_ptr_null(l.v[2].delay_reason); /* of a recipient without an address: not taken */
    ck_assert_uint_eq(l.v[3].n_rcpts, 0);
    postq_list_free(&l);
}
END_TEST

START_TEST(test_parse_garbage)
{
    static const char *const bad[] = {
        "postqueue: warning: Mail system is down -- accessing queue directly",
        "Mail queue is empty",
        "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------",
        "{",
        "}",
        "[]",
        "{}",
        "null",
        "42",
        "\"4F2A52C0B8F\"",
        "[" LINE_ACTIVE "]",
        "{\"queue_id\": 5, \"queue_name\": \"hold\"}",
        "{\"queue_id\": \"4F2A52C0B8F\"}",
        "{\"queue_name\": \"hold\"}",
        "{\"queue_name\": null, \"queue_id\": \"4F2A52C0B8F\"}",
        "{\"queue_name\": \"a_very_long_queue_name\", \"queue_id\": \"4F2A52C0B8F\"}",
        "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B8F\", \"queue_id\": \"4F2A52C0B90\"}",
        "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B8F\"} x",
        "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B8F\"} {\"queue_name\": \"hold\"}",
        "{'queue_name': 'hold', 'queue_id': '4F2A52C0B8F'}",
        "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B8F\",}",
        "\xff\xfe{\"queue_name\": \"hold\", \"queue_id\": \"4F2A52C0B8F\"}",
        "{\"queue_name\": \"ho\xffld\", \"queue_id\": \"4F2A52C0B8F\"}",
        "   ",
    };
    struct buf text;
    buf_init(&text);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct postq_list l;
        parse(bad[i], &l);
        ck_assert_msg(l.n == 0 && l.skipped == 1, "\"%s\": n %zu, skipped %zu", bad[i], l.n, l.skipped);
        postq_list_free(&l);
        buf_printf(&text, "%s\n%s\n", bad[i], i % 3 == 0 ? LINE_ACTIVE : "");
    }
    /* all at once, between good lines */
    struct postq_list l;
    postq_parse(text.data, text.len, &l);
    ck_assert_uint_eq(l.n, 8);
    ck_assert_uint_eq(l.skipped, sizeof bad / sizeof bad[0]);
    postq_list_free(&l);
    buf_free(&text);
}
END_TEST

/* Every prefix of a line (output cut short): never a message, never a crash. */
START_TEST(test_parse_truncated)
{
    const char *line = LINE_DEFERRED;
    size_t len = strlen(line);
    for (size_t cut = 1; cut < len; cut++) {
        char *copy = mem_alloc(cut); /* exactly cut bytes: ASan sees a read past them */
        memcpy(copy, line, cut);
        struct postq_list l;
        postq_parse(copy, cut, &l);
        ck_assert_msg(l.n == 0 && l.skipped == 1, "cut at %zu: n %zu, skipped %zu", cut, l.n, l.skipped);
        postq_list_free(&l);
        mem_free(copy);
    }
    /* cut after a good line */
    struct buf t;
    buf_init(&t);
    buf_printf(&t, "%s\n%.*s", LINE_HOLD, (int)(len / 2), line);
    struct postq_list l;
    postq_parse(t.data, t.len, &l);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_uint_eq(l.skipped, 1);
    postq_list_free(&l);
    buf_free(&t);
}
END_TEST

/* Queue IDs that must never reach postsuper or postqueue. */
START_TEST(test_parse_bad_queue_id)
{
    static const char *const bad[] = {
        "ALL", "../x", "-d", "", "-", "4f2a52c0b8f", "4F2A52C0B8F ALL", "4F2A52C0B8F\\n", "\\u0000",
        "4F2A5\\u00002C0B8F", "4F2A52C0B8F;reboot", "/var/spool/postfix/hold/4F2A52C0B8F", "4F2A52C0B8F/..",
        "4F2A52C0B8F4F2A52C0B8F4F2A52C0B8F4F2A52C0B8F", "$(reboot)", " 4F2A52C0B8F", "4F2A52C0B8F ",
        "deferred", "C8D3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[512];
        snprintf(line, sizeof line, "{\"queue_name\": \"hold\", \"queue_id\": \"%s\", \"sender\": \"\"}",
                 bad[i]);
        struct postq_list l;
        parse(line, &l);
        ck_assert_msg(l.n == 0 && l.skipped == 1, "queue_id \"%s\" accepted", bad[i]);
        postq_list_free(&l);
    }
}
END_TEST

/* NUL bytes inside the text: the lines holding them are bad, the others
 * are read. */
START_TEST(test_parse_nul)
{
    /* a NUL in a queue ID, a line of one NUL, a NUL between tokens, a NUL
     * after a whole object, then a good line */
    static const char a[] = "{\"queue_name\": \"hold\", \"queue_id\": \"4F2A5\0" "2C0B8F\"}\n" LINE_ACTIVE
                            "\n\0\n{\"queue_name\": \"hold\"\0, \"queue_id\": \"4F2A52C0B8F\"}\n" LINE_DEFERRED
                            "\0\n" LINE_HOLD;
    struct postq_list l;
    postq_parse(a, sizeof a - 1, &l);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_uint_eq(l.skipped, 4);
    ck_assert_str_eq(l.v[0].queue_id, "C8D33E07DCF");
    ck_assert_str_eq(l.v[1].queue_id, "3Pt2mN2VXxznjll");
    postq_list_free(&l);
}
END_TEST

START_TEST(test_parse_empty)
{
    struct postq_list l;
    memset(&l, 0x5a, sizeof l);
    postq_parse("", 0, &l);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(l.skipped, 0);
    postq_list_free(&l);
    parse("\n\n\n", &l);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(l.skipped, 0);
    postq_list_free(&l);
    /* the length rules, not the NUL */
    postq_parse(LINE_ACTIVE, 0, &l);
    ck_assert_uint_eq(l.n, 0);
    postq_list_free(&l);
    postq_list_free(&l); /* twice: harmless */
}
END_TEST

START_TEST(test_parse_long)
{
    /* 4 MB of garbage on one line, then a message */
    size_t big = (size_t)4 << 20;
    struct buf t;
    buf_init(&t);
    buf_reserve(&t, big);
    memset(t.data, 'x', big);
    t.len = big;
    t.data[t.len] = '\0';
    buf_printf(&t, "\n%s\n", LINE_ACTIVE);
    struct postq_list l;
    postq_parse(t.data, t.len, &l);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_uint_eq(l.skipped, 1);
    postq_list_free(&l);

    /* nested 100,000 deep: jansson's depth limit, not the stack */
    buf_reset(&t);
    for (int i = 0; i < 100000; i++)
        buf_puts(&t, "[");
    buf_puts(&t, "\n");
    for (int i = 0; i < 100000; i++)
        buf_puts(&t, "{\"a\":");
    postq_parse(t.data, t.len, &l);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(l.skipped, 2);
    postq_list_free(&l);

    /* a message with a 1 MB sender and 20,000 recipients */
    buf_reset(&t);
    buf_puts(&t, "{\"queue_name\": \"deferred\", \"queue_id\": \"4F2A52C0B8F\", \"sender\": \"");
    for (int i = 0; i < (1 << 20); i++)
        buf_putc(&t, 's');
    buf_puts(&t, "\", \"recipients\": [");
    for (int i = 0; i < 20000; i++)
        buf_printf(&t, "%s{\"address\": \"r%d@example.net\"}", i > 0 ? ", " : "", i);
    buf_puts(&t, "]}\n");
    postq_parse(t.data, t.len, &l);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_uint_eq(l.skipped, 0);
    ck_assert_uint_eq(strlen(l.v[0].sender), (size_t)1 << 20);
    ck_assert_uint_eq(l.v[0].n_rcpts, 20000);
    ck_assert_str_eq(l.v[0].rcpts[19999], "r19999@example.net");
    postq_list_free(&l);

    /* many lines: the list grows */
    buf_reset(&t);
    for (int i = 0; i < 1000; i++)
        buf_printf(&t, "{\"queue_name\": \"hold\", \"queue_id\": \"%011X\"}\n", 0xA0000000u + (unsigned)i);
    postq_parse(t.data, t.len, &l);
    ck_assert_uint_eq(l.n, 1000);
    ck_assert_str_eq(l.v[999].queue_id, "000A00003E7");
    postq_list_free(&l);
    buf_free(&t);
}
END_TEST

/* --- cmd_run ------------------------------------------------------------------ */

START_TEST(test_cmd_ok)
{
    char prog[256];
    script("ok", "echo hello\necho world\necho 'to stderr' >&2\nexit 0", prog, sizeof prog);
    char *const argv[] = { prog, NULL };
    struct buf out, err;
    buf_init(&out);
    buf_init(&err);
    ck_assert_int_eq(cmd_run(argv, &out, &err), 0);
    ck_assert_str_eq(out.data, "hello\nworld\n");
    ck_assert_str_eq(err.data, "");
    ck_assert_int_eq(cmd_run(argv, NULL, &err), 0); /* output discarded */
    ck_assert_str_eq(err.data, "");
    buf_free(&out);
    buf_free(&err);
}
END_TEST

START_TEST(test_cmd_exit_status)
{
    char prog[256];
    script("fail", "echo partial\necho 'postsuper: fatal: first line' >&2\necho 'second line' >&2\nexit 3",
           prog, sizeof prog);
    char *const argv[] = { prog, NULL };
    struct buf out, err;
    buf_init(&out);
    buf_init(&err);
    ck_assert_int_eq(cmd_run(argv, &out, &err), 3);
    ck_assert_str_eq(out.data, "partial\n");
    char want[512];
    snprintf(want, sizeof want, "%s exited with 3: postsuper: fatal: first line", prog);
    ck_assert_str_eq(err.data, want);
    /* no standard error */
    script("quiet", "exit 5", prog, sizeof prog);
    char *const argv2[] = { prog, NULL };
    buf_reset(&err);
    ck_assert_int_eq(cmd_run(argv2, NULL, &err), 5);
    snprintf(want, sizeof want, "%s exited with 5", prog);
    ck_assert_str_eq(err.data, want);
    /* 255 */
    script("max", "exit 255", prog, sizeof prog);
    char *const argv3[] = { prog, NULL };
    buf_reset(&err);
    ck_assert_int_eq(cmd_run(argv3, NULL, &err), 255);
    buf_free(&out);
    buf_free(&err);
}
END_TEST

START_TEST(test_cmd_cannot_run)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s/no-such-program", tmpdir);
    char *const argv[] = { prog, NULL };
    struct buf out, err;
    buf_init(&out);
    buf_init(&err);
    ck_assert_int_eq(cmd_run(argv, &out, &err), -1);
    ck_assert_msg(strstr(err.data, "cannot run") != NULL && strstr(err.data, prog) != NULL, "%s", err.data);
    ck_assert_uint_eq(out.len, 0);
    /* not executable */
    snprintf(prog, sizeof prog, "%s/plain", tmpdir);
    write_file(prog, "#!/bin/sh\nexit 0\n", 17);
    char *const argv2[] = { prog, NULL };
    buf_reset(&err);
    ck_assert_int_eq(cmd_run(argv2, &out, &err), -1);
    ck_assert_msg(strstr(err.data, "cannot run") != NULL, "%s", err.data);
    /* a relative name is not searched for in PATH */
    char *const argv3[] = { (char *)"true", NULL };
    buf_reset(&err);
    ck_assert_int_eq(cmd_run(argv3, &out, &err), -1);
    buf_free(&out);
    buf_free(&err);
}
END_TEST

START_TEST(test_cmd_killed)
{
    char prog[256];
    script("killed", "echo before\nkill -TERM $$\necho after", prog, sizeof prog);
    char *const argv[] = { prog, NULL };
    struct buf out, err;
    buf_init(&out);
    buf_init(&err);
    ck_assert_int_eq(cmd_run(argv, &out, &err), -1);
    ck_assert_msg(strstr(err.data, "killed by signal 15") != NULL, "%s", err.data);
    buf_free(&out);
    buf_free(&err);
}
END_TEST

/* Arguments verbatim (no shell), standard input /dev/null, PATH only. */
START_TEST(test_cmd_args_env)
{
    char prog[256];
    script("args",
           "printf '%s|' \"$@\"\ncat\n"
           "[ -z \"${HOME+x}\" ] && [ -z \"${LD_PRELOAD+x}\" ] && echo \"$PATH\"",
           prog, sizeof prog);
    char *const argv[] = { prog, (char *)"a b", (char *)"$(id)", (char *)"*", (char *)"", (char *)"-c", NULL };
    struct buf out, err;
    buf_init(&out);
    buf_init(&err);
    setenv("HOME", "/root", 1);
    ck_assert_int_eq(cmd_run(argv, &out, &err), 0);
    ck_assert_str_eq(out.data, "a b|$(id)|*||-c|/usr/sbin:/usr/bin:/sbin:/bin\n");
    buf_free(&out);
    buf_free(&err);
}
END_TEST

/* The program starts with the default signal dispositions and nothing
 * blocked, whatever the daemon's threads block or ignore (the milter
 * blocks SIGHUP, SIGTERM and SIGINT in every thread and ignores SIGPIPE):
 * else postsuper or postqueue could not be stopped by SIGTERM. */
START_TEST(test_cmd_signals)
{
    char prog[256];
    script("sigs", "exec grep -E '^Sig(Blk|Ign)' /proc/self/status", prog, sizeof prog);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    char *const argv[] = { prog, NULL };
    struct buf out, err;
    buf_init(&out);
    buf_init(&err);
    ck_assert_msg(cmd_run(argv, &out, &err) == 0, "%s", err.data);
    unsigned long long blk = 1, ign = 1;
    ck_assert_msg(sscanf(out.data, "SigBlk: %llx SigIgn: %llx", &blk, &ign) == 2, "%s", out.data);
    ck_assert_msg(blk == 0, "blocked: %llx", blk);
    /* glibc's posix_spawn leaves its own two signals (32, 33) ignored */
    ck_assert_msg((ign & ~0x180000000ULL) == 0, "ignored: %llx", ign);
    buf_free(&out);
    buf_free(&err);
}
END_TEST

/* Much output on both pipes at once: no deadlock, all of stdout kept. */
START_TEST(test_cmd_big_output)
{
    char prog[256];
    script("big",
           "i=0\nwhile [ $i -lt 64 ]; do\n"
           "head -c 16384 /dev/zero | tr '\\0' o; head -c 4096 /dev/zero | tr '\\0' e >&2; i=$((i+1))\n"
           "done\nexit 1",
           prog, sizeof prog);
    char *const argv[] = { prog, NULL };
    struct buf out, err;
    buf_init(&out);
    buf_init(&err);
    ck_assert_int_eq(cmd_run(argv, &out, &err), 1);
    ck_assert_uint_eq(out.len, 64 * 16384);
    ck_assert_int_eq(out.data[0], 'o');
    ck_assert_int_eq(out.data[out.len - 1], 'o');
    ck_assert_msg(strncmp(err.data, prog, strlen(prog)) == 0, "%.100s", err.data);
    ck_assert_uint_lt(err.len, 128 * 1024); /* standard error is bounded */
    buf_free(&out);
    buf_free(&err);
}
END_TEST

/* --- postq_deliver, postq_list -------------------------------------------------- */

START_TEST(test_deliver_bad_id_never_runs)
{
    static const char *const bad[] = {
        "ALL", "-d", "-c", "../x", "", "4f2a52c0b8f", "4F2A52C0B8F ALL", "4F2A52C0B8F\n", "deferred", "-i",
        "4F2A52C0B8F;reboot", "$(reboot)",
    };
    struct buf err;
    buf_init(&err);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_reset(&err);
        ck_assert_msg(!postq_deliver(fake, "/etc/postfix", bad[i], &err), "accepted \"%s\"", bad[i]);
        ck_assert_msg(err.len > 0, "\"%s\": no error", bad[i]);
    }
    char c[256];
    calls(c, sizeof c);
    ck_assert_str_eq(c, "");
    buf_free(&err);
}
END_TEST

START_TEST(test_deliver)
{
    struct buf err;
    buf_init(&err);
    ck_assert_msg(postq_deliver(fake, "/etc/postfix-out", "4F2A52C0B8F", &err), "%s", err.data);
    ck_assert_msg(postq_deliver(fake, "/etc/postfix-out", "3Pt2mN2VXxznjll", &err), "%s", err.data);
    char c[256];
    calls(c, sizeof c);
    ck_assert_str_eq(c, "-c|/etc/postfix-out|-i|4F2A52C0B8F|\n-c|/etc/postfix-out|-i|3Pt2mN2VXxznjll|\n");
    /* Postfix down */
    write_file(failf, "", 0);
    buf_reset(&err);
    ck_assert(!postq_deliver(fake, "/etc/postfix-out", "4F2A52C0B8F", &err));
    ck_assert_msg(strstr(err.data, "exited with 75: postqueue: fatal: Queue report unavailable - "
                                   "mail system is down") != NULL,
                  "%s", err.data);
    ck_assert(strstr(err.data, "second line") == NULL);
    buf_free(&err);
}
END_TEST

START_TEST(test_list)
{
    static const char text[] = LINE_HOLD "\n" LINE_DEFERRED "\n";
    write_file(listf, text, sizeof text - 1);
    struct postq_list l;
    struct buf err;
    buf_init(&err);
    ck_assert_msg(postq_list(fake, "/etc/postfix", &l, &err), "%s", err.data);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_uint_eq(l.skipped, 0);
    ck_assert_str_eq(l.v[0].queue_name, "hold");
    ck_assert_str_eq(l.v[1].queue_id, "4F2A52C0B8F");
    postq_list_free(&l);
    char c[256];
    calls(c, sizeof c);
    ck_assert_str_eq(c, "-c|/etc/postfix|-j|\n");

    /* a line that is not a message: skipped, the rest read */
    static const char text2[] = "postqueue: warning: something\n" LINE_ACTIVE "\n";
    write_file(listf, text2, sizeof text2 - 1);
    ck_assert_msg(postq_list(fake, "/etc/postfix", &l, &err), "%s", err.data);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_uint_eq(l.skipped, 1);
    postq_list_free(&l);

    /* an empty queue */
    write_file(listf, "", 0);
    ck_assert_msg(postq_list(fake, "/etc/postfix", &l, &err), "%s", err.data);
    ck_assert_uint_eq(l.n, 0);
    postq_list_free(&l);

    /* Postfix down: false, nothing listed */
    write_file(failf, "", 0);
    buf_reset(&err);
    ck_assert(!postq_list(fake, "/etc/postfix", &l, &err));
    ck_assert_msg(strstr(err.data, "mail system is down") != NULL, "%s", err.data);
    ck_assert_uint_eq(l.n, 0);
    postq_list_free(&l);
    /* postqueue missing */
    char missing[256];
    snprintf(missing, sizeof missing, "%s/nowhere/postqueue", tmpdir);
    buf_reset(&err);
    ck_assert(!postq_list(missing, "/etc/postfix", &l, &err));
    ck_assert_msg(strstr(err.data, "cannot run") != NULL, "%s", err.data);
    ck_assert_uint_eq(l.n, 0);
    postq_list_free(&l);
    buf_free(&err);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_parse_realistic);
    tcase_add_test(tc, test_parse_odd_fields);
    tcase_add_test(tc, test_parse_garbage);
    tcase_add_test(tc, test_parse_truncated);
    tcase_add_test(tc, test_parse_bad_queue_id);
    tcase_add_test(tc, test_parse_nul);
    tcase_add_test(tc, test_parse_empty);
    tcase_add_test(tc, test_parse_long);
    tcase_add_test(tc, test_cmd_ok);
    tcase_add_test(tc, test_cmd_exit_status);
    tcase_add_test(tc, test_cmd_cannot_run);
    tcase_add_test(tc, test_cmd_killed);
    tcase_add_test(tc, test_cmd_args_env);
    tcase_add_test(tc, test_cmd_signals);
    tcase_add_test(tc, test_cmd_big_output);
    tcase_add_test(tc, test_deliver_bad_id_never_runs);
    tcase_add_test(tc, test_deliver);
    tcase_add_test(tc, test_list);
}

UNIT_MAIN("postq", add_tests)
