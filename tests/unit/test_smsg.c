/* Unit tests of lib/smsg: seed 001's framing over real socket pairs. */
#include "check.h"
#include "smsg.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
}

static void pause_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* Writes text one byte at a time with a pause after each (a child
 * process), so the reader sees the message split into many segments. */
static pid_t trickle(int fd, const char *text, int gap_ms, bool close_after)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (const char *p = text; *p; p++) {
			if (write(fd, p, 1) != 1)
				_exit(1);
			pause_ms(gap_ms);
		}
		if (close_after)
			close(fd);
		else
			pause_ms(1000);
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST(size_is_eight_bytes_big_endian)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn a, b;
	CHECK(smsg_init(&a, sv[0], 2000) == 0);
	CHECK(smsg_init(&b, sv[1], 2000) == 0);
	CHECK(smsg_send_size(&a, 0x0102030405060708ull) == 0);
	unsigned char raw[8];
	CHECK(io_read_full(sv[1], raw, 8) == 8);
	for (int i = 0; i < 8; i++)
		CHECK(raw[i] == i + 1);
	uint64_t v = 0;
	CHECK(smsg_send_size(&a, UINT64_MAX) == 0);
	CHECK(smsg_read_size(&b, &v) == 0);
	CHECK(v == UINT64_MAX);
	close(sv[0]);
	close(sv[1]);
}

TEST(merged_fixed_messages_read_apart)
{
	/* A peer that sends OK and DONE in one write: the reader takes
	 * exactly "OK" and leaves "DONE" for the next read. */
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	CHECK(smsg_init(&b, sv[1], 2000) == 0);
	CHECK(write(sv[0], "OKDONE", 6) == 6);
	CHECK(smsg_expect(&b, "OK", true, NULL, 0) == 0);
	CHECK(smsg_expect(&b, "DONE", true, NULL, 0) == 0);
	/* Data merged with DONE: exactly the announced bytes, then DONE. */
	CHECK(write(sv[0], "\x00\x00\x00\x00\x00\x00\x00\x03" "abcDONE", 15) == 15);
	uint64_t size;
	CHECK(smsg_read_size(&b, &size) == 0);
	CHECK(size == 3);
	int fds[2];
	CHECK(pipe(fds) == 0);
	bool lf;
	CHECK(smsg_recv_file(&b, fds[1], size, &lf) == 0);
	char got[8] = {0};
	CHECK(read(fds[0], got, sizeof got) == 3);
	CHECK_STR(got, "abc");
	CHECK(smsg_expect(&b, "DONE", false, NULL, 0) == 0);
	close(fds[0]);
	close(fds[1]);
	close(sv[0]);
	close(sv[1]);
}

/* Sends text on a fresh pair (closing the writer when asked) and
 * returns what smsg_expect makes of it. */
static int expect_on(const char *text, bool close_writer, const char *want, bool allow_error)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	CHECK(smsg_init(&b, sv[1], 2000) == 0);
	CHECK(io_write_full(sv[0], text, strlen(text)) == 0);
	if (close_writer)
		close(sv[0]);
	int r = smsg_expect(&b, want, allow_error, NULL, 0);
	if (!close_writer)
		close(sv[0]);
	close(sv[1]);
	return r;
}

TEST(unexpected_text_is_a_protocol_error)
{
	CHECK(expect_on("NO", false, "OK", true) == -EPROTO);
	CHECK(expect_on("ERROR: x", false, "OK", false) == -EPROTO);
	CHECK(expect_on("DON", true, "DONE", true) == -ECONNRESET);
	CHECK(expect_on("", true, "READY", true) == -ECONNRESET);
	CHECK(expect_on("READY", true, "READY", false) == 0);
}

TEST(error_message_ends_at_close_or_quiet)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	char text[64];
	CHECK(smsg_init(&b, sv[1], 5000) == 0);
	/* Split into 1-byte segments, then the peer waits (no close). */
	pid_t pid = trickle(sv[0], "ERROR: f.txt does not exist", 5, false);
	long long t0 = clock_ms();
	CHECK(smsg_expect(&b, "DONE", true, text, sizeof text) == 1);
	CHECK_STR(text, "f.txt does not exist");
	CHECK(clock_ms() - t0 >= SMSG_QUIET_MS);
	reap(pid);
	/* Ended by the peer closing: no quiet wait needed. */
	pid = trickle(sv[0], "ERROR: unable to create file x", 0, true);
	close(sv[0]);
	CHECK(smsg_expect(&b, "OK", true, text, sizeof text) == 1);
	CHECK_STR(text, "unable to create file x");
	reap(pid);
	close(sv[1]);
}

TEST(request_split_into_single_bytes)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	char req[128];
	CHECK(smsg_init(&b, sv[1], 5000) == 0);
	pid_t pid = trickle(sv[0], "GET some dir/file name.txt", 10, false);
	CHECK(smsg_read_var(&b, req, sizeof req) == 26);
	CHECK_STR(req, "GET some dir/file name.txt");
	reap(pid);
	close(sv[0]);
	close(sv[1]);
}

TEST(request_ending_in_lf_needs_no_quiet_period)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	char req[128];
	CHECK(smsg_init(&b, sv[1], 5000) == 0);
	CHECK(write(sv[0], "DEL x\r\n", 7) == 7);
	long long t0 = clock_ms();
	CHECK(smsg_read_var(&b, req, sizeof req) == 5);
	CHECK_STR(req, "DEL x");
	CHECK(clock_ms() - t0 < SMSG_QUIET_MS);
	close(sv[0]);
	close(sv[1]);
}

TEST(overlong_request_is_refused)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	char req[16];
	CHECK(smsg_init(&b, sv[1], 2000) == 0);
	CHECK(write(sv[0], "GET a-name-longer-than-sixteen", 30) == 30);
	CHECK(smsg_read_var(&b, req, sizeof req) == -EMSGSIZE);
	close(sv[0]);
	close(sv[1]);
}

TEST(read_times_out)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	char req[16];
	CHECK(smsg_init(&b, sv[1], 100) == 0);
	CHECK(smsg_read_var(&b, req, sizeof req) == -ETIMEDOUT);
	CHECK(smsg_expect(&b, "OK", true, NULL, 0) == -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

TEST(file_goes_out_in_1024_byte_blocks)
{
	/* SOCK_SEQPACKET keeps each send() a record of its own, so the
	 * reader sees the sender's block sizes. */
	int sv[2];
	pair(SOCK_SEQPACKET, sv);
	struct smsg_conn a;
	CHECK(smsg_init(&a, sv[0], 2000) == 0);
	char path[] = "/tmp/ferry-smsg-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	char data[2500];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i * 7);
	CHECK(io_write_full(fd, data, sizeof data) == 0);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	bool lf;
	CHECK(smsg_send_file(&a, fd, sizeof data, &lf) == 0);
	char rec[4096];
	CHECK(read(sv[1], rec, sizeof rec) == 1024);
	CHECK(memcmp(rec, data, 1024) == 0);
	CHECK(read(sv[1], rec, sizeof rec) == 1024);
	CHECK(read(sv[1], rec, sizeof rec) == 452);
	CHECK(memcmp(rec, data + 2048, 452) == 0);
	/* A file shorter than announced is a local failure. */
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHECK(smsg_send_file(&a, fd, sizeof data + 1, &lf) == -ENODATA);
	CHECK(lf);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

TEST(second_text_without_reply_waits_the_gap)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn a;
	CHECK(smsg_init(&a, sv[0], 2000) == 0);
	long long t0 = clock_ms();
	CHECK(smsg_send_text(&a, "OK") == 0);
	CHECK(clock_ms() - t0 < SMSG_GAP_MS);
	CHECK(smsg_send_text(&a, "DONE") == 0);
	CHECK(clock_ms() - t0 >= SMSG_GAP_MS);
	char got[8] = {0};
	CHECK(read(sv[1], got, sizeof got - 1) == 6);
	CHECK_STR(got, "OKDONE");
	close(sv[0]);
	close(sv[1]);
}

TEST(write_error_drains_the_rest)
{
	int sv[2];
	pair(SOCK_STREAM, sv);
	struct smsg_conn b;
	CHECK(smsg_init(&b, sv[1], 2000) == 0);
	int ro = open("/dev/null", O_RDONLY);
	CHECK(write(sv[0], "0123456789DONE", 14) == 14);
	bool lf = false;
	CHECK(smsg_recv_file(&b, ro, 10, &lf) == -EBADF);
	CHECK(lf);
	CHECK(smsg_expect(&b, "DONE", false, NULL, 0) == 0);
	close(ro);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN_ONE(size_is_eight_bytes_big_endian);
	RUN_ONE(merged_fixed_messages_read_apart);
	RUN_ONE(unexpected_text_is_a_protocol_error);
	RUN_ONE(error_message_ends_at_close_or_quiet);
	RUN_ONE(request_split_into_single_bytes);
	RUN_ONE(request_ending_in_lf_needs_no_quiet_period);
	RUN_ONE(overlong_request_is_refused);
	RUN_ONE(read_times_out);
	RUN_ONE(file_goes_out_in_1024_byte_blocks);
	RUN_ONE(second_text_without_reply_waits_the_gap);
	RUN_ONE(write_error_drains_the_rest);
	return check_tests_failed != 0;
}
