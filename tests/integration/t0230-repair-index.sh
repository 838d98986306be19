#!/bin/bash
# lumbung repair index: the remedy lumbungd names when an index run is
# damaged.  It refuses while lumbungd holds the store, rebuilds the index
# from the packs so that lumbungd starts again and every snapshot restores
# bit-exact, keeps the store's owner as the new run's owner when run as
# root, counts a damaged pack in its status, and refuses what is not a store.
. "$(dirname "$0")/lib.sh"

flip() { # flip FILE OFFSET: inverts one byte
	python3 -c "import sys
f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0xff]))" "$1" "$2"
}
write_config
make_tree "$T/src" 7
start_daemon
check "a backup to repair later" "$LUMBUNG" backup --dataset dinkes/app "$T/src"
"$LUMBUNG" repair index --config "$T/lumbung.conf" >"$T/busy.out" 2>&1
check "repair refuses while lumbungd runs (exit 6)" test $? -eq 6
check "and says to stop lumbungd" grep -q "in use.*stop lumbungd first" "$T/busy.out"
stop_daemon

run=$(ls "$T"/store/index/* | head -n 1)
flip "$run" 40
check_fails "lumbungd refuses a store with a damaged index run" start_daemon
check "its log names the repair" grep -q "lumbung repair index" "$T/lumbungd.log"
"$LUMBUNG" repair index --config "$T/lumbung.conf" >"$T/repair.out" 2>&1
check "repair index rebuilds it (exit 0)" test $? -eq 0
check "and reports what it found" grep -Eq "rebuilt the index of .*: [1-9][0-9]* chunks from [1-9][0-9]* packs, 0 damaged packs skipped" "$T/repair.out"
check "lumbungd starts again" start_daemon
check "check --read-data is clean" "$LUMBUNG" check --read-data
"$LUMBUNG" restore dinkes/app@latest --target "$T/r" >/dev/null 2>&1
check "the snapshot restores bit-exact" same_tree "$T/src" "$T/r"
check "and a new backup goes on" "$LUMBUNG" backup --dataset dinkes/app "$T/src"
stop_daemon

# A damaged pack footer: its chunks cannot be indexed; the status says so.
pack=$(find "$T/store/packs" -type f | head -n 1)
flip "$pack" $(($(stat -c %s "$pack") - 40))
"$LUMBUNG" repair index --store "$T/store" --json >"$T/bad.json" 2>&1
check "a damaged pack gives exit 3" test $? -eq 3
check "and is counted in the JSON" python3 -c "import json; d = json.load(open('$T/bad.json')); assert d['damaged_packs'] == 1 and d['chunks'] > 0, d"

mkdir -p "$T/empty"
"$LUMBUNG" repair index --store "$T/empty" >/dev/null 2>&1
check "a directory that is not a store gives exit 4" test $? -eq 4
check "nothing was written into it" test -z "$(ls -A "$T/empty")"
"$LUMBUNG" repair --store "$T/store" >/dev/null 2>&1
check "repair without 'index' is a usage error" test $? -eq 2

if [ "$(id -u)" -eq 0 ]; then
	id opd-dukcapil >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin opd-dukcapil
	chown -R opd-dukcapil: "$T/store"
	"$LUMBUNG" repair index --store "$T/store" >/dev/null 2>&1
	check "run as root, the new index run belongs to the store's owner" \
		sh -c "test -z \"\$(find '$T/store/index' -type f ! -user opd-dukcapil)\" && test -n \"\$(ls '$T/store/index')\""
fi
done_testing
