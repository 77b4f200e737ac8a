/* test_request.c: (being written) */
#include "unit.h"
static void add(TCase *tc)
{
    (void)tc;
}
UNIT_MAIN("request", add)
