/* rules_load.h: loading rules.d/ into a validated snapshot.  Internal to
 * rules/: rules_load.c reads one tenant file, rules_check.c validates
 * across files, rules_index.c builds the lookup index. */
#ifndef POSTERN_RULES_LOAD_H
#define POSTERN_RULES_LOAD_H
#include "diag.h"
#include "rules.h"

/* Load every *.yaml and *.yml file of dir (sorted by name; hidden files ignored).
 * Returns a snapshot with one reference, or NULL after adding every error
 * found to d.  Warnings (non-fatal) go to warn when it is not NULL. */
struct rules *rules_load(const char *dir, struct diags *d, struct diags *warn);
/* rules_load() for a daemon: the errors printed to stderr with "PROG: N
 * errors in the rules of DIR"; the warnings printed too when
 * print_warnings (-n), else logged (event=rules_warning, level warning). */
struct rules *rules_load_report(const char *prog, const char *dir, bool print_warnings);
/* Load a list of files (used by rules_load and by tests). */
struct rules *rules_load_files(const char *dir, char **files, size_t n, struct diags *d,
                               struct diags *warn);

/* Internal steps. */
bool rules_load_tenant(struct tenant *t, const char *file, struct diags *d);
void rules_tenant_free(struct tenant *t);
bool rules_check_cross(struct rules *r, struct diags *d);
void rules_check_warn(const struct rules *r, struct diags *warn);
void rules_free(struct rules *r);

#endif
