// Single-file and sharded safetensors model directories (see model_files.h).
#include "io/model_files.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/strfmt.h"

namespace lota::io {
namespace {

bool file_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

ModelFiles::ModelFiles(const std::string& dir) : dir_(dir) {
    const std::string single = dir + "/model.safetensors";
    const std::string index = dir + "/model.safetensors.index.json";
    if (file_exists(index)) {
        nlohmann::json j;
        try {
            j = json_parse(file_read_text(index), index);
        } catch (const nlohmann::json::exception& e) {
            LOTA_FAIL("%s: malformed JSON: %s", index.c_str(), e.what());
        }
        LOTA_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
                   "%s: expected an object with a \"weight_map\"", index.c_str());
        std::map<std::string, size_t> shard_ids;
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            LOTA_CHECK(it.value().is_string(), "%s: weight_map['%s'] is not a file name", index.c_str(),
                       it.key().c_str());
            std::string shard = it.value().get<std::string>();
            LOTA_CHECK(shard.find('/') == std::string::npos, "%s: shard name '%s' must be a plain file name",
                       index.c_str(), shard.c_str());
            if (!shard_ids.count(shard)) {
                shard_ids[shard] = files_.size();
                files_.push_back(std::make_unique<SafetensorsFile>(dir + "/" + shard));
            }
            size_t id = shard_ids[shard];
            LOTA_CHECK(files_[id]->has(it.key()), "%s: index says tensor '%s' is in %s, but that file lacks it",
                       index.c_str(), it.key().c_str(), shard.c_str());
            where_[it.key()] = id;
        }
    } else if (file_exists(single)) {
        files_.push_back(std::make_unique<SafetensorsFile>(single));
        for (const auto& e : files_[0]->entries()) where_[e.name] = 0;
    } else {
        LOTA_FAIL("%s: no model.safetensors or model.safetensors.index.json (is this an HF model directory?)",
                  dir.c_str());
    }
}

const std::string& ModelFiles::file_of(const std::string& name) const {
    auto it = where_.find(name);
    LOTA_CHECK(it != where_.end(), "%s: missing tensor '%s'", dir_.c_str(), name.c_str());
    return files_[it->second]->path();
}

const SafetensorsEntry& ModelFiles::entry(const std::string& name) const {
    auto it = where_.find(name);
    LOTA_CHECK(it != where_.end(), "%s: missing tensor '%s'", dir_.c_str(), name.c_str());
    return files_[it->second]->entry(name);
}

at::Tensor ModelFiles::load(const std::string& name) const {
    auto it = where_.find(name);
    LOTA_CHECK(it != where_.end(), "%s: missing tensor '%s'", dir_.c_str(), name.c_str());
    return files_[it->second]->load(name);
}

at::Tensor ModelFiles::load_checked(const std::string& name, const std::vector<int64_t>& shape,
                                    const std::string& why) const {
    const SafetensorsEntry& e = entry(name);
    LOTA_CHECK(e.shape == shape, "%s: tensor '%s' has shape %s, expected %s (%s)", file_of(name).c_str(),
               name.c_str(), shape_str(e.shape).c_str(), shape_str(shape).c_str(), why.c_str());
    LOTA_CHECK(e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16" || e.dtype == "F64",
               "%s: tensor '%s' has dtype %s, expected a float dtype (F32, F16, BF16 or F64)", file_of(name).c_str(),
               name.c_str(), e.dtype.c_str());
    return load(name);
}

std::vector<std::string> ModelFiles::names() const {
    std::vector<std::string> out;
    for (const auto& [name, id] : where_) out.push_back(name);
    return out;
}

uint64_t ModelFiles::data_bytes() const {
    uint64_t total = 0;
    for (const auto& f : files_)
        for (const auto& e : f->entries()) total += e.end - e.begin;
    return total;
}

namespace {

std::string shard_temp_name(size_t i) { return strfmt("model-%05zu.safetensors.partial", i + 1); }

}  // namespace

ModelFilesWriter::ModelFilesWriter(std::string dir, uint64_t max_shard_bytes)
    : dir_(std::move(dir)), max_shard_bytes_(max_shard_bytes) {
    LOTA_CHECK(max_shard_bytes_ > 0, "%s: the shard size must be positive", dir_.c_str());
}

void ModelFilesWriter::add(const std::string& name, const at::Tensor& t) {
    LOTA_ASSERT(!finished_, "%s: tensor '%s' added after finish()", dir_.c_str(), name.c_str());
    LOTA_CHECK(seen_.emplace(name, true).second, "%s: duplicate tensor name '%s'", dir_.c_str(), name.c_str());
    const uint64_t b = t.numel() * t.element_size();
    if (buffered_ > 0 && buffered_ + b > max_shard_bytes_) flush();
    buffer_.emplace_back(name, t.detach().to(at::kCPU).contiguous());
    buffered_ += b;
    total_ += b;
}

void ModelFilesWriter::flush() {
    safetensors_write(dir_ + "/" + shard_temp_name(shard_names_.size()), buffer_, {{"format", "pt"}});
    shard_names_.emplace_back();
    for (const auto& nt : buffer_) shard_names_.back().push_back(nt.first);
    buffer_.clear();
    buffered_ = 0;
}

void ModelFilesWriter::finish() {
    LOTA_ASSERT(!finished_, "%s: finish() called twice", dir_.c_str());
    finished_ = true;
    if (shard_names_.empty()) {
        safetensors_write(dir_ + "/model.safetensors", buffer_, {{"format", "pt"}});
        buffer_.clear();
        return;
    }
    if (!buffer_.empty()) flush();
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    const size_t n = shard_names_.size();
    for (size_t i = 0; i < n; ++i) {
        const std::string name = strfmt("model-%05zu-of-%05zu.safetensors", i + 1, n);
        const std::string from = dir_ + "/" + shard_temp_name(i), to = dir_ + "/" + name;
        LOTA_CHECK(::rename(from.c_str(), to.c_str()) == 0, "%s: rename from %s failed: %s", to.c_str(), from.c_str(),
                   std::strerror(errno));
        for (const auto& t : shard_names_[i]) weight_map[t] = name;
    }
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total_}};
    index["weight_map"] = weight_map;
    const std::string text = index.dump(2);
    file_write_atomic(dir_ + "/model.safetensors.index.json", text.data(), text.size());
}

void model_files_write(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       uint64_t max_shard_bytes) {
    ModelFilesWriter w(dir, max_shard_bytes);
    for (const auto& [name, t] : tensors) w.add(name, t);
    w.finish();
}

const std::vector<std::string>& model_text_file_names() {
    static const std::vector<std::string> names = {
        "generation_config.json", "tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json",      "chat_template.jinja", "tokenizer.model",   "vocab.json",
        "merges.txt"};
    return names;
}

std::vector<std::string> model_text_files_copy(const std::string& from_dir, const std::string& to_dir) {
    std::vector<std::string> copied;
    for (const std::string& name : model_text_file_names()) {
        if (!file_exists(from_dir + "/" + name)) continue;
        file_copy(from_dir + "/" + name, to_dir + "/" + name);
        copied.push_back(name);
    }
    return copied;
}

}  // namespace lota::io
