/* ctl.h: what the commands of posternctl share: the invocation (config
 * and rules paths, the loaded config), loading the rules, opening
 * policyd's state file and ingesting the daemon's journal into it, time
 * arguments, and the two output forms (a text field on a human line, a
 * JSON string).  posternctl.c holds the command table and "ingest";
 * ctl_usage.c the counter commands; ctl_audit.c the audit search;
 * ctl_dkim.c the DKIM keys and the DNS records of a tenant; ctl_scan.c
 * whether the scanners answer; ctl_pace.c the schedule of pacing mode
 * hold (list, release, pause, resume); ctl_postfix.c the Postfix
 * configuration the rules need (postfix-config); ctl_maillog.c Postfix's
 * log read into maillog.sqlite (ingest MAILLOG); ctl_attr.c whose a
 * message is; ctl_queue.c, ctl_bounces.c, ctl_trace.c, ctl_stats.c and
 * ctl_reputation.c the operator's reports on Postfix's side. */
#ifndef POSTERN_CTL_H
#define POSTERN_CTL_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "buf.h"
#include "conf.h"
#include "rules.h"
#include "store.h"

/* A daemon's state in state_dir: its store and its journal. */
struct ctl_state {
    const char *daemon;        /* "postern-policyd" */
    const char *store_file;    /* "policyd.sqlite" */
    const char *journal_dir;   /* "journal" */
};
extern const struct ctl_state ctl_policyd_state, ctl_milter_state;

struct ctl {
    const struct ctl_state *state; /* whose state the store functions open (policyd's by default) */
    const char *conf_path;     /* -c, or NULL for the default */
    const char *rules_dir;     /* -r overrides the config's rules */
    const char *usage;         /* the running command's usage line */
    struct postern_conf conf;
};

/* The name of policyd's state file under state_dir. */
#define CTL_POLICYD_STORE "policyd.sqlite"

/* Load postern.yaml (selects its time zone); 0, or 1 after printing the
 * errors. */
int ctl_load_conf(struct ctl *c);
const char *ctl_rules_dir(const struct ctl *c);
/* The rules snapshot, or NULL after printing the errors. */
struct rules *ctl_load_rules(struct ctl *c, bool quiet_warnings);
/* Print "usage: posternctl <usage line>" to stderr; returns 2. */
int ctl_bad_usage(const struct ctl *c);
/* Handle -c/-r given after the command word (getopt_long's ch, optarg);
 * false when ch is neither. */
bool ctl_common_option(struct ctl *c, int ch, const char *arg);

/* Open <state_dir>/policyd.sqlite (c->state's store): read-only
 * (STORE_READONLY) unless write.  NULL after printing the reason: a
 * missing file is "no policyd state at PATH (has postern-policyd run?)". */
struct store *ctl_store_open(const struct ctl *c, bool write);
/* Can this user write the state file (and its -wal/-shm files, or create
 * them)?  SQLite opens a file it cannot write read-only without a word. */
bool ctl_store_writable(const struct ctl *c);
/* Ingest the journal (<state_dir>/journal, journal.h) into s: everything
 * the daemon decided is in the store after it.  *n records moved,
 * *through the id the store holds the journal through (either may be
 * NULL).  A missing journal has nothing to ingest.  False after printing
 * the cause (nothing changed). */
bool ctl_journal_ingest(const struct ctl *c, struct store *s, size_t *n, int64_t *through);
/* For the commands that read the state (usage, audit): open it
 * read-write and ingest the journal, so that they never show less than
 * the daemon decided; when it cannot be written here, read-only with a
 * warning on stderr of how many journaled records it lacks.  NULL after
 * printing the reason (a failed ingestion included). */
struct store *ctl_store_open_ingested(const struct ctl *c);

/* The options of a command whose only own one is --json (besides -c, -r
 * and -h): -1 to go on, with optind at the first operand; else the exit
 * status (0 after -h, 2 after a bad option, its usage printed). */
int ctl_json_opts(struct ctl *c, int argc, char **argv, bool *json);

/* A time argument: "now", a duration back from now_us ("2h", "30m",
 * "1d12h"), or ISO 8601 "YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM|-HH:MM]" (' '
 * may replace 'T'; without an offset, in the configured time zone).
 * False with err set ("expected ..., found ..."). */
bool ctl_time_parse(const char *s, int64_t now_us, int64_t *out_us, struct buf *err);
/* "2026-11-28T10:00:00+01:00" in the configured zone; out >= 40 bytes. */
void ctl_time_format(time_t t, char *out, size_t size);

/* A field of a human-readable line: "-" for NULL or "", the text as is
 * when it is printable and holds no blank or '"', else in double quotes
 * with '"' and '\' escaped and control bytes as \xNN, so that one record
 * is always one line. */
void ctl_put_field(FILE *out, const char *s);
/* A JSON string (null for NULL): escapes '"', '\' and control bytes;
 * bytes that are not valid UTF-8 become U+FFFD. */
void ctl_put_json(FILE *out, const char *s);

/* The commands (argv[0] is the command word; getopt_long-able). */
int ctl_usage_show(struct ctl *c, int argc, char **argv);
int ctl_counters_reset(struct ctl *c, int argc, char **argv);
int ctl_audit_search(struct ctl *c, int argc, char **argv);
/* ctl_dkim.c: dkim keygen, dns TENANT, dkim check TENANT. */
int ctl_dkim_keygen(struct ctl *c, int argc, char **argv);
int ctl_dkim_dns(struct ctl *c, int argc, char **argv);
int ctl_dkim_check(struct ctl *c, int argc, char **argv);
/* For reputation: add o's addresses to ips (each once); the SPF record
 * the rules ask of t ("v=spf1 ip4:... -all"), false when t has no
 * outbound addresses; dkim check's state of key k ("OK", "MISMATCH",
 * "REVOKED", "BAD", "MISSING", "UNREADABLE", "ERROR") with the
 * resolver rs, why saying why. */
struct __res_state;
void ctl_dkim_ips_add(const struct outbound *o, struct ipaddr **ips, size_t *n);
bool ctl_dkim_spf_value(const struct tenant *t, struct buf *out);
const char *ctl_dkim_key_verify(struct __res_state *rs, const struct dkim_key *k, struct buf *why);
/* ctl_scan.c: scanners. */
int ctl_scanners(struct ctl *c, int argc, char **argv);
/* A store just created under dir by root belongs to dir's owner (the
 * daemon's user), who must write it: path and its -wal/-shm files are
 * given to it (a warning when that fails). */
void ctl_store_give(const char *dir, const char *path);
/* The options of a report (bounces, stats): --tenant T, --since TIME
 * (default 1d, into *since_us), --json, -c, -r, -h; no operand; the
 * config loaded.  -1 to go on; else the exit status (0 after -h, 1 when
 * the config fails, 2 on bad usage or a bad --since, said). */
int ctl_report_opts(struct ctl *c, int argc, char **argv, const char **tenant, int64_t *since_us, bool *json);
/* A duration for people: "3 min 20 s", "2 h", "< 1 s" (the two largest
 * units). */
void ctl_duration(int64_t secs, char *out, size_t size);
/* ctl_attr.c: whose a message in Postfix's queue or log is: the
 * milter's audit record of its queue ID (a submission: tenant and
 * account; a record naming only a tenant: inbound mail, nobody's), else
 * the sender's tenant and account by the rules, else "-". */
struct ctl_attr {
    char *tenant, *account;    /* NULL: no milter record names them */
    bool inbound;              /* a record names a (receiving) tenant without an account */
};
/* postern-milter's store, read-only, when there is one; NULL (after a
 * warning when it exists but cannot be read) otherwise. */
struct store *ctl_attr_open(struct ctl *c);
/* Fold the milter's records of queue_id into a (s NULL: nothing). */
bool ctl_attr_lookup(struct store *s, const char *queue_id, struct ctl_attr *a, struct buf *err);
/* The tenant and account (pointing into a or the rules; "-" for none). */
void ctl_attr_resolve(const struct rules *r, const struct ctl_attr *a, const char *sender, const char **tenant,
                      const char **account);
void ctl_attr_free(struct ctl_attr *a);
/* ctl_bounces.c: bounces and deferrals by class, tenant and receiving
 * domain, from the ingested mail log */
int ctl_bounces(struct ctl *c, int argc, char **argv);
/* ctl_trace.c: the story of a message, or of the mail to or from an
 * address: policy decisions, milter actions, delivery attempts */
int ctl_trace(struct ctl *c, int argc, char **argv);
/* ctl_stats.c: per tenant and account: submitted, rejected, signed,
 * held, delivered, bounced, deferred */
int ctl_stats(struct ctl *c, int argc, char **argv);
/* ctl_reputation.c: a tenant's outbound addresses and domains on DNS
 * block lists, and its SPF, DKIM and DMARC records against the rules */
int ctl_reputation(struct ctl *c, int argc, char **argv);
/* ctl_postfix.c: the main.cf and master.cf lines the rules need, and
 * with --check their differences from the running Postfix */
int ctl_postfix_config(struct ctl *c, int argc, char **argv);
/* ctl_queue.c: Postfix's queue per tenant and account */
int ctl_queue(struct ctl *c, int argc, char **argv);
/* ctl_pace.c: pacing [ACCOUNT], pacing release|pause|resume ACCOUNT. */
int ctl_pacing(struct ctl *c, int argc, char **argv);
int ctl_pacing_release(struct ctl *c, int argc, char **argv);
int ctl_pacing_pause(struct ctl *c, int argc, char **argv);
int ctl_pacing_resume(struct ctl *c, int argc, char **argv);
/* ctl_maillog.c: ingest's mail-log part: read the n files (with follow
 * and none, /var/log/mail.log) from where the last run stopped into
 * <state_dir>/maillog.sqlite; with follow, go on reading what is appended
 * (rotation followed) until SIGINT or SIGTERM.  The exit status. */
int ctl_maillog_ingest(struct ctl *c, bool follow, bool json, int n, char **paths);

#endif
