#include "listing.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char type_char(mode_t m)
{
	if (S_ISDIR(m)) return 'd';
	if (S_ISLNK(m)) return 'l';
	if (S_ISCHR(m)) return 'c';
	if (S_ISBLK(m)) return 'b';
	if (S_ISFIFO(m)) return 'p';
	if (S_ISSOCK(m)) return 's';
	return '-';
}

static void mode_string(mode_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	out[0] = type_char(m);
	for (int i = 0; i < 9; i++)
		out[i + 1] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	if (m & S_ISUID) out[3] = (m & S_IXUSR) ? 's' : 'S';
	if (m & S_ISGID) out[6] = (m & S_IXGRP) ? 's' : 'S';
	if (m & S_ISVTX) out[9] = (m & S_IXOTH) ? 't' : 'T';
	out[10] = '\0';
}

/* The name with CR and LF shown as '?': neither may end a listing line early. */
static int append_name(struct buf *out, const char *name)
{
	for (;;) {
		size_t run = strcspn(name, "\r\n");
		int rc = buf_append(out, name, run);
		if (rc || name[run] == '\0')
			return rc;
		rc = buf_append(out, "?", 1);
		if (rc)
			return rc;
		name += run + 1;
	}
}

/* Digits of v in base, at least width of them, at p; returns the end.
 * MLSD writes these per entry: printf and strftime cost more than the
 * rest of the line together. */
static char *put_num(char *p, unsigned long long v, unsigned base, int width)
{
	char rev[24];
	int n = 0;
	do {
		rev[n++] = (char)('0' + v % base);
		v /= base;
	} while (v);
	while (n < width)
		rev[n++] = '0';
	while (n)
		*p++ = rev[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

const char *const listing_fact_names[LISTING_FACT_COUNT] = {"type", "size", "modify", "perm", "unix.mode"};

int listing_facts(struct buf *out, const struct stat *st, bool writable, unsigned facts)
{
	const char *type = S_ISDIR(st->st_mode)   ? "dir"
			   : S_ISREG(st->st_mode) ? "file"
			   : S_ISLNK(st->st_mode) ? "OS.unix=slink"
						  : "OS.unix=other";
	/* RFC 3659 7.5.5: "d" (RMD, DELE) applies to directories as well. */
	const char *perm = S_ISDIR(st->st_mode) ? (writable ? "elcdmpf" : "el") : (writable ? "radfw" : "r");
	char line[128], *p = line;
	if (facts & FACT_TYPE) {
		p = put_str(p, "type=");
		p = put_str(p, type);
		*p++ = ';';
	}
	if ((facts & FACT_SIZE) && S_ISREG(st->st_mode) && st->st_size >= 0) {
		p = put_str(p, "size=");
		p = put_num(p, (unsigned long long)st->st_size, 10, 1);
		*p++ = ';';
	}
	if (facts & FACT_MODIFY) {
		struct tm tm;
		gmtime_r(&st->st_mtime, &tm);
		int year = tm.tm_year + 1900;
		p = put_str(p, "modify=");
		if (year < 0 || year > 9999) {
			p += strftime(p, 24, "%Y%m%d%H%M%S", &tm); /* what RFC 3659 cannot say */
		} else {
			p = put_num(p, (unsigned)year, 10, 4);
			p = put_num(p, (unsigned)tm.tm_mon + 1, 10, 2);
			p = put_num(p, (unsigned)tm.tm_mday, 10, 2);
			p = put_num(p, (unsigned)tm.tm_hour, 10, 2);
			p = put_num(p, (unsigned)tm.tm_min, 10, 2);
			p = put_num(p, (unsigned)tm.tm_sec, 10, 2);
		}
		*p++ = ';';
	}
	if (facts & FACT_PERM) {
		p = put_str(p, "perm=");
		p = put_str(p, perm);
		*p++ = ';';
	}
	if (facts & FACT_UNIX_MODE) {
		p = put_str(p, "unix.mode=0");
		p = put_num(p, st->st_mode & 07777, 8, 1);
		*p++ = ';';
	}
	return buf_append(out, line, (size_t)(p - line));
}

/* v in decimal, padded with spaces to width: on the left (printf's %Nu)
 * or, left_align, on the right (%-Nu). */
static char *put_field(char *p, unsigned long long v, int width, bool left_align)
{
	char digits[24];
	int n = (int)(put_num(digits, v, 10, 1) - digits);
	for (int i = n; !left_align && i < width; i++)
		*p++ = ' ';
	memcpy(p, digits, (size_t)n);
	p += n;
	for (int i = n; left_align && i < width; i++)
		*p++ = ' ';
	return p;
}

/* An ls -l line up to the name: "-rw-r--r--   1 0        0              42 Dec  3 10:54 ",
 * the time of day for the last six months, else the year. */
static int long_prefix(struct buf *out, const struct stat *st, time_t now)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	localtime_r(&st->st_mtime, &tm);
	long age = (long)(now - st->st_mtime);
	bool recent = age >= 0 && age <= 15552000;
	int year = tm.tm_year + 1900;
	char mode[11];
	mode_string(st->st_mode, mode);
	if (st->st_size < 0 || year < 1000 || year > 9999 || tm.tm_mon < 0 || tm.tm_mon > 11) {
		char when[32]; /* what the digits below do not cover: strftime's form */
		strftime(when, sizeof when, recent ? "%b %e %H:%M" : "%b %e  %Y", &tm);
		return buf_printf(out, "%s %3lu %-8u %-8u %12lld %s ", mode, (unsigned long)st->st_nlink,
				  (unsigned)st->st_uid, (unsigned)st->st_gid, (long long)st->st_size, when);
	}
	char line[160], *p = line;
	p = put_str(p, mode);
	*p++ = ' ';
	p = put_field(p, (unsigned long long)st->st_nlink, 3, false);
	*p++ = ' ';
	p = put_field(p, st->st_uid, 8, true);
	*p++ = ' ';
	p = put_field(p, st->st_gid, 8, true);
	*p++ = ' ';
	p = put_field(p, (unsigned long long)st->st_size, 12, false);
	*p++ = ' ';
	memcpy(p, months + 3 * tm.tm_mon, 3);
	p += 3;
	*p++ = ' ';
	p = put_field(p, (unsigned)tm.tm_mday, 2, false);
	*p++ = ' ';
	if (recent) {
		p = put_num(p, (unsigned)tm.tm_hour, 10, 2);
		*p++ = ':';
		p = put_num(p, (unsigned)tm.tm_min, 10, 2);
	} else {
		*p++ = ' ';
		p = put_num(p, (unsigned)year, 10, 4);
	}
	*p++ = ' ';
	return buf_append(out, line, (size_t)(p - line));
}

int listing_entry(struct buf *out, enum list_format fmt, int dirfd, const char *name,
		  const struct stat *st, bool writable, unsigned facts, time_t now)
{
	int rc;
	switch (fmt) {
	case LIST_NAMES:
		rc = append_name(out, name);
		break;
	case LIST_MLSD:
		rc = listing_facts(out, st, writable, facts);
		if (!rc)
			rc = buf_append(out, " ", 1);
		if (!rc)
			rc = append_name(out, name);
		break;
	default: {
		rc = long_prefix(out, st, now);
		if (!rc)
			rc = append_name(out, name);
		if (!rc && S_ISLNK(st->st_mode) && dirfd >= 0) {
			char target[4096];
			ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);
			if (n > 0) {
				target[n] = '\0';
				rc = buf_append(out, " -> ", 4);
				if (!rc)
					rc = append_name(out, target);
			}
		}
		break;
	}
	}
	if (!rc)
		rc = buf_append(out, "\r\n", 2);
	return rc;
}

int listing_lstat(int dirfd, int rootfd, const char *name, struct stat *st)
{
	if (strcmp(name, "..") == 0) {
		struct stat dir, root;
		if (fstat(dirfd, &dir) == 0 && fstat(rootfd, &root) == 0 && dir.st_dev == root.st_dev &&
		    dir.st_ino == root.st_ino)
			name = ".";
	}
	return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
}
