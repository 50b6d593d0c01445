/* status.h: exit codes (fetchmail's, so scripts keep working) and the error
 * record that lower layers fill and the poll layer reports. */
#ifndef MAILFETCH_STATUS_H
#define MAILFETCH_STATUS_H

#include <stddef.h>

enum mf_status {
	MF_OK = 0,          /* mail delivered */
	MF_NOMAIL = 1,      /* nothing new */
	MF_ECONNECT = 2,    /* could not connect, TLS handshake or certificate */
	MF_EAUTH = 3,       /* authentication failed */
	MF_EPROTO = 4,      /* protocol error, STARTTLS missing or tampered with */
	MF_EUSAGE = 5,      /* usage or config syntax */
	MF_EPERM = 6,       /* config file permissions */
	MF_ESERVER = 7,     /* server error reply, timeout, connection lost */
	MF_ELOCK = 8,       /* another run holds the lock */
	MF_EDELIVER = 10,   /* delivery failed */
	MF_EDNS = 11,       /* host name lookup failed */
	MF_LIMIT = 13,      /* fetch_limit left mail on the server */
	MF_EINTERNAL = 23,  /* internal error */
};

/* What went wrong, for one line of log: code plus text. */
struct mf_error {
	int code;
	int reply;      /* a tagged NO/BAD: the session itself is still usable */
	char msg[512];
};

/* Sets err (if not NULL, clearing reply) and returns code; fmt describes the problem and,
 * after a "; ", what the user can do. */
int err_set(struct mf_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A short name for an exit status ("delivered", "no-mail", "auth", ...;
 * "signal" for 128+N), for --json. */
const char *status_class(int code);

/* Of two run results, the one that must be reported (the more serious). */
int status_worse(int a, int b);

#endif
