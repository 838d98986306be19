#!/bin/bash
# End to end through a real lumbungd: a tree holding every file type and
# metadata kind goes in and comes back equal, as judged by an independent
# tool (mtree); archives written by GNU tar and by bsdtar, and stdin, become
# snapshots; ls, cat, diff, snapshots and --json say what is there; a
# no-change backup reads and stores nothing; tar and zip exports hold the
# same bytes.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root for devices, ownership and ACLs"
command -v mtree >/dev/null || skip_all "mtree (mtree-netbsd) not installed"
check "lumbungd starts and answers" start_daemon
# librados is loaded only for a store in a Ceph pool (lib/backend_rados.c).
if [ -z "${LUMBUNG_TEST_RADOS:-}" ]; then
	check "a daemon of a local store maps no Ceph library" sh -c "! grep -E 'librados|libceph' /proc/$DAEMON_PID/maps"
else
	check "a daemon of a store in a pool loaded librados" grep -q librados "/proc/$DAEMON_PID/maps"
fi

# Every kind of entry and metadata.
S=$T/src
make_tree "$S" 7
mknod "$S/null-dev" c 1 3
mknod "$S/loop-dev" b 7 200
chown 1234:2345 "$S/docs/sub/numbers.txt"
chown -h 4321:5432 "$S/docs/link"
setfacl -m u:1234:r-- "$S/docs/random.bin" 2>/dev/null && have_acl=1 || have_acl=0
setfacl -m g:2345:rw- "$S/docs/sub/numbers.txt" 2>/dev/null || true
setfacl -d -m g:2345:rwx "$S/docs/sub" 2>/dev/null || true
chmod 4755 "$S/docs/empty-file"
printf 'x\001\002y' >"$S/bytes"
setfattr -n user.binary -v 0x00ff00 "$S/bytes"
touch -h -d '2001-09-09 01:46:40.123456789' "$S/docs/link"
truncate -s 3M "$S/all-hole.img"

check "backup of the tree" sh -c "'$LUMBUNG' backup --dataset dinkes/simpus '$S' >'$T/id1' 2>'$T/err1'"
check "the snapshot id is printed" grep -Eq '^[0-9a-f]{32}$' "$T/id1"
# Root asks for devices and setuid bits: a full-fidelity restore of a tree it
# trusts (by default they are not restored; t0330 tests that).
check "restore to a new directory" "$LUMBUNG" restore dinkes/simpus@latest --devices --setuid --target "$T/out"
# The root of a one-path backup is the target itself: its own mode and
# times are not part of the snapshot, so they are copied for the compare.
chmod --reference="$S" "$T/out"
touch -r "$S" "$T/out"
(cd "$S" && mtree -c -K sha256digest,uid,gid,mode,time,size,link,type,nlink) >"$T/spec" 2>/dev/null
check "mtree finds the restored tree equal (content, owners, modes, times, links, types)" \
	sh -c "cd '$T/out' && mtree -f '$T/spec'"
check "xattrs with binary values come back" sh -c "getfattr -e hex -n user.binary '$T/out/bytes' | grep -q 0x00ff00"
check "xattrs of the tree come back" sh -c "getfattr -n user.lumbung '$T/out/docs/sub/numbers.txt' | grep -q value-7"
if [ "$have_acl" = 1 ]; then
	check "access ACLs come back" sh -c "getfacl -p '$T/out/docs/random.bin' | grep -q '^user:1234:r--'"
	check "default ACLs come back" sh -c "getfacl -p '$T/out/docs/sub' | grep -q '^default:group:2345:rwx'"
fi
check "hard links come back as one inode" sh -c "[ \$(stat -c %i '$T/out/hardlink.bin') = \$(stat -c %i '$T/out/docs/random.bin') ]"
check "sparse files stay sparse" sh -c "[ \$(du -k '$T/out/sparse.img' | cut -f1) -lt 1024 ]"
check "a file that is all hole comes back as one" sh -c "[ \$(stat -c %s '$T/out/all-hole.img') -eq 3145728 ] && [ \$(du -k '$T/out/all-hole.img' | cut -f1) -lt 64 ] && cmp '$T/out/all-hole.img' '$S/all-hole.img'"
check "devices come back" sh -c "[ -c '$T/out/null-dev' ] && [ -b '$T/out/loop-dev' ] && [ \"\$(stat -c %t:%T '$T/out/loop-dev')\" = 7:c8 ]"
check "GNU tar --compare agrees too" sh -c "cd '$S' && tar -cf '$T/src.tar' --xattrs . && cd '$T/out' && tar --compare -f '$T/src.tar' --xattrs >/dev/null"

# Nothing changed: nothing read, nothing sent, nothing stored but metadata.
"$LUMBUNG" backup --dataset dinkes/simpus "$S" --json >"$T/nochange.json" 2>/dev/null
check "a no-change backup sends no file data" python3 -c "
import json, sys
d = json.load(open('$T/nochange.json'))
assert d['bytes_sent'] == 0, d
assert d['unchanged_files'] >= 5, d
assert d['new_bytes_stored'] < 4096, d"

# Unchanged files with one link are known by their lstat alone: the walk
# does not open them (for flags, ACLs, xattrs or holes), and their entries,
# xattrs and ACLs included, come from the parent.
strace -f -e trace=open,openat -o "$T/nochange.strace" "$LUMBUNG" backup --dataset dinkes/simpus "$S" >/dev/null 2>&1
check "a no-change backup opens no unchanged file" sh -c "grep -q 'openat(' '$T/nochange.strace' && ! grep -E '(seed.txt|numbers.txt|/bytes)\"' '$T/nochange.strace'"
check "a file with two links is still read through libarchive" grep -q 'random.bin"' "$T/nochange.strace"
check "restore of the no-change snapshot" "$LUMBUNG" restore dinkes/simpus@latest --devices --setuid --target "$T/out-nc"
chmod --reference="$S" "$T/out-nc"
touch -r "$S" "$T/out-nc"
check "mtree finds it equal to the tree" sh -c "cd '$T/out-nc' && mtree -f '$T/spec'"
check "its xattrs come from the parent" sh -c "getfattr -e hex -n user.binary '$T/out-nc/bytes' | grep -q 0x00ff00 && getfattr -n user.lumbung '$T/out-nc/docs/sub/numbers.txt' | grep -q value-7"
if [ "$have_acl" = 1 ]; then
	check "its ACLs come from the parent" sh -c "getfacl -p '$T/out-nc/docs/sub/numbers.txt' | grep -q '^group:2345:rw-'"
fi
# An owner's name can change (passwd edited) without moving ctime: such a
# file is read again, so the snapshot takes the new name.
chown 4242 "$S/seed.txt"
"$LUMBUNG" backup --dataset dinkes/simpus "$S" >/dev/null 2>&1
{ cat /etc/passwd; echo 'lbrenamed:x:4242:4242::/nonexistent:/usr/sbin/nologin'; } >"$T/passwd"
unshare -m sh -c "mount --bind '$T/passwd' /etc/passwd && exec strace -f -e trace=open,openat -o '$T/renamed.strace' '$LUMBUNG' backup --dataset dinkes/simpus '$S'" >/dev/null 2>&1
check "a file whose owner was renamed is read again" grep -q 'seed.txt"' "$T/renamed.strace"
check "files whose names did not change are still not opened" sh -c "! grep -q 'numbers.txt\"' '$T/renamed.strace'"
chown 0 "$S/seed.txt"
# A new xattr moves ctime: the file is read again and the snapshot has it.
setfattr -n user.added -v later "$S/seed.txt"
check "backup after an xattr change" sh -c "'$LUMBUNG' backup --dataset dinkes/simpus '$S' >/dev/null 2>&1"
check "restore of it" "$LUMBUNG" restore dinkes/simpus@latest seed.txt --target "$T/out-x"
check "the new xattr is in the snapshot" sh -c "getfattr -n user.added '$T/out-x/seed.txt' | grep -q later"
setfattr -x user.added "$S/seed.txt"

# A change, and what diff says about it.
printf 'changed\n' >>"$S/seed.txt"
rm "$S/docs/empty-file"
echo new >"$S/added.txt"
check "backup after changes" sh -c "'$LUMBUNG' backup --dataset dinkes/simpus '$S' >'$T/id3' 2>/dev/null"
"$LUMBUNG" diff "$(cat "$T/id1")" "$(cat "$T/id3")" >"$T/diff" 2>/dev/null
check "diff names the added file" grep -qx '+ added.txt (4 bytes)' "$T/diff"
check "diff names the removed file" grep -qx -- '- docs/empty-file (0 bytes)' "$T/diff"
check "diff names the changed file" grep -q '^M seed.txt (7 -> 15 bytes)' "$T/diff"
check "diff names the directory whose entries changed" grep -qx 'M docs (0 -> 0 bytes)' "$T/diff"
check "diff lists nothing else" test "$(wc -l <"$T/diff")" -eq 4

check "ls lists the tree" sh -c "'$LUMBUNG' ls dinkes/simpus@latest | grep -q ' docs/sub/numbers.txt\$'"
check "ls PATH lists below it only" sh -c "'$LUMBUNG' ls dinkes/simpus@latest docs/sub | awk '{print \$NF}' | grep -v '^docs/sub' | wc -l | grep -qx 0"
check "ls --json is valid JSON" sh -c "'$LUMBUNG' ls --json dinkes/simpus@latest | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) > 10'"
check "cat writes one file" sh -c "'$LUMBUNG' cat dinkes/simpus@latest docs/sub/numbers.txt | cmp - '$S/docs/sub/numbers.txt'"
check "cat of a sparse file gives its holes as zeros" sh -c "'$LUMBUNG' cat dinkes/simpus@latest sparse.img | cmp - '$S/sparse.img'"
"$LUMBUNG" cat dinkes/simpus@latest docs >"$T/catdir" 2>"$T/err"
check "cat of a directory exits 4 and writes nothing" sh -c "[ $? -eq 4 ] && [ ! -s '$T/catdir' ] && grep -q 'not a regular file' '$T/err'"
check "a unique id prefix names a snapshot" sh -c "'$LUMBUNG' cat \$(cut -c1-8 '$T/id1') seed.txt | grep -qx 'seed 7'"
check "snapshots --json lists seven with their fields" python3 -c "
import json, subprocess
s = json.loads(subprocess.check_output(['$LUMBUNG', 'snapshots', '--json']))
assert len(s) == 7, s
assert all(x['tenant'] == 'dinkes' and x['dataset'] == 'simpus' for x in s)
assert s[0]['id'] == open('$T/id1').read().strip()
assert s[0]['files'] >= 5 and s[0]['bytes'] > 300000"

# Partial restore, and exports.
check "restore of one directory" "$LUMBUNG" restore dinkes/simpus@latest docs/sub --target "$T/part"
check "only that directory came back" sh -c "[ -f '$T/part/docs/sub/numbers.txt' ] && [ ! -e '$T/part/seed.txt' ]"
check "restore --tar -" sh -c "'$LUMBUNG' restore dinkes/simpus@latest --tar - >'$T/out.tar'"
check "the tar holds the same bytes" sh -c "mkdir '$T/tx' && tar -xf '$T/out.tar' -C '$T/tx' && cmp '$T/tx/docs/random.bin' '$S/docs/random.bin' && cmp '$T/tx/sparse.img' '$S/sparse.img'"
check "restore --zip" "$LUMBUNG" restore dinkes/simpus@latest --zip "$T/out.zip"
check "the zip holds the same bytes" python3 -c "
import zipfile
z = zipfile.ZipFile('$T/out.zip')
assert z.read('docs/sub/numbers.txt') == open('$S/docs/sub/numbers.txt', 'rb').read()"

# Archives as input: GNU tar (gzip) and bsdtar (pax, xz), and stdin.
(cd "$S" && mtree -c -K sha256digest,uid,gid,mode,time,size,link,type,nlink) >"$T/spec2" 2>/dev/null
check "backup of a GNU tar.gz from stdin" sh -c "tar --format=posix --xattrs --acls -czf - -C '$S' . | '$LUMBUNG' backup --dataset disdik/gnutar --archive - >/dev/null 2>&1"
check "restore of the GNU tar snapshot" "$LUMBUNG" restore disdik/gnutar@latest --devices --setuid --target "$T/gt"
chmod --reference="$S" "$T/gt"
touch -r "$S" "$T/gt"
check "equals the tree it was made from (mtree)" sh -c "cd '$T/gt' && mtree -f '$T/spec2'"
if command -v bsdtar >/dev/null; then
	bsdtar --format pax -cJf "$T/bsd.tar.xz" -C "$S" docs seed.txt
	check "backup of a bsdtar pax.xz file" sh -c "'$LUMBUNG' backup --dataset disdik/bsdtar --archive '$T/bsd.tar.xz' >/dev/null 2>&1"
	check "its files come back" sh -c "'$LUMBUNG' cat disdik/bsdtar@latest docs/sub/numbers.txt | cmp - '$S/docs/sub/numbers.txt'"
fi
check "backup of one file given as the path keeps its name" sh -c "'$LUMBUNG' backup --dataset dukcapil/onefile '$S/docs/sub/numbers.txt' >/dev/null 2>&1 && '$LUMBUNG' cat dukcapil/onefile@latest numbers.txt | cmp - '$S/docs/sub/numbers.txt'"
head -c 3000000 /dev/urandom >"$T/dump.sql"
check "backup of stdin as one file" sh -c "'$LUMBUNG' backup --dataset dukcapil/db --stdin-name dumps/siak.sql <'$T/dump.sql' >/dev/null 2>&1"
check "the stdin file comes back" sh -c "'$LUMBUNG' cat dukcapil/db@latest dumps/siak.sql | cmp - '$T/dump.sql'"
# A manifest past its memory budget goes to sorted runs in a temporary
# file of the store's directory: with 2 KiB, every few entries spill, and
# the snapshot holds the same tree, hardlinks included.
stop_daemon
export LUMBUNG_MANIFEST_BUDGET=2048
check "lumbungd starts with a tiny manifest budget" start_daemon
unset LUMBUNG_MANIFEST_BUDGET
check "a backup whose manifest spills" sh -c "'$LUMBUNG' backup --dataset dukcapil/spill '$S' >/dev/null"
check "the daemon says it went through runs on disk" grep -q "dukcapil/spill: its manifest of .* sorted runs on disk" "$T/lumbungd.log"
check "restores the same tree" "$LUMBUNG" restore dukcapil/spill@latest --devices --setuid --target "$T/spill"
chmod --reference="$S" "$T/spill"
touch -r "$S" "$T/spill"
check "mtree finds it equal" sh -c "cd '$T/spill' && mtree -f '$T/spec2'"
check "and leaves no temporary file behind" sh -c "! ls -a '$T/store' | grep -q lumbung-manifest"
check "check --read-data is clean" "$LUMBUNG" check --read-data
done_testing
