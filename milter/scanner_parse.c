/* scanner_parse.c: the scanners' answers read (scanner.h): clamd's to
 * INSTREAM, spamd's to SYMBOLS, and the printable copies of what a scanner
 * said.  Pure code, apart from the clients in scanner.c so that the unit
 * tests and the fuzz target (tests/fuzz/fuzz_scan.c) take it alone. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scanner.h"

/* Copy at most len bytes of s into out (size), non-printable bytes as '?'. */
void scanner_printable(char *out, size_t size, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size; i++)
        out[o++] = isprint((unsigned char)s[i]) ? s[i] : '?';
    out[o] = '\0';
}

void scanner_garbage(struct scan_result *r, const char *who, const char *a, size_t len)
{
    char shown[120];
    scanner_printable(shown, sizeof shown, a, len > 100 ? 100 : len);
    r->status = SCAN_FAILED;
    r->failure = SCAN_FAIL_ANSWER;
    snprintf(r->error, sizeof r->error, "%s answered %s\"%s\"%s", who, len == 0 ? "nothing " : "", shown,
             len > 100 ? "..." : "");
    if (len == 0)
        snprintf(r->error, sizeof r->error, "%s answered nothing", who);
}

void scanner_clamd_parse(const char *answer, size_t len, struct scan_result *r)
{
    while (len > 0 && (answer[len - 1] == '\0' || answer[len - 1] == '\n' || answer[len - 1] == '\r'))
        len--;
    const char *a = answer;
    size_t n = len, i = 0;
    while (i < n && isdigit((unsigned char)a[i]))
        i++;
    if (i > 0 && i + 1 < n && a[i] == ':' && a[i + 1] == ' ') { /* a session's "N: " */
        a += i + 2;
        n -= i + 2;
    }
    r->name[0] = '\0';
    if (memchr(a, '\0', n) != NULL) {
        scanner_garbage(r, "clamd", answer, len);
    } else if (n == 10 && memcmp(a, "stream: OK", 10) == 0) {
        r->status = SCAN_CLEAN;
    } else if (n > 14 && memcmp(a, "stream: ", 8) == 0 && memcmp(a + n - 6, " FOUND", 6) == 0) {
        r->status = SCAN_FOUND;
        scanner_printable(r->name, sizeof r->name, a + 8, n - 14);
    } else if (n >= 19 && memmem(a, n, "size limit exceeded", 19) != NULL) {
        r->status = SCAN_TOO_LARGE;
        snprintf(r->error, sizeof r->error, "over clamd's StreamMaxLength");
    } else {
        scanner_garbage(r, "clamd", answer, len);
    }
}

/* The symbols: printable, truncated at a comma when too long. */
static void scanner_symbols(char *out, size_t size, const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= size) {
        size_t cut = size - 1;
        while (cut > 0 && s[cut] != ',')
            cut--;
        len = cut;
    }
    scanner_printable(out, size, s, len);
}

void scanner_spamd_parse(const char *answer, size_t len, struct scan_result *r)
{
    const char *end = answer + len, *eol = memchr(answer, '\n', len);
    r->symbols[0] = '\0';
    if (memchr(answer, '\0', len) != NULL || eol == NULL || len < 7 || memcmp(answer, "SPAMD/", 6) != 0) {
        scanner_garbage(r, "spamd", answer, len);
        return;
    }
    /* status line: SPAMD/1.1 0 EX_OK */
    const char *sp = memchr(answer, ' ', (size_t)(eol - answer));
    if (sp == NULL || sp + 2 > eol || sp[1] != '0' || (sp[2] != ' ' && sp[2] != '\r' && sp[2] != '\n')) {
        scanner_garbage(r, "spamd", answer, (size_t)(eol - answer));
        return;
    }
    bool found = false, spam = false;
    const char *p = eol + 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = (size_t)((nl != NULL ? nl : end) - p);
        if (l > 0 && p[l - 1] == '\r')
            l--;
        if (l == 0) { /* the empty line: the symbols follow */
            p = nl != NULL ? nl + 1 : end;
            break;
        }
        if (l > 5 && strncasecmp(p, "Spam:", 5) == 0) {
            char line[128], *q, *e2;
            scanner_printable(line, sizeof line, p + 5, l - 5);
            q = line + strspn(line, " \t");
            if (strncasecmp(q, "True", 4) == 0 || strncasecmp(q, "Yes", 3) == 0)
                spam = true;
            else if (strncasecmp(q, "False", 5) != 0 && strncasecmp(q, "No", 2) != 0)
                break;
            q = strchr(q, ';');
            if (q == NULL)
                break;
            r->score = strtod(q + 1, &e2);
            if (e2 == q + 1)
                break;
            q = e2 + strspn(e2, " \t");
            if (*q != '/')
                break;
            r->required = strtod(q + 1, &e2);
            if (e2 == q + 1 || e2[strspn(e2, " \t")] != '\0')
                break;
            found = isfinite(r->score) && isfinite(r->required); /* "nan", "inf": not a score */
        }
        if (nl == NULL) {
            p = end;
            break;
        }
        p = nl + 1;
    }
    if (!found) {
        r->status = SCAN_FAILED;
        snprintf(r->error, sizeof r->error, "spamd answered without a readable Spam: header");
        return;
    }
    r->status = spam ? SCAN_FOUND : SCAN_CLEAN;
    scanner_symbols(r->symbols, sizeof r->symbols, p, (size_t)(end - p));
}

