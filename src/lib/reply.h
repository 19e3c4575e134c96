/* reply.h - FTP reply codes, and the incremental reply parser.
 *
 * Codes are named by what they mean (RFC 959 section 4.2, RFC 2228, 2428,
 * 3659). The parser takes one line at a time (from a line_reader) and says
 * when a reply, single- or multi-line ("123-" ... "123 "), is complete. */
#ifndef FERRY_REPLY_H
#define FERRY_REPLY_H

#include "buf.h"

#include <stdbool.h>

enum reply_code {
	R_RESTART_MARKER = 110,
	R_SERVICE_READY_SOON = 120,
	R_DATA_OPEN_STARTING = 125,
	R_FILE_STATUS_OK = 150,
	R_CMD_OK = 200,
	R_NOT_NEEDED = 202,
	R_SYSTEM_STATUS = 211,
	R_DIR_STATUS = 212,
	R_FILE_STATUS = 213,
	R_HELP = 214,
	R_SYSTEM_TYPE = 215,
	R_READY = 220,
	R_GOODBYE = 221,
	R_TRANSFER_COMPLETE = 226,
	R_PASV = 227,
	R_EPSV = 229,
	R_LOGGED_IN = 230,
	R_AUTH_OK = 234,
	R_FILE_ACTION_OK = 250,
	R_PATH_CREATED = 257,
	R_NEED_PASSWORD = 331,
	R_NEED_ACCOUNT = 332,
	R_PENDING = 350,
	R_UNAVAILABLE = 421,
	R_CANT_OPEN_DATA = 425,
	R_TRANSFER_ABORTED = 426,
	R_FILE_BUSY = 450,
	R_LOCAL_ERROR = 451,
	R_NO_SPACE = 452,
	R_SYNTAX = 500,
	R_BAD_ARGS = 501,
	R_NOT_IMPLEMENTED = 502,
	R_BAD_SEQUENCE = 503,
	R_PARAM_NOT_IMPLEMENTED = 504,
	R_PROTO_NOT_SUPPORTED = 522,
	R_NOT_LOGGED_IN = 530,
	R_NO_FILE = 550,
	R_PAGE_TYPE = 551,
	R_EXCEEDED_STORAGE = 552,
	R_BAD_NAME = 553,
};

static inline bool reply_is_preliminary(int code) { return code >= 100 && code < 200; }
static inline bool reply_is_success(int code) { return code >= 200 && code < 300; }
static inline bool reply_is_intermediate(int code) { return code >= 300 && code < 400; }
static inline bool reply_is_error(int code) { return code >= 400; }

struct reply_parser {
	int code;         /* code of the reply being read, 0 before its first line */
	bool multi;       /* first line was "ddd-" */
	struct buf text;  /* all lines' text, codes removed, joined by '\n' */
};

void reply_parser_init(struct reply_parser *rp, size_t limit);
void reply_parser_free(struct reply_parser *rp);
/* Starts a new reply (keeps storage). */
void reply_parser_reset(struct reply_parser *rp);
/* 1 when the line completed a reply (code in rp->code, text in rp->text),
 * 0 when more lines are needed, -EPROTO for a line that cannot start a
 * reply, -ENOBUFS when the reply exceeds the limit. */
int reply_parser_feed(struct reply_parser *rp, const char *line);

/* Bytes (1-4) of the character at text, of n bytes, that a terminal shows
 * as text; 0 for a control character (C0, DEL, or C1 as U+0080-U+009F) or a
 * byte that does not begin valid UTF-8, which a terminal may act on (a raw
 * 0x9b is CSI to one not in UTF-8 mode). On an eight-bit terminal (below):
 * 1, or 0 for C0, DEL and every byte 0x80-0x9f. */
size_t shown_char_len(const char *text, size_t n);

/* For a terminal whose character set has one byte per character (an
 * ISO 8859 locale): there every byte 0x80-0x9f is a C1 control, even one
 * inside what would be UTF-8, and the others are characters. */
void shown_on_eight_bit_terminal(bool on);

/* true when every character of text is shown as text (see above). */
bool shown_whole(const char *text);

/* Copies text into out with every character shown_char_len() refuses
 * replaced by one '?' per byte, so neither a file name nor a reply can forge
 * a reply line or drive the terminal. out may be text itself. */
void reply_sanitize(const char *text, char *out, size_t outlen);

#endif
