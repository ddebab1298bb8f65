// Test helper: writes GGUF bytes by hand (valid or deliberately broken), following the layout in
// src/io/gguf.h, so the reader can be tested without any other GGUF writer.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace lota::test {

class GgufBuilder {
  public:
    std::vector<uint8_t> bytes;

    void raw(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        bytes.insert(bytes.end(), b, b + n);
    }
    template <class T>
    void put(T v) {
        raw(&v, sizeof(T));
    }
    void u32(uint32_t v) { put(v); }
    void u64(uint64_t v) { put(v); }
    void str(const std::string& s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    /// "GGUF", version, tensor count, kv count.
    void header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        raw("GGUF", 4);
        u32(version);
        u64(n_tensors);
        u64(n_kv);
    }
    void key(const std::string& k, uint32_t type) {
        str(k);
        u32(type);
    }
    void kv_u32(const std::string& k, uint32_t v) {
        key(k, 4);
        u32(v);
    }
    void kv_i32(const std::string& k, int32_t v) {
        key(k, 5);
        put(v);
    }
    void kv_f32(const std::string& k, float v) {
        key(k, 6);
        put(v);
    }
    void kv_bool(const std::string& k, bool v) {
        key(k, 7);
        put<uint8_t>(v ? 1 : 0);
    }
    void kv_str(const std::string& k, const std::string& v) {
        key(k, 8);
        str(v);
    }
    void kv_strs(const std::string& k, const std::vector<std::string>& v) {
        key(k, 9);
        u32(8);
        u64(v.size());
        for (const auto& s : v) str(s);
    }
    void kv_i32s(const std::string& k, const std::vector<int32_t>& v) {
        key(k, 9);
        u32(5);
        u64(v.size());
        for (int32_t x : v) put(x);
    }
    void tensor_info(const std::string& name, const std::vector<int64_t>& ne, uint32_t type, uint64_t offset) {
        str(name);
        u32(static_cast<uint32_t>(ne.size()));
        for (int64_t d : ne) put(d);
        u32(type);
        u64(offset);
    }
    void pad_to(size_t alignment) {
        while (bytes.size() % alignment != 0) bytes.push_back(0);
    }
    void f32s(const std::vector<float>& v) { raw(v.data(), v.size() * 4); }

    /// Writes the bytes to a fresh file under the test temp dir and returns its path.
    std::string write(const std::string& name) const {
        const std::string path = ::testing::TempDir() + "lota_gguf_" + name;
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        return path;
    }
};

}  // namespace lota::test
