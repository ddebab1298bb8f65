// Scratch directories for tests that write files: a fresh per-process path under the temp dir.
// Removal goes through lota::remove_tree (util/fs.h), never std::filesystem::remove_all or
// directory_iterator: see Note [remove_tree] in src/util/fs.cpp.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "util/fs.h"

namespace lota_test {

/// temp dir / "lota_test_<prefix>_<name>_<pid>", removed first if a previous run left it (not created).
inline std::filesystem::path fresh_dir(const std::string& prefix, const std::string& name) {
    const std::string leaf = "lota_test_" + prefix + "_" + name + "_" + std::to_string(::getpid());
    const std::filesystem::path d = std::filesystem::temp_directory_path() / leaf;
    lota::remove_tree(d.string());
    return d;
}

/// fresh_dir, created.
inline std::string fresh_created_dir(const std::string& prefix, const std::string& name) {
    const std::filesystem::path d = fresh_dir(prefix, name);
    std::filesystem::create_directories(d);
    return d.string();
}

}  // namespace lota_test
