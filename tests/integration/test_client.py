"""ferry against real servers: Debian's pyftpdlib and ferryd, each in
passive and active mode. One-shot commands, scripts on stdin, every shell
command, byte-exact transfers (binary and TYPE A), resume, globs."""
import hashlib
import os
import re
import stat
import threading

from harness import make_file, sha256_file
from test_client_support import ServerFixture, err, out

SUMMARY = re.compile(r"^(?P<name>.+): (?P<bytes>\d+) bytes (?P<dir>sent|received) in "
                     r"(?P<secs>\d+\.\d\d) s \((?P<rate>\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)/s)\)$", re.M)

MIB = 1024 * 1024


class ClientSuite:
    """Every test here runs against each server in each data mode."""

    # --- transfers -------------------------------------------------------

    def test_get_binary_exact_with_summary(self):
        make_file(self.rpath("big.bin"), 5 * MIB + 123, seed=7)
        p = self.oneshot("get", "big.bin")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.lpath("big.bin")), sha256_file(self.rpath("big.bin")))
        m = SUMMARY.search(out(p))
        self.assertIsNotNone(m, out(p))
        self.assertEqual(m.group("name"), "big.bin")
        self.assertEqual(int(m.group("bytes")), 5 * MIB + 123)
        self.assertEqual(m.group("dir"), "received")
        # Not a terminal: never a progress bar.
        self.assertNotIn("\r", out(p))
        self.assertNotIn("%", out(p))
        self.assertNoTemp(self.local)

    def test_put_binary_exact(self):
        make_file(self.lpath("up.bin"), 3 * MIB + 1, seed=8)
        p = self.oneshot("put", "up.bin", "stored.bin")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.rpath("stored.bin")), sha256_file(self.lpath("up.bin")))
        m = SUMMARY.search(out(p))
        self.assertIsNotNone(m, out(p))
        self.assertEqual((m.group("name"), int(m.group("bytes")), m.group("dir")),
                         ("up.bin", 3 * MIB + 1, "sent"))

    def test_zero_byte_files(self):
        open(self.rpath("empty.remote"), "wb").close()
        open(self.lpath("empty.local"), "wb").close()
        p = self.script("get empty.remote\nput empty.local\n")
        self.assertOk(p)
        self.assertEqual(os.path.getsize(self.lpath("empty.remote")), 0)
        self.assertEqual(os.path.getsize(self.rpath("empty.local")), 0)
        self.assertEqual(len(SUMMARY.findall(out(p))), 2)
        self.assertIn("empty.remote: 0 bytes received", out(p))

    def test_ascii_roundtrip_is_byte_exact(self):
        make_file(self.lpath("notes.txt"), 200000, seed=9, text=True)
        p = self.script("ascii\nput notes.txt\nget notes.txt back.txt\n")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.rpath("notes.txt")), sha256_file(self.lpath("notes.txt")))
        self.assertEqual(sha256_file(self.lpath("back.txt")), sha256_file(self.lpath("notes.txt")))

    def test_ascii_put_counts_the_bytes_sent(self):
        # 29 bytes with three LFs cross the data connection as 32 (CRLF)
        with open(self.lpath("three.txt"), "wb") as f:
            f.write(b"line one\nline two\nline three\n")
        p = self.script("ascii\nput three.txt\n")
        self.assertOk(p)
        m = SUMMARY.search(out(p))
        self.assertIsNotNone(m, out(p))
        self.assertEqual((m.group("name"), int(m.group("bytes")), m.group("dir")), ("three.txt", 32, "sent"))

    def test_ascii_get_converts_crlf(self):
        # The server stores CRLF lines; TYPE A keeps a CR only where the wire
        # had a lone one, binary keeps every byte.
        with open(self.rpath("dos.txt"), "wb") as f:
            f.write(b"one\r\ntwo\r\n")
        p = self.script("binary\nget dos.txt bin.txt\n")
        self.assertOk(p)
        with open(self.lpath("bin.txt"), "rb") as f:
            self.assertEqual(f.read(), b"one\r\ntwo\r\n")

    def test_get_over_a_file_keeps_its_owner_and_mode(self):
        """The file is replaced (a new inode), but with the old one's
        permission bits and owner: a private file stays private."""
        with open(self.rpath("secret.txt"), "wb") as f:
            f.write(b"new contents\n")
        old = self.lpath("secret.txt")
        with open(old, "wb") as f:
            f.write(b"old\n")
        os.chmod(old, 0o600)
        os.link(old, self.lpath("hardlink"))
        if os.geteuid() == 0:
            os.chown(old, 65534, 65534)
        before = os.stat(old)
        mask = os.umask(0o022)
        try:
            p = self.oneshot("get", "secret.txt")
        finally:
            os.umask(mask)
        self.assertOk(p)
        now = os.stat(old)
        self.assertEqual(stat.S_IMODE(now.st_mode), 0o600)
        self.assertEqual((now.st_uid, now.st_gid), (before.st_uid, before.st_gid))
        with open(old, "rb") as f:
            self.assertEqual(f.read(), b"new contents\n")
        with open(self.lpath("hardlink"), "rb") as f:
            self.assertEqual(f.read(), b"old\n")
        self.assertNoTemp(self.local)
        # a new file gets the mode a plain create would
        mask = os.umask(0o022)
        try:
            p = self.oneshot("get", "secret.txt", "fresh.txt")
        finally:
            os.umask(mask)
        self.assertOk(p)
        self.assertEqual(stat.S_IMODE(os.stat(self.lpath("fresh.txt")).st_mode), 0o644)
        # no temporary file can be made: said so, nothing written in place
        p = self.oneshot("get", "secret.txt", "no-such-dir/secret.txt")
        self.assertFailed(p)
        self.assertEqual(err(p).strip(), "local: cannot create a temporary file beside "
                                         "no-such-dir/secret.txt: No such file or directory")

    def test_get_a_name_too_long_for_the_usual_temporary_name(self):
        """A 250-byte name leaves no room for ".NAME.ferry-XXXXXX" within
        NAME_MAX: the download goes through a shorter temporary name."""
        name = "n" * 246 + ".bin"
        make_file(self.rpath(name), 300000, seed=12)
        p = self.oneshot("get", name)
        self.assertOk(p)
        self.assertEqual(sha256_file(self.lpath(name)), sha256_file(self.rpath(name)))
        self.assertEqual(os.listdir(self.local), [name])

    def test_get_to_stdout(self):
        with open(self.rpath("hello.txt"), "wb") as f:
            f.write(b"hello, ferry\n")
        p = self.oneshot("get", "hello.txt", "-")
        self.assertOk(p)
        self.assertEqual(p.stdout, b"hello, ferry\n")
        self.assertIn("hello.txt: 13 bytes received", err(p))

    def test_get_into_fifo_writes_in_place(self):
        # A FIFO (or device) named as the local file is written in place: a
        # temporary file renamed over it would replace the FIFO itself.
        make_file(self.rpath("piped.bin"), 300000, seed=11)
        fifo = self.lpath("pipe")
        os.mkfifo(fifo)
        got = []

        def drain():
            with open(fifo, "rb") as f:
                got.append(hashlib.sha256(f.read()).hexdigest())
        th = threading.Thread(target=drain, daemon=True)
        th.start()
        p = self.oneshot("get", "piped.bin", fifo)
        th.join(30)
        self.assertOk(p)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assertEqual(got, [sha256_file(self.rpath("piped.bin"))])
        self.assertNoTemp(self.local)

    def test_get_into_null_device_keeps_the_device(self):
        if os.geteuid() != 0:
            self.skipTest("making a device node needs root")
        make_file(self.rpath("sink.bin"), 2 * MIB, seed=12)
        dev = self.lpath("null")
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        p = self.oneshot("get", "sink.bin", dev)
        self.assertOk(p)
        st = os.lstat(dev)
        self.assertTrue(stat.S_ISCHR(st.st_mode), stat.filemode(st.st_mode))
        self.assertEqual(st.st_rdev, os.makedev(1, 3))
        self.assertIn("sink.bin: %d bytes received" % (2 * MIB), out(p))
        self.assertNoTemp(self.local)

    def test_reget_resumes_partial_download(self):
        make_file(self.rpath("resume.bin"), 2 * MIB + 77, seed=10)
        with open(self.rpath("resume.bin"), "rb") as src, open(self.lpath("resume.bin"), "wb") as dst:
            dst.write(src.read(700001))
        p = self.oneshot("reget", "resume.bin")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.lpath("resume.bin")), sha256_file(self.rpath("resume.bin")))
        m = SUMMARY.search(out(p))
        self.assertEqual(int(m.group("bytes")), 2 * MIB + 77 - 700001)

    def test_reput_resumes_partial_upload(self):
        make_file(self.lpath("resume.bin"), 2 * MIB + 5, seed=11)
        with open(self.lpath("resume.bin"), "rb") as src, open(self.rpath("resume.bin"), "wb") as dst:
            dst.write(src.read(1000000))
        p = self.oneshot("reput", "resume.bin")
        self.assertOk(p)
        self.assertEqual(sha256_file(self.rpath("resume.bin")), sha256_file(self.lpath("resume.bin")))
        m = SUMMARY.search(out(p))
        self.assertEqual(int(m.group("bytes")), 2 * MIB + 5 - 1000000)

    def test_append(self):
        with open(self.rpath("log.txt"), "wb") as f:
            f.write(b"first\n")
        with open(self.lpath("more.txt"), "wb") as f:
            f.write(b"second\n")
        p = self.oneshot("append", "more.txt", "log.txt")
        self.assertOk(p)
        with open(self.rpath("log.txt"), "rb") as f:
            self.assertEqual(f.read(), b"first\nsecond\n")

    def test_names_with_spaces_and_quotes(self):
        with open(self.lpath("my file.txt"), "wb") as f:
            f.write(b"spaced\n")
        p = self.script('put "my file.txt" "remote name.txt"\n'
                        'get remote\\ name.txt \'back copy.txt\'\n')
        self.assertOk(p)
        with open(self.rpath("remote name.txt"), "rb") as f:
            self.assertEqual(f.read(), b"spaced\n")
        with open(self.lpath("back copy.txt"), "rb") as f:
            self.assertEqual(f.read(), b"spaced\n")
        # One-shot: the shell already split the words.
        p = self.oneshot("get", "remote name.txt", "third copy.txt")
        self.assertOk(p)
        self.assertTrue(os.path.exists(self.lpath("third copy.txt")))

    def test_mget_mput_mdelete(self):
        for i in range(3):
            with open(self.rpath("r%d.dat" % i), "wb") as f:
                f.write(b"remote %d\n" % i)
        with open(self.rpath("skip.txt"), "wb") as f:
            f.write(b"no\n")
        os.mkdir(self.rpath("dir.dat"))
        for i in range(2):
            with open(self.lpath("l%d.up" % i), "wb") as f:
                f.write(b"local %d\n" % i)
        p = self.script("mget *.dat\nmput *.up\nmdelete r*.dat\n")
        self.assertOk(p)
        for i in range(3):
            with open(self.lpath("r%d.dat" % i), "rb") as f:
                self.assertEqual(f.read(), b"remote %d\n" % i)
            self.assertFalse(os.path.exists(self.rpath("r%d.dat" % i)))
        self.assertFalse(os.path.exists(self.lpath("skip.txt")))
        for i in range(2):
            with open(self.rpath("l%d.up" % i), "rb") as f:
                self.assertEqual(f.read(), b"local %d\n" % i)
        self.assertTrue(os.path.exists(self.rpath("skip.txt")))

    def test_mget_in_subdirectory(self):
        os.mkdir(self.rpath("sub"))
        for n in ("a.log", "b.log"):
            with open(self.rpath("sub", n), "wb") as f:
                f.write(n.encode())
        p = self.script("mget sub/*.log\n")
        self.assertOk(p)
        self.assertEqual(sorted(n for n in os.listdir(self.local) if n.endswith(".log")), ["a.log", "b.log"])

    def test_mget_no_match_fails(self):
        p = self.script("mget *.nothing\n")
        self.assertFailed(p)
        self.assertIn("no match", err(p))

    # --- directory and file commands ---------------------------------------

    def test_directory_commands(self):
        p = self.script("pwd\nmkdir sub\ncd sub\npwd\ncdup\npwd\nrmdir sub\n")
        self.assertOk(p)
        self.assertEqual(out(p).split("\n")[:3], ["/", "/sub", "/"])
        self.assertFalse(os.path.exists(self.rpath("sub")))

    def test_ls_dir_nlist(self):
        with open(self.rpath("listed.txt"), "wb") as f:
            f.write(b"x" * 1234)
        os.mkdir(self.rpath("adir"))
        p = self.oneshot("ls")
        self.assertOk(p)
        line = [ln for ln in out(p).splitlines() if ln.endswith("listed.txt")]
        self.assertEqual(len(line), 1, out(p))
        self.assertIn("1234", line[0])
        self.assertNotIn("\r", out(p))
        p = self.script("dir adir\nnlist\n")
        self.assertOk(p)
        self.assertIn("adir", out(p).splitlines())
        self.assertIn("listed.txt", [os.path.basename(n) for n in out(p).splitlines()])

    def test_delete_rename_size_modtime(self):
        with open(self.rpath("a.txt"), "wb") as f:
            f.write(b"12345")
        os.utime(self.rpath("a.txt"), (1700000000, 1700000000))
        p = self.script("size a.txt\nmodtime a.txt\nrename a.txt b.txt\ndelete b.txt\n")
        self.assertOk(p)
        lines = out(p).splitlines()
        self.assertEqual(lines[0], "5")
        self.assertEqual(lines[1], "2023-11-14 22:13:20 UTC")
        self.assertFalse(os.path.exists(self.rpath("a.txt")))
        self.assertFalse(os.path.exists(self.rpath("b.txt")))

    def test_chmod_and_mv(self):
        with open(self.rpath("m.txt"), "wb") as f:
            f.write(b"mode")
        os.chmod(self.rpath("m.txt"), 0o644)
        p = self.script("chmod 600 m.txt\nmv m.txt n.txt\n")
        self.assertOk(p)
        self.assertEqual(os.stat(self.rpath("n.txt")).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(self.rpath("m.txt")))
        # a mode that is not octal never reaches the server
        p = self.script("chmod u+x n.txt\n", "-v")
        self.assertFailed(p)
        self.assertIn("chmod: u+x: the mode must be octal, as 644", err(p).splitlines())
        self.assertNotIn("SITE", out(p) + err(p))
        # a missing file is the server's error, on one line
        p = self.script("chmod 644 nothing-here\n")
        self.assertFailed(p)
        self.assertRegex(err(p), r"^55\d ")
        self.assertEqual(os.stat(self.rpath("n.txt")).st_mode & 0o777, 0o600)

    def test_del_alias_and_missing_file(self):
        p = self.script("del nothing-here\n")
        self.assertFailed(p)
        self.assertRegex(err(p), r"^55\d ")
        self.assertEqual(len(err(p).strip().splitlines()), 1)

    def test_session_and_setting_commands(self):
        p = self.script("system\nstatus\ntype\nascii\ntype\nbinary\nimage\ntype i\n"
                        "passive\npassive on\nverbose off\nprogress off\nquote NOOP\nliteral NOOP\n"
                        "help\nhelp get\n? ls\nlpwd\nlls\nlcd /\nlpwd\n")
        self.assertOk(p)
        o = out(p)
        self.assertRegex(o, r"(?m)^215 ")
        self.assertIn("Connected to %s port %d as anonymous." % (self.host, self.port), o)
        self.assertIn("Using binary mode to transfer files.", o)
        self.assertIn("Using ascii mode to transfer files.", o)
        self.assertRegex(o, r"(?m)^200")
        self.assertIn("get REMOTE [LOCAL]", o)
        self.assertIn("also: recv", o)
        self.assertIn("also: dir", o)
        self.assertIn(self.local + "\n", o)
        self.assertTrue(o.rstrip().endswith("\n/"), o[-200:])

    def test_site_command(self):
        p = self.script("site HELP\n")
        # SITE HELP is optional for servers; either way one clean result.
        if p.returncode == 0:
            self.assertRegex(out(p), r"(?m)^2\d\d")
        else:
            self.assertRegex(err(p), r"(?m)^5\d\d")

    def test_user_close_open(self):
        p = self.ferry("-n", self.host, str(self.port),
                       input="ls\nuser anonymous x@y\npwd\nclose\npwd\nopen %s %d\n"
                             "user anonymous\npwd\nbye\npwd\n"
                       % (self.host, self.port))
        self.assertFailed(p)
        self.assertIn("ls: not logged in", err(p))
        self.assertIn("pwd: not connected", err(p))
        self.assertEqual(out(p).splitlines(), ["/", "/"])

    def test_login_named_user(self):
        if self.server_kind != "pyftpdlib":
            self.skipTest("alice exists on the pyftpdlib fixture only")
        p = self.ferry("-u", "alice", "--password", "secret", self.host, str(self.port), "pwd")
        self.assertOk(p)
        p = self.ferry("-u", "alice", self.host, str(self.port), "pwd", env={"FERRY_PASSWORD": "secret"})
        self.assertOk(p)
        netrc = os.path.join(self.home, "netrc")
        with open(netrc, "w") as f:
            f.write("machine %s login alice password secret\n" % self.host)
        os.chmod(netrc, 0o600)
        p = self.ferry(self.host, str(self.port), "pwd", env={"NETRC": netrc})
        self.assertOk(p)
        p = self.ferry("-u", "alice", "--password", "wrong", self.host, str(self.port), "pwd")
        self.assertFailed(p)
        self.assertRegex(err(p), r"login: 530")

    # --- URLs ---------------------------------------------------------------

    def test_url_download_list_upload(self):
        with open(self.rpath("u.txt"), "wb") as f:
            f.write(b"via url\n")
        os.mkdir(self.rpath("d"))
        base = self.url()
        p = self.ferry(base + "u.txt")
        self.assertOk(p)
        with open(self.lpath("u.txt"), "rb") as f:
            self.assertEqual(f.read(), b"via url\n")
        p = self.ferry(base + "u.txt", "renamed.txt")
        self.assertOk(p)
        self.assertTrue(os.path.exists(self.lpath("renamed.txt")))
        p = self.ferry(base)
        self.assertOk(p)
        self.assertIn("u.txt", out(p))
        with open(self.lpath("up load.txt"), "wb") as f:
            f.write(b"up\n")
        p = self.ferry("-T", "up load.txt", base + "d/")
        self.assertOk(p)
        with open(self.rpath("d", "up load.txt"), "rb") as f:
            self.assertEqual(f.read(), b"up\n")
        p = self.ferry(base + "d/up%20load.txt", "-")
        self.assertOk(p)
        self.assertEqual(p.stdout, b"up\n")

    def test_url_listing_goes_to_local(self):
        """ftp://host/dir/ LOCAL stores the listing in LOCAL, as a download
        is stored (replacing the file whole), and prints nothing."""
        os.mkdir(self.rpath("d"))
        with open(self.rpath("d", "listed.txt"), "wb") as f:
            f.write(b"x\n")
        with open(self.lpath("listing.txt"), "wb") as f:
            f.write(b"old listing that is longer than the new one will be, surely\n" * 20)
        p = self.ferry(self.url("d/"), "listing.txt")
        self.assertOk(p)
        self.assertEqual(out(p), "")
        with open(self.lpath("listing.txt"), "rb") as f:
            text = f.read()
        self.assertIn(b"listed.txt", text)
        self.assertNotIn(b"old listing", text)
        self.assertNotIn(b"\r\n", text)
        self.assertNoTemp(self.local)

    def test_url_typecodes(self):
        """RFC 1738 ;type=a|i|d: ASCII, binary, a listing of names; never
        sent as part of the name."""
        with open(self.rpath("t.txt"), "wb") as f:
            f.write(b"one\ntwo\n")
        os.mkdir(self.rpath("d"))
        with open(self.rpath("d", "listed.txt"), "wb") as f:
            f.write(b"x\n")
        p = self.ferry("-v", self.url("t.txt;type=a"), "-")
        self.assertOk(p)
        self.assertEqual(p.stdout, b"one\ntwo\n")
        self.assertRegex(err(p), r"(?m)^--> TYPE A$")
        self.assertRegex(err(p), r"(?m)^--> RETR t\.txt$")
        p = self.ferry("-v", self.url("t.txt;type=i"), "copy.txt")
        self.assertOk(p)
        self.assertRegex(err(p), r"(?m)^--> TYPE I$")
        with open(self.lpath("copy.txt"), "rb") as f:
            self.assertEqual(f.read(), b"one\ntwo\n")
        p = self.ferry("-v", self.url("d;type=d"))
        self.assertOk(p)
        self.assertRegex(err(p), r"(?m)^--> NLST d$")
        self.assertEqual([l.rsplit("/", 1)[-1] for l in out(p).splitlines()], ["listed.txt"])

    # --- failures -------------------------------------------------------------

    def test_get_missing_file_leaves_nothing(self):
        p = self.oneshot("get", "missing.bin")
        self.assertFailed(p)
        self.assertRegex(err(p), r"^get: 55\d ")
        self.assertEqual(os.listdir(self.local), [])

    def test_put_unreadable_local(self):
        p = self.oneshot("put", "does-not-exist")
        self.assertFailed(p)
        self.assertEqual(err(p).strip(), "local: cannot open does-not-exist: No such file or directory")

    def test_script_goes_on_after_failures(self):
        with open(self.rpath("ok.txt"), "wb") as f:
            f.write(b"ok\n")
        p = self.script("bogus\nget\nget missing\nget ok.txt\n")
        self.assertFailed(p)
        self.assertIn('unknown command "bogus"', err(p))
        self.assertIn("usage: get REMOTE [LOCAL]", err(p))
        self.assertTrue(os.path.exists(self.lpath("ok.txt")))

    def test_script_all_success_exit_zero(self):
        p = self.script("# a comment\n\npwd\n  PWD  \nbye\npwd\n")
        self.assertOk(p)
        self.assertEqual(out(p).splitlines(), ["/", "/"])


class TestClientPyftpdPassive(ClientSuite, ServerFixture):
    server_kind = "pyftpdlib"
    active = False


class TestClientPyftpdActive(ClientSuite, ServerFixture):
    server_kind = "pyftpdlib"
    active = True


class TestClientFerrydPassive(ClientSuite, ServerFixture):
    server_kind = "ferryd"
    active = False


class TestClientFerrydActive(ClientSuite, ServerFixture):
    server_kind = "ferryd"
    active = True


class TestClientPyftpdPassiveIPv6(ClientSuite, ServerFixture):
    server_kind = "pyftpdlib"
    active = False
    host = "::1"


class TestClientPyftpdActiveIPv6(ClientSuite, ServerFixture):
    server_kind = "pyftpdlib"
    active = True
    host = "::1"


class TestClientFerrydActiveIPv6(ClientSuite, ServerFixture):
    server_kind = "ferryd"
    active = True
    host = "::1"
