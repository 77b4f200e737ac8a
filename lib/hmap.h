/* hmap.h: a string-keyed hash map (open addressing, FNV-1a) for the rule
 * index: logins, sender addresses, domains and masked client networks.
 * Keys are copied bytes (may hold NUL); values are caller pointers. */
#ifndef POSTERN_HMAP_H
#define POSTERN_HMAP_H
#include <stdbool.h>
#include <stddef.h>

struct hmap_slot;

struct hmap {
    struct hmap_slot *slots;
    size_t cap, n;
};

void hmap_init(struct hmap *m);
void hmap_free(struct hmap *m);
/* Insert; if the key exists, returns false and leaves the old value in
 * *old (when old is not NULL). */
bool hmap_put(struct hmap *m, const void *key, size_t klen, void *value, void **old);
void *hmap_get(const struct hmap *m, const void *key, size_t klen);
static inline void *hmap_gets(const struct hmap *m, const char *key);

#include <string.h>
static inline void *hmap_gets(const struct hmap *m, const char *key)
{
    return hmap_get(m, key, strlen(key));
}

#endif
