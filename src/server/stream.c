/* stream.c - ferryd --stream: seed 001's streaming file-transfer protocol.
 *
 * One client at a time (the seed's design): accept, send READY, read one
 * request, carry it out, close, accept the next. Framing is lib/smsg's;
 * every wait for the client is bounded so a stalled client cannot keep
 * the server from the next one. */
#include "stream.h"

#include "ferry_limits.h"
#include "net.h"
#include "path.h"
#include "reply.h"
#include "sayline.h"
#include "smsg.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longest wait for a client before the server gives up on it. */
#define STREAM_TIMEOUT_MS 60000
/* "PUT " plus the longest path, plus one byte that shows a request is
 * longer than that, plus the NUL. */
#define STREAM_REQ_MAX (4 + FERRY_PATH_MAX + 2)
/* Tries at a unique temporary name before giving up. */
#define STREAM_TMP_TRIES 100

struct client {
	struct smsg_conn c;
	bool verbose;
	int rootfd;
	const char *name; /* file name exactly as the client sent it */
	char vpath[FERRY_PATH_MAX];
	char msg[64 + STREAM_REQ_MAX];
};

__attribute__((format(printf, 2, 3))) static void say(bool verbose, const char *fmt, ...)
{
	if (!verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	say_line(fmt, ap);
	va_end(ap);
}

/* Sends "ERROR: <what>"; the connection ends after it either way. */
__attribute__((format(printf, 2, 3))) static void send_error(struct client *cl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cl->msg, sizeof cl->msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	(void)smsg_send_text(&cl->c, cl->msg);
}

/* A new file's data goes to a temporary file in the target directory,
 * renamed over the target only when the upload is complete. Preferred is
 * an unnamed O_TMPFILE, which vanishes by itself however the server dies;
 * where the filesystem or a missing /proc cannot link one into place, a
 * named ".ferry-put-*" file is used and removed on every failure path. */
struct tmpfile {
	int fd;
	char name[64]; /* empty for an unnamed file */
};

static int unique_name(char *out, size_t outlen)
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int n = snprintf(out, outlen, ".ferry-put-%ld-%lx-%u.tmp", (long)getpid(), (unsigned long)ts.tv_nsec,
			 counter++);
	return n > 0 && (size_t)n < outlen ? 0 : -ENAMETOOLONG;
}

static int tmp_create(int dfd, struct tmpfile *t)
{
	t->name[0] = '\0';
	t->fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
	if (t->fd >= 0) {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
		if (access(proc, F_OK) == 0)
			return 0;
		fd_close(&t->fd);
	} else if (errno != EOPNOTSUPP && errno != EISDIR) {
		return -errno;
	}
	for (int i = 0; i < STREAM_TMP_TRIES; i++) {
		int r = unique_name(t->name, sizeof t->name);
		if (r < 0)
			return r;
		t->fd = openat(dfd, t->name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (t->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	int e = errno;
	t->name[0] = '\0';
	return -e;
}

static void tmp_discard(int dfd, struct tmpfile *t)
{
	fd_close(&t->fd);
	if (t->name[0])
		unlinkat(dfd, t->name, 0);
	t->name[0] = '\0';
}

static int tmp_commit(int dfd, struct tmpfile *t, const char *leaf)
{
	if (!t->name[0]) {
		/* linkat cannot replace a file: give the data a temporary
		 * name first, then rename that over the target. */
		int i;
		for (i = 0; i < STREAM_TMP_TRIES; i++) {
			int r = unique_name(t->name, sizeof t->name);
			if (r < 0)
				return r;
			r = fd_link_tmpfile(t->fd, dfd, t->name);
			if (r == 0)
				break;
			if (r != -EEXIST) {
				t->name[0] = '\0';
				return r;
			}
		}
		if (i == STREAM_TMP_TRIES) {
			t->name[0] = '\0';
			return -EEXIST;
		}
	}
	if (close(t->fd) < 0) {
		t->fd = -1;
		return -errno; /* delayed write errors show up here */
	}
	t->fd = -1;
	if (renameat(dfd, t->name, dfd, leaf) < 0)
		return -errno;
	t->name[0] = '\0';
	return 0;
}

/* Errors that mean "there is no such file in the served tree". EXDEV is
 * what openat2 says when a path (or a symlink) would leave the root. */
static bool is_absent(int err)
{
	return err == -ENOENT || err == -ENOTDIR || err == -EXDEV || err == -ELOOP || err == -ENAMETOOLONG;
}

static void do_get(struct client *cl)
{
	int fd = path_open(cl->rootfd, cl->vpath, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		fd_close(&fd);
		fd = -ENOENT; /* a directory or device is not a file to get */
	}
	if (fd < 0) {
		if (is_absent(fd))
			send_error(cl, "ERROR: %s does not exist", cl->name);
		else
			send_error(cl, "ERROR: unable to read file %s", cl->name);
		return;
	}
	uint64_t size = (uint64_t)st.st_size;
	bool local_failed;
	if (smsg_send_text(&cl->c, "OK") < 0 || smsg_expect(&cl->c, "READY", false, NULL, 0) != 0 ||
	    smsg_send_size(&cl->c, size) < 0 || smsg_expect(&cl->c, "OK", false, NULL, 0) != 0)
		goto out;
	say(cl->verbose, "server sending %" PRIu64 " bytes", size);
	/* A file that shrinks under us leaves the client owed bytes it will
	 * never get: closing is the only honest end. */
	if (smsg_send_file(&cl->c, fd, size, &local_failed) < 0)
		goto out;
	(void)smsg_send_text(&cl->c, "DONE");
out:
	close(fd);
}

static void do_put(struct client *cl)
{
	const char *leaf;
	struct tmpfile t = {.fd = -1};
	struct stat st;
	int dfd = path_open_parent(cl->rootfd, cl->vpath, &leaf);
	if (dfd >= 0 && fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (S_ISDIR(st.st_mode) || faccessat(dfd, leaf, W_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW) < 0)) {
		/* Overwriting is fine (seed 001); replacing a directory or a
		 * file the server may not write is not, though rename could. */
		fd_close(&dfd);
	}
	if (dfd < 0 || tmp_create(dfd, &t) < 0) {
		send_error(cl, "ERROR: unable to create file %s", cl->name);
		goto out;
	}
	uint64_t size;
	bool local_failed;
	if (smsg_send_text(&cl->c, "OK") < 0 || smsg_read_size(&cl->c, &size) < 0)
		goto out;
	say(cl->verbose, "server receiving %" PRIu64 " bytes", size);
	if (smsg_send_text(&cl->c, "OK") < 0)
		goto out;
	int r = smsg_recv_file(&cl->c, t.fd, size, &local_failed);
	if (r < 0 && !local_failed)
		goto out; /* the client went away or stalled: keep the old file */
	if (r < 0 || tmp_commit(dfd, &t, leaf) < 0) {
		send_error(cl, "ERROR: unable to create file %s", cl->name);
		goto out;
	}
	(void)smsg_send_text(&cl->c, "DONE");
out:
	if (dfd >= 0)
		tmp_discard(dfd, &t);
	fd_close(&dfd);
}

static void do_del(struct client *cl)
{
	const char *leaf;
	struct stat st;
	int dfd = path_open_parent(cl->rootfd, cl->vpath, &leaf);
	if (dfd == -EPERM) {
		/* "/" itself: it exists but is never deleted. */
		send_error(cl, "ERROR: unable to delete %s", cl->name);
		return;
	}
	if (dfd < 0 || fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		send_error(cl, "ERROR: %s does not exist", cl->name);
		fd_close(&dfd);
		return;
	}
	say(cl->verbose, "server deleting file %s", cl->name);
	if (unlinkat(dfd, leaf, 0) < 0)
		send_error(cl, "ERROR: unable to delete %s", cl->name);
	else
		(void)smsg_send_text(&cl->c, "DONE");
	close(dfd);
}

static void serve_client(int fd, bool verbose, int rootfd)
{
	static struct client cl; /* large; one client at a time */
	char req[STREAM_REQ_MAX];
	memset(&cl, 0, sizeof cl);
	cl.verbose = verbose;
	cl.rootfd = rootfd;
	if (smsg_init(&cl.c, fd, STREAM_TIMEOUT_MS) < 0 || smsg_send_text(&cl.c, "READY") < 0)
		return;
	ssize_t n = smsg_read_var(&cl.c, req, sizeof req);
	if (n == -EMSGSIZE) {
		send_error(&cl, "ERROR: request too long");
		return;
	}
	if (n < 0)
		return;
	if (verbose) {
		/* The client's bytes go to a terminal: no control characters. */
		char shown[STREAM_REQ_MAX];
		reply_sanitize(req, shown, sizeof shown);
		say(true, "server receiving request: %s", shown);
	}
	if (n < 5 || req[3] != ' ' || strlen(req) != (size_t)n) {
		send_error(&cl, "ERROR: invalid request");
		return;
	}
	req[3] = '\0';
	cl.name = req + 4;
	if (path_resolve("/", cl.name, cl.vpath, sizeof cl.vpath) < 0) {
		send_error(&cl, "ERROR: %s does not exist", cl.name);
		return;
	}
	if (strcasecmp(req, "GET") == 0)
		do_get(&cl);
	else if (strcasecmp(req, "PUT") == 0)
		do_put(&cl);
	else if (strcasecmp(req, "DEL") == 0)
		do_del(&cl);
	else
		send_error(&cl, "ERROR: invalid request");
}

static int accept_client(int lfd, struct sockaddr_storage *peer)
{
	for (;;) {
		int w = io_wait(lfd, POLLIN, -1);
		if (w < 0)
			return w;
		socklen_t sl = sizeof *peer;
		int fd = accept4(lfd, (struct sockaddr *)peer, &sl, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Out of resources: wait instead of spinning. */
			struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
			nanosleep(&ts, NULL);
		}
		/* EAGAIN, ECONNABORTED, EINTR and the like: the next one. */
	}
}

int stream_serve(int port, bool verbose, int rootfd)
{
	char err[256];
	int lfd = net_listen(NULL, port, 0, err, sizeof err);
	if (lfd < 0) {
		fprintf(stderr, "ferryd: %s\n", err);
		return 1;
	}
	struct sockaddr_storage local;
	if (port == 0 && net_local_addr(lfd, &local) == 0)
		port = net_port(&local);
	for (;;) {
		struct sockaddr_storage peer;
		say(verbose, "server waiting on port %d", port);
		int fd = accept_client(lfd, &peer);
		if (fd < 0) {
			fprintf(stderr, "ferryd: accept: %s\n", strerror(-fd));
			close(lfd);
			return 1;
		}
		if (verbose) {
			char host[64];
			say(true, "server connected to client at %s:%d", net_host_str(&peer, host, sizeof host),
			    net_port(&peer));
		}
		serve_client(fd, verbose, rootfd);
		close(fd);
	}
}
