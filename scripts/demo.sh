#!/bin/sh
# The main job on an embedded default store, end to end: builds Lumbung,
# creates a store under ./demo, backs up sample application data for three
# OPDs (tenants), changes some of it and backs up again (the second night
# stores only what changed), restores each tenant's latest snapshot, proves
# it equals the source, verifies every stored byte, and lists the snapshots.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x tests/lbstore ]; then
	[ -x configure ] || ./autogen.sh
	[ -f Makefile ] || ./configure
	make -j"$(nproc)"
fi
L=./tests/lbstore
D=${LUMBUNG_DEMO_DIR:-$(pwd)/demo}
rm -rf "$D"
mkdir -p "$D/data"

# Sample data: a database dump, documents and a shared installer per OPD.
make_opd() {
	d=$D/data/$1
	mkdir -p "$d/db" "$d/docs" "$d/installers"
	python3 - "$d/db/dump.sql" "$2" <<'PY'
import random, sys
r = random.Random(int(sys.argv[2]))
with open(sys.argv[1], "w") as f:
    f.write("CREATE TABLE warga (id INT, nik CHAR(16), nama TEXT, alamat TEXT);\n")
    for i in range(60000):
        f.write("INSERT INTO warga VALUES (%d,'%016d','Warga %d','Jl. Sudirman No. %d, Dumai');\n"
                % (i, r.randrange(10**15, 10**16), r.randrange(10**6), r.randrange(500)))
PY
	cp -r /usr/share/common-licenses "$d/docs/" 2>/dev/null || seq 1 20000 >"$d/docs/notes.txt"
	head -c 4000000 /dev/zero | tr '\0' 'x' >"$d/installers/shared-setup.bin"
}
make_opd dinkes 1
make_opd disdik 2
make_opd dukcapil 3

$L init "$D/store"
echo "== night 1: first backups"
for t in dinkes disdik dukcapil; do
	printf '%s: ' "$t"
	$L backup "$D/store" "$t" apps "$D/data/$t" 2>&1 >/dev/null
done
echo "== night 2: 1% of one dump's rows change"
python3 - "$D/data/dinkes/db/dump.sql" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
for i in range(1, len(lines) - 1, 100):
    lines[i] = lines[i].replace("Dumai", "Kota Dumai")
open(p, "w").write("\n".join(lines))
PY
for t in dinkes disdik dukcapil; do
	printf '%s: ' "$t"
	$L backup "$D/store" "$t" apps "$D/data/$t" 2>&1 >/dev/null
done
echo "== restore and compare"
for t in dinkes disdik dukcapil; do
	$L restore "$D/store" "$t/apps@latest" "$D/restore-$t"
	diff -r "$D/data/$t" "$D/restore-$t" && echo "$t: restored snapshot matches the source"
done
echo "== verify every stored byte"
$L check "$D/store" --read-data
echo "== snapshots"
$L snapshots "$D/store"
echo "== store size"
du -sh "$D/data" "$D/store"
