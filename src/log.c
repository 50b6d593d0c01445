/* log.c: formatting and writing of log and trace lines. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

int log_level = LOG_NORMAL;

#define TRACE_SHOW_MAX 2000 /* a trace line longer than this is cut */

/* Writes one complete line with a single write so lines of concurrent
 * processes (MDA stderr, another run) do not interleave mid-line.  Server
 * text (error replies) and MDA output reach these lines, so control bytes
 * are escaped as in the trace: ESC, BEL or a bare CR must not clear the
 * terminal or forge a line.  Our own text holds none. */
static void
log_write(const char *who, const char *fmt, va_list ap)
{
	char raw[4096], line[4 * sizeof raw + 1];
	int n;
	size_t len, out = 0;

	if (who != NULL)
		n = snprintf(raw, sizeof raw, "mailfetch: %s: ", who);
	else
		n = snprintf(raw, sizeof raw, "mailfetch: ");
	len = n < 0 ? 0 : (size_t)n;
	if (len < sizeof raw) {
		n = vsnprintf(raw + len, sizeof raw - len, fmt, ap);
		if (n > 0)
			len += (size_t)n;
	}
	if (len > sizeof raw - 1)
		len = sizeof raw - 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c >= 0x20 && c != 0x7f)
			line[out++] = (char)c;
		else
			out += (size_t)snprintf(line + out, sizeof line - out, "\\x%02x", c);
	}
	line[out++] = '\n';
	fflush(stdout);
	(void)!write(STDERR_FILENO, line, out);
}

void
log_error(const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_write(who, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *who, const char *fmt, ...)
{
	va_list ap;
	if (log_level < LOG_NORMAL)
		return;
	va_start(ap, fmt);
	log_write(who, fmt, ap);
	va_end(ap);
}

void
log_info(const char *who, const char *fmt, ...)
{
	va_list ap;
	if (log_level < LOG_VERBOSE)
		return;
	va_start(ap, fmt);
	log_write(who, fmt, ap);
	va_end(ap);
}

void
log_trace(const char *who, const char *prefix, const char *data, size_t len, int masked)
{
	struct buf b;
	size_t shown = len;

	if (log_level < LOG_TRACE)
		return;
	/* The line terminator is protocol framing, not content. */
	if (shown > 0 && data[shown - 1] == '\n')
		shown--;
	if (shown > 0 && data[shown - 1] == '\r')
		shown--;
	buf_init(&b, 0);
	buf_printf(&b, "mailfetch: %s: %s ", who ? who : "-", prefix);
	for (size_t i = 0; i < shown && i < TRACE_SHOW_MAX; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c >= 0x20 && c != 0x7f)
			buf_append(&b, &data[i], 1);
		else
			buf_printf(&b, "\\x%02x", c);
	}
	if (masked)
		buf_append(&b, "*", 1);
	if (shown > TRACE_SHOW_MAX)
		buf_printf(&b, " ... (%zu more bytes)", shown - TRACE_SHOW_MAX);
	buf_append(&b, "\n", 1);
	fflush(stdout);
	(void)!write(STDERR_FILENO, b.data, b.len);
	buf_free(&b);
}
