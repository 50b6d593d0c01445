/* Unit tests for log: the log file (timestamps, mode, no symlink, O_CLOEXEC)
 * and log_reopen, also while other threads are writing (no line lost, none
 * cut or mixed with another).  Syslog and the journal prefixes are tested
 * by tests/integration/t-logging.py. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
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

#include "log.h"
#include "status.h"

static char dir[] = "/tmp/mf-log-test.XXXXXX";
static char path[300];
static regex_t line_re;

/* The file at p, NUL-terminated (malloc'd; "" if there is none). */
static char *
slurp(const char *p)
{
	FILE *fp = fopen(p, "r");
	char *data = NULL;
	size_t len = 0, cap = 0, n;

	if (fp == NULL)
		return strdup("");
	do {
		if (cap - len < 65536) {
			cap = cap * 2 + 65536;
			data = realloc(data, cap);
			assert_non_null(data);
		}
		n = fread(data + len, 1, cap - len - 1, fp);
		len += n;
	} while (n > 0);
	fclose(fp);
	data[len] = '\0';
	return data;
}

/* Checks every line of text has a timestamp and "mailfetch: " in front;
 * returns the number of lines. */
static size_t
check_lines(const char *text)
{
	size_t n = 0;
	for (const char *l = text; *l != '\0'; n++) {
		const char *nl = strchr(l, '\n');
		char one[512];
		assert_non_null(nl);
		snprintf(one, sizeof one, "%.*s", (int)(nl - l), l);
		if (regexec(&line_re, one, 0, NULL, 0) != 0)
			fail_msg("line without its timestamp: %s", one);
		l = nl + 1;
	}
	return n;
}

static char *
path_of(const char *name)
{
	static char p[4][320];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static void
test_symlink_refused(void **state)
{
	struct mf_error err = { 0 };
	char *link = path_of("link.log"), *target = path_of("target.log");

	(void)state;
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(log_open_file(link, &err), MF_EUSAGE);
	assert_non_null(strstr(err.msg, link));
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_int_equal(access(target, F_OK), -1);
	assert_int_equal(log_reopen(&err), 0); /* not logging to a file: nothing to do */
}

static void
test_no_directory(void **state)
{
	struct mf_error err = { 0 };
	char *p = path_of("missing/x.log");

	(void)state;
	assert_int_equal(log_open_file(p, &err), MF_EUSAGE);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, "No such file"));
	assert_int_equal(log_open_file(dir, &err), MF_EUSAGE);
	assert_non_null(strstr(err.msg, "directory"));
}

/* The fd open on path, or -1. */
static int
fd_of(const char *p)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && found < 0) {
		char link[300], target[400];
		ssize_t n;
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		n = readlink(link, target, sizeof target - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strcmp(target, p) == 0)
				found = atoi(e->d_name);
		}
	}
	closedir(d);
	return found;
}

static void
test_lines(void **state)
{
	struct mf_error err = { 0 };
	struct stat st;
	char *text;
	int fd;

	(void)state;
	/* an existing file is appended to */
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("2026-01-01T00:00:00.000+00:00 mailfetch: from before\n", fp);
	fclose(fp);
	chmod(path, 0600);
	assert_int_equal(log_open_file(path, &err), 0);
	log_level = LOG_TRACE;
	assert_int_equal(log_status_wanted(), 0);
	log_error("acct (alice@host)", "an error %d", 1);
	log_warn("acct (alice@host)", "a warning");
	log_info("acct", "INBOX: 3 messages to fetch");
	log_trace("acct", "IMAP>", "A0001 NOOP\r\n", 12, 0);
	log_error(NULL, "server said \033[2Jbye\r\n");
	text = slurp(path);
	assert_int_equal(check_lines(text), 6);
	assert_non_null(strstr(text, "+00:00 mailfetch: from before\n"));
	assert_non_null(strstr(text, " mailfetch: acct (alice@host): an error 1\n"));
	assert_non_null(strstr(text, " mailfetch: acct (alice@host): a warning\n"));
	assert_non_null(strstr(text, " mailfetch: acct: INBOX: 3 messages to fetch\n"));
	assert_non_null(strstr(text, " mailfetch: acct: IMAP> A0001 NOOP\n"));
	assert_non_null(strstr(text, " mailfetch: server said \\x1b[2Jbye\\x0d\\x0a\n"));
	free(text);
	fd = fd_of(path);
	assert_true(fd > STDERR_FILENO);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(fd, F_GETFL) & O_APPEND);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void
test_new_file_mode(void **state)
{
	struct mf_error err = { 0 };
	struct stat st;
	char *p = path_of("fresh.log");

	(void)state;
	umask(0);
	assert_int_equal(log_open_file(p, &err), 0);
	umask(022);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* and back to the file of the other tests, on the same fd */
	assert_int_equal(log_open_file(path, &err), 0);
	assert_int_equal(fd_of(p), -1);
}

static void
test_reopen(void **state)
{
	struct mf_error err = { 0 };
	char *old = path_of("mf.log.1"), *text;
	int fd = fd_of(path);

	(void)state;
	assert_int_equal(rename(path, old), 0);
	log_error("acct", "still the old file");
	assert_int_equal(log_reopen(&err), 0);
	log_error("acct", "the new file");
	text = slurp(path);
	assert_int_equal(check_lines(text), 1);
	assert_non_null(strstr(text, " mailfetch: acct: the new file\n"));
	free(text);
	text = slurp(old);
	assert_non_null(strstr(text, " mailfetch: acct: still the old file\n"));
	assert_null(strstr(text, "the new file"));
	free(text);
	assert_int_equal(fd_of(path), fd); /* the same descriptor */
	assert_int_equal(fd_of(old), -1);  /* the old file is closed */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void
test_reopen_fails(void **state)
{
	struct mf_error err = { 0 };
	char *old = path_of("mf.log.2"), *target = path_of("elsewhere"), *text;

	(void)state;
	assert_int_equal(rename(path, old), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(log_reopen(&err), MF_EUSAGE);
	assert_non_null(strstr(err.msg, path));
	log_error("acct", "kept the old file");
	text = slurp(old);
	assert_non_null(strstr(text, " mailfetch: acct: kept the old file\n"));
	free(text);
	assert_int_equal(access(target, F_OK), -1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(log_reopen(&err), 0);
	log_error("acct", "a new one again");
	text = slurp(path);
	assert_non_null(strstr(text, "a new one again"));
	free(text);
}

#define NTHREADS 4
#define NLINES 5000
#define NROTATE 40

static void *
writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int l = 0; l < NLINES; l++)
		log_info("acct", "thread %d line %d: some text to make the line longer than a few bytes, "
		    "so that a torn write would show", t, l);
	return NULL;
}

static void
test_reopen_under_load(void **state)
{
	static unsigned char seen[NTHREADS][NLINES];
	struct mf_error err = { 0 };
	pthread_t th[NTHREADS];
	size_t total = 0, files_with_lines = 0;

	(void)state;
	assert_int_equal(unlink(path), 0);
	assert_int_equal(log_reopen(&err), 0);
	log_level = LOG_VERBOSE;
	for (int t = 0; t < NTHREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t), 0);
	for (int r = 0; r < NROTATE; r++) {
		char name[32];
		snprintf(name, sizeof name, "load.%d", r);
		usleep(2000);
		assert_int_equal(rename(path, path_of(name)), 0);
		assert_int_equal(log_reopen(&err), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (int r = 0; r <= NROTATE; r++) {
		char name[32], *text;
		size_t n;
		snprintf(name, sizeof name, "load.%d", r);
		text = slurp(r < NROTATE ? path_of(name) : path);
		n = check_lines(text);
		total += n;
		files_with_lines += n > 0;
		for (const char *l = text; (l = strstr(l, " mailfetch: acct: thread ")) != NULL; l++) {
			int t, k;
			assert_int_equal(sscanf(l, " mailfetch: acct: thread %d line %d:", &t, &k), 2);
			assert_true(t >= 0 && t < NTHREADS && k >= 0 && k < NLINES);
			assert_int_equal(seen[t][k], 0);
			seen[t][k] = 1;
		}
		free(text);
	}
	assert_int_equal(total, NTHREADS * NLINES);
	for (int t = 0; t < NTHREADS; t++)
		for (int k = 0; k < NLINES; k++)
			if (!seen[t][k])
				fail_msg("thread %d line %d lost", t, k);
	/* the rotation happened while they wrote */
	assert_true(files_with_lines > 2);
}

static int
cleanup(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_symlink_refused),
		cmocka_unit_test(test_no_directory),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_new_file_mode),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_reopen_fails),
		cmocka_unit_test(test_reopen_under_load),
	};
	int rc;

	umask(022);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof path, "%s/mf.log", dir);
	if (regcomp(&line_re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} "
	    "mailfetch: [^\x01-\x1f]*$", REG_EXTENDED | REG_NOSUB) != 0)
		return 99;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	regfree(&line_re);
	(void)!cleanup();
	return rc;
}
