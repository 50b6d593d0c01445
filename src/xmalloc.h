/* xmalloc.h: allocation that never returns NULL (out of memory is fatal),
 * with overflow-checked sizes, and wiping of secrets. */
#ifndef MAILFETCH_XMALLOC_H
#define MAILFETCH_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Overwrite len bytes at p in a way the compiler cannot drop. */
void wipe(void *p, size_t len);
/* Wipe and free a NUL-terminated secret; NULL is fine. */
void free_secret(char *s);
/* Exit with status 23 after printing msg: for broken invariants and OOM only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
