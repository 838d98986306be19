#!/bin/sh
# Throwaway single-node Ceph cluster for the librados integration tests.
#
#   sh scripts/ceph-cluster.sh start DIR
#   sh scripts/ceph-cluster.sh stop DIR
#
# start: DIR must be empty or not exist. Creates one monitor (mon.a, on a
# free loopback port) and one memstore OSD (osd.0), all with cephx, then
# the pool "lumbung" (size 1, min size 1) and the user client.lumbung
# (mon 'allow r', osd 'allow rwx pool=lumbung'). Everything lives in DIR:
#   DIR/ceph.conf          for daemons and clients; a client only needs
#                          `rados --id lumbung -c DIR/ceph.conf -p lumbung ...`
#   DIR/lumbung.keyring    key of client.lumbung
#   DIR/admin.keyring      key of client.admin (the default for `ceph -c`)
#   DIR/mon.pid, osd.pid   daemon PIDs
#   DIR/log/               daemon logs, DIR/log/setup.log: output of setup
# Prints one line on success. On failure prints the log tails to stderr,
# stops whatever it started and exits 1. Exits 77 if the ceph binaries are
# not installed.
#
# stop: stops the OSD (TERM, up to 10 s, then KILL), then the mon, by the
# PIDs in DIR; only processes whose command line names DIR/ceph.conf are
# signalled. Idempotent; a missing DIR is fine. Leaves DIR in place: run
# stop before removing DIR, or the OSD keeps running with no PID file.
#
# No systemd and no mgr (so `ceph pg ...` hangs, and `ceph df`, `rados df`
# and librados cluster/pool stats read 0); nothing is written outside DIR;
# the daemons run as the calling user (tested as root). Several clusters
# can run side by side.
set -eu

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
[ -n "$dir" ] || usage

# Client calls wait forever by default; bound them.
ceph_cli() {
	timeout 30 ceph --connect-timeout 20 -c "$conf" "$@"
}

# True if PID $1 is alive (not a zombie) and was started with our ceph.conf.
ours() {
	[ -r "/proc/$1/cmdline" ] || return 1
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
	[ "$state" != Z ] || return 1
	tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF "$conf"
}

# stop_daemon NAME: stop the daemon whose PID is in $dir/NAME.pid.
stop_daemon() {
	pidfile=$dir/$1.pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile" 2>/dev/null || true)
	case $pid in
	'' | *[!0-9]*)
		rm -f "$pidfile"
		return 0
		;;
	esac
	if ours "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		n=0
		while ours "$pid" && [ $n -lt 50 ]; do
			sleep 0.2
			n=$((n + 1))
		done
		if ours "$pid"; then
			echo "ceph-cluster: $1 (pid $pid) ignored TERM for 10 s, killing" >&2
			kill -KILL "$pid" 2>/dev/null || true
			n=0
			while ours "$pid" && [ $n -lt 25 ]; do
				sleep 0.2
				n=$((n + 1))
			done
		fi
		if ours "$pid"; then
			echo "ceph-cluster: $1 (pid $pid) does not die" >&2
			return 1
		fi
	fi
	rm -f "$pidfile"
}

stop_all() {
	stop_rc=0
	stop_daemon osd || stop_rc=1
	stop_daemon mon || stop_rc=1
	return $stop_rc
}

case $cmd in
stop)
	[ -d "$dir" ] || exit 0
	dir=$(cd "$dir" && pwd)
	conf=$dir/ceph.conf
	stop_all
	exit
	;;
start) ;;
*) usage ;;
esac

for b in ceph-mon ceph-osd ceph-authtool monmaptool rados ceph; do
	if ! command -v "$b" >/dev/null 2>&1; then
		echo "ceph-cluster: $b not installed" >&2
		exit 77
	fi
done
command -v timeout >/dev/null 2>&1 || {
	echo "ceph-cluster: timeout (coreutils) not found" >&2
	exit 1
}

if [ -e "$dir" ]; then
	[ -d "$dir" ] || {
		echo "ceph-cluster: $dir is not a directory" >&2
		exit 1
	}
	[ -z "$(ls -A "$dir")" ] || {
		echo "ceph-cluster: $dir is not empty" >&2
		exit 1
	}
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# The path goes into ceph.conf (where "$" and blanks mean something) and
# into unix socket paths (at most 107 bytes).
case $dir in
*[!A-Za-z0-9._/+-]*)
	echo "ceph-cluster: $dir: only [A-Za-z0-9._/+-] allowed in DIR" >&2
	exit 1
	;;
esac
if [ ${#dir} -gt 80 ]; then
	echo "ceph-cluster: $dir: path too long for the admin sockets" >&2
	exit 1
fi
conf=$dir/ceph.conf
log=$dir/log
setup_log=$log/setup.log

ok=0
on_exit() {
	exit_rc=$?
	trap - EXIT INT TERM HUP
	if [ $ok != 1 ]; then
		[ $exit_rc -ne 0 ] || exit_rc=1
		for f in "$setup_log" "$log/mon.a.log" "$log/mon.out" \
			"$log/osd.0.log" "$log/osd.out"; do
			[ -s "$f" ] || continue
			echo "==== tail of $f" >&2
			tail -n 25 "$f" >&2
		done
		echo "ceph-cluster: start failed, stopping the cluster in $dir" >&2
		stop_all || true
	fi
	exit $exit_rc
}
trap on_exit EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "ceph-cluster: $*" >&2
	exit 1
}

# run CMD...: run it with its output in the setup log; fail if it fails.
# (Not `{ a; b; } || fail`: set -e is off inside such a list, so a failing
# `a` would go unnoticed.)
run() {
	echo "+ $*" >>"$setup_log"
	"$@" >>"$setup_log" 2>&1 || fail "failed (exit $?): $*"
}

mkdir -p "$dir/run" "$log" "$dir/crash" "$dir/mon/ceph-a" "$dir/osd/ceph-0"
: >"$setup_log"

# A free TCP port for the monitor, below the ephemeral range and outside
# the OSD range (6800-7300), so that it does not collide with clients.
pick_port() {
	if command -v ss >/dev/null 2>&1; then
		i=0
		while [ $i -lt 200 ]; do
			r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
			p=$((20000 + r % 10000))
			if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
				echo "$p"
				return 0
			fi
			i=$((i + 1))
		done
		return 1
	fi
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
port=$(pick_port) || fail "no free port found"
fsid=$(cat /proc/sys/kernel/random/uuid)

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 1
# A PG's read lease is 0.8 x this grace (16 s by default).  t0400 stops
# the OSD for about 20 s; past its lease a PG turns "laggy" on resume,
# and in Ceph 16 a PG with one OSD can stay laggy with every op parked
# until the OSD restarts (ceph tracker 80404; seen in CI as "slow
# requests ... delayed" for minutes).  With a single OSD no peer reports
# failures, so a long grace changes nothing else.
osd heartbeat grace = 120
run dir = $dir/run
crash dir = $dir/crash
log file = $log/\$name.log
mon cluster log file = $log/\$cluster.log
pid file =
osd objectstore = memstore
memstore device bytes = 2147483648

[mon]
mon data = $dir/mon/\$cluster-\$id
keyring = $dir/mon/\$cluster-\$id/keyring
admin socket = $dir/run/\$name.asok

[osd]
osd data = $dir/osd/\$cluster-\$id
keyring = $dir/osd/\$cluster-\$id/keyring
admin socket = $dir/run/\$name.asok

[client]
admin socket =

[client.admin]
keyring = $dir/admin.keyring

[client.lumbung]
keyring = $dir/lumbung.keyring
EOF

# Keys: mon. and client.admin, both known to the monitor from mkfs on.
run ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. \
	--cap mon 'allow *'
run ceph-authtool --create-keyring "$dir/admin.keyring" --gen-key \
	-n client.admin --cap mon 'allow *' --cap osd 'allow *' \
	--cap mds 'allow *' --cap mgr 'allow *'
run ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/admin.keyring"
run monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" \
	"$dir/monmap"
run ceph-mon --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" \
	-c "$conf"

ceph-mon -f -i a -c "$conf" </dev/null >>"$log/mon.out" 2>&1 &
echo $! >"$dir/mon.pid"
monpid=$!

# Wait for the monitor to answer (and to have formed its quorum of one).
deadline=$(($(date +%s) + 30))
until timeout 10 ceph --connect-timeout 5 -c "$conf" mon stat \
	>>"$setup_log" 2>&1; do
	ours "$monpid" || fail "ceph-mon exited"
	[ "$(date +%s)" -lt $deadline ] || fail "ceph-mon not answering"
	sleep 0.5
done

# The OSD.
uuid=$(cat /proc/sys/kernel/random/uuid)
secret=$(ceph-authtool --gen-print-key)
id=$(echo "{\"cephx_secret\": \"$secret\"}" |
	ceph_cli osd new "$uuid" -i - 2>>"$setup_log") ||
	fail "ceph osd new failed"
[ "$id" = 0 ] || fail "ceph osd new returned '$id', expected 0"
run ceph-authtool --create-keyring "$dir/osd/ceph-0/keyring" --name osd.0 \
	--add-key "$secret"
run ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid"

ceph-osd -f -c "$conf" -i 0 </dev/null >>"$log/osd.out" 2>&1 &
echo $! >"$dir/osd.pid"
osdpid=$!

deadline=$(($(date +%s) + 60))
while :; do
	st=$(ceph_cli osd stat -f json 2>>"$setup_log" || true)
	case $st in
	*'"num_up_osds":1,'* | *'"num_up_osds":1}'*) break ;;
	esac
	ours "$osdpid" || fail "ceph-osd exited"
	[ "$(date +%s)" -lt $deadline ] || fail "osd.0 not up after 60 s"
	sleep 0.5
done

# Pool and user.
run ceph_cli osd pool create lumbung 8 8
run ceph_cli osd pool application enable lumbung lumbung
run ceph_cli auth get-or-create client.lumbung mon 'allow r' \
	osd 'allow rwx pool=lumbung' -o "$dir/lumbung.keyring"

# Probe as client.lumbung, through the conf a test would use.
echo "lumbung probe" >"$dir/probe"
run timeout 30 rados --id lumbung -c "$conf" -p lumbung put probe "$dir/probe"
run timeout 30 rados --id lumbung -c "$conf" -p lumbung rm probe
rm -f "$dir/probe"

ok=1
echo "ceph cluster up in $dir (mon 127.0.0.1:$port)"
