/* qid.c: Postfix queue IDs checked before any use (qid.h). */
#include "qid.h"

#include <string.h>

static bool qid_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Postfix's 52-character alphabet of long queue IDs: digits and the
 * consonants of both cases ('z' included: it is also the separator). */
static bool qid_b52(char c)
{
    if (c >= '0' && c <= '9')
        return true;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
        return false;
    return strchr("AEIOUaeiou", c) == NULL;
}

bool qid_valid(const char *s)
{
    size_t n = strnlen(s, QID_MAX + 1);
    if (n > QID_MAX || n < 6)
        return false;
    bool hex = true;
    for (size_t i = 0; i < n && hex; i++)
        hex = qid_hex(s[i]);
    if (hex)
        return n <= 21;
    if (n < 12)
        return false;
    size_t last_z = 0;
    for (size_t i = 0; i < n; i++) {
        if (!qid_b52(s[i]))
            return false;
        if (s[i] == 'z')
            last_z = i;
    }
    /* the separator: the last 'z' (the inode number has none), after 10
     * characters of time, before at least one of inode */
    return last_z >= 10 && last_z < n - 1;
}
