// One tensor that lives in someone else's memory (an in-memory model's weight), presented as a
// one-tensor file so that the scheduler reads it like any checkpoint, in place, without a copy.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor_file.hpp"

namespace wpf {

class MemoryTensorFile : public TensorFile {
public:
    // ``bytes`` at ``data`` hold the tensor row-major; they must stay alive and unchanged while
    // this object exists (the bindings keep their owner alive). Throws FormatError naming
    // ``label`` if the dtype is unknown or the byte count does not match the shape.
    MemoryTensorFile(const std::string& label, const std::string& name, const std::string& dtype,
                     const std::vector<uint64_t>& shape, const uint8_t* data, uint64_t bytes);
    const char* format() const override { return "memory"; }
};

}  // namespace wpf
