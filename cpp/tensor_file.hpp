// What every checkpoint format reader produces: a memory-mapped file whose tensor table has been
// checked against its format's rules, so that the scheduler can take windows of any tensor in
// it without knowing the format.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "mapped_file.hpp"

namespace wpf {

struct TensorInfo {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;  // row-major: slowest dimension first
    uint64_t numel;
    uint64_t begin;  // byte offsets relative to the start of the data section
    uint64_t end;
};

class TensorFile {
public:
    virtual ~TensorFile() = default;
    TensorFile(const TensorFile&) = delete;
    TensorFile& operator=(const TensorFile&) = delete;

    const std::string& path() const { return path_; }
    virtual const char* format() const = 0;
    const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in the file's order
    // Throws FormatError if there is no such tensor.
    const TensorInfo& tensor(const std::string& name) const;
    // Start of a tensor's bytes inside the map (validated to lie inside the file).
    const uint8_t* tensor_data(const TensorInfo& t) const { return map_.data() + data_start_ + t.begin; }
    const MappedFile& map() const { return map_; }

protected:
    explicit TensorFile(const std::string& path) : path_(path), map_(path) {}
    // Over borrowed memory (see MappedFile); ``path`` only names it in errors.
    TensorFile(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), map_(data, size) {}
    // Throws FormatError naming the file, the tensor (if any) and the broken rule.
    [[noreturn]] void fail(const std::string& tensor, const std::string& rule) const;
    // Appends a tensor; a second tensor of the same name is an error.
    void add_tensor(TensorInfo t);

    std::string path_;
    MappedFile map_;
    uint64_t data_start_ = 0;
    std::vector<TensorInfo> tensors_;

private:
    std::map<std::string, size_t> by_name_;
};

}  // namespace wpf
