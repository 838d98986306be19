#!/bin/bash
# lumbung gc through the daemon: a dry run counts and changes nothing; a
# collection after forget frees exactly that, shrinks the packs on disk,
# keeps every retained snapshot bit-exact and check (with its usage
# recount) clean; a member may not run it; the report shows the last GC
# from its job record; a backup running beside a collection finishes and
# restores.  Then kill -9: the daemon is killed at each named point of a
# collection (LUMBUNG_TEST_GC_KILL) and lbstore's collection at random
# instants; after every kill the store opens, check --read-data is clean,
# the retained snapshots restore bit-exact, and the next collection
# finishes the job.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to run as a tenant member"
id opd-dinkes >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin opd-dinkes ||
	skip_all "cannot create a user"
chmod 755 "$T"
as() { u=$1; shift; runuser -u "$u" -- env LUMBUNG_SOCKET="$LUMBUNG_SOCKET" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
pack_bytes() { find "$T/store/packs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

write_config "[store]
gc_repack_below = 60"
# write_config already wrote a [store] section: merge the key into it.
python3 - "$T/lumbung.conf" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read().replace("[store]\ngc_repack_below = 60\n", "")
s = s.replace("[store]\n", "[store]\ngc_repack_below = 60\n", 1)
open(p, "w").write(s)
EOF
start_daemon || exit 1

mkdir -p "$T/keep" "$T/drop" "$T/mixed"
head -c 3000000 /dev/urandom >"$T/keep/a.bin"
head -c 3000000 /dev/urandom >"$T/drop/b.bin"
seq 1 300000 >"$T/keep/numbers.txt"
cp "$T/keep/a.bin" "$T/mixed/a.bin"
head -c 2000000 /dev/urandom >"$T/mixed/c.bin"
"$LUMBUNG" backup --dataset dinkes/keep "$T/keep" >/dev/null 2>&1 &&
	"$LUMBUNG" backup --dataset dinkes/drop "$T/drop" >/dev/null 2>&1 &&
	"$LUMBUNG" backup --dataset dinkes/mixed "$T/mixed" >/dev/null 2>&1
check "three backups" test $? -eq 0

"$LUMBUNG" gc --json >"$T/gc0.json"
check "gc on a store without garbage succeeds" test $? -eq 0
check "and frees nothing" test "$(json 'd["bytes_freed"], d["chunks_dead"]' <"$T/gc0.json")" = "0 0"

check_fails "a tenant member may not collect garbage" as opd-dinkes "$LUMBUNG" gc
as opd-dinkes "$LUMBUNG" gc >/dev/null 2>&1
check "and gets exit status 6" test $? -eq 6

"$LUMBUNG" forget dinkes/drop@latest >/dev/null 2>&1 && "$LUMBUNG" forget dinkes/mixed@latest >/dev/null 2>&1
check "forget two snapshots" test $? -eq 0
before=$(pack_bytes)
"$LUMBUNG" gc --dry-run --json >"$T/dry.json"
check "a dry run finds garbage" test "$(json 'd["bytes_freed"] > 2000000 and d["chunks_dead"] > 0' <"$T/dry.json")" = True
check "and deletes nothing" test "$(pack_bytes)" = "$before"

"$LUMBUNG" gc --json >"$T/gc1.json"
check "gc after forget succeeds" test $? -eq 0
check "it frees what the dry run said" test "$(json 'd["bytes_freed"]' <"$T/gc1.json")" = "$(json 'd["bytes_freed"]' <"$T/dry.json")"
after=$(pack_bytes)
check "the packs on disk shrink by freed - written" test "$((before - after))" = \
	"$(json 'd["bytes_freed"] - d["bytes_written"]' <"$T/gc1.json")"
rm -rf "$T/r" && "$LUMBUNG" restore dinkes/keep@latest --target "$T/r" >/dev/null 2>&1
check "the kept snapshot restores bit-exact" same_tree "$T/keep" "$T/r"
"$LUMBUNG" check --read-data >"$T/check.out" 2>&1
check "check --read-data (with its usage recount) is clean" test $? -eq 0
"$LUMBUNG" gc --json >"$T/gc2.json"
check "a second gc finds nothing" test "$(json 'd["chunks_dead"], d["packs_deleted"], d["packs_repacked"]' <"$T/gc2.json")" = "0 0 0"
"$LUMBUNG" gc >"$T/gc.txt" 2>&1
check "the text output says what was freed" grep -q "freed: 0 packs deleted" "$T/gc.txt"

"$LUMBUNG" report --json >"$T/report.json"
check "the report shows the last GC from its job record" python3 -c "
import json
d = json.load(open('$T/report.json'))['store']['last_gc']
assert d is not None and d['status'] == 0 and d['freed'] == 0, d"
check "the audit trail has the gc" sh -c "'$LUMBUNG' audit --json | grep -q '\"verb\":\"gc\"'"

# A backup and a collection at once: both finish, the backup restores.
head -c 20000000 /dev/urandom >"$T/keep/big.bin"
"$LUMBUNG" forget dinkes/keep@latest >/dev/null 2>&1
"$LUMBUNG" backup --dataset dinkes/keep "$T/keep" >"$T/bk.out" 2>&1 &
bk=$!
"$LUMBUNG" gc --json >"$T/gc3.json"
g=$?
wait $bk
b=$?
check "a backup beside a gc: both succeed" test "$g$b" = 00
rm -rf "$T/r" && "$LUMBUNG" restore dinkes/keep@latest --target "$T/r" >/dev/null 2>&1
check "and the backup restores bit-exact" same_tree "$T/keep" "$T/r"
"$LUMBUNG" check --read-data >"$T/check.out" 2>&1
check "check is clean" test $? -eq 0

# ---- kill -9 at every named point ---------------------------------------------
ok=1
n=0
for point in begun marked frozen repacked committed deleting; do
	n=$((n + 1))
	head -c 1500000 /dev/urandom >"$T/drop/b$n.bin"
	"$LUMBUNG" backup --dataset dinkes/drop "$T/drop" >/dev/null 2>&1 &&
		"$LUMBUNG" forget dinkes/drop@latest >/dev/null 2>&1 || { ok=0; diag "setup $point"; }
	stop_daemon
	LUMBUNG_TEST_GC_KILL=$point start_daemon || ok=0
	"$LUMBUNG" gc >/dev/null 2>&1
	wait "$DAEMON_PID" 2>/dev/null
	st=$?
	DAEMON_PID=
	[ "$st" -eq 137 ] || { ok=0; diag "$point: lumbungd exited $st, not killed"; }
	start_daemon || { ok=0; break; }
	"$LUMBUNG" check --read-data >"$T/check.out" 2>&1 || { ok=0; diag "$point: check"; sed 's/^/# /' "$T/check.out"; }
	rm -rf "$T/r" && "$LUMBUNG" restore dinkes/keep@latest --target "$T/r" >/dev/null 2>&1 &&
		same_tree "$T/keep" "$T/r" >/dev/null || { ok=0; diag "$point: restore"; }
	"$LUMBUNG" gc --json >"$T/gck.json" 2>&1 || { ok=0; diag "$point: gc after the kill"; }
	"$LUMBUNG" check --read-data >/dev/null 2>&1 || { ok=0; diag "$point: check after gc"; }
	# Nothing garbage is left: the collection after the kill finished it.
	"$LUMBUNG" gc --dry-run --json | json 'd["chunks_dead"] == 0 and d["leftover_packs"] == 0' | grep -q True ||
		{ ok=0; diag "$point: garbage left after the second gc"; }
done
check "killed at each of 6 points: store intact, next gc completes" test $ok -eq 1
stop_daemon

# ---- kill -9 at random instants (engine, through lbstore) ----------------------
RANDOM=${LUMBUNG_SEED:-7}
"$LBSTORE" init "$T/s2" --avg 16384 --pack-size 1048576 >/dev/null || exit 99
mkdir -p "$T/k"
for i in 1 2 3 4 5 6; do head -c 800000 /dev/urandom >"$T/k/f$i"; done
keep=$("$LBSTORE" backup "$T/s2" opd keep "$T/k" 2>/dev/null)
ok=1
for round in $(seq 1 12); do
	mkdir -p "$T/g"
	for i in 1 2 3; do head -c 600000 /dev/urandom >"$T/g/f$i"; done
	cp "$T/k/f$((round % 6 + 1))" "$T/g/shared"
	id=$("$LBSTORE" backup "$T/s2" opd g$round "$T/g" 2>/dev/null) && "$LBSTORE" forget "$T/s2" "$id" || ok=0
	"$LBSTORE" gc "$T/s2" --repack-below 90 >/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((RANDOM % 10))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	"$LBSTORE" check "$T/s2" --read-data >"$T/c2.out" 2>&1 || { ok=0; sed 's/^/# /' "$T/c2.out"; }
	rm -rf "$T/r2" && "$LBSTORE" restore "$T/s2" "$keep" "$T/r2" >/dev/null 2>&1 && same_tree "$T/k" "$T/r2" >/dev/null ||
		{ ok=0; diag "round $round: restore"; }
done
"$LBSTORE" gc "$T/s2" --repack-below 90 >/dev/null 2>&1 || ok=0
"$LBSTORE" check "$T/s2" --read-data >/dev/null 2>&1 || ok=0
"$LBSTORE" gc "$T/s2" --dry-run >"$T/dry2" 2>&1 || ok=0
grep -q " dead 0 " "$T/dry2" && grep -q " orphans 0 " "$T/dry2" || { ok=0; cat "$T/dry2"; }
check "12 collections killed at random instants: store intact, the last one leaves no garbage" test $ok -eq 1

done_testing
