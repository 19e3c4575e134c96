#include "reply.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

void reply_parser_init(struct reply_parser *rp, size_t limit)
{
	buf_init(&rp->text, limit);
	rp->code = 0;
	rp->multi = false;
}

void reply_parser_free(struct reply_parser *rp)
{
	buf_free(&rp->text);
}

void reply_parser_reset(struct reply_parser *rp)
{
	buf_clear(&rp->text);
	rp->code = 0;
	rp->multi = false;
}

static int leading_code(const char *line)
{
	if (!isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return -1;
	if (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
		return -1;
	/* RFC 959 codes are 1yz..5yz. RFC 2228's 6yz protected replies exist
	 * only after MIC/CONF/ENC, which ferry never sends (it protects with
	 * TLS, RFC 4217): from a server they are garbage like any other. */
	if (line[0] < '1' || line[0] > '5')
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

int reply_parser_feed(struct reply_parser *rp, const char *line)
{
	int code = leading_code(line);
	if (rp->code == 0) {
		if (code < 0)
			return -EPROTO;
		rp->code = code;
		rp->multi = line[3] == '-';
		int rc = buf_appends(&rp->text, line[3] ? line + 4 : "");
		if (rc)
			return rc;
		return rp->multi ? 0 : 1;
	}
	/* Inside a multi-line reply: it ends at "ddd " (or "ddd") with its code. */
	bool last = code == rp->code && line[3] != '-';
	int rc = buf_appends(&rp->text, "\n");
	if (rc == 0)
		rc = buf_appends(&rp->text, last ? (line[3] ? line + 4 : "") : line);
	if (rc)
		return rc;
	return last ? 1 : 0;
}

static bool eight_bit_terminal;

void shown_on_eight_bit_terminal(bool on)
{
	eight_bit_terminal = on;
}

size_t shown_char_len(const char *text, size_t n)
{
	const unsigned char *s = (const unsigned char *)text;
	if (n == 0 || s[0] < 0x20 || s[0] == 0x7f)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (eight_bit_terminal) /* one byte, one character; 0x80-0x9f are C1 */
		return s[0] >= 0xa0 ? 1 : 0;
	size_t len = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		   : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	uint32_t cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return cp <= 0x9f ? 0 : len;
}

bool shown_whole(const char *text)
{
	for (size_t n = strlen(text), k; n > 0; text += k, n -= k)
		if ((k = shown_char_len(text, n)) == 0)
			return false;
	return true;
}

void reply_sanitize(const char *text, char *out, size_t outlen)
{
	if (!outlen)
		return;
	size_t in = 0, at = 0, n = strlen(text);
	while (in < n && at + 1 < outlen) {
		size_t k = shown_char_len(text + in, n - in);
		if (k == 0) {
			out[at++] = '?';
			in++;
			continue;
		}
		if (at + k >= outlen)
			break;
		memmove(out + at, text + in, k);
		at += k;
		in += k;
	}
	out[at] = '\0';
}
