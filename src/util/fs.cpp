// Filesystem helpers (see fs.h).
#include "util/fs.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>

#include "util/check.h"

namespace lota {

namespace fs = std::filesystem;

bool path_exists(const std::string& path) { return fs::exists(path); }

// Note [remove_tree]: the torch 2.11 CUDA wheel exports its own
// std::filesystem::remove_all from libtorch.so (another libstdc++ ABI), and calls from lota
// resolve to it and crash; POSIX nftw has no such clash.
bool remove_tree(const std::string& path) {
    if (::access(path.c_str(), F_OK) != 0) return true;
    auto rm = [](const char* p, const struct stat*, int, struct FTW*) -> int { return ::remove(p) == 0 ? 0 : -1; };
    return ::nftw(path.c_str(), rm, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

bool dir_is_empty_or_missing(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return true;
    return fs::is_directory(path, ec) && fs::is_empty(path, ec);
}

void file_copy(const std::string& from, const std::string& to) {
    std::error_code ec;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    LOTA_CHECK(!ec, "cannot copy %s to %s: %s", from.c_str(), to.c_str(), ec.message().c_str());
}

std::vector<std::string> dir_list(const std::string& path) {
    // opendir, not std::filesystem::directory_iterator: see Note [remove_tree].
    const std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
    LOTA_CHECK(dir != nullptr, "%s: cannot list directory: %s", path.c_str(), std::strerror(errno));
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(dir.get())) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

StagedDir::StagedDir(const std::string& final_dir) : final_(final_dir) {
    while (!final_.empty() && final_.back() == '/') final_.pop_back();
    LOTA_CHECK(!final_.empty(), "output directory name is empty");
    LOTA_CHECK(dir_is_empty_or_missing(final_), "%s: output directory exists and is not empty", final_.c_str());
    std::random_device rd;
    tmp_ = final_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
    std::error_code ec;
    fs::create_directories(tmp_, ec);
    LOTA_CHECK(!ec, "%s: cannot create directory: %s", tmp_.c_str(), ec.message().c_str());
}

StagedDir::~StagedDir() {
    if (!committed_) {
        remove_tree(tmp_);
    }
}

void StagedDir::commit() {
    std::error_code ec;
    if (fs::exists(final_, ec)) fs::remove(final_, ec);  // only an empty directory can be here
    fs::rename(tmp_, final_, ec);
    LOTA_CHECK(!ec, "cannot rename %s to %s: %s", tmp_.c_str(), final_.c_str(), ec.message().c_str());
    committed_ = true;
}

}  // namespace lota
