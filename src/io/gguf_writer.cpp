// GGUF writer (see gguf_writer.h and the layout in gguf.h).
#include "io/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::io {
namespace {

constexpr uint64_t ALIGNMENT = 32;

class ByteSink {
  public:
    void u8(uint8_t v) { buf_.push_back(v); }
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void str(const std::string& s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    void raw(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        buf_.insert(buf_.end(), b, b + n);
    }
    void value(const GgufValue& v) {
        switch (v.type) {
            case GgufValueType::UINT32: u32(static_cast<uint32_t>(v.u)); break;
            case GgufValueType::INT32: {
                const int32_t x = static_cast<int32_t>(v.i);
                raw(&x, 4);
                break;
            }
            case GgufValueType::FLOAT32: {
                const float x = static_cast<float>(v.f);
                raw(&x, 4);
                break;
            }
            case GgufValueType::BOOL: u8(v.u ? 1 : 0); break;
            case GgufValueType::STRING: str(v.str); break;
            case GgufValueType::ARRAY:
                u32(static_cast<uint32_t>(v.elem_type));
                u64(v.array.size());
                for (const auto& e : v.array) value(e);
                break;
            default: LOTA_ASSERT(false, "GgufWriter: value type %u is not written", static_cast<unsigned>(v.type));
        }
    }
    void pad() {
        while (buf_.size() % ALIGNMENT) u8(0);
    }
    const std::vector<uint8_t>& bytes() const { return buf_; }

  private:
    std::vector<uint8_t> buf_;
};

GgufValue scalar(GgufValueType t) {
    GgufValue v;
    v.type = t;
    return v;
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue v) {
    for (auto& [k, old] : kv_)
        if (k == key) {
            old = std::move(v);
            return;
        }
    kv_.emplace_back(key, std::move(v));
}

void GgufWriter::set_string(const std::string& key, const std::string& s) {
    GgufValue v = scalar(GgufValueType::STRING);
    v.str = s;
    set(key, std::move(v));
}

void GgufWriter::set_u32(const std::string& key, uint32_t x) {
    GgufValue v = scalar(GgufValueType::UINT32);
    v.u = x;
    set(key, std::move(v));
}

void GgufWriter::set_i32(const std::string& key, int32_t x) {
    GgufValue v = scalar(GgufValueType::INT32);
    v.i = x;
    set(key, std::move(v));
}

void GgufWriter::set_f32(const std::string& key, float x) {
    GgufValue v = scalar(GgufValueType::FLOAT32);
    v.f = x;
    set(key, std::move(v));
}

void GgufWriter::set_bool(const std::string& key, bool x) {
    GgufValue v = scalar(GgufValueType::BOOL);
    v.u = x ? 1 : 0;
    set(key, std::move(v));
}

void GgufWriter::set_strings(const std::string& key, const std::vector<std::string>& xs) {
    GgufValue v = scalar(GgufValueType::ARRAY);
    v.elem_type = GgufValueType::STRING;
    for (const auto& x : xs) {
        GgufValue e = scalar(GgufValueType::STRING);
        e.str = x;
        v.array.push_back(std::move(e));
    }
    set(key, std::move(v));
}

void GgufWriter::set_i32s(const std::string& key, const std::vector<int32_t>& xs) {
    GgufValue v = scalar(GgufValueType::ARRAY);
    v.elem_type = GgufValueType::INT32;
    for (const int32_t x : xs) {
        GgufValue e = scalar(GgufValueType::INT32);
        e.i = x;
        v.array.push_back(std::move(e));
    }
    set(key, std::move(v));
}

void GgufWriter::set_f32s(const std::string& key, const std::vector<float>& xs) {
    GgufValue v = scalar(GgufValueType::ARRAY);
    v.elem_type = GgufValueType::FLOAT32;
    for (const float x : xs) {
        GgufValue e = scalar(GgufValueType::FLOAT32);
        e.f = x;
        v.array.push_back(std::move(e));
    }
    set(key, std::move(v));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                            std::vector<uint8_t> data) {
    const GgmlTypeInfo& info = ggml_type_info(type);
    LOTA_CHECK(!shape.empty(), "GGUF tensor '%s': empty shape", name.c_str());
    int64_t n = 1;
    for (const int64_t s : shape) n *= s;
    LOTA_CHECK(shape.back() % info.block_size == 0,
               "GGUF tensor '%s': row length %lld is not a multiple of the %s block size %u", name.c_str(),
               (long long)shape.back(), info.name, info.block_size);
    const uint64_t want = static_cast<uint64_t>(n / info.block_size) * info.type_size;
    LOTA_CHECK(data.size() == want, "GGUF tensor '%s': %zu bytes, expected %llu for %s %s", name.c_str(),
               data.size(), (unsigned long long)want, info.name, shape_str(shape).c_str());
    for (const auto& t : tensors_) LOTA_CHECK(t.name != name, "GGUF tensor '%s' added twice", name.c_str());
    tensors_.push_back({name, type, shape, std::move(data)});
}

void GgufWriter::write(const std::string& path) const {
    ByteSink h;
    h.raw("GGUF", 4);
    h.u32(3);
    h.u64(tensors_.size());
    h.u64(kv_.size());
    for (const auto& [k, v] : kv_) {
        h.str(k);
        h.u32(static_cast<uint32_t>(v.type));
        h.value(v);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        h.str(t.name);
        h.u32(static_cast<uint32_t>(t.shape.size()));
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) h.u64(static_cast<uint64_t>(*it));
        h.u32(static_cast<uint32_t>(t.type));
        h.u64(offset);
        offset += (t.data.size() + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }
    h.pad();
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        LOTA_CHECK(out.good(), "%s: cannot create file", tmp.c_str());
        out.write(reinterpret_cast<const char*>(h.bytes().data()), static_cast<std::streamsize>(h.bytes().size()));
        static const char zeros[ALIGNMENT] = {};
        for (const auto& t : tensors_) {
            out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
            const size_t padding = (ALIGNMENT - t.data.size() % ALIGNMENT) % ALIGNMENT;
            out.write(zeros, static_cast<std::streamsize>(padding));
        }
        out.flush();
        if (!out.good()) {
            std::remove(tmp.c_str());
            LOTA_FAIL("%s: write failed (disk full?)", tmp.c_str());
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        LOTA_FAIL("%s: cannot rename %s into place", path.c_str(), tmp.c_str());
    }
}

std::vector<uint8_t> q4_1_blocks(const at::Tensor& codes_in, const at::Tensor& d_in, const at::Tensor& m_in) {
    LOTA_CHECK(codes_in.dim() == 2 && codes_in.size(1) % 32 == 0,
               "q4_1_blocks: codes must be [R, C] with C a multiple of 32, got %s",
               shape_str(codes_in.sizes().vec()).c_str());
    const int64_t R = codes_in.size(0), C = codes_in.size(1), B = C / 32;
    LOTA_CHECK(d_in.sizes().vec() == std::vector<int64_t>({R, B}) && m_in.sizes().vec() == d_in.sizes().vec() &&
                   d_in.scalar_type() == at::kHalf && m_in.scalar_type() == at::kHalf,
               "q4_1_blocks: d and m must be float16 [%lld, %lld], got %s %s and %s %s", (long long)R, (long long)B,
               c10::toString(d_in.scalar_type()), shape_str(d_in.sizes().vec()).c_str(),
               c10::toString(m_in.scalar_type()), shape_str(m_in.sizes().vec()).c_str());
    const at::Tensor codes = codes_in.to(at::kCPU, at::kInt).contiguous();
    LOTA_CHECK(codes.numel() == 0 || (codes.min().item<int>() >= 0 && codes.max().item<int>() <= 15),
               "q4_1_blocks: codes must lie in [0, 15]");
    const at::Tensor d = d_in.to(at::kCPU).contiguous(), m = m_in.to(at::kCPU).contiguous();
    const int32_t* q = codes.data_ptr<int32_t>();
    const auto* dp = reinterpret_cast<const uint16_t*>(d.data_ptr<at::Half>());
    const auto* mp = reinterpret_cast<const uint16_t*>(m.data_ptr<at::Half>());
    std::vector<uint8_t> out(static_cast<size_t>(R * B * 20));
    uint8_t* o = out.data();
    for (int64_t r = 0; r < R; ++r)
        for (int64_t b = 0; b < B; ++b, o += 20) {
            std::memcpy(o, dp + r * B + b, 2);
            std::memcpy(o + 2, mp + r * B + b, 2);
            const int32_t* x = q + r * C + b * 32;
            for (int j = 0; j < 16; ++j) o[4 + j] = static_cast<uint8_t>(x[j] | (x[j + 16] << 4));
        }
    return out;
}

std::vector<uint8_t> tensor_bytes(const at::Tensor& t_in) {
    const at::Tensor t = t_in.to(at::kCPU).contiguous();
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    return std::vector<uint8_t>(p, p + t.numel() * t.element_size());
}

}  // namespace lota::io
