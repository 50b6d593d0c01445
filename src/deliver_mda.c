/* deliver_mda.c: hand each message to an MDA (procmail) on its stdin.
 *
 * The command runs through /bin/sh -c with %T and %F replaced by
 * shell-quoted values, so a hostile sender address is only ever data.
 * Its stdin is a file that already holds the whole message (mda_input),
 * never a pipe we are still writing.  Exit 0 means delivered; 75
 * (EX_TEMPFAIL) means try again later; any other status, a signal,
 * mda_timeout or a lost exit status means failed.  Its stdout and stderr
 * go to our log, one line at a time, with the account. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "log.h"
#include "mf_limits.h"
#include "proc.h"
#include "xmalloc.h"

#define EX_TEMPFAIL 75

/* Appends s to b in single quotes, ' written as '\''. */
static void
shell_quote(struct buf *b, const char *s)
{
	buf_append(b, "'", 1);
	for (; *s; s++) {
		if (*s == '\'')
			buf_append(b, "'\\''", 4);
		else
			buf_append(b, s, 1);
	}
	buf_append(b, "'", 1);
}

/* The command with %T (local user), %F (sender) and %% expanded; the caller frees it. */
static char *
mda_command(const char *tmpl, const char *sender)
{
	char *user = deliver_local_user();
	struct buf b;

	buf_init(&b, 0);
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '%' && p[1] == 'T') {
			shell_quote(&b, user);
			p++;
		} else if (p[0] == '%' && p[1] == 'F') {
			shell_quote(&b, sender);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			buf_append(&b, "%", 1);
			p++;
		} else {
			buf_append(&b, p, 1);
		}
	}
	free(user);
	return b.data != NULL ? b.data : xstrdup("");
}

/* A command with none of these is a plain list of words and is run
 * without a shell: one process less per message. */
#define SHELL_CHARS "|&;<>()$`\\\"'*?[]#~={}!\n"

/* Starts the MDA with stdin from in and stdout+stderr to out (see
 * proc_spawn).  cmd is tmpl expanded for the shell.  Returns 0 or an
 * errno value. */
static int
mda_spawn(const char *tmpl, const char *cmd, const char *sender, int in, int out, struct proc *child)
{
	char **argv = NULL, *words = NULL;
	size_t argc = 0;
	int rc;

	if (strpbrk(tmpl, SHELL_CHARS) == NULL) {
		/* Words split on blanks; %T and %F become whole arguments, no quoting needed. */
		char *user = deliver_local_user();
		struct buf b;
		buf_init(&b, 0);
		for (const char *p = tmpl; *p; p++) {
			if (*p == ' ' || *p == '\t') {
				if (b.len > 0 && b.data[b.len - 1] != '\0')
					buf_append(&b, "", 1);
			} else if (p[0] == '%' && (p[1] == 'T' || p[1] == 'F' || p[1] == '%')) {
				const char *v = p[1] == 'T' ? user : p[1] == 'F' ? sender : "%";
				buf_append(&b, v, strlen(v));
				p++;
			} else {
				buf_append(&b, p, 1);
			}
		}
		if (b.len > 0 && b.data[b.len - 1] != '\0')
			buf_append(&b, "", 1);
		free(user);
		words = b.data;
		for (size_t i = 0; i < b.len; i += strlen(b.data + i) + 1) {
			argv = xreallocarray(argv, argc + 2, sizeof *argv);
			argv[argc++] = b.data + i;
		}
	}
	if (argc > 0) {
		argv[argc] = NULL;
		rc = proc_spawn(child, argv, in, out, out);
	} else {
		char *shargv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
		rc = proc_spawn(child, shargv, in, out, out);
	}
	free(argv);
	free(words);
	return rc;
}

struct fd_put {
	int fd;
	int err;   /* errno of a failed write */
};

static int
fd_put(void *ctx, const char *p, size_t n)
{
	struct fd_put *f = ctx;

	while (n > 0) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			f->err = w < 0 ? errno : ENOSPC;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The message as the MDA is to read it (LF line ends, no From_ line),
 * complete in a file of its own before the MDA starts: then no kill of
 * ours, at any moment, can hand the MDA part of a message, as a pipe we
 * were still writing would.  A message that was small enough for our
 * memory goes into a sealed memfd; a larger one into an unlinked file in
 * $TMPDIR like its spool file: a memfd of a 2 GB message would be memory
 * charged to no process's RSS, which the OOM killer would look for
 * elsewhere.  Sets *fd (read from the start); 0 or MF_EDELIVER. */
static int
mda_input(struct sink *s, struct spool *msg, int *fd, struct mf_error *err)
{
	struct fd_put f = { .fd = spool_anon_fd(spool_size(msg) <= SPOOL_MEMORY_MAX) };
	int conv;

	*fd = -1;
	if (f.fd < 0)
		return err_set(err, MF_EDELIVER, "cannot create a temporary file for the MDA's input: %s; "
		    "check TMPDIR and free space", strerror(errno));
	conv = deliver_convert(s, msg, 0, 0, fd_put, &f);
	if (conv == -2) {
		err_set(err, MF_EDELIVER, "cannot read the spooled message back: %s; check TMPDIR", strerror(errno));
		goto fail;
	}
	if (conv != 0) {
		err_set(err, MF_EDELIVER, "cannot write the message for the MDA to a temporary file: %s; "
		    "check TMPDIR and free space", strerror(f.err));
		goto fail;
	}
#ifdef F_ADD_SEALS
	/* Nobody, the MDA included, can change it now (EINVAL: not a memfd). */
	if (fcntl(f.fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0 &&
	    errno != EINVAL) {
		err_set(err, MF_EDELIVER, "cannot seal the MDA's input: %s; this is a bug", strerror(errno));
		goto fail;
	}
#endif
	if (lseek(f.fd, 0, SEEK_SET) != 0) {
		err_set(err, MF_EDELIVER, "cannot rewind the MDA's input: %s; check TMPDIR", strerror(errno));
		goto fail;
	}
	*fd = f.fd;
	return 0;
fail:
	close(f.fd);
	return err->code;
}

static int
mda_open(struct sink *s, struct mf_error *err)
{
	return 0;
}

static int
mda_deliver(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err)
{
	struct proc p;
	struct proc_log log;
	struct proc_reader out;
	int in, outp[2], rc;
	char *cmd;

	if ((rc = mda_input(s, msg, &in, err)) != 0)
		return rc;
	if (pipe2(outp, O_CLOEXEC) < 0) {
		close(in);
		return err_set(err, MF_EDELIVER, "cannot create a pipe for the MDA: %s; the system may be short of file descriptors, try again later", strerror(errno));
	}
	cmd = mda_command(s->acct->mda, sender);
	rc = mda_spawn(s->acct->mda, cmd, sender, in, outp[1], &p);
	free(cmd);
	close(in);
	close(outp[1]);
	if (rc != 0) {
		close(outp[0]);
		return err_set(err, MF_EDELIVER, "cannot start the MDA: %s%s", proc_strerror(rc),
		    rc == ECHILD ? "" : "; check the mda command");
	}
	/* Wait for the MDA itself, not for what it may have left running
	 * with our pipe still open, logging its output meanwhile. */
	proc_log_init(&log, s->who, "mda");
	out = (struct proc_reader){ .fd = outp[0], .got = proc_log_got, .ctx = &log };
	proc_wait(&p, &out, 1, proc_now_ms() + (long)s->acct->mda_timeout * 1000);
	close(outp[0]);
	proc_log_finish(&log);

	switch (p.end) {
	case PROC_EXITED:
		if (p.code == 0)
			return 0;
		if (p.code == EX_TEMPFAIL) {
			*temporary = 1;
			return err_set(err, MF_EDELIVER, "MDA exited 75 (temporary failure); the message stays on the server for the next run");
		}
		return err_set(err, MF_EDELIVER, "MDA exited %d%s; check the mda command and its logs",
		    p.code, p.code == 127 ? " (command not found?)" : "");
	case PROC_SIGNALED:
		return err_set(err, MF_EDELIVER, "MDA killed by signal %d; check the MDA command", p.code);
	case PROC_TIMEDOUT:
		/* The next message would most likely hang as long. */
		*temporary = 1;
		return err_set(err, MF_EDELIVER, "MDA did not finish within mda_timeout (%d s) and was killed; "
		    "check the MDA or raise mda_timeout", s->acct->mda_timeout);
	case PROC_STOPPED:
		return err_set(err, MF_EDELIVER, "MDA did not finish before mailfetch had to stop, and was killed; "
		    "the message stays on the server and may arrive twice");
	default:
		return err_set(err, MF_EDELIVER, "the MDA's exit status was lost (SIGCHLD ignored?), so it may or may not "
		    "have delivered; the message stays on the server and may arrive twice");
	}
}

/* Each MDA that exited 0 has delivered: nothing is left to make durable. */
static int
mda_commit(struct sink *s, struct mf_error *err)
{
	return 0;
}

static void
mda_close(struct sink *s)
{
}

const struct sink_ops sink_mda_ops = {
	.name = "mda",
	.durable_per_message = 1,
	.open = mda_open,
	.deliver = mda_deliver,
	.commit = mda_commit,
	.close = mda_close,
};
