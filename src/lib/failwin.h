/* failwin.h - events counted in fixed windows of time (failed logins per
 * address), in one 64-bit atomic word that several processes may update at
 * once through shared memory.
 *
 * The word holds the window's start (CLOCK_MONOTONIC ms) shifted left by
 * FAILWIN_COUNT_BITS, or'ed with the count in it. Starting a new window and
 * counting into it are one compare-and-swap, so two processes that count
 * the first event of a window at the same moment both count. The count
 * saturates at FAILWIN_COUNT_MAX. A zero word is an empty, long-past window. */
#ifndef FERRY_FAILWIN_H
#define FERRY_FAILWIN_H

#include <stdatomic.h>

#define FAILWIN_COUNT_BITS 16
#define FAILWIN_COUNT_MAX ((1u << FAILWIN_COUNT_BITS) - 1)

typedef atomic_ullong failwin;

/* Counts one event at now_ms: into the current window, or as the first of a
 * new one when the current began more than window_ms before now_ms. */
void failwin_add(failwin *w, long long now_ms, long long window_ms);

/* The events in the window current at now_ms; 0 once it is over. */
unsigned failwin_count(failwin *w, long long now_ms, long long window_ms);

#endif
