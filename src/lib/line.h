/* line.h - assembles CRLF-terminated lines from a byte stream.
 *
 * Used for both directions of the control connection. Feeding stops after
 * each complete line so the caller can act on it before reading on (a
 * pipelined peer cannot make ferry skip ahead). A line longer than the
 * reader's maximum is drained up to its LF and reported once as
 * LINE_TOO_LONG; it is never split into two lines. In telnet mode, IAC
 * sequences are removed (IAC IAC is a literal 0xFF) and CR NUL is a CR.
 * A bare LF also ends a line. NUL, or a CR not followed by LF, inside a
 * line marks it bad (line_reader.bad) instead of cutting it silently. */
#ifndef FERRY_LINE_H
#define FERRY_LINE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

enum line_result {
	LINE_MORE,     /* all input consumed, no complete line yet */
	LINE_READY,    /* lr->line holds one line without its terminator */
	LINE_TOO_LONG, /* a line over the maximum ended and was discarded */
};

struct line_reader {
	struct buf line;
	unsigned char tstate; /* telnet / CR state, private */
	bool telnet;
	bool overlong;
	bool bad;             /* NUL or stray CR inside the line */
};

void line_init(struct line_reader *lr, size_t max, bool telnet);
void line_free(struct line_reader *lr);
/* Consumes bytes from in; *used says how many. After LINE_READY or
 * LINE_TOO_LONG call line_reset before feeding again. */
enum line_result line_feed(struct line_reader *lr, const char *in, size_t n, size_t *used);
void line_reset(struct line_reader *lr);

/* Splits a command line in place: verb uppercased (at most 15 chars, else
 * -EINVAL), *arg points after the first space or is NULL when there is no
 * argument (a trailing lone space counts as none). */
int line_split_command(char *line, char verb[16], char **arg);

#endif
