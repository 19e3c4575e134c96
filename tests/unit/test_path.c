/* Unit tests for lib/path: the virtual path model and the openat2 jail. */
#include "check.h"
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *res(const char *cwd, const char *arg)
{
	static char out[4096];
	if (path_resolve(cwd, arg, out, sizeof out) != 0)
		return "<error>";
	return out;
}

TEST(resolve_relative_and_absolute)
{
	CHECK_STR(res("/", "a"), "/a");
	CHECK_STR(res("/a", "b/c"), "/a/b/c");
	CHECK_STR(res("/a", "/x"), "/x");
	CHECK_STR(res("/a", ""), "/a");
	CHECK_STR(res("/a", NULL), "/a");
}

TEST(resolve_dot_dot_clamped_at_root)
{
	CHECK_STR(res("/", ".."), "/");
	CHECK_STR(res("/", "../../../etc/passwd"), "/etc/passwd");
	CHECK_STR(res("/a/b", "../../.."), "/");
	CHECK_STR(res("/a/b", "../c"), "/a/c");
	CHECK_STR(res("/a", "/../../x/./y/.."), "/x");
}

TEST(resolve_slashes_and_dots)
{
	CHECK_STR(res("/", "//a///b//"), "/a/b");
	CHECK_STR(res("/", "a/./b/."), "/a/b");
	CHECK_STR(res("/", "..."), "/...");  /* a real name, not a parent */
	CHECK_STR(res("/", "a\\..\\b"), "/a\\..\\b"); /* backslash is a name byte */
	CHECK_STR(res("/", "%2e%2e/x"), "/%2e%2e/x");
}

TEST(resolve_too_long)
{
	char out[16];
	CHECK(path_resolve("/", "abcdefghijklmnopqrstuvwxyz", out, sizeof out) == -ENAMETOOLONG);
	CHECK(path_resolve("/", "abc", out, sizeof out) == 0);
}

TEST(leaf)
{
	CHECK_STR(path_leaf("/a/b"), "b");
	CHECK_STR(path_leaf("/a"), "a");
	CHECK_STR(path_leaf("/"), "/");
}

/* A real directory tree: root/inside.txt, root/sub/, a symlink inside
 * pointing inside, one pointing outside, and a secret beside the root. */
static char base[64];
static int make_tree(void)
{
	snprintf(base, sizeof base, "/tmp/ferry-unit-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	char p[256];
	snprintf(p, sizeof p, "%s/root", base);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/root/sub", base);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/secret", base);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	snprintf(p, sizeof p, "%s/root/inside.txt", base);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	char l[256];
	snprintf(l, sizeof l, "%s/root/sub/up", base);
	if (symlink("../inside.txt", l) < 0)
		return -1;
	snprintf(l, sizeof l, "%s/root/escape", base);
	if (symlink("../secret", l) < 0)
		return -1;
	snprintf(l, sizeof l, "%s/root/abs", base);
	if (symlink("/etc/passwd", l) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/root", base);
	return open(p, O_PATH | O_DIRECTORY);
}

TEST(jail_opens_inside_only)
{
	int root = make_tree();
	CHECK(root >= 0);
	int fd = path_open(root, "/inside.txt", O_RDONLY, 0);
	CHECK(fd >= 0);
	close(fd);
	fd = path_open(root, "/sub/up", O_RDONLY, 0); /* symlink that stays inside */
	CHECK(fd >= 0);
	close(fd);
	CHECK(path_open(root, "/escape", O_RDONLY, 0) < 0);  /* symlink out */
	CHECK(path_open(root, "/abs", O_RDONLY, 0) < 0);     /* absolute symlink */
	CHECK(path_open(root, "../secret", O_RDONLY, 0) < 0); /* raw .. */
	CHECK(path_open(root, "/sub/../../secret", O_RDONLY, 0) < 0);
	fd = path_open(root, "/", O_RDONLY | O_DIRECTORY, 0);
	CHECK(fd >= 0);
	close(fd);
	struct stat st;
	CHECK(path_stat(root, "/inside.txt", &st) == 0);
	CHECK(path_stat(root, "/escape", &st) < 0);
	close(root);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", base);
	CHECK(system(cmd) == 0);
}

TEST(fallback_walk_follows_no_symlink)
{
	int root = make_tree();
	CHECK(root >= 0);
	int fd = path_open_walk(root, "inside.txt", O_RDONLY, 0);
	CHECK(fd >= 0);
	close(fd);
	fd = path_open_walk(root, "sub", O_RDONLY | O_DIRECTORY, 0);
	CHECK(fd >= 0);
	close(fd);
	CHECK(path_open_walk(root, "escape", O_RDONLY, 0) == -ELOOP);
	CHECK(path_open_walk(root, "abs", O_RDONLY, 0) == -ELOOP);
	CHECK(path_open_walk(root, "sub/up", O_RDONLY, 0) == -ELOOP);
	CHECK(path_open_walk(root, "nope/x", O_RDONLY, 0) == -ENOENT);
	close(root);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", base);
	CHECK(system(cmd) == 0);
}

TEST(parent_of_root_refused)
{
	const char *leaf;
	CHECK(path_open_parent(-1, "/", &leaf) == -EPERM);
}

int main(void)
{
	RUN_ONE(resolve_relative_and_absolute);
	RUN_ONE(resolve_dot_dot_clamped_at_root);
	RUN_ONE(resolve_slashes_and_dots);
	RUN_ONE(resolve_too_long);
	RUN_ONE(leaf);
	RUN_ONE(jail_opens_inside_only);
	RUN_ONE(fallback_walk_follows_no_symlink);
	RUN_ONE(parent_of_root_refused);
	return check_tests_failed != 0;
}
