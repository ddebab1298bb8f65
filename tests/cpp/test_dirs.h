// Scratch directories for tests that write model files: a fresh per-process path and its removal.
#pragma once

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace lota_test {

/// Removes `p` and everything below it. Not std::filesystem::remove_all: the GPU machine's
/// libtorch.so exports a crashing one.
inline void rm_rf(const std::filesystem::path& p) {
    ::nftw(
        p.c_str(), [](const char* f, const struct stat*, int, struct FTW*) { return ::remove(f); }, 16,
        FTW_DEPTH | FTW_PHYS);
}

/// temp dir / "lota_test_<prefix>_<name>_<pid>", removed first if a previous run left it.
inline std::filesystem::path fresh_dir(const std::string& prefix, const std::string& name) {
    const std::filesystem::path d =
        std::filesystem::temp_directory_path() / ("lota_test_" + prefix + "_" + name + "_" + std::to_string(::getpid()));
    rm_rf(d);
    return d;
}

}  // namespace lota_test
