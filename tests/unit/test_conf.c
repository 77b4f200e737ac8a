/* test_conf.c: unit tests of lib/conf.c, the daemon configuration
 * postern.yaml loaded through one key table: defaults for an empty file,
 * every key of a full file read back, the exact file:line:column errors
 * (unknown keys with the allowed ones, wrong types, bounds, enums,
 * endpoints, paths, time zones, several errors at once), conf_print
 * (every key, and its output loads back to the same values), the table
 * itself, and conf_endpoint_valid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "grammar.h"
#include "ptime.h"
#include "unit.h"

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char tmpdir[64];
static char conf_path[128];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_conf.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(conf_path, sizeof conf_path, "%s/postern.yaml", tmpdir);
}

/* Remove the files, and put the process back in UTC: conf_load selects
 * the configured zone (and CK_FORK=no runs every test in one process). */
static void teardown(void)
{
    char p[160];
    unlink(conf_path);
    snprintf(p, sizeof p, "%s/printed.yaml", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    tz_select("UTC");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static bool load_text(const char *text, struct postern_conf *c, struct diags *d)
{
    write_file(conf_path, text);
    diags_init(d);
    return conf_load(c, conf_path, d);
}

/* conf_print into a malloc'ed string */
static char *print_conf(const struct postern_conf *c)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    ck_assert_ptr_nonnull(f);
    conf_print(c, f);
    ck_assert_int_eq(fclose(f), 0);
    return s;
}

static const struct conf_key *key(const char *path)
{
    for (size_t i = 0; i < conf_table_size; i++)
        if (strcmp(conf_table[i].path, path) == 0)
            return &conf_table[i];
    ck_abort_msg("no key %s", path);
    return NULL;
}

/* ---- defaults ----------------------------------------------------- */

static void check_defaults(const struct postern_conf *c)
{
    ck_assert_str_eq(c->rules, key("rules")->def);
    ck_assert_str_eq(c->state_dir, key("state_dir")->def);
    ck_assert_str_eq(c->timezone, "UTC");
    ck_assert_str_eq(c->user, "postern");
    ck_assert_int_eq(c->log_level, 1); /* info */
    ck_assert_uint_eq(c->policyd.listen.n, 1);
    ck_assert_str_eq(c->policyd.listen.v[0], "unix:/var/spool/postfix/private/postern-policy");
    ck_assert_int_eq(c->policyd.on_error, ON_ERROR_DUNNO);
    ck_assert_str_eq(c->policyd.pid_file, "/run/postern/policyd.pid");
    ck_assert_uint_eq(c->policyd.idle_timeout_ms, 300000);
    ck_assert_uint_eq(c->policyd.max_connections, 1000);
    ck_assert_uint_eq(c->policyd.max_request_bytes, 65536);
    ck_assert_str_eq(c->milter.listen, "unix:/var/spool/postfix/private/postern-milter");
    ck_assert_int_eq(c->milter.on_error, MILTER_ON_ERROR_TEMPFAIL);
    ck_assert_str_eq(c->milter.authserv_id, "localhost");
    ck_assert_str_eq(c->milter.pid_file, "/run/postern/milter.pid");
    ck_assert_uint_eq(c->milter.scan_memory, 1u << 20);
    ck_assert_ptr_null(c->milter.spool_dir);
    ck_assert_ptr_null(c->clamd.socket);
    ck_assert_ptr_null(c->spamd.socket);
    ck_assert_int_eq(c->clamd.on_failure, ON_FAILURE_TEMPFAIL);
    ck_assert_int_eq(c->spamd.on_failure, ON_FAILURE_ACCEPT);
    ck_assert_uint_eq(c->clamd.connect_timeout_ms, 5000);
    ck_assert_uint_eq(c->clamd.timeout_ms, 60000);
    ck_assert_uint_eq(c->spamd.timeout_ms, 30000);
    ck_assert_uint_eq(c->clamd.connections, 10);
    ck_assert_uint_eq(c->spamd.connections, 5);
    ck_assert_uint_eq(c->clamd.max_size, 25u << 20);
    ck_assert_uint_eq(c->spamd.max_size, 500u << 10);
}

START_TEST(test_defaults)
{
    struct postern_conf c, def;
    struct diags d;
    ck_assert(load_text("", &c, &d));
    ck_assert_uint_eq(d.n, 0);
    ck_assert_str_eq(c.file, conf_path);
    check_defaults(&c);
    /* a file of comments only: the same */
    conf_free(&c);
    ck_assert(load_text("# nothing set here\n\n", &c, &d));
    check_defaults(&c);
    /* conf_defaults gives what an empty file gives */
    conf_defaults(&def);
    check_defaults(&def);
    ck_assert_ptr_null(def.file);
    char *a = print_conf(&c), *b = print_conf(&def);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    conf_free(&def);
    conf_free(&c);
    ck_assert_ptr_null(c.rules);
    ck_assert_ptr_null(c.file);
    ck_assert_uint_eq(c.policyd.listen.n, 0);
    diags_free(&d);
}
END_TEST

/* ---- a full file -------------------------------------------------- */

static const char full_yaml[] =
    "# every key set\n"
    "rules: /etc/x/rules.d\n"
    "state_dir: /var/lib/x\n"
    "timezone: Europe/Paris\n"
    "user: mail\n"
    "log_level: debug\n"
    "policyd:\n"
    "  listen:\n"
    "    - unix:/x\n"
    "    - inet:127.0.0.1:10040\n"
    "  on_error: defer\n"
    "  pid_file: /run/x/policyd.pid\n"
    "  idle_timeout: 30s\n"
    "  max_connections: 50\n"
    "  max_request_bytes: 2048\n"
    "milter:\n"
    "  listen: inet:127.0.0.1:8891\n"
    "  on_error: accept\n"
    "  authserv_id: mx.example.com\n"
    "  pid_file: /run/x/milter.pid\n"
    "  scan_memory: 64K\n"
    "  spool_dir: /var/tmp\n"
    "clamd: unix:/run/clamav/clamd.sock\n"
    "spamd:\n"
    "  socket: inet:[::1]:783\n"
    "  on_failure: tempfail\n"
    "  connect_timeout: 250ms\n"
    "  timeout: 2s\n"
    "  connections: 3\n";

static void check_full(const struct postern_conf *c)
{
    ck_assert_str_eq(c->rules, "/etc/x/rules.d");
    ck_assert_str_eq(c->state_dir, "/var/lib/x");
    ck_assert_str_eq(c->timezone, "Europe/Paris");
    ck_assert_str_eq(c->user, "mail");
    ck_assert_int_eq(c->log_level, 0); /* debug */
    ck_assert_uint_eq(c->policyd.listen.n, 2);
    ck_assert_str_eq(c->policyd.listen.v[0], "unix:/x");
    ck_assert_str_eq(c->policyd.listen.v[1], "inet:127.0.0.1:10040");
    ck_assert_int_eq(c->policyd.on_error, ON_ERROR_DEFER);
    ck_assert_str_eq(c->policyd.pid_file, "/run/x/policyd.pid");
    ck_assert_uint_eq(c->policyd.idle_timeout_ms, 30000);
    ck_assert_uint_eq(c->policyd.max_connections, 50);
    ck_assert_uint_eq(c->policyd.max_request_bytes, 2048);
    ck_assert_str_eq(c->milter.listen, "inet:127.0.0.1:8891");
    ck_assert_int_eq(c->milter.on_error, MILTER_ON_ERROR_ACCEPT);
    ck_assert_str_eq(c->milter.authserv_id, "mx.example.com");
    ck_assert_str_eq(c->milter.pid_file, "/run/x/milter.pid");
    ck_assert_uint_eq(c->milter.scan_memory, 65536);
    ck_assert_str_eq(c->milter.spool_dir, "/var/tmp");
    ck_assert_str_eq(c->clamd.socket, "unix:/run/clamav/clamd.sock");
    ck_assert_int_eq(c->clamd.on_failure, ON_FAILURE_TEMPFAIL);
    ck_assert_str_eq(c->spamd.socket, "inet:[::1]:783");
    ck_assert_int_eq(c->spamd.on_failure, ON_FAILURE_TEMPFAIL);
    ck_assert_uint_eq(c->spamd.connect_timeout_ms, 250);
    ck_assert_uint_eq(c->spamd.timeout_ms, 2000);
    ck_assert_uint_eq(c->spamd.connections, 3);
}

START_TEST(test_full_file)
{
    struct postern_conf c;
    struct diags d;
    char out[40];
    ck_assert_msg(load_text(full_yaml, &c, &d), "%s", d.n ? d.msgs[0] : "");
    ck_assert_uint_eq(d.n, 0);
    check_full(&c);
    /* the zone is in force for calendar windows */
    time_format(0, out, sizeof out);
    ck_assert_str_eq(out, "1970-01-01T01:00:00+01:00");
    conf_free(&c);
    diags_free(&d);
}
END_TEST

/* Bounds are inclusive; a single endpoint is a list of one; the last of a
 * repeated list wins over the default rather than adding to it. */
START_TEST(test_edges_accepted)
{
    struct postern_conf c;
    struct diags d;
    ck_assert(load_text("policyd:\n  idle_timeout: 1s\n  max_connections: 1\n  max_request_bytes: 1024\n"
                        "  listen: inet:localhost:1\n",
                        &c, &d));
    ck_assert_uint_eq(c.policyd.idle_timeout_ms, 1000);
    ck_assert_uint_eq(c.policyd.max_connections, 1);
    ck_assert_uint_eq(c.policyd.max_request_bytes, 1024);
    ck_assert_uint_eq(c.policyd.listen.n, 1);
    ck_assert_str_eq(c.policyd.listen.v[0], "inet:localhost:1");
    conf_free(&c);
    diags_free(&d);

    ck_assert(load_text("policyd:\n  idle_timeout: 1h\n  max_connections: 100000\n  max_request_bytes: 1M\n",
                        &c, &d) == false);
    ck_assert_uint_eq(d.n, 1); /* sizes are not whole numbers */
    diags_free(&d);

    ck_assert(load_text("policyd:\n  idle_timeout: 59m60s\n  max_connections: 100000\n"
                        "  max_request_bytes: 1048576\n  listen: [inet:h:65535]\n",
                        &c, &d));
    ck_assert_uint_eq(c.policyd.idle_timeout_ms, 3600000);
    ck_assert_uint_eq(c.policyd.max_connections, 100000);
    ck_assert_uint_eq(c.policyd.max_request_bytes, 1048576);
    conf_free(&c);
    diags_free(&d);

    /* timezone UTC, and another zone */
    ck_assert(load_text("timezone: Asia/Kolkata\n", &c, &d));
    ck_assert_str_eq(c.timezone, "Asia/Kolkata");
    conf_free(&c);
    diags_free(&d);
}
END_TEST

/* A dotted key at the top level is not a shortcut: sections are mappings. */
START_TEST(test_dotted_top_level_key)
{
    struct postern_conf c;
    struct diags d;
    ck_assert(!load_text("policyd.max_connections: 7\n", &c, &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.msgs[0], "unknown key \"policyd.max_connections\""));
    diags_free(&d);
}
END_TEST

/* ---- errors ------------------------------------------------------- */

static const struct {
    const char *text;
    const char *errs[5];   /* after "<path>:" */
} err_cases[] = {
    { "foo: 1\n",
      { "1:1: unknown key \"foo\" (expected one of: rules, state_dir, timezone, user, log_level, policyd, milter, "
        "clamd, spamd)" } },
    { "policyd:\n  foo: 1\n",
      { "2:3: unknown key \"foo\" in policyd (expected one of: listen, on_error, pid_file, idle_timeout, "
        "max_connections, max_request_bytes, sync)" } },
    { "milter:\n  bar: 1\n",
      { "2:3: unknown key \"bar\" in milter (expected one of: listen, on_error, authserv_id, pid_file, dns_timeout, "
        "dkim_verify_max, public_suffix_list, inbound_temperror, inbound_bad_from, scan_memory, spool_dir, postfix_config_dir, postfix_command_dir, hold_reconcile)" } },
    { "Rules: /x\n",
      { "1:1: unknown key \"Rules\" (expected one of: rules, state_dir, timezone, user, log_level, policyd, milter, "
        "clamd, spamd)" } },
    { "user: [a, b]\n", { "1:7: user: expected a single value, found a list" } },
    { "user: {a: 1}\n", { "1:7: user: expected a single value, found a mapping" } },
    { "user: \"\"\n", { "1:7: user: expected a non-empty value" } },
    { "user:\n", { "1:6: user: expected a non-empty value" } },
    { "milter:\n  listen: [unix:/a]\n", { "2:11: milter.listen: expected a single value, found a list" } },
    { "policyd:\n  listen:\n    a: b\n", { "3:5: policyd.listen: expected a single value, found a mapping" } },
    { "policyd:\n  idle_timeout: 10ms\n",
      { "2:17: policyd.idle_timeout: expected a duration from 1s to 1h, found \"10ms\"" } },
    { "policyd:\n  idle_timeout: 999ms\n",
      { "2:17: policyd.idle_timeout: expected a duration from 1s to 1h, found \"999ms\"" } },
    { "policyd:\n  idle_timeout: 2h\n",
      { "2:17: policyd.idle_timeout: expected a duration from 1s to 1h, found \"2h\"" } },
    { "policyd:\n  idle_timeout: 10\n",
      { "2:17: policyd.idle_timeout: expected a duration like 20s (units ms, s, m, h, d), found \"10\"" } },
    { "policyd:\n  max_connections: 0\n",
      { "2:20: policyd.max_connections: expected a number from 1 to 100000, found \"0\"" } },
    { "policyd:\n  max_connections: 100001\n",
      { "2:20: policyd.max_connections: expected a number from 1 to 100000, found \"100001\"" } },
    { "policyd:\n  max_connections: -1\n",
      { "2:20: policyd.max_connections: expected a whole number, found \"-1\"" } },
    { "policyd:\n  max_connections: 99999999999999999999\n",
      { "2:20: policyd.max_connections: expected a whole number at most 18446744073709551615, found "
        "\"99999999999999999999\"" } },
    { "policyd:\n  max_request_bytes: 1023\n",
      { "2:22: policyd.max_request_bytes: expected a number from 1024 to 1048576, found \"1023\"" } },
    { "log_level: verbose\n",
      { "1:12: log_level: expected debug, info, notice, warning or error, found \"verbose\"" } },
    { "policyd:\n  on_error: reject\n", { "2:13: policyd.on_error: expected dunno or defer, found \"reject\"" } },
    { "milter:\n  on_error: reject\n", { "2:13: milter.on_error: expected tempfail or accept, found \"reject\"" } },
    { "clamd: tcp:1.2.3.4\n", { "1:8: clamd: expected unix:/path or inet:host:port, found \"tcp:1.2.3.4\"" } },
    { "spamd: inet:host\n", { "1:8: spamd: expected inet:host:port (port 1-65535), found \"inet:host\"" } },
    { "spamd: inet:h:70000\n", { "1:8: spamd: expected inet:host:port (port 1-65535), found \"inet:h:70000\"" } },
    { "spamd: inet:h:0\n", { "1:8: spamd: expected inet:host:port (port 1-65535), found \"inet:h:0\"" } },
    { "milter:\n  scan_memory: 1K\n",
      { "2:16: milter.scan_memory: expected a size from 4K to 1G, found \"1K\"" } },
    { "clamd:\n  on_failure: reject\n", { "2:15: clamd.on_failure: expected tempfail or accept, found \"reject\"" } },
    { "spamd:\n  timeout: 5m\n", { "2:12: spamd.timeout: expected a duration from 100ms to 4m, found \"5m\"" } },
    { "clamd:\n  sock: unix:/x\n",
      { "2:3: unknown key \"sock\" in clamd (expected one of: socket, on_failure, connect_timeout, timeout, "
        "connections, max_size)" } },
    { "spamd: [inet:h:1]\n", { "1:8: spamd: expected a mapping, found a list" } },
    { "spamd: inet::783\n", { "1:8: spamd: expected inet:host:port (port 1-65535), found \"inet::783\"" } },
    { "clamd: unix:relative\n",
      { "1:8: clamd: expected unix:/absolute/path (at most 107 characters), found \"unix:relative\"" } },
    { "milter:\n  listen: /run/milter.sock\n",
      { "2:11: milter.listen: expected unix:/path or inet:host:port, found \"/run/milter.sock\"" } },
    { "rules: etc/rules.d\n", { "1:8: rules: expected an absolute path, found \"etc/rules.d\"" } },
    { "state_dir: ~/x\n", { "1:12: state_dir: expected an absolute path, found \"~/x\"" } },
    { "policyd:\n  pid_file: policyd.pid\n",
      { "2:13: policyd.pid_file: expected an absolute path, found \"policyd.pid\"" } },
    { "timezone: Mars/Olympus\n",
      { "1:11: timezone: expected a time zone like UTC or Europe/Paris, found \"Mars/Olympus\"" } },
    { "timezone: ../../etc/passwd\n",
      { "1:11: timezone: expected a time zone like UTC or Europe/Paris, found \"../../etc/passwd\"" } },
    { "timezone: zone.tab\n",
      { "1:11: timezone: expected a time zone like UTC or Europe/Paris, found \"zone.tab\"" } },
    { "policyd: 5\n", { "1:10: policyd: expected a mapping, found \"5\"" } },
    { "policyd: [a]\n", { "1:10: policyd: expected a mapping, found a list" } },
    { "policyd:\n", { "1:9: policyd: expected a mapping, found an empty value" } },
    { "policyd:\n  listen: []\n", { "2:11: policyd.listen: expected at least one endpoint" } },
    { "policyd:\n  listen: [unix:/a, [x]]\n", { "2:21: policyd.listen: expected an endpoint, found a list" } },
    { "policyd:\n  listen:\n    - unix:/a\n    - tcp:x\n",
      { "4:7: policyd.listen: expected unix:/path or inet:host:port, found \"tcp:x\"" } },
    { "rules: \"/a\\0b\"\n", { "1:8: rules: expected a single value, found \"/a\\x00b\"" } },
    { "- a\n", { "1:1: expected a mapping of settings, found a list" } },
    { "just text\n", { "1:1: expected a mapping of settings, found \"just text\"" } },
    /* an explicit empty document is an empty scalar, not an empty file */
    { "---\n", { "2:1: expected a mapping of settings, found an empty value" } },
    { "a: b: c\n", { "1:5: invalid YAML: mapping values are not allowed in this context" } },
    { "rules: /a\nrules: /b\n", { "2:1: duplicate key \"rules\" (first at line 1)" } },
    { "user: &u x\n", { "1:7: YAML anchors (&u) are not supported in postern files" } },
    /* several errors: every one, in file order */
    { "foo: 1\n"
      "user: [x]\n"
      "policyd:\n"
      "  max_connections: 0\n"
      "  bar: 2\n"
      "clamd: tcp:x\n",
      { "1:1: unknown key \"foo\" (expected one of: rules, state_dir, timezone, user, log_level, policyd, milter, "
        "clamd, spamd)",
        "2:7: user: expected a single value, found a list",
        "4:20: policyd.max_connections: expected a number from 1 to 100000, found \"0\"",
        "5:3: unknown key \"bar\" in policyd (expected one of: listen, on_error, pid_file, idle_timeout, "
        "max_connections, max_request_bytes, sync)",
        "6:8: clamd: expected unix:/path or inet:host:port, found \"tcp:x\"" } },
    { "policyd:\n  listen: [tcp:a, unix:/ok, tcp:b]\n",
      { "2:12: policyd.listen: expected unix:/path or inet:host:port, found \"tcp:a\"",
        "2:29: policyd.listen: expected unix:/path or inet:host:port, found \"tcp:b\"" } },
};

START_TEST(test_errors)
{
    struct postern_conf c;
    struct diags d;
    char want[512];
    size_t n = 0;
    while (n < 5 && err_cases[_i].errs[n] != NULL)
        n++;
    bool ok = load_text(err_cases[_i].text, &c, &d);
    ck_assert_msg(!ok, "case %d accepted", _i);
    for (size_t i = 0; i < d.n && i < n; i++) {
        snprintf(want, sizeof want, "%s:%s", conf_path, err_cases[_i].errs[i]);
        ck_assert_str_eq(d.msgs[i], want);
    }
    ck_assert_msg(d.n == n, "case %d: %zu errors, want %zu; first: %s", _i, d.n, n, d.n ? d.msgs[0] : "");
    /* the configuration is freed after errors */
    ck_assert_ptr_null(c.rules);
    ck_assert_ptr_null(c.file);
    ck_assert_uint_eq(c.policyd.listen.n, 0);
    diags_free(&d);
}
END_TEST

START_TEST(test_missing_file)
{
    struct postern_conf c;
    struct diags d;
    char want[256];
    diags_init(&d);
    snprintf(conf_path, sizeof conf_path, "%s/none.yaml", tmpdir);
    ck_assert(!conf_load(&c, conf_path, &d));
    ck_assert_uint_eq(d.n, 1);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", conf_path);
    ck_assert_str_eq(d.msgs[0], want);
    ck_assert_ptr_null(c.rules);
    diags_free(&d);
}
END_TEST

START_TEST(test_unix_path_length)
{
    struct postern_conf c;
    struct diags d;
    char text[300], path[120];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    path[107] = '\0'; /* "unix:" + 107 characters: the sun_path limit */
    snprintf(text, sizeof text, "clamd: unix:%s\n", path);
    ck_assert(load_text(text, &c, &d));
    ck_assert_uint_eq(strlen(c.clamd.socket), 5 + 107);
    conf_free(&c);
    diags_free(&d);
    path[107] = 'p';
    path[108] = '\0';
    snprintf(text, sizeof text, "clamd: unix:%s\n", path);
    ck_assert(!load_text(text, &c, &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert(strstr(d.msgs[0], ":1:8: clamd: expected unix:/absolute/path (at most 107 characters)") != NULL);
    diags_free(&d);
}
END_TEST

/* ---- conf_print --------------------------------------------------- */

START_TEST(test_print)
{
    static const char *const want[] = {
        "rules: /etc/x/rules.d",
        "state_dir: /var/lib/x",
        "timezone: Europe/Paris",
        "user: mail",
        "log_level: debug",
        "policyd:",
        "  listen: [unix:/x, inet:127.0.0.1:10040]",
        "  on_error: defer",
        "  pid_file: /run/x/policyd.pid",
        "  idle_timeout: 30s",
        "  max_connections: 50",
        "  max_request_bytes: 2048",
        "  sync: normal",
        "milter:",
        "  listen: inet:127.0.0.1:8891",
        "  on_error: accept",
        "  authserv_id: mx.example.com",
        "  pid_file: /run/x/milter.pid",
        "  dns_timeout: 5s",
        "  dkim_verify_max: 5",
        "  public_suffix_list: /usr/share/publicsuffix/public_suffix_list.dat",
        "  inbound_temperror: tempfail",
        "  inbound_bad_from: reject",
        "  scan_memory: 64K",
        "  spool_dir: /var/tmp",
        "  postfix_config_dir: /etc/postfix",
        "  postfix_command_dir: /usr/sbin",
        "  hold_reconcile: 1m",
        "clamd:",
        "  socket: unix:/run/clamav/clamd.sock",
        "  on_failure: tempfail",
        "  connect_timeout: 5s",
        "  timeout: 1m",
        "  connections: 10",
        "  max_size: 25M",
        "spamd:",
        "  socket: inet:[::1]:783",
        "  on_failure: tempfail",
        "  connect_timeout: 250ms",
        "  timeout: 2s",
        "  connections: 3",
        "  max_size: 500K",
        NULL,
    };
    struct postern_conf c;
    struct diags d;
    ck_assert(load_text(full_yaml, &c, &d));
    char *out = print_conf(&c);
    /* line by line, with each key's help as a trailing comment */
    char *save = NULL, *line = strtok_r(out, "\n", &save);
    size_t k = 0;
    for (int i = 0; want[i]; i++, line = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(line != NULL, "output ends before \"%s\"", want[i]);
        if (want[i][strlen(want[i]) - 1] == ':') {
            ck_assert_str_eq(line, want[i]);
            continue;
        }
        char *hash = strstr(line, "   # ");
        ck_assert_msg(hash != NULL, "no help on \"%s\"", line);
        *hash = '\0';
        ck_assert_str_eq(line, want[i]);
        ck_assert_str_eq(hash + 5, conf_table[k].help);
        k++;
    }
    ck_assert_ptr_null(line);
    ck_assert_uint_eq(k, conf_table_size); /* every key printed */
    free(out);
    conf_free(&c);
    diags_free(&d);
}
END_TEST

/* Whatever conf_print writes loads back to the same configuration. */
START_TEST(test_print_round_trip)
{
    static const char *const texts[] = {
        full_yaml,
        "",
        "policyd:\n  idle_timeout: 1500ms\n  listen: inet:127.0.0.1:1\n",
    };
    char printed[160];
    snprintf(printed, sizeof printed, "%s/printed.yaml", tmpdir);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct postern_conf c, back;
        struct diags d;
        ck_assert(load_text(texts[i], &c, &d));
        char *out = print_conf(&c);
        write_file(printed, out);
        ck_assert_msg(conf_load(&back, printed, &d), "printed config does not load: %s\n%s",
                      d.n ? d.msgs[0] : "", out);
        char *again = print_conf(&back);
        ck_assert_str_eq(again, out);
        if (i == 0)
            check_full(&back);
        if (i == 2)
            ck_assert_uint_eq(back.policyd.idle_timeout_ms, 1500);
        free(out);
        free(again);
        conf_free(&c);
        conf_free(&back);
        diags_free(&d);
    }
}
END_TEST

/* ---- the table ---------------------------------------------------- */

/* Each key: help text, unique path, and its default is valid in a file
 * (conf_defaults ignores errors, so a bad default would go unnoticed). */
START_TEST(test_table)
{
    char text[512];
    for (size_t i = 0; i < conf_table_size; i++) {
        const struct conf_key *k = &conf_table[i];
        ck_assert_msg(k->help != NULL && k->help[0] != '\0', "%s: no help", k->path);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(conf_table[j].path, k->path) != 0, "%s twice", k->path);
        ck_assert_msg(k->type != CONF_ENUM || k->words != NULL, "%s: enum without words", k->path);
        ck_assert_msg(k->min <= k->max, "%s: min > max", k->path);
        if (k->def == NULL)
            continue;
        const char *dot = strchr(k->path, '.');
        if (dot)
            snprintf(text, sizeof text, "%.*s:\n  %s: \"%s\"\n", (int)(dot - k->path), k->path, dot + 1, k->def);
        else
            snprintf(text, sizeof text, "%s: \"%s\"\n", k->path, k->def);
        struct postern_conf c;
        struct diags d;
        ck_assert_msg(load_text(text, &c, &d), "default of %s: %s", k->path, d.n ? d.msgs[0] : "");
        conf_free(&c);
        diags_free(&d);
    }
}
END_TEST

/* ---- conf_endpoint_valid ------------------------------------------ */

static const struct {
    const char *s;
    bool ok;
    const char *err;
} ep_cases[] = {
    { "unix:/x", true, NULL },
    { "unix:/", true, NULL },
    { "unix:/var/spool/postfix/private/postern-policy", true, NULL },
    { "inet:127.0.0.1:10040", true, NULL },
    { "inet:localhost:25", true, NULL },
    { "inet:[::1]:783", true, NULL },
    { "inet:::1:783", true, NULL }, /* the port is after the last ':' */
    { "inet:h:65535", true, NULL },
    { "inet:h:1", true, NULL },
    { "inet:h:0025", true, NULL }, /* leading zeros in the port */
    { "inet:h:65536", false, "expected inet:host:port (port 1-65535), found \"inet:h:65536\"" },
    { "inet:h:0", false, "expected inet:host:port (port 1-65535), found \"inet:h:0\"" },
    { "inet:h:", false, "expected inet:host:port (port 1-65535), found \"inet:h:\"" },
    { "inet:h:-1", false, "expected inet:host:port (port 1-65535), found \"inet:h:-1\"" },
    { "inet:h: 25", false, "expected inet:host:port (port 1-65535), found \"inet:h: 25\"" },
    { "inet:h:smtp", false, "expected inet:host:port (port 1-65535), found \"inet:h:smtp\"" },
    { "inet::25", false, "expected inet:host:port (port 1-65535), found \"inet::25\"" },
    { "inet:h", false, "expected inet:host:port (port 1-65535), found \"inet:h\"" },
    { "inet:", false, "expected inet:host:port (port 1-65535), found \"inet:\"" },
    { "unix:x", false, "expected unix:/absolute/path (at most 107 characters), found \"unix:x\"" },
    { "unix:", false, "expected unix:/absolute/path (at most 107 characters), found \"unix:\"" },
    { "UNIX:/x", false, "expected unix:/path or inet:host:port, found \"UNIX:/x\"" },
    { "tcp:1.2.3.4", false, "expected unix:/path or inet:host:port, found \"tcp:1.2.3.4\"" },
    { "inet6:[::1]:25", false, "expected unix:/path or inet:host:port, found \"inet6:[::1]:25\"" },
    { "/run/x.sock", false, "expected unix:/path or inet:host:port, found \"/run/x.sock\"" },
    { "", false, "expected unix:/path or inet:host:port, found \"\"" },
};

START_TEST(test_endpoint_valid)
{
    char err[GRAM_ERR_MAX] = "";
    bool ok = conf_endpoint_valid(ep_cases[_i].s, err, sizeof err);
    ck_assert_msg(ok == ep_cases[_i].ok, "\"%s\": ok=%d err=%s", ep_cases[_i].s, ok, err);
    if (!ok)
        ck_assert_str_eq(err, ep_cases[_i].err);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_edges_accepted);
    tcase_add_test(tc, test_dotted_top_level_key);
    tcase_add_loop_test(tc, test_errors, 0, NCASES(err_cases));
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_unix_path_length);
    tcase_add_test(tc, test_print);
    tcase_add_test(tc, test_print_round_trip);
    tcase_add_test(tc, test_table);
    tcase_add_loop_test(tc, test_endpoint_valid, 0, NCASES(ep_cases));
}

UNIT_MAIN("conf", add_tests)
