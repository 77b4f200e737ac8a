/* tcp_tune.c: TCP_NODELAY and a re-armed TCP_QUICKACK on the TCP
 * connections that libmilter accepts, by symbol interposition.
 *
 * Why.  Over TCP, any stock libmilter milter adds ~88 ms to every message
 * of an SMTP session (measured, DESIGN.md): two ~40 ms stalls, each a
 * Nagle wait for a delayed ACK.
 *   1. Postfix sends the milter packets that get no reply (the macros
 *      before a command, the header and body chunks it streams): with
 *      Nagle on its side, its next small packet waits until the milter
 *      ACKs the previous one, and the milter, which has just replied to
 *      something (the kernel's "ping-pong" mode), delays that ACK ~40 ms.
 *      Fix: the milter re-arms TCP_QUICKACK before each read(), which
 *      ACKs what has arrived at once and leaves ping-pong mode again (the
 *      kernel re-enters it whenever we reply, hence before every read).
 *   2. At end of message the milter writes two packets back to back (the
 *      header to insert, then the final reply): with Nagle on the milter's
 *      side the second waits for Postfix's ACK of the first, which Postfix
 *      delays because it is waiting for the reply.  Fix: TCP_NODELAY on
 *      the milter's socket.
 * Unix sockets have neither problem (no Nagle, no delayed ACK).
 *
 * How.  libmilter hides its sockets: there is no hook between accept()
 * and the session thread.  postern-milter therefore defines accept(),
 * read() and close() in its executable; the dynamic linker resolves
 * libmilter's calls (listener.c: accept(); comm.c: MI_SOCK_READ is read();
 * closesocket is close()) to them, and they call the real functions
 * (dlsym(RTLD_NEXT, ...)).  libmilter 8.17 calls accept(), not accept4().
 *   - accept(): the real one; an AF_INET/AF_INET6 socket gets TCP_NODELAY
 *     and TCP_QUICKACK and its descriptor is marked in a bitmap;
 *   - read(): on a marked descriptor, TCP_QUICKACK again, then the real
 *     read();
 *   - close(): unmark, then the real close().
 * Only sockets accepted by libmilter are touched: postern-milter has no
 * other listening socket, so libmilter's listener thread is the only
 * caller of accept() in the process; other descriptors are never marked
 * and their read()/close() cost one bit test.  errno is kept as the real
 * call left it.  POSTERN_NO_TCP_TUNE=1 (read by main() at start) leaves
 * every socket as libmilter made it, to measure the stalls.
 *
 * Global mutable state: symbol interposition strictly needs it (the
 * interposed functions get no context): the pointers to the real
 * functions, the on/off switch, the bitmap of marked descriptors and a
 * counter; all atomic, as libmilter calls them from every session thread. */

/* the real prototypes, not glibc's fortified inline wrappers */
#undef _FORTIFY_SOURCE

#include "tcp_tune.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Descriptors above this are not tuned (far above what a milter uses). */
#define TUNE_MAX_FD 65536

typedef int (*tune_accept_fn)(int, __SOCKADDR_ARG, socklen_t *);
typedef ssize_t (*tune_read_fn)(int, void *, size_t);
typedef int (*tune_close_fn)(int);

static _Atomic(tune_accept_fn) tune_real_accept;
static _Atomic(tune_read_fn) tune_real_read;
static _Atomic(tune_close_fn) tune_real_close;
static atomic_bool tune_on;
static _Atomic uint64_t tune_marks[TUNE_MAX_FD / 64];
static _Atomic uint64_t tune_tuned;

/* --- the real functions --------------------------------------------------- */

static void *tune_resolve(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL) {
        /* cannot happen with glibc; nothing sensible to fall back to */
        fprintf(stderr, "postern-milter: tcp_tune: dlsym(RTLD_NEXT, %s) failed\n", name);
        abort();
    }
    return f;
}

static tune_accept_fn tune_accept_real(void)
{
    tune_accept_fn f = atomic_load_explicit(&tune_real_accept, memory_order_acquire);
    if (f == NULL) {
        f = (tune_accept_fn)tune_resolve("accept");
        atomic_store_explicit(&tune_real_accept, f, memory_order_release);
    }
    return f;
}

static tune_read_fn tune_read_real(void)
{
    tune_read_fn f = atomic_load_explicit(&tune_real_read, memory_order_acquire);
    if (f == NULL) {
        f = (tune_read_fn)tune_resolve("read");
        atomic_store_explicit(&tune_real_read, f, memory_order_release);
    }
    return f;
}

static tune_close_fn tune_close_real(void)
{
    tune_close_fn f = atomic_load_explicit(&tune_real_close, memory_order_acquire);
    if (f == NULL) {
        f = (tune_close_fn)tune_resolve("close");
        atomic_store_explicit(&tune_real_close, f, memory_order_release);
    }
    return f;
}

/* --- the bitmap ----------------------------------------------------------- */

static bool tune_marked(int fd)
{
    if (fd < 0 || fd >= TUNE_MAX_FD)
        return false;
    uint64_t word = atomic_load_explicit(&tune_marks[fd / 64], memory_order_relaxed);
    return (word >> (fd % 64)) & 1;
}

static void tune_mark(int fd, bool on)
{
    if (fd < 0 || fd >= TUNE_MAX_FD)
        return;
    uint64_t bit = (uint64_t)1 << (fd % 64);
    if (on)
        atomic_fetch_or_explicit(&tune_marks[fd / 64], bit, memory_order_relaxed);
    else if (atomic_load_explicit(&tune_marks[fd / 64], memory_order_relaxed) & bit)
        atomic_fetch_and_explicit(&tune_marks[fd / 64], ~bit, memory_order_relaxed);
}

/* --- tuning --------------------------------------------------------------- */

static bool tune_quickack(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one) == 0;
}

/* A descriptor accept() returned: tune it when it is TCP. */
static void tune_accepted(int fd)
{
    int domain = 0, one = 1;
    socklen_t len = sizeof domain;
    bool tcp = fd >= 0 && fd < TUNE_MAX_FD && atomic_load_explicit(&tune_on, memory_order_relaxed) &&
               getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
               (domain == AF_INET || domain == AF_INET6);
    if (tcp) {
        tcp = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 && tune_quickack(fd);
        if (tcp)
            atomic_fetch_add_explicit(&tune_tuned, 1, memory_order_relaxed);
    }
    tune_mark(fd, tcp);
}

/* --- the interposed functions --------------------------------------------- */

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len)
{
    int s = tune_accept_real()(fd, addr, len);
    if (s >= 0) {
        int saved = errno;
        tune_accepted(s);
        errno = saved;
    }
    return s;
}

ssize_t read(int fd, void *buf, size_t n)
{
    if (tune_marked(fd)) {
        int saved = errno;
        if (!tune_quickack(fd) && (errno == ENOTSOCK || errno == EBADF || errno == ENOPROTOOPT))
            tune_mark(fd, false); /* closed behind our back: forget it */
        errno = saved;
    }
    return tune_read_real()(fd, buf, n);
}

int close(int fd)
{
    tune_mark(fd, false); /* before: the number may be reused at once */
    return tune_close_real()(fd);
}

/* --- control -------------------------------------------------------------- */

void tcp_tune_enable(bool on)
{
    /* resolve now, not inside the first call of a session thread */
    tune_accept_real();
    tune_read_real();
    tune_close_real();
    atomic_store(&tune_on, on);
}

bool tcp_tune_enabled(void)
{
    return atomic_load(&tune_on);
}

bool tcp_tune_wanted(void)
{
    const char *v = getenv(TCP_TUNE_ENV_OFF);
    return v == NULL || v[0] == '\0' || strcmp(v, "0") == 0;
}

uint64_t tcp_tune_count(void)
{
    return atomic_load(&tune_tuned);
}
