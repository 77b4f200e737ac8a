/* test_bounce.c: placeholder (being written). */
#include "unit.h"

START_TEST(placeholder) { ck_assert(1); }
END_TEST

static void add(TCase *tc) { tcase_add_test(tc, placeholder); }
UNIT_MAIN("bounce", add)
