/* adapter.c: postern-milter's libmilter callbacks (adapter.h), each a
 * call of the pipeline's function for that stage with the connection's
 * context.  What is done here is only what the transport requires:
 * negotiating the protocol, converting arguments (the client address, the
 * leading space of an inserted header, '%' in a reply text) and mapping
 * the pipeline's status to libmilter's.  Header values are passed as the
 * MTA sends them: with their leading space (SMFIP_HDR_LEADSPC) and, from
 * Postfix, bare-LF folds (dkim_sign.c writes them as CRLF for signing). */
#include "adapter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

/* The adapter whose pipeline the callbacks drive.  libmilter's callbacks
 * carry no argument of ours (smfi_register() takes a fixed table), so one
 * pointer must be reachable from them: written once by adapter_desc()
 * before smfi_main() starts any session thread, only read afterwards. */
static struct adapter *adapter_current;

/* What a session needs from the MTA: actions and protocol steps. */
#define ADAPTER_ACTIONS (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST)
#define ADAPTER_STEPS SMFIP_HDR_LEADSPC
/* Steps the milter does not use: the MTA need not send them (HELO is
 * used: SPF checks the HELO name of the null sender). */
#define ADAPTER_UNUSED_STEPS (SMFIP_NOUNKNOWN | SMFIP_NODATA)
/* Stages whose answer is always "continue" (the pipeline decides at end
 * of message): when the MTA allows it, they get no reply at all, which
 * saves one round trip per stage and per header (protocol 6). */
#define ADAPTER_NOREPLY \
    (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY)

/* Macros per stage (Postfix's names: "i" is the queue id). */
static const struct {
    int stage;
    const char *macros;
} adapter_macros[] = {
    { SMFIM_CONNECT, "j" },
    { SMFIM_ENVFROM, "{auth_authen} i" },
    { SMFIM_EOH, "i" },
    { SMFIM_EOM, "{auth_authen} i" },
};

/* Per connection, through smfi_setpriv. */
struct adapter_conn {
    struct pl_conn pc;
    struct adapter *a;
    SMFICTX *ctx;
    unsigned long noreply;     /* the SMFIP_NR_* steps negotiated */
};

/* --- libmilter, behind one wrapper each ------------------------------------ */

static void *mta_getpriv(SMFICTX *ctx)
{
    return smfi_getpriv(ctx);
}

static int mta_setpriv(SMFICTX *ctx, void *priv)
{
    return smfi_setpriv(ctx, priv);
}

static char *mta_getsymval(SMFICTX *ctx, char *name)
{
    return smfi_getsymval(ctx, name);
}

static int mta_insheader(SMFICTX *ctx, int idx, char *name, char *value)
{
    return smfi_insheader(ctx, idx, name, value);
}

static int mta_setreply(SMFICTX *ctx, char *rcode, char *xcode, char *message)
{
    return smfi_setreply(ctx, rcode, xcode, message);
}

static int mta_setsymlist(SMFICTX *ctx, int stage, char *macros)
{
    return smfi_setsymlist(ctx, stage, macros);
}

static int mta_chgheader(SMFICTX *ctx, char *name, int idx, char *value)
{
    return smfi_chgheader(ctx, name, idx, value);
}

static int mta_quarantine(SMFICTX *ctx, char *reason)
{
    return smfi_quarantine(ctx, reason);
}

const struct adapter_mta adapter_mta_libmilter = {
    mta_getpriv, mta_setpriv, mta_getsymval, mta_insheader, mta_setreply, mta_setsymlist, mta_chgheader,
    mta_quarantine,
};

/* --- connections ------------------------------------------------------------ */

/* A new connection's context, or NULL once the adapter is closed. */
static struct adapter_conn *conn_new(struct adapter *a, SMFICTX *ctx)
{
    pthread_mutex_lock(&a->mu);
    bool closed = a->closed;
    if (!closed)
        a->n_conns++;
    pthread_mutex_unlock(&a->mu);
    if (closed)
        return NULL;
    struct adapter_conn *c = mem_alloc(sizeof *c);
    c->a = a;
    c->ctx = ctx;
    pl_conn_init(&c->pc, a->daemon, atomic_fetch_add(&a->next_id, 1) + 1);
    a->mta->setpriv(ctx, c);
    return c;
}

/* The connection of ctx (created when the MTA skipped the negotiation,
 * e.g. a connection reused after SMFIC_QUIT_NC), NULL when closed. */
static struct adapter_conn *conn_of(SMFICTX *ctx)
{
    struct adapter *a = adapter_current;
    struct adapter_conn *c = a->mta->getpriv(ctx);
    if (c == NULL)
        return conn_new(a, ctx);
    c->ctx = ctx;
    return c;
}

static void conn_end(struct adapter_conn *c)
{
    struct adapter *a = c->a;
    pl_close(&c->pc);
    a->mta->setpriv(c->ctx, NULL);
    mem_free(c);
    pthread_mutex_lock(&a->mu);
    if (--a->n_conns == 0)
        pthread_cond_broadcast(&a->idle);
    pthread_mutex_unlock(&a->mu);
}

/* The answer of a stage that may have been negotiated without reply. */
static sfsistat status_reply(const struct adapter_conn *c, unsigned long nr_step, enum pl_status st);

static sfsistat status_map(enum pl_status st)
{
    switch (st) {
    case PL_CONTINUE: return SMFIS_CONTINUE;
    case PL_ACCEPT: return SMFIS_ACCEPT;
    case PL_TEMPFAIL: return SMFIS_TEMPFAIL;
    case PL_REJECT: return SMFIS_REJECT;
    }
    return SMFIS_TEMPFAIL;
}

/* --- conversions ------------------------------------------------------------ */

/* The text of b, b freed. */
static char *text_take(struct buf *b)
{
    char *s = buf_detach(b);
    buf_free(b); /* buf_detach leaves b initialised */
    return s;
}

/* A header we insert: SMFIP_HDR_LEADSPC was negotiated, so the MTA takes
 * the value as it is and no longer puts a space after the colon. */
static char *text_header_out(const char *s)
{
    struct buf b;
    buf_init(&b);
    if (*s != ' ' && *s != '\t')
        buf_putc(&b, ' ');
    buf_puts(&b, s);
    return text_take(&b);
}

/* libmilter reads a reply text as a format: '%' must be doubled. */
static char *text_reply(const char *s)
{
    struct buf b;
    buf_init(&b);
    for (const char *p = s; *p; p++) {
        if (*p == '%')
            buf_putc(&b, '%');
        buf_putc(&b, *p);
    }
    return text_take(&b);
}

/* The client's address as text, "" when it is not an IP client. */
static void addr_text(const struct sockaddr *sa, char *out, size_t size)
{
    out[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)size);
}

/* --- what the pipeline asks of the MTA -------------------------------------- */

static const char *act_macro(void *arg, const char *name)
{
    struct adapter_conn *c = arg;
    return c->a->mta->getsymval(c->ctx, (char *)name);
}

static bool act_insheader(void *arg, int idx, const char *name, const char *value)
{
    struct adapter_conn *c = arg;
    char *v = text_header_out(value);
    bool ok = c->a->mta->insheader(c->ctx, idx, (char *)name, v) == MI_SUCCESS;
    mem_free(v);
    return ok;
}

static bool act_chgheader(void *arg, const char *name, int idx, const char *value)
{
    struct adapter_conn *c = arg;
    char *v = value != NULL ? text_header_out(value) : NULL;
    bool ok = c->a->mta->chgheader(c->ctx, (char *)name, idx, v) == MI_SUCCESS;
    mem_free(v);
    return ok;
}

static bool act_quarantine(void *arg, const char *reason)
{
    struct adapter_conn *c = arg;
    char *r = text_reply(reason);
    bool ok = c->a->mta->quarantine(c->ctx, r) == MI_SUCCESS;
    mem_free(r);
    return ok;
}

static bool act_setreply(void *arg, const char *rcode, const char *xcode, const char *text)
{
    struct adapter_conn *c = arg;
    char *t = text_reply(text);
    bool ok = c->a->mta->setreply(c->ctx, (char *)rcode, (char *)xcode, t) == MI_SUCCESS;
    mem_free(t);
    return ok;
}

/* --- the callbacks ---------------------------------------------------------- */

static void negotiate_refuse(struct adapter *a, unsigned long f0, unsigned long f1)
{
    atomic_fetch_add(&a->n_refused, 1);
    log_msg(LOG_LVL_ERR, "milter_negotiate",
            "status=refused offered_actions=0x%lx offered_steps=0x%lx missing=\"%s%s%s%s%s\" "
            "note=\"the MTA must allow adding and changing headers, quarantine, macro lists and header values "
            "with their leading space (Postfix: milter_protocol = 6)\"",
            f0, f1, (f0 & SMFIF_ADDHDRS) ? "" : "add-headers ", (f0 & SMFIF_CHGHDRS) ? "" : "change-headers ",
            (f0 & SMFIF_QUARANTINE) ? "" : "quarantine ", (f0 & SMFIF_SETSYMLIST) ? "" : "macro-lists ",
            (f1 & SMFIP_HDR_LEADSPC) ? "" : "header-leading-space");
}

static sfsistat cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
                             unsigned long *pf3)
{
    struct adapter *a = adapter_current;
    (void)f2;
    (void)f3;
    if ((f0 & ADAPTER_ACTIONS) != ADAPTER_ACTIONS || (f1 & ADAPTER_STEPS) != ADAPTER_STEPS) {
        negotiate_refuse(a, f0, f1);
        return SMFIS_REJECT;
    }
    if (conn_of(ctx) == NULL)
        return SMFIS_REJECT; /* stopping */
    *pf0 = ADAPTER_ACTIONS;
    *pf1 = ADAPTER_STEPS | (f1 & (ADAPTER_UNUSED_STEPS | ADAPTER_NOREPLY));
    conn_of(ctx)->noreply = f1 & ADAPTER_NOREPLY;
    *pf2 = 0;
    *pf3 = 0;
    for (size_t i = 0; i < sizeof adapter_macros / sizeof adapter_macros[0]; i++)
        if (a->mta->setsymlist(ctx, adapter_macros[i].stage, (char *)adapter_macros[i].macros) != MI_SUCCESS)
            log_msg(LOG_LVL_WARN, "milter_negotiate", "stage=%d macros=\"%s\" note=\"macro list refused\"",
                    adapter_macros[i].stage, adapter_macros[i].macros);
    return SMFIS_CONTINUE;
}

static sfsistat status_reply(const struct adapter_conn *c, unsigned long nr_step, enum pl_status st)
{
    if (st == PL_CONTINUE && (c->noreply & nr_step))
        return SMFIS_NOREPLY;
    return status_map(st);
}

static sfsistat cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
    struct adapter_conn *c = conn_of(ctx);
    if (c == NULL)
        return SMFIS_TEMPFAIL;
    char ip[INET6_ADDRSTRLEN];
    addr_text(hostaddr, ip, sizeof ip);
    return status_reply(c, SMFIP_NR_CONN, pl_connect(&c->pc, hostname, ip));
}

static sfsistat cb_helo(SMFICTX *ctx, char *helo)
{
    struct adapter_conn *c = conn_of(ctx);
    return c == NULL ? SMFIS_TEMPFAIL : status_reply(c, SMFIP_NR_HELO, pl_helo(&c->pc, helo));
}

static sfsistat cb_envfrom(SMFICTX *ctx, char **argv)
{
    struct adapter_conn *c = conn_of(ctx);
    if (c == NULL)
        return SMFIS_TEMPFAIL;
    return status_reply(c, SMFIP_NR_MAIL, pl_envfrom(&c->pc, argv != NULL ? argv[0] : NULL, act_macro, c));
}

static sfsistat cb_envrcpt(SMFICTX *ctx, char **argv)
{
    struct adapter_conn *c = conn_of(ctx);
    if (c == NULL)
        return SMFIS_TEMPFAIL;
    return status_reply(c, SMFIP_NR_RCPT, pl_rcpt(&c->pc, argv != NULL && argv[0] != NULL ? argv[0] : ""));
}

static sfsistat cb_header(SMFICTX *ctx, char *name, char *value)
{
    struct adapter_conn *c = conn_of(ctx);
    if (c == NULL)
        return SMFIS_TEMPFAIL;
    return status_reply(c, SMFIP_NR_HDR, pl_header(&c->pc, name, value));
}

static sfsistat cb_eoh(SMFICTX *ctx)
{
    struct adapter_conn *c = conn_of(ctx);
    return c == NULL ? SMFIS_TEMPFAIL : status_reply(c, SMFIP_NR_EOH, pl_eoh(&c->pc, act_macro, c));
}

static sfsistat cb_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
    struct adapter_conn *c = conn_of(ctx);
    return c == NULL ? SMFIS_TEMPFAIL : status_reply(c, SMFIP_NR_BODY, pl_body(&c->pc, data, len));
}

static sfsistat cb_eom(SMFICTX *ctx)
{
    struct adapter_conn *c = conn_of(ctx);
    if (c == NULL)
        return SMFIS_TEMPFAIL;
    struct pl_actions act = { c, act_insheader, act_setreply, act_chgheader, act_quarantine };
    return status_map(pl_eom(&c->pc, &act, act_macro, c));
}

static sfsistat cb_abort(SMFICTX *ctx)
{
    struct adapter_conn *c = adapter_current->mta->getpriv(ctx);
    if (c != NULL)
        pl_abort(&c->pc);
    return SMFIS_CONTINUE;
}

static sfsistat cb_close(SMFICTX *ctx)
{
    struct adapter_conn *c = adapter_current->mta->getpriv(ctx);
    if (c != NULL) {
        c->ctx = ctx;
        conn_end(c);
    }
    return SMFIS_CONTINUE;
}

/* --- life cycle ------------------------------------------------------------- */

void adapter_init(struct adapter *a, struct pl_daemon *d, const struct adapter_mta *mta)
{
    memset(a, 0, sizeof *a);
    a->daemon = d;
    a->mta = mta != NULL ? mta : &adapter_mta_libmilter;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->idle, &ca);
    pthread_condattr_destroy(&ca);
}

struct smfiDesc adapter_desc(struct adapter *a, const char *name)
{
    adapter_current = a;
    struct smfiDesc desc;
    memset(&desc, 0, sizeof desc);
    desc.xxfi_name = (char *)name;
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = ADAPTER_ACTIONS;
    desc.xxfi_connect = cb_connect;
    desc.xxfi_helo = cb_helo;
    desc.xxfi_envfrom = cb_envfrom;
    desc.xxfi_envrcpt = cb_envrcpt;
    desc.xxfi_header = cb_header;
    desc.xxfi_eoh = cb_eoh;
    desc.xxfi_body = cb_body;
    desc.xxfi_eom = cb_eom;
    desc.xxfi_abort = cb_abort;
    desc.xxfi_close = cb_close;
    desc.xxfi_negotiate = cb_negotiate;
    return desc;
}

bool adapter_listen(struct adapter *a, const char *name, const char *conn, struct buf *err)
{
    char *spec = mem_strdup(conn); /* smfi_setconn() keeps the pointer */
    bool ok = false;
    if (smfi_register(adapter_desc(a, name)) != MI_SUCCESS) {
        buf_printf(err, "libmilter refused the filter description (smfi_register)");
    } else if (smfi_setconn(spec) != MI_SUCCESS) {
        buf_printf(err, "libmilter refused the socket %s (smfi_setconn)", conn);
    } else {
        errno = 0;
        ok = smfi_opensocket(true) == MI_SUCCESS;
        if (!ok)
            buf_printf(err, "cannot listen on %s: %s (libmilter's reason is in the mail log)", conn,
                       errno != 0 ? strerror(errno) : "failed");
    }
    if (ok)
        a->conn_spec = spec;
    else
        mem_free(spec);
    return ok;
}

bool adapter_run(struct adapter *a)
{
    (void)a;
    return smfi_main() == MI_SUCCESS;
}

size_t adapter_drain(struct adapter *a, int timeout_ms)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    a->closed = true;
    while (a->n_conns > 0)
        if (pthread_cond_timedwait(&a->idle, &a->mu, &end) == ETIMEDOUT)
            break;
    size_t left = a->n_conns;
    pthread_mutex_unlock(&a->mu);
    return left;
}

void adapter_free(struct adapter *a)
{
    mem_free(a->conn_spec);
    a->conn_spec = NULL;
    pthread_cond_destroy(&a->idle);
    pthread_mutex_destroy(&a->mu);
}
