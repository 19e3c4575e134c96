/* fuzz_rlist.c - the client's listing parser (client/rlist.c:
 * rlist_fetch's NLST/MLSD line parsing, rglob_expand's matching).
 *
 * rlist.o is linked with stubs for what it calls in the rest of the
 * client: transfer_listing_fetch hands over the fuzzed listing instead of
 * opening a data connection, and client_fail/client_fail_ftp are silent.
 *
 * Input: one flag byte (bit 0: the server announced MLST, so MLSD is used;
 * bits 1-2: the listing command's result: 0, 450, 550 or 425), a glob
 * pattern up to the first NUL, then the listing as the server sent it.
 *
 * Invariants:
 *   - MLSD is asked for exactly when MLST was announced;
 *   - rlist_fetch succeeds on 0, on 450 and (NLST only) on 550 with no
 *     entries, and fails with the code otherwise;
 *   - entries are exactly those of an independent parse of the listing
 *     (lines split at LF, a NUL inside a line made 0x01 rather than an end,
 *     one final CR removed, empty lines skipped; MLSD:
 *     facts before the first space, the last type=file/dir fact wins, any
 *     type=cdir/pdir drops the entry; NLST: "dir/" prefix removed), in
 *     order, with names pointing into the listing's own buffer;
 *   - rglob_expand returns only names that rlist_name_is_safe accepts,
 *     that match the pattern's last component (fnmatch, FNM_PERIOD) and
 *     are not directories; each path is the directory part + the name. */
#include "fuzz.h"

#include "rlist.h"
#include "transfer.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

static const char *listing;
static size_t listing_len;
static int listing_rc;
static bool asked_mlsd;
static int fetches;

int transfer_listing_fetch(struct client *cl, const char *verb, const char *path, struct buf *out)
{
	(void)path;
	fetches++;
	asked_mlsd = strcmp(verb, "MLSD") == 0;
	FUZZ_CHECK(asked_mlsd || strcmp(verb, "NLST") == 0);
	if (listing_rc) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "%d refused", listing_rc);
		return listing_rc;
	}
	if (buf_append(out, listing, listing_len) != 0)
		return -ENOBUFS;
	return 0;
}

const char *transfer_leaf(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

int client_fail(struct client *cl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cl->ftp.err, sizeof cl->ftp.err, fmt, ap);
	va_end(ap);
	return -1;
}

int client_fail_ftp(struct client *cl, const char *what)
{
	(void)cl;
	(void)what;
	return -1;
}

/* The reference reading of one line: its name (or NULL) and type. */
static const char *ref_entry(char *line, bool mlsd, const char *dir, enum rlist_type *type)
{
	*type = RLIST_UNKNOWN;
	if (!mlsd) {
		size_t dl = dir ? strlen(dir) : 0;
		if (dl && strncmp(line, dir, dl) == 0 && line[dl] == '/')
			return line + dl + 1;
		return line;
	}
	char *sp = strchr(line, ' ');
	if (!sp)
		return NULL;
	/* Facts are ';'-separated; empty ones are skipped. */
	for (char *f = line; f < sp;) {
		char *end = memchr(f, ';', (size_t)(sp - f));
		if (!end)
			end = sp;
		size_t n = (size_t)(end - f);
		if (n >= 5 && strncasecmp(f, "type=", 5) == 0) {
			size_t vn = n - 5;
			const char *v = f + 5;
			if (vn == 4 && strncasecmp(v, "file", 4) == 0)
				*type = RLIST_FILE;
			else if (vn == 3 && strncasecmp(v, "dir", 3) == 0)
				*type = RLIST_DIR;
			else if (vn == 4 && (strncasecmp(v, "cdir", 4) == 0 || strncasecmp(v, "pdir", 4) == 0))
				return NULL;
		}
		f = end + 1;
	}
	return sp + 1;
}

static void check_fetch(struct client *cl, bool mlsd, const char *dir)
{
	struct rlist l;
	fetches = 0;
	int rc = rlist_fetch(cl, dir, &l);
	FUZZ_CHECK(fetches == 1 && asked_mlsd == mlsd);
	bool empty_ok = listing_rc == R_FILE_BUSY || (!mlsd && listing_rc == R_NO_FILE);
	if (listing_rc && !empty_ok) {
		FUZZ_CHECK(rc == listing_rc);
		return;
	}
	FUZZ_CHECK(rc == 0);
	if (listing_rc) {
		FUZZ_CHECK(l.count == 0);
		rlist_free(&l);
		return;
	}
	/* The reference parse, on a copy of the listing. */
	char *copy = fuzz_strndup((const uint8_t *)listing, listing_len);
	size_t i = 0;
	char *p = copy, *end = copy + listing_len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line = p;
		size_t n = (size_t)((nl ? nl : end) - line);
		for (size_t k = 0; k < n; k++)
			if (line[k] == '\0')
				line[k] = '\x01'; /* kept as a control byte, not a cut */
		line[n] = '\0';
		p = nl ? nl + 1 : end;
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		if (!n)
			continue;
		enum rlist_type type;
		const char *name = ref_entry(line, mlsd, dir, &type);
		if (!name)
			continue;
		FUZZ_CHECK(i < l.count);
		FUZZ_CHECK(strcmp(l.entries[i].name, name) == 0);
		FUZZ_CHECK(l.entries[i].type == type);
		FUZZ_CHECK(l.entries[i].name >= l.text.data && l.entries[i].name < l.text.data + l.text.len + 1);
		i++;
	}
	FUZZ_CHECK(i == l.count && !l.truncated);
	free(copy);
	rlist_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const int codes[4] = {0, R_FILE_BUSY, R_NO_FILE, R_CANT_OPEN_DATA};
	bool mlsd = data[0] & 1;
	listing_rc = codes[(data[0] >> 1) & 3];
	data++;
	size--;
	const uint8_t *nul = memchr(data, '\0', size);
	size_t plen = nul ? (size_t)(nul - data) : size;
	char *pattern = fuzz_strndup(data, plen);
	size_t off = nul ? plen + 1 : size;
	listing = (const char *)data + off;
	listing_len = size - off;

	struct client cl;
	memset(&cl, 0, sizeof cl);
	cl.ftp.feat.mlst = mlsd;

	check_fetch(&cl, mlsd, NULL);
	check_fetch(&cl, mlsd, "dir");

	if (pattern[0]) {
		struct rglob g;
		size_t refused = 0;
		const char *leaf = transfer_leaf(pattern);
		int rc = rglob_expand(&cl, pattern, &g, &refused);
		FUZZ_CHECK(rc == 0 || rc == -1);
		if (rc == 0) {
			bool glob = rlist_has_glob(leaf);
			size_t dirlen = (size_t)(leaf - pattern);
			for (size_t i = 0; i < g.count; i++) {
				const char *name = g.names[i];
				FUZZ_CHECK(rlist_name_is_safe(name));
				FUZZ_CHECK(!strchr(name, '/'));
				if (glob)
					FUZZ_CHECK(fnmatch(leaf, name, FNM_PERIOD) == 0);
				else
					FUZZ_CHECK(g.count == 1 && strcmp(name, leaf) == 0);
				size_t pl = strlen(g.paths[i]), nl = strlen(name);
				FUZZ_CHECK(pl >= nl && strcmp(g.paths[i] + pl - nl, name) == 0);
				if (dirlen)
					FUZZ_CHECK(strncmp(g.paths[i], pattern, dirlen - (dirlen > 1)) == 0);
				for (const unsigned char *c = (const unsigned char *)name; *c; c++)
					FUZZ_CHECK(*c >= 0x20 && *c != 0x7f);
			}
			rglob_free(&g);
		}
	}
	free(pattern);
	return 0;
}
