#!/bin/bash
# run-link.sh - the slow-link targets: Lumbung's pull over SSH side by side
# with BorgBackup and restic pushing over SSH, across a veth pair between two
# network namespaces, every tool's bytes counted on the same interface.
#
#   bench/run-link.sh [--total-mb N] [--dump-mb N] [--runs R] [--rate RATE]
#                     [--out DIR] [--build DIR] [--only LIST] [--quick]
#
# Needs root (ip netns, tc, sshd).  Makes two network namespaces joined by a
# veth pair: lb-appl (10.77.0.1/24, the appliance: lumbungd, the Lumbung
# store, the BorgBackup and restic repositories) and lb-opd (10.77.0.2/24, the
# OPD server: the data).  A throwaway sshd (key only, bound to the namespace's
# address) runs in each: lumbung backup --remote ssh://root@10.77.0.2/PATH
# pulls from lb-appl (the key forced to `lumbung agent --allow`), borg and
# restic push from lb-opd to lb-appl (ssh://, sftp:).  Wire bytes are the
# veth's rx_bytes + tx_bytes read inside lb-appl before and after each step,
# the same for every tool; Lumbung's own link_bytes are recorded next to
# them.  Three scenarios (--only picks some):
#
#   dump      a SQL dump of --dump-mb MiB (gen_sqldump.py) synced, then
#             `--mutate update` (1 % of the rows changed in place) and its
#             nightly sync, then `--mutate insert` (1 % more rows in the
#             middle) and its nightly sync; no rate limit.  Target: the
#             nightly crosses as <= 3 % (update) / <= 5 % (insert) of the
#             dump's size.
#   nochange  the dataset (gen_dataset.py --tenants 37 --total-mb N) synced
#             into fresh stores, then synced again with nothing changed; no
#             rate limit.  Target: <= 0.1 % of its size crosses and the
#             second sync is >= 20x faster than the first.
#   slow      the dataset after gen_dataset.py --mutate 1, nightly sync over
#             a link limited to RATE (tc tbf on both veth ends).  Target:
#             Lumbung >= 5x faster than with --no-delta, and faster than
#             restic and BorgBackup.  The first sync before it runs
#             unlimited (1 GiB at 10 Mbit/s would take 15 min a tool).
#
# Each nightly sync is repeated R times from the same pre-night state: the
# store or repository (appliance side) and the client's cache (borg's
# files cache and security dir, restic's cache: OPD side) are copied (cp -a)
# before the night and put back before each run, with lumbungd restarted on
# the copy.  The data is never copied: it is mutated in place, so that the
# inode and ctime checks of every tool see exactly one night's changes.
# First syncs (dump, nochange) run R times into fresh stores; the last one
# is kept as the base of the nights.  Runs are interleaved (run 1 of every
# tool, then run 2, ...).  The data is read once before each step (warm page
# cache on the OPD side) and `sync` runs before it.  Medians are reported.
#
#   --total-mb N   dataset size (default 1024)
#   --dump-mb N    SQL dump size (default 1024)
#   --runs R       repetitions of each timed step (default 3)
#   --rate RATE    the limited link, as tc takes it (default 10mbit)
#   --out DIR      results DIR/link.md and DIR/link.json, scratch and logs
#                  in DIR/link/ (default bench/out)
#   --build DIR    where daemon/lumbungd and tools/lumbung were built
#                  (default: this checkout; also LUMBUNG_BENCH_BUILD)
#   --only LIST    comma-separated scenarios (default dump,nochange,slow)
#   --keep         keep the data, stores and repositories in DIR/link/
#   --quick        --total-mb 128 --dump-mb 128 --runs 1: a few minutes
#
# Needs: ip (iproute2), tc, sshd and ssh (openssh-server, openssh-client),
# borg, restic, python3, GNU time (/usr/bin/time), flock.  Environment:
# LUMBUNG_BENCH_GEN overrides the path of gen_dataset.py (default
# ../shared/bench/gen_dataset.py relative to the repository).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
me=run-link.sh

total_mb=1024
dump_mb=1024
runs=3
rate=10mbit
out=$top/bench/out
build=${LUMBUNG_BENCH_BUILD:-$top}
only=dump,nochange,slow
keep=0
quick=0
seed=20240301
tenants=37
args="$*"

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -eu/d'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--total-mb) total_mb=$2; shift 2 ;;
	--dump-mb) dump_mb=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--quick) quick=1; total_mb=128; dump_mb=128; runs=1; shift ;;
	-h|--help) usage 0 ;;
	*) echo "$me: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
done
case $total_mb$dump_mb$runs in
*[!0-9]*|'') echo "$me: --total-mb, --dump-mb and --runs take numbers" >&2; exit 2 ;;
esac
if [ "$runs" -lt 1 ] || [ "$total_mb" -lt 1 ] || [ "$dump_mb" -lt 1 ]; then
	echo "$me: --total-mb, --dump-mb and --runs must be at least 1" >&2
	exit 2
fi
case $rate in
[0-9]*bit|[0-9]*bps) ;;
*) echo "$me: --rate takes a tc rate such as 10mbit" >&2; exit 2 ;;
esac
want() { case ,$only, in *,"$1",*) return 0 ;; *) return 1 ;; esac; }
for s in ${only//,/ }; do
	case $s in dump|nochange|slow) ;; *) echo "$me: --only: unknown scenario '$s' (dump, nochange, slow)" >&2; exit 2 ;; esac
done

gen=${LUMBUNG_BENCH_GEN:-$top/../shared/bench/gen_dataset.py}
gensql=$here/gen_sqldump.py

# ---- prerequisites ---------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { echo "$me: needs root (network namespaces, tc, sshd)" >&2; exit 1; }
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
missing=
for t in ip tc ssh ssh-keygen borg restic python3 flock awk find xargs du cp; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -x "$SSHD" ] || missing="$missing sshd"
[ -x /usr/bin/time ] || missing="$missing /usr/bin/time"
if [ -n "$missing" ]; then
	echo "$me: missing:$missing (apt-get install iproute2 openssh-server openssh-client borgbackup restic time python3 util-linux)" >&2
	exit 1
fi
if want nochange || want slow; then
	[ -f "$gen" ] || { echo "$me: gen_dataset.py not found at $gen (set LUMBUNG_BENCH_GEN)" >&2; exit 1; }
fi
LUMBUNGD=$build/daemon/lumbungd
LUMBUNG=$build/tools/lumbung
for b in "$LUMBUNGD" "$LUMBUNG"; do
	[ -x "$b" ] || { echo "$me: $b not built; run make in $build (or give --build DIR)" >&2; exit 1; }
done
SFTP_SERVER=/usr/lib/openssh/sftp-server
[ -x "$SFTP_SERVER" ] || SFTP_SERVER=internal-sftp

# One run at a time: the namespaces and addresses are fixed.
exec 9>/run/lumbung-bench-link.lock
flock -n 9 || { echo "$me: another run-link.sh is running (/run/lumbung-bench-link.lock)" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
W=$out/link
log=$W/logs

NS_A=lb-appl NS_O=lb-opd
IF_A=lb-appl0 IF_O=lb-opd0
IP_A=10.77.0.1 IP_O=10.77.0.2

say() { printf '%s [run-link] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
warm() { find "$1" -type f -print0 | xargs -0 -r cat >/dev/null; }
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
du_b() { du -sb "$1" | cut -f1; }
clk_tck=$(getconf CLK_TCK)
proc_cpu() { awk -v t="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ---- clean-up: whatever happens, no namespace, qdisc, sshd or daemon stays ----------
DPID=
stop_daemon() {
	[ -n "${DPID:-}" ] || return 0
	kill -TERM "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=
}
# kill_pidfile FILE: ends the sshd this script started (its pid file), only
# if that process is still an sshd running one of our configurations.
kill_pidfile() {
	local pid
	[ -s "$1" ] || return 0
	pid=$(cat "$1")
	if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-f $W/ssh/sshd-"; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
	rm -f "$1"
}
net_down() {
	ip netns exec "$NS_A" tc qdisc del dev "$IF_A" root 2>/dev/null || true
	ip netns exec "$NS_O" tc qdisc del dev "$IF_O" root 2>/dev/null || true
	ip -n "$NS_A" link del "$IF_A" 2>/dev/null || true
	ip netns del "$NS_A" 2>/dev/null || true
	ip netns del "$NS_O" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	set +e
	stop_daemon
	kill_pidfile "$W/ssh/sshd-appl.pid"
	kill_pidfile "$W/ssh/sshd-opd.pid"
	net_down
	if [ "$keep" = 0 ] && [ -d "$W" ]; then
		rm -rf "$W/appl" "$W/opd" "$W/saved"
	fi
	[ "$rc" -eq 0 ] || say "failed (exit $rc); logs in $log"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A run that died without its trap (kill -9) leaves its sshds and namespaces:
# the lock is ours now, so they are stale.
kill_pidfile "$W/ssh/sshd-appl.pid"
kill_pidfile "$W/ssh/sshd-opd.pid"
net_down
# Only what this script creates is removed.
rm -rf "$W/appl" "$W/opd" "$W/saved" "$W/ssh" "$W/bin" "$log"
mkdir -p "$W/appl" "$W/opd" "$W/saved" "$W/ssh" "$W/bin" "$log"
chmod 755 "$W" "$W/opd"
# The binaries as they are now: a rebuild during the run changes nothing.
cp "$LUMBUNGD" "$LUMBUNG" "$W/bin/"
LUMBUNGD=$W/bin/lumbungd LUMBUNG=$W/bin/lumbung
gitrev=$(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
gitdirty=$(cd "$top" && git status --porcelain --untracked-files=no -- lib daemon tools 2>/dev/null | awk '{ f = f " " $2 } END { if (f != "") print ", uncommitted changes in" f }')
built=$(date -u -r "$build/tools/lumbung" '+%Y-%m-%d %H:%M UTC')

# ---- the two hosts ----------------------------------------------------------------
say "namespaces $NS_A ($IP_A) and $NS_O ($IP_O), veth $IF_A <-> $IF_O"
ip netns add "$NS_A"
ip netns add "$NS_O"
ip link add "$IF_A" netns "$NS_A" type veth peer name "$IF_O" netns "$NS_O"
ip -n "$NS_A" addr add "$IP_A/24" dev "$IF_A"
ip -n "$NS_O" addr add "$IP_O/24" dev "$IF_O"
for ns in "$NS_A" "$NS_O"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "$IF_A" up
ip -n "$NS_O" link set "$IF_O" up

# wire: "rx tx" bytes of the appliance's end of the veth (rx: from the OPD),
# read inside its namespace.
wire() {
	ip netns exec "$NS_A" cat "/sys/class/net/$IF_A/statistics/rx_bytes" "/sys/class/net/$IF_A/statistics/tx_bytes" | paste -sd' '
}
limit_on() {
	ip netns exec "$NS_A" tc qdisc add dev "$IF_A" root tbf rate "$rate" burst 32kbit latency 400ms
	ip netns exec "$NS_O" tc qdisc add dev "$IF_O" root tbf rate "$rate" burst 32kbit latency 400ms
}
limit_off() {
	{
		ip netns exec "$NS_A" tc -s qdisc show dev "$IF_A"
		ip netns exec "$NS_O" tc -s qdisc show dev "$IF_O"
	} >>"$log/tc.txt" 2>&1
	ip netns exec "$NS_A" tc qdisc del dev "$IF_A" root
	ip netns exec "$NS_O" tc qdisc del dev "$IF_O" root
}

# ---- throwaway sshds, key only, one per namespace ---------------------------------------
mkdir -p /run/sshd
S=$W/ssh
ssh-keygen -q -t ed25519 -N '' -C lb-host -f "$S/host_key"
ssh-keygen -q -t ed25519 -N '' -C lb-pull -f "$S/id_pull"   # appliance -> OPD: lumbung agent
ssh-keygen -q -t ed25519 -N '' -C lb-push -f "$S/id_push"   # OPD -> appliance: borg, restic
# The OPD server lets the appliance run the agent and nothing else, reading
# only below $W/opd (how an OPD would install the key).
printf 'command="%s agent --allow %s",restrict %s\n' "$LUMBUNG" "$W/opd" "$(cat "$S/id_pull.pub")" >"$S/keys-opd"
printf '%s\n' "$(cat "$S/id_push.pub")" >"$S/keys-appl"
chmod 600 "$S/keys-opd" "$S/keys-appl"
sshd_conf() { # NAME ADDRESS
	cat <<CONF
ListenAddress $2:22
HostKey $S/host_key
AuthorizedKeysFile $S/keys-$1
PidFile $S/sshd-$1.pid
PermitRootLogin prohibit-password
AllowUsers root
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp $SFTP_SERVER
CONF
}
sshd_conf opd "$IP_O" >"$S/sshd-opd"
sshd_conf appl "$IP_A" >"$S/sshd-appl"
# Each sshd sees an empty /root (a private mount namespace): sshd runs every
# command through root's shell, and bash sources ~/.bashrc for it.  On the
# machine these figures come from, root's ~/.bashrc starts pyenv, which
# cost 0.2-1.1 s per login (`ssh root@HOST true` 1.5 s against 0.35 s for a
# user without it, loaded machine): a cost of this machine, not of an OPD
# server or an appliance, and paid by all three tools alike.
mkdir -p "$S/home"
start_sshd() { # NAMESPACE NAME
	ip netns exec "$1" unshare -m --propagation private sh -c \
		'mount --bind "$1" /root && exec "$2" -f "$3" -E "$4"' sh \
		"$S/home" "$SSHD" "$S/sshd-$2" "$log/sshd-$2.log"
}
start_sshd "$NS_O" opd
start_sshd "$NS_A" appl
# The client side: no compression (ssh's default), no host key checks.
cat >"$S/config" <<CONF
Host $IP_O
	IdentityFile $S/id_pull
Host $IP_A
	IdentityFile $S/id_push
Host *
	User root
	IdentitiesOnly yes
	StrictHostKeyChecking no
	UserKnownHostsFile /dev/null
	BatchMode yes
	LogLevel ERROR
	Compression no
CONF
SSH="ssh -F $S/config"
i=0
until [ -s "$S/sshd-opd.pid" ] && [ -s "$S/sshd-appl.pid" ]; do
	i=$((i + 1)); [ $i -lt 250 ] || { say "sshd did not start"; cat "$log"/sshd-*.log >&2; exit 1; }
	sleep 0.02
done
ip netns exec "$NS_O" $SSH "$IP_A" true || { say "ssh from $NS_O to $IP_A fails"; exit 1; }

# ---- the tools, each run from its own side of the link ---------------------------------
# Lumbung's store lives in $W/appl/SCEN/lumbung, borg's and restic's
# repositories in $W/appl/SCEN/{borg,restic}, their clients' caches on the
# OPD side in $W/opd/cache/SCEN/{borg,restic}.
start_daemon() { # SCEN
	local d=$W/appl/$1/lumbung sock i
	sock=$d/lumbungd.sock
	[ ${#sock} -lt 100 ] || sock=/run/lumbung-bench-link.sock
	mkdir -p "$d"
	cat >"$d/lumbung.conf" <<CONF
[store]
path = $d/store
compression = zstd:3
[daemon]
socket = $sock
max_jobs = 4
log_level = info
[tenant bench]
name = Benchmark
CONF
	export LUMBUNG_SOCKET=$sock
	ip netns exec "$NS_A" "$LUMBUNGD" --config "$d/lumbung.conf" --foreground >>"$log/lumbungd-$1.log" 2>&1 &
	DPID=$!
	i=0
	until "$LUMBUNG" version >"$log/lumbung-version.txt" 2>&1; do
		kill -0 "$DPID" 2>/dev/null || { say "lumbungd exited at start"; tail -5 "$log/lumbungd-$1.log" >&2; exit 1; }
		i=$((i + 1)); [ $i -lt 200 ] || { say "lumbungd did not answer within 10 s"; exit 1; }
		sleep 0.05
	done
}
borg_repo() { echo "ssh://root@$IP_A$W/appl/$1/borg/repo"; }
restic_cmd() { # SCEN ARGS...: restic with our ssh, password and cache
	local scen=$1; shift
	ip netns exec "$NS_O" env RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$W/opd/cache/$scen/restic" \
		restic -o sftp.command="$SSH $IP_A -s sftp" -r "sftp:root@$IP_A:$W/appl/$scen/restic/repo" "$@"
}
borg_cmd() { # SCEN ARGS...
	local scen=$1; shift
	ip netns exec "$NS_O" env BORG_BASE_DIR="$W/opd/cache/$scen/borg/base" BORG_CACHE_DIR="$W/opd/cache/$scen/borg/cache" \
		BORG_RSH="$SSH" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes borg "$@"
}

# fresh_state SCEN TOOL: an empty store or repository (and cache).
fresh_state() {
	local scen=$1 tool=$2
	case $tool in
	lumbung)
		stop_daemon
		rm -rf "$W/appl/$scen/lumbung/store"
		start_daemon "$scen" ;;
	borg)
		rm -rf "$W/appl/$scen/borg" "$W/opd/cache/$scen/borg"
		mkdir -p "$W/appl/$scen/borg" "$W/opd/cache/$scen/borg"
		borg_cmd "$scen" init --encryption none "$(borg_repo "$scen")" >>"$log/borg-init.log" 2>&1 ;;
	restic)
		rm -rf "$W/appl/$scen/restic" "$W/opd/cache/$scen/restic"
		mkdir -p "$W/appl/$scen/restic" "$W/opd/cache/$scen/restic"
		restic_cmd "$scen" init --repository-version 2 >>"$log/restic-init.log" 2>&1 ;;
	esac
}
# save_state SCEN TOOL / restore_state SCEN TOOL: the store or repository
# and the client's cache as they are before a night, put back before each run.
save_state() {
	local scen=$1 tool=$2 s=$W/saved/$1/$2
	rm -rf "$s"; mkdir -p "$s"
	[ "$tool" = lumbung ] && stop_daemon
	cp -a "$W/appl/$scen/$tool" "$s/appl"
	[ -d "$W/opd/cache/$scen/$tool" ] && cp -a "$W/opd/cache/$scen/$tool" "$s/opd"
	[ "$tool" = lumbung ] && start_daemon "$scen"
	return 0
}
restore_state() {
	local scen=$1 tool=$2 s=$W/saved/$1/$2
	[ "$tool" = lumbung ] && stop_daemon
	rm -rf "$W/appl/$scen/$tool" "$W/opd/cache/$scen/$tool"
	cp -a "$s/appl" "$W/appl/$scen/$tool"
	[ -d "$s/opd" ] && cp -a "$s/opd" "$W/opd/cache/$scen/$tool"
	[ "$tool" = lumbung ] && start_daemon "$scen"
	return 0
}

steps=$W/steps.tsv
printf 'scenario\ttool\tstep\trun\twall_s\tuser_s\tsys_s\twire_up\twire_down\tlink_bytes\tbytes_read\tbytes_sent\tsource_bytes\tdaemon_cpu_s\tlimit\tload1\n' >"$steps"
LIMIT=none

# sync_step SCEN TOOL STEP RUN SOURCE: one timed sync of SOURCE (a directory
# on the OPD side) by TOOL (lumbung, lumbung-nodelta, borg, restic) into
# SCEN's store; archive/snapshot named after STEP.  Appends to steps.tsv
# and sets T (wall seconds) and WIRE (bytes both ways).
T=0 WIRE=0
sync_step() {
	local scen=$1 tool=$2 st=$3 run=$4 src=$5 name rx0 tx0 rx1 tx1 t0 t1 d0=0 d1=0 rc=0 tf ns
	name=$scen-$tool-$st-$run
	tf=$log/$name.time
	local -a cmd
	case $tool in
	lumbung|lumbung-nodelta)
		ns=$NS_A
		cmd=("$LUMBUNG" backup --dataset "bench/$scen" --remote "ssh://root@$IP_O$src" --ssh-command "$SSH"
			--remote-lumbung "$LUMBUNG" --json)
		[ "$tool" = lumbung-nodelta ] && cmd+=(--no-delta) ;;
	borg)
		ns=$NS_O
		cmd=(env BORG_BASE_DIR="$W/opd/cache/$scen/borg/base" BORG_CACHE_DIR="$W/opd/cache/$scen/borg/cache"
			BORG_RSH="$SSH" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
			borg create --compression zstd,3 "$(borg_repo "$scen")::$st" "$src") ;;
	restic)
		ns=$NS_O
		cmd=(env RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$W/opd/cache/$scen/restic"
			restic -o sftp.command="$SSH $IP_A -s sftp" -r "sftp:root@$IP_A:$W/appl/$scen/restic/repo"
			backup --compression auto --host bench --tag "$st" "$src") ;;
	esac
	warm "$src"
	sync
	[ -n "$DPID" ] && d0=$(proc_cpu "$DPID")
	read -r rx0 tx0 <<<"$(wire)"
	t0=$(now)
	ip netns exec "$ns" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >"$log/$name.out" 2>"$log/$name.err" || rc=$?
	t1=$(now)
	read -r rx1 tx1 <<<"$(wire)"
	[ -n "$DPID" ] && d1=$(proc_cpu "$DPID")
	if [ "$rc" -ne 0 ]; then
		say "FAILED ($rc): $name: ${cmd[*]}"
		tail -20 "$log/$name.err" >&2
		exit 1
	fi
	T=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f", (a - b) / 1e9 }')
	local up down lk=- rd=- sent=-
	up=$((rx1 - rx0))
	down=$((tx1 - tx0))
	WIRE=$((up + down))
	case $tool in lumbung*)
		read -r lk rd sent < <(python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(j["link_bytes"], j["bytes_read"], j["bytes_sent"])' "$log/$name.out")
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$tool" "$st" "$run" "$T" \
		"$(awk '{ print $2 }' "$tf" | tail -1)" "$(awk '{ print $3 }' "$tf" | tail -1)" "$up" "$down" "$lk" "$rd" "$sent" \
		"$(tree_bytes "$src")" "$(awk -v a="$d1" -v b="$d0" 'BEGIN { printf "%.2f", a - b }')" "$LIMIT" "$(cut -d' ' -f1 /proc/loadavg)" >>"$steps"
	say "$name: $T s, $WIRE bytes on the wire$([ "$lk" != - ] && echo " (lumbung's link_bytes $lk)")"
}

load_start=$(loadavg)
psi_start=$(awk '/^some/ { sub("avg300=", "", $4); print $4 "%" }' /proc/pressure/cpu 2>/dev/null || true)
t_start=$(now)
peers="borg restic"

# ---- scenario 1: the SQL dump -------------------------------------------------------------
if want dump; then
	sql=$W/opd/sql
	mkdir -p "$sql"
	say "generating the SQL dump: $dump_mb MiB"
	python3 "$gensql" --out "$sql/simpus_prod.sql" --size-mb "$dump_mb" --seed "$seed" >"$log/gen-sqldump.txt"
	for r in $(seq "$runs"); do
		for tool in lumbung $peers; do
			fresh_state dump "$tool"
			sync_step dump "$tool" n0 "$r" "$sql"
		done
	done
	for tool in lumbung $peers; do save_state dump "$tool"; done
	for night in update insert; do
		python3 "$gensql" --out "$sql/simpus_prod.sql" --mutate "$night" --seed "$seed" >>"$log/gen-sqldump.txt"
		for r in $(seq "$runs"); do
			# lumbung (deltas) last: its store is the base of the next night
			for tool in lumbung-nodelta $peers lumbung; do
				restore_state dump "${tool%-nodelta}"
				sync_step dump "$tool" "$night" "$r" "$sql"
			done
		done
		if [ "$night" = update ]; then
			for tool in lumbung $peers; do save_state dump "$tool"; done
		fi
	done
	stop_daemon
	[ "$keep" = 1 ] || rm -rf "$W/appl/dump" "$W/opd/cache/dump" "$W/saved/dump"
fi

# ---- scenarios 2 and 3: the dataset ----------------------------------------------------------
if want nochange || want slow; then
	data=$W/opd/data
	say "generating the dataset: $total_mb MiB, $tenants tenants"
	python3 "$gen" --out "$data" --tenants "$tenants" --total-mb "$total_mb" --seed "$seed" >"$log/gen-dataset.txt" 2>&1
	want nochange && first_runs=$runs || first_runs=1
	for r in $(seq "$first_runs"); do
		for tool in lumbung $peers; do
			fresh_state set "$tool"
			sync_step set "$tool" n0 "$r" "$data"
			want nochange && sync_step set "$tool" nochange "$r" "$data"
		done
	done
	if want slow; then
		for tool in lumbung $peers; do save_state set "$tool"; done
		python3 "$gen" --out "$data" --mutate 1 >>"$log/gen-dataset.txt" 2>&1
		limit_on
		LIMIT=$rate
		for r in $(seq "$runs"); do
			for tool in lumbung-nodelta $peers lumbung; do
				restore_state set "${tool%-nodelta}"
				sync_step set "$tool" n1 "$r" "$data"
			done
		done
		limit_off
		LIMIT=none
	fi
	stop_daemon
fi
t_end=$(now)
load_end=$(loadavg)
psi_end=$(awk '/^some/ { sub("avg300=", "", $4); print $4 "%" }' /proc/pressure/cpu 2>/dev/null || true)

# ---- results -------------------------------------------------------------------------------
export RL_DATE RL_ARGS RL_MACHINE RL_VERSIONS RL_LOAD RL_MIN RL_RATE RL_RUNS RL_TOTAL_MB RL_DUMP_MB RL_OUT RL_W
RL_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
RL_ARGS="bench/run-link.sh${args:+ $args}"
RL_MACHINE="$(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), filesystem $(df -T "$W" | awk 'NR == 2 { print $2 }')"
RL_VERSIONS="$(head -1 "$log/lumbung-version.txt") (git $gitrev$gitdirty; built $built); $(borg --version); $(restic version | cut -d' ' -f1-2); $(ssh -V 2>&1 | cut -d, -f1)"
RL_LOAD="$load_start at the start, $load_end at the end; CPU pressure (some, 5 min) ${psi_start:-?} at the start, ${psi_end:-?} at the end"
RL_MIN=$(awk -v a="$t_end" -v b="$t_start" 'BEGIN { printf "%.1f", (a - b) / 6e10 }')
RL_RATE=$rate RL_RUNS=$runs RL_TOTAL_MB=$total_mb RL_DUMP_MB=$dump_mb RL_OUT=${out#"$top"/} RL_W=${W#"$top"/}
python3 -c 'import json, os, sys; json.dump({k[3:].lower(): v for k, v in os.environ.items() if k.startswith("RL_")}, open(sys.argv[1], "w"), indent=1)' "$W/meta.json"
python3 "$here/link-report.py" "$W" "$out/link.md" "$out/link.json"
cat "$out/link.md"
say "written to $out/link.md and $out/link.json ($RL_MIN min)"
