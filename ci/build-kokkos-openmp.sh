#!/usr/bin/env bash
# Kokkos with Serial + OpenMP for the threaded test lane:  ci/build-kokkos-openmp.sh [--shared] PREFIX
# (ci/build-kokkos.sh --backend openmp; see its --help).
exec bash "$(dirname "${BASH_SOURCE[0]}")/build-kokkos.sh" --backend openmp "$@"
