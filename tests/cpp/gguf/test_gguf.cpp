// GGUF reader tests: a round trip through a hand-built valid file, every corruption the reader
// must reject with a useful message, and dequantization of hand-made blocks against the formulas.
// (Exactness against gguf-py for every type is tests/py/test_gguf_import.py.)
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gguf_builder.h"
#include "io/gguf.h"
#include "io/gguf_dequant.h"
#include "util/check.h"

using lota::io::GgmlType;
using lota::io::GgufFile;
using lota::io::GgufValueType;
using lota::test::GgufBuilder;

namespace {

// Expects GgufFile(path) to throw lota::Error whose message names the file and contains `what`.
void expect_rejected(const GgufBuilder& b, const std::string& name, const std::string& what) {
    const std::string path = b.write(name);
    try {
        GgufFile f(path);
        ADD_FAILURE() << name << ": accepted, expected an error containing '" << what << "'";
    } catch (const lota::Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
        EXPECT_NE(msg.find(what), std::string::npos) << "message lacks '" << what << "': " << msg;
    }
}

// A valid file with one F32 tensor "t" of ne = {4} at offset `offset`; n_data bytes of data.
GgufBuilder one_tensor_file(uint32_t type, std::vector<int64_t> ne, uint64_t offset, size_t n_data) {
    GgufBuilder b;
    b.header(3, 1, 1);
    b.kv_str("general.architecture", "llama");
    b.tensor_info("t", ne, type, offset);
    b.pad_to(32);
    b.bytes.resize(b.bytes.size() + n_data, 0);
    return b;
}

}  // namespace

TEST(gguf, RoundTripAllValueTypesAndTensors) {
    GgufBuilder b;
    b.header(3, 2, 9);
    b.kv_str("general.architecture", "llama");
    b.kv_u32("general.alignment", 64);
    b.kv_i32("x.i32", -7);
    b.kv_f32("x.f32", 0.5f);
    b.kv_bool("x.bool", true);
    b.key("x.u64", 10);
    b.u64(1ull << 40);
    b.key("x.f64", 12);
    b.put(2.25);
    b.kv_strs("x.strs", {"a", "", "h\xc3\xa9"});
    b.kv_i32s("x.i32s", {1, -2, 3});
    b.tensor_info("w", {3, 2}, 0, 0);   // F32, torch shape [2, 3]
    b.tensor_info("q", {32}, 8, 64);    // Q8_0, one block at the next aligned offset
    b.pad_to(64);
    const size_t data_start = b.bytes.size();
    b.f32s({1, 2, 3, 4, 5, 6});
    b.pad_to(64);
    b.put<uint16_t>(0x3800);  // d = 0.5
    for (int j = 0; j < 32; ++j) b.put<int8_t>(static_cast<int8_t>(j - 16));
    const std::string path = b.write("roundtrip.gguf");

    GgufFile f(path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset(), data_start);
    ASSERT_EQ(f.metadata().size(), 9u);
    EXPECT_EQ(f.metadata()[2].first, "x.i32");  // file order kept
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.find("x.i32")->i, -7);
    EXPECT_EQ(f.get_float("x.f32"), 0.5);
    EXPECT_TRUE(f.get_bool("x.bool"));
    EXPECT_EQ(f.get_uint("x.u64"), 1ull << 40);
    EXPECT_EQ(f.get_float("x.f64"), 2.25);
    const auto& strs = f.get_array("x.strs", GgufValueType::STRING);
    ASSERT_EQ(strs.size(), 3u);
    EXPECT_EQ(strs[2].str, "h\xc3\xa9");
    EXPECT_EQ(f.get_array("x.i32s", GgufValueType::INT32)[1].i, -2);
    EXPECT_THROW(f.get_uint("x.i32"), lota::Error);        // negative
    EXPECT_THROW(f.get_string("x.f32"), lota::Error);      // wrong type
    EXPECT_THROW(f.get_array("x.strs", GgufValueType::INT32), lota::Error);
    EXPECT_THROW(f.get_uint("missing.key"), lota::Error);

    ASSERT_EQ(f.tensors().size(), 2u);
    const auto* w = f.find_tensor("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->shape(), (std::vector<int64_t>{2, 3}));
    at::Tensor tw = f.load_f32("w");
    EXPECT_EQ(tw.sizes().vec(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(tw[1][2].item<float>(), 6.0f);
    at::Tensor tq = f.load_f32("q");
    for (int j = 0; j < 32; ++j) EXPECT_EQ(tq[j].item<float>(), 0.5f * static_cast<float>(j - 16));
    EXPECT_THROW(f.load_f32("nope"), lota::Error);
}

TEST(gguf, RejectsBadMagic) {
    GgufBuilder b;
    b.raw("GGML", 4);
    b.u32(3);
    b.u64(0);
    b.u64(0);
    expect_rejected(b, "magic.gguf", "bad magic");
}

TEST(gguf, RejectsUnsupportedVersions) {
    GgufBuilder b;
    b.header(99, 0, 0);
    expect_rejected(b, "v99.gguf", "unsupported GGUF version 99");
    GgufBuilder v1;
    v1.header(1, 0, 0);
    expect_rejected(v1, "v1.gguf", "unsupported GGUF version 1");
    GgufBuilder be;
    be.header(0x03000000u, 0, 0);
    expect_rejected(be, "bigendian.gguf", "big-endian");
}

TEST(gguf, RejectsTruncatedHeader) {
    GgufBuilder b;
    b.raw("GGUF", 4);
    b.u32(3);
    b.u32(0);  // half of the tensor count
    expect_rejected(b, "trunc.gguf", "truncated GGUF at offset 8");
    GgufBuilder tiny;
    tiny.raw("GG", 2);
    expect_rejected(tiny, "tiny.gguf", "only 2 bytes");
    GgufBuilder mid;  // a key/value cut in the middle of its string
    mid.header(3, 0, 1);
    mid.u64(1000);
    mid.raw("abcdefghijklmnopqrst", 20);
    expect_rejected(mid, "midkey.gguf", "has length 1000, but only 20 bytes are left");
}

TEST(gguf, RejectsHugeCountsAndLengths) {
    GgufBuilder s;
    s.header(3, 0, 1);
    s.u64(1ull << 60);  // key length
    s.raw("abcdefgh", 8);
    expect_rejected(s, "hugestr.gguf", "has length 1152921504606846976");
    GgufBuilder a;
    a.header(3, 0, 1);
    a.key("arr", 9);
    a.u32(8);
    a.u64(1ull << 61);
    expect_rejected(a, "hugearr.gguf", "array of 2305843009213693952 string values");
    GgufBuilder kv;
    kv.header(3, 0, 1ull << 40);
    expect_rejected(kv, "hugekv.gguf", "metadata entries cannot fit");
    GgufBuilder t;
    t.header(3, 1ull << 50, 0);
    expect_rejected(t, "hugetensors.gguf", "tensors cannot fit");
    expect_rejected(one_tensor_file(0, {1ll << 40, 1ll << 40}, 0, 0), "overflowdims.gguf", "negative or overflowing");
    expect_rejected(one_tensor_file(0, {1ll << 20, 1ll << 20}, 0, 0), "hugedims.gguf", "runs past the end");
}

TEST(gguf, RejectsDuplicatesAndBadValues) {
    GgufBuilder b;
    b.header(3, 0, 2);
    b.kv_u32("a", 1);
    b.kv_u32("a", 2);
    expect_rejected(b, "dupkey.gguf", "duplicate metadata key 'a'");
    GgufBuilder t;
    t.header(3, 2, 0);
    t.tensor_info("t", {4}, 0, 0);
    t.tensor_info("t", {4}, 0, 32);
    t.pad_to(32);
    t.bytes.resize(t.bytes.size() + 64);
    expect_rejected(t, "duptensor.gguf", "duplicate tensor 't'");
    GgufBuilder vt;
    vt.header(3, 0, 1);
    vt.key("k", 13);
    expect_rejected(vt, "valuetype.gguf", "expected a value type 0..12");
    GgufBuilder bo;
    bo.header(3, 0, 1);
    bo.key("k", 7);
    bo.put<uint8_t>(7);
    expect_rejected(bo, "bool.gguf", "bool value 7");
    GgufBuilder al;
    al.header(3, 0, 1);
    al.kv_u32("general.alignment", 48);
    expect_rejected(al, "align.gguf", "expected a power of two");
}

TEST(gguf, RejectsBadTensorInfos) {
    expect_rejected(one_tensor_file(0, {4}, 0, 8), "pastend.gguf", "runs past the end of the file");
    expect_rejected(one_tensor_file(99, {4}, 0, 16), "unknowntype.gguf", "unknown ggml type 99");
    expect_rejected(one_tensor_file(0, {4}, 8, 64), "misaligned.gguf", "expected a multiple of the alignment 32");
    expect_rejected(one_tensor_file(2, {40}, 0, 64), "blocksize.gguf", "expected a multiple of Q4_0's block size 32");
    expect_rejected(one_tensor_file(0, {4, 1, 1, 1, 1}, 0, 16), "dims.gguf", "expected 1..4");
    expect_rejected(one_tensor_file(0, {-4}, 0, 16), "negdim.gguf", "negative or overflowing");
    // A type known for its size but not dequantizable loads as an error, not garbage.
    const std::string path = one_tensor_file(9, {32}, 0, 64).write("q8_1.gguf");
    GgufFile f(path);
    EXPECT_THROW(f.load_f32("t"), lota::Error);
}

TEST(gguf_dequant, HalfToFloatIsExact) {
    using lota::io::ggml_half_to_float;
    EXPECT_EQ(ggml_half_to_float(0x3C00), 1.0f);
    EXPECT_EQ(ggml_half_to_float(0xC000), -2.0f);
    EXPECT_EQ(ggml_half_to_float(0x7BFF), 65504.0f);
    EXPECT_EQ(ggml_half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    EXPECT_EQ(ggml_half_to_float(0x03FF), std::ldexp(1023.0f, -24));
    EXPECT_EQ(ggml_half_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
    EXPECT_TRUE(std::signbit(ggml_half_to_float(0x8000)));
    EXPECT_EQ(ggml_half_to_float(0x7C00), std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(ggml_half_to_float(0x7E00)));
}

TEST(gguf_dequant, Q4_0_Q4_1_Q8_0MatchTheFormulas) {
    // Q4_0: f16 d = 0.5, then 16 bytes; element j < 16 is the low nibble of byte j, j >= 16 the high
    // nibble of byte j - 16; y = d·(q − 8).
    std::vector<uint8_t> q40 = {0x00, 0x38};
    for (int j = 0; j < 16; ++j) q40.push_back(static_cast<uint8_t>((j & 0xF) | ((15 - j) << 4)));
    std::vector<float> y(32);
    lota::io::ggml_dequantize(GgmlType::Q4_0, q40.data(), 32, y.data(), "q4_0");
    for (int j = 0; j < 32; ++j) {
        const int q = j < 16 ? j : 15 - (j - 16);
        EXPECT_EQ(y[j], 0.5f * static_cast<float>(q - 8)) << j;
    }
    // Q4_1: f16 d = 0.25, f16 m = −1, same nibbles; y = d·q + m.
    std::vector<uint8_t> q41 = {0x00, 0x34, 0x00, 0xBC};
    q41.insert(q41.end(), q40.begin() + 2, q40.end());
    lota::io::ggml_dequantize(GgmlType::Q4_1, q41.data(), 32, y.data(), "q4_1");
    for (int j = 0; j < 32; ++j) {
        const int q = j < 16 ? j : 15 - (j - 16);
        EXPECT_EQ(y[j], 0.25f * static_cast<float>(q) - 1.0f) << j;
    }
    // Q8_0: two blocks; f16 d = 2 and 0.1 (0x2E66), int8 values; y = q·d.
    std::vector<uint8_t> q80;
    const uint16_t ds[2] = {0x4000, 0x2E66};
    for (int blk = 0; blk < 2; ++blk) {
        q80.push_back(static_cast<uint8_t>(ds[blk] & 0xFF));
        q80.push_back(static_cast<uint8_t>(ds[blk] >> 8));
        for (int j = 0; j < 32; ++j) q80.push_back(static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128)));
    }
    std::vector<float> y2(64);
    lota::io::ggml_dequantize(GgmlType::Q8_0, q80.data(), 64, y2.data(), "q8_0");
    for (int blk = 0; blk < 2; ++blk) {
        const float d = lota::io::ggml_half_to_float(ds[blk]);
        for (int j = 0; j < 32; ++j) EXPECT_EQ(y2[blk * 32 + j], static_cast<float>(j * 8 - 128) * d);
    }
    EXPECT_THROW(lota::io::ggml_dequantize(GgmlType::Q8_0, q80.data(), 33, y2.data(), "q8_0"), lota::Error);
}
