/* log.h: the one logging API, for three audiences: errors for everyone,
 * -v for the person at the shell, -v -v for the protocol.  Every line goes
 * to stderr as "mailfetch: WHO: text", WHO naming the account; or to a log
 * file (log_open_file) or syslog (log_open_syslog).  Every function here
 * may be called from several threads at once. */
#ifndef MAILFETCH_LOG_H
#define MAILFETCH_LOG_H

#include <stddef.h>

struct mf_error;

enum log_level {
	LOG_QUIET = -1,   /* -q: errors only */
	LOG_NORMAL = 0,   /* errors and warnings */
	LOG_VERBOSE = 1,  /* -v: one line per message, summary per account */
	LOG_TRACE = 2,    /* -v -v: the protocol */
	LOG_TRACE_BODY = 3, /* -v -v -v: literal bodies too */
};

/* The only mutable global besides signal flags: set once from the command line. */
extern int log_level;

/* who may be NULL for lines that concern no account. */
void log_error(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_info(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* From now on every line goes to the file path instead of stderr:
 * appended (O_APPEND: one write per line, so lines of threads and
 * processes never interleave), created with mode 0600, never through a
 * symlink at the last component, a regular file only; each line starts
 * with the local time in ISO 8601 with milliseconds and offset:
 * "2026-12-07T18:50:01.123+01:00 mailfetch: WHO: text".  Call it before
 * any thread starts.  Returns 0, or MF_EUSAGE with err set (one line
 * naming the file and what to do; not logged: the caller does that, still
 * to stderr). */
int log_open_file(const char *path, struct mf_error *err);

/* Opens the path of log_open_file() again (logrotate has moved the file
 * away) and puts the new file in place of the old one in one step: a line
 * written by another thread meanwhile goes to one file or the other, never
 * lost.  0 (also when not logging to a file), or MF_EUSAGE with err set:
 * the old file is kept and the caller logs err. */
int log_reopen(struct mf_error *err);

/* From now on every line goes to syslog(3): facility LOG_MAIL, ident
 * "mailfetch", with the pid; errors as LOG_ERR, warnings LOG_WARNING, -v
 * lines LOG_INFO, the trace LOG_DEBUG; the text as on stderr without the
 * "mailfetch: " in front.  Call it before any thread starts.
 *
 * When stderr is the systemd journal (JOURNAL_STREAM names it), each line
 * on stderr starts with the priority as sd-daemon(3) has it: <3> error,
 * <4> warning, <6> -v, <7> trace. */
void log_open_syslog(void);

/* A status line on a terminal (the progress of a long fetch): only when
 * stderr is a terminal and the level is LOG_NORMAL or LOG_VERBOSE (not
 * -q, not the trace), and lines go to stderr (not a log file or syslog).  log_status() replaces it (cut to the terminal's
 * width, drawn in place with CR); every log line clears it first and
 * draws it again after; log_status_clear() removes it. */
int log_status_wanted(void);
void log_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_status_clear(void);

/* Protocol trace (level >= LOG_TRACE): prefix is "IMAP>", "IMAP<" or "TLS:".
 * data[0..len) is shown with control bytes escaped, cut at a sane length;
 * if masked, " *"-style masking is the caller's job: pass only the part
 * that may be shown and set masked to append "*". */
void log_trace(const char *who, const char *prefix, const char *data, size_t len, int masked);

#endif
