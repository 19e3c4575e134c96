/* ferry - the FTP client: command line, and the choice of front end.
 *
 *   ferry [options] [HOST [PORT]]                 shell (or script on stdin)
 *   ferry [options] HOST PORT COMMAND [ARGS...]   one command
 *   ferry [options] ftp[s]://[USER[:PASS]@]HOST[:PORT]/PATH [LOCAL]
 *   ferry [options] -T LOCAL ftp[s]://HOST[:PORT]/PATH
 * --tls / --tls-optional secure the control connection with AUTH TLS;
 * ftps:// URLs use implicit TLS.
 *   ferry --stream ... / ferry --compat comp431 ...   seed front ends
 */
#include "client.h"
#include "commands.h"
#include "num.h"
#include "progress.h"
#include "reply.h"
#include "seedmodes.h"
#include "shell.h"
#include "transfer.h"
#include "url.h"

#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FERRY_VERSION "0.1.0"
#define FTP_DEFAULT_PORT 21
/* --timeout beyond a day is a typo, not a wish. */
#define TIMEOUT_MAX_SECONDS 86400

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry [options] [HOST [PORT]]                interactive shell\n"
		"       ferry [options] HOST PORT COMMAND [ARGS...]  run one command\n"
		"       ferry [options] ftp[s]://[USER[:PASS]@]HOST[:PORT]/PATH [LOCAL]\n"
		"                                                    download (list if PATH ends in /)\n"
		"       ferry [options] -T LOCAL ftp[s]://HOST[:PORT]/PATH   upload\n"
		"options:\n"
		"  -u, --user USER      log in as USER (default anonymous)\n"
		"      --password PASS  password (else $FERRY_PASSWORD, ~/.netrc, or a prompt)\n"
		"  -A, --active         active data connections (EPRT/PORT)\n"
		"  -P, --passive        passive data connections (EPSV/PASV; the default)\n"
		"  -T, --upload LOCAL   upload LOCAL to the URL\n"
		"      --timeout SEC    give up on any wait after SEC seconds (default %d)\n"
		"      --retries N      resume a download (send an upload again) cut by the\n"
		"                       network up to N times, reconnecting when needed (default 0)\n"
		"      --tls            FTPS: AUTH TLS, refuse to go on if the server says no\n"
		"      --tls-optional   try AUTH TLS, go on unencrypted (with a warning) if refused\n"
		"      --cacert FILE    trust the certificates in FILE (default: the system store)\n"
		"      --insecure       do not check the server's certificate\n"
		"      --clear-data     with TLS, leave data connections unencrypted (PROT C)\n"
		"  -v, --verbose        show the protocol dialogue\n"
		"  -q, --quiet          no notes or transfer summaries\n"
		"      --prompt         commands from a pipe are shown after an ftp> prompt,\n"
		"                       with the notes the shell shows (a transcript)\n"
		"  -n                   do not log in automatically\n"
		"  -h, --help           this text\n"
		"      --version        ferry's version\n"
		"Commands read from a non-terminal stdin run as a script; the exit code\n"
		"is 0 when every command succeeded, 1 when one failed, 2 for bad usage.\n"
		"Type help in the shell for its commands.\n"
		"Seed front ends (docs/PROTOCOL.md): ferry --stream HOST PORT GET|PUT|DEL FILE,\n"
		"ferry --compat comp431 DATAPORT (requests on stdin).\n",
		CLIENT_DEFAULT_TIMEOUT);
}

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "ferry: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(ferry --help shows the usage)\n");
	return EXIT_USAGE;
}

/* Seed front ends own their whole command line. */
static int seed_mode(int argc, char **argv, int *status)
{
	if (argc >= 2 && strcmp(argv[1], "--stream") == 0) {
		argv[1] = argv[0];
		*status = stream_client_main(argc - 1, argv + 1);
		return 1;
	}
	if (argc >= 3 && strcmp(argv[1], "--compat") == 0 && strcmp(argv[2], "comp431") == 0) {
		argv[2] = argv[0];
		*status = comp431_client_main(argc - 2, argv + 2);
		return 1;
	}
	return 0;
}

static int finish(struct client *cl, int status)
{
	if (cl->ftp.state != FTPC_DISCONNECTED)
		ftpc_quit(&cl->ftp);
	client_free(cl);
	if (progress_interrupted)
		return EXIT_INTERRUPTED;
	return status;
}

/* The URL front end: one download, listing or upload. */
static int url_mode(struct client *cl, const char *text, const char *local, const char *upload)
{
	struct ftp_url u;
	int rc = url_parse(text, &u);
	if (rc != 0)
		return bad_usage("not a usable ftp:// or ftps:// URL: %s", text);
	if (u.has_user)
		cl->user = u.user;
	if (u.has_pass)
		cl->password = u.pass;
	if (u.tls)
		cl->ftp.tls.mode = SECURE_IMPLICIT;
	if (u.type == 'd' && upload) {
		client_free(cl);
		return bad_usage(";type=d asks for a listing: nothing can be uploaded to %s", text);
	}
	if (u.type)
		cl->ascii = u.type == 'a';
	if (client_open(cl, u.host, u.port) != 0)
		return finish(cl, EXIT_FAILED);
	if (cl->ftp.state != FTPC_LOGGED_IN)
		return finish(cl, EXIT_FAILED);
	size_t plen = strlen(u.path);
	/* A path ending in '/' is listed in full; ";type=d" asks for names. */
	bool listing = u.type == 'd' || plen == 0 || u.path[plen - 1] == '/';
	const char *verb = u.type == 'd' ? "NLST" : "LIST";
	if (upload) {
		char remote[FERRY_PATH_MAX + 256];
		if (plen == 0 || u.path[plen - 1] == '/') {
			int n = snprintf(remote, sizeof remote, "%s%s", u.path, transfer_leaf(upload));
			if (n < 0 || (size_t)n >= sizeof remote) {
				client_fail(cl, "remote name too long");
				return finish(cl, EXIT_FAILED);
			}
		} else {
			snprintf(remote, sizeof remote, "%s", u.path);
		}
		rc = transfer_put(cl, upload, remote, PUT_STORE);
	} else if (listing) {
		if (local && strcmp(local, "-") != 0)
			rc = transfer_listing_save(cl, verb, plen ? u.path : NULL, local);
		else
			rc = transfer_listing_show(cl, verb, plen ? u.path : NULL);
	} else {
		rc = transfer_get(cl, u.path, local, GET_NEW);
	}
	return finish(cl, rc == 0 ? EXIT_OK : EXIT_FAILED);
}

int main(int argc, char **argv)
{
	int status;
	if (seed_mode(argc, argv, &status))
		return status;

	enum { OPT_PASSWORD = 256, OPT_TIMEOUT, OPT_RETRIES, OPT_VERSION, OPT_TLS, OPT_TLS_OPTIONAL, OPT_CACERT, OPT_INSECURE,
	       OPT_CLEAR_DATA, OPT_PROMPT };
	static const struct option longopts[] = {
		{"user", required_argument, NULL, 'u'},
		{"password", required_argument, NULL, OPT_PASSWORD},
		{"active", no_argument, NULL, 'A'},
		{"passive", no_argument, NULL, 'P'},
		{"upload", required_argument, NULL, 'T'},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"retries", required_argument, NULL, OPT_RETRIES},
		{"tls", no_argument, NULL, OPT_TLS},
		{"tls-optional", no_argument, NULL, OPT_TLS_OPTIONAL},
		{"cacert", required_argument, NULL, OPT_CACERT},
		{"insecure", no_argument, NULL, OPT_INSECURE},
		{"clear-data", no_argument, NULL, OPT_CLEAR_DATA},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"prompt", no_argument, NULL, OPT_PROMPT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0},
	};
	const char *user = NULL, *password = NULL, *upload = NULL;
	bool active = false, verbose = false, quiet = false, autologin = true, transcript = false;
	long timeout = CLIENT_DEFAULT_TIMEOUT;
	long retries = 0;
	struct secure_opts tls = {.mode = SECURE_OFF, .verify = true};
	int opt;
	/* '+': options end at the first operand, so a one-shot command's
	 * own arguments ("ls -l") are not taken for ferry's. */
	while ((opt = getopt_long(argc, argv, "+u:APT:vqnh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			user = optarg;
			break;
		case OPT_PASSWORD:
			password = optarg;
			break;
		case 'A':
			active = true;
			break;
		case 'P':
			active = false;
			break;
		case 'T':
			upload = optarg;
			break;
		case OPT_TIMEOUT:
			if (num_parse_long(optarg, 1, TIMEOUT_MAX_SECONDS, &timeout) != 0)
				return bad_usage("--timeout wants seconds from 1 to 86400, not \"%s\"", optarg);
			break;
		case OPT_RETRIES:
			if (num_parse_long(optarg, 0, CLIENT_RETRIES_MAX, &retries) != 0)
				return bad_usage("--retries wants a count from 0 to 100, not \"%s\"", optarg);
			break;
		case OPT_TLS:
			tls.mode = SECURE_REQUIRED;
			break;
		case OPT_TLS_OPTIONAL:
			tls.mode = SECURE_OPTIONAL;
			break;
		case OPT_CACERT:
			tls.cafile = optarg;
			break;
		case OPT_INSECURE:
			tls.verify = false;
			break;
		case OPT_CLEAR_DATA:
			tls.clear_data = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_PROMPT:
			transcript = true;
			break;
		case 'n':
			autologin = false;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case OPT_VERSION:
			printf("ferry %s\n", FERRY_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;

	/* A server that drops the connection must not kill ferry with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	/* The line editor needs the terminal's character set to edit and
	 * complete names beyond ASCII; only LC_CTYPE, so messages and number
	 * formats stay as the protocol and the tests expect them. */
	setlocale(LC_CTYPE, "");
	/* An ISO 8859 terminal takes bytes 0x80-0x9f as C1 controls even
	 * inside UTF-8; ASCII ("C") says nothing of the terminal, which is
	 * then taken for UTF-8, as nearly all are. */
	const char *codeset = nl_langinfo(CODESET);
	shown_on_eight_bit_terminal(strcmp(codeset, "UTF-8") != 0 && strcmp(codeset, "ANSI_X3.4-1968") != 0);

	struct client cl;
	client_init(&cl, (int)timeout * 1000);
	cl.user = user;
	cl.retries = (int)retries;
	cl.password = password;
	cl.ftp.passive = !active;
	cl.ftp.tls = tls;
	cl.verbose = verbose;
	cl.quiet = quiet;
	cl.transcript = transcript;
	cl.autologin = autologin;
	cl.ftp.trace = verbose ? stderr : NULL;

	if (nargs >= 1 && url_is_ftp(args[0])) {
		if (nargs > 2 || (upload && nargs > 1)) {
			client_free(&cl);
			return bad_usage("too many arguments after the URL%s", "");
		}
		return url_mode(&cl, args[0], nargs > 1 ? args[1] : NULL, upload);
	}
	if (upload) {
		client_free(&cl);
		return bad_usage("-T needs an ftp:// or ftps:// URL to upload to%s", "");
	}

	int port = FTP_DEFAULT_PORT;
	if (nargs >= 2) {
		long p;
		if (num_parse_long(args[1], 1, 65535, &p) != 0) {
			client_free(&cl);
			return bad_usage("bad port \"%s\" (1-65535)", args[1]);
		}
		port = (int)p;
	}

	/* One-shot: connect, run one command, exit with its result. */
	if (nargs >= 3) {
		const struct command *c = command_find(args[2]);
		if (!c) {
			client_free(&cl);
			return bad_usage("unknown command \"%s\"", args[2]);
		}
		/* A command line that cannot run is a usage error, found before
		 * connecting and logging in for nothing. */
		if (command_check_arity(c, nargs - 2) != 0) {
			client_free(&cl);
			return EXIT_USAGE;
		}
		if (client_open(&cl, args[0], port) != 0)
			return finish(&cl, EXIT_FAILED);
		int rc = command_run(&cl, nargs - 2, args + 2);
		return finish(&cl, rc == 0 ? EXIT_OK : EXIT_FAILED);
	}

	cl.interactive = isatty(STDIN_FILENO);
	int open_failed = 0;
	if (nargs >= 1 && client_open(&cl, args[0], port) != 0)
		open_failed = 1;
	if (cl.interactive)
		return finish(&cl, shell_interactive(&cl));
	status = shell_script(&cl, STDIN_FILENO);
	return finish(&cl, open_failed ? EXIT_FAILED : status);
}
