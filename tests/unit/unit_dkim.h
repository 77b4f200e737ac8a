/* unit_dkim.h: what the DKIM unit tests (test_dkim_sign.c,
 * test_auth_dkim.c) share: the key record ("v=DKIM1; k=...; p=...") of a
 * private key file, as a verifier looks it up. */
#ifndef POSTERN_UNIT_DKIM_H
#define POSTERN_UNIT_DKIM_H
#include <check.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"

static inline void unit_b64(struct buf *out, const unsigned char *p, size_t n)
{
    buf_reserve(out, 4 * ((n + 2) / 3) + 1);
    int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, p, (int)n);
    out->len += (size_t)w;
    out->data[out->len] = '\0';
}

/* The key record of the private key in the PEM file path: RSA as
 * SubjectPublicKeyInfo, Ed25519 as the raw 32-byte public key (RFC 8463). */
static inline void unit_key_record(struct buf *out, const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(k);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
        unsigned char raw[32];
        size_t n = sizeof raw;
        ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, raw, &n), 1);
        buf_puts(out, "v=DKIM1; k=ed25519; p=");
        unit_b64(out, raw, n);
    } else {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(k, &der);
        ck_assert_int_gt(n, 0);
        buf_puts(out, "v=DKIM1; k=rsa; p=");
        unit_b64(out, der, (size_t)n);
        OPENSSL_free(der);
    }
    EVP_PKEY_free(k);
}

#endif
