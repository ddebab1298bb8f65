#!/usr/bin/env bash
# Configures (once) and builds lota with CMake + Ninja + ccache. Extra args go to ninja.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DLOTA_PYTHON="$LOTA_PYTHON" ${LOTA_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -- "$@"
