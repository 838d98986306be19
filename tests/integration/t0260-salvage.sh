#!/bin/bash
# lumbung restore --salvage: with a byte flipped in a data pack, with a data
# pack deleted, and with a tree blob damaged, a plain restore fails while a
# salvage restores every intact file bit-exact, writes each damaged file at
# its full size with zeros exactly where data was lost and the rest intact,
# lists the damaged files (the same ones check names) and exits 3; the
# entries of an unreadable tree blob are reported lost and the rest restored.
. "$(dirname "$0")/lib.sh"

write_config
start_daemon || exit 1
mkdir -p "$T/src/docs" "$T/src/many"
head -c 3000000 /dev/urandom >"$T/src/a.bin"
head -c 2500000 /dev/urandom >"$T/src/b.bin"
head -c 20000000 /dev/urandom >"$T/src/big.bin" # two data packs in all
head -c 2000000 /dev/urandom >"$T/src/docs/c.bin"
seq 1 200000 >"$T/src/docs/numbers.txt"
# Enough small files that the tree is surely cut into several blobs: past
# 16 KiB a record ends a blob with odds 1 in 256 (lib/manifest.c), drawn
# from its hash, which depends on the files' times.  With 1500 files a run
# of CI drew no cut at all (odds about 1 in 200); 3000 give 11 blobs here,
# and a single blob with odds of about 1 in 50,000.
NFILES=3000
for i in $(seq 1 $NFILES); do echo "file $i" >"$T/src/many/f$i.txt"; done
"$LUMBUNG" backup --dataset dinkes/app "$T/src" >/dev/null 2>&1 || exit 99
stop_daemon

# packs KIND: the pack files of one kind (1 data, 2 meta), biggest first.
packs() {
	python3 - "$T/store/packs" "$1" <<'EOF'
import os, struct, sys
root, kind = sys.argv[1], int(sys.argv[2])
found = []
for d, _, fs in os.walk(root):
    for f in fs:
        p = os.path.join(d, f)
        with open(p, "rb") as h:
            hdr = h.read(32)
        if struct.unpack_from("<I", hdr, 12)[0] == kind:
            found.append((os.path.getsize(p), p))
for _, p in sorted(found, reverse=True):
    print(p)
EOF
}
flip() { python3 -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x01]))" "$@"; }

# verify_salvage DIR ERR: every file of DIR equals the source, or is listed
# as damaged in ERR with zeros exactly in the listed ranges and source bytes
# elsewhere; prints "intact damaged missing" counts.
verify_salvage() {
	python3 - "$T/src" "$1" "$2" <<'EOF'
import os, re, sys
src, out, err = sys.argv[1:4]
ranges = {}
for line in open(err):
    m = re.match(r"lumbung: damaged: (.*): bytes (\d+)-(\d+) are zeros", line)
    if m:
        ranges.setdefault(m.group(1), []).append((int(m.group(2)), int(m.group(3)) + 1))
intact = damaged = missing = 0
for d, _, fs in os.walk(src):
    for f in fs:
        rel = os.path.relpath(os.path.join(d, f), src)
        want = open(os.path.join(src, rel), "rb").read()
        p = os.path.join(out, rel)
        if not os.path.exists(p):
            missing += 1
            assert rel not in ranges, rel
            continue
        got = open(p, "rb").read()
        assert len(got) == len(want), (rel, len(got), len(want))
        if rel not in ranges:
            assert got == want, rel + " differs but is not listed as damaged"
            intact += 1
            continue
        damaged += 1
        mask = bytearray(len(want))
        for a, b in ranges[rel]:
            assert got[a:b] == bytes(b - a), rel + ": a lost range is not zeros"
            mask[a:b] = b"\x01" * (b - a)
        assert all(g == w for g, w, m in zip(got, want, mask) if not m), rel + ": bytes outside the lost ranges differ"
print(intact, damaged, missing)
EOF
}

# ---- a flipped byte in a data pack --------------------------------------------------
cp -a "$T/store" "$T/store.orig"
data_pack=$(packs 1 | head -n 1)
flip "$data_pack" 1500000
start_daemon || exit 1
"$LUMBUNG" check --read-data >"$T/check.out" 2>&1
check "check finds the flipped byte" test $? -eq 3
"$LUMBUNG" restore dinkes/app@latest --target "$T/plain" >/dev/null 2>&1
check "a plain restore fails on it" test $? -ne 0
"$LUMBUNG" restore dinkes/app@latest --salvage --target "$T/r1" >/dev/null 2>"$T/err1"
check "restore --salvage exits 3 (restored, with damage)" test $? -eq 3
counts=$(verify_salvage "$T/r1" "$T/err1")
diag "intact damaged missing: $counts"
set -- $counts
check "intact files are bit-exact, damaged ones zeros exactly where lost" test "$1" -gt $NFILES -a "$2" -ge 1 -a "$3" -eq 0
damaged_salvage=$(sed -n 's/^lumbung: damaged: \(.*\): bytes.*/\1/p' "$T/err1" | sort -u)
damaged_check=$(sed -n 's/.*: file \(.*\) is damaged$/\1/p' "$T/check.out" | sort -u)
check "salvage lists the same damaged files as check ($damaged_check)" test -n "$damaged_check" -a "$damaged_salvage" = "$damaged_check"
check "and a summary line" grep -q "^lumbung: salvage: .* of them damaged" "$T/err1"
stop_daemon

# ---- a deleted data pack --------------------------------------------------------------
rm -rf "$T/store" && cp -a "$T/store.orig" "$T/store"
rm -f "$(packs 1 | head -n 1)" # the first, full one: a.bin, b.bin and part of big.bin
start_daemon || exit 1
"$LUMBUNG" check >"$T/check2.out" 2>&1
check "check finds the deleted pack" sh -c "test $? -eq 3 && grep -q 'which is missing' '$T/check2.out'"
"$LUMBUNG" restore dinkes/app@latest --salvage --target "$T/r2" >/dev/null 2>"$T/err2"
check "a deleted pack: restore --salvage exits 3" test $? -eq 3
set -- $(verify_salvage "$T/r2" "$T/err2")
check "everything else restores, the damaged files are listed and zero-filled" test "$1" -gt 1000 -a "$2" -ge 1 -a "$3" -eq 0
stop_daemon

# ---- a damaged tree blob ------------------------------------------------------------------
rm -rf "$T/store" && cp -a "$T/store.orig" "$T/store"
meta_pack=$(packs 2 | head -n 1)
# A byte in the payload of the pack's last tree blob, found through the
# footer (FORMAT.md 7.3-7.4): the first blob holds the top directories,
# and where the tree is cut depends on the files' times, so a byte picked
# by position alone sometimes hit it and took every entry along.
last_blob=$(python3 - "$meta_pack" <<'EOF2'
import struct, sys
data = open(sys.argv[1], "rb").read()
foff, nb = struct.unpack_from("<QI", data, len(data) - 32)
off, stored = struct.unpack_from("<II", data, foff + (nb - 1) * 48 + 32)
nbases = struct.unpack_from("<H", data, foff + (nb - 1) * 48 + 46)[0]
print(nb, off + 56 + 32 * nbases + stored // 2)
EOF2
)
set -- $last_blob
diag "the meta pack holds $1 tree blobs"
check "the tree is cut into more than one blob" test "$1" -gt 1
flip "$meta_pack" "$2"
start_daemon || exit 1
"$LUMBUNG" restore dinkes/app@latest --target "$T/plain3" >/dev/null 2>&1
check "a damaged tree blob: a plain restore fails" test $? -ne 0
"$LUMBUNG" restore dinkes/app@latest --salvage --target "$T/r3" >/dev/null 2>"$T/err3"
check "restore --salvage exits 3" test $? -eq 3
check "and says which tree blob's entries are lost" grep -q "^lumbung: lost: tree blob [0-9]*: .*the entries it listed are lost" "$T/err3"
set -- $(verify_salvage "$T/r3" "$T/err3")
check "the entries of the other tree blobs restore bit-exact ($1 intact, $3 lost)" test "$1" -gt 0 -a "$2" -eq 0 -a "$3" -gt 0 -a "$3" -lt $NFILES
"$LUMBUNG" audit --json | grep -q '(salvage)'
check "the audit trail marks the restore as a salvage" test $? -eq 0

done_testing
