/* Fuzz target: the IMAP response parser.  The first byte chooses how the
 * rest is cut into feeds and the inline literal limit, so one input
 * exercises every resumption point; streamed literals are skipped like a
 * caller would.  Every parsed response is walked in full. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "imap_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
walk(const struct imap_arg *a, size_t n)
{
	size_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		if (a[i].type == IMAP_ARG_LIST)
			sum += walk(a[i].list, a[i].count);
		else if (a[i].str != NULL)
			sum += a[i].len + (size_t)(unsigned char)a[i].str[a[i].len]; /* NUL must be there */
	}
	return sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *p;
	size_t step, off = 1;
	volatile size_t sink = 0;

	if (size < 1)
		return 0;
	step = 1 + (data[0] & 0x3f);
	p = imap_parser_new(data[0] & 0x40 ? 8 : 0);
	while (off < size) {
		size_t n = size - off < step ? size - off : step, used = 0;
		enum imap_parse_result r = imap_parser_feed(p, (const char *)data + off, n, &used);
		if (used > n)
			__builtin_trap();
		off += used;
		if (r == IMAP_PARSE_ERROR)
			break;
		if (r == IMAP_PARSE_LITERAL) {
			uint64_t lit = imap_parser_literal_size(p);
			if (imap_parser_literal_arg(p) == NULL)
				__builtin_trap();
			off += lit < size - off ? (size_t)lit : size - off;
			imap_parser_literal_done(p);
		} else if (r == IMAP_PARSE_DONE) {
			const struct imap_response *resp = imap_parser_response(p);
			sink += walk(resp->args, resp->count) + walk(resp->code_args, resp->code_count);
			sink += resp->text ? strlen(resp->text) : 0;
		} else if (used != n) {
			__builtin_trap(); /* MORE must consume everything */
		}
	}
	imap_parser_free(p);
	(void)sink;
	return 0;
}
