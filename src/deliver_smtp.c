/* deliver_smtp.c: hand each message to an SMTP or LMTP server.
 *
 * One session for the account's run, opened at its first message and
 * ended with QUIT at close: greeting, EHLO (LHLO), and to a server that is
 * not on a loopback address STARTTLS (verified as for IMAP) and EHLO
 * again.  Each message is one transaction: MAIL FROM (the message's
 * Return-Path, else <>), RCPT TO (recipient), DATA, sent together when the
 * server offers PIPELINING (an LMTP server always does, RFC 2033), then a
 * Received: header of ours and the message with CRLF line ends and
 * dot-stuffing, then the reply to its end (LMTP: one per accepted
 * recipient).  A server that pipelines and offers CHUNKING gets MAIL
 * FROM, RCPT TO and BDAT n LAST in one write with the message (no
 * dot-stuffing), and the replies after it.  A 2xx to the end means the
 * server has the message: it is delivered at once (durable_per_message),
 * commit has nothing to do.  A
 * 4xx, a session that cannot be set up, a connection lost or a server
 * that stalls (the account's timeout and conn's low-speed rule) is
 * temporary: nothing more is delivered this run.  A 5xx refuses only
 * this message; the transaction is reset (RSET) and the next one may go
 * through.  A connection lost after the message's last byte and before
 * the reply leaves it on the IMAP server although the SMTP server may
 * have it: the next run can deliver it twice, as with any SMTP client. */
#include "autoconfig.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "deliver.h"
#include "mf_limits.h"
#include "net.h"
#include "signals.h"
#include "xmalloc.h"

/* Limits of what a server may send us, and of what we send. */
#define SMTP_LINE_MAX        4096u /* one reply line (RFC 5321 asks for 512) */
#define SMTP_REPLY_LINES_MAX 128u  /* lines of one multi-line reply */
#define SMTP_TEXT_SHOWN      200u  /* bytes of a reply's text kept for an error line */
#define SMTP_PATH_MAX        256u  /* an envelope address (RFC 5321, 4.5.3.1.3) */
#define SMTP_KEPT_MAX        (64u * 1024) /* a transaction kept to send again: larger ones wait for replies */
#define SMTP_KEPT_PIECE      4096u /* read from the spool at a time into it (wire_feed asks room for twice) */

enum smtp_cap {
	CAP_PIPELINING = 1 << 0,
	CAP_SIZE = 1 << 1,
	CAP_8BITMIME = 1 << 2,
	CAP_SMTPUTF8 = 1 << 3,
	CAP_STARTTLS = 1 << 4,
	CAP_CHUNKING = 1 << 5,
};

/* The steps of a session, each a command and its reply (the greeting
 * has no command), named in error lines. */
enum smtp_step {
	STEP_GREETING,
	STEP_HELLO,
	STEP_STARTTLS,
	STEP_MAIL,
	STEP_RCPT,
	STEP_DATA,
	STEP_BODY,
	STEP_DOT,
	STEP_BDAT,
	STEP_RSET,
	STEP_QUIT,
};

static const char *const step_names[] = {
	[STEP_GREETING] = "the greeting",
	[STEP_HELLO] = "EHLO",
	[STEP_STARTTLS] = "STARTTLS",
	[STEP_MAIL] = "MAIL FROM",
	[STEP_RCPT] = "RCPT TO",
	[STEP_DATA] = "DATA",
	[STEP_BODY] = "the message's data",
	[STEP_DOT] = "the end of the message",
	[STEP_BDAT] = "BDAT",
	[STEP_RSET] = "RSET",
	[STEP_QUIT] = "QUIT",
};

struct reply {
	int code;                    /* 200..599 */
	char text[SMTP_TEXT_SHOWN];  /* its first line, for error lines */
};

struct smtp {
	int lmtp;
	const char *proto;     /* "SMTP" or "LMTP": trace prefix and error lines */
	const char *key;       /* the config key that names the server */
	char *host;            /* TCP: host (no brackets) and port; NULL: unix socket */
	unsigned port;
	const char *path;      /* the unix socket */
	char where[160];       /* "SMTP server HOST port N", "LMTP server at PATH" */
	char *rcpt;            /* RCPT TO */
	char me[256];          /* our host name, for EHLO and Received: */
	struct conn *conn;     /* NULL: no session */
	int fd;                /* the session's socket (owned by conn) */
	int loopback;          /* the server's address is a loopback one (or a unix socket) */
	unsigned caps;         /* enum smtp_cap */
	unsigned long long size_max; /* SIZE's limit; 0: none given */
	int unheard;           /* the transaction failed before the server could have all of it */
	int sent_all;          /* the whole message went out (BDAT): the server may have it */
	struct buf cmd;
	/* A BDAT transaction sent without waiting for its replies: */
	int waiting;           /* its replies are still to be read */
	int reused;            /* the session had carried a message before it */
	unsigned long tag;     /* the message's, for the outcome hook */
	unsigned long long msize;
	struct buf wire;       /* all of it as sent: the commands, then the data */
	size_t wire_cmds;      /* how much of wire is the commands */
};

/* The sink's sessions (deliver_sessions): each message goes on the next
 * one in turn, whose previous message's replies are read first.  One
 * session keeps the messages in order; more let a server that works
 * on each connection apart (Dovecot's LMTP) take several at once. */
struct pool {
	struct smtp **m;
	unsigned n, next;
};

/* Keeps the characters a header field or a command can carry safely
 * (host names and addresses as configured or as gethostname says). */
static void
copy_safe(char *dst, size_t size, const char *src, const char *extra)
{
	size_t n = 0;

	for (; *src != '\0' && n + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr(extra, c) != NULL)
			dst[n++] = (char)c;
	}
	dst[n] = '\0';
}

/* Splits "HOST[:PORT]" or "[V6]:PORT" (checked by config.c) into m. */
static int
parse_target(struct smtp *m, const char *v, unsigned default_port, struct mf_error *err)
{
	const char *colon, *host, *host_end;

	if (v[0] == '[') {
		host = v + 1;
		host_end = strchr(v, ']');
		colon = host_end != NULL && host_end[1] == ':' ? host_end + 1 : NULL;
	} else {
		host = v;
		colon = strrchr(v, ':');
		host_end = colon != NULL ? colon : v + strlen(v);
	}
	if (host_end == NULL || host_end == host || (colon == NULL && default_port == 0))
		return err_set(err, MF_EDELIVER, "%s = %s is not HOST:PORT; check the config", m->key, v);
	m->host = xstrndup(host, (size_t)(host_end - host));
	m->port = colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : default_port;
	if (m->port == 0 || m->port > 65535)
		return err_set(err, MF_EDELIVER, "%s = %s has no valid port; check the config", m->key, v);
	snprintf(m->where, sizeof m->where, "%s server %s port %u", m->proto, m->host, m->port);
	return 0;
}

static void
session_drop(struct smtp *m)
{
	conn_free(m->conn);
	m->conn = NULL;
	m->fd = -1;
}

static const char *
step_name(const struct smtp *m, enum smtp_step step)
{
	return step == STEP_HELLO && m->lmtp ? "LHLO" : step_names[step];
}

/* err (of conn or net) as a failure of the session at step: it is over. */
static int
lost(struct smtp *m, enum smtp_step step, struct mf_error *err)
{
	char why[sizeof err->msg];
	int whole = step == STEP_DOT || m->sent_all; /* the server may have it */

	snprintf(why, sizeof why, "%s", err->msg);
	session_drop(m);
	if (signals_stop())
		return err_set(err, MF_EDELIVER, "%s, at %s: mailfetch had to stop before the server answered; "
		    "the message stays on the IMAP server%s", m->where, step_name(m, step),
		    whole ? " and may arrive twice" : "");
	if (whole)
		return err_set(err, MF_EDELIVER, "%s, at %s: %s; the server may have the message already, so "
		    "it may arrive twice", m->where, step_name(m, step), why);
	return err_set(err, MF_EDELIVER, "%s, at %s: %s", m->where, step_name(m, step), why);
}

/* Whether word (a whole token) starts line p of length n; sets *rest past it. */
static int
keyword(const char *p, size_t n, const char *word, const char **rest)
{
	size_t w = strlen(word);

	if (n < w || strncasecmp(p, word, w) != 0 || (n > w && p[w] != ' '))
		return 0;
	*rest = p + w;
	return 1;
}

/* An EHLO reply line after the first: one extension. */
static void
ehlo_line(struct smtp *m, const char *p, size_t n)
{
	const char *rest;

	if (keyword(p, n, "PIPELINING", &rest))
		m->caps |= CAP_PIPELINING;
	else if (keyword(p, n, "8BITMIME", &rest))
		m->caps |= CAP_8BITMIME;
	else if (keyword(p, n, "SMTPUTF8", &rest))
		m->caps |= CAP_SMTPUTF8;
	else if (keyword(p, n, "STARTTLS", &rest))
		m->caps |= CAP_STARTTLS;
	else if (keyword(p, n, "CHUNKING", &rest))
		m->caps |= CAP_CHUNKING;
	else if (keyword(p, n, "SIZE", &rest)) {
		m->caps |= CAP_SIZE;
		m->size_max = 0;
		if (rest < p + n && *rest == ' ')
			rest++;
		for (; rest < p + n && *rest >= '0' && *rest <= '9'; rest++) {
			if (m->size_max > (~0ull - 9) / 10)
				break;
			m->size_max = m->size_max * 10 + (unsigned)(*rest - '0');
		}
	}
}

/* Reads one reply (all its lines) to step.  A malformed or oversized
 * reply, or a lost connection, ends the session (MF_EDELIVER with err
 * set).  With ehlo, each line after the first names an extension. */
static int
read_reply(struct smtp *m, enum smtp_step step, struct reply *r, int ehlo, struct mf_error *err)
{
	const char *line;
	size_t full, len;

	if (ehlo) {
		m->caps = 0;
		m->size_max = 0;
	}
	for (unsigned n = 0;; n++) {
		int code, last;
		if (conn_read_line(m->conn, SMTP_LINE_MAX, &line, &full, err) != 0)
			return lost(m, step, err);
		len = full;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-') || n >= SMTP_REPLY_LINES_MAX) {
			session_drop(m);
			return err_set(err, MF_EDELIVER, "%s sent a malformed reply to %s; report this to its "
			    "administrator", m->where, step_name(m, step));
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		last = len == 3 || line[3] == ' ';
		if (n == 0) {
			r->code = code;
			snprintf(r->text, sizeof r->text, "%.*s", (int)(len > 4 ? len - 4 : 0), line + 4);
		} else if (code != r->code) {
			session_drop(m);
			return err_set(err, MF_EDELIVER, "%s sent a reply to %s with lines of different codes "
			    "(%d, then %d); report this to its administrator", m->where, step_name(m, step), r->code,
			    code);
		} else if (ehlo && len > 4) {
			ehlo_line(m, line + 4, len - 4);
		}
		conn_consume(m->conn, full);
		if (last)
			return 0;
	}
}

/* Sends the command in m->cmd (CRLF added). */
static int
send_cmd(struct smtp *m, enum smtp_step step, struct mf_error *err)
{
	buf_append(&m->cmd, "\r\n", 2);
	if (conn_write(m->conn, m->cmd.data, m->cmd.len, m->cmd.len, err) != 0)
		return lost(m, step, err);
	return 0;
}

/* A reply that is not the one hoped for, as an error line saying what to
 * do; sets *temporary for a 4xx and for a refused session, and ends the
 * session where it cannot go on (421, or no session yet). */
static int
refused(struct smtp *m, enum smtp_step step, const struct reply *r, int *temporary, struct mf_error *err)
{
	const char *todo;

	if (r->code == 421 || step <= STEP_STARTTLS || r->code < 400) {
		/* The server is closing, or it will not talk to us at all,
		 * or it does not speak the protocol: every message would
		 * fare the same. */
		*temporary = 1;
		session_drop(m);
		todo = r->code == 421 ? "the server is closing the connection; try again later" :
		    r->code < 400 ? "it does not follow the protocol; report this to its administrator" :
		    r->code < 500 ? "try again later" :
		    "check the server's settings and our host name, or use another deliver";
	} else if (r->code < 500) {
		*temporary = 1;
		todo = "a temporary refusal; the message stays on the IMAP server for the next run";
	} else if (step == STEP_RCPT) {
		todo = "check recipient in the config; the message stays on the IMAP server";
	} else if (step == STEP_MAIL) {
		todo = "the server takes no mail from this sender; the message stays on the IMAP server";
	} else {
		todo = "the server refuses this message (see its log); it stays on the IMAP server";
	}
	return err_set(err, MF_EDELIVER, "%s answered %s with %d %s; %s", m->where, step_name(m, step), r->code,
	    r->text, todo);
}

/* EHLO (LHLO); an SMTP server that does not know EHLO gets HELO. */
static int
hello(struct smtp *m, int *temporary, struct mf_error *err)
{
	struct reply r;

	buf_reset(&m->cmd);
	buf_printf(&m->cmd, "%s %s", m->lmtp ? "LHLO" : "EHLO", m->me);
	if (send_cmd(m, STEP_HELLO, err) != 0 || read_reply(m, STEP_HELLO, &r, 1, err) != 0)
		return err->code;
	if (r.code == 250)
		return 0;
	if (!m->lmtp && (r.code == 500 || r.code == 502)) {
		buf_reset(&m->cmd);
		buf_printf(&m->cmd, "HELO %s", m->me);
		if (send_cmd(m, STEP_HELLO, err) != 0 || read_reply(m, STEP_HELLO, &r, 0, err) != 0)
			return err->code;
		m->caps = 0;
		if (r.code == 250)
			return 0;
	}
	return refused(m, STEP_HELLO, &r, temporary, err);
}

/* STARTTLS, the handshake (verified against the system's CAs and the
 * server's name as configured), EHLO again: what the server said before
 * TLS is forgotten. */
static int
starttls(struct sink *s, struct smtp *m, int *temporary, struct mf_error *err)
{
	struct tls_opts to;
	struct reply r;

	if (!(m->caps & CAP_STARTTLS)) {
		session_drop(m);
		*temporary = 1;
		return err_set(err, MF_EDELIVER, "%s does not offer STARTTLS, and it is not on a loopback address: "
		    "not sending mail to it in the clear; enable STARTTLS on it, or use a server on this machine",
		    m->where);
	}
	buf_reset(&m->cmd);
	buf_printf(&m->cmd, "STARTTLS");
	if (send_cmd(m, STEP_STARTTLS, err) != 0 || read_reply(m, STEP_STARTTLS, &r, 0, err) != 0)
		return err->code;
	if (r.code != 220)
		return refused(m, STEP_STARTTLS, &r, temporary, err);
	memset(&to, 0, sizeof to);
	to.min_version = s->acct->tls_min_version;
	if (conn_start_tls(m->conn, m->host, &to, 0, err) != 0) {
		/* tls.c's advice names the IMAP server's keys. */
		char why[sizeof err->msg], *todo;
		snprintf(why, sizeof why, "%s", err->msg);
		if ((todo = strstr(why, "; ")) != NULL)
			*todo = '\0';
		session_drop(m);
		*temporary = 1;
		return err_set(err, MF_EDELIVER, "%s, at STARTTLS: %s; its certificate must be valid for the name "
		    "in %s and signed by a CA of the system's (tls_ca_file and tls_fingerprint are for the IMAP "
		    "server only)", m->where, why, m->key);
	}
	return hello(m, temporary, err);
}

/* Connects and greets; on failure there is no session and *temporary is
 * set: the next message would fare no better. */
static int
session_open(struct sink *s, struct smtp *m, int *temporary, struct mf_error *err)
{
	int timeout_ms = s->acct->timeout * 1000, fd, one = 1;
	struct reply r;

	*temporary = 1;
	if (m->host == NULL) {
		fd = net_connect_unix(m->path, timeout_ms, err);
		m->loopback = 1;
	} else {
		fd = net_connect_addr(m->host, m->port, timeout_ms, &m->loopback, err);
		/* Commands go out one write each, pipelined: no waiting
		 * for the acknowledgement of the one before. */
		if (fd >= 0)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	if (fd < 0) {
		/* net's advice is about the IMAP server's keys: ours instead. */
		char why[sizeof err->msg], *todo;
		snprintf(why, sizeof why, "%s", err->msg);
		if ((todo = strstr(why, "; ")) != NULL)
			*todo = '\0';
		return err_set(err, MF_EDELIVER, "%s: %s; check %s in the config and that the server runs; "
		    "the message stays on the IMAP server", m->where, why, m->key);
	}
	m->conn = conn_new(fd, timeout_ms, s->acct->name, m->proto);
	m->fd = fd;
	if (read_reply(m, STEP_GREETING, &r, 0, err) != 0)
		return err->code;
	if (r.code != 220)
		return refused(m, STEP_GREETING, &r, temporary, err);
	if (hello(m, temporary, err) != 0)
		return err->code;
	if (!m->loopback && starttls(s, m, temporary, err) != 0)
		return err->code;
	*temporary = 0;
	return 0;
}

/* Between two messages the server may have given up on us (an idle
 * timeout while a large message came from the IMAP server): anything it
 * sent unasked, a 421 or the end of the connection, means the session
 * is over and a new one is needed. */
static int
session_stale(struct smtp *m)
{
	struct pollfd p = { .fd = m->fd, .events = POLLIN };

	return poll(&p, 1, 0) != 0;
}

/* The envelope sender: the address of the message's first Return-Path
 * header ("" for none, for <>, and for one that MAIL FROM could not
 * carry), and whether the message needs SMTPUTF8 (8-bit bytes in its
 * header, the sender included). */
static void
envelope_sender(struct spool *msg, char *from, size_t size, int *utf8)
{
	char head[HEADER_SCAN_MAX + 1];
	ssize_t n = spool_pread(msg, head, HEADER_SCAN_MAX, 0);
	int seen = 0;

	from[0] = '\0';
	*utf8 = 0;
	if (n <= 0)
		return;
	head[n] = '\0';
	for (const char *p = head; p != NULL && *p != '\0' && *p != '\r' && *p != '\n'; ) {
		const char *eol = strchr(p, '\n'), *end = eol != NULL ? eol : p + strlen(p);
		for (const char *c = p; c < end; c++)
			if ((unsigned char)*c >= 0x80)
				*utf8 = 1;
		if (!seen && strncasecmp(p, "Return-Path:", 12) == 0) {
			const char *v;
			size_t len;
			int ok = 1;
			seen = 1;
			deliver_path_addr(p + 12, end, &v, &len);
			/* Blanks, controls and angle brackets could end the
			 * address early in MAIL FROM: such a sender becomes <>. */
			for (size_t i = 0; i < len; i++)
				if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f || v[i] == '<' || v[i] == '>')
					ok = 0;
			if (ok && len <= SMTP_PATH_MAX && len < size) {
				memcpy(from, v, len);
				from[len] = '\0';
			}
		}
		p = eol != NULL ? eol + 1 : NULL;
	}
}

/* Our Received: header (fetchmail adds one too): from the IMAP server,
 * by this host, for the recipient, now. */
static void
received_header(struct sink *s, struct smtp *m, struct buf *b)
{
	char host[256], date[64];
	time_t now = time(NULL);
	struct tm tm;

	copy_safe(host, sizeof host, s->acct->host, ".-_:[]");
	if (localtime_r(&now, &tm) == NULL || strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		snprintf(date, sizeof date, "Thu, 01 Jan 1970 00:00:00 +0000");
	buf_printf(b, "Received: from %s\r\n\tby %s with IMAP (mailfetch %s)\r\n\tfor <%s>; %s\r\n",
	    host[0] != '\0' ? host : "unknown", m->me, PACKAGE_VERSION, m->rcpt, date);
}

/* The message as DATA carries it: every line ended by CRLF (a bare LF or
 * CR becomes one: RFC 5321 allows them only together), a '.' starting a
 * line doubled, the last line ended.  BDAT carries it the same way but
 * for the dots.  Input may be split anywhere. */
struct wire {
	int bol;   /* at the beginning of a line */
	int cr;    /* a CR not yet resolved */
	int stuff; /* double a '.' starting a line (DATA) */
};

static void
wire_feed(struct wire *w, const char *in, size_t n, struct buf *out)
{
	/* At most two bytes out for each byte in, and one CRLF held back. */
	char *o = buf_space(out, 2 * n + 2), *start = o;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (w->cr) {
			*o++ = '\r';
			*o++ = '\n';
			w->cr = 0;
			w->bol = 1;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			w->cr = 1;
		} else if (c == '\n') {
			*o++ = '\r';
			*o++ = '\n';
			w->bol = 1;
		} else {
			if (w->bol && c == '.' && w->stuff)
				*o++ = '.';
			*o++ = c;
			w->bol = 0;
		}
	}
	buf_commit(out, (size_t)(o - start));
}

static void
wire_finish(struct wire *w, struct buf *out)
{
	if (w->cr || !w->bol)
		buf_append(out, "\r\n", 2);
	w->cr = 0;
	w->bol = 1;
}

/* How many bytes msg becomes through wire_feed and wire_finish without
 * dot-stuffing: a CRLF stays two bytes, a bare LF or CR becomes two, and
 * a last line without an end gets one.  0, or -1 if the spool cannot be
 * read (errno set). */
static int
wire_size(struct spool *msg, unsigned long long *size)
{
	char chunk[IO_CHUNK];
	unsigned long long bytes = 0, cr = 0, lf = 0, crlf = 0;
	char prev = '\n';

	for (;;) {
		ssize_t n = spool_pread(msg, chunk, sizeof chunk, bytes);
		const char *end = chunk + (n > 0 ? n : 0);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		for (const char *q = chunk; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) {
			lf++;
			crlf += (q > chunk ? q[-1] : prev) == '\r';
		}
		for (const char *q = chunk; (q = memchr(q, '\r', (size_t)(end - q))) != NULL; q++)
			cr++;
		bytes += (unsigned long long)n;
		prev = end[-1];
	}
	*size = bytes + cr + lf - 2 * crlf + (prev != '\n' && prev != '\r' ? 2 : 0);
	return 0;
}

/* The data of the message after what m->wire holds already (our header,
 * and for BDAT the commands before it), converted as w says, in writes
 * of IO_CHUNK; the data is traced as its size.  Then, for DATA, the
 * line with the dot. */
static int
send_body(struct sink *s, struct smtp *m, struct spool *msg, int stuff, size_t cmds, int *temporary,
    struct mf_error *err)
{
	char chunk[SMTP_KEPT_PIECE]; /* small: wire_feed asks room for twice as much */
	struct wire w = { .bol = 1, .stuff = stuff };
	uint64_t off = 0;
	unsigned long long total = 0;

	for (;;) {
		ssize_t n = spool_pread(msg, chunk, sizeof chunk, off);
		if (n < 0) {
			/* Half a message sent: only ending the connection
			 * makes sure the server throws it away. */
			int e = errno;
			session_drop(m);
			return err_set(err, MF_EDELIVER, "cannot read the spooled message back: %s; check TMPDIR",
			    strerror(e));
		}
		if (n == 0)
			wire_finish(&w, &m->wire);
		else
			wire_feed(&w, chunk, (size_t)n, &m->wire);
		if (m->wire.len >= IO_CHUNK || (n == 0 && m->wire.len > 0)) {
			conn_trace_sent(m->conn, 0, m->wire.data + cmds, m->wire.len - cmds);
			if (conn_write_raw(m->conn, m->wire.data, m->wire.len, err) != 0) {
				*temporary = 1;
				return lost(m, STEP_BODY, err);
			}
			total += m->wire.len - cmds;
			cmds = 0;
			buf_reset(&m->wire);
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
	}
	conn_trace_sent(m->conn, total, NULL, 0);
	if (!stuff)
		return 0;
	buf_reset(&m->cmd);
	buf_printf(&m->cmd, ".");
	if (send_cmd(m, STEP_DOT, err) != 0) {
		*temporary = 1;
		return err->code;
	}
	return 0;
}

/* The reply each step hopes for. */
static int
reply_ok(enum smtp_step step, const struct reply *r)
{
	return step == STEP_DATA ? r->code == 354 : r->code / 100 == 2;
}

/* After a refused transaction: RSET, so that the next MAIL FROM finds
 * the server ready.  A session that will not reset is ended. */
static void
reset(struct smtp *m)
{
	struct mf_error err;
	struct reply r;

	buf_reset(&m->cmd);
	buf_printf(&m->cmd, "RSET");
	if (send_cmd(m, STEP_RSET, &err) != 0 || read_reply(m, STEP_RSET, &r, 0, &err) != 0)
		return;
	if (r.code / 100 != 2)
		session_drop(m);
}

/* The envelope sender of msg as this server can take it (see
 * envelope_sender), and whether the message needs SMTPUTF8. */
static void
envelope(struct smtp *m, struct spool *msg, char *from, size_t size, int *utf8)
{
	envelope_sender(msg, from, size, utf8);
	if (!(m->caps & CAP_SMTPUTF8)) {
		/* An 8-bit sender cannot go to this server as it is. */
		for (const char *c = from; *c != '\0'; c++)
			if ((unsigned char)*c >= 0x80)
				from[0] = '\0';
	}
}

/* Whether the server's SIZE refuses a message of size bytes (err set). */
static int
too_big(struct smtp *m, unsigned long long size, struct mf_error *err)
{
	if (!(m->caps & CAP_SIZE) || m->size_max == 0 || size <= m->size_max)
		return 0;
	err_set(err, MF_EDELIVER, "the message (%llu bytes) is larger than %s takes (SIZE %llu); "
	    "it stays on the IMAP server, raise the server's size limit to have it delivered",
	    size, m->where, m->size_max);
	return 1;
}

/* MAIL FROM with the parameters the server takes, without its CRLF. */
static void
mail_cmd(struct smtp *m, struct buf *b, const char *from, unsigned long long size, int utf8)
{
	buf_printf(b, "MAIL FROM:<%s>", from);
	if (m->caps & CAP_SIZE)
		buf_printf(b, " SIZE=%llu", size);
	if (m->caps & CAP_8BITMIME)
		buf_printf(b, " BODY=8BITMIME");
	if (utf8 && (m->caps & CAP_SMTPUTF8))
		buf_printf(b, " SMTPUTF8");
}

/* The replies to a BDAT transaction, in order: MAIL's, RCPT's, and
 * BDAT's (LMTP: one per accepted recipient, or the one refusal when none
 * was accepted).  A refused step leaves the server to read and drop the
 * data (RFC 3030, 4.2); RSET follows. */
static int
bdat_replies(struct smtp *m, int *temporary, struct mf_error *err)
{
	static const enum smtp_step steps[] = { STEP_MAIL, STEP_RCPT, STEP_BDAT };
	struct reply r, bad = { 0 };
	enum smtp_step bad_step = STEP_MAIL;
	unsigned accepted = 0;
	int ok = 1, closing = 0;

	/* The data went out with the commands: a connection lost or a
	 * server silent before its first reply may have it all the same (a
	 * server may hold pipelined replies until it has read the data).
	 * Only a 421 to MAIL says it took none of it. */
	m->unheard = 0;
	for (size_t i = 0; i < 3 && !closing; i++) {
		unsigned n = steps[i] == STEP_BDAT && m->lmtp && accepted > 0 ? accepted : 1;
		for (unsigned k = 0; k < n && !closing; k++) {
			if (read_reply(m, steps[i], &r, 0, err) != 0) {
				*temporary = 1;
				return err->code;
			}
			if (i == 0)
				m->unheard = r.code == 421;
			accepted += steps[i] == STEP_RCPT && r.code / 100 == 2;
			if (ok && r.code / 100 != 2) {
				ok = 0;
				bad = r;
				bad_step = steps[i];
			}
			/* A 421: it is closing, no more replies will come. */
			closing = r.code == 421;
		}
	}
	if (ok)
		return 0;
	refused(m, bad_step, &bad, temporary, err);
	if (m->conn != NULL)
		reset(m);
	return MF_EDELIVER;
}

/* The session's buffer for what goes out with a message, empty: room for
 * the largest transaction kept whole is taken once, so it never moves
 * (a buffer without a ceiling: this cannot fail).  Also the buffer a
 * larger message streams through, SMTP_KEPT_PIECE at a time. */
static struct buf *
wire_buf(struct smtp *m)
{
	buf_reset(&m->wire);
	(void)buf_reserve(&m->wire, SMTP_KEPT_MAX + 2 * SMTP_PATH_MAX + 256 + 2 * SMTP_KEPT_PIECE + 2);
	return &m->wire;
}

/* Traces the command lines in data[0..len), which go out in one write
 * with what follows them. */
static void
trace_cmds(struct smtp *m, const char *data, size_t len)
{
	for (const char *p = data, *end = data + len, *eol; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end - 1;
		conn_trace_cmd(m->conn, p, (size_t)(eol + 1 - p), (size_t)(eol + 1 - p));
	}
}

/* Sends the transaction kept whole in m->wire (its commands traced, its
 * data as its size), without waiting for the replies. */
static int
send_kept(struct smtp *m, int *temporary, struct mf_error *err)
{
	trace_cmds(m, m->wire.data, m->wire_cmds);
	conn_trace_sent(m->conn, 0, m->wire.data + m->wire_cmds, m->wire.len - m->wire_cmds);
	conn_trace_sent(m->conn, m->wire.len - m->wire_cmds, NULL, 0);
	m->sent_all = 0;
	if (conn_write_raw(m->conn, m->wire.data, m->wire.len, err) != 0) {
		/* Not all of it reached a connection the server had closed. */
		*temporary = 1;
		m->unheard = 1;
		return lost(m, STEP_BDAT, err);
	}
	m->sent_all = 1;
	return 0;
}

/* One message with CHUNKING (RFC 3030) to a server that pipelines:
 * MAIL FROM, RCPT TO and BDAT n LAST go out with the data in one write,
 * with no dot-stuffing and no end line, then the replies are read (see
 * bdat_replies).  With may_wait, a transaction small enough to keep
 * whole (to send again should the server turn out to have ended the
 * session first) is sent and left with its replies unread (m->waiting,
 * s->pending): smtp_finish reads them later, while the next message
 * comes from the IMAP server. */
static int
transaction_bdat(struct sink *s, struct smtp *m, struct spool *msg, int may_wait, int *temporary,
    struct mf_error *err)
{
	char from[SMTP_PATH_MAX + 1];
	unsigned long long body, size;
	struct buf *b;
	size_t cmds;
	int utf8;

	envelope(m, msg, from, sizeof from, &utf8);
	buf_reset(&m->cmd);
	received_header(s, m, &m->cmd);
	if (wire_size(msg, &body) != 0)
		return err_set(err, MF_EDELIVER, "cannot read the spooled message back: %s; check TMPDIR",
		    strerror(errno));
	size = m->cmd.len + body;
	if (too_big(m, size, err))
		return MF_EDELIVER;
	may_wait = may_wait && size <= SMTP_KEPT_MAX;
	b = wire_buf(m);
	mail_cmd(m, b, from, size, utf8);
	buf_append(b, "\r\n", 2);
	buf_printf(b, "RCPT TO:<%s>\r\nBDAT %llu LAST\r\n", m->rcpt, size);
	cmds = b->len;
	buf_append(b, m->cmd.data, m->cmd.len);
	if (may_wait) {
		struct wire w = { .bol = 1 };
		char chunk[SMTP_KEPT_PIECE];
		uint64_t off = 0;
		ssize_t n;
		while ((n = spool_pread(msg, chunk, sizeof chunk, off)) > 0) {
			wire_feed(&w, chunk, (size_t)n, b);
			off += (uint64_t)n;
		}
		if (n < 0)
			return err_set(err, MF_EDELIVER, "cannot read the spooled message back: %s; check TMPDIR",
			    strerror(errno));
		wire_finish(&w, b);
		m->wire_cmds = cmds;
		if (send_kept(m, temporary, err) != 0)
			return err->code;
		m->waiting = 1;
		m->tag = s->tag;
		m->msize = spool_size(msg);
		s->pending = 1;
		return 0;
	}
	trace_cmds(m, b->data, cmds);
	if (send_body(s, m, msg, 0, cmds, temporary, err) != 0) {
		/* Not all of it reached a connection the server had closed. */
		m->unheard = *temporary;
		return err->code;
	}
	m->sent_all = 1;
	return bdat_replies(m, temporary, err);
}

/* One message: MAIL FROM, RCPT TO, DATA (pipelined when the server
 * allows), the data, the replies to its end. */
static int
transaction(struct sink *s, struct smtp *m, struct spool *msg, int may_wait, int *temporary, struct mf_error *err)
{
	static const enum smtp_step steps[] = { STEP_MAIL, STEP_RCPT, STEP_DATA };
	int pipelining = m->lmtp || (m->caps & CAP_PIPELINING);
	char from[SMTP_PATH_MAX + 1];
	struct reply r, bad = { 0 };
	enum smtp_step bad_step = STEP_MAIL;
	unsigned long long size;
	size_t sent = 0, replied = 0;
	int utf8, ok = 1, data_open = 0;
	unsigned accepted = 0;

	if (pipelining && (m->caps & CAP_CHUNKING))
		return transaction_bdat(s, m, msg, may_wait, temporary, err);
	envelope(m, msg, from, sizeof from, &utf8);
	received_header(s, m, wire_buf(m));
	size = spool_size(msg) + m->wire.len;
	if (too_big(m, size, err))
		return MF_EDELIVER;

	for (size_t i = 0; i < 3 && ok; i++) {
		buf_reset(&m->cmd);
		if (steps[i] == STEP_MAIL)
			mail_cmd(m, &m->cmd, from, size, utf8);
		else if (steps[i] == STEP_RCPT)
			buf_printf(&m->cmd, "RCPT TO:<%s>", m->rcpt);
		else
			buf_printf(&m->cmd, "DATA");
		if (send_cmd(m, steps[i], err) != 0) {
			*temporary = 1;
			m->unheard = replied == 0;
			return err->code;
		}
		sent = i + 1;
		if (pipelining)
			continue;
		if (read_reply(m, steps[i], &r, 0, err) != 0) {
			*temporary = 1;
			m->unheard = replied == 0;
			return err->code;
		}
		if (replied == 0)
			m->unheard = r.code == 421;
		replied = sent;
		data_open = steps[i] == STEP_DATA && r.code == 354;
		accepted += steps[i] == STEP_RCPT && r.code / 100 == 2;
		if (!reply_ok(steps[i], &r)) {
			ok = 0;
			bad = r;
			bad_step = steps[i];
		}
	}
	/* Pipelined: every reply is read, in order, whatever came before. */
	for (; replied < sent; replied++) {
		if (read_reply(m, steps[replied], &r, 0, err) != 0) {
			*temporary = 1;
			m->unheard = replied == 0;
			return err->code;
		}
		if (replied == 0)
			m->unheard = r.code == 421;
		data_open = steps[replied] == STEP_DATA && r.code == 354;
		accepted += steps[replied] == STEP_RCPT && r.code / 100 == 2;
		if (ok && !reply_ok(steps[replied], &r)) {
			ok = 0;
			bad = r;
			bad_step = steps[replied];
		}
		if (r.code == 421) /* it is closing: no more replies will come */
			break;
	}
	if (!ok) {
		struct reply ignored;
		struct mf_error lerr;
		/* A server that opened DATA after refusing the sender or
		 * the recipient gets an empty message it has nobody to give
		 * to, and then RSET. */
		if (data_open && m->conn != NULL) {
			buf_reset(&m->cmd);
			buf_printf(&m->cmd, ".");
			if (send_cmd(m, STEP_DOT, &lerr) == 0)
				(void)read_reply(m, STEP_DOT, &ignored, 0, &lerr);
		}
		refused(m, bad_step, &bad, temporary, err);
		if (m->conn != NULL)
			reset(m);
		return MF_EDELIVER;
	}

	if (send_body(s, m, msg, 1, 0, temporary, err) != 0)
		return err->code;
	/* LMTP answers for each recipient that was accepted (RFC 2033);
	 * with our one recipient, that is one reply as for SMTP. */
	for (unsigned i = 0; i < (m->lmtp ? accepted : 1); i++) {
		if (read_reply(m, STEP_DOT, &r, 0, err) != 0) {
			*temporary = 1;
			return err->code;
		}
		if (ok && r.code / 100 != 2) {
			ok = 0;
			bad = r;
		}
		if (r.code == 421)
			break;
	}
	if (!ok)
		return refused(m, STEP_DOT, &bad, temporary, err);
	return 0;
}

/* Reads the replies to m's transaction sent without waiting, sends it
 * again, once, on a new session if the server had ended the old one
 * before reading any of it, and hands the outcome to the hook.  Returns
 * whether it failed for a reason the next message would share. */
static int
smtp_finish(struct sink *s, struct smtp *m)
{
	struct mf_error err = { 0 };
	int temporary = 0, rc;

	m->waiting = 0;
	rc = bdat_replies(m, &temporary, &err);
	if (rc != 0 && m->reused && m->unheard && !signals_stop()) {
		session_drop(m);
		temporary = 0;
		if (session_open(s, m, &temporary, &err) != 0) {
			rc = MF_EDELIVER;
		} else if (!(m->caps & CAP_CHUNKING) || !(m->lmtp || (m->caps & CAP_PIPELINING)) ||
		    too_big(m, m->wire.len - m->wire_cmds, &err)) {
			/* The kept bytes were made for what the old session
			 * offered. */
			temporary = 1;
			session_drop(m);
			rc = err_set(&err, MF_EDELIVER, "%s ended the session before it read the message, and its "
			    "new session no longer offers what the message was prepared for (CHUNKING, PIPELINING, "
			    "SIZE); the message stays on the IMAP server", m->where);
		} else {
			m->unheard = 0;
			rc = send_kept(m, &temporary, &err);
			if (rc == 0)
				rc = bdat_replies(m, &temporary, &err);
		}
	}
	s->outcome(s->outcome_ctx, m->tag, m->msize, rc, temporary, &err);
	return rc != 0 && temporary;
}

/* Every transaction still waiting for its replies, the oldest first. */
static void
smtp_flush(struct sink *s)
{
	struct pool *p = s->priv;

	for (unsigned k = 0; p != NULL && k < p->n; k++) {
		struct smtp *m = p->m[(p->next + k) % p->n];
		if (m->waiting)
			(void)smtp_finish(s, m);
	}
}

static int
smtp_deliver(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err)
{
	struct pool *p = s->priv;
	struct smtp *m = p->m[p->next];
	int reused, rc, may_wait = s->outcome != NULL;

	/* MAIL FROM takes the Return-Path as it is or <>, not the reduced
	 * From_-line sender of deliver_sender: see envelope_sender. */
	(void)sender;
	p->next = (p->next + 1) % p->n;
	if (m->waiting && smtp_finish(s, m)) {
		/* The caller has just been told that nothing more goes. */
		*temporary = 1;
		return err_set(err, MF_EDELIVER, "%s: not tried after the message before it failed", m->where);
	}
	if (m->conn != NULL && session_stale(m))
		session_drop(m);
	reused = m->conn != NULL;
	if (!reused && session_open(s, m, temporary, err) != 0)
		return MF_EDELIVER;
	m->unheard = 0;
	m->sent_all = 0;
	m->reused = reused;
	rc = transaction(s, m, msg, may_wait, temporary, err);
	if (rc != 0 && reused && m->unheard && !signals_stop()) {
		/* The server had ended the idle session (a 421, or the
		 * connection closed) before it read any of this message:
		 * a new session, once. */
		session_drop(m);
		*temporary = 0;
		if (session_open(s, m, temporary, err) != 0)
			return MF_EDELIVER;
		m->reused = 0;
		rc = transaction(s, m, msg, may_wait, temporary, err);
	}
	return rc;
}

/* A server's 250 after the data is delivery: nothing is left to do. */
static int
smtp_commit(struct sink *s, struct mf_error *err)
{
	(void)s;
	(void)err;
	return 0;
}

static void
smtp_free(struct smtp *m)
{
	session_drop(m);
	free(m->host);
	free(m->rcpt);
	buf_free(&m->cmd);
	buf_free(&m->wire);
	free(m);
}

static void
pool_free(struct pool *p)
{
	for (unsigned k = 0; p != NULL && k < p->n; k++)
		if (p->m[k] != NULL)
			smtp_free(p->m[k]);
	if (p != NULL)
		free(p->m);
	free(p);
}

static void
smtp_close(struct sink *s)
{
	struct pool *p = s->priv;
	struct mf_error err;
	struct reply r;

	if (p == NULL)
		return;
	for (unsigned k = 0; k < p->n; k++) {
		struct smtp *m = p->m[k];
		if (m->conn != NULL && !m->waiting && !session_stale(m)) {
			buf_reset(&m->cmd);
			buf_printf(&m->cmd, "QUIT");
			if (send_cmd(m, STEP_QUIT, &err) == 0)
				(void)read_reply(m, STEP_QUIT, &r, 0, &err);
		}
	}
	pool_free(p);
	s->priv = NULL;
}

/* Where to deliver, to whom, and our name; the session waits for the
 * first message.  Only a missing LMTP socket is found out here. */
static int
open_common(struct sink *s, int lmtp, struct mf_error *err)
{
	const struct account *a = s->acct;
	struct smtp *m = xcalloc(1, sizeof *m);
	const char *target = lmtp ? a->lmtp : a->smtp != NULL ? a->smtp : "localhost:25";
	const char *user = a->recipient;
	char name[256], *local = NULL;
	struct pool *p;

	m->lmtp = lmtp;
	m->proto = lmtp ? "LMTP" : "SMTP";
	m->key = lmtp ? "lmtp" : "smtp";
	m->fd = -1;
	buf_init(&m->cmd, 0);
	buf_init(&m->wire, 0);
	if (target == NULL) {
		err_set(err, MF_EDELIVER, "deliver = lmtp needs lmtp, the LMTP server's socket or HOST:PORT; "
		    "check the config");
		goto fail;
	}
	if (lmtp && target[0] == '/') {
		struct stat st;
		m->path = target;
		snprintf(m->where, sizeof m->where, "LMTP server at %s", target);
		if (stat(target, &st) != 0) {
			err_set(err, MF_EDELIVER, "LMTP socket %s: %s; check lmtp in the config and that the LMTP "
			    "server runs; nothing was fetched", target,
			    errno == ENOENT ? "no such file" : strerror(errno));
			goto fail;
		}
		if (!S_ISSOCK(st.st_mode)) {
			err_set(err, MF_EDELIVER, "LMTP socket %s is not a socket; check lmtp in the config; "
			    "nothing was fetched", target);
			goto fail;
		}
	} else if (parse_target(m, target, lmtp ? 0 : 25, err) != 0) {
		goto fail;
	}
	if (user == NULL) {
		local = deliver_local_user();
		user = local;
		for (const char *c = user; c != NULL && *c != '\0'; c++)
			if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '<' || *c == '>')
				user = NULL;
		if (user == NULL || user[0] == '\0') {
			err_set(err, MF_EDELIVER, "cannot tell the name of the user running mailfetch (uid %u) for "
			    "RCPT TO; set recipient in the config", (unsigned)getuid());
			goto fail;
		}
	}
	/* A local part alone is a user of the server's own domain: as it
	 * is for LMTP (Dovecot and Cyrus look users up by name), with
	 * @localhost for SMTP (an MTA wants a domain; fetchmail does the
	 * same for a local MTA). */
	m->rcpt = lmtp || strchr(user, '@') != NULL ? xstrdup(user) : NULL;
	if (m->rcpt == NULL) {
		size_t n = strlen(user) + sizeof "@localhost";
		m->rcpt = xmalloc(n);
		snprintf(m->rcpt, n, "%s@localhost", user);
	}
	if (gethostname(name, sizeof name) != 0)
		name[0] = '\0';
	name[sizeof name - 1] = '\0';
	copy_safe(m->me, sizeof m->me, name, ".-");
	if (m->me[0] == '\0' || m->me[0] == '.' || m->me[0] == '-')
		snprintf(m->me, sizeof m->me, "localhost");
	free(local);
	p = xcalloc(1, sizeof *p);
	p->n = a->deliver_sessions > 0 ? (unsigned)a->deliver_sessions : 1;
	p->m = xcalloc(p->n, sizeof *p->m);
	p->m[0] = m;
	for (unsigned k = 1; k < p->n; k++) {
		/* The same server and envelope; a session of its own. */
		struct smtp *c = xmalloc(sizeof *c);
		*c = *m;
		c->host = m->host != NULL ? xstrdup(m->host) : NULL;
		c->rcpt = xstrdup(m->rcpt);
		buf_init(&c->cmd, 0);
		buf_init(&c->wire, 0);
		p->m[k] = c;
	}
	s->priv = p;
	return 0;
fail:
	free(local);
	smtp_free(m);
	return MF_EDELIVER;
}

static int
smtp_open(struct sink *s, struct mf_error *err)
{
	return open_common(s, 0, err);
}

static int
lmtp_open(struct sink *s, struct mf_error *err)
{
	return open_common(s, 1, err);
}

const struct sink_ops sink_smtp_ops = {
	.name = "smtp",
	.durable_per_message = 1,
	.open = smtp_open,
	.deliver = smtp_deliver,
	.flush = smtp_flush,
	.commit = smtp_commit,
	.close = smtp_close,
};

const struct sink_ops sink_lmtp_ops = {
	.name = "lmtp",
	.durable_per_message = 1,
	.open = lmtp_open,
	.deliver = smtp_deliver,
	.flush = smtp_flush,
	.commit = smtp_commit,
	.close = smtp_close,
};
