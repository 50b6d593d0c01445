/* poll.h: one account's run: connect, authenticate, and for each folder
 * fetch -> deliver -> mark. */
#ifndef MAILFETCH_POLL_H
#define MAILFETCH_POLL_H

#include "config.h"

/* Polls account a; returns its exit code (MF_OK, MF_NOMAIL or an error,
 * already reported on stderr). */
int poll_account(const struct account *a);

#endif
