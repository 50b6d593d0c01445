/* tls.h: TLS client over a connected socket.  The only interface to OpenSSL. */
#ifndef MAILFETCH_TLS_H
#define MAILFETCH_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "status.h"

#define TLS_PIN_LEN 32 /* SHA-256 */

struct tls_opts {
	const char *ca_file;      /* PEM CA bundle, or NULL for the system store */
	int has_pin;              /* pin replaces chain and name verification */
	unsigned char pin[TLS_PIN_LEN]; /* SHA-256 of the server certificate (DER) */
	int min_version;          /* 12 or 13 */
};

struct tls;

/* Runs the client handshake on the non-blocking socket fd, verifying the
 * server certificate for host (name or IP address, with SNI for names)
 * or against the pin.  Handshake facts are traced with who as prefix.
 * Returns the session, or NULL with err set (MF_ECONNECT). */
struct tls *tls_start(int fd, const char *host, const struct tls_opts *o, int timeout_ms,
    const char *who, struct mf_error *err);

/* Reads up to len bytes, waiting up to timeout_ms.  Returns bytes read,
 * 0 on a clean close (close_notify), or -1 with err set (an unexpected EOF
 * inside TLS is an error, not the end of data). */
ssize_t tls_read(struct tls *t, void *buf, size_t len, int timeout_ms, struct mf_error *err);

/* Writes all of buf.  Returns 0, or -1 with err set. */
int tls_write(struct tls *t, const void *buf, size_t len, int timeout_ms, struct mf_error *err);

/* fn(ctx) is called before every wait for the socket (see conn_set_wait_hook). */
void tls_set_wait_hook(struct tls *t, void (*fn)(void *ctx), void *ctx);

/* Channel binding data of the session (RFC 9266 tls-exporter on TLS 1.3,
 * RFC 5929 tls-server-end-point before it), at most max bytes into out:
 * 0 with *type and *len set, or -1 when there is none to give (a
 * certificate whose hash the RFC leaves undefined). */
int tls_channel_binding(struct tls *t, const char **type, unsigned char *out, size_t *len, size_t max);

/* Whether decrypted bytes wait inside OpenSSL (a poll of the socket
 * would not see them). */
int tls_pending(struct tls *t);

/* Sends a TLS ClientHello on the connected, non-blocking socket fd and
 * waits up to timeout_ms for the answer: 1 if the server answered with a
 * TLS record (it speaks TLS from the start), else 0.  fd stays open. */
int tls_probe(int fd, int timeout_ms);

/* The OpenSSL in use, and the one built against ("OpenSSL 3.0.x ..."). */
const char *tls_library_version(void);
const char *tls_built_version(void);

/* Sends close_notify (best effort, no waiting) and frees; the socket stays open. */
void tls_free(struct tls *t);

#endif
