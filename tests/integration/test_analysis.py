"""Whole-program checks: cppcheck finds nothing in src/, and one full
ferryd session under valgrind (memcheck) reports no errors and no
definite leaks."""
import ftplib
import io
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import FERRYD, Server, free_port, make_file

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))


class TestCppcheck(unittest.TestCase):
    def test_sources_are_clean(self):
        r = subprocess.run(["cppcheck", "--quiet", "--error-exitcode=1", "--enable=warning,portability",
                            "--inline-suppr", "--std=c11", "-D_GNU_SOURCE", "-I", "src/lib", "src/"],
                           cwd=TOP, capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


def sanitizer_build():
    with open(FERRYD, "rb") as f:
        return b"__asan_init" in f.read()


class TestValgrindSession(unittest.TestCase):
    @unittest.skipIf(sanitizer_build(), "valgrind cannot run an AddressSanitizer build; make test runs this")
    def test_one_full_session_is_clean(self):
        tmp = tempfile.mkdtemp(prefix="ferry-vg-")
        self.addCleanup(shutil.rmtree, tmp, True)
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        make_file(os.path.join(root, "f.bin"), 300_000, seed=3)
        make_file(os.path.join(root, "t.txt"), 20_000, seed=4, text=True)
        harness.give_to_server(tmp, root)
        log = os.path.join(tmp, "vg.log")
        port = free_port()
        # The sandbox is lifted: valgrind itself needs system calls the
        # allowlist does not grant.
        server = Server(["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                         "--errors-for-leak-kinds=definite", f"--log-file={log}",
                         FERRYD, "--root", root, "--port", str(port), "-w", "--workers", "1", "--no-sandbox"],
                        port, wait=120)
        try:
            f = ftplib.FTP()
            f.connect("127.0.0.1", port, timeout=60)
            f.login()
            f.retrlines("LIST", lambda line: None)
            list(f.mlsd())
            got = io.BytesIO()
            f.retrbinary("RETR f.bin", got.write)
            self.assertEqual(len(got.getvalue()), 300_000)
            f.retrlines("RETR t.txt", lambda line: None)
            f.storbinary("STOR up.bin", io.BytesIO(os.urandom(200_000)))
            f.storlines("STOR up.txt", io.BytesIO(b"a\nb\n" * 1000))
            f.set_pasv(False)
            f.retrbinary("RETR up.bin", lambda b: None)
            f.mkd("d")
            f.rename("up.txt", "d/up.txt")
            f.delete("d/up.txt")
            f.rmd("d")
            f.sendcmd("STAT /")
            for bad in ("PORT 1,2,3", "RETR missing", "XYZZY", "CWD /nope"):
                try:
                    f.sendcmd(bad)
                except ftplib.Error:
                    pass
            f.quit()
        finally:
            rc = server.stop(timeout=60)
        with open(log) as fh:
            report = fh.read()
        self.assertEqual(rc, 0, report)
        self.assertNotRegex(report, r"(Invalid (read|write)|uninitialised|definitely lost: [1-9])", report)


if __name__ == "__main__":
    unittest.main()
