# lib.sh - shared helpers for the shell integration tests (TAP output).
#
# A test sources this file, calls `check "what" command...` for each
# assertion and ends with `done_testing`.  Scratch files live in $T, a fresh
# directory removed when the test passes and kept for inspection otherwise.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
LBSTORE="$top_builddir/tests/lbstore"
T=$(mktemp -d "${TMPDIR:-/tmp}/lb-it-XXXXXX")
tap_n=0
tap_failed=0

check() {
	what=$1
	shift
	tap_n=$((tap_n + 1))
	if "$@" >"$T/.out" 2>&1; then
		echo "ok $tap_n - $what"
	else
		echo "not ok $tap_n - $what"
		sed 's/^/# /' "$T/.out" | head -20
		tap_failed=$((tap_failed + 1))
	fi
}

# check_fails "what" command...: the command must exit non-zero.
check_fails() {
	what=$1
	shift
	tap_n=$((tap_n + 1))
	if "$@" >"$T/.out" 2>&1; then
		echo "not ok $tap_n - $what (succeeded, expected failure)"
		sed 's/^/# /' "$T/.out" | head -20
		tap_failed=$((tap_failed + 1))
	else
		echo "ok $tap_n - $what"
	fi
}

diag() { echo "# $*"; }

skip_all() {
	echo "1..0 # SKIP $*"
	rm -rf "$T"
	exit 0
}

done_testing() {
	echo "1..$tap_n"
	if [ "$tap_failed" -eq 0 ]; then
		rm -rf "$T"
		exit 0
	fi
	echo "# scratch kept in $T"
	exit 1
}

# tree_digest DIR: one line per path with type, mode, size, target, content
# hash and xattrs, sorted; two trees are equal iff their digests are.
tree_digest() {
	(cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | while IFS= read -r p; do
		if [ -L "$p" ]; then
			printf '%s l %s\n' "$p" "$(readlink "$p")"
		elif [ -d "$p" ]; then
			printf '%s d %s\n' "$p" "$(stat -c '%a' "$p")"
		elif [ -f "$p" ]; then
			printf '%s f %s %s %s %s\n' "$p" "$(stat -c '%a %s %Y' "$p")" \
				"$(sha256sum <"$p" | cut -c1-64)" \
				"$(getfattr -d -m 'user\.' --absolute-names "$p" 2>/dev/null | grep -v '^#' | tr '\n' ' ')"
		else
			printf '%s o %s\n' "$p" "$(stat -c '%F %a' "$p")"
		fi
	done)
}

# same_tree A B: the two trees have equal digests.
same_tree() {
	tree_digest "$1" >"$T/.a" && tree_digest "$2" >"$T/.b" && diff "$T/.a" "$T/.b"
}

# make_tree DIR SEED: a small tree with every kind of entry the engine keeps.
make_tree() {
	d=$1
	seed=$2
	mkdir -p "$d/docs/sub" "$d/empty"
	head -c 300000 /dev/urandom >"$d/docs/random.bin"
	seq 1 "$((20000 + seed))" >"$d/docs/sub/numbers.txt"
	printf 'seed %s\n' "$seed" >"$d/seed.txt"
	: >"$d/docs/empty-file"
	ln -s sub/numbers.txt "$d/docs/link"
	ln "$d/docs/random.bin" "$d/hardlink.bin"
	truncate -s 8M "$d/sparse.img"
	printf 'tail' | dd of="$d/sparse.img" bs=1 seek=6000000 conv=notrunc 2>/dev/null
	mkfifo "$d/fifo"
	chmod 0750 "$d/docs/sub"
	chmod 0600 "$d/seed.txt"
	setfattr -n user.lumbung -v "value-$seed" "$d/docs/sub/numbers.txt" 2>/dev/null || true
	touch -d '2020-02-29 12:34:56' "$d/docs/random.bin"
}

# ---- a real lumbungd on a temporary directory --------------------------------
LUMBUNGD="$top_builddir/daemon/lumbungd"
LUMBUNG="$top_builddir/tools/lumbung"
export LUMBUNG_SOCKET="$T/lumbungd.sock"

# With LUMBUNG_TEST_RADOS set to the ceph.conf of a cluster that
# scripts/ceph-cluster.sh started, write_config's store lives in that
# cluster's pool, in a namespace of its own ($T/store holds the local index
# cache): scripts/test.sh runs the daemon tests that way a second time.
STORE_BACKEND=
if [ -n "${LUMBUNG_TEST_RADOS:-}" ]; then
	STORE_BACKEND="backend = rados
rados_conf = $LUMBUNG_TEST_RADOS
rados_pool = lumbung
rados_user = lumbung
rados_timeout = 60s
rados_namespace = $(basename "$T")"
fi

# write_config [EXTRA]: a configuration for three tenants, with EXTRA
# appended (more sections).
write_config() {
	cat >"$T/lumbung.conf" <<CONF
[store]
path = $T/store
$STORE_BACKEND
capacity = 100G
[daemon]
socket = $T/lumbungd.sock
max_jobs = 4
log_level = debug
[tenant dinkes]
name = Dinas Kesehatan
quota = 10G
users = opd-dinkes
[tenant disdik]
name = Dinas Pendidikan
quota = 10G
users = opd-disdik
[tenant dukcapil]
name = Dinas Kependudukan dan Pencatatan Sipil
quota = 10G
users = opd-dukcapil
${1:-}
CONF
}

# start_daemon: starts lumbungd in the background and waits until it
# answers (bounded: 10 s).  Its log goes to $T/lumbungd.log.
start_daemon() {
	[ -f "$T/lumbung.conf" ] || write_config
	"$LUMBUNGD" --config "$T/lumbung.conf" --foreground >>"$T/lumbungd.log" 2>&1 &
	DAEMON_PID=$!
	i=0
	while [ $i -lt 200 ]; do
		if "$LUMBUNG" version >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			echo "# lumbungd exited at start:"; sed 's/^/# /' "$T/lumbungd.log" | tail -5
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
	echo "# lumbungd did not answer within 10 s"
	return 1
}

# reload_and_wait PATTERN: sends the daemon SIGHUP and waits (bounded:
# 10 s) until its log holds one more line matching PATTERN than before;
# returns 1 if none came.  Counting, not grepping, so that a line from an
# earlier reload does not count.
reload_and_wait() {
	_before=$(grep -c -- "$1" "$T/lumbungd.log" 2>/dev/null)
	kill -HUP "$DAEMON_PID"
	_i=0
	while [ $_i -lt 500 ]; do
		[ "$(grep -c -- "$1" "$T/lumbungd.log" 2>/dev/null)" -gt "${_before:-0}" ] 2>/dev/null && return 0
		sleep 0.02
		_i=$((_i + 1))
	done
	return 1
}

stop_daemon() {
	[ -n "${DAEMON_PID:-}" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# Never leave a daemon behind, whatever happens to the test.
trap 'stop_daemon' EXIT
