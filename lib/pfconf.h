/* pfconf.h: what Postfix needs from postern's rules and postern.yaml
 * (posternctl postfix-config), and how that compares with what Postfix
 * has.  Pure logic, no I/O:
 *   - the wanted main.cf settings (the milter, its default action and
 *     protocol, the policy service in the recipient and end-of-data
 *     restrictions) and one master.cf smtp transport per outbound pool of
 *     the rules (smtp_bind_address, smtp_bind_address6, smtp_helo_name);
 *   - parsing the text of `postconf -n` (name = value) and of `postconf -M`
 *     (one service a line; raw master.cf text is read too: continuation
 *     lines, comments, -o name=value and -o { name = value });
 *   - comparing the two into a list of differences, each with where it is
 *     (main.cf, master.cf), the setting, what Postfix has and what postern
 *     wants, and a line for humans.
 * Only the fields of the rules snapshot are read (no rules_* function), so
 * that this file stays in libpostern. */
#ifndef POSTERN_PFCONF_H
#define POSTERN_PFCONF_H
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "rules.h"

/* Postfix's compiled-in queue_directory on Debian: the default when the
 * running Postfix cannot be asked. */
#define PFCONF_QUEUE_DIR "/var/spool/postfix"

enum pfconf_match {
    PFCONF_EQUAL,      /* the value, word for word */
    PFCONF_MILTER,     /* a milter list that holds the milter's endpoint */
    PFCONF_POLICY,     /* a restriction list that holds check_policy_service ENDPOINT */
};

/* One main.cf parameter postern needs. */
struct pfconf_param {
    char *name;
    char *value;       /* what is printed: "tempfail", "unix:private/postern-milter" */
    char *want;        /* what must be there: the value, or "check_policy_service unix:..." */
    enum pfconf_match match;
};

/* One master.cf transport of an outbound pool. */
struct pfconf_transport {
    char *name;
    bool manual;       /* no ips in the rules: kept in master.cf by hand, only its existence checked */
    char *bind4;       /* smtp_bind_address, or NULL */
    char *bind6;       /* smtp_bind_address6, or NULL */
    char *helo;        /* smtp_helo_name, or NULL */
    char *ips;         /* every address of the pool, sorted, blank-separated (for comparisons) */
    struct rules_pos pos;  /* the outbound that set it (the first with ips) */
    char **users;      /* "tenant acme", "account news@acme.example (tenant acme)" */
    size_t n_users;
};

struct pfconf_want {
    char *queue_dir;
    char *milter;              /* postern.yaml's milter.listen */
    char **policy;             /* postern.yaml's policyd.listen */
    size_t n_policy;
    struct pfconf_param *params;
    size_t n_params;
    struct pfconf_transport *transports;   /* sorted by name */
    size_t n_transports;
    char **errors;             /* the same transport set up differently: exit 1 */
    size_t n_errors;
    char **warnings;           /* a pool with more addresses than a transport binds */
    size_t n_warnings;
};

/* The settings the rules and the config need.  queue_dir: Postfix's
 * queue_directory (unix sockets under it are written relative to it, as
 * Postfix's daemons read them); NULL for PFCONF_QUEUE_DIR. */
void pfconf_want_build(struct pfconf_want *w, const struct rules *r, const struct postern_conf *c,
                       const char *queue_dir);
void pfconf_want_free(struct pfconf_want *w);

/* The endpoint "unix:/path" or "inet:host:port" in Postfix's syntax:
 * "unix:private/x" when /path is under queue_dir, else as is.  Caller frees. */
char *pfconf_endpoint(const char *endpoint, const char *queue_dir);
/* The other way: an endpoint as Postfix reads it ("unix:private/x",
 * "private/x", "unix:/abs", "inet:h:p") as an absolute one, for
 * comparisons.  Caller frees. */
char *pfconf_endpoint_abs(const char *endpoint, const char *queue_dir);

/* The main.cf lines (comments included) and the master.cf lines. */
void pfconf_print_main(const struct pfconf_want *w, struct buf *out);
void pfconf_print_master(const struct pfconf_want *w, struct buf *out);
/* One transport's master.cf line (no newline). */
void pfconf_transport_line(const struct pfconf_transport *t, struct buf *out);

/* Parsed `postconf -n` (or main.cf) text: name = value, the last one of
 * a name counts. */
struct pfconf_main {
    char **names;
    char **values;
    size_t n;
    size_t n_bad;              /* lines that are neither a setting, a comment nor blank */
};
void pfconf_main_parse(const char *text, struct pfconf_main *m);
void pfconf_main_free(struct pfconf_main *m);
/* The value of name, or NULL when it is not there. */
const char *pfconf_main_get(const struct pfconf_main *m, const char *name);

struct pfconf_opt {
    char *name;
    char *value;               /* NULL: "-o name" without '=' (Postfix refuses it) */
};

/* One master.cf service. */
struct pfconf_service {
    char *name, *type;
    char *fields[5];           /* private, unpriv, chroot, wakeup, maxproc */
    char *command;
    struct pfconf_opt *opts;   /* the -o options, in order */
    size_t n_opts;
    char **args;               /* the other arguments */
    size_t n_args;
    int line;                  /* first line of the service in the text */
};

struct pfconf_master {
    struct pfconf_service *v;
    size_t n;
    size_t n_bad;              /* lines with fewer than 8 fields */
};
void pfconf_master_parse(const char *text, struct pfconf_master *m);
void pfconf_master_free(struct pfconf_master *m);
/* The value of the last "-o name=..." of s (Postfix: the last one wins),
 * or NULL; *bad (may be NULL) set when a "-o name" without '=' is there. */
const char *pfconf_service_opt(const struct pfconf_service *s, const char *name, bool *bad);

struct pfconf_diff {
    const char *where;         /* "main.cf" or "master.cf" */
    char *name;                /* the parameter or the transport */
    char *key;                 /* master.cf: "service", "type", "command", "smtp_bind_address", ...;
                                * main.cf: the parameter */
    char *have;                /* NULL: not there */
    char *want;
    char *rules;               /* "rules.d/acme.yaml:4", or NULL */
    char *text;                /* the whole difference on one line, for humans */
};

struct pfconf_diffs {
    struct pfconf_diff *v;
    size_t n;
};

/* Compare.  explicit: `postconf -n`; defaults: `postconf -d NAMES` (may be
 * NULL): a parameter not in explicit has its default; master: `postconf
 * -M`.  Appends every difference to out. */
void pfconf_compare(const struct pfconf_want *w, const struct pfconf_main *explicit,
                    const struct pfconf_main *defaults, const struct pfconf_master *master,
                    struct pfconf_diffs *out);
void pfconf_diffs_free(struct pfconf_diffs *d);

#endif
