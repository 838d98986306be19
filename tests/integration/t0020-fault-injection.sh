#!/bin/sh
# Commit atomicity: a backup is run once for every durable step it takes
# (each write, fsync, rename and unlink), with that step failing with EIO or
# the process dying right before it.  After each run the store must open,
# check clean, still restore the earlier snapshot bit-exact, and hold the new
# snapshot either completely (restoring bit-exact) or not at all.
. "$(dirname "$0")/lib.sh"

make_tree "$T/src1" 1
make_tree "$T/src2" 2
"$LBSTORE" init "$T/base" || exit 99
id1=$("$LBSTORE" backup "$T/base" opd data "$T/src1" 2>/dev/null) || exit 99

cp -a "$T/base" "$T/count"
steps=$(LUMBUNG_FAULT_REPORT=1 "$LBSTORE" backup "$T/count" opd data "$T/src2" 2>&1 >/dev/null |
	sed -n 's/^fault-steps //p')
diag "a backup takes $steps durable steps"
check "the backup takes a plausible number of durable steps" test "${steps:-0}" -gt 10

verify() {
	store=$1
	"$LBSTORE" check "$store" >"$T/check.out" 2>&1 || { cat "$T/check.out"; return 1; }
	"$LBSTORE" snapshots "$store" >"$T/snaps" || return 1
	grep -q "^$id1 " "$T/snaps" || { echo "earlier snapshot lost"; return 1; }
	nsnap=$(wc -l <"$T/snaps")
	[ "$nsnap" -le 2 ] || { echo "unexpected snapshots"; cat "$T/snaps"; return 1; }
	rm -rf "$T/r1" "$T/r2"
	"$LBSTORE" restore "$store" "$id1" "$T/r1" && same_tree "$T/src1" "$T/r1" || return 1
	if [ "$nsnap" -eq 2 ]; then
		id2=$(grep -v "^$id1 " "$T/snaps" | cut -d' ' -f1)
		"$LBSTORE" restore "$store" "$id2" "$T/r2" && same_tree "$T/src2" "$T/r2" || return 1
	fi
	return 0
}

for mode in eio exit; do
	n=1
	while [ "$n" -le "$((steps + 1))" ]; do
		rm -rf "$T/cur"
		cp -a "$T/base" "$T/cur"
		LUMBUNG_FAULT="$n:$mode" "$LBSTORE" backup "$T/cur" opd data "$T/src2" >/dev/null 2>&1
		check "$mode at step $n: store consistent, earlier snapshot intact" verify "$T/cur"
		n=$((n + 1))
	done
done
# The last iteration (steps + 1) injected nothing: the backup must have landed.
check "without a fault the second snapshot lands" sh -c "[ \$(wc -l <'$T/snaps') -eq 2 ]"
done_testing
