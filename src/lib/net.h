/* net.h - sockets: listening, connecting with a timeout, address helpers.
 *
 * Addresses are struct sockaddr_storage; IPv4-mapped IPv6 addresses are
 * unmapped by net_addr_unmap so that comparisons and PASV see plain IPv4.
 * Functions return an fd or a negative errno; where a caller needs text,
 * it passes err/errlen and gets a one-line cause. */
#ifndef FERRY_NET_H
#define FERRY_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Listening socket on host:port (host NULL = dual-stack any), non-blocking
 * and close-on-exec, SO_REUSEADDR set. */
int net_listen(const char *host, int port, int backlog, char *err, size_t errlen);
/* Listening socket on addr (port ignored) with a port from [lo, hi], or an
 * ephemeral port when lo == 0. Non-blocking. With a range the port is
 * chosen here, with SO_REUSEADDR: ports whose last connections sit in
 * TIME_WAIT are taken at once, where the kernel's own search for a free
 * ephemeral port slows down as TIME_WAIT sockets pile up. The address
 * bound goes to *bound unless it is NULL. */
int net_listen_addr(const struct sockaddr_storage *addr, int lo, int hi,
		    struct sockaddr_storage *bound);
/* The same socket bound but not listening: until net_listen_bound() a
 * connection to its port is refused like one to a closed port. */
int net_bind_addr(const struct sockaddr_storage *addr, int lo, int hi,
		  struct sockaddr_storage *bound);
/* Starts listening on a socket from net_bind_addr; 0 or -errno (EADDRINUSE
 * when another socket, SO_REUSEADDR too, took the port meanwhile). */
int net_listen_bound(int fd);
/* Resolves host and connects with a timeout; returns a blocking fd. */
/* The kernel's ephemeral port range (ip_local_port_range), or the
 * IANA dynamic range 49152-65535 when it cannot be read. */
void net_ephemeral_range(int *lo, int *hi);
int net_connect(const char *host, int port, int timeout_ms, char *err, size_t errlen);
/* Starts a non-blocking connect to addr (optionally from local address
 * 'from', port 0); returns the fd, connection possibly still in progress.
 * unpaced: net_unpaced first, for a data connection to this host. */
int net_connect_start(const struct sockaddr_storage *addr, const struct sockaddr_storage *from, bool unpaced);

void net_addr_unmap(struct sockaddr_storage *sa);
bool net_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
int net_port(const struct sockaddr_storage *sa);
void net_set_port(struct sockaddr_storage *sa, int port);
socklen_t net_addr_len(const struct sockaddr_storage *sa);
/* Numeric host text, without brackets. */
const char *net_host_str(const struct sockaddr_storage *sa, char *out, size_t outlen);
/* Parses a numeric IPv4/IPv6 address. 0 or -EINVAL. */
int net_addr_parse(const char *text, struct sockaddr_storage *out);
int net_local_addr(int fd, struct sockaddr_storage *out);
int net_peer_addr(int fd, struct sockaddr_storage *out);
/* True when the connected socket's peer is this host: a loopback address,
 * or the socket's own local address. */
bool net_peer_is_local(int fd);
/* The same test on a connection's two addresses, already known; with
 * local NULL only a loopback peer counts. */
bool net_addrs_are_local(const struct sockaddr_storage *peer, const struct sockaddr_storage *local);
/* Reno congestion control for a connection to this host: a path that
 * never leaves the machine has no congestion to control, and Reno, unlike
 * BBR, does not pace. Paced, a download over loopback costs its sender
 * about four times the CPU per GiB (docs/ARCHITECTURE.md, "Same-host data
 * connections"). Only before the connection exists, on a listener (its
 * connections inherit it) or before connect: switched later, the pacing
 * the default started stays on. Reno is always built in; where it is not
 * on the allowed list (tcp_allowed_congestion_control) this fails and
 * the default stays. 0 or -errno. */
int net_unpaced(int fd);

/* TCP_CORK on a data connection that carries a stream: the kernel then
 * sends only full segments, and without it every sendfile()/write() can
 * end in a short one. close() and net_cork(fd, false) send what is held;
 * anything else is sent within 200 ms at most. Corking costs throughput on
 * loopback, so ferryd corks a download only for its last call. 0 or -errno
 * (not a TCP socket). */
int net_cork(int fd, bool on);
/* TCP_NODELAY: every write leaves at once. 0 or -errno. */
int net_nodelay(int fd);

#endif
