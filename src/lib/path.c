#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int path_resolve(const char *cwd, const char *arg, char *out, size_t outlen)
{
	if (outlen < 2)
		return -ENAMETOOLONG;
	size_t len = 0;
	out[0] = '\0';
	/* Walk cwd (unless arg is absolute), then arg, component by component. */
	const char *parts[2] = {arg && arg[0] == '/' ? "/" : cwd, arg ? arg : ""};
	for (int k = 0; k < 2; k++) {
		const char *p = parts[k];
		while (*p) {
			while (*p == '/')
				p++;
			const char *s = p;
			while (*p && *p != '/')
				p++;
			size_t n = (size_t)(p - s);
			if (n == 0 || (n == 1 && s[0] == '.'))
				continue;
			if (n == 2 && s[0] == '.' && s[1] == '.') {
				while (len > 0 && out[len - 1] != '/')
					len--;
				if (len > 0)
					len--; /* drop the slash too */
				out[len] = '\0';
				continue;
			}
			if (len + 1 + n + 1 > outlen)
				return -ENAMETOOLONG;
			out[len++] = '/';
			memcpy(out + len, s, n);
			len += n;
			out[len] = '\0';
		}
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = '\0';
	}
	return 0;
}

const char *path_leaf(const char *vpath)
{
	const char *s = strrchr(vpath, '/');
	return s && s[1] ? s + 1 : vpath;
}

/* Without openat2 (kernels before 5.6, or tools that do not know the
 * call): walk the canonical path one component at a time with O_NOFOLLOW.
 * No component is "..", so the walk cannot climb out; symlinks are not
 * followed at all, which is stricter than the openat2 rule. */
int path_open_walk(int dirfd, const char *rel, int flags, mode_t mode)
{
	char part[256];
	int cur = dirfd;
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n >= sizeof part) {
			if (cur != dirfd)
				close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		int fd;
		if (slash)
			fd = openat(cur, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		else
			fd = openat(cur, part, flags | O_NOFOLLOW | O_CLOEXEC, mode);
		int err = errno;
		if (cur != dirfd)
			close(cur);
		if (fd < 0)
			return -err;
		if (!slash)
			return fd;
		cur = fd;
		p = slash + 1;
	}
}

static int openat2_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	for (;;) {
		long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
		if (fd >= 0)
			return (int)fd;
		if (errno == ENOSYS)
			return path_open_walk(dirfd, rel, flags, mode);
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

int path_open(int rootfd, const char *vpath, int flags, mode_t mode)
{
	const char *rel = vpath[0] == '/' ? vpath + 1 : vpath;
	return openat2_beneath(rootfd, *rel ? rel : ".", flags, mode);
}

int path_open_parent(int rootfd, const char *vpath, const char **leaf)
{
	const char *slash = strrchr(vpath, '/');
	if (!slash || slash[1] == '\0')
		return -EPERM;
	*leaf = slash + 1;
	size_t n = (size_t)(slash - vpath);
	char dir[4096];
	if (n >= sizeof dir)
		return -ENAMETOOLONG;
	memcpy(dir, vpath, n);
	dir[n] = '\0';
	return path_open(rootfd, n ? dir : "/", O_PATH | O_DIRECTORY, 0);
}

int path_stat(int rootfd, const char *vpath, struct stat *st)
{
	int fd = path_open(rootfd, vpath, O_PATH, 0);
	if (fd < 0)
		return fd;
	int rc = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	return rc;
}
