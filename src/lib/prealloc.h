/* prealloc.h - reserving a growing file's blocks ahead of its writes.
 *
 * ext4's delayed allocation reserves a file's blocks one 4 KiB block at a
 * time as writes reach the page cache: a fifth of the CPU of storing a
 * large upload (perf: ext4_da_get_block_prep, the extent-status tree, the
 * quota and space reservation, per block). One fallocate(2) reserves a
 * whole extent at once, as XFS's speculative preallocation does by itself.
 *
 * A writer that does not know the final size calls prealloc_ahead before
 * each write with the file's size so far and the bytes about to land.
 * Once the file reaches PREALLOC_FROM bytes it reserves as much again as
 * the file holds, at most PREALLOC_MAX, past the end with
 * FALLOC_FL_KEEP_SIZE: the file's size stays the bytes written, readers
 * see nothing of it. prealloc_trim gives back what is reserved past the
 * final size (ftruncate to the size it has frees the blocks beyond).
 * Files under PREALLOC_FROM are never touched: small uploads pay no
 * system call.
 *
 * Only on ext4 (other file systems either preallocate by themselves or,
 * like tmpfs, would fill the reservation with zeroed memory). Any failure
 * of fallocate (ENOSPC on a nearly full disk, EOPNOTSUPP) only ends the
 * reservations for this file: the writes themselves report real errors. */
#ifndef FERRY_PREALLOC_H
#define FERRY_PREALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PREALLOC_FROM (1 << 20)
#define PREALLOC_MAX (64 << 20)

struct prealloc {
	off_t reserved_end; /* blocks reserved up to here (0: none yet) */
	bool off;           /* not ext4, or fallocate failed: reserve no more */
};

/* Before writing incoming bytes at offset end (the file's size so far). */
void prealloc_ahead(struct prealloc *p, int fd, off_t end, size_t incoming);
/* After the last write (or a failed one): frees what is reserved past the
 * file's size. 0, or negative errno from fstat or ftruncate. */
int prealloc_trim(const struct prealloc *p, int fd);

#endif
