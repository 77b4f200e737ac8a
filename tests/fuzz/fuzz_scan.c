/* fuzz_scan.c: libFuzzer target of the scanners' answers and what the
 * milter makes of them: milter/scanner_parse.c (clamd's answer to
 * INSTREAM, spamd's to SYMBOLS: what a scanner, or anything listening on
 * its socket, sends back) and milter/scan.c (the decision, the headers,
 * the audit summary).  The whole input is read as a clamd answer and as a
 * spamd answer; the two results go through scan_decide() under a plan
 * whose threshold and actions come from the input's first bytes.  Besides
 * the sanitizers it checks what the code promises and aborts when not: a
 * status in range; the name, error and symbols NUL-terminated within
 * their buffers and printable ASCII; a finite score and threshold for an
 * answer spamd gave; a clamd virus with a name; an action in range, a
 * 3-digit reply with its enhanced code for a reply; header values of
 * printable ASCII with "\n\t" folds only, and the summary printable.
 * Built and run by tests/fuzz/run.sh (FUZZ_TARGET=scan). */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"
#include "scanner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok)
{
    if (!ok)
        abort();
}

/* NUL-terminated within size, printable ASCII before it. */
static void fuzz_printable(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    fuzz_check(n < size);
    for (size_t i = 0; i < n; i++)
        fuzz_check(s[i] >= 0x20 && s[i] < 0x7f);
}

/* A header value: printable ASCII, every '\n' followed by '\t'. */
static void fuzz_header_value(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    fuzz_check(n < size);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            fuzz_check(i + 1 < n && s[i + 1] == '\t');
            continue;
        }
        fuzz_check((s[i] >= 0x20 && s[i] < 0x7f) || (s[i] == '\t' && i > 0 && s[i - 1] == '\n'));
    }
}

static void fuzz_result(const struct scan_result *r, bool spamd)
{
    fuzz_check(r->status == SCAN_CLEAN || r->status == SCAN_FOUND || r->status == SCAN_TOO_LARGE ||
               r->status == SCAN_FAILED);
    fuzz_printable(r->name, sizeof r->name);
    fuzz_printable(r->error, sizeof r->error);
    fuzz_printable(r->symbols, sizeof r->symbols);
    if (r->status == SCAN_FAILED)
        fuzz_check(r->error[0] != '\0');
    if (spamd && (r->status == SCAN_CLEAN || r->status == SCAN_FOUND))
        fuzz_check(isfinite(r->score) && isfinite(r->required));
    if (!spamd && r->status == SCAN_FOUND)
        fuzz_check(r->name[0] != '\0');
    if (spamd)
        fuzz_check(r->status != SCAN_TOO_LARGE); /* spamd has no such answer */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scan_result av, spam;
    memset(&av, 0, sizeof av);
    memset(&spam, 0, sizeof spam);
    scanner_clamd_parse((const char *)data, size, &av);
    scanner_spamd_parse((const char *)data, size, &spam);
    fuzz_result(&av, false);
    fuzz_result(&spam, true);

    /* the decision under a plan drawn from the first bytes */
    uint8_t b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
    struct scan_plan p;
    memset(&p, 0, sizeof p);
    p.av = b0 & 1;
    p.spam = (b0 & 2) != 0;
    p.antivirus = (enum av_action)((b0 >> 2) % 3);          /* reject, tempfail, quarantine */
    p.spam_action = (enum spam_action)((b0 >> 4) % 3);      /* header, quarantine, reject */
    p.threshold = (double)(b1 % 40) - 10.0;
    p.reject_above_set = (b0 & 0x40) != 0;
    p.reject_above = p.threshold + (double)(b1 >> 4);
    p.max_size = 10u << 20;
    p.av_by = p.spam_by = p.user = "acme";
    struct scan_cfg cfg = { true, true, (b0 & 0x80) != 0, (b1 & 1) != 0, "mx.example" };
    struct scan_outcome out;
    scan_decide(&p, &cfg, size, (b1 & 0x80) != 0 && (b1 & 0x40) != 0, &av, &spam, &out);
    fuzz_check(out.action == SCAN_ACCEPT || out.action == SCAN_REJECT || out.action == SCAN_TEMPFAIL ||
               out.action == SCAN_QUARANTINE);
    if (out.action == SCAN_REJECT || out.action == SCAN_TEMPFAIL) {
        fuzz_check(strlen(out.rcode) == 3 && out.rcode[0] == (out.action == SCAN_REJECT ? '5' : '4'));
        fuzz_check(out.xcode[0] == out.rcode[0] && out.xcode[1] == '.');
        fuzz_check(out.n_headers == 0);
    }
    fuzz_printable(out.text, sizeof out.text);
    fuzz_printable(out.summary, sizeof out.summary);
    fuzz_check(out.rule != NULL);
    fuzz_check(out.n_headers <= SCAN_MAX_HEADERS);
    for (size_t i = 0; i < out.n_headers; i++) {
        fuzz_check(scan_header_ours(out.headers[i].name));
        fuzz_header_value(out.headers[i].value, sizeof out.headers[i].value);
    }
    return 0;
}
