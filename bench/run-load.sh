#!/bin/bash
# Throughput per core, one backup against 37 concurrent ones (issue 9,
# "Load": the goal is 37 jobs within 30% of the single job's figure per
# core).  Each phase runs a fresh lumbungd on a fresh store and backs up the
# same amount of fresh random data (so nothing deduplicates):
#   single:     one backup of 37 files of --mb MiB each;
#   concurrent: 37 tenants back up one file of --mb MiB each, all at once
#               (max_jobs = 37 so none waits for a slot, or --max-jobs).
# Per core = bytes / CPU seconds spent by lumbungd and the clients together
# (user + system, from /proc and the shell's `times`); wall throughput is
# given too.  Prints one table and writes it to DIR/load.md.
#
#   bench/run-load.sh [--builddir DIR] [--mb N] [--max-jobs J] [--runs R]
#                     [--out DIR]
#
# The two phases alternate R times (default 3); the table gives each
# phase's median run (by MiB per CPU-second) and the ratio of the medians.
# Runs as any user (the 37 tenants are served by an administrator's
# backups; tenancy is not what is measured).  Time: about 20 s per run
# with the default --mb 8 on the 2-core test machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bld=${top_builddir:-$here/..}
mb=8
N=37
jobs=$N
runs=3
out="$here/out/load"
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) bld=$2; shift 2 ;;
	--mb) mb=$2; shift 2 ;;
	--max-jobs) jobs=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-load.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
LUMBUNGD=$bld/daemon/lumbungd
LUMBUNG=$bld/tools/lumbung
W=$(mktemp -d "${TMPDIR:-/tmp}/lb-load-XXXXXX")
trap 'kill "${dpid:-}" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
mkdir -p "$out"
tick=$(getconf CLK_TCK)

daemon_cpu() { awk -v t="$tick" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }

# phase NAME: starts a daemon on a fresh store, runs `jobs`, prints
# "NAME bytes wall_s cpu_s".
phase() {
	rm -rf "$W/store" "$W/src"
	export LUMBUNG_SOCKET=$W/sock
	{
		printf '[store]\npath = %s/store\n[daemon]\nsocket = %s\nmax_jobs = %d\nlog_level = warning\n' "$W" "$LUMBUNG_SOCKET" "$jobs"
		for i in $(seq -w 1 $N); do printf '[tenant opd%s]\nquota = 100G\nusers = nobody\n' "$i"; done
	} >"$W/lumbung.conf"
	mkdir -p "$W/src/all"
	for i in $(seq -w 1 $N); do
		mkdir -p "$W/src/$i"
		head -c $((mb << 20)) /dev/urandom >"$W/src/$i/data.bin"
		ln "$W/src/$i/data.bin" "$W/src/all/data$i.bin"
	done
	"$LUMBUNGD" --config "$W/lumbung.conf" --foreground 2>>"$W/log" &
	dpid=$!
	for _ in $(seq 200); do "$LUMBUNG" version >/dev/null 2>&1 && break; sleep 0.05; done
	c0=$(daemon_cpu $dpid)
	t0=$(date +%s.%N)
	if [ "$1" = single ]; then
		"$LUMBUNG" backup --dataset opd01/all "$W/src/all" >/dev/null 2>>"$W/clients.log"
	else
		pids=""
		for i in $(seq -w 1 $N); do
			"$LUMBUNG" backup --dataset "opd$i/app" "$W/src/$i" >/dev/null 2>>"$W/clients.log" &
			pids="$pids $!"
		done
		for p in $pids; do wait "$p"; done
	fi
	t1=$(date +%s.%N)
	c1=$(daemon_cpu $dpid)
	# The clients' CPU (user, system): each phase runs in its own subshell,
	# so the second line of `times` is this phase's children only.
	times >"$W/times"
	kids=$(tail -1 "$W/times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); n += a[1] * 60 + a[2] } print n }')
	kill $dpid
	wait $dpid 2>/dev/null || true
	dpid=
	echo "$1 $((N * mb << 20)) $(python3 -c "print($t1 - $t0, $c1 - $c0)") $kids"
}

res=""
for _ in $(seq "$runs"); do
	res="$res
$(phase single)
$(phase concurrent)"
done
python3 - "$res" "$out/load.md" "$(nproc)" "$jobs" "$runs" <<'PY'
import statistics, sys
runs = {"single": [], "concurrent": []}
for line in sys.argv[1].split("\n"):
    if line.strip():
        name, b, w, d, k = line.split()
        b, w, cpu = float(b), float(w), float(d) + float(k)
        runs[name].append((b / 2**20, w, cpu, b / 2**20 / w, b / 2**20 / cpu))
def median(rs):
    rs = sorted(rs, key=lambda r: r[4])
    return rs[len(rs) // 2]
rows = [("1 job",) + median(runs["single"]), ("37 jobs",) + median(runs["concurrent"])]
ratio = rows[1][5] / rows[0][5]
lines = ["| run (median of %s) | MiB | wall s | CPU s (daemon+clients) | MiB/s wall | MiB per CPU-second |" % sys.argv[5],
         "| --- | ---: | ---: | ---: | ---: | ---: |"]
for r in rows:
    lines.append("| %s | %.0f | %.2f | %.2f | %.1f | %.1f |" % r)
lines.append("")
lines.append("every run, MiB per CPU-second: 1 job %s; 37 jobs %s" % (
    " ".join("%.1f" % r[4] for r in runs["single"]), " ".join("%.1f" % r[4] for r in runs["concurrent"])))
lines.append("per-core throughput, 37 jobs / 1 job: %.2f (goal: at least 0.70); %s cores, max_jobs %s" % (ratio, sys.argv[3], sys.argv[4]))
text = "\n".join(lines)
print(text)
open(sys.argv[2], "w").write(text + "\n")
PY
