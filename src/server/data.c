#include "data.h"

#include "ferry_limits.h"
#include "net.h"
#include "reply.h"
#include "sys.h"
#include "worker.h"

#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* TLS upload: ciphertext OpenSSL reads from the socket per call. */
#define TLS_READ_AHEAD (128 * 1024)

/* TLS download: ciphertext gathered per write(2). */
#define TLS_WRITE_GATHER (128 * 1024)

/* Work per wakeup for one transfer, so busy transfers share the worker. */
#define XFER_BUDGET (4 * FERRY_XFER_CHUNK)

static void on_data(struct ev_handler *h, uint32_t events);
static void on_pasv(struct ev_handler *h, uint32_t events);
static void pump(struct session *s);
static void pasv_spare_open(struct session *s);

struct transfer *xfer_new(enum xfer_kind kind)
{
	struct transfer *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->kind = kind;
	t->file_fd = t->pipe_r = t->pipe_w = t->target_dirfd = -1;
	/* Room for a copy slice, or a listing batch of long names. */
	buf_init(&t->stage, FERRY_COPY_CHUNK + 4 * FERRY_XFER_BUF + 2 * FERRY_PATH_MAX);
	return t;
}

/* STOR's splice pipe: one per worker, shared by its uploads. A pump
 * leaves it empty (what it splices in it splices out in the same call), so
 * no upload sees another's bytes; an upload that ends with bytes still in
 * it (its file write failed) reads them out, or closes the pipe when no
 * other upload holds it, and the next one gets a new pipe. */
static int worker_pipe[2] = { -1, -1 };
static int worker_pipe_users;

int xfer_attach_pipe(struct transfer *t)
{
	if (worker_pipe[0] < 0) {
		int p[2];
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			return -errno;
		fcntl(p[1], F_SETPIPE_SZ, FERRY_XFER_CHUNK);
		/* The file side is written with blocking splices. */
		fcntl(p[0], F_SETFL, 0);
		worker_pipe[0] = p[0];
		worker_pipe[1] = p[1];
	}
	t->pipe_r = worker_pipe[0];
	t->pipe_w = worker_pipe[1];
	worker_pipe_users++;
	return 0;
}

/* Reads the n bytes an upload left in the pipe; 0 or -errno. They are
 * there already, so the (blocking) reads cannot wait. */
static int drain_pipe(int fd, size_t n)
{
	char sink[16384];
	while (n > 0) {
		ssize_t r = io_read_some(fd, sink, n < sizeof sink ? n : sizeof sink);
		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
		n -= (size_t)r;
	}
	return 0;
}

static void detach_pipe(struct transfer *t)
{
	if (t->pipe_r < 0)
		return;
	worker_pipe_users--;
	if (t->piped > 0) {
		/* Closing it would pull it from under the worker's other
		 * uploads, whose next splice would hit a closed (or reused)
		 * descriptor. */
		if (worker_pipe_users == 0) {
			fd_close(&worker_pipe[0]);
			fd_close(&worker_pipe[1]);
		} else {
			int rc = drain_pipe(t->pipe_r, t->piped);
			if (rc < 0) {
				/* Cannot happen short of a kernel fault; then the pipe is
				 * retired, left open for its other users, never reused. */
				fprintf(stderr, "ferryd: upload pipe: %s\n", strerror(-rc));
				worker_pipe[0] = worker_pipe[1] = -1;
			}
		}
	}
	t->pipe_r = t->pipe_w = -1;
	t->piped = 0;
}

void xfer_release_idle(void)
{
	if (worker_pipe_users == 0) {
		fd_close(&worker_pipe[0]);
		fd_close(&worker_pipe[1]);
	}
}

/* Bytes this worker's listings hold, or have reserved while they read,
 * for sorting (at most FERRY_LIST_SORT_WORKER_MAX). */
static size_t listings_held;

static void end_listing(struct transfer *t)
{
	listings_held -= t->names_reserved;
	t->names_reserved = 0;
	dir_walk_close(&t->walk);
	if (t->dir)
		closedir(t->dir);
	t->dir = NULL;
}

void xfer_free(struct transfer *t)
{
	fd_close(&t->file_fd);
	detach_pipe(t);
	if (t->tmp_name && t->target_dirfd >= 0)
		unlinkat(t->target_dirfd, t->tmp_name, 0); /* never committed */
	fd_close(&t->target_dirfd);
	end_listing(t);
	buf_free(&t->stage);
	free(t->pattern);
	free(t->prefix);
	free(t->target_leaf);
	free(t->tmp_name);
	free(t);
}

static void close_data_fd(struct session *s)
{
	if (s->data_ssl) {
		/* One close_notify, best effort: the socket is non-blocking. */
		ERR_clear_error();
		SSL_shutdown(s->data_ssl);
		SSL_free(s->data_ssl);
		s->data_ssl = NULL;
	}
	if (s->data.fd >= 0) {
		loop_forget_closing(&s->data);
		close(s->data.fd);
		s->data.fd = -1;
	}
	s->data_corked = false;
}

/* TCP_CORK on or off on the transfer's data connection. */
static void data_cork(struct session *s, struct transfer *t, bool on)
{
	if (t->corked != on && net_cork(s->data.fd, on) == 0)
		t->corked = on;
}

static void close_pasv_fd(struct session *s)
{
	if (s->pasv.fd >= 0) {
		loop_forget_closing(&s->pasv);
		close(s->pasv.fd);
		s->pasv.fd = -1;
	}
	s->pasv_parked = false;
	s->pasv_spare = false;
}

void data_reset(struct session *s)
{
	/* A parked listener's port is announced to no one: it outlives the
	 * address it served. An announced one is consumed with it. */
	if (!s->pasv_parked)
		close_pasv_fd(s);
	close_data_fd(s);
	s->data_mode = DATA_NONE;
}

void data_release(struct session *s)
{
	close_pasv_fd(s);
	data_reset(s);
}

void data_tick(struct session *s, long long now)
{
	if (s->pasv_parked && now - s->pasv_parked_ms >= FERRY_PASV_PARK_MS)
		close_pasv_fd(s);
	/* A fresh listener no transfer has asked for yet is watched from the
	 * tick on: a stray connection waits a second or so, not until the
	 * session's next transfer, and a backlog filled by strays empties
	 * for the client's retried connect. */
	else if (s->pasv.fd >= 0 && !s->pasv_parked && !s->pasv.events && !s->xfer)
		loop_watch(&s->pasv, EPOLLIN);
}

/* Ends the transfer: data connection closed, address consumed, then the
 * final reply for the command that started it. */
static void xfer_end(struct session *s, int code, const char *text)
{
	struct transfer *t = s->xfer;
	bool passive = s->data_mode == DATA_PASSIVE;
	s->xfer = NULL;
	data_reset(s);
	if (t)
		xfer_free(t);
	s->last_active_ms = clock_ms(); /* a transfer is activity */
	/* The reply closes the transfer's command in the transcript. */
	if (s->xcmd.open) {
		free(s->cur.arg);
		s->cur = s->xcmd;
		s->xcmd.open = false;
		s->xcmd.arg = NULL;
	}
	reply(s, code, "%s", text);
	session_resume_input(s);
	if (passive)
		pasv_spare_open(s);
}

void xfer_fail(struct session *s, int code, const char *text)
{
	if (s->xfer)
		xfer_end(s, code, text);
}

void xfer_discard(struct session *s)
{
	if (s->xfer) {
		xfer_free(s->xfer);
		s->xfer = NULL;
		data_reset(s);
	}
}

static void fail_errno(struct session *s, int err)
{
	switch (err) {
	case ENOSPC:
		xfer_fail(s, R_NO_SPACE, "Insufficient storage space.");
		break;
	case EDQUOT:
	case EFBIG:
		xfer_fail(s, R_EXCEEDED_STORAGE, "Exceeded storage allocation.");
		break;
	default: {
		char text[128];
		snprintf(text, sizeof text, "Local error in processing: %s.", strerror(err));
		xfer_fail(s, R_LOCAL_ERROR, text);
	}
	}
}

/* Data-connection I/O, clear or TLS: bytes moved, 0 at end of stream,
 * -EAGAIN to wait for readiness (t->want_other set when TLS needs the
 * other direction), other -errno on error. */
static ssize_t data_send(struct session *s, const void *p, size_t n)
{
	if (!s->data_ssl)
		return io_write_some(s->data.fd, p, n);
	ERR_clear_error();
	int r = SSL_write(s->data_ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	switch (SSL_get_error(s->data_ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_WANT_READ:
		s->xfer->want_other = true;
		return -EAGAIN;
	default:
		return -EPIPE;
	}
}

static ssize_t data_recv(struct session *s, void *p, size_t n)
{
	if (!s->data_ssl)
		return io_read_some(s->data.fd, p, n);
	ERR_clear_error();
	int r = SSL_read(s->data_ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	switch (SSL_get_error(s->data_ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->xfer->want_other = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		return -EPIPE;
	}
}

static bool data_ktls_send(struct session *s)
{
	return s->data_ssl && BIO_get_ktls_send(SSL_get_wbio(s->data_ssl));
}

/* OpenSSL 3.0 writes each 16 KiB record with a write(2) of its own, 65,536
 * calls per GiB through the socket layer. A buffer BIO between the SSL and
 * its socket gathers the records into TLS_WRITE_GATHER writes (a quarter
 * less CPU per GiB); data_flush empties it at the end. */
static int data_gather_writes(struct session *s)
{
	BIO *sock = SSL_get_wbio(s->data_ssl);
	BIO *gather = BIO_new(BIO_f_buffer());
	if (!gather || BIO_set_write_buffer_size(gather, TLS_WRITE_GATHER) != 1 ||
	    BIO_up_ref(sock) != 1) {
		BIO_free(gather);
		return -ENOMEM;
	}
	/* The chain holds the reference just taken; SSL_set0_wbio gives back
	 * the one SSL_set_fd took for writing (the read side keeps its own). */
	BIO_push(gather, sock);
	SSL_set0_wbio(s->data_ssl, gather);
	return 0;
}

/* Sends what data_gather_writes holds: 0 once the socket has all of it,
 * -EAGAIN to wait for EPOLLOUT, -EPIPE when the connection is gone. */
static int data_flush(struct session *s)
{
	if (!s->data_ssl)
		return 0;
	BIO *w = SSL_get_wbio(s->data_ssl);
	ERR_clear_error();
	if (BIO_flush(w) == 1)
		return 0;
	return BIO_should_retry(w) ? -EAGAIN : -EPIPE;
}

/* STOR: puts the received file under its final name. 0 or negative errno. */
static int commit_upload(struct transfer *t)
{
	if (t->in_place)
		return 0;
	int trimmed = prealloc_trim(&t->prealloc, t->file_fd);
	if (trimmed < 0)
		return trimmed;
	char tmp[64];
	const char *from = t->tmp_name;
	if (t->anon_tmp) {
		/* A new name: link the file straight in. linkat never replaces,
		 * so a name that appeared meanwhile takes the way below. */
		if (t->target_absent) {
			int linked = fd_link_tmpfile(t->file_fd, t->target_dirfd, t->target_leaf);
			if (linked != -EEXIST)
				return linked;
		}
		/* Link the anonymous file under a private name, then rename it
		 * over the target: readers see the old file or the whole new one. */
		static unsigned long counter;
		static pid_t pid;
		if (!pid)
			pid = getpid();
		snprintf(tmp, sizeof tmp, ".ferry-up.%d.%lu", (int)pid, ++counter);
		int linked = fd_link_tmpfile(t->file_fd, t->target_dirfd, tmp);
		if (linked < 0)
			return linked;
		from = tmp;
	}
	int rc = renameat2(t->target_dirfd, from, t->target_dirfd, t->target_leaf,
			   t->no_replace ? RENAME_NOREPLACE : 0);
	if (rc < 0) {
		rc = -errno;
		unlinkat(t->target_dirfd, from, 0);
	}
	if (!t->anon_tmp) {
		free(t->tmp_name);
		t->tmp_name = NULL; /* renamed or removed */
	}
	return rc;
}

static void finish_ok(struct session *s)
{
	struct transfer *t = s->xfer;
	if (t->kind == XK_STOR) {
		int rc = commit_upload(t);
		if (rc < 0) {
			fail_errno(s, -rc);
			return;
		}
	}
	bool comp = s->cfg->compat == COMPAT_COMP431 && t->kind == XK_RETR;
	xfer_end(s, comp ? R_FILE_ACTION_OK : R_TRANSFER_COMPLETE,
		 comp ? "Requested file action completed." : "Transfer complete.");
}

/* The client is still there: its control connection has been neither
 * reset nor ended. POLLRDHUP sees the end even behind commands still
 * unread (a client killed with its next commands sent), which a peek at
 * the first byte does not; and it needs no read watch, which is off while
 * a command waits behind the transfer. */
static bool control_alive(const struct session *s)
{
	struct pollfd p = {.fd = s->ctrl.fd, .events = POLLRDHUP};
	int r;
	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	return r == 0 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* An upload whose data connection has ended is committed, as long as the
 * client is still there: a killed client's data connection ends just like
 * a finished one, and only its control connection tells them apart. */
static void stor_commit(struct session *s)
{
	if (!control_alive(s)) {
		session_close(s); /* the upload is dropped, the old file stays */
		return;
	}
	finish_ok(s);
}

/* STOR: the data connection ended. Commit after a grace in which a
 * killed client's control connection ends too (stor_commit). */
static void stor_eof(struct session *s)
{
	struct transfer *t = s->xfer;
	if (!control_alive(s)) {
		session_close(s);
		return;
	}
	/* The wait grows with the upload, so it never costs more than a
	 * fraction of it: a many-file upload gets each 226 at once. */
	long long now = clock_ms();
	long long grace = (now - t->running_since) / FERRY_STOR_EOF_GRACE_SHARE;
	if (grace > FERRY_STOR_EOF_GRACE_MS)
		grace = FERRY_STOR_EOF_GRACE_MS;
	if (grace <= 0) {
		finish_ok(s);
		return;
	}
	loop_watch(&s->data, 0);
	t->commit_at = now + grace;
	worker_wake_at(s, t->commit_at);
}

/* The names a listing shows: dot entries only with -a (never in MLSD),
 * and those matching its pattern. */
static bool listing_keeps(const char *name, void *arg)
{
	const struct transfer *t = arg;
	if (dir_walk_is_dot(name) && (!t->list_all || t->lfmt == LIST_MLSD))
		return false;
	return !t->pattern || fnmatch(t->pattern, name, FNM_PERIOD) == 0;
}

/* Reads the names once the data connection is up, not at the command: a
 * client that never connects holds no more than the open directory. The
 * first call reserves what the listing may hold of the worker's share;
 * once the names are read, what it does not hold goes back. 1, 0 or
 * -errno as dir_walk_read. */
static int read_listing(struct transfer *t, int *scan_left)
{
	if (!t->walk_started) {
		size_t room = FERRY_LIST_SORT_WORKER_MAX - listings_held;
		t->names_reserved = room < FERRY_LIST_SORT_MAX ? room : FERRY_LIST_SORT_MAX;
		listings_held += t->names_reserved;
		dir_walk_init(&t->walk, t->dir, t->names_reserved, listing_keeps, t);
		t->walk_started = true;
	}
	int rc = dir_walk_read(&t->walk, scan_left);
	if (rc != 0) {
		listings_held -= t->names_reserved - t->walk.held;
		t->names_reserved = t->walk.held;
	}
	return rc;
}

/* Formats directory entries into the staging buffer until it holds
 * FERRY_LIST_WRITE_FILL bytes, the directory ends (t->dir is then NULL)
 * or *scan_left entries have been read. One entry is at most a few KiB
 * (a name, or a path for NLST, and a link's target), so the buffer, sized
 * far beyond the fill mark, always has room for the one that crosses it. */
static void refill_listing(struct session *s, struct transfer *t, int *scan_left)
{
	time_t now = time(NULL);
	if (t->dir && !t->walk.ready) {
		/* Names cost a tenth of an entry sent, so more of them per
		 * wakeup; none is sent before all are read. */
		int reads = FERRY_LIST_NAMES_PER_WAKEUP;
		int rc = read_listing(t, &reads);
		if (rc < 0) {
			end_listing(t); /* unreadable: the listing ends there, as at a failed readdir */
			return;
		}
		if (rc == 0) {
			*scan_left = 0; /* the rest on the next wakeup */
			return;
		}
	}
	while (t->dir && t->stage.len < FERRY_LIST_WRITE_FILL && *scan_left > 0) {
		const char *name = dir_walk_next(&t->walk, scan_left);
		if (!name) {
			if (t->walk.ended)
				end_listing(t);
			break;
		}
		/* NLST shows names only: no stat, the dominant cost of a listing. */
		struct stat st = {0};
		if (t->lfmt != LIST_NAMES && listing_lstat(dirfd(t->dir), s->rootfd, name, &st) < 0)
			continue; /* vanished while listing */
		const char *shown = name;
		char joined[FERRY_PATH_MAX];
		if (t->prefix) {
			/* Cut short it would name another file: left out. Joined
			 * by hand: snprintf cost an eighth of a 2,000-name NLST. */
			size_t plen = strlen(t->prefix), nlen = strlen(name);
			if (plen + nlen >= sizeof joined)
				continue;
			memcpy(joined, t->prefix, plen);
			memcpy(joined + plen, name, nlen + 1);
			shown = joined;
		} else if (t->lfmt == LIST_NAMES && strcmp(name, "~") == 0) {
			shown = "./~"; /* RETR ~ is the home directory */
		}
		if (listing_entry(&t->stage, t->lfmt, dirfd(t->dir), shown, &st,
				  s->writable, s->mlst_facts, now) < 0)
			break;
	}
}

/* Fills the staging buffer with the next slice of the file, converted to
 * TYPE A when ascii. 1, 0 at end of file, or -errno. */
static int refill_file(struct transfer *t, bool ascii)
{
	off_t left = t->end - t->offset;
	if (left <= 0)
		return 0;
	if (!ascii) {
		/* Straight into the staging buffer, in large slices. */
		size_t want = left < FERRY_COPY_CHUNK ? (size_t)left : FERRY_COPY_CHUNK;
		char *dst = buf_tail(&t->stage, want);
		if (!dst)
			return -ENOMEM;
		ssize_t r = io_read_some(t->file_fd, dst, want);
		if (r <= 0)
			return (int)r;
		buf_added(&t->stage, (size_t)r);
		t->offset += r;
		return 1;
	}
	char in[FERRY_XFER_BUF / 2];
	ssize_t r = io_read_some(t->file_fd, in, left < (off_t)sizeof in ? (size_t)left : sizeof in);
	if (r <= 0)
		return (int)r;
	char out[FERRY_XFER_BUF]; /* encoding at most doubles the slice */
	size_t n = ascii_encode(&t->ascii, in, (size_t)r, out);
	if (buf_append(&t->stage, out, n) != 0)
		return -ENOMEM;
	t->offset += r;
	return 1;
}

/* A staged transfer's end, once its last bytes are in the socket. On
 * -EAGAIN pump() waits for EPOLLOUT and comes back here. */
static void finish_sent(struct session *s)
{
	int r = data_flush(s);
	if (r == -EAGAIN)
		return;
	if (r < 0) {
		xfer_fail(s, R_TRANSFER_ABORTED, "Connection closed; transfer aborted.");
		return;
	}
	finish_ok(s);
}

/* Staged transfers: listings, TYPE A RETR, RETR under user-space TLS. */
static void pump_staged(struct session *s, struct transfer *t)
{
	size_t budget = XFER_BUDGET;
	int scan_left = t->kind == XK_LIST && t->lfmt == LIST_NAMES ? FERRY_LIST_NAMES_PER_WAKEUP
								   : FERRY_LIST_ENTRIES_PER_WAKEUP;
	while (budget > 0) {
		if (t->stage_off == t->stage.len) {
			buf_clear(&t->stage);
			t->stage_off = 0;
			if (t->kind == XK_LIST) {
				if (!t->dir) {
					finish_sent(s);
					return;
				}
				if (scan_left == 0)
					return; /* the rest on the next wakeup */
				refill_listing(s, t, &scan_left);
				continue; /* send it, or read on (all filtered out) */
			} else {
				int r = refill_file(t, s->type == 'A');
				if (r < 0) {
					fail_errno(s, -r);
					return;
				}
				if (r == 0) {
					finish_sent(s);
					return;
				}
			}
		}
		ssize_t w = data_send(s, t->stage.data + t->stage_off, t->stage.len - t->stage_off);
		if (w == -EAGAIN)
			return;
		if (w < 0) {
			xfer_fail(s, R_TRANSFER_ABORTED, "Connection closed; transfer aborted.");
			return;
		}
		t->stage_off += (size_t)w;
		t->bytes += (uint64_t)w;
		budget = (size_t)w >= budget ? 0 : budget - (size_t)w;
	}
}

static void pump_sendfile(struct session *s, struct transfer *t)
{
	size_t budget = XFER_BUDGET;
	while (budget > 0) {
		off_t left = t->end - t->offset;
		if (left <= 0) {
			finish_ok(s);
			return;
		}
		size_t n = left < FERRY_XFER_CHUNK ? (size_t)left : FERRY_XFER_CHUNK;
		ssize_t r;
		if (s->data_ssl) {
			/* Kernel TLS: still zero-copy, the kernel encrypts. */
			ERR_clear_error();
			r = SSL_sendfile(s->data_ssl, t->file_fd, t->offset, n, 0);
			if (r > 0) {
				t->offset += r;
			} else if (SSL_get_error(s->data_ssl, (int)r) == SSL_ERROR_WANT_WRITE) {
				errno = EAGAIN;
				r = -1;
			} else {
				errno = EPIPE;
				r = -1;
			}
		} else {
			/* Only the last call corked: its short tail leaves with
			 * the FIN, so a small file is one segment. Corked all
			 * along, a bulk download on loopback runs at two thirds
			 * of the speed (bench/RESULTS.md, row 1). */
			data_cork(s, t, (off_t)n == left);
			r = sendfile(s->data.fd, t->file_fd, &t->offset, n);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			if (errno == EPIPE || errno == ECONNRESET)
				xfer_fail(s, R_TRANSFER_ABORTED, "Connection closed; transfer aborted.");
			else
				fail_errno(s, errno);
			return;
		}
		if (r == 0) { /* the file shrank under us: send what there was */
			finish_ok(s);
			return;
		}
		t->bytes += (uint64_t)r;
		budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
	}
}

static void pump_splice_in(struct session *s, struct transfer *t)
{
	size_t budget = XFER_BUDGET;
	while (budget > 0) {
		if (t->piped == 0) {
			ssize_t r = splice(s->data.fd, NULL, t->pipe_w, NULL, FERRY_XFER_CHUNK,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					return;
				xfer_fail(s, R_TRANSFER_ABORTED, "Connection closed; transfer aborted.");
				return;
			}
			if (r == 0) {
				stor_eof(s);
				return;
			}
			t->piped = (size_t)r;
			budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
		}
		prealloc_ahead(&t->prealloc, t->file_fd, t->stored, t->piped);
		while (t->piped > 0) {
			ssize_t w = splice(t->pipe_r, NULL, t->file_fd, NULL, t->piped, SPLICE_F_MOVE);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				fail_errno(s, errno);
				return;
			}
			t->piped -= (size_t)w;
			t->bytes += (uint64_t)w;
			t->stored += w;
		}
	}
}

/* STOR through userspace: TYPE A (converted) or TLS. Decrypted records
 * are gathered in the staging buffer and written to the file in large
 * slices; nothing stays there between wakeups. */
static void pump_read_in(struct session *s, struct transfer *t)
{
	char in[FERRY_XFER_BUF / 2], out[FERRY_XFER_BUF / 2 + 1];
	bool ascii = s->type == 'A';
	size_t budget = XFER_BUDGET;
	bool eof = false;
	bool starved = false; /* the socket is drained: epoll says when more comes */
	int err = 0;
	buf_clear(&t->stage);
	/* TLS reads ahead: records can sit inside OpenSSL where the socket
	 * will not signal them again. Drain them even past the budget (the
	 * read-ahead buffer bounds them, the staging buffer stops them). */
	while (budget > 0 || (s->data_ssl && SSL_has_pending(s->data_ssl))) {
		if (t->stage.len + sizeof out > FERRY_COPY_CHUNK)
			break; /* full: write, and come back for the rest */
		/* Binary bytes land in the staging buffer directly. */
		char *dst = ascii ? in : buf_tail(&t->stage, sizeof in);
		if (!dst) {
			err = -ENOMEM;
			break;
		}
		ssize_t r = data_recv(s, dst, sizeof in);
		if (r == -EAGAIN) {
			starved = true;
			break;
		}
		if (r < 0) {
			err = -EPIPE;
			break;
		}
		if (!ascii) {
			buf_added(&t->stage, (size_t)r);
		} else {
			size_t n = r == 0 ? ascii_decode_finish(&t->ascii, out)
					  : ascii_decode(&t->ascii, in, (size_t)r, out);
			if (buf_append(&t->stage, out, n) != 0) {
				err = -ENOMEM;
				break;
			}
		}
		if (r == 0) {
			eof = true;
			break;
		}
		t->bytes += (uint64_t)r;
		budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
	}
	prealloc_ahead(&t->prealloc, t->file_fd, t->stored, t->stage.len);
	int w = io_write_full(t->file_fd, t->stage.data ? t->stage.data : "", t->stage.len);
	t->stored += (off_t)t->stage.len;
	buf_clear(&t->stage);
	if (w < 0) {
		fail_errno(s, -w);
		return;
	}
	if (err == -EPIPE)
		xfer_fail(s, R_TRANSFER_ABORTED, "Connection closed; transfer aborted.");
	else if (err)
		fail_errno(s, -err);
	else if (eof)
		stor_eof(s);
	else if (s->data_ssl && !starved && SSL_has_pending(s->data_ssl))
		worker_wake_at(s, clock_ms()); /* records are still inside OpenSSL */
}

static void pump(struct session *s)
{
	struct transfer *t = s->xfer;
	uint64_t before = t->bytes;
	t->want_other = false;
	if (t->kind == XK_STOR) {
		if (s->type == 'A' || s->data_ssl)
			pump_read_in(s, t);
		else
			pump_splice_in(s, t);
	} else if (t->kind == XK_RETR && s->type != 'A' && (!s->data_ssl || data_ktls_send(s))) {
		pump_sendfile(s, t);
	} else {
		pump_staged(s, t);
	}
	if (s->xfer != t || t->commit_at)
		return;
	/* A transfer that still runs and moved bytes gets a new stall deadline. */
	if (t->bytes != before)
		t->deadline_ms = clock_ms() + (long long)s->cfg->data_timeout * 1000;
	uint32_t mask = t->kind == XK_STOR ? EPOLLIN : EPOLLOUT;
	if (t->want_other)
		mask = EPOLLIN | EPOLLOUT;
	if (loop_watch(&s->data, mask) < 0)
		xfer_fail(s, R_TRANSFER_ABORTED, "Connection closed; transfer aborted.");
}

/* An upload wakes its worker once FERRY_STOR_RCVLOWAT bytes wait, or at
 * its end, not for every segment: a worker faster than its client would
 * otherwise take a few KiB per wakeup. xfer_tick takes smaller amounts.
 * Set only after a TLS handshake, whose messages are far smaller. */
static int watch_upload(struct session *s)
{
	int lowat = FERRY_STOR_RCVLOWAT;
	setsockopt(s->data.fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
	return loop_watch(&s->data, EPOLLIN);
}

/* The data connection is up: start moving bytes in the right direction. */
static void data_handshake_step(struct session *s)
{
	struct transfer *t = s->xfer;
	ERR_clear_error();
	int r = SSL_accept(s->data_ssl);
	if (r == 1) {
		t->handshaking = false;
		/* Only the client holding the control connection's session may
		 * use the data connection (what vsftpd's require_ssl_reuse does). */
		if (s->cfg->tls_require_reuse && !SSL_session_reused(s->data_ssl)) {
			xfer_fail(s, 522, "Data connection must resume the control connection's TLS session.");
			return;
		}
		int watched;
		if (t->kind == XK_STOR) {
			watched = watch_upload(s);
		} else {
			/* Kernel TLS sends from the file itself: nothing to gather. */
			watched = data_ktls_send(s) ? 0 : data_gather_writes(s);
			if (watched == 0) {
				net_cork(s->data.fd, true); /* full segments of whole records */
				watched = loop_watch(&s->data, EPOLLOUT);
			}
		}
		if (watched < 0)
			xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
		return;
	}
	int e = SSL_get_error(s->data_ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		if (loop_watch(&s->data, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) < 0)
			xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
		return;
	}
	xfer_fail(s, 522, "TLS negotiation on the data connection failed.");
}

static void xfer_run(struct session *s)
{
	struct transfer *t = s->xfer;
	t->connecting = false;
	t->running = true;
	t->running_since = clock_ms();
	t->deadline_ms = t->running_since + (long long)s->cfg->data_timeout * 1000;
	s->data.fn = on_data;
	t->corked = s->data_corked;
	if (s->prot_private) {
		/* A corked handshake would wait for the cork's 200 ms timer. */
		data_cork(s, t, false);
		s->data_ssl = SSL_new(ferryd_tls_ctx);
		/* No session tickets on data connections: a client that never
		 * reads them (lftp uploading) would close with unread bytes and
		 * reset the connection, losing the upload's tail. */
		if (s->data_ssl)
			SSL_set_num_tickets(s->data_ssl, 0);
		/* Only sessions made on this control connection resume here:
		 * another client's session (all workers share one ticket key)
		 * gets a full handshake, which tls_require_reuse refuses. */
		if (s->data_ssl &&
		    SSL_set_session_id_context(s->data_ssl, s->tls_sid_ctx, sizeof s->tls_sid_ctx) != 1) {
			SSL_free(s->data_ssl);
			s->data_ssl = NULL;
		}
		/* An upload's records are read in bulk, not as a header read
		 * and a body read each: a tenth of the system calls. */
		if (s->data_ssl && t->kind == XK_STOR) {
			/* Without close_notify a forged or early TCP FIN cannot
			 * be told from the end of the upload. Off by default
			 * (as vsftpd's strict_ssl_read_eof): clients that skip
			 * it lose their uploads. */
			if (s->cfg->tls_strict_eof)
				SSL_clear_options(s->data_ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
			SSL_set_default_read_buffer_len(s->data_ssl, TLS_READ_AHEAD);
			SSL_set_read_ahead(s->data_ssl, 1);
		}
		if (!s->data_ssl || SSL_set_fd(s->data_ssl, s->data.fd) != 1) {
			xfer_fail(s, R_LOCAL_ERROR, "Cannot set up TLS for the data connection.");
			return;
		}
		t->handshaking = true;
		data_handshake_step(s);
		return;
	}
	if (t->kind == XK_STOR) {
		if (watch_upload(s) < 0)
			xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
		return;
	}
	/* Staged transfers send full segments only; closing the connection
	 * sends the tail. A binary RETR corks only for its last call (see
	 * pump_sendfile). */
	if (t->kind != XK_RETR || s->type == 'A')
		data_cork(s, t, true);
	/* A fresh data connection can take bytes at once: no need to wait a
	 * loop pass for EPOLLOUT. pump() watches the socket if bytes remain,
	 * so a small file is sent and closed without an epoll_ctl. */
	pump(s);
}

static void on_data(struct ev_handler *h, uint32_t events)
{
	struct session *s = (struct session *)((char *)h - offsetof(struct session, data));
	struct transfer *t = s->xfer;
	if (!t) {
		/* A passive connection made before any transfer: the peer hung up. */
		if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))
			close_data_fd(s);
		else
			loop_watch(h, 0);
		return;
	}
	if (t->connecting) {
		int err = 0;
		socklen_t sl = sizeof err;
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
			xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
			return;
		}
		xfer_run(s);
		return;
	}
	if (t->handshaking) {
		data_handshake_step(s);
		return;
	}
	pump(s);
}

/* Parking re-announces one port for a session's transfers, which a process
 * on the client's own address can find by probing and race the client to:
 * only where the port's secrecy is not what keeps it off, under PROT P
 * with resumption required (its TLS session is refused; it gets no byte).
 * Clear data keeps a fresh random port per PASV/EPSV (RFC 2577). */
static bool parking_allowed(const struct session *s)
{
	return s->cfg->pasv_park && s->prot_private && s->cfg->tls_require_reuse;
}

/* Takes the control peer's connection from the passive listener, if it
 * has arrived; connections from any other host are closed unread (no
 * passive-port theft). PASV_TAKEN once s->data holds the connection (the
 * listener is then parked for the next PASV/EPSV, or closed); PASV_RESTING
 * when the worker has no descriptor or memory for it. */
enum pasv_result { PASV_TAKEN, PASV_NONE, PASV_RESTING };

static enum pasv_result pasv_accept(struct session *s)
{
	for (int i = 0; i < 4; i++) {
		struct sockaddr_storage peer;
		socklen_t sl = sizeof peer;
		int fd = accept4(s->pasv.fd, (struct sockaddr *)&peer, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* Out of descriptors or memory: the listener would wake the
			 * worker again at once for the same connection. It rests;
			 * the transfer command or the once-a-second tick asks again. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				loop_watch(&s->pasv, 0);
				return PASV_RESTING;
			}
			return PASV_NONE;
		}
		if (!net_same_host(&peer, &s->peer)) {
			close(fd);
			continue;
		}
		if (parking_allowed(s)) {
			/* Watched while parked: whatever connects meanwhile is
			 * closed unread (on_pasv), not left to fill the backlog. */
			s->pasv_parked = true;
			s->pasv_parked_ms = clock_ms();
			s->pasv_parked_pass = loop_pass();
			if (loop_watch(&s->pasv, EPOLLIN) < 0)
				close_pasv_fd(s);
		} else {
			close_pasv_fd(s);
		}
		close_data_fd(s);
		/* Not watched until a transfer needs it: a peer that hangs up
		 * meanwhile is noticed when the transfer starts. */
		s->data.fd = fd;
		s->data.fn = on_data;
		s->data_corked = true; /* from the listener */
		return PASV_TAKEN;
	}
	return PASV_NONE;
}

/* Closes, unread, every connection waiting on a parked listener: its port
 * was announced for an address already used, so none of them is the one
 * the next PASV/EPSV announces it for. True once none waits; false (the
 * caller closes the listener) when more keep coming. */
static bool pasv_drain(struct session *s)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(s->pasv.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		close(fd);
	}
	return false;
}

static void on_pasv(struct ev_handler *h, uint32_t events)
{
	(void)events;
	struct session *s = (struct session *)((char *)h - offsetof(struct session, pasv));
	if (s->pasv_parked) {
		/* Parked earlier in this pass: the event is the connection it
		 * just took (a later one is reported again next pass). */
		if (s->pasv_parked_pass != loop_pass() && !pasv_drain(s))
			close_pasv_fd(s);
		return;
	}
	if (pasv_accept(s) == PASV_TAKEN && s->xfer)
		xfer_run(s);
}

static void xfer_open(struct session *s, struct transfer *t, const char *text150);

void xfer_start(struct session *s, struct transfer *t, const char *text150)
{
	/* A small download often ends before this returns: its 150 and 226
	 * then go out together. */
	session_cork(s);
	xfer_open(s, t, text150);
	session_uncork(s);
	if (s->pasv_spare_due)
		pasv_spare_open(s);
}

static void xfer_open(struct session *s, struct transfer *t, const char *text150)
{
	s->xfer = t;
	/* The final reply will come from the transfer: park the command. */
	s->xcmd = s->cur;
	s->cur.open = false;
	s->cur.arg = NULL;
	t->deadline_ms = clock_ms() + (long long)s->cfg->data_timeout * 1000;
	reply(s, R_FILE_STATUS_OK, "%s", text150);
	if (s->data_mode == DATA_ACTIVE) {
		struct sockaddr_storage from = s->local;
		net_addr_unmap(&from);
		struct sockaddr_storage to = s->port_addr;
		if (from.ss_family != to.ss_family)
			net_addr_unmap(&to);
		const struct sockaddr_storage *via = from.ss_family == to.ss_family ? &from : NULL;
		int fd = net_connect_start(&to, via, net_addrs_are_local(&to, via));
		if (fd < 0) {
			xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
			return;
		}
		s->data.fd = fd;
		s->data.fn = on_data;
		t->connecting = true;
		if (loop_watch(&s->data, EPOLLOUT) < 0)
			xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
		return;
	}
	/* Passive: run now if the client already connected, as it almost
	 * always has (a small file's 150 and 226 then leave in one write);
	 * else wait for it. A fresh listener is watched only from here. */
	if (s->data.fd >= 0) {
		xfer_run(s);
		return;
	}
	if (s->pasv.fd < 0 || s->pasv_parked)
		return;
	enum pasv_result r = pasv_accept(s);
	if (r == PASV_TAKEN)
		xfer_run(s);
	else if (r == PASV_NONE && loop_watch(&s->pasv, EPOLLIN) < 0)
		xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
}

void xfer_tick(struct session *s, long long now)
{
	struct transfer *t = s->xfer;
	if (t && t->commit_at) {
		if (now >= t->commit_at)
			stor_commit(s);
		else
			worker_wake_at(s, t->commit_at);
		return;
	}
	if (t && t->running && !t->handshaking &&
	    (t->kind == XK_STOR || (s->data_ssl && SSL_has_pending(s->data_ssl)))) {
		/* An upload's socket signals only FERRY_STOR_RCVLOWAT bytes, and
		 * TLS records can wait inside OpenSSL while the socket is quiet:
		 * what waits is taken here and counts as moving. A partial record
		 * or nothing at all leaves the stall deadline running. */
		pump(s);
		if (s->xfer != t || t->commit_at)
			return;
	}
	if (t && !t->running && !t->connecting && s->pasv.fd >= 0 && !s->pasv_parked &&
	    !s->pasv.events && pasv_accept(s) == PASV_TAKEN) {
		xfer_run(s);
		return;
	}
	if (!t || now < t->deadline_ms)
		return;
	if (t->running)
		xfer_fail(s, R_TRANSFER_ABORTED, "Data connection timed out; transfer aborted.");
	else
		xfer_fail(s, R_CANT_OPEN_DATA, "Can not open data connection.");
}

/* The address a passive socket takes: the control connection's own,
 * IPv4-mapped IPv6 shown as IPv4. */
static struct sockaddr_storage pasv_addr(const struct session *s)
{
	struct sockaddr_storage addr = s->local;
	net_addr_unmap(&addr);
	return addr;
}

/* A new passive listener on the session's own address, in place of any
 * other (only bound when !listening, for a spare); 0 or -errno. It is
 * watched only once a transfer waits for it (xfer_open): the client
 * connects before its transfer command almost always, and a stray
 * connection from elsewhere waits in the backlog until then, to be closed
 * unread. */
static int pasv_open(struct session *s, bool listening)
{
	close_pasv_fd(s);
	struct sockaddr_storage addr = pasv_addr(s), bound;
	int fd = listening ? net_listen_addr(&addr, s->cfg->pasv_lo, s->cfg->pasv_hi, &bound)
			   : net_bind_addr(&addr, s->cfg->pasv_lo, s->cfg->pasv_hi, &bound);
	if (fd < 0)
		return fd;
	/* Accepted connections inherit TCP_CORK: a small file's sendfile
	 * and its FIN leave as one segment without a setsockopt each. */
	if (net_cork(fd, true) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* Connections from this host come unpaced (net_unpaced): set on the
	 * listener, since it takes effect only before a connection exists. */
	if (net_addrs_are_local(&s->peer, &s->local))
		net_unpaced(fd);
	s->pasv.fd = fd;
	s->pasv.fn = on_pasv;
	s->pasv_port = net_port(&bound);
	return 0;
}

/* Opens the session's next passive socket ahead, once a passive transfer's
 * final reply is written: its socket, options and bind then overlap the
 * client's reading of that reply instead of delaying the next 229. It does
 * not listen until that PASV/EPSV announces it (pasv_take_parked), so no
 * probe can tell its port from a closed one before; the tick closes it after
 * FERRY_PASV_PARK_MS. Failing is harmless: PASV/EPSV opens one then. */
static void pasv_spare_open(struct session *s)
{
	if (s->corked) {
		s->pasv_spare_due = true; /* the reply is not out yet */
		return;
	}
	s->pasv_spare_due = false;
	if (!s->cfg->pasv_park || s->closing || s->quitting || s->xfer || s->data_mode != DATA_NONE ||
	    s->pasv.fd >= 0 || pasv_open(s, false) < 0)
		return;
	s->pasv_parked = true;
	s->pasv_spare = true; /* never watched: pasv_parked_pass does not apply */
	s->pasv_parked_ms = clock_ms();
}

/* Whether PASV/EPSV may announce the parked socket. A spare starts
 * listening now; that fails only if another socket took its port meanwhile
 * (SO_REUSEADDR lets two bind it), and a fresh listener is opened then. A
 * listener parked after its transfer (PROT P) was announced before, so
 * connections on it are expected and closed. */
static bool pasv_take_parked(struct session *s)
{
	if (!s->pasv_parked)
		return false;
	bool ok = s->pasv_spare ? net_listen_bound(s->pasv.fd) == 0
		: parking_allowed(s) && pasv_drain(s) && loop_watch(&s->pasv, EPOLLIN) == 0;
	s->pasv_parked = false;
	s->pasv_spare = false;
	return ok;
}

void data_passive(struct session *s, bool extended)
{
	data_reset(s);
	struct sockaddr_storage addr = pasv_addr(s);
	if (!extended && addr.ss_family != AF_INET && !s->cfg->pasv_address) {
		reply(s, R_CANT_OPEN_DATA, "PASV needs IPv4; use EPSV on IPv6 connections.");
		return;
	}
	if (!pasv_take_parked(s)) {
		int r = pasv_open(s, true);
		if (r < 0) {
			reply(s, R_CANT_OPEN_DATA, "Can not open passive connection: %s.", strerror(-r));
			return;
		}
	}
	s->data_mode = DATA_PASSIVE;
	int port = s->pasv_port;
	if (extended) {
		reply(s, R_EPSV, "Entering Extended Passive Mode (|||%d|).", port);
		return;
	}
	struct sockaddr_storage shown = addr;
	if (s->cfg->pasv_address)
		net_addr_parse(s->cfg->pasv_address, &shown);
	net_set_port(&shown, port);
	char six[32];
	ftp_port_format(&shown, six, sizeof six);
	reply(s, R_PASV, "Entering Passive Mode (%s).", six);
}

/* An unspecified address (0.0.0.0, ::) in PORT/EPRT, as lftp sends for an
 * active IPv6 connection: it can only mean the control peer. */
static bool addr_unspecified(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
	return false;
}

void data_active(struct session *s, const struct sockaddr_storage *given, bool extended)
{
	struct sockaddr_storage resolved = *given;
	const struct sockaddr_storage *addr = given;
	if (addr_unspecified(given)) {
		resolved = s->peer;
		net_set_port(&resolved, net_port(given));
		addr = &resolved;
	}
	/* No FTP bounce: data goes only to the control peer, never to a
	 * privileged port. The previous address stays in force on refusal. */
	if (!net_same_host(addr, &s->peer) || net_port(addr) < 1024) {
		reply(s, R_PARAM_NOT_IMPLEMENTED, "Data connections only to your own address and ports >= 1024.");
		return;
	}
	data_release(s);
	s->port_addr = *addr;
	s->data_mode = DATA_ACTIVE;
	if (extended) {
		reply(s, R_CMD_OK, "EPRT command successful.");
		return;
	}
	char host[64];
	net_host_str(addr, host, sizeof host);
	reply(s, R_CMD_OK, "Port command successful (%s,%d).", host, net_port(addr));
}
