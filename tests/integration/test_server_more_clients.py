"""ferryd with more real command-line FTP clients from Debian: GNU wget,
tnftp (the BSD ftp), NcFTP (ncftpget, ncftpput, ncftpls), BusyBox's
ftpget/ftpput and GNU inetutils' ftp.
Downloads, uploads, resumes, recursive copies and listings, byte-exact,
in passive and active modes, over IPv4 and (where the client can) IPv6
loopback; the server's transcript (-v) shows which data connection
method the client really used.

A missing client binary fails the test with the package to install
(scripts/deps.sh lists them); it never skips."""
import calendar
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import ClassFerryd, assert_data_method, make_file, sha256_file

MiB = 1 << 20
WGET = shutil.which("wget") or "/usr/bin/wget"
TNFTP = shutil.which("tnftp") or "/usr/bin/tnftp"
NCFTPGET = shutil.which("ncftpget") or "/usr/bin/ncftpget"
NCFTPPUT = shutil.which("ncftpput") or "/usr/bin/ncftpput"
NCFTPLS = shutil.which("ncftpls") or "/usr/bin/ncftpls"
BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"
INETUTILS_FTP = shutil.which("inetutils-ftp") or "/usr/bin/inetutils-ftp"
PACKAGE = {WGET: "wget", TNFTP: "tnftp", NCFTPGET: "ncftp", NCFTPPUT: "ncftp", NCFTPLS: "ncftp",
           BUSYBOX: "busybox", INETUTILS_FTP: "inetutils-ftp"}

# every file the clients fetch has this modification time, so that a
# client copying it over (MDTM, MLST modify, a LIST date) can be checked
OLD = calendar.timegm((2021, 2, 3, 4, 5, 6, 0, 0, 0))
OLD_DAY = calendar.timegm((2021, 2, 3, 0, 0, 0, 0, 0, 0))


def tree_sums(top, skip=()):
    """{relative path: sha256} of the files under top (names in skip
    left out)."""
    out = {}
    for dp, dn, fn in os.walk(top):
        for n in fn:
            if n in skip:
                continue
            p = os.path.join(dp, n)
            out[os.path.relpath(p, top)] = sha256_file(p)
    return out


def set_times(top, when):
    for dp, dn, fn in os.walk(top):
        for n in fn:
            os.utime(os.path.join(dp, n), (when, when))


def make_tree(top, seed):
    """A small tree: text and binary files, a subdirectory two deep, an
    empty file and names with spaces (LIST parsing must keep them)."""
    os.makedirs(os.path.join(top, "sub", "deeper"))
    os.makedirs(os.path.join(top, "sp ace"))
    make_file(os.path.join(top, "a.txt"), 20000, seed=seed, text=True)
    make_file(os.path.join(top, "b.bin"), MiB + 5, seed=seed + 1)
    make_file(os.path.join(top, "sub", "c.bin"), 300000, seed=seed + 2)
    make_file(os.path.join(top, "sub", "deeper", "d.txt"), 5000, seed=seed + 3, text=True)
    make_file(os.path.join(top, "sp ace", "e f.bin"), 70000, seed=seed + 4)
    open(os.path.join(top, "sub", "empty"), "wb").close()
    set_times(top, OLD)
    return tree_sums(top)


class MoreClientCase(ClassFerryd):
    """One writable ferryd (with its transcript) for the class; each test
    gets its own local directory and an empty HOME, so that no user
    configuration (~/.wgetrc, ~/.netrc, ~/.ncftp) is read or written."""

    ferryd_args = ("-w", "-v")
    tmp_prefix = "ferry-more-clients-"
    tools = ()

    def setUp(self):
        for t in self.tools:
            if not (os.path.isfile(t) and os.access(t, os.X_OK)):
                self.fail("%s is not installed: this test needs it "
                          "(apt-get install %s, or run scripts/deps.sh as root)" % (t, PACKAGE[t]))
        self.local = tempfile.mkdtemp(prefix="local-", dir=self.tmp)
        home = tempfile.mkdtemp(prefix="home-", dir=self.tmp)
        # a clean environment: no *_proxy, WGETRC, NETRC or FTPMODE from
        # the caller's; UTC so that client-side time conversions are fixed
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home,
                    "LC_ALL": "C", "TZ": "UTC0", "TERM": "dumb"}

    def mark(self):
        """A position in the server's transcript (see used())."""
        return len(self.server.stdout())

    def transcript(self, mark):
        return self.server.stdout()[mark:]

    def used(self, mark, verb, never=()):
        """Asserts that since mark the client used the data connection
        method verb and none of never (harness.assert_data_method)."""
        assert_data_method(self, self.transcript(mark), verb, never)

    def accepted(self, mark, command):
        """Asserts that since mark the server accepted command (verb and
        argument, as in the transcript)."""
        text = self.transcript(mark)
        self.assertRegex(text, r"(?m)^\[\d+\] SUCCESS %s$" % re.escape(command))

    def refused(self, mark, command):
        text = self.transcript(mark)
        self.assertRegex(text, r"(?m)^\[\d+\] FAILURE %s: [45]\d\d " % re.escape(command))

    def rpath(self, *parts):
        return os.path.join(self.root, *parts)

    def lpath(self, *parts):
        return os.path.join(self.local, *parts)

    def run_tool(self, argv, ok=True, input=None, timeout=30):
        p = subprocess.run(argv, capture_output=True, timeout=timeout, env=self.env,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           cwd=self.local)
        if ok and p.returncode != 0:
            self.fail("%s exited %d\nstdout: %s\nstderr: %s"
                      % (argv, p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
        return p

    def url(self, path="", host="127.0.0.1"):
        h = "[%s]" % host if ":" in host else host
        return "ftp://%s:%d/%s" % (h, self.port, path)

    def assert_same(self, local, remote):
        self.assertEqual(os.path.getsize(local), os.path.getsize(remote), local)
        self.assertEqual(sha256_file(local), sha256_file(remote), local)


class WgetTests(MoreClientCase):
    tools = (WGET,)

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "bin.dat"), 3 * MiB + 17, seed=51)
        make_file(os.path.join(cls.root, "text.txt"), 256 * 1024 + 3, seed=52, text=True)
        cls.tree = make_tree(os.path.join(cls.root, "tree"), seed=53)

    def wget(self, *args, ok=True):
        # --no-config: not even /etc/wgetrc; one try, so that a failure is
        # reported at once instead of retried
        return self.run_tool([WGET, "--no-config", "-nv", "--tries=1", "--timeout=10"]
                             + list(args), ok=ok)

    def download(self, name, *args, host="127.0.0.1"):
        out = self.lpath("dl-" + name)
        self.wget(*args, "-O", out, self.url(name, host))
        self.assert_same(out, self.rpath(name))

    def test_download_passive_ipv4(self):
        m = self.mark()
        self.download("bin.dat")
        self.download("text.txt")
        self.used(m, "PASV", never=("PORT", "EPRT"))

    def test_download_active_ipv4(self):
        m = self.mark()
        self.download("bin.dat", "--no-passive-ftp")
        self.download("text.txt", "--no-passive-ftp")
        self.used(m, "PORT", never=("PASV", "EPSV"))

    def test_download_passive_ipv6(self):
        m = self.mark()
        self.download("bin.dat", host="::1")
        self.used(m, "EPSV", never=("PORT", "EPRT"))
        self.assertIn("connection from ::1", self.transcript(m))

    def test_download_active_ipv6(self):
        m = self.mark()
        self.download("bin.dat", "--no-passive-ftp", host="::1")
        self.used(m, "EPRT |2|::1|", never=("PASV", "EPSV"))

    def test_resume(self):
        # wget -c of a partial file asks for the rest with REST
        with open(self.rpath("bin.dat"), "rb") as f:
            head = f.read(1000001)
        with open(self.lpath("bin.dat"), "wb") as f:
            f.write(head)
        m = self.mark()
        self.wget("-c", self.url("bin.dat"))
        self.assert_same(self.lpath("bin.dat"), self.rpath("bin.dat"))
        self.accepted(m, "REST 1000001")
        # the same in active mode over IPv6
        with open(self.rpath("text.txt"), "rb") as f:
            head = f.read(77777)
        with open(self.lpath("text.txt"), "wb") as f:
            f.write(head)
        m = self.mark()
        self.wget("-c", "--no-passive-ftp", self.url("text.txt", "::1"))
        self.assert_same(self.lpath("text.txt"), self.rpath("text.txt"))
        self.accepted(m, "REST 77777")
        self.used(m, "EPRT |2|::1|", never=("PASV", "EPSV"))
        # a complete file: nothing to fetch, nothing changed
        m = self.mark()
        self.wget("-c", self.url("bin.dat"))
        self.assert_same(self.lpath("bin.dat"), self.rpath("bin.dat"))
        self.assertNotRegex(self.transcript(m), r"(?m)^\[\d+\] RETR ")

    def assert_tree(self, top):
        self.assertEqual(tree_sums(top), self.tree)
        # wget dates each file from the LIST line ("Feb  3  2021": the day)
        for rel in self.tree:
            self.assertEqual(os.path.getmtime(os.path.join(top, rel)), OLD_DAY, rel)

    def test_recursive(self):
        m = self.mark()
        self.wget("-r", "-np", "-nH", self.url("tree/"))
        self.assert_tree(self.lpath("tree"))  # no .listing left behind either
        text = self.transcript(m)
        self.assertRegex(text, r"(?m)^\[\d+\] SUCCESS LIST")
        self.assertIn("RETR e f.bin", text)
        self.used(m, "PASV", never=("PORT", "EPRT"))

    def test_recursive_active_ipv6(self):
        m = self.mark()
        self.wget("-r", "-np", "-nH", "--no-passive-ftp", "-P", self.lpath("v6"),
                  self.url("tree/", "::1"))
        self.assert_tree(self.lpath("v6", "tree"))
        self.used(m, "EPRT |2|::1|", never=("PASV", "EPSV"))

    def test_directory_index(self):
        # a directory URL without -r: wget turns the LIST into index.html
        out = self.lpath("index.html")
        self.wget("-O", out, self.url("tree/sub/"))
        with open(out, encoding="utf-8", errors="replace") as f:
            html = f.read()
        links = set(re.findall(r'href="([^"]+)"', html))
        base = self.url("tree/sub/")
        self.assertTrue({base + "c.bin", base + "empty", base + "deeper/"} <= links, links)
        self.assertIn("300000", html)

    def test_missing_file(self):
        p = self.wget(self.url("nosuch.dat"), ok=False)
        self.assertEqual(p.returncode, 8, p.stderr)  # 8: the server issued an error response
        self.assertFalse(os.path.exists(self.lpath("nosuch.dat")))
        p = self.wget(self.url("no/such/dir/file.dat"), ok=False)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.listdir(self.local), [])


class TnftpTests(MoreClientCase):
    tools = (TNFTP,)

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "bin.dat"), 3 * MiB + 17, seed=61)
        make_file(os.path.join(cls.root, "text.txt"), 200000 + 1, seed=62, text=True)
        set_times(cls.root, OLD)
        os.makedirs(os.path.join(cls.root, "tree", "sub"))
        make_file(os.path.join(cls.root, "tree", "x.txt"), 100, seed=63, text=True)

    def setUp(self):
        super().setUp()
        self.up = self.lpath("up.bin")
        make_file(self.up, 2 * MiB + 9, seed=64)
        self.up_size = os.path.getsize(self.up)

    def tnftp(self, lines, host="127.0.0.1"):
        """tnftp non-interactively: no auto-login (-n), replies shown (-v),
        no line editing (-e), gives up on a connection stalled 15 s (-q)."""
        script = "\n".join(["user anonymous x@y"] + lines + ["quit"]) + "\n"
        p = self.run_tool([TNFTP, "-n", "-v", "-e", "-q", "15", host, str(self.port)],
                          input=script.encode())
        return p.stdout.decode("utf-8", "replace")

    def session(self, passive, host, data_verb, never):
        d = "dir-" + self._testMethodName
        with open(self.rpath("bin.dat"), "rb") as f:
            head = f.read(1234567)
        with open(self.lpath("partial.bin"), "wb") as f:
            f.write(head)
        m = self.mark()
        out = self.tnftp([
            "binary",
            "passive " + ("on" if passive else "off"),
            "mkdir " + d,
            "cd " + d,
            "put up.bin up.bin",
            "size up.bin",
            "quote SIZE up.bin",
            "ls",
            "rename up.bin moved.bin",
            "nlist",
            "get moved.bin back.bin",
            "mkdir sub",
            "rmdir sub",
            "put up.bin gone.bin",
            "delete gone.bin",
            "cd /",
            "get bin.dat bin.dat",
            "reget bin.dat partial.bin",
            "size bin.dat",
            "modtime bin.dat",
        ], host)
        # on the server: the directory holds only the renamed upload
        self.assertEqual(os.listdir(self.rpath(d)), ["moved.bin"], out)
        self.assert_same(self.rpath(d, "moved.bin"), self.up)
        # locally: the round trip, the download and the resumed download
        self.assert_same(self.lpath("back.bin"), self.up)
        self.assert_same(self.lpath("bin.dat"), self.rpath("bin.dat"))
        self.assert_same(self.lpath("partial.bin"), self.rpath("bin.dat"))
        # tnftp dates a download from MDTM
        self.assertEqual(os.path.getmtime(self.lpath("bin.dat")), OLD)
        # what tnftp printed
        self.assertNotRegex(out, r"(?m)^[45]\d\d ", "an error reply:\n" + out)
        self.assertRegex(out, r"(?m)^257 .*%s" % re.escape(d))
        self.assertRegex(out, r"(?m)^up\.bin\t%d$" % self.up_size)
        self.assertRegex(out, r"(?m)^213 %d$" % self.up_size)
        self.assertRegex(out, r"(?m)^-[rwx-]{9}\s.*\s%d\s.*\sup\.bin$" % self.up_size)
        self.assertRegex(out, r"(?m)^350 ")  # RNFR, and REST for reget
        self.assertRegex(out, r"(?m)^moved\.bin$")  # nlist
        self.assertRegex(out, r"(?m)^bin\.dat\t%d$" % (3 * MiB + 17))
        self.assertRegex(out, r"(?m)^bin\.dat\tWed, 03 Feb 2021 04:05:06 \+0000$")
        # what the server saw
        self.accepted(m, "REST 1234567")
        self.accepted(m, "RNTO moved.bin")
        self.accepted(m, "DELE gone.bin")
        self.accepted(m, "RMD sub")
        self.used(m, data_verb, never=never)
        return out

    def test_passive_ipv4(self):
        self.session(True, "127.0.0.1", "EPSV", ("PASV", "PORT", "EPRT"))

    def test_active_ipv4(self):
        self.session(False, "127.0.0.1", "EPRT |1|127.0.0.1|", ("PASV", "EPSV", "PORT"))

    def test_passive_ipv6(self):
        self.session(True, "::1", "EPSV", ("PASV", "PORT", "EPRT"))
        self.assertIn("connection from ::1", self.server.stdout())

    def test_active_ipv6(self):
        self.session(False, "::1", "EPRT |2|::1|", ("PASV", "EPSV", "PORT"))

    def test_pasv_and_port(self):
        # epsv4 off: the classic PASV and PORT instead of EPSV and EPRT
        d = "dir-" + self._testMethodName
        m = self.mark()
        out = self.tnftp(["epsv4 off", "binary", "passive on", "mkdir " + d,
                          "get bin.dat p.bin", "put up.bin %s/p.bin" % d])
        self.used(m, "PASV", never=("EPSV", "EPRT", "PORT"))
        m = self.mark()
        out += self.tnftp(["epsv4 off", "binary", "passive off",
                           "get bin.dat a.bin", "put up.bin %s/a.bin" % d, "ls " + d])
        self.used(m, "PORT", never=("EPSV", "EPRT", "PASV"))
        self.assertNotRegex(out, r"(?m)^[45]\d\d ", out)
        for n in ("p.bin", "a.bin"):
            self.assert_same(self.lpath(n), self.rpath("bin.dat"))
            self.assert_same(self.rpath(d, n), self.up)

    def test_ascii(self):
        # ASCII mode: the text crosses as CRLF and lands as LF both ways
        with open(self.lpath("lf.txt"), "wb") as f:
            f.write(b"one\ntwo\n\nthree\n")
        d = "dir-" + self._testMethodName
        out = self.tnftp(["ascii", "mkdir " + d, "get text.txt t.txt", "put lf.txt %s/lf.txt" % d,
                          "binary", "get text.txt b.txt"])
        self.assertNotRegex(out, r"(?m)^[45]\d\d ", out)
        self.assert_same(self.lpath("t.txt"), self.rpath("text.txt"))
        self.assert_same(self.lpath("b.txt"), self.rpath("text.txt"))
        with open(self.rpath(d, "lf.txt"), "rb") as f:
            self.assertEqual(f.read(), b"one\ntwo\n\nthree\n")

    def test_errors(self):
        m = self.mark()
        out = self.tnftp(["binary", "get nosuch.bin", "delete nosuch.bin", "mkdir tree",
                          "rmdir tree", "rename nosuch.bin other.bin", "cd nosuchdir",
                          "size nosuch.bin"])
        self.assertGreaterEqual(len(re.findall(r"(?m)^550 ", out)), 6, out)
        for c in ("RETR nosuch.bin", "DELE nosuch.bin", "MKD tree", "RMD tree",
                  "RNFR nosuch.bin", "CWD nosuchdir", "SIZE nosuch.bin"):
            self.refused(m, c)
        self.assertFalse(os.path.exists(self.lpath("nosuch.bin")))
        self.assertFalse(os.path.exists(self.rpath("other.bin")))
        self.assertEqual(sorted(os.listdir(self.rpath("tree"))), ["sub", "x.txt"])


class NcftpTests(MoreClientCase):
    tools = (NCFTPGET, NCFTPPUT, NCFTPLS)

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "bin.dat"), 3 * MiB + 17, seed=71)
        make_file(os.path.join(cls.root, "text.txt"), 200000 + 7, seed=72, text=True)
        set_times(cls.root, OLD)
        cls.tree = make_tree(os.path.join(cls.root, "tree"), seed=73)

    def ncftp(self, tool, *args, ok=True):
        # -t: give up after 10 s without progress; -V: no progress meter
        return self.run_tool([tool, "-t", "10", "-V", "-P", str(self.port)] + list(args), ok=ok)

    def ncftpls(self, *args, ok=True):
        return self.run_tool([NCFTPLS, "-t", "10"] + list(args), ok=ok)

    def test_get_passive(self):
        m = self.mark()
        self.ncftp(NCFTPGET, "127.0.0.1", self.local, "/bin.dat", "/text.txt")
        for n in ("bin.dat", "text.txt"):
            self.assert_same(self.lpath(n), self.rpath(n))
            # dated from the server's MLST modify fact
            self.assertEqual(os.path.getmtime(self.lpath(n)), OLD, n)
        self.used(m, "PASV", never=("PORT", "EPRT", "EPSV"))

    def test_get_active(self):
        m = self.mark()
        self.ncftp(NCFTPGET, "-E", "127.0.0.1", self.local, "/bin.dat", "/tree/sp ace/e f.bin")
        self.assert_same(self.lpath("bin.dat"), self.rpath("bin.dat"))
        self.assert_same(self.lpath("e f.bin"), self.rpath("tree", "sp ace", "e f.bin"))
        self.used(m, "PORT", never=("PASV", "EPSV", "EPRT"))

    def test_get_resume(self):
        # ncftpget resumes a shorter local file by default (-z)
        with open(self.rpath("bin.dat"), "rb") as f:
            head = f.read(1234567)
        with open(self.lpath("bin.dat"), "wb") as f:
            f.write(head)
        m = self.mark()
        self.ncftp(NCFTPGET, "127.0.0.1", self.local, "/bin.dat")
        self.assert_same(self.lpath("bin.dat"), self.rpath("bin.dat"))
        self.accepted(m, "REST 1234567")

    def test_get_recursive(self):
        # -T: no "TAR mode" (RETR of dir.tar, which ferryd does not make);
        # the files come one by one after an MLSD walk
        m = self.mark()
        self.ncftp(NCFTPGET, "-R", "-T", "127.0.0.1", self.local, "/tree")
        self.assertEqual(tree_sums(self.lpath("tree")), self.tree)
        self.assertRegex(self.transcript(m), r"(?m)^\[\d+\] SUCCESS MLSD")
        self.used(m, "PASV", never=("PORT", "EPRT", "EPSV"))
        m = self.mark()
        os.mkdir(self.lpath("act"))
        self.ncftp(NCFTPGET, "-R", "-T", "-E", "127.0.0.1", self.lpath("act"), "/tree")
        self.assertEqual(tree_sums(self.lpath("act", "tree")), self.tree)
        self.used(m, "PORT", never=("PASV", "EPSV", "EPRT"))

    def test_get_missing(self):
        p = self.ncftp(NCFTPGET, "127.0.0.1", self.local, "/nosuch.dat", ok=False)
        self.assertEqual(p.returncode, 3, p.stderr)  # 3: transfer failed
        self.assertEqual(os.listdir(self.local), [])

    def test_put(self):
        src = self.lpath("up.bin")
        make_file(src, 2 * MiB + 11, seed=74)
        os.utime(src, (OLD + 86400, OLD + 86400))
        d = "/up-" + self._testMethodName
        m = self.mark()
        self.ncftp(NCFTPPUT, "-m", "127.0.0.1", d + "/passive", src)
        self.used(m, "PASV", never=("PORT", "EPRT", "EPSV"))
        m = self.mark()
        self.ncftp(NCFTPPUT, "-m", "-E", "127.0.0.1", d + "/active", src)
        self.used(m, "PORT", never=("PASV", "EPSV", "EPRT"))
        for mode in ("passive", "active"):
            got = self.rpath(d[1:], mode, "up.bin")
            self.assert_same(got, src)
            # ncftpput sets the upload's time with MFMT
            self.assertEqual(os.path.getmtime(got), OLD + 86400, mode)

    def test_put_recursive(self):
        src = self.lpath("src")
        shutil.copytree(self.rpath("tree"), src)
        d = "up-" + self._testMethodName
        m = self.mark()
        self.ncftp(NCFTPPUT, "-R", "-m", "127.0.0.1", "/%s/p" % d, src)
        self.assertEqual(tree_sums(self.rpath(d, "p", "src")), self.tree)
        self.used(m, "PASV", never=("PORT", "EPRT", "EPSV"))
        m = self.mark()
        self.ncftp(NCFTPPUT, "-R", "-m", "-E", "127.0.0.1", "/%s/a" % d, src)
        self.assertEqual(tree_sums(self.rpath(d, "a", "src")), self.tree)
        self.used(m, "PORT", never=("PASV", "EPSV", "EPRT"))

    def test_put_missing_dir(self):
        src = self.lpath("up.txt")
        with open(src, "wb") as f:
            f.write(b"never stored\n")
        p = self.ncftp(NCFTPPUT, "127.0.0.1", "/nosuchdir", src, ok=False)
        self.assertEqual(p.returncode, 5, p.stderr)  # 5: could not change directory
        self.assertFalse(os.path.exists(self.rpath("nosuchdir")))

    def test_ls(self):
        p = self.ncftpls("-l", self.url("tree/"))
        lines = p.stdout.decode("utf-8", "replace").splitlines()
        byname = {}
        for ln in lines:
            for n in ("a.txt", "b.bin", "sub", "sp ace"):
                if ln.endswith(" " + n):
                    byname[n] = ln
        self.assertEqual(set(byname), {"a.txt", "b.bin", "sub", "sp ace"}, lines)
        self.assertRegex(byname["b.bin"], r"^-[rwx-]{9}\s.*\s%d\s" % (MiB + 5))
        self.assertTrue(byname["sub"].startswith("d"), byname["sub"])
        self.assertTrue(byname["sp ace"].startswith("d"), byname["sp ace"])
        p = self.ncftpls("-1", self.url("tree/sub/"))
        self.assertEqual(sorted(p.stdout.decode().splitlines()), ["c.bin", "deeper", "empty"])
        m = self.mark()
        p = self.ncftpls("-E", "-1", self.url("tree/"))
        self.assertEqual(sorted(p.stdout.decode().splitlines()), ["a.txt", "b.bin", "sp ace", "sub"])
        self.used(m, "PORT", never=("PASV", "EPSV", "EPRT"))
        p = self.ncftpls("-m", self.url("tree/"))
        text = p.stdout.decode("utf-8", "replace")
        self.assertRegex(text, r"(?m)^type=file;size=%d;.* b\.bin$" % (MiB + 5))
        self.assertRegex(text, r"(?m)^type=dir;.* sp ace$")

    def test_ls_missing(self):
        p = self.ncftpls("-l", self.url("nosuchdir/"), ok=False)
        self.assertEqual(p.returncode, 5, p.stderr)


class BusyboxTests(MoreClientCase):
    """BusyBox's ftpget and ftpput, the FTP of many embedded systems:
    passive only (EPSV), IPv4 and IPv6."""
    tools = (BUSYBOX,)

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "bin.dat"), 3 * MiB + 17, seed=81)

    def busybox(self, applet, host, *args, ok=True):
        return self.run_tool([BUSYBOX, applet, "-P", str(self.port), host] + list(args), ok=ok)

    def test_get_and_put_ipv4_and_ipv6(self):
        for host in ("127.0.0.1", "::1"):
            m = self.mark()
            local = self.lpath("got-" + host.replace(":", "_"))
            self.busybox("ftpget", host, local, "bin.dat")
            self.assert_same(local, self.rpath("bin.dat"))
            remote = "put-" + host.replace(":", "_")
            self.busybox("ftpput", host, remote, local)
            self.assert_same(self.rpath(remote), local)
            self.used(m, "EPSV", never=("PASV", "PORT", "EPRT"))
            self.accepted(m, "STOR " + remote)

    def test_missing_file(self):
        p = self.busybox("ftpget", "127.0.0.1", self.lpath("x"), "nosuch.bin", ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"550", p.stderr)
        self.assertFalse(os.path.exists(self.lpath("x")))


class InetutilsFtpTests(MoreClientCase):
    """GNU inetutils' ftp: active (PORT, EPRT on IPv6) by default,
    passive (PASV, EPSV on IPv6) with -p."""
    tools = (INETUTILS_FTP,)

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "bin.dat"), 3 * MiB + 17, seed=91)

    def session(self, host, passive, data_verb, never):
        make_file(self.lpath("up.bin"), 2 * MiB + 3, seed=92)
        script = "user anonymous x@y\nbinary\nls\nget bin.dat got.bin\nput up.bin up-%s.bin\nquit\n" % (
            self._testMethodName)
        m = self.mark()
        p = self.run_tool([INETUTILS_FTP, "-n", "-v"] + (["-p"] if passive else []) + [host, str(self.port)],
                          input=script.encode())
        out = p.stdout.decode("utf-8", "replace")
        self.assertNotRegex(out, r"(?m)^[45]\d\d ", out)
        self.assertRegex(out, r"(?m)^%d bytes received in " % (3 * MiB + 17))
        self.assert_same(self.lpath("got.bin"), self.rpath("bin.dat"))
        self.assert_same(self.rpath("up-%s.bin" % self._testMethodName), self.lpath("up.bin"))
        self.used(m, data_verb, never=never)

    def test_active_ipv4(self):
        self.session("127.0.0.1", False, "PORT", ("PASV", "EPSV", "EPRT"))

    def test_passive_ipv4(self):
        self.session("127.0.0.1", True, "PASV", ("PORT", "EPSV", "EPRT"))

    def test_active_ipv6(self):
        self.session("::1", False, "EPRT |2|::1|", ("PASV", "EPSV", "PORT"))

    def test_passive_ipv6(self):
        self.session("::1", True, "EPSV", ("PASV", "PORT", "EPRT"))


class ReadOnlyTests(MoreClientCase):
    """A read-only ferryd: the clients' uploads are refused and leave
    nothing behind, and the clients say so."""

    ferryd_args = ("-v",)
    tools = (TNFTP, NCFTPPUT, WGET)

    @classmethod
    def make_files(cls):
        with open(os.path.join(cls.root, "f.txt"), "wb") as f:
            f.write(b"read only\n")

    def test_tnftp_put_refused(self):
        with open(self.lpath("up.txt"), "wb") as f:
            f.write(b"nope\n")
        script = "user anonymous x@y\nbinary\nput up.txt up.txt\nmkdir d\ndelete f.txt\nquit\n"
        p = self.run_tool([TNFTP, "-n", "-v", "-e", "-q", "15", "127.0.0.1", str(self.port)],
                          input=script.encode())
        out = p.stdout.decode("utf-8", "replace")
        self.assertGreaterEqual(len(re.findall(r"(?m)^[45]\d\d ", out)), 3, out)
        self.assertEqual(sorted(os.listdir(self.root)), ["f.txt"])

    def test_ncftpput_refused(self):
        src = self.lpath("up.txt")
        with open(src, "wb") as f:
            f.write(b"nope\n")
        p = self.run_tool([NCFTPPUT, "-t", "10", "-V", "-P", str(self.port), "127.0.0.1", "/", src],
                          ok=False)
        self.assertEqual(p.returncode, 3, p.stderr)  # 3: transfer failed
        self.assertEqual(sorted(os.listdir(self.root)), ["f.txt"])

    def test_wget_download(self):
        self.run_tool([WGET, "--no-config", "-nv", "--tries=1", "--timeout=10", self.url("f.txt")])
        with open(self.lpath("f.txt"), "rb") as f:
            self.assertEqual(f.read(), b"read only\n")


if __name__ == "__main__":
    unittest.main()
