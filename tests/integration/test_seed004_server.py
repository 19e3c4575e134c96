"""Seed 004's server: ferryd --compat comp431 PORT, spoken to over raw
sockets.

test_seed004_client.py covers the COMP 431 *client* and runs the server
only with -v. Here the server is started exactly as the seed starts its
own ("python3 -u FTPServer.py <PORT_NUMBER>"): ferryd --compat comp431
PORT, no -v, the working directory being the served directory (a second
case uses --root instead). A test speaks FTP to it by hand and checks:

1. the seed's example session, reply by reply and byte by byte (each
   reply is one line ending in CRLF, docs/PROTOCOL.md 1.1), the file's
   bytes on the data connection the server opens to the test's PORT
   listener, and the server's whole stdout against the seed's transcript:
   every command received and every reply sent, in order, nothing else.
   Each command is echoed before its reply is sent ("it first echoes the
   command, and then sends its reply").
   PASS is echoed as received, "PASS guest@", as in the seed's
   transcript: ferryd masks a password (PASS ****) only for its virtual
   users, and under --compat comp431 every USER name is a guest (331
   "Guest access OK, send password."), so no password is ever masked.
2. one session at a time (the seed's listen(1), then accept and serve
   one client until QUIT or close): a second client's TCP connect
   succeeds but it gets no greeting until the first one quits or just
   closes; the transcript never interleaves the two; the second session
   starts from the initial state.
3. HW1's error rules the seed repeats: 530 after USER then anything but
   PASS/USER/QUIT, and 530 for the PASS that follows; 503 for RETR
   without PORT; 550 for a missing file, the PORT staying valid; 150
   then 425 when the PORT target refuses; 500 for an unknown verb; 501
   for QUIT with an argument, the session staying open; a valid RETR
   uses up the PORT; RETR sends the file's bytes as they are, TYPE or
   not (the seed describes no conversion). A reply whose
   text the seed or docs/PROTOCOL.md 3.1 fixes is compared whole,
   otherwise only its code.

Every socket operation has a timeout, every server is stopped by its PID,
all traffic stays on 127.0.0.1.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import FERRYD, RawControl, free_port, give_to_server, make_file, read_output, wait_listening

IO_TIMEOUT = 10      # any single socket wait
NO_GREETING_WAIT = 1.0   # how long a queued client must hear nothing

GREETING = "220 COMP 431 FTP server ready."
R331 = "331 Guest access OK, send password."
R230 = "230 Guest login OK."
R215 = "215 UNIX Type: L8."
R200_TYPE = "200 Type set to I."
R150 = "150 File status okay."
R250 = "250 Requested file action completed."
R425 = "425 Can not open data connection."
R221 = "221 Goodbye."


class Comp431Server:
    """ferryd --compat comp431 PORT as the seed runs its server: no -v,
    run from the served directory (or given it with --root); stopped by
    PID."""

    def __init__(self, root, use_root_option=False):
        for attempt in range(5):
            self.port = free_port()
            argv = [FERRYD, "--compat", "comp431"]
            if use_root_option:
                argv += ["--root", root]
            argv.append(str(self.port))
            self.argv = argv
            self.out = tempfile.TemporaryFile()
            self.err = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(argv, cwd=None if use_root_option else root,
                                         stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
            try:
                wait_listening(self.port, self.proc)
                return
            except Exception:
                self.stop()
                if attempt == 4 or "in use" not in self.stderr():
                    raise

    def stdout(self):
        return read_output(self.out)

    def stderr(self):
        return read_output(self.err)

    def lines(self):
        return self.stdout().splitlines()

    def wait_for(self, text, count=1, timeout=IO_TIMEOUT):
        """Waits until stdout holds the line text count times."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lines().count(text) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"server never printed {text!r} x{count}; stdout:\n{self.stdout()}"
                             f"\nstderr:\n{self.stderr()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Ctl:
    """A control connection spoken by hand. Replies are read as raw lines
    and returned with their CRLF stripped only after it was checked."""

    def __init__(self, case, port):
        self.case = case
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.settimeout(IO_TIMEOUT)
        self.buf = b""
        case.addCleanup(self.close)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def raw_line(self, timeout=IO_TIMEOUT):
        self.sock.settimeout(timeout)
        try:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError(f"connection closed; unread: {self.buf!r}")
                self.buf += chunk
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self, timeout=IO_TIMEOUT):
        raw = self.raw_line(timeout)
        self.case.assertTrue(raw.endswith(b"\r\n"), f"reply not ended by CRLF: {raw!r}")
        return raw[:-2].decode("utf-8", "replace")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def cmd(self, line):
        self.send(line)
        return self.reply()

    def nothing_for(self, seconds):
        """True when no byte arrives for that long (and no close)."""
        self.sock.settimeout(seconds)
        try:
            b = self.sock.recv(1)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        self.buf += b
        return False

    # True when the server closes the connection within the timeout.
    closed_by_server = RawControl.closed


class DataListener:
    """The test's FTP-data listener on 127.0.0.1 (an ephemeral port)."""

    def __init__(self, case):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(IO_TIMEOUT)
        self.port = self.sock.getsockname()[1]
        case.addCleanup(self.close)

    def port_arg(self):
        return f"127,0,0,1,{self.port >> 8},{self.port & 255}"

    def port_reply(self):
        return f"200 Port command successful (127.0.0.1,{self.port})."

    def receive(self):
        """Accepts one data connection and reads it to its end."""
        conn, peer = self.sock.accept()
        with conn:
            conn.settimeout(IO_TIMEOUT)
            assert peer[0] == "127.0.0.1", peer
            chunks = []
            while True:
                b = conn.recv(65536)
                if not b:
                    return b"".join(chunks)
                chunks.append(b)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Comp431ServerCase(unittest.TestCase):
    use_root_option = False

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-seed004s-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.root = os.path.join(self.tmp, "served")
        os.makedirs(os.path.join(self.root, "pictures"))
        make_file(os.path.join(self.root, "pictures", "jasleen.jpg"), 150000, seed=40)
        make_file(os.path.join(self.root, "a.txt"), 5000, seed=41, text=True)
        give_to_server(self.tmp, self.root)
        self.server = Comp431Server(self.root, self.use_root_option)
        self.addCleanup(self.server.stop)
        self.expected = []   # the transcript this test's traffic must produce

    def content(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def ctl(self, greet=True):
        c = Ctl(self, self.server.port)
        if greet:
            self.assertEqual(c.reply(), GREETING)
            self.expected.append(GREETING)
        return c

    def step(self, c, command, *replies):
        """Sends command, expects these replies (full lines, or a bare
        code when the text is not fixed); the echo must be on stdout
        before the first reply arrives. Returns the replies read."""
        c.send(command)
        got = []
        for i, want in enumerate(replies):
            r = c.reply()
            if i == 0:
                self.assertIn(command, self.server.lines(),
                              f"{command!r} was not echoed before its reply {r!r}")
            self.check_reply(r, want, command)
            got.append(r)
        self.expected.append(command)
        self.expected.extend(got)
        return got

    def check_reply(self, got, want, command):
        if len(want) == 3:
            self.assertRegex(got, rf"\A{want} \S", f"reply to {command!r}")
        else:
            self.assertEqual(got, want, f"reply to {command!r}")

    def login(self, c):
        self.step(c, "USER anonymous", R331)
        self.step(c, "PASS guest@", R230)

    def quit(self, c):
        self.step(c, "QUIT", R221)
        self.assertTrue(c.closed_by_server(), "control connection left open after 221")

    def check_transcript(self):
        """The server's whole stdout is self.expected, line for line."""
        if self.expected and self.expected[-1] == R221:
            self.server.wait_for(R221, self.expected.count(R221))
        else:
            time.sleep(0.2)  # the last echo may still be on its way
        got = self.server.stdout()
        self.assertEqual(got, "".join(line + "\n" for line in self.expected),
                         f"stderr:\n{self.server.stderr()}")


class SeedSession(Comp431ServerCase):
    """The seed's example session, as the seed runs its server."""

    def run_example(self):
        c = self.ctl()
        self.login(c)
        self.step(c, "SYST", R215)
        self.step(c, "TYPE I", R200_TYPE)
        d = DataListener(self)
        self.step(c, "PORT " + d.port_arg(), d.port_reply())
        c.send("RETR pictures/jasleen.jpg")
        self.assertEqual(c.reply(), R150)
        self.assertIn("RETR pictures/jasleen.jpg", self.server.lines())
        data = d.receive()
        self.assertEqual(c.reply(), R250)
        self.assertEqual(data, self.content("pictures/jasleen.jpg"))
        self.expected += ["RETR pictures/jasleen.jpg", R150, R250]
        self.quit(c)
        self.check_transcript()
        # Exactly the seed's transcript, spelled out once in full:
        p = d.port
        self.assertEqual(self.server.lines(), [
            "220 COMP 431 FTP server ready.",
            "USER anonymous",
            "331 Guest access OK, send password.",
            "PASS guest@",
            "230 Guest login OK.",
            "SYST",
            "215 UNIX Type: L8.",
            "TYPE I",
            "200 Type set to I.",
            f"PORT 127,0,0,1,{p >> 8},{p & 255}",
            f"200 Port command successful (127.0.0.1,{p}).",
            "RETR pictures/jasleen.jpg",
            "150 File status okay.",
            "250 Requested file action completed.",
            "QUIT",
            "221 Goodbye.",
        ])

    def test_example_session_and_transcript(self):
        self.run_example()

    def test_password_echoed_as_received(self):
        # Any USER name is a guest under the seed; its PASS is echoed
        # as received, never masked.
        c = self.ctl()
        self.step(c, "USER jasleen", R331)
        self.step(c, "PASS s3cret pw", R230)
        self.step(c, "SYST", R215)
        self.quit(c)
        self.check_transcript()
        self.assertIn("PASS s3cret pw", self.server.lines())


class SeedSessionWithRootOption(Comp431ServerCase):
    """The same, the served directory given with --root (cwd elsewhere)."""

    use_root_option = True

    def test_example_session_and_transcript(self):
        SeedSession.run_example(self)


class OneSessionAtATime(Comp431ServerCase):
    """listen(1), then accept and serve one client until QUIT or close."""

    def queued_client(self):
        """B: its connect succeeds, but no greeting comes."""
        b = Ctl(self, self.server.port)
        self.assertTrue(b.nothing_for(NO_GREETING_WAIT), f"B was answered at once: {b.buf!r}")
        self.assertEqual(self.server.lines().count(GREETING), 1, self.server.stdout())
        return b

    def serve_b(self, b):
        self.assertEqual(b.reply(), GREETING)
        self.expected.append(GREETING)
        self.login(b)
        self.step(b, "SYST", R215)
        self.quit(b)
        self.check_transcript()

    def test_second_client_waits_until_quit(self):
        a = self.ctl()
        self.login(a)
        b = self.queued_client()
        self.step(a, "SYST", R215)   # A is still served while B waits
        self.assertTrue(b.nothing_for(0.2), f"B was answered during A's session: {b.buf!r}")
        self.quit(a)
        self.serve_b(b)

    def test_second_client_waits_until_close(self):
        a = self.ctl()               # A never logs in ...
        b = self.queued_client()
        a.close()                    # ... and leaves without QUIT
        self.serve_b(b)

    def test_next_session_starts_afresh(self):
        # "resets any internal data to its initial state"
        a = self.ctl()
        self.login(a)
        d = DataListener(self)
        self.step(a, "PORT " + d.port_arg(), d.port_reply())
        a.close()
        b = self.ctl()
        self.step(b, "TYPE I", "530")        # not logged in any more
        self.step(b, "RETR a.txt", "530")
        self.login(b)
        self.step(b, "RETR a.txt", "503")    # A's PORT is gone
        self.quit(b)
        self.check_transcript()


class ErrorRules(Comp431ServerCase):
    """HW1's rules as the seed repeats them."""

    def test_user_then_other_command_then_pass(self):
        c = self.ctl()
        d = DataListener(self)
        for other in ("SYST", "TYPE I", "PORT " + d.port_arg(), "RETR a.txt"):
            self.step(c, "USER anonymous", R331)
            self.step(c, other, "530")
            self.step(c, "PASS guest@", "530")
        # USER and PASS in a row still log in; the session goes on.
        self.login(c)
        self.step(c, "SYST", R215)
        self.quit(c)
        self.check_transcript()

    def test_nothing_but_user_pass_quit_before_login(self):
        # "the server must receive valid USER and PASS commands" first
        c = self.ctl()
        for other in ("SYST", "TYPE I", "NOOP", "RETR a.txt"):
            self.step(c, other, "530")
        self.login(c)
        self.step(c, "SYST", R215)
        self.quit(c)
        self.check_transcript()

    def test_retr_without_port(self):
        c = self.ctl()
        self.login(c)
        self.step(c, "RETR a.txt", "503")
        self.step(c, "SYST", R215)
        self.quit(c)
        self.check_transcript()

    def test_missing_file_keeps_session_and_port(self):
        c = self.ctl()
        self.login(c)
        self.step(c, "TYPE I", R200_TYPE)
        d = DataListener(self)
        self.step(c, "PORT " + d.port_arg(), d.port_reply())
        self.step(c, "RETR missing.txt", "550 missing.txt: No such file or directory.")
        self.step(c, "SYST", R215)
        # The PORT survives the failed RETR and serves the next one.
        c.send("RETR a.txt")
        self.assertEqual(c.reply(), R150)
        data = d.receive()
        self.assertEqual(c.reply(), R250)
        self.assertEqual(data, self.content("a.txt"))
        self.expected += ["RETR a.txt", R150, R250]
        self.quit(c)
        self.check_transcript()

    def test_valid_retr_uses_up_the_port(self):
        # "The PORT should remain open unless a valid RETR command occurs"
        c = self.ctl()
        self.login(c)
        self.step(c, "TYPE I", R200_TYPE)
        d = DataListener(self)
        self.step(c, "PORT " + d.port_arg(), d.port_reply())
        c.send("RETR a.txt")
        self.assertEqual(c.reply(), R150)
        self.assertEqual(d.receive(), self.content("a.txt"))
        self.assertEqual(c.reply(), R250)
        self.expected += ["RETR a.txt", R150, R250]
        self.step(c, "RETR a.txt", "503")
        self.quit(c)
        self.check_transcript()

    def test_retr_without_type_sends_the_file_bytes(self):
        # "the server then reads the bytes from the requested file and
        # writes them to the client on the FTP-data connection": the seed
        # makes no exception for a TYPE (it has no ASCII conversion). A
        # text file with LF line ends, no TYPE command sent.
        c = self.ctl()
        self.login(c)
        d = DataListener(self)
        self.step(c, "PORT " + d.port_arg(), d.port_reply())
        c.send("RETR a.txt")
        self.assertEqual(c.reply(), R150)
        data = d.receive()
        self.assertEqual(c.reply(), R250)
        self.expected += ["RETR a.txt", R150, R250]
        self.assertIn(b"\n", self.content("a.txt"))
        self.assertEqual(len(data), len(self.content("a.txt")), "bytes sent differ in number from the file's")
        self.assertEqual(data, self.content("a.txt"))
        self.quit(c)
        self.check_transcript()

    def test_425_when_the_port_target_refuses(self):
        c = self.ctl()
        self.login(c)
        d = DataListener(self)
        self.step(c, "PORT " + d.port_arg(), d.port_reply())
        d.close()                    # nothing listens there any more
        # Seed: 150 first, then the connection attempt, then 425.
        self.step(c, "RETR a.txt", R150, R425)
        self.step(c, "SYST", R215)
        self.quit(c)
        self.check_transcript()

    def test_unknown_command(self):
        c = self.ctl()
        self.login(c)
        self.step(c, "XYZZY", "500")
        self.step(c, "FOO bar", "500")
        self.step(c, "SYST", R215)
        self.quit(c)
        self.check_transcript()

    def test_quit_with_argument(self):
        c = self.ctl()
        self.login(c)
        self.step(c, "QUIT now", "501")
        self.assertFalse(c.closed_by_server(0.3), "QUIT with an argument closed the session")
        self.step(c, "SYST", R215)
        self.quit(c)
        self.check_transcript()


if __name__ == "__main__":
    unittest.main()
