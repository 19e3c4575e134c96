/* Unit tests for lib/net: which peers count as this host, and the file ->
 * socket copy through the buffer that same-host uploads use. */
#include "check.h"
#include "ferry_limits.h"
#include "net.h"
#include "xfer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connected TCP pair on a loopback address: *client and *server, or -1s. */
static void tcp_pair(int family, const char *addr, int *client, int *server)
{
	*client = *server = -1;
	struct sockaddr_storage ss;
	if (net_addr_parse(addr, &ss) != 0)
		return;
	struct sockaddr_storage bound;
	int lfd = net_listen_addr(&ss, 0, 0, &bound);
	if (lfd < 0)
		return;
	int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c >= 0 && connect(c, (struct sockaddr *)&bound, net_addr_len(&bound)) == 0) {
		*client = c;
		*server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	} else if (c >= 0) {
		close(c);
	}
	close(lfd);
}

TEST(peer_is_local_on_loopback)
{
	int c, s;
	tcp_pair(AF_INET, "127.0.0.1", &c, &s);
	CHECK(c >= 0 && s >= 0);
	CHECK(net_peer_is_local(c));
	CHECK(net_peer_is_local(s));
	close(c);
	close(s);
	tcp_pair(AF_INET6, "::1", &c, &s);
	if (c >= 0) { /* a machine without IPv6 loopback skips this half */
		CHECK(net_peer_is_local(c));
		close(c);
		close(s);
	}
}

TEST(peer_is_local_false_without_inet_peer)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(!net_peer_is_local(sv[0])); /* not an internet peer at all */
	close(sv[0]);
	close(sv[1]);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(!net_peer_is_local(c)); /* not connected */
	close(c);
}

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	CHECK(net_addr_parse(text, &ss) == 0);
	return ss;
}

TEST(addrs_are_local_by_address)
{
	struct sockaddr_storage lo4 = addr("127.0.0.1"), lo4b = addr("127.3.2.1"), lo6 = addr("::1"),
				mapped = addr("::ffff:127.0.0.1"), a = addr("192.0.2.7"),
				b = addr("192.0.2.8"), a6 = addr("2001:db8::7"), mapped_a = addr("::ffff:192.0.2.7");
	CHECK(net_addrs_are_local(&lo4, &a));
	CHECK(net_addrs_are_local(&lo4b, NULL)); /* all of 127/8 */
	CHECK(net_addrs_are_local(&lo6, &a6));
	CHECK(net_addrs_are_local(&mapped, NULL));
	CHECK(net_addrs_are_local(&a, &a)); /* our own address */
	CHECK(net_addrs_are_local(&mapped_a, &a));
	CHECK(net_addrs_are_local(&a6, &a6));
	CHECK(!net_addrs_are_local(&a, &b));
	CHECK(!net_addrs_are_local(&a, NULL)); /* without our address only loopback counts */
	CHECK(!net_addrs_are_local(&a6, &a));
	CHECK(!net_addrs_are_local(&b, &lo4));
}

/* The socket's congestion control, "" when it cannot be read. */
static void congestion(int fd, char *out, size_t len)
{
	socklen_t n = (socklen_t)len - 1;
	if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, out, &n) < 0)
		n = 0;
	out[n] = '\0';
}

TEST(connect_start_unpaces_when_asked)
{
	char cc[32], plain[32];
	struct sockaddr_storage lo = addr("127.0.0.1"), bound;
	int lfd = net_listen_addr(&lo, 0, 0, &bound);
	CHECK(lfd >= 0);
	int c = net_connect_start(&bound, NULL, true);
	CHECK(c >= 0);
	congestion(c, cc, sizeof cc);
	CHECK(strcmp(cc, "reno") == 0);
	close(c);
	/* Not asked: the machine's default, whatever it is. */
	int d = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	congestion(d, plain, sizeof plain);
	close(d);
	c = net_connect_start(&bound, NULL, false);
	CHECK(c >= 0);
	congestion(c, cc, sizeof cc);
	CHECK(plain[0] && strcmp(cc, plain) == 0);
	close(c);
	close(lfd);
}

static int count_report(void *ctx, uint64_t bytes)
{
	(void)bytes;
	++*(int *)ctx;
	return 0;
}

TEST(copy_file_to_socket_through_buffer)
{
	int fd = memfd_create("ferry-test-net", MFD_CLOEXEC); /* a regular file, sendfile-able */
	CHECK(fd >= 0);
	static unsigned char block[200000];
	for (size_t i = 0; i < sizeof block; i++)
		block[i] = (unsigned char)(i * 7 + i / 251);
	CHECK(write(fd, block, sizeof block) == (ssize_t)sizeof block);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	int c, s;
	tcp_pair(AF_INET, "127.0.0.1", &c, &s);
	CHECK(c >= 0 && s >= 0);
	/* 200,000 bytes fit the loopback socket buffers: one thread is enough.
	 * The buffer path reports after each 64 KiB block (4 reports), where
	 * sendfile would report once per call of up to 512 KiB. */
	int reports = 0;
	struct xfer_opts o = {.no_sendfile = true, .progress = count_report, .ctx = &reports};
	enum xfer_side side;
	CHECK(xfer_copy(fd, c, &o, &side) == (int64_t)sizeof block);
	CHECK(reports == (int)((sizeof block + FERRY_XFER_BUF - 1) / FERRY_XFER_BUF));
	close(c);
	static unsigned char got[sizeof block + 1];
	size_t n = 0;
	for (int i = 0; i < 1000 && n < sizeof got; i++) {
		ssize_t r = read(s, got + n, sizeof got - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	CHECK(n == sizeof block);
	CHECK(memcmp(got, block, sizeof block) == 0);
	close(s);
	close(fd);
}

int main(void)
{
	RUN_ONE(peer_is_local_on_loopback);
	RUN_ONE(peer_is_local_false_without_inet_peer);
	RUN_ONE(addrs_are_local_by_address);
	RUN_ONE(connect_start_unpaces_when_asked);
	RUN_ONE(copy_file_to_socket_through_buffer);
	return check_tests_failed != 0;
}
