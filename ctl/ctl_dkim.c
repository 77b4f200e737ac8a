/* ctl_dkim.c: placeholder. */
#include "ctl.h"
