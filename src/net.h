/* net.h: TCP and unix-domain connections. */
#ifndef MAILFETCH_NET_H
#define MAILFETCH_NET_H

#include "status.h"

/* Resolves host (IPv6 and IPv4, in getaddrinfo's order; the lookup itself
 * bounded by timeout_ms where getaddrinfo_a exists) and connects to the
 * first address that answers within timeout_ms each.  Returns a
 * non-blocking, close-on-exec socket, or -1 with err set (MF_EDNS for a
 * failed lookup, MF_ECONNECT otherwise).  The caller closes the socket. */
int net_connect(const char *host, unsigned port, int timeout_ms, struct mf_error *err);
/* net_connect, and sets *loopback when the address connected to (as
 * resolved, whatever the name) is a loopback address: 127.0.0.0/8, ::1
 * or ::ffff:127.0.0.0/104.  0.0.0.0, which Linux takes for this host,
 * is not one. */
int net_connect_addr(const char *host, unsigned port, int timeout_ms, int *loopback, struct mf_error *err);

/* Connects to the unix-domain stream socket at path, waiting at most
 * timeout_ms for a listener with a full backlog.  Returns a non-blocking,
 * close-on-exec socket, or -1 with err set (MF_ECONNECT; the message
 * names the path and errno, the caller says what to do). */
int net_connect_unix(const char *path, int timeout_ms, struct mf_error *err);

struct sockaddr;
/* Whether sa is a loopback address (see net_connect_addr). */
int net_is_loopback(const struct sockaddr *sa);

/* Waits until fd is readable (events POLLIN) or writable (POLLOUT).
 * Returns 1 when ready, 0 on timeout, -1 on error (errno set). */
int net_wait(int fd, short events, int timeout_ms);

/* Milliseconds on the monotonic clock, for deadlines. */
long net_now_ms(void);

#endif
