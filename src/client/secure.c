#include "secure.h"

#include "ferry_limits.h"
#include "sys.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A plaintext record is at most 16 KiB: once the buffer has less room
 * than that, write it out rather than wait for a record that may not fit. */
#define RECORD_MAX (16 * 1024)

SSL_CTX *secure_context(const struct secure_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_client_ctx(o->verify, o->cafile, err, errlen);
	/* Data connections resume the control connection's session, one
	 * after the other. With the client cache on, OpenSSL spends a TLS 1.3
	 * ticket on its first use (marks the session not resumable), and the
	 * second data connection of a session would need a full handshake,
	 * which servers requiring session reuse refuse. ferry keeps the
	 * session itself (SSL_get1_session on the control connection). */
	if (ctx)
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

const char *secure_error_text(char *buf, size_t len)
{
	unsigned long e, last = 0;
	while ((e = ERR_get_error()) != 0)
		last = e;
	const char *reason = last ? ERR_reason_error_string(last) : NULL;
	if (reason)
		snprintf(buf, len, "%s", reason);
	else if (last)
		ERR_error_string_n(last, buf, len);
	else
		snprintf(buf, len, "TLS failure");
	return buf;
}

static int remaining(long long deadline)
{
	long long left = deadline - clock_ms();
	return left > 0 ? (int)left : 0;
}

/* After an SSL call returned r (errno as it left it in saved): 1 when the
 * call should be repeated once the socket is ready (that wait done here,
 * within the deadline), else a negative errno. */
static int settle(int fd, SSL *ssl, int r, int saved, long long deadline)
{
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		int w = io_wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, remaining(deadline));
		if (w == 0)
			return -EAGAIN;
		return w < 0 ? w : 1;
	}
	if (e == SSL_ERROR_SYSCALL) {
		if (ERR_peek_error())
			return -EPROTO;
		return saved ? -saved : -ECONNRESET;
	}
	return -EPROTO;
}

/* Errors that mean the bytes were not TLS records at all. */
static bool not_tls(unsigned long e)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return false;
	int r = ERR_GET_REASON(e);
	return r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_PACKET_LENGTH_TOO_LONG ||
	       r == SSL_R_UNEXPECTED_MESSAGE || r == SSL_R_RECORD_LENGTH_MISMATCH ||
	       r == SSL_R_UNEXPECTED_RECORD;
}

static bool is_ip_literal(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

SSL *secure_connect(SSL_CTX *ctx, int fd, const char *host, bool verify, SSL_SESSION *resume,
		    int timeout_ms, char *err, size_t errlen)
{
	char e[256];
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		snprintf(err, errlen, "TLS: %s", secure_error_text(e, sizeof e));
		SSL_free(ssl);
		return NULL;
	}
	bool ip = is_ip_literal(host);
	if (!ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (verify) {
		int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : SSL_set1_host(ssl, host);
		if (ok != 1) {
			snprintf(err, errlen, "TLS: cannot check the certificate against \"%s\"", host);
			SSL_free(ssl);
			return NULL;
		}
	}
	if (resume)
		SSL_set_session(ssl, resume);
	fd_set_nonblock(fd, 1);
	long long deadline = clock_ms() + timeout_ms;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_connect(ssl);
		if (r == 1)
			return ssl;
		int saved = errno;
		int s = settle(fd, ssl, r, saved, deadline);
		if (s == 1)
			continue;
		long vr = SSL_get_verify_result(ssl);
		if (verify && vr != X509_V_OK)
			snprintf(err, errlen,
				 "TLS: certificate of %s not trusted: %s (--cacert FILE trusts its issuer, --insecure skips the check)",
				 host, X509_verify_cert_error_string(vr));
		else if (s == -EAGAIN)
			snprintf(err, errlen, "TLS handshake: no answer from the server within %d s", timeout_ms / 1000);
		else if (s == -EPROTO && not_tls(ERR_peek_last_error()))
			snprintf(err, errlen, "TLS handshake failed: the server did not answer in TLS (%s)",
				 secure_error_text(e, sizeof e));
		else if (s == -EPROTO)
			snprintf(err, errlen, "TLS handshake failed: %s", secure_error_text(e, sizeof e));
		else if (s == -ECONNRESET)
			snprintf(err, errlen, "TLS handshake failed: the server closed the connection");
		else
			snprintf(err, errlen, "TLS handshake failed: %s", strerror(-s));
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
}

ssize_t secure_read(int fd, SSL *ssl, void *p, size_t n, int timeout_ms)
{
	if (!ssl) {
		int w = io_wait(fd, POLLIN, timeout_ms);
		if (w == 0)
			return -EAGAIN;
		if (w < 0)
			return w;
		return io_read_some(fd, p, n);
	}
	long long deadline = clock_ms() + timeout_ms;
	int want = n > INT_MAX ? INT_MAX : (int)n;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_read(ssl, p, want);
		if (r > 0)
			return r;
		int saved = errno;
		int e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		/* A bare TCP close where close_notify belongs (on connections
		 * without SSL_OP_IGNORE_UNEXPECTED_EOF): the end of the bytes,
		 * which secure_closed_cleanly() then tells apart. */
		unsigned long last = ERR_peek_last_error();
		if (e == SSL_ERROR_SSL && ERR_GET_LIB(last) == ERR_LIB_SSL &&
		    ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return 0;
		}
		int s = settle(fd, ssl, r, saved, deadline);
		if (s != 1)
			return s;
	}
}

int secure_write_full(int fd, SSL *ssl, const void *p, size_t n, int timeout_ms)
{
	if (!ssl)
		return io_write_full(fd, p, n);
	const char *c = p;
	long long deadline = clock_ms() + timeout_ms;
	while (n > 0) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_write(ssl, c, n > INT_MAX ? INT_MAX : (int)n);
		if (r > 0) {
			c += r;
			n -= (size_t)r;
			deadline = clock_ms() + timeout_ms;
			continue;
		}
		int saved = errno;
		int s = settle(fd, ssl, r, saved, deadline);
		if (s != 1)
			return s;
	}
	return 0;
}

bool secure_closed_cleanly(SSL *ssl)
{
	return !ssl || (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN);
}

bool secure_pending(SSL *ssl)
{
	return ssl && SSL_pending(ssl) > 0;
}

void secure_end(int fd, SSL **sslp, int send_ms, int peer_ms)
{
	SSL *ssl = *sslp;
	if (!ssl)
		return;
	*sslp = NULL;
	if (send_ms >= 0) {
		long long deadline = clock_ms() + send_ms;
		int r;
		for (;;) {
			ERR_clear_error();
			errno = 0;
			r = SSL_shutdown(ssl);
			if (r >= 0)
				break;
			int saved = errno;
			if (settle(fd, ssl, r, saved, deadline) != 1)
				break;
		}
		/* 0: ours went out, the peer's has not come yet. */
		if (r == 0 && peer_ms > 0) {
			deadline = clock_ms() + peer_ms;
			char sink[4096];
			for (;;) {
				ERR_clear_error();
				errno = 0;
				int n = SSL_read(ssl, sink, sizeof sink);
				if (n > 0)
					continue; /* nothing more is expected; discard */
				int saved = errno;
				if (settle(fd, ssl, n, saved, deadline) != 1)
					break; /* close_notify, EOF, error or time */
			}
		}
	}
	SSL_free(ssl);
	ERR_clear_error();
}

static int wait_ms(const struct xfer_opts *o)
{
	return o->timeout_ms > 0 ? o->timeout_ms : INT_MAX;
}

/* Wire -> file: fill the buffer (record by record), convert, write. */
static int64_t copy_in(int file_fd, int sock, SSL *ssl, const struct xfer_opts *o, char *buf, char *conv,
		       enum xfer_side *side)
{
	struct ascii_state st = {0};
	uint64_t done = 0;
	for (;;) {
		size_t cap = (size_t)xfer_want(o, done, SECURE_BUF);
		size_t have = 0;
		bool end = cap == 0;
		while (!end && have < cap) {
			ssize_t r = secure_read(sock, ssl, buf + have, cap - have, wait_ms(o));
			if (r < 0) {
				*side = XFER_SRC;
				return r;
			}
			if (r == 0)
				end = true;
			have += (size_t)r;
			/* Room for less than a record and nothing decrypted: write now. */
			if (cap - have < RECORD_MAX && !secure_pending(ssl))
				break;
		}
		const char *out = buf;
		size_t outlen = have;
		if (o->ascii) {
			outlen = ascii_decode(&st, buf, have, conv);
			if (end)
				outlen += ascii_decode_finish(&st, conv + outlen);
			out = conv;
		}
		int w = io_write_full(file_fd, out, outlen);
		if (w < 0) {
			*side = XFER_DST;
			return w;
		}
		done += have;
		if (have) {
			int rc = xfer_report(o, done);
			if (rc)
				return rc;
		}
		if (end)
			return (int64_t)done;
	}
}

/* File -> wire over kernel TLS: the kernel encrypts what sendfile moves. */
static int64_t copy_out_sendfile(int file_fd, int sock, SSL *ssl, const struct xfer_opts *o, off_t off,
				 off_t size, enum xfer_side *side)
{
	uint64_t done = 0;
	long long deadline = clock_ms() + wait_ms(o);
	while (off < size) {
		size_t n = (size_t)xfer_want(o, done, FERRY_XFER_CHUNK);
		if ((off_t)n > size - off)
			n = (size_t)(size - off);
		if (n == 0)
			break;
		ERR_clear_error();
		errno = 0;
		ossl_ssize_t r = SSL_sendfile(ssl, file_fd, off, n, 0);
		if (r > 0) {
			off += r;
			done += (uint64_t)r;
			deadline = clock_ms() + wait_ms(o);
			int rc = xfer_report(o, done);
			if (rc)
				return rc;
			continue;
		}
		int saved = errno;
		int s = settle(sock, ssl, (int)r, saved, deadline);
		if (s != 1) {
			*side = XFER_DST;
			return s;
		}
	}
	/* What xfer_copy would leave: the file offset after the bytes sent. */
	lseek(file_fd, off, SEEK_SET);
	return (int64_t)done;
}

/* File -> wire: read a buffer, convert, SSL_write it. */
static int64_t copy_out(int file_fd, int sock, SSL *ssl, const struct xfer_opts *o, char *buf, char *conv,
			enum xfer_side *side)
{
	struct ascii_state st = {0};
	uint64_t done = 0, written = 0; /* file bytes read; bytes sent after encoding */
	for (;;) {
		size_t n = (size_t)xfer_want(o, done, SECURE_BUF);
		ssize_t r = n ? io_read_some(file_fd, buf, n) : 0;
		if (r < 0) {
			*side = XFER_SRC;
			return r;
		}
		if (r == 0)
			return (int64_t)written; /* xfer_copy's count: what crossed the wire */
		const char *out = buf;
		size_t outlen = (size_t)r;
		if (o->ascii) {
			outlen = ascii_encode(&st, buf, (size_t)r, conv);
			out = conv;
		}
		int w = secure_write_full(sock, ssl, out, outlen, wait_ms(o));
		if (w < 0) {
			*side = XFER_DST;
			return w;
		}
		written += outlen;
		done += (uint64_t)r;
		int rc = xfer_report(o, done);
		if (rc)
			return rc;
	}
}

int64_t secure_copy(int file_fd, int sock, SSL *ssl, const struct xfer_opts *o, enum xfer_side *failed_side)
{
	enum xfer_side dummy;
	if (!failed_side)
		failed_side = &dummy;
	if (o->to_wire && !o->ascii && BIO_get_ktls_send(SSL_get_wbio(ssl))) {
		struct stat st;
		off_t off = lseek(file_fd, 0, SEEK_CUR);
		if (off >= 0 && fstat(file_fd, &st) == 0 && S_ISREG(st.st_mode))
			return copy_out_sendfile(file_fd, sock, ssl, o, off, st.st_size, failed_side);
	}
	char *buf = malloc(SECURE_BUF);
	/* encode doubles at most; decode never grows (+1 for a held CR). */
	char *conv = o->ascii ? malloc(o->to_wire ? 2 * (size_t)SECURE_BUF : (size_t)SECURE_BUF + 1) : NULL;
	if (!buf || (o->ascii && !conv)) {
		free(buf);
		free(conv);
		*failed_side = o->to_wire ? XFER_SRC : XFER_DST;
		return -ENOMEM;
	}
	int64_t n = o->to_wire ? copy_out(file_fd, sock, ssl, o, buf, conv, failed_side)
			       : copy_in(file_fd, sock, ssl, o, buf, conv, failed_side);
	free(buf);
	free(conv);
	return n;
}

void secure_describe(SSL *ssl, char *out, size_t outlen)
{
	if (!ssl) {
		snprintf(out, outlen, "none");
		return;
	}
	snprintf(out, outlen, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
