/* unit.h: the common frame of postern's Check-based unit tests: each test
 * file defines its suite with UNIT_MAIN(name, add_tests) and runs as its
 * own program under "make check" (with ASan/UBSan in tests/run). */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H
#include <check.h>
#include <stdlib.h>

#define UNIT_MAIN(name, adder)                                        \
    int main(void)                                                    \
    {                                                                 \
        Suite *s = suite_create(name);                                \
        TCase *tc = tcase_create("core");                             \
        tcase_set_timeout(tc, 60);                                    \
        adder(tc);                                                    \
        suite_add_tcase(s, tc);                                       \
        SRunner *sr = srunner_create(s);                              \
        srunner_run_all(sr, CK_NORMAL);                               \
        int failed = srunner_ntests_failed(sr);                       \
        srunner_free(sr);                                             \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;             \
    }

#endif
