/* commands.c - the command table and every command handler.
 *
 * One gate (command_dispatch) applies, in order: syntax (unknown verb,
 * argument present/absent as the row requires -> 500/501/502), the login
 * sequence rules (530/503), then calls the handler. HELP and FEAT are
 * generated from the table. Handlers validate their own arguments
 * further and always end with exactly one final reply (or start a
 * transfer whose end gives it). */
#include "data.h"
#include "ferry_limits.h"
#include "listing.h"
#include "net.h"
#include "path.h"
#include "reply.h"
#include "session.h"
#include "sys.h"
#include "users.h"
#include "worker.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum arg_policy {
	ARG_NONE,     /* any argument is a syntax error (501) */
	ARG_REQUIRED, /* a missing argument is a syntax error (501) */
	ARG_OPTIONAL,
};

enum access {
	ACC_ANY,      /* before login too */
	ACC_LOGIN,    /* logged in */
	ACC_WRITE,    /* logged in with write access */
};

struct command {
	const char *verb;
	void (*fn)(struct session *s, char *arg);
	enum arg_policy args;
	enum access access;
	const char *help;
};

static const struct command *find_command(const char *verb);

/* ---- helpers ---------------------------------------------------------- */

/* Must this session use TLS (control and data)? */
static bool tls_required_for(const struct session *s, bool guest)
{
	return guest ? s->cfg->tls_required_anon : s->cfg->tls_required;
}

static char *quote_path(const char *path, char *out, size_t outlen)
{
	/* RFC 959 257 replies: the name in quotes, embedded quotes doubled. */
	size_t o = 0;
	for (const char *p = path; *p && o + 3 < outlen; p++) {
		char c = (*p == '\r' || *p == '\n') ? '?' : *p;
		out[o++] = c;
		if (c == '"')
			out[o++] = '"';
	}
	out[o] = '\0';
	return out;
}

/* Resolves arg against the cwd; replies 553 (and returns false) when too long. */
/* The virtual path arg names from the session's directory; 0, or -1 when
 * it is too long. "~" and "~/x" name the home directory, the session's
 * root, as in vsftpd: tnftp's "cd ~" sends CWD ~. A file so named is "./~". */
static int resolve_quiet(const struct session *s, const char *arg, char *out, size_t outlen)
{
	const char *base = s->cwd;
	if (!arg)
		arg = "";
	if (arg[0] == '~' && (arg[1] == '\0' || arg[1] == '/')) {
		base = "/";
		arg++;
	}
	return path_resolve(base, arg, out, outlen) != 0 ? -1 : 0;
}

static bool resolve(struct session *s, const char *arg, char *out, size_t outlen)
{
	if (resolve_quiet(s, arg, out, outlen) != 0) {
		reply(s, R_BAD_NAME, "File name too long.");
		return false;
	}
	return true;
}

/* What a client is told about a failed file operation: the jail's own
 * refusals (EXDEV, ELOOP) read as a missing file, never as a hint at
 * what lies outside. */
static const char *errno_text(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case EXDEV:  /* resolution would leave the root */
	case ELOOP:
		return "No such file or directory";
	case EACCES:
	case EPERM:
	case EROFS:
		return "Permission denied";
	case ENOSPC:
		return "Insufficient storage space";
	case ENAMETOOLONG:
		return "File name too long";
	default:
		return strerror(err);
	}
}

static void reply_errno(struct session *s, int err, const char *what)
{
	int code = err == ENOSPC ? R_NO_SPACE : err == ENAMETOOLONG ? R_BAD_NAME : R_NO_FILE;
	reply(s, code, "%s: %s.", what, errno_text(err));
}

static const char *shown(const char *arg, char *buf, size_t len)
{
	reply_sanitize(arg ? arg : "", buf, len);
	return buf;
}

/* Skips ls-style options ("-la") clients put before a LIST path. */
static char *skip_list_options(char *arg, bool *all)
{
	*all = false;
	if (!arg)
		return NULL;
	while (arg[0] == '-') {
		char *end = strchr(arg, ' ');
		char *a = strchr(arg, 'a');
		if (a && (!end || a < end))
			*all = true;
		if (!end)
			return NULL;
		arg = end + 1;
		while (*arg == ' ')
			arg++;
		if (!*arg)
			return NULL;
	}
	return arg;
}

/* A last path component worth matching as a pattern: wildcards present,
 * and few enough '*' that fnmatch's backtracking stays cheap. */
static bool is_simple_glob(const char *leaf)
{
	if (!strpbrk(leaf, "*?[") || strlen(leaf) > 255)
		return false;
	int stars = 0;
	for (const char *p = leaf; *p; p++)
		stars += *p == '*';
	return stars <= 4;
}

static bool need_data_address(struct session *s)
{
	if (tls_required_for(s, s->anonymous) && !s->prot_private) {
		reply(s, 521, "Data connections must be protected: use PROT P.");
		return false;
	}
	if (s->data_mode != DATA_NONE)
		return true;
	if (s->cfg->compat == COMPAT_COMP431)
		reply(s, R_BAD_SEQUENCE, "Bad sequence of commands.");
	else
		reply(s, R_CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first.");
	return false;
}

/* ---- login ------------------------------------------------------------ */

static bool is_anonymous_name(const char *name)
{
	return strcasecmp(name, "anonymous") == 0 || strcasecmp(name, "ftp") == 0;
}

/* Seed 004's server takes any name as a guest; ferry's default only the
 * anonymous names (the others are virtual users). */
static bool is_guest(const struct session *s, const char *name)
{
	return is_anonymous_name(name) || s->cfg->compat == COMPAT_COMP431;
}

/* The per-address throttle (worker_logins_blocked): checked at USER and
 * again at PASS, or sessions that sent USER before the block would go on
 * guessing through it. True when it refused and ended the session. */
static bool refuse_blocked_address(struct session *s)
{
	if (!worker_logins_blocked(s->ip_slot))
		return false;
	session_set_login(s, LOGIN_NONE);
	reply(s, R_UNAVAILABLE, "Too many failed logins from your address; try again later.");
	session_quit(s);
	return true;
}

static void cmd_user(struct session *s, char *arg)
{
	session_set_login(s, LOGIN_NONE);
	fd_close(&s->rootfd);
	if (tls_required_for(s, is_guest(s, arg)) && s->ctrl_tls != CTLS_ON) {
		reply(s, R_NOT_LOGGED_IN, "TLS required");
		return;
	}
	if (!is_guest(s, arg) && refuse_blocked_address(s))
		return;
	if (is_anonymous_name(arg) && !s->cfg->anonymous) {
		reply(s, R_NOT_LOGGED_IN, "This server does not allow anonymous logins.");
		return;
	}
	s->user = strdup(arg);
	if (!s->user) {
		reply(s, R_LOCAL_ERROR, "Out of memory.");
		return;
	}
	session_set_login(s, LOGIN_USER);
	if (is_guest(s, arg)) {
		reply(s, R_NEED_PASSWORD, "Guest access OK, send password.");
	} else {
		char name[256];
		reply(s, R_NEED_PASSWORD, "Password required for %s.", shown(arg, name, sizeof name));
	}
}

static void login_failed(struct session *s)
{
	session_set_login(s, LOGIN_NONE);
	worker_login_failed(s->ip_slot);
	if (++s->failed_logins >= FERRY_LOGIN_ATTEMPTS) {
		reply(s, R_NOT_LOGGED_IN, "Login incorrect.");
		reply(s, R_UNAVAILABLE, "Too many failed logins; closing connection.");
		session_quit(s);
		return;
	}
	reply(s, R_NOT_LOGGED_IN, "Login incorrect.");
	/* Slow down guessing: the next command waits. */
	session_pause_input(s, clock_ms() + FERRY_LOGIN_FAIL_DELAY_MS);
}

static void cmd_pass(struct session *s, char *arg)
{
	(void)arg;
	if (s->login != LOGIN_USER) {
		if (s->cfg->compat == COMPAT_COMP431)
			reply(s, R_NOT_LOGGED_IN, "Not logged in.");
		else
			reply(s, R_BAD_SEQUENCE, "Login with USER first.");
		return;
	}
	if (is_guest(s, s->user)) {
		s->rootfd = fcntl(ferryd_anon_rootfd, F_DUPFD_CLOEXEC, 0);
		s->anonymous = true;
		s->writable = s->cfg->writable;
	} else {
		if (refuse_blocked_address(s))
			return;
		const struct user *u = users_check(s->user, arg ? arg : "");
		if (!u) {
			login_failed(s);
			return;
		}
		s->rootfd = open(u->home, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->rootfd < 0) {
			session_set_login(s, LOGIN_NONE);
			reply(s, R_NOT_LOGGED_IN, "Home directory unavailable.");
			return;
		}
		s->anonymous = false;
		s->writable = u->writable;
	}
	if (s->rootfd < 0) {
		session_set_login(s, LOGIN_NONE);
		reply(s, R_LOCAL_ERROR, "Cannot open the served directory.");
		return;
	}
	free(s->cwd);
	s->cwd = strdup("/");
	if (!s->cwd) {
		session_set_login(s, LOGIN_NONE);
		reply(s, R_LOCAL_ERROR, "Out of memory.");
		return;
	}
	session_set_login(s, LOGIN_DONE);
	if (s->anonymous) {
		reply(s, R_LOGGED_IN, "Guest login OK.");
	} else {
		char name[256];
		reply(s, R_LOGGED_IN, "User %s logged in.", shown(s->user, name, sizeof name));
	}
}

static void cmd_quit(struct session *s, char *arg)
{
	(void)arg;
	xfer_discard(s);
	data_release(s);
	reply(s, R_GOODBYE, "Goodbye.");
	session_quit(s);
}

static void cmd_acct(struct session *s, char *arg)
{
	(void)arg;
	reply(s, R_NOT_NEEDED, "ACCT not needed.");
}

/* ---- settings ---------------------------------------------------------- */

static void cmd_syst(struct session *s, char *arg)
{
	(void)arg;
	reply(s, R_SYSTEM_TYPE, "UNIX Type: L8.");
}

static void cmd_noop(struct session *s, char *arg)
{
	(void)arg;
	reply(s, R_CMD_OK, "NOOP ok.");
}

static void cmd_type(struct session *s, char *arg)
{
	char t = (char)toupper((unsigned char)arg[0]);
	const char *rest = arg + 1;
	if ((t == 'A' || t == 'E') && (!*rest || ((rest[0] == ' ') && strchr("NTCntc", rest[1]) && rest[1] && !rest[2]))) {
		if (t == 'E' || (rest[0] && toupper((unsigned char)rest[1]) != 'N')) {
			reply(s, R_PARAM_NOT_IMPLEMENTED, "Type not implemented for that parameter.");
			return;
		}
		s->type = 'A';
		reply(s, R_CMD_OK, "Type set to A.");
	} else if (t == 'I' && !*rest) {
		s->type = 'I';
		reply(s, R_CMD_OK, "Type set to I.");
	} else if (t == 'L' && (rest[0] == ' ' ? isdigit((unsigned char)rest[1]) && !rest[2]
					      : isdigit((unsigned char)rest[0]) && !rest[1])) {
		/* "L 8" per RFC 959; "L8" too, as vsftpd and ProFTPD take it. */
		if (rest[rest[0] == ' '] != '8') {
			reply(s, R_PARAM_NOT_IMPLEMENTED, "Only L 8 is supported.");
			return;
		}
		s->type = 'I';
		reply(s, R_CMD_OK, "Type set to L 8.");
	} else {
		reply(s, R_BAD_ARGS, "Unrecognised TYPE parameter.");
	}
}

static void cmd_mode(struct session *s, char *arg)
{
	char m = (char)toupper((unsigned char)arg[0]);
	if (arg[1] || !strchr("SBC", m))
		reply(s, R_BAD_ARGS, "Unrecognised MODE parameter.");
	else if (m != 'S')
		reply(s, R_PARAM_NOT_IMPLEMENTED, "Only stream mode (S) is supported.");
	else
		reply(s, R_CMD_OK, "Mode set to S.");
}

static void cmd_stru(struct session *s, char *arg)
{
	char m = (char)toupper((unsigned char)arg[0]);
	if (arg[1] || !strchr("FRP", m))
		reply(s, R_BAD_ARGS, "Unrecognised STRU parameter.");
	else if (m != 'F')
		reply(s, R_PARAM_NOT_IMPLEMENTED, "Only file structure (F) is supported.");
	else
		reply(s, R_CMD_OK, "Structure set to F.");
}

static void cmd_allo(struct session *s, char *arg)
{
	(void)arg;
	reply(s, R_NOT_NEEDED, "ALLO command ignored.");
}

/* The fact names of the set facts, each followed by ';' and, with
 * starred, marked '*' when in `selected` (FEAT's form). */
static void fact_list(char *out, size_t outlen, unsigned facts, unsigned selected, bool starred)
{
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < LISTING_FACT_COUNT; i++) {
		if (!(facts & (1u << i)))
			continue;
		int n = snprintf(out + o, outlen - o, "%s%s;", listing_fact_names[i],
				 starred && (selected & (1u << i)) ? "*" : "");
		if (n < 0 || (size_t)n >= outlen - o)
			break;
		o += (size_t)n;
	}
}

/* RFC 3659 7.9: OPTS MLST fact;fact;... selects the facts MLST and MLSD
 * show, unknown names ignored, none at all for an empty list. */
static void opts_mlst(struct session *s, const char *list)
{
	unsigned facts = 0;
	while (*list) {
		size_t len = strcspn(list, ";");
		for (int i = 0; i < LISTING_FACT_COUNT; i++)
			if (strlen(listing_fact_names[i]) == len && strncasecmp(list, listing_fact_names[i], len) == 0)
				facts |= 1u << i;
		list += len;
		if (*list == ';')
			list++;
	}
	s->mlst_facts = facts;
	char names[64];
	fact_list(names, sizeof names, facts, facts, false);
	reply(s, R_CMD_OK, "MLST OPTS%s%s", facts ? " " : "", names);
}

static void cmd_opts(struct session *s, char *arg)
{
	if (strcasecmp(arg, "UTF8 ON") == 0 || strcasecmp(arg, "UTF8") == 0)
		reply(s, R_CMD_OK, "Always in UTF8 mode.");
	else if (strncasecmp(arg, "MLST ", 5) == 0)
		opts_mlst(s, arg + 5);
	else if (strcasecmp(arg, "MLST") == 0)
		opts_mlst(s, "");
	else
		reply(s, R_BAD_ARGS, "Option not understood.");
}

static void cmd_feat(struct session *s, char *arg)
{
	(void)arg;
	char facts[64];
	fact_list(facts, sizeof facts, FACT_ALL, s->mlst_facts, true);
	reply(s, R_SYSTEM_STATUS,
	      "Features:\n%s EPRT\n EPSV\n MDTM\n MLST %s\n PASV\n%s"
	      " MFMT\n REST STREAM\n SIZE\n TVFS\n UTF8\nEnd",
	      ferryd_tls_ctx ? " AUTH TLS\n AUTH SSL\n" : "", facts, ferryd_tls_ctx ? " PBSZ\n PROT\n" : "");
}

/* ---- TLS (RFC 4217) ---------------------------------------------------- */

static void cmd_auth(struct session *s, char *arg)
{
	if (!ferryd_tls_ctx) {
		reply(s, R_NOT_IMPLEMENTED, "TLS is not configured on this server.");
		return;
	}
	if (strcasecmp(arg, "TLS") != 0 && strcasecmp(arg, "SSL") != 0 && strcasecmp(arg, "TLS-C") != 0 &&
	    strcasecmp(arg, "TLS-P") != 0) {
		reply(s, R_PARAM_NOT_IMPLEMENTED, "AUTH mechanism not supported; use TLS.");
		return;
	}
	if (s->ctrl_tls != CTLS_OFF) {
		reply(s, R_BAD_SEQUENCE, "TLS is already active.");
		return;
	}
	reply(s, R_AUTH_OK, "Proceed with negotiation.");
	session_start_tls(s);
}

static void cmd_pbsz(struct session *s, char *arg)
{
	if (s->ctrl_tls != CTLS_ON) {
		reply(s, R_BAD_SEQUENCE, "PBSZ needs AUTH TLS first.");
		return;
	}
	if (!isdigit((unsigned char)arg[0]) || strspn(arg, "0123456789") != strlen(arg)) {
		reply(s, R_BAD_ARGS, "PBSZ needs a number.");
		return;
	}
	s->pbsz_done = true;
	reply(s, R_CMD_OK, "PBSZ=0");
}

static void cmd_prot(struct session *s, char *arg)
{
	if (s->ctrl_tls != CTLS_ON || !s->pbsz_done) {
		reply(s, R_BAD_SEQUENCE, "PROT needs AUTH TLS and PBSZ first.");
		return;
	}
	char level = (char)toupper((unsigned char)arg[0]);
	if (arg[1] || !strchr("CSEP", level)) {
		reply(s, R_PARAM_NOT_IMPLEMENTED, "Unrecognised PROT level.");
		return;
	}
	if (level == 'S' || level == 'E') {
		reply(s, 536, "PROT level not supported; use C or P.");
		return;
	}
	s->prot_private = level == 'P';
	reply(s, R_CMD_OK, "PROT now %s.", s->prot_private ? "Private" : "Clear");
}

static void cmd_ccc(struct session *s, char *arg)
{
	(void)arg;
	reply(s, 534, "CCC is not permitted: the control connection stays protected.");
}


static void cmd_help(struct session *s, char *arg);
static bool defined_but_not_implemented(const char *verb);
static void begin_record(struct session *s, const char *verb, const char *arg);

/* Applies chmod/utimes to a path through the jail: the path is opened
 * O_PATH beneath the root, then changed through /proc/self/fd, so the
 * change lands on exactly the inode the jail resolved. */
static int change_through_fd(struct session *s, const char *arg, mode_t mode, const struct timespec *times)
{
	char vp[FERRY_PATH_MAX];
	if (resolve_quiet(s, arg, vp, sizeof vp) != 0)
		return -ENAMETOOLONG;
	/* A root without search permission could not be opened to undo it:
	 * one SITE CHMOD 000 / would lock every session out for good. */
	if (!times && strcmp(vp, "/") == 0)
		return -EPERM;
	int fd = path_open(s->rootfd, vp, O_PATH, 0);
	if (fd < 0)
		return fd;
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	int rc = times ? utimensat(AT_FDCWD, proc, times, 0) : chmod(proc, mode);
	rc = rc < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int digits(const char *p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

/* "YYYYMMDDHHMMSS" (UTC) -> time; false when malformed. */
static bool parse_mdtm_time(const char *t, size_t len, time_t *out)
{
	if (len != 14 || strspn(t, "0123456789") < 14)
		return false;
	struct tm tm = {
		.tm_year = digits(t, 4) - 1900,
		.tm_mon = digits(t + 4, 2) - 1,
		.tm_mday = digits(t + 6, 2),
		.tm_hour = digits(t + 8, 2),
		.tm_min = digits(t + 10, 2),
		.tm_sec = digits(t + 12, 2),
	};
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	*out = timegm(&tm);
	return true;
}

static void set_mtime(struct session *s, const char *stamp, const char *path, int ok_code, const char *ok_fmt)
{
	time_t t;
	char n[256];
	if (!parse_mdtm_time(stamp, (size_t)(strchr(stamp, ' ') ? strchr(stamp, ' ') - stamp : (long)strlen(stamp)), &t) ||
	    !path || !*path) {
		reply(s, R_BAD_ARGS, "Expected YYYYMMDDHHMMSS and a path.");
		return;
	}
	struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = t}};
	int rc = change_through_fd(s, path, 0, times);
	if (rc < 0)
		reply_errno(s, -rc, shown(path, n, sizeof n));
	else
		reply(s, ok_code, ok_fmt, (int)14, stamp, shown(path, n, sizeof n));
}

static void cmd_mfmt(struct session *s, char *arg)
{
	char *sp = strchr(arg, ' ');
	set_mtime(s, arg, sp ? sp + 1 : NULL, R_FILE_STATUS, "Modify=%.*s; %s");
}

static void cmd_site(struct session *s, char *arg)
{
	char word[16];
	size_t n = 0;
	while (arg[n] && arg[n] != ' ' && n < sizeof word - 1) {
		word[n] = (char)toupper((unsigned char)arg[n]);
		n++;
	}
	word[n] = '\0';
	char *rest = arg[n] == ' ' ? arg + n + 1 : NULL;
	if (strcmp(word, "HELP") == 0) {
		reply(s, R_HELP, "SITE commands recognized:\n HELP\n CHMOD <mode> <path>\n UTIME <YYYYMMDDHHMMSS> <path>\nEnd of SITE HELP.");
		return;
	}
	bool chmod_cmd = strcmp(word, "CHMOD") == 0, utime_cmd = strcmp(word, "UTIME") == 0;
	if (!chmod_cmd && !utime_cmd) {
		reply(s, R_PARAM_NOT_IMPLEMENTED, "SITE %s not implemented.", word);
		return;
	}
	if (!s->writable) {
		reply(s, R_NO_FILE, "Permission denied.");
		return;
	}
	char *path = rest ? strchr(rest, ' ') : NULL;
	if (!rest || !path || !path[1]) {
		reply(s, R_BAD_ARGS, "SITE %s needs two arguments.", word);
		return;
	}
	path++;
	if (utime_cmd) {
		set_mtime(s, rest, path, R_CMD_OK, "SITE UTIME %.*s %s done.");
		return;
	}
	char *end;
	unsigned long mode = strtoul(rest, &end, 8);
	if (end == rest || *end != ' ' || mode > 07777) {
		reply(s, R_BAD_ARGS, "SITE CHMOD needs an octal mode.");
		return;
	}
	/* Never hand out set-id bits through FTP. */
	int rc = change_through_fd(s, path, (mode_t)(mode & 01777), NULL);
	char nm[256];
	if (rc < 0)
		reply_errno(s, -rc, shown(path, nm, sizeof nm));
	else
		reply(s, R_CMD_OK, "SITE CHMOD command ok.");
}

/* ---- directories ------------------------------------------------------- */

static void cmd_pwd(struct session *s, char *arg)
{
	(void)arg;
	char q[FERRY_PATH_MAX * 2 + 1];
	reply(s, R_PATH_CREATED, "\"%s\" is the current directory.", quote_path(s->cwd, q, sizeof q));
}

static void cmd_cwd(struct session *s, char *arg)
{
	char vp[FERRY_PATH_MAX];
	if (!resolve(s, arg, vp, sizeof vp))
		return;
	int fd = path_open(s->rootfd, vp, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0) {
		char n[256];
		reply(s, R_NO_FILE, "Failed to change directory: %s.", shown(arg, n, sizeof n));
		return;
	}
	close(fd);
	char *cwd = strdup(vp);
	if (!cwd) {
		reply(s, R_LOCAL_ERROR, "Out of memory.");
		return;
	}
	free(s->cwd);
	s->cwd = cwd;
	reply(s, R_FILE_ACTION_OK, "Directory successfully changed.");
}

static void cmd_cdup(struct session *s, char *arg)
{
	(void)arg;
	char up[] = "..";
	cmd_cwd(s, up);
}

static void cmd_mkd(struct session *s, char *arg)
{
	char vp[FERRY_PATH_MAX];
	if (!resolve(s, arg, vp, sizeof vp))
		return;
	const char *leaf;
	int dfd = path_open_parent(s->rootfd, vp, &leaf);
	int rc = dfd < 0 ? dfd : (mkdirat(dfd, leaf, 0755) < 0 ? -errno : 0);
	if (dfd >= 0)
		close(dfd);
	char n[256];
	if (rc < 0) {
		reply_errno(s, -rc, shown(arg, n, sizeof n));
		return;
	}
	char q[FERRY_PATH_MAX * 2 + 1];
	reply(s, R_PATH_CREATED, "\"%s\" created.", quote_path(vp, q, sizeof q));
}

/* Runs an *at() operation on the parent of arg's path. */
static int at_parent(struct session *s, const char *vp, int (*op)(int dfd, const char *leaf))
{
	const char *leaf;
	int dfd = path_open_parent(s->rootfd, vp, &leaf);
	if (dfd < 0)
		return dfd;
	int rc = op(dfd, leaf);
	close(dfd);
	return rc;
}

static int op_rmdir(int dfd, const char *leaf) { return unlinkat(dfd, leaf, AT_REMOVEDIR) < 0 ? -errno : 0; }

static int op_unlink(int dfd, const char *leaf)
{
	struct stat st;
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	return unlinkat(dfd, leaf, 0) < 0 ? -errno : 0;
}

static int op_exists(int dfd, const char *leaf)
{
	struct stat st;
	return fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static void cmd_rmd(struct session *s, char *arg)
{
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, arg, vp, sizeof vp))
		return;
	int rc = at_parent(s, vp, op_rmdir);
	struct stat st;
	if (rc == -ENOTDIR && path_stat(s->rootfd, vp, &st) == 0 && !S_ISDIR(st.st_mode))
		reply(s, R_NO_FILE, "%s: Not a directory.", shown(arg, n, sizeof n));
	else if (rc < 0)
		reply_errno(s, -rc, shown(arg, n, sizeof n));
	else
		reply(s, R_FILE_ACTION_OK, "Directory removed.");
}

static void cmd_dele(struct session *s, char *arg)
{
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, arg, vp, sizeof vp))
		return;
	int rc = at_parent(s, vp, op_unlink);
	if (rc < 0)
		reply_errno(s, -rc, shown(arg, n, sizeof n));
	else
		reply(s, R_FILE_ACTION_OK, "File deleted.");
}

static void cmd_rnfr(struct session *s, char *arg)
{
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, arg, vp, sizeof vp))
		return;
	int rc = at_parent(s, vp, op_exists);
	if (rc < 0) {
		reply_errno(s, -rc, shown(arg, n, sizeof n));
		return;
	}
	free(s->rnfr);
	s->rnfr = strdup(vp);
	if (!s->rnfr)
		reply(s, R_LOCAL_ERROR, "Out of memory.");
	else
		reply(s, R_PENDING, "Ready for RNTO.");
}

static void cmd_rnto(struct session *s, char *arg)
{
	char vp[FERRY_PATH_MAX], n[256];
	char *from = s->rnfr;
	s->rnfr = NULL;
	if (!from) {
		reply(s, R_BAD_SEQUENCE, "RNFR required first.");
		return;
	}
	if (!resolve(s, arg, vp, sizeof vp)) {
		free(from);
		return;
	}
	const char *fleaf, *tleaf;
	int fd1 = path_open_parent(s->rootfd, from, &fleaf);
	int fd2 = fd1 < 0 ? fd1 : path_open_parent(s->rootfd, vp, &tleaf);
	int rc = fd2 < 0 ? fd2 : (renameat(fd1, fleaf, fd2, tleaf) < 0 ? -errno : 0);
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0)
		close(fd2);
	free(from);
	if (rc < 0)
		reply_errno(s, -rc, shown(arg, n, sizeof n));
	else
		reply(s, R_FILE_ACTION_OK, "Rename successful.");
}

/* ---- file status ------------------------------------------------------- */

static bool stat_regular(struct session *s, const char *arg, struct stat *st)
{
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, arg, vp, sizeof vp))
		return false;
	int rc = path_stat(s->rootfd, vp, st);
	if (rc < 0) {
		reply_errno(s, -rc, shown(arg, n, sizeof n));
		return false;
	}
	if (!S_ISREG(st->st_mode)) {
		reply(s, R_NO_FILE, "%s: not a regular file.", shown(arg, n, sizeof n));
		return false;
	}
	return true;
}

static void cmd_size(struct session *s, char *arg)
{
	struct stat st;
	if (stat_regular(s, arg, &st))
		reply(s, R_FILE_STATUS, "%lld", (long long)st.st_size);
}

static void cmd_mdtm(struct session *s, char *arg)
{
	struct stat st;
	/* "MDTM YYYYMMDDHHMMSS path" sets the time, as vsftpd, ProFTPD and
	 * pure-ftpd take it from clients older than MFMT; a file whose name
	 * merely starts that way is still just asked about. */
	char vp[FERRY_PATH_MAX];
	if (strspn(arg, "0123456789") == 14 && arg[14] == ' ' && arg[15] &&
	    !(resolve_quiet(s, arg, vp, sizeof vp) == 0 && path_stat(s->rootfd, vp, &st) == 0)) {
		if (!s->writable)
			reply(s, R_NO_FILE, "Permission denied.");
		else
			set_mtime(s, arg, arg + 15, R_FILE_STATUS, "Modification time set to %.*s: %s.");
		return;
	}
	if (!stat_regular(s, arg, &st))
		return;
	struct tm tm;
	char t[32];
	gmtime_r(&st.st_mtime, &tm);
	strftime(t, sizeof t, "%Y%m%d%H%M%S", &tm);
	reply(s, R_FILE_STATUS, "%s", t);
}

static void cmd_mlst(struct session *s, char *arg)
{
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, arg, vp, sizeof vp))
		return;
	struct stat st;
	int rc = path_stat(s->rootfd, vp, &st);
	if (rc < 0) {
		reply_errno(s, -rc, shown(arg, n, sizeof n));
		return;
	}
	struct buf facts;
	buf_init(&facts, FERRY_PATH_MAX + 256);
	char q[FERRY_PATH_MAX];
	reply_sanitize(vp, q, sizeof q);
	if (listing_facts(&facts, &st, s->writable, s->mlst_facts) != 0) {
		buf_free(&facts);
		reply(s, R_LOCAL_ERROR, "Out of memory.");
		return;
	}
	reply(s, R_FILE_ACTION_OK, "Listing %s\n %s %s\nEnd", q, facts.data, q);
	buf_free(&facts);
}

/* STAT without -a: every name but "." and "..". */
static bool stat_keeps(const char *name, void *unused)
{
	(void)unused;
	return !dir_walk_is_dot(name);
}

static void cmd_stat(struct session *s, char *arg)
{
	if (!arg) {
		char host[64];
		net_host_str(&s->peer, host, sizeof host);
		reply(s, R_SYSTEM_STATUS,
		      "ferry FTP server status:\n Connected to %s\n Logged in as %s\n TYPE: %s, MODE: S, STRU: F\n"
		      " Data connection: %s\n Transfer: %s\nEnd of status",
		      host, s->login == LOGIN_DONE ? (s->anonymous ? "anonymous" : "a user") : "nobody",
		      s->type == 'A' ? "ASCII" : "BINARY",
		      s->data_mode == DATA_ACTIVE ? "active" : s->data_mode == DATA_PASSIVE ? "passive" : "none",
		      s->xfer ? "in progress" : "none");
		return;
	}
	if (s->login != LOGIN_DONE) {
		reply(s, R_NOT_LOGGED_IN, "Please login with USER and PASS.");
		return;
	}
	bool all;
	char *path = skip_list_options(arg, &all);
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, path, vp, sizeof vp))
		return;
	struct stat st;
	int rc = path_stat(s->rootfd, vp, &st);
	if (rc < 0) {
		/* RFC 959 5.4 gives STAT 450, not 550, for a file it cannot show. */
		reply(s, R_FILE_BUSY, "%s: %s.", shown(path, n, sizeof n), errno_text(-rc));
		return;
	}
	/* The listing goes over the control connection: bounded, and every
	 * line starts with a space so no name can look like a reply code. */
	struct buf body;
	buf_init(&body, FERRY_CTRL_OUT_MAX / 2);
	rc = buf_printf(&body, "213-Status of %s:\r\n", shown(path ? path : vp, n, sizeof n));
	time_t now = time(NULL);
	if (S_ISDIR(st.st_mode)) {
		int dfd = path_open(s->rootfd, vp, O_RDONLY | O_DIRECTORY, 0);
		DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
		if (!d && dfd >= 0)
			close(dfd);
		struct dir_walk walk;
		int scan_left = INT_MAX;
		if (d) {
			dir_walk_init(&walk, d, FERRY_LIST_SORT_MAX, all ? NULL : stat_keeps, NULL);
			if (dir_walk_read(&walk, &scan_left) < 0) {
				closedir(d);
				d = NULL;
			}
			scan_left = INT_MAX;
		}
		const char *name;
		int count = 0;
		bool truncated = false;
		while (d && rc == 0 && (name = dir_walk_next(&walk, &scan_left))) {
			/* Bounded in entries and bytes; the rest is for LIST. */
			if (count >= FERRY_STAT_MAX_ENTRIES || body.len + 2 * FERRY_PATH_MAX + 128 > body.limit) {
				truncated = true;
				break;
			}
			struct stat est;
			if (listing_lstat(dirfd(d), s->rootfd, name, &est) < 0)
				continue;
			rc = buf_append(&body, " ", 1);
			if (!rc)
				rc = listing_entry(&body, LIST_LONG, dirfd(d), name, &est, s->writable, 0, now);
			count++;
		}
		if (d) {
			dir_walk_close(&walk);
			closedir(d);
		}
		if (rc == 0 && truncated)
			rc = buf_printf(&body, " (%d entries shown; use LIST for the whole directory)\r\n", count);
	} else {
		rc = buf_append(&body, " ", 1);
		if (!rc)
			rc = listing_entry(&body, LIST_LONG, -1, path_leaf(vp), &st, s->writable, 0, now);
	}
	if (rc == 0) {
		transcript(s, "213- (status listing, %zu bytes)", body.len);
		reply_raw(s, body.data, body.len);
		reply(s, R_FILE_STATUS, "End of status.");
	} else {
		reply(s, R_LOCAL_ERROR, "Status listing too large.");
	}
	buf_free(&body);
}

/* ---- data address ------------------------------------------------------ */

static bool epsv_all_refuses(struct session *s)
{
	if (s->epsv_all) {
		reply(s, R_BAD_ARGS, "Only EPSV is allowed after EPSV ALL.");
		return true;
	}
	return false;
}

static void cmd_port(struct session *s, char *arg)
{
	struct sockaddr_storage a;
	if (ftp_port_parse(arg, &a) != 0) {
		reply(s, R_BAD_ARGS, "Syntax error in PORT address.");
		return;
	}
	if (!epsv_all_refuses(s))
		data_active(s, &a, false);
}

/* The control connection's address family: the only one its data
 * connections can use (they go to and from the same host). */
static int control_family(const struct session *s)
{
	struct sockaddr_storage l = s->local;
	net_addr_unmap(&l);
	return l.ss_family;
}

/* Its RFC 2428 protocol number, the one a 522 tells the client to use. */
static const char *control_protocol(const struct session *s)
{
	return control_family(s) == AF_INET ? "1" : "2";
}

static void cmd_eprt(struct session *s, char *arg)
{
	struct sockaddr_storage a;
	int rc = ftp_eprt_parse(arg, &a);
	if (rc == 0) {
		net_addr_unmap(&a);
		if (a.ss_family != control_family(s))
			rc = -EAFNOSUPPORT;
	}
	if (rc == -EAFNOSUPPORT) {
		reply(s, R_PROTO_NOT_SUPPORTED, "Network protocol not supported, use (%s).", control_protocol(s));
		return;
	}
	if (rc != 0) {
		reply(s, R_BAD_ARGS, "Syntax error in EPRT address.");
		return;
	}
	if (!epsv_all_refuses(s))
		data_active(s, &a, true);
}

static void cmd_pasv(struct session *s, char *arg)
{
	(void)arg;
	if (!epsv_all_refuses(s))
		data_passive(s, false);
}

static void cmd_epsv(struct session *s, char *arg)
{
	if (arg && strcasecmp(arg, "ALL") == 0) {
		s->epsv_all = true;
		reply(s, R_CMD_OK, "EPSV ALL ok.");
		return;
	}
	if (arg) {
		/* A protocol number (RFC 2428: decimal, as in EPRT) that is not
		 * this connection's is 522; anything else is not a parameter. */
		const char *want = control_protocol(s);
		size_t len = strspn(arg, "0123456789");
		if (len == 0 || len > 5 || arg[len] != '\0') {
			reply(s, R_BAD_ARGS, "Unrecognised EPSV parameter.");
			return;
		}
		if (strcmp(arg, want) != 0) {
			reply(s, R_PROTO_NOT_SUPPORTED, "Network protocol not supported, use (%s).", want);
			return;
		}
	}
	data_passive(s, true);
}

/* ---- transfers --------------------------------------------------------- */

static uint64_t take_rest(struct session *s)
{
	uint64_t r = s->rest;
	s->rest = 0;
	return r;
}

static void cmd_rest(struct session *s, char *arg)
{
	char *end;
	if (!isdigit((unsigned char)arg[0])) {
		reply(s, R_BAD_ARGS, "REST needs a non-negative byte offset.");
		return;
	}
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno || *end || v > (unsigned long long)INT64_MAX) {
		reply(s, R_BAD_ARGS, "REST needs a non-negative byte offset.");
		return;
	}
	s->rest = v;
	reply(s, R_PENDING, "Restarting at %llu. Send STORE or RETRIEVE to initiate transfer.", v);
}

static void cmd_retr(struct session *s, char *arg)
{
	uint64_t rest = take_rest(s);
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, arg, vp, sizeof vp))
		return;
	int fd = path_open(s->rootfd, vp, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0) {
		reply_errno(s, -fd, shown(arg, n, sizeof n));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		reply(s, R_NO_FILE, "%s: not a regular file.", shown(arg, n, sizeof n));
		return;
	}
	if (rest > (uint64_t)st.st_size) {
		close(fd);
		reply(s, 554, "Restart offset %llu is beyond the end of the file.", (unsigned long long)rest);
		return;
	}
	if (!need_data_address(s)) {
		close(fd);
		return;
	}
	struct transfer *t = xfer_new(XK_RETR);
	if (!t) {
		close(fd);
		reply(s, R_LOCAL_ERROR, "Out of memory.");
		return;
	}
	/* O_NONBLOCK stays: regular files ignore it, and it kept the open from
	 * blocking on a FIFO. */
	t->file_fd = fd;
	t->offset = (off_t)rest;
	t->end = st.st_size;
	if (rest && lseek(fd, (off_t)rest, SEEK_SET) < 0) {
		xfer_free(t);
		reply(s, R_LOCAL_ERROR, "Cannot seek.");
		return;
	}
	char text[FERRY_PATH_MAX + 64];
	if (s->cfg->compat == COMPAT_COMP431)
		snprintf(text, sizeof text, "File status okay.");
	else
		snprintf(text, sizeof text, "Opening %s mode data connection for %s (%lld bytes).",
			 s->type == 'A' ? "ASCII" : "BINARY", shown(arg, n, sizeof n), (long long)st.st_size);
	xfer_start(s, t, text);
}

enum store_mode { STORE_REPLACE, STORE_APPEND, STORE_UNIQUE };

static void store(struct session *s, char *arg, enum store_mode mode)
{
	uint64_t rest = take_rest(s);
	char vp[FERRY_PATH_MAX], n[256];
	char unique[64];
	if (mode == STORE_UNIQUE) {
		/* STOU: a fresh name in the current directory. */
		static unsigned long counter;
		snprintf(unique, sizeof unique, "ferry.%d.%lld.%lu", (int)getpid(), (long long)clock_ms(), ++counter);
		arg = unique;
		if (!resolve(s, unique, vp, sizeof vp))
			return;
	} else if (!resolve(s, arg, vp, sizeof vp)) {
		return;
	}
	const char *leaf;
	int dfd = path_open_parent(s->rootfd, vp, &leaf);
	if (dfd < 0) {
		reply_errno(s, -dfd, shown(arg, n, sizeof n));
		return;
	}
	struct stat st;
	/* Not following a symlink here: the upload replaces the link itself,
	 * and what a link points at (maybe outside the root) stays unknown. */
	bool absent = false;
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			close(dfd);
			reply(s, R_NO_FILE, "%s: Is a directory.", shown(arg, n, sizeof n));
			return;
		}
	} else if (errno == ENAMETOOLONG) {
		/* 553 now, not after the whole upload has come in. */
		close(dfd);
		reply_errno(s, ENAMETOOLONG, shown(arg, n, sizeof n));
		return;
	} else {
		absent = errno == ENOENT;
	}
	if (!need_data_address(s)) {
		close(dfd);
		return;
	}
	struct transfer *t = xfer_new(XK_STOR);
	if (!t || !(t->target_leaf = strdup(leaf))) {
		close(dfd);
		if (t)
			xfer_free(t);
		reply(s, R_LOCAL_ERROR, "Out of memory.");
		return;
	}
	t->target_dirfd = dfd;
	t->target_absent = absent;
	int fd;
	if (mode == STORE_APPEND || rest > 0) {
		/* Resuming writes in place: that is what APPE and REST are for.
		 * Not O_APPEND: splice(2) refuses append-mode files. */
		t->in_place = true;
		t->prealloc.off = true; /* the file has its blocks; nothing to trim */
		/* O_NONBLOCK: opening a FIFO for writing must not stall the worker.
		 * O_EXCL first, to know whether a refusal below must take the
		 * name away again. */
		bool created = false;
		fd = -EEXIST;
		if (absent) {
			fd = path_open(s->rootfd, vp, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK, 0644);
			created = fd >= 0;
		}
		if (fd == -EEXIST)
			fd = path_open(s->rootfd, vp, O_WRONLY | O_CREAT | O_NONBLOCK, 0644);
		struct stat fst;
		if (fd >= 0 && (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode))) {
			close(fd);
			xfer_free(t);
			reply(s, R_NO_FILE, "%s: not a regular file.", shown(arg, n, sizeof n));
			return;
		} else if (fd >= 0) {
			fcntl(fd, F_SETFL, O_WRONLY);
		}
		if (fd >= 0) {
			off_t at = mode == STORE_APPEND ? lseek(fd, 0, SEEK_END) : lseek(fd, (off_t)rest, SEEK_SET);
			if (at < 0) {
				int err = errno;
				close(fd);
				fd = -err;
				if (created) /* the refused command leaves no empty file */
					unlinkat(dfd, leaf, 0);
			}
		}
	} else {
		/* A new file nobody can see until it is complete. */
		t->no_replace = mode == STORE_UNIQUE;
		fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0) {
			t->anon_tmp = true;
		} else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
			char tmp[64];
			snprintf(tmp, sizeof tmp, ".ferry-up.%d.%lld.tmp", (int)getpid(), (long long)clock_ms());
			fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
			if (fd >= 0 && !(t->tmp_name = strdup(tmp))) {
				unlinkat(dfd, tmp, 0);
				close(fd);
				fd = -ENOMEM;
			} else if (fd < 0) {
				fd = -errno;
			}
		} else {
			fd = -errno;
		}
	}
	if (fd < 0) {
		xfer_free(t);
		reply_errno(s, -fd, shown(arg, n, sizeof n));
		return;
	}
	t->file_fd = fd;
	if (s->type != 'A' && xfer_attach_pipe(t) < 0) {
		xfer_free(t);
		reply(s, R_LOCAL_ERROR, "Cannot create a pipe.");
		return;
	}
	char text[FERRY_PATH_MAX + 64];
	if (mode == STORE_UNIQUE)
		snprintf(text, sizeof text, "FILE: %s", unique);
	else
		snprintf(text, sizeof text, "Ok to send data.");
	xfer_start(s, t, text);
}

static void cmd_stor(struct session *s, char *arg) { store(s, arg, STORE_REPLACE); }
static void cmd_appe(struct session *s, char *arg) { store(s, arg, STORE_APPEND); }
static void cmd_stou(struct session *s, char *arg) { store(s, arg, STORE_UNIQUE); }

static void list_common(struct session *s, char *arg, enum list_format fmt)
{
	bool all = false;
	char *path = fmt == LIST_MLSD ? arg : skip_list_options(arg, &all);
	char vp[FERRY_PATH_MAX], n[256];
	if (!resolve(s, path, vp, sizeof vp))
		return;
	struct stat st;
	int rc = path_stat(s->rootfd, vp, &st);
	const char *pattern = NULL;
	char pat[256];
	if (rc == -ENOENT && fmt != LIST_MLSD && is_simple_glob(path_leaf(vp))) {
		/* "LIST *.txt", "NLST dir/a?c": match the last component within its
		 * directory. Wildcards elsewhere stay literal: no recursion. */
		snprintf(pat, sizeof pat, "%s", path_leaf(vp));
		pattern = pat;
		char *slash = strrchr(vp, '/');
		if (slash == vp)
			vp[1] = '\0';
		else
			*slash = '\0';
		rc = path_stat(s->rootfd, vp, &st);
		if (rc == 0 && !S_ISDIR(st.st_mode))
			rc = -ENOENT;
	}
	if (rc < 0) {
		reply_errno(s, -rc, shown(path, n, sizeof n));
		return;
	}
	if (fmt == LIST_MLSD && !S_ISDIR(st.st_mode)) {
		/* RFC 3659 7.1: "if a directory is named, otherwise a 501" */
		reply(s, R_BAD_ARGS, "%s: Not a directory.", shown(path, n, sizeof n));
		return;
	}
	if (!need_data_address(s))
		return;
	struct transfer *t = xfer_new(XK_LIST);
	if (!t) {
		reply(s, R_LOCAL_ERROR, "Out of memory.");
		return;
	}
	t->lfmt = fmt;
	t->list_all = all;
	if (pattern) {
		t->pattern = strdup(pattern);
		/* NLST answers with names the client can RETR: keep its directory part. */
		const char *cut = strrchr(path, '/');
		if (fmt == LIST_NAMES && cut)
			t->prefix = strndup(path, (size_t)(cut - path + 1));
		if (!t->pattern || (fmt == LIST_NAMES && cut && !t->prefix)) {
			xfer_free(t);
			reply(s, R_LOCAL_ERROR, "Out of memory.");
			return;
		}
	} else if (fmt == LIST_NAMES && path && *path && S_ISDIR(st.st_mode)) {
		/* "NLST dir" answers dir/name, as vsftpd and ProFTPD do: clients
		 * (mget dir) RETR each line as it stands. */
		size_t len = strlen(path);
		while (len > 1 && path[len - 1] == '/')
			len--;
		if (asprintf(&t->prefix, "%.*s%s", (int)len, path, path[len - 1] == '/' ? "" : "/") < 0) {
			t->prefix = NULL;
			xfer_free(t);
			reply(s, R_LOCAL_ERROR, "Out of memory.");
			return;
		}
	}
	if (S_ISDIR(st.st_mode)) {
		int dfd = path_open(s->rootfd, vp, O_RDONLY | O_DIRECTORY, 0);
		t->dir = dfd < 0 ? NULL : fdopendir(dfd);
		if (!t->dir) {
			if (dfd >= 0)
				close(dfd);
			xfer_free(t);
			reply_errno(s, dfd < 0 ? -dfd : errno, shown(path, n, sizeof n));
			return;
		}
	} else {
		/* A single file: its one line is the whole listing. */
		const char *leaf = fmt == LIST_NAMES && path ? path : path_leaf(vp);
		int pfd = -1;
		const char *l2;
		if (fmt == LIST_LONG)
			pfd = path_open_parent(s->rootfd, vp, &l2);
		struct stat lst = st;
		if (pfd >= 0)
			fstatat(pfd, l2, &lst, AT_SYMLINK_NOFOLLOW);
		if (listing_entry(&t->stage, fmt, pfd, leaf, &lst, s->writable, s->mlst_facts, time(NULL)) != 0) {
			if (pfd >= 0)
				close(pfd);
			xfer_free(t);
			reply(s, R_LOCAL_ERROR, "Out of memory.");
			return;
		}
		if (pfd >= 0)
			close(pfd);
	}
	xfer_start(s, t, "Here comes the directory listing.");
}

static void cmd_list(struct session *s, char *arg) { list_common(s, arg, LIST_LONG); }
static void cmd_nlst(struct session *s, char *arg) { list_common(s, arg, LIST_NAMES); }
static void cmd_mlsd(struct session *s, char *arg) { list_common(s, arg, LIST_MLSD); }

static void cmd_abor(struct session *s, char *arg)
{
	(void)arg;
	if (s->xfer) {
		/* The transfer's own command ends with 426; ABOR itself with 226.
		 * Park ABOR's record while the transfer's reply goes out. */
		struct cmd_record abor = s->cur;
		s->cur.open = false;
		s->cur.arg = NULL;
		xfer_fail(s, R_TRANSFER_ABORTED, "Connection closed; transfer aborted.");
		s->cur = abor;
		reply(s, R_TRANSFER_COMPLETE, "ABOR successful.");
		return;
	}
	data_reset(s);
	reply(s, 225, "No transfer to abort.");
}

/* ---- the table --------------------------------------------------------- */

static const struct command commands[] = {
	{"USER", cmd_user, ARG_REQUIRED, ACC_ANY, "USER <name>: log in as name (anonymous or ftp for guests)"},
	{"PASS", cmd_pass, ARG_OPTIONAL, ACC_ANY, "PASS <password>: password for USER"},
	{"ACCT", cmd_acct, ARG_REQUIRED, ACC_LOGIN, "ACCT <account>: not needed"},
	{"QUIT", cmd_quit, ARG_NONE, ACC_ANY, "QUIT: end the session"},
	{"AUTH", cmd_auth, ARG_REQUIRED, ACC_ANY, "AUTH TLS: protect the control connection"},
	{"PBSZ", cmd_pbsz, ARG_REQUIRED, ACC_ANY, "PBSZ 0: protection buffer size"},
	{"PROT", cmd_prot, ARG_REQUIRED, ACC_ANY, "PROT C|P: clear or private data connections"},
	{"CCC", cmd_ccc, ARG_NONE, ACC_LOGIN, "CCC: not permitted"},
	{"SYST", cmd_syst, ARG_NONE, ACC_ANY, "SYST: the system type"},
	{"FEAT", cmd_feat, ARG_NONE, ACC_ANY, "FEAT: list extensions"},
	{"HELP", cmd_help, ARG_OPTIONAL, ACC_ANY, "HELP [command]: this help"},
	{"NOOP", cmd_noop, ARG_NONE, ACC_ANY, "NOOP: do nothing"},
	{"STAT", cmd_stat, ARG_OPTIONAL, ACC_LOGIN, "STAT [path]: session status, or a listing over the control connection"},
	{"TYPE", cmd_type, ARG_REQUIRED, ACC_LOGIN, "TYPE A|I|L 8: transfer type"},
	{"MODE", cmd_mode, ARG_REQUIRED, ACC_LOGIN, "MODE S: transfer mode"},
	{"STRU", cmd_stru, ARG_REQUIRED, ACC_LOGIN, "STRU F: file structure"},
	{"OPTS", cmd_opts, ARG_REQUIRED, ACC_LOGIN, "OPTS UTF8 ON: options"},
	{"ALLO", cmd_allo, ARG_REQUIRED, ACC_LOGIN, "ALLO <size>: not needed"},
	{"SITE", cmd_site, ARG_REQUIRED, ACC_LOGIN, "SITE HELP: site commands"},
	{"PWD", cmd_pwd, ARG_NONE, ACC_LOGIN, "PWD: print the working directory"},
	{"XPWD", cmd_pwd, ARG_NONE, ACC_LOGIN, "XPWD: same as PWD"},
	{"CWD", cmd_cwd, ARG_REQUIRED, ACC_LOGIN, "CWD <dir>: change the working directory"},
	{"XCWD", cmd_cwd, ARG_REQUIRED, ACC_LOGIN, "XCWD <dir>: same as CWD"},
	{"CDUP", cmd_cdup, ARG_NONE, ACC_LOGIN, "CDUP: go to the parent directory"},
	{"XCUP", cmd_cdup, ARG_NONE, ACC_LOGIN, "XCUP: same as CDUP"},
	{"PORT", cmd_port, ARG_REQUIRED, ACC_LOGIN, "PORT h1,h2,h3,h4,p1,p2: active data address"},
	{"EPRT", cmd_eprt, ARG_REQUIRED, ACC_LOGIN, "EPRT |af|addr|port|: extended active data address"},
	{"PASV", cmd_pasv, ARG_NONE, ACC_LOGIN, "PASV: passive data connection"},
	{"EPSV", cmd_epsv, ARG_OPTIONAL, ACC_LOGIN, "EPSV [1|2|ALL]: extended passive data connection"},
	{"LIST", cmd_list, ARG_OPTIONAL, ACC_LOGIN, "LIST [path]: long listing"},
	{"NLST", cmd_nlst, ARG_OPTIONAL, ACC_LOGIN, "NLST [path]: names"},
	{"MLSD", cmd_mlsd, ARG_OPTIONAL, ACC_LOGIN, "MLSD [dir]: machine listing"},
	{"MLST", cmd_mlst, ARG_OPTIONAL, ACC_LOGIN, "MLST [path]: facts about one path"},
	{"RETR", cmd_retr, ARG_REQUIRED, ACC_LOGIN, "RETR <file>: download"},
	{"STOR", cmd_stor, ARG_REQUIRED, ACC_WRITE, "STOR <file>: upload"},
	{"STOU", cmd_stou, ARG_OPTIONAL, ACC_WRITE, "STOU: upload under a unique name"},
	{"APPE", cmd_appe, ARG_REQUIRED, ACC_WRITE, "APPE <file>: append"},
	{"REST", cmd_rest, ARG_REQUIRED, ACC_LOGIN, "REST <offset>: restart the next transfer at offset"},
	{"ABOR", cmd_abor, ARG_NONE, ACC_LOGIN, "ABOR: abort the transfer"},
	{"DELE", cmd_dele, ARG_REQUIRED, ACC_WRITE, "DELE <file>: delete"},
	{"MKD", cmd_mkd, ARG_REQUIRED, ACC_WRITE, "MKD <dir>: make a directory"},
	{"XMKD", cmd_mkd, ARG_REQUIRED, ACC_WRITE, "XMKD <dir>: same as MKD"},
	{"RMD", cmd_rmd, ARG_REQUIRED, ACC_WRITE, "RMD <dir>: remove a directory"},
	{"XRMD", cmd_rmd, ARG_REQUIRED, ACC_WRITE, "XRMD <dir>: same as RMD"},
	{"RNFR", cmd_rnfr, ARG_REQUIRED, ACC_WRITE, "RNFR <path>: rename from"},
	{"RNTO", cmd_rnto, ARG_REQUIRED, ACC_WRITE, "RNTO <path>: rename to"},
	{"SIZE", cmd_size, ARG_REQUIRED, ACC_LOGIN, "SIZE <file>: size in bytes"},
	{"MDTM", cmd_mdtm, ARG_REQUIRED, ACC_LOGIN, "MDTM <file>: modification time (UTC)"},
	{"MFMT", cmd_mfmt, ARG_REQUIRED, ACC_WRITE, "MFMT <YYYYMMDDHHMMSS> <file>: set the modification time"},
};

static const struct command *find_command(const char *verb)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].verb, verb) == 0)
			return &commands[i];
	return NULL;
}

static void cmd_help(struct session *s, char *arg)
{
	if (arg) {
		char verb[16];
		size_t n = 0;
		for (; n < sizeof verb - 1 && arg[n]; n++)
			verb[n] = (char)toupper((unsigned char)arg[n]);
		verb[n] = '\0';
		const struct command *c = find_command(verb);
		if (!c && defined_but_not_implemented(verb)) {
			reply(s, R_HELP, "%s is not implemented.", verb);
			return;
		}
		if (!c) {
			char sh[64];
			reply(s, R_BAD_ARGS, "Unknown command %s.", shown(arg, sh, sizeof sh));
			return;
		}
		reply(s, R_HELP, "Syntax: %s", c->help);
		return;
	}
	char text[2048];
	size_t o = (size_t)snprintf(text, sizeof text, "The following commands are recognized:");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		int n = snprintf(text + o, sizeof text - o, "%s%-5s", i % 8 == 0 ? "\n " : " ", commands[i].verb);
		if (n < 0 || (size_t)n >= sizeof text - o)
			break;
		o += (size_t)n;
	}
	snprintf(text + o, sizeof text - o, "\nHelp OK.");
	reply(s, R_HELP, "%s", text);
}

bool command_allowed_during_transfer(const char *line)
{
	char verb[5] = {0};
	for (int i = 0; i < 4 && line[i] && line[i] != ' '; i++)
		verb[i] = (char)toupper((unsigned char)line[i]);
	return strcmp(verb, "ABOR") == 0 || strcmp(verb, "STAT") == 0 || strcmp(verb, "NOOP") == 0;
}

void command_line_too_long(struct session *s)
{
	transcript(s, "(line longer than %d bytes discarded)", FERRY_LINE_MAX);
	begin_record(s, "(too long)", NULL);
	reply(s, R_SYNTAX, "Command line too long.");
}

/* True when verb is in the NULL-ended list. */
static bool verb_listed(const char *verb, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(verb, *list) == 0)
			return true;
	return false;
}

/* Commands the RFCs define that ferryd does not carry out: 502 (RFC 959
 * 4.2: "command not implemented"); any other unknown verb is 500,
 * "command unrecognized". */
static bool defined_but_not_implemented(const char *verb)
{
	static const char *const rfc[] = {"SMNT", "REIN",                       /* RFC 959 */
					  "ADAT", "MIC", "CONF", "ENC",           /* RFC 2228 */
					  "LPRT", "LPSV",                         /* RFC 1639 */
					  "LANG", "HOST", NULL};                  /* RFC 2640, 7151 */
	return verb_listed(verb, rfc);
}

static bool allowed_before_login(const struct session *s, const struct command *c)
{
	static const char *const ok[] = {"USER", "PASS", "QUIT", "FEAT", "SYST", "HELP", "NOOP", "AUTH", "PBSZ",
					 "PROT", "OPTS", NULL};
	/* COMP 431: after the greeting the server "must receive valid USER
	 * and PASS commands" before anything else. */
	static const char *const comp431[] = {"USER", "PASS", "QUIT", NULL};
	return verb_listed(c->verb, s->cfg->compat == COMPAT_COMP431 ? comp431 : ok);
}

/* REST names an offset for the transfer that follows it. Clients set up
 * that transfer in between (PASV, TYPE, SIZE ...); any other command (LIST,
 * CWD, DELE ...) means the offset was not for a later RETR or STOR. */
static bool keeps_rest(const struct command *c)
{
	static const char *const keep[] = {"REST", "RETR", "STOR", "APPE", "PASV", "EPSV", "PORT", "EPRT",
					   "TYPE", "MODE", "STRU", "NOOP", "SIZE", "MDTM", "PBSZ", "PROT",
					   "ALLO", "OPTS", "FEAT", "STAT", "SYST", "HELP", NULL};
	return verb_listed(c->verb, keep);
}

static void begin_record(struct session *s, const char *verb, const char *arg)
{
	free(s->cur.arg);
	s->cur.open = true;
	snprintf(s->cur.verb, sizeof s->cur.verb, "%s", verb);
	s->cur.arg = arg ? strdup(arg) : NULL;
}

void command_dispatch(struct session *s, char *line)
{
	char verb[16];
	char *arg;
	bool bad_bytes = s->lr.bad;
	int split = line_split_command(line, verb, &arg);

	/* Echo the command (passwords of real users masked). */
	if (split == 0 && strcmp(verb, "PASS") == 0 && s->user && !is_guest(s, s->user))
		transcript(s, "PASS ****");
	else
		transcript(s, "%s", line);

	/* RNTO must follow RNFR directly; anything else, even a bad line,
	 * forgets the source. */
	if (s->rnfr && (split != 0 || strcmp(verb, "RNTO") != 0)) {
		free(s->rnfr);
		s->rnfr = NULL;
	}
	if (split != 0 || verb[0] == '\0') {
		/* Every request ends in SUCCESS or FAILURE in the transcript;
		 * these have no verb to name, so a label stands for it. */
		begin_record(s, split != 0 ? "(long verb)" : "(no verb)", NULL);
		reply(s, R_SYNTAX, "Syntax error, command unrecognized.");
		return;
	}
	const struct command *c = find_command(verb);
	begin_record(s, verb, arg);
	if (c && !keeps_rest(c))
		s->rest = 0;
	if (!c) {
		if (defined_but_not_implemented(verb) && s->cfg->compat != COMPAT_COMP431)
			reply(s, R_NOT_IMPLEMENTED, "Command not implemented.");
		else
			reply(s, R_SYNTAX, "Syntax error, command unrecognized.");
		return;
	}
	if (bad_bytes) {
		reply(s, R_BAD_ARGS, "Syntax error: control characters in the command.");
		return;
	}
	/* After USER only PASS, USER or QUIT; anything else restarts the login. */
	if (s->login == LOGIN_USER && c->fn != cmd_pass && c->fn != cmd_user && c->fn != cmd_quit) {
		session_set_login(s, LOGIN_NONE);
		reply(s, R_NOT_LOGGED_IN, "Please login with USER and PASS.");
		return;
	}
	/* Before its arguments: a client not logged in learns only that. */
	if (s->login != LOGIN_DONE && !allowed_before_login(s, c)) {
		reply(s, R_NOT_LOGGED_IN, "Please login with USER and PASS.");
		return;
	}
	if ((c->args == ARG_NONE && arg) || (c->args == ARG_REQUIRED && !arg)) {
		reply(s, R_BAD_ARGS, "Syntax error in parameters or arguments.");
		return;
	}
	if (c->access == ACC_WRITE && !s->writable) {
		reply(s, R_NO_FILE, "Permission denied.");
		return;
	}
	c->fn(s, arg);
}
