/* base64.c: RFC 4648 base64 (the standard alphabet, with padding). */
#include "autoconfig.h"

#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_encode(struct buf *out, const void *in, size_t n)
{
	const unsigned char *p = in;
	char *dst;

	if (n > ((size_t)-1 / 4) * 3 - 3 || (dst = buf_space(out, (n + 2) / 3 * 4)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*dst++ = alphabet[(v >> 18) & 63];
		*dst++ = alphabet[(v >> 12) & 63];
		*dst++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		*dst++ = i + 2 < n ? alphabet[v & 63] : '=';
	}
	buf_commit(out, (n + 2) / 3 * 4);
	return 0;
}

static int
value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(struct buf *out, const char *in, size_t n)
{
	size_t pad = 0, len;
	char *dst;

	if (n % 4 != 0)
		return -1;
	if (n > 0 && in[n - 1] == '=')
		pad = n > 1 && in[n - 2] == '=' ? 2 : 1;
	len = n / 4 * 3 - pad;
	if ((dst = buf_space(out, len + 1)) == NULL)
		return -1;
	for (size_t i = 0, o = 0; i < n; i += 4) {
		int v[4];
		unsigned w;
		for (int k = 0; k < 4; k++) {
			/* '=' only in the last pad places */
			if (in[i + k] == '=' && i + k >= n - pad)
				v[k] = 0;
			else if ((v[k] = value(in[i + k])) < 0)
				return -1;
		}
		w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
		/* non-canonical trailing bits are refused: one string, one meaning */
		if ((pad == 1 && i + 4 == n && (w & 0xff) != 0) || (pad == 2 && i + 4 == n && (w & 0xffff) != 0))
			return -1;
		{
			size_t take = i + 4 < n ? 3 : 3 - pad;
			dst[o++] = (char)(w >> 16);
			if (take > 1)
				dst[o++] = (char)(w >> 8);
			if (take > 2)
				dst[o++] = (char)w;
		}
	}
	buf_commit(out, len);
	return 0;
}
