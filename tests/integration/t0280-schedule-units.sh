#!/bin/sh
# lumbung-generator: every dataset with a schedule gets a timer named as
# systemd-escape names its TENANT/NAME (one name holds '-' and '.'), with the
# schedule, Persistent= and the configured RandomizedDelaySec=, enabled by a
# timers.target.wants link; a dataset without a schedule gets none.  The
# timers and the shipped template pass `systemd-analyze verify`.  A broken
# configuration, schedule_delay above 12h among them, writes nothing and
# exits 1 with one FILE:LINE line; a missing one writes nothing and exits 0.
. "$(dirname "$0")/lib.sh"

src=$(cd "${top_srcdir:-.}" && pwd)
command -v systemd-escape >/dev/null || skip_all "systemd-escape not installed"
command -v systemd-analyze >/dev/null || skip_all "systemd-analyze not installed"
GEN="$top_builddir/tools/lumbung-generator"

# The main file, and the tenants with their datasets in an included file,
# whose lines the errors below name.
mkdir -p "$T/etc/tenants.d"
main_conf() {
	cat >"$T/etc/lumbung.conf" <<CONF
[store]
path = $T/store
[daemon]
socket = $T/lumbungd.sock
$1
include = $T/etc/tenants.d/*.conf
CONF
}
OPD="$T/etc/tenants.d/10-opd.conf"
cat >"$OPD" <<'CONF'
[tenant dinkes]
quota = 10G
[tenant kec-dumai.kota]
quota = 10G

[dataset dinkes/simpus]
source = /srv/opd/dinkes/simpus
schedule = *-*-* 01:30

[dataset kec-dumai.kota/arsip-2.x]
source = /srv/opd/kec-dumai.kota/arsip
schedule = Mon..Fri 02:45

[dataset dinkes/adhoc]
source = /srv/opd/dinkes/adhoc
CONF
main_conf ""
export LUMBUNG_CONFIG="$T/etc/lumbung.conf"

# run_gen DIR: the generator as systemd runs it (three directories), into a
# fresh DIR; its exit status in $T/rc, its stderr in $T/gen.err.
run_gen() {
	rm -rf "$1" && mkdir -p "$1" "$T/early" "$T/late"
	"$GEN" "$1" "$T/early" "$T/late" 2>"$T/gen.err"
	echo $? >"$T/rc"
}

# is_empty DIR: nothing at all was written into DIR.
is_empty() { [ -z "$(find "$1" -mindepth 1)" ]; }

run_gen "$T/gen"
check "the generator exits 0 and says nothing" sh -c "[ \$(cat '$T/rc') -eq 0 ] && ! grep -q . '$T/gen.err'"

# Each scheduled dataset: "TENANT/NAME|schedule".
for entry in "dinkes/simpus|*-*-* 01:30" "kec-dumai.kota/arsip-2.x|Mon..Fri 02:45"; do
	ds=${entry%%|*}
	sched=${entry#*|}
	inst=$(systemd-escape "$ds")
	timer="lumbung-backup@$inst.timer"
	f="$T/gen/$timer"
	check "$ds: $timer exists" test -f "$f"
	check "$ds: OnCalendar=$sched" grep -qxF "OnCalendar=$sched" "$f"
	check "$ds: Persistent=true" grep -qxF "Persistent=true" "$f"
	check "$ds: RandomizedDelaySec=10min (the default schedule_delay)" grep -qxF "RandomizedDelaySec=10min" "$f"
	check "$ds: AccuracySec=1min" grep -qxF "AccuracySec=1min" "$f"
	check "$ds: starts lumbung-backup@$inst.service" grep -qxF "Unit=lumbung-backup@$inst.service" "$f"
	check "$ds: the instance unescapes to the dataset" test "$(systemd-escape --unescape "$inst")" = "$ds"
	check "$ds: SourcePath= names the file that defines it" grep -qxF "SourcePath=$OPD" "$f"
	link="$T/gen/timers.target.wants/$timer"
	check "$ds: timers.target.wants links it relatively" sh -c "[ -L '$link' ] && [ \"\$(readlink '$link')\" = '../$timer' ]"
	check "$ds: and the link resolves to the timer" sh -c "t=\$(readlink -e '$link') && [ \"\$t\" = \"\$(readlink -e '$f')\" ]"
	check "$ds: systemd-analyze calendar accepts its schedule" \
		systemd-analyze calendar "$(sed -n 's/^OnCalendar=//p' "$f")"
done
check "the escaped name of kec-dumai.kota/arsip-2.x is the expected one" \
	test -f "$T/gen/lumbung-backup@kec\\x2ddumai.kota-arsip\\x2d2.x.timer"
check "no timer for the dataset without a schedule" sh -c "! ls '$T/gen' '$T/gen/timers.target.wants' | grep -q adhoc"
expected=$(printf '%s\n' "lumbung-backup@$(systemd-escape dinkes/simpus).timer" \
	"lumbung-backup@$(systemd-escape kec-dumai.kota/arsip-2.x).timer" | LC_ALL=C sort)
check "exactly the two timers and their links, nothing else" sh -c "
	[ \"\$(cd '$T/gen' && find . -mindepth 1 -maxdepth 1 ! -name timers.target.wants -printf '%P\n' | LC_ALL=C sort)\" = '$expected' ] &&
	[ \"\$(cd '$T/gen/timers.target.wants' && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort)\" = '$expected' ]"
check "the early directory is left alone" is_empty "$T/early"
check "the late directory is left alone" is_empty "$T/late"

# systemd itself reads the timers and the template service: the timer, the
# instance of the template it starts (found beside it), and lumbungd.service
# which that requires.  ExecStart must name an existing binary, so the
# units point at this build; the man pages they name are found via MANPATH.
mkdir -p "$T/man/man1" "$T/man/man5" "$T/man/man8"
cp "$src/doc/lumbung.1" "$T/man/man1/"
cp "$src/doc/lumbung.conf.5" "$T/man/man5/"
cp "$src/doc/lumbungd.8" "$src/doc/lumbung-generator.8" "$T/man/man8/"
abs_tool=$(cd "$(dirname "$LUMBUNG")" && pwd)/lumbung
abs_daemon=$(cd "$(dirname "$LUMBUNGD")" && pwd)/lumbungd
sed "s|/usr/bin/lumbung|$abs_tool|g" "$src/systemd/lumbung-backup@.service" >"$T/gen/lumbung-backup@.service"
sed "s|/usr/sbin/lumbungd|$abs_daemon|g" "$src/systemd/lumbungd.service" >"$T/gen/lumbungd.service"
check "the template runs 'lumbung run %I'" grep -qxF "ExecStart=$abs_tool run %I" "$T/gen/lumbung-backup@.service"
for ds in dinkes/simpus kec-dumai.kota/arsip-2.x; do
	inst=$(systemd-escape "$ds")
	check "systemd-analyze verify accepts the timer of $ds and the service it starts" sh -c "
		MANPATH='$T/man' SYSTEMD_LOG_LEVEL=notice systemd-analyze verify \
			'$T/gen/lumbung-backup@$inst.timer' '$T/gen/lumbung-backup@$inst.service' 2>'$T/verify.err'
		r=\$?; cat '$T/verify.err'; [ \$r -eq 0 ] && ! grep -q . '$T/verify.err'"
done
rm -f "$T/gen/lumbung-backup@.service" "$T/gen/lumbungd.service"

# Running again (a second daemon-reload) replaces the files in place.
"$GEN" "$T/gen" "$T/early" "$T/late" 2>"$T/gen.err"
check "a second run succeeds and leaves the same files" sh -c "[ $? -eq 0 ] &&
	[ \"\$(cd '$T/gen' && find . -mindepth 1 -maxdepth 1 ! -name timers.target.wants -printf '%P\n' | LC_ALL=C sort)\" = '$expected' ]"

# schedule_delay becomes RandomizedDelaySec=, as systemd writes spans.
for d in "2h|2h" "90min|90min" "45s|45s" "0|0"; do
	main_conf "schedule_delay = ${d%%|*}"
	run_gen "$T/gen-delay"
	check "schedule_delay = ${d%%|*} gives RandomizedDelaySec=${d#*|}" \
		grep -qxF "RandomizedDelaySec=${d#*|}" "$T/gen-delay/lumbung-backup@dinkes-simpus.timer"
done

# A configuration error: exit 1, one line naming the file and line, nothing
# written (not even the timers of the datasets before the mistake).
main_conf ""
cp "$OPD" "$T/opd.good"
sed 's/^schedule = Mon..Fri 02:45$/schedule = weeknights at 02:45/' "$T/opd.good" >"$OPD"
run_gen "$T/gen-bad"
check "a bad schedule: exit 1" test "$(cat "$T/rc")" -eq 1
check "a bad schedule: one line on stderr naming $OPD:12" sh -c "
	[ \$(wc -l <'$T/gen.err') -eq 1 ] && grep -q '^lumbung-generator: $OPD:12: schedule .* is not understood' '$T/gen.err'"
check "a bad schedule: nothing written" is_empty "$T/gen-bad"
cp "$T/opd.good" "$OPD"

main_conf "schedule_delay = 13h"
run_gen "$T/gen-bad"
check "schedule_delay = 13h: exit 1" test "$(cat "$T/rc")" -eq 1
check "schedule_delay = 13h: one line naming $T/etc/lumbung.conf:5" sh -c "
	[ \$(wc -l <'$T/gen.err') -eq 1 ] && grep -q '^lumbung-generator: $T/etc/lumbung.conf:5: schedule_delay must be a duration from 0 to 12h' '$T/gen.err'"
check "schedule_delay = 13h: nothing written" is_empty "$T/gen-bad"

# A write that fails half way (here the wants directory is a file) takes
# back the timers already written.
main_conf ""
rm -rf "$T/gen-fail" && mkdir "$T/gen-fail" && : >"$T/gen-fail/timers.target.wants"
"$GEN" "$T/gen-fail" "$T/early" "$T/late" 2>"$T/gen.err"
check "a failed write: exit 1, naming what could not be written" sh -c "[ $? -eq 1 ] &&
	grep -q '^lumbung-generator: cannot write $T/gen-fail/timers.target.wants/' '$T/gen.err'"
check "a failed write: the timers written before it are removed" \
	test "$(cd "$T/gen-fail" && find . -mindepth 1 -printf '%P\n')" = "timers.target.wants"

# Installed but not configured: no timers, no error.
(LUMBUNG_CONFIG="$T/etc/nowhere.conf" && export LUMBUNG_CONFIG && run_gen "$T/gen-none")
check "no configuration file: exit 0" test "$(cat "$T/rc")" -eq 0
check "no configuration file: nothing said" sh -c "! grep -q . '$T/gen.err'"
check "no configuration file: nothing written" is_empty "$T/gen-none"

check "--help prints the usage on stdout" sh -c "'$GEN' --help | grep -q '^Usage: lumbung-generator NORMAL_DIR'"
"$GEN" >/dev/null 2>"$T/err"
check "no directory: exit 2 with a hint" sh -c "[ $? -eq 2 ] && grep -q \"try 'lumbung-generator --help'\" '$T/err'"
done_testing
