/* Unit tests for imap_parse: every case is fed whole, and again one byte
 * at a time, and must give the same result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap_parse.h"
#include "mf_limits.h"

/* Feeds text in pieces of step bytes (0: all at once) until a response is
 * complete.  Streamed literals are skipped over by the test itself, their
 * bytes counted into *streamed. */
static enum imap_parse_result
feed(struct imap_parser *p, const char *text, size_t len, size_t step, size_t *consumed, uint64_t *streamed)
{
	size_t off = 0;
	enum imap_parse_result r = IMAP_PARSE_MORE;

	if (streamed)
		*streamed = 0;
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step, used = 0;
		r = imap_parser_feed(p, text + off, n, &used);
		off += used;
		if (r == IMAP_PARSE_LITERAL) {
			uint64_t size = imap_parser_literal_size(p);
			imap_parser_literal_arg(p)->cookie = (void *)1;
			assert_true(off + size <= len);
			off += size;
			if (streamed)
				*streamed += size;
			imap_parser_literal_done(p);
			continue;
		}
		if (r != IMAP_PARSE_MORE)
			break;
		assert_int_equal(used, n);
	}
	if (consumed)
		*consumed = off;
	return r;
}

static const struct imap_response *
parse_ok(struct imap_parser *p, const char *text, size_t step)
{
	size_t used;
	enum imap_parse_result r = feed(p, text, strlen(text), step, &used, NULL);
	if (r != IMAP_PARSE_DONE)
		fail_msg("parse of [%s] step %zu: result %d (%s)", text, step, (int)r, imap_parser_error(p));
	assert_int_equal(used, strlen(text));
	return imap_parser_response(p);
}

static void
test_tagged(void **state)
{
	for (size_t step = 0; step <= 1; step++) {
		struct imap_parser *p = imap_parser_new(0);
		const struct imap_response *r = parse_ok(p, "A0001 OK [READ-WRITE] SELECT completed.\r\n", step);
		assert_int_equal(r->kind, IMAP_RESP_TAGGED);
		assert_string_equal(r->tag, "A0001");
		assert_int_equal(r->status, IMAP_ST_OK);
		assert_string_equal(r->code, "READ-WRITE");
		assert_int_equal(r->code_count, 0);
		assert_string_equal(r->text, "SELECT completed.");
		r = parse_ok(p, "a2 no [AUTHENTICATIONFAILED] Authentication failed.\r\n", step);
		assert_int_equal(r->status, IMAP_ST_NO);
		assert_string_equal(r->code, "AUTHENTICATIONFAILED");
		imap_parser_free(p);
	}
}

static void
test_capability_code(void **state)
{
	for (size_t step = 0; step <= 1; step++) {
		struct imap_parser *p = imap_parser_new(0);
		const struct imap_response *r = parse_ok(p,
		    "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n", step);
		assert_int_equal(r->kind, IMAP_RESP_UNTAGGED);
		assert_int_equal(r->status, IMAP_ST_OK);
		assert_string_equal(r->code, "CAPABILITY");
		assert_int_equal(r->code_count, 5);
		assert_true(imap_arg_is_atom(&r->code_args[2], "LITERAL+"));
		assert_true(imap_arg_is_atom(&r->code_args[4], "auth=plain"));
		assert_string_equal(r->text, "Dovecot ready.");
		r = parse_ok(p, "* OK [PERMANENTFLAGS (\\Answered \\Seen \\*)] Flags permitted.\r\n", step);
		assert_int_equal(r->code_count, 1);
		assert_int_equal(r->code_args[0].type, IMAP_ARG_LIST);
		assert_int_equal(r->code_args[0].count, 3);
		assert_string_equal(r->code_args[0].list[2].str, "\\*");
		imap_parser_free(p);
	}
}

static void
test_untagged_data(void **state)
{
	for (size_t step = 0; step <= 1; step++) {
		struct imap_parser *p = imap_parser_new(0);
		const struct imap_response *r = parse_ok(p, "* 23 EXISTS\r\n", step);
		assert_true(r->has_number);
		assert_int_equal(r->number, 23);
		assert_string_equal(r->name, "EXISTS");
		r = parse_ok(p, "* SEARCH 2 3 4294967295\r\n", step);
		assert_string_equal(r->name, "SEARCH");
		assert_int_equal(r->count, 0);
		assert_int_equal(r->nnumbers, 3);
		assert_int_equal(r->numbers[0], 2);
		assert_int_equal(r->numbers[1], 3);
		assert_int_equal(r->numbers[2], 4294967295u);
		r = parse_ok(p, "* SEARCH\r\n", step);
		assert_int_equal(r->nnumbers, 0);
		r = parse_ok(p, "* search  7  9 (modseq 917162500) \r\n", step);
		assert_int_equal(r->nnumbers, 2);
		assert_int_equal(r->numbers[1], 9);
		r = parse_ok(p, "+ \r\n", step);
		assert_int_equal(r->kind, IMAP_RESP_CONTINUE);
		assert_string_equal(r->text, "");
		r = parse_ok(p, "* BYE Server shutting down\r\n", step);
		assert_int_equal(r->status, IMAP_ST_BYE);
		imap_parser_free(p);
	}
}

static void
test_fetch_inline_literal(void **state)
{
	static const char text[] =
	    "* 1 FETCH (UID 7 FLAGS (\\Seen $Junk) BODY[] {12}\r\nHello\r\nWorld INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" X NIL)\r\n";
	for (size_t step = 0; step <= 1; step++) {
		struct imap_parser *p = imap_parser_new(0);
		const struct imap_response *r = parse_ok(p, text, step);
		const struct imap_arg *it;
		assert_string_equal(r->name, "FETCH");
		assert_int_equal(r->number, 1);
		assert_int_equal(r->count, 1);
		assert_int_equal(r->args[0].type, IMAP_ARG_LIST);
		assert_int_equal(r->args[0].count, 10);
		it = r->args[0].list;
		assert_true(imap_arg_is_atom(&it[0], "UID"));
		assert_int_equal(it[3].type, IMAP_ARG_LIST);
		assert_true(imap_arg_is_atom(&it[4], "BODY[]"));
		assert_int_equal(it[5].type, IMAP_ARG_STRING);
		assert_int_equal(it[5].len, 12);
		assert_memory_equal(it[5].str, "Hello\r\nWorld", 12);
		assert_string_equal(it[7].str, "17-Jul-1996 02:44:25 -0700");
		assert_int_equal(it[9].type, IMAP_ARG_NIL);
		imap_parser_free(p);
	}
}

static void
test_streamed_literal(void **state)
{
	/* inline limit 4: a 10-byte literal is streamed, its place kept */
	static const char text[] = "* 2 FETCH (BODY[] {10}\r\n0123456789 UID 9)\r\n";
	for (size_t step = 0; step <= 1; step++) {
		struct imap_parser *p = imap_parser_new(4);
		uint64_t streamed;
		size_t used;
		const struct imap_response *r;
		assert_int_equal(feed(p, text, strlen(text), step, &used, &streamed), IMAP_PARSE_DONE);
		assert_int_equal(streamed, 10);
		r = imap_parser_response(p);
		assert_int_equal(r->args[0].list[1].type, IMAP_ARG_LITERAL);
		assert_int_equal(r->args[0].list[1].literal_size, 10);
		assert_ptr_equal(r->args[0].list[1].cookie, (void *)1);
		assert_true(imap_arg_is_atom(&r->args[0].list[2], "UID"));
		imap_parser_free(p);
	}
}

static void
test_section_atom_and_quoted(void **state)
{
	struct imap_parser *p = imap_parser_new(0);
	const struct imap_response *r =
	    parse_ok(p, "* 3 FETCH (BODY[HEADER.FIELDS (FROM TO)] \"a \\\"q\\\" \\\\ b\" BODY[]<0> {0}\r\n)\r\n", 0);
	const struct imap_arg *it = r->args[0].list;
	assert_string_equal(it[0].str, "BODY[HEADER.FIELDS (FROM TO)]");
	assert_string_equal(it[1].str, "a \"q\" \\ b");
	assert_string_equal(it[2].str, "BODY[]<0>");
	assert_int_equal(it[3].type, IMAP_ARG_STRING);
	assert_int_equal(it[3].len, 0);
	imap_parser_free(p);
}

static void
expect_error(const char *text, size_t inline_max)
{
	for (size_t step = 0; step <= 1; step++) {
		struct imap_parser *p = imap_parser_new(inline_max);
		enum imap_parse_result r = feed(p, text, strlen(text), step, NULL, NULL);
		if (r != IMAP_PARSE_ERROR)
			fail_msg("expected an error for [%s] step %zu, got %d", text, step, (int)r);
		/* and it stays in error */
		size_t used;
		assert_int_equal(imap_parser_feed(p, "* OK\r\n", 6, &used), IMAP_PARSE_ERROR);
		imap_parser_free(p);
	}
}

static void
test_malformed(void **state)
{
	expect_error("* 1 FETCH (UID 1\r\n", 0);              /* unbalanced ( */
	expect_error("* 1 FETCH UID 1)\r\n", 0);              /* unbalanced ) */
	expect_error("* 1 FETCH (BODY[] {-1}\r\n", 0);        /* negative literal */
	expect_error("* 1 FETCH (BODY[] {}\r\n", 0);          /* empty size */
	expect_error("* 1 FETCH (BODY[] {99999999999999999999}\r\n", 0); /* overflow */
	expect_error("* 1 FETCH (BODY[] {3000000000}\r\n", 0); /* over IMAP_LITERAL_MAX */
	expect_error("* 1 FETCH (BODY[] {5} x\r\n", 0);       /* text after literal size */
	expect_error("* 1 FETCH (\"unterminated)\r\n", 0);
	expect_error("* 1 FETCH (\"bad \\x escape\")\r\n", 0);
	expect_error("A1 PREAUTH hello\r\n", 0);              /* tagged PREAUTH */
	expect_error("A1 FETCH (UID 1)\r\n", 0);              /* tagged without status */
	expect_error("\r\n", 0);
	expect_error("*\r\n", 0);
	expect_error("* 99999999999 EXISTS\r\n", 0);
	expect_error("* OK [UIDVALIDITY 3 hello\r\n", 0);     /* unterminated code */
	expect_error("* 1 FETCH (BODY[HEADER x)\r\n", 0);     /* unterminated [ */
	expect_error("* 1 FETCH (a\x01b)\r\n", 0);            /* control character */
	expect_error("* SEARCH 1 2x 3\r\n", 0);              /* not a number */
	expect_error("* SEARCH 1 \"2\"\r\n", 0);
	expect_error("* SEARCH 4294967296\r\n", 0);           /* over UINT32_MAX */
	expect_error("* SEARCH 1 {1}\r\n", 0);                /* literal */
	expect_error("* SEARCH 1 (x) 5\r\n", 0);              /* a list that is not MODSEQ */
	expect_error("* SEARCH 1 (MODSEQ 5) 6\r\n", 0);       /* MODSEQ not last */
	expect_error("* SEARCH 1 (MODSEQ)\r\n", 0);
	expect_error("* SEARCH 1 (MODSEQ 5\r\n", 0);
}

static void
test_depth_limit(void **state)
{
	char text[256];
	size_t n = 0;
	n += (size_t)snprintf(text, sizeof text, "* LIST ");
	for (size_t i = 0; i < IMAP_DEPTH_MAX; i++)
		text[n++] = '(';
	for (size_t i = 0; i < IMAP_DEPTH_MAX; i++)
		text[n++] = ')';
	memcpy(text + n, "\r\n", 3);
	{
		struct imap_parser *p = imap_parser_new(0);
		parse_ok(p, text, 0); /* exactly at the limit is fine */
		imap_parser_free(p);
	}
	memmove(text + 8, text + 7, strlen(text + 7) + 1);
	text[7] = '(';
	memmove(text + n + 1, text + n, strlen(text + n) + 1);
	text[n + 1] = ')';
	expect_error(text, 0);
}

static void
test_line_limit(void **state)
{
	/* One line longer than IMAP_LINE_MAX is refused before it is all stored. */
	struct imap_parser *p = imap_parser_new(0);
	char *chunk = malloc(1 << 20);
	size_t total = 0, used;
	enum imap_parse_result r = IMAP_PARSE_MORE;
	memset(chunk, 'a', 1 << 20);
	memcpy(chunk, "* SEARCH ", 9);
	while (r == IMAP_PARSE_MORE && total <= (size_t)IMAP_LINE_MAX + (1 << 20)) {
		r = imap_parser_feed(p, chunk, 1 << 20, &used);
		total += used;
		chunk[0] = 'a';
		memset(chunk, 'a', 9);
	}
	assert_int_equal(r, IMAP_PARSE_ERROR);
	assert_true(total <= IMAP_LINE_MAX);
	free(chunk);
	imap_parser_free(p);
}

static void
test_response_budget(void **state)
{
	/* Many inline literals in one response: refused once the response
	 * would hold more than IMAP_RESPONSE_MAX, not after. */
	struct imap_parser *p = imap_parser_new(0);
	char *lit = calloc(1, IMAP_INLINE_LITERAL_MAX);
	char head[64];
	size_t used, fed = 0;
	enum imap_parse_result r;
	int n = snprintf(head, sizeof head, "X {%u}\r\n", IMAP_INLINE_LITERAL_MAX);

	assert_int_equal(imap_parser_feed(p, "* 1 FETCH (", 11, &used), IMAP_PARSE_MORE);
	for (;;) {
		r = imap_parser_feed(p, head, (size_t)n, &used);
		if (r != IMAP_PARSE_MORE)
			break;
		r = imap_parser_feed(p, lit, IMAP_INLINE_LITERAL_MAX, &used);
		if (r != IMAP_PARSE_MORE)
			break;
		fed += IMAP_INLINE_LITERAL_MAX;
		assert_true(fed <= IMAP_RESPONSE_MAX);
	}
	assert_int_equal(r, IMAP_PARSE_ERROR);
	free(lit);
	imap_parser_free(p);
}

static void
test_two_responses_in_one_feed(void **state)
{
	struct imap_parser *p = imap_parser_new(0);
	const char *text = "* 1 EXISTS\r\nA1 OK done\r\n";
	size_t used;
	assert_int_equal(imap_parser_feed(p, text, strlen(text), &used), IMAP_PARSE_DONE);
	assert_int_equal(used, 12);
	assert_string_equal(imap_parser_response(p)->name, "EXISTS");
	assert_int_equal(imap_parser_feed(p, text + used, strlen(text) - used, &used), IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_response(p)->tag, "A1");
	imap_parser_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tagged),
		cmocka_unit_test(test_capability_code),
		cmocka_unit_test(test_untagged_data),
		cmocka_unit_test(test_fetch_inline_literal),
		cmocka_unit_test(test_streamed_literal),
		cmocka_unit_test(test_section_atom_and_quoted),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_response_budget),
		cmocka_unit_test(test_two_responses_in_one_feed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
