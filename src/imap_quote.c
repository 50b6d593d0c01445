/* imap_quote.c: quoting and UID sets for commands. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_quote.h"

int
imap_quote(struct buf *out, const char *s)
{
	size_t start = out->len;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c == '\r' || *c == '\n' || *c >= 0x80)
			return -1;
	buf_append(out, "\"", 1);
	for (const char *c = s; *c; c++) {
		if (*c == '"' || *c == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, c, 1);
	}
	if (buf_append(out, "\"", 1) < 0) {
		out->len = start;
		out->data[start] = '\0';
		return -1;
	}
	return 0;
}

size_t
imap_uid_set(struct buf *out, const uint32_t *uids, size_t n, size_t maxlen)
{
	size_t i = 0, used = 0;
	char part[32];

	while (i < n) {
		size_t j = i;
		int len;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j == i)
			len = snprintf(part, sizeof part, "%s%u", used ? "," : "", uids[i]);
		else
			len = snprintf(part, sizeof part, "%s%u:%u", used ? "," : "", uids[i], uids[j]);
		if (used + (size_t)len > maxlen)
			break;
		buf_append(out, part, (size_t)len);
		used += (size_t)len;
		i = j + 1;
	}
	return i;
}
