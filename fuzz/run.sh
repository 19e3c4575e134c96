#!/usr/bin/env bash
# Runs libFuzzer targets one after the other (make fuzz):
#   fuzz/run.sh BINDIR SECONDS NAME...
# Each BINDIR/fuzz_NAME runs for SECONDS on a copy of fuzz/corpus/NAME
# (the committed corpus is never written to), with fuzz/NAME.dict when
# there is one. Crash inputs go to BINDIR/artifacts/. The last lines are
# a table: executions per target and whether it found a crash. Exit
# status is non-zero when any target crashed.
set -u
bindir=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$bindir/artifacts"

status=0
summary=()
for name in "$@"; do
	bin="$bindir/fuzz_$name"
	corpus="$work/$name"
	mkdir -p "$corpus"
	cp -r "$here/corpus/$name/." "$corpus/" 2>/dev/null
	dict=()
	[ -f "$here/$name.dict" ] && dict=("-dict=$here/$name.dict")
	log="$bindir/$name.log"
	echo "fuzz: $name for ${seconds}s" >&2
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$bindir/artifacts/$name-" "${dict[@]}" "$corpus" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	units=$(ls "$corpus" | wc -l)
	if [ $rc -eq 0 ]; then
		result="no crash"
	else
		result="CRASH (exit $rc, see $log)"
		status=1
		grep -m5 -E 'ERROR|property violated|SUMMARY|Test unit written' "$log" >&2
	fi
	summary+=("$(printf '%-10s %12s executions  %5s corpus inputs  %s' "$name" "${execs:-?}" "$units" "$result")")
done
echo "fuzz: ${seconds}s per target"
printf '%s\n' "${summary[@]}"
exit $status
