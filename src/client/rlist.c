#include "rlist.h"

#include "transfer.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool rlist_name_is_safe(const char *name)
{
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

bool rlist_has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

void rlist_free(struct rlist *l)
{
	free(l->entries);
	l->entries = NULL;
	l->count = 0;
	buf_free(&l->text);
}

/* "type=file;size=3;modify=...; name" -> name and type. */
static const char *parse_mlsd(char *line, enum rlist_type *type)
{
	char *sp = strchr(line, ' ');
	if (!sp)
		return NULL;
	*sp = '\0';
	*type = RLIST_UNKNOWN;
	for (char *fact = strtok(line, ";"); fact; fact = strtok(NULL, ";")) {
		if (strncasecmp(fact, "type=", 5) != 0)
			continue;
		const char *v = fact + 5;
		if (strcasecmp(v, "file") == 0)
			*type = RLIST_FILE;
		else if (strcasecmp(v, "dir") == 0)
			*type = RLIST_DIR;
		else if (strcasecmp(v, "cdir") == 0 || strcasecmp(v, "pdir") == 0)
			return NULL; /* "." and "..": never a match */
	}
	return sp + 1;
}

int rlist_fetch(struct client *cl, const char *dir, struct rlist *out)
{
	memset(out, 0, sizeof *out);
	buf_init(&out->text, TRANSFER_LISTING_MAX);
	bool mlsd = cl->ftp.feat.mlst;
	int rc = transfer_listing_fetch(cl, mlsd ? "MLSD" : "NLST", dir, &out->text);
	if (rc == R_FILE_BUSY || (!mlsd && rc == R_NO_FILE))
		rc = 0; /* many servers answer NLST of an empty directory so */
	if (rc != 0) {
		rlist_free(out);
		return rc;
	}
	size_t dirlen = dir ? strlen(dir) : 0;
	size_t cap = 0;
	char *p = out->text.data;
	char *end = p ? p + out->text.len : NULL;
	while (p && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line = p;
		size_t n = (size_t)((nl ? nl : end) - line);
		/* A NUL inside a name would cut it to another file's name: make
		 * it a control byte, which rlist_name_is_safe refuses. */
		for (char *z = memchr(line, '\0', n); z; z = memchr(z, '\0', n - (size_t)(z - line)))
			*z = '\x01';
		line[n] = '\0';
		p = nl ? nl + 1 : end;
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		if (!n)
			continue;
		enum rlist_type type = RLIST_UNKNOWN;
		const char *name = mlsd ? parse_mlsd(line, &type) : line;
		if (!name || !*name)
			continue; /* "facts; " with no name names nothing */
		/* Some servers answer "NLST dir" with "dir/name". */
		if (!mlsd && dirlen && strncmp(name, dir, dirlen) == 0 && name[dirlen] == '/')
			name += dirlen + 1;
		if (out->count == RLIST_MAX_ENTRIES) {
			out->truncated = true;
			break;
		}
		if (out->count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct rlist_entry *e = realloc(out->entries, ncap * sizeof *e);
			if (!e) {
				rlist_free(out);
				snprintf(cl->ftp.err, sizeof cl->ftp.err, "out of memory");
				return -ENOMEM;
			}
			out->entries = e;
			cap = ncap;
		}
		out->entries[out->count].name = name;
		out->entries[out->count].type = type;
		out->count++;
	}
	return 0;
}

void rglob_free(struct rglob *g)
{
	free(g->paths);
	free(g->names);
	g->paths = g->names = NULL;
	g->count = 0;
	buf_free(&g->store);
}

/* Appends "path\0name\0" to the store; pointers are made at the end. */
static int add_match(struct rglob *g, const char *dir, const char *name)
{
	int rc = 0;
	if (dir && *dir) {
		rc = buf_appends(&g->store, dir);
		if (rc == 0 && dir[strlen(dir) - 1] != '/')
			rc = buf_append(&g->store, "/", 1);
	}
	if (rc == 0)
		rc = buf_append(&g->store, name, strlen(name) + 1);
	if (rc == 0)
		rc = buf_append(&g->store, name, strlen(name) + 1);
	if (rc == 0)
		g->count++;
	return rc;
}

static int finish(struct client *cl, struct rglob *g)
{
	if (g->count == 0)
		return 0;
	g->paths = calloc(g->count, sizeof *g->paths);
	g->names = calloc(g->count, sizeof *g->names);
	if (!g->paths || !g->names) {
		rglob_free(g);
		return client_fail(cl, "out of memory");
	}
	char *p = g->store.data;
	for (size_t i = 0; i < g->count; i++) {
		g->paths[i] = p;
		p += strlen(p) + 1;
		g->names[i] = p;
		p += strlen(p) + 1;
	}
	return 0;
}

int rglob_expand(struct client *cl, const char *pattern, struct rglob *out, size_t *refused)
{
	memset(out, 0, sizeof *out);
	buf_init(&out->store, TRANSFER_LISTING_MAX);
	const char *leaf = transfer_leaf(pattern);
	size_t dirlen = (size_t)(leaf - pattern);
	char dir[FERRY_PATH_MAX];
	if (dirlen >= sizeof dir)
		return client_fail(cl, "%s: name too long", pattern);
	memcpy(dir, pattern, dirlen);
	dir[dirlen] = '\0';
	/* The directory part is listed: "a/b/x*" lists "a/b", "/x*" lists "/". */
	if (dirlen > 1)
		dir[dirlen - 1] = '\0';

	if (!rlist_has_glob(leaf)) {
		if (!rlist_name_is_safe(leaf)) {
			(*refused)++;
			return client_fail(cl, "refusing unsafe local name \"%s\"", leaf);
		}
		if (buf_append(&out->store, pattern, strlen(pattern) + 1) != 0 ||
		    buf_append(&out->store, leaf, strlen(leaf) + 1) != 0) {
			rglob_free(out);
			return client_fail(cl, "%s: name too long", pattern);
		}
		out->count = 1;
		return finish(cl, out);
	}
	struct rlist l;
	int rc = rlist_fetch(cl, dir, &l);
	if (rc != 0) {
		rglob_free(out);
		return client_fail_ftp(cl, pattern);
	}
	if (l.truncated)
		client_fail(cl, "%s: listing cut at %d entries", pattern, RLIST_MAX_ENTRIES);
	for (size_t i = 0; i < l.count; i++) {
		const struct rlist_entry *e = &l.entries[i];
		if (e->type == RLIST_DIR || fnmatch(leaf, e->name, FNM_PERIOD) != 0)
			continue;
		if (!rlist_name_is_safe(e->name)) {
			char clean[256];
			reply_sanitize(e->name, clean, sizeof clean);
			client_fail(cl, "refusing unsafe name from listing: \"%s\"", clean);
			(*refused)++;
			continue;
		}
		if (add_match(out, dir, e->name) != 0) {
			rlist_free(&l);
			rglob_free(out);
			return client_fail(cl, "%s: too many matches", pattern);
		}
	}
	rlist_free(&l);
	return finish(cl, out);
}
