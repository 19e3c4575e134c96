#include "xfer.h"

#include "ferry_limits.h"
#include "prealloc.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

size_t ascii_encode(struct ascii_state *st, const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '\n' && !st->cr)
			out[o++] = '\r';
		out[o++] = c;
		st->cr = c == '\r';
	}
	return o;
}

size_t ascii_decode(struct ascii_state *st, const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (st->cr) {
			st->cr = false;
			if (c != '\n')
				out[o++] = '\r';
		}
		if (c == '\r')
			st->cr = true;
		else
			out[o++] = c;
	}
	return o;
}

size_t ascii_decode_finish(struct ascii_state *st, char *out)
{
	if (!st->cr)
		return 0;
	st->cr = false;
	out[0] = '\r';
	return 1;
}

uint64_t xfer_want(const struct xfer_opts *o, uint64_t done, size_t chunk)
{
	if (o->limit == 0)
		return chunk;
	uint64_t left = o->limit - done;
	return left < chunk ? left : chunk;
}

int xfer_report(const struct xfer_opts *o, uint64_t done)
{
	if (o->progress && o->progress(o->ctx, done) != 0)
		return -ECANCELED;
	return 0;
}

static int64_t copy_sendfile(int src, int dst, const struct xfer_opts *o, enum xfer_side *side)
{
	uint64_t done = 0;
	for (;;) {
		uint64_t n = xfer_want(o, done, FERRY_XFER_CHUNK);
		if (n == 0)
			return (int64_t)done;
		ssize_t r = sendfile(dst, src, NULL, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && io_wait(dst, 0x004 /* POLLOUT */,
						       o->timeout_ms > 0 ? o->timeout_ms : -1) > 0)
				continue;
			*side = XFER_DST;
			return -errno;
		}
		if (r == 0)
			return (int64_t)done;
		done += (uint64_t)r;
		int rc = xfer_report(o, done);
		if (rc)
			return rc;
	}
}

static int64_t copy_buffer(int src, int dst, const struct xfer_opts *o, enum xfer_side *side,
			   uint64_t done);

/* Writes the n bytes waiting in a pipe to dst with read/write: for a dst
 * that takes no splice. 0 or negative errno (side set). */
static int drain_pipe(int pipe_r, int dst, size_t n, enum xfer_side *side)
{
	char buf[4096];
	while (n > 0) {
		ssize_t r = io_read_some(pipe_r, buf, n < sizeof buf ? n : sizeof buf);
		if (r <= 0) {
			*side = XFER_DST;
			return r < 0 ? (int)r : -EIO;
		}
		int w = io_write_full(dst, buf, (size_t)r);
		if (w < 0) {
			*side = XFER_DST;
			return w;
		}
		n -= (size_t)r;
	}
	return 0;
}

/* Socket to anything through a pipe: no copy into user space. A dst that
 * takes no splice (EINVAL on the first bytes) gets what the pipe holds
 * and then the rest through the buffer. */
static int64_t copy_splice(int src, int dst, const struct xfer_opts *o, enum xfer_side *side)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	/* Downloads write at the end of the file (REST resumes there). */
	off_t at = lseek(dst, 0, SEEK_CUR);
	struct prealloc reserve = {.off = at < 0};
	uint64_t done = 0;
	int64_t result;
	bool dst_splices = false;
	for (;;) {
		uint64_t n = xfer_want(o, done, FERRY_XFER_CHUNK);
		if (n == 0) {
			result = (int64_t)done;
			break;
		}
		ssize_t in = splice(src, NULL, p[1], NULL, n, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (in < 0) {
			if (errno == EINTR)
				continue;
			*side = XFER_SRC;
			result = -errno;
			break;
		}
		if (in == 0) {
			result = (int64_t)done;
			break;
		}
		ssize_t left = in;
		prealloc_ahead(&reserve, dst, at + (off_t)done, (size_t)in);
		while (left > 0) {
			ssize_t out = splice(p[0], NULL, dst, NULL, (size_t)left, SPLICE_F_MOVE | SPLICE_F_MORE);
			if (out < 0 && errno == EINVAL && !dst_splices) {
				int drained = drain_pipe(p[0], dst, (size_t)left, side);
				if (drained < 0) {
					result = drained;
					goto out;
				}
				done += (uint64_t)in;
				int rc = xfer_report(o, done);
				result = rc ? rc : copy_buffer(src, dst, o, side, done);
				goto out;
			}
			if (out < 0) {
				if (errno == EINTR)
					continue;
				*side = XFER_DST;
				result = -errno;
				goto out;
			}
			dst_splices = true;
			left -= out;
		}
		done += (uint64_t)in;
		int rc = xfer_report(o, done);
		if (rc) {
			result = rc;
			break;
		}
	}
out:
	close(p[0]);
	close(p[1]);
	int trimmed = prealloc_trim(&reserve, dst);
	if (trimmed < 0 && result >= 0) {
		*side = XFER_DST;
		result = trimmed;
	}
	return result;
}

/* Through a bounded buffer, converting TYPE A; done counts bytes already
 * moved (by copy_splice before it fell back). The result counts the
 * socket's side: on the way out what was written after encoding (LF made
 * CRLF), on the way in what was read. */
static int64_t copy_buffer(int src, int dst, const struct xfer_opts *o, enum xfer_side *side,
			   uint64_t done)
{
	char *in = malloc(FERRY_XFER_BUF);
	char *conv = o->ascii ? malloc(2 * FERRY_XFER_BUF + 1) : NULL;
	if (!in || (o->ascii && !conv)) {
		free(in);
		free(conv);
		return -ENOMEM;
	}
	struct ascii_state st = {0};
	int64_t result;
	uint64_t written = done;
	for (;;) {
		uint64_t n = xfer_want(o, done, FERRY_XFER_BUF);
		ssize_t r = n ? io_read_some(src, in, n) : 0;
		if (r < 0) {
			*side = XFER_SRC;
			result = r;
			break;
		}
		const char *out = in;
		size_t outlen = (size_t)r;
		if (o->ascii) {
			if (r == 0)
				outlen = o->to_wire ? 0 : ascii_decode_finish(&st, conv);
			else
				outlen = o->to_wire ? ascii_encode(&st, in, (size_t)r, conv)
						    : ascii_decode(&st, in, (size_t)r, conv);
			out = conv;
		}
		int w = io_write_full(dst, out, outlen);
		if (w < 0) {
			*side = XFER_DST;
			result = w;
			break;
		}
		written += outlen;
		if (r == 0) {
			result = (int64_t)(o->to_wire ? written : done);
			break;
		}
		done += (uint64_t)r;
		int rc = xfer_report(o, done);
		if (rc) {
			result = rc;
			break;
		}
	}
	free(in);
	free(conv);
	return result;
}

int64_t xfer_copy(int src, int dst, const struct xfer_opts *o, enum xfer_side *failed_side)
{
	enum xfer_side dummy;
	if (!failed_side)
		failed_side = &dummy;
	struct stat ss, ds;
	if (!o->ascii && fstat(src, &ss) == 0 && fstat(dst, &ds) == 0) {
		if (S_ISREG(ss.st_mode) && S_ISSOCK(ds.st_mode) && !o->no_sendfile)
			return copy_sendfile(src, dst, o, failed_side);
		/* A file, a pipe, a device: splice where dst takes it. */
		if (S_ISSOCK(ss.st_mode) && !S_ISSOCK(ds.st_mode) && !S_ISDIR(ds.st_mode))
			return copy_splice(src, dst, o, failed_side);
	}
	return copy_buffer(src, dst, o, failed_side, 0);
}
