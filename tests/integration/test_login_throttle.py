"""Password guessing is throttled per address across sessions: after
FERRY_IP_FAILS_MAX (10) failures within a minute, non-anonymous logins
from that address are refused with 421, while anonymous logins and other
addresses are unaffected."""
import os
import subprocess
import threading
import unittest

import harness
from harness import FERRYD, FerrydCase, RawControl


def guess_three(port, results):
    c = RawControl("127.0.0.1", port)
    try:
        for _ in range(3):
            r = c.cmd("USER alice")
            if not r.startswith("331"):
                results.append(r)
                return
            results.append(c.cmd("PASS wrong"))
    except (EOFError, OSError) as e:
        results.append(f"closed: {e}")
    finally:
        c.close()


class TestLoginThrottle(FerrydCase):
    def prepare_root(self):
        home = os.path.join(self.tmp, "alice")
        os.mkdir(home)
        h = subprocess.run([FERRYD, "--hash-password"], input=b"right\n", capture_output=True,
                           timeout=30).stdout.decode().strip()
        users = os.path.join(self.tmp, "users")
        with open(users, "w") as f:
            f.write(f"alice:{h}:{home}:ro\n")
        harness.give_to_server(self.tmp, home)
        self.ferryd_args = ("-u", users)

    def test_failures_from_one_address_block_further_logins(self):
        results = []
        threads = [threading.Thread(target=guess_three, args=(self.server.port, results)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(sum(1 for r in results if r.startswith("530")), 9, results)
        c = self.raw()
        self.assertTrue(c.cmd("USER alice").startswith("331"))
        self.assertTrue(c.cmd("PASS wrong").startswith("530"))  # the tenth
        # The right password no longer helps from this address...
        c = self.raw()
        r = c.cmd("USER alice")
        self.assertTrue(r.startswith("421"), r)
        self.assertTrue(c.closed())
        # ...but anonymous users and other addresses still get in.
        self.assertTrue(self.raw().login().startswith("230"))
        other = RawControl("127.0.0.1", self.server.port, source="127.0.0.2")
        self.addCleanup(other.close)
        self.assertTrue(other.login("alice", "right").startswith("230"))

    def test_sessions_that_sent_user_before_the_block_cannot_guess_through_it(self):
        """The block holds at PASS too: sessions opened and given USER
        before the tenth failure do not get their passwords checked after
        it, the right one included."""
        waiting = []
        for _ in range(6):
            c = self.raw()
            self.assertTrue(c.cmd("USER alice").startswith("331"))
            waiting.append(c)
        results = []
        for _ in range(4):
            guess_three(self.server.port, results)
        self.assertEqual(sum(1 for r in results if r.startswith("530")), 10, results)
        for c in waiting[:-1]:
            r = c.cmd("PASS wrong")
            self.assertTrue(r.startswith("421 Too many failed logins from your address"), r)
            self.assertTrue(c.closed())
        r = waiting[-1].cmd("PASS right")
        self.assertTrue(r.startswith("421"), r)

    def test_third_failure_closes_session(self):
        c = self.raw()
        replies = []
        for _ in range(3):
            self.assertTrue(c.cmd("USER alice").startswith("331"))
            replies.append(c.cmd("PASS wrong"))
        self.assertTrue(all(r.startswith("530") for r in replies), replies)
        self.assertTrue(c.reply().startswith("421"))
        self.assertTrue(c.closed())


if __name__ == "__main__":
    unittest.main()
