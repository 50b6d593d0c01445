/* imap_quote.h: building command arguments. */
#ifndef MAILFETCH_IMAP_QUOTE_H
#define MAILFETCH_IMAP_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Appends s as an IMAP quoted string ("..." with \ and " escaped).
 * Returns -1 (nothing appended) if s holds a byte a quoted string cannot
 * carry (NUL, CR, LF, or 8-bit); such a value needs a literal. */
int imap_quote(struct buf *out, const char *s);

/* Appends a UID set for uids[0..n) (sorted ascending, no duplicates) in
 * compressed form ("1:4,7,9:12"), stopping before the set would exceed
 * maxlen bytes.  Returns how many uids were included (at least one if
 * n > 0 and maxlen >= 21). */
size_t imap_uid_set(struct buf *out, const uint32_t *uids, size_t n, size_t maxlen);

#endif
