/* sdnotify.c: sd_notify(3) over a datagram socket, and the watchdog
 * interval, without libsystemd. */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sdnotify.h"

/* Fills sa from $NOTIFY_SOCKET's value and returns the address length to
 * pass to sendto, or 0 with errno set. */
static socklen_t
notify_address(const char *name, struct sockaddr_un *sa)
{
	size_t n = strlen(name);

	/* systemd >= 254 also hands out "vsock:CID:PORT" (to VMs); a mail
	 * fetcher runs under a local manager, so only AF_UNIX is spoken. */
	if (name[0] != '/' && name[0] != '@') {
		errno = EAFNOSUPPORT;
		return 0;
	}
	if (n >= sizeof sa->sun_path) {
		errno = ENAMETOOLONG;
		return 0;
	}
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@') {
		/* abstract: a leading NUL, and the length says where the name
		 * ends (a trailing NUL would be part of it) */
		sa->sun_path[0] = '\0';
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

int
sdn_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	ssize_t r;
	int fd, saved;

	if (state == NULL || state[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (name == NULL || name[0] == '\0')
		return 0;
	salen = notify_address(name, &sa);
	if (salen == 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	len = strlen(state);
	/* The kernel adds our credentials; systemd (NotifyAccess=main) checks
	 * that the sender is the main pid, which a per-call socket is. */
	do
		r = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
	while (r < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	if (r < 0) {
		errno = saved;
		return -1;
	}
	if ((size_t)r != len) {
		/* a datagram goes whole or not at all; this cannot happen */
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

int
sdn_reloading(void)
{
	struct timespec now;
	char msg[64];

	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		return -1;
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)(now.tv_nsec / 1000));
	return sdn_send(msg);
}

/* A decimal number, digits only (no sign, blank or suffix), into *out;
 * -1 on anything else or overflow. */
static int
parse_decimal(const char *s, unsigned long long *out)
{
	unsigned long long v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -1;
		d = (unsigned)(*s - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

long
sdn_watchdog_ms(void)
{
	const char *pid = getenv("WATCHDOG_PID");
	unsigned long long usec, p, ms;

	/* Set but empty or garbage counts as "not ours", like libsystemd. */
	if (pid != NULL && (parse_decimal(pid, &p) != 0 || p != (unsigned long long)getpid()))
		return 0;
	if (parse_decimal(getenv("WATCHDOG_USEC"), &usec) != 0 || usec == 0)
		return 0;
	/* Rounded down, so the caller's pings come early rather than late. */
	ms = usec / 1000;
	if (ms == 0)
		ms = 1;
	if (ms > (unsigned long long)LONG_MAX)
		ms = LONG_MAX;
	return (long)ms;
}
