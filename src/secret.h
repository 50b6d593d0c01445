/* secret.h: where an account's password comes from: the config, a
 * command, or the Secret Service (libsecret).  The only module that sees
 * libsecret. */
#ifndef MAILFETCH_SECRET_H
#define MAILFETCH_SECRET_H

#include "config.h"
#include "status.h"

/* Sets *out to the account's password (free with free_secret()):
 * password_command runs for at most password_command_timeout, and its
 * first line is the password.  Returns 0, or MF_EAUTH with err set
 * (command failed or timed out, nothing stored). */
int secret_get(const struct account *a, char **out, struct mf_error *err);

/* Stores password in the Secret Service (default collection) under the
 * attributes password_store = secret looks up: host and user.  0, or
 * MF_EAUTH (MF_EUSAGE without libsecret) with err set. */
int secret_store(const struct account *a, const char *password, struct mf_error *err);
/* Removes what secret_store stored; *removed says whether there was any. */
int secret_forget(const struct account *a, int *removed, struct mf_error *err);

/* Sets *out to a fresh OAuth2 access token: the first line of
 * oauth_token_command, run as password_command is (same deadline). */
int secret_token(const struct account *a, char **out, struct mf_error *err);

#endif
