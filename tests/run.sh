#!/usr/bin/env bash
# Runs every test: the C unit tests in BUILD/tests, the fuzz corpus replay
# (BUILD/fuzz/replay_*), then the integration suite. Each test prints one
# "PASS name" or "FAIL name" line; the last line is the total,
# "N passed, N failed". Exit status is non-zero on any failure.
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
# Fuzz corpus replay: each target over its committed inputs (fuzz/corpus/).
for r in "$build"/fuzz/replay_*; do
	[ -x "$r" ] || continue
	name=${r##*/replay_}
	out=$("$r" "$here/../fuzz/corpus/$name" 2>&1)
	rc=$?
	printf '%s\n' "$out" | tee -a "$log"
	if [ $rc -ne 0 ]; then
		status=1
		grep -q '^FAIL ' <<<"$out" || echo "FAIL fuzz/$name (exit status $rc)" | tee -a "$log"
	fi
done
FERRY_BUILD=$(cd "$build" && pwd) /usr/bin/python3 "$here/integration/runner.py" 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
