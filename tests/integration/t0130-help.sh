#!/bin/sh
# Every binary (the systemd generator too) and verb answers --help on stdout
# with exit 0, --version, and bad usage with exit 2 and a hint on stderr.
. "$(dirname "$0")/lib.sh"

check "lumbungd --help" sh -c "'$LUMBUNGD' --help | grep -q 'Usage: lumbungd'"
check "lumbungd --version" sh -c "'$LUMBUNGD' --version | grep -q '^lumbungd [0-9]'"
"$LUMBUNGD" --bogus >/dev/null 2>"$T/err"
check "lumbungd bad option exits 2 with a hint" sh -c "[ $? -eq 2 ] && grep -q \"try 'lumbungd --help'\" '$T/err'"
GEN="$top_builddir/tools/lumbung-generator"
check "lumbung-generator --help" sh -c "'$GEN' --help | grep -q 'Usage: lumbung-generator'"
check "lumbung-generator --version" sh -c "'$GEN' --version | grep -q '^lumbung-generator [0-9]'"
"$GEN" --bogus >/dev/null 2>"$T/err"
check "lumbung-generator bad option exits 2 with a hint" sh -c "[ $? -eq 2 ] && grep -q \"try 'lumbung-generator --help'\" '$T/err'"
check "lumbung --help lists the verbs" sh -c "'$LUMBUNG' --help | grep -q 'restore'"
check "lumbung --version" sh -c "'$LUMBUNG' --version | grep -q '^lumbung [0-9]'"
"$LUMBUNG" frobnicate >/dev/null 2>"$T/err"
check "an unknown verb exits 2" sh -c "[ $? -eq 2 ] && grep -q 'unknown verb' '$T/err'"
"$LUMBUNG" >/dev/null 2>&1
check "no verb exits 2" test $? -eq 2
for v in backup snapshots ls cat diff restore check version audit quota forget report; do
	check "lumbung $v --help" sh -c "'$LUMBUNG' $v --help | grep -q 'Usage: lumbung $v'"
	"$LUMBUNG" $v --no-such-option >/dev/null 2>"$T/err"
	check "lumbung $v with a bad option exits 2" sh -c "[ $? -eq 2 ] && grep -q \"lumbung $v --help\" '$T/err'"
done
LUMBUNG_SOCKET="$T/nobody-here.sock" "$LUMBUNG" snapshots >/dev/null 2>"$T/err"
check "an unreachable daemon exits 5 and says where it looked" sh -c "[ $? -eq 5 ] && grep -q 'cannot reach lumbungd at $T/nobody-here.sock' '$T/err'"
done_testing
