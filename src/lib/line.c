#include "line.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

enum { T_DATA, T_IAC, T_IAC_OPT, T_CR };

#define IAC 255
#define WILL 251
#define DONT 254

void line_init(struct line_reader *lr, size_t max, bool telnet)
{
	buf_init(&lr->line, max);
	lr->tstate = T_DATA;
	lr->telnet = telnet;
	lr->overlong = false;
	lr->bad = false;
}

void line_free(struct line_reader *lr)
{
	buf_free(&lr->line);
}

void line_reset(struct line_reader *lr)
{
	buf_clear(&lr->line);
	/* Long lines are rare: do not keep their storage around. */
	if (lr->line.cap > 512)
		buf_free(&lr->line);
	lr->overlong = false;
	lr->bad = false;
	lr->tstate = T_DATA;
}

static void put(struct line_reader *lr, char c)
{
	if (lr->overlong)
		return;
	if (buf_append(&lr->line, &c, 1) != 0) {
		lr->overlong = true;
		buf_clear(&lr->line);
	}
}

enum line_result line_feed(struct line_reader *lr, const char *in, size_t n, size_t *used)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)in[i++];
		switch (lr->tstate) {
		case T_IAC:
			if (c == IAC) {
				lr->tstate = T_DATA;
				put(lr, (char)IAC);
			} else if (c >= WILL && c <= DONT) {
				lr->tstate = T_IAC_OPT;
			} else {
				lr->tstate = T_DATA; /* IP, DM, AYT, ...: dropped */
			}
			continue;
		case T_IAC_OPT:
			lr->tstate = T_DATA;
			continue;
		case T_CR:
			lr->tstate = T_DATA;
			if (c == '\n')
				goto done;
			if (c == '\0') {
				put(lr, '\r');
				lr->bad = true; /* a CR inside a command has no use */
				continue;
			}
			lr->bad = true;
			put(lr, '\r');
			break; /* and handle c as data below */
		default:
			break;
		}
		if (lr->telnet && c == IAC) {
			lr->tstate = T_IAC;
		} else if (c == '\r') {
			lr->tstate = T_CR;
		} else if (c == '\n') {
			goto done;
		} else {
			if (c == '\0')
				lr->bad = true;
			put(lr, (char)c);
		}
	}
	*used = i;
	return LINE_MORE;
done:
	*used = i;
	if (!lr->line.data) {
		/* Empty line: make line.data a valid empty string. */
		if (buf_append(&lr->line, "", 0) != 0)
			lr->overlong = true;
	}
	return lr->overlong ? LINE_TOO_LONG : LINE_READY;
}

int line_split_command(char *line, char verb[16], char **arg)
{
	size_t i = 0;
	while (line[i] && line[i] != ' ') {
		if (i >= 15)
			return -EINVAL;
		verb[i] = (char)toupper((unsigned char)line[i]);
		i++;
	}
	verb[i] = '\0';
	if (line[i] == ' ' && line[i + 1] != '\0')
		*arg = line + i + 1;
	else
		*arg = NULL;
	return 0;
}
