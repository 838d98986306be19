#!/bin/sh
# Configures and builds Lumbung in the source tree.  Extra arguments go to
# configure (for example --enable-asan).
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] || ./autogen.sh
./configure --enable-werror "$@"
make -j"$(nproc)"
