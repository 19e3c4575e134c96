/* listing.h - directory listing lines: LIST (ls -l), NLST (names), MLSD/MLST facts.
 *
 * Each call appends one entry, CRLF-terminated, to out. Names are written
 * as they are on disk except that CR and LF become '?' (a name must not
 * split a listing line, nor a reply line in STAT and MLST). */
#ifndef FERRY_LISTING_H
#define FERRY_LISTING_H

#include "buf.h"

#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

enum list_format {
	LIST_LONG,  /* LIST and STAT: ls -l style */
	LIST_NAMES, /* NLST */
	LIST_MLSD,  /* MLSD: facts; name */
};

/* The MLST/MLSD facts ferryd knows (RFC 3659 7.5), as a set for OPTS MLST. */
enum mlst_fact {
	FACT_TYPE = 1 << 0,
	FACT_SIZE = 1 << 1,
	FACT_MODIFY = 1 << 2,
	FACT_PERM = 1 << 3,
	FACT_UNIX_MODE = 1 << 4,
	FACT_ALL = (1 << 5) - 1, /* LISTING_FACT_COUNT bits */
};

/* Their names, in FEAT's and every entry's order, indexed by bit number. */
#define LISTING_FACT_COUNT 5
extern const char *const listing_fact_names[LISTING_FACT_COUNT];

/* dirfd/name locate the entry (for a symlink's target in LIST); st is
 * not read for LIST_NAMES, so NLST needs no stat per entry. facts (a set
 * of enum mlst_fact) is what LIST_MLSD shows. */
int listing_entry(struct buf *out, enum list_format fmt, int dirfd, const char *name,
		  const struct stat *st, bool writable, unsigned facts, time_t now);
/* lstat of the entry name in dirfd, except that ".." of the served root
 * (rootfd) is the root itself: what lies above it is not the client's to
 * see. 0 or -1 with errno, as fstatat. */
int listing_lstat(int dirfd, int rootfd, const char *name, struct stat *st);
/* The MLST facts in the set facts for st, "type=file;size=..;modify=..;perm=..;unix.mode=0644;"
 * (an empty string for none). */
int listing_facts(struct buf *out, const struct stat *st, bool writable, unsigned facts);

#endif
