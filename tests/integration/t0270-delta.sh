#!/bin/bash
# Delta chunks through the daemon: nightly backups of a database dump with
# a few rows updated store a small fraction of what the first night cost,
# every night restores bit-exact, check --read-data is clean, the charges
# add up, and `delta = no` (taken on reload) makes the next night store
# whole chunks again.  Then crash consistency with deltas: nightly backups
# of a changing dump killed with SIGKILL at random instants (the engine,
# LUMBUNG_DELTA_KILLS times, 20 by default), each followed by check and a
# bit-exact restore of every night committed so far.
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
# Night n is made against night n with its lowest base-8 digit cleared:
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
reload_and_wait "configuration reloaded"
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

# compression is taken on reload too, for chunks stored afterwards: whole
# chunks at zstd:19 against the default zstd:1 of night 4.
sed -i 's/^\[store\]$/[store]\ncompression = zstd:19/' "$T/lumbung.conf"
check "the daemon took the reload" reload_and_wait "configuration reloaded"
dump 5
cp "$T/src/db/simpus.sql" "$T/night-5.sql"
"$LUMBUNG" backup --dataset dinkes/simpus "$T/src" --json >"$T/b5.json" 2>/dev/null
s5=$(stored "$T/b5.json")
diag "stored at zstd:19: $s5 bytes (night 4 at the default: $s4)"
check "after a reload with compression = zstd:19 whole chunks are stored over 5% smaller" \
	test $((s5 * 100)) -lt $((s4 * 95))
"$LUMBUNG" restore dinkes/simpus@latest --target "$T/out5" >/dev/null 2>&1
check "and restore bit-exact" cmp "$T/out5/db/simpus.sql" "$T/night-5.sql"
stop_daemon

# ---- kills in the middle of delta backups ---------------------------------------
kills=${LUMBUNG_DELTA_KILLS:-20}
RANDOM=${LUMBUNG_SEED:-6161}
S="$T/kstore"
"$LBSTORE" init "$S" >/dev/null || exit 99
mkdir -p "$T/k"
python3 - "$T/k/db.sql" <<'EOF2'
import random, sys
r = random.Random(1)
open(sys.argv[1], "w").write("".join("INSERT INTO surat VALUES (%d,'%016x','%s');\n" % (i, r.getrandbits(64), "x" * r.randrange(20, 80)) for i in range(120000)))
EOF2
# mutate ROUND: rewrites 2% of the rows in place, as a night does.
mutate() {
	python3 - "$T/k/db.sql" "$1" <<'EOF2'
import random, sys
path, rnd = sys.argv[1], int(sys.argv[2])
r = random.Random(rnd)
rows = open(path).read().split("\n")
for i in r.sample(range(len(rows) - 1), (len(rows) - 1) // 50):
    rows[i] = "INSERT INTO surat VALUES (%d,'%016x','%s');" % (i, r.getrandbits(64), "y" * r.randrange(20, 80))
open(path, "w").write("\n".join(rows))
EOF2
}
"$LBSTORE" backup "$S" opd db "$T/k" >/dev/null 2>&1 || exit 99
sha256sum <"$T/k/db.sql" >"$T/kd.1"
mutate 0
t0=$(date +%s%N)
"$LBSTORE" backup "$S" opd db "$T/k" >/dev/null 2>&1 || exit 99
dur=$((($(date +%s%N) - t0) / 1000000 + 1))
sha256sum <"$T/k/db.sql" >"$T/kd.2"
diag "a delta backup takes about $dur ms; kills land in [0, $((dur * 13 / 10))] ms"

# nights_restore [all]: the newest committed night and a random earlier one
# (or all of them) restore bit-exact: snapshot i, oldest first, is $T/kd.i.
nights_restore() {
	"$LBSTORE" snapshots "$S" >"$T/ksnaps" || return 1
	n=$(wc -l <"$T/ksnaps")
	pick=$((RANDOM % n + 1))
	i=0
	while read -r id rest; do
		i=$((i + 1))
		[ "${1:-}" = all ] || [ $i -eq "$n" ] || [ $i -eq $pick ] || continue
		rm -rf "$T/kr"
		"$LBSTORE" restore "$S" "$id" "$T/kr" >/dev/null 2>&1 || { echo "snapshot $i: restore failed"; return 1; }
		sha256sum <"$T/kr/db.sql" | cmp -s - "$T/kd.$i" || { echo "snapshot $i differs"; return 1; }
	done <"$T/ksnaps"
}

killed=0 round=0 ok=1
while [ "$killed" -lt "$kills" ] && [ $ok -eq 1 ]; do
	round=$((round + 1))
	mutate "$round"
	before=$("$LBSTORE" snapshots "$S" | wc -l)
	"$LBSTORE" backup "$S" opd db "$T/k" >/dev/null 2>&1 &
	pid=$!
	ms=$((RANDOM % (dur * 13 / 10 + 1)))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
	wait "$pid" 2>/dev/null
	after=$("$LBSTORE" snapshots "$S" | wc -l)
	[ "$after" -gt "$before" ] && sha256sum <"$T/k/db.sql" >"$T/kd.$after"
	"$LBSTORE" check "$S" >"$T/kcheck" 2>&1 || { ok=0; sed 's/^/# /' "$T/kcheck"; }
	[ $ok -eq 1 ] && { nights_restore >"$T/kround" 2>&1 || { ok=0; sed 's/^/# /' "$T/kround"; }; }
done
nights=$("$LBSTORE" snapshots "$S" | wc -l)
diag "$killed kills over $round rounds; $nights nights committed"
check "after every kill the store checks clean, and the newest night and a random one restore bit-exact" test $ok -eq 1
nights_restore all >"$T/kround" 2>&1
check "at the end every committed night restores bit-exact" test $? -eq 0
check "the kills landed: $killed of $kills" test "$killed" -ge "$kills"
"$LBSTORE" check "$S" --read-data >"$T/kcheck" 2>&1
check "check --read-data is clean at the end" test $? -eq 0

done_testing
