#include "safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.hpp"
#include "json.hpp"

namespace wpf {

namespace {

uint64_t page_size() {
    static const uint64_t p = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    return p;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw FormatError(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw FormatError(path + ": not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw FormatError(path + ": cannot memory-map: " + std::strerror(err));
        }
        data_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(data_, size_);
}

void MappedFile::will_need(uint64_t offset, uint64_t len) const {
    if (!data_ || len == 0 || offset >= size_) return;
    const uint64_t start = offset / page_size() * page_size();
    const uint64_t stop = std::min(size_, offset + len);
    ::madvise(data_ + start, stop - start, MADV_WILLNEED);
    ::madvise(data_ + start, stop - start, MADV_SEQUENTIAL);
}

void MappedFile::release(uint64_t offset, uint64_t len) const {
    if (!data_ || len == 0 || offset >= size_) return;
    // Whole pages only: a neighbour's partial page is left resident rather than re-read.
    const uint64_t start = (offset + page_size() - 1) / page_size() * page_size();
    const uint64_t stop = std::min(size_, offset + len) / page_size() * page_size();
    if (stop > start) ::madvise(data_ + start, stop - start, MADV_DONTNEED);
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(path) {
    auto fail = [&](const std::string& tensor, const std::string& rule) -> void {
        throw FormatError(path_ + (tensor.empty() ? "" : ": tensor '" + tensor + "'") + ": " + rule);
    };
    const uint64_t size = map_.size();
    if (size < 8) fail("", "truncated file: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | map_.data()[i];
    if (header_len > kMaxHeaderSize)
        fail("", "header length " + std::to_string(header_len) + " exceeds the limit of 100000000 bytes");
    if (header_len > size - 8)
        fail("", "header length " + std::to_string(header_len) + " runs past the end of the file (" +
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
        if (entry.kind != json::Value::Kind::Object) fail(name, "entry is not an object");
        const json::Value* dtype = nullptr;
        const json::Value* shape = nullptr;
        const json::Value* offsets = nullptr;
        for (auto& [k, v] : entry.members) {
            if (k == "dtype") dtype = &v;
            else if (k == "shape") shape = &v;
            else if (k == "data_offsets") offsets = &v;
            else fail(name, "unknown field '" + k + "'");
        }
        if (!dtype || !shape || !offsets) fail(name, "entry needs dtype, shape and data_offsets");
        TensorInfo t;
        t.name = name;
        if (dtype->kind != json::Value::Kind::String || !parse_dtype(dtype->text, t.dtype))
            fail(name, "unknown dtype '" + (dtype->kind == json::Value::Kind::String ? dtype->text : "?") + "'");
        if (shape->kind != json::Value::Kind::Array) fail(name, "shape is not an array");
        uint64_t numel = 1;
        for (const auto& d : shape->items) {
            uint64_t dim;
            if (!d.as_u64(dim)) fail(name, "shape entry is not a non-negative integer");
            t.shape.push_back(dim);
            if (dim != 0 && numel > UINT64_MAX / dim) fail(name, "element count overflows");
            numel *= dim;
        }
        t.numel = numel;
        const uint64_t esize = dtype_size(t.dtype);
        if (numel > UINT64_MAX / esize) fail(name, "byte size overflows");
        if (offsets->kind != json::Value::Kind::Array || offsets->items.size() != 2 ||
            !offsets->items[0].as_u64(t.begin) || !offsets->items[1].as_u64(t.end))
            fail(name, "data_offsets is not a pair of non-negative integers");
        if (t.begin > t.end) fail(name, "data_offsets out of order (begin > end)");
        if (t.end > data_size)
            fail(name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                           ") out of range: the data section has " + std::to_string(data_size) + " bytes");
        if (t.end - t.begin != numel * esize)
            fail(name, "size mismatch: data_offsets span " + std::to_string(t.end - t.begin) + " bytes but shape x dtype is " +
                           std::to_string(numel * esize));
        by_name_[name] = tensors_.size();  // the JSON reader already rejected duplicate keys
        tensors_.push_back(std::move(t));
    }

    // The tensors must tile the data section exactly: no overlap, no hole, nothing after the last.
    std::vector<const TensorInfo*> order;
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t cursor = 0;
    const TensorInfo* prev = nullptr;
    for (const TensorInfo* t : order) {
        if (t->begin < cursor)
            fail(t->name, "data overlaps tensor '" + prev->name + "'");
        if (t->begin > cursor)
            fail(t->name, "hole of " + std::to_string(t->begin - cursor) + " bytes before this tensor's data");
        cursor = t->end;
        prev = t;
    }
    if (cursor != data_size)
        fail("", std::to_string(data_size - cursor) + " trailing bytes after the last tensor");
}

const TensorInfo& SafetensorsFile::tensor(const std::string& name) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) throw FormatError(path_ + ": no tensor named '" + name + "'");
    return tensors_[it->second];
}

}  // namespace wpf
