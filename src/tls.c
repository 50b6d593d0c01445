/* tls.c: OpenSSL client sessions with verification on by default. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "mf_limits.h"
#include "net.h"
#include "tls.h"
#include "xmalloc.h"

struct tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	void (*wait_hook)(void *ctx); /* called before every wait; may be NULL */
	void *wait_ctx;
	unsigned char first[5];       /* the header of the first record received */
	int got_first;
};

/* Keeps the first record header the server sends: when the handshake
 * fails, it tells a plaintext greeting ("* OK") from a TLS problem. */
static void
on_record(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct tls *t = arg;

	(void)version;
	(void)ssl;
	if (!write_p && content_type == SSL3_RT_HEADER && len >= sizeof t->first && !t->got_first) {
		memcpy(t->first, buf, sizeof t->first);
		t->got_first = 1;
	}
}

/* Whether the first bytes are text, as a plaintext greeting is. */
static int
first_is_text(const struct tls *t)
{
	if (!t->got_first || t->first[0] == SSL3_RT_HANDSHAKE || t->first[0] == SSL3_RT_ALERT)
		return 0;
	for (size_t i = 0; i < sizeof t->first; i++)
		if (t->first[i] < 0x20 || t->first[i] > 0x7e)
			return 0;
	return 1;
}

/* OpenSSL's queued error, as text, and clears the queue. */
static const char *
ssl_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		snprintf(buf, len, "%s", errno ? strerror(errno) : "connection closed");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* Waits for what OpenSSL asked for; returns 0 when ready, -1 on
 * timeout/error.  The wait hook's time moves *deadline on: it is ours,
 * not the server's. */
static int
ssl_wait(struct tls *t, int sslerr, long *deadline)
{
	long left;
	short ev = sslerr == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;

	if (t->wait_hook != NULL) {
		long h0 = net_now_ms();
		t->wait_hook(t->wait_ctx);
		*deadline += net_now_ms() - h0;
	}
	left = *deadline - net_now_ms();
	if (left <= 0)
		return -1;
	return net_wait(t->fd, ev, (int)left) > 0 ? 0 : -1;
}

static void
trace_cert(const char *who, SSL *ssl)
{
	char line[600], subj[256], iss[256];
	X509 *cert = SSL_get0_peer_certificate(ssl);

	snprintf(line, sizeof line, "%s, cipher %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	log_trace(who, "TLS:", line, strlen(line), 0);
	if (cert == NULL)
		return;
	X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof subj);
	X509_NAME_oneline(X509_get_issuer_name(cert), iss, sizeof iss);
	snprintf(line, sizeof line, "certificate subject %s, issuer %s", subj, iss);
	log_trace(who, "TLS:", line, strlen(line), 0);
}

/* Whether one of the colon-separated directories holds a certificate
 * under its subject-hash name (8 hex digits, ".0"), as c_rehash and
 * update-ca-certificates make them. */
static int
has_hashed_certs(const char *dirs)
{
	char *list = xstrdup(dirs), *save = NULL;
	int found = 0;

	for (char *d = strtok_r(list, ":", &save); d != NULL && !found; d = strtok_r(NULL, ":", &save)) {
		DIR *dp = opendir(d);
		struct dirent *e;
		if (dp == NULL)
			continue;
		while (!found && (e = readdir(dp)) != NULL)
			found = strlen(e->d_name) == 10 && strspn(e->d_name, "0123456789abcdef") == 8 &&
			    strcmp(e->d_name + 8, ".0") == 0;
		closedir(dp);
	}
	free(list);
	return found;
}

/* Whether the environment variable env names another path than dflt
 * (unset or empty counts as the same). */
static int
env_path_other(const char *env, const char *dflt)
{
	const char *v = getenv(env);
	char *mine, *sys;
	int other;

	if (v == NULL || v[0] == '\0')
		return 0;
	mine = realpath(v, NULL);
	sys = realpath(dflt, NULL);
	other = mine == NULL || sys == NULL || strcmp(mine, sys) != 0;
	free(mine);
	free(sys);
	return other;
}

/* The system's CAs.  The hashed directory (/etc/ssl/certs on Debian) is
 * read only for the certificate a chain needs; the bundle file would be
 * parsed whole, some 140 certificates and 0.8 MB of memory on every run.
 * The directory alone is used only where it stands for the whole store:
 * it is the system's own (update-ca-certificates fills it from the same
 * sources as the bundle) and holds hashed names.  SSL_CERT_DIR or
 * SSL_CERT_FILE naming anything else (a user adding a CA) brings back
 * OpenSSL's defaults, the file and the directory. */
static int
load_system_cas(SSL_CTX *ctx, const char *who)
{
	const char *dirs = getenv(X509_get_default_cert_dir_env());
	const char *file = getenv(X509_get_default_cert_file_env());
	char line[PATH_MAX * 2 + 100];

	if (dirs == NULL || dirs[0] == '\0')
		dirs = X509_get_default_cert_dir();
	if (file == NULL || file[0] == '\0')
		file = X509_get_default_cert_file();
	if (!env_path_other(X509_get_default_cert_file_env(), X509_get_default_cert_file()) &&
	    !env_path_other(X509_get_default_cert_dir_env(), X509_get_default_cert_dir()) &&
	    has_hashed_certs(dirs)) {
		snprintf(line, sizeof line, "trusting the system CAs in directory %s", dirs);
		log_trace(who, "TLS:", line, strlen(line), 0);
		return SSL_CTX_set_default_verify_dir(ctx);
	}
	snprintf(line, sizeof line, "trusting the system CAs in file %s and directory %s", file, dirs);
	log_trace(who, "TLS:", line, strlen(line), 0);
	return SSL_CTX_set_default_verify_paths(ctx);
}

/* Whether the leaf of a peer chain names any host in subjectAltName.
 * Without one OpenSSL would have matched the subject CN, which we forbid;
 * saying so tells the user why a certificate browsers once took fails. */
static int
has_dns_san(STACK_OF(X509) *chain)
{
	X509 *leaf = chain != NULL && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	GENERAL_NAMES *names;
	int found = 0;

	if (leaf == NULL)
		return 1; /* nothing to tell */
	names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && !found; i++)
		found = sk_GENERAL_NAME_value(names, i)->type == GEN_DNS;
	GENERAL_NAMES_free(names);
	return found;
}

static void
hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

struct tls *
tls_start(int fd, const char *host, const struct tls_opts *o, int timeout_ms, const char *who,
    struct mf_error *err)
{
	struct tls *t = xcalloc(1, sizeof *t);
	unsigned char addr[16];
	int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	long deadline = net_now_ms() + timeout_ms;
	char ebuf[256];
	int r;

	t->fd = fd;
	ERR_clear_error();
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(t->ctx, o->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	/* Read from the socket in large pieces, not a record header and then
	 * its body: a quarter of the read() calls on a bulk download. */
	SSL_CTX_set_read_ahead(t->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(t->ctx, TLS_READ_BUFFER);
	if (o->has_pin) {
		/* The pin decides; the chain may well be self-signed. */
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
		if (o->ca_file != NULL) {
			char line[PATH_MAX + 50];
			snprintf(line, sizeof line, "trusting the CAs in tls_ca_file %s", o->ca_file);
			log_trace(who, "TLS:", line, strlen(line), 0);
			if (SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1) {
				err_set(err, MF_ECONNECT, "cannot load tls_ca_file %s: %s; point it at a PEM file of CA certificates",
				    o->ca_file, ssl_errstr(ebuf, sizeof ebuf));
				goto fail;
			}
		} else if (load_system_cas(t->ctx, who) != 1) {
			goto ssl_fail;
		}
	}
	t->ssl = SSL_new(t->ctx);
	if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1)
		goto ssl_fail;
	SSL_set_msg_callback(t->ssl, on_record);
	SSL_set_msg_callback_arg(t->ssl, t);
	if (!is_ip && SSL_set_tlsext_host_name(t->ssl, host) != 1)
		goto ssl_fail;
	if (!o->has_pin) {
		X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
		/* RFC 9525: the name is in subjectAltName or nowhere; without
		 * NEVER_CHECK_SUBJECT OpenSSL falls back to the subject CN of
		 * a certificate that has no DNS name in it. */
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
		    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 : SSL_set1_host(t->ssl, host) != 1)
			goto ssl_fail;
	}

	while ((r = SSL_connect(t->ssl)) != 1) {
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (ssl_wait(t, e, &deadline) < 0) {
				err_set(err, MF_ECONNECT, "TLS handshake with %s timed out; check port and tls (implicit or starttls)", host);
				goto fail;
			}
			continue;
		}
		if (SSL_get_verify_result(t->ssl) != X509_V_OK) {
			long v = SSL_get_verify_result(t->ssl);
			const char *hint = v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH
			    ? "the certificate is not for this host name; check host, or pin the certificate with tls_fingerprint"
			    : "set tls_ca_file to the CA that signed it, or pin the certificate with tls_fingerprint";
			if (v == X509_V_ERR_HOSTNAME_MISMATCH && !has_dns_san(SSL_get_peer_cert_chain(t->ssl)))
				hint = "the certificate has no DNS name in subjectAltName, and a name in its subject CN "
				    "does not count (RFC 9525); ask the server's administrator for a certificate with "
				    "subjectAltName, or pin this one with tls_fingerprint";
			log_trace(who, "TLS:", "certificate verification failed", 31, 0);
			err_set(err, MF_ECONNECT, "server certificate not trusted: %s; %s",
			    X509_verify_cert_error_string(v), hint);
		} else if (first_is_text(t)) {
			err_set(err, MF_ECONNECT, "the server greeted in plain text (\"%.5s...\") where a TLS handshake "
			    "was due: this port wants STARTTLS or no TLS; use tls = starttls (usually port 143)",
			    (const char *)t->first);
		} else {
			err_set(err, MF_ECONNECT, "TLS handshake failed: %s; check port and tls (implicit or starttls)",
			    ssl_errstr(ebuf, sizeof ebuf));
		}
		goto fail;
	}
	SSL_set_msg_callback(t->ssl, NULL); /* only the handshake needed it */
	trace_cert(who, t->ssl);
	if (o->has_pin) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		char got[2 * TLS_PIN_LEN + 1];
		X509 *cert = SSL_get0_peer_certificate(t->ssl);
		if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != TLS_PIN_LEN) {
			err_set(err, MF_ECONNECT, "server sent no certificate to check against tls_fingerprint; check host and port");
			goto fail;
		}
		hex(md, mdlen, got);
		if (CRYPTO_memcmp(md, o->pin, TLS_PIN_LEN) != 0) {
			err_set(err, MF_ECONNECT, "server certificate sha256:%s does not match tls_fingerprint; "
			    "if the server changed its certificate, check it and update the pin", got);
			goto fail;
		}
		log_trace(who, "TLS:", "certificate matches tls_fingerprint", 36, 0);
	} else {
		char line[300];
		snprintf(line, sizeof line, "certificate verified for %s", host);
		log_trace(who, "TLS:", line, strlen(line), 0);
	}
	return t;

ssl_fail:
	err_set(err, MF_ECONNECT, "TLS setup failed: %s; check tls_ca_file and tls_min_version",
	    ssl_errstr(ebuf, sizeof ebuf));
fail:
	ERR_clear_error();
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	free(t);
	return NULL;
}

/* The deadline covers the whole call, so a record dripped a byte at a
 * time ends here after timeout_ms; a stream of tiny records is cut by
 * conn.c's low-speed rule, which counts what this returns. */
ssize_t
tls_read(struct tls *t, void *buf, size_t len, int timeout_ms, struct mf_error *err)
{
	long deadline = net_now_ms() + timeout_ms;
	size_t got = 0;
	char ebuf[256];

	for (;;) {
		int r = SSL_read_ex(t->ssl, buf, len, &got);
		int e;
		if (r == 1) {
			/* One call returns one TLS record (16 KiB at most, often
			 * less); take what read-ahead has buffered as well, so the
			 * caller handles fewer, larger pieces. */
			size_t more = 0;
			while (got < len && SSL_has_pending(t->ssl)) {
				if (SSL_read_ex(t->ssl, (char *)buf + got, len - got, &more) != 1) {
					/* The next call meets this again and reports
					 * it; a stale queue would only mislead. */
					ERR_clear_error();
					break;
				}
				got += more;
			}
			return (ssize_t)got;
		}
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (ssl_wait(t, e, &deadline) < 0)
				return err_set(err, MF_ESERVER, "timed out waiting for the server; "
				    "raise timeout if the server is slow"), -1;
			continue;
		}
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		return err_set(err, MF_ESERVER, "connection lost inside TLS: %s; try again later",
		    ssl_errstr(ebuf, sizeof ebuf)), -1;
	}
}

int
tls_write(struct tls *t, const void *buf, size_t len, int timeout_ms, struct mf_error *err)
{
	long deadline = net_now_ms() + timeout_ms;
	const char *p = buf;
	char ebuf[256];

	while (len > 0) {
		size_t done = 0;
		int r = SSL_write_ex(t->ssl, p, len, &done);
		int e;
		if (r == 1) {
			p += done;
			len -= done;
			continue;
		}
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (ssl_wait(t, e, &deadline) < 0)
				return err_set(err, MF_ESERVER, "timed out sending to the server; "
				    "raise timeout if the server is slow"), -1;
			continue;
		}
		err_set(err, MF_ESERVER, "cannot send inside TLS: %s; try again later", ssl_errstr(ebuf, sizeof ebuf));
		return -1;
	}
	return 0;
}

void
tls_set_wait_hook(struct tls *t, void (*fn)(void *ctx), void *ctx)
{
	t->wait_hook = fn;
	t->wait_ctx = ctx;
}

int
tls_pending(struct tls *t)
{
	return SSL_has_pending(t->ssl);
}

int
tls_probe(int fd, int timeout_ms)
{
	struct tls t = { .fd = fd };
	long deadline = net_now_ms() + timeout_ms;
	int r, answered = 0;

	ERR_clear_error();
	if ((t.ctx = SSL_CTX_new(TLS_client_method())) == NULL || (t.ssl = SSL_new(t.ctx)) == NULL ||
	    SSL_set_fd(t.ssl, fd) != 1)
		goto out;
	SSL_CTX_set_verify(t.ctx, SSL_VERIFY_NONE, NULL); /* only the first answer matters */
	SSL_set_msg_callback(t.ssl, on_record);
	SSL_set_msg_callback_arg(t.ssl, &t);
	while (!t.got_first && (r = SSL_connect(t.ssl)) != 1) {
		int e = SSL_get_error(t.ssl, r);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || ssl_wait(&t, e, &deadline) < 0)
			break;
	}
	answered = t.got_first && (t.first[0] == SSL3_RT_HANDSHAKE || t.first[0] == SSL3_RT_ALERT) && t.first[1] == 3;
out:
	ERR_clear_error();
	SSL_free(t.ssl);
	SSL_CTX_free(t.ctx);
	return answered;
}

const char *
tls_library_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

const char *
tls_built_version(void)
{
	return OPENSSL_VERSION_TEXT;
}

int
tls_channel_binding(struct tls *t, const char **type, unsigned char *out, size_t *len, size_t max)
{
	static const char label[] = "EXPORTER-Channel-Binding";
	X509 *cert;
	const EVP_MD *md;
	unsigned int n = 0;
	int mdnid = NID_undef;

	if (SSL_version(t->ssl) >= TLS1_3_VERSION) {
		if (max < 32 || SSL_export_keying_material(t->ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 1)
			return -1;
		*type = "tls-exporter";
		*len = 32;
		return 0;
	}
	/* The certificate's own signature hash; MD5 and SHA-1 become SHA-256. */
	cert = SSL_get0_peer_certificate(t->ssl);
	if (cert == NULL || X509_get_signature_info(cert, &mdnid, NULL, NULL, NULL) != 1 || mdnid == NID_undef)
		return -1;
	md = mdnid == NID_md5 || mdnid == NID_sha1 ? EVP_sha256() : EVP_get_digestbynid(mdnid);
	if (md == NULL || (size_t)EVP_MD_get_size(md) > max || X509_digest(cert, md, out, &n) != 1)
		return -1;
	*type = "tls-server-end-point";
	*len = n;
	return 0;
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	(void)SSL_shutdown(t->ssl); /* non-blocking: sends close_notify if it can */
	ERR_clear_error();
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	free(t);
}
