#include "json.hpp"

#include <stdexcept>
#include <unordered_set>

#include "utf8.hpp"

namespace wpf::json {

bool Value::as_u64(uint64_t& out) const {
    if (kind != Kind::Number || text.empty()) return false;
    uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;  // sign, fraction or exponent: not a count
        const uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

namespace {

constexpr int kMaxDepth = 64;  // a safetensors header nests 3 deep; deeper input is hostile

class Parser {
public:
    explicit Parser(std::string_view s) : s_(s) {}

    Value document() {
        skip_ws();
        Value v = value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("unexpected data after the JSON value");
        return v;
    }

private:
    std::string_view s_;
    size_t pos_ = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error(what + " at byte " + std::to_string(pos_));
    }

    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }

    void skip_ws() {
        while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }

    void expect(char c) {
        if (peek() != c || at_end()) fail(std::string("expected '") + c + "'");
        ++pos_;
    }

    void literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) fail("invalid literal");
        pos_ += word.size();
    }

    Value value(int depth) {
        if (depth > kMaxDepth) fail("JSON nested too deeply");
        if (at_end()) fail("unexpected end of JSON");
        Value v;
        switch (s_[pos_]) {
            case '{':
                v.kind = Value::Kind::Object;
                object(v, depth);
                break;
            case '[':
                v.kind = Value::Kind::Array;
                array(v, depth);
                break;
            case '"':
                v.kind = Value::Kind::String;
                v.text = string();
                break;
            case 't':
                literal("true");
                v.kind = Value::Kind::Bool;
                v.boolean = true;
                break;
            case 'f':
                literal("false");
                v.kind = Value::Kind::Bool;
                break;
            case 'n': literal("null"); break;
            default:
                v.kind = Value::Kind::Number;
                v.text = number();
                break;
        }
        return v;
    }

    void object(Value& v, int depth) {
        expect('{');
        skip_ws();
        if (peek() == '}') {
            ++pos_;
            return;
        }
        std::unordered_set<std::string> seen;
        for (;;) {
            skip_ws();
            if (peek() != '"') fail("expected a string key");
            std::string key = string();
            if (!seen.insert(key).second) fail("duplicate key \"" + key + "\"");
            skip_ws();
            expect(':');
            skip_ws();
            v.members.emplace_back(std::move(key), value(depth + 1));
            skip_ws();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            expect('}');
            return;
        }
    }

    void array(Value& v, int depth) {
        expect('[');
        skip_ws();
        if (peek() == ']') {
            ++pos_;
            return;
        }
        for (;;) {
            skip_ws();
            v.items.push_back(value(depth + 1));
            skip_ws();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            expect(']');
            return;
        }
    }

    std::string number() {
        const size_t start = pos_;
        if (peek() == '-') ++pos_;
        if (peek() == '0') {
            ++pos_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++pos_;
        } else {
            fail("invalid value");
        }
        if (peek() == '.') {
            ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        return std::string(s_.substr(start, pos_ - start));
    }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= static_cast<unsigned>(c - 'A' + 10);
            else
                fail("invalid \\u escape");
        }
        return v;
    }

    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // Copies one UTF-8 sequence, rejecting overlong forms, surrogates and code points > U+10FFFF.
    void utf8_char(std::string& out) {
        const size_t len = utf8_sequence(reinterpret_cast<const unsigned char*>(s_.data()) + pos_, s_.size() - pos_);
        if (len == 0) fail("invalid UTF-8");
        out.append(s_.substr(pos_, len));
        pos_ += len;
    }

    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string");
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20) fail("control character in string");
            if (c != '\\') {
                utf8_char(out);
                continue;
            }
            ++pos_;
            if (at_end()) fail("unterminated string");
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (s_.substr(pos_, 2) != "\\u") fail("unpaired surrogate");
                        pos_ += 2;
                        const unsigned lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail("unpaired surrogate");
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: fail("invalid escape");
            }
        }
    }
};

}  // namespace

Value parse(std::string_view text) { return Parser(text).document(); }

}  // namespace wpf::json
