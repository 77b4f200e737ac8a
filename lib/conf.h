/* conf.h: the daemon configuration file postern.yaml, loaded through one
 * declarative table of keys (type, default, bounds, help) so that every
 * key is checked the same way: unknown keys, wrong types and values out of
 * bounds are errors with file:line:column; absent keys take defaults. */
#ifndef POSTERN_CONF_H
#define POSTERN_CONF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"

enum conf_type {
    CONF_STRING,      /* any non-empty text */
    CONF_PATH,        /* an absolute path */
    CONF_UINT,        /* whole number in [min, max] */
    CONF_DURATION,    /* 20s, 500ms ... in [min, max] milliseconds */
    CONF_SIZE,        /* 512K, 10M ... in [min, max] bytes */
    CONF_ENUM,        /* one of words[]; stored as int */
    CONF_BOOL,
    CONF_ENDPOINT,    /* unix:/path | inet:host:port */
    CONF_ENDPOINTS,   /* one endpoint or a list of them */
    CONF_TIMEZONE,    /* a zone under /usr/share/zoneinfo, or UTC */
};

struct conf_key {
    const char *path;          /* "policyd.on_error" */
    enum conf_type type;
    size_t offset;             /* into struct postern_conf */
    const char *def;           /* default in the file's syntax; NULL: none */
    uint64_t min, max;
    const char *const *words;  /* CONF_ENUM */
    const char *help;
};

struct conf_list {
    char **v;
    size_t n;
};

enum conf_on_error { ON_ERROR_DUNNO, ON_ERROR_DEFER };
enum conf_milter_on_error { MILTER_ON_ERROR_TEMPFAIL, MILTER_ON_ERROR_ACCEPT };
enum conf_temperror { TEMPERROR_TEMPFAIL, TEMPERROR_ACCEPT };
enum conf_bad_from { BAD_FROM_REJECT, BAD_FROM_ACCEPT };
enum conf_on_failure { ON_FAILURE_TEMPFAIL, ON_FAILURE_ACCEPT };
/* normal: a committed decision survives a crash of the daemon or of Postfix
 * (WAL, synchronous=NORMAL); full: also a power loss (one fsync per batch). */
enum conf_sync { SYNC_NORMAL, SYNC_FULL };

struct postern_conf {
    char *file;
    char *rules;               /* rules.d directory */
    char *state_dir;
    char *timezone;
    char *user;                /* privilege drop after binding */
    int log_level;             /* index of log level words */
    struct {
        struct conf_list listen;
        int on_error;          /* enum conf_on_error */
        char *pid_file;
        uint64_t idle_timeout_ms;
        uint64_t max_connections;
        uint64_t max_request_bytes;
        int sync;              /* enum conf_sync */
    } policyd;
    struct {
        char *listen;
        int on_error;          /* enum conf_milter_on_error */
        char *authserv_id;
        char *pid_file;
        uint64_t dns_timeout_ms;
        uint64_t dkim_verify_max;
        char *psl;
        int inbound_temperror;  /* enum conf_temperror */
        int inbound_bad_from;   /* enum conf_bad_from */
        uint64_t scan_memory;   /* bytes of a message kept in memory for the scanners */
        char *spool_dir;        /* where larger ones spill; NULL: state_dir */
        char *postfix_config_dir; /* pacing mode hold: Postfix's -c */
        char *postfix_command_dir; /* postsuper, postqueue, postconf */
        uint64_t hold_reconcile_ms; /* the schedule against postqueue -j */
    } milter;
    /* the scanners: no socket (the default) means not used.  "clamd:
     * unix:/path" is short for "clamd: {socket: unix:/path}". */
    struct conf_scanner {
        char *socket;
        int on_failure;         /* enum conf_on_failure */
        uint64_t connect_timeout_ms;
        uint64_t timeout_ms;
        uint64_t connections;
        uint64_t max_size;      /* larger messages are not sent to it */
    } clamd, spamd;
};

extern const struct conf_key conf_table[];
extern const size_t conf_table_size;

/* Load path into c (defaults for absent keys).  False after adding every
 * error to d; c is then freed. */
bool conf_load(struct postern_conf *c, const char *path, struct diags *d);
/* Defaults only (no file). */
void conf_defaults(struct postern_conf *c);
void conf_free(struct postern_conf *c);
/* Print every key with its effective value, as YAML (posternctl config). */
void conf_print(const struct postern_conf *c, FILE *out);

/* "unix:/path" or "inet:host:port": true when well-formed. */
bool conf_endpoint_valid(const char *s, char *err, size_t errsize);

#endif
