#!/bin/sh
# make-seeds.sh - rewrites the seed corpus in tests/fuzz/corpus from the
# current formats.  Run from a configured build directory:
#
#   cd BUILD && sh SRC/tests/fuzz/make-seeds.sh
#
# The engine's own encoders write the binary seeds (tests/fuzz/make-seeds);
# the config seeds are cut from etc/; the archive seeds come from tar, cpio
# and zip (bsdtar).  Regression inputs (crash-*, leak-*, ...) are kept.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$src/tests/fuzz/corpus
make tests/fuzz/make-seeds >/dev/null
rm -f "$corpus"/*/seed-*
./tests/fuzz/make-seeds "$corpus"

# Config: the shipped sample, and small files with each section.
mkdir -p "$corpus/conf"
grep -v '^[;#]' "$src/etc/lumbung.conf" | grep -v '^include' | sed '/^$/d' >"$corpus/conf/seed-sample"
cat >"$corpus/conf/seed-tenant" <<'CONF'
[store]
path = /var/lib/lumbung/store
capacity = 2T
keep_daily = 7
[daemon]
socket = /run/lumbung/lumbungd.sock
max_jobs = 2
schedule_delay = 15m
include = /nonexistent-lumbung-fuzz/*.conf
[tenant dinkes]
name = Dinas Kesehatan
quota = 500G
soft_quota = 80%
users = budi, siti
groups = dinkes
keep_weekly = 4
[dataset dinkes/simpus]
source = /srv/simpus
schedule = *-*-* 01:30
keep_monthly = 12
[dataset dinkes/dump]
command = pg_dump simpus
schedule = Mon..Fri *-*-* 02:00
CONF
printf '[store]\npath = relative\n[tenant BAD!]\nquota = -1\n' >"$corpus/conf/seed-errors"

# Archives: a small tree with a file, a symlink, a hard link and a
# directory, in the formats people hand to `lumbung backup --archive`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/t/etc/app"
printf 'hello dumai\n' >"$tmp/t/etc/app/a.conf"
ln -s a.conf "$tmp/t/etc/app/current"
ln "$tmp/t/etc/app/a.conf" "$tmp/t/etc/app/hard"
mkdir -p "$corpus/archive"
(cd "$tmp/t" && bsdtar -cf "$corpus/archive/seed-ustar.tar" --format ustar etc)
(cd "$tmp/t" && bsdtar -cf "$corpus/archive/seed-pax.tar" --format pax etc)
(cd "$tmp/t" && bsdtar -czf "$corpus/archive/seed-pax.tar.gz" --format pax etc)
(cd "$tmp/t" && bsdtar -cf "$corpus/archive/seed-gnu.tar" --format gnutar etc)
(cd "$tmp/t" && bsdtar -cf "$corpus/archive/seed.cpio" --format newc etc)
(cd "$tmp/t" && bsdtar -cf "$corpus/archive/seed.zip" --format zip etc)
(cd "$tmp/t" && bsdtar -cf "$corpus/archive/seed-dotdot.tar" --format ustar -s ',^etc,../etc,' etc)
ls -l "$corpus"/*/ | awk 'NF > 5 { n++; b += $5 } END { print n " seeds, " b " bytes" }'
