#!/bin/bash
# The daemon's life: several tenants back up at once; SIGKILL mid-backup and
# a restart keep every committed snapshot intact; SIGTERM abandons a backup
# in flight (nothing committed) and exits; SIGHUP swaps in a valid new
# configuration and keeps the old one when the new one is broken;
# --check-config names file and line; a second daemon on the same store is
# refused.
. "$(dirname "$0")/lib.sh"

check "lumbungd starts" start_daemon
for t in dinkes disdik dukcapil; do
	mkdir -p "$T/src-$t"
	head -c 8000000 /dev/urandom >"$T/src-$t/own.bin"
	seq 1 200000 >"$T/src-$t/shared.txt" # the same bytes in every tenant
	echo "$t" >"$T/src-$t/name.txt"
done

# Three tenants at once.
pids=""
for t in dinkes disdik dukcapil; do
	"$LUMBUNG" backup --dataset "$t/app" "$T/src-$t" >"$T/id-$t" 2>"$T/err-$t" &
	pids="$pids $!"
done
ok=1
for p in $pids; do wait "$p" || ok=0; done
check "three concurrent backups all commit" test "$ok" = 1
for t in dinkes disdik dukcapil; do
	check "$t restores bit-exact" sh -c "'$LUMBUNG' restore $t/app@latest --target '$T/out-$t' && diff -r '$T/src-$t' '$T/out-$t'"
done
check "the shared file is stored once (store < 3 x 8 MB + 1 copy of the text)" \
	sh -c "[ \$(du -sk '$T/store' | cut -f1) -lt 27000 ]"

# SIGKILL in the middle of a backup, then a restart.
mkdir -p "$T/big"
head -c 150000000 /dev/urandom >"$T/big/big.bin"
"$LUMBUNG" backup --dataset dinkes/big "$T/big" >/dev/null 2>&1 &
bpid=$!
# Kill once the daemon has taken some of the data (bounded wait).
i=0
while [ $i -lt 400 ] && [ "$(find "$T/store/tmp" -type f 2>/dev/null | wc -l)" -eq 0 ]; do sleep 0.02; i=$((i + 1)); done
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
wait "$bpid"
check "the client of a killed daemon fails" test $? -ne 0
check "lumbungd restarts on the same store" start_daemon
check "no snapshot of the killed backup exists" sh -c "! '$LUMBUNG' snapshots | grep -q dinkes/big"
for t in dinkes disdik dukcapil; do
	check "$t still restores bit-exact after the kill" sh -c "rm -rf '$T/out-$t' && '$LUMBUNG' restore $t/app@latest --target '$T/out-$t' && diff -r '$T/src-$t' '$T/out-$t'"
done
check "check --read-data is clean after the kill" "$LUMBUNG" check --read-data

# SIGTERM during a backup: it is abandoned, the daemon exits cleanly.
"$LUMBUNG" backup --dataset dinkes/big "$T/big" >/dev/null 2>"$T/term-err" &
bpid=$!
i=0
while [ $i -lt 400 ] && ! grep -q "backup of dinkes/big started" "$T/lumbungd.log"; do sleep 0.02; i=$((i + 1)); done
sleep 0.1
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
check "SIGTERM: lumbungd exits 0" test $? -eq 0
DAEMON_PID=
wait "$bpid"
check "SIGTERM: the backup in flight fails" test $? -ne 0
check "SIGTERM: the log says backups were abandoned" grep -q "abandoning backups in flight" "$T/lumbungd.log"
check "SIGTERM: the socket is removed" test ! -e "$T/lumbungd.sock"
check "restart after SIGTERM" start_daemon
check "SIGTERM: nothing of the abandoned backup was committed" sh -c "! '$LUMBUNG' snapshots | grep -q dinkes/big"

# SIGHUP: a broken configuration is refused, a valid one swapped in.
cp "$T/lumbung.conf" "$T/good.conf"
printf '[tenant baru]\nquota = 1G\nusrs = x\n' >>"$T/lumbung.conf"
reload_and_wait "reload refused"
check "SIGHUP with a broken file: refused with file and line" grep -q "reload refused, keeping the running configuration: $T/lumbung.conf:$(wc -l <"$T/lumbung.conf"): unknown key 'usrs'" "$T/lumbungd.log"
check "and the daemon keeps serving" "$LUMBUNG" snapshots
"$LUMBUNG" backup --dataset baru/x "$T/src-dinkes" >/dev/null 2>&1
check "the tenant of the refused file does not exist" test $? -ne 0
cp "$T/good.conf" "$T/lumbung.conf"
printf '[tenant baru]\nname = Tenant Baru\nquota = 1G\n' >>"$T/lumbung.conf"
reload_and_wait "configuration reloaded: 4 tenants"
check "SIGHUP with a valid file: reloaded" grep -q "configuration reloaded: 4 tenants" "$T/lumbungd.log"
check "the new tenant takes backups" sh -c "'$LUMBUNG' backup --dataset baru/x '$T/src-dinkes' >/dev/null 2>&1"
sed -i "s|^path = $T/store\$|path = $T/elsewhere|" "$T/lumbung.conf"
reload_and_wait "store path changed"
check "a reload cannot move the store: it says so" grep -q "reload: store path changed from '$T/store' to '$T/elsewhere'; it takes effect only on a restart" "$T/lumbungd.log"
check "and keeps serving the store it has" sh -c "'$LUMBUNG' snapshots | grep -q baru/x"
sed -i "s|^path = $T/elsewhere\$|path = $T/store|" "$T/lumbung.conf"

# systemd's notification protocol: READY=1, RELOADING=1 then READY=1 on
# SIGHUP, STOPPING=1 on SIGTERM, read by a stand-in for systemd.
stop_daemon
python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('$T/notify.sock')
open('$T/notify.ready', 'w').close()
s.settimeout(20)
with open('$T/notify.log', 'w') as log:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        log.write(msg + '\n')
        log.flush()
        if 'STOPPING=1' in msg:
            break
" &
listener=$!
i=0
while [ $i -lt 200 ] && [ ! -e "$T/notify.ready" ]; do sleep 0.02; i=$((i + 1)); done
NOTIFY_SOCKET="$T/notify.sock" start_daemon
kill -HUP "$DAEMON_PID"
i=0
while [ $i -lt 200 ] && [ "$(grep -c READY=1 "$T/notify.log")" -lt 2 ]; do sleep 0.02; i=$((i + 1)); done
stop_daemon
wait "$listener"
check "sd_notify: READY, RELOADING, READY, STOPPING in that order" \
	sh -c "[ \"\$(tr '\n' ' ' <'$T/notify.log')\" = 'READY=1 RELOADING=1 READY=1 STOPPING=1 ' ]"
check "lumbungd starts again" start_daemon

# --check-config and a second daemon.
check "--check-config accepts the running file" "$LUMBUNGD" --check-config --config "$T/lumbung.conf"
printf '[daemon]\nmax_jobs = many\n' >"$T/bad.conf"
"$LUMBUNGD" --check-config --config "$T/bad.conf" >/dev/null 2>"$T/err"
check "--check-config refuses a bad file with exit 2" test $? -eq 2
check "naming file and line" grep -q "$T/bad.conf:2: max_jobs must be a whole number" "$T/err"
sed "s|^socket = .*|socket = $T/second.sock|" "$T/lumbung.conf" >"$T/second.conf"
"$LUMBUNGD" --config "$T/second.conf" --foreground >/dev/null 2>"$T/err"
check "a second daemon on the same store is refused" grep -q "in use by pid $DAEMON_PID" "$T/err"
done_testing
