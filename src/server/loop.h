/* loop.h - the event loop: one epoll instance per worker process.
 *
 * Each watched fd has an ev_handler embedded in its owner; the loop calls
 * handler->fn with the ready events. Handlers must not free their owner
 * from inside the callback: sessions are marked for closing and reaped by
 * the worker after the dispatch pass (see worker.c). Level-triggered, so a
 * handler that stops early (work cap reached) is simply called again. */
#ifndef FERRY_LOOP_H
#define FERRY_LOOP_H

#include <stdint.h>

struct ev_handler {
	void (*fn)(struct ev_handler *h, uint32_t events);
	int fd;
	uint32_t events; /* currently registered mask, 0 = not registered */
};

int loop_init(void);
/* Registers, changes or (mask 0) removes h->fd. 0 or negative errno. */
int loop_watch(struct ev_handler *h, uint32_t mask);
/* Forgets h (before its fd is closed). */
void loop_forget(struct ev_handler *h);
/* Forgets h whose fd is about to be closed and was never shared with
 * another process: closing it removes it from epoll, no call needed. */
void loop_forget_closing(struct ev_handler *h);
/* Waits up to timeout_ms and dispatches; returns events handled or negative errno (-EINTR on a signal). */
/* Counts dispatch passes: the events a handler is called with in pass N
 * were read before anything other handlers of pass N did. */
unsigned long loop_pass(void);
int loop_run_once(int timeout_ms);

#endif
