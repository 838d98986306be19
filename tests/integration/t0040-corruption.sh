#!/bin/bash
# Damage found, named and contained: flipped bytes in packs, index runs,
# manifests and heads, truncated and deleted packs, a newer format, a
# directory that is not a store, and a store already in use.  Each gives a
# clear error; nothing is overwritten by the failed attempt.
. "$(dirname "$0")/lib.sh"

flip() { # flip FILE OFFSET: inverts one byte
	python3 -c "import sys
f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0xff]))" "$1" "$2"
}
store_digest() { (cd "$1" && find . -type f ! -name lock -printf '%P %s\n' | LC_ALL=C sort && find . -type f ! -name lock -exec cat {} + | sha256sum); }

mkdir -p "$T/src/a" "$T/src/b"
head -c 3000000 /dev/urandom >"$T/src/a/victim.bin"
seq 1 50000 >"$T/src/b/fine.txt"
"$LBSTORE" init "$T/s0" >/dev/null || exit 99
# The victim's data goes in first, alone, so that it alone fills the data pack.
mkdir -p "$T/only"
cp "$T/src/a/victim.bin" "$T/only/"
"$LBSTORE" backup "$T/s0" opd first "$T/only" >/dev/null 2>&1 || exit 99
id=$("$LBSTORE" backup "$T/s0" opd data "$T/src" 2>/dev/null) || exit 99
datapack=$(ls -S "$T"/s0/packs/*/* | head -n 1)
fresh() { rm -rf "$T/s"; cp -a "$T/s0" "$T/s"; echo "$T/s/${datapack#$T/s0/}"; }

# 1. A flipped byte in a chunk's payload.
pack=$(fresh)
flip "$pack" 5000
check "structure check does not read payloads" "$LBSTORE" check "$T/s"
"$LBSTORE" check "$T/s" --read-data >"$T/out" 2>&1
check "check --read-data exits 3 on damage" test $? -eq 3
check "the damaged chunk is named with pack and offset" grep -q "^chunk: chunk .* in pack packs/.* at offset [0-9]*: checksum mismatch" "$T/out"
check "the damaged file is named in every snapshot using it" sh -c "[ \$(grep -c '^file: snapshot .*: file .*victim.bin is damaged' '$T/out') -eq 2 ]"
check "an intact file is not named" sh -c "! grep -q fine.txt '$T/out'"
check_fails "reading the damaged file fails" "$LBSTORE" cat "$T/s" "$id" a/victim.bin
"$LBSTORE" cat "$T/s" "$id" a/victim.bin 2>"$T/err" >/dev/null
check "and says which chunk, pack and offset" grep -q "chunk [0-9a-f]* in pack packs/[0-9a-f/]* at offset [0-9]*: checksum mismatch" "$T/err"
check "intact files still read" sh -c "'$LBSTORE' cat '$T/s' $id b/fine.txt | cmp - '$T/src/b/fine.txt'"

# 2. A truncated pack.
pack=$(fresh)
truncate -s 100000 "$pack"
"$LBSTORE" check "$T/s" >"$T/out" 2>&1
check "check exits 3 on a truncated pack" test $? -eq 3
check "the truncated pack is named" grep -q "^pack: pack packs/.*\(not sealed\|trailer\)" "$T/out"
check "the files in it are named" grep -q "^file: .*victim.bin is damaged" "$T/out"

# 3. A pack deleted behind the store's back.
pack=$(fresh)
rm "$pack"
"$LBSTORE" check "$T/s" >"$T/out" 2>&1
check "check exits 3 on a missing pack" test $? -eq 3
check "the missing pack is named" grep -q "^index: chunk .*index names pack packs/.*, which is missing" "$T/out"
check "the files that lost data are named" grep -q "^file: .*victim.bin is damaged" "$T/out"

# 4. A damaged index run: opening refuses, nothing changes; rebuild repairs.
fresh >/dev/null
run=$(ls "$T"/s/index/* | head -n 1)
flip "$run" 40
before=$(store_digest "$T/s")
"$LBSTORE" snapshots "$T/s" >"$T/out" 2>&1
check "opening with a damaged index fails" test $? -ne 0
check "with a message naming the run and the repair" grep -q "index run index/[0-9a-f]* is damaged.*lumbung repair index" "$T/out"
check "the failed open changed nothing" test "$before" = "$(store_digest "$T/s")"
check "rebuild-index repairs it" "$LBSTORE" rebuild-index "$T/s"
check "after the rebuild check --read-data is clean" "$LBSTORE" check "$T/s" --read-data
check "and the snapshot restores" sh -c "'$LBSTORE' restore '$T/s' $id '$T/r' && diff -r '$T/src' '$T/r'"
rm -rf "$T/r"

# 5. A damaged snapshot head.
fresh >/dev/null
head_obj=$(ls "$T"/s/snapshots/opd/"$id"*)
flip "$head_obj" 30
"$LBSTORE" check "$T/s" >"$T/out" 2>&1
check "check exits 3 on a damaged head" test $? -eq 3
check "the damaged head is named" grep -q "^snapshot: snapshot head snapshots/opd/$id is damaged" "$T/out"
check_fails "a damaged snapshot is not offered for restore" "$LBSTORE" ls "$T/s" "$id"

# 6. A damaged manifest blob (the small meta pack).
fresh >/dev/null
# Every meta pack (kind 2 in the header) gets a flipped byte in its first blob.
for p in "$T"/s/packs/*/*; do
	[ "$(head -c 16 "$p" | tail -c 4 | od -An -tu4 | tr -d ' ')" = 2 ] && flip "$p" 200
done
"$LBSTORE" check "$T/s" --read-data >"$T/out" 2>&1
check "check --read-data exits 3 on a damaged manifest" test $? -eq 3
check "the snapshot whose manifest is damaged is named" grep -q "^snapshot: snapshot .*manifest" "$T/out"
"$LBSTORE" ls "$T/s" "$id" >/dev/null 2>"$T/err"
check "listing it fails with a chunk-level message" grep -q "chunk .* in pack packs/.*: checksum mismatch" "$T/err"

# 7. A newer format, and a directory that is not a store.
fresh >/dev/null
sed -i 's/^format = 1$/format = 7/' "$T/s/config"
"$LBSTORE" snapshots "$T/s" >/dev/null 2>"$T/err"
check "a newer format is refused" grep -q "has format 7, newer than this lumbung supports" "$T/err"
mkdir -p "$T/not-a-store"
"$LBSTORE" snapshots "$T/not-a-store" >/dev/null 2>"$T/err"
check "a plain directory is refused" grep -q "is not a lumbung store" "$T/err"
check "and left empty" test -z "$(ls -A "$T/not-a-store")"

# 8. A store in use.
fresh >/dev/null
echo 4321 >"$T/s/lock"
mkfifo "$T/locked"
flock "$T/s/lock" sh -c "echo held >'$T/locked'; exec sleep 30" >/dev/null 2>&1 &
holder=$!
read -r _ <"$T/locked"
"$LBSTORE" snapshots "$T/s" >/dev/null 2>"$T/err"
check "a second opener is told who holds the store" grep -q "in use by pid 4321" "$T/err"
pkill -P "$holder" sleep 2>/dev/null
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
done_testing
