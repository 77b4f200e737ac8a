/* alloc.c: allocation wrappers that abort on exhaustion instead of
 * returning NULL, so callers never carry an out-of-memory path. */
#include "alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mem_die(size_t size)
{
    fprintf(stderr, "postern: fatal: out of memory allocating %zu bytes\n", size);
    abort();
}

void *mem_alloc(size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (p == NULL)
        mem_die(size);
    return p;
}

void *mem_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        mem_die(SIZE_MAX);
    return mem_alloc(n * size);
}

void *mem_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL)
        mem_die(size);
    return q;
}

void *mem_grow(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        mem_die(SIZE_MAX);
    return mem_realloc(p, n * size);
}

char *mem_strndup(const char *s, size_t n)
{
    char *d = mem_alloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

void mem_free(void *p)
{
    free(p);
}
