"""Resource limits: session caps, idle and data timeouts, clients that do
not read, and command floods. One session's misbehaviour must never cost
another session its service, and must never pin ferryd's resources.
"""
import os
import random
import select
import socket
import subprocess
import threading
import time

from harness import TIMEOUT, RawControl, make_file, rss_kib, sha256_file
from test_security_common import (FULL, SecurityCase, connect_from, control_from, cpu_seconds, fd_count,
                                  family_pids, pasv_port, read_reply_within, recv_all, start_server,
                                  temp_leftovers, transfer, wait_until)

def voluntary_switches(pid):
    """Times the process went to sleep so far (/proc/PID/status)."""
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches for %d" % pid)


# Connections opened at once beyond --max-sessions (the 2,000 with FERRY_FULL=1).
FLOOD_CONNECTIONS = 2000 if FULL else 200
# Pipelined NOOPs in the command-flood test.
FLOOD_COMMANDS = 100_000
MAX_SESSIONS = 8


def logged_in_session(case, timeout=10):
    """A logged-in RawControl; retries while ferryd still counts a session
    that just ended (the start-up probe, a QUIT not yet reaped)."""
    def attempt():
        c = RawControl("127.0.0.1", case.server.port)
        case.addCleanup(c.close)
        if c.greeting.startswith("220") and c.login().startswith("230"):
            return c
        c.close()
        return None
    c = wait_until(attempt, timeout=timeout, step=0.1)
    case.assertTrue(c, "no session could log in")
    return c


def login_ok(port, source=None):
    """True when a fresh session from source logs in. The session then
    QUITs and is over on the server's side too (it has closed the
    connection, and released its place in the caps before that): a
    connection made next does not find it still counted."""
    try:
        c = control_from(port, source or "127.0.0.1")
    except OSError:
        return False
    try:
        if not (c.greeting.startswith("220") and c.login().startswith("230")):
            return False
        c.send("QUIT\r\n")
        c.sock.settimeout(10)
        for _ in range(100):
            if not c.sock.recv(4096):
                return True
        return False
    except (OSError, EOFError):
        return False
    finally:
        c.close()


class SessionCap(SecurityCase):
    """Beyond --max-sessions every new connection gets 421 and is closed;
    the sessions in place keep working and the count never leaks."""

    ferryd_args = ("--max-sessions", str(MAX_SESSIONS), "--max-per-ip", "0")

    def _health_check(self):
        # Closing the held sessions is asynchronous: give ferryd a moment.
        wait_until(lambda: login_ok(self.server.port), timeout=10)
        super()._health_check()

    def test_connections_beyond_the_cap_get_421(self):
        held = [logged_in_session(self) for _ in range(MAX_SESSIONS)]
        baseline = fd_count(self.server.proc.pid)
        flood = []
        try:
            for _ in range(FLOOD_CONNECTIONS):
                flood.append(connect_from("127.0.0.1", self.server.port, timeout=30))
            refused = 0
            for s in flood:
                data = recv_all(s, limit=4096, timeout=30)
                if data.startswith(b"421 ") and data.endswith(b"\r\n") and data.count(b"\r\n") == 1:
                    refused += 1
            self.assertEqual(refused, FLOOD_CONNECTIONS)
        finally:
            for s in flood:
                s.close()
        # The sessions in place were not disturbed.
        for c in held:
            self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")
        # Refused connections left nothing open in ferryd.
        self.assertEqual(wait_until(lambda: fd_count(self.server.proc.pid) == baseline, 10), True)
        # One session ends: a new login gets its place.
        held.pop().cmd("QUIT")
        self.assertTrue(wait_until(lambda: login_ok(self.server.port), timeout=10))
        # All end: the whole capacity is back (no count leaked).
        for c in held:
            c.cmd("QUIT")
            c.close()
        self.assertTrue(wait_until(lambda: login_ok(self.server.port), timeout=10))
        again = [logged_in_session(self) for _ in range(MAX_SESSIONS)]
        for c in again:
            c.close()


class DescriptorsExhausted(SecurityCase):
    """A worker out of descriptors (RLIMIT_NOFILE) leaves the clients it
    cannot take waiting in the backlog, asleep rather than woken for them
    over and over, and takes them as soon as sessions end."""

    NOFILE = 64

    def setUp(self):
        super().setUp()
        self.server.stop()
        self.server = start_server(self.root, "--workers", "1", "--max-per-ip", "0",
                                   prefix=("prlimit", "--nofile=%d:%d" % (self.NOFILE, self.NOFILE)))

    def greeted(self, socks, seconds):
        """The sockets among socks that got their 220 within seconds."""
        got = []
        deadline = time.monotonic() + seconds
        for s in socks:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if s.recv(64).startswith(b"220"):
                    got.append(s)
            except (socket.timeout, BlockingIOError):
                pass
        return got

    def test_worker_sleeps_while_out_of_descriptors(self):
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(self.NOFILE + 30):
            socks.append(connect_from("127.0.0.1", self.server.port, timeout=30))
        served = self.greeted(socks, 3)
        waiting = [s for s in socks if s not in served]
        self.assertGreater(len(served), 10)
        self.assertGreater(len(waiting), 10, "every client was taken: raise the count")
        cpu0, t0 = cpu_seconds(self.server.proc.pid), time.monotonic()
        time.sleep(2)
        used, wall = cpu_seconds(self.server.proc.pid) - cpu0, time.monotonic() - t0
        self.assertLess(used, wall / 10, "ferryd burnt %.2fs CPU in %.2fs out of descriptors" % (used, wall))
        # Sessions end: the clients that waited are taken at once.
        for s in served[:10]:
            s.close()
            socks.remove(s)
        self.assertGreaterEqual(len(self.greeted(waiting, 5)), 5)
        for s in socks:
            s.close()
        socks.clear()
        self.assertTrue(wait_until(lambda: login_ok(self.server.port), timeout=10))

    def prepare_root(self):
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(b"passive" * 1000)

    def test_passive_connection_that_finds_no_descriptor_waits_asleep(self):
        c = logged_in_session(self)
        self.assertTrue(c.cmd("TYPE I").startswith("200"))
        port = pasv_port(c)
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(self.NOFILE + 30):
            socks.append(connect_from("127.0.0.1", self.server.port, timeout=30))
        self.greeted(socks, 3)
        # the worker has no descriptor for the passive connection either
        d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(d.close)
        cpu0, t0 = cpu_seconds(self.server.proc.pid), time.monotonic()
        time.sleep(2)
        used, wall = cpu_seconds(self.server.proc.pid) - cpu0, time.monotonic() - t0
        self.assertLess(used, wall / 10, "ferryd burnt %.2fs CPU in %.2fs out of descriptors" % (used, wall))
        for s in socks:
            s.close()
        socks.clear()
        self.assertTrue(wait_until(lambda: login_ok(self.server.port), timeout=10))
        # once sessions end, the connection is taken and the transfer runs
        r = c.cmd("RETR f.bin")
        self.assertTrue(r.startswith("150"), r)
        self.assertEqual(recv_all(d, timeout=10), b"passive" * 1000)
        self.assertTrue((read_reply_within(c, 10) or "").startswith("226"))


class PerAddressCap(SecurityCase):
    """--max-per-ip limits one address, not the others."""

    ferryd_args = ("--max-per-ip", "2")

    def _health_check(self):
        wait_until(lambda: login_ok(self.server.port), timeout=10)
        super()._health_check()

    def test_one_address_cannot_take_every_slot(self):
        a1 = logged_in_session(self)
        a2 = logged_in_session(self)
        s = connect_from("127.0.0.1", self.server.port)
        data = recv_all(s, limit=4096, timeout=10)
        s.close()
        self.assertTrue(data.startswith(b"421 "), data)
        for source in ("127.0.0.2", "127.0.0.3"):
            self.assertTrue(login_ok(self.server.port, source), source)
        a1.cmd("QUIT")
        a1.close()
        self.assertTrue(wait_until(lambda: login_ok(self.server.port), timeout=10))
        self.assertEqual(a2.cmd("NOOP"), "200 NOOP ok.")


class IdleTimeout(SecurityCase):
    """--idle-timeout cuts silent, never-logged-in and trickling clients with
    421, and only them."""

    ferryd_args = ("--idle-timeout", "2", "--data-timeout", "30", "--workers", "1")

    def test_idle_and_trickling_clients_are_cut(self):
        silent = self.raw()
        self.assertTrue(silent.login().startswith("230"))
        anonymous = self.raw()             # never logs in
        trickler = self.raw()
        self.assertTrue(trickler.login().startswith("230"))
        active = self.raw()
        self.assertTrue(active.login().startswith("230"))
        watched = {"silent": silent, "no-login": anonymous, "trickler": trickler}
        got = {name: b"" for name in watched}
        closed = set()
        trickle = b"NOOP" + b" x" * 200   # never a whole line
        for i in range(80):                 # 80 * 0.15 s: bounded at 12 s
            if "trickler" not in closed:
                try:
                    trickler.sock.send(trickle[i:i + 1])
                except OSError:
                    pass
            if i % 3 == 0:
                self.assertEqual(active.cmd("NOOP"), "200 NOOP ok.")
            r, _, _ = select.select([c.sock for n, c in watched.items() if n not in closed], [], [], 0.15)
            for name, c in watched.items():
                if c.sock in r:
                    try:
                        b = c.sock.recv(4096)
                    except OSError:
                        b = b""
                    got[name] += b
                    if not b:
                        closed.add(name)
            if len(closed) == len(watched):
                break
        self.assertEqual(closed, set(watched), got)
        for name in watched:
            self.assertTrue(got[name].startswith(b"421 "), (name, got[name]))
        # The active session was never cut.
        self.assertEqual(active.cmd("NOOP"), "200 NOOP ok.")


    def test_client_that_reads_no_replies_still_loses_its_session(self):
        """QUIT queued behind replies the client never reads can never be
        sent: the session must still end (FERRY_QUIT_GRACE_MS, 10 s), not
        keep its slot and buffers for ever."""
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", self.server.port))
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220"))
        s.sendall(b"USER anonymous\r\n")
        self.assertTrue(f.readline().startswith(b"331"))
        s.sendall(b"PASS guest@\r\n")
        self.assertTrue(f.readline().startswith(b"230"))
        here = s.getsockname()[1]

        def send_queue():
            """The server side's unsent bytes, None once it left ESTABLISHED."""
            out = subprocess.run(["ss", "-tnH", "state", "established",
                                  "( sport = :%d and dport = :%d )" % (self.server.port, here)],
                                 capture_output=True, text=True, timeout=10).stdout.split()
            return int(out[1]) if out else None

        # HELP replies (366 bytes each) until the kernel holds all it will
        # take; then a little more, which waits in ferryd, and QUIT.
        last, steady = -1, 0
        for _ in range(200):
            s.sendall(b"HELP\r\n" * 50)
            time.sleep(0.05)
            q = send_queue()
            self.assertIsNotNone(q, "ferryd dropped the session before its buffer limit")
            steady = steady + 1 if q == last else 0
            last = q
            if steady == 2:
                break
        self.assertEqual(steady, 2, "the server's send queue never stopped growing")
        s.sendall(b"HELP\r\n" * 50 + b"QUIT\r\n")
        t0 = time.monotonic()
        gone = False
        while time.monotonic() - t0 < 25:
            if send_queue() is None:
                gone = True
                break
            time.sleep(0.25)
        self.assertTrue(gone, "a session that reads no replies kept its connection after QUIT")
        self.assertGreater(time.monotonic() - t0, 5, "dropped before the grace ran out")


class DataTimeout(SecurityCase):
    """--data-timeout: a data connection that stalls, or never comes, is
    given up with 426/425; ferryd is not pinned meanwhile."""

    ferryd_args = ("-w", "--data-timeout", "2", "--workers", "1")

    def prepare_root(self):
        make_file(os.path.join(self.root, "big.bin"), 32 << 20, seed=6)
        make_file(os.path.join(self.root, "small.bin"), 100 << 10, seed=8)
        make_file(os.path.join(self.root, "target.bin"), 64 << 10, seed=9)

    def test_client_that_never_reads_is_aborted(self):
        a = self.raw()
        b = self.raw()
        self.assertTrue(a.login().startswith("230"))
        self.assertTrue(b.login().startswith("230"))
        a.cmd("TYPE I")
        b.cmd("TYPE I")
        baseline = fd_count(self.server.proc.pid)
        d = connect_from("127.0.0.1", pasv_port(a), rcvbuf=4096)
        self.assertTrue(a.cmd("RETR big.bin").startswith("150"))
        # Meanwhile another session is served in full.
        self.assertEqual(b.cmd("NOOP"), "200 NOOP ok.")
        _, data, final = transfer(b, "RETR small.bin")
        self.assertTrue(final.startswith("226"))
        self.assertEqual(len(data), 100 << 10)
        r = read_reply_within(a, 20)
        self.assertIsNotNone(r, "the stalled transfer was never given up")
        self.assertTrue(r.startswith("426"), r)
        d.close()
        self.assertEqual(a.cmd("NOOP"), "200 NOOP ok.")
        self.assertTrue(wait_until(lambda: fd_count(self.server.proc.pid) <= baseline, 10))

    def test_stalled_upload_is_aborted_and_discarded(self):
        old = sha256_file(os.path.join(self.root, "target.bin"))
        c = self.binary_session()
        for name in ("target.bin", "fresh.bin"):
            d = connect_from("127.0.0.1", pasv_port(c))
            self.assertTrue(c.cmd("STOR " + name).startswith("150"))
            d.sendall(b"half an upload " * 1000)
            r = read_reply_within(c, 20)      # the client stalls; ferryd gives up
            self.assertIsNotNone(r)
            self.assertTrue(r.startswith("426"), r)
            d.close()
        self.assertEqual(sha256_file(os.path.join(self.root, "target.bin")), old)
        self.assertFalse(os.path.exists(os.path.join(self.root, "fresh.bin")))
        self.assertEqual(temp_leftovers(self.root), [])
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")

    def test_slow_upload_below_the_wakeup_mark_still_moves(self):
        # An upload wakes the worker only once 256 KiB wait (SO_RCVLOWAT);
        # the once-a-second tick takes smaller amounts, so 1 KiB every
        # 0.4 s for 5 s is a slow upload, not a stall (timeout 2 s).
        c = self.binary_session()
        d = connect_from("127.0.0.1", pasv_port(c))
        self.assertTrue(c.cmd("STOR slow.bin").startswith("150"))
        piece = bytes(range(256)) * 4
        for _ in range(13):
            d.sendall(piece)
            time.sleep(0.4)
        d.close()
        r = read_reply_within(c, 20)
        self.assertIsNotNone(r)
        self.assertTrue(r.startswith("226"), r)
        with open(os.path.join(self.root, "slow.bin"), "rb") as fh:
            self.assertEqual(fh.read(), piece * 13)

    def test_upload_wakes_the_worker_per_batch_not_per_segment(self):
        # 4 MiB arriving 4 KiB per millisecond: a worker woken for every
        # arrival would switch ~1,000 times; one woken per 256 KiB, ~16.
        c = self.binary_session()
        # --workers 1: ferryd serves in its own process.
        worker = family_pids(self.server.proc.pid)
        self.assertEqual(worker, [self.server.proc.pid])
        d = connect_from("127.0.0.1", pasv_port(c))
        self.assertTrue(c.cmd("STOR batched.bin").startswith("150"))
        before = voluntary_switches(worker[0])
        piece = random.Random(4).randbytes(4096)
        for _ in range(1024):
            d.sendall(piece)
            time.sleep(0.001)
        d.close()
        r = read_reply_within(c, 20)
        switches = voluntary_switches(worker[0]) - before
        self.assertTrue(r is not None and r.startswith("226"), r)
        self.assertEqual(os.path.getsize(os.path.join(self.root, "batched.bin")), 4 << 20)
        self.assertLess(switches, 200)

    def test_passive_connection_that_never_comes(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        for cmd in ("PASV", "EPSV"):
            self.assertTrue(c.cmd(cmd)[:3] in ("227", "229"))
            self.assertTrue(c.cmd("RETR small.bin").startswith("150"))
            r = read_reply_within(c, 20)
            self.assertIsNotNone(r)
            self.assertTrue(r.startswith("425"), r)
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")


class Floods(SecurityCase):
    """A session that floods commands is served in turn with the others; one
    that never reads its replies is dropped before it costs memory."""

    ferryd_args = ("--workers", "1")

    def test_command_flood_does_not_starve_others(self):
        a = self.raw()
        b = self.raw()
        self.assertTrue(a.login().startswith("230"))
        self.assertTrue(b.login().startswith("230"))
        counted = {"n": 0}

        def reader():
            a.sock.settimeout(TIMEOUT)
            for _ in range(FLOOD_COMMANDS):
                try:
                    if a.reply() != "200 NOOP ok.":
                        return
                except (OSError, EOFError):
                    return
                counted["n"] += 1

        t = threading.Thread(target=reader)
        t.start()
        burst = b"NOOP\r\n" * 1000
        answered = 0
        for i in range(FLOOD_COMMANDS // 1000):
            a.sock.sendall(burst)
            if i % 10 == 0:
                b.send("NOOP\r\n")
                self.assertEqual(read_reply_within(b, 5), "200 NOOP ok.", "a flood starved another session")
                answered += 1
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(counted["n"], FLOOD_COMMANDS)
        self.assertEqual(answered, FLOOD_COMMANDS // 10000)

    def test_client_that_never_reads_replies_is_dropped(self):
        b = self.raw()
        self.assertTrue(b.login().startswith("230"))
        pid = family_pids(self.server.proc.pid)[-1]
        rss0 = rss_kib(pid)
        a = connect_from("127.0.0.1", self.server.port, rcvbuf=4096, timeout=10)
        burst = b"NOOP\r\n" * 10000
        dropped = False
        for _ in range(300):        # at most 18 MB of commands
            try:
                a.sendall(burst)
            except (ConnectionResetError, BrokenPipeError):
                dropped = True
                break
            except (socket.timeout, TimeoutError):
                break               # ferryd stopped reading instead: not a drop
        a.close()
        self.assertTrue(dropped, "ferryd kept a session that never reads its replies")
        self.assertLess(rss_kib(pid) - rss0, 64 * 1024)
        self.assertEqual(b.cmd("NOOP"), "200 NOOP ok.")
