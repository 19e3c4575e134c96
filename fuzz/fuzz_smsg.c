/* fuzz_smsg.c - the seed-001 message readers (lib/smsg.c: smsg_expect,
 * smsg_read_var, smsg_read_size, smsg_recv_file) and the size/text
 * writers, over a real socket pair.
 *
 * Input: a script byte count k, k script bytes (each picks the next read:
 * READY/OK/DONE with or without "ERROR: ", a variable message into a
 * buffer of some size, a size, or file data of the last size read), then
 * the peer's bytes. The peer's bytes are written and its side shut down
 * before reading, so no read waits for a timeout. One text and one size
 * are also sent the other way and checked byte for byte.
 *
 * Invariants (positions from FIONREAD, so consumption is exact):
 *   - a fixed message that matches is consumed byte-exact: exactly its
 *     length, never a byte of what follows;
 *   - "ERROR: text" gives the text up to the first LF, without CR/LF,
 *     NUL-terminated and cut to the buffer;
 *   - -EPROTO only when the bytes read are neither a prefix of the
 *     message nor of "ERROR: ", having read no more than the longer;
 *   - a size takes exactly 8 bytes, big-endian; -ECONNRESET when fewer
 *     remain;
 *   - a variable message is at most the buffer minus one, NUL-terminated
 *     and has no LF; it consumed at most the buffer minus one byte;
 *   - file data takes exactly the size (or all that is left);
 *   - sent text and sizes arrive unchanged. */
#include "fuzz.h"

#include "smsg.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int devnull = -1;

static size_t unread(int fd)
{
	int n = 0;
	FUZZ_CHECK(ioctl(fd, FIONREAD, &n) == 0);
	return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 60000)
		return 0;
	size_t k = data[0] % 16;
	if (size < 1 + k)
		return 0;
	const uint8_t *script = data + 1;
	const uint8_t *peer = data + 1 + k;
	size_t plen = size - 1 - k;
	if (devnull < 0)
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	int big = 256 * 1024;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	struct smsg_conn c;
	FUZZ_CHECK(smsg_init(&c, sv[0], 2000) == 0);

	/* Our side talks first: one text and one size, checked at the peer. */
	char text[64];
	size_t tlen = plen < sizeof text - 1 ? plen : sizeof text - 1;
	memcpy(text, peer, tlen);
	text[tlen] = '\0';
	tlen = strlen(text);
	if (tlen) {
		FUZZ_CHECK(smsg_send_text(&c, text) == 0);
		char got[64];
		FUZZ_CHECK(read(sv[1], got, sizeof got) == (ssize_t)tlen && memcmp(got, text, tlen) == 0);
		uint64_t v = 0;
		for (size_t i = 0; i < 8 && i < tlen; i++)
			v = v << 8 | (uint8_t)text[i];
		FUZZ_CHECK(smsg_send_size(&c, v) == 0);
		unsigned char be[8];
		FUZZ_CHECK(read(sv[1], be, 8) == 8);
		for (int i = 7; i >= 0; i--, v >>= 8)
			FUZZ_CHECK(be[i] == (v & 0xff));
	}

	size_t w = 0;
	while (w < plen) {
		ssize_t n = write(sv[1], peer + w, plen - w);
		FUZZ_CHECK(n > 0);
		w += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);

	static const char *const fixed[] = {"READY", "OK", "DONE"};
	static const size_t bufsizes[] = {2, 8, 300, SMSG_ERROR_MAX + 8};
	uint64_t last_size = 0;
	for (size_t i = 0; i < k; i++) {
		unsigned op = script[i] % 8;
		size_t before = unread(sv[0]);
		const uint8_t *at = peer + (plen - before);
		if (op < 6) {
			const char *want = fixed[op % 3];
			bool allow = op >= 3;
			size_t outlen = bufsizes[script[i] / 8 % 4];
			char *out = malloc(outlen);
			FUZZ_CHECK(out);
			int rc = smsg_expect(&c, want, allow, out, outlen);
			size_t used = before - unread(sv[0]);
			size_t wlen = strlen(want);
			if (rc == 0) {
				FUZZ_CHECK(used == wlen && memcmp(at, want, wlen) == 0);
			} else if (rc == 1) {
				FUZZ_CHECK(allow);
				FUZZ_CHECK(used >= 7 && memcmp(at, "ERROR: ", 7) == 0);
				size_t olen = strlen(out);
				FUZZ_CHECK(olen < outlen);
				FUZZ_CHECK(!memchr(out, '\n', olen));
				FUZZ_CHECK(memcmp(out, at + 7, olen) == 0);
			} else if (rc == -EPROTO) {
				size_t lim = allow && wlen < 7 ? 7 : wlen;
				FUZZ_CHECK(used <= lim);
				bool pre_want = used <= wlen && memcmp(at, want, used) == 0;
				bool pre_err = allow && memcmp(at, "ERROR: ", used < 7 ? used : 7) == 0;
				FUZZ_CHECK(!pre_want && !pre_err);
			} else {
				FUZZ_CHECK(rc == -ECONNRESET);
				FUZZ_CHECK(unread(sv[0]) == 0);
			}
			free(out);
		} else if (op == 6) {
			size_t outlen = bufsizes[script[i] / 8 % 4];
			char *out = malloc(outlen);
			FUZZ_CHECK(out);
			ssize_t n = smsg_read_var(&c, out, outlen);
			size_t used = before - unread(sv[0]);
			if (n >= 0) {
				FUZZ_CHECK((size_t)n < outlen && out[n] == '\0');
				FUZZ_CHECK(!memchr(out, '\n', (size_t)n));
				FUZZ_CHECK(memcmp(out, at, (size_t)n) == 0);
				FUZZ_CHECK(used >= (size_t)n && used <= outlen - 1);
			} else {
				FUZZ_CHECK(n == -ECONNRESET || n == -EMSGSIZE);
				FUZZ_CHECK(n != -ECONNRESET || before == 0);
			}
			free(out);
		} else if (script[i] & 8) {
			int rc = smsg_read_size(&c, &last_size);
			size_t used = before - unread(sv[0]);
			if (rc == 0) {
				FUZZ_CHECK(used == 8);
				uint64_t v = 0;
				for (int b = 0; b < 8; b++)
					v = v << 8 | at[b];
				FUZZ_CHECK(v == last_size);
			} else {
				FUZZ_CHECK(rc == -ECONNRESET && before < 8 && unread(sv[0]) == 0);
			}
		} else {
			bool failed = true;
			int rc = smsg_recv_file(&c, devnull, last_size, &failed);
			size_t used = before - unread(sv[0]);
			FUZZ_CHECK(!failed);
			if (rc == 0)
				FUZZ_CHECK(used == last_size);
			else
				FUZZ_CHECK(rc == -ECONNRESET && used == before && before < last_size);
		}
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
