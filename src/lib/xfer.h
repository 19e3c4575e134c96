/* xfer.h - the transfer engine: TYPE A line-ending conversion and the
 * blocking copy loops the client (and the seed-001 stream protocol) use.
 *
 * Conversion is incremental: state carries a CR seen at the end of one
 * chunk into the next, so any split of the stream gives the same bytes.
 *   encode (file -> wire): a LF not preceded by CR becomes CRLF.
 *   decode (wire -> file): CRLF becomes LF; a lone CR is kept.
 *
 * Copy loops move bounded chunks (never a whole file in memory), handle
 * partial I/O and EINTR, and call progress (if not NULL) after each chunk;
 * a non-zero return from progress stops the copy with -ECANCELED.
 * They return the bytes moved or a negative errno; a read error is
 * reported as is, a write error too, with *failed_side set to XFER_SRC or
 * XFER_DST so the caller can say which side failed. */
#ifndef FERRY_XFER_H
#define FERRY_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ascii_state {
	bool cr; /* last byte seen was CR */
};

/* out must hold 2 * n bytes. Returns bytes written to out. */
size_t ascii_encode(struct ascii_state *st, const char *in, size_t n, char *out);
/* out must hold n + 1 bytes. Returns bytes written to out. */
size_t ascii_decode(struct ascii_state *st, const char *in, size_t n, char *out);
/* At end of stream: a held CR is written to out (room for 1). */
size_t ascii_decode_finish(struct ascii_state *st, char *out);

enum xfer_side { XFER_SRC = 1, XFER_DST = 2 };
typedef int (*xfer_progress_fn)(void *ctx, uint64_t bytes);

struct xfer_opts {
	bool ascii;               /* convert line endings */
	bool to_wire;             /* direction for ascii: encode when true */
	uint64_t limit;           /* stop after this many source bytes; 0 = to EOF */
	xfer_progress_fn progress;
	void *ctx;
	int timeout_ms;           /* longest wait for a full socket to drain; 0 = no limit */
	bool no_sendfile;         /* file -> socket through the buffer (see ftpc_data_copy) */
};

/* The bytes to ask for next: chunk, or what is left of o->limit. */
uint64_t xfer_want(const struct xfer_opts *o, uint64_t done, size_t chunk);
/* Calls o->progress (if any); -ECANCELED when it asks to stop, else 0. */
int xfer_report(const struct xfer_opts *o, uint64_t done);

/* Copies src to dst until EOF (or limit). Uses sendfile(2) when src is a
 * regular file, no conversion is needed and o->no_sendfile is false, splice(2) through a pipe when
 * src is a socket and dst a file, else a bounded buffer. Returns the bytes
 * that crossed the socket (written to it when o->to_wire, read from it
 * otherwise: TYPE A conversion makes them differ from the file's), or a
 * negative errno with *failed_side set. Progress reports count src. */
int64_t xfer_copy(int src, int dst, const struct xfer_opts *o, enum xfer_side *failed_side);

#endif
