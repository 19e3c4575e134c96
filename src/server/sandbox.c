#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

static const int allowed[] = {
	/* I/O on fds */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
	SCMP_SYS(pwrite64), SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fcntl), SCMP_SYS(ioctl),
	SCMP_SYS(dup), SCMP_SYS(dup3), SCMP_SYS(pipe2), SCMP_SYS(sendfile), SCMP_SYS(splice),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate), SCMP_SYS(fstatfs), SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* the file tree, through the jail's fds */
	SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(newfstatat), SCMP_SYS(fstat), SCMP_SYS(statx),
	SCMP_SYS(getdents64), SCMP_SYS(readlinkat), SCMP_SYS(readlink), SCMP_SYS(mkdirat),
	SCMP_SYS(unlinkat), SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(linkat),
	SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(access), SCMP_SYS(chmod),
	SCMP_SYS(fchmodat), SCMP_SYS(utimensat),
	/* sockets (socket() itself is restricted to IP families below) */
	SCMP_SYS(accept4), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(connect), SCMP_SYS(shutdown),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
	SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
	/* the event loop */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	/* memory, time, randomness, signals, exit */
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
	SCMP_SYS(brk), SCMP_SYS(futex), SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
	SCMP_SYS(time), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(getrandom),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall), SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid),
	SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(uname), SCMP_SYS(sysinfo),
	SCMP_SYS(sched_yield), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

#if defined(__SANITIZE_ADDRESS__)
/* Sanitizer builds only: LeakSanitizer stops the world at exit with a
 * tracer thread (clone + ptrace); without these it spins forever. */
static const int sanitizer_extra[] = {
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(waitid),
	SCMP_SYS(prctl), SCMP_SYS(sched_getaffinity), SCMP_SYS(sigaltstack), SCMP_SYS(tgkill),
	SCMP_SYS(kill), SCMP_SYS(rt_sigtimedwait), SCMP_SYS(getppid), SCMP_SYS(prlimit64),
	SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(getdents), SCMP_SYS(open),
};
#endif

int sandbox_enter(void)
{
	/* Load what lazily opens files before the filter is in place. */
	tzset();
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
#if defined(__SANITIZE_ADDRESS__)
	for (size_t i = 0; i < sizeof sanitizer_extra / sizeof sanitizer_extra[0] && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sanitizer_extra[i], 0);
#endif
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
	/* Uploads reserve blocks past the end (lib/prealloc); nothing else. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fallocate), 1,
				      SCMP_A1(SCMP_CMP_EQ, FALLOC_FL_KEEP_SIZE));
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}
