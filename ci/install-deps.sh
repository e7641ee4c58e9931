#!/usr/bin/env bash
# Install every Debian package kinflow needs (idempotent, quiet). Run as root on Debian 12.
#   ci/install-deps.sh            # everything (build, tests, LibTorch, Python postprocess)
#   ci/install-deps.sh --no-torch # skip LibTorch (the simulator builds without it)
#   ci/install-deps.sh --with-paraview # also ParaView's pvpython (the XDMF sidecar test; ~440 MB)
set -euo pipefail

with_torch=1
with_paraview=0
for arg in "$@"; do
    case "$arg" in
        --no-torch) with_torch=0 ;;
        --with-paraview) with_paraview=1 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "install-deps.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

packages=(
    # toolchain
    g++ cmake make pkg-config git ca-certificates
    # MPI, Kokkos (inside Trilinos), parallel HDF5, Boost.PO, tests, RNG, FFT
    openmpi-bin libopenmpi-dev
    libtrilinos-kokkos-dev
    libhdf5-openmpi-dev hdf5-tools
    libboost-program-options-dev
    libgtest-dev googletest
    librandom123-dev
    libfftw3-dev libfftw3-mpi-dev
    # Python postprocess (Debian's interpreter: /usr/bin/python3)
    python3 python3-numpy python3-h5py python3-matplotlib python3-scipy python3-pytest
)
if [ "$with_torch" = 1 ]; then
    # LibTorch with an OpenMP OpenBLAS (matches LibTorch's OpenMP runtime; the reference BLAS
    # makes a training step 15-25x slower, the pthread variant oversubscribes the cores)
    packages+=(libtorch-dev libopenblas0-openmp libopenblas-openmp-dev)
fi
if [ "$with_paraview" = 1 ]; then
    packages+=(paraview python3-paraview)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
    fi
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps.sh: installing ${#missing[@]} package(s): ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$with_torch" = 1 ]; then
    # Make the OpenMP OpenBLAS the selected BLAS/LAPACK for LibTorch.
    arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
    for lib in libblas.so.3 liblapack.so.3; do
        target=/usr/lib/$arch/openblas-openmp/$lib
        if [ -e "$target" ]; then
            current=$(update-alternatives --query "$lib-$arch" 2>/dev/null | awk '/^Value:/{print $2}')
            if [ "$current" != "$target" ]; then
                $SUDO update-alternatives --quiet --set "$lib-$arch" "$target"
            fi
        fi
    done
fi
