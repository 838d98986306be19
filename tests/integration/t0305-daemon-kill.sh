#!/bin/bash
# Crash consistency of lumbungd: rounds of one random operation (a backup
# of a changed tree, a restore, a forget, a prune, a GC) through the client,
# with lumbungd killed by SIGKILL at a random instant during it
# (LUMBUNG_DAEMON_KILLS rounds, 20 by default; `make soak` runs 1,000).
# After every kill lumbungd must start on the store as it is (no repair),
# `lumbung check` must be clean (charged usage equal to the recount included),
# and every snapshot committed before the kill must still be there, unless
# the interrupted operation was one that removes it, and restore bit-exact
# (the newest of the round's dataset and one at random each round, every
# one at the end).  A snapshot a killed backup committed without telling the
# client must be whole.  LUMBUNG_SEED picks the random sequence.
. "$(dirname "$0")/lib.sh"

kills=${LUMBUNG_DAEMON_KILLS:-20}
seed=${LUMBUNG_SEED:-$$}
RANDOM=$seed
diag "seed $seed, $kills kills"

write_config "[dataset dinkes/a]
keep_last = 2
[dataset disdik/c]
keep_last = 2"
datasets="dinkes/a dinkes/b disdik/c dukcapil/d"
mkdir -p "$T/ledger" "$T/src"
for ds in $datasets; do
	d="$T/src/${ds/\//-}"
	mkdir -p "$d/docs"
	head -c 3000000 /dev/urandom >"$d/docs/base.bin"
	seq 1 200000 >"$d/docs/numbers.txt"
done

# digest_of DIR: paths and content hashes of a tree.
digest_of() {
	(cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' -r sha256sum)
}

# mutate DIR: a new file, a changed one, sometimes a removed one.
mutate() {
	head -c $((RANDOM * 64 + 1000)) /dev/urandom >"$1/new-$RANDOM-$RANDOM.bin"
	seq "$RANDOM" $((RANDOM + 50000)) >"$1/docs/numbers.txt"
	if [ $((RANDOM % 3)) = 0 ]; then
		victim=$(find "$1" -name 'new-*' | head -n 1)
		[ -n "$victim" ] && rm -f "$victim"
	fi
	return 0
}

# listing: "ID TENANT/DATASET" per snapshot, from the daemon.
listing() {
	"$LUMBUNG" snapshots --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    print(s["id"], s["tenant"] + "/" + s["dataset"], s["time"])'
}

# commit ID DS DIGESTFILE: the ledger learns a committed snapshot.
commit() {
	mkdir -p "$T/ledger/$1" && echo "$2" >"$T/ledger/$1/ds" && cp "$3" "$T/ledger/$1/digest"
}

restores_ok() {
	id=$1
	rm -rf "$T/r"
	"$LUMBUNG" restore "$id" --target "$T/r" >/dev/null 2>"$T/r.err" || { echo "restore of $id failed: $(cat "$T/r.err")"; return 1; }
	digest_of "$T/r" | cmp -s - "$T/ledger/$id/digest" || { echo "snapshot $id ($(cat "$T/ledger/$id/ds")) does not restore bit-exact"; return 1; }
}

# may_vanish ID: the interrupted operation may have removed this snapshot.
may_vanish() {
	case $op in
	forget) [ "$1" = "$target" ] ;;
	prune) grep -qx "$1" "$T/prunable" ;;
	*) return 1 ;;
	esac
}

# after_kill: the checks of a round.
after_kill() {
	start_daemon || { echo "lumbungd does not start after the kill"; return 1; }
	"$LUMBUNG" check >"$T/check.out" 2>&1 || { cat "$T/check.out"; return 1; }
	listing >"$T/now" || return 1
	for dir in "$T"/ledger/*; do
		[ -d "$dir" ] || continue
		id=${dir##*/}
		if ! grep -q "^$id " "$T/now"; then
			may_vanish "$id" || { echo "committed snapshot $id ($(cat "$dir/ds")) lost after a $op"; return 1; }
			rm -rf "$dir"
		fi
	done
	# Snapshots the ledger does not know: a backup committed, then died
	# before its answer reached the client.  It must be the round's tree.
	while read -r id ds _; do
		[ -d "$T/ledger/$id" ] && continue
		[ "$op" = backup ] && [ "$ds" = "$bds" ] || { echo "unknown snapshot $id ($ds) after a $op"; return 1; }
		commit "$id" "$ds" "$T/round.digest"
		restores_ok "$id" || return 1
	done <"$T/now"
	newest=$(grep " $bds " "$T/now" | sort -k3,3n | tail -n 1 | cut -d' ' -f1)
	[ -z "$newest" ] || restores_ok "$newest" || return 1
	some=$(ls "$T/ledger" | shuf -n 1 --random-source=<(yes "$RANDOM"))
	[ -z "$some" ] || restores_ok "$some" || return 1
}

check "lumbungd starts" start_daemon
bad=0
done_ops=0
declare -A seen
for round in $(seq 1 "$kills"); do
	ops=(backup backup backup restore forget prune gc)
	op=${ops[$((RANDOM % ${#ops[@]}))]}
	bds=$(echo $datasets | tr ' ' '\n' | sed -n "$((RANDOM % 4 + 1))p")
	target=
	: >"$T/prunable"
	case $op in
	backup)
		src="$T/src/${bds/\//-}"
		mutate "$src"
		digest_of "$src" >"$T/round.digest"
		set -- "$LUMBUNG" backup --dataset "$bds" "$src"
		;;
	restore)
		target=$(ls "$T/ledger" | shuf -n 1 --random-source=<(yes "$RANDOM"))
		rm -rf "$T/rr"
		set -- "$LUMBUNG" restore "${target:-nothing}" --target "$T/rr"
		;;
	forget)
		target=$(ls "$T/ledger" | shuf -n 1 --random-source=<(yes "$RANDOM"))
		set -- "$LUMBUNG" forget "${target:-nothing}"
		;;
	prune)
		# keep_last = 2: all but the two newest of dinkes/a and disdik/c.
		listing | sort -k3,3n >"$T/before"
		for ds in dinkes/a disdik/c; do
			grep " $ds " "$T/before" | head -n -2 | cut -d' ' -f1 >>"$T/prunable"
		done
		set -- "$LUMBUNG" prune
		;;
	gc) set -- "$LUMBUNG" gc ;;
	esac
	seen[$op]=$((${seen[$op]:-0} + 1))
	"$@" >"$T/op.out" 2>"$T/op.err" &
	client=$!
	# A random instant: 0-500 ms into the operation.
	sleep "0.$(printf '%03d' $((RANDOM % 500)))"
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	wait "$client"
	rc=$?
	[ "$rc" = 0 ] && done_ops=$((done_ops + 1))
	[ -n "${LUMBUNG_SOAK_VERBOSE:-}" ] && diag "round $round: $op ${target:-$bds}: client exit $rc $(head -c 200 "$T/op.err")"
	if [ "$rc" = 0 ] && [ "$op" = backup ]; then
		commit "$(tail -n 1 "$T/op.out")" "$bds" "$T/round.digest"
	fi
	if [ "$rc" = 0 ] && [ "$op" = forget ] && [ -n "$target" ]; then
		rm -rf "$T/ledger/$target"
	fi
	if ! after_kill >"$T/round.out" 2>&1; then
		bad=$((bad + 1))
		diag "round $round ($op of ${target:-$bds}, client exit $rc):"
		sed 's/^/#   /' "$T/round.out" | head -8
		[ "$bad" -ge 3 ] && break
	fi
done
diag "operations: $(for k in "${!seen[@]}"; do printf '%s %s, ' "$k" "${seen[$k]}"; done); $done_ops of them finished before the kill"
check "after each of $kills kills: lumbungd starts, check is clean, committed snapshots restore" test "$bad" -eq 0

all_restore() {
	for dir in "$T"/ledger/*; do
		[ -d "$dir" ] || continue
		restores_ok "${dir##*/}" || return 1
	done
}
check "at the end every committed snapshot restores bit-exact ($(ls "$T/ledger" | wc -l) of them)" all_restore
check "and the store checks clean with its data read" "$LUMBUNG" check --read-data
stop_daemon
done_testing
