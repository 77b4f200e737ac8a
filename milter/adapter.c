/* adapter.c: placeholder. */
#include "adapter.h"
