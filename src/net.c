/* net.c: name lookup and connect with a timeout, driven by poll(). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

int
net_wait(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
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

int
net_connect(const char *host, unsigned port, int timeout_ms, struct mf_error *err)
{
	struct addrinfo hints, *res, *ai;
	char service[16];
	int r, fd = -1, eno = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof service, "%u", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0)
		return err_set(err, MF_EDNS, "cannot resolve %s: %s; check host in the config and your DNS",
		    host, gai_strerror(r)), -1;
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = connect_one(ai, timeout_ms, &eno);
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(err, MF_ECONNECT, "cannot connect to %s port %u: %s; check host, port and your network",
		    host, port, strerror(eno)), -1;
	return fd;
}
