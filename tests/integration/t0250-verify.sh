#!/bin/bash
# check --read-data in slices: each run reads a slice of the packs in id
# order and stops when its time is up (here a deadline that passes at
# once, so every run reads exactly one batch); the next run resumes where
# it stopped, the slices of one pass add up to every pack once, the pass
# then starts over; damage is found by the slice that reads it, which names
# the file; a lost or garbled bookmark only restarts the pass.  Through
# the daemon: lumbung check --read-data --max-duration finishes a small
# store in one run and reports the pass, and bad durations are refused.
. "$(dirname "$0")/lib.sh"

S="$T/s1"
"$LBSTORE" init "$S" --avg 16384 --pack-size 1048576 >/dev/null || exit 99
mkdir -p "$T/src"
for i in 1 2 3 4 5 6; do head -c 4000000 /dev/urandom >"$T/src/f$i.bin"; done
"$LBSTORE" backup "$S" opd data "$T/src" >/dev/null 2>&1 || exit 99
total=$(find "$S/packs" -type f | wc -l)
diag "$total packs"

# slice: one run; sets $rc and the positional parameters of the caller
# through $T/slice.args: "packs_read position total done".
slice() {
	"$LBSTORE" check "$S" --read-data --max-ns 1 >"$T/slice.out" 2>&1
	rc=$?
	awk '/^packs_read/ { print $2, $4, $6, $8 }' "$T/slice.out" >"$T/slice.args"
}

pass() { # pass: runs slices until one finishes the pass; checks the sums
	sum=0 last=0 runs=0 ok=1 found=0
	while [ $runs -le "$total" ]; do
		slice
		set -- $(cat "$T/slice.args")
		runs=$((runs + 1))
		[ "$rc" -eq 3 ] && found=$((found + 1))
		[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { ok=0; cat "$T/slice.out"; break; }
		[ "$1" -ge 1 ] && [ "$3" -eq "$total" ] || { ok=0; diag "run $runs: $*"; }
		sum=$((sum + $1))
		if [ "$4" -eq 1 ]; then
			[ "$2" -eq "$total" ] || ok=0
			break
		fi
		[ "$2" -gt "$last" ] && [ "$2" -eq "$sum" ] || { ok=0; diag "run $runs: position $2 after $sum read"; }
		last=$2
	done
	[ "$sum" -eq "$total" ] || { ok=0; diag "the slices read $sum of $total packs"; }
}

pass
check "slices of one pass each read some packs and resume where the last stopped" test $ok -eq 1
check "it took more than one run, and the slices add up to every pack once ($runs runs)" test "$runs" -gt 1 -a "$sum" -eq "$total"
check "every slice of a clean store is clean" test $found -eq 0
check "the bookmark records the finished pass" grep -q "^last_pass_done = [1-9]" "$S/verify"

slice
set -- $(cat "$T/slice.args")
check "after a finished pass the next run starts a new one from the first pack" test "$2" -eq "$1" -a "$4" -eq 0

# Damage in one pack: the slice that reads it finds it and names the file.
# The largest pack: a full data pack, so that the byte lies inside chunk data
# (pack ids are random, and a pick by name could land on the small tree pack).
victim=$(find "$S/packs" -type f -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)
python3 - "$victim" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(200000)
    b = f.read(1)
    f.seek(200000)
    f.write(bytes([b[0] ^ 0x40]))
EOF
# Finish the pass in progress, then a whole pass from the start.
n=0
while [ $n -le "$total" ]; do
	slice
	n=$((n + 1))
	grep -q " done 1 " "$T/slice.out" && break
done
pass
check "a whole pass over the damaged store: the slices still add up ($runs runs)" test $ok -eq 1
check "and exactly one slice finds the damage (exit status 3)" test $found -eq 1
"$LBSTORE" check "$S" --read-data >"$T/full.out" 2>&1
check "a full pass (no limit) finds it too and names the file" grep -q "f[1-6].bin" "$T/full.out"
check "and finishes the pass in one run" grep -q "^packs_read $total position $total total $total done 1" "$T/full.out"

# A garbled bookmark restarts the pass instead of failing.
printf 'next = zz\ngarbage\n' >"$S/verify"
slice
set -- $(cat "$T/slice.args")
check "a garbled bookmark starts a new pass" test "$2" -eq "$1"
rm -f "$S/verify"
slice
set -- $(cat "$T/slice.args")
check "so does a missing one" test "$2" -eq "$1"

# Through the daemon.
write_config
start_daemon || exit 1
mkdir -p "$T/d"
head -c 3000000 /dev/urandom >"$T/d/x.bin"
"$LUMBUNG" backup --dataset dinkes/x "$T/d" >/dev/null 2>&1
"$LUMBUNG" check --read-data --max-duration 2h --json >"$T/c.json"
check "lumbung check --read-data --max-duration 2h exits 0 on a clean store" test $? -eq 0
check "and reports the finished pass over every pack" python3 -c "
import json
d = json.load(open('$T/c.json'))
assert d['pass_finished'] and d['pass_position'] == d['pass_total'] == d['packs'] == d['packs_read'] > 0, d
assert d['last_full_pass'] > 0 and d['errors'] == 0, d"
"$LUMBUNG" check --read-data --max-duration 2h >"$T/c.txt"
check "the text output says where the pass stands" grep -q "the pass finished at" "$T/c.txt"
"$LUMBUNG" check --max-duration 2h >/dev/null 2>&1
check "--max-duration without --read-data is a usage error" test $? -eq 2
"$LUMBUNG" check --read-data --max-duration soon >/dev/null 2>"$T/err"
check "a bad duration is a usage error with a clear message" sh -c "test $? -eq 2 && grep -q 'such as 90m, 2h or 1d' '$T/err'"

done_testing
