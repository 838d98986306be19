#!/bin/sh
# Installs everything Lumbung needs to build and run its test suite on a
# fresh Debian 12 machine.  Run as root (or with sudo).  Idempotent.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (apt-get needs it)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libzstd-dev libarchive-dev librsync-dev libinih-dev libssl-dev \
	zstd python3 attr acl util-linux coreutils findutils \
	mtree-netbsd libarchive-tools tar ca-certificates \
	openssh-server openssh-client systemd \
	chromium prometheus gettext locales valgrind strace \
	librados-dev ceph-mon ceph-osd ceph-common
# The report's Indonesian labels are tested under id_ID.UTF-8.
localedef -i id_ID -f UTF-8 id_ID.UTF-8 2>/dev/null || true
