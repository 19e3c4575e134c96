/* replay_main.c - runs a fuzz target over its corpus without libFuzzer.
 *
 *   replay_<target> DIR|FILE...
 *
 * Linked with one target's LLVMFuzzerTestOneInput, built with the normal
 * compiler, this is how `make test` replays fuzz/corpus/<target>/: every
 * regular file of each directory (in name order) is passed to the target
 * once. The result is one line on the original standard output (targets
 * may redirect fd 1):
 *   PASS fuzz/<target> (N inputs)
 *   FAIL fuzz/<target>: <file>        a property check aborted, or a crash
 * <target> is the base name of the first directory argument. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int out_fd = 1;
static char target_name[256] = "?";
static char current[4096];

static void say(const char *a, const char *b, const char *c)
{
	/* Async-signal-safe: also used from the crash handler. */
	ssize_t w = write(out_fd, a, strlen(a));
	w = write(out_fd, b, strlen(b));
	w = write(out_fd, c, strlen(c));
	(void)w;
}

static void on_crash(int sig)
{
	say("FAIL fuzz/", target_name, ": ");
	say(current, "\n", "");
	signal(sig, SIG_DFL);
	raise(sig);
}

static int run_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0; /* not an input */
	}
	size_t n = (size_t)st.st_size;
	/* Exactly n bytes, as libFuzzer passes them: ASan sees overreads. */
	uint8_t *data = malloc(n ? n : 1);
	if (!data) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, data + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	snprintf(current, sizeof current, "%s", path);
	LLVMFuzzerTestOneInput(data, got);
	free(data);
	return 1;
}

static int only_visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR|FILE...\n", argv[0]);
		return 2;
	}
	out_fd = dup(1);
	if (out_fd < 0)
		out_fd = 1;
	const char *first = argv[1];
	size_t len = strlen(first);
	while (len > 1 && first[len - 1] == '/')
		len--;
	const char *base = first;
	for (size_t i = 0; i < len; i++)
		if (first[i] == '/' && i + 1 < len)
			base = first + i + 1;
	snprintf(target_name, sizeof target_name, "%.*s", (int)(len - (size_t)(base - first)), base);

	int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], on_crash);
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);

	int inputs = 0;
	for (int a = 1; a < argc; a++) {
		struct stat st;
		if (stat(argv[a], &st) < 0) {
			dprintf(out_fd, "FAIL fuzz/%s: %s: %s\n", target_name, argv[a], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			int r = run_file(argv[a]);
			if (r < 0) {
				dprintf(out_fd, "FAIL fuzz/%s: %s: %s\n", target_name, argv[a], strerror(-r));
				return 1;
			}
			inputs += r;
			continue;
		}
		struct dirent **names;
		int n = scandir(argv[a], &names, only_visible, alphasort);
		if (n < 0) {
			dprintf(out_fd, "FAIL fuzz/%s: %s: %s\n", target_name, argv[a], strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[a], names[i]->d_name);
			int r = run_file(path);
			if (r < 0) {
				dprintf(out_fd, "FAIL fuzz/%s: %s: %s\n", target_name, path, strerror(-r));
				return 1;
			}
			inputs += r;
			free(names[i]);
		}
		free(names);
	}
	if (inputs == 0) {
		dprintf(out_fd, "FAIL fuzz/%s: no inputs\n", target_name);
		return 1;
	}
	dprintf(out_fd, "PASS fuzz/%s (%d inputs)\n", target_name, inputs);
	return 0;
}
