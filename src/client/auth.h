/* auth.h - where a login name and password come from when the command
 * line does not give them: ~/.netrc and a prompt without echo.
 *
 * ~/.netrc follows the BSD ftp format: "machine NAME login USER password
 * PASS" entries, "default" as a fallback, "macdef" bodies skipped. The
 * file is read up to AUTH_NETRC_MAX bytes; a longer one is ignored. */
#ifndef FERRY_AUTH_H
#define FERRY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_NETRC_MAX (64 * 1024)

/* Looks host up in ~/.netrc (or $NETRC). When user is not NULL only an
 * entry with that login (or none) matches. login/pass get "" when the
 * entry has none. true when an entry matched. */
bool auth_netrc_lookup(const char *host, const char *user, char *login, size_t loginlen,
		       char *pass, size_t passlen);
/* Prompts on the controlling terminal and reads a line without echo.
 * 0, or -ENXIO when there is no terminal, or another negative errno. */
int auth_prompt_password(const char *prompt, char *out, size_t outlen);

#endif
