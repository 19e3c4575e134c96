/* Unit tests for lib/line (control-line assembly) and lib/reply (reply parser). */
#include "check.h"
#include "line.h"
#include "reply.h"

#include <errno.h>

/* Feeds in whole and collects results; returns the result of the first line. */
static enum line_result first_line(struct line_reader *lr, const char *in, size_t n, size_t *used)
{
	return line_feed(lr, in, n, used);
}

TEST(crlf_and_bare_lf)
{
	struct line_reader lr;
	line_init(&lr, 64, true);
	size_t used;
	const char in[] = "USER a\r\nPASS b\n";
	CHECK(first_line(&lr, in, sizeof in - 1, &used) == LINE_READY);
	CHECK_STR(lr.line.data, "USER a");
	CHECK(used == 8);
	line_reset(&lr);
	CHECK(line_feed(&lr, in + used, sizeof in - 1 - used, &used) == LINE_READY);
	CHECK_STR(lr.line.data, "PASS b");
	line_free(&lr);
}

TEST(split_across_feeds)
{
	struct line_reader lr;
	line_init(&lr, 64, true);
	size_t used;
	CHECK(line_feed(&lr, "NO", 2, &used) == LINE_MORE);
	CHECK(line_feed(&lr, "OP\r", 3, &used) == LINE_MORE);
	CHECK(line_feed(&lr, "\n", 1, &used) == LINE_READY);
	CHECK_STR(lr.line.data, "NOOP");
	CHECK(!lr.bad);
	line_free(&lr);
}

TEST(overlong_drained_not_split)
{
	struct line_reader lr;
	line_init(&lr, 8, true);
	size_t used;
	const char in[] = "0123456789ABCDEF\r\nNOOP\r\n";
	CHECK(line_feed(&lr, in, sizeof in - 1, &used) == LINE_TOO_LONG);
	CHECK(used == 18);
	line_reset(&lr);
	CHECK(line_feed(&lr, in + used, sizeof in - 1 - used, &used) == LINE_READY);
	CHECK_STR(lr.line.data, "NOOP");
	line_free(&lr);
}

TEST(telnet_iac_stripped)
{
	struct line_reader lr;
	line_init(&lr, 64, true);
	size_t used;
	/* IAC IP, IAC DM (Synch), IAC WILL x, then ABOR; IAC IAC is a 0xFF byte. */
	const char in[] = "\xff\xf4\xff\xf2\xff\xfb\x01" "ABOR\xff\xff\r\n";
	CHECK(line_feed(&lr, in, sizeof in - 1, &used) == LINE_READY);
	CHECK_STR(lr.line.data, "ABOR\xff");
	line_free(&lr);
}

TEST(nul_and_stray_cr_mark_bad)
{
	struct line_reader lr;
	line_init(&lr, 64, true);
	size_t used;
	const char in[] = "RETR a\0b\r\n";
	CHECK(line_feed(&lr, in, sizeof in - 1, &used) == LINE_READY);
	CHECK(lr.bad);
	line_reset(&lr);
	CHECK(!lr.bad);
	const char in2[] = "USER a\rPASS b\r\n";
	CHECK(line_feed(&lr, in2, sizeof in2 - 1, &used) == LINE_READY);
	CHECK(lr.bad);
	line_free(&lr);
}

TEST(split_command)
{
	char line[] = "retr my file.txt", verb[16], *arg;
	CHECK(line_split_command(line, verb, &arg) == 0);
	CHECK_STR(verb, "RETR");
	CHECK_STR(arg, "my file.txt");
	char l2[] = "QUIT";
	CHECK(line_split_command(l2, verb, &arg) == 0 && arg == NULL);
	char l3[] = "QUIT ";
	CHECK(line_split_command(l3, verb, &arg) == 0 && arg == NULL);
	char l4[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ x";
	CHECK(line_split_command(l4, verb, &arg) == -EINVAL);
}

TEST(reply_single_and_multi)
{
	struct reply_parser rp;
	reply_parser_init(&rp, 1024);
	CHECK(reply_parser_feed(&rp, "220 ready") == 1);
	CHECK(rp.code == 220);
	CHECK_STR(rp.text.data, "ready");
	reply_parser_reset(&rp);
	CHECK(reply_parser_feed(&rp, "211-Features:") == 0);
	CHECK(reply_parser_feed(&rp, " EPSV") == 0);
	CHECK(reply_parser_feed(&rp, "200 not the end") == 0); /* other code: body */
	CHECK(reply_parser_feed(&rp, "211-still body") == 0);
	CHECK(reply_parser_feed(&rp, "211 End") == 1);
	CHECK(rp.code == 211);
	CHECK_STR(rp.text.data, "Features:\n EPSV\n200 not the end\n211-still body\nEnd");
	reply_parser_reset(&rp);
	CHECK(reply_parser_feed(&rp, "hello") == -EPROTO);
	CHECK(reply_parser_feed(&rp, "99 x") == -EPROTO);
	CHECK(reply_parser_feed(&rp, "2000 x") == -EPROTO);
	CHECK(reply_parser_feed(&rp, "230") == 1 && rp.code == 230);
	reply_parser_free(&rp);
}

TEST(reply_codes_100_to_599)
{
	/* Codes outside RFC 959's classes never come out of the parser. */
	struct reply_parser rp;
	reply_parser_init(&rp, 1024);
	CHECK(reply_parser_feed(&rp, "631 protected") == -EPROTO);
	CHECK(reply_parser_feed(&rp, "600-x") == -EPROTO);
	CHECK(reply_parser_feed(&rp, "099 x") == -EPROTO);
	CHECK(reply_parser_feed(&rp, "599 last") == 1 && rp.code == 599);
	reply_parser_reset(&rp);
	CHECK(reply_parser_feed(&rp, "100 first") == 1 && rp.code == 100);
	reply_parser_free(&rp);
}

TEST(reply_limit)
{
	struct reply_parser rp;
	reply_parser_init(&rp, 16);
	CHECK(reply_parser_feed(&rp, "211-x") == 0);
	int rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++)
		rc = reply_parser_feed(&rp, "more body text");
	CHECK(rc == -ENOBUFS);
	reply_parser_free(&rp);
}

TEST(sanitize)
{
	char out[32];
	reply_sanitize("a\r\n226 forged", out, sizeof out);
	CHECK_STR(out, "a??226 forged");
}

TEST(sanitize_keeps_utf8_and_drops_c1)
{
	char out[64];
	/* U+00E9, U+20AC, U+1F600 pass; U+009B (CSI as UTF-8), a raw 0x9b, an
	 * overlong '/', a surrogate, a cut sequence and Latin-1 do not. */
	reply_sanitize("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", out, sizeof out);
	CHECK_STR(out, "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	reply_sanitize("a\xc2\x9b[2Jb\x9b[2J", out, sizeof out);
	CHECK_STR(out, "a??[2Jb?[2J");
	reply_sanitize("\xc0\xaf\xed\xa0\x80\xe2\x82", out, sizeof out);
	CHECK_STR(out, "???????");
	reply_sanitize("caf\xe9", out, sizeof out);
	CHECK_STR(out, "caf?");
	/* In place, and a character that does not fit whole is left out. */
	char small[5] = "ab";
	reply_sanitize("ab\xe2\x82\xac", small, sizeof small);
	CHECK_STR(small, "ab");
	CHECK(shown_char_len("\xc2\xa0", 2) == 2);
	CHECK(shown_char_len("\xc2\x9f", 2) == 0);
	CHECK(shown_char_len("\xf4\x90\x80\x80", 4) == 0);
	CHECK(shown_char_len("\t", 1) == 0);
	/* An ISO 8859 terminal: 0x9b inside valid UTF-8 is CSI there. */
	shown_on_eight_bit_terminal(true);
	reply_sanitize("\xc3\x9b[2J caf\xe9 \xc2\x85", out, sizeof out);
	CHECK_STR(out, "\xc3?[2J caf\xe9 \xc2?");
	shown_on_eight_bit_terminal(false);
	reply_sanitize("\xc3\x9b", out, sizeof out);
	CHECK_STR(out, "\xc3\x9b");
}

int main(void)
{
	RUN_ONE(crlf_and_bare_lf);
	RUN_ONE(split_across_feeds);
	RUN_ONE(overlong_drained_not_split);
	RUN_ONE(telnet_iac_stripped);
	RUN_ONE(nul_and_stray_cr_mark_bad);
	RUN_ONE(split_command);
	RUN_ONE(reply_single_and_multi);
	RUN_ONE(reply_codes_100_to_599);
	RUN_ONE(reply_limit);
	RUN_ONE(sanitize);
	RUN_ONE(sanitize_keeps_utf8_and_drops_c1);
	return check_tests_failed != 0;
}
