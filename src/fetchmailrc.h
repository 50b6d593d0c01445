/* fetchmailrc.h: fetchmail's run control file (~/.fetchmailrc), read with
 * fetchmail's own grammar, and written out as a fetchrc: every setting
 * that mailfetch has an equivalent for becomes a key, every other one a
 * comment, so that nothing is dropped without a word. */
#ifndef MAILFETCH_FETCHMAILRC_H
#define MAILFETCH_FETCHMAILRC_H

#include <stddef.h>
#include <stdio.h>

#include "status.h"

/* A setting that has no field of its own: kept as text, for a comment. */
struct fmrc_opt {
	const char *kw;   /* fetchmail's keyword, canonical spelling ("postconnect") */
	int neg;          /* written as "no KEYWORD" */
	char *text;       /* the setting as fetchmail would read it, secrets masked */
	unsigned line;
};

struct fmrc_opts {
	struct fmrc_opt *v;
	size_t n;
};

struct fmrc_list {
	char **v;
	size_t n;
};

/* One user description of a poll entry; -1 or NULL: not set. */
struct fmrc_user {
	unsigned line;
	char *remote;                /* user NAME: the login on the server */
	struct fmrc_list local;      /* is / to / "user NAMES here": local names, "a=b" for mappings */
	int wildcard;                /* "*" among the local names */
	int mapped;                  /* a "server=local" mapping among them */
	char *password;
	char *passwordfile;
	char *mda;
	char *sslproto;              /* "" is a value: STARTTLS off */
	char *sslcertfile;           /* made absolute against the rc file's directory */
	char *sslfingerprint;
	char *smtpname, *smtpaddress;
	struct fmrc_list folders, smtphosts;
	int keep, fetchall, ssl, sslcertck, lmtp;
	long limit, fetchlimit;
	unsigned pw_line;
	struct fmrc_opts other;
};

/* One poll or skip entry (or the defaults entry). */
struct fmrc_poll {
	char *name;
	unsigned line;
	int skip;
	int defaults;
	char *via, *proto, *service, *auth;
	long timeout;
	struct fmrc_opts other;
	struct fmrc_user *users;
	size_t nusers;
};

struct fmrc {
	struct fmrc_opts globals;    /* the set statements */
	struct fmrc_poll *polls;     /* in file order; a defaults entry can only be first */
	size_t npolls;
};

/* Parses the rc text buf[0..len) (file names it in messages, dir is the
 * directory that relative file names in it are taken against). Returns 0
 * with *out (free with fmrc_free), or MF_EUSAGE with err->msg
 * "FILE:LINE: what is wrong". No global state. */
int fmrc_parse(const char *buf, size_t len, const char *file, const char *dir, struct fmrc **out,
    struct mf_error *err);

void fmrc_free(struct fmrc *rc);

/* What the writer needs to know besides the rc. */
struct fmrc_emit_opts {
	const char *source;      /* the rc file's name, for the header */
	const char *local_user;  /* fetchmail's default local name and login */
};

/* What the writer did, for the caller's messages. */
struct fmrc_emit_result {
	size_t accounts;         /* sections written */
	size_t disabled;         /* of those, commented out */
};

/* Writes the fetchrc for rc to fp; disabled accounts are also reported
 * with log_warn. Returns 0, or -1 if fp failed. */
int fmrc_emit(const struct fmrc *rc, const struct fmrc_emit_opts *o, FILE *fp, struct fmrc_emit_result *res);

/* The whole --import-fetchmailrc command: reads rcpath (NULL: fetchmail's
 * default, $FETCHMAILHOME/fetchmailrc or ~/.fetchmailrc; "-": standard
 * input, as for fetchmail -f -), writes the
 * fetchrc to outpath (mode 0600, atomically, never over an existing
 * file) or to stdout when outpath is NULL. Returns the exit status: 0,
 * or 5 (unreadable or bad rc file, output not written) with the error
 * logged. */
int fmrc_import(const char *rcpath, const char *outpath);

#endif
