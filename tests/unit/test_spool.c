/* test_spool.c: unit tests of milter/spool.c (placeholder). */
#include "unit.h"

static void add_tests(TCase *tc)
{
    (void)tc;
}

UNIT_MAIN("spool", add_tests)
