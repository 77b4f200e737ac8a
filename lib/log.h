/* log.h: one key=value line per event, to syslog (facility mail) and, in
 * the foreground, to stderr.  The logger's settings are process-wide, like
 * openlog(3) itself: they are set once at start-up by log_open() and are
 * the only such state outside a daemon's context.  log_fatal() is for
 * start-up errors only; code that serves a request never calls it. */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H
#include <stdbool.h>

#include "buf.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_NOTICE, LOG_LVL_WARN, LOG_LVL_ERR };

/* ident: program name; to_stderr: also write to stderr (foreground);
 * to_syslog: write to syslog(3) with LOG_MAIL. */
void log_open(const char *ident, bool to_syslog, bool to_stderr, enum log_level min);
/* Parse "debug|info|notice|warning|error"; false when unknown. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);
/* Whether a line at level l would be written: lets a hot path skip
 * formatting a debug line nobody reads. */
bool log_enabled(enum log_level l);

/* Writes "level=L event=EVENT <kv>", kv being the buf_kv() pairs. */
void log_event(enum log_level l, const char *event, const struct buf *kv);
/* printf-style convenience: fmt should produce key=value pairs. */
void log_msg(enum log_level l, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
