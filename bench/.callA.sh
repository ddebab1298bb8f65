set -uo pipefail
export LOTA_BUILD_DIR=/tmp/lota-build LOTA_CMAKE_ARGS="-DLOTA_WERROR=OFF"
cp .carry1/gguf.part00 /tmp/gguf.part00
scripts/bootstrap.sh >/dev/null 2>&1
scripts/build.sh -j16 lota_cli lota_tests_train 2>&1 | grep -E "error|FAILED" -A3 | head -20
/tmp/lota-build/lota_tests_train --gtest_filter='*Cuda*:*cuda*' 2>&1 | tail -6
