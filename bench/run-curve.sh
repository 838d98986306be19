#!/bin/bash
# run-curve.sh - the cost curve: Lumbung's figures at several data sizes.
#
#   bench/run-curve.sh [--builddir DIR] [--sizes "256 1024 4096 16384"]
#                      [--runs R] [--snapshots S] [--files "20000 200000"]
#                      [--out DIR] [--no-verify]
#
# For each size N (MiB of night 0, gen_dataset.py --tenants 37 --seed
# 20240301) and each of R runs: a fresh lumbungd on a fresh local store, a
# fresh copy of night 0 (cp -a), and, timed, as in run-compare.sh (one
# dataset holding all 37 tenants, the page cache warm, sync before each
# step):
#   n0        initial backup
#   n1        night 1 (gen_dataset.py --mutate 1) backed up
#   nochange  the same again, nothing changed
#   restore   everything (@latest) into an empty directory next to the data
#   one       one file: the largest file of tenant t19
# then S more no-change backups (not timed) to see what snapshots cost the
# daemon's memory.  After each step the daemon's resident memory (VmRSS) is
# read; the peak (VmHWM) at the end; the chunks from `lumbung backup --json`
# (new_chunks of n0 + n1 = the distinct chunks in the store), the index's
# size on disk, the store's size.  The first run of each size compares its
# restore with the data (diff -r, not timed) unless --no-verify.
#
# Then the files probe: F files (each in --files) of 1 KiB drawn from 64
# distinct contents in 100 directories, so that the files grow and the
# chunks do not: backed up by a fresh daemon, its peak and final resident
# memory and the client's peak.
#
# Results accumulate in DIR/curve.tsv (one line per size, run and figure): a
# later invocation with other --sizes adds to it (the same size replaces its
# earlier lines), and DIR/curve.md is written from all of it: the medians per
# size, seconds per GiB (flat = linear), memory against chunks, files and
# snapshots.  Logs in DIR/logs/.
#
#   --builddir DIR  where daemon/lumbungd and tools/lumbung were built
#                   (default: this checkout; also $top_builddir)
#   --sizes LIST    night-0 sizes in MiB (default "256 1024 4096 16384")
#   --runs R        runs per size (default 3; 1 is enough at 16 GiB, where
#                   a run takes about 15 min)
#   --snapshots S   further no-change backups per run (default 10)
#   --files LIST    file counts of the files probe ("" skips it; default
#                   "20000 200000")
#   --out DIR       results, logs and the generated night 0 of each size
#                   (default bench/out/curve; night 0 is kept for reuse:
#                   DIR/night0-N, about N MiB each)
#   --no-verify     skip the diff -r of the first restore
#
# Disk: night 0, its copy, the restore and the store: about 3.5 x N for the
# largest N (16 GiB: 56 GiB).  Needs python3, GNU time, diffutils.
# LUMBUNG_BENCH_GEN overrides the path of gen_dataset.py.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
top=$(cd "$here/.." && pwd)
bld=${top_builddir:-$top}
sizes="256 1024 4096 16384"
runs=3
snaps=10
files="20000 200000"
out=$top/bench/out/curve
verify=1
seed=20240301
tenants=37

while [ $# -gt 0 ]; do
	case $1 in
	--builddir) bld=$2; shift 2 ;;
	--sizes) sizes=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--snapshots) snaps=$2; shift 2 ;;
	--files) files=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--no-verify) verify=0; shift ;;
	-h | --help) usage 0 ;;
	*) echo "run-curve.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
for n in $sizes $runs $snaps $files; do
	case $n in
	*[!0-9]* | '' | 0) echo "run-curve.sh: --sizes, --runs, --snapshots and --files take positive numbers, not '$n'" >&2; exit 2 ;;
	esac
done

gen=${LUMBUNG_BENCH_GEN:-$top/../shared/bench/gen_dataset.py}
bld=$(cd "$bld" && pwd)
for b in "$bld/daemon/lumbungd" "$bld/tools/lumbung"; do
	[ -x "$b" ] || { echo "run-curve.sh: $b not built; run 'make' in $bld first" >&2; exit 1; }
done
[ -f "$gen" ] || { echo "run-curve.sh: gen_dataset.py not found at $gen (set LUMBUNG_BENCH_GEN)" >&2; exit 1; }
for t in python3 diff /usr/bin/time; do
	command -v "$t" >/dev/null 2>&1 || { echo "run-curve.sh: $t missing (apt-get install python3 diffutils time)" >&2; exit 1; }
done

mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
log=$out/logs
tsv=$out/curve.tsv
[ -f "$tsv" ] || printf 'size_mb\trun\tfigure\tvalue\n' >"$tsv"

W=$(mktemp -d "${TMPDIR:-/tmp}/lb-curve-XXXXXX")
trap 'stop_daemon; rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# the binaries as they are now: a rebuild during the run changes nothing
mkdir "$W/bin"
cp "$bld/daemon/lumbungd" "$bld/tools/lumbung" "$W/bin/"
LUMBUNGD=$W/bin/lumbungd
LUMBUNG=$W/bin/lumbung
version=$("$LUMBUNG" --version 2>/dev/null | head -1 || echo unknown)
commit=$(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown)

kib() { awk -v k="^$1:" '$0 ~ k { print $2 }' "/proc/$DPID/status"; }
jnum() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# put SIZE RUN FIGURE VALUE
put() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$tsv"; }

# start_daemon DIR: a fresh store in DIR/store, the socket in DIR
start_daemon() { start_lumbungd "$LUMBUNGD" "$LUMBUNG" "$1" "$log/lumbungd.log"; }

# timed SIZE RUN STEP CMD...: sync, run CMD under GNU time into
# logs/SIZE-RUN-STEP.out; records STEP_s, STEP_client_kib and the daemon's
# VmRSS after it as STEP_rss_kib
timed() {
	local n=$1 r=$2 step=$3 t0 t1 rc=0
	shift 3
	sync
	t0=$(now)
	/usr/bin/time -f '%M' -o "$log/$n-$r-$step.time" "$@" >"$log/$n-$r-$step.out" 2>"$log/$n-$r-$step.err" || rc=$?
	t1=$(now)
	if [ "$rc" -ne 0 ]; then
		say "FAILED ($rc): size $n run $r $step: $*"
		tail -5 "$log/$n-$r-$step.err" >&2
		exit 1
	fi
	T=$(secs "$t1" "$t0")
	put "$n" "$r" "${step}_s" "$T"
	put "$n" "$r" "${step}_client_kib" "$(tail -1 "$log/$n-$r-$step.time")"
	put "$n" "$r" "${step}_rss_kib" "$(kib VmRSS)"
	say "size $n run $r $step: $T s"
}

night0() {   # night0 N: the generated night 0 of N MiB, made once
	local d=$out/night0-$1
	if [ ! -f "$d/.genstate.json" ]; then
		say "generating $1 MiB, $tenants tenants (night 0) into $d"
		rm -rf "$d" "$d.tmp"
		python3 "$gen" --out "$d.tmp" --tenants "$tenants" --total-mb "$1" --seed "$seed" >"$log/gen-$1.txt" 2>&1
		mv "$d.tmp" "$d"
	fi
	echo "$d"
}

run_size() {
	local n=$1 r=$2 d=$W/run src data one b0 b1
	src=$(night0 "$n")
	rm -rf "$d" && mkdir -p "$d/one" "$d/restore"
	data=$d/data
	cp -a "$src" "$data"
	# drop this size's earlier lines for this run
	awk -F'\t' -v n="$n" -v r="$r" 'NR == 1 || $1 != n || $2 != r' "$tsv" >"$tsv.new" && mv "$tsv.new" "$tsv"
	one=$(cd "$data" && find t19-* -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
	b0=$(tree_bytes "$data")
	put "$n" "$r" bytes0 "$b0"
	put "$n" "$r" files0 "$(find "$data" -type f ! -name .genstate.json | wc -l)"
	start_daemon "$d"
	put "$n" "$r" start_rss_kib "$(kib VmRSS)"

	warm "$data"
	timed "$n" "$r" n0 "$LUMBUNG" backup --json --dataset bench/all "$data"
	put "$n" "$r" n0_new_chunks "$(jnum "$log/$n-$r-n0.out" new_chunks)"
	python3 "$gen" --out "$data" --mutate 1 >>"$log/mutate.log" 2>&1
	b1=$(tree_bytes "$data")
	put "$n" "$r" bytes1 "$b1"
	warm "$data"
	timed "$n" "$r" n1 "$LUMBUNG" backup --json --dataset bench/all "$data"
	put "$n" "$r" n1_new_chunks "$(jnum "$log/$n-$r-n1.out" new_chunks)"
	put "$n" "$r" chunk_refs "$(jnum "$log/$n-$r-n1.out" chunks)"
	timed "$n" "$r" nochange "$LUMBUNG" backup --json --dataset bench/all "$data"
	timed "$n" "$r" restore "$LUMBUNG" restore bench/all@latest --target "$d/restore"
	if [ "$verify" = 1 ] && [ "$r" = 1 ]; then
		diff -r -x .genstate.json "$data" "$d/restore" >"$log/$n-diff.log" 2>&1 ||
			{ say "size $n: the restore differs from the data"; head "$log/$n-diff.log" >&2; exit 1; }
		say "size $n: restore identical to the data (diff -r)"
	fi
	rm -rf "$d/restore"
	timed "$n" "$r" one "$LUMBUNG" restore bench/all@latest "$one" --target "$d/one"
	cmp "$d/one/$one" "$data/$one" || { say "size $n: one-file restore differs"; exit 1; }
	put "$n" "$r" one_bytes "$(stat -c %s "$data/$one")"

	local i=0
	while [ $i -lt "$snaps" ]; do
		"$LUMBUNG" backup --dataset bench/all "$data" >>"$log/snapshots.log" 2>&1
		i=$((i + 1))
	done
	put "$n" "$r" snapshots "$((snaps + 3))"
	put "$n" "$r" snaps_rss_kib "$(kib VmRSS)"
	put "$n" "$r" hwm_kib "$(kib VmHWM)"
	put "$n" "$r" index_bytes "$(du -sb "$d/store/index" | cut -f1)"
	put "$n" "$r" store_bytes "$(du -sb "$d/store" | cut -f1)"
	stop_daemon
	rm -rf "$d"
}

# files F: F files of 1 KiB from 64 distinct contents in 100 directories
run_files() {
	local f=$1 d=$W/files
	rm -rf "$d" && mkdir -p "$d/data"
	say "files probe: $f files"
	python3 - "$d/data" "$f" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
blobs = [bytes([i]) * 1024 for i in range(64)]
for k in range(100):
    os.mkdir(os.path.join(root, "d%03d" % k))
for i in range(n):
    with open(os.path.join(root, "d%03d" % (i % 100), "f%07d" % i), "wb") as fh:
        fh.write(blobs[i % 64])
PY
	awk -F'\t' -v n="files$f" 'NR == 1 || $1 != n' "$tsv" >"$tsv.new" && mv "$tsv.new" "$tsv"
	start_daemon "$d"
	put "files$f" 1 start_rss_kib "$(kib VmRSS)"
	warm "$d/data"
	timed "files$f" 1 n0 "$LUMBUNG" backup --json --dataset bench/all "$d/data"
	put "files$f" 1 n0_new_chunks "$(jnum "$log/files$f-1-n0.out" new_chunks)"
	put "files$f" 1 n0_hwm_kib "$(kib VmHWM)"
	timed "files$f" 1 nochange "$LUMBUNG" backup --json --dataset bench/all "$d/data"
	put "files$f" 1 hwm_kib "$(kib VmHWM)"
	stop_daemon
	rm -rf "$d"
}

say "build $bld ($version, commit $commit); sizes: $sizes; runs $runs; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\t%s\t%s\t%s\n' "# $(date -u '+%Y-%m-%d %H:%M UTC')" "$commit" "load $(cut -d' ' -f1-3 /proc/loadavg)" "sizes $sizes runs $runs" >>"$out/invocations.txt"
for n in $sizes; do
	r=1
	while [ "$r" -le "$runs" ]; do
		run_size "$n" "$r"
		r=$((r + 1))
	done
done
for f in $files; do
	run_files "$f"
done
printf '%s\t%s\n' "# done $(date -u '+%Y-%m-%d %H:%M UTC')" "load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/invocations.txt"
python3 "$here/curve-report.py" "$tsv" "$out/invocations.txt" "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); $version" >"$out/curve.md"
cat "$out/curve.md"
