/* users.h - virtual users from a --users file, and password checks.
 *
 * File format, one user per line: name:crypt-hash:home:ro|rw
 * ('#' starts a comment line; blank lines are skipped). home is an
 * absolute directory, that user's root. Any crypt(3) hash is accepted.
 * users_check spends the same effort whether or not the user exists, so
 * timing does not tell which names are valid. */
#ifndef FERRY_USERS_H
#define FERRY_USERS_H

#include <stdbool.h>
#include <stddef.h>

struct user {
	char *name;
	char *hash;
	char *home;
	bool writable;
};

/* Loads path; on error writes a one-line cause into err and returns -1. */
int users_load(const char *path, char *err, size_t errlen);
/* The user when name exists and password matches its hash, else NULL. */
const struct user *users_check(const char *name, const char *password);
/* Prints a crypt(3) hash of the password read from stdin; exit code. */
int users_hash_password(void);

#endif
