"""FTPS (RFC 4217) through ferryd: explicit AUTH TLS, implicit TLS, PROT P
data connections that must resume the control session, --tls-required,
and hostile TLS input. Independent clients: curl, lftp, Python's ftplib."""
import io
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import ftplib

import harness
from harness import FERRYD, FerrydCase, free_port, make_file, poll_until, sha256_file
from test_server_commands import recv_all, small_pasv_range

CERTS = None


def certs():
    """One self-signed certificate for the whole module, made by ferryd."""
    global CERTS
    if CERTS is None:
        d = tempfile.mkdtemp(prefix="ferry-tls-")
        subprocess.run([FERRYD, "--gen-cert", d], check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        CERTS = (os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
    return CERTS


def client_context():
    ctx = ssl.create_default_context(cafile=certs()[0])
    ctx.check_hostname = False
    return ctx


def io_calls(pid, field):
    """A process's read (syscr) or write (syscw) system calls so far."""
    with open("/proc/%d/io" % pid) as fh:
        return int(re.search(field + r": (\d+)", fh.read()).group(1))


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """ftplib's FTP_TLS does not resume the control session on data
    connections; FileZilla, curl and lftp do. This one does too."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


class TlsCase(FerrydCase):
    extra_args = ()

    def setUp(self):
        cert, key = certs()
        self.implicit_port = free_port()
        self.ferryd_args = ("-w", "--tls-cert", cert, "--tls-key", key,
                            "--implicit-tls-port", str(self.implicit_port)) + tuple(self.extra_args)
        super().setUp()

    def prepare_root(self):
        make_file(os.path.join(self.root, "bin.dat"), 3 * 1024 * 1024 + 17, seed=5)
        make_file(os.path.join(self.root, "text.txt"), 200_000, seed=6, text=True)

    def tls_ftp(self, cls=ReusingFTP_TLS, prot=True, user="anonymous", passwd="x"):
        f = cls(context=client_context())
        f.connect("127.0.0.1", self.server.port, timeout=harness.TIMEOUT)
        self.addCleanup(self._close_ftp, f)
        f.auth()
        f.login(user, passwd)
        if prot:
            f.prot_p()
        return f


class TestExplicitTls(TlsCase):
    def test_feat_lists_tls(self):
        feat = self.ftp(login=False).sendcmd("FEAT")
        for word in ("AUTH TLS", "PBSZ", "PROT"):
            self.assertIn(word, feat)

    def test_ftplib_roundtrip_prot_p(self):
        f = self.tls_ftp()
        got = io.BytesIO()
        f.retrbinary("RETR bin.dat", got.write)
        with open(os.path.join(self.root, "bin.dat"), "rb") as src:
            self.assertEqual(got.getvalue(), src.read())
        data = os.urandom(777_777)
        f.storbinary("STOR up.dat", io.BytesIO(data))
        with open(os.path.join(self.root, "up.dat"), "rb") as dst:
            self.assertEqual(dst.read(), data)
        names = f.nlst()
        self.assertIn("up.dat", names)
        lines = []
        f.retrlines("RETR text.txt", lines.append)
        with open(os.path.join(self.root, "text.txt")) as src:
            self.assertEqual(lines, src.read().splitlines())

    def negotiated(self, *s_client_args):
        """The suite openssl s_client agrees on after AUTH TLS."""
        p = subprocess.run(["openssl", "s_client", "-starttls", "ftp", "-brief",
                            "-connect", "127.0.0.1:%d" % self.server.port] + list(s_client_args),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        m = re.search(r"Ciphersuite: (\S+)", p.stdout + p.stderr)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        return m.group(1)

    def test_aes128_gcm_chosen_unless_the_client_leads_with_chacha(self):
        # Python's OpenSSL offers AES-256-GCM first; ferryd's order wins.
        f = self.tls_ftp(prot=False)
        self.assertEqual(f.sock.cipher()[:2], ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))
        # A client without AES instructions puts ChaCha20 first and gets it.
        self.assertEqual(self.negotiated("-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"),
                         "TLS_CHACHA20_POLY1305_SHA256")
        # Every suite stays available.
        self.assertEqual(self.negotiated("-ciphersuites", "TLS_AES_256_GCM_SHA384"), "TLS_AES_256_GCM_SHA384")
        self.assertEqual(self.negotiated("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA"), "ECDHE-ECDSA-AES256-SHA")

    def test_data_connection_without_reuse_refused(self):
        f = self.tls_ftp(cls=ftplib.FTP_TLS)
        with self.assertRaises(ftplib.error_perm) as cm:
            f.retrbinary("RETR bin.dat", lambda b: None)
        self.assertTrue(str(cm.exception).startswith("522"), cm.exception)
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")  # the session goes on

    def test_another_clients_tls_session_cannot_take_the_data_connection(self):
        """Port theft under PROT P: a second client connects to the
        victim's passive port first and resumes its *own* TLS session
        (valid on every worker: one ticket key). Only the victim's control
        session may resume there; the thief gets no byte, over TLS 1.3
        tickets and TLS 1.2 session ids alike."""
        secret = os.urandom(5000)
        with open(os.path.join(self.root, "secret.bin"), "wb") as f:
            f.write(secret)
        harness.give_to_server(self.tmp, self.root)
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = client_context()
            ctx.maximum_version = version
            thief = ftplib.FTP_TLS(context=ctx)
            thief.connect("127.0.0.1", self.server.port, timeout=harness.TIMEOUT)
            self.addCleanup(self._close_ftp, thief)
            thief.auth()
            thief.login("anonymous", "x")
            thief.voidcmd("NOOP")  # TLS 1.3 tickets arrive after the handshake
            stolen_session = thief.sock.session
            self.assertTrue(stolen_session.has_ticket or stolen_session.id)
            victim = ftplib.FTP_TLS(context=ctx)
            victim.connect("127.0.0.1", self.server.port, timeout=harness.TIMEOUT)
            self.addCleanup(self._close_ftp, victim)
            victim.auth()
            victim.login("anonymous", "x")
            victim.prot_p()
            victim.voidcmd("TYPE I")
            port = int(victim.sendcmd("EPSV").split("|")[3])
            raw = socket.create_connection(("127.0.0.1", port), timeout=harness.TIMEOUT)
            self.addCleanup(raw.close)
            victim.putcmd("RETR secret.bin")
            got = b""
            try:
                d = ctx.wrap_socket(raw, session=stolen_session)
                self.assertFalse(d.session_reused, version)
                while len(got) < len(secret):
                    b = d.recv(65536)
                    if not b:
                        break
                    got += b
            except (ssl.SSLError, OSError):
                pass
            self.assertEqual(got, b"", version)
            first = victim.getline()
            final = victim.getline() if first.startswith("150") else first
            self.assertTrue(final.startswith("522"), (version, first, final))
            self.assertEqual(victim.voidcmd("NOOP")[:3], "200")

    def test_clear_data_after_prot_p_gets_no_file(self):
        # PROT P announced, then a plain TCP data connection: the server
        # waits for a TLS handshake that never comes; no bytes leak.
        f = self.tls_ftp()
        f.sock.settimeout(harness.TIMEOUT)
        port = int(f.sendcmd("EPSV").split("|")[3])
        f.putcmd("RETR bin.dat")
        self.assertTrue(f.getline().startswith("150"))
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")  # not a ClientHello
        s.settimeout(5)
        leaked = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                leaked += b
        except OSError:
            pass
        s.close()
        with open(os.path.join(self.root, "bin.dat"), "rb") as src:
            head = src.read(64)
        self.assertNotIn(head[:32], leaked)
        final = f.getline()
        self.assertTrue(final[:3] in ("522", "425", "426"), final)
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")

    def test_ccc_refused_and_prot_levels(self):
        f = self.tls_ftp(prot=False)
        with self.assertRaises(ftplib.error_perm) as cm:
            f.sendcmd("CCC")
        self.assertTrue(str(cm.exception).startswith("534"))
        f.sendcmd("PBSZ 0")
        with self.assertRaises(ftplib.error_perm) as cm:
            f.sendcmd("PROT S")
        self.assertTrue(str(cm.exception).startswith("536"), cm.exception)
        self.assertTrue(f.sendcmd("PROT C").startswith("200"))

    def test_long_command_lines_over_tls_are_answered_at_once(self):
        """A line that arrives in one TLS record but takes more than two
        control reads: its end waits decrypted inside OpenSSL, where epoll
        does not see it. Each length gets its reply without more input."""
        f = self.tls_ftp(prot=False)
        f.sock.settimeout(5)
        for length, want in ((3000, "501"), (4094, "501"), (4095, "501"), (4097, "500"), (9000, "500"),
                             (16000, "500")):
            f.sock.sendall(b"NOOP " + b"y" * (length - 5) + b"\r\n")
            self.assertEqual(f.getline()[:3], want, length)
            self.assertEqual(f.voidcmd("NOOP")[:3], "200")

    def test_pbsz_before_auth_is_bad_sequence(self):
        c = self.raw()
        self.assertTrue(c.cmd("PBSZ 0").startswith("503"))
        self.assertTrue(c.cmd("PROT P").startswith("503"))

    def test_curl_ssl_reqd_download_upload_list(self):
        port = self.server.port
        out = os.path.join(self.local, "c.dat")
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "60", "--ssl-reqd", "--cacert", certs()[0],
                            f"ftp://localhost:{port}/bin.dat", "-o", out], timeout=90)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(sha256_file(out), sha256_file(os.path.join(self.root, "bin.dat")))
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "60", "--ssl-reqd", "-k", "-T", out,
                            f"ftp://127.0.0.1:{port}/curl-up.dat"], timeout=90)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(sha256_file(os.path.join(self.root, "curl-up.dat")), sha256_file(out))
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "60", "--ssl-reqd", "-k",
                            f"ftp://127.0.0.1:{port}/"], capture_output=True, timeout=90)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"curl-up.dat", r.stdout)

    def test_curl_implicit_ftps(self):
        out = os.path.join(self.local, "i.dat")
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "60", "-k",
                            f"ftps://127.0.0.1:{self.implicit_port}/bin.dat", "-o", out], timeout=90)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(sha256_file(out), sha256_file(os.path.join(self.root, "bin.dat")))
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "60", "-k", "-T", out,
                            f"ftps://127.0.0.1:{self.implicit_port}/imp-up.dat"], timeout=90)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(sha256_file(os.path.join(self.root, "imp-up.dat")), sha256_file(out))

    def test_lftp_ssl_force(self):
        mirror = os.path.join(self.local, "mirror")
        up = os.path.join(self.local, "lftp-up.dat")
        make_file(up, 1_234_567, seed=9)
        script = ("set ssl:verify-certificate no; set ftp:ssl-force true; set ftp:ssl-protect-data true; "
                  "set net:max-retries 1; set net:timeout 10; "
                  f"open -p {self.server.port} ftp://anonymous:x@127.0.0.1; "
                  f"mirror / {mirror}; put {up} -o lftp-up.dat; cls")
        r = subprocess.run(["lftp", "-c", script], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"lftp-up.dat", r.stdout)
        for name in ("bin.dat", "text.txt"):
            self.assertEqual(sha256_file(os.path.join(mirror, name)), sha256_file(os.path.join(self.root, name)))
        self.assertEqual(sha256_file(os.path.join(self.root, "lftp-up.dat")), sha256_file(up))

    def test_garbage_instead_of_client_hello(self):
        # Implicit port: junk bytes, then a half handshake; both closed,
        # and the server still serves.
        for junk in (b"USER anonymous\r\n", b"\x16\x03\x01\x00\x50" + b"\x01" * 20):
            s = socket.create_connection(("127.0.0.1", self.implicit_port), timeout=5)
            s.settimeout(10)
            closed = False
            try:
                s.sendall(junk)
                # the server may have closed already, seeing the junk
                s.shutdown(socket.SHUT_WR)
                for _ in range(1000):
                    if not s.recv(4096):
                        closed = True
                        break
            except socket.timeout:
                pass
            except OSError:
                closed = True  # reset by the server
            s.close()
            self.assertTrue(closed, junk)
        c = self.raw()
        c.send("AUTH TLS\r\n")
        self.assertTrue(c.reply().startswith("234"))
        c.send(b"this is not TLS at all\r\n" * 4)
        self.assertTrue(c.closed(timeout=10))
        f = self.tls_ftp()
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")


class ParkingMixin:
    """Protected passive transfers of one file, for the parking tests."""
    PAYLOAD = os.urandom(50000)

    def prepare_root(self):
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(self.PAYLOAD)

    def protected(self):
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        return f

    def retr(self, f, stale=None):
        """EPSV and a protected RETR of f.bin; the port it used."""
        port = int(f.sendcmd("EPSV").split("|")[3])
        raw = socket.create_connection(("127.0.0.1", port), timeout=harness.TIMEOUT)
        f.putcmd("RETR f.bin")
        self.assertTrue(f.getline().startswith("150"))
        d = f.context.wrap_socket(raw, server_hostname="127.0.0.1", session=f.sock.session)
        got = recv_all(d)
        d.close()
        self.assertEqual(got, self.PAYLOAD)
        self.assertTrue(f.getline().startswith("226"))
        return port

    def refused(self, port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            return True
        return False



class TestPasvParking(ParkingMixin, TlsCase):
    """Under PROT P a passive listener whose connection has arrived waits
    about a second for the session's next EPSV, which announces its port
    again; whatever connects meanwhile is closed unread, and a thief that
    races the client to the known port gets no byte (its TLS session is
    refused). Clear data gets a fresh port each time (test_server_commands)."""

    def test_next_epsv_reuses_the_port(self):
        f = self.protected()
        first = self.retr(f)
        self.assertEqual(self.retr(f), first)
        f.prot_c()
        # clear data: a fresh port, the parked one closed
        port = int(f.sendcmd("EPSV").split("|")[3])
        self.assertNotEqual(port, first)
        self.assertTrue(self.refused(first))

    def test_connection_to_a_parked_listener_is_not_the_next_data_connection(self):
        f = self.protected()
        port = self.retr(f)
        for _ in range(5):
            # made before the next EPSV announces the port: never its data
            # connection, even when it waits unaccepted as the EPSV arrives
            stale = socket.create_connection(("127.0.0.1", port), timeout=harness.TIMEOUT)
            self.addCleanup(stale.close)
            self.assertEqual(self.retr(f), port)
            stale.settimeout(harness.TIMEOUT)
            try:
                self.assertEqual(stale.recv(100), b"")
            except ConnectionResetError:
                pass
        self.assertEqual(f.voidcmd("NOOP")[:3], "200")

    def test_parked_listener_is_closed_after_a_second_or_two(self):
        f = self.protected()
        port = self.retr(f)
        self.assertTrue(poll_until(lambda: self.refused(port), timeout=5), "port %d still open" % port)
        self.retr(f)

    def test_quit_and_port_close_the_parked_listener(self):
        f = self.protected()
        port = self.retr(f)
        lst = socket.socket()
        self.addCleanup(lst.close)
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        p = lst.getsockname()[1]
        f.voidcmd("PORT 127,0,0,1,%d,%d" % (p >> 8, p & 255))
        self.assertTrue(self.refused(port))
        g = self.protected()
        port = self.retr(g)
        g.quit()
        self.assertTrue(poll_until(lambda: self.refused(port), timeout=2))


class TestPasvParkingRange(ParkingMixin, TlsCase):
    """A passive range with no more ports than sessions allowed parks no
    listener: idle sessions could hold the ports others need."""

    def setUp(self):
        self.range = small_pasv_range(3, salt=211)
        self.extra_args = ("--pasv-ports", "%d-%d" % self.range)
        super().setUp()

    def test_small_range_keeps_no_listener(self):
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        port = self.retr(f)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


class TestPasvParkingFewSessions(ParkingMixin, TlsCase):
    """The same range with fewer sessions allowed than ports parks."""

    def setUp(self):
        self.range = small_pasv_range(3, salt=307)
        self.extra_args = ("--pasv-ports", "%d-%d" % self.range, "--max-sessions", "2")
        super().setUp()

    def test_listener_is_parked(self):
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        first = self.retr(f)
        self.assertEqual(self.retr(f), first)


class TestTlsUploadReads(TlsCase):
    """A PROT P upload is read ahead: OpenSSL takes whatever ciphertext
    the socket holds in one read(2), not each record's header and body
    in two. Counted with the server's read calls (/proc/PID/io syscr)
    while it takes an upload that was queued with the server stopped."""

    extra_args = ("--workers", "1")

    def reads(self):
        return io_calls(self.server.proc.pid, "syscr")

    def test_upload_records_are_read_in_bulk(self):
        pid = self.server.proc.pid
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        payload = os.urandom(96 * 1024)  # six full records
        conn = f.transfercmd("STOR bulk.bin")
        harness.pause_process(self, pid)
        before = self.reads()
        sender = threading.Thread(target=conn.sendall, args=(payload,))
        sender.start()
        time.sleep(0.3)  # queued on loopback while the server sleeps
        os.kill(pid, signal.SIGCONT)
        sender.join(harness.TIMEOUT)
        self.assertFalse(sender.is_alive())
        conn.unwrap()
        conn.close()
        self.assertTrue(f.voidresp().startswith("226"))
        took = self.reads() - before
        with open(os.path.join(self.root, "bulk.bin"), "rb") as fh:
            self.assertEqual(fh.read(), payload)
        # Read ahead: a few reads. Record by record: two per record, 12 and up.
        self.assertLessEqual(took, 8, "%d read calls for six records" % took)


class TestTlsDownloadWrites(TlsCase):
    """A PROT P download gathers its 16 KiB records into large writes;
    a client reading slowly through a small window still gets every byte."""

    extra_args = ("--workers", "1")

    def writes(self):
        return io_calls(self.server.proc.pid, "syscw")

    def expected(self):
        with open(os.path.join(self.root, "bin.dat"), "rb") as fh:
            return fh.read()

    def test_download_records_leave_in_large_writes(self):
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        before = self.writes()
        got = io.BytesIO()
        f.retrbinary("RETR bin.dat", got.write)
        took = self.writes() - before
        self.assertEqual(got.getvalue(), self.expected())
        # 3 MiB is 193 records, a write each without gathering; gathered,
        # 25 writes of 128 KiB and the replies.
        self.assertLessEqual(took, 48, "%d write calls for 193 records" % took)

    def test_slow_reader_gets_the_whole_file(self):
        """Back-pressure from a small receive window and a slow reader:
        the gathered records wait in the server, none is dropped."""
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        port = int(re.search(r"\(\|\|\|(\d+)\|\)", f.sendcmd("EPSV")).group(1))
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        raw.settimeout(harness.TIMEOUT)
        raw.connect(("127.0.0.1", port))
        f.putcmd("RETR bin.dat")
        self.assertTrue(f.getresp().startswith("150"))
        conn = f.context.wrap_socket(raw, server_hostname="127.0.0.1", session=f.sock.session)
        self.addCleanup(conn.close)
        got = bytearray()
        for _ in range(20000):  # 3 MiB in at least 16 KiB steps
            chunk = conn.recv(16 * 1024)
            if not chunk:
                break
            got += chunk
            time.sleep(0.0005)
        conn.close()
        f.sock.settimeout(harness.TIMEOUT)
        self.assertTrue(f.voidresp().startswith("226"))
        self.assertEqual(len(got), len(self.expected()))
        self.assertEqual(bytes(got), self.expected())

    def test_tls_listing_and_text_download_end_whole(self):
        """Listings and TYPE A downloads take the same gathered way."""
        for i in range(300):
            open(os.path.join(self.root, "name-%03d-%s" % (i, "x" * 40)), "w").close()
        f = self.tls_ftp()
        names = f.nlst()
        self.assertEqual(sum(1 for n in names if n.startswith("name-")), 300)
        lines = []
        f.retrlines("RETR text.txt", lines.append)
        with open(os.path.join(self.root, "text.txt")) as src:
            self.assertEqual(lines, src.read().splitlines())


class UploadEndings:
    """Shared by the two classes below: a PROT P upload ended with
    close_notify, and one ended by a bare TCP FIN (what an attacker on the
    path can forge to cut an upload short). Returns the final reply."""

    def upload(self, name, payload, close_notify):
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        conn = f.transfercmd("STOR " + name)
        conn.sendall(payload)
        if close_notify:
            conn.unwrap()
        else:
            conn.shutdown(socket.SHUT_RDWR)  # SSLSocket.shutdown sends no alert
        conn.close()
        f.sock.settimeout(15)
        try:
            return f.voidresp()
        except ftplib.Error as e:
            return str(e)


class TestTlsLenientEof(UploadEndings, TlsCase):
    """By default (as vsftpd) a bare FIN ends a protected upload like
    close_notify: clients that never send it still upload."""

    def test_upload_without_close_notify_is_kept(self):
        payload = os.urandom(50000)
        self.assertTrue(self.upload("bare.bin", payload, False).startswith("226"))
        with open(os.path.join(self.root, "bare.bin"), "rb") as fh:
            self.assertEqual(fh.read(), payload)


class TestTlsStrictEof(UploadEndings, TlsCase):
    """--tls-strict-eof: only close_notify ends a protected upload; one cut
    by a bare FIN is aborted (426) and nothing is stored."""

    extra_args = ("--tls-strict-eof",)

    def test_upload_cut_by_a_bare_fin_is_discarded(self):
        r = self.upload("cut.bin", os.urandom(50000), False)
        self.assertTrue(r.startswith("426"), r)
        self.assertFalse(os.path.exists(os.path.join(self.root, "cut.bin")))
        payload = os.urandom(50000)
        r = self.upload("whole.bin", payload, True)
        self.assertTrue(r.startswith("226"), r)
        with open(os.path.join(self.root, "whole.bin"), "rb") as fh:
            self.assertEqual(fh.read(), payload)

    def test_curl_lftp_and_ferry_uploads_end_with_close_notify(self):
        src = os.path.join(self.tmp, "src.bin")
        make_file(src, 300_000, seed=11)
        p = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "-T", src,
                            "ftp://127.0.0.1:%d/curl.bin" % self.server.port],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run(["lftp", "-c", "set ftp:ssl-force yes; set ssl:verify-certificate no; "
                            "set ftp:ssl-protect-data yes; open ftp://127.0.0.1:%d; put %s -o lftp.bin"
                            % (self.server.port, src)], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([harness.FERRY, "--tls", "--insecure", "-T", src,
                            "ftp://127.0.0.1:%d/ferry.bin" % self.server.port],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        for name in ("curl.bin", "lftp.bin", "ferry.bin"):
            self.assertEqual(sha256_file(os.path.join(self.root, name)), sha256_file(src), name)


class TestTlsStalledRecord(TlsCase):
    """Read ahead holds a partial record inside OpenSSL, where the socket
    no longer signals it: an upload that stalls in mid-record must still
    end at the data timeout (426), not hold its session forever."""

    extra_args = ("--data-timeout", "2")

    def test_partial_record_then_silence_times_out(self):
        f = self.tls_ftp()
        f.voidcmd("TYPE I")
        conn = f.transfercmd("STOR stalled.bin")
        conn.sendall(os.urandom(40000))  # whole records first
        # Then the start of an application-data record: its header
        # promises 16 KiB, a hundred bytes follow, then nothing.
        raw = socket.socket(fileno=os.dup(conn.fileno()))
        self.addCleanup(raw.close)
        raw.sendall(bytes([23, 3, 3, 0x40, 0x11]) + os.urandom(100))
        f.sock.settimeout(15)
        with self.assertRaises(ftplib.error_temp) as cm:
            f.voidresp()
        self.assertTrue(str(cm.exception).startswith("426"), cm.exception)
        self.assertFalse(os.path.exists(os.path.join(self.root, "stalled.bin")))
        self.assertEqual(f.sendcmd("NOOP")[:3], "200")
        conn.close()


class TestTlsStalledHandshake(TlsCase):
    """A control connection whose TLS handshake stalls (implicit port, or
    after 234) cannot be sent a 421: the idle timeout must still close it,
    or a few silent sockets hold every session slot."""

    extra_args = ("--idle-timeout", "2", "--max-sessions", "3", "--max-per-ip", "0")

    def closed_by_server(self, sock, within):
        """True when the server closes sock within `within` seconds."""
        sock.settimeout(within)
        try:
            while sock.recv(4096):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def test_silent_implicit_tls_connections_are_closed(self):
        socks = [socket.create_connection(("127.0.0.1", self.implicit_port), timeout=5)
                 for _ in range(3)]
        for s in socks:
            self.addCleanup(s.close)
        for s in socks:
            self.assertTrue(self.closed_by_server(s, 8), "silent implicit TLS connection kept")
        # Their slots are free again.
        f = ftplib.FTP()
        f.connect("127.0.0.1", self.server.port, timeout=harness.TIMEOUT)
        self.addCleanup(self._close_ftp, f)
        self.assertEqual(f.login()[:3], "230")

    def test_auth_tls_then_partial_client_hello_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        self.addCleanup(s.close)
        fh = s.makefile("rb")
        self.assertTrue(fh.readline().startswith(b"220"))
        s.sendall(b"AUTH TLS\r\n")
        self.assertTrue(fh.readline().startswith(b"234"))
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        self.assertTrue(self.closed_by_server(s, 8), "stalled handshake after 234 kept")


class TestTlsRequired(TlsCase):
    extra_args = ("--tls-required",)

    def prepare_root(self):
        super().prepare_root()
        home = os.path.join(self.tmp, "alice")
        os.mkdir(home)
        h = subprocess.run([FERRYD, "--hash-password"], input=b"wonderland\n", capture_output=True,
                           timeout=30).stdout.decode().strip()
        users = os.path.join(self.tmp, "users")
        with open(users, "w") as f:
            f.write(f"alice:{h}:{home}:rw\n")
        harness.give_to_server(self.tmp, home)
        self.extra_args = ("--tls-required", "-u", users)
        self.ferryd_args = self.ferryd_args + ("-u", users)

    def test_clear_login_refused_for_users(self):
        c = self.raw()
        r = c.cmd("USER alice")
        self.assertTrue(r.startswith("530"), r)
        self.assertIn("TLS required", r)

    def test_tls_login_works_and_clear_data_refused(self):
        f = self.tls_ftp(user="alice", passwd="wonderland", prot=False)
        f.sendcmd("PBSZ 0")
        f.sendcmd("PROT C")
        with self.assertRaises(ftplib.error_perm) as cm:
            f.retrlines("LIST", lambda line: None)
        self.assertTrue(str(cm.exception)[:3] in ("521", "522"), cm.exception)
        f.prot_p()
        f.storbinary("STOR a.dat", io.BytesIO(b"x" * 1000))
        self.assertEqual(f.size("a.dat"), 1000)

    def test_anonymous_still_allowed_in_clear(self):
        f = self.ftp()
        self.assertIn("bin.dat", f.nlst())


if __name__ == "__main__":
    unittest.main()
