/* url.h - ftp:// URLs (RFC 1738 section 3.2), and ftps:// for FTP over
 * implicit TLS (default port 990).
 *
 *   ftp://[USER[:PASS]@]HOST[:PORT][/PATH][;type=a|i|d]
 *   ftps://[USER[:PASS]@]HOST[:PORT][/PATH][;type=a|i|d]
 *
 * HOST may be a bracketed IPv6 literal. USER, PASS and PATH are
 * percent-decoded; a decoded NUL, CR or LF is refused because it could
 * never be sent on a control line. PATH is what follows the first '/',
 * decoded: relative to the login directory, absolute when it starts with
 * "%2F" (or a second '/'), as curl and lftp read it. A final ";type=X"
 * is taken off the path into type: 'a' ASCII, 'i' binary, 'd' a listing
 * of names; another code is refused. */
#ifndef FERRY_URL_H
#define FERRY_URL_H

#include "ferry_limits.h"

#include <stdbool.h>

#define URL_PART_MAX 256

struct ftp_url {
	char user[URL_PART_MAX];
	char pass[URL_PART_MAX];
	bool has_user;
	bool has_pass;
	char host[URL_PART_MAX];
	bool tls; /* ftps:// */
	int port; /* 21 (ftps: 990) when the URL names none */
	char path[FERRY_PATH_MAX];
	char type; /* ;type= code: 'a', 'i', 'd', or 0 when none was given */
};

/* 0, or -EINVAL (not an ftp URL, bad port, bad escape), or -ENAMETOOLONG. */
int url_parse(const char *text, struct ftp_url *out);
/* True when text starts with "ftp://" or "ftps://" (any case). */
bool url_is_ftp(const char *text);

#endif
