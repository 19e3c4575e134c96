/* sys.h - syscall wrappers that settle partial I/O and EINTR once.
 *
 * Errors are negative errno values; nothing here prints or exits.
 *   io_read_some / io_write_some: one call, retried on EINTR; -EAGAIN is
 *     returned as is so event-driven callers can re-arm.
 *   io_write_full / io_read_full: loop until every byte moved (blocking fds),
 *     seed 000's "send is not guaranteed to send all bytes" solved here.
 *   io_wait: poll() one fd for events with a millisecond timeout. */
#ifndef FERRY_SYS_H
#define FERRY_SYS_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

ssize_t io_read_some(int fd, void *p, size_t n);
ssize_t io_write_some(int fd, const void *p, size_t n);
/* 0 when all n bytes were written. */
int io_write_full(int fd, const void *p, size_t n);
/* Bytes read: n, or fewer only at end of file; negative errno on error. */
ssize_t io_read_full(int fd, void *p, size_t n);
/* >0 when ready, 0 on timeout, negative errno on error. timeout_ms < 0 waits forever. */
int io_wait(int fd, short events, int timeout_ms);
/* Set (to 1) by a signal handler that wants waits cut short: io_wait then
 * returns -EINTR at the signal instead of waiting on, and at once while it
 * stays set. 0 by default. */
extern volatile sig_atomic_t io_wait_interrupted;
int fd_set_nonblock(int fd, int on);
void fd_close(int *fd);
/* Monotonic milliseconds. */
long long clock_ms(void);
/* Names an O_TMPFILE descriptor: name in dirfd, never replacing one that
 * exists (-EEXIST). */
int fd_link_tmpfile(int fd, int dirfd, const char *name);

#endif
