#!/usr/bin/python3
"""ferry benchmark harness: ferryd against vsftpd, proftpd, pure-ftpd and
pyftpdlib on loopback.  See bench/README.md for the rows and the method.

Run as root (it creates a system user, cgroups and a PAM service file):
    /usr/bin/python3 bench/run.py [--quick] [--reps N] [--rows 1,2,...]
"""
import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import platform
import pwd
import re
import resource
import select
import shutil
import signal
import socket
import stat
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "build")
PY = "/usr/bin/python3"  # the interpreter with pyftpdlib
USER = "ferrybench"      # system account the anchors authenticate
VUSER = "bench"          # ferryd's virtual user (same password, same hash)
PASSWORD = "ferry-bench-pw"
SALT = "ferrybenchsalt00"
HOST = "127.0.0.1"
MiB = 1 << 20
GiB = 1 << 30
NULL = "/dev/null"  # replaced by a private null device if /dev/null is broken

DEBS = ["vsftpd", "pure-ftpd", "proftpd-core", "iperf3", "libiperf0",
        # run-time libraries the unpacked .debs need that may be missing
        "libwrap0", "libhiredis0.14", "libmemcached11", "libmemcachedutil2",
        "libhashkit2", "libpcre2-posix3", "libsctp1"]

ANCHORS = ["vsftpd", "proftpd", "pure-ftpd", "pyftpdlib"]
SERVERS = ["ferryd"] + ANCHORS

PORTS = {"ferryd": 21210, "vsftpd": 21211, "proftpd": 21212,
         "pure-ftpd": 21213, "pyftpdlib": 21214,
         "ferryd-tls": 21215, "vsftpd-tls": 21216}
# Passive ranges below the kernel's ephemeral range so client ports never
# collide with them.  pure-ftpd admits at most half its range as clients.
PASV = {"vsftpd": (4000, 5999), "proftpd": (6000, 7999),
        "pyftpdlib": (8000, 9999), "pure-ftpd": (10000, 31999),
        "vsftpd-tls": (2000, 3999)}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, timeout=120, check=True, **kw):
    return subprocess.run(cmd, timeout=timeout, check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


# ---------------------------------------------------------------- setup

def cache_dir():
    d = os.environ.get("FERRY_BENCH_CACHE")
    if not d:
        d = "/var/cache/ferry-bench"
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            d = os.path.join(os.environ.get("XDG_CACHE_HOME",
                             os.path.expanduser("~/.cache")), "ferry-bench")
    os.makedirs(d, exist_ok=True)
    return d


def fetch_debs(cache):
    debs, root = os.path.join(cache, "debs"), os.path.join(cache, "root")
    os.makedirs(debs, exist_ok=True)
    have = os.listdir(debs)
    missing = [p for p in DEBS if not any(f.startswith(p + "_") for f in have)]
    if missing:
        log("bench: apt-get download", " ".join(missing))
        r = run(["apt-get", "download"] + missing, cwd=debs, check=False,
                timeout=300)
        if r.returncode != 0:
            run(["apt-get", "update"], timeout=300, check=False)
            run(["apt-get", "download"] + missing, cwd=debs, timeout=300)
    stamp = os.path.join(root, ".unpacked")
    debfiles = sorted(f for f in os.listdir(debs) if f.endswith(".deb"))
    if not os.path.exists(stamp) or open(stamp).read() != "\n".join(debfiles):
        os.makedirs(root, exist_ok=True)
        for f in debfiles:
            run(["dpkg", "-x", os.path.join(debs, f), root])
        with open(stamp, "w") as fh:
            fh.write("\n".join(debfiles))
    return root


def make_hash():
    r = run(["openssl", "passwd", "-6", "-salt", SALT, PASSWORD])
    h = r.stdout.strip()
    assert h.startswith("$6$"), h
    return h


def ensure_user(home, pwhash):
    try:
        pwd.getpwnam(USER)
    except KeyError:
        run(["useradd", "-M", "-U", "-d", home, "-s", "/bin/sh", USER])
    run(["usermod", "-d", home, "-p", pwhash, USER])
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def ensure_pam():
    path = "/etc/pam.d/ferry-bench"
    text = ("# ferry bench: password check through /etc/shadow only\n"
            "auth required pam_unix.so\naccount required pam_unix.so\n"
            "session required pam_permit.so\n")
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as fh:
            fh.write(text)


def write_random(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path + ".tmp", "wb") as fh:
        left = size
        while left:
            n = min(left, 8 * MiB)
            fh.write(os.urandom(n))
            left -= n
    os.rename(path + ".tmp", path)


def make_data(data, cfg, uid, gid):
    os.makedirs(os.path.join(data, "small"), exist_ok=True)
    os.makedirs(os.path.join(data, "conc"), exist_ok=True)
    os.makedirs(os.path.join(data, "up"), exist_ok=True)
    write_random(os.path.join(data, "big.bin"), cfg.big)
    blob = hashlib.sha256(b"small").digest() * 512  # 16 KiB
    for i in range(cfg.nsmall):
        p = os.path.join(data, "small", "f%04d" % i)
        if not os.path.exists(p):
            with open(p, "wb") as fh:
                fh.write(blob)
    sums = {}
    for i in range(cfg.nconc):
        p = os.path.join(data, "conc", "c%02d.bin" % i)
        write_random(p, cfg.conc_size)
        with open(p, "rb") as fh:
            sums[p] = hashlib.file_digest(fh, "sha256").hexdigest()
    for dirpath, dirs, files in os.walk(data):
        os.chown(dirpath, uid, gid)
    os.chmod(data, 0o755)
    return sums


# ------------------------------------------------------- cgroup accounting

class CG:
    """A cpuacct cgroup (v1) or a cgroup v2 directory per server."""
    def __init__(self, name):
        self.path = None
        for base, f in (("/sys/fs/cgroup/cpuacct", "cpuacct.usage"),
                        ("/sys/fs/cgroup", "cpu.stat")):
            if os.path.exists(os.path.join(base, f)):
                p = os.path.join(base, "ferry-bench", name)
                try:
                    os.makedirs(p, exist_ok=True)
                    self.path, self.kind = p, f
                    break
                except OSError:
                    pass
        self.pid = None

    def procs(self):
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs")) as fh:
                return [int(x) for x in fh.read().split()]
        return [self.pid] + children_of(self.pid)

    def cpu(self):
        """Server CPU seconds so far (user+system, exited children included)."""
        if self.path and self.kind == "cpuacct.usage":
            with open(os.path.join(self.path, "cpuacct.usage")) as fh:
                return int(fh.read()) / 1e9
        if self.path:
            with open(os.path.join(self.path, "cpu.stat")) as fh:
                for line in fh:
                    if line.startswith("usage_usec"):
                        return int(line.split()[1]) / 1e6
        tck = os.sysconf("SC_CLK_TCK")
        t = 0
        for p in self.procs():
            try:
                f = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
                t += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
            except OSError:
                pass
        return t / tck

    def mem(self):
        """(RSS, PSS) in KiB summed over every process of the server."""
        rss = pss = 0
        for p in self.procs():
            try:
                with open("/proc/%d/smaps_rollup" % p) as fh:
                    for line in fh:
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1])
            except OSError:
                pass
        return rss, pss

    def remove(self):
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError:
                pass


def children_of(pid):
    out, todo = [], [pid]
    for _ in range(100000):
        if not todo:
            break
        p = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as fh:
                kids = [int(x) for x in fh.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


# ------------------------------------------------------------- servers

class Server:
    def __init__(self, name, cmd, port, env=None, cwd=None, user=None):
        self.name, self.cmd, self.port = name, cmd, port
        self.env, self.cwd, self.user = env, cwd, user
        self.cg = CG(name)
        self.proc = None

    def start(self, logdir):
        # A server already on the port (another bench run, a leftover) would
        # answer in place of this one and be measured under its name.
        try:
            socket.create_connection((HOST, self.port), timeout=2).close()
        except OSError:
            pass
        else:
            raise RuntimeError("port %d is already in use (another bench run?)" % self.port)
        cgp = self.cg.path
        # Join the cgroup before exec so every process the server forks is
        # counted, even the ones that exit before we read the totals.
        wrap = ["/bin/sh", "-c",
                ('echo $$ > "%s/cgroup.procs" && exec "$@"' % cgp) if cgp
                else 'exec "$@"', "sh"] + self.cmd
        self.log = open(os.path.join(logdir, self.name + ".log"), "w")
        self.proc = subprocess.Popen(
            wrap, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            user=self.user)
        self.cg.pid = self.proc.pid
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (see %s)" %
                                   (self.name, self.log.name))
            try:
                s = socket.create_connection((HOST, self.port), timeout=2)
                s.settimeout(5)
                g = s.recv(512)
                s.close()
                if g.startswith(b"220"):
                    time.sleep(0.3)
                    self.base_mem = self.cg.mem()  # row 5's baseline
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("%s did not answer on port %d" % (self.name, self.port))

    def stop(self):
        if self.proc is None:
            return  # never started: its cgroup may belong to another run
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        # vsftpd/proftpd sessions may live in their own process groups
        # (setsid per session); end whatever is left in this server's cgroup.
        for _ in range(50):
            left = [p for p in self.cg.procs() if p] if self.cg.path else []
            if not left:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.cg.remove()


def conf_vsftpd(cache, data, port, pasv, tls=None):
    empty = os.path.join(cache, "empty")
    os.makedirs(empty, exist_ok=True)
    os.chmod(empty, 0o755)
    lines = [
        "listen=YES", "listen_ipv6=NO", "listen_address=%s" % HOST,
        "listen_port=%d" % port, "background=NO",
        "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
        "local_umask=022", "local_root=%s" % data,
        "pasv_enable=YES", "pasv_min_port=%d" % pasv[0],
        "pasv_max_port=%d" % pasv[1], "pasv_address=%s" % HOST,
        "max_clients=0", "max_per_ip=0", "max_login_fails=3",
        "pam_service_name=ferry-bench", "secure_chroot_dir=%s" % empty,
        "xferlog_enable=NO", "dual_log_enable=NO", "syslog_enable=NO",
        "vsftpd_log_file=/dev/null", "log_ftp_protocol=NO",
        "idle_session_timeout=1800", "data_connection_timeout=300",
        "connect_from_port_20=NO", "tcp_wrappers=NO", "userlist_enable=NO",
        "dirmessage_enable=NO", "use_localtime=NO", "ftpd_banner=ready",
        "delay_failed_login=0",
    ]
    if tls:
        lines += ["ssl_enable=YES", "rsa_cert_file=%s" % tls[0],
                  "rsa_private_key_file=%s" % tls[1], "ssl_ciphers=HIGH",
                  "ssl_sslv2=NO", "ssl_sslv3=NO", "ssl_tlsv1=YES",
                  "force_local_logins_ssl=YES", "force_local_data_ssl=YES"]
    path = os.path.join(cache, "vsftpd%s.conf" % ("-tls" if tls else ""))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def conf_proftpd(cache, data, port, pasv):
    path = os.path.join(cache, "proftpd.conf")
    with open(path, "w") as fh:
        fh.write("""ServerType standalone
ServerName "ferry-bench"
DefaultServer on
DefaultAddress %(host)s
SocketBindTight on
Port %(port)d
User %(user)s
Group %(user)s
Umask 022
MaxInstances 30000
MaxClients none
MaxClientsPerHost none
MaxLoginAttempts 3
DefaultRoot %(data)s
AllowOverwrite on
PassivePorts %(lo)d %(hi)d
ScoreboardFile %(cache)s/proftpd.scoreboard
PidFile %(cache)s/proftpd.pid
DelayTable none
UseReverseDNS off
WtmpLog off
TransferLog none
SystemLog none
RequireValidShell off
UseFtpUsers off
AuthOrder mod_auth_unix.c
TimeoutIdle 1800
TimeoutNoTransfer 1800
<IfModule mod_delay.c>
  DelayEngine off
</IfModule>
<IfModule mod_auth_pam.c>
  AuthPAM off
</IfModule>
<IfModule mod_ctrls.c>
  ControlsEngine off
</IfModule>
<Directory />
  AllowOverwrite on
</Directory>
""" % {"host": HOST, "port": port, "user": USER, "data": data,
       "lo": pasv[0], "hi": pasv[1], "cache": cache})
    return path


PYFTPD = r'''
import crypt, logging, sys, warnings
from pyftpdlib.authorizers import DummyAuthorizer, AuthenticationFailed
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
port, data, user, pwhash, lo, hi = sys.argv[1:7]
class CryptAuthorizer(DummyAuthorizer):
    # the same $6$ check the other servers make
    def validate_authentication(self, username, password, handler):
        if username != user or crypt.crypt(password, pwhash) != pwhash:
            raise AuthenticationFailed("Authentication failed.")
a = CryptAuthorizer()
a.add_user(user, "", data, perm="elradfmwMT")
logging.basicConfig(level=logging.WARNING)
FTPHandler.authorizer = a
FTPHandler.passive_ports = range(int(lo), int(hi) + 1)
FTPHandler.timeout = 1800
FTPHandler.banner = "ready"
s = FTPServer(("127.0.0.1", int(port)), FTPHandler)
s.max_cons = 0
s.max_cons_per_ip = 0
s.serve_forever()
'''


def make_servers(cfg, cache, root, data, pwhash, tlsdir):
    libs = ":".join(os.path.join(root, p) for p in
                    ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"))
    env = dict(os.environ, LD_LIBRARY_PATH=libs)
    users = os.path.join(cache, "ferryd-users")
    with open(users, "w") as fh:
        fh.write("%s:%s:%s:rw\n" % (VUSER, pwhash, data))
    ferryd = [os.path.join(BUILD, "ferryd"), "--root", data, "-w", "-u", users,
              "-b", HOST, "--max-sessions", "20000", "--max-per-ip", "0",
              "--idle-timeout", "1800", "--user", USER]
    pyscript = os.path.join(cache, "pyftpd.py")
    with open(pyscript, "w") as fh:
        fh.write(PYFTPD)
    os.chmod(pyscript, 0o644)
    sv = {}
    sv["ferryd"] = Server("ferryd", ferryd + ["--port", str(PORTS["ferryd"])],
                          PORTS["ferryd"])
    sv["vsftpd"] = Server("vsftpd", [os.path.join(root, "usr/sbin/vsftpd"),
                          conf_vsftpd(cache, data, PORTS["vsftpd"], PASV["vsftpd"])],
                          PORTS["vsftpd"], env=env)
    sv["proftpd"] = Server("proftpd", [os.path.join(root, "usr/sbin/proftpd"),
                           "-n", "-q", "-c",
                           conf_proftpd(cache, data, PORTS["proftpd"], PASV["proftpd"])],
                           PORTS["proftpd"], env=env)
    lo, hi = PASV["pure-ftpd"]
    sv["pure-ftpd"] = Server("pure-ftpd", [
        os.path.join(root, "usr/sbin/pure-ftpd"), "-S", "%s,%d" % (HOST, PORTS["pure-ftpd"]),
        "-l", "unix", "-E", "-H", "-p", "%d:%d" % (lo, hi),
        "-c", "20000", "-C", "20000", "-I", "30", "-f", "none", "-u", "1",
        "-P", HOST], PORTS["pure-ftpd"], env=env)
    lo, hi = PASV["pyftpdlib"]
    # setpriv drops to the bench account after the wrapper joined the cgroup
    sv["pyftpdlib"] = Server("pyftpdlib", [
        "setpriv", "--reuid", USER, "--regid", USER, "--init-groups",
        PY, "-W", "ignore", pyscript, str(PORTS["pyftpdlib"]), data, VUSER,
        pwhash, str(lo), str(hi)], PORTS["pyftpdlib"])
    if cfg.tls:
        cert, key = os.path.join(tlsdir, "cert.pem"), os.path.join(tlsdir, "key.pem")
        sv["ferryd-tls"] = Server("ferryd-tls", ferryd + [
            "--port", str(PORTS["ferryd-tls"]), "--tls-cert", cert, "--tls-key", key],
            PORTS["ferryd-tls"])
        sv["vsftpd-tls"] = Server("vsftpd-tls", [os.path.join(root, "usr/sbin/vsftpd"),
                                  conf_vsftpd(cache, data, PORTS["vsftpd-tls"],
                                              PASV["vsftpd-tls"], (cert, key))],
                                  PORTS["vsftpd-tls"], env=env)
    return sv, env


def login_name(server):
    return VUSER if server.startswith("ferryd") or server == "pyftpdlib" else USER


# ------------------------------------------------------- cell preparation

def warm(paths):
    """Re-read files into the page cache: this VM drops unread pages."""
    buf = bytearray(4 * MiB)
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            for _ in range(1 << 20):
                if not fh.readinto(buf):
                    break


def prefault(nbytes):
    """Touch fresh memory so the host hands pages back before the cell."""
    b = bytearray(nbytes)
    b[::4096] = b"\x01" * len(range(0, nbytes, 4096))
    del b


class Pinned:
    """The data set held in the page cache for the whole run: each file
    mapped shared, populated and locked (MAP_LOCKED), so the pages every
    server reads stay resident. This VM runs a DAMON reclaimer that pages
    out memory it sampled as cold for 30 s, and its sampling is coarse: a
    file re-read just before a cell could still be dropped during it, and
    RETR rows measured the disk instead of the servers."""

    PROT_READ, MAP_SHARED, MAP_POPULATE, MAP_LOCKED = 1, 1, 0x8000, 0x2000

    def __init__(self, paths):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.mmap.restype = ctypes.c_void_p
        self.libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                   ctypes.c_int, ctypes.c_int, ctypes.c_long]
        self.libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.maps = []
        for path in paths:
            size = os.path.getsize(path)
            if size == 0:
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                addr = self.libc.mmap(None, size, self.PROT_READ,
                                      self.MAP_SHARED | self.MAP_POPULATE | self.MAP_LOCKED, fd, 0)
            finally:
                os.close(fd)
            if addr in (None, ctypes.c_void_p(-1).value):
                self.release()
                raise OSError(ctypes.get_errno(), "mmap %s" % path)
            self.maps.append((addr, size))
        self.bytes = sum(size for _, size in self.maps)

    def release(self):
        for addr, size in self.maps:
            self.libc.munmap(addr, size)
        self.maps = []


def data_files(data):
    return [os.path.join(d, f) for d, _, fs in os.walk(data) if os.path.basename(d) != "up"
            for f in fs]


def ensure_null():
    """(Re)make the private null device. A client that replaces its output
    file by renaming a temporary file over it turns the device into a
    regular file, and every later download would then measure disk writes."""
    st = os.lstat(NULL) if os.path.lexists(NULL) else None
    if st is None or not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        if st is not None:
            log("bench: warning: %s was replaced (%s); made again" % (NULL, stat.filemode(st.st_mode)))
            os.unlink(NULL)
        os.mknod(NULL, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(NULL, 0o666)


def prepare(cfg, paths, mem=None):
    ensure_null()
    warm(paths)
    prefault(mem if mem is not None else min(2 * GiB, cfg.big + 256 * MiB))


def wait4(proc, timeout):
    """Wait for a child; return (exit code, user+sys CPU seconds)."""
    deadline = time.time() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru.ru_utime + ru.ru_stime
        if time.time() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return -9, ru.ru_utime + ru.ru_stime
        time.sleep(0.005)


def client(cmd, timeout=600, stdout=subprocess.PIPE):
    """Run a client; return (wall s, client CPU s, stdout, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    out = err = b""
    if stdout == subprocess.PIPE:
        # read before reaping so a chatty client can't block on a full pipe
        box = {}
        th = threading.Thread(target=lambda: box.update(
            o=p.stdout.read(), e=p.stderr.read()))
        th.start()
        rc, cpu = wait4(p, timeout)
        th.join(30)
        out, err = box.get("o", b""), box.get("e", b"")
    else:
        rc, cpu = wait4(p, timeout)
        err = p.stderr.read()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError("%s failed (%s): %s" % (cmd[0], rc, err.decode(errors="replace")[-500:]))
    return wall, cpu, out.decode(), err.decode()


def url(server, path, cfg):
    return "ftp://%s:%d/%s" % (HOST, PORTS[server], path)


def curl_base(server, tls=False):
    c = ["curl", "-sS", "--fail", "--user", "%s:%s" % (login_name(server), PASSWORD),
         "--ftp-pasv", "--connect-timeout", "10", "--max-time", "600"]
    if tls:
        c += ["--ssl-reqd", "-k"]
    return c


# ------------------------------------------------------------------ rows

def row_retr(cfg, sv, server, tls=False):
    prepare(cfg, [cfg.bigpath])
    c0 = sv[server].cg.cpu()
    wall, ccpu, out, _ = client(curl_base(server, tls) + [
        "-o", NULL, "-w", "%{size_download} %{time_total}",
        url(server, "big.bin", cfg)])
    scpu = sv[server].cg.cpu() - c0
    size, t = out.split()
    assert int(size) == cfg.big, out
    return {"MB/s": cfg.big / float(t) / 1e6, "cpu s/GiB": scpu / cfg.big * GiB}


def row_stor(cfg, sv, server, tls=False):
    prepare(cfg, [cfg.bigpath], mem=min(3 * GiB, 2 * cfg.big + 256 * MiB))
    name = "up/%s-%d.bin" % (server, os.getpid())
    dest = os.path.join(cfg.data, name)
    c0 = sv[server].cg.cpu()
    try:
        wall, ccpu, out, _ = client(curl_base(server, tls) + [
            "-T", cfg.bigpath, "-w", "%{size_upload} %{time_total}",
            url(server, name, cfg)])
        scpu = sv[server].cg.cpu() - c0
        size, t = out.split()
        got = os.path.getsize(dest)
        assert int(size) == cfg.big and got == cfg.big, (out, got)
    finally:
        if os.path.exists(dest):
            os.unlink(dest)
    return {"MB/s": cfg.big / float(t) / 1e6, "cpu s/GiB": scpu / cfg.big * GiB}


def row_small(cfg, sv, server):
    files = ["small/f%04d" % i for i in range(cfg.nsmall)]
    prepare(cfg, [os.path.join(cfg.data, f) for f in files], mem=256 * MiB)
    # curl keeps one control connection for many URLs but stalls between
    # them here, so the client is bench/small_client.c: C, so that it costs
    # a fraction of any server's time per file; a process of its own, so
    # its CPU time is measured.
    c0 = sv[server].cg.cpu()
    wall, ccpu, out, _ = client([os.path.join(BUILD, "small_client"), str(PORTS[server]),
                                 login_name(server), PASSWORD, str(cfg.nsmall)])
    scpu = sv[server].cg.cpu() - c0
    inner, total = out.split()
    assert int(total) == cfg.nsmall * 16384, (total, cfg.nsmall)
    return {"files/s": cfg.nsmall / float(inner), "server us/file": scpu / cfg.nsmall * 1e6,
            "client us/file": ccpu / cfg.nsmall * 1e6}


def row_small_put(cfg, sv, server):
    """Row 3 upwards: the same count of 16 KiB files stored over one session,
    each under a new name (no server may skip creating a file). The files
    stay until the run ends: ext4 steers new inodes away from ones freed in
    the last seconds, at a cost per file that would fall on whichever server
    came after a deletion."""
    cfg.cell_no += 1
    prefix = "up/sc-%d-%s-%d-" % (os.getpid(), server, cfg.cell_no)
    paths = [os.path.join(cfg.data, "%s%04d" % (prefix, i)) for i in range(cfg.nsmall)]
    cfg.uploaded.extend(paths)
    c0 = sv[server].cg.cpu()
    wall, ccpu, out, _ = client([os.path.join(BUILD, "small_client"), str(PORTS[server]),
                                 login_name(server), PASSWORD, str(cfg.nsmall), "put", prefix])
    scpu = sv[server].cg.cpu() - c0
    inner, total = out.split()
    assert int(total) == cfg.nsmall * 16384, (total, cfg.nsmall)
    short = [p for p in paths if os.path.getsize(p) != 16384]
    assert not short, "%d uploads are not 16 KiB, e.g. %s" % (len(short), short[0])
    return {"files/s": cfg.nsmall / float(inner), "server us/file": scpu / cfg.nsmall * 1e6,
            "client us/file": ccpu / cfg.nsmall * 1e6}


def row_list(cfg, sv, server, verb):
    """Row 3 listings: "VERB small" (the small files' directory) over one
    session, repeated; vsftpd has no MLSD."""
    reps = 20 if cfg.quick else 100
    c0 = sv[server].cg.cpu()
    wall, ccpu, out, _ = client([os.path.join(BUILD, "small_client"), str(PORTS[server]),
                                 login_name(server), PASSWORD, str(reps), "list", verb, "small"])
    scpu = sv[server].cg.cpu() - c0
    inner, total = out.split()
    assert int(total) >= reps * cfg.nsmall * len("f0000\r\n"), (verb, total)
    return {"listings/s": reps / float(inner), "server us/listing": scpu / reps * 1e6}


def read_reply(f):
    line = f.readline()
    if len(line) < 4:
        raise OSError("connection closed: %r" % line)
    code = line[:3]
    if line[3:4] == b"-":
        for _ in range(1000):
            line = f.readline()
            if not line:
                raise OSError("closed in multi-line reply")
            if line[:3] == code and line[3:4] == b" ":
                break
    return int(code)


def one_session(port, user, src=None, quit=True, timeout=60):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((HOST, port))
    f = s.makefile("rb")
    if read_reply(f) != 220:
        raise OSError("no greeting")
    s.sendall(b"USER %s\r\n" % user.encode())
    if read_reply(f) != 331:
        raise OSError("USER refused")
    s.sendall(b"PASS %s\r\n" % PASSWORD.encode())
    code = read_reply(f)
    if code != 230:
        raise OSError("PASS refused: %d" % code)
    if quit:
        s.sendall(b"QUIT\r\n")
        read_reply(f)
        f.close()
        s.close()
        return None
    return s, f


def srcaddr(i):
    return "127.0.%d.%d" % (1 + (i // 250) % 200, 2 + i % 250)


def row_churn(cfg, sv, server):
    prepare(cfg, [], mem=256 * MiB)
    user, port = login_name(server), PORTS[server]
    n, par = cfg.nchurn, 32
    counter = iter(range(n))
    lock = threading.Lock()
    errors = []

    def worker():
        for _ in range(n):
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                one_session(port, user, src=srcaddr(i))
            except OSError as e:
                errors.append(repr(e))

    c0 = sv[server].cg.cpu()
    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker) for _ in range(par)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(600)
    wall = time.perf_counter() - t0
    time.sleep(0.5)  # let forking servers finish tearing sessions down
    scpu = sv[server].cg.cpu() - c0
    if errors:
        raise RuntimeError("%d/%d sessions failed, e.g. %s" % (len(errors), n, errors[0]))
    return {"sessions/s": n / wall, "server ms/session": scpu / n * 1e3}


async def _hold(port, user, n, conc, held):
    sem = asyncio.Semaphore(conc)
    errors = []

    async def reply(r):
        line = await r.readline()
        code = line[:3]
        if line[3:4] == b"-":
            for _ in range(1000):
                line = await r.readline()
                if not line or (line[:3] == code and line[3:4] == b" "):
                    break
        return int(code) if code.isdigit() else 0

    async def one(i):
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    HOST, port, local_addr=(srcaddr(i), 0)), 60)
                assert await asyncio.wait_for(reply(r), 60) == 220
                w.write(b"USER %s\r\n" % user.encode())
                assert await asyncio.wait_for(reply(r), 60) == 331
                w.write(b"PASS %s\r\n" % PASSWORD.encode())
                assert await asyncio.wait_for(reply(r), 60) == 230
                held.append((r, w))
            except (OSError, AssertionError, asyncio.TimeoutError, ValueError) as e:
                errors.append(repr(e) or type(e).__name__)

    await asyncio.gather(*(one(i) for i in range(n)))
    return errors


def row_idle(cfg, sv, server, n):
    prepare(cfg, [], mem=512 * MiB)
    user, port = login_name(server), PORTS[server]
    cg = sv[server].cg
    # Per session = (held - the server's footprint right after it started)
    # / n: a baseline taken just before the row would hide memory an
    # allocator kept from earlier rows (and can go negative).
    before = sv[server].base_mem
    loop = asyncio.new_event_loop()
    held = []
    res = {}
    try:
        t0 = time.perf_counter()
        errors = loop.run_until_complete(_hold(port, user, n, 64, held))
        tfill = time.perf_counter() - t0
        if errors:
            raise RuntimeError("%d/%d idle sessions failed, e.g. %s" %
                               (len(errors), n, errors[0]))
        time.sleep(1.0)
        after = cg.mem()
        lat = []
        for i in range(cfg.nlat):
            t = time.perf_counter()
            one_session(port, user, src="127.0.250.%d" % (2 + i))
            lat.append((time.perf_counter() - t) * 1e3)
        res = {
            "RSS MiB total": after[0] / 1024, "PSS MiB total": after[1] / 1024,
            "RSS MiB at start": before[0] / 1024, "PSS MiB at start": before[1] / 1024,
            "RSS KB/session": (after[0] - before[0]) * 1.024 / n,
            "PSS KB/session": (after[1] - before[1]) * 1.024 / n,
            "login ms": statistics.median(lat),
            "fill s": tfill, "procs": len(cg.procs()),
        }
    finally:
        for r, w in held:
            w.close()
        loop.run_until_complete(asyncio.sleep(0.2))
        loop.close()
    # give forking servers time to reap n sessions
    for _ in range(300):
        if len(cg.procs()) <= 8:
            break
        time.sleep(0.1)
    return res


def row_conc(cfg, sv, server):
    files = sorted(cfg.sums)
    prepare(cfg, files, mem=min(3 * GiB, 2 * cfg.nconc * cfg.conc_size + 256 * MiB))
    outdir = tempfile.mkdtemp(prefix="conc-", dir="/dev/shm")
    try:
        c0 = sv[server].cg.cpu()
        t0 = time.perf_counter()
        procs = []
        for i, p in enumerate(files):
            rel = os.path.relpath(p, cfg.data)
            procs.append(subprocess.Popen(curl_base(server) + [
                "-o", os.path.join(outdir, "%02d" % i), url(server, rel, cfg)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        rcs = [wait4(p, 600)[0] for p in procs]
        wall = time.perf_counter() - t0
        time.sleep(0.5)  # forking servers finish tearing sessions down
        scpu = sv[server].cg.cpu() - c0
        bad = [i for i, rc in enumerate(rcs) if rc != 0]
        if bad:
            raise RuntimeError("%d curl clients failed: %s" % (len(bad),
                               procs[bad[0]].stderr.read()[-300:]))
        for i, p in enumerate(files):
            with open(os.path.join(outdir, "%02d" % i), "rb") as fh:
                if hashlib.file_digest(fh, "sha256").hexdigest() != cfg.sums[p]:
                    raise RuntimeError("checksum mismatch for %s" % p)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    total = cfg.nconc * cfg.conc_size
    # The same sessions without their transfers (curl -I: login, CWD, MDTM,
    # SIZE, REST): what the row spends on SHA-512 crypt and commands, so the
    # table can show the data path's own CPU beside the total.
    c0 = sv[server].cg.cpu()
    procs = [subprocess.Popen(curl_base(server) + ["-I", "-o", NULL,
                                                   url(server, os.path.relpath(p, cfg.data), cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for p in files]
    if any(wait4(p, 120)[0] != 0 for p in procs):
        raise RuntimeError("curl -I sessions failed against %s" % server)
    time.sleep(0.5)
    sessions_cpu = sv[server].cg.cpu() - c0
    return {"MB/s": total / wall / 1e6, "cpu s/GiB": scpu / total * GiB,
            "cpu s/GiB without sessions": max(0.0, scpu - sessions_cpu) / total * GiB,
            "sessions ms/session": sessions_cpu / len(files) * 1e3}


def row_client(cfg, sv, tool, direction):
    """Row 8: a client downloading/uploading the big file from ferryd."""
    port = PORTS["ferryd"]
    up = "up/client-%s-%d.bin" % (tool, os.getpid())
    dest = os.path.join(cfg.data, up)
    prepare(cfg, [cfg.bigpath], mem=min(3 * GiB, 2 * cfg.big + 256 * MiB))
    if tool == "ferry":
        base = "ftp://%s:%s@%s:%d/" % (VUSER, PASSWORD, HOST, port)
        cmd = [os.path.join(BUILD, "ferry"), "-q"]
        cmd += ([base + "big.bin", NULL] if direction == "get"
                else ["-T", cfg.bigpath, base + up])
    elif tool == "curl":
        cmd = curl_base("ferryd") + (
            ["-o", NULL, url("ferryd", "big.bin", cfg)] if direction == "get"
            else ["-T", cfg.bigpath, url("ferryd", up, cfg)])
    else:
        op = ("get big.bin -o %s" % NULL if direction == "get"
              else "put %s -o %s" % (cfg.bigpath, up))
        cmd = ["lftp", "-c",
               "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 30; "
               "set xfer:clobber on; set cmd:fail-exit yes; "
               "open -u %s,%s -p %d %s; %s" % (VUSER, PASSWORD, port, HOST, op)]
    try:
        wall, ccpu, _, _ = client(cmd)
        if direction == "put":
            assert os.path.getsize(dest) == cfg.big, "short upload"
    finally:
        if os.path.exists(dest):
            os.unlink(dest)
    return {"MB/s": cfg.big / wall / 1e6, "client cpu s/GiB": ccpu / cfg.big * GiB}


# ---------------------------------------------------------------- limits

def limit_iperf(cfg, root, env, zerocopy):
    iperf = os.path.join(root, "usr/bin/iperf3")
    port = 21299
    srv = subprocess.Popen([iperf, "-s", "-1", "-B", HOST, "-p", str(port)],
                           env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        prepare(cfg, [], mem=512 * MiB)
        cmd = [iperf, "-c", HOST, "-p", str(port), "-t", str(cfg.iperf_t), "-J"]
        if zerocopy:
            cmd.append("-Z")
        # no probe connection: "-s -1" would take it as its one client
        for _ in range(50):
            r = run(cmd, env=env, timeout=cfg.iperf_t + 60, check=False)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        j = json.loads(r.stdout)
        return {"MB/s": j["end"]["sum_received"]["bits_per_second"] / 8e6}
    finally:
        if srv.poll() is None:
            os.killpg(srv.pid, signal.SIGKILL)
        srv.wait(10)


def limit_pagecache(cfg):
    warm([cfg.bigpath])
    r = run(["dd", "if=" + cfg.bigpath, "of=" + NULL, "bs=1M"],
            env=dict(os.environ, LC_ALL="C"))
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", r.stderr)
    return {"MB/s": int(m.group(1)) / float(m.group(2)) / 1e6}


def bounded_blocking(sock, seconds=60):
    """Blocking, as sendfile and splice need, with every wait bounded by
    the kernel's SO_RCVTIMEO / SO_SNDTIMEO instead of Python's timeout
    (which makes the descriptor non-blocking)."""
    sock.settimeout(None)
    tv = struct.pack("ll", seconds, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)


def limit_splice_write(cfg):
    """Row 2 with no server: the 1 GiB file sent over loopback TCP (a
    child's sendfile) and spliced socket -> pipe -> file in the data
    directory by this thread the way ferryd does it (blocks reserved with
    fallocate; woken by poll once 256 KiB wait, SO_RCVLOWAT; 512 KiB
    splices), with nothing else. Its CPU
    (this thread's, from getrusage) is the kernel's own cost of an upload:
    the TCP receive, the copy into the page cache and ext4's block work."""
    prepare(cfg, [cfg.bigpath], mem=min(3 * GiB, 2 * cfg.big + 256 * MiB))
    dest = os.path.join(cfg.data, "up", "limit-%d.bin" % os.getpid())
    chunk = 512 * 1024
    ls = socket.socket()
    ls.bind((HOST, 0))
    ls.listen(1)
    ls.settimeout(60)
    sender = os.fork()
    if sender == 0:
        status = 1
        try:
            with socket.create_connection(ls.getsockname(), timeout=60) as s, \
                    open(cfg.bigpath, "rb") as f:
                bounded_blocking(s)
                off = 0
                while off < cfg.big:
                    off += os.sendfile(s.fileno(), f.fileno(), off, cfg.big - off)
            status = 0
        finally:
            os._exit(status)
    conn = None
    r = w = fd = -1
    try:
        conn, _ = ls.accept()
        conn.setblocking(False)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 256 * 1024)
        readable = select.poll()
        readable.register(conn, select.POLLIN)
        r, w = os.pipe()
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, chunk)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        u0 = resource.getrusage(resource.RUSAGE_THREAD)
        t0 = time.monotonic()
        os.posix_fallocate(fd, 0, cfg.big)  # ferryd reserves ahead too
        total = 0
        while total < cfg.big:
            if not readable.poll(60 * 1000):
                raise TimeoutError("no data for 60 s")
            try:
                n = os.splice(conn.fileno(), w, chunk, flags=os.SPLICE_F_NONBLOCK)
            except BlockingIOError:
                continue
            if n == 0:
                break
            while n:
                m = os.splice(r, fd, n)
                n -= m
                total += m
        t1 = time.monotonic()
        u1 = resource.getrusage(resource.RUSAGE_THREAD)
        assert total == cfg.big, total
    finally:
        for x in (r, w, fd):
            if x >= 0:
                os.close(x)
        if conn:
            conn.close()
        ls.close()
        _, status = os.waitpid(sender, 0)
        if os.path.exists(dest):
            os.unlink(dest)
    assert status == 0, "the sender failed"
    cpu = u1.ru_utime - u0.ru_utime + u1.ru_stime - u0.ru_stime
    return {"MB/s": total / (t1 - t0) / 1e6, "cpu s/GiB": cpu / total * GiB}


def limit_pagecache_write(cfg):
    """Writing the page cache alone, no network: dd from /dev/zero into a
    1 GiB file in the data directory, 512 KiB at a time, its blocks
    reserved first as ferryd reserves an upload's; dd's CPU from wait4."""
    prepare(cfg, [], mem=min(3 * GiB, cfg.big + 512 * MiB))
    dest = os.path.join(cfg.data, "up", "limit-dd-%d.bin" % os.getpid())
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, cfg.big)
        finally:
            os.close(fd)
        t0 = time.monotonic()
        proc = subprocess.Popen(["dd", "if=/dev/zero", "of=" + dest, "bs=512K",
                                 "conv=notrunc", "count=%d" % (cfg.big // (512 * 1024))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        code, cpu = wait4(proc, 600)
        wall = time.monotonic() - t0
        assert code == 0 and os.path.getsize(dest) == cfg.big, code
    finally:
        if os.path.exists(dest):
            os.unlink(dest)
    return {"MB/s": cfg.big / wall / 1e6, "cpu s/GiB": cpu / cfg.big * GiB}


# ----------------------------------------------------------------- table

def times(ratio):
    """A ratio with two significant digits at least: 0.0014× stays readable."""
    return ("%.2f×" % ratio) if ratio >= 0.1 else ("%.2g×" % ratio)


def fmt(vals):
    if not vals:
        return "–"
    med = statistics.median(vals)
    def f(x):
        return ("%.0f" % x) if abs(x) >= 100 else ("%.1f" % x) if abs(x) >= 10 \
            else ("%.2f" % x) if abs(x) >= 1 else ("%.3f" % x)
    if len(vals) == 1:
        return f(med)
    return "%s (%s–%s)" % (f(med), f(min(vals)), f(max(vals)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 2 minutes, smaller rows")
    ap.add_argument("--reps", type=int, help="repetitions per cell (default 3; --quick 1)")
    ap.add_argument("--bulk-reps", type=int,
                    help="repetitions of the 1 GiB rows (1, 2, 7, 8) and the limits, whose "
                         "cells swing most on a VM (default: at least 5; --quick: --reps)")
    ap.add_argument("--rows", default="0,1,2,3,4,5,6,7,8",
                    help="rows to run (0 = machine limits)")
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--idle", default=None,
                    help="idle row sizes, e.g. 1000,10000 (default 1000,10000; quick 500)")
    ap.add_argument("--idle-all-10k", action="store_true",
                    help="also hold 10,000 sessions on the forking anchors")
    ap.add_argument("--serve", type=int, metavar="SEC",
                    help="only start the servers, keep them SEC seconds (for profiling)")
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--out", help="write the markdown table here too")
    cfg = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (system user, cgroups, PAM service)")
    rows = {int(x) for x in cfg.rows.split(",")}
    servers = [s for s in cfg.servers.split(",") if s]
    q = cfg.quick
    cfg.reps = cfg.reps or (1 if q else 3)
    cfg.bulk_reps = cfg.bulk_reps or (cfg.reps if q else max(cfg.reps, 5))
    cfg.big = 256 * MiB if q else GiB
    cfg.nsmall = 500 if q else 2000
    cfg.nchurn = 400 if q else 2000
    cfg.nconc, cfg.conc_size = (20, 10 * MiB) if q else (50, 20 * MiB)
    cfg.idle_sizes = [int(x) for x in (cfg.idle or ("300" if q else "1000,10000")).split(",")]
    cfg.nlat = 10 if q else 20
    cfg.iperf_t = 2 if q else 5
    cfg.tls = 7 in rows
    cfg.uploaded = []  # row 3's small uploads, deleted when the run ends
    cfg.cell_no = 0    # numbers each upload cell's file names

    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    warnings.simplefilter("ignore")

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)  # so the servers are stopped
    started = time.time()
    cache = cache_dir()
    root = fetch_debs(cache)
    pwhash = make_hash()
    data = os.path.join(cache, "data-quick" if q else "data")
    os.makedirs(data, exist_ok=True)
    uid, gid = ensure_user(data, pwhash)
    ensure_pam()
    cfg.data = data
    global NULL
    # A null device of our own: on a shared machine some process may replace
    # /dev/null by a regular file, and clients would then write every byte.
    if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        log("bench: warning: /dev/null is not a character device")
    NULL = os.path.join(cache, "null")
    ensure_null()
    cfg.bigpath = os.path.join(data, "big.bin")
    log("bench: data set in", data)
    cfg.sums = make_data(data, cfg, uid, gid)
    pinned = Pinned(data_files(data))
    log("bench: %d MiB of data pinned in the page cache" % (pinned.bytes >> 20))
    cfg.tmp = tempfile.mkdtemp(prefix="ferry-bench-")
    # private copies, so a rebuild of build/ during the run changes nothing
    global BUILD
    for b in ("ferryd", "ferry", "small_client"):
        shutil.copy2(os.path.join(BUILD, b), os.path.join(cfg.tmp, b))
    os.chmod(cfg.tmp, 0o755)
    BUILD = cfg.tmp
    rev = run(["git", "-C", REPO, "describe", "--always", "--dirty"], check=False).stdout.strip()
    tlsdir = os.path.join(cache, "tls")
    if cfg.tls and not os.path.exists(os.path.join(tlsdir, "key.pem")):
        os.makedirs(tlsdir, exist_ok=True)
        run([os.path.join(BUILD, "ferryd"), "--gen-cert", tlsdir])
    if cfg.tls:
        for f in ("cert.pem", "key.pem"):
            os.chmod(os.path.join(tlsdir, f), 0o644 if f == "cert.pem" else 0o640)
            os.chown(os.path.join(tlsdir, f), 0, gid)
    sv, env = make_servers(cfg, cache, root, data, pwhash, tlsdir)
    names = list(servers)
    if cfg.tls:
        names += ["ferryd-tls", "vsftpd-tls"]
    logdir = os.path.join(cache, "logs")
    os.makedirs(logdir, exist_ok=True)
    machine = "%d× %s, %s, kernel %s, %s; ferry %s" % (
        os.cpu_count(), cpu_model(), distro(), platform.release(),
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), rev or "?")
    load0 = open("/proc/loadavg").read().split()[:3]
    results = {}  # (row label, metric, server) -> [values]
    notes = []

    def add(label, server, d):
        for k, v in d.items():
            results.setdefault((label, k), {}).setdefault(server, []).append(v)

    def cell(label, server, fn, *a):
        t = time.perf_counter()
        try:
            d = fn(cfg, sv, server, *a) if server else fn(cfg, *a)
            add(label, server or "limit", d)
            log("  %-28s %-11s %s  (%.1fs)" % (label, server or "", 
                ", ".join("%s=%.4g" % kv for kv in d.items()), time.perf_counter() - t))
        except Exception as e:  # a failed cell is reported, not fatal
            msg = "%s / %s: %s" % (label, server, str(e)[:300])
            notes.append(msg)
            log("  FAILED", msg)

    try:
        for n in names:
            log("bench: starting", n)
            try:
                sv[n].start(logdir)
            except Exception as e:
                notes.append("%s did not start: %s" % (n, e))
                log("bench:", notes[-1])
        up = [s for s in names if sv[s].proc and sv[s].proc.poll() is None]
        main_up = [s for s in servers if s in up]
        if not main_up:
            raise SystemExit("bench: no server started: " + "; ".join(notes))
        if cfg.serve:
            for s in up:
                log("bench: %-10s ftp://%s:%s@%s:%d/ pid %d" % (
                    s, login_name(s), PASSWORD, HOST, PORTS[s], sv[s].proc.pid))
            time.sleep(min(cfg.serve, 3600))
            cfg.reps = cfg.bulk_reps = 0
        for rep in range(max(cfg.reps, cfg.bulk_reps)):
            log("bench: repetition %d/%d" % (rep + 1, max(cfg.reps, cfg.bulk_reps)))
            order = main_up[rep % len(main_up):] + main_up[:rep % len(main_up)]
            # the 1 GiB rows and the limits get bulk_reps, the others reps
            rows_now = ((rows & {3, 4, 5, 6} if rep < cfg.reps else set()) |
                        (rows & {0, 1, 2, 7, 8} if rep < cfg.bulk_reps else set()))
            if 0 in rows_now:
                cell("L iperf3 1 stream", None, lambda c: limit_iperf(c, root, env, False))
                cell("L iperf3 1 stream -Z", None, lambda c: limit_iperf(c, root, env, True))
                cell("L page-cache read", None, limit_pagecache)
                cell("L page-cache write (dd)", None, limit_pagecache_write)
                cell("L socket-to-file splice (row 2, no server)", None, limit_splice_write)
            for s in order:
                if 1 in rows_now:
                    cell("1 RETR big", s, row_retr)
                if 2 in rows_now:
                    cell("2 STOR big", s, row_stor)
            for s in order:
                if 3 in rows_now:
                    cell("3 RETR %d×16K 1 session" % cfg.nsmall, s, row_small)
                    cell("3 STOR %d×16K 1 session" % cfg.nsmall, s, row_small_put)
                    for verb in ("LIST", "NLST", "MLSD"):
                        if not (verb == "MLSD" and s == "vsftpd"):
                            cell("3 %s of %d names" % (verb, cfg.nsmall), s, row_list, verb)
            for s in order:
                if 4 in rows_now:
                    cell("4 churn %d/32 par" % cfg.nchurn, s, row_churn)
            for s in order:
                if 6 in rows_now:
                    cell("6 %d×RETR %dMiB" % (cfg.nconc, cfg.conc_size // MiB), s, row_conc)
            if 5 in rows_now:
                for n in cfg.idle_sizes:
                    for s in order:
                        forking = s in ("vsftpd", "proftpd", "pure-ftpd")
                        if n > 2000 and forking and not cfg.idle_all_10k:
                            continue
                        cell("5 idle %d" % n, s, row_idle, n)
            if 7 in rows_now:
                for s in [x for x in ("ferryd-tls", "vsftpd-tls") if x in up][::(1 if rep % 2 == 0 else -1)]:
                    cell("7 FTPS RETR big", s, row_retr, True)
                    cell("7 FTPS STOR big", s, row_stor, True)
            if 8 in rows_now and "ferryd" in up:
                tools = ["ferry", "curl", "lftp"]
                tools = tools[rep % 3:] + tools[:rep % 3]
                for d in ("get", "put"):
                    for t in tools:
                        cell("8 client %s big" % d, None, lambda c, t=t, d=d: dict(
                            (("%s %s" % (t, k)), v) for k, v in row_client(c, sv, t, d).items()))
    finally:
        for n in names:
            sv[n].stop()
        shutil.rmtree(cfg.tmp, ignore_errors=True)
        for p in cfg.uploaded:
            if os.path.exists(p):
                os.unlink(p)

    load1 = open("/proc/loadavg").read().split()[:3]
    cmdline = "make bench" + (" ARGS='%s'" % " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    out = render(cfg, results, servers, machine, load0, load1, notes, cmdline,
                 time.time() - started)
    print(out)
    if cfg.out:
        with open(cfg.out, "w") as fh:
            fh.write(out)
    if cfg.json:
        with open(cfg.json, "w") as fh:
            json.dump({"%s|%s" % k: v for k, v in results.items()}, fh, indent=1)


LOWER_BETTER = ("cpu", "us/file", "us/listing", "ms/session", "KB/session", "login ms", "MiB total", "at start")


def render(cfg, results, servers, machine, load0, load1, notes, cmdline, elapsed):
    L = []
    L.append("# ferry benchmark\n")
    L.append("Command: `%s`  " % cmdline)
    L.append("Machine: %s  " % machine)
    L.append("Load average before/after: %s / %s; %d repetition(s), %d of the 1 GiB rows "
             "and the limits; run took %.0f s.\n"
             % (" ".join(load0), " ".join(load1), cfg.reps, cfg.bulk_reps, elapsed))
    L.append("Cells: median (min–max) over repetitions.  Ratio: ferryd / best anchor "
             "(for lower-is-better metrics, marked ↓, a ratio below 1 means ferryd is better).\n")
    anchors = [s for s in servers if s != "ferryd"]
    hdr = ["row", "metric"] + servers + ["ferryd / best"]
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "---|" * len(hdr))
    lim = []
    for (label, metric), by in sorted(results.items(), key=lambda kv: kv[0][0][:1]):
        if label.startswith("L"):
            lim.append("| %s | %s | %s |" % (label[2:], metric, fmt(by["limit"])))
            continue
        if label.startswith(("7", "8")):
            continue
        low = any(k in metric for k in LOWER_BETTER)
        cells = [fmt(by.get(s, [])) for s in servers]
        ratio = "–"
        if "ferryd" in by:
            meds = [statistics.median(by[s]) for s in anchors if by.get(s)]
            if meds:
                best = min(meds) if low else max(meds)
                if best:
                    ratio = times(statistics.median(by["ferryd"]) / best)
        if "procs" in metric or "fill" in metric or "at start" in metric or "client" in metric:
            ratio = ""
        L.append("| %s | %s%s | %s | %s |" % (label, metric, " ↓" if low else "",
                                              " | ".join(cells), ratio))
    # row 7: ferryd-tls vs vsftpd-tls, plus ferryd plaintext for reference
    r7 = [(k, v) for k, v in results.items() if k[0].startswith("7")]
    if r7:
        L.append("\nRow 7 — FTPS (PROT P), curl --ssl-reqd:\n")
        L.append("| row | metric | ferryd TLS | vsftpd TLS | ferryd TLS / vsftpd TLS | ferryd TLS / ferryd plain |")
        L.append("|---|---|---|---|---|---|")
        for (label, metric), by in sorted(r7):
            plain = results.get(("1 RETR big" if "RETR" in label else "2 STOR big", metric), {}).get("ferryd")
            f, v = by.get("ferryd-tls", []), by.get("vsftpd-tls", [])
            r1 = times(statistics.median(f) / statistics.median(v)) if f and v else "–"
            r2 = times(statistics.median(f) / statistics.median(plain)) if f and plain else "–"
            L.append("| %s | %s | %s | %s | %s | %s |" % (label, metric, fmt(f), fmt(v), r1, r2))
    r8 = [(k, v) for k, v in results.items() if k[0].startswith("8")]
    if r8:
        L.append("\nRow 8 — clients against ferryd, 1 file of %d MiB:\n" % (cfg.big // MiB))
        L.append("| direction | ferry MB/s | curl MB/s | lftp MB/s | ferry CPU s/GiB | curl CPU s/GiB | lftp CPU s/GiB | ferry / best other |")
        L.append("|---|---|---|---|---|---|---|---|")
        for d in ("get", "put"):
            by = results.get(("8 client %s big" % d, "ferry MB/s"), {})
            g = lambda t, m: results.get(("8 client %s big" % d, "%s %s" % (t, m)), {}).get("limit", [])
            f, c, lf = g("ferry", "MB/s"), g("curl", "MB/s"), g("lftp", "MB/s")
            others = [statistics.median(x) for x in (c, lf) if x]
            r = times(statistics.median(f) / max(others)) if f and others else "–"
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                d, fmt(f), fmt(c), fmt(lf), fmt(g("ferry", "client cpu s/GiB")),
                fmt(g("curl", "client cpu s/GiB")), fmt(g("lftp", "client cpu s/GiB")), r))
    if lim:
        L.append("\nMachine limits measured in the same run:\n")
        L.append("| limit | metric | value |")
        L.append("|---|---|---|")
        L += lim
    if notes:
        L.append("\nFailed or skipped cells:\n")
        L += ["- " + n for n in notes]
    return "\n".join(L) + "\n"


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def distro():
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


if __name__ == "__main__":
    main()
