/* stream_client.c - ferry --stream HOST PORT GET|PUT|DEL FILE: seed 001's
 * one-shot client, printing exactly the seed's lines on stdout.
 *
 * Local problems are found before connecting where they can be: a PUT
 * source that cannot be read, a GET target that cannot be created. A GET
 * writes into a temporary file beside the target and renames it into
 * place after DONE, so a failed GET never leaves a partial or empty file
 * (nor destroys the one that was there). Diagnostics the seed does not
 * define (cannot connect, protocol violations) go to stderr. */
#include "seedmodes.h"

#include "ferry_limits.h"
#include "net.h"
#include "sayline.h"
#include "smsg.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bound on connecting and on every wait for the server. */
#define CLIENT_CONNECT_MS 10000
#define CLIENT_TIMEOUT_MS 60000
#define CLIENT_TMP_TRIES 100

enum action { ACT_GET, ACT_PUT, ACT_DEL };

struct job {
	enum action act;
	const char *host;
	int port;
	const char *file;
	int fd;                 /* PUT: the source; GET: the temporary target */
	uint64_t size;          /* PUT: bytes to send */
	char dir[FERRY_PATH_MAX];     /* GET: directory of the target */
	char tmp[FERRY_PATH_MAX + 64];/* GET: temporary file's path */
	struct smsg_conn c;
};

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s --stream HOST PORT GET|PUT|DEL FILE\n", prog);
}

static int parse_port(const char *s, int *port)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || s[0] == '+' || v == 0 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say_line(fmt, ap);
	va_end(ap);
}

static int open_source(struct job *j)
{
	struct stat st;
	j->fd = open(j->file, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (j->fd >= 0 && fstat(j->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		j->size = (uint64_t)st.st_size;
		return 0;
	}
	/* Seed 001 names one text for a source it cannot send. */
	fd_close(&j->fd);
	line("client error: %s does not exist", j->file);
	return -1;
}

static int create_target(struct job *j)
{
	struct stat st;
	char copy[FERRY_PATH_MAX];
	if (snprintf(copy, sizeof copy, "%s", j->file) >= (int)sizeof copy)
		goto fail;
	snprintf(j->dir, sizeof j->dir, "%s", dirname(copy));
	/* A directory is not replaced, nor a file we may not write. */
	if (stat(j->file, &st) == 0 && (S_ISDIR(st.st_mode) || access(j->file, W_OK) < 0))
		goto fail;
	for (int i = 0; i < CLIENT_TMP_TRIES; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int n = snprintf(j->tmp, sizeof j->tmp, "%s/.ferry-get-%ld-%lx-%d.tmp", j->dir, (long)getpid(),
				 (unsigned long)ts.tv_nsec, i);
		if (n < 0 || (size_t)n >= sizeof j->tmp)
			goto fail;
		j->fd = open(j->tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (j->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
fail:
	j->tmp[0] = '\0';
	line("client error: unable to create file %s", j->file);
	return -1;
}

static void discard_target(struct job *j)
{
	fd_close(&j->fd);
	if (j->tmp[0])
		unlink(j->tmp);
	j->tmp[0] = '\0';
}

/* Reports a failure the seed has no text for. */
static int broken(struct job *j, const char *what, int err)
{
	fprintf(stderr, "ferry: %s:%d: %s: %s\n", j->host, j->port, what,
		err == -EPROTO ? "unexpected reply" : strerror(-err));
	return 1;
}

/* Waits for want; on "ERROR: text" prints the seed's line. 0 when want came. */
static int expect(struct job *j, const char *want, int *rc)
{
	char text[SMSG_ERROR_MAX];
	int r = smsg_expect(&j->c, want, true, text, sizeof text);
	if (r == 0)
		return 0;
	if (r == 1) {
		line("server error: %s", text);
		*rc = 1;
	} else {
		char what[32];
		snprintf(what, sizeof what, "waiting for %s", want);
		*rc = broken(j, what, r);
	}
	return -1;
}

static int run_get(struct job *j)
{
	int rc = 0;
	uint64_t size;
	bool local_failed;
	if (expect(j, "OK", &rc) < 0)
		return rc;
	int r = smsg_send_text(&j->c, "READY");
	if (r < 0 || (r = smsg_read_size(&j->c, &size)) < 0)
		return broken(j, "reading the file size", r);
	line("client receiving file %s (%" PRIu64 " bytes)", j->file, size);
	if ((r = smsg_send_text(&j->c, "OK")) < 0)
		return broken(j, "sending OK", r);
	r = smsg_recv_file(&j->c, j->fd, size, &local_failed);
	if (r < 0 && !local_failed)
		return broken(j, "receiving the file", r);
	if (expect(j, "DONE", &rc) < 0)
		return rc;
	if (r < 0 || close(j->fd) < 0 || rename(j->tmp, j->file) < 0) {
		j->fd = -1;
		line("client error: unable to create file %s", j->file);
		return 1;
	}
	j->fd = -1;
	j->tmp[0] = '\0';
	line("Complete");
	return 0;
}

static int run_put(struct job *j)
{
	int rc = 0;
	bool local_failed;
	if (expect(j, "OK", &rc) < 0)
		return rc;
	int r = smsg_send_size(&j->c, j->size);
	if (r < 0)
		return broken(j, "sending the file size", r);
	if (expect(j, "OK", &rc) < 0)
		return rc;
	line("client sending file %s (%" PRIu64 " bytes)", j->file, j->size);
	r = smsg_send_file(&j->c, j->fd, j->size, &local_failed);
	if (r < 0) {
		if (local_failed)
			fprintf(stderr, "ferry: %s: %s\n", j->file,
				r == -ENODATA ? "file shrank while being sent" : strerror(-r));
		else
			broken(j, "sending the file", r);
		return 1;
	}
	if (expect(j, "DONE", &rc) < 0)
		return rc;
	line("Complete");
	return 0;
}

static int run_del(struct job *j)
{
	int rc = 0;
	if (expect(j, "DONE", &rc) < 0)
		return rc;
	line("Complete");
	return 0;
}

int stream_client_main(int argc, char **argv)
{
	struct job j = {.fd = -1};
	const char *prog = argc > 0 ? argv[0] : "ferry";
	if (argc != 5) {
		usage(prog);
		return 2;
	}
	j.host = argv[1];
	j.file = argv[4];
	if (parse_port(argv[2], &j.port) < 0) {
		fprintf(stderr, "ferry: invalid port: %s\n", argv[2]);
		return 2;
	}
	if (strcasecmp(argv[3], "GET") == 0) {
		j.act = ACT_GET;
	} else if (strcasecmp(argv[3], "PUT") == 0) {
		j.act = ACT_PUT;
	} else if (strcasecmp(argv[3], "DEL") == 0) {
		j.act = ACT_DEL;
	} else {
		fprintf(stderr, "ferry: unknown action %s (GET, PUT or DEL)\n", argv[3]);
		return 2;
	}
	if (!j.file[0]) {
		fprintf(stderr, "ferry: empty file name\n");
		return 2;
	}
	/* Local errors first: the seed wants them before any connection. */
	if (j.act == ACT_PUT && open_source(&j) < 0)
		return 1;
	if (j.act == ACT_GET && create_target(&j) < 0)
		return 1;

	int rc = 1;
	char err[256];
	int fd = net_connect(j.host, j.port, CLIENT_CONNECT_MS, err, sizeof err);
	if (fd < 0) {
		fprintf(stderr, "ferry: cannot connect to %s port %d: %s\n", j.host, j.port, err);
		goto out;
	}
	int r = smsg_init(&j.c, fd, CLIENT_TIMEOUT_MS);
	if (r < 0) {
		rc = broken(&j, "socket", r);
		goto out;
	}
	if (expect(&j, "READY", &rc) < 0)
		goto out;
	static const char *const verbs[] = {[ACT_GET] = "GET", [ACT_PUT] = "PUT", [ACT_DEL] = "DEL"};
	char req[8 + FERRY_PATH_MAX];
	if (snprintf(req, sizeof req, "%s %s", verbs[j.act], j.file) >= (int)sizeof req) {
		fprintf(stderr, "ferry: file name too long\n");
		goto out;
	}
	if (j.act == ACT_DEL)
		line("client deleting file %s", j.file);
	if ((r = smsg_send_text(&j.c, req)) < 0) {
		rc = broken(&j, "sending the request", r);
		goto out;
	}
	rc = j.act == ACT_GET ? run_get(&j) : j.act == ACT_PUT ? run_put(&j) : run_del(&j);
out:
	fd_close(&fd);
	if (j.act == ACT_GET)
		discard_target(&j);
	else
		fd_close(&j.fd);
	return rc;
}
