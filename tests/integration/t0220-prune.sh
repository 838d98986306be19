#!/bin/bash
# lumbung prune: the configured policy (dataset, else tenant, else store)
# decides which snapshots stay; --dry-run removes nothing; a tenant member's
# prune never goes below the store's minimum and never reaches another
# tenant; removal drops the charge exactly (check recounts it) and what is
# kept still restores bit-exact; a legal hold (protect) keeps a snapshot
# from prune and forget until an administrator lifts it.  Snapshot times come from a simulated
# clock (LUMBUNG_TEST_NOW), one daemon start per night, never by sleeping.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to run as a tenant member"
for u in opd-dinkes opd-disdik; do
	id $u >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin $u || skip_all "cannot create a user"
done
chmod 755 "$T"
export TZ=UTC
as() { u=$1; shift; runuser -u "$u" -- env LUMBUNG_SOCKET="$LUMBUNG_SOCKET" "$@"; }
write_config "[dataset dinkes/simpus]
keep_daily = 2
[dataset disdik/dapodik]
keep_last = 1"
# The store's floor for members, and a default that only reaches datasets
# whose tenant has none: dinkes/other and disdik/dapodik have their own or
# inherit nothing (the store default applies to dukcapil only).
sed -i 's/^\[store\]$/[store]\nmin_keep_daily = 3/' "$T/lumbung.conf"
"$LUMBUNGD" --config "$T/lumbung.conf" --check-config >/dev/null 2>&1
check "the configuration with retention keys is valid" test $? -eq 0

day0=1789948800 # midnight UTC of a fixed day (2026-09-21)
mkdir -p "$T/src" "$T/copies"
night() { # night N [EXTRA SECONDS]: one backup of simpus (and others) at noon of day N
	export LUMBUNG_TEST_NOW=$((day0 + $1 * 86400 + 43200 + ${2:-0}))
	start_daemon >/dev/null || return 1
	head -c 300000 /dev/urandom >"$T/src/n$1-${2:-0}.bin"
	"$LUMBUNG" backup --dataset dinkes/simpus "$T/src" >/dev/null 2>&1 || return 1
	"$LUMBUNG" backup --dataset dinkes/other "$T/src" >/dev/null 2>&1 || return 1
	"$LUMBUNG" backup --dataset disdik/dapodik "$T/src" >/dev/null 2>&1 || return 1
	rm -rf "$T/copies/$1-${2:-0}" && cp -a "$T/src" "$T/copies/$1-${2:-0}"
	stop_daemon
}
ok=1
for d in 0 1 2 3 4 5; do night $d || ok=0; done
night 5 3600 || ok=0 # a second snapshot on day 5, an hour later
check "seven nights of backups" test $ok -eq 1
start_daemon

times() { # times DATASET: the snapshot times (seconds) left, as day-offset lists
	"$LUMBUNG" snapshots --dataset "$1" --json |
		python3 -c "import json,sys; print(' '.join('%d-%d' % ((s['time']-$day0)//86400, (s['time']-$day0)%86400-43200) for s in json.load(sys.stdin)))"
}
check "simpus has its seven snapshots" test "$(times dinkes/simpus)" = "0-0 1-0 2-0 3-0 4-0 5-0 5-3600"

"$LUMBUNG" prune --dataset dinkes/simpus --dry-run --json >"$T/dry.json"
check "an administrator's dry run marks the newest of the 2 newest days kept by 'daily'" python3 -c "
import json
rows = json.load(open('$T/dry.json'))
kept = [(r['time']-$day0)//86400 for r in rows if r['keep']]
assert len(rows) == 7, rows
assert sorted(kept) == [4, 5], kept
assert all(r['reasons'] == ['daily'] for r in rows if r['keep']), rows
assert not any(r['removed'] for r in rows), rows
newest5 = max(r['time'] for r in rows)
assert [r['time'] for r in rows if r['keep'] and (r['time']-$day0)//86400 == 5] == [newest5]"
check "a dry run removes nothing" test "$(times dinkes/simpus)" = "0-0 1-0 2-0 3-0 4-0 5-0 5-3600"
"$LUMBUNG" prune --dataset dinkes/simpus --dry-run >"$T/dry.txt" 2>&1
check "the table says keep/remove with the rule" grep -Eq "dinkes/simpus .* remove" "$T/dry.txt"
check "and the summary counts what would go" grep -q "5 would be removed (dry run)" "$T/dry.txt"

before=$("$LUMBUNG" quota --tenant dinkes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["charged"])')
as opd-dinkes "$LUMBUNG" prune --json >"$T/member.json"
check "a member's prune exits 0" test $? -eq 0
check "a member's prune keeps 3 days (the store's minimum over keep_daily = 2) and the unpoliced dataset whole" \
	python3 -c "
import json
rows = json.load(open('$T/member.json'))
simpus = [r for r in rows if r['dataset'] == 'simpus']
other = [r for r in rows if r['dataset'] == 'other']
assert sorted((r['time']-$day0)//86400 for r in simpus if r['keep']) == [3, 4, 5], simpus
assert all(r['removed'] == (not r['keep']) for r in simpus), simpus
assert len(other) == 7 and all(r['keep'] and r['reasons'] == ['no-policy'] and not r['removed'] for r in other), other
assert all(r['tenant'] == 'dinkes' for r in rows), rows"
check "simpus keeps day 3, day 4 and the newest of day 5" test "$(times dinkes/simpus)" = "3-0 4-0 5-3600"
check "dinkes/other is untouched" test "$(times dinkes/other | wc -w)" -eq 7
check "another tenant's dataset is not reached by a member" test "$(times disdik/dapodik | wc -w)" -eq 7
as opd-dinkes "$LUMBUNG" prune --tenant disdik --json >"$T/probe.json" 2>&1
check "a member naming another tenant prunes nothing there" test "$(times disdik/dapodik | wc -w)" -eq 7
after=$("$LUMBUNG" quota --tenant dinkes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["charged"])')
check "the charge dropped at once ($before -> $after)" test "$after" -lt "$before"
check "check recounts the charges and finds them equal" "$LUMBUNG" check
restored_ok=1
for s in 3-0 5-3600; do
	day=${s%-*} off=${s#*-}
	rm -rf "$T/r"
	"$LUMBUNG" restore "dinkes/simpus@$(date -u -d @$((day0 + day * 86400)) +%F)" --target "$T/r" >/dev/null 2>&1 || restored_ok=0
	same_tree "$T/copies/$s" "$T/r" || restored_ok=0
done
check "the kept snapshots restore bit-exact" test $restored_ok -eq 1

# A legal hold on disdik's oldest snapshot.
hold=$("$LUMBUNG" snapshots --dataset disdik/dapodik --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
as opd-disdik "$LUMBUNG" protect "$hold" >/dev/null 2>&1
check "a member cannot put a legal hold (exit 6)" test $? -eq 6
as opd-disdik "$LUMBUNG" unprotect "$hold" >/dev/null 2>&1
check "nor lift one (exit 6)" test $? -eq 6
check "an administrator protects a snapshot" "$LUMBUNG" protect "$hold"
stop_daemon
check "the hold survives a restart" start_daemon
"$LUMBUNG" forget "$hold" >"$T/forget.txt" 2>&1
check "forget refuses a protected snapshot (exit 6)" test $? -eq 6
check "and says why" grep -q "is protected" "$T/forget.txt"
"$LUMBUNG" prune --tenant disdik --dry-run --json >"$T/hold.json"
check "prune keeps it by the 'protected' rule" python3 -c "
import json
rows = {r['id']: r for r in json.load(open('$T/hold.json'))}
assert rows['$hold']['keep'] and rows['$hold']['reasons'] == ['protected'], rows['$hold']
assert sum(1 for r in rows.values() if r['keep']) == 2, rows"
"$LUMBUNG" prune --tenant disdik >/dev/null 2>&1
check "an administrator's prune applies keep_last = 1 to disdik, the held one aside" \
	test "$(times disdik/dapodik)" = "0-0 5-3600"
check "unprotect lifts the hold" "$LUMBUNG" unprotect "$hold"
"$LUMBUNG" prune --tenant disdik >/dev/null 2>&1
check "and the next prune removes it" test "$(times disdik/dapodik)" = "5-3600"
check "protect of a snapshot that is gone is 'not found' (exit 4)" sh -c "'$LUMBUNG' protect '$hold' 2>/dev/null; test \$? -eq 4"
check "the holds are in the audit trail" sh -c "'$LUMBUNG' audit --json | grep -q '\"verb\":\"unprotect\"'"
check "prune is in the audit trail with what it did" sh -c "'$LUMBUNG' audit --json | grep -q '4 removed'"
as opd-dinkes "$LUMBUNG" prune --dry-run --dataset dinkes/nothing >"$T/none.txt" 2>&1
check "a dataset with no snapshots prunes nothing and says so" grep -q "^0 snapshots, 0 would be removed" "$T/none.txt"
check_fails "an unknown option is a usage error" "$LUMBUNG" prune --bogus
done_testing
