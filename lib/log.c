/* log.c: key=value event logging to syslog(LOG_MAIL) and stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static struct {
    const char *ident;
    bool to_syslog, to_stderr;
    enum log_level min;
} log_cfg = { "postern", false, true, LOG_LVL_INFO };

static const char *const log_names[] = { "debug", "info", "notice", "warning", "error" };
static const int log_prio[] = { LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR };

void log_open(const char *ident, bool to_syslog, bool to_stderr, enum log_level min)
{
    log_cfg.ident = ident;
    log_cfg.to_syslog = to_syslog;
    log_cfg.to_stderr = to_stderr;
    log_cfg.min = min;
    if (to_syslog)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

bool log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof log_names / sizeof log_names[0]; i++)
        if (strcmp(s, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    return false;
}

const char *log_level_name(enum log_level l)
{
    return log_names[l];
}

bool log_enabled(enum log_level l)
{
    return l >= log_cfg.min;
}

static void log_line(enum log_level l, const char *line)
{
    if (l < log_cfg.min)
        return;
    if (log_cfg.to_syslog)
        syslog(log_prio[l], "%s", line);
    if (log_cfg.to_stderr)
        fprintf(stderr, "%s: %s\n", log_cfg.ident, line);
}

void log_event(enum log_level l, const char *event, const struct buf *kv)
{
    struct buf b;
    buf_init(&b);
    buf_kv(&b, "level", log_names[l]);
    buf_kv(&b, "event", event);
    if (kv != NULL && kv->len > 0) {
        buf_putc(&b, ' ');
        buf_add(&b, kv->data, kv->len);
    }
    log_line(l, b.data);
    buf_free(&b);
}

void log_msg(enum log_level l, const char *event, const char *fmt, ...)
{
    struct buf kv;
    va_list ap;
    buf_init(&kv);
    va_start(ap, fmt);
    buf_vprintf(&kv, fmt, ap);
    va_end(ap);
    log_event(l, event, &kv);
    buf_free(&kv);
}

void log_fatal(const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    buf_init(&b);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    struct buf kv;
    buf_init(&kv);
    buf_kv(&kv, "error", b.data);
    log_event(LOG_LVL_ERR, "fatal", &kv);
    if (!log_cfg.to_stderr)
        fprintf(stderr, "%s: fatal: %s\n", log_cfg.ident, b.data);
    buf_free(&kv);
    buf_free(&b);
    exit(1);
}
