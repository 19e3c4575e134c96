"""ferryd with real third-party clients: curl and lftp downloading,
uploading and listing, byte-exact, in passive and active modes, with and
without EPSV/EPRT, over IPv4 and IPv6 loopback."""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import ClassFerryd, assert_data_method, give_to_server, make_file, sha256_file

MiB = 1 << 20
CURL = shutil.which("curl") or "/usr/bin/curl"
LFTP = shutil.which("lftp") or "/usr/bin/lftp"


def tree_sums(top):
    out = {}
    for dp, dn, fn in os.walk(top):
        for n in fn:
            p = os.path.join(dp, n)
            out[os.path.relpath(p, top)] = sha256_file(p)
        for n in dn:
            out[os.path.relpath(os.path.join(dp, n), top) + "/"] = "dir"
    return out


class ClientCase(ClassFerryd):
    """One writable ferryd for the class over a root made once; each test
    gets its own local scratch directory."""

    ferryd_args = ("-w", "-v")
    tmp_prefix = "ferry-clients-"

    def setUp(self):
        self.local = tempfile.mkdtemp(prefix="local-", dir=self.tmp)
        self.env = dict(os.environ, HOME=self.local, LC_ALL="C")

    def mark(self):
        """A position in the server's transcript (see used())."""
        return len(self.server.stdout())

    def used(self, mark, verb, never=()):
        """Asserts that since mark the client used the data connection
        method verb and none of never (harness.assert_data_method)."""
        assert_data_method(self, self.server.stdout()[mark:], verb, never)

    def rpath(self, *parts):
        return os.path.join(self.root, *parts)

    def run_tool(self, argv, timeout=90, ok=True, stdin=subprocess.DEVNULL):
        p = subprocess.run(argv, capture_output=True, timeout=timeout, env=self.env,
                           stdin=stdin, cwd=self.local)
        if ok and p.returncode != 0:
            self.fail("%s exited %d\nstdout: %s\nstderr: %s"
                      % (argv, p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
        return p

    def curl(self, *args, ok=True):
        return self.run_tool([CURL, "-sS", "--max-time", "60"] + list(args), ok=ok)

    def url(self, path="", host="127.0.0.1"):
        h = "[%s]" % host if ":" in host else host
        return "ftp://%s:%d/%s" % (h, self.port, path)

    def lftp(self, script, host="127.0.0.1", ok=True, user="anonymous", passwd="x"):
        h = "[%s]" % host if ":" in host else host
        full = ("set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; "
                "set cmd:fail-exit yes; set xfer:clobber yes; "
                "open -p %d ftp://%s:%s@%s; %s" % (self.port, user, passwd, h, script))
        return self.run_tool([LFTP, "-c", full], ok=ok)


class CurlTests(ClientCase):

    @classmethod
    def make_files(cls):
        make_file(os.path.join(cls.root, "bin.dat"), 3 * MiB + 17, seed=31)
        make_file(os.path.join(cls.root, "text.txt"), 512 * 1024 + 3, seed=32, text=True)
        os.makedirs(os.path.join(cls.root, "a", "b"))
        make_file(os.path.join(cls.root, "a", "b", "deep.dat"), 100000, seed=33)
        cls.sums = {n: sha256_file(os.path.join(cls.root, n))
                    for n in ("bin.dat", "text.txt", os.path.join("a", "b", "deep.dat"))}

    def download(self, name, *args, host="127.0.0.1"):
        out = os.path.join(self.local, "dl-" + os.path.basename(name))
        self.curl(*args, self.url(name, host), "-o", out)
        return sha256_file(out)

    def test_download_default(self):
        for n in ("bin.dat", "text.txt"):
            self.assertEqual(self.download(n), self.sums[n], n)

    def test_download_pasv_without_epsv(self):
        m = self.mark()
        self.assertEqual(self.download("bin.dat", "--ftp-pasv", "--disable-epsv"), self.sums["bin.dat"])
        self.used(m, "PASV", never=("EPSV",))

    def test_download_epsv(self):
        m = self.mark()
        self.assertEqual(self.download("bin.dat", "--ftp-pasv"), self.sums["bin.dat"])
        self.used(m, "EPSV", never=("PASV",))

    def test_download_active_eprt(self):
        m = self.mark()
        self.assertEqual(self.download("bin.dat", "--ftp-port", "127.0.0.1"), self.sums["bin.dat"])
        self.used(m, "EPRT", never=("PASV", "EPSV"))

    def test_download_active_port(self):
        m = self.mark()
        self.assertEqual(self.download("text.txt", "-P", "127.0.0.1", "--disable-eprt"),
                         self.sums["text.txt"])
        self.used(m, "PORT", never=("EPRT", "PASV", "EPSV"))

    def test_download_ipv6_epsv(self):
        m = self.mark()
        self.assertEqual(self.download("bin.dat", "-g", host="::1"), self.sums["bin.dat"])
        self.used(m, "EPSV")
        self.assertIn("connection from ::1", self.server.stdout()[m:])

    def test_download_ipv6_active(self):
        m = self.mark()
        self.assertEqual(self.download("bin.dat", "-g", "--ftp-port", "::1", host="::1"),
                         self.sums["bin.dat"])
        self.used(m, "EPRT |2|::1|", never=("PASV", "EPSV"))

    def test_ftp_methods(self):
        for method in ("multicwd", "singlecwd", "nocwd"):
            got = self.download("a/b/deep.dat", "--ftp-method", method)
            self.assertEqual(got, self.sums[os.path.join("a", "b", "deep.dat")], method)

    def test_ascii_download(self):
        # curl -B asks for TYPE A and turns the CRLFs back into LFs
        self.assertEqual(self.download("text.txt", "-B"), self.sums["text.txt"])

    def test_range_download(self):
        out = os.path.join(self.local, "part")
        self.curl("-r", "1000000-", self.url("bin.dat"), "-o", out)
        with open(self.rpath("bin.dat"), "rb") as f:
            f.seek(1000000)
            want = f.read()
        with open(out, "rb") as f:
            self.assertEqual(f.read(), want)

    def test_missing_file(self):
        p = self.curl(self.url("no/such.file"), "-o", os.path.join(self.local, "x"), ok=False)
        self.assertNotEqual(p.returncode, 0)
        p = self.curl(self.url("nosuch.file"), "-o", os.path.join(self.local, "x"), ok=False)
        self.assertEqual(p.returncode, 78, p.stderr)  # CURLE_REMOTE_FILE_NOT_FOUND

    def test_upload_modes(self):
        src = self.rpath("bin.dat")
        cases = {
            "up-default.dat": (),
            "up-pasv.dat": ("--ftp-pasv", "--disable-epsv"),
            "up-eprt.dat": ("--ftp-port", "127.0.0.1"),
            "up-port.dat": ("-P", "127.0.0.1", "--disable-eprt"),
        }
        for name, args in cases.items():
            self.curl("--user", "anonymous:x", *args, "-T", src, self.url("uploads-%s/%s" % (
                self._testMethodName, name)), "--ftp-create-dirs")
            got = sha256_file(self.rpath("uploads-%s" % self._testMethodName, name))
            self.assertEqual(got, self.sums["bin.dat"], name)

    def test_upload_ipv6(self):
        src = self.rpath("text.txt")
        self.curl("--user", "anonymous:x", "-g", "-T", src, self.url("up6.txt", "::1"))
        self.assertEqual(sha256_file(self.rpath("up6.txt")), self.sums["text.txt"])
        self.curl("--user", "anonymous:x", "-g", "--ftp-port", "::1", "-T", src,
                  self.url("up6a.txt", "::1"))
        self.assertEqual(sha256_file(self.rpath("up6a.txt")), self.sums["text.txt"])

    def test_upload_ascii(self):
        src = os.path.join(self.local, "crlf.txt")
        with open(src, "wb") as f:
            f.write(b"one\ntwo\nthree\n")
        # curl -B sends LF-ended lines as CRLF; the server stores LF again
        self.curl("--user", "anonymous:x", "-B", "-T", src, self.url("ascii-up.txt"))
        with open(self.rpath("ascii-up.txt"), "rb") as f:
            self.assertEqual(f.read(), b"one\ntwo\nthree\n")

    def test_append(self):
        with open(self.rpath("app.txt"), "wb") as f:
            f.write(b"head\n")
        give_to_server(self.tmp, self.root)
        src = os.path.join(self.local, "tail")
        with open(src, "wb") as f:
            f.write(b"tail\n")
        self.curl("--user", "anonymous:x", "--append", "-T", src, self.url("app.txt"))
        with open(self.rpath("app.txt"), "rb") as f:
            self.assertEqual(f.read(), b"head\ntail\n")

    def test_listing(self):
        p = self.curl(self.url())
        lines = p.stdout.decode().splitlines()
        names = {ln.split()[-1] for ln in lines if not ln.startswith("total ")}
        self.assertTrue({"bin.dat", "text.txt", "a"} <= names, lines)
        for ln in lines:
            if ln.endswith(" bin.dat"):
                self.assertTrue(ln.startswith("-"), ln)
                self.assertIn(" %d " % (3 * MiB + 17), ln)
            if ln.endswith(" a"):
                self.assertTrue(ln.startswith("d"), ln)
        p = self.curl("--list-only", self.url("a/b/"))
        self.assertEqual(p.stdout.decode().split(), ["deep.dat"])

    def test_listing_ipv6_active(self):
        p = self.curl("-g", "--ftp-port", "::1", "--list-only", self.url("a/", "::1"))
        self.assertEqual(p.stdout.decode().split(), ["b"])

    def test_quote_commands(self):
        with open(self.rpath("to-delete"), "wb") as f:
            f.write(b"x")
        give_to_server(self.tmp, self.root)
        self.curl("--user", "anonymous:x", "-Q", "DELE to-delete", "-Q", "MKD made-by-curl",
                  self.url(), "-o", os.devnull)
        self.assertFalse(os.path.exists(self.rpath("to-delete")))
        self.assertTrue(os.path.isdir(self.rpath("made-by-curl")))
        p = self.curl("-Q", "DELE nosuch", self.url(), "-o", os.devnull, ok=False)
        self.assertNotEqual(p.returncode, 0)


class CurlReadOnlyTests(ClientCase):
    ferryd_args = ()

    @classmethod
    def make_files(cls):
        with open(os.path.join(cls.root, "f"), "wb") as f:
            f.write(b"read only\n")

    def test_upload_refused(self):
        src = os.path.join(self.local, "src")
        with open(src, "wb") as f:
            f.write(b"nope")
        p = self.curl("--user", "anonymous:x", "-T", src, self.url("up"), ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertFalse(os.path.exists(self.rpath("up")))
        # 550 on STOR: curl reports the upload failure
        self.assertEqual(p.returncode, 25, p.stderr)


class LftpTests(ClientCase):

    @classmethod
    def make_files(cls):
        t = os.path.join(cls.root, "tree")
        os.makedirs(os.path.join(t, "sub", "deeper"))
        os.makedirs(os.path.join(t, "emptydir"))
        make_file(os.path.join(t, "a.txt"), 200000, seed=41, text=True)
        make_file(os.path.join(t, "b.bin"), 2 * MiB + 5, seed=42)
        make_file(os.path.join(t, "sub", "c.bin"), 300000, seed=43)
        make_file(os.path.join(t, "sub", "deeper", "d.txt"), 5000, seed=44, text=True)
        open(os.path.join(t, "sub", "empty"), "wb").close()
        cls.tree = tree_sums(t)

    def assert_tree(self, path):
        got = tree_sums(path)
        # lftp may or may not create empty directories; files must all match
        files = {k: v for k, v in self.tree.items() if v != "dir"}
        self.assertEqual({k: v for k, v in got.items() if v != "dir"}, files)

    def test_mirror_passive(self):
        m = self.mark()
        self.lftp("mirror tree %s/m" % self.local)
        self.assert_tree(os.path.join(self.local, "m"))
        self.used(m, "PASV", never=("PORT", "EPRT"))

    def test_mirror_active(self):
        m = self.mark()
        self.lftp("set ftp:passive-mode off; mirror tree %s/m" % self.local)
        self.assert_tree(os.path.join(self.local, "m"))
        self.used(m, "PORT", never=("PASV", "EPSV"))

    def test_mirror_epsv_ipv4(self):
        m = self.mark()
        self.lftp("set ftp:prefer-epsv yes; set ftp:use-mlsd no; mirror tree %s/m" % self.local)
        self.assert_tree(os.path.join(self.local, "m"))
        self.used(m, "EPSV", never=("PASV", "PORT", "EPRT"))

    def test_mirror_ipv6_passive(self):
        m = self.mark()
        self.lftp("mirror tree %s/p" % self.local, host="::1")
        self.assert_tree(os.path.join(self.local, "p"))
        self.used(m, "EPSV", never=("PORT", "EPRT"))

    def test_mirror_ipv6_active(self):
        # lftp announces its data listener as EPRT |2|::|port| (the
        # unspecified address, meaning the client's own address)
        m = self.mark()
        self.lftp("set ftp:passive-mode off; mirror tree %s/a" % self.local, host="::1")
        self.assert_tree(os.path.join(self.local, "a"))
        self.used(m, "EPRT", never=("PASV", "EPSV"))
        src = os.path.join(self.local, "src")
        shutil.copytree(self.rpath("tree"), src)
        m = self.mark()
        self.lftp("set ftp:passive-mode off; mirror -R %s up-v6a" % src, host="::1")
        self.assert_tree(self.rpath("up-v6a"))
        self.used(m, "EPRT", never=("PASV", "EPSV"))

    def test_mirror_reverse_upload(self):
        src = os.path.join(self.local, "src")
        shutil.copytree(self.rpath("tree"), src)
        m = self.mark()
        self.lftp("mirror -R %s up-passive" % src)
        self.assert_tree(self.rpath("up-passive"))
        self.used(m, "PASV", never=("PORT", "EPRT"))
        m = self.mark()
        self.lftp("set ftp:passive-mode off; mirror -R %s up-active" % src)
        self.assert_tree(self.rpath("up-active"))
        self.used(m, "PORT", never=("PASV", "EPSV"))
        m = self.mark()
        self.lftp("mirror -R %s up-v6" % src, host="::1")
        self.assert_tree(self.rpath("up-v6"))
        self.used(m, "EPSV", never=("PORT", "EPRT"))

    def test_get_and_put(self):
        self.lftp("get tree/b.bin -o %s/b.bin; get tree/sub/c.bin -o %s/c.bin" % (self.local, self.local))
        self.assertEqual(sha256_file(os.path.join(self.local, "b.bin")), self.tree["b.bin"])
        self.assertEqual(sha256_file(os.path.join(self.local, "c.bin")), self.tree[os.path.join("sub", "c.bin")])
        self.lftp("put %s/b.bin -o put-b.bin" % self.local)
        self.assertEqual(sha256_file(self.rpath("put-b.bin")), self.tree["b.bin"])
        m = self.mark()
        self.lftp("set ftp:passive-mode off; put %s/c.bin -o put-c.bin" % self.local)
        self.used(m, "PORT", never=("PASV", "EPSV"))
        self.assertEqual(sha256_file(self.rpath("put-c.bin")), self.tree[os.path.join("sub", "c.bin")])

    def test_ascii_get(self):
        self.lftp("get -a tree/a.txt -o %s/a.txt" % self.local)
        self.assertEqual(sha256_file(os.path.join(self.local, "a.txt")), self.tree["a.txt"])

    def test_ls_and_cls(self):
        p = self.lftp("cd tree; ls")
        lines = p.stdout.decode().splitlines()
        names = {ln.split()[-1] for ln in lines if ln.strip()}
        self.assertEqual(names - {".", ".."}, {"a.txt", "b.bin", "sub", "emptydir"})
        for ln in lines:
            if ln.endswith(" b.bin"):
                self.assertRegex(ln, r"^-[rwx-]{9}\s")
                self.assertIn(" %d " % (2 * MiB + 5), ln)
            if ln.endswith(" sub"):
                self.assertTrue(ln.startswith("d"), ln)
        p = self.lftp("cd tree/sub; cls -1")
        self.assertEqual(sorted(p.stdout.decode().split()), ["c.bin", "deeper/", "empty"])
        p = self.lftp("set ftp:use-mlsd no; cd tree/sub; cls -1")
        self.assertEqual(sorted(p.stdout.decode().split()), ["c.bin", "deeper/", "empty"])
        p = self.lftp("cls -l tree/sub/c.bin")
        self.assertIn("300000", p.stdout.decode())

    def test_rm_mkdir_mv(self):
        self.lftp("mkdir lftp-dir; put %s -o lftp-dir/x; mv lftp-dir/x lftp-dir/y" % os.path.join(
            self.rpath("tree", "a.txt")))
        self.assertEqual(os.listdir(self.rpath("lftp-dir")), ["y"])
        self.lftp("rm lftp-dir/y; rmdir lftp-dir")
        self.assertFalse(os.path.exists(self.rpath("lftp-dir")))

    def test_missing_file_fails(self):
        p = self.lftp("get tree/nosuch -o %s/nosuch" % self.local, ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"550", p.stderr + p.stdout)


class BigFileClientTests(ClientCase):
    """The 256 MiB case through curl: one download over IPv6 (EPSV),
    one upload in active mode (PORT) over IPv4."""

    @classmethod
    def make_files(cls):
        from test_server_transfers import make_big_file
        cls.size = 256 * MiB
        cls.sha = make_big_file(os.path.join(cls.root, "big.bin"), cls.size, seed=1256)

    def test_big_download_ipv6(self):
        p = subprocess.Popen([CURL, "-sS", "--max-time", "120", "-g", self.url("big.bin", "::1")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        h = hashlib.sha256()
        n = 0
        try:
            while True:
                b = p.stdout.read(MiB)
                if not b:
                    break
                h.update(b)
                n += len(b)
        finally:
            p.stdout.close()
            rc = p.wait(timeout=130)
            err = p.stderr.read()
            p.stderr.close()
        self.assertEqual(rc, 0, err)
        self.assertEqual(n, self.size)
        self.assertEqual(h.hexdigest(), self.sha)

    def test_big_upload_active_port(self):
        m = self.mark()
        self.curl("--user", "anonymous:x", "-P", "127.0.0.1", "--disable-eprt",
                  "-T", self.rpath("big.bin"), self.url("big-up.bin"))
        try:
            self.assertEqual(os.path.getsize(self.rpath("big-up.bin")), self.size)
            self.assertEqual(sha256_file(self.rpath("big-up.bin")), self.sha)
            self.used(m, "PORT", never=("EPRT", "PASV", "EPSV"))
        finally:
            os.unlink(self.rpath("big-up.bin"))


if __name__ == "__main__":
    unittest.main()
