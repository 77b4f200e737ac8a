/* scan.c: see scan.h. */
#include "scan.h"
