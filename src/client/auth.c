#include "auth.h"

#include "buf.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

static int read_small_file(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char chunk[4096];
	int rc = 0;
	for (;;) {
		ssize_t n = io_read_some(fd, chunk, sizeof chunk);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		if ((rc = buf_append(out, chunk, (size_t)n)) != 0)
			break;
	}
	close(fd);
	return rc;
}

/* Next netrc token from *p (blank-separated, "double quotes" allowed), or
 * NULL at the end. Tokens are written into tok. */
static const char *next_token(const char **p, char *tok, size_t toklen)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ',')
		s++;
	if (!*s)
		return NULL;
	size_t n = 0;
	bool quoted = *s == '"';
	if (quoted)
		s++;
	while (*s && (quoted ? *s != '"' : !strchr(" \t\r\n,", *s))) {
		if (*s == '\\' && s[1])
			s++;
		if (n + 1 < toklen)
			tok[n++] = *s;
		s++;
	}
	if (quoted && *s == '"')
		s++;
	tok[n] = '\0';
	*p = s;
	return tok;
}

bool auth_netrc_lookup(const char *host, const char *user, char *login, size_t loginlen,
		       char *pass, size_t passlen)
{
	char path[4096];
	const char *env = getenv("NETRC");
	const char *home = getenv("HOME");
	if (env && *env)
		snprintf(path, sizeof path, "%s", env);
	else if (home && *home) {
		int n = snprintf(path, sizeof path, "%s/.netrc", home);
		if (n < 0 || (size_t)n >= sizeof path)
			return false;
	} else
		return false;
	struct buf text;
	buf_init(&text, AUTH_NETRC_MAX);
	if (read_small_file(path, &text) != 0 || !text.data) {
		buf_free(&text);
		return false;
	}
	const char *p = text.data;
	char tok[512], l[512] = "", pw[512] = "";
	bool in_entry = false, matched = false, found = false;
	for (;;) {
		const char *t = next_token(&p, tok, sizeof tok);
		bool entry_start = t && (strcmp(t, "machine") == 0 || strcmp(t, "default") == 0);
		if (!t || entry_start) {
			/* Close the previous entry. */
			if (in_entry && matched && (!user || !*l || strcmp(l, user) == 0)) {
				found = true;
				break;
			}
			if (!t)
				break;
			l[0] = pw[0] = '\0';
			in_entry = true;
			if (strcmp(t, "default") == 0) {
				matched = true;
			} else {
				const char *m = next_token(&p, tok, sizeof tok);
				matched = m && strcasecmp(m, host) == 0;
			}
			continue;
		}
		if (strcmp(t, "login") == 0 || strcmp(t, "password") == 0 || strcmp(t, "account") == 0) {
			char *dst = t[0] == 'l' ? l : t[0] == 'p' ? pw : NULL;
			const char *v = next_token(&p, tok, sizeof tok);
			if (v && dst)
				snprintf(dst, 512, "%s", v);
		} else if (strcmp(t, "macdef") == 0) {
			/* A macro body runs to the next empty line. */
			const char *end = strstr(p, "\n\n");
			p = end ? end + 2 : p + strlen(p);
			in_entry = false;
		}
	}
	if (found) {
		snprintf(login, loginlen, "%s", l);
		snprintf(pass, passlen, "%s", pw);
	}
	explicit_bzero(text.data, text.len);
	explicit_bzero(pw, sizeof pw);
	buf_free(&text);
	return found;
}

int auth_prompt_password(const char *prompt, char *out, size_t outlen)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -ENXIO;
	struct termios old, quiet;
	bool restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	int rc = io_write_full(fd, prompt, strlen(prompt));
	size_t n = 0;
	while (rc == 0) {
		char c;
		ssize_t r = io_read_some(fd, &c, 1);
		if (r < 0) {
			rc = (int)r;
			break;
		}
		if (r == 0 || c == '\n')
			break;
		if (n + 1 < outlen)
			out[n++] = c;
	}
	if (outlen)
		out[n < outlen ? n : outlen - 1] = '\0';
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	(void)io_write_full(fd, "\n", 1);
	close(fd);
	return rc;
}
