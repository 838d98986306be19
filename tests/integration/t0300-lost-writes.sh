#!/bin/bash
# Lost writes: a simulated power cut at every fsync of a backup, a forget, a
# prune and a GC, first in the engine (tests/lbstore), then in lumbungd.
# liblbcut.so (LD_PRELOAD) records what each fsync made durable and ends the
# process right before the Nth one; `lbcut image` rebuilds the store as a
# power cut at that instant would leave it: every write that no fsync
# followed is dropped, every name no directory fsync published is gone (see
# tests/crash/lbcut-preload.c).  After every cut the rebuilt store must open
# without a repair, check clean (usage included), restore every snapshot
# committed before the cut bit-exact, and hold an operation that reported
# success completely.  LUMBUNG_CUT_STRIDE=K tries every Kth cut only (the
# sanitizer run).
. "$(dirname "$0")/lib.sh"

LBCUT="$top_builddir/tests/lbcut"
SHIM="$top_builddir/tests/liblbcut.so"
stride=${LUMBUNG_CUT_STRIDE:-1}
[ -x "$LBCUT" ] && [ -f "$SHIM" ] || { echo "Bail out! $LBCUT or $SHIM not built (make check builds them)"; exit 1; }
# The sanitized build checks that its runtime loads first; the shim is a
# plain library that only wraps fsync.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

# cut_run N STORE CMD...: runs CMD with the shim recording STORE, cut before
# the Nth fsync (0: never), and rebuilds STORE as the cut left it.
cut_run() {
	n=$1
	store=$2
	shift 2
	rm -rf "$T/cutlog"
	"$LBCUT" init "$store" "$T/cutlog" || return 99
	LD_PRELOAD="$SHIM" LBCUT_ROOT="$store" LBCUT_LOG="$T/cutlog" LBCUT_AT="$n" "$@"
	rc=$?
	rm -rf "$store" && "$LBCUT" image "$T/cutlog" "$store" || return 99
	return $rc
}

# fsync_count CMD...: how many fsync calls CMD makes, start to end.
fsync_count() {
	LD_PRELOAD="$SHIM" LBCUT_ROOT=/nonexistent-root LBCUT_LOG="$T" LBCUT_REPORT=1 "$@" 2>&1 >/dev/null |
		sed -n 's/^lbcut-calls //p' | tail -n 1
}

restores_as() {
	rm -rf "$T/r"
	"$LBSTORE" restore "$1" "$2" "$T/r" >/dev/null && same_tree "$3" "$T/r"
}

# ---- the model itself -----------------------------------------------------------
# Three files written by python3 under the shim: one synced with its
# directory, one whose directory alone was synced, one never synced; and a
# file that existed before, rewritten without a sync.
mkdir -p "$T/m/sub" && echo old >"$T/m/before"
cut_run 0 "$T/m" python3 -c '
import os, sys
d = sys.argv[1]
def put(name, data, sync_file):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, data)
    if sync_file:
        os.fsync(fd)
    os.close(fd)
put("synced", b"kept", True)
put("name-only", b"lost", False)
dfd = os.open(d, os.O_RDONLY)
os.fsync(dfd)
put("never", b"lost", True)
put("before", b"new", False)
os.rename(os.path.join(d, "sub"), os.path.join(d, "moved"))
' "$T/m"
check "the model keeps a file synced with its directory" test "$(cat "$T/m/synced")" = kept
check "the model keeps a name whose data was never synced, empty" test -f "$T/m/name-only" -a ! -s "$T/m/name-only"
check "the model drops a file whose directory was not synced after it" test ! -e "$T/m/never"
check "the model undoes an unsynced rewrite of an old file" test "$(cat "$T/m/before")" = old
check "the model undoes an unsynced rename" test -d "$T/m/sub" -a ! -e "$T/m/moved"

# ---- the engine ---------------------------------------------------------------
make_tree "$T/src1" 1
make_tree "$T/src2" 2
"$LBSTORE" init "$T/base" >/dev/null || exit 99
id1=$("$LBSTORE" backup "$T/base" opd data "$T/src1" 2>/dev/null) || exit 99
cp -a "$T/base" "$T/count"
calls=$(fsync_count "$LBSTORE" backup "$T/count" opd data "$T/src2")
diag "an engine backup makes $calls fsync calls"
check "the engine backup syncs at all (the shim sees its calls)" test "${calls:-0}" -gt 3

# engine_state STORE: check clean, snapshot 1 whole, at most one more, and
# that one whole.
engine_state() {
	"$LBSTORE" check "$1" || return 1
	"$LBSTORE" snapshots "$1" >"$T/snaps" || return 1
	grep -q "^$id1 " "$T/snaps" || { echo "snapshot $id1 lost"; return 1; }
	restores_as "$1" "$id1" "$T/src1" || return 1
	other=$(grep -v "^$id1 " "$T/snaps" | cut -d' ' -f1)
	[ "$(echo "$other" | grep -c .)" -le 1 ] || { echo "unexpected snapshots"; cat "$T/snaps"; return 1; }
	[ -z "$other" ] || restores_as "$1" "$other" "$T/src2"
}

bad=0
n=1
while [ "$n" -le "$calls" ]; do
	rm -rf "$T/cur" && cp -a "$T/base" "$T/cur"
	cut_run "$n" "$T/cur" "$LBSTORE" backup "$T/cur" opd data "$T/src2" >/dev/null 2>&1
	engine_state "$T/cur" >"$T/state.out" 2>&1 || { bad=$((bad + 1)); diag "backup, cut $n:"; sed 's/^/#   /' "$T/state.out" | head -5; }
	n=$((n + stride))
done
check "a power cut at any of the backup's fsync calls leaves a consistent store" test "$bad" -eq 0
rm -rf "$T/cur" && cp -a "$T/base" "$T/cur"
cut_run 0 "$T/cur" "$LBSTORE" backup "$T/cur" opd data "$T/src2" >"$T/id2" 2>/dev/null
has_snapshot() { "$LBSTORE" snapshots "$1" | grep -q "^$2 "; }
check "a backup that returned is durable: a cut right after it keeps the snapshot" \
	has_snapshot "$T/cur" "$(cat "$T/id2")"
check "and the cut store restores it bit-exact" restores_as "$T/cur" "$(cat "$T/id2")" "$T/src2"

# forget + gc: the second snapshot goes, its chunks are given back.
cp -a "$T/cur" "$T/base2"
id2=$(cat "$T/id2")
for op in forget gc; do
	if [ "$op" = forget ]; then
		set -- "$LBSTORE" forget "$T/cur" "$id2"
	else
		"$LBSTORE" forget "$T/base2" "$id2" >/dev/null 2>&1 || exit 99
		set -- "$LBSTORE" gc "$T/cur"
	fi
	rm -rf "$T/count" && cp -a "$T/base2" "$T/count"
	calls=$(fsync_count "$1" "$2" "$T/count" "${@:4}")
	diag "an engine $op makes $calls fsync calls"
	bad=0
	n=1
	while [ "$n" -le "$((calls + 1))" ]; do
		rm -rf "$T/cur" && cp -a "$T/base2" "$T/cur"
		cut_run "$n" "$T/cur" "$1" "$2" "$T/cur" "${@:4}" >/dev/null 2>&1
		engine_state "$T/cur" >"$T/state.out" 2>&1 || { bad=$((bad + 1)); diag "$op, cut $n:"; sed 's/^/#   /' "$T/state.out" | head -5; }
		n=$((n + stride))
	done
	check "a power cut at any of $op's $calls fsync calls leaves a consistent store" test "$bad" -eq 0
done

# ---- lumbungd -----------------------------------------------------------------
# Three snapshots of known sources: dinkes/a@1 (src1), dinkes/b (src2), and
# after it dinkes/a@2 (src3); dinkes/a keeps its last snapshot only.  Each
# operation runs on a daemon whose store the shim records; the daemon's own
# fsync calls at start and at stop are cut at too.
write_config "[dataset dinkes/a]
keep_last = 1"
make_tree "$T/src3" 3
start_daemon || exit 99
"$LUMBUNG" backup --dataset dinkes/a "$T/src1" >"$T/a1" 2>/dev/null &&
	"$LUMBUNG" backup --dataset dinkes/b "$T/src2" >"$T/b1" 2>/dev/null || exit 99
stop_daemon
cp -a "$T/store" "$T/dbase"
a1=$(cat "$T/a1") b1=$(cat "$T/b1")

# start_recorded N [ENV...]: lumbungd on $T/store under the shim, cut at N.
start_recorded() {
	n=$1
	shift
	env LD_PRELOAD="$SHIM" LBCUT_ROOT="$T/store" LBCUT_LOG="$T/cutlog" LBCUT_AT="$n" "$@" \
		"$LUMBUNGD" --config "$T/lumbung.conf" --foreground >>"$T/lumbungd.log" 2>&1 &
	DAEMON_PID=$!
	i=0
	while [ $i -lt 200 ]; do
		"$LUMBUNG" version >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || return 1
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# daemon_op OP: the operation under test, through the client.
daemon_op() {
	case $1 in
	backup) "$LUMBUNG" backup --dataset dinkes/a "$T/src3" ;;
	forget) "$LUMBUNG" forget "$b1" ;;
	prune) "$LUMBUNG" prune ;;
	gc) "$LUMBUNG" gc ;;
	esac
}

# restores_daemon ID SRC: the snapshot restores through lumbungd bit-exact.
restores_daemon() {
	rm -rf "$T/r"
	"$LUMBUNG" restore "$1" --target "$T/r" >/dev/null && same_tree "$2" "$T/r"
}
present() { "$LUMBUNG" snapshots --json 2>/dev/null | grep -q "\"$1\""; }

# daemon_state OP OK: lumbungd starts on the rebuilt store without a repair,
# check is clean (charged usage included), every snapshot the operation does
# not remove restores, and what it touched is there whole or not at all (or
# done, if it reported success: OK = 1).
daemon_state() {
	op=$1 ok=$2
	start_daemon || return 1
	"$LUMBUNG" check || { stop_daemon; return 1; }
	for want in "a1 $a1 src1" "b1 $b1 src2" "a2 ${a2:--} src3"; do
		set -- $want
		[ "$2" != - ] || continue
		gone=0
		case "$op:$1" in forget:b1 | prune:a1 | gc:b1 | gc:a1) gone=1 ;; esac
		if present "$2"; then
			[ "$gone" = 1 ] && [ "$ok" = 1 ] && { echo "$1 ($2) still there after a $op that succeeded"; stop_daemon; return 1; }
			restores_daemon "$2" "$T/$3" || { echo "$1 ($2) does not restore"; stop_daemon; return 1; }
		elif [ "$gone" = 0 ]; then
			echo "$1 ($2) lost"
			stop_daemon
			return 1
		fi
	done
	if [ "$op" = backup ]; then
		"$LUMBUNG" snapshots --dataset dinkes/a >"$T/snaps" 2>&1
		n_a=$(grep -c " dinkes/a " "$T/snaps")
		want=1
		[ "$ok" = 1 ] && want=2
		[ "$n_a" -ge "$want" ] && [ "$n_a" -le 2 ] || { echo "dinkes/a has $n_a snapshots (backup ok=$ok)"; cat "$T/snaps"; stop_daemon; return 1; }
		restores_daemon dinkes/a@latest "$T/src$([ "$n_a" = 2 ] && echo 3 || echo 1)" || { stop_daemon; return 1; }
	fi
	stop_daemon
}

a2=
for op in backup forget prune gc; do
	# The state each operation starts from: backup and forget from dbase,
	# prune after dinkes/a's second snapshot, gc after the prune and forget.
	case $op in
	prune)
		rm -rf "$T/store" && cp -a "$T/dbase" "$T/store"
		start_daemon && a2=$("$LUMBUNG" backup --dataset dinkes/a "$T/src3" 2>/dev/null) || exit 99
		stop_daemon
		rm -rf "$T/dbase" && cp -a "$T/store" "$T/dbase"
		;;
	gc)
		rm -rf "$T/store" && cp -a "$T/dbase" "$T/store"
		start_daemon && "$LUMBUNG" prune >/dev/null 2>&1 && "$LUMBUNG" forget "$b1" >/dev/null 2>&1 || exit 99
		stop_daemon
		rm -rf "$T/dbase" && cp -a "$T/store" "$T/dbase"
		;;
	esac
	rm -rf "$T/store" && cp -a "$T/dbase" "$T/store"
	rm -rf "$T/cutlog" && mkdir "$T/cutlog"
	: >"$T/lumbungd.log"
	start_recorded 0 LBCUT_REPORT=1 LBCUT_ROOT=/nonexistent-root || exit 99
	daemon_op "$op" >/dev/null 2>&1 || exit 99
	stop_daemon
	calls=$(sed -n 's/^lbcut-calls //p' "$T/lumbungd.log" | tail -n 1)
	diag "lumbungd: start, $op, stop make ${calls:-?} fsync calls"
	check "the daemon's $op syncs (the shim sees lumbungd's calls)" test "${calls:-0}" -gt 0
	bad=0
	n=1
	while [ "$n" -le "$((${calls:-0} + 1))" ]; do
		rm -rf "$T/store" && cp -a "$T/dbase" "$T/store"
		rm -rf "$T/cutlog"
		"$LBCUT" init "$T/store" "$T/cutlog" || exit 99
		ok=0
		if start_recorded "$n"; then
			daemon_op "$op" >/dev/null 2>&1 && ok=1
		fi
		# A daemon still running is stopped: its stop is part of the run.
		stop_daemon
		rm -rf "$T/store" && "$LBCUT" image "$T/cutlog" "$T/store" || exit 99
		daemon_state "$op" "$ok" >"$T/state.out" 2>&1 ||
			{ bad=$((bad + 1)); diag "lumbungd $op, cut $n (reported ok=$ok):"; sed 's/^/#   /' "$T/state.out" | head -5; }
		n=$((n + stride))
	done
	check "a power cut at any of lumbungd's fsync calls around a $op leaves a consistent store" test "$bad" -eq 0
done

done_testing
