/* test_scan.c: unit tests of the scan decisions (milter/scan.c), pure
 * logic without scanners: the plan merged from the tenants' `scan` rules
 * (one tenant; several, to the strictest of each setting; a tenant with no
 * scan key gets the defaults, by hand and from a loaded rules directory;
 * scanners not configured are never called); the header names that are
 * ours; and scan_decide() for each numbered outcome of scan.h and their
 * precedence, with the reply codes, the headers added (names, values,
 * order, X-Spam-Status folded within 78 columns), X-Postern-Not-Scanned
 * for each way of not scanning (a few words, never the error with its
 * socket or file names), the rule and tenant that decided, and the
 * summary naming each scanner's verdict and error. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "diag.h"
#include "rules.h"
#include "rules_load.h"
#include "scan.h"
#include "scanner.h"
#include "unit.h"

/* --- tenants and plans ------------------------------------------------------- */

/* A tenant with only a name and scan settings (what scan_plan_add reads). */
static struct tenant tenant_make(const char *name, enum av_action av, enum spam_action spam, double threshold,
                                 double reject_above, uint64_t max_size)
{
    struct tenant t;
    memset(&t, 0, sizeof t);
    t.name = (char *)name;
    t.scan.set = true;
    t.scan.antivirus = av;
    t.scan.spam = spam;
    t.scan.spam_threshold = threshold;
    t.scan.reject_above_set = reject_above > -1000;
    t.scan.reject_above = reject_above;
    t.scan.max_size = max_size;
    return t;
}

#define NO_RA (-2000.0) /* reject_above not set */
#define MB (1024u * 1024u)

static const struct scan_cfg cfg_both = { .have_clamd = true, .have_spamd = true, .host = "mx.test" };

static void plan_of(struct scan_plan *p, const struct scan_cfg *cfg, const struct tenant *const *t, size_t n)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < n; i++)
        scan_plan_add(p, cfg, t[i]);
}

START_TEST(test_plan_empty)
{
    struct scan_plan p;
    memset(&p, 0, sizeof p);
    ck_assert(!scan_plan_any(&p));
}
END_TEST

START_TEST(test_plan_one)
{
    struct tenant a = tenant_make("acme", AV_QUARANTINE, SPAM_QUARANTINE, 6.5, 12, 5 * MB);
    const struct tenant *ts[] = { &a };
    struct scan_plan p;
    plan_of(&p, &cfg_both, ts, 1);
    ck_assert(scan_plan_any(&p));
    ck_assert(p.av);
    ck_assert(p.spam);
    ck_assert_int_eq(p.antivirus, AV_QUARANTINE);
    ck_assert_str_eq(p.av_by, "acme");
    ck_assert_int_eq(p.spam_action, SPAM_QUARANTINE);
    ck_assert_str_eq(p.spam_by, "acme");
    ck_assert_double_eq(p.threshold, 6.5);
    ck_assert(p.reject_above_set);
    ck_assert_double_eq(p.reject_above, 12);
    ck_assert_uint_eq(p.max_size, 5 * MB);
    ck_assert_str_eq(p.user, "acme");

    /* a negative threshold is a threshold */
    a = tenant_make("neg", AV_REJECT, SPAM_HEADER, -2.5, NO_RA, 1 * MB);
    plan_of(&p, &cfg_both, ts, 1);
    ck_assert_double_eq(p.threshold, -2.5);
    ck_assert(!p.reject_above_set);
}
END_TEST

static void check_defaults(const struct scan_plan *p, const char *name)
{
    ck_assert(p->av);
    ck_assert(p->spam);
    ck_assert_int_eq(p->antivirus, AV_REJECT);
    ck_assert_int_eq(p->spam_action, SPAM_HEADER);
    ck_assert_double_eq(p->threshold, 5.0);
    ck_assert(!p->reject_above_set);
    ck_assert_uint_eq(p->max_size, 10 * MB);
    ck_assert_str_eq(p->user, name);
    ck_assert_str_eq(p->av_by, name);
}

/* No scan key: antivirus reject, spam header at 5.0, max_size 10M, even
 * when the struct holds zeros (set by hand). */
START_TEST(test_plan_defaults)
{
    struct tenant t;
    memset(&t, 0, sizeof t);
    t.name = (char *)"plain";
    const struct tenant *ts[] = { &t };
    struct scan_plan p;
    plan_of(&p, &cfg_both, ts, 1);
    check_defaults(&p, "plain");

    /* the same from a rules directory */
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test_scan.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/plain.yaml", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("tenant: plain\ndomains: [plain.example]\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/strict.yaml", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("tenant: strict\ndomains: [strict.example]\n"
          "scan: {antivirus: tempfail, spam: {threshold: 3.5, action: reject, reject_above: 9}, max_size: 20M}\n",
          f);
    fclose(f);
    struct diags d;
    diags_init(&d);
    struct rules *r = rules_load(dir, &d, NULL);
    if (r == NULL)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(r);
    diags_free(&d);
    const struct tenant *plain = rules_tenant(r, "plain"), *strict = rules_tenant(r, "strict");
    ck_assert_ptr_nonnull(plain);
    ck_assert_ptr_nonnull(strict);
    plan_of(&p, &cfg_both, &plain, 1);
    check_defaults(&p, "plain");
    plan_of(&p, &cfg_both, &strict, 1);
    ck_assert_int_eq(p.antivirus, AV_TEMPFAIL);
    ck_assert_int_eq(p.spam_action, SPAM_REJECT);
    ck_assert_double_eq(p.threshold, 3.5);
    ck_assert(p.reject_above_set);
    ck_assert_double_eq(p.reject_above, 9);
    ck_assert_uint_eq(p.max_size, 20 * MB);
    /* both: the strictest of each, the largest size */
    const struct tenant *both[] = { plain, strict };
    plan_of(&p, &cfg_both, both, 2);
    ck_assert_int_eq(p.antivirus, AV_REJECT);
    ck_assert_str_eq(p.av_by, "plain");
    ck_assert_int_eq(p.spam_action, SPAM_REJECT);
    ck_assert_str_eq(p.spam_by, "strict");
    ck_assert_double_eq(p.threshold, 3.5);
    ck_assert_double_eq(p.reject_above, 9);
    ck_assert_uint_eq(p.max_size, 20 * MB);
    ck_assert_str_eq(p.user, "plain");
    rules_unref(r);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

/* antivirus reject > tempfail > quarantine > off, in either order; the
 * stricter tenant is named. */
START_TEST(test_plan_merge_antivirus)
{
    static const enum av_action order[] = { AV_OFF, AV_QUARANTINE, AV_TEMPFAIL, AV_REJECT }; /* weakest first */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            struct tenant a = tenant_make("a", order[i], SPAM_HEADER, 5, NO_RA, MB);
            struct tenant b = tenant_make("b", order[j], SPAM_HEADER, 5, NO_RA, MB);
            const struct tenant *ts[] = { &a, &b };
            struct scan_plan p;
            plan_of(&p, &cfg_both, ts, 2);
            int k = i > j ? i : j;
            ck_assert_msg(p.av == (order[k] != AV_OFF), "%d+%d: av %d", i, j, p.av);
            if (order[k] == AV_OFF)
                continue;
            ck_assert_msg(p.antivirus == order[k], "%s + %s: got %s", rules_av_names[order[i]],
                          rules_av_names[order[j]], rules_av_names[p.antivirus]);
            ck_assert_str_eq(p.av_by, i >= j ? "a" : "b");
        }
}
END_TEST

/* spam reject > quarantine > header > off, in either order. */
START_TEST(test_plan_merge_spam)
{
    static const enum spam_action order[] = { SPAM_OFF, SPAM_HEADER, SPAM_QUARANTINE, SPAM_REJECT };
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            struct tenant a = tenant_make("a", AV_REJECT, order[i], 5, NO_RA, MB);
            struct tenant b = tenant_make("b", AV_REJECT, order[j], 5, NO_RA, MB);
            const struct tenant *ts[] = { &a, &b };
            struct scan_plan p;
            plan_of(&p, &cfg_both, ts, 2);
            int k = i > j ? i : j;
            ck_assert_msg(p.spam == (order[k] != SPAM_OFF), "%d+%d: spam %d", i, j, p.spam);
            if (order[k] == SPAM_OFF)
                continue;
            ck_assert_msg(p.spam_action == order[k], "%s + %s: got %s", rules_spam_names[order[i]],
                          rules_spam_names[order[j]], rules_spam_names[p.spam_action]);
            ck_assert_str_eq(p.spam_by, i >= j ? "a" : "b");
            /* User: the first tenant with spam on */
            ck_assert_str_eq(p.user, order[i] != SPAM_OFF ? "a" : "b");
        }
}
END_TEST

/* The lowest threshold and reject_above, the largest max_size. */
START_TEST(test_plan_merge_numbers)
{
    struct tenant a = tenant_make("a", AV_REJECT, SPAM_HEADER, 8, NO_RA, 5 * MB);
    struct tenant b = tenant_make("b", AV_QUARANTINE, SPAM_HEADER, 6, 20, 20 * MB);
    struct tenant c = tenant_make("c", AV_QUARANTINE, SPAM_HEADER, 7, 15, 1 * MB);
    struct scan_plan p;
    const struct tenant *ab[] = { &a, &b }, *ba[] = { &b, &a }, *abc[] = { &a, &b, &c }, *cba[] = { &c, &b, &a };
    plan_of(&p, &cfg_both, ab, 2);
    ck_assert_double_eq(p.threshold, 6);
    ck_assert(p.reject_above_set);
    ck_assert_double_eq(p.reject_above, 20);
    ck_assert_uint_eq(p.max_size, 20 * MB);
    ck_assert_str_eq(p.user, "a");
    plan_of(&p, &cfg_both, ba, 2);
    ck_assert_double_eq(p.threshold, 6);
    ck_assert_double_eq(p.reject_above, 20);
    ck_assert_uint_eq(p.max_size, 20 * MB);
    ck_assert_str_eq(p.user, "b");
    plan_of(&p, &cfg_both, abc, 3);
    ck_assert_double_eq(p.threshold, 6);
    ck_assert_double_eq(p.reject_above, 15);
    ck_assert_uint_eq(p.max_size, 20 * MB);
    plan_of(&p, &cfg_both, cba, 3);
    ck_assert_double_eq(p.threshold, 6);
    ck_assert_double_eq(p.reject_above, 15);
    ck_assert_uint_eq(p.max_size, 20 * MB);
    ck_assert_str_eq(p.user, "c");

    /* the same tenant twice changes nothing */
    const struct tenant *aa[] = { &a, &a };
    plan_of(&p, &cfg_both, aa, 2);
    ck_assert_double_eq(p.threshold, 8);
    ck_assert(!p.reject_above_set);
    ck_assert_uint_eq(p.max_size, 5 * MB);
}
END_TEST

/* A scanner postern.yaml does not configure is never called. */
START_TEST(test_plan_not_configured)
{
    struct tenant a = tenant_make("a", AV_REJECT, SPAM_REJECT, 5, NO_RA, MB);
    const struct tenant *ts[] = { &a };
    struct scan_plan p;
    struct scan_cfg cfg = cfg_both;
    cfg.have_clamd = false;
    plan_of(&p, &cfg, ts, 1);
    ck_assert(!p.av);
    ck_assert(p.spam);
    ck_assert(scan_plan_any(&p));
    cfg = cfg_both;
    cfg.have_spamd = false;
    plan_of(&p, &cfg, ts, 1);
    ck_assert(p.av);
    ck_assert(!p.spam);
    cfg.have_clamd = false;
    plan_of(&p, &cfg, ts, 1);
    ck_assert(!p.av);
    ck_assert(!p.spam);
    ck_assert(!scan_plan_any(&p));

    /* both turned off by the tenant */
    a = tenant_make("a", AV_OFF, SPAM_OFF, 5, NO_RA, MB);
    plan_of(&p, &cfg_both, ts, 1);
    ck_assert(!p.av);
    ck_assert(!p.spam);
    ck_assert(!scan_plan_any(&p));
}
END_TEST

/* --- our headers --------------------------------------------------------------- */

static const char *const ours[] = { "X-Virus-Status", "X-Virus-Scanned", "X-Spam-Flag",
                                    "X-Spam-Score", "X-Spam-Status", "X-Postern-Not-Scanned" };

START_TEST(test_header_ours)
{
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        char up[64], low[64];
        for (size_t k = 0; k <= strlen(ours[i]); k++) {
            up[k] = (char)toupper((unsigned char)ours[i][k]);
            low[k] = (char)tolower((unsigned char)ours[i][k]);
        }
        ck_assert_msg(scan_header_ours(ours[i]), "%s", ours[i]);
        ck_assert_msg(scan_header_ours(up), "%s", up);
        ck_assert_msg(scan_header_ours(low), "%s", low);
        int idx = scan_header_index(low);
        ck_assert_msg(idx >= 0 && idx < SCAN_OUR_HEADERS, "%s: index %d", low, idx);
        ck_assert_msg(strcasecmp(scan_our_headers[idx], ours[i]) == 0, "%s: index %d is %s", ours[i], idx,
                      scan_our_headers[idx]);
    }
    ck_assert_int_eq(SCAN_OUR_HEADERS, sizeof ours / sizeof ours[0]);
    ck_assert_ptr_null(scan_our_headers[SCAN_OUR_HEADERS]);
    for (int i = 0; i < SCAN_OUR_HEADERS; i++)
        ck_assert_int_eq(scan_header_index(scan_our_headers[i]), i);
    static const char *const not_ours[] = { "Subject", "X-Spam", "X-Virus", "X-Spam-Status2", "X-Spam-Statu",
                                            "Spam-Status", "", "X-Postern-Not-Scanned ", "Authentication-Results" };
    for (size_t i = 0; i < sizeof not_ours / sizeof not_ours[0]; i++) {
        ck_assert_msg(!scan_header_ours(not_ours[i]), "\"%s\" taken for ours", not_ours[i]);
        ck_assert_int_eq(scan_header_index(not_ours[i]), -1);
    }
}
END_TEST

/* --- scan_decide ----------------------------------------------------------------- */

static struct scan_plan plan_make(enum av_action av, enum spam_action spam, double threshold, double reject_above)
{
    struct scan_plan p;
    memset(&p, 0, sizeof p);
    p.av = av != AV_OFF;
    p.antivirus = av;
    p.av_by = "avt";
    p.spam = spam != SPAM_OFF;
    p.spam_action = spam;
    p.spam_by = "spt";
    p.threshold = threshold;
    p.reject_above_set = reject_above > -1000;
    p.reject_above = reject_above;
    p.max_size = 10 * MB;
    p.user = "spt";
    return p;
}

static struct scan_result res_status(enum scan_status st)
{
    struct scan_result r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.elapsed_us = 12345;
    return r;
}

static struct scan_result av_clean(void)
{
    return res_status(SCAN_CLEAN);
}

static struct scan_result av_virus(const char *name)
{
    struct scan_result r = res_status(SCAN_FOUND);
    snprintf(r.name, sizeof r.name, "%s", name);
    return r;
}

/* A failure as scanner.c reports it: the kind its error text stands for. */
static struct scan_result res_failed(const char *why)
{
    struct scan_result r = res_status(SCAN_FAILED);
    snprintf(r.error, sizeof r.error, "%s", why);
    r.failure = strstr(why, "no free connection") != NULL ? SCAN_FAIL_BUSY
                : strncmp(why, "cannot connect", 14) == 0 ? SCAN_FAIL_CONNECT
                : strncmp(why, "timeout", 7) == 0         ? SCAN_FAIL_TIMEOUT
                : strncmp(why, "spool:", 6) == 0          ? SCAN_FAIL_SPOOL
                                                          : SCAN_FAIL_ANSWER;
    return r;
}

static struct scan_result spam_score(double score, const char *symbols)
{
    struct scan_result r = res_status(score >= 5.0 ? SCAN_FOUND : SCAN_CLEAN);
    r.score = score;
    r.required = 5.0;
    snprintf(r.symbols, sizeof r.symbols, "%s", symbols);
    return r;
}

static const struct scan_result not_run = { .status = SCAN_NOT_RUN };

/* scan_decide() and the checks that hold for every outcome. */
static void decide(const struct scan_plan *p, const struct scan_cfg *cfg, bool too_large, const struct scan_result *av,
                   const struct scan_result *spam, struct scan_outcome *out)
{
    memset(out, 0x5a, sizeof *out);
    scan_decide(p, cfg, 4242, too_large, av, spam, out);
    ck_assert_uint_le(out->n_headers, SCAN_MAX_HEADERS);
    ck_assert_msg(strnlen(out->text, sizeof out->text) < sizeof out->text, "text not terminated");
    ck_assert_msg(strnlen(out->summary, sizeof out->summary) < sizeof out->summary, "summary not terminated");
    ck_assert_msg(strpbrk(out->text, "\r\n") == NULL, "line break in the reply text: %s", out->text);
    ck_assert_msg(strpbrk(out->summary, "\r\n") == NULL, "line break in the summary: %s", out->summary);
    ck_assert_ptr_nonnull(out->rule);
    for (size_t i = 0; i < out->n_headers; i++) {
        ck_assert_ptr_nonnull(out->headers[i].name);
        ck_assert_msg(scan_header_ours(out->headers[i].name), "header %s added but not ours",
                      out->headers[i].name);
        const char *v = out->headers[i].value;
        ck_assert_msg(strnlen(v, sizeof out->headers[i].value) < sizeof out->headers[i].value, "%s not terminated",
                      out->headers[i].name);
        ck_assert_msg(v[0] != '\0', "%s empty", out->headers[i].name);
        for (const char *c = v; *c; c++)
            ck_assert_msg(*c != '\r' && (*c != '\n' || c[1] == ' ' || c[1] == '\t'), "%s: bad line break: %s",
                          out->headers[i].name, v);
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(strcasecmp(out->headers[k].name, out->headers[i].name) != 0, "%s added twice",
                          out->headers[i].name);
    }
    switch (out->action) {
    case SCAN_REJECT:
        ck_assert_str_eq(out->rcode, "550");
        ck_assert_str_eq(out->xcode, "5.7.1");
        break;
    case SCAN_TEMPFAIL:
        ck_assert_str_eq(out->rcode, "451");
        break;
    case SCAN_ACCEPT:
    case SCAN_QUARANTINE:
        break;
    default:
        ck_abort_msg("action %d", out->action);
    }
    if (out->action == SCAN_REJECT || out->action == SCAN_TEMPFAIL)
        ck_assert_msg(out->n_headers == 0, "%zu headers added to a refused message", out->n_headers);
    if (out->action == SCAN_QUARANTINE)
        ck_assert_msg(out->text[0] != '\0', "no hold reason");
}

/* The value of header name unfolded (LF and the blank after it removed),
 * or NULL. */
static const char *hdr(const struct scan_outcome *o, const char *name)
{
    static char flat[sizeof o->headers[0].value];
    for (size_t i = 0; i < o->n_headers; i++) {
        if (strcasecmp(o->headers[i].name, name) != 0)
            continue;
        size_t n = 0;
        for (const char *c = o->headers[i].value; *c; c++)
            if (*c == '\n' && (c[1] == ' ' || c[1] == '\t'))
                c++;
            else
                flat[n++] = *c;
        flat[n] = '\0';
        return flat;
    }
    return NULL;
}

static int hdr_pos(const struct scan_outcome *o, const char *name)
{
    for (size_t i = 0; i < o->n_headers; i++)
        if (strcasecmp(o->headers[i].name, name) == 0)
            return (int)i;
    return -1;
}

#define ck_action(o, a) ck_assert_msg((o).action == (a), "action %d, expected %s (%s %s %s)", (o).action, #a, \
                                      (o).rcode, (o).xcode, (o).text)

static void check_no_av_headers(const struct scan_outcome *o)
{
    ck_assert_ptr_null(hdr(o, "X-Virus-Status"));
    ck_assert_ptr_null(hdr(o, "X-Virus-Scanned"));
}

static void check_no_spam_headers(const struct scan_outcome *o)
{
    ck_assert_ptr_null(hdr(o, "X-Spam-Flag"));
    ck_assert_ptr_null(hdr(o, "X-Spam-Score"));
    ck_assert_ptr_null(hdr(o, "X-Spam-Status"));
}

/* 1. a virus, antivirus reject: 550 5.7.1 naming it; beats a spam reject. */
START_TEST(test_decide_virus_reject)
{
    struct scan_plan p = plan_make(AV_REJECT, SPAM_REJECT, 5, 10);
    struct scan_result av = av_virus("Eicar-Test-Signature.UNOFFICIAL");
    struct scan_result sp = spam_score(1003.3, "GTUBE");
    struct scan_outcome o;
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_REJECT);
    ck_assert_msg(strstr(o.text, "Eicar-Test-Signature.UNOFFICIAL") != NULL, "%s", o.text);
    ck_assert_str_eq(o.rule, "scan.antivirus");
    ck_assert_str_eq(o.tenant, "avt");
    struct scan_result clean = spam_score(-1, "");
    decide(&p, &cfg_both, false, &av, &clean, &o);
    ck_action(o, SCAN_REJECT);
    decide(&p, &cfg_both, false, &av, &not_run, &o);
    ck_action(o, SCAN_REJECT);
    /* and a spamd failure with on_failure tempfail */
    struct scan_result bad = res_failed("timeout after 300 ms");
    decide(&p, &cfg_both, false, &av, &bad, &o);
    ck_action(o, SCAN_REJECT);
    ck_assert_str_eq(o.rule, "scan.antivirus");
}
END_TEST

/* 2. spam above reject_above (whatever the action), or at/above the
 * threshold with action reject: 550 5.7.1 with the score; beats a virus
 * tempfail and a scanner failure. */
START_TEST(test_decide_spam_reject)
{
    struct scan_outcome o;
    struct scan_result av = av_clean();

    /* reject_above, action header */
    struct scan_plan p = plan_make(AV_REJECT, SPAM_HEADER, 5, 15);
    struct scan_result sp = spam_score(16.5, "A,B");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_REJECT);
    ck_assert_msg(strstr(o.text, "16.5") != NULL, "score not in \"%s\"", o.text);
    ck_assert_str_eq(o.rule, "scan.spam.reject_above");
    ck_assert_str_eq(o.tenant, "spt");
    /* at reject_above is not above it */
    sp = spam_score(15.0, "A,B");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_ACCEPT);

    /* action reject: at the threshold, not below */
    p = plan_make(AV_REJECT, SPAM_REJECT, 6.5, NO_RA);
    sp = spam_score(6.5, "A");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_REJECT);
    ck_assert_msg(strstr(o.text, "6.5") != NULL, "score not in \"%s\"", o.text);
    sp = spam_score(6.4, "A");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
    /* the tenant's threshold, not spamd's own verdict */
    sp = spam_score(6.0, "A"); /* SCAN_FOUND: spamd says spam at 5.0 */
    ck_assert_int_eq(sp.status, SCAN_FOUND);
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
    p = plan_make(AV_REJECT, SPAM_REJECT, 3.0, NO_RA);
    sp = spam_score(4.0, "A"); /* SCAN_CLEAN for spamd */
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_REJECT);

    /* beats a virus with antivirus tempfail or quarantine */
    p = plan_make(AV_TEMPFAIL, SPAM_REJECT, 5, NO_RA);
    struct scan_result virus = av_virus("Win.Test.EICAR_HDB-1");
    sp = spam_score(9, "A");
    decide(&p, &cfg_both, false, &virus, &sp, &o);
    ck_action(o, SCAN_REJECT);
    ck_assert_str_eq(o.rule, "scan.spam");
    p = plan_make(AV_QUARANTINE, SPAM_HEADER, 5, 8);
    decide(&p, &cfg_both, false, &virus, &sp, &o);
    ck_action(o, SCAN_REJECT);
    ck_assert_str_eq(o.rule, "scan.spam.reject_above");

    /* beats a clamd failure with on_failure tempfail */
    p = plan_make(AV_REJECT, SPAM_REJECT, 5, NO_RA);
    struct scan_result bad = res_failed("cannot connect");
    decide(&p, &cfg_both, false, &bad, &sp, &o);
    ck_action(o, SCAN_REJECT);
    ck_assert_str_eq(o.rule, "scan.spam");
}
END_TEST

/* 3. a virus, antivirus tempfail: 451 4.7.1; beats a failure. */
START_TEST(test_decide_virus_tempfail)
{
    struct scan_plan p = plan_make(AV_TEMPFAIL, SPAM_QUARANTINE, 5, NO_RA);
    struct scan_result virus = av_virus("Eicar-Test-Signature");
    struct scan_result sp = spam_score(1, "A");
    struct scan_outcome o;
    decide(&p, &cfg_both, false, &virus, &sp, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.7.1");
    ck_assert_str_eq(o.rule, "scan.antivirus");
    ck_assert_str_eq(o.tenant, "avt");
    /* beats spamd failed (tempfail) and spam quarantine */
    struct scan_result bad = res_failed("timeout");
    decide(&p, &cfg_both, false, &virus, &bad, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.7.1");
    sp = spam_score(7, "A");
    decide(&p, &cfg_both, false, &virus, &sp, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.7.1");
}
END_TEST

/* 4. a failure with on_failure tempfail: 451 4.3.0, the scanner's rule;
 * beats quarantine. */
START_TEST(test_decide_failure_tempfail)
{
    struct scan_plan p = plan_make(AV_REJECT, SPAM_HEADER, 5, NO_RA);
    struct scan_result bad = res_failed("timeout after 300 ms waiting for the answer");
    struct scan_result av = av_clean(), sp = spam_score(1, "A");
    struct scan_outcome o;
    decide(&p, &cfg_both, false, &bad, &sp, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.3.0");
    ck_assert_str_eq(o.rule, "clamd.on_failure");
    decide(&p, &cfg_both, false, &av, &bad, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.3.0");
    ck_assert_str_eq(o.rule, "spamd.on_failure");
    decide(&p, &cfg_both, false, &bad, &bad, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.3.0");

    /* beats quarantine of a virus or of spam */
    p = plan_make(AV_QUARANTINE, SPAM_QUARANTINE, 5, NO_RA);
    struct scan_result virus = av_virus("X"), spam = spam_score(8, "A");
    decide(&p, &cfg_both, false, &bad, &spam, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.3.0");
    ck_assert_str_eq(o.rule, "clamd.on_failure");
    decide(&p, &cfg_both, false, &virus, &bad, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.xcode, "4.3.0");
    ck_assert_str_eq(o.rule, "spamd.on_failure");

    /* on_failure accept for the failed one: not a tempfail */
    struct scan_cfg cfg = cfg_both;
    cfg.clamd_accept_on_failure = true;
    decide(&p, &cfg, false, &bad, &spam, &o);
    ck_action(o, SCAN_QUARANTINE);
    /* but the other's tempfail still holds */
    decide(&p, &cfg, false, &virus, &bad, &o);
    ck_action(o, SCAN_TEMPFAIL);
    ck_assert_str_eq(o.rule, "spamd.on_failure");
}
END_TEST

/* 5. quarantine: a virus with antivirus quarantine, spam at/above the
 * threshold with action quarantine; the headers are added. */
START_TEST(test_decide_quarantine)
{
    struct scan_plan p = plan_make(AV_QUARANTINE, SPAM_HEADER, 5, NO_RA);
    struct scan_result virus = av_virus("Eicar-Test-Signature.UNOFFICIAL");
    struct scan_result sp = spam_score(2.5, "A,B");
    struct scan_outcome o;
    decide(&p, &cfg_both, false, &virus, &sp, &o);
    ck_action(o, SCAN_QUARANTINE);
    ck_assert_msg(strstr(o.text, "Eicar-Test-Signature.UNOFFICIAL") != NULL, "hold reason: %s", o.text);
    ck_assert_str_eq(o.rule, "scan.antivirus");
    ck_assert_str_eq(o.tenant, "avt");
    const char *vs = hdr(&o, "X-Virus-Status");
    ck_assert_ptr_nonnull(vs);
    ck_assert_msg(strncmp(vs, "Infected", 8) == 0 && strstr(vs, "Eicar-Test-Signature.UNOFFICIAL") != NULL,
                  "X-Virus-Status: %s", vs);
    ck_assert_ptr_nonnull(hdr(&o, "X-Virus-Scanned"));
    ck_assert_ptr_nonnull(hdr(&o, "X-Spam-Status"));

    p = plan_make(AV_REJECT, SPAM_QUARANTINE, 5, 20);
    sp = spam_score(5.0, "GTUBE");
    struct scan_result av = av_clean();
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_QUARANTINE);
    ck_assert_msg(strstr(o.text, "5.0") != NULL, "score not in the hold reason: %s", o.text);
    ck_assert_str_eq(o.rule, "scan.spam");
    ck_assert_str_eq(o.tenant, "spt");
    ck_assert_str_eq(hdr(&o, "X-Spam-Flag"), "YES");
    ck_assert_str_eq(hdr(&o, "X-Virus-Status"), "Clean");
    /* below the threshold: accepted */
    sp = spam_score(4.9, "A");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
}
END_TEST

/* 6. accept, with the headers of both scanners, in order. */
START_TEST(test_decide_accept_headers)
{
    struct scan_plan p = plan_make(AV_REJECT, SPAM_HEADER, 5, NO_RA);
    struct scan_result av = av_clean();
    struct scan_result sp = spam_score(1003.3, "GTUBE,MISSING_DATE");
    struct scan_outcome o;
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
    ck_assert_str_eq(hdr(&o, "X-Virus-Status"), "Clean");
    const char *scanned = hdr(&o, "X-Virus-Scanned");
    ck_assert_ptr_nonnull(scanned);
    ck_assert_msg(strstr(scanned, "mx.test") != NULL, "X-Virus-Scanned: %s", scanned);
    ck_assert_str_eq(hdr(&o, "X-Spam-Flag"), "YES");
    const char *score = hdr(&o, "X-Spam-Score");
    ck_assert_ptr_nonnull(score);
    ck_assert_double_eq_tol(strtod(score, NULL), 1003.3, 1e-9);
    ck_assert_str_eq(hdr(&o, "X-Spam-Status"), "Yes, score=1003.3 required=5.0 tests=GTUBE,MISSING_DATE");
    ck_assert_ptr_null(hdr(&o, "X-Postern-Not-Scanned"));
    ck_assert_int_lt(hdr_pos(&o, "X-Virus-Status"), hdr_pos(&o, "X-Spam-Flag"));

    /* ham: no YES flag; "No, ..." with the tenant's threshold */
    p = plan_make(AV_REJECT, SPAM_HEADER, 6.5, NO_RA);
    sp = spam_score(-0.0, "MSGID_SHORT,NO_RECEIVED,NO_RELAYS");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
    const char *flag = hdr(&o, "X-Spam-Flag");
    ck_assert_msg(flag == NULL || strcasecmp(flag, "NO") == 0, "X-Spam-Flag: %s", flag);
    const char *status = hdr(&o, "X-Spam-Status");
    ck_assert_ptr_nonnull(status);
    ck_assert_msg(strncmp(status, "No, score=", 10) == 0, "X-Spam-Status: %s", status);
    ck_assert_msg(strstr(status, "required=6.5 ") != NULL, "X-Spam-Status: %s", status);
    ck_assert_msg(strstr(status, "tests=MSGID_SHORT,NO_RECEIVED,NO_RELAYS") != NULL, "X-Spam-Status: %s", status);
    ck_assert_str_eq(o.rule, "scan");

    /* spamd says spam at its 5.0, the tenant's threshold is 6.5 */
    sp = spam_score(6.0, "A");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    flag = hdr(&o, "X-Spam-Flag");
    ck_assert_msg(flag == NULL || strcasecmp(flag, "NO") == 0, "X-Spam-Flag: %s", flag);
    ck_assert_msg(strncmp(hdr(&o, "X-Spam-Status"), "No, score=6.0 required=6.5", 26) == 0, "X-Spam-Status: %s",
                  hdr(&o, "X-Spam-Status"));

    /* negative score; no symbols */
    sp = spam_score(-3.2, "");
    decide(&p, &cfg_both, false, &av, &sp, &o);
    ck_assert_msg(strncmp(hdr(&o, "X-Spam-Status"), "No, score=-3.2 required=6.5", 27) == 0, "X-Spam-Status: %s",
                  hdr(&o, "X-Spam-Status"));
    ck_assert_double_eq_tol(strtod(hdr(&o, "X-Spam-Score"), NULL), -3.2, 1e-9);

    /* only clamd asked: no spam headers; only spamd: no virus headers */
    p = plan_make(AV_REJECT, SPAM_OFF, 5, NO_RA);
    decide(&p, &cfg_both, false, &av, &not_run, &o);
    ck_action(o, SCAN_ACCEPT);
    check_no_spam_headers(&o);
    ck_assert_str_eq(hdr(&o, "X-Virus-Status"), "Clean");
    p = plan_make(AV_OFF, SPAM_HEADER, 5, NO_RA);
    sp = spam_score(1, "A");
    decide(&p, &cfg_both, false, &not_run, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
    check_no_av_headers(&o);
    ck_assert_ptr_nonnull(hdr(&o, "X-Spam-Status"));
}
END_TEST

/* A long symbol list makes a long X-Spam-Status: it fits (folded or not). */
START_TEST(test_decide_long_symbols)
{
    struct buf syms;
    buf_init(&syms);
    for (int i = 0; syms.len < 1000; i++)
        buf_printf(&syms, "%sRULE_%d", i ? "," : "", i);
    while (syms.len >= 1023)
        syms.data[--syms.len] = '\0';
    struct scan_plan p = plan_make(AV_REJECT, SPAM_HEADER, 5, NO_RA);
    struct scan_result av = av_clean(), sp = spam_score(7.25, syms.data);
    struct scan_outcome o;
    decide(&p, &cfg_both, false, &av, &sp, &o);
    const char *status = hdr(&o, "X-Spam-Status"); /* unfolded */
    ck_assert_ptr_nonnull(status);
    ck_assert_msg(strstr(status, syms.data) != NULL, "symbols lost: %s", status);
    /* folded: no line over 78 columns, the name counted */
    size_t h = (size_t)hdr_pos(&o, "X-Spam-Status"), col = strlen("X-Spam-Status: ");
    for (const char *c = o.headers[h].value; *c; c++) {
        col = *c == '\n' ? 0 : col + (*c == '\t' ? 8 : 1);
        ck_assert_msg(col <= 78, "line over 78 columns: %s", o.headers[h].value);
    }
    buf_free(&syms);
}
END_TEST

/* X-Postern-Not-Scanned: over max_size, over clamd's limit, a failure
 * with on_failure accept. */
START_TEST(test_decide_not_scanned)
{
    struct scan_plan p = plan_make(AV_REJECT, SPAM_REJECT, 5, NO_RA);
    struct scan_outcome o;

    /* over the tenant's max_size: neither was called */
    decide(&p, &cfg_both, true, &not_run, &not_run, &o);
    ck_action(o, SCAN_ACCEPT);
    const char *ns = hdr(&o, "X-Postern-Not-Scanned");
    ck_assert_ptr_nonnull(ns);
    ck_assert_msg(strstr(ns, "clamd") != NULL && strstr(ns, "spamd") != NULL, "X-Postern-Not-Scanned: %s", ns);
    ck_assert_msg(strstr(ns, "max_size") != NULL || strcasestr(ns, "size") != NULL, "why not in: %s", ns);
    check_no_av_headers(&o);
    check_no_spam_headers(&o);
    ck_assert_msg(strstr(o.summary, "max_size") != NULL, "summary: %s", o.summary);
    /* only the scanners of the plan are named */
    struct scan_plan pav = plan_make(AV_REJECT, SPAM_OFF, 5, NO_RA);
    decide(&pav, &cfg_both, true, &not_run, &not_run, &o);
    ns = hdr(&o, "X-Postern-Not-Scanned");
    ck_assert_ptr_nonnull(ns);
    ck_assert_msg(strstr(ns, "clamd") != NULL && strstr(ns, "spamd") == NULL, "X-Postern-Not-Scanned: %s", ns);

    /* over clamd's StreamMaxLength; spamd answered */
    struct scan_result big = res_status(SCAN_TOO_LARGE);
    snprintf(big.error, sizeof big.error, "over clamd's StreamMaxLength");
    struct scan_result sp = spam_score(1.0, "A");
    decide(&p, &cfg_both, false, &big, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
    ns = hdr(&o, "X-Postern-Not-Scanned");
    ck_assert_ptr_nonnull(ns);
    ck_assert_msg(strstr(ns, "clamd") != NULL && strstr(ns, "spamd") == NULL, "X-Postern-Not-Scanned: %s", ns);
    check_no_av_headers(&o);
    ck_assert_ptr_nonnull(hdr(&o, "X-Spam-Status"));
    /* ... and spam over the threshold is still rejected */
    sp = spam_score(9.0, "A");
    decide(&p, &cfg_both, false, &big, &sp, &o);
    ck_action(o, SCAN_REJECT);

    /* failures with on_failure accept */
    struct scan_cfg cfg = cfg_both;
    cfg.clamd_accept_on_failure = cfg.spamd_accept_on_failure = true;
    struct scan_result bad = res_failed("timeout after 300 ms waiting for the answer");
    struct scan_result av = av_clean();
    sp = spam_score(1.0, "A");
    decide(&p, &cfg, false, &bad, &sp, &o);
    ck_action(o, SCAN_ACCEPT);
    ns = hdr(&o, "X-Postern-Not-Scanned");
    ck_assert_ptr_nonnull(ns);
    ck_assert_msg(strstr(ns, "clamd") != NULL && strstr(ns, "spamd") == NULL, "X-Postern-Not-Scanned: %s", ns);
    check_no_av_headers(&o);
    ck_assert_ptr_nonnull(hdr(&o, "X-Spam-Status"));
    ck_assert_msg(strstr(o.summary, "timeout") != NULL, "summary without the failure: %s", o.summary);

    decide(&p, &cfg, false, &av, &bad, &o);
    ck_action(o, SCAN_ACCEPT);
    ns = hdr(&o, "X-Postern-Not-Scanned");
    ck_assert_ptr_nonnull(ns);
    ck_assert_msg(strstr(ns, "spamd") != NULL && strstr(ns, "clamd") == NULL, "X-Postern-Not-Scanned: %s", ns);
    ck_assert_str_eq(hdr(&o, "X-Virus-Status"), "Clean");
    check_no_spam_headers(&o);

    decide(&p, &cfg, false, &bad, &bad, &o);
    ck_action(o, SCAN_ACCEPT);
    ns = hdr(&o, "X-Postern-Not-Scanned");
    ck_assert_msg(strstr(ns, "clamd") != NULL && strstr(ns, "spamd") != NULL, "X-Postern-Not-Scanned: %s", ns);
    check_no_av_headers(&o);
    check_no_spam_headers(&o);

    /* a virus still counts when spamd failed with accept */
    struct scan_result virus = av_virus("Eicar");
    decide(&p, &cfg, false, &virus, &bad, &o);
    ck_action(o, SCAN_REJECT);
}
END_TEST

/* X-Postern-Not-Scanned says why in a few words (from the errors
 * scanner.c and the spool give); the error itself, which may name sockets
 * and files, goes only into the summary. */
START_TEST(test_decide_not_scanned_reason)
{
    static const struct {
        const char *error, *brief;
    } cases[] = {
        { "cannot connect to unix:/run/clamav/clamd.ctl (connect: Connection refused)", "scanner unavailable" },
        { "cannot connect to unix:/run/clamav/clamd.ctl (no free connection within 200 ms (1 in use))",
          "scanner busy" },
        { "timeout after 300 ms waiting for the answer", "scanner timed out" },
        { "timeout after 300 ms while sending the message", "scanner timed out" },
        { "spool: cannot read the temporary file in /var/spool/postern: Input/output error", "temporary file error" },
        { "clamd answered \"what is this\"", "unreadable answer from the scanner" },
        { "spamd answered without a readable Spam: header", "unreadable answer from the scanner" },
    };
    struct scan_plan p = plan_make(AV_REJECT, SPAM_HEADER, 5, NO_RA);
    struct scan_cfg cfg = cfg_both;
    cfg.clamd_accept_on_failure = cfg.spamd_accept_on_failure = true;
    struct scan_result av = av_clean(), sp = spam_score(1, "A");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct scan_result bad = res_failed(cases[i].error);
        struct scan_outcome o;
        decide(&p, &cfg, false, &bad, &sp, &o);
        ck_action(o, SCAN_ACCEPT);
        const char *ns = hdr(&o, "X-Postern-Not-Scanned");
        ck_assert_ptr_nonnull(ns);
        ck_assert_msg(strstr(ns, "clamd") != NULL && strstr(ns, cases[i].brief) != NULL,
                      "error \"%s\": X-Postern-Not-Scanned: %s", cases[i].error, ns);
        ck_assert_msg(strstr(ns, "/run/") == NULL && strstr(ns, "/var/") == NULL, "a path in the header: %s", ns);
        ck_assert_msg(strstr(o.summary, cases[i].error) != NULL, "summary without the error: %s", o.summary);
        decide(&p, &cfg, false, &av, &bad, &o);
        ns = hdr(&o, "X-Postern-Not-Scanned");
        ck_assert_ptr_nonnull(ns);
        ck_assert_msg(strstr(ns, "spamd") != NULL && strstr(ns, cases[i].brief) != NULL,
                      "error \"%s\": X-Postern-Not-Scanned: %s", cases[i].error, ns);
    }
}
END_TEST

/* The summary names each scanner's verdict. */
START_TEST(test_decide_summary)
{
    struct scan_plan p = plan_make(AV_QUARANTINE, SPAM_HEADER, 5, NO_RA);
    struct scan_result virus = av_virus("Eicar-Test-Signature.UNOFFICIAL");
    struct scan_result sp = spam_score(7.2, "A,B");
    struct scan_outcome o;
    decide(&p, &cfg_both, false, &virus, &sp, &o);
    ck_assert_msg(strstr(o.summary, "clamd") != NULL, "%s", o.summary);
    ck_assert_msg(strstr(o.summary, "Eicar-Test-Signature.UNOFFICIAL") != NULL, "%s", o.summary);
    ck_assert_msg(strstr(o.summary, "spamd") != NULL, "%s", o.summary);
    ck_assert_msg(strstr(o.summary, "7.2") != NULL, "%s", o.summary);

    struct scan_result av = av_clean();
    struct scan_result bad = res_failed("cannot connect to unix:/run/spamd.sock (connect: Connection refused)");
    struct scan_cfg cfg = cfg_both;
    cfg.spamd_accept_on_failure = true;
    decide(&p, &cfg, false, &av, &bad, &o);
    ck_assert_msg(strstr(o.summary, "clamd") != NULL, "%s", o.summary);
    ck_assert_msg(strcasestr(o.summary, "clean") != NULL, "%s", o.summary);
    ck_assert_msg(strstr(o.summary, "Connection refused") != NULL, "%s", o.summary);

    /* a scanner not in the plan is not reported as one that ran */
    struct scan_plan pav = plan_make(AV_REJECT, SPAM_OFF, 5, NO_RA);
    decide(&pav, &cfg_both, false, &av, &not_run, &o);
    ck_assert_msg(strstr(o.summary, "clamd") != NULL, "%s", o.summary);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, test_plan_empty);
    tcase_add_test(tc, test_plan_one);
    tcase_add_test(tc, test_plan_defaults);
    tcase_add_test(tc, test_plan_merge_antivirus);
    tcase_add_test(tc, test_plan_merge_spam);
    tcase_add_test(tc, test_plan_merge_numbers);
    tcase_add_test(tc, test_plan_not_configured);
    tcase_add_test(tc, test_header_ours);
    tcase_add_test(tc, test_decide_virus_reject);
    tcase_add_test(tc, test_decide_spam_reject);
    tcase_add_test(tc, test_decide_virus_tempfail);
    tcase_add_test(tc, test_decide_failure_tempfail);
    tcase_add_test(tc, test_decide_quarantine);
    tcase_add_test(tc, test_decide_accept_headers);
    tcase_add_test(tc, test_decide_long_symbols);
    tcase_add_test(tc, test_decide_not_scanned);
    tcase_add_test(tc, test_decide_not_scanned_reason);
    tcase_add_test(tc, test_decide_summary);
}

UNIT_MAIN("scan", add_tests)
