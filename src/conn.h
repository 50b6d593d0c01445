/* conn.h: a buffered protocol connection over TCP or TLS, with timeouts,
 * and the one trace path: every line sent or received passes through here
 * and is shown at -v -v with its prefix ("IMAP>", "IMAP<"), masked where
 * the caller says so. */
#ifndef MAILFETCH_CONN_H
#define MAILFETCH_CONN_H

#include <stddef.h>

#include "status.h"
#include "tls.h"

struct conn;

/* Takes ownership of the connected, non-blocking socket fd.  who prefixes
 * trace lines; proto ("IMAP") names the trace prefixes.  Both strings must
 * outlive the connection. */
struct conn *conn_new(int fd, int timeout_ms, const char *who, const char *proto);
/* Closes (TLS close_notify, then the socket) and frees; NULL is fine. */
void conn_free(struct conn *c);

/* Upgrades to TLS.  Refuses if the server has sent anything we have not
 * consumed: after a STARTTLS reply that is an injection (MF_EPROTO); on
 * a connection that starts with TLS (implicit) it is a plaintext
 * greeting, the wrong port or mode (MF_ECONNECT). */
int conn_start_tls(struct conn *c, const char *host, const struct tls_opts *o, int implicit, struct mf_error *err);

/* Whether the server has sent anything (buffered, or readable within
 * timeout_ms): 1 yes, 0 not yet. */
int conn_has_input(struct conn *c, int timeout_ms);
/* For waiting on many connections at once: the socket, and whether
 * input waits already read from it (in our buffer or inside TLS). */
int conn_fd(const struct conn *c);
int conn_buffered(const struct conn *c);

/* The TLS session's channel binding data (tls_channel_binding); -1
 * without TLS. */
int conn_channel_binding(struct conn *c, const char **type, unsigned char *out, size_t *len, size_t max);

/* fn(ctx) is called before every wait for the server (reading or
 * writing, plain or TLS): the moment to let go of anything another
 * program may be waiting for, such as an mbox's locks.  NULL: none. */
void conn_set_wait_hook(struct conn *c, void (*fn)(void *ctx), void *ctx);

/* Sends data[0..len).  The trace shows data[0..shown) and, if shown < len,
 * a "*" in place of the rest, so secrets never reach the log. */
int conn_write(struct conn *c, const char *data, size_t len, size_t shown, struct mf_error *err);

/* What conn_write does besides writing: for commands that go out in
 * one write with others, or with a message's data (conn_write_raw). */
void conn_trace_cmd(struct conn *c, const char *data, size_t len, size_t shown);

/* Sends data[0..len) without a trace line and without excusing the
 * server's thinking time: the body of a message (SMTP DATA), traced once
 * with conn_trace_sent. */
int conn_write_raw(struct conn *c, const char *data, size_t len, struct mf_error *err);

/* Returns the next line, LF included (traced), via *line and *len; it
 * stays valid until the next call and must be released with
 * conn_consume(c, *len).  Lines longer than max are an error (MF_EPROTO). */
int conn_read_line(struct conn *c, size_t max, const char **line, size_t *len, struct mf_error *err);

/* Returns between 1 and max buffered raw bytes (reading if none are
 * buffered), untraced: literal bodies.  Release with conn_consume. */
int conn_read_raw(struct conn *c, size_t max, const char **data, size_t *len, struct mf_error *err);
void conn_consume(struct conn *c, size_t n);

/* Traces a literal body of size bytes: "{N bytes}", or its bytes at -v -v -v. */
void conn_trace_literal(struct conn *c, unsigned long long size, const char *data, size_t len);
/* The same for a message body we sent: "{N bytes}" with the send prefix
 * (data NULL), or a piece of its bytes at -v -v -v. */
void conn_trace_sent(struct conn *c, unsigned long long size, const char *data, size_t len);

#endif
