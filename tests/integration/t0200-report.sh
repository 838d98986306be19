#!/bin/bash
# Reports over a store built day by day (the clock is simulated with
# LUMBUNG_TEST_NOW, never by sleeping): growth per day and the forecast
# date come out of the daily usage samples as computed independently here;
# failed jobs are listed per dataset; CSV reads back with a real CSV parser;
# JSON has its documented fields; the store's rows add up to its physical
# total; a tenant member sees only its own tenant and no store totals.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to run as a tenant member"
id opd-dinkes >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin opd-dinkes || skip_all "cannot create a user"
chmod 755 "$T"
write_config
sed -i 's/^quota = 10G$/quota = 40M/' "$T/lumbung.conf"
printf '[dataset dinkes/simpus]\nschedule = *-*-* 01:30\n' >>"$T/lumbung.conf"
day0=1790000000 # a fixed day, midnight UTC plus a little
mkdir -p "$T/src"
declare -a charged
q() { "$LUMBUNG" quota --tenant dinkes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["charged"])'; }
for d in 0 1 2 3 4 5 6 7 8; do
	export LUMBUNG_TEST_NOW=$((day0 + d * 86400))
	start_daemon >/dev/null || { check "lumbungd starts on day $d" false; break; }
	charged[$d]=$(q) # what today's sample (taken at start) holds
	# Day 4's nightly backup does not happen: a missed night.
	if [ "$d" -lt 8 ] && [ "$d" -ne 4 ]; then
		head -c 1500000 /dev/urandom >"$T/src/day$d.bin"
		"$LUMBUNG" backup --dataset dinkes/simpus "$T/src" >/dev/null 2>&1
	fi
	stop_daemon
done
export LUMBUNG_TEST_NOW=$((day0 + 8 * 86400))
check "lumbungd starts on day 8 again" start_daemon
# A failed job: disdik over its quota for one dataset.
sed -i 's/^quota = 40M$/quota = 40M/' "$T/lumbung.conf"
mkdir -p "$T/big"
head -c 3000000 /dev/urandom >"$T/big/x.bin"
"$LUMBUNG" backup --dataset disdik/ok "$T/src" >/dev/null 2>&1
# A source that is not there: the client aborts, the job fails.
"$LUMBUNG" backup --dataset disdik/broken "$T/not-there" >/dev/null 2>&1

"$LUMBUNG" report --format json >"$T/r.json"
check "the JSON report has every documented field" python3 -c "
import json
r = json.load(open('$T/r.json'))
for k in ('generated', 'period_start', 'tenants', 'store'):
    assert k in r, k
t = [x for x in r['tenants'] if x['tenant'] == 'dinkes'][0]
for k in ('tenant', 'name', 'quota', 'soft_quota', 'charged', 'percent', 'exclusive', 'fair_share', 'logical',
          'dedup_ratio', 'compression_ratio', 'snapshots', 'oldest', 'newest', 'growth_per_day_7d',
          'growth_per_day_30d', 'quota_full', 'datasets'):
    assert k in t, k
for k in ('physical', 'capacity', 'free', 'quota_sum', 'overcommit', 'referenced', 'shared', 'unreferenced',
          'overhead', 'growth_per_day_30d', 'capacity_full'):
    assert k in r['store'], k
assert isinstance(t['charged'], int) and t['snapshots'] == 7"
check "growth per day over 7 days is (charge now - charge 7 days ago) / 7" python3 -c "
import json
r = json.load(open('$T/r.json'))
t = [x for x in r['tenants'] if x['tenant'] == 'dinkes'][0]
now, then = ${charged[8]}, ${charged[1]}
assert t['charged'] == now, (t['charged'], now)
assert t['growth_per_day_7d'] == (now - then) // 7, (t['growth_per_day_7d'], (now - then) // 7)
# dinkes first appears in the sample of day 1 (it had nothing on day 0),
# so the 30-day window starts there too.
assert t['growth_per_day_30d'] == (now - then) // 7, t"
check "the quota fills on the date the 30-day growth gives" python3 -c "
import json
r = json.load(open('$T/r.json'))
t = [x for x in r['tenants'] if x['tenant'] == 'dinkes'][0]
now = $LUMBUNG_TEST_NOW
expect = now + (t['quota'] - t['charged']) / t['growth_per_day_30d'] * 86400
assert abs(t['quota_full'] - expect) < 2, (t['quota_full'], expect)"
"$LUMBUNG" report --period 7d --format json >"$T/r7.json"
check "the missed scheduled nights are those of day 4 and of today (no backup yet)" python3 -c "
import json, time
r = json.load(open('$T/r7.json'))
t = [x for x in r['tenants'] if x['tenant'] == 'dinkes'][0]
d = [x for x in t['datasets'] if x['dataset'] == 'simpus'][0]
day = lambda s: time.strftime('%Y-%m-%d', time.localtime(s))
want = [day($day0 + 4 * 86400), day($day0 + 8 * 86400)]
got = [day(s) for s in d['missed_nights']]
assert d['schedule'] == '*-*-* 01:30' and d['missed'] == 2 and got == want, (d, want)
assert all(time.strftime('%H:%M', time.localtime(s)) == '01:30' for s in d['missed_nights'])"
check "the failed job is listed with its dataset and error" python3 -c "
import json
r = json.load(open('$T/r.json'))
t = [x for x in r['tenants'] if x['tenant'] == 'disdik'][0]
d = {x['dataset']: x for x in t['datasets']}
assert d['broken']['failed'] == 1 and d['broken']['last_success'] is None and d['broken']['last_error'], d
assert d['ok']['failed'] == 0 and d['ok']['last_success'] == $LUMBUNG_TEST_NOW, d"
check "exclusive bytes, shared, unreferenced and overhead add up to the physical total" python3 -c "
import json
r = json.load(open('$T/r.json'))
s = r['store']
ex = sum(t['exclusive'] for t in r['tenants'])
assert ex + s['shared'] + s['unreferenced'] + s['overhead'] == s['physical'], (ex, s)"
"$LUMBUNG" report --format csv --output "$T/r.csv"
check "the CSV reads back with a CSV parser, one row per tenant and a header" python3 -c "
import csv, json
rows = list(csv.DictReader(open('$T/r.csv', newline='')))
j = json.load(open('$T/r.json'))
assert len(rows) == len(j['tenants']), (len(rows), len(j['tenants']))
byt = {r['tenant']: r for r in rows}
for t in j['tenants']:
    assert int(byt[t['tenant']]['charged']) == t['charged']
    assert byt[t['tenant']]['name'] == t['name']"
"$LUMBUNG" report >"$T/r.txt"
check "the table fits an 80-column terminal" sh -c "[ \$(awk '{ if (length > m) m = length } END { print m }' '$T/r.txt') -le 80 ]"
check "and lists every tenant" sh -c "grep -q '^dinkes' '$T/r.txt' && grep -q '^disdik' '$T/r.txt'"
# Prometheus: the textfile collector's format, checked by promtool.
check "report --format prom --output writes the file" "$LUMBUNG" report --format prom --output "$T/lumbung.prom"
if command -v promtool >/dev/null; then
	check "promtool check metrics accepts it" sh -c "promtool check metrics <'$T/lumbung.prom'"
fi
check "it holds each tenant's quota, charge and each dataset's last success" sh -c "
	grep -q '^lumbung_tenant_quota_bytes{tenant=\"dinkes\"} 41943040\$' '$T/lumbung.prom' &&
	grep -q '^lumbung_tenant_charged_bytes{tenant=\"dinkes\"} ${charged[8]}\$' '$T/lumbung.prom' &&
	grep -q '^lumbung_last_success_timestamp_seconds{tenant=\"disdik\",dataset=\"ok\"} $LUMBUNG_TEST_NOW\$' '$T/lumbung.prom'"

# HTML: one self-contained page, opened in headless Chromium.
check "report --format html" "$LUMBUNG" report --format html --output "$T/report.html"
check "the page fetches nothing and runs no script" sh -c "! grep -Eqi '<script|src=|href=|@import|url\\(' '$T/report.html'"
if command -v chromium >/dev/null; then
	CHROME="chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$T/chrome"
	$CHROME --enable-logging=stderr --v=0 --dump-dom "file://$T/report.html" >"$T/dom.html" 2>"$T/chrome.err"
	check "Chromium loads it" test -s "$T/dom.html"
	check "with no console error" sh -c "! grep -q 'CONSOLE' '$T/chrome.err'"
	check "and shows one bar per tenant" python3 -c "
import json, re
dom = open('$T/dom.html').read()
bars = re.findall(r'<rect class=\"bar\" data-tenant=\"([a-z0-9_.-]+)\"', dom)
tenants = [t['tenant'] for t in json.load(open('$T/r.json'))['tenants']]
assert sorted(bars) == sorted(tenants), (bars, tenants)
assert 'id=\"store-chart\"' in dom and 'id=\"missed\"' in dom and 'disdik/broken' in dom"
	mkdir -p "${top_builddir:-.}/tests/artifacts"
	$CHROME --window-size=900,1400 --screenshot="$T/report.png" "file://$T/report.html" >/dev/null 2>&1
	check "a screenshot is taken (kept in tests/artifacts)" sh -c "[ -s '$T/report.png' ] && cp '$T/report.png' '${top_builddir:-.}/tests/artifacts/report.png'"
fi

# Labels in Indonesian: from the locale, or from --lang; numbers unchanged.
if locale -a 2>/dev/null | grep -qi '^id_ID.utf-\?8$'; then
	LANG=id_ID.UTF-8 "$LUMBUNG" report >"$T/id.txt"
	check "LANG=id_ID.UTF-8 gives Indonesian labels" sh -c "head -n 1 '$T/id.txt' | grep -q 'KUOTA.*TERPAKAI'"
	LANG=id_ID.UTF-8 "$LUMBUNG" report --format csv >"$T/id.csv"
	check "and leaves CSV numbers as they are" cmp "$T/id.csv" "$T/r.csv"
fi
LANG=C "$LUMBUNG" report --lang id --format html --output "$T/id.html"
check "--lang id translates the page" sh -c "grep -q '<html lang=\"id\">' '$T/id.html' && grep -q 'Pemakaian terhadap kuota' '$T/id.html'"
LANG=C "$LUMBUNG" report --lang en >"$T/en.txt"
check "--lang en keeps English" sh -c "head -n 1 '$T/en.txt' | grep -q 'QUOTA.*CHARGED'"

runuser -u opd-dinkes -- env LUMBUNG_SOCKET="$LUMBUNG_SOCKET" LUMBUNG_TEST_NOW="$LUMBUNG_TEST_NOW" "$LUMBUNG" report --format json >"$T/m.json"
check "a member's report holds only its tenant, no store totals, no exclusive bytes" python3 -c "
import json
r = json.load(open('$T/m.json'))
assert [t['tenant'] for t in r['tenants']] == ['dinkes'], r['tenants']
assert 'store' not in r and r['tenants'][0]['exclusive'] == 0"
# The timers may start a backup up to schedule_delay late: tonight's run
# (01:30, about 12.7 h before the simulated now) is not missed yet when
# the delay is 12 h, and is with the default 10 min.
stop_daemon
sed -i 's/^\[daemon\]$/[daemon]\nschedule_delay = 12h/' "$T/lumbung.conf"
start_daemon >/dev/null
check "a night within the timers' random delay is not missed yet" sh -c "'$LUMBUNG' report --period 7d --format json | python3 -c '
import json, sys, time
r = json.load(sys.stdin)
d = [x for t in r[\"tenants\"] if t[\"tenant\"] == \"dinkes\" for x in t[\"datasets\"] if x[\"dataset\"] == \"simpus\"][0]
day = lambda s: time.strftime(\"%Y-%m-%d\", time.localtime(s))
assert d[\"missed\"] == 1 and [day(s) for s in d[\"missed_nights\"]] == [day($day0 + 4 * 86400)], d'"
done_testing
