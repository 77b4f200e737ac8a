/* bounce.h: the class of a failed delivery (unknown user, mailbox full,
 * message too big, blocked as spam or by policy, DNS or no route, TLS,
 * other), from its enhanced status code (dsn=), status word and remote
 * reply text, by an ordered table of rules: the first rule that matches
 * wins.  A rule has a code pattern, a text, or both (both must match):
 *   code  "?.1.1": '?' is 4 or 5, 'x' any number, digits themselves;
 *   text  a substring of the reply, compared case-insensitively.
 * The order encodes the precedence:
 *   1. specific codes decide whatever the text says (x.1.1 and x.1.10 and
 *      5.2.1 unknown user, x.2.2 mailbox full, x.3.4 and x.2.3 too big,
 *      x.1.2 DNS, x.7.4 and x.7.5 TLS), and Outlook's 5.4.1 "Recipient
 *      address rejected" is an unknown user;
 *   2. texts that are clearly about TLS (STARTTLS, "TLS is required",
 *      certificate verification), whatever the code (5.7.0 "Must issue a
 *      STARTTLS command first" is TLS);
 *   3. any other x.7.x is policy, even when its text says "user unknown";
 *      any other x.4.x is DNS or no route;
 *   4. for the remaining codes (generic ones: 5.0.0, 4.0.0, 5.5.0, 5.1.0,
 *      or none), the text: too big, then mailbox full, then unknown user,
 *      then policy (spam, block lists, reputation), then DNS or route;
 *   5. nothing matched: other.
 * "sent" and "deliverable" outcomes, and 2.x.x codes, are BOUNCE_NONE. */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum bounce_class {
    BOUNCE_NONE,          /* not a failure */
    BOUNCE_UNKNOWN_USER,
    BOUNCE_MAILBOX_FULL,
    BOUNCE_TOO_BIG,
    BOUNCE_POLICY,
    BOUNCE_DNS_OR_ROUTE,
    BOUNCE_TLS,
    BOUNCE_OTHER,
};
#define BOUNCE_NCLASSES 8

struct bounce_rule {
    const char *code;     /* enhanced status code pattern; NULL: any code (or none) */
    const char *text;     /* lower-case substring of the reply; NULL: any text */
    enum bounce_class cls;
};

/* Classify one outcome.  Each argument is a (pointer, length) slice that
 * need not be NUL-terminated and may be (NULL, 0): dsn "5.1.1" (anything
 * that is not [245].N.N counts as no code), status "bounced", reply the
 * remote reply text (or Postfix's own explanation).  *rule (when not NULL)
 * receives the index of the matching rule, or bounce_rule_count() when none
 * matched (OTHER) or the outcome is not a failure (NONE). */
enum bounce_class bounce_classify(const char *dsn, size_t dsn_len, const char *status,
                                  size_t status_len, const char *reply, size_t reply_len,
                                  size_t *rule);

/* The rule table, in order (for the man page and "why" output). */
size_t bounce_rule_count(void);
const struct bounce_rule *bounce_rule_get(size_t i);   /* NULL past the end */
/* The table as text: a legend, then one line per rule "N CODE TEXT CLASS"
 * ('*' for any code or text). */
void bounce_table_print(FILE *f);

/* "none", "unknown_user", "mailbox_full", "too_big", "policy",
 * "dns_or_route", "tls", "other" */
const char *bounce_class_name(enum bounce_class c);
/* "not a failure", "unknown user", "mailbox full", "message too big",
 * "blocked as spam or by policy", "DNS or no route", "TLS", "other" */
const char *bounce_class_label(enum bounce_class c);
/* The class named name (as bounce_class_name gives it); false if none. */
bool bounce_class_parse(const char *name, enum bounce_class *out);

#endif
