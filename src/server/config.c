#include "config.h"

#include "ferry_limits.h"
#include "num.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FERRY_VERSION "0.1.0"

static const char usage_text[] =
	"usage: ferryd [options] [PORT]\n"
	"Serves a directory over FTP (RFC 959 with EPSV/EPRT, MLSD, SIZE, MDTM, REST).\n"
	"\n"
	"  PORT, -p, --port N       control port (default 2121)\n"
	"  -r, --root DIR           directory served (default: current directory)\n"
	"  -w, --writable           anonymous users may upload, delete, rename, mkdir\n"
	"      --no-anonymous       refuse anonymous logins\n"
	"  -u, --users FILE         virtual users, one per line: name:crypt-hash:home:ro|rw\n"
	"      --user NAME          account to run as when started as root\n"
	"      --hash-password      read a password on stdin, print a crypt(3) hash, exit\n"
	"  -b, --bind ADDR          listen address (default: dual-stack any)\n"
	"      --pasv-ports LO-HI   passive port range (default: the kernel's ephemeral range)\n"
	"      --pasv-address ADDR  IPv4 address announced in PASV replies\n"
	"      --max-sessions N     sessions at once (default 4096)\n"
	"      --max-per-ip N       sessions at once from one address (default 256, 0 = no limit)\n"
	"      --idle-timeout SEC   close idle control connections (default 300)\n"
	"      --data-timeout SEC   abort stalled data connections (default 60)\n"
	"      --workers N          worker processes (default: one per core)\n"
	"  -v, --verbose            transcript of every session on stdout\n"
	"      --stream             serve seed 001's streaming protocol instead of FTP\n"
	"      --compat comp431     seed 004's exact greeting, replies and transcript\n"
	"                           (implies -v), one session at a time\n"
	"      --tls-cert FILE      certificate chain (PEM) for FTPS; enables AUTH TLS\n"
	"      --tls-key FILE       its private key (PEM)\n"
	"      --tls-required       virtual users must use TLS (control and data)\n"
	"      --tls-required-anonymous  anonymous users must use TLS too\n"
	"      --no-tls-require-reuse    accept data connections that do not resume the\n"
	"                           control connection's TLS session\n"
	"      --tls-strict-eof     a protected upload must end with TLS close_notify;\n"
	"                           one cut off by a bare TCP close is discarded (426)\n"
	"      --implicit-tls-port N  also serve implicit FTPS (TLS from the first byte) on N\n"
	"      --gen-cert DIR       write a self-signed DIR/cert.pem and DIR/key.pem, exit\n"
	"      --no-sandbox         do not confine workers with seccomp (debugging)\n"
	"  -h, --help               this text\n"
	"      --version            print the version\n";

enum {
	OPT_NO_ANON = 256,
	OPT_RUN_AS,
	OPT_HASH,
	OPT_PASV_PORTS,
	OPT_PASV_ADDR,
	OPT_MAX_SESSIONS,
	OPT_MAX_PER_IP,
	OPT_IDLE,
	OPT_DATA,
	OPT_WORKERS,
	OPT_STREAM,
	OPT_COMPAT,
	OPT_VERSION,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_REQUIRED,
	OPT_TLS_REQUIRED_ANON,
	OPT_TLS_REUSE,
	OPT_NO_TLS_REUSE,
	OPT_TLS_STRICT_EOF,
	OPT_IMPLICIT,
	OPT_GEN_CERT,
	OPT_NO_SANDBOX,
};

static const struct option long_opts[] = {
	{"port", required_argument, NULL, 'p'},
	{"root", required_argument, NULL, 'r'},
	{"writable", no_argument, NULL, 'w'},
	{"no-anonymous", no_argument, NULL, OPT_NO_ANON},
	{"users", required_argument, NULL, 'u'},
	{"user", required_argument, NULL, OPT_RUN_AS},
	{"hash-password", no_argument, NULL, OPT_HASH},
	{"bind", required_argument, NULL, 'b'},
	{"pasv-ports", required_argument, NULL, OPT_PASV_PORTS},
	{"pasv-address", required_argument, NULL, OPT_PASV_ADDR},
	{"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
	{"max-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
	{"idle-timeout", required_argument, NULL, OPT_IDLE},
	{"data-timeout", required_argument, NULL, OPT_DATA},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"verbose", no_argument, NULL, 'v'},
	{"stream", no_argument, NULL, OPT_STREAM},
	{"compat", required_argument, NULL, OPT_COMPAT},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, OPT_VERSION},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"tls-required", no_argument, NULL, OPT_TLS_REQUIRED},
	{"tls-required-anonymous", no_argument, NULL, OPT_TLS_REQUIRED_ANON},
	{"tls-require-reuse", no_argument, NULL, OPT_TLS_REUSE},
	{"no-tls-require-reuse", no_argument, NULL, OPT_NO_TLS_REUSE},
	{"tls-strict-eof", no_argument, NULL, OPT_TLS_STRICT_EOF},
	{"implicit-tls-port", required_argument, NULL, OPT_IMPLICIT},
	{"gen-cert", required_argument, NULL, OPT_GEN_CERT},
	{"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
	{0, 0, 0, 0},
};

/* Strict decimal in [lo, hi] into an int; -EINVAL otherwise. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
	long v;
	int rc = num_parse_long(s, lo, hi, &v);
	if (rc == 0)
		*out = (int)v;
	return rc;
}

static int bad(const char *what, const char *value)
{
	fprintf(stderr, "ferryd: invalid %s: '%s' (try --help)\n", what, value);
	return 2;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->port = FERRY_DEFAULT_PORT;
	cfg->root = ".";
	cfg->anonymous = true;
	cfg->max_sessions = FERRY_DEFAULT_MAX_SESSIONS;
	cfg->max_per_ip = FERRY_DEFAULT_MAX_PER_IP;
	cfg->idle_timeout = FERRY_DEFAULT_IDLE_TIMEOUT;
	cfg->data_timeout = FERRY_DEFAULT_DATA_TIMEOUT;
	cfg->tls_require_reuse = true;
	cfg->sandbox = true;

	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":p:r:wu:b:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_int(optarg, 0, 65535, &cfg->port))
				return bad("port", optarg);
			break;
		case 'r': cfg->root = optarg; break;
		case 'w': cfg->writable = true; break;
		case OPT_NO_ANON: cfg->anonymous = false; break;
		case 'u': cfg->users_file = optarg; break;
		case OPT_RUN_AS: cfg->run_as = optarg; break;
		case OPT_HASH: cfg->hash_password = true; break;
		case 'b': cfg->bind_addr = optarg; break;
		case OPT_PASV_PORTS: {
			char *dash = strchr(optarg, '-');
			char lo[16];
			if (!dash || (size_t)(dash - optarg) >= sizeof lo)
				return bad("passive port range", optarg);
			memcpy(lo, optarg, (size_t)(dash - optarg));
			lo[dash - optarg] = '\0';
			if (parse_int(lo, 1024, 65535, &cfg->pasv_lo) || parse_int(dash + 1, 1024, 65535, &cfg->pasv_hi) ||
			    cfg->pasv_lo > cfg->pasv_hi)
				return bad("passive port range (LO-HI, 1024-65535)", optarg);
			break;
		}
		case OPT_PASV_ADDR: cfg->pasv_address = optarg; break;
		case OPT_MAX_SESSIONS:
			if (parse_int(optarg, 1, 1000000, &cfg->max_sessions))
				return bad("--max-sessions", optarg);
			break;
		case OPT_MAX_PER_IP:
			if (parse_int(optarg, 0, 1000000, &cfg->max_per_ip))
				return bad("--max-per-ip", optarg);
			break;
		case OPT_IDLE:
			if (parse_int(optarg, 1, 86400, &cfg->idle_timeout))
				return bad("--idle-timeout", optarg);
			break;
		case OPT_DATA:
			if (parse_int(optarg, 1, 86400, &cfg->data_timeout))
				return bad("--data-timeout", optarg);
			break;
		case OPT_WORKERS:
			if (parse_int(optarg, 1, 256, &cfg->workers))
				return bad("--workers", optarg);
			break;
		case 'v': cfg->verbose = true; break;
		case OPT_STREAM: cfg->stream = true; break;
		case OPT_COMPAT:
			if (strcmp(optarg, "comp431") != 0)
				return bad("--compat mode (known: comp431)", optarg);
			cfg->compat = COMPAT_COMP431;
			cfg->verbose = true; /* the seed's server echoes every line */
			break;
		case OPT_TLS_CERT: cfg->tls_cert = optarg; break;
		case OPT_TLS_KEY: cfg->tls_key = optarg; break;
		case OPT_TLS_REQUIRED: cfg->tls_required = true; break;
		case OPT_TLS_REQUIRED_ANON: cfg->tls_required = cfg->tls_required_anon = true; break;
		case OPT_TLS_REUSE: cfg->tls_require_reuse = true; break;
		case OPT_NO_TLS_REUSE: cfg->tls_require_reuse = false; break;
		case OPT_TLS_STRICT_EOF: cfg->tls_strict_eof = true; break;
		case OPT_IMPLICIT:
			if (parse_int(optarg, 1, 65535, &cfg->implicit_tls_port))
				return bad("--implicit-tls-port", optarg);
			break;
		case OPT_GEN_CERT: cfg->gen_cert_dir = optarg; break;
		case OPT_NO_SANDBOX: cfg->sandbox = false; break;
		case 'h':
			fputs(usage_text, stdout);
			cfg->exit_now = true;
			return 0;
		case OPT_VERSION:
			printf("ferryd %s\n", FERRY_VERSION);
			cfg->exit_now = true;
			return 0;
		case ':':
			fprintf(stderr, "ferryd: option '%s' needs a value (try --help)\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "ferryd: unknown option '%s' (try --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	/* Seed usage: "ferryd PORT [-v]" puts -v after the port. */
	for (; optind < argc; optind++) {
		const char *a = argv[optind];
		if (strcmp(a, "-v") == 0) {
			cfg->verbose = true;
		} else if (parse_int(a, 0, 65535, &cfg->port)) {
			return bad("port", a);
		}
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		fprintf(stderr, "ferryd: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if ((cfg->tls_required || cfg->implicit_tls_port) && !cfg->tls_cert) {
		fprintf(stderr, "ferryd: --tls-required and --implicit-tls-port need --tls-cert and --tls-key\n");
		return 2;
	}
	if (cfg->pasv_address) {
		unsigned a, b, cc, d;
		char extra;
		if (sscanf(cfg->pasv_address, "%u.%u.%u.%u%c", &a, &b, &cc, &d, &extra) != 4 || a > 255 ||
		    b > 255 || cc > 255 || d > 255)
			return bad("--pasv-address (an IPv4 address)", cfg->pasv_address);
	}
	return 0;
}
