"""ferry over FTPS: --tls (explicit AUTH TLS), ftps:// URLs (implicit TLS),
--tls-optional, certificate checks (--cacert, --insecure), PROT P data in
passive and active mode, against ferryd and against an independent server
(pyftpdlib's TLS_FTPHandler on pyOpenSSL). Hostile peers: garbage or
silence instead of a TLS handshake, on the control and on the data
connection, end in one clear error line, never a crash or a hang."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import FERRYD, PYTHON, Server, free_port, give_to_server, make_file, sha256_file, start_ferryd
from test_client_support import err, out, run_ferry, start_pyftpd

MIB = 1024 * 1024
CERTS = {}


def certs(kind="good"):
    """good: ferryd's self-signed certificate for localhost/127.0.0.1/::1.
    other: a certificate for another name (openssl req), for the name check."""
    if kind not in CERTS:
        d = tempfile.mkdtemp(prefix="ferry-ctls-")
        if kind == "good":
            subprocess.run([FERRYD, "--gen-cert", d], check=True, timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                            "/CN=other.example", "-addext", "subjectAltName=DNS:other.example",
                            "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem")],
                           check=True, timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        CERTS[kind] = (os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
    return CERTS[kind]


def tearDownModule():
    for cert, _ in CERTS.values():
        shutil.rmtree(os.path.dirname(cert), ignore_errors=True)
    CERTS.clear()


PYFTPD_TLS_SCRIPT = r"""
import logging, sys, warnings
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
warnings.simplefilter("ignore")
root, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
auth = DummyAuthorizer()
auth.add_user("alice", "secret", root, perm="elradfmwMT")
class Handler(TLS_FTPHandler):
    authorizer = auth
    auth_failed_timeout = 0
    certfile = cert
    keyfile = key
    tls_control_required = True
    tls_data_required = True
logging.basicConfig(level=logging.ERROR)
FTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

# A scripted server for what no real server does on request. Modes:
#   auth_garbage  234 to AUTH TLS, then bytes that are not TLS
#   auth_silent   234 to AUTH TLS, then nothing
#   implicit_garbage / implicit_silent   the same from the first byte
#   data_garbage  real TLS on control (Python's ssl), garbage on the data connection
#   data_silent   real TLS on control, a data connection that never speaks
#   data_cut      600 bytes, then a bare TCP close (no close_notify: what a
#                 forged FIN looks like) and 226; SIZE says 600
#   data_cut_nosize  the same, and SIZE refused: only the missing
#                 close_notify tells that the bytes may be cut short
#   data_clean    600 bytes ended with close_notify; SIZE refused
FAKE_TLS_SCRIPT = r"""
import socket, ssl, sys, threading, time
mode, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
GARBAGE = b"220 this is not a TLS record\r\n" + bytes(range(256)) * 64
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", port)); lst.listen(8)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)

def serve(c):
    if mode == "implicit_garbage":
        c.sendall(GARBAGE); time.sleep(20); return
    if mode == "implicit_silent":
        time.sleep(20); return
    c.sendall(b"220 fake ready\r\n")
    f = c.makefile("rb")
    data_lst = None
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode().strip()
        verb = cmd.split(" ")[0].upper()
        def send(s):
            c.sendall(s.encode() + b"\r\n")
        if verb == "AUTH":
            send("234 go ahead")
            if mode == "auth_garbage":
                c.sendall(GARBAGE); time.sleep(20); return
            if mode == "auth_silent":
                time.sleep(20); return
            c = ctx.wrap_socket(c, server_side=True)
            f = c.makefile("rb")
        elif verb == "USER":
            send("331 password please")
        elif verb == "PASS":
            send("230 in")
        elif verb in ("PBSZ", "PROT", "TYPE", "NOOP"):
            send("200 ok")
        elif verb == "FEAT":
            send("211-Features:"); send(" AUTH TLS"); send(" PBSZ"); send(" PROT"); send(" SIZE")
            send("211 End")
        elif verb == "SIZE":
            if mode in ("data_cut_nosize", "data_clean"):
                send("550 no SIZE here")
            else:
                send("213 600" if mode == "data_cut" else "213 1000")
        elif verb == "EPSV":
            data_lst = socket.socket(); data_lst.bind(("127.0.0.1", 0)); data_lst.listen(1)
            send("229 Entering Extended Passive Mode (|||%d|)" % data_lst.getsockname()[1])
        elif verb in ("RETR", "LIST", "NLST", "STOR"):
            send("150 here it comes")
            d, _ = data_lst.accept()
            if mode in ("data_cut", "data_cut_nosize", "data_clean"):
                d = ctx.wrap_socket(d, server_side=True)
                d.sendall(b"x" * 600)
                if mode == "data_clean":
                    d.unwrap()
                d.close()   # Python's close() never sends close_notify
                send("226 all sent")
                continue
            if mode == "data_garbage":
                d.sendall(GARBAGE)
            d.settimeout(10)
            try:
                while d.recv(4096):   # until the client gives up
                    pass
            except OSError:
                pass
            d.close()
            send("426 that went wrong")
        elif verb == "ABOR":
            send("226 aborted")
        elif verb == "QUIT":
            send("221 bye"); return
        else:
            send("502 not here")

def session(c):
    try:
        serve(c)
    except (OSError, ssl.SSLError):
        pass
    finally:
        c.close()

while True:
    c, _ = lst.accept()
    threading.Thread(target=session, args=(c,), daemon=True).start()
"""


def single_line_error(case, p):
    lines = [l for l in err(p).splitlines() if l.strip()]
    case.assertEqual(len(lines), 1, "want one error line, got: %r" % err(p))
    return lines[0]


class TlsServerCase(unittest.TestCase):
    """A TLS server for the class, a fresh local directory per test."""

    active = False
    user_args = ()

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="ferry-ctls-")
        cls.root = os.path.join(cls.base, "root")
        os.mkdir(cls.root)
        make_file(os.path.join(cls.root, "bin.dat"), 3 * MIB + 17, seed=21)
        make_file(os.path.join(cls.root, "text.txt"), 150_000, seed=22, text=True)
        give_to_server(cls.base, cls.root)
        cls.server = None
        cls.start_server()

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            cls.server.stop()
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.local = tempfile.mkdtemp(prefix="local-", dir=self.base)
        self.home = tempfile.mkdtemp(prefix="home-", dir=self.base)
        self.addCleanup(shutil.rmtree, self.local, True)
        self.addCleanup(shutil.rmtree, self.home, True)

    def ferry(self, *args, input=None, timeout=60):
        mode = ["-A"] if self.active else []
        return run_ferry(mode + list(args), input=input, cwd=self.local, env={"HOME": self.home},
                         timeout=timeout)

    def tls(self, *cmd, opts=(), **kw):
        return self.ferry("--tls", "--cacert", certs()[0], *self.user_args, *opts, "127.0.0.1",
                          str(self.server.port), *cmd, **kw)

    def assertOk(self, p):
        self.assertEqual(p.returncode, 0, "ferry failed:\nstdout: %s\nstderr: %s" % (out(p), err(p)))

    def rpath(self, name):
        return os.path.join(self.root, name)

    def lpath(self, name):
        return os.path.join(self.local, name)


class TransferSuite:
    """Byte-exact transfers both ways and listings, over PROT P."""

    def test_get_and_put_byte_exact(self):
        p = self.tls("get", "bin.dat")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.lpath("bin.dat")), sha256_file(self.rpath("bin.dat")))
        self.assertIn("bin.dat: %d bytes received" % (3 * MIB + 17), out(p))
        name = "up-%s.bin" % ("a" if self.active else "p")
        make_file(self.lpath(name), 2 * MIB + 5, seed=23)
        p = self.tls("put", name)
        self.assertOk(p)
        self.assertEqual(sha256_file(self.rpath(name)), sha256_file(self.lpath(name)))

    def test_listings(self):
        p = self.tls("ls")
        self.assertOk(p)
        self.assertRegex(out(p), r"(?m)^[-rwx]{10} .* bin\.dat$")
        p = self.tls("nlist")
        self.assertOk(p)
        self.assertIn("text.txt", out(p).split())

    def test_session_with_several_data_connections(self):
        # Each data connection resumes the control session: the second and
        # later ones too.
        name = "s-%s.txt" % ("a" if self.active else "p")
        shutil.copy(self.rpath("text.txt"), self.lpath(name))
        script = ("get bin.dat one.dat\nls\nget bin.dat two.dat\nascii\nput %s\nget %s back.txt\n"
                  "binary\nget bin.dat -\nget bin.dat three.dat\nstatus\n" % (name, name))
        p = self.tls(input=script)
        self.assertOk(p)
        for n in ("one.dat", "two.dat", "three.dat"):
            self.assertEqual(sha256_file(self.lpath(n)), sha256_file(self.rpath("bin.dat")), n)
        self.assertEqual(sha256_file(self.lpath("back.txt")), sha256_file(self.lpath(name)))
        # the ASCII put's summary counts the protected bytes: each LF sent as CRLF
        with open(self.lpath(name), "rb") as f:
            text = f.read()
        self.assertNotIn(b"\r", text)
        self.assertIn("%s: %d bytes sent" % (name, len(text) + text.count(b"\n")), out(p))
        self.assertRegex(out(p), r"Security: TLSv1\.[23] \S+; data connections encrypted\.")

    def test_verbose_shows_protected_data(self):
        p = self.tls("get", "bin.dat", "-", opts=["-v"])
        self.assertOk(p)
        dialogue = err(p)
        for line in ("--> AUTH TLS", "--> PBSZ 0", "--> PROT P", "*** control connection secured"):
            self.assertIn(line, dialogue)
        self.assertIn("*** data connection secured", dialogue)
        self.assertEqual(len(p.stdout), 3 * MIB + 17)


class FerrydTls(TlsServerCase):
    @classmethod
    def start_server(cls):
        cert, key = certs()
        cls.implicit_port = free_port()
        cls.server = start_ferryd(cls.root, "-w", "--tls-cert", cert, "--tls-key", key,
                                  "--implicit-tls-port", str(cls.implicit_port), "--tls-required")


class TestFerrydTlsPassive(TransferSuite, FerrydTls):
    def test_resumption_is_used(self):
        p = self.tls("ls", opts=["-v"])
        self.assertOk(p)
        self.assertIn("*** data connection secured (session resumed)", err(p))

    def test_implicit_tls_url_both_ways(self):
        url = "ftps://127.0.0.1:%d/" % self.implicit_port
        p = self.ferry("--cacert", certs()[0], url + "bin.dat", "via-url.dat")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.lpath("via-url.dat")), sha256_file(self.rpath("bin.dat")))
        make_file(self.lpath("url-up.bin"), MIB + 3, seed=24)
        p = self.ferry("--cacert", certs()[0], "-T", "url-up.bin", url + "url-up.bin")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.rpath("url-up.bin")), sha256_file(self.lpath("url-up.bin")))
        p = self.ferry("--cacert", certs()[0], url)
        self.assertOk(p)
        self.assertIn("bin.dat", out(p))

    def test_untrusted_certificate_is_refused(self):
        p = self.ferry("--tls", "127.0.0.1", str(self.server.port), "get", "bin.dat")
        self.assertEqual(p.returncode, 1, err(p))
        line = single_line_error(self, p)
        self.assertIn("certificate of 127.0.0.1 not trusted", line)
        self.assertIn("--insecure", line)
        self.assertFalse(os.path.exists(self.lpath("bin.dat")))
        # The implicit port checks the same way.
        p = self.ferry("ftps://localhost:%d/bin.dat" % self.implicit_port)
        self.assertEqual(p.returncode, 1, err(p))
        self.assertIn("certificate of localhost not trusted", single_line_error(self, p))

    def test_insecure_skips_the_check(self):
        p = self.ferry("--tls", "--insecure", "localhost", str(self.server.port), "get", "bin.dat")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.lpath("bin.dat")), sha256_file(self.rpath("bin.dat")))

    def test_hostname_is_checked(self):
        # "localhost" is in the certificate; a CA file that does not hold
        # the server's certificate fails the chain check.
        p = self.ferry("--tls", "--cacert", certs()[0], "localhost", str(self.server.port), "nlist")
        self.assertOk(p)
        p = self.ferry("--tls", "--cacert", certs("other")[0], "127.0.0.1", str(self.server.port), "nlist")
        self.assertEqual(p.returncode, 1, err(p))
        self.assertIn("not trusted", single_line_error(self, p))

    def test_bad_cacert_file(self):
        p = self.ferry("--tls", "--cacert", self.lpath("missing.pem"), "127.0.0.1", str(self.server.port), "ls")
        self.assertEqual(p.returncode, 1, err(p))
        self.assertIn("missing.pem", single_line_error(self, p))

    def test_tls_optional_uses_tls_when_offered(self):
        p = self.ferry("--tls-optional", "--cacert", certs()[0], "-v", "127.0.0.1", str(self.server.port), "nlist")
        self.assertOk(p)
        self.assertIn("*** data connection secured", err(p))
        self.assertNotIn("warning", err(p))

    def test_clear_data(self):
        # --clear-data: PROT C, and the data connection carries no TLS
        # (ferryd's --tls-required leaves that choice to anonymous users).
        p = self.tls("get", "bin.dat", opts=["-v", "--clear-data"])
        self.assertOk(p)
        self.assertIn("--> PROT C", err(p))
        self.assertNotIn("*** data connection secured", err(p))
        self.assertEqual(sha256_file(self.lpath("bin.dat")), sha256_file(self.rpath("bin.dat")))


class TestFerrydTlsActive(TransferSuite, FerrydTls):
    active = True


class PyftpdlibTls(TlsServerCase):
    user_args = ("-u", "alice", "--password", "secret")

    @classmethod
    def start_server(cls):
        cert, key = certs()
        port = free_port()
        cls.server = Server([PYTHON, "-c", PYFTPD_TLS_SCRIPT, cls.root, str(port), cert, key], port)


class TestPyftpdlibTlsPassive(TransferSuite, PyftpdlibTls):
    pass


class TestPyftpdlibTlsActive(TransferSuite, PyftpdlibTls):
    active = True


class TestServerWithoutTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="ferry-ctls-")
        cls.root = os.path.join(cls.base, "root")
        os.mkdir(cls.root)
        make_file(os.path.join(cls.root, "plain.dat"), 300_000, seed=25)
        give_to_server(cls.base, cls.root)
        cls.server = start_ferryd(cls.root)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.base, ignore_errors=True)

    def run_here(self, *args):
        return run_ferry(list(args), cwd=self.base, env={"HOME": self.base})

    def test_tls_refused_fails_clearly(self):
        p = self.run_here("--tls", "127.0.0.1", str(self.server.port), "get", "plain.dat", "not-got.dat")
        self.assertEqual(p.returncode, 1, err(p))
        line = single_line_error(self, p)
        self.assertIn("refused TLS", line)
        self.assertIn("502", line)
        self.assertFalse(os.path.exists(os.path.join(self.base, "not-got.dat")))

    def test_tls_optional_falls_back_with_warning(self):
        p = self.run_here("--tls-optional", "127.0.0.1", str(self.server.port), "get", "plain.dat", "got.dat")
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(single_line_error(self, p), r"^warning: server refused TLS .*continuing unencrypted")
        self.assertEqual(sha256_file(os.path.join(self.base, "got.dat")),
                         sha256_file(os.path.join(self.root, "plain.dat")))

    def test_plain_pyftpdlib(self):
        # pyftpdlib's plain handler answers AUTH TLS with a 500.
        server = start_pyftpd(self.root)
        self.addCleanup(server.stop)
        p = self.run_here("--tls", "127.0.0.1", str(server.port), "nlist")
        self.assertEqual(p.returncode, 1, err(p))
        self.assertIn("refused TLS (500", single_line_error(self, p))
        p = self.run_here("--tls-optional", "127.0.0.1", str(server.port), "nlist")
        self.assertEqual(p.returncode, 0, err(p))
        self.assertIn("warning: server refused TLS (500", single_line_error(self, p))
        self.assertIn("plain.dat", out(p).split())

    def test_implicit_tls_against_a_plain_server(self):
        t0 = time.monotonic()
        p = self.run_here("--timeout", "5", "ftps://127.0.0.1:%d/plain.dat" % self.server.port)
        self.assertEqual(p.returncode, 1, err(p))
        self.assertIn("did not answer in TLS", single_line_error(self, p))
        self.assertLess(time.monotonic() - t0, 5)


class TestHostileTls(unittest.TestCase):
    """Garbage or silence where a TLS handshake belongs."""

    def fake(self, mode):
        cert, key = certs()
        port = free_port()
        s = Server([PYTHON, "-c", FAKE_TLS_SCRIPT, mode, str(port), cert, key], port)
        self.addCleanup(s.stop)
        return s

    def run_against(self, server, *args, timeout_s=2):
        self.tmp = tempfile.mkdtemp(prefix="ferry-ctls-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        t0 = time.monotonic()
        p = run_ferry(["--timeout", str(timeout_s), "--cacert", certs()[0], "-u", "u", "--password", "p"]
                      + list(args), cwd=self.tmp, env={"HOME": self.tmp}, timeout=30)
        return p, time.monotonic() - t0

    def assertClearFailure(self, p, pattern):
        self.assertEqual(p.returncode, 1, "stdout: %s\nstderr: %s" % (out(p), err(p)))
        self.assertRegex(single_line_error(self, p), pattern)
        self.assertNotIn("Sanitizer", err(p))
        self.assertEqual(os.listdir(self.tmp), [], "nothing may be left locally")

    def test_garbage_after_auth_tls(self):
        s = self.fake("auth_garbage")
        p, took = self.run_against(s, "--tls", "127.0.0.1", str(s.port), "get", "f")
        self.assertClearFailure(p, r"TLS handshake failed: the server did not answer in TLS")
        self.assertLess(took, 10)

    def test_silence_after_auth_tls_times_out(self):
        s = self.fake("auth_silent")
        p, took = self.run_against(s, "--tls", "127.0.0.1", str(s.port), "get", "f")
        self.assertClearFailure(p, r"TLS handshake: no answer from the server within 2 s")
        self.assertLess(took, 10)

    def test_implicit_garbage_and_silence(self):
        s = self.fake("implicit_garbage")
        p, _ = self.run_against(s, "ftps://127.0.0.1:%d/f" % s.port)
        self.assertClearFailure(p, r"did not answer in TLS")
        s = self.fake("implicit_silent")
        p, took = self.run_against(s, "ftps://127.0.0.1:%d/f" % s.port)
        self.assertClearFailure(p, r"no answer from the server within 2 s")
        self.assertLess(took, 10)

    def test_garbage_on_the_data_connection(self):
        s = self.fake("data_garbage")
        p, took = self.run_against(s, "--tls", "127.0.0.1", str(s.port), "get", "f")
        self.assertClearFailure(p, r"^get: data connection: TLS handshake failed: the server did not answer in TLS")
        self.assertLess(took, 15)

    def test_download_ended_without_close_notify_is_refused(self):
        """A bare TCP close where close_notify belongs is what an attacker
        on the path forges to cut a protected download short. Without a
        SIZE to check the length against, the file is not kept."""
        s = self.fake("data_cut_nosize")
        p, _ = self.run_against(s, "--tls", "127.0.0.1", str(s.port), "get", "f")
        self.assertClearFailure(p, r"^get: the server ended the protected data connection without TLS "
                                   r"close_notify: the file may be cut short$")

    def assert_whole_download(self, server):
        """ferry --tls gets the fake server's f: all 600 bytes, exit 0."""
        p, _ = self.run_against(server, "--tls", "127.0.0.1", str(server.port), "get", "f")
        self.assertEqual(p.returncode, 0, err(p))
        with open(os.path.join(self.tmp, "f"), "rb") as fh:
            self.assertEqual(fh.read(), b"x" * 600)

    def test_listing_ended_without_close_notify_fails(self):
        s = self.fake("data_cut")
        p, _ = self.run_against(s, "--tls", "127.0.0.1", str(s.port), "ls")
        self.assertClearFailure(p, r"without TLS close_notify: the listing may be cut short$")

    def test_size_confirms_a_download_ended_without_close_notify(self):
        # SIZE said 600 and 600 arrived: complete, however rudely closed
        self.assert_whole_download(self.fake("data_cut"))

    def test_close_notify_ends_data_without_size(self):
        s = self.fake("data_clean")
        self.assert_whole_download(s)
        p, _ = self.run_against(s, "--tls", "127.0.0.1", str(s.port), "ls")
        self.assertEqual(p.returncode, 0, err(p))
        self.assertEqual(out(p), "x" * 600)

    def test_silent_data_connection_times_out(self):
        s = self.fake("data_silent")
        p, took = self.run_against(s, "--tls", "127.0.0.1", str(s.port), "ls")
        self.assertClearFailure(p, r"data connection: TLS handshake: no answer from the server within 2 s")
        self.assertLess(took, 15)


if __name__ == "__main__":
    unittest.main()
