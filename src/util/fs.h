// Small filesystem helpers: output directories that appear atomically (temp dir + rename).
#pragma once

#include <string>
#include <vector>

namespace lota {

bool path_exists(const std::string& path);
/// Whether both paths exist and name the same file or directory (same device and inode).
bool same_path(const std::string& a, const std::string& b);
bool dir_is_empty_or_missing(const std::string& path);
/// rm -rf `path`; returns false if something could not be removed. Uses nftw, not
/// std::filesystem::remove_all: see Note [remove_tree] in fs.cpp.
bool remove_tree(const std::string& path);
/// Copies a file (throws naming both paths).
void file_copy(const std::string& from, const std::string& to);
/// Names of the entries of directory `path` (no "." or ".."), sorted; throws naming the path.
std::vector<std::string> dir_list(const std::string& path);

/// A path a command reads, with the flag that named it (for messages).
struct InputPath {
    std::string flag, path;
};

/// Refuses an output path that would write into or over what the command reads: equal to an input,
/// inside an input directory, or a directory holding an input (replacing it would delete the input);
/// also one that is or holds the working directory. Throws "FLAG PATH ... INPUT_FLAG INPUT" (see
/// docs/errors.md). Compares absolute paths with symbolic links resolved.
void output_path_check(const std::string& out, const std::vector<InputPath>& inputs,
                       const std::string& flag = "--out");

/// Refuses an existing non-empty directory (or other file) at `path` as an output directory unless
/// `overwrite` (the check StagedDir makes, for a command to make it before any long work).
void output_dir_check(const std::string& path, bool overwrite);

/// Refuses an existing `path` as an output file unless `overwrite` (a directory always), naming `flag`.
void output_file_check(const std::string& path, bool overwrite, const std::string& flag = "--out");

/// Removes the temporaries that a killed process left next to `final_path` (StagedDir's
/// FINAL.tmp-PID-N directories and file_write_atomic's FINAL.tmp.PID files), only those whose PID
/// names no running process. Returns how many were removed.
int stale_temps_remove(const std::string& final_path);

/// A temporary sibling directory of `final_dir` that becomes `final_dir` on commit(); removed
/// (with its contents) if destroyed without commit, so failed runs leave nothing behind.
/// Construction first removes stale temporaries of the same target (stale_temps_remove). An
/// existing non-empty `final_dir` is refused unless `overwrite`; then commit() swaps the new
/// directory in atomically and only then deletes the old one.
class StagedDir {
  public:
    explicit StagedDir(const std::string& final_dir, bool overwrite = false);
    ~StagedDir();
    StagedDir(const StagedDir&) = delete;
    StagedDir& operator=(const StagedDir&) = delete;
    const std::string& path() const { return tmp_; }
    /// Renames the temporary directory to the final name (replacing an empty existing one, or any
    /// existing one with `overwrite`).
    void commit();

  private:
    std::string final_, tmp_;
    bool overwrite_ = false, committed_ = false;
};

}  // namespace lota
