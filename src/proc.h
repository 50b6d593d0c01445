/* proc.h: child processes (the MDA, password_command): the one place that
 * starts them and waits for them.
 *
 * A child runs in a process group of its own, so that a deadline can stop
 * everything it started, and its end is always one of: exited with a
 * code, killed by a signal, timed out (killed by us), or lost.  Lost means
 * no status could be had (waitpid: ECHILD, because SIGCHLD is ignored and
 * the kernel reaped it): callers must treat it as a failure, never as a
 * status.  No process-wide state: everything about a child is in its
 * struct proc, so several may run in one process. */
#ifndef MAILFETCH_PROC_H
#define MAILFETCH_PROC_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* For proc_spawn's in, out, err: /dev/null, or our own descriptor. */
#define PROC_NULL (-1)
#define PROC_KEEP (-2)

/* How many ms a killed child gets to die before we give up on reaping it
 * (a process stuck in the kernel, e.g. on a dead NFS server). */
#define PROC_REAP_MS 5000

enum proc_end {
	PROC_RUNNING,
	PROC_EXITED,   /* code: its exit status */
	PROC_SIGNALED, /* code: the signal that killed it */
	PROC_TIMEDOUT, /* the deadline passed; its group was sent SIGKILL */
	PROC_STOPPED,  /* *stop was set; its group was sent SIGKILL */
	PROC_LOST,     /* no status: never read one, treat as a failure */
};

struct proc {
	pid_t pid;
	int pidfd;          /* readable once the child ends; -1 where the kernel has none */
	int no_pidfd_wait;  /* waitid(P_PIDFD) refused (Linux 5.3): use waitpid */
	/* Set by the caller after proc_spawn(), or NULL: a flag (a signal
	 * handler's) that ends proc_wait() as the deadline would. */
	const volatile sig_atomic_t *stop;
	enum proc_end end;
	int code;
};

/* A pipe from the child that proc_wait() reads while it waits: got() is
 * called with every piece read, and once with n == 0 at end of file.  The
 * caller owns fd and closes it after proc_wait(). */
struct proc_reader {
	int fd;
	void (*got)(void *ctx, const char *p, size_t n);
	void *ctx;
	int eof;   /* set by proc_wait */
};

/* Starts argv (argv[0] looked up in PATH unless it holds a '/') with our
 * environment, in a new process group, with an empty signal mask and
 * SIGPIPE, SIGXFSZ and SIGCHLD at their default actions.  in, out and err
 * become its descriptors 0, 1 and 2: a descriptor of ours, PROC_NULL or
 * PROC_KEEP; every other descriptor of ours must be O_CLOEXEC.  Refuses
 * (ECHILD) while SIGCHLD is ignored here: the kernel would reap the child
 * and its status would be lost.  Returns 0, or an errno value for
 * proc_strerror(). */
int proc_spawn(struct proc *p, char *const argv[], int in, int out, int err);

/* What a non-zero proc_spawn() result means, for an error message; for
 * ECHILD it also says what to do. */
const char *proc_strerror(int rc);

/* Waits for the child until deadline (proc_now_ms() time), reading the
 * readers meanwhile (buffers that held what was read are wiped: it may be
 * a secret).  At the deadline, or once *p->stop is set, the child's
 * process group is killed and the child reaped, within PROC_REAP_MS.  Once the child itself has ended,
 * only what the readers have ready is read: children it left behind
 * holding a pipe open do not keep us waiting.  Returns p->end, never
 * PROC_RUNNING; p->code is set for PROC_EXITED and PROC_SIGNALED only.
 * The pidfd is closed: nothing of p needs freeing afterwards. */
enum proc_end proc_wait(struct proc *p, struct proc_reader *r, size_t nr, long deadline);

/* CLOCK_MONOTONIC in ms, for deadlines. */
long proc_now_ms(void);

/* A child's output logged as warnings, one line at a time, as
 * "WHO: PREFIX: LINE"; a line longer than 1000 bytes is logged in pieces.
 * Use proc_log_got as a reader's got with the struct as its ctx. */
struct proc_log {
	const char *who;
	const char *prefix;
	struct buf line;   /* a partial line */
};

void proc_log_init(struct proc_log *l, const char *who, const char *prefix);
void proc_log_got(void *ctx, const char *p, size_t n);
/* Logs what is left of a last line without a newline, and frees. */
void proc_log_finish(struct proc_log *l);

#endif
