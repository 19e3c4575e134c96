/* rlist.h - remote directory entries for globbing (mget, mdelete) and tab
 * completion: MLSD when the server announced MLST in FEAT (types known),
 * else NLST (names only).
 *
 * Names come from the server and are not trusted: rlist_name_is_safe says
 * whether a name may become a local file name (no '/', not "." or "..",
 * not empty, no control bytes); mget refuses the others. */
#ifndef FERRY_RLIST_H
#define FERRY_RLIST_H

#include "buf.h"
#include "client.h"

#include <stdbool.h>
#include <stddef.h>

/* Entries kept from one listing; more are dropped (and reported). */
#define RLIST_MAX_ENTRIES 100000

enum rlist_type { RLIST_UNKNOWN, RLIST_FILE, RLIST_DIR };

struct rlist_entry {
	const char *name; /* points into the list's text */
	enum rlist_type type;
};

struct rlist {
	struct rlist_entry *entries;
	size_t count;
	bool truncated;
	struct buf text;  /* the listing, split in place */
};

/* Lists dir ("" or NULL: the current directory). 0 or the ftpc error
 * convention (cl->ftp.err set); nothing printed. */
int rlist_fetch(struct client *cl, const char *dir, struct rlist *out);
void rlist_free(struct rlist *l);

bool rlist_name_is_safe(const char *name);
/* True when s holds a glob(7) metacharacter. */
bool rlist_has_glob(const char *s);

/* Expands one remote glob into paths (dir prefix kept) of entries that are
 * files or of unknown type, matched with fnmatch(3) (a leading '.' only by
 * an explicit one). Unsafe names are skipped with a one-line message on
 * stderr each, and counted in *refused. 0 or -1 (error printed). */
struct rglob {
	char **paths;     /* remote paths, for RETR/DELE */
	char **names;     /* the matching names, for local files */
	size_t count;
	struct buf store;
};
int rglob_expand(struct client *cl, const char *pattern, struct rglob *out, size_t *refused);
void rglob_free(struct rglob *g);

#endif
