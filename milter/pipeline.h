/* pipeline.h: postern-milter's message pipeline, independent of the
 * transport.  The libmilter adapter (adapter.c) calls one function per
 * milter stage; unit tests call the same functions with a recording
 * implementation of the actions (struct pl_actions) instead of libmilter.
 *
 * Two contexts, as OpenDKIM: a connection (client, HELO, SASL login,
 * several messages in a row) and a message (envelope, headers, body, the
 * signers fed as the body streams by).  Every stage returns what the MTA
 * should do next; anything but PL_CONTINUE ends the message (abort() is
 * then called by the MTA, or a new MAIL FROM comes).
 *
 * Failure: an internal error at any stage gives the configured on_error
 * answer (milter.on_error: tempfail by default, or accept), an audit
 * record and a log line, never an accept that drops what postern should
 * have done silently. */
#ifndef POSTERN_MILTER_PIPELINE_H
#define POSTERN_MILTER_PIPELINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authres.h"
#include "buf.h"
#include "cidr.h"
#include "scan.h"

struct rules;
struct dkim_keys;
struct pl_daemon;
struct inbound_cfg;
struct inbound_msg;
struct selfcheck;
struct pacer;
struct spool;
struct tenant;
struct account;

enum pl_status {
    PL_CONTINUE,               /* go on with the next stage */
    PL_ACCEPT,                 /* accept the message, skip the rest (nothing more to do) */
    PL_TEMPFAIL,               /* 4xx */
    PL_REJECT,                 /* 5xx */
};

/* What the pipeline asks of the MTA at end of message; implemented over
 * smfi_* by adapter.c and by a recorder in the unit tests.  Each returns
 * false when the MTA refused it. */
struct pl_actions {
    void *arg;
    /* insert a header at position idx (0: on top) */
    bool (*insheader)(void *arg, int idx, const char *name, const char *value);
    /* the SMTP reply of a tempfail or reject ("451", "4.7.1", text) */
    bool (*setreply)(void *arg, const char *rcode, const char *xcode, const char *text);
    /* change the idx-th (from 1) header called name; value NULL deletes it */
    bool (*chgheader)(void *arg, const char *name, int idx, const char *value);
    /* accept the message into the MTA's hold queue, with the reason */
    bool (*quarantine)(void *arg, const char *reason);
};

/* A macro the MTA gave ({auth_authen}, {i}, j, ...), NULL when unknown. */
typedef const char *(*pl_macro_fn)(void *arg, const char *name);

struct pl_header {
    char *name;
    char *value;               /* as received, folding kept */
};

/* Per connection. */
struct pl_conn {
    struct pl_daemon *daemon;
    char client_name[256];
    char client_ip[64];        /* "" when not an IP client (local submission) */
    char helo[256];
    uint64_t id;
    unsigned messages;         /* messages seen on this connection */
    struct pl_msg *msg;        /* the message in progress, or NULL */
};

/* Per message. */
struct pl_msg {
    struct rules *rules;       /* the snapshot when MAIL FROM came (a reference) */
    struct dkim_keys *keys;    /* the keys of that snapshot (a reference) */
    char *sender;              /* envelope sender without <>, "" for the null sender */
    char *sasl_login;          /* {auth_authen}, NULL when none */
    char *queue_id;            /* {i}, NULL until known */
    char **rcpts;
    size_t n_rcpts;
    struct pl_header *headers;
    size_t n_headers, cap_headers;
    const char *tenant;        /* the tenant submission's tenant, NULL when not one */
    const struct tenant *t;    /* its rules */
    const char *account;       /* its account name ("*" for the wildcard) */
    const struct account *a;   /* its account's rules */
    char who[264];             /* the account identity (login or sender for "*") */
    char *from_domain;         /* the From: domain when there is exactly one address */
    const char *sign_domain;   /* d= of the signatures: from_domain or a parent of it */
    const char *nosign;        /* why a tenant message is not signed, NULL while it may be */
    bool failed;               /* an internal error: the on_error answer at the latest at eom */
    char error[256];
    size_t header_bytes;
    struct dkim_signing *signing; /* DKIM signers fed with the message, NULL when not signing */
    struct inbound_msg *in;    /* the inbound checks of a message that is not a tenant submission, or NULL */
    /* a tenant submission's Authentication-Results headers that claim our
     * authserv-id (occurrences from 1), deleted at eom: inbound.c does the
     * same for inbound mail */
    struct authres_forged forged;
    /* scanning (scan.h): the plan, made at the first header once the
     * recipients are known; the message kept for the scanners; incoming
     * headers of the names we add (counted per name, removed at eom) */
    bool scan_planned;
    struct scan_plan scan;
    struct spool *spool;
    char spool_error[256];     /* the spool failed (a full disk): the scanners' on_failure */
    unsigned scan_forged[SCAN_OUR_HEADERS];
    uint64_t body_bytes;
    int64_t t0_us;
    bool quarantined;          /* put on hold (a scanner's verdict or its pace) */
};

struct audit_rec;

/* Daemon-wide state the pipeline reads: set up by main.c. */
struct pl_daemon {
    struct rules *(*rules_get)(void *arg);             /* a new reference to the current snapshot */
    struct dkim_keys *(*keys_get)(void *arg);          /* a new reference to the current keys (may be NULL) */
    /* journal one audit record before the answer (msink_write); false
     * with err set: the message gets the on_error answer */
    bool (*audit)(void *arg, const struct audit_rec *rec, struct buf *err);
    void *arg;
    enum pl_status on_error;   /* PL_TEMPFAIL or PL_ACCEPT */
    const struct inbound_cfg *inbound; /* the inbound checks (inbound.h); NULL: none */
    struct selfcheck *selfcheck; /* the outbound self-check of tenant mail (selfcheck.h); NULL: none */
    /* the scanners (scan.h, scanner.h): scan NULL, or no scanner in it, means no scanning */
    const struct scan_cfg *scan;
    struct scanner *clamd, *spamd;
    size_t scan_memory;        /* milter.scan_memory */
    const char *spool_dir;     /* milter.spool_dir, or the state directory */
    /* the send-rate buckets (pacer.h) of the tenants' `pace` rules, and
     * the hold schedule; NULL: no pacing */
    struct pacer *pacer;
    uint64_t max_delay_cap_ms; /* mode delay waits at most this (Postfix's milter timeout less a margin); 0: the rules' */
};

void pl_conn_init(struct pl_conn *c, struct pl_daemon *d, uint64_t id);
enum pl_status pl_connect(struct pl_conn *c, const char *hostname, const char *ip);
enum pl_status pl_helo(struct pl_conn *c, const char *helo);
/* MAIL FROM: a new message (any earlier one is aborted first). */
enum pl_status pl_envfrom(struct pl_conn *c, const char *sender, pl_macro_fn macro, void *marg);
enum pl_status pl_rcpt(struct pl_conn *c, const char *rcpt);
enum pl_status pl_header(struct pl_conn *c, const char *name, const char *value);
enum pl_status pl_eoh(struct pl_conn *c, pl_macro_fn macro, void *marg);
enum pl_status pl_body(struct pl_conn *c, const unsigned char *data, size_t len);
/* End of message: scan (scan.h: a tenant submission under its tenant's
 * rules, inbound mail under its recipients' tenants'), then sign (a
 * tenant submission) or check (inbound mail, see inbound.h: these checks
 * come first, so that mail they refuse is not scanned), change headers
 * through act, audit. */
enum pl_status pl_eom(struct pl_conn *c, const struct pl_actions *act, pl_macro_fn macro, void *marg);
/* The message ends without eom (RSET, a new MAIL FROM, the client left). */
void pl_abort(struct pl_conn *c);
void pl_close(struct pl_conn *c);

#endif
