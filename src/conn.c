/* conn.c: buffered reading and writing, plain or TLS, with poll() timeouts. */
#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "mf_limits.h"
#include "log.h"
#include "net.h"
#include "xmalloc.h"

/* The low-speed rule for one direction (see LOW_SPEED_FLOOR): time is
 * counted only while we wait for the server, never while we deliver, in
 * windows of `timeout` seconds. */
struct meter {
	long waited_ms;          /* waiting counted in the current window */
	unsigned long long bytes; /* bytes moved in the current window */
	long excused_ms;         /* server thinking still excused from the count */
};

struct conn {
	int fd;
	struct tls *tls;
	int timeout_ms;
	const char *who;
	char send_prefix[16];
	char recv_prefix[16];
	char *rbuf;
	size_t rstart, rlen, rcap; /* unconsumed bytes: rbuf[rstart .. rstart+rlen) */
	struct meter rmeter, wmeter;
	void (*wait_hook)(void *ctx); /* before every wait for the server */
	void *wait_ctx;
	long hook_ms;          /* spent in wait_hook so far: the server's time it is not */
};

/* Runs the wait hook, keeping count of its time: neither a timeout nor
 * the low-speed rule may charge the server with it. */
static void
run_hook(void *ctx)
{
	struct conn *c = ctx;
	long h0 = net_now_ms();

	c->wait_hook(c->wait_ctx);
	c->hook_ms += net_now_ms() - h0;
}

/* Counts waited_ms of waiting that moved bytes; at the end of a window,
 * cuts the connection (MF_ESERVER) if the window stayed under the floor.
 * what says who was slow ("sends", "takes our data"). */
static int
meter_add(struct conn *c, struct meter *m, long waited_ms, size_t bytes, const char *what, struct mf_error *err)
{
	long excused = waited_ms < m->excused_ms ? waited_ms : m->excused_ms;

	m->excused_ms -= excused;
	m->waited_ms += waited_ms - excused;
	m->bytes += bytes;
	if (m->waited_ms < c->timeout_ms)
		return 0;
	if (m->bytes * 1000 < (unsigned long long)LOW_SPEED_FLOOR * (unsigned long long)m->waited_ms)
		return err_set(err, MF_ESERVER, "server %s too slowly (%llu bytes in %.1f s, the floor is %u bytes/s); "
		    "connection cut; try again later, and check the server and the network if it persists",
		    what, m->bytes, (double)m->waited_ms / 1000, LOW_SPEED_FLOOR);
	m->waited_ms = 0;
	m->bytes = 0;
	return 0;
}

/* A command sent: its answer may take the server up to `timeout` of
 * thinking, which is silence, not a trickle. */
static void
meter_excuse(struct conn *c, const char *data, size_t len)
{
	long cap = (long)LOW_SPEED_EXCUSED_MAX * c->timeout_ms;
	struct meter *m = &c->rmeter;

	for (const char *p = data; (p = memchr(p, '\n', len - (size_t)(p - data))) != NULL; p++)
		m->excused_ms = m->excused_ms + c->timeout_ms < cap ? m->excused_ms + c->timeout_ms : cap;
}

struct conn *
conn_new(int fd, int timeout_ms, const char *who, const char *proto)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->who = who;
	snprintf(c->send_prefix, sizeof c->send_prefix, "%s>", proto);
	snprintf(c->recv_prefix, sizeof c->recv_prefix, "%s<", proto);
	c->rcap = IO_CHUNK * 2;
	c->rbuf = xmalloc(c->rcap);
	c->rmeter.excused_ms = timeout_ms; /* for the greeting */
	return c;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	tls_free(c->tls);
	close(c->fd);
	free(c->rbuf);
	free(c);
}

int
conn_start_tls(struct conn *c, const char *host, const struct tls_opts *o, int implicit, struct mf_error *err)
{
	char peek[8];
	ssize_t n;

	/* Before our ClientHello a TLS server has nothing to say: any byte
	 * buffered or waiting now was injected in plaintext (after STARTTLS)
	 * or is a plaintext greeting (tls = implicit on the wrong port). */
	n = recv(c->fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
	if (implicit && c->rlen == 0 && n > 0)
		return err_set(err, MF_ECONNECT, "the server greeted in plain text (\"%.*s...\") where a TLS handshake "
		    "was due: this port wants STARTTLS or no TLS; use tls = starttls (usually port 143)",
		    (int)strcspn(peek, "\r\n") < (int)n ? (int)strcspn(peek, "\r\n") : (int)n, peek);
	if (c->rlen > 0 || n > 0)
		return err_set(err, MF_EPROTO, "server sent data after its STARTTLS reply, before the TLS handshake "
		    "(STARTTLS injection?); refusing to continue, report this to the server's administrator");
	c->tls = tls_start(c->fd, host, o, c->timeout_ms, c->who, err);
	if (c->tls != NULL && c->wait_hook != NULL)
		tls_set_wait_hook(c->tls, run_hook, c);
	return c->tls != NULL ? 0 : err->code;
}

int
conn_has_input(struct conn *c, int timeout_ms)
{
	if (conn_buffered(c))
		return 1;
	return net_wait(c->fd, POLLIN, timeout_ms) != 0; /* an error: let the read report it */
}

int
conn_fd(const struct conn *c)
{
	return c->fd;
}

int
conn_buffered(const struct conn *c)
{
	return c->rlen > 0 || (c->tls != NULL && tls_pending(c->tls));
}

int
conn_channel_binding(struct conn *c, const char **type, unsigned char *out, size_t *len, size_t max)
{
	return c->tls != NULL ? tls_channel_binding(c->tls, type, out, len, max) : -1;
}

void
conn_set_wait_hook(struct conn *c, void (*fn)(void *ctx), void *ctx)
{
	c->wait_hook = fn;
	c->wait_ctx = ctx;
	if (c->tls != NULL)
		tls_set_wait_hook(c->tls, fn != NULL ? run_hook : NULL, c);
}

int
conn_write(struct conn *c, const char *data, size_t len, size_t shown, struct mf_error *err)
{
	conn_trace_cmd(c, data, len, shown);
	return conn_write_raw(c, data, len, err);
}

void
conn_trace_cmd(struct conn *c, const char *data, size_t len, size_t shown)
{
	log_trace(c->who, c->send_prefix, data, shown < len ? shown : len, shown < len);
	meter_excuse(c, data, len);
}

int
conn_write_raw(struct conn *c, const char *data, size_t len, struct mf_error *err)
{
	size_t off = 0;

	/* tls_write gives the whole write one timeout, which bounds a
	 * server that takes our data a byte at a time already. */
	if (c->tls != NULL)
		return tls_write(c->tls, data, len, c->timeout_ms, err) < 0 ? err->code : 0;
	while (off < len) {
		ssize_t w = write(c->fd, data + off, len - off);
		if (w > 0) {
			off += (size_t)w;
			if (meter_add(c, &c->wmeter, 0, (size_t)w, "takes our data", err) != 0)
				return err->code;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			long t0;
			int r;
			if (c->wait_hook != NULL)
				run_hook(c);
			t0 = net_now_ms();
			r = net_wait(c->fd, POLLOUT, c->timeout_ms);
			if (r == 0)
				return err_set(err, MF_ESERVER, "timed out sending to the server; raise timeout if the server is slow");
			if (r < 0)
				return err_set(err, MF_ESERVER, "connection lost: %s; try again later", strerror(errno));
			if (meter_add(c, &c->wmeter, net_now_ms() - t0, 0, "takes our data", err) != 0)
				return err->code;
		} else {
			return err_set(err, MF_ESERVER, "connection lost: %s; try again later", strerror(errno));
		}
	}
	return 0;
}

/* Reads at least one more byte into the buffer.  Each wait is bounded by
 * the timeout; the waits together by the low-speed rule. */
static int
conn_fill(struct conn *c, struct mf_error *err)
{
	long t0 = net_now_ms(), h0 = c->hook_ms;
	ssize_t n;

	if (c->rstart > 0 && (c->rlen == 0 || c->rstart + c->rlen + IO_CHUNK > c->rcap)) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rlen);
		c->rstart = 0;
	}
	if (c->rstart + c->rlen + IO_CHUNK > c->rcap) {
		c->rcap = c->rstart + c->rlen + IO_CHUNK;
		c->rbuf = xreallocarray(c->rbuf, c->rcap, 1);
	}
	for (;;) {
		char *dst = c->rbuf + c->rstart + c->rlen;
		size_t room = c->rcap - c->rstart - c->rlen;
		if (c->tls != NULL) {
			n = tls_read(c->tls, dst, room, c->timeout_ms, err);
			if (n < 0)
				return err->code;
		} else {
			n = read(c->fd, dst, room);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				int r;
				if (c->wait_hook != NULL)
					run_hook(c);
				r = net_wait(c->fd, POLLIN, c->timeout_ms);
				if (r == 0)
					return err_set(err, MF_ESERVER, "timed out waiting for the server; raise timeout if the server is slow");
				if (r < 0)
					return err_set(err, MF_ESERVER, "connection lost: %s; try again later", strerror(errno));
				continue;
			}
			if (n < 0)
				return err_set(err, MF_ESERVER, "connection lost: %s; try again later", strerror(errno));
		}
		if (n == 0)
			return err_set(err, MF_ESERVER, "server closed the connection unexpectedly; try again later");
		c->rlen += (size_t)n;
		return meter_add(c, &c->rmeter, net_now_ms() - t0 - (c->hook_ms - h0), (size_t)n, "sends", err);
	}
}

int
conn_read_line(struct conn *c, size_t max, const char **line, size_t *len, struct mf_error *err)
{
	size_t scanned = 0;

	for (;;) {
		const char *start = c->rbuf + c->rstart;
		const char *nl = memchr(start + scanned, '\n', c->rlen - scanned);
		if (nl != NULL) {
			*line = start;
			*len = (size_t)(nl - start) + 1;
			log_trace(c->who, c->recv_prefix, *line, *len, 0);
			return 0;
		}
		scanned = c->rlen;
		if (c->rlen > max)
			return err_set(err, MF_EPROTO, "server sent a line longer than %zu bytes; "
			    "report this to the server's administrator", max);
		if (conn_fill(c, err) != 0)
			return err->code;
	}
}

int
conn_read_raw(struct conn *c, size_t max, const char **data, size_t *len, struct mf_error *err)
{
	if (c->rlen == 0 && conn_fill(c, err) != 0)
		return err->code;
	*data = c->rbuf + c->rstart;
	*len = c->rlen < max ? c->rlen : max;
	return 0;
}

void
conn_consume(struct conn *c, size_t n)
{
	if (n > c->rlen)
		fatal("conn_consume past the buffer");
	c->rstart += n;
	c->rlen -= n;
	if (c->rlen == 0)
		c->rstart = 0;
}

void
conn_trace_literal(struct conn *c, unsigned long long size, const char *data, size_t len)
{
	char note[64];

	if (log_level >= LOG_TRACE_BODY && data != NULL) {
		log_trace(c->who, c->recv_prefix, data, len, 0);
	} else if (data == NULL) {
		snprintf(note, sizeof note, "{%llu bytes}", size);
		log_trace(c->who, c->recv_prefix, note, strlen(note), 0);
	}
}

void
conn_trace_sent(struct conn *c, unsigned long long size, const char *data, size_t len)
{
	char note[64];

	if (log_level >= LOG_TRACE_BODY && data != NULL) {
		log_trace(c->who, c->send_prefix, data, len, 0);
	} else if (data == NULL) {
		snprintf(note, sizeof note, "{%llu bytes}", size);
		log_trace(c->who, c->send_prefix, note, strlen(note), 0);
	}
}
