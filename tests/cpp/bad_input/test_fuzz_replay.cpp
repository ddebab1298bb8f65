// Replays every input kept under tests/fuzz_regress/<target>/ through its fuzz target
// (fuzz/targets.h): each crashed a harness or escaped with a non-lota exception before its fix, and
// must load or fail with lota::Error. A crash fails the whole test binary.
#include <gtest/gtest.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "targets.h"

namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(FuzzReplay, KeptInputsLoadOrFailWithLotaError) {
    const fs::path root = fs::path(LOTA_SOURCE_DIR) / "tests" / "fuzz_regress";
    ASSERT_TRUE(fs::is_directory(root)) << root;
    size_t count = 0, replayed = 0;
    const lota::fuzz::FuzzTarget* targets = lota::fuzz::fuzz_targets(&count);
    for (const auto& dir : fs::directory_iterator(root)) {
        const lota::fuzz::FuzzTarget* target = nullptr;
        for (size_t i = 0; i < count; ++i)
            if (dir.path().filename() == targets[i].name) target = &targets[i];
        ASSERT_NE(target, nullptr) << dir.path() << " is not named after a fuzz target";
        for (const auto& file : fs::directory_iterator(dir.path())) {
            std::vector<uint8_t> data = read_bytes(file.path());
            try {
                target->run(data.data(), data.size());
            } catch (const std::exception& e) {
                ADD_FAILURE() << file.path() << ": escaped as " << e.what();
            }
            ++replayed;
        }
    }
    EXPECT_GT(replayed, 0u) << "no kept inputs under " << root;
}
