/* rules_index.c: hash-table index over a rules snapshot (rules_index.h).
 * Client networks: one table keyed by (prefix length, masked address); a
 * lookup probes the distinct prefix lengths in use, longest first. */
#include "rules_index.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "hmap.h"

struct rules_index {
    struct hmap accounts;     /* login / sender address -> account */
    struct hmap domains;      /* domain -> tenant */
    struct hmap nets;         /* 17-byte key (bits, masked addr) -> tenant */
    uint8_t lengths[129];     /* distinct prefix lengths, longest first */
    size_t n_lengths;
};

static void index_netkey(const struct ipaddr *a, unsigned bits, uint8_t key[17])
{
    key[0] = (uint8_t)bits;
    memcpy(key + 1, a->b, 16);
    for (unsigned i = bits; i < 128; i++)
        key[1 + (i >> 3)] &= (uint8_t)~(1u << (7 - (i & 7)));
}

struct rules_index *rules_index_build(const struct rules *r)
{
    struct rules_index *ix = mem_alloc(sizeof *ix);
    bool seen[129] = { false };

    hmap_init(&ix->accounts);
    hmap_init(&ix->domains);
    hmap_init(&ix->nets);
    for (size_t i = 0; i < r->n_tenants; i++) {
        struct tenant *t = &r->tenants[i];
        for (size_t j = 0; j < t->n_domains; j++)
            hmap_put(&ix->domains, t->domains[j], strlen(t->domains[j]), t, NULL);
        for (size_t j = 0; j < t->n_accounts; j++)
            if (strcmp(t->accounts[j].name, "*") != 0)
                hmap_put(&ix->accounts, t->accounts[j].name, strlen(t->accounts[j].name), &t->accounts[j], NULL);
        for (size_t j = 0; j < t->n_clients; j++) {
            uint8_t key[17];
            index_netkey(&t->clients[j].net, t->clients[j].bits, key);
            hmap_put(&ix->nets, key, sizeof key, t, NULL);
            seen[t->clients[j].bits] = true;
        }
    }
    for (int b = 128; b >= 0; b--)
        if (seen[b])
            ix->lengths[ix->n_lengths++] = (uint8_t)b;
    return ix;
}

void rules_index_free(struct rules_index *ix)
{
    hmap_free(&ix->accounts);
    hmap_free(&ix->domains);
    hmap_free(&ix->nets);
    mem_free(ix);
}

/* Lowercased copy into out; false when too long. */
static bool index_lower(const char *s, char *out, size_t size)
{
    size_t n = strlen(s);
    if (n >= size)
        return false;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return true;
}

const struct account *rules_find_account(const struct rules *r, const char *address)
{
    char k[512];
    if (!index_lower(address, k, sizeof k))
        return NULL;
    return hmap_gets(&r->index->accounts, k);
}

const struct tenant *rules_find_domain(const struct rules *r, const char *domain)
{
    char k[512];
    if (!index_lower(domain, k, sizeof k))
        return NULL;
    size_t n = strlen(k);
    if (n > 0 && k[n - 1] == '.')
        k[n - 1] = '\0';
    return hmap_gets(&r->index->domains, k);
}

const struct tenant *rules_find_sender_tenant(const struct rules *r, const char *address)
{
    const char *at = strrchr(address, '@');
    return at ? rules_find_domain(r, at + 1) : NULL;
}

const struct account *rules_find_login(const struct rules *r, const char *login)
{
    const struct account *a = rules_find_account(r, login);
    if (a != NULL)
        return a;
    const struct tenant *t = rules_find_sender_tenant(r, login);
    return t ? t->wildcard : NULL;
}

const struct tenant *rules_find_client(const struct rules *r, const struct ipaddr *addr)
{
    const struct rules_index *ix = r->index;
    for (size_t i = 0; i < ix->n_lengths; i++) {
        uint8_t key[17];
        index_netkey(addr, ix->lengths[i], key);
        const struct tenant *t = hmap_get(&ix->nets, key, sizeof key);
        if (t != NULL)
            return t;
    }
    return NULL;
}

static void ri_lower_copy(char *out, size_t size, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

static bool ri_set(const char *s)
{
    return s != NULL && *s != '\0';
}

void rules_identify(const struct rules *r, const char *sasl_login, const char *client_ip, const char *sender,
                    struct rules_ident *id)
{
    memset(id, 0, sizeof *id);
    if (ri_set(sasl_login)) {
        const struct account *a = rules_find_login(r, sasl_login);
        if (a == NULL)
            return;
        id->t = a->tenant;
        id->a = a;
        id->how = "login";
        if (strcmp(a->name, "*") == 0)
            ri_lower_copy(id->who, sizeof id->who, sasl_login);
        else
            snprintf(id->who, sizeof id->who, "%s", a->name);
        return;
    }
    struct ipaddr addr;
    if (!ri_set(client_ip) || !ipaddr_parse(client_ip, &addr))
        return;
    const struct tenant *t = rules_find_client(r, &addr);
    if (t == NULL)
        return;
    id->t = t;
    id->how = "host";
    const struct account *a = ri_set(sender) ? rules_find_account(r, sender) : NULL;
    if (a != NULL && a->tenant == t) {
        id->a = a;
        snprintf(id->who, sizeof id->who, "%s", a->name);
    } else {
        id->a = t->wildcard;
        if (ri_set(sender))
            ri_lower_copy(id->who, sizeof id->who, sender);
        else
            snprintf(id->who, sizeof id->who, "<>");
    }
}
