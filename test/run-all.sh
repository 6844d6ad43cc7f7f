#!/bin/bash
# Install everything the tests need, build, and run every test (unit, bpf, integration).
# Usage: test/run-all.sh [ctest options...]   e.g. test/run-all.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/install-deps.sh --test
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure "$@"
