/* fetch.h: one account's run: connect, authenticate, and for each folder
 * fetch -> deliver -> mark. */
#ifndef MAILFETCH_FETCH_H
#define MAILFETCH_FETCH_H

#include "config.h"

/* Polls account a; returns its exit code (MF_OK, MF_NOMAIL or an error,
 * already reported on stderr).  With check_only (--check), it logs in,
 * prints on stdout how many messages each folder would give, and fetches,
 * delivers and marks nothing: MF_OK if there is mail, else MF_NOMAIL. */
int fetch_account(const struct account *a, int check_only);

#endif
