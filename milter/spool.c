/* spool.c: see spool.h. */
#include "spool.h"
