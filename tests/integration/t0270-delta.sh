#!/bin/bash
# Delta chunks through the daemon: nightly backups of a database dump with
# a few rows updated store a small fraction of what the first night cost,
# every night restores bit-exact, check --read-data is clean, the charges
# add up, and `delta = no` (taken on reload) makes the next night store
# whole chunks again.
. "$(dirname "$0")/lib.sh"

# dump NIGHT: a mysqldump-like file of 60000 rows (about 4.5 MB), 2% of the
# rows rewritten in place each night.
dump() {
	python3 - "$1" "$T/src/db/simpus.sql" <<'EOF'
import hashlib, sys
night, out = int(sys.argv[1]), sys.argv[2]
rows = []
for r in range(60000):
    ver = 0
    for k in range(1, night + 1):
        if hashlib.sha256(b"%d:%d" % (r, k)).digest()[0] < 6:
            ver = k
    h = hashlib.sha256(b"%d/%d" % (r, ver)).hexdigest()
    rows.append("INSERT INTO pasien VALUES (%d,'%s','puskesmas-%s',%d);\n" % (r, h[:12], h[12:16], int(h[16:24], 16) % 100000))
open(out, "w").write("".join(rows))
EOF
}

write_config
start_daemon || exit 1
mkdir -p "$T/src/db"

stored() { # stored JSON: new_bytes_stored of a backup's --json output
	python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['new_bytes_stored'])" "$1"
}

for n in 0 1 2 3; do
	dump $n
	cp "$T/src/db/simpus.sql" "$T/night-$n.sql"
	"$LUMBUNG" backup --dataset dinkes/simpus "$T/src" --json >"$T/b$n.json" 2>"$T/b$n.err" || {
		cat "$T/b$n.err"
		exit 1
	}
done
s0=$(stored "$T/b0.json") s1=$(stored "$T/b1.json") s2=$(stored "$T/b2.json") s3=$(stored "$T/b3.json")
diag "stored: night 0 $s0, nights 1-3 $s1 $s2 $s3 bytes"
check "night 0 stored the compressed dump" test "$s0" -gt 500000
# Night n is made against night n with its lowest base-4 digit cleared:
# nights 1, 2 and 3 all against night 0, so night 3 spans three nights.
check "each later night stored under a fifth of night 0 (deltas)" \
	test $((s1 * 5)) -lt "$s0" -a $((s2 * 5)) -lt "$s0" -a $((s3 * 5)) -lt "$s0"

"$LUMBUNG" restore dinkes/simpus@latest --target "$T/out3" >/dev/null 2>&1
check "the newest night restores bit-exact" cmp "$T/out3/db/simpus.sql" "$T/night-3.sql"
"$LUMBUNG" snapshots --json >"$T/snaps.json"
ok=1
for n in 0 1 2; do
	id=$(python3 -c "
import json, sys
s = [x for x in json.load(open(sys.argv[1])) if x['dataset'] == 'simpus']
print(s[int(sys.argv[2])]['id'])" "$T/snaps.json" $n)
	rm -rf "$T/o"
	"$LUMBUNG" restore "$id" --target "$T/o" >/dev/null 2>&1 && cmp -s "$T/o/db/simpus.sql" "$T/night-$n.sql" || ok=0
done
check "so do nights 0, 1 and 2" test $ok -eq 1
"$LUMBUNG" check --read-data >"$T/check.txt" 2>&1
check "check --read-data is clean, charges included" test $? -eq 0

# Turned off in the configuration (a reload suffices): whole chunks again.
sed -i 's/^\[store\]$/[store]\ndelta = no/' "$T/lumbung.conf"
kill -HUP "$DAEMON_PID"
i=0
while [ $i -lt 200 ] && ! grep -q "configuration reloaded" "$T/lumbungd.log"; do sleep 0.02; i=$((i + 1)); done
dump 4
cp "$T/src/db/simpus.sql" "$T/night-4.sql"
"$LUMBUNG" backup --dataset dinkes/simpus "$T/src" --json >"$T/b4.json" 2>/dev/null
s4=$(stored "$T/b4.json")
diag "stored with delta = no: $s4 bytes"
check "with delta = no the next night stores whole chunks (over a third of night 0)" test $((s4 * 3)) -gt "$s0"
"$LUMBUNG" restore dinkes/simpus@latest --target "$T/out4" >/dev/null 2>&1
check "and restores bit-exact" cmp "$T/out4/db/simpus.sql" "$T/night-4.sql"
"$LUMBUNG" check --read-data >/dev/null 2>&1
check "check --read-data is still clean" test $? -eq 0

done_testing
