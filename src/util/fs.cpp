// Filesystem helpers (see fs.h).
#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>

#include "util/check.h"
#include "util/log.h"

namespace lota {

namespace fs = std::filesystem;

bool path_exists(const std::string& path) { return fs::exists(path); }

bool same_path(const std::string& a, const std::string& b) {
    struct stat sa, sb;
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

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

namespace {

// Absolute, lexically normal, with symbolic links resolved in the longest existing prefix (the
// rest of the path may not exist yet). realpath, not std::filesystem: see Note [remove_tree].
std::string path_resolved(const std::string& p) {
    fs::path abs = fs::path(p);
    if (!abs.is_absolute()) {
        char cwd[PATH_MAX];
        LOTA_CHECK(::getcwd(cwd, sizeof cwd) != nullptr, "cannot read the working directory: %s", std::strerror(errno));
        abs = fs::path(cwd) / abs;
    }
    std::string norm = abs.lexically_normal().string();
    while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
    fs::path head = norm, tail;
    for (;;) {
        char buf[PATH_MAX];
        if (::realpath(head.c_str(), buf) != nullptr) {
            std::string r = (tail.empty() ? fs::path(buf) : fs::path(buf) / tail).lexically_normal().string();
            while (r.size() > 1 && r.back() == '/') r.pop_back();
            return r;
        }
        if (head == head.root_path() || head.empty()) return norm;
        tail = tail.empty() ? head.filename() : head.filename() / tail;
        head = head.parent_path();
    }
}

// Whether resolved path `inner` is `outer` or lies below it.
bool path_within(const std::string& inner, const std::string& outer) {
    if (inner == outer || outer == "/") return true;
    return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '/';
}

// PID of a temporary of `base` named BASE.tmp-PID[-N] or BASE.tmp.PID[.N], or -1 when `name` is not one.
long temp_owner_pid(const std::string& name, const std::string& base) {
    const std::string pre = base + ".tmp";
    if (name.size() <= pre.size() + 1 || name.compare(0, pre.size(), pre) != 0) return -1;
    const char sep = name[pre.size()];
    if (sep != '-' && sep != '.') return -1;
    size_t i = pre.size() + 1, j = i;
    while (j < name.size() && j - i < 10 && name[j] >= '0' && name[j] <= '9') ++j;
    if (j == i || (j < name.size() && name[j] != sep)) return -1;
    return std::stol(name.substr(i, j - i));
}

// Whether process `pid` is gone (so its temporaries are garbage). EPERM: alive, owned by another user.
bool process_gone(long pid) { return pid > 0 && ::kill((pid_t)pid, 0) != 0 && errno == ESRCH; }

}  // namespace

void output_path_check(const std::string& out, const std::vector<InputPath>& inputs, const std::string& flag) {
    LOTA_CHECK(!out.empty(), "%s: empty path", flag.c_str());
    const std::string o = path_resolved(out), cwd = path_resolved(".");
    LOTA_CHECK(!path_within(cwd, o), "%s %s is the working directory or holds it; give a new path", flag.c_str(),
               out.c_str());
    for (const InputPath& in : inputs) {
        if (in.path.empty()) continue;
        const std::string i = path_resolved(in.path);
        LOTA_CHECK(o != i, "%s %s is the input %s %s; give a new path (the input would be lost)", flag.c_str(),
                   out.c_str(), in.flag.c_str(), in.path.c_str());
        LOTA_CHECK(!path_within(o, i), "%s %s lies inside the input %s %s; give a path outside it", flag.c_str(),
                   out.c_str(), in.flag.c_str(), in.path.c_str());
        LOTA_CHECK(!path_within(i, o), "%s %s holds the input %s %s; give a path that does not contain it",
                   flag.c_str(), out.c_str(), in.flag.c_str(), in.path.c_str());
    }
}

void output_dir_check(const std::string& path, bool overwrite) {
    LOTA_CHECK(overwrite || dir_is_empty_or_missing(path),
               "%s: output exists and is not an empty directory (use --overwrite to replace it)", path.c_str());
}

void output_file_check(const std::string& path, bool overwrite, const std::string& flag) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
    LOTA_CHECK(!S_ISDIR(st.st_mode), "%s %s is a directory, expected a file path", flag.c_str(), path.c_str());
    LOTA_CHECK(overwrite, "%s %s exists (use --overwrite to replace it)", flag.c_str(), path.c_str());
}

int stale_temps_remove(const std::string& final_path) {
    std::string f = final_path;
    while (f.size() > 1 && f.back() == '/') f.pop_back();
    const size_t slash = f.rfind('/');
    const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : f.substr(0, slash);
    const std::string base = slash == std::string::npos ? f : f.substr(slash + 1);
    if (base.empty() || base == "." || base == "..") return 0;
    std::vector<std::string> names;
    try {
        names = dir_list(parent);
    } catch (const Error&) {
        return 0;  // no parent yet: nothing stale
    }
    int removed = 0;
    for (const std::string& name : names) {
        const long pid = temp_owner_pid(name, base);
        if (pid < 0 || pid == (long)::getpid() || !process_gone(pid)) continue;
        const std::string p = parent + "/" + name;
        if (remove_tree(p)) {
            LOTA_LOG_INFO("removed %s, left by a process (%ld) that no longer runs", p.c_str(), pid);
            ++removed;
        } else {
            LOTA_LOG_WARN("cannot remove %s, left by a process (%ld) that no longer runs", p.c_str(), pid);
        }
    }
    return removed;
}

StagedDir::StagedDir(const std::string& final_dir, bool overwrite) : final_(final_dir), overwrite_(overwrite) {
    while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
    LOTA_CHECK(!final_.empty(), "output directory name is empty");
    stale_temps_remove(final_);
    output_dir_check(final_, overwrite);
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
    struct stat st {};
    const bool exists = ::lstat(final_.c_str(), &st) == 0;
    if (exists && !dir_is_empty_or_missing(final_)) {
        LOTA_CHECK(overwrite_, "%s: output exists and is not an empty directory (use --overwrite to replace it)",
                   final_.c_str());
        // Swap the new directory in with one atomic exchange, so the path always holds a whole
        // output; the old one, now under the temporary name, is deleted after.
        constexpr unsigned kRenameExchange = 2;  // RENAME_EXCHANGE, <linux/fs.h>
        if (::syscall(SYS_renameat2, AT_FDCWD, tmp_.c_str(), AT_FDCWD, final_.c_str(), kRenameExchange) == 0) {
            committed_ = true;
            if (!remove_tree(tmp_)) LOTA_LOG_WARN("cannot remove the replaced output, now %s", tmp_.c_str());
            return;
        }
        // No exchange on this file system: move the old output aside under a temporary name of
        // this process (removed by a later run if this one dies here), then rename.
        const std::string old = final_ + ".tmp-" + std::to_string(::getpid()) + "-replaced";
        LOTA_CHECK(::rename(final_.c_str(), old.c_str()) == 0, "cannot rename %s to %s: %s", final_.c_str(),
                   old.c_str(), std::strerror(errno));
        LOTA_CHECK(::rename(tmp_.c_str(), final_.c_str()) == 0, "cannot rename %s to %s: %s", tmp_.c_str(),
                   final_.c_str(), std::strerror(errno));
        committed_ = true;
        if (!remove_tree(old)) LOTA_LOG_WARN("cannot remove the replaced output, now %s", old.c_str());
        return;
    }
    std::error_code ec;
    if (exists) fs::remove(final_, ec);  // only an empty directory can be here
    fs::rename(tmp_, final_, ec);
    LOTA_CHECK(!ec, "cannot rename %s to %s: %s", tmp_.c_str(), final_.c_str(), ec.message().c_str());
    committed_ = true;
}

}  // namespace lota
