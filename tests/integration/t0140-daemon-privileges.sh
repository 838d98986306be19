#!/bin/bash
# Started as root with `user = ...`, lumbungd opens its store and socket and
# then runs as that user; it refuses a store owned by someone else and a
# socket directory others can write.  Without --foreground it returns only
# once it listens.  Restores never replace an existing file.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to drop privileges"
command -v useradd >/dev/null || skip_all "useradd missing"
id lbtestd >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin lbtestd || skip_all "cannot create a user"
chmod 755 "$T"
write_config
sed -i "s|^\[daemon\]\$|[daemon]\nuser = lbtestd|" "$T/lumbung.conf"
check "lumbungd starts as root with user = lbtestd" start_daemon
check "and runs as lbtestd" sh -c "grep -q \"^Uid:.*\$(id -u lbtestd)\" /proc/$DAEMON_PID/status"
check "the store it created belongs to lbtestd" sh -c "[ \$(stat -c %U '$T/store') = lbtestd ] && [ \$(stat -c %U '$T/store/config') = lbtestd ]"
mkdir -p "$T/src"
seq 1 1000 >"$T/src/f.txt"
check "a backup through the unprivileged daemon commits" sh -c "'$LUMBUNG' backup --dataset dinkes/x '$T/src' >/dev/null 2>&1"
stop_daemon
chown -R root "$T/store"
"$LUMBUNGD" --config "$T/lumbung.conf" --foreground >/dev/null 2>"$T/err"
check "a store owned by another user is refused" grep -q "is owned by uid 0, not by lbtestd" "$T/err"
chown -R lbtestd "$T/store"

# A socket directory anyone can write (and without the sticky bit).
mkdir -p "$T/open"
chmod 777 "$T/open"
sed "s|^socket = .*|socket = $T/open/s.sock|" "$T/lumbung.conf" >"$T/open.conf"
"$LUMBUNGD" --config "$T/open.conf" --foreground >/dev/null 2>"$T/err"
check "a socket directory others can write is refused" grep -q "writable by others" "$T/err"

# Without --foreground: returns once listening.
"$LUMBUNGD" --config "$T/lumbung.conf" 2>>"$T/lumbungd.log"
check "without --foreground lumbungd returns 0" test $? -eq 0
check "and is already listening when it returns" "$LUMBUNG" version
DAEMON_PID=$(pgrep -f "lumbungd --config $T/lumbung.conf" | head -n 1)
check "restore into a fresh directory" "$LUMBUNG" restore dinkes/x@latest --target "$T/r"
echo "mine" >"$T/r/f.txt.keep"
cp "$T/r/f.txt.keep" "$T/r/f.txt"
"$LUMBUNG" restore dinkes/x@latest --target "$T/r" >/dev/null 2>"$T/err"
check "restoring over an existing file fails" test $? -ne 0
check "and leaves that file as it was" cmp "$T/r/f.txt" "$T/r/f.txt.keep"
check "saying which file" grep -q "f.txt" "$T/err"
done_testing
