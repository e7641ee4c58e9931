#!/usr/bin/env bash
# The CUDA lane's build: Kokkos 3.4 (Serial + CUDA, lambdas on) from Debian's trilinos source
# with the CUDA toolkit at $KINFLOW_CUDA_HOME (default /usr/local/cuda, the image's CUDA 13), then
# every kinflow target (libraries, drivers, tests, benchmarks, LibTorch ones included) built with
# Kokkos' nvcc_wrapper (host compiler $NVCC_WRAPPER_DEFAULT_COMPILER, default g++); sources that
# include no Kokkos header go to the host compiler directly (ci/cuda-launch-compiler.sh).
#   ci/build-cuda.sh [--arch AMPERE80|HOPPER90] [--kokkos-source DIR] BUILD_DIR [cmake args...]
# Kokkos goes to $KINFLOW_KOKKOS_CUDA_PREFIX (default build-deps/kokkos-cuda-<arch>); with
# --kokkos-source it is built from that source tree (no apt; ci/device-check.sh).
# Fails on any compile error, on any compiler warning in the build log (nvcc's device-lambda
# rules, host functions called from kernels, -Wall -Wextra of the host compiler) and when an
# executable lacks device code for the architecture. Needs no GPU. KINFLOW_KOKKOS_CUDA_PREFIX,
# KINFLOW_CUDA_HOME, NVCC_WRAPPER_DEFAULT_COMPILER and KINFLOW_JOBS (Kokkos' build) are honoured.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=build-cuda.sh
die() { echo "$me: error: $*" >&2; exit 1; }

arch=AMPERE80
ksource=()
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) [ $# -ge 2 ] || die "--arch needs a value"; arch=$2; shift 2 ;;
        --kokkos-source) [ $# -ge 2 ] || die "--kokkos-source needs a value"; ksource=(--source "$2"); shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || die "missing BUILD_DIR (see --help)"
build=$(realpath -m -- "$1"); shift

cuda_home=${KINFLOW_CUDA_HOME:-/usr/local/cuda}
[ -x "$cuda_home/bin/nvcc" ] || die "no CUDA toolkit: $cuda_home/bin/nvcc not found (set KINFLOW_CUDA_HOME)"
# The toolkit's own bin first: /usr/local/bin may hold wrappers for another CUDA's tools, and
# an nvcc that runs another release's cudafe++ fails on every device lambda.
export PATH="$cuda_home/bin:/usr/bin:$PATH"
export NVCC_WRAPPER_DEFAULT_COMPILER=${NVCC_WRAPPER_DEFAULT_COMPILER:-g++}
arch_lc=$(echo "$arch" | tr '[:upper:]' '[:lower:]')
prefix=${KINFLOW_KOKKOS_CUDA_PREFIX:-$here/build-deps/kokkos-cuda-$arch_lc}

t0=$SECONDS
bash "$here/ci/build-kokkos.sh" --backend cuda --arch "$arch" "${ksource[@]}" "$prefix"
t1=$SECONDS
# sources that include no Kokkos header skip nvcc's device passes (ci/cuda-launch-compiler.sh)
bash "$here/ci/build.sh" "$build" -DCMAKE_CXX_COMPILER="$prefix/bin/nvcc_wrapper" -DKokkos_ROOT="$prefix" \
    -DCMAKE_CXX_COMPILER_LAUNCHER="$here/ci/cuda-launch-compiler.sh" "$@"
t2=$SECONDS
log="$build/build.log"
grep -q "devices: CUDA" "$log" || die "$build is not a CUDA build of Kokkos (log: $log)"

# Warnings: nvcc's front end prints `file(line): warning #N-D: ...` (e.g. #20011-D/#20014-D a
# __host__ function called from a __host__ __device__ one, #20199-D/#20200-D device lambdas), the
# host compiler `file:line:col: warning: ...`.
# KINFLOW_CUDA_WARNINGS=report (ci/device-check.sh, another host compiler) lists them and goes on.
if grep -nE '(: warning #[0-9]+|: [Ww]arning: )' "$log" >"$build/warnings.txt"; then
    echo "$me: $(wc -l <"$build/warnings.txt") warning line(s) in the CUDA build (the lane allows none):" >&2
    sed 's/^/    /' "$build/warnings.txt" | head -n 40 >&2
    [ "${KINFLOW_CUDA_WARNINGS:-fail}" = report ] || die "warnings in the CUDA build (all in $build/warnings.txt, log: $log)"
fi

# Every executable carries device code for the architecture (a kernel launch needs it).
sm=$(sed -n 's/.*-arch=\(sm_[0-9]*\).*/\1/p' "$prefix/lib/cmake/Kokkos/KokkosTargets.cmake" | head -n 1)
n=0
while IFS= read -r exe; do
    python3 "$here/ci/fatbin-archs.py" "$exe" | grep -qw "$sm" || die "$exe has no $sm device code"
    n=$((n + 1))
done < <(find "$build/drivers" "$build/tests" -maxdepth 2 -type f -perm -u+x \( -name 'kinflow-*' -o -name 'bench-*' \))
[ "$n" -gt 0 ] || die "no executables found in $build"
echo "$me: $n executables with $sm device code; no warning; Kokkos $((t1 - t0)) s, kinflow $((t2 - t1)) s"
