/* Unit tests for conn: the wait hook's own time is not the server's.
 * Over a socket pair with a timeout of 1 s, a server that sends two bytes
 * after 2.5 s is cut (the wait times out); the same two bytes waiting
 * when a wait hook that itself took 2.5 s returns (as fetch.c's may,
 * reading an SMTP server's replies) are read, where charging the hook's
 * time to the server would break the low-speed rule (4 bytes a second
 * over a window of one timeout, after the greeting's excuse). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conn.h"
#include "status.h"

#define SLOW_MS 2500 /* more than the timeout and the greeting's excuse (one timeout) together */

struct pair {
	int ours, theirs;
};

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static struct conn *
pair_open(struct pair *p)
{
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	assert_int_equal(fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK), 0);
	p->ours = fds[0];
	p->theirs = fds[1];
	return conn_new(p->ours, 1000, "test", "IMAP");
}

/* The server's side: two bytes after SLOW_MS. */
static void *
late_server(void *arg)
{
	struct pair *p = arg;

	sleep_ms(SLOW_MS);
	assert_int_equal(write(p->theirs, "x\n", 2), 2);
	return NULL;
}

/* A hook that takes SLOW_MS itself; the server's bytes are there when
 * it returns. */
static void
slow_hook(void *ctx)
{
	struct pair *p = ctx;

	sleep_ms(SLOW_MS);
	assert_int_equal(write(p->theirs, "x\n", 2), 2);
}

static void
test_slow_server_is_cut(void **state)
{
	struct pair p;
	struct conn *c = pair_open(&p);
	struct mf_error err = { 0 };
	const char *line;
	size_t len;
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, late_server, &p), 0);
	assert_int_equal(conn_read_line(c, 100, &line, &len, &err), MF_ESERVER);
	assert_non_null(strstr(err.msg, "timed out"));
	pthread_join(t, NULL);
	conn_free(c);
	close(p.theirs);
}

static void
test_hook_time_is_ours(void **state)
{
	struct pair p;
	struct conn *c = pair_open(&p);
	struct mf_error err = { 0 };
	const char *line;
	size_t len;

	(void)state;
	conn_set_wait_hook(c, slow_hook, &p);
	assert_int_equal(conn_read_line(c, 100, &line, &len, &err), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(line, "x\n", 2);
	conn_consume(c, len);
	conn_free(c);
	close(p.theirs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_server_is_cut),
		cmocka_unit_test(test_hook_time_is_ours),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
