"""Worker confinement: every ferryd worker runs under a seccomp filter
with no_new_privs, and still serves a full session."""
import os
import unittest

from harness import FerrydCase, child_pids, poll_until, start_ferryd


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return None


class TestSandbox(FerrydCase):
    ferryd_args = ("--workers", "2")

    def test_workers_are_confined(self):
        f = self.ftp()  # a worker has certainly entered the sandbox by now
        self.assertIn("/", f.pwd())
        # The second worker may still be starting: give it a moment.
        poll_until(lambda: len(child_pids(self.server.proc.pid)) == 2)
        kids = child_pids(self.server.proc.pid)
        self.assertEqual(len(kids), 2, kids)
        for pid in kids:
            confined = poll_until(lambda: status_field(pid, "Seccomp") == "2")
            self.assertTrue(confined, "worker %d: Seccomp %s" % (pid, status_field(pid, "Seccomp")))
            self.assertEqual(status_field(pid, "NoNewPrivs"), "1", pid)

    def test_no_sandbox_switch_is_honoured(self):
        # The check above can fail: without the filter the field reads 0.
        self.restart("--workers", "2", "--no-sandbox")
        self.ftp()
        kids = child_pids(self.server.proc.pid)
        self.assertTrue(kids)
        for pid in kids:
            self.assertEqual(status_field(pid, "Seccomp"), "0", pid)


if __name__ == "__main__":
    unittest.main()
