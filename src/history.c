/* history.c: the delivered-UID history of one account, as ranges.
 *
 * File format: a header "mailfetch-history 1 USER@HOST", then for each
 * folder a line "F UIDVALIDITY FOLDER" followed by its runs, one per
 * line: "R FIRST LAST DAY" (UIDs FIRST to LAST delivered on DAY, in UTC
 * days since the epoch).  Runs are sorted and never overlap; neighbours
 * delivered on the same day are one run, so a folder fetched in order
 * costs a line a day. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "history.h"
#include "state.h"
#include "xmalloc.h"

#define HISTORY_MAGIC "mailfetch-history 1"

struct run {
	uint32_t lo, hi, day;
};

struct hfolder {
	char *name;
	uint32_t uidvalidity;
	struct run *r;
	size_t n, cap;
};

struct history {
	char *path;
	char *header;
	struct hfolder *f;
	size_t nf;
	int changed;
};

uint32_t
history_today(void)
{
	return (uint32_t)(time(NULL) / 86400);
}

static struct hfolder *
find_folder(const struct history *h, const char *folder)
{
	for (size_t i = 0; i < h->nf; i++)
		if (strcmp(h->f[i].name, folder) == 0)
			return &h->f[i];
	return NULL;
}

static struct hfolder *
new_folder(struct history *h, const char *folder, uint32_t uidvalidity)
{
	struct hfolder *f;

	h->f = xreallocarray(h->f, h->nf + 1, sizeof *h->f);
	f = &h->f[h->nf++];
	memset(f, 0, sizeof *f);
	f->name = xstrdup(folder);
	f->uidvalidity = uidvalidity;
	return f;
}

/* Index of the first run whose last UID is >= uid (f->n if none). */
static size_t
run_at(const struct hfolder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->r[mid].hi < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
has(const struct hfolder *f, uint32_t uid)
{
	size_t i = run_at(f, uid);
	return i < f->n && f->r[i].lo <= uid;
}

static void
insert_run(struct hfolder *f, size_t at, struct run r)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->r = xreallocarray(f->r, f->cap, sizeof *f->r);
	}
	memmove(&f->r[at + 1], &f->r[at], (f->n - at) * sizeof *f->r);
	f->r[at] = r;
	f->n++;
}

static void
remove_run(struct hfolder *f, size_t at)
{
	memmove(&f->r[at], &f->r[at + 1], (f->n - at - 1) * sizeof *f->r);
	f->n--;
}

/* Adds one UID not recorded yet, joining a neighbour of the same day. */
static void
add_one(struct hfolder *f, uint32_t uid, uint32_t day)
{
	size_t i = run_at(f, uid);
	int left = i > 0 && f->r[i - 1].hi + 1 == uid && f->r[i - 1].day == day;
	int right = i < f->n && uid < UINT32_MAX && f->r[i].lo == uid + 1 && f->r[i].day == day;

	if (left && right) {
		f->r[i - 1].hi = f->r[i].hi;
		remove_run(f, i);
	} else if (left) {
		f->r[i - 1].hi = uid;
	} else if (right) {
		f->r[i].lo = uid;
	} else {
		insert_run(f, i, (struct run){ uid, uid, day });
	}
}

int
history_open(const struct account *a, struct history **out, struct mf_error *err)
{
	struct history *h = xcalloc(1, sizeof *h);
	struct hfolder *cur = NULL;
	char line[2048];
	FILE *fp;

	h->path = state_file(a, "history");
	h->header = xasprintf("%s %s@%s", HISTORY_MAGIC, a->user, a->host);
	*out = h;
	fp = fopen(h->path, "re");
	if (fp == NULL) {
		if (errno == ENOENT)
			return 0;
		err_set(err, MF_EINTERNAL, "cannot read %s: %s; fix its owner or permissions (it must be readable "
		    "and writable by you)", h->path, strerror(errno));
		history_free(h);
		*out = NULL;
		return err->code;
	}
	if (fgets(line, sizeof line, fp) == NULL || (line[strcspn(line, "\n")] = '\0', strcmp(line, h->header) != 0)) {
		fclose(fp);
		return 0; /* another account's, or another format: it tells us nothing */
	}
	while (fgets(line, sizeof line, fp) != NULL) {
		unsigned long v, lo, hi, day;
		int off = 0;
		if (strchr(line, '\n') == NULL)
			break;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'F' && sscanf(line, "F %lu %n", &v, &off) == 1 && off > 0 && line[off] != '\0' &&
		    v <= UINT32_MAX) {
			cur = find_folder(h, line + off);
			if (cur == NULL)
				cur = new_folder(h, line + off, (uint32_t)v);
		} else if (line[0] == 'R' && cur != NULL && sscanf(line, "R %lu %lu %lu", &lo, &hi, &day) == 3 &&
		    lo >= 1 && lo <= hi && hi <= UINT32_MAX && day <= UINT32_MAX) {
			size_t i = run_at(cur, (uint32_t)lo);
			/* Sorted and disjoint, as written; anything else is
			 * damage, and is left out. */
			if (i == cur->n && (cur->n == 0 || cur->r[cur->n - 1].hi < lo))
				insert_run(cur, cur->n, (struct run){ (uint32_t)lo, (uint32_t)hi, (uint32_t)day });
		}
	}
	fclose(fp);
	return 0;
}

int
history_known(const struct history *h, const char *folder, uint32_t *uidvalidity)
{
	const struct hfolder *f = find_folder(h, folder);

	if (f == NULL)
		return 0;
	*uidvalidity = f->uidvalidity;
	return 1;
}

void
history_reset(struct history *h, const char *folder, uint32_t uidvalidity)
{
	struct hfolder *f = find_folder(h, folder);

	if (f == NULL) {
		new_folder(h, folder, uidvalidity);
	} else {
		f->n = 0;
		f->uidvalidity = uidvalidity;
	}
	h->changed = 1;
}

void
history_filter(const struct history *h, const char *folder, uint32_t uidvalidity, uint32_t *uids, size_t *n)
{
	const struct hfolder *f = find_folder(h, folder);
	size_t k = 0;

	if (f == NULL || f->uidvalidity != uidvalidity)
		return;
	for (size_t i = 0; i < *n; i++)
		if (!has(f, uids[i]))
			uids[k++] = uids[i];
	*n = k;
}

void
history_add(struct history *h, const char *folder, uint32_t uidvalidity, const uint32_t *uids, size_t n,
    uint32_t day)
{
	struct hfolder *f = find_folder(h, folder);

	if (f == NULL || f->uidvalidity != uidvalidity) {
		history_reset(h, folder, uidvalidity);
		f = find_folder(h, folder);
	}
	for (size_t i = 0; i < n; i++) {
		if (uids[i] == 0 || has(f, uids[i]))
			continue;
		add_one(f, uids[i], day);
		h->changed = 1;
	}
}

size_t
history_before(const struct history *h, const char *folder, uint32_t day, uint32_t **uids)
{
	const struct hfolder *f = find_folder(h, folder);
	size_t n = 0, cap = 0;

	*uids = NULL;
	if (f == NULL)
		return 0;
	for (size_t i = 0; i < f->n; i++) {
		if (f->r[i].day >= day)
			continue;
		for (uint64_t u = f->r[i].lo; u <= f->r[i].hi; u++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				*uids = xreallocarray(*uids, cap, sizeof **uids);
			}
			(*uids)[n++] = (uint32_t)u;
		}
	}
	return n;
}

void
history_remove(struct history *h, const char *folder, const uint32_t *uids, size_t n)
{
	struct hfolder *f = find_folder(h, folder);

	if (f == NULL)
		return;
	for (size_t k = 0; k < n; k++) {
		uint32_t u = uids[k];
		size_t i = run_at(f, u);
		struct run r;
		if (i == f->n || f->r[i].lo > u)
			continue;
		r = f->r[i];
		h->changed = 1;
		if (r.lo == r.hi) {
			remove_run(f, i);
		} else if (u == r.lo) {
			f->r[i].lo++;
		} else if (u == r.hi) {
			f->r[i].hi--;
		} else {
			f->r[i].hi = u - 1;
			insert_run(f, i + 1, (struct run){ u + 1, r.hi, r.day });
		}
	}
}

int
history_save(struct history *h, struct mf_error *err)
{
	struct buf b;
	int rc;

	if (h == NULL || !h->changed)
		return 0;
	buf_init(&b, 0);
	buf_printf(&b, "%s\n", h->header);
	for (size_t i = 0; i < h->nf; i++) {
		const struct hfolder *f = &h->f[i];
		buf_printf(&b, "F %u %s\n", f->uidvalidity, f->name);
		for (size_t j = 0; j < f->n; j++)
			buf_printf(&b, "R %u %u %u\n", f->r[j].lo, f->r[j].hi, f->r[j].day);
	}
	rc = state_replace_file(h->path, b.data, b.len, err);
	buf_free(&b);
	if (rc == 0)
		h->changed = 0;
	return rc;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->nf; i++) {
		free(h->f[i].name);
		free(h->f[i].r);
	}
	free(h->f);
	free(h->path);
	free(h->header);
	free(h);
}
