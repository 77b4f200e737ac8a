/* hmap.c: open-addressing hash map with linear probing (hmap.h). */
#include "hmap.h"

#include <stdint.h>

#include "alloc.h"

struct hmap_slot {
    char *key;        /* NULL: empty */
    size_t klen;
    uint64_t hash;
    void *value;
};

static uint64_t hmap_hash(const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

void hmap_init(struct hmap *m)
{
    m->cap = 16;
    m->n = 0;
    m->slots = mem_array(m->cap, sizeof *m->slots);
}

void hmap_free(struct hmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        mem_free(m->slots[i].key);
    mem_free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static struct hmap_slot *hmap_find(const struct hmap *m, const void *key, size_t klen, uint64_t h)
{
    size_t i = h & (m->cap - 1);
    for (;;) {
        struct hmap_slot *s = &m->slots[i];
        if (s->key == NULL || (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0))
            return s;
        i = (i + 1) & (m->cap - 1);
    }
}

static void hmap_grow(struct hmap *m)
{
    struct hmap_slot *old = m->slots;
    size_t oldcap = m->cap;
    m->cap *= 2;
    m->slots = mem_array(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key) {
            struct hmap_slot *s = hmap_find(m, old[i].key, old[i].klen, old[i].hash);
            *s = old[i];
        }
    mem_free(old);
}

bool hmap_put(struct hmap *m, const void *key, size_t klen, void *value, void **old)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        hmap_grow(m);
    uint64_t h = hmap_hash(key, klen);
    struct hmap_slot *s = hmap_find(m, key, klen, h);
    if (s->key) {
        if (old)
            *old = s->value;
        return false;
    }
    s->key = mem_strndup(key, klen);
    s->klen = klen;
    s->hash = h;
    s->value = value;
    m->n++;
    return true;
}

void *hmap_get(const struct hmap *m, const void *key, size_t klen)
{
    struct hmap_slot *s = hmap_find(m, key, klen, hmap_hash(key, klen));
    return s->key ? s->value : NULL;
}
