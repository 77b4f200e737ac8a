/* bounce.c: classification of failed deliveries by an ordered rule table
 * (bounce.h explains the order); the table is data, printed as is for the
 * man page. */
#include "bounce.h"

#include <string.h>

#define RULE_CODE(c, k) { c, NULL, k }
#define RULE_TEXT(t, k) { NULL, t, k }
#define RULE_BOTH(c, t, k) { c, t, k }

static const struct bounce_rule bounce_rules[] = {
    /* 1. specific codes decide */
    RULE_CODE("?.1.1", BOUNCE_UNKNOWN_USER),     /* bad destination mailbox address */
    RULE_CODE("?.1.10", BOUNCE_UNKNOWN_USER),    /* recipient not found (Outlook) */
    RULE_CODE("5.2.1", BOUNCE_UNKNOWN_USER),     /* mailbox disabled */
    RULE_CODE("?.2.2", BOUNCE_MAILBOX_FULL),     /* mailbox full */
    RULE_CODE("?.3.4", BOUNCE_TOO_BIG),          /* message too big for system */
    RULE_CODE("?.2.3", BOUNCE_TOO_BIG),          /* message length exceeds limit */
    RULE_CODE("?.1.2", BOUNCE_DNS_OR_ROUTE),     /* bad destination system address */
    RULE_CODE("?.7.4", BOUNCE_TLS),              /* security features not supported */
    RULE_CODE("?.7.5", BOUNCE_TLS),              /* cryptographic failure */
    RULE_BOTH("5.4.1", "recipient address rejected", BOUNCE_UNKNOWN_USER), /* Outlook */
    /* 2. clearly TLS, whatever the code */
    RULE_TEXT("starttls", BOUNCE_TLS),
    RULE_TEXT("tls is required", BOUNCE_TLS),
    RULE_TEXT("tls required", BOUNCE_TLS),
    RULE_TEXT("requires tls", BOUNCE_TLS),
    RULE_TEXT("cannot start tls", BOUNCE_TLS),
    RULE_TEXT("tls handshake", BOUNCE_TLS),
    RULE_TEXT("certificate verification failed", BOUNCE_TLS),
    RULE_TEXT("server certificate not", BOUNCE_TLS),
    /* 3. classes of codes */
    RULE_CODE("?.7.x", BOUNCE_POLICY),
    RULE_CODE("?.4.x", BOUNCE_DNS_OR_ROUTE),
    /* 4. the text, for the other codes */
    RULE_TEXT("message size exceeds", BOUNCE_TOO_BIG),
    RULE_TEXT("message length exceeds", BOUNCE_TOO_BIG),
    RULE_TEXT("message too big", BOUNCE_TOO_BIG),
    RULE_TEXT("message too large", BOUNCE_TOO_BIG),
    RULE_TEXT("message is too large", BOUNCE_TOO_BIG),
    RULE_TEXT("exceeds size limit", BOUNCE_TOO_BIG),
    RULE_TEXT("exceeds the maximum size", BOUNCE_TOO_BIG),
    RULE_TEXT("size limit exceeded", BOUNCE_TOO_BIG),
    RULE_TEXT("over quota", BOUNCE_MAILBOX_FULL),
    RULE_TEXT("overquota", BOUNCE_MAILBOX_FULL),
    RULE_TEXT("quota exceeded", BOUNCE_MAILBOX_FULL),
    RULE_TEXT("exceeded its quota", BOUNCE_MAILBOX_FULL),
    RULE_TEXT("mailbox full", BOUNCE_MAILBOX_FULL),
    RULE_TEXT("mailbox is full", BOUNCE_MAILBOX_FULL),
    RULE_TEXT("out of storage", BOUNCE_MAILBOX_FULL),
    RULE_TEXT("user unknown", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("unknown user", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("recipient unknown", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("unknown recipient", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("no such user", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("no such mailbox", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("no such recipient", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("no mailbox", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("mailbox unavailable", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("mailbox not found", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("mailbox does not exist", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("user does not exist", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("address does not exist", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("account does not exist", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("recipient not found", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("user not found", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("invalid recipient", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("account disabled", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("account has been disabled", BOUNCE_UNKNOWN_USER),
    RULE_TEXT("spam", BOUNCE_POLICY),
    RULE_TEXT("unsolicited", BOUNCE_POLICY),
    RULE_TEXT("blocked", BOUNCE_POLICY),
    RULE_TEXT("blacklist", BOUNCE_POLICY),
    RULE_TEXT("black list", BOUNCE_POLICY),
    RULE_TEXT("blocklist", BOUNCE_POLICY),
    RULE_TEXT("block list", BOUNCE_POLICY),
    RULE_TEXT("denylist", BOUNCE_POLICY),
    RULE_TEXT("listed", BOUNCE_POLICY),
    RULE_TEXT("rbl", BOUNCE_POLICY),
    RULE_TEXT("barracuda", BOUNCE_POLICY),
    RULE_TEXT("reputation", BOUNCE_POLICY),
    RULE_TEXT("policy", BOUNCE_POLICY),
    RULE_TEXT("access denied", BOUNCE_POLICY),
    RULE_TEXT("host or domain name not found", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("name service error", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("host not found", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("domain not found", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("no mx", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("no route to host", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("network is unreachable", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("connection refused", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("timed out", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("lost connection", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("unable to route", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("unrouteable", BOUNCE_DNS_OR_ROUTE),
    RULE_TEXT("loops back to myself", BOUNCE_DNS_OR_ROUTE),
};

#define BOUNCE_NRULES (sizeof bounce_rules / sizeof bounce_rules[0])

static const char *const bounce_names[BOUNCE_NCLASSES] = {
    "none", "unknown_user", "mailbox_full", "too_big", "policy", "dns_or_route", "tls", "other",
};

static const char *const bounce_labels[BOUNCE_NCLASSES] = {
    "not a failure", "unknown user", "mailbox full", "message too big",
    "blocked as spam or by policy", "DNS or no route", "TLS", "other",
};

/* A parsed enhanced status code: class, subject, detail; class 0: none. */
struct bounce_code {
    int v[3];
};

/* "[245].N.N" with 1 to 3 digits per number. */
static struct bounce_code bounce_code_parse(const char *s, size_t n)
{
    struct bounce_code c = { { 0, 0, 0 } };
    if (s == NULL || n == 0 || (*s != '2' && *s != '4' && *s != '5'))
        return c;
    const char *p = s, *e = s + n;
    int v[3] = { *p++ - '0', 0, 0 };
    for (int i = 1; i < 3; i++) {
        if (p == e || *p++ != '.')
            return c;
        int digits = 0;
        for (; p < e && *p >= '0' && *p <= '9'; p++, digits++)
            v[i] = v[i] * 10 + (*p - '0');
        if (digits < 1 || digits > 3)
            return c;
    }
    if (p != e)
        return c;
    memcpy(c.v, v, sizeof v);
    return c;
}

/* Whether the pattern ("?.7.x", "5.2.1") matches the code. */
static bool bounce_code_match(const char *pat, const struct bounce_code *c)
{
    if (c->v[0] == 0)
        return false;
    for (int i = 0; i < 3; i++) {
        if (*pat == '?') {
            if (c->v[i] != 4 && c->v[i] != 5)
                return false;
            pat++;
        } else if (*pat == 'x') {
            pat++;
        } else {
            int want = 0;
            for (; *pat >= '0' && *pat <= '9'; pat++)
                want = want * 10 + (*pat - '0');
            if (want != c->v[i])
                return false;
        }
        if (*pat == '.')
            pat++;
    }
    return true;
}

static char bounce_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Whether needle (lower case) occurs in hay[0..n), ignoring case. */
static bool bounce_contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (hay == NULL || m > n)
        return false;
    for (size_t i = 0; i + m <= n; i++) {
        if (bounce_lower(hay[i]) != needle[0])
            continue;
        size_t j = 1;
        while (j < m && bounce_lower(hay[i + j]) == needle[j])
            j++;
        if (j == m)
            return true;
    }
    return false;
}

static bool bounce_word_is(const char *s, size_t n, const char *word)
{
    return s != NULL && n == strlen(word) && memcmp(s, word, n) == 0;
}

enum bounce_class bounce_classify(const char *dsn, size_t dsn_len, const char *status,
                                  size_t status_len, const char *reply, size_t reply_len,
                                  size_t *rule)
{
    struct bounce_code code = bounce_code_parse(dsn, dsn_len);
    if (rule != NULL)
        *rule = BOUNCE_NRULES;
    if (bounce_word_is(status, status_len, "sent") ||
        bounce_word_is(status, status_len, "deliverable") || code.v[0] == 2)
        return BOUNCE_NONE;
    for (size_t i = 0; i < BOUNCE_NRULES; i++) {
        const struct bounce_rule *r = &bounce_rules[i];
        if (r->code != NULL && !bounce_code_match(r->code, &code))
            continue;
        if (r->text != NULL && !bounce_contains(reply, reply_len, r->text))
            continue;
        if (rule != NULL)
            *rule = i;
        return r->cls;
    }
    return BOUNCE_OTHER;
}

size_t bounce_rule_count(void)
{
    return BOUNCE_NRULES;
}

const struct bounce_rule *bounce_rule_get(size_t i)
{
    return i < BOUNCE_NRULES ? &bounce_rules[i] : NULL;
}

void bounce_table_print(FILE *f)
{
    fprintf(f, "# first match wins; CODE: the enhanced status code (dsn=), '?' is 4 or 5,\n"
               "# 'x' any number, '*' any code; TEXT: a case-insensitive substring of the\n"
               "# reply, '*' any text; both must match; no match: other\n");
    fprintf(f, "%-3s %-7s %-34s %s\n", "N", "CODE", "TEXT", "CLASS");
    for (size_t i = 0; i < BOUNCE_NRULES; i++) {
        const struct bounce_rule *r = &bounce_rules[i];
        char text[64];
        if (r->text != NULL)
            snprintf(text, sizeof text, "\"%s\"", r->text);
        else
            snprintf(text, sizeof text, "*");
        fprintf(f, "%-3zu %-7s %-34s %s\n", i + 1, r->code != NULL ? r->code : "*", text,
                bounce_names[r->cls]);
    }
}

const char *bounce_class_name(enum bounce_class c)
{
    return (size_t)c < BOUNCE_NCLASSES ? bounce_names[c] : "?";
}

const char *bounce_class_label(enum bounce_class c)
{
    return (size_t)c < BOUNCE_NCLASSES ? bounce_labels[c] : "?";
}

bool bounce_class_parse(const char *name, enum bounce_class *out)
{
    for (int i = 0; i < BOUNCE_NCLASSES; i++) {
        if (strcmp(name, bounce_names[i]) == 0) {
            *out = (enum bounce_class)i;
            return true;
        }
    }
    return false;
}
