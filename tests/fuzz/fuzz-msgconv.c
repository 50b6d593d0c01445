/* Fuzz target: CRLF to LF and mboxrd quoting, checked against a simple
 * whole-buffer reference implementation, with the input split at a point
 * the first bytes choose. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgconv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: CRLF -> LF on the whole input, then quote lines matching ">*From ". */
static struct buf
reference(const char *in, size_t n, int mboxrd, int final_nl)
{
	struct buf lf, out;
	buf_init(&lf, 0);
	buf_init(&out, 0);
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
			continue;
		buf_append(&lf, &in[i], 1);
	}
	for (size_t i = 0; i < lf.len;) {
		size_t j = i, k;
		while (j < lf.len && lf.data[j] != '\n')
			j++;
		k = i;
		while (k < j && lf.data[k] == '>')
			k++;
		if (mboxrd && j - k >= 5 && memcmp(lf.data + k, "From ", 5) == 0)
			buf_append(&out, ">", 1);
		buf_append(&out, lf.data + i, j - i + (j < lf.len));
		i = j + 1;
	}
	if (final_nl && lf.len > 0 && lf.data[lf.len - 1] != '\n')
		buf_append(&out, "\n", 1);
	buf_free(&lf);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	size_t n, split;
	int mboxrd, final_nl;

	if (size < 3)
		return 0;
	mboxrd = data[0] & 1;
	final_nl = (data[0] >> 1) & 1;
	in = (const char *)data + 3;
	n = size - 3;
	split = n ? ((size_t)data[1] << 8 | data[2]) % (n + 1) : 0;
	{
		struct msgconv m;
		struct buf got, want = reference(in, n, mboxrd, final_nl);
		buf_init(&got, 0);
		msgconv_init(&m, mboxrd);
		msgconv_feed(&m, in, split, &got);
		msgconv_feed(&m, in + split, n - split, &got);
		msgconv_finish(&m, &got, final_nl);
		if (got.len != want.len || (got.len && memcmp(got.data, want.data, got.len) != 0))
			abort();
		buf_free(&got);
		buf_free(&want);
	}
	return 0;
}
