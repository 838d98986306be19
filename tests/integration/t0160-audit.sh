#!/bin/bash
# The audit trail answers "who restored what, when": every request lands in
# the log and durably in the store with user, tenant, verb, object, result
# and bytes; tenant members see only their own tenants' records; a record
# torn by a crash is cut off at the next start and nothing else is lost.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to run as a tenant member"
id opd-dinkes >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin opd-dinkes || skip_all "cannot create a user"
chmod 755 "$T"
check "lumbungd starts" start_daemon
mkdir -p "$T/src/docs"
seq 1 5000 >"$T/src/docs/laporan.txt"
echo rahasia >"$T/src/secret.txt"
chmod -R a+rX "$T/src"
check "a backup by root for dinkes" sh -c "'$LUMBUNG' backup --dataset dinkes/arsip '$T/src' >/dev/null 2>&1"
check "a backup by root for disdik" sh -c "'$LUMBUNG' backup --dataset disdik/arsip '$T/src' >/dev/null 2>&1"
check "a restore of one path by a dinkes member" \
	runuser -u opd-dinkes -- "$LUMBUNG" cat dinkes/arsip@latest docs/laporan.txt
runuser -u opd-dinkes -- "$LUMBUNG" ls disdik/arsip@latest >/dev/null 2>&1
check "a dinkes member is refused disdik's snapshot" test $? -eq 4

"$LUMBUNG" audit --json >"$T/all.json"
check "the admin's audit lists every request with its fields" python3 -c "
import json
recs = json.load(open('$T/all.json'))
def find(verb, user, tenant, result='ok'):
    return [r for r in recs if r['verb'] == verb and r['user'] == user and r['tenant'] == tenant and r['result'] == result]
b = find('backup', 'root', 'dinkes')
assert b and 'dataset arsip snapshot' in b[0]['object'] and b[0]['bytes'] > 20000, b
r = find('read', 'opd-dinkes', 'dinkes')
assert r and 'docs/laporan.txt' in r[0]['object'] and r[0]['bytes'] == $(stat -c %s "$T/src/docs/laporan.txt"), r
f = [x for x in recs if x['verb'] == 'ls' and x['user'] == 'opd-dinkes']
assert f and f[0]['result'] != 'ok' and 'disdik/arsip@latest' in f[0]['object'], f
assert all(x['uid'] >= 0 and x['time'] > 1600000000 for x in recs)"
runuser -u opd-dinkes -- "$LUMBUNG" audit --json >"$T/mine.json"
check "a tenant member sees only its own tenant's records" python3 -c "
import json
recs = json.load(open('$T/mine.json'))
assert recs and all(r['tenant'] == 'dinkes' for r in recs), recs
assert any(r['verb'] == 'backup' for r in recs)"
runuser -u opd-dinkes -- "$LUMBUNG" audit --tenant disdik >/dev/null 2>&1
check "and cannot ask for another tenant's" test $? -eq 4
check "--since a future day lists nothing" sh -c "[ \$('$LUMBUNG' audit --since 2099-01-01 --json) = '[]' ]"
check "the log has the same records" grep -q "audit: user=opd-dinkes .* verb=read object=snapshot dinkes/arsip@latest paths docs/laporan.txt result=ok" "$T/lumbungd.log"

# A torn record (a crash mid-append) is cut at the next start.
n_before=$(python3 -c "import json; print(len(json.load(open('$T/all.json'))))")
stop_daemon
f=$(ls "$T"/store/audit/* | tail -n 1)
printf '\x40\x00\x00\x00\x01\x02\x03' >>"$f"
check "lumbungd restarts" start_daemon
check "it says it cut the torn record" grep -q "audit trail: cut 7 bytes" "$T/lumbungd.log"
"$LUMBUNG" snapshots >/dev/null
check "every earlier record is intact and new ones follow" python3 -c "
import json, subprocess
recs = json.loads(subprocess.check_output(['$LUMBUNG', 'audit', '--json']))
assert len(recs) >= $n_before + 1, (len(recs), $n_before)
assert recs[-1]['verb'] in ('snapshots', 'audit'), recs[-1]"
done_testing
