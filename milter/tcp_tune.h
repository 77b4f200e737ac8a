/* tcp_tune.h: removes the two ~40 ms Nagle / delayed-ACK stalls that every
 * stock libmilter milter adds per message over TCP (DESIGN.md, "Measured
 * facts"), by giving the connections libmilter accepts TCP_NODELAY and a
 * re-armed TCP_QUICKACK.  libmilter does not expose its sockets, so
 * tcp_tune.c interposes accept(), read() and close() in the executable;
 * see there for why and how.  Unix sockets are never touched. */
#ifndef POSTERN_MILTER_TCP_TUNE_H
#define POSTERN_MILTER_TCP_TUNE_H
#include <stdbool.h>
#include <stdint.h>

/* The environment variable that turns the tuning off (for measurements):
 * POSTERN_NO_TCP_TUNE=1. */
#define TCP_TUNE_ENV_OFF "POSTERN_NO_TCP_TUNE"

/* Turn the tuning on or off for connections accepted from now on; main()
 * calls it once before smfi_main().  Off until called. */
void tcp_tune_enable(bool on);
bool tcp_tune_enabled(void);
/* From the environment: on unless POSTERN_NO_TCP_TUNE is set to a value
 * other than "" and "0". */
bool tcp_tune_wanted(void);
/* TCP connections tuned so far (for the stop log line and the tests). */
uint64_t tcp_tune_count(void);

#endif
