#!/usr/bin/env bash
# The GPU machine check: the CUDA lane built for the H100/H200 (sm_90), the engine test suites
# and the three engine benchmarks run on the GPU, a short report written. Two steps:
#   ci/device-check.sh --prepare
#       here (Debian 12, apt): stage in .device/ (git-ignored) what the GPU machine lacks: the
#       Kokkos source (ci/build-kokkos.sh --fetch-only) and the Debian 12 packages of MPI,
#       parallel HDF5, Boost.Program_options, FFTW, GoogleTest, Random123, pkg-config with their
#       runtime libraries (~40 MiB with the repository, under the device tool's 64 MiB).
#   ci/device-check.sh [--no-run] [REPORT_DIR]
#       on the GPU machine (CUDA 13 at $KINFLOW_CUDA_HOME or /usr/local/cuda, g++, cmake; no
#       package registry): unpack .device/debs into a private sysroot (never into /), build
#       Kokkos for HOPPER90 and kinflow without LibTorch (ci/build-cuda.sh, warnings reported,
#       not fatal), run ctest's foundation/langevin/ks/ks_fast/dsmc suites (1, 2, 4 ranks on
#       the one GPU) and bench-ks (2D direct), bench-langevin (3D OU, 1e8 particles),
#       bench-dsmc (NTC, hard spheres); write REPORT_DIR/device-check.md and the logs (default
#       $OUT when set, else build-device/). --no-run: build only. Sized for <= 8 minutes on 16
#       cores; every phase has its own time limit, so a report is written in any case.
# With the device tool: run(command="bash ci/device-check.sh", carry=[".device"], timeout_s=540).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=device-check.sh
die() { echo "$me: error: $*" >&2; exit 1; }
stage="$here/.device"

# ---- --prepare: runs where apt works --------------------------------------------------------------
if [ "${1:-}" = --prepare ]; then
    set -e
    grep -qx '/.device/' "$here/.gitignore" || die ".device/ is not in .gitignore"
    rm -rf "$stage"; mkdir -p "$stage/debs"
    bash "$here/ci/build-kokkos.sh" --fetch-only "$stage/kokkos"
    # Headers, link-time symlinks and tools (no recursion: their -dev dependencies are not needed)
    dev=(libopenmpi-dev libhdf5-openmpi-dev libboost1.74-dev libboost-program-options1.74-dev libfftw3-dev
         libfftw3-mpi-dev libgtest-dev librandom123-dev libssl-dev libcurl4-openssl-dev libaec-dev zlib1g-dev
         pkgconf pkgconf-bin)
    # Run-time packages, with their run-time dependencies; not followed: Priority required/important
    # packages (libc, libstdc++, ...: every image has them), toolchains, -dev packages, interpreters.
    run=(openmpi-bin openmpi-common libopenmpi3 libhdf5-openmpi-103-1 libboost-program-options1.74.0
         libfftw3-double3 libfftw3-mpi3 libpkgconf3)
    # Every glibc image has these sonames, and the GPU machine's compilers load them: a Debian
    # copy first on LD_LIBRARY_PATH must not shadow them. Optional hwloc plugins (X11, libxml2,
    # OpenCL), ssh (local launches only) and account tools (adduser, PAM) are left out too.
    skip="zlib1g libzstd1 liblzma5 libbz2-1.0 libtinfo6 libselinux1 libpcre2-8-0 libudev1 libuuid1 libgmp10
          libffi8 libatomic1 libgomp1 libmd0 libbsd0 libcom-err2 libkeyutils1 libp11-kit0 libtasn1-6 libidn2-0
          libssl3 libgnutls30 libnettle8 libhogweed6 libcap2 libsystemd0 libcrypt1 libhwloc-plugins openssh-client
          adduser passwd libpam0g libpam-modules libpam-modules-bin libaudit1 libaudit-common libsemanage2
          libsemanage-common libsepol2 libcap-ng0 libdb5.3"
    skip=$(echo $skip)
    declare -A seen=()
    todo=("${run[@]}")
    while [ ${#todo[@]} -gt 0 ]; do
        p=${todo[-1]}; unset 'todo[-1]'
        [ -z "${seen[$p]:-}" ] || continue
        seen[$p]=1
        for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
                       --no-enhances "$p" 2>/dev/null | sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^<> ]*\).*/\2/p' | sed 's/:any$//'); do
            case "$d" in
                *-dev|gcc*|g++*|cpp*|gfortran*|binutils*|libc6*|libgcc*|libstdc++*|perl*|python3*|debconf*|dpkg*) continue ;;
            esac
            case " $skip " in *" $d "*) continue ;; esac
            todo+=("$d")
        done
    done
    pkgs=("${dev[@]}" "${!seen[@]}")
    (cd "$stage/debs" && apt-get download -qq "${pkgs[@]}") || die "apt-get download failed"
    for p in "${pkgs[@]}"; do echo "$p"; done | sort > "$stage/PACKAGES"
    n=$(ls "$stage/debs"/*.deb | wc -l)
    echo "$me: staged $n Debian packages ($(du -sh "$stage/debs" | cut -f1)) and the Kokkos source ($(du -sh "$stage/kokkos" | cut -f1)) in $stage"
    echo "$me: the device tool carries it: run(command=\"bash ci/device-check.sh\", carry=[\".device\"], timeout_s=540)"
    exit 0
fi

# ---- on the GPU machine -----------------------------------------------------------------------------
run_tests=1
if [ "${1:-}" = --no-run ]; then run_tests=0; shift; fi
report_dir=${1:-${OUT:-"$here/build-device"}}
mkdir -p "$report_dir"
report="$report_dir/device-check.md"
[ -d "$stage/debs" ] && [ -d "$stage/kokkos" ] || die "no $stage/{debs,kokkos}: run 'ci/device-check.sh --prepare' first (where apt works) and carry .device"
T0=$SECONDS
jobs=$(nproc 2>/dev/null || echo 16)

# Private sysroot: the Debian packages unpacked, absolute symlinks and hard-coded /usr prefixes
# pointed into it (pkg-config files, h5pcc); Open MPI relocated with OPAL_PREFIX.
root=${KINFLOW_DEVICE_SYSROOT:-/tmp/kinflow-sysroot}
rm -rf "$root"; mkdir -p "$root"
for f in "$stage"/debs/*.deb; do dpkg-deb -x "$f" "$root" || die "cannot unpack $f"; done
find "$root" -type l | while IFS= read -r l; do
    t=$(readlink "$l"); case "$t" in /*) ln -sfn "$root$t" "$l" ;; esac
done
L="$root/usr/lib/x86_64-linux-gnu"
# A -dev package's libX.so whose library was left out (libz, libcrypto: the machine's own) points
# to the machine's libX.so.N instead.
find "$root" -xtype l -name 'lib*.so' | while IFS= read -r l; do
    for c in "$L/$(basename "$l")".[0-9]* /usr/lib/x86_64-linux-gnu/"$(basename "$l")".[0-9]* \
             /lib/x86_64-linux-gnu/"$(basename "$l")".[0-9]*; do
        [ -e "$c" ] && { ln -sfn "$c" "$l"; break; }
    done
done
for pc in $(find "$root" -name '*.pc'); do sed -i "s#^prefix=/usr#prefix=$root/usr#" "$pc"; done
sed -e "s#^prefix=\"/usr\"#prefix=\"$root/usr\"#" "$root/usr/bin/h5pcc.openmpi" > "$root/usr/bin/h5pcc"
chmod +x "$root/usr/bin/h5pcc"
ln -sfn mpiexec.openmpi "$root/usr/bin/mpiexec"
ln -sfn mpicc.openmpi "$root/usr/bin/mpicc"
ln -sfn mpicxx.openmpi "$root/usr/bin/mpicxx"
export OPAL_PREFIX="$root/usr"
export PATH="$root/usr/bin:$PATH"
export LD_LIBRARY_PATH="$L:$L/openmpi/lib:$L/hdf5/openmpi${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_PATH="$L/pkgconfig:$root/usr/share/pkgconfig" PKG_CONFIG_LIBDIR="$L/pkgconfig:$root/usr/share/pkgconfig"
export CMAKE_PREFIX_PATH="$root/usr"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
T_unpack=$((SECONDS - T0))

# ---- build ----------------------------------------------------------------------------------------
build="$here/build-device"
t=$SECONDS
KINFLOW_JOBS=$jobs KINFLOW_CUDA_WARNINGS=report KINFLOW_KOKKOS_CUDA_PREFIX="$here/build-deps/kokkos-cuda-hopper90" \
    timeout 300 bash "$here/ci/build-cuda.sh" --arch HOPPER90 --kokkos-source "$stage/kokkos" "$build" \
    -DKINFLOW_ENABLE_TORCH=OFF -DMPI_C_COMPILER="$root/usr/bin/mpicc.openmpi" \
    -DMPI_CXX_COMPILER="$root/usr/bin/mpicxx.openmpi" -DMPIEXEC_EXECUTABLE="$root/usr/bin/mpiexec.openmpi" \
    -DHDF5_C_COMPILER_EXECUTABLE="$root/usr/bin/h5pcc" -DPKG_CONFIG_EXECUTABLE="$root/usr/bin/pkgconf" \
    >"$report_dir/build.txt" 2>&1
build_rc=$?
T_build=$((SECONDS - t))
cp "$build/build.log" "$report_dir/build.log" 2>/dev/null
warnings=$(cat "$build/warnings.txt" 2>/dev/null | wc -l)

# ---- tests and benchmarks -------------------------------------------------------------------------
tests_line="not run"
if [ "$build_rc" = 0 ] && [ "$run_tests" = 1 ]; then
    t=$SECONDS
    (cd "$build" && timeout 240 ctest -R '^(foundation|langevin|ks|ks_fast|dsmc)(_mpi_np[24])?$' \
        -j 4 --timeout 120 --output-on-failure) >"$report_dir/ctest.txt" 2>&1
    tests_line="$(grep -E 'tests passed|tests failed' "$report_dir/ctest.txt" | tail -n 1) in $((SECONDS - t)) s"
    failed=$(sed -n '/The following tests FAILED/,$p' "$report_dir/ctest.txt" | grep -E '^\s+[0-9]+ - ' | sed 's/^ *//' | paste -sd';' -)
    [ -z "$failed" ] || tests_line="$tests_line; failed: $failed"
    B="$build/tests/bench"
    {
        timeout 60 "$B/bench-ks" 524288 3 2
        timeout 60 "$B/bench-langevin" 100000000 20 3
        timeout 60 "$B/bench-dsmc" 16777216 20 ntc hard_sphere
    } >"$report_dir/bench.txt" 2>&1
fi

# ---- report ---------------------------------------------------------------------------------------
fig() { grep -A3 "^$1" "$report_dir/bench.txt" 2>/dev/null | grep -oE "[0-9.]+e[+-][0-9]+ $2" | head -n 1 | cut -d' ' -f1; }
ks=$(fig bench-ks "pair interactions/s total")
lv=$(fig bench-langevin "particle-steps/s total")
ds=$(fig bench-dsmc "collisions/s total")
verdict() { awk -v x="${1:-0}" -v t="$2" 'BEGIN { if (x == 0) print "not measured"; else print (x + 0 >= t + 0 ? "meets" : "below") " the target " t }'; }
{
    echo "# kinflow device check"
    echo
    echo "- machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1), $(nproc) cores"
    echo "- CUDA: $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p'), host $(${NVCC_WRAPPER_DEFAULT_COMPILER:-g++} --version | head -n 1)"
    echo "- kinflow $(git -C "$here" rev-parse --short HEAD 2>/dev/null) $(git -C "$here" status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)')"
    echo "- build (Kokkos HOPPER90 + kinflow without LibTorch): rc $build_rc in $T_build s ($(tail -n 1 "$report_dir/build.txt")); $warnings warning line(s); unpack $T_unpack s"
    echo "- engine suites: $tests_line"
    echo
    echo "| benchmark | figure | |"
    echo "|---|---|---|"
    echo "| KS direct 2D, N = 524288, 3 steps | ${ks:-?} pairs/s | $(verdict "$ks" 3e11) |"
    echo "| Langevin 3D OU, N = 1e8, 20 steps | ${lv:-?} particle-steps/s | $(verdict "$lv" 5e9) |"
    echo "| DSMC homogeneous NTC hard spheres, N = 2^24, 20 steps | ${ds:-?} collisions/s | $(verdict "$ds" 3e8) |"
    echo
    echo "Total $((SECONDS - T0)) s. Logs: build.txt, build.log, ctest.txt, bench.txt."
} >"$report"
cat "$report"
[ "$build_rc" = 0 ] || exit 1
