/* log.c: formatting and writing of log and trace lines, to stderr, a log
 * file or syslog. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "status.h"
#include "xmalloc.h"

int log_level = LOG_NORMAL;

#define TRACE_SHOW_MAX 2000 /* a trace line longer than this is cut */

/* Room kept free before the text of every line for what goes in front of
 * it: "2026-12-07T18:50:01.123+01:00 mailfetch: " or "<7>mailfetch: ". */
#define HEAD_ROOM 64

/* Where lines go.  Set by log_open_file() or log_open_syslog() before any
 * thread starts and not changed after; log_reopen() changes only the file
 * behind log_fd (dup3() onto it), so a line written meanwhile goes to the
 * old file or the new one. */
enum log_dest { DEST_STDERR, DEST_FILE, DEST_SYSLOG };
static enum log_dest log_dest = DEST_STDERR;
static int log_fd = STDERR_FILENO;
static char *log_path;

/* Whether stderr is a terminal and whether it is the systemd journal
 * (-1: not asked yet; asked at the first use, the same answer for every
 * thread that races to ask). */
static atomic_int status_tty = -1;
static atomic_int journal = -1;

/* The status line now on the terminal ("" if none), and the lock that
 * keeps it and the lines written around it whole. */
static char status_line[512];
static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;

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

/* True when stderr is the journal: systemd puts "DEV:INO" of the stream
 * it connected to stderr in JOURNAL_STREAM (sd_journal_stream_fd(3)); a
 * stderr redirected since (or a variable inherited by a child) does not match. */
static int
stderr_is_journal(void)
{
	int j = atomic_load_explicit(&journal, memory_order_relaxed);
	if (j < 0) {
		const char *v = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		char *end;
		struct stat st;

		j = 0;
		if (v != NULL && fstat(STDERR_FILENO, &st) == 0) {
			errno = 0;
			dev = strtoull(v, &end, 10);
			if (errno == 0 && end != v && *end == ':') {
				const char *p = end + 1;
				ino = strtoull(p, &end, 10);
				j = errno == 0 && end != p && *end == '\0' && dev == (unsigned long long)st.st_dev &&
				    ino == (unsigned long long)st.st_ino;
			}
		}
		atomic_store_explicit(&journal, j, memory_order_relaxed);
	}
	return j;
}

/* "2026-12-07T18:50:01.123+01:00 ": local time, milliseconds, offset. */
static size_t
timestamp(char *out, size_t room)
{
	struct timespec ts;
	struct tm tm;
	long off;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (localtime_r(&ts.tv_sec, &tm) == NULL)
		return 0;
	n = strftime(out, room, "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff / 60;
	n += (size_t)snprintf(out + n, room - n, ".%03ld%c%02ld:%02ld ", (long)(ts.tv_nsec / 1000000),
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
	return n;
}

/* Writes one line: text[0..len) ends in '\n', and HEAD_ROOM bytes before
 * text belong to the caller's buffer too (the head is put there, so the
 * line goes out with a single write: lines of concurrent threads and
 * processes never interleave).  prio is a syslog priority. */
static void
log_emit(int prio, char *text, size_t len)
{
	char head[HEAD_ROOM];
	size_t h = 0;

	if (log_dest == DEST_SYSLOG) {
		/* syslog names us (ident), and ends the line itself */
		syslog(prio, "%.*s", (int)(len - 1), text);
		return;
	}
	if (log_dest == DEST_FILE)
		h = timestamp(head, sizeof head);
	else if (stderr_is_journal())
		h = (size_t)snprintf(head, sizeof head, "<%d>", prio);
	h += (size_t)snprintf(head + h, sizeof head - h, "mailfetch: ");
	text -= h;
	memcpy(text, head, h);
	len += h;
	if (log_dest == DEST_FILE) {
		(void)!write(log_fd, text, len);
		return;
	}
	fflush(stdout);
	pthread_mutex_lock(&status_lock);
	if (status_line[0] != '\0') {
		/* clear the status line, write this one, draw it again: one write */
		char both[4 * 4096 + HEAD_ROOM + sizeof status_line + 16];
		size_t k = 4;
		if (len > sizeof both - sizeof status_line - 8)
			len = sizeof both - sizeof status_line - 8;
		memcpy(both, "\r\033[K", 4);
		memcpy(both + k, text, len);
		k += len;
		k += (size_t)snprintf(both + k, sizeof both - k, "%s", status_line);
		(void)!write(STDERR_FILENO, both, k);
	} else {
		(void)!write(STDERR_FILENO, text, len);
	}
	pthread_mutex_unlock(&status_lock);
}

static void
log_write(int prio, const char *who, const char *fmt, va_list ap)
{
	char raw[4096], line[HEAD_ROOM + 4 * sizeof raw + 1];
	int n;
	size_t len, out = HEAD_ROOM;

	if (who != NULL)
		n = snprintf(raw, sizeof raw, "%s: ", who);
	else
		n = 0;
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
	log_emit(prio, line + HEAD_ROOM, out - HEAD_ROOM);
}

/* Opens the log file: appended to, created 0600, never through a symlink
 * (O_NOFOLLOW), and only a regular file (O_NONBLOCK so that a FIFO put
 * there cannot hang us before we look).  Returns the fd (>= 3), or -1 with
 * err set. */
static int
open_log(const char *path, const char *what, struct mf_error *err)
{
	struct stat st;
	int fd, fl;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0) {
		if (errno == ELOOP)
			err_set(err, MF_EUSAGE, "cannot %s log file %s: it is a symbolic link, which mailfetch does "
			    "not follow; give the path of the file itself", what, path);
		else if (errno == EISDIR)
			err_set(err, MF_EUSAGE, "cannot %s log file %s: it is a directory; give the path of a file",
			    what, path);
		else
			err_set(err, MF_EUSAGE, "cannot %s log file %s: %s; check that its directory exists and "
			    "is writable, or give another --logfile", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err_set(err, MF_EUSAGE, "cannot %s log file %s: not a regular file; give the path of a file",
		    what, path);
		close(fd);
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	/* Not as fd 0-2 (closed at our start): a child would get it as stdin,
	 * stdout or stderr, and anything written to stderr would go into it. */
	if (fd <= STDERR_FILENO) {
		int high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		close(fd);
		if (high < 0) {
			err_set(err, MF_EUSAGE, "cannot %s log file %s: %s", what, path, strerror(errno));
			return -1;
		}
		fd = high;
	}
	return fd;
}

/* Puts fd in place of log_fd in one step (a concurrent write goes to one
 * file or the other) and closes fd; -1 with errno on failure. */
static int
swap_log_fd(int fd)
{
	int r;
#ifdef __linux__
	r = dup3(fd, log_fd, O_CLOEXEC);
#else
	r = dup2(fd, log_fd);
	if (r >= 0)
		(void)fcntl(log_fd, F_SETFD, FD_CLOEXEC);
#endif
	if (r < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

int
log_open_file(const char *path, struct mf_error *err)
{
	int fd = open_log(path, "open", err);

	if (fd < 0)
		return err->code;
	tzset();
	if (log_dest == DEST_FILE) {
		if (swap_log_fd(fd) != 0)
			return err_set(err, MF_EUSAGE, "cannot open log file %s: %s", path, strerror(errno));
	} else {
		log_fd = fd;
	}
	free(log_path);
	log_path = xstrdup(path);
	log_dest = DEST_FILE;
	return 0;
}

int
log_reopen(struct mf_error *err)
{
	int fd;

	if (log_dest != DEST_FILE)
		return 0;
	if ((fd = open_log(log_path, "reopen", err)) < 0)
		return err->code;
	if (swap_log_fd(fd) != 0)
		return err_set(err, MF_EUSAGE, "cannot reopen log file %s: %s; still logging to the file "
		    "opened before", log_path, strerror(errno));
	return 0;
}

void
log_open_syslog(void)
{
	openlog("mailfetch", LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_dest = DEST_SYSLOG;
}

int
log_status_wanted(void)
{
	int tty = atomic_load_explicit(&status_tty, memory_order_relaxed);
	if (tty < 0) {
		tty = isatty(STDERR_FILENO);
		atomic_store_explicit(&status_tty, tty, memory_order_relaxed);
	}
	return log_dest == DEST_STDERR && tty && (log_level == LOG_NORMAL || log_level == LOG_VERBOSE);
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
	pthread_mutex_lock(&status_lock);
	/* one column short of the width: a full line would wrap, and CR
	 * would then go back to the wrong line */
	n = escape_into(status_line, sizeof status_line, raw, n);
	if (n > width - 1)
		n = width - 1;
	status_line[n] = '\0';
	n = (size_t)snprintf(out, sizeof out, "\r\033[K%s", status_line);
	(void)!write(STDERR_FILENO, out, n);
	pthread_mutex_unlock(&status_lock);
}

void
log_status_clear(void)
{
	pthread_mutex_lock(&status_lock);
	if (status_line[0] != '\0') {
		status_line[0] = '\0';
		(void)!write(STDERR_FILENO, "\r\033[K", 4);
	}
	pthread_mutex_unlock(&status_lock);
}

void
log_error(const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_write(LOG_ERR, who, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *who, const char *fmt, ...)
{
	va_list ap;
	if (log_level < LOG_NORMAL)
		return;
	va_start(ap, fmt);
	log_write(LOG_WARNING, who, fmt, ap);
	va_end(ap);
}

void
log_info(const char *who, const char *fmt, ...)
{
	va_list ap;
	if (log_level < LOG_VERBOSE)
		return;
	va_start(ap, fmt);
	log_write(LOG_INFO, who, fmt, ap);
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
	buf_printf(&b, "%*s%s: %s ", HEAD_ROOM, "", who ? who : "-", prefix);
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
	log_emit(LOG_DEBUG, b.data + HEAD_ROOM, b.len - HEAD_ROOM);
	buf_free(&b);
}
