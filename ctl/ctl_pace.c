/* ctl_pace.c: posternctl pacing: the schedule of pacing mode hold
 * (holdq.h) that postern-milter keeps in its pace store,
 * STATE_DIR/pace.sqlite (pacer.h):
 *   pacing [ACCOUNT]       the accounts that have messages held or are
 *                          paused; or one account with its held queue in
 *                          release order;
 *   pacing release ACCOUNT release its first messages now, outside the
 *                          pace: claimed in the schedule (so that a
 *                          running milter does not release them too),
 *                          postsuper -H, postqueue -i (so that they leave
 *                          now, not at the next deferred-queue scan), then
 *                          out of the schedule;
 *   pacing pause|resume ACCOUNT  the account's pause flag (paused: the
 *                          milter holds all its new messages and releases
 *                          none).
 * ACCOUNT is the schedule's key "TENANT/WHO" (WHO: the SASL login or the
 * sender address), as postern-milter writes it.  Every release, pause and
 * resume is an audit record in postern-milter's store
 * (STATE_DIR/milter.sqlite): component "ctl", stage "pacing". */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "audit.h"
#include "ctl.h"
#include "grammar.h"
#include "holdq.h"
#include "log.h"
#include "pacer.h"
#include "postq.h"
#include "ptime.h"
#include "qid.h"

#define PACE_SHOW_MAX 20        /* held messages one account's text view lists */
#define PACE_COUNT_MAX 1000000  /* release --count */

/* The pace store, as a daemon state of ctl.h (for ctl_store_writable). */
static const struct ctl_state pace_state = { "postern-milter", PACE_STORE_FILE, "milter-journal" };

static int64_t pace_now_ns(void)
{
    struct clock wall = clock_system();   /* the schedule's times are wall-clock */
    return clock_now_us(&wall) * 1000;
}

static void pace_path(const struct ctl *c, const char *file, struct buf *out)
{
    buf_reset(out);
    buf_printf(out, "%s/%s", c->conf.state_dir, file);
}

static void pace_no_state(FILE *out, const char *path)
{
    fprintf(out, "%sno pacing state at %s (has postern-milter held any message?)\n",
            out == stderr ? "posternctl: " : "", path);
}

/* ACCOUNT "TENANT/WHO" into key, lowercased (postern-milter writes the
 * rules' tenant name and a lowercase login or sender); *who: after the
 * '/'.  False after printing why. */
static bool pace_key(const char *arg, char key[HOLDQ_KEY_MAX], const char **who)
{
    const char *slash = strchr(arg, '/');
    size_t n = strlen(arg);
    bool ok = slash != NULL && slash != arg && slash[1] != '\0' && n < HOLDQ_KEY_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        if ((unsigned char)arg[i] <= ' ' || arg[i] == 0x7f)
            ok = false;
        key[i] = (char)tolower((unsigned char)arg[i]);
    }
    if (!ok) {
        fputs("posternctl: ", stderr);
        ctl_put_field(stderr, arg);
        fputs(": an account is TENANT/WHO, WHO being its SASL login or sender address "
              "(e.g. corp/news@corp.example)\n", stderr);
        return false;
    }
    key[n] = '\0';
    *who = key + (slash - arg) + 1;
    return true;
}

/* The tenant part of a key, into out (>= 256 bytes). */
static void pace_key_tenant(const char *key, const char *who, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)(who - 1 - key), key);
}

/* "3 min 20 s": the two largest units of a duration, "< 1 s" under one. */
static void pace_dur(int64_t ns, char *out, size_t size)
{
    ctl_duration(ns > 0 ? ns / 1000000000 : 0, out, size);
}

/* "600/minute, burst 10": the rule recorded at the account's last hold. */
static void pace_rate(const struct holdq_account *a, char *out, size_t size)
{
    snprintf(out, size, "%llu/%s, burst %llu", (unsigned long long)a->count, a->unit[0] ? a->unit : "period",
             (unsigned long long)a->burst);
}

/* The time to release the held messages at that rate, in seconds; -1
 * without a usable rate. */
static double pace_drain_s(const struct holdq_account *a)
{
    if (a->count == 0 || a->period_s == 0)
        return -1;
    return (double)a->held * (double)a->period_s / (double)a->count;
}

static void pace_drain(const struct holdq_account *a, char *out, size_t size)
{
    double s = pace_drain_s(a);
    if (a->held == 0)
        snprintf(out, size, "-");
    else if (s < 0)
        snprintf(out, size, "?");
    else
        pace_dur(s >= 9.2e9 ? INT64_MAX : (int64_t)(s * 1e9), out, size);
}

static void pace_json_time(FILE *out, int64_t ns)
{
    char t[40];
    if (ns <= 0) {
        fputs("null", out);
        return;
    }
    ctl_time_format((time_t)(ns / 1000000000), t, sizeof t);
    ctl_put_json(out, t);
}

/* The fields of an account's JSON object (without the braces). */
static void pace_json_account(FILE *out, const struct holdq_account *a, int64_t now_ns)
{
    char rate[96];
    pace_rate(a, rate, sizeof rate);
    fputs("\"account\": ", out);
    ctl_put_json(out, a->account);
    fputs(", \"tenant\": ", out);
    ctl_put_json(out, a->tenant);
    fputs(", \"rule_account\": ", out);
    ctl_put_json(out, a->rule_account);
    fputs(", \"rate\": ", out);
    ctl_put_json(out, rate);
    fprintf(out, ", \"count\": %llu, \"period_s\": %llu, \"unit\": ", (unsigned long long)a->count,
            (unsigned long long)a->period_s);
    ctl_put_json(out, a->unit);
    fprintf(out, ", \"burst\": %llu, \"held\": %llu, \"paused\": %s, \"oldest_held\": ",
            (unsigned long long)a->burst, (unsigned long long)a->held, a->paused ? "true" : "false");
    pace_json_time(out, a->oldest_ns);
    if (a->oldest_ns > 0)
        fprintf(out, ", \"oldest_age_s\": %lld", (long long)((now_ns - a->oldest_ns) / 1000000000));
    else
        fputs(", \"oldest_age_s\": null", out);
    double d = pace_drain_s(a);
    if (d > 9.2e18)
        d = 9.2e18;
    if (d >= 0)   /* whole seconds, rounded up */
        fprintf(out, ", \"drain_s\": %.0f", (double)(int64_t)d + ((double)(int64_t)d < d));
    else
        fputs(", \"drain_s\": null", out);
    fputs(", \"last_release\": ", out);
    pace_json_time(out, a->last_release_ns);
}

/* --- pacing [ACCOUNT] -------------------------------------------------------- */

#define PACE_COLS 6

static void pace_cells(const struct holdq_account *a, int64_t now_ns, char cells[PACE_COLS][HOLDQ_KEY_MAX])
{
    snprintf(cells[0], HOLDQ_KEY_MAX, "%s", a->account);
    pace_rate(a, cells[1], HOLDQ_KEY_MAX);
    snprintf(cells[2], HOLDQ_KEY_MAX, "%llu", (unsigned long long)a->held);
    snprintf(cells[3], HOLDQ_KEY_MAX, "%s", a->paused ? "yes" : "no");
    if (a->oldest_ns > 0)
        pace_dur(now_ns - a->oldest_ns, cells[4], HOLDQ_KEY_MAX);
    else
        snprintf(cells[4], HOLDQ_KEY_MAX, "-");
    pace_drain(a, cells[5], HOLDQ_KEY_MAX);
}

static bool pace_list(struct store *s, bool json, const char *path)
{
    static const char *const head[PACE_COLS] = { "ACCOUNT", "RATE", "HELD", "PAUSED", "OLDEST", "DRAIN" };
    static const bool right[PACE_COLS] = { false, false, true, false, false, false };
    struct holdq_account *v = NULL;
    size_t n = 0, w[PACE_COLS];
    struct buf err;
    buf_init(&err);
    if (!holdq_accounts(s, false, &v, &n, &err)) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        buf_free(&err);
        return false;
    }
    buf_free(&err);
    int64_t now = pace_now_ns();
    if (json) {
        fputs("[", stdout);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ",\n  {" : "\n  {", stdout);
            pace_json_account(stdout, &v[i], now);
            fputs("}", stdout);
        }
        fputs(n ? "\n]\n" : "]\n", stdout);
    } else if (n == 0) {
        printf("no account has messages held or is paused (%s)\n", path);
    } else {
        char (*cells)[PACE_COLS][HOLDQ_KEY_MAX] = mem_array(n, sizeof *cells);
        for (int k = 0; k < PACE_COLS; k++)
            w[k] = strlen(head[k]);
        for (size_t i = 0; i < n; i++) {
            pace_cells(&v[i], now, cells[i]);
            for (int k = 0; k < PACE_COLS; k++)
                if (strlen(cells[i][k]) > w[k])
                    w[k] = strlen(cells[i][k]);
        }
        for (size_t i = 0; i <= n; i++)
            for (int k = 0; k < PACE_COLS; k++) {
                const char *t = i == 0 ? head[k] : cells[i - 1][k];
                if (k == PACE_COLS - 1)
                    printf("%s\n", t);
                else
                    printf(right[k] ? "%*s  " : "%-*s  ", (int)w[k], t);
            }
        mem_free(cells);
    }
    mem_free(v);
    return true;
}

/* One account and its held messages (the first PACE_SHOW_MAX in text). */
static int pace_show(struct store *s, const char *key, bool json, const char *path)
{
    struct holdq_account a;
    struct holdq_msg *msgs = NULL, *claimed = NULL;
    size_t n = 0, nclaimed = 0;
    struct buf err;
    buf_init(&err);
    int found = holdq_account_get(s, key, &a, &err);
    bool ok = found >= 0 && holdq_list(s, key, false, json ? 0 : PACE_SHOW_MAX, &msgs, &n, &err) &&
              holdq_list(s, key, true, 0, &claimed, &nclaimed, &err);
    if (!ok) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        buf_free(&err);
        return 1;
    }
    buf_free(&err);
    mem_free(claimed);
    if (found == 0) {
        fprintf(stderr, "posternctl: no account \"%s\" in the pacing schedule %s (\"posternctl pacing\" lists "
                        "them)\n", key, path);
        mem_free(msgs);
        return 1;
    }
    int64_t now = pace_now_ns();
    char rate[96], d[64], t[40];
    if (json) {
        fputs("{", stdout);
        pace_json_account(stdout, &a, now);
        fprintf(stdout, ", \"releasing\": %zu,\n \"messages\": [", nclaimed);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ",\n  {\"queue_id\": " : "\n  {\"queue_id\": ", stdout);
            ctl_put_json(stdout, msgs[i].queue_id);
            fprintf(stdout, ", \"seq\": %lld, \"held_at\": ", (long long)msgs[i].seq);
            pace_json_time(stdout, msgs[i].held_ns);
            fprintf(stdout, ", \"age_s\": %lld, \"releasing\": %s, \"claimed_at\": ",
                    (long long)((now - msgs[i].held_ns) / 1000000000), msgs[i].claimed_ns ? "true" : "false");
            pace_json_time(stdout, msgs[i].claimed_ns);
            fputs("}", stdout);
        }
        fputs(n ? "\n]}\n" : "]}\n", stdout);
        mem_free(msgs);
        return 0;
    }
    pace_rate(&a, rate, sizeof rate);
    printf("account       %s\n", a.account);
    printf("tenant        %s (rules account %s)\n", a.tenant, a.rule_account);
    printf("rate          %s (the rule at its last hold)\n", rate);
    printf("paused        %s\n", a.paused ? "yes: new messages are all held, none released" : "no");
    printf("held          %llu", (unsigned long long)a.held);
    if (nclaimed > 0)
        printf(", %zu being released", nclaimed);
    fputc('\n', stdout);
    if (a.oldest_ns > 0) {
        pace_dur(now - a.oldest_ns, d, sizeof d);
        ctl_time_format((time_t)(a.oldest_ns / 1000000000), t, sizeof t);
        printf("oldest        %s ago (%s)\n", d, t);
        pace_drain(&a, d, sizeof d);
        printf("drain         about %s at that rate%s\n", d, a.paused ? ", once resumed" : "");
    }
    if (a.last_release_ns > 0) {
        ctl_time_format((time_t)(a.last_release_ns / 1000000000), t, sizeof t);
        printf("last release  %s\n", t);
    } else {
        printf("last release  never\n");
    }
    if (n > 0) {
        printf("%-*s  %-12s  %s\n", QID_MAX, "QUEUE ID", "HELD FOR", "STATE");
        for (size_t i = 0; i < n; i++) {
            pace_dur(now - msgs[i].held_ns, d, sizeof d);
            printf("%-*s  %-12s  %s\n", QID_MAX, msgs[i].queue_id, d,
                   msgs[i].claimed_ns ? "being released" : "waiting");
        }
        if (a.held > n)
            printf("... and %llu more (--json lists them all)\n", (unsigned long long)(a.held - n));
    }
    mem_free(msgs);
    return 0;
}

int ctl_pacing(struct ctl *c, int argc, char **argv)
{
    bool json;
    int rc = ctl_json_opts(c, argc, argv, &json);
    if (rc >= 0)
        return rc;
    if (argc - optind > 1)
        return ctl_bad_usage(c);
    const char *arg = argc > optind ? argv[optind] : NULL, *who;
    char key[HOLDQ_KEY_MAX];
    if (arg != NULL && !pace_key(arg, key, &who))
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    pace_path(c, PACE_STORE_FILE, &path);
    struct store *s = NULL;
    rc = 1;
    if (access(path.data, F_OK) != 0 && errno == ENOENT) {
        /* nothing was ever held: an empty list, but no such account */
        if (arg != NULL) {
            pace_no_state(stderr, path.data);
        } else {
            if (json)
                fputs("[]\n", stdout);
            pace_no_state(json ? stderr : stdout, path.data);
            rc = 0;
        }
    } else if ((s = store_open(path.data, STORE_READONLY, &err)) == NULL) {
        fprintf(stderr, "posternctl: %s\n", err.data);
    } else if (arg != NULL) {
        rc = pace_show(s, key, json, path.data);
    } else {
        rc = pace_list(s, json, path.data) ? 0 : 1;
    }
    store_close(s);
    buf_free(&path);
    buf_free(&err);
    return rc;
}

/* --- the changes: stores, rules, audit ----------------------------------- */

/* One of postern-milter's stores under state_dir (st), read-write;
 * created (with its schema) when missing and create.  NULL after
 * printing why, except when it is missing and not create (*missing). */
static struct store *pace_open_rw(struct ctl *c, const struct ctl_state *st, bool create, bool *missing)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    pace_path(c, st->store_file, &path);
    struct store *s = NULL;
    bool exists = access(path.data, F_OK) == 0, writable = false;
    *missing = false;
    if (exists) {
        c->state = st;
        writable = ctl_store_writable(c);
        c->state = NULL;
        if (!writable)
            fprintf(stderr, "posternctl: cannot write %s: run posternctl as root or as postern-milter's user\n",
                    path.data);
    } else if (errno != ENOENT) {
        fprintf(stderr, "posternctl: %s: %s\n", path.data, strerror(errno));
    } else if (!create) {
        *missing = true;
    } else if (access(c->conf.state_dir, W_OK) != 0) {
        fprintf(stderr, "posternctl: cannot create %s: %s: %s (run posternctl as root or as postern-milter's "
                        "user)\n", path.data, c->conf.state_dir, strerror(errno));
    } else {
        writable = true;
    }
    if (writable) {
        s = store_open(path.data, 0, &err);
        if (s == NULL)
            fprintf(stderr, "posternctl: %s\n", err.data);
        else if (!exists)
            ctl_store_give(c->conf.state_dir, path.data);
    }
    buf_free(&path);
    buf_free(&err);
    return s;
}

/* postern-milter's store, where the audit records go: checked before
 * anything changes.  NULL after printing why. */
static struct store *pace_audit_open(struct ctl *c)
{
    bool missing;
    struct store *s = pace_open_rw(c, &ctl_milter_state, true, &missing);
    if (s != NULL)
        log_open("posternctl", true, false, LOG_LVL_INFO);   /* the audit's log copy: syslog */
    return s;
}

/* Who runs this, for the audit record. */
static void pace_operator(struct buf *out)
{
    const char *sudo = getenv("SUDO_USER");
    const struct passwd *pw = getpwuid(getuid());
    buf_reset(out);
    if (sudo != NULL && sudo[0] != '\0')
        buf_printf(out, "%s via sudo", sudo);
    else if (pw != NULL)
        buf_puts(out, pw->pw_name);
    else
        buf_puts(out, "?");
    buf_printf(out, " (uid %u)", (unsigned)getuid());
}

static bool pace_audit(struct store *as, const char *key, const char *who, const char *queue_id,
                       const char *action, const char *reason, const char *counters, struct buf *err)
{
    char tenant[256];
    pace_key_tenant(key, who, tenant, sizeof tenant);
    struct audit_rec rec = {
        .component = "ctl",
        .tenant = tenant,
        .account = who,
        .queue_id = queue_id,
        .stage = "pacing",
        .action = action,
        .reason = reason,
        .rule = "pace",
        .counters = counters,
    };
    return audit_write(as, &rec, err);
}

/* The rules' pace of mode hold for key (the account WHO of its tenant,
 * declared by name or else "*"; its own pace, else the tenant's), as a
 * schedule row a (paused); false when the rules do not pace it in mode
 * hold. */
static bool pace_rule(const struct rules *r, const char *key, const char *who, struct holdq_account *a)
{
    char tenant[256];
    pace_key_tenant(key, who, tenant, sizeof tenant);
    const struct tenant *t = rules_tenant(r, tenant);
    if (t == NULL)
        return false;
    const struct account *acc = t->wildcard;
    for (size_t i = 0; i < t->n_accounts; i++)
        if (strcmp(t->accounts[i].name, who) == 0)
            acc = &t->accounts[i];
    const struct pace *p = acc != NULL && acc->pace.set ? &acc->pace : t->pace.set ? &t->pace : NULL;
    if (p == NULL || p->mode != PACE_HOLD)
        return false;
    memset(a, 0, sizeof *a);
    snprintf(a->account, sizeof a->account, "%s", key);
    snprintf(a->tenant, sizeof a->tenant, "%s", t->name);
    snprintf(a->rule_account, sizeof a->rule_account, "%s", acc != NULL ? acc->name : "*");
    a->count = p->rate.count;
    a->period_s = p->rate.period_s;
    a->burst = p->burst;
    snprintf(a->unit, sizeof a->unit, "%s", p->rate.unit != NULL ? p->rate.unit : "period");
    a->paused = true;
    return true;
}

/* The options of pause and resume (-c, -r, -h) and their one operand:
 * -1 to go on, else the exit status. */
static int pace_plain_opts(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        }
        if (!ctl_common_option(c, ch, optarg))
            return ctl_bad_usage(c);
    }
    return argc - optind == 1 ? -1 : ctl_bad_usage(c);
}

/* --- pacing pause|resume ACCOUNT ---------------------------------------------- */

static int pace_set(struct ctl *c, int argc, char **argv, bool paused)
{
    const char *verb = paused ? "pause" : "resume", *who;
    char key[HOLDQ_KEY_MAX];
    int rc = pace_plain_opts(c, argc, argv);
    if (rc >= 0)
        return rc;
    if (!pace_key(argv[optind], key, &who))
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct buf err, reason, op;
    buf_init(&err);
    buf_init(&reason);
    buf_init(&op);
    struct store *ps = NULL, *as = NULL;
    struct rules *r = NULL;
    struct holdq_account a;
    bool missing = false, ok = false;
    int found = 0;
    rc = 1;
    ps = pace_open_rw(c, &pace_state, false, &missing);
    if (ps == NULL && !missing)
        goto out;
    if (ps != NULL && (found = holdq_account_get(ps, key, &a, &err)) < 0) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        goto out;
    }
    if (found == 0) {
        /* not in the schedule yet: the rules say whether it is paced in
         * mode hold (a pause before its first hold) */
        if ((r = ctl_load_rules(c, true)) == NULL)
            goto out;
        if (!pace_rule(r, key, who, &a)) {
            fprintf(stderr, "posternctl: %s is not paced in mode hold by the rules of %s\n", key,
                    ctl_rules_dir(c));
            goto out;
        }
        if (!paused) {
            printf("%s is not paused (nothing held)\n", key);
            rc = 0;
            goto out;
        }
    } else if (a.paused == paused) {
        printf("%s is %s (nothing changed)\n", key, paused ? "already paused" : "not paused");
        rc = 0;
        goto out;
    }
    if ((as = pace_audit_open(c)) == NULL)
        goto out;
    if (ps == NULL && (ps = pace_open_rw(c, &pace_state, true, &missing)) == NULL)
        goto out;
    pace_operator(&op);
    if (paused)
        buf_printf(&reason, "paused by the operator %s: new messages are all held, none released (%llu held)",
                   op.data, (unsigned long long)a.held);
    else
        buf_printf(&reason, "resumed by the operator %s: held messages released at the pace (%llu held)",
                   op.data, (unsigned long long)a.held);
    /* the change and its audit record: both or neither */
    ok = store_begin(ps, true, &err);
    if (ok && found == 1) {
        int set = holdq_set_paused(ps, key, paused, &err);
        if (set == 0) {
            buf_reset(&err);
            buf_puts(&err, "the account is no longer in the schedule");
        }
        ok = set == 1;
    } else if (ok) {
        ok = holdq_account_put(ps, &a, &err);
    }
    ok = ok && pace_audit(as, key, who, NULL, verb, reason.data, NULL, &err) && store_commit(ps, &err);
    if (!ok) {
        store_rollback(ps);
        fprintf(stderr, "posternctl: %s of %s failed, nothing changed: %s\n", verb, key, err.data);
        goto out;
    }
    char rate[96];
    pace_rate(&a, rate, sizeof rate);
    if (paused)
        printf("paused %s: postern-milter holds all its new messages and releases none until "
               "\"posternctl pacing resume %s\" (%llu held)\n", key, key, (unsigned long long)a.held);
    else
        printf("resumed %s: postern-milter releases its %llu held message%s at %s\n", key,
               (unsigned long long)a.held, a.held == 1 ? "" : "s", rate);
    rc = 0;
out:
    if (r != NULL)
        rules_unref(r);
    store_close(ps);
    store_close(as);
    buf_free(&err);
    buf_free(&reason);
    buf_free(&op);
    return rc;
}

int ctl_pacing_pause(struct ctl *c, int argc, char **argv)
{
    return pace_set(c, argc, argv, true);
}

int ctl_pacing_resume(struct ctl *c, int argc, char **argv)
{
    return pace_set(c, argc, argv, false);
}

/* --- pacing release ACCOUNT [--all | --count N] ------------------------------- */

/* Its options and operand: -1 to go on, else the exit status. */
static int pace_release_opts(struct ctl *c, int argc, char **argv, bool *all, uint64_t *count)
{
    static const struct option opts[] = {
        { "all", no_argument, NULL, 'a' },
        { "count", required_argument, NULL, 'n' },
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char gerr[GRAM_ERR_MAX];
    bool counted = false;
    int ch;
    *all = false;
    *count = 1;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'a') {
            *all = true;
        } else if (ch == 'n') {
            if (!gram_uint(optarg, PACE_COUNT_MAX, count, gerr, sizeof gerr) || *count == 0) {
                fprintf(stderr, "posternctl: --count: expected a number from 1 to %d, found \"%s\"\n",
                        PACE_COUNT_MAX, optarg);
                return ctl_bad_usage(c);
            }
            counted = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    if (*all && counted) {
        fprintf(stderr, "posternctl: --all and --count exclude each other\n");
        return ctl_bad_usage(c);
    }
    return argc - optind == 1 ? -1 : ctl_bad_usage(c);
}

/* Release the claimed message m: postsuper -H, then postqueue -i (a
 * failure of that one is a warning).  False after printing why (nothing
 * released). */
static bool pace_release_one(const struct ctl *c, const struct holdq_msg *m)
{
    struct buf postsuper, postqueue, err;
    buf_init(&postsuper);
    buf_init(&postqueue);
    buf_init(&err);
    buf_printf(&postsuper, "%s/postsuper", c->conf.milter.postfix_command_dir);
    buf_printf(&postqueue, "%s/postqueue", c->conf.milter.postfix_command_dir);
    bool ok = false;
    if (!qid_valid(m->queue_id)) {
        fputs("posternctl: the schedule holds ", stderr);
        ctl_put_field(stderr, m->queue_id);
        fputs(", which is not a Postfix queue ID: not released\n", stderr);
    } else if (!postq_release(postsuper.data, c->conf.milter.postfix_config_dir, m->queue_id, &err)) {
        fprintf(stderr, "posternctl: %s: postsuper -H failed: %s; it stays held, in its place\n", m->queue_id,
                err.len ? err.data : "?");
    } else {
        ok = true;
        buf_reset(&err);
        if (!postq_deliver(postqueue.data, c->conf.milter.postfix_config_dir, m->queue_id, &err))
            fprintf(stderr, "posternctl: warning: %s is released, but postqueue -i failed (%s): it leaves at "
                            "Postfix's next deferred-queue scan\n", m->queue_id, err.data);
    }
    buf_free(&postsuper);
    buf_free(&postqueue);
    buf_free(&err);
    return ok;
}

int ctl_pacing_release(struct ctl *c, int argc, char **argv)
{
    bool all, missing;
    uint64_t count;
    const char *who;
    char key[HOLDQ_KEY_MAX];
    int rc = pace_release_opts(c, argc, argv, &all, &count);
    if (rc >= 0)
        return rc;
    if (!pace_key(argv[optind], key, &who))
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct buf err, reason, op, path;
    buf_init(&err);
    buf_init(&reason);
    buf_init(&op);
    buf_init(&path);
    struct store *as = NULL;
    struct holdq_msg *msgs = NULL;
    struct holdq_account a;
    size_t n = 0, total = 0, done = 0;
    rc = 1;
    pace_path(c, PACE_STORE_FILE, &path);
    struct store *ps = pace_open_rw(c, &pace_state, false, &missing);
    if (ps == NULL) {
        if (missing)
            pace_no_state(stderr, path.data);
        goto out;
    }
    int found = holdq_account_get(ps, key, &a, &err);
    if (found < 0 || !holdq_list(ps, key, false, 0, &msgs, &n, &err)) {
        fprintf(stderr, "posternctl: %s\n", err.data);
        goto out;
    }
    if (found == 0) {
        fprintf(stderr, "posternctl: no account \"%s\" in the pacing schedule %s (\"posternctl pacing\" lists "
                        "them)\n", key, path.data);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        total += msgs[i].claimed_ns == 0;
    if (!all && total > count)
        total = (size_t)count;
    if (total == 0) {
        printf("nothing to release: %s has no held message waiting%s\n", key,
               n > 0 ? " (postern-milter is releasing the others)" : "");
        rc = 0;
        goto out;
    }
    if ((as = pace_audit_open(c)) == NULL)
        goto out;
    pace_operator(&op);
    rc = 0;
    while (done < total) {
        struct holdq_msg m;
        int64_t now = pace_now_ns();
        int got = holdq_claim_head(ps, key, now, &m, &err);
        if (got < 0) {
            fprintf(stderr, "posternctl: %s\n", err.data);
            rc = 1;
            break;
        }
        if (got == 0) {
            printf("no more messages of %s waiting (postern-milter released the others)\n", key);
            break;
        }
        if (!pace_release_one(c, &m)) {
            if (!holdq_unclaim(ps, m.queue_id, &err))
                fprintf(stderr, "posternctl: %s stays claimed in the schedule (postern-milter releases it "
                                "after a restart): %s\n", m.queue_id, err.data);
            rc = 1;
            break;
        }
        now = pace_now_ns();
        bool ok = store_begin(ps, true, &err) && holdq_done(ps, m.queue_id, false, now, &err) &&
                  store_commit(ps, &err);
        if (!ok) {
            store_rollback(ps);
            fprintf(stderr, "posternctl: %s is released, but still claimed in the schedule: %s\n", m.queue_id,
                    err.data);
            rc = 1;
        }
        done++;
        char age[64];
        pace_dur(now - m.held_ns, age, sizeof age);
        printf("released %s (held for %s)\n", m.queue_id, age);
        buf_reset(&reason);
        buf_printf(&reason, "released by the operator %s, outside the pace (%zu of %zu)", op.data, done, total);
        if (!pace_audit(as, key, who, m.queue_id, "release", reason.data, NULL, &err)) {
            fprintf(stderr, "posternctl: the audit record of the release of %s could not be written: %s\n",
                    m.queue_id, err.data);
            rc = 1;
        }
        if (rc != 0)
            break;
    }
    if (holdq_account_get(ps, key, &a, &err) == 1)
        printf("released %zu of %s's held messages, %llu still held%s\n", done, key, (unsigned long long)a.held,
               rc != 0 ? " (stopped at an error)" : "");
    else
        printf("released %zu of %s's held messages%s\n", done, key, rc != 0 ? " (stopped at an error)" : "");
out:
    store_close(ps);
    store_close(as);
    mem_free(msgs);
    buf_free(&err);
    buf_free(&reason);
    buf_free(&op);
    buf_free(&path);
    return rc;
}
