/* session.h - one FTP session: its state machine and control connection.
 *
 * States (RFC 959 section 6, login part):
 *   LOGIN_NONE  connected; only USER PASS QUIT FEAT SYST HELP NOOP allowed
 *   LOGIN_USER  USER given; PASS must come next (anything else but USER or
 *               QUIT gets 530 and drops back to LOGIN_NONE)
 *   LOGIN_DONE  logged in; file commands allowed
 * Only session_set_login changes the login state.
 *
 * Pending per-command state is explicit: the data address in force
 * (data_mode), a REST offset, an RNFR source, and at most one transfer.
 * A session is never freed inside an event callback: session_close marks
 * it and the worker reaps it after the dispatch pass. */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

#include "buf.h"
#include "config.h"
#include "line.h"
#include "loop.h"
#include "users.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum login_state {
	LOGIN_NONE,
	LOGIN_USER,
	LOGIN_DONE,
};

enum data_mode {
	DATA_NONE,    /* no PORT/EPRT/PASV/EPSV in force */
	DATA_ACTIVE,  /* PORT/EPRT address stored; we connect when a transfer starts */
	DATA_PASSIVE, /* listening on pasv.fd; data.fd set once the client connected */
};

struct transfer;
typedef struct ssl_st SSL;

/* TLS on the control connection (RFC 4217). */
enum ctrl_tls {
	CTLS_OFF,       /* clear text */
	CTLS_STARTING,  /* 234 queued: the handshake starts once it is written */
	CTLS_HANDSHAKE, /* SSL_accept in progress */
	CTLS_ON,
};

/* A command whose final reply is still to come (for the transcript). */
struct cmd_record {
	bool open;
	char verb[16];
	char *arg; /* owned; NULL when the command had none */
};

struct session {
	struct ev_handler ctrl;  /* control socket */
	struct ev_handler pasv;  /* passive listening socket, fd -1 when none */
	struct ev_handler data;  /* data socket, fd -1 when none */
	unsigned long id;
	const struct config *cfg;
	struct sockaddr_storage peer, local;
	unsigned ip_slot;        /* slot in the shared per-address table */

	SSL *ctrl_ssl;
	enum ctrl_tls ctrl_tls;
	bool ctrl_want_write;    /* TLS needs the socket writable to go on reading */
	bool implicit_tls;       /* accepted on the implicit FTPS port */
	bool pbsz_done;
	bool prot_private;       /* PROT P: data connections use TLS */
	SSL *data_ssl;
	/* TLS session id context of this session's control and data
	 * connections, random per session: a data connection can resume only
	 * a TLS session this control connection made, not another client's. */
	unsigned char tls_sid_ctx[16];

	struct line_reader lr;
	struct buf in;           /* control bytes read, not yet parsed */
	struct buf out;          /* replies not yet written */

	enum login_state login;
	char *user;              /* name from USER, owned */
	bool anonymous, writable;
	unsigned mlst_facts;      /* MLST/MLSD facts shown (OPTS MLST), enum mlst_fact */
	int rootfd;              /* the session's jail, -1 before login */
	char *cwd;               /* canonical virtual path, owned */
	int failed_logins;

	enum data_mode data_mode;
	struct sockaddr_storage port_addr;
	/* A passive listener announced to no one waits for the session's next
	 * PASV/EPSV (cfg->pasv_park): one whose connection was taken (PROT P),
	 * anything that connects meanwhile closed unread; or a spare, bound
	 * but not listening, opened after a passive transfer's final reply,
	 * off the next EPSV's path. */
	bool pasv_parked;
	bool pasv_spare;         /* the parked socket is a spare: bound, never announced */
	bool pasv_spare_due;     /* open a spare once the control output is uncorked */
	long long pasv_parked_ms;
	unsigned long pasv_parked_pass; /* loop_pass() when it was parked */
	int pasv_port;           /* the passive listener's port */
	bool data_corked;        /* data.fd came corked from the listener (TCP_CORK is inherited) */
	bool epsv_all;
	char type;               /* 'A' or 'I' */
	uint64_t rest;
	char *rnfr;              /* pending rename source (virtual path), owned */
	struct transfer *xfer;   /* the running transfer, NULL when none */

	struct cmd_record cur;   /* command being answered */
	struct cmd_record xcmd;  /* the command that started the transfer */

	long long last_active_ms;
	long long paused_until_ms; /* input ignored until then (failed login delay) */
	bool input_paused;
	bool corked;             /* replies queue without being written (see session_cork) */
	bool line_ready;         /* lr.line holds a complete line not yet run */
	bool quitting;           /* close once out is written */
	bool ctrl_eof;           /* the client shut its sending side during a download:
				  * it finishes, what was sent is answered, then the end */
	bool closing;            /* reap at the end of the pass */
	bool in_ready;           /* queued on the worker's ready list */
	bool in_timed;           /* on the worker's list of early ticks */
	struct session *timed_next;
	struct session *ready_next;
	struct session *next, *prev;
};

/* Takes ownership of fd (accepted, non-blocking). NULL on allocation failure.
 * implicit_tls: the TLS handshake comes first, the greeting after it. */
struct session *session_new(int fd, const struct config *cfg, unsigned long id, unsigned ip_slot,
			    bool implicit_tls);
/* Queues the 220 greeting. */
void session_greet(struct session *s);
/* After "234": switch the control connection to TLS once the reply is out. */
void session_start_tls(struct session *s);
void session_free(struct session *s);
void session_close(struct session *s);
/* Closes the session once the queued replies are written. */
void session_quit(struct session *s);
void session_set_login(struct session *s, enum login_state st);

/* Queues a reply; text may hold '\n' for a multi-line reply (each line is
 * prefixed per RFC 959). A final reply (>= 200) ends s->cur in the transcript. */
void reply(struct session *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* While corked, replies are queued but not written; uncorking writes them
 * all at once (a small transfer's 150 and 226 leave in one segment). */
void session_cork(struct session *s);
void session_uncork(struct session *s);
/* Queues raw, already formatted control bytes (multi-line bodies). */
void reply_raw(struct session *s, const char *text, size_t len);

/* Parses and runs buffered commands, a bounded number per call. */
void session_process_input(struct session *s);
/* Called by the worker: timeouts and the failed-login delay. */
void session_tick(struct session *s, long long now);
/* Stops reading commands until until_ms (the worker's tick resumes). */
void session_pause_input(struct session *s, long long until_ms);
/* Resumes reading commands (after a transfer or a delay). */
void session_resume_input(struct session *s);

/* Transcript (-v): one line, prefixed "[id] " unless in comp431 mode. */
void transcript(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Commands (commands.c). */
void command_dispatch(struct session *s, char *line);
void command_line_too_long(struct session *s);
/* True for verbs handled while a transfer runs (ABOR, STAT, NOOP). */
bool command_allowed_during_transfer(const char *line);

#endif
