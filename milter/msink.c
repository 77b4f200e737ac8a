/* msink.c: placeholder while it is written. */
#include "msink.h"
