"""Safety rules that once failed: a long transfer is activity for the idle
clock, SIGTERM at any moment of start-up stops ferryd, and STOR's "is a
directory" check never follows a link out of the root. (The fourth, a
killed client's upload, is ClientKilled.test_client_killed_mid_stor in
test_security_faults.py.)"""
import os
import signal
import subprocess
import time

from harness import make_file
from test_security_common import SecurityCase, connect_from, family_pids, pasv_port, start_server
from test_security_faults import START_STOP_RUNS


class IdleAfterTransfer(SecurityCase):
    ferryd_args = ("--idle-timeout", "2", "--data-timeout", "30", "--workers", "1")

    def prepare_root(self):
        make_file(os.path.join(self.root, "big.bin"), 8 << 20, seed=5)

    def test_idle_clock_restarts_after_a_transfer(self):
        """A transfer longer than the idle timeout is activity, not idleness:
        the session is not cut right after it ends."""
        c = self.binary_session()
        d = connect_from("127.0.0.1", pasv_port(c), rcvbuf=65536)
        self.assertTrue(c.cmd("RETR big.bin").startswith("150"))
        total = 0
        t0 = time.monotonic()
        for _ in range(10000):
            b = d.recv(65536)
            if not b:
                break
            total += len(b)
            if time.monotonic() - t0 < 3.5:
                time.sleep(0.03)   # read slowly: the transfer outlasts the idle timeout
        d.close()
        self.assertEqual(total, 8 << 20)
        self.assertGreater(time.monotonic() - t0, 2.5)
        self.assertTrue(c.reply().startswith("226"))
        time.sleep(1.2)            # well inside the idle timeout
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")


class SigtermRace(SecurityCase):
    ferryd_args = ("-w",)

    def test_sigterm_right_after_start(self):
        """Whenever SIGTERM comes, even while workers are being started,
        ferryd exits 0."""
        self.check_health = False
        self.server.stop()
        hung = []
        for i in range(START_STOP_RUNS):
            s = start_server(self.root, *self.ferryd_args)
            time.sleep((i % 15) * 0.001)
            s.proc.send_signal(signal.SIGTERM)
            try:
                rc = s.proc.wait(5)
            except subprocess.TimeoutExpired:
                rc = None
                hung.append((i, family_pids(s.proc.pid)))
                for pid in family_pids(s.proc.pid)[1:]:
                    os.kill(pid, signal.SIGKILL)
                s.proc.kill()
                s.proc.wait(10)
            # Exit 0 once ferryd runs its first instruction (the stop signals
            # are blocked from there on); a SIGTERM that lands while the
            # dynamic loader is still mapping libraries ends the process
            # by the default action, which is just as clean.
            if rc is not None:
                self.assertIn(rc, (0, -signal.SIGTERM), s.stderr())
        self.assertEqual(hung, [], "ferryd did not stop after SIGTERM")


class StorStatThroughLink(SecurityCase):
    """STOR onto a link that points out of the root must not reveal what
    the link points at (its check for "is a directory" must not follow it)."""

    ferryd_args = ("-w",)

    def prepare_root(self):
        os.mkdir(os.path.join(self.tmp, "outside_dir"))
        os.symlink(os.path.join(self.tmp, "outside_dir"), os.path.join(self.root, "probe_dir"))
        os.symlink(os.path.join(self.tmp, "no-such-thing"), os.path.join(self.root, "probe_none"))

    def test_stor_onto_outside_link_reveals_nothing(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        replies = {}
        for name in ("probe_dir", "probe_none"):
            d = connect_from("127.0.0.1", pasv_port(c))
            r = c.cmd("STOR " + name)
            replies[name] = r[:3]
            if r.startswith("150"):
                d.sendall(b"replaces the link\n")
                d.close()
                c.reply()
            d.close()
        self.assertEqual(replies["probe_dir"], replies["probe_none"], replies)
        self.assertEqual(os.listdir(os.path.join(self.tmp, "outside_dir")), [])
