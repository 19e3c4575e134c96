"""The CI-sized stress run: 60 concurrent clients x 5 mixed RETR/STOR of
64 KiB - 2 MiB each, all checked byte for byte (`make stress` runs
1,000 clients x 5 files of up to 8 MiB)."""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stress"))
import stress  # noqa: E402


class TestStressSmall(unittest.TestCase):
    def test_sixty_clients_five_files_each(self):
        out = io.StringIO()
        errors = stress.run(clients=60, files=5, lo=64 * 1024, hi=2 * 1024 * 1024, pool_size=12, out=out)
        self.assertEqual(errors, [], out.getvalue())
        self.assertIn("60 clients x 5 files = 300 transfers", out.getvalue())


if __name__ == "__main__":
    unittest.main()
