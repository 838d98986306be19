#!/bin/sh
# Runs every unit test program of the current build under valgrind's
# memcheck, two at a time: an invalid read or write, a use of an
# uninitialised value or a definite leak fails the test (exit status 42),
# as does any failed check.  Prints one line per program and the totals;
# the logs go to tests/tmp/valgrind-NAME.log.  Needs `make` (the programs)
# and valgrind (scripts/install-deps.sh installs it).
set -eu
cd "$(dirname "$0")/.."
mkdir -p tests/tmp
progs=
for f in tests/unit/test-*; do
	case $f in *.c|*.o|*.log|*.trs) continue ;; esac
	[ -f "$f" ] && [ -x "$f" ] && progs="$progs $f"
done
[ -n "$progs" ] || { echo "valgrind-unit.sh: no unit test programs: run make first" >&2; exit 1; }
out=$(for p in $progs; do echo "$p"; done | xargs -P 2 -I{} sh -c '
	name=$(basename "$1")
	if valgrind -q --error-exitcode=42 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite "$1" >"tests/tmp/valgrind-$name.log" 2>&1; then
		echo "PASS: $name"
	else
		echo "FAIL: $name (exit $?; see tests/tmp/valgrind-$name.log)"
	fi' sh {})
echo "$out"
n=$(echo "$out" | grep -c '^PASS' || true)
f=$(echo "$out" | grep -c '^FAIL' || true)
echo "# valgrind: $n unit test programs clean, $f failed"
[ "$f" -eq 0 ]
