/* Fuzz target: SASL challenges as a server sends them (base64 text),
 * decoded and answered by each mechanism.  The first byte picks the
 * mechanism and whether there is channel binding data; the rest is up to
 * three challenges separated by newlines.  SCRAM uses a fixed client
 * nonce ("fuzz") so that inputs can get past the nonce check; inputs
 * asking for more than 10,000 iterations are skipped (each would spend
 * the fuzzer's time in PBKDF2, a cost the client bounds but accepts). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "mf_limits.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether a decoded challenge asks for too many iterations to be worth it. */
static int
costly(const char *p, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++) {
		if ((i == 0 || p[i - 1] == ',') && p[i] == 'i' && p[i + 1] == '=') {
			unsigned long v = 0;
			for (size_t k = i + 2; k < n && p[k] >= '0' && p[k] <= '9' && v < 100000; k++)
				v = v * 10 + (unsigned long)(p[k] - '0');
			if (v > 10000)
				return 1;
		}
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sasl_cb cb = { .type = "tls-exporter", .len = 32 };
	struct sasl_params p = { .user = "fu,zz=", .password = "pencil", .token = "TOKEN", .host = "h", .port = 1,
		.nonce = "fuzz" };
	struct mf_error err = { 0 };
	struct buf out;
	struct sasl *s;
	const char *in, *end;
	int has;

	if (size < 1)
		return 0;
	memset(cb.data, 0xab, sizeof cb.data);
	p.cb = (data[0] & 0x80) ? &cb : NULL;
	if ((data[0] & 0x7f) % SASL_NMECH == SASL_SCRAM_SHA_256_PLUS || (data[0] & 0x7f) % SASL_NMECH == SASL_SCRAM_SHA_1_PLUS)
		p.cb = &cb;
	s = sasl_new((enum sasl_mech)((data[0] & 0x7f) % SASL_NMECH), &p);
	buf_init(&out, 0);
	if (sasl_start(s, &out, &has, &err) != 0)
		abort();
	in = (const char *)data + 1;
	end = (const char *)data + size;
	for (int k = 0; k < 3 && in <= end; k++) {
		const char *nl = memchr(in, '\n', (size_t)(end - in));
		size_t len = (size_t)((nl != NULL ? nl : end) - in);
		struct buf ch;
		int rc;
		buf_init(&ch, SASL_CHALLENGE_MAX);
		if (base64_decode(&ch, in, len) == 0) {
			if (costly(ch.data, ch.len)) {
				buf_free(&ch);
				break;
			}
			buf_reset(&out);
			rc = sasl_step(s, (const unsigned char *)ch.data, ch.len, &out, &err);
			if (rc != 0 && rc != MF_EAUTH)
				abort(); /* only MF_EAUTH may come of what a server sends */
			if (rc != 0) {
				buf_free(&ch);
				break;
			}
		}
		buf_free(&ch);
		if (nl == NULL)
			break;
		in = nl + 1;
	}
	(void)sasl_check_success(s, &err);
	(void)sasl_server_error(s);
	buf_free(&out);
	sasl_free(s);
	return 0;
}
