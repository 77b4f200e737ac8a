/* fuzz_mailhdr.c: libFuzzer target of lib/mailhdr.c (the From: and
 * authserv-id parsers, the first code a forged message reaches) and
 * milter/authres.c (the Authentication-Results builder).  The whole input
 * is parsed as a From: value and as an Authentication-Results value, then
 * cut at its NUL bytes into the pieces of a header to build (authserv-id,
 * then method, result, comment and two properties per resinfo).  Besides
 * the sanitizers it checks what the code promises and aborts when not:
 * a From: status in range, with a lowercase, valid host name of at most
 * 253 bytes when OK, "" and the right mailbox count otherwise, and the
 * same answer with a comment before the value and a space after it; an
 * authserv-id NUL-terminated, lowercase and within its buffer; a built
 * value of printable ASCII and "\n\t" folds only, its quotes and comments
 * closed, one ';' per resinfo, lines within 78 columns when the pieces
 * are short, and its authserv-id read back.  Built and run by
 * tests/fuzz/run.sh (FUZZ_TARGET=mailhdr). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "mailhdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PIECES 32
#define FUZZ_SHORT 20   /* pieces no longer than this give lines within 78 columns */

static void fuzz_check(int ok)
{
    if (!ok)
        abort();
}

static bool fuzz_is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

/* --- From: --------------------------------------------------------------- */

static void fuzz_check_domain(const char *d)
{
    size_t len = strlen(d), label = 0;
    fuzz_check(len >= 1 && len <= MAILHDR_DOMAIN_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (c == '.') {
            fuzz_check(label >= 1);
            label = 0;
            continue;
        }
        fuzz_check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
        fuzz_check(++label <= 63);
    }
    fuzz_check(label >= 1);
}

static void fuzz_check_from(const struct mailhdr_from *f, bool ok)
{
    fuzz_check(f->status >= MAILHDR_FROM_OK && f->status <= MAILHDR_FROM_UNPARSABLE);
    fuzz_check(ok == (f->status == MAILHDR_FROM_OK));
    fuzz_check(memchr(f->domain, '\0', sizeof f->domain) != NULL);
    fuzz_check(strcmp(mailhdr_from_status_name(f->status), "?") != 0);
    switch (f->status) {
    case MAILHDR_FROM_OK:
        fuzz_check(f->n_mailboxes == 1);
        fuzz_check_domain(f->domain);
        return;
    case MAILHDR_FROM_NONE:
    case MAILHDR_FROM_UNPARSABLE:
        fuzz_check(f->n_mailboxes == 0);
        break;
    case MAILHDR_FROM_MULTIPLE:
        fuzz_check(f->n_mailboxes >= 2);
        break;
    case MAILHDR_FROM_NO_DOMAIN:
    case MAILHDR_FROM_BAD_DOMAIN:
        fuzz_check(f->n_mailboxes == 1);
        break;
    }
    fuzz_check(f->domain[0] == '\0');
}

static void fuzz_from(const char *in, size_t size)
{
    struct mailhdr_from f, g;
    memset(&f, 0xa5, sizeof f);
    bool ok = mailhdr_from_parse(in, size, &f);
    fuzz_check_from(&f, ok);
    /* a comment before, a space after: the same */
    char *wrapped = malloc(size + 4);
    memcpy(wrapped, "(c)", 3);
    memcpy(wrapped + 3, in, size);
    wrapped[size + 3] = ' ';
    memset(&g, 0x5a, sizeof g);
    bool ok2 = mailhdr_from_parse(wrapped, size + 4, &g);
    free(wrapped);
    fuzz_check(ok2 == ok && g.status == f.status && g.n_mailboxes == f.n_mailboxes);
    fuzz_check(strcmp(g.domain, f.domain) == 0);
}

/* --- authserv-id ---------------------------------------------------------- */

static void fuzz_authres_id(const char *in, size_t size, size_t outsz)
{
    char out[300];
    memset(out, 'X', sizeof out);
    bool ok = mailhdr_authres_id(in, size, out, outsz);
    if (outsz == 0) {
        fuzz_check(!ok && out[0] == 'X');
        return;
    }
    size_t len = strnlen(out, outsz);
    fuzz_check(len < outsz);
    fuzz_check(ok ? len >= 1 : len == 0);
    for (size_t i = 0; i < len; i++)
        fuzz_check(!fuzz_is_upper(out[i]));
    for (size_t i = outsz; i < sizeof out; i++)
        fuzz_check(out[i] == 'X');
}

/* --- the Authentication-Results builder ---------------------------------- */

/* The pieces of the input between its NUL bytes, as C strings (the last
 * one copied into tail so that it is terminated). */
static size_t fuzz_pieces(const char *in, size_t size, char *tail, const char **pieces, size_t *longest)
{
    size_t n = 0, off = 0;
    *longest = 0;
    while (n < FUZZ_PIECES && off <= size) {
        const char *nul = memchr(in + off, '\0', size - off);
        size_t len = nul != NULL ? (size_t)(nul - (in + off)) : size - off;
        if (nul != NULL) {
            pieces[n++] = in + off;
        } else {
            memcpy(tail, in + off, len);
            tail[len] = '\0';
            pieces[n++] = tail;
        }
        if (len > *longest)
            *longest = len;
        off += len + 1;
    }
    return n;
}

/* The built value: printable ASCII and "\n\t" folds; quoted strings and
 * comments closed, comments never nested; one ';' per resinfo (or the one
 * of "; none"); lines within 78 columns (the field name counted) when
 * every piece is short. */
static void fuzz_check_value(const char *v, size_t n_resinfo, bool short_pieces)
{
    bool quoted = false;
    size_t depth = 0, semis = 0, col = strlen("Authentication-Results: ");
    for (const char *p = v; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n') {
            fuzz_check(p[1] == '\t' && p[2] != '\0' && p[2] != ' ' && p[2] != '\t' && p[2] != '\n');
            fuzz_check(p > v && p[-1] != ' ');
            fuzz_check(!short_pieces || col <= 78);
            fuzz_check(!quoted);
            col = 0;
            continue;
        }
        fuzz_check((c >= 0x20 && c < 0x7f) || (c == '\t' && p > v && p[-1] == '\n'));
        col++;
        if ((quoted || depth > 0) && c == '\\') {
            fuzz_check(p[1] != '\0' && p[1] != '\n');
            p++;
            col++;
        } else if (quoted) {
            quoted = c != '"';
        } else if (depth > 0) {
            fuzz_check(c != '(');
            if (c == ')')
                depth--;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '(') {
            depth++;
        } else {
            fuzz_check(c != ')');
            semis += c == ';';
        }
    }
    fuzz_check(!quoted && depth == 0);
    fuzz_check(!short_pieces || col <= 78);
    fuzz_check(semis == (n_resinfo > 0 ? n_resinfo : 1));
    if (n_resinfo == 0) {
        size_t len = strlen(v);
        fuzz_check(len >= 5 && strcmp(v + len - 4, "none") == 0);
    }
}

/* authserv-id made of printable ASCII: read back the same, lowercased. */
static void fuzz_check_id(const char *v, const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len >= 256)
        return;
    for (size_t i = 0; i < len; i++)
        if (id[i] < 0x20 || id[i] >= 0x7f)
            return;
    char got[256];
    fuzz_check(mailhdr_authres_id(v, strlen(v), got, sizeof got));
    fuzz_check(strlen(got) == len);
    for (size_t i = 0; i < len; i++)
        fuzz_check(got[i] == (fuzz_is_upper(id[i]) ? id[i] - 'A' + 'a' : id[i]));
}

static void fuzz_build(const char *in, size_t size)
{
    const char *pieces[FUZZ_PIECES];
    char *tail = malloc(size + 1);
    size_t longest;
    size_t n = fuzz_pieces(in, size, tail, pieces, &longest);
    struct authres a;
    authres_init(&a, pieces[0]);
    fuzz_check(a.n == 0);
    size_t added = 0;
    for (size_t i = 1; i < n;) {
        const char *method = pieces[i++];
        const char *result = i < n ? pieces[i++] : "";
        const char *comment = i < n ? pieces[i++] : NULL;
        if (comment != NULL && comment[0] == '-')
            comment = NULL;
        size_t n_props = (n - i) / 2 < 2 ? (n - i) / 2 : 2;
        authres_add(&a, method, result, comment, pieces + i, n_props);
        i += 2 * n_props;
        added++;
        fuzz_check(a.n == added);
        fuzz_check(strlen(authres_value(&a)) == a.value.len);
    }
    const char *v = authres_value(&a);
    fuzz_check(strlen(v) == a.value.len);
    fuzz_check_value(v, added, longest <= FUZZ_SHORT);
    fuzz_check_id(v, pieces[0]);
    authres_free(&a);
    free(tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    fuzz_from(in, size);
    fuzz_authres_id(in, size, 256);
    fuzz_authres_id(in, size, size > 0 ? data[0] % 40 : 0);
    fuzz_build(in, size);
    return 0;
}
