/* Unit tests of lib/words: shell-like word splitting and quoting. */
#include "check.h"
#include "words.h"

#include <errno.h>
#include <string.h>

static int split(struct words *w, const char *line)
{
	return words_split(w, line);
}

TEST(words_plain_and_blanks)
{
	struct words w;
	CHECK(split(&w, "  get   a.txt\tb.txt  ") == 0);
	CHECK(w.argc == 3);
	CHECK_STR(w.argv[0], "get");
	CHECK_STR(w.argv[1], "a.txt");
	CHECK_STR(w.argv[2], "b.txt");
	CHECK(w.argv[3] == NULL);
	words_free(&w);
	CHECK(split(&w, "   ") == 0);
	CHECK(w.argc == 0);
	words_free(&w);
}

TEST(words_quotes_and_backslashes)
{
	struct words w;
	CHECK(split(&w, "get \"my file.txt\" 'it''s' a\\ b \"q\\\"x\" \"\"") == 0);
	CHECK(w.argc == 6);
	CHECK_STR(w.argv[1], "my file.txt");
	CHECK_STR(w.argv[2], "its");
	CHECK_STR(w.argv[3], "a b");
	CHECK_STR(w.argv[4], "q\"x");
	CHECK_STR(w.argv[5], "");
	words_free(&w);
	CHECK(split(&w, "'back\\slash' \"keep\\n\"") == 0);
	CHECK_STR(w.argv[0], "back\\slash");
	CHECK_STR(w.argv[1], "keep\\n");
	words_free(&w);
}

TEST(words_errors)
{
	struct words w;
	CHECK(split(&w, "get \"open") == -EINVAL);
	CHECK(w.argc == 0);
	CHECK(split(&w, "get 'open") == -EINVAL);
	CHECK(split(&w, "trailing\\") == -EINVAL);
	char many[WORDS_MAX * 2 + 8];
	size_t n = 0;
	for (int i = 0; i < WORDS_MAX + 1; i++) {
		many[n++] = 'x';
		many[n++] = ' ';
	}
	many[n] = '\0';
	CHECK(split(&w, many) == -E2BIG);
}

TEST(words_quote_roundtrip)
{
	const char *names[] = {"plain", "with space", "quote\"d", "it's", "back\\slash", "tab\there"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct buf b;
		buf_init(&b, 1024);
		CHECK(words_quote(&b, names[i]) == 0);
		struct words w;
		CHECK(split(&w, b.data) == 0);
		CHECK(w.argc == 1);
		if (w.argc == 1)
			CHECK_STR(w.argv[0], names[i]);
		words_free(&w);
		buf_free(&b);
	}
}

TEST(words_last_start_finds_the_open_word)
{
	CHECK(words_last_start("get fi") == 4);
	CHECK(words_last_start("get ") == 4);
	CHECK(words_last_start("get \"my fi") == 4);
	CHECK(words_last_start("ge") == 0);
}

/* words_tail reads a word cut off at the cursor; completing it with
 * words_quote_in (and the closing quote) gives back the whole name. */
TEST(words_tail_and_continued_quoting)
{
	const char *name = "my \"odd\" it's\\.txt";
	const char *typed[] = {"get my", "get my\\ \\\"o", "get \"my \\\"od", "get 'my \"odd", "get my\\", "get "};
	for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
		struct words_tail t;
		struct buf value, line;
		buf_init(&value, 1024);
		buf_init(&line, 1024);
		CHECK(words_tail(typed[i], &t, &value) == 0);
		CHECK(strncmp(name, value.data ? value.data : "", value.len) == 0);
		size_t end = strlen(typed[i]) - (t.escape ? 1 : 0);
		CHECK(buf_append(&line, typed[i], end) == 0);
		CHECK(words_quote_in(&line, name + value.len, t.quote) == 0);
		if (t.quote)
			CHECK(buf_append(&line, &t.quote, 1) == 0);
		CHECK(buf_append(&line, "", 1) == 0);
		struct words w;
		CHECK(split(&w, line.data) == 0);
		CHECK(w.argc == 2);
		if (w.argc == 2)
			CHECK_STR(w.argv[1], name);
		words_free(&w);
		buf_free(&value);
		buf_free(&line);
	}
}

int main(void)
{
	RUN_ONE(words_plain_and_blanks);
	RUN_ONE(words_quotes_and_backslashes);
	RUN_ONE(words_errors);
	RUN_ONE(words_quote_roundtrip);
	RUN_ONE(words_last_start_finds_the_open_word);
	RUN_ONE(words_tail_and_continued_quoting);
	return check_tests_failed ? 1 : 0;
}
