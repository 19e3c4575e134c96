#include "smsg.h"

#include "ferry_limits.h"
#include "sys.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define ERROR_PREFIX "ERROR: "
#define ERROR_PREFIX_LEN (sizeof ERROR_PREFIX - 1)

int smsg_init(struct smsg_conn *c, int fd, int timeout_ms)
{
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->sent_last = false;
	return fd_set_nonblock(fd, 1);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One read of at most n bytes, waiting at most wait_ms for something to
 * arrive. >0 bytes, 0 at end of stream, -ETIMEDOUT, or a negative errno. */
static ssize_t read_wait(struct smsg_conn *c, void *p, size_t n, int wait_ms)
{
	for (;;) {
		ssize_t r = io_read_some(c->fd, p, n);
		if (r != -EAGAIN) {
			if (r >= 0)
				c->sent_last = false;
			return r;
		}
		int w = io_wait(c->fd, POLLIN, wait_ms);
		if (w == 0)
			return -ETIMEDOUT;
		if (w < 0)
			return w;
	}
}

/* Reads exactly n bytes; -ECONNRESET when the peer closes first. */
static int read_exact(struct smsg_conn *c, void *p, size_t n)
{
	char *q = p;
	size_t done = 0;
	while (done < n) {
		ssize_t r = read_wait(c, q + done, n - done, c->timeout_ms);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -ECONNRESET;
		done += (size_t)r;
	}
	return 0;
}

static int write_all(struct smsg_conn *c, const void *p, size_t n)
{
	const char *q = p;
	size_t done = 0;
	while (done < n) {
		/* MSG_NOSIGNAL: a peer that went away is an error to report,
		 * not a SIGPIPE that kills the process. */
		ssize_t r = send(c->fd, q + done, n - done, MSG_NOSIGNAL);
		if (r >= 0) {
			done += (size_t)r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int w = io_wait(c->fd, POLLOUT, c->timeout_ms);
		if (w == 0)
			return -ETIMEDOUT;
		if (w < 0)
			return w;
	}
	c->sent_last = true;
	return 0;
}

int smsg_send_text(struct smsg_conn *c, const char *text)
{
	if (c->sent_last)
		sleep_ms(SMSG_GAP_MS);
	return write_all(c, text, strlen(text));
}

int smsg_send_size(struct smsg_conn *c, uint64_t size)
{
	unsigned char b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(size & 0xff);
		size >>= 8;
	}
	return write_all(c, b, sizeof b);
}

int smsg_read_size(struct smsg_conn *c, uint64_t *size)
{
	unsigned char b[8];
	int r = read_exact(c, b, sizeof b);
	if (r < 0)
		return r;
	uint64_t v = 0;
	for (size_t i = 0; i < sizeof b; i++)
		v = (v << 8) | b[i];
	*size = v;
	return 0;
}

/* Cuts a final LF or CRLF: courtesy to peers that end lines. */
static size_t strip_eol(char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '\n')
		n--;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	s[n] = '\0';
	return n;
}

/* Appends to out[*len] until the peer is quiet, closes, ends a read with
 * LF, or out (cap bytes, one kept for the NUL) is full. The first wait is
 * the full timeout unless *len already holds part of the message. */
static int read_until_quiet(struct smsg_conn *c, char *out, size_t cap, size_t *len)
{
	for (;;) {
		if (*len + 1 >= cap)
			return -EMSGSIZE;
		int wait = *len ? SMSG_QUIET_MS : c->timeout_ms;
		ssize_t r = read_wait(c, out + *len, cap - 1 - *len, wait);
		if (r == -ETIMEDOUT && *len)
			return 0;
		if (r < 0)
			return (int)r;
		if (r == 0)
			return *len ? 0 : -ECONNRESET;
		*len += (size_t)r;
		if (out[*len - 1] == '\n')
			return 0;
	}
}

ssize_t smsg_read_var(struct smsg_conn *c, char *out, size_t outlen)
{
	size_t len = 0;
	if (outlen < 2)
		return -EINVAL;
	int r = read_until_quiet(c, out, outlen, &len);
	if (r < 0)
		return r;
	/* A message ends at its first LF; whatever followed it was sent
	 * while the peer should have been waiting and has no meaning. */
	char *lf = memchr(out, '\n', len);
	if (lf)
		len = (size_t)(lf - out) + 1;
	return (ssize_t)strip_eol(out, len);
}

int smsg_expect(struct smsg_conn *c, const char *want, bool allow_error, char *out, size_t outlen)
{
	size_t wlen = strlen(want);
	char got[SMSG_ERROR_MAX + 1] = "";
	size_t len = 0;
	for (;;) {
		/* Which messages can this still be, and how many bytes finish
		 * the shortest of them? Reading no more than that keeps merged
		 * bytes behind a fixed message in the socket. */
		bool maybe_want = len <= wlen && memcmp(got, want, len) == 0;
		size_t plen = len < ERROR_PREFIX_LEN ? len : ERROR_PREFIX_LEN;
		bool maybe_err = allow_error && memcmp(got, ERROR_PREFIX, plen) == 0;
		if (maybe_want && len == wlen)
			return 0;
		if (maybe_err && len >= ERROR_PREFIX_LEN)
			break;
		if (!maybe_want && !maybe_err)
			return -EPROTO;
		size_t need = SIZE_MAX;
		if (maybe_want)
			need = wlen - len;
		if (maybe_err && ERROR_PREFIX_LEN - len < need)
			need = ERROR_PREFIX_LEN - len;
		ssize_t r = read_wait(c, got + len, need, c->timeout_ms);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -ECONNRESET;
		len += (size_t)r;
	}
	int r = read_until_quiet(c, got, sizeof got, &len);
	if (r < 0 && r != -EMSGSIZE)
		return r;
	char *lf = memchr(got, '\n', len);
	if (lf)
		len = (size_t)(lf - got) + 1;
	len = strip_eol(got, len);
	if (outlen) {
		size_t n = len - ERROR_PREFIX_LEN;
		if (n >= outlen)
			n = outlen - 1;
		memcpy(out, got + ERROR_PREFIX_LEN, n);
		out[n] = '\0';
	}
	return 1;
}

int smsg_send_file(struct smsg_conn *c, int fd, uint64_t size, bool *local_failed)
{
	char block[SMSG_BLOCK];
	*local_failed = false;
	while (size > 0) {
		size_t want = size < sizeof block ? (size_t)size : sizeof block;
		ssize_t r = io_read_some(fd, block, want);
		if (r <= 0) {
			*local_failed = true;
			return r < 0 ? (int)r : -ENODATA;
		}
		int w = write_all(c, block, (size_t)r);
		if (w < 0)
			return w;
		size -= (uint64_t)r;
	}
	return 0;
}

int smsg_recv_file(struct smsg_conn *c, int fd, uint64_t size, bool *local_failed)
{
	/* Reading may use bigger blocks than sending: the block rule is about
	 * what goes on the wire, and fewer syscalls keep large files fast. */
	size_t cap = FERRY_XFER_BUF;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	int werr = 0;
	int rc = 0;
	*local_failed = false;
	while (size > 0) {
		size_t want = size < cap ? (size_t)size : cap;
		ssize_t r = read_wait(c, b, want, c->timeout_ms);
		if (r < 0) {
			rc = (int)r;
			break;
		}
		if (r == 0) {
			rc = -ECONNRESET;
			break;
		}
		size -= (uint64_t)r;
		if (!werr)
			werr = io_write_full(fd, b, (size_t)r);
	}
	free(b);
	if (rc < 0)
		return rc;
	if (werr) {
		*local_failed = true;
		return werr;
	}
	return 0;
}
