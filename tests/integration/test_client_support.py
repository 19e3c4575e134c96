"""Helpers for the ferry client tests (no tests here).

- start_pyftpd(root): Debian's pyftpdlib serving root (user alice/secret and
  anonymous, both writable) as a separate process, stopped by its PID.
- start_fake(mode): a small scripted FTP server for what a real server will
  not do on request: stay silent, send garbage or endless replies, name a
  foreign address in PASV, list unsafe names, cut a download short.
- run_ferry(...): ferry with a bounded run time and a private HOME.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from harness import FERRY, PYTHON, Server, free_port, start_ferryd

HERE = os.path.dirname(os.path.abspath(__file__))

PYFTPD_SCRIPT = r"""
import logging, sys, warnings
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
warnings.simplefilter("ignore")
root, port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
auth = DummyAuthorizer()
auth.add_user("alice", "secret", root, perm="elradfmwMT")
auth.add_anonymous(root, perm="elradfmwMT")
class Handler(FTPHandler):
    authorizer = auth
    auth_failed_timeout = 0
logging.basicConfig(level=logging.ERROR)
FTPServer((host, port), Handler).serve_forever()
"""

FAKE_SCRIPT = r"""
import re, select, socket, subprocess, sys, threading, time
mode, port = sys.argv[1], int(sys.argv[2])
HOST = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
PAYLOAD = bytes(range(256)) * 4096          # 1 MiB
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind((HOST, port)); lst.listen(8)
RETRS = [0]   # RETRs served so far, over every session of this server
EPSVS = [0]   # EPSVs answered so far (epsv425_once)
IDLE_DROPS = [0]  # sessions ended as idle (idle421)

def serve(c):
    f = c.makefile("rb")
    def send(s):
        c.sendall(s.encode() + b"\r\n")
    if mode == "silent":
        time.sleep(60); return
    if mode == "garbage":
        c.sendall(b"HELLO this is not FTP\r\n"); time.sleep(30); return
    if mode == "longline":
        c.sendall(b"220 " + b"x" * (10 * 1024 * 1024)); time.sleep(30); return
    if mode == "bigreply":
        send("220-welcome")
        for i in range(200000):
            c.sendall(b" line %d of an endless greeting\r\n" % i)
        time.sleep(30); return
    if mode == "greet120":
        for i in range(300):             # "ready in a minute", for ever
            send("120 ready soon"); time.sleep(0.2)
        return
    send("220 fake ready")
    data_lst = None
    active = None    # (host, port) of the last EPRT: STOR connects there
    rest = 0
    cwd = "/"
    user = ""
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode().strip()
        verb = cmd.split(" ")[0].upper()
        arg = cmd[len(verb) + 1:]
        if verb == "USER":
            if mode == "close_on_user":
                c.close(); return
            user = arg
            send("331 password please")
        elif verb == "PASS":
            # drop_once: bob's password is "secret" (a reconnect must know it)
            # carol's is 300 bytes long
            wrong = (user == "bob" and arg != "secret") or (user == "carol" and arg != "p" * 300)
            send("530 wrong password" if mode == "drop_once" and wrong else "230 in")
        elif verb == "FEAT":
            send("211-Features:"); send(" SIZE")
            if mode == "mlsd_empty":
                send(" MLST type*;size*;")
            send("211 End")
        elif verb == "AUTH" and mode == "tls_inject":
            # replies sent with the 234, before any handshake: what a man
            # in the middle would slip in to be read as protected ones
            c.sendall(b"234 go ahead\r\n230 INJECTED\r\n257 \"/INJECTED\"\r\n")
            time.sleep(10); return
        elif verb == "TYPE" and mode == "idle421" and IDLE_DROPS[0] == 0:
            # vsftpd's idle_session_timeout: the first command after a
            # pause is answered so, and the connection closed
            IDLE_DROPS[0] += 1
            send("421 Timeout."); return
        elif verb in ("TYPE", "NOOP"):
            send("200 ok")
        elif verb == "SYST" and mode == "multiline":
            send("215-first"); send("215-inner with the code"); send(" inner with a space")
            send("216 not the end"); send("215 end")
        elif verb == "PWD" and mode == "endless1xx":
            for i in range(300):         # preliminary replies, never a final one
                send("150 still working"); time.sleep(0.2)
            return
        elif verb == "CWD" and mode in ("cut_twice", "drop_once", "idle421"):
            cwd = arg if arg.startswith("/") else cwd.rstrip("/") + "/" + arg
            send("250 ok")
        elif verb == "PWD" and mode in ("cut_twice", "drop_once", "idle421"):
            send('257 "%s" is the current directory' % cwd)
        elif mode == "nlst_dirs" and verb == "CWD":
            # NLST only (no MLST): "subdir" is a directory, "gone.bin" a
            # file that cannot be read; both refuse SIZE and RETR with 550
            if arg in ("subdir", "/"):
                cwd = "/" if arg == "/" else "/subdir"; send("250 ok")
            else:
                send("550 Failed to change directory.")
        elif mode == "nlst_dirs" and verb == "PWD":
            send('257 "%s" is the current directory' % cwd)
        elif mode == "nlst_dirs" and verb in ("SIZE", "RETR") and arg in ("subdir", "gone.bin"):
            send("550 Failed to open file." if verb == "RETR" else "550 Could not get file size.")
        elif verb == "REST":
            rest = int(arg); send("350 restarting at %d" % rest)
        elif verb == "SIZE":
            send("550 no SIZE here" if mode in ("cut_nosize_norest", "retr550") else "213 %d" % len(PAYLOAD))
        elif verb == "RETR" and mode == "retr550":
            send("550 no such file")
        elif verb == "RETR" and mode == "idle421" and cwd != "/sub":
            send("550 no such file in %s" % cwd)
        elif verb == "EPSV" and mode == "epsv425_once" and EPSVS[0] > 0:
            data_lst = socket.socket(); data_lst.bind((HOST, 0)); data_lst.listen(1)
            send("229 Entering Extended Passive Mode (|||%d|)" % data_lst.getsockname()[1])
        elif verb == "EPSV" and mode == "epsv425_once":
            EPSVS[0] += 1               # pure-ftpd, out of ports for a moment
            send("425 All reserved TCP ports are busy")
        elif verb == "EPSV":
            send("502 no EPSV here")
        elif verb == "EPRT":
            fields = arg.split(arg[:1])
            active = (fields[2], int(fields[3])); send("200 ok")
        elif verb == "PASV" and mode == "badpasv":
            send("227 nonsense")
        elif verb == "PASV":
            data_lst = socket.socket(); data_lst.bind((HOST, 0)); data_lst.listen(1)
            p = data_lst.getsockname()[1]
            send("227 Entering Passive Mode (10,9,8,7,%d,%d)" % (p >> 8, p & 255))
        elif verb in ("LIST", "NLST", "RETR", "MLSD"):
            if verb == "RETR" and mode == "slow150":
                time.sleep(5)            # the transfer starts late
            send("150 here it comes")
            d, _ = data_lst.accept()
            if verb == "NLST" and mode == "trickle_many":
                d.sendall(b"a.bin\r\nb.bin\r\nc.bin\r\n"); d.close(); send("226 done"); continue
            if verb == "RETR" and mode == "short_slow226":
                # 300,000 of SIZE's 1 MiB, and the 226 four seconds later
                d.sendall(PAYLOAD[:300000]); d.close(); time.sleep(4); send("226 done"); continue
            if verb == "RETR" and mode in ("cut_norest", "cut_nosize_norest"):
                # REST was acknowledged, but every RETR starts at byte 0;
                # the first stops after 300,000 bytes
                RETRS[0] += 1
                d.sendall(PAYLOAD[:300000] if RETRS[0] == 1 else PAYLOAD); d.close()
                send("426 connection lost" if RETRS[0] == 1 else "226 done"); continue
            if verb == "RETR" and mode in ("cut_twice", "drop_once"):
                # the first RETRs (two, or one that also loses the
                # control connection) stop 300,000 bytes after REST
                RETRS[0] += 1
                if mode == "drop_once" and cwd != "/sub":
                    d.close(); send("550 no such file in %s" % cwd); continue
                if RETRS[0] <= (2 if mode == "cut_twice" else 1):
                    d.sendall(PAYLOAD[rest:rest + 300000]); d.close()
                    if mode == "drop_once":
                        return
                    send("426 connection lost"); continue
            if verb == "RETR" and mode == "endless_after_size":
                # SIZE said len(PAYLOAD); this goes on at about 100 MB/s
                # until the client stops it (at most 25 s)
                try:
                    for i in range(2500):
                        d.sendall(PAYLOAD)
                        time.sleep(0.01)
                except OSError:
                    pass
                d.close()
                if f.readline().decode().strip().upper() == "ABOR":
                    send("426 transfer aborted"); send("226 ABOR done")
                continue
            if verb == "RETR" and mode == "slow226":
                # all the bytes at once, the final reply 5 s later
                d.sendall(PAYLOAD); d.close(); time.sleep(5); send("226 done"); continue
            if verb == "RETR" and mode == "short_426":
                d.sendall(PAYLOAD[:300000]); d.close(); send("426 connection lost"); continue
            if verb == "RETR" and mode == "short_226":
                d.sendall(PAYLOAD[:300000]); d.close(); send("226 done (not really)"); continue
            if verb == "RETR" and mode == "trickle_many":
                # trickles until the client sends ABOR, which it answers
                # as a server does: 426 for the transfer, 226 for ABOR
                for i in range(300):
                    try:
                        d.sendall(PAYLOAD[:1024])
                    except OSError:
                        pass
                    if select.select([c], [], [], 0.1)[0]:
                        break
                d.close()
                if f.readline().decode().strip().upper() == "ABOR":
                    send("426 transfer aborted"); send("226 ABOR done")
                continue
            if verb == "RETR" and mode == "trickle":
                for i in range(300):     # 1 KiB per 0.1 s: a download that takes its time
                    d.sendall(PAYLOAD[:1024]); time.sleep(0.1)
                d.close(); send("226 done"); continue
            if verb == "RETR":
                # "norest" says 350 to REST and sends from the start anyway
                d.sendall(PAYLOAD if mode == "norest" else PAYLOAD[rest:]); rest = 0
            elif mode == "local_names":
                d.sendall(b"dlink\r\nfifo\r\n-\r\nsub\r\nok.bin\r\nnul\x00ok.bin\r\n")
            elif mode == "unsafe_names":
                d.sendall(b"../evil\r\n/tmp/abs-evil\r\nsub/inner\r\n..\r\nok.bin\r\n")
            elif mode == "nlst_dirs":
                d.sendall(b"a.bin\r\nsubdir\r\ngone.bin\r\nb.bin\r\n")
            elif mode == "mlsd_empty":
                d.sendall(b"type=file;size=3; \r\n")  # an entry without a name
            elif mode == "names_c1":
                # C1 CSI (U+009B) and a name too long for any local file system
                d.sendall("\u009b2J".encode() + b"A" * 300 + b"\r\n")
            else:
                d.sendall(b"listed-through-the-peer\r\n")
            d.close(); send("226 done")
        elif verb == "STOR":
            # reports how the upload arrived: segments and bytes, off this
            # socket's own counters once the client has closed it
            # ferry connects before STOR and sends nothing before the 150:
            # the sender's congestion control is read off its socket's
            # ss(8) line now, while it surely is open (seen only when the
            # sender is on this host)
            d = socket.create_connection(active, 10) if active else data_lst.accept()[0]
            peer = subprocess.run(["ss", "-tinH", "( sport = :%d and dport = :%d )"
                                   % (d.getpeername()[1], d.getsockname()[1])],
                                  capture_output=True, text=True, timeout=10).stdout
            cc = re.search(r"\n\s+([a-z0-9_]+) ", peer)
            send("150 send it")
            if mode == "stor_noread":
                time.sleep(30); return  # takes the connection, reads nothing
            if mode == "stor_cut_once" and RETRS[0] == 0:
                # the first upload is cut after 100,000 bytes
                RETRS[0] += 1
                got = 0
                while got < 100000:
                    b = d.recv(100000 - got)
                    if not b:
                        break
                    got += len(b)
                d.close(); send("426 connection lost"); continue
            n = 0
            while True:
                b = d.recv(1 << 16)
                if not b:
                    break
                n += len(b)
            ss = subprocess.run(["ss", "-tinH", "state", "close-wait",
                                 "( sport = :%d )" % d.getsockname()[1]],
                                capture_output=True, text=True, timeout=10).stdout
            m = re.search(r"segs_in:(\d+)", ss)
            d.close(); send("226 got %d bytes in %s segments from a %s sender"
                            % (n, m.group(1) if m else "?", cc.group(1) if cc else "?"))
        elif verb == "QUIT":
            send("221 bye"); return
        else:
            send("502 not here")

def session(c):
    try:
        serve(c)
    except OSError:
        pass
    finally:
        c.close()

# A thread per connection: the readiness probe must not hold up the client.
while True:
    c, _ = lst.accept()
    threading.Thread(target=session, args=(c,), daemon=True).start()
"""


def start_pyftpd(root, host="127.0.0.1"):
    port = free_port()
    return Server([PYTHON, "-c", PYFTPD_SCRIPT, root, str(port), host], port, host=host)


def start_fake(mode, host="127.0.0.1", wrap=()):
    """The fake server on host; wrap prefixes its command line (such as
    ip netns exec NAME, which execs, so the PID stays the server's)."""
    port = free_port()
    return Server(list(wrap) + [PYTHON, "-c", FAKE_SCRIPT, mode, str(port), host], port, host=host)


def run_ferry(args, input=None, cwd=None, env=None, timeout=60):
    """Runs ferry with stdin from input (bytes/str, or /dev/null)."""
    if isinstance(input, str):
        input = input.encode()
    e = dict(os.environ)
    e.pop("FERRY_PASSWORD", None)
    if env:
        e.update(env)
    return subprocess.run([FERRY] + list(args), input=input if input is not None else b"",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=e,
                          timeout=timeout)


def out(p):
    return p.stdout.decode("utf-8", "replace")


def err(p):
    return p.stderr.decode("utf-8", "replace")


class ServerFixture(unittest.TestCase):
    """One server per class (pyftpdlib or ferryd), a fresh root and local
    directory per test. Subclasses set server_kind and active."""

    server_kind = "pyftpdlib"
    active = False
    host = "127.0.0.1"   # or "::1": the whole suite over IPv6

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="ferry-client-")
        cls.root = os.path.join(cls.base, "root")
        os.mkdir(cls.root)
        if cls.server_kind == "ferryd":
            cls.share_root()
            cls.server = start_ferryd(cls.root, "-w", host=cls.host)
        else:
            cls.server = start_pyftpd(cls.root, cls.host)
        cls.port = cls.server.port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        for name in os.listdir(self.root):
            p = os.path.join(self.root, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        self.local = tempfile.mkdtemp(prefix="local-", dir=self.base)
        self.home = tempfile.mkdtemp(prefix="home-", dir=self.base)
        self.addCleanup(shutil.rmtree, self.local, True)
        self.addCleanup(shutil.rmtree, self.home, True)

    @classmethod
    def share_root(cls):
        """ferryd started as root serves as the root directory's owner (or
        nobody): hand the tree to that account so writes are allowed."""
        if cls.server_kind != "ferryd" or os.geteuid() != 0:
            return
        import pwd
        uid, gid = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid
        os.chown(cls.root, uid, gid)
        for top, dirs, files in os.walk(cls.root):
            for n in dirs + files:
                os.lchown(os.path.join(top, n), uid, gid)

    def mode_args(self):
        return ["-A"] if self.active else []

    def ferry(self, *args, input=None, env=None, timeout=60, cwd=None):
        self.share_root()
        e = {"HOME": self.home}
        if env:
            e.update(env)
        return run_ferry(self.mode_args() + list(args), input=input, cwd=cwd or self.local, env=e,
                         timeout=timeout)

    def oneshot(self, *cmd, **kw):
        return self.ferry(self.host, str(self.port), *cmd, **kw)

    def script(self, text, *extra, **kw):
        return self.ferry(*extra, self.host, str(self.port), input=text, **kw)

    def url(self, path=""):
        """ftp://HOST:PORT/path, the host bracketed when it is IPv6."""
        shown = "[%s]" % self.host if ":" in self.host else self.host
        return "ftp://%s:%d/%s" % (shown, self.port, path)

    def rpath(self, *parts):
        return os.path.join(self.root, *parts)

    def lpath(self, *parts):
        return os.path.join(self.local, *parts)

    def assertOk(self, p):
        self.assertEqual(p.returncode, 0, "ferry failed:\nstdout: %s\nstderr: %s" % (out(p), err(p)))

    def assertFailed(self, p, code=1):
        self.assertEqual(p.returncode, code, "expected exit %d:\nstdout: %s\nstderr: %s"
                         % (code, out(p), err(p)))

    def assertNoTemp(self, d):
        left = [n for n in os.listdir(d) if ".ferry-" in n]
        self.assertEqual(left, [], "temporary files left behind")


if __name__ == "__main__":
    sys.exit("helpers only")
