#!/bin/sh
# The whole test suite, as CI runs it: installs the dependencies, builds
# with warnings as errors, runs `make check`, runs the unit test programs
# under valgrind (scripts/valgrind-unit.sh), runs the daemon tests again
# with the store in a throwaway Ceph cluster's pool, then rebuilds with
# AddressSanitizer and UndefinedBehaviorSanitizer and runs it again, and
# checks that the distribution tarball builds and passes (`make distcheck`).
# Ends with the totals.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh scripts/install-deps.sh
log=$top/tests/tmp
rm -rf "$log"
mkdir -p "$log"

status=0
summary() {
	# automake writes "# TOTAL: n", "# PASS: n" ... into the console output.
	sed -n 's/^# \(TOTAL\|PASS\|SKIP\|XFAIL\|FAIL\|XPASS\|ERROR\): *\([0-9]*\)/\1 \2/p' "$1"
}

run_suite() {
	name=$1
	shift
	echo "=== $name"
	if ! "$@" >"$log/$name.out" 2>&1; then
		status=1
		cat "$log/$name.out"
		[ -f test-suite.log ] && cat test-suite.log
	else
		grep -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS)|^# ' "$log/$name.out" | tail -n 12
	fi
}

./autogen.sh >/dev/null 2>&1
run_suite build sh -c './configure --enable-werror >/dev/null && make -j2'
run_suite check make -j2 check
summary "$log/check.out" >"$log/totals.main"
run_suite valgrind sh scripts/valgrind-unit.sh
run_suite rados sh scripts/test-rados.sh
summary "$log/rados.out" >"$log/totals.rados"

run_suite sanitize-build sh -c 'make distclean >/dev/null && ./configure --enable-werror --enable-asan --enable-ubsan >/dev/null && make -j2'
run_suite sanitize-check env LUMBUNG_KILLS=25 LUMBUNG_DAEMON_KILLS=8 LUMBUNG_CUT_STRIDE=3 ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 make -j2 check
summary "$log/sanitize-check.out" >"$log/totals.san"

run_suite distcheck env LUMBUNG_KILLS=10 LUMBUNG_DAEMON_KILLS=5 LUMBUNG_CUT_STRIDE=4 sh -c 'make distclean >/dev/null && ./configure >/dev/null && make -j2 distcheck'

pass=0
fail=0
skip=0
for f in "$log/totals.main" "$log/totals.rados" "$log/totals.san"; do
	p=$(sed -n 's/^PASS //p' "$f")
	s=$(sed -n 's/^SKIP //p' "$f")
	x=$(sed -n 's/^\(FAIL\|ERROR\|XPASS\) //p' "$f" | awk '{t += $1} END {print t + 0}')
	pass=$((pass + ${p:-0}))
	skip=$((skip + ${s:-0}))
	fail=$((fail + ${x:-0}))
done
[ "$status" -eq 0 ] || [ "$fail" -gt 0 ] || fail=1
echo
echo "test programs, plain, in a Ceph pool and sanitized:"
echo "$pass passed, $fail failed, $skip skipped"
exit "$status"
