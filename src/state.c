/* state.c: the delivery journal of one account.
 *
 * The file holds a header line and then one line per message:
 * "UIDVALIDITY UID FOLDER" for a message delivered (durably) and not yet
 * known to be marked, and "I UIDVALIDITY UID TOKEN FOLDER" for an
 * intent: the sink was about to write the message where TOKEN says
 * (an mbox's device, inode and offset), written before the first byte of
 * it.  A later line for the same message replaces an earlier one, and a
 * delivered line beats an intent.  Lines are appended while a run goes
 * on and the file is rewritten atomically at the end with whatever is
 * still open, which normally is nothing: then the file is removed. */
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
#include "mf_limits.h"
#include "state.h"
#include "xmalloc.h"

#define STATE_MAGIC "mailfetch-state 1"
#define STATE_TOKEN_SCAN "255" /* JOURNAL_TOKEN_MAX, for sscanf */
_Static_assert(JOURNAL_TOKEN_MAX == 255, "STATE_TOKEN_SCAN follows JOURNAL_TOKEN_MAX");

struct entry {
	char *folder;
	uint32_t uidvalidity;
	uint32_t uid;
	char *token;       /* an intent: where the sink was about to write; NULL: delivered */
	int voided;        /* (while loading) a "V" line: the intent before it is void */
	int forgotten;     /* forgotten while held (state_hold): kept until state_release */
	int fresh;         /* an intent of this run (state_intent), not one a killed run left */
	size_t seq;        /* order of appearance, for the last-one-wins rule */
};

struct state {
	char *path;
	char *header;      /* identifies the account: user@host:port */
	int fd;            /* open for appending */
	struct entry *e;
	size_t n, cap;
	uint32_t *view;    /* state_pending's answer */
	size_t nview, view_cap;
	struct entry *prior; /* intents an earlier run left, sorted by key (copies) */
	size_t nprior;
	struct entry *big;   /* messages over the account's limit, already reported ("O" lines) */
	size_t nbig, big_cap;
	int hold;          /* state_hold: forget only marks, state_release drops */
	size_t seq;
};

static void state_free(struct state *st);

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
add(struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid, const char *token)
{
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 64;
		st->e = xreallocarray(st->e, st->cap, sizeof *st->e);
	}
	st->e[st->n].folder = xstrdup(folder);
	st->e[st->n].uidvalidity = uidvalidity;
	st->e[st->n].uid = uid;
	st->e[st->n].token = token != NULL ? xstrdup(token) : NULL;
	st->e[st->n].voided = 0;
	st->e[st->n].forgotten = 0;
	st->e[st->n].fresh = 0;
	st->e[st->n].seq = st->seq++;
	st->n++;
}

static void
add_big(struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid)
{
	if (st->nbig == st->big_cap) {
		st->big_cap = st->big_cap ? st->big_cap * 2 : 16;
		st->big = xreallocarray(st->big, st->big_cap, sizeof *st->big);
	}
	memset(&st->big[st->nbig], 0, sizeof st->big[0]);
	st->big[st->nbig].folder = xstrdup(folder);
	st->big[st->nbig].uidvalidity = uidvalidity;
	st->big[st->nbig].uid = uid;
	st->nbig++;
}

static void
entry_free(struct entry *e)
{
	free(e->folder);
	free(e->token);
}

/* By (folder, UIDVALIDITY, UID), then order of appearance. */
static int
cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->folder, y->folder);

	if (c != 0)
		return c;
	if (x->uidvalidity != y->uidvalidity)
		return x->uidvalidity < y->uidvalidity ? -1 : 1;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
same_key(const struct entry *x, const struct entry *y)
{
	return x->uid == y->uid && x->uidvalidity == y->uidvalidity && strcmp(x->folder, y->folder) == 0;
}

/* One entry per message, as the file's rules say: a delivered line beats
 * everything, and otherwise the last intent counts unless a void line
 * came after it.  Then the intents are copied aside, sorted, for
 * state_prior(). */
static void
normalize(struct state *st)
{
	size_t k = 0, cap = 0;

	if (st->n > 1)
		qsort(st->e, st->n, sizeof *st->e, cmp_entry);
	for (size_t i = 0; i < st->n; ) {
		size_t j = i, keep = st->n, delivered = st->n;
		while (j < st->n && same_key(&st->e[i], &st->e[j])) {
			if (st->e[j].voided)
				keep = st->n;
			else if (st->e[j].token != NULL)
				keep = j;
			else
				delivered = j;
			j++;
		}
		if (delivered < st->n)
			keep = delivered;
		for (size_t x = i; x < j; x++)
			if (x != keep)
				entry_free(&st->e[x]);
		if (keep < st->n)
			st->e[k++] = st->e[keep];
		i = j;
	}
	st->n = k;
	for (size_t i = 0; i < st->n; i++) {
		struct entry *e = &st->e[i];
		if (e->token == NULL)
			continue;
		if (st->nprior == cap) {
			cap = cap ? cap * 2 : 16;
			st->prior = xreallocarray(st->prior, cap, sizeof *st->prior);
		}
		st->prior[st->nprior] = *e;
		st->prior[st->nprior].folder = xstrdup(e->folder);
		st->prior[st->nprior].token = xstrdup(e->token);
		st->nprior++;
	}
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
		char token[JOURNAL_TOKEN_MAX + 1];
		int off = 0;
		if (strchr(line, '\n') == NULL)
			break; /* cut short: a run died writing it */
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'O') {
			if (sscanf(line, "O %lu %lu %n", &v, &u, &off) != 2 || off == 0 || v > UINT32_MAX ||
			    u > UINT32_MAX || u == 0 || line[off] == '\0')
				continue;
			add_big(st, line + off, (uint32_t)v, (uint32_t)u);
			continue;
		}
		if (line[0] == 'V') {
			if (sscanf(line, "V %lu %lu %n", &v, &u, &off) != 2 || off == 0 || v > UINT32_MAX ||
			    u > UINT32_MAX || u == 0 || line[off] == '\0')
				continue;
			add(st, line + off, (uint32_t)v, (uint32_t)u, NULL);
			st->e[st->n - 1].voided = 1;
			continue;
		}
		if (line[0] == 'I') {
			if (sscanf(line, "I %lu %lu %" STATE_TOKEN_SCAN "s %n", &v, &u, token, &off) != 3 || off == 0 ||
			    v > UINT32_MAX || u > UINT32_MAX || u == 0 || line[off] == '\0')
				continue;
			add(st, line + off, (uint32_t)v, (uint32_t)u, token);
			continue;
		}
		if (sscanf(line, "%lu %lu %n", &v, &u, &off) != 2 || off == 0 || v > UINT32_MAX || u > UINT32_MAX || u == 0 ||
		    line[off] == '\0')
			continue;
		add(st, line + off, (uint32_t)v, (uint32_t)u, NULL);
	}
	normalize(st);
}

int
state_replace_file(const char *path, const char *data, size_t len, struct mf_error *err)
{
	char *tmp = xasprintf("%s.tmp", path), *dir, *slash;
	int fd, dfd, rc = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) < 0 || rename(tmp, path) < 0) {
		rc = err_set(err, MF_EINTERNAL, "cannot write %s: %s; check the state directory and free space",
		    path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
	if (rc != 0)
		return rc;
	/* The rename itself must survive a crash too. */
	dir = xstrdup(path);
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
	return 0;
}

char *
state_file(const struct account *a, const char *suffix)
{
	char *dir = state_dir(), *path;
	struct buf b;

	/* Account names become file names: anything but [A-Za-z0-9._-] is
	 * written as %XX, so two names never share a file. */
	buf_init(&b, 0);
	for (const char *c = a->name; *c; c++) {
		if (isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_')
			buf_append(&b, c, 1);
		else
			buf_printf(&b, "%%%02X", (unsigned char)*c);
	}
	path = xasprintf("%s/%s.%s", dir, b.data != NULL ? b.data : "", suffix);
	buf_free(&b);
	free(dir);
	return path;
}

/* Replaces the file atomically with the header and the entries (none:
 * removes it), then keeps it open for appending if keep_open. */
static int
state_write(struct state *st, int keep_open, struct mf_error *err)
{
	struct buf b;
	int rc;

	if (st->fd >= 0) {
		close(st->fd);
		st->fd = -1;
	}
	if (st->n == 0 && st->nbig == 0 && !keep_open) {
		if (unlink(st->path) < 0 && errno != ENOENT)
			return err_set(err, MF_EINTERNAL, "cannot remove %s: %s; check the state directory", st->path,
			    strerror(errno));
		return 0;
	}
	buf_init(&b, 0);
	buf_printf(&b, "%s\n", st->header);
	for (size_t i = 0; i < st->n; i++) {
		if (st->e[i].token != NULL)
			buf_printf(&b, "I %u %u %s %s\n", st->e[i].uidvalidity, st->e[i].uid, st->e[i].token,
			    st->e[i].folder);
		else
			buf_printf(&b, "%u %u %s\n", st->e[i].uidvalidity, st->e[i].uid, st->e[i].folder);
	}
	for (size_t i = 0; i < st->nbig; i++)
		buf_printf(&b, "O %u %u %s\n", st->big[i].uidvalidity, st->big[i].uid, st->big[i].folder);
	rc = state_replace_file(st->path, b.data, b.len, err);
	buf_free(&b);
	if (rc != 0)
		return rc;
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
	FILE *fp;

	st->fd = -1;
	st->path = state_file(a, "state");
	st->header = xasprintf("%s %s@%s", STATE_MAGIC, a->user, a->host);
	fp = fopen(st->path, "re");
	if (fp == NULL && errno != ENOENT) {
		/* Going on without it would deliver again what it records. */
		err_set(err, MF_EINTERNAL, "cannot read the journal %s: %s; fix its owner or permissions "
		    "(it must be readable and writable by you)", st->path, strerror(errno));
		*out = NULL;
		state_free(st);
		return err->code;
	}
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

/* Whether uid is in v[0..n) (sorted); v may be NULL when n is 0. */
static int
has_uid(const uint32_t *v, size_t n, uint32_t uid)
{
	return n > 0 && bsearch(&uid, v, n, sizeof *v, cmp_u32) != NULL;
}

/* Drops entries for which drop() is true. */
static void
filter(struct state *st, int (*drop)(const struct entry *e, const void *arg), const void *arg)
{
	size_t k = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (drop(&st->e[i], arg))
			entry_free(&st->e[i]);
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

size_t
state_pending(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t **uids)
{
	struct folder_v f = { folder, uidvalidity };

	filter(st, stale_in_folder, &f);
	st->nview = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (st->e[i].token != NULL || st->e[i].forgotten || strcmp(st->e[i].folder, folder) != 0)
			continue;
		if (st->nview == st->view_cap) {
			st->view_cap = st->view_cap ? st->view_cap * 2 : 64;
			st->view = xreallocarray(st->view, st->view_cap, sizeof *st->view);
		}
		st->view[st->nview++] = st->e[i].uid;
	}
	if (st->nview > 1)
		qsort(st->view, st->nview, sizeof *st->view, cmp_u32);
	*uids = st->view;
	return st->nview;
}

struct folder_uids {
	const char *folder;
	const uint32_t *uids; /* sorted */
	size_t n;
	int intents_only;
};

static int
in_uids(const struct entry *e, const void *arg)
{
	const struct folder_uids *f = arg;
	if (f->intents_only && e->token == NULL)
		return 0;
	return has_uid(f->uids, f->n, e->uid) && strcmp(e->folder, f->folder) == 0;
}

static int
intent_not_in_uids(const struct entry *e, const void *arg)
{
	const struct folder_uids *f = arg;
	return e->token != NULL && strcmp(e->folder, f->folder) == 0 &&
	    !has_uid(f->uids, f->n, e->uid);
}

/* Drops entries of folder for uids (any order); only intents if intents_only. */
static void
drop_uids(struct state *st, const char *folder, const uint32_t *uids, size_t n, int intents_only)
{
	uint32_t *sorted;
	struct folder_uids f = { folder, NULL, n, intents_only };

	if (n == 0 || st->n == 0)
		return;
	sorted = xreallocarray(NULL, n, sizeof *sorted);
	memcpy(sorted, uids, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_u32);
	f.uids = sorted;
	if (st->hold && !intents_only) {
		for (size_t i = 0; i < st->n; i++)
			if (in_uids(&st->e[i], &f))
				st->e[i].forgotten = 1;
	} else {
		filter(st, in_uids, &f);
	}
	free(sorted);
}

void
state_hold(struct state *st)
{
	st->hold = 1;
}

static int
is_forgotten(const struct entry *e, const void *arg)
{
	(void)arg;
	return e->forgotten;
}

void
state_release(struct state *st)
{
	if (st == NULL)
		return;
	filter(st, is_forgotten, NULL);
	st->hold = 0;
}

/* Appends text to the file (opening it first if need be); fsyncs if sync. */
static int
append(struct state *st, const struct buf *b, int sync, struct mf_error *err)
{
	if (st->fd < 0 && state_write(st, 1, err) != 0)
		return err->code;
	if ((b->len > 0 && write(st->fd, b->data, b->len) != (ssize_t)b->len) || (sync && fsync(st->fd) < 0))
		return err_set(err, MF_EINTERNAL, "cannot write %s: %s; check the state directory and free space",
		    st->path, strerror(errno));
	return 0;
}

int
state_delivered(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    int sync, struct mf_error *err)
{
	struct buf b;
	int rc;

	if (n == 0 && !sync)
		return 0;
	drop_uids(st, folder, uids, n, 1);
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		add(st, folder, uidvalidity, uids[i], NULL);
		buf_printf(&b, "%u %u %s\n", uidvalidity, uids[i], folder);
	}
	rc = append(st, &b, sync, err);
	buf_free(&b);
	return rc;
}

const char *
state_prior(const struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid)
{
	struct entry key = { .folder = (char *)folder, .uidvalidity = uidvalidity, .uid = uid };
	size_t lo = 0, hi = st->nprior;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c;
		key.seq = st->prior[mid].seq;
		c = cmp_entry(&key, &st->prior[mid]);
		if (c == 0)
			return st->prior[mid].token;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *
state_last_intent(const struct state *st)
{
	const struct entry *last = NULL;

	for (size_t i = 0; i < st->nprior; i++)
		if (last == NULL || st->prior[i].seq > last->seq)
			last = &st->prior[i];
	return last != NULL ? last->token : NULL;
}

/* Index of the intent for this message in st->e, or st->n.  Searched
 * from the end: the one wanted is almost always the last one added. */
static size_t
find_intent(const struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid)
{
	for (size_t i = st->n; i-- > 0; )
		if (st->e[i].token != NULL && st->e[i].uid == uid && st->e[i].uidvalidity == uidvalidity &&
		    strcmp(st->e[i].folder, folder) == 0)
			return i;
	return st->n;
}

static void
remove_at(struct state *st, size_t i)
{
	entry_free(&st->e[i]);
	memmove(&st->e[i], &st->e[i + 1], (st->n - i - 1) * sizeof st->e[0]);
	st->n--;
}

int
state_intent(struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid, const char *token,
    struct mf_error *err)
{
	struct buf b;
	size_t i;
	int rc;

	if (strlen(token) > JOURNAL_TOKEN_MAX || strpbrk(token, " \t\n") != NULL)
		fatal("state_intent: bad token");
	/* Only an intent an earlier run left can be here already. */
	if (st->nprior > 0 && (i = find_intent(st, folder, uidvalidity, uid)) < st->n)
		remove_at(st, i);
	add(st, folder, uidvalidity, uid, token);
	st->e[st->n - 1].fresh = 1;
	buf_init(&b, 0);
	buf_printf(&b, "I %u %u %s %s\n", uidvalidity, uid, token, folder);
	rc = append(st, &b, 0, err);
	buf_free(&b);
	return rc;
}

void
state_intent_void(struct state *st, const char *folder, uint32_t uidvalidity, uint32_t uid)
{
	size_t i = find_intent(st, folder, uidvalidity, uid);
	struct mf_error err;
	struct buf b;

	/* Only an intent of this run: one a killed run left (a whole
	 * message it wrote) stays true when an attempt failed before
	 * writing anything (the mbox locked, the run stopped), and the next
	 * run must still find that message rather than write it again. */
	if (i == st->n || !st->e[i].fresh)
		return;
	remove_at(st, i);
	/* In the file too: a killed run's successor must not look for the
	 * message there (another program may have written at that offset). */
	buf_init(&b, 0);
	buf_printf(&b, "V %u %u %s\n", uidvalidity, uid, folder);
	(void)append(st, &b, 0, &err);
	buf_free(&b);
}

void
state_intents_keep(struct state *st, const char *folder, const uint32_t *uids, size_t n)
{
	struct folder_uids f = { folder, uids, n, 1 };

	filter(st, intent_not_in_uids, &f);
}

void
state_forget(struct state *st, const char *folder, const uint32_t *uids, size_t n)
{
	drop_uids(st, folder, uids, n, 0);
}

static void
state_free(struct state *st)
{
	for (size_t i = 0; i < st->n; i++)
		entry_free(&st->e[i]);
	for (size_t i = 0; i < st->nprior; i++)
		entry_free(&st->prior[i]);
	for (size_t i = 0; i < st->nbig; i++)
		entry_free(&st->big[i]);
	free(st->e);
	free(st->prior);
	free(st->big);
	free(st->view);
	free(st->path);
	free(st->header);
	free(st);
}

int
state_too_big(struct state *st, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    uint32_t **fresh, struct mf_error *err)
{
	size_t k = 0, nf = 0;
	struct buf b;
	int rc = 0;

	/* Forget what the server no longer has over the limit (uids is sorted). */
	for (size_t i = 0; i < st->nbig; i++) {
		struct entry *e = &st->big[i];
		if (strcmp(e->folder, folder) == 0 &&
		    (e->uidvalidity != uidvalidity || !has_uid(uids, n, e->uid)))
			entry_free(e);
		else
			st->big[k++] = *e;
	}
	st->nbig = k;
	*fresh = xreallocarray(NULL, n ? n : 1, sizeof **fresh);
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		int known = 0;
		for (size_t j = 0; j < st->nbig && !known; j++)
			known = st->big[j].uid == uids[i] && st->big[j].uidvalidity == uidvalidity &&
			    strcmp(st->big[j].folder, folder) == 0;
		if (known)
			continue;
		(*fresh)[nf++] = uids[i];
		add_big(st, folder, uidvalidity, uids[i]);
		buf_printf(&b, "O %u %u %s\n", uidvalidity, uids[i], folder);
	}
	if (b.len > 0)
		rc = append(st, &b, 0, err);
	buf_free(&b);
	if (rc != 0) {
		free(*fresh);
		*fresh = NULL;
		return -1;
	}
	return (int)nf;
}

void
state_discard(struct state *st)
{
	if (st == NULL)
		return;
	if (st->fd >= 0)
		close(st->fd);
	state_free(st);
}

int
state_close(struct state *st, struct mf_error *err)
{
	int rc;

	if (st == NULL)
		return 0;
	rc = st->fd >= 0 || st->n > 0 || st->nbig > 0 || access(st->path, F_OK) == 0 ? state_write(st, 0, err) : 0;
	state_free(st);
	return rc;
}
