#!/bin/bash
# Quota: each tenant is charged the stored bytes of the distinct chunks its
# snapshots reference, whatever other tenants hold; the charge kept by every
# backup equals a recount (check); a backup that would pass the hard quota
# fails, naming tenant, usage, quota and need, commits nothing and leaves
# another tenant's concurrent backup alone; crossing the soft quota warns in
# the output, the log and the snapshot; the store's capacity is enforced.
. "$(dirname "$0")/lib.sh"

cat >"$T/lumbung.conf" <<CONF
[store]
path = $T/store
capacity = 200M
[daemon]
socket = $T/lumbungd.sock
[tenant dinkes]
quota = 100M
[tenant disdik]
quota = 100M
[tenant kecil]
name = Tenant Kecil
quota = 4M
[tenant lunak]
quota = 20M
soft_quota = 5M
[tenant besar]
name = No quota of its own
CONF
check "lumbungd starts" start_daemon
charged() { "$LUMBUNG" quota --tenant "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["charged"])'; }

mkdir -p "$T/x" "$T/y"
head -c 3000000 /dev/urandom >"$T/x/shared.bin"
head -c 2000000 /dev/urandom >"$T/y/own.bin"
check "dinkes backs up X" sh -c "'$LUMBUNG' backup --dataset dinkes/a '$T/x' >/dev/null 2>&1"
c_dinkes=$(charged dinkes)
check "dinkes is charged at least X (random data does not compress)" test "$c_dinkes" -ge 3000000
check "and not much more (chunk headers and the manifest)" test "$c_dinkes" -lt 3100000
check "disdik backs up the same X (stored once)" sh -c "'$LUMBUNG' backup --dataset disdik/a '$T/x' >/dev/null 2>&1"
c_disdik=$(charged disdik)
check "disdik is charged for X in full, as if alone" test "$c_disdik" -ge 3000000
check "dinkes's charge did not move when disdik added the same data" test "$(charged dinkes)" -eq "$c_dinkes"
"$LUMBUNG" backup --dataset dinkes/a "$T/x" >/dev/null 2>&1
c2=$(charged dinkes)
check "a second snapshot of the same data costs dinkes only its head" sh -c "[ $c2 -gt $c_dinkes ] && [ $((c2 - c_dinkes)) -lt 600 ]"
"$LUMBUNG" backup --dataset dinkes/b "$T/y" >/dev/null 2>&1
c3=$(charged dinkes)
check "adding Y charges dinkes about Y more" sh -c "[ $((c3 - c2)) -ge 2000000 ] && [ $((c3 - c2)) -lt 2100000 ]"
"$LUMBUNG" quota --json >"$T/q.json"
check "admins see exclusive bytes: X is shared, Y is dinkes's alone" python3 -c "
import json
q = json.load(open('$T/q.json'))
t = {x['tenant']: x for x in q['tenants']}
assert 2000000 <= t['dinkes']['exclusive'] < 2100000, t['dinkes']
assert t['disdik']['exclusive'] < 1000, t['disdik']
assert q['store']['capacity'] == 200 * 1024 * 1024
assert q['store']['physical'] >= 5000000"
check "the kept charges equal a recount (check is clean)" "$LUMBUNG" check

# Hard quota: refused cleanly while another tenant's backup runs.
mkdir -p "$T/big" "$T/other"
head -c 6000000 /dev/urandom >"$T/big/big.bin"
head -c 3000000 /dev/urandom >"$T/other/o.bin"
"$LUMBUNG" backup --dataset kecil/a "$T/big" >/dev/null 2>"$T/kecil.err" &
p1=$!
"$LUMBUNG" backup --dataset disdik/c "$T/other" >/dev/null 2>"$T/disdik.err" &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
check "a backup over the hard quota fails" test "$r1" -ne 0
check "naming tenant, usage, quota and the amount needed" grep -q "tenant kecil would go over its quota: it uses 0 B of 4.0 MiB, and this backup needs .* more" "$T/kecil.err"
check "nothing of it is committed" sh -c "! '$LUMBUNG' snapshots --tenant kecil | grep -q kecil/"
check "the tenant's charge did not move" test "$(charged kecil)" -eq 0
check "the other tenant's concurrent backup succeeded" test "$r2" -eq 0

# Soft quota.
check "a backup past the soft quota succeeds" sh -c "'$LUMBUNG' backup --dataset lunak/a '$T/big' >/dev/null 2>'$T/lunak.err'"
check "with a warning in the output" grep -q "warning: tenant lunak is over its soft quota" "$T/lunak.err"
check "and in the log" grep -q "tenant lunak is over its soft quota" "$T/lumbungd.log"
check "and in the snapshot" sh -c "'$LUMBUNG' snapshots --tenant lunak --json | grep -q soft-quota-exceeded"

# Capacity (200 MiB here): a backup that would fill the store is refused.
mkdir -p "$T/huge"
head -c 210000000 /dev/urandom >"$T/huge/h.bin"
"$LUMBUNG" backup --dataset besar/huge "$T/huge" >/dev/null 2>"$T/cap.err"
check "a backup past the store's capacity is refused" test $? -ne 0
check "saying the store is at its capacity" grep -q "the store is at its capacity" "$T/cap.err"
check "after everything, check still finds charges and recount equal" "$LUMBUNG" check

# Many backups and deletions across tenants that share data: the charges
# kept step by step must still equal a recount.
RANDOM=7
for i in $(seq 1 16); do
	t=$(echo dinkes disdik | cut -d' ' -f$((RANDOM % 2 + 1)))
	mkdir -p "$T/mix"
	head -c $((100000 + RANDOM * 20)) /dev/urandom >"$T/mix/own-$i.bin"
	cp "$T/x/shared.bin" "$T/mix/" # shared by every tenant
	"$LUMBUNG" backup --dataset "$t/mix" "$T/mix" >/dev/null 2>&1
	if [ $((i % 3)) -eq 0 ]; then
		victim=$("$LUMBUNG" snapshots --tenant "$t" --json | python3 -c 'import json,sys,random; s=json.load(sys.stdin); random.seed(7); print(random.choice(s)["id"] if s else "")')
		[ -n "$victim" ] && "$LUMBUNG" forget "$victim" >/dev/null 2>&1
	fi
done
check "after 16 backups and 5 deletions across tenants, kept charges equal a recount" "$LUMBUNG" check --read-data

# The charges survive a restart (recomputed from the snapshots).
c_before=$(charged dinkes)
stop_daemon
check "lumbungd restarts" start_daemon
check "the charge after a restart is the same" test "$(charged dinkes)" -eq "$c_before"

# The reserve: on a small filesystem (a 48 MiB tmpfs), backups stop before
# the free space drops below the reserve, so prune and GC can still run.
stop_daemon
if [ "$(id -u)" -eq 0 ] && mkdir -p "$T/small" && mount -t tmpfs -o size=48M tmpfs "$T/small" 2>/dev/null; then
	trap 'stop_daemon; umount "$T/small" 2>/dev/null' EXIT
	cat >"$T/lumbung.conf" <<CONF
[store]
path = $T/small/store
reserve = 24M
[daemon]
socket = $T/lumbungd.sock
[tenant dinkes]
quota = 1G
CONF
	check "lumbungd starts on the small filesystem" start_daemon
	mkdir -p "$T/r1" "$T/r2"
	head -c 10000000 /dev/urandom >"$T/r1/a.bin"
	head -c 20000000 /dev/urandom >"$T/r2/b.bin"
	check "a backup that leaves the reserve free succeeds" sh -c "'$LUMBUNG' backup --dataset dinkes/r '$T/r1' >/dev/null 2>&1"
	"$LUMBUNG" backup --dataset dinkes/r "$T/r2" >/dev/null 2>"$T/reserve.err"
	check "one that would eat into the reserve is refused" test $? -ne 0
	check "saying so" grep -q "the store's filesystem is down to the reserve kept for prune and GC" "$T/reserve.err"
	check "the filesystem still has room for prune and GC" sh -c "[ \$(df -k --output=avail '$T/small' | tail -n 1) -gt 8000 ]"
	check "the earlier snapshot is intact" sh -c "'$LUMBUNG' cat dinkes/r@latest a.bin | cmp - '$T/r1/a.bin'"
	stop_daemon
	umount "$T/small"
else
	diag "not root or no tmpfs: the reserve is not exercised here"
fi
done_testing
