#!/bin/sh
# Engine round trip: a tree with every entry kind goes in and comes back
# equal; a second backup of the same tree stores almost nothing.
. "$(dirname "$0")/lib.sh"

make_tree "$T/src" 1
check "init store" "$LBSTORE" init "$T/store"
check "first backup" sh -c "'$LBSTORE' backup '$T/store' dinkes simpus '$T/src' >'$T/id1' 2>'$T/st1'"
check "restore" "$LBSTORE" restore "$T/store" "$(cat "$T/id1")" "$T/out1"
check "restored tree equals source (content, modes, mtimes, xattrs, links)" same_tree "$T/src" "$T/out1"
check "hardlinks restored as one inode" sh -c "[ \$(stat -c %i '$T/out1/hardlink.bin') = \$(stat -c %i '$T/out1/docs/random.bin') ]"
check "sparse file stays sparse" sh -c "[ \$(du -k '$T/out1/sparse.img' | cut -f1) -lt 1024 ]"
check "second backup of the same tree" sh -c "'$LBSTORE' backup '$T/store' dinkes simpus '$T/src' >'$T/id2' 2>'$T/st2'"
# Only the manifest's tree blobs may be new, and they are a few KiB.
check "no-change backup adds no data chunks" sh -c "
	new=\$(sed -n 's/.*new_stored \([0-9]*\).*/\1/p' '$T/st2')
	first=\$(sed -n 's/.*new_stored \([0-9]*\).*/\1/p' '$T/st1')
	[ \"\$new\" -lt 4096 ] && [ \"\$first\" -gt 100000 ]"
check "cat of one file" sh -c "'$LBSTORE' cat '$T/store' '$(cat "$T/id1")' docs/sub/numbers.txt | cmp - '$T/src/docs/sub/numbers.txt'"
check_fails "cat of a missing path fails" "$LBSTORE" cat "$T/store" "$(cat "$T/id1")" docs/nope
check "check --read-data is clean" "$LBSTORE" check "$T/store" --read-data
check "lookup by dataset@latest" sh -c "'$LBSTORE' ls '$T/store' 'dinkes/simpus@latest' | grep -q 'docs/sub/numbers.txt'"
# An insertion near the start of a large file changes only nearby chunks.
head -c 50000000 /dev/urandom >"$T/big"
mkdir -p "$T/b1" "$T/b2"
cp "$T/big" "$T/b1/big"
{ head -c 1000 "$T/big"; printf 'X'; tail -c +1001 "$T/big"; } >"$T/b2/big"
check "big file v1" sh -c "'$LBSTORE' backup '$T/store' dinkes big '$T/b1' >/dev/null 2>'$T/sb1'"
check "big file with one byte inserted near the start" sh -c "'$LBSTORE' backup '$T/store' dinkes big '$T/b2' >'$T/idb2' 2>'$T/sb2'"
check "insertion re-stores at most a few chunks (< 10% of the file)" sh -c "
	new=\$(sed -n 's/.*new_stored \([0-9]*\).*/\1/p' '$T/sb2'); [ \"\$new\" -lt 5000000 ]"
check "edited big file restores bit-exact" sh -c "'$LBSTORE' cat '$T/store' \$(cat '$T/idb2') big | cmp - '$T/b2/big'"
done_testing
