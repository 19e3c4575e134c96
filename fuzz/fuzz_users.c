/* fuzz_users.c - the --users file parser and password check
 * (server/users.c: users_load, users_check).
 *
 * users.c is compiled into this target (#include) so the loaded table can
 * be inspected and emptied between inputs; crypt_r is replaced by a stub:
 * crypt(3) itself is not under test, and a real hash with a huge cost
 * parameter ("$2b$31$...") would make one input take hours. The stub
 * "hashes" the password "right" to the setting itself, anything else to a
 * different string, and fails ("*0") for settings starting with '*'.
 *
 * Input: the users file.
 *
 * Invariants:
 *   - users_load returns 0 or -1, and on -1 a non-empty one-line error;
 *   - every loaded user has a non-empty name and hash without ':', a home
 *     starting with '/', and "name:hash:home:ro|rw" (writable == rw) is
 *     one line of the file (CRLF or LF ended, or the last line; a NUL
 *     byte ends a line's text, as fgets + strlen read it);
 *   - with a file that is plain text (no NUL, short lines), users_load
 *     succeeds exactly when every non-blank, non-comment line has that
 *     form, and loads one user per such line, in order;
 *   - users_check(name, "right") finds the first user of that name (none
 *     when its hash starts with '*'), a wrong password or an unknown name
 *     finds nobody. */
#define crypt_r fuzz_crypt_r
#include "../src/server/users.c"
#undef crypt_r

#include "fuzz.h"

#include <sys/mman.h>

static char stub_out[16384];

char *fuzz_crypt_r(const char *phrase, const char *setting, struct crypt_data *data)
{
	(void)data;
	if (setting[0] == '*' || setting[0] == '\0') {
		snprintf(stub_out, sizeof stub_out, "*0");
		return stub_out;
	}
	snprintf(stub_out, sizeof stub_out, "%s%s", strcmp(phrase, "right") == 0 ? "" : "!", setting);
	return stub_out;
}

static void users_reset(void)
{
	for (size_t i = 0; i < n_users; i++) {
		free(users[i].name);
		free(users[i].hash);
		free(users[i].home);
	}
	free(users);
	users = NULL;
	n_users = 0;
	free(decoy_hash);
	decoy_hash = NULL;
}

/* Is "name:hash:home:mode" a line of the file? */
static bool is_line_of(const char *file, size_t size, const struct user *u)
{
	char want[20000];
	int n = snprintf(want, sizeof want, "%s:%s:%s:%s", u->name, u->hash, u->home, u->writable ? "rw" : "ro");
	if (n < 0 || (size_t)n >= sizeof want)
		return false;
	for (size_t start = 0; start < size;) {
		const char *nl = memchr(file + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - file) : size;
		/* fgets + strlen: a NUL ends the line's text. */
		size_t len = strnlen(file + start, end - start);
		if (len && file[start + len - 1] == '\r')
			len--;
		if (len == (size_t)n && memcmp(file + start, want, len) == 0)
			return true;
		start = end + 1;
	}
	return false;
}

/* The reference reading of a plain-text file: -1 when some line is
 * malformed, else the number of users. */
static long reference_count(const char *file, size_t size, const char ***lines_out)
{
	long count = 0;
	for (size_t start = 0; start < size;) {
		const char *nl = memchr(file + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - file) : size;
		size_t len = end - start;
		const char *l = file + start;
		start = end + 1;
		if (len && l[len - 1] == '\r')
			len--;
		if (len == 0 || l[0] == '#')
			continue;
		char line[8192];
		memcpy(line, l, len);
		line[len] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *c3 = c2 ? strrchr(c2 + 1, ':') : NULL;
		if (!c3 || c1 == line || c2 == c1 + 1 || c2[1] != '/')
			return -1;
		if (strcmp(c3 + 1, "ro") != 0 && strcmp(c3 + 1, "rw") != 0)
			return -1;
		(*lines_out)[count++] = l;
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("users", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	char err[256] = "";
	int rc = users_load(path, err, sizeof err);
	close(fd);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1)
		FUZZ_CHECK(err[0] != '\0' && !strchr(err, '\n'));

	const char *file = (const char *)data;
	bool plain = !memchr(data, '\0', size);
	for (size_t start = 0; plain && start < size;) {
		const char *nl = memchr(file + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - file) : size;
		if (end - start >= 8000)
			plain = false;
		start = end + 1;
	}
	if (plain) {
		const char **lines = malloc((size + 1) * sizeof *lines);
		FUZZ_CHECK(lines);
		long want = reference_count(file, size, &lines);
		FUZZ_CHECK((rc == 0) == (want >= 0));
		if (rc == 0) {
			FUZZ_CHECK((size_t)want == n_users);
			for (size_t i = 0; i < n_users; i++)
				FUZZ_CHECK(strncmp(lines[i], users[i].name, strlen(users[i].name)) == 0);
		}
		free(lines);
	}
	/* users_load leaves the users before a bad line loaded; ferryd exits
	 * then, but their fields must still be well-formed. */
	for (size_t i = 0; i < n_users; i++) {
		const struct user *u = &users[i];
		FUZZ_CHECK(u->name[0] && !strchr(u->name, ':'));
		FUZZ_CHECK(u->hash[0] && !strchr(u->hash, ':'));
		FUZZ_CHECK(u->home[0] == '/');
		FUZZ_CHECK(is_line_of(file, size, u));
	}
	if (rc == 0) {
		for (size_t i = 0; i < n_users; i++) {
			size_t first = i;
			for (size_t k = 0; k < i; k++)
				if (strcmp(users[k].name, users[i].name) == 0) {
					first = k;
					break;
				}
			const struct user *got = users_check(users[i].name, "right");
			FUZZ_CHECK(got == (users[first].hash[0] == '*' ? NULL : &users[first]));
			FUZZ_CHECK(users_check(users[i].name, "wrong") == NULL);
		}
		FUZZ_CHECK(users_check("no:such:user", "right") == NULL);
	}
	users_reset();
	return 0;
}
