/* imap_parse.c: incremental, bounded IMAP response parser.
 *
 * Bytes are collected into a line segment up to LF; a segment is either a
 * whole response or ends with a literal announcement {N}, after which the
 * literal's bytes follow and then the next segment of the same response.
 * Open lists survive across segments on an explicit stack, so literals may
 * appear at any depth. */
#include "autoconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "imap_parse.h"
#include "mf_limits.h"
#include "xmalloc.h"

enum phase { PH_LINE, PH_LITERAL_INLINE, PH_LITERAL_STREAM, PH_DONE, PH_ERROR };

struct vec {
	struct imap_arg *v;
	size_t n, cap;
};

struct imap_parser {
	size_t inline_max;
	enum phase phase;
	int in_args;           /* the next segment continues the argument list */
	struct buf line;       /* the segment being collected */
	size_t text_total;     /* non-literal bytes of this response so far */
	struct vec stack[IMAP_DEPTH_MAX + 1]; /* [0]: top level, [d]: open list at depth d */
	size_t depth;
	size_t nargs;
	size_t mem;            /* bytes this response holds, against IMAP_RESPONSE_MAX */
	struct buf lit;        /* inline literal being collected */
	uint64_t lit_left;
	uint64_t lit_size;
	struct imap_response resp;
	char error[200];
};

static void
args_free(struct imap_arg *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].str);
		if (v[i].type == IMAP_ARG_LIST)
			args_free(v[i].list, v[i].count);
	}
	free(v);
}

/* Forgets the current response and everything half-parsed. */
static void
parser_clear(struct imap_parser *p)
{
	struct imap_response *r = &p->resp;

	free(r->tag);
	free(r->code);
	free(r->text);
	free(r->name);
	args_free(r->code_args, r->code_count);
	args_free(r->args, r->count);
	free(r->numbers);
	memset(r, 0, sizeof *r);
	for (size_t d = 0; d <= IMAP_DEPTH_MAX; d++) {
		args_free(p->stack[d].v, p->stack[d].n);
		memset(&p->stack[d], 0, sizeof p->stack[d]);
	}
	p->depth = 0;
	p->nargs = 0;
	p->mem = 0;
	p->in_args = 0;
	p->text_total = 0;
	p->lit_left = p->lit_size = 0;
	buf_reset(&p->line);
	buf_free(&p->lit);
	p->phase = PH_LINE;
	p->error[0] = '\0';
}

struct imap_parser *
imap_parser_new(size_t inline_max)
{
	struct imap_parser *p = xcalloc(1, sizeof *p);

	p->inline_max = inline_max ? inline_max : IMAP_INLINE_LITERAL_MAX;
	buf_init(&p->line, IMAP_LINE_MAX);
	buf_init(&p->lit, p->inline_max);
	p->phase = PH_LINE;
	return p;
}

void
imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	parser_clear(p);
	buf_free(&p->line);
	free(p);
}

static enum imap_parse_result
fail(struct imap_parser *p, const char *what)
{
	snprintf(p->error, sizeof p->error, "%s", what);
	return IMAP_PARSE_ERROR;
}

/* Appends an argument to the innermost open list; takes ownership of str. */
static int
push(struct imap_parser *p, enum imap_arg_type type, char *str, size_t len)
{
	struct vec *v = &p->stack[p->depth];

	if (p->nargs >= IMAP_ARGS_MAX || p->mem + sizeof(struct imap_arg) + len + 1 > IMAP_RESPONSE_MAX) {
		free(str);
		return -1;
	}
	p->mem += sizeof(struct imap_arg) + len + 1;
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->v = xreallocarray(v->v, v->cap, sizeof *v->v);
	}
	memset(&v->v[v->n], 0, sizeof v->v[v->n]);
	v->v[v->n].type = type;
	v->v[v->n].str = str;
	v->v[v->n].len = len;
	v->n++;
	p->nargs++;
	return 0;
}

static int
is_atom_char(unsigned char c, int in_code)
{
	if (c <= 0x20 || c == 0x7f)
		return 0;
	if (c == '(' || c == ')' || c == '"' || c == '{')
		return 0;
	if (in_code && (c == ']' || c == '['))
		return 0;
	return 1;
}

static char *
upper_dup(const char *s, size_t n)
{
	char *d = xstrndup(s, n);
	for (size_t i = 0; i < n; i++)
		d[i] = (char)toupper((unsigned char)d[i]);
	return d;
}

/* Parses arguments from s[*ip..len).  In code mode a ']' at depth 0 ends
 * the arguments (and is consumed) and literals are refused. */
static enum imap_parse_result
parse_args(struct imap_parser *p, const char *s, size_t len, size_t *ip, int in_code)
{
	size_t i = *ip;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ') {
			i++;
		} else if (c == '(') {
			if (p->depth >= IMAP_DEPTH_MAX)
				return fail(p, "lists nested too deeply");
			p->depth++;
			i++;
		} else if (c == ')') {
			struct vec done;
			if (p->depth == 0)
				return fail(p, "unbalanced ')'");
			done = p->stack[p->depth];
			memset(&p->stack[p->depth], 0, sizeof p->stack[p->depth]);
			p->depth--;
			if (push(p, IMAP_ARG_LIST, NULL, 0) < 0) {
				args_free(done.v, done.n);
				return fail(p, "response too large (too many arguments)");
			}
			p->stack[p->depth].v[p->stack[p->depth].n - 1].list = done.v;
			p->stack[p->depth].v[p->stack[p->depth].n - 1].count = done.n;
			i++;
		} else if (c == ']' && in_code && p->depth == 0) {
			*ip = i + 1;
			return IMAP_PARSE_DONE;
		} else if (c == '"') {
			struct buf q;
			buf_init(&q, 0);
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\') {
					if (i + 1 >= len || (s[i + 1] != '\\' && s[i + 1] != '"')) {
						buf_free(&q);
						return fail(p, "bad escape in quoted string");
					}
					i++;
				} else if (s[i] == '\0' || s[i] == '\r') {
					buf_free(&q);
					return fail(p, "control character in quoted string");
				}
				buf_append(&q, &s[i], 1);
			}
			if (i >= len) {
				buf_free(&q);
				return fail(p, "unterminated quoted string");
			}
			i++;
			if (push(p, IMAP_ARG_STRING, q.data ? q.data : xstrdup(""), q.len) < 0)
				return fail(p, "response too large (too many arguments)");
		} else if (c == '{') {
			uint64_t size = 0;
			size_t digits = 0;
			if (in_code)
				return fail(p, "literal inside a response code");
			for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
				size = size * 10 + (uint64_t)(s[i] - '0');
				if (size > IMAP_LITERAL_MAX)
					return fail(p, "literal larger than the limit");
			}
			if (digits == 0 || i >= len || s[i] != '}')
				return fail(p, "malformed literal size");
			if (i + 1 != len)
				return fail(p, "literal size not at end of line");
			p->in_args = 1;
			p->lit_size = size;
			if (size > p->inline_max) {
				if (push(p, IMAP_ARG_LITERAL, NULL, 0) < 0)
					return fail(p, "response too large (too many arguments)");
				p->stack[p->depth].v[p->stack[p->depth].n - 1].literal_size = size;
				p->lit_left = 0;
				return IMAP_PARSE_LITERAL;
			}
			if (size == 0) {
				if (push(p, IMAP_ARG_STRING, xstrdup(""), 0) < 0)
					return fail(p, "response too large (too many arguments)");
				return IMAP_PARSE_MORE; /* next segment follows at once */
			}
			if (p->mem + size > IMAP_RESPONSE_MAX)
				return fail(p, "response larger than the limit");
			p->lit_left = size;
			p->phase = PH_LITERAL_INLINE;
			return IMAP_PARSE_MORE;
		} else {
			size_t j = i;
			int bracket = 0;
			while (j < len) {
				unsigned char ch = (unsigned char)s[j];
				if (bracket > 0) {
					/* BODY[HEADER.FIELDS (FROM TO)]: spaces and lists inside */
					if (ch < 0x20 || ch == 0x7f)
						break;
					if (ch == '[')
						bracket++;
					else if (ch == ']')
						bracket--;
					j++;
				} else if (!in_code && ch == '[') {
					bracket++;
					j++;
				} else if (is_atom_char(ch, in_code)) {
					j++;
				} else {
					break;
				}
			}
			if (bracket != 0)
				return fail(p, "unterminated '[' in atom");
			if (j == i)
				return fail(p, "unexpected character where an argument should be");
			if (j - i == 3 && strncasecmp(s + i, "NIL", 3) == 0) {
				if (push(p, IMAP_ARG_NIL, NULL, 0) < 0)
					return fail(p, "response too large (too many arguments)");
			} else if (push(p, IMAP_ARG_ATOM, xstrndup(s + i, j - i), j - i) < 0) {
				return fail(p, "response too large (too many arguments)");
			}
			i = j;
		}
	}
	*ip = i;
	if (in_code)
		return fail(p, "unterminated response code");
	if (p->depth != 0)
		return fail(p, "unbalanced '('");
	return IMAP_PARSE_DONE;
}

/* Moves the top-level arguments into (*v, *n). */
static void
take_top(struct imap_parser *p, struct imap_arg **v, size_t *n)
{
	*v = p->stack[0].v;
	*n = p->stack[0].n;
	memset(&p->stack[0], 0, sizeof p->stack[0]);
}

/* resp-text = ["[" resp-text-code "]" SP] text */
static enum imap_parse_result
parse_resp_text(struct imap_parser *p, const char *s, size_t len, size_t i)
{
	if (i < len && s[i] == ' ')
		i++;
	if (i < len && s[i] == '[') {
		size_t j = ++i;
		while (j < len && is_atom_char((unsigned char)s[j], 1))
			j++;
		if (j == i)
			return fail(p, "empty response code");
		p->resp.code = upper_dup(s + i, j - i);
		i = j;
		if (i < len && s[i] == ' ') {
			enum imap_parse_result r;
			i++;
			r = parse_args(p, s, len, &i, 1);
			if (r != IMAP_PARSE_DONE)
				return r;
			take_top(p, &p->resp.code_args, &p->resp.code_count);
		} else if (i < len && s[i] == ']') {
			i++;
		} else {
			return fail(p, "malformed response code");
		}
		if (i < len && s[i] == ' ')
			i++;
	}
	p->resp.text = xstrndup(s + i, len - i);
	return IMAP_PARSE_DONE;
}

static int
status_of(const char *s, size_t n)
{
	static const struct { const char *w; enum imap_resp_status st; } words[] = {
		{ "OK", IMAP_ST_OK }, { "NO", IMAP_ST_NO }, { "BAD", IMAP_ST_BAD },
		{ "PREAUTH", IMAP_ST_PREAUTH }, { "BYE", IMAP_ST_BYE },
	};
	for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
		if (strlen(words[k].w) == n && strncasecmp(s, words[k].w, n) == 0)
			return words[k].st;
	return IMAP_ST_NONE;
}

/* The arguments of an untagged SEARCH: numbers only, kept as an array of
 * uint32_t rather than one imap_arg each, which would cost some 90 bytes
 * per UID on a mailbox of tens of thousands of messages.  RFC 7162 allows
 * a "(MODSEQ n)" at the end; it is checked and skipped, and anything else
 * is an error. */
static enum imap_parse_result
parse_search(struct imap_parser *p, const char *s, size_t len, size_t i)
{
	struct imap_response *r = &p->resp;
	size_t cap = 0;

	while (i < len) {
		uint64_t n = 0;
		size_t j;

		if (s[i] == ' ') {
			i++;
			continue;
		}
		if (s[i] == '(') {
			/* search-sort-mod-seq: "(MODSEQ n)", last on the line */
			size_t k = i + 1;
			if (len - k < 8 || strncasecmp(s + k, "MODSEQ ", 7) != 0)
				return fail(p, "malformed SEARCH response");
			for (k += 7, j = k; j < len && s[j] >= '0' && s[j] <= '9'; j++)
				;
			if (j == k || j >= len || s[j] != ')')
				return fail(p, "malformed SEARCH response");
			for (j++; j < len && s[j] == ' '; j++)
				;
			if (j != len)
				return fail(p, "malformed SEARCH response");
			break;
		}
		for (j = i; j < len && s[j] >= '0' && s[j] <= '9'; j++) {
			n = n * 10 + (uint64_t)(s[j] - '0');
			if (n > UINT32_MAX)
				return fail(p, "number out of range in SEARCH response");
		}
		if (j == i || (j < len && s[j] != ' '))
			return fail(p, "malformed SEARCH response");
		if (r->nnumbers >= IMAP_SEARCH_MAX)
			return fail(p, "SEARCH response with too many numbers");
		if (r->nnumbers == cap) {
			cap = cap ? cap * 2 : 64;
			r->numbers = xreallocarray(r->numbers, cap, sizeof *r->numbers);
		}
		r->numbers[r->nnumbers++] = (uint32_t)n;
		i = j;
	}
	return IMAP_PARSE_DONE;
}

/* Parses one segment s[0..len) (line terminator removed). */
static enum imap_parse_result
parse_segment(struct imap_parser *p, const char *s, size_t len)
{
	struct imap_response *r = &p->resp;
	size_t i = 0, j;
	int st;

	if (p->in_args) {
		enum imap_parse_result res = parse_args(p, s, len, &i, 0);
		if (res == IMAP_PARSE_DONE)
			take_top(p, &r->args, &r->count);
		return res;
	}
	if (len == 0)
		return fail(p, "empty response line");
	if (s[0] == '+') {
		r->kind = IMAP_RESP_CONTINUE;
		i = (len > 1 && s[1] == ' ') ? 2 : 1;
		r->text = xstrndup(s + i, len - i);
		return IMAP_PARSE_DONE;
	}
	if (s[0] == '*') {
		r->kind = IMAP_RESP_UNTAGGED;
		i = 1;
	} else {
		while (i < len && is_atom_char((unsigned char)s[i], 1) && s[i] != '+')
			i++;
		if (i == 0 || i > IMAP_TAG_MAX)
			return fail(p, "malformed tag");
		r->kind = IMAP_RESP_TAGGED;
		r->tag = xstrndup(s, i);
	}
	if (i >= len || s[i] != ' ')
		return fail(p, "missing space after tag");
	i++;
	for (j = i; j < len && s[j] != ' '; j++)
		;
	if (j == i)
		return fail(p, "missing response keyword");
	if (r->kind == IMAP_RESP_UNTAGGED && isdigit((unsigned char)s[i])) {
		uint64_t n = 0;
		for (size_t k = i; k < j; k++) {
			if (!isdigit((unsigned char)s[k]))
				return fail(p, "malformed message number");
			n = n * 10 + (uint64_t)(s[k] - '0');
			if (n > UINT32_MAX)
				return fail(p, "message number out of range");
		}
		r->has_number = 1;
		r->number = (uint32_t)n;
		if (j >= len)
			return fail(p, "missing keyword after message number");
		i = j + 1;
		for (j = i; j < len && s[j] != ' ' && s[j] != '('; j++)
			;
		if (j == i)
			return fail(p, "missing keyword after message number");
	}
	st = status_of(s + i, j - i);
	if (st != IMAP_ST_NONE && !r->has_number) {
		r->status = (enum imap_resp_status)st;
		if (r->kind == IMAP_RESP_TAGGED && st != IMAP_ST_OK && st != IMAP_ST_NO && st != IMAP_ST_BAD)
			return fail(p, "tagged response with an untagged-only status");
		return parse_resp_text(p, s, len, j);
	}
	if (r->kind == IMAP_RESP_TAGGED)
		return fail(p, "tagged response without OK, NO or BAD");
	for (size_t k = i; k < j; k++)
		if (!is_atom_char((unsigned char)s[k], 1))
			return fail(p, "malformed response keyword");
	r->name = upper_dup(s + i, j - i);
	i = j;
	if (strcmp(r->name, "SEARCH") == 0)
		return parse_search(p, s, len, i);
	p->in_args = 1;
	{
		enum imap_parse_result res = parse_args(p, s, len, &i, 0);
		if (res == IMAP_PARSE_DONE)
			take_top(p, &r->args, &r->count);
		return res;
	}
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const char *data, size_t len, size_t *used)
{
	size_t off = 0;

	*used = 0;
	if (p->phase == PH_DONE)
		parser_clear(p);
	if (p->phase == PH_ERROR)
		return IMAP_PARSE_ERROR;
	if (p->phase == PH_LITERAL_STREAM)
		return IMAP_PARSE_LITERAL;

	while (off < len) {
		const char *nl;
		size_t n, l;
		enum imap_parse_result r;

		if (p->phase == PH_LITERAL_INLINE) {
			n = len - off;
			if (n > p->lit_left)
				n = (size_t)p->lit_left;
			if (buf_append(&p->lit, data + off, n) < 0)
				fatal("inline literal buffer overflow");
			off += n;
			p->lit_left -= n;
			if (p->lit_left == 0) {
				char *str = p->lit.data;
				size_t slen = p->lit.len;
				buf_init(&p->lit, p->inline_max);
				p->phase = PH_LINE;
				if (push(p, IMAP_ARG_STRING, str, slen) < 0) {
					p->phase = PH_ERROR;
					*used = off;
					return fail(p, "response too large (too many arguments)");
				}
			}
			continue;
		}

		nl = memchr(data + off, '\n', len - off);
		n = nl ? (size_t)(nl - (data + off)) + 1 : len - off;
		if (p->text_total + p->line.len + n > IMAP_LINE_MAX || p->mem + p->line.len + n > IMAP_RESPONSE_MAX ||
		    buf_append(&p->line, data + off, n) < 0) {
			p->phase = PH_ERROR;
			*used = off;
			return fail(p, "response longer than the line limit");
		}
		off += n;
		if (nl == NULL)
			break;
		l = p->line.len - 1;
		if (l > 0 && p->line.data[l - 1] == '\r')
			l--;
		p->text_total += p->line.len;
		p->mem += p->line.len;
		r = parse_segment(p, p->line.data, l);
		buf_reset(&p->line);
		switch (r) {
		case IMAP_PARSE_DONE:
			p->phase = PH_DONE;
			*used = off;
			return r;
		case IMAP_PARSE_ERROR:
			p->phase = PH_ERROR;
			*used = off;
			return r;
		case IMAP_PARSE_LITERAL:
			p->phase = PH_LITERAL_STREAM;
			*used = off;
			return r;
		case IMAP_PARSE_MORE:
			break;
		}
	}
	*used = off;
	return IMAP_PARSE_MORE;
}

void
imap_parser_literal_done(struct imap_parser *p)
{
	if (p->phase == PH_LITERAL_STREAM)
		p->phase = PH_LINE;
}

uint64_t
imap_parser_inline_left(const struct imap_parser *p)
{
	return p->phase == PH_LITERAL_INLINE ? p->lit_left : 0;
}

uint64_t
imap_parser_literal_size(const struct imap_parser *p)
{
	return p->lit_size;
}

struct imap_arg *
imap_parser_literal_arg(struct imap_parser *p)
{
	struct vec *v = &p->stack[p->depth];
	if (p->phase != PH_LITERAL_STREAM || v->n == 0)
		return NULL;
	return &v->v[v->n - 1];
}

const struct imap_response *
imap_parser_response(const struct imap_parser *p)
{
	return p->phase == PH_DONE ? &p->resp : NULL;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error[0] ? p->error : "no error";
}

int
imap_arg_is_atom(const struct imap_arg *a, const char *word)
{
	return a != NULL && a->type == IMAP_ARG_ATOM && strcasecmp(a->str, word) == 0;
}

int
imap_arg_number(const struct imap_arg *a, uint32_t *out)
{
	uint64_t n = 0;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 10)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		if (!isdigit((unsigned char)a->str[i]))
			return -1;
		n = n * 10 + (uint64_t)(a->str[i] - '0');
	}
	if (n > UINT32_MAX)
		return -1;
	*out = (uint32_t)n;
	return 0;
}
