/* imap_parse.h: incremental parser for IMAP server responses (RFC 3501
 * section 9, response grammar), bounded by the limits in mf_limits.h.
 *
 * Contract: feed any number of bytes at a time (one byte is fine).  The
 * parser returns IMAP_PARSE_MORE until a whole response has arrived, then
 * IMAP_PARSE_DONE with the response in parser->resp, valid until the next
 * feed.  A literal larger than IMAP_INLINE_LITERAL_MAX is not stored: the
 * parser returns IMAP_PARSE_LITERAL with parser->literal_size set and an
 * IMAP_ARG_LITERAL argument in place; the caller consumes exactly that many
 * bytes from the stream itself (into a spool, say), may set the argument's
 * cookie, and calls imap_parser_literal_done() before feeding again. */
#ifndef MAILFETCH_IMAP_PARSE_H
#define MAILFETCH_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum imap_arg_type {
	IMAP_ARG_ATOM,     /* atom, number, flag, BODY[...] */
	IMAP_ARG_STRING,   /* quoted string or inline literal */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
	IMAP_ARG_LITERAL,  /* streamed literal: only its size is here */
};

struct imap_arg {
	enum imap_arg_type type;
	char *str;              /* ATOM, STRING: NUL-terminated (STRING may hold NULs) */
	size_t len;
	struct imap_arg *list;  /* LIST */
	size_t count;
	uint64_t literal_size;  /* LITERAL */
	void *cookie;           /* LITERAL: set by the caller that consumed it */
};

enum imap_resp_kind { IMAP_RESP_TAGGED, IMAP_RESP_UNTAGGED, IMAP_RESP_CONTINUE };
enum imap_resp_status { IMAP_ST_NONE, IMAP_ST_OK, IMAP_ST_NO, IMAP_ST_BAD, IMAP_ST_PREAUTH, IMAP_ST_BYE };

struct imap_response {
	enum imap_resp_kind kind;
	char *tag;                    /* TAGGED only */
	enum imap_resp_status status; /* status responses (tagged, * OK/NO/BAD/PREAUTH/BYE) */
	char *code;                   /* resp-text-code atom ("CAPABILITY", "UIDVALIDITY"), or NULL */
	struct imap_arg *code_args;
	size_t code_count;
	char *text;                   /* human-readable text; continuation payload */
	int has_number;               /* "* 12 EXISTS" */
	uint32_t number;
	char *name;                   /* untagged data keyword, upper-cased: FETCH, SEARCH, ... */
	struct imap_arg *args;        /* untagged data arguments after the keyword */
	size_t count;
	uint32_t *numbers;            /* SEARCH: its numbers, in order, 4 bytes each
	                               * (args stays empty; a trailing (MODSEQ n)
	                               * is skipped) */
	size_t nnumbers;
};

enum imap_parse_result {
	IMAP_PARSE_MORE,
	IMAP_PARSE_DONE,
	IMAP_PARSE_LITERAL,
	IMAP_PARSE_ERROR,
};

struct imap_parser;

/* Allocates a parser; inline_max literals are kept, larger ones streamed
 * (0 means IMAP_INLINE_LITERAL_MAX).  Free with imap_parser_free(). */
struct imap_parser *imap_parser_new(size_t inline_max);
void imap_parser_free(struct imap_parser *p);

/* Consumes bytes from data[0..len), setting *used to how many; see above. */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const char *data, size_t len, size_t *used);
/* The streamed literal announced by IMAP_PARSE_LITERAL has been consumed. */
void imap_parser_literal_done(struct imap_parser *p);
/* Bytes of an inline literal still expected: while non-zero, feed raw
 * bytes rather than lines. */
uint64_t imap_parser_inline_left(const struct imap_parser *p);
/* After IMAP_PARSE_LITERAL: its size and its argument (to set a cookie on). */
uint64_t imap_parser_literal_size(const struct imap_parser *p);
struct imap_arg *imap_parser_literal_arg(struct imap_parser *p);
/* After IMAP_PARSE_DONE: the response (owned by the parser). */
const struct imap_response *imap_parser_response(const struct imap_parser *p);
/* After IMAP_PARSE_ERROR: why.  The stream cannot be resynchronised. */
const char *imap_parser_error(const struct imap_parser *p);

/* Helpers for reading parsed arguments. */
int imap_arg_is_atom(const struct imap_arg *a, const char *word); /* case-insensitive */
/* Parses an atom as a number (nz-number or number, <= UINT32_MAX); -1 if not. */
int imap_arg_number(const struct imap_arg *a, uint32_t *out);

#endif
