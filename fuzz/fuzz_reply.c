/* fuzz_reply.c - the client's reply reading: server bytes through the
 * line reader (telnet mode, as ftpc.c uses it) into the reply parser
 * (lib/reply.c: reply_parser_feed), and reply_sanitize on the result.
 *
 * Input: one flag byte (bits 0-1: the reply size limit, 16, 256, 4096
 * or FERRY_REPLY_MAX; bit 2: continue after a malformed line), then the
 * bytes a server sends.
 *
 * Invariants:
 *   - reply_parser_feed returns only 1, 0, -EPROTO or -ENOBUFS, and
 *     -EPROTO only for the first line of a reply;
 *   - a completed reply has a code in 100..599, the code of its first
 *     line; a single-line reply completes on its first line, a multi-line
 *     one ("ddd-") only on a line starting "ddd " (or exactly "ddd");
 *   - the text is NUL-terminated, within the limit, starts with the first
 *     line's text and holds one '\n' per line after the first;
 *   - 0 (more lines wanted) only inside a multi-line reply;
 *   - reply_sanitize output is shown whole (no control bytes, no broken
 *     UTF-8), is the input with refused bytes as '?', and is cut to the
 *     output size, or before a character that would not fit whole. */
#include "fuzz.h"

#include "ferry_limits.h"
#include "line.h"
#include "reply.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

static void check_sanitize(const char *text)
{
	static const size_t sizes[] = {1, 2, 7, 64, 4096};
	size_t len = strlen(text);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *out = malloc(sizes[i]);
		FUZZ_CHECK(out);
		reply_sanitize(text, out, sizes[i]);
		size_t want = len < sizes[i] - 1 ? len : sizes[i] - 1;
		size_t got = strlen(out);
		/* Short only by a character of up to 4 bytes that did not fit. */
		FUZZ_CHECK(got <= want && got + 3 >= want);
		if (got < want)
			FUZZ_CHECK(shown_char_len(text + got, len - got) > want - got);
		FUZZ_CHECK(shown_whole(out));
		for (size_t k = 0; k < got; k++) {
			unsigned char c = (unsigned char)out[k];
			FUZZ_CHECK(c >= 0x20 && c != 0x7f);
			FUZZ_CHECK(out[k] == text[k] || out[k] == '?');
		}
		free(out);
	}
}

static bool starts_with_code(const char *line, int code)
{
	char c[4];
	snprintf(c, sizeof c, "%03d", code);
	return strncmp(line, c, 3) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const size_t limits[4] = {16, 256, 4096, FERRY_REPLY_MAX};
	size_t limit = limits[data[0] & 3];
	bool go_on = data[0] & 4;
	data++;
	size--;

	struct line_reader lr;
	struct reply_parser rp;
	line_init(&lr, FERRY_LINE_MAX, true);
	reply_parser_init(&rp, limit);
	size_t pos = 0;
	int lines = 0;            /* lines of the reply being read */
	char first[8] = "";       /* its first line's first four bytes */
	size_t first_text = 0;    /* length of the first line's text */
	while (pos < size) {
		size_t used = 0;
		enum line_result r = line_feed(&lr, (const char *)data + pos, size - pos, &used);
		pos += used;
		if (r == LINE_MORE)
			break;
		if (r == LINE_TOO_LONG) {
			line_reset(&lr);
			if (!go_on)
				break;
			continue;
		}
		const char *line = lr.line.data;
		bool was_empty = rp.code == 0;
		int rc = reply_parser_feed(&rp, line);
		FUZZ_CHECK(rc == 1 || rc == 0 || rc == -EPROTO || rc == -ENOBUFS);
		if (rc == -EPROTO) {
			FUZZ_CHECK(was_empty);
			FUZZ_CHECK(rp.code == 0);
		} else if (rc != -ENOBUFS) {
			lines++;
			if (was_empty) {
				snprintf(first, sizeof first, "%.4s", line);
				first_text = strlen(line) > 4 ? strlen(line) - 4 : 0;
			}
			FUZZ_CHECK(rp.code >= 100 && rp.code <= 599);
			FUZZ_CHECK(starts_with_code(first, rp.code));
			FUZZ_CHECK(isdigit((unsigned char)first[0]) && isdigit((unsigned char)first[1]) &&
				   isdigit((unsigned char)first[2]));
			FUZZ_CHECK(rp.multi == (first[3] == '-'));
			FUZZ_CHECK(rp.text.len <= limit);
			FUZZ_CHECK(rp.text.data && rp.text.data[rp.text.len] == '\0');
			if (rc == 0) {
				FUZZ_CHECK(rp.multi);
			} else {
				if (lines == 1) {
					FUZZ_CHECK(!rp.multi);
				} else {
					FUZZ_CHECK(rp.multi);
					FUZZ_CHECK(starts_with_code(line, rp.code));
					FUZZ_CHECK(line[3] == ' ' || line[3] == '\0');
				}
				/* One '\n' per line after the first; the first line's
				 * text leads. */
				int nl = 0;
				for (size_t i = 0; i < rp.text.len; i++)
					nl += rp.text.data[i] == '\n';
				FUZZ_CHECK(nl == lines - 1);
				size_t lead = strcspn(rp.text.data, "\n");
				FUZZ_CHECK(lead == first_text);
				FUZZ_CHECK(reply_is_preliminary(rp.code) + reply_is_success(rp.code) +
					   reply_is_intermediate(rp.code) + reply_is_error(rp.code) == 1);
				check_sanitize(rp.text.data);
			}
		}
		line_reset(&lr);
		if (rc == 1 || rc < 0) {
			reply_parser_reset(&rp);
			lines = 0;
			if (rc < 0 && !go_on)
				break;
		}
	}
	line_free(&lr);
	reply_parser_free(&rp);
	return 0;
}
