/* alloc.h: allocation that never returns NULL.  Out of memory is not a
 * condition postern can serve through: it logs and aborts. */
#ifndef POSTERN_ALLOC_H
#define POSTERN_ALLOC_H
#include <stddef.h>

void *mem_alloc(size_t size);                 /* zeroed */
void *mem_array(size_t n, size_t size);       /* zeroed, overflow-checked */
void *mem_realloc(void *p, size_t size);
void *mem_grow(void *p, size_t n, size_t size); /* realloc to n*size, overflow-checked */
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void mem_free(void *p);

#endif
