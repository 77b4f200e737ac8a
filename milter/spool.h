/* spool.h: one message kept for the scanners (scanner.h) while it streams
 * through the milter: in memory up to a configured amount
 * (milter.scan_memory), then in a private temporary file (O_TMPFILE, mode
 * 0600, never linked into the directory; mkstemp + unlink where the file
 * system has no O_TMPFILE) under milter.spool_dir.  The bytes are kept
 * once and read back by each scanner at its own offset.
 *
 * A spool stops keeping bytes past its limit (the tenant's scan.max_size):
 * it then only counts them (spool_over()), so a message too large to scan
 * costs neither memory nor disk.
 *
 * A spool is one message's, used by one thread at a time. */
#ifndef POSTERN_MILTER_SPOOL_H
#define POSTERN_MILTER_SPOOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

struct spool;

/* mem_max: bytes kept in memory before spilling; limit: bytes kept at all
 * (more are only counted); dir: where the temporary file goes. */
struct spool *spool_new(size_t mem_max, uint64_t limit, const char *dir);
/* Append len bytes.  False with err set when the temporary file cannot
 * be created or written (a full disk): the spool is then unusable. */
bool spool_write(struct spool *s, const void *data, size_t len, struct buf *err);
/* Append a header line "name: value\r\n", bare LF in value turned into
 * CRLF (Postfix gives folded values with LF). */
bool spool_header(struct spool *s, const char *name, const char *value, struct buf *err);
/* Bytes appended so far (also those past the limit). */
uint64_t spool_size(const struct spool *s);
/* True once more than limit bytes were appended: the content is gone. */
bool spool_over(const struct spool *s);
/* True once the content went to the temporary file. */
bool spool_spilled(const struct spool *s);
/* Copy up to len bytes from offset off into out; the count copied (0 at
 * the end), or -1 with err set on a read error. */
ssize_t spool_read(const struct spool *s, uint64_t off, void *out, size_t len, struct buf *err);
void spool_free(struct spool *s);

#endif
