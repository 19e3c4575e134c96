/* shell.h - the two ways ferry reads commands.
 *
 * shell_interactive: a terminal on stdin. Prompt "ftp> ", line editing and
 * history (~/.ferry_history) with libedit, tab completion of command
 * names, local paths and remote paths (listed with MLSD or NLST).
 * shell_script: anything else on fd. One command per line, no prompt
 * (with cl->transcript, each shown after "ftp> " as if typed); every
 * command runs even after one fails.
 *
 * Both stop at end of input or after bye. The result is an exit code:
 * EXIT_OK when every command succeeded, else EXIT_FAILED (the interactive
 * shell reports failures as they happen and exits with EXIT_OK). */
#ifndef FERRY_SHELL_H
#define FERRY_SHELL_H

#include "client.h"

int shell_interactive(struct client *cl);
int shell_script(struct client *cl, int fd);

#endif
