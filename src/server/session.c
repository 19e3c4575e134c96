#include "session.h"

#include "data.h"
#include "ferry_limits.h"
#include "net.h"
#include "reply.h"
#include "sys.h"
#include "worker.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void on_ctrl(struct ev_handler *h, uint32_t events);
static void update_ctrl_watch(struct session *s);
static void tls_handshake_step(struct session *s);

/* Control-connection I/O, clear or TLS: bytes moved, 0 at end of stream,
 * -EAGAIN when the socket must become ready first, other -errno on error. */
static ssize_t ctrl_recv(struct session *s, void *p, size_t n)
{
	if (!s->ctrl_ssl)
		return io_read_some(s->ctrl.fd, p, n);
	ERR_clear_error();
	int r = SSL_read(s->ctrl_ssl, p, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(s->ctrl_ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->ctrl_want_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		return -EIO;
	}
}

static ssize_t ctrl_send(struct session *s, const void *p, size_t n)
{
	if (!s->ctrl_ssl)
		return io_write_some(s->ctrl.fd, p, n);
	ERR_clear_error();
	int r = SSL_write(s->ctrl_ssl, p, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(s->ctrl_ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static const char *const login_state_names[] = {
	[LOGIN_NONE] = "none",
	[LOGIN_USER] = "user-given",
	[LOGIN_DONE] = "logged-in",
};

void session_set_login(struct session *s, enum login_state st)
{
	(void)login_state_names;
	s->login = st;
	if (st == LOGIN_NONE) {
		free(s->user);
		s->user = NULL;
	}
}

struct session *session_new(int fd, const struct config *cfg, unsigned long id, unsigned ip_slot,
			    bool implicit_tls)
{
	struct session *s = calloc(1, sizeof *s);
	if (!s) {
		close(fd);
		return NULL;
	}
	s->id = id;
	s->cfg = cfg;
	s->ip_slot = ip_slot;
	s->ctrl.fd = fd;
	s->ctrl.fn = on_ctrl;
	s->pasv.fd = -1;
	s->data.fd = -1;
	s->rootfd = -1;
	/* RFC 959's default is A; COMP 431's server sends "the bytes from
	 * the requested file", so there a RETR without TYPE sends them as they are. */
	s->type = cfg->compat == COMPAT_COMP431 ? 'I' : 'A';
	s->mlst_facts = FACT_ALL;
	line_init(&s->lr, FERRY_LINE_MAX, true);
	buf_init(&s->in, FERRY_CTRL_READ);
	buf_init(&s->out, FERRY_CTRL_OUT_MAX);
	net_peer_addr(fd, &s->peer);
	net_local_addr(fd, &s->local);
	/* ABOR may arrive as urgent data (Telnet Synch): keep it in the stream. */
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
	net_nodelay(fd);
	s->last_active_ms = clock_ms();
	if (loop_watch(&s->ctrl, EPOLLIN) < 0) {
		session_free(s);
		return NULL;
	}
	if (implicit_tls) {
		s->implicit_tls = true;
		s->prot_private = true; /* implicit FTPS protects data by default */
		s->ctrl_tls = CTLS_STARTING;
		session_start_tls(s);
	}
	return s;
}

void session_greet(struct session *s)
{
	reply(s, R_READY, "%s",
	      s->cfg->compat == COMPAT_COMP431 ? "COMP 431 FTP server ready." : "ferry FTP server ready.");
}

void session_start_tls(struct session *s)
{
	s->ctrl_tls = CTLS_STARTING;
	if (s->out.len)
		return; /* flush_out comes back here once the 234 is written */
	/* Bytes the client sent before the handshake would be read as
	 * commands in the clear: a client that pipelines past AUTH is refused. */
	if (s->in.len || !ferryd_tls_ctx) {
		session_close(s);
		return;
	}
	s->ctrl_ssl = SSL_new(ferryd_tls_ctx);
	if (!s->ctrl_ssl || SSL_set_fd(s->ctrl_ssl, s->ctrl.fd) != 1 ||
	    RAND_bytes(s->tls_sid_ctx, sizeof s->tls_sid_ctx) != 1 ||
	    SSL_set_session_id_context(s->ctrl_ssl, s->tls_sid_ctx, sizeof s->tls_sid_ctx) != 1) {
		session_close(s);
		return;
	}
	s->ctrl_tls = CTLS_HANDSHAKE;
	tls_handshake_step(s);
}

static void tls_handshake_step(struct session *s)
{
	ERR_clear_error();
	int r = SSL_accept(s->ctrl_ssl);
	if (r == 1) {
		s->ctrl_tls = CTLS_ON;
		s->ctrl_want_write = false;
		update_ctrl_watch(s);
		if (s->implicit_tls)
			session_greet(s);
		return;
	}
	switch (SSL_get_error(s->ctrl_ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->ctrl_want_write = false;
		update_ctrl_watch(s);
		return;
	case SSL_ERROR_WANT_WRITE:
		s->ctrl_want_write = true;
		update_ctrl_watch(s);
		return;
	default:
		/* Garbage instead of a ClientHello, or a failed handshake. */
		transcript(s, "TLS handshake failed");
		session_close(s);
	}
}

void session_free(struct session *s)
{
	xfer_discard(s);
	data_release(s);
	loop_forget(&s->ctrl);
	fd_close(&s->ctrl.fd);
	fd_close(&s->rootfd);
	if (s->ctrl_ssl)
		SSL_free(s->ctrl_ssl);
	line_free(&s->lr);
	buf_free(&s->in);
	buf_free(&s->out);
	free(s->user);
	free(s->cwd);
	free(s->rnfr);
	free(s->cur.arg);
	free(s->xcmd.arg);
	free(s);
}

void session_close(struct session *s)
{
	if (s->closing)
		return;
	s->closing = true;
	/* Release the transfer now: a half-received upload is dropped, never committed. */
	xfer_discard(s);
	data_release(s);
	loop_forget(&s->ctrl);
	worker_mark_ready(s); /* reaped after this pass */
}

static void update_ctrl_watch(struct session *s)
{
	/* Corked: session_uncork() sets the watch once for the whole batch. */
	if (s->closing || s->corked)
		return;
	uint32_t mask = 0;
	if (s->ctrl_tls == CTLS_HANDSHAKE) {
		mask = s->ctrl_want_write ? EPOLLOUT : EPOLLIN;
	} else {
		if (!s->input_paused && !s->quitting && !s->ctrl_eof)
			mask |= EPOLLIN;
		if (s->out.len || s->ctrl_want_write)
			mask |= EPOLLOUT;
	}
	if (loop_watch(&s->ctrl, mask) < 0)
		session_close(s);
}

static void flush_out(struct session *s)
{
	if (s->ctrl_tls == CTLS_HANDSHAKE)
		return; /* replies wait for the handshake */
	while (s->out.len) {
		ssize_t w = ctrl_send(s, s->out.data, s->out.len);
		if (w == -EAGAIN)
			break;
		if (w < 0) {
			session_close(s);
			return;
		}
		buf_consume(&s->out, (size_t)w);
		/* A client reading its replies is not idle (see session_tick). */
		s->last_active_ms = clock_ms();
	}
	if (s->out.len == 0) {
		buf_shrink_if_empty(&s->out);
		if (s->quitting) {
			session_close(s);
			return;
		}
		if (s->ctrl_tls == CTLS_STARTING) {
			session_start_tls(s);
			return;
		}
	}
	update_ctrl_watch(s);
}

void session_quit(struct session *s)
{
	s->quitting = true;
	s->last_active_ms = clock_ms(); /* the grace for unsent replies starts */
	flush_out(s); /* closes at once when nothing is left to write */
}

void transcript(struct session *s, const char *fmt, ...)
{
	if (!s->cfg->verbose)
		return;
	char line[FERRY_LINE_MAX + 256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* Control bytes from a client must not forge transcript lines either. */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	if (s->cfg->compat == COMPAT_COMP431)
		printf("%s\n", line);
	else
		printf("[%lu] %s\n", s->id, line);
}

static void end_command(struct session *s, int code, const char *text)
{
	if (!s->cur.open)
		return;
	s->cur.open = false;
	if (s->cfg->compat != COMPAT_COMP431) {
		const char *arg = s->cur.arg ? s->cur.arg : "";
		const char *sep = s->cur.arg ? " " : "";
		if (strcmp(s->cur.verb, "PASS") == 0)
			arg = "****";
		if (code < 400) /* 3xx: accepted, the next step is the client's */
			transcript(s, "SUCCESS %s%s%s", s->cur.verb, sep, arg);
		else
			transcript(s, "FAILURE %s%s%s: %d %s", s->cur.verb, sep, arg, code, text);
	}
	free(s->cur.arg);
	s->cur.arg = NULL;
}

void session_cork(struct session *s)
{
	s->corked = true;
}

void session_uncork(struct session *s)
{
	s->corked = false;
	if (s->closing)
		return;
	if (s->out.len)
		flush_out(s); /* ends by setting the watch */
	else
		update_ctrl_watch(s);
}

void reply_raw(struct session *s, const char *text, size_t len)
{
	if (s->closing)
		return;
	if (buf_append(&s->out, text, len) != 0) {
		/* The client does not read its replies: drop it. */
		session_close(s);
		return;
	}
	if (!s->corked)
		flush_out(s);
}

void reply(struct session *s, int code, const char *fmt, ...)
{
	/* Most replies fit on the stack; a long path (a 257 with its quotes
	 * doubled, an MLST naming it twice) is formatted on the heap whole,
	 * never cut off mid-line. */
	char stack_text[FERRY_LINE_MAX + 512];
	char stack_wire[sizeof stack_text + 64];
	char *text = stack_text, *wire = stack_wire;
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(stack_text, sizeof stack_text, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof stack_text) {
		text = malloc((size_t)len + 1);
		if (!text) {
			session_close(s);
			return;
		}
		va_start(ap, fmt);
		vsnprintf(text, (size_t)len + 1, fmt, ap);
		va_end(ap);
	}
	/* Each line gains at most "ddd-" and CRLF. */
	size_t lines = 1;
	for (const char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	size_t wire_size = (size_t)len + 6 * lines + 1;
	if (wire_size > sizeof stack_wire) {
		wire = malloc(wire_size);
		if (!wire) {
			if (text != stack_text)
				free(text);
			session_close(s);
			return;
		}
	}

	/* Multi-line: "ddd-first", middle lines as given, "ddd last". */
	size_t w = 0;
	char *line = text;
	for (;;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		int n;
		if (line == text)
			n = snprintf(wire + w, wire_size - w, "%d%c%s\r\n", code, nl ? '-' : ' ', line);
		else if (nl)
			n = snprintf(wire + w, wire_size - w, "%s\r\n", line);
		else
			n = snprintf(wire + w, wire_size - w, "%d %s\r\n", code, line);
		if (n < 0 || (size_t)n >= wire_size - w)
			break;
		if (s->cfg->verbose) {
			if (line == text)
				transcript(s, "%d%c%s", code, nl ? '-' : ' ', line);
			else if (nl)
				transcript(s, "%s", line);
			else
				transcript(s, "%d %s", code, line);
		}
		w += (size_t)n;
		if (!nl)
			break;
		line = nl + 1;
	}
	reply_raw(s, wire, w);
	if (code >= 200)
		end_command(s, code, text);
	if (text != stack_text)
		free(text);
	if (wire != stack_wire)
		free(wire);
}

void session_pause_input(struct session *s, long long until_ms)
{
	s->input_paused = true;
	s->paused_until_ms = until_ms;
	update_ctrl_watch(s);
	worker_wake_at(s, until_ms);
}

void session_resume_input(struct session *s)
{
	s->input_paused = false;
	s->paused_until_ms = 0;
	update_ctrl_watch(s);
	worker_mark_ready(s);
}

void session_process_input(struct session *s)
{
	if (s->ctrl_ssl && !s->closing && !s->input_paused && SSL_pending(s->ctrl_ssl) > 0 &&
	    s->in.len < FERRY_CTRL_READ) {
		char chunk[FERRY_CTRL_READ];
		ssize_t r = ctrl_recv(s, chunk, FERRY_CTRL_READ - s->in.len);
		if (r > 0 && buf_append(&s->in, chunk, (size_t)r) != 0) {
			session_close(s);
			return;
		}
	}
	for (int i = 0; i < FERRY_CMDS_PER_WAKEUP; i++) {
		if (s->closing || s->quitting || s->input_paused || s->ctrl_tls == CTLS_STARTING)
			return;
		if (!s->line_ready) {
			size_t used = 0;
			enum line_result r = line_feed(&s->lr, s->in.data, s->in.len, &used);
			buf_consume(&s->in, used);
			if (r == LINE_MORE) {
				buf_shrink_if_empty(&s->in);
				if (s->ctrl_eof && !s->xfer) /* all it sent is answered */
					session_quit(s);
				/* The rest of the line may wait decrypted inside
				 * OpenSSL, where epoll does not see it: come back. */
				else if (s->ctrl_ssl && SSL_pending(s->ctrl_ssl) > 0)
					worker_mark_ready(s);
				return;
			}
			if (r == LINE_TOO_LONG) {
				line_reset(&s->lr);
				command_line_too_long(s);
				continue;
			}
			s->line_ready = true; /* a complete line waits in lr.line */
		}
		/* During a transfer only ABOR, STAT and NOOP run; others wait. */
		if (s->xfer && !command_allowed_during_transfer(s->lr.line.data)) {
			s->input_paused = true;
			update_ctrl_watch(s);
			return;
		}
		s->last_active_ms = clock_ms();
		s->line_ready = false;
		command_dispatch(s, s->lr.line.data);
		line_reset(&s->lr);
	}
	/* Cap reached with input left: continue on the next pass. */
	if (s->in.len)
		worker_mark_ready(s);
}

/* A clear-text control connection whose client shut only its sending
 * side (the socket still takes replies) while a download runs: as vsftpd
 * and pure-ftpd do, the download finishes and the commands already sent
 * are answered before the session ends. An upload needs its client (see
 * stor_commit), and TLS would need a close_notify exchange: both end. */
static bool half_closed_during_download(const struct session *s, uint32_t events)
{
	return !s->ctrl_ssl && s->xfer && s->xfer->kind != XK_STOR && !(events & (EPOLLHUP | EPOLLERR));
}

static void on_ctrl(struct ev_handler *h, uint32_t events)
{
	struct session *s = (struct session *)((char *)h - offsetof(struct session, ctrl));
	if (s->ctrl_tls == CTLS_HANDSHAKE) {
		tls_handshake_step(s);
		return;
	}
	bool retry_read = false;
	if (events & EPOLLOUT) {
		retry_read = s->ctrl_want_write;
		s->ctrl_want_write = false;
		flush_out(s);
	}
	if (s->closing)
		return;
	if (s->ctrl_eof) {
		if (events & (EPOLLHUP | EPOLLERR))
			session_close(s); /* gone altogether now */
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || retry_read) {
		if (s->in.len < FERRY_CTRL_READ && !s->input_paused && s->ctrl_tls != CTLS_STARTING) {
			char chunk[FERRY_CTRL_READ];
			ssize_t r = ctrl_recv(s, chunk, FERRY_CTRL_READ - s->in.len);
			if (r == 0 && half_closed_during_download(s, events)) {
				s->ctrl_eof = true;
				update_ctrl_watch(s);
				session_process_input(s);
				return;
			}
			if (r == 0 || (r < 0 && r != -EAGAIN)) {
				session_close(s);
				return;
			}
			if (r > 0 && buf_append(&s->in, chunk, (size_t)r) != 0) {
				session_close(s);
				return;
			}
		} else if (events & (EPOLLHUP | EPOLLERR)) {
			session_close(s);
			return;
		}
		session_process_input(s);
		/* TLS may hold decrypted bytes the socket will not signal again. */
		if (s->ctrl_ssl && SSL_pending(s->ctrl_ssl) > 0 && !s->closing)
			worker_mark_ready(s);
		if (s->ctrl_want_write)
			update_ctrl_watch(s);
	}
}

void session_tick(struct session *s, long long now)
{
	if (s->closing) {
		worker_mark_ready(s); /* reaped on the next pass */
		return;
	}
	data_tick(s, now);
	if (s->xfer) {
		xfer_tick(s, now);
		return;
	}
	if (s->paused_until_ms && now >= s->paused_until_ms) {
		session_resume_input(s);
		return;
	}
	long long idle_ms = now - s->last_active_ms;
	/* A client that reads nothing never lets its 221 or 421 out. */
	if (s->quitting) {
		if (idle_ms > FERRY_QUIT_GRACE_MS)
			session_close(s);
		return;
	}
	if (idle_ms <= (long long)s->cfg->idle_timeout * 1000)
		return;
	/* A stalled TLS handshake cannot be sent a 421. */
	if (s->ctrl_tls == CTLS_HANDSHAKE) {
		session_close(s);
		return;
	}
	reply(s, R_UNAVAILABLE, "Timeout: closing control connection.");
	session_quit(s);
}
