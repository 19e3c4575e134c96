#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

ssize_t io_read_some(int fd, void *p, size_t n)
{
	for (;;) {
		ssize_t r = read(fd, p, n);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -(errno == EWOULDBLOCK ? EAGAIN : errno);
	}
}

ssize_t io_write_some(int fd, const void *p, size_t n)
{
	for (;;) {
		ssize_t r = write(fd, p, n);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -(errno == EWOULDBLOCK ? EAGAIN : errno);
	}
}

int io_write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	size_t done = 0;
	while (done < n) {
		ssize_t r = io_write_some(fd, c + done, n - done);
		if (r < 0)
			return (int)r;
		done += (size_t)r;
	}
	return 0;
}

ssize_t io_read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t done = 0;
	while (done < n) {
		ssize_t r = io_read_some(fd, c + done, n - done);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

volatile sig_atomic_t io_wait_interrupted;

int io_wait(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	long long deadline = clock_ms() + timeout_ms;
	/* Signals stay blocked from the test of io_wait_interrupted until
	 * ppoll sleeps: one handled between the two would set the flag too
	 * late to be seen and too early to cut the sleep short. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	int rc;
	for (;;) {
		if (io_wait_interrupted) {
			rc = -EINTR;
			break;
		}
		struct timespec ts, *limit = NULL;
		if (timeout_ms >= 0) {
			ts.tv_sec = timeout_ms / 1000;
			ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
			limit = &ts;
		}
		int r = ppoll(&pfd, 1, limit, &old);
		if (r >= 0) {
			rc = r;
			break;
		}
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
		if (timeout_ms >= 0) {
			long long left = deadline - clock_ms();
			timeout_ms = left > 0 ? (int)left : 0;
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int fd_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

void fd_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

long long clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Linux 6.10 and later link a file its opener names by descriptor
 * (AT_EMPTY_PATH); older ones want CAP_DAC_READ_SEARCH for that, so the
 * path through /proc (a walk that costs about as much as the link) is the
 * fallback, learned once. */
int fd_link_tmpfile(int fd, int dirfd, const char *name)
{
	static bool by_path;
	if (!by_path) {
		if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
			return 0;
		if (errno != ENOENT && errno != EPERM)
			return -errno;
		by_path = true;
	}
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}
