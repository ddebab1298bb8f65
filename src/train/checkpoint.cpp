// Training checkpoints (checkpoint.h).
#include "train/checkpoint.h"

#include <filesystem>
#include <vector>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/log.h"

namespace lota::train {
namespace {

namespace fs = std::filesystem;
const char* const STATE_FILE = "trainer_state.json";
const char* const OPT_FILE = "optimizer.safetensors";
const int STATE_VERSION = 2;

/// Step of a "checkpoint-<step>" directory name, or −1.
int64_t checkpoint_step(const std::string& name) {
    const std::string pre = "checkpoint-";
    if (name.rfind(pre, 0) != 0 || name.size() == pre.size()) return -1;
    for (size_t i = pre.size(); i < name.size(); ++i)
        if (name[i] < '0' || name[i] > '9') return -1;
    return std::stoll(name.substr(pre.size()));
}

}  // namespace

void checkpoint_save(const std::string& out_dir, int64_t step, const Checkpoint& ckpt) {
    const std::string final_dir = out_dir + "/checkpoint-" + std::to_string(step);
    if (path_exists(final_dir)) remove_tree(final_dir);
    {
        StagedDir staged(final_dir);
        io::adapter_write(staged.path(), ckpt.adapter);
        if (!ckpt.optimizer.empty()) {
            std::vector<std::pair<std::string, at::Tensor>> t(ckpt.optimizer.begin(), ckpt.optimizer.end());
            io::safetensors_write(staged.path() + "/" + OPT_FILE, t);
        }
        nlohmann::json st = ckpt.state;
        st["format"] = "lota-trainer-state";
        st["version"] = STATE_VERSION;
        st["step"] = step;
        const std::string text = st.dump(2) + "\n";
        io::file_write_atomic(staged.path() + "/" + STATE_FILE, text.data(), text.size());
        staged.commit();
    }
    for (const auto& e : fs::directory_iterator(out_dir)) {
        const std::string name = e.path().filename().string();
        const int64_t s = checkpoint_step(name);
        const bool stale_tmp = name.rfind("checkpoint-", 0) == 0 && name.find(".tmp-") != std::string::npos;
        if ((s >= 0 && s != step) || stale_tmp) {
            remove_tree(e.path().string());
        }
    }
    LOTA_LOG_INFO("saved checkpoint %s", final_dir.c_str());
}

std::optional<Checkpoint> checkpoint_load_latest(const std::string& out_dir) {
    if (!path_exists(out_dir)) return std::nullopt;
    int64_t best = -1;
    for (const auto& e : fs::directory_iterator(out_dir)) {
        const int64_t s = checkpoint_step(e.path().filename().string());
        if (s > best && path_exists(e.path().string() + "/" + STATE_FILE)) best = s;
    }
    if (best < 0) return std::nullopt;
    const std::string dir = out_dir + "/checkpoint-" + std::to_string(best);
    Checkpoint c;
    const std::string state_path = dir + "/" + STATE_FILE;
    try {
        c.state = json_parse(io::file_read_text(state_path), state_path);
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: malformed JSON: %s", state_path.c_str(), e.what());
    }
    LOTA_CHECK(c.state.is_object() && c.state.value("format", std::string()) == "lota-trainer-state",
               "%s: not a lota trainer state", state_path.c_str());
    const int64_t version = json_int_or(c.state, "version", 0, state_path + ": \"version\"");
    LOTA_CHECK(version == STATE_VERSION,
               "%s: trainer state version %lld, this build reads version %d (start the run again, or resume it with "
               "the lota that wrote it)",
               state_path.c_str(), (long long)version, STATE_VERSION);
    c.dir = dir;
    c.adapter = io::adapter_read(dir);
    if (path_exists(dir + "/" + OPT_FILE)) {
        io::SafetensorsFile f(dir + "/" + OPT_FILE);
        for (const auto& e : f.entries()) c.optimizer[e.name] = f.load(e.name);
    }
    return c;
}

}  // namespace lota::train
