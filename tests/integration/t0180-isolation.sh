#!/bin/bash
# Isolation between tenants, with real Unix users: a member of dinkes cannot
# list, ls, cat, diff, restore, audit or see the quota of disdik, through the
# CLI or through hand-made protocol messages naming disdik's snapshots by
# name or id; every such answer is the one a missing object gets.  A user in
# no tenant is refused at connect time; an admin sees all; --tenant picks
# among a member's tenants.  Snapshots are append-only for members: their
# deletes are refused, an admin's succeed and the charge drops exactly.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root to create users"
for u in opd-dinkes opd-disdik opd-both nobody-here; do
	id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u" || skip_all "cannot create users"
done
getent group lumbung-admin >/dev/null || groupadd --system lumbung-admin
getent group dinkes-it >/dev/null || groupadd --system dinkes-it
id opd-grp >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin -G dinkes-it opd-grp
id admin-user >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin -G lumbung-admin admin-user
chmod 755 "$T"
write_config
sed -i 's/^users = opd-dinkes$/users = opd-dinkes, opd-both\ngroups = dinkes-it/; s/^users = opd-disdik$/users = opd-disdik, opd-both/' "$T/lumbung.conf"
check "lumbungd starts" start_daemon
as() { u=$1; shift; runuser -u "$u" -- env LUMBUNG_SOCKET="$LUMBUNG_SOCKET" "$@"; }
mkdir -p "$T/src"
echo "data kesehatan" >"$T/src/pasien.txt"
chmod -R a+rX "$T/src"
check "a dinkes member backs up its own dataset without naming the tenant" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as opd-dinkes '$LUMBUNG' backup --dataset simpus '$T/src' >/dev/null 2>&1"
check "a disdik member backs up its own" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as opd-disdik '$LUMBUNG' backup --dataset dapodik '$T/src' >/dev/null 2>&1"
did=$("$LUMBUNG" snapshots --json | python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin) if s["tenant"]=="disdik"][0])')

# Every way of naming disdik's snapshot, as a dinkes member, against a name
# that exists nowhere: same exit code, same message shape.
probe() { # probe NAME ARGS...: runs as opd-dinkes, prints "exit|message-with-name-masked"
	name=$1; shift
	out=$(as opd-dinkes "$LUMBUNG" "$@" 2>&1 >/dev/null)
	echo "$?|$(echo "$out" | sed "s|$name|NAME|g")"
}
for form in "disdik/dapodik@latest" "$did" "$(echo "$did" | cut -c1-8)"; do
	for verb in "ls" "cat:pasien.txt" "restore:--tar:-" "diff:simpus@latest" "forget"; do
		args=$(echo "$verb" | tr ':' ' ')
		v=${args%% *}
		rest=${args#"$v"}
		[ "$v" = "$args" ] && rest=""
		theirs=$(probe "$form" $v "$form" $rest)
		missing=$(probe "nosuch/thing@latest" $v "nosuch/thing@latest" $rest)
		[ "$v" = forget ] && missing=$(probe "dinkes/simpus@latest" forget "dinkes/simpus@latest")
		check "$v of disdik's snapshot ($form) answers like a missing one ($theirs)" test "$theirs" = "$missing"
	done
done
check "snapshots as a dinkes member lists only dinkes" sh -c "[ \"\$($(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as opd-dinkes '$LUMBUNG' snapshots --json | python3 -c 'import json,sys; print(sorted(set(s[\"tenant\"] for s in json.load(sys.stdin))))')\" = \"['dinkes']\" ]"
q_theirs=$(probe disdik quota --tenant disdik)
q_missing=$(probe nosuch quota --tenant nosuch)
check "quota of disdik answers like an unknown tenant" test "$q_theirs" = "$q_missing"
a_theirs=$(probe disdik audit --tenant disdik)
a_missing=$(probe nosuch audit --tenant nosuch)
check "audit of disdik answers like an unknown tenant" test "$a_theirs" = "$a_missing"
check "a backup into disdik as a dinkes member is refused like an unknown tenant" sh -c "
	$(declare -f as probe); LUMBUNG='$LUMBUNG'; LUMBUNG_SOCKET='$LUMBUNG_SOCKET'
	[ \"\$(probe disdik backup --dataset disdik/x '$T/src')\" = \"\$(probe nosuch backup --dataset nosuch/x '$T/src')\" ]"

# Hand-made protocol messages carry no identity: the kernel's counts.
runuser -u opd-dinkes -- python3 "$(dirname "$0")/rawclient.py" "$LUMBUNG_SOCKET" "read-other:$did" >"$T/raw.out" 2>&1
check "a raw READ of disdik's snapshot id as a dinkes member is 'not found'" grep -q "error: snapshot '$did' not found" "$T/raw.out"
runuser -u opd-dinkes -- python3 "$(dirname "$0")/rawclient.py" "$LUMBUNG_SOCKET" "read-other:disdik/dapodik@latest" >"$T/raw2.out" 2>&1
check "a raw READ naming disdik's dataset is 'not found'" grep -q "error: snapshot 'disdik/dapodik@latest' not found" "$T/raw2.out"

# Who may connect, and what they see.
as nobody-here "$LUMBUNG" snapshots >/dev/null 2>"$T/err"
check "a user in no tenant is refused at connect time (exit 6)" test $? -eq 6
check "with a clear message" grep -q "user nobody-here is not a member of any tenant" "$T/err"
check "an admin-group member sees every tenant" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as admin-user '$LUMBUNG' snapshots --json | grep -q disdik && as admin-user '$LUMBUNG' snapshots --json | grep -q dinkes"
as opd-both "$LUMBUNG" backup --dataset app "$T/src" >/dev/null 2>"$T/err"
check "a member of two tenants must name one" grep -q "name the tenant" "$T/err"
check "and --tenant picks it" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as opd-both '$LUMBUNG' backup --tenant disdik --dataset app '$T/src' >/dev/null 2>&1"

check "membership through a group (groups = dinkes-it) is honoured" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; as opd-grp '$LUMBUNG' snapshots --json | grep -q dinkes/ || as opd-grp '$LUMBUNG' snapshots --json | grep -q '\"tenant\":\"dinkes\"'"
check "and only that tenant" sh -c "$(declare -f as); LUMBUNG_SOCKET='$LUMBUNG_SOCKET'; ! as opd-grp '$LUMBUNG' snapshots --json | grep -q '\"tenant\":\"disdik\"'"

# Append-only: members cannot delete; admins can, and the charge drops.
as opd-dinkes "$LUMBUNG" forget dinkes/simpus@latest >/dev/null 2>"$T/err"
check "a member's delete of its own snapshot is refused (exit 6)" test $? -eq 6
check "saying snapshots are append-only" grep -q "append-only for tenants" "$T/err"
check "the snapshot is still there" sh -c "'$LUMBUNG' snapshots | grep -q dinkes/simpus"
before=$("$LUMBUNG" quota --tenant disdik --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["charged"])')
check "an admin forgets disdik's app snapshot" "$LUMBUNG" forget disdik/app@latest
after=$("$LUMBUNG" quota --tenant disdik --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["charged"])')
check "the charge dropped by the head only (its data is in another snapshot)" sh -c "[ $after -lt $before ] && [ $((before - after)) -lt 1000 ]"
check "and check agrees with the kept charges" "$LUMBUNG" check
done_testing
