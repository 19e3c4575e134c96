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
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

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

/* Remote names starting with path (a directory part and the start of a
 * name). A lone directory is replaced by its contents, so the line goes
 * on inside it instead of getting a blank after the slash. */
static int remote_candidates(const char *path, struct matches *m)
{
	const char *leaf = transfer_leaf(path);
	char dir[FERRY_PATH_MAX];
	size_t dirlen = (size_t)(leaf - path);
	if (dirlen >= sizeof dir)
		return -ENAMETOOLONG;
	memcpy(dir, path, dirlen);
	dir[dirlen] = '\0';
	int rc = remote_matches(dir, leaf, m);
	if (rc == 0 && m->n == 1 && m->v[1][strlen(m->v[1]) - 1] == '/') {
		struct matches inner = {0};
		if (remote_matches(m->v[1], "", &inner) == 0 && inner.n > 0) {
			matches_free(m);
			*m = inner;
		} else {
			matches_free(&inner);
		}
	}
	return rc;
}

/* Local names starting with path, directories with a slash. */
static int local_candidates(const char *path, struct matches *m)
{
	int rc = 0;
	char *name;
	for (int state = 0; rc == 0 && (name = rl_filename_completion_function(path, state)) != NULL; state++) {
		struct stat st;
		bool is_dir = stat(name, &st) == 0 && S_ISDIR(st.st_mode);
		rc = matches_add(m, "", name, is_dir);
		free(name);
	}
	return rc;
}

/* Byte offset of character number chars in line: the line editor counts
 * the word it replaces in characters, the buffer holds bytes. */
static size_t byte_offset(const char *line, size_t len, int chars)
{
	mbstate_t ps;
	memset(&ps, 0, sizeof ps);
	size_t off = 0;
	for (int i = 0; i < chars && off < len; i++) {
		size_t k = mbrlen(line + off, len - off, &ps);
		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			k = 1; /* a byte the editor could not decode stands for itself */
			memset(&ps, 0, sizeof ps);
		}
		off += k;
	}
	return off;
}

/* The word under the cursor as typed, and the part of the line the line
 * editor will replace with a completion (from 'from' to the cursor). */
struct typed_word {
	const char *line;      /* the line up to the cursor */
	size_t from;           /* where the editor's replacement starts */
	struct words_tail tail;
	size_t raw_end;        /* the typed word ends here (a final escaping backslash left out) */
	struct buf value;      /* what the typed word means: quotes and escapes undone */
};

/* Writes candidate (which starts with the typed word's value) as the
 * editor's replacement: the line as typed from 'from' (the editor may
 * start inside the word, or before it) to the word's end, then the rest
 * of candidate quoted the way the word left off, so that the shell's own
 * splitter reads candidate back. A whole name (single, not a directory)
 * closes a quote left open. NULL when that cannot be written. */
static char *replacement(const struct typed_word *w, const char *candidate, bool single)
{
	if (w->from > w->raw_end || strncmp(candidate, w->value.data, w->value.len) != 0)
		return NULL;
	struct buf b;
	buf_init(&b, FERRY_LINE_MAX);
	int rc = buf_append(&b, w->line + w->from, w->raw_end - w->from);
	if (rc == 0)
		rc = words_quote_in(&b, candidate + w->value.len, w->tail.quote);
	size_t clen = strlen(candidate);
	if (rc == 0 && single && w->tail.quote && clen && candidate[clen - 1] != '/')
		rc = buf_append(&b, &w->tail.quote, 1);
	char *out = rc == 0 ? strndup(b.data ? b.data : "", b.len) : NULL;
	buf_free(&b);
	return out;
}

/* Reads the word under the cursor from the line editor's buffer. */
static int typed_word_read(struct typed_word *w, int editor_start, char *line, size_t linecap)
{
	size_t cursor = rl_point > 0 ? (size_t)rl_point : 0;
	if (cursor >= linecap)
		return -ENAMETOOLONG;
	memcpy(line, rl_line_buffer, cursor);
	line[cursor] = '\0';
	w->line = line;
	buf_init(&w->value, FERRY_LINE_MAX);
	int rc = words_tail(line, &w->tail, &w->value);
	if (rc == 0)
		rc = buf_append(&w->value, "", 1) == 0 ? 0 : -ENOMEM; /* a C string */
	if (rc != 0) {
		buf_free(&w->value);
		return rc;
	}
	w->value.len--;
	w->raw_end = cursor - (w->tail.escape ? 1 : 0);
	w->from = byte_offset(line, cursor, editor_start);
	return 0;
}

/* The readline match array for the candidates in m: [1..] the
 * replacements, [0] their longest common prefix. */
static char **editor_matches(const struct typed_word *w, struct matches *m)
{
	bool single = m->n == 1;
	for (size_t i = 1; i <= m->n; i++) {
		char *r = replacement(w, m->v[i], single);
		if (!r) {
			matches_free(m);
			return NULL;
		}
		free(m->v[i]);
		m->v[i] = r;
	}
	size_t common = strlen(m->v[1]);
	for (size_t i = 2; i <= m->n; i++) {
		size_t k = 0;
		while (k < common && m->v[i][k] == m->v[1][k])
			k++;
		common = k;
	}
	m->v[0] = strndup(m->v[1], common);
	if (!m->v[0]) {
		matches_free(m);
		return NULL;
	}
	return m->v;
}
/* Which argument kind the word starting at byte 'start' of line is. */
static char argument_kind(const char *line, size_t start)
{
	char prefix[FERRY_LINE_MAX + 1];
	size_t n = start < sizeof prefix - 1 ? start : sizeof prefix - 1;
	memcpy(prefix, line, n);
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

/* Completes the word under the cursor, read as the shell's splitter reads
 * it (quotes, backslashes), and inserts names written the same way: "get
 * my<Tab>" gives "get my\ file.txt", "get \"my<Tab>" gives "get \"my
 * file.txt\"". */
static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;
	rl_completion_append_character = ' ';
	char line[FERRY_LINE_MAX + 1];
	struct typed_word w;
	if (typed_word_read(&w, start, line, sizeof line) != 0)
		return NULL;
	struct matches m = {0};
	int rc = -ENOENT;
	switch (argument_kind(line, w.tail.start)) {
	case 'c':
		buf_free(&w.value);
		return rl_completion_matches(text, command_generator);
	case 'l':
		rc = local_candidates(w.value.data, &m);
		break;
	case 'r':
		if (completing->ftp.state == FTPC_LOGGED_IN)
			rc = remote_candidates(w.value.data, &m);
		break;
	default:
		break;
	}
	char **v = NULL;
	if (rc == 0 && m.n > 0) {
		/* A lone directory goes on inside, with no blank after it. */
		if (m.n == 1 && m.v[1][strlen(m.v[1]) - 1] == '/')
			rl_completion_append_character = '\0';
		v = editor_matches(&w, &m);
	} else {
		matches_free(&m);
	}
	buf_free(&w.value);
	return v;
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

/* One line of a script; under --prompt shown first as the shell would
 * show it typed. Nonzero when the command failed. */
static int script_line(struct client *cl, const char *line)
{
	if (cl->transcript) {
		printf("%s%s\n", SHELL_PROMPT, line);
		fflush(stdout);
	}
	return command_run_line(cl, line);
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
				if (lr.line.len > 0 && script_line(cl, lr.line.data) != 0)
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
		} else if (script_line(cl, lr.line.data) != 0) {
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
