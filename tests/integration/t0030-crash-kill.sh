#!/bin/bash
# Crash consistency: backups are killed with SIGKILL at random instants
# (LUMBUNG_KILLS times, 100 by default).  After every kill the store must
# open, check clean, and restore the newest committed snapshot and a random
# earlier one bit-exact; at the end every committed snapshot restores
# bit-exact.  Each backup writes to its own dataset so that a snapshot names
# the source it must equal.
. "$(dirname "$0")/lib.sh"

kills=${LUMBUNG_KILLS:-100}
RANDOM=${LUMBUNG_SEED:-4242}
diag "seed ${LUMBUNG_SEED:-4242}, $kills kills"

# A shared base (deduplicated across every snapshot) and one unique file per
# round; the base is large enough that a backup takes a while.
mkdir -p "$T/base"
head -c 6000000 /dev/urandom >"$T/base/shared.bin"
seq 1 400000 >"$T/base/numbers.txt"
"$LBSTORE" init "$T/store" >/dev/null || exit 99

# digest_of DIR: content digest of a tree (paths and file hashes).
digest_of() {
	(cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum)
}

restore_equals() {
	id=$1
	ds=$2
	rm -rf "$T/r"
	"$LBSTORE" restore "$T/store" "$id" "$T/r" >/dev/null || return 1
	digest_of "$T/r" >"$T/r.digest"
	cmp -s "$T/r.digest" "$T/src-$ds.digest" || { echo "snapshot $id ($ds) differs"; return 1; }
}

after_kill() {
	"$LBSTORE" check "$T/store" >"$T/check.out" 2>&1 || { cat "$T/check.out"; return 1; }
	"$LBSTORE" snapshots "$T/store" >"$T/snaps" || return 1
	[ -s "$T/snaps" ] || return 0
	newest=$(tail -n 1 "$T/snaps")
	restore_equals "${newest%% *}" "$(echo "$newest" | sed 's/^[^ ]* opd\/\([^ ]*\) .*/\1/')" || return 1
	pick=$(shuf -n 1 "$T/snaps" --random-source=<(yes "$RANDOM"))
	restore_equals "${pick%% *}" "$(echo "$pick" | sed 's/^[^ ]* opd\/\([^ ]*\) .*/\1/')"
}

# How long one backup takes here, in ms, so that kills land inside it.
mkdir -p "$T/probe"
head -c 4000000 /dev/urandom >"$T/probe/p.bin"
cp "$T/base"/* "$T/probe/"
"$LBSTORE" init "$T/probe-store" >/dev/null
t0=$(date +%s%N)
"$LBSTORE" backup "$T/probe-store" opd probe "$T/probe" >/dev/null 2>&1
dur=$((($(date +%s%N) - t0) / 1000000 + 1))
diag "a backup takes about $dur ms; kills land in [0, $((dur * 13 / 10))] ms"

killed=0
committed=0
round=0
while [ "$killed" -lt "$kills" ]; do
	round=$((round + 1))
	ds="d$round"
	mkdir -p "$T/src"
	rm -f "$T/src"/unique-*
	head -c $((2000000 + RANDOM * 128)) /dev/urandom >"$T/src/unique-$round.bin"
	cp "$T/base/shared.bin" "$T/base/numbers.txt" "$T/src/" 2>/dev/null || true
	# Every third round changes a slice of the big file, so that backups
	# store new data and spend time in every phase of the commit.
	if [ $((round % 3)) -eq 0 ]; then
		head -c 3000000 /dev/urandom | dd of="$T/src/shared.bin" bs=1M seek=$((RANDOM % 4)) conv=notrunc 2>/dev/null
	fi
	digest_of "$T/src" >"$T/src-$ds.digest"
	"$LBSTORE" backup "$T/store" opd "$ds" "$T/src" >/dev/null 2>&1 &
	pid=$!
	# A random instant within a typical backup's lifetime.
	ms=$((RANDOM % (dur * 13 / 10 + 1)))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	if kill -9 "$pid" 2>/dev/null; then
		killed=$((killed + 1))
	else
		committed=$((committed + 1))
	fi
	wait "$pid" 2>/dev/null
	if ! after_kill >"$T/round.out" 2>&1; then
		check "round $round (kill $killed): store consistent after kill" false
		cat "$T/round.out" | sed 's/^/# /'
		break
	fi
done
check "survived $killed kills over $round backups" test "$killed" -ge "$kills"
diag "$committed backups finished before their kill"
"$LBSTORE" snapshots "$T/store" >"$T/snaps"
check "some backups committed" test -s "$T/snaps"
all_ok() {
	while read -r id name rest; do
		restore_equals "$id" "${name#opd/}" || return 1
	done <"$T/snaps"
}
check "every committed snapshot restores bit-exact" all_ok
check "check --read-data is clean at the end" "$LBSTORE" check "$T/store" --read-data
done_testing
