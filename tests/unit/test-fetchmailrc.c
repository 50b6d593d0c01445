/* Unit tests for fetchmailrc: fetchmail's lexer rules (longest match,
 * names after user/is/to/password, quotes, escapes, noise, nokeep), its
 * grammar (defaults first, implicit user, several users, server options
 * after user options), and what the writer makes of a few settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fetchmailrc.h"

static struct fmrc *
parse_ok(const char *text)
{
	struct fmrc *rc = NULL;
	struct mf_error err = { 0 };
	int r = fmrc_parse(text, strlen(text), "rc", "/home/u", &rc, &err);
	if (r != 0)
		fail_msg("[%s]: %s", text, err.msg);
	assert_non_null(rc);
	return rc;
}

static void
parse_bad(const char *text, const char *needle)
{
	struct fmrc *rc = NULL;
	struct mf_error err = { 0 };
	int r = fmrc_parse(text, strlen(text), "rc", "/home/u", &rc, &err);
	if (r != MF_EUSAGE || strstr(err.msg, needle) == NULL)
		fail_msg("[%s]: got %d [%s], want 5 with [%s]", text, r, err.msg, needle);
	assert_null(rc);
}

/* The fetchrc text written for rc text. */
static char *
emit(const char *text)
{
	struct fmrc *rc = parse_ok(text);
	struct fmrc_emit_opts eo = { "rc", "me" };
	struct fmrc_emit_result res;
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);
	assert_non_null(fp);
	assert_int_equal(fmrc_emit(rc, &eo, fp, &res), 0);
	fclose(fp);
	fmrc_free(rc);
	return out;
}

static void
expect_in(const char *text, const char *needle)
{
	char *out = emit(text);
	if (strstr(out, needle) == NULL)
		fail_msg("[%s] does not give [%s]:\n%s", text, needle, out);
	free(out);
}

static void
expect_not_in(const char *text, const char *needle)
{
	char *out = emit(text);
	if (strstr(out, needle) != NULL)
		fail_msg("[%s] gives [%s]:\n%s", text, needle, out);
	free(out);
}

static void
test_basic_structure(void **state)
{
	(void)state;
	struct fmrc *rc = parse_ok("set daemon 300\n"
	    "poll a.example with proto IMAP port 993:\n"
	    "  user \"joe\" there with password \"pw\" is jdoe here, options ssl keep fetchall\n"
	    "  user bob pass x\n"
	    "skip b.example via c.example user z\n");
	assert_int_equal(rc->globals.n, 1);
	assert_string_equal(rc->globals.v[0].text, "set daemon 300");
	assert_int_equal(rc->npolls, 2);
	assert_string_equal(rc->polls[0].name, "a.example");
	assert_string_equal(rc->polls[0].proto, "IMAP");
	assert_string_equal(rc->polls[0].service, "993");
	assert_int_equal(rc->polls[0].nusers, 2);
	assert_string_equal(rc->polls[0].users[0].remote, "joe");
	assert_string_equal(rc->polls[0].users[0].password, "pw");
	assert_int_equal(rc->polls[0].users[0].local.n, 1);
	assert_string_equal(rc->polls[0].users[0].local.v[0], "jdoe");
	assert_int_equal(rc->polls[0].users[0].ssl, 1);
	assert_int_equal(rc->polls[0].users[0].keep, 1);
	assert_int_equal(rc->polls[0].users[0].fetchall, 1);
	assert_int_equal(rc->polls[0].users[0].line, 3);
	assert_string_equal(rc->polls[0].users[1].remote, "bob");
	assert_int_equal(rc->polls[0].users[1].keep, -1);
	assert_int_equal(rc->polls[0].users[1].line, 4);
	assert_int_equal(rc->polls[1].skip, 1);
	assert_string_equal(rc->polls[1].via, "c.example");
	assert_int_equal(rc->polls[1].line, 5);
	fmrc_free(rc);
}

static void
test_lexer_rules(void **state)
{
	(void)state;
	struct fmrc *rc;

	/* After user, is, password: any word is a name, keywords included. */
	rc = parse_ok("poll h user keep password ssl is here here");
	assert_string_equal(rc->polls[0].users[0].remote, "keep");
	assert_string_equal(rc->polls[0].users[0].password, "ssl");
	assert_string_equal(rc->polls[0].users[0].local.v[0], "here");
	assert_int_equal(rc->polls[0].users[0].ssl, -1);
	fmrc_free(rc);

	/* A number after password is a string. */
	rc = parse_ok("poll h user u password 12345");
	assert_string_equal(rc->polls[0].users[0].password, "12345");
	fmrc_free(rc);

	/* Quotes: the longer match wins; "a\"b" is not a quoted string. */
	rc = parse_ok("poll h user u password \"pa\\\"ss\"");
	assert_string_equal(rc->polls[0].users[0].password, "\"pa\"ss\"");
	fmrc_free(rc);
	rc = parse_ok("poll h user u password 'it''s'");
	assert_string_equal(rc->polls[0].users[0].password, "'it''s'");
	fmrc_free(rc);
	rc = parse_ok("poll h user u password \"with space; and # hash\"");
	assert_string_equal(rc->polls[0].users[0].password, "with space; and # hash");
	fmrc_free(rc);

	/* Escapes: hex, octal (0 first), decimal, C-style, backslash-newline. */
	rc = parse_ok("poll h user u password \"\\x41\\041\\67\\t\\\\z\\\nq\"");
	assert_string_equal(rc->polls[0].users[0].password, "A!C\t\\zq");
	fmrc_free(rc);

	/* A quoted string may span lines; line numbers follow. */
	rc = parse_ok("poll h user u password \"a\nb\"\npoll i user v");
	assert_string_equal(rc->polls[0].users[0].password, "a\nb");
	assert_int_equal(rc->polls[1].line, 3);
	fmrc_free(rc);

	/* Noise words and punctuation vanish; comments too; nokeep is no keep. */
	rc = parse_ok("# c\npoll h with proto imap and options: user u, has pass p; wants nokeep # end\n");
	assert_int_equal(rc->polls[0].users[0].keep, 0);
	fmrc_free(rc);
	rc = parse_ok("poll h user u no fetchall no ssl no sslcertck");
	assert_int_equal(rc->polls[0].users[0].fetchall, 0);
	assert_int_equal(rc->polls[0].users[0].ssl, 0);
	assert_int_equal(rc->polls[0].users[0].sslcertck, 0);
	fmrc_free(rc);

	/* "password" is an auth type only right after auth. */
	rc = parse_ok("poll h auth password user u password p");
	assert_string_equal(rc->polls[0].auth, "password");
	assert_string_equal(rc->polls[0].users[0].password, "p");
	fmrc_free(rc);

	/* A word that only starts like a keyword is a string. */
	parse_bad("poll h user u keep keepsake", "'keepsake' where");
}

static void
test_grammar(void **state)
{
	(void)state;
	struct fmrc *rc;

	/* Options without user belong to the default user. */
	rc = parse_ok("poll h proto imap keep folder a b, \"c d\"");
	assert_int_equal(rc->polls[0].nusers, 1);
	assert_null(rc->polls[0].users[0].remote);
	assert_int_equal(rc->polls[0].users[0].folders.n, 3);
	assert_string_equal(rc->polls[0].users[0].folders.v[2], "c d");
	fmrc_free(rc);

	/* user NAMES here: local names; is NAME there: the login. */
	rc = parse_ok("poll h user esr here is eric there");
	assert_string_equal(rc->polls[0].users[0].remote, "eric");
	assert_string_equal(rc->polls[0].users[0].local.v[0], "esr");
	fmrc_free(rc);

	/* Multidrop lists and mappings. */
	rc = parse_ok("poll h user md to a 'b'='c' * here");
	assert_int_equal(rc->polls[0].users[0].local.n, 2);
	assert_string_equal(rc->polls[0].users[0].local.v[1], "b=c");
	assert_int_equal(rc->polls[0].users[0].mapped, 1);
	assert_int_equal(rc->polls[0].users[0].wildcard, 1);
	fmrc_free(rc);

	/* Relative file names are taken against the rc file's directory. */
	rc = parse_ok("poll h user u sslcertfile ca.pem set logfile log");
	assert_string_equal(rc->polls[0].users[0].sslcertfile, "/home/u/ca.pem");
	assert_string_equal(rc->globals.v[0].text, "set logfile \"/home/u/log\"");
	fmrc_free(rc);

	/* Secrets never reach the text kept for comments. */
	rc = parse_ok("poll h esmtppassword \"s3cret\" user u");
	assert_null(strstr(rc->polls[0].other.v[0].text, "s3cret"));
	fmrc_free(rc);

	parse_bad("poll h user u ssl\n timeout 30", "rc:2: server option 'timeout' after user options");
	parse_bad("poll h ssl user u", "rc:1: 'user' after options");
	parse_bad("poll h user u\ndefaults keep", "rc:2: 'defaults' must be the first entry");
	parse_bad("poll h proto smtp", "a protocol");
	parse_bad("poll h sslproto auto user u", "'auto' where a string after 'sslproto'");
	parse_bad("poll h user u limit lots", "a number after 'limit'");
	parse_bad("poll", "rc:1: the end of the file where a string after 'poll'");
	parse_bad("user x", "rc:1: 'user' where 'poll', 'skip', 'defaults' or 'set'");
	parse_bad("set no daemon 3", "'set no daemon'");
	parse_bad("poll h user u limit 99999999999999999999", "too large");
	parse_bad("poll h user u password \"p\" \"stray\"", "a quoted string where");
	{
		const char nul[] = "poll h\0 user u";
		struct fmrc *r = NULL;
		struct mf_error err = { 0 };
		assert_int_equal(fmrc_parse(nul, sizeof nul - 1, "rc", "/", &r, &err), MF_EUSAGE);
		assert_non_null(strstr(err.msg, "NUL"));
	}
}

static void
test_writer(void **state)
{
	(void)state;
	expect_in("poll h user u password p ssl", "\n[h]\n");
	expect_in("poll h user u password p ssl", "\nport = 993\ntls = implicit\n");
	expect_in("poll h user u password p", "\nport = 143\ntls = starttls\n");
	expect_in("poll h user u password p", "\nkeep = no\n");
	expect_in("poll h user u password p keep", "\nkeep = yes\n");
	expect_in("poll h user u password p", "\ndeliver = smtp\nsmtp = localhost:25\n");
	expect_in("poll h user u password \"a;b\"", "\npassword = \"a;b\"\n");
	expect_in("poll h user u password p is loc here mda \"procmail -d %T\"", "\nmda = procmail -d loc\n");
	expect_in("poll h user u password p mda \"sendmail -f '%F' %T x%y\"", "\nmda = sendmail -f %F %T x%%y\n");
	expect_in("poll h user u password p is loc here smtphost relay/2525 smtpaddress ex.org",
	    "\nsmtp = relay:2525\nrecipient = loc@ex.org\n");
	expect_in("poll h user u password p lmtp smtphost lm/24", "\ndeliver = lmtp\nlmtp = lm:24\n");
	expect_in("poll h user u password p smtphost /run/lmtp", "\ndeliver = lmtp\nlmtp = /run/lmtp\n");
	expect_in("poll h user u password p sslproto TLS1.3+", "\ntls_min_version = 1.3\n");
	expect_in("poll h user u password p limit 1000 fetchlimit 5", "\nlimit = 1000\nfetch_limit = 5\n");
	expect_in("poll h user u password p postconnect \"x\"", "# postconnect \"x\" (line 1)");
	expect_in("poll h user u password p sslfingerprint \"AB:CD\"", "sslfingerprint \"AB:CD\": an MD5");
	expect_in("poll h user u", "\npassword_command = secret-tool lookup host h user u\n");
	expect_in("poll h user u password p passwordfile \"/x y\"", "\npassword = p\n");
	expect_in("poll h user u passwordfile \"/x y\"", "\npassword_command = cat '/x y'\n");
	expect_in("poll h proto pop3 user u password p", "#[h]\n");
	expect_in("poll h user u password p to a b here", "COMMENTED OUT: multidrop");
	expect_in("skip h user u password p", "#[h]\n");
	expect_in("poll h user u password \"a'b\\x22c;d\"", "#[h]\n");
	expect_in("poll \"Mail Server!\" user u password p", "\n[mail-server]\n");
	expect_in("poll h user a password p user b password q", "\n[h-a]\n");
	expect_in("poll h user a password p\npoll h user a password q", "\n[h-a-2]\n");
	expect_in("poll defaults.example user u password p\npoll \"defaults\" user v password q", "\n[defaults-2]\n");
	expect_in("set daemon 60\npoll h user u password p", "mailfetch --daemon 60");
	expect_in("defaults proto imap keep mda \"m -d %T\"\npoll h user u password p", "\nkeep = yes\n");
	expect_in("defaults proto imap keep mda \"m -d %T\"\npoll h user u password p", "\nmda = m -d %T\n");
	/* A control character never starts a line of its own in a comment. */
	expect_not_in("poll h user u password p postconnect \"a\\nkeep = yes\"", "\nkeep = yes\n");
	expect_not_in("poll h esmtppassword \"hid\" user u password s3cr3t", "hid");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_structure),
		cmocka_unit_test(test_lexer_rules),
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
