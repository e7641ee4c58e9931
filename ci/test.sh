#!/usr/bin/env bash
# Install what is missing, configure, build and run every test (C++ unit and physics tests,
# MPI tests at 1, 2 and 4 ranks, command-line and postprocess tests with pytest) in two lanes:
#   serial  against Debian's Kokkos (Serial backend)               build dir: build/
#   openmp  against Kokkos built with OpenMP from Debian's Trilinos
#           source (ci/build-kokkos-openmp.sh), OMP_NUM_THREADS=2  build dir: build-openmp/
# Exits non-zero on any failure.
#   ci/test.sh                   both lanes
#   ci/test.sh --serial          only the Serial lane
#   ci/test.sh --kokkos-openmp   only the threaded lane
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lanes="serial openmp"
for arg in "$@"; do
    case "$arg" in
        --kokkos-openmp) lanes="openmp" ;;
        --serial) lanes="serial" ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "test.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

bash "$here/ci/install-deps.sh"
status=0
for lane in $lanes; do
    echo "=== test lane: $lane ==="
    if [ "$lane" = serial ]; then
        build="$here/build"
        bash "$here/ci/build.sh" "$build"
        (cd "$build" && OMP_NUM_THREADS=1 ctest --output-on-failure --timeout 600) || status=1
    else
        prefix=${KINFLOW_KOKKOS_OPENMP_PREFIX:-"$here/build-deps/kokkos-openmp"}
        bash "$here/ci/build-kokkos-openmp.sh" "$prefix"
        build="$here/build-openmp"
        bash "$here/ci/build.sh" "$build" -DKokkos_ROOT="$prefix"
        grep -q "devices: OPENMP" "$build/build.log" || { echo "test.sh: $build is not an OpenMP build" >&2; exit 1; }
        (cd "$build" && OMP_NUM_THREADS=2 OMP_PROC_BIND=false ctest --output-on-failure --timeout 600) || status=1
    fi
done
exit $status
