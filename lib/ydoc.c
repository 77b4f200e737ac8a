/* ydoc.c: libyaml event stream -> position-carrying node tree (ydoc.h). */
#include "ydoc.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "alloc.h"
#include "buf.h"

#define YDOC_MAX_DEPTH 64
#define YDOC_MAX_BYTES (64u << 20)

/* Bump allocator: parsing a rule file makes many small nodes that all die
 * together, so one arena per document replaces thousands of malloc/free. */
struct yarena {
    struct yarena *next;
    size_t used, cap;
    max_align_t data[];
};

#define YARENA_CHUNK 16384

static void *yarena_alloc(struct yarena **head, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct yarena *a = *head;
    if (a == NULL || a->cap - a->used < n) {
        size_t cap = n > YARENA_CHUNK ? n : YARENA_CHUNK;
        struct yarena *c = mem_alloc(sizeof *c + cap);
        c->cap = cap;
        c->used = 0;
        if (a != NULL && n > YARENA_CHUNK) {
            /* a big block gets its own chunk behind the current one */
            c->next = a->next;
            a->next = c;
        } else {
            c->next = a;
            *head = c;
        }
        a = c;
    }
    void *p = (char *)a->data + a->used;
    a->used += n;
    memset(p, 0, n);
    return p;
}

static void yarena_free(struct yarena *a)
{
    while (a != NULL) {
        struct yarena *next = a->next;
        mem_free(a);
        a = next;
    }
}

/* Builder state: a stack of open collections; a map slot waits for its value. */
struct ybuild {
    struct yarena **arena;
    struct ynode *stack[YDOC_MAX_DEPTH];
    struct ynode *pending_key[YDOC_MAX_DEPTH];
    int depth;
    struct ynode *root;
};

static struct ynode *ynode_new(struct ybuild *b, enum ykind k, const yaml_mark_t *m)
{
    struct ynode *n = yarena_alloc(b->arena, sizeof *n);
    n->kind = k;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

/* Append to a collection, doubling its arrays inside the arena. */
static void ynode_append(struct ybuild *b, struct ynode *top, struct ynode *key, struct ynode *val)
{
    if (top->n == top->cap) {
        size_t cap = top->cap ? top->cap * 2 : 8;
        struct ynode **items = yarena_alloc(b->arena, cap * sizeof *items);
        if (top->n)
            memcpy(items, top->items, top->n * sizeof *items);
        top->items = items;
        if (top->kind == Y_MAP) {
            struct ynode **keys = yarena_alloc(b->arena, cap * sizeof *keys);
            if (top->n)
                memcpy(keys, top->keys, top->n * sizeof *keys);
            top->keys = keys;
        }
        top->cap = cap;
    }
    if (top->kind == Y_MAP)
        top->keys[top->n] = key;
    top->items[top->n++] = val;
}

static bool ybuild_add(struct ybuild *b, struct ynode *n, const char *file, struct diags *d)
{
    if (b->depth == 0) {
        b->root = n;
        return true;
    }
    struct ynode *top = b->stack[b->depth - 1];
    if (top->kind == Y_SEQ) {
        ynode_append(b, top, NULL, n);
        return true;
    }
    struct ynode *key = b->pending_key[b->depth - 1];
    if (key == NULL) {
        if (n->kind != Y_SCALAR) {
            diag_at(d, file, n->line, n->col, "expected a scalar mapping key, found %s",
                    ynode_kind_name(n));
            return false;
        }
        for (size_t i = 0; i < top->n; i++)
            if (strcmp(top->keys[i]->str, n->str) == 0) {
                diag_at(d, file, n->line, n->col, "duplicate key \"%s\" (first at line %d)",
                        n->str, top->keys[i]->line);
                return false;
            }
        b->pending_key[b->depth - 1] = n;
        return true;
    }
    ynode_append(b, top, key, n);
    b->pending_key[b->depth - 1] = NULL;
    return true;
}

/* Only the core schema's tags (!!str, !!int ...) are allowed: others
 * (!!binary, !custom, the non-specific "!") change what a value means. */
static bool ydoc_tag_ok(const yaml_char_t *tag, const char *file, const yaml_mark_t *m, struct diags *d)
{
    static const char *const core[] = { "str", "int", "float", "bool", "null", "seq", "map", NULL };
    static const char prefix[] = "tag:yaml.org,2002:";
    const char *t = (const char *)tag;
    bool yaml = t != NULL && strncmp(t, prefix, sizeof prefix - 1) == 0;
    if (t == NULL)
        return true;
    for (int i = 0; yaml && core[i]; i++)
        if (strcmp(t + sizeof prefix - 1, core[i]) == 0)
            return true;
    diag_at(d, file, (int)m->line + 1, (int)m->column + 1, "YAML tags (%s%s) are not supported in postern files",
            yaml ? "!!" : "", yaml ? t + sizeof prefix - 1 : t);
    return false;
}

static bool ydoc_parse(struct ydoc *doc, yaml_parser_t *p, struct diags *d)
{
    struct ybuild b;
    yaml_event_t ev;
    int docs = 0;
    bool ok = true, done = false;

    memset(&b, 0, sizeof b);
    b.arena = &doc->arena;
    while (ok && !done) {
        if (!yaml_parser_parse(p, &ev)) {
            diag_at(d, doc->file, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                    "invalid YAML: %s%s%s", p->problem ? p->problem : "syntax error",
                    p->context ? " " : "", p->context ? p->context : "");
            ok = false;
            break;
        }
        const yaml_mark_t *m = &ev.start_mark;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                diag_at(d, doc->file, (int)m->line + 1, (int)m->column + 1,
                        "expected one YAML document per file, found a second one");
                ok = false;
            }
            break;
        case YAML_ALIAS_EVENT:
            diag_at(d, doc->file, (int)m->line + 1, (int)m->column + 1,
                    "YAML aliases (*%s) are not supported in postern files",
                    (const char *)ev.data.alias.anchor);
            ok = false;
            break;
        case YAML_SCALAR_EVENT: {
            if (ev.data.scalar.anchor) {
                diag_at(d, doc->file, (int)m->line + 1, (int)m->column + 1,
                        "YAML anchors (&%s) are not supported in postern files",
                        (const char *)ev.data.scalar.anchor);
                ok = false;
                break;
            }
            if (!ydoc_tag_ok(ev.data.scalar.tag, doc->file, m, d)) {
                ok = false;
                break;
            }
            struct ynode *n = ynode_new(&b, Y_SCALAR, m);
            n->len = ev.data.scalar.length;
            n->str = yarena_alloc(b.arena, n->len + 1);
            memcpy(n->str, ev.data.scalar.value, n->len);
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            ok = ybuild_add(&b, n, doc->file, d);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            const yaml_char_t *anchor = ev.type == YAML_SEQUENCE_START_EVENT
                                            ? ev.data.sequence_start.anchor
                                            : ev.data.mapping_start.anchor;
            if (anchor) {
                diag_at(d, doc->file, (int)m->line + 1, (int)m->column + 1,
                        "YAML anchors (&%s) are not supported in postern files",
                        (const char *)anchor);
                ok = false;
                break;
            }
            if (!ydoc_tag_ok(ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
                                                                  : ev.data.mapping_start.tag,
                             doc->file, m, d)) {
                ok = false;
                break;
            }
            if (b.depth == YDOC_MAX_DEPTH) {
                diag_at(d, doc->file, (int)m->line + 1, (int)m->column + 1,
                        "nesting deeper than %d levels", YDOC_MAX_DEPTH);
                ok = false;
                break;
            }
            struct ynode *n = ynode_new(&b, ev.type == YAML_SEQUENCE_START_EVENT ? Y_SEQ : Y_MAP, m);
            ok = ybuild_add(&b, n, doc->file, d);
            if (ok) {
                b.pending_key[b.depth] = NULL;
                b.stack[b.depth++] = n;
            }
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            b.depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    if (!ok)
        return false;  /* the partial tree is in the arena: ydoc_free */
    doc->root = b.root;
    return true;
}

bool ydoc_load_buffer(struct ydoc *doc, const char *name, const char *text, size_t len,
                      struct diags *d)
{
    yaml_parser_t p;
    doc->file = mem_strdup(name);
    doc->root = NULL;
    doc->arena = NULL;
    if (!yaml_parser_initialize(&p)) {
        diag_at(d, name, 0, 0, "cannot initialise the YAML parser");
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    bool ok = ydoc_parse(doc, &p, d);
    yaml_parser_delete(&p);
    return ok;
}

bool ydoc_load_file(struct ydoc *doc, const char *path, struct diags *d)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[65536];
    size_t n;

    doc->file = NULL;
    doc->root = NULL;
    doc->arena = NULL;
    if (f == NULL) {
        diag_at(d, path, 0, 0, "cannot open: %s", strerror(errno));
        doc->file = mem_strdup(path);
        return false;
    }
    buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_add(&b, chunk, n);
        if (b.len > YDOC_MAX_BYTES) {
            diag_at(d, path, 0, 0, "file larger than %u bytes", YDOC_MAX_BYTES);
            fclose(f);
            buf_free(&b);
            doc->file = mem_strdup(path);
            return false;
        }
    }
    if (ferror(f)) {
        diag_at(d, path, 0, 0, "cannot read: %s", strerror(errno));
        fclose(f);
        buf_free(&b);
        doc->file = mem_strdup(path);
        return false;
    }
    fclose(f);
    bool ok = ydoc_load_buffer(doc, path, b.data, b.len, d);
    buf_free(&b);
    return ok;
}

void ydoc_free(struct ydoc *doc)
{
    yarena_free(doc->arena);
    mem_free(doc->file);
    doc->root = NULL;
    doc->file = NULL;
    doc->arena = NULL;
}

const struct ynode *ynode_get(const struct ynode *map, const char *key)
{
    if (map == NULL || map->kind != Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->str, key) == 0)
            return map->items[i];
    return NULL;
}

const char *ynode_kind_name(const struct ynode *n)
{
    if (n == NULL)
        return "nothing";
    switch (n->kind) {
    case Y_SCALAR:
        return "a scalar";
    case Y_SEQ:
        return "a list";
    case Y_MAP:
        return "a mapping";
    }
    return "?";
}

const char *ynode_repr(const struct ynode *n, char *out, size_t size)
{
    if (n == NULL || n->kind != Y_SCALAR) {
        snprintf(out, size, "%s", ynode_kind_name(n));
        return out;
    }
    if (n->len == 0 && n->plain) {
        snprintf(out, size, "an empty value");
        return out;
    }
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '"');
    for (size_t i = 0; i < n->len && i < 40; i++) {
        unsigned char c = (unsigned char)n->str[i];
        if (c == '"' || c == '\\')
            buf_printf(&b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(&b, "\\x%02x", c);
        else
            buf_putc(&b, (char)c);
    }
    if (n->len > 40)
        buf_puts(&b, "...");
    buf_putc(&b, '"');
    snprintf(out, size, "%s", b.data);
    buf_free(&b);
    return out;
}
