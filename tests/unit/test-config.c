/* Unit tests for config: the key table, defaults, inheritance from
 * [defaults], and the errors a user must see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char dir[] = "/tmp/mf-config-test.XXXXXX";

static const char *
write_bytes(const char *text, size_t len, mode_t mode)
{
	static char path[300];
	FILE *fp;
	snprintf(path, sizeof path, "%s/fetchrc", dir);
	unlink(path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	fclose(fp);
	chmod(path, mode);
	return path;
}

static const char *
write_file(const char *text, mode_t mode)
{
	return write_bytes(text, strlen(text), mode);
}

static int
load(const char *text, mode_t mode, struct config **cfg, struct mf_error *err)
{
	struct config_overrides ov = { .keep = -1 };
	return config_load(write_file(text, mode), &ov, cfg, err);
}

static void
expect_error(const char *text, mode_t mode, int code, const char *needle)
{
	struct config *cfg = NULL;
	struct mf_error err = { 0 };
	int rc = load(text, mode, &cfg, &err);
	if (rc != code || strstr(err.msg, needle) == NULL)
		fail_msg("config [%s]: got %d [%s], want %d with [%s]", text, rc, err.msg, code, needle);
	assert_null(cfg);
}

static void
test_defaults_and_inheritance(void **state)
{
	struct config *cfg = NULL;
	struct mf_error err = { 0 };
	const struct account *a;

	setenv("HOME", "/home/u", 1);
	assert_int_equal(load("[defaults]\ntimeout = 30\nuser = dflt\n\n"
	    "[Work]\nhost = imap.example.org\npassword = x\ndeliver = mbox\nmbox = ~/mbox\n"
	    "folders = INBOX, Lists/a , b\n\n"
	    "[home]\nhost = h.example\nport = 143\nuser = me\npassword_command = echo x\nkeep = no\n"
	    "tls_fingerprint = sha256:" "AB:cd:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd\n",
	    0600, &cfg, &err), 0);
	assert_int_equal(cfg->naccounts, 2);
	a = &cfg->accounts[0];
	assert_string_equal(a->name, "work");
	assert_string_equal(a->user, "dflt");
	assert_int_equal(a->timeout, 30);
	assert_int_equal(a->port, 993);
	assert_int_equal(a->tls, TLS_IMPLICIT);
	assert_string_equal(a->mbox, "/home/u/mbox");
	assert_int_equal(a->nfolders, 3);
	assert_string_equal(a->folders[1], "Lists/a");
	assert_int_equal(a->keep, 1);
	assert_int_equal(a->fetch, FETCH_UNSEEN);
	assert_string_equal(a->who, "work (dflt@imap.example.org)");
	a = &cfg->accounts[1];
	assert_int_equal(a->port, 143);
	assert_int_equal(a->tls, TLS_STARTTLS);
	assert_int_equal(a->keep, 0);
	assert_string_equal(a->mda, "/usr/bin/procmail -d %T");
	assert_true(a->has_pin);
	assert_int_equal(a->pin[0], 0xab);
	assert_int_equal(a->pin[31], 0xdd);
	config_free(cfg);
}

static void
test_errors(void **state)
{
	expect_error("[a]\nhost = h\nuser = u\npassword = p\ntsl = none\n", 0600, MF_EUSAGE, "[a] tsl: unknown key");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\nport = 70000\n", 0600, MF_EUSAGE, "[a] port:");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\nport = abc\n", 0600, MF_EUSAGE, "[a] port:");
	expect_error("[a]\nuser = u\npassword = p\n", 0600, MF_EUSAGE, "[a] host: missing");
	expect_error("[a]\nhost = h\nuser = u\n", 0600, MF_EUSAGE, "no password source");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\ntls = none\n", 0600, MF_EUSAGE, "allow_plaintext");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\nkeep = maybe\n", 0600, MF_EUSAGE, "use one of: yes, no");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\ndeliver = mbox\n", 0600, MF_EUSAGE, "[a] mbox: missing");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\nmda = procmail %X\n", 0600, MF_EUSAGE, "unknown escape %X");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\ntls_fingerprint = sha256:abcd\n", 0600, MF_EUSAGE, "64 hex digits");
	expect_error("[defaults]\ntimeout = 0\n[a]\nhost = h\nuser = u\npassword = p\n", 0600, MF_EUSAGE, "[defaults] timeout:");
	expect_error("[defaults]\ntimeout = 5\n", 0600, MF_EUSAGE, "no accounts");
	expect_error("[a]\nhost = h\nuser = u\npassword = p\n", 0640, MF_EPERM, "chmod 600");
	expect_error("[a]\nhost = h\nuser = u\npassword_command = x\n", 0666, MF_EPERM, "writable by group or others");
}

/* password_command_timeout: 30 unless set, inherited, 1..3600. */
static void
test_password_command_timeout(void **state)
{
	struct config *cfg = NULL;
	struct mf_error err = { 0 };

	assert_int_equal(load("[a]\nhost = h\nuser = u\npassword_command = echo p\n"
	    "[b]\nhost = h\nuser = u\npassword_command = echo p\npassword_command_timeout = 3600\n", 0600, &cfg, &err), 0);
	assert_int_equal(cfg->accounts[0].password_command_timeout, 30);
	assert_int_equal(cfg->accounts[1].password_command_timeout, 3600);
	config_free(cfg);
	assert_int_equal(load("[defaults]\npassword_command_timeout = 1\n"
	    "[a]\nhost = h\nuser = u\npassword_command = echo p\n", 0600, &cfg, &err), 0);
	assert_int_equal(cfg->accounts[0].password_command_timeout, 1);
	config_free(cfg);
	expect_error("[a]\nhost = h\nuser = u\npassword_command = echo p\npassword_command_timeout = 0\n", 0600,
	    MF_EUSAGE, "[a] password_command_timeout: '0' is not a number from 1 to 3600");
	expect_error("[defaults]\npassword_command_timeout = 3601\n[a]\nhost = h\nuser = u\npassword_command = echo p\n",
	    0600, MF_EUSAGE, "[defaults] password_command_timeout: '3601' is not a number from 1 to 3600");
}

/* A long account name must not lose keys whose "section:key" name is
 * longer still (it once went through a 300-byte buffer). */
static void
test_long_section_name(void **state)
{
	struct config *cfg = NULL;
	struct mf_error err = { 0 };
	char name[301], text[1200];

	memset(name, 'w', 285);
	name[285] = '\0';
	snprintf(text, sizeof text, "[%s]\nhost = h\nuser = u\npassword = p\ntls_min_version = 1.3\n"
	    "password_command_timeout = 9\n", name);
	assert_int_equal(load(text, 0600, &cfg, &err), 0);
	assert_string_equal(cfg->accounts[0].name, name);
	assert_int_equal(cfg->accounts[0].tls_min_version, 13);
	assert_int_equal(cfg->accounts[0].password_command_timeout, 9);
	config_free(cfg);
}

#define ACCT "[a]\nhost = h\nuser = u\n"

/* What iniparser would cut, join or drop without a word is refused,
 * whatever the key, naming the key (or the line). */
static void
test_raw_values_refused(void **state)
{
	struct config *cfg = NULL;
	struct mf_error err = { 0 };
	static const char nul[] = ACCT "password = ab\0cd";
	char longline[1100];

	/* A trailing backslash joins the next line: "abcdef" would be sent. */
	expect_error(ACCT "password = abc\\\ndef#ghi\n", 0600, MF_EUSAGE,
	    "[a] password: line 4 ends in a backslash, which would join the next line");
	expect_error(ACCT "password = p\ntimeout = 60\\  \n\n", 0600, MF_EUSAGE, "[a] timeout: line 5 ends in a backslash");
	expect_error(ACCT "password = p\nkeep = no\\", 0600, MF_EUSAGE, "[a] keep: line 5 ends in a backslash");
	/* A comment would swallow the key below it. */
	expect_error(ACCT "password = p\n# old: keep = yes \\\nkeep = no\n", 0600, MF_EUSAGE,
	    "fetchrc: line 5 ends in a backslash, which would join the next line to it; remove the backslash");
	expect_error("[a]\\\nhost = h\nuser = u\npassword = p\n", 0600, MF_EUSAGE, "fetchrc: line 1 ends in a backslash");
	/* An unquoted ';' or '#' starts a comment, in any key. */
	expect_error(ACCT "password = p\nfolders = INBOX; Lists\n", 0600, MF_EUSAGE,
	    "[a] folders: the value holds ';', which starts a comment");
	expect_error(ACCT "password = p\ndeliver = mbox\nmbox = ~/Mail/a#b\n", 0600, MF_EUSAGE,
	    "[a] mbox: the value holds '#'");
	expect_error("[defaults]\ntimeout = 30 # seconds\n" ACCT "password = p\n", 0600, MF_EUSAGE,
	    "[defaults] timeout: the value holds '#'");
	expect_error(ACCT "password = p\nkeep = no ; yes\n", 0600, MF_EUSAGE, "[a] keep: the value holds ';'");
	expect_error(ACCT "password = x;y\n", 0600, MF_EUSAGE, "[a] password: the value holds ';'");
	/* A quoted value ends at its next quote; the rest would be dropped. */
	expect_error(ACCT "password = p\nfolders = \"INBOX\", Lists\n", 0600, MF_EUSAGE,
	    "[a] folders: a quoted value must be one quoted string with no \" inside");
	expect_error(ACCT "password = 'it's'\n", 0600, MF_EUSAGE, "[a] password: a quoted value must be one quoted string with no '");
	expect_error(ACCT "password = \"\"abc\n", 0600, MF_EUSAGE, "[a] password: a quoted value");
	expect_error(ACCT "password = \"abc\n", 0600, MF_EUSAGE, "[a] password: the \" that opens the value is not closed");
	expect_error(ACCT "password = p\nmbox = 'x\n", 0600, MF_EUSAGE, "[a] mbox: the ' that opens the value is not closed");
	/* The last of a key set twice would win; sections of one name merge. */
	expect_error(ACCT "password = p\nkeep = no\nkeep = yes\n", 0600, MF_EUSAGE,
	    "[a] keep: set on line 5 and again on line 6, and only the last would count; keep one");
	expect_error(ACCT "password = p\nkeep = no\n[b]\nkeep = no\n[A]\nKeep = yes\n", 0600, MF_EUSAGE,
	    "[a] keep: set on line 5 and again on line 9");
	expect_error("[defaults]\ntimeout = 1\ntimeout = 2\n" ACCT "password = p\n", 0600, MF_EUSAGE,
	    "[defaults] timeout: set on line 2 and again on line 3");
	/* "[]" starts no section: its keys would land in the one above. */
	expect_error(ACCT "password = p\n[]\nkeep = no\n", 0600, MF_EUSAGE, "fetchrc: line 5: a section with no name");
	expect_error(ACCT "password = p\n[ ]\nkeep = no\n", 0600, MF_EUSAGE, "fetchrc: line 5: a section with no name");
	/* A NUL ends the line there, silently on the last line. */
	assert_int_equal(config_load(write_bytes(nul, sizeof nul - 1, 0600), NULL, &cfg, &err), MF_EUSAGE);
	assert_non_null(strstr(err.msg, "fetchrc: line 4 holds a NUL byte"));
	assert_null(cfg);
	/* Over 1022 bytes iniparser gives up; say so with the line. */
	snprintf(longline, sizeof longline, ACCT "password = %01012d\n", 0);
	expect_error(longline, 0600, MF_EUSAGE, "fetchrc: line 4 is longer than 1022 bytes");
	/* Nothing of a value is printed, a password least of all. */
	expect_error(ACCT "password = s3cret;x\n", 0600, MF_EUSAGE, "quote");
	assert_int_equal(load(ACCT "password = s3cret\\\n", 0600, &cfg, &err), MF_EUSAGE);
	assert_null(strstr(err.msg, "s3cret"));
	assert_int_equal(load(ACCT "password = 's3cret'x\n", 0600, &cfg, &err), MF_EUSAGE);
	assert_null(strstr(err.msg, "s3cret"));
}

/* Quoted, a value is taken as it is written; comments and sections may
 * hold anything; keys of unrelated sections are no repeats. */
static void
test_raw_values_accepted(void **state)
{
	struct config *cfg = NULL;
	struct mf_error err = { 0 };
	char longline[1100];
	const struct account *a;

	setenv("HOME", "/home/u", 1);
	assert_int_equal(load("# a = \"b; c # \\ is not at the end\n; [x] = 'y\n"
	    "[defaults]\ntimeout = \"30\" ; a comment after a quoted value\nkeep = no\n"
	    "[a] \r\nhost = h\r\nuser = u\r\npassword = ' in \"side; #x\\ ' # comment\n"
	    "folders = \"INBOX;Lists\"\ndeliver = mbox\nmbox = \"~/Mail/a#b\"\nkeep = yes\n"
	    "[b]\nhost = h\nuser = u\npassword = \"ends in a backslash\\\"\nfolders = 'INBOX, Lists; Old'\n"
	    "mda = \"/usr/bin/procmail -d %T; true\"\n", 0600, &cfg, &err), 0);
	assert_int_equal(cfg->naccounts, 2);
	a = &cfg->accounts[0];
	assert_int_equal(a->timeout, 30);
	assert_int_equal(a->keep, 1);
	assert_string_equal(a->password, " in \"side; #x\\ ");
	assert_int_equal(a->nfolders, 1);
	assert_string_equal(a->folders[0], "INBOX;Lists");
	assert_string_equal(a->mbox, "/home/u/Mail/a#b");
	a = &cfg->accounts[1];
	assert_int_equal(a->keep, 0);
	assert_string_equal(a->password, "ends in a backslash\\");
	assert_int_equal(a->nfolders, 2);
	assert_string_equal(a->folders[1], "Lists; Old");
	assert_string_equal(a->mda, "/usr/bin/procmail -d %T; true");
	config_free(cfg);

	/* 1022 bytes is the longest line iniparser reads. */
	snprintf(longline, sizeof longline, ACCT "password = %01011d\n", 0);
	assert_int_equal(load(longline, 0600, &cfg, &err), 0);
	assert_int_equal(strlen(cfg->accounts[0].password), 1011);
	config_free(cfg);
}

static void
test_readable_without_password(void **state)
{
	struct config *cfg = NULL;
	struct mf_error err = { 0 };
	assert_int_equal(load("[a]\nhost = h\nuser = u\npassword_command = echo p\n", 0644, &cfg, &err), 0);
	config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_inheritance),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_password_command_timeout),
		cmocka_unit_test(test_long_section_name),
		cmocka_unit_test(test_raw_values_refused),
		cmocka_unit_test(test_raw_values_accepted),
		cmocka_unit_test(test_readable_without_password),
	};
	int rc;
	if (mkdtemp(dir) == NULL)
		return 99;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	char path[300];
	snprintf(path, sizeof path, "%s/fetchrc", dir);
	unlink(path);
	rmdir(dir);
	return rc;
}
