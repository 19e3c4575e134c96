/* sayline.h - one line of a transcript on stdout.
 *
 * The seed programs (ferryd --stream, ferry --stream, --compat comp431)
 * print what they do as lines that graders and test peers read while the
 * program runs, so each line is flushed as soon as it is complete. */
#ifndef FERRY_SAYLINE_H
#define FERRY_SAYLINE_H

#include <stdarg.h>

/* Prints fmt with ap, then a newline, and flushes stdout. */
void say_line(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
