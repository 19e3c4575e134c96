"""Hostile paths: ferryd's path jail.

A secret file, a file with a name only a listing would show, and two
directories live beside the served root (see test_security_common). Every
command that takes a path is tried with traversal payloads and through
symbolic links planted inside the root that point outside; no reply and
no data connection may carry the outside's content, size, time or names,
and nothing outside may change. Names that try to forge reply lines,
odd names, deep trees, a huge directory and special files follow.
"""
import os
import shutil
import stat
import subprocess
import threading
import time

from harness import TIMEOUT
from test_security_common import (SECRET_CONTENT, SecurityCase, connect_from, hash_password, leaks,
                                  pasv_port, plant_outside, read_reply_within, recv_all,
                                  snapshot_outside, transfer)

# Entries in the huge directory (the figure; creating them takes ~1 s).
HUGE_DIR_ENTRIES = 100_000
# Levels of MKD+CWD in the deep-tree test.
DEEP_LEVELS = 1000


def traversal_payloads(tmp, root, target):
    """Ways to name tmp/target from inside root. Bytes: some are not UTF-8."""
    t = target.encode()
    abs_t = os.path.join(tmp, target).encode()
    rootname = os.path.basename(root).encode()
    return [
        b"../" + t, b"../../" + t, b"../../../../../../../../" + t,
        b"/../" + t, b"/../../../" + t, b"sub/../../" + t, b"./../" + t, b"sub/./../../" + t,
        b"//../" + t, b"///..//..//" + t, b"/./.././" + t,
        abs_t, b"/" + abs_t, b"//" + abs_t.lstrip(b"/"), b"../../../../../../.." + abs_t,
        b"..\\" + t, b"sub\\..\\..\\" + t, b"\\..\\" + t,
        b"%2e%2e/" + t, b"%2e%2e%2f" + t, b"..%2f" + t, b"%252e%252e/" + t, b"..%5c" + t,
        b"../" + t + b"/.", b"../" + t + b"/", b"../" + t + b"/./.", b"../" + t + b" ", b"../" + t + b";",
        b"..../" + t, b".../" + t, b"....//" + t, b"~/../" + t, b"../" + rootname + b"/../" + t,
        "\u2024\u2024/".encode() + t,          # ONE DOT LEADER
        "\u2025/".encode() + t,                # TWO DOT LEADER
        "\uff0e\uff0e/".encode() + t,          # FULLWIDTH FULL STOP
        "\uff0e\uff0e\uff0f".encode() + t,     # ... and FULLWIDTH SOLIDUS
        "..\u2215".encode() + t,               # DIVISION SLASH
        "..\u2044".encode() + t,               # FRACTION SLASH
        b"\xc0\xae\xc0\xae/" + t,              # overlong UTF-8 '.'
        b"..\xc0\xaf" + t,                     # overlong UTF-8 '/'
        b"\xe0\x80\xae\xe0\x80\xae/" + t,      # 3-byte overlong '.'
        b"../" * 1300 + t,                     # long, under the line limit
        b"a/" * 1900 + b"../" * 1910 + t,      # long, climbs above a deep path
    ]


class PathJail(SecurityCase):
    """Traversal in every command that takes a path."""

    ferryd_args = ("-w",)

    def prepare_root(self):
        plant_outside(self.tmp)
        os.mkdir(os.path.join(self.tmp, "outside_empty"))
        with open(os.path.join(self.root, "readme.txt"), "wb") as f:
            f.write(b"hello from inside\n")
        os.mkdir(os.path.join(self.root, "sub"))
        with open(os.path.join(self.root, "sub", "file.txt"), "wb") as f:
            f.write(b"inside sub\n")

    def _exchange(self, c, line, outputs):
        """Sends one raw command line; collects and returns its reply."""
        c.send(line + b"\r\n")
        r = c.reply()
        outputs.append(r.encode("utf-8", "surrogateescape"))
        return r

    def _data_cmd(self, c, line, outputs, upload=None):
        port = pasv_port(c)
        d = connect_from("127.0.0.1", port)
        try:
            c.send(line + b"\r\n")
            r = c.reply()
            outputs.append(r.encode())
            if not r.startswith("1"):
                return r, None
            if upload is not None:
                d.sendall(upload)
                d.close()
                data = b""
            else:
                data = recv_all(d, limit=1 << 20)
                outputs.append(data)
            final = c.reply()
            outputs.append(final.encode())
            return r, data
        finally:
            d.close()

    def test_traversal_reads_never_reach_outside(self):
        before = snapshot_outside(self.tmp, self.root)
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        outputs = []
        payloads = traversal_payloads(self.tmp, self.root, "secret.txt")
        dirloads = traversal_payloads(self.tmp, self.root, "outside_dir")
        for p in payloads:
            for verb in (b"SIZE", b"MDTM"):
                r = self._exchange(c, verb + b" " + p, outputs)
                self.assertFalse(r.startswith("213"), (verb, p, r))
            r = self._exchange(c, b"MLST " + p, outputs)
            self.assertNotIn("size=", r, (p, r))
            self._exchange(c, b"STAT " + p, outputs)
            r, data = self._data_cmd(c, b"RETR " + p, outputs)
            self.assertFalse(r.startswith("1"), ("RETR", p, r))
        for p in payloads[:12] + dirloads:
            for verb in (b"LIST", b"NLST", b"MLSD", b"LIST -la"):
                self._data_cmd(c, verb + b" " + p, outputs)
            r = self._exchange(c, b"CWD " + p, outputs)
            pwd = self._exchange(c, b"PWD", outputs)
            if r.startswith("250"):
                self.assertEqual(pwd, '257 "/" is the current directory.', (p, r))
                self._data_cmd(c, b"LIST", outputs)
            self._exchange(c, b"CWD /", outputs)
        for p in (b"..", b"../", b"/..", b"../..", b"//..", b"/../../..", b"..\\.."):
            self._exchange(c, b"CWD " + p, outputs)
            self.assertEqual(self._exchange(c, b"PWD", outputs), '257 "/" is the current directory.')
            self._data_cmd(c, b"LIST -a", outputs)
            self._data_cmd(c, b"NLST", outputs)
            self._exchange(c, b"STAT .", outputs)
            self._exchange(c, b"CDUP", outputs)
            self.assertEqual(self._exchange(c, b"PWD", outputs), '257 "/" is the current directory.')
        found = [(i, leaks(o)) for i, o in enumerate(outputs) if leaks(o)]
        self.assertEqual(found, [], "outside data leaked")
        self.assertEqual(snapshot_outside(self.tmp, self.root), before)

    def test_traversal_writes_never_touch_outside(self):
        before = snapshot_outside(self.tmp, self.root)
        c = self.binary_session()
        outputs = []
        for p in traversal_payloads(self.tmp, self.root, "secret.txt"):
            self._data_cmd(c, b"STOR " + p, outputs, upload=b"overwritten by STOR\n")
            self._data_cmd(c, b"APPE " + p, outputs, upload=b"appended by APPE\n")
            self._exchange(c, b"REST 3", outputs)
            self._data_cmd(c, b"STOR " + p, outputs, upload=b"written at REST\n")
            self._exchange(c, b"DELE " + p, outputs)
            r = self._exchange(c, b"RNFR " + p, outputs)
            if r.startswith("350"):
                self._exchange(c, b"RNTO stolen.txt", outputs)
        for p in traversal_payloads(self.tmp, self.root, "secret.txt"):
            self._exchange(c, b"SITE CHMOD 777 " + p, outputs)
            self._exchange(c, b"SITE CHMOD 4777 " + p, outputs)
            self._exchange(c, b"SITE UTIME 20300101000000 " + p, outputs)
            self._exchange(c, b"MFMT 20300101000000 " + p, outputs)
        for p in traversal_payloads(self.tmp, self.root, "outside_empty"):
            self._exchange(c, b"RMD " + p, outputs)
            self._exchange(c, b"SITE CHMOD 700 " + p, outputs)
            self._exchange(c, b"RNFR " + p, outputs)
            self._exchange(c, b"RNTO stolen_dir", outputs)
        for p in traversal_payloads(self.tmp, self.root, "made_by_mkd"):
            self._exchange(c, b"MKD " + p, outputs)
        for p in traversal_payloads(self.tmp, self.root, "planted.txt"):
            with open(os.path.join(self.root, "scratch.txt"), "wb") as f:
                f.write(b"scratch\n")
            if self._exchange(c, b"RNFR scratch.txt", outputs).startswith("350"):
                self._exchange(c, b"RNTO " + p, outputs)
        # Nothing outside changed; whatever was written landed inside.
        self.assertEqual(snapshot_outside(self.tmp, self.root), before)
        for name in ("made_by_mkd", "planted.txt", "stolen.txt", "stolen_dir"):
            self.assertFalse(os.path.lexists(os.path.join(self.tmp, name)), name)
        with open(os.path.join(self.tmp, "secret.txt"), "rb") as f:
            self.assertEqual(f.read(len(SECRET_CONTENT)), SECRET_CONTENT)
        self.assertTrue(os.path.isdir(os.path.join(self.tmp, "outside_empty")))
        found = [(i, leaks(o)) for i, o in enumerate(outputs) if leaks(o)]
        self.assertEqual(found, [], "outside data leaked")

    def test_nul_in_path_is_refused_not_truncated(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        # Truncated at the NUL these would name readme.txt, which exists.
        for line in (b"SIZE readme.txt\x00", b"SIZE readme.txt\x00/../../secret.txt",
                     b"MDTM readme.txt\x00.bak", b"CWD sub\x00/../..", b"DELE readme.txt\x00x",
                     b"RNFR readme.txt\x00", b"MKD newdir\x00x", b"RMD sub\x00"):
            c.send(line + b"\r\n")
            self.assertTrue(c.reply().startswith("501"), line)
        for line in (b"RETR readme.txt\x00", b"STOR readme.txt\x00.x", b"LIST sub\x00"):
            port = pasv_port(c)
            d = connect_from("127.0.0.1", port)
            c.send(line + b"\r\n")
            self.assertTrue(c.reply().startswith("501"), line)
            d.close()
        self.assertTrue(os.path.exists(os.path.join(self.root, "readme.txt")))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "sub")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "newdir")))
        self.assertEqual(c.cmd("PWD"), '257 "/" is the current directory.')


class SymlinkJail(SecurityCase):
    """Symbolic links planted inside the root: those pointing out lead
    nowhere, for every command; relative links that stay inside work."""

    ferryd_args = ("-w",)

    def prepare_root(self):
        plant_outside(self.tmp)
        os.mkdir(os.path.join(self.tmp, "outside_empty"))
        r = self.root
        with open(os.path.join(r, "readme.txt"), "wb") as f:
            f.write(b"hello from inside\n")
        os.mkdir(os.path.join(r, "sub"))
        with open(os.path.join(r, "sub", "file.txt"), "wb") as f:
            f.write(b"inside sub\n")
        links = {
            "link_file": "../secret.txt",
            "link_abs": os.path.join(self.tmp, "secret.txt"),
            "link_dir": "..",
            "link_dir_abs": self.tmp,
            "chain1": "chain2",
            "chain2": "sub/../../secret.txt",
            "sub/deep_link": "../../secret.txt",
            "sub/deep_dir": "../../outside_dir",
            "loop1": "loop2",
            "loop2": "loop1",
            # These stay inside and must work.
            "good_link": "readme.txt",
            "good_dirlink": "sub",
            "sub/up_link": "../readme.txt",
        }
        for name, target in links.items():
            os.symlink(target, os.path.join(r, name))

    FILE_LINKS = ("link_file", "link_abs", "chain1", "chain2", "sub/deep_link", "loop1",
                  "link_dir/secret.txt", "link_dir_abs/secret.txt", "sub/deep_dir/inner.txt",
                  "good_dirlink/../link_file", "link_dir/root/../secret.txt")
    DIR_LINKS = ("link_dir", "link_dir/", "link_dir/.", "link_dir_abs", "link_dir/outside_dir",
                 "sub/deep_dir", "good_dirlink/../link_dir")

    def _expect(self, c, line, code, outputs):
        r = c.cmd(line)
        outputs.append(r)
        self.assertTrue(r.startswith(code), "%s -> %s (expected %s)" % (line, r, code))
        return r

    def _expect_data(self, c, line, code, outputs, upload=None):
        prelim, data, final = transfer(c, line, upload=upload, limit=1 << 20)
        outputs += [prelim, data or b"", final or ""]
        self.assertTrue(prelim.startswith(code), "%s -> %s (expected %s)" % (line, prelim, code))
        return prelim, data, final

    def test_links_out_of_root_cannot_be_read(self):
        before = snapshot_outside(self.tmp, self.root)
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        out = []
        for p in self.FILE_LINKS:
            for verb in ("SIZE", "MDTM", "MLST"):
                self._expect(c, "%s %s" % (verb, p), "550", out)
            self._expect(c, "STAT " + p, "450", out)  # RFC 959 5.4: STAT's is 450
            for verb in ("RETR", "LIST", "NLST"):
                self._expect_data(c, "%s %s" % (verb, p), "550", out)
        for p in self.DIR_LINKS:
            for verb in ("CWD", "MLST", "SIZE"):
                self._expect(c, "%s %s" % (verb, p), "550", out)
            self._expect(c, "STAT " + p, "450", out)
            self.assertEqual(c.cmd("PWD"), '257 "/" is the current directory.')
            for verb in ("LIST", "NLST", "MLSD", "LIST -la"):
                self._expect_data(c, "%s %s" % (verb, p), "550", out)
        self.assertEqual([o for o in out if leaks(o)], [])
        self.assertEqual(snapshot_outside(self.tmp, self.root), before)

    def test_links_out_of_root_cannot_be_written(self):
        before = snapshot_outside(self.tmp, self.root)
        c = self.binary_session()
        out = []
        for p in ("link_dir/secret.txt", "link_dir_abs/secret.txt", "link_dir/new_outside.txt",
                  "sub/deep_dir/inner.txt", "sub/deep_dir/new.txt", "link_dir/outside_dir/x"):
            self._expect_data(c, "STOR " + p, "550", out, upload=b"overwrite")
        for p in ("link_file", "link_abs", "chain1", "sub/deep_link", "link_dir/secret.txt",
                  "sub/deep_dir/inner.txt"):
            self._expect_data(c, "APPE " + p, "550", out, upload=b"append")
            self._expect(c, "REST 4", "350", out)
            self._expect_data(c, "STOR " + p, "550", out, upload=b"rest")
        for p in ("link_dir/secret.txt", "link_dir_abs/secret.txt", "sub/deep_dir/inner.txt",
                  "link_dir/" + os.path.basename(self.root) + "/../secret.txt"):
            self._expect(c, "DELE " + p, "550", out)
            self._expect(c, "RNFR " + p, "550", out)
        for p in self.FILE_LINKS + self.DIR_LINKS:
            self._expect(c, "SITE CHMOD 777 " + p, "550", out)
            self._expect(c, "SITE UTIME 20300101000000 " + p, "550", out)
            self._expect(c, "MFMT 20300101000000 " + p, "550", out)
        for p in ("link_dir/outside_empty", "link_dir_abs/outside_empty", "link_dir/made_dir"):
            self._expect(c, "RMD " + p, "550", out)
            self._expect(c, "MKD " + p + "_new", "550", out)
        for p in ("link_dir/moved.txt", "link_dir_abs/moved.txt", "sub/deep_dir/moved.txt"):
            self._expect(c, "RNFR readme.txt", "350", out)
            self._expect(c, "RNTO " + p, "550", out)
        self.assertTrue(os.path.isfile(os.path.join(self.root, "readme.txt")))
        # STOU in a directory reached through an outside link: no such directory.
        self._expect(c, "CWD link_dir", "550", out)
        self._expect_data(c, "STOU", "150", out, upload=b"unique")  # lands in "/" of the root
        # Replacing or deleting the link itself is fine: the target stays as it was.
        self._expect_data(c, "STOR link_file", "150", out, upload=b"now a regular file\n")
        self.assertFalse(os.path.islink(os.path.join(self.root, "link_file")))
        self._expect(c, "DELE link_abs", "250", out)
        self._expect(c, "RNFR link_dir", "350", out)
        self._expect(c, "RNTO renamed_link_dir", "250", out)
        self.assertTrue(os.path.islink(os.path.join(self.root, "renamed_link_dir")))
        self.assertEqual(snapshot_outside(self.tmp, self.root), before)
        with open(os.path.join(self.tmp, "secret.txt"), "rb") as f:
            self.assertEqual(f.read(len(SECRET_CONTENT)), SECRET_CONTENT)
        self.assertEqual([o for o in out if leaks(o)], [])

    def test_links_that_stay_inside_work(self):
        c = self.binary_session()
        out = []
        _, data, final = self._expect_data(c, "RETR good_link", "150", out)
        self.assertEqual(data, b"hello from inside\n")
        self.assertTrue(final.startswith("226"))
        _, data, _ = self._expect_data(c, "RETR sub/up_link", "150", out)
        self.assertEqual(data, b"hello from inside\n")
        self._expect(c, "SIZE good_link", "213 18", out)
        self._expect(c, "CWD good_dirlink", "250", out)
        _, data, _ = self._expect_data(c, "RETR file.txt", "150", out)
        self.assertEqual(data, b"inside sub\n")
        self._expect(c, "CWD ..", "250", out)
        self.assertEqual(c.cmd("PWD"), '257 "/" is the current directory.')
        # A listing shows a link as a link; it does not follow it out.
        _, data, _ = self._expect_data(c, "LIST", "150", out)
        self.assertIn(b"link_file -> ../secret.txt", data)
        self.assertEqual(leaks(data), [])


class UserHomeJail(SecurityCase):
    """A virtual user's home is that user's root: other homes beside it are
    as unreachable as the outside."""

    def prepare_root(self):
        h = hash_password("alice-pw")
        users = os.path.join(self.tmp, "users")
        with open(users, "w") as f:
            f.write("alice:%s:%s:rw\n" % (h, os.path.join(self.root, "alice")))
            f.write("bob:%s:%s:ro\n" % (h, os.path.join(self.root, "bob")))
        os.chmod(users, 0o644)
        os.mkdir(os.path.join(self.root, "alice"))
        os.mkdir(os.path.join(self.root, "bob"))
        with open(os.path.join(self.root, "bob", "bob-private.txt"), "wb") as f:
            f.write(b"BOB-PRIVATE\n")
        self.ferryd_args = ("-u", users, "--no-anonymous")
        self.health_login = ("alice", "alice-pw")

    def test_users_stay_in_their_homes(self):
        c = self.raw()
        self.assertTrue(c.login("alice", "alice-pw").startswith("230"))
        c.cmd("TYPE I")
        for p in ("../bob/bob-private.txt", "/../bob/bob-private.txt", "../../root/bob/bob-private.txt",
                  os.path.join(self.root, "bob", "bob-private.txt")):
            self.assertTrue(transfer(c, "RETR " + p)[0].startswith("550"), p)
            self.assertTrue(c.cmd("SIZE " + p).startswith("550"), p)
            self.assertTrue(c.cmd("DELE " + p).startswith("550"), p)
            self.assertTrue(transfer(c, "STOR " + p, upload=b"x")[0].startswith("550"), p)
        self.assertTrue(c.cmd("CWD ..").startswith("250"))
        self.assertEqual(c.cmd("PWD"), '257 "/" is the current directory.')
        prelim, data, _ = transfer(c, "NLST -a")
        self.assertTrue(prelim.startswith("150"))
        self.assertNotIn(b"bob", data)
        self.assertNotIn(b"alice", data)
        self.assertTrue(os.path.exists(os.path.join(self.root, "bob", "bob-private.txt")))
        # bob is read-only: no command changes his home.
        b = self.raw()
        self.assertTrue(b.login("bob", "alice-pw").startswith("230"))
        self.assertTrue(b.cmd("DELE bob-private.txt").startswith("550"))
        self.assertTrue(b.cmd("MKD newdir").startswith("550"))
        self.assertTrue(b.cmd("RNFR bob-private.txt").startswith("550"))
        self.assertTrue(transfer(b, "STOR new.txt", upload=b"x")[0].startswith("550"))
        self.assertTrue(transfer(b, "APPE bob-private.txt", upload=b"x")[0].startswith("550"))
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "bob"))), ["bob-private.txt"])


class ReadOnlyAnonymous(SecurityCase):
    """Without -w anonymous users change nothing, whatever the command."""

    def prepare_root(self):
        with open(os.path.join(self.root, "keep.txt"), "wb") as f:
            f.write(b"keep me\n")
        os.mkdir(os.path.join(self.root, "keepdir"))

    def test_no_write_command_works(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        mode = os.stat(os.path.join(self.root, "keep.txt")).st_mode
        for line in ("DELE keep.txt", "RMD keepdir", "MKD newdir", "XMKD newdir", "XRMD keepdir",
                     "RNFR keep.txt", "RNTO other.txt", "SITE CHMOD 777 keep.txt",
                     "SITE UTIME 20300101000000 keep.txt", "MFMT 20300101000000 keep.txt"):
            self.assertTrue(c.cmd(line).startswith("550"), line)
        for line in ("STOR keep.txt", "STOR new.txt", "APPE keep.txt", "STOU"):
            self.assertTrue(transfer(c, line, upload=b"x")[0].startswith("550"), line)
        self.assertEqual(sorted(os.listdir(self.root)), ["keep.txt", "keepdir"])
        self.assertEqual(os.stat(os.path.join(self.root, "keep.txt")).st_mode, mode)
        with open(os.path.join(self.root, "keep.txt"), "rb") as f:
            self.assertEqual(f.read(), b"keep me\n")


class RootAndDepth(SecurityCase):
    """The root itself cannot be removed or renamed; very deep and very long
    paths end cleanly."""

    ferryd_args = ("-w",)

    def prepare_root(self):
        with open(os.path.join(self.root, "keep.txt"), "wb") as f:
            f.write(b"keep me\n")

    def test_root_cannot_be_removed_or_renamed(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        for line in ("DELE /", "RMD /", "RNFR /", "RMD .", "RMD ..", "DELE ..", "DELE .", "RMD //",
                     "RNFR .", "RNFR ..", "RNFR /..", "XRMD /", "MKD /", "MKD ..", "RMD /../..",
                     "DELE /./", "RMD " + self.root):
            self.assertTrue(c.cmd(line)[0] in "45", line)
        for line in ("STOR /", "STOR .", "APPE /", "STOR ..", "STOR /../"):
            self.assertTrue(transfer(c, line, upload=b"x")[0].startswith("5"), line)
        self.assertEqual(os.listdir(self.root), ["keep.txt"])
        self.assertTrue(c.cmd("RNFR keep.txt").startswith("350"))
        self.assertTrue(c.cmd("RNTO /")[0] in "45")
        self.assertTrue(os.path.isfile(os.path.join(self.root, "keep.txt")))

    def test_chmod_never_sets_setid_bits(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        target = os.path.join(self.root, "keep.txt")
        for mode in ("4755", "2755", "6777", "7777", "04755"):
            self.assertTrue(c.cmd("SITE CHMOD %s keep.txt" % mode).startswith("200"), mode)
            self.assertEqual(os.stat(target).st_mode & 0o6000, 0, mode)
        for mode in ("17777", "-1", "999", "4755x", "0x1ff"):
            self.assertTrue(c.cmd("SITE CHMOD %s keep.txt" % mode).startswith("501"), mode)
        self.assertEqual(os.stat(target).st_mode & 0o6000, 0)

    def test_mkd_a_thousand_levels_deep(self):
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", os.path.join(self.root, "d")], timeout=60))
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        c.send("MKD d\r\nCWD d\r\n" * DEEP_LEVELS)
        for i in range(DEEP_LEVELS):
            self.assertTrue(c.reply().startswith("257"), i)
            self.assertTrue(c.reply().startswith("250"), i)
        pwd = c.cmd("PWD")
        self.assertEqual(pwd, '257 "%s" is the current directory.' % ("/d" * DEEP_LEVELS))
        self.assertTrue(os.path.isdir(os.path.join(self.root, *["d"] * DEEP_LEVELS)))
        prelim, data, final = transfer(c, "LIST -a")
        self.assertTrue(final.startswith("226"))
        # Past the longest path: a clean 553, never a crash.
        long_name = "x" * 250
        codes = []
        for _ in range(16):
            r = c.cmd("MKD " + long_name)
            codes.append(r[:3])
            if not r.startswith("257"):
                break
            self.assertTrue(c.cmd("CWD " + long_name).startswith("250"))
        self.assertIn(codes[-1], ("553", "550"), codes)
        self.assertTrue(c.cmd("CWD " + "/d" * DEEP_LEVELS).startswith("250"))
        self.assertTrue(c.cmd("CDUP").startswith("250"))
        self.assertTrue(c.cmd("RMD " + "d/" + long_name).startswith("5"))  # not empty or absent
        self.assertTrue(c.cmd("NOOP").startswith("200"))


class ReplyForging(SecurityCase):
    """File names holding CR, LF and reply codes cannot add a line to the
    control connection, nor split a listing line on the data connection."""

    EVIL = ("a\r\n226 forged-by-name", "b\n530 forged-by-name", "c\r200 forged-by-name",
            "e\n\n\n213 End of status.")

    def prepare_root(self):
        d = os.path.join(self.root, "evil")
        os.mkdir(d)
        for n in self.EVIL:
            with open(os.path.join(d, n), "wb") as f:
                f.write(b"x")
        os.symlink("x\r\n421 forged-by-link", os.path.join(d, "d"))

    def test_stat_listing_cannot_forge_a_reply(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        for arg in ("evil", "-la evil", "evil/"):
            r = c.cmd("STAT " + arg)
            lines = r.split("\n")
            self.assertTrue(lines[0].startswith("213-"), r)
            self.assertTrue(lines[-1].startswith("213 End of status"), r)
            for ln in lines[1:-1]:
                self.assertTrue(ln.startswith(" "), "reply line not indented: %r" % ln)
            self.assertEqual(len(lines), 9 if "-la" in arg else 7, r)
            self.assertEqual(len([ln for ln in lines if "forged" in ln]), 4, r)
            # The next reply is NOOP's own: nothing forged was left over.
            self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")
        self.assertEqual(c.buf, b"")

    def test_listings_keep_one_line_per_name(self):
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        for verb in ("LIST", "NLST", "MLSD"):
            prelim, data, final = transfer(c, verb + " evil")
            self.assertTrue(final.startswith("226"), final)
            self.assertTrue(data.endswith(b"\r\n"))
            lines = data[:-2].split(b"\r\n")
            self.assertEqual(len(lines), 5, (verb, data))
            for ln in lines:
                self.assertNotIn(b"\r", ln)
                self.assertNotIn(b"\n", ln)
            self.assertEqual(c.cmd("NOOP"), "200 NOOP ok.")


class OddNames(SecurityCase):
    """Spaces, leading dashes, UTF-8 and glob characters are names, nothing
    more: no options, no expansion, no recursion."""

    ferryd_args = ("-w",)
    NAMES = {"my file.txt": b"spaces\n", " lead and trail ": b"edges\n", "-la": b"dash la\n",
             "-rf": b"dash rf\n", "--help": b"dash help\n", "na\u00efve-\u65e5\u672c.txt": b"utf8\n"}

    def prepare_root(self):
        for n, content in self.NAMES.items():
            with open(os.path.join(self.root, n), "wb") as f:
                f.write(content)
        g = os.path.join(self.root, "globdir")
        os.mkdir(g)
        for n in ("a1", "a2", "*", "[a]"):
            with open(os.path.join(g, n), "wb") as f:
                f.write(n.encode())
        os.mkdir(os.path.join(self.root, "sub"))
        with open(os.path.join(self.root, "sub", "inner-only.txt"), "wb") as f:
            f.write(b"inner")

    def test_names_are_taken_literally(self):
        c = self.binary_session()
        for n, content in self.NAMES.items():
            self.assertEqual(c.cmd("SIZE " + n), "213 %d" % len(content), n)
            _, data, final = transfer(c, "RETR " + n)
            self.assertEqual(data, content, n)
        self.assertTrue(c.cmd("DELE -rf").startswith("250"))
        self.assertFalse(os.path.exists(os.path.join(self.root, "-rf")))
        self.assertTrue(os.path.exists(os.path.join(self.root, "-la")))
        self.assertTrue(os.path.exists(os.path.join(self.root, "--help")))
        _, data, _ = transfer(c, "NLST")
        self.assertIn("na\u00efve-\u65e5\u672c.txt".encode(), data.split(b"\r\n"))
        self.assertTrue(transfer(c, "STOR new \u00fcml\u00e4ut.txt", upload=b"u")[2].startswith("226"))
        self.assertTrue(os.path.exists(os.path.join(self.root, "new \u00fcml\u00e4ut.txt")))

    def test_patterns_stay_in_one_directory(self):
        """LIST/NLST match a pattern in the last component only, within one
        directory; an existing name always wins; nothing recurses."""
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        # A name that exists is taken literally, wildcards or not.
        self.assertEqual(transfer(c, "NLST globdir/*")[1], b"globdir/*\r\n")
        self.assertEqual(transfer(c, "NLST globdir/[a]")[1], b"globdir/[a]\r\n")
        _, data, _ = transfer(c, "NLST globdir/a?")
        self.assertEqual(sorted(data.split(b"\r\n")), [b"", b"globdir/a1", b"globdir/a2"])
        # Wildcards before the last component are literal names.
        for arg in ("*/a1", "glob*/a1", "g?obdir/a?", "**/**/**/**", "globdir/" + "*" * 3000,
                    "globdir/*a*b*c*d*e*f*g"):
            prelim = transfer(c, "NLST " + arg)[0]
            self.assertTrue(prelim[:3] in ("550", "553"), (arg[:40], prelim))
        # "*/../" cancels lexically: this is one listing of the root, no more.
        for arg in ("*/../*/../*/../*", "*/../" * 600 + "*"):
            prelim, data, final = transfer(c, "NLST " + arg)
            self.assertTrue(final.startswith("226"), final)
            self.assertNotIn(b"inner-only.txt", data)
            leaves = [n.rsplit(b"/", 1)[-1] for n in data.split(b"\r\n")]
            self.assertIn(b"globdir", leaves)
            self.assertNotIn(b"a1", leaves)
        # -R is an option ferryd ignores: the listing does not recurse.
        _, data, _ = transfer(c, "NLST -R")
        names = data.split(b"\r\n")
        self.assertIn(b"sub", names)
        self.assertNotIn(b"inner-only.txt", data)
        _, data, _ = transfer(c, "LIST -R -a")
        self.assertNotIn(b"inner-only.txt", data)

    def test_backtracking_patterns_do_not_stall(self):
        d = os.path.join(self.root, "longnames")
        os.mkdir(d)
        for i in range(2000):
            with open(os.path.join(d, "a" * 240 + "%05d" % i), "wb"):
                pass
        c = self.raw()
        b = self.raw()
        self.assertTrue(c.login().startswith("230"))
        self.assertTrue(b.login().startswith("230"))
        for pat in ("*a*a*a*b", "*a*a*b*", "*?*?*?*b?", "a*a*a*a*ba", "*[a]*[a]*[a]*b"):
            port = pasv_port(c)
            dsock = connect_from("127.0.0.1", port)
            c.send("NLST longnames/%s\r\n" % pat)
            b.send("NOOP\r\n")
            self.assertEqual(read_reply_within(b, 5), "200 NOOP ok.", pat)
            r = read_reply_within(c, 20)
            self.assertIsNotNone(r, pat)
            if r.startswith("150"):
                self.assertEqual(recv_all(dsock), b"", pat)
                self.assertTrue(read_reply_within(c, 20).startswith("226"))
            dsock.close()


class HugeDirectory(SecurityCase):
    """A listing of HUGE_DIR_ENTRIES entries is complete and streams in
    slices: another session on the same worker answers meanwhile."""

    ferryd_args = ("--workers", "1")

    def test_huge_listing_keeps_others_responsive(self):
        big = os.path.join(self.root, "big")
        os.mkdir(big, 0o755)
        dfd = os.open(big, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(HUGE_DIR_ENTRIES):
                os.close(os.open("f%06d" % i, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=dfd))
        finally:
            os.close(dfd)
        self.addCleanup(shutil.rmtree, big, True)
        a = self.raw()
        b = self.raw()
        self.assertTrue(a.login().startswith("230"))
        self.assertTrue(b.login().startswith("230"))
        for verb in ("LIST", "NLST"):
            port = pasv_port(a)
            d = connect_from("127.0.0.1", port)
            self.assertTrue(a.cmd(verb + " big").startswith("150"))
            first = d.recv(4096)  # the listing has started; now leave it waiting
            self.assertTrue(first)
            for _ in range(3):
                b.send("NOOP\r\n")
                r = read_reply_within(b, 5)
                self.assertEqual(r, "200 NOOP ok.", "a session stalled behind a listing")
            result = {}

            def reader():
                result["data"] = first + recv_all(d, limit=1 << 27)

            t = threading.Thread(target=reader)
            t.start()
            pings = 0
            while t.is_alive() and pings < 200:
                b.send("NOOP\r\n")
                self.assertEqual(read_reply_within(b, 5), "200 NOOP ok.")
                pings += 1
            t.join(TIMEOUT)
            self.assertFalse(t.is_alive())
            d.close()
            self.assertTrue(a.reply().startswith("226"))
            lines = result["data"].split(b"\r\n")
            self.assertEqual(lines[-1], b"")
            self.assertEqual(len(lines) - 1, HUGE_DIR_ENTRIES, verb)
        # STAT over the control connection stays bounded.
        r = a.cmd("STAT big")
        self.assertTrue(r.split("\n")[-1][:3] in ("213", "451"), r[-200:])
        self.assertEqual(a.cmd("NOOP"), "200 NOOP ok.")


class SpecialFiles(SecurityCase):
    """A FIFO inside the root: no command that opens it may block the
    worker (everyone on that worker would stall)."""

    ferryd_args = ("-w", "--workers", "1", "--data-timeout", "2")

    def prepare_root(self):
        os.mkfifo(os.path.join(self.root, "fifo"))
        with open(os.path.join(self.root, "plain.txt"), "wb") as f:
            f.write(b"plain\n")

    def _unblock(self):
        # Should ferryd block opening the FIFO for writing, a reader lets it go on.
        try:
            fd = os.open(os.path.join(self.root, "fifo"), os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return
        time.sleep(0.2)
        os.close(fd)

    def _other_session_answers(self, b, what):
        b.send("NOOP\r\n")
        r = read_reply_within(b, 5)
        if r is None:
            self._unblock()
        self.assertEqual(r, "200 NOOP ok.", "the worker stalled on " + what)

    def test_fifo_never_blocks_the_worker(self):
        a = self.raw()
        b = self.raw()
        self.assertTrue(a.login().startswith("230"))
        self.assertTrue(b.login().startswith("230"))
        for line in ("RETR fifo", "LIST fifo", "NLST fifo", "APPE fifo", "REST 1", "STOR fifo", "MLSD fifo"):
            if line.startswith("REST"):
                self.assertTrue(a.cmd(line).startswith("350"))
                continue
            port = pasv_port(a)
            d = connect_from("127.0.0.1", port)
            a.send(line + "\r\n")
            self._other_session_answers(b, line)
            r = read_reply_within(a, 10)
            self.assertIsNotNone(r, line)
            if r.startswith("1"):
                d.close()
                self.assertIsNotNone(read_reply_within(a, 10), line)
            d.close()
            if line == "RETR fifo":
                self.assertTrue(r.startswith("550"), r)
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(self.root, "fifo")).st_mode))
        self._other_session_answers(b, "the end")
