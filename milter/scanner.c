/* scanner.c: see scanner.h. */
#include "scanner.h"
