// Element types of safetensors and GGUF, and their decoding to floating point.
//
// A type encodes elements in blocks: plain types one element per block, GGUF's quantized types
// 32 or 256 elements per block with shared scales. Encoded runs must start on a block boundary;
// decode_range handles runs that start or end inside one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace wpf {

enum class DType : uint8_t {
    BOOL,
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F8_E4M3,
    F8_E5M2,
    F16,
    BF16,
    F32,
    F64,
    // GGUF (ggml) block types
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    IQ1_M,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0
};

// A safetensors dtype name; false if unknown (GGUF-only names are unknown there).
bool parse_safetensors_dtype(const std::string& name, DType& out);
// A ggml type id as GGUF stores it; false if unknown.
bool ggml_dtype(uint32_t id, DType& out);
// A decoded type's name, safetensors or ggml spelling; false if unknown or not decoded here.
bool parse_decoded_dtype(const std::string& name, DType& out);

const char* dtype_name(DType t);
size_t block_elements(DType t);  // elements per block (1 for plain types)
size_t block_bytes(DType t);     // bytes per block
// Whether the engine decodes and analyses tensors of this type: plain floats and the quantized
// types it has a decoder for (integer and bool tensors, and other quantized types, are only listed).
bool is_decoded(DType t);
// The names of the types the engine decodes, comma-separated (for error messages).
std::string decoded_dtypes();
// Bytes that n elements take; n must be a multiple of block_elements(t).
inline uint64_t encoded_bytes(DType t, uint64_t n) { return n / block_elements(t) * block_bytes(t); }

// Element j of a BF16 run at src (any alignment): exactly its bits << 16 as a float. Inline, so
// that the element-wise kernels read BF16 in place, vectorized.
inline double bf16_at(const uint8_t* src, size_t j) {
    uint16_t h;
    std::memcpy(&h, src + 2 * j, 2);
    return static_cast<double>(__builtin_bit_cast(float, static_cast<uint32_t>(h) << 16));
}

// Decodes n elements at src (any alignment, little-endian) to double or float; n must be a
// multiple of block_elements(t). Quantized types decode exactly as ggml's reference does (float
// arithmetic, no fused multiply-add), so float output is bit-identical to it.
void decode(DType t, const uint8_t* src, size_t n, double* dst);
void decode(DType t, const uint8_t* src, size_t n, float* dst);
// Decodes elements [first, first + n) of the encoded run starting at src; first and n need not
// fall on block boundaries.
void decode_range(DType t, const uint8_t* src, size_t first, size_t n, double* dst);
void decode_range(DType t, const uint8_t* src, size_t first, size_t n, float* dst);

// IEEE binary16 to float, exactly.
float half_to_float(uint16_t h);

// Whether none of n decoded values is NaN or Inf.
bool all_finite(const float* x, size_t n);
bool all_finite(const double* x, size_t n);

}  // namespace wpf
