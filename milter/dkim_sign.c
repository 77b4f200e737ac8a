/* dkim_sign.c: placeholder while it is written. */
#include "dkim_sign.h"
