/* grammar.c: value grammars of rule and config files (grammar.h). */
#include "grammar.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Printable rendering of what was found, for error texts. */
static const char *gram_found(const char *s, char *out, size_t size)
{
    size_t o = 0, i = 0;
    if (*s == '\0') {
        snprintf(out, size, "an empty value");
        return out;
    }
    out[o++] = '"';
    /* room for one more escape, then "...", the quote and the NUL */
    for (; s[i] && i < 40 && o + 10 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (s[i] && o + 5 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

__attribute__((format(printf, 4, 5)))
static bool gram_fail(char *err, size_t errsize, const char *s, const char *expected, ...)
{
    char what[GRAM_ERR_MAX], found[64];
    va_list ap;
    va_start(ap, expected);
    vsnprintf(what, sizeof what, expected, ap);
    va_end(ap);
    snprintf(err, errsize, "expected %s, found %s", what, gram_found(s, found, sizeof found));
    return false;
}

/* Digits only; false on overflow past max. Sets *end past the digits. */
static bool gram_digits(const char *s, const char **end, uint64_t max, uint64_t *out, bool *overflow)
{
    uint64_t v = 0;
    const char *p = s;
    *overflow = false;
    if (!isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d > max || v > (max - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
    }
    *end = p;
    *out = v;
    return !*overflow;
}

bool gram_uint(const char *s, uint64_t max, uint64_t *out, char *err, size_t errsize)
{
    const char *end;
    bool ovf;
    if (!gram_digits(s, &end, max, out, &ovf) || *end != '\0') {
        if (ovf)
            return gram_fail(err, errsize, s, "a whole number at most %llu", (unsigned long long)max);
        return gram_fail(err, errsize, s, "a whole number");
    }
    return true;
}

static bool gram_size_prefix(const char *s, const char **end, uint64_t *out, bool *ovf)
{
    uint64_t v, mul = 1;
    const char *p;
    if (!gram_digits(s, &p, UINT64_MAX, &v, ovf))
        return false;
    switch (*p) {
    case 'k': case 'K': mul = 1ull << 10; p++; break;
    case 'm': case 'M': mul = 1ull << 20; p++; break;
    case 'g': case 'G': mul = 1ull << 30; p++; break;
    case 't': case 'T': mul = 1ull << 40; p++; break;
    default: break;
    }
    if (v > UINT64_MAX / mul) {
        *ovf = true;
        return false;
    }
    *out = v * mul;
    *end = p;
    return true;
}

bool gram_size(const char *s, uint64_t *out, char *err, size_t errsize)
{
    const char *end;
    bool ovf = false;
    if (!gram_size_prefix(s, &end, out, &ovf) || *end != '\0') {
        if (ovf)
            return gram_fail(err, errsize, s, "a size below 16E (overflow)");
        return gram_fail(err, errsize, s, "a size like 25M (bytes, or a unit K, M, G, T)");
    }
    return true;
}

bool gram_duration(const char *s, uint64_t *ms, char *err, size_t errsize)
{
    static const struct { const char *u; uint64_t ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    const char *p = s;
    uint64_t total = 0;
    if (*p == '\0')
        return gram_fail(err, errsize, s, "a duration like 20s (units ms, s, m, h, d)");
    while (*p) {
        uint64_t v;
        bool ovf;
        const char *q;
        if (!gram_digits(p, &q, UINT64_MAX, &v, &ovf)) {
            if (ovf)
                return gram_fail(err, errsize, s, "a duration that fits (overflow)");
            return gram_fail(err, errsize, s, "a duration like 20s (units ms, s, m, h, d)");
        }
        size_t best = 0, bi = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].u);
            if (strncmp(q, units[i].u, l) == 0 && l > best) {
                best = l;
                bi = i;
            }
        }
        if (best == 0)
            return gram_fail(err, errsize, s, "a duration like 20s (units ms, s, m, h, d)");
        if (v > (UINT64_MAX - total) / units[bi].ms)
            return gram_fail(err, errsize, s, "a duration that fits (overflow)");
        total += v * units[bi].ms;
        p = q + best;
    }
    *ms = total;
    return true;
}

bool gram_quota(const char *s, bool bytes, struct quota *out, char *err, size_t errsize)
{
    const char *expected = bytes ? "a byte quota like 10G/day (per minute, hour, day, week, month) or unlimited"
                                 : "a quota like 500/day (per minute, hour, day, week, month) or unlimited";
    memset(out, 0, sizeof *out);
    if (strcmp(s, "unlimited") == 0) {
        out->set = out->unlimited = true;
        return true;
    }
    const char *slash = strchr(s, '/');
    if (slash == NULL)
        return gram_fail(err, errsize, s, "%s", expected);
    char num[32];
    size_t nl = (size_t)(slash - s);
    if (nl == 0 || nl >= sizeof num)
        return gram_fail(err, errsize, s, "%s", expected);
    memcpy(num, s, nl);
    num[nl] = '\0';
    const char *end;
    bool ovf = false, ok;
    if (bytes)
        ok = gram_size_prefix(num, &end, &out->count, &ovf);
    else
        ok = gram_digits(num, &end, UINT64_MAX, &out->count, &ovf);
    if (!ok || *end != '\0') {
        if (ovf)
            return gram_fail(err, errsize, s, "a quota whose count fits in 64 bits (overflow)");
        return gram_fail(err, errsize, s, "%s", expected);
    }
    enum window_unit unit;
    if (!window_unit_parse(slash + 1, strlen(slash + 1), &unit))
        return gram_fail(err, errsize, s, "%s", expected);
    out->unit = (uint8_t)unit;
    out->set = true;
    return true;
}

bool gram_pace_rate(const char *s, struct pace_rate *out, char *err, size_t errsize)
{
    static const struct { const char *u; uint64_t p; } units[] = {
        { "second", 1 }, { "minute", 60 }, { "hour", 3600 }, { "day", 86400 },
    };
    const char *slash = strchr(s, '/'), *end;
    bool ovf;
    uint64_t v;
    char num[32];
    size_t nl = slash ? (size_t)(slash - s) : 0;
    if (slash == NULL || nl == 0 || nl >= sizeof num)
        return gram_fail(err, errsize, s, "a rate like 600/hour (per second, minute, hour, day)");
    memcpy(num, s, nl);
    num[nl] = '\0';
    if (!gram_digits(num, &end, 1000000000ull, &v, &ovf) || *end != '\0') {
        if (ovf)
            return gram_fail(err, errsize, s, "a rate of at most 1000000000 per unit");
        return gram_fail(err, errsize, s, "a rate like 600/hour (per second, minute, hour, day)");
    }
    if (v == 0)
        return gram_fail(err, errsize, s, "a rate of at least 1 per unit");
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(slash + 1, units[i].u) == 0) {
            out->count = v;
            out->period_s = units[i].p;
            out->unit = units[i].u;
            return true;
        }
    return gram_fail(err, errsize, s, "a rate like 600/hour (per second, minute, hour, day)");
}

static bool gram_label_char(char c)
{
    return isalnum((unsigned char)c) || c == '-';
}

/* Domain syntax shared by gram_domain and gram_hostname. */
static bool gram_dns_name(const char *s, bool need_dot, char *out, size_t outsize,
                          const char *what, char *err, size_t errsize)
{
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '.')
        len--; /* a trailing root dot is allowed and dropped */
    if (len == 0 || len > GRAM_DOMAIN_MAX || len + 1 > outsize)
        return gram_fail(err, errsize, s, "%s of 1 to 253 characters", what);
    size_t label = 0, labels = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return gram_fail(err, errsize, s, "%s (empty label or a label ending in '-')", what);
            label = 0;
            labels++;
            out[i] = '.';
            continue;
        }
        if (!gram_label_char(c)) {
            if ((unsigned char)c >= 0x80)
                return gram_fail(err, errsize, s, "%s in ASCII (write IDNs as xn-- A-labels)", what);
            return gram_fail(err, errsize, s, "%s (letters, digits, '-' and '.')", what);
        }
        if (label == 0 && c == '-')
            return gram_fail(err, errsize, s, "%s (a label may not start with '-')", what);
        if (++label > 63)
            return gram_fail(err, errsize, s, "%s (a label is at most 63 characters)", what);
        out[i] = (char)tolower((unsigned char)c);
    }
    if (s[len - 1] == '-')
        return gram_fail(err, errsize, s, "%s (a label may not end with '-')", what);
    if (label == 0) /* "example.com..": an empty last label */
        return gram_fail(err, errsize, s, "%s (empty label or a label ending in '-')", what);
    if (need_dot && labels < 2)
        return gram_fail(err, errsize, s, "%s with at least two labels", what);
    size_t last = len;
    while (last > 0 && s[last - 1] != '.')
        last--;
    bool numeric = true;
    for (size_t i = last; i < len; i++)
        numeric &= isdigit((unsigned char)s[i]) != 0;
    if (need_dot && numeric) /* top-level domains are never all-numeric: an IP */
        return gram_fail(err, errsize, s, "%s, not an IP address", what);
    out[len] = '\0';
    return true;
}

bool gram_domain(const char *s, char *out, size_t outsize, char *err, size_t errsize)
{
    return gram_dns_name(s, true, out, outsize, "a domain like example.com", err, errsize);
}

bool gram_hostname(const char *s, char *out, size_t outsize, char *err, size_t errsize)
{
    return gram_dns_name(s, false, out, outsize, "a host name like mx1.example.com", err, errsize);
}

static bool gram_atext(char c)
{
    return isalnum((unsigned char)c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

bool gram_address(const char *s, char *out, size_t outsize, char *err, size_t errsize)
{
    const char *at = strrchr(s, '@');
    const char *expected = "an address like user@example.com";
    if (at == NULL || at == s || strlen(s) > GRAM_ADDRESS_MAX || strlen(s) + 1 > outsize)
        return gram_fail(err, errsize, s, "%s", expected);
    size_t ll = (size_t)(at - s);
    if (ll > 64)
        return gram_fail(err, errsize, s, "%s (local part at most 64 characters)", expected);
    for (size_t i = 0; i < ll; i++) {
        char c = s[i];
        if (c == '.') {
            if (i == 0 || i == ll - 1 || s[i - 1] == '.')
                return gram_fail(err, errsize, s, "%s (misplaced '.' in the local part)", expected);
        } else if (!gram_atext(c)) {
            return gram_fail(err, errsize, s, "%s (unquoted local part)", expected);
        }
    }
    char dom[GRAM_DOMAIN_MAX + 1], derr[GRAM_ERR_MAX];
    if (!gram_domain(at + 1, dom, sizeof dom, derr, sizeof derr))
        return gram_fail(err, errsize, s, "%s (%s)", expected, derr);
    for (size_t i = 0; i <= ll; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    strcpy(out + ll + 1, dom);
    return true;
}

bool gram_login(const char *s, char *out, size_t outsize, char *err, size_t errsize)
{
    if (strchr(s, '@') != NULL)
        return gram_address(s, out, outsize, err, errsize);
    size_t n = strlen(s);
    if (n == 0 || n > 128 || n + 1 > outsize)
        return gram_fail(err, errsize, s, "a login: an address or a name of 1 to 128 characters");
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("._+-", s[i]) == NULL)
            return gram_fail(err, errsize, s, "a login: an address or a name of letters, digits, '.', '_', '+', '-'");
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return true;
}

bool gram_name(const char *s, const char *what, char *err, size_t errsize)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
        return gram_fail(err, errsize, s, "%s: a letter or digit, then letters, digits, '.', '_', '-' (at most 64)", what);
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("._-", s[i]) == NULL)
            return gram_fail(err, errsize, s, "%s: a letter or digit, then letters, digits, '.', '_', '-' (at most 64)", what);
    return true;
}

bool gram_bool(const char *s, bool *out, char *err, size_t errsize)
{
    if (strcmp(s, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(s, "false") == 0) {
        *out = false;
        return true;
    }
    return gram_fail(err, errsize, s, "true or false");
}

bool gram_number(const char *s, double min, double max, double *out, char *err, size_t errsize)
{
    char *end;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    /* strtod also reads hexadecimal ("0x10"): not a decimal number */
    if (!isdigit((unsigned char)*p) || strpbrk(p, "xX") != NULL)
        return gram_fail(err, errsize, s, "a number from %g to %g", min, max);
    double v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v) || v < min || v > max)
        return gram_fail(err, errsize, s, "a number from %g to %g", min, max);
    *out = v;
    return true;
}

bool gram_enum(const char *s, const char *const *words, int *out, char *err, size_t errsize)
{
    char list[160];
    size_t o = 0;
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0) {
            *out = i;
            return true;
        }
    list[0] = '\0';
    for (int i = 0; words[i] && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i == 0 ? "" : (words[i + 1] ? ", " : " or "), words[i]);
    return gram_fail(err, errsize, s, "%s", list);
}
