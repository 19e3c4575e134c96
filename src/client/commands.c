#include "commands.h"

#include "num.h"
#include "progress.h"
#include "rlist.h"
#include "transfer.h"
#include "words.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* lls stops after this many names: a local listing is for a human. */
#define LLS_MAX_ENTRIES 100000
#define FTP_DEFAULT_PORT 21

static int parse_port(struct client *cl, const char *s, int *port)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535 || s[0] == '-' || s[0] == '+')
		return client_fail(cl, "bad port \"%s\" (1-65535)", s);
	*port = (int)v;
	return 0;
}

/* on/off argument, or a toggle when there is none. */
static int parse_switch(struct client *cl, int argc, char **argv, bool *value)
{
	if (argc < 2) {
		*value = !*value;
		return 0;
	}
	if (strcasecmp(argv[1], "on") == 0)
		*value = true;
	else if (strcasecmp(argv[1], "off") == 0)
		*value = false;
	else
		return client_fail(cl, "usage: %s [on|off]", argv[0]);
	return 0;
}

/* Sends one simple command; on 2xx notes the reply, else reports it. */
static int simple(struct client *cl, const char *verb, const char *arg)
{
	int rc = arg ? ftpc_command_ok(&cl->ftp, "%s %s", verb, arg) : ftpc_command_ok(&cl->ftp, "%s", verb);
	if (rc != 0)
		return client_fail_ftp(cl, NULL);
	client_note_reply(cl);
	return 0;
}

static int cmd_open(struct client *cl, int argc, char **argv)
{
	int port = FTP_DEFAULT_PORT;
	if (argc > 2 && parse_port(cl, argv[2], &port) != 0)
		return -1;
	return client_open(cl, argv[1], port);
}

static int cmd_user(struct client *cl, int argc, char **argv)
{
	return client_login(cl, argv[1], argc > 2 ? argv[2] : NULL);
}

static int cmd_close(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (cl->ftp.state == FTPC_DISCONNECTED)
		return client_fail(cl, "not connected");
	ftpc_quit(&cl->ftp);
	client_note_reply(cl);
	return 0;
}

static int cmd_bye(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (cl->ftp.state != FTPC_DISCONNECTED) {
		ftpc_quit(&cl->ftp);
		client_note_reply(cl);
	}
	cl->quit = true;
	return 0;
}

static int cmd_ls(struct client *cl, int argc, char **argv)
{
	return transfer_listing_show(cl, "LIST", argc > 1 ? argv[1] : NULL);
}

static int cmd_nlist(struct client *cl, int argc, char **argv)
{
	return transfer_listing_show(cl, "NLST", argc > 1 ? argv[1] : NULL);
}

static int cmd_cd(struct client *cl, int argc, char **argv)
{
	(void)argc;
	int rc = simple(cl, "CWD", argv[1]);
	client_track_dir(cl);
	return rc;
}

static int cmd_cdup(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int rc = simple(cl, "CDUP", NULL);
	client_track_dir(cl);
	return rc;
}

/* 257 "/a ""quoted"" dir" is the current directory -> /a "quoted" dir;
 * a 257 without a quoted name is shown whole. */
static int cmd_pwd(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char dir[FERRY_PATH_MAX], shown[FERRY_PATH_MAX];
	int rc = ftpc_pwd(&cl->ftp, dir, sizeof dir);
	if (rc == -EPROTO && ftpc_reply_code(&cl->ftp) == 257)
		snprintf(dir, sizeof dir, "%s", ftpc_reply_text(&cl->ftp));
	else if (rc != 0)
		return client_fail_ftp(cl, NULL);
	reply_sanitize(dir, shown, sizeof shown);
	printf("%s\n", shown);
	fflush(stdout);
	return 0;
}

static int cmd_lcd(struct client *cl, int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("HOME");
	if (!dir)
		return client_fail(cl, "lcd: no directory given and HOME is not set");
	if (chdir(dir) != 0)
		return client_fail(cl, "local: cannot change to %s: %s", dir, strerror(errno));
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof cwd))
		client_note(cl, "Local directory now %s", cwd);
	return 0;
}

static int cmd_lpwd(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return client_fail(cl, "local: cannot get the current directory: %s", strerror(errno));
	printf("%s\n", cwd);
	fflush(stdout);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_lls(struct client *cl, int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : ".";
	struct stat st;
	if (stat(path, &st) != 0)
		return client_fail(cl, "local: %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		printf("%s\n", path);
		fflush(stdout);
		return 0;
	}
	DIR *d = opendir(path);
	if (!d)
		return client_fail(cl, "local: cannot list %s: %s", path, strerror(errno));
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < LLS_MAX_ENTRIES) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **p = realloc(names, ncap * sizeof *p);
			if (!p) {
				rc = client_fail(cl, "lls: out of memory");
				break;
			}
			names = p;
			cap = ncap;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = client_fail(cl, "lls: out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (rc == 0 && n > 1)
		qsort(names, n, sizeof *names, compare_names);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			char full[PATH_MAX];
			int k = snprintf(full, sizeof full, "%s/%s", path, names[i]);
			bool dir = k > 0 && (size_t)k < sizeof full && stat(full, &st) == 0 && S_ISDIR(st.st_mode);
			printf("%s%s\n", names[i], dir ? "/" : "");
		}
		free(names[i]);
	}
	free(names);
	fflush(stdout);
	return rc;
}

static int cmd_get(struct client *cl, int argc, char **argv)
{
	return transfer_get(cl, argv[1], argc > 2 ? argv[2] : NULL, GET_NEW);
}

static int cmd_reget(struct client *cl, int argc, char **argv)
{
	return transfer_get(cl, argv[1], argc > 2 ? argv[2] : NULL, GET_RESUME);
}

static int cmd_put(struct client *cl, int argc, char **argv)
{
	return transfer_put(cl, argv[1], argc > 2 ? argv[2] : NULL, PUT_STORE);
}

static int cmd_reput(struct client *cl, int argc, char **argv)
{
	return transfer_put(cl, argv[1], argc > 2 ? argv[2] : NULL, PUT_RESUME);
}

static int cmd_append(struct client *cl, int argc, char **argv)
{
	return transfer_put(cl, argv[1], argc > 2 ? argv[2] : NULL, PUT_APPEND);
}

/* Runs fn on every remote file matching the globs in argv[1..]. */
static int for_each_remote(struct client *cl, int argc, char **argv,
			   int (*fn)(struct client *cl, const char *path, const char *name))
{
	int rc = 0;
	for (int i = 1; i < argc && cl->ftp.state == FTPC_LOGGED_IN && !progress_interrupted; i++) {
		struct rglob g;
		size_t refused = 0;
		if (rglob_expand(cl, argv[i], &g, &refused) != 0) {
			rc = -1;
			continue;
		}
		if (refused)
			rc = -1;
		if (g.count == 0 && !refused)
			rc = client_fail(cl, "%s: no match", argv[i]);
		/* ^C cancels the transfer under way and the files after it. */
		for (size_t k = 0; k < g.count && cl->ftp.state == FTPC_LOGGED_IN && !progress_interrupted; k++)
			if (fn(cl, g.paths[k], g.names[k]) != 0)
				rc = -1;
		rglob_free(&g);
	}
	return rc;
}

static int get_one(struct client *cl, const char *path, const char *name)
{
	return transfer_get(cl, path, name, GET_SERVER_NAMED);
}

static int delete_one(struct client *cl, const char *path, const char *name)
{
	(void)name;
	return simple(cl, "DELE", path);
}

static int cmd_mget(struct client *cl, int argc, char **argv)
{
	return for_each_remote(cl, argc, argv, get_one);
}

static int cmd_mdelete(struct client *cl, int argc, char **argv)
{
	return for_each_remote(cl, argc, argv, delete_one);
}

static int cmd_mput(struct client *cl, int argc, char **argv)
{
	int rc = 0;
	for (int i = 1; i < argc && cl->ftp.state == FTPC_LOGGED_IN && !progress_interrupted; i++) {
		glob_t g;
		int r = glob(argv[i], GLOB_NOSORT | GLOB_BRACE | GLOB_TILDE, NULL, &g);
		if (r == GLOB_NOMATCH) {
			rc = client_fail(cl, "local: %s: no match", argv[i]);
			continue;
		}
		if (r != 0) {
			rc = client_fail(cl, "local: %s: cannot expand", argv[i]);
			continue;
		}
		if (g.gl_pathc > 1)
			qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, compare_names);
		for (size_t k = 0; k < g.gl_pathc && cl->ftp.state == FTPC_LOGGED_IN && !progress_interrupted; k++) {
			struct stat st;
			if (stat(g.gl_pathv[k], &st) == 0 && S_ISDIR(st.st_mode)) {
				client_note(cl, "%s: a directory, skipped", g.gl_pathv[k]);
				continue;
			}
			if (transfer_put(cl, g.gl_pathv[k], NULL, PUT_STORE) != 0)
				rc = -1;
		}
		globfree(&g);
	}
	return rc;
}

static int cmd_delete(struct client *cl, int argc, char **argv)
{
	(void)argc;
	return simple(cl, "DELE", argv[1]);
}

static int cmd_mkdir(struct client *cl, int argc, char **argv)
{
	(void)argc;
	return simple(cl, "MKD", argv[1]);
}

static int cmd_rmdir(struct client *cl, int argc, char **argv)
{
	(void)argc;
	return simple(cl, "RMD", argv[1]);
}

static int cmd_rename(struct client *cl, int argc, char **argv)
{
	(void)argc;
	int code = ftpc_command(&cl->ftp, "RNFR %s", argv[1]);
	if (code < 0)
		return client_fail_ftp(cl, NULL);
	if (code != R_PENDING) {
		ftpc_fail_reply(&cl->ftp);
		return client_fail_ftp(cl, NULL);
	}
	return simple(cl, "RNTO", argv[2]);
}

static int cmd_size(struct client *cl, int argc, char **argv)
{
	(void)argc;
	uint64_t size;
	if (ftpc_size(&cl->ftp, argv[1], &size) != 0)
		return client_fail_ftp(cl, NULL);
	printf("%llu\n", (unsigned long long)size);
	fflush(stdout);
	return 0;
}

static int cmd_modtime(struct client *cl, int argc, char **argv)
{
	(void)argc;
	if (ftpc_command_ok(&cl->ftp, "MDTM %s", argv[1]) != 0)
		return client_fail_ftp(cl, NULL);
	const char *t = ftpc_reply_text(&cl->ftp);
	while (*t == ' ')
		t++;
	int digits = 0;
	while (t[digits] >= '0' && t[digits] <= '9')
		digits++;
	if (digits < 14)
		return client_fail(cl, "modtime: malformed MDTM reply");
	printf("%.4s-%.2s-%.2s %.2s:%.2s:%.2s UTC\n", t, t + 4, t + 6, t + 8, t + 10, t + 12);
	fflush(stdout);
	return 0;
}

static int set_type(struct client *cl, bool ascii)
{
	cl->ascii = ascii;
	client_note(cl, "Transfers in %s mode.", ascii ? "ascii" : "binary");
	return 0;
}

static int cmd_ascii(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return set_type(cl, true);
}

static int cmd_binary(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return set_type(cl, false);
}

static int cmd_type(struct client *cl, int argc, char **argv)
{
	if (argc < 2) {
		printf("Using %s mode to transfer files.\n", cl->ascii ? "ascii" : "binary");
		fflush(stdout);
		return 0;
	}
	const char *t = argv[1];
	if (strcasecmp(t, "ascii") == 0 || strcasecmp(t, "a") == 0)
		return set_type(cl, true);
	if (strcasecmp(t, "binary") == 0 || strcasecmp(t, "image") == 0 || strcasecmp(t, "i") == 0)
		return set_type(cl, false);
	return client_fail(cl, "type: unknown type \"%s\" (ascii or binary)", t);
}

static int cmd_passive(struct client *cl, int argc, char **argv)
{
	if (parse_switch(cl, argc, argv, &cl->ftp.passive) != 0)
		return -1;
	client_note(cl, "Passive mode %s.", cl->ftp.passive ? "on" : "off");
	return 0;
}

static int cmd_active(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cl->ftp.passive = false;
	client_note(cl, "Passive mode off.");
	return 0;
}

static int print_reply_of(struct client *cl, int code)
{
	if (code < 0)
		return client_fail_ftp(cl, NULL);
	if (reply_is_error(code)) {
		ftpc_print_reply(&cl->ftp, stderr);
		return -1;
	}
	ftpc_print_reply(&cl->ftp, stdout);
	fflush(stdout);
	return 0;
}

static int cmd_system(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return print_reply_of(cl, ftpc_command(&cl->ftp, "SYST"));
}

static int cmd_rstatus(struct client *cl, int argc, char **argv)
{
	return print_reply_of(cl, argc > 1 ? ftpc_command(&cl->ftp, "STAT %s", argv[1])
					   : ftpc_command(&cl->ftp, "STAT"));
}

static int cmd_status(struct client *cl, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const struct ftpc *c = &cl->ftp;
	if (c->state == FTPC_DISCONNECTED)
		printf("Not connected.\n");
	else if (c->state == FTPC_CONNECTED)
		printf("Connected to %s port %d, not logged in.\n", c->host, c->port);
	else
		printf("Connected to %s port %d as %s.\n", c->host, c->port, c->user);
	printf("Mode: %s; type: %s; verbose: %s; progress: %s; timeout: %d s; retries: %d.\n",
	       c->passive ? "passive" : "active", cl->ascii ? "ascii" : "binary", cl->verbose ? "on" : "off",
	       cl->progress ? "on" : "off", c->timeout_ms / 1000, cl->retries);
	if (c->ctrl_ssl) {
		char how[128];
		secure_describe(c->ctrl_ssl, how, sizeof how);
		printf("Security: %s; data connections %s.\n", how, c->prot_private ? "encrypted" : "unencrypted");
	} else if (c->state != FTPC_DISCONNECTED) {
		printf("Security: none (unencrypted).\n");
	}
	fflush(stdout);
	return 0;
}

static int cmd_verbose(struct client *cl, int argc, char **argv)
{
	if (parse_switch(cl, argc, argv, &cl->verbose) != 0)
		return -1;
	cl->ftp.trace = cl->verbose ? stderr : NULL;
	client_note(cl, "Verbose mode %s.", cl->verbose ? "on" : "off");
	return 0;
}

static int cmd_progress(struct client *cl, int argc, char **argv)
{
	if (parse_switch(cl, argc, argv, &cl->progress) != 0)
		return -1;
	client_note(cl, "Progress bar %s.", cl->progress ? "on" : "off");
	return 0;
}

static int cmd_retries(struct client *cl, int argc, char **argv)
{
	long n = cl->retries;
	if (argc > 1 && num_parse_long(argv[1], 0, CLIENT_RETRIES_MAX, &n) != 0)
		return client_fail(cl, "retries: a count from 0 to %d, not \"%s\"", CLIENT_RETRIES_MAX, argv[1]);
	cl->retries = (int)n;
	client_note(cl, "Retries: %d (a cut download resumes, a cut upload is sent again, that many times).",
		    cl->retries);
	return 0;
}

/* Joins argv[from..] with single spaces after prefix. */
static int join_words(char *out, size_t outlen, const char *prefix, int argc, char **argv, int from)
{
	struct buf b;
	buf_init(&b, outlen - 1);
	int rc = prefix ? buf_appends(&b, prefix) : 0;
	for (int i = from; rc == 0 && i < argc; i++) {
		if (i > from || prefix)
			rc = buf_append(&b, " ", 1);
		if (rc == 0)
			rc = buf_appends(&b, argv[i]);
	}
	if (rc == 0)
		memcpy(out, b.data, b.len + 1);
	buf_free(&b);
	return rc;
}

static int cmd_quote(struct client *cl, int argc, char **argv)
{
	char line[FERRY_LINE_MAX + 1];
	if (join_words(line, sizeof line, NULL, argc, argv, 1) != 0)
		return client_fail(cl, "%s: line too long", argv[0]);
	/* A directory change behind ferry's back (quote CWD) is not followed. */
	cl->remote_dir_known = false;
	return print_reply_of(cl, ftpc_command(&cl->ftp, "%s", line));
}

static int cmd_site(struct client *cl, int argc, char **argv)
{
	char line[FERRY_LINE_MAX + 1];
	if (join_words(line, sizeof line, "SITE", argc, argv, 1) != 0)
		return client_fail(cl, "site: line too long");
	return print_reply_of(cl, ftpc_command(&cl->ftp, "%s", line));
}

/* SITE CHMOD, which vsftpd, ProFTPD, pure-ftpd, pyftpdlib and ferryd
 * carry out; the mode goes as typed (octal), the server checks it. */
static int cmd_chmod(struct client *cl, int argc, char **argv)
{
	(void)argc;
	if (!argv[1][0] || strspn(argv[1], "01234567") != strlen(argv[1]) || strlen(argv[1]) > 4)
		return client_fail(cl, "chmod: %s: the mode must be octal, as 644", argv[1]);
	if (ftpc_command_ok(&cl->ftp, "SITE CHMOD %s %s", argv[1], argv[2]) != 0)
		return client_fail_ftp(cl, NULL);
	client_note_reply(cl);
	return 0;
}

static int cmd_help(struct client *cl, int argc, char **argv);

static const struct command commands[] = {
	{"open", {"connect"}, 1, 2, NEED_NOTHING, cmd_open, "HOST [PORT]", "connect to HOST (port 21 unless given) and log in", "-"},
	{"user", {NULL}, 1, 2, NEED_CONNECTION, cmd_user, "NAME [PASSWORD]", "log in as NAME", "-"},
	{"close", {"disconnect"}, 0, 0, NEED_NOTHING, cmd_close, "", "end the session, stay in ferry", "-"},
	{"bye", {"quit", "exit"}, 0, 0, NEED_NOTHING, cmd_bye, "", "end the session and leave ferry", "-"},
	{"ls", {"dir"}, 0, 1, NEED_LOGIN, cmd_ls, "[PATH]", "list a remote directory as the server formats it (LIST)", "r"},
	{"nlist", {"nls"}, 0, 1, NEED_LOGIN, cmd_nlist, "[PATH]", "list remote names only (NLST)", "r"},
	{"cd", {"cwd"}, 1, 1, NEED_LOGIN, cmd_cd, "PATH", "change the remote directory", "r"},
	{"cdup", {NULL}, 0, 0, NEED_LOGIN, cmd_cdup, "", "go to the remote parent directory", "-"},
	{"pwd", {NULL}, 0, 0, NEED_LOGIN, cmd_pwd, "", "print the remote directory", "-"},
	{"lcd", {NULL}, 0, 1, NEED_NOTHING, cmd_lcd, "[DIR]", "change the local directory (home without DIR)", "l"},
	{"lpwd", {NULL}, 0, 0, NEED_NOTHING, cmd_lpwd, "", "print the local directory", "-"},
	{"lls", {NULL}, 0, 1, NEED_NOTHING, cmd_lls, "[DIR]", "list a local directory", "l"},
	{"get", {"recv"}, 1, 2, NEED_LOGIN, cmd_get, "REMOTE [LOCAL]", "download a file (\"-\" as LOCAL: standard output)", "rl"},
	{"reget", {NULL}, 1, 2, NEED_LOGIN, cmd_reget, "REMOTE [LOCAL]", "resume a download, appending to LOCAL", "rl"},
	{"put", {"send"}, 1, 2, NEED_LOGIN, cmd_put, "LOCAL [REMOTE]", "upload a file", "lr"},
	{"reput", {NULL}, 1, 2, NEED_LOGIN, cmd_reput, "LOCAL [REMOTE]", "resume an upload from the remote size", "lr"},
	{"append", {NULL}, 1, 2, NEED_LOGIN, cmd_append, "LOCAL [REMOTE]", "append a local file to a remote one", "lr"},
	{"mget", {NULL}, 1, -1, NEED_LOGIN, cmd_mget, "GLOB...", "download every remote file matching", "r"},
	{"mput", {NULL}, 1, -1, NEED_LOGIN, cmd_mput, "GLOB...", "upload every local file matching", "l"},
	{"delete", {"del", "rm"}, 1, 1, NEED_LOGIN, cmd_delete, "REMOTE", "delete a remote file", "r"},
	{"mdelete", {NULL}, 1, -1, NEED_LOGIN, cmd_mdelete, "GLOB...", "delete every remote file matching", "r"},
	{"mkdir", {NULL}, 1, 1, NEED_LOGIN, cmd_mkdir, "DIR", "make a remote directory", "r"},
	{"rmdir", {NULL}, 1, 1, NEED_LOGIN, cmd_rmdir, "DIR", "remove a remote directory", "r"},
	{"rename", {"mv"}, 2, 2, NEED_LOGIN, cmd_rename, "FROM TO", "rename a remote file", "r"},
	{"chmod", {NULL}, 2, 2, NEED_LOGIN, cmd_chmod, "MODE REMOTE", "set a remote file's permissions (SITE CHMOD; MODE in octal)", "-r"},
	{"size", {NULL}, 1, 1, NEED_LOGIN, cmd_size, "REMOTE", "print a remote file's size in bytes", "r"},
	{"modtime", {NULL}, 1, 1, NEED_LOGIN, cmd_modtime, "REMOTE", "print a remote file's modification time", "r"},
	{"ascii", {NULL}, 0, 0, NEED_NOTHING, cmd_ascii, "", "transfer files as text (TYPE A)", "-"},
	{"binary", {"image"}, 0, 0, NEED_NOTHING, cmd_binary, "", "transfer files byte for byte (TYPE I, the default)", "-"},
	{"type", {NULL}, 0, 1, NEED_NOTHING, cmd_type, "[ascii|binary]", "show or set the transfer type", "-"},
	{"passive", {NULL}, 0, 1, NEED_NOTHING, cmd_passive, "[on|off]", "passive data connections (EPSV/PASV, the default)", "-"},
	{"active", {NULL}, 0, 0, NEED_NOTHING, cmd_active, "", "active data connections (EPRT/PORT)", "-"},
	{"system", {NULL}, 0, 0, NEED_LOGIN, cmd_system, "", "show the server's system type", "-"},
	{"status", {NULL}, 0, 0, NEED_NOTHING, cmd_status, "", "show ferry's connection and settings", "-"},
	{"retries", {NULL}, 0, 1, NEED_NOTHING, cmd_retries, "[N]", "resume cut transfers up to N times (--retries)", "-"},
	{"rstatus", {NULL}, 0, 1, NEED_CONNECTION, cmd_rstatus, "[PATH]", "show the server's status (STAT)", "r"},
	{"verbose", {NULL}, 0, 1, NEED_NOTHING, cmd_verbose, "[on|off]", "show the protocol dialogue", "-"},
	{"progress", {NULL}, 0, 1, NEED_NOTHING, cmd_progress, "[on|off]", "progress bar during transfers (terminal only)", "-"},
	{"quote", {"literal"}, 1, -1, NEED_CONNECTION, cmd_quote, "LINE...", "send LINE to the server as is", "-"},
	{"site", {NULL}, 1, -1, NEED_LOGIN, cmd_site, "ARGS...", "send a SITE command", "-"},
	{"help", {"?"}, 0, 1, NEED_NOTHING, cmd_help, "[COMMAND]", "list commands, or explain one", "c"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

const struct command *command_table(size_t *count)
{
	*count = COMMAND_COUNT;
	return commands;
}

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
		for (size_t a = 0; a < 4 && commands[i].aliases[a]; a++)
			if (strcasecmp(commands[i].aliases[a], name) == 0)
				return &commands[i];
	}
	return NULL;
}

static void print_usage_line(const struct command *c, FILE *f)
{
	fprintf(f, "%s%s%s", c->name, *c->args ? " " : "", c->args);
}

static int cmd_help(struct client *cl, int argc, char **argv)
{
	if (argc > 1) {
		const struct command *c = command_find(argv[1]);
		if (!c)
			return client_fail(cl, "help: unknown command \"%s\"", argv[1]);
		print_usage_line(c, stdout);
		printf("\n    %s\n", c->help);
		if (c->aliases[0]) {
			printf("    also:");
			for (size_t a = 0; a < 4 && c->aliases[a]; a++)
				printf(" %s", c->aliases[a]);
			printf("\n");
		}
		fflush(stdout);
		return 0;
	}
	printf("Commands (help COMMAND for more):\n");
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		char usage[64];
		snprintf(usage, sizeof usage, "%s %s", commands[i].name, commands[i].args);
		printf("  %-26s %s\n", usage, commands[i].help);
	}
	fflush(stdout);
	return 0;
}

int command_check_arity(const struct command *c, int argc)
{
	int nargs = argc - 1;
	if (nargs >= c->min_args && (c->max_args < 0 || nargs <= c->max_args))
		return 0;
	fflush(stdout);
	fprintf(stderr, "usage: ");
	print_usage_line(c, stderr);
	fputc('\n', stderr);
	return -1;
}

int command_run(struct client *cl, int argc, char **argv)
{
	if (argc < 1)
		return 0;
	const struct command *c = command_find(argv[0]);
	if (!c) {
		char clean[64];
		reply_sanitize(argv[0], clean, sizeof clean);
		return client_fail(cl, "unknown command \"%s\" (try help)", clean);
	}
	if (command_check_arity(c, argc) != 0)
		return -1;
	if (c->need != NEED_NOTHING && cl->ftp.state == FTPC_DISCONNECTED)
		return client_fail(cl, "%s: not connected (use open HOST [PORT])", c->name);
	if (c->need == NEED_LOGIN && cl->ftp.state != FTPC_LOGGED_IN)
		return client_fail(cl, "%s: not logged in (use user NAME)", c->name);
	return c->run(cl, argc, argv);
}

int command_run_line(struct client *cl, const char *line)
{
	const char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	struct words w;
	int rc = words_split(&w, p);
	if (rc == -EINVAL)
		return client_fail(cl, "unterminated quote or trailing backslash");
	if (rc == -E2BIG)
		return client_fail(cl, "more than %d words on one line", WORDS_MAX);
	if (rc)
		return client_fail(cl, "cannot read the command: %s", strerror(-rc));
	rc = command_run(cl, w.argc, w.argv);
	words_free(&w);
	return rc;
}
