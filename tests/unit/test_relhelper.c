/* test_relhelper.c: unit tests of milter/relhelper.c, the privileged
 * helper that runs "postsuper -c DIR -H QUEUE_ID" for the hold-queue
 * release.  A fake postsuper (a shell script written here) logs its
 * arguments: a well-formed queue ID reaches it exactly as "-c DIR -H ID";
 * anything else (options, "ALL", a second word, a path, lowercase, a
 * line that is not a request) never does, on either side of the channel;
 * postsuper's failure comes back as an error; the helper keeps serving
 * after bad requests and ends when the milter closes its end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "relhelper.h"
#include "unit.h"

static char tmpdir[64], fake[128], calls_file[128], failf[128];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_relhelper.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(fake, sizeof fake, "%s/postsuper", tmpdir);
    snprintf(calls_file, sizeof calls_file, "%s/calls", tmpdir);
    snprintf(failf, sizeof failf, "%s/fail", tmpdir);
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\nprintf '%%s|' \"$@\" >> %s\necho >> %s\n[ -e %s ] && exit 3\nexit 0\n", calls_file, calls_file, failf);
    fclose(f);
    ck_assert_int_eq(chmod(fake, 0755), 0);
}

static void teardown(void)
{
    unit_rm_tree(tmpdir);
}

/* The fake postsuper's calls so far, one line each ("" when none). */
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

START_TEST(test_handle_good)
{
    struct buf a;
    buf_init(&a);
    ck_assert(relhelper_handle(tmpdir, "/etc/postfix", "H C8D33E07DCF", &a));
    ck_assert_str_eq(a.data, "OK C8D33E07DCF\n");
    ck_assert(relhelper_handle(tmpdir, "/etc/postfix", "H 3Pt2mN2VXxznjll", &a));
    char c[512];
    calls(c, sizeof c);
    ck_assert_str_eq(c, "-c|/etc/postfix|-H|C8D33E07DCF|\n-c|/etc/postfix|-H|3Pt2mN2VXxznjll|\n");
    buf_free(&a);
}
END_TEST

START_TEST(test_handle_bad_never_runs)
{
    static const char *const bad[] = {
        "H ALL", "H -d ALL", "H -", "H C8D33E07DCF ALL", "H C8D33E07DCF;reboot", "H ../../etc/passwd",
        "H c8d33e07dcf", "H ", "H", "", "C8D33E07DCF", "D C8D33E07DCF", "h C8D33E07DCF", "H  C8D33E07DCF",
        "H $(reboot)", "H `id`", "H C8D33E07DCF\r",
    };
    struct buf a;
    buf_init(&a);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!relhelper_handle(tmpdir, "/etc/postfix", bad[i], &a), "accepted \"%s\"", bad[i]);
        ck_assert_msg(strncmp(a.data, "ERR - ", 6) == 0, "\"%s\": %s", bad[i], a.data);
    }
    char c[64];
    calls(c, sizeof c);
    ck_assert_str_eq(c, ""); /* postsuper never ran */
    buf_free(&a);
}
END_TEST

START_TEST(test_handle_failure)
{
    FILE *f = fopen(failf, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    struct buf a;
    buf_init(&a);
    ck_assert(!relhelper_handle(tmpdir, "/etc/postfix", "H C8D33E07DCF", &a));
    char want[300];
    snprintf(want, sizeof want, "ERR C8D33E07DCF %s exited with 3\n", fake);
    ck_assert_str_eq(a.data, want);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none", tmpdir);
    ck_assert(!relhelper_handle(missing, "/etc/postfix", "H C8D33E07DCF", &a)); /* no postsuper there */
    ck_assert_msg(strstr(a.data, "ERR C8D33E07DCF") == a.data, "%s", a.data);
    buf_free(&a);
}
END_TEST

/* Through the forked helper: releases, refusals on the milter's side,
 * a failure, then the helper still serves; stop reaps it. */
START_TEST(test_helper_process)
{
    struct buf err;
    buf_init(&err);
    ck_assert_ptr_null(relhelper_start("postsuper", "/etc/postfix", &err)); /* not absolute */
    ck_assert(err.len > 0);
    buf_reset(&err);
    struct relhelper *h = relhelper_start(tmpdir, "/etc/postfix-lab", &err);
    ck_assert_msg(h != NULL, "%s", err.data);
    ck_assert_int_gt(relhelper_pid(h), 0);
    ck_assert_msg(relhelper_release(h, "C8D33E07DCF", &err), "%s", err.data);
    ck_assert(!relhelper_release(h, "-d ALL", &err));
    ck_assert_msg(strstr(err.data, "not a Postfix queue ID") != NULL, "%s", err.data);
    buf_reset(&err);
    ck_assert(!relhelper_release(h, "C8D33E07DCF\nH 2D5CBA8E453", &err)); /* no second request smuggled */
    buf_reset(&err);
    FILE *f = fopen(failf, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert(!relhelper_release(h, "2D5CBA8E453", &err));
    ck_assert_msg(strstr(err.data, "postsuper exited with 3") != NULL, "%s", err.data);
    buf_reset(&err);
    ck_assert_int_eq(unlink(failf), 0);
    ck_assert_msg(relhelper_release(h, "3Pt2mN2VXxznjll", &err), "%s", err.data);
    pid_t pid = relhelper_pid(h);
    relhelper_stop(h);
    ck_assert_int_eq(kill(pid, 0), -1); /* reaped */
    ck_assert_int_eq(errno, ESRCH);
    char c[512];
    calls(c, sizeof c);
    ck_assert_str_eq(c, "-c|/etc/postfix-lab|-H|C8D33E07DCF|\n-c|/etc/postfix-lab|-H|2D5CBA8E453|\n"
                        "-c|/etc/postfix-lab|-H|3Pt2mN2VXxznjll|\n");
    buf_free(&err);
}
END_TEST

/* postqueue -i of a well-formed ID, postqueue -j passed back whole (a
 * fake postqueue that logs its arguments and prints two JSON lines);
 * "J" takes no argument, "I" the same checks as "H". */
START_TEST(test_postqueue_requests)
{
    char pq[160];
    snprintf(pq, sizeof pq, "%s/postqueue", tmpdir);
    FILE *f = fopen(pq, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\n{ printf 'postqueue|'; printf '%%s|' \"$@\"; echo; } >> %s\n"
               "[ \"$3\" = -j ] && printf '{\"queue_id\":\"C8D33E07DCF\",\"queue_name\":\"hold\"}\\n{}\\n'\nexit 0\n",
            calls_file);
    fclose(f);
    ck_assert_int_eq(chmod(pq, 0755), 0);
    struct buf a, err, out;
    buf_init(&a);
    buf_init(&err);
    buf_init(&out);
    ck_assert(relhelper_handle(tmpdir, "/etc/postfix", "I C8D33E07DCF", &a));
    ck_assert_str_eq(a.data, "OK C8D33E07DCF\n");
    ck_assert(!relhelper_handle(tmpdir, "/etc/postfix", "I ALL", &a));
    ck_assert(!relhelper_handle(tmpdir, "/etc/postfix", "J -d", &a));
    ck_assert(!relhelper_handle(tmpdir, "/etc/postfix", "I -f", &a));
    struct relhelper *h = relhelper_start(tmpdir, "/etc/postfix-lab", &err);
    ck_assert_msg(h != NULL, "%s", err.data);
    ck_assert_msg(relhelper_deliver(h, "3Pt2mN2VXxznjll", &err), "%s", err.data);
    ck_assert(!relhelper_deliver(h, "-f", &err));
    buf_reset(&err);
    ck_assert_msg(relhelper_queue(h, &out, &err), "%s", err.data);
    ck_assert_str_eq(out.data, "{\"queue_id\":\"C8D33E07DCF\",\"queue_name\":\"hold\"}\n{}\n");
    ck_assert_msg(relhelper_release(h, "C8D33E07DCF", &err), "%s", err.data); /* the channel still in step */
    relhelper_stop(h);
    char c[1024];
    calls(c, sizeof c);
    ck_assert_str_eq(c, "postqueue|-c|/etc/postfix|-i|C8D33E07DCF|\n"
                        "postqueue|-c|/etc/postfix-lab|-i|3Pt2mN2VXxznjll|\n"
                        "postqueue|-c|/etc/postfix-lab|-j|\n"
                        "-c|/etc/postfix-lab|-H|C8D33E07DCF|\n");
    buf_free(&a);
    buf_free(&err);
    buf_free(&out);
}
END_TEST

/* postsuper that released the message and then failed (Postfix stopped:
 * it cannot tell the queue manager): a release all the same. */
START_TEST(test_released_then_failed)
{
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\necho \"postsuper: C8D33E07DCF: released from hold\" >&2\n"
               "echo 'postsuper: fatal: connect to public/qmgr: Connection refused' >&2\nexit 1\n");
    fclose(f);
    struct buf a;
    buf_init(&a);
    ck_assert_msg(relhelper_handle(tmpdir, "/etc/postfix", "H C8D33E07DCF", &a), "%s", a.data);
    /* another message's line is not this one's, nor a longer ID's tail */
    ck_assert(!relhelper_handle(tmpdir, "/etc/postfix", "H C8D33E07DCA", &a));
    ck_assert(!relhelper_handle(tmpdir, "/etc/postfix", "H 8D33E07DCF", &a));
    f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\necho 'postsuper: Released from hold: 0 messages' >&2\nexit 1\n");
    fclose(f);
    ck_assert(!relhelper_handle(tmpdir, "/etc/postfix", "H C8D33E07DCF", &a));
    ck_assert_msg(strstr(a.data, "ERR C8D33E07DCF ") == a.data, "%s", a.data);
    ck_assert_msg(strchr(a.data, '\n') == a.data + a.len - 1, "one line: %s", a.data);
    buf_free(&a);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_handle_good);
    tcase_add_test(tc, test_handle_bad_never_runs);
    tcase_add_test(tc, test_handle_failure);
    tcase_add_test(tc, test_helper_process);
    tcase_add_test(tc, test_postqueue_requests);
    tcase_add_test(tc, test_released_then_failed);
}

UNIT_MAIN("relhelper", add_tests)
