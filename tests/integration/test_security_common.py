"""Shared helpers for the test_security_* files: hostile-client and fault
tests of ferryd's safety rules (docs/SECURITY.md lists which test proves
which rule).

This module holds no tests itself. Everything here is bounded: every
socket has a timeout, every loop a count, every process is stopped by its
PID.
"""
import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import harness
from harness import TIMEOUT, FerrydCase, RawControl

# FERRY_FULL=1 runs the fault and limit tests at the sizes the issue names;
# `make test` runs them smaller so the whole suite stays fast.
FULL = os.environ.get("FERRY_FULL", "") not in ("", "0")

# Markers of the data that lives OUTSIDE a served root. No reply and no
# data connection may ever carry one of them.
SECRET_CONTENT = b"FERRY-SECRET-MARKER: this file is outside the served root\n"
SECRET_SIZE = 987654321           # sparse; a leaked SIZE/LIST/MLST shows it
SECRET_MTIME = 946684799          # 1999-12-31 23:59:59 UTC, a leaked MDTM shows it
SECRET_MTIME_TEXT = b"19991231235959"
OUTSIDE_NAME = "outside-only-name.dat"  # only a listing of the outside shows it
LEAK_MARKERS = (b"FERRY-SECRET-MARKER", str(SECRET_SIZE).encode(), SECRET_MTIME_TEXT,
                OUTSIDE_NAME.encode())


def leaks(blob):
    """The outside markers found in blob (bytes or str)."""
    if isinstance(blob, str):
        blob = blob.encode("utf-8", "surrogateescape")
    return [m for m in LEAK_MARKERS if m in blob]


def plant_outside(tmp):
    """Creates the secret file and a directory beside the served root."""
    secret = os.path.join(tmp, "secret.txt")
    with open(secret, "wb") as f:
        f.write(SECRET_CONTENT)
    os.truncate(secret, SECRET_SIZE)
    os.utime(secret, (SECRET_MTIME, SECRET_MTIME))
    with open(os.path.join(tmp, OUTSIDE_NAME), "wb") as f:
        f.write(SECRET_CONTENT)
    os.mkdir(os.path.join(tmp, "outside_dir"))
    with open(os.path.join(tmp, "outside_dir", "inner.txt"), "wb") as f:
        f.write(SECRET_CONTENT)
    os.chmod(secret, 0o666)  # even a world-writable file must stay untouched
    return secret


def snapshot_outside(tmp, root):
    """Names, types, sizes, mtimes and contents' heads of everything in tmp
    except the served root (and the test's own local directory)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(tmp):
        if dirpath == tmp:
            dirnames[:] = [d for d in dirnames if os.path.join(tmp, d) not in (root, os.path.join(tmp, "local"))]
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            head = b""
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    head = f.read(4096)
            snap[os.path.relpath(p, tmp)] = (st.st_mode, st.st_size, st.st_mtime_ns, head)
    return snap


def temp_leftovers(root):
    """Names of upload temporaries anywhere under root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [os.path.join(dirpath, n) for n in filenames if n.startswith(".ferry-up.")]
    return found


def pasv_port(c):
    r = c.cmd("PASV")
    if not r.startswith("227"):
        raise AssertionError("PASV refused: " + r)
    m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", r)
    return int(m.group(5)) * 256 + int(m.group(6))


def epsv_port(c):
    r = c.cmd("EPSV")
    if not r.startswith("229"):
        raise AssertionError("EPSV refused: " + r)
    return int(re.search(r"\(\|\|\|(\d+)\|\)", r).group(1))


def connect_from(host, port, source=None, family=socket.AF_INET, rcvbuf=None, timeout=TIMEOUT):
    """A TCP connection to host:port, optionally from a chosen source address
    (127.0.0.2 and the like) and with a small receive buffer."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


def recv_all(sock, limit=1 << 22, timeout=TIMEOUT):
    """Reads until EOF (or limit bytes); bounded by timeout per recv."""
    sock.settimeout(timeout)
    out = bytearray()
    while len(out) < limit:
        try:
            b = sock.recv(min(65536, limit - len(out)))
        except ConnectionResetError:
            break
        if not b:
            break
        out += b
    return bytes(out)


def control_from(port, source, family=socket.AF_INET, host="127.0.0.1"):
    """A RawControl whose connection comes from the given source address."""
    c = RawControl.__new__(RawControl)
    c.sock = connect_from(host, port, source=source, family=family)
    c.buf = b""
    c.greeting = c.reply()
    return c


def transfer(c, command, upload=None, limit=1 << 22, host="127.0.0.1", extended=False):
    """PASV (or EPSV), connect, send command; returns (prelim, data, final).
    data and final are None when the command was refused before 150."""
    port = epsv_port(c) if extended else pasv_port(c)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    d = connect_from(host, port, family=family)
    try:
        prelim = c.cmd(command)
        if not prelim.startswith("1"):
            return prelim, None, None
        if upload is not None:
            with contextlib.suppress(OSError):
                d.sendall(upload)
            d.close()
            data = b""
        else:
            data = recv_all(d, limit)
            d.close()
        return prelim, data, c.reply()
    finally:
        d.close()


def family_pids(pid):
    """pid and its direct children (ferryd's worker processes)."""
    return [pid] + harness.child_pids(pid)


def fd_count(pid):
    """Open descriptors of ferryd and all its workers."""
    total = 0
    for p in family_pids(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{p}/fd"))
    return total


def cpu_seconds(pid):
    """User + system CPU time used so far by ferryd and its workers."""
    total = 0
    for p in family_pids(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


wait_until = harness.poll_until


def unused_port():
    """A port free on every local address: bound on the dual-stack
    wildcard, so no socket on 127.0.0.x or ::1 holds it either."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", 0))
    except OSError:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("0.0.0.0", 0))
    with s:
        return s.getsockname()[1]


def start_server(root, *args, prefix=(), tries=5):
    """Starts ferryd (argv prefixed by prefix, e.g. prlimit) on an unused
    port; retries when another process took the port in the meantime."""
    for attempt in range(tries):
        port = unused_port()
        argv = list(prefix) + [harness.FERRYD, "--root", root, "--port", str(port)] + list(args)
        try:
            server = harness.Server(argv, port)
            harness.wait_for_workers(server.proc.pid, args)
            return server
        except RuntimeError:
            if attempt == tries - 1:
                raise
            time.sleep(0.1)


def hash_password(password):
    out = subprocess.run([harness.FERRYD, "--hash-password"], input=(password + "\n").encode(),
                         capture_output=True, timeout=20, check=True)
    return out.stdout.decode().strip()


def read_reply_within(c, seconds):
    """One reply, or None when none arrives within seconds."""
    old = c.sock.gettimeout()
    c.sock.settimeout(max(seconds, 0.01))
    try:
        return c.reply()
    except (socket.timeout, TimeoutError, BlockingIOError):
        return None
    finally:
        c.sock.settimeout(old)


class SecurityCase(FerrydCase):
    """A FerrydCase whose server must survive whatever the test sends:
    after each test the process is alive, no worker died, and a fresh
    session logs in and answers NOOP."""

    check_health = True               # a test that stops ferryd itself sets False
    health_login = ("anonymous", "guest@")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-sec-")
        self.root = os.path.join(self.tmp, "root")
        os.mkdir(self.root)
        self.local = os.path.join(self.tmp, "local")
        os.mkdir(self.local)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.prepare_root()
        harness.give_to_server(self.tmp, self.root)
        self.server = start_server(self.root, *self.ferryd_args)
        self.addCleanup(lambda: self.server.stop())
        self.addCleanup(self._health_check)

    def restart(self, *args):
        self.server.stop()
        self.server = start_server(self.root, *args)

    def binary_session(self):
        """A raw control connection, logged in (anonymous) and in TYPE I."""
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        self.assertTrue(c.cmd("TYPE I").startswith("200"))
        return c

    def _health_check(self):
        if self.check_health:
            self.assert_server_healthy()

    def assert_server_healthy(self):
        self.assertIsNone(self.server.proc.poll(), "ferryd died:\n" + self.server.stderr())
        err = self.server.stderr()
        self.assertNotIn("exited (status", err, "a ferryd worker died:\n" + err)
        self.assertNotIn("Sanitizer", err, err)
        c = RawControl("127.0.0.1", self.server.port)
        try:
            self.assertTrue(c.greeting.startswith("220"), c.greeting)
            self.assertTrue(c.login(*self.health_login).startswith("230"))
            self.assertTrue(c.cmd("NOOP").startswith("200"))
        finally:
            c.close()
