/* deliver_mbox.c: append messages to an mbox file (mboxrd).
 *
 * A message is written under the dotlock and an fcntl lock (both taken
 * without blocking, retrying with back-off, so two programs cannot
 * deadlock): its From_ line, the quoted message and a blank line.  The
 * locks are kept from one message to the next only while no network
 * wait comes between them (pause() lets go of them), so a slow server
 * never keeps a mail reader out.  Before the first byte, the journal
 * learns where the message goes (device, inode, offset); an interrupted
 * run's successor checks that place and finds the message whole (then
 * it is only marked), or a partial copy at the end of the file (then it
 * is cut away and written again).  commit fsyncs once for the messages
 * since the last one.  A message whose write fails is truncated away at
 * once (never half a message).  Only committed messages count as
 * delivered. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "mf_limits.h"
#include "log.h"
#include "signals.h"
#include "xmalloc.h"

/* Open file description locks: they conflict with the classic fcntl
 * locks of procmail and mail readers as those do with each other, and
 * unlike those they also keep two threads of one process apart. */
#ifdef F_OFD_SETLK
#define MBOX_SETLK F_OFD_SETLK
#else
#define MBOX_SETLK F_SETLK
#endif

struct mbox {
	int fd;
	char *lockpath;
	int dotlock_usable;
	int write_errno;
	int locked;        /* we hold both locks */
	int dirty;         /* written since the last commit */
	int held;          /* ... and locked all the while: nobody else wrote after us */
	int dirsync;       /* the file is new: its directory entry needs an fsync */
	int tail_checked;  /* looked for half a message an interrupted run left */
	int sync_failed;   /* errno of a failed fsync of a replaced file's descriptor */
	off_t batch_start; /* file size at the first write since the last commit */
	off_t size;        /* file size now (we are the only writer while locked) */
	struct buf pend;   /* small pieces not yet written, so that a small
	                    * message is one write() and not three */
};

/* Opens (or creates) the mbox file and checks it is one; sets m->fd. */
static int
mbox_open_file(struct sink *s, struct mbox *m, struct mf_error *err)
{
	const char *path = s->acct->mbox;
	struct stat st;
	char head[5];

	/* One descriptor for reading too: closing any other descriptor of
	 * the file would drop our fcntl lock on it (POSIX). */
	m->fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (m->fd < 0 && errno == ENOENT) {
		/* A new file: its name is durable only once its directory
		 * is synced (commit does that, before any mark is sent). */
		m->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (m->fd >= 0)
			m->dirsync = 1;
		else if (errno == EEXIST)
			m->fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	}
	if (m->fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return err_set(err, MF_EDELIVER, "mbox %s is a symbolic link; refusing to write through it, "
			    "set mbox to the file itself", path);
		return err_set(err, MF_EDELIVER, "cannot open mbox %s: %s; check the path and its directory", path, strerror(e));
	}
	if (fstat(m->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(m->fd);
		m->fd = -1;
		return err_set(err, MF_EDELIVER, "mbox %s is not a regular file; set mbox to a file", path);
	}
	if (st.st_uid != geteuid()) {
		/* Someone else's mailbox, however open its mode: procmail
		 * and mutt refuse it too. */
		close(m->fd);
		m->fd = -1;
		return err_set(err, MF_EDELIVER, "mbox %s belongs to another user (uid %ld); refusing to append, "
		    "set mbox to a file of your own", path, (long)st.st_uid);
	}
	if (st.st_size > 0) {
		/* Refuse to append to something that is not an mbox. */
		ssize_t n = pread(m->fd, head, sizeof head, 0);
		if (n != (ssize_t)sizeof head || memcmp(head, "From ", 5) != 0) {
			close(m->fd);
			m->fd = -1;
			return err_set(err, MF_EDELIVER, "%s does not look like an mbox (no From_ line at its start); "
			    "refusing to append, check the mbox setting", path);
		}
	}
	return 0;
}

static int
mbox_open(struct sink *s, struct mf_error *err)
{
	struct mbox *m = xcalloc(1, sizeof *m);

	if (mbox_open_file(s, m, err) != 0) {
		free(m);
		return err->code;
	}
	m->lockpath = xasprintf("%s.lock", s->acct->mbox);
	m->dotlock_usable = 1;
	s->priv = m;
	return 0;
}

/* Whether the dotlock names a process of this machine that is gone (a
 * killed run of ours, say): then it need not age MBOX_DOTLOCK_STALE. */
static int
dotlock_owner_dead(const char *lockpath)
{
	char buf[32];
	long pid;
	char *end;
	ssize_t n;
	struct stat st;
	/* Non-blocking, and only a regular file: a FIFO put there must not
	 * hold us. */
	int fd = open(lockpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (pid <= 0 || (*end != '\n' && *end != '\0'))
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* 1: taken, 0: busy, -1: cannot dotlock here at all. */
static int
dotlock_try(struct sink *s, struct mbox *m)
{
	struct stat st;
	/* our pid and a number of the process's own: two threads of one
	 * daemon may try the same mbox at once */
	static unsigned long tries;
	char pid[32], *tmp = xasprintf("%s.%ld.%lu", m->lockpath, (long)getpid(),
	    __atomic_fetch_add(&tries, 1, __ATOMIC_RELAXED));
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid()), fd, e;

	/* The lock appears with our pid already in it (written to a file of
	 * our own, then linked to the lock's name): a kill at any moment
	 * never leaves a lock that names nobody. */
	unlink(tmp); /* a leftover of a dead run that had our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0) {
		int ok = write(fd, pid, (size_t)n) == n;
		close(fd);
		e = ok && link(tmp, m->lockpath) == 0 ? 0 : ok ? errno : EIO;
		unlink(tmp);
	} else {
		e = errno;
	}
	free(tmp);
	if (e == 0)
		return 1;
	if (e == EEXIST) {
		if (dotlock_owner_dead(m->lockpath) ||
		    (stat(m->lockpath, &st) == 0 && time(NULL) - st.st_mtime > MBOX_DOTLOCK_STALE)) {
			log_warn(s->who, "removing stale lock %s", m->lockpath);
			unlink(m->lockpath);
		}
		return 0;
	}
	/* A spool directory we may not write to (/var/mail without group
	 * mail): rely on the fcntl lock alone. */
	log_info(s->who, "cannot create %s (%s); using fcntl locking only", m->lockpath, strerror(e));
	return -1;
}

static int
mbox_lock(struct sink *s, struct mbox *m, struct mf_error *err)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	for (unsigned tries = 0; tries < MBOX_LOCK_TRIES; tries++) {
		int dot = 0;
		if (signals_stop())
			return err_set(err, MF_EDELIVER, "mbox %s is locked by another program and mailfetch was "
			    "asked to stop; the message stays on the server", s->acct->mbox);
		if (m->dotlock_usable) {
			dot = dotlock_try(s, m);
			if (dot < 0)
				m->dotlock_usable = 0;
		}
		if (dot != 0 || !m->dotlock_usable) {
			if (fcntl(m->fd, MBOX_SETLK, &fl) == 0)
				return 0;
			if (dot > 0)
				unlink(m->lockpath);
		}
		usleep(500 * 1000);
	}
	return err_set(err, MF_EDELIVER, "mbox %s stays locked by another program; try again later",
	    s->acct->mbox);
}

static void
mbox_unlock(struct mbox *m)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	fcntl(m->fd, MBOX_SETLK, &fl);
	if (m->dotlock_usable)
		unlink(m->lockpath);
}

/* Writes what is pending, then p[0..n), with as few calls as it takes. */
static int
mbox_write(struct mbox *m, const char *p, size_t n)
{
	struct iovec iov[2] = {
		{ .iov_base = m->pend.data, .iov_len = m->pend.len },
		{ .iov_base = (void *)p, .iov_len = n },
	};
	struct iovec *v = iov;
	int cnt = 2;

	if (iov[0].iov_len == 0) {
		v++;
		cnt--;
	}
	while (cnt > 0) {
		ssize_t w = writev(m->fd, v, cnt);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			m->write_errno = w < 0 ? errno : EIO;
			buf_reset(&m->pend);
			return -1;
		}
		m->size += w;
		while (cnt > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	buf_reset(&m->pend);
	return 0;
}

/* Appends to the mbox: small pieces wait in m->pend for mbox_flush() or
 * the next large piece. */
static int
mbox_put(void *ctx, const char *p, size_t n)
{
	struct mbox *m = ctx;

	if (m->pend.len + n <= MBOX_PEND_MAX)
		return buf_append(&m->pend, p, n) == 0 ? 0 : mbox_write(m, p, n);
	return mbox_write(m, p, n);
}

static int
mbox_flush(struct mbox *m)
{
	return m->pend.len > 0 ? mbox_write(m, NULL, 0) : 0;
}

/* Cuts the file back to size after a failed write. */
static void
mbox_truncate(struct sink *s, struct mbox *m, off_t size)
{
	buf_reset(&m->pend);
	if (ftruncate(m->fd, size) < 0)
		log_error(s->who, "cannot truncate mbox %s back to %lld bytes after a failed write: %s",
		    s->acct->mbox, (long long)size, strerror(errno));
	m->size = size;
}

/* An mbox must end with a blank line after its last message.  If it does
 * not, a writer (a killed run, another program) stopped half-way: add the
 * missing line breaks so that our From_ line starts a message of its own
 * instead of being swallowed by the broken one. */
static int
mbox_repair_tail(struct sink *s, struct mbox *m, struct mf_error *err)
{
	char tail[2];
	off_t size = m->size;
	ssize_t n;

	if (m->size == 0)
		return 0;
	n = pread(m->fd, tail, 2, m->size - (m->size >= 2 ? 2 : 1));
	if (n <= 0 || (n == 2 && tail[0] == '\n' && tail[1] == '\n'))
		return 0;
	log_warn(s->who, "mbox %s does not end with a complete message (a writer was interrupted); "
	    "adding a line break so the next message starts cleanly", s->acct->mbox);
	if (mbox_put(m, "\n\n", tail[n - 1] == '\n' ? 1 : 2) < 0 || mbox_flush(m) < 0) {
		mbox_truncate(s, m, size);
		return err_set(err, MF_EDELIVER, "cannot write to mbox %s: %s; free some space or fix the file",
		    s->acct->mbox, strerror(m->write_errno));
	}
	return 0;
}

/* Takes the locks (if not held yet), and makes sure we hold the file the
 * path names now (a mail reader may have replaced it, compacting it,
 * while we did not hold them). */
static int
mbox_begin(struct sink *s, struct mbox *m, int *temporary, struct mf_error *err)
{
	struct stat st, now_st;

	if (m->locked)
		return 0;
	if (m->fd < 0 && mbox_open_file(s, m, err) != 0)
		return err->code;
	if (mbox_lock(s, m, err) != 0) {
		*temporary = 1;
		return err->code;
	}
	if (stat(s->acct->mbox, &now_st) < 0 || fstat(m->fd, &st) < 0 ||
	    now_st.st_dev != st.st_dev || now_st.st_ino != st.st_ino) {
		mbox_unlock(m);
		/* What we wrote went to the old file: the mail reader that
		 * replaced it copied it over; flush our part of it anyway. */
		if (m->dirty && fsync(m->fd) < 0)
			m->sync_failed = errno;
		close(m->fd);
		m->fd = -1;
		if (mbox_open_file(s, m, err) != 0)
			return err->code;
		if (mbox_lock(s, m, err) != 0) {
			*temporary = 1;
			return err->code;
		}
		if (fstat(m->fd, &st) < 0) {
			mbox_unlock(m);
			return err_set(err, MF_EDELIVER, "cannot stat mbox %s: %s; check the file", s->acct->mbox,
			    strerror(errno));
		}
	}
	m->locked = 1;
	m->size = st.st_size;
	if (!m->dirty)
		m->batch_start = m->size;
	return 0;
}

/* Lets go of the locks; what was written stays (commit makes it durable). */
static void
mbox_release(struct mbox *m)
{
	if (!m->locked)
		return;
	mbox_unlock(m);
	m->locked = 0;
	m->held = 0;
}

static void
mbox_pause(struct sink *s)
{
	mbox_release(s->priv);
}

#define MBOX_DATE_MAX 64 /* the date part of a From_ line we wrote, with its newline */

/* Compares the bytes the mbox holds from pos on with what is put. */
struct mbox_cmp {
	int fd;
	off_t pos, end;
	int state;              /* 0 equal so far, 1 different, 2 the file ended first */
};

static int
mbox_cmp_put(void *ctx, const char *p, size_t n)
{
	struct mbox_cmp *c = ctx;
	char tmp[4096];

	while (n > 0) {
		size_t want = n < sizeof tmp ? n : sizeof tmp;
		ssize_t r;
		if (c->pos >= c->end) {
			c->state = 2;
			return -1;
		}
		if ((off_t)want > c->end - c->pos)
			want = (size_t)(c->end - c->pos);
		r = pread(c->fd, tmp, want, c->pos);
		if (r <= 0 || memcmp(tmp, p, (size_t)r) != 0) {
			c->state = 1;
			return -1;
		}
		c->pos += r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* An interrupted run recorded (token) that it was about to write this
 * message at an offset of this very file.  Returns 1 if the message is
 * there whole; 0 if not, after cutting a partial copy of it away when
 * that is what the file ends with (we hold the locks: nobody wrote after
 * it).  The From_ line's date is whatever that run wrote. */
static int
mbox_verify(struct sink *s, struct mbox *m, struct spool *msg, const char *sender, const char *token)
{
	unsigned long long dev, ino, off;
	struct stat st;
	struct mbox_cmp c = { .fd = m->fd };
	char date[MBOX_DATE_MAX], *from;
	const char *nl;
	ssize_t n;
	int rc = 0;

	if (sscanf(token, "%llu:%llu:%llu", &dev, &ino, &off) != 3 || fstat(m->fd, &st) < 0 ||
	    (unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino ||
	    off >= (unsigned long long)m->size)
		return 0; /* another file now (compacted), or nothing was written */
	c.pos = (off_t)off;
	c.end = m->size;
	/* The From_ line up to its date, which is whatever that run wrote. */
	from = xasprintf("From %s ", sender);
	if (mbox_cmp_put(&c, from, strlen(from)) == 0) {
		n = pread(m->fd, date, sizeof date, c.pos);
		nl = n > 0 ? memchr(date, '\n', (size_t)n) : NULL;
		if (nl == NULL && c.pos + n == m->size) {
			c.state = 2; /* the From_ line itself was cut short */
		} else if (nl != NULL) {
			c.pos += nl - date + 1;
			if (deliver_convert(s, msg, 1, 1, mbox_cmp_put, &c) == 0 && mbox_cmp_put(&c, "\n", 1) == 0)
				rc = 1;
		}
	}
	free(from);
	if (rc == 1)
		return 1;
	if (c.state == 2) {
		log_warn(s->who, "mbox %s ends with a partial copy of a message an interrupted run was writing; "
		    "cutting it away before writing the message again", s->acct->mbox);
		mbox_truncate(s, m, (off_t)off);
		if (m->batch_start > m->size)
			m->batch_start = m->size;
	}
	return 0;
}

/* A run killed while writing leaves half a message at the end of the
 * file, starting where its last intent says.  It is ours, and safe to cut
 * away, if the file does not end the way every message we write ends
 * ("\n\n"), and from that offset to the end there is one From_ line
 * only, the first (mboxrd quotes any other "From " at a line start), so
 * nobody appended after it.  Done once, before anything is appended. */
static void
mbox_cut_interrupted(struct sink *s, struct mbox *m)
{
	unsigned long long dev, ino, off;
	struct stat st;
	char buf[4096];
	off_t pos;
	int ours = 1, first = 1, k = 0;

	m->tail_checked = 1;
	if (s->last_intent == NULL || sscanf(s->last_intent, "%llu:%llu:%llu", &dev, &ino, &off) != 3 ||
	    fstat(m->fd, &st) < 0 || (unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino ||
	    off >= (unsigned long long)m->size)
		return;
	if (m->size >= 2 && pread(m->fd, buf, 2, m->size - 2) == 2 && buf[0] == '\n' && buf[1] == '\n')
		ours = 0; /* it ends like a whole message */
	for (pos = (off_t)off; ours && pos < m->size; ) {
		ssize_t n = pread(m->fd, buf, sizeof buf, pos);
		if (n <= 0)
			ours = 0;
		for (ssize_t i = 0; ours && i < n; i++) {
			/* k: bytes of "From " matched at this line's start, -1
			 * once the line is known not to start with it */
			if (k >= 0 && buf[i] == "From "[k]) {
				if (++k == 5) {
					ours = first; /* a second From_ line: someone wrote after it */
					k = -1;
				}
			} else if (k >= 0) {
				ours = !first; /* the first line must be a From_ line */
				k = -1;
			}
			if (buf[i] == '\n') {
				first = 0;
				k = 0;
			}
		}
		pos += n > 0 ? n : 0;
	}
	if (!ours)
		return;
	log_warn(s->who, "mbox %s ends with half a message an interrupted run was writing; cutting it away "
	    "(%lld bytes), it will be written again whole", s->acct->mbox, (long long)(m->size - (off_t)off));
	mbox_truncate(s, m, (off_t)off);
	if (m->batch_start > m->size)
		m->batch_start = m->size;
}

static int
mbox_deliver(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err)
{
	struct mbox *m = s->priv;
	char date[64], *from, token[JOURNAL_TOKEN_MAX + 1];
	time_t now = time(NULL);
	struct stat st;
	struct tm tm;
	off_t before;
	int r = 0;

	if (mbox_begin(s, m, temporary, err) != 0)
		return err->code;
	if (!m->tail_checked)
		mbox_cut_interrupted(s, m);
	if (s->prior != NULL && mbox_verify(s, m, msg, sender, s->prior)) {
		/* The killed run may never have flushed it: commit must. */
		s->already = 1;
		m->dirty = 1;
		return 0;
	}
	if (!m->dirty)
		m->held = 1;
	if (mbox_repair_tail(s, m, err) != 0)
		goto failed;
	before = m->size;
	if (s->intent != NULL) {
		/* Without the intent on record, a kill could make the next
		 * run write the message twice: better not to write it. */
		if (fstat(m->fd, &st) < 0) {
			*temporary = 1;
			err_set(err, MF_EDELIVER, "cannot stat mbox %s: %s; check the file, the message stays "
			    "on the server", s->acct->mbox, strerror(errno));
			goto failed;
		}
		snprintf(token, sizeof token, "%llu:%llu:%llu", (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino, (unsigned long long)before);
		if (s->intent(s->intent_ctx, token) != 0) {
			*temporary = 1;
			err_set(err, MF_EDELIVER, "cannot record in the journal where the message goes, so a crash "
			    "could deliver it twice; not writing it, it stays on the server (see the error above)");
			goto failed;
		}
	}
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
	from = xasprintf("From %s %s\n", sender, date);
	m->write_errno = 0;
	if (mbox_put(m, from, strlen(from)) < 0 || deliver_convert(s, msg, 1, 1, mbox_put, m) != 0 ||
	    mbox_put(m, "\n", 1) < 0 || mbox_flush(m) < 0) {
		int e = m->write_errno ? m->write_errno : errno;
		mbox_truncate(s, m, before);
		/* A full disk or quota will not be better for the next message. */
		*temporary = e == ENOSPC || e == EDQUOT;
		r = err_set(err, MF_EDELIVER, "cannot write to mbox %s: %s; free some space or fix the file, "
		    "the message stays on the server", s->acct->mbox, strerror(e));
	} else {
		m->dirty = 1;
	}
	free(from);
	if (r == 0)
		return 0;
failed:
	if (!m->dirty)
		mbox_release(m); /* nothing of ours to take back later: don't keep others out */
	return err->code;
}

static int
mbox_commit(struct sink *s, struct mf_error *err)
{
	struct mbox *m = s->priv;
	int r = 0;

	if (m->dirty && (m->sync_failed || fsync(m->fd) < 0)) {
		int e = m->sync_failed ? m->sync_failed : errno;
		/* Take the messages back only if nobody can have written
		 * after them; otherwise the journal's intents let the next
		 * run find out what is there. */
		if (m->held)
			mbox_truncate(s, m, m->batch_start);
		r = err_set(err, MF_EDELIVER, "cannot write to mbox %s: fsync: %s; free some space or fix the file, "
		    "the messages stay on the server", s->acct->mbox, strerror(e));
	} else if (m->dirty && m->dirsync) {
		if (deliver_sync_parent(s->acct->mbox) < 0)
			r = err_set(err, MF_EDELIVER, "cannot sync the directory of the new mbox %s: %s; "
			    "check the file system, the messages stay on the server", s->acct->mbox, strerror(errno));
		else
			m->dirsync = 0;
	}
	m->dirty = 0;
	m->sync_failed = 0;
	mbox_release(m);
	return r;
}

static void
mbox_close(struct sink *s)
{
	struct mbox *m = s->priv;
	if (m == NULL)
		return;
	if (m->dirty && m->held) {
		/* An uncommitted batch counts as not delivered: take it back. */
		mbox_truncate(s, m, m->batch_start);
	}
	mbox_release(m);
	if (m->fd >= 0)
		close(m->fd);
	buf_free(&m->pend);
	free(m->lockpath);
	free(m);
}

const struct sink_ops sink_mbox_ops = {
	.name = "mbox",
	.open = mbox_open,
	.deliver = mbox_deliver,
	.commit = mbox_commit,
	.close = mbox_close,
	.pause = mbox_pause,
};
