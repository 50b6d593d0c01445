/* msgconv.c: CRLF to LF and mboxrd quoting as one streaming pass. */
#include "autoconfig.h"

#include <string.h>

#include "msgconv.h"

static const char from_[] = "From ";

void
msgconv_init(struct msgconv *m, int mboxrd)
{
	memset(m, 0, sizeof *m);
	m->mboxrd = mboxrd;
	m->bol = 1;
	m->last_nl = 1;
}

static void
put(struct msgconv *m, struct buf *out, const char *p, size_t n)
{
	if (n == 0)
		return;
	buf_append(out, p, n);
	m->last_nl = p[n - 1] == '\n';
}

/* Emits what a line start held back: the '>'s and the matched "From" prefix. */
static void
flush_prefix(struct msgconv *m, struct buf *out, int quote)
{
	static const char gts[] = ">>>>>>>>>>>>>>>>";
	size_t gt = m->gt + (quote ? 1 : 0);

	while (gt > 0) {
		size_t k = gt < sizeof gts - 1 ? gt : sizeof gts - 1;
		put(m, out, gts, k);
		gt -= k;
	}
	put(m, out, from_, m->match);
	m->gt = m->match = 0;
	m->bol = 0;
}

/* One logical byte (after CRLF handling). */
static void
byte(struct msgconv *m, struct buf *out, char c)
{
	if (m->mboxrd && m->bol) {
		if (c == '>' && m->match == 0) {
			m->gt++;
			return;
		}
		if (c == from_[m->match]) {
			if (++m->match == sizeof from_ - 1)
				flush_prefix(m, out, 1);
			return;
		}
		flush_prefix(m, out, 0);
	}
	put(m, out, &c, 1);
	m->bol = c == '\n';
}

void
msgconv_feed(struct msgconv *m, const char *in, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		if (m->cr) {
			m->cr = 0;
			if (in[i] == '\n') {
				byte(m, out, '\n');
				i++;
				continue;
			}
			byte(m, out, '\r');
		}
		if (in[i] == '\r') {
			m->cr = 1;
			i++;
			continue;
		}
		if (!m->bol || !m->mboxrd) {
			/* Fast path: copy up to the next CR or LF in one go. */
			size_t j = i;
			while (j < n && in[j] != '\r' && in[j] != '\n')
				j++;
			if (j > i) {
				put(m, out, in + i, j - i);
				m->bol = 0;
				i = j;
				continue;
			}
		}
		byte(m, out, in[i]);
		i++;
	}
}

void
msgconv_finish(struct msgconv *m, struct buf *out, int final_newline)
{
	if (m->cr) {
		m->cr = 0;
		byte(m, out, '\r');
	}
	if (m->gt > 0 || m->match > 0)
		flush_prefix(m, out, 0);
	if (final_newline && !m->last_nl)
		put(m, out, "\n", 1);
}
