/* releaser.h: placeholder */
#ifndef POSTERN_MILTER_RELEASER_H
#define POSTERN_MILTER_RELEASER_H
#endif
