#include "dtype.hpp"
#include "simd.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace wpf {

namespace {

struct DTypeInfo {
    const char* name;
    size_t size;
    bool is_float;
};

constexpr DTypeInfo kInfo[] = {
    {"BOOL", 1, false}, {"U8", 1, false},      {"I8", 1, false},      {"I16", 2, false},
    {"U16", 2, false},  {"I32", 4, false},     {"U32", 4, false},     {"I64", 8, false},
    {"U64", 8, false},  {"F8_E4M3", 1, true},  {"F8_E5M2", 1, true},  {"F16", 2, true},
    {"BF16", 2, true},  {"F32", 4, true},      {"F64", 8, true},
};

float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else {
        // Subnormal or zero: exact as mant * 2^-24.
        float f = std::ldexp(static_cast<float>(mant), -24);
        return sign ? -f : f;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// OCP FP8 E4M3 ("fn"): bias 7, no infinities, S.1111.111 is NaN.
float e4m3_to_float(uint8_t v) {
    const bool neg = v & 0x80;
    const int exp = (v >> 3) & 0xF;
    const int mant = v & 0x7;
    float f;
    if (exp == 0xF && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
    if (exp == 0) f = std::ldexp(static_cast<float>(mant), -9);
    else f = std::ldexp(static_cast<float>(8 + mant), exp - 10);
    return neg ? -f : f;
}

// OCP FP8 E5M2: bias 15, IEEE-style infinities and NaNs.
float e5m2_to_float(uint8_t v) {
    return half_to_float(static_cast<uint16_t>(v) << 8);
}

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

// The hot loops: compiled for a portable baseline and for AVX2/FMA, picked at load time.
template <typename Out>
WPF_MULTIVERSION
void decode_bf16(const uint8_t* src, size_t n, Out* dst) {
    for (size_t i = 0; i < n; ++i) {
        const uint32_t bits = static_cast<uint32_t>(load<uint16_t>(src + 2 * i)) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        dst[i] = static_cast<Out>(f);
    }
}

template <typename Out>
WPF_MULTIVERSION
void decode_f32(const uint8_t* src, size_t n, Out* dst) {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(load<float>(src + 4 * i));
}

template <typename Out>
void decode_t(DType t, const uint8_t* src, size_t n, Out* dst) {
    switch (t) {
        case DType::BF16: decode_bf16(src, n, dst); return;
        case DType::F32: decode_f32(src, n, dst); return;
        case DType::F64:
            for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(load<double>(src + 8 * i));
            return;
        case DType::F16:
            for (size_t i = 0; i < n; ++i) dst[i] = static_cast<Out>(half_to_float(load<uint16_t>(src + 2 * i)));
            return;
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
        default:
            throw std::invalid_argument(std::string("dtype ") + dtype_name(t) + " is not a floating-point type");
    }
}

template <typename T>
WPF_MULTIVERSION
bool all_finite_t(const T* x, size_t n) {
    size_t bad = 0;
#pragma omp simd reduction(+ : bad)
    for (size_t i = 0; i < n; ++i) bad += !(std::fabs(x[i]) <= std::numeric_limits<T>::max());
    return bad == 0;
}

}  // namespace

bool parse_dtype(const std::string& name, DType& out) {
    for (size_t i = 0; i < std::size(kInfo); ++i) {
        if (name == kInfo[i].name) {
            out = static_cast<DType>(i);
            return true;
        }
    }
    return false;
}

const char* dtype_name(DType t) { return kInfo[static_cast<size_t>(t)].name; }
size_t dtype_size(DType t) { return kInfo[static_cast<size_t>(t)].size; }
bool is_float(DType t) { return kInfo[static_cast<size_t>(t)].is_float; }

void decode(DType t, const uint8_t* src, size_t n, double* dst) { decode_t(t, src, n, dst); }
void decode(DType t, const uint8_t* src, size_t n, float* dst) { decode_t(t, src, n, dst); }

bool all_finite(const float* x, size_t n) { return all_finite_t(x, n); }
bool all_finite(const double* x, size_t n) { return all_finite_t(x, n); }

}  // namespace wpf
