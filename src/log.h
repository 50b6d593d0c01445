/* log.h: the one logging API, for three audiences: errors for everyone,
 * -v for the person at the shell, -v -v for the protocol.  Every line goes
 * to stderr as "mailfetch: WHO: text", WHO naming the account. */
#ifndef MAILFETCH_LOG_H
#define MAILFETCH_LOG_H

#include <stddef.h>

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

/* A status line on a terminal (the progress of a long fetch): only when
 * stderr is a terminal and the level is LOG_NORMAL or LOG_VERBOSE (not
 * -q, not the trace).  log_status() replaces it (cut to the terminal's
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
