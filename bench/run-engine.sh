#!/bin/bash
# run-engine.sh - the engine benchmark (bench/README.md).
#
#   bench/run-engine.sh [--size-mb N] [--nights K] [--out DIR] [--runs R]
#
# Generates the synthetic dataset (37 tenants, N MiB, night 0 and K nightly
# mutations), measures the machine's raw limits on the same bytes (cat, tar |
# zstd, SHA-256), the engine's stages on one core (lbbench stages), the engine
# ingest, nightly, no-change and restore times through tests/lbstore, and the
# chunk-size experiment (lbbench chunking) over the kept nights.  Prints a
# results table and writes it to DIR/results.md.  Everything goes under DIR
# (default bench/out).  Needs: make (tests/lbstore, bench/lbbench), python3,
# zstd, GNU tar, openssl, GNU time (/usr/bin/time).  No network.
#
# Environment: LUMBUNG_BENCH_GEN overrides the path of gen_dataset.py;
# LUMBUNG_BENCH_LBSTORE and LUMBUNG_BENCH_LBBENCH the binaries (e.g. built
# from another checkout).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

size_mb=1024
nights=7
runs=3
out=$top/bench/out
seed=20240301
tenants=37

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -eu/d'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--size-mb) size_mb=$2; shift 2 ;;
	--nights) nights=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "run-engine.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
case $size_mb$nights$runs in
*[!0-9]*) echo "run-engine.sh: --size-mb, --nights and --runs take numbers" >&2; exit 2 ;;
esac
if [ "$nights" -lt 1 ] || [ "$runs" -lt 1 ] || [ "$size_mb" -lt 1 ]; then
	echo "run-engine.sh: --size-mb, --nights and --runs must be at least 1" >&2
	exit 2
fi

gen=${LUMBUNG_BENCH_GEN:-$top/../shared/bench/gen_dataset.py}
lbstore=${LUMBUNG_BENCH_LBSTORE:-$top/tests/lbstore}
lbbench=${LUMBUNG_BENCH_LBBENCH:-$top/bench/lbbench}

# ---- prerequisites -------------------------------------------------------------
missing=
for t in python3 zstd tar openssl awk find xargs diff du cp; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -x /usr/bin/time ] || missing="$missing time"
if [ -n "$missing" ]; then
	pkgs=
	for t in $missing; do
		case $t in
		diff) t=diffutils ;;
		du|cp) t=coreutils ;;
		find|xargs) t=findutils ;;
		awk) t=gawk ;;
		esac
		case " $pkgs " in *" $t "*) ;; *) pkgs="$pkgs $t" ;; esac
	done
	echo "run-engine.sh: missing:$missing" >&2
	echo "install with: apt-get install$pkgs" >&2
	exit 1
fi
if [ ! -f "$gen" ]; then
	echo "run-engine.sh: dataset generator not found at $gen (set LUMBUNG_BENCH_GEN)" >&2
	exit 1
fi
for b in "$lbstore" "$lbbench"; do
	if [ ! -x "$b" ]; then
		echo "run-engine.sh: $b not built; run 'make' in $top first" >&2
		exit 1
	fi
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
# Only what this script creates is removed.
rm -rf "$out"/data "$out"/night-* "$out"/store-* "$out"/restore "$out"/logs
mkdir -p "$out/logs"
log=$out/logs

# ---- helpers --------------------------------------------------------------------
now() { date +%s.%N; }
# sub T1 T0: seconds between two `now` stamps
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# median of numbers
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# least of numbers (the best run: on a shared machine, the least disturbed)
least() { printf '%s\n' "$@" | sort -g | head -1; }
# mibs BYTES SECONDS: MiB/s
mibs() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1048576 / s; else print "inf" }'; }
# ratio A B: A / B
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
tree_files() { find "$1" -type f | wc -l; }
store_bytes() { du -sb "$1" | awk '{ print $1 }'; }
say() { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$(basename "$0")" "$*" >&2; }
# timed VAR CMD...: runs CMD and stores its wall seconds in VAR
timed() {
	local __var=$1 __t0 __t1
	shift
	__t0=$(now)
	"$@"
	__t1=$(now)
	printf -v "$__var" '%s' "$(sub "$__t1" "$__t0")"
}
# GNU time -v fields
tv_rss_kb() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
tv_cpu() { awk -F': ' '/Percent of CPU this job got/ { sub("%", "", $2); print $2 }' "$1"; }
# warm DIR: reads every file of DIR, so that the next step finds it in the
# page cache (some VMs give clean page cache back to the host within a minute)
warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }
keep_night() { cp -a --reflink=auto "$out/data" "$out/night-$1"; }

t_start=$(now)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cd "$out"

# ---- dataset ------------------------------------------------------------------------
say "generating ${size_mb} MiB, $tenants tenants (night 0) into $out/data"
python3 "$gen" --out "$out/data" --tenants "$tenants" --total-mb "$size_mb" --seed "$seed" | tee "$log/gen.txt" >&2
keep_night 0
src0=$(tree_bytes data)
files0=$(tree_files data)

# ---- raw limits on the same bytes --------------------------------------------------------
say "raw limits: cat, tar | zstd -3 -T1/-T2, sha256"
cat_all() { (cd "$out/data" && find . -type f -print0 | xargs -0 cat >/dev/null); }
timed t_cat cat_all            # warms the page cache
timed t_cat cat_all            # the one that counts
zst() { (cd "$out/data" && tar -cf - . | zstd -3 "-T$1" -q -c | wc -c >"$log/zstd-T$1.size"); }
sha_all() { (cd "$out/data" && find . -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null); }
cp_tree() { cp -a "$out/data" "$out/restore"; }
t_z1=(); t_z2=(); t_dg=(); t_cp=()
for r in $(seq "$runs"); do
	rm -rf restore; sync; warm data; timed t cp_tree; t_cp+=("$t")
	warm data; timed t zst 1; t_z1+=("$t")
	warm data; timed t zst 2; t_z2+=("$t")
	warm data; timed t sha_all; t_dg+=("$t")
done
rm -rf restore
b_cp=$(least "${t_cp[@]}"); t_cp=$(median "${t_cp[@]}")
b_z1=$(least "${t_z1[@]}"); b_z2=$(least "${t_z2[@]}"); b_dg=$(least "${t_dg[@]}")
t_z1=$(median "${t_z1[@]}"); t_z2=$(median "${t_z2[@]}"); t_dg=$(median "${t_dg[@]}")
z_bytes=$(cat "$log/zstd-T2.size")
openssl speed -evp sha256 -bytes 1048576 -seconds 3 >"$log/openssl-speed.txt" 2>/dev/null
# "sha256  1809058.39k" is in 1000s of bytes per second
ossl_mibs=$(awk '/^sha256/ { v = $NF; sub("k", "", v); printf "%.1f", v * 1000 / 1048576 }' "$log/openssl-speed.txt")

# ---- engine stages on one core ------------------------------------------------------------
say "lbbench stages (one core, median of 3)"
"$lbbench" stages night-0 | tee "$log/stages.txt" >&2
"$lbbench" stages --json night-0 >"$log/stages.json"
jget() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$log/stages.json" "$1"; }
s_chunk=$(jget chunk_mibs); s_sha=$(jget sha256_mibs); s_zst=$(jget compress_mibs)
s_unz=$(jget decompress_mibs); s_ratio=$(jget compress_ratio); s_slow=$(jget slowest_stage)
s_serial=$(jget serial_mibs); s_scan=$(jget chunk_scanned_fraction)
s_slow_mibs=$(jget "${s_slow}_mibs")

# ---- engine ingest: initial backup on fresh stores ------------------------------------------
say "initial backup x$runs"
t_init=(); rss=0; cpu_init=()
for r in $(seq "$runs"); do
	rm -rf "store-$r"
	"$lbstore" init "store-$r"
	sync
	warm data
	timed t /usr/bin/time -v -o "$log/time-initial-$r.txt" \
		"$lbstore" backup "store-$r" bench data data >"$log/snap-initial-$r" 2>"$log/backup-initial-$r.txt"
	t_init+=("$t")
	k=$(tv_rss_kb "$log/time-initial-$r.txt")
	if [ "$k" -gt "$rss" ]; then rss=$k; fi
	cpu_init+=("$(tv_cpu "$log/time-initial-$r.txt")")
	say "  run $r: ${t}s $(grep -o 'files.*' "$log/backup-initial-$r.txt")"
done
b_init=$(least "${t_init[@]}")
t_init=$(median "${t_init[@]}")
cpu_init=$(median "${cpu_init[@]}")
logical0=$(awk '{ for (i = 1; i < NF; i++) if ($i == "logical") print $(i + 1) }' "$log/backup-initial-1.txt")
store0=$(store_bytes store-1)

# ---- nightly backup after night 1's changes ---------------------------------------------------
say "night 1: mutate, then nightly backup x$runs (one per store)"
python3 "$gen" --out "$out/data" --mutate 1 | tee -a "$log/gen.txt" >&2
keep_night 1
src1=$(tree_bytes data)
t_n1=(); cpu_n1=()
for r in $(seq "$runs"); do
	sync
	warm data
	warm "store-$r"
	timed t /usr/bin/time -v -o "$log/time-n1-$r.txt" \
		"$lbstore" backup "store-$r" bench data data >"$log/snap-n1-$r" 2>"$log/backup-n1-$r.txt"
	t_n1+=("$t")
	cpu_n1+=("$(tv_cpu "$log/time-n1-$r.txt")")
	say "  run $r: ${t}s $(grep -o 'files.*' "$log/backup-n1-$r.txt")"
done
b_n1=$(least "${t_n1[@]}")
t_n1=$(median "${t_n1[@]}")
cpu_n1=$(median "${cpu_n1[@]}")
new_n1=$(awk '{ for (i = 1; i < NF; i++) if ($i == "new_stored") print $(i + 1) }' "$log/backup-n1-1.txt")
store1=$(store_bytes store-1)

say "no-change backup x$runs"
t_nc=(); cpu_nc=()
for r in $(seq "$runs"); do
	sync
	warm data
	warm "store-$r"
	timed t /usr/bin/time -v -o "$log/time-nc-$r.txt" "$lbstore" backup "store-$r" bench data data >"$log/snap-nc-$r" 2>"$log/backup-nc-$r.txt"
	t_nc+=("$t")
	cpu_nc+=("$(tv_cpu "$log/time-nc-$r.txt")")
	say "  run $r: ${t}s $(grep -o 'files.*' "$log/backup-nc-$r.txt")"
done
b_nc=$(least "${t_nc[@]}")
t_nc=$(median "${t_nc[@]}")
cpu_nc=$(median "${cpu_nc[@]}")

# ---- restore ---------------------------------------------------------------------------------------
say "restore of the latest snapshot x$runs"
t_rs=(); cpu_rs=()
for r in $(seq "$runs"); do
	rm -rf restore
	sync
	warm "store-$r"
	timed t /usr/bin/time -v -o "$log/time-restore-$r.txt" "$lbstore" restore "store-$r" "$(cat "$log/snap-nc-$r")" restore
	t_rs+=("$t")
	cpu_rs+=("$(tv_cpu "$log/time-restore-$r.txt")")
	say "  run $r: ${t}s"
	if [ "$r" = 1 ]; then
		if diff -r data restore >"$log/diff.txt" 2>&1; then
			restore_ok=identical
		else
			restore_ok="DIFFERS (see logs/diff.txt)"
		fi
		say "  diff -r data restore: $restore_ok"
	fi
done
rm -rf restore
b_rs=$(least "${t_rs[@]}")
t_rs=$(median "${t_rs[@]}")
cpu_rs=$(median "${cpu_rs[@]}")

# one large file through the read path, to /dev/null
big=$(cd data && find . -type f -printf '%s %P\n' | sort -n | tail -1)
big_bytes=${big%% *}
big_path=${big#* }
t_one=()
for r in $(seq "$runs"); do
	warm store-1
	timed t "$lbstore" cat store-1 "$(cat "$log/snap-nc-1")" "$big_path" >/dev/null
	t_one+=("$t")
done
b_one=$(least "${t_one[@]}")
t_one=$(median "${t_one[@]}")

say "check --read-data of store-1"
timed t_check "$lbstore" check store-1 --read-data >"$log/check.txt" 2>&1 || true
check_line=$(tail -1 "$log/check.txt")

# The other stores are no longer needed.
for r in $(seq 2 "$runs"); do rm -rf "store-$r"; done

# ---- the remaining nights, into store-1 ---------------------------------------------------------
night_rows=
night_rows="| 0 | $(mib "$src0") | ${t_init}s | $(mib "$store0") | $(ratio "$store0" "$src0")x |"$'\n'
night_rows+="| 1 | $(mib "$src1") | ${t_n1}s | $(mib "$store1") | $(ratio "$store1" "$src1")x |"$'\n'
storeK=$store1
srcK=$src1
for k in $(seq 2 "$nights"); do
	say "night $k: mutate, keep a copy, nightly backup into store-1"
	python3 "$gen" --out "$out/data" --mutate "$k" | tee -a "$log/gen.txt" >&2
	keep_night "$k"
	srcK=$(tree_bytes data)
	sync
	warm data
	warm store-1
	timed t "$lbstore" backup store-1 bench data data >"$log/snap-n$k" 2>"$log/backup-n$k.txt"
	storeK=$(store_bytes store-1)
	night_rows+="| $k | $(mib "$srcK") | ${t}s | $(mib "$storeK") | $(ratio "$storeK" "$srcK")x |"$'\n'
	say "  ${t}s $(grep -o 'files.*' "$log/backup-n$k.txt")"
done

# ---- chunk-size experiment ------------------------------------------------------------------------
say "lbbench chunking over night-0 .. night-$nights"
nightdirs=()
for k in $(seq 0 "$nights"); do nightdirs+=("night-$k"); done
timed t_chunking "$lbbench" chunking "${nightdirs[@]}" >"$log/chunking.md"

# ---- results -------------------------------------------------------------------------------------------
z2=$(mibs "$src0" "$t_z2")
two_core=$(awk -v s="$s_slow_mibs" 'BEGIN { printf "%.1f", 2 * s }')
init_mibs=$(mibs "$src0" "$t_init")
n1_mibs=$(mibs "$src1" "$t_n1")
nc_mibs=$(mibs "$src1" "$t_nc")
rs_mibs=$(mibs "$src1" "$t_rs")
one_mibs=$(mibs "$big_bytes" "$t_one")
gb=953.7 # 1 GB/s in MiB/s
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "**met**" : "**not met**" }'; }
cpu_model=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
t_total=$(sub "$(now)" "$t_start")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
psi=$(awk '/^some/ { sub("avg10=", "", $2); sub("avg60=", "", $3); sub("avg300=", "", $4); print $4 "%" }' /proc/pressure/cpu 2>/dev/null || true)

{
	echo "# Lumbung engine benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); total run time $(printf '%.0f' "$t_total") s"
	echo "- machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
	echo "- load average (1/5/15 min) at start: $load_start, at end: $load_end${psi:+; CPU pressure (some, 5 min) at end: $psi}"
	echo "  (other work on the machine during the run makes every figure slower and noisier)"
	echo "- tools: $(zstd --version | head -1 | sed 's/^\*\** *//; s/ *\**$//'), $(openssl version), $(tar --version | head -1)"
	echo "- checkout: $(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown) (working tree may have changes); binaries: $lbstore, $lbbench"
	echo "- command: bench/run-engine.sh --size-mb $size_mb --nights $nights --runs $runs --out $out"
	echo "- dataset: gen_dataset.py --tenants $tenants --total-mb $size_mb --seed $seed, $nights nightly mutations;"
	echo "  night 0: $files0 files, $(mib "$src0") MiB ($src0 bytes, lbstore read $logical0); night 1: $(mib "$src1") MiB"
	echo "- all figures are MiB of source bytes per wall second, medians of $runs runs unless noted; the data"
	echo "  and the stores are read into the page cache just before each timed step (warm); the raw tools"
	echo "  write nothing durable, lbstore fsyncs its packs, index runs and heads"
	echo
	echo "## Raw limits on the same bytes (night 0)"
	echo
	echo "| | seconds | MiB/s | best run MiB/s | note |"
	echo "|---|---|---|---|---|"
	echo "| \`cat\` of every file (page cache, 2nd run) | $t_cat | $(mibs "$src0" "$t_cat") | | one run |"
	echo "| \`cp -a\` of the tree (same filesystem, not fsynced) | $t_cp | $(mibs "$src0" "$t_cp") | $(mibs "$src0" "$b_cp") | what a restore writes |"
	echo "| \`tar -cf - . \\| zstd -3 -T1\` | $t_z1 | $(mibs "$src0" "$t_z1") | $(mibs "$src0" "$b_z1") | output $(ratio "$z_bytes" "$src0")x of source |"
	echo "| \`tar -cf - . \\| zstd -3 -T2\` | $t_z2 | $z2 | $(mibs "$src0" "$b_z2") | |"
	echo "| \`openssl dgst -sha256\` of every file | $t_dg | $(mibs "$src0" "$t_dg") | $(mibs "$src0" "$b_dg") | one process |"
	echo "| \`openssl speed -evp sha256 -bytes 1048576\` | | $ossl_mibs | | one core, in-cache buffer, 3 s |"
	echo
	echo "## Engine stages on one core (\`lbbench stages night-0\`, median of 3)"
	echo
	echo "| stage | MiB/s | note |"
	echo "|---|---|---|"
	echo "| chunk (lb_cdc_cut, 256K/1M/4M) | $s_chunk | hash rolled over $(awk -v f="$s_scan" 'BEGIN { printf "%.0f", 100 * f }')% of the bytes (the first min bytes of a chunk are skipped) |"
	echo "| SHA-256 per chunk | $s_sha | |"
	echo "| zstd -3 per chunk | $s_zst | compressed to $(printf '%.3f' "$s_ratio") of source |"
	echo "| decompress per chunk | $s_unz | MiB/s of output |"
	echo "| chunk + SHA-256 + zstd in series | $s_serial | one core doing all three |"
	echo
	echo "## Engine ingest and restore (\`tests/lbstore\`)"
	echo
	echo "| | seconds | MiB/s | best run MiB/s | CPU | vs zstd -3 -T2 | vs 2 x slowest stage ($s_slow, $two_core MiB/s) |"
	echo "|---|---|---|---|---|---|---|"
	echo "| initial backup (night 0) | $t_init | $init_mibs | $(mibs "$src0" "$b_init") | $cpu_init% | $(ratio "$init_mibs" "$z2") | $(ratio "$init_mibs" "$two_core") |"
	echo "| nightly backup (night 1) | $t_n1 | $n1_mibs | $(mibs "$src1" "$b_n1") | $cpu_n1% | $(ratio "$n1_mibs" "$z2") | $(ratio "$n1_mibs" "$two_core") |"
	echo "| no-change backup | $t_nc | $nc_mibs | $(mibs "$src1" "$b_nc") | $cpu_nc% | | |"
	echo "| restore all (latest, night 1) | $t_rs | $rs_mibs | $(mibs "$src1" "$b_rs") | $cpu_rs% | | |"
	echo "| one file to /dev/null ($big_path, $(mib "$big_bytes") MiB) | $t_one | $one_mibs | $(mibs "$big_bytes" "$b_one") | | | |"
	echo
	echo "- CPU is GNU time's share of one core (median of the runs); per-run times and CPU are in logs/"
	echo "- peak RSS of the initial backup: $((rss / 1024)) MiB (max of $runs runs, GNU time)"
	echo "- night 1 stored $(mib "$new_n1") MiB new; restore: \`diff -r\` $restore_ok"
	echo "- \`lbstore check store-1 --read-data\` after night 1: ${t_check}s, $check_line"
	echo
	echo "Store size night by night (store-1; one backup per night):"
	echo
	echo "| night | source MiB | backup | store MiB | store / source |"
	echo "|---|---|---|---|---|"
	printf '%s' "$night_rows"
	echo
	echo "## Targets"
	echo
	echo "| target | measured | |"
	echo "|---|---|---|"
	echo "| chunker >= 1 GB/s ($gb MiB/s) on one core | $s_chunk MiB/s | $(verdict "$s_chunk" "$gb") |"
	echo "| ingest >= 60% of 2 x slowest stage ($s_slow: 0.6 x $two_core = $(awk -v s="$two_core" 'BEGIN { printf "%.1f", 0.6 * s }') MiB/s) | initial $init_mibs MiB/s ($(awk -v a="$init_mibs" -v b="$two_core" 'BEGIN { printf "%.0f", 100 * a / b }')%; best run $(mibs "$src0" "$b_init")), CPU $cpu_init% | $(verdict "$init_mibs" "$(awk -v s="$two_core" 'BEGIN { print 0.6 * s }')") |"
	echo "| same, against raw \`tar \\| zstd -3 -T2\` (0.6 x $z2 = $(awk -v s="$z2" 'BEGIN { printf "%.1f", 0.6 * s }') MiB/s) | initial $init_mibs MiB/s ($(awk -v a="$init_mibs" -v b="$z2" 'BEGIN { printf "%.0f", 100 * a / b }')%) | $(verdict "$init_mibs" "$(awk -v s="$z2" 'BEGIN { print 0.6 * s }')") |"
	echo "| ingest uses both cores (CPU >= 150%; 200% = both busy) | initial: CPU $cpu_init%, nightly: CPU $cpu_n1% | $(verdict "$cpu_init" 150) |"
	echo "| reads >= 1 GB/s from page cache: restore all | $rs_mibs MiB/s (best run $(mibs "$src1" "$b_rs")) | $(verdict "$rs_mibs" "$gb") |"
	echo "| reads >= 1 GB/s from page cache: one file | $one_mibs MiB/s (best run $(mibs "$big_bytes" "$b_one")) | $(verdict "$one_mibs" "$gb") |"
	echo
	echo "## Chunk-size experiment (\`lbbench chunking night-0 .. night-$nights\`, ${t_chunking}s)"
	echo
	cat "$log/chunking.md"
} >"$out/results.md"

cat "$out/results.md"
say "results written to $out/results.md (logs in $out/logs)"
