/* rules_show.c: human-readable rendering of a tenant's effective settings
 * (posternctl rules show) and its one-line summary (posternctl check):
 * what will be enforced, after inheritance and defaults, with where each
 * value comes from. */
#include <inttypes.h>
#include <string.h>

#include "rules.h"

static const char *show_size(uint64_t v, char *out, size_t size)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (u < 3 && v != 0 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(out, size, "%" PRIu64, v);
    else
        snprintf(out, size, "%" PRIu64 "%c", v, units[u]);
    return out;
}

static void show_quotas(FILE *out, const char *label, const struct quota *q, bool bytes)
{
    int shown = 0;
    fprintf(out, "%s", label);
    if (q[0].set && q[0].unlimited) {
        fprintf(out, " unlimited\n");
        return;
    }
    for (int u = 0; u < WIN_COUNT; u++) {
        char n[32];
        if (!q[u].set)
            continue;
        if (bytes)
            show_size(q[u].count, n, sizeof n);
        else
            snprintf(n, sizeof n, "%" PRIu64, q[u].count);
        fprintf(out, "%s %s/%s", shown++ ? "," : "", n, window_unit_name((enum window_unit)u));
    }
    fprintf(out, "%s\n", shown ? "" : " none");
}

static void show_outbound(FILE *out, const char *indent, const struct outbound *o, const char *origin)
{
    if (o == NULL) {
        fprintf(out, "%soutbound: Postfix's default transport (no binding)\n", indent);
        return;
    }
    fprintf(out, "%soutbound: transport %s", indent, o->transport ? o->transport : "?");
    if (o->n_ips) {
        fprintf(out, ", ips");
        for (size_t i = 0; i < o->n_ips; i++) {
            char a[64];
            fprintf(out, "%s %s", i ? "," : "", ipaddr_format(&o->ips[i], a, sizeof a));
        }
    } else {
        fprintf(out, ", ips set in master.cf by hand");
    }
    if (o->helo)
        fprintf(out, ", helo %s", o->helo);
    fprintf(out, " (%s)\n", origin);
}

static void show_pace(FILE *out, const char *indent, const struct pace *p, const char *none)
{
    if (!p->set) {
        fprintf(out, "%space: %s\n", indent, none);
        return;
    }
    fprintf(out, "%space: %" PRIu64 "/%s, burst %" PRIu64 ", mode %s", indent, p->rate.count, p->rate.unit,
            p->burst, rules_pace_mode_names[p->mode]);
    if (p->mode == PACE_DELAY)
        fprintf(out, ", max_delay %" PRIu64 "ms", p->max_delay_ms);
    fprintf(out, "\n");
}

static void show_account(FILE *out, const struct account *a)
{
    const struct tenant *t = a->tenant;
    char sz[32];
    uint64_t v;
    if (strcmp(a->name, "*") == 0)
        fprintf(out, "  account * (each other login or sender of the tenant's domains, counted on its own)%s:\n",
                a->implicit ? " [not in the file: tenant settings only]" : "");
    else
        fprintf(out, "  account %s:\n", a->name);
    show_outbound(out, "    ", account_outbound(a), a->outbound.set ? "own" : "tenant's");
    fprintf(out, "    quotas of the account (the tenant's apply too):\n");
    show_quotas(out, "      messages:", a->limits.messages, false);
    show_quotas(out, "      recipients:", a->limits.recipients, false);
    show_quotas(out, "      bytes:", a->limits.bytes, true);
    if (account_message_size(a, &v))
        fprintf(out, "    message_size: %s (%s)\n", show_size(v, sz, sizeof sz),
                a->limits.message_size_set ? "own" : "tenant's");
    else
        fprintf(out, "    message_size: none (Postfix's message_size_limit)\n");
    if (account_rcpt_per_msg(a, &v))
        fprintf(out, "    recipients_per_message: %" PRIu64 " (%s)\n", v,
                a->limits.rcpt_per_msg_set ? "own" : "tenant's");
    else
        fprintf(out, "    recipients_per_message: none (Postfix's smtpd_recipient_limit)\n");
    fprintf(out, "    on_exceed: %s (%s)\n", rules_on_exceed_names[account_on_exceed(a)],
            a->limits.on_exceed_set ? "own" : t->limits.on_exceed_set ? "tenant's" : "default");
    show_pace(out, "    ", &a->pace, "none (not paced)");
}

void rules_show_tenant(const struct tenant *t, FILE *out)
{
    char sz[32];
    fprintf(out, "tenant %s (%s)\n", t->name, t->file);
    if (t->description)
        fprintf(out, "  description: %s\n", t->description);
    fprintf(out, "  domains:");
    for (size_t i = 0; i < t->n_domains; i++)
        fprintf(out, "%s %s", i ? "," : "", t->domains[i]);
    fprintf(out, "\n  clients:");
    for (size_t i = 0; i < t->n_clients; i++) {
        char c[64];
        fprintf(out, "%s %s", i ? "," : "", cidr_format(&t->clients[i], c, sizeof c));
    }
    fprintf(out, "%s\n", t->n_clients ? "" : " none (SASL logins only)");
    show_outbound(out, "  ", t->outbound.set ? &t->outbound : NULL, "tenant");
    fprintf(out, "  dkim:%s\n", t->n_dkim ? "" : " none (mail is not signed)");
    for (size_t i = 0; i < t->n_dkim; i++) {
        const struct dkim_key *k = &t->dkim[i];
        static const char *const algs[] = { "algorithm from the key", "rsa-sha256", "ed25519-sha256" };
        fprintf(out, "    %s selector %s: %s, %s, %s%s, key %s\n", k->domain, k->selector,
                k->active ? "active" : "inactive", algs[k->algorithm], k->canon,
                k->subdomains ? ", also for its subdomains" : "", k->key_path);
    }
    fprintf(out, "  limits (whole tenant):\n");
    show_quotas(out, "    messages:", t->limits.messages, false);
    show_quotas(out, "    recipients:", t->limits.recipients, false);
    show_quotas(out, "    bytes:", t->limits.bytes, true);
    if (t->limits.message_size_set)
        fprintf(out, "    message_size: %s\n", show_size(t->limits.message_size, sz, sizeof sz));
    else
        fprintf(out, "    message_size: none (Postfix's message_size_limit)\n");
    if (t->limits.rcpt_per_msg_set)
        fprintf(out, "    recipients_per_message: %" PRIu64 "\n", t->limits.recipients_per_message);
    else
        fprintf(out, "    recipients_per_message: none (Postfix's smtpd_recipient_limit)\n");
    fprintf(out, "    on_exceed: %s%s\n", rules_on_exceed_names[tenant_on_exceed(t)],
            t->limits.on_exceed_set ? "" : " (default)");
    show_pace(out, "  ", &t->pace, "none (no tenant-wide pace)");
    fprintf(out, "  scan: antivirus %s, spam %s", rules_av_names[t->scan.antivirus], rules_spam_names[t->scan.spam]);
    if (t->scan.spam != SPAM_OFF)
        fprintf(out, " at score %g", t->scan.spam_threshold);
    if (t->scan.reject_above_set)
        fprintf(out, ", reject above %g", t->scan.reject_above);
    fprintf(out, ", max_size %s%s\n", show_size(t->scan.max_size, sz, sizeof sz), t->scan.set ? "" : " (defaults)");
    fprintf(out, "  inbound: spf %s, dkim %s, dmarc %s%s\n", rules_inbound_names[t->inbound.spf],
            rules_inbound_names[t->inbound.dkim], rules_inbound_names[t->inbound.dmarc],
            t->inbound.set ? "" : " (defaults)");
    for (size_t i = 0; i < t->n_accounts; i++)
        show_account(out, &t->accounts[i]);
}

void rules_summary_tenant(const struct tenant *t, FILE *out)
{
    size_t declared = 0;
    for (size_t i = 0; i < t->n_accounts; i++)
        declared += !t->accounts[i].implicit;
    fprintf(out, "%s: %zu domain%s (%s%s), %zu account%s, %zu client network%s, %zu dkim key%s", t->name,
            t->n_domains, t->n_domains == 1 ? "" : "s", t->n_domains ? t->domains[0] : "",
            t->n_domains > 1 ? ", ..." : "", declared, declared == 1 ? "" : "s", t->n_clients,
            t->n_clients == 1 ? "" : "s", t->n_dkim, t->n_dkim == 1 ? "" : "s");
    const struct quota *q = t->limits.messages;
    int shown = 0;
    for (int u = 0; u < WIN_COUNT; u++)
        if (q[u].set && !q[u].unlimited)
            fprintf(out, "%s%" PRIu64 "/%s", shown++ ? " " : ", messages ", q[u].count,
                    window_unit_name((enum window_unit)u));
    fprintf(out, "\n");
}
