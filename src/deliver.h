/* deliver.h: delivery sinks.  A sink takes one complete message at a time
 * (already received in full); a message is safely delivered once a later
 * commit has succeeded, and only then may the caller tell the server. */
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
	int durable_per_message; /* each successful deliver is already durable (an MDA) */
	/* Prepares the sink (opens and checks an mbox); 0 or MF_EDELIVER. */
	int (*open)(struct sink *s, struct mf_error *err);
	/* Delivers msg (wire form, CRLF) from envelope sender; 0 when the
	 * message is stored (durable at the next successful commit), else
	 * MF_EDELIVER with err set, nothing of the message left behind, and
	 * *temporary set if trying later may succeed.  A sink with flush may
	 * instead take the message and return 0 with s->pending set: msg is
	 * no longer needed, and the outcome comes later through the
	 * outcome hook (from a later deliver, or from flush). */
	int (*deliver)(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err);
	/* Waits for the outcome of every message taken with s->pending set,
	 * and hands each to the outcome hook.  May be NULL. */
	void (*flush)(struct sink *s);
	/* Makes every message delivered since the last commit durable (mbox:
	 * one fsync).  On failure none of them counts as delivered and
	 * MF_EDELIVER is returned with err set. */
	int (*commit)(struct sink *s, struct mf_error *err);
	void (*close)(struct sink *s);
	/* Lets go of what the sink holds between messages (an mbox's locks)
	 * before a wait on the network; the next deliver takes it again.
	 * May be NULL. */
	void (*pause)(struct sink *s);
};

/* Tells the journal where a message is about to be written (token: see
 * state_intent); returns 0, or -1 if that could not be recorded. */
typedef int (*sink_intent_fn)(void *ctx, const char *token);

/* The outcome of a message a sink took without waiting (see deliver):
 * tag and size as given to sink_deliver; rc 0 delivered, else
 * MF_EDELIVER with err and temporary as deliver would have set them. */
typedef void (*sink_outcome_fn)(void *ctx, unsigned long tag, unsigned long long size, int rc, int temporary,
    const struct mf_error *err);

struct sink {
	const struct sink_ops *ops;
	const struct account *acct;
	const char *who;   /* log prefix */
	struct buf out;    /* conversion buffer */
	void *priv;
	/* For deliver(), set by sink_deliver: */
	const char *prior; /* an interrupted run's intent token for this message, or NULL */
	sink_intent_fn intent; /* to call before writing the first byte (a sink with a place to name) */
	void *intent_ctx;
	int already;       /* out: prior showed the message is there whole; nothing was written */
	unsigned long tag; /* the caller's name for the message, for the outcome hook */
	int pending;       /* out: taken; the outcome comes through the outcome hook */
	sink_outcome_fn outcome;
	void *outcome_ctx;
	/* Where an interrupted run last wrote (a token, or NULL): before
	 * appending, a sink looks there for half a message it left at the
	 * end of the file, and takes it out. */
	const char *last_intent;
};

extern const struct sink_ops sink_mda_ops;
extern const struct sink_ops sink_mbox_ops;
extern const struct sink_ops sink_smtp_ops, sink_lmtp_ops;
extern const struct sink_ops sink_maildir_ops;

/* Opens the sink the account asks for; NULL with err set on failure. */
struct sink *sink_open(const struct account *a, const char *who, struct mf_error *err);
/* Delivers one message; see sink_ops.deliver.  prior: the token of an
 * intent an interrupted run recorded for it (or NULL): a sink that can
 * check finds out whether the message got there whole, and then sets
 * *already and writes nothing (a partial copy it finds at the end of
 * the file is removed first).  Before writing, the sink reports where
 * through the hook of sink_set_intent.  With *pending set on return the
 * sink took the message and its outcome (under tag) comes later through
 * the hook of sink_set_outcome; that can happen inside any later
 * sink_deliver, sink_flush, sink_commit or sink_close. */
int sink_deliver(struct sink *s, struct spool *msg, const char *prior, unsigned long tag, int *temporary,
    int *already, int *pending, struct mf_error *err);
/* Sets the hook that takes the outcome of each message taken pending. */
void sink_set_outcome(struct sink *s, sink_outcome_fn fn, void *ctx);
/* Waits for every pending message's outcome (see sink_ops.flush). */
void sink_flush(struct sink *s);
/* Sets the hook a sink calls before it writes a message, and the token
 * of the last place an interrupted run wrote to (NULL: none), which must
 * outlive the sink. */
void sink_set_intent(struct sink *s, sink_intent_fn fn, void *ctx, const char *last_intent);
/* See sink_ops.pause; NULL is fine. */
void sink_pause(struct sink *s);
/* Makes the messages delivered since the last commit durable; see
 * sink_ops.commit.  Pending messages are flushed first. */
int sink_commit(struct sink *s, struct mf_error *err);
/* Closes, after a flush; anything not committed is taken back where the
 * sink can. */
void sink_close(struct sink *s);

/* fsyncs the directory that holds path (a new file's name must survive a
 * crash).  0, or -1 with errno set. */
int deliver_sync_parent(const char *path);

/* The address in a Return-Path header's value v[0..end): what is inside
 * <...>, else the value without surrounding blanks (*len may be 0). */
void deliver_path_addr(const char *v, const char *end, const char **addr, size_t *len);

/* The envelope sender from the message's Return-Path header, reduced to
 * characters safe in a From_ line; "MAILER-DAEMON" if there is none.
 * The caller frees the result. */
char *deliver_sender(struct spool *msg);

/* The name of the user running mailfetch (getpwuid_r: safe in threads),
 * or "" when it has none; the caller frees it. */
char *deliver_local_user(void);

/* Streams msg through CRLF-to-LF (and mboxrd quoting) conversion, handing
 * the converted bytes to put in pieces; put returns 0 or -1 to stop.
 * Returns 0, -1 if put failed, -2 if reading the spool failed. */
int deliver_convert(struct sink *s, struct spool *msg, int mboxrd, int final_newline,
    int (*put)(void *ctx, const char *p, size_t n), void *ctx);

#endif
