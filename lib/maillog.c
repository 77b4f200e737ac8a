/* maillog.c: one line of Postfix's log parsed in one linear pass, no regex,
 * no allocation (maillog.h).  Every read is bounded by the line's end: a
 * step returns ML_TRUNC when the line ends where more was expected and
 * ML_BAD when a byte does not fit. */
#include "maillog.h"

#include <string.h>

enum { ML_OK, ML_TRUNC, ML_BAD };

/* Postfix's programs (the process name after syslog_name's last '/'). */
static const char *const ml_services[] = {
    "smtp", "smtpd", "qmgr", "cleanup", "lmtp", "local", "virtual", "pipe", "error", "retry",
    "bounce", "defer", "trace", "pickup", "postsuper", "postscreen", "dnsblog", "tlsproxy",
    "anvil", "scache", "verify", "discard", "flush", "showq", "spawn", "tlsmgr", "proxymap",
    "proxywrite", "trivial-rewrite", "master", "postfix", "postfix-script", "postdrop",
    "sendmail", "postqueue", "postlog", "postlogd", "postmap", "postalias", "postconf",
    "postmulti", "postcat", "postkick", "postlock", "qmqpd", "oqmgr", "nqmgr", "relay",
    "script", "postfix-instance",
};

static bool ml_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool ml_is_ctl(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

static bool ml_is_alnum(char c)
{
    return ml_is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static struct maillog_str ml_str(const char *p, const char *e)
{
    struct maillog_str s = { p, (size_t)(e - p) };
    return s;
}

static bool ml_eq(const char *p, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n == m && memcmp(p, lit, m) == 0;
}

/* The literal lit at *pp: ML_TRUNC when the line ends inside it. */
static int ml_lit(const char **pp, const char *e, const char *lit)
{
    const char *p = *pp;
    for (; *lit != '\0'; lit++, p++) {
        if (p == e)
            return ML_TRUNC;
        if (*p != *lit)
            return ML_BAD;
    }
    *pp = p;
    return ML_OK;
}

/* Exactly n digits. */
static int ml_fixed(const char **pp, const char *e, int n, int *out)
{
    const char *p = *pp;
    int v = 0;
    for (int i = 0; i < n; i++, p++) {
        if (p == e)
            return ML_TRUNC;
        if (!ml_is_digit(*p))
            return ML_BAD;
        v = v * 10 + (*p - '0');
    }
    *pp = p;
    *out = v;
    return ML_OK;
}

/* One or more digits (at most 19); ML_TRUNC when the line ends in them
 * (the caller expects something after the number). */
static int ml_uint(const char **pp, const char *e, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    int n = 0;
    while (p < e && ml_is_digit(*p)) {
        if (++n > 19)
            return ML_BAD;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == e)
        return ML_TRUNC;
    if (n == 0)
        return ML_BAD;
    *pp = p;
    *out = v;
    return ML_OK;
}

/* ".ddd" (any number of digits, microseconds from the first six). */
static int ml_fraction(const char **pp, const char *e, int32_t *us)
{
    const char *p = *pp + 1;   /* past '.' */
    int32_t v = 0;
    int n = 0;
    while (p < e && ml_is_digit(*p)) {
        if (n < 6)
            v = v * 10 + (*p - '0');
        n++;
        p++;
    }
    if (p == e)
        return ML_TRUNC;
    if (n == 0)
        return ML_BAD;
    for (; n < 6; n++)
        v *= 10;
    *pp = p;
    *us = v;
    return ML_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t ml_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t ml_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The (UTC) year of Unix time t. */
static int64_t ml_year(int64_t t)
{
    int64_t z = ml_floor_div(t, 86400) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

static bool ml_date_ok(int64_t y, int m, int d)
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* The offset east of UTC of local time lt (seconds, read as if UTC). */
static long ml_offset(struct maillog_ctx *ctx, int64_t lt)
{
    if (ctx->tz_fixed)
        return ctx->tz_offset;
    int64_t hour = ml_floor_div(lt, 3600);
    if (hour == ctx->cache_hour)
        return ctx->cache_offset;
    struct tm tm;
    time_t t = (time_t)lt;
    long off = 0;
    if (localtime_r(&t, &tm) != NULL) {
        off = tm.tm_gmtoff;
        t = (time_t)(lt - off);
        if (localtime_r(&t, &tm) != NULL)
            off = tm.tm_gmtoff;
    }
    ctx->cache_hour = hour;
    ctx->cache_offset = off;
    return off;
}

void maillog_ctx_init(struct maillog_ctx *ctx, time_t ref)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->ref = ref;
    ctx->cache_hour = INT64_MIN;
}

static int ml_month(const char *p)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (memcmp(names + 3 * i, p, 3) == 0)
            return i + 1;
    return 0;
}

static int ml_hms(const char **pp, const char *e, int *h, int *mi, int *s)
{
    int r;
    if ((r = ml_fixed(pp, e, 2, h)) != ML_OK || (r = ml_lit(pp, e, ":")) != ML_OK ||
        (r = ml_fixed(pp, e, 2, mi)) != ML_OK || (r = ml_lit(pp, e, ":")) != ML_OK ||
        (r = ml_fixed(pp, e, 2, s)) != ML_OK)
        return r;
    return *h > 23 || *mi > 59 || *s > 60 ? ML_BAD : ML_OK;
}

/* "Nov 28 12:00:01[.ffffff] ", year from ctx->ref. */
static int ml_time_traditional(struct maillog_ctx *ctx, const char **pp, const char *e,
                               struct maillog_rec *rec)
{
    const char *p = *pp;
    if (e - p < 3) {
        for (; p < e; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
                return ML_BAD;
        return ML_TRUNC;
    }
    int mon = ml_month(p), day, h, mi, s, r;
    if (mon == 0)
        return ML_BAD;
    p += 3;
    if ((r = ml_lit(&p, e, " ")) != ML_OK)
        return r;
    if (p < e && *p == ' ')
        p++;
    if (p == e)
        return ML_TRUNC;
    if ((r = ml_fixed(&p, e, 1, &day)) != ML_OK)
        return r;
    if (p == e)
        return ML_TRUNC;
    if (ml_is_digit(*p))
        day = day * 10 + (*p++ - '0');
    if ((r = ml_lit(&p, e, " ")) != ML_OK || (r = ml_hms(&p, e, &h, &mi, &s)) != ML_OK)
        return r;
    if (p < e && *p == '.') {
        if ((r = ml_fraction(&p, e, &rec->time_us)) != ML_OK)
            return r;
        rec->has_us = true;
    }
    if ((r = ml_lit(&p, e, " ")) != ML_OK)
        return r;
    if (day < 1 || day > 31 || (mon == 2 && day > 29) ||
        (day == 31 && (mon == 4 || mon == 6 || mon == 9 || mon == 11)))
        return ML_BAD;
    /* The latest year that puts the stamp no more than a day after ref.
     * UTC offsets lie within [-12 h, +14 h]: the zone is consulted only
     * when the bound is not already decided without it. */
    int64_t ref = (int64_t)ctx->ref, limit = ref + 86400;
    int64_t y0 = ml_year(ref);
    for (int64_t y = y0 + 1; y > y0 - 10; y--) {
        if (!ml_date_ok(y, mon, day))
            continue;
        int64_t lt = ml_days(y, mon, day) * 86400 + h * 3600 + mi * 60 + s;
        if (lt - 14 * 3600 > limit)
            continue;
        int64_t t = lt - ml_offset(ctx, lt);
        if (t <= limit) {
            rec->time = t;
            *pp = p;
            return ML_OK;
        }
    }
    return ML_BAD;
}

/* "2026-11-28T12:00:01[.ffffff](Z|+hh:mm|+hhmm) " */
static int ml_time_rfc3339(const char **pp, const char *e, struct maillog_rec *rec)
{
    const char *p = *pp;
    int y, mon, day, h, mi, s, r;
    if ((r = ml_fixed(&p, e, 4, &y)) != ML_OK || (r = ml_lit(&p, e, "-")) != ML_OK ||
        (r = ml_fixed(&p, e, 2, &mon)) != ML_OK || (r = ml_lit(&p, e, "-")) != ML_OK ||
        (r = ml_fixed(&p, e, 2, &day)) != ML_OK || (r = ml_lit(&p, e, "T")) != ML_OK ||
        (r = ml_hms(&p, e, &h, &mi, &s)) != ML_OK)
        return r;
    if (!ml_date_ok(y, mon, day))
        return ML_BAD;
    if (p < e && *p == '.') {
        if ((r = ml_fraction(&p, e, &rec->time_us)) != ML_OK)
            return r;
        rec->has_us = true;
    }
    if (p == e)
        return ML_TRUNC;
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if ((r = ml_fixed(&p, e, 2, &oh)) != ML_OK)
            return r;
        if (p < e && *p == ':')
            p++;
        if ((r = ml_fixed(&p, e, 2, &om)) != ML_OK)
            return r;
        if (oh > 23 || om > 59)
            return ML_BAD;
        off = sign * (oh * 3600L + om * 60L);
    } else {
        return ML_BAD;
    }
    if ((r = ml_lit(&p, e, " ")) != ML_OK)
        return r;
    rec->time = ml_days(y, mon, day) * 86400 + h * 3600 + mi * 60 + s - off;
    *pp = p;
    return ML_OK;
}

static bool ml_service_known(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof ml_services / sizeof ml_services[0]; i++)
        if (ml_eq(p, n, ml_services[i]))
            return true;
    return false;
}

/* "host PROGRAM[PID]: " after the time stamp. */
static int ml_host_program(const char **pp, const char *e, struct maillog_rec *rec)
{
    const char *p = *pp, *b = p;
    while (p < e && *p != ' ') {
        if (ml_is_ctl(*p))
            return ML_BAD;
        p++;
    }
    if (p == e)
        return ML_TRUNC;
    if (p == b)
        return ML_BAD;
    rec->host = ml_str(b, p);
    b = ++p;
    const char *slash = NULL;
    while (p < e && *p != '[' && *p != ':') {
        if (ml_is_ctl(*p) || *p == ' ')
            return ML_BAD;
        if (*p == '/')
            slash = p;
        p++;
    }
    if (p == e)
        return ML_TRUNC;
    if (p == b || slash == b || slash == p - 1)
        return ML_BAD;
    rec->program = ml_str(b, p);
    if (slash != NULL) {
        rec->syslog_name = ml_str(b, slash);
        rec->service = ml_str(slash + 1, p);
    } else {
        rec->service = rec->program;
    }
    if (!ml_service_known(rec->service.p, rec->service.n))
        return ML_BAD;
    if (*p == '[') {
        uint64_t pid;
        int r;
        p++;
        if ((r = ml_uint(&p, e, &pid)) != ML_OK)
            return r;
        if (pid > 0x7fffffff)
            return ML_BAD;
        rec->pid = (long)pid;
        if ((r = ml_lit(&p, e, "]")) != ML_OK)
            return r;
    }
    int r;
    if ((r = ml_lit(&p, e, ": ")) != ML_OK)
        return r;
    *pp = p;
    return ML_OK;
}

/* The end of a value: the next ", " (ML_TRUNC without one). */
static int ml_until_comma(const char *p, const char *e, const char **end)
{
    while (p < e) {
        const char *c = memchr(p, ',', (size_t)(e - p));
        if (c == NULL || c + 1 == e)
            return ML_TRUNC;
        if (c[1] == ' ') {
            *end = c;
            return ML_OK;
        }
        p = c + 1;
    }
    return ML_TRUNC;
}

/* "<address>" followed by ", " (or by the line's end when last): the
 * address is between '<' and the '>' that precedes ", ". */
static int ml_addr(const char **pp, const char *e, bool last, struct maillog_str *out)
{
    const char *p = *pp;
    if (p == e)
        return ML_TRUNC;
    if (*p != '<')
        return ML_BAD;
    const char *b = ++p;
    if (last) {
        if (p == e || e[-1] != '>')
            return ML_TRUNC;
        *out = ml_str(b, e - 1);
        *pp = e;
        return ML_OK;
    }
    for (;;) {
        const char *g = memchr(p, '>', (size_t)(e - p));
        if (g == NULL || e - g < 3)
            return ML_TRUNC;
        if (g[1] == ',' && g[2] == ' ') {
            *out = ml_str(b, g);
            *pp = g + 1;
            return ML_OK;
        }
        p = g + 1;
    }
}

/* "1.2", "0.05", "1502" in microseconds. */
static bool ml_delay(struct maillog_str v, int64_t *us)
{
    const char *p = v.p, *e = v.p + v.n;
    int64_t s = 0, frac = 0;
    int n = 0, nf = 0;
    for (; p < e && ml_is_digit(*p); p++) {
        if (++n > 12)
            return false;
        s = s * 10 + (*p - '0');
    }
    if (n == 0)
        return false;
    if (p < e && *p == '.') {
        for (p++; p < e && ml_is_digit(*p); p++, nf++)
            if (nf < 6)
                frac = frac * 10 + (*p - '0');
        if (nf == 0)
            return false;
    }
    if (p != e)
        return false;
    for (; nf < 6; nf++)
        frac *= 10;
    *us = s * 1000000 + frac;
    return true;
}

/* [245].N.N with 1 to 3 digits each. */
static bool ml_dsn_ok(struct maillog_str v)
{
    const char *p = v.p, *e = v.p + v.n;
    if (p == e || (*p != '2' && *p != '4' && *p != '5'))
        return false;
    p++;
    for (int part = 0; part < 2; part++) {
        if (p == e || *p++ != '.')
            return false;
        int n = 0;
        while (p < e && ml_is_digit(*p)) {
            n++;
            p++;
        }
        if (n < 1 || n > 3)
            return false;
    }
    return p == e;
}

/* "name[addr]" with an optional ":port" (allowed when port is not NULL). */
static bool ml_host_addr(struct maillog_str v, struct maillog_str *host, struct maillog_str *addr,
                         int *port)
{
    const char *p = v.p, *e = v.p + v.n;
    const char *lb = memchr(p, '[', v.n);
    if (lb == NULL)
        return false;
    const char *rb = memchr(lb, ']', (size_t)(e - lb));
    if (rb == NULL)
        return false;
    *host = ml_str(p, lb);
    *addr = ml_str(lb + 1, rb);
    p = rb + 1;
    if (p == e)
        return true;
    if (port == NULL || *p != ':' || p + 1 == e)
        return false;
    int v_port = 0;
    for (p++; p < e; p++) {
        if (!ml_is_digit(*p) || (v_port = v_port * 10 + (*p - '0')) > 65535)
            return false;
    }
    *port = v_port;
    return true;
}

static bool ml_relay(struct maillog_rec *rec)
{
    if (memchr(rec->relay.p, '[', rec->relay.n) == NULL) {
        rec->relay_host = rec->relay;   /* "none", "local", "virtual", a transport */
        return rec->relay.n > 0;
    }
    return ml_host_addr(rec->relay, &rec->relay_host, &rec->relay_addr, &rec->relay_port);
}

static const struct {
    const char *word;
    enum maillog_status st;
} ml_statuses[] = {
    { "sent", MAILLOG_ST_SENT },
    { "deferred", MAILLOG_ST_DEFERRED },
    { "bounced", MAILLOG_ST_BOUNCED },
    { "expired", MAILLOG_ST_EXPIRED },
    { "undeliverable", MAILLOG_ST_UNDELIVERABLE },
    { "deliverable", MAILLOG_ST_DELIVERABLE },
};

/* "to=<..>, ..., status=WORD (REPLY)" */
static enum maillog_kind ml_delivery(const char *p, const char *e, struct maillog_rec *rec)
{
    bool bad = false;
    int r;
    for (;;) {
        const char *k = p;
        while (p < e && *p != '=' && *p != ',' && *p != ' ')
            p++;
        if (p == e)
            return MAILLOG_TRUNCATED;
        if (*p != '=' || p == k)
            return MAILLOG_OTHER;
        size_t kn = (size_t)(p - k);
        p++;
        if (ml_eq(k, kn, "status"))
            break;
        if (ml_eq(k, kn, "to") || ml_eq(k, kn, "orig_to")) {
            struct maillog_str *a = kn == 2 ? &rec->to : &rec->orig_to;
            if ((r = ml_addr(&p, e, false, a)) != ML_OK)
                return r == ML_TRUNC ? MAILLOG_TRUNCATED : MAILLOG_OTHER;
        } else {
            const char *end;
            if (ml_until_comma(p, e, &end) != ML_OK)
                return MAILLOG_TRUNCATED;
            struct maillog_str v = ml_str(p, end);
            if (ml_eq(k, kn, "relay")) {
                rec->relay = v;
                bad |= !ml_relay(rec);
            } else if (ml_eq(k, kn, "delay")) {
                bad |= !ml_delay(v, &rec->delay_us);
            } else if (ml_eq(k, kn, "delays")) {
                rec->delays = v;
            } else if (ml_eq(k, kn, "dsn")) {
                rec->dsn = v;
                bad |= !ml_dsn_ok(v);
            }
            p = end;
        }
        p += 2;   /* ", " */
    }
    const char *w = p;
    while (p < e && *p >= 'a' && *p <= 'z')
        p++;
    if (p == e)
        return MAILLOG_TRUNCATED;
    rec->status_word = ml_str(w, p);
    if ((r = ml_lit(&p, e, " (")) != ML_OK)
        return r == ML_TRUNC ? MAILLOG_TRUNCATED : MAILLOG_OTHER;
    if (p == e || e[-1] != ')')
        return MAILLOG_TRUNCATED;
    rec->reply = ml_str(p, e - 1);
    for (size_t i = 0; i < sizeof ml_statuses / sizeof ml_statuses[0]; i++)
        if (ml_eq(w, rec->status_word.n, ml_statuses[i].word))
            rec->status = ml_statuses[i].st;
    if (rec->status == MAILLOG_ST_NONE || rec->to.p == NULL)
        bad = true;
    return bad ? MAILLOG_OTHER : MAILLOG_DELIVERY;
}

static enum maillog_kind ml_kind_of(int r, enum maillog_kind ok)
{
    return r == ML_OK ? ok : r == ML_TRUNC ? MAILLOG_TRUNCATED : MAILLOG_OTHER;
}

/* qmgr: "from=<..>, size=N, nrcpt=N (queue active)" or
 * "from=<..>, status=expired, returned to sender" */
static enum maillog_kind ml_from(const char *p, const char *e, struct maillog_rec *rec)
{
    int r;
    uint64_t v;
    if ((r = ml_addr(&p, e, false, &rec->from)) != ML_OK)
        return ml_kind_of(r, MAILLOG_OTHER);
    p += 2;
    const char *q = p;
    if ((r = ml_lit(&q, e, "status=expired, returned to sender")) != ML_BAD) {
        if (r == ML_OK && q != e)
            return MAILLOG_OTHER;
        return ml_kind_of(r, MAILLOG_EXPIRED);
    }
    if ((r = ml_lit(&p, e, "size=")) != ML_OK || (r = ml_uint(&p, e, &rec->size)) != ML_OK ||
        (r = ml_lit(&p, e, ", nrcpt=")) != ML_OK || (r = ml_uint(&p, e, &v)) != ML_OK)
        return ml_kind_of(r, MAILLOG_OTHER);
    rec->nrcpt = (unsigned long)v;
    if ((r = ml_lit(&p, e, " (queue active)")) != ML_OK)
        return ml_kind_of(r, MAILLOG_OTHER);
    return p == e ? MAILLOG_QUEUED : MAILLOG_OTHER;
}

/* pickup: "uid=N from=<..>" */
static enum maillog_kind ml_pickup(const char *p, const char *e, struct maillog_rec *rec)
{
    uint64_t uid;
    int r;
    if ((r = ml_uint(&p, e, &uid)) != ML_OK || (r = ml_lit(&p, e, " from=")) != ML_OK ||
        (r = ml_addr(&p, e, true, &rec->from)) != ML_OK)
        return ml_kind_of(r, MAILLOG_OTHER);
    if (uid > 0x7fffffff)
        return MAILLOG_OTHER;
    rec->uid = (long)uid;
    return MAILLOG_PICKUP;
}

/* smtpd: "client=NAME[ADDR][, key=value]..." */
static enum maillog_kind ml_client(const char *p, const char *e, struct maillog_rec *rec)
{
    const char *end;
    if (ml_until_comma(p, e, &end) != ML_OK)
        end = e;
    rec->client = ml_str(p, end);
    if (end == e && (p == e || e[-1] != ']'))
        return MAILLOG_TRUNCATED;
    if (!ml_host_addr(rec->client, &rec->client_host, &rec->client_addr, NULL))
        return MAILLOG_OTHER;
    for (p = end; p < e;) {
        p += 2;
        const char *k = p;
        while (p < e && *p != '=')
            p++;
        if (p == e)
            return MAILLOG_CLIENT;   /* an optional attribute cut: the client is known */
        size_t kn = (size_t)(p - k);
        p++;
        if (ml_until_comma(p, e, &end) != ML_OK)
            end = e;
        if (ml_eq(k, kn, "sasl_method"))
            rec->sasl_method = ml_str(p, end);
        else if (ml_eq(k, kn, "sasl_username"))
            rec->sasl_username = ml_str(p, end);
        p = end;
    }
    return MAILLOG_CLIENT;
}

/* A queue ID that runs to the line's end (bounce's notification). */
static enum maillog_kind ml_notify(const char *p, const char *e, struct maillog_rec *rec)
{
    size_t n = (size_t)(e - p);
    if (n == 0)
        return MAILLOG_TRUNCATED;
    for (size_t i = 0; i < n; i++)
        if (!ml_is_alnum(p[i]))
            return MAILLOG_OTHER;
    if (n <= QID_MAX) {
        memcpy(rec->notify_qid, p, n);
        rec->notify_qid[n] = '\0';
        if (qid_valid(rec->notify_qid))
            return MAILLOG_NOTIFY;
        rec->notify_qid[0] = '\0';
        return MAILLOG_TRUNCATED;   /* may be a cut one */
    }
    return MAILLOG_OTHER;
}

enum ml_body_kind { MB_DELIVERY, MB_FROM, MB_REMOVED, MB_MSGID, MB_CLIENT, MB_UID, MB_HOLD,
                    MB_HOLD_REASON, MB_RELEASE, MB_NOTIFY };

static const struct {
    const char *lit;
    enum ml_body_kind kind;
    bool whole;                 /* the literal is the whole body */
} ml_bodies[] = {
    { "to=", MB_DELIVERY, false },
    { "from=", MB_FROM, false },
    { "removed", MB_REMOVED, true },
    { "message-id=", MB_MSGID, false },
    { "client=", MB_CLIENT, false },
    { "uid=", MB_UID, false },
    { "placed on hold", MB_HOLD, true },
    { "hold: ", MB_HOLD_REASON, false },
    { "milter-hold: ", MB_HOLD_REASON, false },
    { "released from hold", MB_RELEASE, true },
    { "sender non-delivery notification: ", MB_NOTIFY, false },
    { "sender delivery status notification: ", MB_NOTIFY, false },
    { "postmaster non-delivery notification: ", MB_NOTIFY, false },
};

/* TEXT after "QUEUEID: ". */
static enum maillog_kind ml_body(const char *p, const char *e, struct maillog_rec *rec)
{
    bool cut = false;
    for (size_t i = 0; i < sizeof ml_bodies / sizeof ml_bodies[0]; i++) {
        const char *q = p;
        int r = ml_lit(&q, e, ml_bodies[i].lit);
        if (r == ML_TRUNC)
            cut = true;
        if (r != ML_OK)
            continue;
        if (ml_bodies[i].whole && q != e)
            continue;
        switch (ml_bodies[i].kind) {
        case MB_DELIVERY:
            return ml_delivery(p, e, rec);
        case MB_FROM:
            return ml_from(q, e, rec);
        case MB_REMOVED:
            return MAILLOG_REMOVED;
        case MB_MSGID:
            if (q == e)
                return MAILLOG_TRUNCATED;
            if (*q == '<') {
                if (e[-1] != '>' || e - q < 2)
                    return MAILLOG_TRUNCATED;
                rec->message_id = ml_str(q + 1, e - 1);
            } else {
                rec->message_id = ml_str(q, e);
            }
            return MAILLOG_MESSAGE_ID;
        case MB_CLIENT:
            return ml_client(q, e, rec);
        case MB_UID:
            return ml_pickup(q, e, rec);
        case MB_HOLD:
        case MB_RELEASE:
            return ml_bodies[i].kind == MB_HOLD ? MAILLOG_HOLD : MAILLOG_RELEASE;
        case MB_HOLD_REASON:
            rec->hold_reason = ml_str(q, e);
            return MAILLOG_HOLD;
        case MB_NOTIFY:
            return ml_notify(q, e, rec);
        }
    }
    return cut ? MAILLOG_TRUNCATED : MAILLOG_OTHER;
}

static void ml_rec_reset(struct maillog_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->pid = -1;
    rec->delay_us = -1;
    rec->uid = -1;
}

enum maillog_kind maillog_parse(struct maillog_ctx *ctx, const char *line, size_t len,
                                struct maillog_rec *rec)
{
    ml_rec_reset(rec);
    if (line == NULL || len == 0)
        return rec->kind = MAILLOG_TRUNCATED;
    const char *p = line, *e = line + len;
    if (e > p && e[-1] == '\n')
        e--;
    if (e > p && e[-1] == '\r')
        e--;
    int r;
    if (p == e) {
        r = ML_TRUNC;
    } else if (ml_is_digit(*p)) {
        rec->format = MAILLOG_FMT_RFC3339;
        r = ml_time_rfc3339(&p, e, rec);
    } else {
        rec->format = MAILLOG_FMT_TRADITIONAL;
        r = ml_time_traditional(ctx, &p, e, rec);
    }
    if (r == ML_OK)
        r = ml_host_program(&p, e, rec);
    if (r != ML_OK)
        return rec->kind = r == ML_TRUNC ? MAILLOG_TRUNCATED : MAILLOG_FOREIGN;
    rec->text = rec->body = ml_str(p, e);
    if (p == e)
        return rec->kind = MAILLOG_TRUNCATED;

    /* "QUEUEID: " */
    const char *b = p;
    while (p < e && ml_is_alnum(*p) && p - b <= QID_MAX)
        p++;
    if (p == e)
        return rec->kind = p - b <= QID_MAX ? MAILLOG_TRUNCATED : MAILLOG_OTHER;
    if (*p != ':' || p - b > QID_MAX || p == b)
        return rec->kind = MAILLOG_OTHER;
    memcpy(rec->qid, b, (size_t)(p - b));
    rec->qid[p - b] = '\0';
    if (!qid_valid(rec->qid)) {
        rec->qid[0] = '\0';
        return rec->kind = MAILLOG_OTHER;
    }
    if ((r = ml_lit(&p, e, ": ")) != ML_OK || p == e)
        return rec->kind = r == ML_BAD ? MAILLOG_OTHER : MAILLOG_TRUNCATED;
    rec->body = ml_str(p, e);
    return rec->kind = ml_body(p, e, rec);
}

const char *maillog_kind_name(enum maillog_kind k)
{
    static const char *const names[] = {
        "foreign", "truncated", "other", "delivery", "queued", "expired", "removed",
        "message-id", "client", "pickup", "hold", "release", "notify",
    };
    return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

const char *maillog_status_name(enum maillog_status s)
{
    static const char *const names[] = {
        "", "sent", "deferred", "bounced", "expired", "undeliverable", "deliverable",
    };
    return (size_t)s < sizeof names / sizeof names[0] ? names[s] : "?";
}
