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
write_file(const char *text, mode_t mode)
{
	static char path[300];
	FILE *fp;
	snprintf(path, sizeof path, "%s/fetchrc", dir);
	unlink(path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
	return path;
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
