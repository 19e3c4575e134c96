"""Seed 001's streaming protocol: ferry --stream and ferryd --stream.

Both directions are tested: ferry against ferryd, and each of them against
an independent peer written here from the seed's description. The peers
come in three manners: naive (each message with one send() and read with
one recv(), as the seed's typical Python programs do), split (every text
message and size written one byte at a time with pauses), and merging
(messages the protocol allows back to back written in one send()).
Expected transcripts are in tests/fixtures/seed001/.
"""
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import (FERRY, FERRYD, PeerThread, free_port, give_to_server, make_file, read_output,
                     sha256_file, wait_port)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "seed001")
TIMEOUT = 30
PEER_TIMEOUT = 10


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def fixture_regex(text, port):
    """A fixture as a regex: {port} is the server's port, {any} a number."""
    parts = re.split(r"(\{port\}|\{any\})", text)
    out = []
    for p in parts:
        if p == "{port}":
            out.append(str(port))
        elif p == "{any}":
            out.append(r"\d+")
        else:
            out.append(re.escape(p))
    return re.compile("".join(out) + r"\Z")


def process_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[2])  # effective uid
    return -1


class StreamD:
    """ferryd --stream on a free loopback port; stopped by its PID."""

    def __init__(self, root, verbose=True, v_after_port=False, user=None):
        # A port found free can be taken before ferryd binds it (by any
        # outgoing connection on the machine): try a few.
        for attempt in range(5):
            try:
                self._start(root, verbose, v_after_port, user)
                return
            except RuntimeError:
                if attempt == 4 or "Address already in use" not in self.stderr():
                    raise

    def _start(self, root, verbose, v_after_port, user):
        self.port = free_port()
        argv = [FERRYD, "--stream", "--root", root]
        if verbose and not v_after_port:
            argv.append("-v")
        argv.append(str(self.port))
        if verbose and v_after_port:
            argv.append("-v")  # the seed's own order: PORT [-v]
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL, user=user)
        try:
            if verbose:
                # A probe connection would show in the transcript: wait
                # for the server's own line instead.
                self.wait_output(lambda o: f"server waiting on port {self.port}\n" in o)
            else:
                wait_port(self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def stdout(self):
        return read_output(self.out)

    def stderr(self):
        return read_output(self.err)

    def wait_output(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.stdout()):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"ferryd exited with {self.proc.returncode}: {self.stderr()}")
            time.sleep(0.02)
        raise AssertionError(f"ferryd output never matched; it is:\n{self.stdout()}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def ferry_stream(port, cwd, *args, host="127.0.0.1"):
    """Runs ferry --stream HOST PORT ARGS...; returns (rc, stdout, stderr)."""
    p = subprocess.run([FERRY, "--stream", host, str(port), *args], cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=TIMEOUT)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# --- independent peers, from seed 001's description ---------------------

class Wire:
    """Sends protocol messages the way a peer of a given manner does."""

    def __init__(self, sock, manner):
        self.sock = sock
        self.manner = manner

    def send(self, data):
        if self.manner == "split":
            for b in data:
                self.sock.sendall(bytes([b]))
                time.sleep(0.003)
        else:
            # One send() per message, as the seed's programs do.
            n = self.sock.send(data)
            assert n == len(data), "short send"

    def recv(self, n=1024):
        """One recv() per message, as the seed's programs do."""
        return self.sock.recv(n)


class PeerServer(PeerThread):
    """A seed-001 server written from the seed: READY, one request, the
    exchange, close. Serves connections until stopped."""

    def __init__(self, root, manner="naive"):
        super().__init__(PEER_TIMEOUT)
        self.root = root
        self.manner = manner
        self.requests = []

    def session(self, conn):
        self.serve(Wire(conn, self.manner))

    def serve(self, w):
        w.send(b"READY")
        req = w.recv().decode()
        self.requests.append(req)
        verb, _, name = req.partition(" ")
        path = os.path.join(self.root, name)
        if verb == "GET":
            if not os.path.isfile(path):
                w.send(f"ERROR: {name} does not exist".encode())
                return
            w.send(b"OK")
            if w.recv() != b"READY":
                raise AssertionError("expected READY")
            size = os.path.getsize(path)
            w.send(struct.pack(">Q", size))
            if w.recv() != b"OK":
                raise AssertionError("expected OK")
            with open(path, "rb") as f:
                if self.manner == "merge":
                    w.sock.sendall(f.read() + b"DONE")
                    return
                while True:
                    block = f.read(1024)
                    if not block:
                        break
                    w.sock.sendall(block)
            w.send(b"DONE")
        elif verb == "PUT":
            try:
                f = open(path, "wb")
            except OSError:
                w.send(f"ERROR: unable to create file {name}".encode())
                return
            with f:
                w.send(b"OK")
                raw = w.recv(8)
                if len(raw) != 8:
                    raise AssertionError(f"size arrived as {len(raw)} bytes")
                size = struct.unpack(">Q", raw)[0]
                if self.manner == "merge" and size == 0:
                    w.sock.sendall(b"OKDONE")
                    return
                w.send(b"OK")
                got = 0
                while got < size:
                    d = w.recv(min(65536, size - got))
                    if not d:
                        raise AssertionError("client closed during data")
                    f.write(d)
                    got += len(d)
            w.send(b"DONE")
        elif verb == "DEL":
            if not os.path.exists(path):
                w.send(f"ERROR: {name} does not exist".encode())
                return
            os.remove(path)
            w.send(b"DONE")
        else:
            w.send(b"ERROR: unknown request")


def peer_client(port, action, name, local, manner="naive"):
    """A seed-001 client written from the seed; returns the lines it would
    print. Reads each message with one recv() (naive) and its file-data
    loop reads 1024 at a time until it has the size: a DONE merged into
    the data would end up in the file and the DONE read would time out."""
    lines = []
    with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as s:
        w = Wire(s, manner)
        if w.recv() != b"READY":
            raise AssertionError("expected READY")
        w.send(f"{action} {name}".encode())
        path = os.path.join(local, name)
        if action == "GET":
            r = w.recv()
            if r.startswith(b"ERROR: "):
                return lines + ["server error: " + r[7:].decode()]
            assert r == b"OK", r
            w.send(b"READY")
            raw = w.recv(8)
            assert len(raw) == 8, raw
            size = struct.unpack(">Q", raw)[0]
            lines.append(f"client receiving file {name} ({size} bytes)")
            w.send(b"OK")
            got = 0
            with open(path, "wb") as f:
                while got < size:
                    d = w.recv(1024)
                    assert d, "server closed during data"
                    f.write(d)
                    got += len(d)
            r = w.recv()
            assert r == b"DONE", r
        elif action == "PUT":
            size = os.path.getsize(path)
            r = w.recv()
            if r.startswith(b"ERROR: "):
                return lines + ["server error: " + r[7:].decode()]
            assert r == b"OK", r
            w.send(struct.pack(">Q", size))
            r = w.recv()
            assert r == b"OK", r
            lines.append(f"client sending file {name} ({size} bytes)")
            with open(path, "rb") as f:
                while True:
                    block = f.read(1024)
                    if not block:
                        break
                    s.sendall(block)
            r = w.recv()
            if r.startswith(b"ERROR: "):
                return lines + ["server error: " + r[7:].decode()]
            assert r == b"DONE", r
        else:
            lines.append(f"client deleting file {name}")
            r = w.recv()
            if r.startswith(b"ERROR: "):
                return lines + ["server error: " + r[7:].decode()]
            assert r == b"DONE", r
    return lines + ["Complete"]


class StreamBase(unittest.TestCase):
    verbose = True

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-seed001-")
        self.root = os.path.join(self.tmp, "root")
        self.local = os.path.join(self.tmp, "local")
        os.mkdir(self.root)
        os.mkdir(self.local)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start_server(self, **kw):
        give_to_server(self.tmp, self.root)
        self.server = StreamD(self.root, verbose=self.verbose, **kw)
        self.addCleanup(self.server.stop)
        return self.server

    def ferry(self, *args, cwd=None):
        return ferry_stream(self.server.port, cwd or self.local, *args)

    def write(self, rel, data, where=None):
        path = os.path.join(where or self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def served(self):
        """Files in the root, relative paths, hidden ones included."""
        out = []
        for d, _, files in os.walk(self.root):
            out += [os.path.relpath(os.path.join(d, n), self.root) for n in files]
        return sorted(out)


class FerryWithFerryd(StreamBase):
    """ferry --stream against ferryd --stream."""

    def test_session_matches_the_seed_transcripts(self):
        self.write("hello.txt", b"Hello, ferry!\n")
        make_file(os.path.join(self.local, "upload.bin"), 2048, seed=3)
        self.write("nodir/x.txt", b"xyz", where=self.local)
        srv = self.start_server(v_after_port=True)
        runs = [("GET", "hello.txt"), ("PUT", "upload.bin"), ("DEL", "upload.bin"), ("GET", "missing.txt"),
                ("DEL", "missing.txt"), ("PUT", "nodir/x.txt"), ("GET", "gone/got.txt"), ("PUT", "absent.txt")]
        out, codes = "", []
        for action, name in runs:
            rc, o, e = self.ferry(action, name)
            out += o
            codes.append(rc)
            self.assertEqual(e, "", f"{action} {name} wrote to stderr")
        self.assertEqual(out, fixture("session_client.txt"))
        self.assertEqual(codes, [0, 0, 0, 1, 1, 1, 1, 1])
        self.assertEqual(self.read(os.path.join(self.local, "hello.txt")), b"Hello, ferry!\n")
        self.assertEqual(self.served(), ["hello.txt"])
        # Six connections, then the server waits for a seventh; the two
        # local errors never reached it.
        srv.wait_output(lambda o: o.count("server waiting on port") == 7)
        self.assertRegex(srv.stdout(), fixture_regex(fixture("session_server.txt"), srv.port))
        self.assertEqual(srv.stderr(), "")

    def test_boundary_sizes_both_ways(self):
        sizes = [0, 1, 1023, 1024, 1025, 2049]
        for n in sizes:
            make_file(os.path.join(self.root, f"down{n}"), n, seed=n)
            make_file(os.path.join(self.local, f"up{n}"), n, seed=n + 100)
        self.start_server()
        for n in sizes:
            rc, out, err = self.ferry("GET", f"down{n}")
            self.assertEqual((rc, out, err), (0, f"client receiving file down{n} ({n} bytes)\nComplete\n", ""))
            self.assertEqual(sha256_file(os.path.join(self.local, f"down{n}")),
                             sha256_file(os.path.join(self.root, f"down{n}")))
            rc, out, err = self.ferry("PUT", f"up{n}")
            self.assertEqual((rc, out, err), (0, f"client sending file up{n} ({n} bytes)\nComplete\n", ""))
            self.assertEqual(sha256_file(os.path.join(self.local, f"up{n}")),
                             sha256_file(os.path.join(self.root, f"up{n}")))
        self.assertEqual([f for f in self.served() if f.startswith(".")], [], "temporary files left")

    def socket_writes(self, trace):
        """(call, bytes) of every write-like call on a TCP socket in an
        strace -yy log: the bytes the call moved."""
        calls = []
        pat = re.compile(r"^(?:\d+\s+)?(write|writev|send|sendto|sendmsg|sendfile|splice)\((\d+)<(TCPv?6?):"
                         r".*\) = (-?\d+)")
        for line in trace.splitlines():
            m = pat.match(line)
            if m and int(m.group(4)) >= 0:
                calls.append((m.group(1), int(m.group(4))))
        return calls

    def test_file_data_goes_out_in_1024_byte_blocks(self):
        """Seed 001: "you must only send file data in 1024-byte blocks",
        checked on the system calls: every write to a socket, by the
        server sending a GET and by the client sending a PUT, moves at most
        1024 bytes, and none is a sendfile or a splice."""
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace is needed (scripts/deps.sh installs it)")
        n = 100 * 1024 + 3
        make_file(os.path.join(self.root, "down.bin"), n, seed=5)
        make_file(os.path.join(self.local, "up.bin"), n, seed=6)
        srv = self.start_server()
        pids = [str(srv.proc.pid)]
        with open(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children") as f:
            pids += f.read().split()
        server_log = os.path.join(self.tmp, "server.trace")
        tracer = subprocess.Popen([strace, "-f", "-yy", "-e", "trace=write,writev,sendto,sendmsg,sendfile,splice",
                                   "-o", server_log] + [a for p in pids for a in ("-p", p)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # strace says "Process N attached" for each -p once it traces it
            said = b""
            deadline = time.monotonic() + 10
            while said.count(b" attached") < len(pids) and time.monotonic() < deadline:
                if select.select([tracer.stderr], [], [], 0.5)[0]:
                    said += os.read(tracer.stderr.fileno(), 4096)
            self.assertEqual(said.count(b" attached"), len(pids), said)
            client_log = os.path.join(self.tmp, "client.trace")
            # LeakSanitizer cannot run under ptrace (the sanitizer build)
            env = dict(os.environ, ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":"))
            p = subprocess.run([strace, "-f", "-yy", "-qq", "-e", "trace=write,writev,sendto,sendmsg,sendfile,splice",
                                "-o", client_log, FERRY, "--stream", "127.0.0.1", str(srv.port), "PUT", "up.bin"],
                               cwd=self.local, env=env, capture_output=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            rc, _, err = self.ferry("GET", "down.bin")
            self.assertEqual(rc, 0, err)
            time.sleep(0.3)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=20)
            tracer.stderr.close()
        self.assertEqual(sha256_file(os.path.join(self.root, "up.bin")), sha256_file(os.path.join(self.local, "up.bin")))
        self.assertEqual(sha256_file(os.path.join(self.local, "down.bin")),
                         sha256_file(os.path.join(self.root, "down.bin")))
        for who, log in (("client", client_log), ("server", server_log)):
            with open(log) as f:
                calls = self.socket_writes(f.read())
            self.assertEqual([c for c in calls if c[0] in ("sendfile", "splice")], [], who)
            self.assertLessEqual(max(b for _, b in calls), 1024, who)
            # the file went out as full blocks and one short one
            self.assertGreaterEqual(sum(1 for _, b in calls if b == 1024), n // 1024, who)

    def test_multi_mib_file_checksums(self):
        n = 5 * 1024 * 1024 + 7
        make_file(os.path.join(self.root, "big.bin"), n, seed=11)
        make_file(os.path.join(self.local, "bigup.bin"), n, seed=12)
        srv = self.start_server()
        rc, out, _ = self.ferry("GET", "big.bin")
        self.assertEqual((rc, out), (0, f"client receiving file big.bin ({n} bytes)\nComplete\n"))
        self.assertEqual(sha256_file(os.path.join(self.local, "big.bin")), sha256_file(os.path.join(self.root, "big.bin")))
        rc, out, _ = self.ferry("PUT", "bigup.bin")
        self.assertEqual((rc, out), (0, f"client sending file bigup.bin ({n} bytes)\nComplete\n"))
        self.assertEqual(sha256_file(os.path.join(self.local, "bigup.bin")),
                         sha256_file(os.path.join(self.root, "bigup.bin")))
        self.assertIn(f"server sending {n} bytes\n", srv.stdout())
        self.assertIn(f"server receiving {n} bytes\n", srv.stdout())

    def test_overwrite_and_server_side_unable_to_create(self):
        self.write("same.txt", b"old contents")
        self.write("same.txt", b"new", where=self.local)
        os.mkdir(os.path.join(self.root, "sdir"))
        self.write("sdir", b"a file here, a directory there", where=self.local)
        self.start_server()
        self.assertEqual(self.ferry("PUT", "same.txt"), (0, "client sending file same.txt (3 bytes)\nComplete\n", ""))
        self.assertEqual(self.read(os.path.join(self.root, "same.txt")), b"new")
        self.assertEqual(self.ferry("PUT", "sdir"), (1, "server error: unable to create file sdir\n", ""))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "sdir")))
        # GET of a directory: there is no such file to get.
        os.remove(os.path.join(self.local, "sdir"))
        self.assertEqual(self.ferry("GET", "sdir"), (1, "server error: sdir does not exist\n", ""))
        self.assertFalse(os.path.exists(os.path.join(self.local, "sdir")), "failed GET left a file")

    def test_read_only_directory(self):
        os.mkdir(os.path.join(self.root, "ro"))
        self.write("ro/f.txt", b"data", where=self.local)
        # Permissions do not bind root: as root, serve as nobody.
        srv = self.start_server(user="nobody" if os.geteuid() == 0 else None)
        self.assertNotEqual(process_uid(srv.proc.pid), 0)
        os.chmod(os.path.join(self.root, "ro"), 0o555)
        rc, out, _ = ferry_stream(srv.port, self.local, "PUT", "ro/f.txt")
        self.assertEqual((rc, out), (1, "server error: unable to create file ro/f.txt\n"))
        self.assertEqual(os.listdir(os.path.join(self.root, "ro")), [])

    def test_unable_to_delete(self):
        """The seed's optional "ERROR: unable to delete <filename>": the
        name exists but cannot be deleted (a directory; a file in a
        read-only directory)."""
        os.mkdir(os.path.join(self.root, "adir"))
        os.mkdir(os.path.join(self.root, "ro"))
        self.write("ro/keep.txt", b"data")
        srv = self.start_server(user="nobody" if os.geteuid() == 0 else None)
        os.chmod(os.path.join(self.root, "ro"), 0o555)
        for name in ("adir", "ro/keep.txt"):
            rc, out, _ = ferry_stream(srv.port, self.local, "DEL", name)
            self.assertEqual((rc, out), (1, "client deleting file %s\nserver error: unable to delete %s\n"
                                         % (name, name)))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "adir")))
        self.assertEqual(os.listdir(os.path.join(self.root, "ro")), ["keep.txt"])

    def test_ipv6_client_address(self):
        try:
            socket.socket(socket.AF_INET6).close()
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        self.write("six.txt", b"6")
        srv = self.start_server()
        rc, out, _ = ferry_stream(srv.port, self.local, "GET", "six.txt", host="::1")
        self.assertEqual((rc, out), (0, "client receiving file six.txt (1 bytes)\nComplete\n"))
        self.assertRegex(srv.stdout(), r"\nserver connected to client at ::1:\d+\nserver receiving request: GET six.txt\n")

    def test_failed_get_keeps_the_local_file(self):
        self.write("mine.txt", b"precious", where=self.local)
        self.start_server()
        self.assertEqual(self.ferry("GET", "mine.txt"), (1, "server error: mine.txt does not exist\n", ""))
        self.assertEqual(self.read(os.path.join(self.local, "mine.txt")), b"precious")
        self.assertEqual(os.listdir(self.local), ["mine.txt"], "temporary file left behind")


class ClientErrorsBeforeConnecting(StreamBase):
    """Local errors are reported without ever connecting (seed 001)."""

    def setUp(self):
        super().setUp()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.setblocking(False)
        self.addCleanup(self.lsock.close)
        self.port = self.lsock.getsockname()[1]
        os.mkdir(os.path.join(self.local, "adir"))

    def assertNoConnection(self):
        with self.assertRaises(BlockingIOError):
            conn, _ = self.lsock.accept()
            conn.close()

    def check(self, action, name, line):
        rc, out, err = ferry_stream(self.port, self.local, action, name)
        self.assertEqual(out, line + "\n")
        self.assertNotEqual(rc, 0)
        self.assertNoConnection()

    def test_put_of_a_missing_file(self):
        self.check("PUT", "nosuch.txt", "client error: nosuch.txt does not exist")

    def test_put_of_a_directory(self):
        self.check("PUT", "adir", "client error: adir does not exist")

    def test_get_onto_a_directory(self):
        self.check("GET", "adir", "client error: unable to create file adir")
        self.assertTrue(os.path.isdir(os.path.join(self.local, "adir")))

    def test_get_into_a_missing_directory(self):
        self.check("GET", "nodir/f.txt", "client error: unable to create file nodir/f.txt")

    def test_connection_failure_is_an_error(self):
        port = free_port()  # nothing listens there
        rc, out, err = ferry_stream(port, self.local, "DEL", "x")
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot connect", err)

    def test_bad_usage(self):
        p = subprocess.run([FERRY, "--stream", "127.0.0.1", str(self.port), "MOVE", "x"], capture_output=True,
                           timeout=TIMEOUT, cwd=self.local)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, b"")
        self.assertNoConnection()


class FerrydConfinement(StreamBase):
    """File names stay inside the served directory, like FTP paths."""

    def test_traversal_stays_inside_the_root(self):
        self.write("secret", b"outside", where=self.tmp)
        os.symlink(self.tmp, os.path.join(self.root, "out"))
        srv = self.start_server()
        cases = [
            ("GET", "../../etc/passwd", ["server error: ../../etc/passwd does not exist"]),
            ("GET", "../secret", ["server error: ../secret does not exist"]),
            ("GET", "out/secret", ["server error: out/secret does not exist"]),
            ("DEL", "../secret", ["client deleting file ../secret", "server error: ../secret does not exist"]),
            ("DEL", "out/secret", ["client deleting file out/secret", "server error: out/secret does not exist"]),
        ]
        for action, name, want in cases:
            self.assertEqual(peer_client(srv.port, action, name, self.local), want, name)
        self.assertEqual(self.read(os.path.join(self.tmp, "secret")), b"outside")
        # Uploads land inside: "/../x" and "../x" are the root's x.
        for name in ("/../x", "../y"):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=PEER_TIMEOUT) as s:
                self.assertEqual(s.recv(1024), b"READY")
                s.send(f"PUT {name}".encode())
                self.assertEqual(s.recv(1024), b"OK")
                s.send(struct.pack(">Q", 1))
                self.assertEqual(s.recv(1024), b"OK")
                s.sendall(b"z")
                self.assertEqual(s.recv(1024), b"DONE")
        self.assertEqual(self.read(os.path.join(self.root, "x")), b"z")
        self.assertEqual(self.read(os.path.join(self.root, "y")), b"z")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x")))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "y")))
        # Through a symlink that leaves the root: nothing to create.
        self.assertEqual(self._put_raw(srv.port, "out/new"), ["server error: unable to create file out/new"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "new")))

    def _put_raw(self, port, name):
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as s:
            self.assertEqual(s.recv(1024), b"READY")
            s.send(f"PUT {name}".encode())
            r = s.recv(1024)
            return ["server error: " + r[7:].decode()] if r.startswith(b"ERROR: ") else [r.decode()]

    def test_interrupted_put_keeps_the_old_file(self):
        self.write("keep.txt", b"original")
        srv = self.start_server()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=PEER_TIMEOUT) as s:
            self.assertEqual(s.recv(1024), b"READY")
            s.send(b"PUT keep.txt")
            self.assertEqual(s.recv(1024), b"OK")
            s.send(struct.pack(">Q", 100000))
            self.assertEqual(s.recv(1024), b"OK")
            s.sendall(b"n" * 3000)
            srv.wait_output(lambda o: "server receiving 100000 bytes" in o)
        # The server is back for the next client once it gave up this one.
        srv.wait_output(lambda o: o.count("server waiting on port") == 2)
        self.assertEqual(self.served(), ["keep.txt"])
        self.assertEqual(self.read(os.path.join(self.root, "keep.txt")), b"original")

    def test_killed_server_leaves_no_temporary_file(self):
        try:
            os.close(os.open(self.root, os.O_TMPFILE | os.O_WRONLY, 0o600))
        except OSError:
            self.skipTest("no O_TMPFILE on this filesystem: ferryd uses a named temporary file")
        self.write("keep.txt", b"original")
        srv = self.start_server()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=PEER_TIMEOUT) as s:
            self.assertEqual(s.recv(1024), b"READY")
            s.send(b"PUT keep.txt")
            self.assertEqual(s.recv(1024), b"OK")
            s.send(struct.pack(">Q", 100000))
            self.assertEqual(s.recv(1024), b"OK")
            s.sendall(b"n" * 3000)
            srv.wait_output(lambda o: "server receiving 100000 bytes" in o)
            srv.stop(signal.SIGKILL)
        self.assertEqual(self.served(), ["keep.txt"])
        self.assertEqual(self.read(os.path.join(self.root, "keep.txt")), b"original")

    def test_bad_requests_do_not_stop_the_server(self):
        self.write("f", b"1")
        srv = self.start_server()
        for raw, want in [(b"MOVE a b", b"ERROR: invalid request"), (b"GET", b"ERROR: invalid request"),
                          (b"GET a\x00b", b"ERROR: invalid request")]:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=PEER_TIMEOUT) as s:
                self.assertEqual(s.recv(1024), b"READY")
                s.send(raw)
                self.assertEqual(s.recv(1024), want)
        # Requests past 4 + 4096 bytes are refused; one at the limit is read whole.
        for name, want in (("a" * 4097, b"ERROR: request too long"),
                           ("a" * 4096, b"ERROR: " + b"a" * 4096 + b" does not exist")):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=PEER_TIMEOUT) as s:
                self.assertEqual(s.recv(1024), b"READY")
                s.sendall(f"GET {name}".encode())
                got = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    got += d
                self.assertEqual(got, want)
        # A client that connects and leaves, then one that works.
        socket.create_connection(("127.0.0.1", srv.port), timeout=PEER_TIMEOUT).close()
        self.assertEqual(peer_client(srv.port, "GET", "f", self.local), ["client receiving file f (1 bytes)", "Complete"])


class QuietWithoutV(StreamBase):
    verbose = False

    def test_no_output_at_all(self):
        self.write("a.txt", b"abc")
        self.write("b.txt", b"defg", where=self.local)
        srv = self.start_server()
        self.assertEqual(self.ferry("GET", "a.txt")[0], 0)
        self.assertEqual(self.ferry("PUT", "b.txt")[0], 0)
        self.assertEqual(self.ferry("DEL", "b.txt")[0], 0)
        self.assertEqual(self.ferry("GET", "nope")[0], 1)
        self.assertEqual(self.ferry("DEL", "nope")[0], 1)
        srv.stop()
        self.assertEqual(srv.stdout(), "")
        self.assertEqual(srv.stderr(), "")


class FerryWithPeerServer(StreamBase):
    """ferry --stream against independent seed-001 servers."""

    def run_against(self, manner):
        sizes = [0, 1, 1024, 1025, 70000]
        for n in sizes:
            make_file(os.path.join(self.root, f"d{n}"), n, seed=n)
            make_file(os.path.join(self.local, f"u{n}"), n, seed=n + 1)
        self.write("gone.txt", b"bye")
        peer = PeerServer(self.root, manner)
        peer.start()
        self.addCleanup(peer.stop)
        for n in sizes:
            rc, out, err = ferry_stream(peer.port, self.local, "GET", f"d{n}")
            self.assertEqual((rc, out, err), (0, f"client receiving file d{n} ({n} bytes)\nComplete\n", ""), n)
            self.assertEqual(sha256_file(os.path.join(self.local, f"d{n}")),
                             sha256_file(os.path.join(self.root, f"d{n}")))
            rc, out, err = ferry_stream(peer.port, self.local, "PUT", f"u{n}")
            self.assertEqual((rc, out, err), (0, f"client sending file u{n} ({n} bytes)\nComplete\n", ""), n)
            self.assertEqual(sha256_file(os.path.join(self.local, f"u{n}")),
                             sha256_file(os.path.join(self.root, f"u{n}")))
        self.assertEqual(ferry_stream(peer.port, self.local, "DEL", "gone.txt"),
                         (0, "client deleting file gone.txt\nComplete\n", ""))
        self.assertFalse(os.path.exists(os.path.join(self.root, "gone.txt")))
        self.assertEqual(ferry_stream(peer.port, self.local, "GET", "nothere.txt"),
                         (1, "server error: nothere.txt does not exist\n", ""))
        self.assertEqual(ferry_stream(peer.port, self.local, "DEL", "nothere.txt"),
                         (1, "client deleting file nothere.txt\nserver error: nothere.txt does not exist\n", ""))
        self.assertEqual(peer.errors, [])
        self.assertIn("GET d1025", peer.requests)
        self.assertIn("PUT u0", peer.requests)

    def test_naive_server(self):
        self.run_against("naive")

    def test_server_splitting_every_message(self):
        self.run_against("split")

    def test_server_merging_messages(self):
        self.run_against("merge")


class PeerClientWithFerryd(StreamBase):
    """Independent seed-001 clients against ferryd --stream."""

    def run_with(self, manner):
        sizes = [0, 1, 1023, 1024, 1025, 65536]
        for n in sizes:
            make_file(os.path.join(self.root, f"d{n}"), n, seed=n)
            make_file(os.path.join(self.local, f"u{n}"), n, seed=n + 7)
        srv = self.start_server()
        for n in sizes:
            self.assertEqual(peer_client(srv.port, "GET", f"d{n}", self.local, manner),
                             [f"client receiving file d{n} ({n} bytes)", "Complete"])
            self.assertEqual(sha256_file(os.path.join(self.local, f"d{n}")),
                             sha256_file(os.path.join(self.root, f"d{n}")))
            # A 0-byte PUT makes ferryd send OK and DONE back to back.
            self.assertEqual(peer_client(srv.port, "PUT", f"u{n}", self.local, manner),
                             [f"client sending file u{n} ({n} bytes)", "Complete"])
            self.assertEqual(sha256_file(os.path.join(self.local, f"u{n}")),
                             sha256_file(os.path.join(self.root, f"u{n}")))
        self.assertEqual(peer_client(srv.port, "DEL", "u1", self.local, manner),
                         ["client deleting file u1", "Complete"])
        self.assertEqual(peer_client(srv.port, "GET", "u1", self.local, manner),
                         ["server error: u1 does not exist"])
        self.assertIn(f"server receiving request: PUT u1025\nserver receiving 1025 bytes\n", srv.stdout())

    def test_naive_client(self):
        self.run_with("naive")

    def test_client_splitting_every_message(self):
        self.run_with("split")


if __name__ == "__main__":
    unittest.main()
