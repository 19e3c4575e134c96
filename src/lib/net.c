#include "net.h"

#include "sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, a, b);
}

int net_listen(const char *host, int port, int backlog, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (!host) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
	} else if (net_addr_parse(host, &ss) != 0) {
		set_err(err, errlen, "invalid listen address %s%s", host, "");
		return -EINVAL;
	}
	net_set_port(&ss, port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && !host && errno == EAFNOSUPPORT) {
		/* No IPv6 in this kernel: fall back to IPv4 any. */
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof ss);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		int e = errno;
		set_err(err, errlen, "socket: %s%s", strerror(e), "");
		return -e;
	}
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6 && !host)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	if (bind(fd, (struct sockaddr *)&ss, net_addr_len(&ss)) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		char portstr[16];
		snprintf(portstr, sizeof portstr, "%d", port);
		set_err(err, errlen, "cannot listen on port %s: %s", portstr, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

/* A data listener's backlog: room for a few stray connections beside the
 * client's, since a passive listener is read only once a transfer waits. */
enum { PASV_BACKLOG = 32 };

/* Random numbers for passive ports (RFC 2577: a port an attacker can guess
 * is a port an attacker can take), from getrandom() a page at a time. The
 * page is wiped on fork, so forked workers never share a sequence and
 * refill on first use; without MADV_WIPEONFORK each number costs a call. */
struct port_pool {
	unsigned left;
	uint32_t vals[(4096 - sizeof(unsigned)) / sizeof(uint32_t)];
};

static uint32_t port_random(void)
{
	static struct port_pool *pool;
	static bool pool_failed;
	if (!pool && !pool_failed) {
		void *p = mmap(NULL, sizeof *pool, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED && madvise(p, sizeof *pool, MADV_WIPEONFORK) == 0)
			pool = p;
		else if (p != MAP_FAILED)
			munmap(p, sizeof *pool);
		pool_failed = !pool;
	}
	uint32_t v = 0;
	if (!pool) {
		if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
			v = (uint32_t)clock_ms() * 2654435761u;
		return v;
	}
	if (pool->left == 0) {
		ssize_t n = getrandom(pool->vals, sizeof pool->vals, 0);
		if (n < (ssize_t)sizeof v)
			return (uint32_t)clock_ms() * 2654435761u;
		pool->left = (unsigned)(n / (ssize_t)sizeof v);
	}
	return pool->vals[--pool->left];
}

/* A socket on *ss with a port from [lo, hi], listening unless !listening,
 * leaving that port in *ss; -errno if none is free. SO_REUSEADDR lets bind()
 * take a port whose last connections sit in TIME_WAIT, but it also lets two
 * sockets bind the same free port (another worker choosing at the same
 * moment, any process that set the option): the second listen() then fails
 * with EADDRINUSE, and its socket, bound for good, is replaced before the
 * next port is tried. */
static int open_in_range(struct sockaddr_storage *ss, int lo, int hi, bool listening)
{
	/* Start at a random offset: the port is not guessable, and concurrent
	 * sessions spread over the range instead of all probing from lo. */
	int span = hi - lo + 1;
	int start = (int)(port_random() % (unsigned)span);
	int fd = -1;
	for (int i = 0; i < span; i++) {
		if (fd < 0) {
			fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd < 0)
				return -errno;
			int one = 1;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		}
		net_set_port(ss, lo + (start + i) % span);
		if (bind(fd, (struct sockaddr *)ss, net_addr_len(ss)) < 0) {
			if (errno != EADDRINUSE)
				break;
			continue; /* still unbound: the same socket tries the next port */
		}
		if (!listening || listen(fd, PASV_BACKLOG) == 0)
			return fd;
		if (errno != EADDRINUSE)
			break;
		close(fd);
		fd = -1;
	}
	int e = fd < 0 ? EADDRINUSE : errno;
	if (fd >= 0)
		close(fd);
	return -e;
}

static int open_addr(const struct sockaddr_storage *addr, int lo, int hi,
		     struct sockaddr_storage *bound, bool listening)
{
	struct sockaddr_storage ss = *addr;
	if (lo > 0) {
		int fd = open_in_range(&ss, lo, hi, listening);
		if (fd >= 0 && bound)
			*bound = ss; /* the port chosen here; no getsockname needed */
		return fd;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	net_set_port(&ss, 0);
	if (bind(fd, (struct sockaddr *)&ss, net_addr_len(&ss)) < 0 ||
	    (listening && listen(fd, PASV_BACKLOG) < 0) || (bound && net_local_addr(fd, bound) < 0)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int net_listen_addr(const struct sockaddr_storage *addr, int lo, int hi,
		    struct sockaddr_storage *bound)
{
	return open_addr(addr, lo, hi, bound, true);
}

int net_bind_addr(const struct sockaddr_storage *addr, int lo, int hi,
		  struct sockaddr_storage *bound)
{
	return open_addr(addr, lo, hi, bound, false);
}

int net_listen_bound(int fd)
{
	return listen(fd, PASV_BACKLOG) == 0 ? 0 : -errno;
}

void net_ephemeral_range(int *lo, int *hi)
{
	*lo = 49152;
	*hi = 65535;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	if (!f)
		return;
	int a, b;
	if (fscanf(f, "%d %d", &a, &b) == 2 && a >= 1024 && a <= b && b <= 65535) {
		*lo = a;
		*hi = b;
	}
	fclose(f);
}

int net_connect_start(const struct sockaddr_storage *addr, const struct sockaddr_storage *from, bool unpaced)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Before connect: a congestion control set later keeps the pacing
	 * the default one started. */
	if (unpaced)
		net_unpaced(fd);
	if (from) {
		struct sockaddr_storage f = *from;
		net_set_port(&f, 0);
		if (bind(fd, (struct sockaddr *)&f, net_addr_len(&f)) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
	}
	if (connect(fd, (const struct sockaddr *)addr, net_addr_len(addr)) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int net_connect(const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	int g = getaddrinfo(host, portstr, &hints, &res);
	if (g != 0) {
		set_err(err, errlen, "%s: %s", host, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	int last = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		int fd = net_connect_start(&ss, NULL, false);
		if (fd < 0) {
			last = fd;
			continue;
		}
		int w = io_wait(fd, POLLOUT, timeout_ms);
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (w == 0) {
			last = -ETIMEDOUT;
		} else if (w < 0) {
			last = w;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			last = -(soerr ? soerr : errno);
		} else {
			freeaddrinfo(res);
			fd_set_nonblock(fd, 0);
			return fd;
		}
		close(fd);
	}
	freeaddrinfo(res);
	set_err(err, errlen, "%s: %s", host, strerror(-last));
	return last;
}

void net_addr_unmap(struct sockaddr_storage *sa)
{
	if (sa->ss_family != AF_INET6)
		return;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
	if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	struct sockaddr_in s4;
	memset(&s4, 0, sizeof s4);
	s4.sin_family = AF_INET;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(sa, 0, sizeof *sa);
	memcpy(sa, &s4, sizeof s4);
}

bool net_peer_is_local(int fd)
{
	struct sockaddr_storage peer, local;
	if (net_peer_addr(fd, &peer) != 0 || net_local_addr(fd, &local) != 0)
		return false;
	return net_addrs_are_local(&peer, &local);
}

bool net_addrs_are_local(const struct sockaddr_storage *peer, const struct sockaddr_storage *local)
{
	struct sockaddr_storage p = *peer;
	net_addr_unmap(&p);
	if (p.ss_family == AF_INET &&
	    (ntohl(((struct sockaddr_in *)&p)->sin_addr.s_addr) >> 24) == 127)
		return true;
	if (p.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&p)->sin6_addr))
		return true;
	return local && net_same_host(&p, local);
}

int net_unpaced(int fd)
{
	static const char reno[] = "reno";
	return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, reno, sizeof reno - 1) < 0 ? -errno : 0;
}

int net_cork(int fd, bool on)
{
	int v = on;
	return setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof v) < 0 ? -errno : 0;
}

int net_nodelay(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ? -errno : 0;
}

bool net_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct sockaddr_storage x = *a, y = *b;
	net_addr_unmap(&x);
	net_addr_unmap(&y);
	if (x.ss_family != y.ss_family)
		return false;
	if (x.ss_family == AF_INET)
		return ((struct sockaddr_in *)&x)->sin_addr.s_addr == ((struct sockaddr_in *)&y)->sin_addr.s_addr;
	if (x.ss_family == AF_INET6)
		return memcmp(&((struct sockaddr_in6 *)&x)->sin6_addr, &((struct sockaddr_in6 *)&y)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

int net_port(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void net_set_port(struct sockaddr_storage *sa, int port)
{
	if (sa->ss_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	else if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

socklen_t net_addr_len(const struct sockaddr_storage *sa)
{
	return sa->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

const char *net_host_str(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
	struct sockaddr_storage x = *sa;
	net_addr_unmap(&x);
	const void *src = x.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&x)->sin_addr
						 : (const void *)&((struct sockaddr_in6 *)&x)->sin6_addr;
	if (!inet_ntop(x.ss_family, src, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
	return out;
}

int net_addr_parse(const char *text, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

int net_local_addr(int fd, struct sockaddr_storage *out)
{
	socklen_t sl = sizeof *out;
	memset(out, 0, sizeof *out);
	return getsockname(fd, (struct sockaddr *)out, &sl) < 0 ? -errno : 0;
}

int net_peer_addr(int fd, struct sockaddr_storage *out)
{
	socklen_t sl = sizeof *out;
	memset(out, 0, sizeof *out);
	return getpeername(fd, (struct sockaddr *)out, &sl) < 0 ? -errno : 0;
}
