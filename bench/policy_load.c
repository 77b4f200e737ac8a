/* policy_load.c: a load generator for Postfix SMTP access policy servers
 * (postern-policyd, or a peer such as postfwd2), speaking the policy
 * protocol like smtpd does: C connections, each in lockstep (one request,
 * wait for its "action=...\n\n" reply, then the next), N requests per
 * connection, over unix:/path or inet:LOOPBACK:PORT.  Prints one line:
 * connections, requests, seconds, requests/s, latency percentiles (per
 * request, CLOCK_MONOTONIC, exact: every latency is kept and sorted) and
 * how many replies of each kind came back, so that a misconfigured peer
 * shows at once.
 *
 * The workload: messages of 1-3 recipients, one RCPT request per recipient
 * then one END-OF-MESSAGE request (with the accepted recipient_count and
 * the size; no END-OF-MESSAGE when every recipient was refused, as smtpd
 * would not reach DATA).  Each request carries the whole attribute set of
 * Postfix 3.8 (3.7's plus compatibility_level and mail_version).
 *   - outbound (80%): a SASL login userK@tNNNNN.example (K in 1..ACCOUNTS,
 *     N in 0..TENANTS-1: the tenants of bench/gen-tenants.sh, whose files
 *     declare user1..user8; others fall to the tenant's "*" account) on
 *     port 587, to external recipients, ~4 KB.  Of these, --oversize-pct
 *     declare a 30 MB message (over the 25M limit) and --spoof-pct use the
 *     sender domain of another tenant (an IP binding violation);
 *   - inbound (20%): from 198.51.100.x on port 25, no SASL, an external
 *     sender, to userK@tNNNNN.example.
 *
 * Connections are served by one epoll loop per thread (--threads, default
 * 1), so that on a small machine the generator takes at most one core.
 * Only loopback addresses are accepted for inet: sockets.
 *
 * usage: policy_load --socket unix:/path|inet:127.0.0.1:PORT [-c CONNS]
 *        [-n REQUESTS_PER_CONN] [--tenants T] [--accounts A] [--seed S]
 *        [--timeout SECONDS] [--duration SECONDS] [--threads T]
 *        [--inbound-pct P] [--oversize-pct P] [--spoof-pct P] [--label TEXT]
 * --duration stops sending after that many seconds (the requests in flight
 * are answered and counted); --timeout gives up, and the exit status is 1,
 * as it is after any connection error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum kind { K_DUNNO, K_FILTER, K_4XX, K_5XX, K_OTHER, K_N };
static const char *const kind_name[K_N] = { "dunno", "filter", "4xx", "5xx", "other" };

struct options {
    const char *socket;
    long conns;
    long requests;               /* per connection */
    long tenants;
    long accounts;
    uint64_t seed;
    double timeout_s;
    double duration_s;           /* 0: until the requests are done */
    long threads;
    double inbound_pct, oversize_pct, spoof_pct;
    const char *label;
};

static struct options opt = {
    .socket = NULL, .conns = 8, .requests = 10000, .tenants = 10000, .accounts = 10, .seed = 1,
    .timeout_s = 120.0, .duration_s = 0, .threads = 1, .inbound_pct = 20.0, .oversize_pct = 0.5, .spoof_pct = 0.5,
    .label = NULL,
};

/* The endpoint, resolved once. */
static struct sockaddr_storage peer;
static socklen_t peer_len;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64, one generator per connection: enough for a workload mix. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

static bool rng_pct(uint64_t *s, double pct)
{
    return (double)(rng_next(s) % 1000000u) < pct * 10000.0;
}

/* One message being sent on a connection. */
struct message {
    bool active;
    bool inbound;
    int n_rcpt;                  /* recipients it will try */
    int next_rcpt;               /* index of the next RCPT request */
    int accepted;                /* recipients the server let through */
    bool eom_sent;
    unsigned long tenant, account;
    uint64_t size;
    char instance[48];
    char queue_id[16];
    char client_addr[48];
    char client_name[96];
    char helo[96];
    char sender[128];
    char login[128];
    char rcpt[3][128];
    char last_accepted[128];
};

struct conn {
    int fd;
    int id;
    uint64_t rng;
    struct message msg;
    char out[8192];
    size_t out_len, out_off;
    char in[4096];
    size_t in_len;
    bool last_was_rcpt;
    uint64_t sent_at;
    long done;
    bool finished;
    bool failed;
    uint64_t *lat;               /* ns, one per completed request */
    size_t lat_cap;
    uint64_t counts[K_N];
    uint64_t msg_seq;
};

struct worker {
    pthread_t tid;
    struct conn **conns;
    size_t n;
    uint64_t deadline;           /* --timeout: give up */
    uint64_t stop_at;            /* --duration: stop sending */
    bool timed_out;
    uint64_t errors;
};

/* One sample reply per non-DUNNO kind, shown on stderr. */
static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;
static char samples[K_N][256];

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("policy_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void parse_endpoint(const char *s)
{
    memset(&peer, 0, sizeof peer);
    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&peer;
        if (strlen(s + 5) == 0 || strlen(s + 5) >= sizeof un->sun_path)
            die("bad unix socket path: %s", s);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, s + 5);
        peer_len = sizeof *un;
        return;
    }
    if (strncmp(s, "inet:", 5) != 0)
        die("--socket must be unix:/path or inet:HOST:PORT, not %s", s);
    char host[128];
    const char *colon = strrchr(s + 5, ':');
    if (colon == NULL || (size_t)(colon - (s + 5)) >= sizeof host)
        die("bad inet endpoint: %s", s);
    memcpy(host, s + 5, (size_t)(colon - (s + 5)));
    host[colon - (s + 5)] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        die("bad port in %s", s);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *in4 = (struct sockaddr_in *)&peer;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&peer;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        /* loopback only: this tool never sends traffic elsewhere */
        if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
            die("refusing %s: only loopback (127.0.0.0/8, ::1) endpoints", host);
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        peer_len = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            die("refusing %s: only loopback (127.0.0.0/8, ::1) endpoints", host);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        peer_len = sizeof *in6;
    } else {
        die("inet host must be a numeric loopback address: %s", host);
    }
}

static int connect_peer(void)
{
    int fd = socket(peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&peer, peer_len) != 0)
        die("connect %s: %s", opt.socket, strerror(errno));
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        die("fcntl: %s", strerror(errno));
    return fd;
}

/* Start the next message of a connection. */
static void message_start(struct conn *c)
{
    struct message *m = &c->msg;
    uint64_t *r = &c->rng;
    memset(m, 0, sizeof *m);
    m->active = true;
    m->inbound = rng_pct(r, opt.inbound_pct);
    m->n_rcpt = 1 + (int)rng_below(r, 3);
    m->tenant = (unsigned long)rng_below(r, (uint64_t)opt.tenants);
    m->account = 1 + (unsigned long)rng_below(r, (uint64_t)opt.accounts);
    m->size = 3000 + rng_below(r, 3000);
    c->msg_seq++;
    /* Postfix: instance "%x.%lx.%lx.%x" (pid, arrival sec, usec, seqno),
     * queue IDs of 10 hex digits (short form) */
    unsigned pid = 1000u + (unsigned)c->id;
    snprintf(m->instance, sizeof m->instance, "%x.%lx.%lx.%x", pid, 0x67a0c000ul + (unsigned long)(c->msg_seq / 50),
             (unsigned long)rng_below(r, 1000000), (unsigned)(c->msg_seq & 0xffff));
    snprintf(m->queue_id, sizeof m->queue_id, "%010" PRIX64, (uint64_t)(rng_next(r) & 0xFFFFFFFFFFu));
    if (m->inbound) {
        unsigned host = 1 + (unsigned)rng_below(r, 254);
        snprintf(m->client_addr, sizeof m->client_addr, "198.51.100.%u", host);
        snprintf(m->client_name, sizeof m->client_name, "mail%u.ext%u.example.net", host, host % 37);
        snprintf(m->helo, sizeof m->helo, "mail%u.ext%u.example.net", host, host % 37);
        snprintf(m->sender, sizeof m->sender, "news%u@ext%u.example.net", (unsigned)rng_below(r, 1000), host % 37);
        for (int i = 0; i < m->n_rcpt; i++) {
            unsigned long t = i == 0 ? m->tenant : (unsigned long)rng_below(r, (uint64_t)opt.tenants);
            snprintf(m->rcpt[i], sizeof m->rcpt[i], "user%lu@t%05lu.example",
                     1 + (unsigned long)rng_below(r, (uint64_t)opt.accounts), t);
        }
    } else {
        /* a customer's own connection: home or office addresses */
        snprintf(m->client_addr, sizeof m->client_addr, "203.0.113.%u", 1 + (unsigned)rng_below(r, 254));
        snprintf(m->client_name, sizeof m->client_name, "unknown");
        snprintf(m->helo, sizeof m->helo, "[%s]", m->client_addr);
        snprintf(m->login, sizeof m->login, "user%lu@t%05lu.example", m->account, m->tenant);
        unsigned long sender_tenant = m->tenant;
        if (rng_pct(r, opt.spoof_pct) && opt.tenants > 1)
            sender_tenant = (m->tenant + 1 + (unsigned long)rng_below(r, (uint64_t)opt.tenants - 1)) %
                            (unsigned long)opt.tenants;
        snprintf(m->sender, sizeof m->sender, "user%lu@t%05lu.example", m->account, sender_tenant);
        if (rng_pct(r, opt.oversize_pct))
            m->size = 30u * 1024 * 1024;
        for (int i = 0; i < m->n_rcpt; i++)
            snprintf(m->rcpt[i], sizeof m->rcpt[i], "rcpt%u@dest%u.example.org", (unsigned)rng_below(r, 100000),
                     (unsigned)rng_below(r, 5000));
    }
}

#define ATTR(...)                                                                       \
    do {                                                                                \
        int k_ = snprintf(p, (size_t)(end - p), __VA_ARGS__);                          \
        if (k_ < 0 || k_ >= end - p)                                                   \
            die("request too long");                                                    \
        p += k_;                                                                        \
    } while (0)

/* Build the next request of c into c->out. */
static void request_next(struct conn *c)
{
    struct message *m = &c->msg;
    for (;;) {
        if (!m->active)
            message_start(c);
        if (m->next_rcpt < m->n_rcpt)
            break;
        if (m->accepted > 0 && !m->eom_sent)
            break;
        m->active = false;       /* done (or every recipient refused) */
    }
    bool rcpt = m->next_rcpt < m->n_rcpt;
    char *p = c->out, *end = c->out + sizeof c->out;
    const char *recipient = rcpt ? m->rcpt[m->next_rcpt] : (m->accepted == 1 ? m->last_accepted : "");
    ATTR("request=smtpd_access_policy\n");
    ATTR("protocol_state=%s\n", rcpt ? "RCPT" : "END-OF-MESSAGE");
    ATTR("protocol_name=ESMTP\n");
    ATTR("helo_name=%s\n", m->helo);
    ATTR("queue_id=%s\n", m->queue_id);
    ATTR("sender=%s\n", m->sender);
    ATTR("recipient=%s\n", recipient);
    ATTR("recipient_count=%d\n", rcpt ? 0 : m->accepted);
    ATTR("client_address=%s\n", m->client_addr);
    ATTR("client_name=%s\n", m->client_name);
    ATTR("client_port=%u\n", 32768u + (unsigned)(c->msg_seq * 7 % 28000));
    ATTR("reverse_client_name=%s\n", m->client_name);
    ATTR("instance=%s\n", m->instance);
    ATTR("sasl_method=%s\n", m->inbound ? "" : "PLAIN");
    ATTR("sasl_username=%s\n", m->login);
    ATTR("sasl_sender=\n");
    ATTR("size=%" PRIu64 "\n", m->size);
    ATTR("ccert_subject=\n");
    ATTR("ccert_issuer=\n");
    ATTR("ccert_fingerprint=\n");
    ATTR("ccert_pubkey_fingerprint=\n");
    ATTR("encryption_protocol=TLSv1.3\n");
    ATTR("encryption_cipher=TLS_AES_256_GCM_SHA384\n");
    ATTR("encryption_keysize=256\n");
    ATTR("etrn_domain=\n");
    ATTR("stress=\n");
    ATTR("policy_context=%s\n", m->inbound ? "" : "submission");
    ATTR("server_address=192.0.2.25\n");
    ATTR("server_port=%s\n", m->inbound ? "25" : "587");
    ATTR("compatibility_level=3.6\n");
    ATTR("mail_version=3.8.6\n");
    ATTR("\n");
    c->out_len = (size_t)(p - c->out);
    c->out_off = 0;
    c->last_was_rcpt = rcpt;
    if (rcpt)
        m->next_rcpt++;
    else
        m->eom_sent = true;
}

static enum kind classify(const char *a, size_t n)
{
    if (n >= 5 && strncasecmp(a, "DUNNO", 5) == 0)
        return K_DUNNO;
    if (n >= 6 && strncasecmp(a, "FILTER", 6) == 0)
        return K_FILTER;
    if ((n >= 1 && a[0] == '4') || (n >= 5 && strncasecmp(a, "DEFER", 5) == 0))
        return K_4XX;
    if ((n >= 1 && a[0] == '5') || (n >= 6 && strncasecmp(a, "REJECT", 6) == 0))
        return K_5XX;
    return K_OTHER;
}

static void sample(enum kind k, const char *a, size_t n)
{
    pthread_mutex_lock(&sample_lock);
    if (samples[k][0] == '\0')
        snprintf(samples[k], sizeof samples[k], "%.*s", (int)(n > 200 ? 200 : n), a);
    pthread_mutex_unlock(&sample_lock);
}

/* Send what is left of c->out.  False on a fatal error. */
static bool conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            fprintf(stderr, "policy_load: connection %d: send: %s\n", c->id, strerror(errno));
            return false;
        }
        c->out_off += (size_t)k;
    }
    return true;
}

static bool conn_send_next(struct conn *c, int ep)
{
    request_next(c);
    c->sent_at = now_ns();
    if (!conn_flush(c))
        return false;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (c->out_off < c->out_len) {
        ev.events |= EPOLLOUT;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return true;
}

/* Read what came; on a complete reply, record it.  Returns -1 on error,
 * 1 when a reply completed, 0 when more is needed. */
static int conn_read(struct conn *c)
{
    for (;;) {
        if (c->in_len == sizeof c->in) {
            fprintf(stderr, "policy_load: connection %d: reply over %zu bytes\n", c->id, sizeof c->in);
            return -1;
        }
        ssize_t k = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            fprintf(stderr, "policy_load: connection %d: recv: %s\n", c->id, strerror(errno));
            return -1;
        }
        if (k == 0) {
            fprintf(stderr, "policy_load: connection %d: closed by the server after %ld requests\n", c->id,
                    c->done);
            return -1;
        }
        c->in_len += (size_t)k;
        char *eor = memmem(c->in, c->in_len, "\n\n", 2);
        if (eor == NULL)
            continue;
        uint64_t t = now_ns();
        size_t used = (size_t)(eor - c->in) + 2;
        if (used != c->in_len) {
            fprintf(stderr, "policy_load: connection %d: bytes after the reply (not lockstep)\n", c->id);
            return -1;
        }
        if (c->in_len < 9 || strncmp(c->in, "action=", 7) != 0) {
            fprintf(stderr, "policy_load: connection %d: not a policy reply: %.*s\n", c->id,
                    (int)(c->in_len > 100 ? 100 : c->in_len), c->in);
            return -1;
        }
        const char *a = c->in + 7;
        size_t n = (size_t)(eor - a);
        enum kind kd = classify(a, n);
        c->counts[kd]++;
        if (kd != K_DUNNO)
            sample(kd, a, n);
        if (c->last_was_rcpt && kd != K_4XX && kd != K_5XX) {
            c->msg.accepted++;
            snprintf(c->msg.last_accepted, sizeof c->msg.last_accepted, "%s", c->msg.rcpt[c->msg.next_rcpt - 1]);
        }
        if ((size_t)c->done == c->lat_cap) {
            c->lat_cap = c->lat_cap ? 2 * c->lat_cap : 4096;
            c->lat = realloc(c->lat, sizeof *c->lat * c->lat_cap);
            if (c->lat == NULL)
                die("out of memory");
        }
        c->lat[c->done++] = t - c->sent_at;
        c->in_len = 0;
        return 1;
    }
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    size_t active = 0;
    for (size_t i = 0; i < w->n; i++) {
        struct conn *c = w->conns[i];
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
        if (opt.requests == 0) {
            c->finished = true;
            continue;
        }
        if (!conn_send_next(c, ep)) {
            c->failed = c->finished = true;
            w->errors++;
            continue;
        }
        active++;
    }
    struct epoll_event evs[64];
    while (active > 0) {
        uint64_t t = now_ns();
        if (t >= w->deadline) {
            w->timed_out = true;
            break;
        }
        int ms = (int)((w->deadline - t) / 1000000u) + 1;
        int k = epoll_wait(ep, evs, 64, ms);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->finished)
                continue;
            bool bad = false;
            if ((evs[i].events & EPOLLOUT) && c->out_off < c->out_len) {
                bad = !conn_flush(c);
                if (!bad && c->out_off == c->out_len) {
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!bad && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                int r = conn_read(c);
                if (r < 0)
                    bad = true;
                else if (r == 1) {
                    if (c->done >= opt.requests || now_ns() >= w->stop_at) {
                        c->finished = true;
                        active--;
                        continue;
                    }
                    bad = !conn_send_next(c, ep);
                }
            }
            if (bad) {
                c->failed = c->finished = true;
                w->errors++;
                active--;
            }
        }
    }
    close(ep);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t i = (size_t)(p / 100.0 * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1e6;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: policy_load --socket unix:/path|inet:127.0.0.1:PORT [-c CONNS] [-n REQUESTS_PER_CONN]\n"
            "       [--tenants T] [--accounts A] [--seed S] [--timeout SECONDS] [--duration SECONDS]\n"
            "       [--threads T] [--inbound-pct P] [--oversize-pct P] [--spoof-pct P] [--label TEXT]\n"
            "defaults: -c 8 -n 10000 --tenants 10000 --accounts 10 --seed 1 --timeout 120 --threads 1\n"
            "          --inbound-pct 20 --oversize-pct 0.5 --spoof-pct 0.5\n");
}

static long num_arg(const char *s, const char *what, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        die("%s: expected a whole number in [%ld, %ld], not %s", what, lo, hi, s);
    return v;
}

static double real_arg(const char *s, const char *what, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || !(v >= lo && v <= hi))
        die("%s: expected a number in [%g, %g], not %s", what, lo, hi, s);
    return v;
}

int main(int argc, char **argv)
{
    enum { O_SOCKET = 256, O_TENANTS, O_ACCOUNTS, O_SEED, O_TIMEOUT, O_DURATION, O_THREADS, O_INBOUND, O_OVERSIZE,
           O_SPOOF, O_LABEL };
    static const struct option lopts[] = {
        { "socket", required_argument, NULL, O_SOCKET },
        { "connections", required_argument, NULL, 'c' },
        { "requests", required_argument, NULL, 'n' },
        { "tenants", required_argument, NULL, O_TENANTS },
        { "accounts", required_argument, NULL, O_ACCOUNTS },
        { "seed", required_argument, NULL, O_SEED },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "duration", required_argument, NULL, O_DURATION },
        { "threads", required_argument, NULL, O_THREADS },
        { "inbound-pct", required_argument, NULL, O_INBOUND },
        { "oversize-pct", required_argument, NULL, O_OVERSIZE },
        { "spoof-pct", required_argument, NULL, O_SPOOF },
        { "label", required_argument, NULL, O_LABEL },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:n:h", lopts, NULL)) != -1) {
        switch (ch) {
        case O_SOCKET: opt.socket = optarg; break;
        case 'c': opt.conns = num_arg(optarg, "-c", 1, 10000); break;
        case 'n': opt.requests = num_arg(optarg, "-n", 0, 1000000000); break;
        case O_TENANTS: opt.tenants = num_arg(optarg, "--tenants", 1, 100000); break;
        case O_ACCOUNTS: opt.accounts = num_arg(optarg, "--accounts", 1, 1000000); break;
        case O_SEED: opt.seed = (uint64_t)num_arg(optarg, "--seed", 0, INT64_MAX); break;
        case O_TIMEOUT: opt.timeout_s = real_arg(optarg, "--timeout", 0.001, 86400.0); break;
        case O_DURATION: opt.duration_s = real_arg(optarg, "--duration", 0, 86400.0); break;
        case O_THREADS: opt.threads = num_arg(optarg, "--threads", 1, 256); break;
        case O_INBOUND: opt.inbound_pct = real_arg(optarg, "--inbound-pct", 0, 100); break;
        case O_OVERSIZE: opt.oversize_pct = real_arg(optarg, "--oversize-pct", 0, 100); break;
        case O_SPOOF: opt.spoof_pct = real_arg(optarg, "--spoof-pct", 0, 100); break;
        case O_LABEL: opt.label = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || opt.socket == NULL) {
        usage(stderr);
        return 2;
    }
    if (opt.threads > opt.conns)
        opt.threads = opt.conns;
    parse_endpoint(opt.socket);
    signal(SIGPIPE, SIG_IGN);

    uint64_t start_all = now_ns();
    uint64_t deadline = start_all + (uint64_t)(opt.timeout_s * 1e9);
    struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
    if (conns == NULL)
        die("out of memory");
    for (long i = 0; i < opt.conns; i++) {
        struct conn *c = &conns[i];
        c->id = (int)i;
        c->rng = opt.seed * 0x100000001B3ull + (uint64_t)i * 0x9E3779B97F4A7C15ull + 1;
        c->fd = connect_peer();
    }
    struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    if (ws == NULL)
        die("out of memory");
    for (long t = 0; t < opt.threads; t++) {
        ws[t].conns = calloc((size_t)opt.conns, sizeof *ws[t].conns);
        if (ws[t].conns == NULL)
            die("out of memory");
        ws[t].deadline = deadline;
    }
    for (long i = 0; i < opt.conns; i++) {
        struct worker *w = &ws[i % opt.threads];
        w->conns[w->n++] = &conns[i];
    }

    uint64_t t0 = now_ns();
    for (long t = 0; t < opt.threads; t++)
        ws[t].stop_at = opt.duration_s > 0 ? t0 + (uint64_t)(opt.duration_s * 1e9) : UINT64_MAX;
    for (long t = 0; t < opt.threads; t++)
        if (pthread_create(&ws[t].tid, NULL, worker_run, &ws[t]) != 0)
            die("pthread_create failed");
    bool timed_out = false;
    uint64_t errors = 0;
    for (long t = 0; t < opt.threads; t++) {
        pthread_join(ws[t].tid, NULL);
        timed_out |= ws[t].timed_out;
        errors += ws[t].errors;
    }
    uint64_t t1 = now_ns();

    size_t total = 0;
    uint64_t counts[K_N] = { 0 };
    for (long i = 0; i < opt.conns; i++) {
        total += (size_t)conns[i].done;
        for (int k = 0; k < K_N; k++)
            counts[k] += conns[i].counts[k];
    }
    uint64_t *all = malloc(sizeof *all * (total ? total : 1));
    if (all == NULL)
        die("out of memory");
    size_t j = 0;
    for (long i = 0; i < opt.conns; i++) {
        memcpy(all + j, conns[i].lat, sizeof *all * (size_t)conns[i].done);
        j += (size_t)conns[i].done;
        close(conns[i].fd);
    }
    qsort(all, total, sizeof *all, cmp_u64);
    double secs = (double)(t1 - t0) / 1e9;
    for (int k = 1; k < K_N; k++)
        if (samples[k][0])
            fprintf(stderr, "policy_load: sample %s reply: %s\n", kind_name[k], samples[k]);
    if (opt.label)
        printf("label=%s ", opt.label);
    printf("conns=%ld requests=%zu seconds=%.3f rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f", opt.conns,
           total, secs, secs > 0 ? (double)total / secs : 0.0, pct_ms(all, total, 50), pct_ms(all, total, 90),
           pct_ms(all, total, 99), total ? (double)all[total - 1] / 1e6 : 0.0);
    for (int k = 0; k < K_N; k++)
        printf(" %s=%" PRIu64, kind_name[k], counts[k]);
    printf(" errors=%" PRIu64 "%s\n", errors, timed_out ? " timeout=1" : "");
    fflush(stdout);
    for (long i = 0; i < opt.conns; i++)
        free(conns[i].lat);
    for (long t = 0; t < opt.threads; t++)
        free(ws[t].conns);
    free(ws);
    free(conns);
    free(all);
    return (errors || timed_out) ? 1 : 0;
}
