/* fetch.h: one account's run: connect, authenticate, and for each folder
 * fetch -> deliver -> mark. */
#ifndef MAILFETCH_FETCH_H
#define MAILFETCH_FETCH_H

#include "config.h"

/* How to poll. */
struct fetch_opts {
	int check_only;   /* --check: count, fetch and change nothing */
	int json;         /* --json: nothing on stdout but the caller's summary */
	int no_progress;  /* polls run side by side: no progress line (they would
	                   * overwrite each other's) */
	int quiet_auth;   /* the daemon, after an authentication failure: a
	                   * failed login again is said at -v only */
};

/* What a folder's poll found and did, for --json. */
struct folder_report {
	const char *name;          /* borrowed from the account */
	int polled;                /* reached at all */
	int status;                /* MF_OK (delivered), MF_NOMAIL, or the worst error */
	unsigned long found;       /* matched the selection (fetch, limit included) */
	unsigned long delivered, failed;
	unsigned long skipped;     /* left on the server on purpose: over limit, past
	                            * fetch_limit, or not reached (stop, sink down) */
	unsigned long long bytes;  /* delivered */
	double seconds;
	char error[512];           /* the first error, "" if none */
};

/* What an account's poll did. */
struct account_report {
	const struct account *a;
	int status;                /* as fetch_account returns it */
	double seconds;
	char error[512];           /* the error that ended the poll, "" if none */
	struct folder_report *folders; /* a->nfolders, in order */
};

/* Polls account a; returns its exit code (MF_OK, MF_NOMAIL or an error,
 * already reported on stderr).  With o->check_only (--check), it logs in,
 * prints on stdout how many messages each folder would give (unless
 * o->json), and fetches, delivers and marks nothing: MF_OK if there is
 * mail, else MF_NOMAIL.  rep (may be NULL) is filled in; free it with
 * fetch_report_free(). */
int fetch_account(const struct account *a, const struct fetch_opts *o, struct account_report *rep);
void fetch_report_free(struct account_report *rep);

struct conn;
struct imap;
/* Connects, starts TLS and logs in as a poll does (the daemon's watch
 * connections): 0 with *conn and *imap set (the caller frees them with
 * imap_free() and conn_free()), or an exit code with err set. */
int fetch_connect(const struct account *a, struct conn **conn, struct imap **imap, struct mf_error *err);

#endif
