/* sasl.c: SASL client mechanisms: SCRAM-SHA-1/256 with and without
 * channel binding (RFC 5802, 7677, 9266), PLAIN (RFC 4616), LOGIN,
 * OAUTHBEARER (RFC 7628) and Google's and Microsoft's XOAUTH2.
 *
 * Built on OpenSSL's primitives rather than a SASL library: SCRAM is a
 * page of PBKDF2 and HMAC, and doing it here lets every value the server
 * sends be bounded and checked before it costs anything (an iteration
 * count of 100 million is refused rather than computed), keeps the
 * memory of a run small, and lets the challenge decoding be fuzzed. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base64.h"
#include "mf_limits.h"
#include "sasl.h"
#include "xmalloc.h"

static const char *const names[SASL_NMECH] = {
	[SASL_SCRAM_SHA_256_PLUS] = "SCRAM-SHA-256-PLUS",
	[SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
	[SASL_SCRAM_SHA_1_PLUS] = "SCRAM-SHA-1-PLUS",
	[SASL_SCRAM_SHA_1] = "SCRAM-SHA-1",
	[SASL_OAUTHBEARER] = "OAUTHBEARER",
	[SASL_XOAUTH2] = "XOAUTH2",
	[SASL_PLAIN] = "PLAIN",
	[SASL_LOGIN] = "LOGIN",
};

const char *
sasl_mech_name(enum sasl_mech m)
{
	return m < SASL_NMECH ? names[m] : "?";
}

enum sasl_mech
sasl_mech_lookup(const char *name, size_t len)
{
	for (int m = 0; m < SASL_NMECH; m++)
		if (strlen(names[m]) == len && strncasecmp(names[m], name, len) == 0)
			return (enum sasl_mech)m;
	return SASL_NMECH;
}

enum sasl_mech
sasl_choose(const enum sasl_mech *order, size_t n, unsigned offered, int have_password, int have_token,
    int tls, int allow_plaintext, int have_cb)
{
	for (size_t i = 0; i < n; i++) {
		unsigned bit = SASL_BIT(order[i]);
		if (!(offered & bit))
			continue;
		if ((bit & SASL_PASSWORD_MECHS) && !have_password)
			continue;
		if ((bit & SASL_TOKEN_MECHS) && !have_token)
			continue;
		if ((bit & SASL_CLEAR_MECHS) && !tls && !allow_plaintext)
			continue;
		if ((bit & SASL_PLUS_MECHS) && !have_cb)
			continue;
		return order[i];
	}
	return SASL_NMECH;
}

enum scram_state { SCRAM_FIRST, SCRAM_FINAL, SCRAM_DONE };

struct sasl {
	enum sasl_mech mech;
	struct sasl_params p;
	int steps;                 /* challenges answered */
	/* SCRAM */
	const EVP_MD *md;
	enum scram_state state;
	char cnonce[33];
	struct buf first_bare;     /* client-first-message-bare */
	struct buf gs2;            /* the GS2 header */
	unsigned char server_sig[EVP_MAX_MD_SIZE];
	size_t sig_len;
	/* OAuth2 */
	char server_error[300];
	int answered_error;        /* the one error challenge was answered */
	int public_response;       /* the last response holds no secret */
};

/* Server text for a message: NUL bytes would cut it (the log escapes the rest). */
static void
copy_text(char *dst, size_t size, const char *src, size_t n)
{
	size_t i;
	for (i = 0; i < n && i + 1 < size; i++)
		dst[i] = src[i] != '\0' ? src[i] : '?';
	dst[i] = '\0';
}

static int
is_scram(enum sasl_mech m)
{
	return m == SASL_SCRAM_SHA_256_PLUS || m == SASL_SCRAM_SHA_256 || m == SASL_SCRAM_SHA_1_PLUS ||
	    m == SASL_SCRAM_SHA_1;
}

struct sasl *
sasl_new(enum sasl_mech m, const struct sasl_params *p)
{
	struct sasl *s = xcalloc(1, sizeof *s);

	s->mech = m;
	s->p = *p;
	buf_init(&s->first_bare, 0);
	buf_init(&s->gs2, 0);
	if (m == SASL_SCRAM_SHA_256_PLUS || m == SASL_SCRAM_SHA_256)
		s->md = EVP_sha256();
	else if (m == SASL_SCRAM_SHA_1_PLUS || m == SASL_SCRAM_SHA_1)
		s->md = EVP_sha1();
	return s;
}

void
sasl_free(struct sasl *s)
{
	if (s == NULL)
		return;
	buf_free(&s->first_bare);
	buf_free(&s->gs2);
	wipe(s, sizeof *s);
	free(s);
}

int
sasl_response_public(const struct sasl *s)
{
	return s->public_response;
}

const char *
sasl_server_error(const struct sasl *s)
{
	return s->server_error[0] != '\0' ? s->server_error : NULL;
}

/* RFC 5802's saslname: ',' and '=' escaped. */
static void
append_saslname(struct buf *b, const char *name)
{
	for (const char *c = name; *c != '\0'; c++) {
		if (*c == ',')
			buf_append(b, "=2C", 3);
		else if (*c == '=')
			buf_append(b, "=3D", 3);
		else
			buf_append(b, c, 1);
	}
}

static int
scram_start(struct sasl *s, struct buf *out, struct mf_error *err)
{
	unsigned char rnd[24];

	if (s->p.password == NULL)
		return err_set(err, MF_EINTERNAL, "SCRAM started without a password");
	if (s->p.nonce != NULL) {
		snprintf(s->cnonce, sizeof s->cnonce, "%s", s->p.nonce);
	} else {
		struct buf b;
		if (RAND_bytes(rnd, sizeof rnd) != 1)
			return err_set(err, MF_EINTERNAL, "no random bytes for the SCRAM nonce; "
			    "check the system's entropy source");
		buf_init(&b, 0);
		base64_encode(&b, rnd, sizeof rnd); /* 32 characters, none of them ',' */
		memcpy(s->cnonce, b.data, 32);
		s->cnonce[32] = '\0';
		buf_free(&b);
	}
	if (s->mech == SASL_SCRAM_SHA_256_PLUS || s->mech == SASL_SCRAM_SHA_1_PLUS) {
		if (s->p.cb == NULL)
			return err_set(err, MF_EINTERNAL, "%s chosen without channel binding data", names[s->mech]);
		buf_printf(&s->gs2, "p=%s,,", s->p.cb->type);
	} else {
		/* "y": we could bind, the server did not offer it.  A server
		 * that does offer -PLUS (an attacker hid it) fails this. */
		buf_append(&s->gs2, s->p.cb != NULL ? "y,," : "n,,", 3);
	}
	buf_append(&s->first_bare, "n=", 2);
	append_saslname(&s->first_bare, s->p.user);
	buf_printf(&s->first_bare, ",r=%s", s->cnonce);
	buf_append(out, s->gs2.data, s->gs2.len);
	buf_append(out, s->first_bare.data, s->first_bare.len);
	s->state = SCRAM_FIRST;
	return 0;
}

/* One "a=value" attribute of a SCRAM message starting at *p (which
 * moves past it and its comma): the value is [*v, *v + *vlen). */
static int
scram_attr(const char **p, const char *end, char *name, const char **v, size_t *vlen)
{
	const char *comma;

	if (end - *p < 2 || (*p)[1] != '=')
		return -1;
	*name = **p;
	*v = *p + 2;
	comma = memchr(*v, ',', (size_t)(end - *v));
	*vlen = (size_t)((comma != NULL ? comma : end) - *v);
	*p = comma != NULL ? comma + 1 : end;
	return 0;
}

static int
printable_no_comma(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e || v[i] == ',')
			return 0;
	return 1;
}

static int
hmac(const EVP_MD *md, const void *key, size_t klen, const void *data, size_t dlen, unsigned char *out)
{
	unsigned int len = 0;
	return HMAC(md, key, (int)klen, data, dlen, out, &len) != NULL ? (int)len : -1;
}

/* server-first-message -> client-final-message. */
static int
scram_final(struct sasl *s, const char *in, size_t len, struct buf *out, struct mf_error *err)
{
	const char *p = in, *end = in + len, *nonce = NULL, *salt64 = NULL, *iter = NULL, *v;
	size_t nlen = 0, slen = 0, ilen = 0, vlen, mdlen = (size_t)EVP_MD_get_size(s->md);
	unsigned long iterations = 0;
	unsigned char salted[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE], stored_key[EVP_MAX_MD_SIZE];
	unsigned char client_sig[EVP_MAX_MD_SIZE], server_key[EVP_MAX_MD_SIZE], proof[EVP_MAX_MD_SIZE];
	struct buf salt, auth_msg, without_proof;
	char name;
	int rc = 0;

	if (len > 0 && in[0] == 'm')
		return err_set(err, MF_EAUTH, "the server's SCRAM challenge demands an extension (m=) this client "
		    "does not know; ask the server's administrator");
	/* r=, s=, i= in this order, then extensions (ignored) */
	for (int k = 0; k < 3; k++) {
		if (scram_attr(&p, end, &name, &v, &vlen) < 0 || name != "rsi"[k])
			return err_set(err, MF_EAUTH, "the server's SCRAM challenge is malformed (no %c= where it "
			    "belongs); ask the server's administrator", "rsi"[k]);
		if (k == 0)
			nonce = v, nlen = vlen;
		else if (k == 1)
			salt64 = v, slen = vlen;
		else
			iter = v, ilen = vlen;
	}
	if (nlen <= strlen(s->cnonce) || memcmp(nonce, s->cnonce, strlen(s->cnonce)) != 0 ||
	    !printable_no_comma(nonce, nlen))
		return err_set(err, MF_EAUTH, "the server's SCRAM nonce does not extend the one this client sent, "
		    "so the exchange may be replayed or tampered with; not logging in");
	for (size_t i = 0; i < ilen; i++) {
		if (iter[i] < '0' || iter[i] > '9')
			return err_set(err, MF_EAUTH, "the server's SCRAM iteration count is not a number; "
			    "ask the server's administrator");
		/* no overflow: anything past the maximum is refused below */
		if (iterations <= SCRAM_ITERATIONS_MAX)
			iterations = iterations * 10 + (unsigned long)(iter[i] - '0');
	}
	if (ilen == 0)
		return err_set(err, MF_EAUTH, "the server's SCRAM iteration count is not a number; "
		    "ask the server's administrator");
	if (iterations < 1 || iterations > SCRAM_ITERATIONS_MAX)
		return err_set(err, MF_EAUTH, "the server asks for %.*s SCRAM iterations, outside 1 to %u; "
		    "refused (it would be unsafe or take too long), ask the server's administrator",
		    (int)ilen, iter, SCRAM_ITERATIONS_MAX);
	buf_init(&salt, 0);
	if (slen == 0 || base64_decode(&salt, salt64, slen) < 0 || salt.len == 0) {
		buf_free(&salt);
		return err_set(err, MF_EAUTH, "the server's SCRAM salt is not valid base64; "
		    "ask the server's administrator");
	}

	buf_init(&without_proof, 0);
	buf_init(&auth_msg, 0);
	/* c= the GS2 header and, with -PLUS, the binding data */
	{
		struct buf cbind;
		buf_init(&cbind, 0);
		buf_append(&cbind, s->gs2.data, s->gs2.len);
		if (s->mech == SASL_SCRAM_SHA_256_PLUS || s->mech == SASL_SCRAM_SHA_1_PLUS)
			buf_append(&cbind, s->p.cb->data, s->p.cb->len);
		buf_append(&without_proof, "c=", 2);
		base64_encode(&without_proof, cbind.data, cbind.len);
		buf_free(&cbind);
	}
	buf_append(&without_proof, ",r=", 3);
	buf_append(&without_proof, nonce, nlen);
	buf_append(&auth_msg, s->first_bare.data, s->first_bare.len);
	buf_append(&auth_msg, ",", 1);
	buf_append(&auth_msg, in, len);
	buf_append(&auth_msg, ",", 1);
	buf_append(&auth_msg, without_proof.data, without_proof.len);

	if (PKCS5_PBKDF2_HMAC(s->p.password, (int)strlen(s->p.password), (unsigned char *)salt.data, (int)salt.len,
	        (int)iterations, s->md, (int)mdlen, salted) != 1 ||
	    hmac(s->md, salted, mdlen, "Client Key", 10, client_key) < 0 ||
	    EVP_Digest(client_key, mdlen, stored_key, NULL, s->md, NULL) != 1 ||
	    hmac(s->md, stored_key, mdlen, auth_msg.data, auth_msg.len, client_sig) < 0 ||
	    hmac(s->md, salted, mdlen, "Server Key", 10, server_key) < 0 ||
	    hmac(s->md, server_key, mdlen, auth_msg.data, auth_msg.len, s->server_sig) < 0) {
		rc = err_set(err, MF_EINTERNAL, "OpenSSL could not compute the SCRAM proof");
		goto out;
	}
	s->sig_len = mdlen;
	for (size_t i = 0; i < mdlen; i++)
		proof[i] = client_key[i] ^ client_sig[i];
	buf_append(out, without_proof.data, without_proof.len);
	buf_append(out, ",p=", 3);
	base64_encode(out, proof, mdlen);
	s->state = SCRAM_FINAL;
out:
	wipe(salted, sizeof salted);
	wipe(client_key, sizeof client_key);
	wipe(stored_key, sizeof stored_key);
	wipe(client_sig, sizeof client_sig);
	wipe(server_key, sizeof server_key);
	wipe(proof, sizeof proof);
	buf_free(&salt);
	buf_free(&without_proof);
	buf_free(&auth_msg);
	return rc;
}

/* server-final-message: v= the server's signature, or e= its error. */
static int
scram_verify(struct sasl *s, const char *in, size_t len, struct mf_error *err)
{
	const char *p = in, *v;
	size_t vlen;
	char name;
	struct buf sig;
	int ok;

	if (scram_attr(&p, in + len, &name, &v, &vlen) < 0 || (name != 'v' && name != 'e'))
		return err_set(err, MF_EAUTH, "the server's final SCRAM message is malformed, so the server could "
		    "not prove it knows the password; not logging in: check host, or ask its administrator");
	if (name == 'e') {
		char what[100];
		copy_text(what, sizeof what, v, vlen);
		return err_set(err, MF_EAUTH, "the server ended the SCRAM exchange with the error \"%s\"%s", what,
		    vlen == 27 && memcmp(v, "channel-bindings-dont-match", 27) == 0 ?
		    " (the TLS connection it sees is not ours: something is in the middle)" :
		    "; check user and password");
	}
	buf_init(&sig, 0);
	ok = base64_decode(&sig, v, vlen) == 0 && sig.len == s->sig_len &&
	    CRYPTO_memcmp(sig.data, s->server_sig, s->sig_len) == 0;
	buf_free(&sig);
	if (!ok)
		return err_set(err, MF_EAUTH, "the server's SCRAM signature is wrong: the server could not prove it "
		    "knows the password, so it may not be the server you meant; not logging in: check host, "
		    "or ask its administrator");
	s->state = SCRAM_DONE;
	return 0;
}

static void
oauth_initial(struct sasl *s, struct buf *out)
{
	if (s->mech == SASL_XOAUTH2) {
		buf_printf(out, "user=%s\001auth=Bearer %s\001\001", s->p.user, s->p.token);
		return;
	}
	/* RFC 7628: gs2-header with the authzid, then key=value pairs */
	buf_append(out, "n,a=", 4);
	append_saslname(out, s->p.user);
	buf_printf(out, ",\001host=%s\001port=%u\001auth=Bearer %s\001\001", s->p.host, s->p.port, s->p.token);
}

/* The "status" (and "scope") of an OAuth2 error challenge, for the log. */
static void
oauth_error(struct sasl *s, const unsigned char *in, size_t len)
{
	char text[200];
	const char *keys[] = { "\"status\"", "\"scope\"" };
	size_t used = 0;

	for (size_t k = 0; k < 2; k++) {
		const char *hit = NULL, *v, *q;
		for (size_t i = 0; i + strlen(keys[k]) <= len && hit == NULL; i++)
			if (memcmp(in + i, keys[k], strlen(keys[k])) == 0)
				hit = (const char *)in + i + strlen(keys[k]);
		if (hit == NULL)
			continue;
		v = memchr(hit, '"', (size_t)((const char *)in + len - hit));
		if (v == NULL)
			continue;
		v++;
		q = memchr(v, '"', (size_t)((const char *)in + len - v));
		if (q == NULL)
			continue;
		copy_text(text, sizeof text, v, (size_t)(q - v));
		used += (size_t)snprintf(s->server_error + used, used < sizeof s->server_error ?
		    sizeof s->server_error - used : 0, "%s%s %s", used ? ", " : "", k == 0 ? "status" : "scope", text);
		if (used >= sizeof s->server_error)
			break;
	}
	if (used == 0)
		copy_text(s->server_error, sizeof s->server_error, (const char *)in, len);
}

int
sasl_start(struct sasl *s, struct buf *out, int *has, struct mf_error *err)
{
	*has = 1;
	switch (s->mech) {
	case SASL_PLAIN:
		buf_append(out, "", 1);
		buf_append(out, s->p.user, strlen(s->p.user));
		buf_append(out, "", 1);
		buf_append(out, s->p.password, strlen(s->p.password));
		return 0;
	case SASL_LOGIN:
		*has = 0;
		return 0;
	case SASL_XOAUTH2:
	case SASL_OAUTHBEARER:
		if (s->p.token == NULL)
			return err_set(err, MF_EINTERNAL, "%s started without a token", names[s->mech]);
		oauth_initial(s, out);
		return 0;
	default:
		return scram_start(s, out, err);
	}
}

int
sasl_step(struct sasl *s, const unsigned char *in, size_t len, struct buf *out, struct mf_error *err)
{
	int step = ++s->steps;

	s->public_response = 0;
	switch (s->mech) {
	case SASL_PLAIN:
		break;
	case SASL_LOGIN:
		/* "Username:", then "Password:" (the texts vary; the order does not) */
		if (step == 1) {
			buf_append(out, s->p.user, strlen(s->p.user));
			return 0;
		}
		if (step == 2) {
			buf_append(out, s->p.password, strlen(s->p.password));
			return 0;
		}
		break;
	case SASL_XOAUTH2:
	case SASL_OAUTHBEARER:
		/* An error: keep what it says, and answer so the server
		 * ends the exchange with its tagged reply (RFC 7628 3.2.3:
		 * a single ^A; XOAUTH2: an empty response).  Once. */
		if (!s->answered_error) {
			s->answered_error = 1;
			oauth_error(s, in, len);
			if (s->server_error[0] == '\0')
				snprintf(s->server_error, sizeof s->server_error, "(an empty error)");
			if (s->mech == SASL_OAUTHBEARER)
				buf_append(out, "\001", 1);
			s->public_response = 1;
			return 0;
		}
		break;
	default:
		if (s->state == SCRAM_FIRST)
			return scram_final(s, (const char *)in, len, out, err);
		if (s->state == SCRAM_FINAL) {
			s->public_response = 1; /* the answer is empty */
			return scram_verify(s, (const char *)in, len, err);
		}
		break;
	}
	return err_set(err, MF_EAUTH, "the server sent an unexpected %s challenge; check user and password, "
	    "or try another mechanism with auth =", names[s->mech]);
}

int
sasl_check_success(struct sasl *s, struct mf_error *err)
{
	if (is_scram(s->mech) && s->state != SCRAM_DONE)
		return err_set(err, MF_EAUTH, "the server accepted the login without sending its SCRAM signature, so "
		    "it could not prove it knows the password; not trusting it: check host, or ask its administrator");
	return 0;
}
