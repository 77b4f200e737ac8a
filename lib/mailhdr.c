/* mailhdr.c: the From: and Authentication-Results parsers of mailhdr.h.
 *
 * A small RFC 5322 lexer (CFWS skipped: folding whitespace, comments
 * nested to any depth with quoted-pairs, counted and never recursed;
 * atoms, quoted strings, domain literals and the specials) feeds a flat
 * parser of address-list: mailboxes (addr-spec or [display-name]
 * angle-addr, obs-route tolerated inside the brackets), groups (counted
 * by their mailboxes, not nested) and empty list elements (obs-addr-list).
 * Bytes >= 0x80 are atext (RFC 6532), valid UTF-8 or not, so an 8-bit
 * display name never makes a From: unparsable; a domain must still be
 * ASCII LDH labels (DMARC needs A-labels).  What the lexer cannot place
 * (a stray ')' or ']', a '\' outside quotes, a control byte in an atom,
 * an unterminated quote, comment or literal) makes the whole field
 * unparsable, as do a NUL byte and any sequence the grammar refuses
 * (two '@', a phrase and an addr-spec side by side, a missing '>').
 *
 * Answers the header leaves open: an unparsable From: counts no mailbox
 * (n_mailboxes 0); a phrase alone ("MAILER-DAEMON"), "<postmaster>" and
 * "<>" are one mailbox without a domain; "user@" has a bad domain; groups
 * must be followed by ',' like any element, but one left open at the end
 * (no ';') is tolerated; "MULTIPLE" wins over the first mailbox's domain
 * problems, "UNPARSABLE" over everything.  mailhdr_authres_id() reads the
 * value up to its first NUL, as every C-string reader downstream does.
 *
 * Everything is in time linear in the input, with no allocation: the
 * only copy is the domain of the first mailbox, in a fixed buffer. */
#include "mailhdr.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define MH_LABEL_MAX 63

enum mh_type {
    MH_END,
    MH_ATOM,      /* a run of atext (8-bit bytes included) */
    MH_QUOTED,    /* a quoted-string, quotes included */
    MH_LITERAL,   /* a domain literal, brackets included */
    MH_PUNCT,     /* one of < > @ , : ; . (in c) */
    MH_BAD,       /* what no production takes: a stray ')', ']' or '\', a control byte, an unterminated quote */
};

struct mh_token {
    enum mh_type type;
    const char *p;
    size_t len;
    char c;
};

struct mh_lexer {
    const char *p, *end;
    struct mh_token ahead;
    bool have_ahead;
};

struct mh_parser {
    struct mh_lexer lex;
    bool bad;
    bool in_group;
    size_t n;                                  /* mailboxes counted */
    enum mailhdr_from_status first;            /* the first mailbox: OK, NO_DOMAIN or BAD_DOMAIN */
    char domain[MAILHDR_DOMAIN_MAX + 1];       /* the first mailbox's domain when OK */
};

/* --- characters ---------------------------------------------------------- */

static bool mh_is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool mh_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext, plus every 8-bit byte (RFC 6532, UTF-8 or not). */
static bool mh_is_atext(unsigned char c)
{
    return mh_is_alnum(c) || c >= 0x80 || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 2045 token: CHAR except SPACE, CTLs and tspecials. */
static bool mh_is_token(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static char mh_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* --- lexer --------------------------------------------------------------- */

/* Skip folding whitespace and comments.  False when a comment is not
 * closed before the end (*pp is then left at the end). */
static bool mh_skip_cfws(const char **pp, const char *end)
{
    const char *p = *pp;
    size_t depth = 0;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (depth > 0) {
            if (c == '\\') {
                if (++p == end)
                    break;
            } else if (c == '(') {
                depth++;
            } else if (c == ')') {
                depth--;
            }
        } else if (c == '(') {
            depth = 1;
        } else if (!mh_is_wsp(c)) {
            break;
        }
    }
    *pp = p;
    return depth == 0;
}

/* From the opening delimiter at p to its closing one: the length with both
 * delimiters, or 0 when unterminated (or, for a literal, when a '[' is
 * inside).  Quoted-pairs are skipped. */
static size_t mh_span_delimited(const char *p, const char *end, char close)
{
    for (const char *q = p + 1; q < end; q++) {
        if (*q == '\\') {
            if (++q == end)
                return 0;
        } else if (*q == close) {
            return (size_t)(q - p) + 1;
        } else if (close == ']' && *q == '[') {
            return 0;
        }
    }
    return 0;
}

static void mh_scan(struct mh_lexer *lx, struct mh_token *t)
{
    t->len = 0;
    t->c = 0;
    bool closed = mh_skip_cfws(&lx->p, lx->end);
    t->p = lx->p;
    if (!closed) {
        t->type = MH_BAD;
        return;
    }
    if (lx->p == lx->end) {
        t->type = MH_END;
        return;
    }
    unsigned char c = (unsigned char)*lx->p;
    if (c == '"' || c == '[') {
        t->len = mh_span_delimited(lx->p, lx->end, c == '"' ? '"' : ']');
        t->type = t->len == 0 ? MH_BAD : c == '"' ? MH_QUOTED : MH_LITERAL;
    } else if (c != '\0' && strchr("<>@,:;.", c) != NULL) {
        t->type = MH_PUNCT;
        t->c = (char)c;
        t->len = 1;
    } else if (mh_is_atext(c)) {
        t->type = MH_ATOM;
        while (lx->p + t->len < lx->end && mh_is_atext((unsigned char)lx->p[t->len]))
            t->len++;
    } else {
        t->type = MH_BAD;
    }
    lx->p += t->len;
    if (t->type == MH_BAD)
        lx->p = lx->end; /* nothing after it matters */
}

static const struct mh_token *mh_peek(struct mh_lexer *lx)
{
    if (!lx->have_ahead) {
        mh_scan(lx, &lx->ahead);
        lx->have_ahead = true;
    }
    return &lx->ahead;
}

static void mh_take(struct mh_lexer *lx)
{
    lx->have_ahead = false;
}

static bool mh_is_punct(const struct mh_token *t, char c)
{
    return t->type == MH_PUNCT && t->c == c;
}

static bool mh_is_word(const struct mh_token *t)
{
    return t->type == MH_ATOM || t->type == MH_QUOTED;
}

/* --- domains ------------------------------------------------------------- */

/* Check d (len bytes as written; a longer name arrives cut one byte past
 * the longest valid one) as a host name: one trailing dot dropped, LDH
 * labels of 1..63 bytes, 253 bytes at most.  When valid, lowercased into
 * out. */
static bool mh_domain_valid(const char *d, size_t len, char out[MAILHDR_DOMAIN_MAX + 1])
{
    if (len > 0 && len <= MAILHDR_DOMAIN_MAX + 1 && d[len - 1] == '.')
        len--;
    if (len == 0 || len > MAILHDR_DOMAIN_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (mh_is_alnum(c) || c == '-') {
            if (++label > MH_LABEL_MAX)
                return false;
        } else {
            return false;
        }
    }
    if (label == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = mh_lower(d[i]);
    out[len] = '\0';
    return true;
}

/* --- the grammar --------------------------------------------------------- */

static void mh_mailbox(struct mh_parser *ps, enum mailhdr_from_status st, const char *domain)
{
    if (++ps->n != 1)
        return;
    ps->first = st;
    if (st == MAILHDR_FROM_OK)
        memcpy(ps->domain, domain, strlen(domain) + 1);
}

/* After '@': a domain (dot-atom or obs-domain, CFWS around the dots) or a
 * domain literal; counts the mailbox it ends. */
static void mh_domain(struct mh_parser *ps)
{
    const struct mh_token *t = mh_peek(&ps->lex);
    if (t->type == MH_LITERAL) {
        mh_take(&ps->lex);
        mh_mailbox(ps, MAILHDR_FROM_BAD_DOMAIN, NULL);
        return;
    }
    char raw[MAILHDR_DOMAIN_MAX + 2];  /* as written, up to one byte more than a name with its trailing dot */
    char name[MAILHDR_DOMAIN_MAX + 1];
    size_t len = 0;
    bool after_atom = false;
    for (; t->type == MH_ATOM || mh_is_punct(t, '.'); t = mh_peek(&ps->lex)) {
        if (t->type == MH_ATOM && after_atom) {
            ps->bad = true; /* two atoms with only CFWS between them */
            return;
        }
        after_atom = t->type == MH_ATOM;
        for (size_t i = 0; i < t->len && len < sizeof raw; i++) /* a longer one is refused below */
            raw[len++] = t->p[i];
        mh_take(&ps->lex);
    }
    if (t->type == MH_QUOTED || t->type == MH_LITERAL) {
        ps->bad = true;
        return;
    }
    if (mh_domain_valid(raw, len, name))
        mh_mailbox(ps, MAILHDR_FROM_OK, name);
    else
        mh_mailbox(ps, MAILHDR_FROM_BAD_DOMAIN, NULL);
}

/* A phrase or a local-part: words and dots.  *words counts the words;
 * *local tells whether it can be a local-part (no two words side by side;
 * stray dots are tolerated, as in the wild). */
static void mh_words(struct mh_parser *ps, size_t *words, bool *local)
{
    *words = 0;
    *local = true;
    bool after_word = false;
    for (const struct mh_token *t = mh_peek(&ps->lex); mh_is_word(t) || mh_is_punct(t, '.');
         t = mh_peek(&ps->lex)) {
        if (mh_is_word(t)) {
            if (after_word)
                *local = false;
            (*words)++;
        }
        after_word = mh_is_word(t);
        mh_take(&ps->lex);
    }
}

/* After '<': [obs-route] [addr-spec] '>'. */
static void mh_angle(struct mh_parser *ps)
{
    const struct mh_token *t = mh_peek(&ps->lex);
    if (mh_is_punct(t, '@') || mh_is_punct(t, ',')) {
        /* obs-route: "@a,@b:" skipped up to its ':' */
        for (; t->type == MH_ATOM || t->type == MH_LITERAL || mh_is_punct(t, '@') || mh_is_punct(t, ',') ||
               mh_is_punct(t, '.');
             t = mh_peek(&ps->lex))
            mh_take(&ps->lex);
        if (!mh_is_punct(t, ':')) {
            ps->bad = true;
            return;
        }
        mh_take(&ps->lex);
    }
    size_t words;
    bool local;
    mh_words(ps, &words, &local);
    t = mh_peek(&ps->lex);
    if (mh_is_punct(t, '@')) {
        if (words == 0 || !local) {
            ps->bad = true;
            return;
        }
        mh_take(&ps->lex);
        mh_domain(ps);
        if (ps->bad)
            return;
    } else if (local) {
        mh_mailbox(ps, MAILHDR_FROM_NO_DOMAIN, NULL); /* <postmaster>, and <> too */
    } else {
        ps->bad = true;
        return;
    }
    if (!mh_is_punct(mh_peek(&ps->lex), '>')) {
        ps->bad = true;
        return;
    }
    mh_take(&ps->lex);
}

/* One element of the list that is not empty: a mailbox, or the display
 * name and ':' that open a group (then true). */
static bool mh_address(struct mh_parser *ps)
{
    size_t words;
    bool local;
    mh_words(ps, &words, &local);
    const struct mh_token *t = mh_peek(&ps->lex);
    if (mh_is_punct(t, '<')) {
        mh_take(&ps->lex);
        mh_angle(ps);
    } else if (mh_is_punct(t, ':')) {
        if (ps->in_group) {
            ps->bad = true; /* groups do not nest */
            return false;
        }
        mh_take(&ps->lex);
        ps->in_group = true;
        return true;
    } else if (mh_is_punct(t, '@')) {
        if (words == 0 || !local) {
            ps->bad = true;
            return false;
        }
        mh_take(&ps->lex);
        mh_domain(ps);
    } else if (words > 0 && (t->type == MH_END || mh_is_punct(t, ',') || mh_is_punct(t, ';'))) {
        mh_mailbox(ps, MAILHDR_FROM_NO_DOMAIN, NULL); /* "MAILER-DAEMON" */
    } else {
        ps->bad = true;
    }
    return false;
}

static bool mh_is_list_end(const struct mh_token *t)
{
    return t->type == MH_END || mh_is_punct(t, ',') || mh_is_punct(t, ';');
}

/* address-list, flat: a group only switches in_group on and off. */
static void mh_list(struct mh_parser *ps)
{
    while (!ps->bad) {
        const struct mh_token *t = mh_peek(&ps->lex);
        if (t->type == MH_END)
            return; /* a group left open at the end is tolerated */
        if (mh_is_punct(t, ',')) {
            mh_take(&ps->lex);
        } else if (mh_is_punct(t, ';')) {
            if (!ps->in_group) {
                ps->bad = true;
                return;
            }
            mh_take(&ps->lex);
            ps->in_group = false;
            t = mh_peek(&ps->lex);
            if (t->type != MH_END && !mh_is_punct(t, ','))
                ps->bad = true;
        } else if (!mh_address(ps) && !ps->bad && !mh_is_list_end(mh_peek(&ps->lex))) {
            ps->bad = true; /* something after a mailbox, before any ',' */
        }
    }
}

/* --- From: ---------------------------------------------------------------- */

bool mailhdr_from_parse(const char *value, size_t len, struct mailhdr_from *out)
{
    struct mh_parser ps = {.first = MAILHDR_FROM_NONE};
    if (value == NULL)
        len = 0;
    ps.lex.p = value;
    ps.lex.end = value + len;
    if (len > 0 && memchr(value, '\0', len) != NULL)
        ps.bad = true;
    else
        mh_list(&ps);

    memset(out, 0, sizeof *out);
    if (ps.bad) {
        out->status = MAILHDR_FROM_UNPARSABLE;
        return false;
    }
    out->n_mailboxes = ps.n;
    if (ps.n == 0)
        out->status = MAILHDR_FROM_NONE;
    else if (ps.n > 1)
        out->status = MAILHDR_FROM_MULTIPLE;
    else
        out->status = ps.first;
    if (out->status == MAILHDR_FROM_OK)
        memcpy(out->domain, ps.domain, sizeof out->domain);
    return out->status == MAILHDR_FROM_OK;
}

const char *mailhdr_from_status_name(enum mailhdr_from_status s)
{
    switch (s) {
    case MAILHDR_FROM_OK:
        return "ok";
    case MAILHDR_FROM_NONE:
        return "none";
    case MAILHDR_FROM_MULTIPLE:
        return "multiple";
    case MAILHDR_FROM_NO_DOMAIN:
        return "no-domain";
    case MAILHDR_FROM_BAD_DOMAIN:
        return "bad-domain";
    case MAILHDR_FROM_UNPARSABLE:
        return "unparsable";
    }
    return "?";
}

/* --- Authentication-Results ---------------------------------------------- */

/* The content of the quoted-string at p (its opening quote), unescaped and
 * unfolded, into out; false when unterminated, empty or too long. */
static bool mh_unquote(const char *p, const char *end, char *out, size_t outsz)
{
    size_t n = 0;
    for (p++; p < end; p++) {
        char c = *p;
        if (c == '"') {
            out[n] = '\0';
            return n > 0;
        }
        if (c == '\\') {
            if (++p == end)
                return false;
            c = *p;
        } else if (c == '\r' || c == '\n') {
            continue;
        }
        if (n + 1 >= outsz)
            return false;
        out[n++] = mh_lower(c);
    }
    return false;
}

bool mailhdr_authres_id(const char *value, size_t len, char *out, size_t outsz)
{
    if (out == NULL || outsz == 0)
        return false;
    out[0] = '\0';
    if (value == NULL)
        return false;
    len = strnlen(value, len); /* what a reader of C strings sees */
    const char *p = value, *end = value + len;
    if (!mh_skip_cfws(&p, end) || p == end)
        return false;
    if (*p == '"') {
        if (mh_unquote(p, end, out, outsz))
            return true;
        out[0] = '\0';
        return false;
    }
    size_t n = 0;
    while (p + n < end && mh_is_token((unsigned char)p[n]))
        n++;
    if (n == 0 || n >= outsz)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = mh_lower(p[i]);
    out[n] = '\0';
    return true;
}
