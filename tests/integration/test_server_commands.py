"""ferryd, command by command: each command's success path and its main
failure paths, through Python's ftplib and through hand-written control
lines (for exact reply codes and malformed input). Also the login
sequence rules, the data-address rules (PORT/EPRT/PASV/EPSV), virtual
users, the verbose transcript and start-up behaviour."""
import calendar
import ftplib
import io
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (FERRYD, TIMEOUT, FerrydCase, RawControl, free_port,
                     give_to_server, poll_until, rss_kib, start_ferryd, tcp_sockets)


# ---- small helpers shared by the classes below ---------------------------

def code(reply):
    return reply[:3]


def parse_227(reply):
    m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", reply)
    if not m:
        raise AssertionError("no address in 227 reply: %r" % reply)
    n = [int(x) for x in m.groups()]
    return "%d.%d.%d.%d" % tuple(n[:4]), n[4] * 256 + n[5]


def parse_229(reply):
    m = re.search(r"\(\|\|\|(\d+)\|\)", reply)
    if not m:
        raise AssertionError("no port in 229 reply: %r" % reply)
    return int(m.group(1))


def recv_all(sock, limit=64 << 20):
    """Reads a data connection to EOF (bounded by the socket timeout)."""
    chunks = []
    total = 0
    while total < limit:
        b = sock.recv(1 << 16)
        if not b:
            break
        chunks.append(b)
        total += len(b)
    return b"".join(chunks)


def final_reply(c, first):
    """After a preliminary 1xx reply, reads the final one."""
    r = first
    for _ in range(10):
        if not r.startswith("1"):
            return r
        r = c.reply()
    return r


def parse_facts(line):
    """An MLSD/MLST entry "fact=value;...; name" -> ({fact: value}, name)."""
    facts, _, name = line.partition(" ")
    out = {}
    for kv in facts.split(";"):
        if kv:
            k, _, v = kv.partition("=")
            out[k.lower()] = v
    return out, name


class ActiveListener:
    """A listening socket for PORT/EPRT data connections."""

    def __init__(self, host="127.0.0.1", family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(4)
        self.sock.settimeout(TIMEOUT)
        self.host = host
        self.port = self.sock.getsockname()[1]

    def port_arg(self):
        h = self.host.replace(".", ",")
        return "%s,%d,%d" % (h, self.port >> 8, self.port & 255)

    def eprt_arg(self):
        af = 2 if ":" in self.host else 1
        return "|%d|%s|%d|" % (af, self.host, self.port)

    def accept(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        return conn

    def close(self):
        self.sock.close()


class RawMixin:
    """Raw-control conveniences for FerrydCase subclasses."""

    def logged_in(self, **kw):
        c = self.raw(**kw)
        r = c.login()
        self.assertEqual(code(r), "230", r)
        return c

    def pasv(self, c):
        r = c.cmd("PASV")
        self.assertEqual(code(r), "227", r)
        host, port = parse_227(r)
        d = socket.create_connection((host, port), timeout=TIMEOUT)
        self.addCleanup(d.close)
        return d

    def epsv(self, c, host="127.0.0.1"):
        r = c.cmd("EPSV")
        self.assertEqual(code(r), "229", r)
        d = socket.create_connection((host, parse_229(r)), timeout=TIMEOUT)
        self.addCleanup(d.close)
        return d

    def listener(self, host="127.0.0.1", family=socket.AF_INET):
        lst = ActiveListener(host, family)
        self.addCleanup(lst.close)
        return lst

    def transfer_in(self, c, cmd, data_sock=None, listener=None):
        """Runs a download-type command (RETR/LIST/NLST/MLSD); returns
        (bytes received, final reply)."""
        r = c.cmd(cmd)
        self.assertEqual(code(r), "150", "%s: %s" % (cmd, r))
        if listener is not None:
            data_sock = listener.accept()
        body = recv_all(data_sock)
        data_sock.close()
        return body, final_reply(c, c.reply())

    def transfer_out(self, c, cmd, payload, data_sock=None, listener=None):
        r = c.cmd(cmd)
        self.assertEqual(code(r), "150", "%s: %s" % (cmd, r))
        if listener is not None:
            data_sock = listener.accept()
        data_sock.sendall(payload)
        data_sock.close()
        return final_reply(c, c.reply())

    def put_file(self, rel, data, mode=0o644):
        """A file in the served root, readable by the (unprivileged) server."""
        path = os.path.join(self.root, rel)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        give_to_server(self.tmp, self.root)
        return path

    def read_root(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()


def hash_password(pw):
    p = subprocess.run([FERRYD, "--hash-password"], input=pw + "\n", capture_output=True,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("--hash-password failed: %r" % p.stderr)
    h = p.stdout.strip().splitlines()[-1].strip()
    return h


# ---- login and the command sequence rules ---------------------------------

class LoginTests(RawMixin, FerrydCase):

    def test_greeting_exact(self):
        c = self.raw()
        self.assertEqual(c.greeting, "220 ferry FTP server ready.")

    def test_anonymous_login_replies(self):
        c = self.raw()
        self.assertEqual(c.cmd("USER anonymous"), "331 Guest access OK, send password.")
        self.assertEqual(c.cmd("PASS someone@example.org"), "230 Guest login OK.")
        self.assertEqual(code(c.cmd("PWD")), "257")

    def test_ftp_is_anonymous_too(self):
        c = self.raw()
        self.assertEqual(c.cmd("USER ftp"), "331 Guest access OK, send password.")
        self.assertEqual(c.cmd("PASS x"), "230 Guest login OK.")

    def test_ftplib_login(self):
        f = self.ftp(login=False)
        self.assertEqual(f.getwelcome(), "220 ferry FTP server ready.")
        self.assertTrue(f.login().startswith("230"))

    def test_commands_before_login_get_530(self):
        c = self.raw()
        for line in ("PWD", "XPWD", "CWD /", "CDUP", "LIST", "NLST", "MLSD", "MLST", "RETR a",
                     "STOR a", "APPE a", "STOU", "DELE a", "MKD d", "RMD d", "RNFR a", "RNTO b",
                     "SIZE a", "MDTM a", "TYPE I", "MODE S", "STRU F", "PASV", "EPSV",
                     "PORT 127,0,0,1,4,1", "EPRT |1|127.0.0.1|1025|", "REST 0", "ABOR",
                     "STAT", "STAT /", "ALLO 10", "ACCT x", "SITE HELP",
                     # missing arguments too: not logged in comes first (as vsftpd, ProFTPD)
                     "RETR", "STOR", "APPE", "SIZE", "MKD", "SITE"):
            r = c.cmd(line)
            self.assertEqual(code(r), "530", "%s before login: %s" % (line, r))
        self.assertEqual(code(c.cmd("USER")), "501")

    def test_allowed_before_login(self):
        c = self.raw()
        self.assertEqual(c.cmd("SYST"), "215 UNIX Type: L8.")
        self.assertEqual(code(c.cmd("NOOP")), "200")
        feat = c.cmd("FEAT")
        self.assertTrue(feat.startswith("211-"), feat)
        self.assertTrue(feat.splitlines()[-1].startswith("211 "), feat)
        help_ = c.cmd("HELP")
        self.assertEqual(code(help_), "214", help_)
        # clients that send it before USER (as vsftpd and ProFTPD answer it)
        self.assertEqual(code(c.cmd("OPTS UTF8 ON")), "200")
        # and the login still works afterwards
        self.assertEqual(code(c.login()), "230")

    def test_pass_without_user_is_503(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("PASS x")), "503")
        # not logged in by that
        self.assertEqual(code(c.cmd("PWD")), "530")

    def test_pass_after_login_is_503(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("PASS again")), "503")
        # still logged in
        self.assertEqual(code(c.cmd("PWD")), "257")

    def test_other_command_after_user_resets_login(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER anonymous")), "331")
        self.assertEqual(code(c.cmd("SYST")), "530")
        # the USER was forgotten: PASS is now out of sequence
        self.assertEqual(code(c.cmd("PASS x")), "503")
        self.assertEqual(code(c.cmd("PWD")), "530")
        self.assertEqual(code(c.login()), "230")

    def test_noop_after_user_resets_login(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER anonymous")), "331")
        self.assertEqual(code(c.cmd("NOOP")), "530")
        self.assertEqual(code(c.cmd("PASS x")), "503")

    def test_user_twice_then_pass(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER nobody-here")), "331")
        self.assertEqual(code(c.cmd("USER anonymous")), "331")
        self.assertEqual(c.cmd("PASS x"), "230 Guest login OK.")

    def test_quit_after_user(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER anonymous")), "331")
        self.assertEqual(c.cmd("QUIT"), "221 Goodbye.")
        self.assertTrue(c.closed())

    def test_quit_closes_connection(self):
        c = self.logged_in()
        self.assertEqual(c.cmd("QUIT"), "221 Goodbye.")
        self.assertTrue(c.closed())

    def test_quit_with_argument_is_501_and_keeps_session(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("QUIT x")), "501")
        self.assertEqual(code(c.cmd("PWD")), "257")
        self.assertEqual(c.cmd("QUIT"), "221 Goodbye.")

    def test_user_without_argument_is_501(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER")), "501")
        self.assertEqual(code(c.login()), "230")

    def test_unknown_commands_get_500_and_unimplemented_rfc_commands_502(self):
        """RFC 959 4.2: 500 "command unrecognized" for a verb no RFC
        defines (as vsftpd, ProFTPD and pure-ftpd answer); 502 "command not
        implemented" for one an RFC defines that ferryd does not carry out."""
        c = self.logged_in()
        for line in ("XYZZY", "XRSQ", "BOGUS arg", "CLNT curl"):
            self.assertEqual(c.cmd(line), "500 Syntax error, command unrecognized.", line)
        for line in ("SMNT /", "REIN", "LPSV", "ADAT abc", "LANG en"):
            self.assertEqual(c.cmd(line), "502 Command not implemented.", line)
        self.assertEqual(code(c.cmd("NOOP")), "200")
        # before login too, and the session goes on
        r = self.raw()
        self.assertEqual(code(r.cmd("XYZZY")), "500")
        self.assertEqual(code(r.cmd("REIN")), "502")
        self.assertTrue(r.login().startswith("230"))

    def test_commands_are_case_insensitive(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("user anonymous")), "331")
        self.assertEqual(code(c.cmd("pass x")), "230")
        self.assertEqual(code(c.cmd("pwd")), "257")
        self.assertEqual(code(c.cmd("Noop")), "200")

    def test_bare_lf_line_ending_accepted(self):
        c = self.raw()
        c.send("USER anonymous\n")
        self.assertEqual(code(c.reply()), "331")
        c.send("PASS x\n")
        self.assertEqual(code(c.reply()), "230")

    def test_pipelined_commands_answered_in_order(self):
        c = self.raw()
        c.send("USER anonymous\r\nPASS x\r\nSYST\r\nPWD\r\nNOOP\r\n")
        self.assertEqual(code(c.reply()), "331")
        self.assertEqual(code(c.reply()), "230")
        self.assertEqual(c.reply(), "215 UNIX Type: L8.")
        self.assertEqual(code(c.reply()), "257")
        self.assertEqual(code(c.reply()), "200")


class NoAnonymousTests(RawMixin, FerrydCase):
    ferryd_args = ("--no-anonymous",)

    def test_anonymous_refused(self):
        c = self.raw()
        r = c.cmd("USER anonymous")
        if code(r) == "331":
            r = c.cmd("PASS x")
        self.assertEqual(code(r), "530", r)
        self.assertEqual(code(c.cmd("PWD")), "530")

    def test_ftplib_login_fails(self):
        f = self.ftp(login=False)
        with self.assertRaises(ftplib.error_perm) as cm:
            f.login()
        self.assertTrue(str(cm.exception).startswith("530"), cm.exception)


# ---- settings and informational commands ----------------------------------

class SettingsTests(RawMixin, FerrydCase):

    LF_TEXT = b"one\ntwo\nthree\n"

    def prepare_root(self):
        with open(os.path.join(self.root, "lines.txt"), "wb") as f:
            f.write(self.LF_TEXT)

    def retr_bytes(self, c, name):
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR " + name, d)
        self.assertEqual(code(r), "226", r)
        return body

    def test_syst(self):
        c = self.logged_in()
        self.assertEqual(c.cmd("SYST"), "215 UNIX Type: L8.")
        self.assertEqual(code(c.cmd("SYST x")), "501")

    def test_type_i(self):
        c = self.logged_in()
        self.assertEqual(c.cmd("TYPE I"), "200 Type set to I.")
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT)

    def test_type_a_converts(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE A")), "200")
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT.replace(b"\n", b"\r\n"))

    def test_type_a_n(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE A N")), "200")
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT.replace(b"\n", b"\r\n"))

    def test_type_l8_is_binary(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE A")), "200")
        self.assertEqual(code(c.cmd("TYPE L 8")), "200")
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT)
        # "L8" without the space, as vsftpd and ProFTPD take it
        self.assertEqual(code(c.cmd("TYPE A")), "200")
        self.assertEqual(code(c.cmd("TYPE L8")), "200")
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT)
        self.assertEqual(code(c.cmd("TYPE L7")), "504")
        self.assertEqual(code(c.cmd("TYPE L")), "501")

    def test_type_lowercase(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE i")), "200")
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT)

    def test_bad_type_rejected_and_type_unchanged(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("TYPE")), "501")
        for bad in ("TYPE X", "TYPE Q 1", "TYPE I X", "TYPE AB"):
            r = c.cmd(bad)
            self.assertEqual(code(r), "501", "%s: %s" % (bad, r))
        for unimpl in ("TYPE E", "TYPE L 7", "TYPE A T"):
            r = c.cmd(unimpl)
            self.assertEqual(code(r), "504", "%s: %s" % (unimpl, r))
        # still binary: no CRLF conversion
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT)

    def test_mode(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("MODE S")), "200")
        self.assertEqual(code(c.cmd("MODE B")), "504")
        self.assertEqual(code(c.cmd("MODE C")), "504")
        self.assertEqual(code(c.cmd("MODE Z")), "501")
        self.assertEqual(code(c.cmd("MODE")), "501")
        # stream mode still works
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(self.retr_bytes(c, "lines.txt"), self.LF_TEXT)

    def test_stru(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("STRU F")), "200")
        self.assertEqual(code(c.cmd("STRU R")), "504")
        self.assertEqual(code(c.cmd("STRU P")), "504")
        self.assertEqual(code(c.cmd("STRU Q")), "501")
        self.assertEqual(code(c.cmd("STRU")), "501")

    def test_noop(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("NOOP")), "200")
        self.assertEqual(code(c.cmd("NOOP x")), "501")

    def test_help(self):
        c = self.logged_in()
        r = c.cmd("HELP")
        self.assertTrue(r.startswith("214-"), r)
        self.assertTrue(r.splitlines()[-1].startswith("214 "), r)
        words = set(r.split())
        for verb in ("USER", "PASS", "RETR", "STOR", "EPSV", "EPRT", "MLSD", "SIZE", "MDTM", "REST",
                     "ABOR", "RNFR", "RNTO", "SITE", "FEAT", "XPWD", "XCUP"):
            self.assertIn(verb, words, "HELP does not list " + verb)

    def test_help_command(self):
        c = self.logged_in()
        r = c.cmd("HELP RETR")
        self.assertEqual(code(r), "214", r)
        self.assertIn("RETR", r)
        r = c.cmd("HELP retr")
        self.assertEqual(code(r), "214", r)
        self.assertEqual(code(c.cmd("HELP NOSUCHCMD")), "501")
        # verbs the RFCs define and ferryd answers 502 are known, not unknown
        for verb in ("REIN", "smnt", "LPRT"):
            self.assertEqual(c.cmd("HELP " + verb), "214 %s is not implemented." % verb.upper())
            self.assertEqual(code(c.cmd(verb)), "502")

    def test_feat(self):
        c = self.logged_in()
        r = c.cmd("FEAT")
        lines = r.splitlines()
        self.assertTrue(lines[0].startswith("211-"), r)
        self.assertTrue(lines[-1].startswith("211 "), r)
        feats = {ln.strip().split(" ")[0] for ln in lines[1:-1]}
        for f in ("EPRT", "EPSV", "MDTM", "MLST", "PASV", "REST", "SIZE", "UTF8"):
            self.assertIn(f, feats, r)
        self.assertIn(" REST STREAM", lines, r)
        mlst = [ln for ln in lines if ln.startswith(" MLST ")]
        self.assertEqual(len(mlst), 1, r)
        for fact in ("type", "size", "modify", "perm", "unix.mode"):
            self.assertIn(fact, mlst[0])
        # feature lines start with a space (RFC 2389)
        for ln in lines[1:-1]:
            self.assertTrue(ln.startswith(" "), ln)

    def test_opts(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("OPTS UTF8 ON")), "200")
        self.assertEqual(code(c.cmd("OPTS utf8 on")), "200")
        self.assertEqual(code(c.cmd("OPTS NOSUCH THING")), "501")
        self.assertEqual(code(c.cmd("OPTS")), "501")

    def test_allo_and_acct(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("ALLO 1000")), "202")
        self.assertEqual(code(c.cmd("ACCT something")), "202")

    def test_site(self):
        c = self.logged_in()
        r = c.cmd("SITE HELP")
        self.assertEqual(code(r), "214", r)
        self.assertIn("HELP", r.split("\n", 1)[-1])
        self.assertEqual(code(c.cmd("SITE help")), "214")
        self.assertEqual(code(c.cmd("SITE EXEC ls")), "504")
        self.assertEqual(code(c.cmd("SITE NOSUCH")), "504")
        self.assertEqual(code(c.cmd("SITE")), "501")
        # changing commands on a read-only server are refused
        self.assertEqual(code(c.cmd("SITE CHMOD 777 lines.txt")), "550")
        st = os.stat(os.path.join(self.root, "lines.txt"))
        self.assertEqual(st.st_mode & 0o777, 0o644)

    def test_line_too_long_discarded_whole(self):
        c = self.logged_in()
        r = c.cmd("MKD " + "x" * 5000 + " SYST")
        self.assertEqual(code(r), "500", r)
        # nothing of the long line runs as a second command
        self.assertEqual(code(c.cmd("NOOP")), "200")
        self.assertEqual(c.cmd("SYST"), "215 UNIX Type: L8.")

    def test_control_bytes_in_command(self):
        c = self.logged_in()
        c.send(b"SIZE lines\x00.txt\r\n")
        self.assertEqual(code(c.reply()), "501")
        c.send(b"SIZE lines\r.txt\r\n")
        self.assertEqual(code(c.reply()), "501")
        # telnet IAC sequences are removed: IAC IP IAC DM before a command
        c.send(b"\xff\xf4\xff\xf2NOOP\r\n")
        self.assertEqual(code(c.reply()), "200")
        self.assertEqual(c.cmd("SIZE lines.txt"), "213 %d" % len(self.LF_TEXT))

    def test_reply_names_cannot_forge_lines(self):
        c = self.logged_in()
        c.send(b"CWD no\nsuch\r\n")
        # a bare LF ends the line: "CWD no" then "such"
        r1 = c.reply()
        r2 = c.reply()
        self.assertEqual(code(r1), "550", r1)
        self.assertEqual(code(r2), "500", r2)
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_stat_without_argument(self):
        c = self.logged_in()
        r = c.cmd("STAT")
        lines = r.splitlines()
        self.assertTrue(lines[0].startswith("211-"), r)
        self.assertTrue(lines[-1].startswith("211 "), r)
        self.assertGreater(len(lines), 2)

    def test_stat_with_path(self):
        c = self.logged_in()
        r = c.cmd("STAT /")
        lines = r.splitlines()
        self.assertTrue(lines[0].startswith("213-") or lines[0].startswith("211-"), r)
        self.assertEqual(lines[-1][:4], lines[0][:3] + " ", r)
        body = [ln for ln in lines[1:-1] if ln.endswith(" lines.txt")]
        self.assertEqual(len(body), 1, r)
        self.assertIn(" %d " % len(self.LF_TEXT), body[0])
        r = c.cmd("STAT lines.txt")
        self.assertIn("lines.txt", r)
        self.assertIn(code(r), ("211", "212", "213"), r)

    def test_stat_missing_path(self):
        c = self.logged_in()
        # RFC 959 5.4 lists 450, not 550, among STAT's replies
        self.assertEqual(c.cmd("STAT /no/such/thing"), "450 /no/such/thing: No such file or directory.")
        self.assertEqual(code(c.cmd("STAT /")), "213")


# ---- directories and names ----------------------------------------------------

class DirectoryTests(RawMixin, FerrydCase):
    ferryd_args = ("-w",)

    def prepare_root(self):
        os.makedirs(os.path.join(self.root, "sub", "deeper"))
        with open(os.path.join(self.root, "sub", "inner.txt"), "wb") as f:
            f.write(b"inner\n")
        with open(os.path.join(self.root, "top.txt"), "wb") as f:
            f.write(b"top\n")
        os.mkdir(os.path.join(self.root, "full"))
        with open(os.path.join(self.root, "full", "x"), "wb") as f:
            f.write(b"x")

    def pwd(self, c):
        r = c.cmd("PWD")
        self.assertEqual(code(r), "257", r)
        m = re.match(r'257 "((?:[^"]|"")*)"', r)
        self.assertIsNotNone(m, r)
        return m.group(1).replace('""', '"')

    def test_pwd_and_xpwd(self):
        c = self.logged_in()
        self.assertEqual(self.pwd(c), "/")
        r = c.cmd("XPWD")
        self.assertTrue(r.startswith('257 "/"'), r)
        self.assertEqual(code(c.cmd("PWD x")), "501")

    def test_cwd(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("CWD sub")), "250")
        self.assertEqual(self.pwd(c), "/sub")
        self.assertEqual(code(c.cmd("CWD deeper")), "250")
        self.assertEqual(self.pwd(c), "/sub/deeper")
        self.assertEqual(code(c.cmd("CWD /")), "250")
        self.assertEqual(self.pwd(c), "/")
        self.assertEqual(code(c.cmd("XCWD /sub/deeper")), "250")
        self.assertEqual(self.pwd(c), "/sub/deeper")

    def test_tilde_is_the_home_directory(self):
        # tnftp's "cd ~" sends CWD ~; vsftpd takes it as the home directory
        os.mkdir(os.path.join(self.root, "sub", "~"))
        give_to_server(self.tmp, self.root)
        c = self.logged_in()
        self.assertEqual(code(c.cmd("CWD sub/deeper")), "250")
        self.assertEqual(code(c.cmd("CWD ~")), "250")
        self.assertEqual(self.pwd(c), "/")
        self.assertEqual(code(c.cmd("CWD ~/sub")), "250")
        self.assertEqual(self.pwd(c), "/sub")
        self.assertEqual(code(c.cmd("CWD ./~")), "250")
        self.assertEqual(self.pwd(c), "/sub/~")
        self.assertEqual(code(c.cmd("CWD ~/../..")), "250")
        self.assertEqual(self.pwd(c), "/")
        self.assertEqual(code(c.cmd("CWD ~nosuchuser")), "550")

    def test_tilde_in_site_and_time_commands_and_nlst(self):
        open(os.path.join(self.root, "sub", "~"), "wb").close()
        give_to_server(self.tmp, self.root)
        c = self.logged_in()
        self.assertEqual(code(c.cmd("CWD sub")), "250")
        top = os.path.join(self.root, "top.txt")
        self.assertEqual(code(c.cmd("SITE CHMOD 600 ~/top.txt")), "200")
        self.assertEqual(os.stat(top).st_mode & 0o777, 0o600)
        self.assertEqual(code(c.cmd("MFMT 20200101000000 ~/top.txt")), "213")
        self.assertEqual(code(c.cmd("MDTM 20210101000000 ~/top.txt")), "213")
        self.assertEqual(int(os.stat(top).st_mtime), calendar.timegm((2021, 1, 1, 0, 0, 0)))
        # a file called ~ is listed as a name RETR takes for it
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST", d)
        self.assertIn("./~", body.decode().split())
        self.assertEqual(code(c.cmd("SIZE ./~")), "213")

    def test_long_quoted_paths_keep_257_and_mlst_replies_whole(self):
        """A path near FERRY_PATH_MAX full of quotes doubles in a 257 reply
        and stands twice in MLST's: both replies must stay whole (they were
        cut at 4.5 KiB, mid-path, with no closing quote or End line)."""
        seg = '"' * 100 + "q" * 100
        rel = "/".join([seg] * 19)            # 3,818 characters, 1,900 quotes
        os.makedirs(os.path.join(self.root, rel))
        with open(os.path.join(self.root, rel, "f.txt"), "wb") as f:
            f.write(b"abc")
        give_to_server(self.tmp, self.root)
        c = self.logged_in()
        self.assertEqual(code(c.cmd("CWD /" + rel)), "250")
        self.assertEqual(self.pwd(c), "/" + rel)
        r = c.cmd("MKD n")
        self.assertTrue(r.endswith('/n" created.'), r[-80:])
        self.assertEqual(r[5:-len('" created.')].replace('""', '"'), "/" + rel + "/n")
        r = c.cmd("MLST f.txt")
        lines = r.splitlines()
        self.assertEqual(len(lines), 3, r[-200:])
        self.assertEqual(lines[0], "250-Listing /%s/f.txt" % rel)
        facts, name = FileStatusTests.facts(lines[1][1:])
        self.assertEqual(name, "/%s/f.txt" % rel)
        self.assertEqual(facts["size"], "3")
        self.assertEqual(lines[2], "250 End")
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_cwd_failures_keep_directory(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("CWD sub")), "250")
        self.assertEqual(code(c.cmd("CWD nosuch")), "550")
        self.assertEqual(code(c.cmd("CWD inner.txt")), "550")
        self.assertEqual(code(c.cmd("CWD")), "501")
        self.assertEqual(self.pwd(c), "/sub")

    def test_cwd_cannot_leave_root(self):
        c = self.logged_in()
        r = c.cmd("CWD ..")
        self.assertIn(code(r), ("250", "550"), r)
        self.assertEqual(self.pwd(c), "/")
        c.cmd("CWD ../../../..")
        self.assertEqual(self.pwd(c), "/")
        # listing at the top is still the served root
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(set(body.decode().split()), {"sub", "top.txt", "full"})

    def test_cdup_and_xcup(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("CWD /sub/deeper")), "250")
        self.assertEqual(code(c.cmd("CDUP")), "250")
        self.assertEqual(self.pwd(c), "/sub")
        self.assertEqual(code(c.cmd("XCUP")), "250")
        self.assertEqual(self.pwd(c), "/")
        self.assertEqual(code(c.cmd("CDUP x")), "501")

    def test_ftplib_cwd_pwd(self):
        f = self.ftp()
        f.cwd("sub")
        self.assertEqual(f.pwd(), "/sub")
        with self.assertRaises(ftplib.error_perm):
            f.cwd("/nosuch")
        self.assertEqual(f.pwd(), "/sub")

    def test_mkd(self):
        c = self.logged_in()
        r = c.cmd("MKD newdir")
        self.assertEqual(code(r), "257", r)
        self.assertIn('"/newdir"', r)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "newdir")))
        r = c.cmd("XMKD /sub/other")
        self.assertEqual(code(r), "257", r)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "sub", "other")))

    def test_mkd_quotes_embedded_quote(self):
        c = self.logged_in()
        r = c.cmd('MKD say"hi')
        self.assertEqual(code(r), "257", r)
        self.assertIn('"/say""hi"', r)
        self.assertTrue(os.path.isdir(os.path.join(self.root, 'say"hi')))

    def test_mkd_failures(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("MKD sub")), "550")
        self.assertEqual(code(c.cmd("MKD top.txt")), "550")
        self.assertEqual(code(c.cmd("MKD nosuch/child")), "550")
        self.assertEqual(code(c.cmd("MKD")), "501")
        self.assertFalse(os.path.exists(os.path.join(self.root, "nosuch")))

    def test_rmd(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("RMD sub/deeper")), "250")
        self.assertFalse(os.path.exists(os.path.join(self.root, "sub", "deeper")))
        os.mkdir(os.path.join(self.root, "gone"))
        give_to_server(self.tmp, self.root)
        self.assertEqual(code(c.cmd("XRMD gone")), "250")
        self.assertFalse(os.path.exists(os.path.join(self.root, "gone")))

    def test_rmd_failures(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("RMD nosuch")), "550")
        self.assertEqual(code(c.cmd("RMD full")), "550")
        self.assertEqual(c.cmd("RMD top.txt"), "550 top.txt: Not a directory.")
        self.assertEqual(c.cmd("RMD nosuch/top.txt"), "550 nosuch/top.txt: No such file or directory.")
        self.assertEqual(code(c.cmd("RMD")), "501")
        self.assertTrue(os.path.exists(os.path.join(self.root, "full", "x")))
        self.assertTrue(os.path.exists(os.path.join(self.root, "top.txt")))

    def test_rmd_root_refused(self):
        c = self.logged_in()
        r = c.cmd("RMD /")
        self.assertEqual(code(r)[0], "5", r)
        self.assertTrue(os.path.isdir(self.root))

    def test_dele(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("DELE top.txt")), "250")
        self.assertFalse(os.path.exists(os.path.join(self.root, "top.txt")))
        self.assertEqual(code(c.cmd("DELE /sub/inner.txt")), "250")
        self.assertFalse(os.path.exists(os.path.join(self.root, "sub", "inner.txt")))

    def test_dele_failures(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("DELE nosuch")), "550")
        self.assertEqual(code(c.cmd("DELE sub")), "550")
        self.assertEqual(code(c.cmd("DELE")), "501")
        self.assertTrue(os.path.isdir(os.path.join(self.root, "sub")))

    def test_rename(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("RNFR top.txt")), "350")
        self.assertEqual(code(c.cmd("RNTO sub/moved.txt")), "250")
        self.assertFalse(os.path.exists(os.path.join(self.root, "top.txt")))
        self.assertEqual(self.read_root("sub/moved.txt"), b"top\n")
        # directories too
        self.assertEqual(code(c.cmd("RNFR full")), "350")
        self.assertEqual(code(c.cmd("RNTO full2")), "250")
        self.assertTrue(os.path.isfile(os.path.join(self.root, "full2", "x")))

    def test_ftplib_rename_delete_mkd_rmd(self):
        f = self.ftp()
        f.rename("top.txt", "renamed.txt")
        self.assertEqual(self.read_root("renamed.txt"), b"top\n")
        f.delete("renamed.txt")
        self.assertFalse(os.path.exists(os.path.join(self.root, "renamed.txt")))
        self.assertEqual(f.mkd("made"), "/made")
        f.rmd("made")
        self.assertFalse(os.path.exists(os.path.join(self.root, "made")))
        with self.assertRaises(ftplib.error_perm):
            f.delete("nosuch")

    def test_rename_failures(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("RNFR nosuch")), "550")
        self.assertEqual(code(c.cmd("RNTO whatever")), "503")
        self.assertEqual(code(c.cmd("RNTO whatever")), "503")
        # RNTO must directly follow RNFR
        self.assertEqual(code(c.cmd("RNFR top.txt")), "350")
        self.assertEqual(code(c.cmd("NOOP")), "200")
        self.assertEqual(code(c.cmd("RNTO late.txt")), "503")
        self.assertTrue(os.path.exists(os.path.join(self.root, "top.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "late.txt")))
        # a target in a missing directory
        self.assertEqual(code(c.cmd("RNFR top.txt")), "350")
        self.assertEqual(code(c.cmd("RNTO nosuch/dir/x")), "550")
        self.assertTrue(os.path.exists(os.path.join(self.root, "top.txt")))
        self.assertEqual(code(c.cmd("RNFR")), "501")

    def test_site_chmod(self):
        c = self.logged_in()
        p = os.path.join(self.root, "top.txt")
        self.assertEqual(code(c.cmd("SITE CHMOD 600 top.txt")), "200")
        self.assertEqual(os.stat(p).st_mode & 0o7777, 0o600)
        self.assertEqual(code(c.cmd("SITE chmod 0640 /top.txt")), "200")
        self.assertEqual(os.stat(p).st_mode & 0o7777, 0o640)
        # never a set-id bit
        c.cmd("SITE CHMOD 4755 top.txt")
        self.assertEqual(os.stat(p).st_mode & 0o6000, 0)
        self.assertEqual(code(c.cmd("SITE CHMOD 9z9 top.txt")), "501")
        self.assertEqual(code(c.cmd("SITE CHMOD 644")), "501")
        self.assertEqual(code(c.cmd("SITE CHMOD 644 nosuch")), "550")

    def test_site_chmod_of_the_root_is_refused(self):
        """SITE CHMOD 000 / would leave a root nobody can search, so not
        even SITE CHMOD 755 / could undo it: every session locked out."""
        mode = os.stat(self.root).st_mode & 0o7777
        c = self.logged_in()
        for path in ("/", ".", "sub/..", "/../.."):
            r = c.cmd("SITE CHMOD 000 " + path)
            self.assertEqual(code(r), "550", (path, r))
        self.assertEqual(os.stat(self.root).st_mode & 0o7777, mode)
        self.assertEqual(code(c.cmd("SITE CHMOD 700 sub")), "200")
        self.assertEqual(os.stat(os.path.join(self.root, "sub")).st_mode & 0o7777, 0o700)
        other = self.logged_in()
        self.assertEqual(code(other.cmd("CWD /")), "250")

    def test_site_utime_and_mfmt(self):
        c = self.logged_in()
        p = os.path.join(self.root, "top.txt")
        self.assertEqual(code(c.cmd("SITE UTIME 20010203040506 top.txt")), "200")
        self.assertEqual(int(os.stat(p).st_mtime), calendar.timegm((2001, 2, 3, 4, 5, 6)))
        self.assertEqual(c.cmd("MDTM top.txt"), "213 20010203040506")
        r = c.cmd("MFMT 20200102030405 top.txt")
        self.assertEqual(code(r), "213", r)
        self.assertIn("20200102030405", r)
        self.assertEqual(int(os.stat(p).st_mtime), calendar.timegm((2020, 1, 2, 3, 4, 5)))
        for bad in ("MFMT 2020 top.txt", "MFMT 20201302030405 top.txt", "MFMT 20200102030405"):
            self.assertEqual(code(c.cmd(bad)), "501", bad)
        self.assertEqual(code(c.cmd("MFMT 20200102030405 nosuch")), "550")
        self.assertEqual(int(os.stat(p).st_mtime), calendar.timegm((2020, 1, 2, 3, 4, 5)))

    def test_mdtm_with_a_time_sets_it(self):
        """MDTM YYYYMMDDHHMMSS path, from clients older than MFMT (vsftpd,
        ProFTPD and pure-ftpd take it); a file named like that is still
        only asked about."""
        c = self.logged_in()
        p = os.path.join(self.root, "top.txt")
        r = c.cmd("MDTM 20030405060708 top.txt")
        self.assertEqual(r, "213 Modification time set to 20030405060708: top.txt.")
        self.assertEqual(int(os.stat(p).st_mtime), calendar.timegm((2003, 4, 5, 6, 7, 8)))
        self.assertEqual(c.cmd("MDTM top.txt"), "213 20030405060708")
        self.assertEqual(code(c.cmd("MDTM 20031305060708 top.txt")), "501")
        self.assertEqual(code(c.cmd("MDTM 20030405060708 nosuch")), "550")
        odd = self.put_file("20010101000000 odd.txt", b"x")
        os.utime(odd, (0, calendar.timegm((2011, 1, 1, 0, 0, 0))))
        self.assertEqual(c.cmd("MDTM 20010101000000 odd.txt"), "213 20110101000000")
        self.assertEqual(int(os.stat(p).st_mtime), calendar.timegm((2003, 4, 5, 6, 7, 8)))

    def test_names_with_spaces(self):
        c = self.logged_in()
        r = c.cmd("MKD with space")
        self.assertEqual(code(r), "257", r)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "with space")))
        self.assertEqual(code(c.cmd("CWD with space")), "250")
        self.assertEqual(self.pwd(c), "/with space")
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "STOR a file.txt", b"spaced\n", d)), "226")
        self.assertEqual(self.read_root("with space/a file.txt"), b"spaced\n")

    def test_utf8_names(self):
        c = self.logged_in()
        name = "caf\u00e9-\u65e5\u672c.txt"
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "STOR " + name, b"utf8\n", d)), "226")
        self.assertEqual(self.read_root(name), b"utf8\n")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST", d)
        self.assertIn(name, body.decode("utf-8").split("\r\n"))


class JailTests(RawMixin, FerrydCase):
    """Paths never lead outside the served root."""

    def prepare_root(self):
        self.outside = os.path.join(self.tmp, "outside.txt")
        with open(self.outside, "wb") as f:
            f.write(b"secret outside the root\n")
        os.chmod(self.outside, 0o644)
        os.symlink(self.outside, os.path.join(self.root, "escape.txt"))
        os.symlink(self.tmp, os.path.join(self.root, "escape-dir"))
        with open(os.path.join(self.root, "in.txt"), "wb") as f:
            f.write(b"inside\n")
        os.mkdir(os.path.join(self.root, "sub"))
        os.symlink("../in.txt", os.path.join(self.root, "sub", "link-in.txt"))
        os.symlink("sub", os.path.join(self.root, "link-dir"))

    def test_relative_links_inside_root_work(self):
        c = self.logged_in()
        self.assertEqual(c.cmd("SIZE sub/link-in.txt"), "213 7")
        self.assertEqual(c.cmd("SIZE link-dir/link-in.txt"), "213 7")
        self.assertEqual(code(c.cmd("CWD link-dir")), "250")
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR link-in.txt", d)
        self.assertEqual(body, b"inside\n")

    def test_dotdot_stays_inside(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        rel = os.path.relpath(self.outside, self.root)  # ../outside.txt
        for path in (rel, "/../outside.txt", "../../../../../../etc/passwd", "sub/../../outside.txt"):
            r = c.cmd("SIZE " + path)
            self.assertEqual(code(r), "550", "SIZE %s: %s" % (path, r))
            d = self.pasv(c)
            r = c.cmd("RETR " + path)
            self.assertEqual(code(r), "550", "RETR %s: %s" % (path, r))
            d.close()
        # ../in.txt from the root is the root's own in.txt
        self.assertEqual(c.cmd("SIZE ../in.txt"), "213 7")

    def mlsd(self, c, path):
        d = self.pasv(c)
        body, r = self.transfer_in(c, "MLSD " + path, d)
        self.assertEqual(code(r), "226", r)
        return dict(reversed(parse_facts(ln)) for ln in body.decode().split("\r\n") if ln)

    def test_mlsd_shows_links_as_links(self):
        """MLSD shows a symlink as a link (RFC 3659 7.7.4's OS.unix=slink),
        as LIST shows it with "l", so that a recursive client never walks
        into a loop (a link to ".."); nothing about its target, inside or
        outside the root. MLST of the link's path, like CWD and RETR,
        follows it when it stays inside."""
        c = self.logged_in()
        top = self.mlsd(c, "/")
        self.assertEqual(top["in.txt"]["type"], "file", top)
        for name in ("link-dir", "escape.txt", "escape-dir"):
            self.assertEqual(top[name]["type"], "OS.unix=slink", top)
            self.assertNotIn("size", top[name])
        sub = self.mlsd(c, "sub")
        self.assertEqual(sub["link-in.txt"]["type"], "OS.unix=slink", sub)
        self.assertEqual(self.mlsd(c, "/link-dir"), sub)
        r = c.cmd("MLST link-dir")
        self.assertEqual(code(r), "250", r)
        self.assertEqual(parse_facts(r.splitlines()[1].strip())[0]["type"], "dir")
        r = c.cmd("MLST sub/link-in.txt")
        mlst = parse_facts(r.splitlines()[1].strip())[0]
        self.assertEqual((mlst["type"], mlst["size"]), ("file", "7"), r)
        self.assertEqual(code(c.cmd("MLST escape.txt")), "550")

    def test_symlink_out_of_root_refused(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        r = c.cmd("RETR escape.txt")
        if code(r) == "150":
            body = recv_all(d)
            self.fail("RETR through a symlink leaving the root sent %r" % body[:40])
        self.assertEqual(code(r), "550", r)
        self.assertEqual(code(c.cmd("CWD escape-dir")), "550")
        self.assertEqual(code(c.cmd("SIZE escape-dir/outside.txt")), "550")


class WritableJailTests(JailTests):
    """With write access, changes never reach outside the root either."""
    ferryd_args = ("-w",)

    def outside_unchanged(self):
        with open(self.outside, "rb") as f:
            self.assertEqual(f.read(), b"secret outside the root\n")
        st = os.stat(self.outside)
        self.assertEqual(st.st_mode & 0o7777, 0o644)
        self.assertEqual(sorted(os.listdir(self.tmp)), sorted(["root", "local", "outside.txt"]))

    def test_writes_stay_inside(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        # APPE and REST+STOR write in place: never through the escaping link
        for line in ("APPE escape.txt", "APPE escape-dir/outside.txt", "STOR escape-dir/new.txt"):
            d = self.pasv(c)
            r = c.cmd(line)
            if code(r) == "150":
                d.sendall(b"INJECTED")
                d.close()
                r = final_reply(c, c.reply())
            d.close()
            self.outside_unchanged()
        self.assertEqual(code(c.cmd("REST 3")), "350")
        d = self.pasv(c)
        r = c.cmd("STOR escape.txt")
        if code(r) == "150":
            d.sendall(b"INJECTED")
            d.close()
            final_reply(c, c.reply())
        self.outside_unchanged()
        for line in ("SITE CHMOD 777 escape.txt", "SITE UTIME 20010203040506 escape.txt",
                     "MFMT 20010203040506 escape.txt", "DELE escape-dir/outside.txt",
                     "MKD escape-dir/made", "RMD escape-dir/root"):
            c.cmd(line)
            self.outside_unchanged()
        self.assertEqual(code(c.cmd("RNFR escape-dir/outside.txt")), "550")
        self.assertEqual(code(c.cmd("RNFR in.txt")), "350")
        c.cmd("RNTO ../../moved-out.txt")
        self.outside_unchanged()
        self.assertTrue(os.path.exists(os.path.join(self.root, "moved-out.txt")))
        r = c.cmd("MKD ../made-above")
        self.assertEqual(code(r), "257", r)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "made-above")))
        self.outside_unchanged()

    def test_stor_replaces_link_not_target(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        r = c.cmd("STOR escape.txt")
        if code(r) == "150":
            d.sendall(b"new content")
            d.close()
            r = final_reply(c, c.reply())
        self.outside_unchanged()
        if code(r) == "226":
            # the link itself was replaced by a regular file
            p = os.path.join(self.root, "escape.txt")
            self.assertFalse(os.path.islink(p))
            with open(p, "rb") as f:
                self.assertEqual(f.read(), b"new content")
        else:
            self.assertEqual(code(r), "550", r)


class ReadOnlyTests(RawMixin, FerrydCase):
    """Anonymous users without -w cannot change anything."""

    def prepare_root(self):
        os.mkdir(os.path.join(self.root, "d"))
        with open(os.path.join(self.root, "f.txt"), "wb") as f:
            f.write(b"keep me\n")

    def snapshot(self):
        out = {}
        for dp, dn, fn in os.walk(self.root):
            for n in dn + fn:
                p = os.path.join(dp, n)
                with open(p, "rb") if not os.path.isdir(p) else open(os.devnull, "rb") as f:
                    out[os.path.relpath(p, self.root)] = (f.read(), os.stat(p).st_mtime_ns)
        return out

    def test_write_commands_refused(self):
        before = self.snapshot()
        c = self.logged_in()
        for line in ("DELE f.txt", "MKD new", "XMKD new", "RMD d", "XRMD d", "RNFR f.txt",
                     "MDTM 20010203040506 f.txt", "MFMT 20010203040506 f.txt"):
            r = c.cmd(line)
            self.assertEqual(code(r), "550", "%s: %s" % (line, r))
        for line in ("STOR f.txt", "STOR new.txt", "APPE f.txt", "STOU"):
            d = self.pasv(c)
            r = c.cmd(line)
            self.assertEqual(code(r), "550", "%s: %s" % (line, r))
            d.close()
        self.assertEqual(self.snapshot(), before)
        # reading still works
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR f.txt", d)
        self.assertEqual(body, b"keep me\n")

    def test_ftplib_storbinary_refused(self):
        f = self.ftp()
        with self.assertRaises(ftplib.error_perm) as cm:
            f.storbinary("STOR up.bin", io.BytesIO(b"data"))
        self.assertTrue(str(cm.exception).startswith("550"), cm.exception)
        self.assertFalse(os.path.exists(os.path.join(self.root, "up.bin")))


# ---- file status: SIZE, MDTM, MLST, MLSD, LIST, NLST --------------------------

LS_LINE = re.compile(r"^([-dlcbps])([-rwxsStT]{9})\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s+"
                     r"([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{2}:\d{2}|\d{4})\s(.+)$")


class FileStatusTests(RawMixin, FerrydCase):
    MTIME = calendar.timegm((2001, 2, 3, 4, 5, 6))

    def prepare_root(self):
        self.files = {"a.txt": b"alpha\n", "b.bin": bytes(range(256)) * 40, "empty": b""}
        for n, data in self.files.items():
            with open(os.path.join(self.root, n), "wb") as f:
                f.write(data)
        os.utime(os.path.join(self.root, "a.txt"), (self.MTIME, self.MTIME))
        os.chmod(os.path.join(self.root, "b.bin"), 0o600)
        os.mkdir(os.path.join(self.root, "dir"))
        with open(os.path.join(self.root, "dir", "inside"), "wb") as f:
            f.write(b"12345")
        with open(os.path.join(self.root, ".hidden"), "wb") as f:
            f.write(b"h")

    def test_size(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        for n, data in self.files.items():
            self.assertEqual(c.cmd("SIZE " + n), "213 %d" % len(data))
        self.assertEqual(c.cmd("SIZE /dir/inside"), "213 5")

    def test_size_failures(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("SIZE nosuch")), "550")
        self.assertEqual(code(c.cmd("SIZE dir")), "550")
        self.assertEqual(code(c.cmd("SIZE")), "501")

    def test_ftplib_size(self):
        f = self.ftp()
        f.voidcmd("TYPE I")
        self.assertEqual(f.size("b.bin"), len(self.files["b.bin"]))

    def test_mdtm(self):
        c = self.logged_in()
        self.assertEqual(c.cmd("MDTM a.txt"), "213 20010203040506")
        st = os.stat(os.path.join(self.root, "dir", "inside"))
        want = time.strftime("%Y%m%d%H%M%S", time.gmtime(st.st_mtime))
        self.assertEqual(c.cmd("MDTM dir/inside"), "213 " + want)

    def test_mdtm_failures(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("MDTM nosuch")), "550")
        self.assertEqual(code(c.cmd("MDTM")), "501")

    facts = staticmethod(parse_facts)

    def test_mlst_file(self):
        c = self.logged_in()
        r = c.cmd("MLST a.txt")
        lines = r.splitlines()
        self.assertTrue(lines[0].startswith("250-"), r)
        self.assertTrue(lines[-1].startswith("250 "), r)
        self.assertEqual(len(lines), 3, r)
        self.assertTrue(lines[1].startswith(" "), r)
        facts, name = self.facts(lines[1][1:])
        self.assertTrue(name.endswith("a.txt"), name)
        self.assertEqual(facts["type"], "file")
        self.assertEqual(facts["size"], "6")
        self.assertEqual(facts["modify"], "20010203040506")
        self.assertIn("r", facts["perm"])
        self.assertEqual(facts["unix.mode"], "0644")

    def test_opts_mlst_chooses_the_facts(self):
        """RFC 3659 7.9: OPTS MLST selects the facts of MLST and MLSD,
        ignores names it does not know, and FEAT stars the selection."""
        c = self.logged_in()
        self.assertEqual(c.cmd("OPTS MLST Size;bogus;TYPE;"), "200 MLST OPTS type;size;")
        r = c.cmd("MLST a.txt")
        self.assertEqual(r.splitlines()[1], " type=file;size=6; /a.txt", r)
        self.assertIn(" MLST type*;size*;modify;perm;unix.mode;", c.cmd("FEAT").splitlines())
        d = self.pasv(c)
        body, r = self.transfer_in(c, "MLSD", d)
        self.assertEqual(code(r), "226", r)
        lines = body.decode().split("\r\n")
        self.assertIn("type=file;size=6; a.txt", lines)
        self.assertIn("type=dir; dir", lines)
        self.assertEqual(c.cmd("OPTS MLST"), "200 MLST OPTS")
        self.assertEqual(c.cmd("MLST a.txt").splitlines()[1], "  /a.txt")
        self.assertEqual(c.cmd("OPTS MLST modify;unix.mode;perm;"), "200 MLST OPTS modify;perm;unix.mode;")
        r = c.cmd("MLST a.txt")
        self.assertEqual(r.splitlines()[1], " modify=20010203040506;perm=r;unix.mode=0644; /a.txt", r)
        # Each session chooses for itself.
        other = self.logged_in()
        facts, _ = self.facts(other.cmd("MLST a.txt").splitlines()[1][1:])
        self.assertEqual(set(facts), {"type", "size", "modify", "perm", "unix.mode"})

    def test_mlst_dir_and_cwd(self):
        c = self.logged_in()
        r = c.cmd("MLST dir")
        self.assertEqual(code(r), "250", r)
        facts, _ = self.facts(r.splitlines()[1][1:])
        self.assertIn(facts["type"], ("dir", "cdir", "pdir"))
        self.assertIn("l", facts["perm"])
        self.assertIn("e", facts["perm"])
        r = c.cmd("MLST")
        self.assertEqual(code(r), "250", r)
        facts, _ = self.facts(r.splitlines()[1][1:])
        self.assertIn(facts["type"], ("dir", "cdir"))

    def test_mlst_missing(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("MLST nosuch")), "550")

    def test_mlsd(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "MLSD", d)
        self.assertEqual(code(r), "226", r)
        self.assertTrue(body.endswith(b"\r\n"))
        entries = {}
        for ln in body.decode().split("\r\n"):
            if ln:
                facts, name = self.facts(ln)
                entries[name] = facts
        names = {n for n, f in entries.items() if f["type"] in ("file", "dir")}
        self.assertEqual(names, {"a.txt", "b.bin", "empty", "dir", ".hidden"})
        self.assertEqual(entries["a.txt"]["size"], "6")
        self.assertEqual(entries["a.txt"]["modify"], "20010203040506")
        self.assertEqual(entries["b.bin"]["size"], str(len(self.files["b.bin"])))
        self.assertEqual(entries["b.bin"]["unix.mode"], "0600")
        self.assertEqual(entries["dir"]["type"], "dir")
        for facts in entries.values():
            for k in ("type", "modify", "perm", "unix.mode"):
                self.assertIn(k, facts)

    def test_ftplib_mlsd(self):
        f = self.ftp()
        got = dict(f.mlsd("dir"))
        self.assertEqual(set(n for n, fa in got.items() if fa["type"] == "file"), {"inside"})
        self.assertEqual(got["inside"]["size"], "5")

    def test_mlsd_failures(self):
        c = self.logged_in()
        # RFC 3659 7.1: a name that is not a directory is 501
        for line, want in (("MLSD nosuch", "550"), ("MLSD a.txt", "501")):
            d = self.pasv(c)
            r = c.cmd(line)
            self.assertEqual(code(r), want, "%s: %s" % (line, r))
            d.close()

    def test_list(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST", d)
        self.assertEqual(code(r), "226", r)
        lines = [ln for ln in body.decode().split("\r\n") if ln]
        parsed = {}
        for ln in lines:
            if ln.startswith("total "):
                continue
            m = LS_LINE.match(ln)
            self.assertIsNotNone(m, "not an ls -l line: %r" % ln)
            parsed[m.group(10)] = m
        # whether dot files show without -a is the server's choice
        self.assertEqual(set(parsed) - {".hidden"}, {"a.txt", "b.bin", "empty", "dir"})
        self.assertEqual(parsed["dir"].group(1), "d")
        self.assertEqual(parsed["a.txt"].group(1), "-")
        self.assertEqual(parsed["a.txt"].group(2), "rw-r--r--")
        self.assertEqual(parsed["b.bin"].group(2), "rw-------")
        self.assertEqual(int(parsed["b.bin"].group(6)), len(self.files["b.bin"]))
        self.assertEqual(int(parsed["a.txt"].group(6)), 6)
        # an old file shows its year
        self.assertEqual(parsed["a.txt"].group(9), "2001")
        self.assertEqual(parsed["a.txt"].group(7), "Feb")

    def test_list_all_shows_hidden(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST -a", d)
        self.assertEqual(code(r), "226", r)
        names = [LS_LINE.match(ln).group(10) for ln in body.decode().split("\r\n")
                 if ln and not ln.startswith("total ")]
        self.assertIn(".hidden", names)

    def test_dotdot_of_the_root_shows_the_root_not_its_parent(self):
        """LIST -a and STAT -a list "..": at the root that must not reveal
        the directory above it (owner, mode, links, time)."""
        parent = os.path.dirname(self.root)
        os.utime(parent, (915148800, 915148800))          # 1999, unlike the root
        os.utime(self.root, (self.MTIME, self.MTIME))
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST -a", d)
        self.assertEqual(code(r), "226", r)
        by_name = {m.group(10): m for m in (LS_LINE.match(ln) for ln in body.decode().split("\r\n")
                                            if ln and not ln.startswith("total "))}
        self.assertIn("..", by_name, body)
        self.assertEqual(by_name[".."].groups()[:9], by_name["."].groups()[:9], body)
        self.assertNotIn("1999", by_name[".."].group(0))
        r = c.cmd("STAT -a /")
        lines = {ln.split()[-1]: ln.split()[:-1] for ln in r.splitlines()[1:-1]}
        self.assertEqual(lines[".."], lines["."], r)
        # Below the root ".." is the real parent, the root.
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST -a dir", d)
        sub = {m.group(10): m for m in (LS_LINE.match(ln) for ln in body.decode().split("\r\n")
                                        if ln and not ln.startswith("total "))}
        self.assertEqual(sub[".."].groups()[:9], by_name["."].groups()[:9], body)

    def test_list_path_and_file(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST dir", d)
        self.assertEqual(code(r), "226", r)
        lines = [ln for ln in body.decode().split("\r\n") if ln and not ln.startswith("total ")]
        self.assertEqual(len(lines), 1, body)
        m = LS_LINE.match(lines[0])
        self.assertEqual(m.group(10), "inside")
        self.assertEqual(m.group(6), "5")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST a.txt", d)
        self.assertEqual(code(r), "226", r)
        lines = [ln for ln in body.decode().split("\r\n") if ln]
        self.assertEqual(len(lines), 1, body)
        self.assertTrue(LS_LINE.match(lines[0]).group(10).endswith("a.txt"))

    def test_list_missing(self):
        c = self.logged_in()
        d = self.pasv(c)
        r = c.cmd("LIST nosuch")
        self.assertIn(code(r), ("450", "550"), r)
        d.close()

    def test_nlst(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST", d)
        self.assertEqual(code(r), "226", r)
        self.assertTrue(body.endswith(b"\r\n"), body)
        names = set(body.decode().split("\r\n")[:-1]) - {".hidden"}
        self.assertEqual(names, {"a.txt", "b.bin", "empty", "dir"})
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST dir", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body.decode().split(), ["dir/inside"])

    def test_nlst_of_a_directory_names_what_retr_takes(self):
        # as vsftpd and ProFTPD answer: mget DIR in classic clients is
        # NLST DIR, then RETR of each line as it stands
        c = self.logged_in()
        for arg, want in (("dir/", "dir/inside"), ("/dir//", "/dir/inside"), ("./dir", "./dir/inside")):
            d = self.pasv(c)
            body, r = self.transfer_in(c, "NLST " + arg, d)
            self.assertEqual(code(r), "226", r)
            self.assertEqual(body.decode().split(), [want], arg)
            d = self.pasv(c)
            body, r = self.transfer_in(c, "RETR " + want, d)
            self.assertEqual(code(r), "226", r)
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST /", d)
        self.assertIn("/a.txt", body.decode().split())
        # a directory argument so long that dir/name would be cut short:
        # names left out, never cut into another file's name
        arg = "./" * 2043 + "dir"
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST " + arg, d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, b"")
        # one byte shorter, dir/name fills the path buffer but its NUL: shown
        arg = "/" + "./" * 2042 + "dir"
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST " + arg, d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, arg.encode() + b"/inside\r\n")
        self.assertEqual(len(body) - 2, 4095)

    def test_list_patterns(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST *.txt", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body.decode().split(), ["a.txt"])
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST dir/ins?de", d)
        self.assertEqual(body.decode().split(), ["dir/inside"])
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST *.bin", d)
        lines = [ln for ln in body.decode().split("\r\n") if ln and not ln.startswith("total ")]
        self.assertEqual(len(lines), 1, body)
        self.assertEqual(LS_LINE.match(lines[0]).group(10), "b.bin")
        d = self.pasv(c)
        r = c.cmd("NLST *.nomatch")
        if code(r) == "150":
            body, r = recv_all(d), final_reply(c, c.reply())
            self.assertEqual(body, b"")
        self.assertIn(code(r), ("226", "450", "550"), r)

    def test_ftplib_nlst_and_dir(self):
        f = self.ftp()
        self.assertEqual(set(f.nlst()) - {".hidden"}, {"a.txt", "b.bin", "empty", "dir"})
        lines = []
        f.dir(lines.append)
        names = {ln.split()[-1] for ln in lines if not ln.startswith("total ")}
        self.assertEqual(names - {".hidden"}, {"a.txt", "b.bin", "empty", "dir"})

    def test_nlst_missing(self):
        c = self.logged_in()
        d = self.pasv(c)
        r = c.cmd("NLST nosuch")
        self.assertIn(code(r), ("450", "550"), r)
        d.close()

    def test_nlst_needs_no_stat(self):
        # A directory the server may read but not search (r--): its names
        # can be listed, as ls -1 does, though no entry can be stat'ed.
        sealed = os.path.join(self.root, "sealed")
        os.mkdir(sealed)
        for n in ("one", "two"):
            open(os.path.join(sealed, n), "wb").close()
        give_to_server(self.tmp, self.root)
        os.chmod(sealed, 0o444)
        self.addCleanup(os.chmod, sealed, 0o755)
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST sealed", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(sorted(os.path.basename(n) for n in body.decode().split()), ["one", "two"])

    def test_empty_directory_listing(self):
        os.mkdir(os.path.join(self.root, "void"))
        give_to_server(self.tmp, self.root)
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST void", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, b"")


# ---- data connection commands -------------------------------------------------

class DataAddressTests(RawMixin, FerrydCase):
    PAYLOAD = b"data-address test payload\n" * 100

    def prepare_root(self):
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(self.PAYLOAD)

    def test_pasv_retr(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        r = c.cmd("PASV")
        self.assertTrue(re.match(r"^227 .*\(127,0,0,1,\d+,\d+\)", r), r)
        host, port = parse_227(r)
        d = socket.create_connection((host, port), timeout=TIMEOUT)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_epsv_retr(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.epsv(c)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_epsv_1_and_wrong_family(self):
        c = self.logged_in()
        r = c.cmd("EPSV 1")
        self.assertEqual(code(r), "229", r)
        self.assertEqual(code(c.cmd("EPSV 2")), "522")
        # an unknown protocol number is 522 as well, naming the one to use
        # (RFC 2428 section 3); a word is no protocol number at all
        self.assertEqual(c.cmd("EPSV 7"), "522 Network protocol not supported, use (1).")
        self.assertEqual(code(c.cmd("EPSV x")), "501")
        self.assertEqual(c.cmd("EPRT |3|127.0.0.1|5000|"), "522 Network protocol not supported, use (1).")
        self.assertEqual(c.cmd("EPRT |2|::1|5000|"), "522 Network protocol not supported, use (1).")

    def test_port_reply_text_and_retr(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        lst = self.listener()
        r = c.cmd("PORT " + lst.port_arg())
        self.assertEqual(r, "200 Port command successful (127.0.0.1,%d)." % lst.port)
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_eprt_retr(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        lst = self.listener()
        r = c.cmd("EPRT " + lst.eprt_arg())
        self.assertEqual(code(r), "200", r)
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_malformed_port_is_501_and_changes_nothing(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        for bad in ("PORT 1,2,3", "PORT 127,0,0,1,300,1", "PORT 127,0,0,1,4", "PORT abc",
                    "PORT 127,0,0,1,4,1,9", "PORT 127.0.0.1.4.1", "PORT -1,0,0,1,4,1", "PORT"):
            r = c.cmd(bad)
            self.assertEqual(code(r), "501", "%s: %s" % (bad, r))
        # the first PORT is still in force
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_malformed_eprt_is_501(self):
        c = self.logged_in()
        lst = self.listener()
        self.assertEqual(code(c.cmd("EPRT " + lst.eprt_arg())), "200")
        for bad in ("EPRT |1|127.0.0.1|", "EPRT |1|nonsense|2000|", "EPRT |1|127.0.0.1|99999|",
                    "EPRT 1|127.0.0.1|2000|", "EPRT |1|127.0.0.1|abc|"):
            r = c.cmd(bad)
            self.assertEqual(code(r), "501", "%s: %s" % (bad, r))
        self.assertEqual(code(c.cmd("EPRT |9|127.0.0.1|2000|")), "522")
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(body, self.PAYLOAD)

    def test_port_survives_failed_retr(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        self.assertEqual(code(c.cmd("RETR nosuch")), "550")
        # no connection was attempted for the failing RETR
        lst.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            lst.sock.accept()
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_port_consumed_by_transfer(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(code(r), "226", r)
        r = c.cmd("RETR f.bin")
        self.assertIn(code(r), ("425", "503"), r)
        r = c.cmd("LIST")
        self.assertIn(code(r), ("425", "503"), r)
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_pasv_consumed_by_transfer(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST", d)
        self.assertEqual(code(r), "226", r)
        r = c.cmd("NLST")
        self.assertIn(code(r), ("425", "503"), r)

    def test_transfer_without_address(self):
        c = self.logged_in()
        for line in ("RETR f.bin", "LIST", "NLST", "MLSD"):
            r = c.cmd(line)
            self.assertIn(code(r), ("425", "503"), "%s: %s" % (line, r))

    def test_second_port_replaces_first(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        first, second = self.listener(), self.listener()
        self.assertEqual(code(c.cmd("PORT " + first.port_arg())), "200")
        self.assertEqual(code(c.cmd("PORT " + second.port_arg())), "200")
        body, r = self.transfer_in(c, "RETR f.bin", listener=second)
        self.assertEqual(body, self.PAYLOAD)
        self.assertEqual(code(r), "226", r)
        first.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            first.sock.accept()

    def test_pasv_replaces_port(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(body, self.PAYLOAD)
        lst.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            lst.sock.accept()

    def test_port_replaces_pasv(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        r = c.cmd("PASV")
        self.assertEqual(code(r), "227")
        host, pport = parse_227(r)
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(body, self.PAYLOAD)
        # the passive listener was closed
        with self.assertRaises(OSError):
            socket.create_connection((host, pport), timeout=2).close()

    def test_second_pasv_replaces_first(self):
        c = self.logged_in()
        r1 = c.cmd("PASV")
        r2 = c.cmd("PASV")
        self.assertEqual(code(r2), "227")
        d = socket.create_connection(parse_227(r2), timeout=TIMEOUT)
        body, r = self.transfer_in(c, "NLST", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, b"f.bin\r\n")
        if parse_227(r1) != parse_227(r2):
            with self.assertRaises(OSError):
                socket.create_connection(parse_227(r1), timeout=2).close()

    def test_port_nobody_listening_gives_425(self):
        c = self.logged_in()
        port = free_port()
        self.assertEqual(code(c.cmd("PORT 127,0,0,1,%d,%d" % (port >> 8, port & 255))), "200")
        r = c.cmd("RETR f.bin")
        r = final_reply(c, r)
        self.assertEqual(r, "425 Can not open data connection.")
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_quit_drops_port(self):
        c = self.logged_in()
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        self.assertEqual(c.cmd("QUIT"), "221 Goodbye.")
        self.assertTrue(c.closed())
        lst.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            lst.sock.accept()

    def test_port_to_other_host_or_low_port_is_504(self):
        c = self.logged_in()
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        other = self.listener("127.0.0.2")
        r = c.cmd("PORT " + other.port_arg())
        self.assertEqual(code(r), "504", r)
        self.assertEqual(code(c.cmd("EPRT " + other.eprt_arg())), "504")
        self.assertEqual(code(c.cmd("PORT 127,0,0,1,0,21")), "504")
        self.assertEqual(code(c.cmd("EPRT |1|127.0.0.1|1023|")), "504")
        # none of them replaced the good PORT, and nothing reached 127.0.0.2
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(body, self.PAYLOAD)
        other.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            other.sock.accept()

    def test_passive_accepts_only_control_peer(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        r = c.cmd("EPSV")
        port = parse_229(r)
        # a third party (another address) connecting first gets nothing
        intruder = socket.socket()
        intruder.settimeout(5)
        intruder.bind(("127.0.0.2", 0))
        self.addCleanup(intruder.close)
        try:
            intruder.connect(("127.0.0.1", port))
        except OSError:
            pass
        d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(d.close)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)
        try:
            leaked = intruder.recv(65536)
        except OSError:
            leaked = b""
        self.assertEqual(leaked, b"")

    def test_epsv_all(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("EPSV ALL")), "200")
        lst = self.listener()
        for line in ("PASV", "PORT " + lst.port_arg(), "EPRT " + lst.eprt_arg()):
            r = c.cmd(line)
            self.assertEqual(code(r)[0], "5", "%s after EPSV ALL: %s" % (line, r))
        d = self.epsv(c)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(body, self.PAYLOAD)
        self.assertEqual(code(r), "226", r)

    def test_pasv_argument_is_501(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("PASV x")), "501")


def small_pasv_range(span, salt=0):
    """A range of span ports below the kernel's ephemeral ports (which
    outgoing connections take), spread by pid so parallel runs rarely meet."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            top = int(f.read().split()[0])
    except (OSError, ValueError):
        top = 32768
    lo = 10000 + (os.getpid() * 7919 + salt) % max(1, top - 10000 - span)
    return (lo, lo + span - 1)


class PasvOptionsTests(RawMixin, FerrydCase):
    SPAN = 3

    def setUp(self):
        self.range = small_pasv_range(self.SPAN)
        self.ferryd_args = ("--pasv-ports", "%d-%d" % self.range, "--pasv-address", "10.11.12.13")
        super().setUp()

    def test_pasv_port_range_and_address(self):
        c = self.logged_in()
        for _ in range(6):
            r = c.cmd("PASV")
            self.assertEqual(code(r), "227", r)
            host, port = parse_227(r)
            self.assertEqual(host, "10.11.12.13")
            self.assertTrue(self.range[0] <= port <= self.range[1], r)
            r = c.cmd("EPSV")
            self.assertEqual(code(r), "229", r)
            port = parse_229(r)
            self.assertTrue(self.range[0] <= port <= self.range[1], r)

    def test_transfer_in_range(self):
        """More transfers in a row than the range has ports: each port's
        previous data connection lingers in TIME_WAIT, and the range must
        still serve."""
        with open(os.path.join(self.root, "x"), "wb") as f:
            f.write(b"ranged\n")
        give_to_server(self.tmp, self.root)
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        for i in range(2 * self.SPAN):
            r = c.cmd("PASV" if i % 2 else "EPSV")
            self.assertIn(code(r), ("227", "229"), "transfer %d: %s" % (i, r))
            port = parse_227(r)[1] if code(r) == "227" else parse_229(r)
            self.assertTrue(self.range[0] <= port <= self.range[1], r)
            d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            body, r = self.transfer_in(c, "RETR x", d)
            self.assertEqual(body, b"ranged\n")
            self.assertEqual(code(r), "226", r)


class PasvFreshPortTests(RawMixin, FerrydCase):
    """Clear-data sessions get a fresh listener per PASV/EPSV, closed once
    its connection arrived: a port re-announced to the same session could
    be found by probing and raced to by a process on the client's address
    (RFC 2577). Parking is for PROT P only (test_tls.py)."""
    ferryd_args = ("-w",)
    PAYLOAD = os.urandom(50000)

    def prepare_root(self):
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(self.PAYLOAD)

    def test_used_port_is_refused_at_once(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        for _ in range(3):
            port = parse_229(c.cmd("EPSV"))
            d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            self.addCleanup(d.close)
            body, r = self.transfer_in(c, "RETR f.bin", d)
            self.assertEqual((body, code(r)), (self.PAYLOAD, "226"), r)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_client_that_connects_after_the_command(self):
        """A listener is read only once a transfer waits for it (or from the
        next tick): a client that connects after RETR/STOR, its 150 already
        read, is still served."""
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        for _ in range(3):
            port = parse_229(c.cmd("EPSV"))
            self.assertEqual(code(c.cmd("RETR f.bin")), "150")
            d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            body = recv_all(d)
            d.close()
            self.assertEqual((body, code(c.reply())), (self.PAYLOAD, "226"))
        port = parse_229(c.cmd("EPSV"))
        self.assertEqual(code(c.cmd("STOR late.bin")), "150")
        d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        d.sendall(self.PAYLOAD)
        d.close()
        self.assertEqual(code(c.reply()), "226")
        with open(os.path.join(self.root, "late.bin"), "rb") as f:
            self.assertEqual(f.read(), self.PAYLOAD)


class PasvSpareTests(RawMixin, FerrydCase):
    """Once a passive transfer's final reply is written, ferryd opens the
    session's next passive socket on a fresh random port, bound but not
    listening and announced to no one, so the next PASV/EPSV answers with a
    listen() instead of opening one. Until then a connection to its port is
    refused as at a closed port; the tick closes it after a second or two;
    PORT closes it at once; a port someone else took meanwhile is replaced."""
    PAYLOAD = os.urandom(50000)

    def prepare_root(self):
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(self.PAYLOAD)

    def data_sockets(self):
        """{port: listening?} of ferryd's sockets other than the control port's."""
        found = tcp_sockets(self.server.proc.pid)
        found.pop(self.server.port, None)
        return found

    def retr_through(self, c, verb="EPSV", host="127.0.0.1"):
        """verb, then RETR f.bin; returns (port used, data_sockets() after it).
        The NOOP's answer shows the worker has gone past the spare."""
        r = c.cmd(verb)
        port = parse_227(r)[1] if verb == "PASV" else parse_229(r)
        d = socket.create_connection((host, port), timeout=TIMEOUT)
        self.addCleanup(d.close)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual((body, code(r)), (self.PAYLOAD, "226"), r)
        self.assertEqual(code(c.cmd("NOOP")), "200")
        return port, self.data_sockets()

    def the_spare(self, sockets):
        self.assertEqual(len(sockets), 1, sockets)
        port, listening = sockets.popitem()
        self.assertFalse(listening, "the spare listens before it is announced")
        return port

    def binary(self, **kw):
        c = self.logged_in(**kw)
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        return c

    def test_next_passive_command_announces_the_spare(self):
        c = self.binary()
        used, after = self.retr_through(c)
        for verb in ("EPSV", "PASV", "EPSV"):
            spare = self.the_spare(after)
            self.assertNotEqual(spare, used)
            used, after = self.retr_through(c, verb)
            self.assertEqual(used, spare)

    def test_ipv6_session_gets_its_spare_on_ipv6(self):
        c = self.binary(host="::1", family=socket.AF_INET6)
        _, after = self.retr_through(c, host="::1")
        spare = self.the_spare(after)
        used, _ = self.retr_through(c, host="::1")
        self.assertEqual(used, spare)

    def test_spare_refuses_connections_until_announced(self):
        """A probe finds nothing at the spare's port before the EPSV: it
        cannot learn the port ahead of the client."""
        c = self.binary()
        _, after = self.retr_through(c)
        for _ in range(3):
            spare = self.the_spare(after)
            for host in ("127.0.0.1", "127.0.0.2"):
                with self.assertRaises(ConnectionRefusedError):
                    socket.create_connection((host, spare), timeout=2).close()
            used, after = self.retr_through(c)
            self.assertEqual(used, spare)

    def test_spare_whose_port_was_taken_is_replaced(self):
        """SO_REUSEADDR lets another socket bind the spare's port while it
        does not listen; the EPSV then opens a fresh listener."""
        c = self.binary()
        _, after = self.retr_through(c)
        spare = self.the_spare(after)
        squatter = socket.socket()
        self.addCleanup(squatter.close)
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", spare))
        squatter.listen(4)
        squatter.settimeout(0.5)
        used, _ = self.retr_through(c)
        self.assertNotEqual(used, spare)
        with self.assertRaises(socket.timeout):
            squatter.accept()[0].close()

    def test_spare_is_closed_after_a_second_or_two(self):
        c = self.binary()
        _, after = self.retr_through(c)
        spare = self.the_spare(after)
        self.assertTrue(poll_until(lambda: not self.data_sockets(), timeout=5), spare)
        used, _ = self.retr_through(c)
        self.assertNotEqual(used, spare)

    def test_port_closes_the_spare_and_active_transfers_open_none(self):
        c = self.binary()
        _, after = self.retr_through(c)
        self.the_spare(after)
        lst = self.listener()
        self.assertEqual(code(c.cmd("PORT " + lst.port_arg())), "200")
        self.assertEqual(self.data_sockets(), {})
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual((body, code(r)), (self.PAYLOAD, "226"), r)
        self.assertEqual(code(c.cmd("NOOP")), "200")
        self.assertEqual(self.data_sockets(), {})

    def test_small_range_opens_no_spare(self):
        """A passive range with no more ports than sessions allowed keeps
        none: idle sessions could hold the ports others need."""
        lo, hi = small_pasv_range(3, salt=401)
        self.restart("--pasv-ports", "%d-%d" % (lo, hi))
        c = self.binary()
        used, after = self.retr_through(c)
        self.assertTrue(lo <= used <= hi, used)
        self.assertEqual(after, {})


class IPv6Tests(RawMixin, FerrydCase):
    PAYLOAD = os.urandom(100000)

    def prepare_root(self):
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(self.PAYLOAD)

    def test_login_over_ipv6(self):
        c = self.raw(host="::1", family=socket.AF_INET6)
        self.assertEqual(c.greeting, "220 ferry FTP server ready.")
        self.assertEqual(code(c.login()), "230")

    def test_pasv_on_ipv6_is_425(self):
        c = self.raw(host="::1", family=socket.AF_INET6)
        c.login()
        self.assertEqual(code(c.cmd("PASV")), "425")

    def test_epsv_ipv6(self):
        c = self.raw(host="::1", family=socket.AF_INET6)
        c.login()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("EPSV 1")), "522")
        r = c.cmd("EPSV 2")
        self.assertEqual(code(r), "229", r)
        d = socket.create_connection(("::1", parse_229(r)), timeout=TIMEOUT)
        self.addCleanup(d.close)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_eprt_ipv6(self):
        c = self.raw(host="::1", family=socket.AF_INET6)
        c.login()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        lst = self.listener("::1", socket.AF_INET6)
        r = c.cmd("EPRT |2|::1|%d|" % lst.port)
        self.assertEqual(code(r), "200", r)
        body, r = self.transfer_in(c, "RETR f.bin", listener=lst)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(body, self.PAYLOAD)

    def test_ftplib_ipv6(self):
        f = self.ftp(host="::1")
        out = io.BytesIO()
        f.retrbinary("RETR f.bin", out.write)
        self.assertEqual(out.getvalue(), self.PAYLOAD)


# ---- transfers: RETR, STOR, STOU, APPE, REST, ABOR ----------------------------

class TransferCommandTests(RawMixin, FerrydCase):
    ferryd_args = ("-w",)
    DATA = bytes((i * 7 + 3) & 255 for i in range(50000))

    def prepare_root(self):
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(self.DATA)
        os.mkdir(os.path.join(self.root, "d"))

    def test_retr_failures(self):
        c = self.logged_in()
        for line in ("RETR nosuch", "RETR d", "RETR /d/nosuch"):
            d = self.pasv(c)
            r = c.cmd(line)
            self.assertEqual(code(r), "550", "%s: %s" % (line, r))
            d.close()
        self.assertEqual(code(c.cmd("RETR")), "501")

    def test_retr_unreadable_file(self):
        if os.geteuid() != 0:
            self.skipTest("needs the server to run as a different user than the file owner")
        p = os.path.join(self.root, "private")
        with open(p, "wb") as f:
            f.write(b"private")
        os.chown(p, 0, 0)
        os.chmod(p, 0o600)
        c = self.logged_in()
        d = self.pasv(c)
        r = c.cmd("RETR private")
        self.assertEqual(code(r), "550", r)

    def test_stor_new_and_replace(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "STOR new.bin", b"first", d)), "226")
        self.assertEqual(self.read_root("new.bin"), b"first")
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "STOR new.bin", b"2nd", d)), "226")
        self.assertEqual(self.read_root("new.bin"), b"2nd")
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "STOR d/in-dir.bin", self.DATA, d)), "226")
        self.assertEqual(self.read_root("d/in-dir.bin"), self.DATA)
        self.assertEqual(sorted(os.listdir(self.root)), ["d", "f.bin", "new.bin"])

    def test_stor_empty_file(self):
        c = self.logged_in()
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "STOR empty", b"", d)), "226")
        self.assertEqual(self.read_root("empty"), b"")

    def test_stor_failures(self):
        c = self.logged_in()
        for line in ("STOR d", "STOR nosuch/x"):
            d = self.pasv(c)
            r = c.cmd(line)
            self.assertEqual(code(r), "550", "%s: %s" % (line, r))
            d.close()
        self.assertEqual(code(c.cmd("STOR")), "501")
        self.assertTrue(os.path.isdir(os.path.join(self.root, "d")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "nosuch")))

    def test_stou(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        names = set()
        for i in range(2):
            d = self.pasv(c)
            r = c.cmd("STOU")
            self.assertEqual(code(r), "150", r)
            d.sendall(b"unique %d" % i)
            d.close()
            self.assertEqual(code(final_reply(c, c.reply())), "226")
            # the 150 (or 250/226) names the file: find it in the root
            new = set(os.listdir(self.root)) - {"d", "f.bin"} - names
            self.assertEqual(len(new), 1, os.listdir(self.root))
            name = new.pop()
            self.assertIn(name, r)
            self.assertEqual(self.read_root(name), b"unique %d" % i)
            names.add(name)

    def test_ftplib_storbinary_retrbinary(self):
        f = self.ftp()
        f.storbinary("STOR up.bin", io.BytesIO(self.DATA))
        self.assertEqual(self.read_root("up.bin"), self.DATA)
        out = io.BytesIO()
        f.retrbinary("RETR up.bin", out.write)
        self.assertEqual(out.getvalue(), self.DATA)

    def test_ftplib_storlines_retrlines(self):
        f = self.ftp()
        f.storlines("STOR t.txt", io.BytesIO(b"a\nbb\nccc\n"))
        self.assertEqual(self.read_root("t.txt"), b"a\nbb\nccc\n")
        lines = []
        f.retrlines("RETR t.txt", lines.append)
        self.assertEqual(lines, ["a", "bb", "ccc"])

    def test_type_a_upload_crlf_to_lf(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE A")), "200")
        d = self.pasv(c)
        r = self.transfer_out(c, "STOR t.txt", b"one\r\ntwo\r\n\r\nlast", d)
        self.assertEqual(code(r), "226")
        self.assertEqual(self.read_root("t.txt"), b"one\ntwo\n\nlast")

    def test_type_a_edge_cases(self):
        c = self.logged_in()
        self.put_file("mixed.txt", b"a\r\nb\nc\rd\n")
        self.assertEqual(code(c.cmd("TYPE A")), "200")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR mixed.txt", d)
        self.assertEqual(body, b"a\r\nb\r\nc\rd\r\n")
        d = self.pasv(c)
        r = self.transfer_out(c, "STOR up.txt", b"x\ry\r\nz\r", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(self.read_root("up.txt"), b"x\ry\nz\r")

    def test_appe(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "APPE f.bin", b"tail", d)), "226")
        self.assertEqual(self.read_root("f.bin"), self.DATA + b"tail")
        # APPE to a missing file creates it
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "APPE fresh", b"abc", d)), "226")
        self.assertEqual(self.read_root("fresh"), b"abc")
        d = self.pasv(c)
        r = c.cmd("APPE d")
        self.assertEqual(code(r), "550", r)

    def test_rest_retr(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        for off in (0, 1, 4096, len(self.DATA) - 1, len(self.DATA)):
            self.assertEqual(code(c.cmd("REST %d" % off)), "350")
            d = self.pasv(c)
            body, r = self.transfer_in(c, "RETR f.bin", d)
            self.assertEqual(code(r), "226", r)
            self.assertEqual(body, self.DATA[off:], "REST %d" % off)

    def test_rest_applies_to_one_transfer_only(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("REST 100")), "350")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(body, self.DATA[100:])
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(body, self.DATA)

    def test_rest_is_forgotten_by_an_unrelated_command(self):
        """RFC 959: REST is followed by the transfer it is for. Set-up
        commands between keep it (clients send PASV, TYPE, SIZE there);
        LIST or CWD mean it was not for a later RETR, which gets it all."""
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("REST 100")), "350")
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("SIZE f.bin")), "213")
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR f.bin", d)
        self.assertEqual(body, self.DATA[100:])
        for between in ("LIST", "CWD /", "MKD restdir"):
            self.assertEqual(code(c.cmd("REST 3")), "350")
            if between == "LIST":
                d = self.pasv(c)
                _, r = self.transfer_in(c, "LIST", d)
                self.assertEqual(code(r), "226", r)
            else:
                self.assertIn(code(c.cmd(between)), ("250", "257"))
            d = self.pasv(c)
            body, r = self.transfer_in(c, "RETR f.bin", d)
            self.assertEqual(body, self.DATA, "REST survived " + between)

    def test_refused_rest_stor_leaves_no_empty_file(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        for name in ("fresh.bin", "f.bin"):
            self.assertEqual(code(c.cmd("REST 9223372036854775807")), "350")
            self.pasv(c)
            r = c.cmd("STOR " + name)
            self.assertEqual(code(r), "550", r)
        self.assertFalse(os.path.exists(os.path.join(self.root, "fresh.bin")))
        self.assertEqual(self.read_root("f.bin"), self.DATA)
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_rest_stor(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("REST 1000")), "350")
        d = self.pasv(c)
        self.assertEqual(code(self.transfer_out(c, "STOR f.bin", b"X" * 10, d)), "226")
        want = self.DATA[:1000] + b"X" * 10 + self.DATA[1010:]
        self.assertEqual(self.read_root("f.bin"), want)

    def test_ftplib_rest(self):
        f = self.ftp()
        out = io.BytesIO()
        f.retrbinary("RETR f.bin", out.write, rest=12345)
        self.assertEqual(out.getvalue(), self.DATA[12345:])

    def test_rest_failures(self):
        c = self.logged_in()
        for bad in ("REST -1", "REST abc", "REST 12x", "REST"):
            r = c.cmd(bad)
            self.assertEqual(code(r), "501", "%s: %s" % (bad, r))
        # an offset past the end
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        self.assertEqual(code(c.cmd("REST %d" % (len(self.DATA) + 10))), "350")
        d = self.pasv(c)
        r = c.cmd("RETR f.bin")
        self.assertEqual(code(r)[0], "5", r)

    def test_abor_without_transfer(self):
        c = self.logged_in()
        r = c.cmd("ABOR")
        self.assertIn(code(r), ("225", "226"), r)
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_abor_drops_pasv(self):
        c = self.logged_in()
        r = c.cmd("PASV")
        self.assertEqual(code(r), "227")
        r = c.cmd("ABOR")
        self.assertIn(code(r), ("225", "226"), r)
        r = c.cmd("NLST")
        self.assertIn(code(r), ("425", "503"), r)


class TimeoutTests(RawMixin, FerrydCase):
    ferryd_args = ("-w", "--idle-timeout", "2", "--data-timeout", "1")

    def prepare_root(self):
        with open(os.path.join(self.root, "keep.bin"), "wb") as f:
            f.write(b"old")
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(os.urandom(8 << 20))

    def test_idle_session_closed_with_421(self):
        c = self.logged_in()
        t0 = time.monotonic()
        c.sock.settimeout(15)
        r = c.reply()
        self.assertEqual(code(r), "421", r)
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        self.assertTrue(c.closed())

    def test_activity_keeps_session(self):
        c = self.logged_in()
        for _ in range(4):
            time.sleep(0.8)
            self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_passive_nobody_connects_425(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("PASV")), "227")
        c.sock.settimeout(15)
        r = c.cmd("RETR keep.bin")
        r = final_reply(c, r)
        self.assertEqual(code(r), "425", r)
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_stalled_upload_426_keeps_old_file(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        self.assertEqual(code(c.cmd("STOR keep.bin")), "150")
        d.sendall(b"new but never finished")
        c.sock.settimeout(15)
        r = c.reply()
        self.assertEqual(code(r), "426", r)
        self.assertEqual(self.read_root("keep.bin"), b"old")
        self.assertEqual(sorted(os.listdir(self.root)), ["big.bin", "keep.bin"])
        self.assertEqual(code(c.cmd("NOOP")), "200")

    def test_stalled_download_426(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.assertEqual(code(c.cmd("RETR big.bin")), "150")
        c.sock.settimeout(15)
        r = c.reply()  # the reader never reads: the transfer stalls
        self.assertEqual(code(r), "426", r)
        self.assertEqual(code(c.cmd("NOOP")), "200")


class DuringTransferTests(RawMixin, FerrydCase):
    """While a transfer runs only ABOR, STAT and NOOP are answered; other
    commands wait for the transfer's end and are answered in order."""

    def prepare_root(self):
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(os.urandom(16 << 20))

    def test_noop_and_stat_answered_others_queued(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        d = self.pasv(c)
        self.assertEqual(code(c.cmd("RETR big.bin")), "150")
        self.assertTrue(d.recv(65536))
        # not reading further: the transfer is blocked on us
        self.assertEqual(code(c.cmd("NOOP")), "200")
        r = c.cmd("STAT")
        self.assertEqual(code(r), "211", r)
        c.send("PWD\r\n")
        c.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            c.reply()
        c.sock.settimeout(TIMEOUT)
        got = 65536
        while True:
            b = d.recv(1 << 20)
            if not b:
                break
            got += len(b)
        self.assertEqual(code(c.reply()), "226")
        self.assertEqual(code(c.reply()), "257")
        self.assertEqual(code(c.cmd("NOOP")), "200")


class LargeDirectoryTests(RawMixin, FerrydCase):
    MANY = 3000

    def prepare_root(self):
        many = os.path.join(self.root, "many")
        os.mkdir(many)
        for i in range(self.MANY):
            open(os.path.join(many, "entry-%05d" % i), "wb").close()

    def test_large_directory_listings(self):
        want = {"entry-%05d" % i for i in range(self.MANY)}
        for cmd in ("NLST many", "LIST many", "MLSD many"):
            c = self.logged_in()
            d = self.pasv(c)
            body, r = self.transfer_in(c, cmd, d)
            self.assertEqual(code(r), "226", r)
            lines = [ln for ln in body.decode().split("\r\n") if ln and not ln.startswith("total ")]
            self.assertEqual(len(lines), self.MANY, cmd)
            names = [os.path.basename(ln.split(" ")[-1]) for ln in lines]
            self.assertEqual(names, sorted(want), cmd)

    def test_stat_of_large_directory_is_bounded(self):
        c = self.logged_in()
        r = c.cmd("STAT many")
        lines = r.splitlines()
        self.assertTrue(lines[0].startswith("213-") or lines[0].startswith("212-"), lines[0])
        self.assertEqual(lines[-1][:4], lines[0][:3] + " ")
        body = lines[1:-1]
        self.assertGreater(len(body), 0)
        self.assertLessEqual(len(body), self.MANY)
        # no body line can be mistaken for the end of the reply
        for ln in body:
            self.assertFalse(re.match(r"^\d{3}[ -]", ln), ln)
        self.assertEqual(code(c.cmd("NOOP")), "200")


class HugeDirectoryTests(RawMixin, FerrydCase):
    """Names beyond what a listing may hold to sort (FERRY_LIST_SORT_MAX,
    2 MiB with their index) are listed whole, in the directory's order."""
    MANY = 9000

    def prepare_root(self):
        huge = os.path.join(self.root, "huge")
        os.mkdir(huge)
        for i in range(self.MANY):
            open(os.path.join(huge, "%05d-" % i + "n" * 234), "wb").close()

    def test_listed_whole_unsorted(self):
        want = sorted("%05d-" % i + "n" * 234 for i in range(self.MANY))
        for cmd in ("NLST huge", "MLSD huge"):
            c = self.logged_in()
            d = self.pasv(c)
            body, r = self.transfer_in(c, cmd, d)
            self.assertEqual(code(r), "226", r)
            names = [os.path.basename(ln.split(" ")[-1])
                     for ln in body.decode().split("\r\n") if ln]
            self.assertEqual(sorted(names), want, cmd)
            # sorting them would have held more than the bound
            self.assertNotEqual(names, want, cmd)

    def test_pattern_reads_past_the_bound_in_slices(self):
        # Ten names kept, but all 9,000 read to find them: more than a
        # listing reads at once, so the directory is read as it is sent.
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST huge/0000?-*", d)
        self.assertEqual(code(r), "226", r)
        self.assertEqual(sorted(body.decode().split("\r\n")[:-1]),
                         ["huge/0000%d-" % i + "n" * 234 for i in range(10)])


class ListingMemoryTests(RawMixin, FerrydCase):
    """A sorted listing holds its names (up to 2 MiB) only while its data
    connection is up, and a worker's listings hold at most 16 MiB in all
    (FERRY_LIST_SORT_WORKER_MAX); one that finds less left goes out
    unsorted, whole. 45,000 short names: each sorted listing of them holds
    the whole 2 MiB, and their MLSD (3.4 MB) is more than the kernel
    buffers before the client reads."""
    ferryd_args = ("--workers", "1")
    MANY = 45000

    def prepare_root(self):
        many = os.path.join(self.root, "many")
        os.mkdir(many)
        for i in range(self.MANY):
            open(os.path.join(many, "a%05d" % ((i * 7919) % self.MANY)), "wb").close()

    def mlsd_names(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "MLSD many", d)
        self.assertEqual(code(r), "226", r)
        c.close()
        return [ln.split("; ", 1)[1] for ln in body.decode().split("\r\n") if ln]

    def test_listings_waiting_for_their_connection_hold_no_names(self):
        worker = self.server.proc.pid  # one worker runs in ferryd's own process
        before = rss_kib(worker)
        waiting = []
        for _ in range(12):
            c = self.logged_in()
            self.addCleanup(c.close)
            self.assertEqual(code(c.cmd("PASV")), "227")
            self.assertEqual(code(c.cmd("NLST many")), "150")
            waiting.append(c)
        # Read at the command, twelve listings would hold 24 MiB (16 with the cap).
        self.assertLess(rss_kib(worker) - before, 6 * 1024)
        for c in waiting:  # not left to wait out the data connection's timeout
            c.send("ABOR\r\n")

    def test_a_worker_holds_at_most_16_mib_of_names(self):
        want = sorted("a%05d" % i for i in range(self.MANY))
        self.assertTrue(self.mlsd_names() == want, "one listing alone is not sorted")
        held = []
        for _ in range(8):
            c = self.logged_in()
            d = socket.socket()
            d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            d.settimeout(TIMEOUT)
            host, port = parse_227(c.cmd("PASV"))
            d.connect((host, port))
            self.assertEqual(code(c.cmd("MLSD many")), "150")
            self.assertTrue(d.recv(1000))  # under way: its names are read
            held.append((c, d))
        # Eight listings hold the worker's 16 MiB: the next goes out whole,
        # in the directory's order.
        names = self.mlsd_names()
        self.assertTrue(sorted(names) == want, "the listing is not whole")
        self.assertFalse(names == want, "a ninth listing was sorted")
        for c, d in held:
            d.close()
            c.close()
        # Their memory is given back: sorted again.
        self.assertTrue(poll_until(lambda: self.mlsd_names() == want, timeout=20))


class SortedListingTests(RawMixin, FerrydCase):
    """Listings come in byte order, as `LC_ALL=C ls` and vsftpd, ProFTPD
    and pure-ftpd give theirs. The names are made in a scrambled order, so
    the directory's own order is not the sorted one."""
    NAMES = ([b"zeta", b"Alpha", b"beta", b"_x", b"1a", b"a10", b"a9", b"-dash", b"sp ace",
              b"abcdefgh", b"abcdefg", b"abcdefghi", "\u00e4rger".encode(), b"~x", b"a", b"ab",
              b".hidden"]
             + [b"IMG_20240101_%04d.jpg" % ((i * 37) % 100) for i in range(100)])

    def prepare_root(self):
        mixed = os.path.join(os.fsencode(self.root), b"mixed")
        os.mkdir(mixed)
        for n in self.NAMES:
            open(os.path.join(mixed, n), "wb").close()
        os.mkdir(os.path.join(mixed, b"subdir"))

    def listed(self, c, cmd):
        d = self.pasv(c)
        body, r = self.transfer_in(c, cmd, d)
        self.assertEqual(code(r), "226", r)
        return [ln for ln in body.decode().split("\r\n") if ln and not ln.startswith("total ")]

    def test_every_listing_in_byte_order(self):
        want = [n.decode() for n in sorted(self.NAMES + [b"subdir"])]
        c = self.logged_in()
        self.assertEqual(self.listed(c, "NLST mixed"), ["mixed/" + n for n in want])
        self.assertEqual([LS_LINE.match(ln).group(10) for ln in self.listed(c, "LIST mixed")], want)
        self.assertEqual([LS_LINE.match(ln).group(10) for ln in self.listed(c, "LIST -a mixed")],
                         sorted(want + [".", ".."]))
        self.assertEqual([ln.split("; ", 1)[1] for ln in self.listed(c, "MLSD mixed")], want)
        self.assertEqual(self.listed(c, "NLST mixed/IMG*"),
                         ["mixed/" + n for n in want if n.startswith("IMG")])
        stat = c.cmd("STAT mixed").splitlines()[1:-1]
        self.assertEqual([LS_LINE.match(ln[1:]).group(10) for ln in stat], want)

    def test_ftplib_nlst_in_byte_order(self):
        f = self.ftp()
        f.cwd("mixed")
        self.assertEqual(f.nlst(), [n.decode() for n in sorted(self.NAMES + [b"subdir"])])


class EdgeCaseTests(RawMixin, FerrydCase):
    ferryd_args = ("-w",)

    def prepare_root(self):
        with open(os.path.join(self.root, "bad\nname"), "wb") as f:
            f.write(b"x")
        os.mkfifo(os.path.join(self.root, "fifo"))

    def test_control_characters_in_names_are_masked(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "NLST", d)
        names = body.decode().split("\r\n")
        self.assertIn("bad?name", names)
        d = self.pasv(c)
        body, r = self.transfer_in(c, "LIST", d)
        self.assertNotIn(b"bad\nname", body)
        r = c.cmd("STAT /")
        self.assertNotIn("bad\nname", r)
        self.assertIn("bad?name", r)

    def test_fifo_never_blocks_the_server(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("TYPE I")), "200")
        for line in ("RETR fifo", "APPE fifo", "REST 5", "STOR fifo"):
            if line.startswith("REST"):
                self.assertEqual(code(c.cmd(line)), "350")
                continue
            d = self.pasv(c)
            r = c.cmd(line)
            if code(r) == "150":
                d.close()
                r = final_reply(c, c.reply())
            self.assertEqual(code(r)[0], "5", "%s: %s" % (line, r))
            d.close()
            # the server still serves others
            other = self.logged_in()
            self.assertEqual(code(other.cmd("NOOP")), "200")
            other.close()
        self.assertEqual(code(c.cmd("SIZE fifo")), "550")

    def test_long_names(self):
        c = self.logged_in()
        self.assertEqual(code(c.cmd("MKD " + "n" * 255)), "257")
        r = c.cmd("MKD " + "n" * 256)
        self.assertIn(code(r), ("550", "553"), r)
        deep = "/".join(["d" * 200] * 19)  # a long path that does not exist
        r = c.cmd("CWD " + deep)
        self.assertIn(code(r), ("550", "553"), r)
        r = c.cmd("MKD " + deep)
        self.assertIn(code(r), ("550", "553"), r)
        # a path that becomes longer than PATH_MAX once joined to the cwd
        self.assertEqual(code(c.cmd("CWD " + "n" * 255)), "250")
        r = c.cmd("MKD " + "/".join(["e" * 250] * 16))
        self.assertIn(code(r), ("550", "553"), r)
        r = c.cmd("CWD " + "/".join(["e" * 250] * 16))
        self.assertIn(code(r), ("550", "553"), r)
        self.assertEqual(code(c.cmd("CWD /")), "250")
        self.assertEqual(c.cmd("PWD"), '257 "/" is the current directory.')

    def test_client_that_shuts_its_sending_side_gets_its_download_and_answers(self):
        """RETR, a command behind it, then shutdown(SHUT_WR) of the control
        connection (what a script does once it has sent everything): the
        download finishes, the 226 and the answer to the queued command
        come, then ferryd ends the session (as vsftpd and pure-ftpd do)."""
        payload = os.urandom(8 << 20)
        self.put_file("big.bin", payload)
        for queued in ("", "SIZE big.bin\r\n"):
            c = self.logged_in()
            self.assertEqual(code(c.cmd("TYPE I")), "200")
            d = self.pasv(c)
            c.send("RETR big.bin\r\n" + queued)
            self.assertEqual(code(c.reply()), "150")
            c.sock.shutdown(socket.SHUT_WR)
            time.sleep(0.2)  # the end reaches ferryd while the download runs
            self.assertEqual(recv_all(d), payload, repr(queued))
            self.assertEqual(code(c.reply()), "226")
            if queued:
                self.assertEqual(c.reply(), "213 %d" % len(payload))
            c.sock.settimeout(TIMEOUT)
            self.assertEqual(c.sock.recv(100), b"", "the session did not end")
        # without a download under way the end of input ends the session at once
        c = self.logged_in()
        c.sock.shutdown(socket.SHUT_WR)
        c.sock.settimeout(TIMEOUT)
        self.assertEqual(c.sock.recv(100), b"")

    def test_upload_under_a_name_too_long_is_refused_before_the_data(self):
        """553 (RFC 959: file name not allowed) at once, not a 150 and the
        whole upload before a 451."""
        c = self.logged_in()
        for verb in ("STOR", "APPE"):
            d = self.pasv(c)
            r = c.cmd("%s %s" % (verb, "n" * 256))
            self.assertTrue(r.startswith("553 nnn") and r.endswith(": File name too long."), (verb, r))
            d.close()
        self.assertEqual(code(c.cmd("NOOP")), "200")
        self.assertEqual([n for n in os.listdir(self.root) if n.startswith("nnn")], [])


# ---- virtual users ------------------------------------------------------------

class VirtualUserTests(RawMixin, FerrydCase):

    @classmethod
    def setUpClass(cls):
        cls.hashes = {"alice": hash_password("alice-pw"), "bob": hash_password("bob pw")}

    def setUp(self):
        self._pre_tmp = tempfile.mkdtemp(prefix="ferry-users-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self._pre_tmp], timeout=60)
        self.homes = {}
        for name in ("alice", "bob"):
            h = os.path.join(self._pre_tmp, name)
            os.mkdir(h)
            with open(os.path.join(h, name + ".txt"), "wb") as f:
                f.write(("home of %s\n" % name).encode())
            self.homes[name] = h
            give_to_server(self._pre_tmp, h)
        self.users_file = os.path.join(self._pre_tmp, "users")
        with open(self.users_file, "w") as f:
            f.write("# ferry users\n")
            f.write("alice:%s:%s:rw\n" % (self.hashes["alice"], self.homes["alice"]))
            f.write("bob:%s:%s:ro\n" % (self.hashes["bob"], self.homes["bob"]))
        os.chmod(self.users_file, 0o644)
        self.ferryd_args = ("-u", self.users_file)
        super().setUp()

    def prepare_root(self):
        with open(os.path.join(self.root, "anon.txt"), "wb") as f:
            f.write(b"anonymous root\n")

    def test_hash_password_output(self):
        # '-' and ' ' are outside crypt's alphabet: a hash holds them only
        # if the plaintext leaked into it, never by chance of the salt
        for user, pw in (("alice", "alice-pw"), ("bob", "bob pw")):
            h = self.hashes[user]
            self.assertTrue(h.startswith("$"), h)
            self.assertNotIn(pw, h)
        self.assertNotEqual(hash_password("same"), "")

    def test_login_ok(self):
        c = self.raw()
        r = c.cmd("USER alice")
        self.assertEqual(code(r), "331", r)
        self.assertNotEqual(r, "331 Guest access OK, send password.")
        r = c.cmd("PASS alice-pw")
        self.assertEqual(code(r), "230", r)
        f = self.ftp("bob", "bob pw")
        self.assertEqual(f.pwd(), "/")

    def test_wrong_password_530(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER alice")), "331")
        self.assertEqual(code(c.cmd("PASS bob pw")), "530")
        self.assertEqual(code(c.cmd("PWD")), "530")
        # a correct login afterwards works
        self.assertEqual(code(c.cmd("USER alice")), "331")
        self.assertEqual(code(c.cmd("PASS alice-pw")), "230")

    def test_unknown_user_530(self):
        c = self.raw()
        r = c.cmd("USER mallory")
        self.assertEqual(code(r), "331", r)
        self.assertEqual(code(c.cmd("PASS alice-pw")), "530")

    def test_three_failed_logins_close(self):
        c = self.raw()
        for i in range(3):
            self.assertEqual(code(c.cmd("USER alice")), "331")
            r = c.cmd("PASS wrong%d" % i)
            self.assertEqual(code(r), "530", r)
        r = c.reply()
        self.assertEqual(code(r), "421", r)
        self.assertTrue(c.closed())

    def test_ftplib_wrong_password(self):
        f = self.ftp(login=False)
        with self.assertRaises(ftplib.error_perm) as cm:
            f.login("bob", "nope")
        self.assertTrue(str(cm.exception).startswith("530"))

    def test_home_is_root(self):
        f = self.ftp("alice", "alice-pw")
        self.assertEqual(f.nlst(), ["alice.txt"])
        f.cwd("..")
        self.assertEqual(f.pwd(), "/")
        self.assertEqual(f.nlst(), ["alice.txt"])
        with self.assertRaises(ftplib.error_perm):
            f.size("../bob/bob.txt")
        with self.assertRaises(ftplib.error_perm):
            f.size("/anon.txt")
        out = io.BytesIO()
        f.retrbinary("RETR alice.txt", out.write)
        self.assertEqual(out.getvalue(), b"home of alice\n")

    def test_anonymous_still_gets_served_root(self):
        f = self.ftp()
        self.assertEqual(f.nlst(), ["anon.txt"])

    def test_ro_user_cannot_write(self):
        c = self.raw()
        self.assertEqual(code(c.login("bob", "bob pw")), "230")
        d = self.pasv(c)
        r = c.cmd("STOR new.txt")
        self.assertEqual(code(r), "550", r)
        d.close()
        for line in ("DELE bob.txt", "MKD x", "RNFR bob.txt"):
            self.assertEqual(code(c.cmd(line)), "550", line)
        self.assertEqual(os.listdir(self.homes["bob"]), ["bob.txt"])
        f = self.ftp("bob", "bob pw")
        with self.assertRaises(ftplib.error_perm) as cm:
            f.storbinary("STOR x.bin", io.BytesIO(b"x"))
        self.assertTrue(str(cm.exception).startswith("550"))

    def test_rw_user_can_write(self):
        f = self.ftp("alice", "alice-pw")
        f.storbinary("STOR up.bin", io.BytesIO(b"uploaded by alice"))
        with open(os.path.join(self.homes["alice"], "up.bin"), "rb") as fh:
            self.assertEqual(fh.read(), b"uploaded by alice")
        f.mkd("sub")
        self.assertTrue(os.path.isdir(os.path.join(self.homes["alice"], "sub")))
        f.delete("up.bin")
        self.assertFalse(os.path.exists(os.path.join(self.homes["alice"], "up.bin")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "up.bin")))


class VirtualUserNoAnonTests(VirtualUserTests):
    """The same users with anonymous logins switched off."""

    def setUp(self):
        super().setUp()
        self.restart("-u", self.users_file, "--no-anonymous")

    def test_anonymous_still_gets_served_root(self):
        c = self.raw()
        r = c.cmd("USER anonymous")
        if code(r) == "331":
            r = c.cmd("PASS x")
        self.assertEqual(code(r), "530", r)


class BadUsersFileTests(unittest.TestCase):

    def run_ferryd(self, *args):
        port = free_port()
        return subprocess.run([FERRYD, "--port", str(port)] + list(args), capture_output=True,
                              text=True, timeout=30)

    def test_malformed_users_file(self):
        with tempfile.TemporaryDirectory() as d:
            uf = os.path.join(d, "users")
            for content in ("justaname\n", "a:$x$y:relative/home:rw\n", "a:$x$y:/tmp:admin\n"):
                with open(uf, "w") as f:
                    f.write(content)
                p = self.run_ferryd("--root", d, "-u", uf)
                self.assertEqual(p.returncode, 2, (content, p.stderr))
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_missing_users_file(self):
        with tempfile.TemporaryDirectory() as d:
            p = self.run_ferryd("--root", d, "-u", os.path.join(d, "nosuch"))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)


# ---- verbose transcript -------------------------------------------------------

class TranscriptTests(RawMixin, FerrydCase):
    PASSWORD = "very-secret-pw-42"

    def setUp(self):
        self._utmp = tempfile.mkdtemp(prefix="ferry-vusers-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self._utmp], timeout=60)
        home = os.path.join(self._utmp, "home")
        os.mkdir(home)
        give_to_server(self._utmp, home)
        uf = os.path.join(self._utmp, "users")
        with open(uf, "w") as f:
            f.write("carol:%s:%s:rw\n" % (hash_password(self.PASSWORD), home))
        os.chmod(uf, 0o644)
        self.ferryd_args = ("-v", "-u", uf)
        super().setUp()

    def prepare_root(self):
        with open(os.path.join(self.root, "here.txt"), "wb") as f:
            f.write(b"here\n")

    def session_lines(self, marker_cmd):
        """Waits for our session to close, returns its transcript lines
        without the [n] prefix, and checks every line has the prefix."""
        deadline = time.monotonic() + 10
        out = ""
        while time.monotonic() < deadline:
            out = self.server.stdout()
            if marker_cmd in out:
                ids = re.findall(r"^\[(\d+)\] " + re.escape(marker_cmd) + "$", out, re.M)
                if ids and re.search(r"^\[%s\] SUCCESS QUIT$" % ids[0], out, re.M):
                    break
            time.sleep(0.05)
        lines = out.splitlines()
        for ln in lines:
            self.assertRegex(ln, r"^\[\d+\] ", "transcript line without [n] prefix: %r" % ln)
        ids = re.findall(r"^\[(\d+)\] " + re.escape(marker_cmd) + "$", out, re.M)
        self.assertEqual(len(ids), 1, out)
        prefix = "[%s] " % ids[0]
        return [ln[len(prefix):] for ln in lines if ln.startswith(prefix)], out

    def test_anonymous_session(self):
        c = self.raw()
        c.cmd("NOOP")
        c.cmd("USER anonymous")
        c.cmd("PASS guest@")
        c.cmd("SIZE nosuch")
        c.cmd("FEAT")
        c.cmd("SYST")
        c.cmd("QUIT")
        self.assertTrue(c.closed())
        lines, _ = self.session_lines("SIZE nosuch")
        # greeting, command echo, replies and SUCCESS/FAILURE lines, in order
        self.assertIn("220 ferry FTP server ready.", lines)
        seq = ["NOOP", "SUCCESS NOOP", "USER anonymous", "331 Guest access OK, send password.",
               "SUCCESS USER anonymous", "230 Guest login OK.", "SIZE nosuch", "SYST",
               "215 UNIX Type: L8.", "SUCCESS SYST", "QUIT", "221 Goodbye.", "SUCCESS QUIT"]
        pos = -1
        for want in seq:
            self.assertIn(want, lines[pos + 1:], "%r missing or out of order in %r" % (want, lines))
            pos = lines.index(want, pos + 1)
        fail = [ln for ln in lines if ln.startswith("FAILURE SIZE nosuch: ")]
        self.assertEqual(len(fail), 1, lines)
        self.assertRegex(fail[0], r"^FAILURE SIZE nosuch: 550 \S")
        # the 550 reply itself is echoed just before
        i = lines.index(fail[0])
        self.assertTrue(lines[i - 1].startswith("550 "), lines)
        # multi-line replies: every line appears
        i = lines.index("FEAT")
        self.assertTrue(lines[i + 1].startswith("211-"), lines)
        self.assertIn(" EPSV", lines[i + 1:])
        self.assertTrue(any(ln.startswith("211 ") for ln in lines[i + 1:]))
        self.assertIn("SUCCESS FEAT", lines)

    def test_user_password_masked(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER carol")), "331")
        self.assertEqual(code(c.cmd("PASS " + self.PASSWORD)), "230")
        c.cmd("MKD made-by-carol")
        c.cmd("QUIT")
        self.assertTrue(c.closed())
        lines, out = self.session_lines("MKD made-by-carol")
        self.assertNotIn(self.PASSWORD, out)
        self.assertIn("PASS ****", lines)
        self.assertIn("USER carol", lines)
        i = lines.index("PASS ****")
        self.assertTrue(lines[i + 1].startswith("230 "), lines)
        self.assertIn("SUCCESS MKD made-by-carol", lines)

    def test_wrong_password_masked(self):
        c = self.raw()
        self.assertEqual(code(c.cmd("USER carol")), "331")
        self.assertEqual(code(c.cmd("PASS wrong-" + self.PASSWORD)), "530")
        c.cmd("STAT")
        c.cmd("QUIT")
        self.assertTrue(c.closed())
        lines, out = self.session_lines("USER carol")
        self.assertNotIn(self.PASSWORD, out)
        self.assertIn("PASS ****", lines)
        self.assertTrue(any(re.match(r"^FAILURE PASS \*\*\*\*: 530 ", ln) for ln in lines), lines)

    def test_transfer_in_transcript(self):
        c = self.logged_in()
        d = self.pasv(c)
        body, r = self.transfer_in(c, "RETR here.txt", d)
        self.assertEqual(code(r), "226")
        c.cmd("QUIT")
        self.assertTrue(c.closed())
        lines, _ = self.session_lines("RETR here.txt")
        i = lines.index("RETR here.txt")
        self.assertTrue(lines[i + 1].startswith("150 "), lines)
        self.assertIn("226 " + r[4:], lines[i + 1:])
        self.assertIn("SUCCESS RETR here.txt", lines[i + 1:])

    def test_separate_sessions_separate_numbers(self):
        a = self.logged_in()
        b = self.logged_in()
        a.cmd("MKD aaa-marker")
        b.cmd("MKD bbb-marker")
        a.cmd("QUIT")
        b.cmd("QUIT")
        self.assertTrue(a.closed() and b.closed())
        la, out = self.session_lines("MKD aaa-marker")
        lb, _ = self.session_lines("MKD bbb-marker")
        self.assertNotIn("MKD bbb-marker", la)
        self.assertNotIn("MKD aaa-marker", lb)
        ia = re.search(r"^\[(\d+)\] MKD aaa-marker$", out, re.M).group(1)
        ib = re.search(r"^\[(\d+)\] MKD bbb-marker$", out, re.M).group(1)
        self.assertNotEqual(ia, ib)


class TranscriptManySessionsTests(RawMixin, FerrydCase):
    """Sessions on several worker processes: numbers stay unique and every
    line stays whole."""
    ferryd_args = ("-v", "--workers", "3")

    def test_many_sessions(self):
        conns = [self.logged_in() for _ in range(30)]
        for i, c in enumerate(conns):
            c.send("SIZE marker-%d\r\n" % i)
        for c in conns:
            self.assertEqual(code(c.reply()), "550")
            self.assertEqual(c.cmd("QUIT"), "221 Goodbye.")
        out = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = self.server.stdout()
            if len(re.findall(r"(?m)^\[\d+\] SUCCESS QUIT$", out)) >= 30:
                break
            time.sleep(0.05)
        ids = set()
        for i in range(30):
            m = re.findall(r"(?m)^\[(\d+)\] SIZE marker-%d$" % i, out)
            self.assertEqual(len(m), 1, "marker %d" % i)
            self.assertRegex(out, r"(?m)^\[%s\] FAILURE SIZE marker-%d: 550 " % (m[0], i))
            self.assertRegex(out, r"(?m)^\[%s\] SUCCESS QUIT$" % m[0])
            ids.add(m[0])
        self.assertEqual(len(ids), 30)
        for ln in out.splitlines():
            self.assertRegex(ln, r"^\[\d+\] ")


class QuietTests(RawMixin, FerrydCase):
    def test_no_transcript_without_v(self):
        c = self.logged_in()
        c.cmd("SYST")
        c.cmd("QUIT")
        self.assertTrue(c.closed())
        time.sleep(0.2)
        self.assertEqual(self.server.stdout(), "")


# ---- start-up -----------------------------------------------------------------

class StartupTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-start-")
        self.root = os.path.join(self.tmp, "root")
        os.mkdir(self.root)
        give_to_server(self.tmp, self.root)
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp], timeout=60)

    def run_ferryd(self, *args, timeout=10):
        return subprocess.run([FERRYD] + list(args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def assert_one_line_error(self, p):
        self.assertEqual(p.returncode, 2, "exit %s, stderr %r" % (p.returncode, p.stderr))
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].strip(), p.stderr)

    def test_startup_message(self):
        s = start_ferryd(self.root)
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not s.stderr().endswith("\n"):
                time.sleep(0.05)
            err = s.stderr()
            lines = err.splitlines()
            self.assertEqual(len(lines), 1, err)
            self.assertIn(str(s.port), lines[0])
            self.assertIn(os.path.realpath(self.root), lines[0])
            self.assertEqual(s.stdout(), "")
        finally:
            self.assertEqual(s.stop(), 0)
        self.assertEqual(len(s.stderr().splitlines()), 1, s.stderr())

    def test_help_exits_0(self):
        p = self.run_ferryd("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--root", p.stdout)
        self.assertIn("--pasv-ports", p.stdout)
        p = self.run_ferryd("-h")
        self.assertEqual(p.returncode, 0)

    def test_bad_option(self):
        self.assert_one_line_error(self.run_ferryd("--root", self.root, "--no-such-option"))
        self.assert_one_line_error(self.run_ferryd("--root", self.root, "-Z"))

    def test_bad_values(self):
        port = str(free_port())
        for args in (("--port", "notaport"), ("--port", "70000"), ("--pasv-ports", "9-3"),
                     ("--pasv-ports", "x"), ("--max-per-ip", "-3"), ("--workers", "0"),
                     ("--pasv-address", "not-an-address"), ("--idle-timeout", "abc")):
            argv = ["--root", self.root, "--port", port] + list(args)
            self.assert_one_line_error(self.run_ferryd(*argv))

    def test_missing_value(self):
        self.assert_one_line_error(self.run_ferryd("--root", self.root, "--port"))

    def test_missing_root(self):
        self.assert_one_line_error(self.run_ferryd("--root", os.path.join(self.tmp, "nosuch"),
                                                   "--port", str(free_port())))

    def test_root_is_a_file(self):
        f = os.path.join(self.tmp, "file")
        open(f, "w").close()
        self.assert_one_line_error(self.run_ferryd("--root", f, "--port", str(free_port())))

    def test_unreadable_root(self):
        if os.geteuid() == 0:
            # root reads everything: make the directory unusable for anyone
            # by pointing through a file.
            bad = os.path.join(self.tmp, "file")
            open(bad, "w").close()
            self.assert_one_line_error(self.run_ferryd("--root", os.path.join(bad, "sub"),
                                                       "--port", str(free_port())))
        else:
            d = os.path.join(self.tmp, "locked")
            os.mkdir(d, 0o000)
            try:
                self.assert_one_line_error(self.run_ferryd("--root", d, "--port", str(free_port())))
            finally:
                os.chmod(d, 0o755)

    def test_port_in_use(self):
        s = start_ferryd(self.root)
        try:
            p = self.run_ferryd("--root", self.root, "--port", str(s.port))
            self.assert_one_line_error(p)
            # the first server is unharmed
            c = RawControl("127.0.0.1", s.port)
            self.assertEqual(c.greeting, "220 ferry FTP server ready.")
            c.close()
        finally:
            s.stop()

    def test_port_in_use_by_other_socket(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen(1)
            port = blocker.getsockname()[1]
            p = self.run_ferryd("--root", self.root, "--port", str(port), "-b", "127.0.0.1")
            self.assert_one_line_error(p)
        finally:
            blocker.close()

    def test_bind_address(self):
        s = start_ferryd(self.root, "-b", "127.0.0.1")
        try:
            c = RawControl("127.0.0.1", s.port)
            self.assertEqual(c.greeting, "220 ferry FTP server ready.")
            c.close()
            with self.assertRaises(OSError):
                socket.create_connection(("::1", s.port), timeout=2).close()
        finally:
            s.stop()

    def test_bind_ipv6_only(self):
        s = start_ferryd(self.root, "-b", "::1", host="::1")
        try:
            c = RawControl("::1", s.port, socket.AF_INET6)
            self.assertEqual(c.greeting, "220 ferry FTP server ready.")
            self.assertEqual(code(c.login()), "230")
            r = c.cmd("EPSV")
            self.assertEqual(code(r), "229", r)
            c.close()
        finally:
            s.stop()

    def test_sigterm_stops(self):
        s = start_ferryd(self.root)
        c = RawControl("127.0.0.1", s.port)
        c.login()
        rc = s.stop()
        self.assertIn(rc, (0, -15), rc)
        self.assertIsNotNone(s.proc.poll())


if __name__ == "__main__":
    unittest.main()
