/* fuzz_ftpaddr.c - the data-address codecs (lib/ftpaddr.c): PORT and
 * EPRT arguments, 227 (PASV) and 229 (EPSV) reply texts.
 *
 * Input: a string (up to the first NUL), given to all four parsers.
 *
 * Invariants:
 *   - parsers return 0 or -EINVAL (EPRT also -EAFNOSUPPORT);
 *   - PORT: only digits and exactly five commas parse; parse -> format ->
 *     parse gives the same address, and formatting is a fixed point;
 *   - EPRT: the argument starts and ends with its delimiter; parse ->
 *     format -> parse gives the same address (IPv4-mapped IPv6 comes back
 *     as IPv4); an IPv4 result also round-trips through PORT;
 *   - PASV: the address is IPv4 and round-trips through PORT;
 *   - EPSV: the port is in 1..65535 and the text holds '(';
 *   - formatting into any smaller buffer fails with -ENOSPC and never
 *     writes past it. */
#include "fuzz.h"

#include "ftpaddr.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return net_same_host(a, b) && net_port(a) == net_port(b);
}

typedef int (*format_fn)(const struct sockaddr_storage *, char *, size_t);

/* Formats sa with f into an exact-size buffer and every smaller one. */
static void format_tight(format_fn f, const struct sockaddr_storage *sa, const char *full)
{
	size_t need = strlen(full) + 1;
	for (size_t n = 0; n <= need; n++) {
		char *out = malloc(n ? n : 1);
		FUZZ_CHECK(out);
		int rc = f(sa, n ? out : NULL, n);
		if (n < need) {
			FUZZ_CHECK(rc == -ENOSPC);
		} else {
			FUZZ_CHECK(rc == 0);
			FUZZ_CHECK(strcmp(out, full) == 0);
		}
		free(out);
	}
}

static void port_round_trip(const struct sockaddr_storage *a)
{
	char text[64], again[64];
	struct sockaddr_storage b;
	FUZZ_CHECK(a->ss_family == AF_INET);
	FUZZ_CHECK(ftp_port_format(a, text, sizeof text) == 0);
	FUZZ_CHECK(ftp_port_parse(text, &b) == 0);
	FUZZ_CHECK(same_addr(a, &b));
	FUZZ_CHECK(ftp_port_format(&b, again, sizeof again) == 0);
	FUZZ_CHECK(strcmp(text, again) == 0);
	format_tight(ftp_port_format, a, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	struct sockaddr_storage a, b;

	int rc = ftp_port_parse(s, &a);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		size_t commas = 0;
		for (const char *p = s; *p; p++)
			commas += *p == ',';
		FUZZ_CHECK(strspn(s, "0123456789,") == strlen(s));
		FUZZ_CHECK(commas == 5);
		port_round_trip(&a);
	}

	rc = ftp_eprt_parse(s, &a);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EAFNOSUPPORT);
	if (rc == 0) {
		size_t n = strlen(s);
		FUZZ_CHECK(n >= 2 && s[0] == s[n - 1]);
		FUZZ_CHECK(a.ss_family == AF_INET || a.ss_family == AF_INET6);
		char text[128], again[128];
		FUZZ_CHECK(ftp_eprt_format(&a, text, sizeof text) == 0);
		FUZZ_CHECK(ftp_eprt_parse(text, &b) == 0);
		FUZZ_CHECK(same_addr(&a, &b));
		FUZZ_CHECK(ftp_eprt_format(&b, again, sizeof again) == 0);
		FUZZ_CHECK(strcmp(text, again) == 0);
		format_tight(ftp_eprt_format, &a, text);
		struct sockaddr_storage u = a;
		net_addr_unmap(&u);
		if (u.ss_family == AF_INET)
			port_round_trip(&u);
		else
			FUZZ_CHECK(ftp_port_format(&u, text, sizeof text) == -EAFNOSUPPORT);
	}

	rc = ftp_pasv_reply_parse(s, &a);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0)
		port_round_trip(&a);

	int port = -1;
	rc = ftp_epsv_reply_parse(s, &port);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		FUZZ_CHECK(port >= 1 && port <= 65535);
		FUZZ_CHECK(strchr(s, '('));
	}
	free(s);
	return 0;
}
