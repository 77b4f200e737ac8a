/* ctl_postfix.c: posternctl postfix-config [--check] [--json]: the main.cf
 * lines (milter, policy service) and the master.cf smtp transports (one per
 * outbound pool: bind address, IPv6 bind address, HELO name) that the
 * rules and postern.yaml need (lib/pfconf.c); with --check, what the
 * running Postfix has (postconf -n, -d, -M through cmd_run, never a shell)
 * and every difference, exit 1 when there is one, so that a monitoring
 * check can run it. */
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cmd.h"
#include "ctl.h"
#include "pfconf.h"

/* The parameters whose defaults count when main.cf does not set them. */
static const char *const default_names[] = {
    "queue_directory", "smtpd_milters", "non_smtpd_milters", "milter_default_action", "milter_protocol",
    "smtpd_recipient_restrictions", "smtpd_end_of_data_restrictions",
};

/* postconf -c DIR ARGS...: its standard output in out; false after
 * printing why it failed. */
static bool postconf_run(const struct ctl *c, const char *const *args, size_t n, struct buf *out, bool quiet)
{
    struct buf prog, err;
    buf_init(&prog);
    buf_init(&err);
    buf_printf(&prog, "%s/postconf", c->conf.milter.postfix_command_dir);
    char **argv = mem_array(n + 4, sizeof *argv);
    argv[0] = prog.data;
    argv[1] = (char *)"-c";
    argv[2] = c->conf.milter.postfix_config_dir;
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = (char *)args[i];
    argv[3 + n] = NULL;
    int rc = cmd_run(argv, out, &err);
    if (rc != 0 && !quiet)
        fprintf(stderr, "posternctl: postfix-config: %s\n",
                err.len ? err.data : "postconf failed");
    mem_free(argv);
    buf_free(&prog);
    buf_free(&err);
    return rc == 0;
}

static void json_users(const struct pfconf_transport *t)
{
    fputs("[", stdout);
    for (size_t i = 0; i < t->n_users; i++) {
        fputs(i ? ", " : "", stdout);
        ctl_put_json(stdout, t->users[i]);
    }
    fputs("]", stdout);
}

static void json_print(const struct pfconf_want *w, const struct pfconf_diffs *d, bool check)
{
    fputs("{\n  \"main_cf\": [", stdout);
    for (size_t i = 0; i < w->n_params; i++) {
        const struct pfconf_param *p = &w->params[i];
        printf("%s\n    {\"name\": ", i ? "," : "");
        ctl_put_json(stdout, p->name);
        fputs(", \"value\": ", stdout);
        ctl_put_json(stdout, p->value);
        fputs(", \"want\": ", stdout);
        ctl_put_json(stdout, p->want);
        printf(", \"match\": \"%s\"}", p->match == PFCONF_EQUAL ? "equal" : "contains");
    }
    fputs("\n  ],\n  \"master_cf\": [", stdout);
    for (size_t i = 0; i < w->n_transports; i++) {
        const struct pfconf_transport *t = &w->transports[i];
        struct buf line, pos;
        buf_init(&line);
        buf_init(&pos);
        if (!t->manual)
            pfconf_transport_line(t, &line);
        if (t->pos.file != NULL)
            buf_printf(&pos, "%s:%d", t->pos.file, t->pos.line);
        printf("%s\n    {\"transport\": ", i ? "," : "");
        ctl_put_json(stdout, t->name);
        printf(", \"managed_by_hand\": %s, \"smtp_bind_address\": ", t->manual ? "true" : "false");
        ctl_put_json(stdout, t->bind4);
        fputs(", \"smtp_bind_address6\": ", stdout);
        ctl_put_json(stdout, t->bind6);
        fputs(", \"smtp_helo_name\": ", stdout);
        ctl_put_json(stdout, t->helo);
        fputs(", \"line\": ", stdout);
        ctl_put_json(stdout, t->manual ? NULL : line.data);
        fputs(", \"rules\": ", stdout);
        ctl_put_json(stdout, pos.len ? pos.data : NULL);
        fputs(", \"used_by\": ", stdout);
        json_users(t);
        fputs("}", stdout);
        buf_free(&line);
        buf_free(&pos);
    }
    fputs("\n  ],\n  \"warnings\": [", stdout);
    for (size_t i = 0; i < w->n_warnings; i++) {
        fputs(i ? ", " : "", stdout);
        ctl_put_json(stdout, w->warnings[i]);
    }
    fputs("]", stdout);
    if (check) {
        fputs(",\n  \"differences\": [", stdout);
        for (size_t i = 0; i < d->n; i++) {
            const struct pfconf_diff *x = &d->v[i];
            printf("%s\n    {\"where\": ", i ? "," : "");
            ctl_put_json(stdout, x->where);
            fputs(", \"name\": ", stdout);
            ctl_put_json(stdout, x->name);
            fputs(", \"key\": ", stdout);
            ctl_put_json(stdout, x->key);
            fputs(", \"have\": ", stdout);
            ctl_put_json(stdout, x->have);
            fputs(", \"want\": ", stdout);
            ctl_put_json(stdout, x->want);
            fputs(", \"rules\": ", stdout);
            ctl_put_json(stdout, x->rules);
            fputs(", \"message\": ", stdout);
            ctl_put_json(stdout, x->text);
            fputs("}", stdout);
        }
        fputs(d->n ? "\n  ]" : "]", stdout);
    }
    fputs("\n}\n", stdout);
}

int ctl_postfix_config(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "check", no_argument, NULL, 'k' },        { "json", no_argument, NULL, 'j' },
        { "config", required_argument, NULL, 'c' }, { "rules", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    bool check = false, json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'k') {
            check = true;
        } else if (ch == 'j') {
            json = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    if (optind != argc)
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    struct rules *r = ctl_load_rules(c, true);
    if (r == NULL)
        return 1;

    int rc = 1;
    struct buf nout, dout, mout, qout, text;
    buf_init(&nout);
    buf_init(&dout);
    buf_init(&mout);
    buf_init(&qout);
    buf_init(&text);
    struct pfconf_main explicit, defaults;
    struct pfconf_master master;
    memset(&explicit, 0, sizeof explicit);
    memset(&defaults, 0, sizeof defaults);
    memset(&master, 0, sizeof master);
    struct pfconf_want w;
    memset(&w, 0, sizeof w);
    struct pfconf_diffs d = { NULL, 0 };
    const char *queue_dir = NULL;
    if (check) {
        static const char *const n_arg[] = { "-n" }, *const m_arg[] = { "-M" };
        const char *d_args[1 + sizeof default_names / sizeof *default_names] = { "-d" };
        for (size_t i = 0; i < sizeof default_names / sizeof *default_names; i++)
            d_args[1 + i] = default_names[i];
        if (!postconf_run(c, n_arg, 1, &nout, false) ||
            !postconf_run(c, d_args, sizeof d_args / sizeof *d_args, &dout, false) ||
            !postconf_run(c, m_arg, 1, &mout, false))
            goto out;
        pfconf_main_parse(nout.data, &explicit);
        pfconf_main_parse(dout.data, &defaults);
        pfconf_master_parse(mout.data, &master);
        queue_dir = pfconf_main_get(&explicit, "queue_directory");
        if (queue_dir == NULL)
            queue_dir = pfconf_main_get(&defaults, "queue_directory");
    } else {
        /* the unix sockets are written relative to Postfix's queue
         * directory when it can be asked; else Debian's default */
        static const char *const q_args[] = { "-h", "queue_directory" };
        if (postconf_run(c, q_args, 2, &qout, true)) {
            qout.data[strcspn(qout.data, "\n")] = '\0';
            if (qout.data[0] == '/')
                queue_dir = qout.data;
        }
    }
    pfconf_want_build(&w, r, &c->conf, queue_dir);
    for (size_t i = 0; i < w.n_errors; i++)
        fprintf(stderr, "posternctl: postfix-config: %s\n", w.errors[i]);
    if (w.n_errors > 0)
        goto out;
    if (!json)
        for (size_t i = 0; i < w.n_warnings; i++)
            fprintf(stderr, "posternctl: postfix-config: warning: %s\n", w.warnings[i]);
    if (check)
        pfconf_compare(&w, &explicit, &defaults, &master, &d);
    if (json) {
        json_print(&w, &d, check);
    } else if (check) {
        for (size_t i = 0; i < d.n; i++)
            printf("%s\n", d.v[i].text);
        if (d.n == 0)
            printf("ok: Postfix (%s) has the %zu main.cf setting%s and the %zu transport%s the rules need\n",
                   c->conf.milter.postfix_config_dir, w.n_params, w.n_params == 1 ? "" : "s",
                   w.n_transports, w.n_transports == 1 ? "" : "s");
        else
            printf("%zu difference%s between Postfix (%s) and the rules\n", d.n, d.n == 1 ? "" : "s",
                   c->conf.milter.postfix_config_dir);
    } else {
        pfconf_print_main(&w, &text);
        buf_putc(&text, '\n');
        pfconf_print_master(&w, &text);
        fputs(text.data, stdout);
    }
    rc = check && d.n > 0 ? 1 : 0;
out:
    pfconf_diffs_free(&d);
    pfconf_want_free(&w);
    pfconf_main_free(&explicit);
    pfconf_main_free(&defaults);
    pfconf_master_free(&master);
    buf_free(&nout);
    buf_free(&dout);
    buf_free(&mout);
    buf_free(&qout);
    buf_free(&text);
    rules_unref(r);
    return rc;
}
