/* fetch.c: one poll of one account.
 *
 * Order of events for each folder: SELECT, UID SEARCH, then UID FETCH ...
 * BODY.PEEK[] in chunks, pipelined; each message is received in full and
 * delivered; when a chunk's FETCH is over, the sink commits (one fsync for
 * an mbox) and only then do the chunk's delivered UIDs get \Seen (keep =
 * yes) or \Seen \Deleted and UID EXPUNGE (keep = no).  A message whose
 * delivery or commit failed is never marked. */
#include "autoconfig.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "deliver.h"
#include "imap.h"
#include "mf_limits.h"
#include "log.h"
#include "net.h"
#include "fetch.h"
#include "secret.h"
#include "spool.h"
#include "state.h"
#include "xmalloc.h"

/* What one account's run has learned and done. */
struct session {
	const struct account *a;
	struct conn *conn;
	struct imap *imap;
	struct sink *sink;
	struct spool *spool;
	struct state *state;   /* delivered-but-unmarked journal */
	const char *folder;
	uint32_t uidvalidity;
	uint32_t *done;        /* UIDs delivered since the last commit */
	size_t ndone, done_cap;
	unsigned long long done_bytes;
	unsigned long delivered, failed; /* committed, and not delivered */
	unsigned long long bytes;
	int result;            /* worst status so far */
	int mark_rc;           /* a mark that could not be sent (connection) */
	struct mf_error mark_err;
};

/* Termination signals wait while a message is being delivered, so a
 * killed run never leaves half a message in an mbox or feeds an MDA a
 * truncated one; they take effect as soon as the delivery is over. */
static void
block_termination(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, old);
}

/* Records delivered UIDs in the state journal; a failure costs only the
 * protection against redelivery after a crash, so it is reported and the
 * run goes on. */
static void
journal(struct session *s, const uint32_t *uids, size_t n, int sync)
{
	struct mf_error err;

	if (state_delivered(s->state, s->folder, s->uidvalidity, uids, n, sync, &err) != 0)
		log_error(s->a->who, "%s", err.msg);
}

static void
on_message(void *ctx, uint32_t uid, struct spool *msg, const char *problem)
{
	struct session *s = ctx;
	struct mf_error err = { 0 };
	unsigned long long size = spool_size(msg);
	sigset_t old;
	int temporary = 0, rc;

	if (problem != NULL) {
		s->failed++;
		s->result = status_worse(s->result, MF_EDELIVER);
		log_error(s->a->who, "%s: UID %u not delivered, it stays on the server: %s", s->folder, uid, problem);
		return;
	}
	block_termination(&old);
	rc = sink_deliver(s->sink, msg, &temporary, &err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		s->failed++;
		s->result = status_worse(s->result, MF_EDELIVER);
		log_error(s->a->who, "%s: UID %u (%llu bytes) not delivered: %s", s->folder, uid, size, err.msg);
		return;
	}
	if (s->ndone == s->done_cap) {
		s->done_cap = s->done_cap ? s->done_cap * 2 : 128;
		s->done = xreallocarray(s->done, s->done_cap, sizeof *s->done);
	}
	s->done[s->ndone++] = uid;
	s->done_bytes += size;
	log_info(s->a->name, "%s: UID %u, %llu bytes: delivered", s->folder, uid, size);
	/* An MDA has it for good: journal it now, so that even a kill before
	 * the end of the chunk does not make it come again. */
	if (s->sink->ops->durable_per_message)
		journal(s, &uid, 1, 0);
}

/* \Seen with \Deleted too for keep = no: a message whose expunge fails
 * is not fetched again. */
static const char *
mark_flags(const struct session *s)
{
	return s->a->keep ? "\\Seen" : "\\Seen \\Deleted";
}

/* Whether marks of keep = no can be followed by UID EXPUNGE. */
static int
mark_expunge(const struct session *s)
{
	return !s->a->keep && imap_has_cap(s->imap, IMAP_CAP_UIDPLUS);
}

/* A chunk's FETCH is over: make its deliveries durable, then (only then)
 * tell the server about them. */
static void
on_chunk_done(void *ctx, const uint32_t *uids, size_t n, const char *refused)
{
	struct session *s = ctx;
	struct mf_error err = { 0 };
	int expunge = 0;

	if (refused != NULL) {
		/* A NO to FETCH (messages expunged meanwhile): what did
		 * arrive was delivered and is marked as usual. */
		log_error(s->a->who, "%s: UID FETCH failed: server said %s", s->folder, refused);
		s->result = status_worse(s->result, MF_ESERVER);
	}
	if (s->ndone == 0)
		return;
	if (sink_commit(s->sink, &err) != 0) {
		log_error(s->a->who, "%s: %zu message%s not delivered: %s", s->folder, s->ndone,
		    s->ndone == 1 ? "" : "s", err.msg);
		s->failed += s->ndone;
		s->result = status_worse(s->result, MF_EDELIVER);
		s->ndone = 0;
		s->done_bytes = 0;
		return;
	}
	s->delivered += s->ndone;
	s->bytes += s->done_bytes;
	/* Durable now: journal the chunk (an MDA's are in already), then mark. */
	if (s->sink->ops->durable_per_message)
		journal(s, NULL, 0, 1);
	else
		journal(s, s->done, s->ndone, 1);
	expunge = mark_expunge(s);
	if (!s->a->keep && !expunge)
		/* Plain EXPUNGE would also remove what other clients marked. */
		log_warn(s->a->who, "server lacks UIDPLUS: %zu messages flagged \\Deleted but not expunged", s->ndone);
	if (s->mark_rc == 0)
		s->mark_rc = imap_fetch_mark(s->imap, s->done, s->ndone, mark_flags(s), expunge, &s->mark_err);
	s->ndone = 0;
	s->done_bytes = 0;
}

/* The server has the marks: the journal need not remember these. */
static void
on_marked(void *ctx, const uint32_t *uids, size_t n)
{
	struct session *s = ctx;

	state_forget(s->state, s->folder, uids, n);
}

static const struct imap_fetch_ops fetch_ops = {
	.message = on_message,
	.chunk_done = on_chunk_done,
	.marked = on_marked,
};

/* Messages an earlier run delivered but could not mark (it was killed, or
 * the server refused the marks) are in the journal: mark them now and
 * take them out of uids[0..*n) instead of delivering them again.  Only
 * entries under the folder's current UIDVALIDITY count. */
static int
finish_journaled(struct session *s, uint32_t *uids, size_t *n, struct mf_error *err)
{
	const uint32_t *had;
	size_t nhad = state_pending(s->state, s->folder, s->uidvalidity, &had), k = 0, j = 0, nmark = 0;
	uint32_t *mark;
	int rc;

	if (nhad == 0)
		return 0;
	mark = xreallocarray(NULL, nhad, sizeof *mark);
	for (size_t i = 0; i < *n; i++) {
		while (j < nhad && had[j] < uids[i])
			j++;
		if (j < nhad && had[j] == uids[i])
			mark[nmark++] = uids[i];
		else
			uids[k++] = uids[i];
	}
	*n = k;
	if (nmark == 0) {
		state_marked(s->state, s->folder);
		free(mark);
		return 0;
	}
	log_info(s->a->name, "%s: %zu message%s delivered by an earlier run, marking only", s->folder, nmark,
	    nmark == 1 ? "" : "s");
	rc = imap_mark(s->imap, mark, nmark, mark_flags(s), mark_expunge(s), err);
	if (rc == 0)
		state_marked(s->state, s->folder);
	free(mark);
	return rc;
}

/* One folder: select, search, then fetch, deliver and mark batch by batch.
 * A refusal the session survives (a tagged NO) is reported here and ends
 * only this folder; anything else is returned and ends the account. */
static int
poll_folder(struct session *s, const char *folder, struct mf_error *err)
{
	struct imap_folder f;
	uint32_t *uids = NULL;
	size_t n = 0;
	int rc;

	s->folder = folder;
	/* Messages flagged \Deleted (by us without UIDPLUS, or by another
	 * client) are on their way out: never fetch them. */
	rc = imap_select_search(s->imap, folder, s->a->fetch == FETCH_ALL ? "UNDELETED" : "UNSEEN UNDELETED", &f, err);
	if (rc != 0) {
		if (!err->reply)
			return rc;
		log_error(s->a->who, "%s%s", err->msg, f.selected ? "" : "; check folders in the config");
		s->result = status_worse(s->result, rc);
		return 0;
	}
	uids = f.uids;
	n = f.n;
	if (f.exists == 0 && n == 0) {
		free(uids);
		return 0;
	}
	if (f.read_only) {
		free(uids);
		log_error(s->a->who, "folder %s is read-only on the server, so fetched mail could not be marked; "
		    "not fetching from it, check its permissions on the server", folder);
		s->result = status_worse(s->result, MF_ESERVER);
		return 0;
	}
	s->uidvalidity = f.uidvalidity;
	if ((rc = finish_journaled(s, uids, &n, err)) != 0)
		goto fail;
	log_info(s->a->name, "%s: %zu message%s to fetch", folder, n, n == 1 ? "" : "s");
	s->ndone = 0;
	s->done_bytes = 0;
	rc = imap_fetch(s->imap, uids, n, s->spool, &fetch_ops, s, err);
	if (rc == 0 && s->mark_rc != 0) {
		*err = s->mark_err;
		rc = s->mark_rc;
	}
	if (rc != 0)
		goto fail;
	state_marked(s->state, folder);
	free(uids);
	return 0;
fail:
	free(uids);
	if (s->ndone > 0) {
		/* Delivered, never committed nor marked: an mbox takes them
		 * back when it closes; an MDA has them already, and they are
		 * journaled, so the next run only marks them. */
		if (s->sink->ops->durable_per_message) {
			s->delivered += s->ndone;
			s->bytes += s->done_bytes;
			log_warn(s->a->who, "%s: %zu delivered message%s could not be marked on the server; "
			    "the next run marks them", folder, s->ndone, s->ndone == 1 ? "" : "s");
		} else {
			log_warn(s->a->who, "%s: %zu message%s received before the failure are taken back out of "
			    "the mbox and stay on the server", folder, s->ndone, s->ndone == 1 ? "" : "s");
		}
		s->ndone = 0;
		s->done_bytes = 0;
	}
	if (!err->reply)
		return rc;
	log_error(s->a->who, "%s: %s", folder, err->msg);
	s->result = status_worse(s->result, rc);
	return 0;
}

static void
tls_opts_of(const struct account *a, struct tls_opts *o)
{
	memset(o, 0, sizeof *o);
	o->ca_file = a->tls_ca_file;
	o->has_pin = a->has_pin;
	memcpy(o->pin, a->pin, sizeof o->pin);
	o->min_version = a->tls_min_version;
}

/* Connect, TLS, greeting, capabilities, login. */
static int
session_open(struct session *s, struct mf_error *err)
{
	const struct account *a = s->a;
	struct tls_opts to;
	char *password = NULL;
	int fd, preauth, rc;
	enum imap_auth how = a->auth == AUTH_PLAIN ? IMAP_AUTH_PLAIN : a->auth == AUTH_LOGIN ? IMAP_AUTH_LOGIN : IMAP_AUTH_AUTO;

	if ((rc = secret_get(a, &password, err)) != 0)
		return rc;
	tls_opts_of(a, &to);
	fd = net_connect(a->host, (unsigned)a->port, a->timeout * 1000, err);
	if (fd < 0) {
		free_secret(password);
		return err->code;
	}
	s->conn = conn_new(fd, a->timeout * 1000, a->name, "IMAP");
	s->imap = imap_new(s->conn, a->name);
	if (a->tls == TLS_IMPLICIT && (rc = conn_start_tls(s->conn, a->host, &to, err)) != 0)
		goto out;
	if ((rc = imap_greeting(s->imap, &preauth, err)) != 0)
		goto out;
	if (preauth && a->tls == TLS_STARTTLS) {
		rc = err_set(err, MF_EPROTO, "server sent PREAUTH before STARTTLS, so TLS cannot be started; "
		    "refusing to continue without TLS, use tls = implicit if the server offers it");
		goto out;
	}
	if (a->tls == TLS_STARTTLS) {
		if (!imap_caps_known(s->imap) && (rc = imap_capability(s->imap, err)) != 0)
			goto out;
		if (!imap_has_cap(s->imap, IMAP_CAP_STARTTLS)) {
			rc = err_set(err, MF_EPROTO, "server does not offer STARTTLS; not logging in without TLS, "
			    "use tls = implicit on port 993 if the server offers it");
			goto out;
		}
		if ((rc = imap_starttls(s->imap, a->host, &to, err)) != 0)
			goto out;
	} else if (!imap_caps_known(s->imap) && (rc = imap_capability(s->imap, err)) != 0) {
		goto out;
	}
	if (!preauth)
		rc = imap_login(s->imap, how, a->user, password, err);
out:
	free_secret(password);
	return rc;
}

int
fetch_account(const struct account *a)
{
	struct session s = { .a = a, .result = MF_NOMAIL };
	struct mf_error err = { 0 };
	int rc;

	rc = session_open(&s, &err);
	if (rc == 0) {
		s.sink = sink_open(a, a->who, &err);
		rc = s.sink == NULL ? err.code : 0;
	}
	if (rc == 0) {
		state_open(a, &s.state, &err);
		s.spool = spool_new();
		for (size_t i = 0; i < a->nfolders && rc == 0; i++)
			rc = poll_folder(&s, a->folders[i], &err);
		if (rc == 0) {
			struct mf_error lerr;
			imap_logout(s.imap, &lerr); /* nothing is at stake any more */
		}
	}
	if (rc != 0) {
		log_error(a->who, "%s", err.msg);
		s.result = status_worse(s.result, rc);
	}
	if (s.delivered > 0)
		s.result = status_worse(s.result, MF_OK);
	if (s.conn != NULL)
		log_info(a->name, "%lu message%s (%llu bytes) for %s@%s: %lu delivered, %lu failed",
		    s.delivered + s.failed, s.delivered + s.failed == 1 ? "" : "s", s.bytes, a->user, a->host,
		    s.delivered, s.failed);
	sink_close(s.sink);
	if (state_close(s.state, &err) != 0) {
		log_error(a->who, "%s", err.msg);
		s.result = status_worse(s.result, MF_EINTERNAL);
	}
	spool_free(s.spool);
	free(s.done);
	imap_free(s.imap);
	conn_free(s.conn);
	return s.result;
}
