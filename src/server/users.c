#include "users.h"

#include "ferry_limits.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct user *users;
static size_t n_users;
/* A hash with the first user's parameters, checked for unknown names so
 * that they cost as much as known ones. */
static char *decoy_hash;

static struct crypt_data crypt_work; /* large; one per process */

static char *dup_field(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

int users_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot read users file %s: %s", path, strerror(errno));
		return -1;
	}
	char line[8192];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		size_t len = strlen(line);
		if (len < sizeof line - 1 && !feof(f) && line[len] != '\n' && (len == 0 || line[len - 1] != '\n')) {
			snprintf(err, errlen, "%s:%d: NUL byte in line", path, lineno);
			goto fail;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto fail;
		}
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		char *f1 = strchr(line, ':');
		char *f2 = f1 ? strchr(f1 + 1, ':') : NULL;
		char *f3 = f2 ? strrchr(f2 + 1, ':') : NULL;
		if (!f1 || !f2 || !f3 || f1 == line || f2 == f1 + 1 || f3[1] == '\0') {
			snprintf(err, errlen, "%s:%d: expected name:crypt-hash:home:ro|rw", path, lineno);
			goto fail;
		}
		const char *mode = f3 + 1;
		if (strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0) {
			snprintf(err, errlen, "%s:%d: access must be ro or rw, not '%s'", path, lineno, mode);
			goto fail;
		}
		if (f2[1] != '/') {
			snprintf(err, errlen, "%s:%d: home must be an absolute directory", path, lineno);
			goto fail;
		}
		if (n_users >= FERRY_USERS_MAX) {
			snprintf(err, errlen, "%s: more than %d users", path, FERRY_USERS_MAX);
			goto fail;
		}
		struct user *grown = realloc(users, (n_users + 1) * sizeof *users);
		if (!grown) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		users = grown;
		struct user *u = &users[n_users];
		u->name = dup_field(line, (size_t)(f1 - line));
		u->hash = dup_field(f1 + 1, (size_t)(f2 - f1 - 1));
		u->home = dup_field(f2 + 1, (size_t)(f3 - f2 - 1));
		u->writable = mode[1] == 'w';
		if (!u->name || !u->hash || !u->home) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		n_users++;
	}
	fclose(f);
	if (n_users) {
		const char *h = crypt_r("ferry-decoy-password", users[0].hash, &crypt_work);
		if (h && h[0] != '*')
			decoy_hash = strdup(h);
	}
	return 0;
fail:
	fclose(f);
	return -1;
}

const struct user *users_check(const char *name, const char *password)
{
	const struct user *found = NULL;
	for (size_t i = 0; i < n_users; i++)
		if (strcmp(users[i].name, name) == 0) {
			found = &users[i];
			break;
		}
	const char *setting = found ? found->hash : decoy_hash;
	if (!setting)
		return NULL;
	const char *h = crypt_r(password, setting, &crypt_work);
	if (!found || !h || h[0] == '*')
		return NULL;
	/* Compare the whole hash in constant time. */
	size_t a = strlen(h), b = strlen(found->hash);
	unsigned char diff = (unsigned char)(a != b);
	for (size_t i = 0; i < a && i < b; i++)
		diff |= (unsigned char)(h[i] ^ found->hash[i]);
	return diff ? NULL : found;
}

int users_hash_password(void)
{
	char pw[1024];
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fputs("password: ", stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	char *got = fgets(pw, sizeof pw, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (!got) {
		fputs("ferryd: no password on stdin\n", stderr);
		return 2;
	}
	pw[strcspn(pw, "\r\n")] = '\0';
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (!crypt_gensalt_rn(NULL, 0, NULL, 0, salt, sizeof salt)) {
		fprintf(stderr, "ferryd: cannot make a salt: %s\n", strerror(errno));
		return 2;
	}
	const char *h = crypt_r(pw, salt, &crypt_work);
	explicit_bzero(pw, sizeof pw);
	if (!h || h[0] == '*') {
		fputs("ferryd: crypt failed\n", stderr);
		return 2;
	}
	printf("%s\n", h);
	return 0;
}
