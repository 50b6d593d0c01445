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

/* Sets *out to a fresh OAuth2 access token: the first line of
 * oauth_token_command, run as password_command is (same deadline). */
int secret_token(const struct account *a, char **out, struct mf_error *err);

#endif
