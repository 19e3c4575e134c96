/* transfer.h - moving files and listings over data connections, with the
 * local side's rules:
 *
 *   get writes into a temporary file beside the target (".NAME.ferry-XXXXXX",
 *   or ".ferry-XXXXXX" for a NAME too long for that)
 *   and renames it over NAME only when the server confirmed the whole
 *   transfer; on any failure the temporary file is removed, so a partial
 *   download never sits under the final name. reget appends to NAME in
 *   place, by design, after REST.
 *   put/append/reput stream the local file; reput asks SIZE and APPEs
 *   the rest. A cut upload is ABORted so the server does not keep it as
 *   complete.
 *
 * Each call prints its own error line (client_fail) and, on success, the
 * summary line; they return 0 or -1. transfer_listing_fetch is silent: it
 * is also used for tab completion. */
#ifndef FERRY_TRANSFER_H
#define FERRY_TRANSFER_H

#include "buf.h"
#include "client.h"

#include <stdbool.h>

/* A listing fetched for globbing or completion is held in memory; this
 * bounds it (about 200,000 names). */
#define TRANSFER_LISTING_MAX (16 * 1024 * 1024)

enum put_mode {
	PUT_STORE,  /* STOR: create or replace */
	PUT_APPEND, /* APPE: add to the end */
	PUT_RESUME, /* SIZE, then APPE what the server lacks */
};

/* local NULL: the remote name's last component in the current directory;
 * an existing directory: the remote leaf inside it; "-": standard output
 * (neither for GET_SERVER_NAMED, see check_server_named). */
enum get_mode {
	GET_NEW,          /* a fresh download; LOCAL may be a directory to put it in */
	GET_RESUME,       /* reget: REST from the local size, appending */
	GET_SERVER_NAMED, /* mget: LOCAL is a name from the server's listing */
};
int transfer_get(struct client *cl, const char *remote, const char *local, enum get_mode mode);
/* remote NULL: the local name's last component. */
int transfer_put(struct client *cl, const char *local, const char *remote, enum put_mode mode);
/* LIST or NLST (verb) of path (may be NULL), copied to standard output
 * with line ends made local. */
int transfer_listing_show(struct client *cl, const char *verb, const char *path);
/* The same into the file local, stored as get stores a download (a
 * temporary file renamed over it once complete). */
int transfer_listing_save(struct client *cl, const char *verb, const char *path, const char *local);
/* verb of path into out (bounded by out's limit). 0, or the ftpc error
 * convention (c->err set), nothing printed. */
int transfer_listing_fetch(struct client *cl, const char *verb, const char *path, struct buf *out);

/* Last component of a path ("" for "dir/"). */
const char *transfer_leaf(const char *path);

#endif
