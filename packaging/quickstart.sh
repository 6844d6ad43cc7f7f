#!/bin/bash
# Install, build and run ebpfmon in the foreground with the default configuration
# (conf/ebpfmon.conf): the loader attaches to the interface of the default route.
# Ctrl-C stops it; the programs detach and the maps stay pinned under /sys/fs/bpf/ebpfmon
# (`build/loader/ebpfmon-loader --unload` removes them).
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
exec build/loader/ebpfmon-loader -c conf/ebpfmon.conf "$@"
