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

/* Remote completion state, rebuilt at each TAB (state 0). */
static struct rlist remote_entries;
static size_t remote_next;
static char remote_dir[FERRY_PATH_MAX];
static const char *remote_prefix;

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

static char *remote_generator(const char *text, int state)
{
	if (state == 0) {
		rlist_free(&remote_entries);
		remote_next = 0;
		const char *leaf = transfer_leaf(text);
		size_t dirlen = (size_t)(leaf - text);
		if (dirlen >= sizeof remote_dir)
			return NULL;
		memcpy(remote_dir, text, dirlen);
		remote_dir[dirlen] = '\0';
		remote_prefix = leaf;
		char listdir[FERRY_PATH_MAX];
		snprintf(listdir, sizeof listdir, "%s", remote_dir);
		if (dirlen > 1)
			listdir[dirlen - 1] = '\0';
		/* The dialogue must not print over the line being edited. */
		FILE *trace = completing->ftp.trace;
		completing->ftp.trace = NULL;
		int rc = rlist_fetch(completing, listdir, &remote_entries);
		completing->ftp.trace = trace;
		if (rc != 0)
			return NULL;
	}
	size_t plen = strlen(remote_prefix);
	while (remote_next < remote_entries.count) {
		const struct rlist_entry *e = &remote_entries.entries[remote_next++];
		if (strncmp(e->name, remote_prefix, plen) != 0 || strcmp(e->name, ".") == 0 ||
		    strcmp(e->name, "..") == 0)
			continue;
		size_t n = strlen(remote_dir) + strlen(e->name) + 2;
		char *m = malloc(n);
		if (!m)
			return NULL;
		snprintf(m, n, "%s%s%s", remote_dir, e->name, e->type == RLIST_DIR ? "/" : "");
		return m;
	}
	return NULL;
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
	case 'r': {
		if (completing->ftp.state != FTPC_LOGGED_IN)
			return NULL;
		char **m = rl_completion_matches(text, remote_generator);
		/* A lone directory match goes on with its contents, not a blank. */
		if (m && m[0] && !m[1] && m[0][0] && m[0][strlen(m[0]) - 1] == '/')
			rl_completion_append_character = '\0';
		return m;
	}
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
	rlist_free(&remote_entries);
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
