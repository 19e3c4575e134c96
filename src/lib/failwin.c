#include "failwin.h"

#include <stdbool.h>

#define COUNT_MASK ((unsigned long long)FAILWIN_COUNT_MAX)

/* Another process's clock reading may be a little behind this one's: a
 * start after now is inside the window. */
static bool window_over(unsigned long long word, long long now_ms, long long window_ms)
{
	long long start = (long long)(word >> FAILWIN_COUNT_BITS);
	return now_ms - start > window_ms;
}

void failwin_add(failwin *w, long long now_ms, long long window_ms)
{
	unsigned long long old = atomic_load(w);
	/* Bounded: each failed exchange means another process's add went in. */
	for (int tries = 0; tries < 10000; tries++) {
		unsigned long long next;
		if (window_over(old, now_ms, window_ms))
			next = ((unsigned long long)now_ms << FAILWIN_COUNT_BITS) | 1;
		else
			next = old + ((old & COUNT_MASK) < COUNT_MASK);
		if (atomic_compare_exchange_weak(w, &old, next))
			return;
	}
}

unsigned failwin_count(failwin *w, long long now_ms, long long window_ms)
{
	unsigned long long word = atomic_load(w);
	if (window_over(word, now_ms, window_ms))
		return 0;
	return (unsigned)(word & COUNT_MASK);
}
