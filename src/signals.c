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
 * the time is written before the flag, which is read first).  Threads
 * read them: atomic loads and stores (lock-free, so safe in a handler). */
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

	if (__atomic_load_n(&stop_signo, __ATOMIC_SEQ_CST) != 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	__atomic_store_n(&stop_sec, now.tv_sec, __ATOMIC_SEQ_CST);
	__atomic_store_n(&stop_nsec, now.tv_nsec, __ATOMIC_SEQ_CST);
	/* last: whoever sees the flag sees the time (other threads read it) */
	__atomic_store_n(&stop_signo, signo, __ATOMIC_SEQ_CST);
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
	sigaction(SIGUSR1, &sa, NULL); /* a daemon's "poll now" must not kill a one-shot run */
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
	return __atomic_load_n(&stop_signo, __ATOMIC_SEQ_CST);
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

	if (__atomic_load_n(&stop_signo, __ATOMIC_SEQ_CST) == 0)
		return LONG_MAX;
	clock_gettime(CLOCK_MONOTONIC, &now);
	gone = (long)(now.tv_sec - __atomic_load_n(&stop_sec, __ATOMIC_SEQ_CST)) * 1000 +
	    (now.tv_nsec - __atomic_load_n(&stop_nsec, __ATOMIC_SEQ_CST)) / 1000000;
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

	if (__atomic_load_n(&requests, __ATOMIC_SEQ_CST) != 0 || __atomic_load_n(&stop_signo, __ATOMIC_SEQ_CST) != 0)
		return;
	if (wake_pipe[0] < 0 || poll(&p, 1, timeout_ms) <= 0)
		return;
	while (read(wake_pipe[0], drain, sizeof drain) > 0)
		;
}
