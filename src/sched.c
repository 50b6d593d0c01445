/* sched.c: polling many accounts at once.
 *
 * A one-shot run polls its accounts in up to `parallel` threads, each
 * fetch_account() as before.  The daemon gives each account a poller
 * thread, which polls when it is due (poll_interval), when a signal asks
 * (SIGUSR1), or when the account's watcher thread (idle = yes) hears of
 * new mail; at most `parallel` polls run at once.  The main thread only
 * waits for signals: it re-reads the config (SIGHUP), wakes the pollers
 * (SIGUSR1), pings the service manager's watchdog, and at SIGTERM waits
 * for the threads to wind down (each wait in them is capped by the stop
 * grace period, so a run stops within 10 s).
 *
 * Everything an account's threads share is in its struct worker, under
 * the scheduler's one mutex; the threads of different accounts share
 * nothing but the log (one write per line) and that mutex. */
#include "autoconfig.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "imap.h"
#include "log.h"
#include "mf_limits.h"
#include "net.h"
#include "sched.h"
#include "sdnotify.h"
#include "signals.h"
#include "status.h"
#include "xmalloc.h"

static void
thread_attr(pthread_attr_t *at)
{
	pthread_attr_init(at);
	pthread_attr_setstacksize(at, SCHED_STACK_SIZE);
}

/* ---- one-shot runs ---------------------------------------------------- */

struct once {
	const struct config *cfg;
	const int *selected;
	const struct fetch_opts *fo;
	struct account_report *reps;
	int *codes;
	size_t next;
	pthread_mutex_t mu;
};

static void *
once_worker(void *arg)
{
	struct once *o = arg;

	for (;;) {
		size_t k;
		pthread_mutex_lock(&o->mu);
		while (o->next < o->cfg->naccounts && !o->selected[o->next])
			o->next++;
		k = o->next++;
		pthread_mutex_unlock(&o->mu);
		if (k >= o->cfg->naccounts || signals_stop())
			return NULL;
		o->codes[k] = fetch_account(&o->cfg->accounts[k], o->fo, &o->reps[k]);
	}
}

int
sched_once(const struct config *cfg, const int *selected, const struct fetch_opts *fo,
    struct account_report *reps, size_t *npolled)
{
	struct once o = { .cfg = cfg, .selected = selected, .fo = fo, .reps = reps };
	struct fetch_opts local;
	size_t nsel = 0, nthreads, started = 0;
	pthread_t *th;
	pthread_attr_t at;
	int result = MF_NOMAIL;

	o.codes = xcalloc(cfg->naccounts ? cfg->naccounts : 1, sizeof *o.codes);
	for (size_t k = 0; k < cfg->naccounts; k++) {
		nsel += selected[k] != 0;
		o.codes[k] = -1;
	}
	pthread_mutex_init(&o.mu, NULL);
	nthreads = nsel < (size_t)cfg->parallel ? nsel : (size_t)cfg->parallel;
	/* --check prints a line per folder as it goes: one account after
	 * the other keeps them in the file's order */
	if (fo->check_only && !fo->json)
		nthreads = 1;
	if (nthreads > 1) {
		local = *fo;
		local.no_progress = 1;
		o.fo = &local;
	}
	if (nthreads <= 1) {
		once_worker(&o);
	} else {
		th = xcalloc(nthreads, sizeof *th);
		thread_attr(&at);
		for (size_t i = 0; i < nthreads; i++)
			if (pthread_create(&th[i], &at, once_worker, &o) == 0)
				started++;
			else
				break;
		pthread_attr_destroy(&at);
		if (started == 0)
			once_worker(&o); /* no thread to be had: one after the other */
		for (size_t i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		free(th);
	}
	pthread_mutex_destroy(&o.mu);
	*npolled = 0;
	for (size_t k = 0; k < cfg->naccounts; k++) {
		if (o.codes[k] < 0)
			continue;
		result = (*npolled)++ ? status_worse(result, o.codes[k]) : o.codes[k];
	}
	free(o.codes);
	return result;
}

/* ---- the daemon ------------------------------------------------------- */

struct sched;

/* A config and how many workers still use its accounts. */
struct cfgref {
	struct config *cfg;
	int users;
	struct cfgref *next;
};

struct worker {
	struct sched *sc;
	struct cfgref *ref;
	const struct account *a;
	char *fingerprint;            /* the account's settings, to spot a changed one on reload */
	pthread_t poller, watcher;
	int has_poller, has_watcher;
	pthread_cond_t cv;            /* wakes the poller (and the watcher's waits) */
	/* under sc->mu */
	int poll_now, quit;
	long due_ms;
	long polled_ms;               /* when the last poll ended; 0: none yet */
	unsigned seed;                /* for the jitter of retries */
};

struct sched {
	pthread_mutex_t mu;
	pthread_cond_t slots;         /* a poll slot came free */
	int busy, parallel;
	struct worker **w;            /* the accounts being served */
	size_t nw;
	struct worker **ret;          /* asked to stop, their threads not yet ended */
	size_t nret;
	struct cfgref *refs;          /* every config still in use, the current one first */
	const struct sched_opts *o;
};

static long
interval_ms(const struct worker *w)
{
	return (long)(w->a->poll_interval > 0 ? w->a->poll_interval : w->sc->o->interval) * 1000;
}

/* A condition variable whose timed waits follow the monotonic clock: a
 * clock stepped back must not stall a thread. */
static void
cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* Waits on cv for at most ms (in slices, to see a stop); call with sc->mu held. */
static void
timed_wait(struct sched *sc, pthread_cond_t *cv, long ms)
{
	struct timespec ts;

	if (ms > STOP_CHECK_MS)
		ms = STOP_CHECK_MS;
	if (ms < 1)
		ms = 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, &sc->mu, &ts);
}

/* The delay before the next try after `failures` failed polls in a row:
 * doubling from SCHED_RETRY_MIN_MS, never beyond the poll interval (nor
 * SCHED_AUTH_RETRY_MS for a login that was refused: a password that is
 * wrong will not be right in 5 s, and a server must not see it every
 * poll), with up to a quarter more at random so that accounts of one
 * server do not all come back at once. */
static long
retry_ms(struct worker *w, int status, int failures, unsigned *seed)
{
	long cap = interval_ms(w), d;

	if (status == MF_EAUTH) {
		d = SCHED_AUTH_RETRY_MS;
		for (int i = 1; i < failures && d < SCHED_AUTH_RETRY_MAX_MS; i++)
			d *= 2;
		if (d > SCHED_AUTH_RETRY_MAX_MS)
			d = SCHED_AUTH_RETRY_MAX_MS;
		return d > cap ? d : cap;
	}
	d = SCHED_RETRY_MIN_MS;
	for (int i = 1; i < failures && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	return d + (long)(rand_r(seed) % (unsigned)(d / 4 + 1));
}

/* Statuses after which the account is retried sooner than its interval:
 * the server or the network failed, not the mail. */
static int
is_failure(int status)
{
	return status == MF_ECONNECT || status == MF_EDNS || status == MF_ESERVER || status == MF_EPROTO ||
	    status == MF_EAUTH || status == MF_EINTERNAL;
}

static void *
poller(void *arg)
{
	struct worker *w = arg;
	struct sched *sc = w->sc;
	int failures = 0, last = MF_OK;

	pthread_mutex_lock(&sc->mu);
	for (;;) {
		struct fetch_opts fo = { .no_progress = 1 };
		int rc;

		while (!w->quit && !signals_stop() && !w->poll_now && net_now_ms() < w->due_ms)
			timed_wait(sc, &w->cv, w->due_ms - net_now_ms());
		if (w->quit || signals_stop())
			break;
		while (sc->busy >= sc->parallel && !w->quit && !signals_stop())
			timed_wait(sc, &sc->slots, STOP_CHECK_MS);
		if (w->quit || signals_stop())
			break;
		w->poll_now = 0;
		sc->busy++;
		pthread_mutex_unlock(&sc->mu);

		fo.quiet_auth = last == MF_EAUTH;
		rc = fetch_account(w->a, &fo, NULL);
		if (last == MF_EAUTH && rc != MF_EAUTH && !signals_stop())
			log_warn(w->a->who, "logged in again, after %d refused login%s", failures, failures == 1 ? "" : "s");

		pthread_mutex_lock(&sc->mu);
		sc->busy--;
		w->polled_ms = net_now_ms();
		pthread_cond_broadcast(&sc->slots);
		if (is_failure(rc)) {
			failures = last == rc || !is_failure(last) ? failures + 1 : 1;
			w->due_ms = net_now_ms() + retry_ms(w, rc, failures, &w->seed);
			log_info(w->a->name, "next try in %ld s", (w->due_ms - net_now_ms() + 999) / 1000);
		} else {
			failures = 0;
			w->due_ms = net_now_ms() + interval_ms(w);
		}
		last = rc;
	}
	pthread_mutex_unlock(&sc->mu);
	return NULL;
}

/* ---- watching: NOTIFY, or IDLE per folder ---------------------------- */

struct watch {
	struct conn *conn;
	struct imap *imap;
};

static void
watch_close(struct watch *ws, size_t n, int polite)
{
	for (size_t i = 0; i < n; i++) {
		struct mf_error err;
		unsigned ev = 0;
		if (polite && ws[i].imap != NULL && imap_idle_done(ws[i].imap, &ev, &err) == 0)
			imap_logout(ws[i].imap, &err);
		imap_free(ws[i].imap);
		conn_free(ws[i].conn);
		ws[i].imap = NULL;
		ws[i].conn = NULL;
	}
}

/* Keepalive on a watch connection: it is quiet for up to idle_restart
 * seconds, and a NAT box or a suspended laptop may drop it without a
 * word; the kernel then notices within a few minutes. */
static void
keepalive(struct conn *c)
{
	int fd = conn_fd(c), on = 1, idle = WATCH_KEEPIDLE_S, intvl = WATCH_KEEPINTVL_S, cnt = WATCH_KEEPCNT;

	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* Opens the watch: one connection with NOTIFY for every folder, or one
 * per folder with IDLE (also where the server refuses the NOTIFY it
 * offers).  Returns how many connections are idling, 0 with err set on
 * failure, or -1 when the server offers no IDLE at all. */
static int
watch_open(struct worker *w, struct watch *ws, struct mf_error *err)
{
	const struct account *a = w->a;
	size_t n = 0;
	unsigned ev = 0;

	if (fetch_connect(a, &ws[0].conn, &ws[0].imap, err) != 0)
		return 0;
	n = 1;
	keepalive(ws[0].conn);
	if (!imap_has_cap(ws[0].imap, IMAP_CAP_IDLE)) {
		watch_close(ws, n, 0);
		return -1;
	}
	if (imap_has_cap(ws[0].imap, IMAP_CAP_NOTIFY)) {
		if (imap_notify_set(ws[0].imap, a->folders, a->nfolders, err) == 0) {
			if (imap_idle_start(ws[0].imap, &ev, err) != 0)
				goto fail;
			log_info(a->name, "watching %zu folder%s with NOTIFY", a->nfolders, a->nfolders == 1 ? "" : "s");
			return 1;
		}
		if (!err->reply)
			goto fail;
		log_info(a->name, "%s; watching with IDLE instead", err->msg);
	}
	for (size_t i = 0; i < a->nfolders; i++) {
		if (i > 0) {
			if (fetch_connect(a, &ws[i].conn, &ws[i].imap, err) != 0)
				goto fail;
			n++;
			keepalive(ws[i].conn);
		}
		if (imap_examine(ws[i].imap, a->folders[i], err) != 0 || imap_idle_start(ws[i].imap, &ev, err) != 0)
			goto fail;
	}
	log_info(a->name, "watching %zu folder%s with IDLE", a->nfolders, a->nfolders == 1 ? "" : "s");
	return (int)n;
fail:
	watch_close(ws, n, 0);
	return 0;
}

/* Tells the poller there is mail to fetch. */
static void
poke(struct worker *w)
{
	pthread_mutex_lock(&w->sc->mu);
	w->poll_now = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->sc->mu);
}

static int
quitting(struct worker *w)
{
	int q;
	pthread_mutex_lock(&w->sc->mu);
	q = w->quit;
	pthread_mutex_unlock(&w->sc->mu);
	return q || signals_stop();
}

/* Waits up to ms for a quit, in slices. */
static void
nap(struct worker *w, long ms)
{
	long end = net_now_ms() + ms;

	pthread_mutex_lock(&w->sc->mu);
	while (!w->quit && !signals_stop() && net_now_ms() < end)
		timed_wait(w->sc, &w->cv, end - net_now_ms());
	pthread_mutex_unlock(&w->sc->mu);
}

/* Keeps the watch connections idling, and pokes the poller when one of
 * them hears of new mail.  Reconnects (with the same backoff as polls)
 * when a connection fails; a reconnect pokes too, since mail may have
 * come while nobody watched. */
static void *
watcher(void *arg)
{
	struct worker *w = arg;
	const struct account *a = w->a;
	size_t nmax = a->nfolders ? a->nfolders : 1;
	struct watch *ws = xcalloc(nmax, sizeof *ws);
	struct pollfd *pf = xcalloc(nmax, sizeof *pf);
	int failures = 0, first = 1;
	unsigned seed = w->seed ^ 0x5a5a5a5au; /* its own: the poller's is under the mutex */

	while (!quitting(w)) {
		struct mf_error err = { 0 };
		long started, opened;
		int n = watch_open(w, ws, &err);

		if (n != 0 && first && failures > 0)
			first = 0; /* the first watch came late: mail may have come before it */

		if (n < 0) {
			log_warn(a->who, "the server offers no IDLE, so idle = yes cannot work; polling every %ld s "
			    "instead", interval_ms(w) / 1000);
			break;
		}
		if (n == 0) {
			if (quitting(w))
				break;
			failures++;
			if (failures == 1)
				log_warn(a->who, "cannot watch for new mail: %s; trying again", err.msg);
			else
				log_info(a->name, "cannot watch for new mail: %s", err.msg);
			nap(w, retry_ms(w, err.code == MF_EAUTH ? MF_EAUTH : MF_ESERVER, failures, &seed));
			continue;
		}
		/* Mail may have come while nobody watched: a poll now, or, if
		 * one ended a moment ago, WATCH_REPOLL_MS after it (a server
		 * that drops every connection must not get a poll on every
		 * reconnect, nor mail wait for the interval). */
		if (!first) {
			pthread_mutex_lock(&w->sc->mu);
			if (w->polled_ms == 0 || net_now_ms() - w->polled_ms >= WATCH_REPOLL_MS)
				w->poll_now = 1;
			else if (w->due_ms > w->polled_ms + WATCH_REPOLL_MS)
				w->due_ms = w->polled_ms + WATCH_REPOLL_MS;
			pthread_cond_broadcast(&w->cv);
			pthread_mutex_unlock(&w->sc->mu);
		}
		first = 0;
		started = opened = net_now_ms();
		while (!quitting(w)) {
			unsigned events = 0;
			int ready = 0, rc = 0;

			for (int i = 0; i < n; i++) {
				pf[i] = (struct pollfd){ .fd = conn_fd(ws[i].conn), .events = POLLIN };
				if (conn_buffered(ws[i].conn))
					ready = 1;
			}
			if (!ready && poll(pf, (nfds_t)n, STOP_CHECK_MS) < 0 && errno != EINTR) {
				err_set(&err, MF_EINTERNAL, "poll: %s", strerror(errno));
				break;
			}
			for (int i = 0; i < n && rc == 0; i++)
				if (conn_buffered(ws[i].conn) || (pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
					rc = imap_idle_read(ws[i].imap, &events, &err);
			if (events > 0)
				poke(w);
			if (rc != 0)
				break;
			/* servers end an IDLE after 30 minutes, NAT boxes sooner */
			if (net_now_ms() - started >= (long)a->idle_restart * 1000) {
				for (int i = 0; i < n && rc == 0; i++)
					if ((rc = imap_idle_done(ws[i].imap, &events, &err)) == 0)
						rc = imap_idle_start(ws[i].imap, &events, &err);
				if (events > 0)
					poke(w);
				if (rc != 0)
					break;
				started = net_now_ms();
			}
		}
		if (quitting(w)) {
			watch_close(ws, (size_t)n, 1);
			break;
		}
		watch_close(ws, (size_t)n, 0);
		/* a connection that lasted a while was a success: start the
		 * backoff again; one dropped at once counts as a failure */
		failures = net_now_ms() - opened >= WATCH_STABLE_MS ? 1 : failures + 1;
		log_info(a->name, "watch connection lost: %s; reconnecting", err.msg);
		nap(w, retry_ms(w, MF_ESERVER, failures, &seed));
	}
	free(pf);
	free(ws);
	return NULL;
}

/* ---- workers ---------------------------------------------------------- */

static char *
fingerprint(const struct account *a)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL)
		return xstrdup("");
	config_print_account(a, fp);
	/* what config_print hides */
	fprintf(fp, "%s\n%s\n", a->password != NULL ? "p" : "-", a->password != NULL ? a->password : "");
	fclose(fp);
	return text;
}

static int
fingerprint_equal(const char *x, const char *y)
{
	return strcmp(x, y) == 0;
}

static void
fingerprint_free(char *f)
{
	if (f != NULL)
		free_secret(f);
}

static struct worker *
worker_start(struct sched *sc, struct cfgref *ref, const struct account *a, unsigned seed)
{
	struct worker *w = xcalloc(1, sizeof *w);
	pthread_attr_t at;
	int e;

	w->sc = sc;
	w->ref = ref;
	w->a = a;
	w->fingerprint = fingerprint(a);
	w->seed = seed;
	w->due_ms = 0; /* a first poll at once */
	cond_init(&w->cv);
	ref->users++;
	thread_attr(&at);
	if ((e = pthread_create(&w->poller, &at, poller, w)) == 0)
		w->has_poller = 1;
	else
		log_error(a->who, "cannot start a thread for this account (%s); it is not polled; "
		    "the system may be short of memory or threads", strerror(e));
	if (a->idle && (e = pthread_create(&w->watcher, &at, watcher, w)) == 0)
		w->has_watcher = 1;
	else if (a->idle)
		log_error(a->who, "cannot start a thread to watch this account (%s); it is polled on its timer",
		    strerror(e));
	pthread_attr_destroy(&at);
	return w;
}

/* Asks the worker's threads to end (they finish a poll in hand). */
static void
worker_quit(struct worker *w)
{
	pthread_mutex_lock(&w->sc->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->sc->mu);
}

/* Reaps the worker's threads that have ended; 0 once both have. */
static int
worker_reap(struct worker *w)
{
	if (w->has_poller && pthread_tryjoin_np(w->poller, NULL) == 0)
		w->has_poller = 0;
	if (w->has_watcher && pthread_tryjoin_np(w->watcher, NULL) == 0)
		w->has_watcher = 0;
	return w->has_poller || w->has_watcher ? -1 : 0;
}

/* Waits for the threads until deadline_ms (monotonic); 0 if they ended. */
static int
worker_join(struct worker *w, long deadline_ms)
{
	while (worker_reap(w) != 0) {
		if (net_now_ms() >= deadline_ms)
			return -1;
		usleep(20 * 1000);
	}
	return 0;
}

static void
worker_free(struct worker *w)
{
	w->ref->users--;
	pthread_cond_destroy(&w->cv);
	fingerprint_free(w->fingerprint);
	free(w);
}

/* Frees the configs no worker uses any more (never the current one). */
static void
refs_collect(struct sched *sc)
{
	struct cfgref **p = &sc->refs->next;

	while (*p != NULL) {
		struct cfgref *r = *p;
		if (r->users > 0) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		config_free(r->cfg);
		free(r);
	}
}

static int
served(const struct sched_opts *o, const char *name)
{
	if (o->nnames == 0)
		return 1;
	for (size_t i = 0; i < o->nnames; i++)
		if (strcasecmp(o->names[i], name) == 0)
			return 1;
	return 0;
}

static int
has_worker(const struct sched *sc, const char *name)
{
	for (size_t i = 0; i < sc->nw; i++)
		if (strcmp(sc->w[i]->a->name, name) == 0)
			return 1;
	for (size_t i = 0; i < sc->nret; i++)
		if (strcmp(sc->ret[i]->a->name, name) == 0)
			return 1;
	return 0;
}

/* Reaps the retiring workers whose threads have ended, and starts the
 * accounts of the current config that have no worker (a changed one,
 * whose old worker has just ended).  Never two workers for one account:
 * they would poll it at once. */
static void
reap(struct sched *sc)
{
	struct config *cfg = sc->refs->cfg;
	size_t k = 0;

	for (size_t i = 0; i < sc->nret; i++) {
		if (worker_reap(sc->ret[i]) == 0)
			worker_free(sc->ret[i]);
		else
			sc->ret[k++] = sc->ret[i];
	}
	if (k == sc->nret)
		return;
	sc->nret = k;
	for (size_t j = 0; j < cfg->naccounts; j++) {
		if (!served(sc->o, cfg->accounts[j].name) || has_worker(sc, cfg->accounts[j].name))
			continue;
		sc->w = xreallocarray(sc->w, sc->nw + 1, sizeof *sc->w);
		sc->w[sc->nw++] = worker_start(sc, sc->refs, &cfg->accounts[j], (unsigned)(getpid() ^ net_now_ms() ^ j));
		log_info(cfg->accounts[j].name, "started with its new settings");
	}
	refs_collect(sc);
}

/* SIGHUP: the new config's accounts replace the old: unchanged ones keep
 * running untouched, removed and changed ones are asked to stop (after
 * the poll in hand; reap() collects them and starts the changed ones
 * again), new ones start.  Nothing here waits for a thread.  A config
 * that does not load changes nothing. */
static void
reload(struct sched *sc)
{
	const struct sched_opts *o = sc->o;
	struct config *cfg;
	struct mf_error err = { 0 };
	struct cfgref *ref;
	struct worker **keep;
	size_t nkeep = 0, added = 0, removed = 0;
	int *taken;

	if (config_load(o->config_path, &o->ov, &cfg, &err) != 0) {
		log_error(NULL, "config not re-read: %s; the accounts go on with the config they had", err.msg);
		return;
	}
	ref = xcalloc(1, sizeof *ref);
	ref->cfg = cfg;
	ref->next = sc->refs;
	sc->refs = ref;
	taken = xcalloc(cfg->naccounts ? cfg->naccounts : 1, sizeof *taken);
	keep = xcalloc(sc->nw + cfg->naccounts + 1, sizeof *keep);
	for (size_t i = 0; i < sc->nw; i++) {
		struct worker *w = sc->w[i];
		size_t k;
		for (k = 0; k < cfg->naccounts; k++) {
			char *f;
			int same;
			if (taken[k] || strcmp(cfg->accounts[k].name, w->a->name) != 0 || !served(o, cfg->accounts[k].name))
				continue;
			f = fingerprint(&cfg->accounts[k]);
			same = fingerprint_equal(f, w->fingerprint);
			fingerprint_free(f);
			if (same)
				break;
		}
		if (k < cfg->naccounts) {
			taken[k] = 1;
			keep[nkeep++] = w;
			continue;
		}
		worker_quit(w);
		sc->ret = xreallocarray(sc->ret, sc->nret + 1, sizeof *sc->ret);
		sc->ret[sc->nret++] = w;
		log_info(w->a->name, "stopping: removed or changed in the config");
		removed++;
	}
	free(sc->w);
	sc->w = keep;
	sc->nw = nkeep;
	pthread_mutex_lock(&sc->mu);
	sc->parallel = cfg->parallel;
	pthread_mutex_unlock(&sc->mu);
	for (size_t k = 0; k < cfg->naccounts; k++) {
		if (taken[k] || !served(o, cfg->accounts[k].name))
			continue;
		if (has_worker(sc, cfg->accounts[k].name))
			continue; /* changed: started again once its old worker has ended */
		sc->w[sc->nw++] = worker_start(sc, ref, &cfg->accounts[k], (unsigned)(getpid() ^ net_now_ms() ^ k));
		added++;
	}
	free(taken);
	log_warn(NULL, "config re-read: %zu account%s started, %zu stopped, %zu unchanged", added, added == 1 ? "" : "s",
	    removed, nkeep);
	reap(sc);
	refs_collect(sc);
}

int
sched_daemon(struct config *cfg, const struct sched_opts *o)
{
	struct sched sc = { .o = o, .parallel = cfg->parallel };
	long watchdog = sdn_watchdog_ms(), next_ping = 0, deadline;
	char status[128];
	int signo, stuck = 0;

	pthread_mutex_init(&sc.mu, NULL);
	cond_init(&sc.slots);
	sc.refs = xcalloc(1, sizeof *sc.refs);
	sc.refs->cfg = cfg;
	sc.w = xcalloc(cfg->naccounts + 1, sizeof *sc.w);
	for (size_t k = 0; k < cfg->naccounts; k++)
		if (served(o, cfg->accounts[k].name))
			sc.w[sc.nw++] = worker_start(&sc, sc.refs, &cfg->accounts[k], (unsigned)(getpid() ^ net_now_ms() ^ k));
	log_info(NULL, "daemon: serving %zu account%s, polling every %d s by default", sc.nw, sc.nw == 1 ? "" : "s",
	    o->interval);
	snprintf(status, sizeof status, "READY=1\nSTATUS=serving %zu account%s", sc.nw, sc.nw == 1 ? "" : "s");
	sdn_send(status);

	while (!signals_stop()) {
		int req, wait_ms = 60000;
		long now = net_now_ms();
		if (watchdog > 0 && now >= next_ping) {
			sdn_send("WATCHDOG=1");
			next_ping = now + watchdog / 2;
		}
		if (watchdog > 0)
			wait_ms = (int)(next_ping - now > 0 ? next_ping - now : 1);
		if (sc.nret > 0 && wait_ms > 200)
			wait_ms = 200; /* workers on their way out: reap them soon */
		signals_wait(wait_ms);
		req = signals_take();
		if (req & SIG_RELOAD) {
			struct mf_error err = { 0 };
			sdn_reloading();
			if (log_reopen(&err) != 0)
				log_error(NULL, "%s", err.msg);
			reload(&sc);
			snprintf(status, sizeof status, "READY=1\nSTATUS=serving %zu account%s", sc.nw,
			    sc.nw == 1 ? "" : "s");
			sdn_send(status);
		}
		if (req & SIG_POLL) {
			log_info(NULL, "SIGUSR1: polling every account now");
			pthread_mutex_lock(&sc.mu);
			for (size_t i = 0; i < sc.nw; i++) {
				sc.w[i]->poll_now = 1;
				pthread_cond_broadcast(&sc.w[i]->cv);
			}
			pthread_mutex_unlock(&sc.mu);
		}
		if (sc.nret > 0)
			reap(&sc);
	}

	signo = signals_stop();
	sdn_send("STOPPING=1");
	for (size_t i = 0; i < sc.nw; i++)
		worker_quit(sc.w[i]);
	/* every wait in the threads is capped by the grace period */
	deadline = net_now_ms() + STOP_GRACE_MS + 3000;
	for (size_t i = 0; i < sc.nw; i++) {
		if (worker_join(sc.w[i], deadline) != 0) {
			log_error(sc.w[i]->a->who, "did not stop in time; exiting without it");
			stuck = 1;
		}
	}
	for (size_t i = 0; i < sc.nret; i++)
		if (worker_join(sc.ret[i], deadline) != 0)
			stuck = 1;
	if (stuck) {
		/* a thread still runs: exit() would tear down what it uses */
		fflush(NULL);
		_exit(128 + signo);
	}
	for (size_t i = 0; i < sc.nw; i++)
		worker_free(sc.w[i]);
	for (size_t i = 0; i < sc.nret; i++)
		worker_free(sc.ret[i]);
	while (sc.refs != NULL) {
		struct cfgref *r = sc.refs;
		sc.refs = r->next;
		config_free(r->cfg);
		free(r);
	}
	free(sc.w);
	free(sc.ret);
	return 128 + signo;
}
