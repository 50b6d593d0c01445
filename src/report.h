/* report.h: the summary of a run for --json: one JSON document on
 * stdout, for monitoring scripts. */
#ifndef MAILFETCH_REPORT_H
#define MAILFETCH_REPORT_H

#include <stdio.h>
#include <time.h>

#include "fetch.h"

struct run_report {
	const char *config;         /* the config file's path, or NULL */
	int check;                  /* --check */
	time_t started;
	double seconds;
	int status;                 /* the run's exit status */
	const char *error;          /* what ended the run before any account (config, lock), or NULL */
	const struct account_report *accounts;
	size_t naccounts;
};

/* Writes r as one JSON document and a newline; see mailfetch(1). */
void report_json(FILE *fp, const struct run_report *r);

#endif
