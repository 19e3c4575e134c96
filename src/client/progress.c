#include "progress.h"

#include "reply.h"
#include "sys.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

/* Redrawing more often than this only costs terminal bandwidth. */
#define PROGRESS_REDRAW_MS 200
#define PROGRESS_DEFAULT_COLS 80
#define PROGRESS_BAR_MIN 10

volatile sig_atomic_t progress_interrupted;

void progress_start(struct progress *p, FILE *bar_out, const char *name, uint64_t offset, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->out = bar_out;
	reply_sanitize(name, p->name, sizeof p->name);
	p->offset = offset;
	p->total = total;
	p->start_ms = clock_ms();
}

double progress_seconds(const struct progress *p)
{
	return (double)(clock_ms() - p->start_ms) / 1000.0;
}

static void format_bytes(double v, char *out, size_t outlen)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%.0f %s", v, units[u]);
	else
		snprintf(out, outlen, "%.2f %s", v, units[u]);
}

void progress_format_rate(double bytes, double seconds, char *out, size_t outlen)
{
	char b[32];
	/* A transfer faster than the clock's resolution still gets a rate. */
	format_bytes(bytes / (seconds > 0.001 ? seconds : 0.001), b, sizeof b);
	snprintf(out, outlen, "%s/s", b);
}

static int terminal_columns(FILE *f)
{
	struct winsize ws;
	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return PROGRESS_DEFAULT_COLS;
}

static void draw(struct progress *p)
{
	double secs = progress_seconds(p);
	uint64_t now = p->offset + p->bytes;
	char done[32], rate[48], eta[32] = "";
	format_bytes((double)now, done, sizeof done);
	progress_format_rate((double)p->bytes, secs, rate, sizeof rate);
	int pct = -1;
	if (p->total > 0) {
		pct = now >= p->total ? 100 : (int)(now * 100 / p->total);
		double speed = secs > 0.001 ? (double)p->bytes / secs : 0;
		double left_s = speed > 0 ? (double)(p->total - now) / speed : 0;
		if (now < p->total && speed > 0 && left_s < 100.0 * 3600) {
			long left = (long)left_s;
			snprintf(eta, sizeof eta, " ETA %ld:%02ld", left / 60, left % 60);
		} else if (now >= p->total) {
			snprintf(eta, sizeof eta, " ETA 0:00");
		}
	}
	char tail[128];
	if (pct >= 0)
		snprintf(tail, sizeof tail, " %3d%% %10s %12s%s", pct, done, rate, eta);
	else
		snprintf(tail, sizeof tail, " %10s %12s", done, rate);
	int cols = terminal_columns(p->out) - 1;
	int room = cols - (int)strlen(tail) - 3;
	int namew = room / 3;
	int barw = room - namew - 1;
	if (barw < PROGRESS_BAR_MIN || pct < 0) {
		barw = 0;
		namew = room;
	}
	if (namew < 1)
		namew = 1;
	char bar[256];
	int b = 0;
	if (barw > 0) {
		if (barw > (int)sizeof bar - 3)
			barw = (int)sizeof bar - 3;
		int fill = barw * pct / 100;
		bar[b++] = '[';
		for (int i = 0; i < barw - 2; i++)
			bar[b++] = i < fill - 1 ? '=' : i == fill - 1 ? '>' : ' ';
		bar[b++] = ']';
	}
	bar[b] = '\0';
	/* The name cut to namew columns, never inside a character (the
	 * name is sanitized, so each is whole; wide ones take two columns in
	 * the terminal's locale). Padded to the full width so a shorter
	 * redraw leaves no debris. */
	size_t len = strlen(p->name), at = 0;
	int chars = 0; /* columns */
	while (at < len) {
		size_t k = shown_char_len(p->name + at, len - at);
		if (k == 0)
			k = 1;
		wchar_t wc;
		mbstate_t ps;
		memset(&ps, 0, sizeof ps);
		int w = mbrtowc(&wc, p->name + at, k, &ps) == k ? wcwidth(wc) : 1;
		if (w < 0)
			w = 1;
		if (chars + w > namew)
			break;
		at += k;
		chars += w;
	}
	char line[sizeof p->name + 512];
	int n = snprintf(line, sizeof line, "%.*s%*s %s%s", (int)at, p->name, namew - chars, "", bar, tail);
	int width = chars + (namew - chars) + 1 + (int)strlen(bar) + (int)strlen(tail);
	if (n < 0 || n >= (int)sizeof line)
		n = (int)sizeof line - 1;
	fprintf(p->out, "\r%.*s%*s", n, line, width < cols ? cols - width : 0, "");
	fflush(p->out);
	p->drawn = true;
	p->drawn_ms = clock_ms();
}

int progress_update(void *ctx, uint64_t bytes)
{
	struct progress *p = ctx;
	p->bytes = bytes;
	if (p->out && clock_ms() - p->drawn_ms >= PROGRESS_REDRAW_MS)
		draw(p);
	return progress_interrupted ? 1 : 0;
}

void progress_end(struct progress *p, bool completed)
{
	if (!p->out || (!completed && !p->drawn))
		return;
	if (completed)
		draw(p);
	fputc('\n', p->out);
	fflush(p->out);
	p->out = NULL;
}

void progress_summary(const struct progress *p, FILE *f, bool sent)
{
	double secs = progress_seconds(p);
	char rate[48];
	progress_format_rate((double)p->bytes, secs, rate, sizeof rate);
	fprintf(f, "%s: %llu bytes %s in %.2f s (%s)\n", p->name, (unsigned long long)p->bytes,
		sent ? "sent" : "received", secs, rate);
	fflush(f);
}
