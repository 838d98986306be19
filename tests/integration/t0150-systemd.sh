#!/bin/sh
# The shipped systemd files: the unit passes `systemd-analyze verify` (with
# its paths pointed at this build), sysusers.d creates the service user and
# the admin group, tmpfiles.d creates the state and runtime directories, and
# the sample configuration with its 37 tenants passes --check-config with
# quotas inside the 12.5 TB allocation.
. "$(dirname "$0")/lib.sh"

src=$(cd "${top_srcdir:-.}" && pwd)
command -v systemd-analyze >/dev/null || skip_all "systemd-analyze not installed"
mkdir -p "$T/unit" "$T/man/man1" "$T/man/man5" "$T/man/man8"
abs_daemon=$(cd "$(dirname "$LUMBUNGD")" && pwd)/lumbungd
sed "s|/usr/sbin/lumbungd|$abs_daemon|g" "$src/systemd/lumbungd.service" >"$T/unit/lumbungd.service"
cp "$src/doc/lumbung.1" "$T/man/man1/"
cp "$src/doc/lumbung.conf.5" "$T/man/man5/"
cp "$src/doc/lumbungd.8" "$T/man/man8/"
check "systemd-analyze verify accepts lumbungd.service" \
	sh -c "MANPATH='$T/man' SYSTEMD_LOG_LEVEL=notice systemd-analyze verify '$T/unit/lumbungd.service' 2>'$T/verify.err'; r=\$?; cat '$T/verify.err'; [ \$r -eq 0 ] && ! grep -q . '$T/verify.err'"
abs_tool=$(cd "$(dirname "$LUMBUNG")" && pwd)/lumbung
sed "s|/usr/bin/lumbung|$abs_tool|g" "$src/systemd/lumbung-report.service" >"$T/unit/lumbung-report.service"
cp "$src/systemd/lumbung-report.timer" "$T/unit/"
check "systemd-analyze verify accepts the report timer and service" \
	sh -c "cd '$T/unit' && MANPATH='$T/man' SYSTEMD_LOG_LEVEL=notice systemd-analyze verify lumbungd.service lumbung-report.timer lumbung-report.service 2>'$T/verify2.err'; r=\$?; cat '$T/verify2.err'; [ \$r -eq 0 ] && ! grep -q . '$T/verify2.err'"
sed "s|/usr/bin/lumbung|$abs_tool|g" "$src/systemd/lumbung-prune.service" >"$T/unit/lumbung-prune.service"
cp "$src/systemd/lumbung-prune.timer" "$T/unit/"
check "systemd-analyze verify accepts the prune timer and service" \
	sh -c "cd '$T/unit' && MANPATH='$T/man' SYSTEMD_LOG_LEVEL=notice systemd-analyze verify lumbungd.service lumbung-prune.timer lumbung-prune.service 2>'$T/verify3.err'; r=\$?; cat '$T/verify3.err'; [ \$r -eq 0 ] && ! grep -q . '$T/verify3.err'"
sed "s|/usr/bin/lumbung|$abs_tool|g" "$src/systemd/lumbung-verify.service" >"$T/unit/lumbung-verify.service"
cp "$src/systemd/lumbung-verify.timer" "$T/unit/"
check "systemd-analyze verify accepts the verify timer and service" \
	sh -c "cd '$T/unit' && MANPATH='$T/man' SYSTEMD_LOG_LEVEL=notice systemd-analyze verify lumbungd.service lumbung-verify.timer lumbung-verify.service 2>'$T/verify4.err'; r=\$?; cat '$T/verify4.err'; [ \$r -eq 0 ] && ! grep -q . '$T/verify4.err'"
check "the verify service reads a bounded slice with --read-data --max-duration" \
	grep -qx 'ExecStart=/usr/bin/lumbung check --read-data --max-duration 4h' "$src/systemd/lumbung-verify.service"
systemd-analyze calendar --iterations=3 "$(sed -n 's/^OnCalendar=//p' "$src/systemd/lumbung-verify.timer")" >"$T/cal" 2>&1
check "the verify timer fires once a week" python3 -c "
import re, datetime
ts = [datetime.datetime.strptime(m, '%Y-%m-%d %H:%M:%S') for m in re.findall(r'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', open('$T/cal').read())]
assert len(ts) == 3 and all((b - a).total_seconds() == 604800 for a, b in zip(ts, ts[1:])), ts"
check "the prune timer fires after the last backup of the sample schedules" python3 -c "
import glob, re
last = max(l.split()[-1] for f in glob.glob('$src/etc/tenants.d/*.conf') for l in open(f) if l.startswith('schedule'))
when = re.search(r'^OnCalendar=\*-\*-\* (\d\d:\d\d)$', open('$src/systemd/lumbung-prune.timer').read(), re.M).group(1)
assert last < when, (last, when)"
check "the unit is Type=notify and runs as lumbung" sh -c "grep -qx 'Type=notify' '$src/systemd/lumbungd.service' && grep -qx 'User=lumbung' '$src/systemd/lumbungd.service'"
check "every directive in the unit is commented" sh -c "awk '/^[A-Za-z]+=/{ if (prev !~ /^#/) { print \"uncommented: \" \$0; bad=1 } } { prev=\$0 } END { exit bad }' '$src/systemd/lumbungd.service'"
if command -v systemd-sysusers >/dev/null; then
	mkdir -p "$T/root/etc"
	check "sysusers.d creates the user and the admin group" sh -c "systemd-sysusers --root='$T/root' '$src/systemd/lumbung.sysusers' && grep -q '^lumbung:' '$T/root/etc/passwd' && grep -q '^lumbung-admin:' '$T/root/etc/group'"
fi
if command -v systemd-tmpfiles >/dev/null; then
	check "tmpfiles.d creates the state and runtime directories" sh -c "systemd-tmpfiles --root='$T/root' --create '$src/systemd/lumbung.tmpfiles' && [ -d '$T/root/var/lib/lumbung' ] && [ -d '$T/root/run/lumbung' ]"
fi
mkdir -p "$T/etc/tenants.d"
cp "$src"/etc/tenants.d/*.conf "$T/etc/tenants.d/"
sed "s|^include = .*|include = $T/etc/tenants.d/*.conf|" "$src/etc/lumbung.conf" >"$T/etc/lumbung.conf"
"$LUMBUNGD" --check-config --config "$T/etc/lumbung.conf" >"$T/out" 2>&1
check "the sample configuration is valid" grep -q "valid: 37 tenants" "$T/out"
check "and its quotas fit the allocation (no overcommit warning)" sh -c "! grep -q warning '$T/out'"
done_testing
