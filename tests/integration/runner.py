"""Runs the integration suite: every test_*.py beside this file.

Prints one line per test, "PASS name" or "FAIL name" (with the failure's
traceback on stderr first), and exits non-zero when any test failed.
FERRY_TESTS=substring runs only the tests whose id contains it.
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class LineResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.started = 0.0

    def startTest(self, test):
        super().startTest(test)
        self.started = time.monotonic()

    def _name(self, test):
        return test.id().replace("test_", "", 1)

    def addSuccess(self, test):
        super().addSuccess(test)
        print(f"PASS integration/{self._name(test)} ({time.monotonic() - self.started:.1f}s)", flush=True)

    def _fail(self, test, err, kind):
        sys.stderr.write(f"--- {kind}: {test.id()}\n{self._exc_info_to_string(err, test)}\n")
        sys.stderr.flush()
        print(f"FAIL integration/{self._name(test)}", flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, "failure")

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, "error")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print(f"SKIP integration/{self._name(test)}: {reason}", flush=True)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main():
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    only = os.environ.get("FERRY_TESTS")
    selected = unittest.TestSuite()
    for t in iter_tests(suite):
        if only and only not in t.id():
            continue
        selected.addTest(t)
    result = LineResult()
    selected.run(result)
    ok = not result.failures and not result.errors
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
