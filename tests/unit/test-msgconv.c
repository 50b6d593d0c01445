/* Unit tests for msgconv: CRLF to LF and mboxrd quoting, with the input
 * split at every possible point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msgconv.h"

static void
check(const char *in, int mboxrd, int final_nl, const char *want)
{
	size_t len = strlen(in);
	/* whole, then split at every position, then byte by byte */
	for (size_t split = 0; split <= len + 1; split++) {
		struct msgconv m;
		struct buf out;
		buf_init(&out, 0);
		msgconv_init(&m, mboxrd);
		if (split <= len) {
			msgconv_feed(&m, in, split, &out);
			msgconv_feed(&m, in + split, len - split, &out);
		} else {
			for (size_t i = 0; i < len; i++)
				msgconv_feed(&m, in + i, 1, &out);
		}
		msgconv_finish(&m, &out, final_nl);
		if (out.len != strlen(want) || memcmp(out.data ? out.data : "", want, out.len) != 0)
			fail_msg("in [%s] split %zu: got [%.*s] want [%s]", in, split, (int)out.len,
			    out.data ? out.data : "", want);
		buf_free(&out);
	}
}

static void
test_crlf(void **state)
{
	check("a\r\nb\r\n", 0, 0, "a\nb\n");
	check("a\rb\r\n\r", 0, 0, "a\rb\n\r");   /* lone CRs are data */
	check("no newline", 0, 0, "no newline");
	check("no newline", 0, 1, "no newline\n");
	check("", 0, 1, "");
}

static void
test_mboxrd(void **state)
{
	check("From me\r\nFrom x\r\n>From y\r\n>>From z\r\n", 1, 1, ">From me\n>From x\n>>From y\n>>>From z\n");
	check("x From a\r\nFro\r\n>Fro\r\n>>\r\nFrom\r\n", 1, 1, "x From a\nFro\n>Fro\n>>\nFrom\n");
	check(">From", 1, 1, ">From\n");          /* no space: not a From_ line */
	check("From ", 1, 0, ">From ");
	check("body\r\n\r\nFrom the start", 1, 1, "body\n\n>From the start\n");
	check("From me\r\n", 0, 0, "From me\n"); /* quoting off: untouched */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_mboxrd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
