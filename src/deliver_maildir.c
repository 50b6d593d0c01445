/* deliver_maildir.c: deliver messages into a Maildir.
 *
 * Each message is written, LF line ends and otherwise byte-exact, to a
 * file of its own in tmp/, created with O_EXCL under a unique name of the
 * Maildir spec (time.M<usec>P<pid>Q<count>.<host>).  At commit the files
 * of the batch are fsynced, moved into new/ as NAME,S=<size> (renameat2
 * with RENAME_NOREPLACE, so never over a file there; where the file
 * system lacks it, link, which never overwrites either, and the tmp/
 * name is unlinked afterwards), and new/ is fsynced: a message is in new/
 * only once it is durable there, and a reader never sees half a message.
 * The fsyncs are grouped per batch (their writeback is started as each
 * file is written), since an fsync between two file creations costs more
 * than the whole fetch of the message; those of the files written so far
 * are done whenever mailfetch is about to wait for the server (the pause
 * hook), so that they overlap with the server sending the next messages
 * instead of stalling the commit.  A failed commit takes the batch back
 * out of new/ and tmp/.
 *
 * Before creating the file, the journal learns its name (the intent
 * token).  An interrupted run's successor looks for that name: a copy in
 * new/ (or moved to cur/ by a mail reader) that holds the message whole
 * means it is only to be marked; a copy in tmp/ is removed.  Missing
 * Maildir directories are created (0700), the Maildir itself only when
 * the directory that should hold it exists. */
#include "autoconfig.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "deliver.h"
#include "log.h"
#include "mf_limits.h"
#include "xmalloc.h"

/* Files written but not yet fsynced that may stay open until the
 * commit: at least a chunk's worth (IMAP_FETCH_BATCH), so that a chunk
 * is fsynced in one go after all its files are written (an fsync between
 * two file creations makes the next creation wait for the journal).
 * Past this, or when the process runs out of descriptors, the files
 * open are fsynced and closed at once; their moves into new/ still wait
 * for the commit. */
#define MAILDIR_OPEN_MAX 256u
/* The host part of a unique name, escaped, at most. */
#define MAILDIR_HOST_MAX 64u
/* A unique name (time.M<usec>P<pid>Q<count>.<host>, the part before
 * ",S=") is at most 20+2+6+1+20+1+20+1 bytes and the host; it is also
 * the journal's intent token.  With ",S=<size>" it stays well within
 * NAME_MAX (255). */
#define MAILDIR_BASE_MAX (71u + MAILDIR_HOST_MAX)
#define MAILDIR_NAME_MAX (MAILDIR_BASE_MAX + 32u) /* a buffer for either name */
_Static_assert(MAILDIR_BASE_MAX <= JOURNAL_TOKEN_MAX, "a Maildir unique name must fit in a journal token");
/* Tries at a fresh unique name when one is taken in tmp/. */
#define MAILDIR_NAME_TRIES 10

enum md_where { MD_TMP, MD_LINKED, MD_MOVED }; /* in tmp/ only; in both; in new/ only */

/* A message written to tmp/ since the last commit.  Its names are made
 * again when needed (maildir_base), so that a batch takes little memory. */
struct md_file {
	int fd;                  /* open until fsynced, then -1 */
	enum md_where in_new;    /* during the commit */
	unsigned long long size; /* bytes written */
	long long sec;           /* the unique name: time, */
	long usec;               /* microseconds */
	unsigned long q;         /* and count */
};

struct maildir {
	int dirfd, tmpfd, newfd, curfd;
	long pid;                        /* ours, for unique names */
	char host[MAILDIR_HOST_MAX + 1]; /* escaped host name */
	struct md_file *files;           /* the batch since the last commit */
	size_t nfiles, cap, nopen;
	size_t first_open;               /* files[0..first_open) are fsynced and closed */
	int sync_errno;                  /* a grouped fsync before the commit failed */
	char sync_failed[MAILDIR_NAME_MAX]; /* ... for this file */
	int no_rename;                   /* the file system lacks RENAME_NOREPLACE */
	int sync_new, sync_cur;          /* a message found whole: its directory needs an fsync */
	int tidied;                      /* the last intent's tmp/ file was looked for */
};

/* The file of the message being written (maildir_put's context). */
struct md_out {
	int fd;
	unsigned long long size;
	int err;
};

/* The host name as a unique name may hold it: '/' and ':' as \057 and
 * \072 (the spec), and so too ',' (it starts ",S="), '\' and anything
 * not printable, so the name is also a journal token (no blanks). */
static void
maildir_host(char *out, size_t outsize)
{
	char host[256];
	size_t o = 0;

	if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	for (const unsigned char *p = (const unsigned char *)host; *p != '\0'; p++) {
		if (*p == '/' || *p == ':' || *p == ',' || *p == '\\' || !isgraph(*p)) {
			if (o + 4 >= outsize)
				break;
			snprintf(out + o, 5, "\\%03o", *p);
			o += 4;
		} else {
			if (o + 1 >= outsize)
				break;
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
}

/* Whether token is a unique name this sink could have made: it names a
 * file in tmp/, new/ or cur/, and nothing else (no '/', no dot file). */
static int
maildir_name_ok(const char *token)
{
	size_t n = strlen(token);

	return n > 0 && n <= MAILDIR_BASE_MAX && isdigit((unsigned char)token[0]) && strstr(token, ".M") != NULL &&
	    strchr(token, '/') == NULL;
}

/* Opens subdirectory sub of the Maildir, creating it (0700) if missing;
 * *created is set when it was.  Returns the descriptor, or -1 with err set. */
static int
maildir_subdir(struct sink *s, int dirfd, const char *sub, int *created, struct mf_error *err)
{
	const char *path = s->acct->maildir;
	struct stat st;
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(dirfd, sub, 0700) == 0)
			*created = 1;
		else if (errno != EEXIST) {
			err_set(err, MF_EDELIVER, "cannot create %s/%s: %s; check the Maildir's permissions", path, sub,
			    strerror(errno));
			return -1;
		}
		fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			err_set(err, MF_EDELIVER, "%s/%s is not a directory; a Maildir holds the directories cur, new "
			    "and tmp: move that file away or set maildir to another path", path, sub);
		else
			err_set(err, MF_EDELIVER, "cannot open %s/%s: %s; check the Maildir's permissions", path, sub,
			    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		err_set(err, MF_EDELIVER, "cannot stat %s/%s: %s; check the Maildir", path, sub, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		err_set(err, MF_EDELIVER, "%s/%s belongs to another user (uid %ld); refusing to deliver into it, "
		    "set maildir to a Maildir of your own", path, sub, (long)st.st_uid);
		close(fd);
		return -1;
	}
	return fd;
}

/* Opens the Maildir directory itself (path: the maildir setting without
 * trailing slashes), creating it if it is missing and the directory that
 * should hold it exists; checks it is a directory of ours and not a
 * symbolic link.  Returns the descriptor, or -1 with err set; *created
 * is set when it was made here. */
static int
maildir_open_top(struct sink *s, const char *path, int *created, struct mf_error *err)
{
	const char *name = s->acct->maildir;
	struct stat st, fst;
	int fd;

	if (lstat(path, &st) < 0 && errno == ENOENT) {
		char *parent = xstrdup(path), *slash = strrchr(parent, '/');
		struct stat pst;

		if (slash == parent)
			slash[1] = '\0';
		else if (slash != NULL)
			*slash = '\0';
		if (stat(slash != NULL ? parent : ".", &pst) < 0 || !S_ISDIR(pst.st_mode)) {
			err_set(err, MF_EDELIVER, "the directory %s, which should hold the Maildir %s, does not exist; "
			    "create it (mailfetch creates only the Maildir itself) or fix the maildir setting",
			    slash != NULL ? parent : ".", name);
			free(parent);
			return -1;
		}
		free(parent);
		if (mkdir(path, 0700) == 0) {
			*created = 1;
		} else if (errno != EEXIST) {
			err_set(err, MF_EDELIVER, "cannot create the Maildir %s: %s; check the permissions of its "
			    "directory or fix the maildir setting", name, strerror(errno));
			return -1;
		}
	}
	if (lstat(path, &st) < 0) {
		err_set(err, MF_EDELIVER, "cannot use the Maildir %s: %s; check the path", name, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		err_set(err, MF_EDELIVER, "Maildir %s is a symbolic link; refusing to deliver through it, "
		    "set maildir to the directory itself", name);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		err_set(err, MF_EDELIVER, "Maildir %s is not a directory; set maildir to a Maildir, or to a "
		    "path that does not exist yet in an existing directory", name);
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err_set(err, MF_EDELIVER, "cannot open the Maildir %s: %s; check its permissions", name,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &fst) < 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
		close(fd);
		err_set(err, MF_EDELIVER, "the Maildir %s was replaced while it was opened; try again", name);
		return -1;
	}
	if (fst.st_uid != geteuid()) {
		/* Someone else's mail: not ours to add to, whatever its mode. */
		close(fd);
		err_set(err, MF_EDELIVER, "Maildir %s belongs to another user (uid %ld); refusing to deliver "
		    "into it, set maildir to a Maildir of your own", name, (long)fst.st_uid);
		return -1;
	}
	return fd;
}

static void
maildir_free(struct maildir *m)
{
	if (m->curfd >= 0)
		close(m->curfd);
	if (m->newfd >= 0)
		close(m->newfd);
	if (m->tmpfd >= 0)
		close(m->tmpfd);
	if (m->dirfd >= 0)
		close(m->dirfd);
	free(m->files);
	free(m);
}

static int
maildir_open(struct sink *s, struct mf_error *err)
{
	const char *path = s->acct->maildir;
	struct maildir *m = xcalloc(1, sizeof *m);
	char *top = xstrdup(path);
	size_t len = strlen(top);
	int created = 0;

	/* "~/Maildir/" names the same directory; a trailing slash would
	 * make lstat follow a symbolic link. */
	while (len > 1 && top[len - 1] == '/')
		top[--len] = '\0';
	m->tmpfd = m->newfd = m->curfd = -1;
	m->dirfd = maildir_open_top(s, top, &created, err);
	if (m->dirfd < 0 || (m->curfd = maildir_subdir(s, m->dirfd, "cur", &created, err)) < 0 ||
	    (m->newfd = maildir_subdir(s, m->dirfd, "new", &created, err)) < 0 ||
	    (m->tmpfd = maildir_subdir(s, m->dirfd, "tmp", &created, err)) < 0)
		goto failed;
	/* Checked now, so that a Maildir we may not write to is one error
	 * line before anything is fetched (for root, only a read-only file
	 * system fails here; the writes themselves are checked anyway). */
	if (faccessat(m->dirfd, "tmp", W_OK | X_OK, AT_EACCESS) < 0 ||
	    faccessat(m->dirfd, "new", W_OK | X_OK, AT_EACCESS) < 0) {
		err_set(err, MF_EDELIVER, "cannot write to the Maildir %s: %s; make its tmp and new directories "
		    "writable, or set maildir to another path", path, strerror(errno));
		goto failed;
	}
	if (created) {
		/* The new directories' names must be durable before any
		 * message in them is marked on the server. */
		if (fsync(m->dirfd) < 0 || deliver_sync_parent(top) < 0) {
			err_set(err, MF_EDELIVER, "cannot sync the new Maildir %s: %s; check the file system", path,
			    strerror(errno));
			goto failed;
		}
		log_info(s->who, "created the Maildir %s", path);
	}
	maildir_host(m->host, sizeof m->host);
	m->pid = (long)getpid();
	free(top);
	s->priv = m;
	return 0;
failed:
	free(top);
	maildir_free(m);
	return err->code;
}

/* Writes p[0..n) to the message file.  With writev, as the mbox sink
 * writes messages: nothing else in mailfetch uses it, so a test can make
 * exactly the message writes fail (strace -e inject=writev). */
static int
maildir_put(void *ctx, const char *p, size_t n)
{
	struct md_out *o = ctx;

	while (n > 0) {
		struct iovec v = { .iov_base = (void *)p, .iov_len = n };
		ssize_t w = writev(o->fd, &v, 1);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->err = w < 0 ? errno : EIO;
			return -1;
		}
		o->size += (unsigned long long)w;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Counts the converted message's bytes. */
static int
maildir_count_put(void *ctx, const char *p, size_t n)
{
	(void)p;
	*(unsigned long long *)ctx += n;
	return 0;
}

/* Compares what is put with a file's bytes from pos on. */
struct md_cmp {
	int fd;
	off_t pos;
	int differs;
};

static int
maildir_cmp_put(void *ctx, const char *p, size_t n)
{
	struct md_cmp *c = ctx;
	char tmp[4096];

	while (n > 0) {
		size_t want = n < sizeof tmp ? n : sizeof tmp;
		ssize_t r = pread(c->fd, tmp, want, c->pos);
		if (r <= 0 || memcmp(tmp, p, (size_t)r) != 0) {
			c->differs = 1;
			return -1;
		}
		c->pos += r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Whether file name in directory dfd holds exactly the converted message
 * of size bytes; when it does it is fsynced (it may never have been). */
static int
maildir_same(struct sink *s, int dfd, const char *name, struct spool *msg, unsigned long long size)
{
	struct md_cmp c = { .pos = 0 };
	struct stat st;
	int same;

	c.fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (c.fd < 0)
		return 0;
	same = fstat(c.fd, &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size == size &&
	    deliver_convert(s, msg, 0, 0, maildir_cmp_put, &c) == 0 && !c.differs && fsync(c.fd) == 0;
	close(c.fd);
	return same;
}

/* Looks in cur/ for base,S=size as a mail reader renames it there
 * (adding ":2,FLAGS"; some use another separator than ':').  Only when
 * cur/ changed since the message was written, so that a crash's
 * successor does not read a large cur/ once per message for nothing.
 * Returns 1 if it is there whole. */
static int
maildir_in_cur(struct sink *s, struct maildir *m, const char *name, struct spool *msg, unsigned long long size)
{
	size_t len = strlen(name);
	long long written = strtoll(name, NULL, 10);
	struct stat st;
	struct dirent *d;
	DIR *dir;
	int fd, found = 0;

	if (fstat(m->curfd, &st) < 0 || (long long)st.st_mtime + 2 < written)
		return 0;
	fd = openat(m->curfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (!found && (d = readdir(dir)) != NULL) {
		/* The name itself, or it with an info part (strchr finds the
		 * terminating NUL too). */
		if (strncmp(d->d_name, name, len) == 0 && strchr(":;!", d->d_name[len]) != NULL &&
		    maildir_same(s, m->curfd, d->d_name, msg, size))
			found = 1;
	}
	closedir(dir);
	return found;
}

/* An interrupted run recorded (token) that it was about to write this
 * message as tmp/TOKEN.  Returns 1 if it reached new/ (or cur/) whole:
 * then it is durable now and its directory is fsynced at commit.  A
 * tmp/ copy is ours and removed in any case.  Anything else of that
 * name is left alone. */
static int
maildir_verify(struct sink *s, struct maildir *m, struct spool *msg, const char *token)
{
	unsigned long long size = 0;
	char name[MAILDIR_NAME_MAX];

	if (!maildir_name_ok(token))
		return 0; /* another sink's token (deliver was changed) */
	if (unlinkat(m->tmpfd, token, 0) == 0)
		log_info(s->who, "removed %s/tmp/%s, left by an interrupted run", s->acct->maildir, token);
	if (deliver_convert(s, msg, 0, 0, maildir_count_put, &size) != 0)
		return 0;
	snprintf(name, sizeof name, "%s,S=%llu", token, size);
	if (maildir_same(s, m->newfd, name, msg, size)) {
		m->sync_new = 1;
		return 1;
	}
	if (maildir_in_cur(s, m, name, msg, size)) {
		m->sync_cur = 1;
		return 1;
	}
	return 0;
}

/* A run killed while writing leaves its last message in tmp/: ours, and
 * of no use to anyone (the message comes again), so it is removed.  The
 * Maildir spec's readers ignore tmp/, so this is only tidiness. */
static void
maildir_tidy(struct sink *s, struct maildir *m)
{
	m->tidied = 1;
	if (s->last_intent != NULL && maildir_name_ok(s->last_intent) && unlinkat(m->tmpfd, s->last_intent, 0) == 0)
		log_info(s->who, "removed %s/tmp/%s, left by an interrupted run", s->acct->maildir, s->last_intent);
}

/* The unique name of a file of the batch (what tmp/ holds it as). */
static void
maildir_base(const struct maildir *m, const struct md_file *f, char *out, size_t outsize)
{
	snprintf(out, outsize, "%lld.M%06ldP%ldQ%lu.%s", f->sec, f->usec, m->pid, f->q, m->host);
}

/* Its name in new/: the unique name and the size. */
static void
maildir_new_name(const struct maildir *m, const struct md_file *f, char *out, size_t outsize)
{
	char base[MAILDIR_BASE_MAX + 1];

	maildir_base(m, f, base, sizeof base);
	snprintf(out, outsize, "%s,S=%llu", base, f->size);
}

/* fsyncs and closes the files of the batch still open.  A failure is
 * kept for the commit, which then takes the whole batch back. */
static void
maildir_sync_open(struct maildir *m)
{
	for (size_t i = m->first_open; i < m->nfiles && m->nopen > 0; i++) {
		struct md_file *f = &m->files[i];
		if (f->fd < 0)
			continue;
		if (fsync(f->fd) < 0 && m->sync_errno == 0) {
			m->sync_errno = errno;
			maildir_base(m, f, m->sync_failed, sizeof m->sync_failed);
		}
		close(f->fd);
		f->fd = -1;
		m->nopen--;
	}
	m->first_open = m->nfiles;
}

/* Takes the batch back: out of new/ where it got there, out of tmp/. */
static void
maildir_discard(struct maildir *m)
{
	char name[MAILDIR_NAME_MAX];

	for (size_t i = 0; i < m->nfiles; i++) {
		struct md_file *f = &m->files[i];
		if (f->fd >= 0)
			close(f->fd);
		if (f->in_new != MD_TMP) {
			maildir_new_name(m, f, name, sizeof name);
			unlinkat(m->newfd, name, 0);
		}
		if (f->in_new != MD_MOVED) {
			maildir_base(m, f, name, sizeof name);
			unlinkat(m->tmpfd, name, 0);
		}
	}
	m->nfiles = m->nopen = m->first_open = 0;
	m->sync_errno = 0;
}

/* A fresh unique name for f (time.M<usec>P<pid>Q<count>.<host>). */
static void
maildir_unique(struct maildir *m, struct md_file *f)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	f->sec = (long long)tv.tv_sec;
	f->usec = (long)tv.tv_usec;
	/* one count for the whole process: two threads of one daemon may
	 * write into the same Maildir in the same microsecond */
	static unsigned long made;
	(void)m;
	f->q = __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
}

/* The converted message (LF line ends, no From_ line, no quoting, no
 * line end added) into a new file in tmp/, added to the batch. */
static int
maildir_deliver(struct sink *s, struct spool *msg, const char *sender, int *temporary, struct mf_error *err)
{
	const char *path = s->acct->maildir;
	struct maildir *m = s->priv;
	struct md_out o = { .fd = -1 };
	struct md_file f = { .fd = -1 };
	char base[MAILDIR_NAME_MAX];
	int conv;

	(void)sender;
	if (!m->tidied)
		maildir_tidy(s, m);
	if (s->prior != NULL && maildir_verify(s, m, msg, s->prior)) {
		s->already = 1;
		return 0;
	}
	for (int tries = 0; o.fd < 0 && tries < MAILDIR_NAME_TRIES; tries++) {
		maildir_unique(m, &f);
		maildir_base(m, &f, base, sizeof base);
		/* Without the name on record, a kill could make the next run
		 * deliver the message twice: better not to write it. */
		if (s->intent != NULL && s->intent(s->intent_ctx, base) != 0) {
			*temporary = 1;
			return err_set(err, MF_EDELIVER, "cannot record in the journal where the message goes, so a "
			    "crash could deliver it twice; not writing it, it stays on the server (see the error above)");
		}
		o.fd = openat(m->tmpfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (o.fd < 0 && (errno == EMFILE || errno == ENFILE) && m->nopen > 0) {
			/* Our batch holds the descriptors: let them go. */
			maildir_sync_open(m);
			o.fd = openat(m->tmpfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
			    0600);
		}
		if (o.fd < 0 && errno != EEXIST)
			break;
	}
	if (o.fd < 0) {
		int e = errno;
		/* Every other message would fail the same way: no file can be
		 * made in tmp/ (permissions, a full disk, no inodes left). */
		*temporary = 1;
		return err_set(err, MF_EDELIVER, "cannot create a file in %s/tmp: %s; check the Maildir's "
		    "permissions and free space, the message stays on the server", path, strerror(e));
	}
	conv = deliver_convert(s, msg, 0, 0, maildir_put, &o);
	if (conv != 0) {
		int e = conv == -1 ? o.err : EIO;
		close(o.fd);
		unlinkat(m->tmpfd, base, 0);
		/* A full disk or quota will not be better for the next message. */
		*temporary = e == ENOSPC || e == EDQUOT;
		if (conv == -2)
			return err_set(err, MF_EDELIVER, "cannot read the message back from its spool file; check "
			    "$TMPDIR, the message stays on the server");
		return err_set(err, MF_EDELIVER, "cannot write to %s/tmp/%s: %s; free some space or fix the Maildir, "
		    "the message stays on the server", path, base, strerror(e));
	}
#ifdef SYNC_FILE_RANGE_WRITE
	/* Start the writeback now: the fsyncs at commit then mostly wait
	 * for what is under way, and one journal commit covers the batch. */
	(void)sync_file_range(o.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
	if (m->nfiles == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->files = xreallocarray(m->files, m->cap, sizeof *m->files);
	}
	f.fd = o.fd;
	f.size = o.size;
	m->files[m->nfiles++] = f;
	if (++m->nopen >= MAILDIR_OPEN_MAX)
		maildir_sync_open(m);
	return 0;
}

/* Moves a synced file of the batch from tmp/ into new/, never over a
 * file there: renameat2 with RENAME_NOREPLACE, or where the file system
 * has no such rename, link (which never overwrites) and the tmp/ name
 * left for later.  Returns 0 or -1 with errno set. */
static int
maildir_move(struct maildir *m, struct md_file *f)
{
	char base[MAILDIR_NAME_MAX], name[MAILDIR_NAME_MAX];

	maildir_base(m, f, base, sizeof base);
	maildir_new_name(m, f, name, sizeof name);
#ifdef RENAME_NOREPLACE
	if (!m->no_rename) {
		if (renameat2(m->tmpfd, base, m->newfd, name, RENAME_NOREPLACE) == 0) {
			f->in_new = MD_MOVED;
			return 0;
		}
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
		m->no_rename = 1;
	}
#endif
	if (linkat(m->tmpfd, base, m->newfd, name, 0) < 0)
		return -1;
	f->in_new = MD_LINKED;
	return 0;
}

/* Makes the batch durable in new/: fsync each file, move it into new/,
 * fsync new/ (and cur/ or new/ where a message of an interrupted run
 * was found).  On any failure the batch is taken back out of new/ and
 * tmp/: none of it counts as delivered. */
static int
maildir_commit(struct sink *s, struct mf_error *err)
{
	const char *path = s->acct->maildir;
	struct maildir *m = s->priv;
	char base[MAILDIR_NAME_MAX];
	int r = 0;

	if (!m->tidied)
		maildir_tidy(s, m);
	maildir_sync_open(m);
	if (m->sync_errno != 0) {
		r = err_set(err, MF_EDELIVER, "cannot write to %s/tmp/%s: fsync: %s; free some space or check the "
		    "disk, the messages stay on the server", path, m->sync_failed, strerror(m->sync_errno));
		goto failed;
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		if (maildir_move(m, &m->files[i]) < 0) {
			int e = errno;
			maildir_base(m, &m->files[i], base, sizeof base);
			r = err_set(err, MF_EDELIVER, "cannot move %s/tmp/%s into %s/new: %s; free some space or fix "
			    "the Maildir, the messages stay on the server", path, base, path, strerror(e));
			goto failed;
		}
	}
	if ((m->nfiles > 0 || m->sync_new) && fsync(m->newfd) < 0) {
		r = err_set(err, MF_EDELIVER, "cannot sync %s/new: %s; check the disk, the messages stay on the "
		    "server", path, strerror(errno));
		goto failed;
	}
	if (m->sync_cur && fsync(m->curfd) < 0) {
		r = err_set(err, MF_EDELIVER, "cannot sync %s/cur: %s; check the disk, the messages stay on the "
		    "server", path, strerror(errno));
		goto failed;
	}
	/* Durable in new/: a tmp/ name left by link is of no more use.
	 * One left behind costs nothing (readers ignore tmp/) but is
	 * reported. */
	for (size_t i = 0; i < m->nfiles; i++) {
		if (m->files[i].in_new != MD_LINKED)
			continue;
		maildir_base(m, &m->files[i], base, sizeof base);
		if (unlinkat(m->tmpfd, base, 0) < 0 && errno != ENOENT)
			log_warn(s->who, "cannot remove %s/tmp/%s: %s; the message is delivered, the file in tmp "
			    "can be removed", path, base, strerror(errno));
	}
	m->nfiles = m->first_open = 0;
	m->sync_new = m->sync_cur = 0;
	return 0;
failed:
	maildir_discard(m);
	m->sync_new = m->sync_cur = 0;
	return r;
}

/* Before a wait for the server: fsync (and close) the files written
 * since the last pause now, while the server sends the next messages,
 * rather than all of them at the commit.  Nothing is moved into new/
 * here; a failure is kept for the commit, which then takes the whole
 * batch back, as when the commit's own fsync fails. */
static void
maildir_pause(struct sink *s)
{
	struct maildir *m = s->priv;

	if (m != NULL && m->nopen > 0)
		maildir_sync_open(m);
}

static void
maildir_close(struct sink *s)
{
	struct maildir *m = s->priv;

	if (m == NULL)
		return;
	/* An uncommitted batch counts as not delivered: take it back. */
	maildir_discard(m);
	maildir_free(m);
}

const struct sink_ops sink_maildir_ops = {
	.name = "maildir",
	.open = maildir_open,
	.deliver = maildir_deliver,
	.commit = maildir_commit,
	.close = maildir_close,
	.pause = maildir_pause,
};
