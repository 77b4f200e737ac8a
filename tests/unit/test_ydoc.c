/* test_ydoc.c: unit tests of lib/ydoc.c, the YAML loader behind config and
 * rule files: 1-based line/column of every node, refusals with their exact
 * positioned messages (duplicate keys, anchors, aliases, tags, a second
 * document, nesting deeper than 64, non-scalar keys, invalid YAML), empty
 * documents, NUL bytes in scalars, large documents (arena growth),
 * ynode_get, ynode_repr, and loading from a file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ydoc.h"
#include "unit.h"

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

static bool load(struct ydoc *doc, struct diags *d, const char *text)
{
    diags_init(d);
    return ydoc_load_buffer(doc, "t.yaml", text, strlen(text), d);
}

static void assert_pos(const struct ynode *n, enum ykind kind, int line, int col, const char *str)
{
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(n->kind, kind);
    ck_assert_msg(n->line == line && n->col == col, "node %s at %d:%d, want %d:%d", str ? str : "(collection)",
                  n->line, n->col, line, col);
    if (str != NULL)
        ck_assert_str_eq(n->str, str);
}

/* ---- positions ---------------------------------------------------- */

START_TEST(test_positions)
{
    static const char text[] = "a: 1\n"
                               "b:\n"
                               "  c: hello\n"
                               "  d: [x, y]\n"
                               "list:\n"
                               "  - one\n"
                               "  - k: v\n"
                               "q: \"quoted\"\n"
                               "f: {m: n}\n";
    struct ydoc doc;
    struct diags d;
    ck_assert(load(&doc, &d, text));
    ck_assert_uint_eq(d.n, 0);
    ck_assert_str_eq(doc.file, "t.yaml");
    const struct ynode *r = doc.root;
    assert_pos(r, Y_MAP, 1, 1, NULL);
    ck_assert_uint_eq(r->n, 5);
    assert_pos(r->keys[0], Y_SCALAR, 1, 1, "a");
    assert_pos(r->items[0], Y_SCALAR, 1, 4, "1");
    ck_assert(r->items[0]->plain);
    assert_pos(r->keys[1], Y_SCALAR, 2, 1, "b");
    const struct ynode *b = r->items[1];
    assert_pos(b, Y_MAP, 3, 3, NULL);
    assert_pos(b->keys[0], Y_SCALAR, 3, 3, "c");
    assert_pos(b->items[0], Y_SCALAR, 3, 6, "hello");
    assert_pos(b->keys[1], Y_SCALAR, 4, 3, "d");
    const struct ynode *dl = b->items[1];
    assert_pos(dl, Y_SEQ, 4, 6, NULL);
    ck_assert_uint_eq(dl->n, 2);
    ck_assert_ptr_null(dl->keys);
    assert_pos(dl->items[0], Y_SCALAR, 4, 7, "x");
    assert_pos(dl->items[1], Y_SCALAR, 4, 10, "y");
    assert_pos(r->keys[2], Y_SCALAR, 5, 1, "list");
    const struct ynode *l = r->items[2];
    assert_pos(l, Y_SEQ, 6, 3, NULL);
    assert_pos(l->items[0], Y_SCALAR, 6, 5, "one");
    assert_pos(l->items[1], Y_MAP, 7, 5, NULL);
    assert_pos(l->items[1]->keys[0], Y_SCALAR, 7, 5, "k");
    assert_pos(l->items[1]->items[0], Y_SCALAR, 7, 8, "v");
    /* a quoted scalar: its position is the opening quote, not plain */
    assert_pos(r->items[3], Y_SCALAR, 8, 4, "quoted");
    ck_assert(!r->items[3]->plain);
    ck_assert_uint_eq(r->items[3]->len, 6);
    assert_pos(r->items[4], Y_MAP, 9, 4, NULL);
    assert_pos(r->items[4]->keys[0], Y_SCALAR, 9, 5, "m");
    assert_pos(r->items[4]->items[0], Y_SCALAR, 9, 8, "n");
    ydoc_free(&doc);
    ck_assert_ptr_null(doc.root);
    ck_assert_ptr_null(doc.file);
    diags_free(&d);
}
END_TEST

START_TEST(test_positions_block_scalar_crlf)
{
    struct ydoc doc;
    struct diags d;
    ck_assert(load(&doc, &d, "a: |\n  text\n  more\nb: 1\r\nc: 2\r\n"));
    assert_pos(doc.root->items[0], Y_SCALAR, 1, 4, "text\nmore\n");
    assert_pos(doc.root->keys[1], Y_SCALAR, 4, 1, "b");
    assert_pos(doc.root->keys[2], Y_SCALAR, 5, 1, "c");
    assert_pos(doc.root->items[2], Y_SCALAR, 5, 4, "2");
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

/* ---- refusals: one exact, positioned message each ----------------- */

static const struct {
    const char *text;
    const char *err;
} refusal_cases[] = {
    { "a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key \"a\" (first at line 1)" },
    { "x:\n  k: 1\n  j: 2\n  k: 2\n", "t.yaml:4:3: duplicate key \"k\" (first at line 2)" },
    { "\"a\": 1\na: 2\n", "t.yaml:2:1: duplicate key \"a\" (first at line 1)" },
    { "{a: 1, a: 2}", "t.yaml:1:8: duplicate key \"a\" (first at line 1)" },
    { "- {a: 1}\n- a: 1\n  b: 2\n  a: 3\n", "t.yaml:4:3: duplicate key \"a\" (first at line 2)" },
    { "a: &x 1\nb: *x\n", "t.yaml:1:4: YAML anchors (&x) are not supported in postern files" },
    { "a: &m {b: 1}\n", "t.yaml:1:4: YAML anchors (&m) are not supported in postern files" },
    { "a: &s [1]\n", "t.yaml:1:4: YAML anchors (&s) are not supported in postern files" },
    { "a: 1\nb: *x\n", "t.yaml:2:4: YAML aliases (*x) are not supported in postern files" },
    { "- *ref\n", "t.yaml:1:3: YAML aliases (*ref) are not supported in postern files" },
    { "a: !custom x\n", "t.yaml:1:4: YAML tags (!custom) are not supported in postern files" },
    { "a: !!binary aGk=\n", "t.yaml:1:4: YAML tags (!!binary) are not supported in postern files" },
    { "a: ! x\n", "t.yaml:1:4: YAML tags (!) are not supported in postern files" },
    { "a: !foo [1]\n", "t.yaml:1:4: YAML tags (!foo) are not supported in postern files" },
    { "a: !!set {b}\n", "t.yaml:1:4: YAML tags (!!set) are not supported in postern files" },
    { "a: 1\n---\nb: 2\n", "t.yaml:2:1: expected one YAML document per file, found a second one" },
    { "---\na: 1\n...\n---\nb: 2\n", "t.yaml:4:1: expected one YAML document per file, found a second one" },
    { "? [a]\n: 1\n", "t.yaml:1:3: expected a scalar mapping key, found a list" },
    { "{{a: 1}: 2}", "t.yaml:1:2: expected a scalar mapping key, found a mapping" },
    /* invalid YAML: libyaml's message, at the position it gives */
    { "a:\n\tb: 1\n",
      "t.yaml:2:1: invalid YAML: found character that cannot start any token while scanning for the next token" },
    { "a: \"abc\n", "t.yaml:2:1: invalid YAML: found unexpected end of stream while scanning a quoted scalar" },
    { "a: 'abc\n", "t.yaml:2:1: invalid YAML: found unexpected end of stream while scanning a quoted scalar" },
    { "a: [1, 2\n", "t.yaml:2:1: invalid YAML: did not find expected ',' or ']' while parsing a flow sequence" },
    { "a: b: c\n", "t.yaml:1:5: invalid YAML: mapping values are not allowed in this context" },
    { "a: 1\n b: 2\n", "t.yaml:2:3: invalid YAML: mapping values are not allowed in this context" },
    { "- a\nb: 1\n",
      "t.yaml:2:1: invalid YAML: did not find expected '-' indicator while parsing a block collection" },
};

START_TEST(test_refusals)
{
    struct ydoc doc;
    struct diags d;
    bool ok = load(&doc, &d, refusal_cases[_i].text);
    ck_assert_msg(!ok, "case %d accepted", _i);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.msgs[0], refusal_cases[_i].err);
    ck_assert_ptr_null(doc.root);
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

/* Core-schema tags are fine; they do not change the stored text. */
START_TEST(test_core_tags)
{
    struct ydoc doc;
    struct diags d;
    ck_assert(load(&doc, &d, "a: !!str 1\nb: !!int 2\nc: !!map {x: 1}\nd: !!seq [1]\ne: !!null ~\n"));
    ck_assert_str_eq(ynode_get(doc.root, "a")->str, "1");
    ck_assert_int_eq(ynode_get(doc.root, "c")->kind, Y_MAP);
    ck_assert_int_eq(ynode_get(doc.root, "d")->kind, Y_SEQ);
    ck_assert_str_eq(ynode_get(doc.root, "e")->str, "~");
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

/* ---- empty documents ---------------------------------------------- */

START_TEST(test_empty_documents)
{
    struct ydoc doc;
    struct diags d;
    ck_assert(load(&doc, &d, ""));
    ck_assert_ptr_null(doc.root);
    ydoc_free(&doc);
    diags_free(&d);

    ck_assert(load(&doc, &d, "# only a comment\n\n   \n"));
    ck_assert_ptr_null(doc.root);
    ydoc_free(&doc);
    diags_free(&d);

    /* an explicit "---" makes a document holding one empty plain scalar */
    ck_assert(load(&doc, &d, "---\n"));
    assert_pos(doc.root, Y_SCALAR, 2, 1, "");
    ck_assert(doc.root->plain);
    ck_assert_uint_eq(doc.root->len, 0);
    ydoc_free(&doc);
    diags_free(&d);

    /* a value left empty is an empty plain scalar */
    ck_assert(load(&doc, &d, "a:\nb: ''\n"));
    ck_assert_str_eq(doc.root->items[0]->str, "");
    ck_assert(doc.root->items[0]->plain);
    ck_assert_str_eq(doc.root->items[1]->str, "");
    ck_assert(!doc.root->items[1]->plain);
    ck_assert_uint_eq(doc.root->items[0]->n, 0);
    ydoc_free(&doc);
    diags_free(&d);

    /* empty collections */
    ck_assert(load(&doc, &d, "a: []\nb: {}\n"));
    ck_assert_int_eq(doc.root->items[0]->kind, Y_SEQ);
    ck_assert_uint_eq(doc.root->items[0]->n, 0);
    ck_assert_int_eq(doc.root->items[1]->kind, Y_MAP);
    ck_assert_uint_eq(doc.root->items[1]->n, 0);
    ck_assert_ptr_null(ynode_get(doc.root->items[1], "x"));
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

/* ---- scalars with NUL bytes --------------------------------------- */

START_TEST(test_nul_in_scalar)
{
    struct ydoc doc;
    struct diags d;
    ck_assert(load(&doc, &d, "a: \"x\\0y\"\nb: \"\\0\"\n"));
    const struct ynode *a = ynode_get(doc.root, "a");
    ck_assert_uint_eq(a->len, 3);
    ck_assert_uint_eq(strlen(a->str), 1);
    ck_assert_mem_eq(a->str, "x\0y", 4); /* NUL-terminated after len */
    const struct ynode *b = ynode_get(doc.root, "b");
    ck_assert_uint_eq(b->len, 1);
    ck_assert_uint_gt(b->len, strlen(b->str));
    ydoc_free(&doc);
    diags_free(&d);

    /* the NUL byte of the raw buffer itself ends nothing: len is honoured */
    static const char raw[] = "a: 1\nb: 2\n";
    diags_init(&d);
    ck_assert(ydoc_load_buffer(&doc, "raw", raw, 5, &d)); /* only "a: 1\n" */
    ck_assert_uint_eq(doc.root->n, 1);
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

/* ---- nesting depth ------------------------------------------------ */

START_TEST(test_depth)
{
    struct ydoc doc;
    struct diags d;
    struct buf b;
    char want[128];

    /* 64 nested lists: fine */
    buf_init(&b);
    for (int i = 0; i < 64; i++)
        buf_putc(&b, '[');
    buf_putc(&b, 'x');
    for (int i = 0; i < 64; i++)
        buf_putc(&b, ']');
    ck_assert(load(&doc, &d, b.data));
    const struct ynode *n = doc.root;
    for (int i = 0; i < 63; i++)
        n = n->items[0];
    ck_assert_int_eq(n->kind, Y_SEQ);
    assert_pos(n->items[0], Y_SCALAR, 1, 65, "x");
    ydoc_free(&doc);
    diags_free(&d);

    /* 65: refused at the 65th '[' */
    buf_reset(&b);
    for (int i = 0; i < 65; i++)
        buf_putc(&b, '[');
    for (int i = 0; i < 65; i++)
        buf_putc(&b, ']');
    ck_assert(!load(&doc, &d, b.data));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.msgs[0], "t.yaml:1:65: nesting deeper than 64 levels");
    ydoc_free(&doc);
    diags_free(&d);

    /* 1000 block mappings: refused at the 65th, line 65 */
    buf_reset(&b);
    for (int i = 0; i < 1000; i++) {
        for (int j = 0; j < i; j++)
            buf_putc(&b, ' ');
        buf_puts(&b, "k:\n");
    }
    ck_assert(!load(&doc, &d, b.data));
    ck_assert_uint_eq(d.n, 1);
    snprintf(want, sizeof want, "t.yaml:%d:%d: nesting deeper than 64 levels", 65, 65);
    ck_assert_str_eq(d.msgs[0], want);
    ydoc_free(&doc);
    diags_free(&d);
    buf_free(&b);
}
END_TEST

/* ---- large documents (arena growth) ------------------------------- */

START_TEST(test_large_document)
{
    struct ydoc doc;
    struct diags d;
    struct buf b;
    const int nkeys = 3000, nitems = 20000;
    char key[32];

    buf_init(&b);
    buf_puts(&b, "big: \"");
    for (int i = 0; i < 100000; i++)
        buf_putc(&b, (char)('a' + i % 26));
    buf_puts(&b, "\"\nmap:\n");
    for (int i = 0; i < nkeys; i++)
        buf_printf(&b, "  key%d: value%d\n", i, i);
    buf_puts(&b, "list:\n");
    for (int i = 0; i < nitems; i++)
        buf_printf(&b, "  - %d\n", i);
    buf_puts(&b, "big2: \"");
    for (int i = 0; i < 20000; i++)
        buf_putc(&b, 'z');
    buf_puts(&b, "\"\nlast: end\n");

    ck_assert(load(&doc, &d, b.data));
    const struct ynode *big = ynode_get(doc.root, "big");
    ck_assert_uint_eq(big->len, 100000);
    for (size_t i = 0; i < big->len; i++)
        if (big->str[i] != (char)('a' + i % 26))
            ck_abort_msg("big[%zu] = %c", i, big->str[i]);
    ck_assert_int_eq(big->str[big->len], '\0');
    const struct ynode *map = ynode_get(doc.root, "map");
    ck_assert_uint_eq(map->n, (size_t)nkeys);
    for (int i = 0; i < nkeys; i++) {
        snprintf(key, sizeof key, "value%d", i);
        if (strcmp(map->items[i]->str, key) != 0 || map->keys[i]->line != 3 + i || map->keys[i]->col != 3)
            ck_abort_msg("map item %d: %s at %d:%d", i, map->items[i]->str, map->keys[i]->line,
                         map->keys[i]->col);
    }
    snprintf(key, sizeof key, "key%d", nkeys - 1);
    ck_assert_str_eq(ynode_get(map, key)->str, "value2999");
    const struct ynode *list = ynode_get(doc.root, "list");
    ck_assert_uint_eq(list->n, (size_t)nitems);
    for (int i = 0; i < nitems; i++)
        if (atoi(list->items[i]->str) != i || list->items[i]->line != 4 + nkeys + i)
            ck_abort_msg("list item %d: %s at line %d", i, list->items[i]->str, list->items[i]->line);
    ck_assert_uint_eq(ynode_get(doc.root, "big2")->len, 20000);
    assert_pos(ynode_get(doc.root, "last"), Y_SCALAR, 5 + nkeys + nitems, 7, "end");
    ydoc_free(&doc);
    diags_free(&d);
    buf_free(&b);
}
END_TEST

/* ---- ynode_get / ynode_kind_name ---------------------------------- */

START_TEST(test_get)
{
    struct ydoc doc;
    struct diags d;
    ck_assert(load(&doc, &d, "a: 1\nb: [x]\nc: {d: 2}\n\"\": empty\n"));
    ck_assert_str_eq(ynode_get(doc.root, "a")->str, "1");
    ck_assert_int_eq(ynode_get(doc.root, "b")->kind, Y_SEQ);
    ck_assert_str_eq(ynode_get(ynode_get(doc.root, "c"), "d")->str, "2");
    ck_assert_str_eq(ynode_get(doc.root, "")->str, "empty");
    ck_assert_ptr_null(ynode_get(doc.root, "z"));
    ck_assert_ptr_null(ynode_get(doc.root, "A"));
    ck_assert_ptr_null(ynode_get(ynode_get(doc.root, "b"), "x"));  /* not a map */
    ck_assert_ptr_null(ynode_get(ynode_get(doc.root, "a"), "a"));  /* a scalar */
    ck_assert_ptr_null(ynode_get(NULL, "a"));
    ck_assert_str_eq(ynode_kind_name(doc.root), "a mapping");
    ck_assert_str_eq(ynode_kind_name(ynode_get(doc.root, "b")), "a list");
    ck_assert_str_eq(ynode_kind_name(ynode_get(doc.root, "a")), "a scalar");
    ck_assert_str_eq(ynode_kind_name(NULL), "nothing");
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

/* ---- ynode_repr --------------------------------------------------- */

static const struct {
    const char *yaml;   /* the value of key v */
    const char *repr;
} repr_cases[] = {
    { "plain", "\"plain\"" },
    { "\"\"", "\"\"" },
    { "", "an empty value" },
    { "[1, 2]", "a list" },
    { "{a: 1}", "a mapping" },
    { "\"say \\\"hi\\\" \\\\ back\"", "\"say \\\"hi\\\" \\\\ back\"" },
    { "\"tab\\there\\n\"", "\"tab\\x09here\\x0a\"" },
    { "\"nul\\0x\\x7f\"", "\"nul\\x00x\\x7f\"" },
    { "0123456789012345678901234567890123456789", "\"0123456789012345678901234567890123456789\"" },
    { "0123456789012345678901234567890123456789X", "\"0123456789012345678901234567890123456789...\"" },
    { "h\xc3\xa9llo", "\"h\xc3\xa9llo\"" },
};

START_TEST(test_repr)
{
    struct ydoc doc;
    struct diags d;
    char text[200], out[128];
    snprintf(text, sizeof text, "v: %s\n", repr_cases[_i].yaml);
    ck_assert_msg(load(&doc, &d, text), "%s", d.n ? d.msgs[0] : "");
    ck_assert_str_eq(ynode_repr(ynode_get(doc.root, "v"), out, sizeof out), repr_cases[_i].repr);
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

START_TEST(test_repr_limits)
{
    struct ydoc doc;
    struct diags d;
    char out[200];
    ck_assert_str_eq(ynode_repr(NULL, out, sizeof out), "nothing");
    ck_assert(load(&doc, &d, "a: abcdefgh\nb: \"\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01"
                             "\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01"
                             "\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\"\n"));
    /* cut to the caller's buffer */
    ck_assert_str_eq(ynode_repr(ynode_get(doc.root, "a"), out, 6), "\"abcd");
    ck_assert_str_eq(ynode_repr(ynode_get(doc.root, "a"), out, 1), "");
    /* 44 control characters: 40 shown escaped, then "..." */
    ynode_repr(ynode_get(doc.root, "b"), out, sizeof out);
    ck_assert_uint_eq(strlen(out), 1 + 40 * 4 + 3 + 1);
    ck_assert(strncmp(out, "\"\\x01\\x01", 9) == 0);
    ck_assert_str_eq(out + strlen(out) - 4, "...\"");
    /* a small buffer still gets a terminated prefix */
    ynode_repr(ynode_get(doc.root, "b"), out, 64);
    ck_assert_uint_eq(strlen(out), 63);
    ydoc_free(&doc);
    diags_free(&d);
}
END_TEST

/* ---- files -------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ydoc.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_file)
{
    char path[128], want[256];
    struct ydoc doc;
    struct diags d;
    make_tmpdir();

    snprintf(path, sizeof path, "%s/ok.yaml", tmpdir);
    write_file(path, "rules: /etc/postern/rules.d\nlist:\n  - a\n");
    diags_init(&d);
    ck_assert(ydoc_load_file(&doc, path, &d));
    ck_assert_uint_eq(d.n, 0);
    ck_assert_str_eq(doc.file, path);
    assert_pos(ynode_get(doc.root, "rules"), Y_SCALAR, 1, 8, "/etc/postern/rules.d");
    assert_pos(ynode_get(doc.root, "list")->items[0], Y_SCALAR, 3, 5, "a");
    ydoc_free(&doc);
    ck_assert_int_eq(unlink(path), 0);

    /* errors name the file */
    snprintf(path, sizeof path, "%s/dup.yaml", tmpdir);
    write_file(path, "a: 1\na: 2\n");
    ck_assert(!ydoc_load_file(&doc, path, &d));
    ck_assert_uint_eq(d.n, 1);
    snprintf(want, sizeof want, "%s:2:1: duplicate key \"a\" (first at line 1)", path);
    ck_assert_str_eq(d.msgs[0], want);
    ydoc_free(&doc);
    diags_free(&d);
    ck_assert_int_eq(unlink(path), 0);

    /* an empty file: no root */
    snprintf(path, sizeof path, "%s/empty.yaml", tmpdir);
    write_file(path, "");
    diags_init(&d);
    ck_assert(ydoc_load_file(&doc, path, &d));
    ck_assert_ptr_null(doc.root);
    ydoc_free(&doc);
    ck_assert_int_eq(unlink(path), 0);

    /* a missing file */
    snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
    ck_assert(!ydoc_load_file(&doc, path, &d));
    ck_assert_uint_eq(d.n, 1);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    ck_assert_str_eq(d.msgs[0], want);
    ck_assert_ptr_null(doc.root);
    ck_assert_str_eq(doc.file, path);
    ydoc_free(&doc);
    diags_free(&d);

    /* a directory */
    diags_init(&d);
    ck_assert(!ydoc_load_file(&doc, tmpdir, &d));
    ck_assert_uint_eq(d.n, 1);
    snprintf(want, sizeof want, "%s: cannot read: Is a directory", tmpdir);
    ck_assert_str_eq(d.msgs[0], want);
    ydoc_free(&doc);
    diags_free(&d);

    ck_assert_int_eq(rmdir(tmpdir), 0);
}
END_TEST

/* Errors collected from several loads accumulate in one diags. */
START_TEST(test_diags_accumulate)
{
    struct ydoc doc;
    struct diags d;
    diags_init(&d);
    ck_assert(!ydoc_load_buffer(&doc, "one.yaml", "a: *x", 5, &d));
    ydoc_free(&doc);
    ck_assert(!ydoc_load_buffer(&doc, "two.yaml", "a: [", 4, &d));
    ydoc_free(&doc);
    ck_assert(ydoc_load_buffer(&doc, "three.yaml", "a: 1", 4, &d));
    ydoc_free(&doc);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_str_eq(d.msgs[0], "one.yaml:1:4: YAML aliases (*x) are not supported in postern files");
    ck_assert(strncmp(d.msgs[1], "two.yaml:2:1: invalid YAML: ", 28) == 0);
    diags_free(&d);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, test_positions);
    tcase_add_test(tc, test_positions_block_scalar_crlf);
    tcase_add_loop_test(tc, test_refusals, 0, NCASES(refusal_cases));
    tcase_add_test(tc, test_core_tags);
    tcase_add_test(tc, test_empty_documents);
    tcase_add_test(tc, test_nul_in_scalar);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_large_document);
    tcase_add_test(tc, test_get);
    tcase_add_loop_test(tc, test_repr, 0, NCASES(repr_cases));
    tcase_add_test(tc, test_repr_limits);
    tcase_add_test(tc, test_file);
    tcase_add_test(tc, test_diags_accumulate);
}

UNIT_MAIN("ydoc", add_tests)
