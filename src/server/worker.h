/* worker.h - one worker process: accepts sessions from the shared listening
 * socket and runs them in its event loop until told to stop.
 *
 * Workers share the port through one listening socket registered with
 * EPOLLEXCLUSIVE (one worker woken per connection), and share counters
 * (session ids, sessions in total and per address) in a MAP_SHARED page
 * so limits hold across workers. */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include "config.h"

#include <stdbool.h>

struct session;

/* The served directory (O_PATH), root of every anonymous session. */
extern int ferryd_anon_rootfd;
/* The server's TLS context, NULL when FTPS is not configured. */
extern struct ssl_ctx_st *ferryd_tls_ctx;

/* Allocates the shared counters; before forking workers. */
int worker_shared_init(void);
/* Runs until SIGTERM/SIGINT and then drains: returns the exit code. */
int worker_run(int listen_fd, int implicit_fd, const struct config *cfg);
/* Asks for session_tick(s) at (or soon after) at_ms, sooner than the
 * once-a-second sweep. */
void worker_wake_at(struct session *s, long long at_ms);
/* Queues s to have its buffered input processed on the next pass. */
void worker_mark_ready(struct session *s);
/* Failed logins per address, across sessions and workers. */
void worker_login_failed(unsigned slot);
bool worker_logins_blocked(unsigned slot);
/* Sessions counters: called when a session ends. */
void worker_session_gone(struct session *s);

#endif
