/* fetch.h: one account's run: connect, authenticate, and for each folder
 * fetch -> deliver -> mark. */
#ifndef MAILFETCH_FETCH_H
#define MAILFETCH_FETCH_H

#include "config.h"

/* Polls account a; returns its exit code (MF_OK, MF_NOMAIL or an error,
 * already reported on stderr). */
int fetch_account(const struct account *a);

#endif
