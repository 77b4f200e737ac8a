/* ydoc.h: a YAML file loaded (with libyaml) into a small tree whose every
 * node keeps its line and column, so that the config and rule loaders can
 * name file:line:column in each error.  Anchors, aliases, tags other than
 * the core ones and several documents per file are refused: rule files are
 * plain data, and refusing aliases rules out "billion laughs" inputs. */
#ifndef POSTERN_YDOC_H
#define POSTERN_YDOC_H
#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

enum ykind { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
    enum ykind kind;
    int line, col;             /* 1-based */
    char *str;                 /* scalar text (NUL-terminated) */
    size_t len;                /* scalar length (may hold NUL bytes) */
    bool plain;                /* scalar was unquoted */
    size_t n;                  /* items of a seq, pairs of a map */
    struct ynode **items;      /* seq items, or map values */
    struct ynode **keys;       /* map keys (always scalars) */
    size_t cap;                /* allocated items (and keys) */
};

struct yarena;

/* Every node and string of a document lives in one arena, freed at once. */
struct ydoc {
    char *file;                /* name used in diagnostics */
    struct ynode *root;        /* NULL for an empty document */
    struct yarena *arena;
};

/* Load a file (or a buffer); on error add diagnostics and return false. */
bool ydoc_load_file(struct ydoc *doc, const char *path, struct diags *d);
bool ydoc_load_buffer(struct ydoc *doc, const char *name, const char *text, size_t len,
                      struct diags *d);
void ydoc_free(struct ydoc *doc);

/* Value of key in a map, or NULL. */
const struct ynode *ynode_get(const struct ynode *map, const char *key);
/* "a scalar", "a list", "a mapping": for "expected X, found Y" messages. */
const char *ynode_kind_name(const struct ynode *n);
/* Short printable rendering of a node for "found ..." (scalars quoted,
 * truncated to ~40 characters, control characters escaped). */
const char *ynode_repr(const struct ynode *n, char *out, size_t size);

#endif
