// The safetensors format, enforced in one place: a memory-mapped shard whose header has been
// checked against every rule of the format before any tensor byte is touched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dtype.hpp"

namespace wpf {

struct TensorInfo {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;
    uint64_t numel;
    uint64_t begin;  // byte offsets relative to the start of the data section
    uint64_t end;
};

// A read-only memory map of a whole file. Pages are advised in and released as work moves on,
// so a file larger than RAM streams through with bounded resident memory.
class MappedFile {
public:
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    // Ask the kernel to read [offset, offset + len) ahead, sequentially.
    void will_need(uint64_t offset, uint64_t len) const;
    // Drop [offset, offset + len) from this process's resident set; the file is unchanged.
    void release(uint64_t offset, uint64_t len) const;

private:
    uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

// One validated safetensors file.
class SafetensorsFile {
public:
    // Throws FormatError naming the file, the tensor and the broken rule.
    explicit SafetensorsFile(const std::string& path);

    const std::string& path() const { return path_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in header order
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const TensorInfo& tensor(const std::string& name) const;
    // Start of a tensor's bytes inside the map (validated to lie inside the file).
    const uint8_t* tensor_data(const TensorInfo& t) const { return map_.data() + data_start_ + t.begin; }
    uint64_t file_offset(const TensorInfo& t) const { return data_start_ + t.begin; }
    const MappedFile& map() const { return map_; }

    static constexpr uint64_t kMaxHeaderSize = 100'000'000;

private:
    std::string path_;
    MappedFile map_;
    uint64_t data_start_ = 0;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t> by_name_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace wpf
