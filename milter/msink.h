/* msink.h: placeholder while it is written. */
#ifndef POSTERN_MSINK_H
#define POSTERN_MSINK_H
#endif
