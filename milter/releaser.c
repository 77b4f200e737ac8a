/* releaser.c: placeholder */
#include "releaser.h"
