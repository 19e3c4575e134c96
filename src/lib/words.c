#include "words.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

enum split_state { S_BLANK, S_WORD, S_DQUOTE, S_SQUOTE };

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void words_free(struct words *w)
{
	buf_free(&w->store);
	w->argc = 0;
	w->argv[0] = NULL;
}

int words_split(struct words *w, const char *line)
{
	size_t n = strlen(line);
	/* Every word is at most as long as the line, plus one NUL per word. */
	buf_init(&w->store, 2 * n + 2);
	w->argc = 0;
	w->argv[0] = NULL;
	enum split_state st = S_BLANK;
	int count = 0;
	int rc = buf_append(&w->store, "", 0);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char c = line[i];
		switch (st) {
		case S_BLANK:
			if (is_blank(c))
				continue;
			if (count == WORDS_MAX) {
				rc = -E2BIG;
				break;
			}
			count++;
			st = S_WORD;
			__attribute__((fallthrough)); /* c starts the word */
		case S_WORD:
			if (is_blank(c)) {
				rc = buf_append(&w->store, "", 1);
				st = S_BLANK;
			} else if (c == '"') {
				st = S_DQUOTE;
			} else if (c == '\'') {
				st = S_SQUOTE;
			} else if (c == '\\') {
				if (i + 1 == n)
					rc = -EINVAL;
				else
					rc = buf_append(&w->store, &line[++i], 1);
			} else {
				rc = buf_append(&w->store, &c, 1);
			}
			break;
		case S_DQUOTE:
			if (c == '"') {
				st = S_WORD;
			} else if (c == '\\' && i + 1 < n && strchr("\"\\$", line[i + 1])) {
				rc = buf_append(&w->store, &line[++i], 1);
			} else {
				rc = buf_append(&w->store, &c, 1);
			}
			break;
		case S_SQUOTE:
			if (c == '\'')
				st = S_WORD;
			else
				rc = buf_append(&w->store, &c, 1);
			break;
		}
	}
	if (rc == 0 && (st == S_DQUOTE || st == S_SQUOTE))
		rc = -EINVAL;
	if (rc == 0 && st == S_WORD)
		rc = buf_append(&w->store, "", 1);
	if (rc) {
		words_free(w);
		return rc;
	}
	/* Pointers are taken only now: the store may have moved while growing. */
	char *p = w->store.data;
	for (int k = 0; k < count; k++) {
		w->argv[k] = p;
		p += strlen(p) + 1;
	}
	w->argc = count;
	w->argv[count] = NULL;
	return 0;
}

int words_quote(struct buf *out, const char *s)
{
	return words_quote_in(out, s, 0);
}

/* Whether byte c needs a backslash inside the quote open (none: 0) for
 * the splitter to read it back as itself; in single quotes none does. */
static bool needs_backslash(char c, char quote)
{
	if (quote == '"')
		return strchr("\"\\$", c) != NULL;
	return quote == 0 && (is_blank(c) || strchr("\"'\\", c));
}

int words_quote_in(struct buf *out, const char *s, char quote)
{
	for (; *s; s++) {
		int rc;
		if (quote == '\'' && *s == '\'') {
			rc = buf_appends(out, "'\\''"); /* close, an escaped quote, reopen */
		} else {
			rc = needs_backslash(*s, quote) ? buf_append(out, "\\", 1) : 0;
			if (rc == 0)
				rc = buf_append(out, s, 1);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int words_tail(const char *line, struct words_tail *t, struct buf *value)
{
	size_t n = strlen(line);
	t->start = words_last_start(line);
	t->quote = 0;
	t->escape = false;
	enum split_state st = S_WORD;
	int rc = 0;
	for (size_t i = t->start; rc == 0 && i < n; i++) {
		char c = line[i];
		if (st == S_WORD && c == '"') {
			st = S_DQUOTE;
		} else if (st == S_WORD && c == '\'') {
			st = S_SQUOTE;
		} else if ((st == S_DQUOTE && c == '"') || (st == S_SQUOTE && c == '\'')) {
			st = S_WORD;
		} else if (c == '\\' && st != S_SQUOTE && i + 1 == n) {
			t->escape = true; /* escapes what the completion adds */
		} else if (c == '\\' && (st == S_WORD || strchr("\"\\$", line[i + 1]))) {
			rc = buf_append(value, &line[++i], 1);
		} else {
			rc = buf_append(value, &c, 1);
		}
	}
	t->quote = st == S_DQUOTE ? '"' : st == S_SQUOTE ? '\'' : 0;
	return rc;
}

size_t words_last_start(const char *line)
{
	enum split_state st = S_BLANK;
	size_t start = 0, n = strlen(line);
	for (size_t i = 0; i < n; i++) {
		char c = line[i];
		switch (st) {
		case S_BLANK:
			if (is_blank(c))
				break;
			start = i;
			st = S_WORD;
			__attribute__((fallthrough));
		case S_WORD:
			if (is_blank(c))
				st = S_BLANK;
			else if (c == '"')
				st = S_DQUOTE;
			else if (c == '\'')
				st = S_SQUOTE;
			else if (c == '\\')
				i++;
			break;
		case S_DQUOTE:
			if (c == '\\')
				i++;
			else if (c == '"')
				st = S_WORD;
			break;
		case S_SQUOTE:
			if (c == '\'')
				st = S_WORD;
			break;
		}
	}
	return st == S_BLANK ? n : start;
}
