/* test_pipeline.c: postern-milter's message pipeline (milter/pipeline.h)
 * driven without an MTA: the smfi_* side is a recorder (headers inserted,
 * replies set), macros come from a table, audit records are collected.
 * Real rules (a YAML directory written here) and real keys (made with
 * openssl(1)): who is signed with which key, why a tenant's message is
 * not signed, the on_error answer, abort at every stage, many messages on
 * one connection; the scanners' fallbacks (a scanner down, the spool that
 * cannot spill, a message over the size limit) and forged scanner headers
 * (the verdicts themselves: test_scan, test_scanner and the lab). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "audit.h"
#include "diag.h"
#include "dkim_sign.h"
#include "inbound.h"
#include "log.h"
#include "pipeline.h"
#include "rules.h"
#include "pacer.h"
#include "ptime.h"
#include "rules_load.h"
#include "scanner.h"
#include "unit.h"

static char tmpdir[64];

/* --- the fixture: rules, keys, a daemon, a recorder ------------------------ */

struct rec_audit {
    char action[32];
    char reason[256];
    char tenant[64];
    char queue_id[32];
};

struct fixture {
    struct rules *rules;
    struct dkim_keys *keys;
    struct pl_daemon d;
    struct rec_audit audits[64];
    size_t n_audits;
    bool audit_fails;
    char headers[8][4096];   /* inserted: "Name: value" */
    size_t n_headers;
    char reply[256];
    bool insert_fails;
    char changes[8][256];    /* chgheader: "Name[idx]=value" */
    size_t n_changes;
    char quarantined[256];
};

static struct fixture fx;

static struct rules *fx_rules_get(void *arg)
{
    (void)arg;
    return rules_ref(fx.rules);
}

static struct dkim_keys *fx_keys_get(void *arg)
{
    (void)arg;
    return fx.keys != NULL ? dkim_keys_ref(fx.keys) : NULL;
}

static void fx_copy(char *out, size_t size, const char *s)
{
    snprintf(out, size, "%s", s != NULL ? s : "");
}

static bool fx_audit(void *arg, const struct audit_rec *rec, struct buf *err)
{
    (void)arg;
    if (fx.audit_fails) {
        buf_reset(err);
        buf_puts(err, "journal: No space left on device");
        return false;
    }
    ck_assert_uint_lt(fx.n_audits, 64);
    struct rec_audit *a = &fx.audits[fx.n_audits++];
    fx_copy(a->action, sizeof a->action, rec->action);
    fx_copy(a->reason, sizeof a->reason, rec->reason);
    fx_copy(a->tenant, sizeof a->tenant, rec->tenant);
    fx_copy(a->queue_id, sizeof a->queue_id, rec->queue_id);
    return true;
}

static bool fx_insheader(void *arg, int idx, const char *name, const char *value)
{
    (void)arg;
    ck_assert_int_ge(idx, 0); /* the scanners' headers go on top in their order: 0, 1, 2 ... */
    if (fx.insert_fails)
        return false;
    ck_assert_uint_lt(fx.n_headers, 8);
    snprintf(fx.headers[fx.n_headers++], sizeof fx.headers[0], "%s: %s", name, value);
    return true;
}

static bool fx_setreply(void *arg, const char *rcode, const char *xcode, const char *text)
{
    (void)arg;
    snprintf(fx.reply, sizeof fx.reply, "%s %s %s", rcode, xcode, text);
    return true;
}

static bool fx_chgheader(void *arg, const char *name, int idx, const char *value)
{
    (void)arg;
    ck_assert_uint_lt(fx.n_changes, 8);
    snprintf(fx.changes[fx.n_changes++], sizeof fx.changes[0], "%s[%d]=%s", name, idx, value ? value : "(deleted)");
    return true;
}

static bool fx_quarantine(void *arg, const char *reason)
{
    (void)arg;
    snprintf(fx.quarantined, sizeof fx.quarantined, "%s", reason);
    return true;
}

static const struct pl_actions fx_actions = { NULL, fx_insheader, fx_setreply, fx_chgheader, fx_quarantine };

/* Macros: {auth_authen} and {i} from a small table. */
struct macros {
    const char *auth;
    const char *qid;
};

static const char *fx_macro(void *arg, const char *name)
{
    const struct macros *m = arg;
    if (strcmp(name, "{auth_authen}") == 0)
        return m->auth;
    if (strcmp(name, "i") == 0)
        return m->qid;
    return NULL;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void run(const char *cmd)
{
    ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void fx_load(bool with_keys)
{
    char cmd[512], yaml[2048];
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/rsa.pem 2>/dev/null && "
             "openssl genpkey -algorithm ed25519 -out %s/ed.pem 2>/dev/null && mkdir -p %s/rules",
             tmpdir, tmpdir, tmpdir);
    run(cmd);
    snprintf(yaml, sizeof yaml,
             "tenant: acme\n"
             "domains: [acme.example, news.acme.example]\n"
             "clients: [192.0.2.0/24]\n"
             "dkim:\n"
             "  - {domain: acme.example, selector: s1, key: %s/rsa.pem}\n"
             "  - {domain: acme.example, selector: e1, key: %s/ed.pem}\n"
             "  - {domain: acme.example, selector: old, key: %s/missing.pem, active: false}\n"
             "accounts:\n"
             "  bob@acme.example: {}\n",
             tmpdir, tmpdir, tmpdir);
    write_file("rules/acme.yaml", yaml);
    write_file("rules/globex.yaml", "tenant: globex\ndomains: [globex.example]\n");
    snprintf(yaml, sizeof yaml,
             "tenant: initech\n"
             "domains: [initech.example, billing.initech.example]\n"
             "clients: [198.18.0.0/24]\n"
             "dkim:\n"
             "  - {domain: initech.example, selector: p1, key: %s/rsa.pem, subdomains: true}\n"
             "  - {domain: initech.example, selector: p2, key: %s/ed.pem}\n",
             tmpdir, tmpdir);
    write_file("rules/initech.yaml", yaml);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/rules", tmpdir);
    struct diags d;
    diags_init(&d);
    fx.rules = rules_load(dir, &d, NULL);
    if (fx.rules == NULL)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(fx.rules);
    diags_free(&d);
    if (with_keys) {
        diags_init(&d);
        fx.keys = dkim_keys_load(fx.rules, false, &d);
        if (fx.keys == NULL)
            diags_print(&d, stderr);
        ck_assert_ptr_nonnull(fx.keys);
        diags_free(&d);
    }
}

static void setup(void)
{
    log_open("test_pipeline", false, false, LOG_LVL_ERR);
    memset(&fx, 0, sizeof fx);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_pipeline.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    fx_load(true);
    fx.d.rules_get = fx_rules_get;
    fx.d.keys_get = fx_keys_get;
    fx.d.audit = fx_audit;
    fx.d.on_error = PL_TEMPFAIL;
}

static void teardown(void)
{
    dkim_keys_unref(fx.keys);
    rules_unref(fx.rules);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* --- helpers: one message ------------------------------------------------- */

static const char body[] = "Hello,\r\n\r\nthis is the body.\r\n-- \r\nacme\r\n";

/* Send one message on c; from_hdr NULL: no From: header. */
static enum pl_status send_msg(struct pl_conn *c, const char *login, const char *sender, const char *from_hdr,
                               const char *qid)
{
    struct macros m = { login, qid };
    ck_assert_int_eq(pl_envfrom(c, sender, fx_macro, &m), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(c, "<rcpt@remote.example>"), PL_CONTINUE);
    if (from_hdr != NULL)
        ck_assert_int_eq(pl_header(c, "From", from_hdr), PL_CONTINUE);
    pl_header(c, "To", " rcpt@remote.example");
    pl_header(c, "Subject", " a test\r\n\twith a folded subject");
    pl_header(c, "Date", " Sat, 28 Nov 2026 12:00:00 +0000");
    ck_assert_int_eq(pl_eoh(c, fx_macro, &m), PL_CONTINUE);
    ck_assert_int_eq(pl_body(c, (const unsigned char *)body, sizeof body - 1), PL_CONTINUE);
    return pl_eom(c, &fx_actions, fx_macro, &m);
}

static struct pl_conn conn_new(const char *ip)
{
    struct pl_conn c;
    pl_conn_init(&c, &fx.d, 1);
    ck_assert_int_eq(pl_connect(&c, "client.example", ip), PL_CONTINUE);
    ck_assert_int_eq(pl_helo(&c, "client.example"), PL_CONTINUE);
    return c;
}

static size_t count_action(const char *action)
{
    size_t n = 0;
    for (size_t i = 0; i < fx.n_audits; i++)
        n += strcmp(fx.audits[i].action, action) == 0;
    return n;
}

/* --- tests ------------------------------------------------------------------ */

START_TEST(test_login_signed_twice)
{
    struct pl_conn c = conn_new("198.51.100.9");
    ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " Bob <bob@acme.example>", "Q1"),
                     PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 2); /* RSA and Ed25519 */
    bool rsa = false, ed = false;
    for (size_t i = 0; i < fx.n_headers; i++) {
        ck_assert_msg(strncmp(fx.headers[i], "DKIM-Signature: ", 16) == 0, "%s", fx.headers[i]);
        ck_assert_ptr_nonnull(strstr(fx.headers[i], "d=acme.example"));
        rsa = rsa || (strstr(fx.headers[i], "a=rsa-sha256") && strstr(fx.headers[i], "s=s1"));
        ed = ed || (strstr(fx.headers[i], "a=ed25519-sha256") && strstr(fx.headers[i], "s=e1"));
    }
    ck_assert(rsa && ed);
    ck_assert_uint_eq(count_action("sign"), 2);
    ck_assert_str_eq(fx.audits[0].tenant, "acme");
    ck_assert_str_eq(fx.audits[0].queue_id, "Q1");
    ck_assert_str_eq(fx.audits[0].reason, "d=acme.example s=s1 a=rsa-sha256");
    ck_assert_str_eq(fx.audits[1].reason, "d=acme.example s=e1 a=ed25519-sha256");
    pl_close(&c);
}
END_TEST

START_TEST(test_client_host_signed)
{
    /* no SASL: a client inside acme's clients is acme's */
    struct pl_conn c = conn_new("192.0.2.44");
    ck_assert_int_eq(send_msg(&c, NULL, "<news@acme.example>", " news@acme.example", "Q2"), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 2);
    pl_close(&c);
}
END_TEST

START_TEST(test_not_a_tenant)
{
    struct pl_conn c = conn_new("203.0.113.1");
    ck_assert_int_eq(send_msg(&c, NULL, "<x@remote.example>", " x@remote.example", "Q3"), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 0);
    ck_assert_uint_eq(fx.n_audits, 0); /* not the milter's business: policyd audited it */
    pl_close(&c);
}
END_TEST

/* A tenant's message that is not signed, and the reason audited. */
static void expect_nosign(const char *from_hdr, const char *login, const char *reason)
{
    struct pl_conn c = conn_new("198.51.100.9");
    fx.n_audits = fx.n_headers = 0;
    ck_assert_int_eq(send_msg(&c, login, "<bob@acme.example>", from_hdr, "Q4"), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 0);
    ck_assert_uint_eq(fx.n_audits, 1);
    ck_assert_str_eq(fx.audits[0].action, "nosign");
    ck_assert_msg(strcmp(fx.audits[0].reason, reason) == 0, "from %s: reason \"%s\", expected \"%s\"",
                  from_hdr ? from_hdr : "(none)", fx.audits[0].reason, reason);
    pl_close(&c);
}

START_TEST(test_nosign_reasons)
{
    expect_nosign(" someone@globex.example", "bob@acme.example", "From: domain is not the tenant's");
    expect_nosign(" someone@remote.example", "bob@acme.example", "From: domain is not the tenant's");
    expect_nosign(" a@acme.example, b@acme.example", "bob@acme.example", "several From: addresses");
    expect_nosign(NULL, "bob@acme.example", "no From: header");
    expect_nosign(" undisclosed", "bob@acme.example", "no domain in From:");
    /* news.acme.example is acme's but has no key */
    expect_nosign(" n@news.acme.example", "bob@acme.example", "no active DKIM key for the From: domain");
}
END_TEST

START_TEST(test_from_forms)
{
    /* display names with commas and angle brackets in quotes, comments,
     * upper case, a trailing dot: one address of acme.example */
    static const char *const forms[] = {
        " \"Smith, Bob <boss@evil.example>\" <bob@ACME.example>",
        " bob@acme.example (Bob, the builder)",
        " Bob <bob@acme.example.>",
        " =?utf-8?q?B=C3=B6b?= <bob@acme.example>",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct pl_conn c = conn_new("198.51.100.9");
        fx.n_audits = fx.n_headers = 0;
        ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", forms[i], "Q5"), PL_CONTINUE);
        ck_assert_msg(fx.n_headers == 2, "From:%s: %zu signatures", forms[i], fx.n_headers);
        pl_close(&c);
    }
}
END_TEST

/* subdomains: true on a key signs (d=the key's domain) mail from the
 * tenant's subdomains that have no key of their own, listed or not. */
START_TEST(test_parent_domain)
{
    static const struct {
        const char *from;
        size_t sigs;
        const char *reason;
    } cases[] = {
        { " a@initech.example", 2, "d=initech.example s=p1 a=rsa-sha256" },
        { " a@billing.initech.example", 1, "d=initech.example s=p1 a=rsa-sha256" },
        { " a@deep.sub.initech.example", 1, "d=initech.example s=p1 a=rsa-sha256" },
        { " a@acme.example", 0, "From: domain is not the tenant's" },
        { " a@initech.example.evil.example", 0, "From: domain is not the tenant's" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pl_conn c = conn_new("198.18.0.5");
        fx.n_audits = fx.n_headers = 0;
        ck_assert_int_eq(send_msg(&c, NULL, "<a@initech.example>", cases[i].from, "QP"), PL_CONTINUE);
        ck_assert_msg(fx.n_headers == cases[i].sigs, "From:%s: %zu signatures", cases[i].from, fx.n_headers);
        ck_assert_msg(strcmp(fx.audits[0].reason, cases[i].reason) == 0, "From:%s: \"%s\"", cases[i].from,
                      fx.audits[0].reason);
        for (size_t h = 0; h < fx.n_headers; h++)
            ck_assert_ptr_nonnull(strstr(fx.headers[h], "d=initech.example"));
        pl_close(&c);
    }
}
END_TEST

START_TEST(test_two_from_headers)
{
    struct pl_conn c = conn_new("198.51.100.9");
    struct macros m = { "bob@acme.example", "Q6" };
    pl_envfrom(&c, "<bob@acme.example>", fx_macro, &m);
    pl_header(&c, "From", " bob@acme.example");
    pl_header(&c, "from", " eve@acme.example");
    pl_eoh(&c, fx_macro, &m);
    ck_assert_int_eq(pl_eom(&c, &fx_actions, fx_macro, &m), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 0);
    ck_assert_str_eq(fx.audits[0].reason, "several From: headers");
    pl_close(&c);
}
END_TEST

START_TEST(test_many_messages_one_connection)
{
    struct pl_conn c = conn_new("198.51.100.9");
    for (int i = 0; i < 50; i++) {
        fx.n_headers = 0;
        fx.n_audits = 0;
        ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " bob@acme.example", "QM"),
                         PL_CONTINUE);
        ck_assert_uint_eq(fx.n_headers, 2);
    }
    ck_assert_uint_eq(c.messages, 50);
    pl_close(&c);
}
END_TEST

/* Abort after each stage, then a full message on the same connection is
 * still signed (nothing of the aborted one leaks into it). */
START_TEST(test_abort_every_stage)
{
    for (int stage = 0; stage < 5; stage++) {
        struct pl_conn c = conn_new("198.51.100.9");
        struct macros m = { "bob@acme.example", "QA" };
        pl_envfrom(&c, "<bob@acme.example>", fx_macro, &m);
        if (stage >= 1)
            pl_rcpt(&c, "<r@remote.example>");
        if (stage >= 2)
            pl_header(&c, "From", " bob@acme.example");
        if (stage >= 3)
            pl_eoh(&c, fx_macro, &m);
        if (stage >= 4)
            pl_body(&c, (const unsigned char *)body, 5);
        pl_abort(&c);
        ck_assert_ptr_null(c.msg);
        fx.n_headers = fx.n_audits = 0;
        ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " bob@acme.example", "QB"),
                         PL_CONTINUE);
        ck_assert_uint_eq(fx.n_headers, 2);
        ck_assert_uint_eq(fx.n_audits, 2);
        pl_close(&c);
    }
    /* a new MAIL FROM in the middle of a message aborts it */
    struct pl_conn c = conn_new("198.51.100.9");
    struct macros m = { "bob@acme.example", "QC" };
    pl_envfrom(&c, "<bob@acme.example>", fx_macro, &m);
    pl_header(&c, "From", " eve@globex.example");
    fx.n_headers = fx.n_audits = 0;
    ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " bob@acme.example", "QC"), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 2);
    pl_close(&c);
    /* close in the middle of a message */
    c = conn_new("198.51.100.9");
    pl_envfrom(&c, "<bob@acme.example>", fx_macro, &m);
    pl_header(&c, "From", " bob@acme.example");
    pl_eoh(&c, fx_macro, &m);
    pl_close(&c);
    ck_assert_ptr_null(c.msg);
}
END_TEST

START_TEST(test_audit_failure_tempfails)
{
    struct pl_conn c = conn_new("198.51.100.9");
    fx.audit_fails = true;
    ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " bob@acme.example", "QE"),
                     PL_TEMPFAIL);
    ck_assert_uint_eq(fx.n_headers, 0); /* never signed without its audit record */
    ck_assert_str_eq(fx.reply, "451 4.3.0 postern: temporary failure, try again later");
    fx.audit_fails = false;
    /* on_error accept: accepted, the failure audited */
    fx.d.on_error = PL_ACCEPT;
    fx.insert_fails = true;
    fx.n_audits = 0;
    ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " bob@acme.example", "QF"), PL_ACCEPT);
    ck_assert_uint_eq(count_action("accept"), 1);
    pl_close(&c);
}
END_TEST

START_TEST(test_no_keys_loaded)
{
    dkim_keys_unref(fx.keys);
    fx.keys = NULL;
    struct pl_conn c = conn_new("198.51.100.9");
    ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " bob@acme.example", "QK"), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 0);
    ck_assert_str_eq(fx.audits[0].action, "nosign");
    pl_close(&c);
}
END_TEST

/* Inbound mail (not a tenant submission) with the inbound checks on:
 * the forged Authentication-Results header is deleted through the MTA,
 * ours is inserted on top, the audit record carries the verdicts; with
 * DMARC p=quarantine enforced for the recipient's tenant, the message goes
 * to the hold queue; with p=reject, a 550 reply. */
START_TEST(test_inbound_actions)
{
    struct buf err;
    buf_init(&err);
    struct inbound_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.authserv_id = "mx.test";
    cfg.dkim_max = 5;
    cfg.spf = spf_checker_new(true, &err);
    ck_assert_ptr_nonnull(cfg.spf);
    ck_assert(spf_zone_add(cfg.spf, "remote.example", "TXT", "v=spf1 ip4:203.0.113.0/24 -all"));
    cfg.dmarc = dmarc_lib_new("/usr/share/publicsuffix/public_suffix_list.dat", &err);
    ck_assert_msg(cfg.dmarc != NULL, "%s", err.data);
    cfg.test_dmarc_record = "v=DMARC1; p=quarantine";
    cfg.test_dmarc_domain = "remote.example";
    write_file("rules/corp.yaml", "tenant: corp\ndomains: [corp.example]\ninbound: {dmarc: enforce}\n");
    rules_unref(fx.rules);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/rules", tmpdir);
    struct diags d;
    diags_init(&d);
    fx.rules = rules_load(dir, &d, NULL);
    ck_assert_ptr_nonnull(fx.rules);
    diags_free(&d);
    fx.d.inbound = &cfg;

    struct macros mac = { NULL, "QI1" };
    struct pl_conn c = conn_new("203.0.113.5");
    ck_assert_int_eq(pl_envfrom(&c, "<x@remote.example>", fx_macro, &mac), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(&c, "<boss@corp.example>"), PL_CONTINUE);
    pl_header(&c, "Authentication-Results", " mx.test; dmarc=pass header.from=remote.example");
    pl_header(&c, "From", " x@remote.example");
    ck_assert_int_eq(pl_eoh(&c, fx_macro, &mac), PL_CONTINUE);
    ck_assert_int_eq(pl_body(&c, (const unsigned char *)body, sizeof body - 1), PL_CONTINUE);
    ck_assert_int_eq(pl_eom(&c, &fx_actions, fx_macro, &mac), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_changes, 1);
    ck_assert_str_eq(fx.changes[0], "Authentication-Results[1]=(deleted)");
    ck_assert_uint_eq(fx.n_headers, 1);
    ck_assert_msg(strncmp(fx.headers[0], "Authentication-Results: mx.test; spf=pass", 41) == 0, "%s", fx.headers[0]);
    ck_assert_str_eq(fx.quarantined, "");
    ck_assert_uint_eq(fx.n_audits, 1);
    ck_assert_str_eq(fx.audits[0].action, "accept");
    ck_assert_str_eq(fx.audits[0].tenant, "corp");
    ck_assert_ptr_nonnull(strstr(fx.audits[0].reason, "dmarc=pass"));

    /* SPF fails, DMARC fails: p=quarantine -> the hold queue */
    fx.n_audits = fx.n_headers = fx.n_changes = 0;
    pl_connect(&c, "other.example", "198.51.100.5");
    ck_assert_int_eq(pl_envfrom(&c, "<x@remote.example>", fx_macro, &mac), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(&c, "<boss@corp.example>"), PL_CONTINUE);
    pl_header(&c, "From", " x@remote.example");
    ck_assert_int_eq(pl_eoh(&c, fx_macro, &mac), PL_CONTINUE);
    ck_assert_int_eq(pl_eom(&c, &fx_actions, fx_macro, &mac), PL_CONTINUE);
    ck_assert_ptr_nonnull(strstr(fx.quarantined, "DMARC policy of remote.example: quarantine"));
    ck_assert_uint_eq(fx.n_headers, 1);
    ck_assert_str_eq(fx.audits[0].action, "quarantine");

    /* p=reject: 550 5.7.1, no header */
    cfg.test_dmarc_record = "v=DMARC1; p=reject";
    fx.n_audits = fx.n_headers = 0;
    ck_assert_int_eq(pl_envfrom(&c, "<x@remote.example>", fx_macro, &mac), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(&c, "<boss@corp.example>"), PL_CONTINUE);
    pl_header(&c, "From", " x@remote.example");
    ck_assert_int_eq(pl_eoh(&c, fx_macro, &mac), PL_CONTINUE);
    ck_assert_int_eq(pl_eom(&c, &fx_actions, fx_macro, &mac), PL_REJECT);
    ck_assert_msg(strncmp(fx.reply, "550 5.7.1 DMARC policy of remote.example: reject", 48) == 0, "%s", fx.reply);
    ck_assert_uint_eq(fx.n_headers, 0);
    ck_assert_str_eq(fx.audits[0].action, "reject");
    pl_close(&c);

    /* a tenant submission that carries a forged header of ours: deleted
     * too (it would reach another tenant's mailbox as it is), the
     * signatures added, no inbound checks */
    fx.n_audits = fx.n_headers = fx.n_changes = 0;
    struct pl_conn t = conn_new("198.51.100.9");
    struct macros tm = { "bob@acme.example", "QT1" };
    ck_assert_int_eq(pl_envfrom(&t, "<bob@acme.example>", fx_macro, &tm), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(&t, "<boss@corp.example>"), PL_CONTINUE);
    pl_header(&t, "Authentication-Results", " other.example; spf=pass");
    pl_header(&t, "Authentication-Results", " MX.test; dmarc=pass header.from=acme.example");
    pl_header(&t, "From", " bob@acme.example");
    ck_assert_int_eq(pl_eoh(&t, fx_macro, &tm), PL_CONTINUE);
    ck_assert_int_eq(pl_eom(&t, &fx_actions, fx_macro, &tm), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_changes, 1);
    ck_assert_str_eq(fx.changes[0], "Authentication-Results[2]=(deleted)");
    ck_assert_uint_eq(fx.n_headers, 2); /* the two signatures, no Authentication-Results of ours */
    ck_assert_uint_eq(count_action("sign"), 2);
    pl_close(&t);
    fx.d.inbound = NULL;
    spf_checker_free(cfg.spf);
    dmarc_lib_free(cfg.dmarc);
    buf_free(&err);
}
END_TEST

/* A scanner that is down (a socket that does not exist), a spool that
 * cannot spill, a message over the tenant's max_size: each scanner's
 * on_failure, never a crash or a silent pass. */
START_TEST(test_scan_fallbacks)
{
    struct buf err;
    buf_init(&err);
    char sock[128], nodir[128];
    snprintf(sock, sizeof sock, "unix:%s/no-clamd.sock", tmpdir);
    snprintf(nodir, sizeof nodir, "%s/no-such-dir", tmpdir);
    struct scanner_cfg sc = { SCANNER_CLAMD, sock, 200, 500, 2, 0 };
    struct scanner *clamd = scanner_new(&sc, &err);
    ck_assert_ptr_nonnull(clamd);
    struct scan_cfg cfg = { .have_clamd = true, .host = "mx.test" };
    fx.d.scan = &cfg;
    fx.d.clamd = clamd;
    fx.d.scan_memory = 4096;
    fx.d.spool_dir = tmpdir;

    /* clamd down, on_failure tempfail: 451 4.3.0, not signed, audited */
    struct pl_conn c = conn_new("198.51.100.9");
    ck_assert_int_eq(send_msg(&c, "bob@acme.example", "<bob@acme.example>", " bob@acme.example", "QS1"),
                     PL_TEMPFAIL);
    ck_assert_str_eq(fx.reply, "451 4.3.0 anti-virus scanner unavailable, try again later");
    ck_assert_uint_eq(fx.n_headers, 0);
    ck_assert_uint_eq(fx.n_audits, 1);
    ck_assert_str_eq(fx.audits[0].action, "tempfail");
    ck_assert_msg(strstr(fx.audits[0].reason, "clamd=failed cannot connect to unix:") != NULL, "%s",
                  fx.audits[0].reason);

    /* on_failure accept: signed, with X-Postern-Not-Scanned on top; a
     * forged X-Spam-Flag removed */
    cfg.clamd_accept_on_failure = true;
    fx.n_audits = fx.n_headers = fx.n_changes = 0;
    fx.reply[0] = '\0';
    struct macros m = { "bob@acme.example", "QS2" };
    ck_assert_int_eq(pl_envfrom(&c, "<bob@acme.example>", fx_macro, &m), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(&c, "<rcpt@remote.example>"), PL_CONTINUE);
    pl_header(&c, "X-Spam-Flag", " NO");
    pl_header(&c, "From", " bob@acme.example");
    pl_header(&c, "x-spam-flag", " NO");
    ck_assert_int_eq(pl_eoh(&c, fx_macro, &m), PL_CONTINUE);
    ck_assert_int_eq(pl_body(&c, (const unsigned char *)body, sizeof body - 1), PL_CONTINUE);
    ck_assert_int_eq(pl_eom(&c, &fx_actions, fx_macro, &m), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_changes, 2);
    ck_assert_str_eq(fx.changes[0], "X-Spam-Flag[2]=(deleted)");
    ck_assert_str_eq(fx.changes[1], "X-Spam-Flag[1]=(deleted)");
    ck_assert_uint_eq(fx.n_headers, 3);
    ck_assert_str_eq(fx.headers[0], "X-Postern-Not-Scanned: clamd: scanner unavailable");
    ck_assert_uint_eq(count_action("accept"), 1);
    ck_assert_uint_eq(count_action("sign"), 2);

    /* the spool cannot spill (its directory is gone): clamd's on_failure */
    cfg.clamd_accept_on_failure = false;
    fx.d.spool_dir = nodir;
    fx.n_audits = fx.n_headers = fx.n_changes = 0;
    struct macros m3 = { "bob@acme.example", "QS3" };
    ck_assert_int_eq(pl_envfrom(&c, "<bob@acme.example>", fx_macro, &m3), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(&c, "<rcpt@remote.example>"), PL_CONTINUE);
    pl_header(&c, "From", " bob@acme.example");
    ck_assert_int_eq(pl_eoh(&c, fx_macro, &m3), PL_CONTINUE);
    char big[6000];
    memset(big, 'x', sizeof big);
    ck_assert_int_eq(pl_body(&c, (const unsigned char *)big, sizeof big), PL_CONTINUE);
    ck_assert_int_eq(pl_eom(&c, &fx_actions, fx_macro, &m3), PL_TEMPFAIL);
    ck_assert_str_eq(fx.reply, "451 4.3.0 anti-virus scanner unavailable, try again later");
    ck_assert_msg(strstr(fx.audits[0].reason, "clamd=failed spool: cannot create a temporary file in") != NULL, "%s",
                  fx.audits[0].reason);

    /* over the tenant's max_size: passed, not sent (clamd is down: no
     * tempfail), the header says so */
    write_file("rules/globex.yaml", "tenant: globex\ndomains: [globex.example]\nclients: [203.0.113.0/24]\n"
                                    "scan: {max_size: 1K}\n");
    rules_unref(fx.rules);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/rules", tmpdir);
    struct diags d;
    diags_init(&d);
    fx.rules = rules_load(dir, &d, NULL);
    ck_assert_ptr_nonnull(fx.rules);
    diags_free(&d);
    fx.n_audits = fx.n_headers = fx.n_changes = 0;
    struct pl_conn g = conn_new("203.0.113.7");
    struct macros m4 = { NULL, "QS4" };
    ck_assert_int_eq(pl_envfrom(&g, "<a@globex.example>", fx_macro, &m4), PL_CONTINUE);
    ck_assert_int_eq(pl_rcpt(&g, "<rcpt@remote.example>"), PL_CONTINUE);
    pl_header(&g, "From", " a@globex.example");
    ck_assert_int_eq(pl_eoh(&g, fx_macro, &m4), PL_CONTINUE);
    ck_assert_int_eq(pl_body(&g, (const unsigned char *)big, sizeof big), PL_CONTINUE);
    ck_assert_int_eq(pl_eom(&g, &fx_actions, fx_macro, &m4), PL_CONTINUE);
    ck_assert_uint_eq(fx.n_headers, 1);
    ck_assert_msg(strstr(fx.headers[0], "X-Postern-Not-Scanned: clamd: message of ") == fx.headers[0] &&
                      strstr(fx.headers[0], " over max_size 1024") != NULL,
                  "%s", fx.headers[0]);
    ck_assert_str_eq(fx.audits[0].action, "accept");
    ck_assert_str_eq(fx.audits[0].tenant, "globex");
    pl_close(&g);
    pl_close(&c);
    fx.d.scan = NULL;
    fx.d.clamd = NULL;
    scanner_free(clamd);
    buf_free(&err);
}
END_TEST

/* Pacing through the pipeline: an account in mode delay waits (one
 * interval, audited), one in mode defer gets 451 4.7.1 with its rate and
 * the time to retry, unsigned and audited; the pace lives in the pacer's
 * store. */
START_TEST(test_pace_modes)
{
    write_file("rules/pacey.yaml", "tenant: pacey\ndomains: [pacey.example]\naccounts:\n"
                                   "  d@pacey.example: {pace: {rate: 5/second, mode: delay, max_delay: 2s}}\n"
                                   "  f@pacey.example: {pace: {rate: 1/hour, mode: defer}}\n"
                                   "  c@pacey.example: {pace: {rate: 1/second, mode: delay, max_delay: 2s}}\n"
                                   "  h@pacey.example: {pace: {rate: 1/hour, mode: hold}}\n");
    rules_unref(fx.rules);
    char dir[256], db[300];
    snprintf(dir, sizeof dir, "%s/rules", tmpdir);
    snprintf(db, sizeof db, "%s/pace.sqlite", tmpdir);
    struct diags d;
    diags_init(&d);
    fx.rules = rules_load(dir, &d, NULL);
    if (fx.rules == NULL)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(fx.rules);
    diags_free(&d);
    struct buf err;
    buf_init(&err);
    fx.d.pacer = pacer_open(db, &err);
    ck_assert_msg(fx.d.pacer != NULL, "%s", err.data);

    struct pl_conn c = conn_new("198.51.100.9");
    ck_assert_int_eq(send_msg(&c, "d@pacey.example", "<d@pacey.example>", " d@pacey.example", "QP1"), PL_CONTINUE);
    ck_assert_uint_eq(count_action("delay"), 0);
    int64_t t0 = clock_mono_us();
    ck_assert_int_eq(send_msg(&c, "d@pacey.example", "<d@pacey.example>", " d@pacey.example", "QP2"), PL_CONTINUE);
    ck_assert_int_ge(clock_mono_us() - t0, 100000); /* about one interval (200 ms): it waited */
    ck_assert_uint_eq(count_action("delay"), 1);
    ck_assert_msg(strncmp(fx.audits[fx.n_audits - 2].reason, "delayed ", 8) == 0, "%s",
                  fx.audits[fx.n_audits - 2].reason);

    fx.reply[0] = '\0';
    ck_assert_int_eq(send_msg(&c, "f@pacey.example", "<f@pacey.example>", " f@pacey.example", "QP3"), PL_CONTINUE);
    ck_assert_int_eq(send_msg(&c, "f@pacey.example", "<f@pacey.example>", " f@pacey.example", "QP4"), PL_TEMPFAIL);
    ck_assert_msg(strncmp(fx.reply, "451 4.7.1 account pacey/f@pacey.example is paced at 1/hour, burst 1: try again in 3", 83) == 0,
                  "%s", fx.reply);
    ck_assert_str_eq(fx.audits[fx.n_audits - 1].action, "defer");

    /* max_delay kept under Postfix's milter timeout (main.c sets the cap
     * from postconf): a 1 s wait over a 0.5 s cap is deferred, not waited */
    fx.d.max_delay_cap_ms = 500;
    ck_assert_int_eq(send_msg(&c, "c@pacey.example", "<c@pacey.example>", " c@pacey.example", "QP5"), PL_CONTINUE);
    t0 = clock_mono_us();
    ck_assert_int_eq(send_msg(&c, "c@pacey.example", "<c@pacey.example>", " c@pacey.example", "QP6"), PL_TEMPFAIL);
    ck_assert_int_lt(clock_mono_us() - t0, 900000); /* it did not wait the second */
    ck_assert_msg(strstr(fx.reply, "451 4.7.1 account pacey/c@pacey.example is paced at 1/second") == fx.reply, "%s",
                  fx.reply);
    fx.d.max_delay_cap_ms = 0;

    /* mode hold: the first goes, the second is held (quarantined, audited
     * with its queue ID, in the schedule); without a well-formed queue ID
     * it cannot be scheduled: the on_error answer */
    fx.quarantined[0] = '\0';
    ck_assert_int_eq(send_msg(&c, "h@pacey.example", "<h@pacey.example>", " h@pacey.example", "A1B2C3D4E5"), PL_CONTINUE);
    ck_assert_str_eq(fx.quarantined, "");
    ck_assert_int_eq(send_msg(&c, "h@pacey.example", "<h@pacey.example>", " h@pacey.example", "A1B2C3D4E6"), PL_CONTINUE);
    ck_assert_str_eq(fx.quarantined, "postern: account pacey/h@pacey.example is paced at 1/hour, burst 1");
    const struct rec_audit *held = NULL;
    for (size_t i = 0; i < fx.n_audits; i++)
        if (strcmp(fx.audits[i].action, "hold") == 0)
            held = &fx.audits[i];
    ck_assert_ptr_nonnull(held);
    ck_assert_str_eq(held->queue_id, "A1B2C3D4E6");
    ck_assert_msg(strstr(held->reason, "held: account pacey/h@pacey.example is paced at 1/hour, burst 1; 0 held "
                                       "before it; release in about ") == held->reason, "%s", held->reason);
    struct holdq_msg *v = NULL;
    size_t n = 0;
    ck_assert(pacer_held_all(fx.d.pacer, &v, &n, &err));
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].queue_id, "A1B2C3D4E6");
    mem_free(v);
    fx.reply[0] = '\0';
    ck_assert_int_eq(send_msg(&c, "h@pacey.example", "<h@pacey.example>", " h@pacey.example", "QP9"), PL_TEMPFAIL);
    pl_close(&c);
    pacer_close(fx.d.pacer);
    fx.d.pacer = NULL;
    buf_free(&err);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_login_signed_twice);
    tcase_add_test(tc, test_client_host_signed);
    tcase_add_test(tc, test_not_a_tenant);
    tcase_add_test(tc, test_nosign_reasons);
    tcase_add_test(tc, test_from_forms);
    tcase_add_test(tc, test_two_from_headers);
    tcase_add_test(tc, test_parent_domain);
    tcase_add_test(tc, test_many_messages_one_connection);
    tcase_add_test(tc, test_abort_every_stage);
    tcase_add_test(tc, test_audit_failure_tempfails);
    tcase_add_test(tc, test_no_keys_loaded);
    tcase_add_test(tc, test_inbound_actions);
    tcase_add_test(tc, test_scan_fallbacks);
    tcase_add_test(tc, test_pace_modes);
}

UNIT_MAIN("pipeline", add_tests)
