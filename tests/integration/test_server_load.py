"""ferryd under load: 200 clients at once, each downloading its own file
and uploading a distinct one, all byte-exact; and the session limits
(--max-per-ip, --max-sessions) refusing the one client too many."""
import ftplib
import hashlib
import io
import os
import random
import shutil
import socket
import tempfile
import threading
import time
import unittest

from harness import TIMEOUT, RawControl, give_to_server, start_ferryd

CLIENTS = 200
KiB = 1024


def payload(i, kind):
    """A distinct 64-256 KiB body per client and direction."""
    rnd = random.Random(i * 2 + (kind == "up"))
    return rnd.randbytes(rnd.randrange(64 * KiB, 256 * KiB + 1))


class ConcurrentClientsTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-load-")
        cls.root = os.path.join(cls.tmp, "root")
        os.mkdir(cls.root)
        os.mkdir(os.path.join(cls.root, "up"))
        cls.down = {}
        for i in range(CLIENTS):
            data = payload(i, "down")
            with open(os.path.join(cls.root, "d%03d.bin" % i), "wb") as f:
                f.write(data)
            cls.down[i] = hashlib.sha256(data).hexdigest()
        give_to_server(cls.tmp, cls.root)
        cls.server = start_ferryd(cls.root, "-w", "--max-per-ip", "1000")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_200_clients_download_and_upload(self):
        results = {}
        start = threading.Barrier(CLIENTS, timeout=60)
        modes = ("pasv", "epsv", "port", "eprt")

        def client(i):
            f = ftplib.FTP()
            try:
                f.connect("127.0.0.1", self.server.port, timeout=60)
                f.login("anonymous", "load@")
                mode = modes[i % 4]
                if mode in ("port", "eprt"):
                    # active: a loopback-only listener announced by PORT or EPRT
                    f.set_pasv(False)
                    f.makeport = lambda f=f, eprt=(mode == "eprt"): _active_listener(f, eprt)
                elif mode == "epsv":
                    f.makepasv = lambda f=f: ftplib.parse229(f.sendcmd("EPSV"), f.sock.getpeername())
                try:
                    start.wait()
                except threading.BrokenBarrierError:
                    pass
                h = hashlib.sha256()
                f.retrbinary("RETR d%03d.bin" % i, h.update, blocksize=64 * KiB)
                up = payload(i, "up")
                f.storbinary("STOR up/u%03d.bin" % i, io.BytesIO(up), blocksize=64 * KiB)
                f.quit()
                results[i] = (h.hexdigest(), hashlib.sha256(up).hexdigest())
            except Exception as e:  # collected and reported below
                results[i] = e
            finally:
                f.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 240
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in threads)
        self.assertEqual(alive, 0, "%d clients did not finish" % alive)
        errors = {i: r for i, r in results.items() if isinstance(r, Exception)}
        self.assertEqual(errors, {}, "%d clients failed, e.g. %r" % (len(errors), list(errors.items())[:3]))
        self.assertEqual(len(results), CLIENTS)
        for i in range(CLIENTS):
            down_sha, up_sha = results[i]
            self.assertEqual(down_sha, self.down[i], "download of client %d" % i)
            with open(os.path.join(self.root, "up", "u%03d.bin" % i), "rb") as fh:
                self.assertEqual(hashlib.sha256(fh.read()).hexdigest(), up_sha, "upload of client %d" % i)
        self.assertEqual(len(os.listdir(os.path.join(self.root, "up"))), CLIENTS)
        # and the server still answers
        c = RawControl("127.0.0.1", self.server.port)
        self.assertEqual(c.greeting, "220 ferry FTP server ready.")
        c.close()


def _active_listener(f, eprt):
    host = f.sock.getsockname()[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(1)
    if eprt:
        f.sendeprt(host, sock.getsockname()[1])
    else:
        f.sendport(host, sock.getsockname()[1])
    sock.settimeout(60)
    return sock


class SessionLimitTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-limit-")
        self.root = os.path.join(self.tmp, "root")
        os.mkdir(self.root)
        give_to_server(self.tmp, self.root)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.conns = []
        self.addCleanup(self._close_all)

    def _close_all(self):
        for c in self.conns:
            c.close()

    def connect(self, port):
        c = RawControl("127.0.0.1", port)
        self.conns.append(c)
        return c

    def check_limit(self, args, n):
        s = start_ferryd(self.root, "--workers", "1", *args)
        self.addCleanup(s.stop)
        # start_ferryd's readiness probe used a connection: let it go away
        time.sleep(0.2)
        ok = []
        for _ in range(n):
            c = self.connect(s.port)
            self.assertEqual(c.greeting, "220 ferry FTP server ready.")
            self.assertEqual(c.login()[:3], "230")
            ok.append(c)
        extra = self.connect(s.port)
        self.assertEqual(extra.greeting[:3], "421", extra.greeting)
        self.assertTrue(extra.closed())
        # the admitted sessions are unharmed
        for c in ok:
            self.assertEqual(c.cmd("NOOP")[:3], "200")
        # one leaves, a newcomer is admitted
        ok[0].close()
        deadline = time.monotonic() + 10
        greeting = ""
        while time.monotonic() < deadline:
            c = self.connect(s.port)
            greeting = c.greeting
            if greeting.startswith("220"):
                break
            c.close()
            time.sleep(0.1)
        self.assertEqual(greeting, "220 ferry FTP server ready.")

    def test_max_per_ip(self):
        self.check_limit(("--max-per-ip", "3"), 3)

    def test_max_sessions(self):
        self.check_limit(("--max-sessions", "4"), 4)


if __name__ == "__main__":
    unittest.main()
