#!/bin/bash
# run-compare.sh - Lumbung side by side with BorgBackup and restic.
#
#   bench/run-compare.sh [--size-mb N] [--nights N] [--runs R] [--out DIR]
#                        [--data DIR] [--compression zstd:N] [--no-publish]
#
# First the machine's raw limits on night 0 (cat of every file, tar | zstd -3
# -T1 and -T2, openssl dgst -sha256 of every file).  Then for each tool
# (lumbung through lumbungd and its socket, borg, restic) and each of R runs,
# on a fresh copy (cp -a) of night 0 and a fresh store or repository, in this
# order: initial backup of all 37 tenants as one backup (n0); night 1
# (gen_dataset.py --mutate 1) and its backup (n1); a no-change backup right
# after; nights 2 to N mutated in place and backed up; restore of everything
# (latest = night N) into an empty directory; restore of the largest tenant;
# restore of one file (the largest file of tenant t19); the store size after
# n1 and after nN; peak RSS.  Also the engine alone on night 0 (tests/lbstore
# init && backup).  Wall seconds from `date +%s%N`, the page cache warm (the
# data is read once before each backup) and `sync` before each timed step.
# The runs are interleaved (run 1 of every tool, then run 2, ...), so that
# load from elsewhere on the machine spreads over all tools.  Prints the
# medians, the ratios and the issue's targets and writes them, with the
# machine, the versions and the commands, to DIR/compare.md and (unless
# --no-publish) to bench/COMPARE.md.
#
#   --size-mb N   night-0 size when generating (default 1024)
#   --nights N    nights after night 0 (default 7; at least 1)
#   --runs R      runs per tool (default 3)
#   --out DIR     scratch and results (default bench/out/compare)
#   --data DIR    an existing night-0 tree to copy from (never modified), e.g.
#                 bench/out/full/night-0, copied once to DIR/night-0; otherwise
#                 generated there with gen_dataset.py --tenants 37 --total-mb N
#                 --seed 20240301
#   --compression zstd:N   Lumbung's compression (default zstd:1, the store's
#                 default; BorgBackup runs at zstd,3, restic at auto)
#
# Needs: make (daemon/lumbungd, tools/lumbung, tests/lbstore), borg, restic,
# python3, GNU time (/usr/bin/time), diffutils, zstd, openssl.  Environment:
# LUMBUNG_BENCH_GEN overrides the path of gen_dataset.py.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

size_mb=1024
nights=7
runs=3
out=$top/bench/out/compare
data=
publish=1
seed=20240301
tenants=37

. "$here/common.sh"

while [ $# -gt 0 ]; do
	case $1 in
	--size-mb) size_mb=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--nights) nights=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--data) data=$2; shift 2 ;;
	--compression) lb_compression=$2; shift 2 ;;
	--no-publish) publish=0; shift ;;
	-h|--help) usage 0 ;;
	*) echo "run-compare.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
case $size_mb$runs$nights in
*[!0-9]*|'') echo "run-compare.sh: --size-mb, --nights and --runs take numbers" >&2; exit 2 ;;
esac
if [ "$runs" -lt 1 ] || [ "$size_mb" -lt 1 ] || [ "$nights" -lt 1 ]; then
	echo "run-compare.sh: --size-mb, --nights and --runs must be at least 1" >&2
	exit 2
fi

gen=${LUMBUNG_BENCH_GEN:-$top/../shared/bench/gen_dataset.py}
LUMBUNGD=$top/daemon/lumbungd
LUMBUNG=$top/tools/lumbung
LBSTORE=$top/tests/lbstore

# ---- prerequisites -------------------------------------------------------------
missing=
for t in python3 borg restic diff cmp du cp find xargs awk sync tar zstd openssl; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -x /usr/bin/time ] || missing="$missing /usr/bin/time"
if [ -n "$missing" ]; then
	echo "run-compare.sh: missing:$missing (apt-get install borgbackup restic time diffutils python3 zstd openssl)" >&2
	exit 1
fi
[ -f "$gen" ] || { echo "run-compare.sh: gen_dataset.py not found at $gen (set LUMBUNG_BENCH_GEN)" >&2; exit 1; }
for b in "$LUMBUNGD" "$LUMBUNG" "$LBSTORE"; do
	[ -x "$b" ] || { echo "run-compare.sh: $b not built; run 'make' in $top first" >&2; exit 1; }
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/logs
# Only what this script creates is removed.
rm -rf "$out/runs" "$log" "$out/bin"
mkdir -p "$out/runs" "$log" "$out/bin"
# The binaries as they are now, so that a rebuild of the checkout during the
# run cannot change what is measured halfway.
cp "$LUMBUNGD" "$LUMBUNG" "$LBSTORE" "$out/bin/"
LUMBUNGD=$out/bin/lumbungd LUMBUNG=$out/bin/lumbung LBSTORE=$out/bin/lbstore
gitrev=$(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
gitdirty=$(cd "$top" && git status --porcelain --untracked-files=no -- lib daemon tools tests/lbstore.c 2>/dev/null | awk '{ f = f " " $2 } END { if (f != "") print ", uncommitted changes in" f }')
built=$(date -u -r "$LUMBUNGD" '+%Y-%m-%d %H:%M UTC')

# ---- helpers (the rest are in common.sh) ---------------------------------------
median() { [ $# -gt 0 ] || { echo -; return; }; printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b + 0 > 0 && a != "-") printf f, a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }   # KiB -> MiB
# tenant_bytes DIR: the bytes of the 37 tenant directories (not .genstate.json)
tenant_bytes() { (cd "$1" && find t* -type f -printf '%s\n') | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
du_b() { du -sb "$1" | awk '{ print $1 }'; }
# store_of TOOL: the name of its store or repository in the run directory
store_of() { [ "$1" = lumbung ] && echo store || echo repo; }

steps=$out/steps.tsv
printf 'tool\trun\tstep\twall_s\tuser_s\tsys_s\tmaxrss_kb\tdaemon_cpu_s\tdaemon_hwm_kb\tload\n' >"$steps"

# timed TOOL RUN STEP CMD...: syncs, runs CMD under GNU time, appends a line
# to steps.tsv and sets $T (wall seconds) and $RSS (KiB), and raises $PEAK
# (KiB) to $RSS.  Output goes to
# logs/TOOL-RUN-STEP.log.  Fails the script if CMD fails.
T=0
RSS=0
timed() {
	local tool=$1 run=$2 step=$3 t0 t1 d0=0 d1=0 rc=0 tf
	shift 3
	tf=$log/$tool-$run-$step.time
	sync
	printf '%s\t%s\t%s\t%s\n' "$tool" "$run" "$step" "$(prefault "$prefault_gib")" >>"$log/prefault.tsv"
	[ -n "${DPID:-}" ] && d0=$(proc_cpu "$DPID")
	t0=$(now)
	/usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$log/$tool-$run-$step.log" 2>&1 || rc=$?
	t1=$(now)
	[ -n "${DPID:-}" ] && d1=$(proc_cpu "$DPID")
	if [ "$rc" -ne 0 ]; then
		say "FAILED ($rc): $tool run $run $step: $*"
		tail -20 "$log/$tool-$run-$step.log" >&2
		exit 1
	fi
	T=$(secs "$t1" "$t0")
	RSS=$(tail -1 "$tf" | awk '{ print $4 }')
	[ "$RSS" -le "${PEAK:-0}" ] || PEAK=$RSS
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$run" "$step" "$T" \
		"$(tail -1 "$tf" | awk '{ print $2 }')" "$(tail -1 "$tf" | awk '{ print $3 }')" "$RSS" \
		"$(awk -v a="$d1" -v b="$d0" 'BEGIN { printf "%.2f", a - b }')" \
		"$([ -n "${DPID:-}" ] && awk '/^VmHWM/ { print $2 }' "/proc/$DPID/status" || echo -)" \
		"$(loadavg | tr ' ' ,)" >>"$steps"
	say "$tool run $run $step: $T s"
}

# results: R_<tool>_<metric> holds a space-separated list over the runs
add() { local v="R_$1_$2"; printf -v "$v" '%s %s' "${!v:-}" "$3"; }
get() { local v="R_$1_$2"; median ${!v:-}; }

# ---- dataset -------------------------------------------------------------------
if [ -n "$data" ]; then
	data=$(cd "$data" && pwd)
	[ -f "$data/.genstate.json" ] || { echo "run-compare.sh: $data has no .genstate.json: not a gen_dataset.py tree" >&2; exit 1; }
	src_desc="copy of $data (existing night 0)"
	src=$out/night-0
	if [ "$data" != "$src" ]; then
		# one private copy, so that whoever owns DATA may remove it meanwhile
		say "copying $data to $src"
		rm -rf "$src"
		cp -a "$data" "$src"
	fi
else
	src=$out/night-0
	rm -rf "$src"
	say "generating $size_mb MiB, $tenants tenants (night 0) into $src"
	python3 "$gen" --out "$src" --tenants "$tenants" --total-mb "$size_mb" --seed "$seed" >"$log/gen.txt" 2>&1
	src_desc="gen_dataset.py --tenants $tenants --total-mb $size_mb --seed $seed"
fi
src0=$(tenant_bytes "$src")
nfiles0=$(cd "$src" && find t* -type f | wc -l)
# Memory touched just before every timed step (common.sh, prefault): one
# and a half times night 0, enough for a restore of everything to tmpfs.
prefault_gib=$(awk -v b="$src0" 'BEGIN { g = b * 1.5 / 1073741824; printf "%d", (g == int(g)) ? g : int(g) + 1 }')
# Restores of everything go to a page-cache target, as the issue states it:
# tmpfs (/dev/shm) when it has room, else the run directory.  The same
# target for every tool.  LUMBUNG_BENCH_RESTORE_DIR overrides.
restore_base() {
	if [ -n "${LUMBUNG_BENCH_RESTORE_DIR:-}" ]; then
		echo "$LUMBUNG_BENCH_RESTORE_DIR"
	elif [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((3 * 1024 * 1024)) ]; then
		echo /dev/shm/lumbung-bench-restore
	else
		echo ""
	fi
}
RESTORE_BASE=$(restore_base)

# the file restored alone: the largest of tenant t19, else the largest .sql
one=$(cd "$src" && find t19-* -type f -printf '%s %p\n' 2>/dev/null | sort -n | tail -1 | cut -d' ' -f2-)
[ -n "$one" ] || one=$(cd "$src" && find t* -type f -name '*.sql' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
one_bytes=$(stat -c %s "$src/$one")
# the tenant restored alone: the largest at night 0
big=$(cd "$src" && du -sb t* | sort -n | tail -1 | cut -f2)
big_bytes=$(tree_bytes "$src/$big")
say "source: $src_desc: $src0 bytes in $nfiles0 files; one file: $one ($one_bytes bytes); tenant $big ($big_bytes bytes)"

load_start=$(loadavg)
t_start=$(now)

# fresh RD: the run directory with a fresh copy of night 0 in RD/data
fresh() {
	rm -rf "$1"
	mkdir -p "$1"
	chmod 0755 "$1"
	cp -a "$src" "$1/data"
}
mutate() { python3 "$gen" --out "$1" --mutate "$2" >>"$log/mutate.log" 2>&1; }
verified_lumbung=0 verified_borg=0 verified_restic=0
check_one() {   # check_one RESTORED_FILE ORIGINAL
	cmp "$1" "$2" || { say "one-file restore differs: $1"; exit 1; }
}
check_all() {   # check_all TOOL RESTORED_ROOT DATA
	local v="verified_$1"
	[ "${!v}" = 1 ] && return 0
	say "$1: verifying the restore with diff -r (not timed)"
	if ! diff -r -x .genstate.json "$3" "$2" >"$log/$1-diff.log" 2>&1; then
		say "$1: restore differs from the data:"; head -20 "$log/$1-diff.log" >&2
		exit 1
	fi
	printf -v "$v" 1
}

# ---- the tools --------------------------------------------------------------------
trap 'stop_daemon' EXIT

# Each tool is three functions: TOOL_setup RUN RD (a fresh store), TOOL_backup
# RUN RD STEP NIGHT (timed, in the data directory), TOOL_teardown RUN RD; and
# the restores TOOL_restore_all / _tenant / _one RUN RD TARGET.
lumbung_setup() {
	start_lumbungd "$LUMBUNGD" "$LUMBUNG" "$2" "$log/lumbung-$1-lumbungd.log"
	"$LUMBUNG" version >"$log/lumbung-version.txt" 2>&1
}
lumbung_backup() { timed lumbung "$1" "$3" "$LUMBUNG" backup --dataset bench/all "$2/data"; }
lumbung_restore_all() { timed lumbung "$1" restore-all "$LUMBUNG" restore bench/all@latest --target "$3"; }
lumbung_restore_tenant() { timed lumbung "$1" restore-tenant "$LUMBUNG" restore bench/all@latest "$big" --target "$3"; }
lumbung_restore_one() { timed lumbung "$1" one-file "$LUMBUNG" restore bench/all@latest "$one" --target "$3"; }
lumbung_teardown() {
	add lumbung rss_daemon "$(awk '/^VmHWM/ { print $2 }' "/proc/$DPID/status")"
	stop_daemon
	unset LUMBUNG_SOCKET
}

borg_setup() {
	export BORG_BASE_DIR=$2/borg-base BORG_CACHE_DIR=$2/borg-cache
	export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	borg init --encryption none "$2/repo" >"$log/borg-$1-init.log" 2>&1
}
# (not in subshells: timed sets T, RSS and PEAK here)
borg_backup() { cd "$2/data"; timed borg "$1" "$3" borg create --compression zstd,3 "$2/repo::$3" t*; cd "$out"; }
borg_restore_all() { cd "$3"; timed borg "$1" restore-all borg extract "$2/repo::n$nights"; cd "$out"; }
borg_restore_tenant() { cd "$3"; timed borg "$1" restore-tenant borg extract "$2/repo::n$nights" "$big"; cd "$out"; }
borg_restore_one() { cd "$3"; timed borg "$1" one-file borg extract "$2/repo::n$nights" "$one"; cd "$out"; }
borg_teardown() { unset BORG_BASE_DIR BORG_CACHE_DIR; }

restic_setup() {
	export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$2/restic-cache
	restic -r "$2/repo" init --repository-version 2 >"$log/restic-$1-init.log" 2>&1
}
restic_backup() { cd "$2/data"; timed restic "$1" "$3" restic -r "$2/repo" backup --compression auto --host bench --tag "$3" t*; cd "$out"; }
restic_restore_all() { timed restic "$1" restore-all restic -r "$2/repo" restore latest --target "$3"; }
# restic 0.14 names the 37 directories given as relative paths at the top of
# the snapshot's tree (the absolute paths are only in its metadata), so the
# include is /PATH; an include that matched nothing would fail the check.
restic_restore_tenant() { timed restic "$1" restore-tenant restic -r "$2/repo" restore latest --target "$3" --include "/$big"; }
restic_restore_one() { timed restic "$1" one-file restic -r "$2/repo" restore latest --target "$3" --include "/$one"; }
restic_teardown() { unset RESTIC_PASSWORD RESTIC_CACHE_DIR; }

# run_tool TOOL RUN: the nights, the restores and the sizes of one run.
run_tool() {
	local t=$1 r=$2 rd=$out/runs/$1-$2 n srcn rt sum_b=0 sum_s=0
	fresh "$rd"
	"${t}_setup" "$r" "$rd"
	PEAK=0
	warm "$rd/data"
	"${t}_backup" "$r" "$rd" n0 0
	add "$t" n0 "$(mibs "$src0" "$T")"; add "$t" n0s "$T"; add "$t" rss "$RSS"
	for n in $(seq 1 "$nights"); do
		mutate "$rd/data" "$n"
		srcn=$(tenant_bytes "$rd/data")
		warm "$rd/data"
		"${t}_backup" "$r" "$rd" "n$n" "$n"
		sum_b=$((sum_b + srcn)); sum_s=$(awk -v a="$sum_s" -v b="$T" 'BEGIN { print a + b }')
		if [ "$n" = 1 ]; then
			add "$t" n1 "$(mibs "$srcn" "$T")"
			add "$t" store1 "$(div "$(du_b "$rd/$(store_of "$t")")" "$srcn" %.3f)"
			"${t}_backup" "$r" "$rd" nochange 1
			add "$t" nc "$T"
		fi
	done
	add "$t" nights "$(mibs "$sum_b" "$sum_s")"
	add "$t" storeN "$(div "$(du_b "$rd/$(store_of "$t")")" "$srcn" %.3f)"
	echo "$srcn" >"$out/srcN"
	rt=${RESTORE_BASE:-$rd}/restore
	rm -rf "$rt" && mkdir -p "$rt"
	"${t}_restore_all" "$r" "$rd" "$rt"
	add "$t" ra "$(mibs "$srcn" "$T")"
	check_all "$t" "$rt" "$rd/data"
	rm -rf "$rt" && mkdir -p "$rt"
	"${t}_restore_tenant" "$r" "$rd" "$rt"
	add "$t" rt "$(mibs "$(tree_bytes "$rd/data/$big")" "$T")"
	diff -r "$rd/data/$big" "$rt/$big" >"$log/$t-$r-tenant-diff.log" 2>&1 || { say "$t: the tenant's restore differs from the data"; head -5 "$log/$t-$r-tenant-diff.log" >&2; exit 1; }
	rm -rf "$rt"
	mkdir "$rd/one"
	"${t}_restore_one" "$r" "$rd" "$rd/one"
	add "$t" one "$T"
	check_one "$rd/one/$one" "$rd/data/$one"
	add "$t" peak "$PEAK"
	"${t}_teardown" "$r" "$rd"
	cd "$out"
	rm -rf "$rd"
}

# ---- the engine alone (tests/lbstore) ------------------------------------------------------
run_engine() {
	local r=$1 rd=$out/runs/engine-$1
	fresh "$rd"
	warm "$rd/data"
	timed engine "$r" n0 bash -c "'$LBSTORE' init '$rd/store' --level ${lb_compression#zstd:} && '$LBSTORE' backup '$rd/store' bench all '$rd/data'"
	add engine n0 "$(mibs "$src0" "$T")"; add engine n0s "$T"; add engine rss "$RSS"
	add engine store0 "$(div "$(du_b "$rd/store")" "$src0" %.3f)"
	rm -rf "$rd"
}

# ---- the machine's raw limits on night 0 -----------------------------------------------
run_raw() {
	local r=$1
	warm "$src"
	timed raw "$r" cat bash -c "cd '$src' && find t* -type f -print0 | xargs -0 cat >/dev/null"
	add raw cat "$(mibs "$src0" "$T")"
	timed raw "$r" zstd-T1 bash -c "cd '$src' && tar -cf - t* | zstd -3 -T1 -q >/dev/null"
	add raw zstd1 "$(mibs "$src0" "$T")"
	timed raw "$r" zstd-T2 bash -c "cd '$src' && tar -cf - t* | zstd -3 -T2 -q >/dev/null"
	add raw zstd2 "$(mibs "$src0" "$T")"
	timed raw "$r" sha256 bash -c "cd '$src' && find t* -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null"
	add raw sha "$(mibs "$src0" "$T")"
}

cd "$out"
for r in $(seq "$runs"); do
	say "=== run $r of $runs (load $(loadavg)) ==="
	run_raw "$r"
	run_tool lumbung "$r"
	run_tool borg "$r"
	run_tool restic "$r"
	run_engine "$r"
done
t_end=$(now)
load_end=$(loadavg)
srcN=$(cat "$out/srcN")

# ---- results ---------------------------------------------------------------------
# medians
for t in lumbung borg restic engine raw; do
	for m in n0 n0s n1 nc nights ra rt one store1 storeN rss peak rss_daemon store0 cat zstd1 zstd2 sha; do
		printf -v "M_${t}_$m" '%s' "$(get "$t" "$m")"
	done
done
M() { local v="M_$1_$2"; echo "${!v}"; }
rssm() { local v; v=$(M "$1" "$2"); [ "$v" = - ] && echo - || mib "$v"; }
# best peer: higher is better (hi) or lower is better (lo)
best() {
	awk -v a="$(M borg "$1")" -v b="$(M restic "$1")" -v d="$2" 'BEGIN {
		if (d == "hi") { if (a + 0 >= b + 0) print "borg " a; else print "restic " b }
		else { if (a + 0 <= b + 0) print "borg " a; else print "restic " b } }'
}
name() { case $1 in borg) echo BorgBackup ;; restic) echo restic ;; esac; }
# ratios against the better peer: speed (>1 faster), time (>1 faster), size (<1 smaller)
r_hi() { local b; b=$(best "$1" hi); div "$(M lumbung "$1")" "${b#* }"; }
r_time() { local b; b=$(best "$1" lo); div "${b#* }" "$(M lumbung "$1")"; }
r_size() { local b; b=$(best "$1" lo); div "$(M lumbung "$1")" "${b#* }"; }
peer() { local b; b=$(best "$1" "$2"); echo "$(name "${b%% *}") ${b#* }"; }
atleast() { awk -v v="$1" -v t="$2" 'BEGIN { if (v != "-" && v + 0 >= t) print "**met**"; else print "**not met**" }'; }
atmost() { awk -v v="$1" -v t="$2" 'BEGIN { if (v != "-" && v + 0 <= t) print "**met**"; else print "**not met**" }'; }
below() { awk -v v="$1" -v t="$2" 'BEGIN { if (v != "-" && v + 0 < t) print "**met**"; else print "**not met**" }'; }

e2e=$(div "$(M lumbung n0)" "$(M engine n0)")
rss_best=$(best peak lo)
rss_ratio=$(div "$(M lumbung rss_daemon)" "${rss_best#* }")

lbver=$(head -2 "$log/lumbung-version.txt" | tr '\n' ' ' | sed 's/; you are.*//')
borgver=$(borg --version)
resticver=$(restic version | cut -d' ' -f1-2)
cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
fs=$(df -T "$out" | awk 'NR == 2 { print $2 " (" $1 ")" }')
total_min=$(awk -v a="$t_end" -v b="$t_start" 'BEGIN { printf "%.1f", (a - b) / 6e10 }')
rel_out=${out#"$top"/}

{
	echo "# Lumbung vs BorgBackup and restic"
	echo
	echo "Generated by \`bench/run-compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $runs run(s) per tool, medians."
	echo
	echo "- Data: $src_desc; night 0 = $(mib $((src0 / 1024))) MiB ($src0 bytes) in $nfiles0 files, 37 tenants; $nights nights of gen_dataset.py --mutate; night $nights = $srcN bytes."
	echo "- Machine: $(nproc) CPUs, $cpu_model, $mem RAM, $(uname -sr), filesystem $fs."
	echo "- Versions: $lbver (git $gitrev$gitdirty; binaries built $built); $borgver; $resticver."
	echo "- Compression: Lumbung $lb_compression (deltas: tuned parameters up to zstd:3, the level above); BorgBackup zstd,3; restic auto."
	echo "- Load average (1/5/15 min): $load_start at the start, $load_end at the end; $total_min min in all."
	echo
	echo "MiB/s are source bytes (regular files of the 37 tenant directories) per wall second;"
	echo "no-change and one file in seconds; nights 1-$nights = all their bytes over all their"
	echo "backup seconds; restores are of night $nights (everything, the largest tenant $big,"
	echo "one file); store = \`du -sb\` of the store or repository divided by that night's bytes;"
	echo "peak RSS = the largest of the tool's steps (GNU time %M); for Lumbung the daemon's"
	echo "VmHWM over the whole run (the largest client is in steps.tsv)."
	echo
	echo "| | initial n0 (MiB/s) | nightly n1 (MiB/s) | nights 1-$nights (MiB/s) | no-change (s) | restore all (MiB/s) | restore tenant (MiB/s) | one file (s) | store n1 | store n$nights | peak RSS (MiB) |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	echo "| Lumbung (lumbung -> lumbungd) | $(M lumbung n0) | $(M lumbung n1) | $(M lumbung nights) | $(M lumbung nc) | $(M lumbung ra) | $(M lumbung rt) | $(M lumbung one) | $(M lumbung store1) | $(M lumbung storeN) | daemon $(rssm lumbung rss_daemon), client $(rssm lumbung peak) |"
	for t in borg restic; do
		echo "| $(name $t) | $(M $t n0) | $(M $t n1) | $(M $t nights) | $(M $t nc) | $(M $t ra) | $(M $t rt) | $(M $t one) | $(M $t store1) | $(M $t storeN) | $(rssm $t peak) |"
	done
	echo "| Lumbung engine only (tests/lbstore) | $(M engine n0) | | | | | | | ($(M engine store0) after n0) | | $(rssm engine rss) |"
	echo
	echo "The machine's raw limits on night 0 (MiB/s): \`cat\` of every file $(M raw cat);"
	echo "\`tar | zstd -3 -T1\` $(M raw zstd1), \`-T2\` $(M raw zstd2); \`openssl dgst -sha256\` of every file $(M raw sha)."
	echo "Lumbung's initial backup is $(div "$(M lumbung n0)" "$(M raw zstd2)") of two-core \`zstd -3\`."
	echo
	echo "## Against the issue's targets"
	echo
	echo "Lumbung against the better of the two peers in each column (speed: >1 means Lumbung is"
	echo "faster; store and RSS: <1 means Lumbung is smaller):"
	echo
	echo "| target | measured | |"
	echo "|---|---|---|"
	v=$(r_hi n0); echo "| initial backup >= 2.5x the faster peer | ${v}x ($(peer n0 hi) MiB/s) | $(atleast "$v" 2.5) |"
	v=$(r_hi n1); echo "| nightly backup >= 3x the faster peer | ${v}x ($(peer n1 hi) MiB/s); nights 1-$nights: $(r_hi nights)x | $(atleast "$v" 3) |"
	v=$(r_time nc); echo "| no-change backup >= 3x faster than the faster peer's | ${v}x ($(peer nc lo) s) | $(atleast "$v" 3) |"
	v=$(r_hi ra); echo "| restore of everything >= 2x the faster peer | ${v}x ($(peer ra hi) MiB/s) | $(atleast "$v" 2) |"
	v=$(r_hi rt); echo "| restore of one large tenant >= 2x the faster peer | ${v}x ($(peer rt hi) MiB/s) | $(atleast "$v" 2) |"
	v=$(M lumbung one); echo "| one file from a large snapshot in under 100 ms | $v s ($(peer one lo) s) | $(below "$v" 0.1) |"
	v=$(r_size storeN); echo "| store after $nights nights <= 0.45x the smaller peer's | ${v}x ($(peer storeN lo)) | $(atmost "$v" 0.45) |"
	echo "| peak daemon RSS <= the smaller peer's | ${rss_ratio}x ($(M lumbung rss_daemon) KiB against $(name "${rss_best%% *}") ${rss_best#* } KiB) | $(atmost "$rss_ratio" 1) |"
	echo
	echo "End to end against the engine alone (initial backup): $(M lumbung n0) / $(M engine n0) MiB/s = $e2e."
	echo
	echo "## Commands"
	echo
	echo "Each run: \`cp -a NIGHT0 RUN/data\`; every file of RUN/data read once (\`cat\`) before each"
	echo "backup; \`sync\` before each timed step; wall time from \`date +%s%N\` around the command"
	echo "(run under \`/usr/bin/time -f '%e %U %S %M'\`).  Night N: \`gen_dataset.py --out RUN/data --mutate N\`."
	echo "ONE is \`$one\` ($one_bytes bytes); TENANT is \`$big\` ($big_bytes bytes at night 0)."
	echo
	echo '```'
	echo "# raw limits, in NIGHT0 (page cache warm)"
	echo "find t* -type f -print0 | xargs -0 cat >/dev/null"
	echo "tar -cf - t* | zstd -3 -T1 -q >/dev/null                          # and -T2"
	echo "find t* -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null"
	echo
	echo "# Lumbung: lumbungd --config RUN/lumbung.conf --foreground (fresh per run; store RUN/store,"
	echo "#   compression $lb_compression, tenant bench), LUMBUNG_SOCKET=RUN/sock"
	echo "lumbung backup --dataset bench/all RUN/data                        # every night, no-change"
	echo "lumbung restore bench/all@latest --target RUN/restore              # restore all"
	echo "lumbung restore bench/all@latest TENANT --target RUN/restore       # one tenant"
	echo "lumbung restore bench/all@latest ONE --target RUN/one              # one file"
	echo "# daemon peak: VmHWM of /proc/PID/status at the end of the run"
	echo
	echo "# BorgBackup: BORG_BASE_DIR=RUN/borg-base BORG_CACHE_DIR=RUN/borg-cache"
	echo "borg init --encryption none RUN/repo                               # not timed"
	echo "cd RUN/data && borg create --compression zstd,3 RUN/repo::nN t*   # every night; nochange"
	echo "cd RUN/restore && borg extract RUN/repo::n$nights [TENANT]                # restore all, one tenant"
	echo "cd RUN/one && borg extract RUN/repo::n$nights ONE                        # one file"
	echo
	echo "# restic: RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=RUN/restic-cache"
	echo "restic -r RUN/repo init --repository-version 2                     # not timed"
	echo "cd RUN/data && restic -r RUN/repo backup --compression auto --host bench --tag nN t*"
	echo "restic -r RUN/repo restore latest --target RUN/restore [--include /TENANT]"
	echo "restic -r RUN/repo restore latest --target RUN/one --include /ONE   # the tree holds t01-.../, not RUN/data/t01-.../"
	echo
	echo "# engine only (night 0): timed together"
	echo "tests/lbstore init RUN/store --level ${lb_compression#zstd:} && tests/lbstore backup RUN/store bench all RUN/data"
	echo '```'
	echo
	echo "Each tool's first restore of everything is compared with its data by \`diff -r\` (not"
	echo "timed), every tenant restore by \`diff -r\`, every one-file restore by \`cmp\`.  Per-step"
	echo "wall, user and system seconds, peak RSS, the daemon's CPU seconds during the step and the"
	echo "load average are in \`$rel_out/steps.tsv\`, the tools' output in \`$rel_out/logs/\`."
	echo
	echo "## Reproduce"
	echo
	echo '```'
	echo "make -j2"
	echo "apt-get install borgbackup restic time zstd  # borg 1.2.4 and restic 0.14.0 on Debian 12"
	echo "bench/run-compare.sh --runs 3                # generates 1 GiB into bench/out/compare/night-0"
	echo "bench/run-compare.sh --runs 3 --data bench/out/full/night-0   # or reuse run-engine.sh's night 0"
	echo '```'
	echo
	echo "It takes about 5 minutes per run per GiB with 7 nights (most of it the generator's"
	echo "mutations, 7 s a night per tool) and needs about 3x the data size free on the"
	echo "filesystem of --out (one run directory at a time: data, store, restore).  Absolute"
	echo "figures move with the machine and its load; compare within one run, as ratios."
	echo ""
	echo "Restores of everything and of the tenant go to ${RESTORE_BASE:-the run directory} (tmpfs when /dev/shm has room: the"
	echo "issue's page-cache target), the same for every tool."
	echo ""
	echo "Before every timed step $prefault_gib GiB of free memory are written once and freed (bench/common.sh,"
	echo "prefault), so that each step finds the same warm machine: in a virtual machine that hands free"
	echo "pages back to its host, the first write to each page costs a host fault (here about 3 s per GiB,"
	echo "against 0.4 s), and without this the step that first fills the page cache or the tmpfs target"
	echo "pays it.  Touching took $(awk -F'\t' '{ split($4, a, " "); s += a[2]; if (a[3] > m) m = a[3] } END { printf "%.0f s in all, the slowest GiB %.2f s", s, m }' "$log/prefault.tsv")"
	echo "(\`logs/prefault.tsv\`: tool, run, step, GiB, seconds, slowest GiB)."
} >"$out/compare.md"

if [ "$publish" = 1 ]; then
	cp "$out/compare.md" "$top/bench/COMPARE.md"
fi
cat "$out/compare.md"
say "written to $out/compare.md$([ "$publish" = 1 ] && echo " and bench/COMPARE.md")"
