/* state.h: what has been delivered but is not yet known to be marked on
 * the server, kept durably per account, keyed by (folder, UIDVALIDITY,
 * UID).  A run killed after a delivery was made durable but before the
 * server took the mark finds the UID here next time and marks it instead
 * of delivering it again. */
#ifndef MAILFETCH_STATE_H
#define MAILFETCH_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

struct state;

/* The directory for mailfetch's state and lock ($XDG_STATE_HOME/mailfetch,
 * else ~/.local/state/mailfetch), created (0700) if missing; caller frees. */
char *state_dir(void);

/* Loads the account's state (an absent file is an empty state) and opens
 * it for appending.  Returns 0, or MF_EINTERNAL with err set. */
int state_open(const struct account *a, struct state **out, struct mf_error *err);

/* UIDs recorded as delivered for folder with this UIDVALIDITY, sorted,
 * valid until the next state call.  Entries of the folder under another
 * UIDVALIDITY are forgotten: old state is never acted on. */
size_t state_pending(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t **uids);

/* Records uids as delivered (appended at once; durable when sync). */
int state_delivered(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    int sync, struct mf_error *err);

/* The server has taken the marks of every UID recorded for folder. */
void state_marked(struct state *st, const char *folder);
/* ... or of uids[0..n) in folder: they are forgotten in memory, so that a
 * long run holds only what is in flight.  The file keeps them until
 * state_close(); marking them again after a crash is harmless. */
void state_forget(struct state *st, const char *folder, const uint32_t *uids, size_t n);

/* Writes what is left atomically (temp file, fsync, rename; no file when
 * nothing is left) and frees. */
int state_close(struct state *st, struct mf_error *err);

#endif
