#!/bin/bash
# run-delta.sh - delta chunks over a week of nights, side by side with
# BorgBackup and restic.
#
#   bench/run-delta.sh [--size-mb N] [--nights K] [--runs R] [--out DIR]
#                      [--data DIR]
#
# Each run starts from a fresh copy of night 0 and, for nights 0..K (the
# dataset mutated in place with gen_dataset.py --mutate between them),
# backs it up into four stores in turn: Lumbung's engine (tests/lbstore)
# with delta chunks (the default) and with them off (LBSTORE_DELTA=0), a
# BorgBackup repository (zstd,3, no encryption) and a restic repository
# (compression auto).  After every night it records each store's size
# (du -sb) and each backup's wall time; after the last night it restores
# the newest snapshot of each into an empty directory on a tmpfs when one
# has room (wall time, and diff -r against the tree for every tool), after
# an untimed copy of the tree there and in an order that rotates by run.  The page cache is warm (the
# tree is read before each backup) and `sync` runs before each timed step.
# Prints, with medians over the runs: store / source after each night,
# what each night added (% of that night's source), nightly backup speed
# with deltas on / off, and restore speed of the newest snapshot against
# the store without deltas and against the peers.  Writes the table to
# DIR/delta.md.
#
#   --size-mb N   night-0 size (default 1024)
#   --nights K    nightly mutations after night 0 (default 7)
#   --runs R      runs (default 3)
#   --out DIR     scratch and results (default bench/out/delta)
#   --data DIR    an existing night-0 tree to copy (never modified)
#
# Needs: make (tests/lbstore), borg, restic, python3, diffutils.
# LUMBUNG_BENCH_GEN overrides the path of gen_dataset.py.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
size_mb=1024
nights=7
runs=3
out=$top/bench/out/delta
data=
seed=20240301

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -eu/d'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--size-mb) size_mb=$2; shift 2 ;;
	--nights) nights=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--data) data=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "run-delta.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
case $size_mb$nights$runs in
*[!0-9]*) echo "run-delta.sh: --size-mb, --nights and --runs take numbers" >&2; exit 2 ;;
esac

gen=${LUMBUNG_BENCH_GEN:-$top/../shared/bench/gen_dataset.py}
lbstore=${LUMBUNG_BENCH_LBSTORE:-$top/tests/lbstore}
missing=
for t in python3 borg restic diff du; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "run-delta.sh: missing:$missing (apt-get install borgbackup restic diffutils python3)" >&2
	exit 1
fi
if [ ! -x "$lbstore" ]; then
	echo "run-delta.sh: $lbstore not built (run make)" >&2
	exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/logs
rm -rf "$out/runs" "$log"
mkdir -p "$log" "$out/runs"

say() { echo "run-delta: $*" >&2; }
now() { date +%s%N; }
warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }
du_b() { du -sb "$1" | cut -f1; }

# ---- night 0 --------------------------------------------------------------------------
if [ -z "$data" ]; then
	if [ ! -d "$out/night-0" ]; then
		say "generating ${size_mb} MiB, 37 tenants"
		python3 "$gen" --out "$out/night-0" --tenants 37 --total-mb "$size_mb" --seed "$seed" >"$log/gen.txt"
	fi
	data=$out/night-0
fi

tools="on off borg restic"
# results: one line per (run, tool, night): R TOOL NIGHT SECONDS STORE_BYTES SOURCE_BYTES
res=$out/results.txt
: >"$res"
: >"$out/restore.txt"

backup() { # tool run night dir
	local tool=$1 r=$2 k=$3 d=$4 rd=$out/runs/$1-$2 t0 t1
	mkdir -p "$rd"
	case $tool in
	on|off)
		[ "$k" -gt 0 ] || "$lbstore" init "$rd/store" >/dev/null
		warm "$d"; sync; t0=$(now)
		if [ "$tool" = off ]; then
			LBSTORE_DELTA=0 "$lbstore" backup "$rd/store" bench data "$d" >"$rd/snap" 2>>"$log/$tool-$r.log"
		else
			"$lbstore" backup "$rd/store" bench data "$d" >"$rd/snap" 2>>"$log/$tool-$r.log"
		fi
		t1=$(now); size=$(du_b "$rd/store") ;;
	borg)
		export BORG_BASE_DIR=$rd/base BORG_CACHE_DIR=$rd/cache BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
		[ "$k" -gt 0 ] || borg init --encryption none "$rd/repo" >"$log/borg-$r-init.log" 2>&1
		warm "$d"; sync; t0=$(now)
		(cd "$d" && borg create --compression zstd,3 "$rd/repo::n$k" t*) 2>>"$log/borg-$r.log"
		t1=$(now); size=$(du_b "$rd/repo") ;;
	restic)
		export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$rd/cache
		[ "$k" -gt 0 ] || restic -r "$rd/repo" init --repository-version 2 >"$log/restic-$r-init.log" 2>&1
		warm "$d"; sync; t0=$(now)
		(cd "$d" && restic -r "$rd/repo" backup --compression auto --host bench t* >>"$log/restic-$r.log" 2>&1)
		t1=$(now); size=$(du_b "$rd/repo") ;;
	esac
	echo "$r $tool $k $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $size $(du_b "$d")" >>"$res"
}

# Restores go to a tmpfs when one has room: re-creating thousands of files
# just deleted on ext4 grows slower run after run (the kernel's search for
# a free inode), which swamped the engines' own differences.
rbase=$out/runs
if [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((3 * size_mb * 1024)) ]; then
	rbase=/dev/shm/lumbung-run-delta.$$
fi
restore() { # tool run tree
	local tool=$1 r=$2 d=$3 rd=$out/runs/$1-$2 t0 t1 rt=$rbase/restore
	rm -rf "$rt"; mkdir -p "$rt"; sync
	case $tool in
	on|off)
		t0=$(now); "$lbstore" restore "$rd/store" "$(cat "$rd/snap")" "$rt" >/dev/null 2>>"$log/$tool-$r.log"; t1=$(now) ;;
	borg)
		export BORG_BASE_DIR=$rd/base BORG_CACHE_DIR=$rd/cache
		t0=$(now); (cd "$rt" && borg extract "$rd/repo::n$nights") 2>>"$log/borg-$r.log"; t1=$(now) ;;
	restic)
		export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$rd/cache
		t0=$(now); restic -r "$rd/repo" restore latest --target "$rt" >>"$log/restic-$r.log" 2>&1; t1=$(now) ;;
	esac
	local same=yes
	diff -r -x .genstate.json "$d" "$rt" >"$log/diff-$tool-$r.txt" 2>&1 || same=no
	echo "$r $tool $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $(du_b "$d") $same" >>"$out/restore.txt"
	rm -rf "$rt"
}
trap 'rm -rf "/dev/shm/lumbung-run-delta.$$"' EXIT

for r in $(seq "$runs"); do
	say "run $r of $runs"
	tree=$out/runs/tree
	rm -rf "$tree"; cp -a "$data" "$tree"
	for k in $(seq 0 "$nights"); do
		if [ "$k" -gt 0 ]; then
			python3 "$gen" --out "$tree" --mutate "$k" >>"$log/gen.txt"
		fi
		for tool in $tools; do
			backup "$tool" "$r" "$k" "$tree"
		done
		say "  night $k: $(awk -v r="$r" -v k="$k" '$1 == r && $3 == k { printf "%s %.2fs %.3fx  ", $2, $4, $5 / $6 }' "$res")"
	done
	# The first restore after a while pays for memory the VM gave back to
	# its host (RESULTS.md, "Engine ingest and restore"): one untimed copy
	# of the tree first, and the tools' order rotates from run to run.
	mkdir -p "$rbase"; cp -a "$tree" "$rbase/warm"; rm -rf "$rbase/warm"
	order=$(echo $tools $tools | cut -d' ' -f$(( (r - 1) % 4 + 1 ))-$(( (r - 1) % 4 + 4 )))
	for tool in $order; do
		restore "$tool" "$r" "$tree"
	done
	rm -rf "$out/runs/"*-"$r"
done

python3 - "$res" "$out/restore.txt" "$nights" "$runs" >"$out/delta.md" <<'EOF'
import statistics, sys
res, rest, nights, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [l.split() for l in open(res)]
tools = ["on", "off", "borg", "restic"]
name = {"on": "Lumbung, deltas on", "off": "Lumbung, deltas off", "borg": "BorgBackup", "restic": "restic"}
med = lambda xs: statistics.median(xs)
def get(tool, k, col):
    return med([float(r[col]) for r in rows if r[1] == tool and int(r[2]) == k])
src = {k: get("on", k, 5) for k in range(nights + 1)}
print("Medians of %d runs; sizes from `du -sb`.\n" % runs)
print("### Store / source after each night\n")
print("| tool | " + " | ".join("n%d" % k for k in range(nights + 1)) + " |")
print("|---|" + "---|" * (nights + 1))
for t in tools:
    print("| %s | " % name[t] + " | ".join("%.3fx" % (get(t, k, 4) / src[k]) for k in range(nights + 1)) + " |")
print("\n### What each night added, % of that night's source\n")
print("| tool | " + " | ".join("n%d" % k for k in range(1, nights + 1)) + " | max |")
print("|---|" + "---|" * (nights + 1))
for t in tools:
    adds = [100.0 * (get(t, k, 4) - get(t, k - 1, 4)) / src[k] for k in range(1, nights + 1)]
    print("| %s | " % name[t] + " | ".join("%.2f%%" % a for a in adds) + " | %.2f%% |" % max(adds))
print("\n### Backup wall seconds (speed of deltas on / off)\n")
print("| tool | " + " | ".join("n%d" % k for k in range(nights + 1)) + " |")
print("|---|" + "---|" * (nights + 1))
for t in tools:
    print("| %s | " % name[t] + " | ".join("%.2f" % get(t, k, 3) for k in range(nights + 1)) + " |")
# the speed ratio per night, from the per-run ratios
ratios = []
for k in range(1, nights + 1):
    rr = []
    for r in range(1, runs + 1):
        on = [float(x[3]) for x in rows if x[0] == str(r) and x[1] == "on" and int(x[2]) == k]
        off = [float(x[3]) for x in rows if x[0] == str(r) and x[1] == "off" and int(x[2]) == k]
        if on and off:
            rr.append(off[0] / on[0])
    ratios.append(med(rr))
print("| on / off speed | - | " + " | ".join("%.0f%%" % (100 * x) for x in ratios) + " |")
print("\nNightly speed with deltas, median over nights 1-%d: %.0f%% of the speed without (lowest night %.0f%%)." %
      (nights, 100 * med(ratios), 100 * min(ratios)))
rs = [l.split() for l in open(rest)]
print("\n### Restore of the newest snapshot (night %d)\n" % nights)
print("| tool | seconds | MiB/s | bit-exact |")
print("|---|---|---|---|")
speed = {}
for t in tools:
    secs = med([float(r[2]) for r in rs if r[1] == t])
    size = float([r for r in rs if r[1] == t][0][3])
    speed[t] = size / 1048576 / secs
    same = all(r[4] == "yes" for r in rs if r[1] == t)
    print("| %s | %.2f | %.1f | %s |" % (name[t], secs, speed[t], "yes" if same else "NO"))
print("\nRestore with deltas: %.0f%% of the speed without; %.2fx the faster peer." %
      (100 * speed["on"] / speed["off"], speed["on"] / max(speed["borg"], speed["restic"])))
EOF
cat "$out/delta.md"
