/* buf.c: growable byte buffer. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = b->used = 0;
	b->max = max;
}

int
buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;

	if (n > (size_t)-1 - b->len - 1)
		return -1;
	need = b->len + n + 1;
	if (b->max != 0 && need > b->max + 1)
		return -1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > (size_t)-1 / 2 ? need : cap * 2;
	if (b->max != 0 && cap > b->max + 1)
		cap = b->max + 1;
	/* Not realloc: the old block may hold a secret and must be wiped. */
	{
		char *bigger = xmalloc(cap);
		bigger[0] = '\0';
		if (b->data != NULL) {
			memcpy(bigger, b->data, b->len + 1);
			wipe(b->data, b->used);
			free(b->data);
		}
		b->data = bigger;
	}
	b->cap = cap;
	return 0;
}

char *
buf_space(struct buf *b, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return NULL;
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	if (b->data == NULL || n > b->cap - b->len - 1)
		fatal("buf_commit past the reserved space");
	b->len += n;
	b->data[b->len] = '\0';
	if (b->used < b->len + 1)
		b->used = b->len + 1;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	if (b->used < b->len + 1)
		b->used = b->len + 1;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	if (b->used < b->len + 1)
		b->used = b->len + 1;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	if (b->data != NULL) {
		/* Only what was written: pages never touched stay untouched. */
		wipe(b->data, b->used);
		free(b->data);
	}
	buf_init(b, b->max);
}
