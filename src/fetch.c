/* fetch.c: one poll of one account.
 *
 * Order of events for each folder: SELECT, UID SEARCH, then UID FETCH ...
 * BODY.PEEK[] in chunks, pipelined; each message is received in full and
 * delivered; when a chunk's FETCH is over, the sink commits (one fsync for
 * an mbox) and only then do the chunk's delivered UIDs get \Seen (keep =
 * yes) or \Seen \Deleted and UID EXPUNGE (keep = no).  A message whose
 * delivery or commit failed is never marked. */
#include "autoconfig.h"

#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "deliver.h"
#include "imap.h"
#include "mf_limits.h"
#include "log.h"
#include "net.h"
#include "fetch.h"
#include "history.h"
#include "secret.h"
#include "signals.h"
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
	struct state *state;   /* the delivery journal */
	const char *folder;
	uint32_t uidvalidity;
	uint32_t *done;        /* UIDs delivered since the last commit */
	size_t ndone, done_cap;
	unsigned long long done_bytes;
	unsigned long delivered, failed; /* committed, and not delivered */
	unsigned long long bytes;
	int result;            /* worst status so far */
	int sink_down;         /* the sink failed temporarily: no more deliveries this run */
	int journal_failed;    /* reported once */
	uint32_t uid_in_hand;  /* the message being delivered */
	unsigned inflight;     /* messages the sink took, their outcome not yet known */
	struct history *hist;  /* delivered UIDs by day: fetch = new, delete_after; else NULL */
	uint32_t today;
	int check_only;        /* --check: count, change nothing */
	unsigned long counted; /* --check: messages that would be fetched */
	const struct fetch_opts *opts;
	struct account_report *rep; /* what the run did (a local one if the caller wants none) */
	struct folder_report *fr;   /* the folder being polled, or NULL */
	unsigned long nbig;         /* the folder's messages over limit */
	/* the progress line of the folder being fetched */
	unsigned long f_total, f_handled;
	unsigned long long f_bytes;
	long f_start_ms, f_drawn_ms;
};

/* A worse status for the run, and for the folder being polled. */
static void
worsen(struct session *s, int code)
{
	s->result = status_worse(s->result, code);
	if (s->fr != NULL)
		s->fr->status = status_worse(s->fr->status, code);
}

/* Logs an error of the account and keeps the first of its folder (or of
 * the account, outside folders) for the report. */
static void __attribute__((format(printf, 2, 3)))
session_error(struct session *s, const char *fmt, ...)
{
	char msg[512];
	char *keep = s->fr != NULL ? s->fr->error : s->rep->error;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error(s->a->who, "%s", msg);
	if (keep[0] == '\0')
		snprintf(keep, sizeof s->rep->error, "%s", msg);
}

/* 1536 -> "1.5 KiB" */
static void
human_bytes(char *out, size_t len, double n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;
	while (n >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
		n /= 1024;
		u++;
	}
	snprintf(out, len, u == 0 ? "%.0f %s" : "%.1f %s", n, unit[u]);
}

/* Redraws the progress line of a long fetch, at most five times a second
 * (always for the last message), once the fetch has taken half a second. */
static void
progress(struct session *s)
{
	long now = net_now_ms(), took = now - s->f_start_ms;
	char got[32], rate[32], left[32] = "";

	if (s->opts == NULL || s->opts->no_progress || !log_status_wanted() || took < 500 ||
	    (now - s->f_drawn_ms < 200 && s->f_handled < s->f_total))
		return;
	s->f_drawn_ms = now;
	human_bytes(got, sizeof got, (double)s->f_bytes);
	human_bytes(rate, sizeof rate, (double)s->f_bytes * 1000.0 / (double)took);
	if (s->f_handled > 0 && s->f_handled < s->f_total) {
		long secs = (long)((double)took / 1000.0 * (double)(s->f_total - s->f_handled) / (double)s->f_handled);
		snprintf(left, sizeof left, ", %ld:%02ld left", secs / 60, secs % 60);
	}
	log_status("%s %s: %lu of %lu messages, %s, %s/s%s", s->a->name, s->folder, s->f_handled, s->f_total, got,
	    rate, left);
}

/* A journal that cannot be written costs only the protection against
 * redelivery after a crash, so it is reported (once) and the run goes on. */
static void
journal_error(struct session *s, const struct mf_error *err)
{
	if (!s->journal_failed)
		session_error(s, "%s", err->msg);
	s->journal_failed = 1;
}

/* Records delivered UIDs in the state journal. */
static void
journal(struct session *s, const uint32_t *uids, size_t n, int sync)
{
	struct mf_error err;

	if (state_delivered(s->state, s->folder, s->uidvalidity, uids, n, sync, &err) != 0)
		journal_error(s, &err);
}

/* The sink's hook: where the message in hand is about to be written. */
static int
on_intent(void *ctx, const char *token)
{
	struct session *s = ctx;
	struct mf_error err;

	if (state_intent(s->state, s->folder, s->uidvalidity, s->uid_in_hand, token, &err) != 0) {
		journal_error(s, &err);
		return -1;
	}
	return 0;
}

/* What became of one message handed to the sink: rc 0 delivered (already:
 * found there whole, from an interrupted run), else not, with err. */
static void
outcome(struct session *s, uint32_t uid, unsigned long long size, int rc, int temporary, int already,
    const struct mf_error *err)
{
	if (rc != 0) {
		state_intent_void(s->state, s->folder, s->uidvalidity, uid);
		s->failed++;
		worsen(s, MF_EDELIVER);
		session_error(s, "%s: UID %u (%llu bytes) not delivered: %s", s->folder, uid, size, err->msg);
		if (temporary && !s->sink_down) {
			/* The next message would only wait and fail the same way. */
			s->sink_down = 1;
			session_error(s, "%s: delivering nothing more this run; the rest stays on the server "
			    "for the next run", s->folder);
			imap_fetch_stop(s->imap);
		}
		s->f_handled++;
		progress(s);
		return;
	}
	if (s->ndone == s->done_cap) {
		s->done_cap = s->done_cap ? s->done_cap * 2 : 128;
		s->done = xreallocarray(s->done, s->done_cap, sizeof *s->done);
	}
	s->done[s->ndone++] = uid;
	s->done_bytes += size;
	log_info(s->a->name, "%s: UID %u, %llu bytes: %s", s->folder, uid, size,
	    already ? "already delivered by an interrupted run" : "delivered");
	/* An MDA has it for good: journal it now, so that even a kill before
	 * the end of the chunk does not make it come again. */
	if (s->sink->ops->durable_per_message)
		journal(s, &uid, 1, 0);
	s->f_handled++;
	s->f_bytes += size;
	progress(s);
}

/* The outcome of a message the sink took without waiting for it. */
static void
on_outcome(void *ctx, unsigned long tag, unsigned long long size, int rc, int temporary, const struct mf_error *err)
{
	struct session *s = ctx;

	s->inflight--;
	outcome(s, (uint32_t)tag, size, rc, temporary, 0, err);
}

static void
on_message(void *ctx, uint32_t uid, struct spool *msg, const char *problem, const char *warning)
{
	struct session *s = ctx;
	struct mf_error err = { 0 };
	int temporary = 0, already = 0, pending = 0, down = s->sink_down, rc;

	if (msg == NULL && problem == NULL) {
		log_warn(s->a->who, "%s: UID %u: %s", s->folder, uid, warning);
		return;
	}
	if (warning != NULL)
		log_warn(s->a->who, "%s: UID %u: %s", s->folder, uid, warning);
	if (problem != NULL) {
		s->failed++;
		worsen(s, MF_EDELIVER);
		session_error(s, "%s: UID %u not delivered, it stays on the server: %s", s->folder, uid, problem);
		s->f_handled++;
		progress(s);
		return;
	}
	/* A stop signal only sets a flag: the delivery goes on (an MDA
	 * within the grace period), and the loop stops after it. */
	s->uid_in_hand = uid;
	rc = sink_deliver(s->sink, msg, state_prior(s->state, s->folder, s->uidvalidity, uid), uid, &temporary,
	    &already, &pending, &err);
	if (rc != 0 && s->sink_down && !down) {
		/* The outcome of an earlier message, learnt meanwhile, has
		 * ended deliveries: this one was not tried, it stays on the
		 * server unreported, as if the fetch had stopped before it. */
	} else if (pending) {
		s->inflight++;
	} else {
		outcome(s, uid, spool_size(msg), rc, temporary, already, &err);
	}
	if (signals_stop())
		imap_fetch_stop(s->imap);
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

/* Makes what was delivered since the last commit durable and journals
 * it.  Returns 1 if there is something to mark now (in s->done[0..ndone)),
 * 0 if not (nothing delivered, or the commit failed: then it counts as
 * failed and stays on the server). */
static int
settle(struct session *s)
{
	struct mf_error err = { 0 };

	/* The outcomes of messages still on their way count in this chunk. */
	sink_flush(s->sink);
	if (s->ndone == 0) {
		/* Nothing delivered, but the sink may hold locks. */
		if (sink_commit(s->sink, &err) != 0)
			session_error(s, "%s", err.msg);
		return 0;
	}
	if (sink_commit(s->sink, &err) != 0) {
		session_error(s, "%s: %zu message%s not delivered: %s", s->folder, s->ndone,
		    s->ndone == 1 ? "" : "s", err.msg);
		s->failed += s->ndone;
		worsen(s, MF_EDELIVER);
		s->ndone = 0;
		s->done_bytes = 0;
		return 0;
	}
	s->delivered += s->ndone;
	s->bytes += s->done_bytes;
	/* Durable now: journal the chunk (an MDA's are in already). */
	if (s->sink->ops->durable_per_message)
		journal(s, NULL, 0, 1);
	else
		journal(s, s->done, s->ndone, 1);
	return 1;
}

/* Delivered and durable: record uids[0..n) in the history, where the
 * account keeps one.  With fetch = new and keep = yes that is all the
 * marking there is (flags stay as they are): returns 1, and the journal
 * forgets them (history_save comes before the journal is rewritten).
 * Otherwise returns 0: the server must be told. */
static int
mark_or_record(struct session *s, const uint32_t *uids, size_t n)
{
	if (s->hist != NULL)
		history_add(s->hist, s->folder, s->uidvalidity, uids, n, s->today);
	if ((s->a->fetch == FETCH_NEW || s->a->fetch_new_configured) && s->a->keep) {
		state_forget(s->state, s->folder, uids, n);
		return 1;
	}
	if (!s->a->keep && !mark_expunge(s))
		/* Plain EXPUNGE would also remove what other clients marked. */
		log_warn(s->a->who, "server lacks UIDPLUS: %zu message%s flagged \\Deleted but not expunged", n,
		    n == 1 ? "" : "s");
	return 0;
}

/* A chunk's FETCH is over: make its deliveries durable, then (only then)
 * tell the server about them. */
static void
on_chunk_done(void *ctx, const uint32_t *uids, size_t n, const char *refused)
{
	struct session *s = ctx;

	(void)uids;
	(void)n;
	if (refused != NULL) {
		/* A NO to FETCH (messages expunged meanwhile): what did
		 * arrive was delivered and is marked as usual. */
		session_error(s, "%s: UID FETCH failed: server said %s", s->folder, refused);
		worsen(s, MF_ESERVER);
	}
	if (!settle(s))
		return;
	if (!mark_or_record(s, s->done, s->ndone))
		imap_fetch_mark(s->imap, s->done, s->ndone, mark_flags(s), mark_expunge(s));
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

/* Before every wait for the server: an mbox must not stay locked, and
 * a message the sink took without waiting for its outcome must not stay
 * unjournaled while the IMAP server takes its time (a kill then would
 * deliver it again next run): a wait that lasts reads the replies. */
static void
on_wait(void *ctx)
{
	struct session *s = ctx;

	if (s->inflight > 0 && net_wait(conn_fd(s->conn), POLLIN, SINK_UNREAD_MS) == 0)
		sink_flush(s->sink);
	sink_pause(s->sink);
}

/* Whether to fetch no more: a signal asked us to stop, or the sink is down. */
static int
want_stop(void *ctx)
{
	struct session *s = ctx;

	return signals_stop() != 0 || s->sink_down;
}

static const struct imap_fetch_ops fetch_ops = {
	.message = on_message,
	.chunk_done = on_chunk_done,
	.marked = on_marked,
	.stop = want_stop,
};

static int finish_journaled_marks(struct session *s, uint32_t *uids, size_t *n, struct mf_error *err);

/* Messages an earlier run delivered but could not mark (it was killed, or
 * the server refused the marks) are in the journal: mark them now and
 * take them out of uids[0..*n) instead of delivering them again.  Only
 * entries under the folder's current UIDVALIDITY count.  A refusal is
 * reported and the folder is fetched all the same: new mail must not
 * wait for a server that will not take old marks. */
static int
finish_journaled(struct session *s, uint32_t *uids, size_t *n, struct mf_error *err)
{
	if (s->check_only) {
		/* Only count: what the journal holds is not to be fetched. */
		const uint32_t *had;
		size_t nhad = state_pending(s->state, s->folder, s->uidvalidity, &had), k = 0, j = 0;
		for (size_t i = 0; i < *n; i++) {
			while (j < nhad && had[j] < uids[i])
				j++;
			if (j == nhad || had[j] != uids[i])
				uids[k++] = uids[i];
		}
		*n = k;
		return 0;
	}
	return finish_journaled_marks(s, uids, n, err);
}

static int
finish_journaled_marks(struct session *s, uint32_t *uids, size_t *n, struct mf_error *err)
{
	const uint32_t *had;
	size_t nhad, k = 0, j = 0, nmark = 0, ngone = 0;
	uint32_t *mark, *gone;
	int rc;

	/* Intents only matter for messages the server still offers. */
	state_intents_keep(s->state, s->folder, uids, *n);
	nhad = state_pending(s->state, s->folder, s->uidvalidity, &had);
	if (nhad == 0)
		return 0;
	mark = xreallocarray(NULL, nhad, sizeof *mark);
	gone = xreallocarray(NULL, nhad, sizeof *gone);
	for (size_t i = 0; i < *n; i++) {
		while (j < nhad && had[j] < uids[i])
			gone[ngone++] = had[j++];
		if (j < nhad && had[j] == uids[i])
			mark[nmark++] = had[j++];
		else
			uids[k++] = uids[i];
	}
	while (j < nhad)
		gone[ngone++] = had[j++];
	*n = k;
	/* Marked meanwhile (by us or another client), or gone: either way
	 * delivered, which the history must know (delete_after). */
	if (s->hist != NULL)
		history_add(s->hist, s->folder, s->uidvalidity, gone, ngone, s->today);
	state_forget(s->state, s->folder, gone, ngone);
	free(gone);
	if (nmark == 0) {
		free(mark);
		return 0;
	}
	log_info(s->a->name, "%s: %zu message%s delivered by an earlier run, marking only", s->folder, nmark,
	    nmark == 1 ? "" : "s");
	if (mark_or_record(s, mark, nmark)) {
		free(mark);
		return 0;
	}
	rc = imap_mark(s->imap, mark, nmark, mark_flags(s), mark_expunge(s), &fetch_ops, s, err);
	free(mark);
	if (rc != 0 && err->reply) {
		session_error(s, "%s: %s", s->folder, err->msg);
		worsen(s, rc);
		rc = 0;
	}
	return rc;
}

/* Delivered, not yet committed nor marked (the folder ends early): make
 * it durable and journal it under this folder, so the next run only
 * marks it; nothing delivered may outlive its folder unjournaled. */
static void
settle_unmarked(struct session *s)
{
	sink_flush(s->sink);
	if (s->ndone == 0)
		return;
	if (settle(s) && !mark_or_record(s, s->done, s->ndone))
		log_warn(s->a->who, "%s: %zu delivered message%s could not be marked on the server; "
		    "the next run marks them", s->folder, s->ndone, s->ndone == 1 ? "" : "s");
	s->ndone = 0;
	s->done_bytes = 0;
}

/* The folder's history counts only under the UIDVALIDITY it was kept
 * for: after a change every message in the folder is new. */
static void
history_check(struct session *s)
{
	uint32_t old;

	if (!history_known(s->hist, s->folder, &old)) {
		history_reset(s->hist, s->folder, s->uidvalidity);
		return;
	}
	if (old == s->uidvalidity)
		return;
	log_warn(s->a->who, "%s: UIDVALIDITY changed from %u to %u (the folder was rebuilt on the server); "
	    "%s", s->folder, old, s->uidvalidity, s->a->fetch == FETCH_NEW ?
	    "every message in it counts as new and is fetched" : "mail delivered before is no longer deleted by "
	    "delete_after");
	if (!s->check_only)
		history_reset(s->hist, s->folder, s->uidvalidity);
}

/* delete_after: what this account delivered more than that many days
 * ago is deleted on the server (\Deleted and UID EXPUNGE of exactly
 * those UIDs); never anything it did not deliver. */
static int
delete_old(struct session *s, struct mf_error *err)
{
	uint32_t *old = NULL;
	size_t n;
	int rc;

	if ((uint32_t)s->a->delete_after >= s->today)
		return 0; /* nothing was delivered before the epoch */
	n = history_before(s->hist, s->folder, s->today - (uint32_t)s->a->delete_after, &old);
	if (n == 0)
		return 0;
	if (!imap_has_cap(s->imap, IMAP_CAP_UIDPLUS)) {
		log_warn(s->a->who, "%s: %zu message%s delivered more than %d day%s ago not deleted: the server lacks "
		    "UIDPLUS, and a plain EXPUNGE would also remove what other clients marked", s->folder, n,
		    n == 1 ? "" : "s", s->a->delete_after, s->a->delete_after == 1 ? "" : "s");
		free(old);
		return 0;
	}
	rc = imap_mark(s->imap, old, n, "\\Deleted", 1, NULL, NULL, err);
	if (rc == 0) {
		log_info(s->a->name, "%s: %zu message%s delivered more than %d day%s ago deleted on the server",
		    s->folder, n, n == 1 ? "" : "s", s->a->delete_after, s->a->delete_after == 1 ? "" : "s");
		history_remove(s->hist, s->folder, old, n);
	} else if (err->reply) {
		session_error(s, "%s: %s", s->folder, err->msg);
		worsen(s, rc);
		rc = 0;
	}
	free(old);
	return rc;
}

/* Messages over the account's limit stay on the server untouched; each is
 * reported once, on the run that first sees it, not on every run. */
static int
report_too_big(struct session *s, const char *base, struct mf_error *err)
{
	char criteria[128];
	uint32_t *big = NULL, *fresh = NULL;
	size_t nbig = 0;
	int nfresh, rc;

	snprintf(criteria, sizeof criteria, "%s LARGER %llu", base, s->a->limit);
	if ((rc = imap_uid_search(s->imap, criteria, &big, &nbig, err)) != 0)
		return rc;
	s->nbig = nbig;
	if (s->check_only) {
		if (nbig > 0 && !s->opts->json)
			printf("%s: %s: %zu message%s over the limit of %llu bytes, left on the server\n", s->a->name,
			    s->folder, nbig, nbig == 1 ? "" : "s", s->a->limit);
		free(big);
		return 0;
	}
	nfresh = state_too_big(s->state, s->folder, s->uidvalidity, big, nbig, &fresh, err);
	if (nfresh < 0) {
		journal_error(s, err);
		fresh = big;
		nfresh = (int)nbig;
		big = NULL;
	}
	for (int i = 0; i < nfresh; i++)
		log_warn(s->a->who, "%s: UID %u is larger than limit (%llu bytes); it stays on the server, "
		    "raise limit to fetch it (said once)", s->folder, fresh[i], s->a->limit);
	free(fresh);
	free(big);
	return 0;
}

/* One folder: select, search, then fetch, deliver and mark batch by batch.
 * A refusal the session survives (a tagged NO) is reported here and ends
 * only this folder; anything else is returned and ends the account. */
static int
poll_folder_steps(struct session *s, const char *folder, struct mf_error *err)
{
	struct imap_folder f;
	uint32_t *uids = NULL;
	size_t n = 0;
	const char *base;
	char criteria[128];
	int rc;

	s->folder = folder;
	/* Messages flagged \Deleted (by us without UIDPLUS, or by another
	 * client) are on their way out: never fetch them. */
	base = s->a->fetch == FETCH_UNSEEN ? "UNSEEN UNDELETED" : "UNDELETED";
	if (s->a->limit > 0)
		snprintf(criteria, sizeof criteria, "%s NOT LARGER %llu", base, s->a->limit);
	else
		snprintf(criteria, sizeof criteria, "%s", base);
	/* --check opens the folder read-only: not even \Recent changes. */
	rc = imap_select_search(s->imap, folder, s->check_only, criteria, &f, err);
	if (rc != 0) {
		if (!err->reply)
			return rc;
		session_error(s, "%s%s", err->msg, f.selected ? "" : "; check folders in the config");
		worsen(s, rc);
		return 0;
	}
	uids = f.uids;
	n = f.n;
	if (f.exists == 0 && n == 0) {
		free(uids);
		return 0;
	}
	if (f.read_only && !s->check_only) {
		free(uids);
		session_error(s, "folder %s is read-only on the server, so fetched mail could not be marked; "
		    "not fetching from it, check its permissions on the server", folder);
		worsen(s, MF_ESERVER);
		return 0;
	}
	s->uidvalidity = f.uidvalidity;
	if (s->hist != NULL)
		history_check(s);
	if (s->a->limit > 0 && (rc = report_too_big(s, base, err)) != 0)
		goto fail;
	if ((rc = finish_journaled(s, uids, &n, err)) != 0)
		goto fail;
	if (s->a->fetch == FETCH_NEW)
		history_filter(s->hist, folder, s->uidvalidity, uids, &n);
	s->fr->found = n + s->nbig;
	s->fr->skipped = s->nbig;
	if (s->a->delete_after > 0 && !s->check_only && (rc = delete_old(s, err)) != 0)
		goto fail;
	if (s->sink_down || signals_stop()) {
		free(uids);
		return 0;
	}
	if (s->a->fetch_limit > 0 && n > (size_t)s->a->fetch_limit) {
		/* The oldest first; the rest waits for the next run (exit 13). */
		log_info(s->a->name, "%s: fetch_limit %d leaves %zu message%s for the next run", folder,
		    s->a->fetch_limit, n - (size_t)s->a->fetch_limit, n - (size_t)s->a->fetch_limit == 1 ? "" : "s");
		s->fr->skipped += n - (size_t)s->a->fetch_limit;
		n = (size_t)s->a->fetch_limit;
		if (!s->check_only)
			worsen(s, MF_LIMIT);
	}
	if (s->check_only) {
		if (!s->opts->json)
			printf("%s: %s: %zu message%s to fetch\n", s->a->name, folder, n, n == 1 ? "" : "s");
		s->counted += n;
		free(uids);
		return 0;
	}
	log_info(s->a->name, "%s: %zu message%s to fetch", folder, n, n == 1 ? "" : "s");
	s->f_total = n;
	s->f_start_ms = net_now_ms();
	s->ndone = 0;
	s->done_bytes = 0;
	rc = imap_fetch(s->imap, uids, n, s->spool, &fetch_ops, s, err);
	if (rc != 0)
		goto fail;
	free(uids);
	settle_unmarked(s);
	return 0;
fail:
	free(uids);
	settle_unmarked(s);
	if (!err->reply)
		return rc;
	session_error(s, "%s: %s", folder, err->msg);
	worsen(s, rc);
	return 0;
}

/* poll_folder_steps, with what the folder did kept in fr. */
static int
poll_folder(struct session *s, const char *folder, struct folder_report *fr, struct mf_error *err)
{
	unsigned long delivered = s->delivered, failed = s->failed;
	unsigned long long bytes = s->bytes;
	long start = net_now_ms();
	int rc;

	s->fr = fr;
	fr->polled = 1;
	s->nbig = 0;
	s->f_total = s->f_handled = 0;
	s->f_bytes = 0;
	s->f_drawn_ms = 0;
	rc = poll_folder_steps(s, folder, err);
	log_status_clear();
	fr->delivered = s->delivered - delivered;
	fr->failed = s->failed - failed;
	fr->bytes = s->bytes - bytes;
	/* what was to be fetched but was not reached (a stop, a sink down) */
	if (!s->check_only && s->f_total > fr->delivered + fr->failed)
		fr->skipped += s->f_total - fr->delivered - fr->failed;
	if (fr->delivered > 0)
		fr->status = status_worse(fr->status, MF_OK);
	if (rc != 0) {
		fr->status = status_worse(fr->status, rc);
		if (fr->error[0] == '\0')
			snprintf(fr->error, sizeof fr->error, "%s", err->msg);
	}
	fr->seconds = (double)(net_now_ms() - start) / 1000.0;
	s->fr = NULL;
	return rc;
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

/* The account's secrets, fetched when first needed: a password, and an
 * OAuth2 token (a fresh one for every connection: tokens expire). */
struct secrets {
	char *password, *token;
};

static int
have_password(const struct account *a)
{
	return a->password != NULL || a->password_command != NULL || a->password_store != PWSTORE_NONE;
}

static int
need_secret(const struct account *a, struct secrets *sec, int token, struct mf_error *err)
{
	if (token)
		return sec->token != NULL ? 0 : secret_token(a, &sec->token, err);
	return sec->password != NULL ? 0 : secret_get(a, &sec->password, err);
}

/* Picks the mechanism (auth = auto or the account's list, as offered)
 * and logs in with it. */
static int
login(struct session *s, struct secrets *sec, struct mf_error *err)
{
	const struct account *a = s->a;
	unsigned sasl_offered = imap_auth_offered(s->imap), offered = sasl_offered;
	struct sasl_cb cb;
	int have_cb, rc;
	enum sasl_mech m;

	/* LOGIN is also the LOGIN command, where the server has not disabled it */
	if (!imap_has_cap(s->imap, IMAP_CAP_LOGINDISABLED))
		offered |= SASL_BIT(SASL_LOGIN);
	have_cb = conn_channel_binding(s->conn, &cb.type, cb.data, &cb.len, sizeof cb.data) == 0;
	m = sasl_choose(a->auth_order, a->nauth, offered, have_password(a), a->oauth_token_command != NULL,
	    a->tls != TLS_NONE, a->allow_plaintext, have_cb);
	if (m == SASL_NMECH) {
		const char *names = imap_auth_names(s->imap);
		if (imap_has_cap(s->imap, IMAP_CAP_LOGINDISABLED))
			return err_set(err, MF_EAUTH, "server disabled LOGIN (LOGINDISABLED) and offers no mechanism "
			    "this account can use (it offers: %s); %s", names[0] ? names : "none",
			    a->oauth_token_command == NULL ? "set oauth_token_command if it takes OAuth2, or ask the "
			    "server's administrator" : "ask the server's administrator");
		return err_set(err, MF_EAUTH, "server offers no login mechanism this account can use (it offers: "
		    "%s%s); %s", names[0] ? names : "no AUTH=",
		    (offered & ~sasl_offered & SASL_BIT(SASL_LOGIN)) ? " and the LOGIN command" : "",
		    a->auth_auto ? "set the secret it needs (password or oauth_token_command)" :
		    "change auth = to one of them");
	}
	if ((rc = need_secret(a, sec, (SASL_BIT(m) & SASL_TOKEN_MECHS) != 0, err)) != 0)
		return rc;
	if (m == SASL_LOGIN && !(sasl_offered & SASL_BIT(SASL_LOGIN)))
		return imap_login(s->imap, a->user, sec->password, err);
	{
		/* Bind the exchange to this TLS connection if the mechanism is
		 * -PLUS; say we could have (SCRAM's "y") only when the server
		 * offered no -PLUS at all (of any hash) for an attacker to have
		 * hidden; otherwise "n". */
		int plus_offered = (sasl_offered & SASL_PLUS_MECHS) != 0; /* any -PLUS: RFC 5802 section 6 */
		struct sasl_params p = {
			.user = a->user, .password = sec->password, .token = sec->token,
			.host = a->host, .port = (unsigned)a->port,
			.cb = have_cb && ((SASL_BIT(m) & SASL_PLUS_MECHS) || !plus_offered) ? &cb : NULL,
		};
		struct sasl *x = sasl_new(m, &p);
		rc = imap_authenticate(s->imap, m, x, err);
		sasl_free(x);
	}
	wipe(&cb, sizeof cb);
	return rc;
}

/* A plaintext greeting is due.  A server that speaks TLS from the start
 * sends none and would hold the run for the whole timeout: if nothing
 * has come after a moment, ask the port on a second connection whether
 * it answers a TLS handshake, and if so say what to change at once. */
static int
check_not_tls(struct session *s, struct mf_error *err)
{
	const struct account *a = s->a;
	struct mf_error perr;
	int fd, tls;

	if (conn_has_input(s->conn, GREETING_PROBE_MS))
		return 0;
	fd = net_connect(a->host, (unsigned)a->port, a->timeout * 1000, &perr);
	if (fd < 0)
		return 0; /* the first connection will tell */
	tls = tls_probe(fd, TLS_PROBE_MS);
	close(fd);
	if (!tls)
		return 0;
	return err_set(err, MF_ECONNECT, "the server on port %d sent no greeting, and it answers a TLS handshake: it "
	    "speaks TLS from the start; use tls = implicit (usually port 993)", a->port);
}

/* Connect, TLS, greeting, capabilities, login. */
static int
session_open(struct session *s, struct mf_error *err)
{
	const struct account *a = s->a;
	struct tls_opts to;
	struct secrets sec = { NULL, NULL };
	int fd, preauth, rc;

	/* The secret the account has first, before connecting: without it
	 * there is no reason to bother the server.  A second kind (both a
	 * password and a token command) is fetched only if chosen. */
	if ((rc = need_secret(a, &sec, !have_password(a), err)) != 0)
		return rc;
	tls_opts_of(a, &to);
	fd = net_connect(a->host, (unsigned)a->port, a->timeout * 1000, err);
	if (fd < 0) {
		rc = err->code;
		goto out;
	}
	s->conn = conn_new(fd, a->timeout * 1000, a->name, "IMAP");
	s->imap = imap_new(s->conn, a->name);
	if (a->tls == TLS_IMPLICIT && (rc = conn_start_tls(s->conn, a->host, &to, 1, err)) != 0)
		goto out;
	if (a->tls != TLS_IMPLICIT && (rc = check_not_tls(s, err)) != 0)
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
		rc = login(s, &sec, err);
out:
	free_secret(sec.password);
	free_secret(sec.token);
	return rc;
}

int
fetch_connect(const struct account *a, struct conn **conn, struct imap **imap, struct mf_error *err)
{
	struct session s = { .a = a };
	int rc = session_open(&s, err);

	if (rc != 0) {
		imap_free(s.imap);
		conn_free(s.conn);
		s.imap = NULL;
		s.conn = NULL;
	}
	*conn = s.conn;
	*imap = s.imap;
	return rc;
}

void
fetch_report_free(struct account_report *rep)
{
	if (rep != NULL)
		free(rep->folders);
}

int
fetch_account(const struct account *a, const struct fetch_opts *o, struct account_report *rep)
{
	int check_only = o->check_only;
	struct account_report local;
	struct session s = { .a = a, .result = MF_NOMAIL, .check_only = check_only, .opts = o };
	struct mf_error err = { 0 };
	long start = net_now_ms();
	int rc;

	if (rep == NULL)
		rep = &local;
	memset(rep, 0, sizeof *rep);
	rep->a = a;
	rep->folders = xcalloc(a->nfolders ? a->nfolders : 1, sizeof *rep->folders);
	for (size_t i = 0; i < a->nfolders; i++) {
		rep->folders[i].name = a->folders[i];
		rep->folders[i].status = MF_NOMAIL;
	}
	s.rep = rep;

	/* The journal first: without it, what it records would come again. */
	rc = state_open(a, &s.state, &err);
	s.today = history_today();
	if (rc == 0 && (a->fetch == FETCH_NEW || a->fetch_new_configured || a->delete_after > 0)) {
		rc = history_open(a, &s.hist, &err);
		/* Until the history is saved, the journal's delivered lines
		 * are the only record of what it will hold: keep them. */
		if (rc == 0 && !check_only)
			state_hold(s.state);
	}
	if (rc == 0)
		rc = session_open(&s, &err);
	if (rc == 0 && !check_only) {
		s.sink = sink_open(a, a->who, &err);
		rc = s.sink == NULL ? err.code : 0;
	}
	if (rc == 0) {
		if (!check_only) {
			sink_set_intent(s.sink, on_intent, &s, state_last_intent(s.state));
			sink_set_outcome(s.sink, on_outcome, &s);
			conn_set_wait_hook(s.conn, on_wait, &s);
		}
		s.spool = spool_new();
		for (size_t i = 0; i < a->nfolders && rc == 0 && !signals_stop(); i++)
			rc = poll_folder(&s, a->folders[i], &rep->folders[i], &err);
		if (rc == 0) {
			struct mf_error lerr;
			imap_logout(s.imap, &lerr); /* nothing is at stake any more */
		}
	}
	if (rc != 0 && signals_stop()) {
		log_warn(a->who, "stopped by signal %d before the end (%s); what was delivered is journaled, "
		    "the rest stays on the server", signals_stop(), err.msg);
	} else if (rc == MF_EAUTH && o->quiet_auth) {
		log_info(a->who, "%s (again)", err.msg);
		s.result = status_worse(s.result, rc);
	} else if (rc != 0) {
		session_error(&s, "%s", err.msg);
		s.result = status_worse(s.result, rc);
	}
	if (rc != 0 && rep->error[0] == '\0')
		snprintf(rep->error, sizeof rep->error, "%s", err.msg);
	if (s.delivered > 0 || s.counted > 0)
		s.result = status_worse(s.result, MF_OK);
	if (check_only && rc == 0 && !o->json) {
		printf("%s: %lu message%s for %s@%s\n", a->name, s.counted, s.counted == 1 ? "" : "s", a->user, a->host);
		fflush(stdout);
	}
	if (s.conn != NULL && !check_only)
		log_info(a->name, "%lu message%s (%llu byte%s) for %s@%s: %lu delivered, %lu failed",
		    s.delivered + s.failed, s.delivered + s.failed == 1 ? "" : "s", s.bytes, s.bytes == 1 ? "" : "s",
		    a->user, a->host,
		    s.delivered, s.failed);
	sink_close(s.sink);
	/* The history before the journal: until it is saved, the journal's
	 * delivered lines are the only record of what it holds. */
	if (!check_only && history_save(s.hist, &err) != 0) {
		session_error(&s, "%s", err.msg);
		s.result = status_worse(s.result, MF_EINTERNAL);
		state_discard(s.state);
		s.state = NULL;
	} else if (!check_only && s.hist != NULL) {
		state_release(s.state);
	}
	history_free(s.hist);
	if (check_only) {
		state_discard(s.state);
		s.state = NULL;
	}
	if (state_close(s.state, &err) != 0) {
		session_error(&s, "%s", err.msg);
		s.result = status_worse(s.result, MF_EINTERNAL);
	}
	spool_free(s.spool);
	free(s.done);
	imap_free(s.imap);
	conn_free(s.conn);
	rep->status = s.result;
	rep->seconds = (double)(net_now_ms() - start) / 1000.0;
	if (rep == &local)
		fetch_report_free(rep);
	return s.result;
}
