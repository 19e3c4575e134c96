"""Shared helpers for the integration tests: start ferryd (or another
server) on a free loopback port in a temporary root, stop it by PID, and
small utilities (checksums, random files, free ports).

Every wait here is bounded; every process started is stopped by its PID.
"""
import contextlib
import ctypes
import ftplib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("FERRY_BUILD") or os.path.join(HERE, "..", "..", "build")
FERRYD = os.path.join(BUILD, "ferryd")
FERRY = os.path.join(BUILD, "ferry")
PYTHON = "/usr/bin/python3"
TIMEOUT = 20


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port free for listening, chosen below the kernel's ephemeral range
    so that no outgoing connection (which takes ephemeral ports) can grab it
    between this probe and the server's bind."""
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError):
        low = 32768
    top = max(low, 12000)
    for _ in range(200):
        port = random.randrange(10000, top)
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind(("::", port))
            return port
        except OSError:
            continue
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")


def _listening_sockets():
    """(port, socket inode) of every TCP socket in LISTEN on the machine."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A":
                        found.append((int(fields[1].rsplit(":", 1)[1], 16), fields[9]))
        except OSError:
            pass
    return found


def wait_listening(port, proc, timeout=10):
    """Waits until something listens on port without connecting to it: a
    probe connection would be a session, with a greeting in the server's
    transcript."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        if any(p == port for p, _ in _listening_sockets()):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


_SYS_PIDFD_GETFD = 438
_libc = ctypes.CDLL(None, use_errno=True)


def tcp_sockets(pid):
    """{local port: listening?} of every TCP socket pid and its direct
    children hold, read from duplicates of their descriptors (pidfd_getfd):
    a socket bound but not listening shows too, and nothing connects to any
    of them."""
    found = {}
    for p in [pid] + child_pids(pid):
        try:
            pidfd = os.pidfd_open(p)
        except OSError:
            continue
        try:
            try:
                names = os.listdir(f"/proc/{p}/fd")
            except OSError:
                continue
            for name in names:
                try:
                    if not os.readlink(f"/proc/{p}/fd/{name}").startswith("socket:["):
                        continue
                except OSError:
                    continue
                fd = _libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(name), 0)
                if fd < 0:
                    continue
                with socket.socket(fileno=fd) as s:
                    if s.type == socket.SOCK_STREAM and s.family in (socket.AF_INET, socket.AF_INET6):
                        found[s.getsockname()[1]] = bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        finally:
            os.close(pidfd)
    return found


def assert_data_method(case, transcript, verb, never=()):
    """Asserts on ferryd's -v transcript that the server accepted verb (e.g.
    EPRT |2|::1|), saw none of the verbs in never, and refused no data
    command: the client used the data connection method the test is about,
    without falling back."""
    import re
    cmds = [ln for ln in transcript.splitlines()
            if re.match(r"^\[\d+\] (SUCCESS |FAILURE )?(PORT|EPRT|PASV|EPSV)\b", ln)]
    case.assertTrue(re.search(r"(?m)^\[\d+\] SUCCESS %s" % re.escape(verb), transcript),
                    "no accepted %s; data commands seen: %s" % (verb, cmds[:12]))
    for v in never:
        case.assertFalse(re.search(r"(?m)^\[\d+\] %s\b" % v, transcript),
                         "%s used; data commands seen: %s" % (v, cmds[:12]))
    case.assertFalse(re.search(r"(?m)^\[\d+\] FAILURE (PORT|EPRT|PASV|EPSV)\b", transcript),
                     "a data command failed: %s" % cmds[:12])


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def make_file(path, size, seed=1, text=False):
    """Writes size pseudo-random bytes (or text lines) in bounded chunks."""
    import random
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            if text:
                words = []
                total = 0
                while total < n:
                    w = "line %d of ferry text\n" % rnd.randrange(1 << 30)
                    words.append(w)
                    total += len(w)
                chunk = "".join(words).encode()[:n]
            else:
                chunk = rnd.randbytes(n)
            f.write(chunk)
            left -= n


def give_to_server(tmp, root):
    """Run as root, ferryd drops to the owner of the served directory (or
    nobody): hand the test's root over to nobody so uploads work, and let
    it traverse the temporary parent."""
    if os.geteuid() != 0:
        return
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(tmp, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        os.lchown(dirpath, nobody.pw_uid, nobody.pw_gid)
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), nobody.pw_uid, nobody.pw_gid)


class Server:
    """A process serving on a loopback port; stopped by PID."""

    def __init__(self, argv, port, host="127.0.0.1", cwd=None, env=None, stdin=None, wait=10.0):
        self.port = port
        self.host = host
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self.out, stderr=self.err,
                                     stdin=stdin if stdin is not None else subprocess.DEVNULL)
        try:
            wait_port(port, host=host, proc=self.proc, timeout=wait)
        except Exception as e:
            self.stop()
            raise RuntimeError(f"{e}: {self.stderr().strip()}") from e

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def stdout(self):
        return read_output(self.out)

    def stderr(self):
        return read_output(self.err)


def read_output(f):
    """All a child process has written to the temporary file f (its stdout
    or stderr), as text. Read with pread: the child shares f's file offset,
    and a seek here would make its next write land over what it wrote
    first."""
    f.flush()
    chunks, pos = [], 0
    while True:
        b = os.pread(f.fileno(), 1 << 16, pos)
        if not b:
            return b"".join(chunks).decode("utf-8", "replace")
        chunks.append(b)
        pos += len(b)


def rss_kib(pid):
    """A process's resident memory in KiB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_pids(pid):
    """The direct children of pid (ferryd's worker processes)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def ferryd_workers(args):
    """How many worker processes ferryd runs with these arguments: as
    --workers says, else one per online core (at most 64); one under
    --compat comp431."""
    args = list(args)
    n = 0
    for i, a in enumerate(args):
        if a == "--compat":
            return 1
        if a == "--workers" and i + 1 < len(args):
            n = int(args[i + 1])
        elif a.startswith("--workers="):
            n = int(a.split("=", 1)[1])
    return n if n > 0 else min(os.cpu_count() or 1, 64)


def has_epoll(pid):
    """True once pid holds an epoll instance (a worker in its loop)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[eventpoll]":
                return True
    return False


def wait_for_workers(pid, args, timeout=10.0):
    """Waits until ferryd (pid, started with args) has all its workers in
    their loops. The supervisor forks them after it listens, so the port
    can answer while the last is still starting (seen under load): a test
    that counts the family's descriptors would take that worker's as new.
    Returns whether they all came up."""
    workers = ferryd_workers(args)

    def ready():
        procs = [pid] if workers == 1 else child_pids(pid)
        return len(procs) == workers and all(has_epoll(p) for p in procs)
    return poll_until(ready, timeout)


def poll_until(probe, timeout=10.0, step=0.05):
    """Calls probe every step seconds until it returns a true value or
    timeout seconds have passed; returns its last value. For state a
    process reaches shortly after it answers, such as a worker still
    starting."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def pause_process(case, pid):
    """SIGSTOPs pid and waits until it is stopped; the test's cleanup
    continues it. Lets a test queue input that the process then finds
    all at once, in one wakeup."""
    os.kill(pid, signal.SIGSTOP)
    case.addCleanup(os.kill, pid, signal.SIGCONT)
    for _ in range(500):
        with open("/proc/%d/stat" % pid) as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)
    case.fail("process %d did not stop" % pid)


def veth_namespace(test, prefix):
    """A private network namespace joined to this one by a veth pair: a host
    on another machine, as far as either side's addresses tell. Returns
    (its address, the command prefix that runs a program in it, our address
    on the pair). Skips the test without root or ip(8); removed when the
    test ends."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        test.skipTest("needs root and ip(8) for a network namespace")
    tag = os.getpid() % 100000
    name, outer, inner = "%s-%d" % (prefix, tag), "fsa%d" % tag, "fsb%d" % tag
    net = "10.213.%d" % (tag % 250)
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        test.skipTest("no network namespaces here: " + r.stderr.strip())
    test.addCleanup(subprocess.run, ["ip", "netns", "del", name], timeout=10)
    ns = ["ip", "netns", "exec", name]
    for cmd in (["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
                ["ip", "link", "set", inner, "netns", name],
                ["ip", "addr", "add", net + ".1/30", "dev", outer],
                ["ip", "link", "set", outer, "up"],
                ns + ["ip", "addr", "add", net + ".2/30", "dev", inner],
                ns + ["ip", "link", "set", inner, "up"],
                ns + ["ip", "link", "set", "lo", "up"]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=10)
    # deleting the namespace deletes the pair; this covers a failed move
    test.addCleanup(subprocess.run, ["ip", "link", "del", outer], capture_output=True, timeout=10)
    return net + ".2", ns, net + ".1"


def start_ferryd(root, *args, port=None, host="127.0.0.1"):
    """Starts ferryd on port (or a free one). A free port can be taken by
    another process between the probe and ferryd's bind (tests run beside
    other tests): then ferryd exits 2 naming the port, and we pick again."""
    fixed = port is not None
    for attempt in range(5):
        p = port if fixed else free_port()
        argv = [FERRYD, "--root", root, "--port", str(p)] + list(args)
        try:
            server = Server(argv, p, host=host)
            wait_for_workers(server.proc.pid, args)
            return server
        except RuntimeError as e:
            if fixed or "exited with 2" not in str(e) or attempt == 4:
                raise


class PeerThread(threading.Thread):
    """A scripted peer on a loopback port (self.port), one connection at a
    time, until stop(): each connection goes to self.session(conn) with a
    timeout of `timeout` seconds on every wait; what a session raises is
    kept in self.errors for the test to report."""

    def __init__(self, timeout=10):
        super().__init__(daemon=True)
        self.conn_timeout = timeout
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.errors = []
        self.stopping = False

    def session(self, conn):
        raise NotImplementedError

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with conn:
                conn.settimeout(self.conn_timeout)
                try:
                    self.session(conn)
                except Exception as e:  # reported by the test
                    self.errors.append(repr(e))

    def stop(self):
        self.stopping = True
        self.join(timeout=5)
        self.lsock.close()


class ClassFerryd(unittest.TestCase):
    """One ferryd for the whole class (cls.server, cls.port) over a root
    made once (cls.root in cls.tmp). Subclasses set ferryd_args and fill
    the root in make_files(), before it is handed to the server."""

    ferryd_args = ()
    tmp_prefix = "ferry-class-"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=cls.tmp_prefix)
        cls.root = os.path.join(cls.tmp, "root")
        os.mkdir(cls.root)
        try:
            cls.make_files()
            give_to_server(cls.tmp, cls.root)
            cls.server = start_ferryd(cls.root, *cls.ferryd_args)
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.port = cls.server.port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def make_files(cls):
        pass


class FerrydCase(unittest.TestCase):
    """A test with a temporary root served by ferryd (self.server)."""

    ferryd_args = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-test-")
        self.root = os.path.join(self.tmp, "root")
        os.mkdir(self.root)
        self.local = os.path.join(self.tmp, "local")
        os.mkdir(self.local)
        self.prepare_root()
        give_to_server(self.tmp, self.root)
        self.server = start_ferryd(self.root, *self.ferryd_args)
        self.addCleanup(self._cleanup)

    def prepare_root(self):
        pass

    def _cleanup(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def restart(self, *args):
        self.server.stop()
        self.server = start_ferryd(self.root, *args)

    def ftp(self, user="anonymous", passwd="guest@", host="127.0.0.1", login=True):
        f = ftplib.FTP()
        f.connect(host, self.server.port, timeout=TIMEOUT)
        self.addCleanup(self._close_ftp, f)
        if login:
            f.login(user, passwd)
        return f

    @staticmethod
    def _close_ftp(f):
        with contextlib.suppress(Exception):
            f.close()

    def raw(self, host="127.0.0.1", family=socket.AF_INET):
        """A plain control socket with line helpers (see RawControl)."""
        c = RawControl(host, self.server.port, family)
        self.addCleanup(c.close)
        return c


class RawControl:
    """A control connection spoken by hand: send raw bytes, read replies."""

    def __init__(self, host, port, family=socket.AF_INET, timeout=TIMEOUT, source=None):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.greeting = self.reply()

    def close(self):
        with contextlib.suppress(Exception):
            self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Reads one (possibly multi-line) reply; returns its full text."""
        first = self.line()
        lines = [first]
        if len(first) > 3 and first[3] == "-":
            code = first[:3]
            while True:
                ln = self.line()
                lines.append(ln)
                if ln.startswith(code + " ") or ln == code:
                    break
        return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def login(self, user="anonymous", passwd="guest@"):
        r = self.cmd("USER " + user)
        if r.startswith("331"):
            r = self.cmd("PASS " + passwd)
        return r

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout; what
        it sent first is kept in self.buf."""
        before = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while True:
                b = self.sock.recv(65536)
                if not b:
                    return True
                self.buf += b
        except socket.timeout:
            return False
        except OSError:
            return True
        finally:
            self.sock.settimeout(before)
