/* Unit tests of server/listing: the MLSD/MLST facts, written digit by digit,
 * and names that must not split a listing line. */
#include "check.h"
#include "../../src/server/listing.c"

#include <stdlib.h>

/* The facts of a made-up entry, as a C string owned by the caller's buf. */
static const char *some_facts(struct buf *b, mode_t mode, off_t size, time_t mtime, bool writable,
			      unsigned which)
{
	struct stat st;
	memset(&st, 0, sizeof st);
	st.st_mode = mode;
	st.st_size = size;
	st.st_mtime = mtime;
	buf_free(b);
	buf_init(b, 4096);
	CHECK(listing_facts(b, &st, writable, which) == 0);
	return b->data ? b->data : "";
}

static const char *facts(struct buf *b, mode_t mode, off_t size, time_t mtime, bool writable)
{
	return some_facts(b, mode, size, mtime, writable, FACT_ALL);
}

TEST(facts_of_files_directories_and_others)
{
	struct buf b;
	buf_init(&b, 4096);
	CHECK_STR(facts(&b, S_IFREG | 0644, 123456789, 1796295278, false),
		  "type=file;size=123456789;modify=20261203105438;perm=r;unix.mode=0644;");
	CHECK_STR(facts(&b, S_IFREG | 0600, 5000000000LL, 0, true),
		  "type=file;size=5000000000;modify=19700101000000;perm=radfw;unix.mode=0600;");
	CHECK_STR(facts(&b, S_IFREG, 0, 4133980799LL, false),
		  "type=file;size=0;modify=21001231235959;perm=r;unix.mode=00;");
	CHECK_STR(facts(&b, S_IFDIR | 0700, 4096, 1796295278, false),
		  "type=dir;modify=20261203105438;perm=el;unix.mode=0700;");
	CHECK_STR(facts(&b, S_IFDIR | 07777, 4096, 1796295278, true),
		  "type=dir;modify=20261203105438;perm=elcdmpf;unix.mode=07777;");
	CHECK_STR(facts(&b, S_IFIFO | 0644, 0, 1796295278, false),
		  "type=OS.unix=other;modify=20261203105438;perm=r;unix.mode=0644;");
	CHECK_STR(facts(&b, S_IFLNK | 0777, 11, 1796295278, false),
		  "type=OS.unix=slink;modify=20261203105438;perm=r;unix.mode=0777;");
	buf_free(&b);
}

TEST(facts_chosen_with_opts_mlst)
{
	struct buf b;
	buf_init(&b, 4096);
	CHECK_STR(some_facts(&b, S_IFREG | 0644, 42, 1796295278, false, FACT_SIZE | FACT_TYPE),
		  "type=file;size=42;");
	CHECK_STR(some_facts(&b, S_IFREG | 0644, 42, 1796295278, true, FACT_PERM | FACT_UNIX_MODE),
		  "perm=radfw;unix.mode=0644;");
	CHECK_STR(some_facts(&b, S_IFDIR | 0755, 42, 1796295278, false, FACT_SIZE | FACT_MODIFY),
		  "modify=20261203105438;");
	CHECK_STR(some_facts(&b, S_IFREG | 0644, 42, 1796295278, false, 0), "");
	buf_free(&b);
}

TEST(facts_of_times_before_1970_and_beyond_9999)
{
	struct buf b;
	buf_init(&b, 4096);
	CHECK_STR(facts(&b, S_IFREG | 0644, 1, -14182980, false),
		  "type=file;size=1;modify=19690720201700;perm=r;unix.mode=0644;");
	CHECK_STR(facts(&b, S_IFREG | 0644, 1, -2147483648LL, false),
		  "type=file;size=1;modify=19011213204552;perm=r;unix.mode=0644;");
	/* Year 10000: past what the fixed-width digits hold, strftime's form. */
	CHECK_STR(facts(&b, S_IFREG | 0644, 1, 253402300800LL, false),
		  "type=file;size=1;modify=100000101000000;perm=r;unix.mode=0644;");
	buf_free(&b);
}

/* The ls -l line of a made-up entry, seen at time now. */
static const char *long_line(struct buf *b, mode_t mode, unsigned long nlink, unsigned uid,
			     off_t size, time_t mtime, time_t now)
{
	struct stat st;
	memset(&st, 0, sizeof st);
	st.st_mode = mode;
	st.st_nlink = nlink;
	st.st_uid = uid;
	st.st_gid = 100;
	st.st_size = size;
	st.st_mtime = mtime;
	buf_free(b);
	buf_init(b, 4096);
	CHECK(listing_entry(b, LIST_LONG, -1, "f", &st, false, 0, now) == 0);
	return b->data ? b->data : "";
}

TEST(long_lines_as_ls_writes_them)
{
	struct buf b;
	buf_init(&b, 4096);
	time_t now = 1796295278; /* 2026-12-03 10:54:38 UTC */
	/* Within six months: the time of day. */
	CHECK_STR(long_line(&b, S_IFREG | 0644, 1, 0, 42, now - 60, now),
		  "-rw-r--r--   1 0        100                42 Dec  3 10:53 f\r\n");
	/* Older, or in the future: the year. */
	CHECK_STR(long_line(&b, S_IFREG | 0644, 1, 0, 0, 0, now),
		  "-rw-r--r--   1 0        100                 0 Jan  1  1970 f\r\n");
	CHECK_STR(long_line(&b, S_IFREG | 0644, 1, 0, 0, now + 3600, now),
		  "-rw-r--r--   1 0        100                 0 Dec  3  2026 f\r\n");
	/* Fields wider than their columns push the line on, as printf does. */
	CHECK_STR(long_line(&b, S_IFDIR | 0755, 12345, 4294967294u, 5000000000000LL, now - 86400 * 10, now),
		  "drwxr-xr-x 12345 4294967294 100      5000000000000 Nov 23 10:54 f\r\n");
	/* Before the year 1000: strftime's form. */
	CHECK_STR(long_line(&b, S_IFREG | 0600, 1, 0, 7, -62135596800LL + 86400 * 40, now),
		  "-rw-------   1 0        100                 7 Feb 10  1 f\r\n");
	buf_free(&b);
}

TEST(names_keep_one_line)
{
	struct buf b;
	buf_init(&b, 4096);
	struct stat st;
	memset(&st, 0, sizeof st);
	CHECK(listing_entry(&b, LIST_NAMES, -1, "a\r\n226 forged\rb\n", &st, false, 0, 0) == 0);
	CHECK(listing_entry(&b, LIST_NAMES, -1, "plain", &st, false, 0, 0) == 0);
	CHECK_STR(b.data, "a??226 forged?b?\r\nplain\r\n");
	buf_free(&b);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	RUN_ONE(facts_of_files_directories_and_others);
	RUN_ONE(facts_chosen_with_opts_mlst);
	RUN_ONE(facts_of_times_before_1970_and_beyond_9999);
	RUN_ONE(long_lines_as_ls_writes_them);
	RUN_ONE(names_keep_one_line);
	return check_tests_failed ? 1 : 0;
}
