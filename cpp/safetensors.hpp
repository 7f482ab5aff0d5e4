// The safetensors format, enforced in one place: a memory-mapped shard whose header has been
// checked against every rule of the format before any tensor byte is touched.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "json.hpp"
#include "tensor_file.hpp"

namespace wpf {

// One validated safetensors file.
class SafetensorsFile : public TensorFile {
public:
    // Throws FormatError naming the file, the tensor and the broken rule.
    explicit SafetensorsFile(const std::string& path);

    const char* format() const override { return "safetensors"; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    static constexpr uint64_t kMaxHeaderSize = 100'000'000;
    static constexpr size_t kMaxDims = 64;

private:
    void read_header();
    TensorInfo parse_entry(const std::string& name, const json::Value& entry, uint64_t data_size) const;
    void check_tiling() const;

    std::map<std::string, std::string> metadata_;
};

}  // namespace wpf
