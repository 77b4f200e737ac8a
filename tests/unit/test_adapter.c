/* test_adapter.c: postern-milter's libmilter adapter (milter/adapter.h)
 * driven through its callbacks with a fake MTA (struct adapter_mta): the
 * negotiation (what is asked, what is refused), the stages answered with
 * no reply when the MTA allows it, macros, the DKIM-Signature headers
 * inserted at end of message, the on_error reply, abort and close.  The
 * pipeline behind it is the real one, with real rules and keys. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "audit.h"
#include "diag.h"
#include "dkim_sign.h"
#include "log.h"
#include "rules.h"
#include "rules_load.h"
#include "unit.h"

static char tmpdir[64];

/* --- the fake MTA: one session, its private pointer, macros, recorder ---- */

struct fake {
    void *priv;
    const char *auth;          /* {auth_authen} */
    const char *qid;           /* i */
    int inserted;
    char header[4096];
    char reply[256];
    int symlists;
};

static struct fake fk;
static struct rules *rules;
static struct dkim_keys *keys;
static bool audit_fails;
static int audits;

#define CTX ((SMFICTX *)&fk)

static void *f_getpriv(SMFICTX *ctx)
{
    ck_assert_ptr_eq(ctx, CTX);
    return fk.priv;
}

static int f_setpriv(SMFICTX *ctx, void *priv)
{
    ck_assert_ptr_eq(ctx, CTX);
    fk.priv = priv;
    return MI_SUCCESS;
}

static char *f_getsymval(SMFICTX *ctx, char *name)
{
    (void)ctx;
    if (strcmp(name, "{auth_authen}") == 0)
        return (char *)fk.auth;
    if (strcmp(name, "i") == 0)
        return (char *)fk.qid;
    return NULL;
}

static int f_insheader(SMFICTX *ctx, int idx, char *name, char *value)
{
    (void)ctx;
    ck_assert_int_eq(idx, 0);
    fk.inserted++;
    snprintf(fk.header, sizeof fk.header, "%s:%s", name, value);
    return MI_SUCCESS;
}

static int f_setreply(SMFICTX *ctx, char *rcode, char *xcode, char *message)
{
    (void)ctx;
    snprintf(fk.reply, sizeof fk.reply, "%s %s %s", rcode, xcode, message);
    return MI_SUCCESS;
}

static int f_setsymlist(SMFICTX *ctx, int stage, char *macros)
{
    (void)ctx;
    (void)stage;
    (void)macros;
    fk.symlists++;
    return MI_SUCCESS;
}

static int f_chgheader(SMFICTX *ctx, char *name, int idx, char *value)
{
    (void)ctx;
    (void)name;
    (void)idx;
    (void)value;
    return MI_SUCCESS;
}

static int f_quarantine(SMFICTX *ctx, char *reason)
{
    (void)ctx;
    (void)reason;
    return MI_SUCCESS;
}

static const struct adapter_mta fake_mta = { f_getpriv,   f_setpriv,    f_getsymval, f_insheader,
                                             f_setreply,  f_setsymlist, f_chgheader, f_quarantine };

/* --- the daemon side ----------------------------------------------------------- */

static struct rules *d_rules(void *arg)
{
    (void)arg;
    return rules_ref(rules);
}

static struct dkim_keys *d_keys(void *arg)
{
    (void)arg;
    return dkim_keys_ref(keys);
}

static bool d_audit(void *arg, const struct audit_rec *rec, struct buf *err)
{
    (void)arg;
    (void)rec;
    if (audit_fails) {
        buf_reset(err);
        buf_puts(err, "journal full");
        return false;
    }
    audits++;
    return true;
}

static struct pl_daemon daemon_ = { .rules_get = d_rules, .keys_get = d_keys, .audit = d_audit, .on_error = PL_TEMPFAIL };
static struct adapter ad;
static struct smfiDesc desc;

static void run(const char *cmd)
{
    ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void setup(void)
{
    log_open("test_adapter", false, false, LOG_LVL_ERR);
    memset(&fk, 0, sizeof fk);
    audit_fails = false;
    audits = 0;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_adapter.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char cmd[512], path[256];
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm ed25519 -out %s/ed.pem 2>/dev/null && mkdir %s/rules", tmpdir, tmpdir);
    run(cmd);
    snprintf(path, sizeof path, "%s/rules/acme.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "tenant: acme\ndomains: [acme.example]\naccounts: {bob@acme.example: {}}\n"
               "dkim:\n  - {domain: acme.example, selector: e1, key: %s/ed.pem}\n", tmpdir);
    fclose(f);
    snprintf(path, sizeof path, "%s/rules", tmpdir);
    struct diags d;
    diags_init(&d);
    rules = rules_load(path, &d, NULL);
    ck_assert_ptr_nonnull(rules);
    keys = dkim_keys_load(rules, false, &d);
    ck_assert_ptr_nonnull(keys);
    diags_free(&d);
    adapter_init(&ad, &daemon_, &fake_mta);
    desc = adapter_desc(&ad, "test");
}

static void teardown(void)
{
    adapter_free(&ad);
    dkim_keys_unref(keys);
    rules_unref(rules);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* Postfix 3's offer: every action and every protocol step it knows. */
#define OFFER_ACTIONS 0x1ffUL
#define OFFER_STEPS 0x1fffffUL

static unsigned long negotiate(unsigned long actions, unsigned long steps, sfsistat *rc)
{
    unsigned long f0 = 0, f1 = 0, f2 = 0, f3 = 0;
    *rc = desc.xxfi_negotiate(CTX, actions, steps, 0, 0, &f0, &f1, &f2, &f3);
    return f1;
}

static sfsistat connect_(void)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "198.51.100.9", &sin.sin_addr);
    return desc.xxfi_connect(CTX, "client.example", (struct sockaddr *)&sin);
}

/* One message; the answers of the stages that may go without reply into
 * *stages (their common answer, or -1 when they differ). */
static sfsistat message(const char *from, sfsistat *stages)
{
    char *mail[] = { "<bob@acme.example>", NULL }, *rcpt[] = { "<r@remote.example>", NULL };
    static const char body[] = "hello\r\n";
    sfsistat r[6];
    r[0] = desc.xxfi_envfrom(CTX, mail);
    r[1] = desc.xxfi_envrcpt(CTX, rcpt);
    r[2] = desc.xxfi_header(CTX, "From", (char *)from);
    r[3] = desc.xxfi_header(CTX, "Subject", " hi");
    r[4] = desc.xxfi_eoh(CTX);
    r[5] = desc.xxfi_body(CTX, (unsigned char *)body, sizeof body - 1);
    *stages = r[0];
    for (int i = 1; i < 6; i++)
        if (r[i] != r[0])
            *stages = -1;
    return desc.xxfi_eom(CTX);
}

START_TEST(test_noreply_and_sign)
{
    fk.auth = "bob@acme.example";
    fk.qid = "4ABC";
    sfsistat rc, stages;
    unsigned long steps = negotiate(OFFER_ACTIONS, OFFER_STEPS, &rc);
    ck_assert_int_eq(rc, SMFIS_CONTINUE);
    ck_assert(steps & SMFIP_NR_HDR);
    ck_assert(steps & SMFIP_HDR_LEADSPC);
    ck_assert_int_eq(fk.symlists, 4);
    ck_assert_int_eq(connect_(), SMFIS_NOREPLY);
    ck_assert_int_eq(message(" bob@acme.example", &stages), SMFIS_CONTINUE);
    ck_assert_int_eq(stages, SMFIS_NOREPLY);
    ck_assert_int_eq(fk.inserted, 1);
    ck_assert_msg(strncmp(fk.header, "DKIM-Signature: v=1; a=ed25519-sha256;", 38) == 0, "%s", fk.header);
    ck_assert_int_eq(audits, 1);
    /* a second message on the same connection, then close */
    ck_assert_int_eq(message(" bob@acme.example", &stages), SMFIS_CONTINUE);
    ck_assert_int_eq(fk.inserted, 2);
    ck_assert_int_eq(desc.xxfi_close(CTX), SMFIS_CONTINUE);
    ck_assert_ptr_null(fk.priv);
    ck_assert_uint_eq(adapter_drain(&ad, 0), 0);
}
END_TEST

START_TEST(test_without_noreply)
{
    /* an MTA that offers no "no reply" steps: every stage answers */
    sfsistat rc, stages;
    fk.auth = "bob@acme.example";
    unsigned long steps = negotiate(OFFER_ACTIONS, SMFIP_HDR_LEADSPC, &rc);
    ck_assert_int_eq(rc, SMFIS_CONTINUE);
    ck_assert_uint_eq(steps & SMFIP_NR_HDR, 0);
    ck_assert_int_eq(connect_(), SMFIS_CONTINUE);
    ck_assert_int_eq(message(" bob@acme.example", &stages), SMFIS_CONTINUE);
    ck_assert_int_eq(stages, SMFIS_CONTINUE);
    ck_assert_int_eq(fk.inserted, 1);
    desc.xxfi_close(CTX);
}
END_TEST

START_TEST(test_refused_negotiation)
{
    sfsistat rc;
    negotiate(SMFIF_ADDHDRS, SMFIP_HDR_LEADSPC, &rc); /* no macro lists */
    ck_assert_int_eq(rc, SMFIS_REJECT);
    negotiate(OFFER_ACTIONS, 0, &rc);                  /* no leading space */
    ck_assert_int_eq(rc, SMFIS_REJECT);
    ck_assert_uint_eq(ad.n_refused, 2);
    desc.xxfi_close(CTX);
}
END_TEST

START_TEST(test_on_error_and_abort)
{
    sfsistat rc, stages;
    fk.auth = "bob@acme.example";
    negotiate(OFFER_ACTIONS, OFFER_STEPS, &rc);
    connect_();
    audit_fails = true;
    ck_assert_int_eq(message(" bob@acme.example", &stages), SMFIS_TEMPFAIL);
    ck_assert_int_eq(fk.inserted, 0);
    ck_assert_str_eq(fk.reply, "451 4.3.0 postern: temporary failure, try again later");
    audit_fails = false;
    /* abort in the middle, then a message that is signed */
    char *mail[] = { "<bob@acme.example>", NULL };
    desc.xxfi_envfrom(CTX, mail);
    desc.xxfi_header(CTX, "From", " bob@acme.example");
    ck_assert_int_eq(desc.xxfi_abort(CTX), SMFIS_CONTINUE);
    ck_assert_int_eq(message(" bob@acme.example", &stages), SMFIS_CONTINUE);
    ck_assert_int_eq(fk.inserted, 1);
    desc.xxfi_close(CTX);
}
END_TEST

START_TEST(test_closed_adapter_refuses)
{
    sfsistat rc;
    ck_assert_uint_eq(adapter_drain(&ad, 0), 0);
    negotiate(OFFER_ACTIONS, OFFER_STEPS, &rc);
    ck_assert_int_eq(rc, SMFIS_REJECT); /* stopping: no new session */
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_noreply_and_sign);
    tcase_add_test(tc, test_without_noreply);
    tcase_add_test(tc, test_refused_negotiation);
    tcase_add_test(tc, test_on_error_and_abort);
    tcase_add_test(tc, test_closed_adapter_refuses);
}

UNIT_MAIN("adapter", add_tests)
