#!/usr/bin/env bash
# Configure and build kinflow.   ci/build.sh [BUILD_DIR=build] [extra cmake arguments...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-"$here/build"}
shift || true
jobs=$(nproc 2>/dev/null || echo 2)
log="$build/build.log"
mkdir -p "$build"
if ! cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2; echo "build.sh: cmake configure failed (log: $log)" >&2; exit 1
fi
if ! cmake --build "$build" -j "$jobs" >>"$log" 2>&1; then
    grep -E "error|Error" "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
    echo "build.sh: build failed (log: $log)" >&2; exit 1
fi
echo "build.sh: built in $build"
