/* config.h - ferryd's settings, from the command line.
 *
 * config_parse fills a struct config or prints a one-line error naming the
 * problem and returns 2 (the exit code for bad usage); --help/--version
 * print and return 0 with cfg->exit_now set. Strings point into argv. */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>

enum compat_mode {
	COMPAT_NONE,
	COMPAT_COMP431, /* seed 004: its greeting, reply texts and bare transcript */
};

struct config {
	int port;
	const char *root;
	bool writable;
	bool anonymous;          /* anonymous logins allowed */
	const char *users_file;
	const char *run_as;
	bool hash_password;
	const char *bind_addr;   /* NULL = dual-stack any */
	int pasv_lo, pasv_hi;    /* 0,0 until main() fills in the ephemeral range */
	const char *pasv_address;
	bool pasv_park;          /* keep a used passive listener for the next PASV (main() decides) */
	int max_sessions, max_per_ip;
	int idle_timeout, data_timeout;
	int workers;             /* 0 = one per core */
	bool verbose;
	bool stream;             /* seed 001 protocol instead of FTP */
	enum compat_mode compat;
	/* FTPS (RFC 4217) */
	const char *tls_cert, *tls_key;
	bool tls_required;        /* virtual users must AUTH TLS and PROT P */
	bool tls_required_anon;   /* anonymous users too */
	bool tls_require_reuse;   /* data connections must resume the control session */
	bool tls_strict_eof;      /* a protected upload without close_notify is discarded */
	int implicit_tls_port;    /* 0 = none */
	const char *gen_cert_dir;
	bool sandbox;             /* seccomp allowlist in workers (default on) */
	bool exit_now;
};

int config_parse(struct config *cfg, int argc, char **argv);

#endif
