"""Server features beyond the core command set: LIST/NLST patterns on the
last path component, SITE CHMOD, MFMT and SITE UTIME (used by lftp,
FileZilla and BSD ftp's mget)."""
import ftplib
import os
import stat
import time
import unittest

from harness import FerrydCase


class TestPatterns(FerrydCase):
    ferryd_args = ("-w",)

    def prepare_root(self):
        os.mkdir(os.path.join(self.root, "sub"))
        for name in ("a.txt", "b.txt", "c.bin", ".hidden.txt", "sub/x.txt", "sub/y.txt", "sub/z.bin"):
            with open(os.path.join(self.root, name), "w") as f:
                f.write(name)

    def test_nlst_pattern_in_cwd(self):
        self.assertEqual(sorted(self.ftp().nlst("*.txt")), ["a.txt", "b.txt"])

    def test_nlst_pattern_keeps_directory_part(self):
        f = self.ftp()
        names = sorted(f.nlst("sub/*.txt"))
        self.assertEqual(names, ["sub/x.txt", "sub/y.txt"])
        # ...so that every name can be fetched as given (what mget does).
        for n in names:
            got = []
            f.retrbinary("RETR " + n, got.append)
            self.assertEqual(b"".join(got).decode(), n)

    def test_list_pattern(self):
        lines = []
        self.ftp().retrlines("LIST *.bin", lines.append)
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].endswith(" c.bin"))

    def test_no_match_is_empty_and_literal_names_win(self):
        f = self.ftp()
        self.assertEqual(f.nlst("*.none"), [])
        with open(os.path.join(self.root, "lit*.txt"), "w") as fh:
            fh.write("x")
        os.chown(os.path.join(self.root, "lit*.txt"), os.stat(self.root).st_uid, os.stat(self.root).st_gid)
        self.assertEqual(f.nlst("lit*.txt"), ["lit*.txt"])

    def test_wildcards_in_directories_stay_literal(self):
        f = self.ftp()
        with self.assertRaises(ftplib.error_perm):
            f.nlst("s*/x.txt")


class TestSiteAndMfmt(FerrydCase):
    ferryd_args = ("-w",)

    def prepare_root(self):
        with open(os.path.join(self.root, "f.txt"), "w") as f:
            f.write("data")

    def test_mfmt_sets_time(self):
        f = self.ftp()
        self.assertEqual(f.sendcmd("MFMT 20200102030405 f.txt"), "213 Modify=20200102030405; f.txt")
        self.assertEqual(f.sendcmd("MDTM f.txt"), "213 20200102030405")
        self.assertEqual(int(os.stat(os.path.join(self.root, "f.txt")).st_mtime), 1577934245)
        self.assertIn("MFMT", f.sendcmd("FEAT"))

    def test_site_utime(self):
        f = self.ftp()
        self.assertTrue(f.sendcmd("SITE UTIME 20210102030405 f.txt").startswith("200"))
        self.assertEqual(f.sendcmd("MDTM f.txt"), "213 20210102030405")

    def test_site_chmod_and_no_setid(self):
        f = self.ftp()
        path = os.path.join(self.root, "f.txt")
        self.assertTrue(f.sendcmd("SITE CHMOD 640 f.txt").startswith("200"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        f.sendcmd("SITE CHMOD 4755 f.txt")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o755)

    def test_bad_arguments(self):
        f = self.ftp()
        for cmd in ("SITE CHMOD xyz f.txt", "SITE CHMOD 644", "MFMT 2020 f.txt", "MFMT 20201340000000 f.txt"):
            with self.assertRaises(ftplib.error_perm) as cm:
                f.sendcmd(cmd)
            self.assertTrue(str(cm.exception).startswith("501"), (cmd, cm.exception))
        with self.assertRaises(ftplib.error_perm) as cm:
            f.sendcmd("SITE CHMOD 644 missing")
        self.assertTrue(str(cm.exception).startswith("550"))
        with self.assertRaises(ftplib.error_perm) as cm:
            f.sendcmd("SITE EXEC ls")
        self.assertTrue(str(cm.exception).startswith("504"))

    def test_read_only_session_cannot_change(self):
        self.restart()
        f = self.ftp()
        for cmd in ("SITE CHMOD 777 f.txt", "MFMT 20200102030405 f.txt"):
            with self.assertRaises(ftplib.error_perm) as cm:
                f.sendcmd(cmd)
            self.assertTrue(str(cm.exception).startswith("550"), cm.exception)
        self.assertNotEqual(stat.S_IMODE(os.stat(os.path.join(self.root, "f.txt")).st_mode), 0o777)


if __name__ == "__main__":
    unittest.main()


class TestUnspecifiedActiveAddress(FerrydCase):
    """PORT 0,0,0,0,p1,p2 and EPRT |2|::|port| (lftp sends the latter in
    active IPv6 mode) mean the control peer itself: the data connection
    goes there, never anywhere else."""

    def prepare_root(self):
        with open(os.path.join(self.root, "f.txt"), "w") as f:
            f.write("payload\n")

    def _active_retr(self, family, host, make_arg):
        import socket
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.bind((host, 0))
        listener.listen(1)
        listener.settimeout(10)
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        c = self.raw(host=host, family=family)
        self.assertTrue(c.login().startswith("230"))
        self.assertTrue(c.cmd("TYPE I").startswith("200"))
        r = c.cmd(make_arg(port))
        self.assertTrue(r.startswith("200"), r)
        c.send("RETR f.txt\r\n")
        self.assertTrue(c.reply().startswith("150"))
        conn, peer = listener.accept()
        data = b""
        while True:
            b = conn.recv(4096)
            if not b:
                break
            data += b
        conn.close()
        self.assertEqual(data, b"payload\n")
        self.assertTrue(c.reply().startswith("226"))
        return peer

    def test_port_zero_address_means_peer(self):
        import socket
        self._active_retr(socket.AF_INET, "127.0.0.1",
                          lambda p: "PORT 0,0,0,0,%d,%d" % (p >> 8, p & 255))

    def test_eprt_unspecified_ipv6_means_peer(self):
        import socket
        self._active_retr(socket.AF_INET6, "::1", lambda p: "EPRT |2|::|%d|" % p)

    def test_unspecified_address_still_needs_a_high_port(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        self.assertTrue(c.cmd("PORT 0,0,0,0,0,21").startswith("504"))
