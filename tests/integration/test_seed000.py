"""Seed 000 (CPSC 471): `serv PORT` is `ferryd PORT`, `cli HOST PORT` is
`ferry HOST PORT`, with get, put, ls and quit at the ftp> prompt, in
active mode (the server connects to an ephemeral client port) and passive
mode; the server prints SUCCESS/FAILURE for every request and the client
prints the file name and byte count after every transfer. Files of 0 and 1
bytes and larger than the socket buffers."""
import os
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
from harness import FERRY, FERRYD, Server, free_port, make_file, sha256_file

SIZES = {"zero.bin": 0, "one.bin": 1, "big.bin": 9 * 1024 * 1024 + 3}


class Seed000(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-seed000-")
        self.srv = os.path.join(self.tmp, "srv")
        self.cli = os.path.join(self.tmp, "cli")
        os.mkdir(self.srv)
        os.mkdir(self.cli)
        for name, size in SIZES.items():
            make_file(os.path.join(self.srv, "s-" + name), size, seed=size + 1)
            make_file(os.path.join(self.cli, "c-" + name), size, seed=size + 2)
        harness.give_to_server(self.tmp, self.srv)
        self.port = free_port()
        # The seed's invocation (the port as the argument, -v after it), plus
        # -w: ferryd serves read-only unless told that uploads are welcome.
        self.server = Server([FERRYD, "-w", str(self.port), "-v"], self.port, cwd=self.srv)
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_client(self, mode_args, script):
        r = subprocess.run([FERRY] + mode_args + ["127.0.0.1", str(self.port)], input=script.encode(),
                           cwd=self.cli, capture_output=True, timeout=120)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def check_session(self, mode_args, data_verb):
        script = "ls\n"
        for name in SIZES:
            script += f"get s-{name}\nput c-{name}\n"
        script += "get missing.bin\nquit\n"
        rc, out, err = self.run_client(mode_args, script)
        self.assertEqual(rc, 1, "one get failed, so the script's exit code is 1")
        self.assertIn("missing.bin", err)
        # ls shows the server's files.
        for name in SIZES:
            self.assertIn("s-" + name, out)
        # After every transfer: file name and byte count.
        for name, size in SIZES.items():
            self.assertRegex(out, rf"(?m)^s-{re.escape(name)}: {size} bytes received in ")
            self.assertRegex(out, rf"(?m)^c-{re.escape(name)}: {size} bytes sent in ")
            self.assertEqual(sha256_file(os.path.join(self.cli, "s-" + name)),
                             sha256_file(os.path.join(self.srv, "s-" + name)))
            self.assertEqual(sha256_file(os.path.join(self.srv, "c-" + name)),
                             sha256_file(os.path.join(self.cli, "c-" + name)))
        self.assertFalse(os.path.exists(os.path.join(self.cli, "missing.bin")))
        # The server printed SUCCESS/FAILURE for every request.
        time.sleep(0.2)
        log = self.server.stdout()
        for name in SIZES:
            self.assertIn(f"SUCCESS RETR s-{name}", log)
            self.assertIn(f"SUCCESS STOR c-{name}", log)
        self.assertIn("SUCCESS LIST", log)
        self.assertRegex(log, r"FAILURE RETR missing\.bin: 550 ")
        self.assertIn("SUCCESS QUIT", log)
        self.assertIn(data_verb, log)
        commands = re.findall(r"(?m)^\[\d+\] ([A-Z]{3,4})(?: |$)", log)
        outcomes = re.findall(r"(?m)^\[\d+\] (?:SUCCESS|FAILURE) ([A-Z]{3,4})", log)
        self.assertEqual(sorted(set(commands) - {"SUCC", "FAIL"}), sorted(set(outcomes)))
        self.assertEqual(len([c for c in commands if c not in ("SUCC", "FAIL")]), len(outcomes))

    def test_malformed_requests_get_failure_lines_too(self):
        """Every request, not only well-formed ones, ends in SUCCESS or
        FAILURE: an empty line, a verb too long to be one, an unknown verb
        and a line too long to keep each get their 500 and a FAILURE line."""
        c = harness.RawControl("127.0.0.1", self.port)
        self.addCleanup(c.close)
        requests = [b"", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ x", b"XYZZY", b"NOOP " + b"x" * 5000]
        for req in requests:
            c.send(req + b"\r\n")
            self.assertEqual(c.reply()[:4], "500 ", req[:30])
        self.assertTrue(c.cmd("QUIT").startswith("221"))
        deadline = time.monotonic() + 10
        while "SUCCESS QUIT" not in self.server.stdout() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = self.server.stdout()
        failures = re.findall(r"(?m)^\[\d+\] FAILURE (.*): 500 ", log)
        self.assertEqual(failures, ["(no verb)", "(long verb)", "XYZZY", "(too long)"], log)
        self.assertIn("SUCCESS QUIT", log)

    def test_active_mode(self):
        # The client listens on an ephemeral port; the server connects to it.
        self.check_session(["-A"], "SUCCESS EPRT |1|127.0.0.1|")

    def test_passive_mode(self):
        self.check_session([], "SUCCESS EPSV")

    def test_prompt_shown_for_commands_from_a_pipe(self):
        # --prompt: the seed's ftp> transcript when a script drives cli
        rc, out, err = self.run_client(["-A", "--prompt"], "ls\nget s-one.bin\nquit\n")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertIn("220 ferry FTP server ready.", lines)
        prompts = [l for l in lines if l.startswith("ftp> ")]
        self.assertEqual(prompts, ["ftp> ls", "ftp> get s-one.bin", "ftp> quit"])
        at = lines.index("ftp> get s-one.bin")
        self.assertRegex(lines[at + 1], r"^s-one\.bin: 1 bytes received in ")
        # without it a script's output is the commands' own
        rc, out, err = self.run_client(["-A"], "get s-one.bin\nquit\n")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("ftp>", out)

    def test_prompt_is_ftp(self):
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(self.cli)
            os.execv(FERRY, [FERRY, "127.0.0.1", str(self.port)])
        out = b""
        deadline = time.monotonic() + 20

        def read_until(token):
            nonlocal out
            while token not in out and time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.5)
                if r:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
            return token in out

        try:
            self.assertTrue(read_until(b"ftp> "), out)
            os.write(fd, b"get s-one.bin\r")
            self.assertTrue(read_until(b"s-one.bin: 1 bytes received"), out)
            os.write(fd, b"quit\r")
            read_until(b"\x00never")
        finally:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            os.close(fd)


if __name__ == "__main__":
    unittest.main()
