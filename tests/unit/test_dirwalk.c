/* Unit tests of server/dirwalk: a real directory's names come out in
 * strcmp order (names sharing long prefixes, prefixes of each other, bytes
 * above 0x7f), filtered, and whole in directory order past the bound. */
#include "check.h"
#include "../../src/server/dirwalk.c"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { MAX_NAMES = 1200 };

static char made[MAX_NAMES][64];
static int nmade;

static int by_strcmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool not_dots(const char *name, void *arg)
{
	(void)arg;
	return !dir_walk_is_dot(name);
}

/* A fresh directory under the build's temporary space. */
static char *fresh_dir(void)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/ferry-dirwalk-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	CHECK(mkdtemp(path) != NULL);
	nmade = 0;
	return path;
}

static void make_name(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	if (nmade < MAX_NAMES)
		snprintf(made[nmade++], sizeof made[0], "%s", name);
}

/* A walk read through in one call. */
static int open_walk(struct dir_walk *w, DIR *d, size_t max, dir_walk_keep_fn *keep)
{
	dir_walk_init(w, d, max, keep, NULL);
	int scan_left = 1 << 30;
	return dir_walk_read(w, &scan_left);
}

/* count names from fmt (one %d), made in a scrambled order: name i is
 * made as number (i * step) % count, step prime to count. */
static void make_scrambled(const char *dir, const char *fmt, int count, int step)
{
	for (int i = 0; i < count; i++) {
		char name[64];
		snprintf(name, sizeof name, fmt, (i * step) % count);
		make_name(dir, name);
	}
}

static void remove_dir(const char *dir)
{
	char path[256];
	for (int i = 0; i < nmade; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, made[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* Walks dir with max bytes and keep; checks that every made name comes
 * out once, in strcmp order when sorted is expected. */
static void check_walk(const char *dir, size_t max, bool want_sorted)
{
	qsort(made, (size_t)nmade, sizeof made[0], by_strcmp);
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	if (!d)
		return;
	struct dir_walk w;
	CHECK(open_walk(&w, d, max, not_dots) == 1);
	CHECK(w.sorted == want_sorted);
	static char got[MAX_NAMES][64];
	int n = 0, scan_left = MAX_NAMES + 3;
	const char *name;
	while ((name = dir_walk_next(&w, &scan_left)) && n < MAX_NAMES)
		snprintf(got[n++], sizeof got[0], "%s", name);
	CHECK(w.ended);
	CHECK(n == nmade);
	if (!want_sorted)
		qsort(got, (size_t)n, sizeof got[0], by_strcmp);
	for (int i = 0; i < n && i < nmade; i++)
		CHECK_STR(got[i], made[i]);
	dir_walk_close(&w);
	closedir(d);
}

TEST(names_in_strcmp_order)
{
	const char *dir = fresh_dir();
	static const char *const tricky[] = {
		"zeta", "Alpha", "beta", "_x", "1a", "a10", "a9", "-dash", ".hidden", "sp ace",
		"abcdefgh", "abcdefg", "abcdefghi", "abcdefgh0", "abcdefgh\x7f", "abcdefgh\xc3\xa4",
		"\xc3\xa4rger", "\xff", "\x01", "a", "ab", "~",
	};
	for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++)
		make_name(dir, tricky[i]);
	/* Many more, of every length and byte a name may hold, made in no
	 * order, so the directory's own order is not the sorted one. */
	unsigned seed = 12345;
	while (nmade < 1000) {
		char name[40];
		seed = seed * 1103515245u + 12345u;
		int len = 1 + (int)((seed >> 16) % 30);
		for (int i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned char c = (unsigned char)(1 + (seed >> 16) % 255);
			name[i] = (char)(c == '/' ? 'x' : c);
		}
		name[len] = '\0';
		if (dir_walk_is_dot(name))
			continue;
		char path[128];
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (access(path, F_OK) == 0)
			continue;
		make_name(dir, name);
	}
	check_walk(dir, 1 << 20, true);
	remove_dir(dir);
}

TEST(names_sharing_a_prefix_longer_than_the_key)
{
	const char *dir = fresh_dir();
	make_scrambled(dir, "IMG_20240101_%04d.jpg", 500, 37);
	make_name(dir, "IMG_20240101_");
	make_name(dir, "IMG_20240101_0007.jpg.bak");
	check_walk(dir, 1 << 20, true);
	remove_dir(dir);
}

TEST(past_the_bound_every_name_once_unsorted)
{
	const char *dir = fresh_dir();
	make_scrambled(dir, "entry-%03d-with-a-longer-name", 300, 7);
	/* 300 names of 29 bytes and their index do not fit in 8 KiB. */
	check_walk(dir, 8192, false);
	/* They do in 64 KiB. */
	check_walk(dir, 65536, true);
	remove_dir(dir);
}

/* Keeps the names that start with "keep". */
static bool kept_ones(const char *name, void *arg)
{
	(void)arg;
	return strncmp(name, "keep", 4) == 0;
}

TEST(names_left_out_count_against_the_bound_and_the_budget)
{
	const char *dir = fresh_dir();
	for (int i = 0; i < 400; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s-%03d", i % 100 == 0 ? "keep" : "drop", i);
		make_name(dir, name);
	}
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	if (!d)
		return;
	/* 4 names to keep fit in 4 KiB, but reading the 400 does not. */
	struct dir_walk w;
	CHECK(open_walk(&w, d, 4096, kept_ones) == 1);
	CHECK(!w.sorted);
	/* Streamed, the walk reads no more entries than the budget allows. */
	int kept = 0, calls = 0, scan_left = 0;
	while (!w.ended && calls++ < 1000) {
		scan_left = 10;
		if (dir_walk_next(&w, &scan_left)) {
			kept++;
			CHECK(scan_left >= 0);
		} else if (!w.ended) {
			CHECK(scan_left == 0);
		}
	}
	CHECK(kept == 4);
	CHECK(calls > 400 / 10 && calls < 1000);
	dir_walk_close(&w);
	/* Read in slices of 100 entries: not ready until the last. */
	rewinddir(d);
	dir_walk_init(&w, d, 65536, kept_ones, NULL);
	int slices = 0, rc;
	do {
		scan_left = 100;
		rc = dir_walk_read(&w, &scan_left);
		slices++;
		CHECK(rc == 1 || (rc == 0 && scan_left == 0 && !w.ready));
	} while (rc == 0 && slices < 100);
	CHECK(rc == 1 && w.ready && w.sorted && w.count == 4);
	CHECK(slices == 5); /* 402 entries with "." and ".." */
	dir_walk_close(&w);
	/* With room to read them all, the four come sorted. */
	rewinddir(d);
	CHECK(open_walk(&w, d, 65536, kept_ones) == 1);
	CHECK(w.sorted && w.count == 4);
	scan_left = 1;
	CHECK_STR(dir_walk_next(&w, &scan_left), "keep-000");
	CHECK(dir_walk_next(&w, &scan_left) == NULL && !w.ended); /* budget used up */
	scan_left = 100;
	CHECK_STR(dir_walk_next(&w, &scan_left), "keep-100");
	dir_walk_close(&w);
	closedir(d);
	remove_dir(dir);
}

TEST(an_empty_directory)
{
	const char *dir = fresh_dir();
	check_walk(dir, 4096, true);
	DIR *d = opendir(dir);
	struct dir_walk w;
	CHECK(d && open_walk(&w, d, 4096, NULL) == 1);
	int n = 0, scan_left = 10;
	while (d && dir_walk_next(&w, &scan_left))
		n++;
	CHECK(n == 2); /* "." and ".." without a filter */
	if (d) {
		dir_walk_close(&w);
		closedir(d);
	}
	remove_dir(dir);
}

int main(void)
{
	RUN_ONE(names_in_strcmp_order);
	RUN_ONE(names_sharing_a_prefix_longer_than_the_key);
	RUN_ONE(past_the_bound_every_name_once_unsorted);
	RUN_ONE(names_left_out_count_against_the_bound_and_the_budget);
	RUN_ONE(an_empty_directory);
	return check_tests_failed ? 1 : 0;
}
