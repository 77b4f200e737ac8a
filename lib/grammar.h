/* grammar.h: the small value grammars of rule and config files: counts,
 * sizes (25M), durations (20s), quotas (500/day, 10G/day, unlimited), pace
 * rates (600/hour), domains, addresses, logins, names and scores.  Each
 * parser is pure: it reads a NUL-terminated string and either fills *out
 * or writes "expected ..., found ..." to err and returns false. */
#ifndef POSTERN_GRAMMAR_H
#define POSTERN_GRAMMAR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptime.h"

#define GRAM_ERR_MAX 256
#define GRAM_DOMAIN_MAX 253
#define GRAM_ADDRESS_MAX 254

/* A windowed quota: count per calendar window, or unlimited. */
struct quota {
    uint64_t count;
    bool set;                 /* false: not configured (inherit / none) */
    bool unlimited;           /* "unlimited": explicitly no cap */
    uint8_t unit;             /* enum window_unit; 16 bytes a quota: an account holds 15 */
};

/* A pacing rate: count per period (seconds). */
struct pace_rate {
    uint64_t count;
    uint64_t period_s;        /* 1, 60, 3600 or 86400 */
    const char *unit;         /* "second", "minute", "hour", "day" */
};

/* Decimal integer 0..max, no sign, no leading '+', no spaces. */
bool gram_uint(const char *s, uint64_t max, uint64_t *out, char *err, size_t errsize);
/* Size: digits with an optional binary unit K, M, G or T (1K = 1024). */
bool gram_size(const char *s, uint64_t *out, char *err, size_t errsize);
/* Duration: one or more <number><unit>, unit ms, s, m, h or d ("1m30s");
 * result in milliseconds. */
bool gram_duration(const char *s, uint64_t *ms, char *err, size_t errsize);
/* Quota "N/unit" (unit minute, hour, day, week, month) or "unlimited";
 * with bytes, N is a size ("10G/day"). */
bool gram_quota(const char *s, bool bytes, struct quota *out, char *err, size_t errsize);
/* Pace rate "N/unit", N >= 1, unit second, minute, hour or day. */
bool gram_pace_rate(const char *s, struct pace_rate *out, char *err, size_t errsize);
/* A DNS domain in A-label form; written lowercased to out (>= 254 bytes). */
bool gram_domain(const char *s, char *out, size_t outsize, char *err, size_t errsize);
/* local@domain, dot-atom local part; lowercased (postern compares
 * addresses and logins case-insensitively). */
bool gram_address(const char *s, char *out, size_t outsize, char *err, size_t errsize);
/* A SASL login: an address, or a bare name of [A-Za-z0-9._+-]; lowercased. */
bool gram_login(const char *s, char *out, size_t outsize, char *err, size_t errsize);
/* A name: tenant names and Postfix transport (master.cf service) names:
 * a letter or digit, then letters, digits, '.', '_', '-'; at most 64. */
bool gram_name(const char *s, const char *what, char *err, size_t errsize);
/* A hostname for HELO: a domain (single labels allowed). */
bool gram_hostname(const char *s, char *out, size_t outsize, char *err, size_t errsize);
/* true|false. */
bool gram_bool(const char *s, bool *out, char *err, size_t errsize);
/* A decimal number in [min, max] (spam scores). */
bool gram_number(const char *s, double min, double max, double *out, char *err, size_t errsize);
/* One of a NULL-terminated list of words; *out is its index. */
bool gram_enum(const char *s, const char *const *words, int *out, char *err, size_t errsize);

#endif
