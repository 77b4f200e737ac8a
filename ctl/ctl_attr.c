/* ctl_attr.c: whose a message in Postfix's queue or log is, for the
 * commands that report per tenant and account from Postfix's side (queue,
 * bounces): postern-milter's audit record of its queue ID names the
 * tenant and account of a submission it saw; a record naming only a
 * (receiving) tenant is its verdict on inbound mail, which is nobody's;
 * else the sender's tenant and account by the rules; else "-". */
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "audit.h"
#include "ctl.h"
#include "rules_index.h"

static bool ctl_attr_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool ctl_attr_cb(const struct audit_rec *r, void *arg)
{
    struct ctl_attr *a = arg;
    if (strcmp(r->component, "milter") != 0 || !ctl_attr_set(r->tenant))
        return true;
    if (!ctl_attr_set(r->account)) {
        a->inbound = true;
    } else if (a->tenant == NULL) {
        a->tenant = mem_strdup(r->tenant);
        a->account = mem_strdup(r->account);
    }
    return a->tenant == NULL;
}

struct store *ctl_attr_open(struct ctl *c)
{
    struct buf path;
    buf_init(&path);
    buf_printf(&path, "%s/%s", c->conf.state_dir, ctl_milter_state.store_file);
    struct store *s = NULL;
    if (access(path.data, F_OK) == 0) {
        const struct ctl_state *was = c->state;
        c->state = &ctl_milter_state;
        s = ctl_store_open(c, false);
        c->state = was;
        if (s == NULL)
            fputs("posternctl: warning: without postern-milter's audit trail, messages are attributed by "
                  "their sender only\n", stderr);
    }
    buf_free(&path);
    return s;
}

bool ctl_attr_lookup(struct store *s, const char *queue_id, struct ctl_attr *a, struct buf *err)
{
    struct audit_filter f = { .queue_id = queue_id };
    return s == NULL || audit_query(s, &f, ctl_attr_cb, a, err);
}

void ctl_attr_resolve(const struct rules *r, const struct ctl_attr *a, const char *sender, const char **tenant,
                      const char **account)
{
    *tenant = "-";
    *account = "-";
    if (a != NULL && a->tenant != NULL) {
        *tenant = a->tenant;
        *account = a->account;
    } else if ((a == NULL || !a->inbound) && r != NULL && sender != NULL) {
        const struct tenant *st = rules_find_sender_tenant(r, sender);
        if (st != NULL) {
            const struct account *acc = rules_find_account(r, sender);
            *tenant = st->name;
            *account = acc != NULL && acc->tenant == st ? acc->name : "*";
        }
    }
}

void ctl_attr_free(struct ctl_attr *a)
{
    mem_free(a->tenant);
    mem_free(a->account);
    memset(a, 0, sizeof *a);
}
