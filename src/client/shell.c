#include "shell.h"

#include "commands.h"
#include "line.h"
#include "progress.h"
#include "rlist.h"
#include "sys.h"
#include "transfer.h"
#include "words.h"

#include <editline/readline.h>
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SHELL_PROMPT "ftp> "
#define SHELL_HISTORY_LINES 1000
#define SHELL_HISTORY_FILE ".ferry_history"

/* Completion runs inside readline, which offers no context pointer. */
static struct client *completing;

static char *command_generator(const char *text, int state)
{
	static size_t next;
	size_t count;
	const struct command *table = command_table(&count);
	if (state == 0)
		next = 0;
	while (next < count) {
		const char *name = table[next++].name;
		if (strncasecmp(name, text, strlen(text)) == 0)
			return strdup(name);
	}
	return NULL;
}

/* Growable NULL-terminated match array in readline's format: [0] is
 * the common prefix of the others. */
struct matches {
	char **v;
	size_t n, cap;
};

static int matches_add(struct matches *m, const char *dir, const char *name, bool is_dir)
{
	if (m->n + 2 >= m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 16;
		char **v = realloc(m->v, ncap * sizeof *v);
		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = ncap;
	}
	size_t len = strlen(dir) + strlen(name) + 2;
	char *s = malloc(len);
	if (!s)
		return -ENOMEM;
	snprintf(s, len, "%s%s%s", dir, name, is_dir ? "/" : "");
	m->v[++m->n] = s;
	m->v[m->n + 1] = NULL;
	return 0;
}

static void matches_free(struct matches *m)
{
	for (size_t i = 1; i <= m->n; i++)
		free(m->v[i]);
	free(m->v);
	memset(m, 0, sizeof *m);
}

/* Adds the entries of remote directory dir ("" = current; shown with
 * the prefix dir) that start with prefix. */
static int remote_matches(const char *dir, const char *prefix, struct matches *m)
{
	char listdir[FERRY_PATH_MAX];
	size_t dirlen = strlen(dir);
	if (dirlen >= sizeof listdir)
		return -ENAMETOOLONG;
	memcpy(listdir, dir, dirlen + 1);
	if (dirlen > 1)
		listdir[dirlen - 1] = '\0'; /* "a/b/" lists "a/b"; "/" stays */
	struct rlist l;
	/* The dialogue must not print over the line being edited. */
	FILE *trace = completing->ftp.trace;
	completing->ftp.trace = NULL;
	int rc = rlist_fetch(completing, listdir, &l);
	completing->ftp.trace = trace;
	if (rc != 0)
		return rc;
	size_t plen = strlen(prefix);
	for (size_t i = 0; rc == 0 && i < l.count; i++) {
		const struct rlist_entry *e = &l.entries[i];
		/* A name that would drive the terminal is not offered. */
		if (strncmp(e->name, prefix, plen) == 0 && strcmp(e->name, ".") != 0 && strcmp(e->name, "..") != 0
		    && shown_whole(e->name))
			rc = matches_add(m, dir, e->name, e->type == RLIST_DIR);
	}
	rlist_free(&l);
	return rc;
}

static char **complete_remote(const char *text)
{
	struct matches m = {0};
	const char *leaf = transfer_leaf(text);
	char dir[FERRY_PATH_MAX];
	size_t dirlen = (size_t)(leaf - text);
	if (dirlen >= sizeof dir)
		return NULL;
	memcpy(dir, text, dirlen);
	dir[dirlen] = '\0';
	if (remote_matches(dir, leaf, &m) != 0 || m.n == 0) {
		matches_free(&m);
		return NULL;
	}
	/* A lone directory: offer its contents, so the line goes on inside it
	 * instead of getting a blank after the slash. */
	if (m.n == 1 && m.v[1][strlen(m.v[1]) - 1] == '/') {
		struct matches inner = {0};
		if (remote_matches(m.v[1], "", &inner) == 0 && inner.n > 0) {
			matches_free(&m);
			m = inner;
		} else {
			matches_free(&inner);
		}
	}
	/* [0]: the longest common prefix of the matches. */
	size_t common = strlen(m.v[1]);
	for (size_t i = 2; i <= m.n; i++) {
		size_t k = 0;
		while (k < common && m.v[i][k] == m.v[1][k])
			k++;
		common = k;
	}
	m.v[0] = strndup(m.v[1], common);
	if (!m.v[0]) {
		matches_free(&m);
		return NULL;
	}
	return m.v;
}

/* Which argument kind the word starting at 'start' is. */
static char argument_kind(int start)
{
	char prefix[FERRY_LINE_MAX + 1];
	size_t n = (size_t)start < sizeof prefix - 1 ? (size_t)start : sizeof prefix - 1;
	memcpy(prefix, rl_line_buffer, n);
	prefix[n] = '\0';
	struct words w;
	if (words_split(&w, prefix) != 0)
		return '-';
	char kind = '-';
	if (w.argc == 0) {
		kind = 'c';
	} else {
		const struct command *c = command_find(w.argv[0]);
		if (c) {
			size_t len = strlen(c->complete);
			size_t i = (size_t)(w.argc - 1) < len ? (size_t)(w.argc - 1) : len - 1;
			kind = c->complete[i];
		}
	}
	words_free(&w);
	return kind;
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;
	rl_completion_append_character = ' ';
	switch (argument_kind(start)) {
	case 'c':
		return rl_completion_matches(text, command_generator);
	case 'l':
		return rl_completion_matches(text, rl_filename_completion_function);
	case 'r':
		if (completing->ftp.state != FTPC_LOGGED_IN)
			return NULL;
		return complete_remote(text);
	default:
		return NULL;
	}
}

static void history_path(char *out, size_t outlen)
{
	const char *home = getenv("HOME");
	out[0] = '\0';
	if (home && *home) {
		int n = snprintf(out, outlen, "%s/%s", home, SHELL_HISTORY_FILE);
		if (n < 0 || (size_t)n >= outlen)
			out[0] = '\0';
	}
}

int shell_interactive(struct client *cl)
{
	completing = cl;
	rl_readline_name = "ferry";
	rl_attempted_completion_function = complete;
	rl_basic_word_break_characters = " \t";
	char hist[PATH_MAX];
	history_path(hist, sizeof hist);
	using_history();
	stifle_history(SHELL_HISTORY_LINES);
	if (*hist)
		read_history(hist);
	while (!cl->quit) {
		char *line = readline(SHELL_PROMPT);
		if (!line) {
			/* End of input (^D) is bye. */
			fputc('\n', stdout);
			command_run_line(cl, "bye");
			break;
		}
		if (strlen(line) > FERRY_LINE_MAX) {
			client_fail(cl, "line longer than %d bytes", FERRY_LINE_MAX);
		} else {
			if (*line)
				add_history(line);
			command_run_line(cl, line);
		}
		/* ^C cancelled a transfer; the shell goes on. */
		progress_interrupted = 0;
		free(line);
	}
	if (*hist)
		write_history(hist);
	return EXIT_OK;
}

int shell_script(struct client *cl, int fd)
{
	struct line_reader lr;
	line_init(&lr, FERRY_LINE_MAX, false);
	char in[4096];
	size_t pos = 0, len = 0;
	bool eof = false;
	int status = EXIT_OK;
	while (!cl->quit) {
		if (pos == len) {
			if (eof)
				break;
			ssize_t n = io_read_some(fd, in, sizeof in);
			if (n < 0) {
				client_fail(cl, "reading commands: %s", strerror((int)-n));
				status = EXIT_FAILED;
				break;
			}
			pos = 0;
			len = (size_t)n;
			if (n == 0) {
				eof = true;
				/* A last line without its newline still counts. */
				if (lr.line.len > 0 && command_run_line(cl, lr.line.data) != 0)
					status = EXIT_FAILED;
				break;
			}
		}
		size_t used = 0;
		enum line_result r = line_feed(&lr, in + pos, len - pos, &used);
		pos += used;
		if (r == LINE_MORE)
			continue;
		if (r == LINE_TOO_LONG) {
			client_fail(cl, "command line longer than %d bytes, skipped", FERRY_LINE_MAX);
			status = EXIT_FAILED;
		} else if (command_run_line(cl, lr.line.data) != 0) {
			status = EXIT_FAILED;
		}
		line_reset(&lr);
		/* ^C during a script's transfer stops the script. */
		if (progress_interrupted)
			break;
	}
	line_free(&lr);
	return status;
}
