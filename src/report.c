/* report.c: the --json summary. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "report.h"
#include "status.h"

/* Length of the UTF-8 sequence at p (at most n bytes), 0 if it is not
 * one (overlong forms, surrogates and code points past U+10FFFF too). */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07u;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string (RFC 8259): quotes, backslashes and control bytes
 * escaped; bytes that are not UTF-8 (server text may hold any) become
 * U+FFFD.  NULL is null. */
static void
json_string(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	if (s == NULL) {
		fputs("null", fp);
		return;
	}
	n = strlen(s);
	fputc('"', fp);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_len(p + i, n - i);
		if (len == 0) {
			fputs("\\ufffd", fp);
			i++;
		} else if (p[i] == '"' || p[i] == '\\') {
			fprintf(fp, "\\%c", p[i]);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			fprintf(fp, "\\u%04x", p[i]);
			i++;
		} else {
			fwrite(p + i, 1, len, fp);
			i += len;
		}
	}
	fputc('"', fp);
}

static const char *
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

static void
status_fields(FILE *fp, int status, const char *error)
{
	fprintf(fp, "\"exit\": %d, \"class\": ", status);
	json_string(fp, status_class(status));
	fputs(", \"error\": ", fp);
	json_string(fp, nonempty(error));
}

void
report_json(FILE *fp, const struct run_report *r)
{
	char when[32];
	struct tm tm;

	gmtime_r(&r->started, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(fp, "{\"mailfetch\": \"%s\", \"config\": ", PACKAGE_VERSION);
	json_string(fp, r->config);
	fprintf(fp, ", \"check\": %s, \"started\": \"%s\", \"seconds\": %.3f, ", r->check ? "true" : "false", when,
	    r->seconds);
	status_fields(fp, r->status, r->error);
	fputs(",\n \"accounts\": [", fp);
	for (size_t i = 0; i < r->naccounts; i++) {
		const struct account_report *a = &r->accounts[i];
		unsigned long found = 0, delivered = 0, failed = 0, skipped = 0;
		unsigned long long bytes = 0;
		size_t k;

		for (k = 0; k < a->a->nfolders; k++) {
			found += a->folders[k].found;
			delivered += a->folders[k].delivered;
			failed += a->folders[k].failed;
			skipped += a->folders[k].skipped;
			bytes += a->folders[k].bytes;
		}
		fprintf(fp, "%s\n  {\"name\": ", i ? "," : "");
		json_string(fp, a->a->name);
		fputs(", \"host\": ", fp);
		json_string(fp, a->a->host);
		fprintf(fp, ", \"port\": %d, \"user\": ", a->a->port);
		json_string(fp, a->a->user);
		fputs(", ", fp);
		status_fields(fp, a->status, a->error);
		fprintf(fp, ", \"seconds\": %.3f, \"found\": %lu, \"delivered\": %lu, \"failed\": %lu, \"skipped\": %lu, "
		    "\"bytes\": %llu,\n   \"folders\": [", a->seconds, found, delivered, failed, skipped, bytes);
		for (k = 0; k < a->a->nfolders; k++) {
			const struct folder_report *f = &a->folders[k];
			fprintf(fp, "%s\n    {\"name\": ", k ? "," : "");
			json_string(fp, f->name);
			fprintf(fp, ", \"polled\": %s, ", f->polled ? "true" : "false");
			if (f->polled)
				status_fields(fp, f->status, f->error);
			else
				fputs("\"exit\": null, \"class\": \"not-polled\", \"error\": null", fp);
			fprintf(fp, ", \"found\": %lu, \"delivered\": %lu, \"failed\": %lu, \"skipped\": %lu, \"bytes\": %llu, "
			    "\"seconds\": %.3f}", f->found, f->delivered, f->failed, f->skipped, f->bytes, f->seconds);
		}
		fputs("]}", fp);
	}
	fputs("]}\n", fp);
	fflush(fp);
}
