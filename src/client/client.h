/* client.h - the state of one ferry process: the FTP session, the user's
 * settings, and how results and errors are reported.
 *
 * Output policy, in one place:
 *   results (listings, pwd, size, ...)  stdout, always;
 *   transfer summary lines              stdout, unless quiet;
 *   notes (greeting, server replies     stdout, in the interactive shell
 *     to plain actions)                   only, unless quiet;
 *   the protocol dialogue (-v)          stderr;
 *   errors, one line each               stderr, always;
 *   warnings (TLS refused under         stderr, always.
 *     --tls-optional)
 * Command handlers return 0 on success and -1 on failure, after the error
 * line has been printed; the front ends turn that into exit codes. */
#ifndef FERRY_CLIENT_H
#define FERRY_CLIENT_H

#include "ftpc.h"

#include <stdbool.h>

/* Default for --timeout, seconds. */
#define CLIENT_DEFAULT_TIMEOUT 60
/* --retries: more than this is a loop, not persistence (the usage message says 100). */
#define CLIENT_RETRIES_MAX 100
/* Pause before retry k: k times this, at most the second. */
#define CLIENT_RETRY_PAUSE_MS 1000
#define CLIENT_RETRY_PAUSE_MAX_MS 5000

enum exit_code {
	EXIT_OK = 0,     /* every command succeeded */
	EXIT_FAILED = 1, /* some command failed */
	EXIT_USAGE = 2,  /* the command line was wrong */
	EXIT_INTERRUPTED = 130,
};

struct client {
	struct ftpc ftp;
	bool ascii;        /* transfers use TYPE A */
	bool progress;     /* progress bar wanted (drawn only on a terminal) */
	bool verbose;      /* show the dialogue */
	bool quiet;        /* no notes, no summary lines */
	bool interactive;  /* commands come from a terminal */
	bool transcript;   /* --prompt: a script's commands shown after "ftp> ", notes as in the shell */
	bool autologin;    /* log in right after connecting (-n turns it off) */
	bool stdout_tty;
	bool quit;         /* bye was given */
	const char *user;     /* -u, or NULL */
	const char *password; /* --password, or NULL */
	int retries;          /* a cut transfer is tried again this many times (--retries) */
	char login_pass[FERRY_LINE_MAX]; /* the password of the last login, for reconnects */
	/* The remote directory a reconnect returns to ("" the login
	 * directory), known after a login and, with --retries, after cd; a
	 * transfer asks PWD when it is not known. */
	char remote_dir[FERRY_PATH_MAX];
	bool remote_dir_known;
};

void client_init(struct client *cl, int timeout_ms);
void client_free(struct client *cl);

/* One error line on stderr; returns -1 for the handler to pass on. */
int client_fail(struct client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The session's last error (cl->ftp.err) as one line, prefixed by what
 * was being done when what is not NULL. Returns -1. */
int client_fail_ftp(struct client *cl, const char *what);
/* A note line on stdout (interactive shell, not quiet). */
void client_note(struct client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last server reply as a note (skipped in verbose mode, where the
 * dialogue already showed it). */
void client_note_reply(struct client *cl);
/* Whether summary lines are printed. */
bool client_summaries(const struct client *cl);

/* Connects, prints the greeting as a note, and logs in when autologin is
 * on. 0 or -1. */
int client_open(struct client *cl, const char *host, int port);
/* Logs in as user (NULL: -u, ~/.netrc, else anonymous) with pass (NULL:
 * --password, $FERRY_PASSWORD, ~/.netrc, anonymous's default, or a prompt
 * on the terminal). 0 or -1. */
int client_login(struct client *cl, const char *user, const char *pass);
/* After the control connection was lost: connects again to the same
 * server, logs in as the same user (passwords as client_login finds them)
 * and changes to dir when it is not empty. 0 or -1. */
int client_reconnect(struct client *cl, const char *dir);
/* After a command that may have changed the remote directory: with
 * --retries, PWD says which one it is now (a reconnect returns there
 * even when the connection is found lost before a transfer could ask);
 * otherwise it is no longer known. */
void client_track_dir(struct client *cl);

#endif
