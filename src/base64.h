/* base64.h: RFC 4648 base64, as SASL exchanges carry it. */
#ifndef MAILFETCH_BASE64_H
#define MAILFETCH_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Appends the encoding of in[0..n) to out; 0, or -1 past out's ceiling. */
int base64_encode(struct buf *out, const void *in, size_t n);
/* Appends the decoding of in[0..n) to out.  Strict: only the alphabet,
 * padding to a multiple of 4 and only at the end, no spaces.  0, or -1
 * (out then holds no more than it did). */
int base64_decode(struct buf *out, const char *in, size_t n);

#endif
