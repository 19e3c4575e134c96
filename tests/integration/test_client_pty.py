"""The interactive shell on a pseudo-terminal: the ftp> prompt, the
progress bar (on a terminal only), errors that leave the shell running,
tab completion of commands, remote and local paths, and the password
prompt without echo. Against pyftpdlib and ferryd."""
import fcntl
import os
import pty
import re
import shutil
import tempfile
import select
import signal
import struct
import termios
import time
import unicodedata
import unittest

from harness import FERRY, make_file, sha256_file
from test_client_support import ServerFixture, start_fake

PROMPT = b"ftp> "
MIB = 1024 * 1024


class PtySession:
    """ferry on a fresh pseudo-terminal (its controlling terminal)."""

    def __init__(self, argv, cwd, env):
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(cwd)
                os.execve(FERRY, [FERRY] + argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.seen = b""
        self.status = None

    def read_until(self, token, timeout=20):
        """Reads until token appears after what was consumed; returns the text before it."""
        deadline = time.monotonic() + timeout
        while token not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %r; got %r" % (token, self.seen[-2000:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError("ferry ended while waiting for %r; got %r" % (token, self.seen[-2000:]))
            self.seen += chunk
        before, _, self.seen = self.seen.partition(token)
        return before

    def send(self, data):
        os.write(self.fd, data)

    def wait_line_editor(self, timeout=10):
        """Waits until the line editor has the terminal in raw mode. It
        prints its prompt first and leaves canonical mode just after:
        keys typed in between go through the tty's line discipline, which
        turns ^D on an empty line into a NUL byte once raw mode starts."""
        deadline = time.monotonic() + timeout
        # tcgetattr on the master reports the terminal's (the slave's) modes.
        while termios.tcgetattr(self.fd)[3] & termios.ICANON:
            if time.monotonic() > deadline:
                raise AssertionError("the line editor never took the terminal; got %r"
                                     % self.seen[-2000:])
            time.sleep(0.01)

    def type(self, keys):
        """Types keys into the line editor, once it is reading them."""
        self.wait_line_editor()
        self.send(keys)

    def command(self, line, timeout=30):
        """Types line and Enter; returns what ferry printed before the next prompt."""
        self.type(line.encode() + b"\r")
        return self.read_until(PROMPT, timeout)

    def wait(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            try:
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if r:
                    self.seen += os.read(self.fd, 65536)
            except OSError:
                time.sleep(0.05)
        raise AssertionError("ferry did not exit; it printed %r" % self.seen[-2000:])

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


class ShellSuite:
    def shell(self, *args, lang="C"):
        env = {"HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm",
               "LANG": lang}
        s = PtySession(list(args) + ["127.0.0.1", str(self.port)], self.local, env)
        self.addCleanup(s.close)
        self.share_root()
        return s

    def test_session_progress_and_errors(self):
        make_file(self.rpath("big.bin"), 4 * MIB, seed=21)
        self.share_root()
        s = self.shell()
        banner = s.read_until(PROMPT)
        self.assertIn(b"Connected to 127.0.0.1.", banner)
        self.assertRegex(banner, rb"230")
        got = s.command("get big.bin")
        # The bar: redrawn with CR, percent, rate and ETA; then the summary.
        self.assertIn(b"\r", got)
        self.assertRegex(got, rb"100%")
        self.assertRegex(got, rb"ETA 0:00")
        self.assertRegex(got, rb"\[=+>?\]")
        self.assertRegex(got, rb"big\.bin: 4194304 bytes received in \d+\.\d\d s \([\d.]+ \w+/s\)")
        self.assertEqual(sha256_file(self.lpath("big.bin")), sha256_file(self.rpath("big.bin")))
        got = s.command("nosuch")
        self.assertIn(b'unknown command "nosuch"', got)
        got = s.command("get")
        self.assertIn(b"usage: get REMOTE [LOCAL]", got)
        got = s.command("get missing.bin")
        self.assertRegex(got, rb"get: 55\d ")
        got = s.command("progress off")
        got = s.command("put big.bin copy.bin")
        self.assertNotIn(b"%", got)
        self.assertRegex(got, rb"big\.bin: 4194304 bytes sent in")
        self.assertEqual(sha256_file(self.rpath("copy.bin")), sha256_file(self.lpath("big.bin")))
        got = s.command("PWD")
        self.assertIn(b"/\r\n", got)
        s.type(b"bye\r")
        self.assertEqual(s.wait(), 0)

    def test_listing_escape_sequences_are_not_passed_to_the_terminal(self):
        """A name chosen by whoever can write on the server, shown by ls on
        a terminal: its escape sequence (here: clear the screen, set the
        title) must reach the terminal as '?', not be acted on."""
        make_file(self.rpath("evil\x1b[2J\x1b]0;owned\x07name"), 10, seed=3)
        self.share_root()
        s = self.shell()
        s.read_until(PROMPT)
        for cmd in ("ls", "nlist"):
            got = s.command(cmd)
            self.assertIn(b"evil?[2J?]0;owned?name", got, cmd)
            self.assertNotIn(b"\x1b", got, cmd)
            self.assertNotIn(b"\x07", got, cmd)
        s.type(b"bye\r")
        self.assertEqual(s.wait(), 0)

    def test_c1_controls_are_not_passed_to_the_terminal(self):
        """U+009B is CSI to many terminals: in a listing and in the progress
        line of a download it is shown as '?', while other non-ASCII
        UTF-8 (here an e with acute) is shown as it is."""
        make_file(self.rpath("c1\u009b2Jname"), 10, seed=4)
        make_file(self.rpath("caf\u00e9"), 10, seed=5)
        self.share_root()
        s = self.shell()
        s.read_until(PROMPT)
        for cmd in ("ls", "nlist"):
            got = s.command(cmd)
            self.assertIn(b"c1??2Jname", got, cmd)
            self.assertIn("caf\u00e9".encode(), got, cmd)
            self.assertNotIn(b"\x9b", got, cmd)
        got = s.command("mget c1*")
        self.assertIn(b"c1??2Jname: 10 bytes received", got)
        self.assertNotIn(b"\x9b", got)
        self.assertEqual(sha256_file(self.lpath("c1\u009b2Jname")),
                         sha256_file(self.rpath("c1\u009b2Jname")))
        s.type(b"bye\r")
        self.assertEqual(s.wait(), 0)

    def test_progress_bar_never_cuts_a_character(self):
        """On a narrow terminal the name in the bar is cut to fit, between
        characters, never inside a UTF-8 one."""
        name = "\u00e9" * 50 + ".bin"
        make_file(self.rpath(name), 2 * MIB, seed=9)
        self.share_root()
        s = self.shell(lang="C.UTF-8")
        fcntl.ioctl(s.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
        s.read_until(PROMPT)
        got = s.command("get " + name)
        bars = [seg for seg in got.split(b"\r") if b"%" in seg]
        self.assertTrue(bars, got)
        for seg in bars:
            seg.decode("utf-8")  # raises on a cut character
            self.assertIn("\u00e9".encode() * 5, seg)
        self.assertEqual(sha256_file(self.lpath(name)), sha256_file(self.rpath(name)))
        # wide characters take two columns: the line still fits the terminal
        wide = "\u65e5\u672c\u8a9e" * 20 + ".bin"
        make_file(self.rpath(wide), 2 * MIB, seed=10)
        self.share_root()
        got = s.command("get " + wide)
        bars = [seg.decode("utf-8") for seg in got.split(b"\r") if b"%" in seg]
        self.assertTrue(bars, got)
        for seg in bars:
            cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in seg.rstrip("\n"))
            self.assertLessEqual(cols, 60, seg)
        s.type(b"bye\r")
        self.assertEqual(s.wait(), 0)

    def test_tab_completion(self):
        with open(self.rpath("remote-only.txt"), "wb") as f:
            f.write(b"remote\n")
        os.mkdir(self.rpath("subdir"))
        with open(self.rpath("subdir", "inner.txt"), "wb") as f:
            f.write(b"inner\n")
        with open(self.rpath("subdir", "other.txt"), "wb") as f:
            f.write(b"other\n")
        with open(self.lpath("local-only.txt"), "wb") as f:
            f.write(b"local\n")
        s = self.shell()
        s.read_until(PROMPT)
        # The terminal shows completions with cursor movements, so each
        # line is judged by what it did once Enter ran it.
        # Command name, then a remote name: "ge<TAB>rem<TAB>" is "get remote-only.txt".
        s.type(b"ge\trem\t\r")
        s.read_until(PROMPT)
        with open(self.lpath("remote-only.txt"), "rb") as f:
            self.assertEqual(f.read(), b"remote\n")
        # A remote directory completes with a slash and goes on inside it.
        s.type(b"get sub\tin\t\r")
        s.read_until(PROMPT)
        with open(self.lpath("inner.txt"), "rb") as f:
            self.assertEqual(f.read(), b"inner\n")
        # A local name for put.
        s.type(b"put local-o\t\r")
        s.read_until(PROMPT)
        with open(self.rpath("local-only.txt"), "rb") as f:
            self.assertEqual(f.read(), b"local\n")
        # Completion redraws can show a prompt early: wait for the one after
        # a marker command, so ^D goes to the line editor that prompt began
        # (type() then waits for it to leave canonical mode).
        s.type(b"sync-mark\r")
        s.read_until(b'unknown command "sync-mark"')
        s.read_until(PROMPT)
        s.type(b"\x04")  # ^D on an empty line ends the shell
        self.assertEqual(s.wait(), 0)

    def test_completion_quotes_names_as_the_shell_reads_them(self):
        """Completed names are written the way the shell splits words: a
        blank, quote or backslash escaped, or continued inside a quote the
        word opened; "with space.txt" never becomes REMOTE and LOCAL."""
        odd = "odd \"name\" it's\\.txt"
        for name, body in (("with space.txt", b"space\n"), (odd, b"odd\n")):
            with open(self.rpath(name), "wb") as f:
                f.write(body)
        with open(self.lpath("local file.txt"), "wb") as f:
            f.write(b"local\n")
        s = self.shell()
        s.read_until(PROMPT)
        for keys, local, body in ((b"get with\t\r", "with space.txt", b"space\n"),
                                  (b"get \"with\t\r", "with space.txt", b"space\n"),
                                  (b"get with\\ sp\t\r", "with space.txt", b"space\n"),
                                  (b"get od\t\r", odd, b"odd\n"),
                                  (b"get 'od\tsq.txt\r", "sq.txt", b"odd\n"),
                                  (b"get \"od\tdq.txt\r", "dq.txt", b"odd\n")):
            s.type(keys)
            s.read_until(PROMPT)
            with open(self.lpath(local), "rb") as f:
                self.assertEqual(f.read(), body, keys)
            os.unlink(self.lpath(local))
        s.type(b"put local\\ f\t\r")
        s.read_until(PROMPT)
        with open(self.rpath("local file.txt"), "rb") as f:
            self.assertEqual(f.read(), b"local\n")
        os.unlink(self.rpath("local file.txt"))
        s.type(b"put 'loc\t\r")
        s.read_until(PROMPT)
        with open(self.rpath("local file.txt"), "rb") as f:
            self.assertEqual(f.read(), b"local\n")
        self.assertEqual(sorted(os.listdir(self.local)), ["local file.txt"])
        s.type(b"bye\r")
        self.assertEqual(s.wait(), 0)

    def test_completion_leaves_out_names_that_drive_the_terminal(self):
        """In a UTF-8 locale the line editor would insert and list any
        name; one holding U+009B (CSI) is not offered, one with other
        non-ASCII characters is."""
        for name, body in (("zz\u009bq.txt", b"csi\n"), ("yy\u00e9.txt", b"acute\n")):
            with open(self.rpath(name), "wb") as f:
                f.write(body)
        s = self.shell(lang="C.UTF-8")
        s.read_until(PROMPT)
        s.type(b"get zz\t\r")
        got = s.read_until(PROMPT)
        self.assertNotIn(b"\xc2\x9b", got)
        self.assertFalse(os.path.exists(self.lpath("zz\u009bq.txt")))
        s.type(b"get yy\t\r")
        s.read_until(PROMPT)
        with open(self.lpath("yy\u00e9.txt"), "rb") as f:
            self.assertEqual(f.read(), b"acute\n")
        s.type(b"bye\r")
        self.assertEqual(s.wait(), 0)


class TestShellPyftpd(ShellSuite, ServerFixture):
    server_kind = "pyftpdlib"


class TestShellPyftpdActive(ShellSuite, ServerFixture):
    server_kind = "pyftpdlib"
    active = True


class TestShellFerryd(ShellSuite, ServerFixture):
    server_kind = "ferryd"


class TestCompletionAgainstAHostileServer(unittest.TestCase):
    def test_an_entry_without_a_name_is_not_offered(self):
        """MLSD "type=file;size=3; " names nothing: completion offers
        nothing for it (it read the byte before an empty name)."""
        s = start_fake("mlsd_empty")
        self.addCleanup(s.stop)
        tmp = tempfile.mkdtemp(prefix="ferry-pty-")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = {"HOME": tmp, "PATH": "/usr/bin:/bin", "TERM": "xterm", "LANG": "C.UTF-8"}
        env.update({k: v for k, v in os.environ.items() if k.startswith(("ASAN_", "UBSAN_"))})
        p = PtySession(["--timeout", "5", "127.0.0.1", str(s.port)], tmp, env)
        self.addCleanup(p.close)
        p.read_until(PROMPT)
        p.type(b"get \t\x15sync-mark\r")  # Tab, then ^U clears the line
        p.read_until(b'unknown command "sync-mark"')
        p.read_until(PROMPT)
        p.type(b"bye\r")
        self.assertEqual(p.wait(), 0)


class TestPasswordPrompt(ServerFixture):
    server_kind = "pyftpdlib"

    def test_prompt_without_echo(self):
        env = {"HOME": self.home, "PATH": "/usr/bin:/bin", "TERM": "xterm"}
        s = PtySession(["-u", "alice", "127.0.0.1", str(self.port)], self.local, env)
        self.addCleanup(s.close)
        s.read_until(b"Password for alice: ")
        s.send(b"secret\r")
        after = s.read_until(PROMPT)
        self.assertNotIn(b"secret", after)
        self.assertRegex(after, rb"230")
        got = s.command("pwd")
        self.assertIn(b"/", got)
        s.type(b"bye\r")
        self.assertEqual(s.wait(), 0)


if __name__ == "__main__":
    unittest.main()
