#!/usr/bin/env bash
# Runs every test against each build directory given (default: build):
# the C unit tests in BUILD/tests, the fuzz corpus replay
# (BUILD/fuzz/replay_*), then the integration suite. Each test prints one
# "PASS name" or "FAIL name" line; a build whose name ends in "-asan" runs
# with AddressSanitizer options and its lines read "PASS asan:name". The
# last line is the total over all builds, "N passed, N failed". Exit status
# is non-zero on any failure.
set -u
[ $# -gt 0 ] || set -- build
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run_suite() {
	local build=$1 tag=$2
	local out rc
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		"$t" 2>&1 | sed "s/^\(PASS\|FAIL\) /\1 $tag/" | tee -a "$log"
		[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	done
	# Fuzz corpus replay: each target over its committed inputs (fuzz/corpus/).
	for r in "$build"/fuzz/replay_*; do
		[ -x "$r" ] || continue
		name=${r##*/replay_}
		out=$("$r" "$here/../fuzz/corpus/$name" 2>&1)
		rc=$?
		printf '%s\n' "$out" | sed "s/^\(PASS\|FAIL\) /\1 $tag/" | tee -a "$log"
		if [ $rc -ne 0 ]; then
			status=1
			grep -q '^FAIL ' <<<"$out" || echo "FAIL ${tag}fuzz/$name (exit status $rc)" | tee -a "$log"
		fi
	done
	FERRY_BUILD=$(cd "$build" && pwd) /usr/bin/python3 "$here/integration/runner.py" 2>&1 |
		sed -u "s/^\(PASS\|FAIL\|SKIP\) /\1 $tag/" | tee -a "$log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
}

for build in "$@"; do
	case $build in
	*-asan)
		echo "--- the suite again, under AddressSanitizer and UndefinedBehaviorSanitizer ($build)"
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
			run_suite "$build" "asan:"
		;;
	*)
		run_suite "$build" ""
		;;
	esac
done

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
