#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole CPU test suite (GoogleTest + pytest
# reference tests through CTest). Usage: scripts/test.sh [ctest args, e.g. -R Safetensors]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
scripts/build.sh
source scripts/env.sh
cd "$BUILD_DIR"
ctest --output-on-failure -L cpu -j "${LOTA_TEST_JOBS:-2}" "$@"
