// safetensors reader/writer; see safetensors.h for the layout and guarantees.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::io {
namespace {

// Header sizes above this are corrupt (HF's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeRow {
    const char* name;
    at::ScalarType type;
};
const DtypeRow kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16}, {"I64", at::kLong},
    {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},   {"U8", at::kByte},        {"BOOL", at::kBool},
};

}  // namespace

at::ScalarType safetensors_dtype_to_scalar(const std::string& dtype, const std::string& context) {
    for (const auto& row : kDtypes)
        if (dtype == row.name) return row.type;
    LOTA_FAIL("%s: unsupported dtype '%s' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)",
              context.c_str(), dtype.c_str());
}

std::string safetensors_dtype_from_scalar(at::ScalarType t) {
    for (const auto& row : kDtypes)
        if (row.type == t) return row.name;
    LOTA_FAIL("cannot store dtype %s in safetensors", c10::toString(t));
}

SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), file_(std::make_unique<MappedFile>(path)) {
    const char* p = path.c_str();
    const uint64_t size = file_->size();
    LOTA_CHECK(size >= 8, "%s: truncated safetensors file: %llu bytes, expected at least 8 (header length)", p,
               (unsigned long long)size);
    uint64_t n = 0;
    std::memcpy(&n, file_->data(), 8);  // little-endian hosts only (x86-64, aarch64)
    LOTA_CHECK(n <= kMaxHeaderBytes, "%s: corrupt safetensors header length %llu (limit %llu)", p,
               (unsigned long long)n, (unsigned long long)kMaxHeaderBytes);
    LOTA_CHECK(n <= size - 8, "%s: truncated safetensors file: header needs %llu bytes, file has %llu after offset 8",
               p, (unsigned long long)n, (unsigned long long)(size - 8));
    data_start_ = 8 + n;
    const uint64_t data_size = size - data_start_;

    nlohmann::json header;
    try {
        header = json_parse(std::string_view(reinterpret_cast<const char*>(file_->data()) + 8, n), path);
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: safetensors header is not valid JSON: %s", p, e.what());
    }
    LOTA_CHECK(header.is_object(), "%s: safetensors header must be a JSON object", p);

    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            LOTA_CHECK(v.is_object(), "%s: __metadata__ must be an object of strings", p);
            for (auto m = v.begin(); m != v.end(); ++m) {
                LOTA_CHECK(m.value().is_string(), "%s: __metadata__['%s'] is not a string", p, m.key().c_str());
                metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        LOTA_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
                   "%s: tensor '%s' needs dtype, shape and data_offsets", p, name.c_str());
        SafetensorsEntry e;
        e.name = name;
        LOTA_CHECK(v["dtype"].is_string(), "%s: tensor '%s': dtype is not a string", p, name.c_str());
        e.dtype = v["dtype"].get<std::string>();
        at::ScalarType st = safetensors_dtype_to_scalar(e.dtype, path + ": tensor '" + name + "'");
        LOTA_CHECK(v["shape"].is_array(), "%s: tensor '%s': shape is not an array", p, name.c_str());
        uint64_t numel = 1;
        for (const auto& d : v["shape"]) {
            LOTA_CHECK(d.is_number_unsigned(), "%s: tensor '%s': shape has a non-integer or negative entry", p,
                       name.c_str());
            uint64_t dim = d.get<uint64_t>();
            LOTA_CHECK(dim == 0 || numel <= (1ull << 62) / dim, "%s: tensor '%s': shape overflows", p, name.c_str());
            numel *= dim;
            e.shape.push_back(static_cast<int64_t>(dim));
        }
        const auto& off = v["data_offsets"];
        LOTA_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                   "%s: tensor '%s': data_offsets must be two non-negative integers", p, name.c_str());
        e.begin = off[0].get<uint64_t>();
        e.end = off[1].get<uint64_t>();
        LOTA_CHECK(e.begin <= e.end, "%s: tensor '%s': data_offsets [%llu, %llu] are reversed", p, name.c_str(),
                   (unsigned long long)e.begin, (unsigned long long)e.end);
        LOTA_CHECK(e.end <= data_size,
                   "%s: tensor '%s': data_offsets end %llu is past the end of the data (%llu bytes; file truncated?)",
                   p, name.c_str(), (unsigned long long)e.end, (unsigned long long)data_size);
        uint64_t want = numel * c10::elementSize(st);
        LOTA_CHECK(e.end - e.begin == want, "%s: tensor '%s': %llu bytes for shape %s of %s, expected %llu", p,
                   name.c_str(), (unsigned long long)(e.end - e.begin), shape_str(e.shape).c_str(), e.dtype.c_str(),
                   (unsigned long long)want);
        index_[name] = entries_.size();
        entries_.push_back(std::move(e));
    }

    // The data buffer must be covered exactly once: sort by offset and look for overlaps and holes.
    std::vector<const SafetensorsEntry*> by_offset;
    for (const auto& e : entries_) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t cursor = 0;
    for (size_t i = 0; i < by_offset.size(); ++i) {
        const auto* e = by_offset[i];
        if (e->begin == e->end) continue;  // empty tensors occupy no bytes
        LOTA_CHECK(e->begin >= cursor, "%s: tensor '%s' overlaps tensor '%s' in the data buffer", p, e->name.c_str(),
                   by_offset[i - 1]->name.c_str());
        LOTA_CHECK(e->begin == cursor, "%s: hole of %llu bytes in the data buffer before tensor '%s'", p,
                   (unsigned long long)(e->begin - cursor), e->name.c_str());
        cursor = e->end;
    }
    LOTA_CHECK(cursor == data_size, "%s: %llu trailing bytes after the last tensor (corrupt or concatenated file)", p,
               (unsigned long long)(data_size - cursor));
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
    auto it = index_.find(name);
    LOTA_CHECK(it != index_.end(), "%s: missing tensor '%s'", path_.c_str(), name.c_str());
    return entries_[it->second];
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
    const SafetensorsEntry& e = entry(name);
    at::ScalarType st = safetensors_dtype_to_scalar(e.dtype, path_);
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(st));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), file_->data() + data_start_ + e.begin, e.end - e.begin);
    return t;
}

void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::vector<at::Tensor> cpu;
    uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        LOTA_CHECK(!header.contains(name), "%s: duplicate tensor name '%s'", path.c_str(), name.c_str());
        at::Tensor c = t.detach().to(at::kCPU).contiguous();
        uint64_t bytes = c.numel() * c.element_size();
        header[name] = {{"dtype", safetensors_dtype_from_scalar(c.scalar_type())},
                        {"shape", c.sizes().vec()},
                        {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
        cpu.push_back(std::move(c));
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');  // align the data buffer to 8 bytes
    // Header, then each tensor straight from its storage: no second copy of the data in memory.
    AtomicFile f(path);
    const uint64_t n = h.size();
    f.write(&n, 8);
    f.write(h.data(), h.size());
    for (const auto& c : cpu) f.write(c.data_ptr(), c.numel() * c.element_size());
    f.commit();
}

}  // namespace lota::io
