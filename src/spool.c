/* spool.c: message storage, memory first, then an unlinked temp file. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buf.h"
#include "mf_limits.h"
#include "spool.h"
#include "xmalloc.h"

struct spool {
	struct buf mem;
	int fd;            /* -1 until the message outgrows memory */
	uint64_t file_len; /* bytes in the file (the message, once spilled) */
	int spilled;
};

struct spool *
spool_new(void)
{
	struct spool *s = xcalloc(1, sizeof *s);
	buf_init(&s->mem, SPOOL_MEMORY_MAX);
	/* All at once: growing by doubling would hold the old and the new
	 * block together at each step.  Untouched pages cost nothing. */
	buf_reserve(&s->mem, SPOOL_MEMORY_MAX);
	s->fd = -1;
	return s;
}

void
spool_free(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	buf_free(&s->mem);
	free(s);
}

void
spool_reset(struct spool *s)
{
	buf_reset(&s->mem);
	if (s->spilled && ftruncate(s->fd, 0) < 0) {
		close(s->fd); /* a fresh file next time */
		s->fd = -1;
	}
	s->file_len = 0;
	s->spilled = 0;
}

/* An anonymous file in $TMPDIR (or /tmp) nobody else can open. */
static int
spool_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char *name;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
#endif
	name = xasprintf("%s/mailfetch.XXXXXX", dir);
	fd = mkostemp(name, O_CLOEXEC);
	if (fd >= 0)
		unlink(name);
	free(name);
	return fd;
}

int
spool_anon_fd(int in_memory)
{
#ifdef MFD_ALLOW_SEALING
	if (in_memory) {
		int fd = memfd_create("mailfetch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		/* ENOSYS (before Linux 3.17) or a seccomp filter: a file will do. */
		if (fd >= 0)
			return fd;
	}
#endif
	return spool_tmpfile();
}

static int
write_all(int fd, const char *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int
spool_write(struct spool *s, const void *p, size_t n, struct mf_error *err)
{
	if (!s->spilled) {
		if (buf_append(&s->mem, p, n) == 0)
			return 0;
		if (s->fd < 0 && (s->fd = spool_tmpfile()) < 0)
			return err_set(err, MF_EDELIVER, "cannot create a temporary file for a large message: %s; "
			    "check TMPDIR and free space", strerror(errno));
		if (write_all(s->fd, s->mem.data, s->mem.len, 0) < 0)
			goto fail;
		s->file_len = s->mem.len;
		buf_reset(&s->mem);
		s->spilled = 1;
	}
	if (write_all(s->fd, p, n, s->file_len) < 0)
		goto fail;
	s->file_len += n;
	return 0;
fail:
	return err_set(err, MF_EDELIVER, "cannot write a large message to a temporary file: %s; "
	    "check TMPDIR and free space", strerror(errno));
}

uint64_t
spool_size(const struct spool *s)
{
	return s->spilled ? s->file_len : s->mem.len;
}

ssize_t
spool_pread(struct spool *s, void *buf, size_t len, uint64_t off)
{
	uint64_t size = spool_size(s);

	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	if (!s->spilled) {
		memcpy(buf, s->mem.data + off, len);
		return (ssize_t)len;
	}
	for (;;) {
		ssize_t r = pread(s->fd, buf, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}
