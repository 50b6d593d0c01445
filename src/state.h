/* state.h: what has been delivered but is not yet known to be marked on
 * the server, and where a sink was about to write, kept durably per
 * account, keyed by (folder, UIDVALIDITY, UID).  A run killed after a
 * delivery was made durable but before the server took the mark finds
 * the UID here next time and marks it instead of delivering it again; a
 * run killed while writing leaves an intent, so the next one can check
 * what reached the sink before it writes again. */
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

/* The path of the account's file SUFFIX in state_dir() (the account name
 * with characters outside [A-Za-z0-9._-] written as %XX); caller frees. */
char *state_file(const struct account *a, const char *suffix);

/* Replaces path atomically with data[0..len): temp file, fsync, rename,
 * fsync of the directory.  Returns 0, or MF_EINTERNAL with err set. */
int state_replace_file(const char *path, const char *data, size_t len, struct mf_error *err);

/* Loads the account's state (an absent file is an empty state) and opens
 * it for appending.  Returns 0, or MF_EINTERNAL with err set. */
int state_open(const struct account *a, struct state **out, struct mf_error *err);

/* UIDs recorded as delivered (not intents) for folder with this UIDVALIDITY, sorted,
 * valid until the next state call.  Entries of the folder under another
 * UIDVALIDITY are forgotten: old state is never acted on. */
size_t state_pending(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t **uids);

/* Records uids as delivered (appended at once; durable when sync); their
 * intents are settled. */
int state_delivered(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    int sync, struct mf_error *err);

/* Where an earlier run was about to write this message (the token its
 * intent recorded), or NULL; valid until state_close(). */
const char *state_prior(const struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid);
/* The token of the last intent an earlier run recorded (where it was
 * writing when it stopped), or NULL. */
const char *state_last_intent(const struct state *st);
/* Records, before the sink writes a byte of it, where the message is
 * about to go (token: at most JOURNAL_TOKEN_MAX bytes, no blanks).
 * Appended at once, not synced: it must survive a kill of this process;
 * the chunk's later state_delivered(sync) makes it durable. */
int state_intent(struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid, const char *token,
    struct mf_error *err);
/* The sink took the message back out after a failure: the intent this
 * run recorded for uid is void (one an earlier run left is kept). */
void state_intent_void(struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid);
/* Forgets intents of folder whose UID is not among uids[0..n) (sorted):
 * messages the server no longer offers need no check. */
void state_intents_keep(struct state *st, const char *folder, const uint32_t *uids, size_t n);

/* The server has taken the marks of uids[0..n) in folder (or they need
 * none): they are forgotten in memory, so that a long run holds only
 * what is in flight.  The file keeps them until
 * state_close(); marking them again after a crash is harmless. */
void state_forget(struct state *st, const char *folder, const uint32_t *uids, size_t n);

/* Messages of folder over the account's limit now: uids[0..n) (sorted).
 * Sets *fresh (the caller frees) to those not reported by an earlier
 * run, records them as reported, and forgets the ones no longer there;
 * returns how many are fresh, or -1 with err set if they could not be
 * recorded (then report them all). */
int state_too_big(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    uint32_t **fresh, struct mf_error *err);

/* From now on state_forget() only marks entries: they stay in memory and
 * in any rewrite of the file until state_release() drops them (an
 * account whose history must be saved before they may go). */
void state_hold(struct state *st);
void state_release(struct state *st);

/* Frees without writing anything (--check changes nothing). */
void state_discard(struct state *st);

/* Writes what is left atomically (temp file, fsync, rename; no file when
 * nothing is left) and frees. */
int state_close(struct state *st, struct mf_error *err);

#endif
