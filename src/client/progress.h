/* progress.h - the transfer progress bar and the summary line.
 *
 * The bar (name, bar, percent, bytes, rate, ETA) is drawn on a terminal
 * only, redrawn at most a few times a second, and erased before the
 * summary line. The summary line is printed after every transfer:
 *
 *   <file>: <N> bytes <sent|received> in <T> s (<rate>)
 *
 * progress_update is an xfer_progress_fn; it also stops the copy when the
 * user interrupted it (progress_interrupted). */
#ifndef FERRY_PROGRESS_H
#define FERRY_PROGRESS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct progress {
	FILE *out;          /* where the bar goes; NULL = no bar */
	char name[1024];    /* as shown: reply_sanitize()d */
	uint64_t offset;    /* bytes already there before this transfer (resume) */
	uint64_t total;     /* expected final size including offset; 0 = unknown */
	uint64_t bytes;     /* moved by this transfer */
	long long start_ms;
	long long drawn_ms;
	bool drawn;
};

/* Set by the SIGINT handler while a transfer runs. */
extern volatile sig_atomic_t progress_interrupted;

void progress_start(struct progress *p, FILE *bar_out, const char *name, uint64_t offset, uint64_t total);
int progress_update(void *ctx, uint64_t bytes);
/* Ends the bar's line: with the final state drawn when the copy
 * completed, as it stood when it failed. Nothing if no bar was shown. */
void progress_end(struct progress *p, bool completed);
/* Seconds since progress_start. */
double progress_seconds(const struct progress *p);
/* "12.3 MiB/s" style rate for bytes over seconds. */
void progress_format_rate(double bytes, double seconds, char *out, size_t outlen);
/* Prints the summary line to f. */
void progress_summary(const struct progress *p, FILE *f, bool sent);

#endif
