#!/bin/bash
# Faults under a running lumbungd, part 2: a pack the disk cannot read
# (EIO, through an LD_PRELOAD shim failing pread on that file), and packs
# deleted or truncated behind the daemon's back.  The restore that needs
# the pack fails with one line naming it, other restores work, check names
# the pack and exits 3, lumbungd keeps serving, and a backup of the same
# data never references the lost chunks: it stores them again (which heals
# the older snapshots), or, for a file reused unchanged from the parent,
# fails naming the missing pack.  (Damage found offline is in
# t0040-corruption.sh, salvage in t0260-salvage.sh.)
. "$(dirname "$0")/lib.sh"

one_line() { [ "$(wc -l <"$1")" -eq 1 ] || { cat "$1"; return 1; }; }
nsnaps() { "$LUMBUNG" snapshots --dataset "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
restores() { rm -rf "$T/r" && "$LUMBUNG" restore "$1" --target "$T/r" >/dev/null && diff -r "$2" "$T/r"; }
alive() { kill -0 "$DAEMON_PID" && "$LUMBUNG" version >/dev/null; }

write_config
check "lumbungd starts" start_daemon
mkdir -p "$T/victim" "$T/fine"
head -c 3000000 /dev/urandom >"$T/victim/v.bin"
head -c 2000000 /dev/urandom >"$T/fine/f.bin"
check "a backup of the victim data" sh -c "'$LUMBUNG' backup --dataset dinkes/victim '$T/victim' >/dev/null 2>&1"
vpack=$(ls -S "$T"/store/packs/*/* | head -n 1)
check "a backup of other data" sh -c "'$LUMBUNG' backup --dataset disdik/fine '$T/fine' >/dev/null 2>&1"
vname=${vpack#"$T/store/"}
diag "the victim's data pack is $vname"

# ---- 1. EIO reading a pack ---------------------------------------------------
CC=${CC:-cc}
if "$CC" -shared -fPIC -o "$T/eio.so" "$top_srcdir/tests/integration/eio-preload.c" -ldl 2>"$T/cc.err"; then
	stop_daemon
	# An ASan build wants its runtime first; the shim only wraps pread.
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD="$T/eio.so" \
		LB_TEST_EIO_PATH="$vname" start_daemon
	check "lumbungd runs with the pack unreadable" alive
	"$LUMBUNG" restore dinkes/victim@latest --target "$T/r1" >/dev/null 2>"$T/eio.err"
	check "restoring from the unreadable pack fails" test $? -ne 0
	check "with one line" one_line "$T/eio.err"
	check "naming the chunk, the pack and the I/O error" \
		grep -q "^lumbung: chunk [0-9a-f]* in pack $vname at offset [0-9]*: Input/output error$" "$T/eio.err"
	check "lumbungd keeps running" alive
	check "another snapshot restores bit-exact" restores disdik/fine@latest "$T/fine"
	for mode in "" --read-data; do
		"$LUMBUNG" check $mode >"$T/check.out" 2>&1
		check "check $mode exits 3" test $? -eq 3
		check "check $mode names the unreadable pack" grep -q "^pack: pack $vname: .*Input/output error" "$T/check.out"
		check "check $mode names the damaged file" grep -q "^file: snapshot .*(dinkes/victim .*): file v.bin is damaged" "$T/check.out"
		check "check $mode does not name the intact file" sh -c "! grep -q 'f.bin' '$T/check.out'"
	done
	check "lumbungd keeps running after the checks" alive
	stop_daemon
	check "without the fault lumbungd starts" start_daemon
	check "and the snapshot restores bit-exact again" restores dinkes/victim@latest "$T/victim"
else
	diag "no C compiler for the EIO shim: $(head -n 1 "$T/cc.err")"
fi

# ---- 2. A pack deleted while lumbungd runs ------------------------------------
# (A pack lumbungd has read lately stays readable through its cache of open
# descriptors after it is deleted; a fresh daemon has none open.)
stop_daemon
check "lumbungd restarts" start_daemon
rm "$vpack"
"$LUMBUNG" restore dinkes/victim@latest --target "$T/r2" >/dev/null 2>"$T/gone.err"
check "restoring a snapshot whose pack was deleted fails" test $? -ne 0
check "with one line naming the pack" sh -c "one_line() { [ \$(wc -l <\"\$1\") -eq 1 ]; }; one_line '$T/gone.err' && grep -q 'in pack $vname at offset [0-9]*: No such file or directory' '$T/gone.err'"
check "lumbungd keeps running" alive
check "an unaffected snapshot restores bit-exact" restores disdik/fine@latest "$T/fine"
"$LUMBUNG" check >"$T/check.out" 2>&1
check "check exits 3" test $? -eq 3
check "naming the missing pack" grep -q "^index: chunk .*: index names pack $vname, which is missing" "$T/check.out"
check "and the damaged file" grep -q "^file: snapshot .*(dinkes/victim .*): file v.bin is damaged" "$T/check.out"
"$LUMBUNG" check --read-data >"$T/check.out" 2>&1
check "check --read-data exits 3 too" test $? -eq 3

# A backup reusing the unchanged file from its parent has no data to store
# again: it must fail rather than commit a snapshot that cannot restore.
"$LUMBUNG" backup --dataset dinkes/victim "$T/victim" >/dev/null 2>"$T/reuse.err"
check "a backup reusing a file whose pack is gone fails" test $? -ne 0
check "with one line naming the file, the chunk and the missing pack" sh -c "one_line() { [ \$(wc -l <\"\$1\") -eq 1 ]; }; one_line '$T/reuse.err' && grep -q 'v.bin: chunk [0-9a-f]* is in pack $vname, which is missing from the store' '$T/reuse.err'"
check "and commits nothing" test "$(nsnaps dinkes/victim)" -eq 1
# A backup that sends the same data (another tenant: no parent to reuse
# from) must not deduplicate against the lost chunks.
check "a backup of the same data by another tenant succeeds" \
	sh -c "'$LUMBUNG' backup --dataset dukcapil/copy '$T/victim' >/dev/null 2>&1"
check "and its snapshot restores bit-exact (the chunks were stored again)" restores dukcapil/copy@latest "$T/victim"
check "which heals the older snapshot: it restores bit-exact" restores dinkes/victim@latest "$T/victim"
check "check is clean again" "$LUMBUNG" check
check "and the reusing backup works now" sh -c "'$LUMBUNG' backup --dataset dinkes/victim '$T/victim' >/dev/null 2>&1"
check "lumbungd keeps running" alive

# ---- 3. A pack truncated while lumbungd runs ----------------------------------
mkdir -p "$T/victim2"
head -c 3000000 /dev/urandom >"$T/victim2/w.bin"
check "a backup of new victim data" sh -c "'$LUMBUNG' backup --dataset disdik/victim2 '$T/victim2' >/dev/null 2>&1"
wpack=$(ls -t $(find "$T/store/packs" -type f -size +2000k) | head -n 1)
wname=${wpack#"$T/store/"}
truncate -s 100000 "$wpack"
"$LUMBUNG" restore disdik/victim2@latest --target "$T/r3" >/dev/null 2>"$T/trunc.err"
check "restoring from the truncated pack fails" test $? -ne 0
check "with one line naming the pack" sh -c "one_line() { [ \$(wc -l <\"\$1\") -eq 1 ]; }; one_line '$T/trunc.err' && grep -q 'pack $wname' '$T/trunc.err'"
check "lumbungd keeps running" alive
check "an unaffected snapshot restores bit-exact" restores disdik/fine@latest "$T/fine"
"$LUMBUNG" check >"$T/check.out" 2>&1
check "check exits 3" test $? -eq 3
check "naming the truncated pack" grep -q "^pack: pack $wname" "$T/check.out"
check "and the damaged file" grep -q "^file: snapshot .*(disdik/victim2 .*): file w.bin is damaged" "$T/check.out"
check "lumbungd keeps running after it all" alive
stop_daemon
done_testing
