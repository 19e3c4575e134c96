/* fuzz_path.c - virtual path normalisation (lib/path.c: path_resolve,
 * path_leaf).
 *
 * Input: one byte choosing the output size (1..255, or FERRY_PATH_MAX
 * when 0), then the working directory and the client's argument separated
 * by a NUL byte (no NUL: the working directory is "/"). The working
 * directory is made canonical first, as the server's cwd always is.
 *
 * Invariants:
 *   - path_resolve returns 0 or -ENAMETOOLONG and never writes past the
 *     output size;
 *   - its output is canonical: starts with '/', no empty, "." or ".."
 *     component (no "//", "/./", "/../"), no trailing slash except "/",
 *     and shorter than the output size;
 *   - it is a fixed point: resolving the output again (from "/", from any
 *     cwd, or with an empty argument from itself) gives it back;
 *   - a result that fits a small buffer is the same in a large one;
 *   - a relative argument resolves as cwd + "/" + argument from "/";
 *   - path_leaf gives the last component, with no '/' (or "/" itself). */
#include "fuzz.h"

#include "ferry_limits.h"
#include "path.h"

#include <errno.h>
#include <string.h>

static void check_canonical(const char *p, size_t outlen)
{
	size_t n = strlen(p);
	FUZZ_CHECK(n < outlen);
	FUZZ_CHECK(p[0] == '/');
	if (n == 1)
		return;
	FUZZ_CHECK(p[n - 1] != '/');
	/* Every component is non-empty and neither "." nor "..". */
	const char *c = p + 1;
	for (;;) {
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);
		FUZZ_CHECK(len > 0);
		FUZZ_CHECK(!(len == 1 && c[0] == '.'));
		FUZZ_CHECK(!(len == 2 && c[0] == '.' && c[1] == '.'));
		if (!e)
			break;
		c = e + 1;
	}
	FUZZ_CHECK(!strstr(p, "//") && !strstr(p, "/./") && !strstr(p, "/../"));
	const char *leaf = path_leaf(p);
	FUZZ_CHECK(*leaf && !strchr(leaf, '/'));
	FUZZ_CHECK(leaf[-1] == '/' && leaf + strlen(leaf) == p + n);
}

/* path_resolve into a buffer of exactly outlen bytes. */
static int resolve(const char *cwd, const char *arg, size_t outlen, char **out)
{
	*out = malloc(outlen);
	FUZZ_CHECK(*out);
	int rc = path_resolve(cwd, arg, *out, outlen);
	FUZZ_CHECK(rc == 0 || rc == -ENAMETOOLONG);
	if (rc == 0)
		check_canonical(*out, outlen);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t outlen = data[0] ? data[0] : FERRY_PATH_MAX;
	data++;
	size--;
	const uint8_t *nul = memchr(data, '\0', size);
	char *rawcwd = nul ? fuzz_strndup(data, (size_t)(nul - data)) : fuzz_strndup((const uint8_t *)"/", 1);
	char *arg = nul ? fuzz_strndup(nul + 1, size - (size_t)(nul + 1 - data)) : fuzz_strndup(data, size);

	char *cwd;
	if (resolve("/", rawcwd, FERRY_PATH_MAX, &cwd) != 0) {
		free(cwd);
		cwd = fuzz_strndup((const uint8_t *)"/", 1);
	}

	char *out, *big, *again;
	int rc = resolve(cwd, arg, outlen, &out);
	int rcbig = resolve(cwd, arg, FERRY_PATH_MAX * 2, &big);
	if (rc == 0) {
		FUZZ_CHECK(rcbig == 0 && strcmp(out, big) == 0);
		FUZZ_CHECK(resolve("/", out, outlen, &again) == 0 && strcmp(again, out) == 0);
		free(again);
		FUZZ_CHECK(resolve(cwd, out, outlen, &again) == 0 && strcmp(again, out) == 0);
		free(again);
		FUZZ_CHECK(resolve(out, "", outlen, &again) == 0 && strcmp(again, out) == 0);
		free(again);
		FUZZ_CHECK(resolve(out, NULL, outlen, &again) == 0 && strcmp(again, out) == 0);
		free(again);
	}
	if (rcbig == 0 && arg[0] != '/') {
		/* Relative: the same as the joined path from the root. */
		size_t n = strlen(cwd) + 1 + strlen(arg) + 1;
		char *joined = malloc(n);
		FUZZ_CHECK(joined);
		snprintf(joined, n, "%s/%s", cwd, arg);
		FUZZ_CHECK(resolve("/", joined, FERRY_PATH_MAX * 2, &again) == 0 && strcmp(again, big) == 0);
		free(again);
		free(joined);
	}
	free(out);
	free(big);
	free(cwd);
	free(rawcwd);
	free(arg);
	return 0;
}
