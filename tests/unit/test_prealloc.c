/* Unit tests for lib/prealloc: blocks reserved ahead of a growing file on
 * ext4, given back at the end; nothing reserved for small files or on
 * other file systems (tmpfs would fill the reservation with memory). */
#include "check.h"
#include "prealloc.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

enum { PIECE = 64 * 1024, EXTENT_TREE_SLACK = 64 * 1024 };

static off_t allocated(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (off_t)st.st_blocks * 512 : -1;
}

static bool on_ext4(int fd)
{
	struct statfs fs;
	return fstatfs(fd, &fs) == 0 && fs.f_type == EXT4_SUPER_MAGIC;
}

/* Writes total bytes in PIECE writes through prealloc_ahead into a fresh
 * file in dir; returns its fd (the file already unlinked). */
static int grow(const char *dir, off_t total, struct prealloc *p)
{
	char path[256];
	snprintf(path, sizeof path, "%s/ferry-prealloc-XXXXXX", dir);
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return -1;
	unlink(path);
	static char piece[PIECE];
	memset(piece, 'p', sizeof piece);
	for (off_t end = 0; end < total; end += PIECE) {
		prealloc_ahead(p, fd, end, PIECE);
		CHECK(write(fd, piece, PIECE) == PIECE);
		/* Never reserved while the file is small; after that, always
		 * ahead of the bytes written (on ext4). */
		if (end + PIECE < PREALLOC_FROM)
			CHECK(p->reserved_end == 0);
	}
	return fd;
}

TEST(reserves_ahead_on_ext4_and_trims)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct prealloc p = {0};
	off_t total = 5 * PREALLOC_FROM + PIECE;
	int fd = grow(dir, total, &p);
	if (fd < 0)
		return;
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == total); /* KEEP_SIZE: size is what was written */
	if (on_ext4(fd)) {
		CHECK(!p.off);
		CHECK(p.reserved_end > total);
		CHECK(p.reserved_end % PREALLOC_FROM == 0);
		CHECK(allocated(fd) >= p.reserved_end); /* the reservation is real blocks */
		CHECK(prealloc_trim(&p, fd) == 0);
		/* Given back: the data's blocks, plus at most the extent tree's
		 * own (a file in several extents has an index block); what was
		 * reserved ahead is a MiB or more. */
		CHECK(allocated(fd) >= total && allocated(fd) < total + EXTENT_TREE_SLACK);
	} else {
		CHECK(p.off && p.reserved_end == 0);
		CHECK(prealloc_trim(&p, fd) == 0);
	}
	close(fd);
}

TEST(small_files_reserve_nothing)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct prealloc p = {0};
	int fd = grow(dir, PREALLOC_FROM - PIECE, &p);
	if (fd < 0)
		return;
	CHECK(p.reserved_end == 0 && !p.off); /* not even asked what file system */
	CHECK(allocated(fd) == PREALLOC_FROM - PIECE);
	close(fd);
}

TEST(tmpfs_gets_no_reservation)
{
	struct statfs fs;
	if (statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC)
		return; /* no tmpfs here to try */
	struct prealloc p = {0};
	int fd = grow("/dev/shm", 2 * PREALLOC_FROM, &p);
	if (fd < 0)
		return;
	CHECK(p.off && p.reserved_end == 0);
	CHECK(allocated(fd) == 2 * PREALLOC_FROM);
	close(fd);
}

int main(void)
{
	RUN_ONE(reserves_ahead_on_ext4_and_trims);
	RUN_ONE(small_files_reserve_nothing);
	RUN_ONE(tmpfs_gets_no_reservation);
	return check_tests_failed != 0;
}
