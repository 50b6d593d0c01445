/* config.h: the fetchrc file (INI) turned into const account records.
 * The only module that sees iniparser. */
#ifndef MAILFETCH_CONFIG_H
#define MAILFETCH_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "sasl.h"
#include "status.h"
#include "tls.h"

enum tls_mode { TLS_IMPLICIT, TLS_STARTTLS, TLS_NONE };
enum fetch_mode { FETCH_UNSEEN, FETCH_ALL, FETCH_NEW };
enum deliver_kind { DELIVER_MDA, DELIVER_MBOX, DELIVER_MAILDIR, DELIVER_SMTP, DELIVER_LMTP };
enum password_store { PWSTORE_NONE, PWSTORE_SECRET };

/* One account, as resolved from its section and [defaults]. */
struct account {
	char *name;              /* section name (lower case, as iniparser keeps it) */
	int protocol;            /* imap, the only one so far */
	char *host;
	int port;
	int tls;                 /* enum tls_mode */
	int allow_plaintext;
	char *tls_ca_file;       /* NULL: system store */
	int has_pin;
	unsigned char pin[TLS_PIN_LEN];
	int tls_min_version;     /* 12 or 13 */
	char *user;
	char *password;          /* secret: wiped by config_free */
	char *password_command;
	int password_command_timeout; /* seconds the command may take */
	int password_store;      /* enum password_store */
	char *oauth_token_command; /* prints an OAuth2 access token (XOAUTH2, OAUTHBEARER) */
	int auth_auto;           /* auth = auto: auth_order is every mechanism, strongest first */
	enum sasl_mech auth_order[SASL_NMECH]; /* mechanisms to use, in the order preferred */
	size_t nauth;
	char **folders;
	size_t nfolders;
	int fetch;               /* enum fetch_mode */
	int fetch_new_configured; /* fetch = new in the file, even if -a overrides it: keep the history */
	int keep;
	int deliver;             /* enum deliver_kind */
	char *mda;
	int mda_timeout;         /* seconds */
	char *mbox;
	char *maildir;           /* deliver = maildir: the Maildir's path (~ expanded) */
	char *smtp;              /* deliver = smtp: "HOST[:PORT]" */
	char *lmtp;              /* deliver = lmtp: a socket path (starts with '/') or "HOST:PORT" */
	char *recipient;         /* RCPT TO for smtp/lmtp; NULL: the local user running mailfetch */
	int deliver_sessions;    /* smtp, lmtp: sessions at once, each message on the next */
	unsigned long long limit; /* bytes; larger messages are left on the server; 0: none */
	int fetch_limit;         /* messages per folder per run; 0: none */
	int delete_after;        /* days after delivery to delete on the server (keep = yes); 0: never */
	int timeout;             /* seconds */
	int poll_interval;       /* daemon: seconds between polls; 0: --daemon's */
	int idle;                /* daemon: watch for new mail (NOTIFY or IDLE) */
	int idle_restart;        /* daemon: seconds between IDLE restarts */
	char *who;               /* "NAME (USER@HOST)": prefix of error lines */
};

struct config {
	char *path;
	int parallel;            /* accounts polled at once ([defaults] parallel) */
	struct account *accounts;
	size_t naccounts;
};

/* Command-line settings that override every account's. */
struct config_overrides {
	int keep;       /* -1: as configured, 0: --delete, 1: --keep */
	int fetch_all;  /* --all */
	unsigned long long limit; /* --limit; 0: as configured */
	int fetch_limit;          /* --fetch-limit; 0: as configured */
	int idle;                 /* --idle: idle = yes for every account */
};

/* Prints one account's resolved settings as config_print does: the
 * daemon compares these to see which accounts a new config changed. */
void config_print_account(const struct account *a, FILE *fp);

/* Loads and validates path.  Returns 0 and sets *out (free with
 * config_free), or an exit code (MF_EUSAGE, MF_EPERM) with err set. */
int config_load(const char *path, const struct config_overrides *ov, struct config **out, struct mf_error *err);
void config_free(struct config *cfg);

/* Reads fd (a file, or a pipe) to its end into *text (NUL-terminated,
 * *lenp bytes; free with free_secret), at most CONFIG_FILE_MAX bytes;
 * what names the kind of file in the error ("fetchrc").  0, or MF_EUSAGE. */
int config_read_text(int fd, const char *path, const char *what, char **text, size_t *lenp, struct mf_error *err);

/* The default config path ($XDG_CONFIG_HOME/mailfetch/fetchrc, else
 * ~/.fetchrc if it exists, else the first); the caller frees it. */
char *config_default_path(void);

/* Prints the resolved accounts, secrets hidden, for --check-config. */
void config_print(const struct config *cfg, FILE *fp);

/* Parses a size ("10M", "500k", "2G", "12345"; K/M/G are KiB/MiB/GiB) of
 * 1 byte to 2047 MiB; 0, or -1 if v is not one. */
int config_parse_size(const char *v, unsigned long long *out);

/* Expands ~ and $HOME at the start of a path; the caller frees the result. */
char *config_expand_path(const char *path);

#endif
