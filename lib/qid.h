/* qid.h: Postfix queue IDs as postern accepts them from anyone (the
 * milter's {i} macro, the hold-queue schedule, postqueue -j output, the
 * privileged release helper's input), before one is ever put on a command
 * line such as "postsuper -H ID": only the two forms Postfix makes.
 *   short  (enable_long_queue_ids = no, the default): 6 to 21 of
 *          0-9 A-F (5 digits of microseconds, then the inode number, in
 *          hexadecimal);
 *   long   (enable_long_queue_ids = yes, e.g. 3Pt2mN2VXxznjll): 12 to 24
 *          characters of Postfix's alphabet (0-9 and the consonants of
 *          both cases, vowels excluded): at least 6 for the seconds and 4
 *          for the microseconds (these may hold 'z'), a 'z', then the
 *          inode number without 'z' (at least one character).
 * Nothing else: no "ALL", no "-", no option, no path, no blank. */
#ifndef POSTERN_QID_H
#define POSTERN_QID_H
#include <stdbool.h>
#include <stddef.h>

#define QID_MAX 24

/* True when s (NUL-terminated) is a queue ID of one of the two forms. */
bool qid_valid(const char *s);

#endif
