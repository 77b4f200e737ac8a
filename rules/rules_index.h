/* rules_index.h: lookups over a rules snapshot, built once per load:
 * login -> account, sender address -> account, domain -> tenant and client
 * address -> tenant (longest matching prefix).  Constant time in the number
 * of tenants (hash tables; one probe per distinct prefix length). */
#ifndef POSTERN_RULES_INDEX_H
#define POSTERN_RULES_INDEX_H
#include "rules.h"

struct rules_index *rules_index_build(const struct rules *r);
void rules_index_free(struct rules_index *ix);

/* The account an SASL login names: a declared account, else the "*"
 * account of the tenant owning the login's domain part, else NULL.
 * Matching is case-insensitive. */
const struct account *rules_find_login(const struct rules *r, const char *login);
/* The account declared for a sender address, or NULL. */
const struct account *rules_find_account(const struct rules *r, const char *address);
/* The tenant owning a domain (exact match), or NULL. */
const struct tenant *rules_find_domain(const struct rules *r, const char *domain);
/* The tenant owning the domain of an address, or NULL. */
const struct tenant *rules_find_sender_tenant(const struct rules *r, const char *address);
/* The tenant whose client networks hold addr (longest prefix), or NULL. */
const struct tenant *rules_find_client(const struct rules *r, const struct ipaddr *addr);

/* Who submits a message (DESIGN.md, identification): a SASL login names
 * its account and so the tenant; else a client address inside a tenant's
 * clients names the tenant, the account being the declared sender's or
 * "*"; else nobody (t NULL: not a tenant submission).  Shared by
 * postern-policyd and postern-milter. */
struct rules_ident {
    const struct tenant *t;     /* NULL: not a tenant submission */
    const struct account *a;
    const char *how;            /* "login" or "host" */
    char who[264];              /* account identity counted ("*": the login or sender, lowercase) */
};
void rules_identify(const struct rules *r, const char *sasl_login, const char *client_ip, const char *sender,
                    struct rules_ident *id);

#endif
