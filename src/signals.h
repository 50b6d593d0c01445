/* signals.h: how a run hears that it should stop (SIGTERM, SIGINT,
 * SIGHUP), and the dispositions every run starts from.  The handlers only
 * set a flag; the fetch loop looks at it between steps and winds down:
 * it finishes or abandons the message in hand, makes what was delivered
 * durable and journaled, sends the marks earned and logs out, within
 * STOP_GRACE_MS. */
#ifndef MAILFETCH_SIGNALS_H
#define MAILFETCH_SIGNALS_H

#include <signal.h>

/* Installs the stop handlers (without SA_RESTART, so a wait returns) and
 * resets SIGCHLD to its default: a parent that ignores it (many scripts
 * do) must not make the kernel reap our children before we read their
 * exit status.  SIGPIPE and SIGXFSZ are ignored: they must show up as
 * EPIPE and EFBIG, not kill us half-way through a delivery. */
void signals_setup(void);

/* Daemon mode: SIGHUP re-reads the config instead of stopping, SIGUSR1
 * asks for a poll of every account; each sets a flag that
 * signals_take() hands out once, and wakes signals_wait(). */
void signals_setup_daemon(void);
enum { SIG_RELOAD = 1, SIG_POLL = 2 };
/* The SIG_RELOAD and SIG_POLL requests since the last call (cleared). */
int signals_take(void);
/* Waits up to timeout_ms for a signal (any of ours): returns at once if
 * one came since the last signals_take(). */
void signals_wait(int timeout_ms);

/* The signal that asked us to stop, or 0. */
int signals_stop(void);

/* The flag the handlers set (nonzero: stop), for waits that must notice. */
const volatile sig_atomic_t *signals_stop_flag(void);

/* Milliseconds left before a stopping run must be gone (STOP_GRACE_MS
 * from the signal); LONG_MAX when no stop was asked.  Every wait
 * (net_wait, the DNS lookup, a child) is capped by it. */
long signals_stop_left_ms(void);

#endif
