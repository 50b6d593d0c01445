/* msgconv.h: streaming conversion of a message from the wire form (CRLF)
 * to the local form (LF), optionally with mboxrd quoting (any line that
 * matches ">*From " gets one more '>').  Input may be split anywhere. */
#ifndef MAILFETCH_MSGCONV_H
#define MAILFETCH_MSGCONV_H

#include <stddef.h>

#include "buf.h"

struct msgconv {
	int mboxrd;
	int cr;        /* a CR was seen and not yet resolved */
	int bol;       /* at the beginning of a line */
	size_t gt;     /* '>' seen at the beginning of this line (mboxrd) */
	size_t match;  /* bytes of "From " matched after them */
	int last_nl;   /* the last byte written was '\n' (or nothing written) */
};

void msgconv_init(struct msgconv *m, int mboxrd);
/* Converts in[0..n), appending to out (no ceiling on out is needed: it
 * grows by at most n plus a few bytes per line). */
void msgconv_feed(struct msgconv *m, const char *in, size_t n, struct buf *out);
/* Flushes held-back bytes; with final_newline, ends the output with '\n'. */
void msgconv_finish(struct msgconv *m, struct buf *out, int final_newline);

#endif
