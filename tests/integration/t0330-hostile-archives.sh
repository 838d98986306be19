#!/bin/bash
# Hostile archives, beyond t0110: each is either stored, with its names kept
# byte for byte and shown escaped, or refused with one line saying why and
# nothing committed.  Restores of what was stored, as a tenant member and as
# root, into a target beside a canary directory and holding symlinks planted
# before the restore: nothing is written outside the target, no device
# nodes and no setuid/setgid bits unless root asks (--devices, --setuid), and
# tar and zip exports carry the same safe names.  A zip bomb dedups to
# almost nothing within a small quota; the quota still applies to archives.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to create a tenant member"
id opd-dinkes >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin opd-dinkes ||
	skip_all "cannot create users"
U=opd-dinkes
chmod 755 "$T"
write_config "[tenant kecil]
quota = 2M"
check "lumbungd starts" start_daemon
as() { u=$1; shift; runuser -u "$u" -- env LUMBUNG_SOCKET="$LUMBUNG_SOCKET" "$@"; }
HP="python3 $(dirname "$0")/hostile.py"
clean() { $HP clean "$1"; }
mkdir -p "$T/a"
check "the hostile archives are made" $HP make "$T/a" "$T/rt-root/canary" "$(id -u $U)" "$(id -g $U)"

store_state() { (cd "$T/store" && find snapshots -type f 2>/dev/null | sort); }
# refused NAME PATTERN: backing up $T/a/NAME fails with exit 1, saying
# PATTERN on a line without raw control characters, and commits nothing.
unchanged() { store_state | cmp -s - "$T/state0"; }
refused() {
	f=$1
	store_state >"$T/state0"
	"$LUMBUNG" backup --dataset "dinkes/${1%.*}" --archive "$T/a/$1" >/dev/null 2>"$T/$1.err"
	rc=$?
	check "$1 is refused (exit 1)" test $rc -eq 1
	check "$1: saying why" grep -q -- "$2" "$T/$1.err"
	check "$1: a reason and a summary line, no control characters" eval '[ $(wc -l <"$T/$f.err") -le 2 ] && clean "$T/$f.err"'
	check "$1: nothing was committed" unchanged
}
refused dotdot.tar "member 'a/../../b' has a '..' component"
refused dotdot-esc.tar 'evil\\x1b\[2J\\x1b\]0;pwned\\x07/../../x'
refused hardlink-out.tar "hard link to 'a/../../../etc/passwd' points outside"
refused toolong.tar "has a name longer than 4095 bytes"
refused trunc.tar "big.bin: Truncated tar archive"

for a in absolute symlinks hardlinks special names nul long dup sparse; do
	check "$a.tar is stored" eval '"$LUMBUNG" backup --dataset dinkes/$a --archive "$T/a/$a.tar" >/dev/null 2>"$T/$a.err"'
done
ls_has() { "$LUMBUNG" ls "dinkes/$1@latest" | grep -q -- "$2"; }
check "absolute names are stored relative" ls_has absolute ' etc/passwd$'
check "and '//' too" ls_has absolute ' double/slash.txt$'
check "a symlink to outside is stored as a symlink" ls_has symlinks " d -> $T/rt-root/canary\$"
check "a hard link to an absolute name points inside" ls_has hardlinks ' abs => real.txt$\| real.txt => abs$'
check "a hard link to a missing entry is stored as given" ls_has hardlinks ' ghost => not/there$'
"$LUMBUNG" ls dinkes/special@latest >"$T/special.ls"
check "devices, fifos and mode bits are stored as they came" eval 'grep -q "^crw-rw-rw- .* dev/null0$" "$T/special.ls" &&
	grep -q "^brw-rw-rw- .* dev/sda0$" "$T/special.ls" && grep -q "^prw-r--r-- .* fifo$" "$T/special.ls" &&
	grep -q "^-rwsr-xr-x .* suid$" "$T/special.ls" && grep -q "^drwxrwxrwt .* sticky$" "$T/special.ls"'
check "a name with a NUL ends at the NUL" ls_has nul ' nul$'
check "of duplicate names the last one counts" eval '[ "$("$LUMBUNG" cat dinkes/dup@latest dup.txt)" = second ] &&
	ls_has dup "^-.* x$"'
check "a 1 TiB sparse entry is stored with its size" ls_has sparse ' 1099511627776 .* huge.img$'

# Names: stored byte for byte, shown escaped.
"$LUMBUNG" ls dinkes/names@latest >"$T/names.ls"
"$LUMBUNG" ls --json dinkes/names@latest >"$T/names.json"
check "ls shows control characters and bad UTF-8 escaped" clean "$T/names.ls"
check "one line per entry" test "$(wc -l <"$T/names.ls")" -eq 10
for want in ' nl\nname' ' cr\rname' ' tab\tname' ' esc\x1b[31mred\x1b[0m' ' ctl\x01\x7f' ' bad\xff\xfeutf8' \
	' c1\xc2\x9bcsi' ' back\\slash' ' dirnl\n/inner' ' link\x1b[1m -> target\n\x1b[2J'; do
	check "ls shows '$want'" grep -qF -- "$want" "$T/names.ls"
done
check "ls --json is valid JSON, with the archive's names byte for byte" eval '$HP names json "$T/names.json" >"$T/names.want" &&
	[ $(wc -l <"$T/names.want") -eq 10 ] && grep -qF "b'"'"'bad\\xff\\xfeutf8'"'"'" "$T/names.want" &&
	grep -qF "b'"'"'esc\\x1b[31mred\\x1b[0m'"'"'" "$T/names.want"'

# Restores, as a member and as root.  Each target has a canary directory
# beside it and symlinks planted in it beforehand: p -> ../canary everywhere,
# dup.txt -> ../canary/victim.txt where the snapshot has a dup.txt (a
# symlink in the way of an entry is replaced, never followed).
for who in $U root; do
	R="$T/rt-$who"
	mkdir -p "$R/canary"
	echo secret >"$R/canary/victim.txt"
	chmod 600 "$R/canary/victim.txt"
	touch -d '2020-01-01' "$R/canary/victim.txt" "$R/canary"
	chown -R "$who" "$R"
	tree_digest "$R/canary" >"$T/canary-$who.0"
	for a in absolute symlinks hardlinks special names nul long dup sparse; do
		mkdir "$R/$a"
		ln -s ../canary "$R/$a/p"
		[ "$a" = dup ] && ln -s ../canary/victim.txt "$R/$a/dup.txt"
		chown -hR "$who" "$R/$a"
		if [ "$who" = root ]; then
			"$LUMBUNG" restore "dinkes/$a@latest" --target "$R/$a" >/dev/null 2>"$T/r-$who-$a.err"
		else
			as "$who" "$LUMBUNG" restore "dinkes/$a@latest" --target "$R/$a" >/dev/null 2>"$T/r-$who-$a.err"
		fi
		echo $? >"$T/r-$who-$a.rc"
	done
	rcof() { cat "$T/r-$who-$1.rc"; }
	errf="$T/r-$who"
	check "$who: the canary is untouched" eval 'tree_digest "$R/canary" | cmp - "$T/canary-$who.0"'
	check "$who: nothing appeared beside the targets" eval '[ "$(ls "$R" | tr "\n" " ")" = "absolute canary dup hardlinks long names nul sparse special symlinks " ]'
	check "$who: a planted symlink in a restored path stays, and is not followed" eval '[ -L "$R/symlinks/p" ] &&
		[ ! -e "$R/canary/new.txt" ]'
	check "$who: no restore's messages hold control characters" eval 'cat "$errf"-*.err >"$T/all-$who.err" && clean "$T/all-$who.err"'
	check "$who: absolute names land inside the target" eval '[ $(rcof absolute) -eq 0 ] && [ -f "$R/absolute/etc/passwd" ] &&
		[ -f "$R/absolute/double/slash.txt" ]'
	check "$who: writing through a stored symlink is refused" eval '[ $(rcof symlinks) -eq 1 ] &&
		grep -q "link/planted.txt: Cannot extract through symlink" "$errf-symlinks.err" &&
		grep -q "d/sub/deeper.txt: Cannot extract through symlink" "$errf-symlinks.err" &&
		grep -q "rel/planted2.txt: Cannot extract through symlink" "$errf-symlinks.err"'
	check "$who: and so are hard links through stored and planted symlinks" eval '
		grep -q "^lumbung: zz: " "$errf-symlinks.err" && grep -q "^lumbung: zzz: " "$errf-symlinks.err" &&
		grep -q "p/new.txt: Cannot extract through symlink" "$errf-symlinks.err" &&
		[ ! -e "$R/symlinks/zz" ] && [ ! -e "$R/symlinks/zzz" ]'
	check "$who: a hard link to a missing entry fails alone" eval '[ $(rcof hardlinks) -eq 1 ] &&
		grep -q "ghost: Hard-link target .not/there. does not exist" "$errf-hardlinks.err" &&
		[ "$(stat -c %i "$R/hardlinks/real.txt")" = "$(stat -c %i "$R/hardlinks/abs")" ]'
	check "$who: no device node is created" eval '[ -z "$(find "$R" -type b -o -type c)" ] &&
		[ $(grep -c "device node not created" "$errf-special.err") -eq 2 ]'
	check "$who: no setuid/setgid file is created" eval '[ -z "$(find "$R" ! -type d -perm /6000)" ] &&
		[ $(grep -c "setuid/setgid bits dropped" "$errf-special.err") -eq 3 ]'
	check "$who: that is a warning, not a failure; fifos and sticky bits stay" eval '[ $(rcof special) -eq 0 ] &&
		[ -p "$R/special/fifo" ] && [ "$(stat -c %a "$R/special/sticky")" = 1777 ]'
	check "$who: hostile names restore byte for byte" eval '[ $(rcof names) -eq 0 ] &&
		$HP names dir "$R/names" >"$T/names-$who.dir" && [ -z "$(LC_ALL=C comm -23 "$T/names.want" "$T/names-$who.dir")" ]'
	check "$who: a name with a NUL restores as its part before the NUL" test -f "$R/nul/nul"
	check "$who: a 255-byte name and a 3000-byte deep path restore" eval '[ $(rcof long) -eq 0 ] &&
		[ -f "$R/long/$(printf "L%.0s" $(seq 255))" ] && [ -f "$R/long/$(printf "d123456789/%.0s" $(seq 270))deep.txt" ]'
	check "$who: a planted symlink at a restored file's name is replaced, not followed" eval '[ ! -L "$R/dup/dup.txt" ] &&
		[ "$(cat "$R/dup/dup.txt")" = second ] && [ "$(cat "$R/canary/victim.txt")" = secret ]'
	check "$who: an entry below a file is refused, alone" eval '[ $(rcof dup) -eq 1 ] &&
		[ "$(cat "$errf-dup.err")" = "lumbung: x/y: Could not stat x/y" ]'
	check "$who: a 1 TiB sparse file restores with its holes" eval '[ $(rcof sparse) -eq 0 ] &&
		[ $(stat -c %s "$R/sparse/huge.img") -eq 1099511627776 ] && [ $(du -k "$R/sparse/huge.img" | cut -f1) -lt 1024 ] &&
		[ "$($HP at "$R/sparse/huge.img" 1099511623680 5)" = hello ]'
	[ "$who" = root ] ||
		check "$who: everything restored belongs to $who" eval '[ -z "$(find "$R" ! -user "$who" | head -1)" ]'
done
check "a member cannot ask for devices or setuid bits (exit 2)" eval 'as $U "$LUMBUNG" restore dinkes/special@latest --devices --target "$T/rt-$U/x"; [ $? -eq 2 ]'
"$LUMBUNG" restore dinkes/special@latest --devices --setuid --target "$T/rt-full" >/dev/null 2>"$T/full.err"
check "root with --devices and --setuid gets them" eval '[ -c "$T/rt-full/dev/null0" ] && [ -b "$T/rt-full/dev/sda0" ] &&
	[ "$(stat -c "%a %u" "$T/rt-full/suid")" = "4755 0" ] && [ ! -s "$T/full.err" ]'

# Exports: the same names, all of them safe.
E="$T/rt-$U/exports"
mkdir "$E" && chown $U "$E"
for a in symlinks hardlinks special names long dup; do
	as $U "$LUMBUNG" restore "dinkes/$a@latest" --tar "$E/$a.tar" 2>"$T/$a.tar.err"
	as $U "$LUMBUNG" restore "dinkes/$a@latest" --zip "$E/$a.zip" 2>"$T/$a.zip.err"
	check "$a as tar and zip: relative names without '..'" eval '$HP safe tar "$E/$a.tar" && $HP safe zip "$E/$a.zip" &&
		clean "$T/$a.tar.err" && clean "$T/$a.zip.err"'
done
check "the tar of hostile names has exactly the stored names" eval '$HP names tar "$E/names.tar" | cmp - "$T/names.want"'
check "and so has the zip" eval '$HP names zip "$E/names.zip" | cmp - "$T/names.want"'
"$LUMBUNG" restore dinkes/sparse@latest --tar "$T/sparse.out.tar" 2>"$T/sparse.tar.err"
rc=$?
check "a 1 TiB sparse file exports as a small sparse tar" eval '[ $rc -eq 0 ] && [ $(stat -c %s "$T/sparse.out.tar") -lt 65536 ]'
check "which extracts to the same file" eval 'mkdir "$T/x-sparse" && bsdtar -xf "$T/sparse.out.tar" -C "$T/x-sparse" &&
	[ $(stat -c %s "$T/x-sparse/huge.img") -eq 1099511627776 ] && [ "$($HP at "$T/x-sparse/huge.img" 1099511623680 5)" = hello ]'
"$LUMBUNG" restore dinkes/sparse@latest --zip "$T/sparse.out.zip" 2>"$T/sparse.zip.err"
rc=$?
check "a zip, which has no holes, leaves it out, saying so (exit 1)" eval '[ $rc -eq 1 ] &&
	grep -q "huge.img left out: 1024.0 GiB of holes, which a zip cannot store; use --tar" "$T/sparse.zip.err"'

# A single path with tricks: not found, or inside the target.
for p in ../x /etc/passwd a/../../b ./etc/passwd etc/../../x; do
	as $U "$LUMBUNG" restore dinkes/absolute@latest "$p" --target "$T/rt-$U/one" >/dev/null 2>"$T/one.err"
	rc=$?
	check "restore of path '$p' is refused as not found (exit 4)" eval '[ $rc -eq 4 ] && grep -q "not found" "$T/one.err"'
done
check "and nothing was written" eval '[ -z "$(ls -A "$T/rt-$U/one")" ]'
sum0=$(sha256sum /etc/passwd)
check "restore of etc/passwd stays in the target" eval 'as $U "$LUMBUNG" restore dinkes/absolute@latest etc/passwd --target "$T/rt-$U/one" &&
	grep -q "^root::0:0::/:/bin/sh$" "$T/rt-$U/one/etc/passwd"'
check "and /etc/passwd is untouched" test "$(sha256sum /etc/passwd)" = "$sum0"

# A zip bomb: 1 GiB of zeros in 1 MiB, into a tenant with a 2 MiB quota.
du0=$(du -sk "$T/store" | cut -f1)
check "a 1 GiB zip bomb is stored" eval '"$LUMBUNG" backup --dataset kecil/bomb --archive "$T/a/bomb.zip" >/dev/null 2>"$T/bomb.err"'
check "with its full size" eval '"$LUMBUNG" ls kecil/bomb@latest | grep -q " 1073741824 .* zeros.bin$"'
charged=$("$LUMBUNG" quota --tenant kecil --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["charged"])')
check "it dedups to almost nothing: charged $charged bytes" test "$charged" -lt 65536
check "the store grew by less than 1 MiB" test $(($(du -sk "$T/store" | cut -f1) - du0)) -lt 1024
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
check "lumbungd's memory peaked at $hwm KiB, far below the 1 GiB it took in" test "$hwm" -lt 524288
head -c 3000000 /dev/urandom >"$T/rand.bin"
tar -czf "$T/a/rand.tgz" -C "$T" rand.bin
store_state >"$T/state0"
"$LUMBUNG" backup --dataset kecil/rand --archive "$T/a/rand.tgz" >/dev/null 2>"$T/rand.err"
check "an archive over the quota is refused" test $? -ne 0
check "naming the quota" grep -q "tenant kecil would go over its quota" "$T/rand.err"
check "and nothing was committed" unchanged
check "the daemon still serves" "$LUMBUNG" snapshots
done_testing
