#!/bin/bash
# Install, build and run ebpfmon in the foreground with the default configuration
# (conf/ebpfmon.conf): the loader attaches to the interface of the default route and drops
# to user ebpfmon; the analyzer runs as ebpfmon with no capabilities. Ctrl-C stops both; the
# programs detach and the maps stay pinned under /sys/fs/bpf/ebpfmon
# (`build/loader/ebpfmon-loader --unload` removes them).
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"

conf=$(mktemp -d)/ebpfmon.conf
cp conf/ebpfmon.conf "$conf"
chmod 0755 "$(dirname "$conf")" && chmod 0644 "$conf"

build/loader/ebpfmon-loader -c "$conf" "$@" &
loader=$!
trap 'kill -TERM "$loader" 2>/dev/null; wait "$loader" 2>/dev/null || true; rm -rf "$(dirname "$conf")"' EXIT
setpriv --reuid ebpfmon --regid ebpfmon --init-groups --inh-caps=-all --bounding-set=-all \
	build/analyzer/ebpfmon-analyzer -c "$conf" --wait 30
