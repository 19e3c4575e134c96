#!/usr/bin/env bash
# Runs every test against each build directory given (default: build):
# the C unit tests in BUILD/tests, the fuzz corpus replay
# (BUILD/fuzz/replay_*), then the integration suite. Each test prints one
# "PASS name" or "FAIL name" line; a build whose name ends in "-asan" runs
# with AddressSanitizer options and its lines read "PASS asan:name". The
# last line is the total over all builds, "N passed, N failed". Exit status
# is non-zero on any failure.
#
# The builds' suites run at the same time: most of a suite's time is spent
# waiting out the timeouts it tests (idle, data, login delays), not on a
# core. The first build's lines stream as they come; each other build's
# are held and shown whole once it ends, so no two suites' lines mix.
set -u
[ $# -gt 0 ] || set -- build
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_suite BUILD TAG LOG: every test of BUILD, its lines tagged TAG and
# also appended to LOG; non-zero when any test failed.
run_suite() {
	local build=$1 tag=$2 log=$3
	local out rc status=0
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
	return $status
}

# run_build BUILD LOG: run_suite with the build's tag and environment.
run_build() {
	case $1 in
	*-asan)
		echo "--- the suite again, under AddressSanitizer and UndefinedBehaviorSanitizer ($1)"
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
			run_suite "$1" "asan:" "$2"
		;;
	*)
		run_suite "$1" "" "$2"
		;;
	esac
}

status=0
pids=()
for i in $(seq 2 $#); do
	run_build "${!i}" "$work/log.$i" >"$work/out.$i" 2>&1 &
	pids[i]=$!
done
run_build "$1" "$work/log.1" || status=1
for i in $(seq 2 $#); do
	wait "${pids[i]}" || status=1
	cat "$work/out.$i"
done

cat "$work"/log.* >"$work/all"
passed=$(grep -c '^PASS ' "$work/all")
failed=$(grep -c '^FAIL ' "$work/all")
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
