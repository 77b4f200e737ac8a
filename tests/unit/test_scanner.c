/* test_scanner.c: unit tests of milter/scanner.c (placeholder). */
#include "unit.h"

static void add_tests(TCase *tc)
{
    (void)tc;
}

UNIT_MAIN("scanner", add_tests)
