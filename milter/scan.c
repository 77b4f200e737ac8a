/* scan.c: the tenants' `scan` rules applied to the scanners' verdicts:
 * which scanners a message needs, the reply or hold, the headers, and the
 * audit summary (see scan.h for the order of the outcomes). */
#include "scan.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

const char *const scan_our_headers[SCAN_OUR_HEADERS + 1] = {
    "X-Virus-Scanned", "X-Virus-Status", "X-Spam-Flag", "X-Spam-Score", "X-Spam-Status", "X-Postern-Not-Scanned",
    NULL,
};

int scan_header_index(const char *name)
{
    for (int i = 0; i < SCAN_OUR_HEADERS; i++)
        if (strcasecmp(name, scan_our_headers[i]) == 0)
            return i;
    return -1;
}

bool scan_header_ours(const char *name)
{
    return scan_header_index(name) >= 0;
}

/* Strictness ranks: a higher rank wins a merge. */
static int scan_av_rank(enum av_action a)
{
    switch (a) {
    case AV_REJECT: return 3;
    case AV_TEMPFAIL: return 2;
    case AV_QUARANTINE: return 1;
    case AV_OFF: break;
    }
    return 0;
}

static int scan_spam_rank(enum spam_action a)
{
    switch (a) {
    case SPAM_REJECT: return 3;
    case SPAM_QUARANTINE: return 2;
    case SPAM_HEADER: return 1;
    case SPAM_OFF: break;
    }
    return 0;
}

void scan_plan_add(struct scan_plan *p, const struct scan_cfg *cfg, const struct tenant *t)
{
    struct scan def;
    const struct scan *sc = &t->scan;
    if (!sc->set) { /* a tenant without a scan key: the defaults (rules/README.md) */
        memset(&def, 0, sizeof def);
        def.antivirus = AV_REJECT;
        def.spam = SPAM_HEADER;
        def.spam_threshold = RULES_DEFAULT_SPAM_THRESHOLD;
        def.max_size = RULES_DEFAULT_SCAN_MAX_SIZE;
        sc = &def;
    }
    bool av = cfg->have_clamd && sc->antivirus != AV_OFF;
    bool spam = cfg->have_spamd && sc->spam != SPAM_OFF;
    if (!av && !spam)
        return;
    if (sc->max_size > p->max_size)
        p->max_size = sc->max_size;
    if (av && (!p->av || scan_av_rank(sc->antivirus) > scan_av_rank(p->antivirus))) {
        p->antivirus = sc->antivirus;
        p->av_by = t->name;
    }
    p->av = p->av || av;
    if (spam) {
        if (!p->spam || scan_spam_rank(sc->spam) > scan_spam_rank(p->spam_action)) {
            p->spam_action = sc->spam;
            p->spam_by = t->name;
        }
        if (!p->spam || sc->spam_threshold < p->threshold)
            p->threshold = sc->spam_threshold;
        if (sc->reject_above_set && (!p->reject_above_set || sc->reject_above < p->reject_above)) {
            p->reject_above = sc->reject_above;
            p->reject_above_set = true;
        }
        if (p->user == NULL)
            p->user = t->name;
        p->spam = true;
    }
}

bool scan_plan_any(const struct scan_plan *p)
{
    return p->av || p->spam;
}

/* --- the decision ------------------------------------------------------------ */

static void scan_reply(struct scan_outcome *o, enum scan_action a, const char *rcode, const char *xcode,
                       const char *rule, const char *tenant)
{
    o->action = a;
    snprintf(o->rcode, sizeof o->rcode, "%s", rcode);
    snprintf(o->xcode, sizeof o->xcode, "%s", xcode);
    o->rule = rule;
    o->tenant = tenant;
}

static void scan_add_header(struct scan_outcome *o, const char *name, const char *value)
{
    if (o->n_headers == SCAN_MAX_HEADERS)
        return;
    o->headers[o->n_headers].name = name;
    snprintf(o->headers[o->n_headers].value, sizeof o->headers[o->n_headers].value, "%s", value);
    o->n_headers++;
}

/* Append a comma-separated list, folded ("\n\t", which the MTA turns into
 * CRLF TAB) so that no line of the header passes 78 columns; col: the
 * column the list starts at. */
static void scan_fold_list(struct buf *out, const char *list, size_t col)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (col + n + 1 > 78 && p != list) {
            buf_puts(out, "\n\t");
            col = 8;
        }
        buf_add(out, p, n);
        col += n;
        p += n;
        if (*p == ',') {
            buf_add(out, ",", 1);
            col++;
            p++;
        }
    }
}

/* What X-Postern-Not-Scanned says of a failure: the kind only (the error
 * itself, with socket paths and the scanner's words, stays in the log and
 * the audit record). */
static const char *scan_brief(const struct scan_result *r)
{
    switch (r->failure) {
    case SCAN_FAIL_BUSY: return "scanner busy";
    case SCAN_FAIL_CONNECT: return "scanner unavailable";
    case SCAN_FAIL_TIMEOUT: return "scanner timed out";
    case SCAN_FAIL_SPOOL: return "temporary file error";
    case SCAN_FAIL_ANSWER: break;
    }
    return "unreadable answer from the scanner";
}

/* -0.0 as 0.0 (SpamAssassin's rounding gives it). */
static double scan_score(double v)
{
    return v == 0.0 ? 0.0 : v;
}

/* " (12 ms)", or " (1102 ms, 1099 of them waiting for a connection)". */
static void scan_time(struct buf *out, const struct scan_result *r)
{
    buf_printf(out, " (%d ms", (int)((r->elapsed_us + 500) / 1000));
    if (r->wait_us >= 1000)
        buf_printf(out, ", %d of them waiting for a connection", (int)((r->wait_us + 500) / 1000));
    buf_putc(out, ')');
}

/* "clamd=clean (2 ms)" and the like, for the audit record and the log. */
static void scan_summarize(const struct scan_plan *p, uint64_t size, bool too_large, const struct scan_result *av,
                           const struct scan_result *spam, struct buf *out)
{
    if (too_large) {
        buf_printf(out, "not scanned: %llu bytes over max_size %llu", (unsigned long long)size,
                   (unsigned long long)p->max_size);
        return;
    }
    if (p->av) {
        switch (av->status) {
        case SCAN_CLEAN: buf_puts(out, "clamd=clean"); break;
        case SCAN_FOUND: buf_printf(out, "clamd=virus %s", av->name); break;
        case SCAN_TOO_LARGE: buf_printf(out, "clamd=not-scanned %s", av->error); break;
        case SCAN_FAILED: buf_printf(out, "clamd=failed %s", av->error); break;
        case SCAN_NOT_RUN: buf_puts(out, "clamd=not-run"); break;
        }
        if (av->status != SCAN_NOT_RUN)
            scan_time(out, av);
    }
    if (p->spam) {
        if (out->len > 0)
            buf_puts(out, "; ");
        switch (spam->status) {
        case SCAN_CLEAN:
        case SCAN_FOUND:
            buf_printf(out, "spamd=%s score=%.1f threshold=%.1f tests=%s",
                       spam->score >= p->threshold ? "spam" : "ham", scan_score(spam->score), p->threshold,
                       spam->symbols[0] ? spam->symbols : "none");
            scan_time(out, spam);
            break;
        case SCAN_FAILED:
            buf_printf(out, "spamd=failed %s", spam->error);
            scan_time(out, spam);
            break;
        case SCAN_TOO_LARGE: buf_printf(out, "spamd=not-scanned %s", spam->error); break;
        case SCAN_NOT_RUN: buf_puts(out, "spamd=not-run"); break;
        }
    }
}

void scan_decide(const struct scan_plan *p, const struct scan_cfg *cfg, uint64_t size, bool too_large,
                 const struct scan_result *av, const struct scan_result *spam, struct scan_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->action = SCAN_ACCEPT;
    out->rule = "scan";
    out->tenant = p->av_by != NULL ? p->av_by : p->spam_by;
    struct buf sum, notscanned;
    buf_init(&sum);
    buf_init(&notscanned);
    scan_summarize(p, size, too_large, av, spam, &sum);

    bool virus = !too_large && p->av && av->status == SCAN_FOUND;
    bool av_failed = !too_large && p->av && av->status == SCAN_FAILED;
    bool spam_ok = !too_large && p->spam && (spam->status == SCAN_CLEAN || spam->status == SCAN_FOUND);
    bool spam_failed = !too_large && p->spam && spam->status == SCAN_FAILED;
    bool is_spam = spam_ok && spam->score >= p->threshold;
    bool over = spam_ok && p->reject_above_set && spam->score > p->reject_above;

    if (virus && p->antivirus == AV_REJECT) {
        scan_reply(out, SCAN_REJECT, "550", "5.7.1", "scan.antivirus", p->av_by);
        snprintf(out->text, sizeof out->text, "virus found: %s", av->name);
    } else if (over || (is_spam && p->spam_action == SPAM_REJECT)) {
        scan_reply(out, SCAN_REJECT, "550", "5.7.1", over ? "scan.spam.reject_above" : "scan.spam", p->spam_by);
        snprintf(out->text, sizeof out->text, "message looks like spam (score %.1f)", scan_score(spam->score));
    } else if (virus && p->antivirus == AV_TEMPFAIL) {
        scan_reply(out, SCAN_TEMPFAIL, "451", "4.7.1", "scan.antivirus", p->av_by);
        snprintf(out->text, sizeof out->text, "virus found: %s, try again later", av->name);
    } else if ((av_failed && !cfg->clamd_accept_on_failure) || (spam_failed && !cfg->spamd_accept_on_failure)) {
        bool a = av_failed && !cfg->clamd_accept_on_failure;
        scan_reply(out, SCAN_TEMPFAIL, "451", "4.3.0", a ? "clamd.on_failure" : "spamd.on_failure",
                   a ? p->av_by : p->spam_by);
        snprintf(out->text, sizeof out->text, "%s scanner unavailable, try again later",
                 a ? "anti-virus" : "anti-spam");
    } else if (virus || (is_spam && p->spam_action == SPAM_QUARANTINE)) {
        scan_reply(out, SCAN_QUARANTINE, "", "", virus ? "scan.antivirus" : "scan.spam", virus ? p->av_by : p->spam_by);
        if (virus)
            snprintf(out->text, sizeof out->text, "postern: virus %s", av->name);
        else
            snprintf(out->text, sizeof out->text, "postern: spam, score %.1f (tenant %s)", scan_score(spam->score),
                     p->spam_by != NULL ? p->spam_by : "-");
    } else if (av_failed || spam_failed) {
        out->rule = av_failed ? "clamd.on_failure" : "spamd.on_failure";
    }

    if (out->action == SCAN_ACCEPT || out->action == SCAN_QUARANTINE) {
        char v[1600];
        if (too_large) {
            buf_printf(&notscanned, "%s: message of %llu bytes over max_size %llu",
                       p->av && p->spam ? "clamd, spamd" : p->av ? "clamd" : "spamd", (unsigned long long)size,
                       (unsigned long long)p->max_size);
        }
        if (!too_large && p->av && (av->status == SCAN_TOO_LARGE || av->status == SCAN_FAILED))
            buf_printf(&notscanned, "clamd: %s", av->status == SCAN_FAILED ? scan_brief(av) : av->error);
        if (spam_failed || (!too_large && p->spam && spam->status == SCAN_TOO_LARGE))
            buf_printf(&notscanned, "%sspamd: %s", notscanned.len > 0 ? "; " : "",
                       spam_failed ? scan_brief(spam) : spam->error);
        if (!too_large && p->av && (av->status == SCAN_CLEAN || av->status == SCAN_FOUND)) {
            snprintf(v, sizeof v, "clamd at %s", cfg->host != NULL ? cfg->host : "localhost");
            scan_add_header(out, "X-Virus-Scanned", v);
            if (av->status == SCAN_CLEAN)
                scan_add_header(out, "X-Virus-Status", "Clean");
            else {
                snprintf(v, sizeof v, "Infected (%s)", av->name);
                scan_add_header(out, "X-Virus-Status", v);
            }
        }
        if (spam_ok) {
            if (is_spam)
                scan_add_header(out, "X-Spam-Flag", "YES");
            snprintf(v, sizeof v, "%.1f", scan_score(spam->score));
            scan_add_header(out, "X-Spam-Score", v);
            struct buf st;
            buf_init(&st);
            buf_printf(&st, "%s, score=%.1f required=%.1f tests=", is_spam ? "Yes" : "No", scan_score(spam->score),
                       p->threshold);
            scan_fold_list(&st, spam->symbols[0] ? spam->symbols : "none", strlen("X-Spam-Status: ") + st.len);
            scan_add_header(out, "X-Spam-Status", st.data);
            buf_free(&st);
        }
        if (notscanned.len > 0)
            scan_add_header(out, "X-Postern-Not-Scanned", notscanned.data);
    }
    snprintf(out->summary, sizeof out->summary, "%s", sum.data);
    buf_free(&sum);
    buf_free(&notscanned);
}
