/* golden.c: runs the golden cases of the policy decision engine.  A case
 * file is a sequence of policy requests (name=value lines, as Postfix sends
 * them), each followed by the exact action line expected ("=> ACTION") and
 * optionally the rule expected ("=rule RULE").  Directives:
 *   @rules NAME     rule set tests/policy/rules/NAME/ (default: default)
 *   @tz ZONE        time zone of the quota windows (default UTC)
 *   @now TIME       the clock: 2026-11-28T10:00:00Z or ...+01:00
 *   @conn           a new connection (forgets per-message recipients)
 *   @repeat N       the next request is sent N times, same expectation
 *   @store broken   the journal's disk is full from here on (on_error path:
 *                   expect "=> ON_ERROR" and "=rule on_error")
 * The engine runs as in postern-policyd: memory counters (counters_mem),
 * each decision journaled (journal.h) before its answer counts; a failed
 * journal write puts the counters back.  Each case file gets fresh
 * counters and a fresh journal in a temporary directory.
 * usage: golden RULES_ROOT CASE... ; prints one line per case. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decide.h"
#include "diag.h"
#include "journal.h"
#include "log.h"
#include "rules_load.h"

struct golden {
    const char *root;
    const char *file;
    struct rules *rules;
    char jdir[64];
    struct journal *journal;
    struct counters *counters;
    int64_t now_us;
    struct clock clock;
    struct decide_conn conn;
    int failures;
};

static bool golden_rules(struct golden *g, const char *name)
{
    char dir[1024];
    struct diags d;
    snprintf(dir, sizeof dir, "%s/%s", g->root, name);
    diags_init(&d);
    struct rules *r = rules_load(dir, &d, NULL);
    if (r == NULL) {
        diags_print(&d, stdout);
        diags_free(&d);
        return false;
    }
    diags_free(&d);
    rules_unref(g->rules);
    g->rules = r;
    return true;
}

/* 2026-11-28T10:00:00Z or 2026-11-28T10:00:00+01:00 */
static bool golden_time(const char *s, int64_t *us)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return false;
    long off = 0;
    if (*p == '+' || *p == '-') {
        int h, m;
        if (sscanf(p + 1, "%d:%d", &h, &m) != 2)
            return false;
        off = (h * 3600L + m * 60L) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z') {
        return false;
    }
    *us = ((int64_t)timegm(&tm) - off) * 1000000;
    return true;
}

__attribute__((format(printf, 3, 4)))
static void golden_fail(struct golden *g, int line, const char *fmt, ...)
{
    va_list ap;
    printf("FAIL %s:%d: ", g->file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    g->failures++;
}

static void golden_run_request(struct golden *g, struct buf *text, const char *expect, const char *rule,
                               int line, int repeat)
{
    struct policy_request req;
    struct decision d;
    struct buf err;
    size_t used;
    const struct decide_env env = { g->rules, g->counters, &g->clock };

    if (strstr(text->data, "request=") != text->data && strstr(text->data, "\nrequest=") == NULL) {
        struct buf t;
        buf_init(&t);
        buf_puts(&t, "request=smtpd_access_policy\n");
        buf_add(&t, text->data, text->len);
        buf_free(text);
        *text = t;
    }
    buf_putc(text, '\n');
    buf_init(&err);
    decision_init(&d);
    for (int i = 0; i < repeat; i++) {
        policy_request_init(&req);
        if (policy_parse(text->data, text->len, &policy_limits_default, &req, &used, &err) != POLICY_REQUEST) {
            golden_fail(g, line, "request does not parse: %s", err.data);
            policy_request_free(&req);
            break;
        }
        counters_mem_batch_begin(g->counters);
        decide(&env, &g->conn, &req, &d);
        const char *rcpt;
        struct audit_rec rec;
        struct counter_deltas deltas;
        counter_deltas_init(&deltas);
        counters_mem_take_deltas(g->counters, &deltas);
        decide_audit(&req, &d, &rcpt, &rec);
        bool stored = !d.store_error && journal_add(g->journal, &rec, deltas.v, deltas.n, NULL, &err) > 0 &&
                      journal_commit(g->journal, &err);
        counter_deltas_free(&deltas);
        if (stored) {
            counters_mem_batch_commit(g->counters);
        } else {
            journal_rollback(g->journal);
            counters_mem_batch_rollback(g->counters);
        }
        const char *got = stored ? d.action.data : "ON_ERROR";
        if (strcmp(got, expect) != 0)
            golden_fail(g, line, "expected \"%s\", got \"%s\"", expect, got);
        else if (rule && strcmp(rule, stored ? d.rule : "on_error") != 0)
            golden_fail(g, line, "expected rule %s, got %s", rule, stored ? d.rule : "on_error");
        policy_request_free(&req);
    }
    decision_free(&d);
    buf_free(&err);
}

/* @store broken: every descriptor of this process open on a file of the
 * journal directory now writes to /dev/full (ENOSPC), as a full disk. */
static void golden_break_journal(struct golden *g)
{
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char link[300], target[512];
    while (full >= 0 && d != NULL && (e = readdir(d)) != NULL) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, g->jdir, strlen(g->jdir)) == 0 && target[strlen(g->jdir)] == '/')
            dup2(full, atoi(e->d_name));
    }
    if (d != NULL)
        closedir(d);
    if (full >= 0)
        close(full);
}

static void golden_journal_remove(struct golden *g)
{
    journal_close(g->journal);
    g->journal = NULL;
    DIR *d = opendir(g->jdir);
    struct dirent *e;
    char path[512];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", g->jdir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(g->jdir);
}

static int golden_case(struct golden *g, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, repeat = 1;
    struct buf text, err;
    const char *slash = strrchr(path, '/');

    g->file = slash ? slash + 1 : path;
    g->failures = 0;
    memset(&g->conn, 0, sizeof g->conn);
    if (f == NULL) {
        printf("FAIL %s: cannot open\n", path);
        return 1;
    }
    buf_init(&text);
    buf_init(&err);
    tz_select("UTC");
    golden_time("2026-11-28T10:00:00Z", &g->now_us);
    snprintf(g->jdir, sizeof g->jdir, "/tmp/postern-golden.XXXXXX");
    if (mkdtemp(g->jdir) == NULL || (g->journal = journal_open(g->jdir, 0, false, &err)) == NULL) {
        printf("FAIL %s: cannot make a journal in %s: %s\n", path, g->jdir, err.data);
        fclose(f);
        buf_free(&text);
        buf_free(&err);
        return 1;
    }
    g->counters = counters_mem_open(g->clock);
    if (!golden_rules(g, "default"))
        g->failures++;
    char *pending_expect = NULL;
    int expect_line = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (line[0] == '#' || (n == 0 && text.len == 0))
            continue;
        if (strncmp(line, "@rules ", 7) == 0) {
            if (!golden_rules(g, line + 7))
                golden_fail(g, lineno, "rules %s do not load%s", line + 7, "");
        } else if (strncmp(line, "@tz ", 4) == 0) {
            if (!tz_select(line + 4))
                golden_fail(g, lineno, "unknown zone %s", line + 4);
        } else if (strncmp(line, "@now ", 5) == 0) {
            if (!golden_time(line + 5, &g->now_us))
                golden_fail(g, lineno, "bad time %s", line + 5);
        } else if (strcmp(line, "@conn") == 0) {
            memset(&g->conn, 0, sizeof g->conn);
        } else if (strncmp(line, "@repeat ", 8) == 0) {
            repeat = atoi(line + 8);
        } else if (strcmp(line, "@store broken") == 0) {
            golden_break_journal(g);
        } else if (strncmp(line, "=> ", 3) == 0) {
            free(pending_expect);
            pending_expect = strdup(line + 3);
            expect_line = lineno;
        } else if (strncmp(line, "=rule ", 6) == 0 || n == 0) {
            if (pending_expect == NULL) {
                golden_fail(g, lineno, "request without \"=> ACTION\"%s", "");
                buf_reset(&text);
                continue;
            }
            golden_run_request(g, &text, pending_expect, n ? line + 6 : NULL, expect_line, repeat);
            free(pending_expect);
            pending_expect = NULL;
            buf_reset(&text);
            repeat = 1;
        } else {
            buf_printf(&text, "%s\n", line);
        }
    }
    if (pending_expect) {
        golden_run_request(g, &text, pending_expect, NULL, expect_line, repeat);
        free(pending_expect);
    } else if (text.len) {
        golden_fail(g, lineno, "request without \"=> ACTION\" at the end%s", "");
    }
    free(line);
    fclose(f);
    buf_free(&text);
    buf_free(&err);
    counters_close(g->counters);
    golden_journal_remove(g);
    rules_unref(g->rules);
    g->rules = NULL;
    if (g->failures == 0)
        printf("ok %s\n", g->file);
    return g->failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct golden g;
    int failed = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: golden RULES_ROOT CASE...\n");
        return 2;
    }
    memset(&g, 0, sizeof g);
    log_open("golden", false, false, LOG_LVL_ERR); /* audit lines are not the output */
    g.root = argv[1];
    g.clock = clock_fixed(&g.now_us);
    for (int i = 2; i < argc; i++)
        failed += golden_case(&g, argv[i]);
    printf("golden: %d passed, %d failed\n", argc - 2 - failed, failed);
    return failed ? 1 : 0;
}
