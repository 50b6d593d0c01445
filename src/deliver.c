/* deliver.c: sink dispatch and what every sink shares. */
#include "autoconfig.h"

#include <ctype.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "deliver.h"
#include "mf_limits.h"
#include "msgconv.h"
#include "xmalloc.h"

struct sink *
sink_open(const struct account *a, const char *who, struct mf_error *err)
{
	struct sink *s = xcalloc(1, sizeof *s);

	switch (a->deliver) {
	case DELIVER_MBOX:
		s->ops = &sink_mbox_ops;
		break;
	case DELIVER_MDA:
		s->ops = &sink_mda_ops;
		break;
	case DELIVER_MAILDIR:
		s->ops = &sink_maildir_ops;
		break;
	case DELIVER_SMTP:
		s->ops = &sink_smtp_ops;
		break;
	case DELIVER_LMTP:
		s->ops = &sink_lmtp_ops;
		break;
	default:
		fatal("sink_open: no sink for deliver = %d", a->deliver);
	}
	s->acct = a;
	s->who = who;
	buf_init(&s->out, 0);
	if (s->ops->open(s, err) != 0) {
		buf_free(&s->out);
		free(s);
		return NULL;
	}
	return s;
}

int
sink_deliver(struct sink *s, struct spool *msg, const char *prior, unsigned long tag, int *temporary,
    int *already, int *pending, struct mf_error *err)
{
	char *sender = deliver_sender(msg);
	int r;

	*temporary = 0;
	s->prior = prior;
	s->already = 0;
	s->tag = tag;
	s->pending = 0;
	r = s->ops->deliver(s, msg, sender, temporary, err);
	*already = r == 0 && s->already;
	*pending = r == 0 && s->pending;
	s->prior = NULL;
	free(sender);
	return r;
}

void
sink_set_outcome(struct sink *s, sink_outcome_fn fn, void *ctx)
{
	s->outcome = fn;
	s->outcome_ctx = ctx;
}

void
sink_flush(struct sink *s)
{
	if (s != NULL && s->ops->flush != NULL)
		s->ops->flush(s);
}

void
sink_set_intent(struct sink *s, sink_intent_fn fn, void *ctx, const char *last_intent)
{
	s->intent = fn;
	s->intent_ctx = ctx;
	s->last_intent = last_intent;
}

void
sink_pause(struct sink *s)
{
	if (s != NULL && s->ops->pause != NULL)
		s->ops->pause(s);
}

int
sink_commit(struct sink *s, struct mf_error *err)
{
	sink_flush(s);
	return s->ops->commit(s, err);
}

void
sink_close(struct sink *s)
{
	if (s == NULL)
		return;
	sink_flush(s);
	s->ops->close(s);
	buf_free(&s->out);
	free(s);
}

/* Characters a sender may keep: enough for real addresses, nothing a
 * shell or a From_ line could take for anything but data. */
static int
addr_char_ok(unsigned char c)
{
	return isalnum(c) || (c != 0 && strchr(".@+_=-", c) != NULL);
}

int
deliver_sync_parent(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd, r;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	fd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

void
deliver_path_addr(const char *v, const char *end, const char **addr, size_t *len)
{
	const char *lt = memchr(v, '<', (size_t)(end - v)), *gt;

	if (lt != NULL && (gt = memchr(lt, '>', (size_t)(end - lt))) != NULL) {
		v = lt + 1;
		end = gt;
	} else {
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			end--;
	}
	*addr = v;
	*len = (size_t)(end - v);
}

char *
deliver_sender(struct spool *msg)
{
	char head[HEADER_SCAN_MAX + 1];
	ssize_t n = spool_pread(msg, head, HEADER_SCAN_MAX, 0);
	const char *p, *end;

	if (n <= 0)
		return xstrdup("MAILER-DAEMON");
	head[n] = '\0';
	for (p = head; p != NULL && *p != '\0' && *p != '\r' && *p != '\n'; ) {
		if (strncasecmp(p, "Return-Path:", 12) == 0) {
			const char *v;
			size_t len;
			end = strchr(p + 12, '\n');
			deliver_path_addr(p + 12, end != NULL ? end : p + 12 + strlen(p + 12), &v, &len);
			if (len == 0)
				break;
			for (size_t i = 0; i < len; i++)
				if (!addr_char_ok((unsigned char)v[i]))
					return xstrdup("MAILER-DAEMON");
			return xstrndup(v, len);
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return xstrdup("MAILER-DAEMON");
}

int
deliver_convert(struct sink *s, struct spool *msg, int mboxrd, int final_newline,
    int (*put)(void *ctx, const char *p, size_t n), void *ctx)
{
	char chunk[IO_CHUNK];
	struct msgconv mc;
	uint64_t off = 0;

	msgconv_init(&mc, mboxrd);
	for (;;) {
		ssize_t n = spool_pread(msg, chunk, sizeof chunk, off);
		if (n < 0)
			return -2;
		buf_reset(&s->out);
		if (n == 0)
			msgconv_finish(&mc, &s->out, final_newline);
		else
			msgconv_feed(&mc, chunk, (size_t)n, &s->out);
		if (s->out.len > 0 && put(ctx, s->out.data, s->out.len) < 0)
			return -1;
		if (n == 0)
			return 0;
		off += (uint64_t)n;
	}
}

char *
deliver_local_user(void)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &found) != 0 || found == NULL)
		return xstrdup("");
	return xstrdup(found->pw_name);
}
