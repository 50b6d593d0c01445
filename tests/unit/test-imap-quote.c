/* Unit tests for imap_quote: quoted strings and UID sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "imap_quote.h"

static void
test_quote(void **state)
{
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(imap_quote(&b, "pa ss'w\"d\\1"), 0);
	assert_string_equal(b.data, "\"pa ss'w\\\"d\\\\1\"");
	buf_reset(&b);
	assert_int_equal(imap_quote(&b, ""), 0);
	assert_string_equal(b.data, "\"\"");
	buf_reset(&b);
	assert_int_equal(imap_quote(&b, "line\r\nbreak"), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(imap_quote(&b, "caf\xc3\xa9"), -1);
	buf_free(&b);
}

static void
test_uid_set(void **state)
{
	static const uint32_t uids[] = { 1, 2, 3, 4, 7, 9, 10, 11, 12, 4294967295u };
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(imap_uid_set(&b, uids, 10, 1000), 10);
	assert_string_equal(b.data, "1:4,7,9:12,4294967295");
	buf_reset(&b);
	/* a ceiling cuts between ranges, never inside one */
	assert_int_equal(imap_uid_set(&b, uids, 10, 6), 5);
	assert_string_equal(b.data, "1:4,7");
	buf_reset(&b);
	assert_int_equal(imap_uid_set(&b, uids, 0, 100), 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_uid_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
