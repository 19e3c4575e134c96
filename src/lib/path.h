/* path.h - the virtual path model and jailed file access.
 *
 * A session sees a virtual tree rooted at "/". path_resolve turns the
 * current directory and a client argument into a canonical virtual path:
 * absolute, no "." or ".." components, no repeated or trailing slashes;
 * ".." never climbs above "/". This is a pure function (unit-tested).
 *
 * The kernel then enforces the same jail: path_open and path_open_parent
 * resolve beneath the session's root directory fd with openat2(2) and
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so neither a symlink planted
 * inside the root nor a race can reach outside it. Symlinks that stay
 * inside work. Errors are negative errno values; fds returned are owned by
 * the caller and close-on-exec. */
#ifndef FERRY_PATH_H
#define FERRY_PATH_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* cwd must be canonical. 0, or -ENAMETOOLONG. */
int path_resolve(const char *cwd, const char *arg, char *out, size_t outlen);
/* Last component of a canonical path ("/" for the root). */
const char *path_leaf(const char *vpath);
/* Opens vpath beneath rootfd (flags as for open(2), O_CLOEXEC added). */
int path_open(int rootfd, const char *vpath, int flags, mode_t mode);
/* Opens the directory containing vpath (O_PATH) and points *leaf at the
 * last component. -EPERM for "/" itself, which has no parent inside the jail. */
int path_open_parent(int rootfd, const char *vpath, const char **leaf);
/* The fallback path_open uses where openat2(2) is missing: a walk of
 * the relative, canonical path rel with O_NOFOLLOW on every component
 * (no symlink is followed at all). Exposed for its unit test. */
int path_open_walk(int dirfd, const char *rel, int flags, mode_t mode);
/* fstatat beneath rootfd; follows symlinks that stay inside. */
int path_stat(int rootfd, const char *vpath, struct stat *st);

#endif
