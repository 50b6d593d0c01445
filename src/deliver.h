/* deliver.h: delivery sinks.  A sink takes one complete message at a time
 * (already received in full) and reports whether it is safely delivered:
 * only then may the caller tell the server. */
#ifndef MAILFETCH_DELIVER_H
#define MAILFETCH_DELIVER_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "spool.h"
#include "status.h"

struct sink;

struct sink_ops {
	const char *name;
	/* Prepares the sink (opens and checks an mbox); 0 or MF_EDELIVER. */
	int (*open)(struct sink *s, struct mf_error *err);
	/* Delivers msg (wire form, CRLF) from envelope sender; 0 when the
	 * message is safely stored, else MF_EDELIVER with err set and
	 * *temporary set if trying later may succeed. */
	int (*deliver)(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err);
	void (*close)(struct sink *s);
};

struct sink {
	const struct sink_ops *ops;
	const struct account *acct;
	const char *who;   /* log prefix */
	struct buf out;    /* conversion buffer */
	void *priv;
};

extern const struct sink_ops sink_mda_ops;
extern const struct sink_ops sink_mbox_ops;

/* Opens the sink the account asks for; NULL with err set on failure. */
struct sink *sink_open(const struct account *a, const char *who, struct mf_error *err);
/* Delivers one message; see sink_ops.deliver. */
int sink_deliver(struct sink *s, struct spool *msg, int *temporary, struct mf_error *err);
void sink_close(struct sink *s);

/* The envelope sender from the message's Return-Path header, reduced to
 * characters safe in a From_ line; "MAILER-DAEMON" if there is none.
 * The caller frees the result. */
char *deliver_sender(struct spool *msg);

/* Streams msg through CRLF-to-LF (and mboxrd quoting) conversion, handing
 * the converted bytes to put in pieces; put returns 0 or -1 to stop.
 * Returns 0, -1 if put failed, -2 if reading the spool failed. */
int deliver_convert(struct sink *s, struct spool *msg, int mboxrd, int final_newline,
    int (*put)(void *ctx, const char *p, size_t n), void *ctx);

#endif
