/* dkim_sign.c: DKIM signing for postern-milter.  The tenants' private keys
 * are read once per rules snapshot (dkim_keys_load), checked with OpenSSL
 * and kept in memory as PKCS#8 PEM, the form libopendkim takes for both
 * RSA and Ed25519; a message gets one libopendkim signing handle per
 * active key of its From: domain, fed the same headers and body, and
 * yields one DKIM-Signature value per key, in rule order.
 *
 * Threads: a key set is immutable once loaded and shared by every
 * libmilter thread (atomic reference count).  It owns one DKIM_LIB handle,
 * configured before it is shared and only read afterwards; libopendkim
 * documents that a DKIM_LIB "can be used by several threads at once" and
 * that DKIM handles share no memory (dkim_lib.html, dkim.html): its
 * signing path reads the library handle (flags, header lists, the
 * compiled header regex) and keeps all per-message state in the DKIM
 * handle, so concurrent messages need no lock (OpenDKIM itself uses one
 * library handle for all its threads).  A signing context belongs to one
 * message, used by one thread at a time; it holds a reference to its key
 * set, so a reload may drop the set while messages are in flight.
 *
 * libopendkim 2.11.0 (Debian 12) leaks the Ed25519 key state of every
 * signing handle: dkim_free() releases the crypto state of RSA signatures
 * only, so the EVP_PKEY and the 64-byte signature buffer of an Ed25519
 * signature stay allocated (about 1.3 KB per signed message; fixed
 * upstream by OpenDKIM pull request #321 after 2.11.0).  ds_free() below
 * reclaims them: Ed25519 handles allocate through a per-handle tracker,
 * and when libopendkim frees its crypto state, ds_free() checks that the
 * block has the exact shape of libopendkim's struct dkim_crypto for an
 * Ed25519 key (mirrored in struct ds_crypto) and frees what it still
 * holds.  A fixed libopendkim frees those itself and clears its pointers
 * first, so the check fails and nothing is done twice. */
#include "dkim_sign.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <dkim.h>

#include "alloc.h"
#include "hmap.h"
#include "rules.h"

#define DS_KEY_FILE_MAX (64u << 10)      /* a 16384-bit RSA key is ~13 KB */
#define DS_RSA_MIN_BITS 1024              /* libopendkim's own minimum */
#define DS_NAME_MAX 512                   /* tenant name or domain in a lookup */
#define DS_SIGHDR_PREFIX "DKIM-Signature: "

/* --- the key set -------------------------------------------------------- */

struct ds_key {
    char *domain;
    char *selector;
    char *pem;                 /* PKCS#8 PEM, NUL-terminated */
    size_t pem_len;
    EVP_PKEY *pkey;            /* the same key, decoded (registered in ds_decoded) */
    bool subdomains;           /* also signs for subdomains (the rule's subdomains: true) */
    dkim_alg_t alg;            /* DKIM_SIGN_RSASHA256 or DKIM_SIGN_ED25519SHA256 */
    dkim_canon_t hcanon, bcanon;
    char *broken;              /* why the key cannot sign (a set kept with its broken keys), or NULL */
};

/* The active keys of one tenant for one domain, in rule order. */
struct ds_group {
    const struct ds_key **keys;
    size_t n;
};

struct dkim_keys {
    int refs;                  /* atomic */
    DKIM_LIB *lib;
    struct ds_key *keys;
    size_t n_keys;
    struct ds_group **groups;
    size_t n_groups;
    struct hmap map;           /* "tenant\0domain" -> struct ds_group */
};

/* --- one message -------------------------------------------------------- */

struct ds_block {
    void *p;
    size_t size;
};

/* The allocations of one Ed25519 signing handle (see the file comment). */
struct ds_arena {
    struct ds_block *v;
    size_t n, cap;
};

struct ds_signer {
    const struct ds_key *key;
    DKIM *dkim;
    struct ds_arena *arena;    /* Ed25519 handles only */
};

struct dkim_signing {
    struct dkim_keys *keys;    /* a reference: the DKIM handles use keys->lib */
    char *job;                 /* libopendkim keeps the pointer, not a copy */
    struct ds_signer *signers;
    size_t n;
    struct buf line;           /* one header as libopendkim takes it */
};

/* libopendkim 2.11's struct dkim_crypto (dkim-types.h, OpenSSL build),
 * used only to recognise and reclaim what its dkim_free() leaves behind
 * for Ed25519 signatures. */
struct ds_crypto {
    unsigned char pad;
    int keysize;
    size_t inlen;
    size_t outlen;
    EVP_PKEY *pkey;
    void *key;
    BIO *keydata;
    unsigned char *in;
    unsigned char *out;
};

#define DS_ED25519_SIGLEN 64

static struct ds_block *ds_arena_find(struct ds_arena *a, const void *p)
{
    /* newest first: blocks are mostly freed soon after they are made */
    for (size_t i = a->n; i-- > 0;)
        if (a->v[i].p == p)
            return &a->v[i];
    return NULL;
}

static void ds_arena_forget(struct ds_arena *a, struct ds_block *b)
{
    *b = a->v[--a->n];
}

/* Free what libopendkim 2.11 leaves of an Ed25519 crypto state, when the
 * block being freed is one (every field checked against the shape it has
 * after an Ed25519 signature). */
static void ds_reclaim_ed25519(struct ds_arena *a, void *p)
{
    struct ds_crypto c;
    memcpy(&c, p, sizeof c);
    if (c.outlen != DS_ED25519_SIGLEN || c.keysize != DS_ED25519_SIGLEN * 8 || c.key != NULL || c.in != NULL ||
        c.pkey == NULL || c.out == NULL)
        return;
    struct ds_block *out = ds_arena_find(a, c.out);
    if (out == NULL || out->size != DS_ED25519_SIGLEN || out->p == p)
        return;
    if (EVP_PKEY_get_base_id(c.pkey) != EVP_PKEY_ED25519)
        return;
    EVP_PKEY_free(c.pkey);
    ds_arena_forget(a, out);
    free(c.out);
    c.pkey = NULL;
    c.out = NULL;
    memcpy(p, &c, sizeof c);
}

/* libopendkim's allocator: closure is the handle's arena, or NULL. */
static void *ds_malloc(void *closure, size_t size)
{
    void *p = malloc(size != 0 ? size : 1);
    struct ds_arena *a = closure;
    if (p != NULL && a != NULL) {
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 64;
            a->v = mem_grow(a->v, a->cap, sizeof *a->v);
        }
        a->v[a->n].p = p;
        a->v[a->n++].size = size;
    }
    return p;
}

static void ds_free(void *closure, void *p)
{
    struct ds_arena *a = closure;
    if (p == NULL)
        return;
    if (a != NULL) {
        struct ds_block *b = ds_arena_find(a, p);
        if (b != NULL) {
            if (b->size == sizeof(struct ds_crypto))
                ds_reclaim_ed25519(a, p);
            b = ds_arena_find(a, p); /* the reclaim may have moved it */
            ds_arena_forget(a, b);
        }
    }
    free(p);
}

/* --- loading ------------------------------------------------------------ */

/* --- decoded keys for libopendkim ---------------------------------------
 * libopendkim 2.11 decodes the PEM text given to dkim_sign() at every
 * message (PEM_read_bio_PrivateKey() on a memory BIO), and with OpenSSL 3
 * that costs more than the RSA signature itself (0.65-0.86 ms a key here).
 * So the program defines PEM_read_bio_PrivateKey() itself (symbol
 * interposition, as tcp_tune.c does for libmilter's sockets): for a memory
 * BIO holding exactly the PEM text of a key loaded here, it returns that
 * key, decoded once at load, with one more reference (libopendkim frees
 * it with EVP_PKEY_free(); signing with one EVP_PKEY from several threads
 * is safe); anything else goes to OpenSSL's own function.
 *
 * The registry of decoded keys is the one process-wide state of this file
 * (behind a mutex): a key set registers its keys when it is loaded and
 * unregisters them when it is freed; the same text loaded by two sets
 * (a reload) is one entry with two users. */
#define DS_DECODED_BUCKETS 4096

struct ds_decoded {
    struct ds_decoded *next;
    char *pem;
    size_t len;
    uint64_t hash;
    EVP_PKEY *pkey;
    unsigned users;
};

static struct {
    pthread_mutex_t lock;
    struct ds_decoded *bucket[DS_DECODED_BUCKETS];
    size_t n;
} ds_decoded = { PTHREAD_MUTEX_INITIALIZER, { NULL }, 0 };

typedef EVP_PKEY *(*ds_pem_read_fn)(BIO *, EVP_PKEY **, pem_password_cb *, void *);
static ds_pem_read_fn ds_pem_read_real;
static pthread_once_t ds_pem_read_once = PTHREAD_ONCE_INIT;

static void ds_pem_read_resolve(void)
{
    ds_pem_read_real = (ds_pem_read_fn)dlsym(RTLD_NEXT, "PEM_read_bio_PrivateKey");
}

static uint64_t ds_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* Under the lock: the entry for this text, or NULL. */
static struct ds_decoded *ds_decoded_find(const char *pem, size_t len, uint64_t h)
{
    for (struct ds_decoded *e = ds_decoded.bucket[h % DS_DECODED_BUCKETS]; e != NULL; e = e->next)
        if (e->hash == h && e->len == len && memcmp(e->pem, pem, len) == 0)
            return e;
    return NULL;
}

static void ds_decoded_add(const struct ds_key *k)
{
    uint64_t h = ds_hash(k->pem, k->pem_len);
    pthread_mutex_lock(&ds_decoded.lock);
    struct ds_decoded *e = ds_decoded_find(k->pem, k->pem_len, h);
    if (e == NULL) {
        e = mem_alloc(sizeof *e);
        e->pem = mem_strndup(k->pem, k->pem_len);
        e->len = k->pem_len;
        e->hash = h;
        e->pkey = k->pkey;
        EVP_PKEY_up_ref(e->pkey);
        e->users = 0;
        e->next = ds_decoded.bucket[h % DS_DECODED_BUCKETS];
        ds_decoded.bucket[h % DS_DECODED_BUCKETS] = e;
        ds_decoded.n++;
    }
    e->users++;
    pthread_mutex_unlock(&ds_decoded.lock);
}

static void ds_decoded_remove(const struct ds_key *k)
{
    uint64_t h = ds_hash(k->pem, k->pem_len);
    pthread_mutex_lock(&ds_decoded.lock);
    struct ds_decoded **pp = &ds_decoded.bucket[h % DS_DECODED_BUCKETS];
    while (*pp != NULL && !((*pp)->hash == h && (*pp)->len == k->pem_len && memcmp((*pp)->pem, k->pem, k->pem_len) == 0))
        pp = &(*pp)->next;
    struct ds_decoded *e = *pp;
    if (e != NULL && --e->users == 0) {
        *pp = e->next;
        ds_decoded.n--;
        EVP_PKEY_free(e->pkey);
        OPENSSL_cleanse(e->pem, e->len);
        mem_free(e->pem);
        mem_free(e);
    }
    pthread_mutex_unlock(&ds_decoded.lock);
}

/* The interposed function (see above). */
EVP_PKEY *PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
    if (bp != NULL && x == NULL && BIO_method_type(bp) == BIO_TYPE_MEM) {
        char *data = NULL;
        long n = BIO_get_mem_data(bp, &data);
        if (n > 0 && data != NULL) {
            uint64_t h = ds_hash(data, (size_t)n);
            EVP_PKEY *found = NULL;
            pthread_mutex_lock(&ds_decoded.lock);
            struct ds_decoded *e = ds_decoded.n > 0 ? ds_decoded_find(data, (size_t)n, h) : NULL;
            if (e != NULL && EVP_PKEY_up_ref(e->pkey))
                found = e->pkey;
            pthread_mutex_unlock(&ds_decoded.lock);
            if (found != NULL)
                return found;
        }
    }
    pthread_once(&ds_pem_read_once, ds_pem_read_resolve);
    if (ds_pem_read_real == NULL)
        return NULL;
    return ds_pem_read_real(bp, x, cb, u);
}

static void ds_key_clear(struct ds_key *k)
{
    if (k->pkey != NULL)
        EVP_PKEY_free(k->pkey);
    mem_free(k->domain);
    mem_free(k->selector);
    mem_free(k->broken);
    if (k->pem != NULL) {
        OPENSSL_cleanse(k->pem, k->pem_len);
        mem_free(k->pem);
    }
    memset(k, 0, sizeof *k);
}

static void ds_keys_free(struct dkim_keys *k)
{
    for (size_t i = 0; i < k->n_keys; i++) {
        ds_decoded_remove(&k->keys[i]);
        ds_key_clear(&k->keys[i]);
    }
    mem_free(k->keys);
    for (size_t i = 0; i < k->n_groups; i++) {
        mem_free(k->groups[i]->keys);
        mem_free(k->groups[i]);
    }
    mem_free(k->groups);
    hmap_free(&k->map);
    if (k->lib != NULL)
        dkim_close(k->lib);
    mem_free(k);
}

/* PEM passphrase callback: keys must not be encrypted (nobody is there to
 * type the passphrase); without it OpenSSL would ask on the terminal. */
static int ds_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The reason of OpenSSL's last error, for a diagnostic. */
static const char *ds_ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    return r != NULL ? r : "unknown reason";
}

/* Read a whole key file into *out (NUL-terminated, caller cleanses and
 * frees); false with the reason in why. */
static bool ds_read_file(const char *path, char **out, size_t *out_len, struct buf *why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0) {
        buf_printf(why, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    if (fstat(fd, &st) != 0) {
        buf_printf(why, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        buf_printf(why, "cannot read %s: %s", path, strerror(EISDIR));
        close(fd);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        buf_printf(why, "cannot read %s: not a regular file", path);
        close(fd);
        return false;
    }
    if ((uint64_t)st.st_size > DS_KEY_FILE_MAX) {
        buf_printf(why, "%s is not a private key file: %jd bytes, more than %u", path, (intmax_t)st.st_size,
                   DS_KEY_FILE_MAX);
        close(fd);
        return false;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *data = mem_alloc(cap);
    for (;;) {
        if (len + 1 == cap) {
            /* the file grew since fstat: read up to the limit */
            if (cap > DS_KEY_FILE_MAX) {
                buf_printf(why, "%s is not a private key file: more than %u bytes", path, DS_KEY_FILE_MAX);
                OPENSSL_cleanse(data, len);
                mem_free(data);
                close(fd);
                return false;
            }
            data = mem_realloc(data, cap * 2);
            cap *= 2;
        }
        ssize_t n = read(fd, data + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            buf_printf(why, "cannot read %s: %s", path, strerror(errno));
            OPENSSL_cleanse(data, len);
            mem_free(data);
            close(fd);
            return false;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    data[len] = '\0';
    *out = data;
    *out_len = len;
    return true;
}

/* Parse a PEM private key and check its type against the rule's
 * algorithm (0: the key decides); on success k->pem holds it re-encoded
 * as unencrypted PKCS#8 PEM (libopendkim recognises PEM by a leading
 * "-----"; a file with text before the PEM block would not be) and
 * k->alg is set. */
static bool ds_parse_key(const char *path, const char *data, size_t len, int rule_alg, struct ds_key *k,
                         struct buf *why)
{
    bool ok = false;
    BIO *in = BIO_new_mem_buf(data, (int)len);
    BIO *out = NULL;
    EVP_PKEY *pkey = NULL;
    if (in == NULL) {
        buf_printf(why, "cannot check %s: %s", path, ds_ssl_reason());
        goto done;
    }
    pkey = PEM_read_bio_PrivateKey(in, NULL, ds_no_passphrase, NULL);
    if (pkey == NULL) {
        if (memmem(data, len, "-----BEGIN ", 11) == NULL)
            buf_printf(why, "%s is not a private key in PEM format (no \"-----BEGIN\" line)", path);
        else if (memmem(data, len, "ENCRYPTED", 9) != NULL)
            buf_printf(why, "%s is an encrypted private key: postern needs it without a passphrase", path);
        else
            buf_printf(why, "%s holds no PEM private key that OpenSSL can read (%s)", path, ds_ssl_reason());
        goto done;
    }
    int base = EVP_PKEY_get_base_id(pkey);
    const char *want = rule_alg == 1 ? "rsa-sha256" : "ed25519-sha256";
    if (base == EVP_PKEY_RSA) {
        if (rule_alg == 2) {
            buf_printf(why, "%s is an RSA key, not an Ed25519 key as algorithm %s needs", path, want);
            goto done;
        }
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < DS_RSA_MIN_BITS) {
            buf_printf(why, "%s is an RSA key of %d bits: DKIM needs at least %d (2048 recommended)", path, bits,
                       DS_RSA_MIN_BITS);
            goto done;
        }
        k->alg = DKIM_SIGN_RSASHA256;
    } else if (base == EVP_PKEY_ED25519) {
        if (rule_alg == 1) {
            buf_printf(why, "%s is an Ed25519 key, not an RSA key as algorithm %s needs", path, want);
            goto done;
        }
        k->alg = DKIM_SIGN_ED25519SHA256;
    } else {
        const char *type = EVP_PKEY_get0_type_name(pkey);
        buf_printf(why, "%s holds a key of type %s: DKIM signs with RSA (rsa-sha256) or Ed25519 (ed25519-sha256)",
                   path, type != NULL ? type : "unknown");
        goto done;
    }
    out = BIO_new(BIO_s_mem());
    if (out == NULL || !PEM_write_bio_PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL)) {
        buf_printf(why, "cannot encode %s: %s", path, ds_ssl_reason());
        goto done;
    }
    char *pem;
    long n = BIO_get_mem_data(out, &pem);
    if (n <= 0) {
        buf_printf(why, "cannot encode %s: %s", path, ds_ssl_reason());
        goto done;
    }
    k->pem = mem_strndup(pem, (size_t)n);
    k->pem_len = (size_t)n;
    OPENSSL_cleanse(pem, (size_t)n);
    k->pkey = pkey; /* kept, decoded: see ds_decoded */
    pkey = NULL;
    ok = true;
done:
    EVP_PKEY_free(pkey);
    BIO_free(in);
    BIO_free(out);
    ERR_clear_error(); /* the error queue is per thread: leave it empty */
    return ok;
}

static bool ds_parse_canon(const char *canon, struct ds_key *k)
{
    const char *c = canon != NULL ? canon : "relaxed/relaxed";
    const char *slash = strchr(c, '/');
    if (slash == NULL)
        return false;
    size_t hl = (size_t)(slash - c);
    if (hl == 7 && strncmp(c, "relaxed", 7) == 0)
        k->hcanon = DKIM_CANON_RELAXED;
    else if (hl == 6 && strncmp(c, "simple", 6) == 0)
        k->hcanon = DKIM_CANON_SIMPLE;
    else
        return false;
    if (strcmp(slash + 1, "relaxed") == 0)
        k->bcanon = DKIM_CANON_RELAXED;
    else if (strcmp(slash + 1, "simple") == 0)
        k->bcanon = DKIM_CANON_SIMPLE;
    else
        return false;
    return true;
}

/* The lookup key "tenant\0domain", lowercased; false when too long. */
static bool ds_map_key(char *out, size_t cap, const char *tenant, const char *domain, size_t *len)
{
    size_t tl = strlen(tenant), dl = strlen(domain);
    if (tl > DS_NAME_MAX || dl > DS_NAME_MAX || tl + dl + 1 > cap)
        return false;
    for (size_t i = 0; i < tl; i++)
        out[i] = (char)tolower((unsigned char)tenant[i]);
    out[tl] = '\0';
    for (size_t i = 0; i < dl; i++)
        out[tl + 1 + i] = (char)tolower((unsigned char)domain[i]);
    *len = tl + 1 + dl;
    return true;
}

/* Oversigned (RFC 6376 8.15): listed in h= once more than present, so
 * that one added later breaks the signature. */
static const char *const ds_oversign[] = {
    "from", "to", "cc", "subject", "date", "reply-to", "message-id", "in-reply-to", "references",
    "mime-version", "content-type", "content-transfer-encoding", NULL,
};

static bool ds_listed(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

static DKIM_LIB *ds_lib_new(struct buf *why)
{
    DKIM_LIB *lib = dkim_init(ds_malloc, ds_free);
    DKIM_STAT st;
    if (lib == NULL) {
        buf_puts(why, "cannot initialize libopendkim");
        return NULL;
    }
    /* Signed: libopendkim's recommended list and every oversigned name (an
     * oversigned name must be signed too, or the extra h= entry would
     * stand for a present header the signer did not hash).  The option
     * compiles the list into a regex: the array need not outlive the
     * call. */
    size_t n = 0, cap = sizeof ds_oversign / sizeof ds_oversign[0];
    for (const u_char **p = dkim_should_signhdrs; *p != NULL; p++)
        cap++;
    const char **sign = mem_array(cap, sizeof *sign);
    for (const u_char **p = dkim_should_signhdrs; *p != NULL; p++)
        if (!ds_listed(sign, n, (const char *)*p))
            sign[n++] = (const char *)*p;
    for (const char *const *p = ds_oversign; *p != NULL; p++)
        if (!ds_listed(sign, n, *p))
            sign[n++] = *p;
    sign[n] = NULL;
    st = dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, (void *)sign, sizeof(char **));
    mem_free(sign);
    if (st == DKIM_STAT_OK)
        st = dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, (void *)ds_oversign, sizeof(char **));
    if (st != DKIM_STAT_OK) {
        buf_printf(why, "cannot set libopendkim's header lists: %s", dkim_getresultstr(st));
        dkim_close(lib);
        return NULL;
    }
    return lib;
}

/* One active key rule into *key (its algorithm, canonicalization and the
 * decoded key; not its names).  False with why set (no file:line). */
static bool ds_key_load(const struct dkim_key *dk, struct ds_key *key, struct buf *why)
{
    char *data = NULL;
    size_t len = 0;
    bool ok;
    if (dk->domain == NULL || dk->selector == NULL || dk->key_path == NULL) {
        buf_puts(why, "incomplete key rule");
        return false;
    }
    if (!ds_parse_canon(dk->canon, key)) {
        buf_printf(why, "unknown canonicalization %s", dk->canon);
        return false;
    }
    ok = ds_read_file(dk->key_path, &data, &len, why) && ds_parse_key(dk->key_path, data, len, dk->algorithm, key, why);
    if (data != NULL) {
        OPENSSL_cleanse(data, len);
        mem_free(data);
    }
    if (ok && key->alg == DKIM_SIGN_ED25519SHA256 && key->hcanon == DKIM_CANON_SIMPLE) {
        /* libopendkim 2.11 makes Ed25519 signatures with simple header
         * canonicalization that no verifier accepts (its own nor dkimpy):
         * refused rather than sent broken */
        buf_printf(why,
                   "%s: ed25519-sha256 with simple header canonicalization (%s) is not supported "
                   "(libopendkim's signatures would not verify): use relaxed/relaxed or relaxed/simple",
                   dk->key_path, dk->canon);
        ok = false;
    }
    if (ok && key->pem == NULL) {
        buf_printf(why, "%s: no key", dk->key_path);
        ok = false;
    }
    return ok;
}

struct dkim_keys *dkim_keys_load(const struct rules *r, bool keep_broken, struct diags *errors)
{
    struct dkim_keys *k = mem_alloc(sizeof *k);
    struct buf why;
    size_t n_active = 0, n_errors = 0;
    buf_init(&why);
    k->refs = 1;
    hmap_init(&k->map);
    k->lib = ds_lib_new(&why);
    if (k->lib == NULL) {
        diag_at(errors, r != NULL && r->dir != NULL ? r->dir : "rules", 0, 0, "dkim: %s", why.data);
        buf_free(&why);
        ds_keys_free(k);
        return NULL;
    }
    for (size_t t = 0; r != NULL && t < r->n_tenants; t++)
        for (size_t i = 0; i < r->tenants[t].n_dkim; i++)
            n_active += r->tenants[t].dkim[i].active;
    k->keys = mem_array(n_active ? n_active : 1, sizeof *k->keys);
    k->groups = mem_array(n_active ? n_active : 1, sizeof *k->groups);
    /* every active key rule has its entry, in rule order: a key that
     * cannot be used keeps why (k->broken) */
    for (size_t t = 0; r != NULL && t < r->n_tenants; t++) {
        const struct tenant *ten = &r->tenants[t];
        for (size_t i = 0; i < ten->n_dkim; i++) {
            const struct dkim_key *dk = &ten->dkim[i];
            if (!dk->active)
                continue;
            const char *file = dk->pos.file != NULL ? dk->pos.file : ten->file;
            struct ds_key key;
            memset(&key, 0, sizeof key);
            buf_reset(&why);
            if (!ds_key_load(dk, &key, &why)) {
                diag_at(errors, file, dk->pos.line, dk->pos.col, "dkim: %s", why.data);
                n_errors++;
                ds_key_clear(&key);
                key.broken = mem_strdup(why.data);
            }
            key.domain = dk->domain != NULL ? mem_strdup(dk->domain) : NULL;
            key.selector = dk->selector != NULL ? mem_strdup(dk->selector) : NULL;
            key.subdomains = dk->subdomains;
            k->keys[k->n_keys++] = key;
            if (key.pem != NULL)
                ds_decoded_add(&k->keys[k->n_keys - 1]);
        }
    }
    buf_free(&why);
    if (n_errors > 0 && !keep_broken) {
        ds_keys_free(k);
        return NULL;
    }
    /* index by tenant and domain, keeping rule order (k->keys no longer
     * moves) */
    size_t ki = 0;
    for (size_t t = 0; r != NULL && t < r->n_tenants; t++) {
        const struct tenant *ten = &r->tenants[t];
        for (size_t i = 0; i < ten->n_dkim; i++) {
            if (!ten->dkim[i].active)
                continue;
            const struct ds_key *key = &k->keys[ki++];
            char mk[2 * DS_NAME_MAX + 2];
            size_t mlen;
            if (key->domain == NULL || key->selector == NULL)
                continue; /* an incomplete rule: never asked for */
            if (!ds_map_key(mk, sizeof mk, ten->name, key->domain, &mlen))
                continue; /* longer than any lookup can ask for */
            struct ds_group *g = hmap_get(&k->map, mk, mlen);
            if (g == NULL) {
                g = mem_alloc(sizeof *g);
                k->groups[k->n_groups++] = g;
                hmap_put(&k->map, mk, mlen, g, NULL);
            }
            g->keys = mem_grow(g->keys, g->n + 1, sizeof *g->keys);
            g->keys[g->n++] = key;
        }
    }
    return k;
}

struct dkim_keys *dkim_keys_ref(struct dkim_keys *k)
{
    if (k != NULL)
        __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
    return k;
}

void dkim_keys_unref(struct dkim_keys *k)
{
    if (k != NULL && __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0)
        ds_keys_free(k);
}

size_t dkim_keys_count(const struct dkim_keys *k)
{
    size_t n = 0;
    for (size_t i = 0; k != NULL && i < k->n_keys; i++)
        n += k->keys[i].broken == NULL;
    return n;
}

size_t dkim_keys_broken(const struct dkim_keys *k)
{
    return k != NULL ? k->n_keys - dkim_keys_count(k) : 0;
}

/* --- signing ------------------------------------------------------------ */

static const char *ds_alg_name(dkim_alg_t alg)
{
    return alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

/* Why libopendkim failed: its message for the handle, else the status. */
static void ds_fail(struct buf *err, const struct ds_signer *sg, const char *what, DKIM_STAT st)
{
    const char *msg = sg->dkim != NULL ? dkim_geterror(sg->dkim) : NULL;
    if (err == NULL)
        return;
    buf_printf(err, "dkim: s=%s d=%s: %s: %s", sg->key->selector, sg->key->domain, what,
               msg != NULL && msg[0] != '\0' ? msg : dkim_getresultstr(st));
}

struct dkim_signing *dkim_sign_begin(struct dkim_keys *k, const char *tenant, const char *domain, const char *job,
                                     bool subdomain, struct buf *err)
{
    char mk[2 * DS_NAME_MAX + 2];
    size_t mlen;
    if (k == NULL || tenant == NULL || domain == NULL || !ds_map_key(mk, sizeof mk, tenant, domain, &mlen))
        return NULL;
    const struct ds_group *g = hmap_get(&k->map, mk, mlen);
    size_t usable = 0;
    for (size_t i = 0; g != NULL && i < g->n; i++)
        usable += !subdomain || g->keys[i]->subdomains;
    if (usable == 0)
        return NULL;
    for (size_t i = 0; i < g->n; i++)
        if ((!subdomain || g->keys[i]->subdomains) && g->keys[i]->broken != NULL) {
            buf_printf(err, "dkim: s=%s d=%s: the key could not be loaded: %s", g->keys[i]->selector,
                       g->keys[i]->domain, g->keys[i]->broken);
            return NULL;
        }
    struct dkim_signing *s = mem_alloc(sizeof *s);
    s->keys = dkim_keys_ref(k);
    s->job = mem_strdup(job != NULL && job[0] != '\0' ? job : "-");
    s->signers = mem_array(usable, sizeof *s->signers);
    buf_init(&s->line);
    for (size_t i = 0; i < g->n; i++) {
        if (subdomain && !g->keys[i]->subdomains)
            continue;
        struct ds_signer *sg = &s->signers[s->n++];
        DKIM_STAT st = DKIM_STAT_OK;
        sg->key = g->keys[i];
        if (sg->key->alg == DKIM_SIGN_ED25519SHA256)
            sg->arena = mem_alloc(sizeof *sg->arena);
        sg->dkim = dkim_sign(k->lib, (const unsigned char *)s->job, sg->arena, (dkim_sigkey_t)sg->key->pem,
                             (const unsigned char *)sg->key->selector, (const unsigned char *)sg->key->domain,
                             sg->key->hcanon, sg->key->bcanon, sg->key->alg, -1, &st);
        if (sg->dkim == NULL) {
            ds_fail(err, sg, "cannot start signing", st != DKIM_STAT_OK ? st : DKIM_STAT_INTERNAL);
            dkim_sign_free(s);
            return NULL;
        }
    }
    return s;
}

bool dkim_sign_header(struct dkim_signing *s, const char *name, const char *value, struct buf *err)
{
    if (s == NULL)
        return true;
    if (name == NULL || name[0] == '\0' || strpbrk(name, ": \t\r\n") != NULL) {
        buf_printf(err, "dkim: invalid header name \"%s\"", name != NULL ? name : "");
        return false;
    }
    if (value == NULL)
        value = "";
    /* "Name: value" as libopendkim takes it: the MTA passes the value
     * without the space after the colon unless asked to keep it
     * (SMFIP_HDR_LEADSPC), so one is put back unless the value starts with
     * a blank or a fold; folds end in CRLF; no line end at the end */
    struct buf *l = &s->line;
    size_t vlen = strlen(value);
    while (vlen > 0 && (value[vlen - 1] == '\n' || value[vlen - 1] == '\r'))
        vlen--;
    buf_reset(l);
    buf_puts(l, name);
    buf_putc(l, ':');
    if (vlen == 0 || strchr(" \t\r\n", value[0]) == NULL)
        buf_putc(l, ' ');
    for (size_t i = 0; i < vlen; i++) {
        if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
            buf_putc(l, '\r');
        buf_putc(l, value[i]);
    }
    for (size_t i = 0; i < s->n; i++) {
        DKIM_STAT st = dkim_header(s->signers[i].dkim, (unsigned char *)l->data, l->len);
        if (st != DKIM_STAT_OK) {
            char what[96];
            snprintf(what, sizeof what, "header %.64s", name);
            ds_fail(err, &s->signers[i], what, st);
            return false;
        }
    }
    return true;
}

bool dkim_sign_eoh(struct dkim_signing *s, struct buf *err)
{
    if (s == NULL)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        DKIM_STAT st = dkim_eoh(s->signers[i].dkim);
        if (st != DKIM_STAT_OK) {
            ds_fail(err, &s->signers[i], "end of headers", st);
            return false;
        }
    }
    return true;
}

bool dkim_sign_body(struct dkim_signing *s, const unsigned char *data, size_t len, struct buf *err)
{
    if (s == NULL || len == 0)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        /* dkim_body() only reads the chunk; its prototype lacks the const */
        DKIM_STAT st = dkim_body(s->signers[i].dkim, (unsigned char *)(uintptr_t)data, len);
        if (st != DKIM_STAT_OK) {
            ds_fail(err, &s->signers[i], "body", st);
            return false;
        }
    }
    return true;
}

bool dkim_sign_end(struct dkim_signing *s, dkim_sig_cb cb, void *arg, struct buf *err)
{
    if (s == NULL)
        return true;
    char **values = mem_array(s->n, sizeof *values);
    bool ok = true;
    for (size_t i = 0; ok && i < s->n; i++) {
        struct ds_signer *sg = &s->signers[i];
        unsigned char *hdr = NULL;
        size_t len = 0;
        DKIM_STAT st = dkim_eom(sg->dkim, NULL);
        if (st != DKIM_STAT_OK) {
            ds_fail(err, sg, "cannot sign", st);
            ok = false;
            break;
        }
        st = dkim_getsighdr_d(sg->dkim, sizeof DS_SIGHDR_PREFIX - 1, &hdr, &len);
        if (st != DKIM_STAT_OK || hdr == NULL) {
            ds_fail(err, sg, "cannot make the signature header", st != DKIM_STAT_OK ? st : DKIM_STAT_INTERNAL);
            ok = false;
            break;
        }
        /* folds as "\n" and a blank, as smfi_insheader() takes them
         * (libopendkim writes CRLF; the MTA writes the line ends) */
        char *v = mem_alloc(len + 1), *w = v;
        for (size_t j = 0; j < len; j++)
            if (hdr[j] != '\r')
                *w++ = (char)hdr[j];
        *w = '\0';
        values[i] = v;
    }
    /* all or nothing: the caller inserts every signature or none */
    for (size_t i = 0; ok && i < s->n; i++)
        if (cb != NULL)
            cb(arg, s->signers[i].key->selector, ds_alg_name(s->signers[i].key->alg), values[i]);
    for (size_t i = 0; i < s->n; i++)
        mem_free(values[i]);
    mem_free(values);
    return ok;
}

void dkim_sign_free(struct dkim_signing *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        struct ds_signer *sg = &s->signers[i];
        if (sg->dkim != NULL)
            dkim_free(sg->dkim);
        if (sg->arena != NULL) {
            /* blocks libopendkim did not free are its leaks: left alone,
             * they may still be referenced */
            mem_free(sg->arena->v);
            mem_free(sg->arena);
        }
    }
    mem_free(s->signers);
    mem_free(s->job);
    buf_free(&s->line);
    dkim_keys_unref(s->keys);
    mem_free(s);
}
