/* test_journal.c: placeholder, replaced by the journal's unit tests. */
#include "unit.h"
static void add_tests(TCase *tc)
{
    (void)tc;
}
UNIT_MAIN("journal", add_tests)
