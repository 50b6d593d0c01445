/* log.c: formatting and writing of log and trace lines. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
/* The status line now on the terminal ("" if none), and whether stderr
 * is a terminal at all (-1: not asked yet). */
static char status_line[512];
static int status_tty = -1;

/* Appends s[0..n) to out escaped as log lines are (control bytes as \xNN). */
static size_t
escape_into(char *out, size_t room, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < room; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, room - o, "\\x%02x", c);
	}
	return o;
}

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
	if (status_line[0] != '\0') {
		/* clear the status line, write this one, draw it again: one write */
		char both[sizeof line + sizeof status_line + 16];
		size_t k = 4;
		memcpy(both, "\r\033[K", 4);
		memcpy(both + k, line, out);
		k += out;
		k += (size_t)snprintf(both + k, sizeof both - k, "%s", status_line);
		(void)!write(STDERR_FILENO, both, k);
		return;
	}
	(void)!write(STDERR_FILENO, line, out);
}

int
log_status_wanted(void)
{
	if (status_tty < 0)
		status_tty = isatty(STDERR_FILENO);
	return status_tty && (log_level == LOG_NORMAL || log_level == LOG_VERBOSE);
}

void
log_status(const char *fmt, ...)
{
	char raw[512], out[sizeof status_line + 16];
	struct winsize ws;
	size_t width = 80, n;
	va_list ap;
	int r;

	if (!log_status_wanted())
		return;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		width = ws.ws_col;
	va_start(ap, fmt);
	r = vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	n = r < 0 ? 0 : (size_t)r < sizeof raw ? (size_t)r : sizeof raw - 1;
	/* one column short of the width: a full line would wrap, and CR
	 * would then go back to the wrong line */
	n = escape_into(status_line, sizeof status_line, raw, n);
	if (n > width - 1)
		n = width - 1;
	status_line[n] = '\0';
	n = (size_t)snprintf(out, sizeof out, "\r\033[K%s", status_line);
	(void)!write(STDERR_FILENO, out, n);
}

void
log_status_clear(void)
{
	if (status_line[0] == '\0')
		return;
	status_line[0] = '\0';
	(void)!write(STDERR_FILENO, "\r\033[K", 4);
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
