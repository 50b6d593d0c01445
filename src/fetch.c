/* fetch.c: one poll of one account.
 *
 * Order of events for each folder: SELECT, UID SEARCH, then batches of
 * UID FETCH ... BODY.PEEK[]; each message is received in full, delivered,
 * and only once the sink has confirmed it is its UID queued for marking.
 * After each batch the queued UIDs get \Seen (keep = yes) or \Deleted and
 * UID EXPUNGE (keep = no).  A message that fails delivery is never marked. */
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
#include "xmalloc.h"

/* What one account's run has learned and done. */
struct session {
	const struct account *a;
	struct conn *conn;
	struct imap *imap;
	struct sink *sink;
	struct spool *spool;
	const char *folder;
	uint32_t *done;        /* UIDs delivered in this batch, to be marked */
	size_t ndone;
	unsigned long delivered, failed;
	unsigned long long bytes;
	int result;            /* worst status so far */
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
	s->done[s->ndone++] = uid;
	s->delivered++;
	s->bytes += size;
	log_info(s->a->name, "%s: UID %u, %llu bytes: delivered", s->folder, uid, size);
}

/* Tells the server about the batch's confirmed deliveries. */
static int
mark_done(struct session *s, struct mf_error *err)
{
	int rc;

	if (s->ndone == 0)
		return 0;
	if (s->a->keep)
		return imap_uid_store(s->imap, s->done, s->ndone, "\\Seen", err);
	/* \Seen too, so that a message whose expunge fails is not fetched again. */
	rc = imap_uid_store(s->imap, s->done, s->ndone, "\\Seen \\Deleted", err);
	if (rc != 0)
		return rc;
	if (!imap_has_cap(s->imap, IMAP_CAP_UIDPLUS)) {
		/* Plain EXPUNGE would also remove what other clients marked. */
		log_warn(s->a->who, "server lacks UIDPLUS: %zu messages flagged \\Deleted but not expunged", s->ndone);
		return 0;
	}
	return imap_uid_expunge(s->imap, s->done, s->ndone, err);
}

/* One folder: select, search, then fetch, deliver and mark batch by batch.
 * A refusal the session survives (a tagged NO) is reported here and ends
 * only this folder; anything else is returned and ends the account. */
static int
poll_folder(struct session *s, const char *folder, struct mf_error *err)
{
	uint32_t exists, uidvalidity, *uids = NULL;
	size_t n = 0;
	int rc, read_only;

	s->folder = folder;
	rc = imap_select(s->imap, folder, &exists, &uidvalidity, &read_only, err);
	if (rc != 0) {
		if (!err->reply)
			return rc;
		log_error(s->a->who, "%s; check folders in the config", err->msg);
		s->result = status_worse(s->result, rc);
		return 0;
	}
	if (exists == 0)
		return 0;
	if (read_only) {
		log_error(s->a->who, "folder %s is read-only on the server, so fetched mail could not be marked; "
		    "not fetching from it, check its permissions on the server", folder);
		s->result = status_worse(s->result, MF_ESERVER);
		return 0;
	}
	/* Messages flagged \Deleted (by us without UIDPLUS, or by another
	 * client) are on their way out: never fetch them. */
	rc = imap_uid_search(s->imap, s->a->fetch == FETCH_ALL ? "UNDELETED" : "UNSEEN UNDELETED", &uids, &n, err);
	if (rc != 0)
		goto fail;
	log_info(s->a->name, "%s: %zu message%s to fetch", folder, n, n == 1 ? "" : "s");
	for (size_t off = 0; off < n; off += IMAP_FETCH_BATCH) {
		size_t k = n - off < IMAP_FETCH_BATCH ? n - off : IMAP_FETCH_BATCH;
		s->done = xreallocarray(s->done, k, sizeof *s->done);
		s->ndone = 0;
		rc = imap_uid_fetch(s->imap, uids + off, k, s->spool, on_message, s, err);
		if (rc != 0 && err->reply) {
			/* A NO to FETCH (messages expunged meanwhile): what did
			 * arrive was delivered and must be marked. */
			log_error(s->a->who, "%s", err->msg);
			s->result = status_worse(s->result, rc);
			rc = 0;
		}
		if (rc == 0)
			rc = mark_done(s, err);
		if (rc != 0) {
			if (s->ndone > 0)
				log_error(s->a->who, "%s: %zu delivered message%s could not be marked on the server; "
				    "they will be fetched again next time", folder, s->ndone, s->ndone == 1 ? "" : "s");
			goto fail;
		}
	}
	free(uids);
	return 0;
fail:
	free(uids);
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
	spool_free(s.spool);
	free(s.done);
	imap_free(s.imap);
	conn_free(s.conn);
	return s.result;
}
