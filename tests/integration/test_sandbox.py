"""Worker confinement: every ferryd worker runs under a seccomp filter
with no_new_privs, and still serves a full session."""
import os
import unittest

from harness import FerrydCase, start_ferryd


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return None


def workers_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(d))
    return kids


class TestSandbox(FerrydCase):
    ferryd_args = ("--workers", "2")

    def test_workers_are_confined(self):
        f = self.ftp()  # a worker has certainly entered the sandbox by now
        self.assertIn("/", f.pwd())
        kids = workers_of(self.server.proc.pid)
        self.assertEqual(len(kids), 2, kids)
        for pid in kids:
            self.assertEqual(status_field(pid, "Seccomp"), "2", pid)
            self.assertEqual(status_field(pid, "NoNewPrivs"), "1", pid)

    def test_no_sandbox_switch_is_honoured(self):
        # The check above can fail: without the filter the field reads 0.
        self.restart("--workers", "2", "--no-sandbox")
        self.ftp()
        kids = workers_of(self.server.proc.pid)
        self.assertTrue(kids)
        for pid in kids:
            self.assertEqual(status_field(pid, "Seccomp"), "0", pid)


if __name__ == "__main__":
    unittest.main()
