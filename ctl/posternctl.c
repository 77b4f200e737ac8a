/* posternctl.c: the operator's tool.  A table of commands, each with its
 * usage line and handler; this file parses the global options, dispatches,
 * and holds what the commands share (ctl.h).
 *   posternctl [-c postern.yaml] [-r rules.d] check
 *   posternctl [-c postern.yaml] [-r rules.d] rules show TENANT
 *   posternctl [-c postern.yaml] config show
 *   posternctl [-c postern.yaml] [-r rules.d] usage [TENANT] [--json] [--at TIME]
 *   posternctl [-c postern.yaml] audit [filters] [--json]
 *   posternctl [-c postern.yaml] ingest [--follow] [--json] [MAILLOG...]
 *   posternctl [-c postern.yaml] [-r rules.d] counters reset TENANT|ACCOUNT ...
 *   posternctl [-c postern.yaml] [-r rules.d] dkim keygen --tenant T --domain D ...
 *   posternctl [-c postern.yaml] [-r rules.d] dns TENANT [--json]
 *   posternctl [-c postern.yaml] [-r rules.d] dkim check TENANT
 *   posternctl [-c postern.yaml] scanners [--json]
 *   posternctl [-c postern.yaml] [-r rules.d] postfix-config [--check] [--json]
 *   posternctl [-c postern.yaml] [-r rules.d] queue [--tenant T] [--json]
 *   posternctl [-c postern.yaml] [-r rules.d] bounces [--tenant T] [--since TIME] [--json]
 *   posternctl [-c postern.yaml] trace ADDRESS|QUEUE-ID [--since TIME] [--json]
 *   posternctl [-c postern.yaml] [-r rules.d] stats [--tenant T] [--since TIME] [--json]
 *   posternctl [-c postern.yaml] [-r rules.d] reputation TENANT [--dnsbl ZONE]... [--dbl ZONE]... [--json]
 *   posternctl [-c postern.yaml] pacing [ACCOUNT] [--json]
 *   posternctl [-c postern.yaml] pacing release ACCOUNT [--all | --count N]
 *   posternctl [-c postern.yaml] [-r rules.d] pacing pause|resume ACCOUNT
 * What reads the state ingests postern-policyd's journal into it first
 * (journal.h), so that it never shows less than the daemon decided. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "ctl.h"
#include "diag.h"
#include "grammar.h"
#include "journal.h"
#include "ptime.h"
#include "rules.h"
#include "rules_load.h"

#define CTL_DEFAULT_CONF POSTERN_SYSCONFDIR "/postern.yaml"

struct ctl_cmd {
    const char *name;
    const char *sub;           /* second word, or NULL */
    int min_args, max_args;    /* -1: the command parses its own options and arguments */
    const char *usage;
    int (*run)(struct ctl *, int argc, char **argv);
};

/* Load the daemon config; without -c and without the default file, -r
 * alone is enough (defaults for the rest). */
int ctl_load_conf(struct ctl *c)
{
    struct diags d;
    diags_init(&d);
    const char *path = c->conf_path ? c->conf_path : CTL_DEFAULT_CONF;
    if (c->conf_path == NULL && c->rules_dir != NULL && access(path, F_OK) != 0) {
        conf_defaults(&c->conf);
        return 0;
    }
    if (!conf_load(&c->conf, path, &d)) {
        diags_print(&d, stderr);
        fprintf(stderr, "posternctl: %zu error%s in %s\n", d.n, d.n == 1 ? "" : "s", path);
        diags_free(&d);
        return 1;
    }
    diags_free(&d);
    return 0;
}

const char *ctl_rules_dir(const struct ctl *c)
{
    return c->rules_dir ? c->rules_dir : c->conf.rules;
}

struct rules *ctl_load_rules(struct ctl *c, bool quiet_warnings)
{
    struct diags d, w;
    diags_init(&d);
    diags_init(&w);
    struct rules *r = rules_load(ctl_rules_dir(c), &d, &w);
    if (r == NULL) {
        diags_print(&d, stderr);
        fprintf(stderr, "posternctl: %zu error%s in the rules of %s\n", d.n, d.n == 1 ? "" : "s",
                ctl_rules_dir(c));
    }
    if (!quiet_warnings)
        diags_print(&w, stderr);
    diags_free(&d);
    diags_free(&w);
    return r;
}

int ctl_bad_usage(const struct ctl *c)
{
    fprintf(stderr, "usage: posternctl %s\n", c->usage);
    return 2;
}

bool ctl_common_option(struct ctl *c, int ch, const char *arg)
{
    if (ch == 'c')
        c->conf_path = arg;
    else if (ch == 'r')
        c->rules_dir = arg;
    else
        return false;
    return true;
}

int ctl_json_opts(struct ctl *c, int argc, char **argv, bool *json)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },         { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },  { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    *json = false;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'j') {
            *json = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    return -1;
}

const struct ctl_state ctl_policyd_state = { "postern-policyd", CTL_POLICYD_STORE, JOURNAL_DIR };
const struct ctl_state ctl_milter_state = { "postern-milter", "milter.sqlite", "milter-journal" };

static const struct ctl_state *ctl_state(const struct ctl *c)
{
    return c->state != NULL ? c->state : &ctl_policyd_state;
}

struct store *ctl_store_open(const struct ctl *c, bool write)
{
    struct buf path, err;
    buf_init(&path);
    buf_init(&err);
    buf_printf(&path, "%s/%s", c->conf.state_dir, ctl_state(c)->store_file);
    struct store *s = NULL;
    if (access(path.data, F_OK) != 0) {
        if (errno == ENOENT)
            fprintf(stderr, "posternctl: no %s state at %s (has %s run?)\n", ctl_state(c)->daemon + 8,
                    path.data, ctl_state(c)->daemon);
        else
            fprintf(stderr, "posternctl: %s: %s\n", path.data, strerror(errno));
    } else {
        s = store_open(path.data, write ? 0 : STORE_READONLY, &err);
        if (s == NULL)
            fprintf(stderr, "posternctl: %s\n", err.data);
    }
    buf_free(&path);
    buf_free(&err);
    return s;
}

/* --- the journal ------------------------------------------------------------- */

bool ctl_store_writable(const struct ctl *c)
{
    static const char *const files[] = { "", "-wal", "-shm" };
    struct buf path;
    buf_init(&path);
    bool ok = true, all = true;
    for (size_t i = 0; ok && i < sizeof files / sizeof files[0]; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s%s", c->conf.state_dir, ctl_state(c)->store_file, files[i]);
        if (i > 0 && access(path.data, F_OK) != 0)
            all = false;
        else
            ok = access(path.data, W_OK) == 0;
    }
    /* SQLite creates the missing -wal/-shm next to the file */
    if (ok && !all)
        ok = access(c->conf.state_dir, W_OK) == 0;
    buf_free(&path);
    return ok;
}

static void ctl_journal_dir(const struct ctl *c, struct buf *out)
{
    buf_reset(out);
    buf_printf(out, "%s/%s", c->conf.state_dir, ctl_state(c)->journal_dir);
}

bool ctl_journal_ingest(const struct ctl *c, struct store *s, size_t *n, int64_t *through)
{
    struct buf dir, err;
    buf_init(&dir);
    buf_init(&err);
    ctl_journal_dir(c, &dir);
    bool ok = journal_ingest(s, dir.data, 0, NULL, through, n, &err);
    if (!ok)
        fprintf(stderr, "posternctl: cannot ingest the journal %s into the store: %s\n", dir.data, err.data);
    buf_free(&dir);
    buf_free(&err);
    return ok;
}

/* Read-only: say how many journaled records the store lacks (nothing
 * when none, or without a journal). */
static void ctl_journal_warn(const struct ctl *c, struct store *s)
{
    struct buf dir, err;
    buf_init(&dir);
    buf_init(&err);
    ctl_journal_dir(c, &dir);
    size_t n = 0;
    if (!journal_pending(s, dir.data, &n, &err))
        fprintf(stderr, "posternctl: warning: cannot read the journal (%s): decisions not in the store yet "
                        "are not included (run posternctl as root or as the daemon's user)\n", err.data);
    else if (n > 0)
        fprintf(stderr, "posternctl: warning: %zu decision%s in the journal %s not in the store yet "
                        "(run posternctl as root or as the daemon's user to include them)\n",
                n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
    buf_free(&dir);
    buf_free(&err);
}

struct store *ctl_store_open_ingested(const struct ctl *c)
{
    bool write = ctl_store_writable(c);
    struct store *s = ctl_store_open(c, write);
    if (s == NULL)
        return NULL;
    if (!write) {
        ctl_journal_warn(c, s);
    } else if (!ctl_journal_ingest(c, s, NULL, NULL)) {
        store_close(s);
        return NULL;
    }
    return s;
}

/* The journal into policyd's store; with mail logs (or --follow) also
 * Postfix's log into maillog.sqlite (ctl_maillog.c), where a missing
 * policyd store is no error. */
static int ctl_ingest(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "follow", no_argument, NULL, 'f' },       { "json", no_argument, NULL, 'j' },
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },  { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool follow = false, json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'f') {
            follow = true;
        } else if (ch == 'j') {
            json = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    bool maillog = follow || optind < argc;
    if (ctl_load_conf(c) != 0)
        return 1;
    int rc = 0;
    struct buf path;
    buf_init(&path);
    buf_printf(&path, "%s/%s", c->conf.state_dir, ctl_state(c)->store_file);
    bool policyd = access(path.data, F_OK) == 0 || errno != ENOENT;
    buf_free(&path);
    if (maillog && !policyd)
        return ctl_maillog_ingest(c, follow, json, argc - optind, argv + optind);
    bool write = ctl_store_writable(c);
    struct store *s = ctl_store_open(c, write);   /* a missing store: said there */
    if (s == NULL) {
        rc = 1;
    } else if (!write) {
        fprintf(stderr, "posternctl: cannot write the state in %s: run posternctl as root or as the "
                        "daemon's user to ingest the journal\n", c->conf.state_dir);
        rc = 1;
    } else {
        size_t n = 0;
        int64_t through = 0;
        if (!ctl_journal_ingest(c, s, &n, &through))
            rc = 1;
        else if (json)
            printf("{\"journal\": {\"ingested\": %zu, \"through\": %lld}}\n", n, (long long)through);
        else
            printf("ingested %zu decision%s; the store holds the journal through id %lld\n", n,
                   n == 1 ? "" : "s", (long long)through);
    }
    if (s != NULL)
        store_close(s);
    if (maillog) {
        fflush(stdout);
        int r = ctl_maillog_ingest(c, follow, json, argc - optind, argv + optind);
        if (r != 0)
            rc = r;
    }
    return rc;
}

/* --- time arguments ---------------------------------------------------------- */

/* Read exactly n digits at *p into *v. */
static bool ctl_digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

/* ISO 8601 (see ctl.h) to Unix seconds. */
static bool ctl_iso_parse(const char *s, time_t *out)
{
    struct tm tm;
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
    if (!ctl_digits(&p, 4, &y) || *p++ != '-' || !ctl_digits(&p, 2, &mo) || *p++ != '-' ||
        !ctl_digits(&p, 2, &d))
        return false;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!ctl_digits(&p, 2, &h) || *p++ != ':' || !ctl_digits(&p, 2, &mi))
            return false;
        if (*p == ':') {
            p++;
            if (!ctl_digits(&p, 2, &sec))
                return false;
        }
        if (*p == 'Z' || *p == 'z') {
            sign = 1;
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p++ == '-' ? -1 : 1;
            if (!ctl_digits(&p, 2, &oh))
                return false;
            if (*p == ':')
                p++;
            if (!ctl_digits(&p, 2, &om) || oh > 23 || om > 59)
                return false;
        }
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return false;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    if (sign == 0)
        *out = mktime(&tm);   /* the configured zone (conf_load selected it) */
    else
        *out = timegm(&tm) - sign * (time_t)(oh * 3600 + om * 60);
    return tm.tm_mday == d && tm.tm_mon == mo - 1;   /* no 31 February */
}

bool ctl_time_parse(const char *s, int64_t now_us, int64_t *out_us, struct buf *err)
{
    char gerr[GRAM_ERR_MAX];
    uint64_t ms;
    time_t t;
    if (strcmp(s, "now") == 0) {
        *out_us = now_us;
        return true;
    }
    if (isdigit((unsigned char)s[0]) && strlen(s) >= 10 && s[4] == '-' && ctl_iso_parse(s, &t)) {
        *out_us = (int64_t)t * 1000000;
        return true;
    }
    if (strchr(s, '-') == NULL && gram_duration(s, &ms, gerr, sizeof gerr) &&
        ms <= (uint64_t)INT64_MAX / 1000) {
        *out_us = now_us - (int64_t)ms * 1000;
        return true;
    }
    buf_reset(err);
    buf_printf(err, "expected a time like 2h (ago), 2026-11-28, 2026-11-28T10:00 or "
                    "2026-11-28T10:00:00+01:00, found \"%s\"", s);
    return false;
}

void ctl_time_format(time_t t, char *out, size_t size)
{
    time_format(t, out, size);
}

/* --- output ------------------------------------------------------------------ */

void ctl_put_field(FILE *out, const char *s)
{
    bool quote = false;
    if (s == NULL || s[0] == '\0') {
        fputc('-', out);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == 0x7f)
            quote = true;
    if (!quote) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < ' ' || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* Length of the valid UTF-8 sequence at p (1..4), 0 when invalid. */
static size_t ctl_utf8_len(const unsigned char *p)
{
    size_t n;
    unsigned min;
    unsigned cp;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2, min = 0x80, cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3, min = 0x800, cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4, min = 0x10000, cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void ctl_put_json(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = ctl_utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", out);
            p++;
        } else if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p++);
        } else if (*p == '\n') {
            fputs("\\n", out), p++;
        } else if (*p == '\t') {
            fputs("\\t", out), p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p++);
        } else {
            fwrite(p, 1, n, out);
            p += n;
        }
    }
    fputc('"', out);
}

static int ctl_check(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, false);
    if (r == NULL)
        return 1;
    size_t accounts = 0;
    for (size_t i = 0; i < r->n_tenants; i++) {
        rules_summary_tenant(&r->tenants[i], stdout);
        for (size_t j = 0; j < r->tenants[i].n_accounts; j++)
            accounts += !r->tenants[i].accounts[j].implicit;
    }
    printf("ok: %zu tenant%s, %zu account%s, %zu file%s in %s\n", r->n_tenants, r->n_tenants == 1 ? "" : "s",
           accounts, accounts == 1 ? "" : "s", r->n_files, r->n_files == 1 ? "" : "s", ctl_rules_dir(c));
    rules_unref(r);
    return 0;
}

static int ctl_rules_show(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    const struct tenant *t = rules_tenant(r, argv[0]);
    if (t == NULL) {
        fprintf(stderr, "posternctl: no tenant named \"%s\" in %s\n", argv[0], ctl_rules_dir(c));
        rules_unref(r);
        return 1;
    }
    rules_show_tenant(t, stdout);
    rules_unref(r);
    return 0;
}

static int ctl_config_show(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (ctl_load_conf(c) != 0)
        return 1;
    if (c->rules_dir) {
        /* show what this invocation would use */
        mem_free(c->conf.rules);
        c->conf.rules = mem_strdup(c->rules_dir);
    }
    conf_print(&c->conf, stdout);
    return 0;
}

void ctl_store_give(const char *dir, const char *path)
{
    static const char *const sfx[] = { "", "-wal", "-shm" };
    struct stat sd;
    if (geteuid() != 0 || stat(dir, &sd) != 0 || sd.st_uid == 0)
        return;
    struct buf p;
    buf_init(&p);
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        buf_reset(&p);
        buf_printf(&p, "%s%s", path, sfx[i]);
        if (chown(p.data, sd.st_uid, sd.st_gid) != 0 && errno != ENOENT)
            fprintf(stderr, "posternctl: warning: cannot give %s to the owner of %s (uid %u): %s\n", p.data,
                    dir, (unsigned)sd.st_uid, strerror(errno));
    }
    buf_free(&p);
}

int ctl_report_opts(struct ctl *c, int argc, char **argv, const char **tenant, int64_t *since_us, bool *json)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' }, { "since", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },         { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },  { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *since = "1d";
    int ch;
    *tenant = NULL;
    *json = false;
    while ((ch = getopt_long(argc, argv, "t:s:jc:r:h", opts, NULL)) != -1) {
        if (ch == 't' && optarg[0] != '\0') {
            *tenant = optarg;
        } else if (ch == 's') {
            since = optarg;
        } else if (ch == 'j') {
            *json = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    if (optind != argc)
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct buf err;
    buf_init(&err);
    struct clock wall = clock_system();
    bool ok = ctl_time_parse(since, clock_now_us(&wall), since_us, &err);
    if (!ok)
        fprintf(stderr, "posternctl: --since: %s\n", err.data);
    buf_free(&err);
    return ok ? -1 : 2;
}

void ctl_duration(int64_t secs, char *out, size_t size)
{
    static const struct {
        int64_t secs;
        const char *name;
    } u[] = { { 86400, "d" }, { 3600, "h" }, { 60, "min" }, { 1, "s" } };
    if (secs < 1) {
        snprintf(out, size, "< 1 s");
        return;
    }
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        if (secs < u[i].secs)
            continue;
        long long big = (long long)(secs / u[i].secs), small = 0;
        if (i + 1 < sizeof u / sizeof u[0])
            small = (long long)(secs % u[i].secs / u[i + 1].secs);
        if (small > 0)
            snprintf(out, size, "%lld %s %lld %s", big, u[i].name, small, u[i + 1].name);
        else
            snprintf(out, size, "%lld %s", big, u[i].name);
        return;
    }
}

static const struct ctl_cmd ctl_cmds[] = {
    { "check", NULL, 0, 0, "check", ctl_check },
    { "rules", "show", 1, 1, "rules show TENANT", ctl_rules_show },
    { "config", "show", 0, 0, "config show", ctl_config_show },
    { "usage", NULL, -1, -1, "usage [TENANT] [--json] [--at TIME]", ctl_usage_show },
    { "audit", NULL, -1, -1,
      "audit [--sender A] [--recipient A] [--tenant T] [--account A] [--queue-id Q] "
      "[--since TIME] [--until TIME] [--limit N] [--json]",
      ctl_audit_search },
    { "ingest", NULL, -1, -1, "ingest [--follow] [--json] [MAILLOG...]", ctl_ingest },
    { "counters", "reset", -1, -1,
      "counters reset TENANT|ACCOUNT|TENANT:ACCOUNT [--window minute|hour|day|week|month] "
      "[--yes] [--json] [--at TIME] [--timeout SECONDS]",
      ctl_counters_reset },
    { "dkim", "keygen", -1, -1,
      "dkim keygen --tenant TENANT --domain DOMAIN --selector SELECTOR --algo rsa|ed25519 [--bits N] "
      "[--out PATH] [--force]",
      ctl_dkim_keygen },
    { "dns", NULL, -1, -1, "dns TENANT [--json]", ctl_dkim_dns },
    { "dkim", "check", -1, -1, "dkim check TENANT", ctl_dkim_check },
    { "scanners", NULL, -1, -1, "scanners [--json]", ctl_scanners },
    { "postfix-config", NULL, -1, -1, "postfix-config [--check] [--json]", ctl_postfix_config },
    { "queue", NULL, -1, -1, "queue [--tenant T] [--json]", ctl_queue },
    { "bounces", NULL, -1, -1, "bounces [--tenant T] [--since TIME] [--json]", ctl_bounces },
    { "trace", NULL, -1, -1, "trace ADDRESS|QUEUE-ID [--since TIME] [--json]", ctl_trace },
    { "stats", NULL, -1, -1, "stats [--tenant T] [--since TIME] [--json]", ctl_stats },
    { "reputation", NULL, -1, -1, "reputation TENANT [--dnsbl ZONE]... [--dbl ZONE]... [--json]", ctl_reputation },
    /* "pacing" without a subcommand last: the others match first */
    { "pacing", "release", -1, -1, "pacing release ACCOUNT [--all | --count N]", ctl_pacing_release },
    { "pacing", "pause", -1, -1, "pacing pause ACCOUNT", ctl_pacing_pause },
    { "pacing", "resume", -1, -1, "pacing resume ACCOUNT", ctl_pacing_resume },
    { "pacing", NULL, -1, -1, "pacing [ACCOUNT] [--json]", ctl_pacing },
};

static void ctl_usage(FILE *out)
{
    fprintf(out, "usage: posternctl [-c postern.yaml] [-r rules.d] COMMAND\ncommands:\n");
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        fprintf(out, "  posternctl %s\n", ctl_cmds[i].usage);
}

int main(int argc, char **argv)
{
    struct ctl c;
    int ch, rc;
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };

    memset(&c, 0, sizeof c);
    while ((ch = getopt_long(argc, argv, "+c:r:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            c.conf_path = optarg;
            break;
        case 'r':
            c.rules_dir = optarg;
            break;
        case 'h':
            ctl_usage(stdout);
            return 0;
        default:
            ctl_usage(stderr);
            return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        ctl_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++) {
        const struct ctl_cmd *k = &ctl_cmds[i];
        if (strcmp(argv[0], k->name) != 0)
            continue;
        int skip = 1;
        if (k->sub) {
            if (argc < 2 || strcmp(argv[1], k->sub) != 0)
                continue;
            skip = 2;
        }
        int n = argc - skip;
        c.usage = k->usage;
        if (k->min_args < 0) {
            /* the command's own getopt_long: argv[0] names the program in
             * its messages; optind = 0 restarts the scan */
            argv[skip - 1] = (char *)"posternctl";
            optind = 0;
            rc = k->run(&c, n + 1, argv + skip - 1);
            conf_free(&c.conf);
            return rc;
        }
        if (n < k->min_args || n > k->max_args)
            return ctl_bad_usage(&c);
        rc = k->run(&c, n, argv + skip);
        conf_free(&c.conf);
        return rc;
    }
    /* a known command word without its subcommand: the usage of each */
    rc = 0;
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        if (strcmp(argv[0], ctl_cmds[i].name) == 0) {
            fprintf(stderr, "%s posternctl %s\n", rc ? "      " : "usage:", ctl_cmds[i].usage);
            rc = 2;
        }
    if (rc != 0)
        return rc;
    fprintf(stderr, "posternctl: unknown command \"%s\"\n", argv[0]);
    ctl_usage(stderr);
    return 2;
}
