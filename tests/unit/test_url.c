/* Unit tests of lib/url: ftp:// URL parsing. */
#include "check.h"
#include "url.h"

#include <errno.h>

TEST(url_full_and_minimal)
{
	struct ftp_url u;
	CHECK(url_parse("ftp://alice:p%40ss@example.org:2121/dir/my%20file.txt", &u) == 0);
	CHECK(u.has_user && u.has_pass);
	CHECK_STR(u.user, "alice");
	CHECK_STR(u.pass, "p@ss");
	CHECK_STR(u.host, "example.org");
	CHECK(u.port == 2121);
	CHECK_STR(u.path, "dir/my file.txt");
	CHECK(url_parse("FTP://host", &u) == 0);
	CHECK(!u.has_user && !u.has_pass);
	CHECK(u.port == 21);
	CHECK_STR(u.path, "");
	CHECK(url_parse("ftp://host/", &u) == 0);
	CHECK_STR(u.path, "");
	CHECK(url_parse("ftp://host/%2Fabs/x", &u) == 0);
	CHECK_STR(u.path, "/abs/x");
	CHECK(url_parse("ftp://u:a@b@host/x", &u) == 0);
	CHECK_STR(u.pass, "a@b");
	CHECK_STR(u.host, "host");
}

TEST(url_ipv6_host)
{
	struct ftp_url u;
	CHECK(url_parse("ftp://[::1]:2121/f", &u) == 0);
	CHECK_STR(u.host, "::1");
	CHECK(u.port == 2121);
	CHECK(url_parse("ftp://[::1]/f", &u) == 0);
	CHECK(u.port == 21);
	CHECK(url_parse("ftp://[::1/f", &u) == -EINVAL);
	CHECK(url_parse("ftp://[::1]x/f", &u) == -EINVAL);
}

TEST(url_ftps_implicit_tls)
{
	struct ftp_url u;
	CHECK(url_parse("ftps://bob@host/f", &u) == 0);
	CHECK(u.tls);
	CHECK(u.port == 990);
	CHECK_STR(u.user, "bob");
	CHECK_STR(u.host, "host");
	CHECK_STR(u.path, "f");
	CHECK(url_parse("FTPS://[::1]:2990/", &u) == 0);
	CHECK(u.tls && u.port == 2990);
	CHECK(url_parse("ftp://host/f", &u) == 0);
	CHECK(!u.tls);
	CHECK(url_parse("ftps://", &u) == -EINVAL);
}

TEST(url_rejects_bad_input)
{
	struct ftp_url u;
	CHECK(url_parse("http://host/x", &u) == -EINVAL);
	CHECK(url_parse("ftp://", &u) == -EINVAL);
	CHECK(url_parse("ftp://host:0/x", &u) == -EINVAL);
	CHECK(url_parse("ftp://host:65536/x", &u) == -EINVAL);
	CHECK(url_parse("ftp://host:12a/x", &u) == -EINVAL);
	CHECK(url_parse("ftp://host/a%0d%0aDELE%20x", &u) == -EINVAL);
	CHECK(url_parse("ftp://host/a%00b", &u) == -EINVAL);
	CHECK(url_parse("ftp://host/a%2", &u) == -EINVAL);
	CHECK(url_parse("ftp://host/a%zz", &u) == -EINVAL);
	CHECK(url_is_ftp("ftp://x"));
	CHECK(url_is_ftp("ftps://x"));
	CHECK(!url_is_ftp("ftpx://x"));
}

TEST(url_typecode)
{
	struct ftp_url u;
	CHECK(url_parse("ftp://host/dir/notes.txt;type=a", &u) == 0);
	CHECK_STR(u.path, "dir/notes.txt");
	CHECK(u.type == 'a');
	CHECK(url_parse("ftp://host/f%20g.bin;TYPE=I", &u) == 0);
	CHECK_STR(u.path, "f g.bin");
	CHECK(u.type == 'i');
	CHECK(url_parse("ftp://host/dir;type=d", &u) == 0);
	CHECK_STR(u.path, "dir");
	CHECK(u.type == 'd');
	CHECK(url_parse("ftp://host/;type=d", &u) == 0);
	CHECK_STR(u.path, "");
	CHECK(u.type == 'd');
	CHECK(url_parse("ftp://host/plain.txt", &u) == 0);
	CHECK(u.type == 0);
	CHECK(url_parse("ftp://host/a%3Btype=a", &u) == 0); /* an escaped ';' is part of the name */
	CHECK_STR(u.path, "a;type=a");
	CHECK(u.type == 0);
	CHECK(url_parse("ftp://host/f;type=x", &u) == -EINVAL);
}

int main(void)
{
	RUN_ONE(url_full_and_minimal);
	RUN_ONE(url_ipv6_host);
	RUN_ONE(url_typecode);
	RUN_ONE(url_ftps_implicit_tls);
	RUN_ONE(url_rejects_bad_input);
	return check_tests_failed ? 1 : 0;
}
