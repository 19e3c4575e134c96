/* comp431.c - ferry --compat comp431 DATAPORT: seed 004's FTP client.
 *
 * Reads the client language on stdin, one request per line:
 *   CONNECT host port   opens a session: USER anonymous, PASS guest@,
 *                       SYST, TYPE I
 *   GET path            PORT (active mode, the control connection's local
 *                       address, DATAPORT for the first GET and one more
 *                       for each later GET), RETR path, the file stored as
 *                       retr_files/fileN
 *   QUIT                QUIT, the session ends; reading goes on
 * and prints the transcript exactly as seed 004 shows it: each input line
 * echoed, an "accepted" line, each command sent (but QUIT), each reply as
 * "FTP reply CODE accepted. Text is: TEXT". The error lines the seed
 * leaves open are fixed in docs/PROTOCOL.md. Each wait for the server is
 * bounded; the exit code is 0 when stdin ends, 2 for bad usage. */
#include "seedmodes.h"

#include "ftpaddr.h"
#include "ferry_limits.h"
#include "line.h"
#include "net.h"
#include "reply.h"
#include "sayline.h"
#include "sys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bounds on connecting, on each wait for a reply and on each wait for
 * data. */
#define C431_CONNECT_MS 10000
#define C431_REPLY_MS 30000
#define C431_DATA_MS 30000
/* After a final reply with no data connection yet, how long a connection
 * the server made just before it may take to show up. */
#define C431_LATE_DATA_MS 500
#define C431_DIR "retr_files"

struct c431 {
	int ctrl;                      /* control connection; -1 outside a session */
	struct sockaddr_storage local; /* its local address: where PORT points */
	struct sockaddr_storage peer;  /* its peer: the only host data may come from */
	struct line_reader lr;
	char in[FERRY_CTRL_READ];      /* control bytes read but not yet parsed */
	size_t inpos, inlen;
	long next_port;                /* data port of the next GET */
	unsigned files;                /* files stored so far, across sessions */
};

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say_line(fmt, ap);
	va_end(ap);
}

static void end_session(struct c431 *k)
{
	fd_close(&k->ctrl);
	k->inpos = k->inlen = 0;
	line_reset(&k->lr);
}

/* --- the control connection ------------------------------------------ */

/* IPv4 only: PORT cannot name anything else. */
static int connect_v4(const char *host, int port)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char portstr[8];
	snprintf(portstr, sizeof portstr, "%d", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return -EHOSTUNREACH;
	int fd = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		fd = net_connect_start(&ss, NULL, false);
		if (fd < 0)
			continue;
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (io_wait(fd, POLLOUT, C431_CONNECT_MS) > 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			break;
		close(fd);
		fd = -ECONNREFUSED;
	}
	freeaddrinfo(res);
	return fd;
}

static int ctrl_send(struct c431 *k, const char *cmd)
{
	char line[FERRY_LINE_MAX + 3];
	int n = snprintf(line, sizeof line, "%s\r\n", cmd);
	if (n < 0 || (size_t)n >= sizeof line)
		return -EMSGSIZE;
	size_t done = 0;
	while (done < (size_t)n) {
		ssize_t r = send(k->ctrl, line + done, (size_t)n - done, MSG_NOSIGNAL);
		if (r >= 0) {
			done += (size_t)r;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (io_wait(k->ctrl, POLLOUT, C431_REPLY_MS) <= 0)
				return -ETIMEDOUT;
		} else if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* Next control line into k->lr.line. 0, or a negative errno when the
 * connection ended or stalled. Overlong lines come back as -EMSGSIZE. */
static int ctrl_line(struct c431 *k)
{
	line_reset(&k->lr);
	for (;;) {
		if (k->inpos < k->inlen) {
			size_t used;
			enum line_result lres = line_feed(&k->lr, k->in + k->inpos, k->inlen - k->inpos, &used);
			k->inpos += used;
			if (lres == LINE_READY)
				return 0;
			if (lres == LINE_TOO_LONG)
				return -EMSGSIZE;
			continue;
		}
		int w = io_wait(k->ctrl, POLLIN, C431_REPLY_MS);
		if (w == 0)
			return -ETIMEDOUT;
		if (w < 0)
			return w;
		ssize_t r = io_read_some(k->ctrl, k->in, sizeof k->in);
		if (r == -EAGAIN)
			continue;
		if (r <= 0)
			return r < 0 ? (int)r : -ECONNRESET;
		k->inpos = 0;
		k->inlen = (size_t)r;
	}
}

/* "ddd text": the code, or 0 when the line is not a reply line. */
static int reply_code_of(const char *s)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
		return 0;
	int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return code >= 100 && code <= 599 ? code : 0;
}

/* Reads one reply and prints it the seed's way. Returns its code; 0 when
 * it was malformed (the error line printed, the session goes on); a
 * negative errno when the connection is gone (the session ended). */
static int reply(struct c431 *k)
{
	int r = ctrl_line(k);
	if (r < 0) {
		say("ERROR -- connection closed");
		end_session(k);
		return r;
	}
	const char *s = k->lr.line.data;
	int code = reply_code_of(s);
	if (!code) {
		say("ERROR -- reply-code");
		return 0;
	}
	if ((s[3] != ' ' && s[3] != '-') || s[4] == '\0' || k->lr.bad) {
		say("ERROR -- reply-text");
		return 0;
	}
	char text[FERRY_LINE_MAX];
	snprintf(text, sizeof text, "%s", s + 4);
	if (s[3] == '-') {
		/* Multi-line reply (RFC 959 4.2): its first line speaks for it;
		 * read on to the line "ddd " that ends it. */
		do {
			if ((r = ctrl_line(k)) < 0) {
				say("ERROR -- connection closed");
				end_session(k);
				return r;
			}
		} while (!(reply_code_of(k->lr.line.data) == code && k->lr.line.data[3] == ' '));
	}
	say("FTP reply %d accepted. Text is: %s", code, text);
	return code;
}

/* Prints and sends cmd, then reads and prints its reply. */
static int command(struct c431 *k, const char *cmd, bool show)
{
	if (show)
		say("%s", cmd);
	if (ctrl_send(k, cmd) < 0) {
		say("ERROR -- connection closed");
		end_session(k);
		return -ECONNRESET;
	}
	return reply(k);
}

/* --- requests --------------------------------------------------------- */

static void do_connect(struct c431 *k, const char *host, int port)
{
	if (k->ctrl >= 0)
		end_session(k); /* a new CONNECT ends the old session (seed 004) */
	say("CONNECT accepted for FTP server at host %s and port %d", host, port);
	int fd = connect_v4(host, port);
	if (fd < 0 || net_local_addr(fd, &k->local) < 0 || net_peer_addr(fd, &k->peer) < 0) {
		if (fd >= 0)
			close(fd);
		say("CONNECT failed");
		return;
	}
	k->ctrl = fd;
	int code = reply(k);
	if (code <= 0 || reply_is_error(code))
		return;
	/* Login stops at the first reply that is not positive; the session
	 * stays open for QUIT. A 230 to USER needs no password. */
	code = command(k, "USER anonymous", true);
	if (code == 331)
		code = command(k, "PASS guest@", true);
	if (code < 200 || code >= 300)
		return;
	if ((code = command(k, "SYST", true)) < 200 || code >= 300)
		return;
	(void)command(k, "TYPE I", true);
}

/* Waits for the server's data connection (or its final reply, when the
 * data connection failed), stores the file, reads the final reply. */
static void receive_file(struct c431 *k, int lfd)
{
	char path[64];
	snprintf(path, sizeof path, C431_DIR "/file%u", k->files + 1);
	int data = -1, out = -1, final = 0;
	bool stored, failed = false;
	for (;;) {
		/* Before the final reply both can come; after it, only a data
		 * connection the server opened just before replying. Control
		 * bytes already buffered count as a readable connection. */
		struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = k->ctrl, .events = POLLIN}};
		bool buffered = !final && k->inpos < k->inlen;
		int w = buffered ? 0 : poll(p, final ? 1 : 2, final ? C431_LATE_DATA_MS : C431_DATA_MS);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 || (w == 0 && !buffered)) {
			if (!final) {
				say("ERROR -- connection closed");
				end_session(k);
			}
			break;
		}
		if (!buffered && (p[0].revents & POLLIN)) {
			struct sockaddr_storage from;
			socklen_t sl = sizeof from;
			data = accept4(lfd, (struct sockaddr *)&from, &sl, SOCK_CLOEXEC);
			if (data < 0)
				continue;
			if (!net_same_host(&from, &k->peer)) {
				fd_close(&data); /* only the server may send the file */
				continue;
			}
			break;
		}
		final = reply(k);
		if (final > 0 && reply_is_preliminary(final)) {
			final = 0; /* another 1xx: still waiting */
			continue;
		}
		if (final <= 0 || reply_is_error(final))
			break; /* 425 and the like: no data connection will come */
	}
	if (data >= 0) {
		if (mkdir(C431_DIR, 0755) < 0 && errno != EEXIST)
			failed = true;
		if (!failed)
			out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out < 0)
			failed = true;
		char b[FERRY_XFER_BUF];
		for (;;) {
			if (io_wait(data, POLLIN, C431_DATA_MS) <= 0) {
				failed = true;
				break;
			}
			ssize_t r = io_read_some(data, b, sizeof b);
			if (r == 0)
				break;
			if (r < 0) {
				failed = true;
				break;
			}
			if (out >= 0 && io_write_full(out, b, (size_t)r) < 0)
				failed = true;
		}
		fd_close(&data);
		if (out >= 0 && close(out) < 0)
			failed = true;
		if (!final && k->ctrl >= 0)
			final = reply(k);
		stored = !failed && final > 0 && final < 300;
		if (!stored && out >= 0)
			unlink(path);
		if (stored)
			k->files++;
		if (failed && final > 0)
			say("GET failed, unable to store %s", path);
	}
}

static void do_get(struct c431 *k, const char *path)
{
	say("GET accepted for %s", path);
	long port = k->next_port++;
	struct sockaddr_storage addr = k->local;
	net_addr_unmap(&addr);
	char portarg[64];
	int lfd = -1;
	if (port <= 65535) {
		net_set_port(&addr, (int)port);
		if (ftp_port_format(&addr, portarg, sizeof portarg) == 0)
			lfd = net_listen_addr(&addr, (int)port, (int)port, NULL);
	}
	if (lfd < 0) {
		say("GET failed, FTP-data port not allocated.");
		return;
	}
	char cmd[FERRY_LINE_MAX];
	snprintf(cmd, sizeof cmd, "PORT %s", portarg);
	int code = command(k, cmd, true);
	if (code > 0 && reply_is_success(code)) {
		snprintf(cmd, sizeof cmd, "RETR %s", path);
		code = command(k, cmd, true);
		if (code > 0 && reply_is_preliminary(code))
			receive_file(k, lfd);
	}
	close(lfd);
}

static void do_quit(struct c431 *k)
{
	say("QUIT accepted, terminating FTP client");
	/* The seed's transcript does not show the QUIT it sends. */
	if (command(k, "QUIT", false) >= 0)
		end_session(k);
}

/* --- the client language ---------------------------------------------- */

/* <element> is letters, digits and hyphens, starting with a letter or
 * digit, elements joined by single dots: host names and dotted quads. */
static bool valid_host(const char *h, size_t n)
{
	size_t el = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (c == '.') {
			if (el == 0 || h[i - 1] == '-')
				return false;
			el = 0;
		} else if (isalnum(c) || (c == '-' && el > 0)) {
			el++;
		} else {
			return false;
		}
	}
	return el > 0 && h[n - 1] != '-';
}

static bool is_sp(char c)
{
	return c == ' ' || c == '\t';
}

static void request(struct c431 *k, char *line)
{
	size_t n = strcspn(line, " \t");
	char *p = line + n;
	if (n == 7 && strncasecmp(line, "CONNECT", 7) == 0) {
		char *host = p;
		while (is_sp(*host))
			host++;
		size_t hl = strcspn(host, " \t");
		if (host == p || !valid_host(host, hl)) {
			say("ERROR -- server-host");
			return;
		}
		char *port = host + hl;
		while (is_sp(*port))
			port++;
		size_t pl = strspn(port, "0123456789");
		char *rest = port + pl;
		while (is_sp(*rest))
			rest++;
		if (port == host + hl || pl == 0 || pl > 5 || *rest) {
			say("ERROR -- server-port");
			return;
		}
		port[pl] = '\0';
		unsigned long v = strtoul(port, NULL, 10);
		if (v == 0 || v > 65535) {
			say("ERROR -- server-port");
			return;
		}
		host[hl] = '\0';
		do_connect(k, host, (int)v);
	} else if (n == 3 && strncasecmp(line, "GET", 3) == 0) {
		char *path = p;
		while (is_sp(*path))
			path++;
		bool ok = path != p && *path;
		for (const char *c = path; ok && *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				ok = false;
		if (!ok)
			say("ERROR -- pathname");
		else if (k->ctrl < 0)
			say("ERROR -- expecting CONNECT");
		else
			do_get(k, path);
	} else if (n == 4 && strncasecmp(line, "QUIT", 4) == 0) {
		while (is_sp(*p))
			p++;
		if (*p)
			say("ERROR -- request");
		else if (k->ctrl < 0)
			say("ERROR -- expecting CONNECT");
		else
			do_quit(k);
	} else {
		say("ERROR -- request");
	}
}

int comp431_client_main(int argc, char **argv)
{
	const char *prog = argc > 0 ? argv[0] : "ferry";
	char *end;
	unsigned long port = 0;
	if (argc == 2) {
		errno = 0;
		port = strtoul(argv[1], &end, 10);
		if (errno || end == argv[1] || *end || !isdigit((unsigned char)argv[1][0]))
			port = 0;
	}
	if (port == 0 || port > 65535) {
		fprintf(stderr, "usage: %s --compat comp431 DATAPORT  (requests on stdin)\n", prog);
		return 2;
	}
	static struct c431 k;
	k.ctrl = -1;
	k.next_port = (long)port;
	line_init(&k.lr, FERRY_LINE_MAX, false);

	/* Each input line is echoed exactly as read (NUL bytes too), without
	 * its line end (LF or CRLF). One longer than any request may be is
	 * echoed as it comes, never held whole, and refused, never split. */
	char line[FERRY_LINE_MAX + 2];
	for (;;) {
		size_t len = 0;
		bool spilled = false; /* too long: being echoed as read */
		bool cr = false;      /* a CR held back: the line end's if LF follows */
		int c;
		while ((c = getchar()) != EOF && c != '\n') {
			if (!spilled && len < sizeof line - 1) {
				line[len++] = (char)c;
				continue;
			}
			if (!spilled) {
				spilled = true;
				cr = line[len - 1] == '\r';
				fwrite(line, 1, cr ? len - 1 : len, stdout);
			}
			if (cr)
				putchar('\r');
			cr = c == '\r';
			if (!cr)
				putchar(c);
		}
		if (c == EOF && len == 0)
			break;
		if (!spilled && len > 0 && line[len - 1] == '\r')
			len--;
		if (!spilled)
			fwrite(line, 1, len, stdout);
		say("%s", "");
		line[len] = '\0';
		if (spilled || len > FERRY_LINE_MAX || memchr(line, '\0', len))
			say("ERROR -- request");
		else
			request(&k, line);
		if (c == EOF)
			break;
	}
	end_session(&k);
	line_free(&k.lr);
	return 0;
}
