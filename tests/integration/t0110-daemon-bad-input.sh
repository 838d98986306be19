#!/bin/bash
# Bad input gets one clear line and changes nothing: malformed and truncated
# archives, a client that disconnects mid-stream, garbage, an oversize length
# or another protocol version on the socket, missing snapshots and paths,
# and hostile archives (.. names, absolute names, a symlink followed by a
# file through it, hard links to outside) that restores never follow out of
# the target.  The daemon keeps serving others throughout.
. "$(dirname "$0")/lib.sh"

RAW="python3 $(dirname "$0")/rawclient.py $LUMBUNG_SOCKET"
check "lumbungd starts" start_daemon
mkdir -p "$T/src"
seq 1 10000 >"$T/src/a.txt"
check "a first snapshot" sh -c "'$LUMBUNG' backup --dataset dinkes/app '$T/src' >'$T/id' 2>/dev/null"
store_state() { (cd "$T/store" && find snapshots -type f | sort) ; }
store_state >"$T/state0"
unchanged() { store_state | cmp -s - "$T/state0"; }

# Archives that are not, or not whole.
head -c 100000 /dev/urandom >"$T/random.tar"
"$LUMBUNG" backup --dataset dinkes/app --archive "$T/random.tar" >/dev/null 2>"$T/err"
check "random bytes as an archive fail with exit 1" test $? -eq 1
check "with one line naming the archive" grep -q "random.tar" "$T/err"
tar -cf "$T/good.tar" -C "$T/src" . && head -c 6000 "$T/good.tar" >"$T/trunc.tar"
"$LUMBUNG" backup --dataset dinkes/app --archive "$T/trunc.tar" >/dev/null 2>"$T/err"
check "a truncated archive fails" test $? -eq 1
check "saying it is truncated or malformed" grep -qi "truncat\|malformed" "$T/err"
check "and nothing was committed" unchanged

# The socket: garbage, oversize, another version, no hello, unknown types.
check "garbage is refused as not our protocol" sh -c "$RAW garbage | grep -q 'error: not a lumbung protocol frame'"
check "an oversize length is refused" sh -c "$RAW oversize | grep -q 'error: frame of 2147483647 bytes exceeds the limit'"
check "another protocol version says incompatible" sh -c "$RAW version | grep -q 'error: incompatible lumbung and lumbungd'"
check "a request before hello is refused" sh -c "$RAW no-hello | grep -q 'error: expected hello'"
check "a malformed hello is refused" sh -c "$RAW truncated-hello | grep -q 'error: malformed hello'"
check "an unknown request is refused and the connection closed" sh -c "$RAW unknown-type | tr '\n' ' ' | grep -q 'error: unknown request type 200 then closed'"
check "an entry carrying chunk ids is refused" sh -c "$RAW chunks-from-client | grep -q 'error: backup failed, nothing committed'"
check "file data shorter than its size is refused" sh -c "$RAW short-data | grep -q 'error: backup failed, nothing committed: Protocol error: file data (3 bytes) does not match its size (100)'"
check "a client that disconnects mid-file commits nothing" sh -c "$RAW disconnect-mid-file | grep -q closed-by-client"
check "the daemon still serves, and nothing was committed" sh -c "'$LUMBUNG' snapshots >/dev/null && $(declare -f store_state unchanged); T='$T'; unchanged"
check "the daemon logged why" grep -q "failed, nothing committed" "$T/lumbungd.log"

# What does not exist.
"$LUMBUNG" ls dinkes/app@1999-01-01 >/dev/null 2>"$T/err"
check "a missing snapshot exits 4" test $? -eq 4
check "with a clear message" grep -qx "lumbung: snapshot 'dinkes/app@1999-01-01' not found" "$T/err"
"$LUMBUNG" cat dinkes/app@latest no/such/file >/dev/null 2>"$T/err"
check "a missing path exits 4" test $? -eq 4
check "naming the path" grep -q "path 'no/such/file' not found" "$T/err"
"$LUMBUNG" ls notatenant/app@latest >/dev/null 2>"$T/err"
check "an unknown tenant looks like a missing snapshot" grep -qx "lumbung: snapshot 'notatenant/app@latest' not found" "$T/err"
"$LUMBUNG" backup --dataset 'dinkes/Bad Name' "$T/src" >/dev/null 2>"$T/err"
check "a bad dataset name is a usage error (exit 2)" test $? -eq 2

# A name that matches in two tenants (an administrator sees both).
check "a second tenant's dataset of the same name" sh -c "'$LUMBUNG' backup --dataset disdik/app '$T/src' >/dev/null 2>&1"
"$LUMBUNG" ls app@latest >/dev/null 2>"$T/err"
check "an ambiguous name is a usage error (exit 2)" test $? -eq 2
check "saying it is ambiguous" grep -q "is ambiguous" "$T/err"
check "and the daemon is unharmed" "$LUMBUNG" snapshots
store_state >"$T/state0"

# Hostile archives.
python3 - "$T" <<'PY'
import io, sys, tarfile
t = sys.argv[1]
def add(tf, name, data=b"x", **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    if ti.type == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)
with tarfile.open(t + "/dotdot.tar", "w") as tf:
    add(tf, "ok.txt")
    add(tf, "../../escape.txt", b"gotcha")
with tarfile.open(t + "/absolute.tar", "w") as tf:
    add(tf, "/etc/lumbung-absolute-test", b"abs")
with tarfile.open(t + "/symlink.tar", "w") as tf:
    add(tf, "link", type=tarfile.SYMTYPE, linkname=t + "/outside")
    add(tf, "link/planted.txt", b"through the link")
with tarfile.open(t + "/hardlink.tar", "w") as tf:
    add(tf, "evil", type=tarfile.LNKTYPE, linkname="../../../etc/passwd")
PY
mkdir -p "$T/outside"
"$LUMBUNG" backup --dataset disdik/x --archive "$T/dotdot.tar" >/dev/null 2>"$T/err"
check "an archive with a '..' name is refused" sh -c "[ $? -eq 1 ] && grep -q \"'../../escape.txt' has a '..' component\" '$T/err'"
check "an absolute name is stored relative" sh -c "'$LUMBUNG' backup --dataset disdik/abs --archive '$T/absolute.tar' >/dev/null 2>&1 && '$LUMBUNG' ls disdik/abs@latest | grep -q ' etc/lumbung-absolute-test\$'"
check "and restores inside the target" sh -c "'$LUMBUNG' restore disdik/abs@latest --target '$T/r-abs' && [ -f '$T/r-abs/etc/lumbung-absolute-test' ] && [ ! -e /etc/lumbung-absolute-test ]"
check "a symlink-then-file archive is stored" sh -c "'$LUMBUNG' backup --dataset disdik/sym --archive '$T/symlink.tar' >/dev/null 2>&1"
"$LUMBUNG" restore disdik/sym@latest --target "$T/r-sym" >/dev/null 2>"$T/err"
check "restoring it refuses to write through the symlink" sh -c "[ ! -e '$T/outside/planted.txt' ] && grep -q 'link/planted.txt' '$T/err'"
"$LUMBUNG" backup --dataset disdik/hl --archive "$T/hardlink.tar" >/dev/null 2>"$T/err"
check "a hard link to outside is refused at backup" grep -q "hard link to '../../../etc/passwd' points outside" "$T/err"
check "the daemon is still serving" "$LUMBUNG" snapshots
done_testing
