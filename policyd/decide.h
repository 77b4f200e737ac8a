/* decide.h: the decision engine of postern-policyd.  One policy request in,
 * one action out, from the rule snapshot and the quota counters only: no
 * I/O besides the counters, so the golden tests (tests/policy/) drive it
 * directly with a fixed clock.
 *
 * Stages: RCPT identifies the sender, enforces IP binding and the
 * per-message limits, and only looks at the quotas (early 4xx); it answers
 * FILTER <transport>: for a tenant message with an outbound binding (the
 * FILTER holds for the whole message even when END-OF-MESSAGE answers HOLD).
 * END-OF-MESSAGE checks every limit again and counts the message (+1
 * message, +recipient_count, +size on the account and on the tenant) in
 * one counters transaction, only when it is permitted.  Other stages
 * answer DUNNO.  Every call yields a decision to audit, DUNNO included. */
#ifndef POSTERN_POLICY_DECIDE_H
#define POSTERN_POLICY_DECIDE_H
#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "buf.h"
#include "counters.h"
#include "ptime.h"
#include "request.h"
#include "rules.h"

struct decide_env {
    const struct rules *rules;
    struct counters *counters;
    const struct clock *clock;
};

/* What the engine remembers between the requests of one connection: the
 * recipients it let through for the message being received. */
struct decide_conn {
    char instance[64];
    uint64_t rcpts;
};

struct decision {
    struct buf action;         /* the reply, e.g. "DUNNO", "FILTER acme-out:", "451 4.7.1 ..." */
    struct buf reason;         /* why, in words, for the audit and the log */
    struct buf counters;       /* counter values that decided ("key=value+add/limit ...") */
    const char *rule;          /* which rule decided: "binding.sender_domain", "quota.account.messages.day" ... */
    const char *stage;         /* "rcpt", "eom", "other" */
    char tenant[80];           /* "" when not a tenant submission */
    char account[264];         /* account name; for "*" the login or sender it counts */
    bool store_error;          /* the store failed: answer the configured on_error instead */
    bool counted;              /* END-OF-MESSAGE counted this message */
};

void decision_init(struct decision *d);
void decision_reset(struct decision *d);
void decision_free(struct decision *d);

void decide(const struct decide_env *env, struct decide_conn *conn, const struct policy_request *req,
            struct decision *out);

/* Fill an audit record (component "policyd") from a request and its
 * decision; the record points into both, and recipients into *rcpt. */
void decide_audit(const struct policy_request *req, const struct decision *d, const char **rcpt,
                  struct audit_rec *rec);

/* Counter keys: "t:TENANT:METRIC" and "a:TENANT:ACCOUNT:METRIC" (METRIC
 * messages, recipients or bytes; ACCOUNT the declared account, or for "*"
 * the login or sender counted on its own).  posternctl reads them back. */
void decide_counter_key(struct buf *out, const char *tenant, const char *account, const char *metric);

#endif
