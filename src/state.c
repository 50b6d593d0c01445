/* state.c: the delivered-but-not-marked journal of one account.
 *
 * The file holds a header line and then one line per delivered message:
 * "UIDVALIDITY UID FOLDER".  Lines are appended while a run goes on (each
 * batch after its delivery is durable) and the file is rewritten
 * atomically at the end with whatever is still unmarked, which normally
 * is nothing: then the file is removed. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "state.h"
#include "xmalloc.h"

#define STATE_MAGIC "mailfetch-state 1"

struct entry {
	char *folder;
	uint32_t uidvalidity;
	uint32_t uid;
};

struct state {
	char *path;
	char *header;      /* identifies the account: user@host:port */
	int fd;            /* open for appending */
	struct entry *e;
	size_t n, cap;
	uint32_t *view;    /* state_pending's answer */
	size_t nview;
};

char *
state_dir(void)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char *dir;

	if (xdg != NULL && xdg[0] == '/')
		dir = xasprintf("%s/mailfetch", xdg);
	else
		dir = xasprintf("%s/.local/state/mailfetch", home ? home : "");
	for (char *s = dir + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		mkdir(dir, 0700);
		*s = '/';
	}
	mkdir(dir, 0700);
	return dir;
}

static void
add(struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid)
{
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 64;
		st->e = xreallocarray(st->e, st->cap, sizeof *st->e);
	}
	st->e[st->n].folder = xstrdup(folder);
	st->e[st->n].uidvalidity = uidvalidity;
	st->e[st->n].uid = uid;
	st->n++;
}

/* Parses the file's lines; a file for another account or in another
 * format is ignored (it cannot tell us anything about this one). */
static void
load(struct state *st, FILE *fp)
{
	char line[2048];

	if (fgets(line, sizeof line, fp) == NULL)
		return;
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, st->header) != 0)
		return;
	while (fgets(line, sizeof line, fp) != NULL) {
		unsigned long v, u;
		int off = 0;
		if (strchr(line, '\n') == NULL)
			break; /* cut short: a run died writing it */
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%lu %lu %n", &v, &u, &off) != 2 || off == 0 || v > UINT32_MAX || u > UINT32_MAX || u == 0)
			continue;
		add(st, line + off, (uint32_t)v, (uint32_t)u);
	}
}

/* Replaces the file atomically with the header and the entries (none:
 * removes it), then keeps it open for appending if keep_open. */
static int
state_write(struct state *st, int keep_open, struct mf_error *err)
{
	char *tmp, *dir, *slash;
	struct buf b;
	int fd, dfd, rc = 0;

	if (st->fd >= 0) {
		close(st->fd);
		st->fd = -1;
	}
	if (st->n == 0 && !keep_open) {
		if (unlink(st->path) < 0 && errno != ENOENT)
			return err_set(err, MF_EINTERNAL, "cannot remove %s: %s; check the state directory", st->path,
			    strerror(errno));
		return 0;
	}
	buf_init(&b, 0);
	buf_printf(&b, "%s\n", st->header);
	for (size_t i = 0; i < st->n; i++)
		buf_printf(&b, "%u %u %s\n", st->e[i].uidvalidity, st->e[i].uid, st->e[i].folder);
	tmp = xasprintf("%s.tmp", st->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) < 0 || rename(tmp, st->path) < 0) {
		rc = err_set(err, MF_EINTERNAL, "cannot write %s: %s; check the state directory and free space",
		    st->path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
	buf_free(&b);
	if (rc != 0)
		return rc;
	/* The rename itself must survive a crash too. */
	dir = xstrdup(st->path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	free(dir);
	if (keep_open) {
		st->fd = open(st->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
		if (st->fd < 0)
			return err_set(err, MF_EINTERNAL, "cannot open %s: %s; check the state directory", st->path,
			    strerror(errno));
	}
	return 0;
}

int
state_open(const struct account *a, struct state **out, struct mf_error *err)
{
	struct state *st = xcalloc(1, sizeof *st);
	char *dir = state_dir(), *name = xstrdup(a->name);
	FILE *fp;

	(void)err;
	/* Account names become file names: anything but [A-Za-z0-9._-] is
	 * written as %XX, so two names never share a file. */
	{
		struct buf b;
		buf_init(&b, 0);
		for (const char *c = name; *c; c++) {
			if (isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_')
				buf_append(&b, c, 1);
			else
				buf_printf(&b, "%%%02X", (unsigned char)*c);
		}
		free(name);
		name = b.data;
	}
	st->fd = -1;
	st->path = xasprintf("%s/%s.state", dir, name);
	st->header = xasprintf("%s %s@%s", STATE_MAGIC, a->user, a->host);
	free(dir);
	free(name);
	fp = fopen(st->path, "re");
	if (fp != NULL) {
		load(st, fp);
		fclose(fp);
	}
	*out = st;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Drops entries for which drop() is true. */
static void
filter(struct state *st, int (*drop)(const struct entry *e, const void *arg), const void *arg)
{
	size_t k = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (drop(&st->e[i], arg))
			free(st->e[i].folder);
		else
			st->e[k++] = st->e[i];
	}
	st->n = k;
}

struct folder_v {
	const char *folder;
	uint32_t uidvalidity;
};

static int
stale_in_folder(const struct entry *e, const void *arg)
{
	const struct folder_v *f = arg;
	return strcmp(e->folder, f->folder) == 0 && e->uidvalidity != f->uidvalidity;
}

static int
in_folder(const struct entry *e, const void *arg)
{
	return strcmp(e->folder, arg) == 0;
}

size_t
state_pending(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t **uids)
{
	struct folder_v f = { folder, uidvalidity };

	filter(st, stale_in_folder, &f);
	st->nview = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (strcmp(st->e[i].folder, folder) != 0)
			continue;
		st->view = xreallocarray(st->view, st->nview + 1, sizeof *st->view);
		st->view[st->nview++] = st->e[i].uid;
	}
	if (st->nview > 1)
		qsort(st->view, st->nview, sizeof *st->view, cmp_u32);
	*uids = st->view;
	return st->nview;
}

int
state_delivered(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    int sync, struct mf_error *err)
{
	struct buf b;
	int rc = 0;

	if (n == 0 && !sync)
		return 0;
	if (st->fd < 0 && state_write(st, 1, err) != 0)
		return err->code;
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		add(st, folder, uidvalidity, uids[i]);
		buf_printf(&b, "%u %u %s\n", uidvalidity, uids[i], folder);
	}
	if ((b.len > 0 && write(st->fd, b.data, b.len) != (ssize_t)b.len) || (sync && fsync(st->fd) < 0))
		rc = err_set(err, MF_EINTERNAL, "cannot write %s: %s; check the state directory and free space",
		    st->path, strerror(errno));
	buf_free(&b);
	return rc;
}

void
state_marked(struct state *st, const char *folder)
{
	filter(st, in_folder, folder);
}

struct folder_uids {
	const char *folder;
	const uint32_t *uids; /* sorted */
	size_t n;
};

static int
in_uids(const struct entry *e, const void *arg)
{
	const struct folder_uids *f = arg;
	return bsearch(&e->uid, f->uids, f->n, sizeof *f->uids, cmp_u32) != NULL && strcmp(e->folder, f->folder) == 0;
}

void
state_forget(struct state *st, const char *folder, const uint32_t *uids, size_t n)
{
	uint32_t *sorted;
	struct folder_uids f = { folder, NULL, n };

	if (n == 0 || st->n == 0)
		return;
	sorted = xreallocarray(NULL, n, sizeof *sorted);
	memcpy(sorted, uids, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_u32);
	f.uids = sorted;
	filter(st, in_uids, &f);
	free(sorted);
}

int
state_close(struct state *st, struct mf_error *err)
{
	int rc;

	if (st == NULL)
		return 0;
	rc = st->fd >= 0 || st->n > 0 || access(st->path, F_OK) == 0 ? state_write(st, 0, err) : 0;
	for (size_t i = 0; i < st->n; i++)
		free(st->e[i].folder);
	free(st->e);
	free(st->view);
	free(st->path);
	free(st->header);
	free(st);
	return rc;
}
