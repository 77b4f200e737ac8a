/* inbound.c: the checks of inbound mail and their outcome, as inbound.h
 * says: SPF (auth_spf), DKIM (auth_dkim), DMARC (auth_dmarc) over the one
 * From: domain (mailhdr), the Authentication-Results header (authres), the
 * receiving tenants' modes (rules_find_domain). */
#include "inbound.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "authres.h"
#include "mailhdr.h"
#include "rules.h"
#include "rules_index.h"

/* DKIM verification costs libopendkim time in the number of headers
 * (each signature's h= list is matched against them): past these, the
 * rest of the headers are not given to it, and the signatures end as
 * permerror.  Postfix bounds each header (header_size_limit), not their
 * number. */
#define INBOUND_DKIM_MAX_HEADERS 1000
#define INBOUND_DKIM_MAX_HEADER_BYTES (1u << 20)

struct inbound_msg {
    const struct inbound_cfg *cfg;
    enum inbound_mode spf, dkim, dmarc;        /* strictest of the recipients */
    const char *spf_by, *dkim_by, *dmarc_by;   /* the tenant that made the mode enforce */
    const char *first_tenant;
    bool any_rcpt;
    char ip[64];
    char helo[256];
    char *sender;
    char *job;
    struct spf_verdict spf_mf;                 /* of MAIL FROM, or postmaster@HELO for the null sender */
    struct dkimv *v;
    size_t n_headers, header_bytes;
    bool dkim_overflow;                        /* too many headers for DKIM: not verified */
    size_t n_from;                             /* From: headers seen */
    struct mailhdr_from from;                  /* the last one parsed */
    struct authres_forged forged;              /* Authentication-Results headers claiming our authserv-id */
};

struct inbound_msg *inbound_begin(const struct inbound_cfg *cfg, const char *ip, const char *helo,
                                  const char *sender, const char *job)
{
    struct inbound_msg *im = mem_alloc(sizeof *im);
    im->cfg = cfg;
    snprintf(im->ip, sizeof im->ip, "%s", ip != NULL ? ip : "");
    snprintf(im->helo, sizeof im->helo, "%s", helo != NULL ? helo : "");
    im->sender = mem_strdup(sender != NULL ? sender : "");
    im->job = mem_strdup(job != NULL && job[0] != '\0' ? job : "-");
    im->spf_mf.result = SPF_NONE;
    if (im->ip[0] == '\0') {
        snprintf(im->spf_mf.reason, sizeof im->spf_mf.reason, "no client IP address (local submission)");
    } else if (cfg->spf != NULL) {
        /* the MAIL FROM identity only: for the null sender it is
         * postmaster@HELO, the HELO identity (RFC 7208 2.4), and one
         * identity costs one DNS timeout at worst, not two */
        spf_check_mailfrom(cfg->spf, im->ip, im->helo, im->sender, &im->spf_mf);
    }
    if (cfg->dkimv != NULL) {
        struct buf err;
        buf_init(&err);
        im->v = dkimv_begin(cfg->dkimv, im->job, &err); /* NULL: dkim=temperror at the end */
        buf_free(&err);
    }
    return im;
}

static void inbound_mode_max(enum inbound_mode *mode, const char **by, enum inbound_mode m, const char *tenant)
{
    if (m > *mode) {
        *mode = m;
        *by = tenant;
    }
}

void inbound_rcpt(struct inbound_msg *im, const struct rules *r, const char *rcpt)
{
    const char *at = rcpt != NULL ? strrchr(rcpt, '@') : NULL;
    const struct tenant *t = at != NULL && r != NULL ? rules_find_domain(r, at + 1) : NULL;
    im->any_rcpt = true;
    if (t == NULL) {
        inbound_mode_max(&im->spf, &im->spf_by, INBOUND_HEADER, NULL);
        inbound_mode_max(&im->dkim, &im->dkim_by, INBOUND_HEADER, NULL);
        inbound_mode_max(&im->dmarc, &im->dmarc_by, INBOUND_HEADER, NULL);
        return;
    }
    if (im->first_tenant == NULL)
        im->first_tenant = t->name; /* the snapshot outlives the message */
    inbound_mode_max(&im->spf, &im->spf_by, t->inbound.spf, t->name);
    inbound_mode_max(&im->dkim, &im->dkim_by, t->inbound.dkim, t->name);
    inbound_mode_max(&im->dmarc, &im->dmarc_by, t->inbound.dmarc, t->name);
}

bool inbound_header(struct inbound_msg *im, const char *name, const char *value, struct buf *err)
{
    size_t vlen = strlen(value);
    if (strcasecmp(name, "From") == 0) {
        im->n_from++;
        mailhdr_from_parse(value, vlen, &im->from);
    } else if (strcasecmp(name, "Authentication-Results") == 0) {
        authres_forged_note(&im->forged, value, im->cfg->authserv_id);
    }
    im->n_headers++;
    im->header_bytes += strlen(name) + vlen;
    if (im->n_headers > INBOUND_DKIM_MAX_HEADERS || im->header_bytes > INBOUND_DKIM_MAX_HEADER_BYTES)
        im->dkim_overflow = true;
    return im->v == NULL || im->dkim_overflow || dkimv_header(im->v, name, value, err);
}

bool inbound_eoh(struct inbound_msg *im, struct buf *err)
{
    return im->v == NULL || dkimv_eoh(im->v, err);
}

bool inbound_body(struct inbound_msg *im, const unsigned char *data, size_t len, struct buf *err)
{
    return im->v == NULL || dkimv_body(im->v, data, len, err);
}

/* --- the outcome --------------------------------------------------------------- */

static void inbound_reply(struct inbound_outcome *out, enum inbound_action a, const char *rule, const char *tenant,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void inbound_reply(struct inbound_outcome *out, enum inbound_action a, const char *rule, const char *tenant,
                          const char *fmt, ...)
{
    va_list ap;
    out->action = a;
    out->rule = rule;
    if (tenant != NULL)
        out->tenant = tenant;
    snprintf(out->rcode, sizeof out->rcode, "%s", a == INBOUND_TEMPFAIL ? "451" : "550");
    snprintf(out->xcode, sizeof out->xcode, "%s", a == INBOUND_TEMPFAIL ? "4.7.0" : "5.7.1");
    va_start(ap, fmt);
    vsnprintf(out->text, sizeof out->text, fmt, ap);
    va_end(ap);
}

static const char *inbound_spf_identity(const struct inbound_msg *im)
{
    return im->sender[0] != '\0' ? "smtp.mailfrom" : "smtp.helo";
}

/* The Authentication-Results value. */
static char *inbound_authres(const struct inbound_msg *im, const struct spf_verdict *spf,
                             const struct dkimv_sig *sigs, size_t n_sigs, size_t n_ignored, bool from_ok,
                             const struct dmarc_verdict *dm)
{
    struct authres a;
    char comment[300];
    authres_init(&a, im->cfg->authserv_id);
    if (im->spf != INBOUND_OFF) {
        const char *props[2] = { inbound_spf_identity(im), im->sender[0] != '\0' ? im->sender : im->helo };
        authres_add(&a, "spf", spf_result_name(spf->result), spf->reason[0] ? spf->reason : NULL, props, 1);
    }
    if (im->dkim != INBOUND_OFF) {
        if (n_sigs == 0) {
            snprintf(comment, sizeof comment, "%zu signatures not verified", n_ignored);
            authres_add(&a, "dkim", "none", n_ignored > 0 ? comment : NULL, NULL, 0);
        }
        for (size_t i = 0; i < n_sigs; i++) {
            const char *props[8] = { "header.d", sigs[i].domain, "header.s", sigs[i].selector,
                                     "header.a", sigs[i].algorithm, "header.b", sigs[i].b };
            if (i + 1 == n_sigs && n_ignored > 0)
                snprintf(comment, sizeof comment, "%s%s%zu more signatures not verified", sigs[i].reason,
                         sigs[i].reason[0] ? "; " : "", n_ignored);
            else
                snprintf(comment, sizeof comment, "%s", sigs[i].reason);
            authres_add(&a, "dkim", dkimv_result_name(sigs[i].result), comment[0] ? comment : NULL, props, 4);
        }
    }
    if (im->dmarc != INBOUND_OFF) {
        const char *props[2] = { "header.from", from_ok ? im->from.domain : NULL };
        if (dm->p != DMARC_P_UNSET)
            snprintf(comment, sizeof comment, "p=%s sp=%s%s%s", dmarc_policy_name(dm->p), dmarc_policy_name(dm->sp),
                     dm->reason[0] ? "; " : "", dm->reason);
        else
            snprintf(comment, sizeof comment, "%s", dm->reason);
        authres_add(&a, "dmarc", dmarc_result_name(dm->result), comment[0] ? comment : NULL, props, 1);
    }
    char *v = mem_strdup(authres_value(&a));
    authres_free(&a);
    return v;
}

/* The A-R value on one line, for the audit record. */
static void inbound_summary(struct inbound_outcome *out)
{
    size_t o = 0;
    const char *s = out->authres != NULL ? strchr(out->authres, ';') : NULL;
    for (s = s != NULL ? s + 1 : ""; *s == ' ' || *s == '\n' || *s == '\t'; s++)
        ;
    for (; *s != '\0' && o + 1 < sizeof out->summary; s++) {
        if (*s == '\n' || *s == '\t') {
            if (o > 0 && out->summary[o - 1] != ' ')
                out->summary[o++] = ' ';
            continue;
        }
        out->summary[o++] = *s;
    }
    out->summary[o] = '\0';
}

void inbound_end(struct inbound_msg *im, struct inbound_outcome *out)
{
    const struct inbound_cfg *cfg = im->cfg;
    memset(out, 0, sizeof *out);
    out->action = INBOUND_ACCEPT;
    out->rule = "inbound";
    out->tenant = im->first_tenant;
    for (size_t i = im->forged.n; i > 0; i--) /* descending: an earlier index is not moved by a deletion */
        out->remove[out->n_remove++] = im->forged.idx[i - 1];
    out->remove_overflow = im->forged.overflow;
    if (!im->any_rcpt) /* no recipient seen (cannot happen with Postfix): header mode */
        im->spf = im->dkim = im->dmarc = INBOUND_HEADER;
    if (im->spf == INBOUND_OFF && im->dkim == INBOUND_OFF && im->dmarc == INBOUND_OFF) {
        snprintf(out->summary, sizeof out->summary, "inbound checks off");
        return;
    }

    /* DKIM */
    size_t max = cfg->dkim_max > 0 ? cfg->dkim_max : 1, n_sigs = 0, n_ignored = 0;
    struct dkimv_sig *sigs = mem_array(max, sizeof *sigs);
    if (im->v != NULL) {
        dkimv_end(im->v, sigs, max, &n_sigs, &n_ignored);
        for (size_t i = 0; im->dkim_overflow && i < n_sigs; i++) {
            sigs[i].result = DKIMV_PERMERROR;
            snprintf(sigs[i].reason, sizeof sigs[i].reason, "more than %u headers or %u bytes of headers: not verified",
                     INBOUND_DKIM_MAX_HEADERS, INBOUND_DKIM_MAX_HEADER_BYTES);
        }
    } else if (cfg->dkimv != NULL) {
        n_sigs = 1;
        sigs[0].result = DKIMV_TEMPERROR;
        snprintf(sigs[0].reason, sizeof sigs[0].reason, "verifier could not start");
    }

    /* DMARC over the one From: domain */
    const struct spf_verdict *spf = &im->spf_mf;
    struct dmarc_verdict dm;
    memset(&dm, 0, sizeof dm);
    bool from_ok = im->n_from == 1 && im->from.status == MAILHDR_FROM_OK;
    if (!from_ok) {
        dm.result = DMARC_PERMERROR;
        snprintf(dm.reason, sizeof dm.reason, "From: %s",
                 im->n_from == 0   ? "missing"
                 : im->n_from > 1 ? "several headers"
                                   : mailhdr_from_status_name(im->from.status));
    } else if (cfg->dmarc == NULL) {
        dm.result = DMARC_NONE;
        snprintf(dm.reason, sizeof dm.reason, "not checked");
    } else {
        struct dmarc_input in = {
            .ip = im->ip,
            .from_domain = im->from.domain,
            .spf = spf->result,
            .spf_domain = spf->domain,
            .spf_helo = im->sender[0] == '\0',
            .dkim = sigs,
            .n_dkim = n_sigs,
            .record = cfg->test_dmarc_record,
            .record_domain = cfg->test_dmarc_domain,
        };
        dmarc_evaluate(cfg->dmarc, &in, &dm);
    }
    out->authres = inbound_authres(im, spf, sigs, n_sigs, n_ignored, from_ok, &dm);
    inbound_summary(out);

    /* the decision, first that applies */
    bool dkim_pass = false, dkim_temp = false;
    for (size_t i = 0; i < n_sigs; i++) {
        dkim_pass |= sigs[i].result == DKIMV_PASS;
        dkim_temp |= sigs[i].result == DKIMV_TEMPERROR;
    }
    const char *fd = from_ok ? im->from.domain : "";
    if (im->forged.overflow) {
        inbound_reply(out, INBOUND_REJECT, "inbound", NULL,
                      "message refused: more than %zu Authentication-Results headers claim to be ours (%s)",
                      (size_t)AUTHRES_FORGED_MAX, cfg->authserv_id);
    } else if (!from_ok && im->dmarc == INBOUND_ENFORCE && !cfg->bad_from_accept) {
        inbound_reply(out, INBOUND_REJECT, "inbound.dmarc", im->dmarc_by,
                      "message refused: it must have exactly one From: address with a valid domain (%s)", dm.reason);
    } else if (im->spf == INBOUND_ENFORCE && spf->result == SPF_FAIL) {
        inbound_reply(out, INBOUND_REJECT, "inbound.spf", im->spf_by, "SPF of %s does not allow %s to send its mail",
                      spf->domain, im->ip);
    } else if (im->dkim == INBOUND_ENFORCE && n_sigs > 0 && !dkim_pass && !dkim_temp) {
        inbound_reply(out, INBOUND_REJECT, "inbound.dkim", im->dkim_by,
                      "no DKIM signature of the message verifies (d=%s: %s)", sigs[0].domain, sigs[0].reason);
    } else if (im->dmarc == INBOUND_ENFORCE && dm.result == DMARC_FAIL && dm.policy == DMARC_P_REJECT) {
        inbound_reply(out, INBOUND_REJECT, "inbound.dmarc", im->dmarc_by,
                      "DMARC policy of %s: reject (neither SPF nor DKIM aligned with the From: domain)", fd);
    } else if (im->dmarc == INBOUND_ENFORCE && dm.result == DMARC_FAIL && dm.policy == DMARC_P_QUARANTINE) {
        inbound_reply(out, INBOUND_QUARANTINE, "inbound.dmarc", im->dmarc_by,
                      "DMARC policy of %s: quarantine (neither SPF nor DKIM aligned)", fd);
    } else if (!cfg->temperror_accept) {
        /* an enforced check that could not decide */
        const char *what = NULL, *rule = NULL, *by = NULL;
        if (im->dmarc == INBOUND_ENFORCE && dm.result == DMARC_TEMPERROR) {
            what = "DMARC", rule = "inbound.dmarc", by = im->dmarc_by;
        } else if (im->spf == INBOUND_ENFORCE && spf->result == SPF_TEMPERROR) {
            what = "SPF", rule = "inbound.spf", by = im->spf_by;
        } else if (im->dkim == INBOUND_ENFORCE && dkim_temp && !dkim_pass) {
            what = "DKIM", rule = "inbound.dkim", by = im->dkim_by;
        }
        if (what != NULL)
            inbound_reply(out, INBOUND_TEMPFAIL, rule, by,
                          "%s check could not be completed (DNS temporary failure), try again later", what);
    }
    mem_free(sigs);
}

void inbound_outcome_free(struct inbound_outcome *out)
{
    mem_free(out->authres);
    out->authres = NULL;
}

void inbound_free(struct inbound_msg *im)
{
    if (im == NULL)
        return;
    if (im->v != NULL)
        dkimv_free(im->v);
    mem_free(im->sender);
    mem_free(im->job);
    mem_free(im);
}
