/* deliver_mbox.c: append messages to an mbox file (mboxrd).
 *
 * Per message: take the dotlock and an fcntl lock (both without blocking,
 * retrying with back-off, so two programs cannot deadlock), write the
 * From_ line, the quoted message and a blank line, fsync, unlock.  On any
 * failure the file is truncated back to its old size: never half a
 * message. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "mf_limits.h"
#include "log.h"
#include "xmalloc.h"

struct mbox {
	int fd;
	char *lockpath;
	int dotlock_usable;
	int write_errno;
};

/* Opens (or creates) the mbox file and checks it is one; sets m->fd. */
static int
mbox_open_file(struct sink *s, struct mbox *m, struct mf_error *err)
{
	const char *path = s->acct->mbox;
	struct stat st;
	char head[5];

	m->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
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
	if (st.st_size > 0) {
		/* Refuse to append to something that is not an mbox. */
		int rfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		ssize_t n = rfd >= 0 ? pread(rfd, head, sizeof head, 0) : -1;
		if (rfd >= 0)
			close(rfd);
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

/* 1: taken, 0: busy, -1: cannot dotlock here at all. */
static int
dotlock_try(struct sink *s, struct mbox *m)
{
	struct stat st;
	int fd = open(m->lockpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd >= 0) {
		char pid[32];
		int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		(void)!write(fd, pid, (size_t)n);
		close(fd);
		return 1;
	}
	if (errno == EEXIST) {
		if (stat(m->lockpath, &st) == 0 && time(NULL) - st.st_mtime > MBOX_DOTLOCK_STALE) {
			log_warn(s->who, "removing stale lock %s", m->lockpath);
			unlink(m->lockpath);
		}
		return 0;
	}
	/* A spool directory we may not write to (/var/mail without group
	 * mail): rely on the fcntl lock alone. */
	log_info(s->who, "cannot create %s (%s); using fcntl locking only", m->lockpath, strerror(errno));
	return -1;
}

static int
mbox_lock(struct sink *s, struct mbox *m, struct mf_error *err)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	for (unsigned tries = 0; tries < MBOX_LOCK_TRIES; tries++) {
		int dot = 0;
		if (m->dotlock_usable) {
			dot = dotlock_try(s, m);
			if (dot < 0)
				m->dotlock_usable = 0;
		}
		if (dot != 0 || !m->dotlock_usable) {
			if (fcntl(m->fd, F_SETLK, &fl) == 0)
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
	fcntl(m->fd, F_SETLK, &fl);
	if (m->dotlock_usable)
		unlink(m->lockpath);
}

static int
mbox_put(void *ctx, const char *p, size_t n)
{
	struct mbox *m = ctx;

	while (n > 0) {
		ssize_t w = write(m->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			m->write_errno = w < 0 ? errno : EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
mbox_deliver(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err)
{
	struct mbox *m = s->priv;
	struct stat st, now_st;
	char date[64], *from;
	time_t now = time(NULL);
	struct tm tm;
	int r = 0;

	if (m->fd < 0 && mbox_open_file(s, m, err) != 0)
		return err->code;
	if (mbox_lock(s, m, err) != 0) {
		*temporary = 1;
		return err->code;
	}
	/* A mail reader may have replaced the file (compacting it) since we
	 * opened it: what we append must go to the file the path names now. */
	if (stat(s->acct->mbox, &now_st) < 0 || fstat(m->fd, &st) < 0 ||
	    now_st.st_dev != st.st_dev || now_st.st_ino != st.st_ino) {
		mbox_unlock(m);
		close(m->fd);
		if (mbox_open_file(s, m, err) != 0)
			return err->code;
		if (mbox_lock(s, m, err) != 0) {
			*temporary = 1;
			return err->code;
		}
		if (fstat(m->fd, &st) < 0) {
			r = err_set(err, MF_EDELIVER, "cannot stat mbox %s: %s; check the file", s->acct->mbox, strerror(errno));
			goto out;
		}
	}
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
	from = xasprintf("From %s %s\n", sender, date);
	m->write_errno = 0;
	if (mbox_put(m, from, strlen(from)) < 0 || deliver_convert(s, msg, 1, 1, mbox_put, m) != 0 ||
	    mbox_put(m, "\n", 1) < 0 || fsync(m->fd) < 0) {
		int e = m->write_errno ? m->write_errno : errno;
		if (ftruncate(m->fd, st.st_size) < 0)
			log_error(s->who, "cannot truncate mbox %s back to %lld bytes after a failed write: %s",
			    s->acct->mbox, (long long)st.st_size, strerror(errno));
		r = err_set(err, MF_EDELIVER, "cannot write to mbox %s: %s; free some space or fix the file, "
		    "the message stays on the server", s->acct->mbox, strerror(e));
	}
	free(from);
out:
	mbox_unlock(m);
	return r;
}

static void
mbox_close(struct sink *s)
{
	struct mbox *m = s->priv;
	if (m == NULL)
		return;
	if (m->fd >= 0)
		close(m->fd);
	free(m->lockpath);
	free(m);
}

const struct sink_ops sink_mbox_ops = {
	.name = "mbox",
	.open = mbox_open,
	.deliver = mbox_deliver,
	.close = mbox_close,
};
