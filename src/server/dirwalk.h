/* dirwalk.h - a directory's names in byte order, for listings.
 *
 * dir_walk_read reads the directory to its end, a budget of entries per
 * call, keeping the names a filter accepts in one arena, and then sorts
 * them by strcmp: the order of `LC_ALL=C ls`, which vsftpd, pure-ftpd and
 * pyftpdlib give their listings. It reads at most max_bytes worth of
 * entries (a name and its index, kept or not) and holds at most max_bytes;
 * a directory with more is walked in directory order instead (from its
 * start), read as the names are asked for, so no listing holds more memory
 * whatever the directory holds. Either way dir_walk_next hands out every
 * accepted name once. */
#ifndef FERRY_DIRWALK_H
#define FERRY_DIRWALK_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* true when a name belongs in the walk. */
typedef bool dir_walk_keep_fn(const char *name, void *arg);

struct dir_walk_ref {
	uint64_t key;   /* 8 bytes of the name, for the sort */
	uint32_t off;   /* the name's offset in the arena */
};

struct dir_walk {
	DIR *dir;                   /* borrowed: the caller closes it */
	dir_walk_keep_fn *keep;
	void *keep_arg;
	size_t max_bytes;           /* what it may read and hold */
	size_t scanned;             /* bytes of the entries read, kept or not */
	char *arena;                /* accepted names, NUL-terminated, back to back; owned */
	size_t arena_len, arena_cap;
	size_t held;                /* bytes of arena and refs, at most max_bytes */
	struct dir_walk_ref *refs;  /* one per name, sorted, then as many spare
				       for the sort: 2 * refs_cap in all; owned */
	size_t count, refs_cap, next;
	bool ready;                 /* read through: dir_walk_next hands out names */
	bool sorted;                /* false: names come from readdir as they are */
	bool ended;                 /* dir_walk_next has handed out the last name */
};

/* "." or "..". */
static inline bool dir_walk_is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* A walk of dir that has read nothing yet. keep may be NULL (every name). */
void dir_walk_init(struct dir_walk *w, DIR *dir, size_t max_bytes, dir_walk_keep_fn *keep,
		   void *keep_arg);
/* Reads on, each entry costing one from *scan_left: 1 once the walk is
 * ready (its names read and sorted, or past max_bytes or refused memory
 * and rewound to be read in directory order), 0 when *scan_left is used
 * up first (call again), -errno when reading failed (the walk is closed). */
int dir_walk_read(struct dir_walk *w, int *scan_left);
/* The next name, valid until the next call; each entry read (or sorted
 * name handed out) costs one from *scan_left. NULL at the end (ended is
 * then set) or when *scan_left is used up first: the caller comes back. */
const char *dir_walk_next(struct dir_walk *w, int *scan_left);
/* Frees the names; the directory stays open. Safe on a zeroed walk. */
void dir_walk_close(struct dir_walk *w);

#endif
