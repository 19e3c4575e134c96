"""Seed 004's client: ferry --compat comp431 DATAPORT.

The client reads CONNECT/GET/QUIT lines on stdin and prints the seed's
transcript. It is tested against an independent seed-004 server written
here from the seed's description, and end to end against
ferryd --compat comp431 -v, diffing both transcripts (client and server
stdout) against tests/fixtures/seed004/.
"""
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (FERRY, FERRYD, PeerThread, free_port, give_to_server, make_file, read_output,
                     sha256_file, wait_listening)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "seed004")
TIMEOUT = 60
PEER_TIMEOUT = 10


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def port_arg(port):
    return f"127,0,0,1,{port >> 8},{port & 255}"


def fill(text, values, regex=False):
    """Substitutes {name} placeholders; as a regex, {text} is any text."""
    if not regex:
        for k, v in values.items():
            text = text.replace("{" + k + "}", str(v))
        return text
    out = []
    for part in re.split(r"(\{\w+\})", text):
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if name == "text":
            out.append(r"[^\n]+")
        elif name in values:
            out.append(re.escape(str(values[name])))
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"\Z")


def free_port_run(n):
    """A base port with n consecutive free ports after it, below the
    kernel's ephemeral range so no outgoing connection takes one."""
    for _ in range(200):
        base = random.randrange(20000, 30000)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def run_client(dataport, stdin_text, cwd):
    p = subprocess.run([FERRY, "--compat", "comp431", str(dataport)], input=stdin_text.encode(), cwd=cwd,
                       capture_output=True, timeout=TIMEOUT)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Comp431Peer(PeerThread):
    """An FTP server written from seed 004: its greeting and reply texts,
    echo of every command and reply, active-mode RETR over a new data
    connection to the last PORT address. With refuse_data, data
    connections go to a port where nothing listens (a firewall, say)."""

    def __init__(self, root, refuse_data=False, greeting="220 COMP 431 FTP server ready."):
        super().__init__(PEER_TIMEOUT)
        self.root = root
        self.refuse_data = refuse_data
        self.greeting = greeting
        self.transcript = []

    def say(self, conn, line):
        self.transcript.append(line)
        conn.sendall(line.encode() + b"\r\n")

    def session(self, conn):
        f = conn.makefile("rb")
        self.say(conn, self.greeting)
        user = False
        logged_in = False
        port = None
        while True:
            raw = f.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            self.transcript.append(line)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                self.say(conn, "221 Goodbye.")
                return
            if verb == "USER":
                user = True
                self.say(conn, "331 Guest access OK, send password.")
            elif verb == "PASS":
                if not user:
                    self.say(conn, "503 Bad sequence of commands.")
                    continue
                logged_in = True
                self.say(conn, "230 Guest login OK.")
            elif not logged_in:
                self.say(conn, "530 Not logged in.")
            elif verb == "SYST":
                self.say(conn, "215 UNIX Type: L8.")
            elif verb == "TYPE":
                self.say(conn, f"200 Type set to {arg}.")
            elif verb == "PORT":
                n = [int(x) for x in arg.split(",")]
                port = ("%d.%d.%d.%d" % tuple(n[:4]), n[4] * 256 + n[5])
                self.say(conn, f"200 Port command successful ({port[0]},{port[1]}).")
            elif verb == "RETR":
                path = os.path.join(self.root, arg)
                if port is None:
                    self.say(conn, "503 Bad sequence of commands.")
                elif not os.path.isfile(path):
                    self.say(conn, "550 File not found or access denied.")
                else:
                    self.say(conn, "150 File status okay.")
                    target = (port[0], free_port()) if self.refuse_data else port
                    port = None
                    try:
                        data = socket.create_connection(target, timeout=PEER_TIMEOUT)
                    except OSError:
                        self.say(conn, "425 Can not open data connection.")
                        continue
                    with data, open(path, "rb") as src:
                        shutil.copyfileobj(src, data.makefile("wb"))
                    self.say(conn, "250 Requested file action completed.")
            else:
                self.say(conn, "500 Syntax error, command unrecognized.")


class Ferryd431:
    """ferryd --compat comp431 -v ROOT on a free port; stopped by PID."""

    def __init__(self, root):
        # A port found free can be taken before ferryd binds it: try a few.
        for attempt in range(5):
            self.port = free_port()
            self.out = tempfile.TemporaryFile()
            self.err = tempfile.TemporaryFile()
            self.proc = subprocess.Popen([FERRYD, "--compat", "comp431", "-v", "--root", root, str(self.port)],
                                         stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
            try:
                wait_listening(self.port, self.proc)
                return
            except Exception:
                self.stop()
                if attempt == 4 or "in use" not in read_output(self.err):
                    raise

    def stdout(self):
        return read_output(self.out)

    def wait_for(self, text, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stdout().count(text) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"server never printed {text!r}; it printed:\n{self.stdout()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Comp431Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-seed004-")
        self.root = os.path.join(self.tmp, "root")
        self.cwd = os.path.join(self.tmp, "client")
        os.makedirs(os.path.join(self.root, "pictures"))
        os.makedirs(os.path.join(self.root, "sub"))
        os.mkdir(self.cwd)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        make_file(os.path.join(self.root, "pictures", "jasleen.jpg"), 150000, seed=4)
        make_file(os.path.join(self.root, "a.txt"), 3000, seed=5, text=True)
        make_file(os.path.join(self.root, "sub", "b.txt"), 0)
        self.dataport = free_port_run(4)
        self.values = {"deadport": free_port()}
        for i in range(4):
            self.values[f"port{i}"] = port_arg(self.dataport + i)
            self.values[f"data{i}"] = self.dataport + i

    def peer(self, **kw):
        p = Comp431Peer(self.root, **kw)
        p.start()
        self.addCleanup(p.stop)
        self.values["port"] = p.port
        return p

    def ferryd(self):
        give_to_server(self.tmp, self.root)
        s = Ferryd431(self.root)
        self.addCleanup(s.stop)
        self.values["port"] = s.port
        return s

    def client(self, input_name):
        rc, out, err = run_client(self.dataport, fill(fixture(input_name), self.values), self.cwd)
        self.assertEqual(rc, 0, err)
        return out

    def stored(self, n):
        return os.path.join(self.cwd, "retr_files", f"file{n}")

    def same(self, n, rel):
        self.assertEqual(sha256_file(self.stored(n)), sha256_file(os.path.join(self.root, rel)))

    def stored_names(self):
        d = os.path.join(self.cwd, "retr_files")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


class SeedExample(Comp431Case):
    """The seed's example session, both against the test peer and ferryd."""

    def test_with_seed_peer(self):
        peer = self.peer()
        out = self.client("example_input.txt")
        self.assertEqual(out, fill(fixture("example_client.txt"), self.values))
        self.assertEqual("\n".join(peer.transcript) + "\n", fill(fixture("example_server.txt"), self.values))
        self.assertEqual(peer.errors, [])
        self.same(1, "pictures/jasleen.jpg")
        self.assertEqual(self.stored_names(), ["file1"])

    def test_with_ferryd(self):
        srv = self.ferryd()
        out = self.client("example_input.txt")
        self.assertEqual(out, fill(fixture("example_client.txt"), self.values))
        srv.wait_for("221 Goodbye.")
        self.assertEqual(srv.stdout(), fill(fixture("example_server.txt"), self.values))
        self.same(1, "pictures/jasleen.jpg")


class ErrorsAndSessions(Comp431Case):
    """Bad requests, a failed CONNECT, 550, a second CONNECT after QUIT,
    file numbering across sessions, requests in lower case."""

    def check_files(self):
        self.assertEqual(self.stored_names(), ["file1", "file2", "file3"])
        self.same(1, "a.txt")
        self.same(2, "sub/b.txt")
        self.same(3, "a.txt")

    def test_with_seed_peer(self):
        peer = self.peer()
        out = self.client("errors_input.txt")
        self.assertRegex(out, fill(fixture("errors_client.txt"), self.values, regex=True))
        self.assertRegex("\n".join(peer.transcript) + "\n", fill(fixture("errors_server.txt"), self.values, regex=True))
        self.assertEqual(peer.errors, [])
        self.check_files()

    def test_with_ferryd(self):
        srv = self.ferryd()
        out = self.client("errors_input.txt")
        self.assertRegex(out, fill(fixture("errors_client.txt"), self.values, regex=True))
        srv.wait_for("221 Goodbye.", count=2)
        self.assertRegex(srv.stdout(), fill(fixture("errors_server.txt"), self.values, regex=True))
        self.check_files()


class LongInputLines(Comp431Case):
    def test_overlong_line_is_echoed_whole_then_refused(self):
        """Every input line is echoed exactly as read, even one longer than
        any request may be (it is refused, and the next line still runs)."""
        long_line = "GET " + "x" * 9000
        rc, out, err = run_client(self.dataport, long_line + "\r\nQUIT\n", self.cwd)
        self.assertEqual(rc, 0, err)
        lines = out.split("\n")
        self.assertEqual(lines[0], long_line)
        self.assertEqual(lines[1], "ERROR -- request")
        self.assertEqual(lines[2], "QUIT")

    def test_line_end_and_nul_bytes_in_the_echo(self):
        # the longest request ends in CRLF or LF alike: a request either way
        for end in (b"\r\n", b"\n"):
            req = b"GET " + b"p" * (4096 - 4)
            p = subprocess.run([FERRY, "--compat", "comp431", str(self.dataport)], input=req + end,
                               cwd=self.cwd, capture_output=True, timeout=TIMEOUT)
            self.assertEqual(p.stdout, req + b"\nERROR -- expecting CONNECT\n", end)
        # a NUL is echoed as read, in a short line and a long one
        for req in (b"GET a\x00b", b"GET a\x00b" + b"q" * 6000):
            p = subprocess.run([FERRY, "--compat", "comp431", str(self.dataport)], input=req + b"\r\n",
                               cwd=self.cwd, capture_output=True, timeout=TIMEOUT)
            self.assertEqual(p.stdout, req + b"\nERROR -- request\n")


class DataConnectionFailures(Comp431Case):
    def test_425_when_the_server_cannot_connect(self):
        self.peer(refuse_data=True)
        out = self.client_lines("CONNECT 127.0.0.1 {port}\nGET a.txt\nGET sub/b.txt\nQUIT\n")
        self.assertEqual(out[out.index("GET a.txt"):], [
            "GET a.txt",
            "GET accepted for a.txt",
            f"PORT {port_arg(self.dataport)}",
            f"FTP reply 200 accepted. Text is: Port command successful (127.0.0.1,{self.dataport}).",
            "RETR a.txt",
            "FTP reply 150 accepted. Text is: File status okay.",
            "FTP reply 425 accepted. Text is: Can not open data connection.",
            "GET sub/b.txt",
            "GET accepted for sub/b.txt",
            f"PORT {port_arg(self.dataport + 1)}",
            f"FTP reply 200 accepted. Text is: Port command successful (127.0.0.1,{self.dataport + 1}).",
            "RETR sub/b.txt",
            "FTP reply 150 accepted. Text is: File status okay.",
            "FTP reply 425 accepted. Text is: Can not open data connection.",
            "QUIT",
            "QUIT accepted, terminating FTP client",
            "FTP reply 221 accepted. Text is: Goodbye.",
        ])
        self.assertEqual(self.stored_names(), [])

    def test_data_port_taken(self):
        # Someone else holds the first data port: that GET fails before
        # any PORT is sent, the next GET uses the next port and works.
        srv = self.ferryd()
        taken = socket.socket()
        taken.bind(("127.0.0.1", self.dataport))
        taken.listen(1)
        self.addCleanup(taken.close)
        out = self.client_lines("CONNECT 127.0.0.1 {port}\nGET a.txt\nGET a.txt\nQUIT\n")
        self.assertEqual(out[out.index("GET a.txt"):], [
            "GET a.txt",
            "GET accepted for a.txt",
            "GET failed, FTP-data port not allocated.",
            "GET a.txt",
            "GET accepted for a.txt",
            f"PORT {port_arg(self.dataport + 1)}",
            f"FTP reply 200 accepted. Text is: Port command successful (127.0.0.1,{self.dataport + 1}).",
            "RETR a.txt",
            "FTP reply 150 accepted. Text is: File status okay.",
            "FTP reply 250 accepted. Text is: Requested file action completed.",
            "QUIT",
            "QUIT accepted, terminating FTP client",
            "FTP reply 221 accepted. Text is: Goodbye.",
        ])
        self.same(1, "a.txt")
        srv.wait_for("221 Goodbye.")
        self.assertNotIn(f"PORT {port_arg(self.dataport)}\n", srv.stdout())

    def client_lines(self, text):
        rc, out, err = run_client(self.dataport, fill(text, self.values), self.cwd)
        self.assertEqual(rc, 0, err)
        return out.splitlines()


class MalformedReplies(Comp431Case):
    def test_bad_reply_code_and_text(self):
        for greeting, line in (("22 COMP 431 FTP server ready.", "ERROR -- reply-code"),
                               ("2x0 ready", "ERROR -- reply-code"),
                               ("220", "ERROR -- reply-text")):
            peer = Comp431Peer(self.root, greeting=greeting)
            peer.start()
            self.addCleanup(peer.stop)
            rc, out, _ = run_client(self.dataport, f"CONNECT 127.0.0.1 {peer.port}\nQUIT\n", self.cwd)
            # Login stops at a reply it cannot read; QUIT still ends the session.
            self.assertEqual(out.splitlines(), [
                f"CONNECT 127.0.0.1 {peer.port}",
                f"CONNECT accepted for FTP server at host 127.0.0.1 and port {peer.port}",
                line,
                "QUIT",
                "QUIT accepted, terminating FTP client",
                "FTP reply 221 accepted. Text is: Goodbye.",
            ], greeting)
            self.assertEqual(rc, 0)

    def test_usage(self):
        for args in ([], ["0"], ["70000"], ["12x"], ["1", "2"]):
            p = subprocess.run([FERRY, "--compat", "comp431", *args], capture_output=True, timeout=TIMEOUT,
                               stdin=subprocess.DEVNULL, cwd=self.cwd)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(p.stdout, b"")


if __name__ == "__main__":
    unittest.main()
