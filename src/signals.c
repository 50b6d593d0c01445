/* signals.c: the stop flag and the signal dispositions of a run. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mf_limits.h"
#include "signals.h"

/* The only mutable state here, written by the handler alone: which
 * signal asked us to stop, and when (clock_gettime is async-signal-safe;
 * the time is written before the flag, which is read first). */
static volatile sig_atomic_t stop_signo;
static volatile time_t stop_sec;
static volatile long stop_nsec;
/* Daemon mode: requests (SIG_RELOAD, SIG_POLL) and the pipe that wakes
 * signals_wait(), written by the handlers (write(2) is async-signal-safe). */
static volatile sig_atomic_t requests;
static int wake_pipe[2] = { -1, -1 };

static void
wake(void)
{
	int e = errno;
	if (wake_pipe[1] >= 0)
		(void)!write(wake_pipe[1], "", 1);
	errno = e;
}

static void
on_request(int signo)
{
	__atomic_fetch_or(&requests, signo == SIGHUP ? SIG_RELOAD : SIG_POLL, __ATOMIC_SEQ_CST);
	wake();
}

static void
on_stop(int signo)
{
	struct timespec now;

	if (stop_signo != 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	stop_sec = now.tv_sec;
	stop_nsec = now.tv_nsec;
	stop_signo = signo;
	wake();
}

void
signals_setup(void)
{
	struct sigaction sa;
	sigset_t unblock;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGXFSZ, &sa, NULL);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* An inherited mask must not hide them (or SIGCHLD) from us. */
	sigemptyset(&unblock);
	sigaddset(&unblock, SIGTERM);
	sigaddset(&unblock, SIGINT);
	sigaddset(&unblock, SIGHUP);
	sigaddset(&unblock, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
}

int
signals_stop(void)
{
	return stop_signo;
}

const volatile sig_atomic_t *
signals_stop_flag(void)
{
	return &stop_signo;
}

long
signals_stop_left_ms(void)
{
	struct timespec now;
	long gone;

	if (stop_signo == 0)
		return LONG_MAX;
	clock_gettime(CLOCK_MONOTONIC, &now);
	gone = (long)(now.tv_sec - stop_sec) * 1000 + (now.tv_nsec - stop_nsec) / 1000000;
	return gone >= STOP_GRACE_MS ? 0 : STOP_GRACE_MS - gone;
}

void
signals_setup_daemon(void)
{
	struct sigaction sa;

	if (wake_pipe[0] < 0 && pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		wake_pipe[0] = wake_pipe[1] = -1;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_request;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

int
signals_take(void)
{
	return __atomic_exchange_n(&requests, 0, __ATOMIC_SEQ_CST);
}

void
signals_wait(int timeout_ms)
{
	struct pollfd p = { .fd = wake_pipe[0], .events = POLLIN };
	char drain[64];

	if (requests != 0 || stop_signo != 0)
		return;
	if (wake_pipe[0] < 0 || poll(&p, 1, timeout_ms) <= 0)
		return;
	while (read(wake_pipe[0], drain, sizeof drain) > 0)
		;
}
