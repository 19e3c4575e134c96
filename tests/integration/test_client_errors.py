"""ferry facing bad input and bad servers: usage errors, refused and
unresolvable hosts, a server that never answers, garbage and endless
replies, a PASV reply naming a foreign host, unsafe names in a listing,
and downloads cut short. Each must give one clear line, a non-zero exit,
and leave nothing half-written under a final name."""
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import FERRY, free_port, veth_namespace
from test_client_support import err, out, run_ferry, start_fake


class ClientErrorCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-err-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def ferry(self, *args, input=None, timeout=60):
        return run_ferry(list(args), input=input, cwd=self.tmp, env={"HOME": self.tmp}, timeout=timeout)

    def fake(self, mode):
        s = start_fake(mode)
        self.addCleanup(s.stop)
        return s

    def assert_fails_leaving_files_alone(self, port, verb, name, why):
        """verb name fails with the one line why and leaves no file; an
        existing local file of that name is left as it was."""
        path = os.path.join(self.tmp, name)
        p = self.ferry("--timeout", "5", "127.0.0.1", str(port), verb, name, timeout=30)
        self.assertOneLine(p, why)
        self.assertEqual(os.listdir(self.tmp), [], verb)
        with open(path, "wb") as f:
            f.write(b"old contents")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(port), verb, name, timeout=30)
        self.assertEqual(p.returncode, 1)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"old contents")
        self.assertEqual(os.listdir(self.tmp), [name])
        os.unlink(path)

    def assertOneLine(self, p, pattern, code=1):
        self.assertEqual(p.returncode, code, "stdout: %s\nstderr: %s" % (out(p), err(p)))
        lines = err(p).strip().splitlines()
        self.assertEqual(len(lines), 1, err(p))
        self.assertRegex(lines[0], pattern)


class TestUsage(ClientErrorCase):
    def test_help_and_version(self):
        p = self.ferry("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: ferry", out(p))
        p = self.ferry("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(out(p), r"^ferry \d+\.\d+")

    def test_bad_usage_exits_2(self):
        for args in (["--bogus"], ["127.0.0.1", "notaport"], ["127.0.0.1", "70000"],
                     ["--timeout", "abc", "127.0.0.1"], ["--timeout", "0", "127.0.0.1"],
                     ["-T", "x", "127.0.0.1"], ["ftp://"], ["127.0.0.1", "21", "frobnicate"]):
            p = self.ferry(*args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, err(p)))
            self.assertTrue(err(p).strip(), args)

    def test_oneshot_with_wrong_arguments_exits_2_without_connecting(self):
        # nothing listens on the port: a connection attempt would fail with 1
        port = free_port()
        for cmd in (["get"], ["rename", "a"], ["cd", "a", "b"]):
            p = self.ferry("127.0.0.1", str(port), *cmd)
            self.assertEqual(p.returncode, 2, "%s: %s" % (cmd, err(p)))
            self.assertRegex(err(p).strip(), r"^usage: %s " % cmd[0])

    def test_commands_without_connection(self):
        p = self.ferry(input="pwd\nls\nget x\nlpwd\nbogus\nhelp\n")
        self.assertEqual(p.returncode, 1)
        e = err(p)
        self.assertIn("pwd: not connected", e)
        self.assertIn("get: not connected", e)
        self.assertIn('unknown command "bogus"', e)
        self.assertIn(self.tmp, out(p))
        self.assertIn("Commands", out(p))

    def test_unterminated_quote(self):
        p = self.ferry(input='lcd "unterminated\n')
        self.assertOneLine(p, r"unterminated quote")


class TestConnectionFailures(ClientErrorCase):
    def test_refused(self):
        port = free_port()
        p = self.ferry("127.0.0.1", str(port), "pwd")
        self.assertOneLine(p, r"^cannot connect to 127\.0\.0\.1: Connection refused$")
        p = self.ferry("127.0.0.1", str(port), input="pwd\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Connection refused", err(p))
        self.assertIn("pwd: not connected", err(p))

    def test_unresolvable(self):
        p = self.ferry("no-such-host.invalid", "21", "pwd", timeout=60)
        self.assertOneLine(p, r"^cannot connect to no-such-host\.invalid: ")

    def test_silent_server_times_out(self):
        s = self.fake("silent")
        t0 = time.monotonic()
        p = self.ferry("--timeout", "2", "127.0.0.1", str(s.port), "pwd", timeout=30)
        took = time.monotonic() - t0
        self.assertOneLine(p, r"^no reply from server within 2 s$")
        self.assertLess(took, 15)

    def test_garbage_reply(self):
        s = self.fake("garbage")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "pwd", timeout=30)
        self.assertOneLine(p, r'garbage instead of a reply: "HELLO this is not FTP"')

    def test_endless_line(self):
        s = self.fake("longline")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "pwd", timeout=30)
        self.assertOneLine(p, r"reply line longer than 4096 bytes")

    def test_endless_multiline_reply(self):
        s = self.fake("bigreply")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "pwd", timeout=30)
        self.assertOneLine(p, r"server reply longer than \d+ bytes")

    def test_endless_preliminary_replies_time_out(self):
        """1xx after 1xx: the final reply must still come within --timeout,
        for the greeting (120) and for a command's replies."""
        for mode, cmd, pattern in (("endless1xx", "pwd", r"no reply from server within 2 s$"),
                                   ("greet120", "pwd", r"no reply from server within 2 s$")):
            s = self.fake(mode)
            t0 = time.monotonic()
            p = self.ferry("--timeout", "2", "127.0.0.1", str(s.port), cmd, timeout=40)
            self.assertOneLine(p, pattern)
            self.assertLess(time.monotonic() - t0, 15, mode)
            s.stop()

    def test_server_closes_connection(self):
        s = self.fake("close_on_user")
        p = self.ferry("127.0.0.1", str(s.port), "pwd", timeout=30)
        self.assertOneLine(p, r"^login: connection closed by server$")


class TestHostileServer(ClientErrorCase):
    def test_replies_sent_with_the_234_are_not_taken_for_protected_ones(self):
        """Bytes after "234" in the same packet, before the handshake (a
        forged 230 from someone on the path), end the session: they would
        otherwise be read as replies over TLS."""
        s = self.fake("tls_inject")
        for flag in ("--tls", "--tls-optional"):
            p = self.ferry("-v", flag, "--timeout", "5", "127.0.0.1", str(s.port), "pwd", timeout=30)
            self.assertEqual(p.returncode, 1, err(p))
            self.assertIn("server sent more after its 234 reply to AUTH TLS; not going on", err(p))
            self.assertNotIn("INJECTED", out(p))
            self.assertNotIn("--> PASS", err(p))

    def test_names_from_a_listing_reach_errors_shown_safely(self):
        """A listed name holding C1 CSI, too long for a local file: the
        error names it with '?' for the control, bounded in length."""
        s = self.fake("names_c1")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "mget", "*", timeout=30)
        self.assertEqual(p.returncode, 1)
        raw = p.stderr
        self.assertNotIn(b"\xc2\x9b", raw)
        self.assertNotIn(b"\x9b", raw)
        self.assertIn(b"??2JAAAA", raw)
        self.assertLess(max(len(ln) for ln in raw.splitlines()), 1100)

    def test_reget_of_a_missing_file_creates_nothing(self):
        s = self.fake("retr550")
        self.assert_fails_leaving_files_alone(s.port, "reget", "missing.bin", r"^reget: 550 no such file$")

    def test_download_stops_once_it_passes_size(self):
        """A server that goes on sending past the SIZE it announced (here
        for ever, 100 MB/s) is stopped one byte past it: nothing more is
        written, the transfer is aborted, and no file is left."""
        s = self.fake("endless_after_size")
        t0 = time.monotonic()
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "get", "payload.bin", timeout=30)
        self.assertOneLine(p, r"^get: server sent more than the 1048576 bytes its SIZE reported; "
                              r"stopped it there$")
        self.assertLess(time.monotonic() - t0, 20, "ferry took what the server sent")
        self.assertEqual(os.listdir(self.tmp), [])

    def test_upload_to_a_server_that_reads_nothing_says_it_stalled(self):
        s = self.fake("stor_noread")
        src = os.path.join(self.tmp, "up.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(32 << 20))
        p = self.ferry("--timeout", "2", "127.0.0.1", str(s.port), "put", src, "up.bin", timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("put: data connection: stalled for 2 s", err(p))

    def test_pasv_foreign_address_is_not_followed(self):
        s = self.fake("pasv_foreign")
        p = self.ferry("-v", "--timeout", "5", "127.0.0.1", str(s.port), "nlist", timeout=30)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertIn("listed-through-the-peer", out(p))
        self.assertIn("PASV named 10.9.8.7, connecting to the control peer 127.0.0.1 instead", err(p))

    def test_mget_refuses_unsafe_names(self):
        s = self.fake("unsafe_names")
        work = os.path.join(self.tmp, "work")
        os.mkdir(work)
        p = run_ferry(["--timeout", "5", "127.0.0.1", str(s.port)], input="mget * .*\n", cwd=work,
                      env={"HOME": self.tmp}, timeout=30)
        self.assertEqual(p.returncode, 1)
        e = err(p)
        self.assertIn('refusing unsafe name from listing: "../evil"', e)
        self.assertIn('refusing unsafe name from listing: "/tmp/abs-evil"', e)
        self.assertIn('refusing unsafe name from listing: "sub/inner"', e)
        self.assertIn('refusing unsafe name from listing: ".."', e)
        self.assertEqual(os.listdir(work), ["ok.bin"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "evil")))
        self.assertFalse(os.path.exists("/tmp/abs-evil"))

    def test_cut_download_leaves_no_file(self):
        for mode, why in (("short_426", r"^get: 426 connection lost$"),
                          ("short_226", r"^get: transfer incomplete: 300000 of 1048576 bytes arrived$")):
            s = self.fake(mode)
            self.assert_fails_leaving_files_alone(s.port, "get", "payload.bin", why)
            s.stop()

    def test_retries_resume_a_cut_download(self):
        """--retries: each cut (426 after 300,000 bytes) is resumed with
        REST where the temporary file ends; the file is whole, once."""
        s = self.fake("cut_twice")
        p = self.ferry("--timeout", "5", "--retries", "2", "127.0.0.1", str(s.port), "get", "payload.bin",
                       timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(err(p), r"(?m)^get: 426 connection lost; resuming at byte 300000 \(retry 1 of 2\)$")
        self.assertRegex(err(p), r"(?m)^get: 426 connection lost; resuming at byte 600000 \(retry 2 of 2\)$")
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)
        self.assertEqual(os.listdir(self.tmp), ["payload.bin"])

    def test_retries_run_out(self):
        # one retry for two cuts: the get fails and leaves nothing
        s = self.fake("cut_twice")
        p = self.ferry("--timeout", "5", "--retries", "1", "127.0.0.1", str(s.port), "get", "payload.bin",
                       timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(err(p), r"(?m)^get: 426 connection lost$")
        self.assertEqual(os.listdir(self.tmp), [])
        # without --retries a cut is final
        s2 = self.fake("cut_twice")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s2.port), "get", "payload.bin", timeout=60)
        self.assertOneLine(p, r"^get: 426 connection lost$")

    def test_retries_reconnect_to_the_same_directory(self):
        """The server drops the control connection mid-download: ferry logs
        in again, goes back to /sub (the file is only found there), and
        resumes with REST."""
        s = self.fake("drop_once")
        p = run_ferry(["--timeout", "5", "--retries", "3", "127.0.0.1", str(s.port)],
                      input="cd sub\nget payload.bin\n", cwd=self.tmp, env={"HOME": self.tmp}, timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(err(p), r"(?m)^get: .*; resuming at byte 300000 \(retry 1 of 3\)$")
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)
        self.assertRegex(out(p), r"(?m)^payload\.bin: 1048576 bytes received in ")
        # a 5xx is the server's last word: not retried
        os.unlink(os.path.join(self.tmp, "payload.bin"))
        p = self.ferry("--timeout", "5", "--retries", "3", "127.0.0.1", str(s.port), "get", "payload.bin",
                       timeout=60)
        self.assertOneLine(p, r"^get: 550 no such file in /$")
        self.assertEqual(os.listdir(self.tmp), [])

    def test_retries_send_a_cut_upload_again(self):
        """A cut STOR is sent again from the first byte (no server's
        remains of a cut upload can be trusted); the server gets it all."""
        s = self.fake("stor_cut_once")
        with open(os.path.join(self.tmp, "up.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4096)
        p = self.ferry("-v", "--timeout", "5", "--retries", "1", "127.0.0.1", str(s.port), "put", "up.bin",
                       timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(err(p), r"(?m)^put: .*; sending it again from the start \(retry 1 of 1\)$")
        self.assertRegex(err(p), r"(?m)^<-- 226 got 1048576 bytes in ")
        self.assertNotIn("REST", err(p))
        self.assertNotIn("APPE", err(p))

    def test_retries_start_over_without_size(self):
        """Without SIZE nothing would show a server ignoring REST, so a new
        file starts over from the first byte (and comes out whole here,
        where REST is acknowledged but ignored)."""
        s = self.fake("cut_nosize_norest")
        p = self.ferry("-v", "--timeout", "5", "--retries", "1", "127.0.0.1", str(s.port), "get",
                       "payload.bin", timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(err(p), r"(?m)^get: 426 connection lost; starting again from the first byte "
                                 r"\(retry 1 of 1\)$")
        self.assertNotIn("--> REST", err(p))
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)

    def test_retry_that_meets_an_ignored_rest_is_refused(self):
        # SIZE is known: the retry's REST 300000 is ignored, SIZE shows it
        s = self.fake("cut_norest")
        p = self.ferry("--timeout", "5", "--retries", "2", "127.0.0.1", str(s.port), "get", "payload.bin",
                       timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(err(p), r"(?m)^get: server sent more than the 748576 bytes after REST 300000 that "
                                 r"SIZE allows \(did it ignore REST\?\)$")
        self.assertNotIn("retry 2 of 2", err(p))
        self.assertEqual(os.listdir(self.tmp), [])

    def test_a_passing_epsv_refusal_fails_one_transfer_only(self):
        """A 4xx to EPSV is transient: that transfer fails with the server's
        words, and the next one asks EPSV again (never PASV, which cannot
        reach an IPv6 host)."""
        s = self.fake("epsv425_once")
        p = self.ferry("-v", "--timeout", "5", "127.0.0.1", str(s.port),
                       input="get payload.bin\nget payload.bin\n")
        self.assertEqual(p.returncode, 1, err(p))
        self.assertRegex(err(p), r"(?m)^get: 425 All reserved TCP ports are busy$")
        self.assertEqual(err(p).count("--> EPSV"), 2, err(p))
        self.assertNotIn("--> PASV", err(p))
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)

    def test_retries_skip_failures_that_are_not_cuts(self):
        # a malformed PASV reply is no network cut: one error, no pauses
        s = self.fake("badpasv")
        t0 = time.monotonic()
        p = self.ferry("--timeout", "5", "--retries", "3", "127.0.0.1", str(s.port), "get", "payload.bin",
                       timeout=60)
        self.assertOneLine(p, r"^get: .*PASV")
        self.assertLess(time.monotonic() - t0, 3)

    def test_retries_reconnect_when_an_idle_session_was_dropped(self):
        """The server ended the idle session (421, closed) before the
        transfer began: --retries connects again, returns to /sub (known
        from cd; PWD cannot be asked any more) and carries on."""
        s = self.fake("idle421")
        p = run_ferry(["--timeout", "5", "--retries", "1", "127.0.0.1", str(s.port)],
                      input="cd sub\nget payload.bin\n", cwd=self.tmp, env={"HOME": self.tmp}, timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(err(p), r"(?m)^get: 421 Timeout\.; connecting again \(retry 1 of 1\)$")
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)
        s2 = self.fake("idle421")
        with open(os.path.join(self.tmp, "up.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4096)
        p = self.ferry("-v", "--timeout", "5", "--retries", "1", "127.0.0.1", str(s2.port), "put", "up.bin",
                       timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(err(p), r"(?m)^put: 421 Timeout\.; connecting again \(retry 1 of 1\)$")
        self.assertRegex(err(p), r"(?m)^<-- 226 got 1048576 bytes in ")
        # without --retries the loss is final, as before
        s3 = self.fake("idle421")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s3.port), "get", "payload.bin", timeout=60)
        self.assertOneLine(p, r"^get: 421 Timeout\.$")

    def test_mget_over_nlst_skips_directories_and_names_failures(self):
        """Without MLSD, NLST lists a directory like a file: its RETR 550 is
        followed by CWD into it (and back), and it is skipped; a file that
        cannot be read fails with a line that names it."""
        s = self.fake("nlst_dirs")
        p = self.ferry("-v", "--timeout", "5", "127.0.0.1", str(s.port), "mget", "*", timeout=60)
        self.assertEqual(p.returncode, 1, err(p))
        lines = [l for l in err(p).splitlines() if not l.startswith(("-->", "<--", "***"))]
        self.assertEqual(lines, ["get: gone.bin: 550 Failed to open file."])
        self.assertIn("--> CWD subdir", err(p))
        self.assertRegex(err(p), r"(?m)^--> CWD /$")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["a.bin", "b.bin"])
        with open(os.path.join(self.tmp, "b.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)

    def test_reconnect_with_a_long_password(self):
        # a 300-byte password survives for the reconnect
        s = self.fake("drop_once")
        p = run_ferry(["--timeout", "5", "--retries", "1", "-u", "carol", "--password", "p" * 300,
                       "127.0.0.1", str(s.port)], input="cd sub\nget payload.bin\n", cwd=self.tmp,
                      env={"HOME": self.tmp}, timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)

    def test_reconnect_logs_in_with_the_password_given_to_user(self):
        s = self.fake("drop_once")
        p = run_ferry(["--timeout", "5", "--retries", "1", "-n", "127.0.0.1", str(s.port)],
                      input="user bob secret\ncd sub\nget payload.bin\npwd\n", cwd=self.tmp,
                      env={"HOME": self.tmp}, timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)
        self.assertIn("/sub", out(p))

    def terminate_when(self, args, ready, sig=signal.SIGTERM, script=None, ignore=None):
        """Starts ferry with args in self.tmp (script on its stdin; the
        signal ignore ignored from the start, as nohup does), sends sig once
        ready(proc) holds (polled for at most 20 s), and returns its exit
        status. The other signals start at their defaults, as a shell
        starts a foreground command: a suite run in the background (by a
        shell without job control, or under nohup) has SIGINT ignored, which
        ferry would keep."""
        def setup():
            for caught in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(caught, signal.SIG_IGN if caught == ignore else signal.SIG_DFL)
        proc = subprocess.Popen([FERRY] + args, cwd=self.tmp, env=dict(os.environ, HOME=self.tmp),
                                stdin=subprocess.PIPE if script else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=setup)
        try:
            if script:
                proc.stdin.write(script.encode())
                proc.stdin.close()
            deadline = time.monotonic() + 20
            while not ready(proc) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(ready(proc), os.listdir(self.tmp))
            proc.send_signal(sig)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            self.stderr_seen = proc.stderr.read() if proc.stderr.readable() else b""
            proc.stderr.close()
        return proc.returncode

    def temp_file_exists(self, proc):
        return any(n.startswith(".") and ".ferry-" in n for n in os.listdir(self.tmp))

    def test_signal_while_the_transfer_starts_cleans_up(self):
        # SIGTERM while RETR waits for its 150: the temporary file goes too
        s = self.fake("slow150")
        rc = self.terminate_when(["--timeout", "20", "127.0.0.1", str(s.port), "get", "payload.bin"],
                                 self.temp_file_exists)
        self.assertEqual(rc, -signal.SIGTERM)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_interrupt_stops_mget_and_the_script(self):
        """^C during the first file of an mget cancels it and the files
        after it, and stops the script (exit 130)."""
        s = self.fake("trickle_many")
        rc = self.terminate_when(["--timeout", "20", "127.0.0.1", str(s.port)], self.temp_file_exists,
                                 sig=signal.SIGINT, script="mget *.bin\nget payload.bin\n")
        self.assertEqual(rc, 130, self.stderr_seen)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_interrupt_before_a_retry_is_not_lost(self):
        """^C while the 226 of a short download is awaited: no retry is
        made, nothing is kept, the script stops."""
        s = self.fake("short_slow226")
        rc = self.terminate_when(["--timeout", "20", "--retries", "2", "127.0.0.1", str(s.port)],
                                 self.temp_file_exists, sig=signal.SIGINT,
                                 script="get payload.bin\nget payload.bin again.bin\n")
        self.assertEqual(rc, 130, self.stderr_seen)
        self.assertNotIn(b"retry 1", self.stderr_seen)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_signal_ignored_at_start_stays_ignored(self):
        """Under nohup (SIGHUP ignored) a SIGHUP does not cancel a transfer."""
        s = self.fake("slow226")
        rc = self.terminate_when(["--timeout", "20", "127.0.0.1", str(s.port), "get", "payload.bin"],
                                 self.temp_file_exists, sig=signal.SIGHUP, ignore=signal.SIGHUP)
        self.assertEqual(rc, 0, self.stderr_seen)
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)

    def test_signal_in_the_retry_pause_cleans_up(self):
        """SIGTERM while ferry waits to try again: the temporary file goes,
        then ferry ends as killed by the signal."""
        s = self.fake("cut_twice")
        seen = [b""]

        def announced(proc):
            if select.select([proc.stderr], [], [], 0.1)[0]:
                seen[0] += os.read(proc.stderr.fileno(), 4096)
            return b"retry 1 of 3" in seen[0]
        rc = self.terminate_when(["--timeout", "5", "--retries", "3", "127.0.0.1", str(s.port), "get",
                                  "payload.bin"], announced)
        self.assertEqual(rc, -signal.SIGTERM)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_signal_while_the_last_reply_is_awaited_cleans_up(self):
        """SIGTERM after the bytes are in but before the 226: the download
        is not complete for ferry, so the temporary file goes, then ferry
        ends as killed by the signal."""
        s = self.fake("slow226")

        def all_bytes_in(proc):
            sizes = []
            for n in os.listdir(self.tmp):
                try:
                    sizes.append(os.path.getsize(os.path.join(self.tmp, n)))
                except FileNotFoundError:
                    pass
            return 1 << 20 in sizes
        rc = self.terminate_when(["--timeout", "20", "127.0.0.1", str(s.port), "get", "payload.bin"],
                                 all_bytes_in)
        self.assertEqual(rc, -signal.SIGTERM)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_retries_need_a_valid_count(self):
        for bad in ("-1", "101", "x"):
            p = self.ferry("--retries", bad, "127.0.0.1", "1", "ls", timeout=30)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--retries wants a count from 0 to 100", err(p))
        # the shell command sets it too; status shows it
        p = self.ferry(input="retries 101\nretries 4\nstatus\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn('retries: a count from 0 to 100, not "101"', err(p))
        self.assertRegex(out(p), r"(?m)^Mode: .*; retries: 4\.$")

    def test_retries_shell_command_resumes_a_cut_download(self):
        s = self.fake("cut_twice")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), input="retries 2\nget payload.bin\n",
                       timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)

    def test_mget_writes_only_regular_files_named_by_the_listing(self):
        """Names from the listing that exist here as a directory, a link to
        one, or a FIFO are not written into or through; "-" is a file, not
        standard output; a name with a NUL is refused, not cut short."""
        s = self.fake("local_names")
        work = os.path.join(self.tmp, "work")
        outside = os.path.join(self.tmp, "outside")
        for d in (work, outside, os.path.join(work, "sub")):
            os.mkdir(d)
        os.symlink(outside, os.path.join(work, "dlink"))
        os.mkfifo(os.path.join(work, "fifo"))
        p = run_ferry(["--timeout", "5", "127.0.0.1", str(s.port)], input="mget *\n", cwd=work,
                      env={"HOME": self.tmp}, timeout=30)
        self.assertEqual(p.returncode, 1, err(p))
        self.assertEqual(os.listdir(outside), [])
        self.assertEqual(os.listdir(os.path.join(work, "sub")), [])
        self.assertEqual(sorted(os.listdir(work)), ["-", "dlink", "fifo", "ok.bin", "sub"])
        payload = bytes(range(256)) * 4096
        for name in ("-", "ok.bin"):
            with open(os.path.join(work, name), "rb") as f:
                self.assertEqual(f.read(), payload, name)
        self.assertNotIn(payload[:64], p.stdout)
        e = err(p)
        for name in ("dlink", "fifo", "sub"):
            self.assertIn("get: %s: not a regular file here; not written" % name, e)
        self.assertIn('refusing unsafe name from listing: "nul?ok.bin"', e)

    def test_reget_from_a_server_that_ignores_rest(self):
        """350 to REST, then the whole file: the resumed file must not keep
        a duplicated head; it goes back to the part it was."""
        s = self.fake("norest")
        part = (bytes(range(256)) * 4096)[:50000]
        local = os.path.join(self.tmp, "payload.bin")
        with open(local, "wb") as f:
            f.write(part)
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "reget", "payload.bin", timeout=30)
        self.assertOneLine(p, r"^reget: server sent more than the 998576 bytes after REST 50000 that "
                              r"SIZE allows \(did it ignore REST\?\); payload.bin left as it was$")
        with open(local, "rb") as f:
            self.assertEqual(f.read(), part)

    def test_sigterm_mid_download_leaves_no_temporary_file(self):
        """SIGTERM cancels the download like ^C (temporary file removed),
        then ends ferry as killed by SIGTERM."""
        s = self.fake("trickle")
        e = dict(os.environ, HOME=self.tmp)
        e.pop("FERRY_PASSWORD", None)
        proc = subprocess.Popen([FERRY, "--timeout", "10", "127.0.0.1", str(s.port), "get", "payload.bin"],
                                cwd=self.tmp, env=e, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(proc.kill)
        for _ in range(100):                 # the temporary file shows the download is under way
            if os.listdir(self.tmp):
                break
            time.sleep(0.05)
        self.assertTrue(os.listdir(self.tmp), "no temporary file appeared")
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        self.assertEqual(proc.returncode, -signal.SIGTERM)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_multiline_reply_shown_as_it_came(self):
        s = self.fake("multiline")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "system", timeout=30)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertEqual(out(p), "215-first\n215-inner with the code\n inner with a space\n"
                                 "216 not the end\n215 end\n")

    def test_complete_download_from_fake(self):
        s = self.fake("normal")
        p = self.ferry("--timeout", "5", "127.0.0.1", str(s.port), "get", "payload.bin", timeout=30)
        self.assertEqual(p.returncode, 0, err(p))
        with open(os.path.join(self.tmp, "payload.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)) * 4096)


class TestUploadSegments(ClientErrorCase):
    """To a server on another host ferry corks an upload's data connection
    (TCP_CORK): the kernel sends only full segments, and a small file leaves
    in one segment with the FIN. The server is a fake in a private network
    namespace behind a veth pair, and counts what its socket received
    (ss(8)): the handshake's ACK, then the file with the FIN: 3 with the
    SYN. Uncorked, the FIN follows alone (4), and a bulk upload ends every
    sendfile() call in a short segment. (To a server on the same host ferry
    writes through a buffer with TCP_NODELAY instead; docs/CLIENT.md.)"""

    def put_small(self, host, port, *opts):
        """ferry -v puts 1,000 random bytes (under any MSS) as x.bin."""
        src = os.path.join(self.tmp, "small.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(1000))
        p = self.ferry("-v", *opts, "--timeout", "5", host, str(port), "put", src, "x.bin",
                       timeout=30)
        self.assertEqual(p.returncode, 0, err(p))
        return err(p)

    def test_small_upload_is_one_segment_with_fin(self):
        host, ns, _ = veth_namespace(self, "ferry-seg")
        s = start_fake("normal", host=host, wrap=ns)
        self.addCleanup(s.stop)
        for _ in range(3):  # three times: a lucky merge cannot pass it
            self.assertIn("226 got 1000 bytes in 3 segments", self.put_small(host, s.port))

    def test_same_host_upload_is_sent_at_once(self):
        # To a server on this host ferry writes through a buffer with
        # TCP_NODELAY (docs/CLIENT.md): the file's segment leaves at once
        # and the FIN follows alone, 4 segments with the SYN, where a
        # corked socket would hold the data for the FIN (3); and unpaced:
        # Reno, not the machine's default (docs/ARCHITECTURE.md).
        s = self.fake("normal")
        for _ in range(3):
            self.assertIn("226 got 1000 bytes in 4 segments from a reno sender",
                          self.put_small("127.0.0.1", s.port))

    def test_same_host_active_upload_is_unpaced(self):
        # active mode: the connection ferry accepts comes off a listener
        # set to Reno, as its passive connections are made
        s = self.fake("normal")
        e = self.put_small("127.0.0.1", s.port, "-A")
        self.assertIn("--> EPRT |1|127.0.0.1|", e)
        self.assertRegex(e, r"226 got 1000 bytes in \d+ segments from a reno sender")
