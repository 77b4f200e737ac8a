/* tcp_tune.c: placeholder. */
#include "tcp_tune.h"
