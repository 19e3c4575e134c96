/* data.h - data connections and the transfers that run over them.
 *
 * Address setup: PORT/EPRT store an address (only the control peer's host,
 * ports >= 1024: no FTP bounce); PASV/EPSV listen on the control
 * connection's local address and accept only the control peer's host.
 *
 * A transfer is prepared by its command handler (file opened, listing
 * started) and handed to xfer_start, which sends 150, opens the data
 * connection and pumps it from the event loop in bounded slices:
 * sendfile(2) for binary RETR, splice(2) for binary STOR, a bounded
 * staging buffer for listings and TYPE A. xfer_finish/xfer_fail end it
 * with the final reply and release everything it held. */
#ifndef FERRY_DATA_H
#define FERRY_DATA_H

#include "dirwalk.h"
#include "ftpaddr.h"
#include "listing.h"
#include "prealloc.h"
#include "session.h"
#include "xfer.h"

#include <dirent.h>

enum xfer_kind {
	XK_RETR,
	XK_STOR,
	XK_LIST,
};

struct transfer {
	enum xfer_kind kind;
	bool connecting;          /* active connect in progress */
	bool running;             /* data connection up, bytes moving */
	bool handshaking;         /* PROT P: TLS handshake on the data connection */
	bool want_other;          /* TLS needs the other direction's readiness */
	bool corked;              /* TCP_CORK is on on the data connection */
	long long commit_at;      /* STOR: data EOF seen; commit at this time unless
				     the control connection dies first (0 = not yet) */
	long long running_since;  /* when the data connection came up */
	long long deadline_ms;    /* connect/accept deadline, then stall deadline */
	uint64_t bytes;

	int file_fd;              /* RETR source / STOR destination */
	off_t offset, end;        /* RETR: next byte to send, size at start */
	int pipe_r, pipe_w;       /* STOR: splice pipe */
	size_t piped;             /* STOR: bytes in the pipe not yet in the file */

	DIR *dir;                 /* LIST: the directory being listed, NULL when done */
	struct dir_walk walk;     /* LIST: its names to show, in order, read once
				     the data connection is up (walk_started) */
	bool walk_started;
	size_t names_reserved;    /* LIST: of its worker's share for sorting */
	enum list_format lfmt;
	bool list_all;            /* -a: include dot entries */
	char *pattern;            /* LIST/NLST glob on the last component, owned */
	char *prefix;             /* NLST: the directory part the client wrote, owned */
	struct buf stage;         /* bytes ready for the data socket */
	size_t stage_off;
	struct ascii_state ascii;

	/* STOR: where the bytes land. */
	int target_dirfd;         /* O_PATH parent directory */
	char *target_leaf;        /* final name, owned */
	char *tmp_name;           /* named temporary (when O_TMPFILE is unsupported), owned */
	bool anon_tmp;            /* file_fd is an O_TMPFILE, linked in on success */
	bool in_place;            /* APPE / REST+STOR: write the target directly */
	bool no_replace;          /* STOU: never replace an existing name */
	bool target_absent;       /* STOR: no such name when the upload began */
	off_t stored;             /* STOR: bytes written to the file so far */
	struct prealloc prealloc; /* STOR: blocks reserved ahead (off when in place) */
};

struct transfer *xfer_new(enum xfer_kind kind);
/* Sends "150 text" and opens the data connection. Takes ownership of t. */
void xfer_start(struct session *s, struct transfer *t, const char *text150);
/* Ends the running transfer with code/text (426, 451, 452, ...). */
void xfer_fail(struct session *s, int code, const char *text);
/* Releases a transfer that never started (t is not s->xfer). */
void xfer_free(struct transfer *t);
/* STOR in binary: gives t the worker's splice pipe. 0 or -errno. */
int xfer_attach_pipe(struct transfer *t);
/* Closes the worker's splice pipe if no upload holds it (once a second:
 * back-to-back uploads share it, an idle worker holds no pipe). */
void xfer_release_idle(void);
/* Ends the running transfer, if any, without a reply (QUIT, teardown);
 * its data connection is closed too. */
void xfer_discard(struct session *s);
/* Deadlines: called once a second, and when a STOR's commit falls due. */
void xfer_tick(struct session *s, long long now);

/* Consumes the data address: closes the data connection and a passive
 * listener announced for it (a parked one stays); DATA_NONE. */
void data_reset(struct session *s);
/* data_reset, and a parked passive listener closed too (teardown, PORT). */
void data_release(struct session *s);
/* Once a second: closes a passive listener parked (or a spare opened
 * ahead) FERRY_PASV_PARK_MS ago. */
void data_tick(struct session *s, long long now);
/* PASV (extended = false) or EPSV: replies 227/229 or an error. */
void data_passive(struct session *s, bool extended);
/* PORT/EPRT already parsed: applies the bounce checks and replies. An
 * unspecified address (0.0.0.0, ::) stands for the control peer. */
void data_active(struct session *s, const struct sockaddr_storage *addr, bool extended);

#endif
