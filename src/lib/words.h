/* words.h - splits a command line into words the way a POSIX shell does,
 * without any expansion.
 *
 * Blanks (space, tab) separate words. Inside "double quotes" blanks are
 * kept and a backslash escapes only ", \ and $ (as in sh). Inside 'single
 * quotes' every byte is literal. Outside quotes a backslash makes the next
 * byte literal. "" is an empty word. The ferry shell, its scripts and the
 * URL front end all use this one splitter, so a name with spaces is written
 * the same way everywhere.
 *
 * Ownership: words_split fills a struct words that owns its storage;
 * words_free releases it. argv[argc] is NULL. */
#ifndef FERRY_WORDS_H
#define FERRY_WORDS_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* A shell command needs a handful of words; mget/mput with many globs a
 * few dozen. The cap bounds memory for a hostile script line. */
#define WORDS_MAX 256

struct words {
	int argc;
	char *argv[WORDS_MAX + 1];
	struct buf store; /* the words, each NUL-terminated, back to back */
};

/* 0; -EINVAL for an unterminated quote or a trailing backslash; -E2BIG
 * for more than WORDS_MAX words; -ENOMEM. On error w holds no words. */
int words_split(struct words *w, const char *line) FERRY_WUR;
void words_free(struct words *w);

/* Appends s to out quoted so that words_split gives s back as one word:
 * bytes that are special (blanks, quotes, backslash) get a backslash. */
int words_quote(struct buf *out, const char *s) FERRY_WUR;

/* The same, for a word inside an open quote (quote '"' or '\'') or
 * outside any (0): what tab completion adds to a word typed so far. */
int words_quote_in(struct buf *out, const char *s, char quote) FERRY_WUR;

/* The last word of a line cut off where the cursor is, for tab completion. */
struct words_tail {
	size_t start; /* the byte where it starts (strlen(line) after a blank) */
	char quote;   /* the quote still open at the end: '"', '\'' or 0 */
	bool escape;  /* the line ends in a backslash that escapes the next byte */
};
/* Fills t and appends the word's value so far (quotes and escapes
 * undone, a final escaping backslash left out) to value. 0 or -ENOMEM
 * (value's limit). */
int words_tail(const char *line, struct words_tail *t, struct buf *value) FERRY_WUR;

/* Index of the byte where the last word of line starts (strlen(line) when
 * the line ends in a blank), for tab completion. */
size_t words_last_start(const char *line);

#endif
