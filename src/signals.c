/* signals.c: the stop flag and the signal dispositions of a run. */
#include "autoconfig.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "mf_limits.h"
#include "signals.h"

/* The only mutable state here, written by the handler alone: which
 * signal asked us to stop, and when (clock_gettime is async-signal-safe;
 * the time is written before the flag, which is read first). */
static volatile sig_atomic_t stop_signo;
static volatile time_t stop_sec;
static volatile long stop_nsec;

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
