#include "memory_tensor.hpp"

#include <limits>

namespace wpf {

MemoryTensorFile::MemoryTensorFile(const std::string& label, const std::string& name, const std::string& dtype,
                                   const std::vector<uint64_t>& shape, const uint8_t* data, uint64_t bytes)
    : TensorFile(label, data, bytes) {
    TensorInfo t;
    t.name = name;
    if (!parse_safetensors_dtype(dtype, t.dtype)) fail(name, "unknown dtype '" + dtype + "'");
    t.shape = shape;
    t.numel = 1;
    for (uint64_t d : shape) {
        if (d != 0 && t.numel > std::numeric_limits<uint64_t>::max() / d) fail(name, "shape overflows 64 bits");
        t.numel *= d;
    }
    if (encoded_bytes(t.dtype, t.numel) != bytes)
        fail(name, std::to_string(bytes) + " bytes for " + std::to_string(t.numel) + " elements of " + dtype);
    t.begin = 0;
    t.end = bytes;
    add_tensor(std::move(t));
}

}  // namespace wpf
