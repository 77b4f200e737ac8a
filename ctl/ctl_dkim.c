/* ctl_dkim.c: posternctl's DKIM and DNS commands, what an operator needs
 * to give a tenant working DKIM, SPF and DMARC records:
 *   dkim keygen   makes a DKIM key of a tenant's domain (RSA or Ed25519,
 *                 OpenSSL's EVP API), writes it as PKCS#8 PEM without ever
 *                 showing a partial or world-readable file (a temporary file
 *                 created O_EXCL in the same directory, owner root, the
 *                 daemons' group, mode 0640, fsync, rename), and prints the
 *                 TXT record to publish and, when the rules do not name the
 *                 key yet, the YAML to add to the tenant's file;
 *   dns TENANT    prints every record the tenant should publish: its DKIM
 *                 keys (active and inactive), SPF from its outbound
 *                 addresses, a first DMARC record, A/AAAA records of its
 *                 HELO names (zone-file syntax, or JSON);
 *   dkim check    looks each DKIM key of a tenant up in the DNS (libresolv)
 *                 and compares the published key with the private key file.
 * Published keys follow RFC 6376 and RFC 8463: p= is the base64 of the DER
 * SubjectPublicKeyInfo for RSA and of the raw 32-byte key for Ed25519; a
 * TXT record is a list of strings of at most 255 bytes, which verifiers
 * concatenate. */
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "cidr.h"
#include "ctl.h"
#include "grammar.h"
#include "rules.h"

/* Where keygen puts a key the rules do not name (with --sysconfdir=/etc:
 * /etc/postern/keys). */
#define CTL_DKIM_KEY_DIR POSTERN_SYSCONFDIR "/keys"
#define CTL_DKIM_TXT_CHUNK 255        /* bytes of one TXT character-string */
#define CTL_DKIM_RSA_MIN 1024         /* RFC 8301: verifiers accept 1024..4096 */
#define CTL_DKIM_RSA_MAX 4096
#define CTL_DKIM_RSA_DEFAULT 2048
#define CTL_DKIM_ED25519_LEN 32
#define CTL_DKIM_ANSWER_MAX 65535     /* a DNS message over TCP */

/* The algorithms, numbered as struct dkim_key's algorithm (rules.h). */
enum ctl_dkim_algo { CTL_DKIM_ANY = 0, CTL_DKIM_RSA = 1, CTL_DKIM_ED25519 = 2 };

/* The public half of a key, as published in p=. */
struct ctl_dkim_pub {
    int algo;                  /* enum ctl_dkim_algo */
    int bits;
    struct buf raw;            /* RSA: DER SubjectPublicKeyInfo; Ed25519: 32 bytes */
};

/* --- keys and records ---------------------------------------------------------- */

static const char *ctl_dkim_algo_name(int algo)
{
    return algo == CTL_DKIM_ED25519 ? "ed25519" : "rsa";
}

static const char *ctl_dkim_rule_algo_name(int algo)
{
    return algo == CTL_DKIM_ED25519 ? "ed25519-sha256" : "rsa-sha256";
}

/* Append OpenSSL's last error (and clear its queue). */
static void ctl_dkim_ssl_error(struct buf *err)
{
    char s[256];
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        ERR_error_string_n(e, s, sizeof s);
        buf_printf(err, " (%s)", s);
    }
    ERR_clear_error();
}

/* Never ask for a pass phrase: an encrypted key cannot be used unattended. */
static int ctl_dkim_no_passphrase(char *out, int size, int rwflag, void *arg)
{
    (void)out;
    (void)size;
    (void)rwflag;
    (void)arg;
    return 0;
}

static void ctl_dkim_pub_init(struct ctl_dkim_pub *pub)
{
    memset(pub, 0, sizeof *pub);
    buf_init(&pub->raw);
}

static void ctl_dkim_pub_free(struct ctl_dkim_pub *pub)
{
    buf_free(&pub->raw);
}

/* The public key of k as DKIM publishes it. */
static bool ctl_dkim_pub_derive(EVP_PKEY *k, struct ctl_dkim_pub *pub, struct buf *err)
{
    int id = EVP_PKEY_base_id(k);
    buf_reset(&pub->raw);
    pub->bits = EVP_PKEY_bits(k);
    if (id == EVP_PKEY_RSA) {
        int n = i2d_PUBKEY(k, NULL);
        if (n <= 0) {
            buf_puts(err, "cannot encode the RSA public key");
            ctl_dkim_ssl_error(err);
            return false;
        }
        buf_reserve(&pub->raw, (size_t)n);
        unsigned char *p = (unsigned char *)pub->raw.data;
        i2d_PUBKEY(k, &p);
        pub->raw.len = (size_t)n;
        pub->algo = CTL_DKIM_RSA;
        return true;
    }
    if (id == EVP_PKEY_ED25519) {
        size_t n = 0;
        if (EVP_PKEY_get_raw_public_key(k, NULL, &n) != 1 || n != CTL_DKIM_ED25519_LEN) {
            buf_puts(err, "cannot get the Ed25519 public key");
            ctl_dkim_ssl_error(err);
            return false;
        }
        buf_reserve(&pub->raw, n);
        EVP_PKEY_get_raw_public_key(k, (unsigned char *)pub->raw.data, &n);
        pub->raw.len = n;
        pub->algo = CTL_DKIM_ED25519;
        return true;
    }
    buf_printf(err, "a %s key, not RSA or Ed25519", OBJ_nid2sn(id));
    return false;
}

/* Read the private key file at path and derive its public key; false with
 * err set ("PATH: why"). */
static bool ctl_dkim_key_read(const char *path, struct ctl_dkim_pub *pub, struct buf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        buf_printf(err, "%s: %s", path, strerror(errno));
        return false;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, ctl_dkim_no_passphrase, NULL);
    fclose(f);
    if (k == NULL) {
        buf_printf(err, "%s: not a PEM private key without pass phrase", path);
        ctl_dkim_ssl_error(err);
        return false;
    }
    buf_printf(err, "%s: ", path);
    size_t mark = err->len;
    bool ok = ctl_dkim_pub_derive(k, pub, err);
    EVP_PKEY_free(k);
    if (ok || err->len == mark)
        buf_reset(err);
    return ok;
}

/* "rsa 2048 bits", "ed25519" */
static void ctl_dkim_pub_describe(const struct ctl_dkim_pub *pub, struct buf *out)
{
    if (pub->algo == CTL_DKIM_RSA)
        buf_printf(out, "rsa %d bits", pub->bits);
    else
        buf_puts(out, "ed25519");
}

static void ctl_dkim_b64_encode(const unsigned char *in, size_t n, struct buf *out)
{
    size_t need = 4 * ((n + 2) / 3);
    buf_reserve(out, need + 1);
    int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, in, (int)n);
    out->len += (size_t)w;
    out->data[out->len] = '\0';
}

static int ctl_dkim_b64_value(char ch)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = ch != '\0' ? strchr(alphabet, ch) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

/* Strict base64 with '=' padding; blanks (folding white space) between
 * characters are ignored.  False on any other character or bad padding. */
static bool ctl_dkim_b64_decode(const char *s, struct buf *out)
{
    unsigned acc = 0;
    int nbits = 0, n = 0, pad = 0;
    buf_reset(out);
    for (const char *p = s; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            continue;
        if (*p == '=') {
            pad++;
            n++;
            continue;
        }
        int v = ctl_dkim_b64_value(*p);
        if (v < 0 || pad > 0)
            return false;
        acc = (acc << 6) | (unsigned)v;
        nbits += 6;
        n++;
        if (nbits >= 8) {
            nbits -= 8;
            buf_putc(out, (char)((acc >> nbits) & 0xff));
        }
    }
    /* whole quads; padding only as the quad's last one or two characters,
     * and the bits it pads must be zero */
    return n % 4 == 0 && pad <= 2 && (acc & ((1u << nbits) - 1)) == 0 &&
           (pad == 0 || nbits == (pad == 1 ? 2 : 4));
}

/* "v=DKIM1; k=rsa; p=BASE64" */
static void ctl_dkim_txt_value(const struct ctl_dkim_pub *pub, struct buf *out)
{
    buf_printf(out, "v=DKIM1; k=%s; p=", ctl_dkim_algo_name(pub->algo));
    ctl_dkim_b64_encode((const unsigned char *)pub->raw.data, pub->raw.len, out);
}

/* SELECTOR._domainkey.DOMAIN (no trailing dot) */
static void ctl_dkim_record_name(const char *selector, const char *domain, struct buf *out)
{
    buf_printf(out, "%s._domainkey.%s", selector, domain);
}

/* A TXT value as zone-file character-strings of at most 255 bytes each:
 * "..." "..." (with '"' and '\' escaped). */
static void ctl_dkim_put_strings(FILE *out, const char *value)
{
    size_t n = strlen(value);
    size_t i = 0;
    do {
        size_t end = i + CTL_DKIM_TXT_CHUNK < n ? i + CTL_DKIM_TXT_CHUNK : n;
        fputs(i > 0 ? " \"" : "\"", out);
        for (; i < end; i++) {
            if (value[i] == '"' || value[i] == '\\')
                fputc('\\', out);
            fputc(value[i], out);
        }
        fputc('"', out);
    } while (i < n);
}

/* One zone-file record: NAME. IN TYPE DATA; a TXT value in parentheses
 * when grouped (DKIM keys) or longer than one string. */
static void ctl_dkim_put_record(FILE *out, const char *name, const char *type, const char *value, bool group)
{
    fprintf(out, "%s. IN %s ", name, type);
    if (strcmp(type, "TXT") != 0) {
        fprintf(out, "%s\n", value);
        return;
    }
    group = group || strlen(value) > CTL_DKIM_TXT_CHUNK;
    fputs(group ? "( " : "", out);
    ctl_dkim_put_strings(out, value);
    fputs(group ? " )\n" : "\n", out);
}

/* --- rules ------------------------------------------------------------------- */

static const struct tenant *ctl_dkim_tenant(const struct ctl *c, const struct rules *r, const char *name)
{
    const struct tenant *t = rules_tenant(r, name);
    if (t == NULL)
        fprintf(stderr, "posternctl: no tenant named \"%s\" in %s\n", name, ctl_rules_dir(c));
    return t;
}

static bool ctl_dkim_tenant_owns(const struct tenant *t, const char *domain)
{
    for (size_t i = 0; i < t->n_domains; i++)
        if (strcasecmp(t->domains[i], domain) == 0)
            return true;
    return false;
}

static void ctl_dkim_domain_list(const struct tenant *t, struct buf *out)
{
    for (size_t i = 0; i < t->n_domains; i++)
        buf_printf(out, "%s%s", i > 0 ? ", " : "", t->domains[i]);
}

static const struct dkim_key *ctl_dkim_rule_find(const struct tenant *t, const char *domain, const char *selector)
{
    for (size_t i = 0; i < t->n_dkim; i++)
        if (strcasecmp(t->dkim[i].domain, domain) == 0 && strcasecmp(t->dkim[i].selector, selector) == 0)
            return &t->dkim[i];
    return NULL;
}

static void ctl_dkim_pos(const struct rules_pos *pos, struct buf *out)
{
    buf_printf(out, "%s:%d:%d", pos->file, pos->line, pos->col);
}

/* --- dkim keygen ----------------------------------------------------------------- */

struct ctl_dkim_gen {
    const char *tenant;
    char domain[GRAM_DOMAIN_MAX + 1];
    char selector[GRAM_DOMAIN_MAX + 1];
    const char *out;           /* --out, or NULL */
    int algo;                  /* enum ctl_dkim_algo; CTL_DKIM_ANY: not given */
    uint64_t bits;             /* 0: not given */
    bool force;
};

/* A --domain or --selector value, lowercased into out; false after
 * printing the error. */
static bool ctl_dkim_gen_name(const char *opt, const char *arg, bool selector, char *out, size_t size)
{
    char err[GRAM_ERR_MAX];
    bool ok = selector ? gram_hostname(arg, out, size, err, sizeof err) : gram_domain(arg, out, size, err, sizeof err);
    if (!ok)
        fprintf(stderr, "posternctl: --%s: %s\n", opt, err);
    return ok;
}

/* Parse keygen's options into g: -1 to go on, else the exit code. */
static int ctl_dkim_gen_parse(struct ctl *c, int argc, char **argv, struct ctl_dkim_gen *g)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' }, { "domain", required_argument, NULL, 'd' },
        { "selector", required_argument, NULL, 's' }, { "algo", required_argument, NULL, 'a' },
        { "bits", required_argument, NULL, 'b' },   { "out", required_argument, NULL, 'o' },
        { "force", no_argument, NULL, 'f' },        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },  { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char err[GRAM_ERR_MAX];
    bool have_domain = false, have_selector = false;
    int ch;
    memset(g, 0, sizeof *g);
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 't') {
            g->tenant = optarg;
        } else if (ch == 'd') {
            if (!ctl_dkim_gen_name("domain", optarg, false, g->domain, sizeof g->domain))
                return 2;
            have_domain = true;
        } else if (ch == 's') {
            if (!ctl_dkim_gen_name("selector", optarg, true, g->selector, sizeof g->selector))
                return 2;
            have_selector = true;
        } else if (ch == 'a') {
            if (strcmp(optarg, "rsa") != 0 && strcmp(optarg, "ed25519") != 0) {
                fprintf(stderr, "posternctl: --algo: expected rsa or ed25519, found \"%s\"\n", optarg);
                return 2;
            }
            g->algo = optarg[0] == 'r' ? CTL_DKIM_RSA : CTL_DKIM_ED25519;
        } else if (ch == 'b') {
            if (!gram_uint(optarg, UINT32_MAX, &g->bits, err, sizeof err) || g->bits < CTL_DKIM_RSA_MIN ||
                g->bits > CTL_DKIM_RSA_MAX) {
                fprintf(stderr, "posternctl: --bits: expected %d to %d, found \"%s\"\n", CTL_DKIM_RSA_MIN,
                        CTL_DKIM_RSA_MAX, optarg);
                return 2;
            }
        } else if (ch == 'o') {
            g->out = optarg;
        } else if (ch == 'f') {
            g->force = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    if (optind != argc || g->tenant == NULL || !have_domain || !have_selector || g->algo == CTL_DKIM_ANY)
        return ctl_bad_usage(c);
    if (g->bits != 0 && g->algo != CTL_DKIM_RSA) {
        fprintf(stderr, "posternctl: --bits: only for --algo rsa (Ed25519 keys have one size)\n");
        return 2;
    }
    if (g->algo == CTL_DKIM_RSA && g->bits == 0)
        g->bits = CTL_DKIM_RSA_DEFAULT;
    return -1;
}

/* A new private key; NULL after printing the error. */
static EVP_PKEY *ctl_dkim_generate(int algo, unsigned bits)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(algo == CTL_DKIM_RSA ? EVP_PKEY_RSA : EVP_PKEY_ED25519, NULL);
    bool ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 &&
              (algo != CTL_DKIM_RSA || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1) &&
              EVP_PKEY_keygen(ctx, &k) == 1;
    if (!ok) {
        struct buf err;
        buf_init(&err);
        buf_printf(&err, "cannot generate an %s key", ctl_dkim_algo_name(algo));
        ctl_dkim_ssl_error(&err);
        fprintf(stderr, "posternctl: %s\n", err.data);
        buf_free(&err);
        EVP_PKEY_free(k);
        k = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return k;
}

/* k as PKCS#8 PEM ("BEGIN PRIVATE KEY") into pem; false after printing. */
static bool ctl_dkim_pem_encode(EVP_PKEY *k, struct buf *pem)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    bool ok = b != NULL && PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
              (n = BIO_get_mem_data(b, &data)) > 0;
    if (ok) {
        buf_add(pem, data, (size_t)n);
        OPENSSL_cleanse(data, (size_t)n);
    } else {
        struct buf err;
        buf_init(&err);
        buf_puts(&err, "cannot encode the private key");
        ctl_dkim_ssl_error(&err);
        fprintf(stderr, "posternctl: %s\n", err.data);
        buf_free(&err);
    }
    BIO_free(b);
    return ok;
}

/* The directory part of path ("." for none). */
static void ctl_dkim_dir_of(const char *path, struct buf *out)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        buf_puts(out, ".");
    else if (slash == path)
        buf_puts(out, "/");
    else
        buf_add(out, path, (size_t)(slash - path));
}

/* The group of the key: the primary group of postern.yaml's user when that
 * user exists (the daemons run as it), else the group of the directory
 * (which must exist).  False after printing. */
static bool ctl_dkim_key_group(const struct ctl *c, const char *dir, gid_t *gid, struct buf *why)
{
    const struct passwd *pw = c->conf.user ? getpwnam(c->conf.user) : NULL;
    struct stat st;
    int e = stat(dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if (e != 0) {
        fprintf(stderr, "posternctl: cannot create the key in %s: %s\n", dir, strerror(e));
        if (e == ENOENT)
            fprintf(stderr, "posternctl: create the directory first, e.g.: install -d -m 0750%s%s %s\n",
                    pw ? " -g " : "", pw ? c->conf.user : "", dir);
        return false;
    }
    if (pw != NULL) {
        *gid = pw->pw_gid;
        buf_printf(why, "of user %s", c->conf.user);
    } else {
        *gid = st.st_gid;
        buf_printf(why, "of %s; no user %s", dir, c->conf.user ? c->conf.user : "configured");
    }
    return true;
}

static bool ctl_dkim_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        data += w;
        len -= (size_t)w;
    }
    return true;
}

static void ctl_dkim_dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Fill the temporary file fd: owner root (when root), group gid, mode
 * 0640, the data, fsync.  False after printing. */
static bool ctl_dkim_tmp_fill(int fd, const char *tmp, const char *data, size_t len, gid_t gid)
{
    uid_t owner = geteuid() == 0 ? 0 : (uid_t)-1;
    if (fchown(fd, owner, gid) != 0) {
        if (geteuid() == 0) {
            fprintf(stderr, "posternctl: %s: cannot set owner and group: %s\n", tmp, strerror(errno));
            return false;
        }
        fprintf(stderr, "posternctl: warning: cannot give the key to group %ld (%s): only this user can read it\n",
                (long)gid, strerror(errno));
    }
    if (fchmod(fd, 0640) != 0 || !ctl_dkim_write_all(fd, data, len) || fsync(fd) != 0) {
        fprintf(stderr, "posternctl: cannot write %s: %s\n", tmp, strerror(errno));
        return false;
    }
    return true;
}

/* Write data to path the safe way: a temporary file created O_EXCL (mode
 * 0600) in the same directory, given its owner, group and mode 0640,
 * written and synced, then put in place: rename() when replacing, link()
 * otherwise, so that an existing file is never overwritten without
 * replace, even one created meanwhile.  False after printing. */
static bool ctl_dkim_file_write(const char *path, const char *data, size_t len, gid_t gid, bool replace)
{
    struct buf dir, tmp;
    buf_init(&dir);
    buf_init(&tmp);
    ctl_dkim_dir_of(path, &dir);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    buf_printf(&tmp, "%s/.%s.XXXXXX", dir.data, base);
    bool ok = false;
    int fd = mkostemp(tmp.data, O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "posternctl: cannot create a file in %s: %s\n", dir.data, strerror(errno));
        goto out;
    }
    ok = ctl_dkim_tmp_fill(fd, tmp.data, data, len, gid);
    if (close(fd) != 0 && ok) {
        fprintf(stderr, "posternctl: cannot write %s: %s\n", tmp.data, strerror(errno));
        ok = false;
    }
    if (ok && replace && rename(tmp.data, path) != 0) {
        fprintf(stderr, "posternctl: cannot rename %s to %s: %s\n", tmp.data, path, strerror(errno));
        ok = false;
    } else if (ok && !replace && link(tmp.data, path) != 0) {
        if (errno == EEXIST)
            fprintf(stderr, "posternctl: %s exists (use --force to replace it)\n", path);
        else
            fprintf(stderr, "posternctl: cannot create %s: %s\n", path, strerror(errno));
        ok = false;
    }
    if (!ok || !replace)
        unlink(tmp.data);
    if (ok)
        ctl_dkim_dir_sync(dir.data);
out:
    buf_free(&dir);
    buf_free(&tmp);
    return ok;
}

/* The path of the key: --out (made absolute), else the one the rules name
 * for (domain, selector), else CTL_DKIM_KEY_DIR/D.S.ALGO.pem. */
static void ctl_dkim_gen_path(const struct ctl_dkim_gen *g, const struct dkim_key *rule, struct buf *out)
{
    if (g->out != NULL && g->out[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        buf_printf(out, "%s/%s", cwd ? cwd : ".", g->out);
        free(cwd);
    } else if (g->out != NULL) {
        buf_puts(out, g->out);
    } else if (rule != NULL) {
        buf_puts(out, rule->key_path);
    } else {
        buf_printf(out, "%s/%s.%s.%s.pem", CTL_DKIM_KEY_DIR, g->domain, g->selector, ctl_dkim_algo_name(g->algo));
    }
}

/* Can this key be made for tenant t?  The tenant owns the domain, and a
 * rule that names (domain, selector) with an algorithm names this one.
 * False after printing. */
static bool ctl_dkim_gen_allowed(const struct ctl *c, const struct ctl_dkim_gen *g, const struct tenant *t,
                                 const struct dkim_key *rule)
{
    struct buf s;
    buf_init(&s);
    bool ok = true;
    if (!ctl_dkim_tenant_owns(t, g->domain)) {
        ctl_dkim_pos(t->n_domains ? &t->domain_pos[0] : &t->pos, &s);
        buf_puts(&s, ": domain ");
        buf_puts(&s, g->domain);
        buf_printf(&s, " is not one of tenant %s's domains (", t->name);
        ctl_dkim_domain_list(t, &s);
        fprintf(stderr, "posternctl: %s) in %s\n", s.data, ctl_rules_dir(c));
        ok = false;
    } else if (rule != NULL && rule->algorithm != CTL_DKIM_ANY && rule->algorithm != g->algo) {
        ctl_dkim_pos(&rule->pos, &s);
        fprintf(stderr, "posternctl: %s: the rules sign %s selector %s with algorithm %s, not %s\n", s.data,
                g->domain, g->selector, ctl_dkim_rule_algo_name(rule->algorithm), ctl_dkim_algo_name(g->algo));
        ok = false;
    }
    buf_free(&s);
    return ok;
}

/* "wrote PATH: ..." then the record to publish, then what the rules lack. */
static void ctl_dkim_gen_report(const struct ctl_dkim_gen *g, const struct tenant *t, const struct dkim_key *rule,
                                const char *path, const struct ctl_dkim_pub *pub, const char *group_why)
{
    struct buf what, name, txt, pos;
    buf_init(&what);
    buf_init(&name);
    buf_init(&txt);
    buf_init(&pos);
    struct stat st;
    ctl_dkim_pub_describe(pub, &what);
    if (stat(path, &st) == 0) {
        const struct passwd *pw = getpwuid(st.st_uid);
        const struct group *gr = getgrgid(st.st_gid);
        buf_printf(&what, ", PKCS#8 PEM, owner %s, group %s (%s), mode %04o", pw ? pw->pw_name : "?",
                   gr ? gr->gr_name : "?", group_why, (unsigned)(st.st_mode & 07777));
    }
    printf("wrote %s: %s\n", path, what.data);
    ctl_dkim_record_name(g->selector, g->domain, &name);
    ctl_dkim_txt_value(pub, &txt);
    printf("publish in the zone of %s:\n", g->domain);
    ctl_dkim_put_record(stdout, name.data, "TXT", txt.data, true);
    if (rule == NULL) {
        printf("the rules do not name this key yet: add to %s (tenant %s):\n", t->file, t->name);
        if (t->n_dkim == 0)
            printf("dkim:\n");
        printf("  - {domain: %s, selector: %s, key: %s}\n", g->domain, g->selector, path);
    } else if (strcmp(rule->key_path, path) != 0) {
        ctl_dkim_pos(&rule->pos, &pos);
        printf("note: %s names %s for %s selector %s: set its key: to %s to use this one\n", pos.data,
               rule->key_path, g->domain, g->selector, path);
    }
    buf_free(&what);
    buf_free(&name);
    buf_free(&txt);
    buf_free(&pos);
}

/* Generate, encode and write the key; its public half into pub.  False
 * after printing. */
static bool ctl_dkim_gen_write(const struct ctl *c, const struct ctl_dkim_gen *g, const char *path,
                               struct ctl_dkim_pub *pub, struct buf *group_why)
{
    struct buf pem, dir, err;
    buf_init(&pem);
    buf_init(&dir);
    buf_init(&err);
    gid_t gid;
    bool ok = false;
    ctl_dkim_dir_of(path, &dir);
    EVP_PKEY *k = ctl_dkim_key_group(c, dir.data, &gid, group_why) ? ctl_dkim_generate(g->algo, (unsigned)g->bits)
                                                                   : NULL;
    if (k != NULL && ctl_dkim_pem_encode(k, &pem)) {
        ok = ctl_dkim_pub_derive(k, pub, &err);
        if (!ok)
            fprintf(stderr, "posternctl: %s\n", err.data);
        ok = ok && ctl_dkim_file_write(path, pem.data, pem.len, gid, g->force);
    }
    OPENSSL_cleanse(pem.data, pem.len);
    EVP_PKEY_free(k);
    buf_free(&pem);
    buf_free(&dir);
    buf_free(&err);
    return ok;
}

int ctl_dkim_keygen(struct ctl *c, int argc, char **argv)
{
    struct ctl_dkim_gen g;
    int rc = ctl_dkim_gen_parse(c, argc, argv, &g);
    if (rc >= 0)
        return rc;
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    const struct tenant *t = ctl_dkim_tenant(c, r, g.tenant);
    const struct dkim_key *rule = t ? ctl_dkim_rule_find(t, g.domain, g.selector) : NULL;
    struct buf path, why;
    buf_init(&path);
    buf_init(&why);
    struct ctl_dkim_pub pub;
    ctl_dkim_pub_init(&pub);
    struct stat st;
    rc = 1;
    if (t == NULL || !ctl_dkim_gen_allowed(c, &g, t, rule))
        goto out;
    ctl_dkim_gen_path(&g, rule, &path);
    if (!g.force && lstat(path.data, &st) == 0) {
        fprintf(stderr, "posternctl: %s exists (use --force to replace it; the old key then no longer matches "
                        "its published record)\n", path.data);
        goto out;
    }
    if (g.algo == CTL_DKIM_RSA && g.bits < CTL_DKIM_RSA_DEFAULT)
        fprintf(stderr, "posternctl: warning: an RSA key of %u bits is weak; use %d bits or more\n",
                (unsigned)g.bits, CTL_DKIM_RSA_DEFAULT);
    if (!ctl_dkim_gen_write(c, &g, path.data, &pub, &why))
        goto out;
    ctl_dkim_gen_report(&g, t, rule, path.data, &pub, why.data);
    rc = 0;
out:
    ctl_dkim_pub_free(&pub);
    buf_free(&path);
    buf_free(&why);
    rules_unref(r);
    return rc;
}

/* --- dns TENANT ---------------------------------------------------------------------- */

/* One record a tenant should publish. */
struct ctl_dkim_rr {
    const char *kind;          /* "dkim", "spf", "dmarc", "helo" */
    char *name;                /* without the trailing dot */
    const char *type;          /* "TXT", "A", "AAAA" */
    char *value;               /* NULL: cannot be given, the note says why */
    char *note;                /* a comment on the record, or NULL */
    const struct dkim_key *key;   /* kind "dkim" */
};

struct ctl_dkim_rrs {
    struct ctl_dkim_rr *v;
    size_t n;
    bool incomplete;           /* a record could not be computed (a key file) */
};

/* Add a copy of a record (value and note may be NULL); returns it. */
static struct ctl_dkim_rr *ctl_dkim_rrs_add(struct ctl_dkim_rrs *s, const char *kind, const char *name,
                                            const char *type, const char *value, const char *note)
{
    s->v = mem_grow(s->v, s->n + 1, sizeof *s->v);
    struct ctl_dkim_rr *rr = &s->v[s->n++];
    memset(rr, 0, sizeof *rr);
    rr->kind = kind;
    rr->name = mem_strdup(name);
    rr->type = type;
    rr->value = value ? mem_strdup(value) : NULL;
    rr->note = note ? mem_strdup(note) : NULL;
    return rr;
}

static bool ctl_dkim_rrs_has(const struct ctl_dkim_rrs *s, const char *name, const char *value)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0 && s->v[i].value && strcmp(s->v[i].value, value) == 0)
            return true;
    return false;
}

static void ctl_dkim_rrs_free(struct ctl_dkim_rrs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        mem_free(s->v[i].name);
        mem_free(s->v[i].value);
        mem_free(s->v[i].note);
    }
    mem_free(s->v);
}

/* The TXT record of each DKIM key of t, computed from its private key. */
static void ctl_dkim_rrs_dkim(const struct tenant *t, struct ctl_dkim_rrs *s)
{
    for (size_t i = 0; i < t->n_dkim; i++) {
        const struct dkim_key *k = &t->dkim[i];
        struct buf name, value, note, err;
        buf_init(&name);
        buf_init(&value);
        buf_init(&note);
        buf_init(&err);
        struct ctl_dkim_pub pub;
        ctl_dkim_pub_init(&pub);
        ctl_dkim_record_name(k->selector, k->domain, &name);
        buf_printf(&note, "%s selector %s: %s, ", k->domain, k->selector,
                   k->active ? "active" : "inactive (published, no longer signing)");
        if (ctl_dkim_key_read(k->key_path, &pub, &err)) {
            ctl_dkim_txt_value(&pub, &value);
            ctl_dkim_pub_describe(&pub, &note);
            buf_printf(&note, ", key %s (", k->key_path);
        } else {
            buf_printf(&note, "cannot read its key: %s (", err.data);
            s->incomplete = true;
        }
        ctl_dkim_pos(&k->pos, &note);
        buf_putc(&note, ')');
        ctl_dkim_rrs_add(s, "dkim", name.data, "TXT", value.len ? value.data : NULL, note.data)->key = k;
        ctl_dkim_pub_free(&pub);
        buf_free(&name);
        buf_free(&value);
        buf_free(&note);
        buf_free(&err);
    }
}

/* Add o's addresses to ips (each once); shared with ctl_reputation.c. */
void ctl_dkim_ips_add(const struct outbound *o, struct ipaddr **ips, size_t *n)
{
    for (size_t i = 0; o->set && i < o->n_ips; i++) {
        size_t j = 0;
        while (j < *n && memcmp(&(*ips)[j], &o->ips[i], sizeof o->ips[i]) != 0)
            j++;
        if (j == *n) {
            *ips = mem_grow(*ips, *n + 1, sizeof **ips);
            (*ips)[(*n)++] = o->ips[i];
        }
    }
}

/* "v=spf1 ip4:... ip6:... -all" of the tenant's and its accounts' outbound
 * addresses, IPv4 first; false when there is none.  Shared with
 * ctl_reputation.c. */
bool ctl_dkim_spf_value(const struct tenant *t, struct buf *out)
{
    struct ipaddr *ips = NULL;
    size_t n = 0;
    char a[64];
    ctl_dkim_ips_add(&t->outbound, &ips, &n);
    for (size_t i = 0; i < t->n_accounts; i++)
        ctl_dkim_ips_add(&t->accounts[i].outbound, &ips, &n);
    buf_puts(out, "v=spf1");
    for (int v4 = 1; v4 >= 0; v4--)
        for (size_t i = 0; i < n; i++)
            if (ipaddr_is_v4(&ips[i]) == (v4 == 1))
                buf_printf(out, " ip%c:%s", v4 ? '4' : '6', ipaddr_format(&ips[i], a, sizeof a));
    buf_puts(out, " -all");
    mem_free(ips);
    return n > 0;
}

/* SPF and DMARC of each of t's domains. */
static void ctl_dkim_rrs_domains(const struct tenant *t, struct ctl_dkim_rrs *s)
{
    struct buf spf;
    buf_init(&spf);
    bool have_ips = ctl_dkim_spf_value(t, &spf);
    for (size_t i = 0; i < t->n_domains; i++) {
        struct buf note;
        buf_init(&note);
        if (!have_ips)
            buf_printf(&note, "%s: no outbound ips in the rules of tenant %s: publish the addresses its mail "
                              "leaves from (\"v=spf1 ip4:ADDRESS -all\")", t->domains[i], t->name);
        ctl_dkim_rrs_add(s, "spf", t->domains[i], "TXT", have_ips ? spf.data : NULL, note.len ? note.data : NULL);
        buf_free(&note);
    }
    for (size_t i = 0; i < t->n_domains; i++) {
        struct buf name, value;
        buf_init(&name);
        buf_init(&value);
        buf_printf(&name, "_dmarc.%s", t->domains[i]);
        buf_printf(&value, "v=DMARC1; p=none; rua=mailto:dmarc-reports@%s", t->domains[i]);
        ctl_dkim_rrs_add(s, "dmarc", name.data, "TXT", value.data, NULL);
        buf_free(&name);
        buf_free(&value);
    }
    buf_free(&spf);
}

/* A/AAAA records of o's HELO name to its addresses. */
static void ctl_dkim_rrs_helo(const struct outbound *o, struct ctl_dkim_rrs *s)
{
    char a[64];
    if (!o->set || o->helo == NULL)
        return;
    if (o->n_ips == 0) {
        struct buf note;
        buf_init(&note);
        buf_printf(&note, "HELO name %s of transport %s: its addresses are set in master.cf by hand: give the "
                          "name an A or AAAA record to each", o->helo, o->transport);
        ctl_dkim_rrs_add(s, "helo", o->helo, "A", NULL, note.data);
        buf_free(&note);
        return;
    }
    for (size_t i = 0; i < o->n_ips; i++) {
        ipaddr_format(&o->ips[i], a, sizeof a);
        if (!ctl_dkim_rrs_has(s, o->helo, a))
            ctl_dkim_rrs_add(s, "helo", o->helo, ipaddr_is_v4(&o->ips[i]) ? "A" : "AAAA", a, NULL);
    }
}

static void ctl_dkim_rrs_collect(const struct tenant *t, struct ctl_dkim_rrs *s)
{
    ctl_dkim_rrs_dkim(t, s);
    ctl_dkim_rrs_domains(t, s);
    ctl_dkim_rrs_helo(&t->outbound, s);
    for (size_t i = 0; i < t->n_accounts; i++)
        ctl_dkim_rrs_helo(&t->accounts[i].outbound, s);
}

/* The sections of the zone-file output, in order. */
static const struct ctl_dkim_section {
    const char *kind, *title, *none;
} ctl_dkim_sections[] = {
    { "dkim", "DKIM keys (posternctl dkim check compares them with the DNS)",
      "no dkim keys in the rules (posternctl dkim keygen makes one)" },
    { "spf", "SPF: the addresses the tenant's mail leaves from", NULL },
    { "dmarc", "DMARC: a start that only asks for reports; tighten p= once they show only the tenant's own mail",
      NULL },
    { "helo", "HELO names of the outbound transports (and a PTR from each address back to its name)",
      "no HELO names in the rules" },
};

static void ctl_dkim_zone_print(const struct tenant *t, const struct ctl_dkim_rrs *s, FILE *out)
{
    fprintf(out, "; records to publish for tenant %s (%s)\n", t->name, t->file);
    for (size_t k = 0; k < sizeof ctl_dkim_sections / sizeof ctl_dkim_sections[0]; k++) {
        const struct ctl_dkim_section *sec = &ctl_dkim_sections[k];
        size_t n = 0;
        fprintf(out, ";\n; %s\n", sec->title);
        for (size_t i = 0; i < s->n; i++) {
            const struct ctl_dkim_rr *rr = &s->v[i];
            if (strcmp(rr->kind, sec->kind) != 0)
                continue;
            n++;
            if (rr->note)
                fprintf(out, "; %s\n", rr->note);
            if (rr->value)
                ctl_dkim_put_record(out, rr->name, rr->type, rr->value, strcmp(rr->kind, "dkim") == 0);
        }
        if (n == 0 && sec->none)
            fprintf(out, "; %s\n", sec->none);
    }
}

static void ctl_dkim_json_field(FILE *out, const char *name, const char *value)
{
    fprintf(out, ", \"%s\": ", name);
    ctl_put_json(out, value);
}

static void ctl_dkim_json_print(const struct tenant *t, const struct ctl_dkim_rrs *s, FILE *out)
{
    fputs("{\"tenant\": ", out);
    ctl_put_json(out, t->name);
    ctl_dkim_json_field(out, "file", t->file);
    fputs(", \"records\": [", out);
    for (size_t i = 0; i < s->n; i++) {
        const struct ctl_dkim_rr *rr = &s->v[i];
        struct buf fqdn;
        buf_init(&fqdn);
        buf_printf(&fqdn, "%s.", rr->name);
        fprintf(out, "%s\n {\"kind\": ", i ? "," : "");
        ctl_put_json(out, rr->kind);
        ctl_dkim_json_field(out, "name", fqdn.data);
        ctl_dkim_json_field(out, "type", rr->type);
        ctl_dkim_json_field(out, "value", rr->value);
        ctl_dkim_json_field(out, "note", rr->note);
        if (rr->key) {
            ctl_dkim_json_field(out, "domain", rr->key->domain);
            ctl_dkim_json_field(out, "selector", rr->key->selector);
            fprintf(out, ", \"active\": %s", rr->key->active ? "true" : "false");
            ctl_dkim_json_field(out, "key", rr->key->key_path);
        }
        fputc('}', out);
        buf_free(&fqdn);
    }
    fputs("\n]}\n", out);
}

int ctl_dkim_dns(struct ctl *c, int argc, char **argv)
{
    bool json;
    int rc = ctl_json_opts(c, argc, argv, &json);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1)
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    const struct tenant *t = ctl_dkim_tenant(c, r, argv[optind]);
    if (t == NULL) {
        rules_unref(r);
        return 1;
    }
    struct ctl_dkim_rrs s;
    memset(&s, 0, sizeof s);
    ctl_dkim_rrs_collect(t, &s);
    if (json)
        ctl_dkim_json_print(t, &s, stdout);
    else
        ctl_dkim_zone_print(t, &s, stdout);
    rc = s.incomplete ? 1 : 0;
    ctl_dkim_rrs_free(&s);
    rules_unref(r);
    return rc;
}

/* --- dkim check TENANT ------------------------------------------------------------- */

/* What the DNS holds for a key, best first (of several TXT records at one
 * name, the worst counts). */
enum ctl_dkim_state {
    CTL_DKIM_OK,
    CTL_DKIM_MISMATCH,         /* another key is published */
    CTL_DKIM_REVOKED,          /* empty p= */
    CTL_DKIM_BAD,              /* the record cannot be read as a key record */
    CTL_DKIM_MISSING,          /* NXDOMAIN, or no TXT record */
    CTL_DKIM_UNREADABLE,       /* the private key file */
    CTL_DKIM_ERROR,            /* the DNS did not answer */
};

static const char *const ctl_dkim_state_names[] = { "OK", "MISMATCH", "REVOKED", "BAD", "MISSING", "UNREADABLE",
                                                    "ERROR" };

/* The TXT records at one name, each one's strings concatenated. */
struct ctl_dkim_txts {
    struct buf *v;
    size_t n;
};

static void ctl_dkim_txts_free(struct ctl_dkim_txts *t)
{
    for (size_t i = 0; i < t->n; i++)
        buf_free(&t->v[i]);
    mem_free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* Concatenate the character-strings of a TXT RDATA into out; false when
 * they overrun it. */
static bool ctl_dkim_txt_strings(const unsigned char *rdata, size_t rdlen, struct buf *out)
{
    size_t p = 0;
    while (p < rdlen) {
        size_t l = rdata[p++];
        if (l > rdlen - p)
            return false;
        buf_add(out, rdata + p, l);
        p += l;
    }
    return true;
}

/* The TXT records of an answer (ns_initparse/ns_parserr; CNAMEs in the
 * answer are skipped).  False with err set on a malformed answer. */
static bool ctl_dkim_answer_parse(const unsigned char *answer, int len, struct ctl_dkim_txts *out, struct buf *err)
{
    ns_msg msg;
    ns_rr rr;
    if (ns_initparse(answer, len, &msg) < 0) {
        buf_puts(err, "malformed DNS answer");
        return false;
    }
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
            buf_puts(err, "malformed record in the DNS answer");
            return false;
        }
        if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
            continue;
        out->v = mem_grow(out->v, out->n + 1, sizeof *out->v);
        buf_init(&out->v[out->n]);
        if (!ctl_dkim_txt_strings(ns_rr_rdata(rr), ns_rr_rdlen(rr), &out->v[out->n++])) {
            buf_puts(err, "malformed TXT record in the DNS answer");
            return false;
        }
    }
    return true;
}

/* Look the TXT records of name up into out: CTL_DKIM_OK when there is at
 * least one, CTL_DKIM_MISSING (err says NXDOMAIN or no TXT record), or
 * CTL_DKIM_ERROR with err set. */
static int ctl_dkim_txt_lookup(res_state rs, const char *name, unsigned char *answer, struct ctl_dkim_txts *out,
                               struct buf *err)
{
    int n = res_nquery(rs, name, ns_c_in, ns_t_txt, answer, CTL_DKIM_ANSWER_MAX);
    if (n < 0) {
        switch (rs->res_h_errno) {
        case HOST_NOT_FOUND:
            buf_puts(err, "no such name (NXDOMAIN)");
            return CTL_DKIM_MISSING;
        case NO_DATA:
            buf_puts(err, "no TXT record at the name");
            return CTL_DKIM_MISSING;
        case TRY_AGAIN:
            buf_puts(err, "no answer from the DNS (time-out or SERVFAIL)");
            return CTL_DKIM_ERROR;
        default:
            buf_printf(err, "the DNS lookup failed: %s", hstrerror(rs->res_h_errno));
            return CTL_DKIM_ERROR;
        }
    }
    if (n > CTL_DKIM_ANSWER_MAX) {
        buf_puts(err, "the DNS answer is too large");
        return CTL_DKIM_ERROR;
    }
    if (!ctl_dkim_answer_parse(answer, n, out, err))
        return CTL_DKIM_ERROR;
    if (out->n == 0) {
        buf_puts(err, "no TXT record at the name");
        return CTL_DKIM_MISSING;
    }
    return CTL_DKIM_OK;
}

/* The tags of a key record the check reads (RFC 6376 3.6.1). */
struct ctl_dkim_tags {
    char *k;                   /* NULL: rsa */
    char *p;                   /* NULL: absent */
};

static void ctl_dkim_trim(char **s)
{
    char *b = *s, *e = b + strlen(b);
    while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    *e = '\0';
    *s = b;
}

/* tag-name = ALPHA *(ALPHA / DIGIT / "_") */
static bool ctl_dkim_tag_name_ok(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* One tag-spec of the record (index i); false with why set. */
static bool ctl_dkim_tag_take(char *spec, size_t i, struct buf *seen, struct ctl_dkim_tags *tags, struct buf *why)
{
    char *eq = strchr(spec, '=');
    if (eq == NULL) {
        buf_printf(why, "\"%s\" is not a tag=value", spec);
        return false;
    }
    *eq = '\0';
    char *name = spec, *value = eq + 1;
    ctl_dkim_trim(&name);
    ctl_dkim_trim(&value);
    if (!ctl_dkim_tag_name_ok(name)) {
        buf_printf(why, "\"%s\" is not a tag name", name);
        return false;
    }
    struct buf key;
    buf_init(&key);
    buf_printf(&key, ";%s;", name);
    bool dup = strstr(seen->data, key.data) != NULL;
    buf_printf(seen, "%s;", name);
    buf_free(&key);
    if (dup) {
        buf_printf(why, "tag %s= given twice", name);
        return false;
    }
    if (strcmp(name, "v") == 0 && (i != 0 || strcmp(value, "DKIM1") != 0)) {
        buf_printf(why, "v=%s%s", value, i != 0 ? " is not the first tag" : ": expected v=DKIM1");
        return false;
    }
    if (strcmp(name, "k") == 0)
        tags->k = value;
    else if (strcmp(name, "p") == 0)
        tags->p = value;
    return true;
}

/* Split the record (modified in place) into its tags; false with why set. */
static bool ctl_dkim_tags_parse(char *txt, struct ctl_dkim_tags *tags, struct buf *why)
{
    struct buf seen;
    buf_init(&seen);
    buf_putc(&seen, ';');
    bool ok = true;
    size_t i = 0;
    memset(tags, 0, sizeof *tags);
    for (char *spec = txt; ok && spec != NULL;) {
        char *semi = strchr(spec, ';');
        if (semi)
            *semi = '\0';
        ctl_dkim_trim(&spec);
        if (*spec != '\0')
            ok = ctl_dkim_tag_take(spec, i++, &seen, tags, why);
        spec = semi ? semi + 1 : NULL;
    }
    if (ok && tags->p == NULL) {
        buf_puts(why, "no p= tag");
        ok = false;
    }
    if (ok && tags->k && strcmp(tags->k, "rsa") != 0 && strcmp(tags->k, "ed25519") != 0) {
        buf_printf(why, "unknown key type k=%s", tags->k);
        ok = false;
    }
    buf_free(&seen);
    return ok;
}

/* Compare the decoded p= with pub. */
static int ctl_dkim_key_compare(const struct buf *p, const struct ctl_dkim_pub *pub, struct buf *why)
{
    if (p->len == pub->raw.len && memcmp(p->data, pub->raw.data, p->len) == 0)
        return CTL_DKIM_OK;
    if (pub->algo == CTL_DKIM_ED25519 && p->len != CTL_DKIM_ED25519_LEN) {
        buf_printf(why, "p= holds %zu bytes, an Ed25519 key is %d", p->len, CTL_DKIM_ED25519_LEN);
        return CTL_DKIM_BAD;
    }
    if (pub->algo == CTL_DKIM_RSA) {
        const unsigned char *d = (const unsigned char *)p->data;
        EVP_PKEY *k = d2i_PUBKEY(NULL, &d, (long)p->len);
        bool rsa = k != NULL && EVP_PKEY_base_id(k) == EVP_PKEY_RSA;
        EVP_PKEY_free(k);
        ERR_clear_error();
        if (!rsa) {
            buf_puts(why, "p= is not an RSA public key (DER SubjectPublicKeyInfo)");
            return CTL_DKIM_BAD;
        }
    }
    buf_puts(why, "the published key is another one than the key file's");
    return CTL_DKIM_MISMATCH;
}

/* Judge one TXT record against the key. */
static int ctl_dkim_record_judge(const struct buf *txt, const struct ctl_dkim_pub *pub, struct buf *why)
{
    struct ctl_dkim_tags tags;
    struct buf p;
    if (memchr(txt->data, '\0', txt->len) != NULL) {
        buf_puts(why, "the record holds a NUL byte");
        return CTL_DKIM_BAD;
    }
    char *copy = mem_strdup(txt->data);
    int st;
    buf_init(&p);
    if (!ctl_dkim_tags_parse(copy, &tags, why)) {
        st = CTL_DKIM_BAD;
    } else if (!ctl_dkim_b64_decode(tags.p, &p)) {
        buf_puts(why, "p= is not base64");
        st = CTL_DKIM_BAD;
    } else if (p.len == 0) {
        buf_puts(why, "the key is revoked (empty p=)");
        st = CTL_DKIM_REVOKED;
    } else if ((tags.k && strcmp(tags.k, "ed25519") == 0 ? CTL_DKIM_ED25519 : CTL_DKIM_RSA) != pub->algo) {
        buf_printf(why, "the record is for k=%s, the key file holds an %s key", tags.k ? tags.k : "rsa",
                   ctl_dkim_algo_name(pub->algo));
        st = CTL_DKIM_MISMATCH;
    } else {
        st = ctl_dkim_key_compare(&p, pub, why);
    }
    buf_free(&p);
    mem_free(copy);
    return st;
}

/* Judge every TXT record at the name: the worst counts, since a verifier
 * may pick any of them (RFC 6376 3.6.2.2); why says which. */
static int ctl_dkim_records_judge(const struct ctl_dkim_txts *txts, const struct ctl_dkim_pub *pub, struct buf *why)
{
    struct buf err;
    buf_init(&err);
    int st = CTL_DKIM_OK;
    for (size_t i = 0; i < txts->n; i++) {
        buf_reset(&err);
        int one = ctl_dkim_record_judge(&txts->v[i], pub, &err);
        if (one > st) {
            st = one;
            buf_reset(why);
            if (txts->n > 1)
                buf_printf(why, "TXT record %zu of %zu at the name (a verifier may pick any): ", i + 1, txts->n);
            buf_puts(why, err.data);
        }
    }
    buf_free(&err);
    return st;
}

/* The state of one key: its file, then its record(s) in the DNS. */
static int ctl_dkim_key_check(res_state rs, unsigned char *answer, const struct dkim_key *k, struct buf *why)
{
    struct ctl_dkim_pub pub;
    struct ctl_dkim_txts txts;
    struct buf name, err;
    ctl_dkim_pub_init(&pub);
    memset(&txts, 0, sizeof txts);
    buf_init(&name);
    buf_init(&err);
    ctl_dkim_record_name(k->selector, k->domain, &name);
    int st;
    if (!ctl_dkim_key_read(k->key_path, &pub, &err)) {
        buf_printf(why, "cannot read the key: %s", err.data);
        st = CTL_DKIM_UNREADABLE;
    } else if ((st = ctl_dkim_txt_lookup(rs, name.data, answer, &txts, why)) == CTL_DKIM_OK) {
        st = ctl_dkim_records_judge(&txts, &pub, why);
        if (st == CTL_DKIM_OK) {
            ctl_dkim_pub_describe(&pub, why);
            buf_printf(why, ", as in %s", k->key_path);
            if (txts.n > 1)
                buf_printf(why, " (%zu identical TXT records at the name)", txts.n);
        }
    }
    ctl_dkim_txts_free(&txts);
    ctl_dkim_pub_free(&pub);
    buf_free(&name);
    buf_free(&err);
    return st;
}

const char *ctl_dkim_key_verify(struct __res_state *rs, const struct dkim_key *k, struct buf *why)
{
    unsigned char *answer = mem_alloc(CTL_DKIM_ANSWER_MAX);
    int st = ctl_dkim_key_check(rs, answer, k, why);
    mem_free(answer);
    return ctl_dkim_state_names[st];
}

/* One line for key k: STATE NAME (active|inactive): why [(rule)]. */
static void ctl_dkim_check_print(const struct dkim_key *k, int st, const char *why)
{
    struct buf name, pos;
    buf_init(&name);
    buf_init(&pos);
    ctl_dkim_record_name(k->selector, k->domain, &name);
    if (st != CTL_DKIM_OK) {
        buf_puts(&pos, " (");
        ctl_dkim_pos(&k->pos, &pos);
        buf_putc(&pos, ')');
    }
    printf("%-10s %s (%s): %s%s\n", ctl_dkim_state_names[st], name.data, k->active ? "active" : "inactive", why,
           pos.data);
    buf_free(&name);
    buf_free(&pos);
}

/* Check every key of t with the resolver of /etc/resolv.conf: 0 when each
 * active key is OK, else 1. */
static int ctl_dkim_check_tenant(const struct ctl *c, const struct tenant *t)
{
    struct __res_state rs;
    memset(&rs, 0, sizeof rs);
    if (res_ninit(&rs) != 0) {
        fprintf(stderr, "posternctl: cannot initialise the resolver (/etc/resolv.conf)\n");
        return 1;
    }
    rs.options |= RES_USE_EDNS0;
    unsigned char *answer = mem_alloc(CTL_DKIM_ANSWER_MAX);
    int rc = 0;
    if (t->n_dkim == 0)
        fprintf(stderr, "posternctl: tenant %s has no dkim keys in %s\n", t->name, ctl_rules_dir(c));
    for (size_t i = 0; i < t->n_dkim; i++) {
        struct buf why;
        buf_init(&why);
        int st = ctl_dkim_key_check(&rs, answer, &t->dkim[i], &why);
        ctl_dkim_check_print(&t->dkim[i], st, why.data);
        if (t->dkim[i].active && st != CTL_DKIM_OK)
            rc = 1;
        buf_free(&why);
    }
    mem_free(answer);
    res_nclose(&rs);
    return rc;
}

int ctl_dkim_check(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    if (argc - optind != 1)
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    const struct tenant *t = ctl_dkim_tenant(c, r, argv[optind]);
    int rc = t ? ctl_dkim_check_tenant(c, t) : 1;
    rules_unref(r);
    return rc;
}
