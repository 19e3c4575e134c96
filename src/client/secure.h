/* secure.h - TLS on the client's connections (FTPS, RFC 4217).
 *
 * Every connection ftpc reads or writes is a socket plus, once TLS runs
 * on it, an SSL object; ssl == NULL means plain. The I/O calls below take
 * both, so the control and data paths read the same either way:
 *
 *   plain  the socket stays blocking with SO_RCVTIMEO/SO_SNDTIMEO set by
 *          the caller; reads wait for readiness with poll() first;
 *   TLS    secure_connect makes the socket non-blocking and every
 *          SSL_read/SSL_write/SSL_connect that wants more waits in poll()
 *          under a deadline, so a silent or trickling peer ends in a
 *          timeout, never a hang.
 *
 * The handshake checks the server's certificate when asked: the chain
 * against the context's trust anchors, and the name the user typed (DNS
 * name, or the address for an IP literal, which also gets no SNI). A data
 * connection resumes the control connection's session (servers such as
 * ferryd and vsftpd refuse one that does not).
 *
 * Results: byte counts or 0 on success; 0 from a read means the peer
 * ended the stream (close_notify, or EOF); negative errno otherwise:
 *   -EAGAIN   the wait ran out (the same code a plain socket's timeout gives);
 *   -EPROTO   TLS failed: secure_error_text() right after says why;
 *   others    the socket's own error.
 * TLS transfers copy through one SECURE_BUF buffer per transfer, SSL_read
 * and SSL_write working on it directly; an upload over kernel TLS uses
 * SSL_sendfile instead, so the file never enters user space. */
#ifndef FERRY_SECURE_H
#define FERRY_SECURE_H

#include "xfer.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Buffer of one TLS transfer. */
#define SECURE_BUF (256 * 1024)
/* After an upload's close_notify, how long to wait for the server's. */
#define SECURE_SHUTDOWN_WAIT_MS 2000

enum secure_mode {
	SECURE_OFF,      /* plain FTP */
	SECURE_REQUIRED, /* AUTH TLS; a refusal ends the connection (--tls) */
	SECURE_OPTIONAL, /* AUTH TLS; a refusal leaves it plain, with a warning (--tls-optional) */
	SECURE_IMPLICIT, /* TLS from the first byte (ftps:// URLs) */
};

/* What the user asked for; fixed for the process. */
struct secure_opts {
	enum secure_mode mode;
	bool verify;        /* check the server's certificate (default on; --insecure) */
	const char *cafile; /* trust anchors (--cacert); NULL: the system store */
	bool clear_data;    /* PROT C: data connections stay plain (--clear-data) */
};

/* The client context for o (verification, trust anchors); NULL with a
 * one-line cause in err. */
SSL_CTX *secure_context(const struct secure_opts *o, char *err, size_t errlen);

/* Runs the client handshake on the connected socket fd within timeout_ms:
 * SNI and the name check for host (verify), resuming resume when not NULL.
 * Leaves fd non-blocking. Returns the SSL, or NULL with err saying why in
 * one line (an untrusted certificate names the check that failed). */
SSL *secure_connect(SSL_CTX *ctx, int fd, const char *host, bool verify, SSL_SESSION *resume,
		    int timeout_ms, char *err, size_t errlen);

/* Up to n bytes; waits at most timeout_ms for the first. 0 at the end:
 * close_notify, or a bare TCP close on a connection that does not ignore
 * one (see secure_closed_cleanly). */
ssize_t secure_read(int fd, SSL *ssl, void *p, size_t n, int timeout_ms);
/* After secure_read returned 0: true when the peer ended with close_notify
 * (or ssl is NULL, plain TCP), false for a bare TCP close, which anyone on
 * the path can forge to cut the data short. */
bool secure_closed_cleanly(SSL *ssl);
/* All n bytes, each wait at most timeout_ms; 0 or negative errno. */
int secure_write_full(int fd, SSL *ssl, const void *p, size_t n, int timeout_ms);
/* Bytes decrypted and not yet read: the socket will not signal them. */
bool secure_pending(SSL *ssl);

/* Ends TLS on *ssl and frees it (*ssl becomes NULL; NULL is a no-op);
 * the socket stays open. send_ms < 0: no close_notify (an aborted
 * transfer, a broken session); else close_notify may take send_ms to go
 * out (0: only if it fits now), and then peer_ms > 0 waits that long for
 * the peer's close_notify or EOF, so the peer has read everything before
 * the socket closes. */
void secure_end(int fd, SSL **ssl, int send_ms, int peer_ms);

/* Copies between a file and a TLS data connection: file -> wire when
 * o->to_wire, else wire -> file until the server ends the stream. Same
 * contract as xfer_copy (ASCII conversion, progress, limit, failed side);
 * o->timeout_ms bounds each wait on the socket. */
int64_t secure_copy(int file_fd, int sock, SSL *ssl, const struct xfer_opts *o, enum xfer_side *failed_side);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for a status line. */
void secure_describe(SSL *ssl, char *out, size_t outlen);
/* Why the last call that returned -EPROTO failed (OpenSSL's queue). */
const char *secure_error_text(char *buf, size_t len);

#endif
