#!/usr/bin/env bash
# Build a standalone Kokkos (C++17, Release, static PIC libs) into PREFIX from the packages/kokkos
# tree of Debian's own `trilinos` source package (Trilinos 13.2 -> Kokkos 3.4).
#   ci/build-kokkos.sh [--backend openmp] PREFIX     Serial + OpenMP (ci/build-kokkos-openmp.sh)
#   ci/build-kokkos.sh --backend cuda [--arch A] PREFIX
#        Serial + CUDA (lambdas on), compiler PREFIX/bin/nvcc_wrapper over the CUDA toolkit in
#        $KINFLOW_CUDA_HOME (default /usr/local/cuda; nvcc >= 12.2, e.g. the image's CUDA 13),
#        host compiler $NVCC_WRAPPER_DEFAULT_COMPILER (default g++); ci/kokkos-3.4-cuda.patch
#        applied; A = AMPERE80 (default, sm_80) | HOPPER90 (sm_90, H100/H200) | another Kokkos_ARCH
#   --shared          shared libs instead of static
#   --source DIR      build from the Kokkos source tree DIR (no apt: a GPU machine's copy)
#   --fetch-only DIR  only fetch and extract packages/kokkos, then copy it (no tests, docs,
#                     benchmarks: ~7 MB) to DIR
# then: cmake -DKokkos_ROOT=PREFIX ...   (find_package(Kokkos) + Kokkos::kokkos)
# Idempotent (a stamp in PREFIX makes a second call a no-op). Fetching needs root (or sudo) for
# apt: it adds a deb-src entry for the Debian mirror apt already uses (read from the apt sources)
# in /etc/apt/sources.list.d/kinflow-src.sources. Downloads/logs go to $KINFLOW_CACHE_DIR
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/kinflow).
set -euo pipefail

me=build-kokkos.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "$me: error: $*" >&2; exit 1; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

backend=openmp
arch=AMPERE80
source_dir=""
fetch_only=""
shared=OFF
prefix=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --shared) shared=ON ;;
        --backend|--arch|--source|--fetch-only)
            [ $# -ge 2 ] || { echo "$me: $1 needs a value (see --help)" >&2; exit 2; }
            case "$1" in
                --backend) backend=$2 ;;
                --arch) arch=$2 ;;
                --source) source_dir=$(realpath -- "$2") ;;
                --fetch-only) fetch_only=$(realpath -m -- "$2") ;;
            esac
            shift ;;
        -*) echo "$me: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) [ -z "$prefix" ] || die "more than one PREFIX given (see --help)"; prefix=$1 ;;
    esac
    shift
done
case "$backend" in openmp|cuda) ;; *) die "--backend must be openmp or cuda, got '$backend'" ;; esac
[[ "$arch" =~ ^[A-Z0-9_]+$ ]] || die "--arch must be a Kokkos_ARCH name such as AMPERE80, got '$arch'"
if [ -n "$fetch_only" ]; then
    prefix=$fetch_only
else
    [ -n "$prefix" ] || { echo "$me: error: missing PREFIX (usage: $me [--backend openmp|cuda] [--shared] PREFIX)" >&2; exit 2; }
fi
prefix=$(realpath -m -- "$prefix")
anc=$prefix; while [ ! -e "$anc" ]; do anc=$(dirname "$anc"); done
[ -d "$anc" ] && [ -w "$anc" ] || die "cannot create or write PREFIX '$prefix' ($anc is not a writable directory)"

# ---- CUDA toolkit (backend cuda) -------------------------------------------------------------
patch_file="$here/kokkos-3.4-cuda.patch"
if [ "$backend" = cuda ] && [ -z "$fetch_only" ]; then
    cuda_home=${KINFLOW_CUDA_HOME:-/usr/local/cuda}
    [ -x "$cuda_home/bin/nvcc" ] || die "no CUDA toolkit: $cuda_home/bin/nvcc not found (set KINFLOW_CUDA_HOME)"
    # the toolkit's own bin first: /usr/local/bin may hold wrappers for another CUDA
    export PATH="$cuda_home/bin:/usr/bin:$PATH"
    host_cxx=${NVCC_WRAPPER_DEFAULT_COMPILER:-g++}
    command -v "$host_cxx" >/dev/null 2>&1 || die "host compiler '$host_cxx' not found (NVCC_WRAPPER_DEFAULT_COMPILER)"
    cuda_version=$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
fi

if [ "$backend" = openmp ]; then
    stamp="$prefix/.kinflow-kokkos-openmp-stamp"
    variant="serial+openmp c++17 Release shared=$shared"
else
    stamp="$prefix/.kinflow-kokkos-cuda-stamp"
    patch_sum=$(sha256sum "$patch_file" | cut -c1-16)
    variant="serial+cuda(lambda) arch=$arch c++17 Release shared=$shared cuda=${cuda_version:-?} host=${host_cxx:-?} patch=$patch_sum"
fi

installed_config() { ls "$prefix"/lib*/cmake/Kokkos/KokkosConfig.cmake 2>/dev/null | head -n 1; }

# ---- fast path: already installed --------------------------------------------------------------
if [ -z "$fetch_only" ] && [ -f "$stamp" ] && grep -qxF "variant: $variant" "$stamp" && [ -n "$(installed_config)" ]; then
    echo "$me: Kokkos already installed in $prefix ($(sed -n 's/^kokkos: //p' "$stamp")), nothing to do"
    exit 0
fi

cache=${KINFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kinflow}
mkdir -p "$cache" || die "cannot create cache dir '$cache'"
# one build at a time per cache dir
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.build-kokkos.lock"
    flock 9
fi
log="$cache/build-kokkos-$backend.log"
: > "$log"

# run a command with its output in the log; on failure show the log tail and stop
run() {
    local what=$1; shift
    echo "+ $*" >> "$log"
    if ! "$@" >> "$log" 2>&1; then
        echo "$me: $what failed; last lines of $log:" >&2
        tail -n 30 "$log" | sed 's/^/    /' >&2
        die "$what failed (full log: $log)"
    fi
}

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="__none__"; fi
fi
need_root() { [ "$SUDO" != "__none__" ] || die "need root (or sudo) to $*"; }
export DEBIAN_FRONTEND=noninteractive

if [ -z "$source_dir" ]; then # ---- fetch the source with apt (skipped with --source) ------------

# ---- build tools --------------------------------------------------------------------------------
missing=()
command -v g++   >/dev/null 2>&1 || missing+=(g++)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v make  >/dev/null 2>&1 || command -v ninja >/dev/null 2>&1 || missing+=(make)
install_pkgs() {
    need_root "install $*"
    echo "$me: installing missing tools: $*"
    run "apt-get update" $SUDO apt-get update -qq
    run "apt-get install $*" $SUDO apt-get install -y -qq --no-install-recommends "$@"
}
[ ${#missing[@]} -eq 0 ] || install_pkgs "${missing[@]}"

# ---- deb-src entry for the mirror apt already uses ----------------------------------------------
codename=""
[ -r /etc/os-release ] && codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# Print "URI<TAB>SUITE<TAB>SIGNED-BY" of the first enabled `deb` entry carrying the `main` component
# of the release suite (Suite == $codename, or a suite without '-' if the codename is unknown).
find_mirror() {
    local f files=() SL=/etc/apt/sources.list SP=/etc/apt/sources.list.d
    eval "$(apt-config shell SL Dir::Etc::sourcelist/f SP Dir::Etc::sourceparts/d 2>/dev/null)"
    SP=${SP%/}
    [ -f "$SL" ] && files+=("$SL")
    for f in "$SP"/*.list "$SP"/*.sources; do
        [ -f "$f" ] && [ "$(basename "$f")" != kinflow-src.sources ] && files+=("$f")
    done
    for f in "${files[@]}"; do
        case "$f" in
        *.sources)
            # deb822: paragraphs separated by blank lines; continuation lines start with blanks
            awk -v want="$codename" '
                function flush(   n, i, t, s, c, isdeb, hasmain, suite) {
                    if (!("uris" in F)) { delete F; return }
                    if (tolower(F["enabled"]) == "no") { delete F; return }
                    n = split(F["types"], t, /[ \t]+/); isdeb = 0
                    for (i = 1; i <= n; i++) if (t[i] == "deb") isdeb = 1
                    n = split(F["components"], c, /[ \t]+/); hasmain = 0
                    for (i = 1; i <= n; i++) if (c[i] == "main") hasmain = 1
                    n = split(F["suites"], s, /[ \t]+/); suite = ""
                    for (i = 1; i <= n; i++)
                        if ((want != "" && s[i] == want) || (want == "" && s[i] != "" && s[i] !~ /[-\/]/)) { suite = s[i]; break }
                    if (isdeb && hasmain && suite != "" && !done) {
                        split(F["uris"], u, /[ \t]+/); sb = F["signed-by"]
                        if (sb ~ /BEGIN PGP/ || sb ~ /[ \t]/) sb = ""
                        printf "%s\t%s\t%s\n", u[1], suite, sb; done = 1
                    }
                    delete F
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); key = ""; next }
                /^[ \t]/   { if (key != "") F[key] = F[key] " " $0; next }
                {
                    i = index($0, ":"); if (!i) next
                    key = tolower(substr($0, 1, i - 1))
                    v = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); F[key] = v
                }
                END { flush() }' "$f"
            ;;
        *)
            # one-line format: deb [opts] URI SUITE COMPONENT...
            awk -v want="$codename" '
                /^[ \t]*#/ || NF < 4 || $1 != "deb" { next }
                {
                    line = $0; sb = ""
                    if (match(line, /\[[^]]*\]/)) {
                        opts = substr(line, RSTART + 1, RLENGTH - 2)
                        line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
                        n = split(opts, o, /[ \t]+/)
                        for (i = 1; i <= n; i++) if (o[i] ~ /^signed-by=/) sb = substr(o[i], 11)
                    }
                    n = split(line, w, /[ \t]+/); k = 0
                    for (i = 1; i <= n; i++) if (w[i] != "") x[++k] = w[i]
                    if (k < 4) next
                    uri = x[2]; suite = x[3]; hasmain = 0
                    for (i = 4; i <= k; i++) if (x[i] == "main") hasmain = 1
                    ok = (want != "" && suite == want) || (want == "" && suite !~ /[-\/]/)
                    if (hasmain && ok) { printf "%s\t%s\t%s\n", uri, suite, sb; exit }
                }' "$f"
            ;;
        esac
    done | head -n 1
}

# grep reads everything: with -q it would exit at the first match, apt-cache would die of SIGPIPE
# and pipefail would call the source missing
have_src() { apt-cache showsrc trilinos 2>/dev/null | grep '^Version:' >/dev/null; }

srclist=/etc/apt/sources.list.d/kinflow-src.sources
if ! have_src; then
    mirror=$(find_mirror)
    [ -n "$mirror" ] || die "no Debian 'deb ... ${codename:-<release>} main' entry found in /etc/apt/sources.list{,.d/*}; cannot add a deb-src for the trilinos source package"
    IFS=$'\t' read -r m_uri m_suite m_signed <<< "$mirror"
    need_root "write $srclist"
    entry="# written by kinflow ci/$me: Debian source packages (trilinos -> Kokkos)
Types: deb-src
URIs: $m_uri
Suites: $m_suite
Components: main"
    [ -n "$m_signed" ] && entry+=$'\n'"Signed-By: $m_signed"
    if [ ! -f "$srclist" ] || [ "$(cat "$srclist")" != "$entry" ]; then
        printf '%s\n' "$entry" | $SUDO tee "$srclist" >/dev/null || die "cannot write $srclist"
    fi
    echo "$me: fetching the Sources index of $m_uri $m_suite (deb-src in $srclist)"
    # refresh only our entry, keep every other list as it is
    run "apt-get update (deb-src $m_uri $m_suite)" $SUDO apt-get update -qq \
        -o Dir::Etc::sourcelist="$srclist" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
    have_src || die "apt has no source package 'trilinos' even after adding deb-src $m_uri $m_suite main"
fi

# ---- the trilinos source package (orig tarball only, cached) ----------------------------------
debver=$(apt-cache showsrc trilinos 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)
upver=${debver#*:}; upver=${upver%-*}
srcdir="$cache/trilinos-src"
mkdir -p "$srcdir"
orig=$(ls "$srcdir"/trilinos_"$upver".orig.tar.* 2>/dev/null | head -n 1 || true)
if [ -z "$orig" ]; then
    echo "$me: downloading Debian source package trilinos $debver (orig tarball) into $srcdir"
    # --tar-only: just the .orig tarball (apt still verifies its checksum)
    ( cd "$srcdir" && run "apt-get source trilinos=$debver" \
        apt-get source --download-only --tar-only -qq -o APT::Sandbox::User=root "trilinos=$debver" )
    orig=$(ls "$srcdir"/trilinos_"$upver".orig.tar.* 2>/dev/null | head -n 1 || true)
    [ -n "$orig" ] || die "apt-get source did not produce trilinos_$upver.orig.tar.* in $srcdir"
fi

kdir="$cache/kokkos-src-$upver"
if [ ! -f "$kdir/.extracted" ]; then
    case "$orig" in
        *.xz)  command -v xz    >/dev/null 2>&1 || install_pkgs xz-utils ;;
        *.bz2) command -v bzip2 >/dev/null 2>&1 || install_pkgs bzip2 ;;
    esac
    rm -rf "$kdir"; mkdir -p "$kdir"
    run "extracting packages/kokkos from $(basename "$orig")" \
        tar -xf "$orig" -C "$kdir" --strip-components=1 \
            --wildcards --no-wildcards-match-slash '*/packages/kokkos'
    [ -f "$kdir/packages/kokkos/CMakeLists.txt" ] || die "no packages/kokkos/CMakeLists.txt in $(basename "$orig")"
    touch "$kdir/.extracted"
fi
ksrc="$kdir/packages/kokkos"
from="Debian trilinos $debver"
else
    [ -f "$source_dir/CMakeLists.txt" ] && [ -d "$source_dir/core/src" ] || die "--source $source_dir is not a Kokkos source tree"
    ksrc=$source_dir
    from="$source_dir"
fi # ---- end of the apt part ------------------------------------------------------------------

kver=$(sed -nE 's/^[[:space:]]*set[[:space:]]*\([[:space:]]*Kokkos_VERSION_(MAJOR|MINOR|PATCH)[[:space:]]+([0-9]+)[[:space:]]*\).*/\2/Ip' \
    "$ksrc/CMakeLists.txt" | paste -sd. -)

# ---- --fetch-only: a trimmed copy of the source -------------------------------------------------
if [ -n "$fetch_only" ]; then
    rm -rf "$fetch_only"; mkdir -p "$fetch_only"
    # what configuring and building the libraries reads (no tests, examples, docs, benchmarks)
    run "copying the Kokkos source to $fetch_only" cp -a "$ksrc/." "$fetch_only/"
    (cd "$fetch_only" && rm -rf doc benchmarks scripts tpls/gtest && find . -depth -type d \( -name unit_test -o -name perf_test \) -exec rm -rf {} +)
    echo "Kokkos ${kver:-?} from $from" > "$fetch_only/KINFLOW_SOURCE"
    echo "$me: Kokkos ${kver:-?} source ($(du -sh "$fetch_only" | cut -f1)) in $fetch_only"
    exit 0
fi

# ---- configure, build, install ------------------------------------------------------------------
bdir="$cache/kokkos-build-$backend"
rm -rf "$bdir" "$bdir-src"
backend_args=(-DCMAKE_CXX_COMPILER=g++ -DKokkos_ENABLE_OPENMP=ON)
what="Serial+OpenMP"
if [ "$backend" = cuda ]; then
    # patched copy of the source; nvcc_wrapper's default arch (used by compiler checks without
    # -arch) becomes the target's: its default sm_35 is gone from CUDA 12+
    mkdir -p "$bdir-src"
    run "copying the Kokkos source" cp -a "$ksrc/." "$bdir-src/"
    run "applying $(basename "$patch_file")" patch -p1 -d "$bdir-src" -i "$patch_file"
    sm=$(sed -n "s/^CHECK_CUDA_ARCH($arch *\(sm_[0-9]*\))/\1/p" "$bdir-src/cmake/kokkos_arch.cmake")
    [ -n "$sm" ] || die "unknown --arch '$arch' (not a CUDA architecture of this Kokkos; e.g. AMPERE80, HOPPER90)"
    sed -i "s/^default_arch=\"sm_[0-9]*\"/default_arch=\"$sm\"/" "$bdir-src/bin/nvcc_wrapper"
    grep -q "^default_arch=\"$sm\"" "$bdir-src/bin/nvcc_wrapper" || die "could not set nvcc_wrapper's default_arch"
    ksrc="$bdir-src"
    backend_args=(-DCMAKE_CXX_COMPILER="$ksrc/bin/nvcc_wrapper" -DKokkos_ENABLE_CUDA=ON -DKokkos_ENABLE_CUDA_LAMBDA=ON
                  -DKokkos_ARCH_"$arch"=ON)
    what="Serial+CUDA $cuda_version $arch/$sm, host $host_cxx"
fi
gen=(); command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
jobs=${KINFLOW_JOBS:-$(nproc 2>/dev/null || echo 2)}
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "KINFLOW_JOBS must be a positive integer, got '$jobs'"
mkdir -p "$prefix" 2>/dev/null && [ -w "$prefix" ] || die "cannot create or write PREFIX '$prefix'"
echo "$me: building Kokkos ${kver:-?} ($what, C++17, Release) -> $prefix  [log: $log]"
t0=$SECONDS
run "cmake configure" cmake -S "$ksrc" -B "$bdir" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE=Release "${backend_args[@]}" -DCMAKE_CXX_STANDARD=17 \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DBUILD_SHARED_LIBS=$shared -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DKokkos_ENABLE_SERIAL=ON \
    -DKokkos_ENABLE_TESTS=OFF -DKokkos_ENABLE_EXAMPLES=OFF
run "build" cmake --build "$bdir" --parallel "$jobs"
run "install" cmake --install "$bdir"
[ -n "$(installed_config)" ] || die "install finished but no lib*/cmake/Kokkos/KokkosConfig.cmake in $prefix"
rm -rf "$bdir" "$bdir-src"

cat > "$stamp" <<EOF
kokkos: ${kver:-unknown} from $from
variant: $variant
EOF
echo "$me: done in $((SECONDS - t0)) s: Kokkos ${kver:-?} in $prefix (use -DKokkos_ROOT=$prefix)"
