/* tcp_tune.h: placeholder. */
#ifndef POSTERN_MILTER_TCP_TUNE_H
#define POSTERN_MILTER_TCP_TUNE_H
#endif
