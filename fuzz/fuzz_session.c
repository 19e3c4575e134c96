/* fuzz_session.c - whole FTP sessions through the server's state machine:
 * the control connection, command dispatch, login, the path jail, data
 * addresses and transfers (server/session.c, commands.c, data.c,
 * listing.c, users.c and worker.c's ready/reap pass).
 *
 * worker.c is compiled into this target (#include) for its private ready
 * list and reaping. Each input is one session: the control connection is
 * a socket pair (the session is told its peer is 127.0.0.1:40000 and its
 * local address 127.0.0.1:2121), the input is written to it as the
 * client's bytes, and the event loop and ready pass run until the session
 * is idle, then the client side shuts down. Data connections never leave
 * the process: net_connect_start is wrapped (-Wl,--wrap) so an active
 * (PORT/EPRT) connection gets a socket pair, and passive listeners (on
 * 127.0.0.1) are connected to by this target only. The target plays the
 * data peer: it reads whatever the server sends and, for an upload, sends
 * a short payload and closes. A failed-login pause is skipped by ticking
 * the session with a clock past it. The served tree (a temporary
 * directory, rebuilt before every input) holds files, a subdirectory, a
 * symlink pointing outside it and a name with CR/LF in it; a virtual user
 * "alice" (password "secret", rw, home = the tree) and "bob" (ro, home =
 * its subdirectory) are loaded from a users file.
 *
 * Input: one flag byte (bit 0: anonymous logins allowed; bit 1: --writable;
 * bit 2: COMP 431 compatibility; bit 3: verbose transcript, to /dev/null;
 * bit 4: when idle, jump the clock past every timeout once; bit 5: do not
 * connect to passive listeners), then the client's control bytes.
 *
 * Invariants:
 *   - every byte the server sends on the control connection parses as
 *     replies: CRLF-terminated lines with no stray CR or NUL, each reply
 *     starting with a code in 100..599 (multi-line ones ending properly),
 *     the first one 220; so no file name or argument can forge a reply;
 *   - 227 and 229 replies name 127.0.0.1 and a port >= 1024; passive
 *     listeners are bound to 127.0.0.1;
 *   - an active data connection is only ever started to 127.0.0.1 (the
 *     control peer) at a port >= 1024: no FTP bounce;
 *   - replies never reveal the served directory's real path (unless the
 *     client sent it: replies may echo arguments);
 *   - nothing outside the served tree changes (a file beside it, which a
 *     symlink in the tree points to, keeps its content, mode and mtime;
 *     no new names appear beside the tree);
 *   - after the session ends, it is reaped, the shared session counters
 *     are back to zero and no file descriptor is left open. */
#include "../src/server/worker.c"

#include "fuzz.h"
#include "ftpaddr.h"
#include "line.h"
#include "reply.h"
#include "users.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEER_PORT 40000
#define LOCAL_PORT 2121
#define MAX_PEERS 16
#define SECRET "not for ftp clients\n"

static char base[64];      /* temporary directory: root/, secret, users */
static struct stat secret_st;
static bool trace;         /* FERRY_FUZZ_TRACE set: the server's replies go to stderr */
static char root[128];
static int baseline_fds;

/* Data peers: our ends of data connections. */
static int peers[MAX_PEERS];
static bool peer_sent[MAX_PEERS];
static int npeers;
static uint8_t payload[128];
static size_t payload_len;

int __real_net_connect_start(const struct sockaddr_storage *addr, const struct sockaddr_storage *from);
int __wrap_net_connect_start(const struct sockaddr_storage *addr, const struct sockaddr_storage *from);

static bool is_loopback_peer(const struct sockaddr_storage *a)
{
	struct sockaddr_storage x = *a;
	net_addr_unmap(&x);
	return x.ss_family == AF_INET &&
	       ((struct sockaddr_in *)&x)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

int __wrap_net_connect_start(const struct sockaddr_storage *addr, const struct sockaddr_storage *from)
{
	(void)from;
	/* No FTP bounce: only the control peer, only unprivileged ports. */
	FUZZ_CHECK(is_loopback_peer(addr));
	FUZZ_CHECK(net_port(addr) >= 1024);
	if (npeers == MAX_PEERS)
		return -EMFILE;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	peer_sent[npeers] = false;
	peers[npeers++] = sv[1];
	return sv[0];
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	FUZZ_CHECK(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static void put_file(const char *dir, const char *name, const char *text, size_t len)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, text, len) == (ssize_t)len);
	close(fd);
}

static int open_up(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	/* SITE CHMOD may have locked a directory: make it listable again. */
	if (flag == FTW_D || flag == FTW_DNR)
		chmod(path, 0755);
	else if (S_ISREG(st->st_mode))
		chmod(path, 0644);
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

/* Empties root/ and fills it again. */
static void build_tree(void)
{
	chmod(root, 0755);
	nftw(root, open_up, 16, FTW_PHYS);
	nftw(root, open_up, 16, FTW_PHYS); /* what was unreadable the first time */
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	put_file(root, "hello.txt", "hello\nworld\n", 12);
	put_file(root, "crlf.txt", "one\r\ntwo\r\n", 10);
	put_file(root, "evil\r\n213 End.txt", "x", 1);
	static char big[70000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i % 61 == 60 ? '\n' : 'a' + i % 26);
	put_file(root, "big.txt", big, sizeof big);
	char p[512];
	snprintf(p, sizeof p, "%s/sub", root);
	mkdir(p, 0755);
	put_file(p, "nested.txt", "nested\n", 7);
	snprintf(p, sizeof p, "%s/empty", root);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/escape", root);
	FUZZ_CHECK(symlink("../secret", p) == 0);
	snprintf(p, sizeof p, "%s/sub/up", root);
	FUZZ_CHECK(symlink("../hello.txt", p) == 0);
}

/* The only names beside root/, and the secret's content, never change. */
static void check_outside(void)
{
	DIR *d = opendir(base);
	FUZZ_CHECK(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		FUZZ_CHECK(!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "root") || !strcmp(n, "secret") ||
			   !strcmp(n, "users"));
	}
	closedir(d);
	char p[256], got[64] = "";
	snprintf(p, sizeof p, "%s/secret", base);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	ssize_t n = read(fd, got, sizeof got - 1);
	struct stat st;
	FUZZ_CHECK(fstat(fd, &st) == 0);
	close(fd);
	FUZZ_CHECK(n == (ssize_t)strlen(SECRET) && memcmp(got, SECRET, (size_t)n) == 0);
	FUZZ_CHECK(st.st_mode == secret_st.st_mode && st.st_ino == secret_st.st_ino);
	FUZZ_CHECK(st.st_mtim.tv_sec == secret_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == secret_st.st_mtim.tv_nsec);
}

static void cleanup(void)
{
	if (!base[0])
		return;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	int rc = system(cmd);
	(void)rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	trace = getenv("FERRY_FUZZ_TRACE") != NULL;
	/* The transcript (-v) goes to stdout: not wanted here. */
	int dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (dn >= 0) {
		dup2(dn, 1);
		close(dn);
	}
	/* The tree is rebuilt for every input: on tmpfs when there is one. */
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) >= 32)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(base, sizeof base, "%s/ferry-fuzz-XXXXXX", tmp);
	if (!mkdtemp(base))
		abort();
	atexit(cleanup);
	snprintf(root, sizeof root, "%s/root", base);
	FUZZ_CHECK(mkdir(root, 0755) == 0);
	put_file(base, "secret", SECRET, strlen(SECRET));
	char sp[256];
	snprintf(sp, sizeof sp, "%s/secret", base);
	FUZZ_CHECK(stat(sp, &secret_st) == 0);
	char users_text[1024];
	int n = snprintf(users_text, sizeof users_text,
			 "# fuzz users\nalice:$1$fuzzsalt$ld45C3N68bCQn5ZIlNntP/:%s:rw\n"
			 "bob:$1$fuzzsalt$ld45C3N68bCQn5ZIlNntP/:%s/sub:ro\n",
			 root, root);
	put_file(base, "users", users_text, (size_t)n);
	char upath[256], err[256];
	snprintf(upath, sizeof upath, "%s/users", base);
	if (users_load(upath, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	ferryd_anon_rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(ferryd_anon_rootfd >= 0);
	FUZZ_CHECK(loop_init() == 0);
	FUZZ_CHECK(worker_shared_init() == 0);
	/* No listening sockets here: COMP 431 mode's reap must not watch fd 0. */
	listener.fd = -1;
	implicit_listener.fd = -1;
	build_tree();
	baseline_fds = count_fds();
	return 0;
}

/* Whether p[0..n) contains s. A plain loop, not memmem: libFuzzer hooks
 * memmem and would learn the served path from this very check. */
static bool contains(const char *p, size_t n, const char *s)
{
	size_t k = strlen(s);
	for (size_t i = 0; i + k <= n; i++) {
		size_t j = 0;
		while (j < k && p[i + j] == s[j])
			j++;
		if (j == k)
			return true;
	}
	return false;
}

/* Whether the client's bytes hold the served path's random part in order,
 * possibly interleaved with other bytes (telnet IAC sequences vanish). */
static bool echoes_base(const uint8_t *data, size_t size)
{
	const char *x = base + strlen(base) - 6;
	size_t j = 0;
	for (size_t i = 0; i < size && x[j]; i++)
		if ((char)data[i] == x[j])
			j++;
	return x[j] == '\0';
}

/* Checks the server's control bytes as a client reads them. */
struct reply_check {
	struct line_reader lr;
	struct reply_parser rp;
	int replies;
	bool echo_ok; /* the client's bytes hold the served path themselves */
};

static void check_replies(struct reply_check *rc, const char *p, size_t n)
{
	if (trace)
		fwrite(p, 1, n, stderr);
	/* The server may echo what the client sent, nothing more. */
	FUZZ_CHECK(rc->echo_ok || !contains(p, n, base));
	while (n > 0) {
		size_t used = 0;
		enum line_result r = line_feed(&rc->lr, p, n, &used);
		p += used;
		n -= used;
		if (r == LINE_MORE)
			break;
		FUZZ_CHECK(r == LINE_READY);
		/* CRLF-terminated, no stray CR, no NUL. */
		FUZZ_CHECK(!rc->lr.bad);
		FUZZ_CHECK(p[-1] == '\n' && used >= 2 && p[-2] == '\r');
		const char *line = rc->lr.line.data;
		int fed = reply_parser_feed(&rc->rp, line);
		FUZZ_CHECK(fed == 0 || fed == 1);
		if (fed == 1) {
			int code = rc->rp.code;
			FUZZ_CHECK(code >= 100 && code <= 599);
			if (rc->replies++ == 0)
				FUZZ_CHECK(code == R_READY);
			if (code == R_PASV) {
				struct sockaddr_storage a;
				FUZZ_CHECK(ftp_pasv_reply_parse(rc->rp.text.data, &a) == 0);
				FUZZ_CHECK(is_loopback_peer(&a) && net_port(&a) >= 1024);
			} else if (code == R_EPSV) {
				int port = 0;
				FUZZ_CHECK(ftp_epsv_reply_parse(rc->rp.text.data, &port) == 0 && port >= 1024);
			}
			reply_parser_reset(&rc->rp);
		}
		line_reset(&rc->lr);
	}
}

/* Reads what is available on fd; 0 at end of stream, 1 when bytes came or
 * nothing is there yet, -1 on error. Bytes go to rc when not NULL. */
static int drain(int fd, struct reply_check *rc, bool *moved)
{
	char b[8192];
	for (;;) {
		ssize_t r = read(fd, b, sizeof b);
		if (r > 0) {
			*moved = true;
			if (rc)
				check_replies(rc, b, (size_t)r);
			continue;
		}
		if (r == 0)
			return 0;
		return errno == EAGAIN || errno == ENOTCONN ? 1 : -1;
	}
}

static void close_peer(int i)
{
	/* Reset rather than FIN: no TIME_WAIT left behind for each input. */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(peers[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(peers[i]);
	peers[i] = peers[--npeers];
	peer_sent[i] = peer_sent[npeers];
}

/* The data side of the client. Each passive listener (told apart by its
 * socket's inode: fd numbers are reused) is connected to once. */
static void serve_peers(struct session *s, bool connect_pasv, ino_t *pasv_done, bool *moved)
{
	struct stat st;
	if (s && connect_pasv && s->pasv.fd >= 0 && fstat(s->pasv.fd, &st) == 0 && st.st_ino != *pasv_done &&
	    npeers < MAX_PEERS) {
		struct sockaddr_storage l;
		FUZZ_CHECK(net_local_addr(s->pasv.fd, &l) == 0);
		FUZZ_CHECK(is_loopback_peer(&l));
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		FUZZ_CHECK(fd >= 0);
		if (connect(fd, (struct sockaddr *)&l, sizeof(struct sockaddr_in)) < 0 && errno != EINPROGRESS) {
			close(fd);
		} else {
			peer_sent[npeers] = false;
			peers[npeers++] = fd;
		}
		*pasv_done = st.st_ino;
		*moved = true;
	}
	bool upload = s && s->xfer && s->xfer->kind == XK_STOR && s->xfer->running;
	for (int i = 0; i < npeers; i++) {
		if (upload && !peer_sent[i]) {
			ssize_t w = write(peers[i], payload, payload_len);
			if (w >= 0 || errno != EAGAIN) {
				peer_sent[i] = true;
				shutdown(peers[i], SHUT_WR);
				*moved = true;
			}
		}
		if (drain(peers[i], NULL, moved) <= 0) {
			close_peer(i);
			*moved = true;
			i--;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	uint8_t flags = data[0];
	data++;
	size--;

	struct config cfg = {
		.port = LOCAL_PORT,
		.root = root,
		.anonymous = flags & 1,
		.writable = flags & 2,
		.compat = flags & 4 ? COMPAT_COMP431 : COMPAT_NONE,
		.verbose = flags & 8,
		.max_sessions = 10,
		.max_per_ip = 10,
		.idle_timeout = FERRY_DEFAULT_IDLE_TIMEOUT,
		.data_timeout = FERRY_DEFAULT_DATA_TIMEOUT,
		.workers = 1,
	};
	bool time_jump = flags & 16;
	bool connect_pasv = !(flags & 32);
	config = &cfg;
	memset(shared, 0, sizeof *shared);
	payload_len = size < 64 ? size : 64;
	memcpy(payload, "upload\r\nbytes\n", 14);
	memcpy(payload + 14, data, payload_len);
	payload_len += 14;

	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(PEER_PORT),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_storage peer_ss;
	memset(&peer_ss, 0, sizeof peer_ss);
	memcpy(&peer_ss, &peer, sizeof peer);
	unsigned slot = ip_slot_of(&peer_ss);
	atomic_fetch_add(&shared->sessions, 1);
	atomic_fetch_add(&shared->per_ip[slot], 1);
	struct session *s = session_new(sv[0], &cfg, 1, slot, false);
	FUZZ_CHECK(s);
	s->peer = peer_ss;
	s->local = peer_ss;
	net_set_port(&s->local, LOCAL_PORT);
	all_sessions = s;
	session_greet(s);

	struct reply_check rc;
	line_init(&rc.lr, FERRY_LINE_MAX + 1024, false);
	reply_parser_init(&rc.rp, FERRY_REPLY_MAX);
	rc.replies = 0;
	rc.echo_ok = echoes_base(data, size);

	size_t written = 0;
	bool shut = false, jumped = false;
	ino_t pasv_done = 0;
	for (int pass = 0; pass < 4000; pass++) {
		bool moved = false;
		if (written < size) {
			ssize_t w = write(sv[1], data + written, size - written);
			if (w > 0) {
				written += (size_t)w;
				moved = true;
			}
		}
		int ev = loop_run_once(0);
		FUZZ_CHECK(ev >= 0);
		moved |= ev > 0 || ready_head;
		run_ready();
		s = all_sessions;
		drain(sv[1], &rc, &moved);
		serve_peers(s, connect_pasv, &pasv_done, &moved);
		if (s && s->input_paused && s->paused_until_ms && !s->xfer) {
			/* The failed-login delay: let the clock pass it. */
			session_tick(s, s->paused_until_ms);
			moved = true;
		}
		if (moved)
			continue;
		if (timed_head) {
			/* An early tick is due (an upload's commit after its
			 * grace): let the clock reach it. */
			run_timed(clock_ms() + 1000);
			run_ready();
			continue;
		}
		if (!s && npeers == 0)
			break;
		if (s && time_jump && !jumped) {
			jumped = true;
			session_tick(s, clock_ms() + 1000LL * 1000 * 1000);
			run_ready();
			continue;
		}
		if (written == size && !shut) {
			shutdown(sv[1], SHUT_WR);
			shut = true;
			continue;
		}
		if (shut) {
			/* Idle with the client gone quiet: a transfer waiting
			 * for a peer that will not come. End it. */
			while (npeers)
				close_peer(0);
			if (s) {
				session_close(s);
				run_ready();
			}
			break;
		}
	}
	s = all_sessions;
	if (s) {
		session_close(s);
		run_ready();
	}
	if (timed_head) {
		run_timed(clock_ms() + 1000);
		run_ready();
	}
	FUZZ_CHECK(all_sessions == NULL && ready_head == NULL && timed_head == NULL);
	FUZZ_CHECK(atomic_load(&shared->sessions) == 0 && atomic_load(&shared->per_ip[slot]) == 0);
	bool moved = false;
	drain(sv[1], &rc, &moved);
	FUZZ_CHECK(rc.replies >= 1); /* the greeting at least */
	while (npeers)
		close_peer(0);
	close(sv[1]);
	line_free(&rc.lr);
	reply_parser_free(&rc.rp);
	fflush(stdout);

	check_outside();
	/* The worker's once-a-second tick: no upload left, so no pipe either. */
	xfer_release_idle();
	FUZZ_CHECK(count_fds() == baseline_fds);
	build_tree();
	return 0;
}
