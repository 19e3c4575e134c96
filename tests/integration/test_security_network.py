"""Hostile data addresses: FTP bounce through PORT/EPRT and theft of a
passive data connection.

ferryd connects out only to the control connection's own peer address and
to ports >= 1024 (504 otherwise; malformed addresses get 501), and accepts
a passive data connection only from the control peer's address. Other
loopback addresses (127.0.0.2, ...) play the third party.
"""
import contextlib
import hashlib
import os
import socket

from harness import TIMEOUT, make_file, sha256_file
from test_security_common import (SecurityCase, connect_from, control_from, epsv_port, pasv_port,
                                  read_reply_within, recv_all)


def listener(host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(8)
    s.settimeout(TIMEOUT)
    return s


def port_arg(host, port):
    return "%s,%d,%d" % (host.replace(".", ","), port >> 8, port & 255)


def connections_waiting(lsock, wait=0.3):
    """How many connections reached lsock (accepting them), waiting briefly."""
    n = 0
    lsock.settimeout(wait)
    for _ in range(16):
        try:
            conn, _ = lsock.accept()
        except (socket.timeout, TimeoutError):
            break
        conn.close()
        n += 1
    return n


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Bounce(SecurityCase):
    """PORT/EPRT cannot point ferryd at a third party or a privileged port."""

    def prepare_root(self):
        with open(os.path.join(self.root, "f.txt"), "wb") as f:
            f.write(b"data\n")

    def _no_data_address(self, c):
        # No address in force: a transfer cannot start anywhere.
        r = c.cmd("NLST")
        self.assertTrue(r.startswith("425"), r)

    def test_port_to_another_address_is_refused(self):
        third = listener("127.0.0.2")
        self.addCleanup(third.close)
        tport = third.getsockname()[1]
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        for line in ("PORT " + port_arg("127.0.0.2", tport),
                     "PORT " + port_arg("127.1.2.3", tport),
                     "PORT " + port_arg("10.0.0.1", tport),
                     # 0.0.0.0 / :: stand for the control peer itself (lftp sends
                     # "::" in active IPv6 mode): accepted, tested in test_server_extras.
                     "PORT " + port_arg("255.255.255.255", tport),
                     "EPRT |1|127.0.0.2|%d|" % tport,
                     "EPRT !1!127.0.0.2!%d!" % tport,
                     "EPRT |2|::ffff:127.0.0.2|%d|" % tport,
                     # the other family: 522, the one to use (RFC 2428)
                     "EPRT |2|::1|%d|" % tport):
            r = c.cmd(line)
            want = "522 Network protocol not supported, use (1)" if "::1" in line else "504"
            self.assertTrue(r.startswith(want), (line, r))
            self._no_data_address(c)
        self.assertEqual(connections_waiting(third), 0, "ferryd connected to a third party")

    def test_refused_port_keeps_the_previous_address(self):
        mine = listener("127.0.0.1")
        third = listener("127.0.0.2")
        self.addCleanup(mine.close)
        self.addCleanup(third.close)
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        self.assertTrue(c.cmd("PORT " + port_arg("127.0.0.1", mine.getsockname()[1])).startswith("200"))
        self.assertTrue(c.cmd("PORT " + port_arg("127.0.0.2", third.getsockname()[1])).startswith("504"))
        self.assertTrue(c.cmd("NLST").startswith("150"))
        conn, _ = mine.accept()
        conn.settimeout(TIMEOUT)
        self.assertEqual(recv_all(conn), b"f.txt\r\n")
        conn.close()
        self.assertTrue(c.reply().startswith("226"))
        self.assertEqual(connections_waiting(third), 0)

    def test_port_to_privileged_ports_is_refused(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        for port in (0, 1, 21, 22, 25, 80, 443, 1023):
            for line in ("PORT " + port_arg("127.0.0.1", port), "EPRT |1|127.0.0.1|%d|" % port):
                r = c.cmd(line)
                self.assertTrue(r.startswith("504"), (line, r))
                self._no_data_address(c)
        # The boundary: 1024 is allowed.
        self.assertTrue(c.cmd("PORT " + port_arg("127.0.0.1", 1024)).startswith("200"))
        self.assertTrue(c.cmd("EPRT |1|127.0.0.1|1024|").startswith("200"))

    def test_malformed_addresses_are_refused(self):
        mine = listener("127.0.0.1")
        self.addCleanup(mine.close)
        p = mine.getsockname()[1]
        hi, lo = p >> 8, p & 255
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        bad_port = [
            # Octets that overflow: modulo 256 these would be 127.0.0.1:p.
            "383,0,0,1,%d,%d" % (hi, lo), "127,256,0,1,%d,%d" % (hi, lo), "127,0,0,257,%d,%d" % (hi, lo),
            "127,0,0,1,%d,%d" % (hi + 256, lo), "127,0,0,1,%d,%d" % (hi, lo + 256),
            "4294967423,0,0,1,%d,%d" % (hi, lo), "127,0,0,1,%d" % p,
            "1,2,3,4,5,6,7", "127,0,0,1,%d,%d,0" % (hi, lo), "127,0,0,1,%d" % hi,
            "127,0,0,1,%d,%d," % (hi, lo), ",127,0,0,1,%d,%d" % (hi, lo), "127,,0,1,%d,%d" % (hi, lo),
            "-1,0,0,1,%d,%d" % (hi, lo), "127,0,0,-1,%d,%d" % (hi, lo), "127,0,0,1,-%d,%d" % (hi, lo),
            "+127,0,0,1,%d,%d" % (hi, lo), "0127,0,0,1,%d,%d" % (hi, lo), "127,0,0,1,0x%x,%d" % (hi, lo),
            "127.0.0.1,%d,%d" % (hi, lo), "127 ,0,0,1,%d,%d" % (hi, lo), "127,0,0,1,%d,%d x" % (hi, lo),
            "a,b,c,d,e,f", "\uff11\uff12\uff17,0,0,1,%d,%d" % (hi, lo), "127,0,0,1,%d,%d\t" % (hi, lo),
            "9" * 4000,
        ]
        for arg in bad_port:
            r = c.cmd("PORT " + arg)
            self.assertTrue(r.startswith("501"), (arg[:60], r))
        bad_eprt = [
            "|1|127.0.0.1|%d" % p, "|1|127.0.0.1|%d|x" % p, "1|127.0.0.1|%d|" % p,
            "|3|127.0.0.1|%d|" % p, "|0|127.0.0.1|%d|" % p, "|12|127.0.0.1|%d|" % p,
            "|1|127.0.0.1|%d|" % (p + 65536), "|1|127.0.0.1|-%d|" % p, "|1|127.0.0.1|99999999999999999999|",
            "|1|127.0.0.1||", "|1||%d|" % p, "|1|127.1|%d|" % p, "|1|0x7f.0.0.1|%d|" % p,
            "|1|127.0.0.1.5|%d|" % p, "|1|::1|%d|" % p, "|2|127.0.0.1|%d|" % p,
            "|1|383.0.0.1|%d|" % p, "|1|127.0.0.1 |%d|" % p, "2|127.0.0.1|%d|" % p,
            "|1|" + "1" * 200 + "|%d|" % p, "||||", "|", "1" * 4000,
        ]
        for arg in bad_eprt:
            r = c.cmd("EPRT " + arg)
            # 522 (RFC 2428) for an unknown network protocol number, else 501.
            self.assertTrue(r[:3] in ("501", "522"), (arg[:60], r))
        self._no_data_address(c)
        self.assertEqual(connections_waiting(mine), 0, "a malformed address reached a listener")

    def test_port_follows_the_real_peer(self):
        """From 127.0.0.2 a client may name 127.0.0.2, no longer 127.0.0.1."""
        mine = listener("127.0.0.2")
        other = listener("127.0.0.1")
        self.addCleanup(mine.close)
        self.addCleanup(other.close)
        c = control_from(self.server.port, "127.0.0.2")
        self.addCleanup(c.close)
        self.assertTrue(c.login().startswith("230"))
        r = c.cmd("PORT " + port_arg("127.0.0.1", other.getsockname()[1]))
        self.assertTrue(r.startswith("504"), r)
        self.assertTrue(c.cmd("PORT " + port_arg("127.0.0.2", mine.getsockname()[1])).startswith("200"))
        self.assertTrue(c.cmd("NLST").startswith("150"))
        conn, _ = mine.accept()
        conn.settimeout(TIMEOUT)
        self.assertEqual(recv_all(conn), b"f.txt\r\n")
        conn.close()
        self.assertTrue(c.reply().startswith("226"))
        self.assertEqual(connections_waiting(other), 0)

    def test_ipv6_control_cannot_bounce_to_ipv4(self):
        if not ipv6_loopback():
            self.skipTest("no IPv6 loopback")
        v4 = listener("127.0.0.1")
        v6 = listener("::1", socket.AF_INET6)
        self.addCleanup(v4.close)
        self.addCleanup(v6.close)
        c = self.raw(host="::1", family=socket.AF_INET6)
        self.assertTrue(c.login().startswith("230"))
        for line in ("EPRT |1|127.0.0.1|%d|" % v4.getsockname()[1],
                     "EPRT |2|::ffff:127.0.0.1|%d|" % v4.getsockname()[1],
                     "PORT " + port_arg("127.0.0.1", v4.getsockname()[1]),
                     "EPRT |2|::1|80|"):
            r = c.cmd(line)
            want = "522 Network protocol not supported, use (2)" if "EPRT" in line and "127" in line else "504"
            self.assertTrue(r.startswith(want), (line, r))
        self.assertTrue(c.cmd("EPRT |2|::1|%d|" % v6.getsockname()[1]).startswith("200"))
        self.assertTrue(c.cmd("NLST").startswith("150"))
        conn, _ = v6.accept()
        conn.settimeout(TIMEOUT)
        self.assertEqual(recv_all(conn), b"f.txt\r\n")
        conn.close()
        self.assertTrue(c.reply().startswith("226"))
        self.assertEqual(connections_waiting(v4), 0)


class PassiveTheft(SecurityCase):
    """A passive data port is open to the world for a moment: a connection
    from any other address is dropped and never carries the transfer."""

    ferryd_args = ("-w", "--data-timeout", "2")

    def prepare_root(self):
        make_file(os.path.join(self.root, "payload.bin"), 256 * 1024, seed=7)

    def _intrude(self, port):
        """Connects from 127.0.0.2; returns the socket (or None if refused)."""
        try:
            return connect_from("127.0.0.1", port, source="127.0.0.2", timeout=5)
        except (ConnectionRefusedError, OSError):
            return None

    def _thief_gets_nothing(self, s):
        if s is None:
            return
        got = recv_all(s, limit=1 << 20, timeout=5)
        s.close()
        self.assertEqual(got, b"", "the intruder received transfer data")

    def _retr_with_thief_first(self, extended):
        c = self.binary_session()
        port = epsv_port(c) if extended else pasv_port(c)
        thief = self._intrude(port)
        self.assertIsNotNone(thief, "intruder could not even connect (test setup)")
        # ferryd drops the intruder at once: it sees EOF before any command.
        thief.settimeout(5)
        self.assertEqual(thief.recv(10), b"")
        d = connect_from("127.0.0.1", port)
        late = self._intrude(port)  # after the rightful connection: nobody listens
        self.assertTrue(c.cmd("RETR payload.bin").startswith("150"))
        data = recv_all(d)
        d.close()
        self.assertTrue(c.reply().startswith("226"))
        self.assertEqual(hashlib.sha256(data).hexdigest(), sha256_file(os.path.join(self.root, "payload.bin")))
        self._thief_gets_nothing(thief)
        self._thief_gets_nothing(late)

    def test_pasv_connection_from_another_address_is_dropped(self):
        self._retr_with_thief_first(extended=False)

    def test_epsv_connection_from_another_address_is_dropped(self):
        self._retr_with_thief_first(extended=True)

    def test_only_the_intruder_connects(self):
        c = self.binary_session()
        port = pasv_port(c)
        thief = self._intrude(port)
        self.assertTrue(c.cmd("RETR payload.bin").startswith("150"))
        r = read_reply_within(c, 15)
        self.assertIsNotNone(r, "no reply after the data timeout")
        self.assertTrue(r.startswith("425"), r)
        self._thief_gets_nothing(thief)
        self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")

    def test_strays_filling_the_backlog_do_not_keep_the_client_out(self):
        """A fresh passive listener is read once a transfer waits for it or
        from the worker's next tick, whichever comes first: connections from
        elsewhere that fill its backlog before the client's are closed within
        a second or so, and the client's retried connect gets through."""
        c = self.binary_session()
        port = epsv_port(c)
        strays = []
        for _ in range(64):  # twice the backlog: the client's first SYN is dropped
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            s.bind(("127.0.0.2", 0))
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            strays.append(s)
        d = connect_from("127.0.0.1", port, timeout=15)
        self.assertTrue(c.cmd("RETR payload.bin").startswith("150"))
        data = recv_all(d)
        d.close()
        self.assertTrue(c.reply().startswith("226"))
        self.assertEqual(hashlib.sha256(data).hexdigest(), sha256_file(os.path.join(self.root, "payload.bin")))
        for s in strays:
            s.settimeout(2)
            try:
                got = s.recv(100)
            except OSError:
                got = b""
            self.assertEqual(got, b"", "a stray connection received transfer data")

    def test_intruder_cannot_inject_an_upload(self):
        c = self.binary_session()
        port = pasv_port(c)
        thief = self._intrude(port)
        if thief is not None:
            with contextlib.suppress(OSError):
                thief.sendall(b"INJECTED BY A THIRD PARTY\n" * 100)
        d = connect_from("127.0.0.1", port)
        self.assertTrue(c.cmd("STOR target.txt").startswith("150"))
        d.sendall(b"the rightful upload\n")
        d.close()
        self.assertTrue(c.reply().startswith("226"))
        with open(os.path.join(self.root, "target.txt"), "rb") as f:
            self.assertEqual(f.read(), b"the rightful upload\n")
        if thief is not None:
            thief.close()
