#!/bin/sh
# The main job, end to end, on an embedded store under ./demo: installs the
# dependencies (as root), builds, starts lumbungd on a default store, backs up
# sample application data for three OPDs (a database dump, documents and an
# installer shared by all) for two nights, restores a snapshot and shows it
# equals its source, verifies every stored byte, and lists the snapshots.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
if [ "$(id -u)" -eq 0 ]; then
	sh scripts/install-deps.sh >/dev/null
fi
if [ ! -x tools/lumbung ] || [ ! -x daemon/lumbungd ]; then
	[ -x configure ] || ./autogen.sh >/dev/null 2>&1
	[ -f Makefile ] || ./configure >/dev/null
	make -j"$(nproc)" >/dev/null
fi
D=${LUMBUNG_DEMO_DIR:-$top/demo}
rm -rf "$D"
mkdir -p "$D/data"
chmod 755 "$D"
export LUMBUNG_SOCKET="$D/lumbungd.sock"
L="$top/tools/lumbung"

cat >"$D/lumbung.conf" <<CONF
; An embedded default store for the demo (see etc/lumbung.conf for a real one).
[store]
path = $D/store
capacity = 12.5T
[daemon]
socket = $D/lumbungd.sock
[tenant dinkes]
name = Dinas Kesehatan
quota = 600G
[tenant disdik]
name = Dinas Pendidikan
quota = 900G
[tenant disdukcapil]
name = Dinas Kependudukan dan Pencatatan Sipil
quota = 900G
[dataset dinkes/simpus]
source = $D/data/dinkes
[dataset disdik/dapodik]
source = $D/data/disdik
[dataset disdukcapil/siak]
source = $D/data/disdukcapil
CONF

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
make_opd disdukcapil 3

echo "== starting lumbungd on $D/store"
"$top/daemon/lumbungd" --config "$D/lumbung.conf" 2>"$D/lumbungd.log"
trap 'kill $(cat "$D/pid") 2>/dev/null' EXIT
pgrep -f "lumbungd --config $D/lumbung.conf" | head -n 1 >"$D/pid"

echo "== night 1: first backups"
$L backup --dataset dinkes/simpus "$D/data/dinkes" >/dev/null
$L backup --dataset disdik/dapodik "$D/data/disdik" >/dev/null
$L backup --dataset disdukcapil/siak "$D/data/disdukcapil" >/dev/null
echo "== night 2: 1% of one dump's rows change; unchanged files are not read"
python3 - "$D/data/dinkes/db/dump.sql" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
for i in range(1, len(lines) - 1, 100):
    lines[i] = lines[i].replace("Dumai", "Kota Dumai")
open(p, "w").write("\n".join(lines))
PY
$L backup --dataset dinkes/simpus "$D/data/dinkes" >/dev/null
$L backup --dataset disdik/dapodik "$D/data/disdik" >/dev/null
$L backup --dataset disdukcapil/siak "$D/data/disdukcapil" >/dev/null
echo "== what changed in dinkes/simpus"
$L diff "$($L snapshots --dataset dinkes/simpus --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" dinkes/simpus@latest
echo "== restore and compare"
$L restore dinkes/simpus@latest --target "$D/restore-dinkes"
diff -r "$D/data/dinkes" "$D/restore-dinkes" && echo "dinkes/simpus@latest: restored snapshot matches the source"
echo "== verify every stored byte"
$L check --read-data
echo "== snapshots"
$L snapshots
echo "== source and store size"
du -sh "$D/data" "$D/store"
