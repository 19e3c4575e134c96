/* smsg.h - message framing of seed 001's streaming protocol, both sides.
 *
 * The protocol sends text messages (READY, OK, DONE, "ERROR: text",
 * "GET|PUT|DEL name") with no terminator, sizes as 8-byte big-endian
 * unsigned integers, and raw file bytes. The framing rule, written out in
 * docs/PROTOCOL.md, is:
 *   - The reader always knows which message comes next.
 *   - A fixed message (READY, OK, DONE) is read byte-exact: exactly its
 *     length and never a byte more, so whatever a peer merged behind it
 *     stays in the socket for the next read.
 *   - A size is exactly 8 bytes; file data exactly the announced size.
 *   - A variable message (a request, "ERROR: text") ends where the peer has
 *     to wait for us: the reader takes bytes until the peer has been quiet
 *     for SMSG_QUIET_MS, closes its side, ends a read with LF, or reaches
 *     the reader's length limit (-EMSGSIZE).
 *   - A sender that sends two messages with no read in between waits
 *     SMSG_GAP_MS before the second, so a peer that reads one message per
 *     recv() sees them apart.
 *
 * Every wait for the peer is bounded by conn->timeout_ms (-ETIMEDOUT).
 * Errors are negative errno: -ECONNRESET when the peer closed early,
 * -EPROTO for bytes that are not the expected message, else the failing
 * syscall's error. Nothing here prints. The caller owns the socket. */
#ifndef FERRY_SMSG_H
#define FERRY_SMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* File data goes out in blocks of at most this many bytes: seed 001
 * demands 1024-byte blocks. */
#define SMSG_BLOCK 1024
/* Silence that ends a variable-length message. A message sent with one
 * send() arrives within microseconds on a LAN and well within this on a
 * WAN; a request costs this much latency once per connection. */
#define SMSG_QUIET_MS 200
/* Pause between two messages sent with no reply between them: longer than
 * a one-recv-per-message peer needs to come back from its previous recv(). */
#define SMSG_GAP_MS 100
/* Longest "ERROR: text" accepted from a peer. */
#define SMSG_ERROR_MAX 4200

struct smsg_conn {
	int fd;         /* connected socket; smsg_init makes it non-blocking */
	int timeout_ms; /* bound on every wait for the peer */
	bool sent_last; /* the last operation sent bytes: the next text waits SMSG_GAP_MS */
};

/* 0 or a negative errno from making fd non-blocking. */
int smsg_init(struct smsg_conn *c, int fd, int timeout_ms);

/* Sends one text message as one write, with no terminator. */
int smsg_send_text(struct smsg_conn *c, const char *text);
int smsg_send_size(struct smsg_conn *c, uint64_t size);
int smsg_read_size(struct smsg_conn *c, uint64_t *size);

/* Reads the fixed message want; with allow_error, "ERROR: text" may come
 * instead. 0 for want; 1 for an error message, its text after "ERROR: "
 * in out (NUL-terminated, a final CR/LF removed, cut to outlen). */
int smsg_expect(struct smsg_conn *c, const char *want, bool allow_error, char *out, size_t outlen);

/* Reads one variable-length message into out (at most outlen - 1 bytes,
 * NUL-terminated; a final LF or CRLF is removed). Returns its length;
 * -ECONNRESET when the peer closed before sending anything. */
ssize_t smsg_read_var(struct smsg_conn *c, char *out, size_t outlen);

/* Sends exactly size bytes read from fd, in blocks of at most SMSG_BLOCK.
 * When fd fails or ends early, *local_failed is set and the read error (or
 * -ENODATA) is returned; the peer is then owed bytes, so close the socket. */
int smsg_send_file(struct smsg_conn *c, int fd, uint64_t size, bool *local_failed);

/* Receives exactly size bytes and writes them to fd. When writing to fd
 * fails, the rest is still read (and dropped) so the conversation can go
 * on; then *local_failed is set and the write error returned. */
int smsg_recv_file(struct smsg_conn *c, int fd, uint64_t size, bool *local_failed);

#endif
