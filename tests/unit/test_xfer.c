/* Unit tests for lib/xfer (TYPE A conversion, copy loops) and lib/buf. */
#include "buf.h"
#include "check.h"
#include "sys.h"
#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(ascii_encode_lf_to_crlf)
{
	struct ascii_state st = {0};
	char out[64];
	size_t n = ascii_encode(&st, "a\nb\r\nc", 6, out);
	CHECK(n == 7); /* the LF already preceded by CR is not doubled */
	CHECK(memcmp(out, "a\r\nb\r\nc", 7) == 0);
	/* A CR at the end of one chunk and LF at the start of the next. */
	struct ascii_state st2 = {0};
	size_t a = ascii_encode(&st2, "x\r", 2, out);
	size_t b = ascii_encode(&st2, "\ny", 2, out + a);
	CHECK(a + b == 4);
	CHECK(memcmp(out, "x\r\ny", 4) == 0);
}

TEST(ascii_decode_any_split)
{
	const char wire[] = "one\r\ntwo\r\nbare\rcr\r\n";
	const char want[] = "one\ntwo\nbare\rcr\n";
	for (size_t cut = 0; cut <= sizeof wire - 1; cut++) {
		struct ascii_state st = {0};
		char out[64];
		size_t n = ascii_decode(&st, wire, cut, out);
		n += ascii_decode(&st, wire + cut, sizeof wire - 1 - cut, out + n);
		n += ascii_decode_finish(&st, out + n);
		CHECK(n == sizeof want - 1);
		CHECK(memcmp(out, want, n) == 0);
	}
	struct ascii_state st = {0};
	char out[4];
	size_t n = ascii_decode(&st, "a\r", 2, out);
	n += ascii_decode_finish(&st, out + n);
	CHECK(n == 2 && out[1] == '\r');
}

static int stop_after_first(void *ctx, uint64_t bytes)
{
	(void)bytes;
	return ++*(int *)ctx >= 1;
}

TEST(copy_file_to_pipe_and_cancel)
{
	char path[] = "/tmp/ferry-xfer-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	char block[4096];
	memset(block, 'z', sizeof block);
	for (int i = 0; i < 64; i++)
		CHECK(write(fd, block, sizeof block) == (ssize_t)sizeof block);
	lseek(fd, 0, SEEK_SET);
	int out = open("/dev/null", O_WRONLY);
	struct xfer_opts o = {0};
	enum xfer_side side = 0;
	CHECK(xfer_copy(fd, out, &o, &side) == 64 * 4096);
	lseek(fd, 0, SEEK_SET);
	o.limit = 1000;
	CHECK(xfer_copy(fd, out, &o, &side) == 1000);
	lseek(fd, 0, SEEK_SET);
	int calls = 0;
	o.limit = 0;
	o.progress = stop_after_first;
	o.ctx = &calls;
	CHECK(xfer_copy(fd, out, &o, &side) == -ECANCELED);
	close(out);
	close(fd);
	unlink(path);
}

/* Feeds total bytes of a known pattern into a socket from a child. */
static pid_t feed_socket(int sv[2], size_t total)
{
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid_t child = fork();
	if (child == 0) {
		static char chunk[65536];
		close(sv[0]);
		for (size_t i = 0; i < sizeof chunk; i++)
			chunk[i] = (char)(i * 7 + i / 251);
		for (size_t sent = 0; sent < total;) {
			size_t n = total - sent < sizeof chunk ? total - sent : sizeof chunk;
			if (io_write_full(sv[1], chunk, n) != 0)
				_exit(1);
			sent += n;
		}
		_exit(0);
	}
	close(sv[1]);
	return child;
}

static bool is_pattern(const char *p, size_t n, size_t from)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = (from + i) % 65536;
		if (p[i] != (char)(k * 7 + k / 251))
			return false;
	}
	return true;
}

/* Progress callback of the download test: notes whether the file ever
 * held more blocks than its bytes fill (reserved ahead of the writes). */
struct download_watch {
	int fd;
	bool saw_reserve;
};

static int watch_blocks(void *ctx, uint64_t bytes)
{
	struct download_watch *w = ctx;
	struct stat st;
	(void)bytes;
	if (fstat(w->fd, &st) == 0 && (off_t)st.st_blocks * 512 > (st.st_size + 4095) / 4096 * 4096)
		w->saw_reserve = true;
	return 0;
}

/* A download (socket to file) past 1 MiB reserves blocks ahead on ext4
 * (lib/prealloc) and ends with exactly its data's blocks. */
TEST(download_to_file_reserves_ahead_and_trims)
{
	enum { TOTAL = 6 * 1024 * 1024 + 1234 };
	int sv[2];
	pid_t child = feed_socket(sv, TOTAL);
	char path[] = "/tmp/ferry-xfer-dl-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	struct download_watch w = {.fd = fd};
	struct xfer_opts o = {.progress = watch_blocks, .ctx = &w};
	enum xfer_side side = 0;
	CHECK(xfer_copy(sv[0], fd, &o, &side) == TOTAL);
	int status = -1;
	CHECK(waitpid(child, &status, 0) == child && status == 0);
	struct stat st;
	struct statfs fs;
	CHECK(fstat(fd, &st) == 0 && st.st_size == TOTAL);
	/* Nothing left reserved: the data's blocks plus at most the extent
	 * tree's own (an index block); a reservation left would be a MiB. */
	off_t blocks = (off_t)st.st_blocks * 512, data = (TOTAL + 4095) / 4096 * 4096;
	CHECK(blocks >= data && blocks < data + 64 * 1024);
	if (fstatfs(fd, &fs) == 0 && fs.f_type == EXT4_SUPER_MAGIC)
		CHECK(w.saw_reserve);
	else
		CHECK(!w.saw_reserve);
	close(sv[0]);
	close(fd);
}

/* Socket to a pipe, to /dev/null, and to a file opened O_APPEND (which
 * splice refuses: the copy falls back to the buffer without losing the
 * bytes already in its pipe). */
TEST(download_to_pipe_null_and_append_file)
{
	enum { TOTAL = 3 * 1024 * 1024 + 99 };
	struct xfer_opts o = {0};
	enum xfer_side side = 0;
	int sv[2], status;

	pid_t child = feed_socket(sv, TOTAL);
	int out = open("/dev/null", O_WRONLY);
	CHECK(xfer_copy(sv[0], out, &o, &side) == TOTAL);
	close(out);
	close(sv[0]);
	CHECK(waitpid(child, &status, 0) == child && status == 0);

	char path[] = "/tmp/ferry-xfer-app-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "head", 4) == 4);
	close(fd);
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	child = feed_socket(sv, TOTAL);
	CHECK(xfer_copy(sv[0], fd, &o, &side) == TOTAL);
	close(sv[0]);
	CHECK(waitpid(child, &status, 0) == child && status == 0);
	close(fd);
	fd = open(path, O_RDONLY);
	unlink(path);
	static char got[TOTAL + 4];
	CHECK(io_read_full(fd, got, sizeof got) == (ssize_t)sizeof got);
	CHECK(memcmp(got, "head", 4) == 0 && is_pattern(got + 4, TOTAL, 0));
	close(fd);

	/* A pipe whose reader checks every byte. */
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t reader = fork();
	if (reader == 0) {
		static char buf[65536];
		size_t seen = 0;
		close(p[1]);
		for (;;) {
			ssize_t r = io_read_some(p[0], buf, sizeof buf);
			if (r <= 0 || !is_pattern(buf, (size_t)r, seen))
				_exit(r == 0 && seen == TOTAL ? 0 : 1);
			seen += (size_t)r;
		}
	}
	close(p[0]);
	child = feed_socket(sv, TOTAL);
	CHECK(xfer_copy(sv[0], p[1], &o, &side) == TOTAL);
	close(p[1]);
	close(sv[0]);
	CHECK(waitpid(child, &status, 0) == child && status == 0);
	CHECK(waitpid(reader, &status, 0) == reader && status == 0);
}

TEST(buf_limit_and_consume)
{
	struct buf b;
	buf_init(&b, 8);
	CHECK(buf_appends(&b, "12345") == 0);
	CHECK(buf_appends(&b, "6789") == -ENOBUFS);
	CHECK(b.len == 5);
	CHECK(buf_printf(&b, "%d", 678) == 0);
	CHECK_STR(b.data, "12345678");
	buf_consume(&b, 3);
	CHECK_STR(b.data, "45678");
	buf_clear(&b);
	buf_shrink_if_empty(&b);
	CHECK(b.data == NULL && b.cap == 0);
	buf_free(&b);
}

int main(void)
{
	RUN_ONE(ascii_encode_lf_to_crlf);
	RUN_ONE(ascii_decode_any_split);
	RUN_ONE(copy_file_to_pipe_and_cancel);
	RUN_ONE(download_to_file_reserves_ahead_and_trims);
	RUN_ONE(download_to_pipe_null_and_append_file);
	RUN_ONE(buf_limit_and_consume);
	return check_tests_failed != 0;
}
