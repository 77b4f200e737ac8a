/* ctl_pace.c: posternctl pacing (placeholder, being written). */
#include "ctl.h"
