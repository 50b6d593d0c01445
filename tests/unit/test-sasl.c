/* Unit tests for base64 and the SASL mechanisms: the SCRAM test vectors
 * of RFC 5802 (SHA-1) and RFC 7677 (SHA-256), the GS2 headers, the
 * OAuth2 messages, every refusal of a bad challenge; and the channel
 * binding data of a real TLS session (tls-exporter over TLS 1.3,
 * tls-server-end-point over TLS 1.2) compared with what the server
 * side of the same session computes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base64.h"
#include "sasl.h"
#include "tls.h"

static void
test_base64(void **state)
{
	struct buf b;
	static const struct { const char *plain, *enc; } v[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	(void)state;
	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		buf_reset(&b);
		assert_int_equal(base64_encode(&b, v[i].plain, strlen(v[i].plain)), 0);
		assert_string_equal(b.data, v[i].enc);
		buf_reset(&b);
		assert_int_equal(base64_decode(&b, v[i].enc, strlen(v[i].enc)), 0);
		assert_int_equal(b.len, strlen(v[i].plain));
		assert_memory_equal(b.data, v[i].plain, b.len);
	}
	/* strict: length, alphabet, padding only at the end, canonical bits */
	const char *bad[] = { "Zg=", "Zg", "Z===", "Zm9v!A==", "Zm=v", "Zh==", "Zm9=", " Zm9v", "Zm9v\r\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		buf_reset(&b);
		assert_int_equal(base64_decode(&b, bad[i], strlen(bad[i])), -1);
	}
	/* a ceiling is honoured */
	buf_free(&b);
	buf_init(&b, 4);
	assert_int_equal(base64_decode(&b, "Zm9vYmFy", 8), -1);
	buf_free(&b);
}

/* Runs one SCRAM exchange with a fixed nonce against the RFC's messages. */
static void
scram_vector(enum sasl_mech m, const char *nonce, const char *server_first, const char *client_final,
    const char *server_final)
{
	struct sasl_params p = { .user = "user", .password = "pencil", .nonce = nonce };
	struct sasl *s = sasl_new(m, &p);
	struct mf_error err = { 0 };
	struct buf out;
	char want[200];
	int has;

	buf_init(&out, 0);
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_int_equal(has, 1);
	snprintf(want, sizeof want, "n,,n=user,r=%s", nonce);
	assert_string_equal(out.data, want);
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)server_first, strlen(server_first), &out, &err), 0);
	assert_string_equal(out.data, client_final);
	/* success before the signature is not success */
	assert_int_equal(sasl_check_success(s, &err), MF_EAUTH);
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)server_final, strlen(server_final), &out, &err), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(sasl_check_success(s, &err), 0);
	buf_free(&out);
	sasl_free(s);
}

static void
test_scram_vectors(void **state)
{
	(void)state;
	/* RFC 5802 section 5 */
	scram_vector(SASL_SCRAM_SHA_1, "fyko+d2lbbFgONRv9qkxdawL",
	    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
	/* RFC 7677 section 3 */
	scram_vector(SASL_SCRAM_SHA_256, "rOprNGfwEbeRWgbNEkqO",
	    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* The first SCRAM challenge fails with MF_EAUTH and a message holding want. */
static void
scram_refuses(const char *server_first, const char *want)
{
	struct sasl_params p = { .user = "user", .password = "pencil", .nonce = "abc" };
	struct sasl *s = sasl_new(SASL_SCRAM_SHA_256, &p);
	struct mf_error err = { 0 };
	struct buf out;
	int has;

	buf_init(&out, 0);
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)server_first, strlen(server_first), &out, &err), MF_EAUTH);
	if (strstr(err.msg, want) == NULL)
		fail_msg("for %s: got \"%s\", want \"%s\"", server_first, err.msg, want);
	buf_free(&out);
	sasl_free(s);
}

static void
test_scram_refusals(void **state)
{
	(void)state;
	scram_refuses("r=abc,s=QSXCR+Q6sek8bf92,i=4096", "does not extend");       /* not longer */
	scram_refuses("r=abX123,s=QSXCR+Q6sek8bf92,i=4096", "does not extend");    /* not ours */
	scram_refuses("r=abc1 2,s=QSXCR+Q6sek8bf92,i=4096", "does not extend");    /* not printable */
	scram_refuses("r=abc123,s=QSXCR+Q6sek8bf92,i=0", "0 SCRAM iterations");
	scram_refuses("r=abc123,s=QSXCR+Q6sek8bf92,i=100000000", "100000000 SCRAM iterations");
	scram_refuses("r=abc123,s=QSXCR+Q6sek8bf92,i=99999999999", "99999999999 SCRAM iterations");
	scram_refuses("r=abc123,s=QSXCR+Q6sek8bf92,i=4294971296", "4294971296 SCRAM iterations"); /* wraps 32 bits */
	scram_refuses("r=abc123,s=QSXCR+Q6sek8bf92,i=12a", "not a number");
	scram_refuses("r=abc123,s=QSXCR+Q6sek8bf92,i=-1", "not a number");
	scram_refuses("r=abc123,s=QSXCR+Q6sek8bf92,i=", "not a number");
	scram_refuses("r=abc123,s=%%%,i=4096", "salt is not valid base64");
	scram_refuses("r=abc123,s=,i=4096", "salt is not valid base64");
	scram_refuses("r=abc123,i=4096,s=QSXCR+Q6sek8bf92", "no s=");
	scram_refuses("m=x,r=abc123,s=QSXCR+Q6sek8bf92,i=4096", "extension (m=)");
	scram_refuses("", "no r=");
	scram_refuses("garbage", "no r=");
}

static void
test_scram_final_refusals(void **state)
{
	static const char *finals[] = { "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", "v=", "v=%%%", "x=1",
		"e=invalid-proof", "e=channel-bindings-dont-match", "" };
	(void)state;
	for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
		struct sasl_params p = { .user = "user", .password = "pencil", .nonce = "rOprNGfwEbeRWgbNEkqO" };
		struct sasl *s = sasl_new(SASL_SCRAM_SHA_256, &p);
		struct mf_error err = { 0 };
		const char *first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
		struct buf out;
		int has;
		buf_init(&out, 0);
		assert_int_equal(sasl_start(s, &out, &has, &err), 0);
		assert_int_equal(sasl_step(s, (const unsigned char *)first, strlen(first), &out, &err), 0);
		assert_int_equal(sasl_step(s, (const unsigned char *)finals[i], strlen(finals[i]), &out, &err), MF_EAUTH);
		assert_int_equal(sasl_check_success(s, &err), MF_EAUTH);
		buf_free(&out);
		sasl_free(s);
	}
}

static void
test_gs2_headers(void **state)
{
	struct sasl_cb cb = { .type = "tls-exporter", .len = 32 };
	struct sasl_params p = { .user = "us,er=1", .password = "pw", .nonce = "N" };
	struct mf_error err = { 0 };
	struct buf out;
	struct sasl *s;
	int has;
	(void)state;

	memset(cb.data, 7, 32);
	buf_init(&out, 0);
	s = sasl_new(SASL_SCRAM_SHA_256, &p);                 /* no TLS: n */
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_string_equal(out.data, "n,,n=us=2Cer=3D1,r=N");
	sasl_free(s);
	p.cb = &cb;
	buf_reset(&out);
	s = sasl_new(SASL_SCRAM_SHA_256, &p);                 /* could bind, server cannot: y */
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_string_equal(out.data, "y,,n=us=2Cer=3D1,r=N");
	sasl_free(s);
	buf_reset(&out);
	s = sasl_new(SASL_SCRAM_SHA_256_PLUS, &p);            /* p=type */
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_string_equal(out.data, "p=tls-exporter,,n=us=2Cer=3D1,r=N");
	/* c= carries the header and the binding data */
	{
		const char *first = "r=N123,s=QSXCR+Q6sek8bf92,i=1";
		struct buf c, want;
		buf_reset(&out);
		assert_int_equal(sasl_step(s, (const unsigned char *)first, strlen(first), &out, &err), 0);
		buf_init(&c, 0);
		buf_init(&want, 0);
		buf_append(&want, "p=tls-exporter,,", 16);
		buf_append(&want, cb.data, 32);
		assert_int_equal(strncmp(out.data, "c=", 2), 0);
		assert_int_equal(base64_decode(&c, out.data + 2, strcspn(out.data + 2, ",")), 0);
		assert_int_equal(c.len, want.len);
		assert_memory_equal(c.data, want.data, want.len);
		buf_free(&c);
		buf_free(&want);
	}
	sasl_free(s);
	buf_free(&out);
}

static void
test_oauth(void **state)
{
	struct sasl_params p = { .user = "alice@example.com", .token = "TOKEN", .host = "imap.example.com", .port = 993 };
	struct mf_error err = { 0 };
	struct buf out;
	struct sasl *s;
	int has;
	const char *json = "{\"status\":\"invalid_token\",\"scope\":\"mail\"}";
	(void)state;

	buf_init(&out, 0);
	s = sasl_new(SASL_OAUTHBEARER, &p);
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_int_equal(out.len, strlen("n,a=alice@example.com,\001host=imap.example.com\001port=993\001auth=Bearer TOKEN\001\001"));
	assert_memory_equal(out.data, "n,a=alice@example.com,\001host=imap.example.com\001port=993\001auth=Bearer TOKEN\001\001", out.len);
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)json, strlen(json), &out, &err), 0);
	assert_int_equal(out.len, 1);
	assert_int_equal(out.data[0], 1);
	assert_string_equal(sasl_server_error(s), "status invalid_token, scope mail");
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)json, strlen(json), &out, &err), MF_EAUTH);
	sasl_free(s);

	buf_reset(&out);
	s = sasl_new(SASL_XOAUTH2, &p);
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_memory_equal(out.data, "user=alice@example.com\001auth=Bearer TOKEN\001\001", out.len);
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)"not json", 8, &out, &err), 0);
	assert_int_equal(out.len, 0);
	assert_string_equal(sasl_server_error(s), "not json");
	assert_int_equal(sasl_response_public(s), 1);
	sasl_free(s);

	/* an empty error challenge is answered once too, and only once */
	buf_reset(&out);
	s = sasl_new(SASL_OAUTHBEARER, &p);
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)"", 0, &out, &err), 0);
	assert_int_equal(out.len, 1);
	assert_int_equal(sasl_step(s, (const unsigned char *)"", 0, &out, &err), MF_EAUTH);
	assert_string_equal(sasl_server_error(s), "(an empty error)");
	sasl_free(s);
	buf_free(&out);
}

static void
test_login_plain(void **state)
{
	struct sasl_params p = { .user = "u", .password = "p" };
	struct mf_error err = { 0 };
	struct buf out;
	struct sasl *s;
	int has;
	(void)state;

	buf_init(&out, 0);
	s = sasl_new(SASL_PLAIN, &p);
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.data, "\0u\0p", 4);
	assert_int_equal(sasl_step(s, (const unsigned char *)"", 0, &out, &err), MF_EAUTH);
	sasl_free(s);
	buf_reset(&out);
	s = sasl_new(SASL_LOGIN, &p);
	assert_int_equal(sasl_start(s, &out, &has, &err), 0);
	assert_int_equal(has, 0);
	assert_int_equal(sasl_step(s, (const unsigned char *)"Username:", 9, &out, &err), 0);
	assert_string_equal(out.data, "u");
	buf_reset(&out);
	assert_int_equal(sasl_step(s, (const unsigned char *)"Password:", 9, &out, &err), 0);
	assert_string_equal(out.data, "p");
	assert_int_equal(sasl_step(s, (const unsigned char *)"More:", 5, &out, &err), MF_EAUTH);
	sasl_free(s);
	buf_free(&out);
}

static void
test_choose(void **state)
{
	enum sasl_mech all[SASL_NMECH];
	unsigned every = (1u << SASL_NMECH) - 1;
	(void)state;
	for (int m = 0; m < SASL_NMECH; m++)
		all[m] = (enum sasl_mech)m;
	assert_int_equal(sasl_choose(all, SASL_NMECH, every, 1, 1, 1, 0, 1), SASL_SCRAM_SHA_256_PLUS);
	assert_int_equal(sasl_choose(all, SASL_NMECH, every, 1, 1, 1, 0, 0), SASL_SCRAM_SHA_256);
	assert_int_equal(sasl_choose(all, SASL_NMECH, every, 0, 1, 1, 0, 1), SASL_OAUTHBEARER);
	assert_int_equal(sasl_choose(all, SASL_NMECH, SASL_BIT(SASL_PLAIN) | SASL_BIT(SASL_LOGIN), 1, 0, 1, 0, 0),
	    SASL_PLAIN);
	/* no password in clear without TLS, unless allowed */
	assert_int_equal(sasl_choose(all, SASL_NMECH, SASL_BIT(SASL_PLAIN) | SASL_BIT(SASL_XOAUTH2), 1, 1, 0, 0, 0),
	    SASL_NMECH);
	assert_int_equal(sasl_choose(all, SASL_NMECH, SASL_BIT(SASL_PLAIN), 1, 0, 0, 1, 0), SASL_PLAIN);
	assert_int_equal(sasl_choose(all, SASL_NMECH, SASL_BIT(SASL_SCRAM_SHA_1), 1, 0, 0, 0, 0), SASL_SCRAM_SHA_1);
	/* the account's order wins */
	enum sasl_mech mine[] = { SASL_PLAIN, SASL_SCRAM_SHA_256 };
	assert_int_equal(sasl_choose(mine, 2, every, 1, 0, 1, 0, 1), SASL_PLAIN);
	assert_int_equal(sasl_mech_lookup("scram-sha-256-plus", 18), SASL_SCRAM_SHA_256_PLUS);
	assert_int_equal(sasl_mech_lookup("SCRAM-SHA-256", 13), SASL_SCRAM_SHA_256);
	assert_int_equal(sasl_mech_lookup("SCRAM-SHA-2", 11), SASL_NMECH);
}

/* A TLS server on one end of a socketpair, in a child: it sends the
 * channel binding data it computes for the session. */
static void
serve(int fd, int max_version, EVP_PKEY *key, X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	unsigned char data[64 + 64];
	unsigned int n = 0;
	SSL *ssl;

	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_use_certificate(ctx, cert);
	SSL_CTX_use_PrivateKey(ctx, key);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		_exit(2);
	}
	memset(data, 0, sizeof data);
	/* tls-server-end-point per RFC 5929: the certificate's own signature
	 * hash (SHA-384 here) */
	if (SSL_export_keying_material(ssl, data, 32, "EXPORTER-Channel-Binding", 24, NULL, 0, 0) != 1 ||
	    X509_digest(cert, EVP_sha384(), data + 64, &n) != 1 || SSL_write(ssl, data, sizeof data) != (int)sizeof data)
		_exit(3);
	SSL_shutdown(ssl);
	_exit(0);
}

static void
channel_binding(int max_version, const char *want_type)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	struct tls_opts o = { .has_pin = 1, .min_version = 12 };
	struct mf_error err = { 0 };
	unsigned char got[64], theirs[128];
	const char *type = NULL;
	size_t len = 0, have = 0;
	unsigned int n = 0;
	int sv[2], status;
	struct tls *t;
	pid_t pid;

	assert_non_null(key);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"cb", -1, -1, 0);
	X509_set_issuer_name(cert, X509_get_subject_name(cert));
	assert_true(X509_sign(cert, key, EVP_sha384()) > 0);
	assert_int_equal(X509_digest(cert, EVP_sha256(), o.pin, &n), 1);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		serve(sv[1], max_version, key, cert);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	t = tls_start(sv[0], "cb", &o, 10000, NULL, &err);
	if (t == NULL)
		fail_msg("handshake: %s", err.msg);
	assert_int_equal(tls_channel_binding(t, &type, got, &len, sizeof got), 0);
	assert_string_equal(type, want_type);
	while (have < sizeof theirs) {
		ssize_t r = tls_read(t, theirs + have, sizeof theirs - have, 10000, &err);
		if (r <= 0)
			fail_msg("reading the server's values: %s", err.msg);
		have += (size_t)r;
	}
	if (strcmp(want_type, "tls-exporter") == 0) {
		assert_int_equal(len, 32);
		assert_memory_equal(got, theirs, 32);
	} else {
		/* the certificate is signed with SHA-384: the server's end-point
		 * value is its SHA-384 (48 bytes), not SHA-256 */
		assert_int_equal(len, 48);
		assert_memory_equal(got, theirs + 64, 48);
	}
	tls_free(t);
	close(sv[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_channel_binding_tls13(void **state)
{
	(void)state;
	channel_binding(TLS1_3_VERSION, "tls-exporter");
}

static void
test_channel_binding_tls12(void **state)
{
	(void)state;
	channel_binding(TLS1_2_VERSION, "tls-server-end-point");
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as mailfetch runs */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_scram_vectors),
		cmocka_unit_test(test_scram_refusals),
		cmocka_unit_test(test_scram_final_refusals),
		cmocka_unit_test(test_gs2_headers),
		cmocka_unit_test(test_oauth),
		cmocka_unit_test(test_login_plain),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_channel_binding_tls13),
		cmocka_unit_test(test_channel_binding_tls12),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
