/* sasl.h: the client side of SASL mechanisms (RFC 4422), apart from any
 * protocol: IMAP (and later POP3 and SMTP) carries the bytes, this module
 * makes and checks them.  No state outside the struct sasl of one
 * exchange. */
#ifndef MAILFETCH_SASL_H
#define MAILFETCH_SASL_H

#include <stddef.h>

#include "buf.h"
#include "status.h"

/* In the order `auth = auto` prefers them, strongest first. */
enum sasl_mech {
	SASL_SCRAM_SHA_256_PLUS,
	SASL_SCRAM_SHA_256,
	SASL_SCRAM_SHA_1_PLUS,
	SASL_SCRAM_SHA_1,
	SASL_OAUTHBEARER,
	SASL_XOAUTH2,
	SASL_PLAIN,
	SASL_LOGIN,
	SASL_NMECH
};

#define SASL_BIT(m) (1u << (m))
/* Mechanisms that need the password, and those that need an OAuth2 token. */
#define SASL_PASSWORD_MECHS (SASL_BIT(SASL_SCRAM_SHA_256_PLUS) | SASL_BIT(SASL_SCRAM_SHA_256) | \
	SASL_BIT(SASL_SCRAM_SHA_1_PLUS) | SASL_BIT(SASL_SCRAM_SHA_1) | SASL_BIT(SASL_PLAIN) | SASL_BIT(SASL_LOGIN))
#define SASL_TOKEN_MECHS (SASL_BIT(SASL_OAUTHBEARER) | SASL_BIT(SASL_XOAUTH2))
/* Mechanisms that send the secret itself, readable by whoever sees the
 * connection: only over TLS, or with allow_plaintext. */
#define SASL_CLEAR_MECHS (SASL_BIT(SASL_PLAIN) | SASL_BIT(SASL_LOGIN) | SASL_TOKEN_MECHS)
/* Mechanisms that bind the exchange to the TLS channel. */
#define SASL_PLUS_MECHS (SASL_BIT(SASL_SCRAM_SHA_256_PLUS) | SASL_BIT(SASL_SCRAM_SHA_1_PLUS))

/* The IANA name (upper case), and the mechanism for a name in any case:
 * SASL_NMECH if unknown. */
const char *sasl_mech_name(enum sasl_mech m);
enum sasl_mech sasl_mech_lookup(const char *name, size_t len);

/* Channel binding data of the TLS connection the exchange runs over
 * (RFC 5929, RFC 9266). */
struct sasl_cb {
	const char *type;          /* "tls-exporter" or "tls-server-end-point" */
	unsigned char data[64];
	size_t len;
};

/* What the exchange may use.  Strings are borrowed for its lifetime. */
struct sasl_params {
	const char *user;
	const char *password;      /* password mechanisms */
	const char *token;         /* OAuth2 mechanisms */
	const char *host;          /* OAUTHBEARER's host and port */
	unsigned port;
	const struct sasl_cb *cb;  /* NULL: no TLS, or no binding data */
	const char *nonce;         /* SCRAM client nonce; NULL: a random one (tests set it) */
};

struct sasl;

struct sasl *sasl_new(enum sasl_mech m, const struct sasl_params *p);
/* Wipes every secret the exchange held. */
void sasl_free(struct sasl *s);

/* The client's first message, for SASL-IR or a mechanism's initial
 * response: appended to out, *has set to 1; or *has 0 when the
 * mechanism starts with the server's challenge (LOGIN).  0, or MF_EAUTH
 * or MF_EINTERNAL with err set. */
int sasl_start(struct sasl *s, struct buf *out, int *has, struct mf_error *err);
/* The answer to a server challenge (already base64-decoded), appended to
 * out.  A challenge that is wrong (a SCRAM nonce that does not extend
 * ours, a bad server signature, an iteration count out of bounds) is
 * MF_EAUTH with err set: the caller cancels the exchange.  An OAuth2
 * error challenge is answered as its RFC says and remembered for
 * sasl_server_error(). */
int sasl_step(struct sasl *s, const unsigned char *in, size_t len, struct buf *out, struct mf_error *err);
/* Whether the last response of sasl_step() holds nothing secret (an
 * empty SCRAM acknowledgement, the answer to an OAuth2 error), so the
 * trace may show it; otherwise it is masked. */
int sasl_response_public(const struct sasl *s);
/* The server said the exchange succeeded: 0 if this side agrees (SCRAM:
 * the server's signature was verified), else MF_EAUTH with err set. */
int sasl_check_success(struct sasl *s, struct mf_error *err);
/* What an OAuth2 server's error challenge said (its "status" and
 * "scope"), escaped for a log line; NULL if none came. */
const char *sasl_server_error(const struct sasl *s);

/* The mechanism to try first: of order[0..n), the first that is offered,
 * that the account has a secret for, and that is safe here (clear
 * mechanisms need TLS or allow_plaintext; -PLUS needs binding data).
 * SASL_NMECH if none. */
enum sasl_mech sasl_choose(const enum sasl_mech *order, size_t n, unsigned offered, int have_password,
    int have_token, int tls, int allow_plaintext, int have_cb);

#endif
