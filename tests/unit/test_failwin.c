/* Failed-login windows: counting, expiry, saturation, and no count lost
 * when two threads count the first event of a new window at once. */
#include "check.h"
#include "failwin.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#define WINDOW 60000

TEST(counts_within_a_window)
{
	failwin w = 0;
	CHECK(failwin_count(&w, 1000000, WINDOW) == 0);
	failwin_add(&w, 1000000, WINDOW);
	failwin_add(&w, 1000500, WINDOW);
	failwin_add(&w, 1000000 + WINDOW, WINDOW);
	CHECK(failwin_count(&w, 1000000 + WINDOW, WINDOW) == 3);
	/* a reading a little behind the window's start is inside it */
	CHECK(failwin_count(&w, 999990, WINDOW) == 3);
}

TEST(window_expires_and_restarts)
{
	failwin w = 0;
	for (int i = 0; i < 5; i++)
		failwin_add(&w, 2000000, WINDOW);
	CHECK(failwin_count(&w, 2000000 + WINDOW + 1, WINDOW) == 0);
	failwin_add(&w, 2000000 + WINDOW + 1, WINDOW);
	CHECK(failwin_count(&w, 2000000 + WINDOW + 1, WINDOW) == 1);
	CHECK(failwin_count(&w, 2000000 + 2 * WINDOW + 1, WINDOW) == 1);
	CHECK(failwin_count(&w, 2000000 + 2 * WINDOW + 2, WINDOW) == 0);
}

TEST(count_saturates)
{
	failwin w = 0;
	for (unsigned i = 0; i < FAILWIN_COUNT_MAX + 10u; i++)
		failwin_add(&w, 3000000, WINDOW);
	CHECK(failwin_count(&w, 3000000, WINDOW) == FAILWIN_COUNT_MAX);
	/* saturation does not carry into the window's start */
	CHECK(failwin_count(&w, 3000000 + WINDOW, WINDOW) == FAILWIN_COUNT_MAX);
}

/* Two threads count one event each at the start of every round's fresh
 * window, released together; both must be counted in every round. */
enum { ROUNDS = 100000, BARRIER_MS = 20000 };
static failwin shared_w;
static atomic_int arrived, released_round;
static atomic_int lost_rounds;
static atomic_bool barrier_gave_up;

static long long monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for the other racer. It spins, so the two leave together, but
 * yields now and then: with the other suite on the same two cores the
 * racer it waits for may need this core. A barrier that does not hold
 * within BARRIER_MS stops both racers; a round whose adds were not both
 * made would otherwise count as lost. */
static bool round_barrier(int round)
{
	if (atomic_fetch_add(&arrived, 1) % 2 == 1)
		atomic_store(&released_round, round);
	long long deadline = monotonic_ms() + BARRIER_MS;
	for (unsigned spin = 1; atomic_load(&released_round) < round; spin++) {
		if (spin % 1024 != 0)
			continue;
		if (atomic_load(&barrier_gave_up))
			return false;
		sched_yield();
		if (monotonic_ms() > deadline) {
			atomic_store(&barrier_gave_up, true);
			return false;
		}
	}
	return true;
}

static void *racer(void *arg)
{
	for (int r = 1; r <= ROUNDS; r++) {
		long long now = (long long)r * (WINDOW + 1) * 4;
		if (!round_barrier(2 * r - 1))
			break;
		failwin_add(&shared_w, now, WINDOW);
		if (!round_barrier(2 * r))
			break;
		/* both adds are in; one thread checks before the next round */
		if (arg != NULL && failwin_count(&shared_w, now, WINDOW) != 2)
			atomic_fetch_add(&lost_rounds, 1);
	}
	return NULL;
}

TEST(first_events_of_a_window_are_never_lost)
{
	pthread_t a, b;
	CHECK(pthread_create(&a, NULL, racer, NULL) == 0);
	CHECK(pthread_create(&b, NULL, racer, &shared_w) == 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	if (atomic_load(&lost_rounds))
		fprintf(stderr, "  %d of %d rounds lost a count\n", atomic_load(&lost_rounds), ROUNDS);
	CHECK(atomic_load(&lost_rounds) == 0);
	CHECK(!atomic_load(&barrier_gave_up));
}

int main(void)
{
	RUN_ONE(counts_within_a_window);
	RUN_ONE(window_expires_and_restarts);
	RUN_ONE(count_saturates);
	RUN_ONE(first_events_of_a_window_are_never_lost);
	return check_tests_failed != 0;
}
