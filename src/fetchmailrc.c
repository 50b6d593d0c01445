/* fetchmailrc.c: fetchmail's run control file read with fetchmail's own
 * grammar (a tokenizer that behaves as its flex lexer does, and a
 * recursive parser of its bison grammar), and written out as a fetchrc.
 *
 * The tokenizer follows fetchmail's lexer, longest match first: a word is
 * a run of anything but blanks and = ; : , and is a keyword only when the
 * whole word is one; a quoted string ("..." or '...', no escapes for the
 * quote itself, newlines allowed) wins over a word only when it is at
 * least as long; after user, password, is, to and = the next token is a
 * string whatever it looks like; ; : , and the words and, with, has,
 * wants, options are noise; # starts a comment; backslash escapes (\n \t
 * \b \r \\ \xHH \0OOO \DDD, backslash-newline) are decoded in strings. */
#include "autoconfig.h"

#include "config.h"
#include "fetchmailrc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mf_limits.h"
#include "xmalloc.h"

/* ---- keywords ------------------------------------------------------ */

enum kw {
	K_NONE,
	K_SET, K_LOGFILE, K_IDFILE, K_PIDFILE, K_DAEMON, K_SYSLOG, K_INVISIBLE, K_SHOWDOTS, K_POSTMASTER,
	K_BOUNCEMAIL, K_SPAMBOUNCE, K_SOFTBOUNCE, K_WARNINGS, K_TRACEPOLLS,
	K_DEFAULTS, K_POLL, K_SKIP, K_VIA, K_AKA, K_LOCALDOMAINS, K_PROTOCOL, K_SERVICE, K_PORT, K_INTERVAL,
	K_AUTHENTICATE, K_TIMEOUT, K_IDLETIMEOUT, K_ENVELOPE, K_QVIRTUAL, K_PRINCIPAL, K_ESMTPNAME,
	K_ESMTPPASSWORD, K_BADHEADER, K_ACCEPT, K_REJECT,
	K_USER, K_PASSWORD, K_PASSWORDFILE, K_FOLDER, K_SMTPHOST, K_FETCHDOMAINS, K_SMTPADDRESS, K_SMTPNAME,
	K_ANTISPAM, K_MDA, K_BSMTP, K_LMTP, K_PRECONNECT, K_POSTCONNECT, K_INTERFACE, K_MONITOR, K_PLUGIN,
	K_PLUGOUT, K_BATCHLIMIT, K_FETCHLIMIT, K_FETCHSIZELIMIT, K_FASTUIDL, K_EXPUNGE, K_PROPERTIES,
	K_IS, K_HERE, K_THERE, K_TO, K_NO,
	K_KEEP, K_FLUSH, K_LIMITFLUSH, K_FETCHALL, K_REWRITE, K_FORCECR, K_STRIPCR, K_PASS8BITS, K_DROPSTATUS,
	K_DROPDELIVERED, K_MIMEDECODE, K_IDLE, K_FORCEIDLE, K_DNS, K_UIDL, K_SSL, K_SSLKEY, K_SSLCERT,
	K_SSLPROTO, K_SSLCERTCK, K_SSLCERTFILE, K_SSLCERTPATH, K_SSLCOMMONNAME, K_SSLFINGERPRINT,
	K_CHECKALIAS, K_LIMIT,
	K_NOISE,
	K_PROTO,      /* a protocol name: auto pop2 pop3 imap apop rpop etrn odmr kpop sdps */
	K_AUTHTYPE,   /* an authentication type: any gssapi kerberos ssh ... (password only after auth) */
};

struct kwdef {
	const char *word;
	enum kw kw;
	const char *name;  /* canonical spelling, for comments */
};

static const struct kwdef kwdefs[] = {
	{ "set", K_SET, "set" }, { "logfile", K_LOGFILE, "logfile" }, { "idfile", K_IDFILE, "idfile" },
	{ "pidfile", K_PIDFILE, "pidfile" }, { "daemon", K_DAEMON, "daemon" }, { "syslog", K_SYSLOG, "syslog" },
	{ "invisible", K_INVISIBLE, "invisible" }, { "showdots", K_SHOWDOTS, "showdots" },
	{ "postmaster", K_POSTMASTER, "postmaster" }, { "bouncemail", K_BOUNCEMAIL, "bouncemail" },
	{ "spambounce", K_SPAMBOUNCE, "spambounce" }, { "softbounce", K_SOFTBOUNCE, "softbounce" },
	{ "warnings", K_WARNINGS, "warnings" }, { "tracepolls", K_TRACEPOLLS, "tracepolls" },
	{ "defaults", K_DEFAULTS, "defaults" }, { "server", K_POLL, "poll" }, { "poll", K_POLL, "poll" },
	{ "skip", K_SKIP, "skip" }, { "via", K_VIA, "via" }, { "aka", K_AKA, "aka" },
	{ "local", K_LOCALDOMAINS, "localdomains" }, { "localdomains", K_LOCALDOMAINS, "localdomains" },
	{ "proto", K_PROTOCOL, "proto" }, { "protocol", K_PROTOCOL, "proto" },
	{ "service", K_SERVICE, "service" }, { "port", K_PORT, "port" }, { "interval", K_INTERVAL, "interval" },
	{ "preauth", K_AUTHENTICATE, "auth" }, { "preauthenticate", K_AUTHENTICATE, "auth" },
	{ "auth", K_AUTHENTICATE, "auth" }, { "authenticate", K_AUTHENTICATE, "auth" },
	{ "any", K_AUTHTYPE, "any" }, { "gssapi", K_AUTHTYPE, "gssapi" },
	{ "kerberos_v4", K_AUTHTYPE, "kerberos_v4" }, { "kerberos4", K_AUTHTYPE, "kerberos_v4" },
	{ "kerberos_v5", K_AUTHTYPE, "kerberos_v5" }, { "kerberos5", K_AUTHTYPE, "kerberos_v5" },
	{ "kerberos", K_AUTHTYPE, "kerberos" }, { "ssh", K_AUTHTYPE, "ssh" }, { "implicit", K_AUTHTYPE, "implicit" },
	{ "external", K_AUTHTYPE, "external" }, { "otp", K_AUTHTYPE, "otp" }, { "opie", K_AUTHTYPE, "otp" },
	{ "cram", K_AUTHTYPE, "cram-md5" }, { "cram-md5", K_AUTHTYPE, "cram-md5" }, { "msn", K_AUTHTYPE, "msn" },
	{ "ntlm", K_AUTHTYPE, "ntlm" },
	{ "timeout", K_TIMEOUT, "timeout" }, { "idletimeout", K_IDLETIMEOUT, "idletimeout" },
	{ "envelope", K_ENVELOPE, "envelope" }, { "qvirtual", K_QVIRTUAL, "qvirtual" },
	{ "principal", K_PRINCIPAL, "principal" }, { "esmtpname", K_ESMTPNAME, "esmtpname" },
	{ "esmtppassword", K_ESMTPPASSWORD, "esmtppassword" }, { "bad-header", K_BADHEADER, "bad-header" },
	{ "accept", K_ACCEPT, "accept" }, { "reject", K_REJECT, "reject" },
	{ "user", K_USER, "user" }, { "username", K_USER, "user" },
	{ "pass", K_PASSWORD, "password" }, { "password", K_PASSWORD, "password" },
	{ "passwordfile", K_PASSWORDFILE, "passwordfile" },
	{ "folder", K_FOLDER, "folder" }, { "folders", K_FOLDER, "folder" },
	{ "smtp", K_SMTPHOST, "smtphost" }, { "smtphost", K_SMTPHOST, "smtphost" },
	{ "fetchdomains", K_FETCHDOMAINS, "fetchdomains" }, { "smtpaddress", K_SMTPADDRESS, "smtpaddress" },
	{ "smtpname", K_SMTPNAME, "smtpname" }, { "antispam", K_ANTISPAM, "antispam" }, { "mda", K_MDA, "mda" },
	{ "bsmtp", K_BSMTP, "bsmtp" }, { "lmtp", K_LMTP, "lmtp" },
	{ "pre", K_PRECONNECT, "preconnect" }, { "preconnect", K_PRECONNECT, "preconnect" },
	{ "post", K_POSTCONNECT, "postconnect" }, { "postconnect", K_POSTCONNECT, "postconnect" },
	{ "interface", K_INTERFACE, "interface" }, { "monitor", K_MONITOR, "monitor" },
	{ "plugin", K_PLUGIN, "plugin" }, { "plugout", K_PLUGOUT, "plugout" },
	{ "batchlimit", K_BATCHLIMIT, "batchlimit" }, { "fetchlimit", K_FETCHLIMIT, "fetchlimit" },
	{ "fetchsizelimit", K_FETCHSIZELIMIT, "fetchsizelimit" }, { "fastuidl", K_FASTUIDL, "fastuidl" },
	{ "expunge", K_EXPUNGE, "expunge" }, { "properties", K_PROPERTIES, "properties" },
	{ "is", K_IS, "is" }, { "here", K_HERE, "here" }, { "there", K_THERE, "there" }, { "to", K_TO, "to" },
	{ "no", K_NO, "no" },
	{ "keep", K_KEEP, "keep" }, { "flush", K_FLUSH, "flush" }, { "limitflush", K_LIMITFLUSH, "limitflush" },
	{ "fetchall", K_FETCHALL, "fetchall" }, { "rewrite", K_REWRITE, "rewrite" },
	{ "forcecr", K_FORCECR, "forcecr" }, { "stripcr", K_STRIPCR, "stripcr" },
	{ "pass8", K_PASS8BITS, "pass8bits" }, { "pass8bits", K_PASS8BITS, "pass8bits" },
	{ "dropstatus", K_DROPSTATUS, "dropstatus" }, { "dropdelivered", K_DROPDELIVERED, "dropdelivered" },
	{ "mimedec", K_MIMEDECODE, "mimedecode" }, { "mimedecode", K_MIMEDECODE, "mimedecode" },
	{ "idle", K_IDLE, "idle" }, { "forceidle", K_FORCEIDLE, "forceidle" }, { "dns", K_DNS, "dns" },
	{ "uidl", K_UIDL, "uidl" }, { "ssl", K_SSL, "ssl" }, { "sslkey", K_SSLKEY, "sslkey" },
	{ "sslcert", K_SSLCERT, "sslcert" }, { "sslproto", K_SSLPROTO, "sslproto" },
	{ "sslcertck", K_SSLCERTCK, "sslcertck" }, { "sslcertfile", K_SSLCERTFILE, "sslcertfile" },
	{ "sslcertpath", K_SSLCERTPATH, "sslcertpath" }, { "sslcommonname", K_SSLCOMMONNAME, "sslcommonname" },
	{ "sslfingerprint", K_SSLFINGERPRINT, "sslfingerprint" }, { "checkalias", K_CHECKALIAS, "checkalias" },
	{ "limit", K_LIMIT, "limit" },
	{ "with", K_NOISE, NULL }, { "and", K_NOISE, NULL }, { "has", K_NOISE, NULL }, { "wants", K_NOISE, NULL },
	{ "options", K_NOISE, NULL },
	{ "auto", K_PROTO, "AUTO" }, { "AUTO", K_PROTO, "AUTO" }, { "pop2", K_PROTO, "POP2" },
	{ "POP2", K_PROTO, "POP2" }, { "sdps", K_PROTO, "SDPS" }, { "SDPS", K_PROTO, "SDPS" },
	{ "pop3", K_PROTO, "POP3" }, { "POP3", K_PROTO, "POP3" }, { "imap", K_PROTO, "IMAP" },
	{ "IMAP", K_PROTO, "IMAP" }, { "apop", K_PROTO, "APOP" }, { "APOP", K_PROTO, "APOP" },
	{ "rpop", K_PROTO, "RPOP" }, { "RPOP", K_PROTO, "RPOP" }, { "etrn", K_PROTO, "ETRN" },
	{ "ETRN", K_PROTO, "ETRN" }, { "odmr", K_PROTO, "ODMR" }, { "ODMR", K_PROTO, "ODMR" },
	{ "kpop", K_PROTO, "KPOP" }, { "KPOP", K_PROTO, "KPOP" },
};

/* The one-word negations of fetchmail's lexer: "nokeep" is "no keep". */
static const char *const negations[] = {
	"nobouncemail", "nouidl", "nocheckalias", "nodns", "noenvelope", "nokeep", "noflush", "nolimitflush",
	"nofetchall", "norewrite", "noforcecr", "nostripcr", "nopass8", "nopass8bits", "nodropstatus",
	"nodropdelivered", "nomimedec", "nomimedecode", "nospambounce", "noidle", "noforceidle",
};

static const struct kwdef *
kw_lookup(const char *w, size_t len)
{
	for (size_t i = 0; i < sizeof kwdefs / sizeof kwdefs[0]; i++)
		if (strlen(kwdefs[i].word) == len && memcmp(kwdefs[i].word, w, len) == 0)
			return &kwdefs[i];
	return NULL;
}

/* The canonical name of a keyword, for comments. */
static const char *
kw_name(enum kw k)
{
	for (size_t i = 0; i < sizeof kwdefs / sizeof kwdefs[0]; i++)
		if (kwdefs[i].kw == k)
			return kwdefs[i].name;
	return "?";
}

/* ---- tokenizer ----------------------------------------------------- */

enum tok_type { T_EOF, T_KW, T_STR, T_NUM, T_MAP };
enum lex_state { LS_INITIAL, LS_NAME, LS_AUTH };

struct tok {
	enum tok_type type;
	const struct kwdef *kw;  /* T_KW */
	char *s;                 /* T_STR: decoded; owned by the token */
	long num;                /* T_NUM */
	int quoted;              /* T_STR: was in quotes */
	const char *raw;         /* the token's first byte, for messages */
	size_t rawlen;
	unsigned line;
};

struct parser {
	const char *p, *end;
	unsigned line;
	enum lex_state state;
	const char *file, *dir;
	struct tok la[2];        /* lookahead */
	int nla;
	struct mf_error *err;
	int failed;
	struct fmrc *rc;
};

/* fetchmail's escapes(): decodes backslash sequences of s[0..len). */
static char *
unescape(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *t = out;
	const char *cp = s, *end = s + len;

	while (cp < end) {
		int cval = 0;
		if (*cp == '\\' && cp + 1 < end && strchr("0123456789xX", cp[1]) != NULL) {
			static const char hex[] = "00112233445566778899aAbBcCdDeEfF";
			const char *dp;
			int dcount = 0;
			cp++;
			if (*cp == 'x' || *cp == 'X') {
				for (++cp; cp < end && (dp = strchr(hex, *cp)) != NULL && *cp && dcount++ < 2; cp++)
					cval = cval * 16 + (int)(dp - hex) / 2;
			} else if (*cp == '0') {
				while (cp < end && *cp && strchr("01234567", *cp) != NULL && dcount++ < 3)
					cval = cval * 8 + (*cp++ - '0');
			} else {
				while (cp < end && *cp && strchr("0123456789", *cp) != NULL && dcount++ < 3)
					cval = cval * 10 + (*cp++ - '0');
			}
		} else if (*cp == '\\') {
			cp++;
			if (cp == end)
				break;
			switch (*cp) {
			case '\n': cp++; continue;
			case 'n': cval = '\n'; break;
			case 't': cval = '\t'; break;
			case 'b': cval = '\b'; break;
			case 'r': cval = '\r'; break;
			default: cval = (unsigned char)*cp;
			}
			cp++;
		} else {
			cval = (unsigned char)*cp++;
		}
		*t++ = (char)cval;
		if (cval == 0)
			break; /* fetchmail's strings are C strings: a \0 ends one */
	}
	*t = '\0';
	return out;
}

static int
word_char(char c)
{
	return c != '=' && c != ';' && c != ':' && c != ',' && c != ' ' && c != '\t' && c != '\r' && c != '\n'
	    && c != '\0';
}

static int
perror_at(struct parser *ps, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
perror_at(struct parser *ps, unsigned line, const char *fmt, ...)
{
	char what[400];
	va_list ap;

	if (ps->failed)
		return -1;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	err_set(ps->err, MF_EUSAGE, "%s:%u: %s", ps->file, line, what);
	ps->failed = 1;
	return -1;
}

/* Reads the next token into *t; returns 0 or -1 (error set). */
static int
lex(struct parser *ps, struct tok *t)
{
	memset(t, 0, sizeof *t);
	for (;;) {
		const char *p = ps->p;
		size_t wlen;
		if (p >= ps->end) {
			t->type = T_EOF;
			t->line = ps->line;
			return 0;
		}
		if (*p == '\0')
			return perror_at(ps, ps->line, "a NUL byte; is this really a fetchmailrc?");
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == ';' || *p == ':' || *p == ',') {
			ps->p++;
			continue;
		}
		if (*p == '\n') {
			ps->line++;
			ps->p++;
			continue;
		}
		if (*p == '\\' && p + 1 < ps->end && p[1] == '\n') {
			ps->line++;
			ps->p += 2;
			continue;
		}
		if (*p == '#') {
			while (ps->p < ps->end && *ps->p != '\n')
				ps->p++;
			continue;
		}
		t->raw = p;
		t->line = ps->line;
		if (*p == '=') {
			ps->p++;
			t->type = T_MAP;
			t->rawlen = 1;
			ps->state = LS_NAME;
			return 0;
		}
		for (wlen = 0; p + wlen < ps->end && word_char(p[wlen]); wlen++)
			;
		if (*p == '"' || *p == '\'') {
			const char *close = memchr(p + 1, *p, (size_t)(ps->end - p - 1));
			if (close != NULL && (size_t)(close - p + 1) >= wlen) {
				t->type = T_STR;
				t->quoted = 1;
				t->s = unescape(p + 1, (size_t)(close - p - 1));
				t->rawlen = (size_t)(close - p + 1);
				for (const char *c = p; c < close; c++)
					ps->line += *c == '\n';
				ps->p = close + 1;
				ps->state = LS_INITIAL;
				return 0;
			}
		}
		t->rawlen = wlen;
		ps->p = p + wlen;
		if (ps->state == LS_NAME) {
			t->type = T_STR;
			t->s = unescape(p, wlen);
			ps->state = LS_INITIAL;
			return 0;
		}
		if (ps->state == LS_AUTH && wlen == 8 && memcmp(p, "password", 8) == 0) {
			static const struct kwdef pw = { "password", K_AUTHTYPE, "password" };
			t->type = T_KW;
			t->kw = &pw;
			ps->state = LS_INITIAL;
			return 0;
		}
		{
			size_t i = p[0] == '-' ? 1 : 0;
			while (i < wlen && isdigit((unsigned char)p[i]))
				i++;
			if (i == wlen && wlen > (p[0] == '-' ? 1u : 0u)) {
				char buf[32];
				if (wlen >= sizeof buf)
					return perror_at(ps, t->line, "the number %.*s is too large", (int)(wlen > 40 ? 40 : wlen), p);
				memcpy(buf, p, wlen);
				buf[wlen] = '\0';
				errno = 0;
				t->num = strtol(buf, NULL, 10);
				if (errno != 0 || t->num > INT_MAX || t->num < INT_MIN)
					return perror_at(ps, t->line, "the number %s is too large", buf);
				t->type = T_NUM;
				return 0;
			}
		}
		for (size_t i = 0; i < sizeof negations / sizeof negations[0]; i++) {
			if (strlen(negations[i]) == wlen && memcmp(negations[i], p, wlen) == 0) {
				t->type = T_KW;
				t->kw = kw_lookup("no", 2);
				t->rawlen = 2;
				ps->p = p + 2; /* the rest is read again, as fetchmail's yyless(2) does */
				return 0;
			}
		}
		t->kw = kw_lookup(p, wlen);
		if (t->kw != NULL) {
			if (t->kw->kw == K_NOISE)
				continue;
			t->type = T_KW;
			switch (t->kw->kw) {
			case K_USER: case K_PASSWORD: case K_IS: case K_TO:
				ps->state = LS_NAME;
				break;
			case K_AUTHENTICATE:
				ps->state = LS_AUTH;
				break;
			case K_AUTHTYPE:
				ps->state = LS_INITIAL;
				break;
			default:
				break;
			}
			return 0;
		}
		t->type = T_STR;
		t->s = unescape(p, wlen);
		return 0;
	}
}

static void
tok_clear(struct tok *t)
{
	if (t->s != NULL)
		free_secret(t->s);
	t->s = NULL;
}

/* The k-th token ahead (0 or 1), read if needed. */
static struct tok *
peek(struct parser *ps, int k)
{
	while (ps->nla <= k) {
		if (ps->failed || lex(ps, &ps->la[ps->nla]) != 0) {
			memset(&ps->la[ps->nla], 0, sizeof ps->la[ps->nla]);
			ps->la[ps->nla].type = T_EOF;
			ps->la[ps->nla].line = ps->line;
		}
		ps->nla++;
	}
	return &ps->la[k];
}

/* Drops the current token; its string, if taken, must have been stolen. */
static void
advance(struct parser *ps)
{
	peek(ps, 0);
	tok_clear(&ps->la[0]);
	ps->la[0] = ps->la[1];
	memset(&ps->la[1], 0, sizeof ps->la[1]);
	ps->nla--;
}

static int
is_kw(struct parser *ps, int k, enum kw kw)
{
	struct tok *t = peek(ps, k);
	return t->type == T_KW && t->kw->kw == kw;
}

/* A token for a message; never the text of a quoted string (it may be a
 * password written in the wrong place). */
static const char *
tok_desc(const struct tok *t, char *buf, size_t len)
{
	switch (t->type) {
	case T_EOF: return "the end of the file";
	case T_MAP: return "'='";
	case T_NUM: snprintf(buf, len, "the number %ld", t->num); return buf;
	case T_KW: snprintf(buf, len, "'%.*s'", (int)(t->rawlen > 40 ? 40 : t->rawlen), t->raw); return buf;
	case T_STR:
		if (t->quoted)
			return "a quoted string";
		snprintf(buf, len, "'");
		for (size_t i = 0, o = 1; i < t->rawlen && i < 40 && o + 6 < len; i++) {
			unsigned char c = (unsigned char)t->raw[i];
			o += (size_t)snprintf(buf + o, len - o, c < 0x20 || c >= 0x7f ? "\\x%02x" : "%c", c);
		}
		snprintf(buf + strlen(buf), len - strlen(buf), "'");
		return buf;
	}
	return "?";
}

static int
unexpected(struct parser *ps, const char *wanted)
{
	struct tok *t = peek(ps, 0);
	char buf[200];
	if (ps->failed)
		return -1;
	if (t->type == T_STR && !t->quoted)
		return perror_at(ps, t->line, "%s where %s was expected (not a keyword of fetchmail)",
		    tok_desc(t, buf, sizeof buf), wanted);
	return perror_at(ps, t->line, "%s where %s was expected", tok_desc(t, buf, sizeof buf), wanted);
}

/* Takes a string token's value (ownership to the caller), or fails. */
static char *
take_string(struct parser *ps, const char *after)
{
	struct tok *t = peek(ps, 0);
	char *s;
	if (t->type != T_STR) {
		char what[80];
		snprintf(what, sizeof what, "a string after '%s'", after);
		unexpected(ps, what);
		return NULL;
	}
	s = t->s;
	t->s = NULL;
	advance(ps);
	return s;
}

static int
take_number(struct parser *ps, const char *after, long *out)
{
	struct tok *t = peek(ps, 0);
	if (t->type != T_NUM) {
		char what[80];
		/* "set daemon = 300": after '=' fetchmail's lexer reads a string */
		if (t->type == T_STR && t->s[0] != '\0' && strspn(t->s, "0123456789") == strlen(t->s)
		    && strlen(t->s) < 10) {
			*out = strtol(t->s, NULL, 10);
			advance(ps);
			return 0;
		}
		snprintf(what, sizeof what, "a number after '%s'", after);
		return unexpected(ps, what);
	}
	*out = t->num;
	advance(ps);
	return 0;
}

static void
list_add(struct fmrc_list *l, char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
	l->v[l->n++] = s;
}

static void
list_free(struct fmrc_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* s as fetchmail would read it back, in double quotes. */
static void
append_quoted(char **text, const char *s)
{
	size_t len = strlen(*text);
	char *out = xmalloc(len + 4 * strlen(s) + 4), *o = out + len;

	memcpy(out, *text, len);
	*o++ = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c < 0x20 || *c == 0x7f || *c == '\\')
			o += sprintf(o, *c == '\\' ? "\\\\" : "\\x%02x", *c);
		else
			*o++ = (char)*c;
	}
	*o++ = '"';
	*o = '\0';
	free(*text);
	*text = out;
}

static struct fmrc_opt *
opt_add(struct fmrc_opts *o, enum kw kw, int neg, unsigned line)
{
	struct fmrc_opt *opt;
	o->v = xreallocarray(o->v, o->n + 1, sizeof *o->v);
	opt = &o->v[o->n++];
	opt->kw = kw_name(kw);
	opt->neg = neg;
	opt->line = line;
	opt->text = xasprintf("%s%s", neg ? "no " : "", kw == K_SET ? "set" : opt->kw);
	return opt;
}

/* An option kept as a comment, whose arguments are strings (nstr: 1, or
 * -1 for one or more) or numbers (nnum likewise), or nothing. */
static int
other_opt(struct parser *ps, struct fmrc_opts *o, enum kw kw, int neg, unsigned line, int nstr, int nnum,
    int secret)
{
	struct fmrc_opt *opt = opt_add(o, kw, neg, line);
	const char *name = opt->kw;
	int n = 0;

	while (nstr != 0) {
		char *s;
		if (n > 0 && peek(ps, 0)->type != T_STR)
			break;
		if ((s = take_string(ps, name)) == NULL)
			return -1;
		if (secret) {
			char *t = xasprintf("%s (not shown)", opt->text);
			free(opt->text);
			opt->text = t;
			free_secret(s);
		} else {
			char *t = xasprintf("%s ", opt->text);
			free(opt->text);
			opt->text = t;
			append_quoted(&opt->text, s);
			free(s);
		}
		n++;
		if (nstr == 1)
			break;
	}
	while (nnum != 0) {
		long v;
		char *t;
		if (n > 0 && peek(ps, 0)->type != T_NUM)
			break;
		if (take_number(ps, name, &v) != 0)
			return -1;
		t = xasprintf("%s %ld", opt->text, v);
		free(opt->text);
		opt->text = t;
		n++;
		if (nnum == 1)
			break;
	}
	return 0;
}

static void
user_init(struct fmrc_user *u, unsigned line)
{
	memset(u, 0, sizeof *u);
	u->line = line;
	u->keep = u->fetchall = u->ssl = u->sslcertck = u->lmtp = -1;
	u->limit = u->fetchlimit = -1;
}

/* A string option that may be given once per user. */
static int
set_string(struct parser *ps, char **field, const char *name)
{
	char *s = take_string(ps, name);
	if (s == NULL)
		return -1;
	free_secret(*field);
	*field = s;
	return 0;
}

/* The list after is/to (and after user ... here): names and a=b mappings. */
static int
mapping_list(struct parser *ps, struct fmrc_user *u, const char *after)
{
	int n = 0;
	while (peek(ps, 0)->type == T_STR) {
		char *a = take_string(ps, after);
		if (peek(ps, 0)->type == T_MAP) {
			char *b, *pair;
			advance(ps);
			if ((b = take_string(ps, "=")) == NULL) {
				free(a);
				return -1;
			}
			pair = xasprintf("%s=%s", a, b);
			free(a);
			free(b);
			list_add(&u->local, pair);
			u->mapped = 1;
		} else if (strcmp(a, "*") == 0) {
			u->wildcard = 1;
			free(a);
		} else {
			list_add(&u->local, a);
		}
		n++;
	}
	if (n == 0) {
		char what[80];
		snprintf(what, sizeof what, "a local name after '%s'", after);
		return unexpected(ps, what);
	}
	return 0;
}

static char *
prependdir(const char *file, const char *dir)
{
	if (file[0] == '\0' || file[0] == '/' || strcmp(file, "-") == 0 || dir == NULL || dir[0] == '\0')
		return xstrdup(file);
	return xasprintf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", file);
}

/* One user option, if the current token starts one: 1 taken, 0 not one, -1 error. */
static int
user_option(struct parser *ps, struct fmrc_user *u)
{
	struct tok *t = peek(ps, 0);
	unsigned line = t->line;
	int neg = 0;
	enum kw kw;

	if (t->type != T_KW)
		return 0;
	kw = t->kw->kw;
	if (kw == K_NO) {
		struct tok *n = peek(ps, 1);
		if (n->type != T_KW)
			return 0;
		switch (n->kw->kw) {
		case K_KEEP: case K_FLUSH: case K_LIMITFLUSH: case K_FETCHALL: case K_REWRITE: case K_FORCECR:
		case K_STRIPCR: case K_PASS8BITS: case K_DROPSTATUS: case K_DROPDELIVERED: case K_MIMEDECODE:
		case K_IDLE: case K_SSL: case K_SSLCERTCK:
			break;
		default:
			return 0;
		}
		neg = 1;
		advance(ps);
		kw = peek(ps, 0)->kw->kw;
	}
	switch (kw) {
	case K_TO:
	case K_IS:
		advance(ps);
		/* "is NAME there" names the login on the server */
		if (peek(ps, 0)->type == T_STR && is_kw(ps, 1, K_THERE)) {
			if (set_string(ps, &u->remote, kw_name(kw)) != 0)
				return -1;
			advance(ps);
			return 1;
		}
		if (mapping_list(ps, u, kw_name(kw)) != 0)
			return -1;
		if (is_kw(ps, 0, K_HERE))
			advance(ps);
		return 1;
	case K_PASSWORD:
		advance(ps);
		u->pw_line = line;
		return set_string(ps, &u->password, "password") == 0 ? 1 : -1;
	case K_PASSWORDFILE:
		advance(ps);
		if (set_string(ps, &u->passwordfile, "passwordfile") != 0)
			return -1;
		{
			char *abs = prependdir(u->passwordfile, ps->dir);
			free(u->passwordfile);
			u->passwordfile = abs;
		}
		return 1;
	case K_FOLDER:
	case K_SMTPHOST: {
		struct fmrc_list *l = kw == K_FOLDER ? &u->folders : &u->smtphosts;
		char *s;
		advance(ps);
		if ((s = take_string(ps, kw_name(kw))) == NULL)
			return -1;
		list_add(l, s);
		while (peek(ps, 0)->type == T_STR)
			list_add(l, take_string(ps, kw_name(kw)));
		return 1;
	}
	case K_MDA:
		advance(ps);
		return set_string(ps, &u->mda, "mda") == 0 ? 1 : -1;
	case K_SMTPNAME:
		advance(ps);
		return set_string(ps, &u->smtpname, "smtpname") == 0 ? 1 : -1;
	case K_SMTPADDRESS:
		advance(ps);
		return set_string(ps, &u->smtpaddress, "smtpaddress") == 0 ? 1 : -1;
	case K_SSLPROTO:
		advance(ps);
		return set_string(ps, &u->sslproto, "sslproto") == 0 ? 1 : -1;
	case K_SSLFINGERPRINT:
		advance(ps);
		return set_string(ps, &u->sslfingerprint, "sslfingerprint") == 0 ? 1 : -1;
	case K_SSLCERTFILE: {
		char *s;
		advance(ps);
		if ((s = take_string(ps, "sslcertfile")) == NULL)
			return -1;
		free(u->sslcertfile);
		u->sslcertfile = prependdir(s, ps->dir);
		free(s);
		return 1;
	}
	case K_LMTP:
		advance(ps);
		u->lmtp = 1;
		return 1;
	case K_KEEP: case K_FETCHALL: case K_SSL: case K_SSLCERTCK: {
		int *f = kw == K_KEEP ? &u->keep : kw == K_FETCHALL ? &u->fetchall : kw == K_SSL ? &u->ssl : &u->sslcertck;
		advance(ps);
		*f = !neg;
		return 1;
	}
	case K_LIMIT:
	case K_FETCHLIMIT:
		advance(ps);
		return take_number(ps, kw_name(kw), kw == K_LIMIT ? &u->limit : &u->fetchlimit) == 0 ? 1 : -1;
	case K_FLUSH: case K_LIMITFLUSH: case K_REWRITE: case K_FORCECR: case K_STRIPCR: case K_PASS8BITS:
	case K_DROPSTATUS: case K_DROPDELIVERED: case K_MIMEDECODE: case K_IDLE:
		advance(ps);
		opt_add(&u->other, kw, neg, line);
		return 1;
	case K_FETCHDOMAINS:
		advance(ps);
		return other_opt(ps, &u->other, kw, 0, line, -1, 0, 0) == 0 ? 1 : -1;
	case K_BSMTP: case K_PRECONNECT: case K_POSTCONNECT: case K_SSLKEY: case K_SSLCERT: case K_SSLCERTPATH:
	case K_SSLCOMMONNAME: case K_PROPERTIES:
		advance(ps);
		return other_opt(ps, &u->other, kw, 0, line, 1, 0, 0) == 0 ? 1 : -1;
	case K_ANTISPAM:
		advance(ps);
		return other_opt(ps, &u->other, kw, 0, line, 0, -1, 0) == 0 ? 1 : -1;
	case K_WARNINGS: case K_FETCHSIZELIMIT: case K_FASTUIDL: case K_BATCHLIMIT: case K_EXPUNGE:
		advance(ps);
		return other_opt(ps, &u->other, kw, 0, line, 0, 1, 0) == 0 ? 1 : -1;
	default:
		return 0;
	}
}

/* One server option, if the current token starts one: 1, 0 or -1. */
static int
server_option(struct parser *ps, struct fmrc_poll *pl)
{
	struct tok *t = peek(ps, 0);
	unsigned line = t->line;
	int neg = 0;
	enum kw kw;

	if (t->type != T_KW)
		return 0;
	kw = t->kw->kw;
	if (kw == K_NO) {
		struct tok *n = peek(ps, 1);
		if (n->type != T_KW)
			return 0;
		switch (n->kw->kw) {
		case K_UIDL: case K_CHECKALIAS: case K_DNS: case K_ENVELOPE: case K_TRACEPOLLS:
			break;
		default:
			return 0;
		}
		neg = 1;
		advance(ps);
		kw = peek(ps, 0)->kw->kw;
	}
	switch (kw) {
	case K_VIA:
		advance(ps);
		return set_string(ps, &pl->via, "via") == 0 ? 1 : -1;
	case K_PROTOCOL:
		advance(ps);
		t = peek(ps, 0);
		if (t->type != T_KW || t->kw->kw != K_PROTO)
			return unexpected(ps, "a protocol (IMAP, POP3, ...) after 'proto'");
		free(pl->proto);
		pl->proto = xstrdup(t->kw->name);
		advance(ps);
		return 1;
	case K_SERVICE:
	case K_PORT:
		advance(ps);
		t = peek(ps, 0);
		free(pl->service);
		pl->service = NULL;
		if (t->type == T_NUM) {
			pl->service = xasprintf("%ld", t->num);
			advance(ps);
			return 1;
		}
		if (kw == K_PORT && !(t->type == T_STR && t->quoted))
			return unexpected(ps, "a port number after 'port'");
		pl->service = take_string(ps, kw_name(kw));
		return pl->service != NULL ? 1 : -1;
	case K_AUTHENTICATE:
		advance(ps);
		t = peek(ps, 0);
		if (t->type != T_KW || t->kw->kw != K_AUTHTYPE)
			return unexpected(ps, "an authentication type (any, password, gssapi, ...) after 'auth'");
		free(pl->auth);
		pl->auth = xstrdup(t->kw->name);
		advance(ps);
		return 1;
	case K_TIMEOUT:
		advance(ps);
		return take_number(ps, "timeout", &pl->timeout) == 0 ? 1 : -1;
	case K_AKA:
	case K_LOCALDOMAINS:
		advance(ps);
		return other_opt(ps, &pl->other, kw, 0, line, -1, 0, 0) == 0 ? 1 : -1;
	case K_PRINCIPAL: case K_ESMTPNAME: case K_QVIRTUAL: case K_INTERFACE: case K_MONITOR: case K_PLUGIN:
	case K_PLUGOUT:
		advance(ps);
		return other_opt(ps, &pl->other, kw, 0, line, 1, 0, 0) == 0 ? 1 : -1;
	case K_ESMTPPASSWORD:
		advance(ps);
		return other_opt(ps, &pl->other, kw, 0, line, 1, 0, 1) == 0 ? 1 : -1;
	case K_INTERVAL:
		advance(ps);
		return other_opt(ps, &pl->other, kw, 0, line, 0, 1, 0) == 0 ? 1 : -1;
	case K_UIDL: case K_CHECKALIAS: case K_DNS: case K_TRACEPOLLS:
		advance(ps);
		opt_add(&pl->other, kw, neg, line);
		return 1;
	case K_ENVELOPE:
		advance(ps);
		if (neg) {
			opt_add(&pl->other, kw, neg, line);
			return 1;
		}
		if (peek(ps, 0)->type == T_NUM) {
			struct fmrc_opt *o;
			long skip = peek(ps, 0)->num;
			char *s;
			advance(ps);
			if ((s = take_string(ps, "envelope")) == NULL)
				return -1;
			o = opt_add(&pl->other, kw, 0, line);
			free(o->text);
			o->text = xasprintf("envelope %ld ", skip);
			append_quoted(&o->text, s);
			free(s);
			return 1;
		}
		return other_opt(ps, &pl->other, kw, 0, line, 1, 0, 0) == 0 ? 1 : -1;
	case K_BADHEADER: {
		struct fmrc_opt *o;
		advance(ps);
		if (!is_kw(ps, 0, K_ACCEPT) && !is_kw(ps, 0, K_REJECT))
			return unexpected(ps, "accept or reject after 'bad-header'");
		o = opt_add(&pl->other, kw, 0, line);
		free(o->text);
		o->text = xasprintf("bad-header %s", is_kw(ps, 0, K_ACCEPT) ? "accept" : "reject");
		advance(ps);
		return 1;
	}
	default:
		return 0;
	}
}

static struct fmrc_user *
user_add(struct fmrc_poll *pl, unsigned line)
{
	pl->users = xreallocarray(pl->users, pl->nusers + 1, sizeof *pl->users);
	user_init(&pl->users[pl->nusers], line);
	return &pl->users[pl->nusers++];
}

/* user NAME [there] | user NAMES here */
static int
userdef(struct parser *ps, struct fmrc_user *u)
{
	advance(ps); /* user */
	if (peek(ps, 0)->type != T_STR)
		return unexpected(ps, "a user name after 'user'");
	if (peek(ps, 1)->type != T_STR && peek(ps, 1)->type != T_MAP && !is_kw(ps, 1, K_HERE)) {
		if (set_string(ps, &u->remote, "user") != 0)
			return -1;
		if (is_kw(ps, 0, K_THERE))
			advance(ps);
		return 0;
	}
	if (mapping_list(ps, u, "user") != 0)
		return -1;
	if (!is_kw(ps, 0, K_HERE))
		return unexpected(ps, "'here' after the local names of 'user'");
	advance(ps);
	return 0;
}

static int
poll_entry(struct parser *ps)
{
	struct fmrc *rc = ps->rc;
	struct fmrc_poll *pl;
	struct tok *t = peek(ps, 0);
	int r;

	rc->polls = xreallocarray(rc->polls, rc->npolls + 1, sizeof *rc->polls);
	pl = &rc->polls[rc->npolls++];
	memset(pl, 0, sizeof *pl);
	pl->line = t->line;
	pl->timeout = -1;
	if (t->kw->kw == K_DEFAULTS) {
		if (rc->npolls > 1)
			return perror_at(ps, t->line, "'defaults' must be the first entry, and come only once (fetchmail "
			    "refuses it elsewhere)");
		pl->defaults = 1;
		pl->name = xstrdup("defaults");
		advance(ps);
	} else {
		pl->skip = t->kw->kw == K_SKIP;
		advance(ps);
		if ((pl->name = take_string(ps, pl->skip ? "skip" : "poll")) == NULL)
			return -1;
	}
	while ((r = server_option(ps, pl)) == 1)
		;
	if (r < 0)
		return -1;
	if (is_kw(ps, 0, K_USER)) {
		while (is_kw(ps, 0, K_USER)) {
			struct fmrc_user *u = user_add(pl, peek(ps, 0)->line);
			if (userdef(ps, u) != 0)
				return -1;
			while ((r = user_option(ps, u)) == 1)
				;
			if (r < 0)
				return -1;
		}
	} else {
		struct fmrc_user *u = user_add(pl, peek(ps, 0)->line);
		while ((r = user_option(ps, u)) == 1)
			;
		if (r < 0)
			return -1;
	}
	t = peek(ps, 0);
	if (t->type == T_EOF || (t->type == T_KW && (t->kw->kw == K_POLL || t->kw->kw == K_SKIP
	    || t->kw->kw == K_DEFAULTS || t->kw->kw == K_SET)))
		return 0;
	if (t->type == T_KW) {
		const char *name = kw_name(t->kw->kw);
		unsigned line = t->line;
		if (t->kw->kw == K_USER)
			return perror_at(ps, line, "'user' after options of the entry's default user; an option that "
			    "comes before the first 'user' is one of the default user, so put it after 'user NAME'");
		if (server_option(ps, pl) == 1)
			return perror_at(ps, line, "server option '%s' after user options; put it before the first "
			    "'user'", name);
	}
	return unexpected(ps, "an option of this entry, 'user', 'poll', 'skip' or 'set'");
}

static int
set_statement(struct parser *ps)
{
	struct fmrc *rc = ps->rc;
	unsigned line = peek(ps, 0)->line;
	struct tok *t;
	struct fmrc_opt *o;
	int neg = 0;
	enum kw kw;

	advance(ps); /* set */
	if (is_kw(ps, 0, K_NO)) {
		neg = 1;
		advance(ps);
	}
	t = peek(ps, 0);
	if (t->type != T_KW)
		return unexpected(ps, "a global option after 'set'");
	kw = t->kw->kw;
	switch (kw) {
	case K_BOUNCEMAIL: case K_SPAMBOUNCE: case K_SOFTBOUNCE: case K_SYSLOG: case K_INVISIBLE: case K_SHOWDOTS:
		advance(ps);
		o = opt_add(&rc->globals, kw, 0, line);
		free(o->text);
		o->text = xasprintf("set %s%s", neg ? "no " : "", kw_name(kw));
		o->neg = neg;
		return 0;
	case K_LOGFILE: case K_IDFILE: case K_PIDFILE: case K_POSTMASTER: case K_PROPERTIES: case K_DAEMON: {
		char *s = NULL;
		long n = 0;
		if (neg)
			return perror_at(ps, line, "'set no %s' is not fetchmail's syntax", kw_name(kw));
		advance(ps);
		if (peek(ps, 0)->type == T_MAP)
			advance(ps);
		if (kw == K_DAEMON ? take_number(ps, "set daemon", &n) != 0 : (s = take_string(ps, kw_name(kw))) == NULL)
			return -1;
		o = opt_add(&rc->globals, kw, 0, line);
		free(o->text);
		if (kw == K_DAEMON) {
			o->text = xasprintf("set daemon %ld", n);
		} else {
			if (kw == K_LOGFILE || kw == K_IDFILE || kw == K_PIDFILE) {
				char *abs = prependdir(s, ps->dir);
				free(s);
				s = abs;
			}
			o->text = xasprintf("set %s ", kw_name(kw));
			append_quoted(&o->text, s);
			free(s);
		}
		return 0;
	}
	default:
		return unexpected(ps, "a global option (daemon, logfile, syslog, ...) after 'set'");
	}
}

static void
user_free(struct fmrc_user *u)
{
	free(u->remote);
	list_free(&u->local);
	free_secret(u->password);
	free(u->passwordfile);
	free(u->mda);
	free(u->sslproto);
	free(u->sslcertfile);
	free(u->sslfingerprint);
	free(u->smtpname);
	free(u->smtpaddress);
	list_free(&u->folders);
	list_free(&u->smtphosts);
	for (size_t i = 0; i < u->other.n; i++)
		free(u->other.v[i].text);
	free(u->other.v);
}

void
fmrc_free(struct fmrc *rc)
{
	if (rc == NULL)
		return;
	for (size_t i = 0; i < rc->globals.n; i++)
		free(rc->globals.v[i].text);
	free(rc->globals.v);
	for (size_t i = 0; i < rc->npolls; i++) {
		struct fmrc_poll *pl = &rc->polls[i];
		free(pl->name);
		free(pl->via);
		free(pl->proto);
		free(pl->service);
		free(pl->auth);
		for (size_t j = 0; j < pl->other.n; j++)
			free(pl->other.v[j].text);
		free(pl->other.v);
		for (size_t j = 0; j < pl->nusers; j++)
			user_free(&pl->users[j]);
		free(pl->users);
	}
	free(rc->polls);
	free(rc);
}

int
fmrc_parse(const char *buf, size_t len, const char *file, const char *dir, struct fmrc **out, struct mf_error *err)
{
	struct parser ps;

	memset(&ps, 0, sizeof ps);
	ps.p = buf;
	ps.end = buf + len;
	ps.line = 1;
	ps.file = file;
	ps.dir = dir;
	ps.err = err;
	ps.rc = xcalloc(1, sizeof *ps.rc);
	*out = NULL;
	while (!ps.failed) {
		struct tok *t = peek(&ps, 0);
		if (t->type == T_EOF)
			break;
		if (t->type == T_KW && t->kw->kw == K_SET) {
			set_statement(&ps);
		} else if (t->type == T_KW && (t->kw->kw == K_POLL || t->kw->kw == K_SKIP || t->kw->kw == K_DEFAULTS)) {
			poll_entry(&ps);
		} else {
			unexpected(&ps, "'poll', 'skip', 'defaults' or 'set'");
		}
	}
	for (int i = 0; i < ps.nla; i++)
		tok_clear(&ps.la[i]);
	if (ps.failed) {
		fmrc_free(ps.rc);
		return MF_EUSAGE;
	}
	*out = ps.rc;
	return 0;
}

/* ---- writing the fetchrc -------------------------------------------- */

/* An account's lines, kept until it is known whether it is commented out. */
struct out {
	char **lines;
	size_t n;
	char *disabled;  /* why the account is commented out, or NULL */
};

/* Longest comment line written; a fetchrc line may have 1022 bytes. */
#define NOTE_WIDTH 76
#define NOTE_WORD_MAX 600

static void
out_add(struct out *o, char *line)
{
	o->lines = xreallocarray(o->lines, o->n + 1, sizeof *o->lines);
	o->lines[o->n++] = line;
}

/* Adds a comment, wrapped, with control bytes shown as \xNN and no line
 * ending in a backslash (which would join the next line to it). */
static void note(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
vnote_to(struct out *o, int indent_first, const char *fmt, va_list ap)
{
	char *raw, *text, *t, *line = NULL;
	size_t len = 0;
	const char *w;
	int first = 1;

	if (vasprintf(&raw, fmt, ap) < 0)
		fatal("out of memory");
	text = xmalloc(4 * strlen(raw) + 1);
	t = text;
	for (const unsigned char *c = (const unsigned char *)raw; *c; c++) {
		if (*c < 0x20 || *c == 0x7f)
			t += sprintf(t, "\\x%02x", *c);
		else
			*t++ = (char)*c;
	}
	*t = '\0';
	free(raw);
	w = text;
	while (*w) {
		size_t wl;
		while (*w == ' ')
			w++;
		if (*w == '\0')
			break;
		wl = strcspn(w, " ");
		if (wl > NOTE_WORD_MAX)
			wl = NOTE_WORD_MAX;
		if (line != NULL && len + 1 + wl > NOTE_WIDTH) {
			if (line[len - 1] == '\\')
				line[len++] = '.', line[len] = '\0';
			out_add(o, line);
			line = NULL;
			first = 0;
		}
		if (line == NULL) {
			const char *lead = first && !indent_first ? "# " : "#   ";
			line = xmalloc(NOTE_WORD_MAX + NOTE_WIDTH + 8);
			len = (size_t)sprintf(line, "%s", lead);
			memcpy(line + len, w, wl);
			len += wl;
		} else {
			line[len++] = ' ';
			memcpy(line + len, w, wl);
			len += wl;
		}
		line[len] = '\0';
		w += wl;
	}
	if (line != NULL) {
		if (line[len - 1] == '\\')
			line[len++] = '.', line[len] = '\0';
		out_add(o, line);
	}
	free(text);
}

static void
note(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vnote_to(o, 0, fmt, ap);
	va_end(ap);
}

/* v as it must follow "key = " in a fetchrc (quoted if need be), or NULL
 * when a fetchrc cannot hold it: iniparser has no escapes, so a value
 * with both kinds of quote and ; or #, a control character, or more than
 * CONFIG_VALUE_MAX bytes cannot be written. */
static char *
ini_value(const char *key, const char *v)
{
	size_t n = strlen(v);
	char *s;
	int quote;

	if (n == 0 || n > CONFIG_VALUE_MAX)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)v; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return NULL;
	quote = strpbrk(v, ";#") != NULL || v[0] == '"' || v[0] == '\'' || v[0] == ' ' || v[n - 1] == ' '
	    || v[n - 1] == '\\';
	if (!quote)
		s = xstrdup(v);
	else if (strchr(v, '"') == NULL)
		s = xasprintf("\"%s\"", v);
	else if (strchr(v, '\'') == NULL)
		s = xasprintf("'%s'", v);
	else
		return NULL;
	if (strlen(key) + 3 + strlen(s) > 1022) {
		free(s);
		return NULL;
	}
	return s;
}

/* Writes "key = value"; returns 0, or -1 with a comment when the value
 * cannot be written (the caller decides what that means). */
static int
key(struct out *o, const char *k, const char *v)
{
	char *s = ini_value(k, v);
	if (s == NULL) {
		note(o, "%s: the value in the fetchmailrc cannot be written in a fetchrc (it is empty, too long, holds "
		    "a control character, or both kinds of quote and ; or #)", k);
		return -1;
	}
	out_add(o, xasprintf("%s = %s", k, s));
	free_secret(s);
	return 0;
}

static void
disable(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
disable(struct out *o, const char *fmt, ...)
{
	va_list ap;
	char *why;
	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0)
		fatal("out of memory");
	va_end(ap);
	if (o->disabled == NULL) {
		o->disabled = why;
	} else {
		char *both = xasprintf("%s; %s", o->disabled, why);
		free(o->disabled);
		free(why);
		o->disabled = both;
	}
}

/* A word a shell takes as it is; anything else in single quotes. */
static char *
sh_quote(const char *s)
{
	size_t n = 2;
	char *out, *o;

	if (s[0] != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-")
	    == strlen(s))
		return xstrdup(s);
	for (const char *c = s; *c; c++)
		n += *c == '\'' ? 4 : 1;
	out = o = xmalloc(n + 1);
	*o++ = '\'';
	for (const char *c = s; *c; c++) {
		if (*c == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *c;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* fetchmail's mda command in mailfetch's terms: %T (fetchmail's local
 * name) becomes local when one is given, else stays mailfetch's %T (the
 * user running it, which is fetchmail's default too); %F stays; every
 * other % is doubled, since mailfetch allows only %T, %F and %%. Quotes
 * right around a %T or %F are dropped (both programs quote the value
 * themselves). NULL when a %T or %F is inside longer quotes. */
enum { MDA_LOCAL = 1, MDA_UNQUOTED = 2, MDA_DOUBLED = 4 };

static char *
mda_translate(const char *cmd, const char *local, int *what)
{
	char *lq = local != NULL ? sh_quote(local) : NULL;
	size_t len = strlen(cmd), n = 0;
	char *out = xmalloc(2 * len + (len / 2 + 1) * (lq != NULL ? strlen(lq) : 0) + 1), quote = 0;

	*what = 0;

	for (const char *p = cmd; *p; p++) {
		if (*p == '%' && (p[1] == 'T' || p[1] == 'F')) {
			int close = 0;
			if (quote != 0) {
				/* only quotes right around it, as in '%F' */
				if (!(p > cmd && p[-1] == quote && p[2] == quote && n > 0 && out[n - 1] == quote)) {
					free(out);
					free(lq);
					return NULL;
				}
				n--;
				quote = 0;
				close = 1;
				*what |= MDA_UNQUOTED;
			}
			p++;
			if (*p == 'T' && lq != NULL) {
				memcpy(out + n, lq, strlen(lq));
				n += strlen(lq);
				*what |= MDA_LOCAL;
			} else {
				out[n++] = '%';
				out[n++] = *p;
			}
			p += close;
			continue;
		}
		if (*p == '%') {
			out[n++] = '%';
			out[n++] = '%';
			*what |= MDA_DOUBLED;
			continue;
		}
		if (quote == 0 && (*p == '\'' || *p == '"'))
			quote = *p;
		else if (quote != 0 && *p == quote)
			quote = 0;
		else if (*p == '\\' && quote != '\'' && p[1] != '\0')
			out[n++] = *p++;
		out[n++] = *p;
	}
	out[n] = '\0';
	free(lq);
	return out;
}

/* What fetchmail's settings with no equivalent mean for mailfetch. */
static const struct {
	const char *kw;
	const char *text;
} no_equivalent[] = {
	{ "aka", "multidrop only; mailfetch delivers all mail of an account to one recipient" },
	{ "localdomains", "multidrop only; mailfetch delivers all mail of an account to one recipient" },
	{ "envelope", "multidrop only; mailfetch delivers all mail of an account to one recipient" },
	{ "qvirtual", "multidrop only; mailfetch delivers all mail of an account to one recipient" },
	{ "dns", "multidrop only; mailfetch delivers all mail of an account to one recipient" },
	{ "checkalias", "multidrop only; mailfetch delivers all mail of an account to one recipient" },
	{ "principal", "Kerberos; mailfetch logs in with a password" },
	{ "esmtpname", "mailfetch does not log in to the SMTP server" },
	{ "esmtppassword", "mailfetch does not log in to the SMTP server" },
	{ "uidl", "POP3 only" },
	{ "interval", "mailfetch polls every account on every run; to poll this one less often, give it a "
	    "config file of its own (-c) and a timer of its own" },
	{ "interface", "mailfetch does not watch network interfaces; start it from a timer or a network hook" },
	{ "monitor", "mailfetch does not watch network interfaces; start it from a timer or a network hook" },
	{ "plugin", "mailfetch connects to the IMAP server itself, over TCP and TLS" },
	{ "plugout", "mailfetch connects to the SMTP or LMTP server itself (smtp, lmtp)" },
	{ "tracepolls", "mailfetch's Received: header (smtp and lmtp) names the IMAP server, not the account" },
	{ "bad-header", "mailfetch delivers every message as the server sends it" },
	{ "flush", "mailfetch never deletes mail it has not delivered; delete_after = DAYS deletes what it "
	    "delivered that many days ago" },
	{ "limitflush", "mailfetch leaves messages over limit on the server, untouched" },
	{ "rewrite", "mailfetch never rewrites addresses in headers" },
	{ "forcecr", "mailfetch writes LF line ends for an MDA, an mbox or a Maildir, and CRLF to SMTP and LMTP" },
	{ "stripcr", "mailfetch writes LF line ends for an MDA, an mbox or a Maildir, and CRLF to SMTP and LMTP" },
	{ "pass8bits", "mailfetch declares 8BITMIME to an SMTP server that offers it" },
	{ "dropstatus", "mailfetch delivers messages unchanged" },
	{ "dropdelivered", "mailfetch delivers messages unchanged" },
	{ "mimedecode", "mailfetch delivers messages unchanged" },
	{ "idle", "idle = yes: new mail is fetched as the server announces it while mailfetch runs with "
	    "--daemon SECONDS (NOTIFY, or IDLE on every folder of the account)" },
	{ "forceidle", "mailfetch uses IDLE only where the server offers it; idle = yes with --daemon SECONDS" },
	{ "fetchdomains", "ETRN and ODMR only" },
	{ "antispam", "a message the SMTP server refuses (5xx) stays on the server and is reported" },
	{ "bsmtp", "mailfetch does not write BSMTP files" },
	{ "preconnect", "mailfetch runs no command before a poll; run it before mailfetch (ExecStartPre= in "
	    "contrib/mailfetch.service)" },
	{ "postconnect", "mailfetch runs no command after a poll; run it after mailfetch (ExecStartPost= in "
	    "contrib/mailfetch.service)" },
	{ "sslkey", "mailfetch has no TLS client certificates" },
	{ "sslcert", "mailfetch has no TLS client certificates" },
	{ "sslcertpath", "mailfetch reads trusted CAs from one file (tls_ca_file), or from the directory in "
	    "SSL_CERT_DIR" },
	{ "sslcommonname", "mailfetch checks the certificate against host; to trust another name, pin the "
	    "certificate with tls_fingerprint = sha256:..." },
	{ "properties", "ignored by fetchmail as well" },
	{ "warnings", "mailfetch reports each message over limit once" },
	{ "fetchsizelimit", "mailfetch learns the sizes with the messages themselves" },
	{ "fastuidl", "POP3 only" },
	{ "batchlimit", "mailfetch uses one SMTP or LMTP session per run" },
	{ "expunge", "mailfetch removes deleted messages with UID EXPUNGE after each batch" },
	{ "postmaster", "mailfetch never bounces mail: what cannot be delivered stays on the server" },
	{ "bouncemail", "mailfetch never bounces mail: what cannot be delivered stays on the server" },
	{ "spambounce", "mailfetch never bounces mail: what cannot be delivered stays on the server" },
	{ "softbounce", "mailfetch never bounces or deletes mail it could not deliver: it stays on the server" },
	{ "idfile", "mailfetch keeps its state in $XDG_STATE_HOME/mailfetch (see mailfetch(1))" },
	{ "pidfile", "mailfetch's run lock is $XDG_STATE_HOME/mailfetch/lock (--lockfile)" },
	{ "invisible", "mailfetch's Received: header always names it" },
	{ "showdots", "mailfetch -v prints one line per message" },
	{ "syslog", "run mailfetch with --syslog (facility mail); under systemd its standard error goes to "
	    "the journal anyway" },
	{ "logfile", "run mailfetch with --logfile FILE (timestamped lines; the daemon reopens it on SIGHUP)" },
};

static const char *
no_equivalent_text(const char *kw)
{
	for (size_t i = 0; i < sizeof no_equivalent / sizeof no_equivalent[0]; i++)
		if (strcmp(no_equivalent[i].kw, kw) == 0)
			return no_equivalent[i].text;
	return "mailfetch has no equivalent";
}

static int
opts_have(const struct fmrc_opts *o, const char *kw)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->v[i].kw, kw) == 0)
			return 1;
	return 0;
}

/* The comments for settings with no equivalent; those of the defaults
 * entry only where the account does not set the same keyword. */
static void
note_others(struct out *o, const struct fmrc_opts *own, const struct fmrc_opts *dflt)
{
	for (size_t i = 0; i < own->n; i++) {
		const struct fmrc_opt *op = &own->v[i];
		if (op->neg && (strcmp(op->kw, "rewrite") == 0 || strcmp(op->kw, "dropstatus") == 0
		    || strcmp(op->kw, "dropdelivered") == 0 || strcmp(op->kw, "mimedecode") == 0
		    || strcmp(op->kw, "idle") == 0 || strcmp(op->kw, "flush") == 0 || strcmp(op->kw, "limitflush") == 0
		    || strcmp(op->kw, "forcecr") == 0 || strcmp(op->kw, "pass8bits") == 0
		    || strcmp(op->kw, "tracepolls") == 0 || strcmp(op->kw, "uidl") == 0))
			note(o, "%s (line %u): what mailfetch does anyway", op->text, op->line);
		else if (!op->neg && strcmp(op->kw, "idle") == 0) {
			key(o, "idle", "yes");
			note(o, "%s (line %u): %s", op->text, op->line, no_equivalent_text(op->kw));
		} else
			note(o, "%s (line %u): %s", op->text, op->line, no_equivalent_text(op->kw));
	}
	if (dflt == NULL)
		return;
	for (size_t i = 0; i < dflt->n; i++) {
		const struct fmrc_opt *op = &dflt->v[i];
		if (opts_have(own, op->kw))
			continue;
		if (!op->neg && strcmp(op->kw, "idle") == 0)
			key(o, "idle", "yes");
		note(o, "%s (defaults, line %u): %s", op->text, op->line, no_equivalent_text(op->kw));
	}
}

/* The port fetchmail would use for a service name, or 0. */
static long
service_port(const char *s)
{
	static const struct { const char *name; long port; } svc[] = {
		{ "imap", 143 }, { "imap2", 143 }, { "imap4", 143 }, { "imaps", 993 },
		{ "pop3", 110 }, { "pop-3", 110 }, { "pop3s", 995 }, { "pop2", 109 }, { "kpop", 1109 },
	};
	char *end;
	long n;

	if (s[0] >= '0' && s[0] <= '9') {
		n = strtol(s, &end, 10);
		return *end == '\0' && n >= 1 && n <= 65535 ? n : 0;
	}
	for (size_t i = 0; i < sizeof svc / sizeof svc[0]; i++)
		if (strcasecmp(svc[i].name, s) == 0)
			return svc[i].port;
	return 0;
}

/* An smtphost entry of fetchmail (HOST, HOST/PORT or /SOCKET) as mailfetch's
 * HOST[:PORT] (an IPv6 address in brackets); NULL if it is a socket. */
static char *
smtp_hostport(const char *h, int *has_port)
{
	const char *slash = strrchr(h, '/');
	char *host, *r;

	*has_port = 0;
	if (h[0] == '/')
		return NULL;
	host = slash ? xstrndup(h, (size_t)(slash - h)) : xstrdup(h);
	if (strchr(host, ':') != NULL && host[0] != '[') {
		char *b = xasprintf("[%s]", host);
		free(host);
		host = b;
	}
	if (slash != NULL) {
		r = xasprintf("%s:%s", host, slash + 1);
		*has_port = 1;
	} else {
		r = xstrdup(host);
	}
	free(host);
	return r;
}

struct acct {
	const struct fmrc_poll *pl, *dp;
	const struct fmrc_user *u, *du;
	char *name;
};

#define USTR(f) (a->u->f != NULL ? a->u->f : a->du != NULL ? a->du->f : NULL)
#define UINT(f) (a->u->f >= 0 ? a->u->f : a->du != NULL ? a->du->f : -1)
#define ULIST(f) (a->u->f.n > 0 ? &a->u->f : a->du != NULL && a->du->f.n > 0 ? &a->du->f : NULL)
#define PSTR(f) (a->pl->f != NULL ? a->pl->f : a->dp != NULL ? a->dp->f : NULL)

static void
emit_delivery(const struct acct *a, const struct fmrc_emit_opts *eo, struct out *o, const char *local)
{
	const char *mda = USTR(mda), *smtpname = USTR(smtpname), *smtpaddress = USTR(smtpaddress);
	const struct fmrc_list *hosts = ULIST(smtphosts);
	int lmtp = UINT(lmtp) == 1, has_port = 0, smtp = 0;
	char *hp = NULL;

	if (mda != NULL) {
		int what;
		char *m = mda_translate(mda, local, &what);
		key(o, "deliver", "mda");
		if (m == NULL) {
			note(o, "mda (line %u): %%T or %%F inside quotes in the command; mailfetch quotes their values "
			    "itself and refuses quotes around them: write them bare", a->u->line);
			disable(o, "the mda command needs editing");
		} else {
			if (key(o, "mda", m) != 0)
				disable(o, "the mda command cannot be written in a fetchrc");
			if (what & MDA_LOCAL)
				note(o, "mda: %%T replaced by the local name %s (mailfetch's %%T is the user running it)", local);
			if (what & MDA_UNQUOTED)
				note(o, "mda: quotes around %%T or %%F dropped (mailfetch quotes their values itself)");
			if (what & MDA_DOUBLED)
				note(o, "mda: %% doubled (for mailfetch, %%%% is a %%)");
			if (local != NULL && !(what & MDA_LOCAL))
				note(o, "is %s: the local name is not used by this command (fetchmail used it only for %%T "
				    "and SMTP)", local);
			free(m);
		}
		if (hosts != NULL)
			note(o, "smtphost: not used, since fetchmail hands the mail to the mda");
		if (lmtp)
			note(o, "lmtp: not used, since fetchmail hands the mail to the mda");
		return;
	}
	if (hosts != NULL && hosts->v[0][0] == '/') {
		key(o, "deliver", "lmtp");
		key(o, "lmtp", hosts->v[0]);
		smtp = 1;
	} else if (lmtp) {
		if (hosts == NULL || (hp = smtp_hostport(hosts->v[0], &has_port)) == NULL || !has_port) {
			note(o, "lmtp: fetchmail needs smtphost HOST/PORT (or a socket path) with lmtp, and so does "
			    "mailfetch (lmtp = HOST:PORT or a socket path)");
			disable(o, "lmtp without a port");
			free(hp);
			return;
		}
		key(o, "deliver", "lmtp");
		key(o, "lmtp", hp);
		smtp = 1;
	} else {
		int bsmtp = opts_have(&a->u->other, "bsmtp") || (a->du != NULL && opts_have(&a->du->other, "bsmtp"));
		if (bsmtp && hosts == NULL) {
			disable(o, "bsmtp: mailfetch does not write BSMTP files; choose deliver = mbox, maildir, mda or "
			    "smtp");
		}
		if (hosts != NULL)
			hp = smtp_hostport(hosts->v[0], &has_port);
		key(o, "deliver", "smtp");
		key(o, "smtp", hp != NULL ? hp : "localhost:25");
		if (hosts == NULL)
			note(o, "deliver: with neither mda nor smtphost, fetchmail forwards the mail to the SMTP server on "
			    "localhost; so does this");
		smtp = 1;
	}
	if (hosts != NULL && hosts->n > 1) {
		char *rest = xstrdup("");
		for (size_t i = 1; i < hosts->n; i++) {
			char *r = xasprintf("%s %s", rest, hosts->v[i]);
			free(rest);
			rest = r;
		}
		note(o, "smtphost: mailfetch has no list of servers to try in turn; it uses the first only, not%s", rest);
		free(rest);
	}
	free(hp);
	if (!smtp)
		return;
	if (smtpname != NULL) {
		key(o, "recipient", smtpname);
		if (smtpaddress != NULL)
			note(o, "smtpaddress: not used, since smtpname gives the whole address");
	} else if (local != NULL) {
		char *r = smtpaddress != NULL ? xasprintf("%s@%s", local, smtpaddress) : xstrdup(local);
		key(o, "recipient", r);
		free(r);
	} else if (smtpaddress != NULL) {
		char *r = xasprintf("%s@%s", eo->local_user, smtpaddress);
		key(o, "recipient", r);
		free(r);
	}
}

static void
emit_account(const struct acct *a, const struct fmrc_emit_opts *eo, struct out *o)
{
	const char *proto = PSTR(proto), *via = PSTR(via), *svc = PSTR(service), *auth = PSTR(auth);
	const char *sslproto = USTR(sslproto), *remote = USTR(remote), *password = USTR(password);
	const char *passwordfile = USTR(passwordfile), *certfile = USTR(sslcertfile), *fp = USTR(sslfingerprint);
	const struct fmrc_list *folders = ULIST(folders), *locals = ULIST(local);
	const char *host = via != NULL ? via : a->pl->name, *local = NULL;
	int ssl = UINT(ssl), certck = UINT(sslcertck), keep = UINT(keep), fetchall = UINT(fetchall);
	long port = 0, limit = UINT(limit), fetchlimit = UINT(fetchlimit);
	long timeout = a->pl->timeout >= 0 ? a->pl->timeout : a->dp != NULL ? a->dp->timeout : -1;
	int wildcard = a->u->local.n > 0 || a->u->wildcard ? a->u->wildcard : a->du != NULL && a->du->wildcard;
	int mapped = a->u->local.n > 0 ? a->u->mapped : a->du != NULL && a->du->mapped;

	note(o, "from: %s %s (line %u)%s%s", a->pl->skip ? "skip" : "poll", a->pl->name, a->pl->line,
	    USTR(remote) != NULL ? ", user " : "", USTR(remote) != NULL ? USTR(remote) : "");
	if (a->pl->skip)
		disable(o, "skip: fetchmail polls this entry only when it is named on its command line; uncomment it "
		    "to poll it on every run, or move it to a config file of its own for -c");
	if (proto != NULL && strcmp(proto, "IMAP") == 0) {
		key(o, "protocol", "imap");
	} else if (proto != NULL && strcmp(proto, "AUTO") == 0) {
		note(o, "proto AUTO: fetchmail tried IMAP, then POP3; mailfetch speaks IMAP");
	} else if (proto != NULL) {
		note(o, "proto %s: mailfetch speaks IMAP only (POP3 is not supported yet); if the server offers "
		    "IMAP too, uncomment this account and check port and tls", proto);
		disable(o, "proto %s", proto);
	}
	if (key(o, "host", host) != 0)
		disable(o, "the host name cannot be written");
	if (via != NULL)
		note(o, "via: the server to connect to; the account is named after the poll name %s", a->pl->name);

	if (svc != NULL && (port = service_port(svc)) == 0)
		note(o, "service %s: not a port that mailfetch knows; set port", svc);
	if (port == 0)
		port = ssl == 1 ? 993 : 143;
	{
		char buf[16];
		snprintf(buf, sizeof buf, "%ld", port);
		key(o, "port", buf);
	}
	if (ssl == 1) {
		key(o, "tls", "implicit");
	} else {
		key(o, "tls", "starttls");
		if (sslproto != NULL && sslproto[0] == '\0')
			note(o, "sslproto \"\": fetchmail did not use TLS here, and sent the password in the clear; "
			    "mailfetch requires STARTTLS: if the server really has none, set tls = none and "
			    "allow_plaintext = yes");
		else if (sslproto == NULL)
			note(o, "tls: fetchmail used STARTTLS when the server offered it; mailfetch requires it");
	}
	if (ssl == 0)
		note(o, "no ssl: TLS from the first byte is off; as above");
	if (sslproto != NULL && sslproto[0] != '\0') {
		if (strcasecmp(sslproto, "TLS1.3") == 0 || strcasecmp(sslproto, "TLS1.3+") == 0) {
			key(o, "tls_min_version", "1.3");
		} else if (strcasecmp(sslproto, "TLS1.2+") == 0 || strcasecmp(sslproto, "TLS1.2") == 0) {
			key(o, "tls_min_version", "1.2");
			if (strcasecmp(sslproto, "TLS1.2") == 0)
				note(o, "sslproto \"%s\": mailfetch also accepts TLS 1.3", sslproto);
		} else {
			note(o, "sslproto \"%s\": mailfetch accepts TLS 1.2 and newer only", sslproto);
		}
	}
	if (certck == 1)
		note(o, "sslcertck: mailfetch always verifies the certificate");
	else if (certck == 0)
		note(o, "no sslcertck: mailfetch always verifies the certificate; to trust a self-signed one, pin it "
		    "with tls_fingerprint = sha256:... (see fp below or fetchrc(5))");
	if (certfile != NULL && key(o, "tls_ca_file", certfile) == 0)
		note(o, "tls_ca_file: from sslcertfile; it replaces the system's CAs, as in fetchmail");
	if (fp != NULL)
		note(o, "sslfingerprint \"%s\": an MD5 fingerprint, which mailfetch cannot use; it pins the SHA-256 "
		    "fingerprint instead: openssl s_client -connect %s:%ld%s </dev/null 2>/dev/null | openssl x509 "
		    "-noout -fingerprint -sha256 prints it; then set tls_fingerprint = sha256:DIGITS",
		    fp, host, port, ssl == 1 ? "" : " -starttls imap");

	if (remote == NULL) {
		remote = eo->local_user;
		note(o, "user: not given; fetchmail logs in with your local login name");
	}
	if (key(o, "user", remote) != 0)
		disable(o, "the user name cannot be written");
	if (password != NULL) {
		if (key(o, "password", password) == 0)
			note(o, "password: this file must stay mode 600; better, keep the password in the Secret Service "
			    "with mailfetch --store-password %s and set password_store = secret instead", a->name);
		else
			disable(o, "the password cannot be written in a fetchrc; store it with mailfetch --store-password %s "
			    "and set password_store = secret", a->name);
	} else if (passwordfile != NULL) {
		char *q = sh_quote(passwordfile), *cmd = xasprintf("cat %s", q);
		if (key(o, "password_command", cmd) == 0)
			note(o, "password_command: from passwordfile; mailfetch takes the first line");
		else
			disable(o, "the passwordfile name cannot be written");
		free(q);
		free(cmd);
	} else {
		char *h = sh_quote(host), *u = sh_quote(remote);
		char *cmd = xasprintf("secret-tool lookup host %s user %s", h, u);
		if (key(o, "password_command", cmd) == 0)
			note(o, "password: not in the fetchmailrc (fetchmail asked for it, or read ~/.netrc); store it "
			    "once with mailfetch --store-password %s (or secret-tool store --label=mailfetch host %s user "
			    "%s), which this command reads back; password_store = secret does the same without a command",
			    a->name, h, u);
		else
			disable(o, "no password source could be written");
		free(h);
		free(u);
		free(cmd);
	}
	if (auth != NULL) {
		if (strcmp(auth, "any") == 0 || strcmp(auth, "password") == 0) {
			key(o, "auth", "auto");
		} else {
			note(o, "auth %s: mailfetch logs in with a password only (SCRAM, PLAIN or LOGIN: auth = auto)", auth);
			if (strcmp(auth, "ssh") == 0 || strcmp(auth, "implicit") == 0)
				disable(o, "auth %s: mailfetch always logs in", auth);
		}
	}
	if (timeout > 0 && timeout <= 3600) {
		char buf[16];
		snprintf(buf, sizeof buf, "%ld", timeout);
		key(o, "timeout", buf);
	} else if (timeout > 3600) {
		key(o, "timeout", "3600");
		note(o, "timeout %ld: mailfetch's longest is 3600 seconds", timeout);
	} else if (timeout == 0) {
		note(o, "timeout 0: fetchmail waited for ever; mailfetch always has a timeout (default 60 seconds)");
	}

	if (folders != NULL) {
		char *list = xstrdup("");
		int bad = 0;
		for (size_t i = 0; i < folders->n; i++) {
			const char *f = folders->v[i];
			char *l;
			if (f[0] == '\0' || strchr(f, ',') != NULL || f[0] == ' ' || f[strlen(f) - 1] == ' ') {
				note(o, "folder \"%s\": mailfetch cannot name a folder with a comma or blanks at its ends in "
				    "folders", f);
				bad = 1;
				continue;
			}
			l = xasprintf("%s%s%s", list, list[0] ? ", " : "", f);
			free(list);
			list = l;
		}
		if (list[0] == '\0' || key(o, "folders", list) != 0 || bad)
			disable(o, "a folder name needs editing");
		free(list);
	}
	if (fetchall == 1)
		key(o, "fetch", "all");
	else if (fetchall == 0)
		key(o, "fetch", "unseen");
	if (keep == 1) {
		key(o, "keep", "yes");
	} else {
		key(o, "keep", "no");
		if (keep < 0)
			note(o, "keep: not given; fetchmail deletes what it delivered, and so will this (mailfetch's own "
			    "default is keep = yes)");
	}
	if (limit > 0 && limit <= 2047L * 1024 * 1024) {
		char buf[16];
		snprintf(buf, sizeof buf, "%ld", limit);
		key(o, "limit", buf);
	} else if (limit > 0) {
		note(o, "limit %ld: mailfetch's largest limit is 2047M", limit);
	} else if (limit == 0) {
		note(o, "limit 0: no limit, as in mailfetch");
	}
	if (fetchlimit > 0 && fetchlimit <= 1000000) {
		char buf[16];
		snprintf(buf, sizeof buf, "%ld", fetchlimit);
		key(o, "fetch_limit", buf);
		if (folders != NULL && folders->n > 1)
			note(o, "fetch_limit: per folder in mailfetch, per poll in fetchmail");
	} else if (fetchlimit > 1000000) {
		key(o, "fetch_limit", "1000000");
		note(o, "fetchlimit %ld: mailfetch's largest is 1000000", fetchlimit);
	} else if (fetchlimit == 0) {
		note(o, "fetchlimit 0: no limit, as in mailfetch");
	}

	if (wildcard || mapped || (locals != NULL && locals->n > 1)) {
		note(o, "multidrop: fetchmail sorted this mailbox's messages to several local names by their headers; "
		    "mailfetch delivers all mail of an account to one recipient");
		disable(o, "multidrop (several local names, a mapping or *)");
	} else if (locals != NULL) {
		local = locals->v[0];
	}
	emit_delivery(a, eo, o, local);
	if (a->pl->other.n > 0 || a->u->other.n > 0 || (a->dp != NULL && a->dp->other.n > 0)
	    || (a->du != NULL && a->du->other.n > 0)) {
		note_others(o, &a->pl->other, a->dp != NULL ? &a->dp->other : NULL);
		note_others(o, &a->u->other, a->du != NULL ? &a->du->other : NULL);
	}
	if (opts_have(&a->pl->other, "plugin") || (a->dp != NULL && opts_have(&a->dp->other, "plugin")))
		disable(o, "plugin: mailfetch connects to the server itself, over TCP and TLS");
}

/* Lower case, letters, digits, '.', '_' and '-' only. */
static char *
section_base(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;
	for (const unsigned char *c = (const unsigned char *)s; *c && o - out < 60; c++) {
		int ch = tolower(*c);
		if (isalnum(ch) && ch < 0x80)
			*o++ = (char)ch;
		else if (ch == '.' || ch == '_' || ch == '-')
			*o++ = (char)ch;
		else if (o > out && o[-1] != '-')
			*o++ = '-';
	}
	while (o > out && o[-1] == '-')
		o--;
	*o = '\0';
	if (out[0] == '\0') {
		free(out);
		out = xstrdup("account");
	}
	return out;
}

static void
global_note(struct out *o, const struct fmrc_opt *g)
{
	if (strcmp(g->kw, "daemon") == 0)
		note(o, "%s (line %u): run mailfetch --daemon %s (contrib/mailfetch-daemon.service runs it under "
		    "systemd), or from a timer (contrib/mailfetch.timer) or cron", g->text, g->line,
		    g->text + strlen("set daemon "));
	else if (g->neg && (strcmp(g->kw, "syslog") == 0 || strcmp(g->kw, "invisible") == 0
	    || strcmp(g->kw, "showdots") == 0))
		note(o, "%s (line %u): what mailfetch does anyway", g->text, g->line);
	else
		note(o, "%s (line %u): %s", g->text, g->line, no_equivalent_text(g->kw));
}

int
fmrc_emit(const struct fmrc *rc, const struct fmrc_emit_opts *eo, FILE *fp, struct fmrc_emit_result *res)
{
	struct acct *accts = NULL;
	size_t nacct = 0;
	const struct fmrc_poll *dp = NULL;
	struct out head = { 0 };

	memset(res, 0, sizeof *res);
	fprintf(fp, "# fetchrc for mailfetch, converted from %s by mailfetch --import-fetchmailrc.\n"
	    "# Settings that mailfetch has no equivalent for are kept as comments next to\n"
	    "# the account they belong to.  Check it with mailfetch --check-config -c FILE.\n", eo->source);
	for (size_t i = 0; i < rc->globals.n; i++)
		global_note(&head, &rc->globals.v[i]);
	if (rc->npolls > 0 && rc->polls[0].defaults) {
		dp = &rc->polls[0];
		note(&head, "defaults (line %u): its settings are written into every account below", dp->line);
	}
	for (size_t i = 0; i < head.n; i++) {
		fprintf(fp, "%s%s\n", i == 0 ? "\n" : "", head.lines[i]);
		free(head.lines[i]);
	}
	free(head.lines);

	for (size_t i = 0; i < rc->npolls; i++) {
		const struct fmrc_poll *pl = &rc->polls[i];
		if (pl->defaults)
			continue;
		for (size_t j = 0; j < pl->nusers; j++) {
			accts = xreallocarray(accts, nacct + 1, sizeof *accts);
			accts[nacct] = (struct acct){ pl, dp, &pl->users[j],
				dp != NULL && dp->nusers > 0 ? &dp->users[0] : NULL, NULL };
			nacct++;
		}
	}
	/* Names: the poll name; with the login when two accounts would share it. */
	for (size_t i = 0; i < nacct; i++) {
		char *base = section_base(accts[i].pl->name);
		int shared = accts[i].pl->nusers > 1;
		for (size_t k = 0; k < nacct && !shared; k++) {
			char *other = k != i ? section_base(accts[k].pl->name) : NULL;
			shared = other != NULL && strcmp(other, base) == 0;
			free(other);
		}
		if (shared) {
			const struct acct *a = &accts[i];
			const char *r = USTR(remote) != NULL ? USTR(remote) : eo->local_user;
			char *ru = section_base(r), *both = xasprintf("%s-%s", base, ru);
			free(ru);
			free(base);
			base = both;
		}
		{
			char *cand = xstrdup(base);
			for (int n = 2;; n++) {
				int clash = strcmp(cand, "defaults") == 0;
				for (size_t k = 0; k < i && !clash; k++)
					clash = strcmp(accts[k].name, cand) == 0;
				if (!clash)
					break;
				free(cand);
				cand = xasprintf("%s-%d", base, n);
			}
			free(base);
			accts[i].name = cand;
		}
	}
	for (size_t i = 0; i < nacct; i++) {
		const struct acct *a = &accts[i];
		struct out o = { 0 };
		const char *r = USTR(remote);

		emit_account(a, eo, &o);
		fputc('\n', fp);
		if (o.disabled != NULL) {
			struct out d = { 0 };
			note(&d, "COMMENTED OUT: %s.", o.disabled);
			for (size_t k = 0; k < d.n; k++) {
				fprintf(fp, "%s\n", d.lines[k]);
				free(d.lines[k]);
			}
			free(d.lines);
			log_warn(NULL, "%s:%u: %s %s%s%s: commented out: %s", eo->source, a->pl->line,
			    a->pl->skip ? "skip" : "poll", a->pl->name, r ? ", user " : "", r ? r : "", o.disabled);
			res->disabled++;
		}
		fprintf(fp, "%s[%s]\n", o.disabled ? "#" : "", a->name);
		for (size_t k = 0; k < o.n; k++) {
			fprintf(fp, "%s%s\n", o.disabled && o.lines[k][0] != '#' ? "#" : "", o.lines[k]);
			free_secret(o.lines[k]);
		}
		free(o.lines);
		free(o.disabled);
		res->accounts++;
	}
	for (size_t i = 0; i < nacct; i++)
		free(accts[i].name);
	free(accts);
	fflush(fp);
	return ferror(fp) ? -1 : 0;
}

/* ---- the command ---------------------------------------------------- */

/* fetchmail's local name: $FETCHMAILUSER, $LOGNAME, $USER, or the
 * password database's name for our uid. */
static char *
local_user(void)
{
	static const char *const vars[] = { "FETCHMAILUSER", "LOGNAME", "USER" };
	struct passwd *pw;

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v != NULL && v[0] != '\0')
			return xstrdup(v);
	}
	pw = getpwuid(getuid());
	return xstrdup(pw != NULL ? pw->pw_name : "root");
}

/* The whole file at path, or NULL with the error logged. */
static char *
read_rc(const char *path, size_t *lenp)
{
	int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct mf_error err;
	struct stat st;
	char *buf;
	int rc;

	if (fd < 0) {
		log_error(NULL, "%s: cannot open: %s; name the fetchmailrc after --import-fetchmailrc", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && strcmp(path, "-") != 0)) {
		log_error(NULL, "%s: not a regular file; name the fetchmailrc after --import-fetchmailrc", path);
		close(fd);
		return NULL;
	}
	rc = config_read_text(fd, path, "fetchmailrc", &buf, lenp, &err);
	close(fd);
	if (rc != 0) {
		log_error(NULL, "%s", err.msg);
		return NULL;
	}
	return buf;
}

/* The directory of path, absolute: fetchmail takes relative file names in
 * the rc file against it. */
static char *
rc_dir(const char *path)
{
	const char *slash = strcmp(path, "-") == 0 ? NULL : strrchr(path, '/');
	char *dir = slash == NULL ? xstrdup(".") : slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
	char cwd[4096];

	if (dir[0] != '/' && getcwd(cwd, sizeof cwd) != NULL) {
		char *abs = strcmp(dir, ".") == 0 ? xstrdup(cwd) : xasprintf("%s/%s", cwd, dir);
		free(dir);
		dir = abs;
	}
	return dir;
}

/* Writes text to outpath: a temporary file in the same directory (mode
 * 0600 from the start), flushed, then linked to its name, which fails if
 * that exists: an existing file is never replaced. */
static int
write_output(const char *outpath, const char *text, size_t len)
{
	char *dir = rc_dir(outpath), *tmp = xasprintf("%s/.mailfetch-import.XXXXXX", dir);
	int fd, rc = MF_EUSAGE;
	size_t off = 0;

	fd = mkstemp(tmp);
	if (fd < 0) {
		log_error(NULL, "%s: cannot create a file in %s: %s", outpath, dir, strerror(errno));
		goto out;
	}
	(void)fchmod(fd, 0600);
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error(NULL, "%s: cannot write: %s", outpath, strerror(errno));
			close(fd);
			unlink(tmp);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		log_error(NULL, "%s: cannot write: %s", outpath, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (link(tmp, outpath) < 0) {
		if (errno == EEXIST)
			log_error(NULL, "%s: exists; mailfetch does not replace it: name another file, or remove it first",
			    outpath);
		else
			log_error(NULL, "%s: cannot create: %s", outpath, strerror(errno));
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	rc = 0;
out:
	free(tmp);
	free(dir);
	return rc;
}

int
fmrc_import(const char *rcpath, const char *outpath)
{
	struct fmrc *rc = NULL;
	struct mf_error err = { 0 };
	struct fmrc_emit_result res;
	struct fmrc_emit_opts eo;
	char *path, *dir, *buf, *text = NULL, *user;
	size_t len = 0, textlen = 0;
	FILE *mem;
	int status = 0;

	if (rcpath != NULL) {
		path = xstrdup(rcpath);
	} else {
		const char *fh = getenv("FETCHMAILHOME"), *home = getenv("HOME");
		struct stat st;
		if (fh != NULL && stat(fh, &st) == 0 && S_ISDIR(st.st_mode))
			path = xasprintf("%s/fetchmailrc", fh);
		else
			path = xasprintf("%s/.fetchmailrc", home != NULL ? home : "");
	}
	if ((buf = read_rc(path, &len)) == NULL) {
		free(path);
		return MF_EUSAGE;
	}
	dir = rc_dir(path);
	if (fmrc_parse(buf, len, path, dir, &rc, &err) != 0) {
		log_error(NULL, "%s; see fetchmail(1) for its syntax", err.msg);
		status = err.code;
		goto out;
	}
	user = local_user();
	eo.source = path;
	eo.local_user = user;
	mem = open_memstream(&text, &textlen);
	if (mem == NULL)
		fatal("out of memory");
	fmrc_emit(rc, &eo, mem, &res);
	if (fclose(mem) != 0)
		fatal("out of memory");
	free(user);
	if (res.accounts == res.disabled)
		log_warn(NULL, "%s: %s; the fetchrc has none to poll", path,
		    res.accounts == 0 ? "no poll entry" : "no account could be converted (see the comments)");
	if (outpath != NULL) {
		status = write_output(outpath, text, textlen);
	} else {
		fwrite(text, 1, textlen, stdout);
		if (fflush(stdout) != 0) {
			log_error(NULL, "cannot write to standard output: %s", strerror(errno));
			status = MF_EUSAGE;
		}
	}
	if (text != NULL)
		wipe(text, textlen);
	free(text);
out:
	fmrc_free(rc);
	free_secret(buf);
	free(dir);
	free(path);
	return status;
}
