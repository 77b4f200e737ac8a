/* test_dkim_sign.c: unit tests of the DKIM signer (milter/dkim_sign.c):
 * keys loaded from a rules directory (RSA-2048 and Ed25519 keys made at
 * set-up, the algorithm from the file or from the rule, inactive keys
 * never read), signatures with RSA only, Ed25519 only and both (in rule
 * order), each checked by libopendkim's verifier reading the message as
 * it travels (DKIM_QUERY_FILE instead of DNS) and, when python3-dkim and
 * python3-nacl are installed, by dkimpy as an independent verifier; a
 * changed body, an added From: or Subject: (oversigning) break the
 * signatures, an added unsigned header does not; c= from the rule
 * (simple/simple breaks where relaxed/relaxed holds); header values with
 * and without the MTA's leading space; the lookup (no key, another
 * tenant's domain, case); key files refused with file:line:col (a
 * directory, not PEM, the wrong algorithm, EC, RSA-512, missing,
 * encrypted; PKCS#1 and text before the PEM block are fine); errors
 * of a message without From:; reference counting, and signers on several
 * threads at once. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <dkim.h>

#include "alloc.h"
#include "buf.h"
#include "diag.h"
#include "dkim_sign.h"
#include "rules.h"
#include "rules_load.h"
#include "unit.h"
#include "unit_dkim.h"

#define PYTHON "/usr/bin/python3" /* Debian's, where python3-dkim lives */

/* --- fixture: keys, DNS records, a verifier ------------------------------ */

static char tmpdir[64];
static char dnsfile[128];    /* "selector._domainkey.domain<TAB>record" lines */
static char pyscript[128];
static DKIM_LIB *vlib;       /* libopendkim's verifier, keys from dnsfile */
static bool have_python;

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* A private key file made by openssl(1), outside the test process (fast
 * under valgrind too). */
static void genkey(const char *name, const char *args)
{
    char path[160], cmd[512];
    path_in(path, sizeof path, name);
    snprintf(cmd, sizeof cmd, "openssl genpkey %s -out %s 2>/dev/null", args, path);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

/* The key record of the key file name in the test's directory. */
static void key_record(struct buf *out, const char *name)
{
    char path[160];
    path_in(path, sizeof path, name);
    unit_key_record(out, path);
}

static const char py_verify[] =
    "import sys, dkim\n"
    "recs = {}\n"
    "for line in open(sys.argv[1], 'rb'):\n"
    "    name, _, rec = line.rstrip(b'\\r\\n').partition(b'\\t')\n"
    "    recs[name.lower()] = rec\n"
    "def dns(name, timeout=5):\n"
    "    if isinstance(name, str):\n"
    "        name = name.encode()\n"
    "    return recs.get(name.rstrip(b'.').lower())\n"
    "msg = sys.stdin.buffer.read()\n"
    "d = dkim.DKIM(msg)\n"
    "n = int(sys.argv[2])\n"
    "ok = [d.verify(idx=i, dnsfunc=dns) for i in range(n)]\n"
    "sys.exit(0 if n > 0 and all(ok) else 1)\n";

static void setup(void)
{
    strcpy(tmpdir, "/tmp/postern-dkim-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    genkey("rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
    genkey("rsa-b.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
    genkey("ed.pem", "-algorithm ED25519");
    genkey("ec.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256");
    genkey("rsa512.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:512");
    char path[160], cmd[512];
    path_in(path, sizeof path, "notpem.txt");
    write_text(path, "this is not a key\n");
    /* the same keys as PKCS#1 and after a line of text, one encrypted */
    snprintf(cmd, sizeof cmd, "openssl rsa -in %s/rsa.pem -traditional -out %s/rsa-trad.pem 2>/dev/null", tmpdir,
             tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "(echo 'Key of c._domainkey.fmt.example'; cat %s/ed.pem) > %s/ed-text.pem", tmpdir,
             tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    genkey("enc.pem", "-algorithm ED25519 -aes-128-cbc -pass pass:secret");

    /* the selectors of the rules below and their keys */
    static const char *const recs[][2] = {
        { "rsa1._domainkey.acme.example", "rsa.pem" },   { "ed1._domainkey.acme.example", "ed.pem" },
        { "r._domainkey.rsa.acme.example", "rsa.pem" },  { "e._domainkey.ed.acme.example", "ed.pem" },
        { "s._domainkey.simple.acme.example", "rsa.pem" }, { "g._domainkey.globex.example", "rsa-b.pem" },
        { "t._domainkey.fmt.example", "rsa-trad.pem" },   { "c._domainkey.fmt.example", "ed-text.pem" },
    };
    struct buf dns;
    buf_init(&dns);
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        buf_printf(&dns, "%s\t", recs[i][0]);
        key_record(&dns, recs[i][1]);
        buf_putc(&dns, '\n');
    }
    path_in(dnsfile, sizeof dnsfile, "dns.txt");
    write_text(dnsfile, dns.data);
    buf_free(&dns);

    vlib = dkim_init(NULL, NULL);
    ck_assert_ptr_nonnull(vlib);
    dkim_query_t qm = DKIM_QUERY_FILE;
    ck_assert_int_eq(dkim_options(vlib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof qm), DKIM_STAT_OK);
    ck_assert_int_eq(dkim_options(vlib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, dnsfile, strlen(dnsfile)),
                     DKIM_STAT_OK);

    path_in(pyscript, sizeof pyscript, "verify.py");
    write_text(pyscript, py_verify);
    have_python = access(PYTHON, X_OK) == 0 && system(PYTHON " -c 'import dkim, nacl' 2>/dev/null") == 0;
    if (!have_python)
        fprintf(stderr, "test_dkim_sign: python3-dkim or python3-nacl missing: dkimpy checks skipped\n");
}

static void teardown(void)
{
    char cmd[128];
    dkim_close(vlib);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* --- rules ------------------------------------------------------------------ */

/* yaml with every "@" replaced by the key directory. */
static void expand(struct buf *out, const char *yaml)
{
    for (const char *p = yaml; *p; p++)
        if (*p == '@')
            buf_puts(out, tmpdir);
        else
            buf_putc(out, *p);
}

/* Write yaml (expanded) as the only file of a new rules directory and
 * load it; *file gets its path. */
static struct rules *rules_from(const char *yaml, char *file, size_t fsize, struct diags *d)
{
    char dir[160];
    struct buf text;
    snprintf(dir, sizeof dir, "%s/rules-XXXXXX", tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, fsize, "%s/t.yaml", dir);
    buf_init(&text);
    expand(&text, yaml);
    write_text(file, text.data);
    buf_free(&text);
    return rules_load(dir, d, NULL);
}

static const char acme_yaml[] =
    "tenant: acme\n"
    "domains: [acme.example, rsa.acme.example, ed.acme.example, simple.acme.example, nokey.acme.example]\n"
    "dkim:\n"
    "  - {domain: acme.example, selector: rsa1, key: @/rsa.pem}\n"
    "  - {domain: acme.example, selector: ed1, key: @/ed.pem}\n"
    "  - {domain: acme.example, selector: old, key: @/gone/old.pem, active: false}\n"
    "  - {domain: rsa.acme.example, selector: r, key: @/rsa.pem, algorithm: rsa-sha256}\n"
    "  - {domain: ed.acme.example, selector: e, key: @/ed.pem, algorithm: ed25519-sha256}\n"
    "  - {domain: simple.acme.example, selector: s, key: @/rsa.pem, canonicalization: simple/simple}\n";

/* Two tenants: acme (above) and globex, in two files. */
static struct dkim_keys *load_keys(void)
{
    char dir[160], file[200];
    struct diags d;
    struct buf text;
    diags_init(&d);
    snprintf(dir, sizeof dir, "%s/rules-XXXXXX", tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    buf_init(&text);
    expand(&text, acme_yaml);
    snprintf(file, sizeof file, "%s/acme.yaml", dir);
    write_text(file, text.data);
    buf_reset(&text);
    expand(&text, "tenant: globex\ndomains: [globex.example]\n"
                  "dkim: [{domain: globex.example, selector: g, key: @/rsa-b.pem}]\n");
    snprintf(file, sizeof file, "%s/globex.yaml", dir);
    write_text(file, text.data);
    buf_free(&text);
    struct rules *r = rules_load(dir, &d, NULL);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(r);
    struct dkim_keys *k = dkim_keys_load(r, false, &d);
    diags_print(&d, stderr);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_ptr_nonnull(k);
    diags_free(&d);
    rules_unref(r); /* the key set does not need the snapshot */
    return k;
}

/* --- messages --------------------------------------------------------------- */

struct hdr {
    const char *name, *value;
};

/* Header values as the MTA passes them: no space after the colon, folds
 * with a bare LF. */
static const struct hdr msg_hdrs[] = {
    { "Received", "from client.example (client.example [192.0.2.7])\n\tby mx.example (Postfix) with ESMTPSA id 4Qx1Yz2abc" },
    { "From", "Alice Example <alice@acme.example>" },
    { "To", "bob@example.net,\n\tCarol <carol@example.org>" },
    { "Subject", "Quarterly  report,\n  with a folded\tsubject" },
    { "Date", "Tue, 02 Jun 2026 10:00:00 +0000" },
    { "Message-ID", "<20260602100000.1@acme.example>" },
    { "MIME-Version", "1.0" },
    { "Content-Type", "text/plain; charset=utf-8" },
    { "X-Mailer", "unit test" },
};
#define N_HDRS (sizeof msg_hdrs / sizeof msg_hdrs[0])

static const char msg_body[] = "Hello Bob,\r\n"
                               "\r\n"
                               "the figures   are attached.  \r\n"
                               "\tIndented line\r\n"
                               ".a line with a leading dot\r\n"
                               "\r\n"
                               "Alice\r\n"
                               "\r\n"
                               "\r\n";

struct sig {
    char selector[32], algorithm[32];
    char *value;
};

struct sigs {
    struct sig v[4];
    size_t n;
};

static void collect(void *arg, const char *selector, const char *algorithm, const char *value)
{
    struct sigs *s = arg;
    ck_assert_uint_lt(s->n, 4);
    snprintf(s->v[s->n].selector, sizeof s->v[s->n].selector, "%s", selector);
    snprintf(s->v[s->n].algorithm, sizeof s->v[s->n].algorithm, "%s", algorithm);
    s->v[s->n++].value = mem_strdup(value);
}

static void sigs_free(struct sigs *s)
{
    for (size_t i = 0; i < s->n; i++)
        mem_free(s->v[i].value);
    s->n = 0;
}

/* Sign msg_hdrs (hdrs when not NULL) and msg_body, the body in chunks of
 * 7 bytes (one splits a CRLF); the signatures are appended to out. */
static void sign_hdrs(struct dkim_keys *k, const char *tenant, const char *domain, const struct hdr *hdrs,
                      size_t nh, struct sigs *out)
{
    struct buf err;
    buf_init(&err);
    struct dkim_signing *s = dkim_sign_begin(k, tenant, domain, "4Qx1Yz2abc", false, &err);
    ck_assert_msg(s != NULL, "no signer for %s/%s: %s", tenant, domain, err.data);
    for (size_t i = 0; i < nh; i++)
        ck_assert_msg(dkim_sign_header(s, hdrs[i].name, hdrs[i].value, &err), "%s", err.data);
    ck_assert_msg(dkim_sign_eoh(s, &err), "%s", err.data);
    const unsigned char *b = (const unsigned char *)msg_body;
    size_t len = strlen(msg_body);
    for (size_t off = 0; off < len; off += 7)
        ck_assert_msg(dkim_sign_body(s, b + off, len - off < 7 ? len - off : 7, &err), "%s", err.data);
    ck_assert_msg(dkim_sign_end(s, collect, out, &err), "%s", err.data);
    ck_assert_uint_eq(err.len, 0);
    dkim_sign_free(s);
    buf_free(&err);
}

static void sign(struct dkim_keys *k, const char *tenant, const char *domain, struct sigs *out)
{
    sign_hdrs(k, tenant, domain, msg_hdrs, N_HDRS, out);
}

/* Append "Name: value" with CRLF line ends, as on the wire. */
static void put_header(struct buf *raw, const char *name, const char *value)
{
    buf_printf(raw, "%s: ", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\n' && (p == value || p[-1] != '\r'))
            buf_putc(raw, '\r');
        buf_putc(raw, *p);
    }
    buf_puts(raw, "\r\n");
}

/* The message as delivered: the signatures (sigs[only] alone when only >=
 * 0), the headers in top (added after signing), the headers and the
 * body. */
static void build(struct buf *raw, const struct sigs *s, int only, const struct hdr *top, size_t ntop,
                  const struct hdr *hdrs, size_t nh, const char *body)
{
    buf_reset(raw);
    for (size_t i = 0; i < s->n; i++)
        if (only < 0 || (size_t)only == i)
            put_header(raw, "DKIM-Signature", s->v[i].value);
    for (size_t i = 0; i < ntop; i++)
        put_header(raw, top[i].name, top[i].value);
    for (size_t i = 0; i < nh; i++)
        put_header(raw, hdrs[i].name, hdrs[i].value);
    buf_puts(raw, "\r\n");
    buf_puts(raw, body);
}

/* libopendkim's verdict on a raw message; *passed: signatures that passed
 * with a matching body hash. */
static DKIM_STAT verify_raw(const struct buf *raw, int *passed)
{
    DKIM_STAT st;
    DKIM *d = dkim_verify(vlib, (const unsigned char *)"verify", NULL, &st);
    ck_assert_ptr_nonnull(d);
    (void)dkim_chunk(d, (unsigned char *)raw->data, raw->len);
    (void)dkim_chunk(d, NULL, 0);
    st = dkim_eom(d, NULL);
    DKIM_SIGINFO **sigs = NULL;
    int n = 0;
    *passed = 0;
    if (dkim_getsiglist(d, &sigs, &n) == DKIM_STAT_OK)
        for (int i = 0; i < n; i++)
            if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_PASSED) != 0 &&
                dkim_sig_getbh(sigs[i]) == DKIM_SIGBH_MATCH)
                (*passed)++;
    dkim_free(d);
    return st;
}

/* dkimpy's verdict on every one of nsig signatures (true when it is not
 * installed). */
static bool python_ok(const struct buf *raw, int nsig)
{
    if (!have_python)
        return true;
    char msg[160], cmd[512];
    path_in(msg, sizeof msg, "msg.eml");
    FILE *f = fopen(msg, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(raw->data, 1, raw->len, f), raw->len);
    ck_assert_int_eq(fclose(f), 0);
    snprintf(cmd, sizeof cmd, PYTHON " %s %s %d < %s 2>/dev/null", pyscript, dnsfile, nsig, msg);
    return system(cmd) == 0;
}

/* Every signature alone and all together verify, by both verifiers. */
static void assert_verifies(const struct sigs *s)
{
    struct buf raw;
    int passed;
    buf_init(&raw);
    for (size_t i = 0; i < s->n; i++) {
        build(&raw, s, (int)i, NULL, 0, msg_hdrs, N_HDRS, msg_body);
        ck_assert_msg(verify_raw(&raw, &passed) == DKIM_STAT_OK, "s=%s does not verify:\n%s", s->v[i].selector,
                      raw.data);
        ck_assert_int_eq(passed, 1);
        ck_assert_msg(python_ok(&raw, 1), "dkimpy refuses s=%s:\n%s", s->v[i].selector, raw.data);
    }
    build(&raw, s, -1, NULL, 0, msg_hdrs, N_HDRS, msg_body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_OK);
    ck_assert_int_eq(passed, (int)s->n);
    ck_assert_msg(python_ok(&raw, (int)s->n), "dkimpy refuses:\n%s", raw.data);
    buf_free(&raw);
}

/* The value of tag t (e.g. "c=") of a signature, whitespace removed. */
static void tag(const char *value, const char *t, char *out, size_t size)
{
    const char *p = value;
    size_t n = 0, tl = strlen(t);
    out[0] = '\0';
    while ((p = strstr(p, t)) != NULL) {
        if (p == value || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n')
            break;
        p += tl;
    }
    if (p == NULL)
        return;
    for (p += tl; *p && *p != ';' && n + 1 < size; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            out[n++] = *p;
    out[n] = '\0';
}

/* --- tests ------------------------------------------------------------------ */

START_TEST(load_and_refcount)
{
    struct dkim_keys *k = load_keys();
    /* acme: 5 active (the inactive one points to a missing file), globex: 1 */
    ck_assert_uint_eq(dkim_keys_count(k), 6);
    ck_assert_ptr_eq(dkim_keys_ref(k), k);
    dkim_keys_unref(k);
    ck_assert_uint_eq(dkim_keys_count(k), 6);
    dkim_keys_unref(k);
    dkim_keys_unref(NULL);
    ck_assert_uint_eq(dkim_keys_count(NULL), 0);
}
END_TEST

START_TEST(sign_rsa)
{
    struct dkim_keys *k = load_keys();
    struct sigs s = { .n = 0 };
    char v[256];
    sign(k, "acme", "rsa.acme.example", &s);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_str_eq(s.v[0].selector, "r");
    ck_assert_str_eq(s.v[0].algorithm, "rsa-sha256");
    tag(s.v[0].value, "a=", v, sizeof v);
    ck_assert_str_eq(v, "rsa-sha256");
    tag(s.v[0].value, "c=", v, sizeof v);
    ck_assert_str_eq(v, "relaxed/relaxed");
    tag(s.v[0].value, "d=", v, sizeof v);
    ck_assert_str_eq(v, "rsa.acme.example");
    tag(s.v[0].value, "s=", v, sizeof v);
    ck_assert_str_eq(v, "r");
    /* signed: the recommended headers present, then every oversigned name
     * once more; Received and X-Mailer are not signed */
    tag(s.v[0].value, "h=", v, sizeof v);
    ck_assert_str_eq(v, "From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:from:to:cc:subject:date:"
                        "reply-to:message-id:in-reply-to:references:mime-version:content-type:"
                        "content-transfer-encoding");
    assert_verifies(&s);
    sigs_free(&s);
    dkim_keys_unref(k);
}
END_TEST

START_TEST(sign_ed25519)
{
    struct dkim_keys *k = load_keys();
    struct sigs s = { .n = 0 };
    char v[256];
    sign(k, "acme", "ed.acme.example", &s);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_str_eq(s.v[0].selector, "e");
    ck_assert_str_eq(s.v[0].algorithm, "ed25519-sha256");
    tag(s.v[0].value, "a=", v, sizeof v);
    ck_assert_str_eq(v, "ed25519-sha256");
    assert_verifies(&s);
    sigs_free(&s);
    dkim_keys_unref(k);
}
END_TEST

/* Two keys for one domain, the algorithm taken from the key files: two
 * signatures, in rule order. */
START_TEST(sign_dual)
{
    struct dkim_keys *k = load_keys();
    struct sigs s = { .n = 0 };
    char v[64];
    sign(k, "acme", "acme.example", &s);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(s.v[0].selector, "rsa1");
    ck_assert_str_eq(s.v[0].algorithm, "rsa-sha256");
    ck_assert_str_eq(s.v[1].selector, "ed1");
    ck_assert_str_eq(s.v[1].algorithm, "ed25519-sha256");
    tag(s.v[1].value, "a=", v, sizeof v);
    ck_assert_str_eq(v, "ed25519-sha256");
    assert_verifies(&s);
    sigs_free(&s);
    dkim_keys_unref(k);
}
END_TEST

START_TEST(tampering)
{
    struct dkim_keys *k = load_keys();
    struct sigs s = { .n = 0 };
    struct buf raw;
    int passed;
    buf_init(&raw);
    sign(k, "acme", "acme.example", &s);
    ck_assert_uint_eq(s.n, 2);

    /* one character of the body */
    char *body = mem_strdup(msg_body);
    body[strlen("Hello ")] = 'R';
    build(&raw, &s, -1, NULL, 0, msg_hdrs, N_HDRS, body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_BADSIG);
    ck_assert_int_eq(passed, 0);
    ck_assert(!have_python || !python_ok(&raw, 1));
    mem_free(body);

    /* a From: or Subject: added on top (oversigned: their absence above
     * the signed ones is part of the signature) */
    static const struct hdr from[] = { { "From", "Mallory <mallory@acme.example>" } };
    static const struct hdr subject[] = { { "Subject", "Urgent: wire the money" } };
    build(&raw, &s, -1, from, 1, msg_hdrs, N_HDRS, msg_body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_BADSIG);
    ck_assert_int_eq(passed, 0);
    ck_assert(!have_python || !python_ok(&raw, 1));
    build(&raw, &s, -1, subject, 1, msg_hdrs, N_HDRS, msg_body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_BADSIG);
    ck_assert_int_eq(passed, 0);

    /* the Subject changed in place */
    struct hdr changed[N_HDRS];
    memcpy(changed, msg_hdrs, sizeof changed);
    changed[3].value = "Quarterly report, corrected";
    build(&raw, &s, -1, NULL, 0, changed, N_HDRS, msg_body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_BADSIG);

    /* what relays add on top is not signed and breaks nothing */
    static const struct hdr relay[] = { { "Received", "from mx.example by mx.example.net" },
                                        { "X-Spam-Score", "0.1" } };
    build(&raw, &s, -1, relay, 2, msg_hdrs, N_HDRS, msg_body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_OK);
    ck_assert_int_eq(passed, 2);
    ck_assert(python_ok(&raw, 2));

    buf_free(&raw);
    sigs_free(&s);
    dkim_keys_unref(k);
}
END_TEST

/* c= comes from the rule: simple/simple breaks where relaxed/relaxed
 * survives a re-folded header and trailing blanks in the body. */
START_TEST(canonicalization)
{
    struct dkim_keys *k = load_keys();
    struct sigs relaxed = { .n = 0 }, simple = { .n = 0 };
    struct buf raw;
    char v[64];
    int passed;
    buf_init(&raw);
    sign(k, "acme", "rsa.acme.example", &relaxed);
    sign(k, "acme", "simple.acme.example", &simple);
    ck_assert_uint_eq(simple.n, 1);
    tag(simple.v[0].value, "c=", v, sizeof v);
    ck_assert_str_eq(v, "simple/simple");
    assert_verifies(&simple);

    struct hdr refolded[N_HDRS];
    memcpy(refolded, msg_hdrs, sizeof refolded);
    refolded[3].value = "Quarterly report,\n\twith a folded subject";
    build(&raw, &relaxed, -1, NULL, 0, refolded, N_HDRS, msg_body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_OK);
    ck_assert(python_ok(&raw, 1));
    build(&raw, &simple, -1, NULL, 0, refolded, N_HDRS, msg_body);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_BADSIG);

    const char *blanks = "Hello Bob,  \r\n"
                         "\r\n"
                         "the figures are attached.\r\n"
                         "\tIndented line\r\n"
                         ".a line with a leading dot\r\n"
                         "\r\n"
                         "Alice\r\n";
    build(&raw, &relaxed, -1, NULL, 0, msg_hdrs, N_HDRS, blanks);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_OK);
    build(&raw, &simple, -1, NULL, 0, msg_hdrs, N_HDRS, blanks);
    ck_assert_int_eq(verify_raw(&raw, &passed), DKIM_STAT_BADSIG);

    buf_free(&raw);
    sigs_free(&relaxed);
    sigs_free(&simple);
    dkim_keys_unref(k);
}
END_TEST

/* The value with the MTA's leading space (SMFIP_HDR_LEADSPC), CRLF folds
 * or a line end at the end signs the same header as the bare value; a tab
 * after the colon is kept as the separator. */
START_TEST(header_forms)
{
    struct dkim_keys *k = load_keys();
    struct sigs s = { .n = 0 };
    struct hdr forms[N_HDRS];
    memcpy(forms, msg_hdrs, sizeof forms);
    forms[1].value = " Alice Example <alice@acme.example>";
    forms[2].value = "bob@example.net,\r\n\tCarol <carol@example.org>\r\n";
    forms[4].value = "\tTue, 02 Jun 2026 10:00:00 +0000";
    /* simple/simple: a single byte of difference would break it */
    sign_hdrs(k, "acme", "simple.acme.example", forms, N_HDRS, &s);
    ck_assert_uint_eq(s.n, 1);
    struct buf raw;
    int passed;
    buf_init(&raw);
    put_header(&raw, "DKIM-Signature", s.v[0].value);
    for (size_t i = 0; i < N_HDRS; i++)
        if (i == 1)
            buf_puts(&raw, "From: Alice Example <alice@acme.example>\r\n");
        else if (i == 2)
            buf_puts(&raw, "To: bob@example.net,\r\n\tCarol <carol@example.org>\r\n");
        else if (i == 4)
            buf_puts(&raw, "Date:\tTue, 02 Jun 2026 10:00:00 +0000\r\n");
        else
            put_header(&raw, forms[i].name, forms[i].value);
    buf_puts(&raw, "\r\n");
    buf_puts(&raw, msg_body);
    ck_assert_msg(verify_raw(&raw, &passed) == DKIM_STAT_OK, "%s", raw.data);
    ck_assert_int_eq(passed, 1);
    ck_assert(python_ok(&raw, 1));
    buf_free(&raw);
    sigs_free(&s);
    dkim_keys_unref(k);
}
END_TEST

/* Folded for a 78-column line: "DKIM-Signature: " and the first line,
 * then every continuation line (a tab counts to column 8). */
START_TEST(folding)
{
    struct dkim_keys *k = load_keys();
    struct sigs s = { .n = 0 };
    sign(k, "acme", "acme.example", &s);
    for (size_t i = 0; i < s.n; i++) {
        size_t col = strlen("DKIM-Signature: "), lines = 1;
        for (const char *p = s.v[i].value; *p; p++) {
            if (*p == '\n') {
                ck_assert_msg(col <= 78, "line %zu of s=%s: %zu columns", lines, s.v[i].selector, col);
                col = 0;
                lines++;
                ck_assert_msg(p[1] == '\t' || p[1] == ' ', "continuation line without blank");
            } else {
                ck_assert_msg(*p != '\r', "CR in the value");
                col = *p == '\t' ? (col / 8 + 1) * 8 : col + 1;
            }
        }
        ck_assert_msg(col <= 78, "last line of s=%s: %zu columns", s.v[i].selector, col);
        ck_assert_uint_gt(lines, 2);
    }
    sigs_free(&s);
    dkim_keys_unref(k);
}
END_TEST

START_TEST(lookup)
{
    struct dkim_keys *k = load_keys();
    struct buf err;
    buf_init(&err);
    /* the tenant's domain without a key; a domain of nobody */
    ck_assert_ptr_null(dkim_sign_begin(k, "acme", "nokey.acme.example", "q1", false, &err));
    ck_assert_uint_eq(err.len, 0);
    ck_assert_ptr_null(dkim_sign_begin(k, "acme", "example.com", "q1", false, &err));
    ck_assert_uint_eq(err.len, 0);
    /* another tenant's domain, an unknown tenant */
    ck_assert_ptr_null(dkim_sign_begin(k, "globex", "acme.example", "q1", false, &err));
    ck_assert_ptr_null(dkim_sign_begin(k, "acme", "globex.example", "q1", false, &err));
    ck_assert_ptr_null(dkim_sign_begin(k, "initech", "acme.example", "q1", false, &err));
    ck_assert_uint_eq(err.len, 0);
    /* the inactive key is not used: its domain still has the others */
    struct sigs s = { .n = 0 };
    sign(k, "acme", "acme.example", &s);
    ck_assert_uint_eq(s.n, 2);
    sigs_free(&s);
    /* names compare without case */
    sign(k, "ACME", "Ed.Acme.EXAMPLE", &s);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_str_eq(s.v[0].selector, "e");
    sigs_free(&s);
    sign(k, "globex", "globex.example", &s);
    ck_assert_uint_eq(s.n, 1);
    assert_verifies(&s);
    sigs_free(&s);
    /* no job id */
    struct dkim_signing *sg = dkim_sign_begin(k, "acme", "acme.example", NULL, false, &err);
    ck_assert_ptr_nonnull(sg);
    dkim_sign_free(sg);
    dkim_sign_free(NULL);
    ck_assert_ptr_null(dkim_sign_begin(NULL, "acme", "acme.example", "q1", false, &err));
    buf_free(&err);
    dkim_keys_unref(k);
}
END_TEST

/* Every broken key is reported with its rule's position; the set is
 * refused. */
START_TEST(load_errors)
{
    char file[200];
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_from("tenant: bad\n"
                                 "domains: [bad.example]\n"
                                 "dkim:\n"
                                 "  - {domain: bad.example, selector: dir, key: @}\n"
                                 "  - {domain: bad.example, selector: txt, key: @/notpem.txt}\n"
                                 "  - {domain: bad.example, selector: w1, key: @/ed.pem, algorithm: rsa-sha256}\n"
                                 "  - {domain: bad.example, selector: w2, key: @/rsa.pem, algorithm: ed25519-sha256}\n"
                                 "  - {domain: bad.example, selector: ec, key: @/ec.pem}\n"
                                 "  - {domain: bad.example, selector: small, key: @/rsa512.pem}\n"
                                 "  - {domain: bad.example, selector: gone, key: @/missing.pem}\n"
                                 "  - {domain: bad.example, selector: ok, key: @/rsa.pem}\n"
                                 "  - {domain: bad.example, selector: off, key: @/missing.pem, active: false}\n",
                                 file, sizeof file, &d);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(dkim_keys_load(r, false, &d));
    ck_assert_uint_eq(d.n, 7);
    struct {
        int line;
        const char *key, *why;
    } want[] = {
        { 4, "", "cannot read %s: Is a directory" },
        { 5, "/notpem.txt", "%s is not a private key in PEM format (no \"-----BEGIN\" line)" },
        { 6, "/ed.pem", "%s is an Ed25519 key, not an RSA key as algorithm rsa-sha256 needs" },
        { 7, "/rsa.pem", "%s is an RSA key, not an Ed25519 key as algorithm ed25519-sha256 needs" },
        { 8, "/ec.pem", "%s holds a key of type EC: DKIM signs with RSA (rsa-sha256) or Ed25519 (ed25519-sha256)" },
        { 9, "/rsa512.pem", "%s is an RSA key of 512 bits: DKIM needs at least 1024" },
        { 10, "/missing.pem", "cannot read %s: No such file or directory" },
    };
    for (size_t i = 0; i < 7; i++) {
        char path[160], why[400], expect[700];
        snprintf(path, sizeof path, "%s%s", tmpdir, want[i].key);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(why, sizeof why, want[i].why, path);
#pragma GCC diagnostic pop
        snprintf(expect, sizeof expect, "%s:%d:5: dkim: %s", file, want[i].line, why);
        ck_assert_msg(strncmp(d.msgs[i], expect, strlen(expect)) == 0, "got  %s\nwant %s", d.msgs[i], expect);
    }
    diags_free(&d);
    rules_unref(r);
}
END_TEST

/* keep_broken (the daemon's start): the same errors are reported, the
 * set is kept; a message of the broken key's domain fails naming the key
 * and why, another domain of the same tenant still signs. */
START_TEST(load_keep_broken)
{
    char file[200];
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_from("tenant: half\n"
                                 "domains: [bad.example, good.example]\n"
                                 "dkim:\n"
                                 "  - {domain: bad.example, selector: gone, key: @/missing.pem}\n"
                                 "  - {domain: bad.example, selector: ok, key: @/rsa.pem}\n"
                                 "  - {domain: good.example, selector: ok, key: @/rsa.pem}\n",
                                 file, sizeof file, &d);
    ck_assert_ptr_nonnull(r);
    struct dkim_keys *k = dkim_keys_load(r, true, &d);
    ck_assert_ptr_nonnull(k);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.msgs[0], ":4:5: dkim: cannot read "));
    ck_assert_uint_eq(dkim_keys_count(k), 2);
    ck_assert_uint_eq(dkim_keys_broken(k), 1);
    struct buf err;
    buf_init(&err);
    ck_assert_ptr_null(dkim_sign_begin(k, "half", "bad.example", "q", false, &err));
    ck_assert_msg(strstr(err.data, "dkim: s=gone d=bad.example: the key could not be loaded: cannot read ") != NULL &&
                      strstr(err.data, "missing.pem: No such file or directory") != NULL,
                  "%s", err.data);
    buf_free(&err);
    struct sigs s = { .n = 0 };
    sign(k, "half", "good.example", &s);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_ptr_nonnull(strstr(s.v[0].value, "d=good.example;"));
    sigs_free(&s);
    dkim_keys_unref(k);
    diags_free(&d);
    rules_unref(r);
}
END_TEST

/* Ed25519 with simple header canonicalization is refused at load:
 * libopendkim 2.11's signatures of that kind verify nowhere. */
START_TEST(ed25519_simple_refused)
{
    char file[200];
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_from("tenant: ed\n"
                                 "domains: [ed.example]\n"
                                 "dkim:\n"
                                 "  - {domain: ed.example, selector: e1, key: @/ed.pem, canonicalization: simple/simple}\n"
                                 "  - {domain: ed.example, selector: e2, key: @/ed.pem, canonicalization: relaxed/simple}\n",
                                 file, sizeof file, &d);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(dkim_keys_load(r, false, &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_msg(strstr(d.msgs[0], ":4:5: dkim: ") != NULL &&
                      strstr(d.msgs[0], "ed25519-sha256 with simple header canonicalization (simple/simple) "
                                        "is not supported") != NULL,
                  "%s", d.msgs[0]);
    diags_free(&d);
    rules_unref(r);
}
END_TEST

/* A PKCS#1 RSA key and a PEM block after a line of text are signing
 * keys (libopendkim itself would take neither for Ed25519 or the text);
 * an encrypted key is refused. */
START_TEST(key_formats)
{
    char file[200];
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_from("tenant: fmt\ndomains: [fmt.example]\n"
                                 "dkim:\n"
                                 "  - {domain: fmt.example, selector: t, key: @/rsa-trad.pem}\n"
                                 "  - {domain: fmt.example, selector: c, key: @/ed-text.pem}\n",
                                 file, sizeof file, &d);
    ck_assert_ptr_nonnull(r);
    struct dkim_keys *k = dkim_keys_load(r, false, &d);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(k);
    struct sigs s = { .n = 0 };
    sign(k, "fmt", "fmt.example", &s);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(s.v[0].algorithm, "rsa-sha256");
    ck_assert_str_eq(s.v[1].algorithm, "ed25519-sha256");
    assert_verifies(&s);
    sigs_free(&s);
    dkim_keys_unref(k);
    rules_unref(r);

    r = rules_from("tenant: enc\ndomains: [enc.example]\n"
                   "dkim: [{domain: enc.example, selector: x, key: @/enc.pem}]\n",
                   file, sizeof file, &d);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(dkim_keys_load(r, false, &d));
    ck_assert_uint_eq(d.n, 1);
    char expect[400];
    snprintf(expect, sizeof expect,
             "%s:3:8: dkim: %s/enc.pem is an encrypted private key: postern needs it without a passphrase", file,
             tmpdir);
    ck_assert_str_eq(d.msgs[0], expect);
    diags_free(&d);
    rules_unref(r);
}
END_TEST

/* An empty snapshot and one without active keys give empty sets. */
START_TEST(load_empty)
{
    char file[200];
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_from("tenant: quiet\ndomains: [quiet.example]\n"
                                 "dkim: [{domain: quiet.example, selector: x, key: @/none.pem, active: false}]\n",
                                 file, sizeof file, &d);
    ck_assert_ptr_nonnull(r);
    struct dkim_keys *k = dkim_keys_load(r, false, &d);
    ck_assert_ptr_nonnull(k);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_uint_eq(dkim_keys_count(k), 0);
    struct buf err;
    buf_init(&err);
    ck_assert_ptr_null(dkim_sign_begin(k, "quiet", "quiet.example", "q", false, &err));
    ck_assert_uint_eq(err.len, 0);
    buf_free(&err);
    dkim_keys_unref(k);
    rules_unref(r);
}
END_TEST

/* A message libopendkim cannot sign (no From:) fails with the key named;
 * bad header names are refused. */
START_TEST(message_errors)
{
    struct dkim_keys *k = load_keys();
    struct buf err;
    buf_init(&err);
    struct dkim_signing *s = dkim_sign_begin(k, "acme", "acme.example", "q2", false, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert(!dkim_sign_header(s, "Bad Name", "x", &err));
    ck_assert_ptr_nonnull(strstr(err.data, "invalid header name"));
    buf_reset(&err);
    ck_assert(dkim_sign_header(s, "Subject", "no sender", &err));
    ck_assert(!dkim_sign_eoh(s, &err));
    ck_assert_msg(strstr(err.data, "dkim: s=rsa1 d=acme.example: ") == err.data, "%s", err.data);
    ck_assert_msg(strcasestr(err.data, "from") != NULL, "%s", err.data);
    dkim_sign_free(s);

    /* nothing given to the callback when a signature fails */
    struct sigs out = { .n = 0 };
    buf_reset(&err);
    s = dkim_sign_begin(k, "acme", "acme.example", "q3", false, &err);
    ck_assert(dkim_sign_header(s, "From", "a@acme.example", &err));
    ck_assert(dkim_sign_eoh(s, &err));
    ck_assert(dkim_sign_body(s, (const unsigned char *)"x\r\n", 3, &err));
    ck_assert(dkim_sign_end(s, collect, &out, &err));
    ck_assert_uint_eq(out.n, 2);
    buf_reset(&err);
    ck_assert(!dkim_sign_end(s, collect, &out, &err)); /* twice */
    ck_assert_uint_gt(err.len, 0);
    ck_assert_uint_eq(out.n, 2);
    dkim_sign_free(s);
    sigs_free(&out);
    buf_free(&err);
    dkim_keys_unref(k);
}
END_TEST

/* A signing context keeps its key set: the caller may drop its reference
 * (a reload) while the message is in flight. */
START_TEST(keys_outlive_reload)
{
    struct dkim_keys *k = load_keys();
    struct buf err;
    buf_init(&err);
    struct dkim_signing *s = dkim_sign_begin(k, "acme", "ed.acme.example", "q4", false, &err);
    ck_assert_ptr_nonnull(s);
    dkim_keys_unref(k);
    for (size_t i = 0; i < N_HDRS; i++)
        ck_assert(dkim_sign_header(s, msg_hdrs[i].name, msg_hdrs[i].value, &err));
    ck_assert(dkim_sign_eoh(s, &err));
    ck_assert(dkim_sign_body(s, (const unsigned char *)msg_body, strlen(msg_body), &err));
    struct sigs out = { .n = 0 };
    ck_assert(dkim_sign_end(s, collect, &out, &err));
    dkim_sign_free(s);
    ck_assert_uint_eq(out.n, 1);
    assert_verifies(&out);
    sigs_free(&out);
    buf_free(&err);
}
END_TEST

/* Several threads sign with one key set at once. */
struct worker {
    struct dkim_keys *k;
    int id, failures;
};

#define THREADS 4
#define PER_THREAD 6

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct buf err, raw;
    buf_init(&err);
    buf_init(&raw);
    for (int i = 0; i < PER_THREAD; i++) {
        char job[32];
        struct sigs out = { .n = 0 };
        snprintf(job, sizeof job, "T%d-%d", w->id, i);
        const char *domain = (w->id + i) % 2 ? "acme.example" : "ed.acme.example";
        struct dkim_signing *s = dkim_sign_begin(w->k, "acme", domain, job, false, &err);
        bool ok = s != NULL;
        for (size_t h = 0; ok && h < N_HDRS; h++)
            ok = dkim_sign_header(s, msg_hdrs[h].name, msg_hdrs[h].value, &err);
        ok = ok && dkim_sign_eoh(s, &err) &&
             dkim_sign_body(s, (const unsigned char *)msg_body, strlen(msg_body), &err) &&
             dkim_sign_end(s, collect, &out, &err);
        dkim_sign_free(s);
        if (ok) {
            int passed;
            build(&raw, &out, -1, NULL, 0, msg_hdrs, N_HDRS, msg_body);
            ok = verify_raw(&raw, &passed) == DKIM_STAT_OK && passed == (int)out.n && out.n >= 1;
        }
        w->failures += !ok;
        sigs_free(&out);
        buf_reset(&err);
    }
    buf_free(&raw);
    buf_free(&err);
    return NULL;
}

START_TEST(threads)
{
    struct dkim_keys *k = load_keys();
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ dkim_keys_ref(k), i, 0 };
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    dkim_keys_unref(k);
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(w[i].failures, 0);
        dkim_keys_unref(w[i].k);
    }
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, load_and_refcount);
    tcase_add_test(tc, sign_rsa);
    tcase_add_test(tc, sign_ed25519);
    tcase_add_test(tc, sign_dual);
    tcase_add_test(tc, tampering);
    tcase_add_test(tc, canonicalization);
    tcase_add_test(tc, header_forms);
    tcase_add_test(tc, folding);
    tcase_add_test(tc, lookup);
    tcase_add_test(tc, load_errors);
    tcase_add_test(tc, ed25519_simple_refused);
    tcase_add_test(tc, key_formats);
    tcase_add_test(tc, load_empty);
    tcase_add_test(tc, load_keep_broken);
    tcase_add_test(tc, message_errors);
    tcase_add_test(tc, keys_outlive_reload);
    tcase_add_test(tc, threads);
}

UNIT_MAIN("test_dkim_sign", add_tests)
