#include "ftpaddr.h"

#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Reads a decimal number of 1..maxdigits digits no greater than max. */
static const char *parse_num(const char *p, unsigned max, int maxdigits, unsigned *out)
{
	unsigned v = 0;
	int n = 0;
	while (isdigit((unsigned char)*p)) {
		if (++n > maxdigits)
			return NULL;
		v = v * 10 + (unsigned)(*p++ - '0');
	}
	if (n == 0 || v > max)
		return NULL;
	*out = v;
	return p;
}

static void make_v4(struct sockaddr_storage *out, const unsigned h[4], unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	memset(out, 0, sizeof *out);
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3]);
	s4->sin_port = htons((uint16_t)port);
}

/* Parses six comma-separated numbers at p; sets *end past them. */
static int parse_six(const char *p, const char **end, struct sockaddr_storage *out)
{
	unsigned v[6];
	for (int i = 0; i < 6; i++) {
		p = parse_num(p, 255, 3, &v[i]);
		if (!p)
			return -EINVAL;
		if (i < 5 && *p++ != ',')
			return -EINVAL;
	}
	*end = p;
	make_v4(out, v, v[4] * 256 + v[5]);
	return 0;
}

int ftp_port_parse(const char *arg, struct sockaddr_storage *out)
{
	const char *end;
	if (parse_six(arg, &end, out) != 0 || *end != '\0')
		return -EINVAL;
	return 0;
}

int ftp_port_format(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
	struct sockaddr_storage x = *sa;
	net_addr_unmap(&x);
	if (x.ss_family != AF_INET)
		return -EAFNOSUPPORT;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&x;
	uint32_t a = ntohl(s4->sin_addr.s_addr);
	unsigned port = ntohs(s4->sin_port);
	int n = snprintf(out, outlen, "%u,%u,%u,%u,%u,%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
			 a & 255, port >> 8, port & 255);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int ftp_eprt_parse(const char *arg, struct sockaddr_storage *out)
{
	char d = arg[0];
	/* RFC 2428: the delimiter is any printable ASCII other than digits. */
	if (d < 33 || d > 126 || isdigit((unsigned char)d))
		return -EINVAL;
	const char *p = arg + 1;
	unsigned proto, port;
	p = parse_num(p, 65535, 5, &proto);
	if (!p || *p++ != d)
		return -EINVAL;
	if (proto != 1 && proto != 2)
		return -EAFNOSUPPORT;
	const char *addr_end = strchr(p, d);
	if (!addr_end || addr_end - p == 0 || addr_end - p >= 64)
		return -EINVAL;
	char host[64];
	memcpy(host, p, (size_t)(addr_end - p));
	host[addr_end - p] = '\0';
	p = parse_num(addr_end + 1, 65535, 5, &port);
	if (!p || *p++ != d || *p != '\0')
		return -EINVAL;
	memset(out, 0, sizeof *out);
	int fam = proto == 1 ? AF_INET : AF_INET6;
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
	}
	net_set_port(out, (int)port);
	return 0;
}

int ftp_eprt_format(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
	struct sockaddr_storage x = *sa;
	net_addr_unmap(&x);
	char host[64];
	net_host_str(&x, host, sizeof host);
	int n = snprintf(out, outlen, "|%d|%s|%d|", x.ss_family == AF_INET ? 1 : 2, host, net_port(&x));
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int ftp_pasv_reply_parse(const char *text, struct sockaddr_storage *out)
{
	for (const char *p = text; *p; p++) {
		if (!isdigit((unsigned char)*p) || (p > text && isdigit((unsigned char)p[-1])))
			continue;
		const char *end;
		if (parse_six(p, &end, out) == 0)
			return 0;
	}
	return -EINVAL;
}

int ftp_epsv_reply_parse(const char *text, int *port)
{
	const char *open = strchr(text, '(');
	if (!open)
		return -EINVAL;
	char d = open[1];
	if (d == '\0' || open[2] != d || open[3] != d)
		return -EINVAL;
	unsigned v;
	const char *p = parse_num(open + 4, 65535, 5, &v);
	if (!p || *p != d || v == 0)
		return -EINVAL;
	*port = (int)v;
	return 0;
}
