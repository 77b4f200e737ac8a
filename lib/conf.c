/* conf.c: postern.yaml through a declarative key table (conf.h). */
#include "conf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "grammar.h"
#include "ptime.h"
#include "ydoc.h"

#define OFF(f) offsetof(struct postern_conf, f)

static const char *const on_error_words[] = { "dunno", "defer", NULL };
static const char *const milter_on_error_words[] = { "tempfail", "accept", NULL };
static const char *const temperror_words[] = { "tempfail", "accept", NULL };
static const char *const bad_from_words[] = { "reject", "accept", NULL };
static const char *const on_failure_words[] = { "tempfail", "accept", NULL };
static const char *const sync_words[] = { "normal", "full", NULL };
static const char *const log_level_words[] = { "debug", "info", "notice", "warning", "error", NULL };

const struct conf_key conf_table[] = {
    { "rules", CONF_PATH, OFF(rules), POSTERN_SYSCONFDIR "/rules.d", 0, 0, NULL,
      "directory of tenant rule files (*.yaml, *.yml)" },
    { "state_dir", CONF_PATH, OFF(state_dir), POSTERN_STATEDIR, 0, 0, NULL,
      "SQLite files: one per daemon; posternctl reads both" },
    { "timezone", CONF_TIMEZONE, OFF(timezone), "UTC", 0, 0, NULL,
      "time zone of the calendar windows of quotas" },
    { "user", CONF_STRING, OFF(user), "postern", 0, 0, NULL,
      "user the daemons run as after binding their sockets" },
    { "log_level", CONF_ENUM, OFF(log_level), "info", 0, 0, log_level_words,
      "lowest level logged" },
    { "policyd.listen", CONF_ENDPOINTS, OFF(policyd.listen),
      "unix:/var/spool/postfix/private/postern-policy", 0, 0, NULL,
      "sockets of postern-policyd: unix:/path or inet:host:port, one or a list" },
    { "policyd.on_error", CONF_ENUM, OFF(policyd.on_error), "dunno", 0, 0, on_error_words,
      "answer when the store fails: dunno (let Postfix decide) or defer (4xx)" },
    { "policyd.pid_file", CONF_PATH, OFF(policyd.pid_file), "/run/postern/policyd.pid", 0, 0, NULL,
      "pid file of postern-policyd" },
    { "policyd.idle_timeout", CONF_DURATION, OFF(policyd.idle_timeout_ms), "300s", 1000, 3600000, NULL,
      "close a policy connection idle this long (Postfix: smtpd_policy_service_timeout)" },
    { "policyd.max_connections", CONF_UINT, OFF(policyd.max_connections), "1000", 1, 100000, NULL,
      "connections served at once" },
    { "policyd.max_request_bytes", CONF_UINT, OFF(policyd.max_request_bytes), "65536", 1024, 1048576, NULL,
      "largest policy request accepted" },
    { "policyd.sync", CONF_ENUM, OFF(policyd.sync), "normal", 0, 0, sync_words,
      "durability of decisions: normal (survives a crash) or full (also a power loss; slower)" },
    { "milter.listen", CONF_ENDPOINT, OFF(milter.listen), "unix:/var/spool/postfix/private/postern-milter", 0,
      0, NULL, "socket of postern-milter" },
    { "milter.on_error", CONF_ENUM, OFF(milter.on_error), "tempfail", 0, 0, milter_on_error_words,
      "answer on an internal error" },
    { "milter.authserv_id", CONF_STRING, OFF(milter.authserv_id), "localhost", 0, 0, NULL,
      "authserv-id of our Authentication-Results headers" },
    { "milter.pid_file", CONF_PATH, OFF(milter.pid_file), "/run/postern/milter.pid", 0, 0, NULL,
      "pid file of postern-milter" },
    { "milter.dns_timeout", CONF_DURATION, OFF(milter.dns_timeout_ms), "5s", 1000, 30000, NULL,
      "timeout of one DNS query of the inbound checks (SPF, DKIM keys, DMARC), whole seconds" },
    { "milter.dkim_verify_max", CONF_UINT, OFF(milter.dkim_verify_max), "5", 1, 50, NULL,
      "DKIM signatures verified per inbound message; more are ignored" },
    { "milter.public_suffix_list", CONF_PATH, OFF(milter.psl), "/usr/share/publicsuffix/public_suffix_list.dat",
      0, 0, NULL, "public suffix list of DMARC's organizational domains (Debian package publicsuffix)" },
    { "milter.inbound_temperror", CONF_ENUM, OFF(milter.inbound_temperror), "tempfail", 0, 0, temperror_words,
      "answer when a check in enforce mode cannot decide (DNS temperror): tempfail (451) or accept" },
    { "milter.inbound_bad_from", CONF_ENUM, OFF(milter.inbound_bad_from), "reject", 0, 0, bad_from_words,
      "answer, when DMARC is enforced, to a message without exactly one From: address (dmarc=permerror)" },
    { "milter.scan_memory", CONF_SIZE, OFF(milter.scan_memory), "1M", 4096, 1u << 30, NULL,
      "bytes of one message kept in memory for the scanners; the rest goes to a temporary file" },
    { "milter.spool_dir", CONF_PATH, OFF(milter.spool_dir), NULL, 0, 0, NULL,
      "directory of those temporary files (unlinked at once); default: state_dir" },
    { "milter.postfix_config_dir", CONF_PATH, OFF(milter.postfix_config_dir), "/etc/postfix", 0, 0, NULL,
      "Postfix's configuration directory (pacing mode hold: postsuper -c, postqueue -c, postconf -c)" },
    { "milter.postfix_command_dir", CONF_PATH, OFF(milter.postfix_command_dir), "/usr/sbin", 0, 0, NULL,
      "where postsuper, postqueue and postconf are (Postfix's command_directory)" },
    { "milter.hold_reconcile", CONF_DURATION, OFF(milter.hold_reconcile_ms), "60s", 1000, 3600000, NULL,
      "how often the hold schedule is compared with Postfix's queue (postqueue -j)" },
    { "clamd.socket", CONF_ENDPOINT, OFF(clamd.socket), NULL, 0, 0, NULL,
      "clamd's socket, e.g. unix:/run/clamav/clamd.ctl; not set: no anti-virus scanning" },
    { "clamd.on_failure", CONF_ENUM, OFF(clamd.on_failure), "tempfail", 0, 0, on_failure_words,
      "tempfail | accept: clamd down, too slow or answering garbage" },
    { "clamd.connect_timeout", CONF_DURATION, OFF(clamd.connect_timeout_ms), "5s", 100, 60000, NULL,
      "connecting, or waiting for a free connection" },
    { "clamd.timeout", CONF_DURATION, OFF(clamd.timeout_ms), "60s", 100, 240000, NULL,
      "sending one message and reading the answer" },
    { "clamd.connections", CONF_UINT, OFF(clamd.connections), "10", 1, 1000, NULL,
      "connections at once (keep at most clamd's MaxThreads)" },
    { "clamd.max_size", CONF_SIZE, OFF(clamd.max_size), "25M", 1024, 1ull << 32, NULL,
      "larger messages are not sent to clamd (keep at most its StreamMaxLength)" },
    { "spamd.socket", CONF_ENDPOINT, OFF(spamd.socket), NULL, 0, 0, NULL,
      "spamd's socket, e.g. inet:127.0.0.1:783; not set: no anti-spam scanning" },
    { "spamd.on_failure", CONF_ENUM, OFF(spamd.on_failure), "accept", 0, 0, on_failure_words,
      "tempfail | accept: spamd down, too slow or answering garbage" },
    { "spamd.connect_timeout", CONF_DURATION, OFF(spamd.connect_timeout_ms), "5s", 100, 60000, NULL,
      "connecting, or waiting for a free connection" },
    { "spamd.timeout", CONF_DURATION, OFF(spamd.timeout_ms), "30s", 100, 240000, NULL,
      "sending one message and reading the answer" },
    { "spamd.connections", CONF_UINT, OFF(spamd.connections), "5", 1, 1000, NULL,
      "connections at once (keep at most spamd's --max-children)" },
    { "spamd.max_size", CONF_SIZE, OFF(spamd.max_size), "500K", 1024, 1ull << 32, NULL,
      "larger messages are not sent to spamd (as spamc; SpamAssassin is slow on large ones)" },
};
const size_t conf_table_size = sizeof conf_table / sizeof conf_table[0];

bool conf_endpoint_valid(const char *s, char *err, size_t errsize)
{
    if (strncmp(s, "unix:", 5) == 0) {
        if (s[5] != '/' || strlen(s) - 5 >= 108) {
            snprintf(err, errsize, "expected unix:/absolute/path (at most 107 characters), found \"%s\"", s);
            return false;
        }
        return true;
    }
    if (strncmp(s, "inet:", 5) == 0) {
        const char *colon = strrchr(s + 5, ':');
        uint64_t port;
        char perr[GRAM_ERR_MAX];
        if (colon == NULL || colon == s + 5 || !gram_uint(colon + 1, 65535, &port, perr, sizeof perr) ||
            port == 0) {
            snprintf(err, errsize, "expected inet:host:port (port 1-65535), found \"%s\"", s);
            return false;
        }
        return true;
    }
    snprintf(err, errsize, "expected unix:/path or inet:host:port, found \"%s\"", s);
    return false;
}

/* "1s", "5m", "1h" or "250ms": durations as an operator writes them. */
static const char *conf_fmt_ms(uint64_t ms, char *out, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, size, "%" PRIu64 "h", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, size, "%" PRIu64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(out, size, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(out, size, "%" PRIu64 "ms", ms);
    return out;
}

/* "1G", "10M", "512K" or bytes: sizes as gram_size() reads them. */
static const char *conf_fmt_size(uint64_t v, char *out, size_t size)
{
    if (v != 0 && v % (1u << 30) == 0)
        snprintf(out, size, "%" PRIu64 "G", v >> 30);
    else if (v != 0 && v % (1u << 20) == 0)
        snprintf(out, size, "%" PRIu64 "M", v >> 20);
    else if (v != 0 && v % 1024 == 0)
        snprintf(out, size, "%" PRIu64 "K", v >> 10);
    else
        snprintf(out, size, "%" PRIu64, v);
    return out;
}

/* Parse one scalar value for key k into the struct; err on failure. */
static bool conf_set(struct postern_conf *c, const struct conf_key *k, const char *s, char *err, size_t errsize)
{
    char *base = (char *)c + k->offset;
    switch (k->type) {
    case CONF_STRING:
        if (*s == '\0') {
            snprintf(err, errsize, "expected a non-empty value");
            return false;
        }
        mem_free(*(char **)base);
        *(char **)base = mem_strdup(s);
        return true;
    case CONF_PATH:
        if (s[0] != '/') {
            snprintf(err, errsize, "expected an absolute path, found \"%s\"", s);
            return false;
        }
        mem_free(*(char **)base);
        *(char **)base = mem_strdup(s);
        return true;
    case CONF_TIMEZONE:
        if (!tz_valid(s)) {
            snprintf(err, errsize, "expected a time zone like UTC or Europe/Paris, found \"%s\"", s);
            return false;
        }
        mem_free(*(char **)base);
        *(char **)base = mem_strdup(s);
        return true;
    case CONF_UINT:
    case CONF_SIZE:
    case CONF_DURATION: {
        uint64_t v;
        bool ok = k->type == CONF_UINT   ? gram_uint(s, UINT64_MAX, &v, err, errsize)
                  : k->type == CONF_SIZE ? gram_size(s, &v, err, errsize)
                                         : gram_duration(s, &v, err, errsize);
        if (!ok)
            return false;
        if (v < k->min || v > k->max) {
            if (k->type == CONF_SIZE) {
                char lo[32], hi[32];
                snprintf(err, errsize, "expected a size from %s to %s, found \"%s\"", conf_fmt_size(k->min, lo, sizeof lo),
                         conf_fmt_size(k->max, hi, sizeof hi), s);
            } else if (k->type == CONF_UINT)
                snprintf(err, errsize, "expected a number from %" PRIu64 " to %" PRIu64 ", found \"%s\"", k->min,
                         k->max, s);
            else {
                char lo[32], hi[32];
                snprintf(err, errsize, "expected a duration from %s to %s, found \"%s\"",
                         conf_fmt_ms(k->min, lo, sizeof lo), conf_fmt_ms(k->max, hi, sizeof hi), s);
            }
            return false;
        }
        *(uint64_t *)base = v;
        return true;
    }
    case CONF_ENUM:
        return gram_enum(s, k->words, (int *)base, err, errsize);
    case CONF_BOOL:
        return gram_bool(s, (bool *)base, err, errsize);
    case CONF_ENDPOINT:
        if (!conf_endpoint_valid(s, err, errsize))
            return false;
        mem_free(*(char **)base);
        *(char **)base = mem_strdup(s);
        return true;
    case CONF_ENDPOINTS: {
        struct conf_list *l = (struct conf_list *)base;
        if (!conf_endpoint_valid(s, err, errsize))
            return false;
        l->v = mem_grow(l->v, l->n + 1, sizeof *l->v);
        l->v[l->n++] = mem_strdup(s);
        return true;
    }
    }
    return false;
}

static void conf_list_clear(struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        mem_free(l->v[i]);
    mem_free(l->v);
    l->v = NULL;
    l->n = 0;
}

void conf_defaults(struct postern_conf *c)
{
    char err[GRAM_ERR_MAX];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < conf_table_size; i++)
        if (conf_table[i].def && conf_table[i].type != CONF_TIMEZONE)
            conf_set(c, &conf_table[i], conf_table[i].def, err, sizeof err);
    c->timezone = mem_strdup("UTC");
}

static const struct conf_key *conf_find(const char *path)
{
    for (size_t i = 0; i < conf_table_size; i++)
        if (strcmp(conf_table[i].path, path) == 0)
            return &conf_table[i];
    return NULL;
}

/* Keys allowed under a section ("" for the top level), for error texts. */
static void conf_section_keys(const char *section, char *out, size_t size)
{
    size_t sl = strlen(section), o = 0;
    const char *last = NULL;
    out[0] = '\0';
    for (size_t i = 0; i < conf_table_size; i++) {
        const char *p = conf_table[i].path;
        if (sl && (strncmp(p, section, sl) != 0 || p[sl] != '.'))
            continue;
        const char *rest = sl ? p + sl + 1 : p;
        size_t rl = strcspn(rest, ".");
        if (last && strcspn(last, ".") == rl && strncmp(last, rest, rl) == 0)
            continue; /* the next key of a section already listed */
        if (o + rl + 3 >= size)
            break;
        o += (size_t)snprintf(out + o, size - o, "%s%.*s", o ? ", " : "", (int)rl, rest);
        last = rest;
    }
}

static bool conf_is_section(const char *path)
{
    size_t l = strlen(path);
    for (size_t i = 0; i < conf_table_size; i++)
        if (strncmp(conf_table[i].path, path, l) == 0 && conf_table[i].path[l] == '.')
            return true;
    return false;
}

static void conf_walk(struct postern_conf *c, const struct ynode *map, const char *section, const char *file,
                      struct diags *d)
{
    char found[64];
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *key = map->keys[i], *v = map->items[i];
        char path[256], err[GRAM_ERR_MAX + 64];
        snprintf(path, sizeof path, "%s%s%s", section, *section ? "." : "", key->str);
        if (conf_is_section(path) && v->kind == Y_SCALAR) {
            /* "clamd: unix:/path": a section's socket given alone */
            char sock[272];
            snprintf(sock, sizeof sock, "%s.socket", path);
            const struct conf_key *k = conf_find(sock);
            if (k != NULL) {
                if (strlen(v->str) != v->len || !conf_set(c, k, v->str, err, sizeof err))
                    diag_at(d, file, v->line, v->col, "%s: %s", path,
                            strlen(v->str) != v->len ? "expected an endpoint" : err);
                continue;
            }
        }
        if (conf_is_section(path)) {
            if (v->kind != Y_MAP)
                diag_at(d, file, v->line, v->col, "%s: expected a mapping, found %s", path,
                        ynode_repr(v, found, sizeof found));
            else
                conf_walk(c, v, path, file, d);
            continue;
        }
        const struct conf_key *k = strchr(key->str, '.') ? NULL : conf_find(path);
        if (k == NULL) {
            char keys[512];
            conf_section_keys(section, keys, sizeof keys);
            diag_at(d, file, key->line, key->col, "unknown key \"%s\"%s%s (expected one of: %s)", key->str,
                    *section ? " in " : "", section, keys);
            continue;
        }
        if (k->type == CONF_ENDPOINTS && v->kind == Y_SEQ) {
            conf_list_clear((struct conf_list *)((char *)c + k->offset));
            if (v->n == 0)
                diag_at(d, file, v->line, v->col, "%s: expected at least one endpoint", path);
            for (size_t j = 0; j < v->n; j++) {
                const struct ynode *e = v->items[j];
                if (e->kind != Y_SCALAR || strlen(e->str) != e->len)
                    diag_at(d, file, e->line, e->col, "%s: expected an endpoint, found %s", path,
                            ynode_repr(e, found, sizeof found));
                else if (!conf_set(c, k, e->str, err, sizeof err))
                    diag_at(d, file, e->line, e->col, "%s: %s", path, err);
            }
            continue;
        }
        if (v->kind != Y_SCALAR || strlen(v->str) != v->len) {
            diag_at(d, file, v->line, v->col, "%s: expected a single value, found %s", path,
                    ynode_repr(v, found, sizeof found));
            continue;
        }
        if (k->type == CONF_ENDPOINTS)
            conf_list_clear((struct conf_list *)((char *)c + k->offset));
        if (!conf_set(c, k, v->str, err, sizeof err))
            diag_at(d, file, v->line, v->col, "%s: %s", path, err);
    }
}

bool conf_load(struct postern_conf *c, const char *path, struct diags *d)
{
    struct ydoc doc;
    size_t before = d->n;
    char found[64];

    conf_defaults(c);
    c->file = mem_strdup(path);
    if (ydoc_load_file(&doc, path, d) && doc.root != NULL) {
        if (doc.root->kind != Y_MAP)
            diag_at(d, path, doc.root->line, doc.root->col, "expected a mapping of settings, found %s",
                    ynode_repr(doc.root, found, sizeof found));
        else
            conf_walk(c, doc.root, "", path, d);
    }
    ydoc_free(&doc);
    if (d->n != before) {
        conf_free(c);
        return false;
    }
    if (!tz_select(c->timezone)) {
        diag_at(d, path, 0, 0, "timezone: unknown zone %s", c->timezone);
        conf_free(c);
        return false;
    }
    return true;
}

void conf_free(struct postern_conf *c)
{
    for (size_t i = 0; i < conf_table_size; i++) {
        char *base = (char *)c + conf_table[i].offset;
        switch (conf_table[i].type) {
        case CONF_STRING:
        case CONF_PATH:
        case CONF_TIMEZONE:
        case CONF_ENDPOINT:
            mem_free(*(char **)base);
            *(char **)base = NULL;
            break;
        case CONF_ENDPOINTS:
            conf_list_clear((struct conf_list *)base);
            break;
        default:
            break;
        }
    }
    mem_free(c->file);
    c->file = NULL;
}

void conf_print(const struct postern_conf *c, FILE *out)
{
    const char *sec = NULL;   /* current section: a prefix of a key path */
    size_t secl = 0;
    for (size_t i = 0; i < conf_table_size; i++) {
        const struct conf_key *k = &conf_table[i];
        const char *dot = strchr(k->path, '.');
        const char *name = k->path;
        if (dot) {
            size_t sl = (size_t)(dot - k->path);
            if (sec == NULL || secl != sl || strncmp(sec, k->path, sl) != 0) {
                fprintf(out, "%.*s:\n", (int)sl, k->path);
                sec = k->path;
                secl = sl;
            }
            name = dot + 1;
        } else {
            sec = NULL;
        }
        const char *base = (const char *)c + k->offset;
        bool unset = (k->type == CONF_STRING || k->type == CONF_PATH || k->type == CONF_ENDPOINT) &&
                     *(char *const *)base == NULL;
        if (unset) { /* a comment, so that the output loads again */
            fprintf(out, "%s# %s: (not set)   # %s\n", dot ? "  " : "", name, k->help);
            continue;
        }
        fprintf(out, "%s%s: ", dot ? "  " : "", name);
        switch (k->type) {
        case CONF_STRING:
        case CONF_PATH:
        case CONF_TIMEZONE:
        case CONF_ENDPOINT:
            fprintf(out, "%s", *(char *const *)base ? *(char *const *)base : "~");
            break;
        case CONF_UINT:
            fprintf(out, "%" PRIu64, *(const uint64_t *)base);
            break;
        case CONF_DURATION: {
            char v[32];
            fprintf(out, "%s", conf_fmt_ms(*(const uint64_t *)base, v, sizeof v));
            break;
        }
        case CONF_SIZE: {
            char v[32];
            fprintf(out, "%s", conf_fmt_size(*(const uint64_t *)base, v, sizeof v));
            break;
        }
        case CONF_ENUM:
            fprintf(out, "%s", k->words[*(const int *)base]);
            break;
        case CONF_BOOL:
            fprintf(out, "%s", *(const bool *)base ? "true" : "false");
            break;
        case CONF_ENDPOINTS: {
            const struct conf_list *l = (const struct conf_list *)base;
            fprintf(out, "[");
            for (size_t j = 0; j < l->n; j++)
                fprintf(out, "%s%s", j ? ", " : "", l->v[j]);
            fprintf(out, "]");
            break;
        }
        }
        fprintf(out, "   # %s\n", k->help);
    }
}
