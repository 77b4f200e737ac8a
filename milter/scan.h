/* scan.h: what postern-milter makes of the scanners' verdicts (scanner.h)
 * under the tenants' `scan` rules: which scanners a message needs, the
 * reply or hold, the headers, and the audit summary.  Pure logic: no I/O.
 *
 * Whose rules: a tenant submission gets its tenant's; inbound mail gets
 * those of every tenant one of its recipients belongs to (recipients of no
 * tenant bring nothing), merged to the strictest: antivirus reject >
 * tempfail > quarantine > off; spam action reject > quarantine > header >
 * off, the lowest threshold and reject_above, the largest max_size.
 * spamd's User: is the first such tenant with spam on.  A scanner that is
 * not configured (postern.yaml) is never called.
 *
 * Outcome (scan_decide), first that applies:
 *  1. clamd found a virus and antivirus is reject: 550 5.7.1 naming it.
 *  2. spam score above reject_above, or at/above threshold with action
 *     reject: 550 5.7.1 with the score.
 *  3. clamd found a virus and antivirus is tempfail: 451 4.7.1.
 *  4. a scanner failed (down, timeout, garbage, spool error) and its
 *     on_failure is tempfail: 451 4.3.0.
 *  5. a virus with antivirus quarantine, or spam at/above threshold with
 *     action quarantine: Postfix's hold queue with the reason.
 *  6. accept.
 * In 5 and 6 the headers are added: X-Virus-Status (Clean, or Infected
 * with the name) and X-Virus-Scanned when clamd answered; X-Spam-Flag
 * (YES, at/above threshold), X-Spam-Score and X-Spam-Status ("Yes,
 * score=7.2 required=5.0 tests=A,B") when spamd answered; and
 * X-Postern-Not-Scanned naming each scanner that did not scan and why
 * (over the tenant's max_size, over the scanner's own max_size in
 * postern.yaml or clamd's StreamMaxLength, or its failure with on_failure
 * accept: "scanner unavailable", "scanner timed out", "scanner busy",
 * "unreadable answer from the scanner", "temporary file error"; the error
 * itself goes to the log and the audit record only).  Incoming headers of those names are removed from every message
 * that is scanned (scan_header_ours()), so a sender cannot forge them. */
#ifndef POSTERN_MILTER_SCAN_H
#define POSTERN_MILTER_SCAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "scanner.h"

/* What one message needs; zeroed = nothing. */
struct scan_plan {
    bool av, spam;                 /* call clamd / spamd */
    enum av_action antivirus;
    const char *av_by;             /* the tenant whose rule set antivirus */
    enum spam_action spam_action;
    const char *spam_by;
    double threshold;
    bool reject_above_set;
    double reject_above;
    uint64_t max_size;
    const char *user;              /* spamd User: */
};

/* Daemon-wide: which scanners exist and their fallbacks. */
struct scan_cfg {
    bool have_clamd, have_spamd;
    bool clamd_accept_on_failure;  /* clamd.on_failure: accept */
    bool spamd_accept_on_failure;  /* spamd.on_failure: accept */
    const char *host;              /* milter.authserv_id: named in X-Virus-Scanned */
};

/* Merge tenant t's scan rules into p (the tenant's defaults when it has
 * no scan key). */
void scan_plan_add(struct scan_plan *p, const struct scan_cfg *cfg, const struct tenant *t);
/* True when the plan calls a scanner. */
bool scan_plan_any(const struct scan_plan *p);

/* True for a header name scan_decide() may add (case-insensitive). */
bool scan_header_ours(const char *name);
/* Those names: scan_header_index() gives the position of one in
 * scan_our_headers (-1: not ours). */
#define SCAN_OUR_HEADERS 6
extern const char *const scan_our_headers[SCAN_OUR_HEADERS + 1];
int scan_header_index(const char *name);

enum scan_action { SCAN_ACCEPT, SCAN_REJECT, SCAN_TEMPFAIL, SCAN_QUARANTINE };

#define SCAN_MAX_HEADERS 6

struct scan_outcome {
    enum scan_action action;
    char rcode[4], xcode[8];
    char text[300];                /* reply text, or the hold reason */
    struct {
        const char *name;
        char value[1600];
    } headers[SCAN_MAX_HEADERS];   /* to insert on top, in this order */
    size_t n_headers;
    char summary[1600];            /* audit reason: each scanner's verdict, score, time taken */
    const char *rule;              /* "scan.antivirus", "scan.spam", "clamd.on_failure", ... or "scan" */
    const char *tenant;            /* whose rule decided */
};

/* size: the message's bytes; too_large: over p->max_size (nothing sent);
 * av/spam: the results (SCAN_NOT_RUN for a scanner not called). */
void scan_decide(const struct scan_plan *p, const struct scan_cfg *cfg, uint64_t size, bool too_large,
                 const struct scan_result *av, const struct scan_result *spam, struct scan_outcome *out);

#endif
