/* test_pipeline.c: placeholder. */
#include "unit.h"
static void add_tests(TCase *tc) { (void)tc; }
UNIT_MAIN("test_pipeline", add_tests)
