/* adapter.h: placeholder. */
#ifndef POSTERN_MILTER_ADAPTER_H
#define POSTERN_MILTER_ADAPTER_H
#endif
