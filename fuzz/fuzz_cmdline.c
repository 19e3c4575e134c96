/* fuzz_cmdline.c - the control-connection line reader (lib/line.c:
 * line_feed, line_reset) and the command splitter (line_split_command).
 *
 * Input: one flag byte (bit 0: telnet mode; bits 1-2: the line maximum,
 * 1, 16, 200 or FERRY_LINE_MAX; bits 3-7: how the stream is cut into
 * feeds), then the byte stream.
 *
 * Invariants:
 *   - line_feed never consumes more than it was given, always makes
 *     progress, and consumes everything when it returns LINE_MORE;
 *   - a LINE_READY line is NUL-terminated, at most the maximum long and
 *     holds no LF; it holds a CR or NUL byte exactly when it is marked bad;
 *   - LINE_TOO_LONG only for a raw line longer than the maximum;
 *   - without telnet, a good line is exactly the raw bytes before its
 *     LF (or CRLF);
 *   - cutting the stream into different feeds gives the same lines;
 *   - line_split_command: a verb of at most 15 bytes, upper case, no
 *     space, equal to the line's first word upper-cased; the argument is
 *     NULL or non-empty and starts right after the first space; -EINVAL
 *     only when the first word is longer than 15 bytes. */
#include "fuzz.h"

#include "ferry_limits.h"
#include "line.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

struct result {
	enum line_result kind;
	bool bad;
	size_t len;
	char *line;
};

struct results {
	struct result r[4096];
	size_t n;
};

static void check_split(const char *line, size_t len)
{
	char *copy = malloc(len + 1);
	FUZZ_CHECK(copy);
	memcpy(copy, line, len + 1);
	char verb[16];
	char *arg = (char *)1;
	int rc = line_split_command(copy, verb, &arg);
	size_t word = strcspn(line, " ");
	if (rc != 0) {
		FUZZ_CHECK(rc == -EINVAL);
		FUZZ_CHECK(word > 15);
	} else {
		FUZZ_CHECK(word <= 15);
		FUZZ_CHECK(strlen(verb) == word);
		for (size_t i = 0; i < word; i++)
			FUZZ_CHECK(verb[i] == (char)toupper((unsigned char)line[i]));
		FUZZ_CHECK(!strchr(verb, ' '));
		if (arg) {
			FUZZ_CHECK(arg == copy + word + 1);
			FUZZ_CHECK(line[word] == ' ');
			FUZZ_CHECK(*arg != '\0');
		} else {
			FUZZ_CHECK(line[word] == '\0' || (line[word] == ' ' && line[word + 1] == '\0'));
		}
	}
	free(copy);
}

/* Feeds data in pieces of the sizes cut() gives; records every line. */
static void run(const uint8_t *data, size_t size, size_t max, bool telnet, unsigned cutmode,
		struct results *out)
{
	struct line_reader lr;
	line_init(&lr, max, telnet);
	size_t pos = 0, line_start = 0;
	out->n = 0;
	unsigned k = 0;
	while (pos < size && out->n < sizeof out->r / sizeof out->r[0]) {
		size_t piece = size - pos;
		if (cutmode == 1)
			piece = 1;
		else if (cutmode > 1)
			piece = 1 + (k++ * 7 + cutmode) % (cutmode + 1);
		if (piece > size - pos)
			piece = size - pos;
		size_t used = (size_t)-1;
		enum line_result r = line_feed(&lr, (const char *)data + pos, piece, &used);
		FUZZ_CHECK(used <= piece);
		pos += used;
		if (r == LINE_MORE) {
			FUZZ_CHECK(used == piece);
			continue;
		}
		FUZZ_CHECK(r == LINE_READY || r == LINE_TOO_LONG);
		FUZZ_CHECK(used > 0);
		/* The raw line: from line_start to pos, without LF or CRLF. */
		FUZZ_CHECK(data[pos - 1] == '\n');
		size_t raw = pos - 1 - line_start;
		bool crlf = raw > 0 && data[pos - 2] == '\r';
		struct result *res = &out->r[out->n++];
		res->kind = r;
		res->bad = lr.bad;
		res->len = 0;
		res->line = NULL;
		if (r == LINE_TOO_LONG) {
			FUZZ_CHECK(raw - crlf > max);
		} else {
			FUZZ_CHECK(lr.line.data != NULL);
			FUZZ_CHECK(lr.line.len <= max);
			FUZZ_CHECK(lr.line.data[lr.line.len] == '\0');
			FUZZ_CHECK(!memchr(lr.line.data, '\n', lr.line.len));
			bool has_ctl = memchr(lr.line.data, '\r', lr.line.len) || memchr(lr.line.data, '\0', lr.line.len);
			FUZZ_CHECK(has_ctl == lr.bad);
			if (!telnet && !lr.bad) {
				size_t want = crlf ? raw - 1 : raw;
				FUZZ_CHECK(lr.line.len == want);
				FUZZ_CHECK(memcmp(lr.line.data, data + line_start, want) == 0);
			}
			res->len = lr.line.len;
			res->line = malloc(lr.line.len + 1);
			FUZZ_CHECK(res->line);
			memcpy(res->line, lr.line.data, lr.line.len + 1);
			check_split(lr.line.data, lr.line.len);
		}
		line_reset(&lr);
		line_start = pos;
	}
	line_free(&lr);
}

static void free_results(struct results *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->r[i].line);
	r->n = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const size_t maxes[4] = {1, 16, 200, FERRY_LINE_MAX};
	bool telnet = data[0] & 1;
	size_t max = maxes[(data[0] >> 1) & 3];
	unsigned cutmode = data[0] >> 3;
	data++;
	size--;

	static struct results whole, cut;
	run(data, size, max, telnet, 0, &whole);
	run(data, size, max, telnet, cutmode ? cutmode : 1, &cut);
	FUZZ_CHECK(whole.n == cut.n);
	for (size_t i = 0; i < whole.n; i++) {
		FUZZ_CHECK(whole.r[i].kind == cut.r[i].kind);
		FUZZ_CHECK(whole.r[i].bad == cut.r[i].bad);
		FUZZ_CHECK(whole.r[i].len == cut.r[i].len);
		if (whole.r[i].line)
			FUZZ_CHECK(memcmp(whole.r[i].line, cut.r[i].line, whole.r[i].len) == 0);
	}
	free_results(&whole);
	free_results(&cut);
	return 0;
}
