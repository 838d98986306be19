#!/bin/sh
# The daemon tests a second time with their stores in a Ceph pool: starts a
# throwaway single-node cluster (scripts/ceph-cluster.sh), runs t0100 (every
# file type and metadata kind), t0110 (bad input), t0170 (quota), t0180
# (tenant isolation), t0200 (reports), t0220 (prune and legal holds), t0250
# (verify), t0270 (delta chunks), t0290 (sync over SSH), t0305 (kill -9 at
# random instants), t0320 (hostile clients) and t0330 (hostile archives)
# through LUMBUNG_TEST_RADOS, each in a namespace of its own, and stops the
# cluster.  The tests that damage or inspect the store's files on disk
# (t0120, t0160, t0240, t0260 and the engine tests) have no counterpart in a
# pool; t0400 covers damage to pool objects.  Run from a configured
# build tree whose lumbungd has the rados backend; exits 77 when it has not
# or Ceph is not installed.
set -u
cd "$(dirname "$0")/.."
grep -q '^#define HAVE_RADOS 1' config.h 2>/dev/null || { echo "lumbungd built without librados"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/lb-rados-XXXXXX")
sh scripts/ceph-cluster.sh start "$dir/ceph" >"$dir/start.out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	cat "$dir/start.out"
	rm -rf "$dir"
	exit $rc
fi
trap 'sh scripts/ceph-cluster.sh stop "$dir/ceph"; rm -rf "$dir"' EXIT
tests=""
for t in t0100-daemon-roundtrip t0110-daemon-bad-input t0170-quota t0180-isolation t0200-report t0220-prune \
	t0250-verify t0270-delta t0290-sync t0305-daemon-kill t0320-hostile-clients t0330-hostile-archives; do
	tests="$tests tests/integration/$t.sh"
done
LUMBUNG_TEST_RADOS="$dir/ceph/ceph.conf" LUMBUNG_DAEMON_KILLS="${LUMBUNG_DAEMON_KILLS:-10}" \
	make -j2 check TESTS="$tests"
