/* daemon.h: placeholder while it is written. */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H
#endif
