/* ingester.c: placeholder while it is written. */
#include "ingester.h"
