#include "ftpc.h"

#include "ftpaddr.h"
#include "net.h"
#include "sys.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* After ABOR, how long to wait for the second reply some servers send
 * (426 for the transfer, then 226 for ABOR itself). */
#define FTPC_ABOR_GRACE_MS 500
/* QUIT is a courtesy: do not make the user wait for a slow goodbye. */
#define FTPC_QUIT_WAIT_MS 2000

static const char *const state_names[] = {
	[FTPC_DISCONNECTED] = "disconnected",
	[FTPC_CONNECTED] = "connected",
	[FTPC_LOGGED_IN] = "logged in",
};

const char *ftpc_state_name(enum ftpc_state s)
{
	return state_names[s];
}

void ftpc_set_state(struct ftpc *c, enum ftpc_state s)
{
	if (c->state != s && c->trace)
		fprintf(c->trace, "*** %s -> %s\n", state_names[c->state], state_names[s]);
	c->state = s;
	if (s == FTPC_DISCONNECTED) {
		secure_end(c->ctrl, &c->ctrl_ssl, -1, 0);
		c->prot_private = false;
		fd_close(&c->ctrl);
		c->in_pos = c->in_len = 0;
		line_reset(&c->lr);
		c->server_type = 0;
		c->no_epsv = c->no_eprt = false;
		memset(&c->feat, 0, sizeof c->feat);
	}
}

static void set_err(struct ftpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct ftpc *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(c->err, sizeof c->err, "error");
}

/* A failure after which the dialogue cannot go on. */
static int fail_session(struct ftpc *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_session(struct ftpc *c, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(c->err, sizeof c->err, "connection lost");
	ftpc_set_state(c, FTPC_DISCONNECTED);
	return rc;
}

/* c->err from the last reply: its code and first line, made printable. */
int ftpc_fail_reply(struct ftpc *c)
{
	char text[FTPC_ERR_MAX - 8];
	const char *t = c->rp.text.data ? c->rp.text.data : "";
	size_t first = strcspn(t, "\n");
	if (first >= sizeof text)
		first = sizeof text - 1;
	memcpy(text, t, first);
	text[first] = '\0';
	reply_sanitize(text, text, sizeof text);
	set_err(c, "%d %s", c->rp.code, text);
	return c->rp.code;
}

void ftpc_init(struct ftpc *c, int timeout_ms)
{
	memset(c, 0, sizeof *c);
	c->ctrl = -1;
	c->timeout_ms = timeout_ms;
	c->passive = true;
	line_init(&c->lr, FERRY_LINE_MAX, true);
	reply_parser_init(&c->rp, FERRY_REPLY_MAX);
}

void ftpc_free(struct ftpc *c)
{
	ftpc_set_state(c, FTPC_DISCONNECTED);
	SSL_CTX_free(c->tls_ctx);
	c->tls_ctx = NULL;
	line_free(&c->lr);
	reply_parser_free(&c->rp);
}

static void trace_line(struct ftpc *c, const char *dir, const char *line)
{
	if (!c->trace)
		return;
	char clean[FERRY_LINE_MAX + 1];
	reply_sanitize(line, clean, sizeof clean);
	fprintf(c->trace, "%s %s\n", dir, clean);
}

static int remaining_ms(long long deadline)
{
	long long left = deadline - clock_ms();
	return left > 0 ? (int)left : 0;
}

/* Reads one complete reply (any code) before the deadline. Returns its
 * code or a negative errno (session dropped, c->err set). */
static int read_reply_until(struct ftpc *c, long long deadline)
{
	reply_parser_reset(&c->rp);
	for (;;) {
		while (c->in_pos < c->in_len) {
			size_t used = 0;
			enum line_result r = line_feed(&c->lr, c->in + c->in_pos, c->in_len - c->in_pos, &used);
			c->in_pos += used;
			if (r == LINE_MORE)
				break;
			if (r == LINE_TOO_LONG)
				return fail_session(c, -EMSGSIZE, "server sent a reply line longer than %d bytes",
						    FERRY_LINE_MAX);
			trace_line(c, "<--", c->lr.line.data);
			int fed = reply_parser_feed(&c->rp, c->lr.line.data);
			if (fed == -EPROTO) {
				char clean[64];
				reply_sanitize(c->lr.line.data, clean, sizeof clean);
				line_reset(&c->lr);
				return fail_session(c, -EPROTO, "server sent garbage instead of a reply: \"%s\"", clean);
			}
			line_reset(&c->lr);
			if (fed == -ENOBUFS)
				return fail_session(c, -EMSGSIZE, "server reply longer than %d bytes",
						    FERRY_REPLY_MAX);
			if (fed < 0)
				return fail_session(c, fed, "reading reply: %s", strerror(-fed));
			if (fed == 1) {
				if (c->rp.code == R_UNAVAILABLE) {
					/* 421: the server is closing the connection. */
					int code = c->rp.code;
					ftpc_fail_reply(c);
					ftpc_set_state(c, FTPC_DISCONNECTED);
					return code;
				}
				return c->rp.code;
			}
		}
		/* Do not wait for the end of an endless line. */
		if (c->lr.overlong)
			return fail_session(c, -EMSGSIZE, "server sent a reply line longer than %d bytes",
					    FERRY_LINE_MAX);
		c->in_pos = c->in_len = 0;
		ssize_t n = secure_read(c->ctrl, c->ctrl_ssl, c->in, sizeof c->in, remaining_ms(deadline));
		if (n == -EAGAIN)
			return fail_session(c, -ETIMEDOUT, "no reply from server within %d s",
					    c->timeout_ms / 1000);
		if (n == 0)
			return fail_session(c, -ECONNRESET, "connection closed by server");
		if (n == -EPROTO) {
			char why[160];
			return fail_session(c, -EPROTO, "reading reply: TLS: %s", secure_error_text(why, sizeof why));
		}
		if (n < 0)
			return fail_session(c, (int)n, "reading reply: %s", strerror((int)-n));
		c->in_len = (size_t)n;
	}
}

static int read_reply(struct ftpc *c)
{
	return read_reply_until(c, clock_ms() + c->timeout_ms);
}

/* Reads replies until a final (non-1xx) one, all within one timeout: a
 * server that sends 1xx after 1xx does not keep ferry waiting for ever. */
static int read_final_reply(struct ftpc *c)
{
	long long deadline = clock_ms() + c->timeout_ms;
	for (;;) {
		int code = read_reply_until(c, deadline);
		if (code < 0 || !reply_is_preliminary(code))
			return code;
	}
}

static int send_line(struct ftpc *c, const char *line)
{
	if (c->state == FTPC_DISCONNECTED) {
		set_err(c, "not connected");
		return -ENOTCONN;
	}
	size_t n = strlen(line);
	if (strpbrk(line, "\r\n")) {
		set_err(c, "a line break cannot be sent in a command");
		return -EINVAL;
	}
	if (n > FERRY_LINE_MAX) {
		set_err(c, "command longer than %d bytes", FERRY_LINE_MAX);
		return -EMSGSIZE;
	}
	if (c->trace) {
		if (strncasecmp(line, "PASS ", 5) == 0)
			fprintf(c->trace, "--> PASS ****\n");
		else
			trace_line(c, "-->", line);
	}
	char out[FERRY_LINE_MAX + 3];
	memcpy(out, line, n);
	memcpy(out + n, "\r\n", 2);
	int rc = secure_write_full(c->ctrl, c->ctrl_ssl, out, n + 2, c->timeout_ms);
	if (rc == -EAGAIN)
		return fail_session(c, -ETIMEDOUT, "server did not accept a command within %d s",
				    c->timeout_ms / 1000);
	if (rc == -EPROTO) {
		char why[160];
		return fail_session(c, rc, "sending command: TLS: %s", secure_error_text(why, sizeof why));
	}
	if (rc < 0)
		return fail_session(c, rc, "sending command: %s", strerror(-rc));
	return 0;
}

static int vformat(struct ftpc *c, char *out, size_t outlen, const char *fmt, va_list ap)
{
	int n = vsnprintf(out, outlen, fmt, ap);
	if (n < 0 || (size_t)n >= outlen) {
		set_err(c, "command longer than %d bytes", FERRY_LINE_MAX);
		return -EMSGSIZE;
	}
	return 0;
}

static int vcommand(struct ftpc *c, const char *fmt, va_list ap)
{
	char line[FERRY_LINE_MAX + 1];
	int rc = vformat(c, line, sizeof line, fmt, ap);
	if (rc == 0)
		rc = send_line(c, line);
	if (rc == 0)
		rc = read_final_reply(c);
	return rc;
}

int ftpc_command(struct ftpc *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vcommand(c, fmt, ap);
	va_end(ap);
	return rc;
}

int ftpc_command_ok(struct ftpc *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vcommand(c, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return rc;
	return reply_is_success(rc) ? 0 : ftpc_fail_reply(c);
}

int ftpc_reply_code(const struct ftpc *c)
{
	return c->rp.code;
}

const char *ftpc_reply_text(const struct ftpc *c)
{
	return c->rp.text.data ? c->rp.text.data : "";
}

void ftpc_print_reply(const struct ftpc *c, FILE *f)
{
	const char *t = ftpc_reply_text(c);
	char line[FERRY_LINE_MAX + 1];
	for (;;) {
		size_t n = strcspn(t, "\n");
		size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
		memcpy(line, t, k);
		line[k] = '\0';
		reply_sanitize(line, line, sizeof line);
		/* Lines between the first and the last are shown as they came
		 * (some servers start them with the code too, some with a space). */
		if (t == ftpc_reply_text(c))
			fprintf(f, "%d%c%s\n", c->rp.code, t[n] ? '-' : ' ', line);
		else if (t[n])
			fprintf(f, "%s\n", line);
		else
			fprintf(f, "%d %s\n", c->rp.code, line);
		if (!t[n])
			break;
		t += n + 1;
	}
}

static void set_socket_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* The TLS context, made once per process. */
static int tls_context(struct ftpc *c)
{
	if (c->tls_ctx)
		return 0;
	char why[FTPC_ERR_MAX];
	c->tls_ctx = secure_context(&c->tls, why, sizeof why);
	if (!c->tls_ctx) {
		set_err(c, "%s", why);
		return -EINVAL;
	}
	return 0;
}

/* The TLS handshake on the control connection; the session ends on failure. */
static int tls_control_handshake(struct ftpc *c)
{
	char why[FTPC_ERR_MAX];
	c->ctrl_ssl = secure_connect(c->tls_ctx, c->ctrl, c->host, c->tls.verify, NULL, c->timeout_ms, why,
				     sizeof why);
	if (!c->ctrl_ssl)
		return fail_session(c, -EPROTO, "%s", why);
	if (c->trace) {
		char d[128];
		secure_describe(c->ctrl_ssl, d, sizeof d);
		fprintf(c->trace, "*** control connection secured: %s\n", d);
	}
	return 0;
}

/* AUTH TLS after the greeting. A refusal ends the session when TLS is
 * required; when it is optional the session goes on in the clear with a
 * warning. A failed handshake ends it either way: the server agreed. */
static int tls_explicit(struct ftpc *c)
{
	int code = ftpc_command(c, "AUTH TLS");
	if (code < 0 || c->state == FTPC_DISCONNECTED)
		return code;
	if (code != R_AUTH_OK) {
		char reply[FTPC_ERR_MAX];
		ftpc_fail_reply(c);
		memcpy(reply, c->err, sizeof reply);
		if (c->tls.mode == SECURE_OPTIONAL) {
			snprintf(c->warning, sizeof c->warning,
				 "warning: server refused TLS (%.400s); continuing unencrypted", reply);
			return 0;
		}
		set_err(c, "server refused TLS (%.400s); not continuing unencrypted (--tls-optional allows it)",
			reply);
		ftpc_set_state(c, FTPC_DISCONNECTED);
		return code;
	}
	/* Bytes that came with the 234, before the handshake, would be read
	 * as protected replies afterwards: anyone on the path could forge a
	 * 230 (curl's CVE-2021-22947). A server sends nothing there. */
	if (c->in_pos < c->in_len || c->lr.line.len > 0)
		return fail_session(c, -EPROTO, "server sent more after its 234 reply to AUTH TLS; not going on");
	return tls_control_handshake(c);
}

int ftpc_connect(struct ftpc *c, const char *host, int port)
{
	if (c->state != FTPC_DISCONNECTED)
		ftpc_set_state(c, FTPC_DISCONNECTED);
	c->warning[0] = '\0';
	if (c->tls.mode != SECURE_OFF && tls_context(c) != 0)
		return -EINVAL;
	char why[FTPC_ERR_MAX - 32];
	int fd = net_connect(host, port, c->timeout_ms, why, sizeof why);
	if (fd < 0) {
		if (fd == -ETIMEDOUT)
			set_err(c, "%s: no answer within %d s", host, c->timeout_ms / 1000);
		else
			set_err(c, "cannot connect to %s", why);
		return fd;
	}
	c->ctrl = fd;
	set_socket_timeouts(fd, c->timeout_ms);
	net_nodelay(fd);
	net_peer_addr(fd, &c->peer);
	net_local_addr(fd, &c->local);
	net_addr_unmap(&c->peer);
	net_addr_unmap(&c->local);
	snprintf(c->host, sizeof c->host, "%s", host);
	c->port = port;
	c->user[0] = '\0';
	ftpc_set_state(c, FTPC_CONNECTED);
	if (c->tls.mode == SECURE_IMPLICIT) {
		int rc = tls_control_handshake(c);
		if (rc)
			return rc;
	}
	/* 120 ("ready in nnn minutes") may come first; the 220 still has to
	 * come within the one timeout. */
	long long deadline = clock_ms() + c->timeout_ms;
	int code;
	do
		code = read_reply_until(c, deadline);
	while (code == R_SERVICE_READY_SOON);
	if (code < 0)
		return code;
	if (code != R_READY) {
		ftpc_fail_reply(c);
		ftpc_set_state(c, FTPC_DISCONNECTED);
		return code;
	}
	if (c->tls.mode == SECURE_REQUIRED || c->tls.mode == SECURE_OPTIONAL)
		return tls_explicit(c);
	return 0;
}

bool ftpc_needs_password(const struct ftpc *c)
{
	return c->state == FTPC_CONNECTED && c->rp.code == R_NEED_PASSWORD;
}

/* PBSZ 0 and PROT P (PROT C when clear data was asked for) after a login
 * on a secured control connection. A server refusing PROT P ends the
 * session, unless TLS is optional: then data goes unencrypted, with a
 * warning. */
static int tls_protect_data(struct ftpc *c)
{
	c->prot_private = false;
	int rc = ftpc_command_ok(c, "PBSZ 0");
	if (rc < 0)
		return rc;
	char level = c->tls.clear_data ? 'C' : 'P';
	if (rc == 0)
		rc = ftpc_command_ok(c, "PROT %c", level);
	if (rc < 0)
		return rc;
	if (rc > 0 && level == 'P') {
		char reply[FTPC_ERR_MAX];
		memcpy(reply, c->err, sizeof reply);
		if (c->tls.mode == SECURE_OPTIONAL) {
			snprintf(c->warning, sizeof c->warning,
				 "warning: server refused to protect data connections (%.400s); data goes unencrypted",
				 reply);
			return 0;
		}
		return fail_session(c, rc, "server refused to protect data connections (%.400s)", reply);
	}
	c->prot_private = level == 'P';
	return 0;
}

/* Interprets the reply to USER or PASS that ended a login attempt. */
static int login_result(struct ftpc *c, const char *user)
{
	int code = c->rp.code;
	if (code == R_NEED_ACCOUNT) {
		set_err(c, "server asks for an account (ACCT), which ferry does not send");
		return code;
	}
	if (code != R_LOGGED_IN && code != R_NOT_NEEDED)
		return ftpc_fail_reply(c);
	snprintf(c->user, sizeof c->user, "%s", user);
	ftpc_set_state(c, FTPC_LOGGED_IN);
	return c->ctrl_ssl ? tls_protect_data(c) : 0;
}

int ftpc_login(struct ftpc *c, const char *user, const char *pass)
{
	if (c->state == FTPC_DISCONNECTED) {
		set_err(c, "not connected");
		return -ENOTCONN;
	}
	if (c->state == FTPC_LOGGED_IN)
		ftpc_set_state(c, FTPC_CONNECTED); /* USER starts a new login */
	int code = ftpc_command(c, "USER %s", user);
	if (code < 0)
		return code;
	if (code == R_NEED_PASSWORD) {
		if (!pass) {
			set_err(c, "password needed for %s", user);
			return -EACCES;
		}
		return ftpc_password(c, user, pass);
	}
	return login_result(c, user);
}

int ftpc_password(struct ftpc *c, const char *user, const char *pass)
{
	int code = ftpc_command(c, "PASS %s", pass);
	if (code < 0)
		return code;
	return login_result(c, user);
}

void ftpc_quit(struct ftpc *c)
{
	if (c->state == FTPC_DISCONNECTED)
		return;
	int saved = c->timeout_ms;
	if (c->timeout_ms > FTPC_QUIT_WAIT_MS)
		c->timeout_ms = FTPC_QUIT_WAIT_MS;
	if (ftpc_command(c, "QUIT") >= 0)
		secure_end(c->ctrl, &c->ctrl_ssl, 0, 0); /* close_notify, if it fits now */
	c->timeout_ms = saved;
	ftpc_set_state(c, FTPC_DISCONNECTED);
}

int ftpc_pwd(struct ftpc *c, char *out, size_t outlen)
{
	int rc = ftpc_command_ok(c, "PWD");
	if (rc != 0)
		return rc;
	const char *q = strchr(ftpc_reply_text(c), '"');
	size_t n = 0;
	for (q = q ? q + 1 : ""; *q && !(*q == '"' && q[1] != '"'); q++) {
		if (*q == '"')
			q++; /* "" is one quote */
		if (*q == '\n' || n + 1 >= outlen) {
			set_err(c, "PWD: unusable reply");
			return -EPROTO;
		}
		out[n++] = *q;
	}
	if (*q != '"' || n == 0) {
		set_err(c, "PWD: no quoted directory in the reply");
		return -EPROTO;
	}
	out[n] = '\0';
	return 0;
}

void ftpc_features(struct ftpc *c)
{
	memset(&c->feat, 0, sizeof c->feat);
	if (ftpc_command(c, "FEAT") != R_SYSTEM_STATUS)
		return;
	c->feat.known = true;
	const char *t = ftpc_reply_text(c);
	while (*t) {
		size_t n = strcspn(t, "\n");
		const char *f = t;
		while (f < t + n && *f == ' ')
			f++;
		size_t k = (size_t)(t + n - f);
#define FEAT_IS(name) (k >= sizeof(name) - 1 && strncasecmp(f, name, sizeof(name) - 1) == 0 && \
		       (k == sizeof(name) - 1 || f[sizeof(name) - 1] == ' '))
		if (FEAT_IS("MLST"))
			c->feat.mlst = true;
		else if (FEAT_IS("SIZE"))
			c->feat.size = true;
		else if (FEAT_IS("MDTM"))
			c->feat.mdtm = true;
		else if (FEAT_IS("REST"))
			c->feat.rest = true;
		else if (FEAT_IS("EPSV"))
			c->feat.epsv = true;
		else if (FEAT_IS("UTF8"))
			c->feat.utf8 = true;
#undef FEAT_IS
		t += n;
		if (*t)
			t++;
	}
}

int ftpc_set_type(struct ftpc *c, char type)
{
	if (c->server_type == type)
		return 0;
	int rc = ftpc_command_ok(c, "TYPE %c", type);
	if (rc == 0)
		c->server_type = type;
	return rc;
}

static int parse_u64(const char *s, uint64_t *out)
{
	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || (*end && *end != ' ' && *end != '\n'))
		return -EINVAL;
	*out = v;
	return 0;
}

int ftpc_size(struct ftpc *c, const char *path, uint64_t *size)
{
	int rc = ftpc_set_type(c, 'I');
	if (rc)
		return rc;
	rc = ftpc_command(c, "SIZE %s", path);
	if (rc < 0)
		return rc;
	if (rc != R_FILE_STATUS)
		return ftpc_fail_reply(c);
	if (parse_u64(ftpc_reply_text(c), size) != 0) {
		set_err(c, "server sent a malformed SIZE reply");
		return -EPROTO;
	}
	return 0;
}

/* Finishes a non-blocking connect within the timeout; blocking on success. */
static int finish_connect(struct ftpc *c, int fd)
{
	int w = io_wait(fd, POLLOUT, c->timeout_ms);
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (w == 0) {
		set_err(c, "data connection: no answer within %d s", c->timeout_ms / 1000);
		return -ETIMEDOUT;
	}
	if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		int e = w < 0 ? -w : soerr ? soerr : errno;
		set_err(c, "data connection: %s", strerror(e));
		return -e;
	}
	return fd_set_nonblock(fd, 0);
}

/* Whether a reply to EPSV says the server does not know it at all, as
 * opposed to a passing trouble (4xx: "425 all ports busy") that must not
 * turn EPSV off for the rest of the session. */
static bool epsv_unsupported(int code)
{
	return code == R_SYNTAX || code == R_BAD_ARGS || code == R_NOT_IMPLEMENTED ||
	       code == R_PROTO_NOT_SUPPORTED;
}

/* EPSV (or PASV), then connect to the control peer at the port given. */
static int open_passive(struct ftpc *c, struct ftpc_data *d)
{
	struct sockaddr_storage addr = c->peer;
	int port = -1;
	if (!c->no_epsv) {
		int code = ftpc_command(c, "EPSV");
		if (code < 0)
			return code;
		if (code == R_EPSV && ftp_epsv_reply_parse(ftpc_reply_text(c), &port) == 0)
			net_set_port(&addr, port);
		else if (code == R_EPSV || epsv_unsupported(code))
			c->no_epsv = true; /* unreadable or unknown: PASV from now on */
		else
			return ftpc_fail_reply(c); /* a 4xx passes: the next transfer asks again */
	}
	if (port < 0) {
		if (c->peer.ss_family != AF_INET) {
			set_err(c, "server refused EPSV, and PASV cannot reach an IPv6 host");
			return -EAFNOSUPPORT;
		}
		int code = ftpc_command(c, "PASV");
		if (code < 0)
			return code;
		if (code != R_PASV)
			return ftpc_fail_reply(c);
		struct sockaddr_storage named;
		if (ftp_pasv_reply_parse(ftpc_reply_text(c), &named) != 0) {
			set_err(c, "server sent a malformed PASV reply");
			return -EPROTO;
		}
		if (!net_same_host(&named, &c->peer) && c->trace) {
			char a[64], b[64];
			fprintf(c->trace, "*** PASV named %s, connecting to the control peer %s instead\n",
				net_host_str(&named, a, sizeof a), net_host_str(&c->peer, b, sizeof b));
		}
		net_set_port(&addr, net_port(&named));
	}
	int fd = net_connect_start(&addr, NULL, net_addrs_are_local(&c->peer, &c->local));
	if (fd < 0) {
		set_err(c, "data connection: %s", strerror(-fd));
		return fd;
	}
	int rc = finish_connect(c, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	d->fd = fd;
	return 0;
}

/* Listens on our control address, ephemeral port; EPRT (or PORT) names it. */
static int open_active(struct ftpc *c, struct ftpc_data *d)
{
	struct sockaddr_storage here;
	int lfd = net_listen_addr(&c->local, 0, 0, &here);
	if (lfd < 0) {
		set_err(c, "cannot listen for the data connection: %s", strerror(-lfd));
		return lfd;
	}
	net_addr_unmap(&here);
	if (net_addrs_are_local(&c->peer, &c->local))
		net_unpaced(lfd); /* as open_passive's connections are */
	d->listen_fd = lfd;
	char arg[128];
	if (!c->no_eprt) {
		if (ftp_eprt_format(&here, arg, sizeof arg) != 0) {
			set_err(c, "cannot format EPRT");
			return -EINVAL;
		}
		int code = ftpc_command(c, "EPRT %s", arg);
		if (code < 0)
			return code;
		if (reply_is_success(code))
			return 0;
		if (here.ss_family != AF_INET)
			return ftpc_fail_reply(c);
		c->no_eprt = true;
	}
	if (ftp_port_format(&here, arg, sizeof arg) != 0) {
		set_err(c, "server refused EPRT, and PORT cannot name an IPv6 address");
		return -EAFNOSUPPORT;
	}
	return ftpc_command_ok(c, "PORT %s", arg);
}

/* Accepts the server's connection; only the control peer may make it. */
static int accept_active(struct ftpc *c, struct ftpc_data *d)
{
	long long deadline = clock_ms() + c->timeout_ms;
	for (;;) {
		int w = io_wait(d->listen_fd, POLLIN, remaining_ms(deadline));
		if (w == 0) {
			set_err(c, "server did not open the data connection within %d s", c->timeout_ms / 1000);
			return -ETIMEDOUT;
		}
		if (w < 0) {
			set_err(c, "waiting for the data connection: %s", strerror(-w));
			return w;
		}
		struct sockaddr_storage from;
		socklen_t sl = sizeof from;
		int fd = accept4(d->listen_fd, (struct sockaddr *)&from, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
				continue;
			set_err(c, "accepting the data connection: %s", strerror(errno));
			return -errno;
		}
		if (!net_same_host(&from, &c->peer)) {
			if (c->trace) {
				char a[64];
				fprintf(c->trace, "*** refused a data connection from %s\n",
					net_host_str(&from, a, sizeof a));
			}
			close(fd);
			continue;
		}
		fd_close(&d->listen_fd);
		d->fd = fd;
		return 0;
	}
}

/* The data connection's handshake (the server is the TLS server, in
 * active mode too), resuming the control connection's session: it is read
 * now, as TLS 1.3 delivers it after the control handshake. The data
 * connection gets a copy: OpenSSL marks a session not resumable when a
 * connection using it ends without close_notify (an aborted transfer),
 * and the next data connection still needs it. */
static int tls_data_handshake(struct ftpc *c, struct ftpc_data *d)
{
	char why[FTPC_ERR_MAX - 32];
	SSL_SESSION *current = SSL_get1_session(c->ctrl_ssl);
	SSL_SESSION *session = current ? SSL_SESSION_dup(current) : NULL;
	SSL_SESSION_free(current);
	d->ssl = secure_connect(c->tls_ctx, d->fd, c->host, c->tls.verify, session, c->timeout_ms, why,
				sizeof why);
	SSL_SESSION_free(session);
	if (!d->ssl) {
		set_err(c, "data connection: %s", why);
		return -EPROTO;
	}
	/* The control connection forgives a peer that closes without
	 * close_notify; data must not: only close_notify proves that a
	 * download was not cut short by a forged FIN (d->cut_tls). */
	SSL_clear_options(d->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (c->trace)
		fprintf(c->trace, "*** data connection secured (%s)\n",
			SSL_session_reused(d->ssl) ? "session resumed" : "new session");
	return 0;
}

int ftpc_data_open(struct ftpc *c, struct ftpc_data *d, uint64_t rest, const char *cmd)
{
	d->fd = d->listen_fd = -1;
	d->ssl = NULL;
	d->cut_tls = false;
	if (c->state != FTPC_LOGGED_IN) {
		set_err(c, c->state == FTPC_DISCONNECTED ? "not connected" : "not logged in");
		return -ENOTCONN;
	}
	int rc = c->passive ? open_passive(c, d) : open_active(c, d);
	if (rc == 0 && rest > 0) {
		rc = ftpc_command(c, "REST %llu", (unsigned long long)rest);
		if (rc >= 0)
			rc = rc == R_PENDING ? 0 : ftpc_fail_reply(c);
	}
	if (rc == 0)
		rc = send_line(c, cmd);
	if (rc == 0) {
		rc = read_reply(c);
		if (rc >= 0)
			rc = reply_is_preliminary(rc) ? 0 : ftpc_fail_reply(c);
	}
	if (rc == 0 && !c->passive)
		rc = accept_active(c, d);
	if (rc == 0 && c->prot_private)
		rc = tls_data_handshake(c, d);
	if (rc != 0) {
		secure_end(d->fd, &d->ssl, -1, 0);
		fd_close(&d->fd);
		fd_close(&d->listen_fd);
		/* A 1xx was read but the connection never came: the server
		 * still owes the final reply; collect it so replies stay in step. */
		if (c->state != FTPC_DISCONNECTED && reply_is_preliminary(c->rp.code)) {
			char why[FTPC_ERR_MAX];
			memcpy(why, c->err, sizeof why);
			if (read_final_reply(c) >= 0)
				memcpy(c->err, why, sizeof why);
		}
		return rc;
	}
	set_socket_timeouts(d->fd, c->timeout_ms);
	return 0;
}

/* Records a TLS failure on the data connection in c->err. */
static void data_tls_failure(struct ftpc *c, int64_t rc, enum xfer_side side, bool to_wire)
{
	bool socket_side = to_wire ? side == XFER_DST : side == XFER_SRC;
	if (rc == -EPROTO && socket_side) {
		char why[160];
		set_err(c, "data connection: TLS: %s", secure_error_text(why, sizeof why));
	}
}

ssize_t ftpc_data_read(struct ftpc *c, struct ftpc_data *d, void *p, size_t n)
{
	if (!d->ssl)
		return io_read_some(d->fd, p, n); /* blocking, SO_RCVTIMEO */
	ssize_t r = secure_read(d->fd, d->ssl, p, n, c->timeout_ms);
	data_tls_failure(c, r, XFER_SRC, false);
	if (r == 0)
		d->cut_tls = !secure_closed_cleanly(d->ssl);
	return r;
}

int64_t ftpc_data_copy(struct ftpc *c, struct ftpc_data *d, int file_fd, const struct xfer_opts *o,
		       enum xfer_side *failed_side)
{
	if (!d->ssl) { /* zero-copy where the kernel allows */
		if (!o->to_wire)
			return xfer_copy(d->fd, file_fd, o, failed_side);
		struct xfer_opts how = *o;
		if (net_peer_is_local(d->fd)) {
			/* A server on this host gets the bytes through a buffer,
			 * each write sent at once: the receiver then copies from
			 * fresh socket buffers, not from our page cache lent by
			 * sendfile, and works in step with us (docs/CLIENT.md). */
			how.no_sendfile = true;
			net_nodelay(d->fd);
		} else {
			/* Full segments only; closing the connection sends the tail. */
			net_cork(d->fd, true);
		}
		return xfer_copy(file_fd, d->fd, &how, failed_side);
	}
	enum xfer_side side = 0;
	int64_t n = secure_copy(file_fd, d->fd, d->ssl, o, &side);
	if (failed_side)
		*failed_side = side;
	if (n < 0) {
		data_tls_failure(c, n, side, o->to_wire);
		return n;
	}
	if (!o->to_wire && o->limit == 0)
		d->cut_tls = !secure_closed_cleanly(d->ssl);
	/* The end of an upload is our close_notify; waiting for the server's
	 * keeps its last reads from meeting a reset. */
	if (o->to_wire) {
		int peer_ms = c->timeout_ms < SECURE_SHUTDOWN_WAIT_MS ? c->timeout_ms : SECURE_SHUTDOWN_WAIT_MS;
		secure_end(d->fd, &d->ssl, c->timeout_ms, peer_ms);
	}
	return n;
}

int ftpc_data_close(struct ftpc *c, struct ftpc_data *d, bool abort)
{
	fd_close(&d->listen_fd);
	/* After a download, answer the server's close_notify (never waits);
	 * an aborted transfer just drops the connection. */
	secure_end(d->fd, &d->ssl, abort ? -1 : 0, 0);
	if (abort && c->state != FTPC_DISCONNECTED) {
		char why[FTPC_ERR_MAX];
		memcpy(why, c->err, sizeof why);
		int rc = send_line(c, "ABOR");
		fd_close(&d->fd);
		if (rc == 0)
			rc = read_reply(c);
		if (rc > 0 && reply_is_error(rc)) {
			rc = read_reply(c); /* the transfer's 426, then ABOR's own reply */
		} else if (rc > 0 && (c->in_pos < c->in_len || secure_pending(c->ctrl_ssl) ||
				      io_wait(c->ctrl, POLLIN, FTPC_ABOR_GRACE_MS) > 0)) {
			/* ABOR's own reply, read already or on its way */
			rc = read_reply(c);
		}
		if (rc >= 0)
			memcpy(c->err, why, sizeof why);
		return rc < 0 ? rc : -ECANCELED;
	}
	fd_close(&d->fd);
	int code = read_final_reply(c);
	if (code < 0)
		return code;
	return reply_is_success(code) ? 0 : ftpc_fail_reply(c);
}
