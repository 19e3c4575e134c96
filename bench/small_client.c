/*
 * small_client - the load client of `make bench` row 3.
 *
 *   small_client PORT USER PASSWORD COUNT [put PREFIX | list VERB DIR]
 *
 * Logs in on 127.0.0.1:PORT and retrieves small/f0000 .. small/f(COUNT-1)
 * over that one control connection: for each file EPSV, connect, RETR, read
 * the data connection to EOF, then the 226. With "put PREFIX" it uploads
 * COUNT files of 16 KiB instead, PREFIX0000 .. : EPSV, connect, STOR, send,
 * close, then the 226. With "list VERB DIR" it sends "VERB DIR" (LIST, NLST,
 * MLSD) COUNT times, reading each listing like a download. Prints "SECONDS
 * BYTES" for the transfer loop (login excluded) on stdout and exits 0; any
 * unexpected reply or socket error is reported on stderr with exit status 1.
 *
 * It is C so that the client costs a fraction of what the server does per
 * file and the row measures servers; a Python loop needed 200-240 us per
 * file, more than any server. Replies are read with ferry's own line reader
 * and reply parser (src/lib). Every socket wait times out after 60 s.
 */
#include "ferry_limits.h"
#include "ftpaddr.h"
#include "line.h"
#include "num.h"
#include "reply.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { DATA_BUF = 256 * 1024, UPLOAD_SIZE = 16 * 1024, WAIT_SECONDS = 60 };

/* The control connection: bytes read, not yet fed to the line reader. */
struct control {
	int fd;
	char in[4096];
	size_t pos, len;
	struct line_reader lr;
	struct reply_parser rp;
};

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("small_client: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int dial(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = WAIT_SECONDS };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect to port %u: %s", port, strerror(errno));
	return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("send: %s", w < 0 ? strerror(errno) : "no progress");
		p += w;
		n -= (size_t)w;
	}
}

/* Reads one complete reply with ferry's own parsers; returns its code, its
 * text in c->rp.text. */
static int read_reply(struct control *c)
{
	reply_parser_reset(&c->rp);
	for (;;) {
		while (c->pos < c->len) {
			size_t used = 0;
			enum line_result r = line_feed(&c->lr, c->in + c->pos, c->len - c->pos, &used);
			c->pos += used;
			if (r == LINE_MORE)
				break;
			if (r == LINE_TOO_LONG)
				die("reply line longer than %d bytes", FERRY_LINE_MAX);
			int fed = reply_parser_feed(&c->rp, c->lr.line.data);
			line_reset(&c->lr);
			if (fed < 0)
				die("bad reply: %s", strerror(-fed));
			if (fed == 1)
				return c->rp.code;
		}
		ssize_t r = recv(c->fd, c->in, sizeof c->in, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("control connection: %s", r < 0 ? strerror(errno) : "closed by the server");
		c->pos = 0;
		c->len = (size_t)r;
	}
}

/* Sends a command and checks that the reply's first digit is want's. */
static void command(struct control *c, const char *text, int want)
{
	char out[600];
	int n = snprintf(out, sizeof out, "%s\r\n", text);

	if (n < 0 || (size_t)n >= sizeof out)
		die("command too long");
	send_all(c->fd, out, (size_t)n);
	int code = read_reply(c);
	if (code / 100 != want / 100)
		die("%.4s: %d %s", text, code, c->rp.text.data);
}

static long number(const char *s, long lo, long hi, const char *what)
{
	long v;

	if (num_parse_long(s, lo, hi, &v) != 0)
		die("%s must be a number from %ld to %ld: %s", what, lo, hi, s);
	return v;
}

int main(int argc, char **argv)
{
	static char data[DATA_BUF];
	static struct control c;
	char text[600];
	struct timespec t0, t1;
	unsigned long long total = 0;
	int one = 1;

	bool put = argc == 7 && strcmp(argv[5], "put") == 0;
	bool list = argc == 8 && strcmp(argv[5], "list") == 0;
	if (argc != 5 && !put && !list)
		die("usage: small_client PORT USER PASSWORD COUNT [put PREFIX | list VERB DIR]");
	unsigned port = (unsigned)number(argv[1], 1, 65535, "PORT");
	long count = number(argv[4], 0, 10000, "COUNT"); /* small/f0000 .. small/f9999 */
	const char *prefix = put ? argv[6] : "";
	if (strlen(prefix) > 400 || (list && strlen(argv[6]) + strlen(argv[7]) > 400))
		die("PREFIX, VERB or DIR longer than 400 bytes");
	for (size_t k = 0; k < UPLOAD_SIZE; k++)
		data[k] = (char)('a' + k % 26);

	line_init(&c.lr, FERRY_LINE_MAX, false);
	reply_parser_init(&c.rp, FERRY_REPLY_MAX);
	c.fd = dial(port);
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (read_reply(&c) != 220)
		die("greeting: %s", c.rp.text.data);
	snprintf(text, sizeof text, "USER %.500s", argv[2]);
	command(&c, text, 331);
	snprintf(text, sizeof text, "PASS %.500s", argv[3]);
	command(&c, text, 230);
	command(&c, "TYPE I", 200);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < count; i++) {
		int dport;
		command(&c, "EPSV", 229);
		if (ftp_epsv_reply_parse(c.rp.text.data, &dport) != 0)
			die("EPSV reply without a port: %s", c.rp.text.data);
		int d = dial((unsigned)dport);
		int n = put ? snprintf(text, sizeof text, "STOR %s%04ld\r\n", prefix, i)
			: list ? snprintf(text, sizeof text, "%s %s\r\n", argv[6], argv[7])
			       : snprintf(text, sizeof text, "RETR small/f%04ld\r\n", i);
		send_all(c.fd, text, (size_t)n);
		int code = read_reply(&c);
		if (code != 150 && code != 125)
			die("%.*s: %d %s", n - 2, text, code, c.rp.text.data);
		if (put) {
			send_all(d, data, UPLOAD_SIZE);
			total += UPLOAD_SIZE;
		}
		while (!put) {
			ssize_t r = recv(d, data, sizeof data, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				die("data connection: %s", strerror(errno));
			if (r == 0)
				break;
			total += (unsigned long long)r;
		}
		close(d);
		code = read_reply(&c);
		if (code != 226)
			die("after %.*s: %d %s", n - 2, text, code, c.rp.text.data);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	command(&c, "QUIT", 221);
	printf("%.6f %llu\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       total);
	return 0;
}
