#include "reply.h"

#include <ctype.h>
#include <errno.h>
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

void reply_sanitize(const char *text, char *out, size_t outlen)
{
	size_t i = 0;
	if (!outlen)
		return;
	for (; text[i] && i + 1 < outlen; i++)
		out[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
	out[i] = '\0';
}
