# common.sh - helpers shared by the bench scripts that source it
# (run-rados.sh, run-curve.sh, run-compare.sh, run-load.sh).  Sourced after `set -eu`; the script's own
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

# The compression of Lumbung's stores in the bench scripts: the default
# (run-compare.sh --compression changes it).
lb_compression=${lb_compression:-zstd:1}

# start_lumbungd LUMBUNGD LUMBUNG DIR LOG: a lumbungd on a fresh local
# store in DIR/store ($lb_compression, max_jobs 4, one tenant "bench"), its socket
# in DIR (in a directory of its own under /tmp when DIR is too long for a
# socket's name; stop_daemon removes it), its output appended to LOG; sets
# DPID and LUMBUNG_SOCKET and returns once it answers
start_lumbungd() {
	local d=$3 i=0 sock=$3/sock
	[ ${#sock} -lt 100 ] || sock=$(mktemp -d /tmp/lbsock-XXXXXX)/sock
	cat >"$d/lumbung.conf" <<CONF
[store]
path = $d/store
compression = $lb_compression
[daemon]
socket = $sock
max_jobs = 4
log_level = info
[tenant bench]
name = Benchmark
CONF
	export LUMBUNG_SOCKET=$sock
	"$1" --config "$d/lumbung.conf" --foreground >>"$4" 2>&1 &
	DPID=$!
	until "$2" version >/dev/null 2>&1; do
		kill -0 "$DPID" 2>/dev/null || { say "lumbungd exited at start"; tail -5 "$4" >&2; exit 1; }
		i=$((i + 1))
		[ $i -lt 400 ] || { say "lumbungd did not answer within 20 s"; exit 1; }
		sleep 0.05
	done
}

# the daemon the script started, in $DPID: stopped and waited for
DPID=
stop_daemon() {
	[ -n "${DPID:-}" ] || return 0
	kill -TERM "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=
	case ${LUMBUNG_SOCKET:-} in /tmp/lbsock-*) rm -rf "$(dirname "$LUMBUNG_SOCKET")" ;; esac
}

# prefault [GIB]: touches GIB GiB of free memory (all of MemFree but 1
# GiB when not given, never more, so that no page cache is evicted) and
# gives it back; prints "GIB SECONDS SLOWEST" (GiB touched, seconds in all,
# seconds of the slowest GiB).  In a virtual machine whose host backs a
# page only when the guest first writes it, and takes free pages back (the
# free page reporting of virtio_balloon; on these machines
# /sys/module/page_reporting), a write to a page not used for a while cost
# about 3 s of system time per GiB against 0.4 s for one used just before
# (dd of 1 GiB files to /dev/shm, 2026-12-07; cold again after 30 s idle).
# The allocator hands out the pages freed last first, so touching what a
# step will need just before it gives each tool the same warm machine;
# otherwise the step that first fills the page cache or a tmpfs target
# pays the host's faults (a restore of everything: 4.1 s instead of 1.7).
prefault() {
	python3 - "${1:-0}" <<'PY'
import sys, time
GIB = 1 << 30
free_kib = 0
for line in open("/proc/meminfo"):
    if line.startswith("MemFree:"):
        free_kib = int(line.split()[1])
n = max(0, free_kib * 1024 // GIB - 1)
if int(sys.argv[1]) > 0:
    n = min(n, int(sys.argv[1]))
held, slowest, t0 = [], 0.0, time.monotonic()
for _ in range(n):
    t = time.monotonic()
    b = bytearray(GIB)          # calloc'd: mapped, not yet touched
    b[::4096] = b"\1" * (GIB // 4096)
    held.append(b)
    slowest = max(slowest, time.monotonic() - t)
print(n, "%.1f" % (time.monotonic() - t0), "%.2f" % slowest)
PY
}
