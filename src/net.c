/* net.c: name lookup and connect with a timeout, driven by poll(). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mf_limits.h"
#include "net.h"
#include "signals.h"
#include "xmalloc.h"

long
net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
net_wait(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	long deadline = net_now_ms() + timeout_ms;
	int r;

	/* A signal that asks us to stop cuts every wait to what is left of
	 * the grace period, so a stopping run cannot hang on the server. */
	for (;;) {
		long left = deadline - net_now_ms(), grace = signals_stop_left_ms(), slice;
		if (grace < left)
			left = grace;
		/* A signal that lands just before poll() does not wake it:
		 * wait in slices, looking at the stop flag between them. */
		slice = left > STOP_CHECK_MS ? STOP_CHECK_MS : left;
		r = poll(&pfd, 1, slice > 0 ? (int)slice : 0);
		if (r == 0 && slice < left)
			continue;
		if (r >= 0 || errno != EINTR)
			break;
	}
	if (r > 0 && (pfd.revents & (POLLERR | POLLNVAL)) && !(pfd.revents & events)) {
		errno = EIO;
		return -1;
	}
	return r;
}

/* One address: non-blocking connect, wait, check SO_ERROR. */
static int
connect_one(const struct addrinfo *ai, int timeout_ms, int *eno)
{
	int fd, r, soerr = 0;
	socklen_t len = sizeof soerr;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0) {
		*eno = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		*eno = errno;
		close(fd);
		return -1;
	}
	r = net_wait(fd, POLLOUT, timeout_ms);
	if (r == 0) {
		*eno = ETIMEDOUT;
	} else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
		*eno = errno;
	} else if (soerr != 0) {
		*eno = soerr;
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

#ifdef HAVE_GETADDRINFO_A
/* One lookup handed to glibc's resolver thread, in one block: gai_cancel
 * cannot stop a query that is already running, and the thread writes its
 * answer into cb when the query ends, so a lookup we give up on is left
 * to the thread whole (a few hundred bytes per timed-out lookup) rather
 * than freed under it. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char service[16];
	char host[];
};

/* getaddrinfo, waiting at most timeout_ms.  Returns getaddrinfo's result
 * code; *timed_out is set when no answer came in time. */
static int
lookup(const char *host, unsigned port, int timeout_ms, struct addrinfo **res, int *timed_out)
{
	size_t hlen = strlen(host) + 1;
	struct lookup *l;
	struct gaicb *list[1];
	long deadline = net_now_ms() + timeout_ms;
	int r;

	*timed_out = 0;
	{
		/* An address needs no resolver, so no resolver thread: its exit
		 * (unwinding, a second later) maps libgcc_s and more of libc,
		 * 380 KiB of the peak RSS of a whole run (bench/README.md). */
		struct addrinfo nh = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
		char sv[16];
		snprintf(sv, sizeof sv, "%u", port);
		if (getaddrinfo(host, sv, &nh, res) == 0)
			return 0;
	}
	l = xcalloc(1, sizeof *l + hlen);
	list[0] = &l->cb;
	memcpy(l->host, host, hlen);
	snprintf(l->service, sizeof l->service, "%u", port);
	l->hints.ai_family = AF_UNSPEC;
	l->hints.ai_socktype = SOCK_STREAM;
	l->cb.ar_name = l->host;
	l->cb.ar_service = l->service;
	l->cb.ar_request = &l->hints;
	r = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (r != 0) {
		free(l);
		return r;
	}
	while ((r = gai_error(&l->cb)) == EAI_INPROGRESS) {
		long left = deadline - net_now_ms(), grace = signals_stop_left_ms();
		struct timespec ts;
		if (grace < left)
			left = grace;
		if (left > STOP_CHECK_MS)
			left = STOP_CHECK_MS; /* see net_wait */
		if (left <= 0) {
			*timed_out = 1;
			if (gai_cancel(&l->cb) == EAI_NOTCANCELED)
				return EAI_AGAIN; /* the block now belongs to the thread */
			/* Cancelled before it ran, or done just now: ours again. */
			r = gai_error(&l->cb);
			*timed_out = r == EAI_CANCELED;
			break;
		}
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000L;
		/* Returns on completion, timeout or a signal; the loop looks again. */
		(void)gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	*res = r == 0 ? l->cb.ar_result : NULL;
	free(l);
	return r;
}
#else
/* Without getaddrinfo_a the lookup takes as long as the resolver says
 * (resolv.conf's timeout and attempts). */
static int
lookup(const char *host, unsigned port, int timeout_ms, struct addrinfo **res, int *timed_out)
{
	struct addrinfo hints;
	char service[16];

	(void)timeout_ms;
	*timed_out = 0;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof service, "%u", port);
	return getaddrinfo(host, service, &hints, res);
}
#endif

int
net_is_loopback(const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, &in6addr_loopback, 16) == 0)
			return 1;
		return memcmp(a, mapped, sizeof mapped) == 0 && a[12] == 127; /* ::ffff:127.x.y.z */
	}
	return 0;
}

int
net_connect(const char *host, unsigned port, int timeout_ms, struct mf_error *err)
{
	return net_connect_addr(host, port, timeout_ms, NULL, err);
}

int
net_connect_addr(const char *host, unsigned port, int timeout_ms, int *loopback, struct mf_error *err)
{
	struct addrinfo *res, *ai;
	int r, timed_out, fd = -1, eno = 0;

	r = lookup(host, port, timeout_ms, &res, &timed_out);
	if (timed_out)
		return err_set(err, MF_EDNS, "cannot resolve %s: no answer within %d s; check your DNS, "
		    "or raise timeout if it is this slow", host, timeout_ms / 1000), -1;
	if (r != 0)
		return err_set(err, MF_EDNS, "cannot resolve %s: %s; check host in the config and your DNS",
		    host, gai_strerror(r)), -1;
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = connect_one(ai, timeout_ms, &eno);
		if (fd >= 0 && loopback != NULL)
			*loopback = net_is_loopback(ai->ai_addr);
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(err, MF_ECONNECT, "cannot connect to %s port %u: %s; check host, port and your network",
		    host, port, strerror(eno)), -1;
	return fd;
}

int
net_connect_unix(const char *path, int timeout_ms, struct mf_error *err)
{
	struct sockaddr_un sun;
	long deadline = net_now_ms() + timeout_ms;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		return err_set(err, MF_ECONNECT, "socket path %s is longer than %zu bytes; use a shorter path "
		    "(a symbolic link to the socket will do)", path, sizeof sun.sun_path - 1), -1;
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(err, MF_ECONNECT, "cannot create a socket: %s; try again later", strerror(errno)), -1;
	/* A local connect either succeeds at once or fails at once, but for
	 * a listener whose backlog is full (EAGAIN), which poll() cannot
	 * wait for: try again now and then until the timeout. */
	while (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		struct timespec pause = { 0, 50 * 1000000L };
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || net_now_ms() >= deadline || signals_stop_left_ms() <= 0) {
			int e = errno == EAGAIN ? ETIMEDOUT : errno;
			close(fd);
			return err_set(err, MF_ECONNECT, "cannot connect to socket %s: %s", path, strerror(e)), -1;
		}
		nanosleep(&pause, NULL);
	}
	return fd;
}
