/* net.h: TCP connections. */
#ifndef MAILFETCH_NET_H
#define MAILFETCH_NET_H

#include "status.h"

/* Resolves host (IPv6 and IPv4, in getaddrinfo's order; the lookup itself
 * bounded by timeout_ms where getaddrinfo_a exists) and connects to the
 * first address that answers within timeout_ms each.  Returns a
 * non-blocking, close-on-exec socket, or -1 with err set (MF_EDNS for a
 * failed lookup, MF_ECONNECT otherwise).  The caller closes the socket. */
int net_connect(const char *host, unsigned port, int timeout_ms, struct mf_error *err);

/* Waits until fd is readable (events POLLIN) or writable (POLLOUT).
 * Returns 1 when ready, 0 on timeout, -1 on error (errno set). */
int net_wait(int fd, short events, int timeout_ms);

/* Milliseconds on the monotonic clock, for deadlines. */
long net_now_ms(void);

#endif
