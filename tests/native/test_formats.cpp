// The format readers: a valid file reads as written; each broken rule is a FormatError naming
// the file; what the operating system refuses is a FileAccessError.
#include <doctest/doctest.h>

#include "errors.hpp"
#include "files.hpp"
#include "gguf.hpp"
#include "json.hpp"
#include "safetensors.hpp"

using namespace wpf;
using wpf::test::TempFile;

TEST_CASE("a valid safetensors file lists its tensors with shapes, dtypes and offsets") {
    const std::string header = R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
    TempFile f(test::safetensors(header, test::floats({1, 2, 3, 4, 5, 6})));
    SafetensorsFile st(f.path());
    REQUIRE(st.tensors().size() == 1);
    const TensorInfo& t = st.tensor("a");
    CHECK(t.shape == std::vector<uint64_t>{2, 3});
    CHECK(t.numel == 6);
    CHECK(std::string(dtype_name(t.dtype)) == "F32");
    CHECK(st.metadata().at("k") == "v");
    float third;
    std::memcpy(&third, st.tensor_data(t) + 8, 4);
    CHECK(third == 3.0f);
}

TEST_CASE("a header that claims more bytes than the file holds is a format error") {
    TempFile f(test::raw(static_cast<uint64_t>(1) << 40) + "{}");
    CHECK_THROWS_AS(SafetensorsFile(f.path()), FormatError);
}

TEST_CASE("data offsets past the end of the file are a format error naming the tensor") {
    const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
    TempFile f(test::safetensors(header, test::floats({1, 2})));
    try {
        SafetensorsFile st(f.path());
        FAIL("no error");
    } catch (const FormatError& e) {
        CHECK(std::string(e.what()).find(f.path()) != std::string::npos);
        CHECK(std::string(e.what()).find("'a'") != std::string::npos);
    }
}

TEST_CASE("a shape that does not match the byte count is a format error") {
    const std::string header = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
    TempFile f(test::safetensors(header, test::floats({1, 2})));
    CHECK_THROWS_AS(SafetensorsFile(f.path()), FormatError);
}

TEST_CASE("an unknown dtype is a format error") {
    const std::string header = R"({"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})";
    TempFile f(test::safetensors(header, test::floats({1, 2})));
    CHECK_THROWS_AS(SafetensorsFile(f.path()), FormatError);
}

TEST_CASE("a missing file is a file access error, not a format error") {
    CHECK_THROWS_AS(SafetensorsFile("/nonexistent/wpf/model.safetensors"), FileAccessError);
}

TEST_CASE("json: duplicate keys, bad UTF-8 and trailing bytes are refused") {
    CHECK_THROWS(json::parse(R"({"a":1,"a":2})"));
    CHECK_THROWS(json::parse("\"\xff\""));
    CHECK_THROWS(json::parse("{} x"));
    const json::Value v = json::parse(R"({"n": 18446744073709551615})");
    uint64_t n = 0;
    CHECK(v.members.at(0).second.as_u64(n));
    CHECK(n == UINT64_MAX);
}

namespace {

std::string gguf_string(const std::string& s) { return test::raw(static_cast<uint64_t>(s.size())) + s; }

// A GGUF v3 file with one u32 key and one F32 tensor of `n` values.
std::string gguf_file(uint64_t n, uint32_t version = 3) {
    std::string out =
        "GGUF" + test::raw(version) + test::raw(static_cast<uint64_t>(1)) + test::raw(static_cast<uint64_t>(1));
    out += gguf_string("llama.block_count") + test::raw(static_cast<uint32_t>(4)) + test::raw(static_cast<uint32_t>(1));
    out += gguf_string("w") + test::raw(static_cast<uint32_t>(1)) + test::raw(n) + test::raw(static_cast<uint32_t>(0)) +
           test::raw(static_cast<uint64_t>(0));
    out.resize((out.size() + 31) / 32 * 32, '\0');
    std::vector<float> values(n, 0.5f);
    return out + test::floats(values);
}

}  // namespace

TEST_CASE("a valid GGUF file lists its tensor and metadata") {
    TempFile f(gguf_file(8));
    GgufFile g(f.path());
    REQUIRE(g.tensors().size() == 1);
    CHECK(g.tensor("w").numel == 8);
    CHECK(g.metadata().at("llama.block_count").u == 1);
}

TEST_CASE("every truncation of a valid GGUF file is a format error") {
    const std::string bytes = gguf_file(8);
    for (size_t len = 0; len < bytes.size(); ++len) {
        TempFile f(bytes.substr(0, len));
        CHECK_THROWS_AS(GgufFile(f.path()), FormatError);
    }
}

TEST_CASE("GGUF version 1 is named and refused") {
    TempFile f(gguf_file(8, 1));
    CHECK_THROWS_WITH_AS(GgufFile(f.path()), doctest::Contains("version"), FormatError);
}
