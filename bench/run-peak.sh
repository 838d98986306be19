#!/bin/bash
# run-peak.sh - lumbungd's peak resident memory over a week of nightly
# backups, and what the nights cost it, for one or more builds side by side.
#
#   bench/run-peak.sh --builddir DIR [--builddir DIR2 ...] [--runs R]
#                     [--data NIGHT0] [--nights N] [--out DIR]
#
# Each run of each build: a fresh lumbungd on a fresh local store (the
# configuration of run-compare.sh: the default zstd:1, max_jobs 4), a fresh copy of
# night 0, backed up; then N times (default 7) `gen_dataset.py --mutate K`
# and night K backed up by the same daemon, the way the comparison runs
# it.  After each night the daemon's VmHWM is read; CPU is lumbungd's user
# + system seconds for nights 1-N together.  The page cache holds the data
# before each backup, and 3 GiB of free memory is touched before the
# daemon starts (common.sh, prefault).  The builds alternate run by run
# (A B A B ...), because the machines are shared: compare builds within
# one invocation, not across invocations.
#
# Prints one line per run and a table of the medians per build (peak after
# each night, CPU); writes both to DIR/peak.md (default bench/out/peak).
#
#   --builddir DIR  where daemon/lumbungd and tools/lumbung were built
#                   (repeat for several builds; default: this checkout)
#   --runs R        runs per build (default 3)
#   --data NIGHT0   night 0 to copy (default: generate 1024 MiB, 37
#                   tenants, seed 20240301, into DIR/night-0 once)
#   --nights N      nightly backups after night 0 (default 7)
#
# Needs python3; about 45 s per run at 1 GiB on the 2-core test machine.
# LUMBUNG_BENCH_GEN overrides the path of gen_dataset.py.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
builds=()
runs=3
data=
nights=7
out=$here/out/peak
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) builds+=("$(cd "$2" && pwd)"); shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--data) data=$2; shift 2 ;;
	--nights) nights=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "run-peak.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
[ ${#builds[@]} -gt 0 ] || builds=("${top_builddir:-$(cd "$here/.." && pwd)}")
for b in "${builds[@]}"; do
	[ -x "$b/daemon/lumbungd" ] && [ -x "$b/tools/lumbung" ] ||
		{ echo "run-peak.sh: no daemon/lumbungd and tools/lumbung in $b (build first)" >&2; exit 2; }
done
gen=${LUMBUNG_BENCH_GEN:-$here/../../shared/bench/gen_dataset.py}
[ -f "$gen" ] || { echo "run-peak.sh: gen_dataset.py not found at $gen (set LUMBUNG_BENCH_GEN)" >&2; exit 2; }
mkdir -p "$out"
if [ -z "$data" ]; then
	data=$out/night-0
	if [ ! -d "$data" ]; then
		say "generating night 0 (1024 MiB, 37 tenants) into $data"
		python3 "$gen" --out "$data" --tenants 37 --total-mb 1024 --seed 20240301 >/dev/null
	fi
fi
W=$(mktemp -d "$out/work.XXXXXX")
trap 'stop_daemon; rm -rf "$W"' EXIT
trap 'exit 143' TERM HUP INT

# one_run BUILD: sets $line to "HWM0 ... HWMn CPU"
one_run() {
	local b=$1 r=$W/run out="" c1=0 n c
	rm -rf "$r"
	mkdir -p "$r"
	cp -a "$data" "$r/data"
	prefault 3 >/dev/null
	start_lumbungd "$b/daemon/lumbungd" "$b/tools/lumbung" "$r" "$W/lumbungd.log"
	for n in $(seq 0 "$nights"); do
		[ "$n" -gt 0 ] && python3 "$gen" --out "$r/data" --mutate "$n" >/dev/null 2>&1
		warm "$r/data"
		[ "$n" = 1 ] && c1=$(proc_cpu "$DPID")
		"$b/tools/lumbung" backup --dataset bench/all "$r/data" >/dev/null 2>>"$W/client.log" ||
			{ say "backup of night $n failed"; tail -3 "$W/client.log" >&2; exit 1; }
		out="$out $(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$DPID/status")"
	done
	c=$(proc_cpu "$DPID")
	stop_daemon
	line="$out $(awk -v a="$c" -v b="$c1" 'BEGIN { printf "%.2f", a - b }')"
}

res=$W/results
: >"$res"
for run in $(seq 1 "$runs"); do
	for k in "${!builds[@]}"; do
		one_run "${builds[$k]}"
		echo "$k $line" >>"$res"
		say "build $((k + 1)) run $run: VmHWM MiB after nights 0-$nights:${line% *}; CPU nights 1-$nights ${line##* } s"
	done
done

{
	echo "# lumbungd's peak over $nights nights (\`bench/run-peak.sh\`)"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $runs run(s) per build, alternated; night 0: $data."
	echo
	for k in "${!builds[@]}"; do
		b=${builds[$k]}
		echo "- build $((k + 1)): $b ($("$b/tools/lumbung" --version 2>/dev/null | head -1 || echo unknown)," \
			"git $(git -C "$b" rev-parse --short HEAD 2>/dev/null || echo unknown))"
	done
	echo
	printf '| build |'
	for n in $(seq 0 "$nights"); do printf ' night %s |' "$n"; done
	printf ' CPU nights 1-%s (s) |\n|---|' "$nights"
	for n in $(seq 0 "$nights"); do printf -- '---:|'; done
	printf -- '---:|\n'
	for k in "${!builds[@]}"; do
		printf '| %s | ' "$((k + 1))"
		awk -v k="$k" '$1 == k { $1 = ""; print }' "$res" | python3 -c '
import sys, statistics
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
cols = list(zip(*rows))
print(" ".join("%s |" % (("%.2f" if i == len(cols) - 1 else "%.0f") % statistics.median(c)) for i, c in enumerate(cols)))'
	done
	echo
	echo "Medians per column; VmHWM in MiB after each night (a peak never falls), every run:"
	echo
	awk '{ k = $1; $1 = ""; print "    build " k + 1 ":" $0 }' "$res"
} >"$out/peak.md"
cat "$out/peak.md"
