/* test_qid.c: unit tests of lib/qid.c: only queue IDs of the forms
 * Postfix makes are accepted (they go on postsuper's command line);
 * options, "ALL", "-", paths, blanks, control bytes, vowels in long IDs,
 * a misplaced separator and every length outside the bounds are not. */
#include <string.h>

#include "qid.h"
#include "unit.h"

START_TEST(test_good)
{
    static const char *const good[] = {
        "C8D33E07DCF",         /* short, as in a mail log */
        "2D5CBA8E453",
        "ABCDEF",              /* 6: the shortest */
        "0123456789ABCDEF01234", /* 21: the longest short one */
        "3Pt2mN2VXxznjll",     /* long, Postfix's own example */
        "4Z1x2b6Jl8zB",        /* 12: the shortest long one */
        "zzzzzzzzzzzB",        /* 'z' in the time part, the last one separates */
        "3Pt2mN2VXxznjllbcdfghjk", /* 23 */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(qid_valid(good[i]), "refused: %s", good[i]);
}
END_TEST

START_TEST(test_bad)
{
    static const char *const bad[] = {
        "", "ALL", "-", "-d", "-H", "--", "ABCDE", /* 5 */
        "0123456789ABCDEF012345", /* 22 hex: too long for a short one, and no 'z' */
        "c8d33e07dcf",         /* short in lowercase */
        "C8D33E07DCF ",        /* blank */
        " C8D33E07DCF",
        "C8D33E07DCF\n",
        "C8D33E07DCF\t",
        "C8D3/E07DCF",
        "../C8D33E07",
        "C8D33E07DCF;",
        "3Pt2mN2VXxznjlla",    /* a vowel */
        "3Pt2mN2VXxEnjll",     /* a vowel, no separator */
        "3Pt2mN2VXxnnjll",     /* no 'z' */
        "3Pt2mN2VXxzz",        /* the separator last */
        "3Pt2mNzVXxn",         /* 11 */
        "3Pt2zN2VXnnjll",      /* the last 'z' too early: less than 10 of time */
        "3Pt2mN2VXxznjllbcdfghjkl", /* 24 is the bound: */
        "3Pt2mN2VXxznjllbcdfghjklm", /* 25 */
        "3Pt2mN2VX_znjll",
        "3Pt2mN2VX-znjll",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (strcmp(bad[i], "3Pt2mN2VXxznjllbcdfghjkl") == 0) {
            ck_assert_msg(qid_valid(bad[i]), "24 characters refused");
            continue;
        }
        ck_assert_msg(!qid_valid(bad[i]), "accepted: \"%s\"", bad[i]);
    }
}
END_TEST

/* A long string is never read past its bound (no strlen over it). */
START_TEST(test_long_input)
{
    char s[4096];
    memset(s, 'B', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    ck_assert(!qid_valid(s));
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, test_good);
    tcase_add_test(tc, test_bad);
    tcase_add_test(tc, test_long_input);
}

UNIT_MAIN("qid", add_tests)
