#include "gguf.hpp"

#include <cstring>

#include "errors.hpp"
#include "utf8.hpp"

namespace wpf {

namespace {

enum ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12
};

// Encoded size of a scalar value type (0 for strings and arrays, whose size is variable).
uint64_t scalar_size(uint32_t type) {
    switch (type) {
        case U8:
        case I8:
        case BOOL: return 1;
        case U16:
        case I16: return 2;
        case U32:
        case I32:
        case F32: return 4;
        case U64:
        case I64:
        case F64: return 8;
        default: return 0;
    }
}

// The fewest bytes one value of a type can take: what bounds a declared count by the file size.
uint64_t min_size(uint32_t type) {
    if (type == STRING) return 8;
    if (type == ARRAY) return 12;
    return scalar_size(type);
}

constexpr int kMaxArrayDepth = 4;

}  // namespace

// Reads little-endian values from the map, every read checked against the end of the file.
class GgufFile::Cursor {
public:
    Cursor(const GgufFile& f) : f_(f), p_(f.map_.data()), size_(f.map_.size()) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }

    void need(uint64_t n, const std::string& what) const {
        if (n > left())
            f_.fail("", "truncated file: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                            std::to_string(pos_) + ", " + std::to_string(left()) + " left");
    }
    template <typename T>
    T read(const std::string& what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    void skip(uint64_t n, const std::string& what) {
        need(n, what);
        pos_ += n;
    }
    std::string string(const std::string& what) {
        const uint64_t n = read<uint64_t>(what + " length");
        need(n, what + " (" + std::to_string(n) + " bytes)");
        std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
        pos_ += n;
        return s;
    }
    // A declared count of items of at least `each` bytes must fit in what is left of the file,
    // so that nothing is ever reserved for a count the file cannot hold.
    void check_count(uint64_t count, uint64_t each, const std::string& what) const {
        if (each > 0 && count > left() / each)
            f_.fail("", what + " declares " + std::to_string(count) + " entries; the " + std::to_string(left()) +
                            " bytes left in the file cannot hold them");
    }

private:
    const GgufFile& f_;
    const uint8_t* p_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

GgufFile::GgufFile(const std::string& path) : TensorFile(path) {
    Cursor c(*this);
    if (map_.size() < 4 || std::memcmp(map_.data(), "GGUF", 4) != 0)
        fail("", "not a GGUF file (it does not start with the magic 'GGUF')");
    c.skip(4, "magic");
    version_ = c.read<uint32_t>("version");
    if (version_ == 0x02000000u || version_ == 0x03000000u) fail("", "big-endian GGUF is not supported");
    if (version_ != 2 && version_ != 3)
        fail("", "GGUF version " + std::to_string(version_) + " is not supported (versions 2 and 3 are)");
    const uint64_t tensor_count = c.read<uint64_t>("tensor count");
    const uint64_t kv_count = c.read<uint64_t>("metadata count");
    c.check_count(kv_count, 8 + 4 + 1, "the metadata table");
    c.check_count(tensor_count, 8 + 4 + 4 + 8, "the tensor table");
    read_metadata(c, kv_count);
    read_tensor_table(c, tensor_count);
}

void GgufFile::read_metadata(Cursor& c, uint64_t count) {
    for (uint64_t i = 0; i < count; ++i) {
        const std::string key = c.string("metadata key " + std::to_string(i));
        if (key.empty()) fail("", "metadata key " + std::to_string(i) + " is empty");
        if (!valid_utf8(key)) fail("", "metadata key " + std::to_string(i) + " is not valid UTF-8");
        const uint32_t type = c.read<uint32_t>("type of metadata '" + key + "'");
        GgufValue v = read_value(c, type, key, 0);
        if (!metadata_.emplace(key, std::move(v)).second) fail("", "metadata key '" + key + "' appears twice");
    }
    auto it = metadata_.find("general.alignment");
    if (it != metadata_.end()) {
        const GgufValue& a = it->second;
        if (a.kind != GgufValue::Kind::UInt || a.u == 0 || (a.u & (a.u - 1)) != 0)
            fail("", "general.alignment must be a power of two (an unsigned integer)");
        alignment_ = a.u;
    }
}

GgufValue GgufFile::read_value(Cursor& c, uint32_t type, const std::string& key, int depth) {
    GgufValue v;
    const std::string what = "metadata '" + key + "'";
    switch (type) {
        case U8: v.u = c.read<uint8_t>(what); break;
        case U16: v.u = c.read<uint16_t>(what); break;
        case U32: v.u = c.read<uint32_t>(what); break;
        case U64: v.u = c.read<uint64_t>(what); break;
        case I8:
            v.kind = GgufValue::Kind::Int;
            v.i = c.read<int8_t>(what);
            break;
        case I16:
            v.kind = GgufValue::Kind::Int;
            v.i = c.read<int16_t>(what);
            break;
        case I32:
            v.kind = GgufValue::Kind::Int;
            v.i = c.read<int32_t>(what);
            break;
        case I64:
            v.kind = GgufValue::Kind::Int;
            v.i = c.read<int64_t>(what);
            break;
        case F32:
            v.kind = GgufValue::Kind::Float;
            v.f = c.read<float>(what);
            break;
        case F64:
            v.kind = GgufValue::Kind::Float;
            v.f = c.read<double>(what);
            break;
        case BOOL: {
            const uint8_t b = c.read<uint8_t>(what);
            if (b > 1) fail("", what + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
            v.kind = GgufValue::Kind::Bool;
            v.b = b == 1;
            break;
        }
        case STRING:
            v.kind = GgufValue::Kind::String;
            v.s = c.string(what);
            break;
        case ARRAY: {
            if (depth >= kMaxArrayDepth)
                fail("", what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
            v.kind = GgufValue::Kind::Array;
            v.array_type = c.read<uint32_t>(what + " element type");
            v.array_count = c.read<uint64_t>(what + " element count");
            const uint64_t each = min_size(v.array_type);
            if (each == 0) fail("", what + ": unknown array element type " + std::to_string(v.array_type));
            c.check_count(v.array_count, each, what);
            const uint64_t scalar = scalar_size(v.array_type);
            const bool keep = scalar > 0 && v.array_type != BOOL && v.array_count <= kMaxKeptArray;
            if (scalar > 0 && !keep) {
                c.skip(v.array_count * scalar, what);  // fits: check_count bounded it
                break;
            }
            const bool vocabulary = v.array_type == STRING && depth == 0 && key == kVocabularyKey;
            for (uint64_t i = 0; i < v.array_count; ++i) {
                GgufValue item = read_value(c, v.array_type, key, depth + 1);
                if (vocabulary) v.strings.push_back(std::move(item.s));
                if (!keep) continue;
                v.numbers.push_back(item.kind == GgufValue::Kind::UInt  ? static_cast<double>(item.u)
                                    : item.kind == GgufValue::Kind::Int ? static_cast<double>(item.i)
                                                                        : item.f);
            }
            break;
        }
        default: fail("", what + ": unknown value type " + std::to_string(type));
    }
    return v;
}

void GgufFile::read_tensor_table(Cursor& c, uint64_t count) {
    for (uint64_t i = 0; i < count; ++i) {
        TensorInfo t;
        t.name = c.string("name of tensor " + std::to_string(i));
        if (t.name.empty()) fail("", "tensor " + std::to_string(i) + " has an empty name");
        if (!valid_utf8(t.name)) fail("", "the name of tensor " + std::to_string(i) + " is not valid UTF-8");
        const uint32_t dims = c.read<uint32_t>("dimension count");
        if (dims == 0 || dims > kMaxDims)
            fail(t.name, std::to_string(dims) + " dimensions (1 to " + std::to_string(kMaxDims) + " allowed)");
        std::vector<uint64_t> ne(dims);
        uint64_t numel = 1;
        for (uint32_t d = 0; d < dims; ++d) {
            ne[d] = c.read<uint64_t>("dimensions");
            if (ne[d] > static_cast<uint64_t>(INT64_MAX)) fail(t.name, "dimension " + std::to_string(d) + " overflows");
            if (ne[d] != 0 && numel > static_cast<uint64_t>(INT64_MAX) / ne[d]) fail(t.name, "element count overflows");
            numel *= ne[d];
        }
        const uint32_t type = c.read<uint32_t>("type");
        if (!ggml_dtype(type, t.dtype)) fail(t.name, "unknown ggml type " + std::to_string(type));
        if (ne[0] % block_elements(t.dtype) != 0)
            fail(t.name, "row length " + std::to_string(ne[0]) + " is not a multiple of " + dtype_name(t.dtype) +
                             "'s block of " + std::to_string(block_elements(t.dtype)));
        t.begin = c.read<uint64_t>("offset");
        if (t.begin % alignment_ != 0)
            fail(t.name, "data offset " + std::to_string(t.begin) + " is not a multiple of the alignment " +
                             std::to_string(alignment_));
        t.numel = numel;
        t.shape.assign(ne.rbegin(), ne.rend());                // GGUF lists the fastest dimension first
        const uint64_t bytes = encoded_bytes(t.dtype, numel);  // < 2^63 elements, blocks >= 1 byte each
        if (bytes / block_bytes(t.dtype) != numel / block_elements(t.dtype)) fail(t.name, "byte size overflows");
        t.end = t.begin + bytes;
        if (t.end < t.begin) fail(t.name, "data range overflows");
        add_tensor(std::move(t));
    }
    // The data section starts at the first aligned offset after the tensor table.
    const uint64_t table_end = c.pos();
    data_start_ = table_end + (alignment_ - table_end % alignment_) % alignment_;
    const uint64_t data_size = data_start_ <= map_.size() ? map_.size() - data_start_ : 0;
    if (data_start_ > map_.size() && !tensors_.empty())
        fail("", "truncated file: no data section after the tensor table");
    // As llama.cpp requires: tensors lie in table order, each at the aligned end of the one before.
    uint64_t expected = 0;
    for (const TensorInfo& t : tensors_) {
        if (t.begin != expected)
            fail(t.name, "data offset " + std::to_string(t.begin) + ", expected " + std::to_string(expected) +
                             " (tensors must follow each other in table order)");
        if (t.end > data_size)
            fail(t.name, "data [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                             ") runs past the end of the file: the data section has " + std::to_string(data_size) +
                             " bytes (truncated file?)");
        expected = t.end + (alignment_ - t.end % alignment_) % alignment_;
    }
}

}  // namespace wpf
