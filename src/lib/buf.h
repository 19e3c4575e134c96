/* buf.h - a bounded, growable byte buffer.
 *
 * Every byte ferry reads from the network lands in a struct buf. A buffer
 * never grows past its limit: appends that would exceed it fail with
 * -ENOBUFS and leave the buffer unchanged. The buffer owns its storage;
 * buf_free() releases it. data is always NUL-terminated (not counted in
 * len) so text can be used as a C string. */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define FERRY_WUR __attribute__((warn_unused_result))

struct buf {
	char *data;   /* NULL until the first append */
	size_t len;   /* bytes in use */
	size_t cap;   /* bytes allocated, excluding the NUL slot */
	size_t limit; /* cap never exceeds this */
};

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
/* 0, or -ENOBUFS past the limit, or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n) FERRY_WUR;
int buf_appends(struct buf *b, const char *s) FERRY_WUR;
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) FERRY_WUR;
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) FERRY_WUR;
/* Room for at least want more bytes at the end: returns where to write
 * them (NULL past the limit or out of memory); buf_added then counts
 * the bytes actually written there. Lets read(2) land in the buffer. */
char *buf_tail(struct buf *b, size_t want) FERRY_WUR;
void buf_added(struct buf *b, size_t n);
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_clear(struct buf *b);
/* Releases the storage when empty, so idle sessions hold no buffers. */
void buf_shrink_if_empty(struct buf *b);

#endif
