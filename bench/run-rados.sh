#!/bin/bash
# run-rados.sh - Lumbung end to end (`lumbung` -> `lumbungd`) with the store
# on the local backend and on the Ceph RADOS backend, on the same data.
#
#   bench/run-rados.sh [--builddir DIR] [--size-mb N] [--data DIR] [--runs R]
#                      [--out DIR]
#
# Starts a throwaway single-node Ceph cluster (scripts/ceph-cluster.sh: one
# mon, one memstore OSD of 2 GiB, cephx, pool "lumbung", user
# client.lumbung, loopback only) in a work directory, then for each of R
# runs, for each backend in turn (local first in odd runs, rados first in
# even runs), a fresh lumbungd on a fresh store and, timed:
#   backup   initial backup of the data (lumbung backup --dataset dinkes/app)
#   nochange a second backup with nothing changed
#   restore  lumbung restore dinkes/app@latest --target EMPTY-DIR
# local: [store] path = WORK/store-R.  rados: backend = rados, the index
# cache in WORK/cache-R, rados_namespace = runR (fresh per run); after the
# initial backup the objects in the namespace are counted and their sizes
# summed (rados ls, rados stat), and after the run they are deleted, so the
# memstore OSD (all in RAM, full at 95 %) holds one run's store at a time.
# Speeds are MiB (2^20 bytes) of source bytes (the regular files of the
# data) per wall second (date +%s%N around the client command); the data is
# read once before each backup, `sync` runs before each timed step.  The
# first restore of each backend is compared with the data (diff -r -q, not
# timed).  Prints the medians and the ratio rados/local and writes them with
# every run's figures, the machine, the versions and the load average to
# DIR/rados.md and DIR/rados.json (DIR/steps.tsv, DIR/pool.tsv, DIR/logs/).
#
#   --builddir DIR  where daemon/lumbungd and tools/lumbung were built
#                   (default: this checkout; also $top_builddir); lumbungd
#                   must be built with librados (HAVE_RADOS in config.h)
#   --size-mb N     night-0 size when generating (default 512), generated
#                   once into DIR/night-0 with gen_dataset.py --tenants 37
#                   --seed 20240301 and reused by a later run of the same size
#   --data DIR      an existing tree to back up instead (read, never modified)
#   --runs R        runs per backend (default 3; the median is reported)
#   --out DIR       results, logs and night-0 (default bench/out/rados)
#
# Needs ceph-mon, ceph-osd, ceph, rados (Ceph 16 tested), python3, diffutils,
# and about 3 GiB of free RAM for the default size (the OSD's memstore, the
# restores on /dev/shm).  Environment: LUMBUNG_BENCH_GEN overrides the path
# of gen_dataset.py; LUMBUNG_BENCH_RESTORE_DIR the directory restores go to
# (default a tmpfs directory under /dev/shm when it has room, else the work
# directory).  The work directory is mktemp -d under $TMPDIR (default /tmp):
# the local store and the cluster live there; on exit (also on failure or
# INT/TERM) lumbungd is stopped, then the cluster, then the directory removed.
# Time: about 2 min for the default run (3 runs of 512 MiB, generating night
# 0 included: 20 s; cluster start: 8 s) on the 2-core test machine at load 5.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
top=$(cd "$here/.." && pwd)
bld=${top_builddir:-$top}
size_mb=512
data=
runs=3
out=$top/bench/out/rados
seed=20240301
tenants=37

while [ $# -gt 0 ]; do
	case $1 in
	--builddir) bld=$2; shift 2 ;;
	--size-mb) size_mb=$2; shift 2 ;;
	--data) data=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "run-rados.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
case $size_mb$runs in
*[!0-9]* | '') echo "run-rados.sh: --size-mb and --runs take numbers" >&2; exit 2 ;;
esac
if [ "$runs" -lt 1 ] || [ "$size_mb" -lt 1 ]; then
	echo "run-rados.sh: --size-mb and --runs must be at least 1" >&2
	exit 2
fi

gen=${LUMBUNG_BENCH_GEN:-$top/../shared/bench/gen_dataset.py}
cluster=$top/scripts/ceph-cluster.sh
bld=$(cd "$bld" && pwd)
LUMBUNGD=$bld/daemon/lumbungd
LUMBUNG=$bld/tools/lumbung

# ---- prerequisites ----------------------------------------------------------------
missing=
for t in ceph-mon ceph-osd ceph rados python3 diff timeout sync xargs awk; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "run-rados.sh: missing:$missing (apt-get install ceph-mon ceph-osd ceph-common python3 diffutils)" >&2
	exit 1
fi
for b in "$LUMBUNGD" "$LUMBUNG"; do
	[ -x "$b" ] || { echo "run-rados.sh: $b not built; run 'make' in $bld first" >&2; exit 1; }
done
if [ -f "$bld/config.h" ]; then
	grep -q '^#define HAVE_RADOS 1' "$bld/config.h" ||
		{ echo "run-rados.sh: $bld was configured without librados (no HAVE_RADOS in config.h)" >&2; exit 1; }
fi
[ -f "$cluster" ] || { echo "run-rados.sh: $cluster not found" >&2; exit 1; }
if [ -z "$data" ] && [ ! -f "$gen" ]; then
	echo "run-rados.sh: gen_dataset.py not found at $gen (set LUMBUNG_BENCH_GEN or give --data)" >&2
	exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/logs
rm -rf "$log" "$out/steps.tsv" "$out/pool.tsv" "$out/meta.tsv" "$out/rados.md" "$out/rados.json"
mkdir -p "$log"

# ---- work directory and cleanup -----------------------------------------------------
W=$(mktemp -d "${TMPDIR:-/tmp}/lb-rados-XXXXXX")
C=$W/ceph
RT=
cluster_started=0
cleanup() {
	stop_daemon
	# the cluster is stopped (by its pid files in $C) before $W is removed
	if [ "$cluster_started" = 1 ]; then
		sh "$cluster" stop "$C" >>"$log/ceph-stop.log" 2>&1 ||
			echo "run-rados.sh: stopping the cluster in $C failed; $W kept" >&2
	fi
	[ -z "$RT" ] || rm -rf "$RT"
	if [ ! -f "$C/osd.pid" ] && [ ! -f "$C/mon.pid" ]; then
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The binaries as they are now: a rebuild during the run cannot change what
# is measured halfway.
mkdir "$W/bin"
cp "$LUMBUNGD" "$LUMBUNG" "$W/bin/"
LUMBUNGD=$W/bin/lumbungd
LUMBUNG=$W/bin/lumbung

RADOS() { timeout 120 rados -c "$C/ceph.conf" --id lumbung -p lumbung "$@"; }

# ---- the data ------------------------------------------------------------------------
if [ -n "$data" ]; then
	data=$(cd "$data" && pwd)
	src_desc="$data (given with --data)"
	[ -f "$data/.genstate.json" ] && src_desc="$src_desc, a gen_dataset.py tree"
else
	data=$out/night-0
	# reuse night 0 of an earlier run of the same size (the generator is
	# deterministic; an interrupted generation never gets this name)
	if ! python3 - "$data/.genstate.json" "$size_mb" "$seed" "$tenants" <<'PY' 2>/dev/null; then
import json, sys
g = json.load(open(sys.argv[1]))
ok = (g.get("night") == 0 and int(g.get("total_mb", -1)) == int(sys.argv[2])
      and str(g.get("seed")) == sys.argv[3] and int(g.get("tenants", -1)) == int(sys.argv[4]))
sys.exit(0 if ok else 1)
PY
		say "generating $size_mb MiB, $tenants tenants (night 0) into $data"
		rm -rf "$data" "$data.tmp"
		python3 "$gen" --out "$data.tmp" --tenants "$tenants" --total-mb "$size_mb" --seed "$seed" >"$log/gen.txt" 2>&1
		mv "$data.tmp" "$data"
	else
		say "reusing $data (night 0 of $size_mb MiB, seed $seed)"
	fi
	src_desc="gen_dataset.py --tenants $tenants --total-mb $size_mb --seed $seed (night 0)"
fi
src_bytes=$(tree_bytes "$data")
src_files=$(find "$data" -type f | wc -l)
[ "$src_bytes" -gt 0 ] || { echo "run-rados.sh: $data holds no bytes" >&2; exit 1; }
say "source: $src_desc: $src_bytes bytes in $src_files files"
if [ "$src_bytes" -gt $((1536 << 20)) ]; then
	say "warning: over 1.5 GiB of source; the memstore OSD holds 2 GiB and is full at 95 %: backups may fail if the data does not compress"
fi

# Restores go to tmpfs when it has room for two copies (the page-cache target
# run-compare.sh uses), else to the work directory.
if [ -n "${LUMBUNG_BENCH_RESTORE_DIR:-}" ]; then
	mkdir -p "$LUMBUNG_BENCH_RESTORE_DIR"
	RT=$(mktemp -d "$LUMBUNG_BENCH_RESTORE_DIR/lb-rados-restore-XXXXXX")
elif [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((2 * src_bytes / 1024 + 1048576)) ]; then
	RT=$(mktemp -d /dev/shm/lb-rados-restore-XXXXXX)
else
	RT=$W/restore
	mkdir -p "$RT"
fi
rt_fs=$(df -PT "$RT" | awk 'NR == 2 { print $2 }')
store_fs=$(df -PT "$W" | awk 'NR == 2 { print $2 " (" $1 ")" }')

# ---- the cluster ------------------------------------------------------------------------
uptime_start=$(uptime)
load_start=$(loadavg)
t_start=$(now)
say "starting a Ceph cluster in $C"
cluster_started=1
if ! sh "$cluster" start "$C" >"$log/ceph-start.log" 2>&1; then
	say "the cluster did not start:"
	tail -30 "$log/ceph-start.log" >&2
	exit 1
fi
OSD_PID=$(cat "$C/osd.pid")

# ---- one backend, one run ----------------------------------------------------------------
steps=$out/steps.tsv
pool=$out/pool.tsv
printf 'run\tbackend\tstep\tbytes\twall_s\tmib_s\tlumbungd_cpu_s\tosd_cpu_s\tload\n' >"$steps"
printf 'run\tbackend\tstart_s\tobjects\tpacks\tobject_bytes\tstore_physical\tlocal_bytes\n' >"$pool"

# timed RUN BACKEND STEP CMD...: syncs, runs CMD with its output in
# logs/RUN-BACKEND-STEP.log, appends a line to steps.tsv.  Exits on failure.
timed() {
	local r=$1 be=$2 step=$3 t0 t1 d0 d1 o0 o1 rc=0 wall
	shift 3
	sync
	d0=$(proc_cpu "$DPID")
	o0=$(proc_cpu "$OSD_PID")
	t0=$(now)
	"$@" >"$log/$r-$be-$step.log" 2>&1 || rc=$?
	t1=$(now)
	d1=$(proc_cpu "$DPID")
	o1=$(proc_cpu "$OSD_PID")
	if [ "$rc" -ne 0 ]; then
		say "FAILED ($rc): run $r $be $step: $*"
		tail -20 "$log/$r-$be-$step.log" >&2
		tail -5 "$log/$r-$be-lumbungd.log" >&2
		exit 1
	fi
	wall=$(secs "$t1" "$t0")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$be" "$step" "$src_bytes" "$wall" \
		"$(mibs "$src_bytes" "$wall")" "$(awk -v a="$d1" -v b="$d0" 'BEGIN { printf "%.2f", a - b }')" \
		"$(awk -v a="$o1" -v b="$o0" 'BEGIN { printf "%.2f", a - b }')" "$(loadavg | tr ' ' ,)" >>"$steps"
	say "run $r $be $step: $wall s, $(mibs "$src_bytes" "$wall") MiB/s"
}

# shellcheck disable=SC2034 # read as ${!v} in run_backend
verified_local=0 verified_rados=0

run_backend() {
	local r=$1 be=$2 ns=run$1 conf=$W/$1-$2.conf t0 t1 start_s objects=- packs=- obytes=- phys local_bytes v
	export LUMBUNG_SOCKET=$W/sock
	{
		echo "[store]"
		if [ "$be" = rados ]; then
			echo "path = $W/cache-$r"
			echo "backend = rados"
			echo "rados_conf = $C/ceph.conf"
			echo "rados_pool = lumbung"
			echo "rados_user = lumbung"
			echo "rados_namespace = $ns"
		else
			echo "path = $W/store-$r"
		fi
		echo "[daemon]"
		echo "socket = $LUMBUNG_SOCKET"
		echo "[tenant dinkes]"
		echo "name = Dinas Kesehatan"
	} >"$conf"
	cp "$conf" "$log/$r-$be.conf"
	t0=$(now)
	"$LUMBUNGD" --config "$conf" --foreground >"$log/$r-$be-lumbungd.log" 2>&1 &
	DPID=$!
	until "$LUMBUNG" version >"$log/version.txt" 2>&1; do
		kill -0 "$DPID" 2>/dev/null || { DPID=; say "lumbungd ($be) exited at start:"; tail -5 "$log/$r-$be-lumbungd.log" >&2; exit 1; }
		[ $(($(now) - t0)) -lt 60000000000 ] || { say "lumbungd ($be) did not answer within 60 s"; exit 1; }
		sleep 0.05
	done
	t1=$(now)
	start_s=$(secs "$t1" "$t0")

	warm "$data"
	timed "$r" "$be" backup "$LUMBUNG" backup --dataset dinkes/app "$data" --json
	# what the daemon read must be the bytes the speeds are computed from
	python3 - "$log/$r-$be-backup.log" "$src_bytes" <<'PY' || { say "run $r $be: the backup did not cover the source bytes"; exit 1; }
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
sys.exit(0 if int(j["bytes"]) == int(sys.argv[2]) else 1)
PY
	# the store after the initial backup
	"$LUMBUNG" quota --json >"$log/$r-$be-quota.json"
	phys=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["store"]["physical"])' "$log/$r-$be-quota.json")
	if [ "$be" = rados ]; then
		RADOS --namespace "$ns" ls | sort >"$log/$r-rados-objects.txt"
		objects=$(wc -l <"$log/$r-rados-objects.txt")
		packs=$(grep -c '^packs/' "$log/$r-rados-objects.txt" || true)
		obytes=0
		while read -r o; do
			v=$(RADOS --namespace "$ns" stat "$o" | sed -n 's/.*, size \([0-9]*\)$/\1/p')
			[ -n "$v" ] || { say "rados stat $o gave no size"; exit 1; }
			obytes=$((obytes + v))
		done <"$log/$r-rados-objects.txt"
		local_bytes=$(du -sb "$W/cache-$r" | cut -f1)
	else
		local_bytes=$(du -sb "$W/store-$r" | cut -f1)
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$be" "$start_s" "$objects" "$packs" "$obytes" "$phys" "$local_bytes" >>"$pool"

	warm "$data"
	timed "$r" "$be" nochange "$LUMBUNG" backup --dataset dinkes/app "$data" --json

	rm -rf "$RT/out"
	mkdir "$RT/out"
	timed "$r" "$be" restore "$LUMBUNG" restore dinkes/app@latest --target "$RT/out"
	v=verified_$be
	if [ "${!v}" = 0 ]; then
		say "run $r $be: comparing the restore with the data (diff -r -q, not timed)"
		if ! diff -r -q "$data" "$RT/out" >"$log/$r-$be-diff.log" 2>&1; then
			say "run $r $be: the restore differs from the data:"
			head -20 "$log/$r-$be-diff.log" >&2
			exit 1
		fi
		printf -v "$v" 1
	fi
	rm -rf "$RT/out"
	stop_daemon
	if [ "$be" = rados ]; then
		# give the OSD's memory back before the next run
		RADOS --namespace "$ns" ls | xargs -r -n 64 timeout 120 rados -c "$C/ceph.conf" --id lumbung -p lumbung --namespace "$ns" rm
		[ "$(RADOS --namespace "$ns" ls | wc -l)" = 0 ] || { say "objects left in namespace $ns"; exit 1; }
		rm -rf "$W/cache-$r"
	else
		rm -rf "$W/store-$r"
	fi
}

for r in $(seq "$runs"); do
	say "=== run $r of $runs (load $(loadavg)) ==="
	if [ $((r % 2)) = 1 ]; then order="local rados"; else order="rados local"; fi
	for be in $order; do
		run_backend "$r" "$be"
	done
done
t_end=$(now)
uptime_end=$(uptime)
load_end=$(loadavg)

# ---- results -------------------------------------------------------------------------------
gitrev=$(git -C "$bld" rev-parse --short HEAD 2>/dev/null || echo unknown)
gitdirty=$(git -C "$bld" status --porcelain --untracked-files=no -- lib daemon tools 2>/dev/null | awk '{ f = f " " $2 } END { if (f != "") print ", uncommitted changes in" f }')
meta=$out/meta.tsv
{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'runs\t%s\n' "$runs"
	printf 'source\t%s\n' "$src_desc"
	printf 'source_bytes\t%s\n' "$src_bytes"
	printf 'source_files\t%s\n' "$src_files"
	printf 'cpus\t%s\n' "$(nproc)"
	printf 'cpu_model\t%s\n' "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
	printf 'ram\t%s\n' "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	printf 'kernel\t%s\n' "$(uname -sr)"
	printf 'lumbung\t%s\n' "$(head -2 "$log/version.txt" | sed 's/; you are.*//' | tr '\n' ' ' | sed 's/ $//')"
	printf 'git\t%s%s\n' "$gitrev" "$gitdirty"
	printf 'builddir\t%s\n' "$bld"
	printf 'ceph\t%s\n' "$(ceph --version | cut -d' ' -f1-3,5-6)"
	printf 'store_fs\t%s\n' "$store_fs"
	printf 'restore_fs\t%s\n' "$rt_fs"
	printf 'uptime_start\t%s\n' "$(echo "$uptime_start" | sed 's/^ *//')"
	printf 'uptime_end\t%s\n' "$(echo "$uptime_end" | sed 's/^ *//')"
	printf 'load_start\t%s\n' "$load_start"
	printf 'load_end\t%s\n' "$load_end"
	printf 'minutes\t%s\n' "$(awk -v a="$t_end" -v b="$t_start" 'BEGIN { printf "%.1f", (a - b) / 6e10 }')"
	printf 'out\t%s\n' "${out#"$top"/}"
} >"$meta"

python3 - "$out" <<'PY'
import csv, json, os, statistics, sys

out = sys.argv[1]
meta = dict(l.rstrip("\n").split("\t", 1) for l in open(os.path.join(out, "meta.tsv")))
steps = list(csv.DictReader(open(os.path.join(out, "steps.tsv")), delimiter="\t"))
pool = list(csv.DictReader(open(os.path.join(out, "pool.tsv")), delimiter="\t"))
BE = ("local", "rados")
STEPS = (("backup", "initial backup"), ("nochange", "no-change backup"), ("restore", "restore all"))

def med(xs):
    xs = [float(x) for x in xs if x not in ("-", "")]
    return statistics.median(xs) if xs else None

def col(rows, key, **where):
    return [r[key] for r in rows if all(r[k] == v for k, v in where.items())]

res = {"meta": meta, "steps": {}, "store": {}, "runs": {"steps": steps, "store": pool}}
for s, _ in STEPS:
    d = {}
    for b in BE:
        d[b] = {k: med(col(steps, k, step=s, backend=b)) for k in ("mib_s", "wall_s", "lumbungd_cpu_s", "osd_cpu_s")}
        d[b]["every_run_mib_s"] = [float(x) for x in col(steps, "mib_s", step=s, backend=b)]
    d["ratio_rados_local"] = d["rados"]["mib_s"] / d["local"]["mib_s"] if d["local"]["mib_s"] else None
    res["steps"][s] = d
for b in BE:
    res["store"][b] = {k: med(col(pool, k, backend=b)) for k in ("start_s", "objects", "packs", "object_bytes", "store_physical", "local_bytes")}
json.dump(res, open(os.path.join(out, "rados.json"), "w"), indent=1)

def f(v, fmt="%.1f"):
    return "-" if v is None else fmt % v
MiB = 2 ** 20
m = meta
L = []
L.append("# Lumbung with the store on the local backend and in Ceph RADOS")
L.append("")
L.append("Generated by `bench/run-rados.sh` on %s, %s run(s) per backend, medians." % (m["date"], m["runs"]))
L.append("")
L.append("- Data: %s; %.0f MiB (%s bytes) in %s files." % (m["source"], int(m["source_bytes"]) / MiB, m["source_bytes"], m["source_files"]))
L.append("- Machine: %s CPUs, %s, %s RAM, %s; local store and RADOS index cache on %s, restores to %s." % (
    m["cpus"], m["cpu_model"], m["ram"], m["kernel"], m["store_fs"], m["restore_fs"]))
L.append("- Versions: %s (git %s, %s); %s." % (m["lumbung"], m["git"], m["builddir"], m["ceph"]))
L.append("- Cluster: `scripts/ceph-cluster.sh` on this machine: 1 mon, 1 memstore OSD (2 GiB, in RAM), cephx, loopback, pool `lumbung` (size 1, 8 PGs), a fresh `rados_namespace` per run.")
L.append("- Load: `%s` at the start, `%s` at the end; %s min in all." % (m["uptime_start"], m["uptime_end"], m["minutes"]))
L.append("")
L.append("MiB/s are source bytes per wall second of the `lumbung` command; CPU seconds are")
L.append("lumbungd's and ceph-osd's during the step (from /proc), medians.")
L.append("")
L.append("| step | local MiB/s | rados MiB/s | rados/local | local s | rados s | lumbungd CPU s local / rados | ceph-osd CPU s (rados) |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
for s, name in STEPS:
    d = res["steps"][s]
    L.append("| %s | %s | %s | %s | %s | %s | %s / %s | %s |" % (
        name, f(d["local"]["mib_s"]), f(d["rados"]["mib_s"]), f(d["ratio_rados_local"], "%.2f"),
        f(d["local"]["wall_s"], "%.2f"), f(d["rados"]["wall_s"], "%.2f"),
        f(d["local"]["lumbungd_cpu_s"], "%.2f"), f(d["rados"]["lumbungd_cpu_s"], "%.2f"),
        f(d["rados"]["osd_cpu_s"], "%.2f")))
L.append("")
L.append("Every run, MiB/s (in run order; odd runs local first, even runs rados first):")
L.append("")
for s, name in STEPS:
    d = res["steps"][s]
    L.append("- %s: local %s; rados %s" % (name, " ".join("%.1f" % x for x in d["local"]["every_run_mib_s"]),
                                        " ".join("%.1f" % x for x in d["rados"]["every_run_mib_s"])))
L.append("")
sl, sr = res["store"]["local"], res["store"]["rados"]
L.append("The store after the initial backup (medians over the runs):")
L.append("")
L.append("| | objects in the namespace (packs) | bytes of the objects (`rados stat`) | store physical (`lumbung quota --json`) | on local disk (`du -sb`) | lumbungd start s |")
L.append("|---|---:|---:|---:|---:|---:|")
L.append("| local | | | %s (%.1f MiB) | %s (store) | %s |" % (f(sl["store_physical"], "%.0f"), sl["store_physical"] / MiB, f(sl["local_bytes"], "%.0f"), f(sl["start_s"], "%.2f")))
L.append("| rados | %s (%s) | %s (%.1f MiB) | %s (%.1f MiB) | %s (index cache) | %s |" % (
    f(sr["objects"], "%.0f"), f(sr["packs"], "%.0f"), f(sr["object_bytes"], "%.0f"), sr["object_bytes"] / MiB,
    f(sr["store_physical"], "%.0f"), sr["store_physical"] / MiB, f(sr["local_bytes"], "%.0f"), f(sr["start_s"], "%.2f")))
L.append("")
L.append("Per step wall and CPU seconds and the load average are in `%s/steps.tsv`, the store" % m["out"])
L.append("figures of every run in `%s/pool.tsv`, every command's output in `%s/logs/`." % (m["out"], m["out"]))
text = "\n".join(L) + "\n"
open(os.path.join(out, "rados.md"), "w").write(text)
sys.stdout.write(text)
PY
say "written to $out/rados.md and $out/rados.json"
