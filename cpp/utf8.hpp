// UTF-8 validation shared by the format readers (JSON strings, GGUF keys and tensor names).
#pragma once
#include <cstddef>
#include <string_view>

namespace wpf {

// Length of the well-formed UTF-8 sequence at p (at most `left` bytes available), or 0 if it is
// invalid: overlong forms, surrogates and code points above U+10FFFF are rejected.
inline size_t utf8_sequence(const unsigned char* p, size_t left) {
    if (left == 0) return 0;
    const unsigned b0 = p[0];
    size_t len;
    unsigned cp;
    if (b0 < 0x80) return 1;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2;
        cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3;
        cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4;
        cp = b0 & 0x07;
    } else
        return 0;
    if (len > left) return 0;
    for (size_t i = 1; i < len; ++i) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr unsigned kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

inline bool valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (size_t i = 0; i < s.size();) {
        const size_t n = utf8_sequence(p + i, s.size() - i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

}  // namespace wpf
