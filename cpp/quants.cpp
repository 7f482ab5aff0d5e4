// Block layouts follow ggml-common.h; value formulas follow ggml-quants.c (dequantize_row_*).
#include "quants.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include "simd.hpp"

namespace wpf {

namespace {

constexpr int QK_K = 256;
// IQ4's non-linear code book (kvalues_iq4nl), as floats: every entry is exact.
constexpr float kIq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

inline float f16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return half_to_float(h);
}

inline uint32_t u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Q4_0: f16 d, 16 bytes of nibbles; low nibbles are elements 0-15, high ones 16-31.
WPF_MULTIVERSION
void q4_0(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 18, y += 32) {
        const float d = f16(b);
        const uint8_t* qs = b + 2;
        for (int j = 0; j < 16; ++j) y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
        for (int j = 0; j < 16; ++j) y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
    }
}

// Q4_1: f16 d, f16 m, 16 bytes of nibbles; x = d q + m.
WPF_MULTIVERSION
void q4_1(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 20, y += 32) {
        const float d = f16(b), m = f16(b + 2);
        const uint8_t* qs = b + 4;
        for (int j = 0; j < 16; ++j) y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
        for (int j = 0; j < 16; ++j) y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
    }
}

// Q5_0: f16 d, 32 high bits, 16 bytes of nibbles; q - 16.
WPF_MULTIVERSION
void q5_0(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 22, y += 32) {
        const float d = f16(b);
        const uint32_t qh = u32(b + 2);
        const uint8_t* qs = b + 6;
        for (int j = 0; j < 16; ++j) {
            const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
            const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
            y[j] = d * static_cast<float>(lo - 16);
            y[j + 16] = d * static_cast<float>(hi - 16);
        }
    }
}

// Q5_1: f16 d, f16 m, 32 high bits, 16 bytes of nibbles; x = d q + m.
WPF_MULTIVERSION
void q5_1(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 24, y += 32) {
        const float d = f16(b), m = f16(b + 2);
        const uint32_t qh = u32(b + 4);
        const uint8_t* qs = b + 8;
        for (int j = 0; j < 16; ++j) {
            const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
            const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
            y[j] = d * static_cast<float>(lo) + m;
            y[j + 16] = d * static_cast<float>(hi) + m;
        }
    }
}

// Q8_0: f16 d, 32 signed bytes.
WPF_MULTIVERSION
void q8_0(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 34, y += 32) {
        const float d = f16(b);
        const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
    }
}

// Q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit values, f16 d, f16 dmin.
// Element h*128 + s*32 + l is bits 2s of byte h*32 + l; each 16 elements share a scale.
WPF_MULTIVERSION
void q2_k(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 84) {
        const uint8_t* sc = b;
        const float d = f16(b + 80), dmin = f16(b + 82);
        for (int h = 0; h < 2; ++h) {
            const uint8_t* qs = b + 16 + 32 * h;
            for (int s = 0; s < 4; ++s) {
                for (int g = 0; g < 2; ++g, y += 16, ++sc) {
                    const float dl = d * static_cast<float>(*sc & 0x0F);
                    const float ml = dmin * static_cast<float>(*sc >> 4);
                    for (int l = 0; l < 16; ++l) y[l] = dl * static_cast<float>((qs[16 * g + l] >> (2 * s)) & 3) - ml;
                }
            }
        }
    }
}

// Q3_K: 32 bytes of high bits (set bit: no -4 offset), 64 bytes of 2-bit values, 12 bytes of
// 6-bit scales, f16 d. Low bits as Q2_K's; element j*32 + l has its high bit at bit j of byte l.
WPF_MULTIVERSION
void q3_k(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 110) {
        const uint8_t* hmask = b;
        const uint8_t* s = b + 96;
        const float d = f16(b + 108);
        float dl[16];
        for (int j = 0; j < 16; ++j) {
            const int low = j < 8 ? s[j] & 0x0F : s[j - 8] >> 4;
            const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
            dl[j] = d * static_cast<float>(static_cast<int8_t>(low | (high << 4)) - 32);
        }
        for (int h = 0; h < 2; ++h) {
            const uint8_t* qs = b + 32 + 32 * h;
            for (int sh = 0; sh < 4; ++sh) {
                const int bit = 4 * h + sh;
                for (int g = 0; g < 2; ++g, y += 16) {
                    const float scale = dl[2 * bit + g];
                    for (int l = 0; l < 16; ++l) {
                        const int q = (qs[16 * g + l] >> (2 * sh)) & 3;
                        const int hb = (hmask[16 * g + l] >> bit) & 1;
                        y[l] = scale * static_cast<float>(q - 4 + 4 * hb);
                    }
                }
            }
        }
    }
}

// The 6-bit scales and mins of Q4_K and Q5_K, packed in 12 bytes.
inline void scale_min_k4(const uint8_t* s, uint8_t* sc, uint8_t* m) {
    for (int j = 0; j < 4; ++j) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = static_cast<uint8_t>((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
        m[j + 4] = static_cast<uint8_t>((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
    }
}

// Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles; 8 sub-blocks of 32.
WPF_MULTIVERSION
void q4_k(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 144, y += QK_K) {
        const float d = f16(b), dmin = f16(b + 2);
        uint8_t sc[8], m[8];
        scale_min_k4(b + 4, sc, m);
        const uint8_t* qs = b + 16;
        for (int j = 0; j < 8; ++j) {
            const float d1 = d * static_cast<float>(sc[j]), m1 = dmin * static_cast<float>(m[j]);
            const uint8_t* q = qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; ++l) y[32 * j + l] = d1 * static_cast<float>((q[l] >> shift) & 0x0F) - m1;
        }
    }
}

// Q5_K: Q4_K plus 32 bytes of fifth bits, bit j of byte l for element l of sub-block j.
WPF_MULTIVERSION
void q5_k(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 176, y += QK_K) {
        const float d = f16(b), dmin = f16(b + 2);
        uint8_t sc[8], m[8];
        scale_min_k4(b + 4, sc, m);
        const uint8_t* qh = b + 16;
        const uint8_t* qs = b + 48;
        for (int j = 0; j < 8; ++j) {
            const float d1 = d * static_cast<float>(sc[j]), m1 = dmin * static_cast<float>(m[j]);
            const uint8_t* q = qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; ++l) {
                const int v = ((q[l] >> shift) & 0x0F) | (((qh[l] >> j) & 1) << 4);
                y[32 * j + l] = d1 * static_cast<float>(v) - m1;
            }
        }
    }
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed scales, f16 d; q - 32.
// Element h*128 + s*32 + l: low nibble (4 * (s / 2)) of byte h*64 + (s % 2)*32 + l, high bits 2s
// of byte h*32 + l.
WPF_MULTIVERSION
void q6_k(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 210) {
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
        const float d = f16(b + 208);
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = b + 64 * h;
            const uint8_t* qh = b + 128 + 32 * h;
            for (int s = 0; s < 4; ++s) {
                const uint8_t* lo = ql + 32 * (s % 2);
                const int lo_shift = 4 * (s / 2);
                for (int g = 0; g < 2; ++g, y += 16, ++sc) {
                    const float dl = d * static_cast<float>(*sc);
                    for (int l = 0; l < 16; ++l) {
                        const int q = ((lo[16 * g + l] >> lo_shift) & 0x0F) | (((qh[16 * g + l] >> (2 * s)) & 3) << 4);
                        y[l] = dl * static_cast<float>(q - 32);
                    }
                }
            }
        }
    }
}

// IQ4_NL: Q4_0's layout with nibbles indexing a non-linear table.
WPF_MULTIVERSION
void iq4_nl(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 18, y += 32) {
        const float d = f16(b);
        const uint8_t* qs = b + 2;
        for (int j = 0; j < 16; ++j) y[j] = d * kIq4[qs[j] & 0x0F];
        for (int j = 0; j < 16; ++j) y[j + 16] = d * kIq4[qs[j] >> 4];
    }
}

// IQ4_XS: f16 d, 16 high scale bits, 4 bytes of low scale nibbles, 128 bytes of table indices;
// 8 sub-blocks of 32, each laid out as IQ4_NL's.
WPF_MULTIVERSION
void iq4_xs(const uint8_t* __restrict b, size_t n, float* __restrict y) {
    for (size_t i = 0; i < n; ++i, b += 136, y += QK_K) {
        const float d = f16(b);
        uint16_t sh;
        std::memcpy(&sh, b + 2, 2);
        const uint8_t* sl = b + 4;
        const uint8_t* qs = b + 8;
        for (int j = 0; j < 8; ++j) {
            const int ls = ((sl[j / 2] >> (4 * (j % 2))) & 0x0F) | (((sh >> (2 * j)) & 3) << 4);
            const float dl = d * static_cast<float>(ls - 32);
            const uint8_t* q = qs + 16 * j;
            for (int l = 0; l < 16; ++l) y[32 * j + l] = dl * kIq4[q[l] & 0x0F];
            for (int l = 0; l < 16; ++l) y[32 * j + l + 16] = dl * kIq4[q[l] >> 4];
        }
    }
}

using BlockDecoder = void (*)(const uint8_t*, size_t, float*);

BlockDecoder decoder(DType t) {
    switch (t) {
        case DType::Q4_0: return q4_0;
        case DType::Q4_1: return q4_1;
        case DType::Q5_0: return q5_0;
        case DType::Q5_1: return q5_1;
        case DType::Q8_0: return q8_0;
        case DType::Q2_K: return q2_k;
        case DType::Q3_K: return q3_k;
        case DType::Q4_K: return q4_k;
        case DType::Q5_K: return q5_k;
        case DType::Q6_K: return q6_k;
        case DType::IQ4_NL: return iq4_nl;
        case DType::IQ4_XS: return iq4_xs;
        default: return nullptr;
    }
}

}  // namespace

bool has_block_decoder(DType t) { return decoder(t) != nullptr; }

void decode_blocks(DType t, const uint8_t* src, size_t blocks, float* dst) {
    const BlockDecoder f = decoder(t);
    if (!f) throw std::invalid_argument(std::string("no decoder for block type ") + dtype_name(t));
    f(src, blocks, dst);
}

}  // namespace wpf
