/* rules_check.c: validation across tenant files: a domain, login, client
 * network, tenant name, outbound transport or outbound IP may belong to one
 * tenant only.  Every conflict names both files and positions. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "hmap.h"
#include "rules_load.h"

struct owner {
    const struct tenant *t;
    struct rules_pos pos;
};

static void check_conflict(struct diags *d, const struct rules_pos *here, const char *what,
                           const struct owner *first, const struct tenant *t)
{
    if (strncmp(what, "tenant ", 7) == 0)
        diag_at(d, here->file, here->line, here->col, "%s is already defined at %s:%d:%d", what,
                first->pos.file, first->pos.line, first->pos.col);
    else if (first->t == t)
        diag_at(d, here->file, here->line, here->col, "%s is also declared at %s:%d:%d", what,
                first->pos.file, first->pos.line, first->pos.col);
    else
        diag_at(d, here->file, here->line, here->col, "%s already belongs to tenant %s (%s:%d:%d)", what,
                first->t->name, first->pos.file, first->pos.line, first->pos.col);
}

/* Record key -> owner; on a second owner report a conflict. */
static void check_claim(struct hmap *m, struct owner **pool, size_t *used, struct diags *d, const char *key,
                        const char *what, const struct tenant *t, struct rules_pos pos, bool same_ok)
{
    struct owner *o = &(*pool)[(*used)++];
    void *old = NULL;
    o->t = t;
    o->pos = pos;
    if (hmap_put(m, key, strlen(key), o, &old))
        return;
    const struct owner *first = old;
    if (same_ok && first->t == t)
        return;
    char msg[400];
    snprintf(msg, sizeof msg, "%s %s", what, key);
    check_conflict(d, &pos, msg, first, t);
}

struct netent {
    struct cidr c;
    struct ipaddr last;
    const struct tenant *t;
    struct rules_pos pos;
};

static int check_cmp_net(const void *a, const void *b)
{
    const struct netent *x = a, *y = b;
    int c = memcmp(x->c.net.b, y->c.net.b, 16);
    if (c != 0)
        return c;
    return (int)x->c.bits - (int)y->c.bits;
}

/* Prefixes either nest or are disjoint: sort by start, then sweep with a
 * stack of the prefixes that contain the current one. */
static void check_clients(const struct rules *r, struct diags *d)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < r->n_tenants; i++)
        n += r->tenants[i].n_clients;
    struct netent *v = mem_array(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < r->n_tenants; i++)
        for (size_t j = 0; j < r->tenants[i].n_clients; j++) {
            struct netent *e = &v[k++];
            e->c = r->tenants[i].clients[j];
            e->last = e->c.net;
            for (unsigned b = e->c.bits; b < 128; b++)
                e->last.b[b >> 3] |= (uint8_t)(1u << (7 - (b & 7)));
            e->t = &r->tenants[i];
            e->pos = r->tenants[i].client_pos[j];
        }
    qsort(v, n, sizeof *v, check_cmp_net);
    const struct netent *stack[130];
    size_t depth = 0;
    for (size_t i = 0; i < n; i++) {
        while (depth > 0 && memcmp(stack[depth - 1]->last.b, v[i].c.net.b, 16) < 0)
            depth--;
        for (size_t s = 0; s < depth; s++) {
            if (stack[s]->t == v[i].t)
                continue;
            char a[64], b[64], msg[200];
            snprintf(msg, sizeof msg, "client network %s overlaps %s, which",
                     cidr_format(&v[i].c, a, sizeof a), cidr_format(&stack[s]->c, b, sizeof b));
            struct owner first = { stack[s]->t, stack[s]->pos };
            check_conflict(d, &v[i].pos, msg, &first, v[i].t);
            break;
        }
        if (depth < 130)
            stack[depth++] = &v[i];
    }
    mem_free(v);
}

/* Same addresses (in any order; none repeats, rules_load.c refuses that)
 * and same HELO name. */
static bool check_same_outbound(const struct outbound *a, const struct outbound *b)
{
    if (a->n_ips != b->n_ips || (a->helo == NULL) != (b->helo == NULL) ||
        (a->helo && strcmp(a->helo, b->helo) != 0))
        return false;
    for (size_t i = 0; i < a->n_ips; i++) {
        bool found = false;
        for (size_t j = 0; j < b->n_ips && !found; j++)
            found = memcmp(&a->ips[i], &b->ips[j], sizeof a->ips[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Transport name -> the first outbound that binds it to addresses. */
struct bound {
    const struct tenant *t;
    const struct outbound *o;
};

/* A transport bound to addresses, and each outbound address, belongs to
 * one tenant: otherwise mail of one tenant could leave from another's IP.
 * Within a tenant, a transport may be repeated with the same definition. */
static void check_bind(struct hmap *tr, struct bound *slot, struct hmap *ips, struct owner **pool,
                       size_t *used, struct diags *d, const struct tenant *t, const struct outbound *o)
{
    if (!o->set || o->transport == NULL || o->n_ips == 0)
        return;
    void *old = NULL;
    slot->t = t;
    slot->o = o;
    if (!hmap_put(tr, o->transport, strlen(o->transport), slot, &old)) {
        const struct bound *b = old;
        struct owner first = { b->t, b->o->pos };
        char msg[160];
        snprintf(msg, sizeof msg, "outbound transport %s", o->transport);
        if (b->t != t)
            check_conflict(d, &o->pos, msg, &first, t);
        else if (!check_same_outbound(b->o, o))
            diag_at(d, o->pos.file, o->pos.line, o->pos.col,
                    "outbound transport %s is defined differently at %s:%d:%d", o->transport, b->o->pos.file,
                    b->o->pos.line, b->o->pos.col);
        return;
    }
    for (size_t i = 0; i < o->n_ips; i++) {
        char a[64];
        ipaddr_format(&o->ips[i], a, sizeof a);
        check_claim(ips, pool, used, d, a, "outbound address", t, o->pos, true);
    }
}

/* An outbound without ips names a transport kept in master.cf by hand: it
 * must not be one that another tenant binds to its own addresses. */
static void check_reference(const struct hmap *tr, struct diags *d, const struct tenant *t,
                            const struct outbound *o)
{
    if (!o->set || o->transport == NULL || o->n_ips != 0)
        return;
    const struct bound *b = hmap_gets(tr, o->transport);
    if (b != NULL && b->t != t) {
        struct owner first = { b->t, b->o->pos };
        char msg[160];
        snprintf(msg, sizeof msg, "outbound transport %s", o->transport);
        check_conflict(d, &o->pos, msg, &first, t);
    }
}

bool rules_check_cross(struct rules *r, struct diags *d)
{
    struct hmap names, domains, logins, transports, ips;
    size_t before = d->n, total = 0, used = 0, nbound = 0;

    for (size_t i = 0; i < r->n_tenants; i++) {
        const struct tenant *t = &r->tenants[i];
        total += 1 + t->n_domains + t->n_accounts * 2 + 1;
        total += t->outbound.n_ips + 1;
        for (size_t j = 0; j < t->n_accounts; j++)
            total += t->accounts[j].outbound.n_ips + 1;
    }
    struct owner *pool = mem_array(total, sizeof *pool);
    struct bound *bound = mem_array(total, sizeof *bound);
    hmap_init(&names);
    hmap_init(&domains);
    hmap_init(&logins);
    hmap_init(&transports);
    hmap_init(&ips);
    for (size_t i = 0; i < r->n_tenants; i++) {
        const struct tenant *t = &r->tenants[i];
        check_claim(&names, &pool, &used, d, t->name, "tenant", t, t->pos, false);
        for (size_t j = 0; j < t->n_domains; j++)
            check_claim(&domains, &pool, &used, d, t->domains[j], "domain", t, t->domain_pos[j], false);
        for (size_t j = 0; j < t->n_accounts; j++)
            if (!t->accounts[j].implicit && strcmp(t->accounts[j].name, "*") != 0)
                check_claim(&logins, &pool, &used, d, t->accounts[j].name, "login", t, t->accounts[j].pos, false);
        check_bind(&transports, &bound[nbound++], &ips, &pool, &used, d, t, &t->outbound);
        for (size_t j = 0; j < t->n_accounts; j++)
            check_bind(&transports, &bound[nbound++], &ips, &pool, &used, d, t, &t->accounts[j].outbound);
    }
    for (size_t i = 0; i < r->n_tenants; i++) {
        const struct tenant *t = &r->tenants[i];
        check_reference(&transports, d, t, &t->outbound);
        for (size_t j = 0; j < t->n_accounts; j++)
            check_reference(&transports, d, t, &t->accounts[j].outbound);
    }
    check_clients(r, d);
    hmap_free(&names);
    hmap_free(&domains);
    hmap_free(&logins);
    hmap_free(&transports);
    hmap_free(&ips);
    mem_free(pool);
    mem_free(bound);
    return d->n == before;
}

void rules_check_warn(const struct rules *r, struct diags *warn)
{
    for (size_t i = 0; i < r->n_tenants; i++) {
        const struct tenant *t = &r->tenants[i];
        for (size_t j = 0; j < t->n_clients; j++) {
            const struct cidr *c = &t->clients[j];
            bool v4 = ipaddr_is_v4(&c->net) && c->bits >= 96;
            if ((v4 && c->bits < 96 + 8) || (!v4 && c->bits < 16)) {
                char n[64];
                diag_at(warn, t->file, t->client_pos[j].line, t->client_pos[j].col,
                        "warning: client network %s is very large: every client in it that does not log in "
                        "is taken for tenant %s, inbound mail too",
                        cidr_format(c, n, sizeof n), t->name);
            }
        }
        for (size_t j = 0; j < t->n_dkim; j++)
            if (t->dkim[j].active && access(t->dkim[j].key_path, R_OK) != 0)
                diag_at(warn, t->file, t->dkim[j].pos.line, t->dkim[j].pos.col,
                        "warning: dkim key %s is not readable here (the milter will refuse to load it)",
                        t->dkim[j].key_path);
    }
}
