#!/bin/sh
# Schedules: the calendar expressions a dataset's `schedule` may use elapse
# exactly when systemd says they do (systemd-analyze calendar is the
# independent judge); expressions outside the supported subset are refused
# when the configuration is read, with file and line.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null || skip_all "systemd-analyze not installed"
for e in "*-*-* 01:30" "Mon..Fri 02:00" "Sat,Sun *-*-* 03:15:00" "*-*-01 04:00" "daily" "weekly" "monthly" \
	"*-*-* 0/6:00" "Tue,Thu 23:45" "*-*-* 00:30,02:30" "Fri *-*-* 05:00:30" "Mon..Fri"; do
	ours=$("$LBSTORE" calendar "$e" 5 | while read -r t; do date -d "@$t" '+%Y-%m-%d %H:%M:%S'; done | tr '\n' ' ')
	theirs=$(systemd-analyze calendar --iterations=5 "$e" | grep -E "Next elapse|Iter" |
		sed -E 's/.*: [A-Za-z]{3} ([0-9-]+ [0-9:]+).*/\1/' | tr '\n' ' ')
	check "'$e' elapses when systemd says ($ours)" test "$ours" = "$theirs"
done
for bad in "every night" "*-*-* 25:00" "Mon..Fry 01:00" "*-13-* 01:00" "01:30 extra words here"; do
	printf '[tenant a]\nquota = 1G\n[dataset a/x]\nschedule = %s\n' "$bad" >"$T/bad.conf"
	"$top_builddir/daemon/lumbungd" --check-config --config "$T/bad.conf" >/dev/null 2>"$T/err"
	check "schedule '$bad' is refused at $T/bad.conf:4" grep -q "$T/bad.conf:4: schedule '.*' is not understood" "$T/err"
done
done_testing
