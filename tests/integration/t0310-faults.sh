#!/bin/bash
# Faults under a running lumbungd, part 1: the disk fills up, and writes
# and fsyncs fail with EIO.  Each time the backup hit fails with one line
# naming what it was writing and in which store, nothing of it is
# committed, earlier snapshots restore bit-exact, check stays clean,
# lumbungd keeps serving other clients, and the next backup works without
# a restart.  (The reserve that stops backups before the disk is full is
# tested in t0170-quota.sh; faults on reading and lost packs in
# t0311-faults-read.sh.)
. "$(dirname "$0")/lib.sh"

# one_line FILE: the client said exactly one line.
one_line() { [ "$(wc -l <"$1")" -eq 1 ] || { cat "$1"; return 1; }; }
# nsnaps TENANT/DATASET: how many snapshots the dataset has.
nsnaps() { "$LUMBUNG" snapshots --dataset "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
restores() { # restores SPEC SRC: SPEC restores bit-exact as the tree SRC
	rm -rf "$T/r"
	"$LUMBUNG" restore "$1" --target "$T/r" >/dev/null && same_tree "$2" "$T/r"
}
alive() { kill -0 "$DAEMON_PID" && "$LUMBUNG" version >/dev/null; }

# ---- 1. Disk full: the store on a 24 MiB tmpfs --------------------------------
mkdir -p "$T/mnt"
if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=24M tmpfs "$T/mnt" 2>/dev/null; then
	skip_all "cannot mount a small tmpfs (not root?)"
fi
trap 'stop_daemon; umount "$T/mnt" 2>/dev/null' EXIT
write_config
sed -i "s|^path = .*|path = $T/mnt/store|" "$T/lumbung.conf"
check "lumbungd starts on the small filesystem" start_daemon
mkdir -p "$T/small" "$T/big" "$T/more" "$T/other"
head -c 2000000 /dev/urandom >"$T/small/a.bin"
head -c 40000000 /dev/urandom >"$T/big/b.bin"
head -c 1000000 /dev/urandom >"$T/more/c.bin"
head -c 1000000 /dev/urandom >"$T/other/d.bin"
check "a small backup fits" sh -c "'$LUMBUNG' backup --dataset dinkes/small '$T/small' >/dev/null 2>&1"
"$LUMBUNG" backup --dataset dinkes/big "$T/big" >/dev/null 2>"$T/full.err"
check "a backup bigger than the disk fails" test $? -ne 0
check "with one line" one_line "$T/full.err"
check "saying the disk is full, naming the object and the store" \
	grep -q "backup failed, nothing committed: No space left on device: cannot write [a-z]*/[0-9a-z/]* in store $T/mnt/store: No space left on device" "$T/full.err"
check "lumbungd is still running" alive
check "nothing of the failed backup was committed" test "$(nsnaps dinkes/big)" -eq 0
check "the earlier snapshot restores bit-exact" restores dinkes/small@latest "$T/small"
check "check finds the store clean" "$LUMBUNG" check
# The failed backup's chunks stay in packs (sealed, or the one still open)
# until a collection gives their space back.
check "gc gives back the space of the failed backup" sh -c "'$LUMBUNG' gc >/dev/null"
check "another tenant is served meanwhile" sh -c "'$LUMBUNG' backup --dataset disdik/other '$T/other' >/dev/null 2>&1"
check "and a small backup works again, without a restart" \
	sh -c "'$LUMBUNG' backup --dataset dinkes/more '$T/more' >/dev/null 2>&1"
check "its snapshot restores bit-exact" restores dinkes/more@latest "$T/more"

# Fill what is left, so that even a small backup does not fit; then free
# the space again.
dd if=/dev/zero of="$T/mnt/filler" bs=64k 2>/dev/null
check "the filesystem is full" sh -c "[ \$(df -k --output=avail '$T/mnt' | tail -n 1) -eq 0 ]"
head -c 1000000 /dev/urandom >"$T/more/e.bin"
"$LUMBUNG" backup --dataset dinkes/more "$T/more" >/dev/null 2>"$T/full2.err"
check "on a full disk a small backup fails" test $? -ne 0
check "with one line naming the store" sh -c "one_line() { [ \$(wc -l <\"\$1\") -eq 1 ]; }; one_line '$T/full2.err' && grep -q 'No space left on device: cannot write .* in store $T/mnt/store' '$T/full2.err'"
check "lumbungd is still running" alive
check "the dataset still has only its earlier snapshot" test "$(nsnaps dinkes/more)" -eq 1
check "which restores bit-exact" sh -c "rm -rf '$T/r' && '$LUMBUNG' restore dinkes/more@latest --target '$T/r' >/dev/null && cmp '$T/r/c.bin' '$T/more/c.bin' && test ! -e '$T/r/e.bin'"
rm -f "$T/mnt/filler"
check "once space is freed the backup works, without a restart" \
	sh -c "'$LUMBUNG' backup --dataset dinkes/more '$T/more' >/dev/null 2>&1"
check "and restores bit-exact" restores dinkes/more@latest "$T/more"
check "check is clean after it all" "$LUMBUNG" check
stop_daemon
umount "$T/mnt"
trap 'stop_daemon' EXIT

# ---- 2. EIO on a write, an fsync or a rename inside lumbungd -------------------
# LUMBUNG_FAULT=N:eio:KIND makes the daemon's Nth step of that kind fail
# once.  With a store that already holds a snapshot, the daemon's first
# steps are those of the next backup: its data pack, meta pack, index run
# and snapshot head (each written to tmp/, fsynced, renamed, its directory
# fsynced), then the job and audit records, after the commit.
# small_tree DIR N: new data for every backup, so that each writes packs.
small_tree() { mkdir -p "$1/sub" && head -c 300000 /dev/urandom >"$1/a.bin" && seq 1 "$((20000 + $2))" >"$1/sub/n.txt"; }
restores_fast() { rm -rf "$T/r" && "$LUMBUNG" restore "$1" --target "$T/r" >/dev/null && diff -r "$2" "$T/r"; }
write_config
small_tree "$T/base" 0
check "lumbungd starts" start_daemon
check "a first backup" sh -c "'$LUMBUNG' backup --dataset dinkes/base '$T/base' >/dev/null 2>&1"
stop_daemon
named_pack=0 named_index=0 named_head=0 committed=0 n=0 want=0
# Writes are numbered the same in every run (data pack, meta pack, index
# run, snapshot head, job record); fsyncs also count the directories a
# backup happens to create, so a few numbers spread over the commit.
faults="1:eio:write 3:eio:write 4:eio:write 5:eio:write 1:eio:fsync 2:eio:fsync 8:eio:fsync 10:eio:fsync 1:eio:rename"
for fault in $faults; do
	n=$((n + 1))
	small_tree "$T/src$n" "$n"
	LUMBUNG_FAULT=$fault start_daemon || { check "lumbungd starts with $fault" false; continue; }
	# Counted at start: a snapshot whose client heard of a failure must
	# not turn up after a restart either.
	check "$fault: at start the dataset has the snapshots committed so far ($want)" test "$(nsnaps disdik/app)" -eq "$want"
	"$LUMBUNG" backup --dataset disdik/app "$T/src$n" >/dev/null 2>"$T/eio.err"
	if [ $? -ne 0 ]; then
		check "$fault: the failed backup says one line" one_line "$T/eio.err"
		check "$fault: naming the I/O error, the object and the store" \
			grep -q "^lumbung: backup failed, nothing committed: Input/output error: cannot write [a-z]*/[0-9a-z/]* in store $T/store: Input/output error$" "$T/eio.err"
		check "$fault: nothing was committed" test "$(nsnaps disdik/app)" -eq "$want"
		grep -q "cannot write packs/" "$T/eio.err" && named_pack=$((named_pack + 1))
		grep -q "cannot write index/" "$T/eio.err" && named_index=$((named_index + 1))
		grep -q "cannot write snapshots/" "$T/eio.err" && named_head=$((named_head + 1))
	else
		# The fault hit a step after the commit (a record log): the
		# snapshot is whole, and lumbungd logged what it could not record.
		committed=$((committed + 1))
		want=$((want + 1))
		check "$fault: the backup committed whole" restores_fast disdik/app@latest "$T/src$n"
	fi
	check "$fault: lumbungd keeps running" alive
	check "$fault: check is clean" "$LUMBUNG" check
	check "$fault: another tenant's snapshot restores bit-exact" restores_fast dinkes/base@latest "$T/base"
	check "$fault: the next backup works, without a restart" \
		sh -c "'$LUMBUNG' backup --dataset disdik/app '$T/src$n' >/dev/null 2>&1"
	want=$((want + 1))
	check "$fault: and restores bit-exact" restores_fast disdik/app@latest "$T/src$n"
	stop_daemon
done
check "lumbungd starts without a fault" start_daemon
check "every snapshot committed is there after the last restart, and no other" test "$(nsnaps disdik/app)" -eq "$want"
check "check --read-data is clean" "$LUMBUNG" check --read-data
diag "failures named: $named_pack data or meta packs, $named_index index runs, $named_head snapshot heads; $committed faults hit steps after the commit"
check "faults on packs were seen" test $named_pack -ge 2
check "a fault on the index run was seen" test $named_index -ge 1
check "a fault on the snapshot head was seen" test $named_head -ge 1
check "faults after the commit were seen" test $committed -ge 1
stop_daemon
done_testing
