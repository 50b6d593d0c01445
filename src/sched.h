/* sched.h: polling many accounts: a run's accounts in parallel threads,
 * and the daemon (--daemon) that keeps polling them on a timer and, for
 * accounts with idle = yes, as soon as the server says new mail has come
 * (NOTIFY, else IDLE per folder). */
#ifndef MAILFETCH_SCHED_H
#define MAILFETCH_SCHED_H

#include <stddef.h>

#include "config.h"
#include "fetch.h"

/* Polls the accounts of cfg for which selected[k] is nonzero, at most
 * cfg->parallel at once (in threads; one account is polled in this
 * thread).  reps[k] is filled for each account polled.  Returns the
 * worst status in the documented order, MF_NOMAIL when none was polled;
 * *npolled says how many were. */
int sched_once(const struct config *cfg, const int *selected, const struct fetch_opts *fo,
    struct account_report *reps, size_t *npolled);

/* What the daemon needs besides the config. */
struct sched_opts {
	const char *config_path;        /* re-read on SIGHUP */
	struct config_overrides ov;
	int interval;                   /* --daemon SECONDS: poll_interval's default */
	char **names;                   /* ACCOUNT arguments (serve only these), or NULL */
	size_t nnames;
};

/* Runs the daemon until SIGTERM or SIGINT: polls every account every
 * poll_interval seconds (and at once at the start), watches the accounts
 * with idle = yes, re-reads the config on SIGHUP (a bad one keeps the old
 * one running), polls every account on SIGUSR1.  Takes cfg (freed here).
 * Returns the exit status: 128 + the stopping signal. */
int sched_daemon(struct config *cfg, const struct sched_opts *o);

#endif
