// Small filesystem helpers: output directories that appear atomically (temp dir + rename).
#pragma once

#include <string>
#include <vector>

namespace lota {

bool path_exists(const std::string& path);
bool dir_is_empty_or_missing(const std::string& path);
/// rm -rf `path`; returns false if something could not be removed. Uses nftw, not
/// std::filesystem::remove_all: see Note [remove_tree] in fs.cpp.
bool remove_tree(const std::string& path);
/// Copies a file (throws naming both paths).
void file_copy(const std::string& from, const std::string& to);
/// Names of the entries of directory `path` (no "." or ".."), sorted; throws naming the path.
std::vector<std::string> dir_list(const std::string& path);

/// A temporary sibling directory of `final_dir` that becomes `final_dir` on commit(); removed
/// (with its contents) if destroyed without commit, so failed runs leave nothing behind.
class StagedDir {
  public:
    explicit StagedDir(const std::string& final_dir);
    ~StagedDir();
    StagedDir(const StagedDir&) = delete;
    StagedDir& operator=(const StagedDir&) = delete;
    const std::string& path() const { return tmp_; }
    /// Renames the temporary directory to the final name (replacing an empty existing one).
    void commit();

  private:
    std::string final_, tmp_;
    bool committed_ = false;
};

}  // namespace lota
