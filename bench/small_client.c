/*
 * small_client - the load client of `make bench` row 3.
 *
 *   small_client PORT USER PASSWORD COUNT
 *
 * Logs in on 127.0.0.1:PORT and retrieves small/f0000 .. small/f(COUNT-1)
 * over that one control connection: for each file EPSV, connect, RETR, read
 * the data connection to EOF, then the 226. Prints "SECONDS BYTES" for the
 * retrieval loop (login excluded) on stdout and exits 0; any unexpected reply
 * or socket error is reported on stderr with exit status 1.
 *
 * It is C so that the client costs a fraction of what the server does per
 * file and the row measures servers; a Python loop needed 200-240 us per
 * file, more than any server. Every socket wait times out after 60 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { REPLY_MAX = 8192, DATA_BUF = 256 * 1024, WAIT_SECONDS = 60 };

struct control {
	int fd;
	char buf[REPLY_MAX];
	size_t len;		/* bytes of buf not yet consumed */
	char open_code[4];	/* "ddd" while inside a multi-line reply, else "" */
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

static int is_code(const char *p)
{
	return p[0] >= '1' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9';
}

/* Reads one complete reply (RFC 959 4.2: a multi-line reply ends at the
 * line that starts with its code and a space); returns its code and copies
 * its last line (NUL-terminated, CRLF kept) into line. */
static int read_reply(struct control *c, char *line, size_t cap)
{
	for (;;) {
		char *nl;
		while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t n = (size_t)(nl - c->buf) + 1;
			int coded = n >= 4 && is_code(c->buf);
			int last = 0;
			if (c->open_code[0] == '\0') {
				if (!coded)
					die("reply without a code: %.*s", (int)n, c->buf);
				if (c->buf[3] == '-')
					memcpy(c->open_code, c->buf, 3);
				else
					last = 1;
			} else if (coded && memcmp(c->buf, c->open_code, 3) == 0 && c->buf[3] == ' ') {
				c->open_code[0] = '\0';
				last = 1;
			}
			int code = last ? atoi(c->buf) : 0;
			if (last) {
				size_t m = n < cap ? n : cap - 1;
				memcpy(line, c->buf, m);
				line[m] = '\0';
			}
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			if (last)
				return code;
		}
		if (c->len == sizeof c->buf)
			die("reply line longer than %d bytes", REPLY_MAX);
		ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("control connection: %s", r < 0 ? strerror(errno) : "closed by the server");
		c->len += (size_t)r;
	}
}

/* Sends a command and checks that the reply's first digit is want's. */
static void command(struct control *c, const char *text, int want, char *line, size_t cap)
{
	char out[600];
	int n = snprintf(out, sizeof out, "%s\r\n", text);

	if (n < 0 || (size_t)n >= sizeof out)
		die("command too long");
	send_all(c->fd, out, (size_t)n);
	int code = read_reply(c, line, cap);
	if (code / 100 != want / 100)
		die("%.4s: %s", text, line);
}

static unsigned epsv_port(const char *line)
{
	const char *p = strstr(line, "(|||");
	char *end;
	unsigned long port;

	if (p == NULL)
		die("EPSV reply without a port: %s", line);
	port = strtoul(p + 4, &end, 10);
	if (*end != '|' || port == 0 || port > 65535)
		die("EPSV reply with a bad port: %s", line);
	return (unsigned)port;
}

static unsigned long number(const char *s, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0')
		die("%s is not a number: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	static char data[DATA_BUF];
	static struct control c;
	char line[REPLY_MAX], text[600];
	struct timespec t0, t1;
	unsigned long long total = 0;
	int one = 1;

	if (argc != 5)
		die("usage: small_client PORT USER PASSWORD COUNT");
	unsigned port = (unsigned)number(argv[1], "PORT");
	unsigned long count = number(argv[4], "COUNT");
	if (count > 10000)
		die("COUNT is at most 10000 (small/f0000 .. small/f9999)");

	c.fd = dial(port);
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (read_reply(&c, line, sizeof line) != 220)
		die("greeting: %s", line);
	snprintf(text, sizeof text, "USER %.500s", argv[2]);
	command(&c, text, 331, line, sizeof line);
	snprintf(text, sizeof text, "PASS %.500s", argv[3]);
	command(&c, text, 230, line, sizeof line);
	command(&c, "TYPE I", 200, line, sizeof line);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long i = 0; i < count; i++) {
		command(&c, "EPSV", 229, line, sizeof line);
		int d = dial(epsv_port(line));
		int n = snprintf(text, sizeof text, "RETR small/f%04lu\r\n", i);
		send_all(c.fd, text, (size_t)n);
		int code = read_reply(&c, line, sizeof line);
		if (code != 150 && code != 125)
			die("RETR small/f%04lu: %s", i, line);
		for (;;) {
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
		if (read_reply(&c, line, sizeof line) != 226)
			die("after RETR small/f%04lu: %s", i, line);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	command(&c, "QUIT", 221, line, sizeof line);
	printf("%.6f %llu\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       total);
	return 0;
}
