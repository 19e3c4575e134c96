/* Unit tests for lib/ftpaddr: PORT/EPRT/PASV/EPSV codecs. */
#include "check.h"
#include "ftpaddr.h"
#include "net.h"

#include <errno.h>
#include <netinet/in.h>

TEST(port_parse_valid)
{
	struct sockaddr_storage a;
	char host[64];
	CHECK(ftp_port_parse("127,0,0,1,31,144", &a) == 0);
	CHECK_STR(net_host_str(&a, host, sizeof host), "127.0.0.1");
	CHECK(net_port(&a) == 8080);
	CHECK(ftp_port_parse("255,255,255,255,255,255", &a) == 0);
	CHECK(net_port(&a) == 65535);
}

TEST(port_parse_rejects)
{
	struct sockaddr_storage a;
	CHECK(ftp_port_parse("1,2,3", &a) != 0);
	CHECK(ftp_port_parse("1,2,3,4,5,6,7", &a) != 0);
	CHECK(ftp_port_parse("256,0,0,1,1,1", &a) != 0);
	CHECK(ftp_port_parse("1,2,3,4,5,256", &a) != 0);
	CHECK(ftp_port_parse("-1,2,3,4,5,6", &a) != 0);
	CHECK(ftp_port_parse("1,2,3,4,5,", &a) != 0);
	CHECK(ftp_port_parse("1, 2,3,4,5,6", &a) != 0);
	CHECK(ftp_port_parse("0001,2,3,4,5,6", &a) != 0);
	CHECK(ftp_port_parse("", &a) != 0);
}

TEST(port_format_roundtrip)
{
	struct sockaddr_storage a, b;
	char text[64];
	CHECK(ftp_port_parse("10,1,2,3,4,5", &a) == 0);
	CHECK(ftp_port_format(&a, text, sizeof text) == 0);
	CHECK_STR(text, "10,1,2,3,4,5");
	CHECK(net_addr_parse("::1", &b) == 0);
	CHECK(ftp_port_format(&b, text, sizeof text) != 0);
}

TEST(eprt)
{
	struct sockaddr_storage a;
	char host[64], text[96];
	CHECK(ftp_eprt_parse("|1|132.235.1.2|6275|", &a) == 0);
	CHECK_STR(net_host_str(&a, host, sizeof host), "132.235.1.2");
	CHECK(net_port(&a) == 6275);
	CHECK(ftp_eprt_parse("|2|::1|5282|", &a) == 0);
	CHECK(a.ss_family == AF_INET6);
	CHECK(ftp_eprt_format(&a, text, sizeof text) == 0);
	CHECK_STR(text, "|2|::1|5282|");
	CHECK(ftp_eprt_parse("!1!1.2.3.4!99!", &a) == 0);
	CHECK(ftp_eprt_parse("|3|1.2.3.4|99|", &a) == -EAFNOSUPPORT);
	CHECK(ftp_eprt_parse("|x|1.2.3.4|99|", &a) == -EINVAL);
	CHECK(ftp_eprt_parse("|1|::1|99|", &a) != 0);
	CHECK(ftp_eprt_parse("|1|1.2.3.4|65536|", &a) != 0);
	CHECK(ftp_eprt_parse("|1|1.2.3.4|99", &a) != 0);
	CHECK(ftp_eprt_parse("|1|1.2.3.4|99|x", &a) != 0);
	CHECK(ftp_eprt_parse("1|1|1.2.3.4|99|", &a) != 0);
}

TEST(pasv_and_epsv_replies)
{
	struct sockaddr_storage a;
	char host[64];
	int port = 0;
	CHECK(ftp_pasv_reply_parse("Entering Passive Mode (127,0,0,1,200,10).", &a) == 0);
	CHECK_STR(net_host_str(&a, host, sizeof host), "127.0.0.1");
	CHECK(net_port(&a) == 200 * 256 + 10);
	CHECK(ftp_pasv_reply_parse("=127,0,0,1,1,2", &a) == 0);
	CHECK(ftp_pasv_reply_parse("no numbers here", &a) != 0);
	CHECK(ftp_epsv_reply_parse("Entering Extended Passive Mode (|||6446|)", &port) == 0);
	CHECK(port == 6446);
	CHECK(ftp_epsv_reply_parse("(!!!12!)", &port) == 0 && port == 12);
	CHECK(ftp_epsv_reply_parse("(|||0|)", &port) != 0);
	CHECK(ftp_epsv_reply_parse("(||6446|)", &port) != 0);
}

int main(void)
{
	RUN_ONE(port_parse_valid);
	RUN_ONE(port_parse_rejects);
	RUN_ONE(port_format_roundtrip);
	RUN_ONE(eprt);
	RUN_ONE(pasv_and_epsv_replies);
	return check_tests_failed != 0;
}
