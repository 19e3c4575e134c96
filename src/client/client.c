#include "client.h"

#include "auth.h"
#include "reply.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What anonymous sends as password when nothing else is configured
 * (RFC 1635 asks for an e-mail-like identification). */
#define ANONYMOUS_PASSWORD "ferry@"

void client_init(struct client *cl, int timeout_ms)
{
	memset(cl, 0, sizeof *cl);
	ftpc_init(&cl->ftp, timeout_ms);
	cl->progress = true;
	cl->autologin = true;
	cl->stdout_tty = isatty(STDOUT_FILENO);
}

void client_free(struct client *cl)
{
	ftpc_free(&cl->ftp);
	explicit_bzero(cl->login_pass, sizeof cl->login_pass);
}

int client_fail(struct client *cl, const char *fmt, ...)
{
	(void)cl;
	/* Names in these lines may come from a server's listing: nothing in
	 * them drives the terminal (C0, C1, bytes that are not UTF-8 become
	 * '?'), and none makes the line longer than this. */
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(line, sizeof line, "%s", fmt);
	else if ((size_t)n >= sizeof line)
		memcpy(line + sizeof line - 4, "...", 4);
	reply_sanitize(line, line, sizeof line);
	fflush(stdout);
	fputs(line, stderr);
	fputc('\n', stderr);
	fflush(stderr);
	return -1;
}

int client_fail_ftp(struct client *cl, const char *what)
{
	if (what)
		return client_fail(cl, "%s: %s", what, cl->ftp.err);
	return client_fail(cl, "%s", cl->ftp.err);
}

void client_note(struct client *cl, const char *fmt, ...)
{
	if (!(cl->interactive || cl->transcript) || cl->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void client_note_reply(struct client *cl)
{
	if (!(cl->interactive || cl->transcript) || cl->quiet || cl->verbose)
		return;
	ftpc_print_reply(&cl->ftp, stdout);
	fflush(stdout);
}

bool client_summaries(const struct client *cl)
{
	return !cl->quiet;
}

/* A session weaker than asked for (--tls-optional) is said on stderr,
 * in every front end. */
static void warn_security(struct client *cl)
{
	if (!cl->ftp.warning[0])
		return;
	fflush(stdout);
	fprintf(stderr, "%s\n", cl->ftp.warning);
	fflush(stderr);
	cl->ftp.warning[0] = '\0';
}

int client_open(struct client *cl, const char *host, int port)
{
	cl->ftp.trace = cl->verbose ? stderr : NULL;
	if (cl->ftp.state != FTPC_DISCONNECTED)
		ftpc_quit(&cl->ftp);
	if (ftpc_connect(&cl->ftp, host, port) != 0)
		return client_fail_ftp(cl, NULL);
	warn_security(cl);
	client_note(cl, "Connected to %s.", host);
	client_note_reply(cl);
	if (!cl->autologin)
		return 0;
	return client_login(cl, NULL, NULL);
}

int client_login(struct client *cl, const char *user, const char *pass)
{
	char nlogin[FTPC_USER_MAX] = "", npass[FTPC_USER_MAX] = "";
	bool in_netrc = auth_netrc_lookup(cl->ftp.host, user ? user : cl->user, nlogin, sizeof nlogin,
					  npass, sizeof npass);
	if (!user)
		user = cl->user ? cl->user : in_netrc && *nlogin ? nlogin : "anonymous";
	bool anonymous = strcmp(user, "anonymous") == 0 || strcmp(user, "ftp") == 0;
	char typed[FTPC_USER_MAX];
	if (!pass)
		pass = cl->password;
	if (!pass)
		pass = getenv("FERRY_PASSWORD");
	if (!pass && in_netrc && *npass && (!*nlogin || strcmp(nlogin, user) == 0))
		pass = npass;
	if (!pass && anonymous)
		pass = ANONYMOUS_PASSWORD;
	int rc = ftpc_login(&cl->ftp, user, pass);
	const char *used = pass;
	if (rc == -EACCES && !pass && ftpc_needs_password(&cl->ftp)) {
		char prompt[FTPC_USER_MAX + 32];
		snprintf(prompt, sizeof prompt, "Password for %s: ", user);
		int p = auth_prompt_password(prompt, typed, sizeof typed);
		if (p != 0) {
			explicit_bzero(npass, sizeof npass);
			return client_fail(cl, "login: no password for %s (use --password or $FERRY_PASSWORD)",
					   user);
		}
		rc = ftpc_password(&cl->ftp, user, typed);
		used = typed;
	}
	/* A reconnect (--retries) logs in again without asking twice. */
	if (rc == 0 && used != cl->login_pass)
		snprintf(cl->login_pass, sizeof cl->login_pass, "%s", used ? used : "");
	explicit_bzero(typed, sizeof typed);
	explicit_bzero(npass, sizeof npass);
	warn_security(cl);
	if (rc != 0)
		return client_fail_ftp(cl, "login");
	client_note_reply(cl);
	ftpc_features(&cl->ftp);
	cl->remote_dir[0] = '\0';
	cl->remote_dir_known = true;
	return 0;
}

int client_reconnect(struct client *cl, const char *dir)
{
	/* ftpc_connect rewrites these: take copies first. */
	char host[FTPC_HOST_MAX], user[FTPC_USER_MAX];
	snprintf(host, sizeof host, "%s", cl->ftp.host);
	snprintf(user, sizeof user, "%s", cl->ftp.user);
	int port = cl->ftp.port;
	bool autologin = cl->autologin;
	cl->autologin = false;
	int rc = client_open(cl, host, port);
	cl->autologin = autologin;
	if (rc == 0)
		rc = client_login(cl, *user ? user : NULL, *cl->login_pass ? cl->login_pass : NULL);
	/* Commands after this one must not run in another directory than
	 * the user chose: without it, the session is closed. */
	if (rc == 0 && *dir && ftpc_command_ok(&cl->ftp, "CWD %s", dir) != 0) {
		rc = client_fail_ftp(cl, "reconnect");
		ftpc_quit(&cl->ftp);
	}
	if (rc == 0 && dir != cl->remote_dir)
		snprintf(cl->remote_dir, sizeof cl->remote_dir, "%s", dir);
	return rc;
}

void client_track_dir(struct client *cl)
{
	cl->remote_dir_known = cl->retries > 0 &&
			       ftpc_pwd(&cl->ftp, cl->remote_dir, sizeof cl->remote_dir) == 0;
}
