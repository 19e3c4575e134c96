/* num.h - strict decimal numbers from text (command lines, replies).
 *
 * The whole string must be a decimal number within [lo, hi]: no sign
 * games past strtol's, no trailing bytes, no overflow. 0 or -EINVAL. */
#ifndef FERRY_NUM_H
#define FERRY_NUM_H

int num_parse_long(const char *s, long lo, long hi, long *out);

#endif
