#!/bin/bash
# Nightly sync: librsync deltas for large files that changed a little, with
# the SHA-256 check behind them (a forced collision and a corrupted delta
# fall back to the whole file); pulls over SSH from a throwaway sshd on
# loopback through `lumbung agent` (compressed link, --limit-rate, --allow);
# `lumbung run` from the configuration (path, ssh://, command); `lumbung
# jobs` and `lumbung schedule`; the job queue under more jobs than max_jobs.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to run sshd"
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$SSHD" ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || skip_all "openssh-server/client not installed"
id opd-sync >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh opd-sync || skip_all "cannot create a user"
usermod -p '*' opd-sync
chmod 755 "$T"
abs() { (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")"); }
LB=$(abs "$LUMBUNG")

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j).
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
# A dump-like file: 40000 rows, then one with rows changed in place and one
# with rows inserted in the middle.
# A dump-like file of 40000 rows ("base"); "update" changes 1% of the rows
# in place, in runs as batch jobs do; "insert" adds 1% of rows in the middle
# of the updated one.
make_dump() {
	python3 - "$1" "$2" <<'PY'
import random, sys
path, mode = sys.argv[1], sys.argv[2]
r = random.Random(7)
rows = ["INSERT INTO pasien VALUES (%d,'%s',%d);\n" % (i, ''.join(r.choice('abcdefghijklmnop') for _ in range(48)), r.randint(0, 10**9)) for i in range(40000)]
if mode in ("update", "insert"):
    for start in (3000, 17000, 29000, 38000):
        for i in range(start, start + 100):
            rows[i] = rows[i].replace("'", "'X", 1)
if mode == "insert":
    mid = len(rows) // 2
    rows[mid:mid] = ["INSERT INTO pasien VALUES (%d,'baru',0);\n" % (100000 + k) for k in range(400)]
open(path, "w").write(''.join(rows))
PY
}

write_config
check "lumbungd starts" start_daemon

# ---- deltas on the local socket (--delta; local files go whole by default) ------
mkdir -p "$T/src/db"
make_dump "$T/src/db/dump.sql" base
seq 1 5000 >"$T/src/db/small.txt"
size=$(stat -c %s "$T/src/db/dump.sql")
check "first backup" sh -c "'$LUMBUNG' backup --dataset dinkes/db --json '$T/src/db' >'$T/b0.json'"
make_dump "$T/src/db/dump.sql" update
check "a dump with rows changed in place crosses as a delta" sh -c "'$LUMBUNG' backup --dataset dinkes/db --delta --json '$T/src/db' >'$T/b1.json'"
check "one delta, one unchanged file" json "$T/b1.json" 'j["delta_files"] == 1 and j["unchanged_files"] == 1 and j["delta_refused"] == 0'
check "the delta is a small part of the file" json "$T/b1.json" "j['bytes_sent'] * 10 < $size"
rm -rf "$T/r1" && mkdir "$T/r1"
check "the patched file restores bit-exact" sh -c "'$LUMBUNG' restore dinkes/db@latest --target '$T/r1' && cmp '$T/src/db/dump.sql' '$T/r1/dump.sql'"
make_dump "$T/src/db/dump.sql" insert
check "rows inserted in the middle cross as a delta too" sh -c "'$LUMBUNG' backup --dataset dinkes/db --delta --json '$T/src/db' >'$T/b2.json' && python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j[\"delta_files\"] == 1 and j[\"bytes_sent\"] * 10 < $size, j' '$T/b2.json'"
rm -rf "$T/r2" && mkdir "$T/r2"
check "and restore bit-exact" sh -c "'$LUMBUNG' restore dinkes/db@latest --target '$T/r2' && cmp '$T/src/db/dump.sql' '$T/r2/dump.sql'"
make_dump "$T/src/db/dump.sql" update
check "without --delta a local backup sends the file whole" sh -c "'$LUMBUNG' backup --dataset dinkes/db --json '$T/src/db' >'$T/b3.json'"
check "no delta, every byte sent" json "$T/b3.json" "j['delta_files'] == 0 and j['bytes_sent'] >= $size"
rm -rf "$T/r3" && mkdir "$T/r3"
check "the whole file restores bit-exact" sh -c "'$LUMBUNG' restore dinkes/db@latest --target '$T/r3' && cmp '$T/src/db/dump.sql' '$T/r3/dump.sql'"

# A corrupted delta: the client flips a byte of what it sends.
make_dump "$T/src/db/dump.sql" insert
check "a corrupted delta is refused and the file sent whole" sh -c "LUMBUNG_TEST_FAULT=delta-corrupt '$LUMBUNG' backup --dataset dinkes/db --delta --json '$T/src/db' >'$T/b4.json' 2>'$T/b4.err'"
check "the client says so" grep -q "lumbungd refused the delta" "$T/b4.err"
check "counted as refused, bytes sent include the whole file" json "$T/b4.json" "j['delta_refused'] == 1 and j['delta_files'] == 0 and j['bytes_sent'] >= $size"
rm -rf "$T/r4" && mkdir "$T/r4"
check "what was committed is the real file" sh -c "'$LUMBUNG' restore dinkes/db@latest --target '$T/r4' && cmp '$T/src/db/dump.sql' '$T/r4/dump.sql' && cmp '$T/src/db/small.txt' '$T/r4/small.txt'"

# A forced signature collision: lumbungd patches from a basis that differs
# from what the signature summed; only the SHA-256 check can tell.
stop_daemon
LUMBUNG_TEST_FAULT=sig-collide start_daemon >/dev/null
make_dump "$T/src/db/dump.sql" update
check "a collision is caught by the SHA-256 check" sh -c "'$LUMBUNG' backup --dataset dinkes/db --delta --json '$T/src/db' >'$T/b5.json' 2>'$T/b5.err'"
check "and the file is sent whole" json "$T/b5.json" "j['delta_refused'] == 1 and j['bytes_sent'] >= $size"
check "lumbungd logs why" grep -q "SHA-256 differs" "$T/lumbungd.log"
rm -rf "$T/r5" && mkdir "$T/r5"
check "the committed file is bit-exact" sh -c "'$LUMBUNG' restore dinkes/db@latest --target '$T/r5' && cmp '$T/src/db/dump.sql' '$T/r5/dump.sql'"
stop_daemon
start_daemon >/dev/null

# The job records: what each night read, sent and stored.
check "jobs shows the last result with bytes read, sent and stored" sh -c "'$LUMBUNG' jobs --json >'$T/jobs.json'"
now=$(stat -c %s "$T/src/db/dump.sql")
check "the record is the collision night's: the dump read and sent whole" json "$T/jobs.json" "[x for x in j if x['dataset'] == 'db' and x['state'] == 'ok' and x['bytes_read'] == $now and x['bytes_sent'] >= $now and x['bytes_stored'] > 0]"
check "--since lists every night" sh -c "'$LUMBUNG' jobs --since 2000-01-01 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert len([x for x in j if x[\"dataset\"] == \"db\"]) == 6, j'"

# ---- pulls over SSH -------------------------------------------------------------------
mkdir -p "$T/ssh/keys" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/client_key"
# The OPD's key may run the agent, on its data directory only.
printf 'command="%s agent --allow %s",restrict %s\n' "$LB" "$T/opd" "$(cat "$T/ssh/client_key.pub")" >"$T/ssh/keys/opd-sync"
chmod 644 "$T/ssh/keys/opd-sync"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/ssh/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $T/ssh/host_key
AuthorizedKeysFile $T/ssh/keys/%u
PidFile $T/ssh/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin no
AllowUsers opd-sync
CONF
"$SSHD" -f "$T/ssh/sshd_config" -E "$T/ssh/sshd.log"
i=0
while [ $i -lt 200 ] && [ ! -s "$T/ssh/sshd.pid" ]; do sleep 0.02; i=$((i + 1)); done
trap 'stop_daemon; kill $(cat "$T/ssh/sshd.pid" 2>/dev/null) 2>/dev/null' EXIT
SSHC="ssh -i $T/ssh/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
URL="ssh://opd-sync@127.0.0.1:$port$T/opd/app"

mkdir -p "$T/opd/app/conf"
make_dump "$T/opd/app/dump.sql" base
head -c 700000 /dev/urandom >"$T/opd/app/blob.bin"
seq 1 3000 >"$T/opd/app/conf/app.ini"
ln -s conf/app.ini "$T/opd/app/link"
chmod -R a+rX "$T/opd"
remote() { "$LUMBUNG" backup --dataset dinkes/opd --json --remote "$URL" --ssh-command "$SSHC" "$@"; }
# (a later --dataset wins)
check "a first pull over SSH commits" sh -c "$(declare -f remote); LUMBUNG='$LUMBUNG' URL='$URL' SSHC='$SSHC' remote >'$T/s0.json'"
check "it counts what crossed the link" json "$T/s0.json" "j['link_bytes'] > 0 and j['files'] == 3"
rm -rf "$T/rs0" && mkdir "$T/rs0"
check "and restores the OPD's tree" sh -c "'$LUMBUNG' restore dinkes/opd@latest --target '$T/rs0' && $(declare -f tree_digest same_tree); T='$T' same_tree '$T/opd/app' '$T/rs0'"
make_dump "$T/opd/app/dump.sql" update
check "the nightly pull sends the dump as a delta" sh -c "$(declare -f remote); LUMBUNG='$LUMBUNG' URL='$URL' SSHC='$SSHC' remote >'$T/s1.json'"
check "the link carried a small part of the dump" json "$T/s1.json" "j['delta_files'] == 1 and j['link_bytes'] * 10 < $size"
rm -rf "$T/rs1" && mkdir "$T/rs1"
check "and the patched dump restores bit-exact" sh -c "'$LUMBUNG' restore dinkes/opd@latest --target '$T/rs1' && cmp '$T/opd/app/dump.sql' '$T/rs1/dump.sql'"
make_dump "$T/opd/app/dump.sql" insert
check "--no-delta pulls the changed dump whole" sh -c "$(declare -f remote); LUMBUNG='$LUMBUNG' URL='$URL' SSHC='$SSHC' remote --no-delta >'$T/s1b.json'"
check "no delta: the link carried the dump, compressed" json "$T/s1b.json" "j['delta_files'] == 0 and j['link_bytes'] * 10 > $size"
check "a pull with nothing changed" sh -c "$(declare -f remote); LUMBUNG='$LUMBUNG' URL='$URL' SSHC='$SSHC' remote >'$T/s2.json'"
check "costs only metadata on the link" json "$T/s2.json" "j['unchanged_files'] == j['files'] and j['bytes_read'] == 0 and j['link_bytes'] < 16384"
check "the job record holds the link's bytes" sh -c "'$LUMBUNG' jobs --json | python3 -c 'import json,sys; j=json.load(sys.stdin); s=json.load(open(\"$T/s2.json\")); assert [x for x in j if x[\"dataset\"] == \"opd\" and x[\"bytes_sent\"] == s[\"link_bytes\"] and x[\"bytes_read\"] == 0], j'"

check "the report shows what the last night cost the link" sh -c "'$LUMBUNG' report --format json | python3 -c 'import json,sys; r=json.load(sys.stdin); s=json.load(open(\"$T/s2.json\")); d=[d for t in r[\"tenants\"] for d in t[\"datasets\"] if t[\"tenant\"] == \"dinkes\" and d[\"dataset\"] == \"opd\"][0]; assert d[\"last_job\"] == {\"bytes_read\": 0, \"bytes_sent\": s[\"link_bytes\"], \"bytes_stored\": 0} and d[\"bytes_sent\"] > s[\"link_bytes\"], d'"

# --limit-rate: 1.5 MiB of new random data at 256 KiB/s cannot take less
# than about 6 s; without the cap it takes a fraction of a second.
head -c 1572864 /dev/urandom >"$T/opd/app/new.bin"
chmod a+r "$T/opd/app/new.bin"
t0=$(date +%s%N)
check "--limit-rate caps the link" sh -c "$(declare -f remote); LUMBUNG='$LUMBUNG' URL='$URL' SSHC='$SSHC' remote --limit-rate 256k >/dev/null"
t1=$(date +%s%N)
check "1.5 MiB at 256 KiB/s took at least 5 s" test $(((t1 - t0) / 1000000)) -ge 5000

# An interrupted transfer resumes: the link is cut (ssh killed) once
# lumbungd has received 10 MB of a 30 MB file; the next pull sends only
# what it had not stored.  The file is changed inside the part already
# stored (mtime kept, so that only the chunk hashes can tell): that chunk
# and everything after it is sent again, and the result is the new file.
interrupt() { # interrupt DATASET: starts a capped pull and cuts its link after 10 MB
	"$LUMBUNG" backup --dataset "$1" --json --limit-rate 4M --remote "$URL" --ssh-command "$SSHC" >"$T/cut.json" 2>"$T/cut.err" &
	bp=$!
	i=0
	while [ $i -lt 300 ]; do
		"$LUMBUNG" jobs --json | python3 -c 'import json,sys; sys.exit(0 if [x for x in json.load(sys.stdin) if x["state"] == "running" and x["bytes_sent"] > 10000000] else 1)' && break
		sleep 0.05
		i=$((i + 1))
	done
	pkill -9 -P "$bp" -x ssh
	wait "$bp"
}
rm -f "$T/opd/app/new.bin"
head -c 30000000 /dev/urandom >"$T/opd/app/big.bin"
chmod a+r "$T/opd/app/big.bin"
interrupt dinkes/resume
check "a pull whose link is cut fails" test "$(cat "$T/cut.json")" = ""
check "and lumbungd keeps what it stored" grep -q "big.bin stopped after" "$T/lumbungd.log"
check "the next pull resumes" sh -c "$(declare -f remote); LUMBUNG='$LUMBUNG' URL='$URL' SSHC='$SSHC' remote --dataset dinkes/resume >'$T/res.json' 2>'$T/res.err' && grep -q 'resuming an interrupted transfer' '$T/res.err'"
kept=$(sed -n 's/.*dinkes\/resume: big.bin stopped after \([0-9]*\) bytes.*/\1/p' "$T/lumbungd.log" | tail -1)
check "without sending again what arrived" json "$T/res.json" "${kept:-0} >= 1048576 and j['bytes_sent'] <= j['bytes_read'] - ${kept:-0} + 65536"
rm -rf "$T/rr" && mkdir "$T/rr"
check "and restores bit-exact" sh -c "'$LUMBUNG' restore dinkes/resume@latest --target '$T/rr' && cmp '$T/opd/app/big.bin' '$T/rr/big.bin'"
head -c 30000000 /dev/urandom >"$T/opd/app/big.bin"
interrupt dinkes/resume2
python3 -c 'import os,sys; p=sys.argv[1]; st=os.stat(p); f=open(p,"r+b"); f.seek(2000000); f.write(b"changed!"); f.close(); os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))' "$T/opd/app/big.bin"
check "a file changed inside what was stored" sh -c "$(declare -f remote); LUMBUNG='$LUMBUNG' URL='$URL' SSHC='$SSHC' remote --dataset dinkes/resume2 >/dev/null 2>&1"
rm -rf "$T/rr2" && mkdir "$T/rr2"
check "is caught by the chunk hashes and restores as it is now" sh -c "'$LUMBUNG' restore dinkes/resume2@latest --target '$T/rr2' && cmp '$T/opd/app/big.bin' '$T/rr2/big.bin'"
rm -f "$T/opd/app/big.bin"

# What the OPD's key may not do, and a link that breaks.
n_before=$("$LUMBUNG" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
"$LUMBUNG" backup --dataset dinkes/opd --remote "ssh://opd-sync@127.0.0.1:$port/etc" --ssh-command "$SSHC" >/dev/null 2>"$T/e1"
check "a path outside the key's --allow is refused" grep -q "not inside a directory this key may back up" "$T/e1"
check_fails "with a failed exit" "$LUMBUNG" backup --dataset dinkes/opd --remote "ssh://opd-sync@127.0.0.1:$port/etc" --ssh-command "$SSHC"
"$LUMBUNG" backup --dataset dinkes/opd --remote "ssh://opd-sync@127.0.0.1:$port$T/opd/app" --ssh-command "sh -c 'head -c 65536 /dev/urandom'" >/dev/null 2>"$T/e2"
check "garbage on the link fails the job cleanly" grep -q "nothing was committed" "$T/e2"
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$LUMBUNG" backup --dataset dinkes/opd --remote "ssh://opd-sync@127.0.0.1:$closed$T/opd/app" --ssh-command "$SSHC" >/dev/null 2>"$T/e3"
check "an unreachable OPD server fails the job with a reason" grep -q "ended the link before the backup was complete" "$T/e3"
check_fails "a malformed --remote is a usage error" "$LUMBUNG" backup --dataset dinkes/opd --remote "ssh://host-without-path"
n_after=$("$LUMBUNG" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "none of them committed anything" test "$n_before" -eq "$n_after"
check "lumbungd recorded why" grep -q "the client aborted the backup: the path is not allowed" "$T/lumbungd.log"

# ---- lumbung run, schedule ----------------------------------------------------------
stop_daemon
write_config "[dataset dinkes/files]
source = $T/src/db
schedule = *-*-* 01:30
[dataset dinkes/pull]
source = $URL
schedule = Mon..Fri 02:00
[dataset dinkes/dump]
command = seq 1 50000
schedule = daily
[dataset dinkes/broken]
command = echo partial; exit 3
[dataset disdik/other]
source = $T/src/db
schedule = *-*-* 03:00"
sed -i 's/^users = opd-disdik$/users = opd-disdik, opd-sync/' "$T/lumbung.conf"
start_daemon >/dev/null
check "run backs up a local source" sh -c "'$LUMBUNG' run --config '$T/lumbung.conf' dinkes/files >/dev/null"
check "run pulls an ssh:// source" sh -c "'$LUMBUNG' run --config '$T/lumbung.conf' --ssh-command '$SSHC' dinkes/pull --json >'$T/run-pull.json' && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))[\"link_bytes\"] > 0' '$T/run-pull.json'"
check "run stores a command's output" bash -c "'$LUMBUNG' run --config '$T/lumbung.conf' dinkes/dump >/dev/null && '$LUMBUNG' cat dinkes/dump@latest dump | cmp - <(seq 1 50000)"
check_fails "a failing command commits nothing" "$LUMBUNG" run --config "$T/lumbung.conf" dinkes/broken
check "and says why" sh -c "'$LUMBUNG' run --config '$T/lumbung.conf' dinkes/broken 2>&1 | grep -q 'exited with status 3'"
check_fails "no snapshot of it exists" sh -c "'$LUMBUNG' snapshots --json | grep -q '\"broken\"'"
check_fails "an unknown dataset is a usage error" "$LUMBUNG" run --config "$T/lumbung.conf" dinkes/nothing
check "schedule lists the datasets" sh -c "'$LUMBUNG' schedule --json >'$T/sched.json'"
check "with their schedule, next run and last result" json "$T/sched.json" "
  {x['dataset']: (x['schedule'], x['next'] > __import__('time').time(), x['last_status'], x['last_snapshot'] != '') for x in j if x['tenant'] == 'dinkes'}
  == {'files': ('*-*-* 01:30', True, 0, True), 'pull': ('Mon..Fri 02:00', True, 0, True), 'dump': ('daily', True, 0, True),
      'broken': ('', False, 125, False)}"
check "a failed command's reason is on record" json "$T/sched.json" "[x for x in j if x['dataset'] == 'broken' and 'exited with status 3' in x['last_error'] and x['source'] == 'command: echo partial; exit 3']"
check "next run is the schedule's next 01:30" json "$T/sched.json" "
  [x for x in j if x['dataset'] == 'files' and __import__('time').localtime(x['next'])[3:6] == (1, 30, 0) and x['next'] - __import__('time').time() <= 86400]"
as() { u=$1; shift; runuser -u "$u" -- env LUMBUNG_SOCKET="$LUMBUNG_SOCKET" "$@"; }
check "a tenant member sees only its tenant's datasets" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as opd-sync '$LUMBUNG' schedule --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert [x[\"dataset\"] for x in j] == [\"other\"], j'"

# ---- the queue: more jobs than max_jobs -----------------------------------------------
stop_daemon
write_config
sed -i 's/^max_jobs = 4$/max_jobs = 1/; s/^users = opd-disdik$/users = opd-disdik, opd-sync/' "$T/lumbung.conf"
start_daemon >/dev/null
mkfifo "$T/hold"
# The first job takes the only slot and waits on the fifo.
"$LUMBUNG" backup --dataset dinkes/q0 --stdin-name held <"$T/hold" >"$T/q0.out" 2>&1 &
q0=$!
exec 7>"$T/hold"
# wait_jobs EXPR: until `jobs --json` satisfies EXPR (bounded: 10 s).
wait_jobs() {
	i=0
	while [ $i -lt 200 ]; do
		"$LUMBUNG" jobs --json >"$T/jq.json" 2>/dev/null && json "$T/jq.json" "$1" && return 0
		sleep 0.05
		i=$((i + 1))
	done
	cat "$T/jq.json"
	return 1
}
check "the first job runs" wait_jobs "[x for x in j if x['state'] == 'running' and x['dataset'] == 'q0']"
pids=""
for q in 1 2 3; do
	"$LUMBUNG" backup --dataset dinkes/q$q --stdin-name f </dev/null >"$T/q$q.out" 2>&1 7>&- &
	pids="$pids $!"
	wait_jobs "len([x for x in j if x['state'] == 'queued']) == $q" >/dev/null
done
check "the others wait in the queue, in their order" wait_jobs "[(x['dataset'], x['queue_place']) for x in j if x['state'] == 'queued'] == [('q1', 1), ('q2', 2), ('q3', 3)]"
check "another tenant's member sees none of it" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as opd-sync '$LUMBUNG' jobs --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j == [], j'"
echo "data" >&7
exec 7>&-
check "the held job commits" wait $q0
ok=0
for p in $pids; do wait "$p" && ok=$((ok + 1)); done
check "every queued job ran and committed" test "$ok" -eq 3
check "first come, first served" sh -c "'$LUMBUNG' jobs --json | python3 -c '
import json,sys
j = [x for x in json.load(sys.stdin) if x[\"dataset\"].startswith(\"q\")]
assert all(x[\"state\"] == \"ok\" for x in j) and len(j) == 4, j
runs = [(x[\"start_ns\"], x[\"end_ns\"]) for x in sorted(j, key=lambda x: x[\"dataset\"])]
# One at a time, in the order they came: each starts after the one before ended.
assert all(runs[i][1] <= runs[i + 1][0] for i in range(3)), runs'"
check "nothing is left running or queued" wait_jobs "not [x for x in j if x['state'] in ('running', 'queued')]"
done_testing
