/* rules.h: the in-memory model of the tenant rules: one immutable snapshot
 * per load of rules.d/, holding every tenant with its domains, client
 * networks, outbound setting, DKIM keys, limits, accounts, pacing, scan and
 * inbound settings, plus the lookup index (rules_index.h).  A snapshot is
 * never modified after rules_load() returns it; daemons swap snapshots on
 * reload and keep a reference while a request uses one. */
#ifndef POSTERN_RULES_H
#define POSTERN_RULES_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cidr.h"
#include "grammar.h"
#include "ptime.h"

enum on_exceed { EXCEED_DEFER, EXCEED_REJECT, EXCEED_HOLD };
enum pace_mode { PACE_DELAY, PACE_DEFER, PACE_HOLD };
enum av_action { AV_REJECT, AV_TEMPFAIL, AV_QUARANTINE, AV_OFF };
enum spam_action { SPAM_HEADER, SPAM_QUARANTINE, SPAM_REJECT, SPAM_OFF };
enum inbound_mode { INBOUND_OFF, INBOUND_HEADER, INBOUND_ENFORCE };

extern const char *const rules_on_exceed_names[];
extern const char *const rules_pace_mode_names[];
extern const char *const rules_av_names[];
extern const char *const rules_spam_names[];
extern const char *const rules_inbound_names[];

/* Where a setting was written, for messages that name both places. */
struct rules_pos {
    const char *file;          /* points into the snapshot's file table */
    int line, col;
};

struct outbound {
    bool set;
    char *transport;           /* master.cf service name */
    struct ipaddr *ips;        /* may be empty: transport managed by hand */
    size_t n_ips;
    char *helo;                /* NULL: Postfix's default */
    struct rules_pos pos;
};

struct dkim_key {
    char *domain;
    char *selector;
    char *key_path;
    int algorithm;             /* 0 from the key file, 1 rsa-sha256, 2 ed25519-sha256 */
    bool active;               /* signs; inactive keys are published, not used */
    char *canon;               /* "relaxed/relaxed" by default */
    bool subdomains;           /* also signs (d=domain) mail from subdomains the tenant does not list */
    struct rules_pos pos;
};

/* Windowed quotas are indexed by window unit: at most one per unit. */
struct limits {
    struct quota messages[WIN_COUNT];
    struct quota recipients[WIN_COUNT];
    struct quota bytes[WIN_COUNT];
    bool message_size_set;
    uint64_t message_size;
    bool rcpt_per_msg_set;
    uint64_t recipients_per_message;
    bool on_exceed_set;
    enum on_exceed on_exceed;
};

struct pace {
    bool set;
    struct pace_rate rate;
    uint64_t burst;            /* default 1 */
    enum pace_mode mode;       /* default delay */
    uint64_t max_delay_ms;     /* delay mode only; default 20 s, at most 240 s */
};

struct scan {
    bool set;
    enum av_action antivirus;  /* default reject */
    enum spam_action spam;     /* default header */
    double spam_threshold;     /* default 5.0 */
    bool reject_above_set;
    double reject_above;
    uint64_t max_size;         /* default 10M */
};

struct inbound {
    bool set;
    enum inbound_mode spf, dkim, dmarc;   /* default header */
};

struct account {
    char *name;                /* login or sender address (lowercase), or "*" */
    bool implicit;             /* the "*" account the file did not declare */
    struct tenant *tenant;
    struct outbound outbound;  /* .set false: the tenant's applies */
    struct limits limits;
    struct pace pace;
    struct rules_pos pos;
};

struct tenant {
    char *name;
    const char *file;
    struct rules_pos pos;
    char *description;
    char **domains;
    struct rules_pos *domain_pos;
    size_t n_domains;
    struct cidr *clients;
    struct rules_pos *client_pos;
    size_t n_clients;
    struct outbound outbound;
    struct dkim_key *dkim;
    size_t n_dkim;
    struct limits limits;
    struct pace pace;          /* tenant-wide bucket, optional */
    struct account *accounts;
    size_t n_accounts;
    struct account *wildcard;  /* the "*" account (declared or implicit) */
    struct scan scan;
    struct inbound inbound;
};

struct rules_index;

struct rules {
    int refs;                  /* atomic */
    char *dir;
    char **files;              /* every file loaded, sorted */
    size_t n_files;
    struct tenant *tenants;    /* sorted by name */
    size_t n_tenants;
    struct rules_index *index;
};

/* Defaults applied when a key is absent (documented in rules/README.md). */
#define RULES_DEFAULT_MAX_DELAY_MS 20000u
#define RULES_MAX_MAX_DELAY_MS 240000u
#define RULES_DEFAULT_SCAN_MAX_SIZE (10u << 20)
#define RULES_DEFAULT_SPAM_THRESHOLD 5.0

struct rules *rules_ref(struct rules *r);
void rules_unref(struct rules *r);

const struct tenant *rules_tenant(const struct rules *r, const char *name);

/* Effective settings of an account: its own, else its tenant's, else the
 * defaults. */
const struct outbound *account_outbound(const struct account *a);
enum on_exceed account_on_exceed(const struct account *a);
bool account_message_size(const struct account *a, uint64_t *out);
bool account_rcpt_per_msg(const struct account *a, uint64_t *out);
enum on_exceed tenant_on_exceed(const struct tenant *t);

/* Print the effective settings of a tenant (posternctl rules show). */
void rules_show_tenant(const struct tenant *t, FILE *out);
/* One-line summary (posternctl check). */
void rules_summary_tenant(const struct tenant *t, FILE *out);

#endif
