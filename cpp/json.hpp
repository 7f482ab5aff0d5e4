// A strict, small JSON reader for safetensors headers: RFC 8259 syntax, UTF-8 validated,
// depth-limited, duplicate object keys rejected. Numbers keep their text so that integer
// fields can be range-checked exactly.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wpf::json {

struct Value {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    std::string text;  // string contents (decoded) or the number's literal text
    std::vector<Value> items;
    std::vector<std::pair<std::string, Value>> members;

    // The value as a non-negative integer; false if it is not one or exceeds 2^64-1.
    bool as_u64(uint64_t& out) const;
};

// Parses a complete document (surrounding whitespace allowed). Throws std::runtime_error
// with a message saying what is wrong and at which byte.
Value parse(std::string_view text);

}  // namespace wpf::json
