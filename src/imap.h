/* imap.h: the IMAP client steps of one session, each a function that sends
 * one command and handles its replies.  All I/O goes through conn (and so
 * through the trace); responses come from imap_parse. */
#ifndef MAILFETCH_IMAP_H
#define MAILFETCH_IMAP_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "sasl.h"
#include "spool.h"
#include "status.h"
#include "tls.h"

enum imap_cap {
	IMAP_CAP_IMAP4REV1 = 1 << 0,
	IMAP_CAP_STARTTLS = 1 << 1,
	IMAP_CAP_LOGINDISABLED = 1 << 2,
	IMAP_CAP_AUTH_PLAIN = 1 << 3,
	IMAP_CAP_SASL_IR = 1 << 4,
	IMAP_CAP_UIDPLUS = 1 << 5,
	IMAP_CAP_LITERALPLUS = 1 << 6,
	IMAP_CAP_IDLE = 1 << 7,
	IMAP_CAP_NOTIFY = 1 << 8,
};

struct imap;

/* Starts a session on conn (owned by the caller, which must outlive it). */
struct imap *imap_new(struct conn *conn, const char *who);
void imap_free(struct imap *im);

/* Reads the greeting; *preauth is set for a PREAUTH greeting.  BYE: MF_ESERVER. */
int imap_greeting(struct imap *im, int *preauth, struct mf_error *err);
/* Asks CAPABILITY (replacing whatever was known). */
int imap_capability(struct imap *im, struct mf_error *err);
/* Whether capabilities are known, and whether one is offered. */
int imap_caps_known(const struct imap *im);
int imap_has_cap(const struct imap *im, unsigned cap);
/* STARTTLS, the handshake, then CAPABILITY again (nothing learned in
 * plaintext is kept).  Any failure is final: never fall back. */
int imap_starttls(struct imap *im, const char *host, const struct tls_opts *o, struct mf_error *err);
/* The SASL mechanisms the server offers (its AUTH= capabilities that
 * sasl.h knows), as SASL_BIT()s, and every AUTH= it listed, as text. */
unsigned imap_auth_offered(const struct imap *im);
const char *imap_auth_names(const struct imap *im);
/* The LOGIN command.  A rejected login is MF_EAUTH.  The password is
 * never traced (shown as "*") and the command buffer is wiped. */
int imap_login(struct imap *im, const char *user, const char *password, struct mf_error *err);
/* AUTHENTICATE m, the exchange made by s, with SASL-IR where offered.
 * Every payload is traced as "*".  A rejected login, or a server whose
 * challenge or success s does not accept (the exchange is then
 * cancelled), is MF_EAUTH. */
int imap_authenticate(struct imap *im, enum sasl_mech m, struct sasl *s, struct mf_error *err);
/* What SELECT and UID SEARCH found in a folder. */
struct imap_folder {
	int selected;           /* the SELECT succeeded */
	uint32_t exists, uidvalidity;
	int read_only;          /* [READ-ONLY] */
	uint32_t *uids;         /* sorted, no duplicates; the caller frees */
	size_t n;
};
/* SELECT (EXAMINE if examine) folder and UID SEARCH criteria, sent together (one round trip).
 * A tagged NO/BAD to either is MF_ESERVER with err->reply set. */
int imap_select_search(struct imap *im, const char *folder, int examine, const char *criteria, struct imap_folder *out,
    struct mf_error *err);

/* UID SEARCH criteria in the selected folder: *uids (sorted, no
 * duplicates; the caller frees) and *n.  A tagged NO/BAD is MF_ESERVER
 * with err->reply set. */
int imap_uid_search(struct imap *im, const char *criteria, uint32_t **uids, size_t *n, struct mf_error *err);

/* What imap_fetch() hands back to its caller. */
struct imap_fetch_ops {
	/* Each message received in full, or known to be lost.  msg is NULL
	 * when there is nothing to deliver: then problem says why (a
	 * failed message), or, with problem NULL, warning says why the
	 * server returned nothing for it.  Otherwise problem is NULL, or why
	 * it must not be delivered (it could not be stored locally), and
	 * warning is NULL or something worth saying about a message that
	 * is delivered all the same (its size differs from RFC822.SIZE). */
	void (*message)(void *ctx, uint32_t uid, struct spool *msg, const char *problem, const char *warning);
	/* The FETCH for uids[0..n) is over: every message of it that came has
	 * been handed to message().  refused is NULL, or the server's text if
	 * it answered NO/BAD.  The caller makes its deliveries durable here
	 * and may queue marks with imap_fetch_mark(). */
	void (*chunk_done)(void *ctx, const uint32_t *uids, size_t n, const char *refused);
	/* The server took the marks queued for uids[0..n) (a \Seen \Deleted
	 * message is not fetched again even if its expunge fails).  May be
	 * NULL. */
	void (*marked)(void *ctx, const uint32_t *uids, size_t n);
	/* Asked before each step: nonzero means stop as imap_fetch_stop()
	 * does.  May be NULL. */
	int (*stop)(void *ctx);
};

/* Fetches uids[0..n) (sorted) with UID FETCH (UID RFC822.SIZE
 * BODY.PEEK[]), in chunks of IMAP_FETCH_BATCH, keeping up to
 * IMAP_FETCH_WINDOW commands in flight so no round trip is waited for;
 * marks queued by chunk_done go out as the pipeline has room (at most
 * IMAP_MARK_WINDOW at once) and their replies are collected on the way.
 * Returns 0 when every command is answered; a mark the server refused
 * gives MF_ESERVER with err->reply set. */
int imap_fetch(struct imap *im, const uint32_t *uids, size_t n, struct spool *spool,
    const struct imap_fetch_ops *ops, void *ctx, struct mf_error *err);
/* From a callback of imap_fetch: send no more UID FETCH, hand no more
 * messages over; what is outstanding (marks included) is still answered
 * before imap_fetch returns. */
void imap_fetch_stop(struct imap *im);
/* From chunk_done only: queues UID STORE uids +FLAGS.SILENT (flags), then
 * UID EXPUNGE uids if expunge (needs UIDPLUS). */
void imap_fetch_mark(struct imap *im, const uint32_t *uids, size_t n, const char *flags, int expunge);
/* Outside imap_fetch: marks uids like imap_fetch_mark, a few commands at a
 * time, and waits for the answers; ops->marked (ops may be NULL) hears of
 * each confirmed set.  A refusal is MF_ESERVER with err->reply set. */
int imap_mark(struct imap *im, const uint32_t *uids, size_t n, const char *flags, int expunge,
    const struct imap_fetch_ops *ops, void *ctx, struct mf_error *err);
int imap_logout(struct imap *im, struct mf_error *err);

/* Watching for new mail (the daemon's push): IDLE (RFC 2177) on a folder
 * opened with imap_examine(), or NOTIFY (RFC 5465) for many folders on
 * one connection.  *events counts the responses that may mean new mail
 * (EXISTS, RECENT above 0, STATUS); they are not told apart, since the
 * answer to any of them is a poll. */
/* EXAMINE folder: read-only, so watching changes nothing.  A refusal is
 * MF_ESERVER with err->reply set. */
int imap_examine(struct imap *im, const char *folder, struct mf_error *err);
/* NOTIFY SET (mailboxes (folders...) (MessageNew MessageExpunge)). */
int imap_notify_set(struct imap *im, char *const *folders, size_t n, struct mf_error *err);
/* Sends IDLE and reads up to the server's go-ahead. */
int imap_idle_start(struct imap *im, unsigned *events, struct mf_error *err);
/* While idling, and input is waiting: reads one response.  The server
 * ending the IDLE itself (a tagged reply) or BYE is MF_ESERVER. */
int imap_idle_read(struct imap *im, unsigned *events, struct mf_error *err);
/* DONE, then reads to the IDLE's tagged reply (within the timeout). */
int imap_idle_done(struct imap *im, unsigned *events, struct mf_error *err);

#endif
