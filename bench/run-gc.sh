#!/bin/bash
# GC at scale: builds a synthetic store of --chunks chunks (5 million by
# default) with bench/lbgcbench, forgets the two oldest of its snapshots and
# times a collection, three layouts:
#   clustered:  the garbage fills whole packs (deleted), default threshold;
#   scattered:  the garbage is spread over every pack (kept: 86% live);
#   repack-all: the same store as scattered with gc_repack_below = 100, so
#               every pack is rewritten (the worst case for the time).
# Each collection runs in its own process, --runs times on a fresh copy of
# the store; reports medians of its time and of its peak RSS (VmHWM) next
# to the RSS after opening the store (the peak is reset after opening, so it
# is the collection's own), in DIR/gc.md and DIR/gc.json.
#
#   bench/run-gc.sh [--chunks N] [--runs R] [--out DIR]
#
# Disk: about 2 x 1.7 GB for 5 million chunks (the store and one copy).  Time: about
# 25 min for 5 million chunks and 3 runs on the 2-core test machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
chunks=5000000
runs=3
out="$here/out/gc"
while [ $# -gt 0 ]; do
	case $1 in
	--chunks) chunks=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-gc.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
bin=${LUMBUNG_BENCH_LBGCBENCH:-$here/lbgcbench}
[ -x "$bin" ] || { echo "run-gc.sh: build first (make -j2 bench/lbgcbench), or set LUMBUNG_BENCH_LBGCBENCH" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out"

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

{
	echo "# GC at scale"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo
	echo "| layout | chunks | garbage chunks | packs | deleted | repacked | GC s (median) | mark s | sweep s | RSS after open MiB | peak RSS during GC MiB (median) | GC's own MiB | index MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$out/gc.md"
echo "[" >"$out/gc.json"
first=1
for layout in clustered scattered repack-all; do
	case $layout in
	clustered) pop=""; repack=50 ;;
	scattered) pop="--scatter"; repack=50 ;;
	repack-all) pop="--scatter"; repack=100 ;;
	esac
	if [ "$layout" != repack-all ]; then
		rm -rf "$out/store"
		echo "populating $layout store ($chunks chunks)..." >&2
		"$bin" populate "$out/store" --chunks "$chunks" $pop >"$out/populate-$layout.json"
	fi
	t=() m=() s=() p=() o=()
	for r in $(seq "$runs"); do
		rm -rf "$out/copy" && cp -a "$out/store" "$out/copy"
		sync
		j=$("$bin" gc "$out/copy" --repack-below "$repack")
		echo "$j" >"$out/gc-$layout-$r.json"
		t+=("$(field "$j" gc_s)") m+=("$(field "$j" mark_s)") s+=("$(field "$j" sweep_s)")
		p+=("$(field "$j" peak_rss_kib)") o+=("$(field "$j" rss_after_open_kib)")
		[ $first -eq 1 ] || echo "," >>"$out/gc.json"
		first=0
		python3 -c "import json,sys; d=json.loads(sys.argv[1]); d['layout']=sys.argv[2]; print(json.dumps(d))" "$j" "$layout" >>"$out/gc.json"
	done
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %.0f | %.0f |\n' "$layout" \
		"$(field "$j" chunks_live)+$(field "$j" chunks_dead)" "$(field "$j" chunks_dead)" "$(field "$j" packs)" \
		"$(field "$j" packs_deleted)" "$(field "$j" packs_repacked)" "$(median "${t[@]}")" "$(median "${m[@]}")" \
		"$(median "${s[@]}")" "$(awk -v k="$(median "${o[@]}")" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$(median "${p[@]}")" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$(median "${p[@]}")" -v o="$(median "${o[@]}")" 'BEGIN { print (k - o) / 1024 }')" \
		"$(awk -v b="$(field "$j" index_bytes)" 'BEGIN { print b / 1048576 }')" >>"$out/gc.md"
done
echo "]" >>"$out/gc.json"
rm -rf "$out/copy"
cat "$out/gc.md"
