#include "transfer.h"

#include "progress.h"
#include "sys.h"
#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *transfer_leaf(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* SIGINT during a transfer cancels it (through progress_update) instead
 * of killing ferry with a temporary file left behind. SIGTERM and SIGHUP
 * cancel it too, and once the transfer is cleaned up they take their
 * usual course: ferry ends as killed by them. */
static const int caught_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define CAUGHT_SIGNALS (sizeof caught_signals / sizeof caught_signals[0])
static struct sigaction saved_actions[CAUGHT_SIGNALS];
static volatile sig_atomic_t fatal_signal;
/* 1 while ^C may cut a wait short (a copy, a retry's pause and
 * reconnect); 0 in the exchange that ends a transfer, which ^C must not
 * leave half done if the session is to go on. */
static volatile sig_atomic_t int_cuts_waits;

static void on_interrupt(int sig)
{
	progress_interrupted = 1;
	if (sig != SIGINT)
		fatal_signal = sig;
	if (sig != SIGINT || int_cuts_waits)
		io_wait_interrupted = 1;
}

/* Depth of interrupts_catch calls: a get or put catches for its whole
 * course (temporary file to clean-up), and the copy and retry steps in it
 * nest without losing a signal already recorded. */
static int catching;

static void interrupts_catch(void)
{
	int_cuts_waits = 1;
	if (catching++ > 0)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	progress_interrupted = 0;
	io_wait_interrupted = 0;
	fatal_signal = 0;
	for (size_t i = 0; i < CAUGHT_SIGNALS; i++) {
		/* One ignored at start-up (nohup, a background job) stays so. */
		sigaction(caught_signals[i], NULL, &saved_actions[i]);
		if (saved_actions[i].sa_handler != SIG_IGN)
			sigaction(caught_signals[i], &sa, NULL);
	}
}

static void interrupts_restore(void)
{
	if (--catching > 0)
		return;
	for (size_t i = 0; i < CAUGHT_SIGNALS; i++)
		sigaction(caught_signals[i], &saved_actions[i], NULL);
	io_wait_interrupted = 0;
}

/* After the cancelled transfer is cleaned up (ABOR sent, temporary file
 * removed) and the outermost catch is over: a SIGTERM or SIGHUP that
 * cancelled it now ends ferry. */
static void raise_pending_signal(void)
{
	if (catching > 0)
		return;
	int sig = fatal_signal;
	fatal_signal = 0;
	if (sig)
		raise(sig);
}

static FILE *bar_stream(const struct client *cl)
{
	return cl->progress && cl->stdout_tty && !cl->quiet ? stdout : NULL;
}

/* Says why a copy failed, from xfer_copy's result and side. */
static void copy_failure(struct client *cl, int64_t rc, enum xfer_side side, const char *local)
{
	if (rc == -EPROTO && local == NULL)
		return; /* TLS failed on the data connection: ftpc said why */
	if (rc == -ECANCELED)
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "interrupted");
	else if (side == XFER_SRC && local == NULL && rc == -EAGAIN)
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "data connection: no data within %d s",
			 cl->ftp.timeout_ms / 1000);
	else if (side != XFER_SRC && local == NULL && rc == -EAGAIN)
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "data connection: stalled for %d s",
			 cl->ftp.timeout_ms / 1000);
	else if (local)
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local, strerror((int)-rc));
	else
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "data connection: %s", strerror((int)-rc));
}

/* One transfer: the command that starts it and the local end. */
struct copy_job {
	const char *cmd;
	uint64_t rest;
	int file_fd;          /* the local side */
	bool to_server;
	bool ascii;
	const char *local_name; /* for error messages */
	struct progress *progress;
	int64_t moved;
	bool cut_tls;           /* protected data ended without close_notify */
	bool local_failed;      /* the copy failed on our side (file, cancel) */
	bool cleanup_after;     /* the caller removes a temporary file, then raise_pending_signal */
	uint64_t limit;         /* a download stops after this many bytes (0: none); reaching
				 * it aborts the transfer, and job->moved says it was reached */
};

/* Opens the data connection for job->cmd, copies, closes. On failure
 * cl->ftp.err says why: the local cause first when there is one. */
static int run_copy(struct client *cl, struct copy_job *job)
{
	struct ftpc_data d;
	/* Caught from the transfer command to its last reply: ^C cuts only
	 * the copy short (the exchanges around it must finish for the session
	 * to go on); SIGTERM and SIGHUP cut any wait. */
	interrupts_catch();
	int_cuts_waits = 0;
	int rc = ftpc_data_open(&cl->ftp, &d, job->rest, job->cmd);
	if (rc != 0) {
		interrupts_restore();
		if (progress_interrupted) {
			snprintf(cl->ftp.err, sizeof cl->ftp.err, "interrupted");
			rc = -ECANCELED;
		}
		if (!job->cleanup_after)
			raise_pending_signal();
		return rc;
	}
	if (progress_interrupted) {
		/* ^C while the transfer started: cancel it at once (ABOR). */
		job->local_failed = true;
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "interrupted");
		(void)ftpc_data_close(&cl->ftp, &d, true);
		interrupts_restore();
		if (!job->cleanup_after)
			raise_pending_signal();
		return -ECANCELED;
	}
	int_cuts_waits = 1;
	struct xfer_opts o = {
		.ascii = job->ascii,
		.to_wire = job->to_server,
		.progress = job->progress ? progress_update : NULL,
		.ctx = job->progress,
		.timeout_ms = cl->ftp.timeout_ms,
		.limit = job->limit,
	};
	enum xfer_side side = 0;
	int64_t n = ftpc_data_copy(&cl->ftp, &d, job->file_fd, &o, &side);
	if (n < 0 && progress_interrupted)
		n = -ECANCELED; /* a wait the signal cut short, not a network failure */
	/* The ABOR or 226 exchange must finish for the session to go on
	 * after ^C; after SIGTERM or SIGHUP ferry is ending: no waiting. */
	int_cuts_waits = 0;
	/* Cleared, then set again for a fatal signal: tested first, a
	 * SIGTERM landing between the test and the clear was forgotten, and
	 * ferry waited out the 226 and kept the file before ending. */
	io_wait_interrupted = 0;
	if (fatal_signal)
		io_wait_interrupted = 1;
	if (job->progress) {
		if (n >= 0)
			job->progress->bytes = (uint64_t)n;
		/* Before the final reply, which verbose mode prints. */
		progress_end(job->progress, n >= 0);
	}
	if (n < 0) {
		/* Which end failed: the file (local) or the data socket. */
		bool local_side = job->to_server ? side == XFER_SRC : side == XFER_DST;
		if (n == -ECANCELED)
			local_side = true;
		char why[FTPC_ERR_MAX];
		job->local_failed = local_side;
		copy_failure(cl, n, side, local_side ? job->local_name : NULL);
		memcpy(why, cl->ftp.err, sizeof why);
		/* A data socket that failed on our side mid-upload, or any local
		 * failure, must not look like a finished transfer to the server. */
		(void)ftpc_data_close(&cl->ftp, &d, true);
		interrupts_restore();
		memcpy(cl->ftp.err, why, sizeof why);
		if (!job->cleanup_after)
			raise_pending_signal();
		return n == -ECANCELED ? -ECANCELED : -EIO;
	}
	job->moved = n;
	job->cut_tls = d.cut_tls;
	if (job->limit && (uint64_t)n >= job->limit) {
		/* More than the server said it would send: stop it here (the
		 * caller says why) rather than store whatever else it sends. */
		(void)ftpc_data_close(&cl->ftp, &d, true);
		interrupts_restore();
		if (!job->cleanup_after)
			raise_pending_signal();
		return 0;
	}
	rc = ftpc_data_close(&cl->ftp, &d, false);
	interrupts_restore();
	if (rc != 0 && progress_interrupted) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "interrupted");
		rc = -ECANCELED;
	}
	if (!job->cleanup_after)
		raise_pending_signal();
	return rc;
}

/* The error for protected data that ended without close_notify. */
static void report_cut_tls(struct client *cl, const char *what)
{
	snprintf(cl->ftp.err, sizeof cl->ftp.err,
		 "the server ended the protected data connection without TLS close_notify: "
		 "%s may be cut short",
		 what);
}

static int want_type(struct client *cl)
{
	return ftpc_set_type(&cl->ftp, cl->ascii ? 'A' : 'I');
}

/* Whether a failed copy is the network's or the server's passing trouble
 * (a reset, a stall, a 4xx), worth another attempt; not ours, a cancel or
 * a 5xx. rc is run_copy's result. */
static bool worth_retrying(int rc, const struct copy_job *job)
{
	if (job->local_failed)
		return false;
	if (rc > 0)
		return rc >= 400 && rc < 500;
	switch (-rc) {
	case EIO:          /* run_copy: the data connection failed */
	case ECONNRESET:
	case ECONNABORTED:
	case ECONNREFUSED:
	case EPIPE:
	case ENOTCONN:     /* the control connection was lost */
	case ETIMEDOUT:
	case EAGAIN:       /* a wait ran past --timeout */
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
		return true;
	default:           /* a malformed reply, TLS refused, no such family ...: no cut */
		return false;
	}
}

/* Before another attempt at a cut transfer: "WHAT: why; NEXT (retry k of
 * n)" on stderr, a pause (a second more each time, up to five), and the
 * session opened again in the remote directory home when it was lost.
 * 0, or -1 when the session cannot go on (cl->ftp.err says why). */
static int prepare_retry(struct client *cl, const char *what, const char *next, const char *home, int attempt)
{
	/* ^C, SIGTERM and SIGHUP cancel the pause and the reconnect as they
	 * cancel a transfer: the caller then cleans up. Caught before the
	 * line that announces the pause is out. */
	interrupts_catch();
	if (progress_interrupted) { /* came while the cut transfer ended */
		interrupts_restore();
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "interrupted");
		return -ECANCELED;
	}
	fflush(stdout);
	fprintf(stderr, "%s: %s; %s (retry %d of %d)\n", what, cl->ftp.err, next, attempt + 1, cl->retries);
	long long pause = (long long)CLIENT_RETRY_PAUSE_MS * (attempt + 1);
	poll(NULL, 0, (int)(pause < CLIENT_RETRY_PAUSE_MAX_MS ? pause : CLIENT_RETRY_PAUSE_MAX_MS));
	int rc = 0;
	if (!progress_interrupted && cl->ftp.state != FTPC_LOGGED_IN)
		rc = client_reconnect(cl, home);
	if (rc == 0 && !progress_interrupted)
		rc = want_type(cl);
	interrupts_restore();
	if (progress_interrupted) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "interrupted");
		return -ECANCELED;
	}
	return rc == 0 ? 0 : -1;
}

/* The remote directory a retry returns to after a reconnect: the one cd
 * last went to, else what PWD says now ("" when the server will not say:
 * the login directory then). False when it cannot be known because the
 * connection is lost already: a reconnect could land anywhere. */
static bool remember_home(struct client *cl, char *home, size_t len)
{
	if (cl->remote_dir_known) {
		snprintf(home, len, "%s", cl->remote_dir);
		return true;
	}
	if (ftpc_pwd(&cl->ftp, home, len) != 0)
		home[0] = '\0';
	return cl->ftp.state != FTPC_DISCONNECTED;
}

/* A step before the transfer (TYPE, SIZE) found the control connection
 * lost, as when the server ended an idle session (vsftpd's "421
 * Timeout."): with retries left and a known directory to return to
 * (home not NULL), connects again so that the step can be done again.
 * 0 then; otherwise the caller fails with cl->ftp.err. */
static int reconnect_for_retry(struct client *cl, const char *what, const char *home, int *attempt)
{
	if (cl->ftp.state != FTPC_DISCONNECTED || !home || *attempt >= cl->retries)
		return -1;
	return prepare_retry(cl, what, "connecting again", home, (*attempt)++);
}

static void print_summary(struct client *cl, struct progress *p, bool sent, bool to_stdout)
{
	if (!client_summaries(cl))
		return;
	progress_summary(p, to_stdout ? stderr : stdout, sent);
}

#define TEMP_SUFFIX ".ferry-XXXXXX"

/* Builds the temporary name template "<dir>/.<leaf>.ferry-XXXXXX", or
 * "<dir>/.ferry-XXXXXX" when the leaf is too long to hold the additions
 * within NAME_MAX: still beside the target, so the rename stays atomic. */
static int temp_template(const char *final, char *out, size_t outlen)
{
	const char *leaf = transfer_leaf(final);
	int dirlen = (int)(leaf - final);
	int n;
	if (1 + strlen(leaf) + strlen(TEMP_SUFFIX) <= NAME_MAX)
		n = snprintf(out, outlen, "%.*s.%s" TEMP_SUFFIX, dirlen, final, leaf);
	else
		n = snprintf(out, outlen, "%.*s" TEMP_SUFFIX, dirlen, final);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* The finished temporary file fd is about to be renamed over local.
 * mkostemp made it 0600: it gets the mode a plain create would, or, when
 * it replaces a regular file, that file's permission bits and, where we
 * may, its owner and group, so that replacing a private file does not
 * widen who can read it. Failures leave it 0600, the safe side. */
static void take_place_of(int fd, const char *local)
{
	struct stat old;
	if (stat(local, &old) != 0 || !S_ISREG(old.st_mode)) {
		mode_t mask = umask(0);
		umask(mask);
		(void)fchmod(fd, 0666 & ~mask);
		return;
	}
	/* Not the set-id bits: they were granted to the old contents. */
	mode_t mode = old.st_mode & 0777;
	if (fchown(fd, old.st_uid, old.st_gid) != 0 && fchown(fd, (uid_t)-1, old.st_gid) != 0)
		mode &= ~(mode_t)070 | ((mode & 07) << 3); /* our group gets no more than others had */
	(void)fchmod(fd, mode);
}

/* Creates the temporary file a download into local goes to, its name in
 * temp. The file descriptor, or -1 after saying why. */
static int temp_create(struct client *cl, const char *local, char *temp, size_t len)
{
	if (temp_template(local, temp, len) != 0)
		return client_fail(cl, "local: %s: name too long", local);
	int fd = mkostemp(temp, O_CLOEXEC);
	if (fd < 0) /* never written in place: a cut download would be left under its name */
		return client_fail(cl, "local: cannot create a temporary file beside %s: %s", local,
				   strerror(errno));
	return fd;
}

/* Opens what a download into local writes to: a temporary file beside it
 * (its name in temp), or, for a device or FIFO (/dev/null, a pipe into
 * another program), local itself with temp "": a temporary file renamed
 * over it would replace the device itself. -1 after saying why. */
static int target_open(struct client *cl, const char *local, char *temp, size_t len)
{
	struct stat st;
	temp[0] = '\0';
	if (stat(local, &st) == 0 && !S_ISREG(st.st_mode)) {
		int fd = open(local, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return client_fail(cl, "local: cannot open %s: %s", local, strerror(errno));
		return fd;
	}
	return temp_create(cl, local, temp, len);
}

/* Puts the finished (fsynced) temporary file temp in local's place. 0, or
 * -EIO with cl->ftp.err saying why. */
static int temp_install(struct client *cl, int fd, const char *temp, const char *local)
{
	take_place_of(fd, local);
	if (rename(temp, local) != 0) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: cannot rename to %.300s: %s", local,
			 strerror(errno));
		return -EIO;
	}
	return 0;
}

/* mget's local names come from the server's listing: each must name a
 * regular file here (or nothing yet), never standard output, a directory
 * to write into, or a FIFO or device to write through, be it directly or
 * through a symbolic link. A link to a regular file is replaced. */
static int check_server_named(struct client *cl, const char **local)
{
	if (strcmp(*local, "-") == 0)
		*local = "./-";
	struct stat lst, st;
	if (lstat(*local, &lst) != 0 || S_ISREG(lst.st_mode))
		return 0;
	if (S_ISLNK(lst.st_mode) && (stat(*local, &st) != 0 || S_ISREG(st.st_mode)))
		return 0;
	return client_fail(cl, "get: %s: not a regular file here; not written", *local);
}

/* mget of a name NLST listed that RETR refused with 550: NLST lists
 * directories and files alike, and most servers refuse RETR of a
 * directory as of a missing file. When CWD into it works (and back to
 * where PWD says we are), it is a directory: skipped with a note, as lftp
 * does, and 1. 0: not a directory, cl->ftp.err as it was. -1: the session
 * could not return to its directory and is closed (said why). */
static int skip_if_directory(struct client *cl, const char *remote)
{
	char why[FTPC_ERR_MAX], here[FERRY_PATH_MAX];
	memcpy(why, cl->ftp.err, sizeof why);
	if (cl->ftp.state != FTPC_LOGGED_IN || ftpc_pwd(&cl->ftp, here, sizeof here) != 0 ||
	    ftpc_command_ok(&cl->ftp, "CWD %s", remote) != 0) {
		memcpy(cl->ftp.err, why, sizeof why);
		return 0;
	}
	if (ftpc_command_ok(&cl->ftp, "CWD %s", here) != 0) {
		/* Commands after this one must not run in another directory. */
		client_fail(cl, "get: %s is a directory, and going back to %s failed: %s; closing the session",
			    remote, here, cl->ftp.err);
		ftpc_quit(&cl->ftp);
		return -1;
	}
	client_note(cl, "%s: a directory, skipped", remote);
	return 1;
}

static int get_caught(struct client *cl, const char *remote, const char *local, enum get_mode mode)
{
	char target[PATH_MAX];
	bool resume = mode == GET_RESUME;
	const char *leaf = transfer_leaf(remote);
	if (!local) {
		if (!*leaf || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
			return client_fail(cl, "get: %s: give a local name", remote);
		local = leaf;
	}
	if (mode == GET_SERVER_NAMED && check_server_named(cl, &local) != 0)
		return -1;
	bool to_stdout = strcmp(local, "-") == 0;
	struct stat st;
	if (mode != GET_SERVER_NAMED && !to_stdout && stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (!*leaf || strcmp(leaf, "..") == 0 || strcmp(leaf, ".") == 0)
			return client_fail(cl, "get: %s: give a local name", remote);
		int n = snprintf(target, sizeof target, "%s/%s", local, leaf);
		if (n < 0 || (size_t)n >= sizeof target)
			return client_fail(cl, "local: %s/%s: name too long", local, leaf);
		local = target;
	}
	if (resume && cl->ascii)
		return client_fail(cl, "reget: resuming needs binary mode (type is ascii)");
	if (resume && to_stdout)
		return client_fail(cl, "reget: cannot resume into standard output");

	/* mget's failure lines name the file: the user typed a pattern. */
	char named[FERRY_PATH_MAX + 8];
	const char *what = resume ? "reget" : "get";
	if (mode == GET_SERVER_NAMED && snprintf(named, sizeof named, "get: %s", remote) < (int)sizeof named)
		what = named;
	char home[FERRY_PATH_MAX] = "";
	bool home_known = cl->retries > 0 && remember_home(cl, home, sizeof home);
	int attempt = 0; /* retries used, before the transfer and in it */
	uint64_t offset = 0, total = 0;
	bool have_size;
	do
		have_size = !cl->ascii && ftpc_size(&cl->ftp, remote, &total) == 0;
	while (reconnect_for_retry(cl, what, home_known ? home : NULL, &attempt) == 0);
	if (cl->ftp.state == FTPC_DISCONNECTED)
		return client_fail_ftp(cl, what);
	int fd;
	char temp[PATH_MAX] = "";
	bool made_here = false; /* reget created the local file: gone again if nothing came */
	if (resume) {
		/* Not O_APPEND: splice(2) refuses such files; REST says where. */
		fd = open(local, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		made_here = fd >= 0;
		if (fd < 0 && errno == EEXIST)
			fd = open(local, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return client_fail(cl, "local: cannot open %s: %s", local, strerror(errno));
		off_t end = lseek(fd, 0, SEEK_END);
		offset = end > 0 ? (uint64_t)end : 0;
		if (have_size && offset >= total) {
			close(fd);
			if (offset > total)
				return client_fail(cl, "reget: local %s (%llu bytes) is larger than remote (%llu bytes)",
						   local, (unsigned long long)offset, (unsigned long long)total);
			client_note(cl, "%s: already complete (%llu bytes)", local, (unsigned long long)total);
			return 0;
		}
	} else if (to_stdout) {
		fd = STDOUT_FILENO;
		fflush(stdout);
	} else {
		fd = target_open(cl, local, temp, sizeof temp);
		if (fd < 0)
			return -1;
	}

	int rc;
	while ((rc = want_type(cl)) != 0 && reconnect_for_retry(cl, what, home_known ? home : NULL, &attempt) == 0)
		continue;
	struct progress p;
	char cmd[FERRY_LINE_MAX + 1];
	int n = snprintf(cmd, sizeof cmd, "RETR %s", remote);
	if (rc == 0 && (n < 0 || (size_t)n >= sizeof cmd)) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "name too long");
		rc = -ENAMETOOLONG;
	}
	if (rc == 0) {
		/* A cut download resumes where our own file (temporary, or the
		 * one reget extends) ends, in binary mode; in this remote
		 * directory should the control connection have to be opened again. */
		bool can_retry = home_known && !cl->ascii && (resume || *temp);
		const uint64_t start = offset; /* the local file before this get */
		struct copy_job job = {.cmd = cmd, .file_fd = fd, .to_server = false, .ascii = cl->ascii,
				       .local_name = local, .progress = &p, .cleanup_after = true};
		progress_start(&p, to_stdout ? NULL : bar_stream(cl), remote, offset, have_size ? total : 0);
		for (;; attempt++) {
			p.offset = offset;
			job.rest = offset;
			/* One byte past SIZE is enough to know it is too much. */
			job.limit = have_size && total >= offset ? total - offset + 1 : 0;
			job.moved = 0;
			rc = run_copy(cl, &job);
			uint64_t have = offset + (uint64_t)job.moved;
			bool again = false;
			if (rc == 0 && have_size && have > total) {
				/* More than SIZE said: a server that answered REST but
				 * sent from the start, or a file that grew. A resumed
				 * file goes back to what it was, not left with a
				 * duplicated head. */
				if (offset > 0)
					snprintf(cl->ftp.err, sizeof cl->ftp.err,
						 "server sent more than the %llu bytes after REST %llu that SIZE allows "
						 "(did it ignore REST?)%s%.200s%s",
						 (unsigned long long)(total - offset), (unsigned long long)offset,
						 resume ? "; " : "", resume ? local : "", resume ? " left as it was" : "");
				else
					snprintf(cl->ftp.err, sizeof cl->ftp.err,
						 "server sent more than the %llu bytes its SIZE reported; stopped it there",
						 (unsigned long long)total);
				if (resume && ftruncate(fd, (off_t)start) != 0)
					snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local,
						 strerror(errno));
				rc = -EIO;
			} else if (rc == 0 && have_size && have != total) {
				snprintf(cl->ftp.err, sizeof cl->ftp.err,
					 "transfer incomplete: %llu of %llu bytes arrived",
					 (unsigned long long)have, (unsigned long long)total);
				rc = -EIO;
				again = true;
			} else if (rc == 0 && job.cut_tls && !have_size) {
				/* With SIZE matched the bytes are all there; without
				 * it only close_notify could have said so. */
				report_cut_tls(cl, "the file");
				rc = -EIO;
				again = true;
			} else if (rc != 0) {
				again = worth_retrying(rc, &job);
			}
			if (rc == 0 || !again || !can_retry || attempt >= cl->retries)
				break;
			/* Without SIZE nothing would show a server ignoring REST
			 * (a head sent twice): a new file then starts over. reget
			 * asked for REST's semantics and keeps them. */
			bool restart = !have_size && !resume;
			off_t end = restart ? (ftruncate(fd, 0) == 0 ? lseek(fd, 0, SEEK_SET) : -1) : lseek(fd, 0, SEEK_END);
			if (end < 0) {
				snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local, strerror(errno));
				break;
			}
			char next[64];
			if (restart)
				snprintf(next, sizeof next, "starting again from the first byte");
			else
				snprintf(next, sizeof next, "resuming at byte %lld", (long long)end);
			int pr = prepare_retry(cl, what, next, home, attempt);
			if (pr != 0) {
				if (pr == -ECANCELED)
					rc = -ECANCELED;
				break;
			}
			offset = (uint64_t)end;
		}
		/* The summary counts what every attempt brought. */
		p.offset = start;
		p.bytes = offset + (uint64_t)job.moved - start;
	}
	if (rc == 0 && !to_stdout && fsync(fd) != 0 && errno != EINVAL) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local, strerror(errno));
		rc = -EIO;
	}
	if (rc == 0 && *temp)
		rc = temp_install(cl, fd, temp, local);
	if (!to_stdout && close(fd) != 0 && rc == 0) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local, strerror(errno));
		rc = -EIO;
	}
	if (rc != 0) {
		if (*temp)
			unlink(temp);
		struct stat now;
		if (made_here && stat(local, &now) == 0 && S_ISREG(now.st_mode) && now.st_size == 0)
			unlink(local);
		raise_pending_signal();
		if (mode == GET_SERVER_NAMED && rc == R_NO_FILE) {
			int dir = skip_if_directory(cl, remote);
			if (dir != 0)
				return dir > 0 ? 0 : -1;
		}
		return client_fail_ftp(cl, what);
	}
	print_summary(cl, &p, false, to_stdout);
	raise_pending_signal(); /* one that came as the last reply was read */
	return 0;
}

static int put_caught(struct client *cl, const char *local, const char *remote, enum put_mode mode)
{
	const char *what = mode == PUT_RESUME ? "reput" : mode == PUT_APPEND ? "append" : "put";
	if (!remote) {
		remote = transfer_leaf(local);
		if (!*remote)
			return client_fail(cl, "%s: %s: give a remote name", what, local);
	}
	int fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return client_fail(cl, "local: cannot open %s: %s", local, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
		close(fd);
		return client_fail(cl, "local: cannot send %s: %s", local, strerror(e));
	}
	char home[FERRY_PATH_MAX] = "";
	bool home_known = cl->retries > 0 && remember_home(cl, home, sizeof home);
	int attempt = 0; /* retries used, before the transfer and in it */
	uint64_t offset = 0;
	if (mode == PUT_RESUME) {
		if (cl->ascii) {
			close(fd);
			return client_fail(cl, "reput: resuming needs binary mode (type is ascii)");
		}
		int s;
		do
			s = ftpc_size(&cl->ftp, remote, &offset);
		while (reconnect_for_retry(cl, what, home_known ? home : NULL, &attempt) == 0);
		if (s < 0 || (s > 0 && s != R_NO_FILE)) {
			close(fd);
			return client_fail_ftp(cl, what);
		}
		if (s == R_NO_FILE)
			offset = 0;
		if (S_ISREG(st.st_mode) && offset > (uint64_t)st.st_size) {
			close(fd);
			return client_fail(cl, "reput: remote %s (%llu bytes) is larger than local (%llu bytes)",
					   remote, (unsigned long long)offset, (unsigned long long)st.st_size);
		}
		if (S_ISREG(st.st_mode) && offset == (uint64_t)st.st_size && offset > 0) {
			close(fd);
			client_note(cl, "%s: already complete (%llu bytes)", remote, (unsigned long long)offset);
			return 0;
		}
		if (offset > 0 && lseek(fd, (off_t)offset, SEEK_SET) < 0) {
			int e = errno;
			close(fd);
			return client_fail(cl, "local: cannot seek in %s: %s", local, strerror(e));
		}
	}
	char cmd[FERRY_LINE_MAX + 1];
	int n = snprintf(cmd, sizeof cmd, "%s %s", mode == PUT_STORE ? "STOR" : "APPE", remote);
	if (n < 0 || (size_t)n >= sizeof cmd) {
		close(fd);
		return client_fail(cl, "%s: %s: name too long", what, remote);
	}
	int rc;
	while ((rc = want_type(cl)) != 0 && reconnect_for_retry(cl, what, home_known ? home : NULL, &attempt) == 0)
		continue;
	struct progress p;
	progress_start(&p, bar_stream(cl), local, offset, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
	if (rc == 0) {
		/* A cut STOR is sent again from the first byte: what servers keep
		 * of a cut upload differs (ferryd nothing, others a part, or the
		 * old file), so no offset on the server can be trusted. APPE and
		 * reput are not repeated: a part may already have been added. */
		bool can_retry = home_known && mode == PUT_STORE && S_ISREG(st.st_mode);
		struct copy_job job = {.cmd = cmd, .file_fd = fd, .to_server = true, .ascii = cl->ascii,
				       .local_name = local, .progress = &p};
		for (;; attempt++) {
			rc = run_copy(cl, &job);
			if (rc == 0 || !can_retry || attempt >= cl->retries || !worth_retrying(rc, &job))
				break;
			if (lseek(fd, 0, SEEK_SET) != 0) {
				snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local, strerror(errno));
				break;
			}
			int pr = prepare_retry(cl, what, "sending it again from the start", home, attempt);
			if (pr != 0) {
				if (pr == -ECANCELED)
					rc = -ECANCELED;
				break;
			}
			progress_start(&p, bar_stream(cl), local, 0, (uint64_t)st.st_size);
		}
	}
	close(fd);
	if (rc == -ECANCELED) {
		/* Cancelled in a retry's pause: a SIGTERM or SIGHUP ends ferry
		 * now, after the one line saying so. */
		client_fail_ftp(cl, what);
		raise_pending_signal();
		return -1;
	}
	if (rc != 0)
		return client_fail_ftp(cl, what);
	print_summary(cl, &p, true, false);
	return 0;
}

/* A get or put catches SIGINT, SIGTERM and SIGHUP from before its
 * temporary file exists until it is cleaned up; a SIGTERM or SIGHUP then
 * ends ferry as it would have. */
int transfer_get(struct client *cl, const char *remote, const char *local, enum get_mode mode)
{
	interrupts_catch();
	int rc = get_caught(cl, remote, local, mode);
	interrupts_restore();
	raise_pending_signal();
	return rc;
}

int transfer_put(struct client *cl, const char *local, const char *remote, enum put_mode mode)
{
	interrupts_catch();
	int rc = put_caught(cl, local, remote, mode);
	interrupts_restore();
	raise_pending_signal();
	return rc;
}

/* A listing for a terminal: the server chose the names in it, and a
 * terminal acts on the escape sequences they may hold, so control
 * characters (but tab and line ends) and bytes that are not UTF-8 are shown
 * as '?', and CRLF as the local line end. */
static int listing_to_terminal(struct client *cl, const char *verb, const char *path)
{
	struct buf b;
	buf_init(&b, TRANSFER_LISTING_MAX);
	int rc = transfer_listing_fetch(cl, verb, path, &b);
	for (size_t i = 0; rc == 0 && i < b.len;) {
		char ch = b.data[i];
		if (ch == '\r' && i + 1 < b.len && b.data[i + 1] == '\n') {
			i++;
			continue;
		}
		size_t k = ch == '\n' || ch == '\t' ? 1 : shown_char_len(b.data + i, b.len - i);
		if (k == 0) {
			putchar('?');
			i++;
			continue;
		}
		fwrite(b.data + i, 1, k, stdout);
		i += k;
	}
	fflush(stdout);
	buf_free(&b);
	return rc == 0 ? 0 : client_fail_ftp(cl, NULL);
}

int transfer_listing_show(struct client *cl, const char *verb, const char *path)
{
	if (cl->stdout_tty)
		return listing_to_terminal(cl, verb, path);
	char cmd[FERRY_LINE_MAX + 1];
	int n = path ? snprintf(cmd, sizeof cmd, "%s %s", verb, path) : snprintf(cmd, sizeof cmd, "%s", verb);
	if (n < 0 || (size_t)n >= sizeof cmd)
		return client_fail(cl, "%s: name too long", verb);
	fflush(stdout);
	struct copy_job job = {.cmd = cmd, .file_fd = STDOUT_FILENO, .to_server = false, .ascii = true,
			       .local_name = "standard output"};
	if (run_copy(cl, &job) != 0)
		return client_fail_ftp(cl, NULL);
	if (job.cut_tls) {
		report_cut_tls(cl, "the listing");
		return client_fail_ftp(cl, NULL);
	}
	return 0;
}

/* A listing into local, as a download is stored: through a temporary
 * file renamed over it once complete; a FIFO or device in place. */
static int listing_save_caught(struct client *cl, const char *cmd, const char *local)
{
	char temp[PATH_MAX] = "";
	struct stat st;
	if (stat(local, &st) == 0 && S_ISDIR(st.st_mode))
		return client_fail(cl, "local: %s is a directory: give a file name for the listing", local);
	int fd = target_open(cl, local, temp, sizeof temp);
	if (fd < 0)
		return -1;
	struct copy_job job = {.cmd = cmd, .file_fd = fd, .to_server = false, .ascii = true,
			       .local_name = local, .cleanup_after = true};
	int rc = run_copy(cl, &job);
	if (rc == 0 && job.cut_tls) {
		report_cut_tls(cl, "the listing");
		rc = -EIO;
	}
	if (rc == 0 && fsync(fd) != 0 && errno != EINVAL) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local, strerror(errno));
		rc = -EIO;
	}
	if (rc == 0 && *temp)
		rc = temp_install(cl, fd, temp, local);
	if (close(fd) != 0 && rc == 0) {
		snprintf(cl->ftp.err, sizeof cl->ftp.err, "local: %.300s: %s", local, strerror(errno));
		rc = -EIO;
	}
	if (rc != 0 && *temp)
		unlink(temp);
	return rc == 0 ? 0 : client_fail_ftp(cl, NULL);
}

int transfer_listing_save(struct client *cl, const char *verb, const char *path, const char *local)
{
	char cmd[FERRY_LINE_MAX + 1];
	int n = path ? snprintf(cmd, sizeof cmd, "%s %s", verb, path) : snprintf(cmd, sizeof cmd, "%s", verb);
	if (n < 0 || (size_t)n >= sizeof cmd)
		return client_fail(cl, "%s: name too long", verb);
	interrupts_catch();
	int rc = listing_save_caught(cl, cmd, local);
	interrupts_restore();
	raise_pending_signal();
	return rc;
}

int transfer_listing_fetch(struct client *cl, const char *verb, const char *path, struct buf *out)
{
	char cmd[FERRY_LINE_MAX + 1];
	struct ftpc *c = &cl->ftp;
	int n = path && *path ? snprintf(cmd, sizeof cmd, "%s %s", verb, path) : snprintf(cmd, sizeof cmd, "%s", verb);
	if (n < 0 || (size_t)n >= sizeof cmd) {
		snprintf(c->err, sizeof c->err, "name too long");
		return -ENAMETOOLONG;
	}
	struct ftpc_data d;
	int rc = ftpc_data_open(c, &d, 0, cmd);
	if (rc != 0)
		return rc;
	char chunk[16384];
	for (;;) {
		ssize_t r = ftpc_data_read(c, &d, chunk, sizeof chunk);
		if (r == 0)
			break;
		if (r < 0) {
			if (r != -EPROTO)
				snprintf(c->err, sizeof c->err, "data connection: %s",
					 r == -EAGAIN ? "timed out" : strerror((int)-r));
			ftpc_data_close(c, &d, true);
			return (int)r;
		}
		if (buf_append(out, chunk, (size_t)r) != 0) {
			snprintf(c->err, sizeof c->err, "listing larger than %d MiB", TRANSFER_LISTING_MAX >> 20);
			ftpc_data_close(c, &d, true);
			return -EMSGSIZE;
		}
	}
	rc = ftpc_data_close(c, &d, false);
	if (rc == 0 && d.cut_tls) {
		report_cut_tls(cl, "the listing");
		rc = -EIO;
	}
	return rc;
}
