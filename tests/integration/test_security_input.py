"""Hostile control input: line hygiene (length cap, NUL, bare CR/LF, Telnet
IAC, garbage, unterminated lines), the login gate and its throttle, and
command sequences that leave state behind (REST, RNFR, ABOR).

Every line a client sends gets exactly one reply, and no byte sequence
can turn one line into two commands or run a command that was not sent
whole.
"""
import os
import random
import socket
import subprocess
import time

import harness

from harness import make_file, sha256_file
from test_security_common import (SecurityCase, connect_from, cpu_seconds, hash_password, pasv_port,
                                  read_reply_within, recv_all, temp_leftovers, transfer)

LINE_MAX = 4096


class LineHygiene(SecurityCase):
    ferryd_args = ("-w",)

    def prepare_root(self):
        with open(os.path.join(self.root, "victim.txt"), "wb") as f:
            f.write(b"still here\n")
        with open(os.path.join(self.root, b"iac\xff.txt".decode("utf-8", "surrogateescape")), "wb") as f:
            f.write(b"i")

    def assert_victim(self):
        with open(os.path.join(self.root, "victim.txt"), "rb") as f:
            self.assertEqual(f.read(), b"still here\n")

    def assert_replies(self, c, n, prefixes):
        """Exactly n replies, each starting with one of prefixes; then NOOP
        answers (nothing extra was queued)."""
        got = [c.reply() for _ in range(n)]
        for r in got:
            self.assertTrue(r[:3] in prefixes, got)
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")
        self.assertEqual(c.buf, b"")
        return got

    def test_line_limit_boundary(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        at_limit = "HELP " + "a" * (LINE_MAX - 5)
        self.assertEqual(len(at_limit), LINE_MAX)
        self.assertTrue(c.cmd(at_limit).startswith("501"))  # a real command: unknown topic
        self.assertTrue(c.cmd(at_limit + "a").startswith("500"))
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")

    def test_long_lines_are_discarded_whole(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        # Were a long line cut into pieces, the tail would be a command of its own.
        tails = (LINE_MAX, LINE_MAX + 1, 2048 * 3, 64 * 1024 - 17, 1024 * 1024 - 17)
        for n in tails:
            c.send(b"X" * n + b"DELE victim.txt\r\n")
            self.assertTrue(c.reply().startswith("500"), n)
            self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")
        # The same, pipelined in one burst.
        c.send(b"".join(b"Y" * n + b"DELE victim.txt\r\n" for n in tails))
        self.assert_replies(c, len(tails), ("500",))
        self.assert_victim()

    def test_nul_bytes(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        lines = [b"NOOP\x00", b"NO\x00OP", b"\x00NOOP", b"DELE victim.txt\x00", b"DELE victim.txt\x00.bak",
                 b"RNFR victim.txt\x00", b"\x00" * 100, b"DELE \x00victim.txt"]
        c.send(b"".join(ln + b"\r\n" for ln in lines))
        self.assert_replies(c, len(lines), ("500", "501", "502"))
        self.assert_victim()
        self.assertTrue(c.cmd("RNTO x").startswith("503"))  # the RNFR above did not count

    def test_bare_cr(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        lines = [b"NOOP\rDELE victim.txt", b"DELE victim.txt\rX", b"DELE\rvictim.txt", b"\r\r\r",
                 b"RNFR victim.txt\r", b"NOOP\r\x00"]
        c.send(b"".join(ln + b"\r\n" for ln in lines))
        self.assert_replies(c, len(lines), ("500", "501", "502"))
        self.assert_victim()
        self.assertTrue(c.cmd("RNTO x").startswith("503"))

    def test_bare_lf_ends_a_line(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        c.send(b"NOOP\nNOOP\nNO\nOP\r\n")
        self.assertEqual([c.reply() for _ in range(2)], ["200 NOOP ok."] * 2)
        self.assertEqual([c.reply()[:3] for _ in range(2)], ["500", "500"])
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")

    def test_telnet_iac(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        # Negotiation and commands are dropped; IAC IAC is a data byte 0xFF.
        for line, want in ((b"NO\xff\xfb\x01OP", "200 NOOP ok."),      # IAC WILL ECHO
                           (b"\xff\xf4\xff\xf2NOOP", "200 NOOP ok."),  # IAC IP, IAC DM
                           (b"\xff\xfd\x18NOOP", "200 NOOP ok."),      # IAC DO TERMINAL-TYPE
                           (b"N\xff\xf1OOP", "200 NOOP ok."),          # IAC NOP
                           (b"SIZE iac\xff\xff.txt", "213 1"),
                           (b"NOOP\xff", "200 NOOP ok.")):
            c.send(line + b"\r\n")
            self.assertEqual(c.reply(), want, line)
        # An IAC sequence split across packets.
        for piece in (b"NO\xff", b"\xfb", b"\x01OP\r", b"\n"):
            c.send(piece)
            time.sleep(0.05)
        self.assertEqual(c.reply(), "200 NOOP ok.")
        # A flood of IAC IAC: data bytes, so one over-long line.
        c.send(b"\xff" * 20000 + b"\r\n")
        self.assertTrue(c.reply().startswith("500"))
        # A lone IAC before CR LF does not swallow the next command.
        c.send(b"XYZ\xff\r\nNOOP\r\n")
        r = c.reply()
        if r.startswith("5"):
            r = c.reply()
        self.assertEqual(r, "200 NOOP ok.")
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")

    def test_binary_garbage(self):
        rnd = random.Random(20241122)
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        # Garbage lines without LF or IAC: one reply each.
        lines = []
        for _ in range(64):
            lines.append(bytes(b for b in rnd.randbytes(rnd.randrange(1, 3000)) if b not in (10, 255)))
        c.send(b"".join(ln + b"\r\n" for ln in lines))
        got = self.assert_replies(c, len(lines), ("500", "501", "502", "530", "504"))
        self.assertEqual(len(got), len(lines))
        # Unrestricted garbage, then a NOOP: ferryd answers it in the end.
        blob = rnd.randbytes(256 * 1024)
        c.send(blob + b"\r\n\r\nNOOP\r\n")
        for _ in range(blob.count(b"\n") + 4):
            r = c.reply()
            if r == "200 NOOP ok.":
                break
            self.assertTrue(r.startswith("5"), r)
        else:
            self.fail("NOOP after garbage never answered")
        self.assert_victim()

    def test_unterminated_line_never_runs(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        c.send("NOOP")
        self.assertIsNone(read_reply_within(c, 1.0), "a line without its end ran")
        c.send("\r\n")
        self.assertEqual(c.reply(), "200 NOOP ok.")
        # A command cut short by the end of the connection is not run.
        d = self.raw()
        self.assertTrue(d.login().startswith("230"))
        d.send("DELE victim.txt")
        d.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(d.closed(10))
        self.assertEqual(d.buf, b"")
        self.assert_victim()


class LoginGate(SecurityCase):
    """Nothing but USER/PASS/QUIT/FEAT/SYST/HELP/NOOP (and AUTH/PBSZ/PROT)
    works before login; the sequence rules; the failed-login throttle."""

    ferryd_args = ("-w", "--workers", "1")

    def prepare_root(self):
        users = os.path.join(self.tmp, "users")
        with open(users, "w") as f:
            f.write("alice:%s:%s:rw\n" % (hash_password("alice-pw"), self.root))
        os.chmod(users, 0o644)
        self.ferryd_args = self.ferryd_args + ("-u", users)
        with open(os.path.join(self.root, "victim.txt"), "wb") as f:
            f.write(b"still here\n")
        os.mkdir(os.path.join(self.root, "sub"))

    GATED = ("CWD /", "XCWD /", "CDUP", "XCUP", "PWD", "XPWD", "LIST", "NLST", "MLSD", "MLST", "MLST victim.txt",
             "STAT /", "STAT", "RETR victim.txt", "STOR new.txt", "APPE victim.txt", "STOU", "DELE victim.txt",
             "MKD newdir", "XMKD newdir", "RMD sub", "XRMD sub", "RNFR victim.txt", "RNTO x.txt",
             "SIZE victim.txt", "MDTM victim.txt", "PORT 127,0,0,1,4,0", "EPRT |1|127.0.0.1|1024|", "PASV",
             "EPSV", "EPSV ALL", "TYPE I", "MODE S", "STRU F", "REST 0", "ABOR", "ALLO 10", "SITE HELP",
             "ACCT x", "CCC")

    def assert_untouched(self):
        self.assertEqual(sorted(os.listdir(self.root)), ["sub", "victim.txt"])
        with open(os.path.join(self.root, "victim.txt"), "rb") as f:
            self.assertEqual(f.read(), b"still here\n")

    def test_commands_before_login(self):
        c = self.raw()
        for line in self.GATED:
            self.assertTrue(c.cmd(line).startswith("530"), line)
        # Half-way through a login (USER given) the gate still holds.
        for line in self.GATED:
            self.assertTrue(c.cmd("USER alice").startswith("331"))
            self.assertTrue(c.cmd(line).startswith("530"), line)
            self.assertTrue(c.cmd("PASS alice-pw").startswith("503"), line)  # the USER was forgotten
        for line, code in (("NOOP", "200"), ("SYST", "215"), ("FEAT", "211"), ("HELP", "214"),
                           ("OPTS UTF8 ON", "200")):
            self.assertTrue(c.cmd(line).startswith(code), line)
        # verbs ferryd does not implement are 502 before login as after
        for line in ("REIN", "SMNT /", "LPSV", "HOST example.org", "LANG en"):
            self.assertTrue(c.cmd(line).startswith("502"), line)
        self.assert_untouched()

    def test_user_pass_sequencing(self):
        c = self.raw()
        self.assertTrue(c.cmd("PASS alice-pw").startswith("503"))
        self.assertTrue(c.cmd("USER alice").startswith("331"))
        self.assertTrue(c.cmd("USER anonymous").startswith("331"))
        self.assertTrue(c.cmd("PASS x").startswith("230"))
        self.assertTrue(c.cmd("PWD").startswith("257"))
        # A new USER drops the login in force, whether or not PASS follows.
        self.assertTrue(c.cmd("USER alice").startswith("331"))
        self.assertTrue(c.cmd("PWD").startswith("530"))
        self.assertTrue(c.cmd("PASS alice-pw").startswith("503"))
        self.assertTrue(c.cmd("USER alice").startswith("331"))
        self.assertTrue(c.cmd("PASS wrong").startswith("530"))
        time.sleep(0.2)
        self.assertIsNone(read_reply_within(c, 0.1))
        self.assertTrue(c.cmd("DELE victim.txt").startswith("530"))  # waits out the delay, then 530
        self.assert_untouched()

    def test_three_failures_close_the_connection_and_each_is_delayed(self):
        c = self.raw()
        d = self.raw()
        t0 = time.monotonic()
        c.send("USER alice\r\nPASS bad1\r\n" "USER alice\r\nPASS bad2\r\n" "USER alice\r\nPASS bad3\r\n")
        # Meanwhile, two failures leave the right password working.
        d.send("USER alice\r\nPASS bad1\r\n" "USER alice\r\nPASS bad2\r\n" "USER alice\r\nPASS alice-pw\r\n")
        stamps = []
        for _ in range(7):
            stamps.append((c.reply()[:3], time.monotonic() - t0))
        self.assertEqual([s[0] for s in stamps], ["331", "530", "331", "530", "331", "530", "421"])
        # The command after each failure waited: the replies are spread out.
        self.assertGreaterEqual(stamps[2][1] - stamps[1][1], 0.9, stamps)
        self.assertGreaterEqual(stamps[4][1] - stamps[3][1], 0.9, stamps)
        self.assertTrue(c.closed(10))
        self.assertEqual([d.reply()[:3] for _ in range(6)], ["331", "530", "331", "530", "331", "230"])

    def test_delay_is_per_session(self):
        a = self.raw()
        b = self.raw()
        a.send("USER alice\r\nPASS bad\r\n")
        self.assertTrue(a.reply().startswith("331"))
        self.assertTrue(a.reply().startswith("530"))
        a.send("USER alice\r\n")   # held back by the delay
        b.send("NOOP\r\n")
        self.assertEqual(read_reply_within(b, 10), "200 NOOP ok.")
        # b was answered while a's command still waited.
        self.assertIsNone(read_reply_within(a, 0.05), "the other session waited for the delay")
        self.assertTrue(read_reply_within(a, 10).startswith("331"))

    def test_delay_does_not_busy_loop(self):
        """While a session waits out the delay, ferryd sleeps: bytes the
        client sends meanwhile must not make the worker spin."""
        c = self.raw()
        c.send("USER alice\r\nPASS bad\r\n")
        self.assertTrue(c.reply().startswith("331"))
        self.assertTrue(c.reply().startswith("530"))
        cpu0 = cpu_seconds(self.server.proc.pid)
        t0 = time.monotonic()
        c.send("USER alice\r\n")   # arrives during the delay
        self.assertTrue(read_reply_within(c, 10).startswith("331"))
        wall = time.monotonic() - t0
        used = cpu_seconds(self.server.proc.pid) - cpu0
        self.assertGreater(wall, 0.9)
        self.assertLess(used, wall / 2, "ferryd burnt %.2fs CPU in %.2fs of login delay" % (used, wall))


class StateLeftBehind(SecurityCase):
    """REST, RNFR and ABOR: state that must not outlive its purpose."""

    ferryd_args = ("-w", "--workers", "1")

    def prepare_root(self):
        with open(os.path.join(self.root, "ten.bin"), "wb") as f:
            f.write(b"0123456789")
        with open(os.path.join(self.root, "a.txt"), "wb") as f:
            f.write(b"a\n")
        make_file(os.path.join(self.root, "big.bin"), 16 << 20, seed=3)
        make_file(os.path.join(self.root, "target.bin"), 64 << 10, seed=4)

    def test_rest_beyond_eof_and_negative(self):
        c = self.binary_session()
        self.assertTrue(c.cmd("REST 11").startswith("350"))
        self.assertTrue(transfer(c, "RETR ten.bin")[0].startswith("554"))
        self.assertTrue(c.cmd("REST 10").startswith("350"))
        prelim, data, final = transfer(c, "RETR ten.bin")
        self.assertEqual((prelim[:3], data, final[:3]), ("150", b"", "226"))
        self.assertTrue(c.cmd("REST 7").startswith("350"))
        self.assertEqual(transfer(c, "RETR ten.bin")[1], b"789")
        # REST applies to one transfer only.
        self.assertEqual(transfer(c, "RETR ten.bin")[1], b"0123456789")
        for arg in ("-1", "-0", "+5", "1e3", "0x10", " 5", "5 ", "5x", "18446744073709551616",
                    "9223372036854775808", "99999999999999999999999999", "\uff15", "-9223372036854775808"):
            r = c.cmd("REST " + arg)
            self.assertTrue(r.startswith("501"), (arg, r))
        self.assertTrue(c.cmd("REST 9223372036854775807").startswith("350"))
        self.assertTrue(transfer(c, "RETR ten.bin")[0].startswith("554"))
        # A huge offset for an upload fails cleanly and leaves the file alone.
        for off in ("9223372036854775807", "9223372036854775000"):
            self.assertTrue(c.cmd("REST " + off).startswith("350"))
            prelim, _, final = transfer(c, "STOR ten.bin", upload=b"abc")
            self.assertFalse((final or prelim).startswith("226"), (off, prelim, final))
        with open(os.path.join(self.root, "ten.bin"), "rb") as f:
            self.assertEqual(f.read(), b"0123456789")

    def test_rnfr_without_rnto(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        self.assertTrue(c.cmd("RNTO b.txt").startswith("503"))
        # Whatever comes between RNFR and RNTO makes ferryd forget the source.
        for between in ("NOOP", "PWD", "XYZZY", "NOOP extra", "ABOR", "PASV", "TYPE I", "RNFR missing.txt",
                        "SIZE a.txt", "CWD /", "STAT", "REST 0", "HELP", "SYST", "MKD", "\x00"):
            self.assertTrue(c.cmd("RNFR a.txt").startswith("350"))
            c.cmd(between)
            r = c.cmd("RNTO b.txt")
            self.assertTrue(r.startswith("503"), "RNTO after RNFR, %r: %s" % (between, r))
        self.assertTrue(c.cmd("RNFR a.txt").startswith("350"))
        c.cmd("USER anonymous")
        c.cmd("PASS x")
        self.assertTrue(c.cmd("RNTO b.txt").startswith("503"))
        self.assertEqual(sorted(n for n in os.listdir(self.root) if n.endswith(".txt")), ["a.txt"])
        # And directly after RNFR it works.
        self.assertTrue(c.cmd("RNFR a.txt").startswith("350"))
        self.assertTrue(c.cmd("RNTO b.txt").startswith("250"))

    def _slow_data(self, c):
        port = pasv_port(c)
        return connect_from("127.0.0.1", port, rcvbuf=4096)

    def _abort_and_check(self, c, d=None):
        c.send("ABOR\r\n")
        r = read_reply_within(c, 10)
        self.assertTrue(r.startswith("426"), r)
        r = read_reply_within(c, 10)
        self.assertTrue(r.startswith("226"), r)
        if d is not None:
            recv_all(d, limit=64 << 20, timeout=10)
            d.close()
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")
        # The session is clean: a transfer works.
        self.assertEqual(transfer(c, "RETR ten.bin")[1], b"0123456789")

    def test_abor_at_every_phase(self):
        c = self.binary_session()
        old = sha256_file(os.path.join(self.root, "target.bin"))
        # Nothing to abort.
        self.assertTrue(c.cmd("ABOR").startswith("225"))
        # A passive port waiting: ABOR closes it.
        port = pasv_port(c)
        self.assertTrue(c.cmd("ABOR").startswith("225"))
        with self.assertRaises(OSError):
            connect_from("127.0.0.1", port, timeout=5).close()
        # A transfer waiting for its data connection.
        pasv_port(c)
        self.assertTrue(c.cmd("RETR big.bin").startswith("150"))
        self._abort_and_check(c)
        # A download in full flow (the client reads slowly).
        d = self._slow_data(c)
        self.assertTrue(c.cmd("RETR big.bin").startswith("150"))
        d.recv(65536)
        self._abort_and_check(c, d)
        # The same, ABOR sent the Telnet way: IAC IP, then IAC DM as urgent data.
        d = self._slow_data(c)
        self.assertTrue(c.cmd("RETR big.bin").startswith("150"))
        d.recv(65536)
        c.send(b"\xff\xf4\xff")
        c.sock.send(b"\xf2", socket.MSG_OOB)
        self._abort_and_check(c, d)
        # ABOR pipelined right behind the command.
        d = self._slow_data(c)
        c.send("RETR big.bin\r\n")
        self.assertTrue(c.reply().startswith("150"))
        self._abort_and_check(c, d)
        # An upload in flow: nothing of it may replace the old file.
        port = pasv_port(c)
        d = connect_from("127.0.0.1", port)
        self.assertTrue(c.cmd("STOR target.bin").startswith("150"))
        d.sendall(b"partial upload " * 10000)
        time.sleep(0.2)
        self._abort_and_check(c)
        d.close()
        self.assertEqual(sha256_file(os.path.join(self.root, "target.bin")), old)
        self.assertEqual(temp_leftovers(self.root), [])
        # A listing in flow: longer than the kernel may buffer on the
        # server's side (tcp_wmem's largest send buffer) and the client's,
        # so it cannot end before the ABOR however the two are scheduled.
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            sndbuf_max = int(f.read().split()[2])
        many = os.path.join(self.root, "many")
        os.mkdir(many)
        for i in range(sndbuf_max // 250 + 1000):  # a LIST line of each is 290 bytes
            open(os.path.join(many, "entry-%05d-" % i + "x" * 238), "wb").close()
        d = self._slow_data(c)
        self.assertTrue(c.cmd("LIST many").startswith("150"))
        d.recv(4096)
        self._abort_and_check(c, d)
        # After a finished transfer there is nothing to abort.
        self.assertTrue(c.cmd("ABOR").startswith("225"))
        self.assertEqual(sha256_file(os.path.join(self.root, "target.bin")), old)


class TlsCommandInjection(SecurityCase):
    """Bytes pipelined behind AUTH TLS were sent in the clear: they must
    never be run as commands of the protected session."""

    def prepare_root(self):
        certs = os.path.join(self.tmp, "certs")
        os.mkdir(certs)
        subprocess.run([harness.FERRYD, "--gen-cert", certs], capture_output=True, timeout=60, check=True)
        for n in os.listdir(certs):
            os.chmod(os.path.join(certs, n), 0o644)
        self.ferryd_args = ("--tls-cert", os.path.join(certs, "cert.pem"),
                            "--tls-key", os.path.join(certs, "key.pem"))

    def test_commands_pipelined_after_auth_are_refused(self):
        c = self.raw()
        c.send("AUTH TLS\r\nUSER anonymous\r\nPASS x\r\nNOOP\r\n")
        self.assertTrue(c.reply().startswith("234"))
        # No TLS handshake follows from us: ferryd must not answer the
        # clear-text commands; it drops the connection instead.
        self.assertTrue(c.closed(10))
        self.assertEqual(c.buf, b"")
