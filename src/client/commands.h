/* commands.h - the ferry command table and its one dispatcher.
 *
 * The interactive shell, scripts on stdin and one-shot mode all run
 * commands through command_run, so a command behaves the same wherever it
 * is typed. Each row names the command, its aliases, how many arguments it
 * takes, what session state it needs, how tab completion treats its
 * arguments, and its help text; help output is generated from the rows.
 * Names match case-insensitively. */
#ifndef FERRY_COMMANDS_H
#define FERRY_COMMANDS_H

#include "client.h"

#include <stddef.h>

enum command_need {
	NEED_NOTHING,   /* local commands, open, bye */
	NEED_CONNECTION,/* a control connection (user) */
	NEED_LOGIN,     /* a logged-in session (file commands) */
};

/* Argument kinds for completion, one letter per position (the last one
 * repeats): 'r' remote path, 'l' local path, 'c' command name, '-' none. */
struct command {
	const char *name;
	const char *aliases[4];
	int min_args;
	int max_args;   /* -1: any number */
	enum command_need need;
	int (*run)(struct client *cl, int argc, char **argv);
	const char *args;  /* usage after the name */
	const char *help;
	const char *complete;
};

/* The row for name or one of its aliases, or NULL. */
const struct command *command_find(const char *name);
/* Whether argc words (the command name first) suit c; if not, prints
 * "usage: ..." on stderr and returns -1. */
int command_check_arity(const struct command *c, int argc);
/* The table, for help and completion. */
const struct command *command_table(size_t *count);

/* Runs argv[0] with its arguments: checks the name, the argument count
 * and the session state, then calls the handler. 0, or -1 after printing
 * one error line. */
int command_run(struct client *cl, int argc, char **argv);
/* Splits line into words (quotes and backslashes as in sh) and runs it.
 * Blank lines and lines starting with '#' succeed without doing anything. */
int command_run_line(struct client *cl, const char *line);

#endif
