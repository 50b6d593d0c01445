/* buf.h: a growable byte buffer with a ceiling. */
#ifndef MAILFETCH_BUF_H
#define MAILFETCH_BUF_H

#include <stddef.h>

struct buf {
	char *data;    /* always NUL-terminated after data[len] */
	size_t len;
	size_t cap;
	size_t max;    /* 0: no ceiling besides memory */
	size_t used;   /* bytes of data ever written (what a wipe must cover) */
};

void buf_init(struct buf *b, size_t max);
/* Makes room for n more bytes at once: 0, or -1 past the ceiling. */
int buf_reserve(struct buf *b, size_t n);
/* Room for n more bytes to be written in place, then buf_commit() of
 * how many were: for loops that would otherwise append byte by byte.
 * NULL past the ceiling. */
char *buf_space(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
/* Appends; returns 0, or -1 (nothing appended) if the ceiling would be passed. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Wipes the contents (they may have held a secret) and frees. */
void buf_free(struct buf *b);

#endif
