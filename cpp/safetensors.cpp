#include "safetensors.hpp"

#include <algorithm>

#include "errors.hpp"
#include "json.hpp"

namespace wpf {

SafetensorsFile::SafetensorsFile(const std::string& path) : TensorFile(path) {
    read_header();
    check_tiling();
}

void SafetensorsFile::read_header() {
    const uint64_t size = map_.size();
    if (size < 8) fail("", "truncated file: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | map_.data()[i];
    // The length itself is not printed: for a file that is not safetensors it is just its first
    // eight bytes, which an error message should not leak.
    if (header_len > kMaxHeaderSize)
        fail("",
             "not a safetensors file: the header length in its first 8 bytes exceeds the limit of 100000000 "
             "bytes");
    if (header_len > size - 8)
        fail("",
             "not a safetensors file, or a truncated one: the header length in its first 8 bytes runs past "
             "the end of the file (" +
                 std::to_string(size) + " bytes)");
    data_start_ = 8 + header_len;
    const uint64_t data_size = size - data_start_;

    json::Value root;
    try {
        root = json::parse(std::string_view(reinterpret_cast<const char*>(map_.data() + 8), header_len));
    } catch (const std::runtime_error& e) {
        fail("", std::string("header is not valid JSON: ") + e.what());
    }
    if (root.kind != json::Value::Kind::Object) fail("", "header is not a JSON object");

    for (auto& [name, entry] : root.members) {
        if (name == "__metadata__") {
            if (entry.kind != json::Value::Kind::Object) fail("", "__metadata__ is not an object");
            for (auto& [k, v] : entry.members) {
                if (v.kind != json::Value::Kind::String) fail("", "__metadata__ value of '" + k + "' is not a string");
                metadata_[k] = v.text;
            }
            continue;
        }
        add_tensor(parse_entry(name, entry, data_size));  // the JSON reader already rejected duplicate keys
    }
}

TensorInfo SafetensorsFile::parse_entry(const std::string& name, const json::Value& entry, uint64_t data_size) const {
    if (entry.kind != json::Value::Kind::Object) fail(name, "entry is not an object");
    const json::Value* dtype = nullptr;
    const json::Value* shape = nullptr;
    const json::Value* offsets = nullptr;
    for (auto& [k, v] : entry.members) {
        if (k == "dtype")
            dtype = &v;
        else if (k == "shape")
            shape = &v;
        else if (k == "data_offsets")
            offsets = &v;
        else
            fail(name, "unknown field '" + k + "'");
    }
    if (!dtype || !shape || !offsets) fail(name, "entry needs dtype, shape and data_offsets");
    TensorInfo t;
    t.name = name;
    if (dtype->kind != json::Value::Kind::String || !parse_safetensors_dtype(dtype->text, t.dtype))
        fail(name, "unknown dtype '" + (dtype->kind == json::Value::Kind::String ? dtype->text : "?") + "'");
    if (shape->kind != json::Value::Kind::Array) fail(name, "shape is not an array");
    // NumPy, and so every reader of these arrays, stops at 64 dimensions.
    if (shape->items.size() > kMaxDims)
        fail(name, "shape has " + std::to_string(shape->items.size()) + " dimensions; at most " +
                       std::to_string(kMaxDims) + " are read");
    uint64_t numel = 1;
    for (const auto& d : shape->items) {
        uint64_t dim;
        if (!d.as_u64(dim)) fail(name, "shape entry is not a non-negative integer");
        t.shape.push_back(dim);
        if (dim != 0 && numel > UINT64_MAX / dim) fail(name, "element count overflows");
        numel *= dim;
    }
    t.numel = numel;
    const uint64_t esize = block_bytes(t.dtype);  // safetensors types are one element per block
    if (numel > UINT64_MAX / esize) fail(name, "byte size overflows");
    if (offsets->kind != json::Value::Kind::Array || offsets->items.size() != 2 || !offsets->items[0].as_u64(t.begin) ||
        !offsets->items[1].as_u64(t.end))
        fail(name, "data_offsets is not a pair of non-negative integers");
    if (t.begin > t.end) fail(name, "data_offsets out of order (begin > end)");
    if (t.end > data_size)
        fail(name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                       ") out of range: the data section has " + std::to_string(data_size) + " bytes");
    if (t.end - t.begin != numel * esize)
        fail(name, "size mismatch: data_offsets span " + std::to_string(t.end - t.begin) +
                       " bytes but shape x dtype is " + std::to_string(numel * esize));
    return t;
}

// The tensors must tile the data section exactly: no overlap, no hole, nothing after the last.
void SafetensorsFile::check_tiling() const {
    std::vector<const TensorInfo*> order;
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t cursor = 0;
    const TensorInfo* prev = nullptr;
    for (const TensorInfo* t : order) {
        if (t->begin < cursor) fail(t->name, "data overlaps tensor '" + prev->name + "'");
        if (t->begin > cursor)
            fail(t->name, "hole of " + std::to_string(t->begin - cursor) + " bytes before this tensor's data");
        cursor = t->end;
        prev = t;
    }
    const uint64_t data_size = map_.size() - data_start_;
    if (cursor != data_size) fail("", std::to_string(data_size - cursor) + " trailing bytes after the last tensor");
}

}  // namespace wpf
