/* check.h - the unit-test runner: CHECK records a failure with its place
 * and goes on; each TEST prints PASS or FAIL; main returns non-zero if any
 * test failed. A test file defines its tests and lists them in RUN(). */
#ifndef FERRY_CHECK_H
#define FERRY_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_in_test;
static int check_tests_failed;

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			check_failures_in_test++;                                         \
		}                                                                         \
	} while (0)

#define CHECK_STR(a, b)                                                                   \
	do {                                                                              \
		const char *check_a_ = (a), *check_b_ = (b);                              \
		if (strcmp(check_a_, check_b_) != 0) {                                    \
			fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, check_a_, check_b_); \
			check_failures_in_test++;                                         \
		}                                                                         \
	} while (0)

#define TEST(name) static void name(void)

#define RUN_ONE(name)                                                                     \
	do {                                                                              \
		check_failures_in_test = 0;                                               \
		name();                                                                   \
		printf("%s unit/%s\n", check_failures_in_test ? "FAIL" : "PASS", #name);  \
		if (check_failures_in_test)                                               \
			check_tests_failed++;                                             \
	} while (0)

#endif
