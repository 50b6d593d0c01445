/* deliver_mda.c: hand each message to an MDA (procmail) on its stdin.
 *
 * The command runs through /bin/sh -c with %T and %F replaced by
 * shell-quoted values, so a hostile sender address is only ever data.
 * Exit 0 means delivered; 75 (EX_TEMPFAIL) means try again later; any
 * other status, a signal, a broken pipe or mda_timeout means failed.  Its
 * stdout and stderr go to our log, one line at a time, with the account. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "log.h"
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
	struct passwd *pw = getpwuid(getuid());
	const char *user = pw != NULL ? pw->pw_name : "";
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
	return b.data != NULL ? b.data : xstrdup("");
}

/* A command with none of these is a plain list of words and is run
 * without a shell: one process less per message. */
#define SHELL_CHARS "|&;<>()$`\\\"'*?[]#~={}!\n"

/* Starts the MDA with stdin from in and stdout+stderr to out, in its own
 * process group (so a timeout can stop what it started), with a clean
 * signal mask and default SIGPIPE/SIGXFSZ; only fds 0-2 survive (all
 * others are O_CLOEXEC).  cmd is tmpl expanded for the shell.  Returns 0
 * or an errno value. */
static int
mda_spawn(const char *tmpl, const char *cmd, const char *sender, int in, int out, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	char **argv = NULL, *words = NULL;
	size_t argc = 0;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, out, 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGXFSZ);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

	if (strpbrk(tmpl, SHELL_CHARS) == NULL) {
		/* Words split on blanks; %T and %F become whole arguments, no quoting needed. */
		struct passwd *pw = getpwuid(getuid());
		struct buf b;
		buf_init(&b, 0);
		for (const char *p = tmpl; *p; p++) {
			if (*p == ' ' || *p == '\t') {
				if (b.len > 0 && b.data[b.len - 1] != '\0')
					buf_append(&b, "", 1);
			} else if (p[0] == '%' && (p[1] == 'T' || p[1] == 'F' || p[1] == '%')) {
				const char *v = p[1] == 'T' ? (pw ? pw->pw_name : "") : p[1] == 'F' ? sender : "%";
				buf_append(&b, v, strlen(v));
				p++;
			} else {
				buf_append(&b, p, 1);
			}
		}
		if (b.len > 0 && b.data[b.len - 1] != '\0')
			buf_append(&b, "", 1);
		words = b.data;
		for (size_t i = 0; i < b.len; i += strlen(b.data + i) + 1) {
			argv = xreallocarray(argv, argc + 2, sizeof *argv);
			argv[argc++] = b.data + i;
		}
	}
	if (argc > 0) {
		argv[argc] = NULL;
		rc = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
	} else {
		char *shargv[] = { "sh", "-c", (char *)cmd, NULL };
		rc = posix_spawn(pid, "/bin/sh", &fa, &at, shargv, environ);
	}
	free(argv);
	free(words);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

static long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct mda_run {
	struct sink *sink;
	pid_t pid;
	int in;            /* our end of the MDA's stdin, -1 once closed */
	int out;           /* our end of its stdout+stderr, -1 at EOF */
	long deadline;
	int broken_pipe;
	int timed_out;
	int pidfd;         /* readable once the MDA exits; -1 where unsupported */
	struct buf errline; /* partial line of MDA output */
};

/* Logs complete lines of MDA output; at EOF also the rest. */
static void
mda_log_output(struct mda_run *r, int eof)
{
	char *nl;

	while (r->errline.len > 0 && (nl = memchr(r->errline.data, '\n', r->errline.len)) != NULL) {
		*nl = '\0';
		log_warn(r->sink->who, "mda: %s", r->errline.data);
		buf_consume(&r->errline, (size_t)(nl - r->errline.data) + 1);
	}
	if ((eof && r->errline.len > 0) || r->errline.len > 1000) {
		log_warn(r->sink->who, "mda: %s", r->errline.data);
		buf_reset(&r->errline);
	}
}

static void
mda_read_output(struct mda_run *r)
{
	char tmp[4096];
	ssize_t n = read(r->out, tmp, sizeof tmp);

	if (n > 0) {
		buf_append(&r->errline, tmp, (size_t)n);
		mda_log_output(r, 0);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		mda_log_output(r, 1);
		close(r->out);
		r->out = -1;
	}
}

/* Waits up to max_ms (and never past the deadline) for the MDA's stdin
 * to take more (want_write) or for its output, which is logged meanwhile.
 * Returns 0, or -1 once the deadline has passed. */
static int
mda_pump(struct mda_run *r, int want_write, long max_ms)
{
	struct pollfd pfd[3];
	nfds_t n = 0;
	int o = -1, rc;
	long left = r->deadline - now_ms();

	if (left <= 0) {
		r->timed_out = 1;
		return -1;
	}
	if (left > max_ms)
		left = max_ms;
	if (want_write && r->in >= 0)
		pfd[n++] = (struct pollfd){ .fd = r->in, .events = POLLOUT };
	if (r->out >= 0) {
		o = (int)n;
		pfd[n++] = (struct pollfd){ .fd = r->out, .events = POLLIN };
	}
	if (!want_write && r->pidfd >= 0)
		pfd[n++] = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
	else if (!want_write && r->out < 0 && left > 5)
		left = 5; /* no pidfd: look for the exit often */
	rc = poll(pfd, n, (int)left);
	if (rc > 0 && o >= 0 && pfd[o].revents)
		mda_read_output(r);
	return 0;
}

/* Whether fd has bytes (or EOF) to read right now. */
static int
read_available(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	return poll(&pfd, 1, 0) > 0;
}

static int
mda_put(void *ctx, const char *p, size_t n)
{
	struct mda_run *r = ctx;

	while (n > 0) {
		ssize_t w = write(r->in, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (mda_pump(r, 1, 1000000) < 0)
				return -1;
		} else {
			r->broken_pipe = 1; /* EPIPE: the MDA stopped reading */
			return -1;
		}
	}
	return 0;
}

static int
mda_open(struct sink *s, struct mf_error *err)
{
	return 0;
}

static int
mda_deliver(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err)
{
	struct mda_run r = { .sink = s, .in = -1, .out = -1, .pidfd = -1 };
	int inp[2], outp[2], status, conv, spawn_rc;
	char *cmd = mda_command(s->acct->mda, sender);

	if (pipe2(inp, O_CLOEXEC) < 0) {
		free(cmd);
		return err_set(err, MF_EDELIVER, "cannot create a pipe for the MDA: %s; the system may be short of file descriptors, try again later", strerror(errno));
	}
	if (pipe2(outp, O_CLOEXEC) < 0) {
		close(inp[0]);
		close(inp[1]);
		free(cmd);
		return err_set(err, MF_EDELIVER, "cannot create a pipe for the MDA: %s; the system may be short of file descriptors, try again later", strerror(errno));
	}
	spawn_rc = mda_spawn(s->acct->mda, cmd, sender, inp[0], outp[1], &r.pid);
	close(inp[0]);
	close(outp[1]);
	free(cmd);
	if (spawn_rc != 0) {
		close(inp[1]);
		close(outp[0]);
		return err_set(err, MF_EDELIVER, "cannot start the MDA: %s; check the mda command", strerror(spawn_rc));
	}
	r.in = inp[1];
	r.out = outp[0];
#ifdef SYS_pidfd_open
	r.pidfd = (int)syscall(SYS_pidfd_open, r.pid, 0);
#else
	r.pidfd = -1;
#endif
	fcntl(r.in, F_SETFL, fcntl(r.in, F_GETFL) | O_NONBLOCK);
	fcntl(r.out, F_SETFL, fcntl(r.out, F_GETFL) | O_NONBLOCK);
	buf_init(&r.errline, 0);
	r.deadline = now_ms() + (long)s->acct->mda_timeout * 1000;

	conv = deliver_convert(s, msg, 0, 0, mda_put, &r);
	close(r.in);
	r.in = -1;
	/* Wait for the MDA itself, not for what it may have left running
	 * with our pipe still open, logging its output meanwhile. */
	for (;;) {
		pid_t w = waitpid(r.pid, &status, WNOHANG);
		if (w == r.pid)
			break;
		if ((w < 0 && errno != EINTR) || mda_pump(&r, 0, 50) < 0) {
			kill(-r.pid, SIGKILL);
			kill(r.pid, SIGKILL);
			while (waitpid(r.pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
	}
	if (r.out >= 0) {
		/* What it wrote before exiting; don't wait for its leftovers. */
		for (int i = 0; i < 64 && r.out >= 0 && read_available(r.out); i++)
			mda_read_output(&r);
		mda_log_output(&r, 1);
		if (r.out >= 0)
			close(r.out);
	}
	buf_free(&r.errline);
	if (r.pidfd >= 0)
		close(r.pidfd);

	if (r.timed_out)
		return err_set(err, MF_EDELIVER, "MDA did not finish within mda_timeout (%d s) and was killed; "
		    "check the MDA or raise mda_timeout", s->acct->mda_timeout);
	if (conv == -2)
		return err_set(err, MF_EDELIVER, "cannot read the spooled message back: %s; check TMPDIR", strerror(errno));
	if (WIFSIGNALED(status))
		return err_set(err, MF_EDELIVER, "MDA killed by signal %d; check the MDA command", WTERMSIG(status));
	if (WEXITSTATUS(status) == EX_TEMPFAIL) {
		*temporary = 1;
		return err_set(err, MF_EDELIVER, "MDA exited 75 (temporary failure); the message stays on the server for the next run");
	}
	if (WEXITSTATUS(status) != 0)
		return err_set(err, MF_EDELIVER, "MDA exited %d%s; check the mda command and its logs",
		    WEXITSTATUS(status), WEXITSTATUS(status) == 127 ? " (command not found?)" : "");
	if (r.broken_pipe || conv != 0)
		return err_set(err, MF_EDELIVER, "MDA exited before reading the whole message; "
		    "the message stays on the server, check the MDA");
	return 0;
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
