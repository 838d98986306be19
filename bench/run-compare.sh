#!/bin/bash
# run-compare.sh - Lumbung side by side with BorgBackup and restic.
#
#   bench/run-compare.sh [--size-mb N] [--runs R] [--out DIR] [--data DIR]
#                        [--no-publish]
#
# For each tool (lumbung through lumbungd and its socket, borg, restic) and
# each of R runs, on a fresh copy (cp -a) of night 0 and a fresh store or
# repository, in this order: initial backup of all 37 tenants as one backup
# (n0); night 1 (gen_dataset.py --mutate 1) and its backup (n1); a no-change
# backup right after; restore of everything (latest) into an empty directory;
# restore of one file (the largest file of tenant t19); the store size after
# n1; peak RSS.  Also the engine alone on the same data (tests/lbstore init
# && backup).  Wall seconds from `date +%s%N`, the page cache warm (the data is
# read once before each backup) and `sync` before each timed step.  The runs
# are interleaved (run 1 of every tool, then run 2, ...), so that load from
# elsewhere on the machine spreads over all tools.  Prints the medians and
# writes them, with the machine, the versions and the commands, to
# DIR/compare.md and (unless --no-publish) to bench/COMPARE.md.
#
#   --size-mb N   night-0 size when generating (default 1024)
#   --runs R      runs per tool (default 3)
#   --out DIR     scratch and results (default bench/out/compare)
#   --data DIR    an existing night-0 tree to copy from (never modified), e.g.
#                 bench/out/full/night-0, copied once to DIR/night-0; otherwise
#                 generated there with gen_dataset.py --tenants 37 --total-mb N
#                 --seed 20240301
#
# Needs: make (daemon/lumbungd, tools/lumbung, tests/lbstore), borg, restic,
# python3, GNU time (/usr/bin/time), diffutils.  Environment:
# LUMBUNG_BENCH_GEN overrides the path of gen_dataset.py.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

size_mb=1024
runs=3
out=$top/bench/out/compare
data=
publish=1
seed=20240301
tenants=37

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -eu/d'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--size-mb) size_mb=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--data) data=$2; shift 2 ;;
	--no-publish) publish=0; shift ;;
	-h|--help) usage 0 ;;
	*) echo "run-compare.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
case $size_mb$runs in
*[!0-9]*|'') echo "run-compare.sh: --size-mb and --runs take numbers" >&2; exit 2 ;;
esac
if [ "$runs" -lt 1 ] || [ "$size_mb" -lt 1 ]; then
	echo "run-compare.sh: --size-mb and --runs must be at least 1" >&2
	exit 2
fi

gen=${LUMBUNG_BENCH_GEN:-$top/../shared/bench/gen_dataset.py}
LUMBUNGD=$top/daemon/lumbungd
LUMBUNG=$top/tools/lumbung
LBSTORE=$top/tests/lbstore

# ---- prerequisites -------------------------------------------------------------
missing=
for t in python3 borg restic diff cmp du cp find xargs awk sync; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -x /usr/bin/time ] || missing="$missing /usr/bin/time"
if [ -n "$missing" ]; then
	echo "run-compare.sh: missing:$missing (apt-get install borgbackup restic time diffutils python3)" >&2
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

# ---- helpers --------------------------------------------------------------------
say() { printf '%s [run-compare] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a - b) / 1e9 }'; }
median() { [ $# -gt 0 ] || { echo -; return; }; printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mibs() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1048576 / s; else print "inf" }'; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b + 0 > 0 && a != "-") printf f, a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }   # KiB -> MiB
tree_bytes() { (cd "$1" && find t* -type f -printf '%s\n') | awk '{ s += $1 } END { printf "%d\n", s }'; }
du_b() { du -sb "$1" | awk '{ print $1 }'; }
warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }
clk_tck=$(getconf CLK_TCK)
# proc_cpu PID: user+system seconds of the process (all threads) so far
proc_cpu() { awk -v t="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

steps=$out/steps.tsv
printf 'tool\trun\tstep\twall_s\tuser_s\tsys_s\tmaxrss_kb\tdaemon_cpu_s\tload\n' >"$steps"

# timed TOOL RUN STEP CMD...: syncs, runs CMD under GNU time, appends a line
# to steps.tsv and sets $T (wall seconds) and $RSS (KiB).  Output goes to
# logs/TOOL-RUN-STEP.log.  Fails the script if CMD fails.
T=0
RSS=0
timed() {
	local tool=$1 run=$2 step=$3 t0 t1 d0=0 d1=0 rc=0 tf
	shift 3
	tf=$log/$tool-$run-$step.time
	sync
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
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$run" "$step" "$T" \
		"$(tail -1 "$tf" | awk '{ print $2 }')" "$(tail -1 "$tf" | awk '{ print $3 }')" "$RSS" \
		"$(awk -v a="$d1" -v b="$d0" 'BEGIN { printf "%.2f", a - b }')" "$(loadavg | tr ' ' ,)" >>"$steps"
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
src0=$(tree_bytes "$src")
nfiles0=$(cd "$src" && find t* -type f | wc -l)
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
say "source: $src_desc: $src0 bytes in $nfiles0 files; one file: $one ($one_bytes bytes)"

load_start=$(loadavg)
uptime_start=$(uptime)
t_start=$(now)

# fresh RD: the run directory with a fresh copy of night 0 in RD/data
fresh() {
	rm -rf "$1"
	mkdir -p "$1"
	chmod 0755 "$1"
	cp -a "$src" "$1/data"
}
mutate() { python3 "$gen" --out "$1" --mutate 1 >>"$log/mutate.log" 2>&1; }
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

# ---- lumbung, end to end through lumbungd ---------------------------------------------
DPID=
stop_daemon() {
	[ -n "${DPID:-}" ] || return 0
	kill -TERM "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=
}
trap 'stop_daemon' EXIT

run_lumbung() {
	local r=$1 rd=$out/runs/lumbung-$1 sock i
	fresh "$rd"
	sock=$rd/lumbungd.sock
	[ ${#sock} -lt 100 ] || sock=$(mktemp -d /tmp/lbcmp-XXXXXX)/lumbungd.sock
	cat >"$rd/lumbung.conf" <<CONF
[store]
path = $rd/store
compression = zstd:3
[daemon]
socket = $sock
max_jobs = 4
log_level = info
[tenant bench]
name = Benchmark
CONF
	export LUMBUNG_SOCKET=$sock
	"$LUMBUNGD" --config "$rd/lumbung.conf" --foreground >>"$log/lumbung-$r-lumbungd.log" 2>&1 &
	DPID=$!
	i=0
	until "$LUMBUNG" version >"$log/lumbung-version.txt" 2>&1; do
		kill -0 "$DPID" 2>/dev/null || { say "lumbungd exited at start"; tail -5 "$log/lumbung-$r-lumbungd.log" >&2; exit 1; }
		i=$((i + 1))
		[ $i -lt 200 ] || { say "lumbungd did not answer within 10 s"; exit 1; }
		sleep 0.05
	done

	warm "$rd/data"
	timed lumbung "$r" n0 "$LUMBUNG" backup --dataset bench/all "$rd/data"
	add lumbung n0 "$(mibs "$src0" "$T")"; add lumbung n0s "$T"; add lumbung rss_client "$RSS"
	mutate "$rd/data"
	local src1; src1=$(tree_bytes "$rd/data")
	warm "$rd/data"
	timed lumbung "$r" n1 "$LUMBUNG" backup --dataset bench/all "$rd/data"
	add lumbung n1 "$(mibs "$src1" "$T")"
	add lumbung store "$(div "$(du_b "$rd/store")" "$src1" %.3f)"
	timed lumbung "$r" nochange "$LUMBUNG" backup --dataset bench/all "$rd/data"
	add lumbung nc "$T"
	rt=${RESTORE_BASE:-$rd}/restore
	rm -rf "$rt" && mkdir -p "$rt"
	timed lumbung "$r" restore-all "$LUMBUNG" restore bench/all@latest --target "$rt"
	add lumbung ra "$(mibs "$src1" "$T")"
	check_all lumbung "$rt" "$rd/data"
	rm -rf "$rt"
	mkdir "$rd/one"
	timed lumbung "$r" one-file "$LUMBUNG" restore bench/all@latest "$one" --target "$rd/one"
	add lumbung one "$T"
	check_one "$rd/one/$one" "$rd/data/$one"
	add lumbung rss_daemon "$(awk '/^VmHWM/ { print $2 }' "/proc/$DPID/status")"
	stop_daemon
	unset LUMBUNG_SOCKET
	case $sock in /tmp/lbcmp-*) rm -rf "$(dirname "$sock")" ;; esac
	echo "$src1" >"$out/src1"
	rm -rf "$rd"
}

# ---- BorgBackup ----------------------------------------------------------------------
run_borg() {
	local r=$1 rd=$out/runs/borg-$1
	fresh "$rd"
	export BORG_BASE_DIR=$rd/borg-base BORG_CACHE_DIR=$rd/borg-cache
	export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	borg init --encryption none "$rd/repo" >"$log/borg-$r-init.log" 2>&1
	warm "$rd/data"
	cd "$rd/data"
	timed borg "$r" n0 borg create --compression zstd,3 "$rd/repo::n0" t*
	add borg n0 "$(mibs "$src0" "$T")"; add borg n0s "$T"; add borg rss "$RSS"
	mutate "$rd/data"
	local src1; src1=$(tree_bytes "$rd/data")
	warm "$rd/data"
	timed borg "$r" n1 borg create --compression zstd,3 "$rd/repo::n1" t*
	add borg n1 "$(mibs "$src1" "$T")"
	add borg store "$(div "$(du_b "$rd/repo")" "$src1" %.3f)"
	timed borg "$r" nochange borg create --compression zstd,3 "$rd/repo::n1-again" t*
	add borg nc "$T"
	rt=${RESTORE_BASE:-$rd}/restore
	rm -rf "$rt" && mkdir -p "$rt"
	cd "$rt"
	timed borg "$r" restore-all borg extract "$rd/repo::n1-again"
	add borg ra "$(mibs "$src1" "$T")"
	check_all borg "$rt" "$rd/data"
	rm -rf "$rt"
	mkdir "$rd/one"
	cd "$rd/one"
	timed borg "$r" one-file borg extract "$rd/repo::n1" "$one"
	add borg one "$T"
	check_one "$rd/one/$one" "$rd/data/$one"
	cd "$out"
	unset BORG_BASE_DIR BORG_CACHE_DIR
	rm -rf "$rd"
}

# ---- restic --------------------------------------------------------------------------
run_restic() {
	local r=$1 rd=$out/runs/restic-$1
	fresh "$rd"
	export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$rd/restic-cache
	restic -r "$rd/repo" init --repository-version 2 >"$log/restic-$r-init.log" 2>&1
	warm "$rd/data"
	cd "$rd/data"
	timed restic "$r" n0 restic -r "$rd/repo" backup --compression auto --host bench --tag n0 t*
	add restic n0 "$(mibs "$src0" "$T")"; add restic n0s "$T"; add restic rss "$RSS"
	mutate "$rd/data"
	local src1; src1=$(tree_bytes "$rd/data")
	warm "$rd/data"
	timed restic "$r" n1 restic -r "$rd/repo" backup --compression auto --host bench --tag n1 t*
	add restic n1 "$(mibs "$src1" "$T")"
	add restic store "$(div "$(du_b "$rd/repo")" "$src1" %.3f)"
	timed restic "$r" nochange restic -r "$rd/repo" backup --compression auto --host bench --tag n1 t*
	add restic nc "$T"
	cd "$out"
	rt=${RESTORE_BASE:-$rd}/restore
	rm -rf "$rt" && mkdir -p "$rt"
	timed restic "$r" restore-all restic -r "$rd/repo" restore latest --target "$rt"
	add restic ra "$(mibs "$src1" "$T")"
	check_all restic "$rt" "$rd/data"
	rm -rf "$rt"
	mkdir "$rd/one"
	# restic 0.14 names the 37 directories given as relative paths at the top of
	# the snapshot's tree (the absolute paths are only in its metadata), so the
	# include is /ONE; an include that matched nothing would fail check_one.
	timed restic "$r" one-file restic -r "$rd/repo" restore latest --target "$rd/one" --include "/$one"
	add restic one "$T"
	check_one "$rd/one/$one" "$rd/data/$one"
	unset RESTIC_PASSWORD RESTIC_CACHE_DIR
	rm -rf "$rd"
}

# ---- the engine alone (tests/lbstore) ------------------------------------------------------
run_engine() {
	local r=$1 rd=$out/runs/engine-$1
	fresh "$rd"
	warm "$rd/data"
	timed engine "$r" n0 bash -c "'$LBSTORE' init '$rd/store' && '$LBSTORE' backup '$rd/store' bench all '$rd/data'"
	add engine n0 "$(mibs "$src0" "$T")"; add engine n0s "$T"; add engine rss "$RSS"
	add engine store0 "$(div "$(du_b "$rd/store")" "$src0" %.3f)"
	rm -rf "$rd"
}

cd "$out"
for r in $(seq "$runs"); do
	say "=== run $r of $runs (load $(loadavg)) ==="
	run_lumbung "$r"
	run_borg "$r"
	run_restic "$r"
	run_engine "$r"
done
t_end=$(now)
load_end=$(loadavg)
uptime_end=$(uptime)
src1=$(cat "$out/src1")

# ---- results ---------------------------------------------------------------------
# medians
for t in lumbung borg restic engine; do
	for m in n0 n0s n1 nc ra one store rss rss_client rss_daemon store0; do
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
vs_hi() { local b; b=$(best "$1" hi); echo "$(div "$(M lumbung "$1")" "${b#* }")x ($(name "${b%% *}") ${b#* })"; }
vs_lo_time() { local b; b=$(best "$1" lo); echo "$(div "${b#* }" "$(M lumbung "$1")")x ($(name "${b%% *}") ${b#* } s)"; }
vs_lo_size() { local b; b=$(best "$1" lo); echo "$(div "$(M lumbung "$1")" "${b#* }")x ($(name "${b%% *}") ${b#* })"; }

e2e=$(div "$(M lumbung n0)" "$(M engine n0)")
nc_speedup=$(div "$(M lumbung n0s)" "$(M lumbung nc)" %.1f)
ra_mbs=$(awk -v m="$(M lumbung ra)" 'BEGIN { printf "%.0f", m * 1.048576 }')
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v != "-" && v + 0 >= t) print "**met**"; else print "**not met**" }'; }

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
	echo "- Data: $src_desc; night 0 = $(mib $((src0 / 1024))) MiB ($src0 bytes) in $nfiles0 files, 37 tenants; night 1 = $src1 bytes."
	echo "- Machine: $(nproc) CPUs, $cpu_model, $mem RAM, $(uname -sr), filesystem $fs."
	echo "- Versions: $lbver (git $gitrev$gitdirty; binaries built $built); $borgver; $resticver."
	echo "- Load average (1/5/15 min): $load_start at the start, $load_end at the end; $total_min min in all."
	echo
	echo "MiB/s are source bytes (regular files of the 37 tenant directories) per wall second;"
	echo "no-change and one file in seconds; store = \`du -sb\` of the store or repository after n1"
	echo "divided by the bytes of night 1; RSS = peak resident set of the initial backup"
	echo "(GNU time %M), for Lumbung the client and the daemon (VmHWM over the whole run) apart."
	echo
	echo "| | initial n0 (MiB/s) | nightly n1 (MiB/s) | no-change (s) | restore all (MiB/s) | one file (s) | store/source after n1 | peak RSS (MiB) |"
	echo "|---|---|---|---|---|---|---|---|"
	echo "| Lumbung (lumbung -> lumbungd) | $(M lumbung n0) | $(M lumbung n1) | $(M lumbung nc) | $(M lumbung ra) | $(M lumbung one) | $(M lumbung store) | client $(rssm lumbung rss_client), daemon $(rssm lumbung rss_daemon) |"
	echo "| BorgBackup | $(M borg n0) | $(M borg n1) | $(M borg nc) | $(M borg ra) | $(M borg one) | $(M borg store) | $(rssm borg rss) |"
	echo "| restic | $(M restic n0) | $(M restic n1) | $(M restic nc) | $(M restic ra) | $(M restic one) | $(M restic store) | $(rssm restic rss) |"
	echo "| Lumbung engine only (tests/lbstore) | $(M engine n0) | | | | | ($(M engine store0) after n0) | $(rssm engine rss) |"
	echo
	echo "## Ratios"
	echo
	echo "Lumbung against the better of the two peers in each column (speed: >1 means Lumbung is"
	echo "faster; store and RSS: <1 means Lumbung is smaller):"
	echo
	echo "| initial | nightly | no-change | restore all | one file | store | peak RSS (daemon + client) |"
	echo "|---|---|---|---|---|---|---|"
	rss_lb=$(awk -v a="$(M lumbung rss_daemon)" -v b="$(M lumbung rss_client)" 'BEGIN { print a + b }')
	b=$(best rss lo)
	echo "| $(vs_hi n0) | $(vs_hi n1) | $(vs_lo_time nc) | $(vs_hi ra) | $(vs_lo_time one) | $(vs_lo_size store) | $(div "$rss_lb" "${b#* }")x ($(name "${b%% *}") $(mib "${b#* }") MiB) |"
	echo
	echo "The issue's targets:"
	echo
	echo "| target | measured | |"
	echo "|---|---|---|"
	echo "| end-to-end backup >= 80% of engine-only | $(M lumbung n0) / $(M engine n0) MiB/s = $e2e | $(verdict "$e2e" 0.80) |"
	echo "| no-change >= 10x faster than the first backup | $(M lumbung n0s) s / $(M lumbung nc) s = ${nc_speedup}x (BorgBackup $(div "$(M borg n0s)" "$(M borg nc)" %.1f)x, restic $(div "$(M restic n0s)" "$(M restic nc)" %.1f)x) | $(verdict "$nc_speedup" 10) |"
	echo "| restore of a whole dataset >= 500 MB/s (page-cache target) | $(M lumbung ra) MiB/s = $ra_mbs MB/s | $(verdict "$ra_mbs" 500) |"
	echo
	echo "## Commands"
	echo
	echo "Each run: \`cp -a NIGHT0 RUN/data\`; every file of RUN/data read once (\`cat\`) before each"
	echo "backup; \`sync\` before each timed step; wall time from \`date +%s%N\` around the command"
	echo "(run under \`/usr/bin/time -f '%e %U %S %M'\`).  Night 1: \`gen_dataset.py --out RUN/data --mutate 1\`."
	echo "ONE is \`$one\` ($one_bytes bytes)."
	echo
	echo '```'
	echo "# Lumbung: lumbungd --config RUN/lumbung.conf --foreground (fresh per run; store RUN/store,"
	echo "#   compression zstd:3, tenant bench), LUMBUNG_SOCKET=RUN/lumbungd.sock"
	echo "lumbung backup --dataset bench/all RUN/data                        # n0, n1, no-change"
	echo "lumbung restore bench/all@latest --target RUN/restore              # restore all"
	echo "lumbung restore bench/all@latest ONE --target RUN/one              # one file"
	echo "# daemon peak: VmHWM of /proc/PID/status at the end of the run"
	echo
	echo "# BorgBackup: BORG_BASE_DIR=RUN/borg-base BORG_CACHE_DIR=RUN/borg-cache"
	echo "borg init --encryption none RUN/repo                               # not timed"
	echo "cd RUN/data && borg create --compression zstd,3 RUN/repo::n0 t*   # n1, then n1-again"
	echo "cd RUN/restore && borg extract RUN/repo::n1-again                  # restore all"
	echo "cd RUN/one && borg extract RUN/repo::n1 ONE                        # one file"
	echo
	echo "# restic: RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=RUN/restic-cache"
	echo "restic -r RUN/repo init --repository-version 2                     # not timed"
	echo "cd RUN/data && restic -r RUN/repo backup --compression auto --host bench --tag n0 t*   # n1, n1"
	echo "restic -r RUN/repo restore latest --target RUN/restore             # restore all"
	echo "restic -r RUN/repo restore latest --target RUN/one --include /ONE   # the tree holds t01-.../, not RUN/data/t01-.../"
	echo
	echo "# engine only (night 0): timed together"
	echo "tests/lbstore init RUN/store && tests/lbstore backup RUN/store bench all RUN/data"
	echo '```'
	echo
	echo "Each tool's first restore of everything is compared with its data by \`diff -r\` (not"
	echo "timed), each one-file restore by \`cmp\`.  Per-step wall, user and system seconds,"
	echo "peak RSS, the daemon's CPU seconds during the step and the load average are in"
	echo "\`$rel_out/steps.tsv\`, the tools' output in \`$rel_out/logs/\`."
	echo
	echo "## Reproduce"
	echo
	echo '```'
	echo "make -j2"
	echo "apt-get install borgbackup restic time       # borg 1.2.4 and restic 0.14.0 on Debian 12"
	echo "bench/run-compare.sh --runs 3                # generates 1 GiB into bench/out/compare/night-0"
	echo "bench/run-compare.sh --runs 3 --data bench/out/full/night-0   # or reuse run-engine.sh's night 0"
	echo '```'
	echo
	echo "It takes a few minutes per run per GiB and needs about 3x the data size free on the"
	echo "filesystem of --out (one run directory at a time: data, store, restore).  Absolute"
	echo "figures move with the machine and its load; compare within one run, as ratios."
	echo ""
	echo "Restores of everything go to ${RESTORE_BASE:-the run directory} (tmpfs when /dev/shm has room: the"
	echo "issue's page-cache target), the same for every tool."
} >"$out/compare.md"

if [ "$publish" = 1 ]; then
	cp "$out/compare.md" "$top/bench/COMPARE.md"
fi
cat "$out/compare.md"
say "written to $out/compare.md$([ "$publish" = 1 ] && echo " and bench/COMPARE.md")"
