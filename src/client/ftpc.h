/* ftpc.h - the client protocol engine: one blocking FTP session.
 *
 * One control connection, read and written with timeouts; replies are
 * assembled by line_reader and reply_parser from src/lib, capped at
 * FERRY_REPLY_MAX. Data connections are opened passive (EPSV, then PASV)
 * or active (EPRT, then PORT), one per transfer, and always to or from the
 * control peer's address: a PASV reply naming another host is not obeyed
 * and an active connection from another host is refused.
 *
 * Session state is explicit (enum ftpc_state) and changes only through
 * ftpc_set_state, which traces the transition in verbose mode.
 *
 * TLS (c->tls, see secure.h): implicit TLS runs the handshake before the
 * greeting; explicit TLS sends AUTH TLS after it, and a refusal either ends
 * the connection (required) or leaves it plain with c->warning set
 * (optional). After each login PBSZ 0 and PROT P (or PROT C when clear
 * data was asked for) follow; every data connection then runs its own
 * handshake, resuming the control connection's session, once the server
 * answered the transfer command with 1xx. All control and data I/O goes
 * through secure.h, plain or not; plain data keeps xfer_copy's zero-copy
 * paths.
 *
 * Error convention for every int-returning call below, unless it says
 * otherwise:
 *   0    success;
 *   > 0  the server refused: the value is its reply code;
 *   < 0  a negative errno: local failure, timeout or broken connection.
 * In both failure cases c->err holds one printable line saying why: the
 * server's reply ("550 No such file") or the local cause. A timeout, a
 * closed connection or a malformed reply also drops the session to
 * FTPC_DISCONNECTED, since the dialogue can no longer be trusted. */
#ifndef FERRY_FTPC_H
#define FERRY_FTPC_H

#include "ferry_limits.h"
#include "line.h"
#include "reply.h"
#include "secure.h"
#include "xfer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

/* Longest one-line error message kept for the caller. */
#define FTPC_ERR_MAX 512
#define FTPC_HOST_MAX 256
#define FTPC_USER_MAX 256

enum ftpc_state {
	FTPC_DISCONNECTED, /* no control connection */
	FTPC_CONNECTED,    /* greeting read; no login accepted yet */
	FTPC_LOGGED_IN,    /* 230 received: file commands may follow */
};

/* What FEAT announced (all false when FEAT is refused). */
struct ftpc_features {
	bool known;
	bool mlst;
	bool size;
	bool mdtm;
	bool rest;
	bool epsv;
	bool utf8;
};

struct ftpc {
	enum ftpc_state state;
	int ctrl;                   /* control socket, -1 when disconnected */
	int timeout_ms;             /* every control and data wait */
	bool passive;               /* data connections: passive (default) or active */
	FILE *trace;                /* verbose dialogue goes here; NULL = silent */
	bool no_epsv;               /* server refused EPSV: use PASV from now on */
	bool no_eprt;               /* server refused EPRT: use PORT from now on */
	char server_type;           /* TYPE in effect on the server: 'A', 'I', 0 unknown */
	struct ftpc_features feat;
	struct sockaddr_storage peer;  /* control peer: the only data peer allowed */
	struct sockaddr_storage local; /* our control address: active mode listens here */
	char host[FTPC_HOST_MAX];
	int port;
	char user[FTPC_USER_MAX];
	struct line_reader lr;
	struct reply_parser rp;     /* the last reply: code and text */
	char in[FERRY_CTRL_READ];   /* control bytes read but not yet parsed */
	size_t in_pos, in_len;
	char err[FTPC_ERR_MAX];
	struct secure_opts tls;     /* what the user asked for; mode SECURE_OFF: plain */
	SSL_CTX *tls_ctx;           /* made at the first TLS connection */
	SSL *ctrl_ssl;              /* TLS on the control connection; NULL: plain */
	bool prot_private;          /* the server accepted PROT P: data connections use TLS */
	char warning[FTPC_ERR_MAX]; /* set when the session went on with less protection
				       than asked; the caller prints it and clears it */
};

/* A data connection in the making: listen_fd only in active mode; ssl
 * when the data is protected (PROT P). */
struct ftpc_data {
	int fd;
	int listen_fd;
	SSL *ssl;
	bool cut_tls; /* protected data ended by a bare TCP close, no close_notify */
};

void ftpc_init(struct ftpc *c, int timeout_ms);
/* Closes everything without a word to the server; c can be reused. */
void ftpc_free(struct ftpc *c);
const char *ftpc_state_name(enum ftpc_state s);
void ftpc_set_state(struct ftpc *c, enum ftpc_state s);

/* Connects and reads the greeting (220); then, with c->tls asking for
 * it, secures the control connection (see above). */
int ftpc_connect(struct ftpc *c, const char *host, int port);
/* USER, then PASS when the server asks for it (331). pass may be NULL when
 * the caller knows none; a 331 then fails with -EACCES. */
int ftpc_login(struct ftpc *c, const char *user, const char *pass);
/* True after ftpc_login got 331 and needs a password it was not given;
 * ftpc_password then sends it. */
bool ftpc_needs_password(const struct ftpc *c);
int ftpc_password(struct ftpc *c, const char *user, const char *pass);
/* Sends QUIT (when connected), reads the answer briefly, closes. */
void ftpc_quit(struct ftpc *c);

/* Sends one command line (CR/LF in it are refused with -EINVAL) and reads
 * its final reply. Returns the reply code (any class), or a negative
 * errno; a failure class reply is not an error at this level. */
int ftpc_command(struct ftpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like ftpc_command, under the error convention: 0 for a 2xx reply. */
int ftpc_command_ok(struct ftpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Code and text of the last reply. */
int ftpc_reply_code(const struct ftpc *c);
const char *ftpc_reply_text(const struct ftpc *c);
/* Makes the last reply the error (c->err = "550 No such file") and
 * returns its code. */
int ftpc_fail_reply(struct ftpc *c);
/* Prints the last reply to f as the server sent it ("257 ..." per line),
 * control bytes replaced. */
void ftpc_print_reply(const struct ftpc *c, FILE *f);

/* PWD; the directory unquoted from the 257 reply ("" doubles a quote)
 * into out, as the server spelled it. 0, a reply code, or negative errno. */
int ftpc_pwd(struct ftpc *c, char *out, size_t outlen);

/* FEAT; fills c->feat (all false when refused). Call once per login. */
void ftpc_features(struct ftpc *c);
/* TYPE A or TYPE I, sent only when the server is not already there. */
int ftpc_set_type(struct ftpc *c, char type);
/* SIZE in TYPE I; 0 and *size set, or a failure. */
int ftpc_size(struct ftpc *c, const char *path, uint64_t *size);

/* Opens a data connection and starts the transfer command cmd (with an
 * optional REST offset first when rest > 0): on 0, d->fd is a blocking
 * socket with send and receive timeouts, or (PROT P) a non-blocking one
 * under d->ssl after the handshake; read and copy it with the two calls
 * below. */
int ftpc_data_open(struct ftpc *c, struct ftpc_data *d, uint64_t rest, const char *cmd);
/* Up to n bytes of the data connection: xfer_copy's contract (0 at the
 * end, -EAGAIN when nothing came within the timeout); a TLS failure is
 * -EPROTO with c->err saying why. */
ssize_t ftpc_data_read(struct ftpc *c, struct ftpc_data *d, void *p, size_t n);
/* Copies between file_fd and the data connection, towards the server when
 * o->to_wire: xfer_copy for plain connections, secure_copy for TLS ones
 * (an upload then ends with close_notify). Same results as xfer_copy; a
 * TLS failure is -EPROTO with c->err saying why. */
int64_t ftpc_data_copy(struct ftpc *c, struct ftpc_data *d, int file_fd, const struct xfer_opts *o,
		       enum xfer_side *failed_side);
/* Ends the transfer: closes the data connection and reads the final
 * reply. With abort set (a local failure or an interruption mid-way), ABOR
 * is sent first so the server does not take a cut transfer as complete. */
int ftpc_data_close(struct ftpc *c, struct ftpc_data *d, bool abort);

#endif
