/* selfcheck.c: the outbound self-check of selfcheck.h: once per tenant and
 * hour (a map of tenant -> hour under a mutex), SPF and DMARC as the
 * receivers of the tenant's mail will see them. */
#include "selfcheck.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cidr.h"
#include "hmap.h"
#include "rules.h"

struct selfcheck {
    pthread_mutex_t mu;
    struct hmap last;          /* tenant -> int64_t * (the hour last checked) */
    int64_t **hours;           /* every value, to free them */
    size_t n_hours;
};

struct selfcheck *selfcheck_new(void)
{
    struct selfcheck *s = mem_alloc(sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    hmap_init(&s->last);
    return s;
}

void selfcheck_free(struct selfcheck *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_hours; i++)
        mem_free(s->hours[i]);
    mem_free(s->hours);
    hmap_free(&s->last);
    pthread_mutex_destroy(&s->mu);
    mem_free(s);
}

bool selfcheck_due(struct selfcheck *s, const char *tenant, int64_t now_s)
{
    int64_t hour = now_s / 3600;
    bool due = false;
    pthread_mutex_lock(&s->mu);
    int64_t *h = hmap_gets(&s->last, tenant);
    if (h == NULL) {
        h = mem_alloc(sizeof *h);
        *h = hour;
        hmap_put(&s->last, tenant, strlen(tenant), h, NULL);
        s->hours = mem_grow(s->hours, s->n_hours + 1, sizeof *s->hours);
        s->hours[s->n_hours++] = h;
        due = true;
    } else if (*h != hour) {
        *h = hour;
        due = true;
    }
    pthread_mutex_unlock(&s->mu);
    return due;
}

void selfcheck_run(const struct inbound_cfg *cfg, const struct tenant *t, const char *sender,
                   const char *from_domain, const char *sign_domain, struct buf *warnings)
{
    const char *at = sender != NULL ? strrchr(sender, '@') : NULL;
    const char *sender_domain = at != NULL ? at + 1 : NULL;
    char ip[64] = "";
    enum spf_result spf = SPF_NONE;
    char spf_domain[256] = "";
    /* SPF: every outbound IP the tenant's mail may leave from */
    for (size_t i = 0; cfg->spf != NULL && sender_domain != NULL && i < t->outbound.n_ips; i++) {
        struct spf_verdict v;
        ipaddr_format(&t->outbound.ips[i], ip, sizeof ip);
        spf_check_mailfrom(cfg->spf, ip, sender_domain, sender, &v);
        if (i == 0 || v.result != SPF_PASS) {
            spf = v.result;
            snprintf(spf_domain, sizeof spf_domain, "%s", v.domain);
        }
        if (v.result != SPF_PASS && v.result != SPF_TEMPERROR)
            buf_printf(warnings, "%sspf: the SPF record of %s gives %s for outbound IP %s (%s)",
                       warnings->len ? "; " : "", sender_domain, spf_result_name(v.result), ip,
                       v.reason[0] ? v.reason : "not listed");
    }
    /* DMARC: the From: domain with that SPF result and our signature */
    if (cfg->dmarc != NULL && from_domain != NULL) {
        struct dkimv_sig sig;
        struct dmarc_verdict dm;
        memset(&sig, 0, sizeof sig);
        sig.result = DKIMV_PASS;
        snprintf(sig.domain, sizeof sig.domain, "%s", sign_domain != NULL ? sign_domain : "");
        struct dmarc_input in = {
            .ip = ip[0] ? ip : "127.0.0.1",
            .from_domain = from_domain,
            .spf = spf,
            .spf_domain = spf_domain[0] ? spf_domain : sender_domain,
            .dkim = &sig,
            .n_dkim = sign_domain != NULL ? 1 : 0,
            .record = cfg->test_dmarc_record,
            .record_domain = cfg->test_dmarc_domain,
        };
        dmarc_evaluate(cfg->dmarc, &in, &dm);
        if (dm.result == DMARC_FAIL)
            buf_printf(warnings, "%sdmarc: %s fails DMARC (policy %s): %s", warnings->len ? "; " : "", from_domain,
                       dmarc_policy_name(dm.policy),
                       sign_domain == NULL ? "not signed, and SPF not aligned"
                                           : "neither our signature (d=) nor SPF aligns with the From: domain");
    }
}
