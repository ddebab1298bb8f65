// main() of the gpu-labelled test executables (tests/cpp/kernels, tests/cpp/cuda). These run only
// when asked for (`ctest -L gpu`), so a build or machine without CUDA is a failure with a message,
// never a skip: the executable exits non-zero before running any test. Listing the tests (CTest's
// discovery) works everywhere.
#include <cstdio>

#include <gtest/gtest.h>

#include "cuda_test_util.h"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (!GTEST_FLAG_GET(list_tests) && !lota_cuda_test::have_cuda()) {
        std::fprintf(stderr,
                     "FAILED: these tests need CUDA, but %s. gpu-labelled tests run on a GPU machine "
                     "(`ctest -L gpu`); the CPU suite is `ctest -L cpu`.\n",
                     lota_cuda_test::cuda_absence_reason());
        return 1;
    }
    return RUN_ALL_TESTS();
}
