#!/usr/bin/env bash
# Offline dependency bundle: Debian packages distill builds and runs with (Open MPI, HDF5, yaml-cpp,
# spdlog, fmt, CLI11, nlohmann-json, utf8proc, GoogleTest and what they need), for machines
# without network access (air-gapped clusters, the GPU validation machine). LibTorch is not in it:
# such machines build against the LibTorch of their installed PyTorch.
#
#   launch/bundle-deps.sh pack DIR [--tar]   on a Debian 12 machine with apt: download the packages
#                                            (never installs) into DIR/debs, DIR.tar with --tar
#   launch/bundle-deps.sh unpack DIR PREFIX  offline, on x86-64 Linux with dpkg-deb: unpack DIR's
#                                            packages into PREFIX and write PREFIX/env.sh
#
# Then: source PREFIX/env.sh and configure with -DDISTILL_DEPS_PREFIX=PREFIX (README: GPU build).
set -euo pipefail
ROOTS=(libopenmpi-dev openmpi-bin libhdf5-dev libgtest-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
       libspdlog-dev libutf8proc-dev libprotobuf-dev protobuf-compiler libisal-dev)
# Left out: what every glibc system has or must not be replaced (the C and C++ runtimes, the
# toolchain, the shell), and Fortran/InfiniBand pieces distill never loads.
SKIP='^(libc6|libc6-dev|libc-dev-bin|libgcc-s1|libstdc\+\+6|libstdc\+\+-.*-dev|gcc(-.*)?|g\+\+(-.*)?|cpp(-.*)?|'\
'binutils.*|linux-libc-dev|libgcc-.*-dev|gfortran.*|libgfortran.*|libcrypt1|libcrypt-dev|dpkg|perl.*|'\
'debconf|libselinux1|zlib1g|libzstd1|liblzma5|libbz2-1.0|tar|coreutils|bash|dash|sensible-utils|'\
'libtirpc.*|libnsl.*|libasan.*|libtsan.*|libubsan.*|liblsan.*|libitm.*|libquadmath.*|libatomic1|'\
'libgomp1|libcc1-0|libisl.*|libmpc3|libmpfr6|libgmp10|libjansson4|libctf.*|libsframe.*|libgprofng.*|'\
'libhwasan0|rpcsvc-proto|libpython3.*|python3.*|mime-support|media-types|readline-common|tzdata|'\
'libreadline8|libsqlite3-0|libncursesw6|libtinfo6|netbase|libexpat1|libffi8|libssl3|openssl|ca-certificates|'\
'openssh-client|rsh-client|passwd|login|libpam.*|adduser|libaudit.*|libsemanage.*|libacl1|libattr1|debianutils|'\
'init-system-helpers|lsb-base|sysvinit-utils|libdebconfclient0)$'

# The dependency closure of ROOTS: Depends and Pre-Depends, the first choice of each "a | b" group,
# virtual packages and SKIP left out.
closure() {
  declare -A seen=()
  local queue=("${ROOTS[@]}") p
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    p=${p%%:*}
    [ -n "${seen[$p]:-}" ] && continue
    seen[$p]=1
    echo "$p"
    while read -r dep; do
      [ -z "$dep" ] || [[ "$dep" == "<"* ]] || [[ "$dep" =~ $SKIP ]] || [ -n "${seen[${dep%%:*}]:-}" ] || queue+=("$dep")
    done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
               --no-enhances "$p" | awk '/^ [ |](Pre)?Depends:/ { if (!inor) print $2; inor = ($0 ~ /^ \|/) }')
  done
}

cmd=${1:-}
case "$cmd" in
  pack)
    dir=${2:?usage: bundle-deps.sh pack DIR [--tar]}
    mkdir -p "$dir/debs"
    mapfile -t pkgs < <(closure | sort -u)
    echo "bundle-deps: ${#pkgs[@]} packages"
    (cd "$dir/debs" && apt-get download -qq "${pkgs[@]}")
    printf '%s\n' "${pkgs[@]}" > "$dir/packages.txt"
    du -sh "$dir/debs" | sed 's/^/bundle-deps: /'
    if [ "${3:-}" = "--tar" ]; then
      tar -C "$(dirname "$dir")" -cf "$dir.tar" "$(basename "$dir")"
      echo "bundle-deps: wrote $dir.tar"
    fi
    ;;
  unpack)
    dir=${2:?usage: bundle-deps.sh unpack DIR PREFIX}
    prefix=${3:?usage: bundle-deps.sh unpack DIR PREFIX}
    [ -d "$dir/debs" ] || { echo "bundle-deps: $dir/debs not found (make it with: bundle-deps.sh pack $dir)" >&2; exit 2; }
    mkdir -p "$prefix"
    prefix=$(cd "$prefix" && pwd)
    n=0
    for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$prefix"; n=$((n + 1)); done
    lib=$prefix/usr/lib/x86_64-linux-gnu
    # The alternatives system is not run: make the links it would have made.
    ln -sf openmpi/lib/libmpi.so "$lib/libmpi.so"
    ln -sf mpirun.openmpi "$prefix/usr/bin/mpirun"
    ln -sf mpicc.openmpi "$prefix/usr/bin/mpicc" 2>/dev/null || true
    # Absolute links inside the packages point into /: re-point them into the prefix.
    find "$prefix" -type l | while read -r l; do
      t=$(readlink "$l")
      case "$t" in /*) [ -e "$prefix$t" ] && ln -sfn "$prefix$t" "$l" ;; esac
    done
    cat > "$prefix/env.sh" <<ENV
# distill's offline dependencies (launch/bundle-deps.sh): source this before building or running.
export DISTILL_DEPS_PREFIX=$prefix
export PATH=$prefix/usr/bin:\$PATH
export LD_LIBRARY_PATH=$lib:$lib/openmpi/lib:$lib/hdf5/serial\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
# Open MPI was built for /usr: it finds its components and help files under OPAL_PREFIX instead.
export OPAL_PREFIX=$prefix/usr
ENV
    echo "bundle-deps: unpacked $n packages into $prefix; source $prefix/env.sh"
    ;;
  *)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
