/* test_dkim_sign.c: placeholder. */
#include "unit.h"
static void add_tests(TCase *tc) { (void)tc; }
UNIT_MAIN("test_dkim_sign", add_tests)
