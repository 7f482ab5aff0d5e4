// Element types of safetensors and their decoding to floating point.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace wpf {

enum class DType : uint8_t {
    BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F8_E4M3, F8_E5M2, F16, BF16, F32, F64
};

// Parses a safetensors dtype name; false if unknown.
bool parse_dtype(const std::string& name, DType& out);
const char* dtype_name(DType t);
size_t dtype_size(DType t);
// Floating-point types are analysed; integer and bool tensors are only listed.
bool is_float(DType t);

// Decodes n little-endian elements at src (any alignment) to double.
void decode(DType t, const uint8_t* src, size_t n, double* dst);
// Decodes n elements to float (F64 is rounded).
void decode(DType t, const uint8_t* src, size_t n, float* dst);

// Whether none of n decoded values is NaN or Inf.
bool all_finite(const float* x, size_t n);
bool all_finite(const double* x, size_t n);

}  // namespace wpf
