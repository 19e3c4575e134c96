#include "loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

static int epfd = -1;
static unsigned long pass;

unsigned long loop_pass(void)
{
	return pass;
}

int loop_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	return epfd < 0 ? -errno : 0;
}

int loop_watch(struct ev_handler *h, uint32_t mask)
{
	if (mask == h->events)
		return 0;
	struct epoll_event ev = {.events = mask, .data.ptr = h};
	int op = h->events == 0 ? EPOLL_CTL_ADD : mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (epoll_ctl(epfd, op, h->fd, &ev) < 0)
		return -errno;
	h->events = mask;
	return 0;
}

void loop_forget(struct ev_handler *h)
{
	if (h->events && h->fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, h->fd, NULL);
	h->events = 0;
}

void loop_forget_closing(struct ev_handler *h)
{
	h->events = 0;
}

int loop_run_once(int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n = epoll_wait(epfd, evs, LOOP_MAX_EVENTS, timeout_ms);
	if (n < 0)
		return -errno;
	pass++;
	for (int i = 0; i < n; i++) {
		struct ev_handler *h = evs[i].data.ptr;
		/* Forgotten earlier in this batch: its events are stale. */
		if (h->events == 0)
			continue;
		h->fn(h, evs[i].events);
	}
	return n;
}
