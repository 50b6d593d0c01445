/* config.c: fetchrc loading, validation and printing, driven by one table
 * of keys (name, type, default, allowed values). */
#include "autoconfig.h"

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_INIPARSER_INIPARSER_H
#include <iniparser/iniparser.h>
#else
#include <iniparser.h>
#endif

#include "mf_limits.h"
#include "xmalloc.h"

enum key_type { K_STRING, K_PATH, K_COMMAND, K_BOOL, K_INT, K_ENUM, K_LIST, K_PIN, K_SECRET, K_SIZE, K_MECHS };

struct choice {
	const char *name;
	int value;
};

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;              /* NULL: no default (or derived, see resolve) */
	const struct choice *choices; /* K_ENUM, K_BOOL */
	long min, max;                /* K_INT */
};

static const struct choice protocol_choices[] = { { "imap", 0 }, { NULL, 0 } };
static const struct choice tls_choices[] = {
	{ "implicit", TLS_IMPLICIT }, { "starttls", TLS_STARTTLS }, { "none", TLS_NONE }, { NULL, 0 } };
static const struct choice version_choices[] = { { "1.2", 12 }, { "1.3", 13 }, { NULL, 0 } };
static const struct choice fetch_choices[] = {
	{ "unseen", FETCH_UNSEEN }, { "all", FETCH_ALL }, { "new", FETCH_NEW }, { NULL, 0 }
};
static const struct choice deliver_choices[] = {
	{ "mda", DELIVER_MDA }, { "mbox", DELIVER_MBOX }, { "maildir", DELIVER_MAILDIR },
	{ "smtp", DELIVER_SMTP }, { "lmtp", DELIVER_LMTP }, { NULL, 0 }
};
static const struct choice store_choices[] = { { "secret", PWSTORE_SECRET }, { NULL, 0 } };
static const struct choice bool_choices[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 }, { "on", 1 }, { "off", 0 },
	{ "1", 1 }, { "0", 0 }, { NULL, 0 } };

#define OFF(f) offsetof(struct account, f)
#define NOFIELD ((size_t)-1)

/* Every key the config file may hold; see fetchrc(5). */
static const struct key keys[] = {
	{ "protocol", K_ENUM, OFF(protocol), "imap", protocol_choices, 0, 0 },
	{ "host", K_STRING, OFF(host), NULL, NULL, 0, 0 },
	{ "port", K_INT, OFF(port), NULL, NULL, 1, 65535 },
	{ "tls", K_ENUM, OFF(tls), NULL, tls_choices, 0, 0 },
	{ "allow_plaintext", K_BOOL, OFF(allow_plaintext), "no", bool_choices, 0, 0 },
	{ "tls_ca_file", K_PATH, OFF(tls_ca_file), NULL, NULL, 0, 0 },
	{ "tls_fingerprint", K_PIN, NOFIELD, NULL, NULL, 0, 0 },
	{ "tls_min_version", K_ENUM, OFF(tls_min_version), "1.2", version_choices, 0, 0 },
	{ "user", K_STRING, OFF(user), NULL, NULL, 0, 0 },
	{ "password", K_SECRET, OFF(password), NULL, NULL, 0, 0 },
	{ "password_command", K_COMMAND, OFF(password_command), NULL, NULL, 0, 0 },
	{ "password_command_timeout", K_INT, OFF(password_command_timeout), "30", NULL, 1, 3600 },
	{ "password_store", K_ENUM, OFF(password_store), NULL, store_choices, 0, 0 },
	{ "oauth_token_command", K_COMMAND, OFF(oauth_token_command), NULL, NULL, 0, 0 },
	{ "auth", K_MECHS, NOFIELD, "auto", NULL, 0, 0 },
	{ "folders", K_LIST, NOFIELD, "INBOX", NULL, 0, 0 },
	{ "fetch", K_ENUM, OFF(fetch), "unseen", fetch_choices, 0, 0 },
	{ "keep", K_BOOL, OFF(keep), "yes", bool_choices, 0, 0 },
	{ "deliver", K_ENUM, OFF(deliver), "mda", deliver_choices, 0, 0 },
	{ "mda", K_COMMAND, OFF(mda), "/usr/bin/procmail -d %T", NULL, 0, 0 },
	{ "mda_timeout", K_INT, OFF(mda_timeout), "300", NULL, 1, 86400 },
	{ "mbox", K_PATH, OFF(mbox), NULL, NULL, 0, 0 },
	{ "maildir", K_PATH, OFF(maildir), NULL, NULL, 0, 0 },
	{ "smtp", K_STRING, OFF(smtp), NULL, NULL, 0, 0 },
	{ "lmtp", K_STRING, OFF(lmtp), NULL, NULL, 0, 0 },
	{ "recipient", K_STRING, OFF(recipient), NULL, NULL, 0, 0 },
	{ "deliver_sessions", K_INT, OFF(deliver_sessions), "1", NULL, 1, 8 },
	{ "limit", K_SIZE, OFF(limit), NULL, NULL, 0, 0 },
	{ "fetch_limit", K_INT, OFF(fetch_limit), NULL, NULL, 1, 1000000 },
	{ "delete_after", K_INT, OFF(delete_after), NULL, NULL, 1, 36500 },
	{ "timeout", K_INT, OFF(timeout), "60", NULL, 1, 3600 },
	{ "poll_interval", K_INT, OFF(poll_interval), NULL, NULL, 10, 86400 },
	{ "idle", K_BOOL, OFF(idle), "no", bool_choices, 0, 0 },
	{ "idle_restart", K_INT, OFF(idle_restart), "1500", NULL, 10, 1740 },
	/* the whole run's, from [defaults] only (see config_load) */
	{ "parallel", K_INT, NOFIELD, NULL, NULL, 1, 64 },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key *
key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* iniparser reports syntax errors through a callback that takes no
 * context, so the one message of the load in progress has to live here:
 * the only mutable file-level state besides the log level. */
static char ini_error[300];

static int
ini_errback(const char *fmt, ...)
{
	va_list ap;
	if (ini_error[0] != '\0')
		return 0;
	va_start(ap, fmt);
	vsnprintf(ini_error, sizeof ini_error, fmt, ap);
	va_end(ap);
	ini_error[strcspn(ini_error, "\n")] = '\0';
	return 0;
}

char *
config_expand_path(const char *path)
{
	const char *home = getenv("HOME");

	if (home == NULL)
		home = "";
	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0'))
		return xasprintf("%s%s", home, path + 1);
	if (strncmp(path, "$HOME", 5) == 0 && (path[5] == '/' || path[5] == '\0'))
		return xasprintf("%s%s", home, path + 5);
	return xstrdup(path);
}

char *
config_default_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *first, *dot;

	if (xdg != NULL && xdg[0] == '/')
		first = xasprintf("%s/mailfetch/fetchrc", xdg);
	else
		first = xasprintf("%s/.config/mailfetch/fetchrc", home ? home : "");
	if (access(first, F_OK) == 0)
		return first;
	dot = xasprintf("%s/.fetchrc", home ? home : "");
	if (access(dot, F_OK) == 0) {
		free(first);
		return dot;
	}
	free(dot);
	return first;
}

/* Error about a key: "FILE: [SECTION] KEY: ...". */
static int
key_error(struct mf_error *err, const char *file, const char *sec, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int
key_error(struct mf_error *err, const char *file, const char *sec, const char *key, const char *fmt, ...)
{
	char what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return err_set(err, MF_EUSAGE, "%s: [%s] %s: %s", file, sec, key, what);
}

static void
choices_text(const struct choice *c, char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (; c->name != NULL && used < len; c++) {
		int n = snprintf(out + used, len - used, "%s%s", used ? ", " : "", c->name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int
parse_pin(const char *v, unsigned char pin[TLS_PIN_LEN])
{
	size_t n = 0;

	if (strncasecmp(v, "sha256:", 7) != 0)
		return -1;
	for (v += 7; *v; v++) {
		int hi, lo;
		if (*v == ':')
			continue;
		if (!isxdigit((unsigned char)v[0]) || !isxdigit((unsigned char)v[1]) || n >= TLS_PIN_LEN)
			return -1;
		hi = isdigit((unsigned char)v[0]) ? v[0] - '0' : tolower((unsigned char)v[0]) - 'a' + 10;
		lo = isdigit((unsigned char)v[1]) ? v[1] - '0' : tolower((unsigned char)v[1]) - 'a' + 10;
		pin[n++] = (unsigned char)(hi * 16 + lo);
		v++;
	}
	return n == TLS_PIN_LEN ? 0 : -1;
}

static int
parse_folders(struct account *a, const char *v)
{
	const char *p = v;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *s = p;
		while (len > 0 && isspace((unsigned char)*s))
			s++, len--;
		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		if (len == 0)
			return -1;
		a->folders = xreallocarray(a->folders, a->nfolders + 1, sizeof *a->folders);
		a->folders[a->nfolders++] = xstrndup(s, len);
		if (end == NULL)
			break;
		p = end + 1;
		if (*p == '\0')
			return -1;
	}
	return a->nfolders > 0 ? 0 : -1;
}

/* %T, %F and %% are the only escapes an MDA command may hold, and %T
 * and %F must stand outside shell quotes: mailfetch quotes their values
 * itself, and quotes around them would undo that.  Returns 0, or -1 with
 * *bad set to the escape letter, or -2 for a quoted %T/%F. */
static int
check_mda_escapes(const char *cmd, char *bad)
{
	char quote = 0;

	for (const char *p = cmd; *p; p++) {
		if (quote == 0 && (*p == '\'' || *p == '"')) {
			quote = *p;
			continue;
		}
		if (quote != 0 && *p == quote) {
			quote = 0;
			continue;
		}
		if (*p == '\\' && quote != '\'' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p != '%')
			continue;
		*bad = p[1];
		if (p[1] == 'T' || p[1] == 'F') {
			if (quote != 0)
				return -2;
			p++;
		} else if (p[1] == '%') {
			p++;
		} else {
			return -1;
		}
	}
	return 0;
}

int
config_parse_size(const char *v, unsigned long long *out)
{
	char *end;
	unsigned long long n, mult = 1;

	if (v[0] < '0' || v[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		mult = 1024;
	else if (*end == 'm' || *end == 'M')
		mult = 1024 * 1024;
	else if (*end == 'g' || *end == 'G')
		mult = 1024ull * 1024 * 1024;
	else if (*end != '\0')
		return -1;
	if (mult != 1 && end[1] != '\0')
		return -1;
	if (n == 0 || n > IMAP_LITERAL_MAX / mult)
		return -1;
	*out = n * mult;
	return 0;
}

/* Whether v is HOST or HOST:PORT ([V6]:PORT), the port 1..65535; with
 * need_port the port must be there. */
static int
check_host_port(const char *v, int need_port)
{
	const char *colon, *host_end;
	char *end;
	long port;

	if (v[0] == '[') {
		host_end = strchr(v, ']');
		if (host_end == NULL || host_end == v + 1)
			return -1;
		colon = host_end[1] == ':' ? host_end + 1 : NULL;
		if (colon == NULL && host_end[1] != '\0')
			return -1;
	} else {
		colon = strrchr(v, ':');
		if (colon != NULL && strchr(v, ':') != colon)
			return -1; /* a bare IPv6 address: it needs brackets */
		host_end = colon != NULL ? colon : v + strlen(v);
		if (host_end == v)
			return -1;
	}
	for (const char *p = v; p < host_end; p++)
		if ((unsigned char)*p <= ' ' || *p == '/')
			return -1;
	if (colon == NULL)
		return need_port ? -1 : 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
		return -1;
	return 0;
}

/* A recipient: a mail address or a local user name, nothing an SMTP
 * command line could take for anything but the address. */
static int
address_ok(const char *v)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return 0;
	return v[0] != '\0';
}

/* auth: "auto", or mechanism names separated by commas or spaces, in
 * the order preferred. */
static int
parse_mechs(struct account *a, const char *v)
{
	const char *p = v;

	a->nauth = 0;
	a->auth_auto = strcasecmp(v, "auto") == 0;
	if (a->auth_auto) {
		for (int m = 0; m < SASL_NMECH; m++)
			a->auth_order[a->nauth++] = (enum sasl_mech)m;
		return 0;
	}
	while (*p != '\0') {
		size_t len;
		enum sasl_mech m;
		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		len = strcspn(p, ", \t");
		m = sasl_mech_lookup(p, len);
		if (m == SASL_NMECH)
			return -1;
		for (size_t i = 0; i < a->nauth; i++)
			if (a->auth_order[i] == m)
				return -1;
		a->auth_order[a->nauth++] = m;
		p += len;
	}
	return a->nauth > 0 ? 0 : -1;
}

/* Parses value v of key k into account a. */
static int
set_key(struct account *a, const struct key *k, const char *v, const char *file, const char *sec,
    struct mf_error *err)
{
	char allowed[200];
	char *field = k->offset == NOFIELD ? NULL : (char *)a + k->offset;

	if (strlen(v) > CONFIG_VALUE_MAX)
		return key_error(err, file, sec, k->name, "value longer than %u bytes", CONFIG_VALUE_MAX);
	switch (k->type) {
	case K_STRING:
	case K_COMMAND:
	case K_SECRET:
		if (v[0] == '\0')
			return key_error(err, file, sec, k->name, "empty value; remove the key or give a value");
		*(char **)field = xstrdup(v);
		return 0;
	case K_PATH:
		if (v[0] == '\0')
			return key_error(err, file, sec, k->name, "empty path");
		*(char **)field = config_expand_path(v);
		return 0;
	case K_BOOL:
	case K_ENUM:
		for (const struct choice *c = k->choices; c->name != NULL; c++) {
			if (strcasecmp(c->name, v) == 0) {
				*(int *)field = c->value;
				return 0;
			}
		}
		choices_text(k->choices, allowed, sizeof allowed);
		return key_error(err, file, sec, k->name, "'%s' is not allowed; use one of: %s", v, allowed);
	case K_INT: {
		char *end;
		long n;
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < k->min || n > k->max)
			return key_error(err, file, sec, k->name, "'%s' is not a number from %ld to %ld", v, k->min, k->max);
		*(int *)field = (int)n;
		return 0;
	}
	case K_LIST:
		if (parse_folders(a, v) < 0)
			return key_error(err, file, sec, k->name, "'%s' is not a comma-separated list of folder names", v);
		return 0;
	case K_SIZE:
		if (config_parse_size(v, (unsigned long long *)field) < 0)
			return key_error(err, file, sec, k->name, "'%s' is not a size: a number of bytes, or of K, M or G "
			    "(KiB, MiB, GiB), from 1 to 2047M", v);
		return 0;
	case K_MECHS:
		if (parse_mechs(a, v) < 0)
			return key_error(err, file, sec, k->name, "'%s' is not auto or a list of mechanisms from: "
			    "scram-sha-256-plus, scram-sha-256, scram-sha-1-plus, scram-sha-1, oauthbearer, xoauth2, "
			    "plain, login (each once)", v);
		return 0;
	case K_PIN:
		if (parse_pin(v, a->pin) < 0)
			return key_error(err, file, sec, k->name,
			    "'%s' is not sha256: followed by 64 hex digits (colons allowed)", v);
		a->has_pin = 1;
		return 0;
	}
	return 0;
}

static void
account_free(struct account *a)
{
	free(a->name);
	free(a->host);
	free(a->tls_ca_file);
	free(a->user);
	free_secret(a->password);
	free(a->password_command);
	free(a->oauth_token_command);
	for (size_t i = 0; i < a->nfolders; i++)
		free(a->folders[i]);
	free(a->folders);
	free(a->mda);
	free(a->mbox);
	free(a->maildir);
	free(a->smtp);
	free(a->lmtp);
	free(a->recipient);
	free(a->who);
	memset(a, 0, sizeof *a);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->naccounts; i++)
		account_free(&cfg->accounts[i]);
	free(cfg->accounts);
	free(cfg->path);
	free(cfg);
}

/* Resolves one account from its section and [defaults]. */
/* Frees the dictionary after wiping its values: one may be a password. */
static void
dict_free(dictionary *d)
{
	for (ssize_t i = 0; i < d->size; i++)
		if (d->val[i] != NULL)
			wipe(d->val[i], strlen(d->val[i]));
	iniparser_freedict(d);
}

static int
account_load(dictionary *d, const char *file, const char *sec, const struct config_overrides *ov,
    struct account *a, struct mf_error *err)
{
	char *name, bad;
	int port_set = 0, tls_set = 0, deliver_set = 0, nsources;
	int mda_level = 0, mbox_level = 0, maildir_level = 0; /* 0 unset, 1 [defaults], 2 the account's section */
	int file_level;

	memset(a, 0, sizeof *a);
	a->name = xstrdup(sec);
	a->port = -1;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const char *v, *from = sec;
		if (strcmp(k->name, "parallel") == 0)
			continue; /* the run's, not the account's */
		/* Built to size: a name cut short to fit a buffer would find
		 * nothing, and the key would silently fall back to its default. */
		name = xasprintf("%s:%s", sec, k->name);
		v = iniparser_getstring(d, name, NULL);
		free(name);
		if (v == NULL) {
			name = xasprintf("defaults:%s", k->name);
			v = iniparser_getstring(d, name, NULL);
			free(name);
			from = "defaults";
		}
		if (v == NULL) {
			v = k->def;
			from = sec;
		} else if (strcmp(k->name, "port") == 0) {
			port_set = 1;
		} else if (strcmp(k->name, "tls") == 0) {
			tls_set = 1;
		} else if (strcmp(k->name, "deliver") == 0) {
			deliver_set = 1;
		} else if (strcmp(k->name, "mda") == 0) {
			mda_level = from == sec ? 2 : 1;
		} else if (strcmp(k->name, "mbox") == 0) {
			mbox_level = from == sec ? 2 : 1;
		} else if (strcmp(k->name, "maildir") == 0) {
			maildir_level = from == sec ? 2 : 1;
		}
		if (v != NULL && set_key(a, k, v, file, from, err) != 0)
			return err->code;
	}

	if (a->host == NULL)
		return key_error(err, file, sec, "host", "missing; every account needs the server's host name");
	if (a->user == NULL)
		return key_error(err, file, sec, "user", "missing; every account needs the login name");
	if (!tls_set)
		a->tls = (!port_set || a->port == 993) ? TLS_IMPLICIT : TLS_STARTTLS;
	if (!port_set)
		a->port = a->tls == TLS_IMPLICIT ? 993 : 143;
	if (a->tls == TLS_NONE && !a->allow_plaintext)
		return key_error(err, file, sec, "tls",
		    "'none' sends your password in clear text; set allow_plaintext = yes as well if you mean it");
	nsources = (a->password != NULL) + (a->password_command != NULL) + (a->password_store != PWSTORE_NONE);
	if (nsources == 0 && a->oauth_token_command == NULL)
		return key_error(err, file, sec, "password",
		    "no password source; set one of password, password_command or password_store "
		    "(or oauth_token_command for OAuth2)");
	if (nsources > 1)
		return key_error(err, file, sec, "password",
		    "more than one of password, password_command and password_store is set; keep one");
	{
		unsigned listed = 0;
		for (size_t i = 0; i < a->nauth; i++)
			listed |= SASL_BIT(a->auth_order[i]);
		if (!a->auth_auto && nsources == 0 && !(listed & SASL_TOKEN_MECHS))
			return key_error(err, file, sec, "auth", "every mechanism listed needs a password, and "
			    "there is only oauth_token_command; add xoauth2 or oauthbearer, or a password source");
		if (!a->auth_auto && a->oauth_token_command == NULL && !(listed & SASL_PASSWORD_MECHS))
			return key_error(err, file, sec, "auth", "xoauth2 and oauthbearer need oauth_token_command; "
			    "set it, or list a password mechanism");
	}
#ifndef HAVE_LIBSECRET
	if (a->password_store == PWSTORE_SECRET)
		return key_error(err, file, sec, "password_store",
		    "this mailfetch was built without libsecret; use password or password_command");
#endif
	/* An mbox given without deliver is where the mail is meant to go,
	 * not a setting to ignore while procmail gets it.  With both mda and
	 * mbox given, the one in the account's own section wins over one in
	 * [defaults]; both at the same level is a question only the user can
	 * answer. */
	file_level = mbox_level > maildir_level ? mbox_level : maildir_level;
	if (!deliver_set && file_level > 0) {
		if (mbox_level == maildir_level)
			return key_error(err, file, sec, "deliver",
			    "missing, and both mbox and maildir are set; set deliver = mbox or deliver = maildir");
		if (mda_level == file_level)
			return key_error(err, file, sec, "deliver", "missing, and both mda and %s are set; "
			    "set deliver = mda or deliver = %s", mbox_level > maildir_level ? "mbox" : "maildir",
			    mbox_level > maildir_level ? "mbox" : "maildir");
		if (file_level > mda_level)
			a->deliver = mbox_level > maildir_level ? DELIVER_MBOX : DELIVER_MAILDIR;
	}
	if (a->deliver == DELIVER_MBOX && a->mbox == NULL)
		return key_error(err, file, sec, "mbox", "missing; deliver = mbox needs the path of the mbox file");
	if (a->deliver == DELIVER_MAILDIR && a->maildir == NULL)
		return key_error(err, file, sec, "maildir", "missing; deliver = maildir needs the path of the Maildir");
	if (a->deliver == DELIVER_SMTP && a->smtp == NULL)
		a->smtp = xstrdup("localhost:25");
	if (a->smtp != NULL && check_host_port(a->smtp, 0) < 0)
		return key_error(err, file, sec, "smtp", "'%s' is not HOST or HOST:PORT (an IPv6 address in "
		    "brackets: [::1]:25); the port is 1 to 65535", a->smtp);
	if (a->deliver == DELIVER_LMTP && a->lmtp == NULL)
		return key_error(err, file, sec, "lmtp", "missing; deliver = lmtp needs the path of the LMTP socket "
		    "or HOST:PORT");
	if (a->lmtp != NULL && a->lmtp[0] != '/' && check_host_port(a->lmtp, 1) < 0)
		return key_error(err, file, sec, "lmtp", "'%s' is neither a socket path (starting with /) nor "
		    "HOST:PORT (the port is 1 to 65535)", a->lmtp);
	if (a->recipient != NULL && !address_ok(a->recipient))
		return key_error(err, file, sec, "recipient", "'%s' is not a mail address or a local user name "
		    "(no blanks, control characters, < or >)", a->recipient);
	if (a->delete_after > 0 && !a->keep)
		return key_error(err, file, sec, "delete_after", "needs keep = yes (with keep = no, mail is deleted "
		    "at once)");
	switch (check_mda_escapes(a->mda, &bad)) {
	case -1:
		return key_error(err, file, sec, "mda", "unknown escape %%%c; only %%T, %%F and %%%% are allowed", bad ? bad : ' ');
	case -2:
		return key_error(err, file, sec, "mda", "%%%c is inside quotes; write it bare, mailfetch quotes its value", bad);
	}
	if (ov != NULL) {
		if (ov->keep >= 0)
			a->keep = ov->keep;
		if (ov->fetch_all) {
			a->fetch_new_configured = a->fetch == FETCH_NEW;
			a->fetch = FETCH_ALL;
		}
		if (ov->limit > 0)
			a->limit = ov->limit;
		if (ov->fetch_limit > 0)
			a->fetch_limit = ov->fetch_limit;
	}
	a->who = xasprintf("%s (%s@%s)", a->name, a->user, a->host);
	return 0;
}

/* iniparser's longest line: its buffer (ASCIILINESZ, 1024) less the
 * newline and the NUL.  It reports a longer line under the name it
 * opened (/dev/fd/N), so check_raw_values says it first, and better. */
#define INI_LINE_MAX 1022

/* A key line seen by check_raw_values, to find a key set twice. */
struct raw_key {
	const char *sec; /* the section's name in the raw text, trimmed */
	size_t seclen;
	size_t key;      /* index in keys[] */
	unsigned line;
};

/* Orders by section (lower-cased, as iniparser stores it), then key. */
static int
raw_key_order(const struct raw_key *a, const struct raw_key *b)
{
	for (size_t i = 0; i < a->seclen && i < b->seclen; i++) {
		int d = tolower((unsigned char)a->sec[i]) - tolower((unsigned char)b->sec[i]);
		if (d != 0)
			return d;
	}
	if (a->seclen != b->seclen)
		return a->seclen < b->seclen ? -1 : 1;
	return a->key < b->key ? -1 : a->key > b->key;
}

static int
raw_key_cmp(const void *pa, const void *pb)
{
	const struct raw_key *a = pa, *b = pb;
	int d = raw_key_order(a, b);

	return d != 0 ? d : a->line < b->line ? -1 : a->line > b->line;
}

/* iniparser keeps the last of a key set twice in a section (or in two
 * sections of the same name, which it merges) and drops the others
 * without a word.  Reports the repeat that comes first in the file. */
static int
check_repeated_keys(const char *path, struct raw_key *rk, size_t n, struct mf_error *err)
{
	const struct raw_key *again = NULL;
	unsigned before = 0;
	char sec[256];

	if (n < 2)
		return 0;
	qsort(rk, n, sizeof *rk, raw_key_cmp);
	for (size_t i = 1; i < n; i++) {
		if (raw_key_order(&rk[i - 1], &rk[i]) == 0 && (again == NULL || rk[i].line < again->line)) {
			again = &rk[i];
			before = rk[i - 1].line;
		}
	}
	if (again == NULL)
		return 0;
	snprintf(sec, sizeof sec, "%.*s", (int)again->seclen, again->sec);
	for (char *c = sec; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return key_error(err, path, sec, keys[again->key].name,
	    "set on line %u and again on line %u, and only the last would count; keep one", before, again->line);
}

/* Checks the value v..e (trimmed, not empty) of a key line as iniparser
 * will read it: an unquoted value ends at ';' or '#' (a comment), a
 * quoted one at its next quote (there are no escapes, and without a
 * closing quote it runs to the end of the line), and what follows the
 * closing quote is dropped.  Each would change the value without a word
 * (a cut-off MDA command may "deliver" into nothing; `folders = INBOX;
 * Lists` would poll INBOX alone), so each is refused. */
static int
check_raw_value(const char *path, const char *sec, const char *key, const char *v, const char *e,
    struct mf_error *err)
{
	if (*v == '"' || *v == '\'') {
		const char *close = memchr(v + 1, *v, (size_t)(e - v - 1));
		const char *after = close != NULL ? close + 1 : e;

		while (after < e && isspace((unsigned char)*after))
			after++;
		if (close == NULL)
			return key_error(err, path, sec, key, "the %c that opens the value is not closed; end the value "
			    "with %c (one that holds a %c needs the other kind of quote)", *v, *v, *v);
		if (after < e && *after != ';' && *after != '#')
			return key_error(err, path, sec, key, "a quoted value must be one quoted string with no %c inside "
			    "(there are no escapes); quote it with the other kind of quote", *v);
		return 0;
	}
	for (const char *p = v; p < e; p++)
		if (*p == ';' || *p == '#')
			return key_error(err, path, sec, key, "the value holds '%c', which starts a comment in this file "
			    "and would cut the value short; put the whole value in double quotes (in single quotes "
			    "if it holds a double quote)", *p);
	return 0;
}

/* Scans the raw text of the file (len bytes) for what iniparser would
 * change without a word, before it parses it: values (check_raw_value),
 * keys set twice (check_repeated_keys), and lines:
 * - a NUL byte ends the line there (on the last line, silently);
 * - a line ending in '\' (trailing blanks aside) is joined with the next
 *   one, whatever that is: `password = abc\` and `def#ghi` make "abcdef",
 *   a comment swallows the key below it, and a last line is dropped;
 * - "[]" starts no section (the keys below it stay in the one above).
 * Comment and section lines may hold anything else.  The values of
 * unknown keys, and of keys outside any section, are left to the checks
 * after parsing, which refuse those keys with a better message.
 * Returns 0 or MF_EUSAGE with err set. */
static int
check_raw_values(const char *path, const char *text, size_t len, struct mf_error *err)
{
	const char *line = text, *end = text + len, *secname = NULL;
	size_t seclen = 0, nrk = 0, rkcap = 0;
	struct raw_key *rk = NULL;
	char sec[256] = "";
	unsigned lineno = 0;
	int rc = 0;

	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *eol = nl != NULL ? nl : end, *p = line, *e = eol, *eq = NULL, *v;
		const struct key *k = NULL;
		char key[64] = "";

		lineno++;
		line = nl != NULL ? nl + 1 : end;
		if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
			rc = err_set(err, MF_EUSAGE, "%s: line %u holds a NUL byte; is it really a fetchrc?", path, lineno);
			break;
		}
		if (eol - p > INI_LINE_MAX) {
			rc = err_set(err, MF_EUSAGE, "%s: line %u is longer than %d bytes; shorten it", path, lineno,
			    INI_LINE_MAX);
			break;
		}
		while (p < e && isspace((unsigned char)*p))
			p++;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		if (p == e)
			continue;
		if (*p != ';' && *p != '#' && !(*p == '[' && e[-1] == ']')
		    && (eq = memchr(p, '=', (size_t)(e - p))) != NULL) {
			size_t klen = (size_t)(eq - p);
			while (klen > 0 && isspace((unsigned char)p[klen - 1]))
				klen--;
			snprintf(key, sizeof key, "%.*s", (int)klen, p);
			for (char *c = key; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			k = key_find(key);
		}
		if (e[-1] == '\\') {
			if (key[0] != '\0' && secname != NULL)
				rc = key_error(err, path, sec, key, "line %u ends in a backslash, which would join the next "
				    "line to this value; remove it (quote a value that really ends in one)", lineno);
			else
				rc = err_set(err, MF_EUSAGE, "%s: line %u ends in a backslash, which would join the next "
				    "line to it; remove the backslash", path, lineno);
			break;
		}
		if (*p == '[' && e[-1] == ']') {
			/* As iniparser reads it: up to the first ']', trimmed. */
			const char *s = p + 1, *se = memchr(s, ']', (size_t)(e - s));
			while (s < se && isspace((unsigned char)*s))
				s++;
			while (se > s && isspace((unsigned char)se[-1]))
				se--;
			if (se == s) {
				rc = err_set(err, MF_EUSAGE, "%s: line %u: a section with no name; write the account's "
				    "name between the brackets", path, lineno);
				break;
			}
			secname = s;
			seclen = (size_t)(se - s);
			snprintf(sec, sizeof sec, "%.*s", (int)seclen, s);
			for (char *c = sec; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			continue;
		}
		if (k == NULL || secname == NULL)
			continue;
		for (v = eq + 1; v < e && isspace((unsigned char)*v); v++)
			;
		if (v < e && (rc = check_raw_value(path, sec, key, v, e, err)) != 0)
			break;
		if (nrk == rkcap) {
			rkcap = rkcap ? rkcap * 2 : 32;
			rk = xreallocarray(rk, rkcap, sizeof *rk);
		}
		rk[nrk++] = (struct raw_key){ secname, seclen, (size_t)(k - keys), lineno };
	}
	if (rc == 0)
		rc = check_repeated_keys(path, rk, nrk, err);
	free(rk);
	return rc;
}

/* Opens the file without following a symlink and applies the ownership
 * and mode rules; returns the fd or -1 with err set. */
static int
open_checked(const char *path, struct stat *st, struct mf_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		if (errno == ELOOP)
			return err_set(err, MF_EPERM, "%s: is a symbolic link; refusing to read it, "
			    "point -c at the file itself", path), -1;
		return err_set(err, MF_EUSAGE, "%s: cannot open: %s; create it (see fetchrc(5)) or name one with -c",
		    path, strerror(errno)), -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return err_set(err, MF_EUSAGE, "%s: not a regular file; name the config file with -c", path), -1;
	}
	if (st->st_uid != getuid()) {
		close(fd);
		return err_set(err, MF_EPERM, "%s: owned by uid %u, not by you (uid %u); refusing to use it",
		    path, (unsigned)st->st_uid, (unsigned)getuid()), -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		close(fd);
		return err_set(err, MF_EPERM, "%s: writable by group or others; run chmod go-w %s", path, path), -1;
	}
	return fd;
}

/* Reads fd (a file, or a pipe) to its end into *text (NUL-terminated,
 * *lenp bytes; free it with free_secret), at most CONFIG_FILE_MAX bytes.
 * what names the kind of file in the message ("fetchrc"). */
int
config_read_text(int fd, const char *path, const char *what, char **text, size_t *lenp, struct mf_error *err)
{
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);

	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free_secret(buf);
			return err_set(err, MF_EUSAGE, "%s: cannot read: %s", path, strerror(errno));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_FILE_MAX) {
			free_secret(buf);
			return err_set(err, MF_EUSAGE, "%s: larger than %u bytes; is it really a %s?", path, CONFIG_FILE_MAX,
			    what);
		}
		if (len + 1 == cap) {
			char *bigger = xmalloc(cap * 2);
			memcpy(bigger, buf, len);
			wipe(buf, cap);
			free(buf);
			buf = bigger;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	*text = buf;
	*lenp = len;
	return 0;
}

int
config_load(const char *path, const struct config_overrides *ov, struct config **out, struct mf_error *err)
{
	struct config *cfg;
	struct stat st;
	dictionary *d;
	char fdpath[64], *text = NULL;
	size_t textlen = 0;
	int fd, nsec, has_password = 0, parallel = PARALLEL_DEFAULT;

	*out = NULL;
	fd = open_checked(path, &st, err);
	if (fd < 0)
		return err->code;
	if (config_read_text(fd, path, "fetchrc", &text, &textlen, err) != 0 || check_raw_values(path, text, textlen, err) != 0) {
		free_secret(text);
		close(fd);
		return err->code;
	}
	free_secret(text);
	/* Parse the very file we checked, not whatever the name points to now. */
	snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", fd);
	ini_error[0] = '\0';
	iniparser_set_error_callback(ini_errback);
	d = iniparser_load(fdpath);
	close(fd);
	if (d == NULL || ini_error[0] != '\0') {
		if (d != NULL)
			dict_free(d);
		/* iniparser names the file it opened (/dev/fd/N); keep the line. */
		const char *paren = strrchr(ini_error, '(');
		int line = 0;
		if (strstr(ini_error, "syntax error") != NULL && paren != NULL && sscanf(paren, "(%d)", &line) == 1)
			return err_set(err, MF_EUSAGE, "%s: syntax error on line %d; see fetchrc(5) for the format",
			    path, line);
		return err_set(err, MF_EUSAGE, "%s: %s; see fetchrc(5) for the format", path,
		    ini_error[0] ? ini_error : "cannot be parsed");
	}

	/* Every key must be known: a typo must not silently turn a setting off. */
	for (ssize_t i = 0; i < d->size; i++) {
		const char *k = d->key[i], *colon;
		if (k == NULL)
			continue;
		colon = strchr(k, ':');
		if (colon == NULL)
			continue; /* a section */
		if (colon == k) {
			err_set(err, MF_EUSAGE, "%s: key '%s' is outside any section; put it under [defaults] or an account",
			    path, colon + 1);
			goto fail;
		}
		if (key_find(colon + 1) == NULL) {
			char sec[256];
			snprintf(sec, sizeof sec, "%.*s", (int)(colon - k), k);
			key_error(err, path, sec, colon + 1, "unknown key; see fetchrc(5) for the keys there are");
			goto fail;
		}
		if (strcmp(colon + 1, "password") == 0)
			has_password = 1;
		if (strcmp(colon + 1, "parallel") == 0) {
			char sec[256], *end;
			long n;
			snprintf(sec, sizeof sec, "%.*s", (int)(colon - k), k);
			if (strcmp(sec, "defaults") != 0) {
				key_error(err, path, sec, "parallel", "a setting of the whole run; put it in [defaults]");
				goto fail;
			}
			n = strtol(d->val[i] != NULL ? d->val[i] : "", &end, 10);
			if (d->val[i] == NULL || end == d->val[i] || *end != '\0' || n < 1 || n > 64) {
				key_error(err, path, sec, "parallel", "'%s' is not a number from 1 to 64",
				    d->val[i] != NULL ? d->val[i] : "");
				goto fail;
			}
			parallel = (int)n;
		}
	}
	if (has_password && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		err_set(err, MF_EPERM, "%s: holds a password but can be read by others; run chmod 600 %s", path, path);
		goto fail;
	}

	cfg = xcalloc(1, sizeof *cfg);
	cfg->path = xstrdup(path);
	cfg->parallel = parallel;
	nsec = iniparser_getnsec(d);
	for (int i = 0; i < nsec; i++) {
		const char *sec = iniparser_getsecname(d, i);
		if (strcmp(sec, "defaults") == 0)
			continue;
		cfg->accounts = xreallocarray(cfg->accounts, cfg->naccounts + 1, sizeof *cfg->accounts);
		if (account_load(d, path, sec, ov, &cfg->accounts[cfg->naccounts], err) != 0) {
			cfg->naccounts++;
			config_free(cfg);
			goto fail;
		}
		cfg->naccounts++;
	}
	dict_free(d);
	if (cfg->naccounts == 0) {
		config_free(cfg);
		return err_set(err, MF_EUSAGE, "%s: no accounts; add a section such as [work] with host, user and a password source", path);
	}
	*out = cfg;
	return 0;

fail:
	dict_free(d);
	return err->code;
}

static const char *
choice_name(const struct choice *c, int v)
{
	for (; c->name != NULL; c++)
		if (c->value == v)
			return c->name;
	return "?";
}

void
config_print_account(const struct account *a, FILE *fp)
{
	{
		fprintf(fp, "\n[%s]\n", a->name);
		fprintf(fp, "protocol = imap\nhost = %s\nport = %d\ntls = %s\n", a->host, a->port, choice_name(tls_choices, a->tls));
		fprintf(fp, "allow_plaintext = %s\n", a->allow_plaintext ? "yes" : "no");
		fprintf(fp, "tls_ca_file = %s\n", a->tls_ca_file ? a->tls_ca_file : "(system store)");
		if (a->has_pin) {
			fprintf(fp, "tls_fingerprint = sha256:");
			for (size_t j = 0; j < TLS_PIN_LEN; j++)
				fprintf(fp, "%02x", a->pin[j]);
			fputc('\n', fp);
		}
		fprintf(fp, "tls_min_version = %s\n", choice_name(version_choices, a->tls_min_version));
		fprintf(fp, "user = %s\n", a->user);
		if (a->password != NULL)
			fprintf(fp, "password = (set, not shown)\n");
		if (a->password_command != NULL)
			fprintf(fp, "password_command = %s\npassword_command_timeout = %d\n", a->password_command,
			    a->password_command_timeout);
		if (a->password_store != PWSTORE_NONE)
			fprintf(fp, "password_store = %s\n", choice_name(store_choices, a->password_store));
		if (a->oauth_token_command != NULL)
			fprintf(fp, "oauth_token_command = %s\n", a->oauth_token_command);
		fprintf(fp, "auth = ");
		if (a->auth_auto)
			fprintf(fp, "auto");
		for (size_t j = 0; !a->auth_auto && j < a->nauth; j++) {
			char lower[32];
			const char *n = sasl_mech_name(a->auth_order[j]);
			size_t k;
			for (k = 0; n[k] != '\0' && k + 1 < sizeof lower; k++)
				lower[k] = (char)tolower((unsigned char)n[k]);
			lower[k] = '\0';
			fprintf(fp, "%s%s", j ? ", " : "", lower);
		}
		fprintf(fp, "\nfolders = ");
		for (size_t j = 0; j < a->nfolders; j++)
			fprintf(fp, "%s%s", j ? ", " : "", a->folders[j]);
		fprintf(fp, "\nfetch = %s\nkeep = %s\ndeliver = %s\n", choice_name(fetch_choices, a->fetch),
		    a->keep ? "yes" : "no", choice_name(deliver_choices, a->deliver));
		switch (a->deliver) {
		case DELIVER_MDA:
			fprintf(fp, "mda = %s\nmda_timeout = %d\n", a->mda, a->mda_timeout);
			break;
		case DELIVER_MBOX:
			fprintf(fp, "mbox = %s\n", a->mbox);
			break;
		case DELIVER_MAILDIR:
			fprintf(fp, "maildir = %s\n", a->maildir);
			break;
		case DELIVER_SMTP:
		case DELIVER_LMTP:
			fprintf(fp, "%s = %s\nrecipient = %s\n", a->deliver == DELIVER_SMTP ? "smtp" : "lmtp",
			    a->deliver == DELIVER_SMTP ? a->smtp : a->lmtp,
			    a->recipient != NULL ? a->recipient : "(the local user)");
			if (a->deliver_sessions != 1)
				fprintf(fp, "deliver_sessions = %d\n", a->deliver_sessions);
			break;
		}
		if (a->limit > 0)
			fprintf(fp, "limit = %llu\n", a->limit);
		if (a->fetch_limit > 0)
			fprintf(fp, "fetch_limit = %d\n", a->fetch_limit);
		if (a->delete_after > 0)
			fprintf(fp, "delete_after = %d\n", a->delete_after);
		fprintf(fp, "timeout = %d\n", a->timeout);
		if (a->poll_interval > 0)
			fprintf(fp, "poll_interval = %d\n", a->poll_interval);
		fprintf(fp, "idle = %s\n", a->idle ? "yes" : "no");
		if (a->idle)
			fprintf(fp, "idle_restart = %d\n", a->idle_restart);
	}
}

void
config_print(const struct config *cfg, FILE *fp)
{
	fprintf(fp, "# %s\n", cfg->path);
	if (cfg->parallel != PARALLEL_DEFAULT)
		fprintf(fp, "\n[defaults]\nparallel = %d\n", cfg->parallel);
	for (size_t i = 0; i < cfg->naccounts; i++)
		config_print_account(&cfg->accounts[i], fp);
}
