/* msgconv.c: CRLF to LF and mboxrd quoting as one streaming pass. */
#include "autoconfig.h"

#include <string.h>

#include "msgconv.h"
#include "xmalloc.h"

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

/* Whether a line starting with c may need mboxrd quoting. */
static int
may_quote(const struct msgconv *m, char c)
{
	return m->mboxrd && m->bol && (m->gt > 0 || m->match > 0 || c == '>' || c == from_[0]);
}

/* The fast path: whole lines from in[i..n), written in place, up to the
 * end of the input or a line start that may need quoting.  A CR at the
 * end of the input is held back.  Output never outgrows the input here.
 * Returns the new i. */
static size_t
copy_lines(struct msgconv *m, const char *in, size_t i, size_t n, struct buf *out)
{
	char *o0 = buf_space(out, n - i), *o = o0;

	if (o0 == NULL)
		fatal("msgconv: output buffer past its ceiling");
	while (i < n) {
		const char *nl = memchr(in + i, '\n', n - i);
		size_t j = nl != NULL ? (size_t)(nl - in) : n;
		size_t end = j > i && in[j - 1] == '\r' ? j - 1 : j;

		memcpy(o, in + i, end - i);
		o += end - i;
		if (nl == NULL) {
			if (end < j)
				m->cr = 1;
			if (end > i)
				m->bol = 0;
			i = n;
			break;
		}
		*o++ = '\n';
		m->bol = 1;
		i = j + 1;
		if (i < n && may_quote(m, in[i]))
			break;
	}
	if (o > o0)
		m->last_nl = o[-1] == '\n';
	buf_commit(out, (size_t)(o - o0));
	return i;
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
		if (in[i] == '\r' && i + 1 == n) {
			m->cr = 1;
			i++;
		} else if (may_quote(m, in[i])) {
			if (in[i] == '\r') {
				m->cr = 1;
				i++;
				continue;
			}
			byte(m, out, in[i]);
			i++;
		} else {
			i = copy_lines(m, in, i, n, out);
		}
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
