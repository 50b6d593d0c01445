/* history.h: which messages an account has delivered, and on which day,
 * per (folder, UIDVALIDITY), kept as UID ranges: what fetch = new uses to
 * fetch every message not fetched before whatever its flags, and what
 * delete_after uses to delete on the server only mail this account
 * delivered.  The file ($XDG_STATE_HOME/mailfetch/ACCOUNT.history) is
 * replaced atomically by history_save(); messages delivered after the
 * last save are still in the state journal, whose next run adds them
 * here, so a kill loses nothing. */
#ifndef MAILFETCH_HISTORY_H
#define MAILFETCH_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

struct history;

/* Loads the account's history (none yet: empty).  Returns 0, or
 * MF_EINTERNAL with err set when the file exists but cannot be read. */
int history_open(const struct account *a, struct history **out, struct mf_error *err);

/* Today, as the history counts days (UTC days since the epoch). */
uint32_t history_today(void);

/* Whether folder has a history, and under which UIDVALIDITY. */
int history_known(const struct history *h, const char *folder, uint32_t *uidvalidity);

/* Starts folder afresh under uidvalidity: what was recorded under another
 * one says nothing about the messages now there. */
void history_reset(struct history *h, const char *folder, uint32_t uidvalidity);

/* Takes out of uids[0..*n) (sorted) the messages recorded for folder
 * under uidvalidity (under another one, nothing is taken out). */
void history_filter(const struct history *h, const char *folder, uint32_t uidvalidity, uint32_t *uids, size_t *n);

/* Records uids[0..n) (any order) of folder as delivered on day. */
void history_add(struct history *h, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    uint32_t day);

/* The UIDs of folder delivered before day (sorted; caller frees). */
size_t history_before(const struct history *h, const char *folder, uint32_t day, uint32_t **uids);

/* Forgets uids[0..n) (sorted) of folder: deleted on the server. */
void history_remove(struct history *h, const char *folder, const uint32_t *uids, size_t n);

/* Replaces the file atomically if anything changed.  0 or MF_EINTERNAL. */
int history_save(struct history *h, struct mf_error *err);

void history_free(struct history *h);

#endif
