/* auth_dkim.c: DKIM verification of inbound mail with libopendkim (RFC
 * 6376, RFC 8463 Ed25519, RFC 8301 algorithm and key size rules), behind
 * auth_dkim.h.  One DKIM_LIB for the daemon; a message gets one verifying
 * handle, fed the headers as the MTA passes them (the conventions of
 * dkim_sign.c), the end of the headers, the body chunks, and at the end
 * one result per signature read from libopendkim's DKIM_SIGINFO list.
 *
 * The cap (a thousand signatures cost what max_sigs cost): the prescreen
 * callback, which libopendkim calls from dkim_eoh() before any key is
 * fetched, marks the signatures past the first max_sigs (header order)
 * with dkim_sig_ignore(): libopendkim then neither fetches their keys nor
 * checks them.  It still parses each DKIM-Signature header it is given
 * and runs its header canonicalization (no public way around that), which
 * costs (names in h=) x (headers in the message) steps per signature:
 * 1,000 signatures of 2,000 h= names on 2,000 headers took 34 s of CPU.
 * So the DKIM-Signature headers past the first max_sigs + DV_SIG_SLACK
 * are not given to libopendkim at all, only counted as ignored (that case
 * now takes 0.09 s): no ordinary message has that many, and the one thing
 * lost is a signature that covers those DKIM-Signature headers
 * (h=dkim-signature, rare), which then fails.  What remains is the cost
 * of the verified signatures themselves: 5 signatures of 2,000 h= names
 * over 100,000 small headers take 5 s (libopendkim's header selection is
 * quadratic); bounding the number of headers is for the caller.
 *
 * Library settings and why:
 *   DKIM_LIBFLAGS_BADSIGHANDLES: a DKIM-Signature header that does not
 *       parse ("v=1; garbage") still gets a DKIM_SIGINFO, so it is
 *       reported (permerror) and counts against the cap in header order;
 *       it also keeps a message without a usable From: verifiable.
 *   l= (body length limits): verified as libopendkim does (RFC 6376 allows
 *       them), reported in dkimv_sig.partial_body, since the text past l=
 *       is not covered; a body shorter than l= fails.
 *   DKIM_OPTS_MINKEYBITS 1024 (RFC 8301): a smaller RSA key is permerror
 *       "key too small" (libopendkim's default, set so that it stays).
 *   rsa-sha1 (RFC 8301: must not be considered valid): such a signature
 *       within the cap is marked ignored in the prescreen (no key lookup)
 *       and reported neutral "rsa-sha1 not accepted".
 *   DKIM_OPTS_CLOCKDRIFT 300 s (libopendkim's default): tolerance for t=
 *       in the future and x= in the past.  DKIM_OPTS_SIGNATURETTL applies
 *       to signing only.
 *   No DKIM_LIBFLAGS_VERIFYONE (every signature within the cap is
 *   verified), no EOHCHECK, no STRICTHDRS (a message is never refused
 *   here), no FIXCRLF (the MTA's CRLF are hashed as they are), no CACHE
 *   (the key cache needs a Berkeley DB file; the local resolver caches).
 *
 * Results (dkim_sig_getflags, dkim_sig_getbh, dkim_sig_geterror):
 *   PASSED, body hash MATCH, error OK            pass
 *   BADSIG, body hash MISMATCH                   fail "body hash mismatch"
 *   BADSIG (the header signature)                fail "signature mismatch"
 *   TOOLARGE_L (body shorter than l=)            fail "body shorter than l="
 *   NOKEY (NXDOMAIN, no TXT record; in a key     permerror "no key"
 *          file: no line for the name)
 *   KEYFAIL (SERVFAIL, REFUSED, no answer within temperror "key query failed"
 *            the timeout; key file unreadable)
 *   DNSSYNTAX, KEYDECODE, KEYVERSION,            permerror "bad key record" ...
 *     KEYTYPEMISSING, MULTIREPLY
 *   KEYREVOKED (p= empty)                        permerror "key revoked"
 *   KEYTOOSMALL                                  permerror "key too small"
 *   KEYHASHMISMATCH, NOTEMAILKEY, SUBDOMAIN      permerror (the key forbids it)
 *   EXPIRED, FUTURE, TIMESTAMPS                  permerror "expired", ...
 *   VERSION, DOMAIN, MISSING_*, EMPTY_*,         permerror "bad signature header: ..."
 *     CORRUPT_*, INVALID_H, INVALID_L
 *   INVALID_A, INVALID_HC/BC, INVALID_Q/QO,      neutral (unknown algorithm,
 *     KEYTYPEUNKNOWN, KEYUNKNOWNHASH               canonicalization, method, key type)
 *   ignored within the cap (rsa-sha1)            neutral "rsa-sha1 not accepted"
 *   UNKNOWN (never processed)                    temperror "not verified"
 *   KEYFAIL or UNKNOWN, and s=._domainkey.d=     permerror "bad signature header: s=
 *     is no DNS name (too long: libopendkim's      and d= not a DNS name"
 *     NORESOURCE; an empty label: the query
 *     cannot be made)
 * DNSSEC (dkim_sig_getdnssec) is not used: the system resolver does not
 * validate.
 *
 * DNS: Debian's libopendkim 2.11 is built with neither libar nor
 * libunbound (it imports res_nquery, __res_ninit, __res_nclose); its
 * default resolver calls res_nquery() on one res_state made by
 * res_ninit() at the first lookup (lazily, without a lock) and shared by
 * every thread (concurrent use of one res_state is unsafe: its sockets
 * and query ids are shared), maps every failure of res_nquery() to
 * DKIM_STAT_KEYFAIL (glibc's res_nquery() returns -1 for NXDOMAIN and for
 * an answer without records, so "no key" is a temperror: seen in the
 * unit test's DNS namespace), and ignores DKIM_OPTS_TIMEOUT (the query
 * is synchronous; a dropped query took 10 s with DKIM_OPTS_TIMEOUT 2:
 * resolv.conf's default 5 s x 2 tries; RES_OPTIONS and resolv.conf's
 * options do apply).  So this file gives libopendkim its own query
 * functions (its documented dkim_dns_set_query_* hooks): each query gets
 * its own res_state (res_ninit(): resolv.conf, which glibc reads again
 * when the file changes, and RES_OPTIONS, read with it), the timeout
 * split over the name servers with one try each (glibc gives name server
 * i retrans << i / nscount seconds, so retrans = timeout / nscount sums
 * to the timeout), and res_nsend(), whose answer keeps its rcode: NOERROR
 * and NXDOMAIN go to libopendkim, which reads NXDOMAIN or no TXT record
 * as DKIM_STAT_NOKEY; any other rcode, a timeout or a network error is
 * DKIM_DNS_ERROR (DKIM_STAT_KEYFAIL).  A timeout of 0 leaves resolv.conf's
 * timeout and attempts as they are.
 *
 * Threads: libopendkim documents a DKIM_LIB as usable by several threads
 * at once (dkim_lib.html); it is configured here before it is shared and
 * only read afterwards; the query functions keep no shared state.  A
 * verifying handle is one message's.  dkim_init() calls res_init() (the
 * process-wide resolver state) once: the only process-wide side effect. */
#include "auth_dkim.h"

#include <arpa/nameser.h>
#include <limits.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <dkim.h>

#include "alloc.h"

#define DV_MIN_KEY_BITS 1024u             /* RFC 8301 */
#define DV_CLOCK_DRIFT 300u               /* seconds (libopendkim's default) */
#define DV_B_CHARS 8                      /* header.b (RFC 6008) */
#define DV_DNS_NAME_MAX 253               /* "s._domainkey.d" longer cannot be asked */
#define DV_QUERY_MAX (HFIXEDSZ + 2 * NS_MAXDNAME)
#define DV_SIG_SLACK 5u                   /* DKIM-Signature headers hashed past the cap */

struct dkimv_lib {
    DKIM_LIB *lib;
    unsigned max_sigs;
    unsigned timeout_s;        /* 0: the resolver's own */
};

struct dkimv {
    struct dkimv_lib *l;
    DKIM *dkim;
    char *job;                 /* libopendkim keeps the pointer, not a copy */
    struct buf line;           /* one header as libopendkim takes it */
    bool eoh_done, eom_done;
    bool unusable;             /* libopendkim refused the message: nothing more to feed */
    size_t n_sig_headers;      /* DKIM-Signature headers seen */
    size_t n_dropped;          /* of those, not given to libopendkim (past max_sigs + DV_SIG_SLACK) */
};

/* --- DNS ------------------------------------------------------------------ */

struct dv_query {
    size_t len;                /* bytes of the answer in libopendkim's buffer */
};

/* One try per name server, the timeout shared between them (see above). */
static void dv_res_timeout(res_state rs, unsigned timeout_s)
{
    if (timeout_s == 0)
        return;
    int ns = rs->nscount > 0 ? rs->nscount : 1;
    int t = (int)(timeout_s > INT_MAX ? INT_MAX : timeout_s) / ns;
    rs->retrans = t > 0 ? t : 1;
    rs->retry = 1;
}

/* An answer for libopendkim: RCODE (RFC 1035 4.1.1) NOERROR or NXDOMAIN,
 * read from the bytes (libopendkim's buffer has no alignment for a
 * HEADER).  A truncated one is refused by libopendkim (KEYFAIL); glibc
 * has already asked again over TCP. */
static bool dv_answer_usable(const unsigned char *ans, int len)
{
    if (len < HFIXEDSZ)
        return false;
    int rcode = ans[3] & 0x0f;
    return rcode == NOERROR || rcode == NXDOMAIN;
}

/* libopendkim's query start: synchronous, so the answer is complete when
 * this returns (libopendkim then calls waitreply and cancel). */
static int dv_dns_start(void *srv, int type, unsigned char *query, unsigned char *buf, size_t buflen, void **qh)
{
    const struct dkimv_lib *l = srv;
    struct __res_state rs;
    unsigned char q[DV_QUERY_MAX];
    int n, len = -1;
    memset(&rs, 0, sizeof rs);
    if (res_ninit(&rs) != 0) {
        res_nclose(&rs);
        return DKIM_DNS_ERROR;
    }
    dv_res_timeout(&rs, l->timeout_s);
    n = res_nmkquery(&rs, QUERY, (const char *)query, C_IN, type, NULL, 0, NULL, q, sizeof q);
    if (n > 0)
        len = res_nsend(&rs, q, n, buf, buflen > INT_MAX ? INT_MAX : (int)buflen);
    res_nclose(&rs);
    /* a timeout, an unreachable server, SERVFAIL, REFUSED, an answer
     * larger than the buffer: libopendkim's KEYFAIL (temperror) */
    if (len < 0 || (size_t)len > buflen || !dv_answer_usable(buf, len))
        return DKIM_DNS_ERROR;
    struct dv_query *rq = mem_alloc(sizeof *rq);
    rq->len = (size_t)len;
    *qh = rq;
    return DKIM_DNS_SUCCESS;
}

static int dv_dns_waitreply(void *srv, void *qh, struct timeval *to, size_t *bytes, int *error, int *dnssec)
{
    const struct dv_query *rq = qh;
    (void)srv;
    (void)to;
    if (bytes != NULL)
        *bytes = rq->len;
    if (error != NULL)
        *error = 0;
    if (dnssec != NULL)
        *dnssec = DKIM_DNSSEC_UNKNOWN;
    return DKIM_DNS_SUCCESS;
}

static int dv_dns_cancel(void *srv, void *qh)
{
    (void)srv;
    mem_free(qh);
    return 0;
}

/* --- the library handle --------------------------------------------------- */

/* The tag value of a signature ("" when absent). */
static const char *dv_tag(DKIM_SIGINFO *s, const char *tag)
{
    const unsigned char *v = dkim_sig_gettagvalue(s, false, (unsigned char *)(uintptr_t)tag);
    return v != NULL ? (const char *)v : "";
}

/* Before any key is fetched (from dkim_eoh()): the signatures past the
 * first max_sigs, and rsa-sha1 ones, are not verified. */
static DKIM_CBSTAT dv_prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
    const struct dkimv *v = dkim_get_user_context(dkim);
    for (int i = 0; i < nsigs; i++) {
        if (v == NULL || (unsigned)i >= v->l->max_sigs)
            dkim_sig_ignore(sigs[i]);
        else if (dkim_sig_geterror(sigs[i]) == DKIM_SIGERROR_UNKNOWN && strcasecmp(dv_tag(sigs[i], "a"), "rsa-sha1") == 0)
            dkim_sig_ignore(sigs[i]);
    }
    return DKIM_CBSTAT_CONTINUE;
}

static bool dv_setopt(DKIM_LIB *lib, int opt, void *value, size_t len, const char *what, struct buf *err)
{
    DKIM_STAT st = dkim_options(lib, DKIM_OP_SETOPT, opt, value, len);
    if (st == DKIM_STAT_OK)
        return true;
    buf_printf(err, "dkim: cannot set libopendkim's %s: %s", what, dkim_getresultstr(st));
    return false;
}

/* Keys from a file (DKIM_QUERY_FILE), checked as libopendkim stored it
 * (it truncates a long path silently). */
static bool dv_keyfile(DKIM_LIB *lib, const char *keyfile, struct buf *err)
{
    dkim_query_t qm = DKIM_QUERY_FILE;
    char back[PATH_MAX + 1];
    if (!dv_setopt(lib, DKIM_OPTS_QUERYMETHOD, &qm, sizeof qm, "query method", err) ||
        !dv_setopt(lib, DKIM_OPTS_QUERYINFO, (void *)(uintptr_t)keyfile, strlen(keyfile) + 1, "key file", err))
        return false;
    memset(back, 0, sizeof back);
    if (dkim_options(lib, DKIM_OP_GETOPT, DKIM_OPTS_QUERYINFO, back, sizeof back) != DKIM_STAT_OK ||
        strcmp(back, keyfile) != 0) {
        buf_printf(err, "dkim: key file path too long for libopendkim: %s", keyfile);
        return false;
    }
    return true;
}

static bool dv_configure(struct dkimv_lib *l, const char *keyfile, struct buf *err)
{
    DKIM_LIB *lib = l->lib;
    unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
    unsigned int timeout = l->timeout_s, minbits = DV_MIN_KEY_BITS;
    uint64_t drift = DV_CLOCK_DRIFT;
    if (!dv_setopt(lib, DKIM_OPTS_FLAGS, &flags, sizeof flags, "flags", err) ||
        !dv_setopt(lib, DKIM_OPTS_TIMEOUT, &timeout, sizeof timeout, "timeout", err) ||
        !dv_setopt(lib, DKIM_OPTS_MINKEYBITS, &minbits, sizeof minbits, "minimum key size", err) ||
        !dv_setopt(lib, DKIM_OPTS_CLOCKDRIFT, &drift, sizeof drift, "clock drift", err))
        return false;
    if (keyfile != NULL && !dv_keyfile(lib, keyfile, err))
        return false;
    DKIM_STAT st = dkim_set_prescreen(lib, dv_prescreen);
    if (st != DKIM_STAT_OK) {
        buf_printf(err, "dkim: cannot set libopendkim's prescreen: %s", dkim_getresultstr(st));
        return false;
    }
    /* the resolver (see the file comment): no lazy init, no close */
    dkim_dns_set_init(lib, NULL);
    dkim_dns_set_close(lib, NULL);
    (void)dkim_dns_set_query_service(lib, l);
    dkim_dns_set_query_start(lib, dv_dns_start);
    dkim_dns_set_query_waitreply(lib, dv_dns_waitreply);
    dkim_dns_set_query_cancel(lib, dv_dns_cancel);
    return true;
}

struct dkimv_lib *dkimv_lib_new(unsigned max_sigs, const char *keyfile, unsigned timeout_s, struct buf *err)
{
    if (max_sigs == 0) {
        buf_puts(err, "dkim: at least one signature must be verified (max_sigs 0)");
        return NULL;
    }
    struct dkimv_lib *l = mem_alloc(sizeof *l);
    l->max_sigs = max_sigs;
    l->timeout_s = timeout_s;
    l->lib = dkim_init(NULL, NULL);
    if (l->lib == NULL) {
        buf_puts(err, "dkim: cannot initialize libopendkim");
        mem_free(l);
        return NULL;
    }
    if (!dv_configure(l, keyfile, err)) {
        dkimv_lib_free(l);
        return NULL;
    }
    return l;
}

void dkimv_lib_free(struct dkimv_lib *l)
{
    if (l == NULL)
        return;
    dkim_close(l->lib);
    mem_free(l);
}

/* --- one message ---------------------------------------------------------- */

static void dv_fail(struct buf *err, const struct dkimv *v, const char *what, DKIM_STAT st)
{
    const char *msg = dkim_geterror(v->dkim);
    if (err != NULL)
        buf_printf(err, "dkim: %s: %s: %s", v->job, what, msg != NULL && msg[0] != '\0' ? msg : dkim_getresultstr(st));
}

struct dkimv *dkimv_begin(struct dkimv_lib *l, const char *job, struct buf *err)
{
    DKIM_STAT st = DKIM_STAT_OK;
    if (l == NULL)
        return NULL;
    struct dkimv *v = mem_alloc(sizeof *v);
    v->l = l;
    v->job = mem_strdup(job != NULL && job[0] != '\0' ? job : "-");
    buf_init(&v->line);
    v->dkim = dkim_verify(l->lib, (const unsigned char *)v->job, NULL, &st);
    if (v->dkim == NULL) {
        buf_printf(err, "dkim: %s: cannot start verifying: %s", v->job,
                   dkim_getresultstr(st != DKIM_STAT_OK ? st : DKIM_STAT_INTERNAL));
        dkimv_free(v);
        return NULL;
    }
    (void)dkim_set_user_context(v->dkim, v);
    return v;
}

/* A field name libopendkim takes (RFC 5322 ftext: printable ASCII but
 * the colon). */
static bool dv_name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        if (*p < 33 || *p > 126 || *p == ':')
            return false;
    return true;
}

/* "Name: value" as libopendkim takes it, in v->line: one space after the
 * colon unless the value starts with a blank or a fold (the MTA drops it
 * unless asked to keep it, SMFIP_HDR_LEADSPC), folds with CRLF, no line
 * end at the end. */
static void dv_line(struct dkimv *v, const char *name, const char *value)
{
    struct buf *b = &v->line;
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == '\r' || value[n - 1] == '\n'))
        n--;
    buf_reset(b);
    buf_puts(b, name);
    buf_putc(b, ':');
    if (n == 0 || (value[0] != ' ' && value[0] != '\t' && value[0] != '\r' && value[0] != '\n'))
        buf_putc(b, ' ');
    for (size_t i = 0; i < n; i++) {
        if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
            buf_putc(b, '\r');
        buf_putc(b, value[i]);
    }
}

bool dkimv_header(struct dkimv *v, const char *name, const char *value, struct buf *err)
{
    if (v == NULL || v->eoh_done || v->unusable)
        return true;
    /* a name libopendkim would refuse: the header is left out, as
     * libopendkim itself would (the message's fault, not an error) */
    if (!dv_name_ok(name))
        return true;
    if (strcasecmp(name, "DKIM-Signature") == 0 && ++v->n_sig_headers > v->l->max_sigs + DV_SIG_SLACK) {
        v->n_dropped++;
        return true;
    }
    dv_line(v, name, value != NULL ? value : "");
    DKIM_STAT st = dkim_header(v->dkim, (unsigned char *)v->line.data, v->line.len);
    /* SYNTAX: a DKIM-Signature that does not parse (kept as a broken
     * signature, BADSIGHANDLES) or a header libopendkim does not take */
    if (st == DKIM_STAT_OK || st == DKIM_STAT_SYNTAX)
        return true;
    char what[96];
    snprintf(what, sizeof what, "header %.64s", name);
    dv_fail(err, v, what, st);
    return false;
}

bool dkimv_eoh(struct dkimv *v, struct buf *err)
{
    if (v == NULL || v->eoh_done)
        return true;
    v->eoh_done = true;
    if (v->unusable)
        return true;
    DKIM_STAT st = dkim_eoh(v->dkim);
    switch (st) {
    case DKIM_STAT_OK:
    case DKIM_STAT_NOSIG:        /* nothing to verify (libopendkim skips the body) */
        return true;
    case DKIM_STAT_SYNTAX:       /* the message's: libopendkim gives it up */
    case DKIM_STAT_CANTVRFY:
        v->unusable = true;
        return true;
    case DKIM_STAT_NORESOURCE:   /* also a signature whose key name is too long:
                                    dkim_eom() processes the others */
        return true;
    default:
        v->unusable = true;
        dv_fail(err, v, "end of headers", st);
        return false;
    }
}

bool dkimv_body(struct dkimv *v, const unsigned char *data, size_t len, struct buf *err)
{
    if (v == NULL || len == 0 || v->unusable)
        return true;
    if (!v->eoh_done && !dkimv_eoh(v, err))
        return false;
    /* dkim_body() only reads the chunk; its prototype lacks the const */
    DKIM_STAT st = dkim_body(v->dkim, (unsigned char *)(uintptr_t)data, len);
    if (st == DKIM_STAT_OK)
        return true;
    v->unusable = true;
    dv_fail(err, v, "body", st);
    return false;
}

/* Copy a tag value, characters outside `allowed` (and not alphanumeric)
 * replaced by '?', at most max characters. */
static void dv_copy(char *out, size_t size, const char *value, const char *allowed, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0' && n + 1 < size && n < max; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  strchr(allowed, *p) != NULL;
        out[n++] = ok ? (char)*p : '?';
    }
    out[n] = '\0';
}

static void dv_set(struct dkimv_sig *out, enum dkimv_result r, const char *reason)
{
    out->result = r;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
}

/* A problem of the signature header itself: permerror with libopendkim's
 * words ("signature missing required tag d=" ...). */
static void dv_bad_header(struct dkimv_sig *out, int e)
{
    const char *s = dkim_sig_geterrorstr(e);
    out->result = DKIMV_PERMERROR;
    snprintf(out->reason, sizeof out->reason, "bad signature header: %s", s != NULL ? s : "unknown error");
}

/* "s._domainkey.d" cannot be asked: longer than a DNS name
 * (libopendkim gives up before asking), or an empty or too long label
 * (res_nmkquery() refuses it). */
static bool dv_key_name_bad(DKIM_SIGINFO *s)
{
    char name[2 * DV_DNS_NAME_MAX];
    int n = snprintf(name, sizeof name, "%s._domainkey.%s", dv_tag(s, "s"), dv_tag(s, "d"));
    if (n < 0 || (size_t)n >= sizeof name || n > DV_DNS_NAME_MAX + 1)
        return true;
    if (n > 0 && name[n - 1] == '.')
        name[--n] = '\0'; /* the root */
    if (n > DV_DNS_NAME_MAX)
        return true;
    for (const char *label = name;;) {
        const char *dot = strchr(label, '.');
        size_t len = dot != NULL ? (size_t)(dot - label) : strlen(label);
        if (len == 0 || len > 63)
            return true;
        if (dot == NULL)
            return false;
        label = dot + 1;
    }
}

/* The verdict of a signature libopendkim processed or refused (the table
 * in the file comment). */
static void dv_map_error(DKIM_SIGINFO *s, int e, struct dkimv_sig *out)
{
    switch (e) {
    case DKIM_SIGERROR_BADSIG:
        dv_set(out, DKIMV_FAIL, dkim_sig_getbh(s) == DKIM_SIGBH_MISMATCH ? "body hash mismatch" : "signature mismatch");
        break;
    case DKIM_SIGERROR_TOOLARGE_L:
        dv_set(out, DKIMV_FAIL, "body shorter than l=");
        break;
    case DKIM_SIGERROR_NOKEY:
        dv_set(out, DKIMV_PERMERROR, "no key");
        break;
    case DKIM_SIGERROR_KEYFAIL:
        if (dv_key_name_bad(s))
            dv_set(out, DKIMV_PERMERROR, "bad signature header: s= and d= not a DNS name");
        else
            dv_set(out, DKIMV_TEMPERROR, "key query failed");
        break;
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_KEYDECODE:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_KEYTYPEMISSING:
        dv_set(out, DKIMV_PERMERROR, "bad key record");
        break;
    case DKIM_SIGERROR_MULTIREPLY:
        dv_set(out, DKIMV_PERMERROR, "bad key record: several TXT records");
        break;
    case DKIM_SIGERROR_KEYREVOKED:
        dv_set(out, DKIMV_PERMERROR, "key revoked");
        break;
    case DKIM_SIGERROR_KEYTOOSMALL:
        dv_set(out, DKIMV_PERMERROR, "key too small");
        break;
    case DKIM_SIGERROR_KEYHASHMISMATCH:
        dv_set(out, DKIMV_PERMERROR, "key does not allow the signature's hash (h=)");
        break;
    case DKIM_SIGERROR_NOTEMAILKEY:
        dv_set(out, DKIMV_PERMERROR, "key not for e-mail (s=)");
        break;
    case DKIM_SIGERROR_SUBDOMAIN:
        dv_set(out, DKIMV_PERMERROR, "key does not allow a subdomain in i= (t=s)");
        break;
    case DKIM_SIGERROR_EXPIRED:
        dv_set(out, DKIMV_PERMERROR, "expired");
        break;
    case DKIM_SIGERROR_FUTURE:
        dv_set(out, DKIMV_PERMERROR, "timestamp in the future");
        break;
    case DKIM_SIGERROR_TIMESTAMPS:
        dv_set(out, DKIMV_PERMERROR, "expires before it was made (x= < t=)");
        break;
    case DKIM_SIGERROR_VERSION:
        dv_set(out, DKIMV_PERMERROR, "bad signature header: unsupported version");
        break;
    case DKIM_SIGERROR_DOMAIN:
        dv_set(out, DKIMV_PERMERROR, "bad signature header: i= not within d=");
        break;
    case DKIM_SIGERROR_INVALID_A:
        dv_set(out, DKIMV_NEUTRAL, "unknown algorithm");
        break;
    case DKIM_SIGERROR_INVALID_HC:
    case DKIM_SIGERROR_INVALID_BC:
        dv_set(out, DKIMV_NEUTRAL, "unknown canonicalization");
        break;
    case DKIM_SIGERROR_INVALID_Q:
    case DKIM_SIGERROR_INVALID_QO:
        dv_set(out, DKIMV_NEUTRAL, "unknown query method");
        break;
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
        dv_set(out, DKIMV_NEUTRAL, "unknown key type");
        break;
    case DKIM_SIGERROR_KEYUNKNOWNHASH:
        dv_set(out, DKIMV_NEUTRAL, "unknown hash in the key (h=)");
        break;
    case DKIM_SIGERROR_UNKNOWN:
        if (dv_key_name_bad(s))
            dv_set(out, DKIMV_PERMERROR, "bad signature header: s= and d= not a DNS name");
        else
            dv_set(out, DKIMV_TEMPERROR, "not verified");
        break;
    default:                     /* MISSING_*, EMPTY_*, CORRUPT_*, INVALID_H, INVALID_L, ... */
        dv_bad_header(out, e);
        break;
    }
}

static void dv_result(DKIM_SIGINFO *s, struct dkimv_sig *out)
{
    unsigned flags = dkim_sig_getflags(s);
    int e = dkim_sig_geterror(s);
    memset(out, 0, sizeof *out);
    dv_copy(out->domain, sizeof out->domain, dv_tag(s, "d"), ".-_", SIZE_MAX);
    dv_copy(out->selector, sizeof out->selector, dv_tag(s, "s"), ".-_", SIZE_MAX);
    dv_copy(out->algorithm, sizeof out->algorithm, dv_tag(s, "a"), "-", SIZE_MAX);
    dv_copy(out->b, sizeof out->b, dv_tag(s, "b"), "+/=", DV_B_CHARS);
    out->partial_body = dv_tag(s, "l")[0] != '\0';
    if ((flags & DKIM_SIGFLAG_IGNORE) != 0)
        dv_set(out, DKIMV_NEUTRAL, "rsa-sha1 not accepted");
    else if ((flags & DKIM_SIGFLAG_PASSED) != 0 && dkim_sig_getbh(s) == DKIM_SIGBH_MATCH && e == DKIM_SIGERROR_OK)
        dv_set(out, DKIMV_PASS, "");
    else
        dv_map_error(s, e, out);
}

void dkimv_end(struct dkimv *v, struct dkimv_sig *sigs, size_t max, size_t *n_sigs, size_t *n_ignored)
{
    DKIM_SIGINFO **list = NULL;
    int n = 0;
    size_t out = 0, cap;
    if (n_sigs != NULL)
        *n_sigs = 0;
    if (n_ignored != NULL)
        *n_ignored = 0;
    if (v == NULL)
        return;
    if (!v->eoh_done)
        (void)dkimv_eoh(v, NULL);
    if (!v->eom_done && !v->unusable)
        (void)dkim_eom(v->dkim, NULL); /* the verdicts are read per signature below */
    v->eom_done = true;
    if (dkim_getsiglist(v->dkim, &list, &n) != DKIM_STAT_OK || list == NULL || n < 0)
        n = 0;
    cap = (size_t)n < v->l->max_sigs ? (size_t)n : v->l->max_sigs;
    for (size_t i = 0; i < cap && out < max && sigs != NULL; i++)
        dv_result(list[i], &sigs[out++]);
    if (n_sigs != NULL)
        *n_sigs = out;
    if (n_ignored != NULL)
        *n_ignored = (size_t)n - cap + v->n_dropped;
}

void dkimv_free(struct dkimv *v)
{
    if (v == NULL)
        return;
    if (v->dkim != NULL)
        dkim_free(v->dkim);
    mem_free(v->job);
    buf_free(&v->line);
    mem_free(v);
}

const char *dkimv_result_name(enum dkimv_result r)
{
    switch (r) {
    case DKIMV_PASS:
        return "pass";
    case DKIMV_FAIL:
        return "fail";
    case DKIMV_NEUTRAL:
        return "neutral";
    case DKIMV_TEMPERROR:
        return "temperror";
    case DKIMV_PERMERROR:
        return "permerror";
    }
    return "permerror";
}
