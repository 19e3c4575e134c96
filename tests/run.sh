#!/usr/bin/env bash
# Runs every test: the C unit tests in BUILD/tests, then the integration
# suite. Each test prints one "PASS name" or "FAIL name" line; the last line
# is the total, "N passed, N failed". Exit status is non-zero on any failure.
set -u
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	"$t" 2>&1 | tee -a "$log" || status=1
done
FERRY_BUILD=$(cd "$build" && pwd) /usr/bin/python3 "$here/integration/runner.py" 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
