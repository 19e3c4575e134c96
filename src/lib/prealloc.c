#include "prealloc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

void prealloc_ahead(struct prealloc *p, int fd, off_t end, size_t incoming)
{
	off_t need = end + (off_t)incoming;
	if (p->off || need <= p->reserved_end || need < PREALLOC_FROM)
		return;
	if (p->reserved_end == 0) {
		/* Asked once per file, when it first grows past PREALLOC_FROM. */
		struct statfs fs;
		if (fstatfs(fd, &fs) != 0 || fs.f_type != EXT4_SUPER_MAGIC) {
			p->off = true;
			return;
		}
	}
	off_t from = p->reserved_end > end ? p->reserved_end : end;
	off_t len = end < PREALLOC_FROM ? PREALLOC_FROM : end > PREALLOC_MAX ? PREALLOC_MAX : end;
	if (from + len < need)
		len = need - from;
	/* Reservations end on MiB boundaries: whole extents, no odd blocks. */
	len = ((from + len + PREALLOC_FROM - 1) & ~(off_t)(PREALLOC_FROM - 1)) - from;
	int rc;
	do
		rc = fallocate(fd, FALLOC_FL_KEEP_SIZE, from, len);
	while (rc != 0 && errno == EINTR);
	if (rc != 0) {
		p->off = true;
		return;
	}
	p->reserved_end = from + len;
}

int prealloc_trim(const struct prealloc *p, int fd)
{
	struct stat st;
	if (p->reserved_end == 0)
		return 0;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (p->reserved_end <= st.st_size)
		return 0;
	int rc;
	do
		rc = ftruncate(fd, st.st_size);
	while (rc != 0 && errno == EINTR);
	return rc == 0 ? 0 : -errno;
}
