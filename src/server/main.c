/* ferryd - the ferry FTP server: start-up, privileges, worker processes. */
#include "config.h"
#include "ferry_limits.h"
#include "net.h"
#include "stream.h"
#include "tls.h"
#include "users.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64


/* Started as root: become an unprivileged user before any client byte is
 * read. The default account is the owner of the served directory (when
 * that is not root), else nobody. */
static int drop_privileges(const struct config *cfg, const char *root)
{
	struct passwd *pw = NULL;
	if (cfg->run_as) {
		pw = getpwnam(cfg->run_as);
		if (!pw) {
			fprintf(stderr, "ferryd: --user %s: no such account\n", cfg->run_as);
			return -1;
		}
	} else {
		struct stat st;
		if (stat(root, &st) == 0 && st.st_uid != 0)
			pw = getpwuid(st.st_uid);
		if (!pw)
			pw = getpwnam("nobody");
		if (!pw) {
			fprintf(stderr, "ferryd: no unprivileged account to run as (use --user NAME)\n");
			return -1;
		}
	}
	if (pw->pw_uid == 0) {
		fprintf(stderr, "ferryd: refusing to serve as root (use --user NAME)\n");
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		fprintf(stderr, "ferryd: cannot become %s: %s\n", pw->pw_name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		fprintf(stderr, "ferryd: privileges could not be dropped\n");
		return -1;
	}
	if (cfg->writable && access(root, W_OK) != 0)
		fprintf(stderr, "ferryd: warning: %s cannot write %s; uploads will fail\n", pw->pw_name, root);
	return 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static pid_t spawn_worker(int listen_fd, int implicit_fd, const struct config *cfg)
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* Signals stay blocked until worker_run has its handlers in place. */
		_exit(worker_run(listen_fd, implicit_fd, cfg));
	}
	return pid;
}

/* Takes a listening socket down for every process that holds it. */
static void stop_listening(int fd)
{
	if (fd < 0)
		return;
	if (shutdown(fd, SHUT_RDWR) < 0)
		fprintf(stderr, "ferryd: shutdown of the listener: %s\n", strerror(errno));
	close(fd);
}

/* The parent only supervises: it restarts a worker that died and, on
 * SIGTERM/SIGINT, passes the signal on and waits for the workers. The
 * signals are blocked from the start and taken with sigwaitinfo, so none
 * can slip in between a check and a wait. */
static int supervise(int listen_fd, int implicit_fd, const struct config *cfg, int n)
{
	pid_t pids[MAX_WORKERS];
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = spawn_worker(listen_fd, implicit_fd, cfg);
		if (pids[i] < 0) {
			fprintf(stderr, "ferryd: fork: %s\n", strerror(errno));
			return 1;
		}
	}
	bool stopping = false;
	int alive = n;
	while (alive > 0) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue; /* EINTR */
		if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
			stopping = true;
			/* New clients are refused at once; running ones may finish.
			 * shutdown, not only close: the workers hold the same
			 * sockets, and until the last of them had closed its copy
			 * the kernel would go on queueing clients for a worker
			 * that has not yet taken the signal. */
			stop_listening(listen_fd);
			stop_listening(implicit_fd);
			for (int i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
			continue;
		}
		if (sig != SIGCHLD)
			continue;
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (int i = 0; i < n; i++) {
				if (pids[i] != pid)
					continue;
				pids[i] = -1;
				if (stopping) {
					alive--;
					continue;
				}
				fprintf(stderr, "ferryd: worker %d exited (status %d); restarting it\n", (int)pid, status);
				pids[i] = spawn_worker(listen_fd, implicit_fd, cfg);
				if (pids[i] < 0)
					alive--;
			}
		}
	}
	return 0;
}

/* Stop signals are blocked from the first instruction ferryd runs, so a
 * SIGTERM during start-up is not lost (or fatal) but taken by the worker or
 * the supervisor once they are ready. */
__attribute__((constructor)) static void block_stop_signals(void)
{
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
}

static void unblock_stop_signals(void)
{
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_UNBLOCK, &stop, NULL);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file-size limit must give EFBIG, not kill us */

	struct config cfg;
	int rc = config_parse(&cfg, argc, argv);
	if (rc != 0 || cfg.exit_now)
		return rc;
	if (cfg.hash_password)
		return users_hash_password();
	/* No range given: ferryd picks from the kernel's ephemeral range itself
	 * (see net_listen_addr), so TIME_WAIT sockets do not slow PASV down. */
	if (cfg.pasv_lo == 0)
		net_ephemeral_range(&cfg.pasv_lo, &cfg.pasv_hi);
	cfg.pasv_park = cfg.pasv_hi - cfg.pasv_lo + 1 > cfg.max_sessions;
	char err[512];
	if (cfg.gen_cert_dir) {
		if (tls_make_self_signed(cfg.gen_cert_dir, err, sizeof err) != 0) {
			fprintf(stderr, "ferryd: %s\n", err);
			return 2;
		}
		fprintf(stderr, "ferryd: wrote %s/cert.pem and %s/key.pem\n", cfg.gen_cert_dir, cfg.gen_cert_dir);
		return 0;
	}

	char root[PATH_MAX];
	int rootfd = open(cfg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || !realpath(cfg.root, root)) {
		fprintf(stderr, "ferryd: cannot serve %s: %s\n", cfg.root, strerror(errno));
		return 2;
	}
	if (cfg.stream) {
		unblock_stop_signals(); /* seed 001's server runs until killed */
		return stream_serve(cfg.port, cfg.verbose, rootfd);
	}

	ferryd_anon_rootfd = rootfd;
	if (cfg.tls_cert && !(ferryd_tls_ctx = tls_server_ctx(cfg.tls_cert, cfg.tls_key, err, sizeof err))) {
		fprintf(stderr, "ferryd: %s\n", err);
		return 2;
	}
	if (cfg.users_file && users_load(cfg.users_file, err, sizeof err) != 0) {
		fprintf(stderr, "ferryd: %s\n", err);
		return 2;
	}
	int lfd = net_listen(cfg.bind_addr, cfg.port, 1024, err, sizeof err);
	if (lfd < 0) {
		fprintf(stderr, "ferryd: %s\n", err);
		return 2;
	}
	int ifd = -1;
	if (cfg.implicit_tls_port) {
		ifd = net_listen(cfg.bind_addr, cfg.implicit_tls_port, 1024, err, sizeof err);
		if (ifd < 0) {
			fprintf(stderr, "ferryd: implicit FTPS: %s\n", err);
			return 2;
		}
	}
	raise_fd_limit();
	if (geteuid() == 0) {
		if (drop_privileges(&cfg, root) != 0)
			return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "ferryd: no_new_privs: %s\n", strerror(errno));
		return 2;
	}
	if (worker_shared_init() < 0) {
		fprintf(stderr, "ferryd: shared memory: %s\n", strerror(errno));
		return 2;
	}
	struct sockaddr_storage bound;
	net_local_addr(lfd, &bound);
	if (cfg.compat == COMPAT_NONE) {
		char host[64];
		const char *shown = cfg.bind_addr ? net_host_str(&bound, host, sizeof host) : "0.0.0.0";
		bool v6 = strchr(shown, ':') != NULL;
		fprintf(stderr, "ferryd: serving %s (%s%s%s) on ftp://%s%s%s:%d/\n", root,
			!cfg.anonymous ? "no anonymous" : cfg.writable ? "anonymous, writable" : "anonymous, read-only",
			cfg.users_file ? ", users from " : "", cfg.users_file ? cfg.users_file : "", v6 ? "[" : "",
			shown, v6 ? "]" : "", net_port(&bound));
		if (ifd >= 0) {
			struct sockaddr_storage ib;
			net_local_addr(ifd, &ib);
			fprintf(stderr, "ferryd: implicit FTPS on ftps://%s%s%s:%d/\n", v6 ? "[" : "", shown, v6 ? "]" : "",
				net_port(&ib));
		}
	}
	int workers = cfg.workers;
	if (workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
	}
	/* The stop signals are still blocked (see block_stop_signals): the
	 * worker unblocks them in worker_run, the supervisor takes them with
	 * sigwaitinfo. */
	/* The seed-004 transcript is one ordered stream: one process. */
	if (cfg.compat == COMPAT_COMP431 || workers == 1)
		return worker_run(lfd, ifd, &cfg);
	return supervise(lfd, ifd, &cfg, workers);
}
