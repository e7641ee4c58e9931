#!/usr/bin/env bash
# CMAKE_CXX_COMPILER_LAUNCHER of the CUDA lane (ci/build-cuda.sh); CMake runs
#   cuda-launch-compiler.sh NVCC_WRAPPER ARGS...
# for every C++ compile. A translation unit that includes no Kokkos header has no device code:
# it goes straight to the host compiler ($NVCC_WRAPPER_DEFAULT_COMPILER, the one nvcc_wrapper
# uses), without nvcc's device passes and with the nvcc-only flags dropped. Every other one goes
# to nvcc_wrapper unchanged. This is Kokkos' separable compilation (kokkos_launch_compiler),
# decided per file from its includes rather than per target: the LibTorch sources that include
# no Kokkos compile in ~25 s instead of 2-4 min, option/deck parsers in ~5 s instead of ~40 s.
# The decision is made by the host preprocessor (-M, the dependency list); if that fails, the
# command goes to nvcc_wrapper, which reports the error.
set -uo pipefail
nvcc_wrapper=$1
shift
host=${NVCC_WRAPPER_DEFAULT_COMPILER:-g++}

args=("$@")
host_args=()  # the command for the host compiler (nvcc-only flags dropped)
deps_args=()  # the same without output, dependency-file and compile flags: for -M
compile=0
i=0
while [ "$i" -lt ${#args[@]} ]; do
    a=${args[$i]}
    case "$a" in
        -expt-extended-lambda|--expt-extended-lambda|-Wext-lambda-captures-this|--Wext-lambda-captures-this| \
        -expt-relaxed-constexpr|--expt-relaxed-constexpr|-arch=*|--fmad=*)
            i=$((i + 1)); continue ;;
        -Xcudafe|-Xptxas|-Xnvlink)
            i=$((i + 2)); continue ;;
    esac
    host_args+=("$a")
    case "$a" in
        -o|-MF|-MT|-MQ) host_args+=("${args[$((i + 1))]}"); i=$((i + 2)); continue ;;
        -c) compile=1 ;;
        -MD|-MMD) ;;
        *) deps_args+=("$a") ;;
    esac
    i=$((i + 1))
done
if [ "$compile" = 1 ]; then
    if deps=$("$host" "${deps_args[@]}" -M 2>/dev/null) && ! grep -q 'KokkosCore_config\.h' <<<"$deps"; then
        exec "$host" "${host_args[@]}"
    fi
fi
exec "$nvcc_wrapper" "$@"
