// GGUF reader; see gguf.h for the layout. Parses the header with a bounds-checked cursor over the
// mapping, then validates every tensor extent. Tensor data is only touched by load_f32.
#include "io/gguf.h"

#include <cstring>

#include <ATen/ATen.h>

#include "io/gguf_names.h"
#include "io/mapped_file.h"
#include "util/check.h"

namespace lota::io {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;        // arrays of arrays are legal; deeper nesting is corrupt
// Metadata array elements held in memory across the file (largest real vocabularies: ~1M).
constexpr uint64_t kMaxArrayElements = 8ull << 20;
const char* const kAlignmentKey = gguf_names::ALIGNMENT;

using ull = unsigned long long;

// Sizes of the fixed-size value types, 0 for string and array.
uint64_t scalar_size(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
        case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
        case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
        case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
        default: return 0;
    }
}

// The fewest bytes one value of type t occupies (to bound counts before allocating).
uint64_t min_value_size(GgufValueType t) {
    if (t == GgufValueType::STRING) return 8;
    if (t == GgufValueType::ARRAY) return 12;
    return scalar_size(t);
}

class Cursor {
  public:
    Cursor(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), data_(data), size_(size) {}
    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }

    void need(uint64_t n, const char* what) const {
        LOTA_CHECK(n <= left(), "%s: truncated GGUF at offset %llu: %s needs %llu bytes, only %llu left", path_.c_str(),
                   (ull)pos_, what, (ull)n, (ull)left());
    }
    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
        pos_ += sizeof(T);
        return v;
    }
    std::string read_string(const char* what) {
        const uint64_t at = pos_;
        const uint64_t n = read<uint64_t>(what);
        LOTA_CHECK(n <= left(), "%s: corrupt GGUF at offset %llu: %s has length %llu, but only %llu bytes are left",
                   path_.c_str(), (ull)at, what, (ull)n, (ull)left());
        std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
        pos_ += n;
        return s;
    }

  private:
    const std::string& path_;
    const uint8_t* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

struct Parser {
    const std::string& path;
    Cursor cur;
    uint64_t array_elements = 0;

    GgufValueType read_type(const char* what) {
        const uint64_t at = cur.pos();
        const uint32_t t = cur.read<uint32_t>(what);
        LOTA_CHECK(t <= static_cast<uint32_t>(GgufValueType::FLOAT64),
                   "%s: corrupt GGUF at offset %llu: %s is %u, expected a value type 0..12", path.c_str(), (ull)at,
                   what, t);
        return static_cast<GgufValueType>(t);
    }

    void read_scalar(GgufValue& v, const std::string& key) {
        const uint64_t at = cur.pos();
        switch (v.type) {
            case GgufValueType::UINT8: v.u = cur.read<uint8_t>("a u8 value"); break;
            case GgufValueType::UINT16: v.u = cur.read<uint16_t>("a u16 value"); break;
            case GgufValueType::UINT32: v.u = cur.read<uint32_t>("a u32 value"); break;
            case GgufValueType::UINT64: v.u = cur.read<uint64_t>("a u64 value"); break;
            case GgufValueType::INT8: v.i = cur.read<int8_t>("an i8 value"); break;
            case GgufValueType::INT16: v.i = cur.read<int16_t>("an i16 value"); break;
            case GgufValueType::INT32: v.i = cur.read<int32_t>("an i32 value"); break;
            case GgufValueType::INT64: v.i = cur.read<int64_t>("an i64 value"); break;
            case GgufValueType::FLOAT32: v.f = cur.read<float>("an f32 value"); break;
            case GgufValueType::FLOAT64: v.f = cur.read<double>("an f64 value"); break;
            case GgufValueType::BOOL: {
                v.u = cur.read<uint8_t>("a bool value");
                LOTA_CHECK(v.u <= 1, "%s: corrupt GGUF at offset %llu: key '%s' has bool value %llu, expected 0 or 1",
                           path.c_str(), (ull)at, key.c_str(), (ull)v.u);
                break;
            }
            case GgufValueType::STRING: v.str = cur.read_string("a string value"); break;
            default: LOTA_ASSERT(false, "not a scalar type");
        }
    }

    GgufValue read_value(GgufValueType type, const std::string& key, int depth) {
        GgufValue v;
        v.type = type;
        if (type != GgufValueType::ARRAY) {
            read_scalar(v, key);
            return v;
        }
        LOTA_CHECK(depth < kMaxArrayDepth, "%s: corrupt GGUF at offset %llu: key '%s' nests arrays deeper than %d",
                   path.c_str(), (ull)cur.pos(), key.c_str(), kMaxArrayDepth);
        v.elem_type = read_type("an array element type");
        const uint64_t at = cur.pos();
        const uint64_t count = cur.read<uint64_t>("an array length");
        const uint64_t min_size = min_value_size(v.elem_type);
        LOTA_CHECK(count <= cur.left() / min_size,
                   "%s: corrupt GGUF at offset %llu: key '%s' is an array of %llu %s values (at least %llu bytes), "
                   "but only %llu bytes are left",
                   path.c_str(), (ull)at, key.c_str(), (ull)count, gguf_value_type_name(v.elem_type).c_str(),
                   (ull)min_size, (ull)cur.left());
        array_elements += count;
        LOTA_CHECK(array_elements <= kMaxArrayElements,
                   "%s: GGUF metadata arrays hold more than %llu elements in total (at key '%s', offset %llu)",
                   path.c_str(), (ull)kMaxArrayElements, key.c_str(), (ull)at);
        v.array.reserve(count);
        for (uint64_t k = 0; k < count; ++k) v.array.push_back(read_value(v.elem_type, key, depth + 1));
        return v;
    }
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

std::string gguf_value_type_name(GgufValueType type) {
    static const char* const names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                        "bool",  "string", "array", "uint64", "int64",  "float64"};
    const auto t = static_cast<uint32_t>(type);
    return t < 13 ? names[t] : strfmt("type %u", t);
}

bool GgufValue::is_integer() const {
    return type != GgufValueType::FLOAT32 && type != GgufValueType::FLOAT64 && type != GgufValueType::BOOL &&
           type != GgufValueType::STRING && type != GgufValueType::ARRAY;
}

std::vector<int64_t> GgufTensorInfo::shape() const { return std::vector<int64_t>(ne.rbegin(), ne.rend()); }

GgufFile::~GgufFile() = default;

GgufFile::GgufFile(const std::string& path) : path_(path), file_(std::make_unique<MappedFile>(path)) {
    const char* p = path.c_str();
    Parser ps{path, Cursor(path, file_->data(), file_->size())};
    Cursor& cur = ps.cur;

    LOTA_CHECK(file_->size() >= 4, "%s: not a GGUF file: only %llu bytes, expected at least 4 (magic \"GGUF\")", p,
               (ull)file_->size());
    const uint32_t magic = cur.read<uint32_t>("the magic");
    LOTA_CHECK(magic == kMagic, "%s: not a GGUF file: bad magic 0x%08x at offset 0, expected \"GGUF\" (0x%08x)", p,
               magic, kMagic);
    version_ = cur.read<uint32_t>("the version");
    LOTA_CHECK(version_ != 0x02000000u && version_ != 0x03000000u,
               "%s: GGUF at offset 4 is big-endian (version %u byte-swapped); only little-endian files are supported",
               p, version_ >> 24);
    LOTA_CHECK(version_ == 2 || version_ == 3, "%s: unsupported GGUF version %u at offset 4, expected 2 or 3", p,
               version_);
    const uint64_t n_tensors = cur.read<uint64_t>("the tensor count");
    const uint64_t n_kv = cur.read<uint64_t>("the metadata count");
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least
    // 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
    LOTA_CHECK(n_kv <= cur.left() / 13, "%s: corrupt GGUF at offset 16: %llu metadata entries cannot fit in %llu bytes",
               p, (ull)n_kv, (ull)cur.left());
    LOTA_CHECK(n_tensors <= cur.left() / 24, "%s: corrupt GGUF at offset 8: %llu tensors cannot fit in %llu bytes", p,
               (ull)n_tensors, (ull)cur.left());

    metadata_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) {
        const uint64_t at = cur.pos();
        std::string key = cur.read_string("a metadata key");
        LOTA_CHECK(!key.empty(), "%s: corrupt GGUF at offset %llu: metadata key %llu is empty", p, (ull)at, (ull)k);
        LOTA_CHECK(index_.count(key) == 0, "%s: corrupt GGUF at offset %llu: duplicate metadata key '%s'", p, (ull)at,
                   key.c_str());
        const GgufValueType type = ps.read_type("a metadata value type");
        GgufValue v = ps.read_value(type, key, 0);
        index_[key] = metadata_.size();
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    if (const GgufValue* a = find(kAlignmentKey)) {
        LOTA_CHECK(a->type == GgufValueType::UINT32, "%s: %s has type %s, expected uint32", p, kAlignmentKey,
                   gguf_value_type_name(a->type).c_str());
        LOTA_CHECK(a->u != 0 && (a->u & (a->u - 1)) == 0, "%s: %s is %llu, expected a power of two", p, kAlignmentKey,
                   (ull)a->u);
        alignment_ = a->u;
    }

    tensors_.reserve(n_tensors);
    for (uint64_t k = 0; k < n_tensors; ++k) {
        const uint64_t at = cur.pos();
        GgufTensorInfo t;
        t.name = cur.read_string("a tensor name");
        LOTA_CHECK(tensor_index_.count(t.name) == 0, "%s: corrupt GGUF at offset %llu: duplicate tensor '%s'", p,
                   (ull)at, t.name.c_str());
        const uint32_t n_dims = cur.read<uint32_t>("a tensor's dimension count");
        LOTA_CHECK(n_dims >= 1 && n_dims <= kMaxDims,
                   "%s: corrupt GGUF at offset %llu: tensor '%s' has %u dimensions, expected 1..%u", p, (ull)at,
                   t.name.c_str(), n_dims, kMaxDims);
        t.n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const int64_t ne = cur.read<int64_t>("a tensor dimension");
            LOTA_CHECK(ne >= 0 && (ne == 0 || t.n_elements <= INT64_MAX / ne),
                       "%s: corrupt GGUF at offset %llu: tensor '%s' dimension %u is %lld (negative or overflowing)",
                       p, (ull)at, t.name.c_str(), d, (long long)ne);
            t.ne.push_back(ne);
            t.n_elements *= ne;
        }
        const uint64_t type_at = cur.pos();
        const uint32_t type_id = cur.read<uint32_t>("a tensor type");
        const GgmlTypeInfo* info = ggml_type_find(type_id);
        LOTA_CHECK(info != nullptr, "%s: tensor '%s' at offset %llu has unknown ggml type %u (known: %s, I8..F64)", p,
                   t.name.c_str(), (ull)type_at, type_id, ggml_type_list_dequantizable().c_str());
        t.type = info->type;
        t.offset = cur.read<uint64_t>("a tensor data offset");
        LOTA_CHECK(t.ne[0] % info->block_size == 0,
                   "%s: tensor '%s' (offset %llu) has %lld elements per row, expected a multiple of %s's block size %u",
                   p, t.name.c_str(), (ull)at, (long long)t.ne[0], info->name, info->block_size);
        t.n_bytes = static_cast<uint64_t>(t.n_elements / info->block_size) * info->type_size;
        LOTA_CHECK(t.offset % alignment_ == 0,
                   "%s: tensor '%s' has data offset %llu, expected a multiple of the alignment %llu", p,
                   t.name.c_str(), (ull)t.offset, (ull)alignment_);
        tensor_index_[t.name] = tensors_.size();
        tensors_.push_back(std::move(t));
    }

    data_offset_ = align_up(cur.pos(), alignment_);
    const uint64_t size = file_->size();
    for (const auto& t : tensors_) {
        const uint64_t avail = data_offset_ <= size ? size - data_offset_ : 0;
        LOTA_CHECK(t.offset <= avail && t.n_bytes <= avail - t.offset,
                   "%s: tensor '%s' data [%llu, %llu) runs past the end of the file (%llu bytes; data starts at %llu)",
                   p, t.name.c_str(), (ull)(data_offset_ + t.offset), (ull)(data_offset_ + t.offset + t.n_bytes),
                   (ull)size, (ull)data_offset_);
    }
}

const GgufValue* GgufFile::find(const std::string& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &metadata_[it->second].second;
}

namespace {
const GgufValue& gguf_require(const GgufFile& f, const std::string& key) {
    const GgufValue* v = f.find(key);
    LOTA_CHECK(v != nullptr, "%s: GGUF metadata key '%s' is missing", f.path().c_str(), key.c_str());
    return *v;
}
}  // namespace

const std::string& GgufFile::get_string(const std::string& key) const {
    const GgufValue& v = gguf_require(*this, key);
    LOTA_CHECK(v.type == GgufValueType::STRING, "%s: GGUF key '%s' has type %s, expected string", path_.c_str(),
               key.c_str(), gguf_value_type_name(v.type).c_str());
    return v.str;
}

uint64_t GgufFile::get_uint(const std::string& key) const {
    const GgufValue& v = gguf_require(*this, key);
    LOTA_CHECK(v.is_integer(), "%s: GGUF key '%s' has type %s, expected an integer", path_.c_str(), key.c_str(),
               gguf_value_type_name(v.type).c_str());
    const bool is_signed = v.type == GgufValueType::INT8 || v.type == GgufValueType::INT16 ||
                           v.type == GgufValueType::INT32 || v.type == GgufValueType::INT64;
    if (!is_signed) return v.u;
    LOTA_CHECK(v.i >= 0, "%s: GGUF key '%s' is %lld, expected a non-negative integer", path_.c_str(), key.c_str(),
               (long long)v.i);
    return static_cast<uint64_t>(v.i);
}

double GgufFile::get_float(const std::string& key) const {
    const GgufValue& v = gguf_require(*this, key);
    LOTA_CHECK(v.is_float(), "%s: GGUF key '%s' has type %s, expected float32 or float64", path_.c_str(), key.c_str(),
               gguf_value_type_name(v.type).c_str());
    return v.f;
}

bool GgufFile::get_bool(const std::string& key) const {
    const GgufValue& v = gguf_require(*this, key);
    LOTA_CHECK(v.type == GgufValueType::BOOL, "%s: GGUF key '%s' has type %s, expected bool", path_.c_str(),
               key.c_str(), gguf_value_type_name(v.type).c_str());
    return v.u != 0;
}

const std::vector<GgufValue>& GgufFile::get_array(const std::string& key, GgufValueType elem) const {
    const GgufValue& v = gguf_require(*this, key);
    LOTA_CHECK(v.type == GgufValueType::ARRAY && v.elem_type == elem, "%s: GGUF key '%s' has type %s%s, expected array[%s]",
               path_.c_str(), key.c_str(), gguf_value_type_name(v.type).c_str(),
               v.type == GgufValueType::ARRAY ? ("[" + gguf_value_type_name(v.elem_type) + "]").c_str() : "",
               gguf_value_type_name(elem).c_str());
    return v.array;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& t) const {
    return file_->data() + data_offset_ + t.offset;
}

at::Tensor GgufFile::load_f32(const std::string& name) const {
    const GgufTensorInfo* t = find_tensor(name);
    LOTA_CHECK(t != nullptr, "%s: GGUF has no tensor '%s'", path_.c_str(), name.c_str());
    at::Tensor out = at::empty(t->shape(), at::TensorOptions().dtype(at::kFloat));
    ggml_dequantize(t->type, tensor_data(*t), t->n_elements, out.data_ptr<float>(),
                    strfmt("%s: tensor '%s'", path_.c_str(), name.c_str()));
    return out;
}

}  // namespace lota::io
