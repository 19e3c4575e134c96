"""ferryd transfers, byte-exact: text and binary files up to 256 MiB in
PASV, EPSV, PORT and EPRT modes over IPv4 and IPv6 loopback (ftplib),
TYPE A line-ending conversion both ways, REST, APPE, ABOR during RETR
and STOR, and interrupted uploads that must leave the old file intact."""
import ctypes
import ftplib
import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (FERRYD, TIMEOUT, ClassFerryd, FerrydCase, Server, free_port, give_to_server,
                     make_file, pause_process, sha256_file, veth_namespace)

MiB = 1 << 20
BIG = 256 * MiB


def make_big_file(path, size, seed):
    """size bytes: one random 1 MiB block repeated, each copy stamped with
    its index so no two blocks are equal. Returns the sha256."""
    rnd = random.Random(seed)
    block = bytearray(rnd.randbytes(MiB))
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(size // MiB):
            block[0:8] = i.to_bytes(8, "big")
            block[MiB // 2:MiB // 2 + 8] = (i * 2654435761 & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
            f.write(block)
            h.update(block)
        tail = size % MiB
        if tail:
            f.write(block[:tail])
            h.update(block[:tail])
    return h.hexdigest()


class ModeFTP(ftplib.FTP):
    """ftplib with the data-connection method chosen explicitly:
    pasv, epsv, port or eprt. Active-mode listeners bind to the control
    connection's local (loopback) address only."""

    mode = "pasv"

    def use(self, mode):
        self.mode = mode
        self.set_pasv(mode in ("pasv", "epsv"))

    def makepasv(self):
        if self.mode == "epsv":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        host, port = ftplib.parse227(self.sendcmd("PASV"))
        return host, port

    def makeport(self):
        host = self.sock.getsockname()[0]
        sock = socket.socket(self.af, socket.SOCK_STREAM)
        sock.bind((host, 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        if self.mode == "port":
            self.sendport(host, port)
        else:
            self.sendeprt(host, port)
        sock.settimeout(TIMEOUT)
        return sock


def server_socket_option(pid, fd, level, name):
    """An option of socket fd in process pid, through a duplicate of it
    (pidfd_getfd(2); closing the duplicate leaves the server's alone)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd
        if dup < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    with socket.socket(fileno=dup) as s:
        return s.getsockopt(level, name)


class ClassServer(ClassFerryd):
    """One ferryd (-w) for the whole class over a root made once, and a
    local scratch directory beside it (cls.local)."""

    ferryd_args = ("-w",)
    tmp_prefix = "ferry-xfer-"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.local = os.path.join(cls.tmp, "local")
        os.mkdir(cls.local)

    def client(self, mode="pasv", host="127.0.0.1", user="anonymous", passwd="x@"):
        f = ModeFTP()
        f.connect(host, self.server.port, timeout=TIMEOUT)
        self.addCleanup(self._close, f)
        f.login(user, passwd)
        f.use(mode)
        return f

    @staticmethod
    def _close(f):
        try:
            f.close()
        except Exception:
            pass

    def rpath(self, name):
        return os.path.join(self.root, name)

    def retr_sha(self, f, name, rest=None):
        h = hashlib.sha256()
        n = [0]

        def take(b):
            h.update(b)
            n[0] += len(b)
        f.retrbinary("RETR " + name, take, blocksize=MiB, rest=rest)
        return h.hexdigest(), n[0]

    def retr_ascii(self, f, name):
        """TYPE A download through the raw data connection (no line
        splitting by ftplib): returns the wire bytes."""
        f.voidcmd("TYPE A")
        out = io.BytesIO()
        with f.transfercmd("RETR " + name) as conn:
            while True:
                b = conn.recv(1 << 16)
                if not b:
                    break
                out.write(b)
        f.voidresp()
        return out.getvalue()

    def stor_ascii(self, f, name, wire):
        f.voidcmd("TYPE A")
        with f.transfercmd("STOR " + name) as conn:
            conn.sendall(wire)
        return f.voidresp()


MODES_V4 = ("pasv", "epsv", "port", "eprt")
MODES_V6 = ("epsv", "eprt")


class ModeMatrixTests(ClassServer):
    """Every data-connection method, both address families, text and
    binary, download and upload."""

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "bin1m"), MiB + 12345, seed=11)
        make_file(os.path.join(cls.root, "text.txt"), MiB + 777, seed=12, text=True)
        # binary data full of CR, LF and CRLF must pass through TYPE I untouched
        with open(os.path.join(cls.root, "crlf.bin"), "wb") as f:
            f.write(b"\r\n\n\r\r\r\n\x00\xff" * 5000 + b"\r")
        open(os.path.join(cls.root, "empty"), "wb").close()
        cls.sums = {n: sha256_file(os.path.join(cls.root, n))
                    for n in ("bin1m", "text.txt", "crlf.bin", "empty")}

    def roundtrip(self, mode, host):
        f = self.client(mode, host)
        tag = "%s-%s" % (mode, "v6" if ":" in host else "v4")
        for name, want in self.sums.items():
            got, n = self.retr_sha(f, name)
            self.assertEqual(got, want, "RETR %s over %s" % (name, tag))
            self.assertEqual(n, os.path.getsize(self.rpath(name)))
            up = "up-%s-%s" % (tag, name)
            with open(self.rpath(name), "rb") as src:
                r = f.storbinary("STOR " + up, src, blocksize=MiB)
            self.assertTrue(r.startswith("226"), r)
            self.assertEqual(sha256_file(self.rpath(up)), want, "STOR %s over %s" % (name, tag))
            os.unlink(self.rpath(up))
        # TYPE A both ways over the same method
        with open(self.rpath("text.txt"), "rb") as src:
            text = src.read()
        wire = self.retr_ascii(f, "text.txt")
        self.assertEqual(wire, text.replace(b"\n", b"\r\n"), "TYPE A RETR over " + tag)
        up = "up-%s-ascii.txt" % tag
        r = self.stor_ascii(f, up, wire)
        self.assertTrue(r.startswith("226"), r)
        self.assertEqual(sha256_file(self.rpath(up)), self.sums["text.txt"], "TYPE A STOR over " + tag)
        os.unlink(self.rpath(up))
        # and a listing over the same method
        f.voidcmd("TYPE I")
        names = f.nlst()
        self.assertEqual(set(names), set(self.sums))
        f.quit()

    def test_pasv_ipv4(self):
        self.roundtrip("pasv", "127.0.0.1")

    def test_epsv_ipv4(self):
        self.roundtrip("epsv", "127.0.0.1")

    def test_port_ipv4(self):
        self.roundtrip("port", "127.0.0.1")

    def test_eprt_ipv4(self):
        self.roundtrip("eprt", "127.0.0.1")

    def test_epsv_ipv6(self):
        self.roundtrip("epsv", "::1")

    def test_eprt_ipv6(self):
        self.roundtrip("eprt", "::1")

    def test_pasv_on_ipv6_refused(self):
        f = self.client("pasv", "::1")
        with self.assertRaises(ftplib.error_temp) as cm:
            f.sendcmd("PASV")
        self.assertTrue(str(cm.exception).startswith("425"), cm.exception)
        # EPSV on the same session still works
        f.use("epsv")
        got, _ = self.retr_sha(f, "bin1m")
        self.assertEqual(got, self.sums["bin1m"])

    def test_many_transfers_one_session(self):
        f = self.client("pasv")
        for i in range(30):
            got, _ = self.retr_sha(f, "crlf.bin")
            self.assertEqual(got, self.sums["crlf.bin"], "transfer %d" % i)

    def test_ascii_conversion_details(self):
        f = self.client("epsv")
        self.stor_ascii(f, "conv.txt", b"a\r\nb\r\n\r\nlast line without newline")
        with open(self.rpath("conv.txt"), "rb") as fh:
            self.assertEqual(fh.read(), b"a\nb\n\nlast line without newline")
        self.assertEqual(self.retr_ascii(f, "conv.txt"), b"a\r\nb\r\n\r\nlast line without newline")
        # a CRLF split across two TCP segments still becomes one LF
        f.voidcmd("TYPE A")
        with f.transfercmd("STOR split.txt") as conn:
            conn.sendall(b"x" * 1000 + b"\r")
            time.sleep(0.2)
            conn.sendall(b"\ny\r\n")
        f.voidresp()
        with open(self.rpath("split.txt"), "rb") as fh:
            self.assertEqual(fh.read(), b"x" * 1000 + b"\ny\n")
        # binary again afterwards: no conversion
        f.voidcmd("TYPE I")
        got, _ = self.retr_sha(f, "conv.txt")
        self.assertEqual(got, hashlib.sha256(b"a\nb\n\nlast line without newline").hexdigest())
        os.unlink(self.rpath("conv.txt"))
        os.unlink(self.rpath("split.txt"))


def default_congestion(ns=()):
    """The default TCP congestion control where ns runs (this namespace
    when empty)."""
    return subprocess.run(list(ns) + ["sysctl", "-n", "net.ipv4.tcp_congestion_control"],
                          capture_output=True, text=True, timeout=TIMEOUT).stdout.strip()


def server_end_congestion(conn, ns=()):
    """The congestion control of the server's end of data connection conn
    (ss(8) in the namespace ns runs in): the socket whose local port is
    conn's peer port and whose peer port is conn's own."""
    here, there = conn.getsockname()[1], conn.getpeername()[1]
    out = subprocess.run(list(ns) + ["ss", "-Htin", "( sport = :%d and dport = :%d )" % (there, here)],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    m = re.search(r"\n\s+([a-z0-9_]+) ", out)
    return m.group(1) if m else out


def read_to_end(conn):
    n = 0
    while True:
        b = conn.recv(1 << 16)
        if not b:
            return n
        n += len(b)


class SameHostUnpacedTests(ClassServer):
    """A data connection to a client on this host is Reno, which does not
    pace, not the machine's default (BBR here, which paces: a download
    over loopback then costs ferryd about four times the CPU per GiB;
    docs/ARCHITECTURE.md). Every method and address family, the server's
    end of each connection read with ss(8) while it sends."""

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "two.bin"), 2 * MiB, seed=31)

    def test_downloads_to_this_host_are_reno(self):
        if default_congestion() in ("", "reno"):
            self.skipTest("the default is Reno already: nothing to tell apart")
        for host, modes in (("127.0.0.1", MODES_V4), ("::1", MODES_V6)):
            for mode in modes:
                f = self.client(mode, host)
                f.voidcmd("TYPE I")
                with f.transfercmd("RETR two.bin") as conn:
                    cc = server_end_congestion(conn)
                    self.assertEqual(read_to_end(conn), 2 * MiB)
                self.assertTrue(f.voidresp().startswith("226"))
                self.assertEqual(cc, "reno", "%s over %s" % (mode, host))


class OtherHostPacedTests(unittest.TestCase):
    """A client on another host keeps the machine's default congestion
    control: Reno is only for paths that never leave the machine. ferryd
    runs in a private network namespace behind a veth pair; this test is
    its client, on the other side."""

    def test_download_to_another_host_keeps_the_default(self):
        host, ns, _ = veth_namespace(self, "ferry-cc")
        want = default_congestion(ns)
        if want in ("", "reno"):
            self.skipTest("the default is Reno already: nothing to tell apart")
        tmp = tempfile.mkdtemp(prefix="ferry-cc-")
        self.addCleanup(shutil.rmtree, tmp, True)
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        make_file(os.path.join(root, "two.bin"), 2 * MiB, seed=32)
        give_to_server(tmp, root)
        port = free_port()
        server = Server(ns + [FERRYD, "--root", root, "--port", str(port), "-b", host], port, host=host)
        self.addCleanup(server.stop)
        for mode in ("pasv", "port"):
            f = ModeFTP()
            f.connect(host, port, timeout=TIMEOUT)
            self.addCleanup(ClassServer._close, f)
            f.login()
            f.use(mode)
            f.voidcmd("TYPE I")
            with f.transfercmd("RETR two.bin") as conn:
                cc = server_end_congestion(conn, ns)
                self.assertEqual(read_to_end(conn), 2 * MiB)
            self.assertTrue(f.voidresp().startswith("226"))
            self.assertEqual(cc, want, mode)


class BigFileTests(ClassServer):
    """One 256 MiB file, moved a few different ways."""

    @classmethod
    def make_files(cls):
        cls.big_sha = make_big_file(os.path.join(cls.root, "big.bin"), BIG, seed=256)

    def test_big_retr_pasv_ipv4(self):
        f = self.client("pasv")
        self.assertEqual(f.size("big.bin"), BIG)
        got, n = self.retr_sha(f, "big.bin")
        self.assertEqual(n, BIG)
        self.assertEqual(got, self.big_sha)

    def test_big_retr_port_ipv4(self):
        f = self.client("port")
        got, n = self.retr_sha(f, "big.bin")
        self.assertEqual(n, BIG)
        self.assertEqual(got, self.big_sha)

    def test_big_stor_eprt_ipv6(self):
        f = self.client("eprt", "::1")
        with open(self.rpath("big.bin"), "rb") as src:
            r = f.storbinary("STOR big-up.bin", src, blocksize=MiB)
        self.assertTrue(r.startswith("226"), r)
        try:
            self.assertEqual(os.path.getsize(self.rpath("big-up.bin")), BIG)
            self.assertEqual(sha256_file(self.rpath("big-up.bin")), self.big_sha)
        finally:
            os.unlink(self.rpath("big-up.bin"))

    def test_small_retr_is_one_segment_with_fin(self):
        """The data connection of a download is corked (TCP_CORK), so the
        kernel sends only full segments, and a small file leaves in one
        segment together with the FIN. Uncorked, sendfile() pushes the
        bytes at once and the FIN follows alone; in a bulk transfer every
        sendfile() call then ends in a short segment. Read off our own
        socket's counters with ss(8) after the server closed it."""
        with open(self.rpath("small.bin"), "wb") as fh:
            fh.write(os.urandom(3000))
        f = self.client("pasv")
        f.voidcmd("TYPE I")
        for _ in range(3):  # three times: a lucky merge cannot pass it
            conn = f.transfercmd("RETR small.bin")
            try:
                got = b""
                for _ in range(100):
                    b = conn.recv(1 << 16)
                    if not b:
                        break
                    got += b
                self.assertEqual(len(got), 3000)
                port = conn.getsockname()[1]
                out = subprocess.run(
                    ["ss", "-tinH", "state", "close-wait", "( sport = :%d )" % port],
                    capture_output=True, text=True, timeout=TIMEOUT).stdout
            finally:
                conn.close()
            f.voidresp()
            segs = re.search(r"segs_in:(\d+)", out)
            self.assertTrue(segs, out)
            # the SYN-ACK, then the file and the FIN in one segment
            self.assertEqual(int(segs.group(1)), 2, out)

    def test_bulk_retr_is_not_corked(self):
        """Only a download's last sendfile() call is corked: corked all
        along, a 1 GiB download on loopback runs at two thirds of the
        speed (bench/RESULTS.md, row 1). Read off the server's own socket,
        duplicated with pidfd_getfd(2), while the client holds the transfer
        in mid-file by not reading."""
        f = self.client("pasv")
        f.voidcmd("TYPE I")
        conn = f.transfercmd("RETR big.bin")
        try:
            got = len(conn.recv(1 << 20))
            out = subprocess.run(["ss", "-tnpH", "( dport = :%d )" % conn.getsockname()[1]],
                                 capture_output=True, text=True, timeout=TIMEOUT).stdout
            m = re.search(r'"ferryd",pid=(\d+),fd=(\d+)', out)
            self.assertTrue(m, out)
            corked = server_socket_option(int(m.group(1)), int(m.group(2)),
                                          socket.IPPROTO_TCP, socket.TCP_CORK)
            for _ in range(BIG // 4096 + 10):
                b = conn.recv(MiB)
                if not b:
                    break
                got += len(b)
        finally:
            conn.close()
        f.voidresp()
        self.assertEqual(got, BIG)
        self.assertEqual(corked, 0, "TCP_CORK set in mid-file")

    def test_big_rest_epsv_ipv6(self):
        f = self.client("epsv", "::1")
        off = 200 * MiB + 12345
        with open(self.rpath("big.bin"), "rb") as fh:
            fh.seek(off)
            h = hashlib.sha256()
            while True:
                b = fh.read(MiB)
                if not b:
                    break
                h.update(b)
        got, n = self.retr_sha(f, "big.bin", rest=off)
        self.assertEqual(n, BIG - off)
        self.assertEqual(got, h.hexdigest())

    def test_abor_during_retr(self):
        """ABOR (sent as urgent data) during a download: 426 for the
        transfer, then 226 for ABOR; the data connection is closed and the
        session goes on."""
        f = self.client("pasv")
        f.voidcmd("TYPE I")
        conn = f.transfercmd("RETR big.bin")
        self.addCleanup(conn.close)
        conn.settimeout(TIMEOUT)
        got = 0
        while got < 4 * MiB:
            b = conn.recv(MiB)
            self.assertTrue(b, "data connection closed early")
            got += len(b)
        # what ftplib.FTP.abort() does: ABOR as urgent data, then the replies
        f.sock.sendall(b"ABOR" + ftplib.B_CRLF, socket.MSG_OOB)
        first = f.getmultiline()
        self.assertEqual(first[:3], "426", first)
        second = f.getmultiline()
        self.assertEqual(second[:3], "226", second)
        # the data connection is closed: EOF long before the whole file
        for _ in range(100000):
            try:
                b = conn.recv(MiB)
            except ConnectionResetError:
                break
            if not b:
                break
            got += len(b)
        self.assertLess(got, BIG)
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")
        # and the session can transfer again
        got_sha, n = self.retr_sha(f, "big.bin", rest=BIG - MiB)
        self.assertEqual(n, MiB)

    def test_abor_with_telnet_synch(self):
        """The RFC 959 way: IAC IP, IAC DM (DM as urgent data), then ABOR."""
        f = self.client("port")
        f.voidcmd("TYPE I")
        conn = f.transfercmd("RETR big.bin")
        self.addCleanup(conn.close)
        conn.settimeout(TIMEOUT)
        self.assertTrue(conn.recv(MiB))
        f.sock.sendall(b"\xff\xf4\xff")
        f.sock.send(b"\xf2", socket.MSG_OOB)
        f.sock.sendall(b"ABOR\r\n")
        self.assertEqual(f.getmultiline()[:3], "426")
        self.assertEqual(f.getmultiline()[:3], "226")
        conn.close()
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")

    def test_ftplib_abort(self):
        f = self.client("epsv")
        f.voidcmd("TYPE I")
        conn = f.transfercmd("RETR big.bin")
        self.addCleanup(conn.close)
        conn.settimeout(TIMEOUT)
        self.assertTrue(conn.recv(MiB))
        r = f.abort()
        self.assertIn(r[:3], ("426", "226"), r)
        if r.startswith("426"):
            r = f.getresp()
            self.assertEqual(r[:3], "226", r)
        conn.close()
        self.assertEqual(f.pwd(), "/")

    def test_client_closes_data_mid_retr(self):
        """A downloader that drops the data connection gets no 226."""
        f = self.client("pasv")
        f.voidcmd("TYPE I")
        conn = f.transfercmd("RETR big.bin")
        conn.settimeout(TIMEOUT)
        self.assertTrue(conn.recv(MiB))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
        with self.assertRaises(ftplib.Error) as cm:
            f.voidresp()
        self.assertIn(str(cm.exception)[:3], ("426", "451"), cm.exception)
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")


class UploadSafetyTests(ClassServer):
    """STOR writes the new file aside and puts it in place only when the
    whole upload arrived."""

    OLD = b"the old content\n" * 1000

    @classmethod
    def make_files(cls):
        os.mkdir(os.path.join(cls.root, "safe"))

    def setUp(self):
        self.dir = os.path.join(self.root, "safe", self.id().rsplit(".", 1)[-1])
        os.mkdir(self.dir)
        self.target = os.path.join(self.dir, "keep.bin")
        with open(self.target, "wb") as f:
            f.write(self.OLD)
        give_to_server(self.tmp, self.root)
        self.vdir = "/safe/" + os.path.basename(self.dir)

    def dir_state(self):
        with open(self.target, "rb") as f:
            data = f.read()
        return sorted(os.listdir(self.dir)), data

    def wait_state(self, want, timeout=10):
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.dir_state()
            if state == want:
                return state
            time.sleep(0.05)
        return state

    def start_upload(self, f, name, payload):
        f.voidcmd("TYPE I")
        conn = f.transfercmd("STOR %s/%s" % (self.vdir, name))
        self.addCleanup(conn.close)
        conn.settimeout(TIMEOUT)
        conn.sendall(payload)
        return conn

    def test_complete_upload_replaces(self):
        f = self.client("pasv")
        new = os.urandom(300000)
        conn = self.start_upload(f, "keep.bin", new)
        # while the upload is unfinished the old file is what others see
        g = self.client("epsv")
        got = io.BytesIO()
        g.retrbinary("RETR %s/keep.bin" % self.vdir, got.write)
        self.assertEqual(got.getvalue(), self.OLD)
        self.assertEqual(self.dir_state(), (["keep.bin"], self.OLD))
        conn.close()
        self.assertTrue(f.voidresp().startswith("226"))
        self.assertEqual(self.dir_state(), (["keep.bin"], new))

    def test_abor_during_stor_keeps_old_file(self):
        f = self.client("pasv")
        conn = self.start_upload(f, "keep.bin", os.urandom(2 * MiB))
        time.sleep(0.2)
        f.sock.sendall(b"ABOR" + ftplib.B_CRLF, socket.MSG_OOB)
        first = f.getmultiline()
        self.assertEqual(first[:3], "426", first)
        second = f.getmultiline()
        self.assertEqual(second[:3], "226", second)
        # the server closed the data connection
        closed = False
        for _ in range(1000):
            try:
                conn.sendall(b"x" * 65536)
            except OSError:
                closed = True
                break
        self.assertTrue(closed, "data connection still accepts data after ABOR")
        conn.close()
        self.assertEqual(self.wait_state((["keep.bin"], self.OLD)), (["keep.bin"], self.OLD))
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")

    def test_abor_during_stor_of_new_file_leaves_nothing(self):
        f = self.client("epsv")
        conn = self.start_upload(f, "fresh.bin", os.urandom(MiB))
        time.sleep(0.2)
        f.sock.sendall(b"ABOR" + ftplib.B_CRLF, socket.MSG_OOB)
        self.assertEqual(f.getmultiline()[:3], "426")
        self.assertEqual(f.getmultiline()[:3], "226")
        conn.close()
        self.assertEqual(self.wait_state((["keep.bin"], self.OLD)), (["keep.bin"], self.OLD))

    def test_control_dies_during_stor(self):
        """The control connection dies mid-upload: the old file stays, no
        temporary file is left, the data connection is closed."""
        f = self.client("pasv")
        conn = self.start_upload(f, "keep.bin", os.urandom(MiB))
        time.sleep(0.2)
        f.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        f.sock.close()
        f.file.close()
        # the server closes the data connection on its side
        closed = False
        for _ in range(100):
            try:
                conn.sendall(b"y" * 65536)
                time.sleep(0.1)
            except OSError:
                closed = True
                break
        self.assertTrue(closed, "data connection still open after the control connection died")
        conn.close()
        time.sleep(0.3)
        self.assertEqual(self.wait_state((["keep.bin"], self.OLD)), (["keep.bin"], self.OLD))

    def test_control_dies_then_data_closes_normally(self):
        """Even if the data connection then ends with an orderly close, an
        upload whose session died is not committed."""
        f = self.client("pasv")
        conn = self.start_upload(f, "keep.bin", b"partial" * 1000)
        time.sleep(0.2)
        f.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        f.sock.close()
        f.file.close()
        time.sleep(0.5)
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()
        time.sleep(0.5)
        self.assertEqual(self.wait_state((["keep.bin"], self.OLD)), (["keep.bin"], self.OLD))

    def test_appe_and_rest_stor(self):
        f = self.client("eprt")
        f.voidcmd("TYPE I")
        r = f.storbinary("APPE %s/keep.bin" % self.vdir, io.BytesIO(b"appended"))
        self.assertTrue(r.startswith("226"), r)
        self.assertEqual(self.dir_state(), (["keep.bin"], self.OLD + b"appended"))
        r = f.storbinary("STOR %s/keep.bin" % self.vdir, io.BytesIO(b"ZZ"), rest=5)
        self.assertTrue(r.startswith("226"), r)
        want = self.OLD[:5] + b"ZZ" + (self.OLD + b"appended")[7:]
        self.assertEqual(self.dir_state(), (["keep.bin"], want))

    def test_concurrent_uploads_same_name(self):
        """Two uploads of one name: the result is one of them, whole."""
        a, b = os.urandom(500000), os.urandom(400000)
        fa, fb = self.client("pasv"), self.client("epsv")
        ca = self.start_upload(fa, "race.bin", a[:1000])
        cb = self.start_upload(fb, "race.bin", b[:1000])
        ca.sendall(a[1000:])
        cb.sendall(b[1000:])
        ca.close()
        cb.close()
        self.assertTrue(fa.voidresp().startswith("226"))
        self.assertTrue(fb.voidresp().startswith("226"))
        names, _ = self.dir_state()
        self.assertEqual(names, ["keep.bin", "race.bin"])
        with open(os.path.join(self.dir, "race.bin"), "rb") as fh:
            self.assertIn(fh.read(), (a, b))


class ParallelSessionTests(ClassServer):
    """Several transfers at once in one server process."""

    ferryd_args = ("-w", "--workers", "1")

    @classmethod
    def make_files(cls):
        cls.sums = {}
        for i in range(4):
            n = "p%d.bin" % i
            make_file(os.path.join(cls.root, n), 3 * MiB + i, seed=100 + i)
            cls.sums[n] = sha256_file(os.path.join(cls.root, n))

    def test_parallel_retr_and_stor(self):
        results = {}
        modes = ["pasv", "epsv", "port", "eprt"]

        def work(i):
            try:
                f = ModeFTP()
                f.connect("127.0.0.1", self.server.port, timeout=TIMEOUT)
                f.login("anonymous", "x@")
                f.use(modes[i])
                n = "p%d.bin" % i
                got, _ = self.retr_sha(f, n)
                with open(self.rpath(n), "rb") as src:
                    f.storbinary("STOR back-%d.bin" % i, src, blocksize=MiB)
                f.quit()
                results[i] = got
            except Exception as e:  # reported below
                results[i] = e

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "transfers did not finish")
        for i in range(4):
            n = "p%d.bin" % i
            self.assertEqual(results.get(i), self.sums[n], "session %d" % i)
            self.assertEqual(sha256_file(self.rpath("back-%d.bin" % i)), self.sums[n])


if __name__ == "__main__":
    unittest.main()


NETNS_SCRIPT = r"""
import ftplib, socket, subprocess, sys, time
ferryd, root = sys.argv[1], sys.argv[2]
srv = subprocess.Popen([ferryd, "--root", root, "--port", "2121", "-b", "127.0.0.1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def bound(port):
    # every local port is named: the namespace's ephemeral range is ferryd's
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.settimeout(10)
    return s

try:
    for _ in range(100):
        try:
            c = bound(46000)
            c.connect(("127.0.0.1", 2121))
            break
        except OSError:
            c.close()
            time.sleep(0.05)
    f = ftplib.FTP()
    f.sock, f.af, f.host, f.port = c, socket.AF_INET, "127.0.0.1", 2121
    f.file = c.makefile("r", encoding="latin-1")
    f.welcome = f.getresp()
    f.login()
    f.voidcmd("TYPE I")
    for i in range(3):
        r = f.sendcmd("PASV")
        host, port = ftplib.parse227(r)
        d = bound(45000 + i)
        d.connect((host, port))
        f.putcmd("RETR a.bin")
        if not f.getresp().startswith("150"):
            raise SystemExit("no 150")
        got = b""
        while True:
            b = d.recv(65536)
            if not b:
                break
            got += b
        d.close()
        print("retr", port, len(got), f.voidresp()[:3], flush=True)
    f.quit()
finally:
    srv.terminate()
    srv.wait(10)
"""


def data_segs_in(sock):
    """Segments with payload our socket has received, read off ss(8)."""
    out = subprocess.run(["ss", "-tinH", "( sport = :%d )" % sock.getsockname()[1]],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    m = re.search(r"data_segs_in:(\d+)", out)
    if not m:
        raise AssertionError("no data_segs_in in ss output: %r" % out)
    return int(m.group(1))


class PassiveRaceTests(FerrydCase):
    """A passive connection that arrives in the same wakeup as its RETR,
    behind it, is taken at once: the small file is sent and its 150 and
    226 leave together in one segment, with no second wakeup between.
    The race is made certain by stopping the (single-process) server
    while the client sends RETR and then connects."""

    ferryd_args = ("--workers", "1")

    def prepare_root(self):
        with open(os.path.join(self.root, "small.bin"), "wb") as fh:
            fh.write(os.urandom(5000))

    def test_connection_behind_retr_is_taken_at_once(self):
        pid = self.server.proc.pid
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        self.assertTrue(c.cmd("TYPE I").startswith("200"))
        r = c.cmd("EPSV")
        self.assertTrue(r.startswith("229"), r)
        port = int(r.split("|")[3])
        pause_process(self, pid)
        c.send("RETR small.bin\r\n")
        d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(d.close)
        before = data_segs_in(c.sock)
        os.kill(pid, signal.SIGCONT)
        self.assertTrue(c.reply().startswith("150"))
        self.assertTrue(c.reply().startswith("226"))
        got = b""
        for _ in range(100):
            b = d.recv(65536)
            if not b:
                break
            got += b
        with open(os.path.join(self.root, "small.bin"), "rb") as fh:
            self.assertEqual(got, fh.read())
        self.assertEqual(data_segs_in(c.sock) - before, 1,
                         "150 and 226 came in separate segments")


def two_free_ports():
    """Ports p and p + 1, both free on 127.0.0.1 just now."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            if p >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", p + 1))
                except OSError:
                    continue
        return p
    raise AssertionError("no two adjacent free ports")


class FaultInjectedServer(unittest.TestCase):
    """ferryd (one process, no sandbox) under strace, which makes a chosen
    syscall fail: races and old kernels made certain."""

    def traced_ferryd(self, syscall, inject, files, *args):
        """Serves a fresh root holding files {name: bytes}; returns (root,
        port, path of strace's log of syscall). inject None: trace only."""
        strace = shutil.which("strace")
        if not strace:
            self.skipTest("needs strace(1) for fault injection")
        from harness import FERRYD, Server, free_port
        tmp = tempfile.mkdtemp(prefix="ferry-inject-")
        self.addCleanup(shutil.rmtree, tmp, True)
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        for name, data in files.items():
            with open(os.path.join(root, name), "wb") as fh:
                fh.write(data)
        give_to_server(tmp, root)
        log = os.path.join(tmp, "strace.log")
        port = free_port()
        injecting = ["-e", "inject=%s:%s" % (syscall, inject)] if inject else []
        server = Server([strace, "-f", "-qq", "-o", log, "-e", "trace=" + syscall] + injecting + [
                         FERRYD, "--root", root, "--port", str(port), "-b", "127.0.0.1",
                         "--workers", "1", "--no-sandbox"] + list(args), port)
        self.addCleanup(self.stop_traced, server)
        return root, port, log

    def login(self, port):
        f = ftplib.FTP()
        f.connect("127.0.0.1", port, timeout=TIMEOUT)
        self.addCleanup(f.close)
        f.login()
        return f

    @staticmethod
    def stop_traced(server):
        """Ends ferryd by its PID (strace's child); strace then exits."""
        children = []
        for _ in range(100):
            with open("/proc/%d/task/%d/children" % (server.proc.pid, server.proc.pid)) as fh:
                children = [int(x) for x in fh.read().split()]
            if children:
                break
            time.sleep(0.01)
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        try:
            server.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.stop()


class PassiveListenFailureTests(FaultInjectedServer):
    """SO_REUSEADDR lets two sockets bind one free port when neither listens
    yet (two workers picking the same port at the same moment); the second
    listen() then fails with EADDRINUSE. ferryd moves on to the next port of
    its range instead of failing PASV with 425. The lost race is made
    certain with strace's fault injection: the second listen() of the
    single-process server (the first PASV's; the first is the control
    socket's) fails with EADDRINUSE."""

    def test_pasv_survives_a_listen_that_loses_its_port(self):
        p = two_free_ports()
        root, port, log = self.traced_ferryd("listen", "error=EADDRINUSE:when=2",
                                             {"f.txt": b"through the other port\n"},
                                             "--pasv-ports", "%d-%d" % (p, p + 1))
        f = self.login(port)
        for i in range(3):
            r = f.sendcmd("PASV")
            self.assertTrue(r.startswith("227"), "PASV %d: %s" % (i, r))
        out = io.BytesIO()
        f.retrbinary("RETR f.txt", out.write)
        self.assertEqual(out.getvalue(), b"through the other port\n")
        with open(log) as fh:
            self.assertEqual(fh.read().count("(INJECTED)"), 1)


class AnonymousLinkFallbackTests(FaultInjectedServer):
    """An upload is an O_TMPFILE named when complete. Linux 6.10 and later
    link it by its descriptor (linkat AT_EMPTY_PATH); older kernels refuse
    that with ENOENT to anyone without CAP_DAC_READ_SEARCH, and ferryd then
    links through /proc/self/fd instead, from then on. The refusal is made
    certain with strace's fault injection on the first linkat."""

    def test_uploads_are_linked_through_proc_when_the_kernel_refuses(self):
        root, port, log = self.traced_ferryd("linkat", "error=ENOENT:when=1",
                                             {"old.bin": b"old\n"}, "-w")
        f = self.login(port)
        uploads = {"first.bin": b"first\n" * 1000, "second.bin": b"second\n" * 1000,
                   "old.bin": b"replaced\n" * 1000}
        for name, data in uploads.items():
            self.assertTrue(f.storbinary("STOR " + name, io.BytesIO(data)).startswith("226"), name)
        for name, data in uploads.items():
            with open(os.path.join(root, name), "rb") as fh:
                self.assertEqual(fh.read(), data, name)
        self.assertEqual(sorted(os.listdir(root)), sorted(uploads))
        with open(log) as fh:
            trace = fh.read()
        self.assertEqual(trace.count("(INJECTED)"), 1, trace)
        self.assertEqual(trace.count("AT_EMPTY_PATH"), 1, trace)  # tried once, then /proc
        self.assertGreaterEqual(trace.count("/proc/self/fd/"), 3, trace)


class UploadPreallocationTests(FaultInjectedServer):
    """On ext4 an upload past 1 MiB reserves its blocks ahead in growing
    extents (fallocate FALLOC_FL_KEEP_SIZE) instead of block by block, and
    gives back what lies past the end before the file is named: the stored
    file holds exactly its data's blocks. A small upload makes no such call;
    a failed reservation (a nearly full disk) only ends the reserving."""

    MiB = 1 << 20

    def upload(self, inject, sizes):
        """Stores {name: size} under strace; returns (root, trace)."""
        root, port, log = self.traced_ferryd("fallocate", inject, {}, "-w")
        if not self.on_ext4(root):
            self.skipTest("the server root is not on ext4")
        f = self.login(port)
        for i, (name, size) in enumerate(sizes.items()):
            data = random.Random(i).randbytes(size)
            self.assertTrue(f.storbinary("STOR " + name, io.BytesIO(data), 256 * 1024).startswith("226"))
            with open(os.path.join(root, name), "rb") as fh:
                self.assertEqual(fh.read(), data, name)
            # st_blocks counts reserved blocks past the end too (a MiB or
            # more), and the extent tree's index block of a file in
            # several extents (4 KiB).
            blocks = os.stat(os.path.join(root, name)).st_blocks * 512
            self.assertTrue(size <= blocks < size + 64 * 1024, (name, blocks, size))
        f.quit()
        with open(log) as fh:
            return root, [line for line in fh if "fallocate(" in line]

    @staticmethod
    def on_ext4(path):
        with open("/proc/self/mounts") as fh:
            mounts = [line.split() for line in fh]
        best = max((m for m in mounts if os.path.realpath(path).startswith(m[1].rstrip("/") + "/")),
                   key=lambda m: len(m[1]), default=None)
        return best is not None and best[2] == "ext4"

    def test_large_upload_reserves_ahead_and_gives_the_rest_back(self):
        _, calls = self.upload("error=ENOSPC:when=1000", {"small.bin": 200 * 1024, "big.bin": 9 * self.MiB})
        self.assertGreaterEqual(len(calls), 3, calls)  # 1, 2, 4 MiB...: growing extents
        self.assertTrue(all("FALLOC_FL_KEEP_SIZE" in c for c in calls), calls)
        # Each call reserves past what is written; none came from the
        # 200 KiB upload (its offsets would lie below 200 KiB).
        offsets = [int(re.search(r"FALLOC_FL_KEEP_SIZE, (\d+),", c).group(1)) for c in calls]
        self.assertGreaterEqual(min(offsets), 512 * 1024, calls)

    def test_failed_reservation_ends_reserving_not_the_upload(self):
        _, calls = self.upload("error=ENOSPC:when=2", {"big.bin": 9 * self.MiB})
        self.assertEqual(len(calls), 2, calls)
        self.assertIn("ENOSPC", calls[1])

class ListingWriteTests(FaultInjectedServer):
    """A listing is formatted until 64 KiB wait to be sent and written in
    one call (at most 1,024 entries read per wakeup, 8,192 for NLST, which
    reads names only): 3,000 names of NLST (36 KB) take one write, not one
    per 128 names (24) or one per 1,024 (3)."""

    def test_name_list_goes_out_in_few_writes(self):
        names = ["n%05d.dat" % i for i in range(3000)]
        _, port, log = self.traced_ferryd("write", None, {n: b"" for n in names})
        f = self.login(port)
        self.assertEqual(sorted(f.nlst()), names)
        f.quit()
        with open(log) as fh:
            writes = [int(m.group(1)) for m in re.finditer(r'write\(\d+, "n\d{5}\.dat.*\) = (\d+)', fh.read())]
        self.assertEqual(sum(writes), 3000 * len("n00000.dat\r\n"), writes)
        self.assertEqual(len(writes), 1, writes)


class PassivePortsInTimeWaitTests(unittest.TestCase):
    """Passive mode goes on when every port of the range sits in TIME_WAIT.
    The server closes a download's data connection first, so each passive
    port used is held in TIME_WAIT for a minute; the kernel's own search for
    a free ephemeral port (bind to port 0) skips those, runs dry when they
    are all taken, and slows down as they pile up on a busy server. ferryd
    picks the port itself with SO_REUSEADDR. Proven in a private network
    namespace whose ephemeral range is one port: three downloads in a row
    all get it."""

    def test_one_port_range_serves_three_downloads(self):
        if os.geteuid() != 0 or not shutil.which("ip"):
            self.skipTest("needs root and ip(8) for a network namespace")
        name = "ferry-tw-%d" % os.getpid()
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=TIMEOUT)
        if r.returncode != 0:
            self.skipTest("no network namespaces here: " + r.stderr.strip())
        self.addCleanup(subprocess.run, ["ip", "netns", "del", name], timeout=TIMEOUT)
        ns = ["ip", "netns", "exec", name]
        subprocess.run(ns + ["ip", "link", "set", "lo", "up"], check=True, timeout=TIMEOUT)
        with open("/dev/null", "w") as null:
            subprocess.run(ns + ["sysctl", "-w", "net.ipv4.ip_local_port_range=40000 40000"],
                           check=True, stdout=null, timeout=TIMEOUT)
        tmp = tempfile.mkdtemp(prefix="ferry-tw-")
        self.addCleanup(shutil.rmtree, tmp, True)
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        with open(os.path.join(root, "a.bin"), "wb") as fh:
            fh.write(os.urandom(5000))
        give_to_server(tmp, root)
        from harness import FERRYD, PYTHON
        p = subprocess.run(ns + [PYTHON, "-c", NETNS_SCRIPT, FERRYD, root],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertEqual(p.stdout.splitlines(), ["retr 40000 5000 226"] * 3, p.stdout)
