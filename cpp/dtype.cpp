#include "dtype.hpp"
#include "quants.hpp"
#include "simd.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace wpf {

namespace {

struct DTypeInfo {
    const char* name;
    size_t block_elements;
    size_t block_bytes;
    bool plain_float;  // decoded element by element (quantized types ask quants.cpp)
    bool safetensors;  // a safetensors dtype name
    int ggml_id;       // -1: not a GGUF type
};

// Block sizes of the ggml types as gguf-py's GGML_QUANT_SIZES lists them.
constexpr DTypeInfo kInfo[] = {
    {"BOOL", 1, 1, false, true, -1},        {"U8", 1, 1, false, true, -1},
    {"I8", 1, 1, false, true, 24},          {"I16", 1, 2, false, true, 25},
    {"U16", 1, 2, false, true, -1},         {"I32", 1, 4, false, true, 26},
    {"U32", 1, 4, false, true, -1},         {"I64", 1, 8, false, true, 27},
    {"U64", 1, 8, false, true, -1},         {"F8_E4M3", 1, 1, true, true, -1},
    {"F8_E5M2", 1, 1, true, true, -1},      {"F16", 1, 2, true, true, 1},
    {"BF16", 1, 2, true, true, 30},         {"F32", 1, 4, true, true, 0},
    {"F64", 1, 8, true, true, 28},          {"Q4_0", 32, 18, false, false, 2},
    {"Q4_1", 32, 20, false, false, 3},      {"Q5_0", 32, 22, false, false, 6},
    {"Q5_1", 32, 24, false, false, 7},      {"Q8_0", 32, 34, false, false, 8},
    {"Q8_1", 32, 40, false, false, 9},      {"Q2_K", 256, 84, false, false, 10},
    {"Q3_K", 256, 110, false, false, 11},   {"Q4_K", 256, 144, false, false, 12},
    {"Q5_K", 256, 176, false, false, 13},   {"Q6_K", 256, 210, false, false, 14},
    {"Q8_K", 256, 292, false, false, 15},   {"IQ2_XXS", 256, 66, false, false, 16},
    {"IQ2_XS", 256, 74, false, false, 17},  {"IQ3_XXS", 256, 98, false, false, 18},
    {"IQ1_S", 256, 50, false, false, 19},   {"IQ4_NL", 32, 18, false, false, 20},
    {"IQ3_S", 256, 110, false, false, 21},  {"IQ2_S", 256, 82, false, false, 22},
    {"IQ4_XS", 256, 136, false, false, 23}, {"IQ1_M", 256, 56, false, false, 29},
    {"TQ1_0", 256, 54, false, false, 34},   {"TQ2_0", 256, 66, false, false, 35},
    {"MXFP4", 32, 17, false, false, 39},    {"NVFP4", 64, 36, false, false, 40},
    {"Q1_0", 128, 18, false, false, 41},
};

const DTypeInfo& info(DType t) { return kInfo[static_cast<size_t>(t)]; }

// The first type whose table entry matches; false if none does.
template <typename Match>
bool find_dtype(Match&& match, DType& out) {
    for (size_t i = 0; i < std::size(kInfo); ++i) {
        if (match(kInfo[i], static_cast<DType>(i))) {
            out = static_cast<DType>(i);
            return true;
        }
    }
    return false;
}

}  // namespace

// Branch-free, so that loops over it vectorize: every case is computed and one is selected.
float half_to_float(uint16_t h) {
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t em = static_cast<uint32_t>(h & 0x7FFFu) << 13;
    const uint32_t normal = em + (112u << 23);  // rebias 15 -> 127
    const uint32_t special = em | 0x7F800000u;  // Inf and NaN keep their payload
    const uint32_t subnormal = __builtin_bit_cast(uint32_t, static_cast<float>(h & 0x3FFu) * 0x1p-24f);  // exact
    const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0), is_special = 0u - static_cast<uint32_t>(exp == 0x1F);
    const uint32_t bits = (subnormal & is_sub) | (special & is_special) | (normal & ~(is_sub | is_special));
    return __builtin_bit_cast(float, bits | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

namespace {

// OCP FP8 E4M3 ("fn"): bias 7, no infinities, S.1111.111 is NaN.
float e4m3_to_float(uint8_t v) {
    const bool neg = v & 0x80;
    const int exp = (v >> 3) & 0xF;
    const int mant = v & 0x7;
    float f;
    if (exp == 0xF && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
    if (exp == 0)
        f = std::ldexp(static_cast<float>(mant), -9);
    else
        f = std::ldexp(static_cast<float>(8 + mant), exp - 10);
    return neg ? -f : f;
}

// OCP FP8 E5M2: bias 15, IEEE-style infinities and NaNs.
float e5m2_to_float(uint8_t v) { return half_to_float(static_cast<uint16_t>(v) << 8); }

template <float (*F)(uint8_t)>
std::array<float, 256> make_table() {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = F(static_cast<uint8_t>(i));
    return t;
}

const std::array<float, 256>& e4m3_table() {
    static const auto t = make_table<e4m3_to_float>();
    return t;
}
const std::array<float, 256>& e5m2_table() {
    static const auto t = make_table<e5m2_to_float>();
    return t;
}

template <typename Raw>
Raw load(const uint8_t* p) {
    Raw r;
    std::memcpy(&r, p, sizeof(Raw));  // no alignment is assumed
    return r;
}

// The hot loops: compiled for AVX-512, AVX2/FMA and a portable baseline, picked at load time
// (simd.hpp).
template <typename Out>
WPF_MULTIVERSION void decode_bf16(const uint8_t* src, size_t n, Out* dst) {
    for (size_t i = 0; i < n; ++i) {
        const uint32_t bits = static_cast<uint32_t>(load<uint16_t>(src + 2 * i)) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        dst[i] = static_cast<Out>(f);
    }
}

template <typename Out>
WPF_MULTIVERSION void decode_f32(const uint8_t* src, size_t n, Out* dst) {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(load<float>(src + 4 * i));
}

// Quantized blocks are decoded to float (bit-exact with ggml), then widened.
void decode_quantized(DType t, const uint8_t* src, size_t n, float* dst) {
    decode_blocks(t, src, n / block_elements(t), dst);
}

void decode_quantized(DType t, const uint8_t* src, size_t n, double* dst) {
    float tmp[1024];  // a multiple of every block size
    const size_t per = 1024 / block_elements(t);
    for (size_t done = 0; done < n; done += per * block_elements(t)) {
        const size_t blocks = std::min(per, (n - done) / block_elements(t));
        decode_blocks(t, src + encoded_bytes(t, done), blocks, tmp);
        for (size_t i = 0; i < blocks * block_elements(t); ++i) dst[done + i] = tmp[i];
    }
}

template <typename Out>
WPF_MULTIVERSION void decode_f16(const uint8_t* src, size_t n, Out* dst) {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(half_to_float(load<uint16_t>(src + 2 * i)));
}

template <typename Out>
void decode_t(DType t, const uint8_t* src, size_t n, Out* dst) {
    if (has_block_decoder(t)) {
        decode_quantized(t, src, n, dst);
        return;
    }
    switch (t) {
        case DType::BF16: decode_bf16(src, n, dst); return;
        case DType::F32: decode_f32(src, n, dst); return;
        case DType::F64:
            for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(load<double>(src + 8 * i));
            return;
        case DType::F16: decode_f16(src, n, dst); return;
        case DType::F8_E4M3: {
            const auto& tab = e4m3_table();
            for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(tab[src[i]]);
            return;
        }
        case DType::F8_E5M2: {
            const auto& tab = e5m2_table();
            for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(tab[src[i]]);
            return;
        }
        default: throw std::invalid_argument(std::string("dtype ") + dtype_name(t) + " is not decoded by the engine");
    }
}

template <typename T>
WPF_MULTIVERSION bool all_finite_t(const T* x, size_t n) {
    size_t bad = 0;
#pragma omp simd reduction(+ : bad)
    for (size_t i = 0; i < n; ++i) bad += !(std::fabs(x[i]) <= std::numeric_limits<T>::max());
    return bad == 0;
}

template <typename Out>
void decode_range_t(DType t, const uint8_t* src, size_t first, size_t n, Out* dst) {
    const size_t b = block_elements(t);
    if (b == 1) {
        decode_t(t, src + first * block_bytes(t), n, dst);
        return;
    }
    // Partial blocks at either end go through a one-block buffer.
    Out one[256];
    size_t block = first / b, skip = first % b;
    while (n > 0) {
        const uint8_t* p = src + block * block_bytes(t);
        if (skip == 0 && n >= b) {
            const size_t whole = n / b;
            decode_t(t, p, whole * b, dst);
            dst += whole * b;
            n -= whole * b;
            block += whole;
            continue;
        }
        decode_t(t, p, b, one);
        const size_t take = std::min(n, b - skip);
        std::copy(one + skip, one + skip + take, dst);
        dst += take;
        n -= take;
        skip = 0;
        ++block;
    }
}

}  // namespace

bool parse_safetensors_dtype(const std::string& name, DType& out) {
    return find_dtype([&](const DTypeInfo& d, DType) { return d.safetensors && name == d.name; }, out);
}

bool ggml_dtype(uint32_t id, DType& out) {
    return find_dtype([&](const DTypeInfo& d, DType) { return d.ggml_id >= 0 && uint32_t(d.ggml_id) == id; }, out);
}

bool parse_decoded_dtype(const std::string& name, DType& out) {
    return find_dtype([&](const DTypeInfo& d, DType t) { return name == d.name && is_decoded(t); }, out);
}

const char* dtype_name(DType t) { return info(t).name; }
size_t block_elements(DType t) { return info(t).block_elements; }
size_t block_bytes(DType t) { return info(t).block_bytes; }
bool is_decoded(DType t) { return info(t).plain_float || has_block_decoder(t); }

std::string decoded_dtypes() {
    std::string out;
    for (size_t i = 0; i < std::size(kInfo); ++i)
        if (is_decoded(static_cast<DType>(i))) out += (out.empty() ? "" : ", ") + std::string(kInfo[i].name);
    return out;
}

void decode(DType t, const uint8_t* src, size_t n, double* dst) { decode_t(t, src, n, dst); }
void decode(DType t, const uint8_t* src, size_t n, float* dst) { decode_t(t, src, n, dst); }
void decode_range(DType t, const uint8_t* src, size_t first, size_t n, double* dst) {
    decode_range_t(t, src, first, n, dst);
}
void decode_range(DType t, const uint8_t* src, size_t first, size_t n, float* dst) {
    decode_range_t(t, src, first, n, dst);
}

bool all_finite(const float* x, size_t n) { return all_finite_t(x, n); }
bool all_finite(const double* x, size_t n) { return all_finite_t(x, n); }

}  // namespace wpf
