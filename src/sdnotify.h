/* sdnotify.h: the service manager's notification protocol (sd_notify(3))
 * without libsystemd, for daemon mode under a Type=notify unit.
 *
 * A message is one datagram of "NAME=value" lines sent to the AF_UNIX
 * socket named by $NOTIFY_SOCKET: a path ("/run/user/1000/systemd/notify"),
 * or an abstract name when it starts with '@'.  The protocol is stable
 * (systemd.io/PORTABILITY_AND_STABILITY).  Nothing here logs: the caller
 * decides whether a failure is worth a line.  No process-wide state (a
 * socket per call; calls are rare), so any thread may call; like every
 * getenv() user, it must not race a setenv() in another thread. */
#ifndef MAILFETCH_SDNOTIFY_H
#define MAILFETCH_SDNOTIFY_H

/* Sends state as one datagram to $NOTIFY_SOCKET: "READY=1",
 * "STATUS=polling 2 accounts", "STOPPING=1", "WATCHDOG=1", several
 * separated by '\n'.  Never blocks (a full queue is EAGAIN, an error) and
 * never raises SIGPIPE.  Returns 0 when sent, and also when NOTIFY_SOCKET
 * is unset or empty (not under a service manager: nothing to do); -1 with
 * errno set on failure (state NULL or empty: EINVAL; NOTIFY_SOCKET neither
 * a path nor '@': EAFNOSUPPORT; too long for sun_path: ENAMETOOLONG;
 * nobody listening: ENOENT or ECONNREFUSED). */
int sdn_send(const char *state);

/* Sends "RELOADING=1\nMONOTONIC_USEC=<now>" (CLOCK_MONOTONIC, in µs), at
 * the start of a config re-read; send "READY=1" when it is done.  systemd
 * >= 253 pairs the timestamp with the reload request it is serving; older
 * ones ignore the field.  Same results as sdn_send. */
int sdn_reloading(void);

/* The watchdog interval the service manager asked for (WatchdogSec=, given
 * as $WATCHDOG_USEC), in milliseconds, rounded down but at least 1; 0 when
 * there is none: WATCHDOG_USEC unset, empty, 0 or not a decimal number, or
 * WATCHDOG_PID set but not our pid (the variables were meant for a parent
 * and leaked into our environment).  Send "WATCHDOG=1" at least every half
 * of it. */
long sdn_watchdog_ms(void);

#endif
