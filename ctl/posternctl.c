/* posternctl.c: the operator's tool.  A table of commands, each with its
 * usage line and handler; this file only parses arguments and prints.
 *   posternctl [-c postern.yaml] [-r rules.d] check
 *   posternctl [-c postern.yaml] [-r rules.d] rules show TENANT
 *   posternctl [-c postern.yaml] config show */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "diag.h"
#include "rules.h"
#include "rules_load.h"

#define CTL_DEFAULT_CONF POSTERN_SYSCONFDIR "/postern.yaml"

struct ctl {
    const char *conf_path;     /* -c, or NULL for the default */
    const char *rules_dir;     /* -r overrides the config's rules */
    struct postern_conf conf;
};

struct ctl_cmd {
    const char *name;
    const char *sub;           /* second word, or NULL */
    int min_args, max_args;
    const char *usage;
    int (*run)(struct ctl *, int argc, char **argv);
};

/* Load the daemon config; without -c and without the default file, -r
 * alone is enough (defaults for the rest). */
static int ctl_load_conf(struct ctl *c)
{
    struct diags d;
    diags_init(&d);
    const char *path = c->conf_path ? c->conf_path : CTL_DEFAULT_CONF;
    if (c->conf_path == NULL && c->rules_dir != NULL && access(path, F_OK) != 0) {
        conf_defaults(&c->conf);
        return 0;
    }
    if (!conf_load(&c->conf, path, &d)) {
        diags_print(&d, stderr);
        fprintf(stderr, "posternctl: %zu error%s in %s\n", d.n, d.n == 1 ? "" : "s", path);
        diags_free(&d);
        return 1;
    }
    diags_free(&d);
    return 0;
}

static const char *ctl_rules_dir(const struct ctl *c)
{
    return c->rules_dir ? c->rules_dir : c->conf.rules;
}

static struct rules *ctl_load_rules(struct ctl *c, bool quiet_warnings)
{
    struct diags d, w;
    diags_init(&d);
    diags_init(&w);
    struct rules *r = rules_load(ctl_rules_dir(c), &d, &w);
    if (r == NULL) {
        diags_print(&d, stderr);
        fprintf(stderr, "posternctl: %zu error%s in the rules of %s\n", d.n, d.n == 1 ? "" : "s",
                ctl_rules_dir(c));
    }
    if (!quiet_warnings)
        diags_print(&w, stderr);
    diags_free(&d);
    diags_free(&w);
    return r;
}

static int ctl_check(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, false);
    if (r == NULL)
        return 1;
    size_t accounts = 0;
    for (size_t i = 0; i < r->n_tenants; i++) {
        rules_summary_tenant(&r->tenants[i], stdout);
        for (size_t j = 0; j < r->tenants[i].n_accounts; j++)
            accounts += !r->tenants[i].accounts[j].implicit;
    }
    printf("ok: %zu tenant%s, %zu account%s, %zu file%s in %s\n", r->n_tenants, r->n_tenants == 1 ? "" : "s",
           accounts, accounts == 1 ? "" : "s", r->n_files, r->n_files == 1 ? "" : "s", ctl_rules_dir(c));
    rules_unref(r);
    return 0;
}

static int ctl_rules_show(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;
    const struct tenant *t = rules_tenant(r, argv[0]);
    if (t == NULL) {
        fprintf(stderr, "posternctl: no tenant named \"%s\" in %s\n", argv[0], ctl_rules_dir(c));
        rules_unref(r);
        return 1;
    }
    rules_show_tenant(t, stdout);
    rules_unref(r);
    return 0;
}

static int ctl_config_show(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (ctl_load_conf(c) != 0)
        return 1;
    if (c->rules_dir) {
        /* show what this invocation would use */
        mem_free(c->conf.rules);
        c->conf.rules = mem_strdup(c->rules_dir);
    }
    conf_print(&c->conf, stdout);
    return 0;
}

static const struct ctl_cmd ctl_cmds[] = {
    { "check", NULL, 0, 0, "check", ctl_check },
    { "rules", "show", 1, 1, "rules show TENANT", ctl_rules_show },
    { "config", "show", 0, 0, "config show", ctl_config_show },
};

static void ctl_usage(FILE *out)
{
    fprintf(out, "usage: posternctl [-c postern.yaml] [-r rules.d] COMMAND\ncommands:\n");
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        fprintf(out, "  posternctl %s\n", ctl_cmds[i].usage);
}

int main(int argc, char **argv)
{
    struct ctl c;
    int ch, rc;
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };

    memset(&c, 0, sizeof c);
    while ((ch = getopt_long(argc, argv, "+c:r:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            c.conf_path = optarg;
            break;
        case 'r':
            c.rules_dir = optarg;
            break;
        case 'h':
            ctl_usage(stdout);
            return 0;
        default:
            ctl_usage(stderr);
            return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        ctl_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++) {
        const struct ctl_cmd *k = &ctl_cmds[i];
        if (strcmp(argv[0], k->name) != 0)
            continue;
        int skip = 1;
        if (k->sub) {
            if (argc < 2 || strcmp(argv[1], k->sub) != 0)
                continue;
            skip = 2;
        }
        int n = argc - skip;
        if (n < k->min_args || n > k->max_args) {
            fprintf(stderr, "usage: posternctl %s\n", k->usage);
            return 2;
        }
        rc = k->run(&c, n, argv + skip);
        conf_free(&c.conf);
        return rc;
    }
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        if (strcmp(argv[0], ctl_cmds[i].name) == 0) {
            fprintf(stderr, "usage: posternctl %s\n", ctl_cmds[i].usage);
            return 2;
        }
    fprintf(stderr, "posternctl: unknown command \"%s\"\n", argv[0]);
    ctl_usage(stderr);
    return 2;
}
