/* sandbox.h - the worker's seccomp allowlist.
 *
 * After a worker has set up (epoll, TLS context, time zone, crypt), it
 * confines itself to the system calls an FTP session needs: file access
 * through fds (openat/openat2, *at calls), sockets of the IP families,
 * epoll, sendfile/splice, memory management. Everything else — execve,
 * fork/clone, ptrace, mount, module loading, raw sockets, ... — fails with
 * EPERM. no_new_privs is already set (main.c), so the filter needs no
 * privilege and cannot be lifted. */
#ifndef FERRY_SANDBOX_H
#define FERRY_SANDBOX_H

/* 0, or a negative errno when the filter could not be installed. */
int sandbox_enter(void);

#endif
