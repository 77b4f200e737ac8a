/* test_scan.c: unit tests of milter/scan.c (placeholder). */
#include "unit.h"

static void add_tests(TCase *tc)
{
    (void)tc;
}

UNIT_MAIN("scan", add_tests)
