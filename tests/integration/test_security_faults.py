"""Faults: clients killed mid-transfer, ferryd killed mid-upload, a full
disk (RLIMIT_FSIZE), files ferryd may not read, the privilege drop, and
SIGTERM.

Whatever dies, ferryd's descriptors return to their baseline, no
temporary file is left in the root, and a file under its final name is
always either the old one or the complete new one.
"""
import hashlib
import os
import pwd
import random
import select
import signal
import socket
import subprocess
import time

from harness import PYTHON, TIMEOUT, make_file, poll_until, sha256_file
from test_security_common import (FULL, SecurityCase, connect_from, family_pids, fd_count, pasv_port,
                                  read_reply_within, recv_all, start_server, temp_leftovers, transfer,
                                  wait_until)

# Clients killed with SIGKILL mid-transfer, per direction (the 100 with FERRY_FULL=1).
CLIENT_KILLS = 100 if FULL else 8
# Times ferryd itself is killed with SIGKILL mid-upload.
SERVER_KILLS = 20 if FULL else 4
# Start-then-SIGTERM rounds.
START_STOP_RUNS = 300 if FULL else 30
# RLIMIT_FSIZE for the disk-full test.
FSIZE_LIMIT = 1 << 20

# A client that logs in, starts a transfer, says "go" once it is under way,
# then stays in the middle of it until it is killed. With "data-low" its data
# socket gets a lower descriptor than the control socket; which of the two
# the kernel closes first when the process dies depends on the order it runs
# the closes in, so both orders are tried. An upload says "go" only after
# 200 ms: ferryd's wait for a killed client's control connection is 1/8 of
# the upload's time, at most 15 ms (FERRY_STOR_EOF_GRACE_SHARE), and this
# one must get the whole wait. With "queued", an upload has 6.8 KB of
# commands waiting behind it on the control connection when it is killed.
KILLED_CLIENT = r'''
import os, re, socket, sys, time
port, mode, name, order = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
queued = sys.argv[5:] == ["queued"]
hold = os.open("/dev/null", os.O_RDONLY) if order == "data-low" else None
c = socket.create_connection(("127.0.0.1", port), timeout=20)
f = c.makefile("rb")
def reply():
    line = f.readline().decode()
    if line[3:4] == "-":
        while not (line[:3].isdigit() and line[3:4] == " "):
            line = f.readline().decode()
    return line
reply()
for cmd in ("USER anonymous", "PASS x", "TYPE I", "PASV"):
    c.sendall((cmd + "\r\n").encode())
    r = reply()
n = [int(x) for x in re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", r).groups()]
if hold is not None:
    os.close(hold)
d = socket.socket()
d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
d.connect(("127.0.0.1", n[4] * 256 + n[5]))
c.sendall(((mode + " " + name) + "\r\n").encode())
assert reply().startswith("150")
if mode == "RETR":
    got = 0
    while got < 256 * 1024:
        got += len(d.recv(65536))
    print("go", flush=True)
    time.sleep(60)
else:
    chunk = b"NEW DATA " * 7282
    for i in range(4000):
        d.sendall(chunk)
        if i == 28:
            if queued:
                c.sendall(b"SIZE target.bin\r\n" * 400)
            print("go", flush=True)
        if i >= 8:
            time.sleep(0.01)
'''


def run_and_kill(port, mode, name, order, *extra):
    """Runs KILLED_CLIENT until it reports "go", then SIGKILLs it."""
    p = subprocess.Popen([PYTHON, "-c", KILLED_CLIENT, str(port), mode, name, order, *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        r, _, _ = select.select([p.stdout], [], [], 20)
        line = p.stdout.readline() if r else b""
        if line.strip() != b"go":
            p.kill()
            p.wait(10)
            raise AssertionError("client never got going: %r %r" % (line, p.stderr.read()))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        p.stdout.close()
        p.stderr.close()


class ClientKilled(SecurityCase):
    ferryd_args = ("-w",)

    def prepare_root(self):
        make_file(os.path.join(self.root, "big.bin"), 32 << 20, seed=11)
        make_file(os.path.join(self.root, "target.bin"), 1 << 20, seed=12)

    def _baseline(self):
        # One complete session first, so every lazily opened descriptor is counted.
        c = self.binary_session()
        self.assertTrue(transfer(c, "RETR target.bin")[2].startswith("226"))
        c.cmd("QUIT")
        c.close()
        time.sleep(0.3)
        return fd_count(self.server.proc.pid)

    def _back_to(self, baseline):
        ok = wait_until(lambda: fd_count(self.server.proc.pid) == baseline, timeout=10)
        self.assertTrue(ok, "ferryd holds %d descriptors, %d before" % (fd_count(self.server.proc.pid), baseline))

    def test_client_killed_mid_stor(self):
        """A killed client's partial upload never replaces the target: its data
        connection ends like a finished upload, but its control connection is
        gone (see FERRY_STOR_EOF_GRACE_MS)."""
        old = sha256_file(os.path.join(self.root, "target.bin"))
        baseline = self._baseline()
        for i in range(CLIENT_KILLS):
            order = "data-low" if i % 2 else "ctrl-low"
            run_and_kill(self.server.port, "STOR", "target.bin", order)
            self._back_to(baseline)
            self.assertEqual(sha256_file(os.path.join(self.root, "target.bin")), old,
                             "run %d (%s): a killed client's partial upload replaced the file" % (i, order))
            self.assertEqual(temp_leftovers(self.root), [], "run %d" % i)
        self.assertEqual(sorted(os.listdir(self.root)), ["big.bin", "target.bin"])

    def test_client_killed_mid_stor_with_commands_queued(self):
        """The same with commands waiting behind the upload: the control
        connection ends behind bytes still unread (a peek at the first byte
        saw a live client), and its reading is paused meanwhile."""
        old = sha256_file(os.path.join(self.root, "target.bin"))
        baseline = self._baseline()
        for i in range(max(2, CLIENT_KILLS // 2)):
            order = "data-low" if i % 2 else "ctrl-low"
            run_and_kill(self.server.port, "STOR", "target.bin", order, "queued")
            self._back_to(baseline)
            self.assertEqual(sha256_file(os.path.join(self.root, "target.bin")), old,
                             "run %d (%s): a killed client's partial upload replaced the file" % (i, order))
            self.assertEqual(temp_leftovers(self.root), [], "run %d" % i)

    def test_control_closed_before_the_data_with_commands_queued(self):
        """A client whose control connection has ended by the time its
        data connection does is taken for killed, also when a command of
        them wait behind the upload (which pauses the reading of the control
        connection, and leaves bytes there for a peek to see)."""
        old = sha256_file(os.path.join(self.root, "target.bin"))
        for _ in range(3):
            c = self.binary_session()
            port = pasv_port(c)
            d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            self.assertTrue(c.cmd("STOR target.bin").startswith("150"))
            # commands that wait behind the upload (not ones run during a
            # transfer, like NOOP), more than ferryd reads ahead
            c.send(b"SIZE target.bin\r\n" * 400)
            for _ in range(8):  # 0.3 s or more, so the wait is the full 15 ms
                d.sendall(b"N" * 500000)
                time.sleep(0.04)
            c.close()  # the control connection ends first, behind the SIZE
            time.sleep(0.05)
            d.close()
            time.sleep(0.5)
            self.assertEqual(sha256_file(os.path.join(self.root, "target.bin")), old)
            self.assertEqual(temp_leftovers(self.root), [])

    def test_client_killed_mid_retr(self):
        baseline = self._baseline()
        for i in range(CLIENT_KILLS):
            run_and_kill(self.server.port, "RETR", "big.bin", "data-low" if i % 2 else "ctrl-low")
            self._back_to(baseline)
        self.assertIsNone(self.server.proc.poll())
        self.assertEqual(temp_leftovers(self.root), [])



class ServerKilled(SecurityCase):
    """kill -9 of ferryd during an upload: the target is the old file or the
    complete new one, never a mix."""

    ferryd_args = ("-w", "--workers", "1")

    def prepare_root(self):
        make_file(os.path.join(self.root, "target.bin"), 4 << 20, seed=21)

    def test_server_killed_mid_stor(self):
        target = os.path.join(self.root, "target.bin")
        old = sha256_file(target)
        new_data = random.Random(22).randbytes(8 << 20)
        new = hashlib.sha256(new_data).hexdigest()
        outcomes = []
        for i in range(SERVER_KILLS):
            c = self.binary_session()
            d = connect_from("127.0.0.1", pasv_port(c))
            self.assertTrue(c.cmd("STOR target.bin").startswith("150"))
            whole = i % 2 == 1
            if whole:
                # All bytes sent and the data connection closed: the kill
                # races the commit.
                d.sendall(new_data)
                d.close()
                time.sleep(random.Random(i).random() * 0.01)
            else:
                d.sendall(new_data[:2 << 20])
            self.server.proc.send_signal(signal.SIGKILL)
            self.server.proc.wait(10)
            d.close()
            c.close()
            got = sha256_file(target)
            self.assertIn(got, (old, new), "run %d: the target is a mix" % i)
            if not whole:
                self.assertEqual(got, old, "run %d: an unfinished upload replaced the file" % i)
                self.assertEqual(temp_leftovers(self.root), [])
            for left in temp_leftovers(self.root):
                # Replacing a file is a link under a private name, then a
                # rename over the target (Linux has no atomic link-over):
                # a kill between the two leaves the whole new file there.
                self.assertEqual((sha256_file(left), got), (new, old),
                                 "run %d: a temporary that is not a whole upload" % i)
                os.unlink(left)
            outcomes.append("new" if got == new else "old")
            if got == new:   # back to the old file for the next run
                make_file(target, 4 << 20, seed=21)
                os.chown(target, *self._owner())
            self.server = start_server(self.root, *self.ferryd_args)
        self.assertEqual(len(outcomes), SERVER_KILLS)

    def _owner(self):
        st = os.stat(self.root)
        return st.st_uid, st.st_gid


class DiskFull(SecurityCase):
    """RLIMIT_FSIZE stands in for a full disk: the upload fails with 452/552,
    nothing half-written appears under the final name, the old file stays."""

    ferryd_args = ("-w", "--workers", "1")

    def prepare_root(self):
        make_file(os.path.join(self.root, "target.bin"), 512 << 10, seed=31)

    def setUp(self):
        super().setUp()
        self.server.stop()
        self.server = start_server(self.root, *self.ferryd_args, prefix=("prlimit", "--fsize=%d" % FSIZE_LIMIT))

    def test_upload_beyond_the_limit(self):
        target = os.path.join(self.root, "target.bin")
        old = sha256_file(target)
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        big = random.Random(32).randbytes(3 * FSIZE_LIMIT)
        text = b"a line of text\n" * (3 * FSIZE_LIMIT // 15)
        for typ, data in (("I", big), ("A", text)):
            c.cmd("TYPE " + typ)
            for name in ("target.bin", "fresh.bin"):
                prelim, _, final = transfer(c, "STOR " + name, upload=data)
                self.assertTrue(prelim.startswith("150"), prelim)
                self.assertTrue(final[:3] in ("452", "552"), (typ, name, final))
                self.assertEqual(sha256_file(target), old)
                self.assertFalse(os.path.exists(os.path.join(self.root, "fresh.bin")))
                self.assertEqual(temp_leftovers(self.root), [])
            prelim, _, final = transfer(c, "STOU", upload=data)
            self.assertTrue(final[:3] in ("452", "552"), final)
            self.assertEqual(sorted(os.listdir(self.root)), ["target.bin"])
        # ferryd survived (SIGXFSZ did not kill it) and small uploads still work.
        c.cmd("TYPE I")
        small = random.Random(33).randbytes(100 << 10)
        self.assertTrue(transfer(c, "STOR small.bin", upload=small)[2].startswith("226"))
        with open(os.path.join(self.root, "small.bin"), "rb") as f:
            self.assertEqual(f.read(), small)
        self.assertEqual(sha256_file(target), old)


    def test_a_failed_upload_leaves_the_others_of_its_worker_alone(self):
        # The worker's uploads share one splice pipe. One that fails with
        # its bytes still in the pipe (the file is full) must not take the
        # pipe from under another upload in progress in the same worker.
        b = self.binary_session()
        bd = connect_from("127.0.0.1", pasv_port(b))
        self.assertTrue(b.cmd("STOR survivor.bin").startswith("150"))
        payload = random.Random(34).randbytes(FSIZE_LIMIT // 2)
        bd.sendall(payload[:len(payload) // 2])
        a = self.binary_session()
        _, _, final = transfer(a, "STOR toobig.bin", upload=random.Random(35).randbytes(3 * FSIZE_LIMIT))
        self.assertTrue(final[:3] in ("452", "552"), final)
        bd.sendall(payload[len(payload) // 2:])
        bd.close()
        self.assertEqual(b.reply(), "226 Transfer complete.")
        with open(os.path.join(self.root, "survivor.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)
        # and uploads after both still work
        c = self.binary_session()
        self.assertTrue(transfer(c, "STOR after.bin", upload=payload)[2].startswith("226"))
        with open(os.path.join(self.root, "after.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)

class Permissions(SecurityCase):
    """ferryd serves as an unprivileged user with no_new_privs: what that
    user may not read or change gets 550."""

    ferryd_args = ("-w",)

    def prepare_root(self):
        with open(os.path.join(self.root, "locked.txt"), "wb") as f:
            f.write(b"LOCKED-CONTENT\n")
        os.mkdir(os.path.join(self.root, "lockeddir"))
        with open(os.path.join(self.root, "lockeddir", "inner.txt"), "wb") as f:
            f.write(b"LOCKED-CONTENT\n")

    def setUp(self):
        super().setUp()
        os.chmod(os.path.join(self.root, "locked.txt"), 0)
        os.chmod(os.path.join(self.root, "lockeddir"), 0)
        self.addCleanup(os.chmod, os.path.join(self.root, "lockeddir"), 0o755)

    def test_unreadable_files_and_directories(self):
        if os.geteuid() != 0 and os.access(os.path.join(self.root, "locked.txt"), os.R_OK):
            self.skipTest("chmod 000 does not lock this user out")
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        outputs = []
        for line in ("RETR locked.txt", "RETR lockeddir/inner.txt", "LIST lockeddir", "NLST lockeddir",
                     "MLSD lockeddir", "APPE locked.txt", "LIST lockeddir/inner.txt"):
            prelim, data, final = transfer(c, line, upload=b"x" if line.startswith("APPE") else None)
            outputs.append(data or b"")
            self.assertTrue(prelim.startswith("550"), (line, prelim))
        for line in ("CWD lockeddir", "SIZE lockeddir/inner.txt", "DELE lockeddir/inner.txt",
                     "MDTM lockeddir/inner.txt", "MLST lockeddir/inner.txt", "RNFR lockeddir/inner.txt"):
            r = c.cmd(line)
            self.assertTrue(r.startswith("550"), (line, r))
        self.assertFalse(any(b"LOCKED-CONTENT" in o for o in outputs))
        self.assertEqual(c.cmd("PWD"), '257 "/" is the current directory.')

    def test_root_owned_files_stay_untouched(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start ferryd as root")
        d = os.path.join(self.root, "rootdir")
        os.mkdir(d, 0o755)
        with open(os.path.join(d, "owned.txt"), "wb") as f:
            f.write(b"root's\n")
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))
        for line in ("DELE rootdir/owned.txt", "MKD rootdir/x", "RMD rootdir"):
            self.assertTrue(c.cmd(line).startswith("550"), line)
        for to in ("rootdir/renamed.txt", "moved-out.txt"):
            self.assertTrue(c.cmd("RNFR rootdir/owned.txt").startswith("350"))
            self.assertTrue(c.cmd("RNTO " + to).startswith("550"), to)
        for line in ("STOR rootdir/owned.txt", "APPE rootdir/owned.txt", "STOR rootdir/new.txt"):
            self.assertTrue(transfer(c, line, upload=b"x")[0][:3] in ("550", "553"), line)
        self.assertEqual(os.listdir(d), ["owned.txt"])
        with open(os.path.join(d, "owned.txt"), "rb") as f:
            self.assertEqual(f.read(), b"root's\n")

    def test_privileges_are_dropped(self):
        if os.geteuid() != 0:
            self.skipTest("ferryd keeps the invoking user when not started as root")
        nobody = pwd.getpwnam("nobody")
        c = self.raw()
        self.assertTrue(c.login().startswith("230"))   # workers are up and serving
        for pid in family_pids(self.server.proc.pid):
            with open("/proc/%d/status" % pid) as f:
                status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
            uids = status["Uid"].split()
            gids = status["Gid"].split()
            self.assertEqual(uids, [str(nobody.pw_uid)] * 4, pid)
            self.assertEqual(gids, [str(nobody.pw_gid)] * 4, pid)
            self.assertEqual(status["Groups"].split(), [str(nobody.pw_gid)], pid)
            self.assertEqual(status["NoNewPrivs"].strip(), "1", pid)
            self.assertEqual(int(status["CapEff"], 16), 0, pid)
            self.assertEqual(int(status["CapPrm"], 16), 0, pid)
        # The workers, which read client bytes, run under the seccomp allowlist.
        workers = family_pids(self.server.proc.pid)[1:]
        self.assertTrue(workers)
        def seccomp_of(pid):
            with open("/proc/%d/status" % pid) as f:
                return [line.split(":")[1].strip() for line in f if line.startswith("Seccomp:")]
        for pid in workers:
            # a worker just forked enters it in a moment
            poll_until(lambda: seccomp_of(pid) == ["2"], 5)
            self.assertEqual(seccomp_of(pid), ["2"], pid)


class Signals(SecurityCase):
    """SIGTERM: stop accepting, close idle sessions with 421, let running
    transfers finish, exit 0."""

    ferryd_args = ("-w", "--workers", "2")

    def prepare_root(self):
        make_file(os.path.join(self.root, "big.bin"), 8 << 20, seed=41)

    def test_sigterm_refuses_new_clients_before_every_worker_has_taken_it(self):
        # A worker that has not yet run its signal handler (stopped here, in
        # production merely late) must not keep the port taking clients,
        # whom it would greet with 220 and then drop with 421.
        self.check_health = False
        poll_until(lambda: len(family_pids(self.server.proc.pid)) == 3)  # the supervisor may still be forking
        workers = family_pids(self.server.proc.pid)[1:]
        self.assertEqual(len(workers), 2, workers)
        os.kill(workers[0], signal.SIGSTOP)
        try:
            self.server.proc.send_signal(signal.SIGTERM)
            refused = False
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", self.server.port), timeout=2).close()
                except (ConnectionRefusedError, ConnectionResetError):
                    refused = True  # reset: the SYN met the listener going down
                    break
                time.sleep(0.05)
            self.assertTrue(refused, "the port still queues clients after SIGTERM")
        finally:
            os.kill(workers[0], signal.SIGCONT)
        self.assertEqual(self.server.proc.wait(30), 0)

    def test_sigterm_lets_transfers_finish(self):
        self.check_health = False
        down = self.raw()
        up = self.raw()
        idle = self.raw()
        for c in (down, up, idle):
            self.assertTrue(c.login().startswith("230"))
            c.cmd("TYPE I")
        dd = connect_from("127.0.0.1", pasv_port(down), rcvbuf=8192)
        self.assertTrue(down.cmd("RETR big.bin").startswith("150"))
        first = dd.recv(65536)
        ud = connect_from("127.0.0.1", pasv_port(up))
        self.assertTrue(up.cmd("STOR uploaded.bin").startswith("150"))
        payload = random.Random(42).randbytes(4 << 20)
        ud.sendall(payload[:1 << 20])
        self.server.proc.send_signal(signal.SIGTERM)
        # Idle sessions are told and closed.
        r = read_reply_within(idle, 10)
        self.assertIsNotNone(r)
        self.assertTrue(r.startswith("421"), r)
        self.assertTrue(idle.closed(10))
        # Nobody new is greeted.
        try:
            n = connect_from("127.0.0.1", self.server.port, timeout=5)
            n.settimeout(2)
            try:
                got = n.recv(100)
            except (socket.timeout, TimeoutError, ConnectionResetError):
                got = b""
            n.close()
            self.assertFalse(got.startswith(b"220"), got)
        except (ConnectionRefusedError, ConnectionResetError, socket.timeout, TimeoutError):
            pass  # refused, or reset as the listener closed mid-handshake: not greeted either
        # The running transfers complete.
        ud.sendall(payload[1 << 20:])
        ud.close()
        self.assertTrue(read_reply_within(up, 20).startswith("226"))
        data = first + recv_all(dd, limit=16 << 20)
        dd.close()
        self.assertTrue(read_reply_within(down, 20).startswith("226"))
        self.assertEqual(hashlib.sha256(data).hexdigest(), sha256_file(os.path.join(self.root, "big.bin")))
        with open(os.path.join(self.root, "uploaded.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)
        self.assertEqual(self.server.proc.wait(30), 0)

