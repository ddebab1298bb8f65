#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole CPU test suite (GoogleTest + pytest
# reference tests through CTest). Usage: scripts/test.sh [ctest args, e.g. -R Safetensors]
# LOTA_TEST_LABEL picks the CTest label: cpu (default, CI), gpu (tests that need CUDA; they fail
# without it), or 'cpu|gpu' for everything on a GPU machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
scripts/build.sh
source scripts/env.sh
cd "$BUILD_DIR"
# One OpenMP thread per test process: ctest runs tests in parallel, and oversubscribed OpenMP
# teams (MKL GEMMs) stall at their spin barriers, running many times slower.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
ctest --output-on-failure -L "${LOTA_TEST_LABEL:-cpu}" -j "${LOTA_TEST_JOBS:-2}" "$@"
# A short fuzz run of every parser of user files (scripts/fuzz.sh) after a full CPU suite:
# LOTA_FUZZ_SECONDS each (default 60; 0 skips it).
if [ $# -eq 0 ] && [ "${LOTA_TEST_LABEL:-cpu}" = cpu ] && [ "${LOTA_FUZZ_SECONDS:-60}" -gt 0 ]; then
    LOTA_FUZZ_OPTIONAL=1 "$ROOT/scripts/fuzz.sh" "${LOTA_FUZZ_SECONDS:-60}"
fi
