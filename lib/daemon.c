/* daemon.c: placeholder while it is written. */
#include "daemon.h"
