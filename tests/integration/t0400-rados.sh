#!/bin/bash
# The store in a Ceph RADOS pool, against a real single-node cluster that
# scripts/ceph-cluster.sh starts here (one monitor, one memstore OSD, cephx,
# loopback only) and stops at the end: backup and restore bit-exact with the
# packs in the pool and only the index on local disk; quota, report, forget,
# GC and check --read-data; a damaged pack in the pool is found; the index
# cache is rebuilt from the pool when it is lost, dropped by
# `lumbung repair index`, or stale after another appliance wrote; a second
# daemon on the same pool is refused; kill -9 mid-backup leaves the last
# committed state; a stalled OSD fails a backup within rados_timeout
# instead of hanging it; configuration mistakes get one clear line.
# scripts/test.sh also runs the daemon tests (t0100, t0180, t0200, t0220,
# t0270, t0290, t0305) against a cluster through LUMBUNG_TEST_RADOS.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to run a Ceph cluster"
grep -q '^#define HAVE_RADOS 1' "$top_builddir/config.h" || skip_all "lumbungd built without librados"
C=$T/ceph
sh "$top_srcdir/scripts/ceph-cluster.sh" start "$C" >"$T/ceph-start.out" 2>&1
rc=$?
[ $rc -eq 77 ] && skip_all "Ceph is not installed (apt-get install ceph-mon ceph-osd ceph-common)"
trap 'stop_daemon; sh "$top_srcdir/scripts/ceph-cluster.sh" stop "$C"' EXIT
check "a throwaway Ceph cluster starts" test $rc -eq 0
[ $rc -eq 0 ] || { sed 's/^/# /' "$T/ceph-start.out" | tail -20; done_testing; }
RADOS="timeout 60 rados -c $C/ceph.conf -p lumbung"

# rados_config CACHE [EXTRA-STORE-LINES]: the test's configuration with the
# store in the pool and its index cache in CACHE.
rados_config() {
	cat >"$T/lumbung.conf" <<CONF
[store]
path = $1
backend = rados
rados_conf = $C/ceph.conf
rados_pool = lumbung
rados_user = lumbung
rados_timeout = ${RADOS_TIMEOUT:-30s}
${2:-}
[daemon]
socket = $T/lumbungd.sock
log_level = debug
[tenant dinkes]
name = Dinas Kesehatan
quota = 1G
users = opd-dinkes
[tenant disdik]
name = Dinas Pendidikan
quota = 2M
users = opd-disdik
CONF
}
rados_config "$T/cache"

# ---- backup and restore -------------------------------------------------------
check "lumbungd creates the store in the pool and answers" start_daemon
check "it loaded librados for the pool" grep -q librados "/proc/$DAEMON_PID/maps"
check "the log says where the store is" grep -q "created a new store at rados:lumbung" "$T/lumbungd.log"
S=$T/src
make_tree "$S" 3
head -c 5000000 /dev/urandom >"$S/big.bin"
check "backup of a tree" sh -c "'$LUMBUNG' backup --dataset dinkes/app '$S' >'$T/id1'"
"$LUMBUNG" restore dinkes/app@latest --target "$T/r1" >/dev/null 2>&1
check "restore is bit-exact" same_tree "$S" "$T/r1"
$RADOS ls >"$T/objects" 2>&1
check "the packs, the snapshot and the config are objects in the pool" \
	sh -c "grep -q '^packs/' '$T/objects' && grep -q '^snapshots/dinkes/' '$T/objects' && grep -qx config '$T/objects'"
check "the cache holds the index and no pack" \
	sh -c "ls '$T/cache/index' | grep -q . && ! test -e '$T/cache/packs' && ! test -e '$T/cache/snapshots'"
check "a no-change backup stores nothing new" \
	sh -c "'$LUMBUNG' backup --dataset dinkes/app '$S' --json | grep -q '\"new_bytes_stored\":0[,}]'"

# ---- quota, report, check -----------------------------------------------------------
"$LUMBUNG" quota --json >"$T/quota.json"
check "the tenant is charged for what it stored" python3 -c "
import json, sys
q = json.load(open('$T/quota.json'))
t = [t for t in q['tenants'] if t['tenant'] == 'dinkes'][0]
sys.exit(0 if 5000000 < t['charged'] < 10000000 else 1)"
head -c 3000000 /dev/urandom >"$T/over.bin"
check_fails "a backup over the tenant's quota is refused" "$LUMBUNG" backup --dataset disdik/x "$T/over.bin"
check "and it left no snapshot behind" sh -c "! '$LUMBUNG' snapshots --json | grep -q disdik"
check "the report covers the store" sh -c "'$LUMBUNG' report --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"store\"]'"
check "check --read-data is clean" "$LUMBUNG" check --read-data

# ---- forget and GC give the pool's space back ------------------------------------
rm "$S/big.bin"
check "a backup without the big file" sh -c "'$LUMBUNG' backup --dataset dinkes/app '$S' >'$T/id2'"
packs_before=$($RADOS ls | grep -c '^packs/')
check "forget the snapshot that held it" "$LUMBUNG" forget "$(cat "$T/id1")"
check "gc runs" "$LUMBUNG" gc
packs_after=$($RADOS ls | grep -c '^packs/')
diag "packs in the pool: $packs_before before gc, $packs_after after"
check "gc removed packs from the pool" test "$packs_after" -lt "$packs_before"
"$LUMBUNG" restore dinkes/app@latest --target "$T/r2" >/dev/null 2>&1
check "the kept snapshot restores bit-exact after gc" same_tree "$S" "$T/r2"
check "check --read-data is clean after gc" "$LUMBUNG" check --read-data

# ---- damage in the pool is found --------------------------------------------------
pack=$($RADOS ls | grep '^packs/' | head -n 1)
$RADOS get "$pack" "$T/pack"
cp "$T/pack" "$T/pack.good"
printf '\377\377\377\377' | dd of="$T/pack" bs=1 seek=100 conv=notrunc 2>/dev/null
$RADOS put "$pack" "$T/pack"
"$LUMBUNG" check --read-data >"$T/check.out" 2>&1
rc=$?
check "check --read-data finds the damaged pack (exit 3)" test $rc -eq 3
$RADOS put "$pack" "$T/pack.good"
check "and is clean once it is put back" "$LUMBUNG" check --read-data

# ---- one owner at a time ------------------------------------------------------------
sed "s|^path = .*|path = $T/cache2|; s|^socket = .*|socket = $T/second.sock|" "$T/lumbung.conf" >"$T/second.conf"
timeout 60 "$LUMBUNGD" --config "$T/second.conf" --foreground >"$T/second.log" 2>&1
rc=$?
check "a second lumbungd on the same pool is refused" test $rc -ne 0 -a $rc -ne 124
check "it says who holds the store" grep -q "in use by $(hostname) boot [^ ]* pidns [^ ]* pid $DAEMON_PID " "$T/second.log"
# The same host name in another PID namespace (a container, or a VM cloned
# from this one) cannot look the holder up in its /proc: it must wait for
# the lease, not take the pid's absence there as the holder's death.
if unshare --pid --fork --mount-proc true 2>/dev/null; then
	timeout 60 unshare --pid --fork --mount-proc "$LUMBUNGD" --config "$T/second.conf" --foreground \
		>"$T/second-ns.log" 2>&1
	rc=$?
	check "a second lumbungd in another PID namespace is refused too" test $rc -ne 0 -a $rc -ne 124
	check "as the store being in use, not by breaking the lock" grep -q "in use by" "$T/second-ns.log"
	check "and the first one still writes" "$LUMBUNG" backup --dataset dinkes/app "$S"
else
	for n in 1 2 3; do
		tap_n=$((tap_n + 1))
		echo "ok $tap_n # SKIP unshare --pid is not permitted here"
	done
fi

# ---- the index cache -----------------------------------------------------------------
stop_daemon
rm -rf "$T/cache"
check "lumbungd starts on a lost cache" start_daemon
check "and rebuilt the index from the pool" grep -q "rebuilt the index cache from the pool: [1-9][0-9]* chunks" "$T/lumbungd.log"
check "a no-change backup after the rebuild stores nothing new" \
	sh -c "'$LUMBUNG' backup --dataset dinkes/app '$S' --json | grep -q '\"new_bytes_stored\":0[,}]'"
stop_daemon
: >"$T/lumbungd.log"
check "repair index drops the cache" sh -c "'$LUMBUNG' repair index --config '$T/lumbung.conf' | grep -q 'rebuilds it from the packs'"
check "lumbungd starts after the repair" start_daemon
check "and rebuilt the index" grep -q "rebuilt the index cache from the pool" "$T/lumbungd.log"
"$LUMBUNG" restore dinkes/app@latest --target "$T/r3" >/dev/null 2>&1
check "restore after the repair is bit-exact" same_tree "$S" "$T/r3"
stop_daemon

# Another appliance (another cache) takes the pool over and writes; the
# first one's cache is then stale and must be rebuilt, or it would not
# know the chunks the other stored.
: >"$T/lumbungd.log"
rados_config "$T/cacheB"
check "a second appliance takes the pool over" start_daemon
head -c 2000000 /dev/urandom >"$S/from-b.bin"
check "and backs up new data" "$LUMBUNG" backup --dataset dinkes/app "$S"
stop_daemon
: >"$T/lumbungd.log"
rados_config "$T/cache"
check "the first appliance starts again" start_daemon
check "and rebuilds its stale index" grep -q "rebuilt the index cache from the pool" "$T/lumbungd.log"
check "so the other's data is known: nothing new stored" \
	sh -c "'$LUMBUNG' backup --dataset dinkes/app '$S' --json | grep -q '\"new_bytes_stored\":0[,}]'"
stop_daemon
: >"$T/lumbungd.log"
check "a restart with a current cache" start_daemon
check_fails "does not rebuild the index" grep -q "rebuilt the index cache" "$T/lumbungd.log"

# ---- kill -9 mid-backup ---------------------------------------------------------------
restarts=0
for round in 1 2 3 4 5; do
	head -c 4000000 /dev/urandom >"$S/round-$round.bin"
	"$LUMBUNG" backup --dataset dinkes/app "$S" >/dev/null 2>&1 &
	bpid=$!
	sleep "0.$((RANDOM % 10))"
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	wait "$bpid" 2>/dev/null
	DAEMON_PID=
	start_daemon >/dev/null || break
	restarts=$((restarts + 1))
done
check "lumbungd starts at once after each kill -9 (the dead holder's lock is broken)" test $restarts -eq 5
check "check --read-data is clean after the kills" "$LUMBUNG" check --read-data
"$LUMBUNG" snapshots --json >"$T/snaps.json"
n=0
ok=1
for id in $(python3 -c "import json; [print(s['id']) for s in json.load(open('$T/snaps.json'))]"); do
	n=$((n + 1))
	rm -rf "$T/rk"
	"$LUMBUNG" restore "$id" --target "$T/rk" >/dev/null 2>&1 || { ok=0; diag "restore of $id failed"; }
done
diag "$n snapshots after the kills"
check "every committed snapshot restores" test $ok -eq 1 -a $n -ge 2

# ---- a stalled OSD fails the job, not hangs it ----------------------------------------
stop_daemon
RADOS_TIMEOUT=5s rados_config "$T/cache"
start_daemon >/dev/null
head -c 3000000 /dev/urandom >"$S/stall.bin"
osd=$(cat "$C/osd.pid")
kill -STOP "$osd"
start=$(date +%s)
timeout 120 "$LUMBUNG" backup --dataset dinkes/app "$S" >"$T/stall.out" 2>&1
rc=$?
took=$(($(date +%s) - start))
kill -CONT "$osd"
diag "the backup against a stalled OSD ended with $rc after $took s"
check "a backup against a stalled OSD fails (not killed by the test's timeout)" test $rc -ne 0 -a $rc -ne 124
check "with a one-line reason" grep -qi "timed out" "$T/stall.out"
# Ceph itself may hold ops back after a long pause of the OSD: "back" is
# when a fresh client is served again by every placement group (ls asks
# them all).  Ceph 16 can also leave a PG parked for good after such a
# pause (ceph tracker 80404: ops "delayed" for minutes in CI, even a
# fresh lumbungd's lock); marking the OSD down makes it re-peer, which
# is what an operator would do.  Lumbung's part is what follows.
served() { timeout 10 $RADOS stat lock >/dev/null 2>&1 && timeout 10 $RADOS ls >/dev/null 2>&1; }
# wait_served SECONDS: true once served, false when SECONDS have passed
wait_served() {
	local deadline=$(($(date +%s) + $1))
	until served; do
		[ "$(date +%s)" -lt $deadline ] || return 1
		sleep 1
	done
}
if ! wait_served 30; then
	diag "Ceph still holds ops back 30 s after the OSD resumed; marking osd.0 down to re-peer"
	timeout 30 ceph -c "$C/ceph.conf" osd down 0 >/dev/null 2>&1
	wait_served 120 || diag "and a fresh client is still not served 120 s later"
fi
check "and the next backup works once the OSD is back" "$LUMBUNG" backup --dataset dinkes/app "$S"
check "check --read-data is clean" "$LUMBUNG" check --read-data
check "the write in doubt was settled, not left to land later" grep -q "that had timed out is settled" "$T/lumbungd.log"

# ---- the lock lapses and is taken back --------------------------------------------------
# rados_timeout 5s gives the minimum lease, 15 s.  A daemon that was frozen
# past its lease stops writing; once it runs again it takes the lock back
# and resumes, as nobody wrote meanwhile.
: >"$T/lumbungd.log"
kill -STOP "$DAEMON_PID"
sleep 17
kill -CONT "$DAEMON_PID"
head -c 200000 /dev/urandom >"$S/lapse.bin"
check "after its lease lapsed, lumbungd takes the lock back and backs up" \
	"$LUMBUNG" backup --dataset dinkes/app "$S"
check "saying the lock lapsed" grep -q "lock lapsed" "$T/lumbungd.log"
check "and that writes resumed" grep -q "held again and nobody wrote meanwhile" "$T/lumbungd.log"

# Frozen again, and this time a second appliance takes the pool over and
# writes: the first may not write a byte more, and says to restart.
sed "s|^path = .*|path = $T/cache3|; s|^socket = .*|socket = $T/third.sock|" "$T/lumbung.conf" >"$T/third.conf"
# start_third: starts the second appliance; 0 once it serves, 1 when it
# exited (refused: the lease has not ended yet).
start_third() {
	"$LUMBUNGD" --config "$T/third.conf" --foreground >"$T/third.log" 2>&1 &
	tp=$!
	until LUMBUNG_SOCKET="$T/third.sock" "$LUMBUNG" version >/dev/null 2>&1; do
		kill -0 $tp 2>/dev/null || { wait $tp; return 1; }
		sleep 0.1
	done
}
kill -STOP "$DAEMON_PID"
i=0
until start_third || [ $i -ge 60 ]; do i=$((i + 1)); sleep 0.5; done
check "a second appliance takes the pool once the frozen one's lease ends" kill -0 $tp
check "having been refused while the lease ran" test $i -gt 0
head -c 200000 /dev/urandom >"$S/takeover.bin"
check "and backs up" env LUMBUNG_SOCKET="$T/third.sock" "$LUMBUNG" backup --dataset dinkes/app "$S"
kill -TERM $tp
wait $tp
kill -CONT "$DAEMON_PID"
head -c 200000 /dev/urandom >"$S/after.bin"
"$LUMBUNG" backup --dataset dinkes/app "$S" >"$T/taken.out" 2>&1
rc=$?
check "the first appliance then writes nothing" test $rc -ne 0
check "and says another appliance took the store over" grep -q "another appliance took the store over" "$T/taken.out"
stop_daemon
: >"$T/lumbungd.log"
check "after a restart it works again" start_daemon
check "having rebuilt its index from the pool" grep -q "rebuilt the index cache from the pool" "$T/lumbungd.log"
"$LUMBUNG" backup --dataset dinkes/app "$S" --json >"$T/after.json"
check "so what the other wrote is known: only the 200 kB it did not write are stored" python3 -c "
import json, sys
n = json.load(open('$T/after.json'))['new_bytes_stored']
sys.exit(0 if 200000 <= n < 300000 else 1)"

# ---- an old copy of the index cache ---------------------------------------------------
# Restored from a disk backup, it holds an older generation than the pool's
# marker and is rebuilt, not trusted.
stop_daemon
cp -a "$T/cache" "$T/cache.old"
start_daemon >/dev/null
head -c 300000 /dev/urandom >"$S/newer.bin"
"$LUMBUNG" backup --dataset dinkes/app "$S" >/dev/null
stop_daemon
rm -rf "$T/cache"
mv "$T/cache.old" "$T/cache"
: >"$T/lumbungd.log"
check "lumbungd starts on an old copy of its cache" start_daemon
check "and rebuilds the index instead of trusting it" grep -q "rebuilt the index cache from the pool" "$T/lumbungd.log"
check "so GC and check see every pack" "$LUMBUNG" check --read-data
stop_daemon

# ---- configuration mistakes -------------------------------------------------------
printf '[store]\npath = %s/c\nbackend = rados\n' "$T" >"$T/bad1.conf"
"$LUMBUNGD" --config "$T/bad1.conf" --check-config >"$T/bad1.out" 2>&1
check "backend = rados without rados_pool is refused (exit 2)" test $? -eq 2
check "naming the file and the key" grep -q "bad1.conf.*rados_pool" "$T/bad1.out"
printf '[store]\npath = %s/c\nrados_pool = p\n' "$T" >"$T/bad2.conf"
check_fails "rados_* keys without backend = rados are refused" "$LUMBUNGD" --config "$T/bad2.conf" --check-config
printf '[store]\npath = %s/c\nbackend = ceph\n' "$T" >"$T/bad3.conf"
check_fails "an unknown backend is refused" "$LUMBUNGD" --config "$T/bad3.conf" --check-config
sed 's/^rados_pool = .*/rados_pool = nosuchpool/' "$T/lumbung.conf" >"$T/bad4.conf"
timeout 60 "$LUMBUNGD" --config "$T/bad4.conf" --foreground >"$T/bad4.out" 2>&1
check "a missing pool stops lumbungd with one clear line" grep -q "cannot open Ceph pool nosuchpool.*no such pool" "$T/bad4.out"
sed 's/^rados_user = .*/rados_user = nobody/' "$T/lumbung.conf" >"$T/bad5.conf"
timeout 90 "$LUMBUNGD" --config "$T/bad5.conf" --foreground >"$T/bad5.out" 2>&1
rc=$?
check "an unknown cephx user fails, not hangs" test $rc -ne 0 -a $rc -ne 124
check "saying it cannot connect" grep -q "cannot connect to Ceph as client.nobody" "$T/bad5.out"

sed 's/^mon host = .*/mon host = v2:127.0.0.1:9/' "$C/ceph.conf" >"$T/nomon.conf"
sed "s|^rados_conf = .*|rados_conf = $T/nomon.conf|; s/^rados_timeout = .*/rados_timeout = 5s/" \
	"$T/lumbung.conf" >"$T/bad6.conf"
start=$(date +%s)
timeout 120 "$LUMBUNGD" --config "$T/bad6.conf" --foreground >"$T/bad6.out" 2>&1
rc=$?
diag "lumbungd against no monitor ended with $rc after $(($(date +%s) - start)) s"
check "no reachable monitor stops lumbungd after rados_timeout, not never" test $rc -ne 0 -a $rc -ne 124
check "saying it cannot connect" grep -q "cannot connect to Ceph as client.lumbung" "$T/bad6.out"

# The cluster stops by its pid files, before done_testing removes them.
sh "$top_srcdir/scripts/ceph-cluster.sh" stop "$C"
trap 'stop_daemon' EXIT
done_testing
