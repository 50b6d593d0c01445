/* proc.c: start a child, wait for it with a deadline, stop its group.
 *
 * The status of a child is only ever read from a successful wait: a wait
 * that fails (ECHILD) makes the end PROC_LOST, never an exit code.  Where
 * the kernel has pidfds (Linux 5.3) we sleep in poll() until the child
 * ends, and reap it through the pidfd (5.4), so that a pid reused after
 * the kernel reaped our child can never be taken for it. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mf_limits.h"
#include "proc.h"
#include "signals.h"
#include "xmalloc.h"

/* waitid()'s P_PIDFD (Linux 5.4), by number: older C libraries name it nowhere. */
#define PROC_P_PIDFD ((idtype_t)3)

#define PROC_READERS_MAX 4
#define PROC_POLL_MS     10   /* without a pidfd: how often to look for the child's end */
#define PROC_STOP_POLL_MS 100 /* with a stop flag: how often to look at it (a signal may
                                 come just before poll() and not wake it) */
#define PROC_DRAIN_READS 64   /* reads per pipe once the child has ended */
#define PROC_LOG_LINE    1000 /* a line of output longer than this is logged in pieces */

long
proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the kernel reaps our children by itself (SIGCHLD ignored, or
 * SA_NOCLDWAIT): then no wait can ever return their status.  Perl and
 * Python parents often leave SIGCHLD ignored, and exec keeps that. */
static int
children_autoreaped(void)
{
	struct sigaction sa;

	if (sigaction(SIGCHLD, NULL, &sa) != 0)
		return 0;
	return sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT) != 0;
}

int
proc_spawn(struct proc *p, char *const argv[], int in, int out, int err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	const int fds[3] = { in, out, err };
	int rc;

	memset(p, 0, sizeof *p);
	p->pid = -1;
	p->pidfd = -1;
	p->end = PROC_RUNNING;
	/* Refuse rather than start something whose outcome we cannot learn:
	 * an MDA that delivered would be taken for a failure and the message
	 * delivered again on every run. */
	if (children_autoreaped())
		return ECHILD;

	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < 3; i++) {
		if (fds[i] == PROC_NULL)
			posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
		else if (fds[i] != PROC_KEEP)
			posix_spawn_file_actions_adddup2(&fa, fds[i], i);
	}
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	/* What we ignore (a dead MDA is EPIPE, a file size limit EFBIG for
	 * us) or what our parent may have left ignored must not carry over:
	 * a shell or procmail with SIGCHLD ignored cannot wait for its own
	 * children either. */
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGUSR1);
	sigaddset(&dfl, SIGXFSZ);
	sigaddset(&dfl, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawnp(&p->pid, argv[0], &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return rc;
#ifdef SYS_pidfd_open
	/* Close-on-exec by itself; a zombie still has one. */
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
#endif
	return 0;
}

const char *
proc_strerror(int rc)
{
	if (rc == ECHILD)
		return "SIGCHLD is ignored in this process (the program that started mailfetch left it so), "
		       "so no child's exit status could be read; start mailfetch with SIGCHLD at its default action";
	return strerror(rc);
}

/* Collects the child's status if it has ended, without waiting: 1 with
 * p->end set, or 0 while it runs. */
static int
proc_reap(struct proc *p)
{
	int status;
	pid_t w;

	if (p->pidfd >= 0 && !p->no_pidfd_wait) {
		siginfo_t si;

		memset(&si, 0, sizeof si);
		if (waitid(PROC_P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG) == 0) {
			if (si.si_pid == 0)
				return 0;
			p->end = si.si_code == CLD_EXITED ? PROC_EXITED : PROC_SIGNALED;
			p->code = si.si_status;
			return 1;
		}
		if (errno == EINTR)
			return 0;
		if (errno != EINVAL) {
			p->end = PROC_LOST;
			return 1;
		}
		p->no_pidfd_wait = 1; /* Linux 5.3: pidfds, but no waitid on them */
	}
	do
		w = waitpid(p->pid, &status, WNOHANG);
	while (w < 0 && errno == EINTR);
	if (w == 0)
		return 0;
	if (w < 0) {
		p->end = PROC_LOST;
	} else if (WIFEXITED(status)) {
		p->end = PROC_EXITED;
		p->code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		p->end = PROC_SIGNALED;
		p->code = WTERMSIG(status);
	} else {
		return 0; /* stopped or continued: not asked for, still there */
	}
	return 1;
}

/* Sleeps until the child may have ended or max_ms have passed. */
static void
proc_nap(struct proc *p, long max_ms)
{
	struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

	if (p->pidfd < 0 && max_ms > PROC_POLL_MS)
		max_ms = PROC_POLL_MS;
	if (max_ms > 0)
		poll(&pfd, p->pidfd >= 0 ? 1 : 0, (int)max_ms);
}

/* The deadline has passed: SIGKILL to the child's process group (what it
 * started) and to the child itself (in case it left the group), then reap
 * it, for at most PROC_REAP_MS.  Not reaped yet, the child still owns its
 * pid and its group id, so neither can name someone else's process. */
static void
proc_kill(struct proc *p)
{
	long until = proc_now_ms() + PROC_REAP_MS;

	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	while (!proc_reap(p)) {
		if (until - proc_now_ms() <= 0) {
			/* Stuck in the kernel: it stays a zombie until we exit. */
			p->end = PROC_TIMEDOUT;
			return;
		}
		proc_nap(p, until - proc_now_ms());
	}
	/* An exit just before the kill landed is a real status: it stands. */
	if (p->end != PROC_EXITED)
		p->end = PROC_TIMEDOUT;
}

static void
proc_read(struct proc_reader *r)
{
	char tmp[4096];
	ssize_t n = read(r->fd, tmp, sizeof tmp);

	if (n > 0) {
		r->got(r->ctx, tmp, (size_t)n);
		wipe(tmp, (size_t)n);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		r->eof = 1;
		r->got(r->ctx, tmp, 0);
	}
}

/* Reads what the readers have ready now, a bounded number of times: a
 * child left behind that keeps writing cannot hold us. */
static void
proc_drain(struct proc_reader *r, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		for (int k = 0; k < PROC_DRAIN_READS && !r[i].eof; k++) {
			struct pollfd pfd = { .fd = r[i].fd, .events = POLLIN };
			if (poll(&pfd, 1, 0) <= 0)
				break;
			proc_read(&r[i]);
		}
	}
}

enum proc_end
proc_wait(struct proc *p, struct proc_reader *r, size_t nr, long deadline)
{
	struct pollfd pfd[PROC_READERS_MAX + 1];
	size_t idx[PROC_READERS_MAX];

	if (nr > PROC_READERS_MAX)
		fatal("proc_wait: %zu readers, at most %d", nr, PROC_READERS_MAX);
	for (size_t i = 0; i < nr; i++)
		r[i].eof = r[i].fd < 0;
	while (!proc_reap(p)) {
		long left = deadline - proc_now_ms(), grace = signals_stop_left_ms();
		nfds_t n = 0, nread;

		if (left <= 0) {
			proc_kill(p);
			break;
		}
		/* Asked to stop: the child may finish within the grace
		 * period (an MDA delivering the message in hand), no longer. */
		if (grace <= 0) {
			proc_kill(p);
			if (p->end != PROC_EXITED)
				p->end = PROC_STOPPED; /* an exit just before the kill stands */
			break;
		}
		if (grace < left)
			left = grace;
		/* A stop signal that lands just before poll() does not wake
		 * it: look again at least this often. */
		if (left > STOP_CHECK_MS)
			left = STOP_CHECK_MS;
		if (p->stop != NULL && __atomic_load_n(p->stop, __ATOMIC_SEQ_CST)) {
			proc_kill(p);
			if (p->end == PROC_TIMEDOUT)
				p->end = PROC_STOPPED;
			break;
		}
		if (p->stop != NULL && left > PROC_STOP_POLL_MS)
			left = PROC_STOP_POLL_MS;
		for (size_t i = 0; i < nr; i++) {
			if (!r[i].eof) {
				idx[n] = i;
				pfd[n++] = (struct pollfd){ .fd = r[i].fd, .events = POLLIN };
			}
		}
		nread = n;
		if (p->pidfd >= 0)
			pfd[n++] = (struct pollfd){ .fd = p->pidfd, .events = POLLIN };
		else if (left > PROC_POLL_MS)
			left = PROC_POLL_MS;
		if (poll(pfd, n, (int)left) <= 0)
			continue; /* the deadline, or EINTR: both are looked at above */
		for (nfds_t k = 0; k < nread; k++)
			if (pfd[k].revents != 0)
				proc_read(&r[idx[k]]);
	}
	/* What it wrote before it ended (or was killed). */
	proc_drain(r, nr);
	if (p->pidfd >= 0) {
		close(p->pidfd);
		p->pidfd = -1;
	}
	return p->end;
}

void
proc_log_init(struct proc_log *l, const char *who, const char *prefix)
{
	l->who = who;
	l->prefix = prefix;
	buf_init(&l->line, 0);
}

/* Logs the complete lines held; at the end of the output also the rest. */
static void
proc_log_lines(struct proc_log *l, int eof)
{
	char *nl;

	while (l->line.len > 0 && (nl = memchr(l->line.data, '\n', l->line.len)) != NULL) {
		*nl = '\0';
		log_warn(l->who, "%s: %s", l->prefix, l->line.data);
		buf_consume(&l->line, (size_t)(nl - l->line.data) + 1);
	}
	if ((eof && l->line.len > 0) || l->line.len > PROC_LOG_LINE) {
		log_warn(l->who, "%s: %s", l->prefix, l->line.data);
		buf_reset(&l->line);
	}
}

void
proc_log_got(void *ctx, const char *p, size_t n)
{
	struct proc_log *l = ctx;

	buf_append(&l->line, p, n);
	proc_log_lines(l, n == 0);
}

void
proc_log_finish(struct proc_log *l)
{
	proc_log_lines(l, 1);
	buf_free(&l->line);
}
