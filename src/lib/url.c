#include "url.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_SCHEME "ftp://"
#define URL_SCHEME_TLS "ftps://"
#define URL_DEFAULT_PORT 21
#define URL_DEFAULT_PORT_TLS 990
#define URL_TYPECODE ";type="

static bool has_prefix(const char *text, const char *prefix)
{
	return strncasecmp(text, prefix, strlen(prefix)) == 0;
}

bool url_is_ftp(const char *text)
{
	return has_prefix(text, URL_SCHEME) || has_prefix(text, URL_SCHEME_TLS);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes n bytes of s into out (outlen with room for the NUL). */
static int decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -EINVAL;
			int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0' || c == '\r' || c == '\n')
			return -EINVAL;
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static int parse_port(const char *s, size_t n, int *port)
{
	if (n == 0 || n > 5)
		return -EINVAL;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/* RFC 1738's ";type=" at the end of the path (before decoding: a ';' in
 * a name is written %3B): takes it off *len and sets *type to 'a', 'i' or
 * 'd'. -EINVAL for another type code. */
static int take_typecode(const char *path, size_t *len, char *type)
{
	const size_t n = sizeof URL_TYPECODE - 1;
	if (*len < n + 1 || strncasecmp(path + *len - n - 1, URL_TYPECODE, n) != 0)
		return 0;
	char code = (char)tolower((unsigned char)path[*len - 1]);
	if (!strchr("aid", code))
		return -EINVAL;
	*type = code;
	*len -= n + 1;
	return 0;
}

int url_parse(const char *text, struct ftp_url *out)
{
	memset(out, 0, sizeof *out);
	if (!url_is_ftp(text))
		return -EINVAL;
	out->tls = has_prefix(text, URL_SCHEME_TLS);
	out->port = out->tls ? URL_DEFAULT_PORT_TLS : URL_DEFAULT_PORT;
	const char *auth = text + strlen(out->tls ? URL_SCHEME_TLS : URL_SCHEME);
	const char *slash = strchr(auth, '/');
	size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
	/* The last '@' ends the credentials: a password may contain an
	 * unescaped '@' in URLs people actually type. */
	const char *at = memrchr(auth, '@', alen);
	int rc;
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
		if ((rc = decode(auth, ulen, out->user, sizeof out->user)) != 0)
			return rc;
		out->has_user = true;
		if (colon) {
			rc = decode(colon + 1, (size_t)(at - colon - 1), out->pass, sizeof out->pass);
			if (rc)
				return rc;
			out->has_pass = true;
		}
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	const char *host = auth, *portstr = NULL;
	size_t hlen = alen, plen = 0;
	if (alen && auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		if (!close)
			return -EINVAL;
		host = auth + 1;
		hlen = (size_t)(close - host);
		size_t rest = alen - (size_t)(close + 1 - auth);
		if (rest) {
			if (close[1] != ':')
				return -EINVAL;
			portstr = close + 2;
			plen = rest - 1;
		}
	} else {
		const char *colon = memchr(auth, ':', alen);
		if (colon) {
			hlen = (size_t)(colon - auth);
			portstr = colon + 1;
			plen = alen - hlen - 1;
		}
	}
	if (hlen == 0 || hlen >= sizeof out->host)
		return hlen ? -ENAMETOOLONG : -EINVAL;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (portstr && (rc = parse_port(portstr, plen, &out->port)) != 0)
		return rc;
	if (!slash)
		return 0;
	size_t pathlen = strlen(slash + 1);
	if ((rc = take_typecode(slash + 1, &pathlen, &out->type)) != 0)
		return rc;
	return decode(slash + 1, pathlen, out->path, sizeof out->path);
}
