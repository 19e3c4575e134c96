/* dirwalk.c - a directory's names in byte order, within a memory bound. */
#include "dirwalk.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { ARENA_FIRST = 4096, REFS_FIRST = 128 };

/* Eight bytes of a name from byte skip on, big-endian and zero-padded:
 * keys order as the names do from there, and most compares end on them.
 * The arena has 8 spare bytes past its last name, so the load stays in it. */
static uint64_t name_key(const char *name, size_t len, size_t skip)
{
	uint64_t k;
	memcpy(&k, name + skip, sizeof k);
	k = be64toh(k);
	size_t n = len - skip;
	return n >= 8 ? k : n == 0 ? 0 : k & ~(UINT64_MAX >> (8 * n));
}

/* Byte order, as strcmp, for names whose keys are equal. */
static int ref_cmp(const void *a, const void *b, void *arena)
{
	const struct dir_walk_ref *x = a, *y = b;
	return strcmp((const char *)arena + x->off, (const char *)arena + y->off);
}

/* A stable radix sort of a[0..n) by key, a byte per pass, least
 * significant first; bytes that are the same in every key (the padding
 * of short names, say) are neither counted nor passed over. tmp has room
 * for n. Returns the array that holds the result, a or tmp. */
static struct dir_walk_ref *sort_by_key(struct dir_walk_ref *a, struct dir_walk_ref *tmp, size_t n)
{
	uint64_t differ = 0;
	for (size_t i = 1; i < n; i++)
		differ |= a[i].key ^ a[0].key;
	unsigned shifts[8] = {0}, nd = 0;
	for (unsigned shift = 0; shift < 64; shift += 8)
		if ((differ >> shift) & 0xff)
			shifts[nd++] = shift;
	uint32_t at[8][256];
	memset(at, 0, nd * sizeof at[0]);
	for (size_t i = 0; i < n; i++)
		for (unsigned d = 0; d < nd; d++)
			at[d][(a[i].key >> shifts[d]) & 0xff]++;
	for (unsigned d = 0; d < nd; d++) {
		uint32_t *pos = at[d], sum = 0;
		for (unsigned b = 0; b < 256; b++) {
			uint32_t c = pos[b];
			pos[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[pos[(a[i].key >> shifts[d]) & 0xff]++] = a[i];
		struct dir_walk_ref *t = a;
		a = tmp;
		tmp = t;
	}
	return a;
}

/* Sorts the names: by the key past the prefix all of them share, then
 * by strcmp within each run of equal keys. */
static void sort_names(struct dir_walk *w)
{
	size_t n = w->count;
	if (n < 2)
		return;
	const char *first = w->arena;
	size_t common = strlen(first);
	for (size_t i = 1; i < n && common > 0; i++) {
		const char *name = w->arena + w->refs[i].off;
		size_t j = 0;
		while (j < common && name[j] == first[j])
			j++;
		common = j;
	}
	/* In arena order still: a name ends where the next begins. */
	for (size_t i = 0; i < n; i++) {
		size_t end = i + 1 < n ? w->refs[i + 1].off : w->arena_len;
		w->refs[i].key = name_key(w->arena + w->refs[i].off, end - w->refs[i].off - 1, common);
	}
	struct dir_walk_ref *sorted = sort_by_key(w->refs, w->refs + w->refs_cap, n);
	if (sorted != w->refs)
		memcpy(w->refs, sorted, n * sizeof *w->refs);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && w->refs[j].key == w->refs[i].key)
			j++;
		if (j - i > 1)
			qsort_r(w->refs + i, j - i, sizeof *w->refs, ref_cmp, w->arena);
		i = j;
	}
}

/* Room for n more bytes in *p of *cap (elements of elem bytes), doubling,
 * with what the walk holds in all (*held) at most max. 0 or -E2BIG,
 * -ENOMEM. */
static int reserve(void **p, size_t *cap, size_t used, size_t n, size_t elem, size_t *held,
		   size_t max)
{
	if (used + n <= *cap)
		return 0;
	size_t want = *cap ? *cap : (elem == 1 ? ARENA_FIRST : REFS_FIRST);
	while (want < used + n)
		want *= 2;
	size_t room = (max - (*held - *cap * elem)) / elem; /* the most this array may take */
	if (room < used + n)
		return -E2BIG;
	/* Near the bound, half of what is left: the other array grows too. */
	if (want > room)
		want = used + n + (room - (used + n)) / 2;
	void *q = realloc(*p, want * elem);
	if (!q)
		return -ENOMEM;
	*held += (want - *cap) * elem;
	*p = q;
	*cap = want;
	return 0;
}

static int add_name(struct dir_walk *w, const char *name)
{
	size_t len = strlen(name);
	/* 8 spare bytes past the name for name_key's load */
	int rc = reserve((void **)&w->arena, &w->arena_cap, w->arena_len, len + 1 + 8, 1, &w->held,
			 w->max_bytes);
	if (rc == 0)
		rc = reserve((void **)&w->refs, &w->refs_cap, w->count, 1, 2 * sizeof *w->refs, &w->held,
			     w->max_bytes);
	if (rc < 0)
		return rc;
	memcpy(w->arena + w->arena_len, name, len + 1);
	w->refs[w->count].off = (uint32_t)w->arena_len;
	w->count++;
	w->arena_len += len + 1;
	return 0;
}

void dir_walk_init(struct dir_walk *w, DIR *dir, size_t max_bytes, dir_walk_keep_fn *keep,
		   void *keep_arg)
{
	memset(w, 0, sizeof *w);
	w->dir = dir;
	w->keep = keep;
	w->keep_arg = keep_arg;
	/* arena offsets are 32-bit */
	w->max_bytes = max_bytes > UINT32_MAX ? UINT32_MAX : max_bytes;
}

int dir_walk_read(struct dir_walk *w, int *scan_left)
{
	while (!w->ready) {
		if (*scan_left <= 0)
			return 0;
		(*scan_left)--;
		errno = 0;
		struct dirent *de = readdir(w->dir);
		if (!de) {
			if (errno != 0) {
				int err = errno;
				dir_walk_close(w);
				return -err;
			}
			sort_names(w);
			w->sorted = w->ready = true;
			break;
		}
		/* Names left out count too: reading them is the work. */
		w->scanned += strlen(de->d_name) + 1 + 2 * sizeof *w->refs;
		bool kept = !w->keep || w->keep(de->d_name, w->keep_arg);
		if (w->scanned > w->max_bytes || (kept && add_name(w, de->d_name) < 0)) {
			/* Too many names to read or to hold (or no memory for
			 * them): the listing is still whole, in the directory's
			 * own order, read as it is sent. */
			dir_walk_close(w);
			rewinddir(w->dir);
			w->ready = true;
		}
	}
	return 1;
}

const char *dir_walk_next(struct dir_walk *w, int *scan_left)
{
	if (w->sorted) {
		if (w->next == w->count) {
			w->ended = true;
			return NULL;
		}
		if (*scan_left <= 0)
			return NULL;
		(*scan_left)--;
		return w->arena + w->refs[w->next++].off;
	}
	while (*scan_left > 0) {
		(*scan_left)--;
		struct dirent *de = readdir(w->dir);
		if (!de) {
			w->ended = true;
			return NULL;
		}
		if (!w->keep || w->keep(de->d_name, w->keep_arg))
			return de->d_name;
	}
	return NULL;
}

void dir_walk_close(struct dir_walk *w)
{
	free(w->arena);
	free(w->refs);
	w->arena = NULL;
	w->refs = NULL;
	w->arena_len = w->arena_cap = w->count = w->refs_cap = w->next = w->held = 0;
	w->sorted = w->ended = false;
}
