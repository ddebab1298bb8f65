// main() of the gpu-labelled test executables (tests/cpp/kernels, tests/cpp/cuda). These run only
// when asked for (`ctest -L gpu`), so a build or machine without CUDA is a failure with a message,
// never a silent skip: a global environment fails before any test runs.
#include <gtest/gtest.h>

#include "cuda_test_util.h"

namespace {

class RequireCuda : public ::testing::Environment {
  public:
    void SetUp() override {
        ASSERT_TRUE(lota_cuda_test::have_cuda())
            << "this test needs CUDA, but " << lota_cuda_test::cuda_absence_reason()
            << ". gpu-labelled tests run on a GPU machine (`ctest -L gpu`); the CPU suite is `ctest -L cpu`.";
    }
};

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new RequireCuda);  // gtest owns and deletes it
    return RUN_ALL_TESTS();
}
