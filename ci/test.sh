#!/usr/bin/env bash
# Install what is missing, configure, build and run every test (C++ unit and physics tests,
# MPI tests at 1, 2 and 4 ranks, command-line and postprocess tests with pytest).
# Exits non-zero on any failure.   ci/test.sh [BUILD_DIR=build]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-"$here/build"}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

bash "$here/ci/install-deps.sh"
bash "$here/ci/build.sh" "$build"
cd "$build"
ctest --output-on-failure --timeout 600
