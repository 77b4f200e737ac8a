/* test_auth_dkim.c: unit tests of the DKIM verifier (milter/auth_dkim.c).
 * Keys (RSA-2048, RSA-512, Ed25519) are made by openssl(1) at set-up and
 * published in a key file of libopendkim's "file" query method; messages
 * are signed by the project's signer (dkim_sign.h, keys from a rules
 * directory) and, for what it cannot make (rsa-sha1, l=, x=, t= in the
 * future, a 512-bit key), by libopendkim's dkim_sign() with RSA.  Checked:
 * pass with RSA, Ed25519 and both; a changed body, a changed or added
 * signed header, a missing From: fail; no key, a revoked or broken key, a
 * small key, an expired or future signature, a garbage DKIM-Signature, a
 * key name too long for DNS are permerror; unknown algorithms,
 * canonicalizations, query methods and rsa-sha1 are neutral; an
 * unreadable key file is temperror; l= passes and is reported; no
 * signature gives no result; the cap (7 and 1,000 signatures give
 * max_sigs results, the rest counted, and only max_sigs key lookups,
 * counted by wrapping fopen() of the key file); headers with and without
 * the MTA's leading space and the body in 1-byte chunks give the same
 * results; header.b, d=, s=, a=; bad header names; threads sharing one
 * library.  The DNS query functions are tested against a small DNS
 * responder on the loopback of user, mount and network namespaces of
 * their own, /etc/resolv.conf bind-mounted (skipped where namespaces
 * cannot be made): TXT keys pass, NXDOMAIN and an empty answer are "no
 * key", SERVFAIL, REFUSED and no answer are temperror (within the
 * timeout, not resolv.conf's), a d= that is no DNS name is permerror
 * without a query, threads query at once, and a timeout of 0 keeps
 * resolv.conf's settings. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <dkim.h>

#include "alloc.h"
#include "auth_dkim.h"
#include "buf.h"
#include "diag.h"
#include "dkim_sign.h"
#include "rules.h"
#include "rules_load.h"
#include "unit.h"
#include "unit_dkim.h"

#ifndef MAX_SIGS
#define MAX_SIGS 5
#endif

/* --- counting key lookups: libopendkim's file method opens the key file
 * once per lookup, so the test wraps fopen() (symbol interposition: the
 * program's definition comes first for the library too) ---------------- */

static char keyfile[200];      /* the key file of the file method */
static unsigned long key_lookups;

typedef FILE *(*fopen_fn)(const char *, const char *);

FILE *fopen(const char *restrict path, const char *restrict mode)
{
    static fopen_fn real;
    fopen_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = (fopen_fn)dlsym(RTLD_NEXT, "fopen");
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    if (keyfile[0] != '\0' && strcmp(path, keyfile) == 0)
        __atomic_add_fetch(&key_lookups, 1, __ATOMIC_RELAXED);
    return f(path, mode);
}

static unsigned long lookups(void)
{
    return __atomic_load_n(&key_lookups, __ATOMIC_RELAXED);
}

/* --- fixture: keys, the key file, the signer ------------------------------ */

static char tmpdir[64];
static struct dkim_keys *keys; /* the project's signer */
static char *rsa_pem, *rsa512_pem;

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

static char *read_text(const char *name)
{
    char path[160];
    struct buf b;
    path_in(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    buf_init(&b);
    char chunk[512];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    char *text = buf_detach(&b);
    buf_free(&b);
    return text;
}

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

static const char rules_yaml[] =
    "tenant: acme\n"
    "domains: [acme.example, rsa.acme.example, ed.acme.example, nokey.acme.example]\n"
    "dkim:\n"
    "  - {domain: acme.example, selector: rsa1, key: @/rsa.pem}\n"
    "  - {domain: acme.example, selector: ed1, key: @/ed.pem}\n"
    "  - {domain: rsa.acme.example, selector: r, key: @/rsa.pem}\n"
    "  - {domain: ed.acme.example, selector: e, key: @/ed.pem}\n"
    "  - {domain: nokey.acme.example, selector: gone, key: @/rsa.pem}\n";

static struct dkim_keys *load_signer(void)
{
    char dir[160], file[200];
    struct diags d;
    struct buf text;
    snprintf(dir, sizeof dir, "%s/rules", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    buf_init(&text);
    for (const char *p = rules_yaml; *p; p++)
        if (*p == '@')
            buf_puts(&text, tmpdir);
        else
            buf_putc(&text, *p);
    snprintf(file, sizeof file, "%s/acme.yaml", dir);
    write_text(file, text.data);
    buf_free(&text);
    diags_init(&d);
    struct rules *r = rules_load(dir, &d, NULL);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(r);
    struct dkim_keys *k = dkim_keys_load(r, false, &d);
    diags_print(&d, stderr);
    ck_assert_ptr_nonnull(k);
    diags_free(&d);
    rules_unref(r);
    return k;
}

static void setup(void)
{
    strcpy(tmpdir, "/tmp/postern-dkimv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    genkey("rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
    genkey("rsa-b.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
    genkey("ed.pem", "-algorithm ED25519");
    genkey("rsa512.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:512");
    rsa_pem = read_text("rsa.pem");
    rsa512_pem = read_text("rsa512.pem");

    static const char *const recs[][2] = {
        { "rsa1._domainkey.acme.example", "rsa.pem" }, { "ed1._domainkey.acme.example", "ed.pem" },
        { "r._domainkey.rsa.acme.example", "rsa.pem" }, { "e._domainkey.ed.acme.example", "ed.pem" },
        { "raw._domainkey.raw.example", "rsa.pem" },     { "small._domainkey.raw.example", "rsa512.pem" },
        { "other._domainkey.raw.example", "rsa-b.pem" },
    };
    struct buf text;
    buf_init(&text);
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        buf_printf(&text, "%s\t", recs[i][0]);
        key_record(&text, recs[i][1]);
        buf_putc(&text, '\n');
    }
    buf_puts(&text, "revoked._domainkey.raw.example\tv=DKIM1; k=rsa; p=\n");
    buf_puts(&text, "junk._domainkey.raw.example\tv=DKIM1; k=rsa; p=bm90IGEga2V5\n");
    char path[160];
    path_in(path, sizeof path, "keys.txt");
    write_text(path, text.data);
    buf_free(&text);
    snprintf(keyfile, sizeof keyfile, "%s", path);
    keys = load_signer();
}

static void teardown(void)
{
    char cmd[128];
    dkim_keys_unref(keys);
    mem_free(rsa_pem);
    mem_free(rsa512_pem);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* --- messages --------------------------------------------------------------- */

struct hdr {
    char *name, *value;
};

struct msg {
    struct hdr *h;
    size_t n, cap;
    struct buf body;
};

/* Header values as the MTA passes them: no space after the colon, folds
 * with a bare LF. */
static const char *const base_hdrs[][2] = {
    { "Received", "from client.example (client.example [192.0.2.7])\n\tby mx.example (Postfix) with ESMTPS id 4Qx1Yz" },
    { "From", "Alice Example <alice@acme.example>" },
    { "To", "bob@example.net,\n\tCarol <carol@example.org>" },
    { "Subject", "Quarterly  report,\n  with a folded\tsubject" },
    { "Date", "Tue, 02 Jun 2026 10:00:00 +0000" },
    { "Message-ID", "<20260602100000.1@acme.example>" },
    { "MIME-Version", "1.0" },
    { "Content-Type", "text/plain; charset=utf-8" },
};
#define N_BASE (sizeof base_hdrs / sizeof base_hdrs[0])

static const char base_body[] = "Hello Bob,\r\n"
                                "\r\n"
                                "the figures   are attached.  \r\n"
                                "\tIndented line\r\n"
                                ".a line with a leading dot\r\n"
                                "\r\n"
                                "Alice\r\n"
                                "\r\n";

static void msg_init(struct msg *m)
{
    memset(m, 0, sizeof *m);
    buf_init(&m->body);
}

static void msg_add(struct msg *m, const char *name, const char *value)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->h = mem_grow(m->h, m->cap, sizeof *m->h);
    }
    m->h[m->n].name = mem_strdup(name);
    m->h[m->n++].value = mem_strdup(value);
}

static void msg_base(struct msg *m)
{
    for (size_t i = 0; i < N_BASE; i++)
        msg_add(m, base_hdrs[i][0], base_hdrs[i][1]);
    buf_puts(&m->body, base_body);
}

static void msg_free(struct msg *m)
{
    for (size_t i = 0; i < m->n; i++) {
        mem_free(m->h[i].name);
        mem_free(m->h[i].value);
    }
    mem_free(m->h);
    buf_free(&m->body);
}

static void msg_set(struct msg *m, const char *name, const char *value)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->h[i].name, name) == 0) {
            mem_free(m->h[i].value);
            m->h[i].value = mem_strdup(value);
            return;
        }
    ck_abort_msg("no header %s", name);
}

/* --- signing ---------------------------------------------------------------- */

struct sigs {
    char *v[8];
    size_t n;
};

static void collect(void *arg, const char *selector, const char *algorithm, const char *value)
{
    struct sigs *s = arg;
    (void)selector;
    (void)algorithm;
    ck_assert_uint_lt(s->n, 8);
    s->v[s->n++] = mem_strdup(value);
}

static void sigs_free(struct sigs *s)
{
    for (size_t i = 0; i < s->n; i++)
        mem_free(s->v[i]);
    s->n = 0;
}

/* The project's signer over the base message: one signature per key of
 * the domain, in rule order. */
static void sign(const char *domain, struct sigs *out)
{
    struct buf err;
    buf_init(&err);
    struct dkim_signing *s = dkim_sign_begin(keys, "acme", domain, "job", false, &err);
    ck_assert_msg(s != NULL, "%s", err.data);
    for (size_t i = 0; i < N_BASE; i++)
        ck_assert_msg(dkim_sign_header(s, base_hdrs[i][0], base_hdrs[i][1], &err), "%s", err.data);
    ck_assert(dkim_sign_eoh(s, &err));
    ck_assert(dkim_sign_body(s, (const unsigned char *)base_body, strlen(base_body), &err));
    ck_assert_msg(dkim_sign_end(s, collect, out, &err), "%s", err.data);
    dkim_sign_free(s);
    buf_free(&err);
}

/* "Name: value" with CRLF folds, as libopendkim takes a header. */
static void wire_header(struct buf *b, const char *name, const char *value)
{
    buf_reset(b);
    buf_printf(b, "%s: ", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\n' && (p == value || p[-1] != '\r'))
            buf_putc(b, '\r');
        buf_putc(b, *p);
    }
}

struct raw_opts {
    const char *selector;      /* in raw.example */
    const char *pem;
    dkim_alg_t alg;
    ssize_t length;            /* l=, -1: none */
    uint64_t fixed_time;       /* t= (0: now) */
    uint64_t ttl;              /* x= - t= (0: no x=) */
};

/* libopendkim's own signer (RSA only: its Ed25519 signing leaks), for
 * the signatures the project's signer does not make; the value is
 * returned without "DKIM-Signature: ", folded with "\n\t". */
static char *raw_sign(const struct raw_opts *o)
{
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    DKIM_STAT st;
    unsigned int bits = 512;
    struct buf line;
    ck_assert_ptr_nonnull(lib);
    ck_assert_int_eq(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &bits, sizeof bits), DKIM_STAT_OK);
    if (o->fixed_time != 0)
        ck_assert_int_eq(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, (void *)&o->fixed_time,
                                      sizeof o->fixed_time),
                         DKIM_STAT_OK);
    if (o->ttl != 0)
        ck_assert_int_eq(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNATURETTL, (void *)&o->ttl, sizeof o->ttl),
                         DKIM_STAT_OK);
    DKIM *d = dkim_sign(lib, (const unsigned char *)"raw", NULL, (dkim_sigkey_t)o->pem,
                        (const unsigned char *)o->selector, (const unsigned char *)"raw.example", DKIM_CANON_RELAXED,
                        DKIM_CANON_RELAXED, o->alg, o->length, &st);
    ck_assert_msg(d != NULL, "dkim_sign: %s", dkim_getresultstr(st));
    buf_init(&line);
    for (size_t i = 0; i < N_BASE; i++) {
        wire_header(&line, base_hdrs[i][0], base_hdrs[i][1]);
        ck_assert_int_eq(dkim_header(d, (unsigned char *)line.data, line.len), DKIM_STAT_OK);
    }
    ck_assert_int_eq(dkim_eoh(d), DKIM_STAT_OK);
    ck_assert_int_eq(dkim_body(d, (unsigned char *)(uintptr_t)base_body, strlen(base_body)), DKIM_STAT_OK);
    st = dkim_eom(d, NULL);
    ck_assert_msg(st == DKIM_STAT_OK, "dkim_eom: %s", dkim_geterror(d));
    unsigned char *hdr = NULL;
    size_t len = 0;
    ck_assert_int_eq(dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &hdr, &len), DKIM_STAT_OK);
    buf_reset(&line);
    for (size_t i = 0; i < len; i++)
        if (hdr[i] != '\r')
            buf_putc(&line, (char)hdr[i]);
    dkim_free(d);
    dkim_close(lib);
    char *value = buf_detach(&line);
    buf_free(&line);
    return value;
}

/* The value of tag t of a signature, whitespace removed. */
static void tag(const char *value, const char *t, char *out, size_t size)
{
    size_t n = 0, tl = strlen(t);
    const char *p = value;
    out[0] = '\0';
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';')
            p++;
        if (*p == '\0')
            return;
        if (strncmp(p, t, tl) == 0 && p[tl] == '=')
            break;
        p = strchr(p, ';');
        if (p == NULL)
            return;
    }
    for (p += tl + 1; *p && *p != ';' && n + 1 < size; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            out[n++] = *p;
    out[n] = '\0';
}

/* --- verifying -------------------------------------------------------------- */

struct verdict {
    struct dkimv_sig v[16];
    size_t n, ignored;
};

struct feed {
    size_t chunk;              /* body chunk size (0: the whole body at once) */
    bool leadspace;            /* values with the blank after the colon (SMFIP_HDR_LEADSPC) */
};

static void verify_with(struct dkimv_lib *l, const struct msg *m, const struct feed *f, struct verdict *out)
{
    struct buf err, value;
    buf_init(&err);
    buf_init(&value);
    struct dkimv *v = dkimv_begin(l, "Q1234", &err);
    ck_assert_msg(v != NULL, "%s", err.data);
    for (size_t i = 0; i < m->n; i++) {
        buf_reset(&value);
        if (f->leadspace)
            buf_putc(&value, ' ');
        buf_puts(&value, m->h[i].value);
        ck_assert_msg(dkimv_header(v, m->h[i].name, value.data, &err), "%s", err.data);
    }
    ck_assert_msg(dkimv_eoh(v, &err), "%s", err.data);
    const unsigned char *b = (const unsigned char *)m->body.data;
    size_t len = m->body.len, step = f->chunk ? f->chunk : (len ? len : 1);
    for (size_t off = 0; off < len; off += step)
        ck_assert_msg(dkimv_body(v, b + off, len - off < step ? len - off : step, &err), "%s", err.data);
    memset(out, 0, sizeof *out);
    dkimv_end(v, out->v, sizeof out->v / sizeof out->v[0], &out->n, &out->ignored);
    dkimv_free(v);
    ck_assert_uint_eq(err.len, 0);
    buf_free(&value);
    buf_free(&err);
}

static struct dkimv_lib *lib_new_timeout(const char *kf, unsigned timeout_s)
{
    struct buf err;
    buf_init(&err);
    struct dkimv_lib *l = dkimv_lib_new(MAX_SIGS, kf, timeout_s, &err);
    ck_assert_msg(l != NULL, "%s", err.data);
    buf_free(&err);
    return l;
}

static struct dkimv_lib *lib_new(const char *kf)
{
    return lib_new_timeout(kf, 5);
}

static void verify(const struct msg *m, struct verdict *out)
{
    static const struct feed whole = { 0, false };
    struct dkimv_lib *l = lib_new(keyfile);
    verify_with(l, m, &whole, out);
    dkimv_lib_free(l);
}

static void assert_sig(const struct verdict *vd, size_t i, enum dkimv_result r, const char *reason)
{
    ck_assert_uint_lt(i, vd->n);
    ck_assert_msg(vd->v[i].result == r && strcmp(vd->v[i].reason, reason) == 0,
                  "signature %zu (d=%s s=%s): %s \"%s\", want %s \"%s\"", i, vd->v[i].domain, vd->v[i].selector,
                  dkimv_result_name(vd->v[i].result), vd->v[i].reason, dkimv_result_name(r), reason);
}

/* A message with the given signatures on top of the base headers. */
static void signed_msg(struct msg *m, const struct sigs *s)
{
    msg_init(m);
    for (size_t i = 0; i < s->n; i++)
        msg_add(m, "DKIM-Signature", s->v[i]);
    msg_base(m);
}

/* --- tests ------------------------------------------------------------------ */

START_TEST(rsa_pass)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    char b[64];
    sign("rsa.acme.example", &s);
    signed_msg(&m, &s);
    unsigned long before = lookups();
    verify(&m, &vd);
    ck_assert_uint_eq(lookups() - before, 1);
    ck_assert_uint_eq(vd.n, 1);
    ck_assert_uint_eq(vd.ignored, 0);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    ck_assert_str_eq(vd.v[0].domain, "rsa.acme.example");
    ck_assert_str_eq(vd.v[0].selector, "r");
    ck_assert_str_eq(vd.v[0].algorithm, "rsa-sha256");
    tag(s.v[0], "b", b, sizeof b);
    ck_assert_uint_eq(strlen(vd.v[0].b), 8);
    ck_assert_int_eq(strncmp(vd.v[0].b, b, 8), 0);
    ck_assert(!vd.v[0].partial_body);
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

START_TEST(ed25519_pass)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    char b[128];
    sign("ed.acme.example", &s);
    signed_msg(&m, &s);
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 1);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    ck_assert_str_eq(vd.v[0].domain, "ed.acme.example");
    ck_assert_str_eq(vd.v[0].selector, "e");
    ck_assert_str_eq(vd.v[0].algorithm, "ed25519-sha256");
    tag(s.v[0], "b", b, sizeof b);
    ck_assert_int_eq(strncmp(vd.v[0].b, b, 8), 0);
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* RSA and Ed25519 side by side, reported in header order. */
START_TEST(dual_pass)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    sign("acme.example", &s);
    ck_assert_uint_eq(s.n, 2);
    signed_msg(&m, &s);
    unsigned long before = lookups();
    verify(&m, &vd);
    ck_assert_uint_eq(lookups() - before, 2);
    ck_assert_uint_eq(vd.n, 2);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    assert_sig(&vd, 1, DKIMV_PASS, "");
    ck_assert_str_eq(vd.v[0].selector, "rsa1");
    ck_assert_str_eq(vd.v[0].algorithm, "rsa-sha256");
    ck_assert_str_eq(vd.v[1].selector, "ed1");
    ck_assert_str_eq(vd.v[1].algorithm, "ed25519-sha256");
    ck_assert_str_ne(vd.v[0].b, vd.v[1].b);
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

START_TEST(body_changed)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    sign("acme.example", &s);
    signed_msg(&m, &s);
    buf_puts(&m.body, "P.S. added on the way\r\n");
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 2);
    assert_sig(&vd, 0, DKIMV_FAIL, "body hash mismatch");
    assert_sig(&vd, 1, DKIMV_FAIL, "body hash mismatch");
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* A signed header changed, and a signed header added (oversigned). */
START_TEST(header_changed)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    sign("acme.example", &s);
    signed_msg(&m, &s);
    msg_set(&m, "Subject", "Quarterly report (edited)");
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 2);
    assert_sig(&vd, 0, DKIMV_FAIL, "signature mismatch");
    assert_sig(&vd, 1, DKIMV_FAIL, "signature mismatch");
    msg_free(&m);

    signed_msg(&m, &s);
    msg_add(&m, "Cc", "mallory@example.com");
    verify(&m, &vd);
    assert_sig(&vd, 0, DKIMV_FAIL, "signature mismatch");
    assert_sig(&vd, 1, DKIMV_FAIL, "signature mismatch");
    msg_free(&m);

    /* the From: header gone: fails, and is no error */
    msg_init(&m);
    for (size_t i = 0; i < s.n; i++)
        msg_add(&m, "DKIM-Signature", s.v[i]);
    for (size_t i = 0; i < N_BASE; i++)
        if (strcmp(base_hdrs[i][0], "From") != 0)
            msg_add(&m, base_hdrs[i][0], base_hdrs[i][1]);
    buf_puts(&m.body, base_body);
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 2);
    assert_sig(&vd, 0, DKIMV_FAIL, "signature mismatch");
    assert_sig(&vd, 1, DKIMV_FAIL, "signature mismatch");
    msg_free(&m);

    /* an unsigned header added: still passes */
    signed_msg(&m, &s);
    msg_add(&m, "X-Spam-Score", "0.1");
    verify(&m, &vd);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    assert_sig(&vd, 1, DKIMV_PASS, "");
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* The selector is not in the key file (NXDOMAIN in DNS). */
START_TEST(no_key)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    sign("nokey.acme.example", &s);
    signed_msg(&m, &s);
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 1);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "no key");
    ck_assert_str_eq(vd.v[0].domain, "nokey.acme.example");
    ck_assert_str_eq(vd.v[0].selector, "gone");
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

START_TEST(no_signature)
{
    struct msg m;
    struct verdict vd;
    msg_init(&m);
    msg_base(&m);
    unsigned long before = lookups();
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 0);
    ck_assert_uint_eq(vd.ignored, 0);
    ck_assert_uint_eq(lookups(), before);
    msg_free(&m);

    /* nor without a From: or without any header */
    msg_init(&m);
    msg_add(&m, "Subject", "no sender");
    buf_puts(&m.body, "x\r\n");
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 0);
    msg_free(&m);
    msg_init(&m);
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 0);
    msg_free(&m);
}
END_TEST

/* n signatures on one message: a real RSA and a real Ed25519 one, then
 * well-formed ones of selectors not in the key file, each of its own
 * selector (libopendkim fetches a key once per selector and domain in a
 * message, so each of these would be one more lookup if it were
 * verified). */
static void many(size_t n, struct verdict *vd, unsigned long *looked_up)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct buf fake;
    buf_init(&fake);
    sign("acme.example", &s);
    msg_init(&m);
    for (size_t i = 0; i < n; i++) {
        if (i < 2) {
            msg_add(&m, "DKIM-Signature", s.v[i]);
            continue;
        }
        buf_reset(&fake);
        buf_printf(&fake, "v=1; a=rsa-sha256; c=relaxed/relaxed; d=acme.example; s=fake%zu;\n\t"
                          "h=From:To:Subject:Date; bh=frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=;\n\t"
                          "b=dGhpcyBpcyBub3QgYSBzaWduYXR1cmUgYXQgYWxsIQ==",
                   i);
        msg_add(&m, "DKIM-Signature", fake.data);
    }
    msg_base(&m);
    unsigned long before = lookups();
    verify(&m, vd);
    *looked_up = lookups() - before;
    msg_free(&m);
    sigs_free(&s);
    buf_free(&fake);
}

static void assert_capped(const struct verdict *vd)
{
    ck_assert_uint_eq(vd->n, MAX_SIGS);
    assert_sig(vd, 0, DKIMV_PASS, "");
    assert_sig(vd, 1, DKIMV_PASS, "");
    ck_assert_str_eq(vd->v[0].selector, "rsa1");
    ck_assert_str_eq(vd->v[1].selector, "ed1");
    for (size_t i = 2; i < vd->n; i++) {
        char sel[32];
        snprintf(sel, sizeof sel, "fake%zu", i);
        assert_sig(vd, i, DKIMV_PERMERROR, "no key");
        ck_assert_str_eq(vd->v[i].selector, sel);
    }
}

START_TEST(cap_seven)
{
    struct verdict vd;
    unsigned long n;
    many(7, &vd, &n);
    assert_capped(&vd);
    ck_assert_uint_eq(vd.ignored, 2);
    ck_assert_uint_eq(n, MAX_SIGS);
}
END_TEST

/* A thousand signatures: five key lookups and verifications, the rest
 * counted and never looked at. */
START_TEST(cap_thousand)
{
    struct verdict vd;
    unsigned long n;
    many(1000, &vd, &n);
    assert_capped(&vd);
    ck_assert_uint_eq(vd.ignored, 995);
    ck_assert_uint_eq(n, MAX_SIGS);
}
END_TEST

/* A signature header that does not parse is reported where it stands and
 * costs no lookup; the others are verified. */
START_TEST(garbage_signature)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    sign("rsa.acme.example", &s);
    msg_init(&m);
    msg_add(&m, "DKIM-Signature", "v=1; garbage");
    msg_add(&m, "DKIM-Signature", s.v[0]);
    msg_add(&m, "DKIM-Signature", "v=1; a=rsa-sha256; d=x.example; s=sel; h=from; bh=AAAA; b=\xc3\xa9t\xc3\xa9");
    msg_add(&m, "DKIM-Signature", "");
    msg_add(&m, "DKIM-Signature", "v=1; a=rsa-sha256; s=sel; h=from; bh=AAAA; b=AAAA");
    msg_base(&m);
    unsigned long before = lookups();
    verify(&m, &vd);
    ck_assert_uint_eq(lookups() - before, 1);
    ck_assert_uint_eq(vd.n, 5);
    ck_assert_uint_eq(vd.ignored, 0);
    for (size_t i = 0; i < vd.n; i++)
        if (i != 1) {
            ck_assert_msg(vd.v[i].result == DKIMV_PERMERROR, "%zu: %s", i, dkimv_result_name(vd.v[i].result));
            ck_assert_msg(strncmp(vd.v[i].reason, "bad signature header", 20) == 0, "%zu: %s", i, vd.v[i].reason);
        }
    assert_sig(&vd, 1, DKIMV_PASS, "");
    ck_assert_str_eq(vd.v[0].domain, "");
    ck_assert_str_eq(vd.v[4].domain, "");
    ck_assert_str_eq(vd.v[4].selector, "sel");
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* Well-formed signatures this verifier cannot use, and one whose key
 * name is too long for DNS: one result each in header order, no key
 * lookup; the valid signature after them passes. */
START_TEST(unusable_signatures)
{
    static const struct {
        const char *tags;
        enum dkimv_result r;
        const char *reason;
    } cases[] = {
        { "v=1; a=rsa-sha512; d=acme.example; s=x", DKIMV_NEUTRAL, "unknown algorithm" },
        { "v=1; a=rsa-sha256; c=fancy/relaxed; d=acme.example; s=x", DKIMV_NEUTRAL, "unknown canonicalization" },
        { "v=1; a=rsa-sha256; q=ldap; d=acme.example; s=x", DKIMV_NEUTRAL, "unknown query method" },
        { "v=2; a=rsa-sha256; d=acme.example; s=x", DKIMV_PERMERROR, "bad signature header: unsupported version" },
        { "v=1; a=rsa-sha256; d=acme.example; i=@other.example; s=x", DKIMV_PERMERROR,
          "bad signature header: i= not within d=" },
        { "v=1; a=rsa-sha256; d=acme.example; s=x; t=2000000000; x=1000000000", DKIMV_PERMERROR,
          "expired" },
    };
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    struct buf v;
    buf_init(&v);
    sign("rsa.acme.example", &s);
    msg_init(&m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_reset(&v);
        buf_printf(&v, "%s; h=from:subject; bh=frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=; b=AAAA", cases[i].tags);
        msg_add(&m, "DKIM-Signature", v.data);
    }
    /* s=._domainkey.d= longer than a DNS name */
    buf_reset(&v);
    buf_puts(&v, "v=1; a=rsa-sha256; d=acme.example; h=from; bh=AAAA; b=AAAA; s=");
    for (int i = 0; i < 250; i++)
        buf_putc(&v, 'l');
    msg_add(&m, "DKIM-Signature", v.data);
    msg_add(&m, "DKIM-Signature", s.v[0]);
    msg_base(&m);
    struct dkimv_lib *l = dkimv_lib_new(16, keyfile, 5, &v);
    ck_assert_ptr_nonnull(l);
    static const struct feed whole = { 0, false };
    unsigned long before = lookups();
    verify_with(l, &m, &whole, &vd);
    /* the valid signature's lookup, and two of the long name: libopendkim's
     * file method opens the file before it checks the name (at the end of
     * the headers and again at the end of the message); its DNS method
     * checks the name first and sends nothing */
    ck_assert_uint_eq(lookups() - before, 3);
    ck_assert_uint_eq(vd.n, sizeof cases / sizeof cases[0] + 2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_sig(&vd, i, cases[i].r, cases[i].reason);
    assert_sig(&vd, vd.n - 2, DKIMV_PERMERROR, "bad signature header: s= and d= not a DNS name");
    ck_assert_uint_eq(strlen(vd.v[vd.n - 2].selector), sizeof vd.v[0].selector - 1);
    assert_sig(&vd, vd.n - 1, DKIMV_PASS, "");
    dkimv_lib_free(l);
    msg_free(&m);
    sigs_free(&s);
    buf_free(&v);
}
END_TEST

/* The same results with the MTA's leading space, and with the body one
 * byte at a time. */
START_TEST(feeding)
{
    static const struct feed feeds[] = { { 0, false }, { 0, true }, { 1, false }, { 1, true }, { 7, true } };
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    struct dkimv_lib *l = lib_new(keyfile);
    sign("acme.example", &s);
    signed_msg(&m, &s);
    for (size_t i = 0; i < sizeof feeds / sizeof feeds[0]; i++) {
        verify_with(l, &m, &feeds[i], &vd);
        ck_assert_uint_eq(vd.n, 2);
        assert_sig(&vd, 0, DKIMV_PASS, "");
        assert_sig(&vd, 1, DKIMV_PASS, "");
    }
    buf_puts(&m.body, "tampered\r\n");
    for (size_t i = 0; i < sizeof feeds / sizeof feeds[0]; i++) {
        verify_with(l, &m, &feeds[i], &vd);
        assert_sig(&vd, 0, DKIMV_FAIL, "body hash mismatch");
        assert_sig(&vd, 1, DKIMV_FAIL, "body hash mismatch");
    }
    dkimv_lib_free(l);
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* Header names libopendkim does not take are left out without error. */
START_TEST(bad_header_names)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    sign("acme.example", &s);
    signed_msg(&m, &s);
    msg_add(&m, "Bad Name", "x");
    msg_add(&m, "X-\xc3\x9c", "y");
    msg_add(&m, "A:B", "z");
    msg_add(&m, "", "empty name");
    msg_add(&m, "X-Binary", "caf\xc3\xa9 \x01");
    verify(&m, &vd);
    ck_assert_uint_eq(vd.n, 2);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    assert_sig(&vd, 1, DKIMV_PASS, "");
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* The key file cannot be read: libopendkim's KEYFAIL, as for a DNS
 * timeout or SERVFAIL. */
START_TEST(key_query_failed)
{
    char missing[200];
    struct sigs s = { .n = 0 };
    struct msg m;
    struct verdict vd;
    static const struct feed whole = { 0, false };
    snprintf(missing, sizeof missing, "%s/no-such-file.txt", tmpdir);
    struct dkimv_lib *l = lib_new(missing);
    sign("acme.example", &s);
    signed_msg(&m, &s);
    verify_with(l, &m, &whole, &vd);
    ck_assert_uint_eq(vd.n, 2);
    assert_sig(&vd, 0, DKIMV_TEMPERROR, "key query failed");
    assert_sig(&vd, 1, DKIMV_TEMPERROR, "key query failed");
    dkimv_lib_free(l);
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* One signature of libopendkim's signer on the base message, verified. */
static void raw_verdict(const struct raw_opts *o, const char *extra_body, struct verdict *vd)
{
    struct msg m;
    char *sig = raw_sign(o);
    msg_init(&m);
    msg_add(&m, "DKIM-Signature", sig);
    msg_base(&m);
    if (extra_body != NULL)
        buf_puts(&m.body, extra_body);
    verify(&m, vd);
    ck_assert_uint_eq(vd->n, 1);
    ck_assert_str_eq(vd->v[0].domain, "raw.example");
    ck_assert_str_eq(vd->v[0].selector, o->selector);
    msg_free(&m);
    mem_free(sig);
}

START_TEST(key_problems)
{
    struct verdict vd;
    struct raw_opts o = { "raw", NULL, DKIM_SIGN_RSASHA256, -1, 0, 0 };
    o.pem = rsa_pem;
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    o.selector = "revoked";
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "key revoked");
    o.selector = "junk";
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "bad key record");
    o.selector = "other"; /* another key than the one that signed */
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_FAIL, "signature mismatch");
    o.selector = "small";
    o.pem = rsa512_pem;
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "key too small");
}
END_TEST

START_TEST(timestamps)
{
    struct verdict vd;
    uint64_t now = (uint64_t)time(NULL);
    struct raw_opts o = { "raw", NULL, DKIM_SIGN_RSASHA256, -1, now - 10 * 86400, 86400 };
    o.pem = rsa_pem;
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "expired");
    o.fixed_time = now + 86400;
    o.ttl = 0;
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "timestamp in the future");
    o.fixed_time = now - 60; /* within the clock drift and the TTL */
    o.ttl = 3600;
    raw_verdict(&o, NULL, &vd);
    assert_sig(&vd, 0, DKIMV_PASS, "");
}
END_TEST

/* rsa-sha1 (RFC 8301): not verified, no key lookup, neutral. */
START_TEST(rsa_sha1)
{
    struct verdict vd;
    struct raw_opts o = { "raw", NULL, DKIM_SIGN_RSASHA1, -1, 0, 0 };
    o.pem = rsa_pem;
    unsigned long before = lookups();
    raw_verdict(&o, NULL, &vd);
    ck_assert_uint_eq(lookups(), before);
    assert_sig(&vd, 0, DKIMV_NEUTRAL, "rsa-sha1 not accepted");
    ck_assert_str_eq(vd.v[0].algorithm, "rsa-sha1");
    ck_assert_uint_eq(vd.ignored, 0);
}
END_TEST

/* l=: the text past it is not covered (reported); a body shorter than
 * l= fails. */
START_TEST(body_length)
{
    struct verdict vd;
    struct raw_opts o = { "raw", NULL, DKIM_SIGN_RSASHA256, 20, 0, 0 };
    o.pem = rsa_pem;
    raw_verdict(&o, "appended by someone else\r\n", &vd);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    ck_assert(vd.v[0].partial_body);

    char *sig = raw_sign(&o);
    struct msg m;
    msg_init(&m);
    msg_add(&m, "DKIM-Signature", sig);
    for (size_t i = 0; i < N_BASE; i++)
        msg_add(&m, base_hdrs[i][0], base_hdrs[i][1]);
    buf_puts(&m.body, "Hello\r\n");
    verify(&m, &vd);
    assert_sig(&vd, 0, DKIMV_FAIL, "body shorter than l=");
    msg_free(&m);
    mem_free(sig);
}
END_TEST

START_TEST(lib_errors)
{
    struct buf err;
    buf_init(&err);
    ck_assert_ptr_null(dkimv_lib_new(0, keyfile, 5, &err));
    ck_assert_ptr_nonnull(strstr(err.data, "max_sigs"));
    buf_reset(&err);
    char longpath[5000];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    ck_assert_ptr_null(dkimv_lib_new(1, longpath, 5, &err));
    ck_assert_uint_gt(err.len, 0);
    buf_free(&err);
    ck_assert_str_eq(dkimv_result_name(DKIMV_PASS), "pass");
    ck_assert_str_eq(dkimv_result_name(DKIMV_FAIL), "fail");
    ck_assert_str_eq(dkimv_result_name(DKIMV_NEUTRAL), "neutral");
    ck_assert_str_eq(dkimv_result_name(DKIMV_TEMPERROR), "temperror");
    ck_assert_str_eq(dkimv_result_name(DKIMV_PERMERROR), "permerror");
    /* NULL contexts are no-ops; a context freed without dkimv_end */
    dkimv_lib_free(NULL);
    dkimv_free(NULL);
    struct dkimv_lib *l = lib_new(keyfile);
    struct dkimv *v = dkimv_begin(l, NULL, &err);
    ck_assert(dkimv_header(v, "From", "a@acme.example", &err));
    dkimv_free(v);
    /* dkimv_end without dkimv_eoh, and twice */
    v = dkimv_begin(l, "q", &err);
    struct dkimv_sig one[1];
    size_t n = 9, ign = 9;
    dkimv_end(v, one, 1, &n, &ign);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(ign, 0);
    dkimv_end(v, one, 1, &n, &ign);
    ck_assert_uint_eq(n, 0);
    dkimv_free(v);
    dkimv_lib_free(l);
}
END_TEST

/* Several threads verify with one library at once. */
#define THREADS 4
#define PER_THREAD 8

struct worker {
    struct dkimv_lib *l;
    const struct msg *m;
    int failures;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct buf err;
    buf_init(&err);
    for (int i = 0; i < PER_THREAD; i++) {
        struct dkimv *v = dkimv_begin(w->l, "T", &err);
        bool ok = v != NULL;
        for (size_t h = 0; ok && h < w->m->n; h++)
            ok = dkimv_header(v, w->m->h[h].name, w->m->h[h].value, &err);
        ok = ok && dkimv_eoh(v, &err) &&
             dkimv_body(v, (const unsigned char *)w->m->body.data, w->m->body.len, &err);
        struct dkimv_sig out[4];
        size_t n = 0, ign = 0;
        dkimv_end(v, out, 4, &n, &ign);
        ok = ok && n == 2 && out[0].result == DKIMV_PASS && out[1].result == DKIMV_PASS;
        dkimv_free(v);
        w->failures += !ok;
    }
    buf_free(&err);
    return NULL;
}

START_TEST(threads)
{
    struct sigs s = { .n = 0 };
    struct msg m;
    sign("acme.example", &s);
    signed_msg(&m, &s);
    struct dkimv_lib *l = lib_new(keyfile);
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ l, &m, 0 };
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(w[i].failures, 0);
    }
    dkimv_lib_free(l);
    msg_free(&m);
    sigs_free(&s);
}
END_TEST

/* --- DNS: the query functions against a responder on the loopback of
 * a network namespace of the test's own, where /etc/resolv.conf is
 * bind-mounted to name 127.0.0.1 --------------------------------------- */

enum dns_act { DNS_TXT, DNS_NXDOMAIN, DNS_NODATA, DNS_SERVFAIL, DNS_REFUSED, DNS_DROP };

struct dns_rr {
    const char *name;
    enum dns_act act;
    char *txt;                 /* DNS_TXT */
};

struct dns_server {
    int fd, stop[2];
    struct dns_rr *rrs;
    size_t n_rrs;
    unsigned long queries;
};

/* The question's name, lowercased and dotted; *end: past QTYPE and QCLASS. */
static bool dns_qname(const unsigned char *q, size_t len, char *name, size_t size, size_t *end)
{
    size_t p = 12, n = 0;
    while (p < len && q[p] != 0) {
        size_t l = q[p++];
        if (l > 63 || p + l > len || n + l + 2 > size)
            return false;
        if (n > 0)
            name[n++] = '.';
        for (size_t i = 0; i < l; i++)
            name[n++] = (char)(q[p + i] >= 'A' && q[p + i] <= 'Z' ? q[p + i] + 32 : q[p + i]);
        p += l;
    }
    name[n] = '\0';
    if (p + 5 > len)
        return false;
    *end = p + 5;
    return true;
}

/* The answer to query q, or 0 for none. */
static size_t dns_reply(struct dns_server *sv, const unsigned char *q, size_t len, unsigned char *out, size_t cap)
{
    char name[300];
    size_t qend;
    if (len < 12 || !dns_qname(q, len, name, sizeof name, &qend) || qend + 16 > cap)
        return 0;
    const struct dns_rr *rr = NULL;
    for (size_t i = 0; i < sv->n_rrs; i++)
        if (strcmp(sv->rrs[i].name, name) == 0)
            rr = &sv->rrs[i];
    enum dns_act act = rr != NULL ? rr->act : DNS_NXDOMAIN;
    if (act == DNS_DROP)
        return 0;
    static const unsigned char rcodes[] = { [DNS_TXT] = 0, [DNS_NXDOMAIN] = 3, [DNS_NODATA] = 0,
                                            [DNS_SERVFAIL] = 2, [DNS_REFUSED] = 5 };
    memcpy(out, q, qend);
    out[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
    out[3] = (unsigned char)(0x80 | rcodes[act]);   /* RA, RCODE */
    out[4] = 0, out[5] = 1;                         /* QDCOUNT */
    memset(out + 6, 0, 6);                          /* ANCOUNT, NSCOUNT, ARCOUNT */
    size_t n = qend;
    if (act != DNS_TXT)
        return n;
    out[7] = 1;
    size_t tl = strlen(rr->txt), rdlen = tl + (tl + 254) / 255;
    if (n + 12 + rdlen > cap)
        return 0;
    static const unsigned char head[] = { 0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 1, 44 };
    memcpy(out + n, head, sizeof head);
    n += sizeof head;
    out[n++] = (unsigned char)(rdlen >> 8);
    out[n++] = (unsigned char)rdlen;
    for (size_t off = 0; off < tl; off += 255) {
        size_t l = tl - off < 255 ? tl - off : 255;
        out[n++] = (unsigned char)l;
        memcpy(out + n, rr->txt + off, l);
        n += l;
    }
    return n;
}

static void *dns_serve(void *arg)
{
    struct dns_server *sv = arg;
    unsigned char q[1500], r[4096];
    for (;;) {
        struct pollfd p[2] = { { sv->fd, POLLIN, 0 }, { sv->stop[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 0 || p[1].revents != 0)
            return NULL;
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t len = recvfrom(sv->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (len <= 0)
            continue;
        __atomic_add_fetch(&sv->queries, 1, __ATOMIC_RELAXED);
        size_t n = dns_reply(sv, q, (size_t)len, r, sizeof r);
        if (n > 0)
            (void)sendto(sv->fd, r, n, 0, (struct sockaddr *)&from, fl);
    }
}

static bool write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

/* This process in new user, mount and network namespaces, with lo up and
 * /etc/resolv.conf from resolv.  False when the system does not allow it. */
static bool dns_namespace(const char *resolv)
{
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0)
        return false;
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
    if (!write_file("/proc/self/uid_map", map))
        return false;
    (void)write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
    if (!write_file("/proc/self/gid_map", map))
        return false;
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(resolv, "/etc/resolv.conf", "none", MS_BIND, NULL) != 0)
        return false;
    /* lo up */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    if (up) {
        ifr.ifr_flags |= IFF_UP;
        up = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    }
    if (fd >= 0)
        close(fd);
    return up;
}

static bool dns_start(struct dns_server *sv, pthread_t *t)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sv->fd = socket(AF_INET, SOCK_DGRAM, 0);
    return sv->fd >= 0 && bind(sv->fd, (struct sockaddr *)&a, sizeof a) == 0 && pipe(sv->stop) == 0 &&
           pthread_create(t, NULL, dns_serve, sv) == 0;
}

static void dns_stop(struct dns_server *sv, pthread_t t)
{
    ck_assert_int_eq(write(sv->stop[1], "x", 1), 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    close(sv->fd);
    close(sv->stop[0]);
    close(sv->stop[1]);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One raw.example signature of selector sel, verified through DNS;
 * *seconds: how long it took. */
static void dns_verdict(struct dkimv_lib *l, const char *sel, struct verdict *vd, double *seconds)
{
    static const struct feed whole = { 0, false };
    struct raw_opts o = { sel, NULL, DKIM_SIGN_RSASHA256, -1, 0, 0 };
    struct msg m;
    o.pem = rsa_pem;
    char *sig = raw_sign(&o);
    msg_init(&m);
    msg_add(&m, "DKIM-Signature", sig);
    msg_base(&m);
    double t0 = now_s();
    verify_with(l, &m, &whole, vd);
    *seconds = now_s() - t0;
    ck_assert_uint_eq(vd->n, 1);
    msg_free(&m);
    mem_free(sig);
}

/* In the namespace (a child process): the checks, exit status 0 when
 * they pass. */
static void dns_checks(struct dns_server *sv, const char *resolv)
{
    static const struct feed whole = { 0, false };
    struct verdict vd;
    double secs;
    struct sigs s = { .n = 0 };
    struct msg m;
    struct dkimv_lib *l = lib_new_timeout(NULL, 1);
    dns_verdict(l, "raw", &vd, &secs);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    dns_verdict(l, "nx", &vd, &secs);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "no key");
    dns_verdict(l, "nodata", &vd, &secs);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "no key");
    dns_verdict(l, "servfail", &vd, &secs);
    assert_sig(&vd, 0, DKIMV_TEMPERROR, "key query failed");
    dns_verdict(l, "refused", &vd, &secs);
    assert_sig(&vd, 0, DKIMV_TEMPERROR, "key query failed");
    /* no answer: the timeout (1 s), not resolv.conf's 30 s x 5 */
    unsigned long before = __atomic_load_n(&sv->queries, __ATOMIC_RELAXED);
    dns_verdict(l, "drop", &vd, &secs);
    assert_sig(&vd, 0, DKIMV_TEMPERROR, "key query failed");
    ck_assert_msg(secs >= 0.5 && secs < 10, "the query took %.1f s", secs);
    ck_assert_uint_eq(__atomic_load_n(&sv->queries, __ATOMIC_RELAXED) - before, 1);
    /* a d= that is no DNS name: no query can be made, permerror */
    msg_init(&m);
    msg_add(&m, "DKIM-Signature", "v=1; a=rsa-sha256; d=bad..example; s=x; h=from; bh=AAAA; b=AAAA");
    msg_base(&m);
    before = __atomic_load_n(&sv->queries, __ATOMIC_RELAXED);
    verify_with(l, &m, &whole, &vd);
    ck_assert_uint_eq(__atomic_load_n(&sv->queries, __ATOMIC_RELAXED), before);
    assert_sig(&vd, 0, DKIMV_PERMERROR, "bad signature header: s= and d= not a DNS name");
    msg_free(&m);
    /* RSA and Ed25519 keys as TXT records, one thread after another */
    sign("acme.example", &s);
    signed_msg(&m, &s);
    verify_with(l, &m, &whole, &vd);
    ck_assert_uint_eq(vd.n, 2);
    assert_sig(&vd, 0, DKIMV_PASS, "");
    assert_sig(&vd, 1, DKIMV_PASS, "");
    /* and by several threads at once (each query has its own resolver
     * state) */
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ l, &m, 0 };
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(w[i].failures, 0);
    }
    msg_free(&m);
    sigs_free(&s);
    dkimv_lib_free(l);
    /* timeout 0: the resolver's own settings (glibc reads resolv.conf
     * again when it changes, and RES_OPTIONS with it) */
    write_text(resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    l = lib_new_timeout(NULL, 0);
    dns_verdict(l, "drop", &vd, &secs);
    assert_sig(&vd, 0, DKIMV_TEMPERROR, "key query failed");
    ck_assert_msg(secs >= 0.5 && secs < 10, "the query took %.1f s", secs);
    dkimv_lib_free(l);
}

START_TEST(dns)
{
    char resolv[160];
    path_in(resolv, sizeof resolv, "resolv.conf");
    write_text(resolv, "nameserver 127.0.0.1\noptions timeout:30 attempts:5\n");
    struct buf rsa, ed;
    buf_init(&rsa);
    buf_init(&ed);
    key_record(&rsa, "rsa.pem");
    key_record(&ed, "ed.pem");
    struct dns_rr rrs[] = {
        { "raw._domainkey.raw.example", DNS_TXT, rsa.data },
        { "rsa1._domainkey.acme.example", DNS_TXT, rsa.data },
        { "ed1._domainkey.acme.example", DNS_TXT, ed.data },
        { "nodata._domainkey.raw.example", DNS_NODATA, NULL },
        { "servfail._domainkey.raw.example", DNS_SERVFAIL, NULL },
        { "refused._domainkey.raw.example", DNS_REFUSED, NULL },
        { "drop._domainkey.raw.example", DNS_DROP, NULL },
    };
    struct dns_server sv = { .rrs = rrs, .n_rrs = sizeof rrs / sizeof rrs[0] };
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        pthread_t t;
        if (!dns_namespace(resolv))
            _exit(77);
        if (!dns_start(&sv, &t))
            _exit(78);
        dns_checks(&sv, resolv);
        dns_stop(&sv, t);
        buf_free(&rsa);
        buf_free(&ed);
        exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    buf_free(&rsa);
    buf_free(&ed);
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 77 || WEXITSTATUS(status) == 78)) {
        fprintf(stderr, "test_auth_dkim: %s: DNS checks skipped\n",
                WEXITSTATUS(status) == 77 ? "no user, mount and network namespaces here"
                                          : "cannot serve DNS on 127.0.0.1:53 in the namespace");
        return;
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the DNS checks failed (status %d)", status);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rsa_pass);
    tcase_add_test(tc, ed25519_pass);
    tcase_add_test(tc, dual_pass);
    tcase_add_test(tc, body_changed);
    tcase_add_test(tc, header_changed);
    tcase_add_test(tc, no_key);
    tcase_add_test(tc, no_signature);
    tcase_add_test(tc, cap_seven);
    tcase_add_test(tc, cap_thousand);
    tcase_add_test(tc, garbage_signature);
    tcase_add_test(tc, unusable_signatures);
    tcase_add_test(tc, feeding);
    tcase_add_test(tc, bad_header_names);
    tcase_add_test(tc, key_query_failed);
    tcase_add_test(tc, key_problems);
    tcase_add_test(tc, timestamps);
    tcase_add_test(tc, rsa_sha1);
    tcase_add_test(tc, body_length);
    tcase_add_test(tc, lib_errors);
    tcase_add_test(tc, threads);
    tcase_add_test(tc, dns);
}

UNIT_MAIN("test_auth_dkim", add_tests)
