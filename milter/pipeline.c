/* pipeline.c: placeholder while it is written. */
#include "pipeline.h"
