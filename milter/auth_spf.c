/* auth_spf.c: SPF checks (RFC 7208) with libspf2 1.2.10, as auth_spf.h
 * says: the glue that feeds libspf2 one identity at a time, keeps its
 * DNS work within the RFC's limits and turns its answer into a verdict.
 *
 * DNS layers.  The checker owns one libspf2 DNS layer: the resolv layer
 * (SPF_dns_resolv_new) for the daemon, or a zone layer (SPF_dns_zone_new)
 * for the unit tests.  Not libspf2's cache layer (SPF_DNS_CACHE): it is
 * thread-safe (one mutex around its hash chains), but the resolv layer
 * gives every answer a TTL of 0, so the cache keeps TXT records and every
 * DNS error, a timeout included, for its fixed 30 minutes (txt_ttl,
 * err_ttl): one lost packet would turn a domain's mail into temperror for
 * half an hour, and a changed record would be seen 30 minutes late.  A
 * caching resolver on the host (Postfix wants one anyway) caches by the
 * real TTLs.  The resolv layer keeps no state of its own: libspf2 gives
 * each thread its own resolver state (a pthread key; res_ninit() at the
 * thread's first lookup, res_nclose() when the thread ends) and calls
 * res_nquery() (no search list).  So /etc/resolv.conf and the RES_OPTIONS
 * and LOCALDOMAIN variables are read once per thread, at its first
 * lookup; a thread never sees a later change of either.
 *
 * The zone layer answers from its table only: a name it does not hold
 * answers HOST_NOT_FOUND (NXDOMAIN) for every type, as there is no layer
 * below it to fall through to.  Its first entry of the asked type (or of
 * type ANY) wins, so a TEMPFAIL or NXDOMAIN entry (type ANY) only covers
 * the types the name has no earlier record of.
 *
 * One check.  Each identity gets a short-lived SPF_server_t (a few
 * microseconds to make) over a per-check accounting layer that passes
 * lookups down to the checker's layer.  libspf2 1.2.10 does not enforce
 * RFC 7208 4.6.4 itself: it counts the DNS-querying terms of each record
 * separately (each include: starts again from 0, so a tree of includes
 * can make thousands of queries), lets an 11th term of a record run when
 * nothing follows it, and has no void-lookup limit.  The accounting layer
 * counts for the whole check: a term is a lookup of MX, PTR, TXT (except
 * the first, the identity's own record) or an address that is not one of
 * the names of the MX or PTR answer just before it (those belong to the
 * mx or ptr term that asked).  The 11th term is not sent, nor is anything
 * after it, and the answer to a 3rd void term (NXDOMAIN or no records) is
 * withheld: libspf2 gets "try again", stops, and the check ends in
 * permerror.  That also bounds a check to 111 queries (the record, 10
 * terms, 10 names for each).  The layer cannot tell the PTR lookup of a
 * %{p} macro from a ptr term and counts it as one; a record that mixes
 * mx with an early match in an include and an a: of the same host may be
 * undercounted by that one name.
 *
 * libspf2's own entry point, SPF_request_query_mailfrom(), gives any
 * loopback client (127/8, ::1) a "pass" before looking at DNS; RFC 7208
 * has no such rule, and postern's lab sends its test mail from loopback
 * addresses, so spf_query() below does what that function does minus the
 * shortcut, with the same public functions.  The explanation (exp=) of a
 * failing domain is not fetched (the accounting layer answers libspf2's
 * get_exp hook with an empty text): it is meant for SMTP replies, costs
 * one more query the RFC does not count, and the reason of a verdict is
 * libspf2's own comment ("domain of X does not designate IP as permitted
 * sender") or the error that decided a permerror or temperror.
 *
 * Messages.  libspf2 reports through four process-wide handlers that print
 * to stdout or stderr by default (some debug lines even without debug
 * mode, e.g. an unexpected record type in an answer).  The first
 * spf_checker_new() routes warnings, information and debug lines to
 * postern's log at debug level, and libspf2's fatal errors (which abort:
 * out of memory, res_ninit() failing) to an error line before the abort.
 * That setting is global to the process, done once (pthread_once), which
 * is why it lives in the constructor.
 *
 * Threads.  A checker is shared by every libmilter thread: checks only
 * read it.  Each check has its own server, request, response and
 * accounting layer; the resolv layer keeps its resolver state per thread
 * and the zone layer is only read by lookups (it must be filled before
 * the checker is shared).  libspf2's only other mutable globals are the
 * handlers above. */
#include "auth_spf.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_resolv.h>
#include <spf2/spf_dns_zone.h>

#include "alloc.h"
#include "log.h"

#define SPF_TERMS_MAX 10        /* RFC 7208 4.6.4: DNS-querying terms of one check */
#define SPF_VOIDS_MAX 2         /* RFC 7208 4.6.4: void lookups, the recommended default */
#define SPF_NAMES_MAX 10        /* MX or PTR names libspf2 follows for one term */
#define SPF_DOMAIN_MAX 253      /* a domain name in text form, without the final dot */
#define SPF_LABEL_MAX 63
#define SPF_HELO_MACRO_MAX 255  /* the HELO argument given to libspf2 for %{h} */

struct spf_checker {
    SPF_dns_server_t *dns;     /* libspf2's resolv layer, or the zone */
    bool zone;
    char **any_names;          /* zone: names given a TEMPFAIL or NXDOMAIN entry */
    size_t n_any, cap_any;
};

/* --- libspf2's message handlers -------------------------------------- */

static pthread_once_t spf_handlers_once = PTHREAD_ONCE_INIT;

static void spf_log_line(enum log_level l, const char *event, const char *file, int line, const char *msg)
{
    struct buf kv;
    buf_init(&kv);
    buf_kv(&kv, "file", file);
    buf_kvf(&kv, "line", "%d", line);
    buf_kv(&kv, "message", msg);
    log_event(l, event, &kv);
    buf_free(&kv);
}

__attribute__((noreturn)) static void spf_on_fatal(const char *file, int line, const char *msg)
{
    spf_log_line(LOG_LVL_ERR, "libspf2_fatal", file, line, msg);
    abort();
}

static void spf_on_message(const char *file, int line, const char *msg)
{
    if (log_enabled(LOG_LVL_DEBUG))
        spf_log_line(LOG_LVL_DEBUG, "libspf2", file, line, msg);
}

static void spf_handlers_set(void)
{
    SPF_error_handler = spf_on_fatal;
    SPF_warning_handler = spf_on_message;
    SPF_info_handler = spf_on_message;
    SPF_debug_handler = spf_on_message;
}

/* --- the checker and its zone ------------------------------------------ */

struct spf_checker *spf_checker_new(bool zone, struct buf *err)
{
    pthread_once(&spf_handlers_once, spf_handlers_set);
    SPF_dns_server_t *dns = zone ? SPF_dns_zone_new(NULL, "zone", 0) : SPF_dns_resolv_new(NULL, "resolv", 0);
    if (dns == NULL) {
        if (err != NULL)
            buf_printf(err, "libspf2: cannot create its %s DNS layer", zone ? "zone" : "resolver");
        return NULL;
    }
    struct spf_checker *c = mem_alloc(sizeof *c);
    c->dns = dns;
    c->zone = zone;
    return c;
}

void spf_checker_free(struct spf_checker *c)
{
    if (c == NULL)
        return;
    SPF_dns_free(c->dns);
    for (size_t i = 0; i < c->n_any; i++)
        mem_free(c->any_names[i]);
    mem_free(c->any_names);
    mem_free(c);
}

static bool spf_zone_type(const char *type, ns_type *out)
{
    static const struct {
        const char *name;
        ns_type type;
    } types[] = { { "TXT", ns_t_txt }, { "A", ns_t_a }, { "AAAA", ns_t_aaaa }, { "MX", ns_t_mx } };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(type, types[i].name) == 0) {
            *out = types[i].type;
            return true;
        }
    return false;
}

/* libspf2 aborts when a name gets a second entry of type ANY: refuse it. */
static bool spf_zone_add_any(struct spf_checker *c, const char *name, SPF_dns_stat_t herrno)
{
    for (size_t i = 0; i < c->n_any; i++)
        if (strcasecmp(c->any_names[i], name) == 0)
            return false;
    if (SPF_dns_zone_add_str(c->dns, name, ns_t_any, herrno, NULL) != SPF_E_SUCCESS)
        return false;
    if (c->n_any == c->cap_any) {
        c->cap_any = c->cap_any ? c->cap_any * 2 : 8;
        c->any_names = mem_grow(c->any_names, c->cap_any, sizeof *c->any_names);
    }
    c->any_names[c->n_any++] = mem_strdup(name);
    return true;
}

/* Whether data is valid for the type (libspf2 would keep an empty record
 * of a bad address); an MX without a preference gets one, since libspf2
 * strips leading digits as the preference. */
static bool spf_zone_data(ns_type type, const char *data, struct buf *out)
{
    unsigned char addr[sizeof(struct in6_addr)];
    const char *p = data;
    switch (type) {
    case ns_t_a:
    case ns_t_aaaa:
        if (inet_pton(type == ns_t_a ? AF_INET : AF_INET6, data, addr) != 1)
            return false;
        buf_puts(out, data);
        return true;
    case ns_t_mx:
        while (isdigit((unsigned char)*p))
            p++;
        if (p == data || !isspace((unsigned char)*p))
            buf_puts(out, "0 ");
        buf_puts(out, data);
        for (p = out->data; isdigit((unsigned char)*p) || isspace((unsigned char)*p); p++)
            ;
        return *p != '\0';
    default:
        buf_puts(out, data);
        return true;
    }
}

bool spf_zone_add(struct spf_checker *c, const char *name, const char *type, const char *data)
{
    ns_type t;
    if (c == NULL || !c->zone || name == NULL || *name == '\0' || type == NULL)
        return false;
    if (strcasecmp(type, "TEMPFAIL") == 0)
        return spf_zone_add_any(c, name, TRY_AGAIN);
    if (!spf_zone_type(type, &t))
        return false;
    if (data == NULL)
        return spf_zone_add_any(c, name, HOST_NOT_FOUND);
    struct buf d;
    buf_init(&d);
    bool ok = spf_zone_data(t, data, &d) &&
              SPF_dns_zone_add_str(c->dns, name, t, NETDB_SUCCESS, d.data) == SPF_E_SUCCESS;
    buf_free(&d);
    return ok;
}

/* --- the accounting layer of one check ------------------------------------ */

enum spf_over { SPF_OVER_NONE, SPF_OVER_TERMS, SPF_OVER_VOIDS };

struct spf_eval {
    SPF_dns_server_t layer;    /* what libspf2 calls; hook points back here */
    SPF_dns_server_t *below;   /* the checker's layer */
    int terms, voids;
    bool seen_record;          /* the identity's own TXT lookup is done */
    enum spf_over over;
    char *names[SPF_NAMES_MAX]; /* names of the last MX or PTR answer not yet looked up */
    size_t n_names;
};

static void spf_eval_forget(struct spf_eval *ev)
{
    for (size_t i = 0; i < ev->n_names; i++)
        mem_free(ev->names[i]);
    ev->n_names = 0;
}

static void spf_eval_remember(struct spf_eval *ev, const SPF_dns_rr_t *rr)
{
    spf_eval_forget(ev);
    if (rr->herrno != NETDB_SUCCESS || (rr->rr_type != ns_t_mx && rr->rr_type != ns_t_ptr))
        return;
    for (int i = 0; i < rr->num_rr && ev->n_names < SPF_NAMES_MAX; i++)
        ev->names[ev->n_names++] = mem_strdup(rr->rr_type == ns_t_mx ? rr->rr[i]->mx : rr->rr[i]->ptr);
}

/* An address lookup of a name from the last MX or PTR answer: part of
 * the term that asked for that answer. */
static bool spf_eval_take_name(struct spf_eval *ev, const char *domain)
{
    for (size_t i = 0; i < ev->n_names; i++)
        if (strcasecmp(ev->names[i], domain) == 0) {
            mem_free(ev->names[i]);
            ev->names[i] = ev->names[--ev->n_names];
            return true;
        }
    return false;
}

static bool spf_eval_is_term(struct spf_eval *ev, const char *domain, ns_type type)
{
    switch (type) {
    case ns_t_txt:
        if (!ev->seen_record) {
            ev->seen_record = true;
            return false;
        }
        spf_eval_forget(ev);
        return true;
    case ns_t_a:
    case ns_t_aaaa:
        return !spf_eval_take_name(ev, domain);
    default:
        return true;
    }
}

static bool spf_rr_void(const SPF_dns_rr_t *rr)
{
    return rr->herrno == HOST_NOT_FOUND || rr->herrno == NO_DATA || (rr->herrno == NETDB_SUCCESS && rr->num_rr == 0);
}

static SPF_dns_rr_t *spf_eval_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type, int should_cache)
{
    struct spf_eval *ev = layer->hook;
    if (ev->over != SPF_OVER_NONE)
        return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
    bool term = spf_eval_is_term(ev, domain, type);
    if (term && ev->terms == SPF_TERMS_MAX) {
        ev->over = SPF_OVER_TERMS;
        return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
    }
    ev->terms += term;
    SPF_dns_rr_t *rr = SPF_dns_lookup(ev->below, domain, type, should_cache);
    if (term && (type == ns_t_mx || type == ns_t_ptr))
        spf_eval_remember(ev, rr);
    if (term && spf_rr_void(rr) && ++ev->voids > SPF_VOIDS_MAX) {
        SPF_dns_rr_free(rr);
        ev->over = SPF_OVER_VOIDS;
        return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
    }
    return rr;
}

/* libspf2's hook for the text of an exp= modifier: none is fetched. */
static SPF_errcode_t spf_eval_get_exp(SPF_server_t *server, const char *domain, char **bufp, size_t *lenp)
{
    (void)server;
    (void)domain;
    if (*bufp != NULL && *lenp > 0)
        (*bufp)[0] = '\0';
    return SPF_E_SUCCESS;
}

static void spf_eval_init(struct spf_eval *ev, struct spf_checker *c)
{
    memset(ev, 0, sizeof *ev);
    ev->below = c->dns;
    ev->layer.lookup = spf_eval_lookup;
    ev->layer.get_exp = spf_eval_get_exp;
    ev->layer.name = "postern-limits";
    ev->layer.hook = ev;
    /* destroy stays NULL: SPF_server_free() leaves the layer to us */
}

/* --- identities ------------------------------------------------------------ */

struct spf_addr {
    int family;
    struct in_addr v4;
    struct in6_addr v6;
};

/* The client's address; an IPv4-mapped IPv6 address is the IPv4 one. */
static bool spf_addr_parse(const char *ip, struct spf_addr *a)
{
    if (ip == NULL)
        return false;
    if (inet_pton(AF_INET, ip, &a->v4) == 1) {
        a->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, ip, &a->v6) != 1)
        return false;
    a->family = AF_INET6;
    if (IN6_IS_ADDR_V4MAPPED(&a->v6)) {
        a->family = AF_INET;
        memcpy(&a->v4, &a->v6.s6_addr[12], sizeof a->v4);
    }
    return true;
}

/* Letters, digits, '-' (not first or last, RFC 5321) and '_' (found in
 * DNS names), 1 to 63 of them; ASCII whatever the locale. */
static bool spf_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > SPF_LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') && ch != '-' &&
            ch != '_')
            return false;
    }
    return true;
}

static bool spf_all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* A domain name as RFC 7208 4.3 wants one: well-formed labels, at least
 * two, the last not all digits ("1.2.3.4" is an address).  Lower-cased
 * into out without a final dot; n: the length of s. */
static bool spf_domain_norm(const char *s, size_t n, char out[SPF_DOMAIN_MAX + 1])
{
    if (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0 || n > SPF_DOMAIN_MAX)
        return false;
    size_t start = 0, last = 0, labels = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        if (!spf_label_ok(s + start, i - start))
            return false;
        labels++;
        last = start;
        start = i + 1;
    }
    if (labels < 2 || spf_all_digits(s + last, n - last))
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    out[n] = '\0';
    return true;
}

/* Printable ASCII only: a reason goes into logs and header comments. */
static void spf_text_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src != NULL && src[i] != '\0' && i + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[i] = '\0';
}

static void spf_verdict_set(struct spf_verdict *v, enum spf_result r, const char *domain, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void spf_verdict_set(struct spf_verdict *v, enum spf_result r, const char *domain, const char *fmt, ...)
{
    char reason[sizeof v->reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    v->result = r;
    spf_text_copy(v->domain, sizeof v->domain, domain);
    spf_text_copy(v->reason, sizeof v->reason, reason);
}

/* --- one check_host() -------------------------------------------------------- */

/* SPF_request_query_mailfrom() without its pass for loopback clients. */
static SPF_errcode_t spf_query(SPF_server_t *server, SPF_request_t *req, SPF_response_t **out)
{
    SPF_response_t *resp = SPF_response_new(req);
    SPF_record_t *record = NULL;
    *out = resp;
    if (resp == NULL)
        return SPF_E_NO_MEMORY;
    req->cur_dom = req->env_from_dp;
    SPF_errcode_t err = SPF_server_get_record(server, req, resp, &record);
    if (err != SPF_E_SUCCESS) {
        if (record != NULL)
            SPF_record_free(record);
        return err;
    }
    resp->spf_record_exp = record;
    err = SPF_record_interpret(record, req, resp, 0);
    SPF_record_free(record);
    resp->spf_record_exp = NULL;
    return err;
}

/* The first error libspf2 recorded (warnings skipped), or NULL. */
static SPF_error_t *spf_first_error(SPF_response_t *resp, bool other_than_not_spf)
{
    for (int i = 0; i < SPF_response_messages(resp); i++) {
        SPF_error_t *e = SPF_response_message(resp, i);
        if (SPF_error_errorp(e) && (!other_than_not_spf || SPF_error_code(e) != SPF_E_NOT_SPF))
            return e;
    }
    return NULL;
}

/* libspf2 leaves the result unset (SPF_RESULT_INVALID) when the record
 * itself cannot be had: no SPF record among the TXT records (none), a
 * record that does not compile (permerror), a DNS failure (temperror). */
static enum spf_result spf_result_of(SPF_response_t *resp, SPF_errcode_t err)
{
    switch (SPF_response_result(resp)) {
    case SPF_RESULT_NEUTRAL:
        return SPF_NEUTRAL;
    case SPF_RESULT_PASS:
        return SPF_PASS;
    case SPF_RESULT_FAIL:
        return SPF_FAIL;
    case SPF_RESULT_SOFTFAIL:
        return SPF_SOFTFAIL;
    case SPF_RESULT_NONE:
        return SPF_NONE;
    case SPF_RESULT_TEMPERROR:
        return SPF_TEMPERROR;
    case SPF_RESULT_PERMERROR:
        return SPF_PERMERROR;
    case SPF_RESULT_INVALID:
    default:
        break;
    }
    if (err == SPF_E_DNS_ERROR || err == SPF_E_NO_MEMORY)
        return SPF_TEMPERROR;
    if (err == SPF_E_NOT_SPF && spf_first_error(resp, true) == NULL)
        return SPF_NONE;
    return SPF_PERMERROR;
}

/* libspf2's comment on the result, without its "receiver: " prefix. */
static const char *spf_comment(SPF_request_t *req, SPF_response_t *resp)
{
    const char *hc = SPF_response_get_header_comment(resp);
    const char *rec = SPF_request_get_rec_dom(req);
    size_t n = rec != NULL ? strlen(rec) : 0;
    if (hc != NULL && n > 0 && strncmp(hc, rec, n) == 0 && hc[n] == ':' && hc[n + 1] == ' ')
        hc += n + 2;
    return hc != NULL && *hc != '\0' ? hc : NULL;
}

static const char *spf_reason_of(SPF_request_t *req, SPF_response_t *resp, SPF_errcode_t err, enum spf_result r)
{
    SPF_error_t *e = spf_first_error(resp, false);
    const char *first = e != NULL ? SPF_error_message(e) : NULL;
    const char *comment = spf_comment(req, resp);
    bool error = r == SPF_PERMERROR || r == SPF_TEMPERROR;
    const char *why = error ? (first ? first : comment) : (comment ? comment : first);
    if (why == NULL && err != SPF_E_SUCCESS)
        why = SPF_strerror(err);
    return why != NULL ? why : "";
}

/* False when libspf2 runs out of memory. */
static bool spf_request_setup(SPF_request_t *req, const struct spf_addr *a, const char *helo, const char *sender)
{
    if (a->family == AF_INET)
        SPF_request_set_ipv4(req, a->v4);
    else
        SPF_request_set_ipv6(req, a->v6);
    /* the sender first: a HELO set without one becomes postmaster@HELO */
    if (sender != NULL && SPF_request_set_env_from(req, sender) != SPF_E_SUCCESS)
        return false;
    return SPF_request_set_helo_dom(req, helo) == SPF_E_SUCCESS && req->env_from_dp != NULL;
}

/* The verdict of a finished check: a limit the accounting layer hit
 * decides it, else libspf2's answer. */
static void spf_verdict_decide(struct spf_verdict *out, const char *domain, const struct spf_eval *ev,
                               SPF_request_t *req, SPF_response_t *resp, SPF_errcode_t err)
{
    if (ev->over == SPF_OVER_TERMS) {
        spf_verdict_set(out, SPF_PERMERROR, domain, "too many DNS lookups (more than %d DNS-querying terms)",
                        SPF_TERMS_MAX);
    } else if (ev->over == SPF_OVER_VOIDS) {
        spf_verdict_set(out, SPF_PERMERROR, domain, "too many void DNS lookups (more than %d)", SPF_VOIDS_MAX);
    } else if (resp == NULL) {
        spf_verdict_set(out, SPF_TEMPERROR, domain, "libspf2: out of memory");
    } else {
        enum spf_result r = spf_result_of(resp, err);
        spf_verdict_set(out, r, domain, "%s", spf_reason_of(req, resp, err, r));
    }
}

/* check_host() of domain for a (sender local@domain, or NULL for the HELO
 * identity, which is domain itself); helo: for the %{h} macro. */
static void spf_run(struct spf_checker *c, const struct spf_addr *a, const char *domain, const char *helo,
                    const char *sender, struct spf_verdict *out)
{
    struct spf_eval ev;
    spf_eval_init(&ev, c);
    SPF_server_t *server = SPF_server_new_dns(&ev.layer, 0);
    SPF_request_t *req = server != NULL ? SPF_request_new(server) : NULL;
    SPF_response_t *resp = NULL;
    SPF_errcode_t err = SPF_E_NO_MEMORY;
    if (req != NULL && spf_request_setup(req, a, sender != NULL ? helo : domain, sender))
        err = spf_query(server, req, &resp);
    spf_verdict_decide(out, domain, &ev, req, resp, err);
    if (resp != NULL)
        SPF_response_free(resp);
    if (req != NULL)
        SPF_request_free(req);
    if (server != NULL)
        SPF_server_free(server);
    spf_eval_forget(&ev);
}

/* The HELO argument for libspf2's %{h}: as given when it is printable
 * ASCII of a sane length (an address literal included), else "unknown". */
static const char *spf_helo_macro(const char *helo)
{
    size_t n = helo != NULL ? strlen(helo) : 0;
    if (n == 0 || n > SPF_HELO_MACRO_MAX)
        return "unknown";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)helo[i] <= 0x20 || (unsigned char)helo[i] >= 0x7f)
            return "unknown";
    return helo;
}

/* The sender as libspf2 takes it, local@domain: with no local part (the
 * null sender, "@domain", "domain") the local part is postmaster (RFC
 * 7208 4.3).  at: the sender's last '@', or NULL. */
static void spf_sender_full(struct buf *out, const char *sender, const char *at, const char *domain)
{
    if (at == NULL || at == sender)
        buf_puts(out, "postmaster");
    else
        buf_add(out, sender, (size_t)(at - sender));
    buf_printf(out, "@%s", domain);
}

void spf_check_mailfrom(struct spf_checker *c, const char *ip, const char *helo, const char *sender,
                        struct spf_verdict *out)
{
    char domain[SPF_DOMAIN_MAX + 1], helo_dom[SPF_DOMAIN_MAX + 1];
    struct spf_addr a;
    const char *s = sender != NULL ? sender : "";
    const char *at = strrchr(s, '@');
    const char *dp = at != NULL ? at + 1 : s;
    bool null_sender = *s == '\0';
    bool ok = null_sender ? helo != NULL && spf_domain_norm(helo, strlen(helo), domain)
                          : spf_domain_norm(dp, strlen(dp), domain);
    if (!spf_addr_parse(ip, &a)) {
        spf_verdict_set(out, SPF_PERMERROR, ok ? domain : "", "invalid client IP address");
        return;
    }
    if (!ok) {
        spf_verdict_set(out, SPF_NONE, "", null_sender ? "null sender and the HELO name is not a domain name"
                                                       : "the sender's domain is not a domain name");
        return;
    }
    struct buf full;
    buf_init(&full);
    spf_sender_full(&full, s, at, domain);
    bool helo_ok = helo != NULL && spf_domain_norm(helo, strlen(helo), helo_dom);
    spf_run(c, &a, domain, helo_ok ? helo_dom : spf_helo_macro(helo), full.data, out);
    buf_free(&full);
}

static void spf_check_helo(struct spf_checker *c, const char *ip, const char *helo, struct spf_verdict *out)
{
    char domain[SPF_DOMAIN_MAX + 1];
    struct spf_addr a;
    bool ok = helo != NULL && spf_domain_norm(helo, strlen(helo), domain);
    if (!spf_addr_parse(ip, &a))
        spf_verdict_set(out, SPF_PERMERROR, ok ? domain : "", "invalid client IP address");
    else if (!ok)
        spf_verdict_set(out, SPF_NONE, "", "the HELO name is not a domain name");
    else
        spf_run(c, &a, domain, NULL, NULL, out);
}

void spf_check(struct spf_checker *c, const char *ip, const char *helo, const char *sender,
               struct spf_verdict *mailfrom, struct spf_verdict *helo_v)
{
    spf_check_mailfrom(c, ip, helo, sender, mailfrom);
    spf_check_helo(c, ip, helo, helo_v);
}

const char *spf_result_name(enum spf_result r)
{
    static const char *const names[] = {
        [SPF_NONE] = "none",           [SPF_NEUTRAL] = "neutral",     [SPF_PASS] = "pass",
        [SPF_FAIL] = "fail",           [SPF_SOFTFAIL] = "softfail",   [SPF_TEMPERROR] = "temperror",
        [SPF_PERMERROR] = "permerror",
    };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "permerror";
}
