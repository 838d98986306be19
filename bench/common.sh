# common.sh - helpers shared by the bench scripts that source it
# (run-rados.sh, run-curve.sh).  Sourced after `set -eu`; the script's own
# name tags its log lines, and its header comment (line 2 up to `set -eu`)
# is its --help.

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -eu/d'
	exit "${1:-0}"
}
say() { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$(basename "$0" .sh)" "$*" >&2; }
now() { date +%s%N; }
# secs T1 T0: nanoseconds from now() to seconds
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a - b) / 1e9 }'; }
# mibs BYTES SECONDS: MiB per second
mibs() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1048576 / s; else print "inf" }'; }
# warm DIR: read every file once, so that the page cache holds the data
warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }
# tree_bytes DIR: the bytes of the regular files under DIR
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
clk_tck=$(getconf CLK_TCK)
# proc_cpu PID: user + system seconds of the process (all its threads) so far
proc_cpu() { awk -v t="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# the daemon the script started, in $DPID: stopped and waited for
DPID=
stop_daemon() {
	[ -n "${DPID:-}" ] || return 0
	kill -TERM "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=
}
