#!/bin/sh
# run-fuzz.sh - builds the libFuzzer targets with clang in a separate build
# directory and fuzzes each for N minutes, then writes the figures.
#
#   tests/fuzz/run-fuzz.sh [--minutes N] [--target NAME]...
#                          [--build DIR] [--results FILE]
#
# Defaults: 30 minutes per target, every target, one process at a time,
# build in /tmp/lumbung-fuzz-build, results in
# /tmp/lumbung-fuzz-build/fuzz-results.md.  Each target starts from a copy of
# its committed corpus (tests/fuzz/corpus/NAME) and grows it in
# BUILD/fuzz-work/NAME/corpus; crashes, leaks and timeouts are written to
# BUILD/fuzz-work/NAME/ (crash-*, leak-*, timeout-*, oom-*) and counted.
# Needs clang (apt-get install clang).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
minutes=30
targets=
build=/tmp/lumbung-fuzz-build
results=
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) minutes=$2; shift 2 ;;
	--target) targets="$targets $2"; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "run-fuzz.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
case $minutes in ''|*[!0-9]*|0) echo "run-fuzz.sh: --minutes needs a whole number of at least 1" >&2; exit 2 ;; esac
[ -n "$targets" ] || targets=$(cd "$src/tests/fuzz" && ls fuzz-*.c | sed 's/^fuzz-//; s/\.c$//')
[ -n "$results" ] || results=$build/fuzz-results.md
command -v clang >/dev/null || { echo "run-fuzz.sh: clang not found: apt-get install clang" >&2; exit 1; }

mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || ! grep -q 'enable-fuzz' config.status 2>/dev/null; then
	[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh)
	CC=clang "$src/configure" --enable-fuzz >configure.log 2>&1 ||
		{ echo "run-fuzz.sh: configure failed, see $build/configure.log" >&2; exit 1; }
fi
bins=
for t in $targets; do bins="$bins tests/fuzz/fuzz-$t"; done
# One build at a time in a build directory (two runs may share it).
flock "$build/.run-fuzz.lock" make -j"$(nproc)" $bins >make.log 2>&1 ||
	{ echo "run-fuzz.sh: build failed, see $build/make.log" >&2; exit 1; }

secs=$((minutes * 60))
{
	echo "# Fuzzing run $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo
	echo "Command: tests/fuzz/run-fuzz.sh --minutes $minutes$(for t in $targets; do printf ' --target %s' "$t"; done)"
	echo "Machine: $(nproc) cores, $(clang --version | head -1)"
	echo
	echo "| target | minutes | execs | exec/s | cov | ft | corpus (files) | crashes |"
	echo "|---|---|---|---|---|---|---|---|"
} >"$results"
for t in $targets; do
	work=$build/fuzz-work/$t
	mkdir -p "$work/corpus"
	cp -n "$src/tests/fuzz/corpus/$t"/* "$work/corpus/" 2>/dev/null || true
	rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
	echo "fuzzing $t for $minutes min" >&2
	# A crash, leak or timeout ends that target's run (its input is kept).
	(cd "$work" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$build/tests/fuzz/fuzz-$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" corpus \
		>"$work/log" 2>&1) || true
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$work/log" | tail -1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	files=$(ls "$work/corpus" | wc -l)
	crashes=$(ls "$work" | grep -cE '^(crash|leak|timeout|oom)-' || true)
	echo "| $t | $minutes | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $files | $crashes |" >>"$results"
done
echo >>"$results"
echo "Logs and findings: $build/fuzz-work/NAME/{log,crash-*,leak-*,timeout-*}" >>"$results"
cat "$results"
