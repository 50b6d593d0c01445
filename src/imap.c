/* imap.c: IMAP client commands.
 *
 * Every command goes through imap_cmd(): it sends "TAG command", reads
 * responses until the tagged one, keeps what untagged responses teach
 * (capabilities, UIDVALIDITY, EXISTS, BYE) and hands the rest to the
 * command's own handler.  Literals in FETCH responses are streamed into a
 * spool; nothing is delivered until its whole response has arrived. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "imap.h"
#include "imap_parse.h"
#include "imap_quote.h"
#include "base64.h"
#include "sasl.h"
#include "mf_limits.h"
#include "log.h"
#include "xmalloc.h"

enum pend_kind { PEND_FETCH, PEND_MARK, PEND_EXPUNGE, PEND_SELECT, PEND_SEARCH };

/* A command sent and not yet answered (pipelined commands only). */
struct pending {
	unsigned tagno;
	enum pend_kind kind;
	size_t first, count;    /* FETCH: uids[first..first+count); MARK: count of UIDs */
	uint32_t *uids;         /* MARK inside imap_fetch: its UIDs (owned) */
	enum imap_resp_status st;
	char text[160];
};

struct fetch_run;

struct imap {
	struct conn *conn;
	struct imap_parser *parser;
	const char *who;
	unsigned tagno;
	char tag[16];
	unsigned caps;
	int caps_known;
	unsigned caps_updates;  /* bumped whenever a capability list arrives */
	unsigned sasl_offered;  /* AUTH= mechanisms we know, as SASL_BIT()s */
	char auth_names[200];   /* every AUTH= the server listed, for messages */
	uint32_t exists;
	uint32_t uidvalidity;
	int read_only;          /* the selected folder is [READ-ONLY] */
	char bye[200];          /* text of an untagged BYE, if one came */
	struct pending pend[IMAP_PIPELINE_MAX];
	size_t npend;
	size_t nmarks_out;      /* UID STORE / UID EXPUNGE outstanding */
	struct mark_job *marks; /* marks waiting for room in the pipeline */
	size_t nmarks, marks_cap;
	struct fetch_run *fetch_run; /* the imap_fetch in progress, if any */
	struct {                /* watching with NOTIFY: the UIDNEXT last heard of each folder */
		char name[128];
		uint32_t uidnext;
	} watched[32];
	size_t nwatched;
};

/* UIDs to mark, queued until the pipeline has room: a large journal
 * becomes a few commands at a time, never more than IMAP_MARK_WINDOW
 * outstanding. */
struct mark_job {
	uint32_t *uids;         /* sorted, owned */
	size_t n, done;
	char flags[32];
	int expunge;
};

/* What a command wants to see besides the tagged reply. */
struct cmd_handler {
	/* an untagged response not handled generically */
	void (*untagged)(struct imap *im, const struct imap_response *r, void *ctx);
	/* a continuation request: send what follows; 0 or an exit code */
	int (*cont)(struct imap *im, const struct imap_response *r, void *ctx, struct mf_error *err);
	void *ctx;
	struct spool *spool;    /* streamed literals go here (FETCH) */
	int spool_used;         /* a literal of this response is in the spool */
	int spool_ok;
	char spool_err[sizeof ((struct mf_error *)0)->msg]; /* why not, if !spool_ok */
};

struct imap *
imap_new(struct conn *conn, const char *who)
{
	struct imap *im = xcalloc(1, sizeof *im);
	im->conn = conn;
	im->who = who;
	im->parser = imap_parser_new(0);
	return im;
}

void
imap_free(struct imap *im)
{
	if (im == NULL)
		return;
	for (size_t i = 0; i < im->npend; i++)
		free(im->pend[i].uids);
	for (size_t i = 0; i < im->nmarks; i++)
		free(im->marks[i].uids);
	free(im->marks);
	imap_parser_free(im->parser);
	free(im);
}

int
imap_caps_known(const struct imap *im)
{
	return im->caps_known;
}

int
imap_has_cap(const struct imap *im, unsigned cap)
{
	return (im->caps & cap) != 0;
}

/* Replaces the capability set with the atoms in args (whole tokens only). */
static void
set_caps(struct imap *im, const struct imap_arg *args, size_t n)
{
	static const struct { const char *name; unsigned cap; } names[] = {
		{ "IMAP4rev1", IMAP_CAP_IMAP4REV1 }, { "STARTTLS", IMAP_CAP_STARTTLS },
		{ "LOGINDISABLED", IMAP_CAP_LOGINDISABLED }, { "AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN },
		{ "SASL-IR", IMAP_CAP_SASL_IR }, { "UIDPLUS", IMAP_CAP_UIDPLUS },
		{ "LITERAL+", IMAP_CAP_LITERALPLUS }, { "IDLE", IMAP_CAP_IDLE }, { "NOTIFY", IMAP_CAP_NOTIFY },
	};
	size_t used = 0;

	im->caps = 0;
	im->sasl_offered = 0;
	im->auth_names[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
			if (imap_arg_is_atom(&args[i], names[k].name))
				im->caps |= names[k].cap;
		if (args[i].type == IMAP_ARG_ATOM && strncasecmp(args[i].str, "AUTH=", 5) == 0 && args[i].len > 5) {
			enum sasl_mech m = sasl_mech_lookup(args[i].str + 5, args[i].len - 5);
			if (m != SASL_NMECH)
				im->sasl_offered |= SASL_BIT(m);
			if (used < sizeof im->auth_names) {
				int w = snprintf(im->auth_names + used, sizeof im->auth_names - used, "%s%s",
				    used ? " " : "", args[i].str + 5);
				used += w > 0 ? (size_t)w : 0;
			}
		}
	}
	im->caps_known = 1;
	im->caps_updates++;
}

/* What every response may teach, whatever command it answers. */
static void
learn(struct imap *im, const struct imap_response *r)
{
	if (r->code != NULL) {
		if (strcmp(r->code, "CAPABILITY") == 0)
			set_caps(im, r->code_args, r->code_count);
		else if (strcmp(r->code, "UIDVALIDITY") == 0 && r->code_count == 1)
			imap_arg_number(&r->code_args[0], &im->uidvalidity);
		else if (strcmp(r->code, "READ-ONLY") == 0)
			im->read_only = 1;
	}
	if (r->kind != IMAP_RESP_UNTAGGED)
		return;
	if (r->status == IMAP_ST_BYE)
		snprintf(im->bye, sizeof im->bye, "%s", r->text ? r->text : "");
	else if (r->name != NULL && strcmp(r->name, "CAPABILITY") == 0)
		set_caps(im, r->args, r->count);
	else if (r->name != NULL && strcmp(r->name, "EXISTS") == 0 && r->has_number)
		im->exists = r->number;
}

/* Reads one response, streaming large literals into h->spool (or
 * discarding them when there is no spool or it is taken). */
static int
imap_read(struct imap *im, struct cmd_handler *h, const struct imap_response **out, struct mf_error *err)
{
	struct conn *c = im->conn;

	for (;;) {
		uint64_t left = imap_parser_inline_left(im->parser);
		const char *data;
		size_t len, used;
		enum imap_parse_result r;

		if (left > 0) {
			if (left == imap_parser_literal_size(im->parser))
				conn_trace_literal(c, left, NULL, 0);
			if (conn_read_raw(c, left < IO_CHUNK ? (size_t)left : IO_CHUNK, &data, &len, err) != 0)
				return err->code;
			conn_trace_literal(c, left, data, len);
		} else if (conn_read_line(c, IMAP_LINE_MAX, &data, &len, err) != 0) {
			if (im->bye[0] != '\0')
				err_set(err, MF_ESERVER, "server closed the connection: %s; try again later", im->bye);
			return err->code;
		}
		r = imap_parser_feed(im->parser, data, len, &used);
		conn_consume(c, used);
		if (r == IMAP_PARSE_MORE)
			continue;
		if (r == IMAP_PARSE_ERROR)
			return err_set(err, MF_EPROTO, "malformed response from the server (%s); "
			    "report this to the server's administrator", imap_parser_error(im->parser));
		if (r == IMAP_PARSE_DONE) {
			*out = imap_parser_response(im->parser);
			learn(im, *out);
			return 0;
		}

		/* IMAP_PARSE_LITERAL: a large literal follows; read exactly its size. */
		{
			uint64_t size = imap_parser_literal_size(im->parser);
			struct imap_arg *arg = imap_parser_literal_arg(im->parser);
			struct spool *sp = NULL;
			struct mf_error werr;

			if (h != NULL && h->spool != NULL && !h->spool_used) {
				sp = h->spool;
				spool_reset(sp);
				h->spool_used = 1;
				h->spool_ok = 1;
				arg->cookie = sp;
			}
			conn_trace_literal(c, size, NULL, 0);
			for (left = size; left > 0; ) {
				if (conn_read_raw(c, left < IO_CHUNK ? (size_t)left : IO_CHUNK, &data, &len, err) != 0)
					return err->code;
				conn_trace_literal(c, size, data, len);
				if (sp != NULL && h->spool_ok && spool_write(sp, data, len, &werr) != 0) {
					h->spool_ok = 0;
					snprintf(h->spool_err, sizeof h->spool_err, "%s", werr.msg);
				}
				conn_consume(c, len);
				left -= len;
			}
			imap_parser_literal_done(im->parser);
		}
	}
}

/* Sends "TAG cmd" (trace showing only cmd[0..shown) then "*") and reads
 * until the tagged reply, whose status goes to *status. */
static int
imap_cmd(struct imap *im, const char *cmd, size_t shown, struct cmd_handler *h,
    enum imap_resp_status *status, char *text, size_t textlen, struct mf_error *err)
{
	struct buf line;
	const struct imap_response *r;
	size_t cmdlen = strlen(cmd);
	int rc;

	snprintf(im->tag, sizeof im->tag, "A%04u", ++im->tagno);
	buf_init(&line, 0);
	buf_printf(&line, "%s ", im->tag);
	if (shown > cmdlen)
		shown = cmdlen;
	shown += line.len;
	buf_append(&line, cmd, cmdlen);
	buf_append(&line, "\r\n", 2);
	rc = conn_write(im->conn, line.data, line.len, shown < line.len - 2 ? shown : line.len, err);
	buf_free(&line); /* wipes: it may have held a password */
	if (rc != 0)
		return rc;

	for (;;) {
		if (h != NULL)
			h->spool_used = 0;
		if (imap_read(im, h, &r, err) != 0)
			return err->code;
		switch (r->kind) {
		case IMAP_RESP_TAGGED:
			if (strcmp(r->tag, im->tag) != 0)
				return err_set(err, MF_EPROTO, "server answered with unknown tag %s; "
				    "report this to the server's administrator", r->tag);
			*status = r->status;
			if (text != NULL)
				snprintf(text, textlen, "%s", r->text ? r->text : "");
			return 0;
		case IMAP_RESP_CONTINUE:
			if (h == NULL || h->cont == NULL)
				return err_set(err, MF_EPROTO, "server asked for more input where none was due; "
				    "report this to the server's administrator");
			if ((rc = h->cont(im, r, h->ctx, err)) != 0)
				return rc;
			break;
		case IMAP_RESP_UNTAGGED:
			if (h != NULL && h->untagged != NULL)
				h->untagged(im, r, h->ctx);
			break;
		}
	}
}

/* A tagged NO or BAD to what: a server error the session survives. */
static int
refused(struct mf_error *err, const char *what, enum imap_resp_status st, const char *text)
{
	err_set(err, MF_ESERVER, "%s failed: server said %s %s", what, st == IMAP_ST_NO ? "NO" : "BAD", text);
	err->reply = 1;
	return err->code;
}

/* A command whose tagged NO or BAD is a server error (MF_ESERVER). */
static int
imap_simple(struct imap *im, const char *cmd, struct cmd_handler *h, const char *what, struct mf_error *err)
{
	enum imap_resp_status st;
	char text[200];

	if (imap_cmd(im, cmd, (size_t)-1, h, &st, text, sizeof text, err) != 0)
		return err->code;
	return st == IMAP_ST_OK ? 0 : refused(err, what, st, text);
}

int
imap_greeting(struct imap *im, int *preauth, struct mf_error *err)
{
	const struct imap_response *r;

	*preauth = 0;
	if (imap_read(im, NULL, &r, err) != 0)
		return err->code;
	if (r->kind != IMAP_RESP_UNTAGGED || r->status == IMAP_ST_NONE)
		return err_set(err, MF_EPROTO, "server greeting is not an IMAP greeting; check host and port");
	if (r->status == IMAP_ST_BYE)
		return err_set(err, MF_ESERVER, "server refused the connection: %s; try again later", r->text);
	if (r->status == IMAP_ST_PREAUTH)
		*preauth = 1;
	else if (r->status != IMAP_ST_OK)
		return err_set(err, MF_EPROTO, "server greeting is not OK; check host and port");
	return 0;
}

int
imap_capability(struct imap *im, struct mf_error *err)
{
	unsigned before = im->caps_updates;

	if (imap_simple(im, "CAPABILITY", NULL, "CAPABILITY", err) != 0)
		return err->code;
	if (im->caps_updates == before)
		return err_set(err, MF_EPROTO, "server sent no capability list; report this to the server's administrator");
	return 0;
}

int
imap_starttls(struct imap *im, const char *host, const struct tls_opts *o, struct mf_error *err)
{
	enum imap_resp_status st;
	char text[200];

	if (imap_cmd(im, "STARTTLS", (size_t)-1, NULL, &st, text, sizeof text, err) != 0)
		return err->code;
	if (st != IMAP_ST_OK)
		return err_set(err, MF_EPROTO, "server refused STARTTLS (%s); not logging in without TLS, "
		    "use tls = implicit on port 993 if the server offers it", text);
	if (conn_start_tls(im->conn, host, o, 0, err) != 0)
		return err->code;
	/* Trust nothing learned before the handshake. */
	im->caps = 0;
	im->caps_known = 0;
	return imap_capability(im, err);
}

unsigned
imap_auth_offered(const struct imap *im)
{
	return im->sasl_offered;
}

const char *
imap_auth_names(const struct imap *im)
{
	return im->auth_names;
}

/* Continuation data for a LOGIN literal. */
struct secret_cont {
	const char *data;   /* sent once, traced as "*" */
	int sent;
};

static int
send_secret_cont(struct imap *im, const struct imap_response *r, void *ctx, struct mf_error *err)
{
	struct secret_cont *sc = ctx;
	struct buf line;
	int rc;

	(void)r;
	if (sc->sent)
		return err_set(err, MF_EAUTH, "server asked for more authentication data; check user and password");
	sc->sent = 1;
	buf_init(&line, 0);
	buf_printf(&line, "%s\r\n", sc->data);
	rc = conn_write(im->conn, line.data, line.len, 0, err);
	buf_free(&line);
	return rc;
}

/* After a successful login: capabilities change (UIDPLUS often appears
 * only now). */
static int
after_login(struct imap *im, unsigned before, struct mf_error *err)
{
	return im->caps_updates == before ? imap_capability(im, err) : 0;
}

int
imap_login(struct imap *im, const char *user, const char *password, struct mf_error *err)
{
	struct buf cmd;
	struct secret_cont sc = { 0 };
	struct cmd_handler h = { .ctx = &sc };
	enum imap_resp_status st;
	char text[200];
	size_t shown;
	unsigned before = im->caps_updates;
	int rc;

	buf_init(&cmd, 0);
	if (imap_has_cap(im, IMAP_CAP_LOGINDISABLED)) {
		rc = err_set(err, MF_EAUTH, "server disabled LOGIN (LOGINDISABLED) and offers no mechanism this "
		    "account can use (it offers: %s); ask the server's administrator",
		    im->auth_names[0] ? im->auth_names : "none");
		goto out;
	}
	buf_printf(&cmd, "LOGIN ");
	if (imap_quote(&cmd, user) < 0) {
		rc = err_set(err, MF_EAUTH, "user name holds characters LOGIN cannot send; use auth = plain");
		goto out;
	}
	buf_append(&cmd, " ", 1);
	shown = cmd.len;
	if (imap_quote(&cmd, password) < 0) {
		/* 8-bit or CR/LF in the password: send it as a literal. */
		buf_printf(&cmd, "{%zu}", strlen(password));
		sc.data = password;
		h.cont = send_secret_cont;
	}
	rc = imap_cmd(im, cmd.data, shown, &h, &st, text, sizeof text, err);
	if (rc != 0)
		goto out;
	if (st != IMAP_ST_OK) {
		rc = err_set(err, MF_EAUTH, "login failed: server said %s %s; check user and password",
		    st == IMAP_ST_NO ? "NO" : "BAD", text);
		goto out;
	}
	rc = after_login(im, before, err);
out:
	buf_free(&cmd);
	return rc;
}

/* One AUTHENTICATE exchange, driven by a struct sasl. */
struct auth_run {
	struct sasl *sasl;
	const char *initial;   /* base64 initial response not sent with the command (no SASL-IR) */
	int failed;            /* our side gave up and sent "*" */
	struct mf_error why;   /* ...and why */
};

static int
auth_cont(struct imap *im, const struct imap_response *r, void *ctx, struct mf_error *err)
{
	struct auth_run *ar = ctx;
	const char *text = r->text != NULL ? r->text : "";
	struct buf in, out, line;
	int rc;

	buf_init(&line, 0);
	if (ar->failed) {
		/* we cancelled: a server that asks again gets nothing more */
		return err_set(err, MF_EPROTO, "server went on with AUTHENTICATE after it was cancelled; "
		    "report this to the server's administrator");
	}
	if (ar->initial != NULL && text[0] == '\0') {
		/* no SASL-IR: the empty challenge asks for the initial response */
		buf_printf(&line, "%s\r\n", ar->initial);
		ar->initial = NULL;
		rc = conn_write(im->conn, line.data, line.len, 0, err);
		buf_free(&line);
		return rc;
	}
	ar->initial = NULL;
	buf_init(&in, SASL_CHALLENGE_MAX);
	buf_init(&out, 0);
	if (base64_decode(&in, text, strlen(text)) < 0) {
		err_set(&ar->why, MF_EAUTH, "the server's %s challenge is not valid base64 (or longer than %u bytes); "
		    "ask the server's administrator", "AUTHENTICATE", SASL_CHALLENGE_MAX);
		ar->failed = 1;
	} else if (sasl_step(ar->sasl, (const unsigned char *)in.data, in.len, &out, &ar->why) != 0) {
		ar->failed = 1;
	}
	if (ar->failed) {
		buf_append(&line, "*\r\n", 3);
		rc = conn_write(im->conn, line.data, line.len, line.len, err);
	} else {
		/* masked ("*") unless it holds nothing secret: a cancel and an
		 * answer must not look alike in the trace */
		base64_encode(&line, out.data, out.len);
		buf_append(&line, "\r\n", 2);
		rc = conn_write(im->conn, line.data, line.len, sasl_response_public(ar->sasl) ? line.len : 0, err);
	}
	buf_free(&in);
	buf_free(&out);
	buf_free(&line);
	return rc;
}

int
imap_authenticate(struct imap *im, enum sasl_mech m, struct sasl *s, struct mf_error *err)
{
	struct auth_run ar = { .sasl = s };
	struct cmd_handler h = { .cont = auth_cont, .ctx = &ar };
	struct buf cmd, raw, b64;
	enum imap_resp_status st;
	char text[200];
	size_t shown;
	unsigned before = im->caps_updates;
	int has, rc;

	buf_init(&cmd, 0);
	buf_init(&raw, 0);
	buf_init(&b64, 0);
	if ((rc = sasl_start(s, &raw, &has, err)) != 0)
		goto out;
	if (has)
		base64_encode(&b64, raw.data, raw.len);
	buf_printf(&cmd, "AUTHENTICATE %s", sasl_mech_name(m));
	shown = cmd.len;
	if (has && imap_has_cap(im, IMAP_CAP_SASL_IR)) {
		/* RFC 4959: an empty initial response is "=" on the command line */
		buf_printf(&cmd, " %s", b64.len > 0 ? b64.data : "=");
		shown++;
	} else if (has) {
		ar.initial = b64.data != NULL ? b64.data : "";
	}
	rc = imap_cmd(im, cmd.data, shown, &h, &st, text, sizeof text, err);
	if (rc != 0)
		goto out;
	if (ar.failed) {
		/* our reason, not the server's answer to the "*" */
		*err = ar.why;
		rc = err->code;
		goto out;
	}
	if (st != IMAP_ST_OK) {
		const char *why = sasl_server_error(s);
		if (why != NULL)
			rc = err_set(err, MF_EAUTH, "login with %s failed: the server refused the token (%s) and said "
			    "%s %s; the token may have expired or lack the mail scope: run oauth_token_command by hand",
			    sasl_mech_name(m), why, st == IMAP_ST_NO ? "NO" : "BAD", text);
		else
			rc = err_set(err, MF_EAUTH, "login with %s failed: server said %s %s; check user and %s",
			    sasl_mech_name(m), st == IMAP_ST_NO ? "NO" : "BAD", text,
			    (SASL_BIT(m) & SASL_TOKEN_MECHS) ? "oauth_token_command" : "password");
		goto out;
	}
	if ((rc = sasl_check_success(s, err)) != 0)
		goto out;
	rc = after_login(im, before, err);
out:
	buf_free(&cmd);
	buf_free(&raw);
	buf_free(&b64);
	return rc;
}

struct uid_list {
	uint32_t *v;
	size_t n, cap;
	int overflow;
};

static int cmp_u32(const void *a, const void *b);

/* The UIDs a search found, sorted and without duplicates: *n of them in
 * l->v.  An overflowing list is a protocol error (l->v freed). */
static int
uid_list_finish(struct uid_list *l, size_t *n, struct mf_error *err)
{
	size_t k = 0;

	if (l->overflow) {
		free(l->v);
		l->v = NULL;
		return err_set(err, MF_EPROTO, "server returned more than %u UIDs for one search; "
		    "report this to the server's administrator", IMAP_SEARCH_MAX);
	}
	if (l->n > 0) {
		qsort(l->v, l->n, sizeof *l->v, cmp_u32);
		for (size_t i = 0; i < l->n; i++)
			if (k == 0 || l->v[i] != l->v[k - 1])
				l->v[k++] = l->v[i];
	}
	*n = k;
	return 0;
}

static void
search_untagged(struct imap *im, const struct imap_response *r, void *ctx)
{
	struct uid_list *l = ctx;

	if (r->name == NULL || strcmp(r->name, "SEARCH") != 0)
		return;
	for (size_t i = 0; i < r->nnumbers; i++) {
		uint32_t uid = r->numbers[i];
		if (uid == 0)
			continue;
		if (l->n >= IMAP_SEARCH_MAX) {
			l->overflow = 1;
			return;
		}
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 64;
			l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
		}
		l->v[l->n++] = uid;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

struct fetch_ctx {
	const uint32_t *uids;   /* every UID this fetch asks for */
	size_t n;
	unsigned char *seen;    /* per UID: 0 nothing yet, 1 handed over (or given up), 2 its size came
	                         * without a body (the body may follow in another response) */
	const struct imap_fetch_ops *ops;
	void *ctx;
	struct cmd_handler *h;
	int stopping;           /* imap_fetch_stop(): hand nothing more over */
};

static int
find_uid(const uint32_t *v, size_t n, uint32_t uid, size_t *at)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] == uid) {
			*at = mid;
			return 1;
		}
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* "* n FETCH (UID u RFC822.SIZE n BODY[] data)": hands a complete message
 * over, with the reason it must not be delivered if it arrived damaged.
 * A body of NIL is a failed message, not something to skip: skipped, it
 * would stay on the server unnoticed.  A reply with the RFC822.SIZE we
 * asked for but no BODY[] is noted; if no body follows by the end of the
 * command, that is a failed message too (fetch_settle_chunk). */
static void
fetch_untagged(struct imap *im, const struct imap_response *r, void *ctx)
{
	struct fetch_ctx *f = ctx;
	const struct imap_arg *items, *body = NULL;
	uint32_t uid = 0, size = 0;
	int has_size = 0;
	const char *problem = NULL, *warning = NULL;
	char why[sizeof ((struct mf_error *)0)->msg], note[200];
	uint64_t got = 0;
	size_t at;

	(void)im;
	if (r->name == NULL || strcmp(r->name, "FETCH") != 0 || r->count != 1 || r->args[0].type != IMAP_ARG_LIST)
		return;
	items = r->args[0].list;
	for (size_t i = 0; i + 1 < r->args[0].count; i += 2) {
		if (imap_arg_is_atom(&items[i], "UID"))
			imap_arg_number(&items[i + 1], &uid);
		else if (imap_arg_is_atom(&items[i], "RFC822.SIZE"))
			has_size = imap_arg_number(&items[i + 1], &size) == 0;
		else if (imap_arg_is_atom(&items[i], "BODY[]"))
			body = &items[i + 1];
	}
	if (uid == 0 || (body == NULL && !has_size))
		return; /* a flags update, or a reply to someone else */
	if (!find_uid(f->uids, f->n, uid, &at) || f->seen[at] == 1)
		return; /* not asked for, or already handed over */
	if (body == NULL) {
		f->seen[at] = 2;
		return;
	}
	f->seen[at] = 1;
	if (f->stopping)
		return; /* stopping: it stays on the server for the next run */
	if (body->type == IMAP_ARG_NIL || body->type == IMAP_ARG_ATOM || body->type == IMAP_ARG_LIST) {
		f->ops->message(f->ctx, uid, NULL, "the server sent NIL as its body; the message stays on the server, "
		    "report this to the server's administrator", NULL);
		return;
	}
	if (body->type == IMAP_ARG_STRING) {
		struct mf_error werr;
		spool_reset(f->h->spool);
		if (spool_write(f->h->spool, body->str, body->len, &werr) != 0) {
			snprintf(why, sizeof why, "%s", werr.msg);
			problem = why;
		}
		got = body->len;
	} else if (body->type == IMAP_ARG_LITERAL && body->cookie == f->h->spool) {
		if (!f->h->spool_ok)
			problem = f->h->spool_err;
		got = body->literal_size;
	} else {
		/* A second large literal in one response found the spool taken. */
		f->ops->message(f->ctx, uid, NULL, "the server's reply held more than one message body; "
		    "the message stays on the server", NULL);
		return;
	}
	/* The literal is authoritative: some servers report approximate
	 * sizes, so a difference is worth a warning, not a lost message. */
	if (problem == NULL && has_size && got != size) {
		snprintf(note, sizeof note, "the server sent %llu bytes for a message it says has %u; "
		    "delivering the %llu bytes it sent", (unsigned long long)got, size, (unsigned long long)got);
		warning = note;
	}
	f->ops->message(f->ctx, uid, f->h->spool, problem, warning);
}

/* Sends "TAG cmd" without waiting and records it as outstanding. */
static int
imap_send(struct imap *im, const char *cmd, enum pend_kind kind, size_t first, size_t count, struct mf_error *err)
{
	struct pending *p;
	struct buf line;
	int rc;

	if (im->npend == IMAP_PIPELINE_MAX)
		fatal("imap_send: pipeline full");
	p = &im->pend[im->npend++];
	memset(p, 0, sizeof *p);
	p->tagno = ++im->tagno;
	p->kind = kind;
	p->first = first;
	p->count = count;
	if (kind == PEND_MARK || kind == PEND_EXPUNGE)
		im->nmarks_out++;
	buf_init(&line, 0);
	buf_printf(&line, "A%04u %s\r\n", p->tagno, cmd);
	rc = conn_write(im->conn, line.data, line.len, line.len, err);
	buf_free(&line);
	return rc;
}

/* Reads one response of a pipeline; a tagged one completes its command,
 * which leaves the outstanding list before on_done sees it (so on_done
 * may queue more). */
static int
imap_pump(struct imap *im, struct cmd_handler *h,
    void (*on_done)(struct imap *im, const struct pending *p, void *ctx), void *ctx, struct mf_error *err)
{
	const struct imap_response *r;
	struct pending done;
	unsigned tagno = 0;
	size_t i = 0;

	h->spool_used = 0;
	if (imap_read(im, h, &r, err) != 0)
		return err->code;
	if (r->kind == IMAP_RESP_UNTAGGED) {
		if (h->untagged != NULL)
			h->untagged(im, r, h->ctx);
		return 0;
	}
	if (r->kind == IMAP_RESP_CONTINUE)
		return err_set(err, MF_EPROTO, "server asked for more input where none was due; "
		    "report this to the server's administrator");
	if (sscanf(r->tag, "A%u", &tagno) == 1)
		while (i < im->npend && im->pend[i].tagno != tagno)
			i++;
	if (tagno == 0 || i == im->npend)
		return err_set(err, MF_EPROTO, "server answered with unknown tag %s; "
		    "report this to the server's administrator", r->tag);
	done = im->pend[i];
	memmove(&im->pend[i], &im->pend[i + 1], (im->npend - i - 1) * sizeof im->pend[0]);
	im->npend--;
	if (done.kind == PEND_MARK || done.kind == PEND_EXPUNGE)
		im->nmarks_out--;
	done.st = r->status;
	snprintf(done.text, sizeof done.text, "%s", r->text ? r->text : "");
	on_done(im, &done, ctx);
	free(done.uids);
	return 0;
}

struct fetch_run {
	struct fetch_ctx *f;
	size_t inflight;        /* FETCH commands outstanding */
	size_t mark_failed;     /* UIDs whose STORE was refused */
	char mark_text[160];
	int expunge_failed;     /* a UID EXPUNGE was refused */
	char expunge_text[160];
	const struct imap_fetch_ops *ops; /* marked() goes here */
	void *ctx;
};

/* The error for refused marks, if any (err->reply set: the session goes on). */
static int
marks_result(const struct fetch_run *run, struct mf_error *err)
{
	if (run->mark_failed > 0)
		err_set(err, MF_ESERVER, "%zu delivered message%s could not be marked on the server (it said %s); "
		    "the next run marks them", run->mark_failed, run->mark_failed == 1 ? "" : "s", run->mark_text);
	else if (run->expunge_failed)
		err_set(err, MF_ESERVER, "UID EXPUNGE failed (server said %s); the delivered messages stay on "
		    "the server flagged \\Seen \\Deleted and are not fetched again", run->expunge_text);
	else
		return 0;
	err->reply = 1;
	return err->code;
}

/* A FETCH is over: a UID of it that got a size but no body is a failed
 * message; one that got no reply at all is gone (another client expunged
 * it meanwhile) or lost by the server, worth a warning.  Either way
 * nothing that comes for them later is handed over: their chunk is
 * settled. */
static void
fetch_settle_chunk(struct fetch_run *run, const struct pending *p, int ok)
{
	struct fetch_ctx *f = run->f;

	for (size_t i = p->first; i < p->first + p->count; i++) {
		unsigned char was = f->seen[i];
		if (was == 1)
			continue;
		f->seen[i] = 1;
		if (f->stopping)
			continue;
		if (was == 2)
			f->ops->message(f->ctx, f->uids[i], NULL, "the server's reply to UID FETCH holds no BODY[]; "
			    "the message stays on the server, report this to the server's administrator", NULL);
		else if (ok)
			f->ops->message(f->ctx, f->uids[i], NULL, NULL, "the server did not return it "
			    "(expunged by another client meanwhile?)");
	}
}

static void
fetch_done(struct imap *im, const struct pending *p, void *ctx)
{
	struct fetch_run *run = ctx;

	(void)im;
	if (p->kind == PEND_FETCH) {
		run->inflight--;
		fetch_settle_chunk(run, p, p->st == IMAP_ST_OK);
		run->f->ops->chunk_done(run->f->ctx, run->f->uids + p->first, p->count,
		    p->st == IMAP_ST_OK ? NULL : p->text);
	} else if (p->kind == PEND_MARK && p->st != IMAP_ST_OK) {
		run->mark_failed += p->count;
		snprintf(run->mark_text, sizeof run->mark_text, "%s", p->text);
	} else if (p->kind == PEND_MARK && p->uids != NULL && run->ops != NULL && run->ops->marked != NULL) {
		run->ops->marked(run->ctx, p->uids, p->count);
	} else if (p->kind == PEND_EXPUNGE && p->st != IMAP_ST_OK) {
		run->expunge_failed = 1;
		snprintf(run->expunge_text, sizeof run->expunge_text, "%s", p->text);
	}
}

/* The tagged replies of SELECT and UID SEARCH sent together. */
struct select_search {
	enum imap_resp_status st[2];
	char text[2][160];
};

static void
select_search_done(struct imap *im, const struct pending *p, void *ctx)
{
	struct select_search *ss = ctx;
	int k = p->kind == PEND_SEARCH;

	(void)im;
	ss->st[k] = p->st;
	snprintf(ss->text[k], sizeof ss->text[k], "%s", p->text);
}

int
imap_select_search(struct imap *im, const char *folder, int examine, const char *criteria,
    struct imap_folder *out, struct mf_error *err)
{
	struct uid_list l = { 0 };
	struct cmd_handler h = { .untagged = search_untagged, .ctx = &l };
	struct select_search ss = { { IMAP_ST_NONE, IMAP_ST_NONE }, { "", "" } };
	struct buf cmd;
	size_t k = 0;
	int rc;

	memset(out, 0, sizeof *out);
	buf_init(&cmd, 0);
	buf_printf(&cmd, examine ? "EXAMINE " : "SELECT ");
	if (imap_quote(&cmd, folder) < 0) {
		buf_free(&cmd);
		err_set(err, MF_ESERVER, "folder name '%s' holds characters that need modified UTF-7; "
		    "write it in folders as the server lists it", folder);
		err->reply = 1; /* only this folder is lost */
		return err->code;
	}
	im->exists = 0;
	im->uidvalidity = 0;
	im->read_only = 0;
	/* The search does not wait for the SELECT's reply: a failed SELECT
	 * leaves no folder selected (RFC 3501 6.3.1), so the search then
	 * fails too and is ignored; one round trip less per folder. */
	rc = imap_send(im, cmd.data, PEND_SELECT, 0, 0, err);
	buf_free(&cmd);
	if (rc == 0) {
		buf_init(&cmd, 0);
		buf_printf(&cmd, "UID SEARCH %s", criteria);
		rc = imap_send(im, cmd.data, PEND_SEARCH, 0, 0, err);
		buf_free(&cmd);
	}
	while (rc == 0 && im->npend > 0)
		rc = imap_pump(im, &h, select_search_done, &ss, err);
	if (rc != 0) {
		free(l.v);
		return rc;
	}
	out->selected = ss.st[0] == IMAP_ST_OK;
	out->exists = im->exists;
	out->uidvalidity = im->uidvalidity;
	out->read_only = im->read_only;
	for (int i = 0; i < 2; i++) {
		char what[300];
		if (ss.st[i] == IMAP_ST_OK)
			continue;
		free(l.v);
		if (i == 0)
			snprintf(what, sizeof what, "selecting folder %s", folder);
		else
			snprintf(what, sizeof what, "%s: UID SEARCH", folder);
		return refused(err, what, ss.st[i], ss.text[i]);
	}
	if ((rc = uid_list_finish(&l, &k, err)) != 0)
		return rc;
	out->uids = l.v;
	out->n = k;
	return 0;
}

int
imap_uid_search(struct imap *im, const char *criteria, uint32_t **uids, size_t *n, struct mf_error *err)
{
	struct uid_list l = { 0 };
	struct cmd_handler h = { .untagged = search_untagged, .ctx = &l };
	struct select_search ss = { { IMAP_ST_NONE, IMAP_ST_NONE }, { "", "" } };
	struct buf cmd;
	int rc;

	*uids = NULL;
	*n = 0;
	buf_init(&cmd, 0);
	buf_printf(&cmd, "UID SEARCH %s", criteria);
	rc = imap_send(im, cmd.data, PEND_SEARCH, 0, 0, err);
	buf_free(&cmd);
	while (rc == 0 && im->npend > 0)
		rc = imap_pump(im, &h, select_search_done, &ss, err);
	if (rc == 0 && ss.st[1] != IMAP_ST_OK)
		rc = refused(err, "UID SEARCH", ss.st[1], ss.text[1]);
	if (rc == 0)
		rc = uid_list_finish(&l, n, err);
	if (rc != 0) {
		free(l.v);
		return rc;
	}
	*uids = l.v;
	return 0;
}

/* Sends queued marks while fewer than IMAP_MARK_WINDOW are outstanding:
 * each UID STORE carries as many UIDs as fit in one command (UID sets
 * compress runs), and its UID EXPUNGE, if asked for, follows it. */
static int
send_marks(struct imap *im, int track, struct mf_error *err)
{
	while (im->nmarks > 0 && im->nmarks_out + 2 <= IMAP_MARK_WINDOW && im->npend + 2 <= IMAP_PIPELINE_MAX) {
		struct mark_job *j = &im->marks[0];
		struct buf set, cmd;
		size_t k;
		int rc;

		buf_init(&set, 0);
		buf_init(&cmd, 0);
		k = imap_uid_set(&set, j->uids + j->done, j->n - j->done, IMAP_CMD_MAX - 64);
		buf_printf(&cmd, "UID STORE %s +FLAGS.SILENT (%s)", set.data, j->flags);
		rc = imap_send(im, cmd.data, PEND_MARK, 0, k, err);
		if (rc == 0 && track) {
			struct pending *p = &im->pend[im->npend - 1];
			p->uids = xreallocarray(NULL, k, sizeof *p->uids);
			memcpy(p->uids, j->uids + j->done, k * sizeof *p->uids);
		}
		if (rc == 0 && j->expunge) {
			buf_reset(&cmd);
			buf_printf(&cmd, "UID EXPUNGE %s", set.data);
			rc = imap_send(im, cmd.data, PEND_EXPUNGE, 0, k, err);
		}
		buf_free(&set);
		buf_free(&cmd);
		if (rc != 0)
			return rc;
		j->done += k;
		if (j->done == j->n) {
			free(j->uids);
			memmove(&im->marks[0], &im->marks[1], (im->nmarks - 1) * sizeof im->marks[0]);
			im->nmarks--;
		}
	}
	return 0;
}

/* Queues uids (any order; copied, sorted, duplicates dropped) to be marked. */
static void
queue_marks(struct imap *im, const uint32_t *uids, size_t n, const char *flags, int expunge)
{
	struct mark_job *j;
	size_t k = 0;

	if (n == 0)
		return;
	if (im->nmarks == im->marks_cap) {
		im->marks_cap = im->marks_cap ? im->marks_cap * 2 : 8;
		im->marks = xreallocarray(im->marks, im->marks_cap, sizeof *im->marks);
	}
	j = &im->marks[im->nmarks++];
	memset(j, 0, sizeof *j);
	j->uids = xreallocarray(NULL, n, sizeof *j->uids);
	memcpy(j->uids, uids, n * sizeof *j->uids);
	qsort(j->uids, n, sizeof *j->uids, cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || j->uids[i] != j->uids[k - 1])
			j->uids[k++] = j->uids[i];
	j->n = k;
	snprintf(j->flags, sizeof j->flags, "%s", flags);
	j->expunge = expunge;
}

int
imap_fetch(struct imap *im, const uint32_t *uids, size_t n, struct spool *spool,
    const struct imap_fetch_ops *ops, void *ctx, struct mf_error *err)
{
	struct cmd_handler h = { .untagged = fetch_untagged, .spool = spool };
	struct fetch_ctx f = { .uids = uids, .n = n, .ops = ops, .ctx = ctx, .h = &h };
	struct fetch_run run = { .f = &f, .ops = ops, .ctx = ctx };
	size_t next = 0;
	int rc = 0;

	h.ctx = &f;
	f.seen = xcalloc(n ? n : 1, 1);
	im->fetch_run = &run;
	while (rc == 0 && ((next < n && !f.stopping) || im->npend > 0 || im->nmarks > 0)) {
		if (ops->stop != NULL && !f.stopping && ops->stop(ctx))
			f.stopping = 1;
		rc = send_marks(im, ops->marked != NULL, err);
		/* Keep a few FETCH commands ahead, so the link never idles
		 * waiting for a round trip. */
		while (rc == 0 && next < n && !f.stopping && run.inflight < IMAP_FETCH_WINDOW &&
		    im->npend + IMAP_MARK_WINDOW + 1 < IMAP_PIPELINE_MAX) {
			struct buf cmd;
			size_t k;
			buf_init(&cmd, 0);
			buf_printf(&cmd, "UID FETCH ");
			k = imap_uid_set(&cmd, uids + next, n - next < IMAP_FETCH_BATCH ? n - next : IMAP_FETCH_BATCH,
			    IMAP_CMD_MAX - 64);
			buf_printf(&cmd, " (UID RFC822.SIZE BODY.PEEK[])");
			rc = imap_send(im, cmd.data, PEND_FETCH, next, k, err);
			buf_free(&cmd);
			next += k;
			run.inflight++;
		}
		if (rc == 0 && im->npend > 0)
			rc = imap_pump(im, &h, fetch_done, &run, err);
	}
	im->fetch_run = NULL;
	free(f.seen);
	if (rc == 0)
		rc = marks_result(&run, err);
	return rc;
}

void
imap_fetch_stop(struct imap *im)
{
	if (im->fetch_run != NULL)
		im->fetch_run->f->stopping = 1;
}

void
imap_fetch_mark(struct imap *im, const uint32_t *uids, size_t n, const char *flags, int expunge)
{
	if (im->fetch_run == NULL)
		fatal("imap_fetch_mark outside imap_fetch");
	queue_marks(im, uids, n, flags, expunge);
}

int
imap_mark(struct imap *im, const uint32_t *uids, size_t n, const char *flags, int expunge,
    const struct imap_fetch_ops *ops, void *ctx, struct mf_error *err)
{
	struct cmd_handler h = { 0 };
	struct fetch_run run = { .ops = ops, .ctx = ctx };
	int rc = 0;

	queue_marks(im, uids, n, flags, expunge);
	while (rc == 0 && (im->nmarks > 0 || im->npend > 0)) {
		rc = send_marks(im, ops != NULL && ops->marked != NULL, err);
		if (rc == 0 && im->npend > 0)
			rc = imap_pump(im, &h, fetch_done, &run, err);
	}
	if (rc == 0)
		rc = marks_result(&run, err);
	return rc;
}

int
imap_logout(struct imap *im, struct mf_error *err)
{
	enum imap_resp_status st;

	return imap_cmd(im, "LOGOUT", (size_t)-1, NULL, &st, NULL, 0, err);
}

/* Whether r may mean new mail, for a watcher.  A NOTIFY STATUS whose
 * UIDNEXT has not grown (flags changed, a message expunged: a poll of our
 * own causes both) is no news. */
static int
is_event(struct imap *im, const struct imap_response *r)
{
	if (r->kind != IMAP_RESP_UNTAGGED || r->name == NULL)
		return 0;
	if (strcmp(r->name, "EXISTS") == 0)
		return 1;
	if (strcmp(r->name, "RECENT") == 0)
		return r->has_number && r->number > 0;
	if (strcmp(r->name, "STATUS") != 0)
		return 0;
	if (r->count >= 2 && (r->args[0].type == IMAP_ARG_ATOM || r->args[0].type == IMAP_ARG_STRING) &&
	    r->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *l = r->args[1].list;
		for (size_t i = 0; i + 1 < r->args[1].count; i += 2) {
			uint32_t next;
			size_t k;
			if (!imap_arg_is_atom(&l[i], "UIDNEXT") || imap_arg_number(&l[i + 1], &next) < 0)
				continue;
			for (k = 0; k < im->nwatched; k++)
				if (strcmp(im->watched[k].name, r->args[0].str) == 0)
					break;
			if (k < im->nwatched) {
				int grew = next > im->watched[k].uidnext;
				if (grew)
					im->watched[k].uidnext = next;
				return grew;
			}
			if (im->nwatched < sizeof im->watched / sizeof im->watched[0] &&
			    strlen(r->args[0].str) < sizeof im->watched[0].name) {
				snprintf(im->watched[im->nwatched].name, sizeof im->watched[0].name, "%s", r->args[0].str);
				im->watched[im->nwatched++].uidnext = next;
			}
			return 1; /* the first word of a folder: news, as far as we can tell */
		}
	}
	return 1;
}

int
imap_examine(struct imap *im, const char *folder, struct mf_error *err)
{
	struct buf cmd;
	int rc;

	buf_init(&cmd, 0);
	buf_printf(&cmd, "EXAMINE ");
	if (imap_quote(&cmd, folder) < 0) {
		buf_free(&cmd);
		return err_set(err, MF_EUSAGE, "folder name %s is not plain ASCII; write it as the server lists it "
		    "(modified UTF-7)", folder);
	}
	rc = imap_simple(im, cmd.data, NULL, "EXAMINE", err);
	buf_free(&cmd);
	return rc;
}

int
imap_notify_set(struct imap *im, char *const *folders, size_t n, struct mf_error *err)
{
	struct buf cmd;
	int rc;

	buf_init(&cmd, IMAP_CMD_MAX);
	buf_printf(&cmd, "NOTIFY SET (mailboxes (");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append(&cmd, " ", 1);
		if (imap_quote(&cmd, folders[i]) < 0) {
			buf_free(&cmd);
			return err_set(err, MF_EUSAGE, "folder name %s is not plain ASCII, or the list is too long; "
			    "write it as the server lists it (modified UTF-7)", folders[i]);
		}
	}
	if (buf_printf(&cmd, ") (MessageNew MessageExpunge))") < 0) {
		buf_free(&cmd);
		return err_set(err, MF_EUSAGE, "too many folders for one NOTIFY command");
	}
	rc = imap_simple(im, cmd.data, NULL, "NOTIFY", err);
	buf_free(&cmd);
	return rc;
}

int
imap_idle_start(struct imap *im, unsigned *events, struct mf_error *err)
{
	const struct imap_response *r;
	char line[64];
	int n;

	snprintf(im->tag, sizeof im->tag, "A%04u", ++im->tagno);
	n = snprintf(line, sizeof line, "%s IDLE\r\n", im->tag);
	if (conn_write(im->conn, line, (size_t)n, (size_t)n, err) != 0)
		return err->code;
	for (;;) {
		if (imap_read(im, NULL, &r, err) != 0)
			return err->code;
		if (r->kind == IMAP_RESP_CONTINUE)
			return 0;
		if (r->kind == IMAP_RESP_TAGGED) {
			if (strcmp(r->tag, im->tag) != 0)
				return err_set(err, MF_EPROTO, "server answered with unknown tag %s; "
				    "report this to the server's administrator", r->tag);
			return refused(err, "IDLE", r->status, r->text ? r->text : "");
		}
		if (r->status == IMAP_ST_BYE)
			return err_set(err, MF_ESERVER, "server closed the connection: %s", im->bye);
		*events += (unsigned)is_event(im, r);
	}
}

int
imap_idle_read(struct imap *im, unsigned *events, struct mf_error *err)
{
	const struct imap_response *r;

	if (imap_read(im, NULL, &r, err) != 0)
		return err->code;
	if (r->kind == IMAP_RESP_TAGGED)
		return err_set(err, MF_ESERVER, "server ended IDLE (%s %s); reconnecting",
		    r->status == IMAP_ST_OK ? "OK" : r->status == IMAP_ST_NO ? "NO" : "BAD", r->text ? r->text : "");
	if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_BYE)
		return err_set(err, MF_ESERVER, "server closed the connection: %s", im->bye);
	if (r->code != NULL && strcmp(r->code, "NOTIFICATIONOVERFLOW") == 0) {
		/* RFC 5465 5.8: the server has stopped notifying; mail may have
		 * come meanwhile, and the watch must be set up again */
		(*events)++;
		return err_set(err, MF_ESERVER, "server dropped its notifications (NOTIFICATIONOVERFLOW); "
		    "watching again");
	}
	*events += (unsigned)is_event(im, r);
	return 0;
}

int
imap_idle_done(struct imap *im, unsigned *events, struct mf_error *err)
{
	const struct imap_response *r;

	if (conn_write(im->conn, "DONE\r\n", 6, 6, err) != 0)
		return err->code;
	for (;;) {
		if (imap_read(im, NULL, &r, err) != 0)
			return err->code;
		if (r->kind == IMAP_RESP_TAGGED) {
			if (strcmp(r->tag, im->tag) != 0)
				return err_set(err, MF_EPROTO, "server answered with unknown tag %s; "
				    "report this to the server's administrator", r->tag);
			return r->status == IMAP_ST_OK ? 0 : refused(err, "IDLE", r->status, r->text ? r->text : "");
		}
		if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_BYE)
			return err_set(err, MF_ESERVER, "server closed the connection: %s", im->bye);
		*events += (unsigned)is_event(im, r);
	}
}
