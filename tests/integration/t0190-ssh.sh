#!/bin/bash
# Remote OPD hosts over SSH: a throwaway sshd on 127.0.0.1 with a key whose
# authorized_keys line forces `lumbung serve` for the OPD's Unix user.
# `tar ... | ssh opd@host lumbung backup --archive -` and `ssh opd@host
# lumbung restore ... --tar -` work with the tenant fixed by the SSH
# account; walking the appliance's filesystem, restoring onto it, another
# tenant's data and other commands are refused.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to run sshd"
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$SSHD" ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || skip_all "openssh-server/client not installed"
id opd-ssh >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh opd-ssh || skip_all "cannot create a user"
# Key login only: no password, but not a locked account (sshd refuses those).
usermod -p '*' opd-ssh
chmod 755 "$T"
abs() { (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")"); }
LB=$(abs "$LUMBUNG")
write_config
sed -i 's/^users = opd-dinkes$/users = opd-dinkes, opd-ssh/' "$T/lumbung.conf"
check "lumbungd starts" start_daemon

# The sshd: host key, the client's key, authorized_keys with the forced command.
mkdir -p "$T/ssh/keys" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/client_key"
printf 'command="env LUMBUNG_SOCKET=%s %s serve",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s\n' \
	"$LUMBUNG_SOCKET" "$LB" "$(cat "$T/ssh/client_key.pub")" >"$T/ssh/keys/opd-ssh"
chmod 644 "$T/ssh/keys/opd-ssh"
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
AllowUsers opd-ssh
CONF
"$SSHD" -f "$T/ssh/sshd_config" -E "$T/ssh/sshd.log"
i=0
while [ $i -lt 200 ] && [ ! -s "$T/ssh/sshd.pid" ]; do sleep 0.02; i=$((i + 1)); done
trap 'stop_daemon; kill $(cat "$T/ssh/sshd.pid" 2>/dev/null) 2>/dev/null' EXIT
SSH="ssh -q -i $T/ssh/client_key -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes opd-ssh@127.0.0.1"

mkdir -p "$T/srv/app"
seq 1 30000 >"$T/srv/app/data.txt"
echo "konfigurasi" >"$T/srv/app/app.conf"
check "tar | ssh lumbung backup --archive - commits a snapshot" sh -c "tar -cf - -C '$T/srv' app | $SSH lumbung backup --dataset dinkes/simpus --archive - >'$T/id' 2>'$T/err'"
check "as the tenant of the SSH account" sh -c "'$LUMBUNG' snapshots --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert [x[\"tenant\"] for x in s] == [\"dinkes\"], s'"
check "the audit trail names the SSH account's user" sh -c "'$LUMBUNG' audit --json | python3 -c 'import json,sys; assert any(r[\"user\"] == \"opd-ssh\" and r[\"verb\"] == \"backup\" and r[\"tenant\"] == \"dinkes\" for r in json.load(sys.stdin))'"
check "ssh lumbung restore --tar - brings it back" sh -c "mkdir -p '$T/back' && $SSH lumbung restore dinkes/simpus@latest --tar - | tar -xf - -C '$T/back' && diff -r '$T/srv/app' '$T/back/app'"
seq 1 1000 >"$T/dump.sql"
check "pg_dump-style stdin backups work too" sh -c "$SSH lumbung backup --dataset dinkes/db --stdin-name dump.sql <'$T/dump.sql' >/dev/null 2>&1 && $SSH lumbung cat dinkes/db@latest dump.sql | cmp - '$T/dump.sql'"
$SSH lumbung backup --dataset dinkes/etc /etc >/dev/null 2>"$T/err"
check "walking the appliance's own files is refused" grep -q "over SSH, backup reads only stdin" "$T/err"
$SSH lumbung restore dinkes/simpus@latest --target /tmp/x >/dev/null 2>"$T/err"
check "restoring onto the appliance is refused" grep -q "option '--target' is not available over SSH" "$T/err"
$SSH lumbung snapshots --socket /tmp/other.sock >/dev/null 2>"$T/err"
check "another socket cannot be chosen" grep -q "option '--socket' is not available over SSH" "$T/err"
$SSH lumbung snapshots --so /tmp/other.sock >/dev/null 2>"$T/err"
check "nor through an abbreviation" grep -q "option '--so' is not available over SSH" "$T/err"
$SSH lumbung backup --dataset dinkes/x --archive - --archive /etc/passwd </dev/null >/dev/null 2>"$T/err"
check "a repeated --archive cannot read the appliance's files" grep -q "option '--archive' given twice" "$T/err"
$SSH lumbung backup --dataset dinkes/x --archive=/etc/passwd </dev/null >/dev/null 2>"$T/err"
check "--archive=FILE cannot either" grep -q "over SSH, --archive takes only '-'" "$T/err"
rm -f /tmp/lumbung-serve-probe
$SSH lumbung report --output /tmp/lumbung-serve-probe >/dev/null 2>"$T/err"
check "report --output cannot write on the appliance" sh -c "grep -q \"option '--output' is not available\" '$T/err' && [ ! -e /tmp/lumbung-serve-probe ]"
$SSH lumbung restore dinkes/simpus@latest --tar - --tar /tmp/lumbung-serve-probe >/dev/null 2>"$T/err"
check "nor a repeated --tar" sh -c "grep -q \"option '--tar' given twice\" '$T/err' && [ ! -e /tmp/lumbung-serve-probe ]"
check "report to stdout works" sh -c "$SSH lumbung report --format csv | grep -q '^dinkes,'"
$SSH lumbung forget dinkes/simpus@latest >/dev/null 2>"$T/err"
check "forget is not available over SSH" grep -q "not available over SSH" "$T/err"
$SSH 'sh -c id' >/dev/null 2>"$T/err"
check "a shell command is not run" grep -q "not available over SSH" "$T/err"
"$LUMBUNG" backup --dataset disdik/secret "$T/srv" >/dev/null 2>&1
$SSH lumbung ls disdik/secret@latest >/dev/null 2>"$T/err"
check "another tenant's snapshot is 'not found' over SSH" grep -q "snapshot 'disdik/secret@latest' not found" "$T/err"
done_testing
