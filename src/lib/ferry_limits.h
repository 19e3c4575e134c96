/* ferry_limits.h - every limit ferry enforces, in one place, each with its reason. */
#ifndef FERRY_LIMITS_H
#define FERRY_LIMITS_H

/* Longest control line accepted (bytes, without CRLF). RFC 959 sets no limit;
 * 4096 holds any real path while bounding per-session memory. Longer lines
 * get 500 and are drained up to the next LF, never split into two commands. */
#define FERRY_LINE_MAX 4096

/* Longest virtual path after normalisation; matches Linux PATH_MAX. */
#define FERRY_PATH_MAX 4096

/* Raw control bytes read per recv(); bounded so a flood cannot grow memory. */
#define FERRY_CTRL_READ 2048

/* Commands handled per session per wakeup, so one pipelining client cannot
 * starve the others sharing the worker. */
#define FERRY_CMDS_PER_WAKEUP 16

/* Bytes moved per sendfile()/splice() call and per wakeup for one transfer:
 * large enough for full-speed loopback, small enough to stay fair. */
#define FERRY_XFER_CHUNK (512 * 1024)

/* An upload's data connection wakes its worker only once this many bytes
 * wait (SO_RCVLOWAT), or at its end; the worker's once-a-second tick
 * takes whatever smaller amount waits, so a slow upload still counts as
 * moving. */
#define FERRY_STOR_RCVLOWAT (256 * 1024)

/* Userspace buffer for transfers that must touch the bytes (TYPE A, fallbacks). */
#define FERRY_XFER_BUF (64 * 1024)

/* Bytes read from a file or decrypted per write when a transfer cannot
 * be zero-copy (TLS without kernel TLS): fewer, larger system calls. */
#define FERRY_COPY_CHUNK (256 * 1024)

/* Directory entries a listing reads per wakeup (each may cost a stat),
 * so a huge directory cannot hold its worker from other sessions. */
#define FERRY_LIST_ENTRIES_PER_WAKEUP 1024

/* The same bound for NLST, which reads names only: a name costs about a
 * tenth of a stat'ed entry (the directory read alone), so eight times as
 * many take the worker for no longer, and a directory of a few thousand
 * names goes out in one pass, its 150 and 226 in one write. */
#define FERRY_LIST_NAMES_PER_WAKEUP (8 * 1024)

/* A listing is formatted until this much waits to be sent, then written
 * in one call: a name list is ~12 bytes a line, and a write per few
 * names would cost as much as the names. */
#define FERRY_LIST_WRITE_FILL (64 * 1024)

/* A listing's names are sorted (as vsftpd, pure-ftpd and pyftpdlib sort
 * theirs) when they and their index fit in this much memory: about 45,000
 * names of 10 bytes, 7,500 of 240. A larger directory is listed in its own
 * order. The names are read FERRY_LIST_NAMES_PER_WAKEUP per wakeup. */
#define FERRY_LIST_SORT_MAX (2 * 1024 * 1024)

/* What a worker's listings hold for sorting together: a listing that
 * finds less left is sent unsorted, so sessions listing large directories
 * slowly cannot take more than this of a worker's memory. */
#define FERRY_LIST_SORT_WORKER_MAX (16 * 1024 * 1024)

/* Entries STAT <path> sends over the control connection before it stops. */
#define FERRY_STAT_MAX_ENTRIES 2000

/* Largest reply the client accepts before it calls the server broken
 * (a multi-line FEAT or STAT is a few KiB; a hostile server sends megabytes). */
#define FERRY_REPLY_MAX (256 * 1024)

/* Pending outgoing control bytes before a session that does not read its
 * replies is dropped. */
#define FERRY_CTRL_OUT_MAX (256 * 1024)

/* How long a closing session (421 or QUIT queued) may wait for a client
 * that reads nothing before it is dropped with its replies unsent. */
#define FERRY_QUIT_GRACE_MS 10000

/* Accepts per wakeup of the listening socket. */
#define FERRY_ACCEPTS_PER_WAKEUP 64
/* A worker whose accept4 ran out of descriptors (or memory) stops
 * watching the listeners this long, or until one of its sessions ends,
 * instead of being woken again at once for the same waiting client. */
#define FERRY_ACCEPT_RETRY_MS 100

/* A passive listener whose connection was taken stays open this long for
 * the session's next PASV/EPSV (see data_passive), which then answers
 * without creating, binding and closing a socket: a third of the system
 * calls of a small file's transfer. Only when the passive port range has
 * more ports than sessions are allowed: a session holds at most one
 * listener, parked or announced, so a PASV then always finds a port, as
 * without parking; a smaller range is left to sessions in mid-PASV. */
#define FERRY_PASV_PARK_MS 1000

/* Failed PASS attempts per session before the connection is closed, and the
 * delay before each 530 so guessing is slow. */
#define FERRY_LOGIN_ATTEMPTS 3
#define FERRY_LOGIN_FAIL_DELAY_MS 1000

/* Failed logins from one address (all its sessions, all workers) within
 * the window before further logins from it are refused for the rest of
 * the window: a botnet-free brute force gets ~10 guesses a minute. */
#define FERRY_IP_FAILS_MAX 10
#define FERRY_IP_FAIL_WINDOW_MS 60000

/* An upload ends when its data connection ends, but so does a client
 * that was killed. After the data EOF, ferryd waits for the control
 * connection to say whether the client is still alive (a killed client's
 * control connection closes within microseconds of its data connection)
 * before it puts the file under its final name: 1/SHARE of the upload's
 * time, at most GRACE_MS. An upload shorter than SHARE ms is committed at
 * once; a client killed inside one that short is not waited for. */
#define FERRY_STOR_EOF_GRACE_MS 15
#define FERRY_STOR_EOF_GRACE_SHARE 8

/* Freed sessions after which a worker returns unused heap to the system
 * (malloc_trim) at its next one-second tick. */
#define FERRY_TRIM_AFTER_SESSIONS 256

/* Lines in a --users file. */
#define FERRY_USERS_MAX 10000

/* Defaults for the tunables a user can override on the command line. */
#define FERRY_DEFAULT_PORT 2121
#define FERRY_DEFAULT_IDLE_TIMEOUT 300
#define FERRY_DEFAULT_DATA_TIMEOUT 60
#define FERRY_DEFAULT_MAX_SESSIONS 4096
#define FERRY_DEFAULT_MAX_PER_IP 256

#endif
