/* Unit tests for sdnotify: datagrams to a socket the test binds (a path and
 * an abstract name), the no-op without NOTIFY_SOCKET, failures that must
 * come back at once, and the watchdog variables. */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdnotify.h"

/* What a test bound: the receiving socket and where NOTIFY_SOCKET points. */
struct listener {
	int fd;
	char dir[64];   /* temp directory of a path socket, "" for abstract */
	char name[108]; /* the value of NOTIFY_SOCKET */
};

static long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned long long
now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)(ts.tv_nsec / 1000);
}

/* Binds a datagram socket at a fresh path (abstract: a fresh '@' name)
 * and points NOTIFY_SOCKET at it. */
static void
listen_on(struct listener *l, int abstract)
{
	static int serial;
	struct sockaddr_un sa;
	socklen_t len;
	size_t n;

	memset(l, 0, sizeof *l);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (abstract) {
		snprintf(l->name, sizeof l->name, "@mailfetch-test-sdnotify-%ld-%d", (long)getpid(), serial++);
		n = strlen(l->name);
		memcpy(sa.sun_path, l->name, n);
		sa.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		snprintf(l->dir, sizeof l->dir, "/tmp/mf-sdnotify-XXXXXX");
		assert_non_null(mkdtemp(l->dir));
		snprintf(l->name, sizeof l->name, "%s/notify", l->dir);
		n = strlen(l->name);
		memcpy(sa.sun_path, l->name, n);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", l->name, 1), 0);
}

/* Closes the socket; keep_file leaves a path socket's file behind (a
 * socket nobody listens on any more). */
static void
listen_end(struct listener *l, int keep_file)
{
	close(l->fd);
	if (l->dir[0] != '\0' && !keep_file) {
		char path[128];
		snprintf(path, sizeof path, "%s/notify", l->dir);
		unlink(path);
		rmdir(l->dir);
	}
}

/* The next datagram, which must be there already (sendto on a local
 * datagram socket queues it before returning), as a string; its length. */
static size_t
receive(struct listener *l, char *out, size_t size)
{
	ssize_t r = recv(l->fd, out, size - 1, MSG_DONTWAIT);
	assert_true(r >= 0);
	out[r] = '\0';
	return (size_t)r;
}

static void
assert_queue_empty(struct listener *l)
{
	char c;
	assert_int_equal(recv(l->fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static int
clear_env(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return 0;
}

/* The messages of a daemon's life, received byte for byte. */
static void
check_messages(struct listener *l)
{
	static const char *const msgs[] = {
		"READY=1",
		"STATUS=polling 2 accounts",
		"STATUS=next poll in 300 s\nWATCHDOG=1",
		"WATCHDOG=1",
		"STOPPING=1",
	};
	char got[512];
	size_t i;

	for (i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
		assert_int_equal(sdn_send(msgs[i]), 0);
		assert_int_equal(receive(l, got, sizeof got), strlen(msgs[i]));
		assert_string_equal(got, msgs[i]);
	}
	assert_queue_empty(l);
}

static void
test_path_socket(void **state)
{
	struct listener l;
	listen_on(&l, 0);
	check_messages(&l);
	listen_end(&l, 0);
}

static void
test_abstract_socket(void **state)
{
	struct listener l;
	listen_on(&l, 1);
	check_messages(&l);
	listen_end(&l, 0);
}

static void
test_reloading(void **state)
{
	static const char head[] = "RELOADING=1\nMONOTONIC_USEC=";
	struct listener l;
	unsigned long long before, after, stamp;
	char got[128], *end;

	listen_on(&l, 1);
	before = now_usec();
	assert_int_equal(sdn_reloading(), 0);
	after = now_usec();
	receive(&l, got, sizeof got);
	assert_memory_equal(got, head, sizeof head - 1);
	errno = 0;
	stamp = strtoull(got + sizeof head - 1, &end, 10);
	assert_int_equal(errno, 0);
	assert_true(end != got + sizeof head - 1);
	assert_int_equal(*end, '\0');
	assert_true(stamp >= before && stamp <= after);
	listen_end(&l, 0);
}

static void
test_unset_is_noop(void **state)
{
	assert_int_equal(sdn_send("READY=1"), 0);
	assert_int_equal(sdn_reloading(), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(sdn_send("READY=1"), 0);
	/* a bad message is the caller's bug, under a manager or not */
	errno = 0;
	assert_int_equal(sdn_send(""), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(sdn_send(NULL), -1);
	assert_int_equal(errno, EINVAL);
}

/* Nobody listening, or no such socket: -1 at once, never a wait. */
static void
test_nobody_listening(void **state)
{
	struct listener l;
	char path[128], longname[200];
	long start = now_ms();

	/* a path whose socket was closed: the file is still there */
	listen_on(&l, 0);
	listen_end(&l, 1);
	errno = 0;
	assert_int_equal(sdn_send("READY=1"), -1);
	assert_int_equal(errno, ECONNREFUSED);
	snprintf(path, sizeof path, "%s/notify", l.dir);
	unlink(path);
	errno = 0;
	assert_int_equal(sdn_send("READY=1"), -1);
	assert_int_equal(errno, ENOENT);
	rmdir(l.dir);

	/* an abstract name nobody bound */
	listen_on(&l, 1);
	listen_end(&l, 0);
	errno = 0;
	assert_int_equal(sdn_send("READY=1"), -1);
	assert_int_equal(errno, ECONNREFUSED);

	/* neither a path nor '@' (e.g. systemd's vsock:), and too long */
	setenv("NOTIFY_SOCKET", "run/notify", 1);
	errno = 0;
	assert_int_equal(sdn_send("READY=1"), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
	memset(longname, 'x', sizeof longname - 1);
	longname[0] = '/';
	longname[sizeof longname - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	errno = 0;
	assert_int_equal(sdn_send("READY=1"), -1);
	assert_int_equal(errno, ENAMETOOLONG);

	assert_true(now_ms() - start < 1000);
}

/* A manager that stopped reading: its queue fills, and we get EAGAIN
 * instead of hanging. */
static void
test_full_queue_does_not_block(void **state)
{
	struct listener l;
	long start;
	int i, r = 0;

	listen_on(&l, 1);
	start = now_ms();
	for (i = 0; i < 100000; i++) {
		r = sdn_send("WATCHDOG=1");
		if (r != 0)
			break;
	}
	assert_int_equal(r, -1);
	assert_int_equal(errno, EAGAIN);
	assert_true(now_ms() - start < 5000);
	listen_end(&l, 0);
}

static void
set_watchdog(const char *usec, const char *pid)
{
	clear_env(NULL);
	if (usec != NULL)
		setenv("WATCHDOG_USEC", usec, 1);
	if (pid != NULL)
		setenv("WATCHDOG_PID", pid, 1);
}

static void
test_watchdog(void **state)
{
	char ours[32], other[32];

	snprintf(ours, sizeof ours, "%ld", (long)getpid());
	snprintf(other, sizeof other, "%ld", (long)getpid() + 1);

	set_watchdog(NULL, NULL);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("120000000", NULL);
	assert_int_equal(sdn_watchdog_ms(), 120000);
	set_watchdog("120000000", ours);
	assert_int_equal(sdn_watchdog_ms(), 120000);
	/* rounded down, but never down to "none" */
	set_watchdog("1999", ours);
	assert_int_equal(sdn_watchdog_ms(), 1);
	set_watchdog("1", NULL);
	assert_int_equal(sdn_watchdog_ms(), 1);
	set_watchdog("18446744073709551615", NULL);
	assert_true(sdn_watchdog_ms() > 0);

	/* meant for another process */
	set_watchdog("120000000", other);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("120000000", "1");
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("120000000", "");
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("120000000", "abc");
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("120000000", "-1");
	assert_int_equal(sdn_watchdog_ms(), 0);

	/* garbage, zero, empty, overflow */
	set_watchdog("0", ours);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("", NULL);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("12abc", NULL);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("-5", NULL);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog(" 5", NULL);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("+5000", NULL);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("18446744073709551616", NULL);
	assert_int_equal(sdn_watchdog_ms(), 0);
	set_watchdog("99999999999999999999999", ours);
	assert_int_equal(sdn_watchdog_ms(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_socket, clear_env, clear_env),
		cmocka_unit_test_setup_teardown(test_abstract_socket, clear_env, clear_env),
		cmocka_unit_test_setup_teardown(test_reloading, clear_env, clear_env),
		cmocka_unit_test_setup_teardown(test_unset_is_noop, clear_env, clear_env),
		cmocka_unit_test_setup_teardown(test_nobody_listening, clear_env, clear_env),
		cmocka_unit_test_setup_teardown(test_full_queue_does_not_block, clear_env, clear_env),
		cmocka_unit_test_setup_teardown(test_watchdog, clear_env, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
