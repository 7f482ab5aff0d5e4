// ggml's quantized block formats, decoded as its reference implementation does.
#pragma once
#include <cstddef>
#include <cstdint>

#include "dtype.hpp"

namespace wpf {

// Whether the engine has a decoder for this block type.
bool has_block_decoder(DType t);

// Decodes `blocks` whole blocks of type t at src into blocks * block_elements(t) floats. Each
// value is computed in float in ggml's order of operations (this file is compiled without
// floating-point contraction), so the output matches ggml and gguf-py bit for bit.
void decode_blocks(DType t, const uint8_t* src, size_t blocks, float* dst);

}  // namespace wpf
