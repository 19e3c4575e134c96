/* fuzz.h - shared by the fuzz targets in fuzz/fuzz_*.c.
 *
 * Each target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). A target checks properties with FUZZ_CHECK: a
 * violated property prints where and why on stderr and aborts, which
 * libFuzzer reports as a crash and fuzz/replay_main.c as a FAIL line. */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

__attribute__((noreturn, unused)) static void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
	abort();
}

#define FUZZ_CHECK(cond)                                            \
	do {                                                        \
		if (!(cond))                                        \
			fuzz_fail(__FILE__, __LINE__, #cond);       \
	} while (0)

/* A NUL-terminated copy of data (malloc'd, exact size, so ASan sees any
 * read past the end). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

#endif
