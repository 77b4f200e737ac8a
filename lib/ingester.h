/* ingester.h: placeholder while it is written. */
#ifndef POSTERN_INGESTER_H
#define POSTERN_INGESTER_H
#endif
