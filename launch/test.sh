#!/usr/bin/env bash
# Fresh machine to passing tests: installs dependencies, builds, runs every CTest tier.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/launch/install-deps.sh"
"$ROOT/launch/build.sh"
"$ROOT/launch/fetch-vocab.sh"
"$ROOT/launch/fetch-data.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "${BUILD_DIR:-$ROOT/.build}"
ctest --output-on-failure --timeout 900 "$@"
