/* stream.h - seed 001's streaming file-transfer protocol (ferryd --stream).
 *
 * Serves one client at a time on port, files confined to rootfd exactly
 * like FTP paths (lib/path). With verbose, prints exactly seed 001's lines
 * on stdout, flushed as they happen; otherwise prints nothing. Runs until
 * killed; returns an exit code only when it cannot listen (after printing
 * one line on stderr). */
#ifndef FERRY_STREAM_H
#define FERRY_STREAM_H

#include <stdbool.h>

int stream_serve(int port, bool verbose, int rootfd);

#endif
