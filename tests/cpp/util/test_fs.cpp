// Output directories and files (util/fs.h): a non-empty output is refused unless overwrite, and an
// overwrite swaps the new output in only once it is complete; an output may not be, lie in or hold
// an input or the working directory; temporaries of dead processes are removed, those of live ones
// kept.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../test_dirs.h"
#include "../test_error.h"
#include "util/check.h"
#include "util/fs.h"

using lota_test::error_of;

namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
    std::stringstream ss;
    ss << std::ifstream(p).rdbuf();
    return ss.str();
}

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

// A PID that names no running process: a child that has exited and been reaped.
long dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return (long)pid;
}

class Fs : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = lota_test::fresh_created_dir("fs", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
    void TearDown() override { lota::remove_tree(dir_); }
    std::string dir_;
};

}  // namespace

TEST_F(Fs, StagedDirRefusesANonEmptyOutputAndLeavesItAlone) {
    const fs::path out = fs::path(dir_) / "out";
    write(out / "keep.txt", "old");
    const std::string e = error_of([&] { lota::StagedDir staged(out.string()); });
    EXPECT_NE(e.find("out: output exists and is not an empty directory (use --overwrite to replace it)"),
              std::string::npos)
        << e;
    EXPECT_EQ(read(out / "keep.txt"), "old");
    EXPECT_EQ(lota::dir_list(dir_), std::vector<std::string>{"out"});  // no temporary left
}

TEST_F(Fs, OverwriteReplacesOnlyOnCommit) {
    const fs::path out = fs::path(dir_) / "out";
    write(out / "keep.txt", "old");
    {  // a run that fails before commit: the old output stays whole
        lota::StagedDir staged(out.string(), true);
        write(fs::path(staged.path()) / "new.txt", "new");
    }
    EXPECT_EQ(lota::dir_list(out.string()), std::vector<std::string>{"keep.txt"});
    {
        lota::StagedDir staged(out.string(), true);
        write(fs::path(staged.path()) / "new.txt", "new");
        staged.commit();
    }
    EXPECT_EQ(lota::dir_list(out.string()), std::vector<std::string>{"new.txt"});
    EXPECT_EQ(read(out / "new.txt"), "new");
    EXPECT_EQ(lota::dir_list(dir_), std::vector<std::string>{"out"});  // the replaced one is deleted
}

TEST_F(Fs, StaleTemporariesOfDeadProcessesAreRemovedOthersKept) {
    const fs::path out = fs::path(dir_) / "out";
    const std::string dead = std::to_string(dead_pid()), live = std::to_string(::getppid());
    write(fs::path(dir_) / ("out.tmp-" + dead + "-123") / "model.safetensors", "x");  // StagedDir's
    write(fs::path(dir_) / ("out.tmp." + dead), "x");                                // file_write_atomic's
    write(fs::path(dir_) / ("out.tmp-" + live + "-7") / "a", "x");                   // a running writer's
    write(fs::path(dir_) / ("other.tmp-" + dead + "-1") / "a", "x");                 // another target's
    write(fs::path(dir_) / "out.tmp-notapid" / "a", "x");                            // not a temporary name
    EXPECT_EQ(lota::stale_temps_remove(out.string()), 2);
    EXPECT_EQ(lota::dir_list(dir_), (std::vector<std::string>{"other.tmp-" + dead + "-1", "out.tmp-" + live + "-7",
                                                              "out.tmp-notapid"}));
    {
        lota::StagedDir staged(out.string());  // construction removes them too
        write(fs::path(dir_) / ("out.tmp." + dead), "x");
    }
    lota::StagedDir again(out.string());
    EXPECT_FALSE(fs::exists(fs::path(dir_) / ("out.tmp." + dead)));
}

TEST_F(Fs, OutputPathMayNotBeInsideOrHoldAnInput) {
    const fs::path model = fs::path(dir_) / "model";
    write(model / "config.json", "{}");
    const std::vector<lota::InputPath> in = {{"--model", model.string()}, {"--data", ""}};
    auto check = [&](const std::string& out) { return error_of([&] { lota::output_path_check(out, in); }); };
    EXPECT_NE(check(model.string()).find("is the input --model"), std::string::npos);
    EXPECT_NE(check(model.string() + "/").find("is the input --model"), std::string::npos);
    EXPECT_NE(check(dir_ + "/./model/../model").find("is the input --model"), std::string::npos);
    EXPECT_NE(check((model / "q").string()).find("lies inside the input --model"), std::string::npos);
    EXPECT_NE(check(dir_).find("holds the input --model"), std::string::npos);
    EXPECT_EQ(check(dir_ + "/model2"), "");
    fs::create_directory_symlink(model, fs::path(dir_) / "link");
    EXPECT_NE(check(dir_ + "/link").find("is the input --model"), std::string::npos);
    EXPECT_NE(check(".").find("is the working directory or holds it"), std::string::npos);
    EXPECT_NE(check("/").find("is the working directory or holds it"), std::string::npos);
}

TEST_F(Fs, OutputFileNeedsOverwriteToReplace) {
    const fs::path f = fs::path(dir_) / "out.jsonl";
    EXPECT_EQ(error_of([&] { lota::output_file_check(f.string(), false); }), "");
    write(f, "old");
    EXPECT_NE(error_of([&] { lota::output_file_check(f.string(), false); }).find("exists (use --overwrite"),
              std::string::npos);
    EXPECT_EQ(error_of([&] { lota::output_file_check(f.string(), true); }), "");
    EXPECT_NE(error_of([&] { lota::output_file_check(dir_, true); }).find("is a directory, expected a file"),
              std::string::npos);
}
