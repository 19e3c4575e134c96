#include "worker.h"

#include "data.h"
#include "failwin.h"
#include "ferry_limits.h"
#include "loop.h"
#include "net.h"
#include "reply.h"
#include "sandbox.h"
#include "session.h"
#include "sys.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

int ferryd_anon_rootfd = -1;
struct ssl_ctx_st *ferryd_tls_ctx;

/* Per-address session counts live in hashed slots; two addresses sharing
 * a slot share a limit, which errs on the side of refusing. */
#define IP_SLOTS 4096

struct shared_counters {
	atomic_ulong next_id;
	atomic_int sessions;
	atomic_int per_ip[IP_SLOTS];
	failwin login_fails[IP_SLOTS];       /* failed logins per slot */
};

static struct shared_counters *shared;
static struct session *all_sessions;
static struct session *ready_head;
static const struct config *config;
static struct ev_handler listener, implicit_listener;
static volatile sig_atomic_t stop_requested;
/* Sessions that asked for an early tick, and the earliest time asked. */
static struct session *timed_head;
static long long timed_next;
/* Sessions freed since the heap was last handed back to the system. */
static unsigned long reaped_since_trim;

int worker_shared_init(void)
{
	void *p = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	shared = p;
	return 0;
}

void worker_wake_at(struct session *s, long long at_ms)
{
	if (!s->in_timed) {
		s->in_timed = true;
		s->timed_next = timed_head;
		timed_head = s;
	}
	if (!timed_next || at_ms < timed_next)
		timed_next = at_ms;
}

/* Ticks the sessions that asked for it, once their time has come. */
static void run_timed(long long now)
{
	if (!timed_head || now < timed_next)
		return;
	struct session *list = timed_head;
	timed_head = NULL;
	timed_next = 0;
	while (list) {
		struct session *s = list;
		list = s->timed_next;
		s->in_timed = false;
		session_tick(s, now); /* may ask again through worker_wake_at */
	}
}

void worker_mark_ready(struct session *s)
{
	if (s->in_ready)
		return;
	s->in_ready = true;
	s->ready_next = ready_head;
	ready_head = s;
}

void worker_session_gone(struct session *s)
{
	atomic_fetch_sub(&shared->sessions, 1);
	atomic_fetch_sub(&shared->per_ip[s->ip_slot], 1);
}

void worker_login_failed(unsigned slot)
{
	failwin_add(&shared->login_fails[slot], clock_ms(), FERRY_IP_FAIL_WINDOW_MS);
}

bool worker_logins_blocked(unsigned slot)
{
	return failwin_count(&shared->login_fails[slot], clock_ms(), FERRY_IP_FAIL_WINDOW_MS) >=
	       FERRY_IP_FAILS_MAX;
}

static unsigned ip_slot_of(const struct sockaddr_storage *peer)
{
	struct sockaddr_storage a = *peer;
	net_addr_unmap(&a);
	const unsigned char *p;
	size_t n;
	if (a.ss_family == AF_INET) {
		p = (const unsigned char *)&((struct sockaddr_in *)&a)->sin_addr;
		n = 4;
	} else {
		/* IPv6: one slot per /64, the unit one host usually controls. */
		p = (const unsigned char *)&((struct sockaddr_in6 *)&a)->sin6_addr;
		n = 8;
	}
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % IP_SLOTS;
}

static void refuse(int fd, const char *line)
{
	/* Best effort on a fresh socket: the send buffer is empty. */
	ssize_t w = write(fd, line, strlen(line));
	(void)w;
	close(fd);
}

/* When listeners paused for want of descriptors are watched again (0:
 * not paused). */
static long long listeners_resume_ms;

/* Watches the listening sockets (on) or leaves their clients waiting in
 * the backlog (off). 0 or negative errno. */
static int watch_listeners(bool on)
{
	if (!on) {
		loop_forget(&listener);
		loop_forget(&implicit_listener);
		return 0;
	}
	int rc = listener.fd >= 0 ? loop_watch(&listener, EPOLLIN | EPOLLEXCLUSIVE) : 0;
	if (rc == 0 && implicit_listener.fd >= 0)
		rc = loop_watch(&implicit_listener, EPOLLIN | EPOLLEXCLUSIVE);
	return rc;
}

static void on_accept(struct ev_handler *h, uint32_t events)
{
	(void)events;
	bool implicit = h == &implicit_listener;
	for (int i = 0; i < FERRY_ACCEPTS_PER_WAKEUP && !stop_requested; i++) {
		struct sockaddr_storage peer;
		socklen_t sl = sizeof peer;
		int fd = accept4(h->fd, (struct sockaddr *)&peer, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* EINVAL: the supervisor took the listener down for a
			 * stop whose signal is on its way; polling it would spin. */
			if (errno == EINVAL)
				watch_listeners(false);
			/* Out of descriptors or memory: the client waits in the
			 * backlog; a level-triggered listener would wake us for it
			 * again at once, and again, spinning. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				watch_listeners(false);
				listeners_resume_ms = clock_ms() + FERRY_ACCEPT_RETRY_MS;
			}
			return; /* EAGAIN: another worker took it */
		}
		unsigned slot = ip_slot_of(&peer);
		int total = atomic_fetch_add(&shared->sessions, 1) + 1;
		int mine = atomic_fetch_add(&shared->per_ip[slot], 1) + 1;
		if (total > config->max_sessions || (config->max_per_ip && mine > config->max_per_ip)) {
			atomic_fetch_sub(&shared->sessions, 1);
			atomic_fetch_sub(&shared->per_ip[slot], 1);
			refuse(fd, total > config->max_sessions ? "421 Too many users, try again later.\r\n"
								: "421 Too many connections from your address.\r\n");
			continue;
		}
		unsigned long id = atomic_fetch_add(&shared->next_id, 1) + 1;
		struct session *s = session_new(fd, config, id, slot, implicit);
		if (!s) {
			atomic_fetch_sub(&shared->sessions, 1);
			atomic_fetch_sub(&shared->per_ip[slot], 1);
			continue;
		}
		s->next = all_sessions;
		if (all_sessions)
			all_sessions->prev = s;
		all_sessions = s;
		if (config->compat != COMPAT_COMP431) {
			char host[64];
			transcript(s, "connection from %s port %d%s", net_host_str(&s->peer, host, sizeof host),
				   net_port(&s->peer), implicit ? " (implicit TLS)" : "");
		}
		if (!implicit)
			session_greet(s);
		/* COMP 431's server serves one client at a time (listen(1), then
		 * accept and serve): the next waits in the backlog until this
		 * one has gone, and its transcript never interleaves. */
		if (config->compat == COMPAT_COMP431) {
			watch_listeners(false);
			return;
		}
	}
}

static void resume_listeners(void)
{
	listeners_resume_ms = 0;
	if (config->compat == COMPAT_COMP431 && all_sessions)
		return; /* one client at a time: reap watches them when it has gone */
	int rc = watch_listeners(true);
	if (rc < 0)
		fprintf(stderr, "ferryd: epoll: %s\n", strerror(-rc));
}

static void reap(struct session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		all_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (config->compat != COMPAT_COMP431)
		transcript(s, "connection closed");
	worker_session_gone(s);
	session_free(s);
	reaped_since_trim++;
	/* Descriptors have just been freed; COMP 431 takes its next client
	 * once this one has gone. */
	if (!stop_requested && (listeners_resume_ms || (config->compat == COMPAT_COMP431 && !all_sessions)))
		resume_listeners();
}

static void run_ready(void)
{
	/* Bounded: sessions queued while running go to the next pass. */
	struct session *list = ready_head;
	ready_head = NULL;
	while (list) {
		struct session *s = list;
		list = s->ready_next;
		s->in_ready = false;
		if (!s->closing)
			session_process_input(s);
		if (s->closing && !s->in_ready && !s->in_timed)
			reap(s);
	}
}

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int worker_run(int listen_fd, int implicit_fd, const struct config *cfg)
{
	config = cfg;
	if (loop_init() < 0) {
		fprintf(stderr, "ferryd: epoll: %s\n", strerror(errno));
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigset_t unblock;
	sigemptyset(&unblock);
	sigaddset(&unblock, SIGTERM);
	sigaddset(&unblock, SIGINT);
	sigaddset(&unblock, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
	listener.fd = listen_fd;
	listener.fn = on_accept;
	implicit_listener.fd = implicit_fd;
	implicit_listener.fn = on_accept;
	int watched = watch_listeners(true);
	if (watched < 0) {
		fprintf(stderr, "ferryd: epoll: %s\n", strerror(-watched));
		return 1;
	}
	if (cfg->sandbox) {
		int rc = sandbox_enter();
		if (rc < 0) {
			fprintf(stderr, "ferryd: cannot enter the seccomp sandbox: %s\n", strerror(-rc));
			return 1;
		}
	}
	long long last_tick = clock_ms();
	long long grace_end = 0;
	for (;;) {
		long long now = clock_ms();
		long long wake = last_tick + 1000;
		if (timed_head && timed_next < wake)
			wake = timed_next;
		if (listeners_resume_ms && listeners_resume_ms < wake)
			wake = listeners_resume_ms;
		int timeout = ready_head || (stop_requested && !grace_end) ? 0 : (int)(wake - now);
		if (timeout < 0)
			timeout = 0;
		int n = loop_run_once(timeout);
		if (n < 0 && n != -EINTR) {
			fprintf(stderr, "ferryd: epoll_wait: %s\n", strerror(-n));
			return 1;
		}
		run_ready();
		now = clock_ms();
		run_timed(now);
		run_ready();
		if (listeners_resume_ms && now >= listeners_resume_ms && !stop_requested)
			resume_listeners();
		if (stop_requested && !grace_end) {
			/* Stop accepting; idle sessions go now, transfers may finish. */
			watch_listeners(false);
			/* Close our copies so new clients are refused, not left waiting. */
			fd_close(&listener.fd);
			fd_close(&implicit_listener.fd);
			grace_end = now + 30000;
			for (struct session *s = all_sessions; s; s = s->next)
				if (!s->xfer && !s->closing) {
					reply(s, R_UNAVAILABLE, "Server shutting down.");
					session_close(s);
				}
			run_ready();
		}
		if (now - last_tick >= 1000 || stop_requested) {
			last_tick = now;
			/* After a burst of sessions has gone, give the freed heap
			 * back: an idle server should look idle in memory too. */
			if (reaped_since_trim >= FERRY_TRIM_AFTER_SESSIONS) {
				reaped_since_trim = 0;
				malloc_trim(0);
			}
			xfer_release_idle();
			for (struct session *s = all_sessions; s; s = s->next) {
				session_tick(s, now);
				if (stop_requested && !s->xfer && !s->closing) {
					reply(s, R_UNAVAILABLE, "Server shutting down.");
					session_close(s);
				}
			}
			run_ready();
		}
		if (stop_requested && (!all_sessions || now >= grace_end))
			return 0;
	}
}
